//! Contenders: each (workload, contender) pair is a server function and a client function,
//! run by [`on_two_threads`] the same way for everyone.

pub mod h2mux;
pub mod h2mux_rpc;
pub mod hyper_peers;
pub mod mem;
pub mod pool;
pub mod raw_tcp;
pub mod raw_tls;
pub mod tonic_rpc;

use crate::{Config, Contender, Measurement, Outcome, Workload};
use std::future::Future;
use std::io;
use std::net::SocketAddr;

/// Runs one repetition of `(w, c)`.
pub fn run(w: Workload, c: Contender, cfg: &Config) -> io::Result<Outcome> {
    use Contender::*;
    use Workload::*;
    match (w, c) {
        // RPC rows: tonic and h2mux's RPC layer.
        (RpcPerWorker | RpcShared1 | RpcShared2 | RpcShared4, Tonic) => tonic_rpc::run(w, cfg),
        (RpcPerWorker | RpcShared1 | RpcShared2 | RpcShared4, _) if cfg.tls => {
            Ok(Outcome::NotApplicable("the RPC rows run over h2c"))
        }
        (RpcPerWorker | RpcShared1 | RpcShared2 | RpcShared4, H2mux) => h2mux_rpc::run(w, cfg),
        (RpcPerWorker | RpcShared1 | RpcShared2 | RpcShared4, _) => {
            Ok(Outcome::NotApplicable("RPC rows compare tonic and h2mux"))
        }
        // Pool rows: h2mux's pool; beside it the sockets doing the same downloads.
        (PoolGet | PoolBulk | PoolBulk100, H2mux) => pool::run(w, cfg),
        (PoolBulk, RawTcp) => raw_tcp::run(Bulk1, cfg),
        (PoolBulk, RawTls) => raw_tls::run(Bulk1, cfg),
        (PoolBulk100, RawTcp) => raw_tcp::run(Bulk100, cfg),
        (PoolBulk100, RawTls) => raw_tls::run(Bulk100, cfg),
        (PoolGet | PoolBulk | PoolBulk100, _) => {
            Ok(Outcome::NotApplicable("the stream pool is h2mux's"))
        }
        (MemConn | MemStream, H2mux | H2Default | H2Tuned) if cfg.tls => {
            Ok(Outcome::NotApplicable("memory rows are cleartext"))
        }
        (MemConn | MemStream, H2mux) => h2mux::run(w, cfg),
        (MemConn | MemStream, H2Default) => hyper_peers::run(hyper_peers::Proto::H2Default, w, cfg),
        (MemConn | MemStream, H2Tuned) => hyper_peers::run(hyper_peers::Proto::H2Tuned, w, cfg),
        (MemConn | MemStream, _) => {
            Ok(Outcome::NotApplicable("memory rows are for HTTP/2 servers"))
        }
        (_, Tonic) => Ok(Outcome::NotApplicable("tonic is for the RPC rows")),
        (_, RawTls) => raw_tls::run(w, cfg),
        (_, H2mux) => h2mux::run(w, cfg),
        (ConnectTls, RawTcp) => Ok(Outcome::NotApplicable("TLS row")),
        (_, RawTcp) if cfg.tls => Ok(Outcome::NotApplicable("cleartext contender")),
        (_, RawTcp) => raw_tcp::run(w, cfg),
        (_, HyperH1) => hyper_peers::run(hyper_peers::Proto::H1, w, cfg),
        (_, H2Default) => hyper_peers::run(hyper_peers::Proto::H2Default, w, cfg),
        (_, H2Tuned) => hyper_peers::run(hyper_peers::Proto::H2Tuned, w, cfg),
    }
}

/// Which half of a row this process runs (`h2mux bench --split`: the server half in a child
/// process, the client half in the parent).
#[derive(Debug, Clone, Copy)]
enum Half {
    Both,
    Server,
    Client(SocketAddr),
}

static HALF: std::sync::Mutex<Half> = std::sync::Mutex::new(Half::Both);

fn set_half(h: Half) {
    *HALF.lock().unwrap_or_else(|p| p.into_inner()) = h;
}

fn half() -> Half {
    *HALF.lock().unwrap_or_else(|p| p.into_inner())
}

/// The server half of `(w, c)` only (the child process of a `--split` row): binds loopback,
/// prints `listening ADDR` on stdout, and serves until stdin is closed. Returns without
/// printing anything if the pair is not built or not applicable.
pub fn serve_half(w: Workload, c: Contender, cfg: &Config) -> io::Result<()> {
    set_half(Half::Server);
    run(w, c, cfg).map(|_| ())
}

/// The client half of `(w, c)` only, against the server half listening at `addr` in another
/// process.
pub fn run_client_half(
    w: Workload,
    c: Contender,
    cfg: &Config,
    addr: SocketAddr,
) -> io::Result<Outcome> {
    set_half(Half::Client(addr));
    let r = run(w, c, cfg);
    set_half(Half::Both);
    r
}

/// The server half: serve until stdin closes.
fn serve_until_stdin_closes<S, SF>(server: S) -> io::Result<Measurement>
where
    S: FnOnce(tokio::net::TcpListener) -> SF,
    SF: Future<Output = ()>,
{
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))?;
    l.set_nonblocking(true)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening {}", l.local_addr()?)?;
    out.flush()?;
    drop(out);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut sink = [0u8; 64];
        while std::io::stdin().read(&mut sink).is_ok_and(|n| n > 0) {}
        let _ = stop_tx.send(());
    });
    let rt = current_thread_rt()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(l)?;
        tokio::select! {
            _ = server(listener) => {}
            _ = stop_rx => {}
        }
        Ok::<(), io::Error>(())
    })?;
    Ok(Measurement::default())
}

/// Worker threads of each side's runtime (1: a `current_thread` runtime, the default).
static WORKERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);

/// Gives each side a multi-threaded runtime with `n` workers instead of a `current_thread`
/// one (`h2mux bench --threads N`; with `--split` each process then uses every core, so that
/// several connections can be served in parallel — what one connection is measured against).
pub fn set_runtime_workers(n: usize) {
    WORKERS.store(n.max(1), std::sync::atomic::Ordering::Relaxed);
}

fn current_thread_rt() -> io::Result<tokio::runtime::Runtime> {
    match WORKERS.load(std::sync::atomic::Ordering::Relaxed) {
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
    }
}

/// Binds a listener, runs `server(listener)` on one OS thread and `client(addr)` on another,
/// each with its own tokio `current_thread` runtime. The server is dropped (all its tasks
/// cancelled) when the client returns. Under `--split` only one half runs in this process
/// ([`serve_half`], [`run_client_half`]).
///
/// On loopback by default; under `--wan` ([`crate::wan::placement`]) the server thread enters
/// the server namespace and binds the far end of the emulated link, and the client thread
/// enters the client namespace, so every socket of the row crosses the link.
pub fn on_two_threads<S, SF, C, CF>(server: S, client: C) -> io::Result<Measurement>
where
    S: FnOnce(tokio::net::TcpListener) -> SF + Send + 'static,
    SF: Future<Output = ()> + 'static,
    C: FnOnce(SocketAddr) -> CF + Send + 'static,
    CF: Future<Output = io::Result<Measurement>> + 'static,
{
    match half() {
        Half::Both => {}
        Half::Server => return serve_until_stdin_closes(server),
        Half::Client(addr) => {
            let t = std::thread::Builder::new()
                .name("bench-client".into())
                .spawn(move || current_thread_rt()?.block_on(client(addr)))?;
            return t
                .join()
                .map_err(|_| io::Error::other("client thread panicked"))?;
        }
    }
    let placement = crate::wan::placement();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel::<io::Result<SocketAddr>>();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server_placement = placement.clone();
    let server_thread = std::thread::Builder::new()
        .name("bench-server".into())
        .spawn(move || -> io::Result<()> {
            let bound = (|| -> io::Result<std::net::TcpListener> {
                let ip = match &server_placement {
                    Some(p) => {
                        crate::wan::enter_namespace(&p.server_ns)?;
                        p.server_ip
                    }
                    None => std::net::Ipv4Addr::LOCALHOST.into(),
                };
                let l = std::net::TcpListener::bind((ip, 0))?;
                l.set_nonblocking(true)?;
                Ok(l)
            })();
            let std_listener = match bound {
                Ok(l) => l,
                Err(e) => {
                    let kind = e.kind();
                    let _ = addr_tx.send(Err(e));
                    return Err(io::Error::new(kind, "server setup failed"));
                }
            };
            let _ = addr_tx.send(std_listener.local_addr());
            let rt = current_thread_rt()?;
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener)?;
                tokio::select! {
                    _ = server(listener) => {}
                    _ = stop_rx => {}
                }
                Ok::<(), io::Error>(())
            })
        })?;
    let addr = match addr_rx.recv() {
        Ok(Ok(addr)) => addr,
        Ok(Err(e)) => {
            let _ = server_thread.join();
            return Err(e);
        }
        Err(_) => return Err(io::Error::other("server thread ended before binding")),
    };
    let client_thread = std::thread::Builder::new()
        .name("bench-client".into())
        .spawn(move || -> io::Result<Measurement> {
            if let Some(p) = &placement {
                crate::wan::enter_namespace(&p.client_ns)?;
            }
            let rt = current_thread_rt()?;
            let out = rt.block_on(client(addr));
            drop(rt);
            let _ = stop_tx.send(());
            out
        })?;
    let out = client_thread
        .join()
        .map_err(|_| io::Error::other("client thread panicked"))?;
    server_thread
        .join()
        .map_err(|_| io::Error::other("server thread panicked"))??;
    out
}

/// MiB/s from bytes and seconds.
pub fn mib_per_s(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / secs.max(1e-9)
}

/// `max/mean` of per-stream completion times, as a table note.
pub fn spread_note(times_us: &[f64]) -> String {
    if times_us.is_empty() {
        return String::new();
    }
    let mean = times_us.iter().sum::<f64>() / times_us.len() as f64;
    let max = times_us.iter().copied().fold(0.0, f64::max);
    format!(
        "{} streams, max/mean {:.2}",
        times_us.len(),
        max / mean.max(1e-9)
    )
}

/// Waits for every bulk download of a row: total bytes and each one's completion time (µs).
pub async fn join_bulk(
    mut set: tokio::task::JoinSet<io::Result<(u64, f64)>>,
) -> io::Result<(u64, Vec<f64>)> {
    let mut total = 0;
    let mut times = Vec::new();
    while let Some(r) = set.join_next().await {
        let (got, us) = r.map_err(io::Error::other)??;
        total += got;
        times.push(us);
    }
    Ok((total, times))
}
