//! Per-action validation rules (contract §3 and §6).
//!
//! Typing a `Parameters` object catches missing and wrongly typed fields; `check` then applies
//! the ranges, patterns and combinations the contract documents, naming the field it refused.

use crate::action::*;
use crate::common::{is_s3, AudioSource, ParticipantTag, SipHeaders, SpeechParameters, TextType};
use crate::error::{ActionError, Rule};
use crate::lenient::Int;
use crate::limits::Limits;
use crate::prelude::*;
use crate::response::ValidatedAction;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

type Checked = Result<(), ActionError>;

fn err(field: impl Into<String>, rule: Rule) -> ActionError {
    ActionError {
        field: field.into(),
        rule,
    }
}

fn decode<T: DeserializeOwned>(params: &Value) -> Result<T, ActionError> {
    // Valid parameters are the common case: decode them without path tracking, and only
    // when that fails decode again with it, to name the field. Both passes see the same
    // value, so they fail alike.
    if let Ok(typed) = T::deserialize(params) {
        return Ok(typed);
    }
    serde_path_to_error::deserialize(params).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        let base = if path == "." || path.is_empty() {
            "Parameters".to_owned()
        } else {
            format!("Parameters.{path}")
        };
        if let Some(name) = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
        {
            // The path points at the object that lacks the field.
            let field = match base.as_str() {
                "Parameters" => format!("Parameters.{name}"),
                _ => format!("{base}.{name}"),
            };
            return err(field, Rule::Missing);
        }
        if message.starts_with("unknown variant") {
            return err(base, Rule::NotAllowed(message));
        }
        err(base, Rule::WrongType(message))
    })
}

/// An action typed from its parameters, or why it could not be, with the parameters either way.
pub(crate) type Typed = Result<(Action, Map<String, Value>), (ActionError, Map<String, Value>)>;

/// Types `parameters` as the action `name` (already known to be a contract action name).
/// The parameters come back either way: a valid action keeps them for its echo, a refused
/// one echoes them in its `ACTION_FAILED`.
pub(crate) fn typed(name: &str, parameters: Map<String, Value>) -> Typed {
    let value = Value::Object(parameters);
    let action = typed_value(name, &value);
    let Value::Object(parameters) = value else {
        unreachable!("constructed as an object above")
    };
    match action {
        Ok(action) => Ok((action, parameters)),
        Err(error) => Err((error, parameters)),
    }
}

fn typed_value(name: &str, value: &Value) -> Result<Action, ActionError> {
    typed_with(name, FromValue(value))
        .unwrap_or_else(|| Err(err("Type", Rule::UnsupportedAction(name.to_owned()))))
}

/// Decodes one action's parameter struct; the dispatch on the action name is shared by the
/// two readers of a response (from a JSON tree, and straight from its text).
pub(crate) trait ParameterDecoder {
    type Error;
    fn decode<T: DeserializeOwned>(self) -> Result<T, Self::Error>;
}

struct FromValue<'v>(&'v Value);

impl ParameterDecoder for FromValue<'_> {
    type Error = ActionError;
    fn decode<T: DeserializeOwned>(self) -> Result<T, ActionError> {
        decode(self.0)
    }
}

/// The action `name` typed by `decoder`; `None` when `name` is not a contract action.
pub(crate) fn typed_with<D: ParameterDecoder>(
    name: &str,
    d: D,
) -> Option<Result<Action, D::Error>> {
    Some(match name {
        "CallAndBridge" => d.decode().map(Action::CallAndBridge),
        "Hangup" => d.decode().map(Action::Hangup),
        "JoinChimeMeeting" => d.decode().map(Action::JoinChimeMeeting),
        "ModifyChimeMeetingAttendees" => d.decode().map(Action::ModifyChimeMeetingAttendees),
        "Pause" => d.decode().map(Action::Pause),
        "PlayAudio" => d.decode().map(Action::PlayAudio),
        "PlayAudioAndGetDigits" => d.decode().map(Action::PlayAudioAndGetDigits),
        "ReceiveDigits" => d.decode().map(Action::ReceiveDigits),
        "RecordAudio" => d.decode().map(Action::RecordAudio),
        "SendDigits" => d.decode().map(Action::SendDigits),
        "Speak" => d.decode().map(Action::Speak),
        "SpeakAndGetDigits" => d.decode().map(Action::SpeakAndGetDigits),
        "StartBotConversation" => d.decode().map(Action::StartBotConversation),
        "VoiceFocus" => d.decode().map(Action::VoiceFocus),
        "StartCallRecording" => d.decode().map(Action::StartCallRecording),
        "StopCallRecording" => d.decode().map(Action::StopCallRecording),
        "PauseCallRecording" => d.decode().map(Action::PauseCallRecording),
        "ResumeCallRecording" => d.decode().map(Action::ResumeCallRecording),
        _ => return None,
    })
}

fn range(field: &str, value: Option<Int>, min: i64, max: i64) -> Checked {
    match value {
        Some(v) if !(min..=max).contains(&v.get()) => Err(err(
            field,
            Rule::OutOfRange {
                value: v.get(),
                min,
                max,
            },
        )),
        _ => Ok(()),
    }
}

fn non_empty(field: &str, value: Option<&str>) -> Checked {
    match value {
        Some(s) if s.trim().is_empty() => Err(err(field, Rule::Empty)),
        _ => Ok(()),
    }
}

fn digits_list(field: &str, list: Option<&[String]>) -> Checked {
    for (i, d) in list.into_iter().flatten().enumerate() {
        if !matches!(
            d.as_str(),
            "0" | "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9" | "#" | "*"
        ) {
            return Err(err(format!("{field}[{i}]"), Rule::NotADigit(d.clone())));
        }
    }
    Ok(())
}

fn audio_source(field: &str, source: &AudioSource) -> Checked {
    if !is_s3(&source.r#type)
        || source.bucket_name.trim().is_empty()
        || source.key.trim().is_empty()
    {
        return Err(err(field, Rule::AudioSource));
    }
    Ok(())
}

fn regex(field: &str, pattern: Option<&str>) -> Checked {
    let Some(pattern) = pattern else {
        return Ok(());
    };
    if pattern.is_empty() {
        return Err(err(field, Rule::Empty));
    }
    #[cfg(feature = "regex")]
    if let Err(e) = known_valid_regex::check(pattern) {
        return Err(err(field, Rule::BadRegex(e)));
    }
    Ok(())
}

/// Syntax checks of `InputDigitsRegex`, remembering patterns already found valid.
///
/// Syntax only: compiling a regex costs ~15 µs, more than the rest of validating a response,
/// and the call engine compiles it when the action runs. Even parsing costs a few
/// microseconds, and handlers send the same handful of patterns on every call, so valid ones
/// are remembered (a bounded set, emptied when full; invalid ones are never stored).
#[cfg(feature = "regex")]
mod known_valid_regex {
    use crate::prelude::*;
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};

    const CAPACITY: usize = 512;
    const LONGEST: usize = 256;

    fn known() -> &'static Mutex<HashSet<String>> {
        static KNOWN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
        KNOWN.get_or_init(|| Mutex::new(HashSet::new()))
    }

    pub(super) fn check(pattern: &str) -> Result<(), String> {
        if let Ok(set) = known().lock() {
            if set.contains(pattern) {
                return Ok(());
            }
        }
        crate::digits_pattern::check_syntax(pattern)?;
        if pattern.len() <= LONGEST {
            if let Ok(mut set) = known().lock() {
                if set.len() >= CAPACITY {
                    set.clear();
                }
                set.insert(pattern.to_owned());
            }
        }
        Ok(())
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn remembers_only_valid_patterns() {
            assert!(super::check("^[0-9]{4}#$").is_ok());
            assert!(super::check("^[0-9]{4}#$").is_ok());
            assert!(super::check("^(?!1900)1[0-9]{10}$").is_ok());
            assert!(super::check("([0-9]").is_err());
            assert!(
                super::check("([0-9]").is_err(),
                "an invalid pattern is never cached"
            );
        }
    }
}

/// Whether `s` is an E.164 number (`+` optional, 2–15 digits, no leading zero), the
/// pattern the management API documents.
pub fn is_e164(s: &str) -> bool {
    let digits = s.strip_prefix('+').unwrap_or(s);
    (2..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

fn e164(field: &str, s: &str) -> Checked {
    if is_e164(s) {
        Ok(())
    } else {
        Err(err(field, Rule::NotE164(s.to_owned())))
    }
}

/// Whether a handler may set SIP header `name` (§3.1): `X-` (not reserved prefixes),
/// `User-to-User` or `Diversion`, any case.
pub fn is_allowed_sip_header(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    const RESERVED: [&str; 5] = ["x-vine", "x-amzn", "x-vc", "x-canary", "x-voice"];
    if lower == "user-to-user" || lower == "diversion" {
        return true;
    }
    lower.starts_with("x-")
        && lower.len() > 2
        && !RESERVED.iter().any(|r| lower.starts_with(r))
        && name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
}

fn sip_headers(headers: Option<&SipHeaders>) -> Checked {
    for (name, value) in headers.into_iter().flatten() {
        let field = || format!("Parameters.SipHeaders.{name}");
        if !is_allowed_sip_header(name) {
            return Err(err(field(), Rule::SipHeaderName(name.clone())));
        }
        if value.chars().count() > 2048 {
            return Err(err(
                field(),
                Rule::TooLong {
                    len: value.chars().count(),
                    max: 2048,
                },
            ));
        }
        if value.contains(['\r', '\n']) {
            return Err(err(
                field(),
                Rule::WrongType("header values cannot contain line breaks".into()),
            ));
        }
    }
    Ok(())
}

fn speech(field: &str, params: &SpeechParameters, limits: &Limits) -> Checked {
    // Every speech action comes through here: name the full field only for an error.
    text("Text", &params.text, params.text_type, limits).map_err(|mut e| {
        e.field = format!("{field}.{}", e.field);
        e
    })
}

fn text(field: &str, text: &str, text_type: Option<TextType>, limits: &Limits) -> Checked {
    if text.trim().is_empty() {
        return Err(err(field, Rule::Missing));
    }
    let len = text.chars().count();
    if len > limits.max_speech_chars {
        return Err(err(
            field,
            Rule::TextTooLong {
                len,
                max: limits.max_speech_chars,
            },
        ));
    }
    if text_type == Some(TextType::Ssml) {
        let t = text.trim();
        if !(t.starts_with("<speak") && t.ends_with("</speak>")) {
            return Err(err(field, Rule::NotSsml));
        }
    }
    Ok(())
}

fn only_leg_a(tag: Option<ParticipantTag>) -> Checked {
    match tag {
        Some(ParticipantTag::LegB) => Err(err("Parameters.ParticipantTag", Rule::OnlyLegA)),
        _ => Ok(()),
    }
}

fn collection<T: DigitCollection>(p: &T, limits: &Limits) -> Checked {
    let max_allowed = limits.max_collect_digits;
    if !(0..=max_allowed).contains(&p.min_digits()) {
        return Err(err(
            "Parameters.MinNumberOfDigits",
            Rule::OutOfRange {
                value: p.min_digits(),
                min: 0,
                max: max_allowed,
            },
        ));
    }
    if !(1..=max_allowed).contains(&p.max_digits()) {
        return Err(err(
            "Parameters.MaxNumberOfDigits",
            Rule::OutOfRange {
                value: p.max_digits(),
                min: 1,
                max: max_allowed,
            },
        ));
    }
    if p.min_digits() > p.max_digits() {
        return Err(err(
            "Parameters.MaxNumberOfDigits",
            Rule::MinAboveMax {
                min: p.min_digits(),
                max: p.max_digits(),
            },
        ));
    }
    let positive = |field: &str, v: i64| range(field, Some(Int::new(v)), 1, POSITIVE);
    positive(
        "Parameters.RepeatDurationInMilliseconds",
        p.repeat_duration_ms(),
    )?;
    positive(
        "Parameters.InBetweenDigitsDurationInMilliseconds",
        p.in_between_ms(),
    )?;
    positive("Parameters.Repeat", p.attempts())?;
    digits_list("Parameters.TerminatorDigits", p.terminator_digits())?;
    regex("Parameters.InputDigitsRegex", p.input_digits_regex())
}

const POSITIVE: i64 = i64::MAX;

/// Applies the contract's value rules to one typed action.
pub(crate) fn check(action: &Action, limits: &Limits) -> Checked {
    match action {
        Action::CallAndBridge(p) => {
            range(
                "Parameters.CallTimeoutSeconds",
                p.call_timeout_seconds,
                1,
                limits.max_call_timeout_seconds,
            )?;
            e164("Parameters.CallerIdNumber", &p.caller_id_number)?;
            if p.endpoints.len() != 1 {
                return Err(err(
                    "Parameters.Endpoints",
                    Rule::EndpointCount(p.endpoints.len()),
                ));
            }
            let endpoint = &p.endpoints[0];
            match endpoint.bridge_endpoint_type {
                BridgeEndpointType::Pstn => {
                    e164("Parameters.Endpoints[0].Uri", &endpoint.uri)?;
                    if endpoint.arn.is_some() {
                        return Err(err("Parameters.Endpoints[0].Arn", Rule::ArnNotAllowed));
                    }
                }
                BridgeEndpointType::Aws => {
                    let ok_char =
                        |c: char| c.is_ascii_alphanumeric() || "&=+$/%-_!~*().".contains(c);
                    if endpoint.uri.is_empty()
                        || endpoint.uri.len() > 36
                        || !endpoint.uri.chars().all(ok_char)
                    {
                        return Err(err(
                            "Parameters.Endpoints[0].Uri",
                            Rule::Pattern {
                                value: endpoint.uri.clone(),
                                pattern: "1-36 of a-z A-Z 0-9 & = + $ / % - _ ! ~ * ( ) .",
                            },
                        ));
                    }
                    if endpoint.arn.is_none() {
                        return Err(err("Parameters.Endpoints[0].Arn", Rule::Missing));
                    }
                }
            }
            if let Some(tone) = &p.ringback_tone {
                audio_source("Parameters.RingbackTone", tone)?;
            }
            sip_headers(p.sip_headers.as_ref())
        }
        // The contract lists 0, 480 and 486; any final failure status can be sent to a
        // caller not yet answered (a BYE carries none), so the rest of 4xx-6xx are taken too.
        Action::Hangup(p) => match p.sip_response_code {
            Some(code) if !(code.get() == 0 || (400..=699).contains(&code.get())) => Err(err(
                "Parameters.SipResponseCode",
                Rule::NotAllowed(format!(
                    "{} is not 0 (normal clearing) or a SIP failure status 400-699",
                    code.get()
                )),
            )),
            _ => Ok(()),
        },
        Action::JoinChimeMeeting(p) => {
            only_leg_a(p.participant_tag)?;
            if p.join_token.trim().is_empty() {
                return Err(err("Parameters.JoinToken", Rule::Missing));
            }
            Ok(())
        }
        Action::ModifyChimeMeetingAttendees(p) => {
            non_empty("Parameters.MeetingId", Some(&p.meeting_id))?;
            if p.attendee_list.is_empty() {
                return Err(err("Parameters.AttendeeList", Rule::Empty));
            }
            if p.attendee_list.len() > 100 {
                return Err(err(
                    "Parameters.AttendeeList",
                    Rule::TooLong {
                        len: p.attendee_list.len(),
                        max: 100,
                    },
                ));
            }
            Ok(())
        }
        Action::Pause(p) => range(
            "Parameters.DurationInMilliseconds",
            Some(p.duration_in_milliseconds),
            1,
            limits.max_pause_ms,
        ),
        Action::PlayAudio(p) => {
            audio_source("Parameters.AudioSource", &p.audio_source)?;
            digits_list(
                "Parameters.PlaybackTerminators",
                p.playback_terminators.as_deref(),
            )?;
            range("Parameters.Repeat", p.repeat, 1, POSITIVE)
        }
        Action::PlayAudioAndGetDigits(p) => {
            audio_source("Parameters.AudioSource", &p.audio_source)?;
            if let Some(failure) = &p.failure_audio_source {
                audio_source("Parameters.FailureAudioSource", failure)?;
            }
            collection(p, limits)
        }
        Action::ReceiveDigits(p) => {
            regex("Parameters.InputDigitsRegex", Some(&p.input_digits_regex))?;
            let gap = p.in_between_digits_duration_in_milliseconds.get();
            let flush = p.flush_digits_duration_in_milliseconds.get();
            range(
                "Parameters.InBetweenDigitsDurationInMilliseconds",
                Some(p.in_between_digits_duration_in_milliseconds),
                1,
                POSITIVE,
            )?;
            if flush <= gap {
                return Err(err(
                    "Parameters.FlushDigitsDurationInMilliseconds",
                    Rule::FlushNotAfterInBetween {
                        flush,
                        in_between: gap,
                    },
                ));
            }
            Ok(())
        }
        Action::RecordAudio(p) => {
            let dest = &p.recording_destination;
            if !is_s3(&dest.r#type) {
                return Err(err(
                    "Parameters.RecordingDestination.Type",
                    Rule::NotAllowed(format!("{:?} is not S3", dest.r#type)),
                ));
            }
            non_empty(
                "Parameters.RecordingDestination.BucketName",
                Some(&dest.bucket_name),
            )?;
            if let Some(prefix) = &dest.prefix {
                if prefix.len() > 979 {
                    return Err(err(
                        "Parameters.RecordingDestination.Prefix",
                        Rule::TooLong {
                            len: prefix.len(),
                            max: 979,
                        },
                    ));
                }
            }
            range(
                "Parameters.DurationInSeconds",
                p.duration_in_seconds,
                1,
                POSITIVE,
            )?;
            range(
                "Parameters.SilenceDurationInSeconds",
                p.silence_duration_in_seconds,
                1,
                1000,
            )?;
            range("Parameters.SilenceThreshold", p.silence_threshold, 1, 1000)?;
            digits_list(
                "Parameters.RecordingTerminators",
                p.recording_terminators.as_deref(),
            )
        }
        Action::SendDigits(p) => {
            if p.digits.is_empty() {
                return Err(err("Parameters.Digits", Rule::Missing));
            }
            let count = p.digits.chars().count();
            if count > limits.max_send_digits {
                return Err(err(
                    "Parameters.Digits",
                    Rule::TooLong {
                        len: count,
                        max: limits.max_send_digits,
                    },
                ));
            }
            if let Some(bad) = p
                .digits
                .chars()
                .find(|c| !(c.is_ascii_digit() || "*#ABCD,".contains(*c)))
            {
                return Err(err("Parameters.Digits", Rule::BadDigitString(bad)));
            }
            range(
                "Parameters.ToneDurationInMilliseconds",
                p.tone_duration_in_milliseconds,
                50,
                24_000,
            )
        }
        Action::Speak(p) => text("Parameters.Text", &p.text, p.text_type, limits),
        Action::SpeakAndGetDigits(p) => {
            speech("Parameters.SpeechParameters", &p.speech_parameters, limits)?;
            if let Some(failure) = &p.failure_speech_parameters {
                speech("Parameters.FailureSpeechParameters", failure, limits)?;
            }
            collection(p, limits)
        }
        Action::StartBotConversation(p) => {
            only_leg_a(p.participant_tag)?;
            let arn_ok = p
                .bot_alias_arn
                .strip_prefix("arn:aws:lex:")
                .map(|rest| rest.split(':').collect::<Vec<_>>())
                .is_some_and(|parts| {
                    parts.len() == 3
                        && !parts[0].is_empty()
                        && parts[1].len() == 12
                        && parts[1].bytes().all(|b| b.is_ascii_digit())
                        && parts[2].starts_with("bot-alias/")
                        && parts[2].split('/').count() == 3
                        && parts[2].split('/').all(|s| !s.is_empty())
                });
            if !arn_ok {
                return Err(err(
                    "Parameters.BotAliasArn",
                    Rule::Pattern {
                        value: p.bot_alias_arn.clone(),
                        pattern: "arn:aws:lex:<region>:<account>:bot-alias/<botId>/<aliasId>",
                    },
                ));
            }
            if let Some(config) = &p.configuration {
                let size = serde_json::to_vec(config).map_or(0, |v| v.len());
                if size > limits.max_bot_configuration_bytes {
                    return Err(err(
                        "Parameters.Configuration",
                        Rule::TooLong {
                            len: size,
                            max: limits.max_bot_configuration_bytes,
                        },
                    ));
                }
                let elicit = config
                    .session_state
                    .as_ref()
                    .and_then(|s| s.dialog_action.as_ref())
                    .is_some_and(|d| d.r#type == DialogActionType::ElicitIntent);
                if config
                    .welcome_messages
                    .as_ref()
                    .is_some_and(|m| !m.is_empty())
                    && !elicit
                {
                    return Err(err(
                        "Parameters.Configuration.WelcomeMessages",
                        Rule::WelcomeNeedsElicitIntent,
                    ));
                }
            }
            Ok(())
        }
        Action::VoiceFocus(_) => Ok(()),
        Action::StartCallRecording(p) => {
            if !is_s3(&p.destination.r#type) {
                return Err(err(
                    "Parameters.Destination.Type",
                    Rule::NotAllowed(format!("{:?} is not S3", p.destination.r#type)),
                ));
            }
            non_empty(
                "Parameters.Destination.Location",
                Some(&p.destination.location),
            )
        }
        Action::StopCallRecording(_)
        | Action::PauseCallRecording(_)
        | Action::ResumeCallRecording(_) => Ok(()),
    }
}

/// Whether two actions of this kind on the same leg in one list are a mistake: each can
/// happen once per leg (recording start/stop), or a second one would undo the first.
fn once_per_leg(action: &Action) -> bool {
    matches!(
        action,
        Action::Hangup(_)
            | Action::JoinChimeMeeting(_)
            | Action::ReceiveDigits(_)
            | Action::StartBotConversation(_)
            | Action::StartCallRecording(_)
            | Action::StopCallRecording(_)
    )
}

/// Rules between actions of one list: duplicates, and actions that cannot follow earlier ones.
pub(crate) fn check_against_list(action: &Action, earlier: &[ValidatedAction]) -> Checked {
    let here = action.target();
    for (i, prior) in earlier.iter().enumerate() {
        let prior = &prior.action;
        let same_leg = prior.target() == here;
        if same_leg && prior.name() == action.name() && once_per_leg(action) {
            return Err(err("Type", Rule::Duplicate(i)));
        }
        if let Action::Hangup(_) = prior {
            if same_leg {
                return Err(err(
                    "Type",
                    Rule::Conflict {
                        earlier: i,
                        why: "the leg is released by the earlier Hangup",
                    },
                ));
            }
        }
        let bridging = |a: &Action| matches!(a, Action::CallAndBridge(_));
        let meeting = |a: &Action| matches!(a, Action::JoinChimeMeeting(_));
        if bridging(prior) && bridging(action) {
            return Err(err("Type", Rule::Duplicate(i)));
        }
        if (bridging(prior) && meeting(action)) || (meeting(prior) && bridging(action)) {
            return Err(err(
                "Type",
                Rule::Conflict {
                    earlier: i,
                    why: "a call cannot be bridged and joined to a meeting at once",
                },
            ));
        }
    }
    Ok(())
}
