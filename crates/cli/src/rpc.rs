//! `h2mux rpc URL METHOD`: calls the built-in echo service (`proto/echo.proto`) — or the
//! health check, or any method with raw message bytes — through the shared channel, and
//! prints the replies and the final status.
//!
//! ```text
//! h2mux rpc http://127.0.0.1:8080 Unary --payload hello
//! h2mux rpc http://127.0.0.1:8080 ServerStream --payload hi --repeat 3
//! h2mux rpc http://127.0.0.1:8080 ClientStream --payload a --payload b
//! h2mux rpc https://localhost:8443 Bidi -k --payload x --count 5 --gzip
//! h2mux rpc http://127.0.0.1:8080 Health
//! h2mux rpc http://127.0.0.1:8080 /pkg.Service/Method --payload-hex 0a0568656c6c6f
//! ```
//!
//! Output (standard output): one `metadata KEY: VALUE` line per initial metadata entry, one
//! `reply INDEX: PAYLOAD` line per reply (raw methods: `reply N: BYTES`; payloads print as
//! text when they are printable UTF-8, else as hex), then `status CODE[: MESSAGE]`.
//!
//! Exit codes: 0 the call ended OK, 1 it ended with another status (named on standard
//! error), 2 bad arguments, 3 no connection to the server.

use std::process::ExitCode;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use h2mux_rpc::channel::{CallOptions, Channel, ChannelConfig};
use h2mux_rpc::echo::{method, EchoReply, EchoRequest};
use h2mux_rpc::health::{self, HealthCheckRequest, HealthCheckResponse};
use h2mux_rpc::metadata::Metadata;
use h2mux_rpc::{Code, Status};

/// Arguments of `h2mux rpc`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The server: `http://host:port` (h2c) or `https://host:port` (TLS).
    url: String,
    /// Unary, ServerStream, ClientStream, Bidi (the echo service), Health, or a full
    /// method path `/pkg.Service/Method` (messages sent as raw bytes).
    method: String,
    /// A request payload (repeat the flag to send several messages on streaming calls).
    #[arg(long, short = 'p', value_name = "TEXT")]
    payload: Vec<String>,
    /// A request payload given as hex (raw methods: the whole message).
    #[arg(long, value_name = "HEX", conflicts_with = "payload")]
    payload_hex: Option<String>,
    /// ServerStream: how many replies to ask for.
    #[arg(long, default_value_t = 3)]
    repeat: u32,
    /// ClientStream/Bidi: send the payload(s) this many times.
    #[arg(long, default_value_t = 1)]
    count: u32,
    /// Custom metadata `key: value` (`-bin` keys take hex values); repeatable.
    #[arg(long = "metadata", short = 'H', value_name = "KEY: VALUE")]
    metadata: Vec<String>,
    /// Deadline of the call, in seconds (sent as grpc-timeout).
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    timeout: f64,
    /// Compress request messages with gzip.
    #[arg(long)]
    gzip: bool,
    /// https: do not verify the server certificate (self-signed test servers).
    #[arg(long, short = 'k')]
    insecure: bool,
    /// Also print the replies' `grpc-encoding` (`reply-encoding gzip`) and the trailing
    /// metadata (`trailer KEY: VALUE`).
    #[arg(long, short = 'v')]
    verbose: bool,
}

enum Kind {
    Unary,
    ServerStream,
    ClientStream,
    Bidi,
    Health,
    Raw(String),
}

fn parse_kind(m: &str) -> Result<Kind, String> {
    if m.starts_with('/') && m[1..].contains('/') {
        return Ok(Kind::Raw(m.to_string()));
    }
    Ok(match m.to_ascii_lowercase().as_str() {
        "unary" => Kind::Unary,
        "serverstream" | "server-stream" => Kind::ServerStream,
        "clientstream" | "client-stream" => Kind::ClientStream,
        "bidi" => Kind::Bidi,
        "health" | "check" => Kind::Health,
        _ => {
            return Err(format!(
                "unknown method {m:?}: use Unary, ServerStream, ClientStream, Bidi, Health or /pkg.Service/Method"
            ))
        }
    })
}

fn hex_decode(s: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = s
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_digit(16).map(|d| d as u8))
        .collect::<Option<_>>()
        .ok_or_else(|| format!("{s:?} is not hex"))?;
    if !digits.len().is_multiple_of(2) {
        return Err(format!("{s:?} is not hex (odd number of digits)"));
    }
    Ok(digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect())
}

fn show(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(t) if t.chars().all(|c| !c.is_control() || c == '\t') => t.to_string(),
        _ => b.iter().map(|x| format!("{x:02x}")).collect(),
    }
}

fn parse_metadata(entries: &[String]) -> Result<Metadata, String> {
    let mut md = Metadata::new();
    for e in entries {
        let (k, v) = e
            .split_once(':')
            .ok_or_else(|| format!("metadata {e:?} is not KEY: VALUE"))?;
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
        let added = if k.ends_with("-bin") {
            md.insert_bin(&k, &hex_decode(v)?)
        } else {
            md.insert(&k, v)
        };
        added.map_err(|e| e.to_string())?;
    }
    Ok(md)
}

struct Target {
    addr: String,
    tls: Option<String>,
}

fn parse_url(url: &str) -> Result<Target, String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    let tls = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err(format!("{url:?}: only http:// (h2c) and https:// URLs")),
    };
    let host = uri
        .host()
        .ok_or_else(|| format!("{url:?} has no host"))?
        .trim_matches(|c| c == '[' || c == ']')
        .to_string();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let addr = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    Ok(Target {
        addr,
        tls: tls.then_some(host),
    })
}

/// Runs `h2mux rpc`.
pub fn run(args: Args) -> ExitCode {
    let bad = |msg: String| {
        eprintln!("h2mux rpc: {msg}");
        ExitCode::from(2)
    };
    let kind = match parse_kind(&args.method) {
        Ok(k) => k,
        Err(e) => return bad(e),
    };
    let target = match parse_url(&args.url) {
        Ok(t) => t,
        Err(e) => return bad(e),
    };
    let metadata = match parse_metadata(&args.metadata) {
        Ok(m) => m,
        Err(e) => return bad(e),
    };
    let payloads: Vec<Vec<u8>> = match &args.payload_hex {
        Some(h) => match hex_decode(h) {
            Ok(b) => vec![b],
            Err(e) => return bad(e),
        },
        None if args.payload.is_empty() => vec![Vec::new()],
        None => args.payload.iter().map(|p| p.as_bytes().to_vec()).collect(),
    };
    if !(args.timeout > 0.0 && args.timeout.is_finite()) {
        return bad(format!(
            "--timeout {} must be a positive number",
            args.timeout
        ));
    }
    let timeout = Duration::from_secs_f64(args.timeout);
    let mut cfg = ChannelConfig::new(&target.addr);
    cfg.connect_timeout = timeout;
    if let Some(host) = &target.tls {
        let tls = if args.insecure {
            h2mux::tls::client_config_insecure()
        } else {
            h2mux::tls::client_config()
        };
        match tls {
            Ok(t) => cfg = cfg.tls(host, t),
            Err(e) => return bad(e.to_string()),
        }
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("h2mux rpc: cannot start the runtime: {e}");
            return ExitCode::from(3);
        }
    };
    let opts = CallOptions {
        timeout: Some(timeout),
        metadata,
        gzip: args.gzip,
        wait_for_ready: false,
    };
    let messages = build_messages(&kind, &payloads, args.repeat, args.count);
    rt.block_on(async move {
        let ch = Channel::new(cfg);
        if let Err(e) = ch.connect().await {
            eprintln!("h2mux rpc: {} ({})", e.message, args.url);
            return ExitCode::from(3);
        }
        let status = call(&ch, &kind, messages, opts, args.verbose).await;
        ch.close();
        println!("status {status}");
        if status.code == Code::OK {
            ExitCode::SUCCESS
        } else {
            eprintln!(
                "h2mux rpc: {} ended with {}{}",
                args.method,
                status.code,
                if status.message.is_empty() {
                    String::new()
                } else {
                    format!(": {}", status.message)
                }
            );
            ExitCode::from(1)
        }
    })
}

/// The encoded request messages of the call.
fn build_messages(kind: &Kind, payloads: &[Vec<u8>], repeat: u32, count: u32) -> Vec<Bytes> {
    let echo = |p: &[u8], repeat: u32| {
        let mut b = BytesMut::new();
        EchoRequest {
            payload: Bytes::copy_from_slice(p),
            repeat,
        }
        .encode(&mut b);
        b.freeze()
    };
    match kind {
        Kind::Unary => vec![echo(&payloads[0], 0)],
        Kind::ServerStream => vec![echo(&payloads[0], repeat)],
        Kind::ClientStream | Kind::Bidi => (0..count.max(1))
            .flat_map(|_| payloads.iter().map(|p| echo(p, 0)))
            .collect(),
        Kind::Health => {
            let mut b = BytesMut::new();
            HealthCheckRequest {
                service: String::new(),
            }
            .encode(&mut b);
            vec![b.freeze()]
        }
        Kind::Raw(_) => payloads.iter().map(|p| Bytes::copy_from_slice(p)).collect(),
    }
}

fn print_reply(kind: &Kind, n: usize, m: Bytes) -> Result<(), Status> {
    match kind {
        Kind::Raw(_) => println!("reply {n}: {}", show(&m)),
        Kind::Health => {
            let r = HealthCheckResponse::decode(m).map_err(|e| {
                Status::new(Code::INTERNAL, format!("bad HealthCheckResponse: {e}"))
            })?;
            println!("reply {n}: {:?}", r.status);
        }
        _ => {
            let r = EchoReply::decode(m)
                .map_err(|e| Status::new(Code::INTERNAL, format!("bad EchoReply: {e}")))?;
            println!("reply {}: {}", r.index, show(&r.payload));
        }
    }
    Ok(())
}

/// Makes the call, printing metadata and replies; returns the final status.
async fn call(
    ch: &Channel,
    kind: &Kind,
    messages: Vec<Bytes>,
    opts: CallOptions,
    verbose: bool,
) -> Status {
    let path = match kind {
        Kind::Unary => method::UNARY,
        Kind::ServerStream => method::SERVER_STREAM,
        Kind::ClientStream => method::CLIENT_STREAM,
        Kind::Bidi => method::BIDI,
        Kind::Health => health::CHECK,
        Kind::Raw(p) => p.as_str(),
    };
    let mut call = match ch.start(path, opts).await {
        Ok(c) => c,
        Err(s) => return s,
    };
    let last = messages.len().saturating_sub(1);
    for (i, m) in messages.iter().enumerate() {
        let sent = if i == last {
            call.send_last(m).await
        } else {
            call.send(m).await
        };
        if let Err(s) = sent {
            return s;
        }
    }
    if messages.is_empty() {
        if let Err(s) = call.finish().await {
            return s;
        }
    }
    let mut n = 0;
    while let Some(m) = call.recv().await {
        if n == 0 {
            print_metadata("metadata", call.metadata());
            if verbose {
                println!("reply-encoding {}", call.reply_encoding().as_str());
            }
        }
        match m {
            Ok(m) => {
                if let Err(s) = print_reply(kind, n, m) {
                    return s;
                }
                n += 1;
            }
            Err(s) => return s,
        }
    }
    if verbose {
        print_metadata("trailer", call.trailers());
    }
    call.status()
        .unwrap_or_else(|| Status::new(Code::INTERNAL, "no status"))
}

fn print_metadata(what: &str, md: &Metadata) {
    for (k, v) in md.iter() {
        let v = if k.ends_with("-bin") {
            v.iter().map(|x| format!("{x:02x}")).collect()
        } else {
            show(v)
        };
        println!("{what} {k}: {v}");
    }
}
