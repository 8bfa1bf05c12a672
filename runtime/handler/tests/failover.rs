//! The failover chain: a failing first target (trap, timeout, HTTP 500, connection refused)
//! and a healthy second one; cool-down of a repeatedly failing target on simulated time.

mod common;
#[path = "common/http.rs"]
mod http;

use common::*;
use http::{serve, Reply};
use sma_handler::{
    CoolDownPolicy, FailoverChain, HandlerEndpoint, Target, WasmLimits, WebhookClient,
    WebhookHandler,
};
use std::sync::atomic::Ordering;
use std::time::Duration;

fn wasm(file: &str, deadline_ms: u64) -> HandlerEndpoint {
    let limits = WasmLimits {
        deadline: Duration::from_millis(deadline_ms),
        ..WasmLimits::default()
    };
    HandlerEndpoint::Wasm(engine().load_file(&rust_component(file), limits).unwrap())
}

fn webhook(url: &str, deadline_ms: u64) -> HandlerEndpoint {
    HandlerEndpoint::Webhook(
        WebhookHandler::new(
            WebhookClient::new().unwrap(),
            url,
            Some(b"secret"),
            Duration::from_millis(deadline_ms),
        )
        .unwrap(),
    )
}

fn target(name: &str, region: &str, priority: u32, endpoint: HandlerEndpoint) -> Target {
    Target {
        name: name.into(),
        application_id: format!("app-{name}"),
        region: region.into(),
        priority,
        endpoint,
    }
}

fn healthy() -> Target {
    target("healthy", "us-west-2", 2, wasm("ivr_menu_rust.wasm", 5000))
}

async fn fails_over(first: HandlerEndpoint, expected_kind: &str) {
    // Listed out of order on purpose: priority decides.
    let chain = FailoverChain::new(
        vec![healthy(), target("failing", "us-east-1", 1, first)],
        CoolDownPolicy::default(),
    );
    let answered = chain.invoke(&chaos_event("trap")).await.unwrap();
    assert_eq!(answered.name, "healthy");
    assert_eq!(answered.target_index, 1);
    assert_eq!(answered.region, "us-west-2");
    assert_eq!(
        answered.response.to_value()["Actions"][0]["Type"],
        "SpeakAndGetDigits"
    );
    assert_eq!(answered.failures.len(), 1);
    let failure = &answered.failures[0];
    assert_eq!(failure.name, "failing");
    assert_eq!(failure.region, "us-east-1");
    assert_eq!(failure.error.kind(), expected_kind, "{}", failure.error);
}

#[tokio::test]
async fn trap_then_healthy() {
    fails_over(wasm("chaos_guest.wasm", 5000), "trap").await;
}

#[tokio::test]
async fn component_timeout_then_healthy() {
    let looping = wasm("chaos_guest.wasm", 150);
    let chain = FailoverChain::new(
        vec![target("looping", "us-east-1", 1, looping), healthy()],
        CoolDownPolicy::default(),
    );
    let answered = chain.invoke(&chaos_event("loop")).await.unwrap();
    assert_eq!(answered.name, "healthy");
    assert_eq!(answered.failures[0].error.kind(), "deadline");
}

#[tokio::test]
async fn webhook_timeout_then_healthy() {
    let slow = serve(Reply::Slow(Duration::from_secs(10), "{}".into())).await;
    fails_over(webhook(&slow.url, 200), "deadline").await;
}

#[tokio::test]
async fn http_500_then_healthy() {
    let broken = serve(Reply::Status(500, "internal error".into())).await;
    fails_over(webhook(&broken.url, 5000), "http_status").await;
}

#[tokio::test]
async fn connection_refused_then_healthy() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    fails_over(
        webhook(&format!("http://127.0.0.1:{port}/"), 5000),
        "connect",
    )
    .await;
}

#[tokio::test]
async fn each_target_sees_the_event_addressed_to_itself() {
    let broken = serve(Reply::Status(503, "unavailable".into())).await;
    let recorder = serve(Reply::Status(200, r#"{"SchemaVersion":"1.0"}"#.into())).await;
    let chain = FailoverChain::new(
        vec![
            target("first", "eu-west-1", 1, webhook(&broken.url, 5000)),
            target("second", "us-west-2", 2, webhook(&recorder.url, 5000)),
        ],
        CoolDownPolicy::default(),
    );
    let event = event("new_inbound_call.json");
    chain.invoke(&event).await.unwrap();
    let (_, body) = recorder.seen.last.lock().unwrap().clone().unwrap();
    let seen: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(seen["CallDetails"]["SipMediaApplicationId"], "app-second");
    assert_eq!(seen["CallDetails"]["AwsRegion"], "us-west-2");
    assert_eq!(seen["Sequence"], 1);
    assert_eq!(
        seen["CallDetails"]["TransactionId"],
        event.call_details.transaction_id
    );
}

#[tokio::test]
async fn all_failing_lists_every_reason() {
    let broken = serve(Reply::Status(500, "no".into())).await;
    let chain = FailoverChain::new(
        vec![
            target("trapping", "us-east-1", 1, wasm("chaos_guest.wasm", 5000)),
            target("broken", "us-west-2", 2, webhook(&broken.url, 5000)),
        ],
        CoolDownPolicy::default(),
    );
    let all = chain.invoke(&chaos_event("trap")).await.unwrap_err();
    let kinds: Vec<_> = all.failures.iter().map(|f| f.error.kind()).collect();
    assert_eq!(kinds, ["trap", "http_status"]);
    let text = all.to_string();
    assert!(
        text.contains("trapping") && text.contains("broken"),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn repeatedly_failing_target_cools_down_then_gets_another_chance() {
    let policy = CoolDownPolicy {
        failures_before_cool_down: 3,
        cool_down: Duration::from_secs(30),
    };
    let chain = FailoverChain::new(
        vec![
            target("flaky", "us-east-1", 1, wasm("chaos_guest.wasm", 5000)),
            healthy(),
        ],
        policy,
    );
    let first_failure = |a: &sma_handler::Answered| a.failures.first().map(|f| f.error.kind());
    for _ in 0..3 {
        let a = chain.invoke(&chaos_event("trap")).await.unwrap();
        assert_eq!(first_failure(&a), Some("trap"));
    }
    // Cooling down: skipped without being invoked, even though it would now succeed.
    let a = chain.invoke(&chaos_event("ok")).await.unwrap();
    assert_eq!(a.name, "healthy");
    assert_eq!(first_failure(&a), Some("cooling_down"));
    tokio::time::advance(Duration::from_secs(29)).await;
    let a = chain.invoke(&chaos_event("ok")).await.unwrap();
    assert_eq!(first_failure(&a), Some("cooling_down"));
    // After the cool-down it is tried again, and one success clears its record.
    tokio::time::advance(Duration::from_secs(2)).await;
    let a = chain.invoke(&chaos_event("ok")).await.unwrap();
    assert_eq!(a.name, "flaky");
    assert!(a.failures.is_empty());
    let a = chain.invoke(&chaos_event("trap")).await.unwrap();
    assert_eq!(first_failure(&a), Some("trap"));
    let a = chain.invoke(&chaos_event("ok")).await.unwrap();
    assert_eq!(a.name, "flaky", "one failure does not start a cool-down");
}

#[tokio::test(start_paused = true)]
async fn when_every_target_cools_down_they_are_tried_anyway() {
    let chain = FailoverChain::new(
        vec![target(
            "only",
            "us-east-1",
            1,
            wasm("chaos_guest.wasm", 5000),
        )],
        CoolDownPolicy::default(),
    );
    for _ in 0..5 {
        let all = chain.invoke(&chaos_event("trap")).await.unwrap_err();
        assert_eq!(all.failures[0].error.kind(), "trap");
    }
    assert!(chain.invoke(&chaos_event("ok")).await.is_ok());
}

#[tokio::test]
async fn webhook_failures_do_not_leave_connections_hanging() {
    let broken = serve(Reply::Status(500, "no".into())).await;
    let endpoint = webhook(&broken.url, 5000);
    for _ in 0..3 {
        assert!(endpoint.invoke("{}", "tx").await.is_err());
    }
    assert_eq!(broken.seen.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_call_invoker_honours_the_instance_mode() {
    use sma_handler::InstanceMode;
    let counter = |mode| {
        let limits = WasmLimits {
            instance_mode: mode,
            ..WasmLimits::default()
        };
        HandlerEndpoint::Wasm(
            engine()
                .load_file(&rust_component("chaos_guest.wasm"), limits)
                .unwrap(),
        )
    };
    let event = json(&chaos_event("counter"));
    for (mode, expected) in [
        (InstanceMode::FreshPerInvocation, ["1", "1", "1"]),
        (InstanceMode::ReusePerCall, ["1", "2", "3"]),
    ] {
        let endpoint = counter(mode);
        let mut call = endpoint.for_call();
        for want in expected {
            let v = call.invoke(&event, "tx").await.unwrap();
            assert_eq!(
                v.to_value()["TransactionAttributes"]["invocations"],
                want,
                "{mode:?}"
            );
        }
        // The next call starts from a fresh instance whatever the mode.
        let v = endpoint.for_call().invoke(&event, "tx2").await.unwrap();
        assert_eq!(
            v.to_value()["TransactionAttributes"]["invocations"],
            "1",
            "{mode:?}"
        );
    }
}
