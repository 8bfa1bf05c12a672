//! Session descriptions (RFC 4566) and offer/answer (RFC 3264).

mod negotiate;

pub use negotiate::{
    Codec, LocalMedia, NegotiatedCodec, NegotiatedMedia, NegotiationError, SdpSession,
};

use std::fmt::{self, Write};
use std::net::IpAddr;

/// Upper bound on lines in one description; SDP bodies are small and this caps work on hostile
/// input.
const MAX_LINES: usize = 1_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("SDP is not valid UTF-8")]
    InvalidUtf8,
    #[error("SDP line {line}: {why}")]
    Line { line: usize, why: String },
    #[error("SDP is missing its {0}= line")]
    Missing(char),
    #[error("SDP has more than {MAX_LINES} lines")]
    TooManyLines,
}

/// `o=` (RFC 4566 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub username: String,
    pub session_id: String,
    pub session_version: u64,
    pub address: String,
}

/// `c=IN IP4|IP6 <address>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connection {
    pub address: IpAddr,
}

/// Direction attributes (RFC 3264 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    #[default]
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    fn from_attr(name: &str) -> Option<Direction> {
        Some(match name {
            "sendrecv" => Direction::SendRecv,
            "sendonly" => Direction::SendOnly,
            "recvonly" => Direction::RecvOnly,
            "inactive" => Direction::Inactive,
            _ => return None,
        })
    }

    /// The answerer's direction for an offered one (RFC 3264 §6.1).
    pub fn reverse(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }

    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }
}

/// `a=crypto` (RFC 4568 §9.1): the SDES key exchange. The keys themselves are read by
/// `sma-srtp`; SIP only carries the line. `Debug` leaves the key out: it must never reach a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Crypto {
    pub tag: u32,
    pub suite: String,
    /// `inline:<key||salt>[|lifetime][|MKI:length]`, kept whole.
    pub key_params: String,
    pub session_params: Vec<String>,
}

impl std::fmt::Debug for Crypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crypto")
            .field("tag", &self.tag)
            .field("suite", &self.suite)
            .field("key_params", &"<secret>")
            .field("session_params", &self.session_params)
            .finish()
    }
}

impl Crypto {
    pub fn parse(value: &str) -> Result<Crypto, String> {
        let mut parts = value.split_ascii_whitespace();
        let tag = parts
            .next()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| format!("crypto `{value}` has no numeric tag"))?;
        let suite = parts
            .next()
            .ok_or_else(|| format!("crypto `{value}` has no suite"))?
            .to_owned();
        let key_params = parts
            .next()
            .filter(|k| k.starts_with("inline:"))
            .ok_or_else(|| format!("crypto `{value}` has no inline key"))?
            .to_owned();
        Ok(Crypto {
            tag,
            suite,
            key_params,
            session_params: parts.map(str::to_owned).collect(),
        })
    }

    /// A line with one inline key (`key_and_salt` in base64).
    pub fn inline(tag: u32, suite: &str, key_and_salt: &str) -> Crypto {
        Crypto {
            tag,
            suite: suite.to_owned(),
            key_params: format!("inline:{key_and_salt}"),
            session_params: Vec::new(),
        }
    }

    /// The attribute's value, for `a=crypto:`.
    pub fn value(&self) -> String {
        let mut v = format!("{} {} {}", self.tag, self.suite, self.key_params);
        for p in &self.session_params {
            v.push(' ');
            v.push_str(p);
        }
        v
    }

    /// The base64 key and salt of the `inline:` key parameter.
    pub fn inline_key(&self) -> &str {
        let key = self.key_params.trim_start_matches("inline:");
        key.split('|').next().unwrap_or(key)
    }
}

/// `a=rtpmap:<pt> <encoding>/<clock>[/<channels>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    pub payload_type: u8,
    pub encoding: String,
    pub clock_rate: u32,
    pub channels: Option<u8>,
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    pub media: String,
    pub port: u16,
    pub protocol: String,
    pub formats: Vec<String>,
    pub connection: Option<Connection>,
    /// `a=` lines as (name, value).
    pub attributes: Vec<(String, Option<String>)>,
    /// Other lines (`b=`, `i=`, `k=`) as (type, value), kept for round trips.
    pub other: Vec<(char, String)>,
}

impl MediaDescription {
    /// An empty RTP/AVP audio section on `port`, for this side's offers and answers.
    pub fn audio(port: u16) -> MediaDescription {
        MediaDescription {
            media: "audio".into(),
            port,
            protocol: "RTP/AVP".into(),
            formats: Vec::new(),
            connection: None,
            attributes: Vec::new(),
            other: Vec::new(),
        }
    }

    pub fn attribute(&self, name: &str) -> Option<Option<&str>> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_deref())
    }

    pub fn attributes_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.attributes
            .iter()
            .filter(move |(n, _)| n == name)
            .filter_map(|(_, v)| v.as_deref())
    }

    /// The rtpmap for a payload type, with RFC 3551's static types filled in.
    pub fn rtpmap(&self, payload_type: u8) -> Option<RtpMap> {
        for value in self.attributes_named("rtpmap") {
            let Some((pt, rest)) = value.split_once(' ') else {
                continue;
            };
            if pt.parse::<u8>().ok() != Some(payload_type) {
                continue;
            }
            let mut parts = rest.trim().split('/');
            let encoding = parts.next()?.to_owned();
            let clock_rate = parts.next()?.parse().ok()?;
            let channels = parts.next().and_then(|c| c.parse().ok());
            return Some(RtpMap {
                payload_type,
                encoding,
                clock_rate,
                channels,
            });
        }
        let (encoding, clock_rate) = match payload_type {
            0 => ("PCMU", 8000),
            8 => ("PCMA", 8000),
            9 => ("G722", 8000),
            13 => ("CN", 8000),
            _ => return None,
        };
        Some(RtpMap {
            payload_type,
            encoding: encoding.to_owned(),
            clock_rate,
            channels: None,
        })
    }

    pub fn fmtp(&self, payload_type: u8) -> Option<&str> {
        self.attributes_named("fmtp").find_map(|v| {
            let (pt, params) = v.split_once(' ')?;
            (pt.parse::<u8>().ok() == Some(payload_type)).then_some(params.trim())
        })
    }

    pub fn direction(&self) -> Option<Direction> {
        self.attributes
            .iter()
            .find_map(|(n, _)| Direction::from_attr(n))
    }

    pub fn ptime(&self) -> Option<u32> {
        self.attribute("ptime")
            .flatten()
            .and_then(|v| v.trim().parse().ok())
    }

    pub fn rtcp_mux(&self) -> bool {
        self.attribute("rtcp-mux").is_some()
    }

    /// Every parseable `a=crypto` line.
    pub fn crypto(&self) -> Vec<Crypto> {
        self.attributes_named("crypto")
            .filter_map(|v| Crypto::parse(v).ok())
            .collect()
    }

    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats.iter().filter_map(|f| f.parse().ok())
    }
}

/// A whole session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    pub origin: Origin,
    pub session_name: String,
    pub connection: Option<Connection>,
    /// `t=` start and stop.
    pub timing: (u64, u64),
    pub attributes: Vec<(String, Option<String>)>,
    pub other: Vec<(char, String)>,
    pub media: Vec<MediaDescription>,
}

impl SessionDescription {
    pub fn parse(bytes: &[u8]) -> Result<SessionDescription, SdpError> {
        let text = std::str::from_utf8(bytes).map_err(|_| SdpError::InvalidUtf8)?;
        let mut origin = None;
        let mut session_name = None;
        let mut connection = None;
        let mut timing = (0, 0);
        let mut attributes = Vec::new();
        let mut other = Vec::new();
        let mut media: Vec<MediaDescription> = Vec::new();
        let mut saw_version = false;
        for (index, raw) in text.split('\n').enumerate() {
            let line_no = index + 1;
            if index >= MAX_LINES {
                return Err(SdpError::TooManyLines);
            }
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            if line.is_empty() {
                continue;
            }
            let err = |why: String| SdpError::Line { line: line_no, why };
            let bytes = line.as_bytes();
            if bytes.len() < 2 || bytes[1] != b'=' || !bytes[0].is_ascii_lowercase() {
                return Err(err(format!("`{}` is not <type>=<value>", short(line))));
            }
            let kind = bytes[0] as char;
            let value = &line[2..];
            if !saw_version {
                if kind != 'v' {
                    return Err(err("the first line must be v=".into()));
                }
                if value != "0" {
                    return Err(err(format!("unsupported version v={}", short(value))));
                }
                saw_version = true;
                continue;
            }
            match kind {
                'o' => origin = Some(parse_origin(value).map_err(err)?),
                's' => session_name = Some(value.to_owned()),
                'c' => {
                    let c = parse_connection(value).map_err(err)?;
                    match media.last_mut() {
                        Some(m) => m.connection = Some(c),
                        None => connection = Some(c),
                    }
                }
                't' => {
                    let mut parts = value.split_ascii_whitespace().map(str::parse::<u64>);
                    match (parts.next(), parts.next()) {
                        (Some(Ok(a)), Some(Ok(b))) => timing = (a, b),
                        _ => return Err(err(format!("bad t={}", short(value)))),
                    }
                }
                'm' => media.push(parse_media(value).map_err(err)?),
                'a' => {
                    let attr = match value.split_once(':') {
                        Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
                        None => (value.to_owned(), None),
                    };
                    match media.last_mut() {
                        Some(m) => m.attributes.push(attr),
                        None => attributes.push(attr),
                    }
                }
                'v' => return Err(err("second v= line".into())),
                _ => match media.last_mut() {
                    Some(m) => m.other.push((kind, value.to_owned())),
                    None => other.push((kind, value.to_owned())),
                },
            }
        }
        if !saw_version {
            return Err(SdpError::Missing('v'));
        }
        Ok(SessionDescription {
            origin: origin.ok_or(SdpError::Missing('o'))?,
            session_name: session_name.ok_or(SdpError::Missing('s'))?,
            connection,
            timing,
            attributes,
            other,
            media,
        })
    }

    /// The connection address that applies to a media section.
    pub fn media_address(&self, media: &MediaDescription) -> Option<IpAddr> {
        media.connection.or(self.connection).map(|c| c.address)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }
}

fn short(s: &str) -> String {
    s.chars().take(40).collect()
}

fn parse_origin(value: &str) -> Result<Origin, String> {
    let parts: Vec<&str> = value.split_ascii_whitespace().collect();
    if parts.len() != 6 || parts[3] != "IN" {
        return Err(format!("bad o={}", short(value)));
    }
    let session_version = parts[2]
        .parse()
        .map_err(|_| format!("bad session version `{}`", short(parts[2])))?;
    Ok(Origin {
        username: parts[0].to_owned(),
        session_id: parts[1].to_owned(),
        session_version,
        address: parts[5].to_owned(),
    })
}

fn parse_connection(value: &str) -> Result<Connection, String> {
    let parts: Vec<&str> = value.split_ascii_whitespace().collect();
    if parts.len() != 3 || parts[0] != "IN" || !matches!(parts[1], "IP4" | "IP6") {
        return Err(format!("bad c={}", short(value)));
    }
    // Multicast addresses may carry /ttl; unicast is what telephony uses.
    let address = parts[2].split('/').next().unwrap_or(parts[2]);
    let address = address
        .parse()
        .map_err(|_| format!("bad connection address `{}`", short(address)))?;
    Ok(Connection { address })
}

fn parse_media(value: &str) -> Result<MediaDescription, String> {
    let mut parts = value.split_ascii_whitespace();
    let media = parts.next().ok_or("empty m= line")?.to_owned();
    let port_part = parts.next().ok_or("m= line has no port")?;
    let port = port_part
        .split('/')
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .ok_or_else(|| format!("bad media port `{}`", short(port_part)))?;
    let protocol = parts.next().ok_or("m= line has no protocol")?.to_owned();
    let formats: Vec<String> = parts.map(str::to_owned).collect();
    if formats.is_empty() {
        return Err("m= line has no formats".into());
    }
    Ok(MediaDescription {
        media,
        port,
        protocol,
        formats,
        connection: None,
        attributes: Vec::new(),
        other: Vec::new(),
    })
}

fn write_connection(f: &mut String, c: &Connection) {
    let kind = if c.address.is_ipv4() { "IP4" } else { "IP6" };
    let _ = write!(f, "c=IN {kind} {}\r\n", c.address);
}

fn write_attributes(f: &mut String, attributes: &[(String, Option<String>)]) {
    for (name, value) in attributes {
        match value {
            Some(v) => {
                let _ = write!(f, "a={name}:{v}\r\n");
            }
            None => {
                let _ = write!(f, "a={name}\r\n");
            }
        }
    }
}

impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::with_capacity(512);
        let o = &self.origin;
        let kind = if o.address.contains(':') {
            "IP6"
        } else {
            "IP4"
        };
        let _ = write!(
            s,
            "v=0\r\no={} {} {} IN {kind} {}\r\ns={}\r\n",
            o.username, o.session_id, o.session_version, o.address, self.session_name
        );
        if let Some(c) = &self.connection {
            write_connection(&mut s, c);
        }
        for (kind, value) in self.other.iter().filter(|(k, _)| *k == 'b') {
            let _ = write!(s, "{kind}={value}\r\n");
        }
        let _ = write!(s, "t={} {}\r\n", self.timing.0, self.timing.1);
        write_attributes(&mut s, &self.attributes);
        for m in &self.media {
            let _ = write!(
                s,
                "m={} {} {} {}\r\n",
                m.media,
                m.port,
                m.protocol,
                m.formats.join(" ")
            );
            if let Some(c) = &m.connection {
                write_connection(&mut s, c);
            }
            for (kind, value) in &m.other {
                let _ = write!(s, "{kind}={value}\r\n");
            }
            write_attributes(&mut s, &m.attributes);
        }
        f.write_str(&s)
    }
}
