//! Call legs over real sockets on loopback: audio through the pacer and back out of the
//! jitter buffer unchanged, paced packets, digits by RFC 4733 and in-band, symmetric RTP
//! latching, inactivity, and RTCP quality reports with round-trip time.

use sma_media::codec::AudioCodec;
use sma_media::dtmf::Digit;
use sma_media::leg::{spawn_receiver, DigitSource, LegConfig, LegEvent, LegSockets};
use sma_media::pacer::Pacer;
use sma_media::rtp::{RtpSender, SendCounters};
use sma_media::source::{inband_digits, EventSource, PcmSource};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

fn sockets(hint: u64) -> LegSockets {
    LegSockets::bind(LOCAL, (46000, 47999), hint).expect("bind a leg")
}

fn addr(s: &LegSockets) -> SocketAddr {
    s.rtp.local_addr().unwrap()
}

fn config(remote: SocketAddr, telephone_event: Option<u8>) -> LegConfig {
    LegConfig {
        codec: AudioCodec::Pcmu,
        audio_payload_type: 0,
        telephone_event,
        ptime_ms: 20,
        rtcp_mux: false,
        remote,
        inactivity: Duration::from_millis(400),
        rtcp_interval: Duration::from_millis(200),
        inband_dtmf: false,
        control: Default::default(),
        srtp: None,
        ssrc: 0x5151,
        sent: None,
    }
}

/// Collects events until `until` says stop or the time runs out.
async fn collect(
    rx: &mut mpsc::Receiver<LegEvent>,
    within: Duration,
    mut until: impl FnMut(&[LegEvent]) -> bool,
) -> Vec<LegEvent> {
    let mut out = Vec::new();
    let end = tokio::time::Instant::now() + within;
    while !until(&out) {
        match tokio::time::timeout_at(end, rx.recv()).await {
            Ok(Some(e)) => out.push(e),
            _ => break,
        }
    }
    out
}

fn digits(events: &[LegEvent], source: DigitSource) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            LegEvent::Digit { digit, source: s } if *s == source => Some(digit.as_char()),
            _ => None,
        })
        .collect()
}

fn sweep(seconds: f32) -> Arc<[i16]> {
    let n = (8000.0 * seconds) as usize;
    (0..n)
        .map(|i| {
            let t = i as f32 / 8000.0;
            let f = 300.0 + 2500.0 * t / seconds;
            ((std::f32::consts::TAU * f * t).sin() * 12_000.0) as i16
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_arrives_unchanged_and_paced() {
    let pacer = Pacer::start();
    let (a, b) = (sockets(1), sockets(2));
    let (mut rx, task) = spawn_receiver(&b, config(addr(&a), None), None).unwrap();
    let audio = sweep(1.0);
    let source = PcmSource::new(audio.clone(), AudioCodec::Pcmu, 0, 20).unwrap();
    pacer.add(
        a.rtp.clone(),
        addr(&b),
        RtpSender::new(77, 1000, 5000),
        Box::new(source),
        Duration::from_millis(20),
        Instant::now() + Duration::from_millis(20),
    );
    let events = collect(&mut rx, Duration::from_secs(5), |e| {
        e.iter()
            .filter(|e| {
                matches!(
                    e,
                    LegEvent::Audio {
                        concealed: false,
                        ..
                    }
                )
            })
            .count()
            >= 50
    })
    .await;
    task.abort();
    assert_eq!(events[0], LegEvent::Latched(addr(&a)));
    let received: Vec<i16> = events
        .iter()
        .filter_map(|e| match e {
            LegEvent::Audio {
                samples,
                concealed: false,
            } => Some(samples.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    // What G.711 makes of the original, sample for sample: nothing lost, reordered or shifted.
    let mut expected_bytes = Vec::new();
    AudioCodec::Pcmu.encode(&audio, &mut expected_bytes);
    let mut expected = Vec::new();
    AudioCodec::Pcmu.decode(&expected_bytes, &mut expected);
    assert_eq!(received.len(), expected.len());
    assert!(
        received == expected,
        "received audio differs from what was sent"
    );
    let concealed = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                LegEvent::Audio {
                    concealed: true,
                    ..
                }
            )
        })
        .count();
    assert_eq!(concealed, 0, "no gaps on loopback");
    // The pacer measured its own sends against their deadlines.
    assert_eq!(
        pacer.stats.sent.load(std::sync::atomic::Ordering::Relaxed),
        50
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packets_leave_on_a_20_ms_cadence() {
    let pacer = Pacer::start();
    let a = sockets(3);
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    probe
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    pacer.add(
        a.rtp.clone(),
        probe.local_addr().unwrap(),
        RtpSender::new(1, 0, 0),
        Box::new(PcmSource::new(sweep(2.0), AudioCodec::Pcma, 8, 20).unwrap()),
        Duration::from_millis(20),
        Instant::now() + Duration::from_millis(10),
    );
    let arrivals = tokio::task::spawn_blocking(move || {
        let mut buf = [0u8; 1500];
        let mut arrivals = Vec::new();
        while arrivals.len() < 100 {
            if probe.recv(&mut buf).is_err() {
                break;
            }
            arrivals.push(Instant::now());
        }
        arrivals
    })
    .await
    .unwrap();
    assert_eq!(arrivals.len(), 100);
    let span = arrivals[99].duration_since(arrivals[0]);
    // 99 periods of 20 ms: the cadence does not drift (bounds allow for a loaded machine).
    assert!(
        span >= Duration::from_millis(1950) && span <= Duration::from_millis(2050),
        "{span:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc4733_digits_are_received_once_each() {
    let pacer = Pacer::start();
    let (a, b) = (sockets(4), sockets(5));
    let (mut rx, task) = spawn_receiver(&b, config(addr(&a), Some(101)), None).unwrap();
    let sent: Vec<Digit> = "159#*0D".chars().filter_map(Digit::new).collect();
    pacer.add(
        a.rtp.clone(),
        addr(&b),
        RtpSender::new(5, 0, 0),
        Box::new(EventSource::new(&sent, 100, 60, AudioCodec::Pcmu, 0, 101, 20).unwrap()),
        Duration::from_millis(20),
        Instant::now(),
    );
    let events = collect(&mut rx, Duration::from_secs(5), |e| {
        digits(e, DigitSource::Rfc4733).len() >= 7
    })
    .await;
    task.abort();
    assert_eq!(digits(&events, DigitSource::Rfc4733), "159#*0D");
    assert_eq!(digits(&events, DigitSource::InBand), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inband_digits_are_detected_without_telephone_event() {
    let pacer = Pacer::start();
    let (a, b) = (sockets(6), sockets(7));
    let mut cfg = config(addr(&a), None);
    cfg.codec = AudioCodec::Pcma;
    cfg.audio_payload_type = 8;
    let (mut rx, task) = spawn_receiver(&b, cfg, None).unwrap();
    let sent: Vec<Digit> = "2468".chars().filter_map(Digit::new).collect();
    let tones: Arc<[i16]> = inband_digits(&sent, 80, 80, -12.0, 8000).into();
    pacer.add(
        a.rtp.clone(),
        addr(&b),
        RtpSender::new(6, 0, 0),
        Box::new(PcmSource::new(tones, AudioCodec::Pcma, 8, 20).unwrap()),
        Duration::from_millis(20),
        Instant::now(),
    );
    let events = collect(&mut rx, Duration::from_secs(5), |e| {
        digits(e, DigitSource::InBand).len() >= 4
    })
    .await;
    task.abort();
    assert_eq!(digits(&events, DigitSource::InBand), "2468");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latches_onto_the_real_source_and_reports_inactivity() {
    let pacer = Pacer::start();
    let (a, b) = (sockets(10), sockets(11));
    // SDP said 127.0.0.1:9; the far end really sends from a's port (a NAT would do this).
    let (mut rx, task) =
        spawn_receiver(&b, config("127.0.0.1:9".parse().unwrap(), None), None).unwrap();
    pacer.add(
        a.rtp.clone(),
        addr(&b),
        RtpSender::new(8, 0, 0),
        Box::new(PcmSource::new(sweep(0.2), AudioCodec::Pcmu, 0, 20).unwrap()),
        Duration::from_millis(20),
        Instant::now(),
    );
    let events = collect(&mut rx, Duration::from_secs(5), |e| {
        e.iter().any(|e| matches!(e, LegEvent::Inactive))
    })
    .await;
    task.abort();
    assert_eq!(events[0], LegEvent::Latched(addr(&a)));
    assert!(
        events.iter().any(|e| matches!(e, LegEvent::Inactive)),
        "dead leg reported"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtcp_reports_give_loss_jitter_round_trip_and_mos() {
    let pacer = Pacer::start();
    let (a, b) = (sockets(12), sockets(13));
    // Both directions send audio; both legs report.
    let counters_a = Arc::new(SendCounters::default());
    let counters_b = Arc::new(SendCounters::default());
    let mut cfg_a = config(addr(&b), None);
    cfg_a.sent = Some(counters_a.clone());
    cfg_a.ssrc = 0xA;
    let mut cfg_b = config(addr(&a), None);
    cfg_b.sent = Some(counters_b.clone());
    cfg_b.ssrc = 0xB;
    let (mut rx_a, task_a) = spawn_receiver(&a, cfg_a, None).unwrap();
    let (_rx_b, task_b) = spawn_receiver(&b, cfg_b, None).unwrap();
    let mut sender_a = RtpSender::new(0xA, 0, 0);
    sender_a.share(counters_a);
    let mut sender_b = RtpSender::new(0xB, 0, 0);
    sender_b.share(counters_b);
    for (from, to, sender) in [(&a, &b, sender_a), (&b, &a, sender_b)] {
        pacer.add(
            from.rtp.clone(),
            addr(to),
            sender,
            Box::new(PcmSource::new(sweep(3.0), AudioCodec::Pcmu, 0, 20).unwrap()),
            Duration::from_millis(20),
            Instant::now(),
        );
    }
    let events = collect(&mut rx_a, Duration::from_secs(5), |e| {
        e.iter()
            .any(|e| matches!(e, LegEvent::Quality(q) if q.round_trip_ms.is_some()))
    })
    .await;
    task_a.abort();
    task_b.abort();
    let quality = events
        .iter()
        .rev()
        .find_map(|e| match e {
            LegEvent::Quality(q) => Some(*q),
            _ => None,
        })
        .expect("a quality report");
    let rtt = quality.round_trip_ms.expect("round-trip time from SR/RR");
    assert!((0.0..50.0).contains(&rtt), "loopback RTT {rtt} ms");
    assert_eq!(quality.cumulative_lost, 0);
    assert!(quality.mos > 4.0, "{quality:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digit_in_the_barge_in_set_stops_the_prompt() {
    use sma_media::prompt::{EncodedPrompt, PromptSource};
    let pacer = Pacer::start();
    let (a, b) = (sockets(14), sockets(15));
    // A plays a 5 s prompt to B; B presses 1 then # at about 0.5 s; '#' interrupts.
    let (mut rx_a, task_a) = spawn_receiver(&a, config(addr(&b), Some(101)), None).unwrap();
    let mut cfg_b = config(addr(&a), None);
    cfg_b.inactivity = Duration::from_millis(200);
    let (mut rx_b, task_b) = spawn_receiver(&b, cfg_b, None).unwrap();
    let prompt = Arc::new(EncodedPrompt::from_samples(sweep(5.0), AudioCodec::Pcmu, 20).unwrap());
    let playback = pacer.add(
        a.rtp.clone(),
        addr(&b),
        RtpSender::new(1, 0, 0),
        Box::new(PromptSource::new(prompt, 0, 1, 0, 20)),
        Duration::from_millis(20),
        Instant::now(),
    );
    let digits: Vec<Digit> = "1#".chars().filter_map(Digit::new).collect();
    pacer.add(
        b.rtp.clone(),
        addr(&a),
        RtpSender::new(2, 0, 0),
        Box::new(EventSource::new(&digits, 80, 200, AudioCodec::Pcmu, 0, 101, 20).unwrap()),
        Duration::from_millis(20),
        Instant::now(),
    );
    let barge_in: Vec<Digit> = vec![Digit::new('#').unwrap()];
    let started = Instant::now();
    let mut heard = String::new();
    while let Ok(Some(event)) = tokio::time::timeout(Duration::from_secs(5), rx_a.recv()).await {
        if let LegEvent::Digit { digit, .. } = event {
            heard.push(digit.as_char());
            if barge_in.contains(&digit) {
                playback.stop();
                break;
            }
        }
    }
    assert_eq!(heard, "1#", "'1' is not in the barge-in set, '#' is");
    let stopped_after = started.elapsed();
    let events = collect(&mut rx_b, Duration::from_secs(5), |e| {
        e.iter().any(|e| matches!(e, LegEvent::Inactive))
    })
    .await;
    task_a.abort();
    task_b.abort();
    let frames = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                LegEvent::Audio {
                    concealed: false,
                    ..
                }
            )
        })
        .count();
    assert!(
        events.iter().any(|e| matches!(e, LegEvent::Inactive)),
        "playback stopped"
    );
    assert!(playback.is_stopped());
    assert!(stopped_after < Duration::from_secs(2), "{stopped_after:?}");
    assert!(
        frames < 150,
        "the 5 s prompt (250 frames) was cut short: {frames} frames played"
    );
}

#[test]
fn the_port_pool_hands_out_pairs_in_turn_and_takes_them_back() {
    use sma_media::leg::PortPool;
    let ip: std::net::IpAddr = [127, 0, 0, 1].into();
    // A pair another process holds is skipped, not handed out.
    let squatter = std::net::UdpSocket::bind((ip, 31_002)).unwrap();
    let pool = PortPool::new((31_000, 31_007));
    assert_eq!(pool.available(), 4);
    let a = pool.bind(ip).unwrap();
    let b = pool.bind(ip).unwrap();
    let c = pool.bind(ip).unwrap();
    let ports = [a.rtp_port(), b.rtp_port(), c.rtp_port()];
    assert_eq!(ports, [31_000, 31_004, 31_006]);
    assert!(
        pool.bind(ip).is_err(),
        "every pair is taken or held elsewhere"
    );
    drop(b);
    drop(squatter);
    // Longest-free first: the pair the squatter held went back before b's.
    assert_eq!(pool.bind(ip).unwrap().rtp_port(), 31_002);
    assert_eq!(pool.bind(ip).unwrap().rtp_port(), 31_004);
}

#[test]
fn a_parked_output_wakes_on_play_with_its_clock_on_time_and_leaves_when_stopped() {
    use sma_media::output::LegOutput;
    let pacer = Pacer::start();
    let a = sockets(5);
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    probe
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let (output, control) = LegOutput::new(AudioCodec::Pcmu, 0, 20, Box::new(|_| {})).unwrap();
    // Nothing to send between prompts: the stream parks at its first period.
    control.set_silence_suppression(true);
    let stream = pacer.add(
        a.rtp.clone(),
        probe.local_addr().unwrap(),
        RtpSender::new(9, 100, 0),
        Box::new(output),
        Duration::from_millis(20),
        Instant::now(),
    );
    let tone = || Box::new(PcmSource::new(sweep(0.1), AudioCodec::Pcmu, 0, 20).unwrap());
    let mut buf = [0u8; 1500];
    let mut first_of_prompt = || {
        let n = probe.recv(&mut buf).expect("a packet after play");
        let packet = &buf[..n];
        let timestamp = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        (Instant::now(), timestamp, packet[1] & 0x80 != 0)
    };
    std::thread::sleep(Duration::from_millis(100));
    control.play(1, tone());
    let (at1, ts1, marker) = first_of_prompt();
    assert!(marker, "a prompt after silence starts with the marker bit");
    // Five prompt packets, then parked again; 300 ms later another prompt.
    std::thread::sleep(Duration::from_millis(300));
    while probe.recv(&mut [0u8; 1500][..]).is_ok() {
        probe
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
    }
    probe
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    control.play(2, tone());
    let (at2, ts2, _) = first_of_prompt();
    // The RTP clock ran while parked: its advance matches the wall clock to a period or two.
    let wall = at2.duration_since(at1).as_secs_f64() * 8000.0;
    let rtp = f64::from(ts2.wrapping_sub(ts1));
    assert!(
        (rtp - wall).abs() <= 2.0 * 160.0,
        "RTP clock advanced {rtp} samples over {wall:.0} of wall time"
    );
    assert_eq!(rtp as u32 % 160, 0, "whole periods");
    // Parked again after the prompt; a stop takes it off the pacer.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        pacer
            .stats
            .active
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    stream.stop();
    let deadline = Instant::now() + Duration::from_secs(2);
    while pacer
        .stats
        .active
        .load(std::sync::atomic::Ordering::Relaxed)
        != 0
    {
        assert!(Instant::now() < deadline, "the stopped stream stayed");
        std::thread::sleep(Duration::from_millis(10));
    }
}
