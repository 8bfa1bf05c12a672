//! Signal helpers shared by the media tests.
#![allow(dead_code)]

/// A sine at `freq` Hz, amplitude 10,000, `n` samples at `rate`.
pub fn sine(freq: f32, rate: u32, n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| ((std::f32::consts::TAU * freq * i as f32 / rate as f32).sin() * 10_000.0) as i16)
        .collect()
}

/// Power of one frequency in `samples` (Goertzel), normalised by length.
pub fn power(samples: &[i16], freq: f32, rate: f32) -> f32 {
    let coeff = 2.0 * (std::f32::consts::TAU * freq / rate).cos();
    let (mut s1, mut s2) = (0.0f32, 0.0f32);
    for x in samples {
        let s0 = f32::from(*x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - coeff * s1 * s2) / samples.len() as f32
}
