//! Recordings: limits (duration, silence, terminators), durability, call recording tracks, and
//! a recording over real sockets that matches what was sent.

use sma_media::codec::AudioCodec;
use sma_media::dtmf::tone::ToneGenerator;
use sma_media::dtmf::Digit;
use sma_media::leg::{spawn_receiver, LegConfig, LegEvent, LegSockets};
use sma_media::pacer::Pacer;
use sma_media::prompt::{EncodedPrompt, PromptSource};
use sma_media::record::{CallRecorder, RecordEnd, RecordLimits, Recorder, Track};
use sma_media::rtp::RtpSender;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sma-record-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn tone(ms: usize, freq: f32) -> Vec<i16> {
    let mut g = ToneGenerator::new(8000, (freq, 8000.0), (freq, 0.0));
    let mut v = Vec::new();
    g.fill(ms * 8, &mut v);
    v
}

fn read(path: &std::path::Path) -> (hound::WavSpec, Vec<i16>) {
    let mut r = hound::WavReader::open(path).unwrap();
    let spec = r.spec();
    (spec, r.samples::<i16>().map(|s| s.unwrap()).collect())
}

fn limits() -> RecordLimits {
    RecordLimits {
        sample_rate: 8000,
        max_duration: Duration::from_secs(2),
        silence: None,
        terminators: vec![Digit::new('#').unwrap()],
    }
}

#[test]
fn stops_at_the_maximum_duration_exactly() {
    let d = dir("duration");
    let path = d.join("vm.wav");
    let mut r = Recorder::create(&path, limits()).unwrap();
    let audio = tone(3000, 440.0);
    let mut end = None;
    for frame in audio.chunks(160) {
        end = r.push(frame).unwrap();
        if end.is_some() {
            break;
        }
    }
    assert_eq!(end, Some(RecordEnd::Duration));
    let (info, why) = r.finish().unwrap();
    assert_eq!(why, RecordEnd::Duration);
    assert_eq!(info.samples, 16_000);
    let (spec, samples) = read(&path);
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (1, 8000, 16)
    );
    assert_eq!(samples, audio[..16_000]);
    assert!(!path.with_extension("wav.part").exists());
}

#[test]
fn stops_after_silence_and_on_a_terminator() {
    let d = dir("silence");
    let mut l = limits();
    l.max_duration = Duration::from_secs(30);
    l.silence = Some((Duration::from_secs(1), 200));
    let mut r = Recorder::create(&d.join("s.wav"), l.clone()).unwrap();
    let mut audio = tone(1000, 440.0);
    audio.extend(vec![30i16; 8000 * 3]); // a quiet line, not digital zero
    let mut end = None;
    let mut pushed = 0;
    for frame in audio.chunks(160) {
        pushed += frame.len();
        end = r.push(frame).unwrap();
        if end.is_some() {
            break;
        }
    }
    assert_eq!(end, Some(RecordEnd::Silence));
    assert_eq!(pushed, 16_000, "1 s of speech then 1 s of silence");
    r.finish().unwrap();

    let mut r = Recorder::create(&d.join("t.wav"), l).unwrap();
    r.push(&tone(500, 440.0)).unwrap();
    assert_eq!(r.digit(Digit::new('1').unwrap()), None, "not a terminator");
    assert_eq!(
        r.digit(Digit::new('#').unwrap()),
        Some(RecordEnd::Terminator(Digit::new('#').unwrap()))
    );
    let (info, why) = r.finish().unwrap();
    assert_eq!(why, RecordEnd::Terminator(Digit::new('#').unwrap()));
    assert_eq!(info.samples, 4000);
}

#[test]
fn an_unfinished_recording_leaves_nothing_behind() {
    let d = dir("abandoned");
    let path = d.join("gone.wav");
    {
        let mut r = Recorder::create(&path, limits()).unwrap();
        r.push(&tone(100, 440.0)).unwrap();
    }
    assert!(!path.exists());
    assert!(!path.with_extension("wav.part").exists());
    // Finished early from outside: Stopped, and everything written so far is kept.
    let mut r = Recorder::create(&path, limits()).unwrap();
    r.push(&tone(300, 440.0)).unwrap();
    let (info, why) = r.finish().unwrap();
    assert_eq!((why, info.samples), (RecordEnd::Stopped, 2400));
    assert!(std::fs::metadata(&path).unwrap().len() >= 44 + 4800);
}

#[test]
fn call_recording_tracks() {
    let d = dir("call");
    let (inc, out) = (tone(500, 440.0), tone(500, 1000.0));
    for track in [Track::Incoming, Track::Outgoing, Track::Both, Track::Mixed] {
        let path = d.join(format!("{track:?}.wav"));
        let mut r = CallRecorder::create(&path, track, 8000).unwrap();
        for (a, b) in inc.chunks(160).zip(out.chunks(160)) {
            r.incoming(a).unwrap();
            r.outgoing(b).unwrap();
        }
        let info = r.finish().unwrap();
        assert_eq!(info.samples, 4000, "{track:?}");
        let (spec, samples) = read(&path);
        match track {
            Track::Incoming => assert_eq!(samples, inc),
            Track::Outgoing => assert_eq!(samples, out),
            Track::Both => {
                assert_eq!(spec.channels, 2);
                let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
                let right: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
                assert_eq!((left, right), (inc.clone(), out.clone()));
            }
            Track::Mixed => {
                let sum: Vec<i16> = inc.iter().zip(&out).map(|(a, b)| a + b).collect();
                assert_eq!(samples, sum);
            }
        }
    }
    // One direction silent (nothing received): padded, not stalled.
    let path = d.join("oneway.wav");
    let mut r = CallRecorder::create(&path, Track::Both, 8000).unwrap();
    for a in inc.chunks(160) {
        r.incoming(a).unwrap();
    }
    let info = r.finish().unwrap();
    assert_eq!(info.samples, 4000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_over_sockets_matches_what_was_sent() {
    let d = dir("sockets");
    let pacer = Pacer::start();
    let ip = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    let a = LegSockets::bind(ip, (48000, 48999), 1).unwrap();
    let b = LegSockets::bind(ip, (48000, 48999), 7).unwrap();
    let config = LegConfig {
        codec: AudioCodec::Pcma,
        audio_payload_type: 8,
        telephone_event: None,
        ptime_ms: 20,
        rtcp_mux: false,
        remote: a.rtp.local_addr().unwrap(),
        inactivity: Duration::from_millis(300),
        rtcp_interval: Duration::from_secs(5),
        inband_dtmf: false,
        control: Default::default(),
        srtp: None,
        ssrc: 1,
        sent: None,
    };
    let (mut rx, task) = spawn_receiver(&b, config, None).unwrap();
    let prompt = Arc::new(
        EncodedPrompt::from_samples(tone(1500, 700.0).into(), AudioCodec::Pcma, 20).unwrap(),
    );
    pacer.add(
        a.rtp.clone(),
        b.rtp.local_addr().unwrap(),
        RtpSender::new(3, 0, 0),
        Box::new(PromptSource::new(prompt.clone(), 8, 1, 0, 20)),
        Duration::from_millis(20),
        Instant::now(),
    );
    let path = d.join("rec.wav");
    let mut recorder = Recorder::create(
        &path,
        RecordLimits {
            sample_rate: 8000,
            max_duration: Duration::from_secs(60),
            silence: None,
            terminators: vec![],
        },
    )
    .unwrap();
    while let Ok(Some(event)) = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
        match event {
            LegEvent::Audio {
                samples,
                concealed: false,
            } => {
                recorder.push(&samples).unwrap();
            }
            LegEvent::Inactive => break,
            _ => {}
        }
    }
    task.abort();
    let (info, _) = recorder.finish().unwrap();
    let mut expected = Vec::new();
    AudioCodec::Pcma.decode(&prompt.payload(), &mut expected);
    let (_, samples) = read(&info.path);
    assert_eq!(samples.len(), expected.len());
    assert!(
        samples == expected,
        "the recording differs from what was sent"
    );
}
