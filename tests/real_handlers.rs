//! Handlers written the way handlers for the hosted service are (our own fixtures in
//! `tests/handlers/`, Python and Node.js, behind thin Lambda adapters) run unchanged, through
//! `sma serve` with real calls and through `sma simulate`, and both tell the same story.

use serde_json::Value;
use sma_e2e::calls::{assert_ports_free, Baresip};
use sma_e2e::lambda::{summary, LambdaWebhook};
use sma_e2e::{sma, Serve};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const NUMBER: &str = "+12065550100";

/// The number routed to `endpoint`, media ports `media`, buckets under `storage`, plus `extra`.
fn config(endpoint: &str, media: (u16, u16), storage: &Path, extra: &str) -> String {
    std::fs::create_dir_all(storage.join("prompts")).expect("prompts bucket");
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
name = "hosted-style"
endpoint = "{endpoint}"
[[sip_rules]]
id = "rule-1"
name = "hosted-style"
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

/// Runs a `sma call` scenario (its steps) against `serve`; panics with the timeline unless
/// every step passed.
fn call(serve: &Serve, rtp: &str, steps: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("scenario.yaml");
    std::fs::write(
        &file,
        // The caller's number is the one `sma simulate` uses, so both runs see the same call.
        format!(
            "call:\n  to: sip:{NUMBER}@127.0.0.1:5060\n  from: sip:+15555550123@127.0.0.1\nsteps:\n{steps}"
        ),
    )
    .expect("scenario");
    let out = Command::new(sma())
        .args(["call", "--no-record", "--rtp-ports", rtp, "--target"])
        .arg(serve.addr("udp").to_string())
        .arg("--scenario")
        .arg(&file)
        .env("NO_COLOR", "1")
        .output()
        .expect("sma call");
    assert!(
        out.status.success(),
        "{}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        serve.log()
    );
}

/// `sma simulate` of `handler` with a script; returns the timeline's events as
/// `(type, ActionData.Type, ErrorType)`, the actions returned, and the printed timeline.
fn simulate(
    handler: &str,
    script: &str,
    config: Option<&Path>,
) -> (Vec<(String, String, String)>, Vec<String>, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("flow.yaml");
    std::fs::write(&file, format!("script:\n{script}")).expect("flow");
    let json = dir.path().join("timeline.json");
    let mut cmd = Command::new(sma());
    cmd.args(["simulate", "--handler", handler, "--scenario"])
        .arg(&file)
        .arg("--json")
        .arg(&json);
    if let Some(config) = config {
        cmd.arg("--config").arg(config);
    }
    let out = cmd.output().expect("sma simulate");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{printed}");
    let timeline: Value =
        serde_json::from_slice(&std::fs::read(&json).expect("timeline")).expect("JSON");
    let entries = timeline["timeline"].as_array().expect("entries").clone();
    let events: Vec<Value> = entries
        .iter()
        .filter(|e| e.get("event").is_some())
        .map(|e| serde_json::json!({"event": e["event"]}))
        .collect();
    let actions = entries
        .iter()
        .filter_map(|e| e["action"]["Type"].as_str().map(str::to_owned))
        .collect();
    (summary(&events), actions, printed)
}

fn triples(list: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    list.iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect()
}

#[test]
fn a_python_number_entry_handler_with_look_ahead_and_blank_targets_runs_unchanged() {
    let handler = LambdaWebhook::python("number_entry.py");
    let storage = tempfile::tempdir().expect("tempdir");
    let media = (28000, 28099);
    let serve = Serve::start(
        &config(&handler.url, media, storage.path(), ""),
        &["udp:127.0.0.1:0"],
        &[],
    );
    let collected = [
        ("NEW_INBOUND_CALL", "", ""),
        ("ACTION_SUCCESSFUL", "SpeakAndGetDigits", ""),
        ("HANGUP", "Hangup", ""),
    ];
    let refused = [
        ("NEW_INBOUND_CALL", "", ""),
        (
            "ACTION_FAILED",
            "SpeakAndGetDigits",
            "InvalidDigitsReceived",
        ),
        ("HANGUP", "Hangup", ""),
    ];

    // A number the look-ahead lets through: collected, spoken back, hung up.
    call(
        &serve,
        "28100-28199",
        "  - expect: answered\n  - expect_audio: {min_ms: 800, within: 10s}\n  - send_digits: \"12065550100#\"\n  - expect_audio: {min_ms: 800, within: 15s}\n  - expect_hangup: 20s\n",
    );
    let x = handler.wait_for(3, Duration::from_secs(10));
    assert_eq!(summary(&x), triples(&collected), "{x:#?}");
    assert_eq!(x[1]["event"]["ActionData"]["ReceivedDigits"], "12065550100");
    // The speech actions named no leg: the echo names the one they ran on.
    let leg = x[0]["event"]["CallDetails"]["Participants"][0]["CallId"].clone();
    assert_eq!(x[1]["event"]["ActionData"]["Parameters"]["CallId"], leg);
    assert_eq!(
        x[2]["event"]["CallDetails"]["TransactionAttributes"]["number"],
        "12065550100"
    );
    assert!(x[2]["response"].is_null(), "the handler answered None");

    // A premium number: the look-ahead refuses it, the handler's InvalidDigitsReceived branch.
    handler.clear();
    call(
        &serve,
        "28100-28199",
        "  - expect: answered\n  - expect_audio: {min_ms: 800, within: 10s}\n  - send_digits: \"19005550100#\"\n  - expect_audio: {min_ms: 800, within: 15s}\n  - expect_hangup: 25s\n",
    );
    let x = handler.wait_for(3, Duration::from_secs(10));
    assert_eq!(summary(&x), triples(&refused), "{x:#?}");

    // No digits at all: the same branch, by default.
    handler.clear();
    call(
        &serve,
        "28100-28199",
        "  - expect: answered\n  - expect_audio: {min_ms: 800, within: 10s}\n  - expect_hangup: 30s\n",
    );
    let x = handler.wait_for(3, Duration::from_secs(10));
    assert_eq!(summary(&x), triples(&refused), "{x:#?}");
    serve.wait_for_log("transaction finished", 3, Duration::from_secs(5));
    assert_ports_free(media);

    // The same flows through `sma simulate`, with the same outcomes.
    let (events, actions, printed) = simulate(&handler.url, "  - digits: \"12065550100\"\n", None);
    assert_eq!(events, triples(&collected), "{printed}");
    assert_eq!(
        actions,
        ["SpeakAndGetDigits", "Speak", "Hangup"],
        "{printed}"
    );
    for script in ["  - invalid_digits\n", "  - no_input\n"] {
        let (events, actions, printed) = simulate(&handler.url, script, None);
        assert_eq!(events, triples(&refused), "{printed}");
        assert_eq!(
            actions,
            ["SpeakAndGetDigits", "Speak", "Hangup"],
            "{printed}"
        );
    }

    // With `[calls] no_input_error = "InputTimeLimitExceeded"` the handler does not recognise
    // the failure and answers None: the call stays up until the caller hangs up.
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = dir.path().join("sma.toml");
    std::fs::write(
        &toml,
        config(
            &handler.url,
            media,
            storage.path(),
            "[calls]\nno_input_error = \"InputTimeLimitExceeded\"\n",
        ),
    )
    .expect("sma.toml");
    let (events, actions, printed) = simulate(&handler.url, "  - no_input\n", Some(&toml));
    assert_eq!(
        events,
        triples(&[
            ("NEW_INBOUND_CALL", "", ""),
            (
                "ACTION_FAILED",
                "SpeakAndGetDigits",
                "InputTimeLimitExceeded"
            ),
            ("HANGUP", "Hangup", ""),
        ]),
        "{printed}"
    );
    assert_eq!(actions, ["SpeakAndGetDigits"], "{printed}");
    assert!(
        printed.contains("the caller hangs up: nothing was left to do"),
        "{printed}"
    );
}

#[test]
fn a_node_handler_answering_undefined_after_a_failure_keeps_the_call_up() {
    let handler = LambdaWebhook::node("announcement.js");
    let storage = tempfile::tempdir().expect("tempdir");
    let media = (28200, 28299);
    let toml = config(&handler.url, media, storage.path(), "");
    let serve = Serve::start(&toml, &["udp:127.0.0.1:0"], &[]);
    let mut phone = Baresip::start((28300, 28399));
    phone.dial(&format!("sip:{NUMBER}@{}", serve.addr("udp")));
    phone.wait_for_log("Call established", Duration::from_secs(10));
    let x = handler.wait_for(2, Duration::from_secs(15));
    let expected_failure = ("ACTION_FAILED", "PlayAudio", "InvalidAudioSource");
    assert_eq!(
        summary(&x),
        triples(&[("NEW_INBOUND_CALL", "", ""), expected_failure]),
        "{x:#?}"
    );
    let failed = &x[1]["event"]["ActionData"];
    let leg = &x[0]["event"]["CallDetails"]["Participants"][0]["CallId"];
    assert_eq!(
        failed["Parameters"]["CallId"], *leg,
        "blank CallId echoed as the leg"
    );
    assert_eq!(
        failed["Parameters"]["Description"],
        "the announcement, not uploaded yet"
    );
    assert_eq!(
        x[1]["event"]["CallDetails"]["TransactionAttributes"]["step"],
        "announcement"
    );
    assert!(x[1]["response"].is_null(), "undefined went out as null");
    // The handler had nothing to add: the call stays up, silent, not hung up on.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(handler.exchanges().len(), 2);
    assert!(!phone.log().contains("terminated"), "{}", phone.log());
    phone.command("hangup", "");
    let x = handler.wait_for(3, Duration::from_secs(10));
    assert!(
        phone.received().iter().any(|s| s.unsigned_abs() > 1000),
        "the welcome speech was heard"
    );
    assert_eq!(summary(&x)[2].0, "HANGUP");
    assert_eq!(
        x[2]["event"]["ActionData"]["Parameters"]["SipResponseCode"],
        0
    );
    serve.wait_for_log("transaction finished", 1, Duration::from_secs(5));
    drop(phone);
    assert_ports_free(media);

    // `sma simulate` with the same sma.toml fails the same PlayAudio the same way.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("sma.toml");
    std::fs::write(&file, &toml).expect("sma.toml");
    let (events, actions, printed) = simulate(&handler.url, "  []\n", Some(&file));
    assert_eq!(
        events,
        triples(&[
            ("NEW_INBOUND_CALL", "", ""),
            expected_failure,
            ("HANGUP", "Hangup", "")
        ]),
        "{printed}"
    );
    assert_eq!(actions, ["VoiceFocus", "Speak", "Pause", "PlayAudio"]);
}

#[test]
fn simulate_bridges_as_serve_does_and_the_handler_sees_leg_b_or_its_failure() {
    let handler = LambdaWebhook::python("forward.py");
    let storage = tempfile::tempdir().expect("tempdir");
    let media = (28400, 28499);
    // Nothing routes the forwarded number here (no association, rule or carrier): the bridge
    // fails with CallNotAnswered, and the handler apologises.
    let serve = Serve::start(
        &config(&handler.url, media, storage.path(), ""),
        &["udp:127.0.0.1:0"],
        &[],
    );
    call(
        &serve,
        "28500-28599",
        "  - expect: answered\n  - expect_audio: {min_ms: 500, within: 10s}\n  - expect_hangup: 15s\n",
    );
    let served = summary(&handler.wait_for(3, Duration::from_secs(10)));
    let expected = triples(&[
        ("NEW_INBOUND_CALL", "", ""),
        ("ACTION_FAILED", "CallAndBridge", "CallNotAnswered"),
        ("HANGUP", "Hangup", ""),
    ]);
    assert_eq!(served, expected);
    let (simulated, actions, printed) = simulate(&handler.url, "  - not_answered\n", None);
    assert_eq!(simulated, served, "{printed}");
    assert_eq!(actions, ["CallAndBridge", "Speak", "Hangup"], "{printed}");
    // Answered in the simulation: the handler finds LEG-B in the participants.
    let (simulated, actions, printed) = simulate(&handler.url, "  []\n", None);
    assert_eq!(
        simulated,
        triples(&[
            ("NEW_INBOUND_CALL", "", ""),
            ("ACTION_SUCCESSFUL", "CallAndBridge", ""),
            ("HANGUP", "Hangup", ""),
            ("HANGUP", "Hangup", ""),
        ]),
        "{printed}"
    );
    assert_eq!(actions, ["CallAndBridge"], "{printed}");
    assert!(
        handler
            .exchanges()
            .iter()
            .all(|x| x["response"].get("error").is_none()),
        "the handler never crashed on its participants list"
    );
    assert_ports_free(media);
}
