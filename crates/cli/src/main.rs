//! The `h2mux` command-line tool.
//!
//! Each subcommand lives in its own module with an `Args` struct (clap) and a `run` function
//! returning the process exit code.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod bench;
mod conformance;
mod get;
mod rpc;
mod serve;
mod soak;
mod tunnel;

/// h2mux: an HTTP/2 engine that runs as fast as the wire allows.
#[derive(Parser, Debug)]
#[command(name = "h2mux", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Benchmark h2mux against raw TCP, HTTP/1.1 and other HTTP/2 engines, side by side.
    Bench(bench::Args),
    /// Serve files, /bytes/N and /echo over HTTP/2 (h2c or TLS).
    Serve(serve::Args),
    /// Fetch a URL over HTTP/2.
    Get(get::Args),
    /// Check a server against the MUSTs of RFC 9113 and RFC 7541 with hand-crafted frames.
    Conformance(conformance::Args),
    /// Call the built-in echo service (or any gRPC method) through the shared channel.
    Rpc(rpc::Args),
    /// Soak a server with mixed load for minutes, printing its memory and open streams.
    Soak(soak::Args),
    /// A reverse TCP tunnel on the stream pool (NodePass manner): `tunnel server|client`.
    Tunnel(tunnel::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Bench(args) => bench::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Get(args) => get::run(args),
        Command::Conformance(args) => conformance::run_cmd(args),
        Command::Rpc(args) => rpc::run(args),
        Command::Soak(args) => soak::run(args),
        Command::Tunnel(args) => tunnel::run(args),
    }
}

/// SIGINT or SIGTERM (`serve` drains on it, `tunnel` stops).
pub(crate) async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        // Without signal handlers the process is simply killed; nothing to drain.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
}
