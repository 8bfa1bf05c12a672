//! Media between the two legs of a bridged call.
//!
//! Each direction (the audio one leg receives, going to the other) takes one of two paths:
//!
//! - **Relay**, when both legs negotiated the same codec, packet time and telephone-event
//!   support: each packet the receiving leg accepts is sent on at once from the other leg's
//!   socket, its header rewritten into that leg's outgoing stream (its SSRC, the stream's
//!   next sequence numbers, timestamps moved onto the stream's clock, its payload type
//!   numbers). Nothing is decoded and nothing waits for the pacer, so the relay adds only the
//!   time to handle one datagram. The other leg's own output sends nothing meanwhile
//!   ([`RelayGate`] says so), and when a prompt plays to that leg the relay pauses and the
//!   pacer's packets carry on the same sequence numbers.
//! - **PCM**, otherwise (different codecs or packet times, noise suppression, a recording of
//!   what the other leg hears): the receiving leg's decoded audio goes into a [`PcmPipe`], and
//!   the other leg's output plays it through a [`BridgedSource`] that resamples and encodes
//!   it for that leg's codec on the pacer's clock. Digits that arrived as RFC 4733 events
//!   (which decoded audio does not carry) are regenerated on the other leg.
//!
//! The receive task of each leg ([`crate::leg`]) reads its [`ReceiverControl`] per packet to
//! know which path is set; the call actor switches paths as the call changes.

use crate::codec::{AudioCodec, CodecError, Encoder};
use crate::dtmf::Digit;
use crate::pacer::{Frame, FrameSource};
use crate::resample::StreamResampler;
use crate::rtp::SendCounters;
use crate::source::digit_sequence;
use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing is left half-written under these locks: recover from a poisoned one.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Where a leg's outgoing stream goes now, shared by the pacer's retargeting and a relay.
#[derive(Debug, Clone)]
pub struct Destination(Arc<Mutex<SocketAddr>>);

impl Destination {
    pub fn new(address: SocketAddr) -> Destination {
        Destination(Arc::new(Mutex::new(address)))
    }

    pub fn set(&self, address: SocketAddr) {
        *lock(&self.0) = address;
    }

    pub fn get(&self) -> SocketAddr {
        *lock(&self.0)
    }
}

/// Whether a relay may send into a leg's stream now: off while that leg plays a prompt of
/// its own or is on hold. Shared by the relay and the leg's controller.
#[derive(Debug, Clone, Default)]
pub struct RelayGate(Arc<AtomicBool>);

impl RelayGate {
    pub fn open(&self, open: bool) {
        self.0.store(open, Ordering::Relaxed);
    }

    pub fn is_open(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The outgoing stream of the leg a relay sends into.
#[derive(Debug, Clone)]
pub struct RelayTarget {
    /// That leg's RTP socket (symmetric RTP: its far end expects packets from there).
    pub socket: Arc<UdpSocket>,
    pub destination: Destination,
    /// That leg's SSRC and the stream state it shares with the pacer.
    pub ssrc: u32,
    pub counters: Arc<SendCounters>,
    /// That leg's payload type numbers for the audio codec and telephone-event.
    pub audio_payload_type: u8,
    pub telephone_event: Option<u8>,
    pub gate: RelayGate,
    /// That leg's outbound SRTP, when it is encrypted (the packet arrives here already
    /// unprotected with the receiving leg's key).
    pub srtp: Option<crate::pacer::SharedSrtp>,
}

/// A relay from one leg's received packets into another leg's stream.
#[derive(Debug)]
pub struct Relay {
    target: RelayTarget,
    /// The receiving leg's payload types, to map.
    from_audio: u8,
    from_event: Option<u8>,
    /// Timestamp offset onto the target's clock, set at the first packet after (re)opening
    /// or after the source changed.
    offset: Option<(u32, u32)>,
    was_open: bool,
    buf: Vec<u8>,
    /// Packets relayed, for tests and counters.
    pub relayed: u64,
}

impl Relay {
    /// Relays packets of payload types `from_audio` / `from_event` into `target`.
    pub fn new(target: RelayTarget, from_audio: u8, from_event: Option<u8>) -> Relay {
        Relay {
            target,
            from_audio,
            from_event,
            offset: None,
            was_open: false,
            buf: Vec::with_capacity(1500),
            relayed: 0,
        }
    }

    /// Rewrites and sends one accepted packet (`packet` is the datagram as received, `ssrc`
    /// and `timestamp` its parsed fields). Returns whether it was sent.
    pub fn forward(&mut self, packet: &[u8], ssrc: u32, timestamp: u32) -> bool {
        let open = self.target.gate.is_open();
        let restarted = open && !self.was_open;
        self.was_open = open;
        if !open || packet.len() < 12 {
            return false;
        }
        let payload_type = packet[1] & 0x7F;
        let mapped = if payload_type == self.from_audio {
            self.target.audio_payload_type
        } else if Some(payload_type) == self.from_event {
            match self.target.telephone_event {
                Some(pt) => pt,
                None => return false,
            }
        } else {
            return false;
        };
        let offset = match self.offset {
            Some((source, offset)) if source == ssrc && !restarted => offset,
            _ => {
                // Continue from the stream's clock: what the far end heard last (the pacer's
                // packets, or this relay's before a pause) is earlier.
                let clock = self.target.counters.clock.load(Ordering::Relaxed);
                let offset = clock.wrapping_sub(timestamp);
                self.offset = Some((ssrc, offset));
                offset
            }
        };
        let stamped = timestamp.wrapping_add(offset);
        // The stream's clock moves on with what this relay sends, so the pacer resumes after
        // it when the relay pauses.
        self.target.counters.clock.fetch_max_wrapping(stamped);
        let payload_len = packet.len() - 12;
        let sequence = self.target.counters.sent(payload_len, stamped);
        self.buf.clear();
        self.buf.extend_from_slice(packet);
        let marker = (packet[1] & 0x80 != 0) || restarted;
        self.buf[1] = (u8::from(marker) << 7) | (mapped & 0x7F);
        self.buf[2..4].copy_from_slice(&sequence.to_be_bytes());
        self.buf[4..8].copy_from_slice(&stamped.to_be_bytes());
        self.buf[8..12].copy_from_slice(&self.target.ssrc.to_be_bytes());
        if let Some(srtp) = &self.target.srtp {
            if !crate::pacer::protect_rtp(srtp, &mut self.buf) {
                return false;
            }
        }
        let sent = self
            .target
            .socket
            .send_to(&self.buf, self.target.destination.get())
            .is_ok();
        self.relayed += u64::from(sent);
        sent
    }
}

/// Moving a stream's clock forward to a timestamp, with RTP's wrap-around.
trait FetchMaxWrapping {
    fn fetch_max_wrapping(&self, timestamp: u32);
}

impl FetchMaxWrapping for std::sync::atomic::AtomicU32 {
    fn fetch_max_wrapping(&self, timestamp: u32) {
        let _ = self.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |clock| {
            // Later in RTP's modular sense: less than half the range ahead.
            let ahead = timestamp.wrapping_sub(clock);
            (ahead != 0 && ahead < 1 << 31).then_some(timestamp)
        });
    }
}

/// Decoded audio of one leg on its way to the other, at the receiving leg's sample rate.
/// Bounded: a producer running ahead of the consumer's clock loses its oldest audio instead
/// of building up delay.
#[derive(Debug)]
pub struct PcmPipe {
    pub sample_rate: u32,
    state: Mutex<PipeState>,
    /// Most samples kept (the rest is dropped oldest first).
    capacity: usize,
}

#[derive(Debug, Default)]
struct PipeState {
    samples: VecDeque<i16>,
    digits: VecDeque<Digit>,
    /// Samples dropped because the consumer fell behind, for tests and logs.
    dropped: u64,
}

impl PcmPipe {
    /// A pipe at `sample_rate` keeping at most `max_ms` of audio.
    pub fn new(sample_rate: u32, max_ms: u32) -> Arc<PcmPipe> {
        Arc::new(PcmPipe {
            sample_rate,
            state: Mutex::new(PipeState::default()),
            capacity: (sample_rate as usize * max_ms as usize / 1000).max(1),
        })
    }

    pub fn push(&self, samples: &[i16]) {
        let mut state = lock(&self.state);
        state.samples.extend(samples.iter().copied());
        let over = state.samples.len().saturating_sub(self.capacity);
        if over > 0 {
            state.samples.drain(..over);
            state.dropped += over as u64;
        }
    }

    /// A digit that arrived as an RFC 4733 event, to regenerate on the other leg. At most 32
    /// wait (a reader that takes none, the conference mixer, does not grow the pipe).
    pub fn push_digit(&self, digit: Digit) {
        let mut state = lock(&self.state);
        if state.digits.len() >= 32 {
            state.digits.pop_front();
        }
        state.digits.push_back(digit);
    }

    /// Takes up to `n` samples into `out`; returns how many there were.
    pub fn take(&self, n: usize, out: &mut Vec<i16>) -> usize {
        let mut state = lock(&self.state);
        let n = n.min(state.samples.len());
        out.extend(state.samples.drain(..n));
        n
    }

    fn take_digit(&self) -> Option<Digit> {
        lock(&self.state).digits.pop_front()
    }

    /// Samples waiting.
    pub fn len(&self) -> usize {
        lock(&self.state).samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn dropped(&self) -> u64 {
        lock(&self.state).dropped
    }
}

/// The other leg's audio as a leg's output plays it: from a [`PcmPipe`], resampled to the
/// leg's rate and encoded for its codec each period; silence when nothing arrived in time;
/// regenerated digits (RFC 4733 when the leg negotiated it, else tones) in between.
pub struct BridgedSource {
    pipe: Arc<PcmPipe>,
    codec: AudioCodec,
    payload_type: u8,
    telephone_event: Option<u8>,
    ptime_ms: u32,
    encoder: Encoder,
    resampler: StreamResampler,
    /// Resampled audio not yet sent.
    ready: VecDeque<i16>,
    frame: usize,
    clock: u32,
    input: Vec<i16>,
    output: Vec<i16>,
    digit: Option<Box<dyn FrameSource>>,
    first: bool,
}

impl BridgedSource {
    pub fn new(
        pipe: Arc<PcmPipe>,
        codec: AudioCodec,
        payload_type: u8,
        telephone_event: Option<u8>,
        ptime_ms: u32,
    ) -> Result<BridgedSource, CodecError> {
        let frame = codec.samples_per_frame(ptime_ms);
        let from_frame = (pipe.sample_rate as usize * ptime_ms as usize / 1000).max(1);
        let resampler = StreamResampler::new(pipe.sample_rate, codec.sample_rate(), from_frame)
            .map_err(|e| CodecError::Create {
                codec,
                why: e.to_string(),
            })?;
        Ok(BridgedSource {
            encoder: codec.encoder()?,
            pipe,
            codec,
            payload_type,
            telephone_event,
            ptime_ms,
            resampler,
            ready: VecDeque::new(),
            frame,
            clock: codec.clock_per_frame(ptime_ms),
            input: Vec::new(),
            output: Vec::new(),
            digit: None,
            first: true,
        })
    }
}

impl FrameSource for BridgedSource {
    fn next_frame(&mut self, next_timestamp: u32, payload: &mut Vec<u8>) -> Frame {
        if self.digit.is_none() {
            if let Some(digit) = self.pipe.take_digit() {
                let digits = digit.as_char().to_string();
                self.digit = digit_sequence(
                    &digits,
                    100,
                    60,
                    self.codec,
                    self.payload_type,
                    self.telephone_event,
                    self.ptime_ms,
                )
                .ok();
            }
        }
        if let Some(digit) = self.digit.as_mut() {
            match digit.next_frame(next_timestamp, payload) {
                Frame::End => {
                    payload.clear();
                    self.digit = None;
                }
                frame => {
                    // The audio that arrives meanwhile is what a regenerated digit replaces.
                    self.input.clear();
                    let per_frame =
                        (self.pipe.sample_rate as usize * self.ptime_ms as usize / 1000).max(1);
                    self.pipe.take(per_frame, &mut self.input);
                    return frame;
                }
            }
        }
        // One period of input, resampled; keep at most two frames ready so delay stays low.
        self.input.clear();
        let per_frame = (self.pipe.sample_rate as usize * self.ptime_ms as usize / 1000).max(1);
        self.pipe.take(per_frame, &mut self.input);
        if !self.input.is_empty() {
            self.output.clear();
            if self
                .resampler
                .process(&self.input, &mut self.output)
                .is_ok()
            {
                self.ready.extend(self.output.iter().copied());
            }
        }
        while self.ready.len() > 3 * self.frame {
            self.ready.pop_front();
        }
        self.output.clear();
        let have = self.ready.len().min(self.frame);
        self.output.extend(self.ready.drain(..have));
        // Underrun (the other leg sent nothing in time): silence fills the period.
        self.output.resize(self.frame, 0);
        if self.encoder.encode(&self.output, payload).is_err() {
            payload.clear();
            return Frame::Skip {
                samples: self.clock,
            };
        }
        let marker = std::mem::take(&mut self.first);
        Frame::Audio {
            payload_type: self.payload_type,
            marker,
            samples: self.clock,
        }
    }
}

/// What a leg's receive task does with what it receives, set by the call while it runs.
#[derive(Clone)]
pub struct ReceiverControl(Arc<ControlState>);

struct ControlState {
    /// Send decoded audio to the call as `LegEvent::Audio` (recording, listening).
    deliver_audio: AtomicBool,
    relay: Mutex<Option<Relay>>,
    pcm: Mutex<Option<Arc<PcmPipe>>>,
    denoise: AtomicBool,
}

impl std::fmt::Debug for ReceiverControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiverControl")
            .field("deliver_audio", &self.delivers_audio())
            .field("relay", &lock(&self.0.relay).is_some())
            .field("pcm", &lock(&self.0.pcm).is_some())
            .field("denoise", &self.denoises())
            .finish()
    }
}

impl ReceiverControl {
    /// A control that delivers audio to the call and forwards nothing.
    pub fn new(deliver_audio: bool) -> ReceiverControl {
        ReceiverControl(Arc::new(ControlState {
            deliver_audio: AtomicBool::new(deliver_audio),
            relay: Mutex::new(None),
            pcm: Mutex::new(None),
            denoise: AtomicBool::new(false),
        }))
    }

    pub fn set_deliver_audio(&self, on: bool) {
        self.0.deliver_audio.store(on, Ordering::Relaxed);
    }

    pub fn delivers_audio(&self) -> bool {
        self.0.deliver_audio.load(Ordering::Relaxed)
    }

    /// Relays received packets into another leg's stream (`None` stops).
    pub fn set_relay(&self, relay: Option<Relay>) {
        *lock(&self.0.relay) = relay;
    }

    /// Sends decoded audio into a pipe another leg plays (`None` stops).
    pub fn set_pcm(&self, pipe: Option<Arc<PcmPipe>>) {
        *lock(&self.0.pcm) = pipe;
    }

    /// Noise suppression on the received audio (VoiceFocus).
    pub fn set_denoise(&self, on: bool) {
        self.0.denoise.store(on, Ordering::Relaxed);
    }

    pub fn denoises(&self) -> bool {
        self.0.denoise.load(Ordering::Relaxed)
    }

    /// Whether the receive task must decode: someone wants the audio.
    pub(crate) fn needs_audio(&self) -> bool {
        self.delivers_audio() || self.denoises() || lock(&self.0.pcm).is_some()
    }

    /// Relays one accepted packet, when a relay is set.
    pub(crate) fn relay(&self, packet: &[u8], ssrc: u32, timestamp: u32) {
        if let Some(relay) = lock(&self.0.relay).as_mut() {
            relay.forward(packet, ssrc, timestamp);
        }
    }

    /// Packets relayed so far by the current relay.
    pub fn relayed(&self) -> u64 {
        lock(&self.0.relay).as_ref().map_or(0, |r| r.relayed)
    }

    pub(crate) fn pcm(&self) -> Option<Arc<PcmPipe>> {
        lock(&self.0.pcm).clone()
    }
}

impl Default for ReceiverControl {
    fn default() -> ReceiverControl {
        ReceiverControl::new(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::RtpSender;

    fn target(socket: Arc<UdpSocket>, to: SocketAddr) -> (RelayTarget, Arc<SendCounters>) {
        let counters = Arc::new(SendCounters::default());
        let mut sender = RtpSender::new(0xBEEF, 1000, 50_000);
        sender.share(counters.clone());
        let gate = RelayGate::default();
        gate.open(true);
        (
            RelayTarget {
                socket,
                destination: Destination::new(to),
                ssrc: 0xBEEF,
                counters: counters.clone(),
                audio_payload_type: 8,
                telephone_event: Some(101),
                gate,
                srtp: None,
            },
            counters,
        )
    }

    fn packet(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, pt, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p[4..8].copy_from_slice(&ts.to_be_bytes());
        p[8..12].copy_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn relayed_packets_join_the_target_stream() {
        let out = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        let far = UdpSocket::bind("127.0.0.1:0").unwrap();
        far.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let (target, counters) = target(out, far.local_addr().unwrap());
        let mut relay = Relay::new(target.clone(), 0, Some(96));
        assert!(relay.forward(&packet(0, 7, 1_000, 42, &[1; 160]), 42, 1_000));
        assert!(relay.forward(&packet(0, 8, 1_160, 42, &[2; 160]), 42, 1_160));
        assert!(relay.forward(&packet(96, 9, 1_160, 42, &[3, 0, 0, 160]), 42, 1_160));
        // Not negotiated on the receiving side: dropped.
        assert!(!relay.forward(&packet(18, 10, 1_320, 42, &[0; 10]), 42, 1_320));
        let mut buf = [0u8; 1500];
        let mut got = Vec::new();
        for _ in 0..3 {
            let n = far.recv(&mut buf).unwrap();
            got.push(buf[..n].to_vec());
        }
        let seq = |p: &[u8]| u16::from_be_bytes([p[2], p[3]]);
        let ts = |p: &[u8]| u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
        let ssrc = |p: &[u8]| u32::from_be_bytes([p[8], p[9], p[10], p[11]]);
        // The target's SSRC and sequence, its payload types, its clock.
        assert!(got.iter().all(|p| ssrc(p) == 0xBEEF));
        assert_eq!(
            got.iter().map(|p| seq(p)).collect::<Vec<_>>(),
            vec![1000, 1001, 1002]
        );
        assert_eq!(got[0][1], 0x80 | 8, "first packet after opening is marked");
        assert_eq!(got[1][1], 8);
        assert_eq!(got[2][1] & 0x7F, 101);
        assert_eq!(ts(&got[0]), 50_000);
        assert_eq!(ts(&got[1]), 50_160);
        assert_eq!(ts(&got[2]), 50_160);
        assert_eq!(got[1][12..], [2; 160]);
        assert_eq!(counters.packets.load(Ordering::Relaxed), 3);
        assert_eq!(counters.clock.load(Ordering::Relaxed), 50_160);
        // Closed (a prompt plays to that leg): nothing is sent; reopened: marked again, and
        // the timestamps continue from the stream's clock.
        target.gate.open(false);
        assert!(!relay.forward(&packet(0, 11, 1_480, 42, &[4; 160]), 42, 1_480));
        counters.clock.store(60_000, Ordering::Relaxed);
        target.gate.open(true);
        assert!(relay.forward(&packet(0, 12, 1_640, 42, &[5; 160]), 42, 1_640));
        let n = far.recv(&mut buf).unwrap();
        assert_eq!(buf[1], 0x80 | 8);
        assert_eq!(ts(&buf[..n]), 60_000);
        assert_eq!(seq(&buf[..n]), 1003);
    }

    #[test]
    fn the_pipe_is_bounded_and_the_bridged_source_encodes_what_arrives() {
        let pipe = PcmPipe::new(8000, 60);
        pipe.push(&[1000; 1000]);
        assert_eq!(pipe.len(), 480, "60 ms at 8 kHz");
        assert_eq!(pipe.dropped(), 520);
        let mut source = BridgedSource::new(pipe.clone(), AudioCodec::Pcmu, 0, None, 20).unwrap();
        let mut payload = Vec::new();
        match source.next_frame(0, &mut payload) {
            Frame::Audio {
                payload_type: 0,
                marker: true,
                samples: 160,
            } => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(payload.len(), 160);
        assert!(payload.iter().all(|b| *b != 0xFF), "not silence");
        // Drained: silence, not a stall.
        payload.clear();
        source.next_frame(160, &mut payload);
        payload.clear();
        source.next_frame(320, &mut payload);
        payload.clear();
        source.next_frame(480, &mut payload);
        assert!(
            payload.iter().all(|b| *b == 0xFF),
            "silence after an underrun"
        );
    }

    #[test]
    fn a_digit_is_regenerated_as_telephone_events_then_audio_resumes() {
        let pipe = PcmPipe::new(8000, 200);
        let mut source =
            BridgedSource::new(pipe.clone(), AudioCodec::Pcmu, 0, Some(101), 20).unwrap();
        pipe.push_digit(Digit::new('5').unwrap());
        let mut events = 0;
        let mut payload = Vec::new();
        for i in 0..20 {
            payload.clear();
            pipe.push(&[500; 160]);
            if let Frame::Event { payload_type, .. } = source.next_frame(i * 160, &mut payload) {
                assert_eq!(payload_type, 101);
                assert_eq!(payload[0], 5);
                events += 1;
            }
        }
        assert!(events >= 3, "{events} event packets");
        payload.clear();
        pipe.push(&[500; 160]);
        assert!(matches!(
            source.next_frame(20 * 160, &mut payload),
            Frame::Audio { .. }
        ));
    }

    #[test]
    fn resampled_between_rates() {
        let pipe = PcmPipe::new(8000, 200);
        let mut source = BridgedSource::new(pipe.clone(), AudioCodec::G722, 9, None, 20).unwrap();
        let mut payload = Vec::new();
        let mut audio = 0;
        for i in 0..10 {
            let tone: Vec<i16> = (0..160)
                .map(|n| ((((i * 160 + n) as f32) * 0.3).sin() * 8000.0) as i16)
                .collect();
            pipe.push(&tone);
            payload.clear();
            if let Frame::Audio { samples, .. } = source.next_frame(i as u32 * 160, &mut payload) {
                // G.722's RTP clock is 8 kHz though it samples at 16 kHz.
                assert_eq!(samples, 160);
                assert_eq!(payload.len(), 160);
                audio += 1;
            }
        }
        assert_eq!(audio, 10);
    }
}
