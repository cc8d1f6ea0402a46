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
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use h2mux::conn::{StreamEvent, StreamHandle, StreamReceiver, StreamSender};
use h2mux::proto::{HeaderField, Role};
use h2mux::wire::ErrorCode;
use h2mux::{Body, BodySender};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};

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
    body: Source,
    buf: BytesMut,
    decoder: MessageDecoder,
    out: Out,
}

/// Where request messages come from: an HTTP body (behind [`h2mux::Server`]) or the stream
/// itself ([`RpcServer::serve_connection`]).
enum Source {
    Body(Body),
    Stream(StreamReceiver),
    Ended,
}

impl Source {
    /// The next chunk of request DATA; `None` at the end of the request.
    async fn data(&mut self) -> Option<Result<Bytes, String>> {
        loop {
            let ev = match self {
                Source::Ended => return None,
                Source::Body(b) => return b.data().await.map(|r| r.map_err(|e| e.to_string())),
                Source::Stream(rx) => rx.recv().await,
            };
            match ev {
                Some(StreamEvent::Data(d, end)) => {
                    if end {
                        *self = Source::Ended;
                    }
                    if !d.is_empty() {
                        return Some(Ok(d));
                    }
                }
                Some(StreamEvent::Headers(..)) => {}
                Some(StreamEvent::Trailers(_)) | None => *self = Source::Ended,
                Some(StreamEvent::Reset(cause)) => {
                    *self = Source::Ended;
                    return Some(Err(format!("stream reset: {cause:?}")));
                }
                Some(StreamEvent::ConnectionLost(e)) => {
                    *self = Source::Ended;
                    return Some(Err(e.to_string()));
                }
            }
        }
    }
}

struct Out {
    outbox: Arc<Outbox>,
    encoding: Encoding,
}

impl Drop for Out {
    fn drop(&mut self) {
        // The handler is done with its Call: the reader sees the end after what is queued.
        self.outbox.with(|o| {
            o.writer_done = true;
            if let Some(w) = o.reader.take() {
                w.wake();
            }
        });
    }
}

/// Response messages a handler queued and not yet written, with its initial metadata: one
/// small shared allocation per call instead of a channel pair. Bounded: a handler that
/// runs ahead of a slow client waits in `send`.
#[derive(Default)]
struct Outbox(std::sync::Mutex<OutboxState>);

#[derive(Default)]
struct OutboxState {
    /// Initial metadata, once the handler sent it (explicitly or with its first message).
    head: Option<Metadata>,
    queue: std::collections::VecDeque<Bytes>,
    /// The Call is gone: nothing more will be queued.
    writer_done: bool,
    /// The response side is gone (client away): sends fail.
    reader_gone: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

/// Messages queued before `send` waits for the writer to catch up.
const OUTBOX_CAPACITY: usize = 8;

impl Outbox {
    fn with<T>(&self, f: impl FnOnce(&mut OutboxState) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Takes every queued message now.
    fn drain(&self) -> Vec<Bytes> {
        self.with(|o| {
            if let Some(w) = o.writer.take() {
                w.wake();
            }
            o.queue.drain(..).collect()
        })
    }

    fn head_sent(&self) -> bool {
        self.with(|o| o.head.is_some())
    }

    fn take_head(&self) -> Option<Metadata> {
        self.with(|o| o.head.take())
    }

    /// The next message; `None` once the handler is done and the queue empty.
    async fn recv(&self) -> Option<Bytes> {
        std::future::poll_fn(|cx| {
            self.with(|o| {
                if let Some(m) = o.queue.pop_front() {
                    if let Some(w) = o.writer.take() {
                        w.wake();
                    }
                    return Poll::Ready(Some(m));
                }
                if o.writer_done {
                    return Poll::Ready(None);
                }
                o.reader = Some(cx.waker().clone());
                Poll::Pending
            })
        })
        .await
    }

    fn close_reader(&self) {
        self.with(|o| {
            o.reader_gone = true;
            o.queue.clear();
            if let Some(w) = o.writer.take() {
                w.wake();
            }
        });
    }
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
                Some(Err(e)) => return Some(Err(Status::new(Code::CANCELLED, e))),
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
        self.out.outbox.with(|o| {
            if o.head.is_none() {
                o.head = Some(md);
            }
        });
    }

    /// Sends one response message.
    pub async fn send(&mut self, msg: &[u8]) -> Result<(), Status> {
        let mut b = BytesMut::new();
        message::encode(msg, self.out.encoding, &mut b);
        let mut msg = Some(b.freeze());
        let outbox = &self.out.outbox;
        std::future::poll_fn(|cx| {
            outbox.with(|o| {
                if o.reader_gone {
                    return Poll::Ready(Err(Status::new(Code::CANCELLED, "the client went away")));
                }
                if o.queue.len() >= OUTBOX_CAPACITY {
                    o.writer = Some(cx.waker().clone());
                    return Poll::Pending;
                }
                if o.head.is_none() {
                    o.head = Some(Metadata::new());
                }
                if let Some(m) = msg.take() {
                    o.queue.push_back(m);
                }
                if let Some(w) = o.reader.take() {
                    w.wake();
                }
                Poll::Ready(Ok(()))
            })
        })
        .await
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

    /// Serves one HTTP request as a gRPC call (the way `h2mux serve` shares a port with
    /// HTTP).
    pub async fn handle(&self, req: Request<Body>) -> Response<Body> {
        if !RpcServer::is_grpc(&req) {
            let mut r = Response::new(Body::from(
                "gRPC requests need content-type: application/grpc\n",
            ));
            *r.status_mut() = StatusCode::UNSUPPORTED_MEDIA_TYPE;
            return r;
        }
        let (parts, body) = req.into_parts();
        let fields = || {
            parts
                .headers
                .iter()
                .map(|(k, v)| (k.as_str().as_bytes(), v.as_bytes()))
        };
        let call = match self.prepare(parts.uri.path(), fields, Source::Body(body)) {
            Ok(c) => c,
            Err(s) => return trailers_only(&s),
        };
        match call.run().await {
            Reply::TrailersOnly(s) => trailers_only(&s),
            Reply::Complete {
                initial,
                body,
                status,
                encoding,
            } => response(
                Body::from(body).with_trailers(status_headers(&status)),
                &initial,
                encoding,
            ),
            Reply::Streaming { initial, rest } => {
                let (tx, body) = Body::channel(4);
                let encoding = rest.encoding;
                tokio::spawn(rest.run(Sink::Body(tx)));
                response(body, &initial, encoding)
            }
        }
    }

    /// Serves gRPC on one connection directly on h2mux streams — no HTTP request and
    /// response types in between (for a port that carries only gRPC; the faster path).
    pub async fn serve_connection<IO>(self: Arc<Self>, io: IO, config: h2mux::Config)
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (_conn, mut incoming) = h2mux::conn::spawn(io, Role::Server, config);
        while let Some(stream) = incoming.recv().await {
            tokio::spawn(self.clone().handle_stream(stream));
        }
    }

    /// Accepts h2c connections on `listener` and serves each with
    /// [`RpcServer::serve_connection`] until the future is dropped.
    pub async fn serve(self, listener: tokio::net::TcpListener, config: h2mux::Config) {
        let rpc = Arc::new(self);
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let _ = sock.set_nodelay(true);
            tokio::spawn(rpc.clone().serve_connection(sock, config.clone()));
        }
    }

    async fn handle_stream(self: Arc<Self>, stream: StreamHandle) {
        let (tx, mut rx) = stream.split();
        let Some(StreamEvent::Headers(fields, end_stream)) = rx.recv().await else {
            return;
        };
        let find = |name: &[u8]| {
            fields
                .iter()
                .find(|f| &f.name[..] == name)
                .map(|f| &f.value[..])
        };
        let grpc = find(b"content-type").is_some_and(|ct| {
            ct == crate::CONTENT_TYPE.as_bytes() || ct.starts_with(b"application/grpc+")
        });
        if !grpc || find(b":method") != Some(&b"POST"[..]) {
            let head = vec![HeaderField::new(
                Bytes::from_static(b":status"),
                Bytes::from_static(b"415"),
            )];
            let _ = tx.send_headers(head, true).await;
            return;
        }
        let path = String::from_utf8_lossy(find(b":path").unwrap_or_default()).into_owned();
        let source = if end_stream {
            Source::Ended
        } else {
            Source::Stream(rx)
        };
        let plain = || {
            fields
                .iter()
                .filter(|f| !f.name.starts_with(b":"))
                .map(|f| (&f.name[..], &f.value[..]))
        };
        let reply = match self.prepare(&path, plain, source) {
            Ok(call) => call.run().await,
            Err(s) => Reply::TrailersOnly(s),
        };
        let sent = match reply {
            Reply::TrailersOnly(s) => {
                let mut head = response_fields(&Metadata::new(), Encoding::Identity);
                head.extend(status_fields(&s));
                tx.send_headers(head, true).await
            }
            Reply::Complete {
                initial,
                body,
                status,
                encoding,
            } => {
                send_complete(
                    &tx,
                    response_fields(&initial, encoding),
                    body,
                    status_fields(&status),
                )
                .await
            }
            Reply::Streaming { initial, rest } => {
                match tx
                    .send_headers(response_fields(&initial, rest.encoding), false)
                    .await
                {
                    Ok(()) => {
                        rest.run(Sink::Stream(tx.clone())).await;
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
        };
        if sent.is_err() {
            tx.reset(ErrorCode::CANCEL);
        }
    }

    /// Everything before the handler runs: metadata, interceptors, routing, encodings,
    /// deadline. An error is the status of a trailers-only response.
    fn prepare<'a, I>(
        &self,
        path: &str,
        fields: impl Fn() -> I,
        body: Source,
    ) -> Result<PreparedCall, Status>
    where
        I: Iterator<Item = (&'a [u8], &'a [u8])>,
    {
        let mut metadata = Metadata::from_fields(fields())
            .map_err(|e| Status::new(Code::INTERNAL, e.to_string()))?;
        for check in &self.interceptors {
            check(path, &mut metadata)?;
        }
        let handler = self.routes.get(path).cloned().ok_or_else(|| {
            Status::new(
                Code::UNIMPLEMENTED,
                format!("method {path} is not implemented"),
            )
        })?;
        let (mut encoding, mut accept, mut timeout) = (None, None, None);
        for (k, v) in fields() {
            match k {
                b"grpc-encoding" => encoding = Some(Encoding::parse(v)?),
                b"grpc-accept-encoding" => accept = Some(v),
                b"grpc-timeout" => timeout = crate::timeout::parse(v),
                _ => {}
            }
        }
        let reply_encoding = match (encoding, accept) {
            (Some(Encoding::Gzip), Some(acc)) if compression::accepts(acc, Encoding::Gzip) => {
                Encoding::Gzip
            }
            _ => Encoding::Identity,
        };
        let outbox = Arc::new(Outbox::default());
        let call = Call {
            metadata,
            timeout,
            body,
            buf: BytesMut::new(),
            decoder: MessageDecoder::new(
                self.max_receive.unwrap_or(DEFAULT_MAX_RECEIVE_SIZE),
                encoding,
            ),
            out: Out {
                outbox: outbox.clone(),
                encoding: reply_encoding,
            },
        };
        Ok(PreparedCall {
            handler: handler(call),
            outbox,
            deadline: timeout.map(|d| (tokio::time::Instant::now() + d, d)),
            encoding: reply_encoding,
        })
    }
}

/// A call ready to run.
struct PreparedCall {
    handler: BoxFuture,
    outbox: Arc<Outbox>,
    deadline: Option<(tokio::time::Instant, Duration)>,
    encoding: Encoding,
}

/// What a call answers, independent of how it is written out.
enum Reply {
    /// Nothing was sent: headers carrying the status.
    TrailersOnly(Status),
    /// The handler finished: its messages (possibly none) and status, in one go.
    Complete {
        initial: Metadata,
        body: Bytes,
        status: Status,
        encoding: Encoding,
    },
    /// The handler started its response and goes on: stream the rest.
    Streaming { initial: Metadata, rest: Streaming },
}

/// Polls a future inside `catch_unwind`: a panicking handler becomes `Err` (→ INTERNAL)
/// without a task of its own. The future is not polled again after it panicked.
struct CatchUnwind<'a>(&'a mut BoxFuture);

impl Future for CatchUnwind<'_> {
    type Output = Status;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Status> {
        let fut = &mut *self.0;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(Ok(()))) => Poll::Ready(Status::ok()),
            Ok(Poll::Ready(Err(s))) => Poll::Ready(s),
            Err(_) => Poll::Ready(Status::new(Code::INTERNAL, "the handler panicked")),
        }
    }
}

fn deadline_status(d: Duration) -> Status {
    Status::new(
        Code::DEADLINE_EXCEEDED,
        format!("deadline of {d:?} exceeded"),
    )
}

/// How the first, inline part of a call ended.
enum Phase {
    /// The handler finished (or failed, panicked, ran out of time) with this status.
    Done(Status),
    /// The handler started its response and now waits (for the client or for time): the
    /// rest streams from a task.
    Streaming,
}

impl PreparedCall {
    /// Runs the call. The handler is polled right here until it finishes — the common case
    /// for unary calls, answered in one go (messages + status, or trailers-only) with no
    /// task or channel — or until it has sent its response head and waits, when the rest
    /// streams each message as it comes (server-streaming and bidi calls, slow handlers).
    async fn run(self) -> Reply {
        let PreparedCall {
            mut handler,
            outbox,
            deadline,
            encoding,
        } = self;
        let inline = std::future::poll_fn(|cx| {
            if let Poll::Ready(s) = Pin::new(&mut CatchUnwind(&mut handler)).poll(cx) {
                return Poll::Ready(Phase::Done(s));
            }
            if outbox.head_sent() {
                Poll::Ready(Phase::Streaming)
            } else {
                Poll::Pending
            }
        });
        let phase = match deadline {
            None => inline.await,
            Some((at, d)) => tokio::time::timeout_at(at, inline)
                .await
                .unwrap_or_else(|_| Phase::Done(deadline_status(d))),
        };
        match phase {
            Phase::Done(status) => {
                // The handler (and its Call) is gone: whatever it sent is queued.
                drop(handler);
                let initial = outbox.take_head();
                let mut messages = outbox.drain();
                let body = match messages.len() {
                    0 => Bytes::new(),
                    1 => messages.pop().unwrap_or_default(),
                    _ => messages.concat().into(),
                };
                match initial {
                    None if body.is_empty() => Reply::TrailersOnly(status),
                    initial => Reply::Complete {
                        initial: initial.unwrap_or_default(),
                        body,
                        status,
                        encoding,
                    },
                }
            }
            Phase::Streaming => Reply::Streaming {
                initial: outbox.take_head().unwrap_or_default(),
                rest: Streaming {
                    handler,
                    outbox,
                    deadline,
                    encoding,
                },
            },
        }
    }
}

/// The streaming part of a call.
struct Streaming {
    handler: BoxFuture,
    outbox: Arc<Outbox>,
    deadline: Option<(tokio::time::Instant, Duration)>,
    encoding: Encoding,
}

/// Where response messages and the status go.
enum Sink {
    Body(BodySender),
    Stream(StreamSender),
}

impl Sink {
    async fn send(&self, m: Bytes) -> bool {
        match self {
            Sink::Body(tx) => tx.send(m).await.is_ok(),
            Sink::Stream(tx) => tx.send_data(m, false).await.is_ok(),
        }
    }

    async fn finish(self, status: &Status) {
        let _ = match self {
            Sink::Body(tx) => tx.send_trailers(status_headers(status)).await,
            Sink::Stream(tx) => tx.send_trailers(status_fields(status)).await,
        };
    }
}

impl Streaming {
    /// Forwards each message while the handler runs, then the status. A client that went
    /// away cancels the handler (it is dropped).
    async fn run(self, sink: Sink) {
        enum Step {
            Finished(Status),
            Message(Option<Bytes>),
            Expired,
        }
        let Streaming {
            handler,
            outbox,
            deadline,
            ..
        } = self;
        let mut handler = Some(handler);
        let mut status: Option<Status> = None;
        let expired = async {
            match deadline {
                Some((at, _)) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(expired);
        let mut messages_open = true;
        while handler.is_some() || messages_open {
            let handler_running = handler.is_some();
            let step = {
                let running = async {
                    match handler.as_mut() {
                        Some(h) => CatchUnwind(h).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    s = running, if handler_running => Step::Finished(s),
                    m = outbox.recv(), if messages_open => Step::Message(m),
                    () = &mut expired, if handler_running => Step::Expired,
                }
            };
            match step {
                Step::Finished(s) => {
                    status = Some(s);
                    handler = None; // its Call goes: the outbox ends after the queued messages
                }
                Step::Message(Some(m)) => {
                    if !sink.send(m).await {
                        outbox.close_reader();
                        return; // the client went away: the handler is dropped with us
                    }
                }
                Step::Message(None) => messages_open = false,
                Step::Expired => {
                    status = deadline.map(|(_, d)| deadline_status(d));
                    handler = None;
                }
            }
        }
        let status = status
            .unwrap_or_else(|| Status::new(Code::INTERNAL, "the handler ended without a status"));
        sink.finish(&status).await;
    }
}

/// Writes a complete reply — HEADERS, DATA (unless empty), trailers — queueing all three
/// with the connection before waiting for any, so that they leave in one write.
async fn send_complete(
    tx: &StreamSender,
    head: Vec<HeaderField>,
    body: Bytes,
    trailers: Vec<HeaderField>,
) -> Result<(), h2mux::Error> {
    let with_data = !body.is_empty();
    let mut head = std::pin::pin!(tx.send_headers(head, false));
    let mut data = std::pin::pin!(async {
        if with_data {
            tx.send_data(body, false).await
        } else {
            Ok(())
        }
    });
    let mut trailers = std::pin::pin!(tx.send_trailers(trailers));
    let (mut h, mut d, mut t) = (None, None, None);
    // Polled in this order every time: the first pass queues the three commands in order.
    std::future::poll_fn(|cx| {
        if h.is_none() {
            if let Poll::Ready(r) = head.as_mut().poll(cx) {
                h = Some(r);
            }
        }
        if d.is_none() {
            if let Poll::Ready(r) = data.as_mut().poll(cx) {
                d = Some(r);
            }
        }
        if t.is_none() {
            if let Poll::Ready(r) = trailers.as_mut().poll(cx) {
                t = Some(r);
            }
        }
        match (h.take(), d.take(), t.take()) {
            (Some(a), Some(b), Some(c)) => Poll::Ready(a.and(b).and(c)),
            (a, b, c) => {
                (h, d, t) = (a, b, c);
                Poll::Pending
            }
        }
    })
    .await
}

/// The response head as header fields (the direct path): `:status` 200, content-type,
/// encodings, initial metadata.
fn response_fields(initial: &Metadata, encoding: Encoding) -> Vec<HeaderField> {
    let f = |n: &'static [u8], v: &'static [u8]| {
        HeaderField::new(Bytes::from_static(n), Bytes::from_static(v))
    };
    let mut out = vec![
        f(b":status", b"200"),
        f(b"content-type", crate::CONTENT_TYPE.as_bytes()),
        f(
            b"grpc-accept-encoding",
            compression::ACCEPT_ENCODING.as_bytes(),
        ),
    ];
    if encoding == Encoding::Gzip {
        out.push(f(b"grpc-encoding", b"gzip"));
    }
    for (k, v) in initial.to_fields() {
        out.push(HeaderField::new(Bytes::from(k), Bytes::from(v)));
    }
    out
}

/// `grpc-status` and `grpc-message` as header fields.
fn status_fields(status: &Status) -> Vec<HeaderField> {
    let mut out = vec![HeaderField::new(
        Bytes::from_static(b"grpc-status"),
        Bytes::from(status.status_value()),
    )];
    if let Some(m) = status.message_value() {
        out.push(HeaderField::new(
            Bytes::from_static(b"grpc-message"),
            Bytes::from(m),
        ));
    }
    out
}

/// A response head with `body`: content-type, accepted and used encodings, initial
/// metadata.
fn response(body: Body, initial: &Metadata, encoding: Encoding) -> Response<Body> {
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
    add_metadata(h, initial);
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
