//! `sma invoke` on all four examples through one scripted call flow, its exit codes, and
//! failover from the command line.

use serde_json::Value;
use sma_e2e::*;
use std::io::Write;
use std::process::{Command, Output, Stdio};

fn invoke(handlers: &[String], event: &std::path::Path, extra: &[&str]) -> Output {
    let mut cmd = Command::new(sma());
    cmd.arg("invoke")
        .arg("--event")
        .arg(event)
        .arg("--cache-dir")
        .arg(cache_dir());
    for h in handlers {
        cmd.arg("--handler").arg(h);
    }
    cmd.args(extra)
        .env("SMA_LOG", "warn")
        .output()
        .expect("run sma invoke")
}

fn ok_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "sma invoke failed ({:?}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is the response JSON")
}

fn types(v: &Value) -> Vec<String> {
    v["Actions"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| x["Type"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The menu flow every example implements.
fn run_call_flow(handler: &str, extra: &[&str]) {
    let h = [handler.to_owned()];
    let greet = ok_json(&invoke(&h, &fixture("new_inbound_call.json"), extra));
    assert_eq!(types(&greet), ["SpeakAndGetDigits"], "{handler}");
    assert_eq!(greet["TransactionAttributes"]["menu"], "main", "{handler}");
    let p = &greet["Actions"][0]["Parameters"];
    assert_eq!(
        p["CallId"], "bbff30c5-866a-41b0-8d53-3b3e9a4a2c01",
        "{handler}"
    );
    assert!(
        p["SpeechParameters"]["Text"]
            .as_str()
            .unwrap()
            .contains("press 1"),
        "{handler}"
    );

    let chosen = ok_json(&invoke(&h, &fixture("action_successful.json"), extra));
    assert_eq!(types(&chosen), ["Speak", "Hangup"], "{handler}");
    assert_eq!(
        chosen["TransactionAttributes"]["department"], "sales",
        "{handler}"
    );
    assert!(chosen["Actions"][0]["Parameters"]["Text"]
        .as_str()
        .unwrap()
        .contains("sales"));

    let failed = ok_json(&invoke(&h, &fixture("action_failed.json"), extra));
    assert_eq!(types(&failed), ["Speak", "Hangup"], "{handler}");

    let hangup = ok_json(&invoke(&h, &fixture("hangup.json"), extra));
    assert!(types(&hangup).is_empty(), "{handler}");
}

#[test]
fn rust_component_example() {
    run_call_flow(
        &rust_component("ivr_menu_rust.wasm").display().to_string(),
        &[],
    );
}

#[test]
fn javascript_component_example() {
    run_call_flow(
        &built_example("examples/hello-js/dist/hello-js.wasm")
            .display()
            .to_string(),
        &[],
    );
}

#[test]
fn python_component_example() {
    let path = built_example("examples/hello-python/dist/hello-python.wasm");
    run_call_flow(&path.display().to_string(), &[]);
}

#[test]
fn python_webhook_example() {
    let webhook = PythonWebhook::start("e2e-secret");
    run_call_flow(&webhook.url, &["--secret", "e2e-secret"]);
    // A wrong secret is refused by the receiver's signature check.
    let out = invoke(
        std::slice::from_ref(&webhook.url),
        &fixture("new_inbound_call.json"),
        &["--secret", "wrong"],
    );
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("HTTP 401") && stderr.contains("signature mismatch"),
        "{stderr}"
    );
}

#[test]
fn event_from_standard_input() {
    let event = std::fs::read(fixture("new_inbound_call.json")).unwrap();
    let mut child = Command::new(sma())
        .args(["invoke", "--event", "-", "--handler"])
        .arg(rust_component("ivr_menu_rust.wasm"))
        .arg("--cache-dir")
        .arg(cache_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&event).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(types(&ok_json(&out)), ["SpeakAndGetDigits"]);
}

#[test]
fn fails_over_from_the_command_line() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = format!("http://127.0.0.1:{port}/");
    let healthy = rust_component("ivr_menu_rust.wasm").display().to_string();
    let out = invoke(
        &[dead.clone(), healthy.clone()],
        &fixture("new_inbound_call.json"),
        &[],
    );
    assert_eq!(types(&ok_json(&out)), ["SpeakAndGetDigits"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("failed over: {dead}")) && stderr.contains("[connect]"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("answered by: {healthy}")),
        "{stderr}"
    );
}

/// An event file telling the chaos guest how to misbehave (its `TransactionAttributes.mode`).
fn chaos_event_file(mode: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sma-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut event: Value =
        serde_json::from_slice(&std::fs::read(fixture("new_inbound_call.json")).unwrap()).unwrap();
    event["CallDetails"]["TransactionAttributes"] = serde_json::json!({ "mode": mode });
    let path = dir.join(format!("{mode}.json"));
    std::fs::write(&path, event.to_string()).unwrap();
    path
}

#[test]
fn exit_3_when_no_handler_answers() {
    let chaos = rust_component("chaos_guest.wasm").display().to_string();
    let out = invoke(
        &[chaos],
        &chaos_event_file("loop"),
        &["--deadline-ms", "200"],
    );
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("exceeded its deadline of 200 ms") && stderr.contains("[deadline]"),
        "{stderr}"
    );
}

#[test]
fn exit_4_names_the_broken_rule() {
    let chaos = rust_component("chaos_guest.wasm").display().to_string();
    let out = invoke(&[chaos], &chaos_event_file("invalid"), &[]);
    assert_eq!(out.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("action 0 (Answer)") && stderr.contains("unsupported action name `Answer`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("INVALID_LAMBDA_RESPONSE with ErrorType UnsupportedAction"),
        "{stderr}"
    );
}

#[test]
fn a_blank_answer_is_null_not_a_broken_contract() {
    let chaos = rust_component("chaos_guest.wasm").display().to_string();
    let out = invoke(&[chaos], &chaos_event_file("blank"), &[]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "null");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("changes nothing"), "{stderr}");
}

#[test]
fn exit_2_for_a_bad_event() {
    let dir = std::env::temp_dir().join(format!("sma-e2e-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.json");
    std::fs::write(&path, r#"{"SchemaVersion":"1.0","Sequence":"one"}"#).unwrap();
    let out = invoke(
        &[rust_component("ivr_menu_rust.wasm").display().to_string()],
        &path,
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not a valid invocation event: at `Sequence`"),
        "{stderr}"
    );
    let out = invoke(
        &["/nonexistent/handler.wasm".into()],
        &fixture("hangup.json"),
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/handler.wasm"));
}

#[test]
fn a_reader_that_goes_away_is_not_a_crash() {
    // `sma invoke … | head -1`: the read end closes before the response is written.
    let mut child = Command::new(sma())
        .args(["invoke", "--event"])
        .arg(fixture("new_inbound_call.json"))
        .arg("--handler")
        .arg(rust_component("ivr_menu_rust.wasm"))
        .arg("--cache-dir")
        .arg(cache_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}
