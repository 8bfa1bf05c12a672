//! Frame sources for the pacer: PCM audio (prompts, synthesized speech), in-band DTMF digits
//! and RFC 4733 telephone-events.

use crate::codec::{AudioCodec, CodecError, Encoder};
use crate::dtmf::rfc4733::{event_packets, EventPacket};
use crate::dtmf::tone::ToneGenerator;
use crate::dtmf::Digit;
use crate::pacer::{Frame, FrameSource};
use std::sync::Arc;

/// Plays PCM16 samples (at the codec's rate) once, then ends. The samples are shared, so a
/// thousand calls playing one signal hold one copy.
pub struct PcmSource {
    samples: Arc<[i16]>,
    position: usize,
    encoder: Encoder,
    payload_type: u8,
    frame: usize,
    clock: u32,
    first: bool,
    scratch: Vec<i16>,
}

impl PcmSource {
    /// Fails only when the codec cannot be set up (Opus's library refusing its settings).
    pub fn new(
        samples: Arc<[i16]>,
        codec: AudioCodec,
        payload_type: u8,
        ptime_ms: u32,
    ) -> Result<PcmSource, CodecError> {
        Ok(PcmSource {
            samples,
            position: 0,
            encoder: codec.encoder()?,
            payload_type,
            frame: codec.samples_per_frame(ptime_ms),
            clock: codec.clock_per_frame(ptime_ms),
            first: true,
            scratch: Vec::new(),
        })
    }
}

impl FrameSource for PcmSource {
    fn next_frame(&mut self, _next_timestamp: u32, payload: &mut Vec<u8>) -> Frame {
        if self.position >= self.samples.len() {
            return Frame::End;
        }
        let end = (self.position + self.frame).min(self.samples.len());
        // Pad a short last frame with silence so every packet covers a whole period.
        self.scratch.clear();
        self.scratch
            .extend_from_slice(&self.samples[self.position..end]);
        self.scratch.resize(self.frame, 0);
        self.position = end;
        if self.encoder.encode(&self.scratch, payload).is_err() {
            return Frame::End;
        }
        let marker = std::mem::take(&mut self.first);
        Frame::Audio {
            payload_type: self.payload_type,
            marker,
            samples: self.clock,
        }
    }
}

/// Sends digits as RFC 4733 events (`tone_ms` each, `gap_ms` apart), with silence audio in
/// the gaps so the far end's audio clock keeps running, then ends.
pub struct EventSource {
    plan: Vec<Step>,
    index: usize,
    encoder: Encoder,
    silence: Vec<i16>,
    audio_pt: u8,
    event_pt: u8,
    frame: u32,
    event_start: Option<u32>,
}

enum Step {
    Event(EventPacket, bool),
    Silence,
}

impl EventSource {
    pub fn new(
        digits: &[Digit],
        tone_ms: u32,
        gap_ms: u32,
        codec: AudioCodec,
        audio_pt: u8,
        event_pt: u8,
        ptime_ms: u32,
    ) -> Result<EventSource, CodecError> {
        let rate = codec.clock_rate();
        let mut plan = Vec::new();
        for _ in 0..(gap_ms / ptime_ms).max(1) {
            plan.push(Step::Silence);
        }
        for digit in digits {
            let packets = event_packets(*digit, tone_ms, 10, ptime_ms, rate);
            let n = packets.len();
            for (i, p) in packets.into_iter().enumerate() {
                // The three end packets go out back to back in real senders; here one per
                // period, and only the last moves the clock past the event.
                plan.push(Step::Event(p, i + 1 == n));
            }
            for _ in 0..(gap_ms / ptime_ms).max(1) {
                plan.push(Step::Silence);
            }
        }
        Ok(EventSource {
            plan,
            index: 0,
            encoder: codec.encoder()?,
            silence: vec![0; codec.samples_per_frame(ptime_ms)],
            audio_pt,
            event_pt,
            frame: codec.clock_per_frame(ptime_ms),
            event_start: None,
        })
    }
}

impl FrameSource for EventSource {
    fn next_frame(&mut self, next_timestamp: u32, payload: &mut Vec<u8>) -> Frame {
        let Some(step) = self.plan.get(self.index) else {
            return Frame::End;
        };
        self.index += 1;
        match step {
            Step::Silence => {
                self.event_start = None;
                if self.encoder.encode(&self.silence, payload).is_err() {
                    return Frame::End;
                }
                Frame::Audio {
                    payload_type: self.audio_pt,
                    marker: false,
                    samples: self.frame,
                }
            }
            Step::Event(p, last) => {
                let start = *self.event_start.get_or_insert(next_timestamp);
                payload.extend_from_slice(&p.payload.to_bytes());
                let advance = *last;
                if advance {
                    self.event_start = None;
                }
                Frame::Event {
                    payload_type: self.event_pt,
                    marker: p.marker,
                    timestamp: start,
                    // Over the whole event the clock moves by its duration plus the end
                    // packets' periods.
                    samples: u32::from(p.payload.duration) + 2 * self.frame,
                    advance,
                }
            }
        }
    }
}

/// In-band DTMF: each digit's tone for `tone_ms`, `gap_ms` of silence between, then ends.
pub fn inband_digits(
    digits: &[Digit],
    tone_ms: u32,
    gap_ms: u32,
    dbm0: f32,
    rate: u32,
) -> Vec<i16> {
    let per_ms = (rate / 1000) as usize;
    let mut out = vec![0i16; gap_ms as usize * per_ms];
    for d in digits {
        ToneGenerator::digit(rate, *d, dbm0).fill(tone_ms as usize * per_ms, &mut out);
        out.extend(std::iter::repeat_n(0i16, gap_ms as usize * per_ms));
    }
    out
}

/// Nothing for `frames` periods (the RTP clock keeps running), then ends: a pause.
pub struct PauseSource {
    frames: u32,
    samples: u32,
}

impl PauseSource {
    pub fn new(duration_ms: u32, codec: AudioCodec, ptime_ms: u32) -> PauseSource {
        PauseSource {
            frames: duration_ms / ptime_ms.max(1),
            samples: codec.clock_per_frame(ptime_ms),
        }
    }
}

impl FrameSource for PauseSource {
    fn next_frame(&mut self, _next_timestamp: u32, _payload: &mut Vec<u8>) -> Frame {
        if self.frames == 0 {
            return Frame::End;
        }
        self.frames -= 1;
        Frame::Skip {
            samples: self.samples,
        }
    }
}

/// Plays sources one after another, then ends.
pub struct ChainSource {
    parts: std::collections::VecDeque<Box<dyn FrameSource>>,
}

impl ChainSource {
    pub fn new(parts: Vec<Box<dyn FrameSource>>) -> ChainSource {
        ChainSource {
            parts: parts.into(),
        }
    }
}

impl FrameSource for ChainSource {
    fn next_frame(&mut self, next_timestamp: u32, payload: &mut Vec<u8>) -> Frame {
        while let Some(part) = self.parts.front_mut() {
            match part.next_frame(next_timestamp, payload) {
                Frame::End => {
                    payload.clear();
                    self.parts.pop_front();
                }
                frame => return frame,
            }
        }
        Frame::End
    }
}

/// Keys to press: RFC 4733 events when `telephone_event` (its payload type) was negotiated,
/// in-band tones at -6 dBm0 otherwise; each `tone_ms` long and `gap_ms` apart, with `,`
/// pausing 500 ms. Characters that are not digits are skipped.
#[allow(clippy::too_many_arguments)]
pub fn digit_sequence(
    digits: &str,
    tone_ms: u32,
    gap_ms: u32,
    codec: AudioCodec,
    payload_type: u8,
    telephone_event: Option<u8>,
    ptime_ms: u32,
) -> Result<Box<dyn FrameSource>, CodecError> {
    let mut parts: Vec<Box<dyn FrameSource>> = Vec::new();
    for (i, group) in digits.split(',').enumerate() {
        if i > 0 {
            parts.push(Box::new(PauseSource::new(500, codec, ptime_ms)));
        }
        let symbols: Vec<Digit> = group.chars().filter_map(Digit::new).collect();
        if symbols.is_empty() {
            continue;
        }
        let source: Box<dyn FrameSource> = match telephone_event {
            Some(te) => Box::new(EventSource::new(
                &symbols,
                tone_ms,
                gap_ms,
                codec,
                payload_type,
                te,
                ptime_ms,
            )?),
            None => {
                let pcm = inband_digits(&symbols, tone_ms, gap_ms, -6.0, codec.sample_rate());
                Box::new(PcmSource::new(pcm.into(), codec, payload_type, ptime_ms)?)
            }
        };
        parts.push(source);
    }
    Ok(Box::new(ChainSource::new(parts)))
}
