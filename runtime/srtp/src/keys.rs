//! Master keys and the `a=crypto` attribute that carries them (RFC 4568 §9.1).

use super::{SrtpError, Suite};
use base64::Engine;
use zeroize::Zeroizing;

/// A master key and salt for one suite, with the key's lifetime in packets when the line
/// gave one. Zeroised when dropped; `Debug` never shows it.
#[derive(Clone)]
pub struct MasterKey {
    suite: Suite,
    key: Zeroizing<Vec<u8>>,
    salt: Zeroizing<Vec<u8>>,
    lifetime: Option<u64>,
}

/// Keys compare in constant time (a re-INVITE that keeps the far end's key keeps ours).
impl PartialEq for MasterKey {
    fn eq(&self, other: &MasterKey) -> bool {
        use subtle::ConstantTimeEq;
        self.suite == other.suite
            && self.key.len() == other.key.len()
            && bool::from(self.key.ct_eq(&other.key) & self.salt.ct_eq(&other.salt))
    }
}

impl Eq for MasterKey {}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey")
            .field("suite", &self.suite)
            .field("key", &"<secret>")
            .finish()
    }
}

const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

impl MasterKey {
    /// A key from `key || salt`, as the inline key parameter carries them.
    pub fn new(suite: Suite, key_and_salt: &[u8]) -> Result<MasterKey, SrtpError> {
        let expected = suite.key_len() + suite.salt_len();
        if key_and_salt.len() != expected {
            return Err(SrtpError::KeyLength {
                suite,
                expected,
                got: key_and_salt.len(),
            });
        }
        let (key, salt) = key_and_salt.split_at(suite.key_len());
        Ok(MasterKey {
            suite,
            key: Zeroizing::new(key.to_vec()),
            salt: Zeroizing::new(salt.to_vec()),
            lifetime: None,
        })
    }

    /// A fresh key from the operating system's random number generator.
    pub fn generate(suite: Suite) -> Result<MasterKey, SrtpError> {
        let mut bytes = Zeroizing::new(vec![0u8; suite.key_len() + suite.salt_len()]);
        getrandom::fill(&mut bytes).map_err(|_| SrtpError::KeyEncoding)?;
        MasterKey::new(suite, &bytes)
    }

    pub fn suite(&self) -> Suite {
        self.suite
    }

    pub(super) fn key(&self) -> &[u8] {
        &self.key
    }

    pub(super) fn salt(&self) -> &[u8] {
        &self.salt
    }

    /// Packets the key may protect (SRTP and SRTCP together), when limited.
    pub fn lifetime(&self) -> Option<u64> {
        self.lifetime
    }

    /// `key || salt` in base64, for `inline:`.
    pub fn inline(&self) -> String {
        let mut bytes = Zeroizing::new(Vec::with_capacity(self.key.len() + self.salt.len()));
        bytes.extend_from_slice(&self.key);
        bytes.extend_from_slice(&self.salt);
        BASE64.encode(&*bytes)
    }
}

/// One `a=crypto` line: its tag and the key it offers or answers with.
#[derive(Debug, Clone)]
pub struct CryptoAttribute {
    pub tag: u32,
    pub key: MasterKey,
}

impl CryptoAttribute {
    /// Parses the value of `a=crypto:` (after the colon). A suite this runtime does not know,
    /// an MKI, several keys, or session parameters other than the window-size hint are
    /// refused with the reason: the line cannot be used, another one may.
    pub fn parse(value: &str) -> Result<CryptoAttribute, SrtpError> {
        // The error names the line by tag and suite only: what follows is key material,
        // which must never reach a log or a Warning header.
        let named: String = value
            .split_ascii_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(60)
            .collect();
        let malformed = || SrtpError::MalformedAttribute(named.clone());
        let mut parts = value.split_ascii_whitespace();
        let tag: u32 = parts
            .next()
            .and_then(|t| t.parse().ok())
            .ok_or_else(malformed)?;
        if tag > 999_999_999 {
            return Err(malformed());
        }
        let suite_name = parts.next().ok_or_else(malformed)?;
        let suite = Suite::from_name(suite_name)
            .ok_or_else(|| SrtpError::UnknownSuite(suite_name.chars().take(40).collect()))?;
        let key_params = parts.next().ok_or_else(malformed)?;
        for param in parts {
            // WSH (window size hint) only advises the receiver; ours is 128 packets.
            if !param.starts_with("WSH=") {
                return Err(SrtpError::SessionParameter(
                    param.chars().take(40).collect(),
                ));
            }
        }
        if key_params.contains(';') {
            // Several keys only make sense with MKIs.
            return Err(SrtpError::MkiUnsupported);
        }
        let inline = key_params.strip_prefix("inline:").ok_or_else(malformed)?;
        let mut fields = inline.split('|');
        let encoded = fields.next().ok_or_else(malformed)?;
        let bytes = Zeroizing::new(BASE64.decode(encoded).map_err(|_| SrtpError::KeyEncoding)?);
        let mut key = MasterKey::new(suite, &bytes)?;
        for field in fields {
            if field.contains(':') {
                return Err(SrtpError::MkiUnsupported);
            }
            key.lifetime = Some(parse_lifetime(field)?);
        }
        Ok(CryptoAttribute { tag, key })
    }

    /// The attribute's value, for `a=crypto:`.
    pub fn to_value(&self) -> String {
        format!(
            "{} {} inline:{}",
            self.tag,
            self.key.suite().name(),
            self.key.inline()
        )
    }
}

/// `2^31` or a decimal number of packets.
fn parse_lifetime(field: &str) -> Result<u64, SrtpError> {
    let bad = || SrtpError::BadLifetime(field.chars().take(20).collect());
    if let Some(exponent) = field.strip_prefix("2^") {
        let n: u32 = exponent.parse().map_err(|_| bad())?;
        return if n <= 48 { Ok(1u64 << n) } else { Err(bad()) };
    }
    field.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(bad)
}
