//! Digest authentication for SIP (RFC 3261 §22, RFC 7616, RFC 8760): MD5 and SHA-256 with
//! qop=auth, as a server (challenge, verify, nonce expiry with `stale=true`) and as a client
//! (answer a challenge).

use md5::Md5;
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    /// `MD5` or `SHA-256`, any case.
    pub fn parse(text: &str) -> Option<Algorithm> {
        if text.eq_ignore_ascii_case("MD5") {
            Some(Algorithm::Md5)
        } else if text.eq_ignore_ascii_case("SHA-256") {
            Some(Algorithm::Sha256)
        } else {
            None
        }
    }

    fn hash(self, data: &str) -> String {
        match self {
            Algorithm::Md5 => hex(&Md5::digest(data.as_bytes())),
            Algorithm::Sha256 => hex(&Sha256::digest(data.as_bytes())),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses `Digest a=b, c="d, e"` into its scheme-less parameters (names lowercased).
pub fn parse_params(value: &str) -> Option<HashMap<String, String>> {
    let value = value.trim();
    let rest = value
        .get(..6)
        .filter(|scheme| scheme.eq_ignore_ascii_case("digest"))
        .map(|_| &value[6..])?;
    let mut out = HashMap::new();
    for part in crate::message::split_params_list(rest) {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (name, val) = part.split_once('=')?;
        let val = val.trim();
        let val = match val.strip_prefix('"') {
            Some(v) => v.strip_suffix('"')?.replace("\\\"", "\""),
            None => val.to_owned(),
        };
        out.insert(name.trim().to_ascii_lowercase(), val);
    }
    Some(out)
}

/// Why a request's credentials were not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    #[error("no credentials for this realm")]
    Missing,
    #[error("malformed credentials: {0}")]
    Malformed(String),
    #[error("nonce expired")]
    Stale,
    #[error("unknown user `{0}`")]
    UnknownUser(String),
    #[error("wrong response for user `{0}`")]
    WrongResponse(String),
}

/// The server side: issues nonces that carry their own issue time, keyed by a secret so they
/// cannot be forged, and checks answers.
#[derive(Debug, Clone)]
pub struct DigestServer {
    pub realm: String,
    secret: [u8; 32],
    epoch: Instant,
    pub nonce_lifetime: Duration,
}

impl DigestServer {
    /// `secret` comes from the IO shell's randomness; `epoch` is any instant before now.
    pub fn new(realm: &str, secret: [u8; 32], epoch: Instant) -> DigestServer {
        DigestServer {
            realm: realm.to_owned(),
            secret,
            epoch,
            nonce_lifetime: Duration::from_secs(300),
        }
    }

    fn mac(&self, issued_ms: u64) -> String {
        let mut h = Sha256::new();
        h.update(self.secret);
        h.update(issued_ms.to_be_bytes());
        hex(&h.finalize()[..16])
    }

    fn nonce(&self, now: Instant) -> String {
        let issued = now.saturating_duration_since(self.epoch).as_millis() as u64;
        format!("{issued:x}.{}", self.mac(issued))
    }

    /// The WWW-Authenticate / Proxy-Authenticate values to send, SHA-256 first (RFC 8760 §2.4:
    /// one challenge per algorithm, most preferred first).
    pub fn challenges(&self, now: Instant, stale: bool) -> Vec<String> {
        self.challenges_with(now, stale, &[Algorithm::Sha256, Algorithm::Md5])
    }

    /// The challenges for `algorithms`, in that order: a client that answers the first one
    /// and knows only MD5 needs MD5 first.
    pub fn challenges_with(
        &self,
        now: Instant,
        stale: bool,
        algorithms: &[Algorithm],
    ) -> Vec<String> {
        let nonce = self.nonce(now);
        algorithms
            .iter()
            .copied()
            .map(|alg| {
                format!(
                    "Digest realm=\"{}\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\"{}",
                    self.realm,
                    alg.as_str(),
                    if stale { ", stale=true" } else { "" }
                )
            })
            .collect()
    }

    /// Checks an Authorization value. `password` looks up a user's password.
    pub fn verify(
        &self,
        authorization: Option<&str>,
        method: &str,
        password: impl Fn(&str) -> Option<String>,
        now: Instant,
    ) -> Result<String, AuthFailure> {
        let value = authorization.ok_or(AuthFailure::Missing)?;
        let p = parse_params(value)
            .ok_or_else(|| AuthFailure::Malformed("not a Digest credential".into()))?;
        let field = |name: &str| {
            p.get(name)
                .map(String::as_str)
                .ok_or_else(|| AuthFailure::Malformed(format!("missing {name}")))
        };
        if field("realm")? != self.realm {
            return Err(AuthFailure::Missing);
        }
        let username = field("username")?;
        let nonce = field("nonce")?;
        let uri = field("uri")?;
        let response = field("response")?;
        let algorithm = match p.get("algorithm") {
            Some(a) => Algorithm::parse(a)
                .ok_or_else(|| AuthFailure::Malformed(format!("algorithm `{a}`")))?,
            None => Algorithm::Md5,
        };
        let (issued, mac) = nonce
            .split_once('.')
            .ok_or_else(|| AuthFailure::Malformed("foreign nonce".into()))?;
        let issued = u64::from_str_radix(issued, 16)
            .map_err(|_| AuthFailure::Malformed("foreign nonce".into()))?;
        if !constant_time_eq(mac.as_bytes(), self.mac(issued).as_bytes()) {
            return Err(AuthFailure::Malformed("foreign nonce".into()));
        }
        let age = now
            .saturating_duration_since(self.epoch)
            .saturating_sub(Duration::from_millis(issued));
        let password =
            password(username).ok_or_else(|| AuthFailure::UnknownUser(username.into()))?;
        let expected = compute(
            algorithm,
            username,
            &self.realm,
            &password,
            method,
            uri,
            nonce,
            p.get("qop").map(String::as_str),
            p.get("nc").map(String::as_str),
            p.get("cnonce").map(String::as_str),
        );
        if !constant_time_eq(
            expected.as_bytes(),
            response.to_ascii_lowercase().as_bytes(),
        ) {
            return Err(AuthFailure::WrongResponse(username.into()));
        }
        // Checked after the response so `stale` is only said to a client that knows the
        // password (RFC 7616 §3.3).
        if age > self.nonce_lifetime {
            return Err(AuthFailure::Stale);
        }
        Ok(username.to_owned())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[allow(clippy::too_many_arguments)]
fn compute(
    algorithm: Algorithm,
    username: &str,
    realm: &str,
    password: &str,
    method: &str,
    uri: &str,
    nonce: &str,
    qop: Option<&str>,
    nc: Option<&str>,
    cnonce: Option<&str>,
) -> String {
    let ha1 = algorithm.hash(&format!("{username}:{realm}:{password}"));
    let ha2 = algorithm.hash(&format!("{method}:{uri}"));
    match qop {
        Some(qop) => algorithm.hash(&format!(
            "{ha1}:{nonce}:{}:{}:{qop}:{ha2}",
            nc.unwrap_or(""),
            cnonce.unwrap_or("")
        )),
        None => algorithm.hash(&format!("{ha1}:{nonce}:{ha2}")),
    }
}

/// The client side: answers a challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl Credentials {
    /// Picks the best challenge this side supports (SHA-256 over MD5) from the values of
    /// WWW-Authenticate or Proxy-Authenticate, and builds the Authorization value.
    pub fn answer<'a>(
        &self,
        challenges: impl IntoIterator<Item = &'a str>,
        method: &str,
        uri: &str,
        cnonce: &str,
        nc: u32,
    ) -> Option<String> {
        let mut best: Option<(Algorithm, HashMap<String, String>)> = None;
        for c in challenges {
            let Some(p) = parse_params(c) else { continue };
            let Some(alg) = Algorithm::parse(p.get("algorithm").map_or("MD5", String::as_str))
            else {
                continue;
            };
            if best
                .as_ref()
                .is_none_or(|(b, _)| *b == Algorithm::Md5 && alg == Algorithm::Sha256)
            {
                best = Some((alg, p));
            }
        }
        let (algorithm, p) = best?;
        let realm = p.get("realm")?;
        let nonce = p.get("nonce")?;
        let qop = p
            .get("qop")
            .and_then(|q| q.split(',').map(str::trim).find(|q| *q == "auth"));
        let nc = format!("{nc:08x}");
        let response = compute(
            algorithm,
            &self.username,
            realm,
            &self.password,
            method,
            uri,
            nonce,
            qop,
            qop.map(|_| nc.as_str()),
            qop.map(|_| cnonce),
        );
        let mut out = format!(
            "Digest username=\"{}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm={}",
            self.username,
            algorithm.as_str()
        );
        if let Some(qop) = qop {
            out.push_str(&format!(", qop={qop}, nc={nc}, cnonce=\"{cnonce}\""));
        }
        if let Some(opaque) = p.get("opaque") {
            out.push_str(&format!(", opaque=\"{opaque}\""));
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_2617_md5_example() {
        // RFC 2617 §3.5 worked example (qop=auth).
        let r = compute(
            Algorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            Some("auth"),
            Some("00000001"),
            Some("0a4f113b"),
        );
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn rfc_7616_sha256_example() {
        let r = compute(
            Algorithm::Sha256,
            "Mufasa",
            "http-auth@example.org",
            "Circle of Life",
            "GET",
            "/dir/index.html",
            "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            Some("auth"),
            Some("00000001"),
            Some("f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"),
        );
        assert_eq!(
            r,
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn server_challenge_client_answer_round_trip() {
        let epoch = Instant::now();
        let server = DigestServer::new("sma.test", [7; 32], epoch);
        let creds = Credentials {
            username: "pbx".into(),
            password: "s3cret".into(),
        };
        let challenges = server.challenges(epoch, false);
        let auth = creds
            .answer(
                challenges.iter().map(String::as_str),
                "INVITE",
                "sip:+15550100@sma.test",
                "abc",
                1,
            )
            .unwrap();
        assert!(auth.contains("algorithm=SHA-256"));
        let lookup = |u: &str| (u == "pbx").then(|| "s3cret".to_string());
        assert_eq!(
            server.verify(Some(&auth), "INVITE", lookup, epoch).unwrap(),
            "pbx"
        );
        assert_eq!(
            server.verify(
                Some(&auth),
                "INVITE",
                lookup,
                epoch + Duration::from_secs(301)
            ),
            Err(AuthFailure::Stale)
        );
        let wrong = Credentials {
            username: "pbx".into(),
            password: "nope".into(),
        }
        .answer(
            challenges.iter().map(String::as_str),
            "INVITE",
            "sip:x@y",
            "c",
            1,
        )
        .unwrap();
        assert_eq!(
            server.verify(Some(&wrong), "INVITE", lookup, epoch),
            Err(AuthFailure::WrongResponse("pbx".into()))
        );
        assert_eq!(
            server.verify(None, "INVITE", lookup, epoch),
            Err(AuthFailure::Missing)
        );
        let forged = auth.replace("nonce=\"", "nonce=\"1");
        assert!(matches!(
            server.verify(Some(&forged), "INVITE", lookup, epoch),
            Err(AuthFailure::Malformed(_))
        ));
        // MD5-only challenge is answered with MD5.
        let md5_only = vec![challenges[1].as_str()];
        let auth = creds.answer(md5_only, "INVITE", "sip:a@b", "c", 1).unwrap();
        assert!(auth.contains("algorithm=MD5"));
        assert_eq!(
            server.verify(Some(&auth), "INVITE", lookup, epoch).unwrap(),
            "pbx"
        );
    }
}
