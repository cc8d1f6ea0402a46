//! `h2mux tunnel server` + `h2mux tunnel client` as processes: connections through the public
//! port reach an echo target, SIGUSR1 prints the counters, a wrong secret is refused with a
//! clear line and exit code 1.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A child killed when dropped, its stderr collected.
struct Proc {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(args: &[&str]) -> (Proc, BufReader<std::process::ChildStdout>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_h2mux"))
        .arg("tunnel")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start h2mux tunnel");
    let stderr: Arc<Mutex<String>> = Arc::default();
    let (mut err, sink) = (child.stderr.take().unwrap(), stderr.clone());
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = err.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let out = BufReader::new(child.stdout.take().unwrap());
    (Proc { child, stderr }, out)
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn echo_target() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut r = s.try_clone().unwrap();
                let mut w = s;
                let _ = std::io::copy(&mut r, &mut w);
                let _ = w.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    addr
}

fn echo_through(public: &str, payload: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect(public)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(payload)?;
    s.shutdown(std::net::Shutdown::Write)?;
    let mut got = Vec::new();
    s.read_to_end(&mut got)?;
    Ok(got)
}

#[test]
fn tunnel_processes_carry_connections_print_stats_and_refuse_a_wrong_secret() {
    let dir = std::env::temp_dir().join(format!("h2mux-tunnel-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert, key, secret) = (
        dir.join("cert.pem"),
        dir.join("key.pem"),
        dir.join("secret"),
    );
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
    std::fs::write(&secret, "s3cret shared by both ends\n").unwrap();
    let (cert, key, secret) = (
        cert.to_str().unwrap(),
        key.to_str().unwrap(),
        secret.to_str().unwrap(),
    );
    let target = echo_target();

    let (server, mut out) = spawn(&[
        "server",
        "--listen",
        "127.0.0.1:0",
        "--public",
        "127.0.0.1:0",
        "--cert",
        cert,
        "--key",
        key,
        "--secret-file",
        secret,
    ]);
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    // "tunnel listening on P, public on Q"
    let rest = line
        .trim()
        .strip_prefix("tunnel listening on ")
        .expect(&line);
    let (pool, public) = rest.split_once(", public on ").expect(&line);
    let (pool, public) = (pool.to_string(), public.to_string());

    let (_client, _) = spawn(&[
        "client",
        "--server",
        &pool,
        "--target",
        &target,
        "--tls-mode",
        "2",
        "--hostname",
        "localhost",
        "--ca",
        cert,
        "--secret-file",
        secret,
        "--min-capacity",
        "8",
    ]);
    wait_for(
        "the client to authenticate",
        Duration::from_secs(15),
        || {
            server
                .stderr
                .lock()
                .unwrap()
                .contains("authenticated (session")
        },
    );
    for i in 0..20u32 {
        let payload: Vec<u8> = (0..10_000u32).map(|j| (i * 7 + j) as u8).collect();
        let got = echo_through(&public, &payload).unwrap();
        assert_eq!(got, payload, "connection {i} came back intact");
    }

    // SIGUSR1: the counters.
    let pid = server.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-USR1", &pid])
        .status()
        .unwrap()
        .success());
    wait_for("the stats line", Duration::from_secs(10), || {
        server
            .stderr
            .lock()
            .unwrap()
            .contains("stats: connections 20 (active 0, done 20, failed 0")
    });

    // A client with the wrong secret: refused, said clearly, exit code 1.
    let (mut wrong, _) = spawn(&[
        "client",
        "--server",
        &pool,
        "--target",
        &target,
        "--tls-mode",
        "0",
        "--secret",
        "guess",
    ]);
    let t = Instant::now();
    let status = loop {
        if let Some(s) = wrong.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "the refused client did not exit"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(1));
    let text = wrong.stderr.lock().unwrap().clone();
    assert!(
        text.contains("the tunnel server refused this client: authentication failed"),
        "{text}"
    );
    wait_for("the server's line", Duration::from_secs(5), || {
        server
            .stderr
            .lock()
            .unwrap()
            .contains("refused: authentication failed: wrong secret")
    });
    // The good client still serves.
    assert_eq!(echo_through(&public, b"still here").unwrap(), b"still here");
    let _ = std::fs::remove_dir_all(&dir);
}
