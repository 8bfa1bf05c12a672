//! `sma.toml`: the node's configuration. This part: SIP listeners, TLS, media
//! addresses and codecs. Unknown keys are errors, so a typo never silently falls back to a
//! default.

use serde::Deserialize;
use sma_sip::sdp::Codec;
use sma_sip::Transport;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("bad listener `{spec}`: {why} (expected <udp|tcp|tls>:<address>:<port>, e.g. udp:127.0.0.1:5060 or tcp:[::1]:5060)")]
    Listener { spec: String, why: String },
    #[error("bad codec `{0}` (expected PCMU, PCMA, G722 or opus)")]
    Codec(String),
    #[error("media port range {0}-{1} is empty or has fewer than 2 ports")]
    PortRange(u16, u16),
}

/// One `<transport>:<address>:<port>` listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenSpec {
    pub transport: Transport,
    pub addr: SocketAddr,
}

impl std::str::FromStr for ListenSpec {
    type Err = ConfigError;

    fn from_str(spec: &str) -> Result<ListenSpec, ConfigError> {
        let bad = |why: &str| ConfigError::Listener {
            spec: spec.to_owned(),
            why: why.to_owned(),
        };
        let (transport, addr) = spec.split_once(':').ok_or_else(|| bad("no transport"))?;
        let transport = Transport::from_token(transport)
            .ok_or_else(|| bad("transport must be udp, tcp or tls"))?;
        let addr = addr
            .parse()
            .map_err(|_| bad("address is not <ip>:<port>"))?;
        Ok(ListenSpec { transport, addr })
    }
}

impl std::fmt::Display for ListenSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}",
            self.transport.as_str().to_ascii_lowercase(),
            self.addr
        )
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct File {
    #[serde(default)]
    pub sip: SipSection,
    #[serde(default)]
    pub media: MediaSection,
    #[serde(default)]
    pub serve: ServeSection,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipSection {
    /// Listeners, e.g. `["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"]`.
    #[serde(default = "default_listen")]
    pub listen: Vec<String>,
    /// The address put in Via and Contact when a listener is bound to 0.0.0.0 or [::].
    pub advertise: Option<IpAddr>,
    /// Largest message accepted (513 beyond it), UDP and TCP alike.
    #[serde(default = "default_max_message")]
    pub max_message_bytes: usize,
    /// A TCP or TLS connection with no traffic for this long is closed.
    #[serde(default = "default_idle")]
    pub connection_idle_secs: u64,
    pub tls: Option<TlsSection>,
}

impl Default for SipSection {
    fn default() -> SipSection {
        SipSection {
            listen: default_listen(),
            advertise: None,
            max_message_bytes: default_max_message(),
            connection_idle_secs: default_idle(),
            tls: None,
        }
    }
}

fn default_listen() -> Vec<String> {
    vec!["udp:127.0.0.1:5060".into(), "tcp:127.0.0.1:5060".into()]
}

fn default_max_message() -> usize {
    65_535
}

fn default_idle() -> u64 {
    300
}

/// PEM files; without them a `tls:` listener uses a self-signed certificate generated at
/// start-up (development only).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    pub certificate: PathBuf,
    pub private_key: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaSection {
    /// The address RTP is sent to; defaults to the SIP listener's address.
    pub address: Option<IpAddr>,
    #[serde(default = "default_ports")]
    pub port_range: (u16, u16),
    /// Most preferred first.
    #[serde(default = "default_codecs")]
    pub codecs: Vec<String>,
    #[serde(default = "default_ptime")]
    pub ptime: u32,
}

impl Default for MediaSection {
    fn default() -> MediaSection {
        MediaSection {
            address: None,
            port_range: default_ports(),
            codecs: default_codecs(),
            ptime: default_ptime(),
        }
    }
}

fn default_ports() -> (u16, u16) {
    (20_000, 29_999)
}

fn default_codecs() -> Vec<String> {
    ["PCMU", "PCMA", "G722", "opus"].map(String::from).to_vec()
}

fn default_ptime() -> u32 {
    20
}

/// Interim behaviour until the call engine routes calls to applications.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ServeSection {
    /// Hang answered calls up with BYE after this many seconds (0: wait for the caller).
    #[serde(default)]
    pub hangup_after_secs: u64,
}

impl File {
    pub fn load(path: &Path) -> Result<File, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    pub fn listeners(&self) -> Result<Vec<ListenSpec>, ConfigError> {
        self.sip.listen.iter().map(|s| s.parse()).collect()
    }

    pub fn codecs(&self) -> Result<Vec<Codec>, ConfigError> {
        self.media
            .codecs
            .iter()
            .map(|c| Codec::parse(c).ok_or_else(|| ConfigError::Codec(c.clone())))
            .collect()
    }

    pub fn check(&self) -> Result<(), ConfigError> {
        self.listeners()?;
        self.codecs()?;
        let (lo, hi) = self.media.port_range;
        if hi <= lo {
            return Err(ConfigError::PortRange(lo, hi));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_specs_parse_with_clear_errors() {
        let s: ListenSpec = "tls:[::1]:5061".parse().unwrap();
        assert_eq!(s.transport, Transport::Tls);
        assert_eq!(s.addr, "[::1]:5061".parse().unwrap());
        assert_eq!(s.to_string(), "tls:[::1]:5061");
        for bad in ["sctp:1.2.3.4:5", "udp:localhost:5060", "udp", "tcp:1.2.3.4"] {
            let err = bad.parse::<ListenSpec>().unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = toml::from_str::<File>("[sip]\nlisen = []\n").unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
        let f: File =
            toml::from_str("[media]\ncodecs = [\"G722\"]\nport_range = [30000, 30010]\n").unwrap();
        assert_eq!(f.codecs().unwrap(), vec![Codec::G722]);
        assert_eq!(f.sip.listen.len(), 2);
        let f: File = toml::from_str("[media]\ncodecs = [\"G729\"]\n").unwrap();
        assert!(f.check().unwrap_err().to_string().contains("G729"));
    }
}
