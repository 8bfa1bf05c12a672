//! Serializing messages. Typed headers go first in the order RFC 3261 §7.3.1 recommends
//! (Via, then the dialog identifiers), then the other headers in order, then a Content-Length
//! computed from the body, so a message can never announce a length it does not carry.

use super::{Headers, Request, Response};
use std::fmt::Write;

pub(super) fn request(r: &Request) -> Vec<u8> {
    let mut s = String::with_capacity(512 + r.body.len());
    let _ = write!(s, "{} {} SIP/2.0\r\n", r.method, r.uri);
    for via in &r.via {
        let _ = write!(s, "Via: {via}\r\n");
    }
    for route in &r.route {
        let _ = write!(s, "Route: {route}\r\n");
    }
    let _ = write!(s, "Max-Forwards: {}\r\n", r.max_forwards);
    common(&mut s, &r.from, &r.to, &r.call_id, &r.cseq);
    for rr in &r.record_route {
        let _ = write!(s, "Record-Route: {rr}\r\n");
    }
    for c in &r.contact {
        let _ = write!(s, "Contact: {c}\r\n");
    }
    finish(s, &r.headers, &r.body)
}

pub(super) fn response(r: &Response) -> Vec<u8> {
    let mut s = String::with_capacity(512 + r.body.len());
    let _ = write!(s, "SIP/2.0 {} {}\r\n", r.status, r.reason);
    for via in &r.via {
        let _ = write!(s, "Via: {via}\r\n");
    }
    for rr in &r.record_route {
        let _ = write!(s, "Record-Route: {rr}\r\n");
    }
    common(&mut s, &r.from, &r.to, &r.call_id, &r.cseq);
    for c in &r.contact {
        let _ = write!(s, "Contact: {c}\r\n");
    }
    finish(s, &r.headers, &r.body)
}

fn common(
    s: &mut String,
    from: &super::NameAddr,
    to: &super::NameAddr,
    call_id: &str,
    cseq: &super::CSeq,
) {
    let _ = write!(
        s,
        "From: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq}\r\n"
    );
}

fn finish(mut s: String, headers: &Headers, body: &[u8]) -> Vec<u8> {
    for (name, value) in headers.iter() {
        if name.eq_ignore_ascii_case("Content-Length") {
            continue;
        }
        let _ = write!(s, "{name}: {value}\r\n");
    }
    let _ = write!(s, "Content-Length: {}\r\n\r\n", body.len());
    let mut out = s.into_bytes();
    out.extend_from_slice(body);
    out
}
