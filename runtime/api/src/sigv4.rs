//! AWS Signature Version 4 verification for the management API (sans-IO).
//!
//! The AWS SDKs and CLI sign every request with the caller's access key; the API recomputes
//! the signature from the request as received, with the secret configured for that key, the
//! way the AWS front ends do. The canonical form follows botocore's signer exactly (the
//! tests replay requests botocore signed): the path has dot segments and empty segments
//! removed and is URI-encoded once more (so `%2B` is signed as `%252B`); query pairs are
//! decoded, re-encoded with only unreserved characters left bare, and sorted; signed header
//! values are trimmed with inner runs of spaces collapsed, repeated headers joined by commas;
//! the payload hash is the body's SHA-256 (or the `X-Amz-Content-SHA256` value, which must
//! then match the body).
//!
//! A request is signed in its `Authorization` header, or in its query string (a presigned
//! URL: `X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-Expires`,
//! `X-Amz-SignedHeaders`, `X-Amz-Signature`, the last left out of the canonical query),
//! which is valid from its date for `X-Amz-Expires` seconds. Either way the credential scope
//! must name this service and a region this deployment serves.
//!
//! Refusals carry the error codes the AWS front ends send and botocore recognises:
//! `MissingAuthenticationTokenException`, `IncompleteSignatureException`,
//! `UnrecognizedClientException`, `InvalidSignatureException` (including "Signature
//! expired").

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

type HmacSha256 = Hmac<Sha256>;

/// How far a request's `X-Amz-Date` may be from our clock, either way.
pub const MAX_SKEW: Duration = Duration::from_secs(5 * 60);

/// A request as received: the raw request target, header pairs as sent, and the body.
pub struct Request<'a> {
    pub method: &'a str,
    /// Path and query exactly as on the request line (`/phone-numbers/%2B1206?x=1`).
    pub target: &'a str,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// Who signed a request that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    pub access_key: String,
    /// The region the client signed for (its configured region).
    pub region: String,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("Missing Authentication Token")]
    Missing,
    #[error("{0}")]
    Incomplete(String),
    #[error("The security token included in the request is invalid.")]
    UnknownKey,
    #[error("Signature expired: {signed} is now earlier than {earliest} ({now} - 5 min.)")]
    Expired {
        signed: String,
        earliest: String,
        now: String,
    },
    #[error("Signature not yet current: {signed} is still later than {latest} ({now} + 5 min.)")]
    NotYetValid {
        signed: String,
        latest: String,
        now: String,
    },
    #[error("Credential should be scoped to correct service: '{0}'.")]
    WrongService(String),
    #[error("Credential should be scoped to a valid region, not '{region}'. This endpoint serves {serves}.")]
    WrongRegion { region: String, serves: String },
    #[error(
        "Request has expired: the presigned request was valid until {expired} and it is now {now}."
    )]
    PresignExpired { expired: String, now: String },
    #[error("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")]
    Mismatch,
    #[error("The provided 'x-amz-content-sha256' header does not match what was computed.")]
    PayloadHash,
}

impl AuthError {
    /// The `x-amzn-ErrorType` code a client recognises.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "MissingAuthenticationTokenException",
            AuthError::Incomplete(_) => "IncompleteSignatureException",
            AuthError::UnknownKey => "UnrecognizedClientException",
            AuthError::Expired { .. }
            | AuthError::NotYetValid { .. }
            | AuthError::PresignExpired { .. }
            | AuthError::WrongService(_)
            | AuthError::WrongRegion { .. }
            | AuthError::Mismatch
            | AuthError::PayloadHash => "InvalidSignatureException",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            AuthError::Incomplete(_) => 400,
            _ => 403,
        }
    }
}

/// Verifies signatures against configured access keys.
pub struct Verifier {
    /// Access key id → secret.
    keys: HashMap<String, String>,
    service: String,
    /// Regions a credential scope may name; any when empty.
    regions: Vec<String>,
}

/// The longest a presigned request may be valid (seven days, as AWS allows).
const MAX_PRESIGN_EXPIRES: u64 = 604_800;

/// `YYYYMMDD'T'HHMMSS'Z'` → seconds since the epoch.
fn parse_amz_date(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u64> {
        let s = text.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, s) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm), for years from 1970.
    let (y, m) = if mo <= 2 {
        (y - 1, mo + 9)
    } else {
        (y, mo - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    Some(days * 86_400 + h * 3600 + mi * 60 + s)
}

/// Seconds since the epoch → `YYYYMMDD'T'HHMMSS'Z'`.
pub fn format_amz_date(secs: u64) -> String {
    let rem = secs % 86_400;
    let (y, m, d) = sma_store::time::civil_from_days((secs / 86_400) as i64);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Percent-encodes everything but unreserved characters (and `/` when `keep_slash`).
fn uri_encode(input: &[u8], keep_slash: bool, out: &mut String) {
    for &b in input {
        let bare = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/');
        if bare {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// Decodes `%XX` escapes; a malformed escape is kept as is.
fn percent_decode(input: &str) -> Vec<u8> {
    let b = input.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// RFC 3986 §5.2.4 dot-segment removal, with empty segments dropped (as AWS does).
fn remove_dot_segments(path: &str) -> String {
    if path.is_empty() {
        return "/".into();
    }
    let mut segments: Vec<&str> = Vec::new();
    for s in path.split('/') {
        match s {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let lead = if path.starts_with('/') { "/" } else { "" };
    let trail = if path.ends_with('/') && !segments.is_empty() {
        "/"
    } else {
        ""
    };
    format!("{lead}{}{trail}", segments.join("/"))
}

fn canonical_path(raw: &str) -> String {
    let mut out = String::new();
    uri_encode(remove_dot_segments(raw).as_bytes(), true, &mut out);
    out
}

/// The query's pairs, encoded and sorted; `without` (a presigned request's signature) left
/// out.
fn canonical_query(raw: &str, without: Option<&str>) -> String {
    let mut pairs: Vec<(String, String)> = raw
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| {
            without.is_none_or(|key| {
                let name = p.split_once('=').map_or(*p, |(k, _)| k);
                percent_decode(name) != key.as_bytes()
            })
        })
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let (mut ek, mut ev) = (String::new(), String::new());
            uri_encode(&percent_decode(k), false, &mut ek);
            uri_encode(&percent_decode(v), false, &mut ev);
            (ek, ev)
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The `Authorization` header's parts.
struct Authorization<'a> {
    access_key: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

/// `<key>/<date>/<region>/<service>/aws4_request`.
fn parse_scope(credential: &str) -> Result<[&str; 4], AuthError> {
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key, date, region, service, terminator] = scope.as_slice() else {
        return Err(AuthError::Incomplete(format!(
            "Credential should have 5 parts: <key>/<date>/<region>/<service>/aws4_request, got `{credential}`"
        )));
    };
    if *terminator != "aws4_request" {
        return Err(AuthError::Incomplete(
            "Credential should be scoped with a valid terminator: 'aws4_request'.".into(),
        ));
    }
    Ok([access_key, date, region, service])
}

fn parse_authorization(value: &str) -> Result<Authorization<'_>, AuthError> {
    let rest = value
        .trim()
        .strip_prefix("AWS4-HMAC-SHA256")
        .ok_or_else(|| {
            AuthError::Incomplete(
                "Authorization header must use the AWS4-HMAC-SHA256 algorithm.".into(),
            )
        })?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=').unwrap_or((part.trim(), ""));
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => signature = Some(v),
            _ => {}
        }
    }
    let missing = |what: &str| {
        AuthError::Incomplete(format!(
            "Authorization header requires '{what}' parameter. Authorization={value}"
        ))
    };
    let credential = credential.ok_or_else(|| missing("Credential"))?;
    let signed = signed.ok_or_else(|| missing("SignedHeaders"))?;
    let signature = signature.ok_or_else(|| missing("Signature"))?;
    let [access_key, date, region, service] = parse_scope(credential)?;
    Ok(Authorization {
        access_key,
        date,
        region,
        service,
        signed_headers: signed.split(';').collect(),
        signature,
    })
}

impl Verifier {
    pub fn new(keys: HashMap<String, String>, service: &str) -> Verifier {
        Verifier {
            keys,
            service: service.to_owned(),
            regions: Vec::new(),
        }
    }

    /// Refuses credential scopes naming a region not in `regions`.
    pub fn with_regions(mut self, regions: Vec<String>) -> Verifier {
        self.regions = regions;
        self
    }

    /// Checks the request's signature at time `now`: in its `Authorization` header, or in
    /// its query string (presigned).
    pub fn verify(&self, request: &Request<'_>, now: SystemTime) -> Result<Signer, AuthError> {
        let header = |name: &str| header_values(request, name);
        let (path, query) = request
            .target
            .split_once('?')
            .unwrap_or((request.target, ""));
        let now_secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if let Some(authorization) = header("authorization").first() {
            let auth = parse_authorization(authorization)?;
            let amz_date = header("x-amz-date").first().copied().ok_or_else(|| {
                AuthError::Incomplete("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.".into())
            })?;
            let signed_at = self.check_scope(&auth, amz_date)?;
            let skew = MAX_SKEW.as_secs();
            if signed_at + skew < now_secs {
                return Err(AuthError::Expired {
                    signed: amz_date.to_owned(),
                    earliest: format_amz_date(now_secs - skew),
                    now: format_amz_date(now_secs),
                });
            }
            if signed_at > now_secs + skew {
                return Err(AuthError::NotYetValid {
                    signed: amz_date.to_owned(),
                    latest: format_amz_date(now_secs + skew),
                    now: format_amz_date(now_secs),
                });
            }
            let body_hash = hex::encode(Sha256::digest(request.body));
            let payload_hash = match header("x-amz-content-sha256").first() {
                Some(&"UNSIGNED-PAYLOAD") => "UNSIGNED-PAYLOAD".to_owned(),
                Some(declared) if *declared != body_hash => return Err(AuthError::PayloadHash),
                _ => body_hash,
            };
            let canonical_query = canonical_query(query, None);
            return self.check_signature(
                request,
                &auth,
                amz_date,
                path,
                &canonical_query,
                &[payload_hash],
            );
        }
        let pairs = crate::routes::query_pairs(query);
        let param = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let Some(algorithm) = param("X-Amz-Algorithm") else {
            return Err(AuthError::Missing);
        };
        if algorithm != "AWS4-HMAC-SHA256" {
            return Err(AuthError::Incomplete(
                "X-Amz-Algorithm must be AWS4-HMAC-SHA256.".into(),
            ));
        }
        let required = |name: &str| {
            param(name).ok_or_else(|| {
                AuthError::Incomplete(format!(
                    "A presigned request requires the '{name}' query parameter."
                ))
            })
        };
        let credential = required("X-Amz-Credential")?;
        let amz_date = required("X-Amz-Date")?;
        let expires = required("X-Amz-Expires")?;
        let signed = required("X-Amz-SignedHeaders")?;
        let signature = required("X-Amz-Signature")?;
        let [access_key, date, region, service] = parse_scope(credential)?;
        let auth = Authorization {
            access_key,
            date,
            region,
            service,
            signed_headers: signed.split(';').collect(),
            signature,
        };
        let signed_at = self.check_scope(&auth, amz_date)?;
        let expires: u64 = expires
            .parse()
            .ok()
            .filter(|e| (1..=MAX_PRESIGN_EXPIRES).contains(e))
            .ok_or_else(|| {
                AuthError::Incomplete(format!(
                    "X-Amz-Expires `{expires}` must be a number of seconds from 1 to {MAX_PRESIGN_EXPIRES}."
                ))
            })?;
        if signed_at > now_secs + MAX_SKEW.as_secs() {
            return Err(AuthError::NotYetValid {
                signed: amz_date.to_owned(),
                latest: format_amz_date(now_secs + MAX_SKEW.as_secs()),
                now: format_amz_date(now_secs),
            });
        }
        if signed_at + expires < now_secs {
            return Err(AuthError::PresignExpired {
                expired: format_amz_date(signed_at + expires),
                now: format_amz_date(now_secs),
            });
        }
        let canonical_query = canonical_query(query, Some("X-Amz-Signature"));
        // botocore signs a presigned request's body hash; S3-style signers write
        // UNSIGNED-PAYLOAD. Either is accepted.
        let body_hash = hex::encode(Sha256::digest(request.body));
        self.check_signature(
            request,
            &auth,
            amz_date,
            path,
            &canonical_query,
            &[body_hash, "UNSIGNED-PAYLOAD".to_owned()],
        )
    }

    /// The key, service, region and date of a credential scope: the time it was signed.
    fn check_scope(&self, auth: &Authorization<'_>, amz_date: &str) -> Result<u64, AuthError> {
        if !self.keys.contains_key(auth.access_key) {
            return Err(AuthError::UnknownKey);
        }
        if auth.service != self.service {
            return Err(AuthError::WrongService(self.service.clone()));
        }
        if !self.regions.is_empty() && !self.regions.iter().any(|r| r == auth.region) {
            return Err(AuthError::WrongRegion {
                region: auth.region.to_owned(),
                serves: self.regions.join(", "),
            });
        }
        let signed_at = parse_amz_date(amz_date).ok_or_else(|| {
            AuthError::Incomplete(format!("X-Amz-Date `{amz_date}` is not YYYYMMDDTHHMMSSZ"))
        })?;
        if !amz_date.starts_with(auth.date) || auth.date.len() != 8 {
            return Err(AuthError::Incomplete(format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}'",
                auth.date,
                &amz_date[..8]
            )));
        }
        if !auth.signed_headers.contains(&"host") {
            return Err(AuthError::Incomplete(
                "'Host' must be a signed header.".into(),
            ));
        }
        Ok(signed_at)
    }

    /// Recomputes the signature over the canonical request with each payload hash in turn;
    /// the request verifies when one of them gives the signature it carries.
    fn check_signature(
        &self,
        request: &Request<'_>,
        auth: &Authorization<'_>,
        amz_date: &str,
        path: &str,
        canonical_query: &str,
        payload_hashes: &[String],
    ) -> Result<Signer, AuthError> {
        let secret = self
            .keys
            .get(auth.access_key)
            .ok_or(AuthError::UnknownKey)?;
        let mut canonical = String::with_capacity(512);
        canonical.push_str(&request.method.to_ascii_uppercase());
        canonical.push('\n');
        canonical.push_str(&canonical_path(path));
        canonical.push('\n');
        canonical.push_str(canonical_query);
        canonical.push('\n');
        for name in &auth.signed_headers {
            let values = header_values(request, name);
            if values.is_empty() {
                return Err(AuthError::Mismatch);
            }
            let joined = values
                .iter()
                .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect::<Vec<_>>()
                .join(",");
            canonical.push_str(&name.to_ascii_lowercase());
            canonical.push(':');
            canonical.push_str(&joined);
            canonical.push('\n');
        }
        canonical.push('\n');
        canonical.push_str(&auth.signed_headers.join(";"));
        canonical.push('\n');
        let k_date = hmac(format!("AWS4{secret}").as_bytes(), auth.date.as_bytes());
        let k_region = hmac(&k_date, auth.region.as_bytes());
        let k_service = hmac(&k_region, auth.service.as_bytes());
        let k_signing = hmac(&k_service, b"aws4_request");
        let provided = hex::decode(auth.signature).map_err(|_| AuthError::Mismatch)?;
        for payload_hash in payload_hashes {
            let request_hash = hex::encode(Sha256::digest(
                format!("{canonical}{payload_hash}").as_bytes(),
            ));
            let string_to_sign = format!(
                "AWS4-HMAC-SHA256\n{amz_date}\n{}/{}/{}/aws4_request\n{request_hash}",
                auth.date, auth.region, auth.service,
            );
            let mut mac =
                <HmacSha256 as Mac>::new_from_slice(&k_signing).unwrap_or_else(|_| unreachable!());
            mac.update(string_to_sign.as_bytes());
            // Constant-time comparison.
            if mac.verify_slice(&provided).is_ok() {
                return Ok(Signer {
                    access_key: auth.access_key.to_owned(),
                    region: auth.region.to_owned(),
                });
            }
        }
        Err(AuthError::Mismatch)
    }
}

/// Every value of header `name` (any case), in order.
fn header_values<'r>(request: &'r Request<'_>, name: &str) -> Vec<&'r str> {
    request
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// Method, request target, headers, body.
    type Signed = (String, String, Vec<(String, String)>, Vec<u8>);

    struct Fixture {
        verifier: Verifier,
        at: SystemTime,
        requests: Vec<Signed>,
        presigned: Vec<Signed>,
        presign_expires: u64,
        other_region: Signed,
    }

    fn signed(r: &Value) -> Signed {
        let headers = r["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h[0].as_str().unwrap().to_owned(),
                    h[1].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        (
            r["method"].as_str().unwrap().to_owned(),
            r["target"].as_str().unwrap().to_owned(),
            headers,
            r["body"].as_str().unwrap().as_bytes().to_vec(),
        )
    }

    /// Requests signed by botocore itself (testdata/make_sigv4_fixtures.py).
    fn fixture() -> Fixture {
        let v: Value = serde_json::from_str(include_str!("testdata/sigv4.json")).unwrap();
        let key = v["access_key"].as_str().unwrap().to_owned();
        let secret = v["secret"].as_str().unwrap().to_owned();
        let at =
            UNIX_EPOCH + Duration::from_secs(parse_amz_date(v["time"].as_str().unwrap()).unwrap());
        let list = |name: &str| -> Vec<Signed> {
            v[name].as_array().unwrap().iter().map(signed).collect()
        };
        Fixture {
            verifier: Verifier::new(HashMap::from([(key, secret)]), "chime")
                .with_regions(vec!["us-east-1".into(), "us-west-2".into()]),
            at,
            requests: list("requests"),
            presigned: list("presigned"),
            presign_expires: v["presign_expires"].as_u64().unwrap(),
            other_region: signed(&v["other_region"]),
        }
    }

    fn check(
        f: &Fixture,
        (method, target, headers, body): &Signed,
        at: SystemTime,
    ) -> Result<Signer, AuthError> {
        f.verifier.verify(
            &Request {
                method,
                target,
                headers,
                body,
            },
            at,
        )
    }

    #[test]
    fn accepts_every_request_botocore_signed() {
        let f = fixture();
        assert!(f.requests.len() >= 6);
        for r in &f.requests {
            let signer = check(&f, r, f.at).unwrap_or_else(|e| panic!("{} {}: {e}", r.0, r.1));
            assert_eq!(signer.region, "us-east-1");
            assert_eq!(signer.access_key, "AKIASMADEVELOPMENT01");
        }
    }

    #[test]
    fn any_change_to_what_was_signed_is_refused() {
        let f = fixture();
        let post = &f.requests[1];
        let mut body = post.clone();
        body.3.push(b' ');
        assert_eq!(check(&f, &body, f.at), Err(AuthError::Mismatch));
        let mut path = post.clone();
        path.1.push('x');
        assert_eq!(check(&f, &path, f.at), Err(AuthError::Mismatch));
        let mut method = post.clone();
        method.0 = "PUT".into();
        assert_eq!(check(&f, &method, f.at), Err(AuthError::Mismatch));
        let get = &f.requests[0];
        let mut query = get.clone();
        query.1 = query.1.replace("max-results=10", "max-results=11");
        assert_eq!(check(&f, &query, f.at), Err(AuthError::Mismatch));
        let mut host = get.clone();
        for h in &mut host.2 {
            if h.0 == "Host" {
                h.1 = "evil.example".into();
            }
        }
        assert_eq!(check(&f, &host, f.at), Err(AuthError::Mismatch));
    }

    #[test]
    fn keys_time_and_scope_are_checked() {
        let f = fixture();
        let r = &f.requests[0];
        let late = f.at + Duration::from_secs(5 * 60 + 1);
        let e = check(&f, r, late).unwrap_err();
        assert_eq!(e.code(), "InvalidSignatureException");
        assert!(
            e.to_string().starts_with(
                "Signature expired: 20261123T050000Z is now earlier than 20261123T050001Z"
            ),
            "{e}"
        );
        assert!(check(&f, r, f.at + Duration::from_secs(300)).is_ok());
        let early = f.at - Duration::from_secs(301);
        assert!(matches!(
            check(&f, r, early),
            Err(AuthError::NotYetValid { .. })
        ));

        let other = Verifier::new(HashMap::from([("AKIAOTHER".into(), "x".into())]), "chime");
        let req = Request {
            method: &r.0,
            target: &r.1,
            headers: &r.2,
            body: &r.3,
        };
        let e = other.verify(&req, f.at).unwrap_err();
        assert_eq!((e.code(), e.status()), ("UnrecognizedClientException", 403));
        let s3 = Verifier::new(f.verifier.keys.clone(), "s3");
        assert_eq!(
            s3.verify(&req, f.at),
            Err(AuthError::WrongService("s3".into()))
        );

        let unsigned: Vec<(String, String)> =
            r.2.iter()
                .filter(|(n, _)| n != "Authorization")
                .cloned()
                .collect();
        let mut bare = r.clone();
        bare.2 = unsigned;
        let e = check(&f, &bare, f.at).unwrap_err();
        assert_eq!(e.code(), "MissingAuthenticationTokenException");
    }

    #[test]
    fn hostile_authorization_headers_are_refused_cleanly() {
        let f = fixture();
        for value in [
            "",
            "AWS4-HMAC-SHA256",
            "Basic dXNlcjpwYXNz",
            "AWS4-HMAC-SHA256 Credential=a/b, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=AKIASMADEVELOPMENT01/20261123/us-east-1/chime/aws4_request, SignedHeaders=host;x-amz-date, Signature=zz",
            "AWS4-HMAC-SHA256 Credential=AKIASMADEVELOPMENT01/2026/us-east-1/chime/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
            "AWS4-HMAC-SHA256 Credential=AKIASMADEVELOPMENT01/20261123/us-east-1/chime/aws4_request, SignedHeaders=x-amz-date, Signature=00",
            "AWS4-HMAC-SHA256 Credential=AKIASMADEVELOPMENT01/20261123/us-east-1/chime/other, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=AKIASMADEVELOPMENT01/20261123/us-east-1/chime/aws4_request, SignedHeaders=host;x-missing, Signature=00",
        ] {
            let mut r = f.requests[0].clone();
            for h in &mut r.2 {
                if h.0 == "Authorization" {
                    h.1 = value.into();
                }
            }
            let e = check(&f, &r, f.at).unwrap_err();
            assert!(e.status() == 400 || e.status() == 403, "{value}: {e:?}");
        }
        for date in [
            "",
            "2026",
            "20261323T050000Z",
            "20261123T250000Z",
            "2026112xT050000Z",
        ] {
            let mut r = f.requests[0].clone();
            for h in &mut r.2 {
                if h.0 == "X-Amz-Date" {
                    h.1 = date.into();
                }
            }
            assert!(check(&f, &r, f.at).is_err(), "{date}");
        }
    }

    #[test]
    fn presigned_requests_verify_until_they_expire() {
        let f = fixture();
        assert!(f.presigned.len() >= 3);
        for r in &f.presigned {
            assert!(!r.2.iter().any(|(n, _)| n == "Authorization"));
            let signer = check(&f, r, f.at).unwrap_or_else(|e| panic!("{} {}: {e}", r.0, r.1));
            assert_eq!(signer.region, "us-east-1");
            // Valid to the last second of X-Amz-Expires, not after.
            let last = f.at + Duration::from_secs(f.presign_expires);
            assert!(check(&f, r, last).is_ok());
            let e = check(&f, r, last + Duration::from_secs(1)).unwrap_err();
            assert!(
                matches!(e, AuthError::PresignExpired { .. }),
                "{}: {e}",
                r.1
            );
            assert_eq!((e.code(), e.status()), ("InvalidSignatureException", 403));
        }
        let r = &f.presigned[0];
        let mut changed = r.clone();
        changed.1 = changed.1.replace("max-results=10", "max-results=99");
        assert_eq!(check(&f, &changed, f.at), Err(AuthError::Mismatch));
        let mut longer = r.clone();
        longer.1 = longer.1.replace("X-Amz-Expires=900", "X-Amz-Expires=9000");
        assert_eq!(check(&f, &longer, f.at), Err(AuthError::Mismatch));
        let mut forever = r.clone();
        forever.1 = forever
            .1
            .replace("X-Amz-Expires=900", "X-Amz-Expires=999999999");
        assert!(matches!(
            check(&f, &forever, f.at),
            Err(AuthError::Incomplete(_))
        ));
        let mut unsigned = r.clone();
        unsigned.1 = unsigned
            .1
            .split('&')
            .filter(|p| !p.starts_with("X-Amz-Signature"))
            .collect::<Vec<_>>()
            .join("&");
        let e = check(&f, &unsigned, f.at).unwrap_err();
        assert_eq!(e.code(), "IncompleteSignatureException", "{e}");
    }

    #[test]
    fn a_scope_naming_a_region_this_node_does_not_serve_is_refused() {
        let f = fixture();
        let e = check(&f, &f.other_region, f.at).unwrap_err();
        assert_eq!(
            e,
            AuthError::WrongRegion {
                region: "eu-west-9".into(),
                serves: "us-east-1, us-west-2".into()
            }
        );
        assert_eq!((e.code(), e.status()), ("InvalidSignatureException", 403));
        // A verifier told no regions takes any (the signature itself is valid).
        let any = Verifier::new(f.verifier.keys.clone(), "chime");
        let r = &f.other_region;
        let req = Request {
            method: &r.0,
            target: &r.1,
            headers: &r.2,
            body: &r.3,
        };
        assert_eq!(any.verify(&req, f.at).unwrap().region, "eu-west-9");
    }

    #[test]
    fn dates_round_trip() {
        for text in [
            "19700101T000000Z",
            "20000229T235959Z",
            "20261123T050000Z",
            "21000301T120000Z",
        ] {
            let secs = parse_amz_date(text).unwrap();
            assert_eq!(format_amz_date(secs), text);
        }
        assert_eq!(parse_amz_date("20261123T050000Z"), Some(1_795_410_000));
    }

    #[test]
    fn canonical_forms_follow_botocore() {
        assert_eq!(
            canonical_path("/phone-numbers/%2B1206"),
            "/phone-numbers/%252B1206"
        );
        assert_eq!(canonical_path("/a//b/./c/../d/"), "/a/b/d/");
        assert_eq!(canonical_path(""), "/");
        assert_eq!(canonical_query("b=2&a=%7e&a=1&c", None), "a=1&a=~&b=2&c=");
        assert_eq!(canonical_query("k=a%2Fb+c", None), "k=a%2Fb%2Bc");
        assert_eq!(
            canonical_query("a=1&X-Amz-Signature=ff&b=2", Some("X-Amz-Signature")),
            "a=1&b=2"
        );
        assert_eq!(percent_decode("%zz%4"), b"%zz%4");
    }
}
