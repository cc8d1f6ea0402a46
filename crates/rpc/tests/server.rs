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

async fn start(rpc: RpcServer) -> Client {
    let server = Server::bind("127.0.0.1:0", Config::default())
        .await
        .unwrap();
    let addr = server.local_addr().unwrap().to_string();
    let rpc = std::sync::Arc::new(rpc);
    tokio::spawn(server.serve(move |req| {
        let rpc = rpc.clone();
        async move { rpc.handle(req).await }
    }));
    Client::connect(&addr).await.unwrap()
}

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

#[tokio::test]
async fn unary_and_server_streaming_echo() {
    let c = start(echo_service()).await;
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

#[tokio::test]
async fn client_streaming_and_bidi() {
    let c = start(echo_service()).await;
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

#[tokio::test]
async fn unknown_method_is_unimplemented_as_trailers_only() {
    let c = start(echo_service()).await;
    let (out, st) = call(&c, "/h2mux.echo.v1.Echo/Nope", &[], &[]).await;
    assert!(out.is_empty());
    assert_eq!(st.code, Code::UNIMPLEMENTED);
}

#[tokio::test]
async fn requested_failure_status_and_message_arrive() {
    let c = start(echo_service()).await;
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

#[tokio::test]
async fn the_deadline_is_enforced_by_the_server() {
    let c = start(echo_service()).await;
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

#[tokio::test]
async fn an_oversized_message_is_resource_exhausted() {
    let c = start(echo_service().max_receive_message_size(1024)).await;
    let big = Bytes::from(vec![1u8; 4096]);
    let (_, st) = call(&c, method::CLIENT_STREAM, &[], &[big]).await;
    assert_eq!(st.code, Code::RESOURCE_EXHAUSTED, "{st}");
}

#[tokio::test]
async fn a_panicking_handler_is_internal_and_the_server_survives() {
    let rpc = RpcServer::new()
        .route("/t.T/Panic", |_call| async move { panic!("on purpose") })
        .route("/t.T/Ok", |mut call: h2mux_rpc::server::Call| async move {
            call.send(b"ok").await
        });
    let c = start(rpc).await;
    let (_, st) = call(&c, "/t.T/Panic", &[], &[]).await;
    assert_eq!(st.code, Code::INTERNAL);
    let (out, st) = call(&c, "/t.T/Ok", &[], &[]).await;
    assert_eq!((st.code, &out[0][..]), (Code::OK, &b"ok"[..]));
}

#[tokio::test]
async fn an_auth_interceptor_refuses_calls_without_the_token() {
    use h2mux_rpc::health::CHECK;
    use h2mux_rpc::server::bearer_auth;
    let c = start(echo_service().intercept(bearer_auth("s3cret", &[CHECK]))).await;
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

#[tokio::test]
async fn interceptors_run_in_order_and_can_add_metadata() {
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
    let c = start(rpc).await;
    let (out, st) = call(&c, "/t.T/Who", &[], &[]).await;
    assert_eq!(st.code, Code::OK, "{st}");
    assert_eq!(&out[0][..], b"/t.T/Who");
}

#[tokio::test]
async fn the_health_service_answers_check() {
    use h2mux_rpc::health::{HealthCheckRequest, HealthCheckResponse, ServingStatus, CHECK};
    let c = start(echo_service()).await;
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
