//! RTCP sender and receiver reports (RFC 3550 §6.4), round-trip time from LSR/DLSR, and a
//! listening-quality estimate with the ITU-T G.107 E-model.
//!
//! Only SR and RR are interpreted; other packet types in a compound packet (SDES, BYE, APP,
//! feedback) are skipped after their length is checked. Wall-clock time enters as an
//! [`NtpTime`] argument: nothing here reads a clock.

use crate::rtp::ReceptionStats;

/// A 64-bit NTP timestamp (seconds since 1900 in the high 32 bits, fraction in the low).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct NtpTime(pub u64);

impl NtpTime {
    /// From seconds since the Unix epoch.
    pub fn from_unix(secs: f64) -> NtpTime {
        let ntp = secs + 2_208_988_800.0;
        NtpTime((ntp * 4_294_967_296.0) as u64)
    }

    /// The middle 32 bits, as carried in LSR.
    pub fn middle(self) -> u32 {
        (self.0 >> 16) as u32
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtcpError {
    #[error("RTCP packet shorter than its header ({0} bytes)")]
    Short(usize),
    #[error("RTCP version {0}, expected 2")]
    Version(u8),
    #[error("RTCP length field says {said} bytes but {left} remain")]
    Length { said: usize, left: usize },
    #[error("{kind} report with {count} blocks does not fit in {len} bytes")]
    Blocks {
        kind: &'static str,
        count: usize,
        len: usize,
    },
}

/// One report block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportBlock {
    pub ssrc: u32,
    pub fraction_lost: u8,
    pub cumulative_lost: i32,
    pub extended_highest_sequence: u32,
    pub jitter: u32,
    /// Middle 32 bits of the NTP time of the last SR received from this source.
    pub last_sr: u32,
    /// Delay since that SR, in 1/65536 s.
    pub delay_since_last_sr: u32,
}

/// Sender information of an SR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderInfo {
    pub ntp: NtpTime,
    pub rtp_timestamp: u32,
    pub packets: u32,
    pub octets: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtcpPacket {
    SenderReport {
        ssrc: u32,
        info: SenderInfo,
        blocks: Vec<ReportBlock>,
    },
    ReceiverReport {
        ssrc: u32,
        blocks: Vec<ReportBlock>,
    },
    /// Any other packet type, skipped.
    Other {
        packet_type: u8,
    },
}

/// Whether a datagram on a muxed port is RTCP rather than RTP (RFC 5761 §4: types 192-223).
pub fn is_rtcp(packet: &[u8]) -> bool {
    packet.len() >= 2 && (192..=223).contains(&packet[1])
}

/// Parses a compound RTCP packet.
pub fn parse(mut data: &[u8]) -> Result<Vec<RtcpPacket>, RtcpError> {
    let mut out = Vec::new();
    while !data.is_empty() {
        if data.len() < 4 {
            return Err(RtcpError::Short(data.len()));
        }
        let version = data[0] >> 6;
        if version != 2 {
            return Err(RtcpError::Version(version));
        }
        let count = usize::from(data[0] & 0x1F);
        let packet_type = data[1];
        let len = (usize::from(u16::from_be_bytes([data[2], data[3]])) + 1) * 4;
        if len > data.len() {
            return Err(RtcpError::Length {
                said: len,
                left: data.len(),
            });
        }
        let body = &data[4..len];
        out.push(match packet_type {
            200 => {
                if body.len() < 24 + count * 24 {
                    return Err(RtcpError::Blocks {
                        kind: "sender",
                        count,
                        len,
                    });
                }
                RtcpPacket::SenderReport {
                    ssrc: be32(body, 0),
                    info: SenderInfo {
                        ntp: NtpTime((u64::from(be32(body, 4)) << 32) | u64::from(be32(body, 8))),
                        rtp_timestamp: be32(body, 12),
                        packets: be32(body, 16),
                        octets: be32(body, 20),
                    },
                    blocks: blocks(&body[24..], count),
                }
            }
            201 => {
                if body.len() < 4 + count * 24 {
                    return Err(RtcpError::Blocks {
                        kind: "receiver",
                        count,
                        len,
                    });
                }
                RtcpPacket::ReceiverReport {
                    ssrc: be32(body, 0),
                    blocks: blocks(&body[4..], count),
                }
            }
            other => RtcpPacket::Other { packet_type: other },
        });
        data = &data[len..];
    }
    Ok(out)
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn blocks(b: &[u8], count: usize) -> Vec<ReportBlock> {
    (0..count)
        .map(|i| {
            let x = &b[i * 24..i * 24 + 24];
            let lost = (be32(x, 4) & 0x00FF_FFFF) as i32;
            ReportBlock {
                ssrc: be32(x, 0),
                fraction_lost: x[4],
                // 24-bit two's complement.
                cumulative_lost: (lost << 8) >> 8,
                extended_highest_sequence: be32(x, 8),
                jitter: be32(x, 12),
                last_sr: be32(x, 16),
                delay_since_last_sr: be32(x, 20),
            }
        })
        .collect()
}

fn push_block(out: &mut Vec<u8>, b: &ReportBlock) {
    out.extend_from_slice(&b.ssrc.to_be_bytes());
    let lost = (b.cumulative_lost as u32) & 0x00FF_FFFF;
    out.extend_from_slice(&((u32::from(b.fraction_lost) << 24) | lost).to_be_bytes());
    out.extend_from_slice(&b.extended_highest_sequence.to_be_bytes());
    out.extend_from_slice(&b.jitter.to_be_bytes());
    out.extend_from_slice(&b.last_sr.to_be_bytes());
    out.extend_from_slice(&b.delay_since_last_sr.to_be_bytes());
}

/// Builds an SR (when this side sent media since the last report) or an RR, followed by the
/// SDES CNAME item every compound packet must carry (RFC 3550 §6.1).
pub fn build_report(
    ssrc: u32,
    sender: Option<SenderInfo>,
    blocks: &[ReportBlock],
    cname: &str,
) -> Vec<u8> {
    let blocks = &blocks[..blocks.len().min(31)];
    let mut out = Vec::with_capacity(64 + blocks.len() * 24);
    let words = match sender {
        Some(_) => 6 + 6 * blocks.len(),
        None => 1 + 6 * blocks.len(),
    };
    out.push(0x80 | blocks.len() as u8);
    out.push(if sender.is_some() { 200 } else { 201 });
    out.extend_from_slice(&(words as u16).to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
    if let Some(info) = sender {
        out.extend_from_slice(&info.ntp.0.to_be_bytes());
        out.extend_from_slice(&info.rtp_timestamp.to_be_bytes());
        out.extend_from_slice(&info.packets.to_be_bytes());
        out.extend_from_slice(&info.octets.to_be_bytes());
    }
    for b in blocks {
        push_block(&mut out, b);
    }
    // SDES with one chunk: SSRC, CNAME item, end, padding to a word.
    let cname = &cname.as_bytes()[..cname.len().min(255)];
    let chunk_len = 4 + 2 + cname.len() + 1;
    let padded = chunk_len.div_ceil(4) * 4;
    out.push(0x81);
    out.push(202);
    out.extend_from_slice(&((padded / 4) as u16).to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.push(1);
    out.push(cname.len() as u8);
    out.extend_from_slice(cname);
    out.resize(out.len() + (padded - chunk_len) + 1, 0);
    out
}

/// A report block from reception statistics and the last SR seen from that source.
pub fn report_block(
    stats: &ReceptionStats,
    last_sr: Option<(NtpTime, NtpTime)>,
    now: NtpTime,
) -> ReportBlock {
    let (lsr, dlsr) = match last_sr {
        Some((sr_ntp, received_at)) => {
            let delay = now.0.saturating_sub(received_at.0) >> 16;
            (sr_ntp.middle(), delay.min(u64::from(u32::MAX)) as u32)
        }
        None => (0, 0),
    };
    ReportBlock {
        ssrc: stats.ssrc,
        fraction_lost: stats.fraction_lost,
        cumulative_lost: stats.cumulative_lost,
        extended_highest_sequence: stats.extended_highest_sequence,
        jitter: stats.jitter,
        last_sr: lsr,
        delay_since_last_sr: dlsr,
    }
}

/// Round-trip time from a report block about our stream received at `arrival` (RFC 3550
/// §6.4.1): arrival − LSR − DLSR, in seconds. `None` when the peer has not seen an SR yet.
pub fn round_trip(block: &ReportBlock, arrival: NtpTime) -> Option<f64> {
    if block.last_sr == 0 {
        return None;
    }
    let rtt = arrival
        .middle()
        .wrapping_sub(block.last_sr)
        .wrapping_sub(block.delay_since_last_sr);
    // A negative result (clock skew, bogus block) wraps to a huge value: discard it.
    (rtt < 0x8000_0000).then(|| f64::from(rtt) / 65_536.0)
}

/// The E-model rating R and its MOS for G.711 with packet-loss concealment (G.107, with
/// Ie = 0 and Bpl = 25.1 from G.113 Appendix I). `one_way_delay_ms` should include the
/// jitter buffer; `loss` is a fraction (0..1), assumed random (BurstR = 1).
pub fn e_model(one_way_delay_ms: f64, loss: f64) -> (f64, f64) {
    let d = one_way_delay_ms.max(0.0);
    let id = 0.024 * d + if d > 177.3 { 0.11 * (d - 177.3) } else { 0.0 };
    let ppl = (loss * 100.0).clamp(0.0, 100.0);
    let (ie, bpl) = (0.0, 25.1);
    let ie_eff = ie + (95.0 - ie) * ppl / (ppl + bpl);
    let r = (93.2 - id - ie_eff).clamp(0.0, 100.0);
    let mos = if r <= 0.0 {
        1.0
    } else if r >= 100.0 {
        4.5
    } else {
        1.0 + 0.035 * r + 7.0e-6 * r * (r - 60.0) * (100.0 - r)
    };
    (r, mos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip_and_rtt_is_computed() {
        let block = ReportBlock {
            ssrc: 0x1234,
            fraction_lost: 25,
            cumulative_lost: -3,
            extended_highest_sequence: 70_000,
            jitter: 40,
            last_sr: 0x0001_8000,
            delay_since_last_sr: 0x0000_8000,
        };
        let info = SenderInfo {
            ntp: NtpTime(0xAABB_CCDD_0011_2233),
            rtp_timestamp: 160,
            packets: 10,
            octets: 1600,
        };
        let sr = build_report(0x99, Some(info), &[block], "sma@test");
        let parsed = parse(&sr).unwrap();
        assert_eq!(
            parsed[0],
            RtcpPacket::SenderReport {
                ssrc: 0x99,
                info,
                blocks: vec![block]
            }
        );
        assert_eq!(parsed[1], RtcpPacket::Other { packet_type: 202 });
        let rr = build_report(0x99, None, &[block], "x");
        assert!(matches!(
            parse(&rr).unwrap()[0],
            RtcpPacket::ReceiverReport { .. }
        ));
        // Arrival at 2.0 s (middle 0x0002_0000): 2.0 - 1.5 - 0.5 = 0 s... use 2.25 s.
        let arrival = NtpTime(0x0002_4000u64 << 16);
        assert_eq!(round_trip(&block, arrival), Some(0.25));
        assert!(is_rtcp(&sr));
    }

    #[test]
    fn malformed_rtcp_is_rejected_with_a_reason() {
        assert_eq!(parse(&[0x80, 200]), Err(RtcpError::Short(2)));
        assert_eq!(parse(&[0x40, 200, 0, 0]), Err(RtcpError::Version(1)));
        assert!(matches!(
            parse(&[0x80, 200, 0, 9, 0, 0, 0, 0]),
            Err(RtcpError::Length { .. })
        ));
        assert!(matches!(
            parse(&[0x81, 201, 0, 1, 0, 0, 0, 1]),
            Err(RtcpError::Blocks { .. })
        ));
        let sr = build_report(1, None, &[], "x");
        for end in 0..sr.len() {
            let _ = parse(&sr[..end]);
        }
    }

    #[test]
    fn e_model_matches_g107_reference_points() {
        // No impairment: R = 93.2, MOS ≈ 4.41.
        let (r, mos) = e_model(0.0, 0.0);
        assert!((r - 93.2).abs() < 1e-9);
        assert!((mos - 4.41).abs() < 0.01, "{mos}");
        // 150 ms, no loss: Id = 3.6 → R = 89.6.
        assert!((e_model(150.0, 0.0).0 - 89.6).abs() < 1e-9);
        // 5 % random loss: Ie,eff = 95 * 5 / 30.1 ≈ 15.78.
        let (r, mos) = e_model(0.0, 0.05);
        assert!((r - (93.2 - 95.0 * 5.0 / 30.1)).abs() < 1e-9);
        assert!(mos < 4.0 && mos > 3.5, "{mos}");
        // Heavy loss and delay: poor.
        assert!(e_model(400.0, 0.3).1 < 2.0);
    }
}
