//! The side-by-side benchmark harness behind `h2mux bench` (issue 8 §1).
//!
//! # How a row is measured
//! Every (workload, contender) pair is a server-side function and a client-side function
//! ([`contenders`]). For each row the harness binds a loopback listener, starts the server on one
//! OS thread and the client on another, **each with its own tokio `current_thread` runtime**.
//! Both sides therefore get one core each on a 2-core machine, whatever the contender, and no
//! contender can win by spreading work over a multi-threaded scheduler the others do not use.
//! One process (not a child per side) keeps the harness simple; CPU seconds are the process's
//! user + system time from `getrusage(RUSAGE_SELF)` over the row (both sides together; `std` has
//! no process CPU clock, hence the `libc` dependency).
//!
//! Latencies are kept in a plain `Vec<f64>` and reduced with [`report::percentile`] (no
//! histogram dependency).
//!
//! # Extension points
//! - the h2mux contender: [`contenders::h2mux`] (currently [`Outcome::NotBuilt`]);
//! - RPC rows (`rpc-*`, tonic) and pool rows (`pool-*`): listed by [`Workload::all`], answered
//!   `NotBuilt` by [`contenders::run`] until their issues land;
//! - TLS: `raw-tls` (tokio-rustls, ring, rcgen self-signed) is built for bulk-1, bulk-100 and
//!   connect-tls; hyper over TLS and the `--tls` (`<workload>-tls`) rows are not built yet
//!   (`--tls` lists them as "not built").

pub mod contenders;
pub mod report;

use report::{Machine, Row};
use std::time::{Duration, Instant};

/// The workloads of issue 8, by their JSON names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Single-stream bulk download, 1 MiB application writes.
    Bulk1,
    /// 100 concurrent streams on one connection.
    Bulk100,
    /// 100-byte requests/responses, 100 in flight, one connection.
    Rps1Conn,
    /// Same on four connections.
    Rps4Conn,
    /// Connection setup to first response, cleartext.
    ConnectH2c,
    /// Connection setup to first response, TLS.
    ConnectTls,
    /// seeds/002 RPC experiment: a channel per worker.
    RpcPerWorker,
    /// RPC: one shared channel.
    RpcShared1,
    /// RPC: two shared channels.
    RpcShared2,
    /// RPC: four shared channels.
    RpcShared4,
    /// Pool `outgoing_get` latency.
    PoolGet,
    /// Pooled-stream throughput.
    PoolBulk,
}

impl Workload {
    /// Every workload, in table order.
    pub fn all() -> [Workload; 12] {
        use Workload::*;
        [
            Bulk1,
            Bulk100,
            Rps1Conn,
            Rps4Conn,
            RpcPerWorker,
            RpcShared1,
            RpcShared2,
            RpcShared4,
            PoolGet,
            PoolBulk,
            ConnectH2c,
            ConnectTls,
        ]
    }

    /// The JSON name.
    pub fn name(self) -> &'static str {
        use Workload::*;
        match self {
            Bulk1 => "bulk-1",
            Bulk100 => "bulk-100",
            Rps1Conn => "rps-1conn",
            Rps4Conn => "rps-4conn",
            ConnectH2c => "connect-h2c",
            ConnectTls => "connect-tls",
            RpcPerWorker => "rpc-per-worker",
            RpcShared1 => "rpc-shared-1",
            RpcShared2 => "rpc-shared-2",
            RpcShared4 => "rpc-shared-4",
            PoolGet => "pool-get",
            PoolBulk => "pool-bulk",
        }
    }

    /// Parses a JSON name.
    pub fn from_name(s: &str) -> Option<Workload> {
        Workload::all().into_iter().find(|w| w.name() == s)
    }
}

/// The contenders of issue 8, by their JSON names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contender {
    /// tokio socket copy, same write size.
    RawTcp,
    /// rustls socket copy.
    RawTls,
    /// hyper 1.x HTTP/1.1.
    HyperH1,
    /// hyper's HTTP/2 (the `h2` crate) with its defaults.
    H2Default,
    /// hyper's HTTP/2 with 16 MiB windows and 1 MiB frames.
    H2Tuned,
    /// tonic (RPC rows).
    Tonic,
    /// h2mux.
    H2mux,
}

impl Contender {
    /// Every contender, in table order.
    pub fn all() -> [Contender; 7] {
        use Contender::*;
        [RawTcp, RawTls, HyperH1, H2Default, H2Tuned, Tonic, H2mux]
    }

    /// The JSON name.
    pub fn name(self) -> &'static str {
        use Contender::*;
        match self {
            RawTcp => "raw-tcp",
            RawTls => "raw-tls",
            HyperH1 => "hyper-h1",
            H2Default => "h2-default",
            H2Tuned => "h2-tuned",
            Tonic => "tonic",
            H2mux => "h2mux",
        }
    }
}

/// Sizes and time bounds of a run. Every workload stops at its count OR its time, whichever
/// comes first.
#[derive(Debug, Clone)]
pub struct Config {
    /// bulk-1 bytes per repetition.
    pub bulk1_bytes: u64,
    /// bulk-100 bytes per stream.
    pub bulk100_stream_bytes: u64,
    /// Requests per rps row (upper bound).
    pub rps_requests: usize,
    /// Connections per connect row (upper bound).
    pub connects: usize,
    /// Time bound of one repetition.
    pub max_time: Duration,
    /// Repetitions (median taken).
    pub reps: usize,
}

impl Config {
    /// The default quick suite (under a minute in all): each repetition stops at its byte/request
    /// count or after `max_time` (bulk-100: 3 × `max_time`).
    pub fn quick() -> Config {
        Config {
            bulk1_bytes: 8 << 30,
            bulk100_stream_bytes: 20 << 20,
            rps_requests: 1_000_000,
            connects: 20_000,
            max_time: Duration::from_secs(3),
            reps: 1,
        }
    }

    /// `--full`: ≥ 2 GiB single stream, 20 MiB × 100 streams, three repetitions, medians.
    pub fn full() -> Config {
        Config {
            bulk1_bytes: 4 << 30,
            bulk100_stream_bytes: 20 << 20,
            rps_requests: 2_000_000,
            connects: 20_000,
            max_time: Duration::from_secs(15),
            reps: 3,
        }
    }
}

/// What one repetition of a (workload, contender) pair produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Measured.
    Measured(Measurement),
    /// The contender (or workload) is not implemented yet.
    NotBuilt,
    /// The pair makes no sense (e.g. HTTP/1.1 cannot have 100 requests in flight on one
    /// connection).
    NotApplicable(&'static str),
}

/// Client-side result of one repetition.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Measurement {
    /// Value in `unit`.
    pub value: f64,
    /// Unit.
    pub unit: &'static str,
    /// Latencies in microseconds (per request, per connect, or per stream completion).
    pub latencies_us: Vec<f64>,
    /// Table-only note.
    pub note: String,
}

/// Process CPU time (user + system) in seconds.
pub fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we own; RUSAGE_SELF is always valid.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    if rc != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// The machine description for the report.
pub fn machine() -> Machine {
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Machine {
        cpu_model,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        kernel,
        date: report::iso8601(secs),
    }
}

/// Runs one row: `cfg.reps` repetitions, median value, latencies of the median repetition.
pub fn run_row(w: Workload, c: Contender, cfg: &Config) -> Row {
    let mut reps: Vec<(Measurement, f64)> = Vec::new();
    let mut row = Row {
        workload: w.name().into(),
        contender: c.name().into(),
        value: None,
        unit: String::new(),
        p50_us: None,
        p99_us: None,
        cpu_s: None,
        ratio_to_h2mux: None,
        note: String::new(),
    };
    for _ in 0..cfg.reps.max(1) {
        let cpu0 = cpu_seconds();
        match contenders::run(w, c, cfg) {
            Ok(Outcome::Measured(m)) => reps.push((m, cpu_seconds() - cpu0)),
            Ok(Outcome::NotBuilt) => {
                row.note = "not built".into();
                return row;
            }
            Ok(Outcome::NotApplicable(why)) => {
                row.note = format!("n/a: {why}");
                return row;
            }
            Err(e) => {
                row.note = format!("error: {e}");
                return row;
            }
        }
    }
    reps.sort_by(|a, b| a.0.value.total_cmp(&b.0.value));
    let mid = reps.len() / 2;
    if let Some((mut m, cpu)) = reps.get(mid).cloned() {
        row.value = Some(m.value);
        row.unit = m.unit.into();
        row.p50_us = report::percentile(&mut m.latencies_us, 0.5);
        row.p99_us = report::percentile(&mut m.latencies_us, 0.99);
        row.cpu_s = Some(cpu);
        row.note = m.note;
        if reps.len() > 1 {
            row.note = format!("{} median of {}", row.note, reps.len())
                .trim()
                .to_string();
        }
    }
    row
}

/// Wall-clock helper for clients: microseconds since `t`.
pub fn us_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e6
}
