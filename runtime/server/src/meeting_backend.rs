//! The SIP-URI conference backend (contract §3.3's adapter note): an application configured
//! with `meeting_dial_in` joins meetings hosted elsewhere — another sma node, or a hosted
//! meeting service's voice connector — by dialling its dial-in URI with the attendee's join
//! token, instead of mixing the call into a meeting of this runtime.
//!
//! The token travels as the `X-chime-join-token` parameter of the Request-URI (and so of the
//! `To` URI), as seed 001's PBX sends it; characters a URI parameter may not hold are
//! percent-encoded (a hosted service's tokens are base64, with `=` and sometimes `+`/`/`).
//! An optional `maddr` parameter says where to send the INVITE while the URI keeps its host
//! for the far end's routing and the TLS certificate check (RFC 3261 §19.1.1); it is taken off
//! the Request-URI.

use crate::outbound::Attempt;
use sma_sip::message::{Scheme, Uri};
use sma_sip::Transport;

/// The URI parameter (and header) that carries a join token.
pub const TOKEN_PARAM: &str = "X-chime-join-token";

/// Longest join token sent or accepted (the hosted service's are a few hundred characters).
pub const MAX_TOKEN_LEN: usize = 2048;

/// Where an application's meeting joins go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeetingDialIn {
    /// The dial-in URI without `maddr`: what the Request-URI becomes, plus the token.
    uri: Uri,
    /// Where the INVITE goes (a name is resolved when dialing).
    host: String,
    port: u16,
    transport: Transport,
}

impl MeetingDialIn {
    /// Reads `sip:<number>@<host>[:port][;transport=tls][;maddr=<address>]` (or `sips:`), or
    /// says what is wrong with it.
    pub fn parse(text: &str) -> Result<MeetingDialIn, String> {
        let mut uri = Uri::parse(text).map_err(|e| format!("`{text}` is not a SIP URI: {e}"))?;
        if uri.scheme == Scheme::Tel {
            return Err(format!(
                "`{text}` is a tel: URI; a dial-in is sip: or sips:"
            ));
        }
        if uri.user.is_none() {
            return Err(format!(
                "`{text}` has no user part (the dial-in number, e.g. +17035550122)"
            ));
        }
        if uri.params.contains(TOKEN_PARAM) {
            return Err(format!(
                "`{text}` carries a join token; each join adds its own"
            ));
        }
        let transport = match (uri.scheme, uri.transport_param()) {
            (Scheme::Sips, _) => Transport::Tls,
            (_, Some(t)) => Transport::from_token(t)
                .ok_or_else(|| format!("`{text}`: transport `{t}` is not udp, tcp or tls"))?,
            _ => Transport::Udp,
        };
        let host = match uri.params.get("maddr") {
            Some(Some(maddr)) if !maddr.is_empty() => {
                sma_sip::message::Host::parse(maddr)
                    .map_err(|e| format!("`{text}`: maddr `{maddr}`: {e}"))?;
                maddr.trim_matches(|c| c == '[' || c == ']').to_owned()
            }
            Some(_) => return Err(format!("`{text}`: maddr has no address")),
            None => match &uri.host {
                sma_sip::message::Host::Name(n) if n.is_empty() => {
                    return Err(format!("`{text}` has no host"))
                }
                sma_sip::message::Host::Name(n) => n.clone(),
                sma_sip::message::Host::V4(a) => a.to_string(),
                sma_sip::message::Host::V6(a) => a.to_string(),
            },
        };
        uri.params.remove("maddr");
        let port = uri.port.unwrap_or(if transport == Transport::Tls {
            5061
        } else {
            5060
        });
        Ok(MeetingDialIn {
            uri,
            host,
            port,
            transport,
        })
    }

    /// The one attempt that joins with `token`, or why the token cannot be sent.
    pub fn attempt(&self, token: &str) -> Result<Attempt, String> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(format!(
                "the join token is {} characters, more than {MAX_TOKEN_LEN}",
                token.len()
            ));
        }
        let mut target = self.uri.clone();
        target.params.set(TOKEN_PARAM, Some(escape_param(token)));
        Ok(Attempt {
            via: format!(
                "meeting dial-in {}:{}/{}",
                self.host, self.port, self.transport
            ),
            target,
            host: self.host.clone(),
            port: self.port,
            transport: self.transport,
            credentials: None,
        })
    }

    /// The dial-in URI, for logs.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }
}

/// `value` as a URI parameter value (RFC 3261 §25.1 `paramchar`), other bytes
/// percent-encoded.
pub fn escape_param(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()[]/:&+$".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A URI parameter value with its `%XX` escapes decoded; `None` when an escape is broken or
/// the result is not UTF-8.
pub fn unescape_param(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = value.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tls_dial_in_with_maddr_goes_to_the_address_and_keeps_the_host_in_the_uri() {
        let d =
            MeetingDialIn::parse("sip:+17035550122@vc.example:5071;transport=tls;maddr=127.0.0.1")
                .unwrap();
        let a = d.attempt("abc=").unwrap();
        assert_eq!((a.host.as_str(), a.port), ("127.0.0.1", 5071));
        assert_eq!(a.transport, Transport::Tls);
        assert_eq!(
            a.target.to_string(),
            "sip:+17035550122@vc.example:5071;transport=tls;X-chime-join-token=abc%3D"
        );
    }

    #[test]
    fn defaults_follow_the_scheme() {
        let a = MeetingDialIn::parse("sips:17035550122@meet.example")
            .unwrap()
            .attempt("t")
            .unwrap();
        assert_eq!(
            (a.host.as_str(), a.port, a.transport),
            ("meet.example", 5061, Transport::Tls)
        );
        let a = MeetingDialIn::parse("sip:17035550122@10.0.0.5")
            .unwrap()
            .attempt("t")
            .unwrap();
        assert_eq!(
            (a.host.as_str(), a.port, a.transport),
            ("10.0.0.5", 5060, Transport::Udp)
        );
    }

    #[test]
    fn bad_dial_ins_say_what_is_wrong() {
        for (text, says) in [
            ("http://x", "not a SIP URI"),
            ("tel:+17035550122", "tel: URI"),
            ("sip:vc.example", "no user part"),
            ("sip:1@vc.example;transport=sctp", "not udp, tcp or tls"),
            ("sip:1@vc.example;maddr", "maddr has no address"),
            ("sip:1@vc.example;maddr=a b", "not a SIP URI"),
            (
                "sip:1@vc.example;X-chime-join-token=x",
                "carries a join token",
            ),
        ] {
            let why = MeetingDialIn::parse(text).unwrap_err();
            assert!(why.contains(says), "{text}: {why}");
        }
    }

    #[test]
    fn tokens_round_trip_through_the_uri_and_oversized_ones_are_refused() {
        let d = MeetingDialIn::parse("sip:1@vc.example").unwrap();
        let token = "QUJD+/ZGVm=;x y%\u{e9}";
        let a = d.attempt(token).unwrap();
        let sent = a.target.to_string();
        let back = Uri::parse(&sent).unwrap();
        let value = back.params.get(TOKEN_PARAM).flatten().unwrap();
        assert_eq!(unescape_param(value).as_deref(), Some(token));
        assert!(d.attempt(&"a".repeat(MAX_TOKEN_LEN + 1)).is_err());
        assert_eq!(unescape_param("%4"), None);
        assert_eq!(unescape_param("%zz"), None);
        assert_eq!(unescape_param("%FF"), None);
    }
}
