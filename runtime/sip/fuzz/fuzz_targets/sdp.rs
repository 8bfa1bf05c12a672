//! Any bytes into the SDP parser and, when they parse, into offer/answer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sma_sip::sdp::{Codec, Direction, LocalMedia, SdpSession, SessionDescription};

fuzz_target!(|data: &[u8]| {
    let Ok(offer) = SessionDescription::parse(data) else {
        return;
    };
    let again = SessionDescription::parse(&offer.to_bytes()).expect("serialized SDP parses");
    assert_eq!(again.to_bytes(), offer.to_bytes());
    let local = LocalMedia {
        address: "127.0.0.1".parse().unwrap(),
        port: 20000,
        codecs: vec![Codec::Pcmu, Codec::Opus, Codec::G722, Codec::Pcma],
        telephone_event: true,
        ptime: 20,
        direction: Direction::SendRecv,
        crypto: Vec::new(),
        require_srtp: false,
    };
    let mut session = SdpSession::new(1);
    if let Ok((answer, _)) = session.answer(&offer, &local) {
        SessionDescription::parse(&answer.to_bytes()).expect("answer parses");
    }
});
