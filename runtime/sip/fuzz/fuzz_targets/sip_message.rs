//! Any bytes into the SIP parser, the stream framer and the UA core: nothing may panic, and
//! whatever parses must serialize to something that parses back to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sma_sip::message::{parse_message, ParseLimits, StreamFramer};
use sma_sip::ua::{UaConfig, UserAgent};
use sma_sip::Transport;
use std::time::Instant;

fuzz_target!(|data: &[u8]| {
    let limits = ParseLimits::default();
    if let Ok(message) = parse_message(data, &limits) {
        let bytes = message.to_bytes();
        let again = parse_message(&bytes, &limits).expect("serialized message parses");
        assert_eq!(again.to_bytes(), bytes, "serialization is stable");
    }
    let mut framer = StreamFramer::new();
    framer.push(data);
    while let Some(Ok(frame)) = framer.next_frame(&limits) {
        let _ = parse_message(&frame, &limits);
    }
    let mut ua = UserAgent::new(UaConfig::default());
    let now = Instant::now();
    let peer = "127.0.0.1:5070".parse().unwrap();
    let local = "127.0.0.1:5060".parse().unwrap();
    ua.handle_input(data, peer, local, Transport::Udp, now);
    while ua.poll_transmit().is_some() {}
    while ua.poll_event().is_some() {}
});
