//! Where an outbound leg goes: the one routing function behind `CallAndBridge` and
//! `CreateSipMediaApplicationCall`.
//!
//! | The leg dials | It goes to |
//! |---|---|
//! | `AWS` endpoint, ARN of a voice connector | that connector's origination routes, `Uri` as the user part |
//! | `AWS` endpoint, ARN of a voice connector group | each connector of the group in priority order, each with its routes |
//! | a number of the inventory associated with a voice connector (or group) | that connector's (group's) origination routes |
//! | a number a SIP rule of this runtime serves | this runtime, as a new inbound call to that rule's application |
//! | any other number | the first `[[carriers]]` entry (by priority) whose prefixes match it |
//! | nothing of the above | nowhere: the action fails, and the reason is logged and recorded |
//!
//! Within one connector, routes are tried lowest `Priority` first; routes of equal priority
//! in a weighted random order (`Weight`). The caller of [`plan`] tries the attempts in order,
//! moving on when one times out, is refused, or fails with 408 or 5xx; any other final
//! response (busy, declined, not found) ends the dialing.

use crate::routing::{normalize_number, TriggerType};
use crate::routing_table::{NumberTarget, OriginationRoute, Snapshot, VoiceConnector};
use sma_sip::message::{Host, Scheme, Uri};
use sma_sip::Transport;
use std::net::SocketAddr;

/// What a new leg dials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dialed {
    /// A phone number (E.164, with or without `+`).
    Number(String),
    /// A voice connector or group by ARN, and the Request-URI user part.
    Connector { arn: String, user: String },
}

/// An operator's SIP trunk (`[[carriers]]` in `sma.toml`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Carrier {
    pub name: String,
    /// The carrier's proxy host and port.
    pub host: String,
    pub port: u16,
    pub transport: Transport,
    /// Digest credentials for its challenges.
    pub username: Option<String>,
    pub password: Option<String>,
    /// Numbers it takes, as `+` prefixes (`+1`, `+44`); empty takes every number.
    pub prefixes: Vec<String>,
    /// Lower first.
    pub priority: u32,
    /// Keep a registration with the proxy (the contact it delivers inbound calls to).
    pub register: Option<Registration>,
}

/// A carrier's registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The address of record, e.g. `sip:+12065550100@carrier.example`.
    pub aor: String,
    pub expires_secs: u32,
}

impl Carrier {
    /// Whether it takes `digits`.
    fn serves(&self, digits: &str) -> bool {
        self.prefixes.is_empty()
            || self
                .prefixes
                .iter()
                .any(|p| digits.starts_with(p.trim_start_matches('+')))
    }
}

/// One place to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The Request-URI.
    pub target: Uri,
    /// Where to send it (a name is resolved when dialing).
    pub host: String,
    pub port: u16,
    pub transport: Transport,
    pub credentials: Option<sma_sip::auth::Credentials>,
    /// What this attempt is, for logs and call records ("voice connector pbx, route
    /// 10.0.0.5:5060/UDP").
    pub via: String,
}

/// Why there is nowhere to go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoRoute {
    /// The endpoint names something that does not exist (`InvalidActionParameter`).
    BadEndpoint(String),
    /// Nothing takes the number, or the connector has no usable route (`CallNotAnswered`).
    Nowhere(String),
}

impl std::fmt::Display for NoRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoRoute::BadEndpoint(why) | NoRoute::Nowhere(why) => f.write_str(why),
        }
    }
}

/// The attempts for `dialed`, in the order to try them. `on_net` is this runtime's own SIP
/// listener (for numbers its rules serve); `random` draws the weighted order of equal
/// priorities (a fresh number per call).
pub fn plan(
    snapshot: &Snapshot,
    carriers: &[Carrier],
    on_net: Option<(SocketAddr, Transport)>,
    dialed: &Dialed,
    random: &mut dyn FnMut() -> u32,
) -> Result<Vec<Attempt>, NoRoute> {
    match dialed {
        Dialed::Connector { arn, user } => {
            if let Some(vc) = snapshot.voice_connectors.iter().find(|v| &v.arn == arn) {
                return connector_attempts(vc, user, random);
            }
            if let Some(group) = snapshot.groups.iter().find(|g| &g.arn == arn) {
                return group_attempts(snapshot, &group.connectors, &group.name, user, random);
            }
            Err(NoRoute::BadEndpoint(format!(
                "no voice connector or voice connector group has the ARN {arn}"
            )))
        }
        Dialed::Number(number) => {
            let Some(digits) = normalize_number(number) else {
                return Err(NoRoute::BadEndpoint(format!(
                    "{number} is not a phone number"
                )));
            };
            let e164 = format!("+{digits}");
            match snapshot.number_targets.get(&digits) {
                Some(NumberTarget::VoiceConnector(id)) => {
                    return match snapshot.voice_connectors.iter().find(|v| &v.id == id) {
                        Some(vc) => connector_attempts(vc, &e164, random),
                        None => Err(NoRoute::Nowhere(format!(
                            "{e164} is associated with voice connector {id}, which no longer exists"
                        ))),
                    };
                }
                Some(NumberTarget::VoiceConnectorGroup(id)) => {
                    return match snapshot.groups.iter().find(|g| &g.id == id) {
                        Some(g) => group_attempts(snapshot, &g.connectors, &g.name, &e164, random),
                        None => Err(NoRoute::Nowhere(format!(
                            "{e164} is associated with voice connector group {id}, which no longer exists"
                        ))),
                    };
                }
                None => {}
            }
            let served_here = snapshot.rules.iter().any(|r| {
                !r.disabled && r.trigger == TriggerType::ToPhoneNumber && r.trigger_value == digits
            });
            if served_here {
                if let Some((address, transport)) = on_net {
                    return Ok(vec![Attempt {
                        target: sip_uri(
                            &e164,
                            &address.ip().to_string(),
                            address.port(),
                            transport,
                        ),
                        host: address.ip().to_string(),
                        port: address.port(),
                        transport,
                        credentials: None,
                        via: format!("this runtime's SIP rule for {e164}"),
                    }]);
                }
            }
            let mut takers: Vec<&Carrier> = carriers.iter().filter(|c| c.serves(&digits)).collect();
            takers.sort_by_key(|c| c.priority);
            if takers.is_empty() {
                return Err(NoRoute::Nowhere(format!(
                    "no route to {e164}: it is not associated with a voice connector, no SIP rule here serves it, and no carrier takes it"
                )));
            }
            Ok(takers
                .into_iter()
                .map(|c| Attempt {
                    target: sip_uri(&e164, &c.host, c.port, c.transport),
                    host: c.host.clone(),
                    port: c.port,
                    transport: c.transport,
                    credentials: match (&c.username, &c.password) {
                        (Some(u), Some(p)) => Some(sma_sip::auth::Credentials {
                            username: u.clone(),
                            password: p.clone(),
                        }),
                        _ => None,
                    },
                    via: format!("carrier {}", c.name),
                })
                .collect())
        }
    }
}

fn sip_uri(user: &str, host: &str, port: u16, transport: Transport) -> Uri {
    let host = match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => Host::V4(v4),
        Ok(std::net::IpAddr::V6(v6)) => Host::V6(v6),
        Err(_) => Host::Name(host.to_owned()),
    };
    let mut uri = Uri {
        scheme: if transport == Transport::Tls {
            Scheme::Sips
        } else {
            Scheme::Sip
        },
        user: Some(user.to_owned()),
        host,
        port: Some(port),
        params: Default::default(),
        headers: None,
    };
    if transport == Transport::Tcp {
        uri.params.set("transport", Some("tcp".into()));
    }
    uri
}

fn connector_attempts(
    vc: &VoiceConnector,
    user: &str,
    random: &mut dyn FnMut() -> u32,
) -> Result<Vec<Attempt>, NoRoute> {
    if vc.origination_disabled {
        return Err(NoRoute::Nowhere(format!(
            "origination is disabled on voice connector {}",
            vc.name
        )));
    }
    if vc.origination.is_empty() {
        return Err(NoRoute::Nowhere(format!(
            "voice connector {} has no origination routes",
            vc.name
        )));
    }
    Ok(ordered(&vc.origination, random)
        .into_iter()
        .map(|r| Attempt {
            target: sip_uri(user, &r.host, r.port, r.transport),
            host: r.host.clone(),
            port: r.port,
            transport: r.transport,
            credentials: None,
            via: format!(
                "voice connector {}, route {}:{}/{}",
                vc.name, r.host, r.port, r.transport
            ),
        })
        .collect())
}

fn group_attempts(
    snapshot: &Snapshot,
    connectors: &[String],
    group: &str,
    user: &str,
    random: &mut dyn FnMut() -> u32,
) -> Result<Vec<Attempt>, NoRoute> {
    let mut attempts = Vec::new();
    let mut why = Vec::new();
    for id in connectors {
        match snapshot.voice_connectors.iter().find(|v| &v.id == id) {
            Some(vc) => match connector_attempts(vc, user, random) {
                Ok(mut a) => attempts.append(&mut a),
                Err(e) => why.push(e.to_string()),
            },
            None => why.push(format!("voice connector {id} no longer exists")),
        }
    }
    if attempts.is_empty() {
        return Err(NoRoute::Nowhere(format!(
            "voice connector group {group} has no usable route ({})",
            why.join("; ")
        )));
    }
    Ok(attempts)
}

/// Routes lowest priority first; equal priorities in a weighted random order (a route of
/// weight 0 comes last among its peers).
fn ordered<'a>(
    routes: &'a [OriginationRoute],
    random: &mut dyn FnMut() -> u32,
) -> Vec<&'a OriginationRoute> {
    let mut priorities: Vec<u32> = routes.iter().map(|r| r.priority).collect();
    priorities.sort_unstable();
    priorities.dedup();
    let mut out = Vec::with_capacity(routes.len());
    for p in priorities {
        let mut pool: Vec<&OriginationRoute> = routes.iter().filter(|r| r.priority == p).collect();
        while !pool.is_empty() {
            let total: u64 = pool.iter().map(|r| u64::from(r.weight)).sum();
            let index = if total == 0 {
                0
            } else {
                let mut pick = u64::from(random()) % total;
                pool.iter()
                    .position(|r| {
                        if pick < u64::from(r.weight) {
                            true
                        } else {
                            pick -= u64::from(r.weight);
                            false
                        }
                    })
                    .unwrap_or(0)
            };
            out.push(pool.remove(index));
        }
    }
    out
}

/// Whether a failed attempt moves on to the next (timeout, refused connection, 408, 5xx) or
/// ends the dialing (busy, declined, not found: the far end answered for the number).
pub fn try_next(status: u16) -> bool {
    status == 408 || (500..600).contains(&status) || status == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing_table::{ConnectorGroup, SipRule};
    use std::sync::Arc;

    fn route(host: &str, priority: u32, weight: u32) -> OriginationRoute {
        OriginationRoute {
            host: host.into(),
            port: 5060,
            transport: Transport::Udp,
            priority,
            weight,
        }
    }

    fn connector(id: &str, routes: Vec<OriginationRoute>) -> Arc<VoiceConnector> {
        Arc::new(VoiceConnector {
            id: id.into(),
            name: format!("{id}-name"),
            region: "us-east-1".into(),
            host: format!("{id}.voiceconnector.example"),
            require_encryption: false,
            client_trust: None,
            allow: Vec::new(),
            calling_regions: Vec::new(),
            cps_limit: 0,
            credentials: Vec::new(),
            disabled: false,
            digest_algorithms: Vec::new(),
            arn: format!("arn:aws:chime:us-east-1:111122223333:vc/{id}"),
            origination: routes,
            origination_disabled: false,
        })
    }

    fn snapshot() -> Snapshot {
        let mut s = Snapshot::default();
        s.voice_connectors.push(connector(
            "vc1",
            vec![
                route("b.example", 2, 1),
                route("a1.example", 1, 90),
                route("a2.example", 1, 10),
            ],
        ));
        s.voice_connectors
            .push(connector("vc2", vec![route("c.example", 1, 1)]));
        s.voice_connectors.push(connector("empty", vec![]));
        s.groups.push(Arc::new(ConnectorGroup {
            id: "g1".into(),
            name: "east-west".into(),
            arn: "arn:aws:chime:us-east-1:111122223333:vcg/g1".into(),
            connectors: vec!["vc2".into(), "empty".into(), "vc1".into()],
        }));
        s.number_targets.insert(
            "12065550100".into(),
            NumberTarget::VoiceConnector("vc2".into()),
        );
        s.number_targets.insert(
            "12065550101".into(),
            NumberTarget::VoiceConnectorGroup("g1".into()),
        );
        s.rules.push(Arc::new(SipRule {
            id: "r".into(),
            name: "here".into(),
            trigger: TriggerType::ToPhoneNumber,
            trigger_value: "12065550177".into(),
            disabled: false,
            chain: Arc::new(sma_handler::FailoverChain::new(
                Vec::new(),
                sma_handler::CoolDownPolicy::default(),
            )),
            targets: Vec::new(),
        }));
        s
    }

    fn carriers() -> Vec<Carrier> {
        let carrier = |name: &str, prefixes: &[&str], priority| Carrier {
            name: name.into(),
            host: format!("{name}.example"),
            port: 5060,
            transport: Transport::Udp,
            username: Some("trunk".into()),
            password: Some("secret".into()),
            prefixes: prefixes.iter().map(|p| p.to_string()).collect(),
            priority,
            register: None,
        };
        vec![
            carrier("uk", &["+44"], 1),
            carrier("backup", &[], 9),
            carrier("us", &["+1"], 2),
        ]
    }

    fn hosts(attempts: &[Attempt]) -> Vec<&str> {
        attempts.iter().map(|a| a.host.as_str()).collect()
    }

    fn counter() -> impl FnMut() -> u32 {
        let mut n = 0u32;
        move || {
            n = n.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            n >> 8
        }
    }

    #[test]
    fn a_connector_arn_goes_to_its_routes_lowest_priority_first() {
        let s = snapshot();
        let dialed = Dialed::Connector {
            arn: "arn:aws:chime:us-east-1:111122223333:vc/vc1".into(),
            user: "5550".into(),
        };
        let attempts = plan(&s, &[], None, &dialed, &mut counter()).unwrap();
        assert_eq!(attempts.len(), 3);
        assert_eq!(attempts[2].host, "b.example", "priority 2 last");
        assert_eq!(
            attempts[0].target.to_string(),
            format!("sip:5550@{}:5060", attempts[0].host)
        );
        assert!(attempts[0].via.contains("vc1-name"));
    }

    #[test]
    fn equal_priorities_are_ordered_by_weight_at_random() {
        let s = snapshot();
        let dialed = Dialed::Connector {
            arn: "arn:aws:chime:us-east-1:111122223333:vc/vc1".into(),
            user: "5550".into(),
        };
        let mut random = counter();
        let mut first_a1 = 0;
        for _ in 0..1000 {
            let attempts = plan(&s, &[], None, &dialed, &mut random).unwrap();
            if attempts[0].host == "a1.example" {
                first_a1 += 1;
            }
        }
        // Weights 90 and 10: the heavy route comes first about nine times in ten.
        assert!((850..=950).contains(&first_a1), "{first_a1}");
    }

    #[test]
    fn a_group_tries_its_connectors_in_priority_order_skipping_unusable_ones() {
        let s = snapshot();
        let dialed = Dialed::Connector {
            arn: "arn:aws:chime:us-east-1:111122223333:vcg/g1".into(),
            user: "+12065550199".into(),
        };
        let attempts = plan(&s, &[], None, &dialed, &mut counter()).unwrap();
        assert_eq!(attempts[0].host, "c.example");
        assert_eq!(attempts.len(), 4);
        assert_eq!(attempts[3].host, "b.example");
    }

    #[test]
    fn numbers_go_to_their_association_then_this_runtime_then_carriers() {
        let s = snapshot();
        let on_net: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        let go = |n: &str| {
            plan(
                &s,
                &carriers(),
                Some((on_net, Transport::Udp)),
                &Dialed::Number(n.into()),
                &mut counter(),
            )
        };
        assert_eq!(hosts(&go("+12065550100").unwrap()), ["c.example"]);
        assert_eq!(go("+12065550101").unwrap().len(), 4);
        let here = go("+12065550177").unwrap();
        assert_eq!(
            here[0].target.to_string(),
            "sip:+12065550177@127.0.0.1:5060"
        );
        assert!(here[0].credentials.is_none());
        assert_eq!(
            hosts(&go("+442071234567").unwrap()),
            ["uk.example", "backup.example"]
        );
        let us = go("+13125550100").unwrap();
        assert_eq!(hosts(&us), ["us.example", "backup.example"]);
        assert_eq!(
            us[0].credentials.as_ref().map(|c| c.username.as_str()),
            Some("trunk")
        );
        assert_eq!(us[0].target.to_string(), "sip:+13125550100@us.example:5060");
    }

    #[test]
    fn nowhere_to_go_says_why() {
        let s = snapshot();
        let none = plan(
            &s,
            &[],
            None,
            &Dialed::Number("+33612345678".into()),
            &mut counter(),
        );
        assert!(matches!(none, Err(NoRoute::Nowhere(ref w)) if w.contains("no carrier")));
        let bad = plan(
            &s,
            &[],
            None,
            &Dialed::Connector {
                arn: "arn:aws:chime:us-east-1:111122223333:vc/nope".into(),
                user: "1".into(),
            },
            &mut counter(),
        );
        assert!(matches!(bad, Err(NoRoute::BadEndpoint(_))));
        let empty = plan(
            &s,
            &[],
            None,
            &Dialed::Connector {
                arn: "arn:aws:chime:us-east-1:111122223333:vc/empty".into(),
                user: "1".into(),
            },
            &mut counter(),
        );
        assert!(
            matches!(empty, Err(NoRoute::Nowhere(ref w)) if w.contains("no origination routes"))
        );
    }

    #[test]
    fn which_failures_move_on() {
        for status in [0, 408, 500, 503] {
            assert!(try_next(status), "{status}");
        }
        for status in [404, 480, 486, 603] {
            assert!(!try_next(status), "{status}");
        }
    }
}
