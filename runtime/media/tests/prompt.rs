//! Prompts: every supported format decodes to the right pitch at 8 kHz, bad files get typed
//! errors, the cache decodes once for many simultaneous callers, and playback repeats and
//! pauses as asked.

mod common;

use common::power;
use sma_media::codec::AudioCodec;
use sma_media::pacer::{Frame, FrameSource};
use sma_media::prompt::{decode, EncodedPrompt, PromptCache, PromptError, PromptSource};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A 440 Hz tone file made by SoX (Debian `sox`, `libsox-fmt-mp3`; ./dev setup installs them).
fn sox_tone(dir: &Path, name: &str, rate: u32, channels: u32) -> Vec<u8> {
    let path = dir.join(name);
    let status = std::process::Command::new("sox")
        .args(["-n", "-r", &rate.to_string(), "-c", &channels.to_string()])
        .arg(&path)
        .args(["synth", "1", "sine", "440", "vol", "0.5"])
        .status()
        .expect(
            "sox is missing: install the Debian packages sox and libsox-fmt-mp3 (./dev setup does)",
        );
    assert!(status.success(), "sox failed to write {name}");
    std::fs::read(path).unwrap()
}

fn wav(rate: u32, channels: u16, seconds: f32, freq: f32) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut cursor = std::io::Cursor::new(Vec::new());
    {
        let mut w = hound::WavWriter::new(&mut cursor, spec).unwrap();
        for i in 0..(rate as f32 * seconds) as u32 {
            let v =
                ((std::f32::consts::TAU * freq * i as f32 / rate as f32).sin() * 16_000.0) as i16;
            for _ in 0..channels {
                w.write_sample(v).unwrap();
            }
        }
        w.finalize().unwrap();
    }
    cursor.into_inner()
}

fn assert_is_440_at_8k(p: &EncodedPrompt, what: &str) {
    let n = p.samples.len();
    assert!(
        (7_500..=8_700).contains(&n),
        "{what}: {n} samples for 1 s at 8 kHz"
    );
    let mid = &p.samples[1000..n - 1000];
    let at = power(mid, 440.0, 8000.0);
    for other in [300.0, 600.0, 880.0, 1200.0] {
        assert!(
            at > power(mid, other, 8000.0) * 100.0,
            "{what}: 440 Hz dominates {other} Hz"
        );
    }
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sma-prompt-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn every_format_decodes_to_the_right_pitch_at_8_khz() {
    let dir = tempdir();
    let files = vec![
        ("wav 16 kHz stereo", wav(16_000, 2, 1.0, 440.0)),
        ("wav 8 kHz mono", wav(8_000, 1, 1.0, 440.0)),
        ("wav 44.1 kHz", sox_tone(&dir, "t.wav", 44_100, 1)),
        ("mp3 44.1 kHz stereo", sox_tone(&dir, "t.mp3", 44_100, 2)),
        ("ogg vorbis 22.05 kHz", sox_tone(&dir, "t.ogg", 22_050, 1)),
        ("flac 48 kHz", sox_tone(&dir, "t.flac", 48_000, 1)),
    ];
    for (what, bytes) in files {
        for codec in [AudioCodec::Pcmu, AudioCodec::Pcma] {
            let p = EncodedPrompt::from_file_bytes(bytes.clone(), codec, 20)
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_is_440_at_8k(&p, what);
            assert_eq!(p.payload().len() % 160, 0, "whole 20 ms frames");
        }
    }
}

#[test]
fn bad_files_get_typed_errors() {
    assert!(matches!(
        decode(b"not audio at all".to_vec()),
        Err(PromptError::Unsupported(_))
    ));
    assert!(matches!(
        decode(Vec::new()),
        Err(PromptError::Unsupported(_))
    ));
    // A WAV header with no samples.
    let empty = wav(8_000, 1, 0.0, 440.0);
    assert!(matches!(
        decode(empty),
        Err(PromptError::Empty | PromptError::Corrupt(_))
    ));
    // Every truncation and some corruption of each format: an error or audio, never a panic.
    let dir = tempdir();
    for bytes in [
        wav(16_000, 1, 0.2, 440.0),
        sox_tone(&dir, "c.mp3", 8_000, 1),
        sox_tone(&dir, "c.ogg", 8_000, 1),
        sox_tone(&dir, "c.flac", 8_000, 1),
    ] {
        let step = (bytes.len() / 97).max(1);
        for end in (0..bytes.len()).step_by(step) {
            let _ = decode(bytes[..end].to_vec());
        }
        for i in (0..bytes.len()).step_by(step) {
            let mut b = bytes.clone();
            b[i] ^= 0xA5;
            let _ = decode(b);
        }
    }
}

#[test]
fn a_thousand_simultaneous_callers_share_one_decode() {
    let cache = Arc::new(PromptCache::new(16, 20));
    let bytes = Arc::new(wav(16_000, 1, 2.0, 440.0));
    let threads: Vec<_> = (0..100)
        .map(|_| {
            let (cache, bytes) = (cache.clone(), bytes.clone());
            std::thread::spawn(move || {
                (0..10)
                    .map(|_| cache.get(&bytes, AudioCodec::Pcmu).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let prompts: Vec<Arc<EncodedPrompt>> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert_eq!(prompts.len(), 1000);
    assert_eq!(cache.decodes.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert!(
        prompts.iter().all(|p| Arc::ptr_eq(p, &prompts[0])),
        "one shared copy"
    );
    // Another codec is another entry; capacity bounds the cache.
    cache.get(&bytes, AudioCodec::Pcma).unwrap();
    assert_eq!(cache.decodes.load(std::sync::atomic::Ordering::Relaxed), 2);
    for f in 0..20 {
        cache
            .get(
                &wav(8_000, 1, 0.1, 300.0 + f as f32 * 10.0),
                AudioCodec::Pcmu,
            )
            .unwrap();
    }
    assert_eq!(cache.len(), 16);
    // A bad file's error is cached as such and reported to each caller.
    assert!(cache.get(b"junk", AudioCodec::Pcmu).is_err());
}

#[test]
fn playback_repeats_with_pauses_then_ends() {
    let samples: Arc<[i16]> = vec![1000i16; 800].into(); // 5 frames
    let prompt = Arc::new(EncodedPrompt::from_samples(samples, AudioCodec::Pcmu, 20).unwrap());
    let mut source = PromptSource::new(prompt.clone(), 0, 3, 100, 20);
    let mut frames = Vec::new();
    let mut payload = Vec::new();
    loop {
        payload.clear();
        match source.next_frame(0, &mut payload) {
            Frame::End => break,
            Frame::Audio { marker, .. } => frames.push((payload.clone(), marker)),
            other => panic!("{other:?}"),
        }
        assert!(frames.len() < 100);
    }
    // 3 × 5 prompt frames and 2 × 5 pause frames.
    assert_eq!(frames.len(), 25);
    assert!(frames[0].1, "the first packet is marked");
    let silence = vec![0xFFu8; 160];
    let pauses = frames.iter().filter(|(p, _)| *p == silence).count();
    assert_eq!(pauses, 10);
    assert_eq!(frames[5].0, silence);
    assert_eq!(frames[10].0, prompt.frame(0));
}
