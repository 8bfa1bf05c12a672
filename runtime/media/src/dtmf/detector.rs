//! In-band DTMF detection (ITU-T Q.24) for calls without RFC 4733 telephone-events.
//!
//! 20 ms Hann-windowed blocks every 10 ms, Goertzel filters at the eight DTMF frequencies. A
//! block "hits" a digit when, for its strongest row and column:
//! - each tone is above the minimum level,
//! - the twist (row level minus column level) is within limits,
//! - each tone beats every other tone of its group by a margin,
//! - the two tones carry most of the block's energy (speech spreads it: talk-off),
//! - the column tone's second harmonic is weak (voiced speech is rich in harmonics: talk-off),
//! - each is closer to its nominal frequency than to frequencies 5 % away on either side, which
//!   puts the accept/reject boundary at 2.5 %: inside Q.24's ±1.5 % accept / ±3.5 % reject.
//!
//! A digit is reported after enough consecutive hits to cover the minimum tone duration, once
//! per key press; a pause of at least the minimum inter-digit gap ends it.

use super::tone::amplitude;
use super::{Digit, COLUMNS, ROWS};
use std::f32::consts::TAU;

/// Detector thresholds. The defaults meet Q.24's common limits: tones of 40 ms and more are
/// detected, 20 ms and less are not; pauses of 40 ms separate digits.
#[derive(Debug, Clone, Copy)]
pub struct DetectorConfig {
    pub sample_rate: u32,
    /// Weakest tone accepted, per frequency.
    pub min_level_dbm0: f32,
    /// Low group stronger than high group by at most this much (standard twist).
    pub max_twist_db: f32,
    /// High group stronger than low group by at most this much (reverse twist).
    pub max_reverse_twist_db: f32,
    /// Each detected tone must beat the other tones of its group by this much.
    pub relative_peak_db: f32,
    /// Share of the block's energy the two tones must carry.
    pub min_energy_ratio: f32,
    /// Consecutive hits (10 ms apart) needed to report a digit.
    pub min_hits: u32,
    /// Consecutive misses that end a digit.
    pub release_misses: u32,
}

impl Default for DetectorConfig {
    fn default() -> DetectorConfig {
        DetectorConfig {
            sample_rate: 8_000,
            min_level_dbm0: -30.0,
            max_twist_db: 8.0,
            max_reverse_twist_db: 4.0,
            relative_peak_db: 6.0,
            min_energy_ratio: 0.7,
            min_hits: 3,
            release_misses: 3,
        }
    }
}

/// One Goertzel filter.
#[derive(Debug, Clone, Copy)]
struct Bin {
    coeff: f32,
}

impl Bin {
    fn new(freq: f32, rate: f32) -> Bin {
        Bin {
            coeff: 2.0 * (TAU * freq / rate).cos(),
        }
    }

    fn power(self, block: &[f32]) -> f32 {
        let (mut s1, mut s2) = (0.0f32, 0.0f32);
        for x in block {
            let s0 = x + self.coeff * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        s1 * s1 + s2 * s2 - self.coeff * s1 * s2
    }
}

/// Frequency offset of the discriminator bins.
const OFFSET: f32 = 0.05;

pub struct DtmfDetector {
    config: DetectorConfig,
    window: Vec<f32>,
    /// Σw and Σw² of the window, to turn Goertzel power into tone amplitude and energy.
    window_sum: f32,
    window_energy: f32,
    block_len: usize,
    hop: usize,
    rows: [Bin; 4],
    columns: [Bin; 4],
    /// (below, above, second harmonic) for each row then each column.
    checks: [[Bin; 3]; 8],
    pending: Vec<f32>,
    block: Vec<f32>,
    candidate: Option<Digit>,
    hits: u32,
    misses: u32,
    held: Option<Digit>,
    min_amplitude: f32,
}

impl DtmfDetector {
    pub fn new(config: DetectorConfig) -> DtmfDetector {
        let rate = config.sample_rate as f32;
        let block_len = (config.sample_rate / 50) as usize; // 20 ms
        let hop = block_len / 2;
        let window: Vec<f32> = (0..block_len)
            .map(|i| 0.5 - 0.5 * (TAU * i as f32 / block_len as f32).cos())
            .collect();
        let window_sum = window.iter().sum();
        let window_energy = window.iter().map(|w| w * w).sum();
        let bins = |freqs: [f32; 4]| freqs.map(|f| Bin::new(f, rate));
        let mut checks = [[Bin { coeff: 0.0 }; 3]; 8];
        for (i, f) in ROWS.iter().chain(COLUMNS.iter()).enumerate() {
            checks[i] = [
                Bin::new(f * (1.0 - OFFSET), rate),
                Bin::new(f * (1.0 + OFFSET), rate),
                Bin::new((f * 2.0).min(rate / 2.0 - 1.0), rate),
            ];
        }
        DtmfDetector {
            min_amplitude: amplitude(config.min_level_dbm0),
            config,
            window,
            window_sum,
            window_energy,
            block_len,
            hop,
            rows: bins(ROWS),
            columns: bins(COLUMNS),
            checks,
            pending: Vec::with_capacity(block_len * 2),
            block: vec![0.0; block_len],
            candidate: None,
            hits: 0,
            misses: 0,
            held: None,
        }
    }

    /// Feeds samples; appends each newly pressed digit to `out`.
    pub fn process(&mut self, samples: &[i16], out: &mut Vec<Digit>) {
        self.pending.extend(samples.iter().map(|s| f32::from(*s)));
        while self.pending.len() >= self.block_len {
            for (i, (x, w)) in self.pending.iter().zip(&self.window).enumerate() {
                self.block[i] = x * w;
            }
            let hit = self.classify();
            self.step(hit, out);
            self.pending.drain(..self.hop);
        }
    }

    fn step(&mut self, hit: Option<Digit>, out: &mut Vec<Digit>) {
        match hit {
            Some(d) => {
                self.misses = 0;
                if self.candidate == Some(d) {
                    self.hits += 1;
                } else {
                    self.candidate = Some(d);
                    self.hits = 1;
                }
                if self.hits >= self.config.min_hits && self.held.is_none() {
                    self.held = Some(d);
                    out.push(d);
                }
            }
            None => {
                self.candidate = None;
                self.hits = 0;
                self.misses += 1;
                if self.misses >= self.config.release_misses {
                    self.held = None;
                }
            }
        }
    }

    /// The amplitude of a sine whose windowed Goertzel power is `power`.
    fn amplitude_of(&self, power: f32) -> f32 {
        2.0 * power.max(0.0).sqrt() / self.window_sum
    }

    fn classify(&self) -> Option<Digit> {
        let block = &self.block;
        // Silence and quiet lines (most of a call) cannot hold two tones at the minimum level:
        // skip the filters. The margin of 2 covers the window's effect on the estimate.
        let energy: f32 = block.iter().map(|x| x * x).sum();
        if energy < 0.5 * self.min_amplitude * self.min_amplitude * self.window_energy {
            return None;
        }
        let row_p = self.rows.map(|b| b.power(block));
        let col_p = self.columns.map(|b| b.power(block));
        let (r, &rp) = row_p.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1))?;
        let (c, &cp) = col_p.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1))?;
        let (ra, ca) = (self.amplitude_of(rp), self.amplitude_of(cp));
        if ra < self.min_amplitude || ca < self.min_amplitude {
            return None;
        }
        let twist_db = 20.0 * (ra / ca).log10();
        if twist_db > self.config.max_twist_db || -twist_db > self.config.max_reverse_twist_db {
            return None;
        }
        let margin = 10f32.powf(self.config.relative_peak_db / 10.0);
        let beats = |p: &[f32; 4], best: usize, bp: f32| {
            p.iter()
                .enumerate()
                .all(|(i, x)| i == best || bp >= x * margin)
        };
        if !beats(&row_p, r, rp) || !beats(&col_p, c, cp) {
            return None;
        }
        let tone_energy = (ra * ra + ca * ca) / 2.0 * self.window_energy;
        if energy <= 0.0 || tone_energy / energy < self.config.min_energy_ratio {
            return None;
        }
        for (index, power) in [(r, rp), (4 + c, cp)] {
            let [below, above, harmonic] = self.checks[index];
            if below.power(block) >= power || above.power(block) >= power {
                return None; // off frequency by more than 2.5 %
            }
            // Only the high group's harmonics are checked: a row's second harmonic (1394-1882
            // Hz) falls within a 20 ms window's main lobe of the column tones.
            if index >= 4 && harmonic.power(block) * 20.0 > power {
                return None; // a voiced sound, not a pure tone
            }
        }
        Digit::from_position(r, c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtmf::tone::ToneGenerator;

    fn detect(samples: &[i16]) -> String {
        let mut d = DtmfDetector::new(DetectorConfig::default());
        let mut out = Vec::new();
        for chunk in samples.chunks(160) {
            d.process(chunk, &mut out);
        }
        out.iter().map(|d| d.as_char()).collect()
    }

    fn tone(digit: char, ms: usize, dbm0: f32) -> Vec<i16> {
        let mut g = ToneGenerator::digit(8000, Digit::new(digit).unwrap(), dbm0);
        let mut v = Vec::new();
        g.fill(ms * 8, &mut v);
        v
    }

    #[test]
    fn every_digit_is_detected_once() {
        for c in "0123456789*#ABCD".chars() {
            let mut s = vec![0i16; 400];
            s.extend(tone(c, 80, -10.0));
            s.extend(vec![0i16; 400]);
            assert_eq!(detect(&s), c.to_string());
        }
    }
}
