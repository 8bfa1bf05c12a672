//! Invocation events the runtime sends to a handler (contract §2).

use crate::common::{
    CallRecordingDestination, Direction, ParticipantTag, RecordingDestination, SipHeaders, Status,
};
use crate::prelude::*;
use alloc::collections::BTreeMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The only schema version the contract knows; a response must echo it.
pub const SCHEMA_VERSION: &str = "1.0";

/// Stored per transaction and round-tripped on every invocation.
pub type TransactionAttributes = BTreeMap<String, String>;

/// What caused an invocation (§2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventType {
    /// A SIP rule matched an incoming call.
    NewInboundCall,
    /// An API-created outbound call was accepted.
    NewOutboundCall,
    /// An outbound leg is ringing.
    Ringing,
    /// An API-created outbound leg answered.
    CallAnswered,
    /// An action (list) succeeded.
    ActionSuccessful,
    /// An action failed.
    ActionFailed,
    /// An interruptible action was stopped by a call update.
    ActionInterrupted,
    /// A leg disconnected.
    Hangup,
    /// A `ReceiveDigits` listener matched.
    DigitsReceived,
    /// `UpdateSipMediaApplicationCall` was called.
    CallUpdateRequested,
    /// The previous response was rejected.
    InvalidLambdaResponse,
}

impl EventType {
    /// Every event type, in contract order.
    pub const ALL: [EventType; 11] = [
        Self::NewInboundCall,
        Self::NewOutboundCall,
        Self::Ringing,
        Self::CallAnswered,
        Self::ActionSuccessful,
        Self::ActionFailed,
        Self::ActionInterrupted,
        Self::Hangup,
        Self::DigitsReceived,
        Self::CallUpdateRequested,
        Self::InvalidLambdaResponse,
    ];

    /// The wire spelling, e.g. `NEW_INBOUND_CALL`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NewInboundCall => "NEW_INBOUND_CALL",
            Self::NewOutboundCall => "NEW_OUTBOUND_CALL",
            Self::Ringing => "RINGING",
            Self::CallAnswered => "CALL_ANSWERED",
            Self::ActionSuccessful => "ACTION_SUCCESSFUL",
            Self::ActionFailed => "ACTION_FAILED",
            Self::ActionInterrupted => "ACTION_INTERRUPTED",
            Self::Hangup => "HANGUP",
            Self::DigitsReceived => "DIGITS_RECEIVED",
            Self::CallUpdateRequested => "CALL_UPDATE_REQUESTED",
            Self::InvalidLambdaResponse => "INVALID_LAMBDA_RESPONSE",
        }
    }

    /// Whether the runtime executes actions returned for this event (§1.7). HANGUP's actions
    /// are honoured only while another leg is connected, which the caller decides.
    pub const fn actions_honoured(self) -> bool {
        !matches!(
            self,
            Self::NewOutboundCall | Self::Ringing | Self::ActionInterrupted
        )
    }

    /// Whether events of this type carry `ActionData` (§2.1).
    pub const fn has_action_data(self) -> bool {
        !matches!(
            self,
            Self::NewInboundCall | Self::Ringing | Self::CallAnswered | Self::InvalidLambdaResponse
        )
    }
}

/// One leg of the transaction (§2.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Participant {
    /// Unique per leg.
    pub call_id: String,
    /// `LEG-A` or `LEG-B`.
    pub participant_tag: ParticipantTag,
    /// Called number (E.164) or a meeting placeholder.
    pub to: String,
    /// Calling number.
    pub from: String,
    /// `Inbound` or `Outbound`.
    pub direction: Direction,
    /// Epoch milliseconds, as a decimal string.
    pub start_time_in_milliseconds: String,
    /// Absent while an outbound leg is being set up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Custom `X-`, `User-to-User` and `Diversion` headers of the leg's INVITE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_headers: Option<SipHeaders>,
}

/// Transaction snapshot at invocation time (§2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CallDetails {
    /// Stable for the whole call.
    pub transaction_id: String,
    /// Present once set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_attributes: Option<TransactionAttributes>,
    /// Owner account (tenant) of the application.
    pub aws_account_id: String,
    /// Region of the application that handled the call.
    pub aws_region: String,
    /// The rule that created an inbound transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_rule_id: Option<String>,
    /// The application.
    pub sip_media_application_id: String,
    /// Every leg that exists or existed.
    pub participants: Vec<Participant>,
}

impl CallDetails {
    /// The participant with `tag`, if any.
    pub fn participant(&self, tag: ParticipantTag) -> Option<&Participant> {
        self.participants.iter().find(|p| p.participant_tag == tag)
    }
}

/// The action (or pseudo-action) that caused an invocation, with its results (§2.5).
///
/// `Parameters` is kept as received from the handler, not re-serialized from a typed action:
/// the contract asks for an exact echo that never drops fields the runtime does not know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ActionData {
    /// Action name, `Hangup` for HANGUP, `CallUpdateRequest` for CALL_UPDATE_REQUESTED; empty
    /// (and omitted) on NEW_OUTBOUND_CALL, where the contract shows only `Parameters`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub r#type: String,
    /// The parameters as submitted, plus resolved values (`CallId`, defaults).
    #[serde(default)]
    pub parameters: Map<String, Value>,
    /// Collected digits (`*AndGetDigits`, `ReceiveDigits`, `DIGITS_RECEIVED`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_digits: Option<String>,
    /// Where `RecordAudio` stored its file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_destination: Option<RecordingDestination>,
    /// The digit that ended a `RecordAudio`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_terminator_used: Option<String>,
    /// Where `StartCallRecording` stores its file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_recording_destination: Option<CallRecordingDestination>,
    /// Result of a `StartBotConversation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent_result: Option<Value>,
    /// Nested copy of the call details (`StartBotConversation` results).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_details: Option<Box<CallDetails>>,
    /// Failure class (`ACTION_FAILED`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// Failure text (`ACTION_FAILED`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// `"<ErrorType>: <ErrorMessage>"` (JoinChimeMeeting and StartCallRecording failures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Per-attendee failures (ModifyChimeMeetingAttendees).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_list: Option<Vec<Value>>,
}

impl ActionData {
    /// Action data with the given type and parameters and no results.
    pub fn new(r#type: impl Into<String>, parameters: Map<String, Value>) -> Self {
        Self {
            r#type: r#type.into(),
            parameters,
            received_digits: None,
            recording_destination: None,
            recording_terminator_used: None,
            call_recording_destination: None,
            intent_result: None,
            call_details: None,
            error_type: None,
            error_message: None,
            error: None,
            error_list: None,
        }
    }

    /// The failure form: adds `ErrorType` and `ErrorMessage`, and the combined `Error` string
    /// for the two actions whose documented failures carry it.
    pub fn failed(mut self, error_type: &str, message: &str) -> Self {
        if matches!(
            self.r#type.as_str(),
            "JoinChimeMeeting" | "StartCallRecording"
        ) {
            self.error = Some(format!("{error_type}: {message}"));
        }
        if self.r#type == "ModifyChimeMeetingAttendees" && self.error_list.is_none() {
            self.error_list = Some(Vec::new());
        }
        self.error_type = Some(error_type.to_owned());
        self.error_message = Some(message.to_owned());
        self
    }

    /// A string parameter, e.g. `CallId`.
    pub fn parameter_str(&self, name: &str) -> Option<&str> {
        self.parameters.get(name).and_then(Value::as_str)
    }
}

/// An invocation event (§2.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InvocationEvent {
    /// `"1.0"`.
    pub schema_version: String,
    /// Per-transaction invocation counter, from 1.
    pub sequence: u64,
    /// What happened.
    pub invocation_event_type: EventType,
    /// The action that caused the invocation, where the event type has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_data: Option<ActionData>,
    /// Why the previous response was rejected (INVALID_LAMBDA_RESPONSE, top level).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// Text for `ErrorType`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// The transaction.
    pub call_details: CallDetails,
}

impl InvocationEvent {
    /// An event of `kind` for `call_details`, schema `1.0`, without action data.
    pub fn new(kind: EventType, sequence: u64, call_details: CallDetails) -> Self {
        Self {
            schema_version: SCHEMA_VERSION.to_owned(),
            sequence,
            invocation_event_type: kind,
            action_data: None,
            error_type: None,
            error_message: None,
            call_details,
        }
    }

    /// Adds `ActionData`.
    pub fn with_action_data(mut self, data: ActionData) -> Self {
        self.action_data = Some(data);
        self
    }

    /// An `INVALID_LAMBDA_RESPONSE` event naming why the last response was refused.
    pub fn invalid_response(
        sequence: u64,
        call_details: CallDetails,
        error_type: &str,
        message: &str,
    ) -> Self {
        let mut event = Self::new(EventType::InvalidLambdaResponse, sequence, call_details);
        event.error_type = Some(error_type.to_owned());
        event.error_message = Some(message.to_owned());
        event
    }

    /// The digits in `ActionData.ReceivedDigits`, if any.
    pub fn received_digits(&self) -> Option<&str> {
        self.action_data.as_ref()?.received_digits.as_deref()
    }

    /// The `Type` of `ActionData`, if any.
    pub fn action_type(&self) -> Option<&str> {
        self.action_data.as_ref().map(|d| d.r#type.as_str())
    }

    /// The leg this event is about: the one named in `ActionData.Parameters.CallId`, else LEG-A.
    pub fn invoking_participant(&self) -> Option<&Participant> {
        let named = self
            .action_data
            .as_ref()
            .and_then(|d| d.parameter_str("CallId"))
            .and_then(|id| {
                self.call_details
                    .participants
                    .iter()
                    .find(|p| p.call_id == id)
            });
        named.or_else(|| self.call_details.participant(ParticipantTag::LegA))
    }

    /// The call's string arguments: `ActionData.Parameters.Arguments` of `NEW_OUTBOUND_CALL`
    /// (the request's `ArgumentsMap`) and of `CALL_UPDATE_REQUESTED`; none for other events.
    pub fn arguments(&self) -> impl Iterator<Item = (&str, &str)> {
        self.action_data
            .as_ref()
            .and_then(|d| d.parameters.get("Arguments"))
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
    }

    /// One of [`InvocationEvent::arguments`].
    pub fn argument(&self, key: &str) -> Option<&str> {
        self.arguments().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// A transaction attribute.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.call_details
            .transaction_attributes
            .as_ref()?
            .get(key)
            .map(String::as_str)
    }
}
