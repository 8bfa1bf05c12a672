//! The stored resources, in the `chime-sdk-voice` model's shapes (member names and all), so
//! the API returns them as they are. What the model has no member for — tags, handler
//! settings, a voice connector's sub-configurations, whether `sma.toml` declared the
//! resource — lives in members prefixed `sma:`, which [`public`] strips before a client sees
//! the record.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A stored document type.
pub trait Resource {
    /// The document kind (the table key); never changes once released.
    const KIND: &'static str;
    fn id(&self) -> &str;
}

/// The ARN of a resource: `arn:aws:chime:<region>:<account>:<kind>/<id>` (`kind`: `sma`,
/// `vc`, `vcg`, `phone-number`).
pub fn arn(region: &str, account: &str, kind: &str, id: &str) -> String {
    format!("arn:aws:chime:{region}:{account}:{kind}/{id}")
}

/// `value` as a client sees it: `sma:` members removed.
pub fn public<T: Serialize>(value: &T) -> Value {
    let mut v = serde_json::to_value(value).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut v {
        map.retain(|k, _| !k.starts_with("sma:"));
    }
    v
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "Value")]
    pub value: String,
}

/// Where a SIP media application's handler runs, beyond what `LambdaArn` says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HandlerSettings {
    /// Webhook signing secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Component memory cap, MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<usize>,
    /// `fresh` or `reuse-per-call`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_mode: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SipMediaApplicationEndpoint {
    /// A component path, a webhook URL, or a Lambda-style function ARN.
    #[serde(rename = "LambdaArn")]
    pub lambda_arn: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SipMediaApplication {
    pub sip_media_application_id: String,
    pub aws_region: String,
    pub name: String,
    pub endpoints: Vec<SipMediaApplicationEndpoint>,
    pub created_timestamp: String,
    pub updated_timestamp: String,
    pub sip_media_application_arn: String,
    #[serde(rename = "sma:Tags", default)]
    pub tags: Vec<Tag>,
    #[serde(rename = "sma:Handler", default)]
    pub handler: HandlerSettings,
    #[serde(rename = "sma:Declared", default)]
    pub declared: bool,
    /// `PutSipMediaApplicationLoggingConfiguration`.
    #[serde(rename = "sma:Logging", default)]
    pub logging: SipMediaApplicationLoggingConfiguration,
    /// Where `JoinChimeMeeting` dials to join meetings hosted elsewhere (a SIP URI; `sma.toml`
    /// only, the model has no member for it). Absent: meetings of this runtime.
    #[serde(
        rename = "sma:MeetingDialIn",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub meeting_dial_in: Option<String>,
}

/// Whether the runtime logs every event and response of the application's calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SipMediaApplicationLoggingConfiguration {
    #[serde(rename = "EnableSipMediaApplicationMessageLogs", default)]
    pub enable_sip_media_application_message_logs: bool,
}

impl Resource for SipMediaApplication {
    const KIND: &'static str = "sip-media-application";
    fn id(&self) -> &str {
        &self.sip_media_application_id
    }
}

impl SipMediaApplication {
    /// The handler endpoint (the model allows exactly one).
    pub fn endpoint(&self) -> &str {
        self.endpoints.first().map_or("", |e| e.lambda_arn.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SipRuleTargetApplication {
    pub sip_media_application_id: String,
    pub priority: u32,
    pub aws_region: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SipRule {
    pub sip_rule_id: String,
    pub name: String,
    pub disabled: bool,
    /// `ToPhoneNumber` or `RequestUriHostname`.
    pub trigger_type: String,
    pub trigger_value: String,
    pub target_applications: Vec<SipRuleTargetApplication>,
    pub created_timestamp: String,
    pub updated_timestamp: String,
    #[serde(rename = "sma:Declared", default)]
    pub declared: bool,
}

impl Resource for SipRule {
    const KIND: &'static str = "sip-rule";
    fn id(&self) -> &str {
        &self.sip_rule_id
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PhoneNumberCapabilities {
    pub inbound_call: bool,
    pub outbound_call: bool,
    #[serde(rename = "InboundSMS")]
    pub inbound_sms: bool,
    #[serde(rename = "OutboundSMS")]
    pub outbound_sms: bool,
    #[serde(rename = "InboundMMS")]
    pub inbound_mms: bool,
    #[serde(rename = "OutboundMMS")]
    pub outbound_mms: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PhoneNumberAssociation {
    pub value: String,
    /// `VoiceConnectorId`, `VoiceConnectorGroupId` or `SipRuleId`.
    pub name: String,
    pub associated_timestamp: String,
}

/// A number in the inventory. Its id is the E.164 number itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PhoneNumber {
    pub phone_number_id: String,
    pub e164_phone_number: String,
    pub phone_number_arn: String,
    pub country: String,
    /// `Local` or `TollFree`.
    pub r#type: String,
    /// `SipMediaApplicationDialIn` or `VoiceConnector`.
    pub product_type: String,
    pub status: String,
    pub capabilities: PhoneNumberCapabilities,
    /// Voice connector and group associations; SIP rule associations are derived from the
    /// rules when the number is read, so they can never disagree.
    pub associations: Vec<PhoneNumberAssociation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calling_name: Option<String>,
    pub calling_name_status: String,
    pub created_timestamp: String,
    pub updated_timestamp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "sma:Tags", default)]
    pub tags: Vec<Tag>,
    #[serde(rename = "sma:Declared", default)]
    pub declared: bool,
}

impl PhoneNumber {
    /// A number entering the inventory (`e164`: `+` and digits), unassigned, voice-capable,
    /// with its country and type derived from the number.
    pub fn new_in_inventory(e164: &str, product_type: &str, arn: String, now: &str) -> PhoneNumber {
        let digits = e164.trim_start_matches('+');
        PhoneNumber {
            phone_number_id: e164.into(),
            e164_phone_number: e164.into(),
            phone_number_arn: arn,
            country: crate::numbering::country_of(digits).unwrap_or("US").into(),
            r#type: if crate::numbering::is_toll_free(digits) {
                "TollFree".into()
            } else {
                "Local".into()
            },
            product_type: product_type.into(),
            status: "Unassigned".into(),
            capabilities: PhoneNumberCapabilities {
                inbound_call: true,
                outbound_call: true,
                ..Default::default()
            },
            associations: Vec::new(),
            calling_name: None,
            calling_name_status: "Unassigned".into(),
            created_timestamp: now.into(),
            updated_timestamp: now.into(),
            deletion_timestamp: None,
            order_id: None,
            name: None,
            tags: Vec::new(),
            declared: false,
        }
    }
}

impl Resource for PhoneNumber {
    const KIND: &'static str = "phone-number";
    fn id(&self) -> &str {
        &self.phone_number_id
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OrderedPhoneNumber {
    pub e164_phone_number: String,
    /// `Acquired` or `Failed`.
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PhoneNumberOrder {
    pub phone_number_order_id: String,
    pub product_type: String,
    pub status: String,
    pub order_type: String,
    pub ordered_phone_numbers: Vec<OrderedPhoneNumber>,
    pub created_timestamp: String,
    pub updated_timestamp: String,
}

impl Resource for PhoneNumberOrder {
    const KIND: &'static str = "phone-number-order";
    fn id(&self) -> &str {
        &self.phone_number_order_id
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Termination {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cps_limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_phone_number: Option<String>,
    #[serde(default)]
    pub calling_regions: Vec<String>,
    #[serde(default)]
    pub cidr_allowed_list: Vec<String>,
    #[serde(default)]
    pub disabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OriginationRoute {
    pub host: String,
    pub port: u16,
    pub protocol: String,
    pub priority: u32,
    pub weight: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Origination {
    #[serde(default)]
    pub routes: Vec<OriginationRoute>,
    #[serde(default)]
    pub disabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Credential {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggingConfiguration {
    #[serde(rename = "EnableSIPLogs", default)]
    pub enable_sip_logs: bool,
    #[serde(rename = "EnableMediaMetricLogs", default)]
    pub enable_media_metric_logs: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VoiceConnector {
    pub voice_connector_id: String,
    pub aws_region: String,
    pub name: String,
    pub outbound_host_name: String,
    pub require_encryption: bool,
    pub created_timestamp: String,
    pub updated_timestamp: String,
    pub voice_connector_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_type: Option<String>,
    #[serde(rename = "sma:Termination", default)]
    pub termination: Option<Termination>,
    #[serde(rename = "sma:Origination", default)]
    pub origination: Option<Origination>,
    #[serde(rename = "sma:Credentials", default)]
    pub credentials: Vec<Credential>,
    #[serde(rename = "sma:Logging", default)]
    pub logging: Option<LoggingConfiguration>,
    /// The model's `StreamingConfiguration`, kept as sent (validated by the API).
    #[serde(rename = "sma:Streaming", default)]
    pub streaming: Option<Value>,
    #[serde(rename = "sma:Tags", default)]
    pub tags: Vec<Tag>,
    #[serde(rename = "sma:Declared", default)]
    pub declared: bool,
    /// The model's `EmergencyCallingConfiguration`, validated by the API.
    #[serde(rename = "sma:EmergencyCalling", default)]
    pub emergency_calling: Option<EmergencyCallingConfiguration>,
    /// The digest algorithms its 407 offers, in order (`SHA-256`, `MD5`); empty: both,
    /// SHA-256 first. Set in `sma.toml` only (the model has no member for it).
    #[serde(
        rename = "sma:DigestAlgorithms",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub digest_algorithms: Vec<String>,
    /// Mutual TLS: the PEM file of CAs its PBXs' client certificates must chain to. Set in
    /// `sma.toml` only (the model has no member for it).
    #[serde(
        rename = "sma:TlsClientCaFile",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub tls_client_ca_file: Option<String>,
}

/// Where a voice connector's emergency calls go (`DNIS`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmergencyCallingConfiguration {
    #[serde(rename = "DNIS", default)]
    pub dnis: Vec<DnisEmergencyCallingConfiguration>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DnisEmergencyCallingConfiguration {
    pub emergency_phone_number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_phone_number: Option<String>,
    pub calling_country: String,
}

impl Resource for VoiceConnector {
    const KIND: &'static str = "voice-connector";
    fn id(&self) -> &str {
        &self.voice_connector_id
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VoiceConnectorItem {
    pub voice_connector_id: String,
    pub priority: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VoiceConnectorGroup {
    pub voice_connector_group_id: String,
    pub name: String,
    pub voice_connector_items: Vec<VoiceConnectorItem>,
    pub created_timestamp: String,
    pub updated_timestamp: String,
    pub voice_connector_group_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_distribution_type: Option<String>,
}

impl Resource for VoiceConnectorGroup {
    const KIND: &'static str = "voice-connector-group";
    fn id(&self) -> &str {
        &self.voice_connector_group_id
    }
}

/// `GetGlobalSettings` / `UpdateGlobalSettings` (one document, id `global`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GlobalSettings {
    #[serde(rename = "VoiceConnector", default)]
    pub voice_connector: GlobalVoiceConnectorSettings,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GlobalVoiceConnectorSettings {
    #[serde(rename = "CdrBucket", default, skip_serializing_if = "Option::is_none")]
    pub cdr_bucket: Option<String>,
}

impl GlobalSettings {
    pub const ID: &'static str = "global";
}

impl Resource for GlobalSettings {
    const KIND: &'static str = "global-settings";
    fn id(&self) -> &str {
        Self::ID
    }
}

/// `GetPhoneNumberSettings` / `UpdatePhoneNumberSettings`: the account's default outbound
/// calling name (one document, id `global`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PhoneNumberSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calling_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calling_name_updated_timestamp: Option<String>,
}

impl PhoneNumberSettings {
    pub const ID: &'static str = "global";
}

impl Resource for PhoneNumberSettings {
    const KIND: &'static str = "phone-number-settings";
    fn id(&self) -> &str {
        Self::ID
    }
}

/// An emergency address `ValidateE911Address` accepted, by its `AddressExternalId`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct E911Address {
    #[serde(rename = "AddressExternalId")]
    pub address_external_id: String,
    /// The model's `Address`, as validated.
    #[serde(rename = "Address")]
    pub address: serde_json::Map<String, Value>,
    #[serde(rename = "ValidatedTimestamp")]
    pub validated_timestamp: String,
}

impl Resource for E911Address {
    const KIND: &'static str = "e911-address";
    fn id(&self) -> &str {
        &self.address_external_id
    }
}

/// `chime-sdk-meetings` attendee capabilities: what an attendee may send and receive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttendeeCapabilities {
    /// `SendReceive`, `Send`, `Receive` or `None`.
    pub audio: String,
    pub video: String,
    pub content: String,
}

impl Default for AttendeeCapabilities {
    fn default() -> AttendeeCapabilities {
        AttendeeCapabilities {
            audio: "SendReceive".into(),
            video: "SendReceive".into(),
            content: "SendReceive".into(),
        }
    }
}

/// An attendee of a meeting, as `CreateAttendee` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Attendee {
    pub external_user_id: String,
    pub attendee_id: String,
    /// Unguessable (256 random bits), bound to this attendee; what a dial-in presents.
    pub join_token: String,
    pub capabilities: AttendeeCapabilities,
}

/// A meeting (`chime-sdk-meetings`), with its attendees: one document, so creating or
/// deleting attendees is one write and a meeting never has half its attendees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Meeting {
    pub meeting_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meeting_host_id: Option<String>,
    pub external_meeting_id: String,
    pub media_region: String,
    pub media_placement: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meeting_features: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_meeting_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tenant_ids: Vec<String>,
    pub meeting_arn: String,
    #[serde(rename = "sma:ClientRequestToken", default)]
    pub client_request_token: String,
    #[serde(rename = "sma:NotificationsConfiguration", default)]
    pub notifications: Option<Value>,
    #[serde(rename = "sma:Attendees", default)]
    pub attendees: Vec<Attendee>,
    /// How many attendees it may have (`MeetingFeatures.Attendee.MaxCount`, else the
    /// deployment's limit).
    #[serde(rename = "sma:MaxAttendees", default)]
    pub max_attendees: usize,
    #[serde(rename = "sma:Tags", default)]
    pub tags: Vec<Tag>,
    /// Epoch ms of creation, for the end-when-empty rule.
    #[serde(rename = "sma:CreatedMs", default)]
    pub created_ms: u64,
}

impl Resource for Meeting {
    const KIND: &'static str = "meeting";
    fn id(&self) -> &str {
        &self.meeting_id
    }
}

/// Where a join token leads: its meeting and attendee (the token is the document id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JoinToken {
    pub join_token: String,
    pub meeting_id: String,
    pub attendee_id: String,
}

/// The meeting a `CreateMeeting`'s `ClientRequestToken` created (the token is the document
/// id), so a repeated request finds it without reading every meeting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MeetingRequest {
    pub client_request_token: String,
    pub meeting_id: String,
}

impl Resource for MeetingRequest {
    const KIND: &'static str = "meeting-request";
    fn id(&self) -> &str {
        &self.client_request_token
    }
}

impl Resource for JoinToken {
    const KIND: &'static str = "join-token";
    fn id(&self) -> &str {
        &self.join_token
    }
}
