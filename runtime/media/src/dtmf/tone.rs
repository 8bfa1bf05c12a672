//! In-band tone generation: DTMF digits and arbitrary tone pairs, phase-continuous across
//! frames so a tone split into 20 ms packets has no clicks.

use super::Digit;
use std::f32::consts::TAU;

/// PCM16 amplitude of a sine at 0 dBm0 (G.711's digital milliwatt is 3.17 dB below full
/// scale).
pub const AMPLITUDE_0_DBM0: f32 = 22_786.0;

/// The amplitude of a sine at `dbm0`.
pub fn amplitude(dbm0: f32) -> f32 {
    AMPLITUDE_0_DBM0 * 10f32.powf(dbm0 / 20.0)
}

/// Generates a pair of sines.
#[derive(Debug, Clone)]
pub struct ToneGenerator {
    sample_rate: f32,
    tones: [(f32, f32); 2], // (frequency, amplitude)
    phase: [f32; 2],
}

impl ToneGenerator {
    pub fn new(sample_rate: u32, low: (f32, f32), high: (f32, f32)) -> ToneGenerator {
        ToneGenerator {
            sample_rate: sample_rate as f32,
            tones: [low, high],
            phase: [0.0; 2],
        }
    }

    /// A DTMF digit with each frequency at `dbm0` (typical senders: -7 to -4 dBm0 per tone).
    pub fn digit(sample_rate: u32, digit: Digit, dbm0: f32) -> ToneGenerator {
        let (low, high) = digit.frequencies();
        let a = amplitude(dbm0);
        ToneGenerator::new(sample_rate, (low, a), (high, a))
    }

    /// Appends `count` samples.
    pub fn fill(&mut self, count: usize, out: &mut Vec<i16>) {
        out.reserve(count);
        for _ in 0..count {
            let mut v = 0.0;
            for (i, (freq, amp)) in self.tones.iter().enumerate() {
                v += amp * self.phase[i].sin();
                self.phase[i] += TAU * freq / self.sample_rate;
                if self.phase[i] > TAU {
                    self.phase[i] -= TAU;
                }
            }
            out.push(v.clamp(-32_768.0, 32_767.0) as i16);
        }
    }
}
