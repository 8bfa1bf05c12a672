//! `X-Sma-Signature`: how a webhook receiver knows a request came from this runtime.
//!
//! Header format: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. The receiver
//! recomputes the MAC over the timestamp and the raw body, compares in constant time, and
//! refuses a timestamp too far from its own clock (a replayed request). The scheme is the one
//! payment webhooks use, so receivers in any language need only an HMAC-SHA256 primitive.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use thiserror::Error;

/// The header name.
pub const SIGNATURE_HEADER: &str = "X-Sma-Signature";

/// Signs `body` at `timestamp` (unix seconds); returns the header value.
pub fn sign(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac(secret, timestamp, body))
    )
}

fn mac(secret: &[u8], timestamp: u64, body: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SignatureError {
    /// The header does not have the `t=…,v1=…` form.
    #[error("malformed signature header: {0}")]
    Malformed(&'static str),
    /// The timestamp is outside the tolerance.
    #[error(
        "signature timestamp is {age_seconds} s from now; at most {tolerance_seconds} s allowed"
    )]
    Stale {
        /// Distance from the receiver's clock.
        age_seconds: u64,
        /// Tolerance.
        tolerance_seconds: u64,
    },
    /// The MAC does not match.
    #[error("signature does not match the body")]
    Mismatch,
}

/// Verifies `header` over `body` at receiver time `now` (unix seconds).
pub fn verify(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: u64,
    tolerance_seconds: u64,
) -> Result<(), SignatureError> {
    let mut timestamp = None;
    let mut signature = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => timestamp = Some(v),
            Some(("v1", v)) => signature = Some(v),
            _ => {}
        }
    }
    let timestamp: u64 = timestamp
        .ok_or(SignatureError::Malformed("no t="))?
        .parse()
        .map_err(|_| SignatureError::Malformed("t= is not a number"))?;
    let signature = hex::decode(signature.ok_or(SignatureError::Malformed("no v1="))?)
        .map_err(|_| SignatureError::Malformed("v1= is not hex"))?;
    let age = now.abs_diff(timestamp);
    if age > tolerance_seconds {
        return Err(SignatureError::Stale {
            age_seconds: age,
            tolerance_seconds,
        });
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&signature)
        .map_err(|_| SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies() {
        let header = sign(b"s3cret", 1_700_000_000, b"{\"a\":1}");
        assert!(header.starts_with("t=1700000000,v1="));
        verify(b"s3cret", &header, b"{\"a\":1}", 1_700_000_010, 300).unwrap();
    }

    #[test]
    fn known_vector() {
        // HMAC-SHA256(key = "key", message = "1.body"), computed with Python's hmac module.
        assert_eq!(
            sign(b"key", 1, b"body"),
            "t=1,v1=91b5374b153842ad05b2c4eab9349b8321b14703165bd3fb8b034dfb8be98ae5"
        );
    }

    #[test]
    fn refuses_tampering_staleness_and_garbage() {
        let header = sign(b"s3cret", 100, b"body");
        assert_eq!(
            verify(b"s3cret", &header, b"bodx", 100, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"other", &header, b"body", 100, 300),
            Err(SignatureError::Mismatch)
        );
        assert!(matches!(
            verify(b"s3cret", &header, b"body", 1000, 300),
            Err(SignatureError::Stale { .. })
        ));
        for bad in ["", "t=x,v1=00", "t=1", "v1=zz,t=1", "t=1,v1=zz"] {
            assert!(
                matches!(
                    verify(b"s3cret", bad, b"body", 1, 300),
                    Err(SignatureError::Malformed(_))
                ),
                "{bad}"
            );
        }
    }
}
