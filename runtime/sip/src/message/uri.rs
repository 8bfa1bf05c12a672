//! SIP, SIPS and tel URIs (RFC 3261 §19.1, RFC 3966).

use super::header::Params;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Sip,
    Sips,
    Tel,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Sip => "sip",
            Scheme::Sips => "sips",
            Scheme::Tel => "tel",
        }
    }
}

/// The host part of a URI or a Via sent-by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    Name(String),
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

impl Host {
    /// Parses a hostname, IPv4 address or bracketed IPv6 reference.
    pub fn parse(text: &str) -> Result<Host, String> {
        if let Some(inner) = text.strip_prefix('[') {
            let inner = inner
                .strip_suffix(']')
                .ok_or_else(|| format!("unterminated IPv6 reference `{text}`"))?;
            return inner
                .parse()
                .map(Host::V6)
                .map_err(|_| format!("bad IPv6 address `{inner}`"));
        }
        if text.is_empty() {
            return Err("empty host".into());
        }
        if let Ok(v4) = text.parse::<Ipv4Addr>() {
            return Ok(Host::V4(v4));
        }
        if text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            Ok(Host::Name(text.to_ascii_lowercase()))
        } else {
            Err(format!("bad host `{text}`"))
        }
    }

    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::Name(_) => None,
            Host::V4(a) => Some(IpAddr::V4(*a)),
            Host::V6(a) => Some(IpAddr::V6(*a)),
        }
    }
}

impl From<IpAddr> for Host {
    fn from(ip: IpAddr) -> Host {
        match ip {
            IpAddr::V4(a) => Host::V4(a),
            IpAddr::V6(a) => Host::V6(a),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::V4(a) => write!(f, "{a}"),
            Host::V6(a) => write!(f, "[{a}]"),
        }
    }
}

/// A SIP, SIPS or tel URI. For `tel:` the number is in `user` and `host` is empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri {
    pub scheme: Scheme,
    /// userinfo without the password (a password in a URI is deprecated and dropped).
    pub user: Option<String>,
    pub host: Host,
    pub port: Option<u16>,
    pub params: Params,
    /// `?`-headers, kept verbatim.
    pub headers: Option<String>,
}

/// Why a URI did not parse. `UnsupportedScheme` maps to 416, the rest to 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    #[error("unsupported URI scheme `{0}`")]
    UnsupportedScheme(String),
    #[error("malformed URI: {0}")]
    Malformed(String),
}

impl Uri {
    /// A `sip:` URI for a user at a host.
    pub fn sip(user: Option<&str>, host: Host, port: Option<u16>) -> Uri {
        Uri {
            scheme: Scheme::Sip,
            user: user.map(str::to_owned),
            host,
            port,
            params: Params::default(),
            headers: None,
        }
    }

    pub fn parse(text: &str) -> Result<Uri, UriError> {
        let text = text.trim();
        let (scheme, rest) = text
            .split_once(':')
            .ok_or_else(|| UriError::Malformed(format!("no scheme in `{text}`")))?;
        let scheme = if scheme.eq_ignore_ascii_case("sip") {
            Scheme::Sip
        } else if scheme.eq_ignore_ascii_case("sips") {
            Scheme::Sips
        } else if scheme.eq_ignore_ascii_case("tel") {
            Scheme::Tel
        } else if !scheme.is_empty()
            && scheme
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic())
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        {
            return Err(UriError::UnsupportedScheme(scheme.to_owned()));
        } else {
            return Err(UriError::Malformed(format!("bad scheme in `{text}`")));
        };
        if rest.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(UriError::Malformed(format!(
                "whitespace or control character in `{text}`"
            )));
        }
        let (rest, headers) = match rest.split_once('?') {
            Some((r, h)) => (r, Some(h.to_owned())),
            None => (rest, None),
        };
        if scheme == Scheme::Tel {
            let (number, params) = split_params(rest);
            if number.is_empty() {
                return Err(UriError::Malformed("empty tel number".into()));
            }
            return Ok(Uri {
                scheme,
                user: Some(number.to_owned()),
                host: Host::Name(String::new()),
                port: None,
                params: Params::parse(params).map_err(UriError::Malformed)?,
                headers,
            });
        }
        let (userinfo, hostport_params) = match rest.rfind('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        // The user without the password; an empty one (`sip:@host`, `sip::secret@host`) is
        // refused, as the URI written back would be.
        let user = match userinfo.map(|u| u.split_once(':').map_or(u, |(user, _password)| user)) {
            Some("") => return Err(UriError::Malformed(format!("empty user in `{text}`"))),
            Some(u) => Some(u.to_owned()),
            None => None,
        };
        let (hostport, params) = split_params(hostport_params);
        let (host, port) = split_host_port(hostport).map_err(UriError::Malformed)?;
        Ok(Uri {
            scheme,
            user,
            host,
            port,
            params: Params::parse(params).map_err(UriError::Malformed)?,
            headers,
        })
    }

    /// The `transport=` parameter, if any.
    pub fn transport_param(&self) -> Option<&str> {
        self.params.get("transport").flatten()
    }
}

/// Splits `a;b=c` at the first `;` (the part before it cannot contain one in SIP URIs).
fn split_params(text: &str) -> (&str, &str) {
    match text.find(';') {
        Some(i) => (&text[..i], &text[i + 1..]),
        None => (text, ""),
    }
}

/// Splits `host[:port]`, where host may be a bracketed IPv6 reference.
pub(crate) fn split_host_port(text: &str) -> Result<(Host, Option<u16>), String> {
    let (host, port) = if text.starts_with('[') {
        match text.find(']') {
            Some(end) => {
                let rest = &text[end + 1..];
                let port = match rest.strip_prefix(':') {
                    Some(p) => Some(p),
                    None if rest.is_empty() => None,
                    None => return Err(format!("junk after IPv6 reference in `{text}`")),
                };
                (&text[..=end], port)
            }
            None => return Err(format!("unterminated IPv6 reference `{text}`")),
        }
    } else {
        match text.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        }
    };
    let port = match port {
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("bad port `{p}`"))?,
        ),
        None => None,
    };
    Ok((Host::parse(host)?, port))
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.scheme.as_str())?;
        f.write_str(":")?;
        if self.scheme == Scheme::Tel {
            f.write_str(self.user.as_deref().unwrap_or(""))?;
        } else {
            if let Some(user) = &self.user {
                write!(f, "{user}@")?;
            }
            write!(f, "{}", self.host)?;
            if let Some(port) = self.port {
                write!(f, ":{port}")?;
            }
        }
        write!(f, "{}", self.params)?;
        if let Some(h) = &self.headers {
            write!(f, "?{h}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        let u = Uri::parse("sip:+15551230000@example.com:5070;user=phone;transport=tcp").unwrap();
        assert_eq!(u.scheme, Scheme::Sip);
        assert_eq!(u.user.as_deref(), Some("+15551230000"));
        assert_eq!(u.host, Host::Name("example.com".into()));
        assert_eq!(u.port, Some(5070));
        assert_eq!(u.transport_param(), Some("tcp"));
        assert_eq!(
            u.to_string(),
            "sip:+15551230000@example.com:5070;user=phone;transport=tcp"
        );
        let v6 = Uri::parse("sips:alice@[::1]:5061").unwrap();
        assert_eq!(v6.host, Host::V6("::1".parse().unwrap()));
        assert_eq!(v6.to_string(), "sips:alice@[::1]:5061");
        let tel = Uri::parse("tel:+1-555-123-0000;phone-context=example.com").unwrap();
        assert_eq!(tel.user.as_deref(), Some("+1-555-123-0000"));
        assert_eq!(
            tel.to_string(),
            "tel:+1-555-123-0000;phone-context=example.com"
        );
    }

    #[test]
    fn rejects_with_reasons() {
        assert_eq!(
            Uri::parse("http://example.com"),
            Err(UriError::UnsupportedScheme("http".into()))
        );
        assert!(matches!(Uri::parse("sip:a@"), Err(UriError::Malformed(_))));
        // A password with no user would be written back as `sip:@host` (found by fuzzing).
        assert!(matches!(
            Uri::parse("sip::secret@192.0.2.10:5060"),
            Err(UriError::Malformed(_))
        ));
        assert!(matches!(
            Uri::parse("sip:a@h:99999"),
            Err(UriError::Malformed(_))
        ));
        assert!(matches!(
            Uri::parse("sip:[::1"),
            Err(UriError::Malformed(_))
        ));
        assert!(matches!(Uri::parse("nocolon"), Err(UriError::Malformed(_))));
        assert!(matches!(
            Uri::parse("sip:a b@h"),
            Err(UriError::Malformed(_))
        ));
    }
}
