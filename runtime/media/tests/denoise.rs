//! VoiceFocus: the denoiser raises the signal-to-noise ratio of speech mixed with noise, as
//! a telephone leg delivers it (8 kHz, 20 ms frames).
//!
//! The speech is eSpeak NG's; the noise is a deterministic wideband hiss (a fixed-seed
//! generator, so the figure is the same every run). The SNR after denoising treats whatever
//! is not the speech — residual noise and the denoiser's own distortion — as noise: the
//! output is aligned with the clean speech (the pipeline's delay found by cross-correlation),
//! scaled by the best gain, and the remainder counted.

use sma_media::denoise::Denoiser;
use sma_media::tts::espeak::Espeak;
use sma_media::tts::{SpeechRequest, Synthesizer, TextType};

/// A small xorshift generator: noise that is the same on every run.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

fn energy(x: &[f64]) -> f64 {
    x.iter().map(|v| v * v).sum()
}

/// The delay (in samples, up to `max`) at which `output` best matches `clean`.
fn delay(clean: &[f64], output: &[f64], max: usize) -> usize {
    (0..max)
        .max_by(|&a, &b| {
            let score = |d: usize| -> f64 {
                clean
                    .iter()
                    .zip(output.iter().skip(d))
                    .map(|(c, o)| c * o)
                    .sum()
            };
            score(a).total_cmp(&score(b))
        })
        .unwrap_or(0)
}

/// SNR in dB of `output` as an estimate of `clean`.
fn snr(clean: &[f64], output: &[f64]) -> f64 {
    let gain = clean.iter().zip(output).map(|(c, o)| c * o).sum::<f64>() / energy(clean);
    let residual: Vec<f64> = clean
        .iter()
        .zip(output)
        .map(|(c, o)| o - gain * c)
        .collect();
    10.0 * (gain * gain * energy(clean) / energy(&residual)).log10()
}

#[test]
fn voice_focus_raises_the_snr_of_noisy_speech() {
    let speech = Espeak
        .synthesize(&SpeechRequest {
            text: "Thank you for calling. Please hold while we connect you to the next available agent. Your call is important to us.".into(),
            text_type: TextType::Text,
            voice_id: None,
            language_code: None,
        })
        .expect("eSpeak NG speaks");
    let rate = 8000;
    let clean: Vec<f64> = sma_media::prompt::resample(
        &speech
            .samples
            .iter()
            .map(|s| f32::from(*s) / 32_768.0)
            .collect::<Vec<_>>(),
        speech.sample_rate,
        rate,
    )
    .expect("resample")
    .iter()
    .map(|s| f64::from(*s) * 32_768.0 * 0.5)
    .collect();
    // Hiss scaled for 5 dB SNR over the whole utterance.
    let mut noise = Noise(0x9E37_79B9_7F4A_7C15);
    let raw: Vec<f64> = clean.iter().map(|_| noise.next()).collect();
    let scale = (energy(&clean) / energy(&raw) / 10f64.powf(0.5)).sqrt();
    let noisy: Vec<f64> = clean.iter().zip(&raw).map(|(c, n)| c + n * scale).collect();
    let before = snr(&clean, &noisy);

    // Through the denoiser in 20 ms frames, plus 200 ms of flush for its delay.
    let mut denoiser = Denoiser::new(rate);
    let mut output = Vec::new();
    let frame = rate as usize / 50;
    let padded: Vec<i16> = noisy
        .iter()
        .map(|v| v.round().clamp(-32_768.0, 32_767.0) as i16)
        .chain(std::iter::repeat_n(0, rate as usize / 5))
        .collect();
    for chunk in padded.chunks(frame) {
        let mut samples = chunk.to_vec();
        denoiser.process(&mut samples);
        output.extend(samples.iter().map(|s| f64::from(*s)));
    }
    let lag = delay(&clean, &output, rate as usize / 10);
    let aligned = &output[lag..lag + clean.len()];
    let after = snr(&clean, aligned);
    println!(
        "VoiceFocus on 8 kHz speech with hiss: SNR {before:.1} dB -> {after:.1} dB ({:+.1} dB), delay {} ms",
        after - before,
        lag * 1000 / rate as usize
    );
    assert!(
        (before - 5.0).abs() < 0.5,
        "the mix is at 5 dB: {before:.1}"
    );
    assert!(
        after - before >= 3.0,
        "VoiceFocus should gain at least 3 dB: {before:.1} -> {after:.1}"
    );
    assert!(lag * 1000 / rate as usize <= 60, "delay {lag} samples");
}
