//! What the caller hears: voice-activity detection and prompt matching on received audio.
//!
//! Both work on decoded PCM16 frames as the leg's jitter buffer delivers them. Prompt
//! matching compares at 8 kHz whatever the codec's rate: a coarse search over 10 ms energy
//! envelopes finds candidate offsets cheaply, then the waveform's normalised
//! cross-correlation around each candidate gives the score. A codec round trip of the same
//! file scores close to 1; unrelated speech scores near 0.

/// Level of a frame in dBov (0 is a full-scale square wave; digital silence is -100).
pub fn level_dbov(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return -100.0;
    }
    let energy: f64 = samples.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>();
    let rms = (energy / samples.len() as f64).sqrt();
    if rms < 1.0 {
        -100.0
    } else {
        20.0 * (rms / 32_768.0).log10()
    }
}

/// Averages blocks of `factor` samples: a cheap decimation to 8 kHz for matching (G.722 and
/// Opus legs decode at 16 and 48 kHz; both are whole multiples).
fn decimate(samples: &[i16], factor: usize) -> impl Iterator<Item = f32> + '_ {
    samples
        .chunks(factor.max(1))
        .map(move |c| c.iter().map(|s| f32::from(*s)).sum::<f32>() / c.len() as f32)
}

const BLOCK: usize = 80; // 10 ms at 8 kHz

fn envelope(samples: &[f32]) -> Vec<f32> {
    samples
        .chunks_exact(BLOCK)
        .map(|c| {
            let e = c.iter().map(|s| s * s).sum::<f32>() / BLOCK as f32;
            (e + 1.0).ln()
        })
        .collect()
}

/// Normalised correlation of `a` against `b` (equal lengths), mean removed.
fn ncc(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    if n == 0 {
        return 0.0;
    }
    let (ma, mb) = (
        a[..n].iter().sum::<f32>() / n as f32,
        b[..n].iter().sum::<f32>() / n as f32,
    );
    let (mut dot, mut ea, mut eb) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y) in a[..n].iter().zip(&b[..n]) {
        let (x, y) = (f64::from(x - ma), f64::from(y - mb));
        dot += x * y;
        ea += x * x;
        eb += y * y;
    }
    if ea == 0.0 || eb == 0.0 {
        0.0
    } else {
        (dot / (ea.sqrt() * eb.sqrt())) as f32
    }
}

/// Looks for one prompt in a growing stream of received audio.
pub struct PromptMatcher {
    needle: Vec<f32>,
    needle_envelope: Vec<f32>,
    heard: Vec<f32>,
    /// The envelope of `heard`, extended as whole blocks arrive.
    heard_envelope: Vec<f32>,
    /// The first envelope lag not yet scored: each lag is scored once, when its window is
    /// complete, so a long call costs no more per search than a short one.
    next_lag: usize,
    factor: usize,
    unchecked: usize,
    best: f32,
    best_at: usize,
}

impl PromptMatcher {
    /// `prompt` and the audio pushed later are at `rate` (8, 16 or 48 kHz).
    pub fn new(prompt: &[i16], rate: u32) -> PromptMatcher {
        let factor = (rate / 8000).max(1) as usize;
        let needle: Vec<f32> = decimate(prompt, factor).collect();
        let needle_envelope = envelope(&needle);
        PromptMatcher {
            needle,
            needle_envelope,
            heard: Vec::new(),
            heard_envelope: Vec::new(),
            next_lag: 0,
            factor,
            unchecked: 0,
            best: 0.0,
            best_at: 0,
        }
    }

    /// The prompt's length in ms.
    pub fn prompt_ms(&self) -> u64 {
        self.needle.len() as u64 / 8
    }

    pub fn push(&mut self, samples: &[i16]) {
        let before = self.heard.len();
        self.heard.extend(decimate(samples, self.factor));
        self.unchecked += self.heard.len() - before;
        let done = self.heard_envelope.len() * BLOCK;
        let whole = self.heard.len() / BLOCK * BLOCK;
        if whole > done {
            let more = envelope(&self.heard[done..whole]);
            self.heard_envelope.extend(more);
        }
    }

    /// The best score so far and where it was found (ms into the audio heard). Searches
    /// again once 200 ms of new audio has arrived.
    pub fn best(&mut self) -> (f32, u64) {
        if self.unchecked >= 1600 && self.heard.len() >= self.needle.len() {
            self.unchecked = 0;
            self.search();
        }
        (self.best, self.best_at as u64 / 8)
    }

    /// The best score over all the audio heard, searched now whatever arrived since the
    /// last search (the call ended: no more audio is coming).
    pub fn best_final(&mut self) -> (f32, u64) {
        if self.heard.len() >= self.needle.len() {
            self.unchecked = 0;
            self.search();
        }
        (self.best, self.best_at as u64 / 8)
    }

    fn search(&mut self) {
        let n = self.needle_envelope.len();
        if n == 0 || self.heard_envelope.len() < n {
            return;
        }
        let last_lag = self.heard_envelope.len() - n;
        if self.next_lag > last_lag {
            return;
        }
        // Lags whose waveform refinement (one block either side) still lacks audio are scored
        // again by the next search; every earlier lag is final.
        let complete = self
            .heard
            .len()
            .checked_sub(self.needle.len() + BLOCK)
            .map(|room| (room / BLOCK).min(last_lag));
        let mut candidates: Vec<(f32, usize)> = (self.next_lag..=last_lag)
            .map(|lag| {
                (
                    ncc(&self.heard_envelope[lag..lag + n], &self.needle_envelope),
                    lag,
                )
            })
            .collect();
        if let Some(complete) = complete {
            self.next_lag = self.next_lag.max(complete + 1);
        }
        candidates.sort_by(|a, b| b.0.total_cmp(&a.0));
        for (_, lag) in candidates.into_iter().take(3) {
            let centre = lag * BLOCK;
            let last = self.heard.len() - self.needle.len();
            let from = centre.saturating_sub(BLOCK);
            let to = (centre + BLOCK).min(last);
            for offset in from..=to {
                let score = ncc(
                    &self.heard[offset..offset + self.needle.len()],
                    &self.needle,
                );
                if score > self.best {
                    self.best = score;
                    self.best_at = offset;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sma_media::codec::AudioCodec;

    /// A deterministic speech-like signal: noise shaped by a syllable-rate envelope.
    fn babble(seed: u32, samples: usize) -> Vec<i16> {
        let mut x = seed;
        (0..samples)
            .map(|i| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let noise = ((x >> 16) as i16) as f32 / 32_768.0;
                let syllable = (i as f32 / 8000.0 * 4.0 * std::f32::consts::PI).sin().abs();
                (noise * syllable * 12_000.0) as i16
            })
            .collect()
    }

    fn round_trip(codec: AudioCodec, pcm: &[i16]) -> Vec<i16> {
        let mut enc = codec.encoder().unwrap();
        let mut dec = codec.decoder().unwrap();
        let frame = codec.samples_per_frame(20);
        let mut out = Vec::new();
        for chunk in pcm.chunks(frame) {
            let mut c = chunk.to_vec();
            c.resize(frame, 0);
            let mut payload = Vec::new();
            enc.encode(&c, &mut payload).unwrap();
            dec.decode(&payload, &mut out).unwrap();
        }
        out
    }

    #[test]
    fn finds_a_prompt_after_a_codec_round_trip_and_rejects_other_audio() {
        let prompt = babble(7, 8000);
        let mut heard = vec![0i16; 3_210];
        heard.extend(babble(99, 4000));
        heard.extend(&prompt);
        heard.extend(vec![0i16; 2000]);
        let heard = round_trip(AudioCodec::Pcmu, &heard);
        let mut m = PromptMatcher::new(&prompt, 8000);
        for frame in heard.chunks(160) {
            m.push(frame);
        }
        let (score, at) = m.best();
        assert!(score > 0.95, "score {score}");
        assert!((at as i64 - (3_210 + 4000) / 8).abs() <= 1, "at {at} ms");

        let mut other = PromptMatcher::new(&babble(1234, 8000), 8000);
        for frame in heard.chunks(160) {
            other.push(frame);
        }
        assert!(
            other.best().0 < 0.3,
            "unrelated audio scored {}",
            other.best().0
        );
    }

    /// Audio arriving frame by frame, with a search every 200 ms as a call does: the prompt
    /// is found where it starts, late in a long stream, each lag scored once.
    #[test]
    fn finds_a_prompt_late_in_audio_that_arrives_frame_by_frame() {
        let prompt = babble(5, 8000);
        let mut heard = babble(11, 8000 * 6 + 123);
        let at = heard.len();
        heard.extend(round_trip(AudioCodec::Pcmu, &prompt));
        heard.extend(babble(12, 4000));
        let mut m = PromptMatcher::new(&prompt, 8000);
        for frame in heard.chunks(160) {
            m.push(frame);
            m.best();
        }
        let (score, ms) = m.best();
        assert!(score > 0.95, "score {score}");
        assert_eq!(ms, at as u64 / 8);
        // Searches moved forward through the stream: only the lags of the last search period
        // (20 blocks) and the refinement margin are left for the next one.
        let last_lag = m.heard_envelope.len() - m.needle_envelope.len();
        assert!(m.next_lag + 23 >= last_lag, "{} of {last_lag}", m.next_lag);
    }

    #[test]
    fn matches_at_wideband_rates() {
        let narrow = babble(3, 8000);
        let wide: Vec<i16> = narrow.iter().flat_map(|s| [*s, *s]).collect();
        let mut heard = vec![0i16; 1000];
        heard.extend(&wide);
        let mut m = PromptMatcher::new(&wide, 16_000);
        m.push(&heard);
        assert!(m.best().0 > 0.99);
    }

    #[test]
    fn levels() {
        assert_eq!(level_dbov(&[0; 160]), -100.0);
        assert_eq!(level_dbov(&[]), -100.0);
        let full = level_dbov(&[32_767, -32_768].repeat(80));
        assert!(full.abs() < 0.01, "{full}");
        assert!((level_dbov(&[3_277; 160]) + 20.0).abs() < 0.1);
    }
}
