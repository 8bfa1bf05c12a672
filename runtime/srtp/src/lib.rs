//! SRTP and SRTCP (RFC 3711) with the keys SDES carries in `a=crypto` (RFC 4568).
//!
//! Suites: AES_CM_128_HMAC_SHA1_80 and _32 (RFC 3711/4568), AES_256_CM_HMAC_SHA1_80 and _32
//! (RFC 6188), AEAD_AES_128_GCM and AEAD_AES_256_GCM (RFC 7714). The ciphers are RustCrypto's
//! (`aes`, `ctr`, `aes-gcm`, `hmac`, `sha1`): audited, constant-time, pure Rust, and what the
//! rest of the Rust ecosystem builds TLS on. The SRTP layer itself — key derivation, packet
//! indices, rollover counters, replay windows — is this crate, sans-IO: a [`Context`] turns
//! one direction's packets from plain to protected or back, with no sockets and no clock.
//! (Of the SRTP crates on crates.io, `srtp` binds libsrtp through a wrapper last released in
//! 2020, and webrtc-rs's `webrtc-srtp` has no AES-256 counter-mode suites, which PBXes offer
//! and the seeds' INVITE lists.)
//!
//! Keys are zeroised when dropped and never printed: [`MasterKey`]'s `Debug` shows the suite
//! only.

mod context;
mod kdf;
mod keys;

pub use context::{Context, Direction};
pub use keys::{CryptoAttribute, MasterKey};

/// An SRTP crypto suite, as `a=crypto` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Suite {
    AesCm128HmacSha1_80,
    AesCm128HmacSha1_32,
    AesCm256HmacSha1_80,
    AesCm256HmacSha1_32,
    AeadAes128Gcm,
    AeadAes256Gcm,
}

impl Suite {
    /// Every suite, most preferred first: authenticated encryption, then longer keys, then
    /// longer tags.
    pub const ALL: [Suite; 6] = [
        Suite::AeadAes256Gcm,
        Suite::AeadAes128Gcm,
        Suite::AesCm256HmacSha1_80,
        Suite::AesCm128HmacSha1_80,
        Suite::AesCm256HmacSha1_32,
        Suite::AesCm128HmacSha1_32,
    ];

    /// The name in `a=crypto` (RFC 4568 §6.2, RFC 6188 §6, RFC 7714 §14.2).
    pub fn name(self) -> &'static str {
        match self {
            Suite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            Suite::AesCm256HmacSha1_80 => "AES_256_CM_HMAC_SHA1_80",
            Suite::AesCm256HmacSha1_32 => "AES_256_CM_HMAC_SHA1_32",
            Suite::AeadAes128Gcm => "AEAD_AES_128_GCM",
            Suite::AeadAes256Gcm => "AEAD_AES_256_GCM",
        }
    }

    /// The suite `name` stands for. `AES_CM_256_HMAC_SHA1_*` is the spelling some endpoints
    /// used before RFC 6188 settled on `AES_256_CM_*`.
    pub fn from_name(name: &str) -> Option<Suite> {
        Some(match name {
            "AES_CM_128_HMAC_SHA1_80" => Suite::AesCm128HmacSha1_80,
            "AES_CM_128_HMAC_SHA1_32" => Suite::AesCm128HmacSha1_32,
            "AES_256_CM_HMAC_SHA1_80" | "AES_CM_256_HMAC_SHA1_80" => Suite::AesCm256HmacSha1_80,
            "AES_256_CM_HMAC_SHA1_32" | "AES_CM_256_HMAC_SHA1_32" => Suite::AesCm256HmacSha1_32,
            "AEAD_AES_128_GCM" => Suite::AeadAes128Gcm,
            "AEAD_AES_256_GCM" => Suite::AeadAes256Gcm,
            _ => return None,
        })
    }

    /// Master key length, bytes.
    pub fn key_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 | Suite::AesCm128HmacSha1_32 | Suite::AeadAes128Gcm => 16,
            _ => 32,
        }
    }

    /// Master salt length, bytes: 112 bits for counter mode, 96 for GCM.
    pub fn salt_len(self) -> usize {
        if self.is_aead() {
            12
        } else {
            14
        }
    }

    pub fn is_aead(self) -> bool {
        matches!(self, Suite::AeadAes128Gcm | Suite::AeadAes256Gcm)
    }

    /// Bytes an SRTP packet carries beyond its RTP packet.
    pub fn rtp_overhead(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 | Suite::AesCm256HmacSha1_80 => 10,
            Suite::AesCm128HmacSha1_32 | Suite::AesCm256HmacSha1_32 => 4,
            Suite::AeadAes128Gcm | Suite::AeadAes256Gcm => 16,
        }
    }

    /// SRTCP's tag: 80 bits for both HMAC suites (RFC 4568 §6.2: the `_32` applies to
    /// SRTP only), GCM's 128.
    pub fn rtcp_tag_len(self) -> usize {
        if self.is_aead() {
            16
        } else {
            10
        }
    }
}

impl std::fmt::Display for Suite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a key could not be used or a packet was refused. Packets refused are dropped by the
/// caller, who counts them by kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    #[error("unknown SRTP crypto suite `{0}`")]
    UnknownSuite(String),
    #[error("{suite} needs a {expected}-byte key and salt; this one has {got}")]
    KeyLength {
        suite: Suite,
        expected: usize,
        got: usize,
    },
    #[error("the inline key is not valid base64")]
    KeyEncoding,
    #[error("keys with an MKI are not supported (one key per session here)")]
    MkiUnsupported,
    #[error("key lifetime `{0}` is not a number of packets")]
    BadLifetime(String),
    #[error("session parameter `{0}` is not supported")]
    SessionParameter(String),
    #[error("crypto attribute `{0} ...` is malformed (expected `<tag> <suite> inline:<base64 key||salt>[|lifetime]`)")]
    MalformedAttribute(String),
    #[error("not an RTP/RTCP packet: {0}")]
    Malformed(&'static str),
    #[error("authentication failed")]
    Authentication,
    #[error("replayed packet")]
    Replayed,
    #[error("packet too old for the replay window")]
    TooOld,
    #[error("too many SSRCs on one key")]
    TooManySsrcs,
    #[error("the key's lifetime is used up")]
    KeyExhausted,
}

impl SrtpError {
    /// A short label for counters and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            SrtpError::Authentication => "auth",
            SrtpError::Replayed | SrtpError::TooOld => "replay",
            SrtpError::Malformed(_) => "malformed",
            SrtpError::TooManySsrcs => "ssrc",
            SrtpError::KeyExhausted => "lifetime",
            _ => "key",
        }
    }
}
