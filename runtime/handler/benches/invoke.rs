//! Invocation cost of each example handler for a realistic NEW_INBOUND_CALL event:
//! instantiate + call + parse + validate, and a webhook round trip over loopback.
//!
//! Criterion reports means with confidence intervals; afterwards a second pass times every
//! iteration on its own and prints p50/p90/p99/max, next to a baseline measured in the same
//! run (parse + validate of the same response with no handler at all), so figures can be read
//! as ratios on a noisy machine. `SMA_BENCH_QUICK=1` shortens both passes (CI).

use criterion::Criterion;
use sma_actions::{InvocationEvent, Limits, ParsedResponse};
use sma_e2e::{built_example, root, rust_component, target_dir, PythonWebhook};
use sma_handler::{
    EngineSettings, WasmEngine, WasmHandler, WasmLimits, WebhookClient, WebhookHandler,
};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The allocator the `sma` binary runs with (see `runtime/server/src/main.rs`): the figures
/// are the runtime's, allocations included.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn quick() -> bool {
    std::env::var_os("SMA_BENCH_QUICK").is_some()
}

fn validate(response: ParsedResponse) {
    let valid = response
        .validate("1.0", &Limits::default())
        .expect("valid response");
    assert!(valid.actions.is_some());
}

/// What the host does with a response's text when no handler runs: read it, validate it.
fn read_and_validate(text: &str) {
    validate(ParsedResponse::read(text, &Limits::default()).expect("JSON"));
}

/// A minimal keep-alive HTTP responder: measures the runtime's side of a webhook round trip.
fn start_rust_responder(rt: &tokio::runtime::Runtime, body: &'static str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    rt.spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            s.set_nodelay(true).ok();
            tokio::spawn(async move {
                let mut buf = Vec::with_capacity(8192);
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                loop {
                    let mut chunk = [0u8; 8192];
                    let n = match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        if buf.len() < end + 4 + len {
                            break;
                        }
                        buf.drain(..end + 4 + len);
                        if s.write_all(response.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    url
}

type Case<'a> = (&'a str, Box<dyn FnMut() + 'a>, usize);

/// Prints p50/p90/p99/max of `samples`.
fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "{name:<38} p50 {:>10.1?}  p90 {:>10.1?}  p99 {:>10.1?}  max {:>10.1?}  (n={})",
        at(0.50),
        at(0.90),
        at(0.99),
        at(1.0),
        samples.len()
    );
}

/// Times `n` calls of `f` one by one, after a warm-up; `pause` runs untimed before each.
fn timed(f: &mut dyn FnMut(), n: usize, pause: Duration) -> Vec<Duration> {
    for _ in 0..(n / 10).max(10) {
        f();
    }
    (0..n)
        .map(|_| {
            if !pause.is_zero() {
                std::thread::sleep(pause);
            }
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect()
}

fn main() {
    // The event as the call engine sends it: the fixture typed, then serialized compactly
    // (the fixture file itself is indented for reading; no handler ever receives that).
    let fixture =
        std::fs::read_to_string(root().join("actions/tests/fixtures/events/new_inbound_call.json"))
            .unwrap();
    let event: InvocationEvent = serde_json::from_str(&fixture).unwrap();
    let event = serde_json::to_string(&event).unwrap();
    let engine = WasmEngine::new(EngineSettings {
        max_instances: 64,
        cache_dir: target_dir().join("sma-bench-component-cache"),
        ..EngineSettings::default()
    })
    .unwrap();
    let load =
        |path: PathBuf| -> WasmHandler { engine.load_file(&path, WasmLimits::default()).unwrap() };
    let rust = load(rust_component("ivr_menu_rust.wasm"));
    let js = load(built_example("examples/hello-js/dist/hello-js.wasm"));
    let python = load(built_example(
        "examples/hello-python/dist/hello-python.wasm",
    ));
    let (mut js_session, mut py_session, mut rust_session) =
        (js.session(), python.session(), rust.session());

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let canned = r#"{"SchemaVersion":"1.0","Actions":[{"Type":"Speak","Parameters":{"CallId":"bbff30c5-866a-41b0-8d53-3b3e9a4a2c01","Text":"Hello"}}]}"#;
    let client = WebhookClient::new().unwrap();
    let rust_hook = WebhookHandler::new(
        client.clone(),
        &start_rust_responder(&rt, canned),
        Some(b"bench"),
        Duration::from_secs(5),
    )
    .unwrap();
    let python_server = PythonWebhook::start("bench");
    let python_hook = WebhookHandler::new(
        client,
        &python_server.url,
        Some(b"bench"),
        Duration::from_secs(5),
    )
    .unwrap();
    let rust_answer = rust.invoke(&event, "tx").unwrap();
    assert!(
        rust_answer.is_typed(),
        "the example's response takes the text reader"
    );
    let rust_answer = rust_answer.to_value().to_string();

    let scale = if quick() { 10 } else { 1 };
    let mut cases: Vec<Case> = vec![
        (
            "baseline: read + validate only (rust answer)",
            Box::new(|| read_and_validate(&rust_answer)),
            50_000 / scale,
        ),
        (
            "rust component, fresh instance",
            Box::new(|| validate(rust.invoke(&event, "tx").unwrap())),
            20_000 / scale,
        ),
        (
            "rust component, per-call instance",
            Box::new(|| validate(rust_session.invoke(&event, "tx").unwrap())),
            20_000 / scale,
        ),
        (
            "js component, fresh instance",
            Box::new(|| validate(js.invoke(&event, "tx").unwrap())),
            2_000 / scale,
        ),
        (
            "js component, per-call instance",
            Box::new(|| validate(js_session.invoke(&event, "tx").unwrap())),
            20_000 / scale,
        ),
        (
            "python component, fresh instance",
            Box::new(|| validate(python.invoke(&event, "tx").unwrap())),
            1_000 / scale,
        ),
        (
            "python component, per-call instance",
            Box::new(|| validate(py_session.invoke(&event, "tx").unwrap())),
            10_000 / scale,
        ),
        (
            "baseline: read + validate only (canned)",
            Box::new(|| read_and_validate(canned)),
            50_000 / scale,
        ),
        (
            "webhook round trip, rust responder",
            Box::new(|| validate(rt.block_on(rust_hook.invoke(&event, "tx")).unwrap())),
            10_000 / scale,
        ),
        (
            "webhook round trip, webhook-python",
            Box::new(|| validate(rt.block_on(python_hook.invoke(&event, "tx")).unwrap())),
            2_000 / scale,
        ),
    ];

    let mut criterion = Criterion::default()
        .configure_from_args()
        .sample_size(if quick() { 10 } else { 50 })
        .warm_up_time(Duration::from_millis(if quick() { 200 } else { 1000 }))
        .measurement_time(Duration::from_millis(if quick() { 500 } else { 3000 }));
    {
        let mut group = criterion.benchmark_group("invoke");
        for (name, f, _) in cases.iter_mut() {
            group.bench_function(*name, |b| b.iter(&mut **f));
        }
        group.finish();
    }
    criterion.final_summary();

    println!("\nPer-iteration latency (instantiate + call + parse + validate):");
    for (name, f, n) in cases.iter_mut() {
        report(name, timed(&mut **f, *n, Duration::ZERO));
    }

    // Back to back, every iteration runs with warm caches. Real calls invoke their handler
    // seconds apart; this pass sleeps (untimed) between invocations to show that cost.
    println!("\nOne invocation every 200 µs (caches cold, as between the events of a call):");
    let mut rust_fresh = || validate(rust.invoke(&event, "tx").unwrap());
    report(
        "rust component, fresh instance",
        timed(&mut rust_fresh, 2_000 / scale, Duration::from_micros(200)),
    );
}
