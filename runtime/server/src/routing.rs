//! Routing an incoming INVITE: which SIP rule it triggers (contract §5.2), and whether a voice
//! connector's termination settings let it in. Pure functions over a [`Snapshot`] and the
//! request; the endpoint turns the outcome into SIP responses.

use crate::routing_table::{SipRule, Snapshot, VoiceConnector};
use sma_sip::message::{Host, Scheme, Uri};
use sma_sip::Transport;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerType {
    ToPhoneNumber,
    RequestUriHostname,
}

/// The digits of a phone number as dialled: `tel:` numbers and `sip:` user parts, with `+`,
/// visual separators (`-`, `.`, `(`, `)`, space) and parameters (`;phone-context=…`) removed.
/// `None` when what remains is not 2–15 digits (not a phone number).
pub fn normalize_number(user: &str) -> Option<String> {
    let number = user.split(';').next().unwrap_or_default();
    let number = number.strip_prefix('+').unwrap_or(number);
    let mut digits = String::with_capacity(number.len());
    for c in number.chars() {
        match c {
            '0'..='9' => digits.push(c),
            '-' | '.' | '(' | ')' | ' ' => {}
            // Percent-encoded space or other escapes are not part of a dialled number.
            _ => return None,
        }
    }
    (2..=15).contains(&digits.len()).then_some(digits)
}

/// The number a Request-URI dials, if it dials one.
pub fn dialed_number(uri: &Uri) -> Option<String> {
    normalize_number(uri.user.as_deref()?)
}

fn host_name(uri: &Uri) -> Option<String> {
    match (&uri.scheme, &uri.host) {
        (Scheme::Tel, _) => None,
        (_, Host::Name(name)) => Some(name.to_ascii_lowercase()),
        (_, host) => Some(host.to_string().to_ascii_lowercase()),
    }
}

/// What routing decided.
pub enum Route {
    /// The rule to run, and the voice connector the call came through (if any).
    Rule {
        rule: Arc<SipRule>,
        voice_connector: Option<Arc<VoiceConnector>>,
    },
    /// Nothing matches: 404.
    NotFound(String),
}

/// The voice connector whose host a Request-URI names, if any.
pub fn connector_for(snapshot: &Snapshot, uri: &Uri) -> Option<Arc<VoiceConnector>> {
    let host = host_name(uri)?;
    snapshot
        .voice_connectors
        .iter()
        .find(|v| v.host == host)
        .cloned()
}

/// Finds the rule for a Request-URI. A call to a voice connector's host is matched by
/// `RequestUriHostname` rules only (it came in over a trunk); any other call by its dialled
/// number first, then by host. Disabled rules never match.
pub fn route(snapshot: &Snapshot, uri: &Uri) -> Route {
    let host = host_name(uri);
    let connector = host.as_ref().and_then(|h| {
        snapshot
            .voice_connectors
            .iter()
            .find(|v| &v.host == h)
            .cloned()
    });
    let enabled = |trigger: TriggerType, value: &str| {
        snapshot
            .rules
            .iter()
            .find(|r| !r.disabled && r.trigger == trigger && r.trigger_value == value)
            .cloned()
    };
    if connector.is_none() {
        if let Some(number) = dialed_number(uri) {
            if let Some(rule) = enabled(TriggerType::ToPhoneNumber, &number) {
                return Route::Rule {
                    rule,
                    voice_connector: None,
                };
            }
        }
    }
    if let Some(rule) = host
        .as_deref()
        .and_then(|h| enabled(TriggerType::RequestUriHostname, h))
    {
        return Route::Rule {
            rule,
            voice_connector: connector,
        };
    }
    Route::NotFound(match (dialed_number(uri), host) {
        (Some(n), _) if connector.is_none() => format!("no enabled SIP rule for number +{n}"),
        (_, Some(h)) => format!("no enabled SIP rule for host {h}"),
        _ => format!("no enabled SIP rule for {uri}"),
    })
}

/// Why a voice connector refused a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 403: source not allowed, region not allowed, connector disabled.
    Forbidden(String),
    /// 403 with a hint: the connector requires TLS.
    EncryptionRequired,
}

/// Whether the dialled `digits` fall in one of `regions`.
pub fn in_calling_regions(digits: &str, regions: &[String]) -> bool {
    regions.is_empty()
        || sma_store::numbering::CALLING_CODES
            .iter()
            .any(|(code, region)| digits.starts_with(code) && regions.iter().any(|r| r == region))
}

/// Checks a call arriving through a voice connector, before authentication: source network,
/// transport and calling region.
/// Whether `source` may send calls through `connector` at all: checked before its
/// credentials, so what is refused here is told to the peer without naming the connector
/// (the reason is for the log).
pub fn admit_source(
    connector: &VoiceConnector,
    source: IpAddr,
    transport: Transport,
) -> Result<(), Refusal> {
    if connector.disabled {
        return Err(Refusal::Forbidden(format!(
            "termination is disabled on voice connector {}",
            connector.name
        )));
    }
    if connector.require_encryption && transport != Transport::Tls {
        return Err(Refusal::EncryptionRequired);
    }
    if !connector.allow.iter().any(|net| net.contains(&source)) {
        return Err(Refusal::Forbidden(format!(
            "source {source} is not in the allow list of voice connector {}",
            connector.name
        )));
    }
    Ok(())
}

/// Mutual TLS: whether the client certificate `chain` (none when the call did not come
/// over TLS or the client sent none) is one `connector` trusts. Connectors without a client
/// CA take any caller.
pub fn admit_client_certificate(
    connector: &VoiceConnector,
    chain: Option<&[sma_net::tls::CertificateDer<'static>]>,
) -> Result<(), String> {
    let Some(trust) = &connector.client_trust else {
        return Ok(());
    };
    let verdict = match (trust, chain) {
        (Err(why), _) => Err(format!("its client CA file cannot be used: {why}")),
        (Ok(_), None) => Err("no client certificate (mutual TLS is required)".into()),
        (Ok(trust), Some(chain)) => trust.verify(chain),
    };
    verdict.map_err(|why| format!("voice connector {}: {why}", connector.name))
}

/// Whether an admitted (and authenticated) caller may dial `uri` through `connector`: its
/// calling plan.
pub fn admit_destination(connector: &VoiceConnector, uri: &Uri) -> Result<(), Refusal> {
    if let Some(digits) = dialed_number(uri) {
        if !in_calling_regions(&digits, &connector.calling_regions) {
            return Err(Refusal::Forbidden(format!(
                "+{digits} is outside the calling regions of voice connector {}",
                connector.name
            )));
        }
    }
    Ok(())
}

/// A sliding one-second window of admitted calls: at most `limit` in any second.
#[derive(Debug, Default)]
pub struct RateLimiter {
    admitted: VecDeque<Instant>,
}

impl RateLimiter {
    /// Admits one call at `now` unless `limit` were admitted in the last second (0: no limit).
    pub fn admit(&mut self, limit: u32, now: Instant) -> bool {
        if limit == 0 {
            return true;
        }
        while let Some(first) = self.admitted.front() {
            if now.saturating_duration_since(*first) >= Duration::from_secs(1) {
                self.admitted.pop_front();
            } else {
                break;
            }
        }
        if self.admitted.len() >= limit as usize {
            return false;
        }
        self.admitted.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_normalise_from_tel_sip_and_visual_separators() {
        for (uri, want) in [
            ("sip:+12065550100@127.0.0.1", Some("12065550100")),
            (
                "sip:12065550100@example.com;user=phone",
                Some("12065550100"),
            ),
            ("sip:+1-206-555-0100@example.com", Some("12065550100")),
            (
                "sip:+1(206)555.0100;phone-context=x@example.com",
                Some("12065550100"),
            ),
            ("tel:+1-206-555-0100", Some("12065550100")),
            ("sip:alice@example.com", None),
            ("sip:+1@example.com", None),
            ("sip:1234567890123456@example.com", None),
        ] {
            let uri = Uri::parse(uri).unwrap();
            assert_eq!(dialed_number(&uri).as_deref(), want, "{uri}");
        }
    }

    #[test]
    fn calling_regions_match_by_country_code() {
        let us = vec!["US".to_owned()];
        assert!(in_calling_regions("12065550100", &us));
        assert!(!in_calling_regions("442079460000", &us));
        assert!(in_calling_regions("442079460000", &[]));
        assert!(in_calling_regions("442079460000", &["GB".to_owned()]));
    }

    #[test]
    fn rate_limiter_admits_at_most_limit_per_second() {
        let mut r = RateLimiter::default();
        let t0 = Instant::now();
        assert!(r.admit(2, t0));
        assert!(r.admit(2, t0 + Duration::from_millis(10)));
        assert!(!r.admit(2, t0 + Duration::from_millis(500)));
        assert!(r.admit(2, t0 + Duration::from_millis(1000)));
        assert!(r.admit(0, t0));
    }
}
