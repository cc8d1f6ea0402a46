//! The reverse tunnel end to end on loopback: tunnel server + tunnel client (in process) and a
//! local echo target.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use h2mux_pool::tunnel::{
    TunnelClient, TunnelClientConfig, TunnelError, TunnelServer, TunnelServerConfig,
};
use h2mux_pool::{Level, Listen, LogSink, TlsMode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const T: Duration = Duration::from_secs(10);
const SECRET: &[u8] = b"correct horse battery staple";

/// A log sink that keeps the lines.
fn recorder() -> (LogSink, Arc<Mutex<Vec<String>>>) {
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let l2 = lines.clone();
    let sink: LogSink = Arc::new(move |level: Level, msg: &str| {
        if std::env::var_os("TUNNEL_LOG").is_some() {
            eprintln!("{level:?} {msg}");
        }
        l2.lock().unwrap().push(format!("{level:?} {msg}"));
    });
    (sink, lines)
}

/// An echo server on loopback.
async fn echo_target() -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    addr
}

async fn tunnel_server(certs: &Certs, secret: &[u8]) -> (TunnelServer, Arc<Mutex<Vec<String>>>) {
    let (sink, lines) = recorder();
    let mut cfg = TunnelServerConfig::new(
        Listen::Addr("127.0.0.1:0".into()),
        Listen::Addr("127.0.0.1:0".into()),
        certs.server.clone(),
        secret,
    );
    cfg.log = Some(sink);
    (TunnelServer::start(cfg).await.unwrap(), lines)
}

fn client_config(
    server: &TunnelServer,
    target: &str,
    certs: &Certs,
    secret: &[u8],
) -> TunnelClientConfig {
    let mut cfg = TunnelClientConfig::new(
        server.pool_addr().unwrap().to_string(),
        target,
        TlsMode::Verified,
        secret,
    );
    cfg.hostname = "pool.test".into();
    cfg.tls_roots = vec![certs.cert.clone()];
    cfg.min_capacity = 32;
    cfg.max_capacity = 256;
    cfg.min_interval = Duration::from_millis(10);
    cfg.max_interval = Duration::from_millis(100);
    cfg
}

/// One tunnelled connection: sends a checksummed payload, expects it back, intact.
async fn echo_through(public: std::net::SocketAddr, seed: u64, len: usize) -> Result<(), String> {
    let mut s = TcpStream::connect(public)
        .await
        .map_err(|e| e.to_string())?;
    let p = payload(seed, len);
    let (mut r, mut w) = s.split();
    let send = async {
        w.write_all(&p).await?;
        w.shutdown().await
    };
    let mut got = Vec::new();
    let recv = r.read_to_end(&mut got);
    let (a, b) = tokio::join!(send, recv);
    a.map_err(|e| format!("send: {e}"))?;
    b.map_err(|e| format!("receive: {e}"))?;
    if check_payload(seed, &got) {
        Ok(())
    } else {
        Err(format!(
            "seed {seed}: {} of {} bytes came back intact?",
            got.len(),
            p.len()
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_parallel_connections_through_the_tunnel_arrive_intact_both_ways() {
    let certs = certs();
    let target = echo_target().await;
    let (server, _) = tunnel_server(&certs, SECRET).await;
    let mut client = TunnelClient::start(client_config(&server, &target, &certs, SECRET)).unwrap();
    wait_until(T, "the client authenticates", || server.has_client()).await;
    let public = server.public_addr().unwrap();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..200u64 {
        set.spawn(echo_through(
            public,
            i,
            1000 + (i as usize * 997) % (64 << 10),
        ));
    }
    let mut ok = 0;
    while let Some(r) = tokio::time::timeout(Duration::from_secs(60), set.join_next())
        .await
        .expect("bounded")
    {
        r.unwrap().unwrap();
        ok += 1;
    }
    assert_eq!(ok, 200);
    wait_until(
        T,
        "every tunnelled connection is finished on both ends",
        || server.stats().snapshot().active == 0 && client.stats().snapshot().active == 0,
    )
    .await;
    let s = server.stats().snapshot();
    let c = client.stats().snapshot();
    assert_eq!((s.accepted, s.completed, s.failed), (200, 200, 0), "{s}");
    assert_eq!((c.accepted, c.completed, c.failed), (200, 200, 0), "{c}");
    assert_eq!(
        s.bytes_in, c.bytes_out,
        "what entered the public side left at the target"
    );
    assert_eq!(s.bytes_out, c.bytes_in);
    client.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_and_restarted_client_serves_new_connections_within_seconds() {
    let certs = certs();
    let target = echo_target().await;
    let (server, lines) = tunnel_server(&certs, SECRET).await;
    let cfg = client_config(&server, &target, &certs, SECRET);
    let public = server.public_addr().unwrap();
    let mut first = TunnelClient::start(cfg.clone()).unwrap();
    wait_until(T, "the first client authenticates", || server.has_client()).await;
    // Load running: four workers, connections one after another, long enough that some
    // are in flight when the client dies.
    let load = tokio::spawn(async move {
        let mut workers = tokio::task::JoinSet::new();
        for w in 0..4u64 {
            workers.spawn(async move {
                let mut results = Vec::new();
                for i in 0..50u64 {
                    let seed = 10_000 + w * 1000 + i;
                    results.push(echo_through(public, seed, 256 << 10).await.is_ok());
                }
                results
            });
        }
        let mut all = Vec::new();
        while let Some(r) = workers.join_next().await {
            all.push(r.unwrap());
        }
        all
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Kill the client: its connection drops as a killed process's would.
    first.close();
    drop(first);
    let killed = tokio::time::Instant::now();
    let second = TunnelClient::start(cfg).unwrap();
    // New connections succeed within seconds of the restart.
    let mut recovered = None;
    while killed.elapsed() < Duration::from_secs(10) {
        if echo_through(public, 99, 1000).await.is_ok() {
            recovered = Some(killed.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let recovered = recovered.expect("a new connection succeeded after the restart");
    assert!(
        recovered < Duration::from_secs(5),
        "recovered after {recovered:?}"
    );
    let workers = tokio::time::timeout(Duration::from_secs(120), load)
        .await
        .unwrap()
        .unwrap();
    assert!(
        workers.iter().all(|w| w.last() == Some(&true)),
        "every worker ends working"
    );
    let ok = workers.iter().flatten().filter(|r| **r).count();
    eprintln!("restart: new connections served {recovered:?} after the kill; {ok}/200 of the load succeeded");
    assert!(
        ok > 150,
        "only the connections around the kill failed: {ok}/200"
    );
    assert!(
        lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("authenticated (session"))
            .count()
            >= 2
    );
    drop(second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_is_refused_with_a_clear_log_line_on_both_sides() {
    let certs = certs();
    let target = echo_target().await;
    let (server, server_lines) = tunnel_server(&certs, SECRET).await;
    let (sink, client_lines) = recorder();
    let mut cfg = client_config(&server, &target, &certs, b"not the secret");
    cfg.log = Some(sink);
    let mut client = TunnelClient::start(cfg).unwrap();
    let r = tokio::time::timeout(T, client.wait())
        .await
        .expect("the client stops");
    assert!(matches!(r, Err(TunnelError::Refused(_))), "{r:?}");
    assert!(
        r.unwrap_err().to_string().contains("authentication failed"),
        "the error says why"
    );
    wait_until(T, "the server logs the refusal", || {
        server_lines.lock().unwrap().iter().any(|l| {
            l.starts_with("Warn tunnel client 127.0.0.1:")
                && l.contains("refused: authentication failed: wrong secret")
        })
    })
    .await;
    assert!(client_lines
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("the tunnel server refused this client: authentication failed")));
    assert!(!server.has_client());
    assert_eq!(server.stats().snapshot().auth_failures, 1);
    // Its connection is closed, and the public port serves nobody through it.
    let e = echo_through(server.public_addr().unwrap(), 1, 10).await;
    assert!(e.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_target_closes_the_public_connection_cleanly_and_is_logged() {
    let certs = certs();
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let (server, lines) = tunnel_server(&certs, SECRET).await;
    let client = TunnelClient::start(client_config(&server, &dead, &certs, SECRET)).unwrap();
    wait_until(T, "the client authenticates", || server.has_client()).await;
    let mut s = TcpStream::connect(server.public_addr().unwrap())
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let r = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("the public connection is closed promptly");
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    wait_until(T, "the refusal is logged and counted", || {
        lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("target refused the connection of 127.0.0.1:"))
            && server.stats().snapshot().refused == 1
    })
    .await;
    assert_eq!(client.stats().snapshot().refused, 1);
    // The tunnel itself is fine.
    assert!(server.has_client());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_is_closed_after_the_idle_timeout() {
    let certs = certs();
    let target = echo_target().await;
    let (sink, _) = recorder();
    let mut cfg = TunnelServerConfig::new(
        Listen::Addr("127.0.0.1:0".into()),
        Listen::Addr("127.0.0.1:0".into()),
        certs.server.clone(),
        SECRET,
    );
    cfg.idle_timeout = Duration::from_millis(300);
    cfg.log = Some(sink);
    let server = TunnelServer::start(cfg).await.unwrap();
    let client = TunnelClient::start(client_config(&server, &target, &certs, SECRET)).unwrap();
    wait_until(T, "the client authenticates", || server.has_client()).await;
    let mut s = TcpStream::connect(server.public_addr().unwrap())
        .await
        .unwrap();
    // Traffic keeps it open past the timeout…
    let mut t = tokio::time::Instant::now();
    for i in 0..5 {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        s.write_all(b"tick").await.unwrap();
        let mut b = [0u8; 4];
        s.read_exact(&mut b).await.unwrap();
        t = tokio::time::Instant::now();
    }
    // …silence closes it.
    let mut b = [0u8; 4];
    let r = tokio::time::timeout(Duration::from_secs(5), s.read(&mut b))
        .await
        .expect("closed by the idle timeout");
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    assert!(t.elapsed() >= Duration::from_millis(250));
    wait_until(T, "counted as idle", || {
        server.stats().snapshot().idle_closed == 1
    })
    .await;
    drop(client);
}
