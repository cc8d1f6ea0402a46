//! `h2mux soak [--minutes 10] [--interval 10]`: a bounded soak benchmark (issue 9 §4), not a
//! test. It starts `h2mux serve` as a child process (or uses `--target ADDR --pid PID`, a
//! server started with `--stats-path /_stats`) and drives mixed load at it for the given
//! time — bulk downloads and echoed uploads, many small requests, streams reset mid-body,
//! requests that time out, connections opened and closed — and every interval prints the
//! server's resident memory, its open connections and requests in flight (streams), and
//! what the load achieved. At the end: whether memory plateaued (the peak of the last third
//! of the run against the peak of the middle third).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use h2mux::{Body, Client, ClientOptions, Timeouts};
use h2mux_conformance::attacks::rss_kib;
use http::Request;

/// Arguments of `h2mux soak`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// How long to run, in minutes.
    #[arg(long, default_value_t = 10.0)]
    minutes: f64,
    /// Seconds between two report lines.
    #[arg(long, default_value_t = 10.0)]
    interval: f64,
    /// Soak this server (HOST:PORT, h2c) instead of starting one; it must answer
    /// `--stats-path /_stats`.
    #[arg(long, requires = "pid")]
    target: Option<String>,
    /// With --target: the server's process id (its memory is read from /proc).
    #[arg(long)]
    pid: Option<u32>,
    /// Concurrent small-request workers (sharing one connection).
    #[arg(long, default_value_t = 64)]
    small: usize,
    /// Print the report as a Markdown table.
    #[arg(long)]
    markdown: bool,
}

/// What the load achieved (cumulative).
#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    bytes: AtomicU64,
    resets: AtomicU64,
    timeouts: AtomicU64,
    reconnects: AtomicU64,
    errors: AtomicU64,
}

impl Counters {
    fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
    fn failed(&self, what: &str, e: &h2mux::Error) {
        let n = self.errors.fetch_add(1, Ordering::Relaxed);
        if n < 10 {
            eprintln!("h2mux soak: {what}: {e}");
        }
    }
}

/// The server child process, killed when dropped.
struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_server() -> Result<(ServerProcess, String), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--stats-path",
            "/_stats",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start h2mux serve: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let child = ServerProcess(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .ok_or_else(|| format!("unexpected first line from h2mux serve: {line:?}"))?
        .to_string();
    Ok((child, addr))
}

/// Runs `h2mux soak`.
pub fn run(args: Args) -> ExitCode {
    let (server, addr, pid) = match (&args.target, args.pid) {
        (Some(t), Some(p)) => (None, t.clone(), p),
        _ => match start_server() {
            Ok((child, addr)) => {
                let pid = child.0.id();
                (Some(child), addr, pid)
            }
            Err(e) => {
                eprintln!("h2mux soak: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("h2mux soak: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = rt.block_on(soak(args, addr, pid));
    drop(server);
    code
}

struct Sample {
    at: Duration,
    rss_kib: u64,
    connections: u64,
    streams: u64,
    requests: u64,
    bytes: u64,
    resets: u64,
    timeouts: u64,
    reconnects: u64,
    errors: u64,
}

async fn soak(args: Args, addr: String, pid: u32) -> ExitCode {
    let run_for = Duration::from_secs_f64(args.minutes.max(0.05) * 60.0);
    let interval = Duration::from_secs_f64(args.interval.max(0.5));
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(Counters::default());
    let mut tasks = Vec::new();

    let spawn_on = |client: Client, tasks: &mut Vec<tokio::task::JoinHandle<()>>, job: Job| {
        let (stop, c, addr) = (stop.clone(), counters.clone(), addr.clone());
        tasks.push(tokio::spawn(job.run(client, addr, stop, c)));
    };
    let connect = |addr: &str| {
        let addr = addr.to_string();
        async move { Client::connect(&addr).await }
    };
    let (bulk, upload, small) =
        match tokio::try_join!(connect(&addr), connect(&addr), connect(&addr)) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("h2mux soak: {e}");
                return ExitCode::from(3);
            }
        };
    spawn_on(bulk, &mut tasks, Job::Download);
    spawn_on(upload, &mut tasks, Job::EchoUpload);
    for i in 0..args.small.max(1) {
        spawn_on(small.clone(), &mut tasks, Job::Small(i));
    }
    for _ in 0..4 {
        match connect(&addr).await {
            Ok(c) => spawn_on(c, &mut tasks, Job::Reset),
            Err(e) => {
                eprintln!("h2mux soak: {e}");
                return ExitCode::from(3);
            }
        }
    }
    {
        let (stop, c, addr) = (stop.clone(), counters.clone(), addr.clone());
        tasks.push(tokio::spawn(reconnect_loop(addr, stop, c)));
    }

    let stats_client = match Client::connect(&addr).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("h2mux soak: {e}");
            return ExitCode::from(3);
        }
    };
    let started = Instant::now();
    let mut samples: Vec<Sample> = Vec::new();
    print_header(&args, &addr, pid, run_for, interval);
    let mut healthy = true;
    loop {
        let next = started + interval * (samples.len() as u32 + 1);
        tokio::time::sleep_until(tokio::time::Instant::from_std(next.min(started + run_for))).await;
        let Some(rss) = rss_kib(pid) else {
            eprintln!("h2mux soak: the server (pid {pid}) is gone");
            healthy = false;
            break;
        };
        let (connections, streams) = match server_stats(&stats_client).await {
            Some(s) => s,
            None => {
                healthy = false;
                (0, 0)
            }
        };
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let s = Sample {
            at: started.elapsed(),
            rss_kib: rss,
            connections,
            streams,
            requests: load(&counters.requests),
            bytes: load(&counters.bytes),
            resets: load(&counters.resets),
            timeouts: load(&counters.timeouts),
            reconnects: load(&counters.reconnects),
            errors: load(&counters.errors),
        };
        print_row(&args, &s, samples.last());
        samples.push(s);
        if started.elapsed() >= run_for {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    summarize(&samples);
    if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// (connections, requests in flight) from the server's stats endpoint.
async fn server_stats(c: &Client) -> Option<(u64, u64)> {
    let (status, body) = c.get("/_stats", 4096).await.ok()?;
    if !status.is_success() {
        eprintln!(
            "h2mux soak: /_stats answered {status} (start the server with --stats-path /_stats)"
        );
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
    // The stats request itself is one of the requests in flight.
    Some((
        v["connections"].as_u64()?,
        v["requests_in_flight"].as_u64()?.saturating_sub(1),
    ))
}

fn print_header(args: &Args, addr: &str, pid: u32, run_for: Duration, interval: Duration) {
    eprintln!(
        "h2mux soak: {addr} (pid {pid}) for {:.0} s, a line every {:.0} s: 1 bulk download, 1 echoed upload, \
         {} small-request workers, 4 resetting workers, 1 reconnecting client",
        run_for.as_secs_f64(),
        interval.as_secs_f64(),
        args.small
    );
    if args.markdown {
        println!("| t (s) | server RSS (MiB) | connections | streams in flight | requests/s | MiB/s | resets | timeouts | reconnects | errors |");
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    } else {
        println!(
            "{:>6} {:>9} {:>6} {:>8} {:>10} {:>8} {:>7} {:>8} {:>10} {:>7}",
            "t(s)",
            "rss(MiB)",
            "conns",
            "streams",
            "req/s",
            "MiB/s",
            "resets",
            "timeouts",
            "reconnects",
            "errors"
        );
    }
}

fn print_row(args: &Args, s: &Sample, prev: Option<&Sample>) {
    let (dt, dreq, dbytes) = match prev {
        Some(p) => (
            (s.at - p.at).as_secs_f64(),
            s.requests - p.requests,
            s.bytes - p.bytes,
        ),
        None => (s.at.as_secs_f64(), s.requests, s.bytes),
    };
    let dt = dt.max(1e-9);
    let rss = s.rss_kib as f64 / 1024.0;
    let rps = dreq as f64 / dt;
    let mibs = dbytes as f64 / 1048576.0 / dt;
    let cells = [
        format!("{:.0}", s.at.as_secs_f64()),
        format!("{rss:.1}"),
        s.connections.to_string(),
        s.streams.to_string(),
        format!("{rps:.0}"),
        format!("{mibs:.0}"),
        s.resets.to_string(),
        s.timeouts.to_string(),
        s.reconnects.to_string(),
        s.errors.to_string(),
    ];
    if args.markdown {
        println!("| {} |", cells.join(" | "));
    } else {
        const WIDTHS: [usize; 10] = [6, 9, 6, 8, 10, 8, 7, 8, 10, 7];
        let line: Vec<String> = cells
            .iter()
            .zip(WIDTHS)
            .map(|(c, w)| format!("{c:>w$}"))
            .collect();
        println!("{}", line.join(" "));
    }
}

/// Judges the plateau on the thirds of the run: a leak raises the median and the floor of
/// the samples, while the peaks swing with what happens to be in flight.
fn summarize(samples: &[Sample]) {
    if samples.len() < 3 {
        eprintln!("h2mux soak: too short a run to judge a plateau");
        return;
    }
    let third = samples.len() / 3;
    let parts = [
        &samples[..third],
        &samples[third..2 * third],
        &samples[2 * third..],
    ];
    let mib = |k: u64| k as f64 / 1024.0;
    let median = |s: &[Sample]| {
        let mut v: Vec<u64> = s.iter().map(|s| s.rss_kib).collect();
        v.sort_unstable();
        v[v.len() / 2]
    };
    let floor = |s: &[Sample]| s.iter().map(|s| s.rss_kib).min().unwrap_or(0);
    let peak = |s: &[Sample]| s.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    let describe = |f: &dyn Fn(&[Sample]) -> u64| {
        parts
            .iter()
            .map(|p| format!("{:.1}", mib(f(p))))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let (middle, last) = (median(parts[1]), median(parts[2]));
    let growth = (last as f64 - middle as f64) / (middle.max(1) as f64) * 100.0;
    eprintln!(
        "h2mux soak: server RSS by thirds of the run (MiB) — median {}, lowest {}, highest {}; \
         last third's median {growth:+.1}% against the middle third's: {}",
        describe(&median),
        describe(&floor),
        describe(&peak),
        if growth <= 15.0 {
            "plateau"
        } else {
            "still growing"
        }
    );
}

/// One kind of load, run in a loop until `stop`.
#[derive(Clone, Copy)]
enum Job {
    /// GET /bytes/64 MiB, read to the end.
    Download,
    /// POST 16 MiB to /echo in 64 KiB chunks, read the echo back.
    EchoUpload,
    /// GET / or POST 100 bytes to /echo (by worker parity).
    Small(usize),
    /// GET /bytes/1 GiB, read 256 KiB, drop the body (RST_STREAM CANCEL); every fourth
    /// request gives up on the response head after 1 ms instead (a timeout, also CANCEL).
    /// Paced at one every [`RESET_PACE`] per worker: faster, the server's Rapid Reset limit
    /// (200 per 10 s per connection) rightly closes the connection.
    Reset,
}

/// Time between two resets of one resetting worker (4 workers: ~130 resets per 10 s).
const RESET_PACE: Duration = Duration::from_millis(300);

impl Job {
    async fn run(self, mut client: Client, addr: String, stop: Arc<AtomicBool>, c: Arc<Counters>) {
        let mut round = 0u64;
        while !stop.load(Ordering::Relaxed) {
            round += 1;
            if client.connection().is_going_away() {
                // Closed under us (a limit, a failure): count it and start over.
                let failed = h2mux::Error::ConnectionClosed;
                c.failed("connection lost, reconnecting", &failed);
                tokio::time::sleep(Duration::from_millis(100)).await;
                match Client::connect(&addr).await {
                    Ok(fresh) => client = fresh,
                    Err(e) => c.failed("reconnect", &e),
                }
                continue;
            }
            if matches!(self, Job::Reset) {
                tokio::time::sleep(RESET_PACE).await;
            }
            match self {
                Job::Download => match client.send(get("/bytes/67108864")).await {
                    Ok(resp) => {
                        let mut body = resp.into_body();
                        while let Some(chunk) = body.data().await {
                            match chunk {
                                Ok(b) => Counters::add(&c.bytes, b.len() as u64),
                                Err(e) => {
                                    c.failed("download", &e);
                                    break;
                                }
                            }
                        }
                        Counters::add(&c.requests, 1);
                    }
                    Err(e) => c.failed("download", &e),
                },
                Job::EchoUpload => {
                    let (tx, body) = Body::channel(4);
                    let feeder = tokio::spawn(async move {
                        let chunk = Bytes::from(vec![0x5au8; 64 * 1024]);
                        for _ in 0..256 {
                            if tx.send(chunk.clone()).await.is_err() {
                                return;
                            }
                        }
                    });
                    let req = Request::post("/echo").body(body).expect("static request");
                    match client.send(req).await {
                        Ok(resp) => match resp.into_body().collect(32 << 20).await {
                            Ok(b) => {
                                Counters::add(&c.bytes, 2 * b.len() as u64);
                                Counters::add(&c.requests, 1);
                            }
                            Err(e) => c.failed("echo upload", &e),
                        },
                        Err(e) => c.failed("echo upload", &e),
                    }
                    let _ = feeder.await;
                }
                Job::Small(i) => {
                    let req = if i % 2 == 0 {
                        get("/")
                    } else {
                        Request::post("/echo")
                            .body(Body::from(vec![b'.'; 100]))
                            .expect("static request")
                    };
                    match client.send(req).await {
                        Ok(resp) => match resp.into_body().collect(1 << 20).await {
                            Ok(b) => {
                                Counters::add(&c.bytes, b.len() as u64);
                                Counters::add(&c.requests, 1);
                            }
                            Err(e) => c.failed("small request", &e),
                        },
                        Err(e) => c.failed("small request", &e),
                    }
                }
                // `is_multiple_of` needs Rust 1.87; the workspace MSRV is 1.80.
                #[allow(clippy::manual_is_multiple_of)]
                Job::Reset if round % 4 == 0 => {
                    let hasty = client.with_timeouts(Timeouts {
                        response: Some(Duration::from_millis(1)),
                        ..Timeouts::default()
                    });
                    match hasty.send(get("/bytes/1073741824")).await {
                        Err(h2mux::Error::Timeout(_)) => Counters::add(&c.timeouts, 1),
                        // Answered within 1 ms: drop it (a reset as well).
                        Ok(_) => Counters::add(&c.resets, 1),
                        Err(e) => c.failed("timed-out request", &e),
                    }
                }
                Job::Reset => match client.send(get("/bytes/1073741824")).await {
                    Ok(resp) => {
                        let mut body = resp.into_body();
                        let mut got = 0usize;
                        while got < 256 * 1024 {
                            match body.data().await {
                                Some(Ok(b)) => got += b.len(),
                                Some(Err(e)) => {
                                    c.failed("reset request", &e);
                                    break;
                                }
                                None => break,
                            }
                        }
                        Counters::add(&c.bytes, got as u64);
                        drop(body); // RST_STREAM(CANCEL)
                        Counters::add(&c.resets, 1);
                    }
                    Err(e) => c.failed("reset request", &e),
                },
            }
        }
    }
}

fn get(path: &str) -> Request<Body> {
    Request::get(path)
        .body(Body::empty())
        .expect("a static request")
}

/// Connects, makes five small requests, closes gracefully — again and again.
async fn reconnect_loop(addr: String, stop: Arc<AtomicBool>, c: Arc<Counters>) {
    let options = ClientOptions::default();
    while !stop.load(Ordering::Relaxed) {
        match Client::connect_with_options(&addr, &options).await {
            Ok(client) => {
                for _ in 0..5 {
                    match client.get("/", 1 << 20).await {
                        Ok((_, b)) => {
                            Counters::add(&c.bytes, b.len() as u64);
                            Counters::add(&c.requests, 1);
                        }
                        Err(e) => c.failed("reconnecting client", &e),
                    }
                }
                let _ = tokio::time::timeout(Duration::from_secs(5), client.close_and_wait()).await;
                Counters::add(&c.reconnects, 1);
            }
            Err(e) => {
                c.failed("reconnecting client", &e);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
