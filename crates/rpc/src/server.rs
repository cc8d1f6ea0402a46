//! A gRPC-compatible server on h2mux's HTTP server (the gRPC over HTTP/2 spec, server side).
//!
//! Methods are registered by full path (`/pkg.Service/Method`). Every call kind is one
//! shape: a handler gets a [`Call`] — request metadata, the request messages as they arrive,
//! and a way to send response metadata and messages — and returns `Ok(())` or a [`Status`].
//! Unary, server-, client- and bidi-streaming are ways of using it.
//!
//! What the server does for every call:
//! * interceptors ([`RpcServer::intercept`]) see every call's path and metadata first and
//!   may refuse it with a status (e.g. [`bearer_auth`]: UNAUTHENTICATED without the token);
//! * `content-type` must be `application/grpc[+…]` (otherwise HTTP 415);
//! * unknown method → trailers-only `UNIMPLEMENTED`; unsupported `grpc-encoding` →
//!   `UNIMPLEMENTED`;
//! * `grpc-timeout` is enforced: when it passes, the call ends with `DEADLINE_EXCEEDED`;
//! * messages larger than the receive limit → `RESOURCE_EXHAUSTED`;
//! * a panicking handler → `INTERNAL`, and the server goes on;
//! * responses are gzip-compressed when the request was and the client accepts gzip;
//! * an error before any message is sent as a trailers-only response.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use h2mux::Body;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use tokio::sync::{mpsc, oneshot};

use crate::compression::{self, Encoding};
use crate::message::{self, MessageDecoder, DEFAULT_MAX_RECEIVE_SIZE};
use crate::metadata::Metadata;
use crate::status::{Code, Status};

type BoxFuture = Pin<Box<dyn Future<Output = Result<(), Status>> + Send>>;
type Handler = Arc<dyn Fn(Call) -> BoxFuture + Send + Sync>;

/// Sees a call's method path and request metadata before its handler runs; may add
/// metadata for the handler, or refuse the call with a status (sent trailers-only, the
/// handler never runs).
pub type Interceptor = Arc<dyn Fn(&str, &mut Metadata) -> Result<(), Status> + Send + Sync>;

/// One call, as its handler sees it.
pub struct Call {
    metadata: Metadata,
    timeout: Option<Duration>,
    body: Body,
    buf: BytesMut,
    decoder: MessageDecoder,
    out: Out,
}

struct Out {
    head: Option<oneshot::Sender<Metadata>>,
    tx: mpsc::Sender<Bytes>,
    encoding: Encoding,
}

impl Call {
    /// The request's custom metadata (with whatever interceptors added).
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The client's `grpc-timeout`, if it sent one (the server enforces it: past it the
    /// call ends with DEADLINE_EXCEEDED).
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The next request message; `None` when the client has finished sending.
    pub async fn recv(&mut self) -> Option<Result<Bytes, Status>> {
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(m)) => return Some(Ok(m)),
                Ok(None) => {}
                Err(s) => return Some(Err(s)),
            }
            match self.body.data().await {
                Some(Ok(chunk)) => self.buf.extend_from_slice(&chunk),
                Some(Err(e)) => return Some(Err(Status::new(Code::CANCELLED, e.to_string()))),
                None => {
                    return match self.decoder.finish(&self.buf) {
                        Ok(()) => None,
                        Err(s) => Some(Err(s)),
                    }
                }
            }
        }
    }

    /// Sends the response headers with this initial metadata now (otherwise they go with the
    /// first message, or as a trailers-only response).
    pub fn send_metadata(&mut self, md: Metadata) {
        if let Some(h) = self.out.head.take() {
            let _ = h.send(md);
        }
    }

    /// Sends one response message.
    pub async fn send(&mut self, msg: &[u8]) -> Result<(), Status> {
        self.send_metadata(Metadata::new());
        let mut b = BytesMut::new();
        message::encode(msg, self.out.encoding, &mut b);
        self.out
            .tx
            .send(b.freeze())
            .await
            .map_err(|_| Status::new(Code::CANCELLED, "the client went away"))
    }
}

/// Registered methods and limits.
#[derive(Clone, Default)]
pub struct RpcServer {
    routes: HashMap<String, Handler>,
    interceptors: Vec<Interceptor>,
    max_receive: Option<usize>,
}

impl RpcServer {
    /// No methods yet.
    pub fn new() -> RpcServer {
        RpcServer::default()
    }

    /// Largest accepted request message (default 4 MiB).
    pub fn max_receive_message_size(mut self, n: usize) -> RpcServer {
        self.max_receive = Some(n);
        self
    }

    /// Adds an interceptor; they run in the order added, before the method is looked up
    /// (so a refused caller learns nothing about which methods exist).
    pub fn intercept<F>(mut self, f: F) -> RpcServer
    where
        F: Fn(&str, &mut Metadata) -> Result<(), Status> + Send + Sync + 'static,
    {
        self.interceptors.push(Arc::new(f));
        self
    }

    /// Registers a handler for `path` (`/pkg.Service/Method`).
    pub fn route<F, Fut>(mut self, path: &str, f: F) -> RpcServer
    where
        F: Fn(Call) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Status>> + Send + 'static,
    {
        self.routes
            .insert(path.to_string(), Arc::new(move |c| Box::pin(f(c))));
        self
    }

    /// Whether a request is gRPC (by content-type), for routing on a shared port.
    pub fn is_grpc(req: &Request<Body>) -> bool {
        req.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct == crate::CONTENT_TYPE || ct.starts_with("application/grpc+"))
    }

    /// Serves one HTTP request as a gRPC call.
    pub async fn handle(&self, req: Request<Body>) -> Response<Body> {
        if !RpcServer::is_grpc(&req) {
            let mut r = Response::new(Body::from(
                "gRPC requests need content-type: application/grpc\n",
            ));
            *r.status_mut() = StatusCode::UNSUPPORTED_MEDIA_TYPE;
            return r;
        }
        let headers = req.headers().clone();
        let mut metadata = match Metadata::from_fields(
            headers
                .iter()
                .map(|(k, v)| (k.as_str().as_bytes(), v.as_bytes())),
        ) {
            Ok(m) => m,
            Err(e) => return trailers_only(&Status::new(Code::INTERNAL, e.to_string())),
        };
        for check in &self.interceptors {
            if let Err(s) = check(req.uri().path(), &mut metadata) {
                return trailers_only(&s);
            }
        }
        let Some(handler) = self.routes.get(req.uri().path()).cloned() else {
            return trailers_only(&Status::new(
                Code::UNIMPLEMENTED,
                format!("method {} is not implemented", req.uri().path()),
            ));
        };
        let encoding = match headers.get("grpc-encoding") {
            None => None,
            Some(v) => match Encoding::parse(v.as_bytes()) {
                Ok(e) => Some(e),
                Err(s) => return trailers_only(&s),
            },
        };
        let reply_encoding = match (encoding, headers.get("grpc-accept-encoding")) {
            (Some(Encoding::Gzip), Some(acc))
                if compression::accepts(acc.as_bytes(), Encoding::Gzip) =>
            {
                Encoding::Gzip
            }
            _ => Encoding::Identity,
        };
        let deadline = headers
            .get("grpc-timeout")
            .and_then(|v| crate::timeout::parse(v.as_bytes()));
        let (head_tx, head_rx) = oneshot::channel();
        let (msg_tx, msg_rx) = mpsc::channel::<Bytes>(8);
        let call = Call {
            metadata,
            timeout: deadline,
            body: req.into_body(),
            buf: BytesMut::new(),
            decoder: MessageDecoder::new(
                self.max_receive.unwrap_or(DEFAULT_MAX_RECEIVE_SIZE),
                encoding,
            ),
            out: Out {
                head: Some(head_tx),
                tx: msg_tx,
                encoding: reply_encoding,
            },
        };
        // The handler runs on its own task: a panic becomes INTERNAL.
        let task = tokio::spawn(handler(call));
        let abort = task.abort_handle();
        let outcome = async move {
            let result = match deadline {
                Some(d) => match tokio::time::timeout(d, task).await {
                    Ok(r) => r,
                    Err(_) => {
                        // Stop the handler; its Call (and so the response stream) goes with it.
                        abort.abort();
                        return Status::new(
                            Code::DEADLINE_EXCEEDED,
                            format!("deadline of {d:?} exceeded"),
                        );
                    }
                },
                None => task.await,
            };
            match result {
                Ok(Ok(())) => Status::ok(),
                Ok(Err(s)) => s,
                Err(_) => Status::new(Code::INTERNAL, "the handler panicked"),
            }
        };
        respond(head_rx, msg_rx, outcome, reply_encoding).await
    }
}

/// Waits for the handler's first message or initial metadata (→ normal response whose body
/// streams the messages and ends with status trailers) or its end (→ trailers-only).
async fn respond(
    head_rx: oneshot::Receiver<Metadata>,
    mut msg_rx: mpsc::Receiver<Bytes>,
    outcome: impl Future<Output = Status> + Send + 'static,
    encoding: Encoding,
) -> Response<Body> {
    let mut outcome = tokio::spawn(outcome);
    let initial = tokio::select! {
        biased;
        md = head_rx => md.ok(),
        st = &mut outcome => {
            // Ended (or timed out) before sending anything.
            return trailers_only(&st.unwrap_or_else(|_| Status::new(Code::INTERNAL, "call task failed")));
        }
    };
    let Some(initial) = initial else {
        // The handler ended without sending anything: head_rx's sender is dropped.
        let status = outcome
            .await
            .unwrap_or_else(|_| Status::new(Code::INTERNAL, "call task failed"));
        return trailers_only(&status);
    };
    let (tx, body) = Body::channel(4);
    tokio::spawn(async move {
        let forward = async {
            while let Some(m) = msg_rx.recv().await {
                if tx.send(m).await.is_err() {
                    return false;
                }
            }
            true
        };
        let (ok, status) = tokio::join!(forward, outcome);
        if ok {
            let status = status.unwrap_or_else(|_| Status::new(Code::INTERNAL, "call task failed"));
            let _ = tx.send_trailers(status_headers(&status)).await;
        }
    });
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(
        "content-type",
        HeaderValue::from_static(crate::CONTENT_TYPE),
    );
    h.insert(
        "grpc-accept-encoding",
        HeaderValue::from_static(compression::ACCEPT_ENCODING),
    );
    if encoding == Encoding::Gzip {
        h.insert("grpc-encoding", HeaderValue::from_static("gzip"));
    }
    add_metadata(h, &initial);
    r
}

fn add_metadata(h: &mut HeaderMap, md: &Metadata) {
    for (k, v) in md.to_fields() {
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_bytes(&v),
        ) {
            h.append(n, v);
        }
    }
}

fn status_headers(status: &Status) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&status.status_value()) {
        h.insert("grpc-status", v);
    }
    if let Some(m) = status
        .message_value()
        .and_then(|m| HeaderValue::from_str(&m).ok())
    {
        h.insert("grpc-message", m);
    }
    h
}

/// An interceptor admitting only calls that carry `authorization: Bearer <token>`
/// (UNAUTHENTICATED otherwise); methods listed in `open` (e.g. [`crate::health::CHECK`]) are
/// let through without it. The token is compared in constant time.
pub fn bearer_auth(
    token: &str,
    open: &[&str],
) -> impl Fn(&str, &mut Metadata) -> Result<(), Status> + Send + Sync + 'static {
    let expected = format!("Bearer {token}").into_bytes();
    let open: Vec<String> = open.iter().map(|s| s.to_string()).collect();
    move |path, md| {
        if open.iter().any(|p| p == path) {
            return Ok(());
        }
        let given = md.get("authorization").unwrap_or_default();
        let same = given.len() == expected.len()
            && given
                .iter()
                .zip(&expected)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if same {
            Ok(())
        } else {
            Err(Status::new(
                Code::UNAUTHENTICATED,
                "missing or wrong bearer token (authorization metadata)",
            ))
        }
    }
}

/// A response made of headers only, carrying the status (the spec's Trailers-Only).
pub fn trailers_only(status: &Status) -> Response<Body> {
    let mut r = Response::new(Body::empty());
    let h = r.headers_mut();
    h.insert(
        "content-type",
        HeaderValue::from_static(crate::CONTENT_TYPE),
    );
    h.extend(status_headers(status));
    r
}

/// The built-in echo service (`proto/echo.proto`) and the standard health service, with the
/// test conventions of tests/interop/grpc/echo_peer.py: request metadata whose key starts
/// with `x-` is echoed back as initial metadata, `x-h2mux-fail: CODE_NAME` fails the call
/// with that status, `x-h2mux-delay-ms: N` delays the answer.
pub fn echo_service() -> RpcServer {
    use crate::echo::{method, EchoReply, EchoRequest};
    fn decode(m: Bytes) -> Result<EchoRequest, Status> {
        EchoRequest::decode(m)
            .map_err(|e| Status::new(Code::INTERNAL, format!("bad EchoRequest: {e}")))
    }
    fn reply(payload: Bytes, index: u32) -> Bytes {
        let mut b = BytesMut::new();
        EchoReply { payload, index }.encode(&mut b);
        b.freeze()
    }
    async fn prologue(call: &mut Call) -> Result<(), Status> {
        if let Some(ms) = call
            .metadata()
            .get_str("x-h2mux-delay-ms")
            .and_then(|v| v.parse::<u64>().ok())
        {
            tokio::time::sleep(Duration::from_millis(ms.min(60_000))).await;
        }
        if let Some(name) = call.metadata().get_str("x-h2mux-fail") {
            let code = (0..=16)
                .map(Code)
                .find(|c| c.name() == Some(name))
                .unwrap_or(Code::UNKNOWN);
            return Err(Status::new(code, "failure requested by the client"));
        }
        let mut echoed = Metadata::new();
        for (k, v) in call.metadata().iter() {
            if k.starts_with("x-") && k != "x-h2mux-fail" && k != "x-h2mux-delay-ms" {
                let _ = if k.ends_with("-bin") {
                    echoed.insert_bin(k, v)
                } else {
                    echoed.insert(k, &String::from_utf8_lossy(v))
                };
            }
        }
        call.send_metadata(echoed);
        Ok(())
    }
    RpcServer::new()
        .route(method::UNARY, |mut call: Call| async move {
            let req = decode(
                call.recv()
                    .await
                    .ok_or_else(|| Status::new(Code::INTERNAL, "no request message"))??,
            )?;
            prologue(&mut call).await?;
            call.send(&reply(req.payload, 0)).await
        })
        .route(method::SERVER_STREAM, |mut call: Call| async move {
            let req = decode(
                call.recv()
                    .await
                    .ok_or_else(|| Status::new(Code::INTERNAL, "no request message"))??,
            )?;
            prologue(&mut call).await?;
            for i in 0..req.repeat {
                call.send(&reply(req.payload.clone(), i)).await?;
            }
            Ok(())
        })
        .route(method::CLIENT_STREAM, |mut call: Call| async move {
            prologue(&mut call).await?;
            let mut all = BytesMut::new();
            while let Some(m) = call.recv().await {
                all.extend_from_slice(&decode(m?)?.payload);
            }
            call.send(&reply(all.freeze(), 0)).await
        })
        .route(method::BIDI, |mut call: Call| async move {
            prologue(&mut call).await?;
            let mut i = 0;
            while let Some(m) = call.recv().await {
                call.send(&reply(decode(m?)?.payload, i)).await?;
                i += 1;
            }
            Ok(())
        })
        .route(crate::health::CHECK, |mut call: Call| async move {
            use crate::health::{HealthCheckRequest, HealthCheckResponse, ServingStatus};
            let m = call
                .recv()
                .await
                .ok_or_else(|| Status::new(Code::INTERNAL, "no request message"))??;
            let req = HealthCheckRequest::decode(m)
                .map_err(|e| Status::new(Code::INTERNAL, e.to_string()))?;
            let known = ["", "h2mux.echo.v1.Echo", "grpc.health.v1.Health"];
            if !known.contains(&req.service.as_str()) {
                return Err(Status::new(
                    Code::NOT_FOUND,
                    format!("unknown service {:?}", req.service),
                ));
            }
            let mut b = BytesMut::new();
            HealthCheckResponse {
                status: ServingStatus::Serving,
            }
            .encode(&mut b);
            call.send(&b).await
        })
}
