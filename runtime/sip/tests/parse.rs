//! Hostile and malformed messages: each gets the RFC's response or is dropped, never a panic.

mod common;

use common::*;
use sma_sip::message::{
    parse_message, reject_too_large, FramingError, Message, ParseErrorKind, ParseLimits,
    StreamFramer,
};

const GOOD: &str = "INVITE sip:+15550100@sma.example;user=phone SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK74bf9;rport\r\n\
Max-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@atlanta.example>;tag=9fxced76sl\r\n\
To: <sip:+15550100@sma.example>\r\n\
Call-ID: 3848276298220188511@atlanta.example\r\n\
CSeq: 2 INVITE\r\n\
Contact: <sip:alice@192.0.2.10:5060>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\r\nv=0\n";

fn parse_bytes(bytes: &[u8]) -> Result<Message, sma_sip::message::ParseError> {
    parse_message(bytes, &ParseLimits::default())
}

/// Asserts a request is rejected with `status` and a reason that contains `needle`.
fn rejected(bytes: &[u8], status: u16, needle: &str) {
    let err = parse_bytes(bytes).expect_err("must not parse");
    let reply = err
        .reply
        .unwrap_or_else(|| panic!("no reply for {:?}", err.kind));
    assert_eq!(reply.status, status, "{:?}", err.kind);
    assert!(
        reply.reason.contains(needle),
        "reason `{}` should name `{needle}`",
        reply.reason
    );
    // The reply itself is a valid response.
    let text = reply.to_bytes();
    let Ok(Message::Response(r)) = parse_bytes(&text) else {
        panic!("reply does not parse: {}", String::from_utf8_lossy(&text))
    };
    assert_eq!(r.status, status);
    if String::from_utf8_lossy(bytes).contains("Call-ID: 3848276298220188511@atlanta.example") {
        assert_eq!(r.call_id, "3848276298220188511@atlanta.example");
    }
}

fn dropped(bytes: &[u8]) -> ParseErrorKind {
    let err = parse_bytes(bytes).expect_err("must not parse");
    assert!(err.reply.is_none(), "{:?} should be dropped", err.kind);
    err.kind
}

#[test]
fn good_invite_parses_and_round_trips() {
    let Message::Request(r) = parse_bytes(GOOD.as_bytes()).unwrap() else {
        panic!()
    };
    assert_eq!(r.uri.user.as_deref(), Some("+15550100"));
    assert_eq!(r.from.display_name.as_deref(), Some("Alice"));
    assert_eq!(r.body, b"v=0\n");
    assert_eq!(r.headers.get("content-type"), Some("application/sdp"));
    let again = parse_bytes(&r.to_bytes()).unwrap();
    assert_eq!(again, Message::Request(r));
}

#[test]
fn compact_forms_and_folding_are_understood() {
    let text = "OPTIONS sip:sma.example SIP/2.0\r\n\
v: SIP/2.0/TCP h.example;branch=z9hG4bK1\r\n\
Max-Forwards: 70\r\n\
f: <sip:a@h.example>;tag=1\r\nt: <sip:sma.example>\r\ni: abc\r\n\
CSeq:\r\n  7\r\n\tOPTIONS\r\n\
k: timer, 100rel\r\nl: 0\r\n\r\n";
    let Message::Request(r) = parse_bytes(text.as_bytes()).unwrap() else {
        panic!()
    };
    assert_eq!(r.call_id, "abc");
    assert_eq!(r.cseq.seq, 7);
    assert_eq!(
        r.headers.tokens("Supported").collect::<Vec<_>>(),
        ["timer", "100rel"]
    );
}

#[test]
fn a_value_that_starts_on_a_continuation_line_has_no_leading_space() {
    // Found by the sip_message fuzz target: `X-Thing:` with its value on the next line was
    // kept as ` value`, written back with two spaces, and read back without them.
    let text = "OPTIONS sip:sma.example SIP/2.0\r\nVia: SIP/2.0/UDP h.example;branch=z9hG4bK1\r\n\
Max-Forwards: 70\r\nFrom: <sip:a@h.example>;tag=1\r\nTo: <sip:sma.example>\r\nCall-ID: abc\r\n\
CSeq: 1 OPTIONS\r\nX-Thing:\r\n \"Alice\" <sip:a@h>\r\nContent-Length: 0\r\n\r\n";
    let message = parse_bytes(text.as_bytes()).unwrap();
    let Message::Request(r) = &message else {
        panic!()
    };
    assert_eq!(r.headers.get("X-Thing"), Some("\"Alice\" <sip:a@h>"));
    let written = message.to_bytes();
    assert_eq!(parse_bytes(&written).unwrap().to_bytes(), written);
    // A blank continuation line adds nothing (it left a trailing space).
    let blank = text.replace("X-Thing:\r\n ", "X-Thing: a\r\n \r\n ");
    let message = parse_bytes(blank.as_bytes()).unwrap();
    let Message::Request(r) = &message else {
        panic!()
    };
    assert_eq!(r.headers.get("X-Thing"), Some("a \"Alice\" <sip:a@h>"));
    let written = message.to_bytes();
    assert_eq!(parse_bytes(&written).unwrap().to_bytes(), written);
}

#[test]
fn a_malformed_start_line_is_answered_when_the_request_can_be_addressed() {
    // Nothing to address a reply with: dropped.
    assert!(matches!(
        dropped(b"HELLO\r\nVia: x\r\n\r\n"),
        ParseErrorKind::StartLine(_)
    ));
    // Readable Via and CSeq: 400 naming the start line.
    for broken in [
        GOOD.replacen("INVITE sip", "INVITE  sip", 1),
        // A Request-URI with spaces.
        GOOD.replacen(
            "sip:+15550100@sma.example",
            "sip:+1 555 0100@sma.example",
            1,
        ),
        // Leading and trailing whitespace in the start line.
        format!(" {GOOD}"),
        GOOD.replacen("SIP/2.0\r\n", "SIP/2.0 \r\n", 1),
    ] {
        rejected(broken.as_bytes(), 400, "start line");
    }
}

#[test]
fn requests_peers_send_in_the_wild_get_answers() {
    // SIP/7.0: 505, as for any other version.
    rejected(
        GOOD.replacen("SIP/2.0\r\nVia", "SIP/7.0\r\nVia", 1)
            .as_bytes(),
        505,
        "SIP/7.0",
    );
    // An unquoted display name with characters a token cannot have.
    rejected(
        GOOD.replacen("\"Alice\" <sip:alice", "Alice <Smith> <sip:alice", 1)
            .as_bytes(),
        400,
        "From",
    );
}

#[test]
fn valid_messages_that_look_odd_are_accepted() {
    // A NUL inside a quoted string is a legal quoted-pair.
    let text = GOOD.replacen("\"Alice\"", "\"Al\\\0ice\"", 1);
    let Ok(Message::Request(r)) = parse_bytes(text.as_bytes()) else {
        panic!("a quoted-pair NUL must parse");
    };
    assert!(r.from.display_name.unwrap().contains('\0'));
    // A lower Via with a transport this stack does not serve is carried as it is.
    let text = GOOD.replacen(
        "Max-Forwards",
        "Via: SIP/2.0/SCTP proxy.example:5060;branch=z9hG4bKsctp\r\nMax-Forwards",
        1,
    );
    let Ok(Message::Request(r)) = parse_bytes(text.as_bytes()) else {
        panic!("a lower SCTP Via must parse");
    };
    assert_eq!(r.via.len(), 2);
    assert!(String::from_utf8_lossy(&r.response(200).to_bytes())
        .contains("Via: SIP/2.0/SCTP proxy.example:5060;branch=z9hG4bKsctp"));
    // RFC 2543: no Max-Forwards (70 assumed), no magic cookie in the branch.
    let text = GOOD.replacen("Max-Forwards: 70\r\n", "", 1).replacen(
        "branch=z9hG4bK74bf9",
        "branch=old2543",
        1,
    );
    let Ok(Message::Request(r)) = parse_bytes(text.as_bytes()) else {
        panic!("an RFC 2543 request must parse");
    };
    assert_eq!(r.max_forwards, 70);
}

#[test]
fn other_sip_version_gets_505() {
    rejected(
        GOOD.replacen("SIP/2.0\r\n", "SIP/3.0\r\n", 1).as_bytes(),
        505,
        "SIP/3.0",
    );
}

#[test]
fn bad_header_syntax_gets_400() {
    rejected(
        GOOD.replacen("Max-Forwards: 70", "Max-Forwards 70", 1)
            .as_bytes(),
        400,
        "malformed header line",
    );
    rejected(
        GOOD.replacen("Max-Forwards: 70", "Max-Forwards: seventy", 1)
            .as_bytes(),
        400,
        "Max-Forwards",
    );
    rejected(
        GOOD.replacen(
            "<sip:alice@192.0.2.10:5060>",
            "<sip:alice@192.0.2.10:5060",
            1,
        )
        .as_bytes(),
        400,
        "Contact",
    );
}

#[test]
fn each_missing_mandatory_header_is_named() {
    // Without To, From or Call-ID a client can still match the reply (Via and CSeq): 400
    // naming what is missing, the rest filled in.
    for header in ["To: ", "From: ", "Call-ID: "] {
        let start = GOOD.find(header).unwrap();
        let end = start + GOOD[start..].find("\r\n").unwrap() + 2;
        let text = format!("{}{}", &GOOD[..start], &GOOD[end..]);
        rejected(
            text.as_bytes(),
            400,
            &format!("missing {}", header.trim_end_matches(": ")),
        );
    }
    // Without CSeq or Via no response can be addressed: dropped.
    for header in ["CSeq: ", "Via: "] {
        let start = GOOD.find(header).unwrap();
        let end = start + GOOD[start..].find("\r\n").unwrap() + 2;
        let text = format!("{}{}", &GOOD[..start], &GOOD[end..]);
        let kind = dropped(text.as_bytes());
        assert!(
            kind.to_string().contains(header.trim_end_matches(": ")),
            "{kind} should name {header}"
        );
    }
}

#[test]
fn duplicate_single_headers_are_rejected() {
    rejected(
        GOOD.replacen("CSeq:", "Call-ID: other\r\nCSeq:", 1)
            .as_bytes(),
        400,
        "more than one Call-ID",
    );
}

#[test]
fn cseq_method_mismatch_gets_400() {
    rejected(
        GOOD.replacen("CSeq: 2 INVITE", "CSeq: 2 BYE", 1).as_bytes(),
        400,
        "CSeq method",
    );
}

#[test]
fn content_length_larger_than_body_gets_400_and_smaller_truncates() {
    rejected(
        GOOD.replacen("Content-Length: 4", "Content-Length: 400", 1)
            .as_bytes(),
        400,
        "Content-Length 400",
    );
    let Message::Request(r) = parse_bytes(
        GOOD.replacen("Content-Length: 4", "Content-Length: 2", 1)
            .as_bytes(),
    )
    .unwrap() else {
        panic!()
    };
    assert_eq!(
        r.body, b"v=",
        "bytes past Content-Length are discarded (RFC 3261 18.3)"
    );
    rejected(
        GOOD.replacen("Content-Length: 4", "Content-Length: -1", 1)
            .as_bytes(),
        400,
        "Content-Length",
    );
}

#[test]
fn huge_header_counts_and_lengths_get_400() {
    let many = "X-Pad: 1\r\n".repeat(300);
    rejected(
        GOOD.replacen("Content-Type", &format!("{many}Content-Type"), 1)
            .as_bytes(),
        400,
        "more than 256 header fields",
    );
    let long = format!("X-Long: {}\r\n", "a".repeat(9000));
    rejected(
        GOOD.replacen("Content-Type", &format!("{long}Content-Type"), 1)
            .as_bytes(),
        400,
        "longer than 8192",
    );
}

#[test]
fn oversize_message_gets_513() {
    let body = "a".repeat(70_000);
    let text = GOOD.replacen(
        "Content-Length: 4\r\n\r\nv=0\n",
        &format!("Content-Length: {}\r\n\r\n{body}", body.len()),
        1,
    );
    rejected(text.as_bytes(), 513, "exceeds");
}

#[test]
fn nul_bytes_and_invalid_utf8_get_400() {
    rejected(
        GOOD.replacen("Contact: <", "Contact: \0<", 1).as_bytes(),
        400,
        "NUL",
    );
    let mut bytes = GOOD.as_bytes().to_vec();
    let at = GOOD.find("Content-Type").unwrap();
    bytes.splice(at..at, b"X-Junk: \xff\xfe\r\n".iter().copied());
    rejected(&bytes, 400, "UTF-8");
    // Binary bodies are fine.
    let mut bytes = GOOD.as_bytes().to_vec();
    let len = bytes.len();
    bytes[len - 2] = 0xff;
    assert!(parse_bytes(&bytes).is_ok());
}

#[test]
fn unknown_uri_scheme_gets_416() {
    rejected(
        GOOD.replacen(
            "INVITE sip:+15550100@sma.example;user=phone",
            "INVITE http://sma.example",
            1,
        )
        .as_bytes(),
        416,
        "http",
    );
    rejected(
        GOOD.replacen(
            "INVITE sip:+15550100@sma.example;user=phone",
            "INVITE sip:@",
            1,
        )
        .as_bytes(),
        400,
        "Request-URI",
    );
}

#[test]
fn malformed_responses_are_dropped() {
    let resp = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    assert!(parse_bytes(resp.as_bytes()).is_ok());
    assert!(matches!(
        dropped(resp.replacen("200", "999", 1).as_bytes()),
        ParseErrorKind::StatusCode(_)
    ));
    assert!(matches!(
        dropped(resp.replacen("200", "099", 1).as_bytes()),
        ParseErrorKind::StatusCode(_)
    ));
    assert!(matches!(
        dropped(resp.replacen("200 OK", "2x0 OK", 1).as_bytes()),
        ParseErrorKind::StartLine(_)
    ));
    dropped(
        resp.replacen("Content-Length: 0", "Content-Length: 9", 1)
            .as_bytes(),
    );
    dropped(resp.replacen("CSeq: 1 INVITE\r\n", "", 1).as_bytes());
}

#[test]
fn unterminated_and_empty_input_is_dropped() {
    assert_eq!(dropped(b""), ParseErrorKind::Unterminated);
    assert_eq!(dropped(b"\r\n\r\n"), ParseErrorKind::Unterminated);
    assert_eq!(
        dropped(&GOOD.as_bytes()[..60]),
        ParseErrorKind::Unterminated
    );
}

#[test]
fn every_prefix_and_byte_flip_is_handled_without_panic() {
    let bytes = GOOD.as_bytes();
    for end in 0..bytes.len() {
        let _ = parse_bytes(&bytes[..end]);
    }
    for i in 0..bytes.len() {
        for b in [0u8, b'\r', b'\n', b':', b';', b'<', b'"', 0xff, b' '] {
            let mut copy = bytes.to_vec();
            copy[i] = b;
            let _ = parse_bytes(&copy);
        }
    }
}

#[test]
fn stream_framer_splits_by_content_length() {
    let mut framer = StreamFramer::new();
    let limits = ParseLimits::default();
    let two = format!("\r\n\r\n{GOOD}{GOOD}");
    let (a, b) = two.as_bytes().split_at(100);
    framer.push(a);
    assert!(framer.next_frame(&limits).is_none());
    framer.push(b);
    for _ in 0..2 {
        let frame = framer.next_frame(&limits).unwrap().unwrap();
        assert!(parse_bytes(&frame).is_ok());
    }
    assert!(framer.next_frame(&limits).is_none());
    assert_eq!(framer.buffered(), 0);
    // A declared length beyond the limit fails at once, before the body arrives.
    framer.push(
        GOOD.replacen("Content-Length: 4", "Content-Length: 999999", 1)
            .as_bytes(),
    );
    let Some(Err(FramingError::TooLarge { size, limit, head })) = framer.next_frame(&limits) else {
        panic!("expected TooLarge")
    };
    let reply = reject_too_large(&head, size, limit).expect("addressable");
    assert_eq!(reply.status, 513);
    assert!(
        reply.reason.contains("65535-byte limit"),
        "{}",
        reply.reason
    );
}

#[test]
fn responses_to_requests_parse_back() {
    let r = request(&invite_text("z9hG4bK1", "UDP", ""));
    let resp = r.response(486);
    let Message::Response(back) = parse_bytes(&resp.to_bytes()).unwrap() else {
        panic!()
    };
    assert_eq!(back.status, 486);
    assert_eq!(back.reason, "Busy Here");
}
