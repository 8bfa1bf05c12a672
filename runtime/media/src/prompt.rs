//! Prompts: audio files decoded once, resampled to the codec's rate, encoded once per
//! (content, codec), and shared by every call that plays them.
//!
//! Files are decoded with `symphonia` (WAV, MP3, Ogg/Vorbis, FLAC), mixed down to mono and
//! resampled with `rubato`. The cache is keyed by the SHA-256 of the file's bytes (not its
//! name, so a replaced file is a new prompt) and the codec, holds a bounded number of
//! entries, and decodes each entry once even when a thousand calls ask for it at the same
//! moment (the others wait for that one decode).

use crate::codec::AudioCodec;
use crate::pacer::{Frame, FrameSource};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

/// Longest prompt accepted, so a hostile file cannot exhaust memory.
pub const MAX_PROMPT_SECONDS: u32 = 600;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PromptError {
    #[error("unsupported or unrecognised audio format: {0}")]
    Unsupported(String),
    #[error("corrupt audio file: {0}")]
    Corrupt(String),
    #[error("the file has no audio track")]
    NoAudioTrack,
    #[error("the file decodes to no audio")]
    Empty,
    #[error("audio longer than {MAX_PROMPT_SECONDS} s")]
    TooLong,
    #[error("unsupported sample rate {0} Hz")]
    SampleRate(u32),
    #[error("cannot resample: {0}")]
    Resample(String),
    #[error("cannot encode: {0}")]
    Encode(String),
    #[error("speech synthesis failed: {0}")]
    Synthesis(String),
}

/// Decodes a whole file to mono f32 samples and its sample rate.
pub fn decode(bytes: Vec<u8>) -> Result<(Vec<f32>, u32), PromptError> {
    let source = MediaSourceStream::new(Box::new(std::io::Cursor::new(bytes)), Default::default());
    let mut format = symphonia::default::get_probe()
        .probe(
            &Hint::new(),
            source,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| PromptError::Unsupported(e.to_string()))?;
    let track = format
        .default_track(TrackType::Audio)
        .ok_or(PromptError::NoAudioTrack)?;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or(PromptError::NoAudioTrack)?
        .clone();
    let track_id = track.id;
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
        .map_err(|e| PromptError::Unsupported(e.to_string()))?;
    let mut mono = Vec::new();
    let mut rate = params.sample_rate.unwrap_or(0);
    let mut interleaved: Vec<f32> = Vec::new();
    loop {
        let packet = match format.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                break
            }
            Err(e) => return Err(PromptError::Corrupt(e.to_string())),
        };
        if packet.track_id != track_id {
            continue;
        }
        let audio = match decoder.decode(&packet) {
            Ok(a) => a,
            // A damaged packet is skipped, as players do; a file of nothing but is Empty.
            Err(SymphoniaError::DecodeError(_)) => continue,
            Err(e) => return Err(PromptError::Corrupt(e.to_string())),
        };
        rate = audio.spec().rate();
        let channels = audio.spec().channels().count().max(1);
        interleaved.resize(audio.samples_interleaved(), 0.0);
        audio.copy_to_slice_interleaved(&mut interleaved[..]);
        mono.extend(
            interleaved
                .chunks_exact(channels)
                .map(|frame| frame.iter().sum::<f32>() / channels as f32),
        );
        if rate > 0 && mono.len() as u64 > u64::from(MAX_PROMPT_SECONDS) * u64::from(rate) {
            return Err(PromptError::TooLong);
        }
    }
    if mono.is_empty() {
        return Err(PromptError::Empty);
    }
    if !(4_000..=192_000).contains(&rate) {
        return Err(PromptError::SampleRate(rate));
    }
    Ok((mono, rate))
}

/// Resamples mono f32 audio.
pub fn resample(samples: &[f32], from: u32, to: u32) -> Result<Vec<f32>, PromptError> {
    use rubato::audioadapter_buffers::owned::InterleavedOwned;
    use rubato::{Fft, FixedSync, Resampler};
    if from == to {
        return Ok(samples.to_vec());
    }
    let mut resampler = Fft::<f32>::new(from as usize, to as usize, 1024, 1, FixedSync::Input)
        .map_err(|e| PromptError::Resample(e.to_string()))?;
    let input = InterleavedOwned::new_from(samples.to_vec(), 1, samples.len())
        .map_err(|e| PromptError::Resample(e.to_string()))?;
    let out = resampler
        .process_all(&input, samples.len(), None)
        .map_err(|e| PromptError::Resample(e.to_string()))?;
    Ok(out.take_data())
}

/// A prompt ready to send: one encoded payload per frame.
#[derive(Debug)]
pub struct EncodedPrompt {
    pub codec: AudioCodec,
    pub ptime_ms: u32,
    frames: Vec<Box<[u8]>>,
    /// One encoded frame of silence, for pauses between repeats.
    silence: Box<[u8]>,
    /// The decoded samples at the codec's rate (for recordings, bridging, tests).
    pub samples: Arc<[i16]>,
}

impl EncodedPrompt {
    pub fn frames(&self) -> usize {
        self.frames.len()
    }

    pub fn frame(&self, index: usize) -> &[u8] {
        &self.frames[index]
    }

    /// Every frame's payload, concatenated (for fixed-size codecs, the whole stream).
    pub fn payload(&self) -> Vec<u8> {
        self.frames.concat()
    }

    /// Decodes, resamples and encodes a file for a codec at `ptime_ms`.
    pub fn from_file_bytes(
        bytes: Vec<u8>,
        codec: AudioCodec,
        ptime_ms: u32,
    ) -> Result<EncodedPrompt, PromptError> {
        let (mono, rate) = decode(bytes)?;
        let resampled = resample(&mono, rate, codec.sample_rate())?;
        let samples: Arc<[i16]> = resampled
            .iter()
            .map(|s| (s * 32_767.0).clamp(-32_768.0, 32_767.0) as i16)
            .collect();
        EncodedPrompt::from_samples(samples, codec, ptime_ms)
    }

    /// Encodes PCM16 at the codec's rate (synthesized speech takes this path).
    pub fn from_samples(
        samples: Arc<[i16]>,
        codec: AudioCodec,
        ptime_ms: u32,
    ) -> Result<EncodedPrompt, PromptError> {
        let frame = codec.samples_per_frame(ptime_ms);
        let mut encoder = codec
            .encoder()
            .map_err(|e| PromptError::Encode(e.to_string()))?;
        let mut frames = Vec::with_capacity(samples.len() / frame.max(1) + 1);
        let mut pcm = Vec::with_capacity(frame);
        let mut out = Vec::with_capacity(1_500);
        for chunk in samples.chunks(frame.max(1)) {
            // Pad the last frame with silence.
            pcm.clear();
            pcm.extend_from_slice(chunk);
            pcm.resize(frame, 0);
            out.clear();
            encoder
                .encode(&pcm, &mut out)
                .map_err(|e| PromptError::Encode(e.to_string()))?;
            frames.push(out.clone().into_boxed_slice());
        }
        out.clear();
        pcm.clear();
        pcm.resize(frame, 0);
        encoder
            .encode(&pcm, &mut out)
            .map_err(|e| PromptError::Encode(e.to_string()))?;
        Ok(EncodedPrompt {
            codec,
            ptime_ms,
            frames,
            silence: out.into_boxed_slice(),
            samples,
        })
    }
}

type Slot = Arc<OnceLock<Result<Arc<EncodedPrompt>, PromptError>>>;
/// Content hash and codec.
type Key = ([u8; 32], AudioCodec);

#[derive(Default)]
struct Entries {
    map: HashMap<Key, Slot>,
    /// Insertion order, for eviction.
    order: VecDeque<Key>,
}

/// Prompts shared across calls, bounded by entry count (oldest evicted first).
pub struct PromptCache {
    capacity: usize,
    ptime_ms: u32,
    entries: Mutex<Entries>,
    /// Decodes performed (a cold cache) and lookups served from the cache.
    pub decodes: AtomicU64,
    pub hits: AtomicU64,
}

impl PromptCache {
    pub fn new(capacity: usize, ptime_ms: u32) -> PromptCache {
        PromptCache {
            capacity: capacity.max(1),
            ptime_ms,
            entries: Mutex::new(Entries::default()),
            decodes: AtomicU64::new(0),
            hits: AtomicU64::new(0),
        }
    }

    /// The encoded prompt for a file's bytes. Concurrent callers for the same content share
    /// one decode.
    pub fn get(&self, bytes: &[u8], codec: AudioCodec) -> Result<Arc<EncodedPrompt>, PromptError> {
        self.get_with(bytes, codec, || decode(bytes.to_vec()))
    }

    /// The encoded audio for `identity` (file bytes, or a description of synthesized speech),
    /// produced by `produce` (mono f32 and its rate) on a miss.
    pub fn get_with(
        &self,
        identity: &[u8],
        codec: AudioCodec,
        produce: impl FnOnce() -> Result<(Vec<f32>, u32), PromptError>,
    ) -> Result<Arc<EncodedPrompt>, PromptError> {
        let key: [u8; 32] = Sha256::digest(identity).into();
        let slot = {
            let mut guard = match self.entries.lock() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            let Entries { map, order } = &mut *guard;
            match map.get(&(key, codec)) {
                Some(slot) => {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    slot.clone()
                }
                None => {
                    let slot: Slot = Arc::new(OnceLock::new());
                    map.insert((key, codec), slot.clone());
                    order.push_back((key, codec));
                    while order.len() > self.capacity {
                        if let Some(old) = order.pop_front() {
                            map.remove(&old);
                        }
                    }
                    slot
                }
            }
        };
        let ptime_ms = self.ptime_ms;
        slot.get_or_init(|| {
            self.decodes.fetch_add(1, Ordering::Relaxed);
            let (mono, rate) = produce()?;
            let resampled = resample(&mono, rate, codec.sample_rate())?;
            let samples: Arc<[i16]> = resampled
                .iter()
                .map(|s| (s * 32_767.0).clamp(-32_768.0, 32_767.0) as i16)
                .collect();
            EncodedPrompt::from_samples(samples, codec, ptime_ms).map(Arc::new)
        })
        .clone()
    }

    pub fn len(&self) -> usize {
        self.entries.lock().map(|g| g.map.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Plays an encoded prompt `repeat` times with `pause_ms` of silence between repeats. Barge-in
/// is the caller stopping the stream (see [`StreamHandle::stop`](crate::pacer::StreamHandle)).
pub struct PromptSource {
    prompt: Arc<EncodedPrompt>,
    payload_type: u8,
    repeat: u32,
    pause_frames: usize,
    played: u32,
    frame: usize,
    pausing: usize,
    first: bool,
}

impl PromptSource {
    pub fn new(
        prompt: Arc<EncodedPrompt>,
        payload_type: u8,
        repeat: u32,
        pause_ms: u32,
        ptime_ms: u32,
    ) -> PromptSource {
        PromptSource {
            prompt,
            payload_type,
            repeat: repeat.max(1),
            pause_frames: (pause_ms / ptime_ms.max(1)) as usize,
            played: 0,
            frame: 0,
            pausing: 0,
            first: true,
        }
    }
}

impl FrameSource for PromptSource {
    fn next_frame(&mut self, _next_timestamp: u32, payload: &mut Vec<u8>) -> Frame {
        let prompt = Arc::clone(&self.prompt);
        let samples = prompt.codec.clock_per_frame(prompt.ptime_ms);
        let silence = |payload: &mut Vec<u8>, pt| {
            payload.extend_from_slice(&prompt.silence);
            Frame::Audio {
                payload_type: pt,
                marker: false,
                samples,
            }
        };
        if self.pausing > 0 {
            self.pausing -= 1;
            return silence(payload, self.payload_type);
        }
        if self.frame >= prompt.frames() {
            self.played += 1;
            if self.played >= self.repeat {
                return Frame::End;
            }
            self.frame = 0;
            if self.pause_frames > 0 {
                self.pausing = self.pause_frames - 1;
                return silence(payload, self.payload_type);
            }
        }
        payload.extend_from_slice(prompt.frame(self.frame));
        self.frame += 1;
        Frame::Audio {
            payload_type: self.payload_type,
            marker: std::mem::take(&mut self.first),
            samples,
        }
    }
}
