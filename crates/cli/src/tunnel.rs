//! `h2mux tunnel server|client`: a reverse TCP tunnel on the stream pool, in the NodePass
//! manner (the logic is `h2mux_pool::tunnel`; this module parses arguments, prints log
//! lines with a timestamp on stderr, and prints the counters on SIGUSR1 or every
//! `--stats-interval` seconds).
//!
//! ```text
//! h2mux tunnel server --listen 0.0.0.0:8443 --public 0.0.0.0:8080 --cert c.pem --key k.pem
//! h2mux tunnel client --server host:8443 --target 127.0.0.1:80 --tls-mode 2
//! ```
//! The shared secret comes from `--secret`, `--secret-file` or `H2MUX_TUNNEL_SECRET`.
//! Exit codes: 0 after SIGINT/SIGTERM; 1 when the server refused the client (wrong secret);
//! 2 bad arguments, certificate, key or address.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use h2mux_pool::tunnel::{
    TunnelClient, TunnelClientConfig, TunnelServer, TunnelServerConfig, TunnelStats,
};
use h2mux_pool::{Level, Listen, LogSink, TlsMode};

/// Arguments of `h2mux tunnel`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    side: Side,
}

#[derive(clap::Subcommand, Debug)]
enum Side {
    /// The public end: accepts the tunnel client's pool and exposes a public TCP port.
    Server(ServerArgs),
    /// The private end: dials the tunnel server (works from behind NAT) and connects each
    /// tunnelled connection to the target.
    Client(ClientArgs),
}

/// What both ends take.
#[derive(clap::Args, Debug)]
struct Common {
    /// The shared secret (prefer --secret-file or H2MUX_TUNNEL_SECRET: arguments are visible
    /// to other users of the machine).
    #[arg(long, value_name = "TEXT", conflicts_with = "secret_file")]
    secret: Option<String>,
    /// Read the shared secret from this file (surrounding whitespace ignored).
    #[arg(long, value_name = "FILE")]
    secret_file: Option<PathBuf>,
    /// Close a tunnelled connection after this many seconds without traffic either way.
    #[arg(long, value_name = "SECS", default_value_t = 300.0)]
    idle_timeout: f64,
    /// Print the counters every SECS seconds (they are also printed on SIGUSR1).
    #[arg(long, value_name = "SECS")]
    stats_interval: Option<f64>,
    /// Keepalive PING period of the pool connection, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    keep_alive: f64,
}

#[derive(clap::Args, Debug)]
struct ServerArgs {
    /// Where the tunnel client connects (TLS).
    #[arg(long, value_name = "ADDR")]
    listen: String,
    /// The public TCP port whose connections go through the tunnel.
    #[arg(long, value_name = "ADDR")]
    public: String,
    /// PEM certificate chain of the pool's TLS.
    #[arg(long, value_name = "PEM")]
    cert: PathBuf,
    /// PEM private key of --cert.
    #[arg(long, value_name = "PEM")]
    key: PathBuf,
    /// Only this client address may connect (checked at accept, IPv4-mapped IPv6 included).
    #[arg(long, value_name = "IP")]
    allow_ip: Option<std::net::IpAddr>,
    /// How long a public connection waits for a tunnel stream, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    stream_timeout: f64,
    #[command(flatten)]
    common: Common,
}

#[derive(clap::Args, Debug)]
struct ClientArgs {
    /// The tunnel server's --listen address.
    #[arg(long, value_name = "ADDR")]
    server: String,
    /// Where tunnelled connections go.
    #[arg(long, value_name = "HOST:PORT")]
    target: String,
    /// 0 or 1: encrypted, the certificate not verified; 2: verified against --hostname.
    #[arg(long, value_name = "0|1|2", default_value = "2")]
    tls_mode: String,
    /// The server's name (SNI, verified in mode 2). Default: the host of --server.
    #[arg(long, value_name = "NAME")]
    hostname: Option<String>,
    /// Verify the server against the certificates in this PEM file instead of the public
    /// web roots (mode 2).
    #[arg(long, value_name = "PEM")]
    ca: Option<PathBuf>,
    /// Most time to connect to the target, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    connect_timeout: f64,
    /// Fewest idle pooled streams kept ready.
    #[arg(long, value_name = "N", default_value_t = 64)]
    min_capacity: usize,
    /// Most idle pooled streams kept ready.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    max_capacity: usize,
    #[command(flatten)]
    common: Common,
}

/// A positive number of seconds.
fn seconds(what: &str, s: f64) -> Result<Duration, String> {
    if s.is_finite() && s > 0.0 {
        Ok(Duration::from_secs_f64(s))
    } else {
        Err(format!(
            "--{what} must be a positive number of seconds, not {s}"
        ))
    }
}

impl Common {
    /// `--stats-interval`, checked like the other durations.
    fn stats_interval(&self) -> Result<Option<Duration>, String> {
        self.stats_interval
            .map(|s| seconds("stats-interval", s))
            .transpose()
    }

    fn secret(&self) -> Result<Vec<u8>, String> {
        let s = match (&self.secret, &self.secret_file) {
            (Some(s), _) => s.clone(),
            (None, Some(f)) => std::fs::read_to_string(f)
                .map_err(|e| format!("cannot read --secret-file {}: {e}", f.display()))?
                .trim()
                .to_string(),
            (None, None) => std::env::var("H2MUX_TUNNEL_SECRET").map_err(|_| {
                "no shared secret: give --secret, --secret-file or H2MUX_TUNNEL_SECRET".to_string()
            })?,
        };
        if s.is_empty() {
            return Err("the shared secret is empty".into());
        }
        Ok(s.into_bytes())
    }
}

/// Log lines on stderr: `2026-01-02T03:04:05.678Z WARN text`.
fn stderr_log(side: &'static str) -> LogSink {
    Arc::new(move |level: Level, msg: &str| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let stamp = h2mux_bench::report::iso8601(now.as_secs());
        let stamp = stamp.trim_end_matches('Z');
        let level = match level {
            Level::Info => "INFO",
            Level::Warn => "WARN",
        };
        eprintln!(
            "{stamp}.{:03}Z {level} tunnel {side}: {msg}",
            now.subsec_millis()
        );
    })
}

/// Prints the counters on SIGUSR1 and every `interval`.
fn spawn_stats(stats: Arc<TunnelStats>, interval: Option<Duration>, log: LogSink) {
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let mut usr1 = signal(SignalKind::user_defined1()).ok();
        let mut tick = interval.map(|d| {
            let mut t = tokio::time::interval_at(tokio::time::Instant::now() + d, d);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            t
        });
        loop {
            tokio::select! {
                Some(_) = async { match usr1.as_mut() { Some(s) => s.recv().await, None => std::future::pending().await } } => {}
                _ = async { match tick.as_mut() { Some(t) => t.tick().await, None => std::future::pending().await } } => {}
            }
            log(Level::Info, &format!("stats: {}", stats.snapshot()));
        }
    });
}

/// Runs `h2mux tunnel`.
pub fn run(args: Args) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("h2mux tunnel: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let r = match args.side {
            Side::Server(a) => server(a).await,
            Side::Client(a) => client(a).await,
        };
        r.unwrap_or_else(|(code, msg)| {
            eprintln!("h2mux tunnel: {msg}");
            ExitCode::from(code)
        })
    })
}

type Failure = (u8, String);

fn usage(e: impl std::fmt::Display) -> Failure {
    (2, e.to_string())
}

async fn server(a: ServerArgs) -> Result<ExitCode, Failure> {
    let log = stderr_log("server");
    let tls = h2mux::tls::server_config_from_pem(&a.cert, &a.key).map_err(usage)?;
    let mut cfg = TunnelServerConfig::new(
        Listen::Addr(a.listen.clone()),
        Listen::Addr(a.public.clone()),
        tls,
        a.common.secret().map_err(usage)?,
    );
    cfg.allowed_ip = a.allow_ip;
    cfg.idle_timeout = seconds("idle-timeout", a.common.idle_timeout).map_err(usage)?;
    cfg.stream_timeout = seconds("stream-timeout", a.stream_timeout).map_err(usage)?;
    cfg.keep_alive = seconds("keep-alive", a.common.keep_alive).map_err(usage)?;
    cfg.log = Some(log.clone());
    let interval = a.common.stats_interval().map_err(usage)?;
    let mut server = TunnelServer::start(cfg).await.map_err(usage)?;
    if let (Some(p), Some(q)) = (server.pool_addr(), server.public_addr()) {
        println!("tunnel listening on {p}, public on {q}");
    }
    spawn_stats(server.stats(), interval, log.clone());
    crate::shutdown_signal().await;
    log(
        Level::Info,
        &format!("stopping; stats: {}", server.stats().snapshot()),
    );
    server.close();
    Ok(ExitCode::SUCCESS)
}

async fn client(a: ClientArgs) -> Result<ExitCode, Failure> {
    let log = stderr_log("client");
    let mode = TlsMode::parse(&a.tls_mode).map_err(usage)?;
    let mut cfg = TunnelClientConfig::new(
        a.server.clone(),
        a.target.clone(),
        mode,
        a.common.secret().map_err(usage)?,
    );
    if let Some(h) = a.hostname {
        cfg.hostname = h;
    }
    if let Some(ca) = &a.ca {
        cfg.tls_roots = h2mux::tls::certificates_from_pem(ca).map_err(usage)?;
    }
    cfg.idle_timeout = seconds("idle-timeout", a.common.idle_timeout).map_err(usage)?;
    cfg.connect_timeout = seconds("connect-timeout", a.connect_timeout).map_err(usage)?;
    cfg.keep_alive = seconds("keep-alive", a.common.keep_alive).map_err(usage)?;
    cfg.min_capacity = a.min_capacity;
    cfg.max_capacity = a.max_capacity;
    cfg.log = Some(log.clone());
    let interval = a.common.stats_interval().map_err(usage)?;
    let mut client = TunnelClient::start(cfg).map_err(usage)?;
    spawn_stats(client.stats(), interval, log.clone());
    let r = tokio::select! {
        r = client.wait() => r,
        _ = crate::shutdown_signal() => Ok(()),
    };
    log(
        Level::Info,
        &format!("stopping; stats: {}", client.stats().snapshot()),
    );
    client.close();
    match r {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => Err((1, e.to_string())),
    }
}
