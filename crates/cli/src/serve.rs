//! `h2mux serve`: an HTTP/2 server (h2c with prior knowledge, or TLS with ALPN h2) with a built-in page, `/bytes/N`
//! (N bytes streamed in 1 MiB chunks), `/echo` (the request body streamed back) and, with
//! `--root DIR`, the files under DIR; gRPC requests (by content-type) go to the built-in
//! `h2mux.echo.v1.Echo` and `grpc.health.v1.Health` services; over TLS with `--cert/--key`. Prints
//! `listening on ADDR` once bound.

use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

use bytes::Bytes;
use h2mux::{Body, Config, Server};
use http::{Method, Request, Response, StatusCode};

/// Arguments of `h2mux serve`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address to listen on (port 0: any free port; the chosen one is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Serve the files under this directory (GET /path → DIR/path).
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Serve HTTP/2 over TLS with this PEM certificate chain (needs --key).
    #[arg(long, value_name = "PEM", requires = "key")]
    cert: Option<PathBuf>,
    /// The PEM private key of --cert.
    #[arg(long, value_name = "PEM", requires = "cert")]
    key: Option<PathBuf>,
}

const PAGE: &str = "<!doctype html><title>h2mux</title><h1>h2mux</h1>\
<p>HTTP/2 as fast as the wire allows. Try <code>/bytes/1048576</code> or POST to <code>/echo</code>.</p>\n";
const CHUNK: usize = 1 << 20;
/// Largest `/bytes/N` served.
const MAX_BYTES: u64 = 1 << 40;

/// Runs `h2mux serve`.
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
        let mut server = match Server::bind(&args.listen, Config::default()).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("h2mux serve: {e}");
                return ExitCode::from(2);
            }
        };
        if let (Some(cert), Some(key)) = (&args.cert, &args.key) {
            match h2mux::tls::server_config_from_pem(cert, key) {
                Ok(cfg) => server = server.with_tls(cfg),
                Err(e) => {
                    eprintln!("h2mux serve: {e}");
                    return ExitCode::from(2);
                }
            }
        }
        match server.local_addr() {
            Ok(addr) => println!("listening on {addr}"),
            Err(e) => {
                eprintln!("h2mux serve: {e}");
                return ExitCode::FAILURE;
            }
        }
        let root = args.root.map(std::sync::Arc::new);
        let rpc = std::sync::Arc::new(h2mux_rpc::server::echo_service());
        let served = server
            .serve(move |req| {
                let (root, rpc) = (root.clone(), rpc.clone());
                async move {
                    // gRPC (by content-type) goes to the echo and health services.
                    if h2mux_rpc::server::RpcServer::is_grpc(&req) {
                        rpc.handle(req).await
                    } else {
                        handle(req, root).await
                    }
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

fn response(status: StatusCode, body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r
}

async fn handle(req: Request<Body>, root: Option<std::sync::Arc<PathBuf>>) -> Response<Body> {
    let path = req.uri().path().to_string();
    if let Some(n) = path.strip_prefix("/bytes/") {
        return match n.parse::<u64>() {
            Ok(n) if n <= MAX_BYTES => {
                let (tx, body) = Body::channel(4);
                tokio::spawn(async move {
                    let zeros = Bytes::from(vec![0u8; CHUNK]);
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
