//! The in-band detector against ITU-T Q.24's limits: frequency deviation (accept ±1.5 %,
//! reject ±3.5 %), level, twist, duration, inter-digit pause, noise, and talk-off on speech.

use sma_media::dtmf::detector::{DetectorConfig, DtmfDetector};
use sma_media::dtmf::tone::{amplitude, ToneGenerator};
use sma_media::dtmf::Digit;

const RATE: u32 = 8000;
const ALL: &str = "0123456789*#ABCD";

/// Deterministic white noise (xorshift), `dbm0` RMS.
struct Noise {
    state: u64,
    rms: f32,
}

impl Noise {
    fn new(dbm0: f32) -> Noise {
        // A sine's RMS is its amplitude / √2; noise at the same RMS has the same power.
        Noise {
            state: 0x2545_F491_4F6C_DD1D,
            rms: amplitude(dbm0) / std::f32::consts::SQRT_2,
        }
    }

    fn sample(&mut self) -> f32 {
        // Sum of 4 uniforms: close enough to Gaussian, variance 4/12.
        let mut sum = 0.0;
        for _ in 0..4 {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            sum += (self.state >> 11) as f32 / (1u64 << 53) as f32 - 0.5;
        }
        sum / (4.0f32 / 12.0).sqrt() * self.rms
    }

    fn add(&mut self, samples: &mut [i16]) {
        for s in samples {
            *s = (f32::from(*s) + self.sample()).clamp(-32768.0, 32767.0) as i16;
        }
    }
}

fn tone_pair(low: (f32, f32), high: (f32, f32), ms: u32) -> Vec<i16> {
    let mut g = ToneGenerator::new(RATE, (low.0, amplitude(low.1)), (high.0, amplitude(high.1)));
    let mut out = Vec::new();
    g.fill((ms * RATE / 1000) as usize, &mut out);
    out
}

fn silence(ms: u32) -> Vec<i16> {
    vec![0; (ms * RATE / 1000) as usize]
}

fn detect(samples: &[i16]) -> String {
    let mut d = DtmfDetector::new(DetectorConfig::default());
    let mut out = Vec::new();
    // Feed in RTP-sized frames.
    for chunk in samples.chunks(160) {
        d.process(chunk, &mut out);
    }
    out.iter().map(|d| d.as_char()).collect()
}

/// One press of `digit` with its frequencies scaled by (1+dl), (1+dh), levels in dBm0.
fn press(digit: char, dl: f32, dh: f32, low_dbm0: f32, high_dbm0: f32, ms: u32) -> Vec<i16> {
    let (l, h) = Digit::new(digit).unwrap().frequencies();
    let mut s = silence(60);
    s.extend(tone_pair(
        (l * (1.0 + dl), low_dbm0),
        (h * (1.0 + dh), high_dbm0),
        ms,
    ));
    s.extend(silence(60));
    s
}

#[test]
fn frequency_deviation_within_1_5_percent_is_accepted() {
    for c in ALL.chars() {
        for (dl, dh) in [
            (0.015, 0.015),
            (-0.015, -0.015),
            (0.015, -0.015),
            (-0.015, 0.015),
        ] {
            assert_eq!(
                detect(&press(c, dl, dh, -10.0, -10.0, 60)),
                c.to_string(),
                "{c} at {dl:+}/{dh:+}"
            );
        }
    }
}

#[test]
fn frequency_deviation_of_3_5_percent_is_rejected() {
    for c in ALL.chars() {
        for (dl, dh) in [(0.035, 0.0), (-0.035, 0.0), (0.0, 0.035), (0.0, -0.035)] {
            assert_eq!(
                detect(&press(c, dl, dh, -10.0, -10.0, 60)),
                "",
                "{c} at {dl:+}/{dh:+} must be rejected"
            );
        }
    }
}

#[test]
fn levels_down_to_minus_25_dbm0_are_accepted_and_below_minus_35_rejected() {
    for c in ALL.chars() {
        assert_eq!(
            detect(&press(c, 0.0, 0.0, -25.0, -25.0, 60)),
            c.to_string(),
            "{c}"
        );
        assert_eq!(
            detect(&press(c, 0.0, 0.0, 0.0, 0.0, 60)),
            c.to_string(),
            "{c} at 0 dBm0"
        );
        assert_eq!(detect(&press(c, 0.0, 0.0, -36.0, -36.0, 60)), "", "{c}");
    }
}

#[test]
fn twist_within_limits_is_accepted_beyond_rejected() {
    for c in ALL.chars() {
        // Standard twist: the low group up to 8 dB stronger; reverse: the high group up to 4.
        assert_eq!(
            detect(&press(c, 0.0, 0.0, -6.0, -13.0, 60)),
            c.to_string(),
            "{c} +7 dB"
        );
        assert_eq!(
            detect(&press(c, 0.0, 0.0, -9.0, -6.0, 60)),
            c.to_string(),
            "{c} -3 dB"
        );
        assert_eq!(
            detect(&press(c, 0.0, 0.0, -4.0, -14.0, 60)),
            "",
            "{c} +10 dB"
        );
        assert_eq!(
            detect(&press(c, 0.0, 0.0, -12.0, -6.0, 60)),
            "",
            "{c} -6 dB"
        );
    }
}

#[test]
fn tones_of_40_ms_are_detected_and_of_20_ms_are_not() {
    for c in ALL.chars() {
        assert_eq!(
            detect(&press(c, 0.0, 0.0, -10.0, -10.0, 40)),
            c.to_string(),
            "{c} 40 ms"
        );
        assert_eq!(
            detect(&press(c, 0.0, 0.0, -10.0, -10.0, 20)),
            "",
            "{c} 20 ms"
        );
    }
}

#[test]
fn a_40_ms_pause_separates_repeated_digits_and_a_10_ms_dropout_does_not() {
    let (l, h) = Digit::new('7').unwrap().frequencies();
    // One continuous tone with a stretch zeroed out, as a line or lost packets would do.
    let with_gap = |gap_ms: u32| {
        let mut s = silence(50);
        let start = s.len();
        s.extend(tone_pair((l, -10.0), (h, -10.0), 120 + gap_ms));
        let from = start + (60 * RATE / 1000) as usize;
        let to = from + (gap_ms * RATE / 1000) as usize;
        s[from..to].iter_mut().for_each(|x| *x = 0);
        s.extend(silence(50));
        s
    };
    assert_eq!(detect(&with_gap(40)), "77");
    assert_eq!(detect(&with_gap(10)), "7");
}

#[test]
fn a_dialled_sequence_at_the_limits_with_noise_is_detected() {
    // 50 ms tones, 50 ms pauses, -22 dBm0 per tone with 4 dB twist, noise 20 dB below the tones.
    let mut s = Vec::new();
    for c in "0123456789*#ABCD".chars() {
        let (l, h) = Digit::new(c).unwrap().frequencies();
        s.extend(silence(50));
        s.extend(tone_pair((l * 1.01, -20.0), (h * 0.99, -24.0), 50));
    }
    s.extend(silence(50));
    Noise::new(-42.0).add(&mut s);
    assert_eq!(detect(&s), ALL);
}

#[test]
fn noise_alone_and_single_tones_are_not_digits() {
    let mut s = silence(2000);
    Noise::new(-10.0).add(&mut s);
    assert_eq!(detect(&s), "");
    // A single frequency (dial tone, one half of a pair) is not a digit.
    let mut g = ToneGenerator::new(RATE, (697.0, amplitude(-5.0)), (1209.0, 0.0));
    let mut s = Vec::new();
    g.fill(8000, &mut s);
    assert_eq!(detect(&s), "");
    // Dial tone (350 + 440 Hz) and ringback (440 + 480 Hz).
    for (a, b) in [(350.0, 440.0), (440.0, 480.0)] {
        let s = tone_pair((a, -10.0), (b, -10.0), 2000);
        assert_eq!(detect(&s), "", "{a}+{b} Hz");
    }
}

/// Speech from eSpeak NG, resampled to 8 kHz: no digit may be detected (talk-off).
#[test]
fn speech_does_not_talk_off() {
    let espeak = ["/usr/bin/espeak-ng", "/usr/local/bin/espeak-ng"]
        .into_iter()
        .find(|p| std::path::Path::new(p).is_file())
        .expect("espeak-ng is missing: install the Debian package espeak-ng (./dev setup does)");
    let text =
        "Thank you for calling. Please enter your account number followed by the pound key. \
        For sales, press one. For support, press two. To hear these options again, press nine. \
        One two three four five six seven eight nine zero. Star. Pound. \
        She sells sea shells by the sea shore. The quick brown fox jumps over the lazy dog.";
    let mut total = 0;
    for voice in ["en-us", "en", "de", "fr", "es"] {
        for pitch in ["30", "50", "80"] {
            let out = std::process::Command::new(espeak)
                .args(["-v", voice, "-p", pitch, "--stdout", text])
                .output()
                .expect("run espeak-ng");
            assert!(out.status.success());
            let wav = out.stdout;
            // eSpeak writes 22050 Hz mono PCM16 after a 44-byte header.
            let pcm: Vec<i16> = wav[44..]
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect();
            // Resample 22050 -> 8000 by linear interpolation (plenty for a talk-off test), at
            // a loud level.
            let ratio = 22_050.0 / 8_000.0;
            let n = (pcm.len() as f64 / ratio) as usize;
            let s: Vec<i16> = (0..n)
                .map(|i| {
                    let x = i as f64 * ratio;
                    let j = x as usize;
                    let f = x - j as f64;
                    let a = f64::from(pcm[j]);
                    let b = f64::from(*pcm.get(j + 1).unwrap_or(&pcm[j]));
                    ((a + (b - a) * f) * 2.0).clamp(-32768.0, 32767.0) as i16
                })
                .collect();
            total += s.len();
            assert_eq!(detect(&s), "", "talk-off in voice {voice} pitch {pitch}");
        }
    }
    assert!(total > 8000 * 60, "at least a minute of speech was checked");
}
