//! The shared channel against h2mux's own gRPC echo server: every call kind, statuses,
//! deadlines, gzip, metadata, sharing by many tasks, spreading over connections, and
//! reconnecting after the server went away.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use h2mux::{Config, Server};
use h2mux_rpc::channel::{CallOptions, Channel, ChannelConfig, State};
use h2mux_rpc::echo::{method, EchoReply, EchoRequest};
use h2mux_rpc::metadata::Metadata;
use h2mux_rpc::server::echo_service;
use h2mux_rpc::Code;

async fn start_on(addr: &str) -> (String, tokio::task::JoinHandle<()>) {
    let server = Server::bind(addr, Config::default()).await.unwrap();
    let addr = server.local_addr().unwrap().to_string();
    let rpc = std::sync::Arc::new(echo_service());
    let task = tokio::spawn(async move {
        let _ = server
            .serve(move |req| {
                let rpc = rpc.clone();
                async move { rpc.handle(req).await }
            })
            .await;
    });
    (addr, task)
}

fn req(payload: &[u8], repeat: u32) -> Vec<u8> {
    let mut b = BytesMut::new();
    EchoRequest {
        payload: Bytes::copy_from_slice(payload),
        repeat,
    }
    .encode(&mut b);
    b.to_vec()
}

fn reply(m: Bytes) -> EchoReply {
    EchoReply::decode(m).unwrap()
}

#[tokio::test]
async fn all_four_call_kinds() {
    let (addr, _s) = start_on("127.0.0.1:0").await;
    let ch = Channel::new(ChannelConfig::new(&addr));
    assert_eq!(ch.state(), State::Idle);
    let r = ch
        .unary(method::UNARY, &req(b"one", 0), CallOptions::default())
        .await
        .unwrap();
    assert_eq!(reply(r).payload, Bytes::from_static(b"one"));
    assert_eq!(ch.state(), State::Ready);

    let mut call = ch
        .start(method::SERVER_STREAM, CallOptions::default())
        .await
        .unwrap();
    call.send(&req(b"s", 4)).await.unwrap();
    call.finish();
    let mut idx = Vec::new();
    while let Some(m) = call.recv().await {
        idx.push(reply(m.unwrap()).index);
    }
    assert_eq!(idx, [0, 1, 2, 3]);
    assert_eq!(call.status().unwrap().code, Code::OK);

    let mut call = ch
        .start(method::CLIENT_STREAM, CallOptions::default())
        .await
        .unwrap();
    for p in [&b"a"[..], b"bc", b"def"] {
        call.send(&req(p, 0)).await.unwrap();
    }
    call.finish();
    assert_eq!(
        reply(call.recv().await.unwrap().unwrap()).payload,
        Bytes::from_static(b"abcdef")
    );

    let mut call = ch
        .start(method::BIDI, CallOptions::default())
        .await
        .unwrap();
    for i in 0..5u8 {
        call.send(&req(&[i], 0)).await.unwrap();
        let r = reply(call.recv().await.unwrap().unwrap());
        assert_eq!((r.payload[0], r.index), (i, u32::from(i)));
    }
    call.finish();
    assert!(call.recv().await.is_none());
}

#[tokio::test]
async fn statuses_deadlines_metadata_and_gzip() {
    let (addr, _s) = start_on("127.0.0.1:0").await;
    let ch = Channel::new(ChannelConfig::new(&addr));
    let mut md = Metadata::new();
    md.insert("x-h2mux-fail", "ALREADY_EXISTS").unwrap();
    let err = ch
        .unary(
            method::UNARY,
            &req(b"x", 0),
            CallOptions {
                metadata: md,
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, Code::ALREADY_EXISTS);

    let mut md = Metadata::new();
    md.insert("x-h2mux-delay-ms", "3000").unwrap();
    let t = std::time::Instant::now();
    let opts = CallOptions {
        metadata: md,
        timeout: Some(Duration::from_millis(100)),
        ..Default::default()
    };
    let err = ch
        .unary(method::UNARY, &req(b"x", 0), opts)
        .await
        .unwrap_err();
    assert_eq!(err.code, Code::DEADLINE_EXCEEDED);
    assert!(t.elapsed() < Duration::from_secs(2));

    let big = vec![b'z'; 200_000];
    let r = ch
        .unary(
            method::UNARY,
            &req(&big, 0),
            CallOptions {
                gzip: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(reply(r).payload.len(), 200_000);

    let mut md = Metadata::new();
    md.insert("x-trace", "abc").unwrap();
    md.insert_bin("x-raw-bin", &[0, 255]).unwrap();
    let mut call = ch
        .start(
            method::UNARY,
            CallOptions {
                metadata: md,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    call.send(&req(b"m", 0)).await.unwrap();
    call.finish();
    call.recv().await.unwrap().unwrap();
    assert_eq!(call.metadata().get_str("x-trace"), Some("abc"));
    assert_eq!(call.metadata().get("x-raw-bin"), Some(&[0u8, 255][..]));

    let err = ch
        .unary("/h2mux.echo.v1.Echo/Nope", b"", CallOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.code, Code::UNIMPLEMENTED);
}

#[tokio::test]
async fn a_hundred_tasks_share_one_channel_over_two_connections() {
    let (addr, _s) = start_on("127.0.0.1:0").await;
    let mut cfg = ChannelConfig::new(&addr);
    cfg.connections = 2;
    let ch = Channel::new(cfg);
    let mut tasks = Vec::new();
    for w in 0..100u32 {
        let ch = ch.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..20u32 {
                let p = format!("{w}-{i}");
                let r = ch
                    .unary(method::UNARY, &req(p.as_bytes(), 0), CallOptions::default())
                    .await
                    .unwrap();
                assert_eq!(reply(r).payload, Bytes::from(p));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(ch.connection_count(), 2);
}

/// An echo server on its own runtime: dropping it ends every connection it serves (an
/// aborted accept loop alone would leave the served connections running).
struct KillableServer {
    runtime: Option<tokio::runtime::Runtime>,
    addr: String,
}

impl KillableServer {
    fn start(addr: &str) -> KillableServer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (addr, _task) = runtime.block_on(start_on(addr));
        KillableServer {
            runtime: Some(runtime),
            addr,
        }
    }
}

impl Drop for KillableServer {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_the_server_restarts() {
    let server = tokio::task::block_in_place(|| KillableServer::start("127.0.0.1:0"));
    let addr = server.addr.clone();
    let ch = Channel::new(ChannelConfig::new(&addr));
    ch.unary(method::UNARY, &req(b"a", 0), CallOptions::default())
        .await
        .unwrap();
    drop(server);
    // Calls fail while the server is away (the old connection is gone, dials are refused)...
    let mut failed = false;
    for _ in 0..100 {
        if ch
            .unary(method::UNARY, &req(b"b", 0), CallOptions::default())
            .await
            .is_err()
        {
            failed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(failed, "a call should fail while the server is down");
    // ...and succeed again once it is back on the same address.
    let _server = tokio::task::block_in_place(|| KillableServer::start(&addr));
    let mut ok = false;
    for _ in 0..100 {
        if ch
            .unary(method::UNARY, &req(b"c", 0), CallOptions::default())
            .await
            .is_ok()
        {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "the channel did not reconnect");
    assert_eq!(ch.state(), State::Ready);
    ch.close();
    assert_eq!(ch.state(), State::Shutdown);
    assert_eq!(
        ch.unary(method::UNARY, &req(b"d", 0), CallOptions::default())
            .await
            .unwrap_err()
            .code,
        Code::UNAVAILABLE
    );
}
