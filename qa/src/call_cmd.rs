//! `sma call`: run scenario files against a SIP target, one call each, or many at once in
//! load mode (`--calls`, `--rate`, `--concurrency`).
//!
//! Callee scenarios (`role: callee`) listen first and take their call in the background
//! while the caller scenarios run one after another, so one command tests both legs of a
//! bridge: the caller dials the runtime, the runtime's second leg reaches the callee.

use super::caller::{place_call, take_call, target_uri, Shared};
use super::dialer::Dialer;
use super::load::{self, LoadPlan};
use super::report::{self, ScenarioResult};
use super::scenario::{Role, Scenario};
use clap::Args;
use sma_media::tts::espeak::Espeak;
use sma_sip::Transport;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;

#[derive(Args, Debug)]
pub struct CallArgs {
    /// Scenario file (YAML); repeat to run several one after another.
    #[arg(long = "scenario", short = 's', required = true, value_name = "FILE")]
    scenarios: Vec<PathBuf>,
    /// Send to this `host:port` instead of the scenario's server.
    #[arg(long, value_name = "HOST:PORT")]
    target: Option<String>,
    /// Write JUnit XML here.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write the JSON summary here (`-` for standard output).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Where call recordings go (stereo WAV: left what was heard, right what was sent).
    /// Default for single calls: ./sma-call-recordings; load mode records only when given.
    #[arg(long, value_name = "DIR")]
    record_dir: Option<PathBuf>,
    /// Do not record.
    #[arg(long)]
    no_record: bool,
    /// For TLS: trust the certificates in this PEM file (the server's own, e.g. from
    /// `sma serve --tls-dev-cert-out`, or its CA).
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// A callee listening over TLS serves this certificate (PEM, with `--tls-key`); without
    /// it, one generated for 127.0.0.1, ::1 and localhost. A caller dialing over TLS presents
    /// it as its client certificate (voice connectors with mutual TLS).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of `--tls-cert` (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Where to write the generated certificate's PEM, for the dialing side to trust (`sma
    /// serve`'s `[sip] outbound_tls_ca_file`).
    #[arg(long, value_name = "FILE")]
    tls_cert_out: Option<PathBuf>,
    /// Local RTP ports, `LOW-HIGH`.
    #[arg(long, default_value = "20000-29999", value_name = "LOW-HIGH")]
    rtp_ports: String,
    /// Load mode: how many calls in all.
    #[arg(long)]
    calls: Option<u64>,
    /// Load mode: new calls per second.
    #[arg(long)]
    rate: Option<f64>,
    /// Load mode: calls in progress at most.
    #[arg(long)]
    concurrency: Option<usize>,
}

fn parse_ports(text: &str) -> Result<(u16, u16), String> {
    let (lo, hi) = text
        .split_once('-')
        .ok_or_else(|| format!("--rtp-ports `{text}`: write LOW-HIGH"))?;
    let (lo, hi): (u16, u16) = (
        lo.trim()
            .parse()
            .map_err(|_| format!("--rtp-ports: `{lo}` is not a port"))?,
        hi.trim()
            .parse()
            .map_err(|_| format!("--rtp-ports: `{hi}` is not a port"))?,
    );
    if lo >= hi || lo < 1024 {
        return Err(format!("--rtp-ports `{text}`: need 1024 <= LOW < HIGH"));
    }
    Ok((lo, hi))
}

/// Where requests go: `--target`, else `call.server`, else the URI's host and port.
pub async fn resolve_destination(
    scenario: &Scenario,
    target: Option<&str>,
) -> Result<(SocketAddr, String), String> {
    let text = match (target, &scenario.call.server) {
        (Some(t), _) => t.to_owned(),
        (None, Some(s)) => s.clone(),
        (None, None) => {
            let uri = target_uri(scenario, "")?;
            let default = if scenario.transport == Transport::Tls {
                5061
            } else {
                5060
            };
            format!("{}:{}", uri.host, uri.port.unwrap_or(default))
        }
    };
    let addr = tokio::net::lookup_host(text.as_str())
        .await
        .map_err(|e| format!("{}: cannot resolve `{text}`: {e}", scenario.path.display()))?
        .next()
        .ok_or_else(|| format!("{}: `{text}` has no address", scenario.path.display()))?;
    Ok((addr, text))
}

/// Checks that something listens before dialing: a TCP connection, or an OPTIONS over UDP
/// (refused means nothing listens; silence is allowed, some peers ignore OPTIONS).
pub async fn probe(destination: SocketAddr, transport: Transport) -> Result<(), String> {
    match transport {
        Transport::Tcp | Transport::Tls => {
            match tokio::time::timeout(
                Duration::from_secs(3),
                tokio::net::TcpStream::connect(destination),
            )
            .await
            {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(format!("{destination} is unreachable over TCP: {e}")),
                Err(_) => Err(format!("{destination}: TCP connection timed out")),
            }
        }
        Transport::Udp => {
            let ip = super::dialer::local_ip_toward(destination)
                .map_err(|e| format!("no route to {destination}: {e}"))?;
            let socket = tokio::net::UdpSocket::bind(SocketAddr::new(ip, 0))
                .await
                .map_err(|e| format!("cannot bind a UDP socket: {e}"))?;
            socket
                .connect(destination)
                .await
                .map_err(|e| format!("no route to {destination}: {e}"))?;
            let local = socket.local_addr().map_err(|e| e.to_string())?;
            let tag = uuid::Uuid::new_v4().simple().to_string();
            let options = format!(
                "OPTIONS sip:{destination} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{tag}\r\nMax-Forwards: 70\r\nFrom: <sip:sma-call@{local}>;tag={tag}\r\nTo: <sip:{destination}>\r\nCall-ID: {tag}@sma-call\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
            );
            socket
                .send(options.as_bytes())
                .await
                .map_err(|e| format!("{destination}: {e}"))?;
            let mut buf = vec![0u8; 4096];
            match tokio::time::timeout(Duration::from_secs(1), socket.recv(&mut buf)).await {
                Ok(Ok(_)) | Err(_) => Ok(()),
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Err(format!(
                    "nothing listens for SIP on {destination} over UDP (connection refused)"
                )),
                Ok(Err(e)) => Err(format!("{destination}: {e}")),
            }
        }
    }
}

/// The TLS connector and server name for a scenario dialed over TLS.
fn tls_for(
    scenario: &Scenario,
    target: &str,
    ca_file: Option<&std::path::Path>,
    identity: Option<&sma_net::tls::TlsFiles>,
) -> Result<Option<(TlsConnector, ServerName<'static>)>, String> {
    if scenario.transport != Transport::Tls {
        return Ok(None);
    }
    let Some(ca_file) = ca_file else {
        return Err(
            "TLS needs --ca-file: the server's certificate or the CA that signed it".into(),
        );
    };
    let connector = sma_net::tls::connector(ca_file, identity).map_err(|e| e.to_string())?;
    // The host part of `host:port` (or `[v6]:port`) is the name the certificate must carry.
    let host = match target.rsplit_once(':') {
        Some((host, _)) => host.trim_start_matches('[').trim_end_matches(']'),
        None => target,
    };
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| format!("`{host}` cannot be checked against a certificate: {e}"))?;
    Ok(Some((connector, name)))
}

pub fn run(args: CallArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sma call: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(run_async(args))
}

async fn run_async(args: CallArgs) -> ExitCode {
    let ports = match parse_ports(&args.rtp_ports) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("sma call: {e}");
            return ExitCode::from(2);
        }
    };
    // Every scenario is checked before anything is dialed.
    let mut scenarios = Vec::new();
    for path in &args.scenarios {
        match Scenario::load(path) {
            Ok(s) => scenarios.push(Arc::new(s)),
            Err(e) => {
                eprintln!("sma call: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let identity = match (&args.tls_cert, &args.tls_key) {
        (Some(certificate), Some(private_key)) => Some(sma_net::tls::TlsFiles {
            certificate: certificate.clone(),
            private_key: private_key.clone(),
        }),
        _ => None,
    };
    let mut targets = Vec::new();
    for s in &scenarios {
        if s.role == Role::Callee {
            // Placeholders: a callee dials nothing.
            let listen = s
                .listen
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
            let uri = match sma_sip::message::Uri::parse(&format!("sip:{listen}")) {
                Ok(u) => u,
                Err(e) => {
                    eprintln!("sma call: {}: {e}", s.path.display());
                    return ExitCode::from(2);
                }
            };
            targets.push((listen, uri, None));
            continue;
        }
        let resolved = match resolve_destination(s, args.target.as_deref()).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("sma call: {e}");
                return ExitCode::from(2);
            }
        };
        if let Err(e) = probe(resolved.0, s.transport).await {
            eprintln!("sma call: {}: {e}", s.path.display());
            return ExitCode::from(2);
        }
        let uri = match target_uri(s, &resolved.1) {
            Ok(u) => u,
            Err(e) => {
                eprintln!("sma call: {}: {e}", s.path.display());
                return ExitCode::from(2);
            }
        };
        let tls = match tls_for(s, &resolved.1, args.ca_file.as_deref(), identity.as_ref()) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("sma call: {}: {e}", s.path.display());
                return ExitCode::from(2);
            }
        };
        targets.push((resolved.0, uri, tls));
    }
    let load_mode = args.calls.is_some() || args.rate.is_some() || args.concurrency.is_some();
    let record_dir = match (&args.record_dir, args.no_record, load_mode) {
        (_, true, _) => None,
        (Some(d), false, _) => Some(d.clone()),
        (None, false, false) => Some(PathBuf::from("sma-call-recordings")),
        (None, false, true) => None,
    };
    if let Some(dir) = &record_dir {
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!("sma call: cannot create {}: {e}", dir.display());
            return ExitCode::from(2);
        }
    }
    let ptime = scenarios.first().map_or(20, |s| s.media.ptime);
    let shared = Arc::new(Shared::new(Arc::new(Espeak), ports, record_dir, ptime));

    if load_mode {
        let (Some(scenario), Some((destination, uri, tls))) = (scenarios.first(), targets.first())
        else {
            return ExitCode::from(2);
        };
        if scenarios.len() > 1 {
            eprintln!("sma call: load mode runs one scenario");
            return ExitCode::from(2);
        }
        if scenario.role == Role::Callee {
            eprintln!("sma call: load mode dials; a callee scenario takes one call");
            return ExitCode::from(2);
        }
        let plan = LoadPlan {
            calls: args.calls.unwrap_or(100),
            rate: args.rate.unwrap_or(10.0),
            concurrency: args.concurrency.unwrap_or(usize::MAX),
        };
        if !(plan.rate > 0.0 && plan.rate.is_finite()) || plan.calls == 0 || plan.concurrency == 0 {
            eprintln!("sma call: --rate, --calls and --concurrency must be positive");
            return ExitCode::from(2);
        }
        let dialer =
            match Dialer::start(*destination, scenario.transport, run_seed(), tls.clone()).await {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("sma call: {e}");
                    return ExitCode::from(2);
                }
            };
        let summary = load::run(scenario.clone(), uri.clone(), dialer, shared, plan).await;
        print!("{}", summary.text());
        if let Some(path) = &args.json {
            let text = serde_json::to_string_pretty(&summary.json()).unwrap_or_default();
            if let Err(e) = write_out(path, &text) {
                eprintln!("sma call: {e}");
                return ExitCode::from(2);
            }
        }
        return if summary.all_passed() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }

    // Callees listen before any caller dials.
    let mut callees = Vec::new();
    for (i, scenario) in scenarios.iter().enumerate() {
        let (Role::Callee, Some(listen)) = (scenario.role, scenario.listen) else {
            continue;
        };
        let tls = if scenario.transport == Transport::Tls {
            match sma_net::tls::acceptor(identity.as_ref()) {
                Ok((acceptor, _, pem)) => {
                    if let (Some(path), Some(pem)) = (&args.tls_cert_out, pem) {
                        if let Err(e) = std::fs::write(path, pem) {
                            eprintln!("sma call: cannot write {}: {e}", path.display());
                            return ExitCode::from(2);
                        }
                    }
                    Some(acceptor)
                }
                Err(e) => {
                    eprintln!("sma call: {}: {e}", scenario.path.display());
                    return ExitCode::from(2);
                }
            }
        } else {
            None
        };
        let (dialer, invites) = match Dialer::listen(
            listen,
            scenario.transport,
            run_seed() ^ (1000 + i as u64),
            tls,
        )
        .await
        {
            Ok(d) => d,
            Err(e) => {
                eprintln!(
                    "sma call: {}: cannot listen on {listen}: {e}",
                    scenario.path.display()
                );
                return ExitCode::from(2);
            }
        };
        println!(
            "{}: listening on {} ({})",
            scenario.name, dialer.local, scenario.transport
        );
        let task = tokio::spawn(take_call(scenario.clone(), dialer, invites, shared.clone()));
        callees.push((i, listen, task));
    }
    let mut results = Vec::new();
    for (i, (scenario, (destination, uri, tls))) in scenarios.iter().zip(&targets).enumerate() {
        if scenario.role == Role::Callee {
            continue;
        }
        let dialer = match Dialer::start(
            *destination,
            scenario.transport,
            run_seed() ^ (i as u64 + 1),
            tls.clone(),
        )
        .await
        {
            Ok(d) => d,
            Err(e) => {
                eprintln!("sma call: {}: {e}", scenario.path.display());
                return ExitCode::from(2);
            }
        };
        let outcome = place_call(scenario.clone(), uri.clone(), dialer, shared.clone(), 1).await;
        let result = ScenarioResult {
            scenario,
            target: format!("{uri} via {destination}"),
            outcome,
        };
        print!("{}", report::timeline(&result));
        results.push(result);
    }
    for (i, listen, task) in callees {
        let scenario = &scenarios[i];
        let outcome = match task.await {
            Ok(o) => o,
            Err(e) => {
                eprintln!(
                    "sma call: {}: the callee stopped: {e}",
                    scenario.path.display()
                );
                return ExitCode::from(2);
            }
        };
        let result = ScenarioResult {
            scenario,
            target: format!("callee listening on {listen}"),
            outcome,
        };
        print!("{}", report::timeline(&result));
        results.push(result);
    }
    if let Some(path) = &args.junit {
        if let Err(e) = write_out(path, &report::junit(&results)) {
            eprintln!("sma call: {e}");
            return ExitCode::from(2);
        }
    }
    if let Some(path) = &args.json {
        let value = match results.as_slice() {
            [one] => report::json_summary(one),
            many => serde_json::Value::Array(many.iter().map(report::json_summary).collect()),
        };
        let text = serde_json::to_string_pretty(&value).unwrap_or_default();
        if let Err(e) = write_out(path, &text) {
            eprintln!("sma call: {e}");
            return ExitCode::from(2);
        }
    }
    if results.iter().all(|r| r.outcome.passed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn write_out(path: &std::path::Path, text: &str) -> Result<(), String> {
    if path.as_os_str() == "-" {
        println!("{text}");
        return Ok(());
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// This run's seed for Call-IDs, tags and branches: two `sma call`s started at once (or one
/// after the other) must never send the same Call-ID, or the server would take one's requests
/// for the other's (a fixed seed per scenario did exactly that).
fn run_seed() -> u64 {
    use std::sync::OnceLock;
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        nanos ^ (u64::from(std::process::id()) << 32)
    })
}
