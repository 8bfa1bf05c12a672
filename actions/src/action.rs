//! Actions a handler returns, one typed parameter struct per action (contract §3).
//!
//! Optional parameters are `Option`s so that a parsed action serializes back to exactly what the
//! handler sent; the defaults the contract gives are exposed by accessor methods.

use crate::common::{
    AudioSource, CallRecordingDestination, Engine, ParticipantTag, RecordingDestination,
    SipHeaders, SpeechParameters, TextType,
};
use crate::lenient::{Flag, Int};
use crate::prelude::*;
use alloc::collections::BTreeMap;
use serde::{Deserialize, Serialize};

/// One action: `{"Type": "<name>", "Parameters": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "Type", content = "Parameters")]
#[allow(clippy::large_enum_variant)]
pub enum Action {
    /// Dial a second leg and bridge it with the first.
    CallAndBridge(CallAndBridge),
    /// Release a leg.
    Hangup(Hangup),
    /// Join a leg to a meeting.
    JoinChimeMeeting(JoinChimeMeeting),
    /// Mute or unmute meeting attendees.
    ModifyChimeMeetingAttendees(ModifyChimeMeetingAttendees),
    /// Silence for a while.
    Pause(Pause),
    /// Play an audio file.
    PlayAudio(PlayAudio),
    /// Play a prompt and collect digits.
    PlayAudioAndGetDigits(PlayAudioAndGetDigits),
    /// Arm a background digit listener.
    ReceiveDigits(ReceiveDigits),
    /// Record one leg to a file.
    RecordAudio(RecordAudio),
    /// Send DTMF on a leg.
    SendDigits(SendDigits),
    /// Speak text.
    Speak(Speak),
    /// Speak a prompt and collect digits.
    SpeakAndGetDigits(SpeakAndGetDigits),
    /// Hand the leg to a conversational bot.
    StartBotConversation(StartBotConversation),
    /// Toggle noise suppression.
    VoiceFocus(VoiceFocus),
    /// Start recording a leg.
    StartCallRecording(StartCallRecording),
    /// Stop recording a leg.
    StopCallRecording(CallRecordingControl),
    /// Pause recording a leg.
    PauseCallRecording(CallRecordingControl),
    /// Resume recording a leg.
    ResumeCallRecording(CallRecordingControl),
}

/// Every action name the contract defines, in the order of contract §3.
pub const ACTION_NAMES: [&str; 18] = [
    "CallAndBridge",
    "Hangup",
    "JoinChimeMeeting",
    "ModifyChimeMeetingAttendees",
    "Pause",
    "PlayAudio",
    "PlayAudioAndGetDigits",
    "ReceiveDigits",
    "RecordAudio",
    "SendDigits",
    "Speak",
    "SpeakAndGetDigits",
    "StartBotConversation",
    "VoiceFocus",
    "StartCallRecording",
    "StopCallRecording",
    "PauseCallRecording",
    "ResumeCallRecording",
];

impl Action {
    /// The wire name of the action (`"PlayAudio"`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Self::CallAndBridge(_) => "CallAndBridge",
            Self::Hangup(_) => "Hangup",
            Self::JoinChimeMeeting(_) => "JoinChimeMeeting",
            Self::ModifyChimeMeetingAttendees(_) => "ModifyChimeMeetingAttendees",
            Self::Pause(_) => "Pause",
            Self::PlayAudio(_) => "PlayAudio",
            Self::PlayAudioAndGetDigits(_) => "PlayAudioAndGetDigits",
            Self::ReceiveDigits(_) => "ReceiveDigits",
            Self::RecordAudio(_) => "RecordAudio",
            Self::SendDigits(_) => "SendDigits",
            Self::Speak(_) => "Speak",
            Self::SpeakAndGetDigits(_) => "SpeakAndGetDigits",
            Self::StartBotConversation(_) => "StartBotConversation",
            Self::VoiceFocus(_) => "VoiceFocus",
            Self::StartCallRecording(_) => "StartCallRecording",
            Self::StopCallRecording(_) => "StopCallRecording",
            Self::PauseCallRecording(_) => "PauseCallRecording",
            Self::ResumeCallRecording(_) => "ResumeCallRecording",
        }
    }

    /// The leg the action names explicitly: its `CallId`, else its `ParticipantTag`.
    /// `None` means "the leg whose event caused this invocation".
    pub fn target(&self) -> LegRef<'_> {
        let (call_id, tag) = match self {
            Self::CallAndBridge(_) => (None, None),
            Self::Hangup(p) => (p.call_id.as_deref(), p.participant_tag),
            Self::JoinChimeMeeting(p) => (p.call_id.as_deref(), p.participant_tag),
            Self::ModifyChimeMeetingAttendees(p) => (p.call_id.as_deref(), p.participant_tag),
            Self::Pause(p) => (p.call_id.as_deref(), p.participant_tag),
            Self::PlayAudio(p) => (p.call_id.as_deref(), p.participant_tag),
            Self::PlayAudioAndGetDigits(p) => (p.call_id.as_deref(), p.participant_tag),
            Self::ReceiveDigits(p) => (p.call_id.as_deref(), p.participant_tag),
            Self::RecordAudio(p) => (p.call_id.as_deref(), p.participant_tag),
            Self::SendDigits(p) => (p.call_id.as_deref(), p.participant_tag),
            Self::Speak(p) => (p.call_id.as_deref(), p.participant_tag),
            Self::SpeakAndGetDigits(p) => (p.call_id.as_deref(), p.participant_tag),
            Self::StartBotConversation(p) => (p.call_id.as_deref(), p.participant_tag),
            Self::VoiceFocus(p) => (p.call_id.as_deref(), p.participant_tag),
            Self::StartCallRecording(p) => (p.call_id.as_deref(), p.participant_tag),
            Self::StopCallRecording(p)
            | Self::PauseCallRecording(p)
            | Self::ResumeCallRecording(p) => (p.call_id.as_deref(), p.participant_tag),
        };
        match (call_id, tag) {
            (Some(id), _) => LegRef::CallId(id),
            (None, Some(tag)) => LegRef::Tag(tag),
            (None, None) => LegRef::Invoking,
        }
    }

    /// Whether an `UpdateSipMediaApplicationCall` may stop this action while it runs (§1.6).
    pub fn is_interruptible(&self) -> bool {
        matches!(
            self,
            Self::PlayAudio(_) | Self::RecordAudio(_) | Self::Pause(_)
        )
    }

    /// Whether success of this action is reported at once even with actions queued behind it
    /// (§1.5 rule 1: the action produces data the handler needs).
    pub fn reports_on_success(&self) -> bool {
        matches!(
            self,
            Self::CallAndBridge(_)
                | Self::Hangup(_)
                | Self::JoinChimeMeeting(_)
                | Self::ModifyChimeMeetingAttendees(_)
                | Self::PlayAudioAndGetDigits(_)
                | Self::SpeakAndGetDigits(_)
                | Self::RecordAudio(_)
                | Self::ReceiveDigits(_)
                | Self::StartBotConversation(_)
                | Self::StartCallRecording(_)
        )
    }
}

/// How an action names its leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegRef<'a> {
    /// By `CallId`.
    CallId(&'a str),
    /// By `ParticipantTag`.
    Tag(ParticipantTag),
    /// Not named: the leg whose event caused the invocation.
    Invoking,
}

crate::lenient::wire_enum! {
    /// Kind of bridge endpoint.
    pub enum BridgeEndpointType {
        /// A phone number.
        Pstn = "PSTN",
        /// A voice connector or voice connector group.
        Aws = "AWS",
    }
}

/// The one endpoint a `CallAndBridge` dials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BridgeEndpoint {
    /// `PSTN` or `AWS`.
    pub bridge_endpoint_type: BridgeEndpointType,
    /// E.164 number (PSTN) or Request-URI user part (AWS); a JSON number is read as its digits.
    #[serde(deserialize_with = "crate::lenient::text_or_number")]
    pub uri: String,
    /// Voice connector (group) ARN; AWS endpoints only.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_string"
    )]
    pub arn: Option<String>,
}

/// `CallAndBridge` parameters (§3.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CallAndBridge {
    /// Seconds to wait for an answer, 1–120, default 30.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_int"
    )]
    pub call_timeout_seconds: Option<Int>,
    /// Caller ID presented on the new leg (E.164); a JSON number is read as its digits.
    #[serde(deserialize_with = "crate::lenient::text_or_number")]
    pub caller_id_number: String,
    /// Exactly one endpoint.
    pub endpoints: Vec<BridgeEndpoint>,
    /// Played to the caller while the new leg rings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ringback_tone: Option<AudioSource>,
    /// `X-`, `User-to-User` and `Diversion` headers for the new leg's INVITE.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::common::optional_unique_map"
    )]
    pub sip_headers: Option<SipHeaders>,
}

impl CallAndBridge {
    /// The answer timeout, defaulting to 30 s.
    pub fn call_timeout_seconds(&self) -> i64 {
        self.call_timeout_seconds.map_or(30, Int::get)
    }
}

/// `Hangup` parameters (§3.2).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Hangup {
    /// Leg to release.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_string"
    )]
    pub call_id: Option<String>,
    /// Leg to release when `CallId` is absent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_enum"
    )]
    pub participant_tag: Option<ParticipantTag>,
    /// `0` (normal clearing, default), `480` or `486`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_int"
    )]
    pub sip_response_code: Option<Int>,
}

impl Hangup {
    /// The SIP cause, defaulting to 0 (normal clearing).
    pub fn sip_response_code(&self) -> i64 {
        self.sip_response_code.map_or(0, Int::get)
    }
}

/// `JoinChimeMeeting` parameters (§3.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JoinChimeMeeting {
    /// Attendee join token.
    pub join_token: String,
    /// Leg to join.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_string"
    )]
    pub call_id: Option<String>,
    /// Only `LEG-A`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_enum"
    )]
    pub participant_tag: Option<ParticipantTag>,
    /// Meeting to join.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_string"
    )]
    pub meeting_id: Option<String>,
}

crate::lenient::wire_enum! {
    /// `Mute` or `Unmute`.
    pub enum AttendeeOperation {
        /// Mute the attendees.
        Mute = "Mute",
        /// Unmute the attendees.
        Unmute = "Unmute",
    }
}

/// `ModifyChimeMeetingAttendees` parameters (§3.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ModifyChimeMeetingAttendees {
    /// `Mute` or `Unmute`.
    pub operation: AttendeeOperation,
    /// Meeting the invoking leg is in.
    pub meeting_id: String,
    /// 1–100 attendee ids.
    pub attendee_list: Vec<String>,
    /// Meeting leg.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_string"
    )]
    pub call_id: Option<String>,
    /// Meeting leg when `CallId` is absent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_enum"
    )]
    pub participant_tag: Option<ParticipantTag>,
}

/// `Pause` parameters (§3.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Pause {
    /// Length of the silence, > 0.
    pub duration_in_milliseconds: Int,
    /// Leg.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_string"
    )]
    pub call_id: Option<String>,
    /// Leg when `CallId` is absent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_enum"
    )]
    pub participant_tag: Option<ParticipantTag>,
}

/// `PlayAudio` parameters (§3.6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PlayAudio {
    /// Audio to play.
    pub audio_source: AudioSource,
    /// Leg.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_string"
    )]
    pub call_id: Option<String>,
    /// Leg when `CallId` is absent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_enum"
    )]
    pub participant_tag: Option<ParticipantTag>,
    /// Digits that stop playback.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_digit_list"
    )]
    pub playback_terminators: Option<Vec<String>>,
    /// Times to play, > 0, default 1.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_int"
    )]
    pub repeat: Option<Int>,
}

impl PlayAudio {
    /// Times to play, defaulting to 1.
    pub fn repeat(&self) -> i64 {
        self.repeat.map_or(1, Int::get)
    }
}

/// The wait per attempt of a digit collection that gives no `RepeatDurationInMilliseconds`.
/// The contract marks it required, but handlers written for the hosted service leave it out
/// and run there; 5 s is the wait a caller is commonly given to start typing.
pub const DEFAULT_REPEAT_DURATION_MS: i64 = 5_000;

/// Digit-collection parameters shared by `PlayAudioAndGetDigits` and `SpeakAndGetDigits`.
pub trait DigitCollection {
    /// `MinNumberOfDigits`, default 0.
    fn min_digits(&self) -> i64;
    /// `MaxNumberOfDigits`, default 128.
    fn max_digits(&self) -> i64;
    /// `TerminatorDigits`, default `["#"]`.
    fn terminators(&self) -> Vec<String>;
    /// `RepeatDurationInMilliseconds`, default [`DEFAULT_REPEAT_DURATION_MS`].
    fn repeat_duration_ms(&self) -> i64;
    /// `InBetweenDigitsDurationInMilliseconds`, default = `RepeatDurationInMilliseconds`.
    fn in_between_ms(&self) -> i64;
    /// `Repeat` (total attempts), default 1.
    fn attempts(&self) -> i64;
    /// `InputDigitsRegex`, if given.
    fn input_digits_regex(&self) -> Option<&str>;
    /// `TerminatorDigits` as given (no default applied).
    fn terminator_digits(&self) -> Option<&[String]>;
}

macro_rules! digit_collection {
    ($t:ty) => {
        impl DigitCollection for $t {
            fn min_digits(&self) -> i64 {
                self.min_number_of_digits.map_or(0, Int::get)
            }
            fn max_digits(&self) -> i64 {
                self.max_number_of_digits.map_or(128, Int::get)
            }
            fn terminators(&self) -> Vec<String> {
                self.terminator_digits
                    .clone()
                    .unwrap_or_else(|| vec!["#".to_owned()])
            }
            fn repeat_duration_ms(&self) -> i64 {
                self.repeat_duration_in_milliseconds
                    .map_or(DEFAULT_REPEAT_DURATION_MS, Int::get)
            }
            fn in_between_ms(&self) -> i64 {
                self.in_between_digits_duration_in_milliseconds
                    .map_or(self.repeat_duration_ms(), Int::get)
            }
            fn attempts(&self) -> i64 {
                self.repeat.map_or(1, Int::get)
            }
            fn input_digits_regex(&self) -> Option<&str> {
                self.input_digits_regex.as_deref()
            }
            fn terminator_digits(&self) -> Option<&[String]> {
                self.terminator_digits.as_deref()
            }
        }
    };
}

/// `PlayAudioAndGetDigits` parameters (§3.7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PlayAudioAndGetDigits {
    /// Prompt.
    pub audio_source: AudioSource,
    /// Played after bad input, before re-prompting; none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_audio_source: Option<AudioSource>,
    /// Time allowed per attempt; [`DEFAULT_REPEAT_DURATION_MS`] when absent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_int"
    )]
    pub repeat_duration_in_milliseconds: Option<Int>,
    /// Leg.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_string"
    )]
    pub call_id: Option<String>,
    /// Leg when `CallId` is absent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_enum"
    )]
    pub participant_tag: Option<ParticipantTag>,
    /// Pattern the digits must match.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_string"
    )]
    pub input_digits_regex: Option<String>,
    /// At least this many digits, default 0.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_int"
    )]
    pub min_number_of_digits: Option<Int>,
    /// At most this many digits, default 128.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_int"
    )]
    pub max_number_of_digits: Option<Int>,
    /// Digits that end input, default `#`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_digit_list"
    )]
    pub terminator_digits: Option<Vec<String>>,
    /// Longest gap between digits.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_int"
    )]
    pub in_between_digits_duration_in_milliseconds: Option<Int>,
    /// Total attempts, default 1.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_int"
    )]
    pub repeat: Option<Int>,
}
digit_collection!(PlayAudioAndGetDigits);

/// `ReceiveDigits` parameters (§3.8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReceiveDigits {
    /// Pattern that triggers `DIGITS_RECEIVED`.
    pub input_digits_regex: String,
    /// Gap after which the buffer is checked.
    pub in_between_digits_duration_in_milliseconds: Int,
    /// Window after the first digit after which the buffer is flushed; > InBetween.
    pub flush_digits_duration_in_milliseconds: Int,
    /// Leg.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_string"
    )]
    pub call_id: Option<String>,
    /// Leg when `CallId` is absent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_enum"
    )]
    pub participant_tag: Option<ParticipantTag>,
}

/// `RecordAudio` parameters (§3.9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RecordAudio {
    /// Where the recording goes.
    pub recording_destination: RecordingDestination,
    /// Digits that end the recording; none when absent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_digit_list"
    )]
    pub recording_terminators: Option<Vec<String>>,
    /// Leg (not together with `ParticipantTag`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_string"
    )]
    pub call_id: Option<String>,
    /// Leg (not together with `CallId`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_enum"
    )]
    pub participant_tag: Option<ParticipantTag>,
    /// Longest recording, > 0.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_int"
    )]
    pub duration_in_seconds: Option<Int>,
    /// Silence that ends the recording, 1–1000.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_int"
    )]
    pub silence_duration_in_seconds: Option<Int>,
    /// Level below which audio counts as silence, 1–1000, default 200.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_int"
    )]
    pub silence_threshold: Option<Int>,
}

/// `SendDigits` parameters (§3.10).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SendDigits {
    /// Leg; the invoking leg when neither this nor `ParticipantTag` names one.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_string"
    )]
    pub call_id: Option<String>,
    /// Leg when `CallId` is absent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_enum"
    )]
    pub participant_tag: Option<ParticipantTag>,
    /// Up to 50 of `0-9 * # A-D ,` (`,` pauses 500 ms); a JSON number is read as its digits.
    #[serde(deserialize_with = "crate::lenient::text_or_number")]
    pub digits: String,
    /// Tone length, 50–24000 ms, default 250.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_int"
    )]
    pub tone_duration_in_milliseconds: Option<Int>,
}

/// `Speak` parameters (§3.11).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Speak {
    /// Leg; the invoking leg when neither this nor `ParticipantTag` names one.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_string"
    )]
    pub call_id: Option<String>,
    /// Leg when `CallId` is absent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_enum"
    )]
    pub participant_tag: Option<ParticipantTag>,

    /// Text or SSML, at most 1,000 characters.
    pub text: String,
    /// `standard` (default) or `neural`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_enum"
    )]
    pub engine: Option<Engine>,
    /// Language code.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_string"
    )]
    pub language_code: Option<String>,
    /// `text` (default) or `ssml`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_enum"
    )]
    pub text_type: Option<TextType>,
    /// Voice, `Joanna` by default.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_string"
    )]
    pub voice_id: Option<String>,
}

/// `SpeakAndGetDigits` parameters (§3.12).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SpeakAndGetDigits {
    /// Leg; the invoking leg when neither this nor `ParticipantTag` names one.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_string"
    )]
    pub call_id: Option<String>,
    /// Leg when `CallId` is absent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_enum"
    )]
    pub participant_tag: Option<ParticipantTag>,

    /// Prompt.
    pub speech_parameters: SpeechParameters,
    /// Spoken after bad input, before re-prompting; none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_speech_parameters: Option<SpeechParameters>,
    /// Time allowed per attempt; [`DEFAULT_REPEAT_DURATION_MS`] when absent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_int"
    )]
    pub repeat_duration_in_milliseconds: Option<Int>,
    /// Pattern the digits must match.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_string"
    )]
    pub input_digits_regex: Option<String>,
    /// At least this many digits, default 0.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_int"
    )]
    pub min_number_of_digits: Option<Int>,
    /// At most this many digits, default 128.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_int"
    )]
    pub max_number_of_digits: Option<Int>,
    /// Digits that end input, default `#`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_digit_list"
    )]
    pub terminator_digits: Option<Vec<String>>,
    /// Longest gap between digits.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_int"
    )]
    pub in_between_digits_duration_in_milliseconds: Option<Int>,
    /// Total attempts, default 1.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_int"
    )]
    pub repeat: Option<Int>,
}
digit_collection!(SpeakAndGetDigits);

crate::lenient::wire_enum! {
    /// Bot dialog action type.
    pub enum DialogActionType {
        /// Let the bot decide.
        Delegate = "Delegate",
        /// Ask the caller for an intent (needed for welcome messages).
        ElicitIntent = "ElicitIntent",
    }
}

/// `Configuration.SessionState.DialogAction`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DialogAction {
    /// `Delegate` or `ElicitIntent`.
    pub r#type: DialogActionType,
}

/// `Configuration.SessionState`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SessionState {
    /// Attributes handed to the bot.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::common::optional_unique_map"
    )]
    pub session_attributes: Option<BTreeMap<String, String>>,
    /// How the conversation starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialog_action: Option<DialogAction>,
}

crate::lenient::wire_enum! {
    /// Content type of a welcome message.
    pub enum MessageContentType {
        /// Plain text.
        PlainText = "PlainText",
        /// SSML.
        Ssml = "SSML",
    }
}

/// One welcome message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WelcomeMessage {
    /// Text.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_string"
    )]
    pub content: Option<String>,
    /// `PlainText` or `SSML`.
    pub content_type: MessageContentType,
}

/// `StartBotConversation.Configuration`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BotConfiguration {
    /// Initial session state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_state: Option<SessionState>,
    /// Messages the bot opens with; need `DialogAction.Type = ElicitIntent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub welcome_messages: Option<Vec<WelcomeMessage>>,
}

/// `StartBotConversation` parameters (§3.13).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StartBotConversation {
    /// Bot alias ARN.
    pub bot_alias_arn: String,
    /// Leg.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_string"
    )]
    pub call_id: Option<String>,
    /// Only `LEG-A`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_enum"
    )]
    pub participant_tag: Option<ParticipantTag>,
    /// Bot locale, `en_US` by default.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_string"
    )]
    pub locale_id: Option<String>,
    /// At most 10 KB serialized.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration: Option<BotConfiguration>,
}

/// `VoiceFocus` parameters (§3.14).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VoiceFocus {
    /// Enable or disable noise suppression.
    pub enable: Flag,
    /// Leg; the invoking leg when neither this nor `ParticipantTag` names one.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_string"
    )]
    pub call_id: Option<String>,
    /// Leg when `CallId` is absent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_enum"
    )]
    pub participant_tag: Option<ParticipantTag>,
}

crate::lenient::wire_enum! {
    /// Which audio of a leg a call recording captures.
    pub enum Track {
        /// Stereo: incoming left, outgoing right.
        Both = "BOTH",
        /// What the party says.
        Incoming = "INCOMING",
        /// What the party hears.
        Outgoing = "OUTGOING",
    }
}

/// `StartCallRecording` parameters (§3.15).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StartCallRecording {
    /// Leg; the invoking leg when neither this nor `ParticipantTag` names one.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_string"
    )]
    pub call_id: Option<String>,
    /// Leg when `CallId` is absent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_enum"
    )]
    pub participant_tag: Option<ParticipantTag>,
    /// `BOTH` (the default), `INCOMING` or `OUTGOING`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_enum"
    )]
    pub track: Option<Track>,
    /// `bucket[/prefix]`.
    pub destination: CallRecordingDestination,
}

/// `StopCallRecording` / `PauseCallRecording` / `ResumeCallRecording` parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CallRecordingControl {
    /// Leg; the invoking leg when neither this nor `ParticipantTag` names one.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_string"
    )]
    pub call_id: Option<String>,
    /// Leg when `CallId` is absent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_enum"
    )]
    pub participant_tag: Option<ParticipantTag>,
}

impl StartCallRecording {
    /// The track to record, `BOTH` by default.
    pub fn track(&self) -> Track {
        self.track.unwrap_or(Track::Both)
    }
}

impl Speak {
    /// A plain-text `Speak` on `call_id` with the default voice.
    pub fn text(call_id: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            call_id: Some(call_id.into()),
            participant_tag: None,
            text: text.into(),
            engine: None,
            language_code: None,
            text_type: None,
            voice_id: None,
        }
    }
}

macro_rules! into_action {
    ($($variant:ident($t:ty)),* $(,)?) => {
        $(impl From<$t> for Action {
            fn from(p: $t) -> Self {
                Action::$variant(p)
            }
        })*
    };
}

into_action!(
    CallAndBridge(CallAndBridge),
    Hangup(Hangup),
    JoinChimeMeeting(JoinChimeMeeting),
    ModifyChimeMeetingAttendees(ModifyChimeMeetingAttendees),
    Pause(Pause),
    PlayAudio(PlayAudio),
    PlayAudioAndGetDigits(PlayAudioAndGetDigits),
    ReceiveDigits(ReceiveDigits),
    RecordAudio(RecordAudio),
    SendDigits(SendDigits),
    Speak(Speak),
    SpeakAndGetDigits(SpeakAndGetDigits),
    StartBotConversation(StartBotConversation),
    VoiceFocus(VoiceFocus),
    StartCallRecording(StartCallRecording),
);
