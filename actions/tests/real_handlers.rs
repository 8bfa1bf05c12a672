//! What handlers written for the hosted service send, and what the runtime makes of it.
//!
//! Each shape here comes from handlers that run in production on the hosted service (see the
//! README's "Contract decisions"): empty `CallId`/`ParticipantTag` left in copied templates,
//! leg-addressed actions with no `CallId` at all, look-around in `InputDigitsRegex`, numbers
//! written as strings and the reverse, booleans in any case, `null` for optional members,
//! members the contract does not have. Every response is read by both readers (straight from
//! its text, and as a JSON tree), which must agree.

use serde_json::{json, Value};
use sma_actions::{
    parse_json, validate_response, validate_response_value, Action, DigitCollection, Engine,
    LegRef, Limits, ParticipantTag, ResponseError, Rule, TextType, Track, ValidatedResponse,
};

fn read(actions: Value) -> Result<ValidatedResponse, ResponseError> {
    let body = json!({"SchemaVersion": "1.0", "Actions": actions}).to_string();
    let limits = Limits::default();
    let text = validate_response(body.as_bytes(), "1.0", &limits);
    let tree = parse_json(body.as_bytes(), &limits)
        .and_then(|v| validate_response_value(v, "1.0", &limits));
    assert_eq!(text, tree, "the readers disagree on {body}");
    text
}

fn one(action: Value) -> Action {
    let r = read(json!([action.clone()])).unwrap_or_else(|e| panic!("{action}: {e}"));
    r.actions.expect("actions").remove(0).action
}

#[test]
fn the_hangup_template_with_empty_tag_and_string_code_targets_the_invoking_leg() {
    let a = one(json!({"Type": "Hangup",
        "Parameters": {"SipResponseCode": "0", "ParticipantTag": ""}}));
    assert_eq!(a.target(), LegRef::Invoking);
    let Action::Hangup(h) = a else { panic!() };
    assert_eq!(h.sip_response_code(), 0);
}

#[test]
fn an_empty_call_id_is_absent_on_every_leg_addressed_action() {
    let src = json!({"Type": "S3", "BucketName": "b", "Key": "k.wav"});
    for (name, params) in [
        ("Hangup", json!({})),
        ("Pause", json!({"DurationInMilliseconds": 500})),
        ("PlayAudio", json!({"AudioSource": src})),
        (
            "PlayAudioAndGetDigits",
            json!({"AudioSource": src, "FailureAudioSource": src,
            "RepeatDurationInMilliseconds": 3000}),
        ),
        (
            "ReceiveDigits",
            json!({"InputDigitsRegex": "^\\d$",
            "InBetweenDigitsDurationInMilliseconds": 500, "FlushDigitsDurationInMilliseconds": 2000}),
        ),
        (
            "RecordAudio",
            json!({"RecordingDestination": {"Type": "S3", "BucketName": "b"}}),
        ),
        ("SendDigits", json!({"Digits": "12"})),
        ("Speak", json!({"Text": "Hello"})),
        (
            "SpeakAndGetDigits",
            json!({"SpeechParameters": {"Text": "PIN?"},
            "FailureSpeechParameters": {"Text": "Again"}, "RepeatDurationInMilliseconds": 3000}),
        ),
        ("VoiceFocus", json!({"Enable": true})),
        (
            "StartCallRecording",
            json!({"Track": "BOTH",
            "Destination": {"Type": "S3", "Location": "bucket/prefix"}}),
        ),
        ("StopCallRecording", json!({})),
        ("PauseCallRecording", json!({})),
        ("ResumeCallRecording", json!({})),
    ] {
        for leg in [
            json!({}),
            json!({"CallId": ""}),
            json!({"CallId": "  ", "ParticipantTag": ""}),
            json!({"CallId": null}),
        ] {
            let mut p = params.clone();
            p.as_object_mut()
                .unwrap()
                .extend(leg.as_object().unwrap().clone());
            let a = one(json!({"Type": name, "Parameters": p}));
            assert_eq!(a.target(), LegRef::Invoking, "{name} {p}");
        }
        // And a tag names its leg on each of them, in the spellings handlers use.
        let mut p = params.clone();
        p["ParticipantTag"] = json!("Leg-B ");
        let a = one(json!({"Type": name, "Parameters": p}));
        assert_eq!(a.target(), LegRef::Tag(ParticipantTag::LegB), "{name}");
    }
}

#[test]
fn look_around_in_input_digits_regex_is_accepted_and_bad_patterns_are_not() {
    let a = one(json!({"Type": "SpeakAndGetDigits", "Parameters": {
        "SpeechParameters": {"Text": "Enter the number to call"},
        "InputDigitsRegex": "^(?!1900)1\\d{10}$", "MinNumberOfDigits": 11, "MaxNumberOfDigits": 11,
        "RepeatDurationInMilliseconds": 5000}}));
    let Action::SpeakAndGetDigits(p) = a else {
        panic!()
    };
    assert_eq!(p.input_digits_regex(), Some("^(?!1900)1\\d{10}$"));
    let err = read(
        json!([{"Type": "ReceiveDigits", "Parameters": {"InputDigitsRegex": "(?!1",
        "InBetweenDigitsDurationInMilliseconds": 500, "FlushDigitsDurationInMilliseconds": 2000}}]),
    )
    .unwrap_err();
    let ResponseError::Action { error, .. } = err else {
        panic!("{err}")
    };
    assert_eq!(error.field, "Parameters.InputDigitsRegex");
    assert!(matches!(error.rule, Rule::BadRegex(_)), "{}", error.rule);
}

#[test]
fn numbers_and_strings_are_read_either_way() {
    let Action::PlayAudioAndGetDigits(p) = one(json!({"Type": "PlayAudioAndGetDigits",
        "Parameters": {"AudioSource": {"Type": "s3", "BucketName": "b", "Key": "k"},
            "MinNumberOfDigits": " 3 ", "MaxNumberOfDigits": "5.0", "Repeat": 2.0,
            "RepeatDurationInMilliseconds": "3000", "TerminatorDigits": "#"}}))
    else {
        panic!()
    };
    assert_eq!((p.min_digits(), p.max_digits(), p.attempts()), (3, 5, 2));
    assert_eq!(p.repeat_duration_ms(), 3000);
    assert_eq!(p.terminators(), vec!["#".to_owned()]);
    let Action::CallAndBridge(b) = one(json!({"Type": "CallAndBridge", "Parameters": {
        "CallerIdNumber": 12065550100u64, "CallTimeoutSeconds": "30",
        "Endpoints": [{"BridgeEndpointType": "pstn", "Uri": 12065550123u64, "Arn": ""}]}}))
    else {
        panic!()
    };
    assert_eq!(b.caller_id_number, "12065550100");
    assert_eq!(b.endpoints[0].uri, "12065550123");
    assert_eq!(b.call_timeout_seconds(), 30);
    let Action::SendDigits(d) = one(json!({"Type": "SendDigits", "Parameters": {"Digits": 1234}}))
    else {
        panic!()
    };
    assert_eq!(d.digits, "1234");
    let Action::PlayAudio(p) = one(json!({"Type": "PlayAudio", "Parameters": {
        "AudioSource": {"Type": "S3", "BucketName": "b", "Key": "k"},
        "PlaybackTerminators": [1, "#", " * "]}}))
    else {
        panic!()
    };
    assert_eq!(
        p.playback_terminators.unwrap(),
        vec!["1".to_owned(), "#".into(), "*".into()]
    );
}

#[test]
fn booleans_and_enumerations_in_any_case_with_spaces() {
    for enable in [
        json!(true),
        json!("True"),
        json!("true"),
        json!("TRUE "),
        json!(1),
    ] {
        let Action::VoiceFocus(v) =
            one(json!({"Type": "VoiceFocus", "Parameters": {"Enable": enable}}))
        else {
            panic!()
        };
        assert!(v.enable.get(), "{enable}");
    }
    let Action::Speak(s) = one(
        json!({"Type": "Speak", "Parameters": {"Text": "<speak>Hi</speak>",
        "TextType": "SSML ", "Engine": "Neural", "VoiceId": "Joanna"}}),
    ) else {
        panic!()
    };
    assert_eq!(
        (s.text_type, s.engine),
        (Some(TextType::Ssml), Some(Engine::Neural))
    );
    let Action::StartCallRecording(r) = one(json!({"Type": "StartCallRecording", "Parameters": {
        "Track": "incoming", "Destination": {"Type": "s3", "Location": "b"}}}))
    else {
        panic!()
    };
    assert_eq!(r.track(), Track::Incoming);
    // Still one of the names: a wrong value is refused, naming the field and the choices.
    let err = read(json!([{"Type": "Speak", "Parameters": {"Text": "x", "TextType": "markdown"}}]))
        .unwrap_err();
    let ResponseError::Action { error, .. } = err else {
        panic!("{err}")
    };
    assert_eq!(error.field, "Parameters.TextType");
    assert!(error.to_string().contains("markdown") && error.to_string().contains("ssml"));
}

#[test]
fn null_and_blank_optional_members_mean_absent() {
    let Action::SpeakAndGetDigits(p) = one(json!({"Type": "SpeakAndGetDigits", "Parameters": {
        "CallId": null, "SpeechParameters": {"Text": "PIN?", "VoiceId": "", "Engine": null,
            "LanguageCode": " ", "TextType": ""},
        "FailureSpeechParameters": null, "InputDigitsRegex": "", "MinNumberOfDigits": null,
        "MaxNumberOfDigits": "", "TerminatorDigits": null, "Repeat": null,
        "InBetweenDigitsDurationInMilliseconds": null, "RepeatDurationInMilliseconds": null}}))
    else {
        panic!()
    };
    assert_eq!(p.speech_parameters.voice_id, None);
    assert_eq!(p.speech_parameters.language_code, None);
    assert_eq!(p.failure_speech_parameters, None);
    assert_eq!(p.input_digits_regex(), None);
    assert_eq!((p.min_digits(), p.max_digits(), p.attempts()), (0, 128, 1));
    assert_eq!(
        p.repeat_duration_ms(),
        sma_actions::DEFAULT_REPEAT_DURATION_MS
    );
    assert_eq!(p.terminators(), vec!["#".to_owned()]);
}

#[test]
fn members_the_contract_does_not_have_are_ignored_and_echoed() {
    let body = json!({"SchemaVersion": "1.0", "Actions": [{"Type": "PlayAudio", "Parameters": {
        "AudioSource": {"Type": "S3", "BucketName": "b", "Key": "k", "ContentType": "audio/wav"},
        "Comment": "welcome prompt", "Repeat": 1}}]});
    let r = read(body["Actions"].clone()).unwrap();
    let echoed = r.actions.unwrap()[0].parameters.to_map();
    assert_eq!(echoed["Comment"], "welcome prompt");
    assert_eq!(echoed["AudioSource"]["ContentType"], "audio/wav");
}

#[test]
fn what_cannot_be_executed_is_still_refused_naming_the_field() {
    for (action, field) in [
        (
            json!({"Type": "Speak", "Parameters": {"CallId": ""}}),
            "Parameters.Text",
        ),
        (
            json!({"Type": "VoiceFocus", "Parameters": {"Enable": "maybe"}}),
            "Parameters.Enable",
        ),
        (
            json!({"Type": "PlayAudio", "Parameters": {"AudioSource": {"Type": "S3", "BucketName": "", "Key": "k"}}}),
            "Parameters.AudioSource",
        ),
        (
            json!({"Type": "Hangup", "Parameters": {"ParticipantTag": "LEG-C"}}),
            "Parameters.ParticipantTag",
        ),
        (
            json!({"Type": "PlayAudio", "Parameters": {"Repeat": "twice",
            "AudioSource": {"Type": "S3", "BucketName": "b", "Key": "k"}}}),
            "Parameters.Repeat",
        ),
        (
            json!({"Type": "RecordAudio", "Parameters": {"RecordingTerminators": ["x"],
            "RecordingDestination": {"Type": "S3", "BucketName": "b"}}}),
            "Parameters.RecordingTerminators[0]",
        ),
    ] {
        let err = read(json!([action.clone()])).unwrap_err();
        let ResponseError::Action { error, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(error.field, field, "{action}: {err}");
    }
}
