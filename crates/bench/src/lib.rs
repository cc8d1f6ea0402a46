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
//! - TLS: `raw-tls` (tokio-rustls, ring, rcgen self-signed) for bulk-1, bulk-100 and
//!   connect-tls; the hyper contenders over the same TLS (ALPN `h2` / `http/1.1`) for
//!   connect-tls and for every `<workload>-tls` row of `--tls` ([`Config::tls`]).

pub mod contenders;
pub mod report;
pub mod wan;

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
    /// 100 pooled streams of one pool connection in parallel.
    PoolBulk100,
    /// Server memory per idle connection (KiB; [`contenders::mem`]).
    MemConn,
    /// Server memory per open idle stream (KiB; [`contenders::mem`]).
    MemStream,
}

impl Workload {
    /// Every workload, in table order.
    pub fn all() -> [Workload; 15] {
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
            PoolBulk100,
            ConnectH2c,
            ConnectTls,
            MemConn,
            MemStream,
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
            PoolBulk100 => "pool-bulk-100",
            MemConn => "mem-conn",
            MemStream => "mem-stream",
        }
    }

    /// Whether `--tls` adds a `<workload>-tls` twin run over TLS. Not for the connection
    /// setup rows (one of each kind already), the pool rows (TLS 1.3 by protocol: their
    /// twin would run the same again), the RPC rows (h2c only: a twin would be cleartext
    /// labelled TLS) or the memory rows (cleartext).
    pub fn has_tls_twin(self) -> bool {
        use Workload::*;
        matches!(self, Bulk1 | Bulk100 | Rps1Conn | Rps4Conn)
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
    /// Sample received bytes every 50 ms and note the ramp time (for `--wan`).
    pub sample_ramp: bool,
    /// Run the HTTP contenders over TLS (the `<workload>-tls` rows of `--tls`).
    pub tls: bool,
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
            sample_ramp: false,
            tls: false,
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
            sample_ramp: false,
            tls: false,
        }
    }

    /// `--wan`: time-bound bulk rows long enough to see the window ramp up (10 s each).
    pub fn wan() -> Config {
        Config {
            bulk1_bytes: 64 << 30,
            bulk100_stream_bytes: 64 << 20,
            rps_requests: 100_000,
            connects: 1_000,
            max_time: Duration::from_secs(10),
            reps: 1,
            sample_ramp: true,
            tls: false,
        }
    }
}

/// Bytes received by bulk clients so far (all contenders add to it; read by the ramp sampler).
static RECEIVED_BYTES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Bytes received by bulk clients so far (all contenders; for samplers and stall detectors).
pub fn received_bytes() -> u64 {
    RECEIVED_BYTES.load(std::sync::atomic::Ordering::Relaxed)
}

/// Called by bulk clients for every chunk of body they receive.
pub fn count_received(n: u64) {
    RECEIVED_BYTES.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
}

/// Seconds from the first sample until the rate over a trailing 0.5 s window first reaches
/// 90 % of the steady rate (the rate over the second half of the transfer). `samples` are
/// (seconds since start, cumulative bytes); trailing samples after the transfer ended are
/// ignored. `None` when there are too few samples to tell.
pub fn ramp_seconds(samples: &[(f64, u64)]) -> Option<f64> {
    let last_change = samples.windows(2).rposition(|w| w[1].1 != w[0].1)? + 1;
    let s = &samples[..=last_change];
    let (t_end, b_end) = *s.last()?;
    let t_start = s.first()?.0;
    let mid = s
        .iter()
        .position(|(t, _)| *t >= t_start + (t_end - t_start) / 2.0)?;
    let (t_mid, b_mid) = s[mid];
    if t_end - t_mid <= 0.0 {
        return None;
    }
    let steady = (b_end - b_mid) as f64 / (t_end - t_mid);
    if steady <= 0.0 {
        return None;
    }
    let window = 0.5;
    for (i, (t, b)) in s.iter().enumerate() {
        let Some(j) = s[..i].iter().rposition(|(u, _)| *u <= t - window) else {
            continue;
        };
        let (u, c) = s[j];
        if (b - c) as f64 / (t - u) >= 0.9 * steady {
            return Some(t - t_start);
        }
    }
    None
}

/// Samples [`RECEIVED_BYTES`] every 50 ms on its own thread until stopped.
struct RampSampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<(f64, u64)>>,
}

impl RampSampler {
    fn start() -> RampSampler {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let t0 = Instant::now();
            let b0 = RECEIVED_BYTES.load(Ordering::Relaxed);
            let mut samples = Vec::new();
            while !flag.load(Ordering::Relaxed) && samples.len() < 100_000 {
                samples.push((
                    t0.elapsed().as_secs_f64(),
                    RECEIVED_BYTES.load(Ordering::Relaxed) - b0,
                ));
                std::thread::sleep(Duration::from_millis(50));
            }
            samples
        });
        RampSampler { stop, thread }
    }

    fn finish(self) -> Option<f64> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().ok().and_then(|s| ramp_seconds(&s))
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

/// Process CPU time (user + system) of the children waited for, in seconds.
pub fn children_cpu_seconds() -> f64 {
    // SAFETY: as in `cpu_seconds`.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    if rc != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Starts the server half of a row in another process (`--split`): the child prints
/// `listening ADDR` on stdout once bound and serves until its stdin is closed
/// ([`contenders::serve_half`]).
pub type SpawnServer<'a> = &'a dyn Fn(Workload, Contender) -> std::io::Result<std::process::Child>;

/// One repetition with the server half in a child process.
fn run_split(
    w: Workload,
    c: Contender,
    cfg: &Config,
    spawn: SpawnServer<'_>,
) -> std::io::Result<Outcome> {
    use std::io::BufRead;
    let mut child = spawn(w, c)?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| std::io::Error::other("split server: no stdout"))?;
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line)?;
    let addr = line.trim().strip_prefix("listening ").map(str::parse);
    let result = match addr {
        Some(Ok(addr)) => {
            contenders::mem::set_server_pid(Some(child.id()));
            let r = contenders::run_client_half(w, c, cfg, addr);
            contenders::mem::set_server_pid(None);
            r
        }
        Some(Err(e)) => Err(std::io::Error::other(format!(
            "split server said {line:?}: {e}"
        ))),
        None => {
            // Nothing to serve: not built or not applicable (the same answer here, at once).
            let status = child.wait()?;
            if !status.success() {
                return Err(std::io::Error::other(format!("split server: {status}")));
            }
            return contenders::run(w, c, cfg);
        }
    };
    drop(child.stdin.take());
    let _ = child.wait();
    result
}

/// Runs one row: `cfg.reps` repetitions, median value, latencies of the median repetition.
pub fn run_row(w: Workload, c: Contender, cfg: &Config) -> Row {
    run_row_with(w, c, cfg, None)
}

/// [`run_row`], with the server half of each repetition in another process when `split` is
/// given (CPU seconds then add the child's).
pub fn run_row_with(
    w: Workload,
    c: Contender,
    cfg: &Config,
    split: Option<SpawnServer<'_>>,
) -> Row {
    let mut reps: Vec<(Measurement, f64)> = Vec::new();
    let mut row = Row::empty(w.name(), c.name(), "");
    for _ in 0..cfg.reps.max(1) {
        let cpu0 = cpu_seconds() + children_cpu_seconds();
        let sampler = cfg.sample_ramp.then(RampSampler::start);
        let result = match split {
            Some(spawn) => run_split(w, c, cfg, spawn),
            None => contenders::run(w, c, cfg),
        };
        let ramp = sampler.and_then(RampSampler::finish);
        match result {
            Ok(Outcome::Measured(mut m)) => {
                if let Some(r) = ramp {
                    m.note = format!("ramp {r:.1} s to 90%; {}", m.note)
                        .trim_end_matches("; ")
                        .to_string();
                }
                reps.push((m, cpu_seconds() + children_cpu_seconds() - cpu0))
            }
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

#[cfg(test)]
mod tests {
    use super::{ramp_seconds, Workload};

    #[test]
    fn only_workloads_that_change_over_tls_get_a_tls_twin() {
        let twins: Vec<_> = Workload::all()
            .into_iter()
            .filter(|w| w.has_tls_twin())
            .map(|w| w.name())
            .collect();
        assert_eq!(twins, ["bulk-1", "bulk-100", "rps-1conn", "rps-4conn"]);
    }

    /// Cumulative bytes sampled every 50 ms for a rate that is `rate(t)` bytes/s.
    fn samples(secs: f64, rate: impl Fn(f64) -> f64) -> Vec<(f64, u64)> {
        let mut out = Vec::new();
        let mut total = 0.0;
        let mut t = 0.0;
        while t <= secs {
            out.push((t, total as u64));
            total += rate(t) * 0.05;
            t += 0.05;
        }
        out
    }

    #[test]
    fn ramp_is_when_the_rate_first_reaches_ninety_percent_of_steady() {
        // Linear ramp to 100 MB/s over 2 s, then flat for 8 s.
        let s = samples(10.0, |t| 100e6 * (t / 2.0).min(1.0));
        let r = ramp_seconds(&s).unwrap();
        // The 0.5 s trailing average reaches 90 MB/s at about t = 2.05 s.
        assert!((1.9..=2.3).contains(&r), "ramp {r}");
    }

    #[test]
    fn ramp_of_an_immediately_steady_transfer_is_the_first_window() {
        let s = samples(5.0, |_| 50e6);
        let r = ramp_seconds(&s).unwrap();
        assert!(r <= 0.6, "ramp {r}");
    }

    #[test]
    fn trailing_idle_samples_do_not_lower_the_steady_rate() {
        let mut s = samples(4.0, |t| 100e6 * (t / 1.0).min(1.0));
        let (t_end, b_end) = *s.last().unwrap();
        for i in 1..40 {
            s.push((t_end + i as f64 * 0.05, b_end));
        }
        let r = ramp_seconds(&s).unwrap();
        assert!((0.9..=1.3).contains(&r), "ramp {r}");
    }

    #[test]
    fn no_transfer_has_no_ramp() {
        assert_eq!(ramp_seconds(&[(0.0, 0), (0.05, 0), (0.1, 0)]), None);
        assert_eq!(ramp_seconds(&[]), None);
    }
}
