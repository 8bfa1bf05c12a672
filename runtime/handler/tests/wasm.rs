//! Component invocation: each failure class is distinct, instances are fresh, limits hold.

mod common;

use common::*;
use sma_actions::{Limits, ResponseError};
use sma_handler::cache::CacheOutcome;
use sma_handler::{InvokeError, WasmLimits};
use std::time::{Duration, Instant};

fn chaos(limits: WasmLimits) -> sma_handler::WasmHandler {
    engine()
        .load_file(&rust_component("chaos_guest.wasm"), limits)
        .expect("load chaos guest")
}

fn short_deadline() -> WasmLimits {
    WasmLimits {
        deadline: Duration::from_millis(200),
        ..WasmLimits::default()
    }
}

#[test]
fn rust_example_answers_and_validates() {
    let handler = engine()
        .load_file(&rust_component("ivr_menu_rust.wasm"), WasmLimits::default())
        .unwrap();
    let e = event("new_inbound_call.json");
    let response = handler.invoke(&json(&e), "tx").unwrap();
    // The host types the response straight from its text (no JSON tree).
    assert!(response.is_typed());
    let valid = response
        .validate("1.0", &Limits::default())
        .map_err(|r| r.error)
        .unwrap();
    let actions = valid.actions.unwrap();
    assert_eq!(actions[0].action.name(), "SpeakAndGetDigits");
}

/// The core modules a component embeds, each with whether it imports its memory.
fn core_modules(component: &[u8]) -> Vec<bool> {
    let mut modules = Vec::new();
    let mut depth = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(component) {
        match payload.expect("a component the linker wrote") {
            wasmparser::Payload::ModuleSection { .. } => {
                modules.push(false);
                depth += 1;
            }
            wasmparser::Payload::ImportSection(imports) if depth > 0 => {
                for import in imports.into_imports() {
                    let import = import.expect("an import entry");
                    if matches!(import.ty, wasmparser::TypeRef::Memory(_)) {
                        if let Some(last) = modules.last_mut() {
                            *last = true;
                        }
                    }
                }
            }
            wasmparser::Payload::End(_) if depth > 0 => depth -= 1,
            _ => {}
        }
    }
    modules
}

#[test]
fn no_std_handlers_import_their_memory_so_the_log_import_needs_no_shim() {
    // A module that defines its memory gets two extra core modules (a shim and its fixup)
    // for any import that reads a string from that memory; every fresh instance would
    // instantiate and reset them. Linked with `--import-memory` (.cargo/config.toml), the
    // handler is one module beside the one that defines the memory.
    for file in ["ivr_menu_rust.wasm", "chaos_nostd_guest.wasm"] {
        let bytes = std::fs::read(rust_component(file)).unwrap();
        let modules = core_modules(&bytes);
        assert_eq!(modules.len(), 2, "{file}: {modules:?}");
        assert_eq!(
            modules
                .iter()
                .filter(|imports_memory| **imports_memory)
                .count(),
            1,
            "{file}: the handler's module imports the memory the other defines"
        );
    }
}

fn chaos_nostd(limits: WasmLimits) -> sma_handler::WasmHandler {
    engine()
        .load_file(&rust_component("chaos_nostd_guest.wasm"), limits)
        .expect("load no_std chaos guest")
}

#[test]
fn no_std_handlers_import_nothing_but_the_log() {
    // The IVR example is `no_std` on wasm: the component must not import the WASI that
    // `std` drags in, or every fresh instance pays to instantiate it again.
    let ivr = engine()
        .load_file(&rust_component("ivr_menu_rust.wasm"), WasmLimits::default())
        .unwrap();
    assert_eq!(ivr.imports(), ["sma:handler/log@0.1.0"]);
    assert_eq!(
        chaos_nostd(WasmLimits::default()).imports(),
        ["sma:handler/log@0.1.0"]
    );
    // The same SDK used from a crate with `std` still builds, and imports WASI.
    let std_imports = chaos(WasmLimits::default()).imports();
    assert!(
        std_imports.iter().any(|i| i.starts_with("wasi:cli/stderr")),
        "{std_imports:?}"
    );
}

#[test]
fn no_std_panic_is_reported_with_its_message() {
    let err = chaos_nostd(short_deadline())
        .invoke(&json(&chaos_event("trap")), "tx")
        .unwrap_err();
    match err {
        InvokeError::Trap(message) => assert!(
            message.contains("no_std chaos guest asked to trap") && message.contains("lib.rs"),
            "{message}"
        ),
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[test]
fn no_std_allocator_stops_at_the_memory_cap_and_reuses_what_is_freed() {
    let limits = WasmLimits {
        memory_bytes: 16 << 20,
        ..short_deadline()
    };
    let handler = chaos_nostd(limits);
    let err = handler
        .invoke(&json(&chaos_event("oom")), "tx")
        .unwrap_err();
    assert_eq!(
        err,
        InvokeError::OutOfMemory {
            limit_bytes: 16 << 20
        }
    );
    // 256 MiB allocated and freed 1 MiB at a time: fits 16 MiB only because blocks are
    // reused. Writing it all takes a while on a loaded machine: a generous deadline.
    let value = chaos_nostd(WasmLimits {
        memory_bytes: 16 << 20,
        deadline: Duration::from_secs(20),
        ..WasmLimits::default()
    })
    .invoke(&json(&chaos_event("churn")), "tx")
    .unwrap();
    assert_eq!(
        value.to_value()["TransactionAttributes"]["churned"],
        "268435456"
    );
    let err = handler
        .invoke(&json(&chaos_event("loop")), "tx")
        .unwrap_err();
    assert_eq!(
        err,
        InvokeError::DeadlineExceeded(Duration::from_millis(200))
    );
    // The instance after all that is as good as new.
    let value = handler.invoke(&json(&chaos_event("ok")), "tx").unwrap();
    assert_eq!(value.to_value()["Actions"][0]["Type"], "Hangup");
}

#[test]
fn trap_is_reported_with_the_panic_message() {
    let err = chaos(short_deadline())
        .invoke(&json(&chaos_event("trap")), "tx")
        .unwrap_err();
    match err {
        InvokeError::Trap(message) => {
            assert!(message.contains("chaos guest asked to trap"), "{message}")
        }
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[test]
fn endless_loop_is_stopped_at_the_deadline() {
    let start = Instant::now();
    let err = chaos(short_deadline())
        .invoke(&json(&chaos_event("loop")), "tx")
        .unwrap_err();
    let took = start.elapsed();
    assert_eq!(
        err,
        InvokeError::DeadlineExceeded(Duration::from_millis(200))
    );
    assert!(
        took >= Duration::from_millis(200),
        "stopped early: {took:?}"
    );
    // Bounded, generously for a loaded CI machine: interruption must not wait for anything else.
    assert!(took < Duration::from_secs(5), "stopped late: {took:?}");
}

#[test]
fn unbounded_allocation_is_out_of_memory() {
    let limits = WasmLimits {
        memory_bytes: 16 << 20,
        ..short_deadline()
    };
    let err = chaos(limits)
        .invoke(&json(&chaos_event("oom")), "tx")
        .unwrap_err();
    assert_eq!(
        err,
        InvokeError::OutOfMemory {
            limit_bytes: 16 << 20
        }
    );
}

#[test]
fn text_that_is_not_json_is_an_invalid_response() {
    let err = chaos(short_deadline())
        .invoke(&json(&chaos_event("garbage")), "tx")
        .unwrap_err();
    assert!(
        matches!(err, InvokeError::InvalidResponse(ResponseError::NotJson(_))),
        "{err:?}"
    );
}

#[test]
fn blank_response_reaches_validation_as_empty() {
    let value = chaos(short_deadline())
        .invoke(&json(&chaos_event("blank")), "tx")
        .unwrap();
    let err = value
        .validate("1.0", &Limits::default())
        .map_err(|r| r.error)
        .unwrap_err();
    assert_eq!(err, ResponseError::Empty);
}

#[test]
fn handler_err_is_reported() {
    let err = chaos(short_deadline())
        .invoke(&json(&chaos_event("err")), "tx")
        .unwrap_err();
    assert_eq!(err, InvokeError::HandlerError("chaos guest refused".into()));
}

#[test]
fn contract_violations_are_responses_not_invocation_failures() {
    let value = chaos(short_deadline())
        .invoke(&json(&chaos_event("invalid")), "tx")
        .unwrap();
    let err = value
        .validate("1.0", &Limits::default())
        .map_err(|r| r.error)
        .unwrap_err();
    assert_eq!(err.disposition().error_type(), "UnsupportedAction");
}

#[test]
fn every_invocation_gets_a_fresh_instance() {
    let handler = chaos(short_deadline());
    for _ in 0..3 {
        let v = handler
            .invoke(&json(&chaos_event("counter")), "tx")
            .unwrap();
        assert_eq!(v.to_value()["TransactionAttributes"]["invocations"], "1");
    }
}

#[test]
fn a_call_session_reuses_its_instance_and_recovers_after_a_failure() {
    let handler = chaos(short_deadline());
    let mut session = handler.session();
    for expected in ["1", "2", "3"] {
        let v = session
            .invoke(&json(&chaos_event("counter")), "tx")
            .unwrap();
        assert_eq!(
            v.to_value()["TransactionAttributes"]["invocations"],
            expected
        );
    }
    assert!(matches!(
        session.invoke(&json(&chaos_event("trap")), "tx"),
        Err(InvokeError::Trap(_))
    ));
    // The trapped instance was discarded: counting starts again.
    let v = session
        .invoke(&json(&chaos_event("counter")), "tx")
        .unwrap();
    assert_eq!(v.to_value()["TransactionAttributes"]["invocations"], "1");
    // Another call's session never sees this one's state.
    let v = handler
        .session()
        .invoke(&json(&chaos_event("counter")), "tx")
        .unwrap();
    assert_eq!(v.to_value()["TransactionAttributes"]["invocations"], "1");
}

#[test]
fn an_instance_kept_for_a_call_does_not_grow_its_memory() {
    // The `no_std` example on its own heap, one instance for 10,000 events under a 1 MiB cap:
    // a few hundred bytes kept per event would run out after about 2,000 of them.
    let handler = engine()
        .load_file(
            &rust_component("ivr_menu_rust.wasm"),
            WasmLimits {
                memory_bytes: 1024 * 1024,
                ..WasmLimits::default()
            },
        )
        .unwrap();
    let mut session = handler.session();
    let e = json(&event("new_inbound_call.json"));
    for n in 0..10_000 {
        if let Err(error) = session.invoke(&e, "tx") {
            panic!("event {n} of the call failed: {error}");
        }
    }
}

#[test]
fn a_failure_does_not_poison_the_handler() {
    let handler = chaos(short_deadline());
    assert!(handler.invoke(&json(&chaos_event("loop")), "tx").is_err());
    assert!(handler.invoke(&json(&chaos_event("oom")), "tx").is_err());
    let v = handler.invoke(&json(&chaos_event("ok")), "tx").unwrap();
    assert_eq!(v.to_value()["Actions"][0]["Type"], "Hangup");
}

#[test]
fn compiled_artifacts_are_cached_by_content() {
    let dir = tempfile::tempdir().unwrap();
    let engine = sma_handler::WasmEngine::new(sma_handler::EngineSettings {
        max_instances: 8,
        cache_dir: dir.path().to_owned(),
        ..Default::default()
    })
    .unwrap();
    let bytes = std::fs::read(rust_component("chaos_guest.wasm")).unwrap();
    let first = engine
        .load_bytes(&bytes, "chaos", WasmLimits::default())
        .unwrap();
    assert_eq!(first.cache_outcome(), CacheOutcome::Compiled);
    let second = engine
        .load_bytes(&bytes, "chaos", WasmLimits::default())
        .unwrap();
    assert_eq!(second.cache_outcome(), CacheOutcome::Hit);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    // A corrupted artifact is recompiled, not trusted.
    let artifact = std::fs::read_dir(dir.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(&artifact, b"not an artifact").unwrap();
    let third = engine
        .load_bytes(&bytes, "chaos", WasmLimits::default())
        .unwrap();
    assert_eq!(third.cache_outcome(), CacheOutcome::Compiled);
    assert!(third.invoke(&json(&chaos_event("ok")), "tx").is_ok());
}

#[test]
fn bytes_that_are_not_a_component_fail_to_load() {
    let err = engine()
        .load_bytes(b"\0asm garbage", "garbage", WasmLimits::default())
        .err()
        .expect("garbage must not load");
    assert!(
        matches!(err, InvokeError::Load(ref m) if m.contains("garbage")),
        "{err:?}"
    );
}

#[test]
fn a_component_of_another_world_fails_to_load_naming_the_import() {
    // A component that imports a function the runtime does not grant.
    let wat = r#"(component
        (import "example:secret/vault" (instance (export "open" (func))))
    )"#;
    let bytes = wat::parse_str(wat).unwrap();
    let err = engine()
        .load_bytes(&bytes, "other-world", WasmLimits::default())
        .err()
        .expect("must not link");
    assert!(
        matches!(err, InvokeError::Load(ref m) if m.contains("example:secret/vault")),
        "{err:?}"
    );
}

#[test]
fn js_and_python_examples_answer() {
    for path in [
        "examples/hello-js/dist/hello-js.wasm",
        "examples/hello-python/dist/hello-python.wasm",
    ] {
        let handler = engine()
            .load_file(&built_example(path), WasmLimits::default())
            .unwrap();
        let v = handler
            .invoke(&fixture("action_successful.json"), "tx")
            .unwrap();
        // The host types the response straight from its text (no JSON tree).
        assert!(v.is_typed(), "{path}");
        let valid = v
            .validate("1.0", &Limits::default())
            .map_err(|r| r.error)
            .unwrap();
        let names: Vec<_> = valid
            .actions
            .unwrap()
            .iter()
            .map(|a| a.action.name())
            .collect();
        assert_eq!(names, ["Speak", "Hangup"], "{path}");
        assert_eq!(
            valid.transaction_attributes.unwrap()["department"],
            "sales",
            "{path}"
        );
        // A session (per-call reuse) gives the same answers.
        let mut session = handler.session();
        for _ in 0..2 {
            let v = session
                .invoke(&fixture("new_inbound_call.json"), "tx")
                .unwrap();
            assert_eq!(
                v.to_value()["Actions"][0]["Type"],
                "SpeakAndGetDigits",
                "{path}"
            );
        }
    }
}

#[test]
fn exhausted_instance_pool_is_a_capacity_failure_not_a_trap() {
    let engine = sma_handler::WasmEngine::new(sma_handler::EngineSettings {
        max_instances: 1,
        cache_dir: cache_dir(),
        ..Default::default()
    })
    .unwrap();
    let handler = engine
        .load_file(&rust_component("chaos_guest.wasm"), WasmLimits::default())
        .unwrap();
    // A call session holds the only instance slot.
    let mut session = handler.session();
    session.invoke(&json(&chaos_event("ok")), "tx-1").unwrap();
    let err = handler
        .invoke(&json(&chaos_event("ok")), "tx-2")
        .unwrap_err();
    assert_eq!(err.kind(), "capacity", "{err}");
    drop(session);
    handler.invoke(&json(&chaos_event("ok")), "tx-2").unwrap();
}

#[test]
fn a_component_that_cannot_start_within_its_memory_limit_loads_and_each_call_says_why() {
    // Loading instantiates the component once (to build its memory image off the call path);
    // that failing does not fail the load: the invocations report the reason.
    let limits = WasmLimits {
        memory_bytes: 4 << 10,
        ..short_deadline()
    };
    let handler = chaos(limits);
    for _ in 0..2 {
        let err = handler.invoke(&json(&chaos_event("ok")), "tx").unwrap_err();
        assert_eq!(
            err,
            InvokeError::OutOfMemory {
                limit_bytes: 4 << 10
            }
        );
    }
}
