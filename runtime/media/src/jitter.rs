//! An adaptive jitter buffer for received audio (recording, bridging, in-band DTMF).
//!
//! Frames are ordered by RTP timestamp and played out on a fixed cadence. The playout delay
//! starts at `initial` and adapts: a packet that arrives too late to be played grows the delay
//! by one frame (up to `max`); a buffer that has held more than the delay needs for a while
//! drops one frame to shrink it (down to `min`). A gap is reported as [`Playout::Missing`] so
//! the caller can conceal it (silence, or the codec's concealment).
//!
//! A stream is not always continuous: a far end switches from its early-media announcement to
//! the answered call with a new timestamp base, a socket read late hands over seconds of
//! packets at once. The buffer never lets its playout point fall behind what it holds (that
//! would conceal every frame from then on), starts a burst at its newest part, and treats a
//! timestamp jump beyond what it can hold as a new stream.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct JitterConfig {
    pub clock_rate: u32,
    /// Samples per frame (ptime × clock rate).
    pub frame_samples: u32,
    pub initial: Duration,
    pub min: Duration,
    pub max: Duration,
    /// Frames held beyond this are dropped oldest first.
    pub capacity: usize,
}

impl JitterConfig {
    pub fn telephony(clock_rate: u32, ptime_ms: u32) -> JitterConfig {
        JitterConfig {
            clock_rate,
            frame_samples: clock_rate * ptime_ms / 1000,
            initial: Duration::from_millis(40),
            min: Duration::from_millis(20),
            max: Duration::from_millis(300),
            capacity: 50,
        }
    }
}

/// What to play for the next frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout {
    Frame {
        timestamp: u32,
        payload: Vec<u8>,
    },
    /// Nothing arrived for this frame in time.
    Missing {
        timestamp: u32,
    },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterCounters {
    pub played: u64,
    pub missing: u64,
    pub late: u64,
    pub duplicate: u64,
    pub overflow: u64,
    pub shrunk: u64,
    /// Times the stream started over (a timestamp jump or a new SSRC).
    pub resyncs: u64,
}

#[derive(Debug)]
pub struct JitterBuffer {
    config: JitterConfig,
    frames: BTreeMap<u64, Vec<u8>>,
    /// The newest timestamp seen and its extended value.
    reference: Option<(u32, u64)>,
    first_arrival: Option<Instant>,
    /// Extended timestamp of the next frame to play, and when frame `base.1` plays.
    next: Option<u64>,
    base: Option<(Instant, u64)>,
    delay: Duration,
    /// Consecutive pops with more buffered than the delay needs.
    surplus_pops: u32,
    pub counters: JitterCounters,
}

impl JitterBuffer {
    pub fn new(config: JitterConfig) -> JitterBuffer {
        JitterBuffer {
            delay: config.initial,
            config,
            frames: BTreeMap::new(),
            reference: None,
            first_arrival: None,
            next: None,
            base: None,
            surplus_pops: 0,
            counters: JitterCounters::default(),
        }
    }

    /// The current playout delay.
    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// Extends a 32-bit timestamp across wraps: the signed distance from the newest one seen.
    fn extend(&mut self, timestamp: u32) -> u64 {
        match self.reference {
            None => {
                self.reference = Some((timestamp, 1 << 40));
                1 << 40
            }
            Some((last_ts, last_ext)) => {
                let offset = i64::from(timestamp.wrapping_sub(last_ts) as i32);
                let ext = last_ext.wrapping_add_signed(offset);
                if ext > last_ext {
                    self.reference = Some((timestamp, ext));
                }
                ext
            }
        }
    }

    /// The 32-bit timestamp of an extended one.
    fn unextend(&self, ext: u64) -> u32 {
        match self.reference {
            Some((ts, last_ext)) => ts.wrapping_add(ext.wrapping_sub(last_ext) as u32),
            None => ext as u32,
        }
    }

    /// Adds a received frame.
    pub fn push(&mut self, timestamp: u32, payload: &[u8], arrival: Instant) {
        let mut ext = self.extend(timestamp);
        if let Some(next) = self.next {
            // Further from the playout point than the buffer could ever hold: not a late or
            // early frame of this stream but a new one.
            if ext.abs_diff(next) > self.horizon() {
                self.resync();
                ext = self.extend(timestamp);
            }
        }
        self.first_arrival.get_or_insert(arrival);
        if let Some(next) = self.next {
            if ext < next {
                self.counters.late += 1;
                // Too late to play: the delay was too short for this network.
                let frame = self.frame_duration();
                if self.delay + frame <= self.config.max {
                    self.delay += frame;
                    if let Some((t, ts)) = self.base {
                        self.base = Some((t + frame, ts));
                    }
                }
                return;
            }
        }
        if self.frames.insert(ext, payload.to_vec()).is_some() {
            self.counters.duplicate += 1;
        }
        let mut dropped = None;
        while self.frames.len() > self.config.capacity {
            dropped = self.frames.pop_first().map(|(k, _)| k);
            self.counters.overflow += 1;
        }
        // Frames dropped for room were the next to play: skip past them, on the cadence they
        // had, instead of concealing frames that can no longer come.
        if let (Some(next), Some(dropped)) = (self.next, dropped) {
            if dropped >= next {
                self.skip_to(dropped + u64::from(self.config.frame_samples));
            }
        }
    }

    /// Starts over as if nothing had been received; the learnt delay is kept (the network
    /// did not change).
    pub fn resync(&mut self) {
        self.frames.clear();
        self.reference = None;
        self.first_arrival = None;
        self.next = None;
        self.base = None;
        self.surplus_pops = 0;
        self.counters.resyncs += 1;
    }

    /// The farthest, in timestamp units, a frame of this stream can be from the playout point:
    /// as much as the buffer holds, or the longest delay, whichever is more.
    fn horizon(&self) -> u64 {
        let held = u64::from(self.config.frame_samples) * self.config.capacity as u64;
        let max = self.config.max.as_secs_f64() * f64::from(self.config.clock_rate);
        held.max(max as u64)
    }

    /// Moves the playout point forward to `ext`, which then plays when the old point would
    /// have.
    fn skip_to(&mut self, ext: u64) {
        if let Some(due) = self.next.and_then(|next| self.due(next)) {
            self.base = Some((due, ext));
        }
        self.next = Some(ext);
    }

    /// When the frame at extended timestamp `ext` plays, once the cadence has started.
    fn due(&self, ext: u64) -> Option<Instant> {
        let (base_time, base_ts) = self.base?;
        Some(
            base_time
                + Duration::from_secs_f64(
                    ext.saturating_sub(base_ts) as f64 / f64::from(self.config.clock_rate),
                ),
        )
    }

    fn frame_duration(&self) -> Duration {
        Duration::from_secs_f64(
            f64::from(self.config.frame_samples) / f64::from(self.config.clock_rate),
        )
    }

    /// The next frame, when its playout time has come.
    pub fn pop(&mut self, now: Instant) -> Option<Playout> {
        if self.base.is_none() {
            let first = self.first_arrival?;
            if now < first + self.delay {
                return None;
            }
            let (&newest, _) = self.frames.last_key_value()?;
            // A burst (a socket read late, a far end flushing its queue) starts at its newest
            // part: no more buffered than the delay asks for.
            let delay = (self.delay.as_secs_f64() * f64::from(self.config.clock_rate)) as u64;
            let from = newest.saturating_sub(delay + 2 * u64::from(self.config.frame_samples));
            let (&start, _) = self.frames.range(from..).next()?;
            self.frames = self.frames.split_off(&start);
            self.next = Some(start);
            self.base = Some((now, start));
        }
        let next = self.next?;
        let due = self.due(next)?;
        if now < due {
            return None;
        }
        let frame = u64::from(self.config.frame_samples);
        self.next = Some(next + frame);
        // Drop anything older that is still here (a frame that straddled a timestamp jump).
        while self
            .frames
            .first_key_value()
            .is_some_and(|(k, _)| *k < next)
        {
            self.frames.pop_first();
        }
        let timestamp = self.unextend(next);
        let out = match self.frames.remove(&next) {
            Some(payload) => {
                self.counters.played += 1;
                Playout::Frame { timestamp, payload }
            }
            None => {
                self.counters.missing += 1;
                Playout::Missing { timestamp }
            }
        };
        self.adapt(next + frame);
        Some(out)
    }

    /// Shrinks the delay when the buffer has held more than it needs for a second.
    fn adapt(&mut self, next: u64) {
        let frame_d = self.frame_duration();
        let held = self
            .frames
            .last_key_value()
            .map(|(k, _)| k.saturating_sub(next))
            .unwrap_or(0);
        let held = Duration::from_secs_f64(held as f64 / f64::from(self.config.clock_rate));
        if held > self.delay + 2 * frame_d || (held > self.delay && self.delay > self.config.min) {
            self.surplus_pops += 1;
        } else {
            self.surplus_pops = 0;
        }
        if self.surplus_pops >= 50 {
            self.surplus_pops = 0;
            // Skip one frame: the oldest buffered is dropped and the cadence moves forward.
            if let Some(next) = self.next {
                self.frames.remove(&next);
                self.next = Some(next + u64::from(self.config.frame_samples));
                self.counters.shrunk += 1;
                if self.delay >= self.config.min + frame_d {
                    self.delay -= frame_d;
                }
            }
        }
    }

    /// Frames waiting.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> JitterConfig {
        JitterConfig::telephony(8000, 20)
    }

    #[test]
    fn reorders_and_plays_on_cadence() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(cfg());
        // Arrive out of order within the delay.
        for (ts, at) in [(160u32, 5u64), (0, 10), (320, 25), (480, 41)] {
            jb.push(ts, &[ts as u8], t0 + Duration::from_millis(at));
        }
        let mut played = Vec::new();
        let mut t = t0;
        while t < t0 + Duration::from_millis(200) {
            while let Some(p) = jb.pop(t) {
                played.push(p);
            }
            t += Duration::from_millis(1);
        }
        let ts: Vec<u32> = played
            .iter()
            .map(|p| match p {
                Playout::Frame { timestamp, .. } | Playout::Missing { timestamp } => *timestamp,
            })
            .collect();
        assert_eq!(&ts[..4], &[0, 160, 320, 480]);
        assert!(matches!(played[0], Playout::Frame { .. }));
        assert!(matches!(played[4], Playout::Missing { timestamp: 640 }));
    }

    #[test]
    fn late_packets_grow_the_delay_and_wrap_is_handled() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(cfg());
        let start = u32::MAX - 400; // wraps after three frames
        jb.push(start, &[1], t0);
        let t = t0 + Duration::from_millis(40);
        assert!(matches!(jb.pop(t), Some(Playout::Frame { .. })));
        assert!(matches!(
            jb.pop(t + Duration::from_millis(20)),
            Some(Playout::Missing { .. })
        ));
        // The second frame arrives after its slot: late, and the delay grows.
        jb.push(start.wrapping_add(160), &[2], t + Duration::from_millis(25));
        assert_eq!(jb.counters.late, 1);
        assert_eq!(jb.delay(), Duration::from_millis(60));
        // Frames across the 32-bit wrap play in order.
        jb.push(start.wrapping_add(480), &[4], t + Duration::from_millis(30));
        jb.push(start.wrapping_add(320), &[3], t + Duration::from_millis(31));
        let mut got = Vec::new();
        let mut now = t + Duration::from_millis(30);
        while now < t + Duration::from_millis(200) {
            while let Some(p) = jb.pop(now) {
                if let Playout::Frame { payload, timestamp } = p {
                    got.push((payload[0], timestamp));
                }
            }
            now += Duration::from_millis(1);
        }
        assert_eq!(
            got,
            vec![(3, start.wrapping_add(320)), (4, start.wrapping_add(480))]
        );
    }

    /// Plays `arrivals` (timestamp, payload tag, arrival ms) through a buffer popped every
    /// millisecond up to `until_ms`; returns what played with the time it played.
    fn simulate(arrivals: &[(u32, u8, u64)], until_ms: u64) -> (Vec<(u64, Playout)>, JitterBuffer) {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(cfg());
        let mut played = Vec::new();
        let mut pending = arrivals.iter().peekable();
        for ms in 0..until_ms {
            let now = t0 + Duration::from_millis(ms);
            while let Some((ts, tag, _)) = pending.next_if(|(_, _, at)| *at <= ms) {
                jb.push(*ts, &[*tag], now);
            }
            while let Some(p) = jb.pop(now) {
                played.push((ms, p));
            }
        }
        (played, jb)
    }

    /// Tags of what played from `from_ms` on; `None` for concealed frames.
    fn tags_from(played: &[(u64, Playout)], from_ms: u64) -> Vec<Option<u8>> {
        played
            .iter()
            .filter(|(ms, _)| *ms >= from_ms)
            .map(|(_, p)| match p {
                Playout::Frame { payload, .. } => Some(payload[0]),
                Playout::Missing { .. } => None,
            })
            .collect()
    }

    #[test]
    fn a_burst_read_at_once_plays_its_newest_part_then_the_live_stream() {
        // Three seconds of early media waited in the socket (tag 1), read at once; the live
        // stream (tag 2) goes on at its cadence from there.
        let mut arrivals: Vec<(u32, u8, u64)> = (0..150u32).map(|k| (k * 160, 1, 0)).collect();
        arrivals.extend((150..250u32).map(|k| (k * 160, 2, u64::from(k - 149) * 20)));
        let (played, jb) = simulate(&arrivals, 2000);
        let live = tags_from(&played, 200);
        assert!(live.len() > 80, "played {} frames", live.len());
        assert!(
            live.iter().all(|t| *t == Some(2)),
            "the live stream plays without gaps: {live:?}"
        );
        // No more than the delay and a couple of frames behind what arrives.
        let stale = tags_from(&played, 0)
            .iter()
            .filter(|t| **t == Some(1))
            .count();
        assert!(stale <= 6, "{stale} frames of the stale burst played");
        assert!(jb.counters.overflow >= 100);
    }

    #[test]
    fn a_timestamp_jump_either_way_is_a_new_stream_not_a_silence() {
        for jump in [-(1i64 << 30), -20_000, 20_000, 1 << 31] {
            // One second of stream A (tag 1), then stream B (tag 2) with a new timestamp base.
            let base_a = 1_000_000u32;
            let base_b = (i64::from(base_a) + 50 * 160 + jump) as u32;
            let mut arrivals: Vec<(u32, u8, u64)> = (0..50u32)
                .map(|k| (base_a + k * 160, 1, u64::from(k) * 20))
                .collect();
            arrivals.extend(
                (0..50u32).map(|k| (base_b.wrapping_add(k * 160), 2, 1000 + u64::from(k) * 20)),
            );
            let (played, jb) = simulate(&arrivals, 2000);
            let after = tags_from(&played, 1100);
            assert!(
                after.len() > 40 && after.iter().all(|t| *t == Some(2)),
                "jump {jump}: stream B plays within 100 ms: {after:?}"
            );
            assert_eq!(jb.counters.resyncs, 1, "jump {jump}");
        }
    }

    #[test]
    fn a_new_ssrc_resync_keeps_the_learnt_delay() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(cfg());
        jb.push(0, &[1], t0);
        assert!(jb.pop(t0 + Duration::from_millis(40)).is_some());
        jb.push(160, &[1], t0 + Duration::from_millis(70)); // late: delay 40 -> 60 ms
        let delay = jb.delay();
        jb.resync();
        assert_eq!(jb.delay(), delay);
        assert!(jb.is_empty());
        // The new stream waits the learnt delay, then plays from its first frame.
        let t1 = t0 + Duration::from_secs(1);
        jb.push(90_000, &[2], t1);
        assert!(jb.pop(t1 + delay - Duration::from_millis(1)).is_none());
        assert!(matches!(
            jb.pop(t1 + delay),
            Some(Playout::Frame {
                timestamp: 90_000,
                ..
            })
        ));
    }
}
