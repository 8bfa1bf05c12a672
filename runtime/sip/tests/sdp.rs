//! SDP parsing, building and offer/answer.

use sma_sip::sdp::{
    Codec, Direction, LocalMedia, NegotiationError, SdpError, SdpSession, SessionDescription,
};

const BARESIP_OFFER: &str = "v=0\r\n\
o=- 1204 2367 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 10000 RTP/AVP 111 9 0 8 101\r\n\
b=AS:64\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=fmtp:111 stereo=1;sprop-stereo=1\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n\
m=video 10002 RTP/AVP 96\r\n\
a=rtpmap:96 H264/90000\r\n";

fn local(codecs: Vec<Codec>) -> LocalMedia {
    LocalMedia {
        address: "127.0.0.1".parse().unwrap(),
        port: 20000,
        codecs,
        telephone_event: true,
        ptime: 20,
        direction: Direction::SendRecv,
        crypto: Vec::new(),
        require_srtp: false,
    }
}

fn offer(text: &str) -> SessionDescription {
    SessionDescription::parse(text.as_bytes()).unwrap()
}

#[test]
fn parses_and_round_trips() {
    let sdp = offer(BARESIP_OFFER);
    assert_eq!(sdp.media.len(), 2);
    let audio = &sdp.media[0];
    assert_eq!(audio.port, 10000);
    assert_eq!(audio.rtpmap(111).unwrap().channels, Some(2));
    assert_eq!(
        audio.rtpmap(0).unwrap().encoding,
        "PCMU",
        "static types need no rtpmap"
    );
    assert_eq!(audio.fmtp(101), Some("0-15"));
    assert_eq!(audio.ptime(), Some(20));
    assert_eq!(audio.direction(), Some(Direction::SendRecv));
    let again = SessionDescription::parse(&sdp.to_bytes()).unwrap();
    assert_eq!(again, sdp);
}

#[test]
fn answer_prefers_local_order_and_keeps_offered_payload_types() {
    let mut session = SdpSession::new(42);
    let (answer, media) = session
        .answer(
            &offer(BARESIP_OFFER),
            &local(vec![Codec::Pcmu, Codec::Opus]),
        )
        .unwrap();
    assert_eq!(media.codec.codec, Codec::Pcmu);
    assert_eq!(media.codec.payload_type, 0);
    assert_eq!(media.telephone_event, Some(101));
    assert_eq!(media.remote, "127.0.0.1:10000".parse().unwrap());
    assert_eq!(answer.media.len(), 2, "one answer line per offered line");
    assert_eq!(answer.media[0].formats, vec!["0", "101"]);
    assert_eq!(answer.media[0].fmtp(101), Some("0-15"));
    assert_eq!(answer.media[1].port, 0, "video rejected with port 0");
    // Opus first: the offerer's dynamic type 111, and no telephone-event at 48 kHz offered.
    let (answer, media) = session
        .answer(
            &offer(BARESIP_OFFER),
            &local(vec![Codec::Opus, Codec::Pcmu]),
        )
        .unwrap();
    assert_eq!(media.codec.codec, Codec::Opus);
    assert_eq!(media.codec.payload_type, 111);
    assert_eq!(media.telephone_event, None);
    assert_eq!(answer.media[0].rtpmap(111).unwrap().encoding, "opus");
    assert_eq!(
        answer.origin.session_version, 44,
        "each new description bumps the version"
    );
}

#[test]
fn no_common_codec_is_an_error_naming_what_was_offered() {
    let mut session = SdpSession::new(1);
    let text = BARESIP_OFFER.replace("111 9 0 8 101", "111 101");
    match session.answer(&offer(&text), &local(vec![Codec::Pcmu])) {
        Err(NegotiationError::NoCommonCodec { offered }) => {
            assert!(offered.contains("opus/48000"), "{offered}")
        }
        other => panic!("{other:?}"),
    }
    let video_only = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=video 5000 RTP/AVP 96\r\n";
    assert_eq!(
        session.answer(&offer(video_only), &local(vec![Codec::Pcmu])),
        Err(NegotiationError::NoAudio)
    );
}

#[test]
fn directions_are_mirrored_and_hold_is_recognised() {
    let mut session = SdpSession::new(1);
    let l = local(vec![Codec::Pcmu]);
    for (offered, answered) in [
        ("sendonly", Direction::RecvOnly),
        ("recvonly", Direction::SendOnly),
        ("inactive", Direction::Inactive),
        ("sendrecv", Direction::SendRecv),
    ] {
        let text = BARESIP_OFFER.replace("a=sendrecv", &format!("a={offered}"));
        let (answer, media) = session.answer(&offer(&text), &l).unwrap();
        assert_eq!(media.direction, answered);
        assert_eq!(answer.media[0].direction(), Some(answered));
    }
    let old_hold = BARESIP_OFFER.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0");
    let (_, media) = session.answer(&offer(&old_hold), &l).unwrap();
    assert_eq!(media.direction, Direction::Inactive);
}

#[test]
fn offer_and_answer_round_trip_between_two_sessions() {
    let mut caller = SdpSession::new(7);
    let mut callee = SdpSession::new(9);
    let caller_local = local(vec![Codec::Opus, Codec::G722, Codec::Pcmu, Codec::Pcma]);
    let o = caller.offer(&caller_local);
    let parsed = SessionDescription::parse(&o.to_bytes()).unwrap();
    let (answer, callee_media) = callee
        .answer(&parsed, &local(vec![Codec::G722, Codec::Pcmu]))
        .unwrap();
    assert_eq!(callee_media.codec.codec, Codec::G722);
    let caller_media = caller.accept_answer(&o, &answer, &caller_local).unwrap();
    assert_eq!(caller_media.codec.codec, Codec::G722);
    assert_eq!(caller_media.codec.payload_type, 9);
    assert_eq!(caller_media.telephone_event, Some(101));
    assert_eq!(caller_media.remote.port(), 20000);
}

#[test]
fn crypto_lines_and_rtcp_mux_are_parsed() {
    let text = BARESIP_OFFER.replace(
        "a=sendrecv\r\n",
        "a=sendrecv\r\na=rtcp-mux\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32\r\n",
    )
    .replace("RTP/AVP 111", "RTP/SAVP 111");
    let sdp = offer(&text);
    let crypto = sdp.media[0].crypto();
    assert_eq!(crypto.len(), 1);
    assert_eq!(crypto[0].suite, "AES_CM_128_HMAC_SHA1_80");
    assert_eq!(
        crypto[0].inline_key(),
        "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"
    );
    assert!(sdp.media[0].rtcp_mux());
    // An RTP/SAVP offer needs a crypto line of ours to answer with.
    let mut session = SdpSession::new(1);
    assert_eq!(
        session.answer(&sdp, &local(vec![Codec::Opus])).unwrap_err(),
        NegotiationError::NoCryptoSuite
    );
    let mut ours = local(vec![Codec::Opus]);
    ours.crypto = vec![sma_sip::sdp::Crypto::inline(
        1,
        "AES_CM_128_HMAC_SHA1_80",
        "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz",
    )];
    let (answer, media) = session.answer(&sdp, &ours).unwrap();
    assert!(media.secure);
    let text = String::from_utf8(answer.to_bytes()).unwrap();
    assert!(text.contains("m=audio 20000 RTP/SAVP 111"), "{text}");
    assert!(
        text.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n"),
        "{text}"
    );
    // Keys stay out of Debug output.
    assert!(!format!("{media:?}").contains("PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"));
    // A plain offer where SRTP is required is refused; without the requirement it is
    // answered in the clear even when we hold a key.
    let plain = offer(BARESIP_OFFER);
    ours.require_srtp = true;
    assert_eq!(
        session.answer(&plain, &ours).unwrap_err(),
        NegotiationError::EncryptionRequired
    );
    ours.require_srtp = false;
    let (answer, media) = session.answer(&plain, &ours).unwrap();
    assert!(!media.secure);
    let text = String::from_utf8(answer.to_bytes()).unwrap();
    assert!(
        text.contains("RTP/AVP") && !text.contains("crypto"),
        "{text}"
    );
}

#[test]
fn hostile_sdp_is_rejected_with_the_line() {
    for (text, needle) in [
        ("", "v"),
        ("o=- 1 1 IN IP4 h\r\n", "first line must be v="),
        ("v=1\r\n", "version"),
        ("v=0\r\nbogus\r\n", "line 2"),
        (
            "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nm=audio 99999 RTP/AVP 0\r\n",
            "port",
        ),
        (
            "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 not-an-ip\r\n",
            "connection",
        ),
        (
            "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nm=audio 5 RTP/AVP\r\n",
            "formats",
        ),
        ("v=0\r\ns=-\r\n", "o="),
    ] {
        let err = SessionDescription::parse(text.as_bytes()).unwrap_err();
        assert!(
            err.to_string().contains(needle),
            "`{err}` should contain `{needle}`"
        );
    }
    assert_eq!(
        SessionDescription::parse(b"v=0\xff"),
        Err(SdpError::InvalidUtf8)
    );
    let many = format!("v=0\r\n{}", "a=x\r\n".repeat(2000));
    assert_eq!(
        SessionDescription::parse(many.as_bytes()),
        Err(SdpError::TooManyLines)
    );
    let bytes = BARESIP_OFFER.as_bytes();
    for i in 0..bytes.len() {
        let mut copy = bytes.to_vec();
        copy[i] = b'=';
        let _ = SessionDescription::parse(&copy);
        let _ = SessionDescription::parse(&bytes[..i]);
    }
}
