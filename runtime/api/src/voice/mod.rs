//! The `chime-sdk-voice` operations on the store: request shapes, the service's rules, and
//! response shapes. Each operation runs inside one store transaction that commits only when
//! the operation succeeds, so a refused request leaves nothing behind and two conflicting
//! requests are decided one after the other.

mod applications;
mod available;
mod connectors;
mod emergency;
mod groups;
mod numbers;
mod rules;
mod settings;
mod tags;
pub mod validate;

use crate::error::ApiError;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use sma_store::{Store, Tx};
use std::collections::BTreeMap;
use std::sync::Arc;

pub use available::PoolEntry;

/// Why a call could not be updated.
#[derive(Debug, thiserror::Error)]
pub enum CallUpdateError {
    #[error(
        "no call with TransactionId {0} is in progress on this node for this SIP media application"
    )]
    NoSuchCall(String),
}

/// Why an outbound call could not be placed.
#[derive(Debug, thiserror::Error)]
pub enum CreateCallError {
    /// Beyond the configured rate of `CreateSipMediaApplicationCall` requests.
    #[error("{0}")]
    Throttled(String),
    /// The application cannot take calls here now (its handler cannot be hosted).
    #[error("{0}")]
    Unavailable(String),
}

/// `CreateSipMediaApplicationCall`, checked: what the runtime dials and tells the handler.
#[derive(Debug, Clone)]
pub struct OutboundCall {
    pub sip_media_application_id: String,
    /// E.164, a number of this account.
    pub from: String,
    /// E.164.
    pub to: String,
    /// Sent on the INVITE (not shown to the handler, as on the hosted service).
    pub sip_headers: Vec<(String, String)>,
    /// Given to the handler at `NEW_OUTBOUND_CALL`'s `ActionData.Parameters.Arguments`.
    pub arguments: Map<String, Value>,
}

/// What the API needs from the runtime around it.
pub trait Runtime: Send + Sync {
    /// The store changed: routing must reflect it before the response is sent.
    fn store_changed(&self);
    /// Whether an application endpoint (`LambdaArn`) can be hosted; the reason when not.
    fn check_endpoint(&self, endpoint: &str) -> Result<(), String>;
    /// `UpdateSipMediaApplicationCall`: deliver `CALL_UPDATE_REQUESTED` to the call.
    fn update_call(
        &self,
        sip_media_application_id: &str,
        transaction_id: &str,
        arguments: Map<String, Value>,
    ) -> Result<(), CallUpdateError>;
    /// `CreateSipMediaApplicationCall`: starts the call, returns its TransactionId.
    fn create_call(&self, call: OutboundCall) -> Result<String, CreateCallError>;
    /// The last SIP request a voice connector's PBX sent: (epoch ms, source address).
    fn termination_health(&self, voice_connector_id: &str) -> Option<(u64, String)>;
    /// What running calls must do about a committed change (meetings ended, attendees
    /// deleted or given new capabilities).
    fn apply(&self, effect: Effect) {
        let _ = effect;
    }
}

/// A committed change the running calls must follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// `DeleteMeeting` (or the meeting ended): everyone in it is released.
    MeetingEnded { meeting_id: String },
    /// `DeleteAttendee`: that attendee's calls leave the meeting.
    AttendeeDeleted {
        meeting_id: String,
        attendee_id: String,
    },
    /// `UpdateAttendeeCapabilities` and its batch form.
    CapabilitiesChanged {
        meeting_id: String,
        attendee_id: String,
        capabilities: sma_store::records::AttendeeCapabilities,
    },
}

impl Effect {
    /// The meeting it is about (only that meeting's calls need to hear of it).
    pub fn meeting_id(&self) -> &str {
        match self {
            Effect::MeetingEnded { meeting_id }
            | Effect::AttendeeDeleted { meeting_id, .. }
            | Effect::CapabilitiesChanged { meeting_id, .. } => meeting_id,
        }
    }
}

/// Limits the service enforces (documented in `examples/sma.toml`).
#[derive(Debug, Clone)]
pub struct Limits {
    pub numbers_per_voice_connector: usize,
    pub voice_connector_group_items: usize,
    pub tags_per_resource: usize,
    pub numbers_per_order: usize,
    pub batch_items: usize,
    /// Attendees one meeting may have (`MeetingFeatures.Attendee.MaxCount` may lower it).
    pub attendees_per_meeting: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            numbers_per_voice_connector: 10_000,
            voice_connector_group_items: 3,
            tags_per_resource: 50,
            numbers_per_order: 500,
            batch_items: 500,
            attendees_per_meeting: 250,
        }
    }
}

/// Who this deployment is.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub account_id: String,
    /// The regions this deployment serves; the first is the default.
    pub regions: Vec<String>,
    /// API-created voice connectors get `<id>.<voice_connector_domain>` as their host.
    pub voice_connector_domain: String,
    pub limits: Limits,
    /// Numbers that may be ordered (`SearchAvailablePhoneNumbers`).
    pub number_pool: Vec<PoolEntry>,
    /// Where telephony attendees reach meetings (`host:port` of the SIP listener), shown as
    /// a meeting's `MediaPlacement.AudioHostUrl`.
    pub meeting_audio_host: String,
}

/// One request, after routing: the URI labels (decoded), query pairs and body.
pub struct OpRequest<'a> {
    pub labels: &'a BTreeMap<String, String>,
    pub query: &'a [(String, String)],
    pub body: &'a [u8],
}

impl OpRequest<'_> {
    pub fn label(&self, name: &str) -> Result<&str, ApiError> {
        self.labels
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| ApiError::bad_request(format!("the path has no {name}")))
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The JSON body as `T`; an empty body is `{}`. Wrong types, malformed JSON and
    /// anything after the JSON value are refused naming where. Members the model does not
    /// have are ignored (logged at debug), as AWS services do, so an SDK newer than this
    /// runtime keeps working; `null` for an optional member is the member left out.
    pub fn body<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        let text: &[u8] = if self.body.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            self.body
        };
        let mut de = serde_json::Deserializer::from_slice(text);
        let mut unknown = Vec::new();
        let mut note = |path: serde_ignored::Path<'_>| unknown.push(path.to_string());
        let value =
            serde_path_to_error::deserialize(serde_ignored::Deserializer::new(&mut de, &mut note))
                .map_err(|e| {
                    let at = e.path().to_string();
                    if at == "." {
                        ApiError::bad_request(format!("Invalid request body: {}", e.inner()))
                    } else {
                        ApiError::bad_request(format!(
                            "Invalid request body at `{at}`: {}",
                            e.inner()
                        ))
                    }
                })?;
        de.end().map_err(|e| {
            ApiError::bad_request(format!(
                "Invalid request body: more follows the JSON value ({e})"
            ))
        })?;
        for member in unknown {
            tracing::debug!(%member, "ignoring a request member the model does not have");
        }
        Ok(value)
    }

    /// The body as a JSON object, for members that need a specific message.
    pub fn body_object(&self) -> Result<Map<String, Value>, ApiError> {
        self.body::<Map<String, Value>>()
    }
}

/// What an operation answers: a body or none (the status is the model's for the operation).
pub type Reply = Option<Value>;

/// The operations on the store.
pub struct Service {
    store: Arc<dyn Store>,
    runtime: Arc<dyn Runtime>,
    deployment: Deployment,
}

pub(crate) struct Ctx<'a> {
    pub deployment: &'a Deployment,
    pub runtime: &'a dyn Runtime,
    /// Applied once the operation's transaction commits (dropped if it does not).
    effects: std::cell::RefCell<Vec<Effect>>,
}

impl Ctx<'_> {
    pub fn effect(&self, effect: Effect) {
        self.effects.borrow_mut().push(effect);
    }

    pub fn arn(&self, region: &str, kind: &str, id: &str) -> String {
        sma_store::records::arn(region, &self.deployment.account_id, kind, id)
    }

    pub fn default_region(&self) -> &str {
        self.deployment
            .regions
            .first()
            .map_or("us-east-1", String::as_str)
    }

    pub fn check_region(&self, field: &str, region: &str) -> Result<(), ApiError> {
        if self.deployment.regions.iter().any(|r| r == region) {
            Ok(())
        } else {
            Err(ApiError::bad_request(format!(
                "{field} `{region}` is not a region this deployment serves ({})",
                self.deployment.regions.join(", ")
            )))
        }
    }
}

pub(crate) type Operation = fn(&Ctx<'_>, &mut dyn Tx, &OpRequest<'_>) -> Result<Reply, ApiError>;

fn operation(name: &str) -> Option<Operation> {
    Some(match name {
        "CreateSipMediaApplication" => applications::create,
        "GetSipMediaApplication" => applications::get,
        "ListSipMediaApplications" => applications::list,
        "UpdateSipMediaApplication" => applications::update,
        "DeleteSipMediaApplication" => applications::delete,
        "UpdateSipMediaApplicationCall" => applications::update_call,
        "CreateSipMediaApplicationCall" => applications::create_call,
        "GetSipMediaApplicationLoggingConfiguration" => applications::get_logging,
        "PutSipMediaApplicationLoggingConfiguration" => applications::put_logging,
        "CreateSipRule" => rules::create,
        "GetSipRule" => rules::get,
        "ListSipRules" => rules::list,
        "UpdateSipRule" => rules::update,
        "DeleteSipRule" => rules::delete,
        "CreatePhoneNumberOrder" => numbers::create_order,
        "GetPhoneNumberOrder" => numbers::get_order,
        "ListPhoneNumberOrders" => numbers::list_orders,
        "GetPhoneNumber" => numbers::get,
        "ListPhoneNumbers" => numbers::list,
        "UpdatePhoneNumber" => numbers::update,
        "DeletePhoneNumber" => numbers::delete,
        "RestorePhoneNumber" => numbers::restore,
        "BatchUpdatePhoneNumber" => numbers::batch_update,
        "BatchDeletePhoneNumber" => numbers::batch_delete,
        "SearchAvailablePhoneNumbers" => available::search,
        "ListSupportedPhoneNumberCountries" => available::countries,
        "GetPhoneNumberSettings" => settings::get,
        "UpdatePhoneNumberSettings" => settings::update,
        "ValidateE911Address" => emergency::validate_address,
        "PutVoiceConnectorEmergencyCallingConfiguration" => emergency::put,
        "GetVoiceConnectorEmergencyCallingConfiguration" => emergency::get,
        "DeleteVoiceConnectorEmergencyCallingConfiguration" => emergency::delete,
        "CreateVoiceConnector" => connectors::create,
        "GetVoiceConnector" => connectors::get,
        "ListVoiceConnectors" => connectors::list,
        "UpdateVoiceConnector" => connectors::update,
        "DeleteVoiceConnector" => connectors::delete,
        "PutVoiceConnectorTermination" => connectors::put_termination,
        "GetVoiceConnectorTermination" => connectors::get_termination,
        "DeleteVoiceConnectorTermination" => connectors::delete_termination,
        "PutVoiceConnectorTerminationCredentials" => connectors::put_credentials,
        "ListVoiceConnectorTerminationCredentials" => connectors::list_credentials,
        "DeleteVoiceConnectorTerminationCredentials" => connectors::delete_credentials,
        "PutVoiceConnectorOrigination" => connectors::put_origination,
        "GetVoiceConnectorOrigination" => connectors::get_origination,
        "DeleteVoiceConnectorOrigination" => connectors::delete_origination,
        "PutVoiceConnectorLoggingConfiguration" => connectors::put_logging,
        "GetVoiceConnectorLoggingConfiguration" => connectors::get_logging,
        "PutVoiceConnectorStreamingConfiguration" => connectors::put_streaming,
        "GetVoiceConnectorStreamingConfiguration" => connectors::get_streaming,
        "DeleteVoiceConnectorStreamingConfiguration" => connectors::delete_streaming,
        "GetVoiceConnectorTerminationHealth" => connectors::termination_health,
        "AssociatePhoneNumbersWithVoiceConnector" => connectors::associate_numbers,
        "DisassociatePhoneNumbersFromVoiceConnector" => connectors::disassociate_numbers,
        "CreateVoiceConnectorGroup" => groups::create,
        "GetVoiceConnectorGroup" => groups::get,
        "ListVoiceConnectorGroups" => groups::list,
        "UpdateVoiceConnectorGroup" => groups::update,
        "DeleteVoiceConnectorGroup" => groups::delete,
        "AssociatePhoneNumbersWithVoiceConnectorGroup" => groups::associate_numbers,
        "DisassociatePhoneNumbersFromVoiceConnectorGroup" => groups::disassociate_numbers,
        "TagResource" => tags::tag,
        "UntagResource" => tags::untag,
        "ListTagsForResource" => tags::list,
        "ListAvailableVoiceConnectorRegions" => regions,
        "GetGlobalSettings" => tags::get_global_settings,
        "UpdateGlobalSettings" => tags::update_global_settings,
        _ => return None,
    })
}

/// A `chime-sdk-voice` or `chime-sdk-meetings` operation by name.
fn any_operation(name: &str) -> Option<Operation> {
    operation(name).or_else(|| crate::meetings::operation(name))
}

/// `ListAvailableVoiceConnectorRegions`: the regions this deployment serves.
fn regions(ctx: &Ctx<'_>, _: &mut dyn Tx, _: &OpRequest<'_>) -> Result<Reply, ApiError> {
    Ok(wrap(
        "VoiceConnectorRegions",
        serde_json::json!(ctx.deployment.regions),
    ))
}

impl Service {
    pub fn new(
        store: Arc<dyn Store>,
        runtime: Arc<dyn Runtime>,
        deployment: Deployment,
    ) -> Service {
        Service {
            store,
            runtime,
            deployment,
        }
    }

    /// Whether this runtime implements the operation.
    pub fn supports(name: &str) -> bool {
        any_operation(name).is_some()
    }

    /// Runs operation `name` in one transaction. `writes` says whether it may change the
    /// store (anything but GET): the runtime is told after such a change commits.
    pub fn call(
        &self,
        name: &str,
        writes: bool,
        request: &OpRequest<'_>,
    ) -> Result<Reply, ApiError> {
        let op = any_operation(name).ok_or_else(|| {
            ApiError::bad_request(format!("{name} is not supported by this runtime"))
        })?;
        let ctx = Ctx {
            deployment: &self.deployment,
            runtime: self.runtime.as_ref(),
            effects: Default::default(),
        };
        let mut tx = self.store.begin()?;
        let reply = op(&ctx, tx.as_mut(), request)?;
        if writes {
            tx.commit()?;
            // Meetings are not routing: their changes reach the runtime as effects only.
            if operation(name).is_some() {
                self.runtime.store_changed();
            }
            for effect in ctx.effects.take() {
                self.runtime.apply(effect);
            }
        }
        Ok(reply)
    }

    /// Runs `work` in one transaction with the operations' context, committing when it
    /// succeeds and applying its effects (the runtime's own changes: a meeting that ended
    /// with nobody in it, a dial-in looking up its token).
    pub fn with_store<T>(
        &self,
        work: impl FnOnce(&mut dyn Tx) -> Result<(T, Vec<Effect>), ApiError>,
    ) -> Result<T, ApiError> {
        let mut tx = self.store.begin()?;
        let (value, effects) = work(tx.as_mut())?;
        tx.commit()?;
        for effect in effects {
            self.runtime.apply(effect);
        }
        Ok(value)
    }
}

/// Paginates `items` (already in a stable order by `key`): `max-results` (1-100, default
/// 100) and an opaque `next-token` (the key of the first item of the next page).
pub(crate) fn paginate<T>(
    items: Vec<T>,
    request: &OpRequest<'_>,
    key: impl Fn(&T) -> &str,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let max = match request.query("max-results") {
        None => 100,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=100).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "MaxResults `{v}` must be a number from 1 to 100"
                )))
            }
        },
    };
    let start = match request.query("next-token").filter(|t| !t.is_empty()) {
        None => 0,
        Some(token) => {
            let after = decode_token(token).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "NextToken `{token}` is not a token this API issued"
                ))
            })?;
            items
                .iter()
                .position(|i| key(i) >= after.as_str())
                .unwrap_or(items.len())
        }
    };
    let mut page: Vec<T> = items.into_iter().skip(start).collect();
    let next = if page.len() > max {
        let rest = page.split_off(max);
        rest.first().map(|i| encode_token(key(i)))
    } else {
        None
    };
    Ok((page, next))
}

pub(crate) fn encode_token(key: &str) -> String {
    format!("t1{}", hex::encode(key))
}

pub(crate) fn decode_token(token: &str) -> Option<String> {
    let hex = token.strip_prefix("t1")?;
    String::from_utf8(hex::decode(hex).ok()?).ok()
}

/// `{"<member>": value}` with optional `NextToken`.
pub(crate) fn list_reply(member: &str, items: Vec<Value>, next: Option<String>) -> Reply {
    let mut map = Map::new();
    map.insert(member.into(), Value::Array(items));
    if let Some(token) = next {
        map.insert("NextToken".into(), Value::from(token));
    }
    Some(Value::Object(map))
}

/// `{"<member>": value}`.
pub(crate) fn wrap(member: &str, value: Value) -> Reply {
    let mut map = Map::new();
    map.insert(member.into(), value);
    Some(Value::Object(map))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sma_store::SqliteStore;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// The runtime side, counting store changes; every endpoint is hostable.
    #[derive(Default)]
    struct Counting(AtomicUsize);

    impl Runtime for Counting {
        fn store_changed(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        fn check_endpoint(&self, _: &str) -> Result<(), String> {
            Ok(())
        }
        fn update_call(
            &self,
            _: &str,
            tx: &str,
            _: Map<String, Value>,
        ) -> Result<(), CallUpdateError> {
            Err(CallUpdateError::NoSuchCall(tx.into()))
        }
        fn create_call(&self, _: OutboundCall) -> Result<String, CreateCallError> {
            Err(CreateCallError::Unavailable("no calls in this test".into()))
        }
        fn termination_health(&self, _: &str) -> Option<(u64, String)> {
            None
        }
    }

    fn service(runtime: Arc<Counting>, limit: usize) -> Service {
        Service::new(
            Arc::new(SqliteStore::in_memory().expect("store")),
            runtime,
            Deployment {
                account_id: "111122223333".into(),
                regions: vec!["us-east-1".into()],
                voice_connector_domain: "vc.test".into(),
                limits: Limits {
                    numbers_per_voice_connector: limit,
                    ..Limits::default()
                },
                number_pool: Vec::new(),
                meeting_audio_host: "127.0.0.1:5061".into(),
            },
        )
    }

    fn call(
        s: &Service,
        op: &str,
        labels: &[(&str, &str)],
        query: &[(&str, &str)],
        body: Value,
    ) -> Result<Reply, ApiError> {
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let query: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let body = body.to_string();
        let writes = !op.starts_with("Get") && !op.starts_with("List");
        s.call(
            op,
            writes,
            &OpRequest {
                labels: &labels,
                query: &query,
                body: body.as_bytes(),
            },
        )
    }

    #[test]
    fn pages_follow_their_tokens_and_forged_tokens_are_refused() {
        let s = service(Arc::default(), 10);
        let numbers: Vec<String> = (0..5).map(|i| format!("+1206555010{i}")).collect();
        call(
            &s,
            "CreatePhoneNumberOrder",
            &[],
            &[],
            json!({"ProductType": "VoiceConnector", "E164PhoneNumbers": numbers}),
        )
        .expect("order");
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![("max-results", "2")];
            if let Some(t) = &token {
                query.push(("next-token", t.as_str()));
            }
            let page = call(&s, "ListPhoneNumbers", &[], &query, json!({}))
                .expect("list")
                .expect("body");
            for n in page["PhoneNumbers"].as_array().expect("array") {
                seen.push(n["E164PhoneNumber"].as_str().expect("number").to_owned());
            }
            match page.get("NextToken").and_then(Value::as_str) {
                Some(t) => token = Some(t.to_owned()),
                None => break,
            }
        }
        assert_eq!(seen, numbers);
        let e = call(
            &s,
            "ListPhoneNumbers",
            &[],
            &[("next-token", "t1zz")],
            json!({}),
        )
        .expect_err("forged");
        assert_eq!(e.code, "BadRequestException");
    }

    #[test]
    fn a_refused_change_writes_nothing_and_tells_the_runtime_nothing() {
        let runtime = Arc::new(Counting::default());
        let s = service(runtime.clone(), 1);
        call(&s, "CreatePhoneNumberOrder", &[], &[], json!({"ProductType": "VoiceConnector", "E164PhoneNumbers": ["+12065550100", "+12065550101"]})).expect("order");
        let vc = call(
            &s,
            "CreateVoiceConnector",
            &[],
            &[],
            json!({"Name": "pbx", "RequireEncryption": false}),
        )
        .expect("vc")
        .expect("body");
        let id = vc["VoiceConnector"]["VoiceConnectorId"]
            .as_str()
            .expect("id")
            .to_owned();
        assert_eq!(runtime.0.load(Ordering::SeqCst), 2);
        // Two numbers on a connector limited to one: the first was written inside the
        // transaction, then the limit refused the request; the rollback removes it.
        let e = call(
            &s,
            "AssociatePhoneNumbersWithVoiceConnector",
            &[("voiceConnectorId", &id)],
            &[],
            json!({"E164PhoneNumbers": ["+12065550100", "+12065550101"]}),
        )
        .expect_err("limit");
        assert_eq!(e.code, "ResourceLimitExceededException");
        assert_eq!(runtime.0.load(Ordering::SeqCst), 2);
        let listed = call(
            &s,
            "ListPhoneNumbers",
            &[],
            &[("filter-name", "VoiceConnectorId"), ("filter-value", &id)],
            json!({}),
        )
        .expect("list")
        .expect("body");
        assert_eq!(listed["PhoneNumbers"], json!([]));
        // Reads never tell the runtime anything.
        call(
            &s,
            "GetVoiceConnector",
            &[("voiceConnectorId", &id)],
            &[],
            json!({}),
        )
        .expect("get");
        assert_eq!(runtime.0.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn unsupported_operations_are_named_and_unknown_members_ignored() {
        let s = service(Arc::default(), 1);
        let e = call(&s, "CreateProxySession", &[], &[], json!({})).expect_err("unsupported");
        assert_eq!(
            e.message,
            "CreateProxySession is not supported by this runtime"
        );
        // A member a newer SDK sends is ignored; `null` is the member left out.
        let vc = call(
            &s,
            "CreateVoiceConnector",
            &[],
            &[],
            json!({"Name": "x", "RequireEncryption": false, "Colour": "red", "Tags": null,
                "NetworkType": null}),
        )
        .expect("unknown and null members are no error")
        .expect("body");
        assert_eq!(vc["VoiceConnector"]["Name"], "x");
        let e = call(
            &s,
            "CreateVoiceConnector",
            &[],
            &[],
            json!({"Name": "x", "RequireEncryption": "yes"}),
        )
        .expect_err("wrong type");
        assert!(e.message.contains("RequireEncryption"), "{}", e.message);
        // Anything after the JSON value is refused, and nothing is created.
        let labels = BTreeMap::new();
        for body in [
            &br#"{"Name": "y", "RequireEncryption": false} xyz"#[..],
            br#"{"Name": "y", "RequireEncryption": false}{"Name": "z"}"#,
        ] {
            let e = s
                .call(
                    "CreateVoiceConnector",
                    true,
                    &OpRequest {
                        labels: &labels,
                        query: &[],
                        body,
                    },
                )
                .expect_err("trailing data");
            assert!(e.message.contains("more follows"), "{}", e.message);
        }
        let listed = call(&s, "ListVoiceConnectors", &[], &[], json!({}))
            .expect("list")
            .expect("body");
        assert_eq!(listed["VoiceConnectors"].as_array().map(Vec::len), Some(1));
    }
}
