//! The shared channel (seeds/002): one cloneable, `Send + Sync` handle that any number of
//! tasks and threads use at once, multiplexing their calls over a few HTTP/2 connections.
//!
//! * **Connections.** It keeps [`ChannelConfig::connections`] connections (default
//!   [`DEFAULT_CONNECTIONS`]) to the addresses its [`Resolver`] gives — one target or
//!   several — spread fewest-per-address first. They are dialled on first use (or by
//!   [`Channel::connect`]) in background tasks, so a call never waits for more than the
//!   first one.
//! * **Picking.** Each call goes to the usable connection with the fewest calls in flight
//!   (ties rotate). A connection is full at the peer's SETTINGS_MAX_CONCURRENT_STREAMS
//!   (published by the driver, [`h2mux::conn::ConnectionHandle::peer_max_concurrent_streams`]);
//!   when every connection is full the channel opens one more, up to
//!   [`ChannelConfig::max_connections`], and meanwhile the call queues in the least-loaded
//!   connection (the driver opens it when a stream slot frees up).
//! * **Failures.** A connection that received GOAWAY or broke is dropped from the picker at
//!   once (its calls in flight finish on it) and replaced in the background. Failed dials are
//!   retried with [`Backoff`] (gRPC's connection-backoff rule), per address. While no
//!   connection is up and the last dial failed, calls fail fast with UNAVAILABLE unless
//!   [`CallOptions::wait_for_ready`] is set.
//! * **State.** [`Channel::state`] and [`Channel::watch_state`] give the gRPC connectivity
//!   states: idle, connecting, ready, transient failure, shutdown.
//! * **Keepalive.** [`ChannelConfig::keepalive`] turns on the driver's keepalive PINGs
//!   (`Config::keepalive_interval` / `keepalive_timeout`): a peer that stops answering ends
//!   the connection, which is then replaced. Off by default, as in gRPC (servers punish
//!   frequent pings).
//! * **Close.** [`Channel::close`] sends GOAWAY on every connection: calls in flight finish,
//!   new calls fail with UNAVAILABLE. Dropping the last clone closes the same way.
//!
//! The hot path takes one shared read lock and touches per-connection atomics; the dialler's
//! mutex is taken only while the channel is below its connection count.
//!
//! The default of [`DEFAULT_CONNECTIONS`] = 1 is a measurement: 100 workers doing unary
//! calls on this 2-core machine got about the same calls/s from 1, 2 and 4 connections
//! (BENCHMARKS.md, `h2mux bench --only rpc-shared`); more connections only help when one
//! connection's flow-control window or the server's stream limit is the bottleneck, and
//! the channel opens extra connections by itself for the latter.

mod backoff;
mod call;
pub mod resolver;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use h2mux::proto::HeaderField;
use h2mux::Client;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

pub use backoff::Backoff;
pub use call::OutgoingCall;
pub use resolver::{DnsResolver, Resolver, StaticResolver};

use crate::codec::Codec;
use crate::compression;
use crate::message::DEFAULT_MAX_RECEIVE_SIZE;
use crate::metadata::Metadata;
use crate::status::{Code, Status};
use backoff::Jitter;

/// Connections a channel keeps by default (see the module docs for the measurement).
pub const DEFAULT_CONNECTIONS: usize = 1;

/// Where to connect and how.
#[derive(Clone)]
pub struct ChannelConfig {
    /// `host:port` of the server (resolved by DNS unless an `ip:port` literal, or use
    /// [`Channel::with_resolver`]).
    pub target: String,
    /// Connections kept open (default [`DEFAULT_CONNECTIONS`]).
    pub connections: usize,
    /// Most connections, counting the extra ones opened when every connection is at the
    /// peer's stream limit (default 4 × `connections`, at least 4).
    pub max_connections: usize,
    /// TLS: server name to verify and the client configuration (None: h2c).
    pub tls: Option<(String, Arc<rustls::ClientConfig>)>,
    /// `:authority` of requests (default: the target, or the TLS server name).
    pub authority: Option<String>,
    /// Largest accepted response message (default 4 MiB); larger → RESOURCE_EXHAUSTED.
    pub max_receive_message_size: usize,
    /// Largest request message sent (default 4 GiB − 1, the format's limit); larger →
    /// RESOURCE_EXHAUSTED without sending it.
    pub max_send_message_size: usize,
    /// Redial delays after failed dials.
    pub backoff: Backoff,
    /// Longest a dial (TCP, TLS, first bytes) may take (default 20 s, gRPC's minimum).
    pub connect_timeout: Duration,
    /// The HTTP/2 settings of every connection (keepalive: see [`ChannelConfig::keepalive`]).
    pub http2: h2mux::Config,
    /// `user-agent` sent with every call.
    pub user_agent: String,
}

impl ChannelConfig {
    /// Defaults for `target` (h2c).
    pub fn new(target: &str) -> ChannelConfig {
        ChannelConfig {
            target: target.to_string(),
            connections: DEFAULT_CONNECTIONS,
            max_connections: (4 * DEFAULT_CONNECTIONS).max(4),
            tls: None,
            authority: None,
            max_receive_message_size: DEFAULT_MAX_RECEIVE_SIZE,
            max_send_message_size: u32::MAX as usize,
            backoff: Backoff::default(),
            connect_timeout: Duration::from_secs(20),
            http2: h2mux::Config::default(),
            user_agent: format!("h2mux-rpc/{}", env!("CARGO_PKG_VERSION")),
        }
    }

    /// Keeps `n` connections (and allows 4 × `n` at most).
    pub fn connections(mut self, n: usize) -> ChannelConfig {
        self.connections = n.max(1);
        self.max_connections = (4 * self.connections).max(4);
        self
    }

    /// Over TLS, verifying the certificate for `server_name` with `tls` (ALPN h2 required;
    /// see `h2mux::tls` for verified, private-root and insecure configurations).
    pub fn tls(mut self, server_name: &str, tls: Arc<rustls::ClientConfig>) -> ChannelConfig {
        self.tls = Some((server_name.to_string(), tls));
        self
    }

    /// Sends a keepalive PING after `interval` without traffic and drops the connection
    /// when one is not answered within `timeout`.
    pub fn keepalive(mut self, interval: Duration, timeout: Duration) -> ChannelConfig {
        self.http2.keepalive_interval = Some(interval);
        self.http2.keepalive_timeout = timeout;
        self
    }
}

/// Connectivity of a channel (the gRPC connectivity-state names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// No connection and no dial yet (or since the last connection went away cleanly).
    Idle,
    /// Dialling, nothing usable yet.
    Connecting,
    /// At least one connection takes calls.
    Ready,
    /// The last dial failed; redials run after the backoff and calls fail fast.
    TransientFailure,
    /// Closed by [`Channel::close`].
    Shutdown,
}

/// Options of one call.
#[derive(Clone, Default)]
pub struct CallOptions {
    /// Deadline from the call's start: sent as `grpc-timeout` and enforced locally (the call
    /// ends with DEADLINE_EXCEEDED and its stream is cancelled).
    pub timeout: Option<Duration>,
    /// Custom metadata (ASCII and `-bin` keys).
    pub metadata: Metadata,
    /// Compress request messages with gzip (replies are decompressed whatever they use).
    pub gzip: bool,
    /// Wait for a connection (until the deadline) instead of failing fast with UNAVAILABLE
    /// while the channel is in transient failure.
    pub wait_for_ready: bool,
}

impl CallOptions {
    /// Options with a deadline.
    pub fn timeout(t: Duration) -> CallOptions {
        CallOptions {
            timeout: Some(t),
            ..CallOptions::default()
        }
    }
}

/// One connection of the channel, as the picker sees it.
pub(crate) struct Conn {
    client: Client,
    address: String,
    active: AtomicUsize,
}

impl Conn {
    fn usable(&self) -> bool {
        !self.client.connection().is_going_away()
    }

    fn has_room(&self, active: usize) -> bool {
        (active as u64) < u64::from(self.client.connection().peer_max_concurrent_streams())
    }
}

/// What the channel knows of one address's dials.
#[derive(Default)]
struct AddressHealth {
    failures: u32,
    retry_at: Option<Instant>,
}

/// The dialler's book-keeping (a std mutex, never held across an await).
struct Dialer {
    /// A call or `connect` asked for connections: keep the count up from now on.
    started: bool,
    /// Dial tasks alive (waiting for their backoff or connecting), and of those the ones
    /// for extra connections and the ones connecting now.
    in_flight: usize,
    extra_in_flight: usize,
    connecting: usize,
    addresses: Vec<String>,
    resolved_at: Option<Instant>,
    health: HashMap<String, AddressHealth>,
    dialling_to: HashMap<String, usize>,
    /// The latest dial (or resolution) failed, and why.
    failing: bool,
    last_error: Option<String>,
    jitter: Jitter,
    rotate: usize,
}

/// Key under which resolution failures back off.
const RESOLVER_KEY: &str = "(resolver)";

/// How a dial task ended.
enum DialOutcome {
    Connected(Client),
    Failed(String),
    /// The channel was shut down first.
    Abandoned,
}

struct Inner {
    cfg: ChannelConfig,
    resolver: Box<dyn Resolver>,
    conns: RwLock<Vec<Arc<Conn>>>,
    dialer: Mutex<Dialer>,
    /// Mirrors `dialer.in_flight - dialer.extra_in_flight`, read on the hot path.
    dials_for_count: AtomicUsize,
    state: watch::Sender<State>,
    /// Woken whenever the set of connections or the dialler's state changes.
    changed: Notify,
    shutdown: AtomicBool,
    rotate: AtomicUsize,
    /// `:method`, `:scheme`, `:authority` — the pseudo-headers before `:path`.
    pseudo: [HeaderField; 3],
    /// `content-type`, `te`, `grpc-accept-encoding`, `user-agent`.
    common: [HeaderField; 4],
}

/// A shared channel; clone it freely (clones share everything).
#[derive(Clone)]
pub struct Channel {
    inner: Arc<Inner>,
}

/// A snapshot of one connection, for monitoring and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// The address it was dialled to.
    pub address: String,
    /// Calls in flight on it.
    pub active_calls: usize,
    /// The peer's SETTINGS_MAX_CONCURRENT_STREAMS (u32::MAX until its SETTINGS arrived).
    pub peer_max_concurrent_streams: u32,
}

fn unavailable(msg: impl Into<String>) -> Status {
    Status::new(Code::UNAVAILABLE, msg)
}

pub(crate) fn deadline_exceeded() -> Status {
    Status::new(Code::DEADLINE_EXCEEDED, "deadline exceeded")
}

impl Channel {
    /// A channel to `cfg.target`; connections open on the first call.
    pub fn new(cfg: ChannelConfig) -> Channel {
        let resolver = resolver::for_target(&cfg.target);
        Channel::with_boxed_resolver(cfg, resolver)
    }

    /// A channel whose addresses come from `resolver` (`cfg.target` is then only the
    /// default `:authority` and TLS name).
    pub fn with_resolver(cfg: ChannelConfig, resolver: impl Resolver) -> Channel {
        Channel::with_boxed_resolver(cfg, Box::new(resolver))
    }

    fn with_boxed_resolver(mut cfg: ChannelConfig, resolver: Box<dyn Resolver>) -> Channel {
        cfg.connections = cfg.connections.max(1);
        cfg.max_connections = cfg.max_connections.max(cfg.connections);
        let authority = cfg
            .authority
            .clone()
            .or_else(|| cfg.tls.as_ref().map(|(name, _)| name.clone()))
            .unwrap_or_else(|| cfg.target.clone());
        let scheme: &'static [u8] = if cfg.tls.is_some() { b"https" } else { b"http" };
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        let field = |n: &'static [u8], v: Bytes| HeaderField::new(Bytes::from_static(n), v);
        let pseudo = [
            field(b":method", Bytes::from_static(b"POST")),
            field(b":scheme", Bytes::from_static(scheme)),
            field(b":authority", Bytes::from(authority)),
        ];
        let common = [
            field(
                b"content-type",
                Bytes::from_static(crate::CONTENT_TYPE.as_bytes()),
            ),
            field(b"te", Bytes::from_static(b"trailers")),
            field(
                b"grpc-accept-encoding",
                Bytes::from_static(compression::ACCEPT_ENCODING.as_bytes()),
            ),
            field(b"user-agent", Bytes::from(cfg.user_agent.clone())),
        ];
        let (state, _) = watch::channel(State::Idle);
        Channel {
            inner: Arc::new(Inner {
                cfg,
                resolver,
                conns: RwLock::new(Vec::new()),
                dialer: Mutex::new(Dialer {
                    started: false,
                    in_flight: 0,
                    extra_in_flight: 0,
                    connecting: 0,
                    addresses: Vec::new(),
                    resolved_at: None,
                    health: HashMap::new(),
                    dialling_to: HashMap::new(),
                    failing: false,
                    last_error: None,
                    jitter: Jitter::seeded(seed),
                    rotate: 0,
                }),
                dials_for_count: AtomicUsize::new(0),
                state,
                changed: Notify::new(),
                shutdown: AtomicBool::new(false),
                rotate: AtomicUsize::new(0),
                pseudo,
                common,
            }),
        }
    }

    /// Connectivity now.
    pub fn state(&self) -> State {
        *self.inner.state.borrow()
    }

    /// A receiver that sees every change of [`Channel::state`].
    pub fn watch_state(&self) -> watch::Receiver<State> {
        self.inner.state.subscribe()
    }

    /// Dials now and waits until a connection is up (or the first dial failed).
    pub async fn connect(&self) -> Result<(), Status> {
        let deadline = Instant::now() + self.inner.cfg.connect_timeout;
        let conn = self
            .inner
            .wait_for_connection(Some(deadline), false)
            .await?;
        drop(conn);
        Ok(())
    }

    /// Closes every connection gracefully (GOAWAY; calls in flight finish); new calls fail
    /// with UNAVAILABLE.
    pub fn close(&self) {
        self.inner.close();
    }

    /// Usable connections now.
    pub fn connection_count(&self) -> usize {
        self.inner
            .read_conns()
            .iter()
            .filter(|c| c.usable())
            .count()
    }

    /// A snapshot of the usable connections.
    pub fn connections(&self) -> Vec<ConnectionInfo> {
        self.inner
            .read_conns()
            .iter()
            .filter(|c| c.usable())
            .map(|c| ConnectionInfo {
                address: c.address.clone(),
                active_calls: c.active.load(Ordering::Relaxed),
                peer_max_concurrent_streams: c.client.connection().peer_max_concurrent_streams(),
            })
            .collect()
    }

    /// Starts a call of any kind: send request messages with [`OutgoingCall::send`], end
    /// them with [`OutgoingCall::finish`] (or send the last one with
    /// [`OutgoingCall::send_last`]), read replies with [`OutgoingCall::recv`]. Dropping the
    /// call before its status arrived cancels it (RST_STREAM CANCEL).
    pub async fn start(&self, path: &str, opts: CallOptions) -> Result<OutgoingCall, Status> {
        self.open_call(path, opts, None).await
    }

    /// Opens a call and, if given, queues its first request message right behind the
    /// HEADERS — both commands reach the connection task in one batch, leave in one write,
    /// and the caller wakes once for both answers instead of once per step.
    async fn open_call(
        &self,
        path: &str,
        opts: CallOptions,
        first: Option<(&[u8], bool)>,
    ) -> Result<OutgoingCall, Status> {
        let deadline = opts.timeout.map(|t| Instant::now() + t);
        // A connection can go away between the pick and the open; the stream was never sent
        // then, so another connection may take it.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let conn = self.inner.pick(deadline, opts.wait_for_ready).await?;
            let active = call::ActiveCall::new(conn);
            let fields = self.inner.request_fields(path, &opts);
            let (stream, opened) = active.conn().client.connection().start_open(fields, false);
            let mut call = OutgoingCall::new(
                active,
                stream,
                deadline,
                opts.gzip,
                self.inner.cfg.max_send_message_size,
                self.inner.cfg.max_receive_message_size,
            );
            let sent = match first {
                Some((msg, last)) => Some(call.queue_message(msg, last)?),
                None => None,
            };
            let opened = call::within(deadline, opened)
                .await
                .ok_or_else(deadline_exceeded)?;
            match opened {
                Ok(()) => {
                    if let Some(sent) = sent {
                        call.await_sent(sent).await?;
                    }
                    return Ok(call);
                }
                Err(e) if attempts >= 3 => {
                    call.never_opened();
                    return Err(unavailable(format!("cannot open a stream: {e}")));
                }
                Err(_) => call.never_opened(),
            }
        }
    }

    /// A unary call: one request message, one reply.
    pub async fn unary(
        &self,
        path: &str,
        request: &[u8],
        opts: CallOptions,
    ) -> Result<Bytes, Status> {
        let mut call = self.open_call(path, opts, Some((request, true))).await?;
        call.recv_only_message().await
    }

    /// A server-streaming call: sends `request` and ends the request side; read the replies
    /// with [`OutgoingCall::recv`].
    pub async fn server_streaming(
        &self,
        path: &str,
        request: &[u8],
        opts: CallOptions,
    ) -> Result<OutgoingCall, Status> {
        self.open_call(path, opts, Some((request, true))).await
    }

    /// A client-streaming call: sends every request, then waits for the one reply.
    pub async fn client_streaming<I, B>(
        &self,
        path: &str,
        requests: I,
        opts: CallOptions,
    ) -> Result<Bytes, Status>
    where
        I: IntoIterator<Item = B>,
        B: AsRef<[u8]>,
    {
        let mut call = self.start(path, opts).await?;
        for r in requests {
            call.send(r.as_ref()).await?;
        }
        call.finish().await?;
        call.recv_only_message().await
    }

    /// A unary call with typed messages through `codec`.
    pub async fn unary_with<C: Codec>(
        &self,
        codec: &C,
        path: &str,
        request: &C::Encode,
        opts: CallOptions,
    ) -> Result<C::Decode, Status> {
        let mut buf = bytes::BytesMut::new();
        codec.encode(request, &mut buf)?;
        let reply = self.unary(path, &buf, opts).await?;
        codec.decode(reply)
    }
}

impl Inner {
    fn read_conns(&self) -> std::sync::RwLockReadGuard<'_, Vec<Arc<Conn>>> {
        self.conns.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_conns(&self) -> std::sync::RwLockWriteGuard<'_, Vec<Arc<Conn>>> {
        self.conns.write().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_dialer(&self) -> std::sync::MutexGuard<'_, Dialer> {
        self.dialer.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn is_shutdown(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }

    fn request_fields(&self, path: &str, opts: &CallOptions) -> Vec<HeaderField> {
        let mut f = Vec::with_capacity(10 + opts.metadata.len());
        f.extend(self.pseudo.iter().cloned());
        f.push(HeaderField::new(
            Bytes::from_static(b":path"),
            Bytes::copy_from_slice(path.as_bytes()),
        ));
        f.extend(self.common.iter().cloned());
        if let Some(t) = opts.timeout {
            f.push(HeaderField::new(
                Bytes::from_static(b"grpc-timeout"),
                Bytes::from(crate::timeout::format(t)),
            ));
        }
        if opts.gzip {
            f.push(HeaderField::new(
                Bytes::from_static(b"grpc-encoding"),
                Bytes::from_static(b"gzip"),
            ));
        }
        for (k, v) in opts.metadata.to_fields() {
            f.push(HeaderField::new(Bytes::from(k), Bytes::from(v)));
        }
        f
    }

    /// The usable connection with the fewest calls in flight (ties rotate), without counting
    /// the call yet. Also notices connections that went away and a full channel.
    fn select(self: &Arc<Inner>) -> Option<Arc<Conn>> {
        let (best, usable, total, stale, full) = {
            let conns = self.read_conns();
            let n = conns.len();
            if n == 0 {
                (None, 0, 0, false, true)
            } else {
                let start = if n > 1 {
                    self.rotate.fetch_add(1, Ordering::Relaxed) % n
                } else {
                    0
                };
                let mut best: Option<&Arc<Conn>> = None;
                let mut best_active = usize::MAX;
                let (mut usable, mut stale, mut full) = (0, false, true);
                for i in 0..n {
                    let c = &conns[(start + i) % n];
                    if !c.usable() {
                        stale = true;
                        continue;
                    }
                    usable += 1;
                    let a = c.active.load(Ordering::Relaxed);
                    if c.has_room(a) {
                        full = false;
                    }
                    if a < best_active {
                        best = Some(c);
                        best_active = a;
                    }
                }
                (best.cloned(), usable, n, stale, full)
            }
        };
        if stale {
            self.prune();
        }
        let dialling = self.dials_for_count.load(Ordering::Relaxed);
        if usable + dialling < self.cfg.connections {
            self.maintain(true);
        }
        if best.is_some() && full && total < self.cfg.max_connections {
            self.dial_extra();
        }
        best
    }

    /// A connection for a new call, counted as active on it.
    async fn pick(
        self: &Arc<Inner>,
        deadline: Option<Instant>,
        wait_for_ready: bool,
    ) -> Result<Arc<Conn>, Status> {
        if self.is_shutdown() {
            return Err(unavailable("the channel is shut down"));
        }
        let conn = match self.select() {
            Some(c) => c,
            None => self.wait_for_connection(deadline, wait_for_ready).await?,
        };
        conn.active.fetch_add(1, Ordering::Relaxed);
        Ok(conn)
    }

    /// The slow path: no usable connection. Waits for a dial (failing fast when the last one
    /// failed and none is under way, unless `wait_for_ready`).
    async fn wait_for_connection(
        self: &Arc<Inner>,
        deadline: Option<Instant>,
        wait_for_ready: bool,
    ) -> Result<Arc<Conn>, Status> {
        loop {
            if self.is_shutdown() {
                return Err(unavailable("the channel is shut down"));
            }
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(c) = self.select() {
                return Ok(c);
            }
            self.maintain(true);
            {
                let d = self.lock_dialer();
                if d.failing && d.connecting == 0 && !wait_for_ready {
                    return Err(unavailable(match &d.last_error {
                        Some(e) => e.clone(),
                        None => format!("no connection to {}", self.cfg.target),
                    }));
                }
            }
            match deadline {
                Some(d) => tokio::time::timeout_at(d, changed)
                    .await
                    .map_err(|_| deadline_exceeded())?,
                None => changed.await,
            }
        }
    }

    /// Drops connections that take no new calls from the picker (their calls go on).
    fn prune(self: &Arc<Inner>) {
        let removed: Vec<Arc<Conn>> = {
            let mut conns = self.write_conns();
            let (keep, gone): (Vec<_>, Vec<_>) = conns.drain(..).partition(|c| c.usable());
            *conns = keep;
            gone
        };
        if !removed.is_empty() {
            // Our side goes away too (GOAWAY): its calls in flight finish, then it closes.
            for c in &removed {
                c.client.close();
            }
            self.update_state();
            self.changed.notify_waiters();
            self.maintain(false);
        }
    }

    /// Starts dial tasks until usable + dialling reaches the configured count (`start`:
    /// the channel is being used, so keep it filled from now on).
    fn maintain(self: &Arc<Inner>, start: bool) {
        if self.is_shutdown() {
            return;
        }
        // Counted under the dialer lock: a dial that ends moves its connection from
        // "dialling" to the list under that lock too, so it is never missed nor counted twice
        // (lock order: dialer, then connections).
        let mut d = self.lock_dialer();
        let usable = self.read_conns().iter().filter(|c| c.usable()).count();
        if start {
            d.started = true;
        }
        if !d.started {
            return;
        }
        let dialling = d.in_flight - d.extra_in_flight;
        let want = self.cfg.connections.saturating_sub(usable + dialling);
        for _ in 0..want {
            d.in_flight += 1;
            tokio::spawn(dial_task(Arc::downgrade(self), false));
        }
        self.dials_for_count
            .store(d.in_flight - d.extra_in_flight, Ordering::Relaxed);
    }

    /// Every connection is at the peer's stream limit: open one more (one at a time).
    fn dial_extra(self: &Arc<Inner>) {
        let mut d = self.lock_dialer();
        if d.extra_in_flight > 0 || self.is_shutdown() {
            return;
        }
        d.in_flight += 1;
        d.extra_in_flight += 1;
        tokio::spawn(dial_task(Arc::downgrade(self), true));
    }

    fn update_state(&self) {
        let next = if self.is_shutdown() {
            State::Shutdown
        } else if self.read_conns().iter().any(|c| c.usable()) {
            State::Ready
        } else {
            let d = self.lock_dialer();
            if d.connecting > 0 {
                State::Connecting
            } else if d.failing {
                State::TransientFailure
            } else {
                State::Idle
            }
        };
        self.state.send_if_modified(|s| {
            let change = *s != next && *s != State::Shutdown;
            if change {
                *s = next;
            }
            change
        });
    }

    fn close(&self) {
        self.shutdown.store(true, Ordering::Release);
        let conns: Vec<Arc<Conn>> = std::mem::take(&mut *self.write_conns());
        for c in conns {
            c.client.close();
        }
        self.state.send_replace(State::Shutdown);
        self.changed.notify_waiters();
    }

    /// The addresses to dial, resolved again when stale or after a failure.
    async fn addresses(&self) -> Result<Vec<String>, String> {
        {
            let d = self.lock_dialer();
            let fresh = d
                .resolved_at
                .is_some_and(|t| t.elapsed() < resolver::RESOLVE_INTERVAL);
            if fresh && !d.addresses.is_empty() {
                return Ok(d.addresses.clone());
            }
        }
        let list = self.resolver.resolve().await?;
        let mut d = self.lock_dialer();
        d.addresses = list.clone();
        d.resolved_at = Some(Instant::now());
        d.health.remove(RESOLVER_KEY);
        Ok(list)
    }

    /// The address for the next dial — fewest connections (live and being dialled) among
    /// those not backing off, else the one whose backoff ends first — and how long to wait.
    fn choose(&self, list: &[String]) -> (String, Duration) {
        let mut per_address: HashMap<String, usize> = HashMap::new();
        for c in self.read_conns().iter().filter(|c| c.usable()) {
            *per_address.entry(c.address.clone()).or_default() += 1;
        }
        let now = Instant::now();
        let mut d = self.lock_dialer();
        d.rotate = d.rotate.wrapping_add(1);
        let n = list.len().max(1);
        // (backing off, when it may dial, connections it has) — smallest wins.
        let mut best: Option<((bool, Instant, usize), &String)> = None;
        for i in 0..list.len() {
            let a = &list[(d.rotate + i) % n];
            let retry_at = d.health.get(a).and_then(|h| h.retry_at).unwrap_or(now);
            let waiting = retry_at > now;
            let load = per_address.get(a.as_str()).copied().unwrap_or(0)
                + d.dialling_to.get(a).copied().unwrap_or(0);
            let rank = (waiting, retry_at.max(now), load);
            if best.as_ref().is_none_or(|(b, _)| rank < *b) {
                best = Some((rank, a));
            }
        }
        let (at, address) = match best {
            Some(((_, at, _), a)) => (at, a.clone()),
            None => (now, self.cfg.target.clone()),
        };
        *d.dialling_to.entry(address.clone()).or_default() += 1;
        (address, at.saturating_duration_since(now))
    }

    async fn dial(&self, address: &str) -> Result<Client, String> {
        let cfg = &self.cfg;
        let dialled = match &cfg.tls {
            None => Client::connect_with(address, cfg.http2.clone()).await,
            Some((name, tls)) => {
                Client::connect_tls(address, name, tls.clone(), cfg.http2.clone()).await
            }
        };
        dialled.map_err(|e| e.to_string())
    }

    /// Records the end of a dial task: `client` on success, else the error, under `key`
    /// (the address, or the resolver).
    fn dial_done(
        self: &Arc<Inner>,
        key: &str,
        outcome: DialOutcome,
        extra: bool,
        was_connecting: bool,
    ) {
        let failed = matches!(outcome, DialOutcome::Failed(_));
        let mut connected = None;
        {
            let mut d = self.lock_dialer();
            d.in_flight -= 1;
            if extra {
                d.extra_in_flight -= 1;
            }
            if was_connecting {
                d.connecting -= 1;
            }
            if let Some(n) = d.dialling_to.get_mut(key) {
                *n -= 1;
                if *n == 0 {
                    d.dialling_to.remove(key);
                }
            }
            match &outcome {
                DialOutcome::Abandoned => {}
                DialOutcome::Connected(_) => {
                    d.health.remove(key);
                    d.failing = false;
                    d.last_error = None;
                }
                DialOutcome::Failed(e) => {
                    let unit = d.jitter.next_unit();
                    let h = d.health.entry(key.to_string()).or_default();
                    h.failures = h.failures.saturating_add(1);
                    let delay = self.cfg.backoff.delay(h.failures, unit);
                    h.retry_at = Some(Instant::now() + delay);
                    d.failing = true;
                    d.last_error = Some(e.clone());
                    d.resolved_at = None;
                }
            }
            // The new connection joins the list before the dialer lock is let go: between
            // the two, `maintain` would see it neither dialling nor usable and dial another.
            if let DialOutcome::Connected(client) = outcome {
                if self.is_shutdown() {
                    client.close();
                } else {
                    let conn = Arc::new(Conn {
                        client,
                        address: key.to_string(),
                        active: AtomicUsize::new(0),
                    });
                    self.write_conns().push(conn.clone());
                    connected = Some(conn);
                }
            }
            self.dials_for_count
                .store(d.in_flight - d.extra_in_flight, Ordering::Relaxed);
        }
        if let Some(conn) = connected {
            tokio::spawn(watch_connection(Arc::downgrade(self), conn));
        }
        self.update_state();
        self.changed.notify_waiters();
        if failed && !extra {
            // Redial (after the backoff) to keep the count up.
            self.maintain(false);
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        for c in self
            .conns
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            c.client.close();
        }
    }
}

/// One dial: resolve (if needed), pick an address, wait for its backoff, connect. Holds
/// only a weak reference while waiting, so a dropped channel stops redialling.
async fn dial_task(weak: Weak<Inner>, extra: bool) {
    let Some(inner) = weak.upgrade() else { return };
    let wait = {
        let d = inner.lock_dialer();
        d.health
            .get(RESOLVER_KEY)
            .and_then(|h| h.retry_at)
            .map(|t| t.saturating_duration_since(Instant::now()))
    };
    if let Some(w) = wait.filter(|w| !w.is_zero()) {
        drop(inner);
        tokio::time::sleep(w).await;
        let Some(again) = weak.upgrade() else { return };
        return finish_dial(again, weak, extra).await;
    }
    finish_dial(inner, weak, extra).await
}

async fn finish_dial(inner: Arc<Inner>, weak: Weak<Inner>, extra: bool) {
    if inner.is_shutdown() {
        inner.dial_done(RESOLVER_KEY, DialOutcome::Abandoned, extra, false);
        return;
    }
    let resolved = tokio::time::timeout(inner.cfg.connect_timeout, inner.addresses()).await;
    let list = match resolved {
        Ok(Ok(list)) if !list.is_empty() => Ok(list),
        Ok(Ok(_)) => Err("the resolver returned no address".to_string()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err("address resolution timed out".to_string()),
    }
    .unwrap_or_else(|e| {
        inner.dial_done(RESOLVER_KEY, DialOutcome::Failed(e), extra, false);
        Vec::new()
    });
    if list.is_empty() {
        return;
    }
    let (address, wait) = inner.choose(&list);
    let inner = if wait.is_zero() {
        inner
    } else {
        drop(inner);
        tokio::time::sleep(wait).await;
        match weak.upgrade() {
            Some(i) => i,
            None => return,
        }
    };
    if inner.is_shutdown() {
        inner.dial_done(&address, DialOutcome::Abandoned, extra, false);
        return;
    }
    inner.lock_dialer().connecting += 1;
    inner.update_state();
    let outcome = match tokio::time::timeout(inner.cfg.connect_timeout, inner.dial(&address)).await
    {
        Ok(Ok(client)) => DialOutcome::Connected(client),
        Ok(Err(e)) => DialOutcome::Failed(e),
        Err(_) => DialOutcome::Failed(format!(
            "dial timed out after {:?}",
            inner.cfg.connect_timeout
        )),
    };
    inner.dial_done(&address, outcome, extra, true);
}

/// Waits for a connection's end, then takes it out and lets the channel replace it.
async fn watch_connection(weak: Weak<Inner>, conn: Arc<Conn>) {
    conn.client.connection().closed().await;
    if let Some(inner) = weak.upgrade() {
        inner.prune();
        inner.update_state();
    }
}
