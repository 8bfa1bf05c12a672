//! `sma serve`: run the node — SIP listeners now, the call engine and control API later.

use crate::config::{self, ListenSpec};
use crate::sip::endpoint::{Endpoint, MediaSettings};
use crate::sip::tls;
use crate::sip::transport::Transports;
use clap::Args;
use sma_sip::message::ParseLimits;
use sma_sip::ua::{UaConfig, UserAgent};
use sma_sip::Transport;
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{error, info};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Configuration file (sma.toml). Without one: UDP and TCP on 127.0.0.1:5060.
    #[arg(long, env = "SMA_CONFIG")]
    config: Option<PathBuf>,
    /// A SIP listener, `<udp|tcp|tls>:<address>:<port>`; repeat for several. Replaces the
    /// configuration's `sip.listen`. Port 0 picks a free port (printed at start-up).
    #[arg(long = "sip-listen", value_name = "TRANSPORT:ADDR:PORT")]
    sip_listen: Vec<ListenSpec>,
    /// Hang answered calls up after this many seconds (overrides serve.hangup_after_secs).
    #[arg(long, value_name = "SECS")]
    hangup_after: Option<u64>,
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
        None => config::File::default(),
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
        match tls::acceptor(file.sip.tls.as_ref()) {
            Ok((acceptor, generated)) => {
                if let Some(pem) = generated {
                    info!("tls: using a generated self-signed certificate (development only)");
                    if let Some(path) = &args.tls_dev_cert_out {
                        if let Err(e) = std::fs::write(path, pem) {
                            eprintln!("sma serve: cannot write {}: {e}", path.display());
                            return ExitCode::from(2);
                        }
                    }
                }
                Some(acceptor)
            }
            Err(e) => {
                eprintln!("sma serve: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        None
    };
    let limits = ParseLimits {
        max_message_bytes: file.sip.max_message_bytes,
        ..ParseLimits::default()
    };
    let (tx, rx) = mpsc::channel(4096);
    let (transports, bound) = match Transports::start(
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
    let ua = UserAgent::new(UaConfig {
        limits,
        seed: random_seed(),
        ..UaConfig::default()
    });
    let hangup_after = args.hangup_after.unwrap_or(file.serve.hangup_after_secs);
    let endpoint = Endpoint::new(
        ua,
        transports,
        MediaSettings {
            address: file.media.address,
            port_range: file.media.port_range,
            codecs,
            ptime: file.media.ptime,
        },
        (hangup_after > 0).then(|| Duration::from_secs(hangup_after)),
    );
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
