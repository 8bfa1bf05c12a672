//! Golden fixtures: every event type and every action, read and written back unchanged.

use serde_json::Value;
use sma_actions::{
    validate_response, Action, EventType, InvocationEvent, Limits, ACTION_NAMES, SCHEMA_VERSION,
};
use std::collections::BTreeSet;
use std::fs;

fn fixtures(kind: &str) -> Vec<(String, Value)> {
    let dir = manifest_dir().join("tests/fixtures").join(kind);
    let mut out: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let text = fs::read_to_string(&p).unwrap();
            (
                p.display().to_string(),
                serde_json::from_str(&text).unwrap(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn every_event_fixture_round_trips() {
    let mut seen = BTreeSet::new();
    for (path, json) in fixtures("events") {
        let event: InvocationEvent =
            serde_json::from_value(json.clone()).unwrap_or_else(|e| panic!("{path}: {e}"));
        seen.insert(event.invocation_event_type.as_str());
        assert_eq!(
            event.action_data.is_some(),
            event.invocation_event_type.has_action_data(),
            "{path}: ActionData presence"
        );
        let back = serde_json::to_value(&event).unwrap();
        assert_eq!(back, json, "{path} changed on a round trip");
    }
    let all: BTreeSet<_> = EventType::ALL.iter().map(|t| t.as_str()).collect();
    assert_eq!(seen, all, "a fixture for every event type");
}

#[test]
fn every_action_fixture_round_trips_and_validates() {
    let mut seen = BTreeSet::new();
    for (path, json) in fixtures("actions") {
        let action: Action =
            serde_json::from_value(json.clone()).unwrap_or_else(|e| panic!("{path}: {e}"));
        seen.insert(action.name());
        assert_eq!(serde_json::to_value(&action).unwrap(), json, "{path}");

        let body = serde_json::json!({"SchemaVersion": "1.0", "Actions": [json.clone()]});
        let validated = validate_response(
            body.to_string().as_bytes(),
            SCHEMA_VERSION,
            &Limits::default(),
        )
        .unwrap_or_else(|e| panic!("{path}: {e}"));
        let actions = validated.actions.as_ref().unwrap();
        assert_eq!(actions[0].action, action, "{path}");
        assert_eq!(validated.to_value(), body, "{path}: validated echo");
    }
    assert_eq!(
        seen,
        ACTION_NAMES.iter().copied().collect(),
        "a fixture for every action"
    );
}

#[test]
fn event_helpers_read_the_fixture() {
    let text =
        fs::read_to_string(manifest_dir().join("tests/fixtures/events/action_successful.json"))
            .unwrap();
    let event: InvocationEvent = serde_json::from_str(&text).unwrap();
    assert_eq!(event.received_digits(), Some("1"));
    assert_eq!(event.action_type(), Some("SpeakAndGetDigits"));
    assert_eq!(event.attribute("menu"), Some("main"));
    assert_eq!(
        event.invoking_participant().unwrap().call_id,
        "bbff30c5-866a-41b0-8d53-3b3e9a4a2c01"
    );
}

#[test]
fn defaults_come_from_the_contract() {
    use sma_actions::DigitCollection;
    let p: sma_actions::PlayAudioAndGetDigits = serde_json::from_value(serde_json::json!({
        "AudioSource": {"Type": "S3", "BucketName": "b", "Key": "k"},
        "FailureAudioSource": {"Type": "S3", "BucketName": "b", "Key": "f"},
        "RepeatDurationInMilliseconds": "7000"
    }))
    .unwrap();
    assert_eq!(p.min_digits(), 0);
    assert_eq!(p.max_digits(), 128);
    assert_eq!(p.terminators(), vec!["#"]);
    assert_eq!(p.in_between_ms(), 7000);
    assert_eq!(p.attempts(), 1);
    let h = sma_actions::Hangup::default();
    assert_eq!(h.sip_response_code(), 0);
}

/// This crate's directory, from the `CARGO_MANIFEST_DIR` cargo sets when it runs the test (not
/// the one baked in at compile time: a clone at another path may share the target directory,
/// and cargo can reuse a test binary built there).
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}
