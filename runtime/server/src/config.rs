//! `sma.toml`: the node's configuration — SIP listeners and TLS, media addresses and codecs,
//! where buckets live, the call engine's limits, and the resources calls are routed by (phone
//! numbers, SIP media applications, SIP rules, voice connectors). Unknown keys are errors, so a
//! typo never silently falls back to a default. The resources are applied to the store by
//! [`crate::declared`], which checks how they refer to each other.

use serde::Deserialize;
use sma_engine::{EngineConfig, NoInputError};
use sma_sip::sdp::Codec;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error(transparent)]
    Listener(#[from] sma_net::transport::ListenSpecError),
    #[error("bad codec `{0}` (expected PCMU, PCMA, G722 or opus)")]
    Codec(String),
    #[error("unknown SRTP suite `{0}` in [media] srtp_suites (expected AEAD_AES_256_GCM, AEAD_AES_128_GCM, AES_256_CM_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_80, AES_256_CM_HMAC_SHA1_32 or AES_CM_128_HMAC_SHA1_32)")]
    SrtpSuite(String),
    #[error("media port range {0}-{1} is empty or has fewer than 2 ports")]
    PortRange(u16, u16),
    #[error("{0}")]
    Resource(String),
}

pub use sma_net::transport::ListenSpec;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct File {
    #[serde(default)]
    pub sip: SipSection,
    #[serde(default)]
    pub media: MediaSection,
    #[serde(default)]
    pub node: NodeSection,
    #[serde(default)]
    pub storage: StorageSection,
    #[serde(default)]
    pub calls: CallsSection,
    #[serde(default)]
    pub tts: TtsSection,
    #[serde(default)]
    pub api: ApiSection,
    #[serde(default)]
    pub store: StoreSection,
    #[serde(default)]
    pub phone_numbers: Vec<PhoneNumberEntry>,
    #[serde(default)]
    pub applications: Vec<ApplicationEntry>,
    #[serde(default)]
    pub sip_rules: Vec<SipRuleEntry>,
    #[serde(default)]
    pub voice_connectors: Vec<VoiceConnectorEntry>,
    /// The operator's SIP trunks: where calls to numbers nothing else takes go.
    #[serde(default)]
    pub carriers: Vec<CarrierEntry>,
}

/// An operator's SIP trunk (`[[carriers]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CarrierEntry {
    pub name: String,
    /// The carrier's proxy: `sip:host[:port][;transport=tcp]` or `sips:host[:port]`.
    pub proxy: String,
    /// `udp`, `tcp` or `tls`; default from the URI (`sips:` is TLS, else UDP).
    pub transport: Option<String>,
    /// Digest credentials for the carrier's challenges (and its registration).
    pub username: Option<String>,
    pub password: Option<String>,
    /// `+` prefixes of the numbers it takes (`["+1", "+44"]`); empty: every number.
    #[serde(default)]
    pub prefixes: Vec<String>,
    /// Lower first among carriers that take a number.
    #[serde(default)]
    pub priority: u32,
    /// Register with the proxy: the address of record (e.g. `sip:+12065550100@carrier.example`)
    /// and the registration's lifetime (refreshed at half of it).
    pub register: Option<String>,
    #[serde(default = "default_register_expires")]
    pub register_expires_secs: u32,
}

fn default_register_expires() -> u32 {
    3_600
}

impl CarrierEntry {
    /// The carrier as routing sees it, or why the entry is wrong.
    pub fn carrier(&self) -> Result<crate::outbound::Carrier, ConfigError> {
        let bad = |why: String| ConfigError::Resource(format!("carrier `{}`: {why}", self.name));
        let uri = sma_sip::message::Uri::parse(&self.proxy)
            .map_err(|e| bad(format!("proxy `{}` is not a SIP URI: {e}", self.proxy)))?;
        let transport = match &self.transport {
            Some(t) => sma_sip::Transport::from_token(t)
                .ok_or_else(|| bad(format!("transport `{t}` is not udp, tcp or tls")))?,
            None => match (uri.scheme, uri.transport_param()) {
                (sma_sip::message::Scheme::Sips, _) => sma_sip::Transport::Tls,
                (_, Some(t)) => sma_sip::Transport::from_token(t).ok_or_else(|| {
                    bad(format!("transport parameter `{t}` is not udp, tcp or tls"))
                })?,
                _ => sma_sip::Transport::Udp,
            },
        };
        if self.username.is_some() != self.password.is_some() {
            return Err(bad("username and password go together".into()));
        }
        if self.register.is_some() && self.username.is_none() {
            return Err(bad(
                "register needs the username and password it registers with".into(),
            ));
        }
        for p in &self.prefixes {
            let digits = p.strip_prefix('+').unwrap_or(p);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(format!("prefix `{p}` is not + and digits")));
            }
        }
        let default_port = if transport == sma_sip::Transport::Tls {
            5061
        } else {
            5060
        };
        Ok(crate::outbound::Carrier {
            name: self.name.clone(),
            host: uri.host.to_string(),
            port: uri.port.unwrap_or(default_port),
            transport,
            username: self.username.clone(),
            password: self.password.clone(),
            prefixes: self.prefixes.clone(),
            priority: self.priority,
            register: self
                .register
                .as_ref()
                .map(|aor| crate::outbound::Registration {
                    aor: aor.clone(),
                    expires_secs: self.register_expires_secs.max(60),
                }),
        })
    }
}

/// The management API (`chime-sdk-voice` over HTTP, AWS SigV4).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    /// `address:port`, or `off`.
    #[serde(default = "default_api_listen")]
    pub listen: String,
    /// Access keys clients sign with. Default: the documented development pair.
    #[serde(default = "default_access_keys")]
    pub access_keys: Vec<AccessKey>,
    /// The regions `ListAvailableVoiceConnectorRegions` reports (default: the node's).
    #[serde(default)]
    pub regions: Vec<String>,
    #[serde(default = "default_api_body")]
    pub max_body_bytes: usize,
    /// Voice connectors created through the API get `<id>.<this>` as their host name.
    #[serde(default = "default_vc_domain")]
    pub voice_connector_domain: String,
    /// Phone numbers one voice connector (or group) may have.
    #[serde(default = "default_numbers_per_vc")]
    pub max_numbers_per_voice_connector: usize,
    /// Attendees one meeting may have (`MeetingFeatures.Attendee.MaxCount` may lower it).
    #[serde(default = "default_attendees_per_meeting")]
    pub max_attendees_per_meeting: usize,
    /// A meeting nobody is in ends after this many seconds (counted from its creation if
    /// nobody ever joined); 0: meetings end only when deleted.
    #[serde(default = "default_meeting_idle_end")]
    pub meeting_idle_end_secs: u64,
    /// Numbers clients may find with `SearchAvailablePhoneNumbers` and then order.
    #[serde(default)]
    pub number_pool: Vec<NumberPoolEntry>,
}

/// `[[api.number_pool]]`: numbers of one country and type the operator can provide.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumberPoolEntry {
    /// ISO 3166-1 alpha-2 (`US`).
    pub country: String,
    /// `Local` (default) or `TollFree`.
    #[serde(rename = "type", default = "default_pool_type")]
    pub number_type: String,
    /// E.164 numbers.
    #[serde(default)]
    pub numbers: Vec<String>,
    /// Inclusive ranges `["+12065550100", "+12065550199"]` of equal length.
    #[serde(default)]
    pub ranges: Vec<[String; 2]>,
    pub state: Option<String>,
    pub city: Option<String>,
    /// Products the numbers can be ordered for (default both).
    #[serde(default = "default_pool_products")]
    pub product_types: Vec<String>,
}

fn default_pool_type() -> String {
    "Local".into()
}
fn default_pool_products() -> Vec<String> {
    vec!["SipMediaApplicationDialIn".into(), "VoiceConnector".into()]
}

/// The most numbers one `number_pool` range may hold.
const MAX_POOL_RANGE: u64 = 100_000;

impl ApiSection {
    /// The number pool with every range expanded, each entry checked.
    pub fn number_pool(&self) -> Result<Vec<sma_api::voice::PoolEntry>, ConfigError> {
        self.number_pool
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let bad = |why: String| ConfigError::Resource(format!("api.number_pool[{i}]: {why}"));
                if e.country.len() != 2 || !e.country.bytes().all(|b| b.is_ascii_uppercase()) {
                    return Err(bad(format!(
                        "country `{}` is not an ISO 3166-1 alpha-2 code (two capital letters)",
                        e.country
                    )));
                }
                if !matches!(e.number_type.as_str(), "Local" | "TollFree") {
                    return Err(bad(format!("type `{}` is not Local or TollFree", e.number_type)));
                }
                for p in &e.product_types {
                    if !matches!(p.as_str(), "SipMediaApplicationDialIn" | "VoiceConnector") {
                        return Err(bad(format!(
                            "product type `{p}` is not SipMediaApplicationDialIn or VoiceConnector"
                        )));
                    }
                }
                let e164 = |n: &str| {
                    sma_actions::is_e164(n)
                        .then(|| format!("+{}", n.trim_start_matches('+')))
                        .ok_or_else(|| bad(format!("`{n}` is not an E.164 number")))
                };
                let mut numbers = e.numbers.iter().map(|n| e164(n)).collect::<Result<Vec<_>, _>>()?;
                for [from, to] in &e.ranges {
                    let (a, b) = (e164(from)?, e164(to)?);
                    let (x, y) = (a[1..].parse::<u64>(), b[1..].parse::<u64>());
                    let (Ok(x), Ok(y)) = (x, y) else {
                        return Err(bad(format!("range {from}..{to} is not numeric")));
                    };
                    if a.len() != b.len() || y < x || y - x >= MAX_POOL_RANGE {
                        return Err(bad(format!(
                            "range {from}..{to} must run upwards between numbers of one length, at most {MAX_POOL_RANGE} numbers"
                        )));
                    }
                    numbers.extend((x..=y).map(|n| format!("+{n}")));
                }
                numbers.sort();
                numbers.dedup();
                Ok(sma_api::voice::PoolEntry {
                    country: e.country.clone(),
                    number_type: e.number_type.clone(),
                    numbers,
                    state: e.state.clone(),
                    city: e.city.clone(),
                    product_types: e.product_types.clone(),
                })
            })
            .collect()
    }
}

fn default_vc_domain() -> String {
    "voiceconnector.sma.local".into()
}
fn default_numbers_per_vc() -> usize {
    10_000
}

fn default_attendees_per_meeting() -> usize {
    250
}

fn default_meeting_idle_end() -> u64 {
    300
}

/// Where the store keeps the resources (SQLite).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// The database file (created when absent), or `:memory:` for a store that ends with
    /// the process.
    #[serde(default = "default_store_path")]
    pub path: PathBuf,
}

fn default_store_path() -> PathBuf {
    PathBuf::from("sma-data/sma.db")
}

impl Default for StoreSection {
    fn default() -> StoreSection {
        StoreSection {
            path: default_store_path(),
        }
    }
}

/// An access key pair for the API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKey {
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// The development key pair the embedded configuration ships (README: never in production).
pub const DEV_ACCESS_KEY_ID: &str = "AKIASMADEVELOPMENT01";
pub const DEV_SECRET_ACCESS_KEY: &str = "sma/dev/secret/key/do/not/use/in/production";

fn default_api_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_access_keys() -> Vec<AccessKey> {
    vec![AccessKey {
        access_key_id: DEV_ACCESS_KEY_ID.into(),
        secret_access_key: DEV_SECRET_ACCESS_KEY.into(),
    }]
}
fn default_api_body() -> usize {
    1 << 20
}

impl Default for ApiSection {
    fn default() -> ApiSection {
        ApiSection {
            listen: default_api_listen(),
            access_keys: default_access_keys(),
            regions: Vec::new(),
            max_body_bytes: default_api_body(),
            voice_connector_domain: default_vc_domain(),
            max_numbers_per_voice_connector: default_numbers_per_vc(),
            max_attendees_per_meeting: default_attendees_per_meeting(),
            meeting_idle_end_secs: default_meeting_idle_end(),
            number_pool: Vec::new(),
        }
    }
}

/// Who this node is.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// The region name this node serves (`CallDetails.AwsRegion` of its applications'
    /// events when an application does not name one).
    #[serde(default = "default_region")]
    pub region: String,
    /// The account (tenant) id events carry in `CallDetails.AwsAccountId`.
    #[serde(default = "default_account")]
    pub account_id: String,
    /// Call detail records are appended here as JSON lines (logged either way).
    #[serde(default = "default_cdr")]
    pub cdr_path: Option<PathBuf>,
}

impl Default for NodeSection {
    fn default() -> NodeSection {
        NodeSection {
            region: default_region(),
            account_id: default_account(),
            cdr_path: default_cdr(),
        }
    }
}

fn default_region() -> String {
    "us-east-1".into()
}

fn default_cdr() -> Option<PathBuf> {
    Some(PathBuf::from("sma-data/cdr.jsonl"))
}

fn default_account() -> String {
    "000000000000".into()
}

/// The contract's S3 buckets, as directories: bucket `b`, key `k` is `<root>/b/k` unless
/// `buckets.b` names another directory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    #[serde(default = "default_storage_root")]
    pub root: PathBuf,
    #[serde(default)]
    pub buckets: std::collections::BTreeMap<String, PathBuf>,
}

impl Default for StorageSection {
    fn default() -> StorageSection {
        StorageSection {
            root: default_storage_root(),
            buckets: Default::default(),
        }
    }
}

fn default_storage_root() -> PathBuf {
    PathBuf::from("sma-data/buckets")
}

/// The call engine's limits and policies (contract §1.2, §1.8, §6, Appendix B).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallsSection {
    /// Calls in progress beyond which new INVITEs get 503 (0: no ceiling).
    #[serde(default = "default_max_calls")]
    pub max_concurrent_calls: usize,
    /// New calls per second beyond which INVITEs get 503 (0: no ceiling).
    #[serde(default = "default_max_cps")]
    pub max_calls_per_second: u32,
    /// Retry-After (seconds) on those 503s.
    #[serde(default = "default_retry_after")]
    pub retry_after_secs: u32,
    /// Handler deadline per attempt, milliseconds (contract: 20 s).
    #[serde(default = "default_deadline_ms")]
    pub handler_deadline_ms: u64,
    /// Retries of a failed invocation once a call is pinned to its application (contract: 1).
    #[serde(default = "default_retries")]
    pub handler_retries: u32,
    /// Wait before a retry, milliseconds (contract: 5 s).
    #[serde(default = "default_retry_delay_ms")]
    pub handler_retry_delay_ms: u64,
    /// Invocations per call (contract: 1,000); beyond it every leg is hung up.
    #[serde(default = "default_max_invocations")]
    pub max_invocations: u64,
    /// An inbound call left ringing (no action answered it) is released with 480 after this.
    #[serde(default = "default_unanswered_secs")]
    pub unanswered_timeout_secs: u64,
    /// Invalid responses in a row after which the call is hung up (Appendix B.5).
    #[serde(default = "default_invalid_in_a_row")]
    pub max_consecutive_invalid_responses: u32,
    /// `legacy` for the 10-pair / 1,024-character transaction-attribute profile.
    #[serde(default)]
    pub attribute_limits: AttributeProfile,
    /// A leg with no RTP for this long is hung up (0: never).
    #[serde(default = "default_inactivity")]
    pub media_inactivity_secs: u64,
    /// Largest RecordAudio, seconds, when the action gives no DurationInSeconds.
    #[serde(default = "default_record_max")]
    pub max_recording_secs: u64,
    /// Actions whose success is reported at once even with actions queued behind them
    /// (contract Appendix B.1); the contract's recommended set when absent.
    pub reporting_actions: Option<Vec<String>>,
    /// The `ErrorType` of a digit collection that got no digits at all:
    /// `InvalidDigitsReceived` (default, what handlers written for the hosted service branch
    /// on) or `InputTimeLimitExceeded`.
    #[serde(default)]
    pub no_input_error: NoInputError,
    /// An outbound route that gives no response at all (not even 100 Trying) within this
    /// many milliseconds is abandoned for the next one (a PBX that is down, a wrong port).
    #[serde(default = "default_route_response_ms")]
    pub route_response_timeout_ms: u64,
    /// `CreateSipMediaApplicationCall` requests per second on this node (the hosted
    /// service's default quota is 1; a request beyond it gets `ThrottledClientException`).
    /// 0 turns the limit off.
    #[serde(default = "default_outbound_call_rate")]
    pub outbound_calls_per_second: u32,
}

impl CallsSection {
    /// The execution model's policies, for `sma serve` and `sma simulate` alike.
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            limits: match self.attribute_limits {
                AttributeProfile::Standard => sma_actions::Limits::default(),
                AttributeProfile::Legacy => sma_actions::Limits::legacy(),
            },
            max_invocations: self.max_invocations,
            max_consecutive_invalid: self.max_consecutive_invalid_responses.max(1),
            unanswered_timeout: Duration::from_secs(self.unanswered_timeout_secs),
            retries: self.handler_retries,
            retry_delay: Duration::from_millis(self.handler_retry_delay_ms),
            reporting: self.reporting_actions.clone(),
            no_input_error: self.no_input_error,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AttributeProfile {
    #[default]
    Standard,
    Legacy,
}

impl Default for CallsSection {
    fn default() -> CallsSection {
        CallsSection {
            max_concurrent_calls: default_max_calls(),
            max_calls_per_second: default_max_cps(),
            retry_after_secs: default_retry_after(),
            handler_deadline_ms: default_deadline_ms(),
            handler_retries: default_retries(),
            handler_retry_delay_ms: default_retry_delay_ms(),
            max_invocations: default_max_invocations(),
            unanswered_timeout_secs: default_unanswered_secs(),
            max_consecutive_invalid_responses: default_invalid_in_a_row(),
            attribute_limits: AttributeProfile::default(),
            media_inactivity_secs: default_inactivity(),
            max_recording_secs: default_record_max(),
            reporting_actions: None,
            no_input_error: NoInputError::default(),
            route_response_timeout_ms: default_route_response_ms(),
            outbound_calls_per_second: default_outbound_call_rate(),
        }
    }
}

fn default_route_response_ms() -> u64 {
    3_000
}
fn default_outbound_call_rate() -> u32 {
    1
}

fn default_max_calls() -> usize {
    4000
}
fn default_max_cps() -> u32 {
    2000
}
fn default_retry_after() -> u32 {
    1
}
fn default_deadline_ms() -> u64 {
    20_000
}
fn default_retries() -> u32 {
    1
}
fn default_retry_delay_ms() -> u64 {
    5_000
}
fn default_max_invocations() -> u64 {
    1_000
}
fn default_unanswered_secs() -> u64 {
    30
}
fn default_invalid_in_a_row() -> u32 {
    2
}
fn default_inactivity() -> u64 {
    60
}
fn default_record_max() -> u64 {
    3_600
}

/// Text-to-speech: eSpeak NG (default) or an OpenAI-compatible server.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TtsSection {
    /// `http://host:port` of an OpenAI-compatible `/v1/audio/speech` server; eSpeak NG without.
    pub http_url: Option<String>,
    pub http_model: Option<String>,
    pub http_api_key: Option<String>,
}

/// A number in the inventory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhoneNumberEntry {
    /// E.164, e.g. `+12065550100`.
    pub number: String,
    /// `SipMediaApplicationDialIn` or `VoiceConnector`.
    #[serde(default = "default_product")]
    pub product_type: String,
}

fn default_product() -> String {
    "SipMediaApplicationDialIn".into()
}

/// A SIP media application.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplicationEntry {
    /// Referred to by rules; goes into `CallDetails.SipMediaApplicationId`. Generated from the
    /// name when absent.
    pub id: Option<String>,
    pub name: String,
    /// Defaults to the node's region.
    pub region: Option<String>,
    /// A component (`*.wasm`, relative to the configuration file) or a webhook URL.
    pub endpoint: String,
    /// Webhook signing secret.
    pub secret: Option<String>,
    /// Component memory cap, MiB (default 64).
    pub memory_mib: Option<usize>,
    /// `fresh` (default) or `reuse-per-call`.
    pub instance_mode: Option<String>,
    /// Join meetings hosted elsewhere: `JoinChimeMeeting` dials this SIP URI with the join
    /// token (e.g. `sip:+17035550122@vc.example;transport=tls`) instead of joining a meeting of
    /// this runtime.
    pub meeting_dial_in: Option<String>,
}

/// A SIP rule (contract §5.2).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipRuleEntry {
    /// Goes into `CallDetails.SipRuleId`; generated from the name when absent.
    pub id: Option<String>,
    pub name: String,
    /// `ToPhoneNumber` or `RequestUriHostname`.
    pub trigger_type: String,
    pub trigger_value: String,
    #[serde(default)]
    pub disabled: bool,
    pub targets: Vec<RuleTargetEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleTargetEntry {
    /// An application id (or name).
    pub application: String,
    pub priority: u32,
    /// Defaults to the application's region.
    pub region: Option<String>,
}

/// A voice connector: the entry point for a customer's PBX (termination settings).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoiceConnectorEntry {
    pub id: Option<String>,
    pub name: String,
    pub region: Option<String>,
    /// The Request-URI host the PBX sends to (what `RequestUriHostname` rules match).
    pub outbound_host_name: String,
    /// Only TLS is accepted when set.
    #[serde(default)]
    pub require_encryption: bool,
    #[serde(default)]
    pub termination: TerminationEntry,
    /// Where calls to the PBX behind it go; when absent, what the API set is kept.
    pub origination: Option<OriginationEntry>,
}

/// A voice connector's origination settings (`PutVoiceConnectorOrigination`'s shape).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct OriginationEntry {
    #[serde(default)]
    pub routes: Vec<OriginationRouteEntry>,
    #[serde(default)]
    pub disabled: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OriginationRouteEntry {
    pub host: String,
    #[serde(default = "default_sip_port")]
    pub port: u16,
    /// `UDP`, `TCP` or `TLS`.
    #[serde(default = "default_route_protocol")]
    pub protocol: String,
    /// Lower first; 1-99.
    #[serde(default = "default_route_order")]
    pub priority: u32,
    /// Among routes of one priority, the share of calls; 1-99.
    #[serde(default = "default_route_order")]
    pub weight: u32,
}

fn default_sip_port() -> u16 {
    5060
}
fn default_route_protocol() -> String {
    "UDP".into()
}
fn default_route_order() -> u32 {
    1
}

/// Who may send calls through a voice connector.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TerminationEntry {
    /// Source networks allowed (403 otherwise); empty allows none.
    #[serde(default)]
    pub cidr_allow_list: Vec<String>,
    /// ISO country codes callers may dial (empty: any).
    #[serde(default)]
    pub calling_regions: Vec<String>,
    /// New calls per second (0: no limit); 503 with Retry-After beyond it.
    #[serde(default)]
    pub cps_limit: u32,
    /// Digest credentials; when present, calls are challenged (407).
    #[serde(default)]
    pub credentials: Vec<CredentialEntry>,
    /// The digest algorithms the 407 offers, in this order (default `["SHA-256", "MD5"]`,
    /// RFC 8760's order). Clients that answer the first challenge and only know MD5 (older
    /// PBXs and tools) need `MD5` first; MD5 alone is the weakest choice.
    #[serde(default)]
    pub digest_algorithms: Vec<String>,
    /// Mutual TLS: the CA certificates (PEM) a PBX's client certificate must chain to. When
    /// set, calls through the connector must come over TLS with such a certificate (403
    /// otherwise).
    #[serde(default)]
    pub tls_client_ca_file: Option<std::path::PathBuf>,
    #[serde(default)]
    pub disabled: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialEntry {
    pub username: String,
    pub password: String,
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
    /// PEM certificates trusted for outbound TLS (origination routes and carriers) besides
    /// the system's trust anchors: a private CA, or a peer's self-signed certificate.
    pub outbound_tls_ca_file: Option<PathBuf>,
    /// The `Server` / `User-Agent` header (default `sma/<version>`); `""` sends none.
    pub server_header: Option<String>,
    /// RFC 3261's T1, the round-trip estimate every retransmission and transaction timeout
    /// derives from (500 ms; 64*T1 is how long an unacknowledged 2xx is retransmitted).
    #[serde(default = "default_t1")]
    pub t1_ms: u64,
    /// Throttling of failed digest authentication on voice connectors.
    #[serde(default)]
    pub auth_guard: AuthGuardSection,
}

/// `[sip.auth_guard]`: failed authentication per source and per user name.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthGuardSection {
    /// Failures before back-off starts.
    #[serde(default = "default_free_failures")]
    pub free_failures: u32,
    /// First back-off (doubling with each further failure), milliseconds.
    #[serde(default = "default_backoff_ms")]
    pub backoff_ms: u64,
    #[serde(default = "default_max_backoff_secs")]
    pub max_backoff_secs: u64,
    /// Failures after which the source or user name is blocked.
    #[serde(default = "default_block_after")]
    pub block_after: u32,
    #[serde(default = "default_block_secs")]
    pub block_secs: u64,
    /// `reject` (403) or `drop` (no answer at all, for a blocked source).
    #[serde(default)]
    pub blocked: crate::sip::auth_guard::BlockedAction,
}

fn default_free_failures() -> u32 {
    3
}
fn default_backoff_ms() -> u64 {
    1_000
}
fn default_max_backoff_secs() -> u64 {
    60
}
fn default_block_after() -> u32 {
    10
}
fn default_block_secs() -> u64 {
    300
}

impl Default for AuthGuardSection {
    fn default() -> AuthGuardSection {
        AuthGuardSection {
            free_failures: default_free_failures(),
            backoff_ms: default_backoff_ms(),
            max_backoff_secs: default_max_backoff_secs(),
            block_after: default_block_after(),
            block_secs: default_block_secs(),
            blocked: Default::default(),
        }
    }
}

impl AuthGuardSection {
    pub fn policy(&self) -> crate::sip::auth_guard::AuthGuardConfig {
        crate::sip::auth_guard::AuthGuardConfig {
            free_failures: self.free_failures,
            backoff: Duration::from_millis(self.backoff_ms),
            max_backoff: Duration::from_secs(self.max_backoff_secs),
            block_after: self.block_after.max(1),
            block_for: Duration::from_secs(self.block_secs),
            blocked: self.blocked,
            ..Default::default()
        }
    }
}

fn default_t1() -> u64 {
    500
}

impl Default for SipSection {
    fn default() -> SipSection {
        SipSection {
            listen: default_listen(),
            advertise: None,
            max_message_bytes: default_max_message(),
            connection_idle_secs: default_idle(),
            tls: None,
            outbound_tls_ca_file: None,
            server_header: None,
            t1_ms: default_t1(),
            auth_guard: AuthGuardSection::default(),
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
    /// `SCHED_FIFO` priority of the RTP pacing thread (1–99); 0, the default, is time-shared.
    /// A real-time pacer runs at once when woken, which trims the rarest send delays, but it
    /// then preempts call set-up too (see the README's figures): for machines that mostly carry
    /// media. Refused without `CAP_SYS_NICE`: the pacer then runs time-shared and logs why.
    #[serde(default = "default_pacer_priority")]
    pub pacer_realtime_priority: u8,
    /// SRTP suites accepted in `a=crypto` (SDES), most preferred first; all six by default
    /// (AEAD_AES_256_GCM, AEAD_AES_128_GCM, AES_256_CM_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_80,
    /// AES_256_CM_HMAC_SHA1_32, AES_CM_128_HMAC_SHA1_32). An operator may drop the 32-bit-tag
    /// suites, for example.
    #[serde(default = "default_srtp_suites")]
    pub srtp_suites: Vec<String>,
    /// Meetings: how many talkers are mixed at once (the loudest; default 3, at least 1).
    #[serde(default = "default_conference_loudest")]
    pub conference_loudest: usize,
}

fn default_conference_loudest() -> usize {
    3
}

fn default_srtp_suites() -> Vec<String> {
    sma_media::srtp::Suite::ALL
        .iter()
        .map(|s| s.name().to_owned())
        .collect()
}

impl Default for MediaSection {
    fn default() -> MediaSection {
        MediaSection {
            address: None,
            port_range: default_ports(),
            codecs: default_codecs(),
            ptime: default_ptime(),
            pacer_realtime_priority: default_pacer_priority(),
            srtp_suites: default_srtp_suites(),
            conference_loudest: default_conference_loudest(),
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

fn default_pacer_priority() -> u8 {
    0
}

impl File {
    /// Reads a file; relative paths in it (components, storage) are taken from its directory.
    pub fn load(path: &Path) -> Result<File, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut file = File::parse(&text, path)?;
        if let Some(dir) = path.parent() {
            file.rebase(dir);
        }
        Ok(file)
    }

    pub fn parse(text: &str, origin: &Path) -> Result<File, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_owned(),
            message: e.to_string(),
        })
    }

    /// The configuration `sma serve` runs without a file: the demo IVR (the Rust example
    /// component at `demo_handler`) on `+12065550100`, SIP on 127.0.0.1:5060 over UDP and TCP.
    pub fn embedded_default(demo_handler: &Path) -> Result<File, ConfigError> {
        let mut file = File::parse(
            DEFAULT_CONFIG,
            Path::new("<embedded default configuration>"),
        )?;
        for app in &mut file.applications {
            app.endpoint = demo_handler.display().to_string();
        }
        Ok(file)
    }

    fn rebase(&mut self, dir: &Path) {
        let rebase = |p: &Path| {
            if p.is_relative() {
                dir.join(p)
            } else {
                p.to_owned()
            }
        };
        self.storage.root = rebase(&self.storage.root);
        self.node.cdr_path = self.node.cdr_path.as_deref().map(rebase);
        if self.store.path != Path::new(":memory:") {
            self.store.path = rebase(&self.store.path);
        }
        for path in self.storage.buckets.values_mut() {
            *path = rebase(path);
        }
        for app in &mut self.applications {
            if !app.endpoint.contains("://") {
                app.endpoint = rebase(Path::new(&app.endpoint)).display().to_string();
            }
        }
    }

    pub fn listeners(&self) -> Result<Vec<ListenSpec>, ConfigError> {
        self.sip
            .listen
            .iter()
            .map(|s| s.parse().map_err(ConfigError::from))
            .collect()
    }

    pub fn codecs(&self) -> Result<Vec<Codec>, ConfigError> {
        self.media
            .codecs
            .iter()
            .map(|c| Codec::parse(c).ok_or_else(|| ConfigError::Codec(c.clone())))
            .collect()
    }

    /// `[media] srtp_suites`, in preference order.
    pub fn srtp_suites(&self) -> Result<Vec<sma_media::srtp::Suite>, ConfigError> {
        self.media
            .srtp_suites
            .iter()
            .map(|s| {
                sma_media::srtp::Suite::from_name(s)
                    .ok_or_else(|| ConfigError::SrtpSuite(s.clone()))
            })
            .collect()
    }

    pub fn check(&self) -> Result<(), ConfigError> {
        self.listeners()?;
        self.codecs()?;
        self.srtp_suites()?;
        self.api.number_pool()?;
        let (lo, hi) = self.media.port_range;
        if hi <= lo {
            return Err(ConfigError::PortRange(lo, hi));
        }
        Ok(())
    }
}

/// The embedded default configuration (the demo). The application's endpoint is replaced by
/// the demo handler's path at start-up.
pub const DEFAULT_CONFIG: &str = include_str!("default.toml");

/// `sma simulate --config`: the execution model's policies and the buckets of `path`, so a
/// simulation runs as `sma serve` with that file would.
pub fn simulate_as_served(path: &Path) -> Result<sma_qa::simulate::AsServed, String> {
    let file = File::load(path).map_err(|e| e.to_string())?;
    Ok(sma_qa::simulate::AsServed {
        engine: file.calls.engine_config(),
        buckets: Some(sma_media::storage::Buckets::new(
            file.storage.root.clone(),
            file.storage.buckets.clone(),
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_specs_parse_with_clear_errors() {
        let s: ListenSpec = "tls:[::1]:5061".parse().unwrap();
        assert_eq!(s.transport, sma_sip::Transport::Tls);
        assert_eq!(s.addr, "[::1]:5061".parse().unwrap());
        assert_eq!(s.to_string(), "tls:[::1]:5061");
        for bad in ["sctp:1.2.3.4:5", "udp:localhost:5060", "udp", "tcp:1.2.3.4"] {
            let err = bad.parse::<ListenSpec>().unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn the_documented_example_and_the_embedded_default_parse() {
        let example = include_str!("../../../examples/sma.toml");
        let f = File::parse(example, Path::new("examples/sma.toml")).unwrap();
        f.check().unwrap();
        assert_eq!(f.voice_connectors[0].termination.credentials.len(), 1);
        assert_eq!(f.sip_rules.len(), 2);
        let d = File::embedded_default(Path::new("/x/ivr.wasm")).unwrap();
        assert_eq!(d.applications[0].endpoint, "/x/ivr.wasm");
        assert_eq!(d.sip_rules[0].trigger_value, "+12065550100");
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

    #[test]
    fn the_pacer_is_time_shared_unless_a_priority_is_set() {
        let f: File = toml::from_str("").unwrap();
        assert_eq!(f.media.pacer_realtime_priority, 0);
        let f: File = toml::from_str("[media]\npacer_realtime_priority = 20\n").unwrap();
        assert_eq!(f.media.pacer_realtime_priority, 20);
        let err = toml::from_str::<File>("[media]\npacer_realtime_priority = 300\n").unwrap_err();
        assert!(err.to_string().contains("pacer_realtime_priority"), "{err}");
    }
}
