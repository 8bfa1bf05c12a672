//! Parsing SIP messages from bytes (RFC 3261 §7, §18.3, §25).
//!
//! Hostile input never panics. A request that breaks the grammar gets the status the RFC
//! prescribes (400 with a reason naming the problem, 416 for an unknown URI scheme, 505 for
//! another SIP version, 513 for an oversize message) when enough of it parsed to address a
//! response (Via, From, To, Call-ID, CSeq); otherwise, and for every malformed response, the
//! error has no reply and the caller drops and counts it.

use super::header::{CSeq, NameAddr, Via};
use super::uri::{Uri, UriError};
use super::{reason_phrase, Headers, Message, Method, Request, Response};
use std::borrow::Cow;

/// Bounds on what the parser accepts.
#[derive(Debug, Clone, Copy)]
pub struct ParseLimits {
    /// Whole message, head and body (513 beyond it).
    pub max_message_bytes: usize,
    /// Header fields (400 beyond it).
    pub max_headers: usize,
    /// One header field, folded lines included (400 beyond it).
    pub max_header_line_bytes: usize,
}

impl Default for ParseLimits {
    fn default() -> ParseLimits {
        ParseLimits {
            max_message_bytes: 65_535,
            max_headers: 256,
            max_header_line_bytes: 8_192,
        }
    }
}

/// What was wrong with a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    #[error("message of {size} bytes exceeds the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error("no blank line ends the header section")]
    Unterminated,
    #[error("NUL byte in the message head")]
    NulByte,
    #[error("message head is not valid UTF-8")]
    InvalidUtf8,
    #[error("malformed start line `{0}`")]
    StartLine(String),
    #[error("unsupported SIP version `{0}`")]
    Version(String),
    #[error("status code {0} outside 100-699")]
    StatusCode(String),
    #[error("Request-URI: {0}")]
    RequestUri(UriError),
    #[error("malformed header line `{0}`")]
    HeaderLine(String),
    #[error("more than {0} header fields")]
    TooManyHeaders(usize),
    #[error("header field longer than {0} bytes")]
    HeaderTooLong(usize),
    #[error("missing {0} header")]
    Missing(&'static str),
    #[error("more than one {0} header")]
    Duplicate(&'static str),
    #[error("bad {name} header: {why}")]
    BadHeader { name: &'static str, why: String },
    #[error("CSeq method {cseq} does not match request method {method}")]
    CSeqMethodMismatch { cseq: String, method: String },
    #[error("Content-Length {declared} larger than the {actual}-byte body")]
    BodyTruncated { declared: usize, actual: usize },
}

/// A message that did not parse, with the response to send back when one is possible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct ParseError {
    pub kind: ParseErrorKind,
    /// The stateless reply for a request, when its Via, From, To, Call-ID and CSeq were
    /// readable; `None` means drop the message and count it.
    pub reply: Option<Box<Rejection>>,
}

/// A stateless error response to a request that did not parse (RFC 3261 §8.2.6, §16.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    pub reason: String,
    via: Vec<String>,
    from: String,
    to: String,
    call_id: String,
    cseq: String,
    /// The top Via, parsed, so the caller can route the response (RFC 3261 §18.2.2).
    pub top_via: Option<Via>,
}

impl Rejection {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("SIP/2.0 {} {}\r\n", self.status, self.reason);
        for via in &self.via {
            out.push_str(&format!("Via: {via}\r\n"));
        }
        out.push_str(&format!(
            "From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
            self.from, self.to, self.call_id, self.cseq
        ));
        out.into_bytes()
    }
}

/// Canonical header names, with compact forms (RFC 3261 §7.3.3, RFC 4028) expanded.
fn canonical_name(name: &str) -> Option<&'static str> {
    const NAMES: &[&str] = &[
        "Via",
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Max-Forwards",
        "Contact",
        "Route",
        "Record-Route",
        "Content-Length",
        "Content-Type",
        "Content-Encoding",
        "Supported",
        "Require",
        "Proxy-Require",
        "Unsupported",
        "Allow",
        "Accept",
        "Subject",
        "Session-Expires",
        "Min-SE",
        "User-Agent",
        "Server",
        "Authorization",
        "Proxy-Authorization",
        "WWW-Authenticate",
        "Proxy-Authenticate",
        "Expires",
        "Event",
        "Refer-To",
        "Retry-After",
        "Timestamp",
    ];
    // Most senders use the canonical case: an exact match first is cheaper.
    if let Some(exact) = NAMES.iter().copied().find(|n| *n == name) {
        return Some(exact);
    }
    if name.len() == 1 {
        return Some(match name.as_bytes()[0].to_ascii_lowercase() {
            b'v' => "Via",
            b'f' => "From",
            b't' => "To",
            b'i' => "Call-ID",
            b'm' => "Contact",
            b'l' => "Content-Length",
            b'c' => "Content-Type",
            b'e' => "Content-Encoding",
            b'k' => "Supported",
            b's' => "Subject",
            b'x' => "Session-Expires",
            b'o' => "Event",
            b'r' => "Refer-To",
            _ => return None,
        });
    }
    NAMES.iter().copied().find(|n| n.eq_ignore_ascii_case(name))
}

/// Raw values of the headers needed to address a reply, gathered before typed parsing so a
/// broken message can still be answered.
#[derive(Default)]
struct RawCore {
    via: Vec<String>,
    from: Option<String>,
    to: Option<String>,
    call_id: Option<String>,
    cseq: Option<String>,
}

impl RawCore {
    fn from_fields(fields: &[(&'static str, Cow<str>)]) -> RawCore {
        let mut raw = RawCore::default();
        for (name, value) in fields {
            let first = |slot: &mut Option<String>| {
                if slot.is_none() {
                    *slot = Some(value.to_string());
                }
            };
            match *name {
                "Via" => raw.via.push(value.to_string()),
                "From" => first(&mut raw.from),
                "To" => first(&mut raw.to),
                "Call-ID" => first(&mut raw.call_id),
                "CSeq" => first(&mut raw.cseq),
                _ => {}
            }
        }
        raw
    }

    /// The stateless reply, when a client could match it: a top Via (its branch and
    /// sent-by) and a CSeq (its method) are all a client transaction matches a response by
    /// (RFC 3261 §17.1.3). A missing From, To or Call-ID is filled in (`request_uri` becomes
    /// the To), so a request lacking one still learns what was wrong.
    fn rejection(
        &self,
        status: u16,
        why: &str,
        request_uri: Option<&str>,
    ) -> Option<Box<Rejection>> {
        let top_via = self
            .via
            .first()
            .and_then(|v| {
                super::header::split_outside_quotes(v, b',')
                    .first()
                    .map(|s| s.to_string())
            })
            .and_then(|v| Via::parse(&v).ok())?;
        let mut reason: String = format!("{} ({why})", reason_phrase(status))
            .chars()
            .filter(|c| !c.is_control())
            .take(160)
            .collect();
        if reason.is_empty() {
            reason = reason_phrase(status).to_owned();
        }
        // Values are echoed as received (RFC 3261 §8.2.6.2) minus control characters, so a
        // NUL or CR smuggled into a header cannot reach the reply.
        let clean = |v: &String| -> String { v.chars().filter(|c| !c.is_control()).collect() };
        let cseq = clean(self.cseq.as_ref()?);
        let uri = request_uri
            .map(|u| u.chars().filter(|c| !c.is_control() && *c != '>').collect())
            .filter(|u: &String| !u.is_empty())
            .unwrap_or_else(|| "sip:unknown.invalid".to_owned());
        // An address that does not parse (the reason for the 400, perhaps) is not echoed:
        // the reply must parse at the client.
        let address = |raw: &Option<String>| {
            raw.as_ref()
                .map(clean)
                .filter(|a| NameAddr::parse(a).is_ok())
        };
        Some(Box::new(Rejection {
            status,
            reason,
            via: self.via.iter().map(clean).collect(),
            from: address(&self.from)
                .unwrap_or_else(|| "<sip:anonymous@anonymous.invalid>;tag=missing".to_owned()),
            to: address(&self.to).unwrap_or_else(|| format!("<{uri}>")),
            call_id: self
                .call_id
                .as_ref()
                .map(clean)
                .filter(|c| !c.trim().is_empty())
                .unwrap_or_else(|| "missing".to_owned()),
            cseq,
            top_via: Some(top_via),
        }))
    }
}

/// Parses one datagram. Leading CRLFs (keep-alives) are skipped; bytes past Content-Length
/// are discarded, as RFC 3261 §18.3 says.
pub fn parse_datagram(bytes: &[u8], limits: &ParseLimits) -> Result<Message, ParseError> {
    parse_message(bytes, limits)
}

/// Parses one complete message (a datagram, or a frame from [`StreamFramer`]).
pub fn parse_message(bytes: &[u8], limits: &ParseLimits) -> Result<Message, ParseError> {
    let start = bytes
        .iter()
        .position(|b| *b != b'\r' && *b != b'\n')
        .unwrap_or(bytes.len());
    let bytes = &bytes[start..];
    let bare = |kind| ParseError { kind, reply: None };
    let (head_len, body_start) = find_head_end(bytes).ok_or(bare(ParseErrorKind::Unterminated))?;
    let head = &bytes[..head_len];
    // NUL bytes (but for an escaped one inside a quoted string, RFC 3261 §25.1 quoted-pair)
    // and invalid UTF-8 are errors, but the head is still read (lossily) so the request can
    // be answered with a 400 that names the problem.
    let mut header_error: Option<ParseErrorKind> = if stray_nul(head) {
        Some(ParseErrorKind::NulByte)
    } else {
        None
    };
    let head = match std::str::from_utf8(head) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => {
            header_error.get_or_insert(ParseErrorKind::InvalidUtf8);
            String::from_utf8_lossy(head)
        }
    };
    let body = &bytes[body_start..];

    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let start_line = lines.next().unwrap_or("");
    let start = StartLine::parse(start_line);

    // Gather header fields, unfolding continuation lines. Values borrow from the input unless
    // a folded line forced a copy.
    let mut fields: Vec<(&str, Cow<str>)> = Vec::with_capacity(24);
    let mut count = 0usize;
    for line in lines {
        if line.starts_with(' ') || line.starts_with('\t') {
            match fields.last_mut() {
                Some((_, value)) => {
                    // Folding whitespace is one space between the parts; a field whose value
                    // starts on the continuation line, or a blank continuation, adds none (a
                    // leading or trailing space would not survive being written and read
                    // back).
                    let more = line.trim();
                    if !more.is_empty() {
                        let value = value.to_mut();
                        if !value.is_empty() {
                            value.push(' ');
                        }
                        value.push_str(more);
                    }
                    if value.len() > limits.max_header_line_bytes {
                        header_error.get_or_insert(ParseErrorKind::HeaderTooLong(
                            limits.max_header_line_bytes,
                        ));
                    }
                }
                None => {
                    header_error.get_or_insert(ParseErrorKind::HeaderLine(truncate(line)));
                }
            }
            continue;
        }
        count += 1;
        if count > limits.max_headers {
            header_error.get_or_insert(ParseErrorKind::TooManyHeaders(limits.max_headers));
            break;
        }
        if line.len() > limits.max_header_line_bytes {
            header_error.get_or_insert(ParseErrorKind::HeaderTooLong(limits.max_header_line_bytes));
            continue;
        }
        match line.split_once(':') {
            Some((name, value))
                if !name.trim_end().is_empty()
                    && name.trim_end().bytes().all(super::is_token_byte) =>
            {
                fields.push((name.trim_end(), Cow::Borrowed(value.trim())));
            }
            _ => {
                header_error.get_or_insert(ParseErrorKind::HeaderLine(truncate(line)));
            }
        }
    }
    // Known headers by canonical name (compact forms expanded); the rest kept as they came.
    let mut known: Vec<(&'static str, Cow<str>)> = Vec::with_capacity(fields.len());
    let mut other = Headers::new();
    for (name, value) in fields {
        match canonical_name(name) {
            Some(canonical) => known.push((canonical, value)),
            None => other.push(name, value.into_owned()),
        }
    }
    let raw = || RawCore::from_fields(&known);
    // The Request-URI as written, for a reply's To when the request has none.
    let request_uri = start_line.split_whitespace().nth(1);

    // A line that is not a response's is a request's, however broken: it may be answered.
    let is_request = !start_line.trim_start().starts_with("SIP/");
    let fail = |kind: ParseErrorKind, status: u16| {
        let reply = if is_request {
            raw().rejection(status, &kind.to_string(), request_uri)
        } else {
            None
        };
        ParseError { kind, reply }
    };
    if bytes.len() > limits.max_message_bytes {
        return Err(fail(
            ParseErrorKind::TooLarge {
                size: bytes.len(),
                limit: limits.max_message_bytes,
            },
            513,
        ));
    }
    let start = match start {
        Ok(s) => s,
        Err(kind @ ParseErrorKind::Version(_)) => return Err(fail(kind, 505)),
        // A request whose start line cannot be read (a Request-URI with spaces, stray
        // whitespace) is still answered when its Via and CSeq can be.
        Err(kind) => return Err(fail(kind, 400)),
    };
    if let Some(kind) = header_error {
        return Err(fail(kind, 400));
    }

    let mut core = Core::default();
    for (name, value) in &known {
        core.take(name, value, &mut other)
            .map_err(|kind| fail(kind, 400))?;
    }

    // Body framing by Content-Length (RFC 3261 §18.3).
    let body = match core.content_length {
        Some(declared) if declared > body.len() => {
            return Err(fail(
                ParseErrorKind::BodyTruncated {
                    declared,
                    actual: body.len(),
                },
                400,
            ))
        }
        Some(declared) => &body[..declared],
        None => body,
    };

    let via = core.via;
    if via.is_empty() {
        return Err(fail(ParseErrorKind::Missing("Via"), 400));
    }
    let from = core
        .from
        .ok_or_else(|| fail(ParseErrorKind::Missing("From"), 400))?;
    let to = core
        .to
        .ok_or_else(|| fail(ParseErrorKind::Missing("To"), 400))?;
    let call_id = core
        .call_id
        .ok_or_else(|| fail(ParseErrorKind::Missing("Call-ID"), 400))?;
    let cseq = core
        .cseq
        .ok_or_else(|| fail(ParseErrorKind::Missing("CSeq"), 400))?;

    match start {
        StartLine::Request { method, uri } => {
            let uri = match uri {
                Ok(uri) => uri,
                Err(e @ UriError::UnsupportedScheme(_)) => {
                    return Err(fail(ParseErrorKind::RequestUri(e), 416))
                }
                Err(e) => return Err(fail(ParseErrorKind::RequestUri(e), 400)),
            };
            if cseq.method != method {
                return Err(fail(
                    ParseErrorKind::CSeqMethodMismatch {
                        cseq: cseq.method.to_string(),
                        method: method.to_string(),
                    },
                    400,
                ));
            }
            // RFC 2543 requests have no Max-Forwards: taken as 70 (RFC 3261 §8.1.1.6, §16.6).
            let max_forwards = core.max_forwards.unwrap_or(70);
            Ok(Message::Request(Request {
                method,
                uri,
                via,
                from,
                to,
                call_id,
                cseq,
                max_forwards,
                contact: core.contact,
                route: core.route,
                record_route: core.record_route,
                headers: other,
                body: body.to_vec(),
            }))
        }
        StartLine::Response { status, reason } => Ok(Message::Response(Response {
            status,
            reason,
            via,
            from,
            to,
            call_id,
            cseq,
            contact: core.contact,
            record_route: core.record_route,
            headers: other,
            body: body.to_vec(),
        })),
    }
}

/// Whether `head` has a NUL byte that is not an escaped character of a quoted string.
fn stray_nul(head: &[u8]) -> bool {
    if !head.contains(&0) {
        return false;
    }
    let (mut in_quotes, mut escaped) = (false, false);
    for &b in head {
        if escaped {
            escaped = false;
            continue;
        }
        match b {
            b'\\' if in_quotes => escaped = true,
            b'"' => in_quotes = !in_quotes,
            b'\n' => in_quotes = false,
            0 => return true,
            _ => {}
        }
    }
    false
}

fn truncate(line: &str) -> String {
    line.chars().take(60).collect()
}

/// The end of the header section: (length of the head, start of the body).
fn find_head_end(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while let Some(off) = bytes[i..].iter().position(|b| *b == b'\n') {
        let nl = i + off;
        if bytes.get(nl + 1) == Some(&b'\n') {
            return Some((nl, nl + 2));
        }
        if bytes.get(nl + 1) == Some(&b'\r') && bytes.get(nl + 2) == Some(&b'\n') {
            let head_end = if nl > 0 && bytes[nl - 1] == b'\r' {
                nl - 1
            } else {
                nl
            };
            return Some((head_end, nl + 3));
        }
        i = nl + 1;
    }
    None
}

enum StartLine {
    Request {
        method: Method,
        uri: Result<Uri, UriError>,
    },
    Response {
        status: u16,
        reason: String,
    },
}

impl StartLine {
    fn parse(line: &str) -> Result<StartLine, ParseErrorKind> {
        let bad = || ParseErrorKind::StartLine(truncate(line));
        if let Some(rest) = line.strip_prefix("SIP/") {
            let (version, rest) = rest.split_once(' ').ok_or_else(bad)?;
            if version != "2.0" {
                return Err(ParseErrorKind::Version(format!("SIP/{version}")));
            }
            let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
            if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let status: u16 = code.parse().map_err(|_| bad())?;
            if !(100..=699).contains(&status) {
                return Err(ParseErrorKind::StatusCode(code.to_owned()));
            }
            return Ok(StartLine::Response {
                status,
                reason: reason.to_owned(),
            });
        }
        let mut parts = line.split(' ');
        let (method, uri, version) = (parts.next(), parts.next(), parts.next());
        if parts.next().is_some() {
            return Err(bad());
        }
        let (method, uri, version) = match (method, uri, version) {
            (Some(m), Some(u), Some(v)) if !u.is_empty() => (m, u, v),
            _ => return Err(bad()),
        };
        let method = Method::from_token(method).ok_or_else(bad)?;
        if version != "SIP/2.0" {
            if version.starts_with("SIP/") {
                return Err(ParseErrorKind::Version(version.to_owned()));
            }
            return Err(bad());
        }
        Ok(StartLine::Request {
            method,
            uri: Uri::parse(uri),
        })
    }
}

#[derive(Default)]
struct Core {
    via: Vec<Via>,
    from: Option<NameAddr>,
    to: Option<NameAddr>,
    call_id: Option<String>,
    cseq: Option<CSeq>,
    max_forwards: Option<u32>,
    content_length: Option<usize>,
    contact: Vec<NameAddr>,
    route: Vec<NameAddr>,
    record_route: Vec<NameAddr>,
}

impl Core {
    fn take(
        &mut self,
        name: &'static str,
        value: &str,
        other: &mut Headers,
    ) -> Result<(), ParseErrorKind> {
        let bad = |why: String| ParseErrorKind::BadHeader { name, why };
        let once = |present: bool| {
            if present {
                Err(ParseErrorKind::Duplicate(name))
            } else {
                Ok(())
            }
        };
        match name {
            "Via" => {
                for v in super::header::split_outside_quotes(value, b',') {
                    self.via.push(Via::parse(v).map_err(bad)?);
                }
            }
            "From" => {
                once(self.from.is_some())?;
                self.from = Some(NameAddr::parse(value).map_err(|e| bad(e.to_string()))?);
            }
            "To" => {
                once(self.to.is_some())?;
                self.to = Some(NameAddr::parse(value).map_err(|e| bad(e.to_string()))?);
            }
            "Call-ID" => {
                once(self.call_id.is_some())?;
                if value.is_empty() || value.bytes().any(|b| b.is_ascii_whitespace() || b == 0) {
                    return Err(bad(format!("`{}` is not a word", truncate(value))));
                }
                self.call_id = Some(value.to_owned());
            }
            "CSeq" => {
                once(self.cseq.is_some())?;
                self.cseq = Some(CSeq::parse(value).map_err(bad)?);
            }
            "Max-Forwards" => {
                once(self.max_forwards.is_some())?;
                let n = value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n <= 255)
                    .ok_or_else(|| bad(format!("`{}` is not 0-255", truncate(value))))?;
                self.max_forwards = Some(n);
            }
            "Content-Length" => {
                once(self.content_length.is_some())?;
                let n = value
                    .parse::<usize>()
                    .map_err(|_| bad(format!("`{}` is not a length", truncate(value))))?;
                self.content_length = Some(n);
            }
            "Contact" if value == "*" => other.push(name, value),
            "Contact" => self
                .contact
                .extend(NameAddr::parse_list(value).map_err(|e| bad(e.to_string()))?),
            "Route" => self
                .route
                .extend(NameAddr::parse_list(value).map_err(|e| bad(e.to_string()))?),
            "Record-Route" => self
                .record_route
                .extend(NameAddr::parse_list(value).map_err(|e| bad(e.to_string()))?),
            _ => other.push(name, value),
        }
        Ok(())
    }
}

/// Frames messages out of a byte stream (TCP, TLS) by Content-Length (RFC 3261 §18.3).
#[derive(Debug, Default)]
pub struct StreamFramer {
    buffer: Vec<u8>,
}

/// A stream that cannot be framed: the connection must be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    #[error("header section exceeds {0} bytes")]
    HeadTooLarge(usize),
    /// `head` is the message's header section, so the caller can still answer 513.
    #[error("message of {size} bytes exceeds the {limit}-byte limit")]
    TooLarge {
        size: usize,
        limit: usize,
        head: Vec<u8>,
    },
    #[error("unreadable Content-Length in stream")]
    BadContentLength,
}

impl StreamFramer {
    pub fn new() -> StreamFramer {
        StreamFramer::default()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// Bytes buffered and not yet framed.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// The next complete message, if one is buffered.
    pub fn next_frame(&mut self, limits: &ParseLimits) -> Option<Result<Vec<u8>, FramingError>> {
        // CRLF keep-alives between messages (RFC 5626 §3.5.1).
        let skip = self
            .buffer
            .iter()
            .position(|b| *b != b'\r' && *b != b'\n')
            .unwrap_or(self.buffer.len());
        self.buffer.drain(..skip);
        if self.buffer.is_empty() {
            return None;
        }
        let Some((head_len, body_start)) = find_head_end(&self.buffer) else {
            if self.buffer.len() > limits.max_message_bytes {
                return Some(Err(FramingError::HeadTooLarge(limits.max_message_bytes)));
            }
            return None;
        };
        let content_length = match content_length(&self.buffer[..head_len]) {
            Ok(n) => n,
            Err(e) => return Some(Err(e)),
        };
        let total = body_start.saturating_add(content_length);
        if total > limits.max_message_bytes {
            return Some(Err(FramingError::TooLarge {
                size: total,
                limit: limits.max_message_bytes,
                head: self.buffer[..body_start].to_vec(),
            }));
        }
        if self.buffer.len() < total {
            return None;
        }
        let frame: Vec<u8> = self.buffer.drain(..total).collect();
        Some(Ok(frame))
    }
}

/// The 513 for a message too large to read whole, built from its header section alone.
pub fn reject_too_large(head: &[u8], size: usize, limit: usize) -> Option<Rejection> {
    let relaxed = ParseLimits {
        max_message_bytes: usize::MAX,
        ..ParseLimits::default()
    };
    let err = parse_message(head, &relaxed).err()?;
    let mut reply = *err.reply?;
    reply.status = 513;
    reply.reason = format!("Message Too Large ({size} bytes exceeds the {limit}-byte limit)");
    Some(reply)
}

/// Content-Length from a raw head; absent means 0.
fn content_length(head: &[u8]) -> Result<usize, FramingError> {
    for line in head.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        if name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l") {
            return std::str::from_utf8(line[colon + 1..].trim_ascii())
                .ok()
                .and_then(|v| v.parse().ok())
                .ok_or(FramingError::BadContentLength);
        }
    }
    Ok(0)
}
