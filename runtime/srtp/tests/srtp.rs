//! SRTP against libsrtp: packets libsrtp protected (tests/data/srtp-libsrtp.txt, written by
//! srtp-libsrtp.py) are what sma's protect produces byte for byte (SRTP; SRTCP differs only
//! by where its index starts), and unprotect gives the original back; then what a receiver
//! must refuse.

use sma_srtp::{Context, CryptoAttribute, Direction, MasterKey, SrtpError, Suite};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn rtp(header: &str, first: u8) -> Vec<u8> {
    let mut p = hex(header);
    p.extend((0..160u32).map(|i| (i as u8).wrapping_add(first)));
    p
}

fn plain() -> [Vec<u8>; 3] {
    let mut rtcp = hex("80c80006cafebabe");
    rtcp.extend(0..20u8);
    [
        rtp("8000fffe0000a0f0cafebabe", 0),
        rtp("80000001000a00f0cafebabe", 100),
        rtcp,
    ]
}

struct Vector {
    suite: Suite,
    key: Vec<u8>,
    protected: [Vec<u8>; 3],
}

fn vectors() -> Vec<Vector> {
    let text = include_str!("data/srtp-libsrtp.txt");
    let lines: Vec<&str> = text.lines().collect();
    lines
        .chunks(5)
        .map(|c| Vector {
            suite: match c[0] {
                "AesCm128HmacSha1_80" => Suite::AesCm128HmacSha1_80,
                "AesCm128HmacSha1_32" => Suite::AesCm128HmacSha1_32,
                "AeadAes128Gcm" => Suite::AeadAes128Gcm,
                "AeadAes256Gcm" => Suite::AeadAes256Gcm,
                other => panic!("unknown suite {other}"),
            },
            key: hex(c[1]),
            protected: [hex(c[2]), hex(c[3]), hex(c[4])],
        })
        .collect()
}

#[test]
fn protect_matches_libsrtp_byte_for_byte_and_unprotect_reverses_it() {
    let vectors = vectors();
    assert_eq!(vectors.len(), 4);
    for v in vectors {
        let key = MasterKey::new(v.suite, &v.key).unwrap();
        let mut tx = Context::new(&key, Direction::Outbound);
        let [a, b, c] = plain();
        let mut out = a.clone();
        tx.protect_rtp(&mut out).unwrap();
        assert_eq!(out, v.protected[0], "{}: RTP", v.suite);
        let mut out = b.clone();
        tx.protect_rtp(&mut out).unwrap();
        assert_eq!(out, v.protected[1], "{}: RTP after the wrap", v.suite);
        // SRTCP: libsrtp numbers its first packet 1, RFC 3711 §3.4 (and sma) 0, so the bytes
        // differ; libsrtp's packet must unprotect here (below), and sma's must round-trip.
        let mut out = c.clone();
        tx.protect_rtcp(&mut out).unwrap();
        assert_eq!(out.len(), v.protected[2].len(), "{}: RTCP", v.suite);

        let mut rx = Context::new(&key, Direction::Inbound);
        for (i, expected) in [a, b].iter().enumerate() {
            let mut packet = v.protected[i].clone();
            let n = rx.unprotect_rtp(&mut packet).unwrap();
            assert_eq!(
                &packet[..n],
                &expected[..],
                "{}: unprotect RTP {i}",
                v.suite
            );
        }
        let mut packet = v.protected[2].clone();
        let n = rx.unprotect_rtcp(&mut packet).unwrap();
        assert_eq!(&packet[..n], &c[..], "{}: unprotect RTCP", v.suite);
    }
}

#[test]
fn every_suite_round_trips_across_a_sequence_wrap() {
    for suite in Suite::ALL {
        let key = MasterKey::generate(suite).unwrap();
        let (mut tx, mut rx) = (
            Context::new(&key, Direction::Outbound),
            Context::new(&key, Direction::Inbound),
        );
        for n in 0..300u32 {
            let seq = (65_400 + n) as u16;
            let mut header = hex("8000000000000000cafebabe");
            header[2..4].copy_from_slice(&seq.to_be_bytes());
            header[4..8].copy_from_slice(&(n * 160).to_be_bytes());
            let mut packet = header.clone();
            packet.extend([n as u8; 160]);
            let original = packet.clone();
            tx.protect_rtp(&mut packet).unwrap();
            assert_eq!(packet.len(), original.len() + suite.rtp_overhead());
            assert_ne!(&packet[12..172], &original[12..], "{suite}: encrypted");
            let len = rx.unprotect_rtp(&mut packet).unwrap();
            assert_eq!(&packet[..len], &original[..], "{suite}: packet {n}");
        }
        let mut rtcp = hex("80c90001cafebabe");
        let original = rtcp.clone();
        tx.protect_rtcp(&mut rtcp).unwrap();
        let len = rx.unprotect_rtcp(&mut rtcp).unwrap();
        assert_eq!(&rtcp[..len], &original[..]);
    }
}

#[test]
fn tampered_replayed_and_wrongly_keyed_packets_are_refused_without_harm() {
    for suite in Suite::ALL {
        let key = MasterKey::generate(suite).unwrap();
        let mut tx = Context::new(&key, Direction::Outbound);
        let mut rx = Context::new(&key, Direction::Inbound);
        let mut packet = rtp("80000064000000a0cafebabe", 0);
        tx.protect_rtp(&mut packet).unwrap();
        // A flipped payload bit, a flipped tag bit, a flipped header bit.
        for at in [20, packet.len() - 1, 5] {
            let mut bad = packet.clone();
            bad[at] ^= 1;
            assert_eq!(
                rx.unprotect_rtp(&mut bad),
                Err(SrtpError::Authentication),
                "{suite} byte {at}"
            );
        }
        // Another key.
        let mut stranger = Context::new(&MasterKey::generate(suite).unwrap(), Direction::Inbound);
        assert_eq!(
            stranger.unprotect_rtp(&mut packet.clone()),
            Err(SrtpError::Authentication)
        );
        // The real one passes once.
        let mut once = packet.clone();
        assert!(rx.unprotect_rtp(&mut once).is_ok(), "{suite}");
        assert_eq!(
            rx.unprotect_rtp(&mut packet.clone()),
            Err(SrtpError::Replayed)
        );
        // Truncated and garbage input.
        for len in 0..packet.len().min(40) {
            let mut short = packet[..len].to_vec();
            assert!(rx.unprotect_rtp(&mut short).is_err(), "{suite} len {len}");
            assert!(rx.unprotect_rtcp(&mut short).is_err(), "{suite} len {len}");
        }
        let mut rtcp = hex("80c90001cafebabe");
        tx.protect_rtcp(&mut rtcp).unwrap();
        let mut again = rtcp.clone();
        assert!(rx.unprotect_rtcp(&mut again).is_ok());
        assert_eq!(rx.unprotect_rtcp(&mut rtcp), Err(SrtpError::Replayed));
    }
}

#[test]
fn crypto_attributes_parse_and_refuse_what_is_not_supported() {
    // The seed's offer lines, with real keys.
    for suite in Suite::ALL {
        let key = MasterKey::generate(suite).unwrap();
        let line = CryptoAttribute { tag: 3, key }.to_value();
        let back = CryptoAttribute::parse(&line).unwrap();
        assert_eq!(back.tag, 3);
        assert_eq!(back.key.suite(), suite);
        assert_eq!(back.to_value(), line);
    }
    let key = "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";
    let with = |rest: &str| CryptoAttribute::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 {rest}"));
    assert!(with(key).is_ok());
    assert_eq!(
        with(&format!("{key}|2^20")).unwrap().key.lifetime(),
        Some(1 << 20)
    );
    assert_eq!(
        with(&format!("{key}|2^20|1:4")).unwrap_err(),
        SrtpError::MkiUnsupported
    );
    assert_eq!(
        with(&format!("{key}|1:4")).unwrap_err(),
        SrtpError::MkiUnsupported
    );
    assert!(matches!(
        with(&format!("{key} KDR=1")),
        Err(SrtpError::SessionParameter(_))
    ));
    assert!(with(&format!("{key} WSH=128")).is_ok());
    assert!(matches!(
        with("inline:c2hvcnQ="),
        Err(SrtpError::KeyLength { .. })
    ));
    assert_eq!(with("inline:!!!").unwrap_err(), SrtpError::KeyEncoding);
    assert!(matches!(
        CryptoAttribute::parse(&format!("1 F8_128_HMAC_SHA1_80 {key}")),
        Err(SrtpError::UnknownSuite(_))
    ));
    for junk in [
        "",
        "1",
        "x AES_CM_128_HMAC_SHA1_80 inline:",
        "1 AES_CM_128_HMAC_SHA1_80 key",
    ] {
        assert!(CryptoAttribute::parse(junk).is_err(), "{junk:?}");
    }
    // Keys never reach a log through Debug.
    let key = MasterKey::generate(Suite::AesCm128HmacSha1_80).unwrap();
    assert!(!format!("{key:?}").contains(&key.inline()));
    // Nor through the error of a malformed line (one without `inline:`): it names the line
    // by tag and suite only.
    let error = CryptoAttribute::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 {}", key.inline()))
        .unwrap_err()
        .to_string();
    assert!(!error.contains(&key.inline()), "{error}");
    assert!(error.contains("`1 AES_CM_128_HMAC_SHA1_80 ...`"), "{error}");
}

#[test]
fn a_key_lifetime_is_enforced() {
    let attr = CryptoAttribute::parse(
        "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2",
    )
    .unwrap();
    let mut tx = Context::new(&attr.key, Direction::Outbound);
    for _ in 0..2 {
        tx.protect_rtp(&mut rtp("80000001000000a0cafebabe", 0))
            .unwrap();
    }
    assert_eq!(
        tx.protect_rtp(&mut rtp("80000002000000a0cafebabe", 0)),
        Err(SrtpError::KeyExhausted)
    );
}

#[test]
fn a_new_ssrc_gets_its_own_stream_state_up_to_a_limit() {
    let key = MasterKey::generate(Suite::AesCm128HmacSha1_80).unwrap();
    let mut tx = Context::new(&key, Direction::Outbound);
    let mut rx = Context::new(&key, Direction::Inbound);
    // The far end restarts its stream with a new SSRC (and sequence numbers): both streams
    // are accepted, each with its own replay window.
    let with_ssrc = |ssrc: u32, seq: u16| {
        let mut p = rtp("8000000000000000cafebabe", 0);
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p[8..12].copy_from_slice(&ssrc.to_be_bytes());
        p
    };
    for (ssrc, seq) in [(1u32, 100u16), (2, 7), (1, 101), (2, 8)] {
        let original = with_ssrc(ssrc, seq);
        let mut packet = original.clone();
        tx.protect_rtp(&mut packet).unwrap();
        let n = rx.unprotect_rtp(&mut packet).unwrap();
        assert_eq!(&packet[..n], &original[..], "ssrc {ssrc} seq {seq}");
    }
    // Sequence 7 of SSRC 2 again is a replay, though SSRC 1 never sent it.
    let mut again = with_ssrc(2, 7);
    let mut fresh_tx = Context::new(&key, Direction::Outbound);
    fresh_tx.protect_rtp(&mut again).unwrap();
    assert_eq!(rx.unprotect_rtp(&mut again), Err(SrtpError::Replayed));
    // One key carries at most 16 SSRCs; the 17th is refused, not given unbounded state.
    for ssrc in 3..=16u32 {
        let mut p = with_ssrc(ssrc, 1);
        tx.protect_rtp(&mut p).unwrap();
        rx.unprotect_rtp(&mut p).unwrap();
    }
    let mut p = with_ssrc(17, 1);
    assert_eq!(tx.protect_rtp(&mut p.clone()), Err(SrtpError::TooManySsrcs));
    let mut other = Context::new(&key, Direction::Outbound);
    other.protect_rtp(&mut p).unwrap();
    assert_eq!(rx.unprotect_rtp(&mut p), Err(SrtpError::TooManySsrcs));
}
