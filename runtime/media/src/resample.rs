//! Streaming resampling between 8, 16 and 48 kHz (rubato), for audio that crosses legs of
//! different codecs: a G.711 caller bridged to an Opus leg, recordings at one rate, in-band
//! detection at 8 kHz. Frames go in as they arrive; output follows after the resampler's delay.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot resample {from} Hz to {to} Hz: {why}")]
pub struct ResampleError {
    pub from: u32,
    pub to: u32,
    pub why: String,
}

pub struct StreamResampler {
    from: u32,
    to: u32,
    inner: Option<Fft<f32>>,
    pending: Vec<f32>,
}

impl StreamResampler {
    /// `chunk` is the input frames per step (e.g. one 20 ms frame at `from`).
    pub fn new(from: u32, to: u32, chunk: usize) -> Result<StreamResampler, ResampleError> {
        let inner = if from == to {
            None
        } else {
            Some(
                Fft::<f32>::new(
                    from as usize,
                    to as usize,
                    chunk.max(1),
                    1,
                    FixedSync::Input,
                )
                .map_err(|e| ResampleError {
                    from,
                    to,
                    why: e.to_string(),
                })?,
            )
        };
        Ok(StreamResampler {
            from,
            to,
            inner,
            pending: Vec::new(),
        })
    }

    /// Output frames that lag behind the input (the filter's delay).
    pub fn delay(&self) -> usize {
        self.inner.as_ref().map(|r| r.output_delay()).unwrap_or(0)
    }

    /// Resamples what is available, appending to `out`.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) -> Result<(), ResampleError> {
        let Some(inner) = self.inner.as_mut() else {
            out.extend_from_slice(input);
            return Ok(());
        };
        self.pending
            .extend(input.iter().map(|s| f32::from(*s) / 32_768.0));
        loop {
            let need = inner.input_frames_next();
            if self.pending.len() < need {
                return Ok(());
            }
            let err = |why: String| ResampleError {
                from: self.from,
                to: self.to,
                why,
            };
            let adapter = InterleavedSlice::new(&self.pending[..need], 1, need)
                .map_err(|e| err(e.to_string()))?;
            let output = inner
                .process(&adapter, None)
                .map_err(|e| err(e.to_string()))?;
            out.extend(
                output
                    .take_data()
                    .iter()
                    .map(|s| (s * 32_768.0).clamp(-32_768.0, 32_767.0) as i16),
            );
            self.pending.drain(..need);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f32, rate: u32, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                ((std::f32::consts::TAU * freq * i as f32 / rate as f32).sin() * 10_000.0) as i16
            })
            .collect()
    }

    fn power(samples: &[i16], freq: f32, rate: f32) -> f32 {
        let coeff = 2.0 * (std::f32::consts::TAU * freq / rate).cos();
        let (mut s1, mut s2) = (0.0f32, 0.0f32);
        for x in samples {
            let s0 = f32::from(*x) + coeff * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        (s1 * s1 + s2 * s2 - coeff * s1 * s2) / samples.len() as f32
    }

    #[test]
    fn frames_in_frames_out_at_the_new_rate_with_the_pitch_kept() {
        for (from, to) in [
            (8_000, 16_000),
            (8_000, 48_000),
            (48_000, 8_000),
            (16_000, 8_000),
            (16_000, 48_000),
        ] {
            let mut r = StreamResampler::new(from, to, (from / 50) as usize).unwrap();
            let input = sine(1_000.0, from, from as usize); // one second
            let mut out = Vec::new();
            for frame in input.chunks((from / 50) as usize) {
                r.process(frame, &mut out).unwrap();
            }
            // One second in gives one second out (minus nothing: FixedSync::Input emits as it goes).
            let expected = to as usize;
            assert!(
                out.len().abs_diff(expected) <= to as usize / 50,
                "{from}->{to}: {}",
                out.len()
            );
            let body = &out[out.len() / 4..out.len() * 3 / 4];
            let at = power(body, 1_000.0, to as f32);
            assert!(at > 100.0 * power(body, 700.0, to as f32), "{from}->{to}");
            assert!(at > 100.0 * power(body, 1_500.0, to as f32), "{from}->{to}");
        }
        let mut same = StreamResampler::new(8_000, 8_000, 160).unwrap();
        let mut out = Vec::new();
        same.process(&[1, 2, 3], &mut out).unwrap();
        assert_eq!(out, vec![1, 2, 3]);
        assert_eq!(same.delay(), 0);
    }
}
