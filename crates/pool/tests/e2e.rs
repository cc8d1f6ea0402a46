//! End to end on loopback with rcgen certificates: a ServerPool and a ClientPool pairing
//! streams by ID.

mod common;

use std::time::Duration;

use common::*;
use h2mux_pool::PoolStreamId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const T: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_stream_then_a_paired_stream_both_ways() {
    let certs = certs();
    let server = server(16, &certs).await;
    let addr = server.local_addr().unwrap().to_string();
    let client = client(&addr, &certs);

    // The first stream of the connection is the control stream, on both sides.
    let mut s_ctl = server.incoming_control(T).await.unwrap();
    assert_eq!(s_ctl.id(), PoolStreamId::CONTROL);
    let mut c_ctl = client.outgoing_get(PoolStreamId::CONTROL, T).await.unwrap();
    c_ctl.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    s_ctl.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");

    // A data stream: the server takes one, announces its ID, the client takes it by ID.
    let (id, mut s) = server.incoming_get(T).await.unwrap();
    assert_ne!(id, PoolStreamId::CONTROL);
    s_ctl.write_all(&id.0).await.unwrap();
    c_ctl.read_exact(&mut buf).await.unwrap();
    let mut c = client.outgoing_get(PoolStreamId(buf), T).await.unwrap();
    assert_eq!(c.id(), id);
    c.write_all(b"hello server").await.unwrap();
    c.shutdown().await.unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"hello server");
    s.write_all(b"hello client").await.unwrap();
    s.shutdown().await.unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"hello client");

    // Addresses and the TLS session.
    assert_eq!(c.peer_addr(), server.local_addr());
    assert_eq!(s.peer_addr(), c.local_addr());
    assert_eq!(c.tls_info().version, "TLSv1_3");
    assert_eq!(c.tls_info().alpn.as_deref(), Some("h2"));
    assert_eq!(s.tls_info().server_name.as_deref(), Some("pool.test"));
    assert_eq!(c.tls_info().peer_certificates, vec![certs.cert.clone()]);
    assert_eq!(c.tls_info().channel_binding.len(), 32);
    assert_eq!(
        c.tls_info().channel_binding,
        s.tls_info().channel_binding,
        "both ends of one TLS session export the same channel binding"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_copy_chunks_and_the_byte_interface_mix() {
    let certs = certs();
    let server = server(16, &certs).await;
    let client = client(&server.local_addr().unwrap().to_string(), &certs);
    let (id, mut s) = server.incoming_get(T).await.unwrap();
    let mut c = client.outgoing_get(id, T).await.unwrap();
    let big = bytes::Bytes::from(payload(9, 3 << 20));
    c.write_chunk(big.slice(..1 << 20)).await.unwrap();
    c.write_all(&big[1 << 20..]).await.unwrap();
    c.shutdown().await.unwrap();
    let mut got = Vec::new();
    let mut first = [0u8; 10];
    s.read_exact(&mut first).await.unwrap();
    got.extend_from_slice(&first);
    while let Some(chunk) = s.read_chunk().await.unwrap() {
        got.extend_from_slice(&chunk);
    }
    assert!(
        check_payload(9, &got),
        "{} bytes, intact and in order",
        got.len()
    );
    assert_eq!(s.read_chunk().await.unwrap(), None, "EOF stays EOF");
    s.write_chunk(bytes::Bytes::from_static(b"done"))
        .await
        .unwrap();
    drop(s);
    let mut back = Vec::new();
    c.read_to_end(&mut back).await.unwrap();
    assert_eq!(back, b"done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_read_buffer_takes_what_arrived_then_the_end() {
    // `AsyncRead` fills a large buffer from every piece that has already arrived (not one
    // frame per read); the end is reported by the read after the data, and stays.
    let certs = certs();
    let server = server(16, &certs).await;
    let client = client(&server.local_addr().unwrap().to_string(), &certs);
    let (id, mut s) = server.incoming_get(T).await.unwrap();
    let mut c = client.outgoing_get(id, T).await.unwrap();
    let data = bytes::Bytes::from(payload(21, (3 << 20) + 12_345));
    for part in data.chunks(1 << 20) {
        c.write_chunk(data.slice_ref(part)).await.unwrap();
    }
    for part in [&b"tail"[..], b"-", b"end"] {
        c.write_all(part).await.unwrap();
    }
    c.shutdown().await.unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 8 << 20];
    loop {
        let n = s.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got.len(), data.len() + 8, "every byte, then EOF");
    assert!(check_payload(21, &got[..data.len()]), "intact and in order");
    assert_eq!(&got[data.len()..], b"tail-end");
    assert_eq!(s.read(&mut buf).await.unwrap(), 0, "EOF stays EOF");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_after_data_is_an_error_never_an_end_with_a_large_read_buffer() {
    let certs = certs();
    let server = server(16, &certs).await;
    let client = client(&server.local_addr().unwrap().to_string(), &certs);
    let (id, mut s) = server.incoming_get(T).await.unwrap();
    let mut c = client.outgoing_get(id, T).await.unwrap();
    c.write_all(&payload(22, 2 << 20)).await.unwrap();
    c.flush().await.unwrap();
    let mut first = [0u8; 1];
    s.read_exact(&mut first).await.unwrap();
    c.reset();
    let mut got = first.to_vec();
    let mut buf = vec![0u8; 8 << 20];
    let err = loop {
        match s.read(&mut buf).await {
            Ok(0) => panic!(
                "a reset stream read as a clean end after {} bytes",
                got.len()
            ),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => break e,
        }
    };
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
    assert!(got.len() <= 2 << 20);
    assert_eq!(
        got,
        payload(22, 2 << 20)[..got.len()],
        "what arrived is a prefix"
    );
    assert_eq!(
        s.read(&mut buf).await.unwrap_err().kind(),
        std::io::ErrorKind::ConnectionReset,
        "the error stays"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_and_end_sent_before_the_stream_is_taken_are_handed_out() {
    let certs = certs();
    let server = server(16, &certs).await;
    let client = client(&server.local_addr().unwrap().to_string(), &certs);
    // The server side writes everything and closes before the client takes the stream (as a
    // tunnel does with a short request): the stream is still handed out, with its data.
    let (id, mut s) = server.incoming_get(T).await.unwrap();
    s.write_all(b"early").await.unwrap();
    s.shutdown().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await; // a round or two pass
    assert!(client.contains(id), "the stream stays in the pool");
    let mut c = client.outgoing_get(id, T).await.unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"early");
    c.write_all(b"late").await.unwrap();
    drop(c);
    let mut back = Vec::new();
    s.read_to_end(&mut back).await.unwrap();
    assert_eq!(back, b"late");
}

/// Seeds of the two directions of the stream named `id` (so a crossed stream fails its check).
fn seeds(id: PoolStreamId) -> (u64, u64) {
    let x = u64::from(u32::from_be_bytes(id.0));
    (x * 2 + 1, x * 2 + 2)
}

fn len_of(id: PoolStreamId) -> usize {
    (u32::from_be_bytes(id.0) % (48 << 10)) as usize
}

/// The server side of the pairing tests: takes `n` streams, announces each ID on the control
/// stream, and on each stream checks the client's payload and answers with its own.
async fn serve_pairs(
    server: h2mux_pool::ServerPool,
    n: usize,
) -> tokio::task::JoinHandle<Vec<PoolStreamId>> {
    tokio::spawn(async move {
        let mut ctl = server.incoming_control(T).await.unwrap();
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..n {
            let (id, mut s) = server.incoming_get(T).await.unwrap();
            ctl.write_all(&id.0).await.unwrap();
            set.spawn(async move {
                let (up, down) = seeds(id);
                let mut got = Vec::new();
                s.read_to_end(&mut got).await.unwrap();
                assert!(
                    check_payload(up, &got),
                    "stream {id}: client payload corrupt or crossed"
                );
                s.write_all(&payload(down, len_of(id))).await.unwrap();
                s.shutdown().await.unwrap();
                id
            });
        }
        let mut ids = Vec::new();
        while let Some(r) = set.join_next().await {
            ids.push(r.unwrap());
        }
        ids
    })
}

/// The client side: reads `n` IDs from the control stream, takes each stream by ID, sends
/// its payload and checks the server's.
async fn use_pairs(client: &h2mux_pool::ClientPool, n: usize) -> Vec<PoolStreamId> {
    let mut ctl = client.outgoing_get(PoolStreamId::CONTROL, T).await.unwrap();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let mut b = [0u8; 4];
        ctl.read_exact(&mut b).await.unwrap();
        let id = PoolStreamId(b);
        let client = client.clone();
        set.spawn(async move {
            let mut s = client.outgoing_get(id, T).await.unwrap();
            let (up, down) = seeds(id);
            s.write_all(&payload(up, len_of(id))).await.unwrap();
            s.shutdown().await.unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.unwrap();
            assert!(
                check_payload(down, &got),
                "stream {id}: server payload corrupt or crossed"
            );
            id
        });
    }
    let mut ids = Vec::new();
    while let Some(r) = set.join_next().await {
        ids.push(r.unwrap());
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_streams_pair_by_id_with_distinct_payloads_both_ways() {
    let certs = certs();
    let server = server(128, &certs).await;
    let addr = server.local_addr().unwrap().to_string();
    let client = client(&addr, &certs);
    let served = serve_pairs(server.clone(), 1000).await;
    let mut used = use_pairs(&client, 1000).await;
    let mut served = tokio::time::timeout(Duration::from_secs(60), served)
        .await
        .unwrap()
        .unwrap();
    used.sort();
    served.sort();
    assert_eq!(used.len(), 1000);
    assert_eq!(used, served, "both ends used the same 1000 IDs");
    used.dedup();
    assert_eq!(used.len(), 1000, "IDs are distinct");
    assert!(!used.contains(&PoolStreamId::CONTROL));
    // One connection carried everything.
    assert_eq!(server.sessions(), 1);
    assert_eq!(client.stats().connections, 1);
}

/// The pool's resting state: `idle` streams waiting and nothing else alive, held for longer
/// than a round (so no sweep or creation is about to change it).
async fn settle(client: &h2mux_pool::ClientPool, idle: usize) -> h2mux_pool::PoolStats {
    let resting =
        |s: &h2mux_pool::PoolStats| s.idle == idle && s.streams == idle && s.connections == 1;
    let deadline = tokio::time::Instant::now() + T;
    let mut since: Option<(tokio::time::Instant, h2mux_pool::PoolStats)> = None;
    loop {
        let s = client.stats();
        match since {
            Some((t, first)) if resting(&s) && s == first => {
                if t.elapsed() > Duration::from_millis(300) {
                    return s;
                }
            }
            _ => since = resting(&s).then(|| (tokio::time::Instant::now(), s)),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the client pool never rested with {idle} idle streams: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_killed_mid_transfer_recovers_within_a_second_without_leaks() {
    let certs = certs();
    let server = server(64, &certs).await;
    let proxy = Proxy::start(server.local_addr().unwrap().to_string()).await;
    let mut cfg = client_config(&proxy.addr, &certs);
    // A fixed capacity, so "back to baseline" is one number.
    cfg.min_capacity = 8;
    cfg.max_capacity = 8;
    let client = h2mux_pool::ClientPool::new(cfg).unwrap();

    // Baseline: 8 data streams and the control stream idle (the server holds its halves).
    let base = settle(&client, 9).await;
    wait_until(T, "the server holds the 9 streams", || server.active() == 9).await;
    let server_base = server.stats();
    assert_eq!(base.connections, 1);

    // A transfer in progress: the client streams bytes to the server until the cut.
    let (id, mut s) = server.incoming_get(T).await.unwrap();
    let mut c = client.outgoing_get(id, T).await.unwrap();
    let writer = tokio::spawn(async move {
        let chunk = vec![7u8; 64 << 10];
        loop {
            if let Err(e) = c.write_all(&chunk).await {
                return e;
            }
        }
    });
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 << 10];
        let mut total = 0usize;
        loop {
            match s.read(&mut buf).await {
                Ok(0) => return (total, None),
                Ok(n) => total += n,
                Err(e) => return (total, Some(e)),
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Cut the TCP connection under both pools.
    let cut = tokio::time::Instant::now();
    proxy.cut();
    let werr = tokio::time::timeout(Duration::from_secs(1), writer)
        .await
        .expect("the writer learns of the loss promptly")
        .unwrap();
    assert!(
        matches!(
            werr.kind(),
            std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::ConnectionReset
        ),
        "{werr}"
    );
    let (moved, rerr) = tokio::time::timeout(Duration::from_secs(1), reader)
        .await
        .expect("the reader learns of the loss promptly")
        .unwrap();
    assert!(moved > 0, "bytes moved before the cut");
    assert!(rerr.is_some(), "the reader sees an error, not a clean end");

    // Recovery: a new connection with a new control stream and a working stream pair, within
    // a second of the cut.
    let mut ctl = server
        .incoming_control(Duration::from_secs(1))
        .await
        .unwrap();
    let (id2, mut s2) = server.incoming_get(Duration::from_secs(1)).await.unwrap();
    let mut c2 = client
        .outgoing_get(id2, Duration::from_secs(1))
        .await
        .unwrap();
    c2.write_all(b"after the cut").await.unwrap();
    let mut b = [0u8; 13];
    s2.read_exact(&mut b).await.unwrap();
    let recovered = cut.elapsed();
    assert_eq!(&b, b"after the cut");
    assert!(
        recovered < Duration::from_secs(1),
        "recovered in {recovered:?}"
    );
    assert_eq!(proxy.open(), 1, "one new connection, the old one gone");
    drop((c2, s2));
    ctl.write_all(b"x").await.unwrap();
    drop(ctl);

    // Back to baseline on both sides: the same idle streams, and no task or stream left over
    // from the dead connection. (The server dropped the new control stream, resetting it, so
    // the client's half leaves its pool too: one stream fewer on each side.)
    let after = settle(&client, 8).await;
    assert_eq!(
        after.tasks, base.tasks,
        "client tasks: {base:?} then {after:?}"
    );
    assert_eq!(after.streams, base.streams - 1);
    assert_eq!(after.connections, 1);
    wait_until(T, "the server is back to its baseline", || {
        let s = server.stats();
        s.idle == server_base.idle - 1
            && s.streams == server_base.streams - 1
            && s.tasks == server_base.tasks
            && s.connections == 1
    })
    .await;
    assert!(client.error_count() >= 1, "the loss was counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_pool_follows_a_server_restart() {
    let certs = certs();
    let first = server(16, &certs).await;
    let addr = first.local_addr().unwrap().to_string();
    let client = client(&addr, &certs);
    let used = {
        let served = serve_pairs(first.clone(), 5).await;
        let used = use_pairs(&client, 5).await;
        assert_eq!(served.await.unwrap().len(), 5);
        used
    };
    assert_eq!(used.len(), 5);

    // The server goes away; the client notices and keeps redialling.
    first.close();
    drop(first);
    wait_until(T, "the client sees the server gone", || !client.ready()).await;
    assert_eq!(
        client.active(),
        0,
        "no stream of the dead server stays in the pool"
    );

    // A new server on the same address: the client pool reconnects by itself and pairs.
    let second = {
        let deadline = tokio::time::Instant::now() + T;
        loop {
            let cfg = h2mux_pool::ServerConfig::new(
                16,
                certs.server.clone(),
                h2mux_pool::Listen::Addr(addr.clone()),
            );
            match h2mux_pool::ServerPool::new(cfg).await {
                Ok(s) => break s,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("cannot bind {addr} again: {e}"),
            }
        }
    };
    let served = serve_pairs(second.clone(), 5).await;
    let used = use_pairs(&client, 5).await;
    assert_eq!(served.await.unwrap().len(), 5);
    assert_eq!(used.len(), 5);
    assert!(client.ready());
    assert!(matches!(
        client.last_error(),
        Some(h2mux_pool::PoolError::ConnectionLost(_) | h2mux_pool::PoolError::Connect { .. })
            | Some(h2mux_pool::PoolError::Tls { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_mode_2_with_a_wrong_hostname_fails_clearly_and_mode_0_does_not_verify() {
    let certs = certs();
    let server = server(16, &certs).await;
    let addr = server.local_addr().unwrap().to_string();
    let mut cfg = client_config(&addr, &certs);
    cfg.hostname = "wrong.test".into();
    let wrong = h2mux_pool::ClientPool::new(cfg.clone()).unwrap();
    wait_until(T, "the handshake fails", || wrong.last_error().is_some()).await;
    let e = wrong.last_error().unwrap();
    let text = e.to_string();
    assert!(matches!(e, h2mux_pool::PoolError::Tls { .. }), "{e:?}");
    assert!(
        text.contains("not valid for name") && text.contains("wrong.test"),
        "the error names the problem and the hostname: {text}"
    );
    assert!(!wrong.ready());
    assert_eq!(wrong.active(), 0);
    let r = wrong
        .outgoing_get(PoolStreamId::CONTROL, Duration::from_millis(100))
        .await;
    assert!(
        matches!(r, Err(h2mux_pool::PoolError::NotFound { .. })),
        "{r:?}"
    );
    wrong.close();

    // Mode 0 with the same wrong name: encrypted, not verified, works.
    cfg.tls_mode = h2mux_pool::TlsMode::Unverified;
    let unverified = h2mux_pool::ClientPool::new(cfg).unwrap();
    let ctl = unverified
        .outgoing_get(PoolStreamId::CONTROL, T)
        .await
        .unwrap();
    assert_eq!(ctl.tls_info().version, "TLSv1_3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_allowed_client_address_may_connect() {
    let certs = certs();
    // Allowed 127.0.0.2: a client from 127.0.0.1 is refused, one from 127.0.0.2 pairs; the
    // allowed address given as IPv4-mapped IPv6 is the same address.
    for allowed in ["127.0.0.2", "::ffff:127.0.0.2"] {
        let server = server_allowing(allowed, &certs).await;
        let addr = server.local_addr().unwrap().to_string();
        let refused = client(&addr, &certs);
        wait_until(T, "the refused client fails", || {
            refused.last_error().is_some()
        })
        .await;
        assert!(!refused.ready());
        assert_eq!(server.sessions(), 0);
        assert!(server.error_count() >= 1);
        refused.close();

        let mut cfg = client_config(&addr, &certs);
        cfg.dialer = h2mux_pool::Dialer::Tcp {
            bind: Some("127.0.0.2".parse().unwrap()),
        };
        let allowed_client = h2mux_pool::ClientPool::new(cfg).unwrap();
        let ctl = allowed_client
            .outgoing_get(PoolStreamId::CONTROL, T)
            .await
            .unwrap();
        assert_eq!(
            ctl.local_addr().unwrap().ip(),
            "127.0.0.2".parse::<std::net::IpAddr>().unwrap()
        );
        let s = server.incoming_control(T).await.unwrap();
        assert_eq!(s.peer_addr(), ctl.local_addr());
    }
}
