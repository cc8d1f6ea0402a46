//! `h2mux serve` and `h2mux get` as processes: the flags (`--addr`, `--h2c`, mutual TLS),
//! graceful shutdown on SIGTERM, and the clear errors and non-zero exit codes a user sees
//! for a refused connection, a TLS failure, a protocol error (with its code), a busy
//! address and bad arguments.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn h2mux() -> Command {
    Command::new(env!("CARGO_BIN_EXE_h2mux"))
}

mod common;

fn serve(args: &[&str]) -> common::Serve {
    common::serve(args, Stdio::piped())
}

/// Runs `h2mux ARGS` to completion (killed after 30 s).
fn run(args: &[&str]) -> Output {
    let mut child = h2mux()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let give_up = Instant::now() + Duration::from_secs(30);
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > give_up {
            let _ = child.kill();
            panic!("h2mux {args:?} did not finish");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("h2mux-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn serve_accepts_addr_and_h2c_and_get_fetches() {
    let s = serve(&["--addr", "127.0.0.1:0", "--h2c"]);
    let out = run(&["get", &format!("http://{}/bytes/1000", s.addr)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout.len(), 1000);
    let out = run(&["get", &format!("http://{}/missing", s.addr)]);
    assert_eq!(out.status.code(), Some(1), "a 404 exits 1");
    assert!(stderr(&out).contains("404"), "{}", stderr(&out));
}

#[test]
fn h2c_conflicts_with_a_certificate() {
    let out = run(&["serve", "--h2c", "--cert", "c.pem", "--key", "k.pem"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot be used with"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn serve_on_a_busy_address_says_so() {
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let out = run(&["serve", "--listen", &addr]);
    assert_eq!(out.status.code(), Some(2));
    let e = stderr(&out);
    assert!(e.contains("cannot listen on") && e.contains(&addr), "{e}");
}

#[test]
fn serve_with_a_missing_certificate_says_which_file() {
    let out = run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--cert",
        "/nonexistent/cert.pem",
        "--key",
        "/nonexistent/key.pem",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/nonexistent/cert.pem"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn get_a_refused_connection() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    drop(l);
    let out = run(&["get", &format!("http://{addr}/")]);
    assert_eq!(out.status.code(), Some(3));
    let e = stderr(&out);
    assert!(e.contains("cannot connect") && e.contains("refused"), "{e}");
}

/// A one-shot raw HTTP/2 server that answers the request with `reply` frames.
fn raw_server(reply: Vec<u8>) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        // SETTINGS, SETTINGS ACK, then the reply.
        let mut out = vec![0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0];
        out.extend(reply);
        let _ = s.write_all(&out);
        let _ = s.read(&mut buf);
        std::thread::sleep(Duration::from_millis(500));
    });
    addr
}

#[test]
fn get_reports_a_protocol_error_with_its_code() {
    // DATA on stream 0: a connection error PROTOCOL_ERROR (RFC 9113 §6.1).
    let addr = raw_server(vec![0, 0, 1, 0, 0, 0, 0, 0, 0, b'x']);
    let out = run(&["get", &format!("http://{addr}/")]);
    assert_eq!(out.status.code(), Some(3));
    let e = stderr(&out);
    assert!(
        e.contains("protocol error") && e.contains("PROTOCOL_ERROR"),
        "{e}"
    );
}

#[test]
fn get_reports_the_servers_goaway_code() {
    // GOAWAY(last 0, ENHANCE_YOUR_CALM, "go away").
    let mut goaway = vec![0, 0, 15, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xb];
    goaway.extend_from_slice(b"go away");
    let addr = raw_server(goaway);
    let out = run(&["get", &format!("http://{addr}/")]);
    assert_eq!(out.status.code(), Some(3));
    let e = stderr(&out);
    assert!(
        e.contains("ENHANCE_YOUR_CALM") && e.contains("go away"),
        "{e}"
    );
}

/// Writes a CA, a server certificate for localhost and a client certificate (PEM).
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let dir = temp_dir(name);
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "h2mux test CA");
        let ca = ca.self_signed(&ca_key).unwrap();
        let write = |n: &str, s: String| std::fs::write(dir.join(n), s).unwrap();
        write("ca.pem", ca.pem());
        for (who, san) in [("server", "localhost"), ("client", "client-1")] {
            let key = rcgen::KeyPair::generate().unwrap();
            let cert = rcgen::CertificateParams::new(vec![san.to_string()])
                .unwrap()
                .signed_by(&key, &ca, &ca_key)
                .unwrap();
            write(&format!("{who}.pem"), cert.pem());
            write(&format!("{who}-key.pem"), key.serialize_pem());
        }
        Pki { dir }
    }
    fn path(&self, n: &str) -> String {
        self.dir.join(n).to_string_lossy().into_owned()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn get_reports_a_tls_failure_and_mutual_tls_works_end_to_end() {
    let pki = Pki::new("mtls");
    let s = serve(&[
        "--addr",
        "127.0.0.1:0",
        "--cert",
        &pki.path("server.pem"),
        "--key",
        &pki.path("server-key.pem"),
        "--client-ca",
        &pki.path("ca.pem"),
    ]);
    let port = s.addr.port();
    let url = format!("https://localhost:{port}/bytes/100");
    // Not our CA: the public roots do not know it.
    let out = run(&["get", &url]);
    assert_eq!(out.status.code(), Some(3));
    let e = stderr(&out);
    assert!(e.contains("TLS") && e.contains("certificate"), "{e}");
    // The right CA but no client certificate: refused by the server.
    let out = run(&["get", "--ca", &pki.path("ca.pem"), &url]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    // With the client certificate: served.
    let out = run(&[
        "get",
        "--ca",
        &pki.path("ca.pem"),
        "--cert",
        &pki.path("client.pem"),
        "--key",
        &pki.path("client-key.pem"),
        &url,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout.len(), 100);
}

#[test]
fn sigterm_drains_then_exits_zero() {
    let mut s = serve(&["--addr", "127.0.0.1:0", "--drain-timeout", "30"]);
    // A 64 MiB download in progress when the signal comes must still complete.
    let url = format!("http://{}/bytes/67108864", s.addr);
    let mut get = h2mux()
        .args(["get", &url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 1];
    get.stdout.as_mut().unwrap().read_exact(&mut first).unwrap();
    let pid = s.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let mut rest = Vec::new();
    get.stdout.as_mut().unwrap().read_to_end(&mut rest).unwrap();
    let got = get.wait_with_output().unwrap();
    assert!(got.status.success(), "{}", stderr(&got));
    assert_eq!(rest.len() + 1, 64 << 20, "the download finished");
    let give_up = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = s.child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < give_up, "serve did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    let mut err = String::new();
    s.child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(err.contains("shutting down"), "{err}");
}

#[test]
fn soak_runs_briefly_and_reports_memory_and_streams() {
    // The soak benchmark itself runs for minutes (BENCHMARKS.md); here only 3 s, to keep it
    // working: rows with the server's RSS and streams, and the plateau verdict.
    let out = run(&[
        "soak",
        "--minutes",
        "0.05",
        "--interval",
        "1",
        "--small",
        "8",
    ]);
    let e = stderr(&out);
    assert!(out.status.success(), "{e}");
    let table = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = table.lines().skip(1).collect();
    assert!(rows.len() >= 2, "{table}");
    assert!(
        rows.iter().all(|r| r
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse::<f64>().ok())
            .is_some_and(|rss| rss > 1.0)),
        "{table}"
    );
    assert!(e.contains("server RSS by thirds"), "{e}");
}
