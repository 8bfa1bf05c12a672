//! The runtime's store of routing resources: phone numbers, SIP media applications, SIP rules
//! and voice connectors.
//!
//! Routing reads an immutable [`Snapshot`]; a change builds a new snapshot and swaps it in, so
//! new calls see it at once while calls in progress keep the `Arc` they started with (their
//! application and failover chain). `sma.toml` seeds the store; the control-plane API will
//! write to it the same way.

use crate::config::{self, ConfigError, File};
use crate::routing::{normalize_number, TriggerType};
use sma_handler::{
    CoolDownPolicy, FailoverChain, HandlerEndpoint, InstanceMode, Target, WasmEngine, WasmLimits,
    WebhookClient, WebhookHandler,
};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// A SIP media application.
pub struct Application {
    pub id: String,
    pub name: String,
    pub region: String,
    /// The component path or webhook URL, for logs.
    pub endpoint: String,
    pub handler: HandlerEndpoint,
}

/// A SIP rule, with the failover chain over its targets.
pub struct SipRule {
    pub id: String,
    pub name: String,
    pub trigger: TriggerType,
    /// Digits only for `ToPhoneNumber`, lower-case for `RequestUriHostname`.
    pub trigger_value: String,
    pub disabled: bool,
    pub chain: Arc<FailoverChain>,
    /// Target application ids in priority order, for logs and call records.
    pub targets: Vec<String>,
}

/// Who may send calls through a voice connector (its termination settings).
pub struct VoiceConnector {
    pub id: String,
    pub name: String,
    pub region: String,
    pub host: String,
    pub require_encryption: bool,
    pub allow: Vec<ipnet::IpNet>,
    pub calling_regions: Vec<String>,
    pub cps_limit: u32,
    pub credentials: Vec<(String, String)>,
    pub disabled: bool,
}

/// One consistent view of the routing resources.
#[derive(Default)]
pub struct Snapshot {
    pub numbers: BTreeSet<String>,
    pub applications: HashMap<String, Arc<Application>>,
    pub rules: Vec<Arc<SipRule>>,
    pub voice_connectors: Vec<Arc<VoiceConnector>>,
}

/// The store: the current snapshot.
#[derive(Default)]
pub struct Store {
    current: RwLock<Arc<Snapshot>>,
}

impl Store {
    pub fn new(snapshot: Snapshot) -> Store {
        Store {
            current: RwLock::new(Arc::new(snapshot)),
        }
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current
            .read()
            .map(|g| g.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Replaces the snapshot; calls in progress keep theirs.
    pub fn replace(&self, snapshot: Snapshot) {
        let mut guard = self.current.write().unwrap_or_else(|p| p.into_inner());
        *guard = Arc::new(snapshot);
    }
}

/// What building handlers needs.
pub struct HandlerFactory<'a> {
    pub engine: &'a WasmEngine,
    pub webhooks: &'a WebhookClient,
    pub deadline: Duration,
}

fn bad(message: String) -> ConfigError {
    ConfigError::Resource(message)
}

/// A stable id for a resource named `name` when the configuration gives none.
fn id_from_name(kind: &str, name: &str) -> String {
    let slug: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    format!("{kind}-{slug}")
}

fn check_name(what: &str, name: &str) -> Result<(), ConfigError> {
    let ok = (1..=256).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " _.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(bad(format!(
            "{what} name `{name}` must be 1-256 characters of letters, digits, space, `_`, `.` or `-`"
        )))
    }
}

/// Builds a snapshot from the configuration, checking every cross-reference.
pub fn load(file: &File, handlers: &HandlerFactory<'_>) -> Result<Snapshot, ConfigError> {
    let mut snapshot = Snapshot::default();
    for entry in &file.phone_numbers {
        if !sma_actions::is_e164(&entry.number) {
            return Err(bad(format!(
                "phone number `{}` is not E.164 (expected + and 2-15 digits, e.g. +12065550100)",
                entry.number
            )));
        }
        if !matches!(
            entry.product_type.as_str(),
            "SipMediaApplicationDialIn" | "VoiceConnector"
        ) {
            return Err(bad(format!(
                "phone number {}: product_type `{}` is not SipMediaApplicationDialIn or VoiceConnector",
                entry.number, entry.product_type
            )));
        }
        let digits = normalize_number(&entry.number).unwrap_or_default();
        if !snapshot.numbers.insert(digits) {
            return Err(bad(format!(
                "phone number {} is listed twice",
                entry.number
            )));
        }
    }
    for entry in &file.applications {
        check_name("application", &entry.name)?;
        let id = entry
            .id
            .clone()
            .unwrap_or_else(|| id_from_name("sma", &entry.name));
        if snapshot.applications.contains_key(&id) {
            return Err(bad(format!("application id `{id}` is used twice")));
        }
        let handler = build_handler(entry, handlers)
            .map_err(|e| bad(format!("application `{}`: {e}", entry.name)))?;
        snapshot.applications.insert(
            id.clone(),
            Arc::new(Application {
                id,
                name: entry.name.clone(),
                region: entry.region.clone().unwrap_or(file.node.region.clone()),
                endpoint: entry.endpoint.clone(),
                handler,
            }),
        );
    }
    for entry in &file.voice_connectors {
        check_name("voice connector", &entry.name)?;
        let id = entry
            .id
            .clone()
            .unwrap_or_else(|| id_from_name("vc", &entry.name));
        let mut allow = Vec::new();
        for cidr in &entry.termination.cidr_allow_list {
            let net = cidr.parse::<ipnet::IpNet>().map_err(|e| {
                bad(format!(
                    "voice connector `{}`: cidr_allow_list entry `{cidr}`: {e}",
                    entry.name
                ))
            })?;
            allow.push(net);
        }
        let host = entry.outbound_host_name.to_ascii_lowercase();
        if snapshot.voice_connectors.iter().any(|v| v.host == host) {
            return Err(bad(format!(
                "voice connector `{}`: outbound host name {host} is used twice",
                entry.name
            )));
        }
        snapshot.voice_connectors.push(Arc::new(VoiceConnector {
            id,
            name: entry.name.clone(),
            region: entry.region.clone().unwrap_or(file.node.region.clone()),
            host,
            require_encryption: entry.require_encryption,
            allow,
            calling_regions: entry
                .termination
                .calling_regions
                .iter()
                .map(|r| r.to_ascii_uppercase())
                .collect(),
            cps_limit: entry.termination.cps_limit,
            credentials: entry
                .termination
                .credentials
                .iter()
                .map(|c| (c.username.clone(), c.password.clone()))
                .collect(),
            disabled: entry.termination.disabled,
        }));
    }
    for entry in &file.sip_rules {
        let rule = build_rule(entry, &snapshot)?;
        snapshot.rules.push(Arc::new(rule));
    }
    Ok(snapshot)
}

fn build_handler(
    entry: &config::ApplicationEntry,
    handlers: &HandlerFactory<'_>,
) -> Result<HandlerEndpoint, String> {
    if entry.endpoint.starts_with("http://") || entry.endpoint.starts_with("https://") {
        let handler = WebhookHandler::new(
            handlers.webhooks.clone(),
            &entry.endpoint,
            entry.secret.as_deref().map(str::as_bytes),
            handlers.deadline,
        )
        .map_err(|e| e.to_string())?;
        return Ok(HandlerEndpoint::Webhook(handler));
    }
    let instance_mode = match entry.instance_mode.as_deref() {
        None | Some("fresh") => InstanceMode::FreshPerInvocation,
        Some("reuse-per-call") => InstanceMode::ReusePerCall,
        Some(other) => {
            return Err(format!(
                "instance_mode `{other}` is not `fresh` or `reuse-per-call`"
            ))
        }
    };
    let limits = WasmLimits {
        deadline: handlers.deadline,
        memory_bytes: entry.memory_mib.unwrap_or(64) * 1024 * 1024,
        instance_mode,
        ..WasmLimits::default()
    };
    let path = Path::new(&entry.endpoint);
    if !path.is_file() {
        return Err(format!(
            "component {} does not exist (build it, or give a webhook URL)",
            path.display()
        ));
    }
    handlers
        .engine
        .load_file(path, limits)
        .map(HandlerEndpoint::Wasm)
        .map_err(|e| e.to_string())
}

fn build_rule(entry: &config::SipRuleEntry, snapshot: &Snapshot) -> Result<SipRule, ConfigError> {
    check_name("SIP rule", &entry.name)?;
    let id = entry
        .id
        .clone()
        .unwrap_or_else(|| id_from_name("rule", &entry.name));
    let trigger = match entry.trigger_type.as_str() {
        "ToPhoneNumber" => TriggerType::ToPhoneNumber,
        "RequestUriHostname" => TriggerType::RequestUriHostname,
        other => {
            return Err(bad(format!(
                "SIP rule `{}`: trigger_type `{other}` is not ToPhoneNumber or RequestUriHostname",
                entry.name
            )))
        }
    };
    let trigger_value = match trigger {
        TriggerType::ToPhoneNumber => {
            if !sma_actions::is_e164(&entry.trigger_value) {
                return Err(bad(format!(
                    "SIP rule `{}`: trigger_value `{}` is not an E.164 number",
                    entry.name, entry.trigger_value
                )));
            }
            let digits = normalize_number(&entry.trigger_value).unwrap_or_default();
            if !snapshot.numbers.contains(&digits) {
                return Err(bad(format!(
                    "SIP rule `{}`: {} is not in phone_numbers",
                    entry.name, entry.trigger_value
                )));
            }
            digits
        }
        TriggerType::RequestUriHostname => entry.trigger_value.to_ascii_lowercase(),
    };
    if snapshot
        .rules
        .iter()
        .any(|r| r.trigger == trigger && r.trigger_value == trigger_value)
    {
        return Err(bad(format!(
            "SIP rule `{}`: another rule already triggers on {}",
            entry.name, entry.trigger_value
        )));
    }
    if snapshot.rules.iter().any(|r| r.id == id) {
        return Err(bad(format!("SIP rule id `{id}` is used twice")));
    }
    if entry.targets.is_empty() || entry.targets.len() > 25 {
        return Err(bad(format!(
            "SIP rule `{}`: needs 1-25 targets, has {}",
            entry.name,
            entry.targets.len()
        )));
    }
    let mut regions = BTreeSet::new();
    let mut targets = Vec::new();
    for t in &entry.targets {
        let app = snapshot
            .applications
            .get(&t.application)
            .or_else(|| {
                snapshot
                    .applications
                    .values()
                    .find(|a| a.name == t.application)
            })
            .ok_or_else(|| {
                bad(format!(
                    "SIP rule `{}`: target application `{}` is not defined",
                    entry.name, t.application
                ))
            })?;
        if t.priority == 0 {
            return Err(bad(format!(
                "SIP rule `{}`: priority of `{}` must be at least 1",
                entry.name, t.application
            )));
        }
        let region = t.region.clone().unwrap_or(app.region.clone());
        if region != app.region {
            return Err(bad(format!(
                "SIP rule `{}`: application `{}` is in {}, not {region}",
                entry.name, app.name, app.region
            )));
        }
        if !regions.insert(region.clone()) {
            return Err(bad(format!(
                "SIP rule `{}`: more than one target in region {region}",
                entry.name
            )));
        }
        targets.push(Target {
            name: app.endpoint.clone(),
            application_id: app.id.clone(),
            region,
            priority: t.priority,
            endpoint: app.handler.clone(),
        });
    }
    let chain = FailoverChain::new(targets, CoolDownPolicy::default());
    let mut ordered: Vec<_> = entry.targets.iter().collect();
    ordered.sort_by_key(|t| t.priority);
    Ok(SipRule {
        id,
        name: entry.name.clone(),
        trigger,
        trigger_value,
        disabled: entry.disabled,
        chain: Arc::new(chain),
        targets: ordered.iter().map(|t| t.application.clone()).collect(),
    })
}
