//! Test support: an engine for tests, events for the chaos guest. Locating and building
//! components is shared with the end-to-end tests (`sma-e2e`).
#![allow(dead_code)]

use sma_actions::InvocationEvent;
// Not every test binary that includes this module uses every helper.
#[allow(unused_imports)]
pub use sma_e2e::{built_example, cache_dir, rust_component};
use sma_handler::{EngineSettings, WasmEngine};
use std::time::Duration;

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
    sma_e2e::fixture_text(name)
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
