//! G.722 and Opus round trips, over the codec objects and over real sockets: the decoded
//! signal keeps its pitch (including 5 kHz, which only wideband codecs carry), frames have the
//! sizes RTP expects, and lost frames are concealed.

mod common;

use common::power;
use sma_media::codec::AudioCodec;
use sma_media::leg::{spawn_receiver, LegConfig, LegEvent, LegSockets};
use sma_media::pacer::Pacer;
use sma_media::rtp::RtpSender;
use sma_media::source::PcmSource;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn sine(freq: f32, rate: u32, ms: u32) -> Vec<i16> {
    common::sine(freq, rate, (rate * ms / 1000) as usize)
}

fn assert_pitch(samples: &[i16], freq: f32, rate: u32, what: &str) {
    let body = &samples[samples.len() / 4..samples.len() * 3 / 4];
    let at = power(body, freq, rate as f32);
    for other in [freq * 0.5, freq * 0.75, freq * 1.3, freq * 1.6] {
        assert!(
            at > 50.0 * power(body, other, rate as f32),
            "{what}: {freq} Hz should dominate {other} Hz"
        );
    }
}

#[test]
fn g722_is_wideband_and_frames_are_160_bytes() {
    let codec = AudioCodec::G722;
    assert_eq!((codec.sample_rate(), codec.clock_rate()), (16_000, 8_000));
    for freq in [1_000.0, 5_000.0] {
        let pcm = sine(freq, 16_000, 1_000);
        let mut enc = codec.encoder().unwrap();
        let mut dec = codec.decoder().unwrap();
        let mut out = Vec::new();
        for frame in pcm.chunks(320) {
            let mut payload = Vec::new();
            enc.encode(frame, &mut payload).unwrap();
            assert_eq!(payload.len(), 160, "20 ms of G.722 is 160 bytes");
            dec.decode(&payload, &mut out).unwrap();
        }
        assert_eq!(out.len(), pcm.len());
        assert_pitch(&out, freq, 16_000, "G.722");
    }
}

#[test]
fn opus_round_trips_and_conceals_losses() {
    let codec = AudioCodec::Opus;
    let pcm = sine(1_000.0, 48_000, 1_000);
    let mut enc = codec.encoder().unwrap();
    let mut dec = codec.decoder().unwrap();
    let mut out = Vec::new();
    for (i, frame) in pcm.chunks(960).enumerate() {
        let mut payload = Vec::new();
        enc.encode(frame, &mut payload).unwrap();
        assert!(
            !payload.is_empty() && payload.len() < 400,
            "{}",
            payload.len()
        );
        if i == 25 {
            dec.conceal(960, &mut out); // a lost packet
        } else {
            dec.decode(&payload, &mut out).unwrap();
        }
    }
    assert_eq!(out.len(), pcm.len());
    assert_pitch(&out, 1_000.0, 48_000, "Opus");
    assert!(
        dec.decode(&[0xFF; 3], &mut out).is_err(),
        "garbage is a typed error"
    );
}

async fn over_sockets(codec: AudioCodec, payload_type: u8, freq: f32, ports: (u16, u16)) {
    let pacer = Pacer::start();
    let ip = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    let a = LegSockets::bind(ip, ports, 0).unwrap();
    let b = LegSockets::bind(ip, ports, 3).unwrap();
    let config = LegConfig {
        codec,
        audio_payload_type: payload_type,
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
    let pcm: Arc<[i16]> = sine(freq, codec.sample_rate(), 1_000).into();
    pacer.add(
        a.rtp.clone(),
        b.rtp.local_addr().unwrap(),
        RtpSender::new(9, 0, 0),
        Box::new(PcmSource::new(pcm, codec, payload_type, 20).unwrap()),
        Duration::from_millis(20),
        Instant::now(),
    );
    let mut received = Vec::new();
    while let Ok(Some(event)) = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
        match event {
            LegEvent::Audio {
                samples,
                concealed: false,
            } => received.extend(samples),
            LegEvent::Inactive => break,
            _ => {}
        }
    }
    task.abort();
    assert_eq!(
        received.len(),
        codec.sample_rate() as usize,
        "{codec:?}: one second"
    );
    assert_pitch(
        &received,
        freq,
        codec.sample_rate(),
        &format!("{codec:?} over sockets"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g722_over_sockets() {
    over_sockets(AudioCodec::G722, 9, 5_000.0, (49_000, 49_099)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opus_over_sockets() {
    over_sockets(AudioCodec::Opus, 111, 1_000.0, (49_100, 49_199)).await;
}
