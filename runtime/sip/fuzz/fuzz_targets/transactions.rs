//! Sequences of messages into the UA core (transactions, dialogs, the UA's answers) on
//! simulated time: nothing may panic, and every transaction must end once time runs out.
//!
//! The input is split at `0xff 0xff` into messages. Each message's first byte steers the
//! run: the low six bits are how far time moves before it (in 100 ms steps), bit 6 picks TCP
//! over UDP, bit 7 makes the application answer the calls it is offered (else it rings and
//! later rejects them).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sma_sip::ua::{UaConfig, UaEvent, UserAgent};
use sma_sip::Transport;
use std::time::{Duration, Instant};

const SDP: &[u8] = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n";

fuzz_target!(|data: &[u8]| {
    let mut ua = UserAgent::new(UaConfig::default());
    let start = Instant::now();
    let mut now = start;
    let peer = "127.0.0.1:5070".parse().unwrap();
    let local = "127.0.0.1:5060".parse().unwrap();
    let mut answer = false;
    for chunk in data.split(|b| *b == 0xff).filter(|c| !c.is_empty()) {
        let steer = chunk[0];
        now += Duration::from_millis(u64::from(steer & 0x3f) * 100);
        ua.handle_timeout(now);
        let transport = if steer & 0x40 != 0 {
            Transport::Tcp
        } else {
            Transport::Udp
        };
        answer = steer & 0x80 != 0;
        ua.handle_input(&chunk[1..], peer, local, transport, now);
        drive(&mut ua, answer, now);
    }
    // Let every timer run out: every transaction and call must end.
    for _ in 0..200 {
        match ua.poll_timeout() {
            Some(at) => {
                now = now.max(at);
                ua.handle_timeout(now);
                drive(&mut ua, answer, now);
            }
            None => break,
        }
    }
    now += Duration::from_secs(3600);
    ua.handle_timeout(now);
    drive(&mut ua, answer, now);
    assert_eq!(ua.transaction_count(), 0, "transactions outlived every timer");
});

fn drive(ua: &mut UserAgent, answer: bool, now: Instant) {
    while ua.poll_transmit().is_some() {}
    while let Some(event) = ua.poll_event() {
        match event {
            UaEvent::IncomingCall { call, .. } if answer => {
                ua.answer(call, SDP.to_vec(), now);
            }
            UaEvent::IncomingCall { call, .. } => {
                ua.ring(call, now);
                ua.reject(call, 486, now);
            }
            UaEvent::Offer { call, tx, .. } => ua.answer_offer(call, tx, Ok(SDP.to_vec()), now),
            _ => {}
        }
        while ua.poll_transmit().is_some() {}
    }
}
