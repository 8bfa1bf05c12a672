//! The typed headers: Via, name-addr headers (From, To, Contact, Route, Record-Route), CSeq,
//! and `;name=value` parameter lists.

use super::uri::{split_host_port, Host, Uri, UriError};
use super::{is_token_byte, Method, Transport};
use std::fmt;

/// `;name[=value]` parameters, in order. Names compare case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, Option<String>)>);

impl Params {
    /// Parses `a=b;c;d="e f"` (the text after the first `;`).
    pub fn parse(text: &str) -> Result<Params, String> {
        let mut out = Vec::new();
        if text.trim().is_empty() {
            return Ok(Params(out));
        }
        for part in split_outside_quotes(text, b';') {
            let part = part.trim();
            if part.is_empty() {
                return Err("empty parameter".into());
            }
            let (name, value) = match part.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim().to_owned())),
                None => (part, None),
            };
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| is_token_byte(b) || b"[]/:&+$".contains(&b))
            {
                return Err(format!("bad parameter name `{name}`"));
            }
            out.push((name.to_owned(), value));
        }
        Ok(Params(out))
    }

    /// `None` when absent, `Some(None)` for a flag, `Some(Some(v))` for a value.
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets (or replaces) a parameter.
    pub fn set(&mut self, name: &str, value: Option<String>) {
        match self
            .0
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(entry) => entry.1 = value,
            None => self.0.push((name.to_owned(), value)),
        }
    }

    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_deref()))
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, value) in &self.0 {
            match value {
                Some(v) => write!(f, ";{name}={v}")?,
                None => write!(f, ";{name}")?,
            }
        }
        Ok(())
    }
}

/// Splits on `sep` outside double quotes and angle brackets.
pub(crate) fn split_outside_quotes(text: &str, sep: u8) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut in_quotes, mut in_angle, mut escaped, mut start) = (false, false, false, 0);
    for (i, b) in text.bytes().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match b {
            b'\\' if in_quotes => escaped = true,
            b'"' => in_quotes = !in_quotes,
            b'<' if !in_quotes => in_angle = true,
            b'>' if !in_quotes => in_angle = false,
            _ if b == sep && !in_quotes && !in_angle => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// A Via header value (RFC 3261 §20.42) with the RFC 3581 `rport` parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    pub transport: Transport,
    pub host: Host,
    pub port: Option<u16>,
    pub params: Params,
    /// A transport this stack does not serve (`SCTP`, `WS`…) on a Via it only carries
    /// (one that is not its own): written back as received. `transport` is then a
    /// placeholder, never used.
    pub other_transport: Option<String>,
}

/// The RFC 3261 branch prefix that marks a branch as globally unique.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

impl Via {
    pub fn new(transport: Transport, host: Host, port: Option<u16>, branch: &str) -> Via {
        let mut params = Params::default();
        params.set("branch", Some(branch.to_owned()));
        Via {
            transport,
            host,
            port,
            params,
            other_transport: None,
        }
    }

    pub fn parse(text: &str) -> Result<Via, String> {
        // LWS may surround the slashes of sent-protocol (RFC 3261 §25.1 SLASH).
        let mut normalized = String::with_capacity(text.len());
        for part in text.trim().split('/') {
            if !normalized.is_empty() {
                normalized.truncate(normalized.trim_end().len());
                normalized.push('/');
            }
            normalized.push_str(if normalized.is_empty() {
                part
            } else {
                part.trim_start()
            });
        }
        let text = normalized.as_str();
        let (protocol, rest) = text
            .split_once(|c: char| c.is_ascii_whitespace())
            .ok_or_else(|| format!("Via `{text}` has no sent-by"))?;
        let mut proto = protocol.split('/').map(str::trim);
        let (name, version, transport) = (proto.next(), proto.next(), proto.next());
        if !name.is_some_and(|n| n.eq_ignore_ascii_case("SIP"))
            || version != Some("2.0")
            || proto.next().is_some()
        {
            return Err(format!(
                "Via protocol `{protocol}` is not SIP/2.0/<transport>"
            ));
        }
        let (transport, other_transport) = match transport {
            Some(t) => match Transport::from_token(t) {
                Some(known) => (known, None),
                None if !t.is_empty() && t.bytes().all(crate::message::is_token_byte) => {
                    (Transport::Udp, Some(t.to_owned()))
                }
                None => return Err(format!("Via transport in `{protocol}` is not a token")),
            },
            None => return Err(format!("Via protocol `{protocol}` has no transport")),
        };
        let rest = rest.trim();
        let (sent_by, params) = match rest.find(';') {
            Some(i) => (rest[..i].trim(), &rest[i + 1..]),
            None => (rest, ""),
        };
        let (host, port) = split_host_port(sent_by)?;
        Ok(Via {
            transport,
            host,
            port,
            params: Params::parse(params)?,
            other_transport,
        })
    }

    pub fn branch(&self) -> Option<&str> {
        self.params.get("branch").flatten()
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.other_transport {
            Some(t) => write!(f, "SIP/2.0/{t} {}", self.host)?,
            None => write!(f, "SIP/2.0/{} {}", self.transport, self.host)?,
        }
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        write!(f, "{}", self.params)
    }
}

/// `["display name"] <uri>;params` or `uri;params` (From, To, Contact, Route, Record-Route).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    pub display_name: Option<String>,
    pub uri: Uri,
    pub params: Params,
}

impl NameAddr {
    pub fn new(uri: Uri) -> NameAddr {
        NameAddr {
            display_name: None,
            uri,
            params: Params::default(),
        }
    }

    pub fn parse(text: &str) -> Result<NameAddr, UriError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(UriError::Malformed("empty address".into()));
        }
        let lt = find_outside_quotes(text, b'<');
        match lt {
            Some(lt) => {
                let display = text[..lt].trim();
                let display_name = if display.is_empty() {
                    None
                } else if let Some(quoted) = display.strip_prefix('"') {
                    Some(
                        quoted
                            .strip_suffix('"')
                            .ok_or_else(|| {
                                UriError::Malformed(format!("unterminated display name {display}"))
                            })?
                            .to_owned(),
                    )
                } else {
                    // Kept in quoted-string form, as a quoted name is, so it is written back
                    // quoted: a `\` or `"` in an unquoted name is escaped.
                    Some(display.replace('\\', "\\\\").replace('"', "\\\""))
                };
                let gt = text[lt..]
                    .find('>')
                    .map(|i| i + lt)
                    .ok_or_else(|| UriError::Malformed(format!("missing `>` in `{text}`")))?;
                let uri = Uri::parse(&text[lt + 1..gt])?;
                let after = text[gt + 1..].trim();
                let params = match after.strip_prefix(';') {
                    Some(p) => Params::parse(p).map_err(UriError::Malformed)?,
                    None if after.is_empty() => Params::default(),
                    None => {
                        return Err(UriError::Malformed(format!("junk `{after}` after address")))
                    }
                };
                Ok(NameAddr {
                    display_name,
                    uri,
                    params,
                })
            }
            None => {
                // addr-spec form: parameters after the URI belong to the header (RFC 3261 §20).
                let (uri, params) = match text.find(';') {
                    Some(i) => (&text[..i], &text[i + 1..]),
                    None => (text, ""),
                };
                Ok(NameAddr {
                    display_name: None,
                    uri: Uri::parse(uri)?,
                    params: Params::parse(params).map_err(UriError::Malformed)?,
                })
            }
        }
    }

    /// Parses a comma-separated list (Contact, Route, Record-Route).
    pub fn parse_list(text: &str) -> Result<Vec<NameAddr>, UriError> {
        split_outside_quotes(text, b',')
            .into_iter()
            .map(NameAddr::parse)
            .collect()
    }

    pub fn tag(&self) -> Option<&str> {
        self.params.get("tag").flatten()
    }

    pub fn with_tag(mut self, tag: &str) -> NameAddr {
        self.params.set("tag", Some(tag.to_owned()));
        self
    }
}

fn find_outside_quotes(text: &str, needle: u8) -> Option<usize> {
    let (mut in_quotes, mut escaped) = (false, false);
    for (i, b) in text.bytes().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match b {
            b'\\' if in_quotes => escaped = true,
            b'"' => in_quotes = !in_quotes,
            _ if b == needle && !in_quotes => return Some(i),
            _ => {}
        }
    }
    None
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = &self.display_name {
            write!(f, "\"{name}\" ")?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

/// CSeq: sequence number and method (RFC 3261 §20.16).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    pub seq: u32,
    pub method: Method,
}

impl CSeq {
    pub fn parse(text: &str) -> Result<CSeq, String> {
        let mut parts = text.split_ascii_whitespace();
        let (seq, method) = (parts.next(), parts.next());
        if parts.next().is_some() {
            return Err(format!("CSeq `{text}` has extra fields"));
        }
        let seq = seq
            .and_then(|s| s.parse::<u32>().ok())
            .filter(|s| *s < 1 << 31)
            .ok_or_else(|| format!("CSeq number in `{text}` is not a 31-bit integer"))?;
        let method = method
            .and_then(Method::from_token)
            .ok_or_else(|| format!("CSeq `{text}` has no valid method"))?;
        Ok(CSeq { seq, method })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_round_trips() {
        let v = Via::parse("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds;rport").unwrap();
        assert_eq!(v.transport, Transport::Udp);
        assert_eq!(v.port, Some(5060));
        assert_eq!(v.branch(), Some("z9hG4bK776asdhds"));
        assert_eq!(v.params.get("rport"), Some(None));
        assert_eq!(
            v.to_string(),
            "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds;rport"
        );
        let v = Via::parse("SIP / 2.0 / TCP [2001:db8::1];branch=z9hG4bKx").unwrap();
        assert_eq!(v.transport, Transport::Tcp);
        // A transport this stack does not serve is carried, written back as received.
        let sctp = Via::parse("SIP/2.0/SCTP h;branch=x").unwrap();
        assert_eq!(sctp.other_transport.as_deref(), Some("SCTP"));
        assert_eq!(sctp.to_string(), "SIP/2.0/SCTP h;branch=x");
        assert!(Via::parse("SIP/2.0/S(TP h").is_err());
        assert!(Via::parse("SIP/3.0/UDP h").is_err());
        assert!(Via::parse("garbage").is_err());
    }

    #[test]
    fn an_unquoted_display_name_with_a_backslash_is_written_back_escaped() {
        // Found by the sip_message fuzz target: `To: \ <sip:…>` was written as `"\" <sip:…>`,
        // where the backslash escapes the closing quote.
        let a = NameAddr::parse("\\ <sip:+15550100@sma.example>").unwrap();
        let written = a.to_string();
        assert_eq!(written, "\"\\\\\" <sip:+15550100@sma.example>");
        let again = NameAddr::parse(&written).unwrap();
        assert_eq!(again, a);
    }

    #[test]
    fn name_addr_forms() {
        let a =
            NameAddr::parse("\"Bob, Jr.\" <sip:bob@biloxi.com;transport=tcp>;tag=a6c85cf").unwrap();
        assert_eq!(a.display_name.as_deref(), Some("Bob, Jr."));
        assert_eq!(a.tag(), Some("a6c85cf"));
        assert_eq!(a.uri.transport_param(), Some("tcp"));
        let b = NameAddr::parse("sip:alice@atlanta.com;tag=88sja8x").unwrap();
        assert_eq!(b.tag(), Some("88sja8x"));
        assert!(b.uri.params.get("tag").is_none());
        let list = NameAddr::parse_list("<sip:p1.example.com;lr>, \"x,y\" <sip:p2.example.com;lr>")
            .unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[1].display_name.as_deref(), Some("x,y"));
        assert!(NameAddr::parse("<sip:a@b").is_err());
        assert!(NameAddr::parse("").is_err());
    }

    #[test]
    fn cseq_parse() {
        assert_eq!(
            CSeq::parse("314159 INVITE").unwrap(),
            CSeq {
                seq: 314159,
                method: Method::Invite
            }
        );
        assert!(CSeq::parse("4294967296 INVITE").is_err());
        assert!(CSeq::parse("1").is_err());
        assert!(CSeq::parse("1 INVITE extra").is_err());
    }
}
