//! `h2mux serve`: an HTTP/2 server (h2c with prior knowledge, or TLS with ALPN h2) with a built-in page, `/bytes/N`
//! (N bytes streamed in 1 MiB chunks), `/echo` (the request body streamed back) and, with
//! `--root DIR`, the files under DIR; gRPC requests (by content-type) go to the built-in
//! `h2mux.echo.v1.Echo` and `grpc.health.v1.Health` services; over TLS with `--cert/--key`
//! (mutual TLS with `--client-ca`). Prints `listening on ADDR` once bound; every server limit
//! of docs/LIMITS.md has a flag; SIGINT/SIGTERM shut down gracefully (GOAWAY, drain).

use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

use std::time::Duration;

use bytes::Bytes;
use h2mux::{Body, Config, Server, ServerLimits};
use http::{Method, Request, Response, StatusCode};

/// Arguments of `h2mux serve`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address to listen on (port 0: any free port; the chosen one is printed).
    #[arg(
        long,
        visible_alias = "addr",
        value_name = "ADDR",
        default_value = "127.0.0.1:8080"
    )]
    listen: String,
    /// Cleartext HTTP/2 with prior knowledge (the default when no --cert is given).
    #[arg(long, conflicts_with_all = ["cert", "key", "client_ca"])]
    h2c: bool,
    /// Serve the files under this directory (GET /path → DIR/path).
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Serve HTTP/2 over TLS with this PEM certificate chain (needs --key).
    #[arg(long, value_name = "PEM", requires = "key")]
    cert: Option<PathBuf>,
    /// The PEM private key of --cert.
    #[arg(long, value_name = "PEM", requires = "cert")]
    key: Option<PathBuf>,
    /// Mutual TLS: require a client certificate signed by a CA in this PEM file.
    #[arg(long, value_name = "PEM", requires = "cert")]
    client_ca: Option<PathBuf>,
    /// With --client-ca: also serve clients that present no certificate.
    #[arg(long, requires = "client_ca")]
    client_cert_optional: bool,
    /// Most connections open at once (all clients).
    #[arg(long, value_name = "N", default_value_t = ServerLimits::default().max_connections)]
    max_connections: usize,
    /// Most connections open at once from one client IP address.
    #[arg(long, value_name = "N", default_value_t = ServerLimits::default().max_connections_per_ip)]
    max_connections_per_ip: usize,
    /// Close a connection with no request in progress after this many seconds (0: never).
    #[arg(long, value_name = "SECS", default_value_t = secs(ServerLimits::default().idle_timeout))]
    idle_timeout: f64,
    /// Drop a connection whose TLS handshake, or on h2c the first octets of its preface,
    /// take longer than this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = ServerLimits::default().tls_handshake_timeout.as_secs_f64())]
    handshake_timeout: f64,
    /// Close a connection whose writes make no progress for this many seconds (the client
    /// stopped reading; 0: never).
    #[arg(long, value_name = "SECS", default_value_t = secs(ServerLimits::default().send_timeout))]
    send_timeout: f64,
    /// Answer GET PATH with the server's counters as JSON (connections, requests in flight,
    /// accepted, refused, requests); off unless given (e.g. `--stats-path /_stats` for
    /// `h2mux soak`).
    #[arg(long, value_name = "PATH")]
    stats_path: Option<String>,
    /// On SIGINT/SIGTERM, let requests in flight finish for up to this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = Config::default().drain_timeout.as_secs_f64())]
    drain_timeout: f64,
}

fn secs(d: Option<Duration>) -> f64 {
    d.map_or(0.0, |d| d.as_secs_f64())
}

/// A positive number of seconds (0 or less: `None`).
fn duration(s: f64) -> Option<Duration> {
    (s.is_finite() && s > 0.0).then(|| Duration::from_secs_f64(s))
}

impl Args {
    fn limits(&self) -> ServerLimits {
        let handshake = duration(self.handshake_timeout).unwrap_or(Duration::from_secs(10));
        ServerLimits {
            max_connections: self.max_connections,
            max_connections_per_ip: self.max_connections_per_ip,
            idle_timeout: duration(self.idle_timeout),
            tls_handshake_timeout: handshake,
            preface_timeout: handshake,
            send_timeout: duration(self.send_timeout),
        }
    }

    fn tls(&self) -> Result<Option<std::sync::Arc<h2mux::rustls::ServerConfig>>, h2mux::Error> {
        let (Some(cert), Some(key)) = (&self.cert, &self.key) else {
            return Ok(None);
        };
        match &self.client_ca {
            None => h2mux::tls::server_config_from_pem(cert, key).map(Some),
            Some(ca) => {
                let auth = if self.client_cert_optional {
                    h2mux::tls::ClientAuth::Optional
                } else {
                    h2mux::tls::ClientAuth::Required
                };
                h2mux::tls::server_config_from_pem_with_client_auth(cert, key, ca, auth).map(Some)
            }
        }
    }
}

const PAGE: &str = "<!doctype html><title>h2mux</title><h1>h2mux</h1>\
<p>HTTP/2 as fast as the wire allows. Try <code>/bytes/1048576</code> or POST to <code>/echo</code>.</p>\n";
const CHUNK: usize = 1 << 20;
/// Largest `/bytes/N` served.
const MAX_BYTES: u64 = 1 << 40;

/// Runs `h2mux serve`. Exit codes: 0 after a graceful shutdown (SIGINT/SIGTERM), 2 bad
/// arguments, certificate or key, or the address cannot be listened on; 1 other failures.
pub fn run(args: Args) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("h2mux serve: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let tls = match args.tls() {
            Ok(t) => t,
            Err(e) => {
                eprintln!("h2mux serve: {e}");
                return ExitCode::from(2);
            }
        };
        let config = Config {
            drain_timeout: duration(args.drain_timeout).unwrap_or(Duration::ZERO),
            ..Config::default()
        };
        let mut server = match Server::bind(&args.listen, config).await {
            Ok(s) => s.with_limits(args.limits()),
            Err(e) => {
                eprintln!("h2mux serve: {e}");
                return ExitCode::from(2);
            }
        };
        if let Some(tls) = tls {
            server = server.with_tls(tls);
        }
        match server.local_addr() {
            Ok(addr) => println!("listening on {addr}"),
            Err(e) => {
                eprintln!("h2mux serve: {e}");
                return ExitCode::FAILURE;
            }
        }
        let control = server.handle();
        let drain = args.drain_timeout;
        tokio::spawn(async move {
            crate::shutdown_signal().await;
            eprintln!("h2mux serve: shutting down, letting requests finish for up to {drain} s");
            control.shutdown();
        });
        let root = args.root.map(std::sync::Arc::new);
        let rpc = std::sync::Arc::new(h2mux_rpc::server::echo_service());
        let stats = args
            .stats_path
            .map(|p| std::sync::Arc::new((p, server.handle())));
        let served = server
            .serve(move |req| {
                let (root, rpc, stats) = (root.clone(), rpc.clone(), stats.clone());
                async move {
                    // gRPC (by content-type) goes to the echo and health services.
                    if h2mux_rpc::server::RpcServer::is_grpc(&req) {
                        return rpc.handle(req).await;
                    }
                    if let Some(stats) = stats.filter(|s| req.uri().path() == s.0) {
                        return stats_response(&stats.1);
                    }
                    handle(req, root).await
                }
            })
            .await;
        match served {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("h2mux serve: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// The server's counters as a JSON object.
fn stats_response(h: &h2mux::ServerHandle) -> Response<Body> {
    let s = h.stats();
    let json = serde_json::json!({
        "connections": s.connections,
        "requests_in_flight": s.requests_in_flight,
        "accepted": s.accepted,
        "refused": s.refused,
        "requests": s.requests,
    });
    let mut r = response(StatusCode::OK, Body::from(json.to_string().into_bytes()));
    r.headers_mut()
        .insert("content-type", "application/json".parse().expect("static"));
    r
}

/// 1 MiB of zeros, made once and shared by every `/bytes/N` response (it used to be allocated,
/// zeroed and freed per request: ≈ 250 µs of CPU for a 100-byte answer under h2load).
fn zeros() -> Bytes {
    static ZEROS: std::sync::OnceLock<Bytes> = std::sync::OnceLock::new();
    ZEROS.get_or_init(|| Bytes::from(vec![0u8; CHUNK])).clone()
}

fn response(status: StatusCode, body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r
}

async fn handle(req: Request<Body>, root: Option<std::sync::Arc<PathBuf>>) -> Response<Body> {
    let path = req.uri().path().to_string();
    if let Some(n) = path.strip_prefix("/bytes/") {
        return match n.parse::<u64>() {
            Ok(n) if n <= CHUNK as u64 => {
                // One buffer: headers and data leave together, without a task or a channel.
                let mut r = response(StatusCode::OK, Body::from(zeros().slice(..n as usize)));
                r.headers_mut().insert("content-length", n.into());
                r
            }
            Ok(n) if n <= MAX_BYTES => {
                let (tx, body) = Body::channel(4);
                tokio::spawn(async move {
                    let zeros = zeros();
                    let mut left = n;
                    while left > 0 {
                        let k = left.min(CHUNK as u64) as usize;
                        if tx.send(zeros.slice(..k)).await.is_err() {
                            return;
                        }
                        left -= k as u64;
                    }
                });
                let mut r = response(StatusCode::OK, body);
                r.headers_mut().insert("content-length", n.into());
                r
            }
            _ => response(StatusCode::BAD_REQUEST, Body::from("bad byte count\n")),
        };
    }
    if path == "/echo" {
        if req.method() != Method::POST && req.method() != Method::PUT {
            return response(
                StatusCode::METHOD_NOT_ALLOWED,
                Body::from("POST a body to /echo\n"),
            );
        }
        let (tx, body) = Body::channel(4);
        let mut incoming = req.into_body();
        tokio::spawn(async move {
            while let Some(Ok(chunk)) = incoming.data().await {
                if tx.send(chunk).await.is_err() {
                    return;
                }
            }
        });
        return response(StatusCode::OK, body);
    }
    if let Some(root) = root {
        return serve_file(&root, &path).await;
    }
    if path == "/" {
        let mut r = response(StatusCode::OK, Body::from(PAGE));
        r.headers_mut().insert(
            "content-type",
            "text/html; charset=utf-8".parse().expect("static"),
        );
        return r;
    }
    response(StatusCode::NOT_FOUND, Body::from("not found\n"))
}

/// GET a file under `root`; `..` and absolute components are refused.
async fn serve_file(root: &Path, path: &str) -> Response<Body> {
    let rel = Path::new(path.trim_start_matches('/'));
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) && !rel.as_os_str().is_empty() {
        return response(StatusCode::BAD_REQUEST, Body::from("bad path\n"));
    }
    let mut full = root.join(rel);
    if full.is_dir() {
        full = full.join("index.html");
    }
    match tokio::fs::read(&full).await {
        Ok(data) => response(StatusCode::OK, Body::from(data)),
        Err(_) => response(StatusCode::NOT_FOUND, Body::from("not found\n")),
    }
}
