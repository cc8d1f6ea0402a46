//! One test for each fault of the Go library that issue 6 lists, showing that this pool does
//! not have it.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use h2mux_pool::{ClientPool, PoolError, PoolStreamId, ProtocolError, ServerPool};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const T: Duration = Duration::from_secs(10);

/// Fault 1: the Go server stalls after `maxCap` streams per connection (its handlers never
/// return). Ours serves any number over one connection, and streams in use do not count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault1_the_server_serves_any_number_of_streams_over_one_connection() {
    let (server, client, _c) = setup(4).await;
    // 50 held open at once: far more than the server's capacity of 4.
    let mut held = Vec::new();
    for _ in 0..50 {
        held.push(pair(&server, &client).await);
    }
    for (i, (s, c)) in held.iter_mut().enumerate() {
        c.write_all(&[i as u8]).await.unwrap();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.unwrap();
        assert_eq!(b[0], i as u8);
    }
    drop(held);
    // Then 300 more, one after another, each used and closed.
    for i in 0..300u32 {
        let (mut s, mut c) = pair(&server, &client).await;
        c.write_all(&i.to_be_bytes()).await.unwrap();
        c.shutdown().await.unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, i.to_be_bytes());
    }
    assert_eq!(server.sessions(), 1, "all of it over one connection");
    assert_eq!(client.stats().connections, 1);
}

/// Fault 2: a stream closed on the Go server is never seen by the client. Ours delivers the
/// end of stream (EOF) and aborts (resets, as errors) to the other side promptly, both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault2_closes_and_resets_reach_the_other_side_promptly() {
    let (server, client, _c) = setup(16).await;
    let quick = Duration::from_secs(1);
    let mut buf = [0u8; 8];

    // Server half-closes: the client reads what was sent, then EOF; it can still write.
    let (mut s, mut c) = pair(&server, &client).await;
    s.write_all(b"bye").await.unwrap();
    s.shutdown().await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(quick, c.read_to_end(&mut got))
        .await
        .expect("EOF arrives promptly")
        .unwrap();
    assert_eq!(got, b"bye");
    c.write_all(b"still open this way").await.unwrap();
    c.shutdown().await.unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"still open this way");

    // The client is done sending; the server answers and drops its stream without a
    // shutdown: a clean close, the answer then EOF.
    let (mut s, mut c) = pair(&server, &client).await;
    c.shutdown().await.unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.unwrap();
    s.write_all(b"last words").await.unwrap();
    drop(s);
    let mut got = Vec::new();
    tokio::time::timeout(quick, c.read_to_end(&mut got))
        .await
        .expect("the close arrives promptly")
        .unwrap();
    assert_eq!(
        got, b"last words",
        "what was written before the close arrives first"
    );

    // The server drops its stream while the client may still send: an abort; the client's
    // read fails at once, so does its next write.
    let (s, mut c) = pair(&server, &client).await;
    drop(s);
    let e = tokio::time::timeout(quick, c.read(&mut buf))
        .await
        .expect("the abort arrives promptly")
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
    let e = c.write_all(b"x").await.unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");

    // An explicit reset, at any time.
    let (mut s, mut c) = pair(&server, &client).await;
    c.write_all(b"data").await.unwrap();
    s.reset();
    let e = tokio::time::timeout(quick, c.read(&mut buf))
        .await
        .expect("the reset arrives promptly")
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");

    // And the other way round: the client aborts, the server learns.
    let (mut s, c) = pair(&server, &client).await;
    drop(c);
    let e = tokio::time::timeout(quick, s.read(&mut buf))
        .await
        .expect("the abort arrives promptly")
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
}

/// Fault 3: a deadline on one Go stream is set on the shared connection and kills every
/// stream. Ours are per stream: one stream times out, the others go on, and it stays usable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault3_a_timeout_on_one_stream_leaves_the_others_alone() {
    let (server, client, _c) = setup(16).await;
    let (mut s1, mut c1) = pair(&server, &client).await;
    let (mut s2, mut c2) = pair(&server, &client).await;
    c1.set_read_timeout(Some(Duration::from_millis(100)));
    let t = tokio::time::Instant::now();
    let mut buf = [0u8; 16];
    let e = c1.read(&mut buf).await.unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
    assert!(t.elapsed() >= Duration::from_millis(100));
    // The other stream is untouched, both ways.
    c2.write_all(b"two").await.unwrap();
    s2.read_exact(&mut buf[..3]).await.unwrap();
    assert_eq!(&buf[..3], b"two");
    s2.write_all(b"owt").await.unwrap();
    c2.read_exact(&mut buf[..3]).await.unwrap();
    assert_eq!(&buf[..3], b"owt");
    // The timed-out stream still works.
    s1.write_all(b"late").await.unwrap();
    c1.read_exact(&mut buf[..4]).await.unwrap();
    assert_eq!(&buf[..4], b"late");
    c1.write_all(b"ok").await.unwrap();
    s1.read_exact(&mut buf[..2]).await.unwrap();
    assert_eq!(&buf[..2], b"ok");

    // A write timeout: the server does not read, the client's writes fill the windows and
    // then time out, on that stream only.
    c2.set_write_timeout(Some(Duration::from_millis(200)));
    let chunk = vec![0u8; 256 << 10];
    let mut written = 0usize;
    let e = loop {
        if let Err(e) = c2.write_all(&chunk).await {
            break e;
        }
        written += chunk.len();
        assert!(written < 256 << 20, "writes never pushed back");
    };
    assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
    c1.write_all(b"fine").await.unwrap();
    s1.read_exact(&mut buf[..4]).await.unwrap();
    assert_eq!(&buf[..4], b"fine");
}

/// Fault 4: the Go client never checks the response status, so a 403 page becomes a fake
/// ID. Ours fails with a clear error and hands out nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault4_a_refusing_status_is_an_error_not_an_id() {
    let certs = certs();
    for (status, body, expect) in [
        (403u16, &b"Forbidden\n"[..], ProtocolError::Forbidden),
        (404, &b"Not Found\n"[..], ProtocolError::NotFoundOrFull),
        (
            503,
            &b"Unavailable"[..],
            ProtocolError::UnexpectedStatus(503),
        ),
        (200, &b"ab"[..], ProtocolError::TruncatedId(2)),
    ] {
        // An HTTP/2 server over TLS that answers every request with `status` and `body`.
        let srv = h2mux::Server::bind("127.0.0.1:0", h2mux::Config::default())
            .await
            .unwrap()
            .with_tls(certs.server.clone());
        let addr = srv.local_addr().unwrap().to_string();
        let body = Bytes::from_static(body);
        tokio::spawn(srv.serve(move |_req| {
            let body = body.clone();
            async move {
                http::Response::builder()
                    .status(status)
                    .body(h2mux::Body::from(body))
                    .unwrap()
            }
        }));
        let client = client(&addr, &certs);
        wait_until(T, "the client meets the refusal", || {
            matches!(client.last_error(), Some(PoolError::Protocol(_)))
        })
        .await;
        assert_eq!(
            client.last_error(),
            Some(PoolError::Protocol(expect.clone()))
        );
        assert_eq!(client.active(), 0, "{status}: no stream enters the pool");
        // The body's first 4 octets are no ID.
        let mut fake = [0u8; 4];
        fake[..body_prefix(&expect).len()].copy_from_slice(body_prefix(&expect));
        let r = client
            .outgoing_get(PoolStreamId(fake), Duration::from_millis(50))
            .await;
        assert!(matches!(r, Err(PoolError::NotFound { .. })), "{r:?}");
        client.close();
    }
}

fn body_prefix(e: &ProtocolError) -> &'static [u8] {
    match e {
        ProtocolError::Forbidden => b"Forb",
        ProtocolError::NotFoundOrFull => b"Not ",
        ProtocolError::UnexpectedStatus(_) => b"Unav",
        _ => b"ab",
    }
}

/// Fault 5: the Go server runs the TLS handshake inside its accept loop with no timeout, so
/// one silent client blocks everyone. Ours handshakes concurrently, with a timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault5_silent_clients_block_no_one_and_are_dropped_after_the_timeout() {
    let certs = certs();
    let mut cfg = h2mux_pool::ServerConfig::new(
        16,
        certs.server.clone(),
        h2mux_pool::Listen::Addr("127.0.0.1:0".into()),
    );
    cfg.handshake_timeout = Duration::from_millis(300);
    let server = ServerPool::new(cfg).await.unwrap();
    let addr = server.local_addr().unwrap().to_string();
    // Five clients connect and say nothing.
    let mut silent = Vec::new();
    for _ in 0..5 {
        silent.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    // A real client is served meanwhile.
    let client = client(&addr, &certs);
    let t = tokio::time::Instant::now();
    let (mut s, mut c) = pair(&server, &client).await;
    assert!(t.elapsed() < Duration::from_millis(300) || server.sessions() == 1);
    c.write_all(b"served").await.unwrap();
    let mut b = [0u8; 6];
    s.read_exact(&mut b).await.unwrap();
    assert_eq!(&b, b"served");
    // The silent ones are closed once the handshake timeout passes.
    for mut sock in silent {
        let mut buf = [0u8; 1];
        let r = tokio::time::timeout(Duration::from_secs(2), sock.read(&mut buf))
            .await
            .expect("the server closes a silent connection after its handshake timeout");
        assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    }
    wait_until(T, "the five timed-out handshakes are counted", || {
        server.error_count() >= 5
    })
    .await;
    assert_eq!(server.sessions(), 1);
}

/// Fault 6: the Go server checks the client IP per request, after TLS and HTTP setup, by
/// comparing strings. Ours refuses at accept time, before any TLS byte, on parsed addresses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault6_the_ip_check_runs_at_accept_on_parsed_addresses() {
    let certs = certs();
    // Refused: the connection is closed at once, without waiting for a ClientHello (a server
    // that handshakes first would wait for one).
    let server = server_allowing("127.0.0.2", &certs).await;
    let mut sock = tokio::net::TcpStream::connect(server.local_addr().unwrap())
        .await
        .unwrap();
    let mut buf = [0u8; 1];
    let r = tokio::time::timeout(Duration::from_secs(1), sock.read(&mut buf))
        .await
        .expect("closed at accept, before any TLS");
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    assert_eq!(server.error_count(), 1);
    // Allowed, written as an IPv4-mapped IPv6 address: the same client as 127.0.0.1.
    let server = server_allowing("::ffff:127.0.0.1", &certs).await;
    let client = client(&server.local_addr().unwrap().to_string(), &certs);
    let (mut s, mut c) = pair(&server, &client).await;
    c.write_all(b"mapped").await.unwrap();
    let mut b = [0u8; 6];
    s.read_exact(&mut b).await.unwrap();
    assert_eq!(&b, b"mapped");
}

/// Fault 7: on connection loss the Go pool keeps the dead streams and hands them out. Ours
/// drops them, tells waiting callers, and redials with capped exponential backoff and jitter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault7_dead_streams_leave_the_pool_waiters_hear_of_it_and_redials_back_off() {
    let certs = certs();
    let server = server(64, &certs).await;
    let proxy = Proxy::start(server.local_addr().unwrap().to_string()).await;
    let client = client(&proxy.addr, &certs);
    wait_until(T, "the pool fills", || client.active() >= 8).await;
    // The server knows the IDs of the client's idle streams; note some.
    let mut old = Vec::new();
    for _ in 0..4 {
        old.push(server.incoming_get(T).await.unwrap());
    }
    // A caller waits for a stream that will never come.
    let c2 = client.clone();
    let waiter = tokio::spawn(async move {
        c2.outgoing_get(PoolStreamId([1, 2, 3, 4]), Duration::from_secs(30))
            .await
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let t = tokio::time::Instant::now();
    proxy.cut();
    let r = tokio::time::timeout(Duration::from_secs(2), waiter)
        .await
        .expect("the waiter hears of the loss long before its 30 s")
        .unwrap();
    assert!(matches!(r, Err(PoolError::ConnectionLost(_))), "{r:?}");
    assert!(t.elapsed() < Duration::from_secs(2));
    // No stream of the dead connection is handed out.
    for (id, _) in &old {
        let r = client.outgoing_get(*id, Duration::from_millis(20)).await;
        assert!(
            r.is_err(),
            "stream {id} of the dead connection was handed out"
        );
    }
    // The server dropped its halves too; the client reconnected and pairs again.
    let (mut s, mut c) = pair(&server, &client).await;
    c.write_all(b"new").await.unwrap();
    let mut b = [0u8; 3];
    s.read_exact(&mut b).await.unwrap();
    drop(old);

    // Redial backoff: with the server unreachable, the gaps between attempts double up to the
    // cap, each at least half its nominal delay (equal jitter).
    let dead_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let attempts: Arc<Mutex<Vec<tokio::time::Instant>>> = Arc::default();
    let a2 = attempts.clone();
    let mut cfg = client_config(&dead_port, &certs);
    cfg.backoff_base = Duration::from_millis(40);
    cfg.backoff_cap = Duration::from_millis(320);
    cfg.resolver = h2mux_pool::Resolver::new(move || {
        a2.lock().unwrap().push(tokio::time::Instant::now());
        let a = dead_port.clone();
        async move { Ok(a) }
    });
    let lonely = ClientPool::new(cfg).unwrap();
    wait_until(T, "seven dial attempts", || {
        attempts.lock().unwrap().len() >= 7
    })
    .await;
    lonely.close();
    let at = attempts.lock().unwrap().clone();
    let gaps: Vec<Duration> = at.windows(2).map(|w| w[1] - w[0]).collect();
    for (k, g) in gaps.iter().enumerate().take(6) {
        let nominal = (Duration::from_millis(40) * (1 << k)).min(Duration::from_millis(320));
        assert!(
            *g >= nominal / 2,
            "gap {k} was {g:?}, below half of {nominal:?}; gaps {gaps:?}"
        );
    }
    assert!(gaps[5] > gaps[0] * 2, "the delays grow: {gaps:?}");
    assert!(lonely.error_count() >= 6, "every failed dial is counted");
}

/// Fault 8: data races on reconfiguration and flush in the Go library. Ours is race-free by
/// construction (one lock per pool, never held across an await, no unsafe code); hammer
/// takes, flushes, reconfiguration and readers together and check every exchange.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault8_flush_reconfigure_and_take_at_once_stay_consistent() {
    let (server, client, _c) = setup(64).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..4u64 {
        let (server, client, stop) = (server.clone(), client.clone(), stop.clone());
        tasks.spawn(async move {
            let (mut ok, mut failed) = (0u32, 0u32);
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && ok < 400 {
                n += 1;
                let Ok((id, mut s)) = server.incoming_get(Duration::from_secs(2)).await else {
                    failed += 1;
                    continue;
                };
                let Ok(mut c) = client.outgoing_get(id, Duration::from_secs(2)).await else {
                    failed += 1;
                    continue;
                };
                let seed = worker * 1_000_000 + n;
                let exchange = async {
                    c.write_all(&payload(seed, 100)).await?;
                    c.shutdown().await?;
                    let mut got = Vec::new();
                    s.read_to_end(&mut got).await?;
                    Ok::<_, std::io::Error>(got)
                };
                match exchange.await {
                    Ok(got) => {
                        // A flushed (reset) stream may fail; one that succeeds is intact.
                        assert!(
                            check_payload(seed, &got),
                            "worker {worker}: corrupt exchange"
                        );
                        ok += 1;
                    }
                    Err(e) => {
                        assert!(
                            matches!(
                                e.kind(),
                                std::io::ErrorKind::ConnectionReset
                                    | std::io::ErrorKind::BrokenPipe
                            ),
                            "{e}"
                        );
                        failed += 1;
                    }
                }
            }
            (ok, failed)
        });
    }
    let (c2, s2, stop2) = (client.clone(), server.clone(), stop.clone());
    let churn = tokio::spawn(async move {
        let mut i = 0u64;
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            i += 1;
            if i.is_multiple_of(3) {
                c2.flush();
            }
            if i.is_multiple_of(5) {
                s2.flush();
            }
            let max = 4 + (i % 40) as usize;
            c2.set_limits(h2mux_pool::adjust::Limits {
                min_capacity: 2 + (i % 3) as usize,
                max_capacity: max,
                min_interval: Duration::from_millis(1 + i % 5),
                max_interval: Duration::from_millis(50),
            });
            let cap = c2.capacity();
            assert!(cap <= max, "capacity {cap} above the bound {max} just set");
            let _ = (c2.active(), c2.interval(), s2.active(), c2.stats());
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total_ok = 0;
    while let Some(r) = tokio::time::timeout(Duration::from_secs(10), tasks.join_next())
        .await
        .expect("no worker deadlocks")
    {
        let (ok, _failed) = r.unwrap();
        total_ok += ok;
    }
    churn.await.unwrap();
    assert!(
        total_ok > 50,
        "exchanges succeed under the churn: {total_ok}"
    );
    // Quiet again: the pool settles within its last bounds and still works.
    client.set_limits(h2mux_pool::adjust::Limits {
        min_capacity: 4,
        max_capacity: 4,
        min_interval: Duration::from_millis(10),
        max_interval: Duration::from_millis(50),
    });
    let (mut s, mut c) = pair(&server, &client).await;
    c.write_all(b"calm").await.unwrap();
    let mut b = [0u8; 4];
    s.read_exact(&mut b).await.unwrap();
    assert_eq!(&b, b"calm");
    assert_eq!(client.capacity(), 4);
}
