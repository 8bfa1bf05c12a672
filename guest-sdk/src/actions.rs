//! Builders for the actions handlers return most. Each returns the typed parameter struct
//! (fields are public for anything not covered) and converts into an
//! [`Action`] with `.into()`.

use crate::prelude::*;
use sma_actions::*;

/// `Speak` plain text on a leg.
pub fn speak(call_id: &str, text: &str) -> Speak {
    Speak::text(call_id, text)
}

/// `Speak` SSML (`<speak>…</speak>`) on a leg.
pub fn speak_ssml(call_id: &str, ssml: &str) -> Speak {
    Speak {
        text_type: Some(TextType::Ssml),
        ..Speak::text(call_id, ssml)
    }
}

/// `PlayAudio` of `bucket`/`key` on the invoking leg.
pub fn play_audio(bucket: &str, key: &str) -> PlayAudio {
    PlayAudio {
        audio_source: AudioSource::s3(bucket, key),
        call_id: None,
        participant_tag: None,
        playback_terminators: None,
        repeat: None,
    }
}

/// `Pause` for `ms` milliseconds on the invoking leg.
pub fn pause(ms: i64) -> Pause {
    Pause {
        duration_in_milliseconds: Int::new(ms),
        call_id: None,
        participant_tag: None,
    }
}

/// `Hangup` of a leg with normal clearing.
pub fn hangup(call_id: &str) -> Hangup {
    Hangup {
        call_id: Some(call_id.to_owned()),
        ..Hangup::default()
    }
}

/// `Hangup` of a leg with a SIP cause (`480` or `486`), e.g. to reject an unanswered call.
pub fn reject(call_id: &str, sip_response_code: i64) -> Hangup {
    Hangup {
        call_id: Some(call_id.to_owned()),
        participant_tag: None,
        sip_response_code: Some(Int::new(sip_response_code)),
    }
}

/// `SpeakAndGetDigits`: speaks `prompt`, collects between `min` and `max` digits, waiting
/// `timeout_ms` per attempt, speaking `failure` before each retry.
pub fn speak_and_get_digits(
    call_id: &str,
    prompt: &str,
    failure: &str,
    (min, max): (i64, i64),
    timeout_ms: i64,
) -> SpeakAndGetDigits {
    SpeakAndGetDigits {
        call_id: Some(call_id.to_owned()),
        participant_tag: None,
        speech_parameters: SpeechParameters {
            text: prompt.to_owned(),
            ..Default::default()
        },
        failure_speech_parameters: Some(SpeechParameters {
            text: failure.to_owned(),
            ..Default::default()
        }),
        repeat_duration_in_milliseconds: Some(Int::new(timeout_ms)),
        input_digits_regex: None,
        min_number_of_digits: Some(Int::new(min)),
        max_number_of_digits: Some(Int::new(max)),
        terminator_digits: None,
        in_between_digits_duration_in_milliseconds: None,
        repeat: None,
    }
}

/// Chainable settings shared by the digit-collecting actions.
pub trait CollectDigits: Sized {
    /// Total attempts (`Repeat`).
    fn attempts(self, n: i64) -> Self;
    /// `InputDigitsRegex`.
    fn regex(self, pattern: &str) -> Self;
    /// `TerminatorDigits`.
    fn terminators(self, digits: &[&str]) -> Self;
}

macro_rules! impl_attempts {
    ($t:ty) => {
        impl CollectDigits for $t {
            fn attempts(mut self, n: i64) -> Self {
                self.repeat = Some(Int::new(n));
                self
            }
            fn regex(mut self, pattern: &str) -> Self {
                self.input_digits_regex = Some(pattern.to_owned());
                self
            }
            fn terminators(mut self, digits: &[&str]) -> Self {
                self.terminator_digits = Some(digits.iter().map(|d| (*d).to_owned()).collect());
                self
            }
        }
    };
}

/// `PlayAudioAndGetDigits` with prompt and failure audio from `bucket`.
pub fn play_audio_and_get_digits(
    bucket: &str,
    prompt_key: &str,
    failure_key: &str,
    (min, max): (i64, i64),
    timeout_ms: i64,
) -> PlayAudioAndGetDigits {
    PlayAudioAndGetDigits {
        audio_source: AudioSource::s3(bucket, prompt_key),
        failure_audio_source: Some(AudioSource::s3(bucket, failure_key)),
        repeat_duration_in_milliseconds: Some(Int::new(timeout_ms)),
        call_id: None,
        participant_tag: None,
        input_digits_regex: None,
        min_number_of_digits: Some(Int::new(min)),
        max_number_of_digits: Some(Int::new(max)),
        terminator_digits: None,
        in_between_digits_duration_in_milliseconds: None,
        repeat: None,
    }
}

/// `ReceiveDigits` listener for `regex` on the invoking leg.
pub fn receive_digits(regex: &str, in_between_ms: i64, flush_ms: i64) -> ReceiveDigits {
    ReceiveDigits {
        input_digits_regex: regex.to_owned(),
        in_between_digits_duration_in_milliseconds: Int::new(in_between_ms),
        flush_digits_duration_in_milliseconds: Int::new(flush_ms),
        call_id: None,
        participant_tag: None,
    }
}

/// `SendDigits` on a leg.
pub fn send_digits(call_id: &str, digits: &str) -> SendDigits {
    SendDigits {
        call_id: Some(call_id.to_owned()),
        participant_tag: None,
        digits: digits.to_owned(),
        tone_duration_in_milliseconds: None,
    }
}

/// `RecordAudio` of the invoking leg into `bucket` under `prefix`, ended by `#`.
pub fn record_audio(bucket: &str, prefix: &str, max_seconds: i64) -> RecordAudio {
    RecordAudio {
        recording_destination: RecordingDestination {
            r#type: "S3".into(),
            bucket_name: bucket.to_owned(),
            prefix: Some(prefix.to_owned()),
            key: None,
        },
        recording_terminators: Some(vec!["#".into()]),
        call_id: None,
        participant_tag: None,
        duration_in_seconds: Some(Int::new(max_seconds)),
        silence_duration_in_seconds: None,
        silence_threshold: None,
    }
}

/// `CallAndBridge` to a phone number.
pub fn call_and_bridge(caller_id: &str, to_number: &str) -> CallAndBridge {
    CallAndBridge {
        call_timeout_seconds: None,
        caller_id_number: caller_id.to_owned(),
        endpoints: vec![BridgeEndpoint {
            bridge_endpoint_type: BridgeEndpointType::Pstn,
            uri: to_number.to_owned(),
            arn: None,
        }],
        ringback_tone: None,
        sip_headers: None,
    }
}

/// `JoinChimeMeeting`: joins the caller (LEG-A) to the meeting of `join_token`.
pub fn join_chime_meeting(join_token: &str, meeting_id: Option<&str>) -> JoinChimeMeeting {
    JoinChimeMeeting {
        join_token: join_token.to_owned(),
        call_id: None,
        participant_tag: Some(ParticipantTag::LegA),
        meeting_id: meeting_id.map(str::to_owned),
    }
}

/// `ModifyChimeMeetingAttendees` on the meeting leg (LEG-B): mutes or unmutes `attendees`.
pub fn modify_chime_meeting_attendees(
    operation: AttendeeOperation,
    meeting_id: &str,
    attendees: &[&str],
) -> ModifyChimeMeetingAttendees {
    ModifyChimeMeetingAttendees {
        operation,
        meeting_id: meeting_id.to_owned(),
        attendee_list: attendees.iter().map(|a| (*a).to_owned()).collect(),
        call_id: None,
        participant_tag: Some(ParticipantTag::LegB),
    }
}

impl_attempts!(SpeakAndGetDigits);
impl_attempts!(PlayAudioAndGetDigits);
