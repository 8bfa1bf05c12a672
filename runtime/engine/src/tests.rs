//! The execution model on simulated time: every rule of contract §1.5–1.10 the engine
//! implements, driven through its inputs and checked on its outputs.

use super::*;
use serde_json::json;
use sma_actions::{Direction, Participant, ParticipantTag, Status};

const LEG: &str = "leg-a";

fn details() -> CallDetails {
    CallDetails {
        transaction_id: "tx-1".into(),
        transaction_attributes: None,
        aws_account_id: "000000000000".into(),
        aws_region: "us-east-1".into(),
        sip_rule_id: Some("rule".into()),
        sip_media_application_id: "app".into(),
        participants: vec![Participant {
            call_id: LEG.into(),
            participant_tag: ParticipantTag::LegA,
            to: "+12065550100".into(),
            from: "+14255550199".into(),
            direction: Direction::Inbound,
            start_time_in_milliseconds: "1".into(),
            status: Some(Status::Connected),
            sip_headers: None,
        }],
    }
}

fn engine_with(config: EngineConfig) -> (CallEngine, Instant) {
    let t0 = Instant::now();
    (CallEngine::inbound(config, details(), t0), t0)
}

fn engine() -> (CallEngine, Instant) {
    engine_with(EngineConfig::default())
}

/// A response as the engine receives it: read from its text, as a handler's is.
fn read(response: Value) -> ParsedResponse {
    ParsedResponse::read(&response.to_string(), &Limits::default()).expect("a JSON response")
}

fn outputs(e: &mut CallEngine) -> Vec<Output> {
    std::iter::from_fn(|| e.poll_output()).collect()
}

fn invoked(e: &mut CallEngine) -> InvocationEvent {
    match outputs(e).as_slice() {
        [Output::Invoke(event)] => (**event).clone(),
        other => panic!("expected one invocation, got {other:?}"),
    }
}

/// An action refused at its turn: the shell hears of it, then the handler gets its
/// `ACTION_FAILED`.
fn refused(e: &mut CallEngine) -> InvocationEvent {
    match outputs(e).as_slice() {
        [Output::Refused {
            action_type,
            error_type,
            ..
        }, Output::Invoke(event)] => {
            let data = event.action_data.as_ref().expect("action data");
            assert_eq!(&data.r#type, action_type);
            assert_eq!(data.error_type.as_ref(), Some(error_type));
            (**event).clone()
        }
        other => panic!("expected a refusal and its ACTION_FAILED, got {other:?}"),
    }
}

fn started(e: &mut CallEngine) -> ActionCommand {
    match outputs(e).as_slice() {
        [Output::Start(c)] => (**c).clone(),
        other => panic!("expected one action, got {other:?}"),
    }
}

fn speak(text: &str) -> Value {
    json!({"Type": "Speak", "Parameters": {"Text": text, "CallId": LEG}})
}

fn respond(actions: Value) -> Value {
    json!({"SchemaVersion": "1.0", "Actions": actions})
}

fn ok() -> Outcome {
    Outcome::Succeeded(ActionResult::default())
}

fn failed(error_type: &str, message: &str) -> Outcome {
    Outcome::Failed {
        error_type: error_type.into(),
        message: message.into(),
    }
}

#[test]
fn first_event_is_new_inbound_call_with_sequence_1() {
    let (mut e, _) = engine();
    let event = invoked(&mut e);
    assert_eq!(event.invocation_event_type, EventType::NewInboundCall);
    assert_eq!(event.sequence, 1);
    assert!(event.action_data.is_none());
    assert_eq!(
        event.call_details.participants[0].status,
        Some(Status::Connected)
    );
}

#[test]
fn actions_run_in_order_and_only_the_last_reports() {
    let (mut e, _) = engine();
    invoked(&mut e);
    e.on_response(read(respond(json!([speak("one"), speak("two")]))));
    let first = started(&mut e);
    assert_eq!(first.parameters.to_map()["Text"], "one");
    e.on_action_done(first.id, ok());
    let second = started(&mut e);
    assert_eq!(second.parameters.to_map()["Text"], "two");
    e.on_action_done(second.id, ok());
    let event = invoked(&mut e);
    assert_eq!(event.invocation_event_type, EventType::ActionSuccessful);
    assert_eq!(event.sequence, 2);
    let data = event.action_data.unwrap();
    assert_eq!(data.r#type, "Speak");
    assert_eq!(data.parameters["Text"], "two");
}

#[test]
fn reporting_actions_report_mid_list_and_an_empty_answer_keeps_the_queue() {
    let (mut e, _) = engine();
    invoked(&mut e);
    let receive = json!({"Type": "ReceiveDigits", "Parameters": {
        "InputDigitsRegex": "^\\d$", "InBetweenDigitsDurationInMilliseconds": 1000,
        "FlushDigitsDurationInMilliseconds": 5000}});
    e.on_response(read(respond(json!([receive, speak("after")]))));
    let r = started(&mut e);
    // The echo carries the resolved leg.
    assert_eq!(r.parameters.to_map()["CallId"], LEG);
    e.on_action_done(
        r.id,
        Outcome::Succeeded(ActionResult {
            received_digits: Some(String::new()),
            ..Default::default()
        }),
    );
    let event = invoked(&mut e);
    assert_eq!(event.invocation_event_type, EventType::ActionSuccessful);
    assert_eq!(event.received_digits(), Some(""));
    // Nothing starts while the handler is deciding.
    assert!(outputs(&mut e).is_empty());
    e.on_response(read(respond(json!([]))));
    assert_eq!(started(&mut e).parameters.to_map()["Text"], "after");
}

#[test]
fn the_echo_is_the_parameters_as_sent_plus_the_leg_they_did_not_name() {
    let (mut e, _) = engine();
    invoked(&mut e);
    // The handler's own CallId and a key the runtime does not know are echoed as sent.
    let speak = json!({"Type": "Speak", "Parameters": {
        "CallId": LEG, "Text": "x", "X-Note": [1, {"a": null}]}});
    // CallAndBridge names no leg: its echo gets LEG-A's, as the contract's success example.
    let bridge = json!({"Type": "CallAndBridge", "Parameters": {
        "CallTimeoutSeconds": 30, "CallerIdNumber": "+18005550122",
        "Endpoints": [{"BridgeEndpointType": "PSTN", "Uri": "+12065550100"}]}});
    e.on_response(read(respond(json!([speak, bridge]))));
    let s = started(&mut e);
    assert_eq!(s.call_id, LEG);
    assert_eq!(Value::Object(s.parameters.to_map()), speak["Parameters"]);
    assert_eq!(s.parameters.call_id(), Some(LEG));
    e.on_action_done(s.id, ok());
    let b = started(&mut e);
    e.on_bridge_failed(b.id, "CallNotAnswered", "Call not answered", Instant::now());
    let event = invoked(&mut e);
    assert_eq!(event.invocation_event_type, EventType::ActionFailed);
    let data = event.action_data.expect("action data");
    assert_eq!(data.r#type, "CallAndBridge");
    let mut echoed = bridge["Parameters"].clone();
    echoed["CallId"] = json!(LEG);
    assert_eq!(Value::Object(data.parameters), echoed);
}

#[test]
fn a_blank_or_missing_call_id_runs_on_the_invoking_leg_and_the_echo_names_it() {
    let (mut e, _) = engine();
    invoked(&mut e);
    e.on_response(read(respond(json!([
        {"Type": "Speak", "Parameters": {"Text": "no CallId"}},
        {"Type": "Speak", "Parameters": {"Text": "blank", "CallId": "", "ParticipantTag": ""}},
        {"Type": "Hangup", "Parameters": {"SipResponseCode": "0", "ParticipantTag": ""}}
    ]))));
    for text in ["no CallId", "blank"] {
        let s = started(&mut e);
        assert_eq!(s.call_id, LEG, "{text}");
        let echo = s.parameters.to_map();
        assert_eq!(echo["CallId"], LEG, "{text}");
        assert_eq!(echo["Text"], text);
        e.on_action_done(s.id, ok());
    }
    let h = started(&mut e);
    assert!(matches!(h.action, Action::Hangup(_)));
    assert_eq!(h.call_id, LEG);
}

#[test]
fn an_action_this_runtime_cannot_execute_fails_in_the_engine_for_every_shell() {
    let action = json!({"Type": "StartBotConversation", "Parameters": {
        "BotAliasArn": "arn:aws:lex:us-east-1:123456789012:bot-alias/AB/CD"}});
    let (mut e, _) = engine();
    invoked(&mut e);
    e.on_response(read(respond(json!([action.clone(), speak("never")]))));
    // No shell is asked to start it, and what was queued behind it is discarded.
    let event = refused(&mut e);
    assert_eq!(event.invocation_event_type, EventType::ActionFailed);
    let data = event.action_data.expect("action data");
    assert_eq!(data.r#type, action["Type"]);
    assert_eq!(data.error_type.as_deref(), Some("SystemException"));
    assert!(data
        .error_message
        .unwrap()
        .contains("not supported by this runtime"));
    // Only a LEG-A participant: no LEG-B was ever reported.
    assert_eq!(event.call_details.participants.len(), 1);
    e.on_response(read(respond(json!([]))));
    assert!(outputs(&mut e).is_empty());
}

#[test]
fn a_null_answer_changes_nothing_and_the_call_stays_up() {
    let (mut e, t0) = engine();
    invoked(&mut e);
    e.on_response(read(respond(json!([speak("first")]))));
    let s = started(&mut e);
    // The shell answers the call before the speech (a media action answers).
    e.on_leg_answered(LEG);
    e.on_action_done(s.id, failed("SystemException", "speech failed"));
    assert_eq!(
        invoked(&mut e).invocation_event_type,
        EventType::ActionFailed
    );
    // A Python handler returning None, twice in a row: neither is an invalid response.
    e.on_response(ParsedResponse::from(Value::Null));
    assert!(outputs(&mut e).is_empty(), "no hang-up, nothing started");
    e.on_update_requested(Map::new());
    assert_eq!(
        invoked(&mut e).invocation_event_type,
        EventType::CallUpdateRequested
    );
    e.on_response(ParsedResponse::from(Value::Null));
    assert!(outputs(&mut e).is_empty());
    e.handle_timeout(t0 + Duration::from_secs(3600));
    assert!(
        outputs(&mut e).is_empty(),
        "the answered call is not released"
    );
    // A later list still runs.
    e.on_update_requested(Map::new());
    invoked(&mut e);
    e.on_response(read(respond(json!([speak("again")]))));
    assert_eq!(started(&mut e).parameters.to_map()["Text"], "again");
}

#[test]
fn a_null_answer_to_the_first_event_leaves_the_call_ringing() {
    let (mut e, t0) = engine();
    invoked(&mut e);
    e.on_response(ParsedResponse::from(Value::Null));
    assert!(outputs(&mut e).is_empty());
    e.handle_timeout(t0 + Duration::from_secs(30));
    assert!(matches!(
        outputs(&mut e).as_slice(),
        [Output::Hangup { status: 480, .. }]
    ));
}

#[test]
fn no_input_fails_with_the_configured_error_type() {
    for (config, expected) in [
        (NoInputError::default(), "InvalidDigitsReceived"),
        (
            NoInputError::InputTimeLimitExceeded,
            "InputTimeLimitExceeded",
        ),
    ] {
        let (mut e, _) = engine_with(EngineConfig {
            no_input_error: config,
            ..EngineConfig::default()
        });
        invoked(&mut e);
        e.on_response(read(respond(
            json!([{"Type": "SpeakAndGetDigits", "Parameters": {
            "SpeechParameters": {"Text": "PIN?"}, "MinNumberOfDigits": 4}}]),
        )));
        let s = started(&mut e);
        e.on_action_done(s.id, Outcome::NoInput);
        let data = invoked(&mut e).action_data.expect("action data");
        assert_eq!(data.error_type.as_deref(), Some(expected));
    }
}

#[test]
fn a_new_list_replaces_the_queue_after_the_running_action() {
    let (mut e, _) = engine();
    invoked(&mut e);
    let receive = json!({"Type": "ReceiveDigits", "Parameters": {
        "InputDigitsRegex": "^\\d$", "InBetweenDigitsDurationInMilliseconds": 1000,
        "FlushDigitsDurationInMilliseconds": 5000}});
    e.on_response(read(respond(json!([receive, speak("old")]))));
    let r = started(&mut e);
    e.on_action_done(r.id, ok());
    invoked(&mut e);
    e.on_response(read(respond(json!([speak("new")]))));
    assert_eq!(started(&mut e).parameters.to_map()["Text"], "new");
}

#[test]
fn digits_received_is_invoked_while_an_action_runs_and_replaces_what_is_queued() {
    let (mut e, _) = engine();
    invoked(&mut e);
    e.on_response(read(respond(json!([speak("playing"), speak("queued")]))));
    let running = started(&mut e);
    let listener = ActionData::new("ReceiveDigits", Map::new());
    e.on_digits_received(&listener, "*5");
    let event = invoked(&mut e);
    assert_eq!(event.invocation_event_type, EventType::DigitsReceived);
    assert_eq!(event.received_digits(), Some("*5"));
    e.on_response(read(respond(json!([speak("instead")]))));
    // The running action finishes first, then the new list runs; "queued" never does.
    assert!(outputs(&mut e).is_empty());
    e.on_action_done(running.id, ok());
    assert_eq!(started(&mut e).parameters.to_map()["Text"], "instead");
}

#[test]
fn a_failure_reports_and_discards_the_rest_of_the_list() {
    let (mut e, _) = engine();
    invoked(&mut e);
    e.on_response(read(respond(json!([speak("fails"), speak("never")]))));
    let a = started(&mut e);
    e.on_action_done(a.id, failed("InvalidAudioSource", "missing"));
    let event = invoked(&mut e);
    assert_eq!(event.invocation_event_type, EventType::ActionFailed);
    let data = event.action_data.unwrap();
    assert_eq!(data.error_type.as_deref(), Some("InvalidAudioSource"));
    e.on_response(read(respond(json!(null))));
    assert!(
        outputs(&mut e).is_empty(),
        "the rest of the list was discarded"
    );
}

#[test]
fn a_rule_broken_by_one_action_fails_it_in_its_turn() {
    let (mut e, _) = engine();
    invoked(&mut e);
    let bad_pause = json!({"Type": "Pause", "Parameters": {"DurationInMilliseconds": -5}});
    e.on_response(read(respond(json!([
        speak("first"),
        bad_pause,
        speak("never")
    ]))));
    let first = started(&mut e);
    assert_eq!(first.parameters.to_map()["Text"], "first");
    e.on_action_done(first.id, ok());
    let event = refused(&mut e);
    assert_eq!(event.invocation_event_type, EventType::ActionFailed);
    let data = event.action_data.unwrap();
    assert_eq!(data.r#type, "Pause");
    assert_eq!(
        data.parameters["DurationInMilliseconds"], -5,
        "echoed as received"
    );
    assert_eq!(data.error_type.as_deref(), Some("InvalidActionParameter"));
    assert!(data
        .error_message
        .unwrap()
        .contains("DurationInMilliseconds"));
}

#[test]
fn a_join_chime_meeting_without_its_token_fails_with_the_contracts_one_error() {
    let (mut e, _) = engine();
    invoked(&mut e);
    e.on_response(read(respond(json!([
        {"Type": "JoinChimeMeeting", "Parameters": {"MeetingId": "m-1"}}
    ]))));
    let event = refused(&mut e);
    let data = event.action_data.unwrap();
    assert_eq!(data.r#type, "JoinChimeMeeting");
    assert_eq!(data.parameters["MeetingId"], "m-1");
    assert_eq!(data.error_type.as_deref(), Some("InvalidActionParameter"));
    assert_eq!(
        data.error_message.as_deref(),
        Some("JoinToken parameter value is invalid.")
    );
}

#[test]
fn invalid_responses_get_invalid_lambda_response_then_a_hangup() {
    let (mut e, _) = engine();
    invoked(&mut e);
    e.on_response(read(
        json!({"SchemaVersion": "1.0", "Actions": [{"Type": "Answer", "Parameters": {}}]}),
    ));
    let event = invoked(&mut e);
    assert_eq!(
        event.invocation_event_type,
        EventType::InvalidLambdaResponse
    );
    assert_eq!(event.error_type.as_deref(), Some("UnsupportedAction"));
    assert_eq!(event.sequence, 2);
    e.on_response(read(json!({"SchemaVersion": "2.0"})));
    assert_eq!(
        outputs(&mut e),
        vec![Output::Hangup {
            call_id: LEG.into(),
            status: 480
        }]
    );
    // The leg ends; the handler that broke the contract is not invoked again.
    e.on_leg_ended(LEG, 480);
    assert_eq!(outputs(&mut e), vec![Output::Finished]);
}

#[test]
fn a_hangup_during_an_invocation_queues_and_the_late_actions_are_ignored() {
    let (mut e, _) = engine();
    invoked(&mut e);
    e.on_leg_ended(LEG, 0);
    assert!(outputs(&mut e).is_empty(), "one invocation at a time");
    e.on_response(read(respond(json!([speak("too late")]))));
    let event = invoked(&mut e);
    assert_eq!(event.invocation_event_type, EventType::Hangup);
    let data = event.action_data.unwrap();
    assert_eq!(data.r#type, "Hangup");
    assert_eq!(data.parameters["SipResponseCode"], 0);
    assert_eq!(data.parameters["ParticipantTag"], "LEG-A");
    assert_eq!(
        event.call_details.participants[0].status,
        Some(Status::Disconnected)
    );
    // A single-leg call's HANGUP response is ignored.
    e.on_response(read(respond(json!([speak("ignored")]))));
    assert_eq!(outputs(&mut e), vec![Output::Finished]);
}

#[test]
fn an_empty_answer_to_new_inbound_call_rings_until_the_unanswered_timeout() {
    let (mut e, t0) = engine();
    invoked(&mut e);
    e.on_response(read(respond(json!([]))));
    assert!(outputs(&mut e).is_empty());
    assert_eq!(e.poll_timeout(), Some(t0 + Duration::from_secs(30)));
    e.handle_timeout(t0 + Duration::from_secs(30));
    assert_eq!(
        outputs(&mut e),
        vec![Output::Hangup {
            call_id: LEG.into(),
            status: 480
        }]
    );
    e.on_leg_ended(LEG, 480);
    assert_eq!(invoked(&mut e).invocation_event_type, EventType::Hangup);
}

#[test]
fn an_answered_call_has_no_unanswered_timeout() {
    let (mut e, _) = engine();
    invoked(&mut e);
    e.on_leg_answered(LEG);
    assert_eq!(e.poll_timeout(), None);
}

#[test]
fn failed_invocations_are_retried_with_the_same_sequence_then_the_call_is_released() {
    let (mut e, t0) = engine_with(EngineConfig {
        retry_delay: Duration::from_millis(100),
        ..EngineConfig::default()
    });
    invoked(&mut e);
    e.on_response(read(respond(json!([speak("x")]))));
    let a = started(&mut e);
    e.on_action_done(a.id, ok());
    let event = invoked(&mut e);
    assert_eq!(event.sequence, 2);
    e.on_invoke_failed("connect", true, t0);
    assert!(outputs(&mut e).is_empty());
    e.handle_timeout(t0 + Duration::from_millis(100));
    let retry = invoked(&mut e);
    assert_eq!(retry.sequence, 2, "a retry keeps the sequence");
    e.on_invoke_failed("connect", true, t0 + Duration::from_millis(200));
    assert_eq!(
        outputs(&mut e),
        vec![Output::Hangup {
            call_id: LEG.into(),
            status: 480
        }]
    );
    e.on_leg_ended(LEG, 480);
    assert_eq!(
        outputs(&mut e),
        vec![Output::Finished],
        "no HANGUP to a dead handler"
    );
}

#[test]
fn the_first_invocation_is_not_retried_here() {
    // Failover across targets is the first invocation's retry (the shell's chain).
    let (mut e, t0) = engine();
    invoked(&mut e);
    e.on_invoke_failed("every target failed", true, t0);
    assert_eq!(
        outputs(&mut e),
        vec![Output::Hangup {
            call_id: LEG.into(),
            status: 480
        }]
    );
}

#[test]
fn the_invocation_limit_hangs_up() {
    let (mut e, _) = engine_with(EngineConfig {
        max_invocations: 2,
        ..EngineConfig::default()
    });
    invoked(&mut e);
    e.on_response(read(respond(json!([speak("x")]))));
    let a = started(&mut e);
    e.on_action_done(a.id, ok());
    invoked(&mut e);
    e.on_response(read(respond(json!([speak("y")]))));
    let b = started(&mut e);
    e.on_action_done(b.id, ok());
    assert_eq!(
        outputs(&mut e),
        vec![Output::Hangup {
            call_id: LEG.into(),
            status: 480
        }]
    );
}

#[test]
fn attributes_are_replaced_whole_kept_when_absent_and_cleared_by_an_empty_map() {
    let (mut e, _) = engine();
    invoked(&mut e);
    e.on_response(read(
        json!({"SchemaVersion": "1.0", "Actions": [speak("a"), speak("b")],
        "TransactionAttributes": {"k1": "v1", "k2": "v2"}}),
    ));
    let a = started(&mut e);
    e.on_action_done(a.id, ok());
    let b = started(&mut e);
    e.on_action_done(b.id, ok());
    let event = invoked(&mut e);
    assert_eq!(event.attribute("k1"), Some("v1"));
    e.on_response(read(
        json!({"SchemaVersion": "1.0", "Actions": [speak("c")],
        "TransactionAttributes": {"new": "x"}}),
    ));
    let c = started(&mut e);
    e.on_action_done(c.id, ok());
    let event = invoked(&mut e);
    assert_eq!(event.attribute("k1"), None);
    assert_eq!(event.attribute("new"), Some("x"));
    e.on_response(read(
        json!({"SchemaVersion": "1.0", "Actions": [speak("d")]}),
    ));
    let d = started(&mut e);
    e.on_action_done(d.id, ok());
    let event = invoked(&mut e);
    assert_eq!(event.attribute("new"), Some("x"), "absent keeps");
    e.on_response(read(
        json!({"SchemaVersion": "1.0", "Actions": [speak("e")],
        "TransactionAttributes": {}}),
    ));
    let f = started(&mut e);
    e.on_action_done(f.id, ok());
    let event = invoked(&mut e);
    assert!(
        event.call_details.transaction_attributes.is_none(),
        "{{}} clears"
    );
}

#[test]
fn call_update_interrupts_an_interruptible_action() {
    let (mut e, _) = engine();
    invoked(&mut e);
    let pause = json!({"Type": "Pause", "Parameters": {"DurationInMilliseconds": 5000}});
    e.on_response(read(respond(json!([pause]))));
    let p = started(&mut e);
    let mut args = Map::new();
    args.insert("Admit".into(), json!("yes"));
    e.on_update_requested(args);
    let event = invoked(&mut e);
    assert_eq!(event.invocation_event_type, EventType::CallUpdateRequested);
    assert_eq!(
        event.action_data.as_ref().unwrap().r#type,
        "CallUpdateRequest"
    );
    e.on_response(read(respond(json!([speak("welcome")]))));
    assert_eq!(outputs(&mut e), vec![Output::Interrupt(p.id)]);
    e.on_action_done(p.id, Outcome::Interrupted);
    let event = invoked(&mut e);
    assert_eq!(event.invocation_event_type, EventType::ActionInterrupted);
    // Informational: its response is ignored, the update's list runs.
    e.on_response(read(respond(json!([speak("ignored")]))));
    assert_eq!(started(&mut e).parameters.to_map()["Text"], "welcome");
}

#[test]
fn an_unknown_leg_fails_the_action() {
    let (mut e, _) = engine();
    invoked(&mut e);
    e.on_response(read(respond(
        json!([{"Type": "Speak", "Parameters": {"Text": "x", "CallId": "nope"}}]),
    )));
    let event = refused(&mut e);
    assert_eq!(event.invocation_event_type, EventType::ActionFailed);
    assert_eq!(
        event.action_data.unwrap().error_message.as_deref(),
        Some("CallId or ParticipantTag parameter for action is invalid.")
    );
}

#[test]
fn a_hangup_action_reports_as_hangup_not_action_successful() {
    let (mut e, _) = engine();
    invoked(&mut e);
    e.on_response(read(respond(
        json!([{"Type": "Hangup", "Parameters": {"SipResponseCode": "0"}}]),
    )));
    let h = started(&mut e);
    e.on_action_done(h.id, Outcome::Silent);
    assert!(outputs(&mut e).is_empty());
    e.on_leg_ended(LEG, 0);
    assert_eq!(invoked(&mut e).invocation_event_type, EventType::Hangup);
}

#[test]
fn a_caller_hanging_up_mid_action_ends_the_transaction_after_hangup() {
    let (mut e, _) = engine();
    invoked(&mut e);
    let pause = json!({"Type": "Pause", "Parameters": {"DurationInMilliseconds": 30000}});
    e.on_response(read(respond(json!([pause, speak("never")]))));
    let p = started(&mut e);
    e.on_leg_ended(LEG, 0);
    let event = invoked(&mut e);
    assert_eq!(event.invocation_event_type, EventType::Hangup);
    e.on_response(read(respond(json!([speak("ignored")]))));
    assert_eq!(outputs(&mut e), vec![Output::Finished]);
    // The stopped action's late report changes nothing.
    e.on_action_done(p.id, ok());
    assert!(outputs(&mut e).is_empty());
}

#[test]
fn a_deadline_overrun_is_not_retried() {
    let (mut e, t0) = engine();
    invoked(&mut e);
    e.on_response(read(respond(json!([speak("x")]))));
    let a = started(&mut e);
    e.on_action_done(a.id, ok());
    invoked(&mut e);
    e.on_invoke_failed("deadline", false, t0);
    assert_eq!(
        outputs(&mut e),
        vec![Output::Hangup {
            call_id: LEG.into(),
            status: 480
        }]
    );
}

#[test]
fn the_reporting_set_is_configurable() {
    let (mut e, _) = engine_with(EngineConfig {
        reporting: Some(vec!["Speak".into()]),
        ..EngineConfig::default()
    });
    invoked(&mut e);
    e.on_response(read(respond(json!([speak("reports"), speak("queued")]))));
    let a = started(&mut e);
    e.on_action_done(a.id, ok());
    assert_eq!(
        invoked(&mut e).invocation_event_type,
        EventType::ActionSuccessful
    );
}

const LEG_B: &str = "leg-b";

fn bridge() -> Value {
    json!({"Type": "CallAndBridge", "Parameters": {"CallerIdNumber": "+14255550199",
        "CallTimeoutSeconds": 20,
        "Endpoints": [{"BridgeEndpointType": "PSTN", "Uri": "+12065550177"}]}})
}

fn leg_b(call_id: &str) -> Participant {
    Participant {
        call_id: call_id.into(),
        participant_tag: ParticipantTag::LegB,
        to: "+12065550177".into(),
        from: "+14255550199".into(),
        direction: Direction::Outbound,
        start_time_in_milliseconds: "2".into(),
        status: None,
        sip_headers: None,
    }
}

/// NEW_INBOUND_CALL answered with a CallAndBridge: the bridge action running on LEG-A.
fn bridging() -> (CallEngine, Instant, ActionCommand) {
    let (mut e, t0) = engine();
    invoked(&mut e);
    e.on_response(read(respond(json!([bridge()]))));
    let b = started(&mut e);
    (e, t0, b)
}

fn status_of(event: &InvocationEvent, call_id: &str) -> Option<Status> {
    event
        .call_details
        .participants
        .iter()
        .find(|p| p.call_id == call_id)
        .and_then(|p| p.status)
}

#[test]
fn call_and_bridge_runs_on_the_invoking_leg_and_reports_leg_b_when_answered() {
    let (mut e, _, b) = bridging();
    assert_eq!(b.action.name(), "CallAndBridge");
    assert_eq!(b.call_id, LEG);
    // The unanswered caller's 30 s do not run while the bridge dials.
    assert_eq!(e.poll_timeout(), None);
    e.on_bridged(b.id, leg_b(LEG_B));
    let event = invoked(&mut e);
    assert_eq!(event.invocation_event_type, EventType::ActionSuccessful);
    let data = event.action_data.clone().expect("action data");
    assert_eq!(data.r#type, "CallAndBridge");
    // The echo names LEG-A, as the contract's success example does.
    assert_eq!(data.parameter_str("CallId"), Some(LEG));
    assert_eq!(event.call_details.participants.len(), 2);
    assert_eq!(status_of(&event, LEG_B), Some(Status::Connected));
    assert_eq!(
        event.call_details.participants[1].participant_tag,
        ParticipantTag::LegB
    );
    // LEG-A was answered with it: no unanswered timeout is left.
    assert_eq!(e.poll_timeout(), None);
}

#[test]
fn a_bridge_that_is_not_answered_fails_and_the_caller_gets_a_fresh_unanswered_timeout() {
    let (mut e, t0, b) = bridging();
    let later = t0 + Duration::from_secs(25);
    e.on_bridge_failed(b.id, "CallNotAnswered", "Call not answered", later);
    let event = invoked(&mut e);
    assert_eq!(event.invocation_event_type, EventType::ActionFailed);
    let data = event.action_data.clone().unwrap();
    assert_eq!(data.error_type.as_deref(), Some("CallNotAnswered"));
    assert_eq!(data.error_message.as_deref(), Some("Call not answered"));
    assert_eq!(event.call_details.participants.len(), 1, "no LEG-B");
    assert_eq!(e.poll_timeout(), Some(later + Duration::from_secs(30)));
    // A late answer of the failed bridge changes nothing.
    e.on_response(read(respond(json!([]))));
    e.on_bridged(b.id, leg_b(LEG_B));
    assert!(outputs(&mut e).is_empty());
}

#[test]
fn either_leg_hanging_up_is_its_own_hangup_and_the_other_leg_stays() {
    let (mut e, _, b) = bridging();
    e.on_bridged(b.id, leg_b(LEG_B));
    invoked(&mut e);
    e.on_response(read(respond(json!([]))));
    e.on_leg_ended(LEG_B, 0);
    let event = invoked(&mut e);
    assert_eq!(event.invocation_event_type, EventType::Hangup);
    let data = event.action_data.clone().unwrap();
    assert_eq!(data.parameter_str("CallId"), Some(LEG_B));
    assert_eq!(data.parameter_str("ParticipantTag"), Some("LEG-B"));
    assert_eq!(status_of(&event, LEG_B), Some(Status::Disconnected));
    assert_eq!(status_of(&event, LEG), Some(Status::Connected));
    // The answer to B's HANGUP runs on A, the leg that is left (§3.2).
    e.on_response(read(respond(json!([speak("the other party left")]))));
    let next = started(&mut e);
    assert_eq!(next.call_id, LEG);
}

#[test]
fn the_caller_leaving_a_bridged_call_leaves_leg_b_up_for_the_handler() {
    let (mut e, _, b) = bridging();
    e.on_bridged(b.id, leg_b(LEG_B));
    invoked(&mut e);
    e.on_response(read(respond(json!([]))));
    e.on_leg_ended(LEG, 0);
    let event = invoked(&mut e);
    assert_eq!(event.invocation_event_type, EventType::Hangup);
    assert!(outputs(&mut e).is_empty(), "B is not hung up by the engine");
    e.on_response(read(respond(json!([
        {"Type": "Hangup", "Parameters": {"ParticipantTag": "LEG-B", "SipResponseCode": "0"}}
    ]))));
    let hangup = started(&mut e);
    assert_eq!(hangup.call_id, LEG_B);
    e.on_action_done(hangup.id, Outcome::Silent);
    e.on_leg_ended(LEG_B, 0);
    assert_eq!(invoked(&mut e).invocation_event_type, EventType::Hangup);
    e.on_response(read(respond(json!([speak("nobody hears this")]))));
    assert_eq!(outputs(&mut e), vec![Output::Finished]);
}

#[test]
fn the_caller_hanging_up_while_leg_b_rings_ends_the_bridge_without_a_report() {
    let (mut e, _, b) = bridging();
    e.on_leg_ended(LEG, 487);
    let event = invoked(&mut e);
    assert_eq!(event.invocation_event_type, EventType::Hangup);
    e.on_response(read(respond(json!([]))));
    assert_eq!(outputs(&mut e), vec![Output::Finished]);
    // The bridge's late outcome is ignored.
    e.on_bridge_failed(b.id, "CallNotAnswered", "Call not answered", Instant::now());
    assert!(outputs(&mut e).is_empty());
}

#[test]
fn bridging_again_needs_leg_b_gone_and_the_new_leg_b_replaces_the_old() {
    let (mut e, t0, b) = bridging();
    e.on_bridged(b.id, leg_b(LEG_B));
    invoked(&mut e);
    e.on_response(read(respond(json!([bridge()]))));
    let event = refused(&mut e);
    let data = event.action_data.unwrap();
    assert_eq!(data.error_type.as_deref(), Some("InvalidActionParameter"));
    e.on_response(read(respond(json!([]))));
    e.on_leg_ended(LEG_B, 0);
    invoked(&mut e);
    e.on_response(read(respond(json!([bridge()]))));
    let again = started(&mut e);
    e.on_bridged(again.id, leg_b("leg-b-2"));
    let event = invoked(&mut e);
    let tags: Vec<(&str, ParticipantTag)> = event
        .call_details
        .participants
        .iter()
        .map(|p| (p.call_id.as_str(), p.participant_tag))
        .collect();
    assert_eq!(
        tags,
        vec![
            (LEG, ParticipantTag::LegA),
            ("leg-b-2", ParticipantTag::LegB)
        ]
    );
    let _ = t0;
}

fn outbound_details() -> CallDetails {
    let mut d = details();
    d.sip_rule_id = None;
    d.participants[0].direction = Direction::Outbound;
    d.participants[0].status = None;
    d
}

#[test]
fn an_api_call_starts_with_new_outbound_call_then_ringing_then_call_answered() {
    let mut args = Map::new();
    args.insert("event_id".into(), json!("123456"));
    let mut e = CallEngine::outbound(EngineConfig::default(), outbound_details(), Some(args));
    let first = invoked(&mut e);
    assert_eq!(first.invocation_event_type, EventType::NewOutboundCall);
    assert_eq!(first.sequence, 1);
    assert_eq!(first.call_details.participants[0].status, None);
    assert_eq!(
        first.action_data.as_ref().unwrap().parameters["Arguments"],
        json!({"event_id": "123456"})
    );
    // Actions are ignored here; the attributes are kept.
    e.on_response(read(
        json!({"SchemaVersion": "1.0", "Actions": [speak("ignored")],
        "TransactionAttributes": {"event_id": "123456"}}),
    ));
    assert!(outputs(&mut e).is_empty());
    assert_eq!(
        e.poll_timeout(),
        None,
        "no unanswered timer: the dialer times it"
    );
    e.on_ringing(LEG);
    let ringing = invoked(&mut e);
    assert_eq!(ringing.invocation_event_type, EventType::Ringing);
    assert!(ringing.action_data.is_none());
    e.on_response(read(respond(json!([speak("ignored too")]))));
    assert!(outputs(&mut e).is_empty());
    e.on_outbound_answered(LEG);
    let answered = invoked(&mut e);
    assert_eq!(answered.invocation_event_type, EventType::CallAnswered);
    assert_eq!(status_of(&answered, LEG), Some(Status::Connected));
    assert_eq!(
        answered
            .call_details
            .transaction_attributes
            .as_ref()
            .and_then(|a| a.get("event_id"))
            .map(String::as_str),
        Some("123456")
    );
    e.on_response(read(respond(json!([speak("press 1 to confirm")]))));
    assert_eq!(started(&mut e).call_id, LEG);
}

#[test]
fn an_api_call_nobody_answers_ends_with_hangup_and_its_status() {
    let mut e = CallEngine::outbound(EngineConfig::default(), outbound_details(), None);
    let first = invoked(&mut e);
    assert!(
        first.action_data.is_none(),
        "no ArgumentsMap, no ActionData"
    );
    e.on_response(read(respond(json!([]))));
    e.on_leg_ended(LEG, 486);
    let event = invoked(&mut e);
    assert_eq!(event.invocation_event_type, EventType::Hangup);
    assert_eq!(
        event.action_data.unwrap().parameters["SipResponseCode"],
        json!(486)
    );
    e.on_response(read(respond(json!([]))));
    assert_eq!(outputs(&mut e), vec![Output::Finished]);
}
