//! The shared channel (seeds/002): one cloneable, `Send + Sync` handle that any number of
//! tasks and threads use at once, multiplexing their calls over a few HTTP/2 connections.
//!
//! * It keeps up to `connections` connections to the target, opened on demand, and sends
//!   each call on the ready connection with the fewest calls in flight. Beyond a
//!   connection's SETTINGS_MAX_CONCURRENT_STREAMS the h2mux client queues the stream until a
//!   slot frees up.
//! * A broken connection is dropped and redialled on the next call, with capped exponential
//!   backoff and jitter between failed dials (`h2mux_pool::backoff`-style, here in-crate).
//! * Connectivity is observable ([`Channel::state`]): idle, connecting, ready, transient
//!   failure, shutdown.
//! * The hot path takes a shared read lock (no writer unless a connection is added or
//!   dropped) and bumps per-connection atomic counters.
//!
//! The default of one connection is the seeds/002 result: one HTTP/2 connection carries
//! 100 concurrent callers; more connections help only when a single connection's window or
//! the server's stream limit is the bottleneck (`h2mux bench --only rpc-shared-N` measures
//! 1, 2 and 4).

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use h2mux::{Body, BodySender, Client};
use http::{HeaderValue, Request};

use crate::compression::{self, Encoding};
use crate::message::{self, MessageDecoder, DEFAULT_MAX_RECEIVE_SIZE};
use crate::metadata::Metadata;
use crate::status::{Code, Status};

/// Where to connect and how.
#[derive(Clone)]
pub struct ChannelConfig {
    /// `host:port` of the server.
    pub target: String,
    /// Most connections kept (default 1).
    pub connections: usize,
    /// TLS: server name and client configuration (None: h2c).
    pub tls: Option<(String, Arc<rustls::ClientConfig>)>,
    /// Largest accepted response message (default 4 MiB).
    pub max_receive_message_size: usize,
    /// First redial delay after a failed dial (doubles up to `max_backoff`).
    pub initial_backoff: Duration,
    /// Longest redial delay.
    pub max_backoff: Duration,
}

impl ChannelConfig {
    /// Defaults for `target` (h2c).
    pub fn new(target: &str) -> ChannelConfig {
        ChannelConfig {
            target: target.to_string(),
            connections: 1,
            tls: None,
            max_receive_message_size: DEFAULT_MAX_RECEIVE_SIZE,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
        }
    }
}

/// Connectivity of a channel (the gRPC connectivity-state names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// No connection yet.
    Idle,
    /// Dialling.
    Connecting,
    /// At least one connection is up.
    Ready,
    /// The last dial failed; the next call redials after the backoff.
    TransientFailure,
    /// Closed by [`Channel::close`].
    Shutdown,
}

struct Conn {
    client: Client,
    active: AtomicUsize,
    broken: AtomicBool,
}

struct Inner {
    cfg: ChannelConfig,
    conns: RwLock<Vec<Arc<Conn>>>,
    dial: tokio::sync::Mutex<()>,
    state: AtomicU8,
    /// Failed dials in a row and when the next may start.
    backoff: Mutex<(u32, Option<Instant>)>,
}

/// A shared channel; clone it freely.
#[derive(Clone)]
pub struct Channel {
    inner: Arc<Inner>,
}

/// Options of one call.
#[derive(Clone, Default)]
pub struct CallOptions {
    /// Deadline from now (sent as `grpc-timeout` and enforced locally).
    pub timeout: Option<Duration>,
    /// Custom metadata.
    pub metadata: Metadata,
    /// Compress request messages with gzip.
    pub gzip: bool,
}

fn state_from(v: u8) -> State {
    match v {
        0 => State::Idle,
        1 => State::Connecting,
        2 => State::Ready,
        3 => State::TransientFailure,
        _ => State::Shutdown,
    }
}

impl Channel {
    /// A channel to `cfg.target`; connections open on the first calls.
    pub fn new(cfg: ChannelConfig) -> Channel {
        Channel {
            inner: Arc::new(Inner {
                cfg,
                conns: RwLock::new(Vec::new()),
                dial: tokio::sync::Mutex::new(()),
                state: AtomicU8::new(0),
                backoff: Mutex::new((0, None)),
            }),
        }
    }

    /// Connectivity now.
    pub fn state(&self) -> State {
        state_from(self.inner.state.load(Ordering::Relaxed))
    }

    fn set_state(&self, s: State) {
        if self.state() != State::Shutdown {
            self.inner.state.store(s as u8, Ordering::Relaxed);
        }
    }

    /// Closes every connection gracefully; later calls fail with UNAVAILABLE.
    pub fn close(&self) {
        self.inner
            .state
            .store(State::Shutdown as u8, Ordering::Relaxed);
        if let Ok(mut conns) = self.inner.conns.write() {
            for c in conns.drain(..) {
                c.client.close();
            }
        }
    }

    /// Connections currently open.
    pub fn connection_count(&self) -> usize {
        self.inner.conns.read().map(|c| c.len()).unwrap_or(0)
    }

    /// The least-loaded healthy connection, dialling one when below the configured count
    /// and every open one is busy (or none is open).
    async fn pick(&self) -> Result<Arc<Conn>, Status> {
        if self.state() == State::Shutdown {
            return Err(Status::new(Code::UNAVAILABLE, "channel is shut down"));
        }
        let (best, count) = {
            let conns = self
                .inner
                .conns
                .read()
                .map_err(|_| Status::new(Code::INTERNAL, "channel lock poisoned"))?;
            let best = conns
                .iter()
                .filter(|c| !c.broken.load(Ordering::Relaxed))
                .min_by_key(|c| c.active.load(Ordering::Relaxed))
                .cloned();
            (best, conns.len())
        };
        match best {
            Some(c)
                if c.active.load(Ordering::Relaxed) == 0
                    || count >= self.inner.cfg.connections.max(1) =>
            {
                Ok(c)
            }
            other => match self.dial().await {
                Ok(c) => Ok(c),
                Err(e) => other.ok_or(e),
            },
        }
    }

    async fn dial(&self) -> Result<Arc<Conn>, Status> {
        let _one_at_a_time = self.inner.dial.lock().await;
        // Someone else may have dialled while we waited.
        if let Ok(conns) = self.inner.conns.read() {
            let healthy = conns
                .iter()
                .filter(|c| !c.broken.load(Ordering::Relaxed))
                .count();
            if healthy >= self.inner.cfg.connections.max(1) {
                if let Some(c) = conns
                    .iter()
                    .min_by_key(|c| c.active.load(Ordering::Relaxed))
                {
                    return Ok(c.clone());
                }
            }
        }
        let wait = self.inner.backoff.lock().ok().and_then(|b| b.1);
        if let Some(t) = wait {
            tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await;
        }
        self.set_state(State::Connecting);
        let cfg = &self.inner.cfg;
        let dialled = match &cfg.tls {
            None => Client::connect(&cfg.target).await,
            Some((name, tls)) => {
                Client::connect_tls(&cfg.target, name, tls.clone(), h2mux::Config::default()).await
            }
        };
        match dialled {
            Ok(client) => {
                if let Ok(mut b) = self.inner.backoff.lock() {
                    *b = (0, None);
                }
                let conn = Arc::new(Conn {
                    client,
                    active: AtomicUsize::new(0),
                    broken: AtomicBool::new(false),
                });
                if let Ok(mut conns) = self.inner.conns.write() {
                    conns.retain(|c| !c.broken.load(Ordering::Relaxed));
                    conns.push(conn.clone());
                }
                self.set_state(State::Ready);
                Ok(conn)
            }
            Err(e) => {
                if let Ok(mut b) = self.inner.backoff.lock() {
                    let n = b.0.min(16);
                    let base = cfg
                        .initial_backoff
                        .saturating_mul(1 << n)
                        .min(cfg.max_backoff);
                    // Equal jitter from the clock's low bits (no RNG dependency needed).
                    let jitter = f64::from(
                        std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map(|d| d.subsec_nanos())
                            .unwrap_or(0)
                            % 1000,
                    ) / 1000.0;
                    let delay = base / 2 + (base / 2).mul_f64(jitter);
                    *b = (b.0 + 1, Some(Instant::now() + delay));
                }
                self.set_state(State::TransientFailure);
                Err(Status::new(
                    Code::UNAVAILABLE,
                    format!("cannot connect to {}: {e}", cfg.target),
                ))
            }
        }
    }

    /// Starts a call of any kind: send request messages with [`OutgoingCall::send`], end
    /// them with [`OutgoingCall::finish`], read replies with [`OutgoingCall::recv`].
    pub async fn start(&self, path: &str, opts: CallOptions) -> Result<OutgoingCall, Status> {
        let conn = self.pick().await?;
        let deadline = opts.timeout.map(|t| tokio::time::Instant::now() + t);
        let mut req = Request::post(path);
        {
            let h = req
                .headers_mut()
                .ok_or_else(|| Status::new(Code::INTERNAL, "request builder"))?;
            h.insert(
                "content-type",
                HeaderValue::from_static(crate::CONTENT_TYPE),
            );
            h.insert("te", HeaderValue::from_static("trailers"));
            h.insert(
                "grpc-accept-encoding",
                HeaderValue::from_static(compression::ACCEPT_ENCODING),
            );
            if opts.gzip {
                h.insert("grpc-encoding", HeaderValue::from_static("gzip"));
            }
            if let Some(t) = opts.timeout {
                if let Ok(v) = HeaderValue::from_str(&crate::timeout::format(t)) {
                    h.insert("grpc-timeout", v);
                }
            }
            for (k, v) in opts.metadata.to_fields() {
                if let (Ok(n), Ok(v)) = (
                    http::HeaderName::from_bytes(k.as_bytes()),
                    HeaderValue::from_bytes(&v),
                ) {
                    h.append(n, v);
                }
            }
        }
        let (tx, body) = Body::channel(8);
        let req = req
            .body(body)
            .map_err(|e| Status::new(Code::INTERNAL, e.to_string()))?;
        conn.active.fetch_add(1, Ordering::Relaxed);
        let client = conn.client.clone();
        let response = tokio::spawn(async move { client.send(req).await });
        Ok(OutgoingCall {
            conn,
            tx: Some(tx),
            response: Some(response),
            body: None,
            buf: BytesMut::new(),
            decoder: None,
            deadline,
            encoding: if opts.gzip {
                Encoding::Gzip
            } else {
                Encoding::Identity
            },
            max_receive: self.inner.cfg.max_receive_message_size,
            status: None,
            metadata: Metadata::new(),
        })
    }

    /// A unary call: one request message, one reply.
    pub async fn unary(
        &self,
        path: &str,
        request: &[u8],
        opts: CallOptions,
    ) -> Result<Bytes, Status> {
        let mut call = self.start(path, opts).await?;
        call.send(request).await?;
        call.finish();
        let reply = match call.recv().await {
            Some(r) => r?,
            None => {
                return Err(call
                    .status()
                    .unwrap_or_else(|| Status::new(Code::INTERNAL, "no reply message")))
            }
        };
        match call.recv().await {
            None => match call.status() {
                Some(s) if s.code != Code::OK => Err(s),
                _ => Ok(reply),
            },
            Some(Ok(_)) => Err(Status::new(
                Code::INTERNAL,
                "unary call returned more than one message",
            )),
            Some(Err(s)) => Err(s),
        }
    }
}

/// A call in progress.
pub struct OutgoingCall {
    conn: Arc<Conn>,
    tx: Option<BodySender>,
    response: Option<tokio::task::JoinHandle<Result<http::Response<Body>, h2mux::Error>>>,
    body: Option<Body>,
    buf: BytesMut,
    decoder: Option<MessageDecoder>,
    deadline: Option<tokio::time::Instant>,
    encoding: Encoding,
    max_receive: usize,
    status: Option<Status>,
    metadata: Metadata,
}

impl Drop for OutgoingCall {
    fn drop(&mut self) {
        self.conn.active.fetch_sub(1, Ordering::Relaxed);
        if let Some(r) = self.response.take() {
            r.abort();
        }
    }
}

impl OutgoingCall {
    /// Sends one request message.
    pub async fn send(&mut self, msg: &[u8]) -> Result<(), Status> {
        let tx = self
            .tx
            .as_ref()
            .ok_or_else(|| Status::new(Code::INTERNAL, "send after finish"))?;
        let mut b = BytesMut::new();
        message::encode(msg, self.encoding, &mut b);
        tx.send(b.freeze())
            .await
            .map_err(|_| Status::new(Code::UNAVAILABLE, "the call's stream is closed"))
    }

    /// No more request messages.
    pub fn finish(&mut self) {
        self.tx = None;
    }

    /// The response's initial metadata (after the first `recv`).
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The final status, once `recv` returned `None` (or an error).
    pub fn status(&self) -> Option<Status> {
        self.status.clone()
    }

    fn fail(&mut self, s: Status) -> Option<Result<Bytes, Status>> {
        self.status = Some(s.clone());
        Some(Err(s))
    }

    /// The next reply message; `None` at the end, when [`OutgoingCall::status`] tells how
    /// the call ended (an error status is also returned as `Some(Err)` once).
    pub async fn recv(&mut self) -> Option<Result<Bytes, Status>> {
        if self.status.is_some() {
            return None;
        }
        let deadline = self.deadline;
        let fut = self.recv_inner();
        match deadline {
            None => fut.await,
            Some(d) => match tokio::time::timeout_at(d, fut).await {
                Ok(r) => r,
                Err(_) => {
                    self.tx = None;
                    if let Some(r) = self.response.take() {
                        r.abort();
                    }
                    self.body = None;
                    self.fail(Status::new(Code::DEADLINE_EXCEEDED, "deadline exceeded"))
                }
            },
        }
    }

    async fn recv_inner(&mut self) -> Option<Result<Bytes, Status>> {
        if self.body.is_none() {
            let handle = self.response.take()?;
            let resp = match handle.await {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => {
                    if matches!(
                        e,
                        h2mux::Error::ConnectionClosed | h2mux::Error::Protocol(_)
                    ) {
                        self.conn.broken.store(true, Ordering::Relaxed);
                    }
                    return self.fail(Status::new(Code::UNAVAILABLE, e.to_string()));
                }
                Err(_) => return self.fail(Status::new(Code::CANCELLED, "call cancelled")),
            };
            if resp.status() != http::StatusCode::OK {
                return self.fail(Status::new(
                    Code::UNKNOWN,
                    format!("HTTP status {}", resp.status()),
                ));
            }
            let h = resp.headers();
            if let Some(st) = h.get("grpc-status") {
                // Trailers-only response.
                let s = Status::from_trailers(
                    Some(st.as_bytes()),
                    h.get("grpc-message").map(|v| v.as_bytes()),
                );
                if s.code == Code::OK {
                    self.status = Some(s);
                    return None;
                }
                return self.fail(s);
            }
            let enc = match h
                .get("grpc-encoding")
                .map(|v| Encoding::parse(v.as_bytes()))
            {
                None => None,
                Some(Ok(e)) => Some(e),
                Some(Err(s)) => return self.fail(s),
            };
            self.metadata =
                Metadata::from_fields(h.iter().map(|(k, v)| (k.as_str().as_bytes(), v.as_bytes())))
                    .unwrap_or_default();
            self.decoder = Some(MessageDecoder::new(self.max_receive, enc));
            self.body = Some(resp.into_body());
        }
        loop {
            if let Some(dec) = self.decoder.as_mut() {
                match dec.decode(&mut self.buf) {
                    Ok(Some(m)) => return Some(Ok(m)),
                    Ok(None) => {}
                    Err(s) => return self.fail(s),
                }
            }
            let body = self.body.as_mut()?;
            match body.data().await {
                Some(Ok(chunk)) => self.buf.extend_from_slice(&chunk),
                Some(Err(e)) => return self.fail(Status::new(Code::UNAVAILABLE, e.to_string())),
                None => {
                    let t = body.trailers().cloned().unwrap_or_default();
                    let s = Status::from_trailers(
                        t.get("grpc-status").map(|v| v.as_bytes()),
                        t.get("grpc-message").map(|v| v.as_bytes()),
                    );
                    if s.code != Code::OK {
                        return self.fail(s);
                    }
                    self.status = Some(s);
                    return None;
                }
            }
        }
    }
}
