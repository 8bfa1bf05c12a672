//! One test per validation rule: each names the action index, the field and the rule, and maps
//! to the contract's error type.

use serde_json::{json, Value};
use sma_actions::{
    parse_json, validate_response, validate_response_value, ActionErrorType, Disposition,
    InvalidResponseType, LegRef, Limits, ParsedResponse, ResponseError, Rule, ValidatedResponse,
};

const CALL: &str = "bbff30c5-866a-41b0-8d53-3b3e9a4a2c01";

fn check(body: &[u8]) -> Result<ValidatedResponse, ResponseError> {
    check_with(body, &Limits::default())
}

/// Validates `body` as the runtime does (typed straight from its text when it has the common
/// shape) and as a JSON tree, and asserts that the two readings agree: every test here is also
/// a test that the text reader accepts nothing the tree reader refuses.
fn check_with(body: &[u8], limits: &Limits) -> Result<ValidatedResponse, ResponseError> {
    let read = validate_response(body, "1.0", limits);
    let tree = parse_json(body, limits).and_then(|v| validate_response_value(v, "1.0", limits));
    assert_eq!(
        read,
        tree,
        "the readers disagree on {}",
        String::from_utf8_lossy(body)
    );
    read
}

fn with_actions(actions: Value) -> Vec<u8> {
    json!({"SchemaVersion": "1.0", "Actions": actions})
        .to_string()
        .into_bytes()
}

/// Validates a list whose action at `index` must fail on `field`; returns the rule.
fn action_rule(actions: Value, index: usize, field: &str) -> (Rule, Disposition) {
    let err = check(&with_actions(actions)).expect_err("response should be refused");
    let disposition = err.disposition();
    match err {
        ResponseError::Action {
            index: i, error, ..
        } => {
            assert_eq!(i, index, "index in {error}");
            assert_eq!(error.field, field, "field in {error}");
            (error.rule, disposition)
        }
        other => panic!("expected an action error, got {other}"),
    }
}

fn speak(text: &str) -> Value {
    json!({"Type": "Speak", "Parameters": {"CallId": CALL, "Text": text}})
}

fn invalid_param(d: Disposition) {
    assert_eq!(
        d,
        Disposition::ActionFailed(ActionErrorType::InvalidActionParameter)
    );
}

fn envelope(body: &[u8]) -> (ResponseError, &'static str) {
    let err = check(body).expect_err("response should be refused");
    let t = err.disposition().error_type();
    (err, t)
}

// ---- envelope -------------------------------------------------------------------------------

#[test]
fn oversize_body() {
    let big = format!(
        r#"{{"SchemaVersion":"1.0","TransactionAttributes":{{"k":"{}"}}}}"#,
        "x".repeat(1024 * 1024)
    );
    let (err, t) = envelope(big.as_bytes());
    assert!(matches!(err, ResponseError::TooLarge { .. }), "{err}");
    assert_eq!(t, "InvalidResponseFormat");
}

#[test]
fn invalid_utf8() {
    let (err, _) = envelope(b"{\"SchemaVersion\":\"1.0\xff\"}");
    assert_eq!(err, ResponseError::InvalidUtf8 { offset: 21 });
}

#[test]
fn blank_null_and_empty_object_are_empty() {
    for body in [&b"  \n"[..], b"null", b"{}"] {
        let (err, t) = envelope(body);
        assert_eq!(err, ResponseError::Empty);
        assert_eq!(t, "EmptyResponse");
    }
}

#[test]
fn not_json_names_the_position() {
    let (err, t) = envelope(br#"{"SchemaVersion": "1.0", "Actions": [}"#);
    assert!(err.to_string().contains("line 1 column"), "{err}");
    assert_eq!(t, "InvalidResponseFormat");
}

#[test]
fn duplicate_keys_are_refused() {
    let (err, _) = envelope(
        br#"{"SchemaVersion":"1.0","Actions":[{"Type":"Speak","Type":"Hangup","Parameters":{}}]}"#,
    );
    assert!(err.to_string().contains("duplicate key `Type`"), "{err}");
}

#[test]
fn stringified_json_is_not_an_object() {
    let body = json!(json!({"SchemaVersion": "1.0"}).to_string()).to_string();
    let (err, _) = envelope(body.as_bytes());
    assert_eq!(err, ResponseError::NotAnObject("a string"));
}

#[test]
fn proxy_envelope_is_a_schema_mismatch() {
    let body = json!({"statusCode": 200, "body": "{\"SchemaVersion\":\"1.0\"}"}).to_string();
    let (err, t) = envelope(body.as_bytes());
    assert_eq!(err, ResponseError::ProxyEnvelope);
    assert_eq!(t, "SchemaVersionMismatch");
}

#[test]
fn missing_schema_version() {
    let (err, t) = envelope(br#"{"Actions":[]}"#);
    assert_eq!(err, ResponseError::MissingSchemaVersion);
    assert_eq!(t, "SchemaVersionMismatch");
}

#[test]
fn schema_version_mismatch() {
    let (err, t) = envelope(br#"{"SchemaVersion":"2.0"}"#);
    assert!(matches!(err, ResponseError::SchemaVersionMismatch { .. }));
    assert_eq!(t, "SchemaVersionMismatch");
}

#[test]
fn actions_must_be_an_array() {
    let (err, _) = envelope(br#"{"SchemaVersion":"1.0","Actions":{"Type":"Hangup"}}"#);
    assert_eq!(err, ResponseError::ActionsNotArray("an object"));
}

#[test]
fn too_many_actions() {
    let list: Vec<Value> = (0..11).map(|_| speak("hi")).collect();
    let (err, t) = envelope(&with_actions(Value::Array(list)));
    assert_eq!(
        err,
        ResponseError::TooManyActions {
            count: 11,
            limit: 10
        }
    );
    assert_eq!(t, "TooManyActions");
}

#[test]
fn absent_null_and_empty_actions_are_accepted() {
    assert_eq!(check(br#"{"SchemaVersion":"1.0"}"#).unwrap().actions, None);
    assert_eq!(
        check(br#"{"SchemaVersion":"1.0","Actions":null}"#)
            .unwrap()
            .actions,
        None
    );
    assert_eq!(
        check(br#"{"SchemaVersion":"1.0","Actions":[]}"#)
            .unwrap()
            .actions,
        Some(vec![])
    );
}

#[test]
fn attributes_must_be_strings() {
    let (err, _) = envelope(br#"{"SchemaVersion":"1.0","TransactionAttributes":{"n":1}}"#);
    assert_eq!(
        err,
        ResponseError::AttributesNotStrings {
            path: ".n".into(),
            found: "a number"
        }
    );
    let (err, _) = envelope(br#"{"SchemaVersion":"1.0","TransactionAttributes":[]}"#);
    assert!(matches!(err, ResponseError::AttributesNotStrings { .. }));
}

#[test]
fn too_many_attributes() {
    let attrs: serde_json::Map<String, Value> =
        (0..101).map(|i| (format!("k{i}"), json!("v"))).collect();
    let body = json!({"SchemaVersion": "1.0", "TransactionAttributes": attrs}).to_string();
    let (err, t) = envelope(body.as_bytes());
    assert_eq!(
        err,
        ResponseError::TooManyAttributes {
            count: 101,
            limit: 100
        }
    );
    assert_eq!(t, "TransactionAttributesInvalidMapSize");
    // The legacy profile refuses 11.
    let attrs: serde_json::Map<String, Value> =
        (0..11).map(|i| (format!("k{i}"), json!("v"))).collect();
    let body = json!({"SchemaVersion": "1.0", "TransactionAttributes": attrs}).to_string();
    let err = check_with(body.as_bytes(), &Limits::legacy()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Transaction Attributes has too many mappings (11). Maximum number of mappings is 10"
    );
}

#[test]
fn attributes_too_large() {
    let body = json!({"SchemaVersion": "1.0", "TransactionAttributes": {"k": "x".repeat(21_000)}})
        .to_string();
    let (err, t) = envelope(body.as_bytes());
    assert!(
        matches!(err, ResponseError::AttributesTooLarge { .. }),
        "{err}"
    );
    assert_eq!(t, "TransactionAttributesInvalidSize");
}

#[test]
fn legacy_attribute_entry_length() {
    let body = json!({"SchemaVersion": "1.0", "TransactionAttributes": {"k": "x".repeat(1025)}})
        .to_string();
    let err = check_with(body.as_bytes(), &Limits::legacy()).unwrap_err();
    assert_eq!(
        err,
        ResponseError::AttributeTooLong {
            key: "k".into(),
            limit: 1024
        }
    );
}

// ---- action shape ---------------------------------------------------------------------------

#[test]
fn action_not_an_object() {
    let (rule, d) = action_rule(json!([speak("a"), "Hangup"]), 1, "");
    assert_eq!(rule, Rule::NotAnObject);
    assert_eq!(
        d,
        Disposition::InvalidResponse(InvalidResponseType::InvalidResponseFormat)
    );
}

#[test]
fn action_without_type() {
    let (rule, _) = action_rule(json!([{"Parameters": {}}]), 0, "Type");
    assert_eq!(rule, Rule::MissingType);
}

#[test]
fn unknown_action_type() {
    let (rule, d) = action_rule(
        json!([speak("a"), {"Type": "Answer", "Parameters": {}}]),
        1,
        "Type",
    );
    assert_eq!(rule, Rule::UnsupportedAction("Answer".into()));
    assert_eq!(d.error_type(), "UnsupportedAction");
    // Names are case-sensitive.
    let (rule, _) = action_rule(json!([{"Type": "hangup"}]), 0, "Type");
    assert_eq!(rule, Rule::UnsupportedAction("hangup".into()));
}

#[test]
fn parameters_must_be_an_object() {
    let (rule, _) = action_rule(
        json!([{"Type": "Hangup", "Parameters": "0"}]),
        0,
        "Parameters",
    );
    assert!(matches!(rule, Rule::WrongType(_)));
}

#[test]
fn missing_required_parameter() {
    let (rule, d) = action_rule(
        json!([{"Type": "Speak", "Parameters": {"CallId": CALL}}]),
        0,
        "Parameters.Text",
    );
    assert_eq!(rule, Rule::Missing);
    assert_eq!(
        d,
        Disposition::ActionFailed(ActionErrorType::MissingRequiredActionParameter)
    );
}

#[test]
fn missing_nested_parameter() {
    let (rule, _) = action_rule(
        json!([{"Type": "PlayAudio", "Parameters": {"AudioSource": {"Type": "S3", "Key": "k"}}}]),
        0,
        "Parameters.AudioSource.BucketName",
    );
    assert_eq!(rule, Rule::Missing);
}

#[test]
fn wrong_type() {
    let (rule, d) = action_rule(
        json!([{"Type": "PlayAudio", "Parameters": {"Repeat": [1],
            "AudioSource": {"Type": "S3", "BucketName": "b", "Key": "k"}}}]),
        0,
        "Parameters.Repeat",
    );
    assert!(
        matches!(rule, Rule::WrongType(ref m) if m.contains("integer")),
        "{rule}"
    );
    invalid_param(d);
}

#[test]
fn value_outside_enumeration() {
    let (rule, _) = action_rule(
        json!([{"Type": "Hangup", "Parameters": {"ParticipantTag": "LEG-C"}}]),
        0,
        "Parameters.ParticipantTag",
    );
    assert!(
        matches!(rule, Rule::NotAllowed(ref m) if m.contains("LEG-C")),
        "{rule}"
    );
}

#[test]
fn hangup_code_outside_allowed_set() {
    for code in [json!("200"), json!(183), json!(700), json!(-1)] {
        let (rule, _) = action_rule(
            json!([{"Type": "Hangup", "Parameters": {"SipResponseCode": code}}]),
            0,
            "Parameters.SipResponseCode",
        );
        assert!(matches!(rule, Rule::NotAllowed(_)), "{code}");
    }
    // Any failure status can reject a caller not yet answered.
    for code in [
        json!("0"),
        json!(480),
        json!("486"),
        json!(603),
        json!("404"),
    ] {
        let body =
            with_actions(json!([{"Type": "Hangup", "Parameters": {"SipResponseCode": code}}]));
        check(&body).unwrap_or_else(|e| panic!("{code}: {e}"));
    }
}

#[test]
fn out_of_range() {
    let (rule, _) = action_rule(
        json!([{"Type": "Pause", "Parameters": {"DurationInMilliseconds": 0}}]),
        0,
        "Parameters.DurationInMilliseconds",
    );
    assert_eq!(
        rule,
        Rule::OutOfRange {
            value: 0,
            min: 1,
            max: 30_000
        }
    );
}

#[test]
fn a_blank_or_null_call_id_or_participant_tag_is_absent() {
    for params in [
        json!({"CallId": " ", "Text": "x"}),
        json!({"CallId": "", "ParticipantTag": "", "Text": "x"}),
        json!({"CallId": null, "ParticipantTag": null, "Text": "x"}),
    ] {
        let r = check(&with_actions(
            json!([{"Type": "Speak", "Parameters": params}]),
        ))
        .unwrap_or_else(|e| panic!("{params}: {e}"));
        let action = &r.actions.unwrap()[0].action;
        assert_eq!(action.target(), LegRef::Invoking, "{params}");
    }
    // A CallId that is not a string is still refused, naming the field.
    let (rule, d) = action_rule(
        json!([{"Type": "Speak", "Parameters": {"CallId": 5, "Text": "x"}}]),
        0,
        "Parameters.CallId",
    );
    assert!(matches!(rule, Rule::WrongType(_)), "{rule}");
    invalid_param(d);
}

#[test]
fn speak_text_limit_and_blank_text() {
    let (rule, d) = action_rule(json!([speak(&"a".repeat(1001))]), 0, "Parameters.Text");
    assert_eq!(
        rule,
        Rule::TextTooLong {
            len: 1001,
            max: 1000
        }
    );
    assert_eq!(d.error_type(), "MissingRequiredActionParameter");
    let (rule, _) = action_rule(json!([speak("")]), 0, "Parameters.Text");
    assert_eq!(rule, Rule::Missing);
}

#[test]
fn ssml_must_be_enclosed_in_speak() {
    let (rule, _) = action_rule(
        json!([{"Type": "Speak", "Parameters": {"CallId": CALL, "Text": "hi", "TextType": "ssml"}}]),
        0,
        "Parameters.Text",
    );
    assert_eq!(rule, Rule::NotSsml);
}

#[test]
fn terminator_must_be_a_digit() {
    let (rule, _) = action_rule(
        json!([{"Type": "PlayAudio", "Parameters": {"PlaybackTerminators": ["#", "10"],
            "AudioSource": {"Type": "S3", "BucketName": "b", "Key": "k"}}}]),
        0,
        "Parameters.PlaybackTerminators[1]",
    );
    assert_eq!(rule, Rule::NotADigit("10".into()));
}

#[test]
fn send_digits_characters_and_length() {
    let (rule, _) = action_rule(
        json!([{"Type": "SendDigits", "Parameters": {"CallId": CALL, "Digits": "12E"}}]),
        0,
        "Parameters.Digits",
    );
    assert_eq!(rule, Rule::BadDigitString('E'));
    let (rule, _) = action_rule(
        json!([{"Type": "SendDigits", "Parameters": {"CallId": CALL, "Digits": "1".repeat(51)}}]),
        0,
        "Parameters.Digits",
    );
    assert_eq!(rule, Rule::TooLong { len: 51, max: 50 });
    let (rule, _) = action_rule(
        json!([{"Type": "SendDigits", "Parameters": {"CallId": CALL, "Digits": "1", "ToneDurationInMilliseconds": 49}}]),
        0,
        "Parameters.ToneDurationInMilliseconds",
    );
    assert!(matches!(rule, Rule::OutOfRange { .. }));
}

#[test]
fn bad_regex() {
    let (rule, _) = action_rule(
        json!([{"Type": "ReceiveDigits", "Parameters": {"InputDigitsRegex": "([0-9]",
            "InBetweenDigitsDurationInMilliseconds": 1000, "FlushDigitsDurationInMilliseconds": 3000}}]),
        0,
        "Parameters.InputDigitsRegex",
    );
    assert!(matches!(rule, Rule::BadRegex(_)));
}

#[test]
fn flush_must_exceed_in_between() {
    let (rule, _) = action_rule(
        json!([{"Type": "ReceiveDigits", "Parameters": {"InputDigitsRegex": "1",
            "InBetweenDigitsDurationInMilliseconds": 3000, "FlushDigitsDurationInMilliseconds": 3000}}]),
        0,
        "Parameters.FlushDigitsDurationInMilliseconds",
    );
    assert_eq!(
        rule,
        Rule::FlushNotAfterInBetween {
            flush: 3000,
            in_between: 3000
        }
    );
}

fn get_digits(extra: Value) -> Value {
    let mut p = json!({"CallId": CALL, "SpeechParameters": {"Text": "Enter"},
        "FailureSpeechParameters": {"Text": "Again"}, "RepeatDurationInMilliseconds": 5000});
    p.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    json!([{"Type": "SpeakAndGetDigits", "Parameters": p}])
}

#[test]
fn min_digits_above_max() {
    let (rule, _) = action_rule(
        get_digits(json!({"MinNumberOfDigits": 5, "MaxNumberOfDigits": 3})),
        0,
        "Parameters.MaxNumberOfDigits",
    );
    assert_eq!(rule, Rule::MinAboveMax { min: 5, max: 3 });
}

#[test]
fn max_digits_ceiling() {
    let (rule, _) = action_rule(
        get_digits(json!({"MaxNumberOfDigits": 129})),
        0,
        "Parameters.MaxNumberOfDigits",
    );
    assert!(matches!(rule, Rule::OutOfRange { value: 129, .. }));
}

#[test]
fn repeat_duration_must_be_positive() {
    let (rule, _) = action_rule(
        get_digits(json!({"RepeatDurationInMilliseconds": "0"})),
        0,
        "Parameters.RepeatDurationInMilliseconds",
    );
    assert!(matches!(rule, Rule::OutOfRange { value: 0, .. }));
}

#[test]
fn failure_speech_text_required() {
    let (rule, _) = action_rule(
        get_digits(json!({"FailureSpeechParameters": {"Text": ""}})),
        0,
        "Parameters.FailureSpeechParameters.Text",
    );
    assert_eq!(rule, Rule::Missing);
}

#[test]
fn invalid_audio_source() {
    let (rule, d) = action_rule(
        json!([{"Type": "PlayAudio", "Parameters": {"AudioSource": {"Type": "HTTP", "BucketName": "b", "Key": "k"}}}]),
        0,
        "Parameters.AudioSource",
    );
    assert_eq!(rule, Rule::AudioSource);
    assert_eq!(d.error_type(), "InvalidAudioSource");
}

fn bridge(endpoints: Value, extra: Value) -> Value {
    let mut p = json!({"CallerIdNumber": "+14255550199", "Endpoints": endpoints});
    p.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    json!([{"Type": "CallAndBridge", "Parameters": p}])
}

#[test]
fn bridge_needs_exactly_one_endpoint() {
    let (rule, _) = action_rule(bridge(json!([]), json!({})), 0, "Parameters.Endpoints");
    assert_eq!(rule, Rule::EndpointCount(0));
}

#[test]
fn bridge_caller_id_must_be_e164() {
    let (rule, _) = action_rule(
        bridge(
            json!([{"BridgeEndpointType": "PSTN", "Uri": "+18005550123"}]),
            json!({"CallerIdNumber": "555-0199"}),
        ),
        0,
        "Parameters.CallerIdNumber",
    );
    assert_eq!(rule, Rule::NotE164("555-0199".into()));
}

#[test]
fn bridge_timeout_range() {
    let (rule, _) = action_rule(
        bridge(
            json!([{"BridgeEndpointType": "PSTN", "Uri": "+18005550123"}]),
            json!({"CallTimeoutSeconds": 121}),
        ),
        0,
        "Parameters.CallTimeoutSeconds",
    );
    assert_eq!(
        rule,
        Rule::OutOfRange {
            value: 121,
            min: 1,
            max: 120
        }
    );
}

#[test]
fn pstn_endpoint_takes_no_arn() {
    let (rule, _) = action_rule(
        bridge(
            json!([{"BridgeEndpointType": "PSTN", "Uri": "+18005550123", "Arn": "arn:x"}]),
            json!({}),
        ),
        0,
        "Parameters.Endpoints[0].Arn",
    );
    assert_eq!(rule, Rule::ArnNotAllowed);
}

#[test]
fn aws_endpoint_uri_pattern_and_arn() {
    let (rule, _) = action_rule(
        bridge(
            json!([{"BridgeEndpointType": "AWS", "Uri": "a b", "Arn": "arn:aws:chime:us-east-1:1:vc/x"}]),
            json!({}),
        ),
        0,
        "Parameters.Endpoints[0].Uri",
    );
    assert!(matches!(rule, Rule::Pattern { .. }));
    let (rule, _) = action_rule(
        bridge(
            json!([{"BridgeEndpointType": "AWS", "Uri": "5550"}]),
            json!({}),
        ),
        0,
        "Parameters.Endpoints[0].Arn",
    );
    assert_eq!(rule, Rule::Missing);
}

#[test]
fn reserved_sip_header() {
    let (rule, _) = action_rule(
        bridge(
            json!([{"BridgeEndpointType": "PSTN", "Uri": "+18005550123"}]),
            json!({"SipHeaders": {"X-AMZN-Trace": "1"}}),
        ),
        0,
        "Parameters.SipHeaders.X-AMZN-Trace",
    );
    assert_eq!(rule, Rule::SipHeaderName("X-AMZN-Trace".into()));
    let (rule, _) = action_rule(
        bridge(
            json!([{"BridgeEndpointType": "PSTN", "Uri": "+18005550123"}]),
            json!({"SipHeaders": {"Contact": "x"}}),
        ),
        0,
        "Parameters.SipHeaders.Contact",
    );
    assert!(matches!(rule, Rule::SipHeaderName(_)));
}

#[test]
fn record_audio_with_both_leg_selectors_follows_the_call_id() {
    // The contract's §3.0: when CallId is given, ParticipantTag is ignored.
    let r = check(&with_actions(
        json!([{"Type": "RecordAudio", "Parameters": {"CallId": CALL,
        "ParticipantTag": "LEG-B", "RecordingDestination": {"Type": "S3", "BucketName": "b"}}}]),
    ))
    .unwrap();
    assert_eq!(r.actions.unwrap()[0].action.target(), LegRef::CallId(CALL));
}

#[test]
fn record_audio_silence_threshold_range() {
    let (rule, _) = action_rule(
        json!([{"Type": "RecordAudio", "Parameters": {"SilenceThreshold": 1001,
            "RecordingTerminators": ["#"], "RecordingDestination": {"Type": "S3", "BucketName": "b"}}}]),
        0,
        "Parameters.SilenceThreshold",
    );
    assert!(matches!(rule, Rule::OutOfRange { value: 1001, .. }));
}

#[test]
fn only_leg_a_joins_a_meeting() {
    let (rule, _) = action_rule(
        json!([{"Type": "JoinChimeMeeting", "Parameters": {"JoinToken": "t", "ParticipantTag": "LEG-B"}}]),
        0,
        "Parameters.ParticipantTag",
    );
    assert_eq!(rule, Rule::OnlyLegA);
}

#[test]
fn attendee_list_bounds() {
    let (rule, _) = action_rule(
        json!([{"Type": "ModifyChimeMeetingAttendees", "Parameters": {"Operation": "Mute", "MeetingId": "m", "AttendeeList": []}}]),
        0,
        "Parameters.AttendeeList",
    );
    assert_eq!(rule, Rule::Empty);
}

#[test]
fn bot_arn_pattern_and_welcome_messages() {
    let (rule, _) = action_rule(
        json!([{"Type": "StartBotConversation", "Parameters": {"BotAliasArn": "arn:aws:lex:us-east-1:123:bot/x"}}]),
        0,
        "Parameters.BotAliasArn",
    );
    assert!(matches!(rule, Rule::Pattern { .. }));
    let (rule, _) = action_rule(
        json!([{"Type": "StartBotConversation", "Parameters": {
            "BotAliasArn": "arn:aws:lex:us-east-1:123456789012:bot-alias/B/A",
            "Configuration": {"WelcomeMessages": [{"Content": "hi", "ContentType": "PlainText"}]}}}]),
        0,
        "Parameters.Configuration.WelcomeMessages",
    );
    assert_eq!(rule, Rule::WelcomeNeedsElicitIntent);
}

#[test]
fn voice_focus_accepts_string_booleans_only() {
    check(&with_actions(
        json!([{"Type": "VoiceFocus", "Parameters": {"CallId": CALL, "Enable": "True"}}]),
    ))
    .unwrap();
    let (rule, _) = action_rule(
        json!([{"Type": "VoiceFocus", "Parameters": {"CallId": CALL, "Enable": "on"}}]),
        0,
        "Parameters.Enable",
    );
    assert!(matches!(rule, Rule::WrongType(_)));
}

#[test]
fn call_recording_destination_type() {
    let (rule, _) = action_rule(
        json!([{"Type": "StartCallRecording", "Parameters": {"CallId": CALL, "Track": "BOTH",
            "Destination": {"Type": "GCS", "Location": "b"}}}]),
        0,
        "Parameters.Destination.Type",
    );
    assert!(matches!(rule, Rule::NotAllowed(_)));
}

// ---- rules between actions ------------------------------------------------------------------

#[test]
fn duplicate_once_per_leg_action() {
    let rec = json!({"Type": "StartCallRecording", "Parameters": {"CallId": CALL, "Track": "BOTH",
        "Destination": {"Type": "S3", "Location": "b"}}});
    let (rule, _) = action_rule(json!([rec.clone(), speak("x"), rec]), 2, "Type");
    assert_eq!(rule, Rule::Duplicate(0));
}

#[test]
fn action_after_hangup_of_the_same_leg() {
    let (rule, _) = action_rule(
        json!([{"Type": "Hangup", "Parameters": {"CallId": CALL}}, speak("too late")]),
        1,
        "Type",
    );
    assert!(matches!(rule, Rule::Conflict { earlier: 0, .. }));
    // Hanging up LEG-B and then speaking to LEG-A is fine.
    check(&with_actions(json!([
        {"Type": "Hangup", "Parameters": {"ParticipantTag": "LEG-B"}},
        speak("the other party left")
    ])))
    .unwrap();
}

#[test]
fn bridge_and_meeting_conflict() {
    let (rule, _) = action_rule(
        json!([
            {"Type": "CallAndBridge", "Parameters": {"CallerIdNumber": "+14255550199",
                "Endpoints": [{"BridgeEndpointType": "PSTN", "Uri": "+18005550123"}]}},
            {"Type": "JoinChimeMeeting", "Parameters": {"JoinToken": "t"}}
        ]),
        1,
        "Type",
    );
    assert!(matches!(rule, Rule::Conflict { earlier: 0, .. }));
}

#[test]
fn lenient_numbers_echo_as_received() {
    let body = with_actions(
        json!([{"Type": "PlayAudio", "Parameters": {"Repeat": "5", "Extra": {"kept": true},
        "AudioSource": {"Type": "S3", "BucketName": "b", "Key": "k"}}}]),
    );
    let ok = check(&body).unwrap();
    let echo = ok.to_value();
    assert_eq!(echo["Actions"][0]["Parameters"]["Repeat"], json!("5"));
    assert_eq!(
        echo["Actions"][0]["Parameters"]["Extra"],
        json!({"kept": true})
    );
}

#[test]
fn hostile_bytes_never_panic() {
    // Deep nesting, huge numbers, control characters, truncated documents.
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let cases: Vec<Vec<u8>> = vec![
        deep.into_bytes(),
        br#"{"SchemaVersion":"1.0","Actions":[{"Type":"Pause","Parameters":{"DurationInMilliseconds":1e400}}]}"#.to_vec(),
        br#"{"SchemaVersion":"1.0","Actions":[{"Type":"Pause","Parameters":{"DurationInMilliseconds":"99999999999999999999"}}]}"#.to_vec(),
        b"{\"SchemaVersion\":\"1.0\",\"Actions\":[{\"Type\":\"Sp\x00eak\"}]}".to_vec(),
        br#"{"SchemaVersion":"1.0","Actions":[{"#.to_vec(),
        vec![0xff; 64],
    ];
    for body in cases {
        assert!(check(&body).is_err());
    }
}

// ---- what a refusal keeps ------------------------------------------------------------------

/// The rejection of `response`, which both readers must agree on.
fn rejection(response: Value, why: &str) -> sma_actions::Rejection {
    let limits = Limits::default();
    let read = ParsedResponse::read(&response.to_string(), &limits)
        .expect("JSON")
        .validate("1.0", &limits)
        .expect_err(why);
    let tree =
        sma_actions::validate_response_keeping_prefix(response, "1.0", &limits).expect_err(why);
    assert_eq!(read, tree, "the readers disagree");
    *read
}

#[test]
fn a_refused_action_keeps_the_valid_prefix_its_parameters_and_the_attributes() {
    let bad_pause =
        json!({"Type": "Pause", "Parameters": {"DurationInMilliseconds": -5, "X-Extra": [1]}});
    let response = json!({
        "SchemaVersion": "1.0",
        "Actions": [speak("one"), speak("two"), bad_pause, speak("never")],
        "TransactionAttributes": {"menu": "main"}
    });
    let rejection = rejection(response, "the pause is out of range");
    assert!(
        matches!(rejection.error, ResponseError::Action { index: 2, .. }),
        "{}",
        rejection.error
    );
    let texts: Vec<_> = rejection
        .valid_prefix
        .iter()
        .map(|a| a.parameters.to_map()["Text"].clone())
        .collect();
    assert_eq!(texts, [json!("one"), json!("two")]);
    assert_eq!(
        Value::Object(rejection.refused_parameters.to_map()),
        json!({"DurationInMilliseconds": -5, "X-Extra": [1]})
    );
    assert_eq!(rejection.transaction_attributes.unwrap()["menu"], "main");
}

#[test]
fn a_refusal_before_the_actions_keeps_nothing() {
    let response = json!({"SchemaVersion": "2.0", "Actions": [speak("one")]});
    let rejection = rejection(response, "wrong schema");
    assert!(matches!(
        rejection.error,
        ResponseError::SchemaVersionMismatch { .. }
    ));
    assert!(rejection.valid_prefix.is_empty());
    assert!(rejection.refused_parameters.to_map().is_empty());
    assert!(rejection.transaction_attributes.is_none());
}

#[test]
fn an_unsupported_action_echoes_the_parameters_it_came_with() {
    let odd = json!({"Type": "Teleport", "Parameters": {"To": "Mars"}});
    let response = json!({"SchemaVersion": "1.0", "Actions": [speak("one"), odd]});
    let rejection = rejection(response, "no such action");
    assert_eq!(rejection.valid_prefix.len(), 1);
    assert_eq!(
        Value::Object(rejection.refused_parameters.to_map()),
        json!({"To": "Mars"})
    );
}

#[test]
fn an_action_clashing_with_an_earlier_one_echoes_its_own_parameters() {
    let hangup = json!({"Type": "Hangup", "Parameters": {"CallId": CALL, "SipResponseCode": "0"}});
    let response = json!({"SchemaVersion": "1.0", "Actions": [hangup, speak("too late")]});
    let rejection = rejection(response, "nothing can follow a hang-up on the same leg");
    assert!(
        matches!(rejection.error, ResponseError::Action { index: 1, .. }),
        "{}",
        rejection.error
    );
    assert_eq!(rejection.valid_prefix.len(), 1);
    assert_eq!(
        rejection.refused_parameters.get("Text"),
        Some(json!("too late"))
    );
}
