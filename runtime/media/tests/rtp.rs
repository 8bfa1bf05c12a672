//! RTP reception statistics and the hostile cases of RFC 3550 Appendix A: sequence wrap and
//! jumps, SSRC changes, wrong payload types, malformed and oversize packets.

use sma_media::rtp::{RtpDrop, RtpReceiver, RtpSender};
use std::time::{Duration, Instant};

fn packet(sender: &mut RtpSender, pt: u8) -> Vec<u8> {
    let mut out = Vec::new();
    sender.packet(pt, false, &[0xFF; 160], 160, &mut out);
    out
}

#[test]
fn steady_stream_has_no_loss_and_no_jitter() {
    let t0 = Instant::now();
    let mut tx = RtpSender::new(0xAB, 65_500, 1000); // wraps the sequence number
    let mut rx = RtpReceiver::new(8000, &[0]);
    let mut accepted = 0;
    for i in 0..100u64 {
        let p = packet(&mut tx, 0);
        if rx.receive(&p, t0 + Duration::from_millis(20 * i)).is_ok() {
            accepted += 1;
        }
    }
    assert_eq!(accepted, 100, "a new source is valid from its first packet");
    let stats = rx.report().unwrap();
    assert_eq!(stats.cumulative_lost, 0);
    assert_eq!(stats.fraction_lost, 0);
    assert_eq!(stats.jitter, 0);
    assert_eq!(
        stats.extended_highest_sequence,
        65_536 + 63,
        "cycles counted across the wrap"
    );
}

#[test]
fn loss_and_jitter_are_measured() {
    let t0 = Instant::now();
    let mut tx = RtpSender::new(7, 100, 0);
    let mut rx = RtpReceiver::new(8000, &[0]);
    for i in 0..200u64 {
        let p = packet(&mut tx, 0);
        if i % 10 == 5 {
            continue; // 10 % loss
        }
        // Alternate 0 and 10 ms of extra delay: |D| = 80 timestamp units per packet.
        let extra = if i % 2 == 0 { 0 } else { 10 };
        let _ = rx.receive(&p, t0 + Duration::from_millis(20 * i + extra));
    }
    let stats = rx.report().unwrap();
    assert_eq!(stats.cumulative_lost, 20);
    let fraction = f64::from(stats.fraction_lost) / 256.0;
    assert!((fraction - 0.10).abs() < 0.02, "{fraction}");
    // The estimator converges towards the mean |D| (80 units = 10 ms).
    assert!(
        rx.jitter_ms() > 6.0 && rx.jitter_ms() < 11.0,
        "{}",
        rx.jitter_ms()
    );
    // The next interval has no new loss.
    for _ in 0..20 {
        let p = packet(&mut tx, 0);
        let _ = rx.receive(&p, t0 + Duration::from_secs(5));
    }
    assert_eq!(rx.report().unwrap().fraction_lost, 0);
}

#[test]
fn a_sequence_jump_is_confirmed_by_the_next_packet() {
    let t0 = Instant::now();
    let mut rx = RtpReceiver::new(8000, &[0]);
    let mut tx = RtpSender::new(1, 10, 0);
    for _ in 0..5 {
        let _ = rx.receive(&packet(&mut tx, 0), t0);
    }
    // The sender restarts its numbering (same SSRC): one packet is doubted, the next accepted.
    let mut jumped = RtpSender::new(1, 40_000, 0);
    assert_eq!(
        rx.receive(&packet(&mut jumped, 0), t0),
        Err(RtpDrop::BadSequence)
    );
    assert!(rx.receive(&packet(&mut jumped, 0), t0).is_ok());
    assert!(rx.receive(&packet(&mut jumped, 0), t0).is_ok());
    assert_eq!(rx.counters.bad_sequence, 1);
    // A late duplicate within the misorder window is accepted for statistics.
    let mut dup = RtpSender::new(1, 40_001, 0);
    assert!(rx.receive(&packet(&mut dup, 0), t0).is_ok());
}

#[test]
fn ssrc_change_restarts_the_source() {
    let t0 = Instant::now();
    let mut rx = RtpReceiver::new(8000, &[0]);
    let mut a = RtpSender::new(1, 0, 0);
    let mut b = RtpSender::new(2, 5000, 0);
    for _ in 0..5 {
        let _ = rx.receive(&packet(&mut a, 0), t0);
    }
    assert!(rx.receive(&packet(&mut b, 0), t0).is_ok());
    assert!(rx.receive(&packet(&mut b, 0), t0).is_ok());
    assert_eq!(rx.ssrc(), Some(2));
    assert_eq!(rx.counters.ssrc_changes, 1);
}

#[test]
fn bad_packets_are_dropped_and_counted() {
    let t0 = Instant::now();
    let mut rx = RtpReceiver::new(8000, &[0, 101]);
    let mut tx = RtpSender::new(3, 0, 0);
    assert!(matches!(
        rx.receive(&packet(&mut tx, 8), t0),
        Err(RtpDrop::PayloadType(8))
    ));
    assert!(matches!(
        rx.receive(&[0x80, 0, 1], t0),
        Err(RtpDrop::Malformed(_))
    ));
    let mut v1 = packet(&mut tx, 0);
    v1[0] = 0x40;
    assert!(matches!(rx.receive(&v1, t0), Err(RtpDrop::Malformed(_))));
    // CSRC count claiming more than the packet holds.
    let mut csrc = packet(&mut tx, 0);
    csrc.truncate(14);
    csrc[0] = 0x8F;
    assert!(matches!(rx.receive(&csrc, t0), Err(RtpDrop::Malformed(_))));
    assert!(matches!(
        rx.receive(&vec![0x80; 2000], t0),
        Err(RtpDrop::Oversize(2000))
    ));
    assert_eq!(rx.counters.wrong_payload_type, 1);
    assert_eq!(rx.counters.malformed, 3);
    assert_eq!(rx.counters.oversize, 1);
    // Every truncation of a good packet is handled.
    let good = packet(&mut tx, 0);
    for end in 0..good.len() {
        let _ = rx.receive(&good[..end], t0);
    }
}

#[test]
fn sender_numbers_packets_and_keeps_event_timestamps() {
    let mut tx = RtpSender::new(9, u16::MAX, 100);
    let mut out = Vec::new();
    tx.packet(0, true, &[1, 2], 160, &mut out);
    let r = rtp_rs::RtpReader::new(&out).unwrap();
    assert!(r.mark());
    assert_eq!(u16::from(r.sequence_number()), u16::MAX);
    assert_eq!(r.timestamp(), 100);
    tx.packet_at(101, false, &[0; 4], 5000, &mut out);
    let r = rtp_rs::RtpReader::new(&out).unwrap();
    assert_eq!(u16::from(r.sequence_number()), 0, "wrapped");
    assert_eq!(r.timestamp(), 5000);
    assert_eq!(
        tx.next_timestamp(),
        260,
        "events do not move the audio clock"
    );
    assert_eq!(tx.packets_sent, 2);
}
