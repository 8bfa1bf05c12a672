//! Per-frame costs of the media cores: G.711, G.722 and Opus encode/decode and in-band DTMF
//! detection of one 20 ms frame, RFC 4733 packet handling, a prompt cache hit, and eSpeak NG's
//! real-time factor, VoiceFocus's (noise suppression) real-time factor per leg, and the PCM
//! path of a bridge (PCMU decoded, resampled and encoded as G.722). Prints frames per second
//! per core next to
//! criterion's timings, with a memcpy of the same frame as the same-run baseline.
//! `SMA_BENCH_QUICK=1` shortens the run (CI).

use criterion::Criterion;
use sma_media::codec::AudioCodec;
use sma_media::dtmf::detector::{DetectorConfig, DtmfDetector};
use sma_media::dtmf::rfc4733::{event_packets, EventReceiver};
use sma_media::dtmf::tone::ToneGenerator;
use sma_media::dtmf::Digit;
use sma_media::prompt::PromptCache;
use sma_media::tts::espeak::Espeak;
use sma_media::tts::{SpeechRequest, Synthesizer, TextType};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn quick() -> bool {
    std::env::var_os("SMA_BENCH_QUICK").is_some()
}

fn speechlike_frame() -> Vec<i16> {
    // A 200 Hz buzz with harmonics: a voiced frame, the detector's common case.
    (0..160)
        .map(|i| {
            let t = i as f32 / 8000.0;
            let v: f32 = (1..12)
                .map(|k| (std::f32::consts::TAU * 200.0 * k as f32 * t).sin() * 3000.0 / k as f32)
                .sum();
            v as i16
        })
        .collect()
}

fn per_second(mut f: impl FnMut(), n: u32) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    f64::from(n) / t.elapsed().as_secs_f64()
}

fn main() {
    let mut c = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_millis(if quick() { 200 } else { 1000 }))
        .measurement_time(Duration::from_millis(if quick() { 500 } else { 3000 }));
    let frame = speechlike_frame();
    let mut pcmu = Vec::new();
    AudioCodec::Pcmu.encode(&frame, &mut pcmu);
    let mut tone = Vec::new();
    ToneGenerator::digit(8000, Digit::new('5').unwrap(), -10.0).fill(160, &mut tone);

    let mut out = Vec::with_capacity(160);
    let mut bytes = Vec::with_capacity(160);
    let mut copy = vec![0i16; 160];
    let mut digits = Vec::new();
    let mut detector = DtmfDetector::new(DetectorConfig::default());
    c.bench_function("media/baseline: copy a 20 ms frame", |b| {
        b.iter(|| copy.copy_from_slice(black_box(&frame)))
    });
    c.bench_function("media/PCMU encode 20 ms", |b| {
        b.iter(|| {
            bytes.clear();
            AudioCodec::Pcmu.encode(black_box(&frame), &mut bytes)
        })
    });
    c.bench_function("media/PCMU decode 20 ms", |b| {
        b.iter(|| {
            out.clear();
            AudioCodec::Pcmu.decode(black_box(&pcmu), &mut out)
        })
    });
    c.bench_function("media/DTMF detect 20 ms (speech)", |b| {
        b.iter(|| detector.process(black_box(&frame), &mut digits))
    });
    let quiet = vec![3i16; 160];
    c.bench_function("media/DTMF detect 20 ms (silence)", |b| {
        b.iter(|| detector.process(black_box(&quiet), &mut digits))
    });
    c.bench_function("media/DTMF detect 20 ms (tone)", |b| {
        b.iter(|| detector.process(black_box(&tone), &mut digits))
    });
    let packets = event_packets(Digit::new('#').unwrap(), 100, 10, 20, 8000);
    let mut receiver = EventReceiver::new();
    let mut reports = Vec::new();
    let mut ts = 0u32;
    c.bench_function("media/RFC 4733 receive one key press (7 packets)", |b| {
        b.iter(|| {
            ts = ts.wrapping_add(8000);
            reports.clear();
            for p in &packets {
                receiver.receive(ts, &p.payload.to_bytes(), &mut reports);
            }
        })
    });

    // Stateful codecs, one 20 ms frame per iteration.
    for codec in [AudioCodec::G722, AudioCodec::Opus] {
        let rate = codec.sample_rate();
        let frame: Vec<i16> = (0..codec.samples_per_frame(20))
            .map(|i| {
                ((i as f32 * 1000.0 / rate as f32 * std::f32::consts::TAU).sin() * 8000.0) as i16
            })
            .collect();
        let mut enc = codec.encoder().expect("encoder");
        let mut dec = codec.decoder().expect("decoder");
        let mut payload = Vec::new();
        enc.encode(&frame, &mut payload).expect("encode");
        let mut pcm = Vec::new();
        c.bench_function(&format!("media/{codec:?} encode 20 ms"), |b| {
            b.iter(|| {
                let mut out = Vec::with_capacity(400);
                enc.encode(black_box(&frame), &mut out).expect("encode");
                out
            })
        });
        c.bench_function(&format!("media/{codec:?} decode 20 ms"), |b| {
            b.iter(|| {
                pcm.clear();
                dec.decode(black_box(&payload), &mut pcm).expect("decode")
            })
        });
    }
    // A prompt cache hit: hashing the file's bytes and finding the shared entry.
    let cache = PromptCache::new(64, 20);
    let file: Vec<u8> = {
        let mut cursor = std::io::Cursor::new(Vec::new());
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::new(&mut cursor, spec).expect("wav");
        for i in 0..8000 * 5 {
            w.write_sample(((i % 100) as i16 - 50) * 100)
                .expect("sample");
        }
        w.finalize().expect("wav");
        cursor.into_inner()
    };
    cache.get(&file, AudioCodec::Pcmu).expect("prompt");
    c.bench_function("media/prompt cache hit (5 s WAV, 80 KB)", |b| {
        b.iter(|| cache.get(black_box(&file), AudioCodec::Pcmu).expect("hit"))
    });

    let n = if quick() { 20_000 } else { 200_000 };
    let base = per_second(|| copy.copy_from_slice(black_box(&frame)), n * 10);
    let enc = per_second(
        || {
            bytes.clear();
            AudioCodec::Pcmu.encode(black_box(&frame), &mut bytes)
        },
        n,
    );
    let dec = per_second(
        || {
            out.clear();
            AudioCodec::Pcmu.decode(black_box(&pcmu), &mut out)
        },
        n,
    );
    let det = per_second(|| detector.process(black_box(&frame), &mut digits), n / 10);
    println!("\nMedia cores, 20 ms frames per second on one core:");
    println!("  baseline: copy a frame      {base:>12.0}");
    println!(
        "  PCMU encode                 {enc:>12.0}  ({:.0} calls' worth in real time)",
        enc / 50.0
    );
    println!(
        "  PCMU decode                 {dec:>12.0}  ({:.0} calls' worth)",
        dec / 50.0
    );
    println!(
        "  in-band DTMF detection      {det:>12.0}  ({:.0} calls' worth)",
        det / 50.0
    );
    // Text-to-speech real-time factor: synthesis time / audio duration (eSpeak NG).
    let request = SpeechRequest {
        text: "Thank you for calling. For sales, press one. For support, press two. \
               To hear these options again, press nine."
            .into(),
        text_type: TextType::Text,
        voice_id: Some("Joanna".into()),
        language_code: None,
    };
    let runs = if quick() { 3 } else { 20 };
    let t = Instant::now();
    let mut audio_seconds = 0.0;
    for _ in 0..runs {
        let speech = Espeak.synthesize(&request).expect("espeak");
        audio_seconds += speech.samples.len() as f64 / f64::from(speech.sample_rate);
    }
    let rtf = t.elapsed().as_secs_f64() / audio_seconds;
    println!(
        "  eSpeak NG real-time factor  {rtf:>12.4}  ({:.0}x faster than real time)",
        1.0 / rtf
    );

    // VoiceFocus: one leg's received audio denoised, 20 ms at a time (8 kHz in, RNNoise at
    // 48 kHz inside). Real-time factor = CPU time / audio time; its inverse is legs per core.
    let mut denoiser = sma_media::denoise::Denoiser::new(8000);
    let frames = if quick() { 500 } else { 5000 };
    let mut work = frame.clone();
    let t = Instant::now();
    for _ in 0..frames {
        work.copy_from_slice(&frame);
        denoiser.process(black_box(&mut work));
    }
    let vf_rtf = t.elapsed().as_secs_f64() / (f64::from(frames) * 0.020);
    println!(
        "  VoiceFocus real-time factor {vf_rtf:>12.4}  ({:.0} denoised legs per core)",
        1.0 / vf_rtf
    );

    // A bridge direction through PCM (the legs' codecs differ): PCMU decoded, resampled to
    // 16 kHz and encoded as G.722 for the other leg, per 20 ms frame.
    let mut up = sma_media::resample::StreamResampler::new(8000, 16000, 160).expect("resampler");
    let mut g722 = AudioCodec::G722.encoder().expect("G.722");
    let mut wide = Vec::with_capacity(320);
    let mut encoded = Vec::with_capacity(160);
    let pcm = per_second(
        || {
            out.clear();
            AudioCodec::Pcmu.decode(black_box(&pcmu), &mut out);
            wide.clear();
            let _ = up.process(&out, &mut wide);
            encoded.clear();
            let _ = g722.encode(&wide, &mut encoded);
        },
        n / 10,
    );
    println!(
        "  bridge PCMU -> G.722 (PCM)  {pcm:>12.0}  ({:.0} bridged directions' worth)",
        pcm / 50.0
    );
}
