//! `h2mux get URL [-o FILE] [--insecure]`: fetch a URL over HTTP/2 — `http://` as h2c with
//! prior knowledge, `https://` over TLS (ALPN h2; certificates verified against the public
//! web roots unless `--insecure`).
//!
//! Exit codes: 0 success (2xx), 1 the server answered a non-2xx status, 2 bad arguments,
//! 3 connection or protocol failure, 4 cannot write the output file.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use h2mux::{Body, Client};
use http::Request;

/// Arguments of `h2mux get`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The URL: `http://host:port/path` (h2c) or `https://host/path` (TLS).
    url: String,
    /// Write the body to FILE instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// https: do not verify the server certificate (self-signed test servers).
    #[arg(long, short = 'k', conflicts_with = "ca")]
    insecure: bool,
    /// https: verify the server against the CA certificates in this PEM file instead of the
    /// public web roots.
    #[arg(long, value_name = "PEM")]
    ca: Option<PathBuf>,
    /// https: present this PEM client certificate chain (mutual TLS; needs --key and --ca).
    #[arg(long, value_name = "PEM", requires_all = ["key", "ca"])]
    cert: Option<PathBuf>,
    /// The PEM private key of --cert.
    #[arg(long, value_name = "PEM", requires = "cert")]
    key: Option<PathBuf>,
    /// Give up connecting (TCP and TLS handshake) after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    connect_timeout: f64,
    /// Give up on the whole request after this many seconds (0: no limit).
    #[arg(long, value_name = "SECS", default_value_t = 0.0)]
    timeout: f64,
}

/// How `get` checks the server over TLS.
enum Trust {
    WebRoots,
    Insecure,
    Ca {
        ca: PathBuf,
        identity: Option<(PathBuf, PathBuf)>,
    },
}

impl Trust {
    fn config(&self) -> Result<std::sync::Arc<h2mux::rustls::ClientConfig>, h2mux::Error> {
        use h2mux::tls;
        match self {
            Trust::WebRoots => tls::client_config(),
            Trust::Insecure => tls::client_config_insecure(),
            Trust::Ca { ca, identity: None } => {
                tls::client_config_with_roots(&tls::certificates_from_pem(ca)?)
            }
            Trust::Ca {
                ca,
                identity: Some((cert, key)),
            } => tls::client_config_with_identity(
                &tls::certificates_from_pem(ca)?,
                tls::certificates_from_pem(cert)?,
                tls::private_key_from_pem(key)?,
            ),
        }
    }
}

fn seconds(s: f64) -> Option<std::time::Duration> {
    (s.is_finite() && s > 0.0).then(|| std::time::Duration::from_secs_f64(s))
}

/// Runs `h2mux get`.
pub fn run(args: Args) -> ExitCode {
    let uri: http::Uri = match args.url.parse() {
        Ok(u) => u,
        Err(e) => {
            eprintln!("h2mux get: {:?} is not a URL: {e}", args.url);
            return ExitCode::from(2);
        }
    };
    let tls = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => {
            eprintln!(
                "h2mux get: {:?}: only http:// (h2c) and https:// URLs",
                args.url
            );
            return ExitCode::from(2);
        }
    };
    let Some(authority) = uri.authority().map(|a| a.to_string()) else {
        eprintln!("h2mux get: {:?} has no host", args.url);
        return ExitCode::from(2);
    };
    let _ = authority;
    let host = uri
        .host()
        .unwrap_or_default()
        .trim_matches(|c| c == '[' || c == ']')
        .to_string();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let addr = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("h2mux get: cannot start the runtime: {e}");
            return ExitCode::from(3);
        }
    };
    let trust = match (&args.ca, args.insecure) {
        (Some(ca), _) => Trust::Ca {
            ca: ca.clone(),
            identity: args.cert.clone().zip(args.key.clone()),
        },
        (None, true) => Trust::Insecure,
        (None, false) => Trust::WebRoots,
    };
    let options = h2mux::ClientOptions {
        connect_timeout: seconds(args.connect_timeout),
        timeouts: h2mux::Timeouts {
            request: seconds(args.timeout),
            ..h2mux::Timeouts::default()
        },
        ..h2mux::ClientOptions::default()
    };
    let tls = tls.then_some((host, trust));
    rt.block_on(fetch(addr, uri, args.output, tls, options))
}

async fn fetch(
    addr: String,
    uri: http::Uri,
    output: Option<PathBuf>,
    tls: Option<(String, Trust)>,
    options: h2mux::ClientOptions,
) -> ExitCode {
    let connected = match tls {
        None => Client::connect_with_options(&addr, &options).await,
        Some((host, trust)) => match trust.config() {
            Ok(cfg) => Client::connect_tls_with_options(&addr, &host, cfg, &options).await,
            Err(e) => {
                eprintln!("h2mux get: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let client = match connected {
        Ok(c) => c,
        Err(e) => {
            eprintln!("h2mux get: {e}");
            return ExitCode::from(3);
        }
    };
    let req = match Request::get(uri.clone()).body(Body::empty()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("h2mux get: {e}");
            return ExitCode::from(2);
        }
    };
    let resp = match client.send(req).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("h2mux get: {e}");
            return ExitCode::from(3);
        }
    };
    let status = resp.status();
    let total = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let mut out: Box<dyn Write> = match &output {
        Some(p) => match std::fs::File::create(p) {
            Ok(f) => Box::new(std::io::BufWriter::new(f)),
            Err(e) => {
                eprintln!("h2mux get: cannot create {}: {e}", p.display());
                return ExitCode::from(4);
            }
        },
        None => Box::new(std::io::stdout().lock()),
    };
    let bar = if output.is_some() && std::io::stderr().is_terminal() {
        let b = match total {
            Some(t) => indicatif::ProgressBar::new(t),
            None => indicatif::ProgressBar::new_spinner(),
        };
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Some(b)
    } else {
        None
    };
    let started = Instant::now();
    let mut got = 0u64;
    let mut body = resp.into_body();
    while let Some(chunk) = body.data().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                eprintln!("h2mux get: after {got} bytes: {e}");
                return ExitCode::from(3);
            }
        };
        if let Err(e) = out.write_all(&chunk) {
            eprintln!("h2mux get: cannot write: {e}");
            return ExitCode::from(4);
        }
        got += chunk.len() as u64;
        if let Some(b) = &bar {
            b.set_position(got);
        }
    }
    if let Err(e) = out.flush() {
        eprintln!("h2mux get: cannot write: {e}");
        return ExitCode::from(4);
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if output.is_some() {
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        eprintln!(
            "{status}: {got} bytes in {secs:.3} s ({:.1} MiB/s)",
            got as f64 / 1048576.0 / secs
        );
    }
    client.close();
    if status.is_success() {
        ExitCode::SUCCESS
    } else {
        eprintln!("h2mux get: the server answered {status}");
        ExitCode::from(1)
    }
}
