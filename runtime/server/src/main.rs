//! `sma`: the SIP media application runtime.

mod call;
mod cdr;
mod config;
mod control;
mod declared;
mod meeting_backend;
mod outbound;
mod routing;
mod routing_table;
mod serve;
mod sip;

use clap::{Parser, Subcommand};

/// mimalloc instead of the C library's allocator. A fresh-instance handler invocation makes
/// about 70 small allocations (wasmtime's store and instance bookkeeping, the response's JSON
/// tree, the typed actions) and frees them all again; glibc served a third of those from its
/// slower arena path once its per-thread cache of a size ran out. Measured on the IVR example:
/// 4 % fewer instructions per invocation and about 1 µs off the fastest windows' median
/// (benches/invoke.rs in sma-handler uses the same allocator, so it measures this).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "sma", version, about = "A SIP media application runtime")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a handler against one invocation event and print its validated response.
    Invoke(sma_qa::invoke::InvokeArgs),
    /// Run the node: answer SIP calls on the configured listeners.
    Serve(serve::ServeArgs),
    /// Dial a scenario file like a caller: dial, listen, press, hang up, with a verdict per
    /// step (or many calls at once with --calls/--rate/--concurrency).
    Call(sma_qa::call_cmd::CallArgs),
    /// Run a handler through a scripted call flow with no SIP and no media, and print the
    /// timeline of events and actions.
    Simulate(sma_qa::simulate::SimulateArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SMA_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Invoke(args) => sma_qa::invoke::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Call(args) => sma_qa::call_cmd::run(args),
        Command::Simulate(args) => sma_qa::simulate::run(args, &config::simulate_as_served),
    }
}
