//! Error classes of the contract and the typed errors of response validation.

use crate::prelude::*;
use core::fmt;
use thiserror::Error;

/// `ErrorType` values of `ACTION_FAILED` events (§3.0 and per action).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionErrorType {
    /// A parameter has a wrong type, value or combination.
    InvalidActionParameter,
    /// A required parameter is missing (also used for Speak text over 1,000 characters).
    MissingRequiredActionParameter,
    /// An audio source is malformed or cannot be read.
    InvalidAudioSource,
    /// The runtime failed.
    SystemException,
    /// A bridged leg did not answer.
    CallNotAnswered,
    /// Digit collection ended with input that did not satisfy the action.
    InvalidDigitsReceived,
    /// Digit collection ended with no input at all.
    InputTimeLimitExceeded,
    /// A backend (TTS, storage) refused access.
    AccessDenied,
    /// A rate limit was hit.
    ActionExecutionThrottled,
    /// A bot does not exist.
    ResourceNotFound,
    /// A bot refused access.
    ResourceAccessDenied,
}

impl ActionErrorType {
    /// The wire spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidActionParameter => "InvalidActionParameter",
            Self::MissingRequiredActionParameter => "MissingRequiredActionParameter",
            Self::InvalidAudioSource => "InvalidAudioSource",
            Self::SystemException => "SystemException",
            Self::CallNotAnswered => "CallNotAnswered",
            Self::InvalidDigitsReceived => "InvalidDigitsReceived",
            Self::InputTimeLimitExceeded => "InputTimeLimitExceeded",
            Self::AccessDenied => "AccessDenied",
            Self::ActionExecutionThrottled => "ActionExecutionThrottled",
            Self::ResourceNotFound => "ResourceNotFound",
            Self::ResourceAccessDenied => "ResourceAccessDenied",
        }
    }
}

impl fmt::Display for ActionErrorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `ErrorType` values of `INVALID_LAMBDA_RESPONSE` events (§1.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvalidResponseType {
    /// `SchemaVersion` missing or different, or the response is not the response object itself.
    SchemaVersionMismatch,
    /// The response could not be read as a response.
    InvalidResponseFormat,
    /// An action `Type` the runtime does not know.
    UnsupportedAction,
    /// More actions than allowed.
    TooManyActions,
    /// Nothing was returned.
    EmptyResponse,
    /// Too many transaction attributes.
    TransactionAttributesInvalidMapSize,
    /// Transaction attributes too large.
    TransactionAttributesInvalidSize,
}

impl InvalidResponseType {
    /// The wire spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::SchemaVersionMismatch => "SchemaVersionMismatch",
            Self::InvalidResponseFormat => "InvalidResponseFormat",
            Self::UnsupportedAction => "UnsupportedAction",
            Self::TooManyActions => "TooManyActions",
            Self::EmptyResponse => "EmptyResponse",
            Self::TransactionAttributesInvalidMapSize => "TransactionAttributesInvalidMapSize",
            Self::TransactionAttributesInvalidSize => "TransactionAttributesInvalidSize",
        }
    }
}

impl fmt::Display for InvalidResponseType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The rule an action broke.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Rule {
    /// The action is not a JSON object.
    #[error("an action must be an object with `Type` and `Parameters`")]
    NotAnObject,
    /// No `Type`, or not a string.
    #[error("`Type` is missing or not a string")]
    MissingType,
    /// `Type` names no action.
    #[error("unsupported action name `{0}`")]
    UnsupportedAction(String),
    /// A required parameter is absent.
    #[error("required parameter is missing")]
    Missing,
    /// A parameter has the wrong JSON type or an unreadable value.
    #[error("{0}")]
    WrongType(String),
    /// A value outside its enumeration.
    #[error("{0}")]
    NotAllowed(String),
    /// An integer outside its range.
    #[error("{value} is out of range {min}..={max}")]
    OutOfRange {
        /// The value given.
        value: i64,
        /// Smallest allowed.
        min: i64,
        /// Largest allowed.
        max: i64,
    },
    /// An empty string or list where content is needed.
    #[error("must not be empty")]
    Empty,
    /// Too long a string or list.
    #[error("is {len} long; at most {max} allowed")]
    TooLong {
        /// Length given (characters or items).
        len: usize,
        /// Largest allowed.
        max: usize,
    },
    /// Speak text over the limit (the contract files this under a missing-parameter error).
    #[error("text is {len} characters; limited to {max}")]
    TextTooLong {
        /// Characters given.
        len: usize,
        /// Largest allowed.
        max: usize,
    },
    /// Not a single DTMF digit.
    #[error("{0:?} is not one of 0-9, #, *")]
    NotADigit(String),
    /// A character not allowed in a `SendDigits` string.
    #[error("{0:?} is not one of 0-9 * # A B C D ,")]
    BadDigitString(char),
    /// An `InputDigitsRegex` that does not compile.
    #[error("invalid regular expression: {0}")]
    BadRegex(String),
    /// Not an E.164 number.
    #[error("{0:?} is not an E.164 number")]
    NotE164(String),
    /// A string that does not match its documented pattern.
    #[error("{value:?} does not match {pattern}")]
    Pattern {
        /// The value given.
        value: String,
        /// What it should look like.
        pattern: &'static str,
    },
    /// `Endpoints` does not have exactly one element.
    #[error("exactly one endpoint is required, got {0}")]
    EndpointCount(usize),
    /// `Arn` given for a PSTN endpoint.
    #[error("`Arn` must be unset for a PSTN endpoint")]
    ArnNotAllowed,
    /// A SIP header the contract does not let a handler set.
    #[error(
        "invalid SIP header {0:?}: only X-, User-to-User and Diversion, not reserved prefixes"
    )]
    SipHeaderName(String),
    /// An audio source with the wrong type or empty location.
    #[error("audio source must be Type S3 with a non-empty BucketName and Key")]
    AudioSource,
    /// `MinNumberOfDigits` above `MaxNumberOfDigits`.
    #[error("MinNumberOfDigits {min} exceeds MaxNumberOfDigits {max}")]
    MinAboveMax {
        /// Minimum given.
        min: i64,
        /// Maximum given.
        max: i64,
    },
    /// `FlushDigitsDurationInMilliseconds` not above `InBetweenDigitsDurationInMilliseconds`.
    #[error("FlushDigitsDurationInMilliseconds {flush} must exceed InBetweenDigitsDurationInMilliseconds {in_between}")]
    FlushNotAfterInBetween {
        /// Flush window.
        flush: i64,
        /// Gap.
        in_between: i64,
    },
    /// A leg this action cannot run on.
    #[error("only LEG-A is allowed for this action")]
    OnlyLegA,
    /// SSML text that does not start with `<speak>`.
    #[error("SSML text must be enclosed in <speak>…</speak>")]
    NotSsml,
    /// Welcome messages without `DialogAction.Type = ElicitIntent`.
    #[error("WelcomeMessages require SessionState.DialogAction.Type = ElicitIntent")]
    WelcomeNeedsElicitIntent,
    /// The same once-per-leg action twice in one list.
    #[error("duplicates action {0} (once per leg per list)")]
    Duplicate(usize),
    /// An action that cannot run together with an earlier one in the same list.
    #[error("conflicts with action {earlier}: {why}")]
    Conflict {
        /// Index of the earlier action.
        earlier: usize,
        /// Why they conflict.
        why: &'static str,
    },
}

impl Rule {
    /// Where this rule sends the call: an envelope-level rejection (`INVALID_LAMBDA_RESPONSE`)
    /// or an `ACTION_FAILED` for the action when it runs.
    pub fn disposition(&self) -> Disposition {
        match self {
            Self::NotAnObject | Self::MissingType => {
                Disposition::InvalidResponse(InvalidResponseType::InvalidResponseFormat)
            }
            Self::UnsupportedAction(_) => {
                Disposition::InvalidResponse(InvalidResponseType::UnsupportedAction)
            }
            Self::Missing | Self::TextTooLong { .. } => {
                Disposition::ActionFailed(ActionErrorType::MissingRequiredActionParameter)
            }
            Self::AudioSource => Disposition::ActionFailed(ActionErrorType::InvalidAudioSource),
            _ => Disposition::ActionFailed(ActionErrorType::InvalidActionParameter),
        }
    }
}

/// What a validation failure turns into during a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Re-invoke with `INVALID_LAMBDA_RESPONSE` and this `ErrorType`.
    InvalidResponse(InvalidResponseType),
    /// Report `ACTION_FAILED` with this `ErrorType` when the action's turn comes.
    ActionFailed(ActionErrorType),
}

impl Disposition {
    /// The contract's `ErrorType` string.
    pub fn error_type(self) -> &'static str {
        match self {
            Self::InvalidResponse(t) => t.as_str(),
            Self::ActionFailed(t) => t.as_str(),
        }
    }
}

/// A broken rule in one action, with the JSON path of the field.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("`{field}`: {rule}")]
pub struct ActionError {
    /// Path of the offending field, e.g. `Parameters.Endpoints[0].Uri`.
    pub field: String,
    /// The rule broken.
    pub rule: Rule,
}

/// Why a handler response was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ResponseError {
    /// Over the body size limit.
    #[error("response is {size} bytes; at most {limit} are accepted")]
    TooLarge {
        /// Bytes received.
        size: usize,
        /// Limit.
        limit: usize,
    },
    /// Not UTF-8.
    #[error("response is not valid UTF-8 (invalid byte at offset {offset})")]
    InvalidUtf8 {
        /// Byte offset of the first invalid sequence.
        offset: usize,
    },
    /// Empty, blank or `null`.
    #[error("response is blank or empty; it must contain at least SchemaVersion")]
    Empty,
    /// Not parseable JSON.
    #[error("response is not valid JSON: {0}")]
    NotJson(String),
    /// JSON, but not an object.
    #[error("response must be a JSON object, got {0}")]
    NotAnObject(&'static str),
    /// An HTTP proxy envelope (`statusCode`/`body`) instead of the response itself.
    #[error(
        "response is an HTTP proxy object with statusCode/body; return the response object itself"
    )]
    ProxyEnvelope,
    /// No `SchemaVersion`.
    #[error("response has no SchemaVersion string")]
    MissingSchemaVersion,
    /// `SchemaVersion` differs from the event's.
    #[error("SchemaVersion {found:?} does not match the event's {expected:?}")]
    SchemaVersionMismatch {
        /// The event's version.
        expected: String,
        /// The response's version.
        found: String,
    },
    /// `Actions` not an array.
    #[error("`Actions` must be an array, got {0}")]
    ActionsNotArray(&'static str),
    /// Too many actions.
    #[error("{count} actions in one response; at most {limit} are allowed")]
    TooManyActions {
        /// Actions given.
        count: usize,
        /// Limit.
        limit: usize,
    },
    /// `TransactionAttributes` not an object of strings.
    #[error("`TransactionAttributes{path}` must be an object of string values, got {found}")]
    AttributesNotStrings {
        /// Offending member (empty for the map itself).
        path: String,
        /// JSON type found.
        found: &'static str,
    },
    /// Too many transaction attributes.
    #[error("Transaction Attributes has too many mappings ({count}). Maximum number of mappings is {limit}")]
    TooManyAttributes {
        /// Pairs given.
        count: usize,
        /// Limit.
        limit: usize,
    },
    /// Transaction attributes over the size limit.
    #[error("Transaction Attributes are {size} bytes serialized; at most {limit} are allowed")]
    AttributesTooLarge {
        /// Serialized size.
        size: usize,
        /// Limit.
        limit: usize,
    },
    /// A key or value over the per-entry limit.
    #[error("Transaction Attribute {key:?} has a key or value over {limit} characters")]
    AttributeTooLong {
        /// The key.
        key: String,
        /// Limit.
        limit: usize,
    },
    /// One action broke a rule.
    #[error("action {index} ({}): {error}", action_type.as_deref().unwrap_or("no Type"))]
    Action {
        /// Zero-based index in `Actions`.
        index: usize,
        /// The action's `Type`, when it had one.
        action_type: Option<String>,
        /// Field and rule.
        error: ActionError,
    },
}

impl ResponseError {
    /// What the call engine does with this failure.
    pub fn disposition(&self) -> Disposition {
        use InvalidResponseType as T;
        let t = match self {
            Self::Empty => T::EmptyResponse,
            Self::TooLarge { .. }
            | Self::InvalidUtf8 { .. }
            | Self::NotJson(_)
            | Self::NotAnObject(_)
            | Self::ActionsNotArray(_)
            | Self::AttributesNotStrings { .. } => T::InvalidResponseFormat,
            Self::ProxyEnvelope
            | Self::MissingSchemaVersion
            | Self::SchemaVersionMismatch { .. } => T::SchemaVersionMismatch,
            Self::TooManyActions { .. } => T::TooManyActions,
            Self::TooManyAttributes { .. } => T::TransactionAttributesInvalidMapSize,
            Self::AttributesTooLarge { .. } | Self::AttributeTooLong { .. } => {
                T::TransactionAttributesInvalidSize
            }
            Self::Action { error, .. } => return error.rule.disposition(),
        };
        Disposition::InvalidResponse(t)
    }
}

/// The JSON type name of `v`, for error messages.
pub(crate) fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
