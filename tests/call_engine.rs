//! The call engine end to end: real SIP and RTP over loopback, baresip as the caller, real
//! handlers (the Rust IVR component, a scripted webhook, the misbehaving chaos component).
//! Each test checks the events the handler saw, the SIP outcome, what the caller heard, and
//! that every media port was released.

use serde_json::{json, Value};
use sma_e2e::call_records;
use sma_e2e::calls::{
    actions, assert_ports_free, best_correlation, kind, prompt_signal, wav, Baresip,
    ScriptedWebhook, SipCaller,
};
use sma_e2e::{rust_component, Serve};
use std::path::Path;
use std::time::Duration;

const NUMBER: &str = "+12065550100";

fn leg(event: &Value) -> String {
    event["CallDetails"]["Participants"][0]["CallId"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A configuration: the demo number routed to `endpoint`, media ports `media`, buckets under
/// `storage`, plus `extra` TOML.
fn config(endpoint: &str, media: (u16, u16), storage: &Path, extra: &str) -> String {
    format!(
        r#"
[media]
port_range = [{lo}, {hi}]
[storage]
root = "{storage}"
[node]
cdr_path = "{storage}/cdr.jsonl"
[[phone_numbers]]
number = "{NUMBER}"
[[applications]]
id = "app-1"
name = "first"
endpoint = "{endpoint}"
[[sip_rules]]
id = "rule-1"
name = "demo"
trigger_type = "ToPhoneNumber"
trigger_value = "{NUMBER}"
targets = [{{ application = "app-1", priority = 1 }}]
{extra}
"#,
        lo = media.0,
        hi = media.1,
        storage = storage.display()
    )
}

#[test]
fn baresip_hears_the_prompt_and_its_digits_reach_the_handler() {
    let storage = tempfile::tempdir().expect("tempdir");
    let prompt = prompt_signal(8000, 1.5);
    std::fs::create_dir_all(storage.path().join("prompts")).expect("bucket");
    std::fs::write(storage.path().join("prompts/menu.wav"), wav(&prompt, 8000)).expect("prompt");
    let webhook = ScriptedWebhook::start(|event| {
        match (kind(event), event["ActionData"]["Type"].as_str()) {
            ("NEW_INBOUND_CALL", _) => actions(json!([
                {"Type": "PlayAudio", "Parameters": {
                    "AudioSource": {"Type": "S3", "BucketName": "prompts", "Key": "menu.wav"}}},
                {"Type": "PlayAudioAndGetDigits", "Parameters": {
                    "AudioSource": {"Type": "S3", "BucketName": "prompts", "Key": "menu.wav"},
                    "FailureAudioSource": {"Type": "S3", "BucketName": "prompts", "Key": "menu.wav"},
                    "MinNumberOfDigits": 1, "MaxNumberOfDigits": 2, "TerminatorDigits": ["#"],
                    "InputDigitsRegex": "^\\d{2}#$",
                    "RepeatDurationInMilliseconds": 8000, "Repeat": 1}}
            ])),
            ("ACTION_SUCCESSFUL", Some("PlayAudioAndGetDigits")) => {
                actions(json!([{"Type": "Hangup", "Parameters": {"SipResponseCode": "0"}}]))
            }
            _ => actions(json!([])),
        }
    });
    let media = (25000, 25099);
    let serve = Serve::start(
        &config(&webhook.url, media, storage.path(), ""),
        &["udp:127.0.0.1:0"],
        &[],
    );
    let mut phone = Baresip::start((25200, 25299));
    phone.dial(&format!("sip:{NUMBER}@{}", serve.addr("udp")));
    phone.wait_for_log("Call established", Duration::from_secs(10));
    // Both prompts play (1.5 s each); press 4, 2, # during the second (barge-in).
    serve.wait_for_log(
        "starting action action=\"PlayAudioAndGetDigits\"",
        1,
        Duration::from_secs(10),
    );
    std::thread::sleep(Duration::from_millis(400));
    phone.send_digits("42#", Duration::from_millis(250));
    let events = webhook.wait_for(2, Duration::from_secs(15));
    assert_eq!(
        kind(&events[1]),
        "ACTION_SUCCESSFUL",
        "{}",
        serve
            .log()
            .lines()
            .filter(|l| l.contains("digit") || l.contains("action"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let events = webhook.wait_for(3, Duration::from_secs(15));
    phone.wait_for_log("terminated", Duration::from_secs(10));

    let kinds: Vec<&str> = events.iter().map(kind).collect();
    assert_eq!(
        kinds,
        ["NEW_INBOUND_CALL", "ACTION_SUCCESSFUL", "HANGUP"],
        "{events:#?}"
    );
    let first = &events[0];
    assert_eq!(first["Sequence"], 1);
    assert_eq!(first["CallDetails"]["SipRuleId"], "rule-1");
    assert_eq!(first["CallDetails"]["SipMediaApplicationId"], "app-1");
    let participant = &first["CallDetails"]["Participants"][0];
    assert_eq!(participant["To"], NUMBER);
    assert_eq!(participant["From"], "+14255550199");
    assert_eq!(participant["Direction"], "Inbound");
    assert_eq!(participant["ParticipantTag"], "LEG-A");
    let success = &events[1];
    assert_eq!(success["Sequence"], 2);
    assert_eq!(success["ActionData"]["Type"], "PlayAudioAndGetDigits");
    assert_eq!(success["ActionData"]["ReceivedDigits"], "42#");
    assert_eq!(success["ActionData"]["Parameters"]["CallId"], leg(first));
    assert_eq!(
        success["ActionData"]["Parameters"]["InputDigitsRegex"],
        "^\\d{2}#$"
    );
    let hangup = &events[2];
    assert_eq!(hangup["Sequence"], 3);
    assert_eq!(hangup["ActionData"]["Type"], "Hangup");
    assert_eq!(hangup["ActionData"]["Parameters"]["SipResponseCode"], 0);
    assert_eq!(
        hangup["CallDetails"]["Participants"][0]["Status"],
        "Disconnected"
    );

    // What baresip heard contains the prompt (G.711 round trip: correlation well above 0.9).
    let heard = phone.received();
    let score = best_correlation(&heard, &prompt);
    assert!(
        score > 0.9,
        "prompt correlation {score:.3} in {} samples",
        heard.len()
    );
    // A prompt it was not sent does not match.
    let other: Vec<i16> = prompt.iter().rev().copied().collect();
    assert!(best_correlation(&heard, &other) < 0.5);

    serve.wait_for_log("transaction finished", 1, Duration::from_secs(5));
    let records = call_records(storage.path());
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["Status"], "Completed");
    assert_eq!(records[0]["Invocations"], 3);
    assert_ports_free(media);
}

#[test]
fn the_rust_ivr_component_routes_a_caller_who_presses_1() {
    let storage = tempfile::tempdir().expect("tempdir");
    let ivr = rust_component("ivr_menu_rust.wasm");
    let media = (25300, 25399);
    let serve = Serve::start(
        &config(&ivr.display().to_string(), media, storage.path(), ""),
        &["udp:127.0.0.1:0"],
        &[],
    );
    let mut phone = Baresip::start((25400, 25499));
    phone.dial(&format!("sip:{NUMBER}@{}", serve.addr("udp")));
    phone.wait_for_log("Call established", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(1500));
    phone.send_digits("1", Duration::from_millis(100));
    serve.wait_for_log("digits collected digits=1", 1, Duration::from_secs(15));
    // The IVR announces the department and hangs up: sma sends the BYE.
    phone.wait_for_log("terminated", Duration::from_secs(20));
    serve.wait_for_log("transaction finished", 1, Duration::from_secs(5));
    let log = serve.log();
    assert!(log.contains("reason=LocalBye"), "{log}");
    let records = call_records(storage.path());
    assert_eq!(records[0]["Invocations"], 3, "{records:?}");
    assert!(
        phone.received().iter().any(|s| s.unsigned_abs() > 2000),
        "the caller heard speech"
    );
    assert_ports_free(media);
}

#[test]
fn recording_listening_sending_and_failing_actions_over_a_real_call() {
    let storage = tempfile::tempdir().expect("tempdir");
    let webhook = ScriptedWebhook::start(|event| {
        let call = leg(event);
        match (kind(event), event["ActionData"]["Type"].as_str()) {
            ("NEW_INBOUND_CALL", _) => actions(json!([
                {"Type": "StartCallRecording", "Parameters": {"CallId": call, "Track": "BOTH",
                    "Destination": {"Type": "S3", "Location": "recordings/calls"}}},
                {"Type": "ReceiveDigits", "Parameters": {"InputDigitsRegex": "^\\*\\d$",
                    "InBetweenDigitsDurationInMilliseconds": 300, "FlushDigitsDurationInMilliseconds": 1500}},
                {"Type": "Speak", "Parameters": {"CallId": call, "Text": "Leave a message after the tone."}},
                {"Type": "RecordAudio", "Parameters": {"CallId": call, "DurationInSeconds": "20",
                    "RecordingTerminators": ["#"],
                    "RecordingDestination": {"Type": "S3", "BucketName": "voicemail", "Prefix": "box-1/"}}}
            ])),
            ("ACTION_SUCCESSFUL", Some("RecordAudio")) => actions(json!([
                {"Type": "SendDigits", "Parameters": {"CallId": call, "Digits": "12", "ToneDurationInMilliseconds": 120}},
                {"Type": "PauseCallRecording", "Parameters": {"CallId": call}},
                {"Type": "Pause", "Parameters": {"DurationInMilliseconds": 300}},
                {"Type": "ResumeCallRecording", "Parameters": {"CallId": call}},
                {"Type": "StopCallRecording", "Parameters": {"CallId": call}},
                {"Type": "PlayAudio", "Parameters": {"AudioSource": {"Type": "S3", "BucketName": "prompts", "Key": "missing.wav"}}},
                {"Type": "Speak", "Parameters": {"CallId": call, "Text": "never spoken"}}
            ])),
            ("DIGITS_RECEIVED", _) => actions(json!([{"Type": "Hangup", "Parameters": {}}])),
            _ => actions(json!([])),
        }
    });
    let media = (25500, 25599);
    let serve = Serve::start(
        &config(&webhook.url, media, storage.path(), ""),
        &["udp:127.0.0.1:0"],
        &[],
    );
    let mut phone = Baresip::start((25600, 25699));
    phone.dial(&format!("sip:{NUMBER}@{}", serve.addr("udp")));
    phone.wait_for_log("Call established", Duration::from_secs(10));
    // StartCallRecording and ReceiveDigits report at once; the speech plays, then recording.
    webhook.wait_for(3, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(3500));
    phone.send_digits("#", Duration::from_millis(100));
    // RecordAudio reported, then the list with the failing PlayAudio.
    let events = webhook.wait_for(5, Duration::from_secs(15));
    // The listener's window holding the `#` closes (1.5 s) before `*5` opens a new one.
    std::thread::sleep(Duration::from_millis(1600));
    phone.send_digits("*5", Duration::from_millis(150));
    let events = {
        let _ = events;
        webhook.wait_for(7, Duration::from_secs(15))
    };
    phone.wait_for_log("terminated", Duration::from_secs(10));

    let summary: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                kind(e).to_owned(),
                e["ActionData"]["Type"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let expected = [
        ("NEW_INBOUND_CALL", ""),
        ("ACTION_SUCCESSFUL", "StartCallRecording"),
        ("ACTION_SUCCESSFUL", "ReceiveDigits"),
        ("ACTION_SUCCESSFUL", "RecordAudio"),
        ("ACTION_FAILED", "PlayAudio"),
        ("DIGITS_RECEIVED", "ReceiveDigits"),
        ("HANGUP", "Hangup"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(summary, expected, "{events:#?}");
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["Sequence"], i + 1);
    }
    let start = &events[1]["ActionData"];
    let location = start["CallRecordingDestination"]["Location"]
        .as_str()
        .unwrap();
    assert!(location.starts_with("recordings/calls/"), "{location}");
    assert_eq!(events[2]["ActionData"]["ReceivedDigits"], "");
    let record = &events[3]["ActionData"];
    assert_eq!(record["RecordingTerminatorUsed"], "#");
    let key = record["RecordingDestination"]["Key"].as_str().unwrap();
    assert!(key.starts_with("box-1/"), "{key}");
    assert_eq!(record["RecordingDestination"]["BucketName"], "voicemail");
    let failed = &events[4]["ActionData"];
    assert_eq!(failed["ErrorType"], "InvalidAudioSource");
    assert!(failed["ErrorMessage"]
        .as_str()
        .unwrap()
        .contains("missing.wav"));
    assert_eq!(events[5]["ActionData"]["ReceivedDigits"], "*5");

    // The voicemail is a real recording of the caller's 200 Hz hum.
    let (channels, rate, samples) =
        sma_e2e::calls::read_wav(&storage.path().join("voicemail").join(key));
    assert_eq!((channels, rate), (1, 8000));
    assert!(samples.len() > 8000, "{} samples", samples.len());
    assert!(
        samples.iter().any(|s| s.unsigned_abs() > 300),
        "the caller's audio was recorded"
    );
    // The call recording is stereo and was finalized on StopCallRecording.
    serve.wait_for_log("call recording delivered", 1, Duration::from_secs(5));
    let (channels, _, stereo) = sma_e2e::calls::read_wav(&storage.path().join(location));
    assert_eq!(channels, 2);
    assert!(stereo.len() > 2 * 8000);
    // SendDigits reached baresip as RFC 4733 events.
    let log = phone.log();
    for digit in ['1', '2'] {
        assert!(
            log.contains(&format!("received event: '{digit}'")),
            "baresip did not receive {digit}:\n{}",
            log.lines()
                .filter(|l| l.contains("event") || l.contains("DTMF"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    assert!(!serve.log().contains("never spoken"));
    serve.wait_for_log("transaction finished", 1, Duration::from_secs(5));
    assert_ports_free(media);
}

#[test]
fn failover_moves_to_the_next_target_when_the_first_traps_times_out_or_returns_garbage() {
    let storage = tempfile::tempdir().expect("tempdir");
    let chaos = rust_component("chaos_guest.wasm");
    let webhook = ScriptedWebhook::start(|event| match kind(event) {
        "NEW_INBOUND_CALL" => {
            actions(json!([{"Type": "Hangup", "Parameters": {"SipResponseCode": "486"}}]))
        }
        _ => actions(json!([])),
    });
    let extra = format!(
        r#"
[calls]
handler_deadline_ms = 1000
[[applications]]
id = "app-2"
name = "second"
region = "us-west-2"
endpoint = "{}"
[[phone_numbers]]
number = "+12065550111"
[[sip_rules]]
id = "rule-2"
name = "failover"
trigger_type = "ToPhoneNumber"
trigger_value = "+12065550111"
targets = [{{ application = "chaos", priority = 1 }}, {{ application = "app-2", priority = 2 }}]
[[applications]]
id = "chaos"
name = "chaos"
endpoint = "{}"
"#,
        webhook.url,
        chaos.display()
    );
    let media = (25700, 25799);
    // The demo rule is unused here; its endpoint must still exist.
    let serve = Serve::start(
        &config(&webhook.url, media, storage.path(), &extra),
        &["udp:127.0.0.1:0"],
        &[],
    );
    for (i, mode) in ["trap", "loop", "garbage"].iter().enumerate() {
        let mut caller = SipCaller::new(serve.addr("udp"));
        let response = caller.invite(
            &format!("sip:+12065550111@{}", serve.addr("udp")),
            &[format!("X-Chaos-Mode: {mode}")],
            Duration::from_secs(10),
        );
        // The second target answered NEW_INBOUND_CALL with Hangup 486: the call is rejected
        // with it, unanswered.
        assert_eq!(
            response.status,
            486,
            "{mode}: {}\n{}",
            response.text,
            serve.log()
        );
        let events = webhook.wait_for(2 * i + 1, Duration::from_secs(5));
        let first = events
            .iter()
            .rev()
            .find(|e| kind(e) == "NEW_INBOUND_CALL")
            .unwrap();
        assert_eq!(first["CallDetails"]["SipMediaApplicationId"], "app-2");
        assert_eq!(first["CallDetails"]["AwsRegion"], "us-west-2");
        assert_eq!(first["Sequence"], 1);
        assert_eq!(
            first["CallDetails"]["Participants"][0]["SipHeaders"]["X-Chaos-Mode"],
            *mode
        );
        webhook.wait_for(2 * i + 2, Duration::from_secs(5));
    }
    serve.wait_for_log("transaction finished", 3, Duration::from_secs(5));
    let records = call_records(storage.path());
    let kinds: Vec<String> = records
        .iter()
        .map(|r| r["Failures"][0].as_str().unwrap_or("").to_owned())
        .collect();
    assert!(kinds[0].contains("[trap]"), "{kinds:?}");
    assert!(kinds[1].contains("[deadline]"), "{kinds:?}");
    assert!(kinds[2].contains("[invalid_response]"), "{kinds:?}");
    assert_ports_free(media);
}

#[test]
fn every_target_failing_releases_the_call_with_480_and_a_record_of_why() {
    let storage = tempfile::tempdir().expect("tempdir");
    let chaos = rust_component("chaos_guest.wasm");
    let media = (25800, 25899);
    let serve = Serve::start(
        &config(&chaos.display().to_string(), media, storage.path(), ""),
        &["udp:127.0.0.1:0"],
        &[],
    );
    let mut caller = SipCaller::new(serve.addr("udp"));
    let response = caller.invite(
        &format!("sip:{NUMBER}@{}", serve.addr("udp")),
        &["X-Chaos-Mode: err".to_owned()],
        Duration::from_secs(10),
    );
    assert_eq!(response.status, 480, "{}", response.text);
    serve.wait_for_log("transaction finished", 1, Duration::from_secs(5));
    let records = call_records(storage.path());
    assert_eq!(records[0]["Status"], "Failed");
    assert_eq!(records[0]["SipResponseCode"], 480);
    assert!(
        records[0]["Failures"][0]
            .as_str()
            .unwrap()
            .contains("chaos guest refused"),
        "{records:?}"
    );
    assert_ports_free(media);
}

#[test]
fn routing_termination_and_admission_refuse_with_the_right_responses() {
    let storage = tempfile::tempdir().expect("tempdir");
    let webhook = ScriptedWebhook::start(|event| match kind(event) {
        "NEW_INBOUND_CALL" => {
            actions(json!([{"Type": "Hangup", "Parameters": {"SipResponseCode": "486"}}]))
        }
        _ => actions(json!([])),
    });
    let extra = r#"
[[phone_numbers]]
number = "+12065550122"
[[sip_rules]]
name = "disabled"
trigger_type = "ToPhoneNumber"
trigger_value = "+12065550122"
disabled = true
targets = [{ application = "app-1", priority = 1 }]

[[voice_connectors]]
name = "open pbx"
outbound_host_name = "open.vc.example"
termination = { cidr_allow_list = ["127.0.0.0/8"], cps_limit = 1, calling_regions = ["US"] }
[[sip_rules]]
name = "open trunk"
trigger_type = "RequestUriHostname"
trigger_value = "open.vc.example"
targets = [{ application = "app-1", priority = 1 }]

[[voice_connectors]]
name = "remote pbx"
outbound_host_name = "remote.vc.example"
termination = { cidr_allow_list = ["10.0.0.0/8"] }
[[sip_rules]]
name = "remote trunk"
trigger_type = "RequestUriHostname"
trigger_value = "remote.vc.example"
targets = [{ application = "app-1", priority = 1 }]

[[voice_connectors]]
name = "secure pbx"
outbound_host_name = "secure.vc.example"
require_encryption = true
termination = { cidr_allow_list = ["127.0.0.0/8"] }
[[sip_rules]]
name = "secure trunk"
trigger_type = "RequestUriHostname"
trigger_value = "secure.vc.example"
targets = [{ application = "app-1", priority = 1 }]

[[voice_connectors]]
name = "auth pbx"
outbound_host_name = "auth.vc.example"
termination = { cidr_allow_list = ["127.0.0.1/32"], credentials = [{ username = "pbx", password = "s3cret" }] }
[[sip_rules]]
name = "auth trunk"
trigger_type = "RequestUriHostname"
trigger_value = "auth.vc.example"
targets = [{ application = "app-1", priority = 1 }]
"#;
    let media = (25900, 25999);
    let serve = Serve::start(
        &config(&webhook.url, media, storage.path(), extra),
        &["udp:127.0.0.1:0"],
        &[],
    );
    let addr = serve.addr("udp");
    let call = |uri: &str, headers: &[String]| {
        SipCaller::new(addr).invite(uri, headers, Duration::from_secs(5))
    };
    // Unknown numbers and hosts, and disabled rules: 404 naming what did not match.
    let r = call(&format!("sip:+19995550100@{addr}"), &[]);
    assert_eq!(r.status, 404);
    assert!(
        r.header("Warning").unwrap().contains("+19995550100"),
        "{}",
        r.text
    );
    assert_eq!(call(&format!("sip:+12065550122@{addr}"), &[]).status, 404);
    assert_eq!(call("sip:alice@unknown.example", &[]).status, 404);
    // The number matches whatever way it is written.
    assert_eq!(
        call(&format!("sip:1-206-555-0100@{addr};user=phone"), &[]).status,
        486
    );
    // Termination: source not allowed (a plain refusal that names nothing), TLS required,
    // region not allowed (told to a source the connector trusts).
    let r = call("sip:+12065550100@remote.vc.example", &[]);
    assert_eq!(r.status, 403);
    assert_eq!(
        r.header("Warning").as_deref(),
        Some("399 sma \"forbidden\""),
        "{}",
        r.text
    );
    assert!(serve
        .log()
        .contains("is not in the allow list of voice connector remote pbx"));
    let r = call("sip:+12065550100@secure.vc.example", &[]);
    assert_eq!(r.status, 403);
    assert!(r.header("Warning").unwrap().contains("TLS"), "{}", r.text);
    let r = call("sip:+442079460000@open.vc.example", &[]);
    assert_eq!(r.status, 403);
    assert!(
        r.header("Warning").unwrap().contains("calling regions"),
        "{}",
        r.text
    );
    // Allowed; then over the connector's 1 call per second.
    assert_eq!(call("sip:+12065550100@open.vc.example", &[]).status, 486);
    let r = call("sip:+12065550100@open.vc.example", &[]);
    assert_eq!(r.status, 503, "{}", r.text);
    assert!(r.header("Retry-After").is_some(), "{}", r.text);
    // Digest credentials: challenged, then accepted; a wrong password is refused.
    let uri = "sip:+12065550100@auth.vc.example";
    let challenge = call(uri, &[]);
    assert_eq!(challenge.status, 407);
    let challenges: Vec<String> = challenge
        .text
        .lines()
        .filter_map(|l| l.strip_prefix("Proxy-Authenticate: ").map(str::to_owned))
        .collect();
    assert!(!challenges.is_empty(), "{}", challenge.text);
    let answer = |password: &str| {
        sma_sip::auth::Credentials {
            username: "pbx".into(),
            password: password.into(),
        }
        .answer(
            challenges.iter().map(String::as_str),
            "INVITE",
            uri,
            "abc",
            1,
        )
        .expect("answer the challenge")
    };
    let ok = call(uri, &[format!("Proxy-Authorization: {}", answer("s3cret"))]);
    assert_eq!(ok.status, 486, "{}", ok.text);
    let bad = call(uri, &[format!("Proxy-Authorization: {}", answer("wrong"))]);
    assert_eq!(bad.status, 403, "{}", bad.text);
    assert_ports_free(media);
}

#[test]
fn admission_control_refuses_beyond_the_concurrent_call_ceiling() {
    let storage = tempfile::tempdir().expect("tempdir");
    // The handler leaves calls ringing: each holds its slot until the unanswered timeout.
    let webhook = ScriptedWebhook::start(|_| actions(json!([])));
    let extra =
        "[calls]\nmax_concurrent_calls = 2\nunanswered_timeout_secs = 2\nretry_after_secs = 5\n";
    let media = (26000, 26099);
    let serve = Serve::start(
        &config(&webhook.url, media, storage.path(), extra),
        &["udp:127.0.0.1:0"],
        &[],
    );
    let addr = serve.addr("udp");
    let uri = format!("sip:{NUMBER}@{addr}");
    let held: Vec<_> = (0..2)
        .map(|_| {
            let uri = uri.clone();
            std::thread::spawn(move || {
                SipCaller::new(addr).invite(&uri, &[], Duration::from_secs(10))
            })
        })
        .collect();
    webhook.wait_for(2, Duration::from_secs(5));
    let refused = SipCaller::new(addr).invite(&uri, &[], Duration::from_secs(5));
    assert_eq!(refused.status, 503, "{}", refused.text);
    assert_eq!(refused.header("Retry-After").as_deref(), Some("5"));
    // The admitted calls were unharmed: each ended by the unanswered timeout (480).
    for h in held {
        assert_eq!(h.join().unwrap().status, 480);
    }
    let events = webhook.wait_for(4, Duration::from_secs(5));
    assert_eq!(events.iter().filter(|e| kind(e) == "HANGUP").count(), 2);
    assert_ports_free(media);
}

#[test]
fn a_cancel_during_the_first_invocation_ends_the_call_and_reports_hangup() {
    let storage = tempfile::tempdir().expect("tempdir");
    // A slow handler: the caller gives up while it is still deciding.
    let webhook = ScriptedWebhook::start(|event| match kind(event) {
        "NEW_INBOUND_CALL" => {
            std::thread::sleep(Duration::from_millis(800));
            actions(
                json!([{"Type": "Speak", "Parameters": {"CallId": leg(event), "Text": "too late"}}]),
            )
        }
        _ => actions(json!([])),
    });
    let media = (26100, 26199);
    let serve = Serve::start(
        &config(&webhook.url, media, storage.path(), ""),
        &["udp:127.0.0.1:0"],
        &[],
    );
    let mut caller = SipCaller::new(serve.addr("udp"));
    let (cancel, invite) = caller.invite_then_cancel(
        &format!("sip:{NUMBER}@{}", serve.addr("udp")),
        Duration::from_secs(5),
    );
    assert_eq!((cancel, invite), (200, 487));
    let events = webhook.wait_for(2, Duration::from_secs(5));
    assert_eq!(kind(&events[1]), "HANGUP");
    assert_eq!(
        events[1]["ActionData"]["Parameters"]["SipResponseCode"],
        487
    );
    serve.wait_for_log("transaction finished", 1, Duration::from_secs(5));
    // The late actions never ran: nothing was answered or spoken.
    assert!(!serve.log().contains("starting action"), "{}", serve.log());
    assert_eq!(webhook.events().len(), 2);
    assert_ports_free(media);
}

#[test]
fn bad_configurations_are_refused_with_an_error_naming_the_entry() {
    let storage = tempfile::tempdir().expect("tempdir");
    let base = |extra: &str| config("http://127.0.0.1:9/", (26200, 26299), storage.path(), extra);
    let cases = [
        (
            "[[sip_rules]]\nname = \"x\"\ntrigger_type = \"ToPhoneNumber\"\ntrigger_value = \"+12065550100\"\ntargets = [{ application = \"app-1\", priority = 1 }]\n",
            "another rule already triggers on +12065550100",
        ),
        (
            "[[sip_rules]]\nname = \"y\"\ntrigger_type = \"RequestUriHostname\"\ntrigger_value = \"h.example\"\ntargets = [{ application = \"nope\", priority = 1 }]\n",
            "target application `nope` is not defined",
        ),
        ("[[phone_numbers]]\nnumber = \"555-0100\"\n", "phone number `555-0100` is not E.164"),
        (
            "[[sip_rules]]\nname = \"z\"\ntrigger_type = \"ToPhoneNumber\"\ntrigger_value = \"+12065550199\"\ntargets = [{ application = \"app-1\", priority = 1 }]\n",
            "+12065550199 is not in phone_numbers",
        ),
        ("[calls]\nmax_calls = 3\n", "unknown field `max_calls`"),
    ];
    for (extra, expected) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sma.toml");
        std::fs::write(&path, base(extra)).expect("write");
        let out = std::process::Command::new(sma_e2e::sma())
            .args(["serve", "--config"])
            .arg(&path)
            .args(["--sip-listen", "udp:127.0.0.1:0"])
            .output()
            .expect("run sma serve");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{extra}: expected {expected:?} in {stderr}"
        );
    }
}

#[test]
fn a_handler_that_keeps_breaking_the_contract_is_hung_up_on() {
    let storage = tempfile::tempdir().expect("tempdir");
    let chaos = rust_component("chaos_guest.wasm");
    let media = (26300, 26399);
    let serve = Serve::start(
        &config(&chaos.display().to_string(), media, storage.path(), ""),
        &["udp:127.0.0.1:0"],
        &[],
    );
    // `invalid` answers every event with an unknown action (`Answer`).
    let mut caller = SipCaller::new(serve.addr("udp"));
    let response = caller.invite(
        &format!("sip:{NUMBER}@{}", serve.addr("udp")),
        &["X-Chaos-Mode: invalid".to_owned()],
        Duration::from_secs(10),
    );
    assert_eq!(response.status, 480, "{}", response.text);
    serve.wait_for_log("transaction finished", 1, Duration::from_secs(5));
    let log = serve.log();
    assert!(log.contains("event=\"INVALID_LAMBDA_RESPONSE\""), "{log}");
    assert!(log.contains("error_type=\"UnsupportedAction\""), "{log}");
    // NEW_INBOUND_CALL, then one INVALID_LAMBDA_RESPONSE; the second invalid answer ends it.
    assert_eq!(call_records(storage.path())[0]["Invocations"], 2);
    assert_ports_free(media);
}
