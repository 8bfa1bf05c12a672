//! A call leg's outgoing stream: one RTP stream for the leg's whole life, whose content is
//! switched between sources (a prompt, speech, digits) and silence in between.
//!
//! Adding a pacer stream per prompt would restart the RTP sequence and timestamp at every
//! action, and leave the far end without packets between actions (some endpoints treat that as
//! a dead call). Instead the pacer holds one [`LegOutput`] per leg and the call engine swaps
//! what it plays through [`OutputControl`]. When a source ends the control's callback is told
//! which one (by the id given to [`OutputControl::play`]), and silence follows.
//!
//! A tap can receive what the leg sends, decoded to PCM16, for call recordings of the
//! outgoing track. Decoding happens only while a tap is set.

use crate::codec::{AudioCodec, CodecError, Decoder};
use crate::pacer::{Frame, FrameSource, StreamWaker};
use std::sync::{Arc, Mutex, MutexGuard};

/// Told the id of a source that played to its end.
pub type Finished = Box<dyn Fn(u64) + Send + Sync>;
/// Receives the decoded samples of every frame the leg sends.
pub type Tap = Box<dyn FnMut(&[i16]) + Send>;

struct State {
    current: Option<(u64, Box<dyn FrameSource>)>,
    tap: Option<(Tap, Decoder)>,
    /// Send nothing between sources instead of encoded silence (RFC 3551 §4.1 lets a sender
    /// stop during silence; the clock keeps running, so the next packet's timestamp shows the
    /// gap).
    suppress_silence: bool,
    /// The far end put the call on hold (or our direction does not send): sources still
    /// advance, so what plays ends on time, but nothing is sent (RFC 3264 §5.1).
    held: bool,
    /// The pacer's waker, and whether the stream is parked: with nothing to send and nothing
    /// to tap, the output parks ([`Frame::Park`]) instead of being asked every period, and
    /// any change through [`OutputControl`] wakes it.
    waker: Option<StreamWaker>,
    parked: bool,
}

impl State {
    /// Something changed that may give the pacer something to send: wake a parked stream.
    fn changed(&mut self) {
        if self.parked {
            self.parked = false;
            if let Some(waker) = &self.waker {
                waker.wake();
            }
        }
    }

    /// Nothing to send this period; parked when nothing would change that without a call
    /// through [`OutputControl`] (a tap is fed every period, so it keeps the stream ticking).
    fn idle(&mut self, samples: u32) -> Frame {
        if self.waker.is_some() && self.tap.is_none() {
            self.parked = true;
            Frame::Park { samples }
        } else {
            Frame::Skip { samples }
        }
    }
}

/// The pacer's side: a [`FrameSource`] that plays whatever is current, else silence.
pub struct LegOutput {
    state: Arc<Mutex<State>>,
    finished: Finished,
    payload_type: u8,
    silence: Vec<u8>,
    samples: u32,
    frame_samples: usize,
    pcm: Vec<i16>,
}

/// The call's side: what the leg plays.
#[derive(Clone)]
pub struct OutputControl {
    state: Arc<Mutex<State>>,
    codec: AudioCodec,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic while holding the lock leaves nothing half-written that matters: recover.
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl LegOutput {
    /// An output for a leg sending `codec` as `payload_type` every `ptime_ms`.
    pub fn new(
        codec: AudioCodec,
        payload_type: u8,
        ptime_ms: u32,
        finished: Finished,
    ) -> Result<(LegOutput, OutputControl), CodecError> {
        let mut encoder = codec.encoder()?;
        let mut silence = Vec::new();
        encoder.encode(&vec![0; codec.samples_per_frame(ptime_ms)], &mut silence)?;
        let state = Arc::new(Mutex::new(State {
            current: None,
            tap: None,
            suppress_silence: false,
            held: false,
            waker: None,
            parked: false,
        }));
        Ok((
            LegOutput {
                state: state.clone(),
                finished,
                payload_type,
                silence,
                samples: codec.clock_per_frame(ptime_ms),
                frame_samples: codec.samples_per_frame(ptime_ms),
                pcm: Vec::new(),
            },
            OutputControl { state, codec },
        ))
    }
}

impl FrameSource for LegOutput {
    fn next_frame(&mut self, next_timestamp: u32, payload: &mut Vec<u8>) -> Frame {
        let mut state = lock(&self.state);
        let mut frame = None;
        if let Some((id, source)) = state.current.as_mut() {
            match source.next_frame(next_timestamp, payload) {
                Frame::End => {
                    let id = *id;
                    state.current = None;
                    payload.clear();
                    (self.finished)(id);
                }
                other => frame = Some(other),
            }
        }
        let suppress = state.suppress_silence;
        if state.held {
            payload.clear();
            if let Some((tap, _)) = state.tap.as_mut() {
                // What the party hears while held: nothing from us.
                self.pcm.clear();
                self.pcm.resize(self.frame_samples, 0);
                tap(&self.pcm);
            }
            if state.current.is_none() {
                return state.idle(self.samples);
            }
            return Frame::Skip {
                samples: self.samples,
            };
        }
        if frame.is_none() && suppress && state.tap.is_none() {
            return state.idle(self.samples);
        }
        let frame = frame.unwrap_or_else(|| {
            if suppress {
                return Frame::Skip {
                    samples: self.samples,
                };
            }
            payload.extend_from_slice(&self.silence);
            Frame::Audio {
                payload_type: self.payload_type,
                marker: false,
                samples: self.samples,
            }
        });
        if let Some((tap, decoder)) = state.tap.as_mut() {
            self.pcm.clear();
            let ours = matches!(&frame, Frame::Audio { payload_type, .. } if *payload_type == self.payload_type);
            if ours && decoder.decode(payload, &mut self.pcm).is_err() {
                self.pcm.clear();
            }
            // Telephone-events and skipped periods are silence on the recorded track.
            self.pcm.resize(self.frame_samples.max(self.pcm.len()), 0);
            tap(&self.pcm);
        }
        frame
    }

    fn set_waker(&mut self, waker: StreamWaker) {
        lock(&self.state).waker = Some(waker);
    }
}

impl OutputControl {
    /// Plays `source` from the next period, replacing (and returning the id of) whatever was
    /// playing. The replaced source is not reported as finished.
    pub fn play(&self, id: u64, source: Box<dyn FrameSource>) -> Option<u64> {
        let mut state = lock(&self.state);
        state.changed();
        state.current.replace((id, source)).map(|(old, _)| old)
    }

    /// Stops what is playing (barge-in, interruption); returns its id.
    pub fn stop(&self) -> Option<u64> {
        lock(&self.state).current.take().map(|(id, _)| id)
    }

    /// Stops the source `id` if it is still the one playing.
    pub fn stop_if(&self, id: u64) -> bool {
        let mut state = lock(&self.state);
        if state
            .current
            .as_ref()
            .is_some_and(|(current, _)| *current == id)
        {
            state.current = None;
            return true;
        }
        false
    }

    /// The id of what is playing.
    pub fn playing(&self) -> Option<u64> {
        lock(&self.state).current.as_ref().map(|(id, _)| *id)
    }

    /// Between sources: send nothing (`true`) or encoded silence (`false`, the default).
    /// Stops (or resumes) sending while sources keep their time: hold, or a direction that
    /// does not send.
    pub fn set_held(&self, held: bool) {
        let mut state = lock(&self.state);
        state.held = held;
        state.changed();
    }

    pub fn set_silence_suppression(&self, on: bool) {
        let mut state = lock(&self.state);
        state.suppress_silence = on;
        state.changed();
    }

    /// Sends the decoded outgoing audio to `tap` (replacing an earlier tap); `None` removes it.
    pub fn set_tap(&self, tap: Option<Tap>) -> Result<(), CodecError> {
        let tap = match tap {
            Some(tap) => Some((tap, self.codec.decoder()?)),
            None => None,
        };
        let mut state = lock(&self.state);
        state.tap = tap;
        state.changed();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::PcmSource;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn plays_sources_in_turn_and_silence_between() {
        let done = Arc::new(AtomicU64::new(0));
        let seen = done.clone();
        let (mut out, control) = LegOutput::new(
            AudioCodec::Pcmu,
            0,
            20,
            Box::new(move |id| seen.store(id, Ordering::SeqCst)),
        )
        .unwrap();
        let mut payload = Vec::new();
        // Idle: silence (µ-law 0xFF), never the end of the stream.
        assert!(matches!(
            out.next_frame(0, &mut payload),
            Frame::Audio { .. }
        ));
        assert!(payload.iter().all(|b| *b == 0xFF));
        let tone: Arc<[i16]> = (0..200).map(|i| ((i % 20) * 1000) as i16).collect();
        let src = PcmSource::new(tone, AudioCodec::Pcmu, 0, 20).unwrap();
        assert_eq!(control.play(7, Box::new(src)), None);
        assert_eq!(control.playing(), Some(7));
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let sink = recorded.clone();
        control
            .set_tap(Some(Box::new(move |s: &[i16]| {
                sink.lock().unwrap().extend_from_slice(s)
            })))
            .unwrap();
        payload.clear();
        match out.next_frame(160, &mut payload) {
            Frame::Audio { marker, .. } => assert!(marker, "a new source starts with a marker"),
            f => panic!("{f:?}"),
        }
        assert!(payload.iter().any(|b| *b != 0xFF));
        payload.clear();
        // 200 samples = two frames; the third period ends the source and plays silence.
        out.next_frame(320, &mut payload);
        payload.clear();
        assert!(matches!(
            out.next_frame(480, &mut payload),
            Frame::Audio { .. }
        ));
        assert_eq!(done.load(Ordering::SeqCst), 7);
        assert_eq!(control.playing(), None);
        assert_eq!(recorded.lock().unwrap().len(), 3 * 160);
        assert!(!control.stop_if(7));
    }

    #[test]
    fn suppressed_silence_skips_idle_periods_and_still_plays() {
        let (mut out, control) = LegOutput::new(AudioCodec::Pcmu, 0, 20, Box::new(|_| {})).unwrap();
        control.set_silence_suppression(true);
        let mut payload = Vec::new();
        assert_eq!(
            out.next_frame(0, &mut payload),
            Frame::Skip { samples: 160 }
        );
        assert!(payload.is_empty());
        let tone: Arc<[i16]> = (0..160).map(|i| ((i % 20) * 1000) as i16).collect();
        control.play(
            1,
            Box::new(PcmSource::new(tone, AudioCodec::Pcmu, 0, 20).unwrap()),
        );
        assert!(matches!(
            out.next_frame(160, &mut payload),
            Frame::Audio { marker: true, .. }
        ));
        payload.clear();
        assert_eq!(
            out.next_frame(320, &mut payload),
            Frame::Skip { samples: 160 }
        );
    }
}
