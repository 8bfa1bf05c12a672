//! The routing table: the store's resources in the form calls are routed by (phone numbers,
//! SIP media applications with their handlers, SIP rules with failover chains, voice
//! connectors with their termination settings).
//!
//! Routing reads an immutable [`Snapshot`]. A change to the store (the management API, or
//! `sma.toml` applied at start and on SIGHUP) builds a new snapshot and swaps it in, so new
//! calls see it at once while calls in progress keep the `Arc` they started with (their
//! application and failover chain).

use crate::routing::{normalize_number, TriggerType};
use sma_handler::{
    CoolDownPolicy, FailoverChain, HandlerEndpoint, InstanceMode, Target, WasmEngine, WasmLimits,
    WebhookClient, WebhookHandler,
};
use sma_store::records::{
    HandlerSettings, PhoneNumber, SipMediaApplication, SipRule as RuleRecord,
    VoiceConnector as ConnectorRecord, VoiceConnectorGroup as GroupRecord,
};
use sma_store::{Store, StoreError};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tracing::warn;

/// A SIP media application.
pub struct Application {
    pub id: String,
    pub region: String,
    /// The component path or webhook URL, for logs.
    pub endpoint: String,
    pub handler: HandlerEndpoint,
    /// Every event and response of its calls is logged (`sma::messages`).
    pub message_logs: bool,
    /// Meetings hosted elsewhere, joined by dialling (none: this runtime's meetings).
    pub meeting_dial_in: Option<Arc<crate::meeting_backend::MeetingDialIn>>,
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
    /// What the 407 offers, in order.
    pub digest_algorithms: Vec<sma_sip::auth::Algorithm>,
    /// Its ARN, as `CallAndBridge` endpoints name it.
    pub arn: String,
    /// Where calls to the PBX behind it go (its origination settings).
    pub origination: Vec<OriginationRoute>,
    pub origination_disabled: bool,
    /// Mutual TLS: who may present client certificates. `Err` when the CA file cannot be
    /// used any more: the connector then refuses every call (never open by mistake).
    pub client_trust: Option<Result<sma_net::tls::ClientTrust, String>>,
}

/// One origination route of a voice connector: the PBX it delivers calls to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginationRoute {
    pub host: String,
    pub port: u16,
    pub transport: sma_sip::Transport,
    pub priority: u32,
    pub weight: u32,
}

/// A voice connector group: its connectors in priority order.
pub struct ConnectorGroup {
    pub id: String,
    pub name: String,
    pub arn: String,
    /// Voice connector ids, lowest priority number first.
    pub connectors: Vec<String>,
}

/// Where a number of the inventory is associated (`Associate…PhoneNumbers…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumberTarget {
    VoiceConnector(String),
    VoiceConnectorGroup(String),
}

/// One consistent view of the routing resources.
#[derive(Default)]
pub struct Snapshot {
    pub numbers: BTreeSet<String>,
    pub applications: HashMap<String, Arc<Application>>,
    pub rules: Vec<Arc<SipRule>>,
    pub voice_connectors: Vec<Arc<VoiceConnector>>,
    pub groups: Vec<Arc<ConnectorGroup>>,
    /// Numbers of the inventory associated with a voice connector or group, by digits.
    pub number_targets: HashMap<String, NumberTarget>,
    /// Outbound calling names (CNAM) of numbers, by digits, and the account's default
    /// (`UpdatePhoneNumber` / `UpdatePhoneNumberSettings`).
    pub calling_names: HashMap<String, String>,
    pub default_calling_name: Option<String>,
}

impl Snapshot {
    /// The name shown with calls from `number` (its own, else the account's default).
    pub fn calling_name(&self, number: &str) -> Option<String> {
        normalize_number(number)
            .and_then(|d| self.calling_names.get(&d).cloned())
            .or_else(|| self.default_calling_name.clone())
            .filter(|n| !n.trim().is_empty())
    }
}

/// The current snapshot, and what the node has seen of each voice connector's PBX.
#[derive(Default)]
pub struct RoutingTable {
    current: RwLock<Arc<Snapshot>>,
    /// Voice connector id → (epoch ms, source address) of the last request it admitted.
    termination_seen: Mutex<HashMap<String, (u64, String)>>,
}

impl RoutingTable {
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

    /// A request from `source` passed voice connector `id`'s termination checks.
    pub fn termination_seen(&self, id: &str, source: String) {
        let mut seen = self
            .termination_seen
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        seen.insert(id.to_owned(), (sma_store::time::now_ms(), source));
    }

    pub fn termination_health(&self, id: &str) -> Option<(u64, String)> {
        self.termination_seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }
}

/// Builds handlers for applications, reusing the one built for the same endpoint and
/// settings so a rebuilt snapshot does not recompile components.
pub struct HandlerFactory {
    pub engine: WasmEngine,
    pub webhooks: WebhookClient,
    pub deadline: Duration,
    built: Mutex<HashMap<(String, HandlerSettings), HandlerEndpoint>>,
}

impl HandlerFactory {
    pub fn new(engine: WasmEngine, webhooks: WebhookClient, deadline: Duration) -> HandlerFactory {
        HandlerFactory {
            engine,
            webhooks,
            deadline,
            built: Mutex::new(HashMap::new()),
        }
    }

    /// The handler for `endpoint` (a webhook URL or a component path).
    pub fn handler(
        &self,
        endpoint: &str,
        settings: &HandlerSettings,
    ) -> Result<HandlerEndpoint, String> {
        let key = (endpoint.to_owned(), settings.clone());
        if let Some(h) = self
            .built
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(h.clone());
        }
        let handler = self.build(endpoint, settings)?;
        self.built
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, handler.clone());
        Ok(handler)
    }

    /// Forgets built handlers except those for `keys` (endpoint, settings).
    fn keep_only(&self, keys: HashSet<(String, HandlerSettings)>) {
        self.built
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|key, _| keys.contains(key));
    }

    fn build(&self, endpoint: &str, settings: &HandlerSettings) -> Result<HandlerEndpoint, String> {
        if endpoint.starts_with("http://") || endpoint.starts_with("https://") {
            let handler = WebhookHandler::new(
                self.webhooks.clone(),
                endpoint,
                settings.secret.as_deref().map(str::as_bytes),
                self.deadline,
            )
            .map_err(|e| e.to_string())?;
            return Ok(HandlerEndpoint::Webhook(handler));
        }
        if endpoint.starts_with("arn:") {
            return Err(
                "a Lambda function ARN cannot be hosted here: give a component path (.wasm) or a webhook URL (http:// or https://)"
                    .into(),
            );
        }
        let instance_mode = match settings.instance_mode.as_deref() {
            None | Some("fresh") => InstanceMode::FreshPerInvocation,
            Some("reuse-per-call") => InstanceMode::ReusePerCall,
            Some(other) => {
                return Err(format!(
                    "instance_mode `{other}` is not `fresh` or `reuse-per-call`"
                ))
            }
        };
        let limits = WasmLimits {
            deadline: self.deadline,
            memory_bytes: settings.memory_mib.unwrap_or(64) * 1024 * 1024,
            instance_mode,
            ..WasmLimits::default()
        };
        let path = Path::new(endpoint);
        if !path.is_file() {
            return Err(format!(
                "component {} does not exist (build it, or give a webhook URL)",
                path.display()
            ));
        }
        self.engine
            .load_file(path, limits)
            .map(HandlerEndpoint::Wasm)
            .map_err(|e| e.to_string())
    }
}

/// An application whose handler could not be built (it does not route).
pub struct Unhostable {
    pub id: String,
    pub name: String,
    pub declared: bool,
    pub why: String,
}

/// Builds a snapshot from the store. Applications whose handler cannot be built are left
/// out (and returned, so start-up can refuse a declared one); rules keep their other targets.
pub fn build(
    store: &dyn Store,
    factory: &HandlerFactory,
) -> Result<(Snapshot, Vec<Unhostable>), StoreError> {
    let mut tx = store.begin()?;
    let numbers = tx.list::<PhoneNumber>()?;
    let apps = tx.list::<SipMediaApplication>()?;
    let rules = tx.list::<RuleRecord>()?;
    let connectors = tx.list::<ConnectorRecord>()?;
    let groups = tx.list::<GroupRecord>()?;
    let settings = tx.get::<sma_store::records::PhoneNumberSettings>(
        sma_store::records::PhoneNumberSettings::ID,
    )?;
    drop(tx);
    let mut snapshot = Snapshot::default();
    let mut unhostable = Vec::new();
    for n in numbers.iter().filter(|n| n.status != "DeleteInProgress") {
        if let Some(digits) = normalize_number(&n.e164_phone_number) {
            let target = n.associations.iter().find_map(|a| match a.name.as_str() {
                "VoiceConnectorId" => Some(NumberTarget::VoiceConnector(a.value.clone())),
                "VoiceConnectorGroupId" => Some(NumberTarget::VoiceConnectorGroup(a.value.clone())),
                _ => None,
            });
            if let Some(target) = target {
                snapshot.number_targets.insert(digits.clone(), target);
            }
            if let Some(name) = &n.calling_name {
                snapshot.calling_names.insert(digits.clone(), name.clone());
            }
            snapshot.numbers.insert(digits);
        }
    }
    snapshot.default_calling_name = settings.and_then(|s| s.calling_name);
    for g in groups {
        let mut items = g.voice_connector_items.clone();
        items.sort_by_key(|i| i.priority);
        snapshot.groups.push(Arc::new(ConnectorGroup {
            id: g.voice_connector_group_id,
            name: g.name,
            arn: g.voice_connector_group_arn,
            connectors: items.into_iter().map(|i| i.voice_connector_id).collect(),
        }));
    }
    // Handlers of applications that are gone are dropped from the factory's cache.
    factory.keep_only(
        apps.iter()
            .map(|a| (a.endpoint().to_owned(), a.handler.clone()))
            .collect(),
    );
    for app in apps {
        match factory.handler(app.endpoint(), &app.handler) {
            Ok(handler) => {
                let meeting_dial_in = app.meeting_dial_in.as_deref().and_then(|text| {
                    crate::meeting_backend::MeetingDialIn::parse(text)
                        .inspect_err(|why| {
                            warn!(application = %app.sip_media_application_id, %why, "meeting_dial_in ignored")
                        })
                        .ok()
                        .map(Arc::new)
                });
                snapshot.applications.insert(
                    app.sip_media_application_id.clone(),
                    Arc::new(Application {
                        meeting_dial_in,
                        message_logs: app.logging.enable_sip_media_application_message_logs,
                        endpoint: app.endpoint().to_owned(),
                        id: app.sip_media_application_id,
                        region: app.aws_region,
                        handler,
                    }),
                );
            }
            Err(why) => unhostable.push(Unhostable {
                id: app.sip_media_application_id,
                name: app.name,
                declared: app.declared,
                why,
            }),
        }
    }
    for vc in connectors {
        snapshot.voice_connectors.push(Arc::new(connector(vc)));
    }
    for rule in rules {
        let trigger = match rule.trigger_type.as_str() {
            "ToPhoneNumber" => TriggerType::ToPhoneNumber,
            _ => TriggerType::RequestUriHostname,
        };
        let trigger_value = match trigger {
            TriggerType::ToPhoneNumber => normalize_number(&rule.trigger_value).unwrap_or_default(),
            TriggerType::RequestUriHostname => rule.trigger_value.to_ascii_lowercase(),
        };
        let mut targets = Vec::new();
        for t in &rule.target_applications {
            match snapshot.applications.get(&t.sip_media_application_id) {
                Some(app) => targets.push(Target {
                    name: app.endpoint.clone(),
                    application_id: app.id.clone(),
                    region: t.aws_region.clone(),
                    priority: t.priority,
                    endpoint: app.handler.clone(),
                }),
                None if !rule.disabled => warn!(
                    rule = %rule.sip_rule_id,
                    application = %t.sip_media_application_id,
                    "SIP rule target cannot be hosted; it is skipped"
                ),
                None => {}
            }
        }
        if targets.is_empty() && !rule.disabled {
            warn!(rule = %rule.sip_rule_id, "SIP rule has no target that can be hosted; it does not route");
            continue;
        }
        let mut ordered: Vec<(u32, String)> = targets
            .iter()
            .map(|t| (t.priority, t.application_id.clone()))
            .collect();
        ordered.sort();
        snapshot.rules.push(Arc::new(SipRule {
            id: rule.sip_rule_id,
            name: rule.name,
            trigger,
            trigger_value,
            disabled: rule.disabled,
            chain: Arc::new(FailoverChain::new(targets, CoolDownPolicy::default())),
            targets: ordered.into_iter().map(|(_, id)| id).collect(),
        }));
    }
    Ok((snapshot, unhostable))
}

fn connector(vc: ConnectorRecord) -> VoiceConnector {
    let termination = vc.termination.unwrap_or_default();
    let origination = vc.origination.clone().unwrap_or_default();
    let routes = origination
        .routes
        .iter()
        .filter_map(|r| {
            let transport = match sma_sip::Transport::from_token(&r.protocol) {
                Some(t) => t,
                None => {
                    warn!(connector = %vc.voice_connector_id, protocol = %r.protocol, "origination route protocol not understood; route ignored");
                    return None;
                }
            };
            Some(OriginationRoute {
                host: r.host.clone(),
                port: r.port,
                transport,
                priority: r.priority,
                weight: r.weight,
            })
        })
        .collect();
    let mut allow = Vec::new();
    for cidr in &termination.cidr_allowed_list {
        match cidr.parse::<ipnet::IpNet>() {
            Ok(net) => allow.push(net),
            Err(e) => {
                warn!(connector = %vc.voice_connector_id, %cidr, error = %e, "CIDR not understood; ignored")
            }
        }
    }
    let mut digest_algorithms: Vec<sma_sip::auth::Algorithm> = vc
        .digest_algorithms
        .iter()
        .filter_map(|a| sma_sip::auth::Algorithm::parse(a))
        .collect();
    if digest_algorithms.is_empty() {
        digest_algorithms = vec![
            sma_sip::auth::Algorithm::Sha256,
            sma_sip::auth::Algorithm::Md5,
        ];
    }
    let client_trust = vc.tls_client_ca_file.as_ref().map(|path| {
        sma_net::tls::ClientTrust::from_pem_file(std::path::Path::new(path)).map_err(|e| {
            warn!(connector = %vc.voice_connector_id, error = %e, "client CA file unusable; the connector refuses calls");
            e.to_string()
        })
    });
    VoiceConnector {
        client_trust,
        digest_algorithms,
        arn: vc.voice_connector_arn.clone(),
        origination: routes,
        origination_disabled: origination.disabled,
        id: vc.voice_connector_id,
        name: vc.name,
        region: vc.aws_region,
        host: vc.outbound_host_name.to_ascii_lowercase(),
        require_encryption: vc.require_encryption,
        allow,
        calling_regions: termination
            .calling_regions
            .iter()
            .map(|r| r.to_ascii_uppercase())
            .collect(),
        cps_limit: termination.cps_limit.unwrap_or(0),
        credentials: vc
            .credentials
            .into_iter()
            .map(|c| (c.username, c.password))
            .collect(),
        disabled: termination.disabled,
    }
}
