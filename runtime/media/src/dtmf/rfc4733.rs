//! RFC 4733 telephone-events: the 4-byte payload, a sender that produces the start,
//! continuation and (three redundant) end packets of one key press, and a receiver that
//! reports each press once however many of its packets arrive, lost or reordered.

use super::Digit;

/// One telephone-event payload (RFC 4733 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPayload {
    pub event: u8,
    pub end: bool,
    /// Power level in -dBm0 (0-63).
    pub volume: u8,
    /// Duration so far, in timestamp units.
    pub duration: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("telephone-event payload is {0} bytes, expected 4 or a multiple of 4")]
    Length(usize),
}

impl EventPayload {
    pub fn parse(bytes: &[u8]) -> Result<EventPayload, EventError> {
        // Several events may be stacked (RFC 4733 §2.5.1.5); the first is the current one.
        if bytes.len() < 4 || !bytes.len().is_multiple_of(4) {
            return Err(EventError::Length(bytes.len()));
        }
        Ok(EventPayload {
            event: bytes[0],
            end: bytes[1] & 0x80 != 0,
            volume: bytes[1] & 0x3F,
            duration: u16::from_be_bytes([bytes[2], bytes[3]]),
        })
    }

    pub fn to_bytes(self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [
            self.event,
            (if self.end { 0x80 } else { 0 }) | (self.volume & 0x3F),
            d[0],
            d[1],
        ]
    }
}

/// One packet to send: marker bit, timestamp offset from the event start, payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPacket {
    pub marker: bool,
    pub payload: EventPayload,
    /// When to send it, in ms after the first packet.
    pub at_ms: u32,
}

/// The packets of one key press of `duration_ms`, one per `ptime_ms`, then three end packets
/// (RFC 4733 §2.5.1.4). All carry the timestamp of the event's start.
pub fn event_packets(
    digit: Digit,
    duration_ms: u32,
    volume: u8,
    ptime_ms: u32,
    clock_rate: u32,
) -> Vec<EventPacket> {
    let ptime_ms = ptime_ms.max(10);
    let units =
        |ms: u32| -> u16 { (u64::from(ms) * u64::from(clock_rate) / 1000).min(0xFFFF) as u16 };
    let duration_ms = duration_ms.max(ptime_ms);
    let mut packets = Vec::new();
    let mut elapsed = ptime_ms;
    while elapsed < duration_ms {
        packets.push(EventPacket {
            marker: packets.is_empty(),
            payload: EventPayload {
                event: digit.event(),
                end: false,
                volume,
                duration: units(elapsed),
            },
            at_ms: elapsed - ptime_ms,
        });
        elapsed += ptime_ms;
    }
    for i in 0..3 {
        packets.push(EventPacket {
            marker: packets.is_empty(),
            payload: EventPayload {
                event: digit.event(),
                end: true,
                volume,
                duration: units(duration_ms),
            },
            at_ms: duration_ms - ptime_ms + i * ptime_ms.min(20),
        });
    }
    packets
}

/// What the receiver saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventReport {
    /// A new key press (reported on its first packet, so digits are not delayed).
    Pressed(Digit),
    /// The press ended after `duration` timestamp units.
    Released { digit: Digit, duration: u16 },
}

/// Collapses the packets of each key press into one report.
#[derive(Debug, Default)]
pub struct EventReceiver {
    /// RTP timestamp of the event in progress or last seen.
    current: Option<u32>,
    ended: bool,
    pub ignored: u64,
}

impl EventReceiver {
    pub fn new() -> EventReceiver {
        EventReceiver::default()
    }

    /// Feeds one telephone-event packet's RTP timestamp and payload.
    pub fn receive(&mut self, timestamp: u32, payload: &[u8], out: &mut Vec<EventReport>) {
        let Ok(event) = EventPayload::parse(payload) else {
            self.ignored += 1;
            return;
        };
        let Some(digit) = Digit::from_event(event.event) else {
            self.ignored += 1; // flash-hook and tones are not digits
            return;
        };
        // Events are told apart by timestamp; an older one (reordered, late) is a duplicate.
        let is_new = match self.current {
            None => true,
            Some(ts) => (timestamp.wrapping_sub(ts) as i32) > 0,
        };
        if is_new {
            self.current = Some(timestamp);
            self.ended = false;
            out.push(EventReport::Pressed(digit));
        } else if timestamp != self.current.unwrap_or(timestamp) {
            self.ignored += 1;
            return;
        }
        if event.end && !self.ended {
            self.ended = true;
            out.push(EventReport::Released {
                digit,
                duration: event.duration,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips_and_rejects_bad_lengths() {
        let p = EventPayload {
            event: 11,
            end: true,
            volume: 10,
            duration: 1600,
        };
        assert_eq!(EventPayload::parse(&p.to_bytes()), Ok(p));
        assert_eq!(EventPayload::parse(&[1, 2, 3]), Err(EventError::Length(3)));
        assert_eq!(EventPayload::parse(&[]), Err(EventError::Length(0)));
    }

    #[test]
    fn sender_produces_start_continuations_and_three_ends() {
        let d = Digit::new('5').unwrap();
        let packets = event_packets(d, 100, 10, 20, 8000);
        assert!(packets[0].marker);
        assert!(packets[1..].iter().all(|p| !p.marker));
        let durations: Vec<u16> = packets.iter().map(|p| p.payload.duration).collect();
        assert_eq!(durations, vec![160, 320, 480, 640, 800, 800, 800]);
        assert_eq!(packets.iter().filter(|p| p.payload.end).count(), 3);
        let times: Vec<u32> = packets.iter().map(|p| p.at_ms).collect();
        assert_eq!(times, vec![0, 20, 40, 60, 80, 100, 120]);
    }

    #[test]
    fn receiver_reports_each_press_once_despite_loss_and_duplicates() {
        let mut r = EventReceiver::new();
        let mut out = Vec::new();
        let d1 = Digit::new('1').unwrap();
        let d2 = Digit::new('#').unwrap();
        let p = |digit: Digit, end: bool, duration: u16| {
            EventPayload {
                event: digit.event(),
                end,
                volume: 10,
                duration,
            }
            .to_bytes()
        };
        // First press: start packet lost, continuation arrives first.
        r.receive(1000, &p(d1, false, 320), &mut out);
        r.receive(1000, &p(d1, false, 480), &mut out);
        r.receive(1000, &p(d1, true, 800), &mut out);
        r.receive(1000, &p(d1, true, 800), &mut out);
        r.receive(1000, &p(d1, true, 800), &mut out);
        // Second press of another digit, only its end packets survive.
        r.receive(3000, &p(d2, true, 640), &mut out);
        r.receive(3000, &p(d2, true, 640), &mut out);
        // A late packet of the first press.
        r.receive(1000, &p(d1, false, 160), &mut out);
        // The same digit again: a new press (new timestamp).
        r.receive(5000, &p(d1, false, 160), &mut out);
        assert_eq!(
            out,
            vec![
                EventReport::Pressed(d1),
                EventReport::Released {
                    digit: d1,
                    duration: 800
                },
                EventReport::Pressed(d2),
                EventReport::Released {
                    digit: d2,
                    duration: 640
                },
                EventReport::Pressed(d1),
            ]
        );
        assert_eq!(r.ignored, 1);
        r.receive(6000, &[200, 0, 0, 0], &mut out);
        r.receive(6000, &[1, 2], &mut out);
        assert_eq!(r.ignored, 3);
    }
}
