//! Test support: locating (and building) test components, loading fixtures.
#![allow(dead_code)]

use sma_actions::InvocationEvent;
use sma_handler::{EngineSettings, WasmEngine};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// Builds the workspace's Rust test and example components once per test binary.
pub fn rust_component(file: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(root())
            .args(["build", "--profile", "guest", "--target", "wasm32-wasip2"])
            .args(["-p", "chaos-guest", "-p", "ivr-menu-rust"])
            .status()
            .expect("run cargo to build the test components");
        assert!(status.success(), "building the Rust test components failed");
    });
    target_dir().join("wasm32-wasip2/guest").join(file)
}

/// A component the setup script builds (JavaScript, Python).
pub fn built_example(relative: &str) -> PathBuf {
    let path = root().join(relative);
    assert!(
        path.is_file(),
        "{} is missing: run `./dev build-examples` (the README's test command does)",
        path.display()
    );
    path
}

pub fn cache_dir() -> PathBuf {
    target_dir().join("sma-test-component-cache")
}

pub fn engine() -> WasmEngine {
    WasmEngine::new(EngineSettings {
        max_instances: 64,
        epoch_tick: Duration::from_millis(2),
        cache_dir: cache_dir(),
        ..EngineSettings::default()
    })
    .expect("engine")
}

pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(root().join("actions/tests/fixtures/events").join(name))
        .expect("fixture")
}

pub fn event(name: &str) -> InvocationEvent {
    serde_json::from_str(&fixture(name)).expect("fixture parses")
}

/// The NEW_INBOUND_CALL fixture with `TransactionAttributes.mode` set, for the chaos guest.
pub fn chaos_event(mode: &str) -> InvocationEvent {
    let mut e = event("new_inbound_call.json");
    e.call_details.transaction_attributes = Some([("mode".to_owned(), mode.to_owned())].into());
    e
}

pub fn json(e: &InvocationEvent) -> String {
    serde_json::to_string(e).expect("serialize")
}
