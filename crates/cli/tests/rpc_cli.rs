//! `h2mux rpc` against a real `h2mux serve` process, over h2c and TLS: replies and status
//! printed, exit codes for OK, an error status, a connection failure and bad arguments.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

struct Serve {
    child: Child,
    port: u16,
    _dir: Option<TempDir>,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory removed on drop.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn serve(extra: &[&str], dir: Option<TempDir>) -> Serve {
    let mut child = Command::new(env!("CARGO_BIN_EXE_h2mux"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start h2mux serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read the listening line");
    let port = line
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line from h2mux serve: {line:?}"));
    Serve {
        child,
        port,
        _dir: dir,
    }
}

fn serve_tls() -> Serve {
    let dir = std::env::temp_dir().join(format!("h2mux-rpc-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
    let (c, k) = (cert.to_str().unwrap(), key.to_str().unwrap());
    serve(&["--cert", c, "--key", k], Some(TempDir(dir)))
}

fn rpc(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_h2mux"))
        .arg("rpc")
        .args(args)
        .output()
        .expect("run h2mux rpc");
    eprintln!(
        "h2mux rpc {args:?} → {:?}\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn unary_and_streaming_calls_print_replies_and_status() {
    let s = serve(&[], None);
    let url = format!("http://127.0.0.1:{}", s.port);
    let o = rpc(&[&url, "Unary", "--payload", "hello"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o), "reply 0: hello\nstatus OK\n");

    let o = rpc(&[
        &url,
        "ServerStream",
        "--payload",
        "hi",
        "--repeat",
        "3",
        "-H",
        "x-tag: t1",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        stdout(&o),
        "metadata x-tag: t1\nreply 0: hi\nreply 1: hi\nreply 2: hi\nstatus OK\n"
    );

    let o = rpc(&[&url, "ClientStream", "-p", "ab", "-p", "cd", "--gzip", "-v"]);
    assert_eq!(
        stdout(&o),
        "reply-encoding gzip\nreply 0: abcd\nstatus OK\n"
    );
    let o = rpc(&[&url, "Bidi", "-p", "x", "--count", "2"]);
    assert_eq!(stdout(&o), "reply 0: x\nreply 1: x\nstatus OK\n");
    let o = rpc(&[&url, "Health"]);
    assert_eq!(stdout(&o), "reply 0: Serving\nstatus OK\n");
}

#[test]
fn a_non_ok_status_or_no_server_exits_non_zero_with_a_clear_message() {
    let s = serve(&[], None);
    let url = format!("http://127.0.0.1:{}", s.port);
    let o = rpc(&[&url, "Unary", "-H", "x-h2mux-fail: NOT_FOUND"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Unary ended with NOT_FOUND"),
        "{o:?}"
    );
    let o = rpc(&[&url, "/no.Such/Method"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("status UNIMPLEMENTED"), "{o:?}");
    let o = rpc(&[
        &url,
        "Unary",
        "-H",
        "x-h2mux-delay-ms: 3000",
        "--timeout",
        "0.2",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("DEADLINE_EXCEEDED"), "{o:?}");

    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let o = rpc(&[&format!("http://127.0.0.1:{port}"), "Unary"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("cannot connect"),
        "{o:?}"
    );

    assert_eq!(rpc(&[&url, "Nope"]).status.code(), Some(2));
    assert_eq!(
        rpc(&[&url, "Unary", "--payload-hex", "aé0"]).status.code(),
        Some(2)
    );
    assert_eq!(rpc(&["ftp://x", "Unary"]).status.code(), Some(2));
}

#[test]
fn over_tls_with_insecure_and_refused_without() {
    let s = serve_tls();
    let url = format!("https://localhost:{}", s.port);
    let o = rpc(&[&url, "Unary", "-k", "--payload", "secret"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o), "reply 0: secret\nstatus OK\n");
    // Without -k the self-signed certificate is refused: no connection.
    let o = rpc(&[&url, "Unary"]);
    assert_eq!(o.status.code(), Some(3), "{o:?}");
}
