//! The gRPC server over real h2mux connections, spoken to with h2mux's HTTP client and the
//! gRPC framing by hand: every status path the spec defines.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use h2mux::{Body, Client, Config, Server};
use h2mux_rpc::compression::Encoding;
use h2mux_rpc::echo::{method, EchoReply, EchoRequest};
use h2mux_rpc::message::{self, MessageDecoder};
use h2mux_rpc::server::{echo_service, RpcServer};
use h2mux_rpc::{Code, Status};
use http::{HeaderMap, Request};

/// Which server path a test runs against: HTTP routing (`RpcServer::handle` behind
/// `h2mux::Server`, as `h2mux serve` does) or gRPC straight on h2mux streams
/// (`RpcServer::serve`).
#[derive(Clone, Copy, Debug)]
enum Path {
    Http,
    Direct,
}

/// Serves `rpc` on a fresh port the `path` way; returns the address.
async fn serve_on(path: Path, rpc: RpcServer) -> String {
    match path {
        Path::Http => {
            let server = Server::bind("127.0.0.1:0", Config::default())
                .await
                .unwrap();
            let addr = server.local_addr().unwrap().to_string();
            let rpc = std::sync::Arc::new(rpc);
            tokio::spawn(server.serve(move |req| {
                let rpc = rpc.clone();
                async move { rpc.handle(req).await }
            }));
            addr
        }
        Path::Direct => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap().to_string();
            tokio::spawn(rpc.serve(listener, Config::default()));
            addr
        }
    }
}

async fn start(path: Path, rpc: RpcServer) -> Client {
    Client::connect(&serve_on(path, rpc).await).await.unwrap()
}

/// Every test below runs against both server paths.
macro_rules! on_both_paths {
    ($($name:ident),* $(,)?) => {
        mod http_path {
            $(#[tokio::test]
            async fn $name() {
                super::$name(super::Path::Http).await
            })*
        }
        mod direct_path {
            $(#[tokio::test]
            async fn $name() {
                super::$name(super::Path::Direct).await
            })*
        }
    };
}

on_both_paths!(
    unary_and_server_streaming_echo,
    client_streaming_and_bidi,
    unknown_method_is_unimplemented_as_trailers_only,
    requested_failure_status_and_message_arrive,
    the_deadline_is_enforced_by_the_server,
    an_oversized_message_is_resource_exhausted,
    a_panicking_handler_is_internal_and_the_server_survives,
    an_auth_interceptor_refuses_calls_without_the_token,
    interceptors_run_in_order_and_can_add_metadata,
    the_health_service_answers_check,
    a_streaming_handler_delivers_each_message_before_it_ends,
    a_streaming_handler_that_panics_or_overruns_ends_with_a_status_after_its_messages,
    a_thousand_streamed_replies_arrive_in_order_through_the_bounded_outbox,
    a_client_that_goes_away_ends_the_streaming_handler,
);

fn framed(msgs: &[Bytes]) -> Bytes {
    let mut b = BytesMut::new();
    for m in msgs {
        message::encode(m, Encoding::Identity, &mut b);
    }
    b.freeze()
}

fn echo_req(payload: &'static [u8], repeat: u32) -> Bytes {
    let mut b = BytesMut::new();
    EchoRequest {
        payload: Bytes::from_static(payload),
        repeat,
    }
    .encode(&mut b);
    b.freeze()
}

/// Sends one call; returns the reply messages and the final status (from trailers, or from
/// the headers of a trailers-only response).
async fn call(
    c: &Client,
    path: &str,
    extra: &[(&str, &str)],
    msgs: &[Bytes],
) -> (Vec<Bytes>, Status) {
    let mut req = Request::post(path)
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let resp = c
        .send(req.body(Body::from(framed(msgs))).unwrap())
        .await
        .unwrap();
    let head = resp.headers().clone();
    let mut body = resp.into_body();
    let mut buf = BytesMut::new();
    while let Some(chunk) = body.data().await {
        buf.extend_from_slice(&chunk.unwrap());
    }
    let mut dec = MessageDecoder::new(1 << 20, None);
    let mut out = Vec::new();
    while let Some(m) = dec.decode(&mut buf).unwrap() {
        out.push(m);
    }
    let t = body.trailers().cloned().unwrap_or_default();
    let source: &HeaderMap = if t.contains_key("grpc-status") {
        &t
    } else {
        &head
    };
    let status = Status::from_trailers(
        source.get("grpc-status").map(|v| v.as_bytes()),
        source.get("grpc-message").map(|v| v.as_bytes()),
    );
    (out, status)
}

async fn unary_and_server_streaming_echo(path: Path) {
    let c = start(path, echo_service()).await;
    let (out, st) = call(&c, method::UNARY, &[], &[echo_req(b"hi", 0)]).await;
    assert_eq!(st.code, Code::OK, "{st}");
    assert_eq!(
        EchoReply::decode(out[0].clone()).unwrap().payload,
        Bytes::from_static(b"hi")
    );
    let (out, st) = call(&c, method::SERVER_STREAM, &[], &[echo_req(b"s", 3)]).await;
    assert_eq!(st.code, Code::OK);
    let idx: Vec<u32> = out
        .into_iter()
        .map(|m| EchoReply::decode(m).unwrap().index)
        .collect();
    assert_eq!(idx, [0, 1, 2]);
}

async fn client_streaming_and_bidi(path: Path) {
    let c = start(path, echo_service()).await;
    let (out, st) = call(
        &c,
        method::CLIENT_STREAM,
        &[],
        &[echo_req(b"ab", 0), echo_req(b"cd", 0)],
    )
    .await;
    assert_eq!(st.code, Code::OK);
    assert_eq!(
        EchoReply::decode(out[0].clone()).unwrap().payload,
        Bytes::from_static(b"abcd")
    );
    let (out, _) = call(
        &c,
        method::BIDI,
        &[],
        &[echo_req(b"x", 0), echo_req(b"y", 0)],
    )
    .await;
    let got: Vec<(Bytes, u32)> = out
        .into_iter()
        .map(|m| EchoReply::decode(m).unwrap())
        .map(|r| (r.payload, r.index))
        .collect();
    assert_eq!(
        got,
        [(Bytes::from_static(b"x"), 0), (Bytes::from_static(b"y"), 1)]
    );
}

async fn unknown_method_is_unimplemented_as_trailers_only(path: Path) {
    let c = start(path, echo_service()).await;
    let (out, st) = call(&c, "/h2mux.echo.v1.Echo/Nope", &[], &[]).await;
    assert!(out.is_empty());
    assert_eq!(st.code, Code::UNIMPLEMENTED);
}

async fn requested_failure_status_and_message_arrive(path: Path) {
    let c = start(path, echo_service()).await;
    let (_, st) = call(
        &c,
        method::UNARY,
        &[("x-h2mux-fail", "PERMISSION_DENIED")],
        &[echo_req(b"x", 0)],
    )
    .await;
    assert_eq!(st.code, Code::PERMISSION_DENIED);
    assert_eq!(st.message, "failure requested by the client");
}

async fn the_deadline_is_enforced_by_the_server(path: Path) {
    let c = start(path, echo_service()).await;
    let started = std::time::Instant::now();
    let (_, st) = call(
        &c,
        method::UNARY,
        &[("grpc-timeout", "100m"), ("x-h2mux-delay-ms", "5000")],
        &[echo_req(b"x", 0)],
    )
    .await;
    assert_eq!(st.code, Code::DEADLINE_EXCEEDED);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the server did not cut the call short"
    );
}

async fn an_oversized_message_is_resource_exhausted(path: Path) {
    let c = start(path, echo_service().max_receive_message_size(1024)).await;
    let big = Bytes::from(vec![1u8; 4096]);
    let (_, st) = call(&c, method::CLIENT_STREAM, &[], &[big]).await;
    assert_eq!(st.code, Code::RESOURCE_EXHAUSTED, "{st}");
}

async fn a_panicking_handler_is_internal_and_the_server_survives(path: Path) {
    let rpc = RpcServer::new()
        .route("/t.T/Panic", |_call| async move { panic!("on purpose") })
        .route("/t.T/Ok", |mut call: h2mux_rpc::server::Call| async move {
            call.send(b"ok").await
        });
    let c = start(path, rpc).await;
    let (_, st) = call(&c, "/t.T/Panic", &[], &[]).await;
    assert_eq!(st.code, Code::INTERNAL);
    let (out, st) = call(&c, "/t.T/Ok", &[], &[]).await;
    assert_eq!((st.code, &out[0][..]), (Code::OK, &b"ok"[..]));
}

async fn an_auth_interceptor_refuses_calls_without_the_token(path: Path) {
    use h2mux_rpc::health::CHECK;
    use h2mux_rpc::server::bearer_auth;
    let c = start(
        path,
        echo_service().intercept(bearer_auth("s3cret", &[CHECK])),
    )
    .await;
    for bad in [
        None,
        Some("Bearer wrong"),
        Some("Bearer s3cret2"),
        Some("s3cret"),
    ] {
        let extra: Vec<(&str, &str)> = bad.iter().map(|v| ("authorization", *v)).collect();
        let (out, st) = call(&c, method::UNARY, &extra, &[echo_req(b"x", 0)]).await;
        assert!(out.is_empty(), "the handler must not run for {bad:?}");
        assert_eq!(st.code, Code::UNAUTHENTICATED, "{bad:?}: {st}");
    }
    let (out, st) = call(
        &c,
        method::UNARY,
        &[("authorization", "Bearer s3cret")],
        &[echo_req(b"in", 0)],
    )
    .await;
    assert_eq!(st.code, Code::OK, "{st}");
    assert_eq!(
        EchoReply::decode(out[0].clone()).unwrap().payload,
        Bytes::from_static(b"in")
    );
    // Open methods need no token; unknown ones are refused before the lookup.
    let (out, st) = call(&c, CHECK, &[], &[Bytes::new()]).await;
    assert_eq!((st.code, &out[0][..]), (Code::OK, &b"\x08\x01"[..]));
    let (_, st) = call(&c, "/h2mux.echo.v1.Echo/Nope", &[], &[]).await;
    assert_eq!(st.code, Code::UNAUTHENTICATED);
}

async fn interceptors_run_in_order_and_can_add_metadata(path: Path) {
    let rpc = RpcServer::new()
        .intercept(|path, md| {
            md.insert("x-path", path)
                .map_err(|e| Status::new(Code::INTERNAL, e.to_string()))
        })
        .intercept(|_, md| match md.get_str("x-path") {
            Some(_) => Ok(()),
            None => Err(Status::new(
                Code::INTERNAL,
                "the first interceptor did not run",
            )),
        })
        .route("/t.T/Who", |mut call: h2mux_rpc::server::Call| async move {
            let p = call.metadata().get_str("x-path").unwrap_or("").to_string();
            call.send(p.as_bytes()).await
        });
    let c = start(path, rpc).await;
    let (out, st) = call(&c, "/t.T/Who", &[], &[]).await;
    assert_eq!(st.code, Code::OK, "{st}");
    assert_eq!(&out[0][..], b"/t.T/Who");
}

async fn the_health_service_answers_check(path: Path) {
    use h2mux_rpc::health::{HealthCheckRequest, HealthCheckResponse, ServingStatus, CHECK};
    let c = start(path, echo_service()).await;
    for service in ["", "h2mux.echo.v1.Echo", "grpc.health.v1.Health"] {
        let mut b = BytesMut::new();
        HealthCheckRequest {
            service: service.to_string(),
        }
        .encode(&mut b);
        let (out, st) = call(&c, CHECK, &[], &[b.freeze()]).await;
        assert_eq!(st.code, Code::OK, "{service:?}: {st}");
        assert_eq!(
            HealthCheckResponse::decode(out[0].clone()).unwrap().status,
            ServingStatus::Serving
        );
    }
    let mut b = BytesMut::new();
    HealthCheckRequest {
        service: "no.Such".to_string(),
    }
    .encode(&mut b);
    let (_, st) = call(&c, CHECK, &[], &[b.freeze()]).await;
    assert_eq!(st.code, Code::NOT_FOUND);
}

/// A channel to an `RpcServer` on a fresh port.
async fn channel_to(path: Path, rpc: RpcServer) -> h2mux_rpc::channel::Channel {
    use h2mux_rpc::channel::{Channel, ChannelConfig};
    Channel::new(ChannelConfig::new(&serve_on(path, rpc).await))
}

const GUARD: Duration = Duration::from_secs(10);

async fn a_streaming_handler_delivers_each_message_before_it_ends(path: Path) {
    use h2mux_rpc::channel::CallOptions;
    use std::sync::Mutex;
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let go = std::sync::Arc::new(Mutex::new(Some(go_rx)));
    let rpc = RpcServer::new().route("/t.T/Two", move |mut call: h2mux_rpc::server::Call| {
        let go = go.lock().unwrap().take();
        async move {
            call.send(b"first").await?;
            // The second message waits until the client has seen the first.
            if let Some(go) = go {
                let _ = go.await;
            }
            call.send(b"second").await
        }
    });
    let ch = channel_to(path, rpc).await;
    let mut call = ch.start("/t.T/Two", CallOptions::default()).await.unwrap();
    call.finish().await.unwrap();
    let first = tokio::time::timeout(GUARD, call.recv())
        .await
        .expect("the first message was held back");
    assert_eq!(&first.unwrap().unwrap()[..], b"first");
    go_tx.send(()).unwrap();
    assert_eq!(&call.recv().await.unwrap().unwrap()[..], b"second");
    assert!(call.recv().await.is_none());
    assert_eq!(call.status().unwrap().code, Code::OK);
}

async fn a_streaming_handler_that_panics_or_overruns_ends_with_a_status_after_its_messages(
    path: Path,
) {
    use h2mux_rpc::channel::CallOptions;
    let rpc = RpcServer::new()
        .route(
            "/t.T/PanicLater",
            |mut call: h2mux_rpc::server::Call| async move {
                call.send(b"before").await?;
                tokio::time::sleep(Duration::from_millis(20)).await;
                panic!("on purpose, after a message");
            },
        )
        .route(
            "/t.T/Slow",
            |mut call: h2mux_rpc::server::Call| async move {
                call.send(b"early").await?;
                tokio::time::sleep(Duration::from_secs(30)).await;
                call.send(b"never").await
            },
        );
    let ch = channel_to(path, rpc.clone()).await;
    let mut streaming = ch
        .start("/t.T/PanicLater", CallOptions::default())
        .await
        .unwrap();
    streaming.finish().await.unwrap();
    let m = tokio::time::timeout(GUARD, streaming.recv()).await.unwrap();
    assert_eq!(&m.unwrap().unwrap()[..], b"before");
    let end = tokio::time::timeout(GUARD, streaming.recv()).await.unwrap();
    assert_eq!(end.unwrap().unwrap_err().code, Code::INTERNAL);
    // grpc-timeout alone (no client-side deadline): the server ends the call after the
    // message it had sent.
    let c = start(path, rpc).await;
    let started = std::time::Instant::now();
    let (out, st) = call(&c, "/t.T/Slow", &[("grpc-timeout", "300m")], &[]).await;
    assert_eq!(st.code, Code::DEADLINE_EXCEEDED, "{st}");
    assert_eq!(out, [Bytes::from_static(b"early")]);
    assert!(started.elapsed() < Duration::from_secs(10));
    // The server is still there.
    let r = ch
        .unary(method::UNARY, b"", CallOptions::default())
        .await
        .unwrap_err();
    assert_eq!(r.code, Code::UNIMPLEMENTED);
}

async fn a_thousand_streamed_replies_arrive_in_order_through_the_bounded_outbox(path: Path) {
    use h2mux_rpc::channel::CallOptions;
    let ch = channel_to(path, echo_service()).await;
    let mut call = ch
        .server_streaming(
            method::SERVER_STREAM,
            &echo_req(b"r", 1000),
            CallOptions::default(),
        )
        .await
        .unwrap();
    let mut n = 0u32;
    while let Some(m) = tokio::time::timeout(GUARD, call.recv()).await.unwrap() {
        assert_eq!(EchoReply::decode(m.unwrap()).unwrap().index, n);
        n += 1;
        if n.is_multiple_of(100) {
            tokio::time::sleep(Duration::from_millis(5)).await; // a slow reader
        }
    }
    assert_eq!(n, 1000);
}

/// Reports when dropped (the handler future holding it was dropped: cancelled).
struct DropReport(tokio::sync::mpsc::UnboundedSender<&'static str>);

impl Drop for DropReport {
    fn drop(&mut self) {
        let _ = self.0.send("handler dropped");
    }
}

async fn a_client_that_goes_away_ends_the_streaming_handler(path: Path) {
    use h2mux_rpc::channel::CallOptions;
    let (tx, mut ended) = tokio::sync::mpsc::unbounded_channel::<&'static str>();
    let rpc = RpcServer::new().route("/t.T/Forever", move |mut call: h2mux_rpc::server::Call| {
        let report = DropReport(tx.clone());
        async move {
            let _report = report;
            let big = vec![0u8; 64 * 1024];
            loop {
                call.send(&big).await?;
            }
        }
    });
    let ch = channel_to(path, rpc).await;
    let mut call = ch
        .start("/t.T/Forever", CallOptions::default())
        .await
        .unwrap();
    call.finish().await.unwrap();
    tokio::time::timeout(GUARD, call.recv())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    drop(call); // RST_STREAM CANCEL
    let what = tokio::time::timeout(GUARD, ended.recv())
        .await
        .expect("the handler kept running after the client went away");
    assert_eq!(what, Some("handler dropped"));
}
