//! `sma invoke`: one event through one handler (or a failover chain of handlers).
//!
//! Exit status: 0 with the validated response on stdout; 2 for bad arguments or a bad event;
//! 3 when no handler produced a response (each failure is listed); 4 when the response broke
//! the contract (the error names the action index, field and rule, and the event the runtime
//! would send next).

use clap::Args;
use sma_actions::{InvocationEvent, Limits};
use sma_handler::{
    CoolDownPolicy, EngineSettings, FailoverChain, HandlerEndpoint, InstanceMode, Target,
    WasmEngine, WasmLimits, WebhookClient, WebhookHandler,
};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Arguments of `sma invoke`.
#[derive(Args)]
pub struct InvokeArgs {
    /// Handler: a component (`.wasm`) or a webhook URL (`http://…`, `https://…`). Repeat to
    /// give failover targets, tried in order.
    #[arg(long = "handler", required = true, value_name = "PATH.wasm|URL")]
    handlers: Vec<String>,
    /// Invocation event JSON file, or `-` for standard input.
    #[arg(long, value_name = "FILE|-")]
    event: String,
    /// Webhook signing secret (also read from SMA_WEBHOOK_SECRET).
    #[arg(long, env = "SMA_WEBHOOK_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// Invocation deadline in milliseconds.
    #[arg(long, default_value_t = 20_000)]
    deadline_ms: u64,
    /// Component memory limit in MiB.
    #[arg(long, default_value_t = 64)]
    memory_mib: usize,
    /// Compiled-component cache directory.
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Apply the legacy transaction-attribute limits (10 pairs, 1024 characters each).
    #[arg(long)]
    legacy_limits: bool,
}

fn read_event(source: &str) -> Result<InvocationEvent, String> {
    let mut text = String::new();
    let read = if source == "-" {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::read_to_string(source).map(|t| text = t)
    };
    read.map_err(|e| format!("cannot read event {source}: {e}"))?;
    let de = &mut serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        format!(
            "{source} is not a valid invocation event: at `{}`: {}",
            e.path(),
            e.inner()
        )
    })
}

fn endpoints(args: &InvokeArgs) -> Result<Vec<HandlerEndpoint>, String> {
    handler_endpoints(
        &args.handlers,
        args.secret.as_deref(),
        Duration::from_millis(args.deadline_ms),
        args.memory_mib,
        args.cache_dir.as_ref(),
    )
}

/// Handlers from the command line: `http(s)://` URLs are webhooks, anything else a component
/// file. Shared by `sma invoke` and `sma simulate`.
pub fn handler_endpoints(
    handlers: &[String],
    secret: Option<&str>,
    deadline: Duration,
    memory_mib: usize,
    cache_dir: Option<&PathBuf>,
) -> Result<Vec<HandlerEndpoint>, String> {
    let mut engine = None;
    let mut client = None;
    let mut out = Vec::new();
    for spec in handlers {
        if spec.starts_with("http://") || spec.starts_with("https://") {
            if client.is_none() {
                client = Some(WebhookClient::new().map_err(|e| e.to_string())?);
            }
            let client = client.clone().ok_or("no HTTP client")?;
            let secret = secret.map(str::as_bytes);
            let handler =
                WebhookHandler::new(client, spec, secret, deadline).map_err(|e| e.to_string())?;
            out.push(HandlerEndpoint::Webhook(handler));
        } else {
            if engine.is_none() {
                let mut settings = EngineSettings {
                    max_instances: 16,
                    ..EngineSettings::default()
                };
                if let Some(dir) = cache_dir {
                    settings.cache_dir = dir.clone();
                }
                settings.max_memory_bytes = settings.max_memory_bytes.max(memory_mib << 20);
                engine = Some(WasmEngine::new(settings).map_err(|e| e.to_string())?);
            }
            let engine = engine.as_ref().ok_or("no engine")?;
            let limits = WasmLimits {
                deadline,
                memory_bytes: memory_mib << 20,
                instance_mode: InstanceMode::FreshPerInvocation,
                ..WasmLimits::default()
            };
            let handler = engine
                .load_file(std::path::Path::new(spec), limits)
                .map_err(|e| e.to_string())?;
            out.push(HandlerEndpoint::Wasm(handler));
        }
    }
    Ok(out)
}

/// A failover chain over command-line handlers, tried in the order given.
pub fn chain(
    names: &[String],
    endpoints: Vec<HandlerEndpoint>,
    application_id: &str,
    region: &str,
) -> FailoverChain {
    let targets = names
        .iter()
        .zip(endpoints)
        .enumerate()
        .map(|(i, (name, endpoint))| Target {
            name: name.clone(),
            application_id: application_id.to_owned(),
            region: region.to_owned(),
            priority: u32::try_from(i + 1).unwrap_or(u32::MAX),
            endpoint,
        })
        .collect();
    FailoverChain::new(targets, CoolDownPolicy::default())
}

/// The small runtime the one-shot commands (`invoke`, `simulate`) run handlers on.
pub fn two_thread_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

/// Runs `sma invoke`.
pub fn run(args: InvokeArgs) -> ExitCode {
    let event = match read_event(&args.event) {
        Ok(event) => event,
        Err(e) => return fail(2, &e),
    };
    let endpoints = match endpoints(&args) {
        Ok(endpoints) => endpoints,
        Err(e) => return fail(2, &e),
    };
    let chain = chain(
        &args.handlers,
        endpoints,
        &event.call_details.sip_media_application_id,
        &event.call_details.aws_region,
    );
    let runtime = match two_thread_runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(2, &format!("cannot start the async runtime: {e}")),
    };
    let answered = match runtime.block_on(chain.invoke(&event)) {
        Ok(answered) => answered,
        Err(all) => {
            eprintln!("error: no handler produced a response");
            for a in &all.failures {
                eprintln!("  {}: {} [{}]", a.name, a.error, a.error.kind());
            }
            return ExitCode::from(3);
        }
    };
    for a in &answered.failures {
        eprintln!("failed over: {}: {} [{}]", a.name, a.error, a.error.kind());
    }
    if !answered.failures.is_empty() {
        eprintln!("answered by: {}", answered.name);
    }
    let limits = if args.legacy_limits {
        Limits::legacy()
    } else {
        Limits::default()
    };
    if answered.response.is_nothing() {
        // Not a broken contract: the call engine changes nothing (README, "Contract decisions").
        println!("null");
        eprintln!(
            "the handler answered null: the runtime changes nothing and the call stays as it is"
        );
        return ExitCode::SUCCESS;
    }
    match answered
        .response
        .validate(&event.schema_version, &limits)
        .map_err(|rejection| rejection.error)
    {
        Ok(valid) => {
            let text = serde_json::to_string_pretty(&valid.to_value()).unwrap_or_default();
            // A reader that went away (`sma invoke … | head`) is not a crash.
            let mut out = std::io::stdout().lock();
            match writeln!(out, "{text}").and_then(|()| out.flush()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => fail(2, &format!("cannot write the response: {e}")),
            }
        }
        Err(e) => {
            let d = e.disposition();
            let next = match d {
                sma_actions::Disposition::InvalidResponse(_) => "INVALID_LAMBDA_RESPONSE",
                sma_actions::Disposition::ActionFailed(_) => "ACTION_FAILED",
            };
            fail(
                4,
                &format!("invalid handler response: {e}\n  the runtime would send {next} with ErrorType {}", d.error_type()),
            )
        }
    }
}

fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(code)
}
