//! RTP reception and sending state (RFC 3550): source validation and sequence tracking
//! (Appendix A.1), loss (A.3) and interarrival jitter (A.8); SSRC, sequence, timestamp and
//! marker handling on the sending side. Packets are parsed and built with `rtp-rs`.

use rtp_rs::{RtpPacketBuilder, RtpReader, Seq};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The largest RTP packet accepted; anything bigger is not telephony audio.
pub const MAX_PACKET: usize = 1_500;

const MAX_DROPOUT: u16 = 3_000;
const MAX_MISORDER: u16 = 100;
/// Sequential packets that make a new source valid. RFC 3550 suggests 2; telephony cannot
/// afford to drop the first packet of every call (or of every source after a transfer), so a
/// source is valid from its first packet. Hijacking by stray packets is limited by latching to
/// the first source only (see the leg).
const MIN_SEQUENTIAL: u8 = 1;
const SEQ_MOD: u64 = 1 << 16;

/// Why a received packet was not used. Each is counted in [`ReceiveCounters`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtpDrop {
    #[error("malformed RTP packet: {0}")]
    Malformed(String),
    #[error("RTP packet of {0} bytes exceeds {MAX_PACKET}")]
    Oversize(usize),
    #[error("payload type {0} was not negotiated")]
    PayloadType(u8),
    #[error("source still on probation (RFC 3550 A.1)")]
    Probation,
    #[error("sequence number jumped; waiting for the next packet to confirm")]
    BadSequence,
    #[error("duplicate or too-late packet")]
    Late,
}

/// What happened to received packets, for operators and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceiveCounters {
    pub accepted: u64,
    pub malformed: u64,
    pub oversize: u64,
    pub wrong_payload_type: u64,
    pub probation: u64,
    pub bad_sequence: u64,
    pub late: u64,
    pub ssrc_changes: u64,
}

/// A packet accepted by the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received<'a> {
    pub ssrc: u32,
    pub sequence: u16,
    /// Sequence number extended with the wrap count.
    pub extended_sequence: u64,
    pub timestamp: u32,
    pub marker: bool,
    pub payload_type: u8,
    pub payload: &'a [u8],
}

/// Per-source reception statistics (what an RTCP report block carries).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ReceptionStats {
    pub ssrc: u32,
    /// Loss since the previous report, as a fraction of 256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (may go negative with duplicates, RFC 3550 A.3).
    pub cumulative_lost: i32,
    pub extended_highest_sequence: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    pub received: u64,
    pub expected: u64,
}

/// Tracks one incoming stream.
#[derive(Debug)]
pub struct RtpReceiver {
    clock_rate: u32,
    accepted_types: Vec<u8>,
    ssrc: Option<u32>,
    max_seq: u16,
    cycles: u64,
    base_seq: u64,
    bad_seq: Option<u16>,
    probation: u8,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    epoch: Option<Instant>,
    transit: Option<f64>,
    jitter: f64,
    pub counters: ReceiveCounters,
}

impl RtpReceiver {
    /// `accepted_types`: the negotiated payload types (codec, telephone-event, comfort noise).
    pub fn new(clock_rate: u32, accepted_types: &[u8]) -> RtpReceiver {
        RtpReceiver {
            clock_rate,
            accepted_types: accepted_types.to_vec(),
            ssrc: None,
            max_seq: 0,
            cycles: 0,
            base_seq: 0,
            bad_seq: None,
            probation: MIN_SEQUENTIAL,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            epoch: None,
            transit: None,
            jitter: 0.0,
            counters: ReceiveCounters::default(),
        }
    }

    fn init_sequence(&mut self, seq: u16) {
        self.base_seq = u64::from(seq);
        self.max_seq = seq;
        self.bad_seq = None;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
        self.transit = None;
        self.jitter = 0.0;
    }

    /// Checks one datagram. `arrival` feeds the jitter estimate.
    pub fn receive<'a>(
        &mut self,
        packet: &'a [u8],
        arrival: Instant,
    ) -> Result<Received<'a>, RtpDrop> {
        let result = self.check(packet, arrival);
        let c = &mut self.counters;
        match &result {
            Ok(_) => c.accepted += 1,
            Err(RtpDrop::Malformed(_)) => c.malformed += 1,
            Err(RtpDrop::Oversize(_)) => c.oversize += 1,
            Err(RtpDrop::PayloadType(_)) => c.wrong_payload_type += 1,
            Err(RtpDrop::Probation) => c.probation += 1,
            Err(RtpDrop::BadSequence) => c.bad_sequence += 1,
            Err(RtpDrop::Late) => c.late += 1,
        }
        result
    }

    fn check<'a>(&mut self, packet: &'a [u8], arrival: Instant) -> Result<Received<'a>, RtpDrop> {
        if packet.len() > MAX_PACKET {
            return Err(RtpDrop::Oversize(packet.len()));
        }
        let reader = RtpReader::new(packet).map_err(|e| RtpDrop::Malformed(format!("{e:?}")))?;
        if reader.version() != 2 {
            return Err(RtpDrop::Malformed(format!("version {}", reader.version())));
        }
        let payload_type = reader.payload_type();
        if !self.accepted_types.contains(&payload_type) {
            return Err(RtpDrop::PayloadType(payload_type));
        }
        let ssrc = reader.ssrc();
        let seq = u16::from(reader.sequence_number());
        if self.ssrc != Some(ssrc) {
            // A new source (or a restarted sender): start over with probation.
            if self.ssrc.is_some() {
                self.counters.ssrc_changes += 1;
            }
            self.ssrc = Some(ssrc);
            self.init_sequence(seq);
            self.max_seq = seq.wrapping_sub(1);
            self.probation = MIN_SEQUENTIAL;
        }
        self.update_sequence(seq)?;
        self.update_jitter(reader.timestamp(), arrival);
        Ok(Received {
            ssrc,
            sequence: seq,
            extended_sequence: self.cycles + u64::from(seq),
            timestamp: reader.timestamp(),
            marker: reader.mark(),
            payload_type,
            payload: reader.payload(),
        })
    }

    /// RFC 3550 A.1 `update_seq`.
    fn update_sequence(&mut self, seq: u16) -> Result<(), RtpDrop> {
        let delta = seq.wrapping_sub(self.max_seq);
        if self.probation > 0 {
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.init_sequence(seq);
                    self.received += 1;
                    return Ok(());
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = seq;
            }
            return Err(RtpDrop::Probation);
        }
        if delta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles += SEQ_MOD;
            }
            self.max_seq = seq;
        } else if delta <= u16::MAX - MAX_MISORDER {
            // A big jump: accept it only if the next packet follows it (the sender restarted).
            if self.bad_seq == Some(seq) {
                self.init_sequence(seq);
            } else {
                self.bad_seq = Some(seq.wrapping_add(1));
                return Err(RtpDrop::BadSequence);
            }
        } else {
            // Reordered or duplicate within the misorder window: fine for statistics, but the
            // caller decides (a jitter buffer may still place it).
            self.received += 1;
            return Ok(());
        }
        self.received += 1;
        Ok(())
    }

    fn update_jitter(&mut self, timestamp: u32, arrival: Instant) {
        let epoch = *self.epoch.get_or_insert(arrival);
        let arrival_units =
            arrival.saturating_duration_since(epoch).as_secs_f64() * f64::from(self.clock_rate);
        let transit = arrival_units - f64::from(timestamp);
        if let Some(last) = self.transit {
            let mut d = transit - last;
            // Timestamps wrap at 2^32: fold the difference back.
            if d.abs() > f64::from(u32::MAX) / 2.0 {
                d -= f64::from(u32::MAX).copysign(d);
            }
            self.jitter += (d.abs() - self.jitter) / 16.0;
        }
        self.transit = Some(transit);
    }

    /// Statistics for a report block; resets the "since last report" interval.
    pub fn report(&mut self) -> Option<ReceptionStats> {
        let ssrc = self.ssrc?;
        if self.probation > 0 {
            return None;
        }
        let extended_max = self.cycles + u64::from(self.max_seq);
        let expected = extended_max.saturating_sub(self.base_seq) + 1;
        let lost = expected as i64 - self.received as i64;
        let expected_interval = expected.saturating_sub(self.expected_prior);
        let received_interval = self.received.saturating_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval as i64).min(255) as u8
        };
        Some(ReceptionStats {
            ssrc,
            fraction_lost,
            cumulative_lost: lost.clamp(-0x80_0000, 0x7F_FFFF) as i32,
            extended_highest_sequence: extended_max as u32,
            jitter: self.jitter as u32,
            received: self.received,
            expected,
        })
    }

    /// Jitter in milliseconds.
    pub fn jitter_ms(&self) -> f64 {
        self.jitter * 1000.0 / f64::from(self.clock_rate)
    }

    pub fn ssrc(&self) -> Option<u32> {
        self.ssrc
    }
}

/// The sending state of a leg shared beyond the pacer: the counters the leg's RTCP reporter
/// puts in sender reports, and the stream's sequence and clock, so a bridge relay can send
/// packets into the same stream (same SSRC, next sequence numbers, timestamps on the
/// stream's clock) between the pacer's own.
#[derive(Debug, Default)]
pub struct SendCounters {
    pub packets: AtomicU32,
    pub octets: AtomicU32,
    pub last_timestamp: AtomicU32,
    /// The sequence number of the next packet (low 16 bits), whoever sends it.
    pub sequence: AtomicU32,
    /// The timestamp the pacer's next packet will carry: the stream's clock.
    pub clock: AtomicU32,
}

impl SendCounters {
    /// Takes the next sequence number and counts one packet of `payload_len` bytes stamped
    /// `timestamp`.
    pub fn sent(&self, payload_len: usize, timestamp: u32) -> u16 {
        self.packets.fetch_add(1, Ordering::Relaxed);
        self.octets.fetch_add(payload_len as u32, Ordering::Relaxed);
        self.last_timestamp.store(timestamp, Ordering::Relaxed);
        self.sequence.fetch_add(1, Ordering::Relaxed) as u16
    }
}

/// The sending side of one stream: SSRC, sequence numbers, timestamps.
#[derive(Debug, Clone)]
pub struct RtpSender {
    /// Shared with the RTCP reporter and a bridge relay, once [`RtpSender::share`]d.
    shared: Option<Arc<SendCounters>>,
    pub ssrc: u32,
    sequence: u16,
    timestamp: u32,
    pub packets_sent: u32,
    pub octets_sent: u32,
    /// The timestamp of the last packet sent, for sender reports.
    pub last_timestamp: u32,
}

impl RtpSender {
    /// `ssrc`, first sequence number and first timestamp should be random (RFC 3550 §5.1).
    pub fn new(ssrc: u32, first_sequence: u16, first_timestamp: u32) -> RtpSender {
        RtpSender {
            shared: None,
            ssrc,
            sequence: first_sequence,
            timestamp: first_timestamp,
            packets_sent: 0,
            octets_sent: 0,
            last_timestamp: first_timestamp,
        }
    }

    /// From now on the sequence numbers and counters live in `counters` (seeded with this
    /// sender's), where the RTCP reporter reads them and a relay can send into the stream.
    pub fn share(&mut self, counters: Arc<SendCounters>) {
        counters
            .sequence
            .store(u32::from(self.sequence), Ordering::Relaxed);
        counters.clock.store(self.timestamp, Ordering::Relaxed);
        counters.packets.store(self.packets_sent, Ordering::Relaxed);
        counters.octets.store(self.octets_sent, Ordering::Relaxed);
        self.shared = Some(counters);
    }

    /// Builds the next packet into `out` (cleared first) and advances the timestamp by
    /// `samples`. `marker` marks the first packet after silence or of a telephone-event.
    pub fn packet(
        &mut self,
        payload_type: u8,
        marker: bool,
        payload: &[u8],
        samples: u32,
        out: &mut Vec<u8>,
    ) {
        self.packet_at(payload_type, marker, payload, self.timestamp, out);
        self.advance(samples);
    }

    /// Builds a packet with an explicit timestamp (telephone-events repeat the event's start
    /// timestamp) without advancing the stream's timestamp.
    pub fn packet_at(
        &mut self,
        payload_type: u8,
        marker: bool,
        payload: &[u8],
        timestamp: u32,
        out: &mut Vec<u8>,
    ) {
        out.clear();
        out.resize(12 + payload.len(), 0);
        let sequence = match &self.shared {
            Some(shared) => shared.sent(payload.len(), timestamp),
            None => {
                let s = self.sequence;
                self.sequence = self.sequence.wrapping_add(1);
                s
            }
        };
        let built = RtpPacketBuilder::new()
            .payload_type(payload_type & 0x7F)
            .ssrc(self.ssrc)
            .sequence(Seq::from(sequence))
            .timestamp(timestamp)
            .marked(marker)
            .payload(payload)
            .build_into(out);
        match built {
            Ok(len) => out.truncate(len),
            Err(_) => {
                out.clear();
                return;
            }
        }
        self.packets_sent = self.packets_sent.wrapping_add(1);
        self.octets_sent = self.octets_sent.wrapping_add(payload.len() as u32);
        self.last_timestamp = timestamp;
    }

    fn advance(&mut self, samples: u32) {
        self.timestamp = self.timestamp.wrapping_add(samples);
        if let Some(shared) = &self.shared {
            shared.clock.store(self.timestamp, Ordering::Relaxed);
        }
    }

    /// The timestamp the next audio packet will carry.
    pub fn next_timestamp(&self) -> u32 {
        self.timestamp
    }

    /// Advances the timestamp without sending (silence suppressed, or time spent in an event).
    pub fn skip(&mut self, samples: u32) {
        self.advance(samples);
    }
}
