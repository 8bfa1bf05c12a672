//! The command line itself: help, version, and usage errors.

use std::process::Command;

fn sma(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sma"))
        .args(args)
        .output()
        .expect("run sma")
}

#[test]
fn version_and_help() {
    let out = sma(&["--version"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("sma "));
    let out = sma(&["invoke", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("--handler") && help.contains("--event"),
        "{help}"
    );
}

#[test]
fn missing_arguments_are_usage_errors() {
    let out = sma(&["invoke", "--event", "x.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--handler"));
}

#[test]
fn unreadable_event_names_the_file() {
    let out = sma(&[
        "invoke",
        "--handler",
        "x.wasm",
        "--event",
        "/nonexistent/event.json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot read event /nonexistent/event.json")
    );
}
