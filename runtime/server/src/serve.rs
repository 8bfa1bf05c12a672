//! `sma serve`: run the node — SIP listeners, the store (SQLite, with `sma.toml`'s
//! resources applied to it), the management API, the call engine (routing, call actors,
//! media), and handler invocation.

use crate::call::actor::CallContext;
use crate::call::actor::CallRegistry;
use crate::cdr::CdrWriter;
use crate::config::{self, ListenSpec};
use crate::control::Control;
use crate::declared;
use crate::routing_table::{HandlerFactory, RoutingTable};
use crate::sip::endpoint::{Admission, Endpoint, MediaSettings};
use clap::Args;
use sma_api::voice::{Deployment, Limits};
use sma_handler::{EngineSettings, WasmEngine, WebhookClient};
use sma_media::pacer::{Pacer, PacerSettings};
use sma_media::prompt::PromptCache;
use sma_media::storage::Buckets;
use sma_media::tts::{espeak::Espeak, http::HttpTts, http::HttpTtsConfig, Synthesizer};
use sma_net::tls;
use sma_net::transport::Transports;
use sma_sip::message::ParseLimits;
use sma_sip::ua::{UaConfig, UserAgent};
use sma_sip::Transport;
use sma_store::{SqliteStore, Store};
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Configuration file (sma.toml). Without one, the embedded demo: the Rust IVR example on
    /// +12065550100, SIP over UDP and TCP on 127.0.0.1:5060.
    #[arg(long, env = "SMA_CONFIG")]
    config: Option<PathBuf>,
    /// The demo's handler component (used without --config).
    #[arg(
        long,
        env = "SMA_DEMO_HANDLER",
        default_value = "target/wasm32-wasip2/guest/ivr_menu_rust.wasm"
    )]
    demo_handler: PathBuf,
    /// Compiled-component cache directory.
    #[arg(long, env = "SMA_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// A SIP listener, `<udp|tcp|tls>:<address>:<port>`; repeat for several. Replaces the
    /// configuration's `sip.listen`. Port 0 picks a free port (printed at start-up).
    #[arg(long = "sip-listen", value_name = "TRANSPORT:ADDR:PORT")]
    sip_listen: Vec<ListenSpec>,
    /// The management API's listener, `address:port` or `off` (default: `api.listen` in the
    /// configuration, else 127.0.0.1:8080). Port 0 picks a free port (printed at start-up).
    #[arg(long, value_name = "ADDR:PORT|off")]
    api_listen: Option<String>,
    /// Write the generated development TLS certificate (PEM) here, for clients to trust.
    #[arg(long, value_name = "FILE")]
    tls_dev_cert_out: Option<PathBuf>,
}

/// Seeds identifiers from the OS's randomness (std's hash keys come from it).
fn random_seed() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::process::id().into());
    h.finish()
}

pub fn run(args: ServeArgs) -> ExitCode {
    let file = match &args.config {
        Some(path) => match config::File::load(path) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("sma serve: {e}");
                return ExitCode::from(2);
            }
        },
        None => match config::File::embedded_default(&args.demo_handler) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("sma serve: {e}");
                return ExitCode::from(2);
            }
        },
    };
    if let Err(e) = file.check() {
        eprintln!("sma serve: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sma serve: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve(args, file))
}

async fn serve(args: ServeArgs, file: config::File) -> ExitCode {
    let listeners = if args.sip_listen.is_empty() {
        match file.listeners() {
            Ok(l) => l,
            Err(e) => {
                eprintln!("sma serve: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        args.sip_listen.clone()
    };
    let tls = if listeners.iter().any(|l| l.transport == Transport::Tls) {
        match tls::acceptor(
            file.sip
                .tls
                .as_ref()
                .map(|t| tls::TlsFiles {
                    certificate: t.certificate.clone(),
                    private_key: t.private_key.clone(),
                })
                .as_ref(),
        ) {
            Ok((acceptor, served, generated)) => {
                if let Some(pem) = generated {
                    info!("tls: using a generated self-signed certificate (development only)");
                    for l in listeners.iter().filter(|l| l.transport == Transport::Tls) {
                        if !l.addr.ip().is_loopback() {
                            warn!(listener = %l, "tls: the generated development certificate is served on a non-loopback address: clients cannot verify it; configure [sip.tls] certificate and private_key");
                        }
                    }
                    if let Some(path) = &args.tls_dev_cert_out {
                        if let Err(e) = std::fs::write(path, pem) {
                            eprintln!("sma serve: cannot write {}: {e}", path.display());
                            return ExitCode::from(2);
                        }
                    }
                }
                Some((acceptor, served))
            }
            Err(e) => {
                eprintln!("sma serve: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        None
    };
    let served_certificate = tls.as_ref().map(|(_, served)| served.clone());
    let tls = tls.map(|(acceptor, _)| acceptor);
    let limits = ParseLimits {
        max_message_bytes: file.sip.max_message_bytes,
        ..ParseLimits::default()
    };
    let (tx, rx) = mpsc::channel(4096);
    let (mut transports, bound) = match Transports::start(
        &listeners,
        file.sip.advertise,
        tls,
        limits,
        Duration::from_secs(file.sip.connection_idle_secs),
        tx,
    )
    .await
    {
        Ok(t) => t,
        Err(e) => {
            eprintln!("sma serve: {e}");
            return ExitCode::from(2);
        }
    };
    // Outbound TLS (routes and carriers with protocol TLS): the system's trust anchors and
    // [sip] outbound_tls_ca_file.
    match tls::client(file.sip.outbound_tls_ca_file.as_deref()) {
        Ok(connector) => transports.set_tls_connector(connector),
        Err(e) => {
            eprintln!("sma serve: [sip] outbound_tls_ca_file: {e}");
            return ExitCode::from(2);
        }
    }
    for b in &bound {
        // On stdout, one line per listener: scripts and tests read the ports from here.
        let transport = b.spec.transport.as_str().to_ascii_lowercase();
        if b.advertised == b.local {
            println!("listening {transport}:{}", b.local);
        } else {
            println!(
                "listening {transport}:{} (advertised as {})",
                b.local, b.advertised
            );
        }
    }
    let codecs = match file.codecs() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sma serve: {e}");
            return ExitCode::from(2);
        }
    };
    let srtp_suites = match file.srtp_suites() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sma serve: {e}");
            return ExitCode::from(2);
        }
    };
    let defaults = UaConfig::default();
    let ua = UserAgent::new(UaConfig {
        limits,
        seed: random_seed(),
        user_agent: file
            .sip
            .server_header
            .clone()
            .unwrap_or(defaults.user_agent.clone()),
        timers: sma_sip::transaction::TimerConfig {
            t1: Duration::from_millis(file.sip.t1_ms.clamp(10, 10_000)),
            ..defaults.timers
        },
        ..defaults
    });
    let calls = &file.calls;
    let deadline = Duration::from_millis(calls.handler_deadline_ms);
    let mut settings = EngineSettings::default();
    if let Some(dir) = &args.cache_dir {
        settings.cache_dir = dir.clone();
    }
    let (engine, webhooks) = match (WasmEngine::new(settings), WebhookClient::new()) {
        (Ok(e), Ok(w)) => (e, w),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("sma serve: cannot start handler hosting: {e}");
            return ExitCode::FAILURE;
        }
    };
    let factory = Arc::new(HandlerFactory::new(engine, webhooks, deadline));
    let store: Arc<dyn Store> = match open_store(&file.store.path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sma serve: {e}");
            return ExitCode::from(2);
        }
    };
    info!(store = %store.describe(), "store opened");
    if let Err(e) = declared::declare(&file).and_then(|d| declared::apply(store.as_ref(), d)) {
        eprintln!("sma serve: {e}");
        return ExitCode::from(2);
    }
    let table = Arc::new(RoutingTable::default());
    let calls_registry = Arc::new(CallRegistry::default());
    let control = Arc::new(Control::new(
        store.clone(),
        factory.clone(),
        table.clone(),
        calls_registry.clone(),
    ));
    match control.rebuild() {
        Ok(unhostable) => {
            // An application sma.toml declares must be hostable; one created through the API
            // that no longer is (its component was removed) only stops routing.
            if let Some(u) = unhostable.iter().find(|u| u.declared) {
                eprintln!("sma serve: application `{}`: {}", u.name, u.why);
                return ExitCode::from(2);
            }
        }
        Err(e) => {
            eprintln!("sma serve: {e}");
            return ExitCode::from(2);
        }
    }
    if let Some(path) = args.config.clone() {
        tokio::spawn(reload_on_hangup(
            path,
            control.clone(),
            served_certificate.clone(),
        ));
    }
    let tts: Arc<dyn Synthesizer> = match &file.tts.http_url {
        Some(url) => match HttpTts::new(HttpTtsConfig {
            base_url: url.clone(),
            model: file
                .tts
                .http_model
                .clone()
                .unwrap_or_else(|| "tts-1".into()),
            default_voice: "alloy".into(),
            voice_map: Vec::new(),
            api_key: file.tts.http_api_key.clone(),
            timeout: Duration::from_secs(20),
        }) {
            Ok(t) => Arc::new(t),
            Err(e) => {
                eprintln!("sma serve: tts: {e}");
                return ExitCode::from(2);
            }
        },
        None => Arc::new(Espeak),
    };
    let cdr = match CdrWriter::open(file.node.cdr_path.clone()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sma serve: cannot open the call record file: {e}");
            return ExitCode::from(2);
        }
    };
    let mut carriers = Vec::new();
    for entry in &file.carriers {
        match entry.carrier() {
            Ok(c) => carriers.push(c),
            Err(e) => {
                eprintln!("sma serve: {e}");
                return ExitCode::from(2);
            }
        }
    }
    // Calls to numbers this runtime's rules serve come back in on its own listener.
    let on_net = bound
        .iter()
        .find(|b| b.spec.transport == Transport::Udp)
        .or_else(|| bound.first())
        .map(|b| (b.advertised, b.spec.transport));
    let meetings = match crate::call::meeting::Meetings::start(
        store.clone(),
        sma_media::conference::ConferenceConfig {
            loudest: file.media.conference_loudest.max(1),
            ..Default::default()
        },
        file.api.max_attendees_per_meeting,
    ) {
        Ok(m) => Arc::new(m),
        Err(e) => {
            eprintln!("sma serve: cannot start the conference mixer: {e}");
            return ExitCode::from(2);
        }
    };
    if file.api.meeting_idle_end_secs > 0 {
        let (meetings, idle) = (
            meetings.clone(),
            Duration::from_secs(file.api.meeting_idle_end_secs),
        );
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(10).min(idle));
            loop {
                tick.tick().await;
                let meetings = meetings.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    meetings.sweep(idle, sma_store::time::now_ms())
                })
                .await;
            }
        });
    }
    let ctx = Arc::new(CallContext {
        pacer: Pacer::with_settings(PacerSettings {
            realtime_priority: match file.media.pacer_realtime_priority {
                0 => None,
                priority => Some(priority.min(99)),
            },
            ..PacerSettings::default()
        }),
        prompts: PromptCache::new(1000, file.media.ptime),
        tts,
        buckets: Buckets::new(file.storage.root.clone(), file.storage.buckets.clone()),
        engine: calls.engine_config(),
        inactivity: if calls.media_inactivity_secs == 0 {
            Duration::from_secs(u64::from(u32::MAX))
        } else {
            Duration::from_secs(calls.media_inactivity_secs)
        },
        max_recording: Duration::from_secs(calls.max_recording_secs),
        cdr,
        calls: calls_registry,
        routing: table.clone(),
        carriers: Arc::new(carriers),
        on_net,
        route_response_timeout: Duration::from_millis(calls.route_response_timeout_ms.max(100)),
        meetings,
    });
    let api_listen = args.api_listen.clone().unwrap_or(file.api.listen.clone());
    let _api = if api_listen == "off" {
        None
    } else {
        // Telephony attendees dial in over TLS when there is a TLS listener.
        let audio_host = bound
            .iter()
            .find(|b| b.spec.transport == sma_sip::Transport::Tls)
            .or_else(|| bound.first())
            .map(|b| b.advertised.to_string())
            .unwrap_or_default();
        match start_api(
            &api_listen,
            &file,
            store.clone(),
            control.clone(),
            audio_host,
        )
        .await
        {
            Ok(task) => Some(task),
            Err(e) => {
                eprintln!("sma serve: {e}");
                return ExitCode::from(2);
            }
        }
    };
    tokio::spawn(media_stats(ctx.clone()));
    let launcher_ctx = ctx.clone();
    let endpoint = Endpoint::new(
        ua,
        transports,
        MediaSettings {
            address: file.media.address,
            port_range: file.media.port_range,
            codecs,
            ptime: file.media.ptime,
            srtp_suites,
        },
        table,
        ctx,
        file.node.account_id.clone(),
        Admission {
            max_concurrent_calls: calls.max_concurrent_calls,
            max_calls_per_second: calls.max_calls_per_second,
            retry_after_secs: calls.retry_after_secs,
            auth_guard: file.sip.auth_guard.policy(),
        },
    );
    for carrier in launcher_ctx.carriers.iter() {
        if let Some(registration) = &carrier.register {
            tokio::spawn(register_with(
                carrier.clone(),
                registration.clone(),
                endpoint.commands(),
            ));
        }
    }
    control.set_launcher(crate::control::Launcher {
        ctx: launcher_ctx,
        commands: endpoint.commands(),
        runtime: tokio::runtime::Handle::current(),
        rate: calls.outbound_calls_per_second,
        account_id: file.node.account_id.clone(),
    });
    println!("ready");
    info!("sma serve: ready");
    tokio::select! {
        _ = endpoint.run(rx) => {
            error!("endpoint stopped");
            ExitCode::FAILURE
        }
        _ = tokio::signal::ctrl_c() => {
            info!("shutting down");
            ExitCode::SUCCESS
        }
    }
}

/// Resolves a carrier's proxy and asks the endpoint to register with it (the UA keeps the
/// registration refreshed from then on).
async fn register_with(
    carrier: crate::outbound::Carrier,
    registration: crate::outbound::Registration,
    commands: tokio::sync::mpsc::UnboundedSender<crate::call::actor::SipCommand>,
) {
    let aor = match sma_sip::message::NameAddr::parse(&format!("<{}>", registration.aor)) {
        Ok(a) => a,
        Err(e) => {
            error!(carrier = %carrier.name, aor = %registration.aor, %e, "carrier register: not a SIP URI");
            return;
        }
    };
    let registrar = sma_sip::message::Uri::parse(&format!("sip:{}", aor.uri.host))
        .unwrap_or_else(|_| aor.uri.clone());
    let destination = loop {
        match tokio::net::lookup_host((carrier.host.as_str(), carrier.port)).await {
            Ok(mut addrs) => {
                if let Some(a) = addrs.next() {
                    break a;
                }
            }
            Err(e) => {
                tracing::warn!(carrier = %carrier.name, host = %carrier.host, %e, "carrier proxy does not resolve; trying again in 30 s")
            }
        }
        tokio::time::sleep(Duration::from_secs(30)).await;
    };
    let credentials = match (&carrier.username, &carrier.password) {
        (Some(u), Some(p)) => Some(sma_sip::auth::Credentials {
            username: u.clone(),
            password: p.clone(),
        }),
        _ => None,
    };
    let _ = commands.send(crate::call::actor::SipCommand::Register(Box::new(
        crate::call::actor::RegisterRequest {
            carrier: carrier.name.clone(),
            registrar,
            aor,
            destination,
            transport: carrier.transport,
            expires: registration.expires_secs,
            credentials,
        },
    )));
}

/// SIGHUP re-reads the configuration's resources (numbers, applications, rules, voice
/// connectors) into the store, and the TLS certificate files, and rebuilds the routing table: new calls route by them at
/// once, calls in progress keep theirs. A configuration with an error is refused and the
/// running one kept.
async fn reload_on_hangup(
    path: PathBuf,
    control: Arc<Control>,
    certificate: Option<Arc<tls::ServedCertificate>>,
) {
    let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
    else {
        return;
    };
    while hangups.recv().await.is_some() {
        let control = control.clone();
        let file_path = path.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let file = config::File::load(&file_path)?;
            declared::apply(control.store.as_ref(), declared::declare(&file)?)?;
            control
                .rebuild()
                .map_err(|e| config::ConfigError::Resource(e.to_string()))
        })
        .await;
        match outcome {
            Ok(Ok(_)) => info!(path = %path.display(), "configuration reloaded"),
            Ok(Err(e)) => error!(path = %path.display(), %e, "configuration not reloaded"),
            Err(e) => error!(path = %path.display(), %e, "configuration reload failed"),
        }
        // The TLS certificate too (a renewed one is served to new connections).
        if let Some(certificate) = &certificate {
            match certificate.reload() {
                Ok(true) => info!("tls: certificate reloaded"),
                Ok(false) => {}
                Err(e) => error!(%e, "tls: certificate not reloaded; the previous one stays"),
            }
        }
    }
}

/// Opens the configured store: a SQLite file, or `:memory:`.
fn open_store(path: &std::path::Path) -> Result<Arc<dyn Store>, sma_store::StoreError> {
    if path == std::path::Path::new(":memory:") {
        Ok(Arc::new(SqliteStore::in_memory()?))
    } else {
        Ok(Arc::new(SqliteStore::open(path)?))
    }
}

/// Binds the management API's listener and serves it; prints the address it listens on.
async fn start_api(
    listen: &str,
    file: &config::File,
    store: Arc<dyn Store>,
    control: Arc<Control>,
    meeting_audio_host: String,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let addr: std::net::SocketAddr = listen
        .parse()
        .map_err(|_| format!("api listen `{listen}` is not <ip>:<port> or off"))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen for the API on {addr}: {e}"))?;
    let local = listener.local_addr().unwrap_or(addr);
    println!("api listening http://{local}");
    let regions = if file.api.regions.is_empty() {
        vec![file.node.region.clone()]
    } else {
        file.api.regions.clone()
    };
    let api = Arc::new(sma_api::http::Api::new(sma_api::http::ApiConfig {
        access_keys: file
            .api
            .access_keys
            .iter()
            .map(|k| (k.access_key_id.clone(), k.secret_access_key.clone()))
            .collect(),
        max_body_bytes: file.api.max_body_bytes,
        deployment: Deployment {
            account_id: file.node.account_id.clone(),
            regions,
            voice_connector_domain: file.api.voice_connector_domain.clone(),
            limits: Limits {
                numbers_per_voice_connector: file.api.max_numbers_per_voice_connector,
                attendees_per_meeting: file.api.max_attendees_per_meeting,
                ..Limits::default()
            },
            number_pool: file.api.number_pool().map_err(|e| e.to_string())?,
            meeting_audio_host,
        },
        store,
        runtime: control,
    }));
    Ok(tokio::spawn(sma_api::http::serve(listener, api)))
}

/// While meetings are mixed: how many, their participants, and the mixing tick's duration
/// quantiles since the last line (a tick is due every 20 ms; one near that is late).
fn conference_stats(ctx: &CallContext) {
    let window = ctx.meetings.clock().stats().drain();
    let quantiles = (
        window.quantile_us(0.5),
        window.quantile_us(0.99),
        window.quantile_us(1.0),
    );
    let (Some(p50), Some(p99), Some(max)) = quantiles else {
        return;
    };
    if window.last.meetings == 0 {
        return;
    }
    info!(
        meetings = window.last.meetings,
        participants = window.last.participants,
        mixed = window.last.mixed,
        ticks = window.durations_us.len(),
        tick_p50_us = p50,
        tick_p99_us = p99,
        tick_max_us = max,
        "conference stats"
    );
}

/// Every 5 s while streams are active: how many, packets sent per second, and send-time error
/// quantiles (the load benchmark reads these lines).
async fn media_stats(ctx: Arc<CallContext>) {
    let period = Duration::from_secs(5);
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        conference_stats(&ctx);
        let stats = &ctx.pacer.stats;
        let active = stats.active.load(std::sync::atomic::Ordering::Relaxed);
        if active == 0 {
            stats.reset();
            continue;
        }
        let sent = stats.sent.load(std::sync::atomic::Ordering::Relaxed);
        info!(
            streams = active,
            packets_per_sec = sent / period.as_secs(),
            lateness_p50_us = stats.lateness_quantile_us(0.5),
            lateness_p90_us = stats.lateness_quantile_us(0.9),
            lateness_p99_us = stats.lateness_quantile_us(0.99),
            lateness_p999_us = stats.lateness_quantile_us(0.999),
            send_errors = stats.send_errors.load(std::sync::atomic::Ordering::Relaxed),
            "media stats"
        );
        stats.reset();
    }
}
