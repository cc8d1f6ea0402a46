//! HTTP on h2mux streams: request/response types from the `http` crate, a streaming
//! [`Body`] with back-pressure and trailers, a [`Server`] and a [`Client`] over cleartext
//! HTTP/2 with prior knowledge (h2c). RFC 9113 §8 message mapping.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use h2mux_proto::{Config, HeaderField, Role};
use h2mux_wire::ErrorCode;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, Uri};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use crate::conn::{self, ConnectionHandle, StreamEvent, StreamReceiver, StreamSender};
use crate::error::Error;
use crate::guard::{Admission, Refusal, StallState, StallWatch};

/// A message body: empty, one buffer, a stream of chunks fed by a [`BodySender`], or what
/// the peer is sending.
pub struct Body {
    inner: Inner,
    /// Boxed: most bodies have none, and every waiting request handler holds a body.
    trailers: Option<Box<HeaderMap>>,
}

enum Inner {
    Empty,
    Full(Option<Bytes>),
    Channel(mpsc::Receiver<Chunk>),
    Incoming(Incoming),
}

/// What the peer sends on a stream, with the client's timeouts and cancel-on-drop.
struct Incoming {
    rx: StreamReceiver,
    /// END_STREAM seen, or an error reported: nothing more comes.
    ended: bool,
    /// A response body's cancel guard and time limits. Boxed, and absent on a server's
    /// request bodies: each waiting request handler holds its body, and the per-stream cost
    /// of an idle open stream is what issue 5 §6 bounds (≤ 2 KiB).
    client: Option<Box<ClientSide>>,
}

/// The client's part of an incoming body.
struct ClientSide {
    /// Resets the stream (CANCEL) if the body is dropped or fails before its end, so the
    /// server stops sending what nobody reads.
    cancel: CancelOnDrop,
    /// Longest wait for the next chunk ([`Timeouts::read`]).
    read_timeout: Option<Duration>,
    /// The whole exchange's deadline ([`Timeouts::request`]) and its length.
    deadline: Option<(tokio::time::Instant, Duration)>,
    /// The wait in progress for the next event: when it times out and the limit it stands for.
    waiting: Option<(tokio::time::Instant, Duration)>,
    /// Its timer, made on the first wait that has a limit (none when no timeout applies).
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// Resets a stream with CANCEL when dropped while armed.
struct CancelOnDrop {
    tx: StreamSender,
    armed: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if self.armed {
            self.tx.reset(ErrorCode::CANCEL);
        }
    }
}

impl Incoming {
    fn end(&mut self) {
        self.ended = true;
        if let Some(c) = self.client.as_mut() {
            c.cancel.armed = false;
        }
    }

    fn new(rx: StreamReceiver) -> Incoming {
        Incoming {
            rx,
            ended: false,
            client: None,
        }
    }

    /// The next event within the read timeout (counted from when the wait began) and the
    /// request deadline. Poll-based, with the timer kept here: a body's `data` future is then
    /// a pointer, not a timer — what every waiting request handler holds.
    fn poll_next_event(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<StreamEvent>, Error>> {
        if let Poll::Ready(ev) = self.rx.poll_recv(cx) {
            if let Some(c) = self.client.as_mut() {
                c.waiting = None;
            }
            return Poll::Ready(Ok(ev));
        }
        let Some(c) = self.client.as_mut() else {
            return Poll::Pending;
        };
        c.poll_limits(cx)
    }
}

impl ClientSide {
    /// Whether the read timeout or the deadline has passed while waiting.
    fn poll_limits(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<StreamEvent>, Error>> {
        let (at, len) = match self.waiting {
            Some(w) => w,
            None => {
                let now = tokio::time::Instant::now();
                let Some(w) = earliest(self.deadline, self.read_timeout.map(|t| (now + t, t)))
                else {
                    return Poll::Pending;
                };
                self.waiting = Some(w);
                match &mut self.timer {
                    Some(t) => t.as_mut().reset(w.0),
                    None => self.timer = Some(Box::pin(tokio::time::sleep_until(w.0))),
                }
                w
            }
        };
        let fired = self
            .timer
            .as_mut()
            .is_some_and(|t| t.as_mut().poll(cx).is_ready());
        if fired || tokio::time::Instant::now() >= at {
            self.waiting = None;
            return Poll::Ready(Err(Error::Timeout(len)));
        }
        Poll::Pending
    }
}

/// The earlier of two optional deadlines (each with the duration it stands for).
fn earliest(
    a: Option<(tokio::time::Instant, Duration)>,
    b: Option<(tokio::time::Instant, Duration)>,
) -> Option<(tokio::time::Instant, Duration)> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

enum Chunk {
    Data(Bytes),
    Trailers(HeaderMap),
}

/// Feeds a streaming [`Body`]; `send` waits while the reader is behind (bounded queue).
pub struct BodySender {
    tx: mpsc::Sender<Chunk>,
}

impl BodySender {
    /// Sends a chunk; fails when the body's reader is gone.
    pub async fn send(&self, data: Bytes) -> Result<(), Error> {
        self.tx
            .send(Chunk::Data(data))
            .await
            .map_err(|_| Error::ConnectionClosed)
    }
    /// [`BodySender::send`] for a thread outside any async runtime (the blocking client);
    /// blocks while the reader is behind.
    pub fn blocking_send(&self, data: Bytes) -> Result<(), Error> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::Command(
                "BodySender::blocking_send called inside an async runtime; use send".into(),
            ));
        }
        self.tx
            .blocking_send(Chunk::Data(data))
            .map_err(|_| Error::ConnectionClosed)
    }
    /// Ends the body with trailers.
    pub async fn send_trailers(self, trailers: HeaderMap) -> Result<(), Error> {
        self.tx
            .send(Chunk::Trailers(trailers))
            .await
            .map_err(|_| Error::ConnectionClosed)
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Body")
    }
}

impl Default for Body {
    fn default() -> Body {
        Body::empty()
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Body {
        Body {
            inner: Inner::Full(Some(b)),
            trailers: None,
        }
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Body {
        Body::from(Bytes::from_static(s.as_bytes()))
    }
}

impl From<Vec<u8>> for Body {
    fn from(v: Vec<u8>) -> Body {
        Body::from(Bytes::from(v))
    }
}

impl Body {
    /// No content.
    pub fn empty() -> Body {
        Body {
            inner: Inner::Empty,
            trailers: None,
        }
    }

    /// A streaming body and its feeder; at most `buffer` chunks wait between them.
    pub fn channel(buffer: usize) -> (BodySender, Body) {
        let (tx, rx) = mpsc::channel(buffer.max(1));
        (
            BodySender { tx },
            Body {
                inner: Inner::Channel(rx),
                trailers: None,
            },
        )
    }

    fn incoming(stream: StreamReceiver) -> Body {
        Body {
            inner: Inner::Incoming(Incoming::new(stream)),
            trailers: None,
        }
    }

    /// The whole content, if the body is one buffer without trailers (sent without a pump).
    fn take_full(&mut self) -> Option<Bytes> {
        match (&mut self.inner, &self.trailers) {
            (Inner::Full(b), None) => Some(b.take().unwrap_or_default()),
            (Inner::Empty, None) => Some(Bytes::new()),
            _ => None,
        }
    }

    /// The whole content and the trailers, if the body is one buffer with trailers.
    fn take_full_with_trailers(&mut self) -> Option<(Bytes, HeaderMap)> {
        match &mut self.inner {
            Inner::Full(_) | Inner::Empty if self.trailers.is_some() => {
                let data = match &mut self.inner {
                    Inner::Full(b) => b.take().unwrap_or_default(),
                    _ => Bytes::new(),
                };
                self.trailers.take().map(|t| (data, *t))
            }
            _ => None,
        }
    }

    /// Ends this body with `trailers`, sent after its data (e.g. a complete gRPC response:
    /// messages and status in one body, without a channel or a task).
    pub fn with_trailers(mut self, trailers: HeaderMap) -> Body {
        self.trailers = Some(Box::new(trailers));
        self
    }

    fn is_empty_now(&self) -> bool {
        match &self.inner {
            Inner::Empty => true,
            Inner::Full(b) => b.as_ref().is_none_or(|b| b.is_empty()),
            _ => false,
        }
    }

    /// The next chunk; `None` at the end. Errors when the stream was reset or the connection
    /// lost.
    pub async fn data(&mut self) -> Option<Result<Bytes, Error>> {
        std::future::poll_fn(|cx| self.poll_data(cx)).await
    }

    /// Poll form of [`Body::data`].
    fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Error>>> {
        loop {
            match &mut self.inner {
                Inner::Empty => return Poll::Ready(None),
                Inner::Full(b) => return Poll::Ready(b.take().map(Ok)),
                Inner::Channel(rx) => {
                    return Poll::Ready(match std::task::ready!(rx.poll_recv(cx)) {
                        Some(Chunk::Data(d)) => Some(Ok(d)),
                        Some(Chunk::Trailers(t)) => {
                            self.trailers = Some(Box::new(t));
                            None
                        }
                        None => None,
                    })
                }
                Inner::Incoming(s) => {
                    if s.ended {
                        return Poll::Ready(None);
                    }
                    let ev = match std::task::ready!(s.poll_next_event(cx)) {
                        Ok(ev) => ev,
                        Err(e) => {
                            // Timed out: the stream is cancelled (the cancel guard fires).
                            s.ended = true;
                            return Poll::Ready(Some(Err(e)));
                        }
                    };
                    match ev {
                        Some(StreamEvent::Data(d, end)) => {
                            if end {
                                s.end();
                            }
                            if d.is_empty() {
                                continue;
                            }
                            return Poll::Ready(Some(Ok(d)));
                        }
                        Some(StreamEvent::Trailers(t)) => {
                            s.end();
                            self.trailers = Some(Box::new(to_header_map(&t)));
                            return Poll::Ready(None);
                        }
                        Some(StreamEvent::Headers(_, end)) => {
                            if end {
                                s.end();
                                return Poll::Ready(None);
                            }
                            continue;
                        }
                        Some(StreamEvent::Reset(cause)) => {
                            s.end();
                            return Poll::Ready(Some(Err(Error::from_reset(&cause))));
                        }
                        Some(StreamEvent::ConnectionLost(e)) => {
                            s.end();
                            return Poll::Ready(Some(Err(e)));
                        }
                        None => {
                            // The stream went away without END_STREAM: we reset it (a failed
                            // upload, a timeout). Never report that as a complete body.
                            s.end();
                            return Poll::Ready(Some(Err(Error::StreamReset(
                                "the stream was reset locally before the body ended".into(),
                            ))));
                        }
                    }
                }
            }
        }
    }

    /// Trailers received (after `data` returned `None`).
    pub fn trailers(&self) -> Option<&HeaderMap> {
        self.trailers.as_deref()
    }

    /// Reads the whole body, failing beyond `limit` bytes.
    pub async fn collect(mut self, limit: usize) -> Result<Bytes, Error> {
        // A body that arrives as one chunk is returned as that chunk, without a copy.
        let mut first: Option<Bytes> = None;
        let mut out = BytesMut::new();
        while let Some(chunk) = self.data().await {
            let chunk = chunk?;
            let held = first.as_ref().map_or(0, Bytes::len) + out.len();
            if held + chunk.len() > limit {
                return Err(Error::BodyTooLarge { limit });
            }
            match first.take() {
                None if out.is_empty() => first = Some(chunk),
                Some(f) => {
                    out.reserve(f.len() + chunk.len());
                    out.extend_from_slice(&f);
                    out.extend_from_slice(&chunk);
                }
                None => out.extend_from_slice(&chunk),
            }
        }
        Ok(first.unwrap_or_else(|| out.freeze()))
    }
}

fn to_header_map(fields: &[HeaderField]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for f in fields {
        if f.name.starts_with(b":") {
            continue;
        }
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(&f.name),
            HeaderValue::from_bytes(&f.value),
        ) {
            map.append(n, v);
        }
    }
    map
}

fn from_header_map(map: &HeaderMap, out: &mut Vec<HeaderField>) {
    for (n, v) in map {
        // RFC 9113 §8.2.2: connection-specific fields are not sent.
        if matches!(
            n.as_str(),
            "connection"
                | "keep-alive"
                | "proxy-connection"
                | "transfer-encoding"
                | "upgrade"
                | "host"
        ) {
            continue;
        }
        out.push(HeaderField::new(
            Bytes::copy_from_slice(n.as_str().as_bytes()),
            Bytes::copy_from_slice(v.as_bytes()),
        ));
    }
}

/// Sends `body` on `stream`, ending the stream (with trailers when the body has them); a
/// chunk the connection cannot take within `write_timeout` fails with [`Error::Timeout`].
///
/// A chunk is held back only while the next one (or the body's end) is already there, so
/// that END_STREAM rides on the last DATA frame; when the body has nothing more ready the
/// held chunk goes out at once. A streaming body whose writer waits for an answer to what
/// it sent (a gRPC bidi call) must never have that chunk wait for the next one.
async fn send_body(
    stream: &StreamSender,
    mut body: Body,
    write_timeout: Option<Duration>,
) -> Result<(), Error> {
    let mut prev: Option<Bytes> = None;
    loop {
        let next = if prev.is_some() {
            // Poll once: `data` is cancel-safe (channel receives).
            tokio::select! {
                biased;
                next = body.data() => Some(next),
                () = std::future::ready(()) => None,
            }
        } else {
            Some(body.data().await)
        };
        match next {
            None => {
                if let Some(p) = prev.take() {
                    send_data_within(stream, p, false, write_timeout).await?;
                }
            }
            Some(Some(chunk)) => {
                if let Some(p) = prev.replace(chunk?) {
                    send_data_within(stream, p, false, write_timeout).await?;
                }
            }
            Some(None) => break,
        }
    }
    match body.trailers.take() {
        Some(t) => {
            if let Some(p) = prev {
                send_data_within(stream, p, false, write_timeout).await?;
            }
            let mut fields = Vec::new();
            from_header_map(&t, &mut fields);
            stream.send_trailers(fields).await
        }
        None => send_data_within(stream, prev.unwrap_or_default(), true, write_timeout).await,
    }
}

/// `send_data` that gives up after `timeout` (no room: the peer's window stays shut).
async fn send_data_within(
    stream: &StreamSender,
    data: Bytes,
    end_stream: bool,
    timeout: Option<Duration>,
) -> Result<(), Error> {
    match timeout {
        None => stream.send_data(data, end_stream).await,
        Some(t) => tokio::time::timeout(t, stream.send_data(data, end_stream))
            .await
            .map_err(|_| Error::Timeout(t))?,
    }
}

// ---------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------

/// Server-level limits and timeouts, on top of each connection's core limits ([`Config`]).
/// Every field, its default and what other servers do is listed in `docs/LIMITS.md`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLimits {
    /// Most connections open at once, from all clients. A connection beyond it is refused
    /// at once (h2c: SETTINGS + GOAWAY ENHANCE_YOUR_CALM; TLS: closed before the handshake).
    /// Default 10 000.
    pub max_connections: usize,
    /// Most connections open at once from one client IP address, refused the same way.
    /// Default 256.
    pub max_connections_per_ip: usize,
    /// A connection with no request in progress for this long is shut down gracefully
    /// (GOAWAY NO_ERROR). `None`: never. Default 180 s.
    pub idle_timeout: Option<Duration>,
    /// How long a TLS handshake may take before the connection is dropped (slowloris on the
    /// handshake). Default 10 s ([`TLS_HANDSHAKE_TIMEOUT`]).
    pub tls_handshake_timeout: Duration,
    /// h2c: how long a new connection has to send the first octets of the client preface
    /// (slowloris before the preface); the core's `Config::settings_timeout` then bounds the
    /// SETTINGS exchange. Default 10 s.
    pub preface_timeout: Duration,
    /// A connection whose writes make no progress for this long (the peer stopped reading,
    /// CVE-2019-9517) is closed. `None`: never. Default 60 s (nginx's `send_timeout`).
    pub send_timeout: Option<Duration>,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_connections: 10_000,
            max_connections_per_ip: 256,
            idle_timeout: Some(Duration::from_secs(180)),
            tls_handshake_timeout: TLS_HANDSHAKE_TIMEOUT,
            preface_timeout: Duration::from_secs(10),
            send_timeout: Some(Duration::from_secs(60)),
        }
    }
}

/// Who sent a request: put into every request's extensions by the [`Server`]
/// (`req.extensions().get::<PeerInfo>()`).
#[derive(Debug, Clone)]
pub struct PeerInfo {
    /// The client's address.
    pub remote_addr: SocketAddr,
    /// Over TLS: the certificate chain the client presented (mutual TLS), end entity first;
    /// empty when it presented none or on h2c.
    pub client_certificates: Arc<Vec<rustls::pki_types::CertificateDer<'static>>>,
    /// Whether the connection is TLS.
    pub tls: bool,
}

/// Counters of a running [`Server`] (see [`ServerHandle::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Connections open now (admitted, in handshake or serving).
    pub connections: usize,
    /// Requests whose handler or response is in progress now.
    pub requests_in_flight: usize,
    /// Connections accepted since the start.
    pub accepted: u64,
    /// Connections refused by `max_connections` or `max_connections_per_ip`.
    pub refused: u64,
    /// Requests received since the start.
    pub requests: u64,
}

struct Shared {
    /// `Some(drain)` once a graceful shutdown has started.
    shutdown: watch::Sender<Option<Duration>>,
    admission: Arc<Admission>,
    requests_in_flight: AtomicUsize,
    accepted: AtomicU64,
    refused: AtomicU64,
    requests: AtomicU64,
    /// Refused h2c connections being told why (bounded: beyond it they are just closed).
    lingering: Arc<tokio::sync::Semaphore>,
}

/// Controls a [`Server`] from outside its `serve` future: graceful shutdown and counters.
/// Cloneable; take it with [`Server::handle`] before calling `serve`.
#[derive(Clone)]
pub struct ServerHandle {
    shared: Arc<Shared>,
    drain: Duration,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("stats", &self.stats())
            .finish()
    }
}

impl ServerHandle {
    /// Starts a graceful shutdown: no new connections; every connection gets GOAWAY and its
    /// requests in flight may finish within the connection's `Config::drain_timeout`; then
    /// the remaining connections are closed and `serve` returns.
    pub fn shutdown(&self) {
        self.shutdown_within(self.drain);
    }

    /// [`ServerHandle::shutdown`] with its own drain deadline (the core's
    /// `Config::drain_timeout` still applies if it is shorter).
    pub fn shutdown_within(&self, drain: Duration) {
        self.shared.shutdown.send_if_modified(|s| {
            if s.is_none() {
                *s = Some(drain);
                true
            } else {
                false
            }
        });
    }

    /// Whether a shutdown was started.
    pub fn is_shutting_down(&self) -> bool {
        self.shared.shutdown.borrow().is_some()
    }

    /// Counters now.
    pub fn stats(&self) -> ServerStats {
        let s = &self.shared;
        ServerStats {
            connections: s.admission.open(),
            requests_in_flight: s.requests_in_flight.load(Ordering::Relaxed),
            accepted: s.accepted.load(Ordering::Relaxed),
            refused: s.refused.load(Ordering::Relaxed),
            requests: s.requests.load(Ordering::Relaxed),
        }
    }
}

/// An HTTP/2 server (h2c with prior knowledge, or TLS with [`Server::with_tls`]). An
/// HTTP/1.1 request on h2c is answered with `505 HTTP Version Not Supported` and the
/// connection closed. Limits: [`Config`] per connection, [`ServerLimits`] across them.
pub struct Server {
    listener: TcpListener,
    config: Config,
    limits: ServerLimits,
    tls: Option<Arc<rustls::ServerConfig>>,
    shared: Arc<Shared>,
}

/// Default of [`ServerLimits::tls_handshake_timeout`]: how long a TLS handshake may take
/// before the connection is dropped (handshakes run concurrently, one task each, so a
/// silent client holds only its own). Also the client's handshake timeout when
/// [`ClientOptions::connect_timeout`] is `None`.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Most refused h2c connections told why at once (each lingers ≤ 1 s to read the preface).
const MAX_LINGERING_REFUSALS: usize = 256;

impl Server {
    /// Binds `addr` (port 0: any free port).
    pub async fn bind(addr: &str, config: Config) -> Result<Server, Error> {
        let listener = TcpListener::bind(addr).await.map_err(|e| Error::Listen {
            addr: addr.to_string(),
            reason: e.to_string(),
        })?;
        Ok(Server::from_listener(listener, config))
    }

    /// Serves on an already bound listener.
    pub fn from_listener(listener: TcpListener, config: Config) -> Server {
        let (shutdown, _) = watch::channel(None);
        Server {
            listener,
            config,
            limits: ServerLimits::default(),
            tls: None,
            shared: Arc::new(Shared {
                shutdown,
                admission: Arc::new(Admission::default()),
                requests_in_flight: AtomicUsize::new(0),
                accepted: AtomicU64::new(0),
                refused: AtomicU64::new(0),
                requests: AtomicU64::new(0),
                lingering: Arc::new(tokio::sync::Semaphore::new(MAX_LINGERING_REFUSALS)),
            }),
        }
    }

    /// Serves over TLS (ALPN h2 required) instead of h2c.
    pub fn with_tls(mut self, tls: Arc<rustls::ServerConfig>) -> Server {
        self.tls = Some(tls);
        self
    }

    /// Replaces the server-level limits (default [`ServerLimits::default`]).
    pub fn with_limits(mut self, limits: ServerLimits) -> Server {
        self.limits = limits;
        self
    }

    /// A handle to shut the server down gracefully and read its counters.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            shared: self.shared.clone(),
            drain: self.config.drain_timeout,
        }
    }

    /// The bound address.
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        self.listener
            .local_addr()
            .map_err(|e| Error::Command(e.to_string()))
    }

    /// Serves connections until a graceful shutdown ([`ServerHandle::shutdown`]) has
    /// finished — forever if none is started. Each request goes to `handler` on its own
    /// task; a panicking handler resets only its stream.
    pub async fn serve<F, Fut>(self, handler: F) -> Result<(), Error>
    where
        F: Fn(Request<Body>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<Body>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let mut shutdown = self.shared.shutdown.subscribe();
        let mut conns = tokio::task::JoinSet::new();
        while shutdown.borrow_and_update().is_none() {
            tokio::select! {
                r = self.listener.accept() => {
                    let (sock, peer) = match r {
                        Ok(s) => s,
                        Err(_) => {
                            // Out of descriptors and the like: let the backlog wait a little.
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    };
                    self.admit(sock, peer, &handler, &mut conns);
                }
                _ = shutdown.changed() => {}
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
        // Stop accepting; the connections saw the same signal and drain by themselves.
        drop(self.listener);
        let drain = shutdown.borrow().unwrap_or(self.config.drain_timeout);
        let give_up = tokio::time::Instant::now() + drain + ABORT_SLACK;
        loop {
            tokio::select! {
                next = conns.join_next() => if next.is_none() { break },
                _ = tokio::time::sleep_until(give_up) => {
                    conns.abort_all();
                    break;
                }
            }
        }
        Ok(())
    }

    fn admit<F, Fut>(
        &self,
        sock: TcpStream,
        peer: SocketAddr,
        handler: &Arc<F>,
        conns: &mut tokio::task::JoinSet<()>,
    ) where
        F: Fn(Request<Body>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<Body>> + Send + 'static,
    {
        let shared = &self.shared;
        let limits = &self.limits;
        let permit = match shared.admission.admit(
            peer.ip(),
            limits.max_connections,
            limits.max_connections_per_ip,
        ) {
            Ok(p) => p,
            Err(why) => {
                shared.refused.fetch_add(1, Ordering::Relaxed);
                if self.tls.is_none() {
                    refuse_h2c(sock, why, &shared.lingering);
                }
                return;
            }
        };
        shared.accepted.fetch_add(1, Ordering::Relaxed);
        let _ = sock.set_nodelay(true);
        let ctx = ConnContext {
            shared: shared.clone(),
            limits: limits.clone(),
            config: self.config.clone(),
            shutdown: shared.shutdown.subscribe(),
        };
        let handler = handler.clone();
        let tls = self.tls.clone();
        conns.spawn(async move {
            let _permit = permit;
            let stall = StallState::new();
            let sock = StallWatch::new(sock, stall.clone());
            match tls {
                Some(tls) => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
                    // Boxed, as serve_connection below: the task is as large as its largest
                    // state, and every idle h2c connection would otherwise carry the room
                    // of a TLS handshake (measured: 4.5 KiB of task per connection).
                    let Ok(Ok(stream)) = Box::pin(tokio::time::timeout(
                        ctx.limits.tls_handshake_timeout,
                        acceptor.accept(sock),
                    ))
                    .await
                    else {
                        return;
                    };
                    let session = stream.get_ref().1;
                    if crate::tls::check_alpn(session.alpn_protocol()).is_err() {
                        return;
                    }
                    let certs = session
                        .peer_certificates()
                        .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
                        .unwrap_or_default();
                    let peer = PeerInfo {
                        remote_addr: peer,
                        client_certificates: Arc::new(certs),
                        tls: true,
                    };
                    Box::pin(serve_connection(stream, ctx, peer, stall, handler)).await;
                }
                None => {
                    if let Some(sock) = reject_http1(sock, ctx.limits.preface_timeout).await {
                        let peer = PeerInfo {
                            remote_addr: peer,
                            client_certificates: Arc::new(Vec::new()),
                            tls: false,
                        };
                        Box::pin(serve_connection(sock, ctx, peer, stall, handler)).await;
                    }
                }
            }
        });
    }
}

/// How long an idle connection told GOAWAY may take to answer the shutdown PING and finish
/// what raced the GOAWAY before it is closed (Go's server waits 1 s as well).
const IDLE_GOAWAY_GRACE: Duration = Duration::from_secs(1);

/// How long past its drain deadline `serve` waits for connections to close by themselves.
const ABORT_SLACK: Duration = Duration::from_secs(2);

/// Tells a refused h2c client why (SETTINGS, then GOAWAY ENHANCE_YOUR_CALM naming the limit)
/// and closes. Reads and discards what the client already sent for up to a second so that
/// closing does not turn into a TCP reset that destroys the GOAWAY; at most
/// [`MAX_LINGERING_REFUSALS`] at once, beyond that the socket is just closed.
fn refuse_h2c(sock: TcpStream, why: Refusal, lingering: &Arc<tokio::sync::Semaphore>) {
    let Ok(permit) = lingering.clone().try_acquire_owned() else {
        return;
    };
    let mut out = BytesMut::new();
    h2mux_wire::frame::SettingsFrame::encode_settings(&[], &mut out);
    h2mux_wire::frame::GoAwayFrame::encode_parts(
        h2mux_wire::StreamId::ZERO,
        ErrorCode::ENHANCE_YOUR_CALM,
        why.describe().as_bytes(),
        &mut out,
    );
    tokio::spawn(async move {
        let _permit = permit;
        let mut sock = sock;
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            let _ = sock.write_all(&out).await;
            let _ = sock.shutdown().await;
            let mut sink = [0u8; 4096];
            let mut left = 64 * 1024usize;
            while left > 0 {
                match tokio::io::AsyncReadExt::read(&mut sock, &mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => left = left.saturating_sub(n),
                }
            }
        })
        .await;
    });
}

/// Peeks at the first octets: an HTTP/1.x request line gets a 505 and the connection is
/// closed (returns None); so does a client that sends nothing within `timeout`; anything
/// else goes on to HTTP/2.
async fn reject_http1(
    mut sock: StallWatch<TcpStream>,
    timeout: Duration,
) -> Option<StallWatch<TcpStream>> {
    let preface = h2mux_wire::frame::CLIENT_PREFACE;
    let mut buf = [0u8; 24];
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let n = match tokio::time::timeout_at(deadline, sock.get_ref().peek(&mut buf)).await {
            Ok(Ok(n)) => n,
            Ok(Err(_)) => return None,
            // Silent (or dribbling the preface): slowloris before HTTP/2 even starts.
            Err(_) => return None,
        };
        if n == 0 {
            return None;
        }
        if buf[..n] == preface[..n] {
            if n >= 4 {
                return Some(sock);
            }
        } else {
            let looks_http1 = buf[..n]
                .iter()
                .take_while(|b| b.is_ascii_uppercase())
                .count()
                > 0
                && buf[..n].contains(&b' ');
            if looks_http1 {
                let _ = sock
                    .write_all(b"HTTP/1.1 505 HTTP Version Not Supported\r\nconnection: close\r\ncontent-length: 37\r\n\r\nThis server speaks HTTP/2 only (h2c)\n")
                    .await;
                let _ = sock.shutdown().await;
                return None;
            }
            return Some(sock);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// What a connection task needs from its server.
struct ConnContext {
    shared: Arc<Shared>,
    limits: ServerLimits,
    config: Config,
    shutdown: watch::Receiver<Option<Duration>>,
}

/// Requests in progress on one connection; the connection task is told when it drops to 0.
struct InFlight {
    n: AtomicUsize,
    idle: tokio::sync::Notify,
}

/// Counts one request for its lifetime (connection and server counters).
struct RequestGuard {
    conn: Arc<InFlight>,
    shared: Arc<Shared>,
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.shared
            .requests_in_flight
            .fetch_sub(1, Ordering::Relaxed);
        if self.conn.n.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.conn.idle.notify_one();
        }
    }
}

async fn serve_connection<IO, F, Fut>(
    sock: IO,
    mut ctx: ConnContext,
    peer: PeerInfo,
    stall: Arc<StallState>,
    handler: Arc<F>,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    F: Fn(Request<Body>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    use tokio::time::Instant;
    let (conn, mut incoming) = conn::spawn(sock, Role::Server, ctx.config.clone());
    let in_flight = Arc::new(InFlight {
        n: AtomicUsize::new(0),
        idle: tokio::sync::Notify::new(),
    });
    let peer = Arc::new(peer);
    let mut idle_since = Some(Instant::now());
    let mut going_away = false;
    let mut abort_at: Option<Instant> = None;
    let mut stalled_at: Option<Instant> = None;
    // A shutdown may have started before this connection was admitted.
    let mut shutdown_pending = ctx.shutdown.borrow_and_update().is_some();
    loop {
        if shutdown_pending && !going_away {
            shutdown_pending = false;
            let drain = ctx.shutdown.borrow().unwrap_or(ctx.config.drain_timeout);
            conn.shutdown();
            going_away = true;
            abort_at = Some(Instant::now() + drain);
        }
        let idle_deadline = match (ctx.limits.idle_timeout, idle_since, going_away) {
            (Some(t), Some(since), false) => Some(since + t),
            _ => None,
        };
        tokio::select! {
            stream = incoming.recv() => {
                let Some(stream) = stream else { break };
                idle_since = None;
                in_flight.n.fetch_add(1, Ordering::AcqRel);
                ctx.shared.requests_in_flight.fetch_add(1, Ordering::Relaxed);
                ctx.shared.requests.fetch_add(1, Ordering::Relaxed);
                let guard = RequestGuard { conn: in_flight.clone(), shared: ctx.shared.clone() };
                // Boxed: the task then holds a pointer, and tokio's moves of the task's stage
                // copy 16 bytes instead of the whole request future (three times a request).
                tokio::spawn(Box::pin(serve_stream(stream, handler.clone(), peer.clone(), guard)));
            }
            _ = in_flight.idle.notified() => {
                if in_flight.n.load(Ordering::Acquire) == 0 {
                    idle_since = Some(Instant::now());
                }
            }
            r = ctx.shutdown.changed(), if !going_away => {
                if r.is_ok() && ctx.shutdown.borrow().is_some() {
                    shutdown_pending = true;
                }
            }
            _ = sleep_until_opt(idle_deadline), if idle_deadline.is_some() => {
                // Idle: a graceful GOAWAY; a request racing it is still served (§6.8). A
                // peer that does not answer the shutdown PING is dropped after a moment.
                conn.shutdown();
                going_away = true;
                abort_at = Some(Instant::now() + IDLE_GOAWAY_GRACE.min(ctx.config.drain_timeout));
            }
            _ = sleep_until_opt(abort_at), if abort_at.is_some() => {
                conn.abort(ErrorCode::NO_ERROR);
                abort_at = None;
            }
            _ = stall.blocked.notified(), if ctx.limits.send_timeout.is_some() => {
                stalled_at = stall.blocked_since().map(Instant::from_std);
            }
            _ = sleep_until_opt(stalled_at.zip(ctx.limits.send_timeout).map(|(a, t)| a + t)),
                if stalled_at.is_some() && ctx.limits.send_timeout.is_some() => {
                match stall.blocked_since().map(Instant::from_std) {
                    Some(since) if since == stalled_at.unwrap_or(since) => {
                        // No write progress for send_timeout: the peer does not read.
                        conn.abort(ErrorCode::ENHANCE_YOUR_CALM);
                        stalled_at = None;
                    }
                    other => stalled_at = other,
                }
            }
        }
    }
}

async fn sleep_until_opt(t: Option<tokio::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// One request: build it, run the handler (a panic resets only this stream), send the
/// response.
async fn serve_stream<F, Fut>(
    stream: conn::StreamHandle,
    handler: Arc<F>,
    peer: Arc<PeerInfo>,
    _guard: RequestGuard,
) where
    F: Fn(Request<Body>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let (tx, mut rx) = stream.split();
    let Some(StreamEvent::Headers(fields, end_stream)) = rx.recv().await else {
        return;
    };
    // Built by a plain function: the request's parts are then never locals of this task,
    // whose state is what every open stream costs (issue 5 §6: ≤ 2 KiB per idle stream).
    let Some(req) = incoming_request(fields, end_stream, rx, &peer) else {
        tx.reset(ErrorCode::PROTOCOL_ERROR);
        return;
    };
    // A panicking handler resets only this stream. It runs on this stream's task (not a task
    // of its own: a spawn per request cost ~4 000 instructions of the ~55 000 a small request
    // took, measured with callgrind).
    // The handler's future is pinned in this task's state, once, and gone before the response
    // is sent (a future passed by value into another `async fn` is stored twice, and one in a
    // `match` scrutinee lives on beside the response's).
    let resp = {
        let mut fut = std::pin::pin!((handler)(req));
        std::future::poll_fn(|cx| catch_unwind(fut.as_mut(), cx)).await
    };
    let Ok(resp) = resp else {
        tx.reset(ErrorCode::INTERNAL_ERROR);
        return;
    };
    let (fields, body) = response_head(resp);
    if send_response(&tx, fields, body).await.is_err() {
        tx.reset(ErrorCode::INTERNAL_ERROR);
    }
}

/// The request of a stream's first HEADERS, with the connection's [`PeerInfo`]; `None` when
/// the header block is not a valid request (the stream is reset).
fn incoming_request(
    fields: Vec<HeaderField>,
    end_stream: bool,
    rx: StreamReceiver,
    peer: &PeerInfo,
) -> Option<Request<Body>> {
    let (mut parts, ()) = build_request(&fields).ok()?.into_parts();
    drop(fields);
    parts.extensions.insert(peer.clone());
    let body = if end_stream {
        Body::empty()
    } else {
        Body::incoming(rx)
    };
    Some(Request::from_parts(parts, body))
}

/// A response's header fields (`:status` first) and its body.
fn response_head(resp: Response<Body>) -> (Vec<HeaderField>, Body) {
    let (parts, body) = resp.into_parts();
    let mut fields = vec![HeaderField::new(
        &b":status"[..],
        Bytes::copy_from_slice(parts.status.as_str().as_bytes()),
    )];
    from_header_map(&parts.headers, &mut fields);
    (fields, body)
}

/// Polls `fut` once, turning a panic into `Err(())` (the panic hook has already reported it).
fn catch_unwind<F: Future>(fut: Pin<&mut F>, cx: &mut Context<'_>) -> Poll<Result<F::Output, ()>> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fut.poll(cx))) {
        Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
        Ok(Poll::Pending) => Poll::Pending,
        Err(_) => Poll::Ready(Err(())),
    }
}

async fn send_response(
    tx: &StreamSender,
    fields: Vec<HeaderField>,
    mut body: Body,
) -> Result<(), Error> {
    let empty = body.is_empty_now() && body.trailers.is_none();
    if empty {
        return tx.send_headers(fields, true).await;
    }
    if let Some(data) = body.take_full() {
        // One buffer: headers and data go to the connection together; the data's answer
        // covers both (commands of a stream are taken in order).
        let headers = tx.start_send_headers(fields, false);
        let data = tx.start_send_data(data, true);
        headers.await?;
        return data.await;
    }
    if let Some((data, trailers)) = body.take_full_with_trailers() {
        // One buffer and trailers: all three go to the connection together.
        let headers = tx.start_send_headers(fields, false);
        let data = (!data.is_empty()).then(|| tx.start_send_data(data, false));
        let mut fields = Vec::new();
        from_header_map(&trailers, &mut fields);
        let trailers = tx.start_send_trailers(fields);
        headers.await?;
        if let Some(d) = data {
            d.await?;
        }
        return trailers.await;
    }
    tx.send_headers(fields, false).await?;
    // Boxed: only streaming responses need the body loop's state; inline it would make every
    // request's task that much larger, however small its response.
    Box::pin(send_body(tx, body, None)).await
}

/// The method's name, without an allocation for the common ones.
fn method_bytes(m: &Method) -> Bytes {
    let known: &'static [u8] = match *m {
        Method::GET => b"GET",
        Method::POST => b"POST",
        Method::PUT => b"PUT",
        Method::DELETE => b"DELETE",
        Method::HEAD => b"HEAD",
        Method::OPTIONS => b"OPTIONS",
        Method::PATCH => b"PATCH",
        _ => return Bytes::copy_from_slice(m.as_str().as_bytes()),
    };
    Bytes::from_static(known)
}

fn build_request(fields: &[HeaderField]) -> Result<Request<()>, Error> {
    let mut method = None;
    let mut scheme = None;
    let mut authority = None;
    let mut path = None;
    let mut headers = HeaderMap::new();
    for f in fields {
        match &f.name[..] {
            b":method" => {
                method = Some(
                    Method::from_bytes(&f.value)
                        .map_err(|e| Error::InvalidMessage(e.to_string()))?,
                )
            }
            b":scheme" => scheme = Some(f.value.clone()),
            b":authority" => authority = Some(f.value.clone()),
            b":path" => path = Some(f.value.clone()),
            n if n.starts_with(b":") => {}
            n => {
                if let (Ok(n), Ok(v)) =
                    (HeaderName::from_bytes(n), HeaderValue::from_bytes(&f.value))
                {
                    headers.append(n, v);
                }
            }
        }
    }
    let method = method.ok_or_else(|| Error::InvalidMessage("no :method".into()))?;
    // Zero-copy from the decoded fields (the URI parts validate what they are given).
    let invalid = |e: http::Error| Error::InvalidMessage(e.to_string());
    let mut uri = http::uri::Parts::default();
    if let Some(s) = scheme {
        uri.scheme = Some(http::uri::Scheme::try_from(&s[..]).map_err(|e| invalid(e.into()))?);
    }
    if let Some(a) = authority {
        uri.authority =
            Some(http::uri::Authority::from_maybe_shared(a).map_err(|e| invalid(e.into()))?);
    }
    let path = path.unwrap_or_else(|| Bytes::from_static(b"/"));
    uri.path_and_query =
        Some(http::uri::PathAndQuery::from_maybe_shared(path).map_err(|e| invalid(e.into()))?);
    let uri = Uri::from_parts(uri).map_err(|e| invalid(e.into()))?;
    let mut req = Request::new(());
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.headers_mut() = headers;
    Ok(req)
}

// ---------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------

/// Per-request time limits of a [`Client`] (each `None` by default: no limit). A limit
/// that passes fails the request with [`Error::Timeout`] and resets its stream (CANCEL).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timeouts {
    /// From `send` until the response head: includes waiting for a stream slot when the
    /// server's SETTINGS_MAX_CONCURRENT_STREAMS is reached.
    pub response: Option<Duration>,
    /// Longest wait for the next piece of the response (its head, a body chunk, the
    /// trailers) — a server that stalls mid-body.
    pub read: Option<Duration>,
    /// Longest wait for the connection to take the next chunk of the request body — a
    /// server that never opens its flow-control window.
    pub write: Option<Duration>,
    /// The whole exchange, from `send` until the end of the response body.
    pub request: Option<Duration>,
}

/// How a [`Client`] connects: the connection's [`Config`], the connect timeout and the
/// per-request [`Timeouts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// The connection core's settings and limits.
    pub config: Config,
    /// TCP connect plus, over TLS, the handshake. Default 10 s; `None`: the OS's TCP
    /// timeout (and [`TLS_HANDSHAKE_TIMEOUT`] for the handshake).
    pub connect_timeout: Option<Duration>,
    /// Per-request limits (default: none).
    pub timeouts: Timeouts,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            config: Config::default(),
            connect_timeout: Some(Duration::from_secs(10)),
            timeouts: Timeouts::default(),
        }
    }
}

/// An HTTP/2 client on one connection (h2c with prior knowledge, or TLS). Cloneable; clones
/// share the connection and multiplex their requests on it. Requests beyond the server's
/// SETTINGS_MAX_CONCURRENT_STREAMS wait in the connection's queue (at most
/// `Config::max_queued_streams`; beyond, `send` fails with [`Error::Command`]).
#[derive(Clone, Debug)]
pub struct Client {
    conn: ConnectionHandle,
    authority: String,
    timeouts: Timeouts,
}

async fn connect_tcp(addr: &str, timeout: Option<Duration>) -> Result<TcpStream, Error> {
    let connect = TcpStream::connect(addr);
    let sock = match timeout {
        None => connect.await,
        Some(t) => tokio::time::timeout(t, connect)
            .await
            .map_err(|_| Error::Timeout(t))?,
    };
    let sock = sock.map_err(|e| Error::Connect {
        addr: addr.to_string(),
        reason: e.to_string(),
    })?;
    let _ = sock.set_nodelay(true);
    Ok(sock)
}

impl Client {
    /// Connects to `addr` (`host:port`) with the default [`ClientOptions`].
    pub async fn connect(addr: &str) -> Result<Client, Error> {
        Client::connect_with_options(addr, &ClientOptions::default()).await
    }

    /// Connects to `addr` with `config` (and the default timeouts).
    pub async fn connect_with(addr: &str, config: Config) -> Result<Client, Error> {
        let options = ClientOptions {
            config,
            ..ClientOptions::default()
        };
        Client::connect_with_options(addr, &options).await
    }

    /// Connects to `addr` (h2c) with `options`.
    pub async fn connect_with_options(
        addr: &str,
        options: &ClientOptions,
    ) -> Result<Client, Error> {
        let sock = connect_tcp(addr, options.connect_timeout).await?;
        let (conn, _) = conn::spawn(sock, Role::Client, options.config.clone());
        Ok(Client {
            conn,
            authority: addr.to_string(),
            timeouts: options.timeouts,
        })
    }

    /// Connects over TLS to `addr`, verifying the certificate for `server_name` with `tls`
    /// (see [`crate::tls`]); the session must negotiate ALPN h2.
    pub async fn connect_tls(
        addr: &str,
        server_name: &str,
        tls: Arc<rustls::ClientConfig>,
        config: Config,
    ) -> Result<Client, Error> {
        let options = ClientOptions {
            config,
            ..ClientOptions::default()
        };
        Client::connect_tls_with_options(addr, server_name, tls, &options).await
    }

    /// [`Client::connect_tls`] with `options`; `connect_timeout` covers TCP and the handshake.
    pub async fn connect_tls_with_options(
        addr: &str,
        server_name: &str,
        tls: Arc<rustls::ClientConfig>,
        options: &ClientOptions,
    ) -> Result<Client, Error> {
        let started = tokio::time::Instant::now();
        let sock = connect_tcp(addr, options.connect_timeout).await?;
        let name = rustls::pki_types::ServerName::try_from(server_name.to_string())
            .map_err(|e| Error::Tls(format!("{server_name:?} is not a valid server name: {e}")))?;
        let connector = tokio_rustls::TlsConnector::from(tls);
        let limit = options.connect_timeout.unwrap_or(TLS_HANDSHAKE_TIMEOUT);
        let stream = tokio::time::timeout_at(started + limit, connector.connect(name, sock))
            .await
            .map_err(|_| Error::Timeout(limit))?
            .map_err(|e| Error::Tls(format!("handshake with {addr} failed: {e}")))?;
        crate::tls::check_alpn(stream.get_ref().1.alpn_protocol())?;
        let (conn, _) = conn::spawn(stream, Role::Client, options.config.clone());
        Ok(Client {
            conn,
            authority: server_name.to_string(),
            timeouts: options.timeouts,
        })
    }

    /// The per-request limits of this client.
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// A client on the same connection with other per-request limits.
    pub fn with_timeouts(&self, timeouts: Timeouts) -> Client {
        Client {
            timeouts,
            ..self.clone()
        }
    }

    /// Sends a request and waits for the response head; the response body streams (dropping
    /// it before its end cancels the stream). [`Timeouts`] apply.
    pub async fn send(&self, req: Request<Body>) -> Result<Response<Body>, Error> {
        let t = self.timeouts;
        let started = tokio::time::Instant::now();
        let deadline = t.request.map(|d| (started + d, d));
        let head_deadline = earliest(deadline, t.response.map(|d| (started + d, d)));
        let (parts, body) = req.into_parts();
        let scheme = match parts.uri.scheme_str() {
            None | Some("http") => Bytes::from_static(b"http"),
            Some("https") => Bytes::from_static(b"https"),
            Some(other) => Bytes::copy_from_slice(other.as_bytes()),
        };
        let authority = parts
            .uri
            .authority()
            .map(|a| a.to_string())
            .unwrap_or_else(|| self.authority.clone());
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        let mut fields = vec![
            HeaderField::new(&b":method"[..], method_bytes(&parts.method)),
            HeaderField::new(&b":scheme"[..], scheme),
            HeaderField::new(&b":authority"[..], Bytes::from(authority)),
            HeaderField::new(&b":path"[..], Bytes::from(path)),
        ];
        from_header_map(&parts.headers, &mut fields);
        let mut body = body;
        let end_stream = body.is_empty_now() && body.trailers.is_none();
        // The stream is usable at once; if it cannot be opened its first event says why.
        let (stream, _opened) = self.conn.start_open(fields, end_stream);
        let (tx, mut rx) = stream.split();
        // Until the response has ended, giving up on it (a timeout, a dropped body) resets
        // the stream so the server stops working on it.
        let mut cancel = CancelOnDrop {
            tx: tx.clone(),
            armed: true,
        };
        let mut pump = if end_stream {
            None
        } else if let Some(data) = body.take_full() {
            // One buffer: queued behind the HEADERS, no task needed. Back-pressure does not
            // matter for a buffer the caller already holds whole.
            drop(tx.start_send_data(data, true));
            None
        } else {
            let write = t.write;
            Some(tokio::spawn(async move {
                let r = send_body(&tx, body, write).await;
                if r.is_err() {
                    tx.reset(ErrorCode::CANCEL);
                }
                r
            }))
        };
        let mut abort_pump = AbortOnDrop(pump.as_ref().map(|p| p.abort_handle()));
        loop {
            let wait = earliest(
                head_deadline,
                t.read.map(|d| (tokio::time::Instant::now() + d, d)),
            );
            let next = async {
                match wait {
                    None => Ok(rx.recv().await),
                    Some((at, len)) => tokio::time::timeout_at(at, rx.recv())
                        .await
                        .map_err(|_| Error::Timeout(len)),
                }
            };
            let ev = tokio::select! {
                ev = next => ev?,
                r = join_pump(&mut pump), if pump.is_some() => {
                    pump = None;
                    match r {
                        Ok(Ok(())) => continue,
                        // A reset or a lost connection, if already known, says more than
                        // the body task's view of it.
                        Ok(Err(e)) => return Err(explain(&mut rx, e).await),
                        Err(_) => return Err(Error::Command("the request body task failed".into())),
                    }
                }
            };
            match ev {
                Some(StreamEvent::Headers(fields, end)) => {
                    let status = fields
                        .iter()
                        .find(|f| &f.name[..] == b":status")
                        .and_then(|f| std::str::from_utf8(&f.value).ok()?.parse::<u16>().ok())
                        .ok_or_else(|| Error::InvalidMessage("response without :status".into()))?;
                    if (100..200).contains(&status) && !end {
                        continue; // informational
                    }
                    let mut resp = Response::builder()
                        .status(status)
                        .body(())
                        .map_err(|e| Error::InvalidMessage(e.to_string()))?;
                    *resp.headers_mut() = to_header_map(&fields);
                    let body = if end {
                        cancel.armed = false;
                        Body::empty()
                    } else {
                        Body {
                            inner: Inner::Incoming(Incoming {
                                client: Some(Box::new(ClientSide {
                                    cancel,
                                    read_timeout: t.read,
                                    deadline,
                                    waiting: None,
                                    timer: None,
                                })),
                                ..Incoming::new(rx)
                            }),
                            trailers: None,
                        }
                    };
                    // The request body (if still streaming) goes on by itself.
                    abort_pump.0 = None;
                    let (parts, ()) = resp.into_parts();
                    return Ok(Response::from_parts(parts, body));
                }
                Some(StreamEvent::Reset(cause)) => {
                    cancel.armed = false;
                    return Err(Error::from_reset(&cause));
                }
                Some(StreamEvent::ConnectionLost(e)) => {
                    cancel.armed = false;
                    return Err(e);
                }
                Some(_) => continue,
                None => {
                    // The stream went away under us: the body task reset it (its error says
                    // why), or the connection is gone.
                    return Err(match pump.take() {
                        Some(p) => match tokio::time::timeout(Duration::from_secs(1), p).await {
                            Ok(Ok(Err(e))) => e,
                            _ => Error::ConnectionClosed,
                        },
                        None => Error::ConnectionClosed,
                    });
                }
            }
        }
    }

    /// GET `path` and read the whole body (at most `limit` bytes).
    pub async fn get(&self, path: &str, limit: usize) -> Result<(http::StatusCode, Bytes), Error> {
        let req = Request::get(path)
            .body(Body::empty())
            .map_err(|e| Error::InvalidMessage(e.to_string()))?;
        let resp = self.send(req).await?;
        let status = resp.status();
        Ok((status, resp.into_body().collect(limit).await?))
    }

    /// Starts a graceful shutdown of the connection: GOAWAY; requests in flight finish
    /// (within `Config::drain_timeout`), new ones fail with [`Error::ConnectionClosed`].
    pub fn close(&self) {
        self.conn.shutdown();
    }

    /// [`Client::close`], then waits until the connection has ended.
    pub async fn close_and_wait(&self) {
        self.conn.shutdown();
        self.conn.closed().await;
    }

    /// Resolves once the connection has ended (closed by either side or failed).
    pub async fn closed(&self) {
        self.conn.closed().await;
    }

    /// The connection underneath: open raw streams, read its limits and health
    /// ([`ConnectionHandle::is_going_away`], [`ConnectionHandle::peer_max_concurrent_streams`]).
    pub fn connection(&self) -> &ConnectionHandle {
        &self.conn
    }
}

type Pump = tokio::task::JoinHandle<Result<(), Error>>;

/// The error to report for a failed request body: the stream's reset or the connection's
/// loss when that event is already queued, else the body task's own error.
async fn explain(rx: &mut StreamReceiver, e: Error) -> Error {
    let queued = tokio::select! {
        biased;
        ev = rx.recv() => ev,
        () = std::future::ready(()) => None,
    };
    match queued {
        Some(StreamEvent::Reset(cause)) => Error::from_reset(&cause),
        Some(StreamEvent::ConnectionLost(lost)) => lost,
        _ => e,
    }
}

/// Waits for the request-body task (forever when there is none).
async fn join_pump(pump: &mut Option<Pump>) -> Result<Result<(), Error>, tokio::task::JoinError> {
    match pump {
        Some(p) => p.await,
        None => std::future::pending().await,
    }
}

/// Aborts the request-body task if `send` gives up before the response head.
struct AbortOnDrop(Option<tokio::task::AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(h) = &self.0 {
            h.abort();
        }
    }
}
