//! Parse + serialize of a typical INVITE with SDP, and a whole call (INVITE, 100, 200, ACK,
//! BYE, 200) through two sans-IO user agents. Prints messages per second next to criterion's
//! timings. `SMA_BENCH_QUICK=1` shortens the run (CI).

use criterion::Criterion;
use sma_sip::message::{parse_message, NameAddr, ParseLimits, Uri};
use sma_sip::ua::{OutgoingCall, UaConfig, UaEvent, UserAgent};
use sma_sip::Transport;
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const INVITE: &str = "INVITE sip:+15550100@sma.example;user=phone SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK74bf9;rport\r\n\
Via: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bK1a2b3c;received=198.51.100.1\r\n\
Max-Forwards: 69\r\n\
Record-Route: <sip:198.51.100.1;lr>\r\n\
From: \"Alice\" <sip:+15550123@carrier.example;user=phone>;tag=9fxced76sl\r\n\
To: <sip:+15550100@sma.example;user=phone>\r\n\
Call-ID: 3848276298220188511@carrier.example\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:+15550123@192.0.2.10:5060>\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE\r\n\
Supported: timer, replaces\r\n\
Session-Expires: 1800\r\n\
User-Agent: Carrier SBC 1.0\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 224\r\n\r\n\
v=0\r\n\
o=- 1204 2367 IN IP4 192.0.2.10\r\n\
s=-\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 10000 RTP/AVP 0 8 9 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

fn quick() -> bool {
    std::env::var_os("SMA_BENCH_QUICK").is_some()
}

fn parse_and_serialize(bytes: &[u8], limits: &ParseLimits) -> usize {
    let m = parse_message(bytes, limits).expect("parse");
    m.to_bytes().len()
}

/// The same work with rsip 0.4, the crate the issue suggested, as a same-run baseline. rsip
/// parses headers lazily (typed access happens later), so the typed headers the core needs are
/// read here too, to compare like with like.
fn rsip_parse_and_serialize(bytes: &[u8]) -> usize {
    use rsip::prelude::*;
    let message = rsip::SipMessage::try_from(bytes).expect("rsip parses");
    if let rsip::SipMessage::Request(r) = &message {
        black_box(r.via_header().and_then(|v| v.typed()).ok());
        black_box(r.from_header().and_then(|v| v.typed()).ok());
        black_box(r.to_header().and_then(|v| v.typed()).ok());
        black_box(r.cseq_header().and_then(|v| v.typed()).ok());
        black_box(r.call_id_header().ok());
    }
    message.to_string().len()
}

/// One whole call between two user agents; returns the messages exchanged.
fn one_call(alice: &mut UserAgent, bob: &mut UserAgent, now: Instant) -> usize {
    let (a_addr, b_addr): (SocketAddr, SocketAddr) = (
        "127.0.0.1:5070".parse().unwrap(),
        "127.0.0.1:5060".parse().unwrap(),
    );
    let target = Uri::parse("sip:+15550100@127.0.0.1:5060").unwrap();
    let call = alice.invite(
        OutgoingCall {
            target: target.clone(),
            from: NameAddr::parse("<sip:alice@127.0.0.1>").unwrap(),
            to: NameAddr::new(target),
            destination: b_addr,
            transport: Transport::Udp,
            local: a_addr,
            body: b"v=0\r\n".to_vec(),
            headers: Default::default(),
            credentials: None,
        },
        now,
    );
    let mut messages = 0;
    let mut answered = false;
    let mut hung_up = false;
    loop {
        let mut moved = false;
        while let Some(t) = alice.poll_transmit() {
            messages += 1;
            moved = true;
            bob.handle_input(&t.bytes, a_addr, b_addr, Transport::Udp, now);
        }
        while let Some(t) = bob.poll_transmit() {
            messages += 1;
            moved = true;
            alice.handle_input(&t.bytes, b_addr, a_addr, Transport::Udp, now);
        }
        while let Some(e) = bob.poll_event() {
            moved = true;
            if let UaEvent::IncomingCall { call, .. } = e {
                bob.answer(call, b"v=0\r\n".to_vec(), now);
            }
        }
        while let Some(e) = alice.poll_event() {
            moved = true;
            if let UaEvent::Answered { .. } = e {
                answered = true;
            }
        }
        if answered && !hung_up {
            hung_up = true;
            moved = true;
            alice.hangup(call, 0, now);
        }
        if !moved {
            break;
        }
    }
    // Let the completed transactions' timers run out so state does not pile up.
    let later = now + Duration::from_secs(40);
    alice.handle_timeout(later);
    bob.handle_timeout(later);
    messages
}

fn main() {
    let limits = ParseLimits::default();
    let mut c = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_millis(if quick() { 200 } else { 1000 }))
        .measurement_time(Duration::from_millis(if quick() { 500 } else { 3000 }));
    c.bench_function("sip/parse+serialize INVITE with SDP", |b| {
        b.iter(|| parse_and_serialize(black_box(INVITE.as_bytes()), &limits))
    });
    c.bench_function("sip/baseline: rsip parse+serialize INVITE with SDP", |b| {
        b.iter(|| rsip_parse_and_serialize(black_box(INVITE.as_bytes())))
    });
    let mut alice = UserAgent::new(UaConfig::default());
    let mut bob = UserAgent::new(UaConfig {
        seed: 99,
        ..UaConfig::default()
    });
    let start = Instant::now();
    c.bench_function("sip/call INVITE..BYE through two UAs", |b| {
        b.iter(|| one_call(&mut alice, &mut bob, start))
    });

    // Throughput figures, measured directly.
    let n = if quick() { 20_000 } else { 200_000 };
    let t = Instant::now();
    for _ in 0..n {
        black_box(parse_and_serialize(INVITE.as_bytes(), &limits));
    }
    let per_sec = n as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    for _ in 0..n {
        black_box(rsip_parse_and_serialize(INVITE.as_bytes()));
    }
    let rsip_per_sec = n as f64 / t.elapsed().as_secs_f64();
    let calls = if quick() { 2_000 } else { 20_000 };
    let t = Instant::now();
    let mut messages = 0;
    for _ in 0..calls {
        messages += one_call(&mut alice, &mut bob, start);
    }
    let elapsed = t.elapsed().as_secs_f64();
    println!("\nSIP core throughput (one thread):");
    println!("  parse+serialize INVITE with SDP   {per_sec:>10.0} messages/s");
    println!(
        "  same with rsip 0.4 (baseline)     {rsip_per_sec:>10.0} messages/s  (sma-sip is {:.2}x)",
        per_sec / rsip_per_sec
    );
    println!(
        "  whole calls through two UAs       {:>10.0} calls/s  ({:.0} messages/s, {} messages per call)",
        calls as f64 / elapsed,
        messages as f64 / elapsed,
        messages / calls
    );
}
