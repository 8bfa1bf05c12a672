//! Noise suppression for a leg's received audio (the `VoiceFocus` action), with
//! `nnnoiseless`, a pure-Rust port of RNNoise.
//!
//! RNNoise works on 10 ms frames at 48 kHz. Telephony audio arrives at 8 or 16 kHz in 20 ms
//! frames, so a [`Denoiser`] resamples it up, denoises whole 480-sample frames as they
//! fill, and resamples back, giving out as many samples as it takes. The first samples out are
//! silence while the pipeline fills (the resamplers' delay plus one RNNoise frame, about
//! 15 ms at 8 kHz); after that the audio is the input's, that much later.

use crate::resample::StreamResampler;
use nnnoiseless::DenoiseState;
use std::collections::VecDeque;

/// RNNoise's rate and frame.
const RATE: u32 = 48_000;
const FRAME: usize = DenoiseState::FRAME_SIZE;

pub struct Denoiser {
    state: Box<DenoiseState<'static>>,
    /// `None` when the audio is at 48 kHz already.
    up: Option<StreamResampler>,
    down: Option<StreamResampler>,
    /// 48 kHz samples waiting for a whole frame.
    pending: Vec<f32>,
    frame_in: Vec<f32>,
    frame_out: Vec<f32>,
    upsampled: Vec<i16>,
    denoised: Vec<i16>,
    /// Denoised audio at the leg's rate, not yet given out.
    ready: VecDeque<i16>,
    /// RNNoise's first frame out is a transient; it is dropped.
    first: bool,
}

impl Denoiser {
    /// A denoiser for audio at `rate` Hz (8, 16 or 48 kHz).
    pub fn new(rate: u32) -> Denoiser {
        // 20 ms chunks: the resamplers take any length and keep what does not fill one.
        let resampler = |from: u32, to: u32| {
            (from != to)
                .then(|| StreamResampler::new(from, to, (from / 50) as usize).ok())
                .flatten()
        };
        Denoiser {
            state: DenoiseState::new(),
            up: resampler(rate, RATE),
            down: resampler(RATE, rate),
            pending: Vec::with_capacity(2 * FRAME),
            frame_in: vec![0.0; FRAME],
            frame_out: vec![0.0; FRAME],
            upsampled: Vec::new(),
            denoised: Vec::new(),
            ready: VecDeque::new(),
            first: true,
        }
    }

    /// Replaces `samples` with as many denoised samples (delayed by the pipeline).
    pub fn process(&mut self, samples: &mut [i16]) {
        self.upsampled.clear();
        match self.up.as_mut() {
            Some(up) => {
                if up.process(samples, &mut self.upsampled).is_err() {
                    return;
                }
            }
            None => self.upsampled.extend_from_slice(samples),
        }
        self.pending
            .extend(self.upsampled.iter().map(|&s| f32::from(s)));
        let mut taken = 0;
        while self.pending.len() - taken >= FRAME {
            self.frame_in
                .copy_from_slice(&self.pending[taken..taken + FRAME]);
            taken += FRAME;
            self.state
                .process_frame(&mut self.frame_out, &self.frame_in);
            if std::mem::take(&mut self.first) {
                continue;
            }
            self.denoised.clear();
            self.denoised.extend(
                self.frame_out
                    .iter()
                    .map(|&s| s.clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16),
            );
            match self.down.as_mut() {
                Some(down) => {
                    let mut out = Vec::with_capacity(self.denoised.len());
                    if down.process(&self.denoised, &mut out).is_ok() {
                        self.ready.extend(out);
                    }
                }
                None => self.ready.extend(self.denoised.iter().copied()),
            }
        }
        self.pending.drain(..taken);
        // Give out exactly as much as came in: silence until the pipeline has filled.
        let have = self.ready.len();
        let missing = samples.len().saturating_sub(have);
        for (i, s) in samples.iter_mut().enumerate() {
            *s = if i < missing {
                0
            } else {
                self.ready.pop_front().unwrap_or(0)
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic white-ish noise.
    fn noise(n: usize, seed: &mut u32, amplitude: f32) -> Vec<f32> {
        (0..n)
            .map(|_| {
                *seed ^= *seed << 13;
                *seed ^= *seed >> 17;
                *seed ^= *seed << 5;
                (*seed as f32 / u32::MAX as f32 - 0.5) * 2.0 * amplitude
            })
            .collect()
    }

    #[test]
    fn gives_out_as_much_as_it_takes_and_quiets_noise() {
        let mut d = Denoiser::new(8000);
        let mut seed = 7;
        let mut energy_in = 0.0f64;
        let mut energy_out = 0.0f64;
        for i in 0..200 {
            let mut frame: Vec<i16> = noise(160, &mut seed, 3000.0)
                .into_iter()
                .map(|s| s as i16)
                .collect();
            let before: f64 = frame.iter().map(|&s| f64::from(s).powi(2)).sum();
            d.process(&mut frame);
            assert_eq!(frame.len(), 160);
            // Past the first second (the model adapts), compare energies.
            if i >= 50 {
                energy_in += before;
                energy_out += frame.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>();
            }
        }
        assert!(
            energy_out < energy_in / 4.0,
            "stationary noise is attenuated by more than 6 dB: in {energy_in:.0}, out {energy_out:.0}"
        );
    }
}
