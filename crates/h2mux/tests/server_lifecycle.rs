//! The server's life beyond one request: graceful shutdown (GOAWAY, in-flight requests drain,
//! a deadline), idle connections, connection limits in total and per client address, the
//! preface and send timeouts. Bounded in time; no timing assertions beyond generous limits.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use h2mux::{Body, Client, Config, Error, Server, ServerHandle, ServerLimits};
use http::{Request, Response, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const GUARD: Duration = Duration::from_secs(20);

async fn handler(req: Request<Body>) -> Response<Body> {
    match req.uri().path() {
        "/slow" => {
            tokio::time::sleep(Duration::from_millis(500)).await;
            Response::new(Body::from("slow done"))
        }
        "/forever" => {
            std::future::pending::<()>().await;
            unreachable!()
        }
        "/big" => Response::new(Body::from(vec![7u8; 32 << 20])),
        _ => Response::new(Body::from("ok")),
    }
}

async fn start(
    config: Config,
    limits: ServerLimits,
) -> (
    String,
    ServerHandle,
    tokio::task::JoinHandle<Result<(), Error>>,
) {
    let server = Server::bind("127.0.0.1:0", config)
        .await
        .unwrap()
        .with_limits(limits);
    let addr = server.local_addr().unwrap().to_string();
    let handle = server.handle();
    let task = tokio::spawn(server.serve(handler));
    (addr, handle, task)
}

async fn eventually(what: &str, f: impl Fn() -> bool) {
    let give_up = tokio::time::Instant::now() + GUARD;
    while !f() {
        assert!(tokio::time::Instant::now() < give_up, "never: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_lets_requests_in_flight_finish_then_serve_returns() {
    let (addr, handle, served) = start(Config::default(), ServerLimits::default()).await;
    let client = Client::connect(&addr).await.unwrap();
    let c = client.clone();
    let in_flight = tokio::spawn(async move { c.get("/slow", 1024).await });
    eventually("the slow request reached its handler", || {
        handle.stats().requests_in_flight == 1
    })
    .await;
    handle.shutdown();
    let (status, body) = tokio::time::timeout(GUARD, in_flight)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"slow done"[..]));
    tokio::time::timeout(GUARD, served)
        .await
        .expect("serve returns after the drain")
        .unwrap()
        .unwrap();
    assert_eq!(handle.stats().connections, 0);
    // The listener is gone: new connections are refused by the kernel.
    let err = Client::connect(&addr).await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    // And the old connection takes no new requests.
    assert!(client.get("/", 1024).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_deadline_closes_connections_whose_requests_never_end() {
    let (addr, handle, served) = start(Config::default(), ServerLimits::default()).await;
    let client = Client::connect(&addr).await.unwrap();
    let c = client.clone();
    let stuck = tokio::spawn(async move { c.get("/forever", 1024).await });
    eventually("the request reached its handler", || {
        handle.stats().requests_in_flight == 1
    })
    .await;
    let started = std::time::Instant::now();
    handle.shutdown_within(Duration::from_millis(300));
    tokio::time::timeout(GUARD, served)
        .await
        .expect("serve returns after the deadline")
        .unwrap()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    let r = tokio::time::timeout(GUARD, stuck).await.unwrap().unwrap();
    assert!(r.is_err(), "the stuck request fails: {r:?}");
}

#[tokio::test]
async fn an_idle_connection_is_closed_gracefully() {
    let limits = ServerLimits {
        idle_timeout: Some(Duration::from_millis(300)),
        ..ServerLimits::default()
    };
    let (addr, handle, _served) = start(Config::default(), limits).await;
    let client = Client::connect(&addr).await.unwrap();
    assert_eq!(client.get("/", 1024).await.unwrap().0, StatusCode::OK);
    eventually("the idle connection is closed", || {
        handle.stats().connections == 0
    })
    .await;
    tokio::time::timeout(GUARD, client.closed())
        .await
        .expect("the client sees its connection end");
    // A busy connection is not idle: a request longer than the idle timeout completes.
    let client = Client::connect(&addr).await.unwrap();
    let (status, body) = client.get("/slow", 1024).await.unwrap();
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"slow done"[..]));
}

/// Reads frames until a GOAWAY; returns its error code and debug data (None: closed first).
async fn read_goaway(sock: &mut TcpStream) -> Option<(u32, String)> {
    let read = async {
        loop {
            let mut head = [0u8; 9];
            sock.read_exact(&mut head).await.ok()?;
            let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
            let mut payload = vec![0u8; len];
            sock.read_exact(&mut payload).await.ok()?;
            if head[3] == 0x7 && len >= 8 {
                let code = u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]);
                return Some((code, String::from_utf8_lossy(&payload[8..]).into_owned()));
            }
        }
    };
    tokio::time::timeout(GUARD, read).await.ok().flatten()
}

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

#[tokio::test]
async fn connections_beyond_the_per_ip_limit_get_enhance_your_calm() {
    let limits = ServerLimits {
        max_connections_per_ip: 3,
        ..ServerLimits::default()
    };
    let (addr, handle, _served) = start(Config::default(), limits).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let c = Client::connect(&addr).await.unwrap();
        assert_eq!(c.get("/", 1024).await.unwrap().0, StatusCode::OK);
        held.push(c);
    }
    let mut extra = TcpStream::connect(&addr).await.unwrap();
    extra.write_all(PREFACE).await.unwrap();
    let (code, debug) = read_goaway(&mut extra).await.expect("a GOAWAY");
    assert_eq!(code, 0xb, "ENHANCE_YOUR_CALM");
    assert!(debug.contains("per-client"), "{debug:?}");
    assert_eq!(handle.stats().refused, 1);
    // Giving one back lets a new one in.
    held.pop().unwrap().close_and_wait().await;
    eventually("the place is given back", || {
        handle.stats().connections == 2
    })
    .await;
    let c = Client::connect(&addr).await.unwrap();
    assert_eq!(c.get("/", 1024).await.unwrap().0, StatusCode::OK);
}

#[tokio::test]
async fn connections_beyond_the_global_limit_are_refused() {
    let limits = ServerLimits {
        max_connections: 2,
        ..ServerLimits::default()
    };
    let (addr, handle, _served) = start(Config::default(), limits).await;
    let a = Client::connect(&addr).await.unwrap();
    let b = Client::connect(&addr).await.unwrap();
    a.get("/", 1024).await.unwrap();
    b.get("/", 1024).await.unwrap();
    let mut extra = TcpStream::connect(&addr).await.unwrap();
    extra.write_all(PREFACE).await.unwrap();
    let (code, debug) = read_goaway(&mut extra).await.expect("a GOAWAY");
    assert_eq!(code, 0xb);
    assert!(debug.contains("connection limit"), "{debug:?}");
    // Our client reports the refusal as a protocol error naming the code.
    let c = Client::connect(&addr).await.unwrap();
    let err = c.get("/", 1024).await.unwrap_err();
    assert!(err.to_string().contains("ENHANCE_YOUR_CALM"), "{err}");
    assert_eq!(handle.stats().connections, 2);
}

#[tokio::test]
async fn a_silent_connection_is_dropped_after_the_preface_timeout() {
    let limits = ServerLimits {
        preface_timeout: Duration::from_millis(200),
        ..ServerLimits::default()
    };
    let (addr, handle, _served) = start(Config::default(), limits).await;
    let mut silent = TcpStream::connect(&addr).await.unwrap();
    eventually("the silent connection is admitted", || {
        handle.stats().accepted == 1
    })
    .await;
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(GUARD, silent.read(&mut buf))
        .await
        .expect("closed within the guard")
        .unwrap_or(0);
    assert_eq!(n, 0, "closed without a word");
    eventually("its place is given back", || {
        handle.stats().connections == 0
    })
    .await;
}

#[tokio::test]
async fn a_peer_that_stops_reading_is_closed_after_the_send_timeout() {
    let limits = ServerLimits {
        send_timeout: Some(Duration::from_millis(500)),
        ..ServerLimits::default()
    };
    let (addr, handle, _served) = start(Config::default(), limits).await;
    // A raw client: preface, a huge window, a request for 32 MiB, then never read.
    let mut sock = TcpStream::connect(&addr).await.unwrap();
    let mut hello = PREFACE[..24].to_vec();
    // SETTINGS_INITIAL_WINDOW_SIZE = 2^31-1, then the connection window to the maximum.
    hello.extend_from_slice(&[0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 4, 0x7f, 0xff, 0xff, 0xff]);
    hello.extend_from_slice(&[0, 0, 4, 8, 0, 0, 0, 0, 0, 0x7f, 0xff, 0, 0]);
    hello.extend_from_slice(&[0, 0, 0, 4, 1, 0, 0, 0, 0]); // SETTINGS ACK
    let block: Vec<u8> = [
        (&b":method"[..], &b"GET"[..]),
        (b":scheme", b"http"),
        (b":path", b"/big"),
        (b":authority", b"x"),
    ]
    .iter()
    .flat_map(|(n, v)| {
        let mut f = vec![0u8, n.len() as u8];
        f.extend_from_slice(n);
        f.push(v.len() as u8);
        f.extend_from_slice(v);
        f
    })
    .collect();
    let len = block.len() as u32;
    hello.extend_from_slice(&len.to_be_bytes()[1..]);
    hello.extend_from_slice(&[1, 0x5, 0, 0, 0, 1]);
    hello.extend_from_slice(&block);
    sock.write_all(&hello).await.unwrap();
    eventually("the request reached its handler", || {
        handle.stats().requests == 1
    })
    .await;
    eventually("the connection that does not read is closed", || {
        handle.stats().connections == 0
    })
    .await;
    drop(sock);
    // Others are still served.
    let c = Client::connect(&addr).await.unwrap();
    assert_eq!(c.get("/", 1024).await.unwrap().0, StatusCode::OK);
}

#[tokio::test]
async fn requests_carry_the_peer_address() {
    let server = Server::bind("127.0.0.1:0", Config::default())
        .await
        .unwrap();
    let addr = server.local_addr().unwrap().to_string();
    let seen = Arc::new(AtomicUsize::new(0));
    let s2 = seen.clone();
    tokio::spawn(server.serve(move |req: Request<Body>| {
        let seen = s2.clone();
        async move {
            let info = req.extensions().get::<h2mux::PeerInfo>().cloned();
            if let Some(i) = &info {
                if i.remote_addr.ip().is_loopback() && !i.tls {
                    seen.fetch_add(1, Ordering::Relaxed);
                }
            }
            Response::new(Body::from(Bytes::from(format!(
                "{:?}",
                info.map(|i| i.remote_addr)
            ))))
        }
    }));
    let c = Client::connect(&addr).await.unwrap();
    let (_, body) = c.get("/", 1024).await.unwrap();
    assert!(std::str::from_utf8(&body).unwrap().contains("127.0.0.1"));
    assert_eq!(seen.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn a_closing_connection_lingers_so_the_peer_gets_no_reset() {
    // Regression: the driver closed its socket while the peer was still sending (here PINGs;
    // in the wild WINDOW_UPDATEs for a response it was reading), the kernel answered with a
    // TCP reset, and the reset made the peer's kernel drop what it had received but not yet
    // read — the tail of the last response (seen as truncated downloads after SIGTERM).
    let limits = ServerLimits {
        idle_timeout: Some(Duration::from_millis(200)),
        ..ServerLimits::default()
    };
    let (addr, handle, _served) = start(Config::default(), limits).await;
    let mut sock = TcpStream::connect(&addr).await.unwrap();
    let mut hello = PREFACE.to_vec();
    hello.extend_from_slice(&[0, 0, 0, 4, 1, 0, 0, 0, 0]); // SETTINGS ACK
    sock.write_all(&hello).await.unwrap();
    // Keep sending (and read nothing) well past the idle close (~1.2 s: 200 ms + 1 s for the
    // unanswered shutdown PING).
    let ping = [0u8, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];
    let until = tokio::time::Instant::now() + Duration::from_millis(2500);
    while tokio::time::Instant::now() < until {
        let w = sock.write_all(&ping).await;
        assert!(w.is_ok(), "the server reset the connection: {w:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sock.shutdown().await.unwrap();
    let mut got = Vec::new();
    let r = tokio::time::timeout(GUARD, sock.read_to_end(&mut got))
        .await
        .unwrap();
    assert!(r.is_ok(), "the close was a reset: {r:?}");
    assert!(
        got.windows(4).any(|w| w == [0, 0, 0, 0]) && got.len() > 9,
        "everything the server sent was readable"
    );
    eventually("the connection is gone", || handle.stats().connections == 0).await;
}
