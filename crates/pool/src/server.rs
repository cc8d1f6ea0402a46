//! The server pool: accepts the client pool's TLS connections and answers its stream
//! requests (the dialled side of seeds/001).
//!
//! # What it does with a connection
//! 1. **At accept**, before any TLS byte: the peer's address is compared with the allowed
//!    client IP as a parsed address ([`crate::access`]); a refused peer is dropped at once.
//! 2. The **TLS handshake** runs on its own task with a timeout (a silent client holds only
//!    its own task); TLS 1.3 and ALPN `h2` are required, anything else is closed.
//! 3. Every **stream request** is checked on its own task: `POST /stream` (else 404), the
//!    first octet `0x00` (else 400), room in the pool (else 404); then `:status 200` and the
//!    4 ID octets go back and the stream waits in the pool for [`ServerPool::incoming_get`].
//!
//! # IDs and the control stream
//! The first stream of each client connection (a *session*) gets ID `00000000`: it is that
//! client's control stream and is handed out only by [`ServerPool::incoming_control`], never
//! by `incoming_get`, so a data consumer cannot take it by accident (in the Go library it is
//! simply the first stream `IncomingGet` returns). Every other stream gets 4 octets from the
//! OS's cryptographic RNG, drawn again if another live stream of the pool has them.
//!
//! # Capacity
//! At most `max_capacity` data streams wait in the pool; past that, requests are answered
//! 404 (the client backs off). A stream handed out no longer counts: the pool serves any
//! number of streams over a connection's life (the Go server stalled after `maxCap`).
//!
//! # Liveness
//! When a session's connection ends, its waiting streams leave the pool at once; a waiting
//! stream the client reset is dropped by the next hand-out or by the once-a-second sweep.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use h2mux::conn::{self, ConnectionHandle, StreamEvent, StreamHandle, StreamSender};
use h2mux::proto::{HeaderField, Role};
use tokio::sync::{oneshot, watch};

use crate::access;
use crate::error::PoolError;
use crate::id::PoolStreamId;
use crate::protocol::{check_hello, check_request, Refusal};
use crate::stream::{discard, IdHold, PoolStream};
use crate::transport::{
    closed_signal, log, server_handshake, server_tls_h2, spawn_counted, ConnInfo, Counters,
    KillSwitch, Killable, Level, Listen, LogSink, Transport,
};
use crate::PoolStats;

/// Configuration of a [`ServerPool`].
pub struct ServerConfig {
    /// Most data streams waiting in the pool (requests beyond get 404).
    pub max_capacity: usize,
    /// The only client address allowed to connect (None: any).
    pub allowed_ip: Option<IpAddr>,
    /// The TLS configuration (required; its ALPN list is replaced by `h2` alone).
    pub tls: Arc<rustls::ServerConfig>,
    /// Where connections come from.
    pub listen: Listen,
    /// Keepalive PING period on idle connections; a PING unanswered as long ends the
    /// connection. Default 30 s.
    pub keep_alive: Duration,
    /// Most time a TLS handshake may take. Default 10 s.
    pub handshake_timeout: Duration,
    /// Most time between a stream's request and its first octet. Default 10 s.
    pub setup_timeout: Duration,
    /// HTTP/2 settings of each connection (default: h2mux's, with 4096 concurrent streams).
    pub h2: h2mux::Config,
    /// Where log lines go (None: nowhere).
    pub log: Option<LogSink>,
}

impl ServerConfig {
    /// Defaults around the required parts.
    pub fn new(max_capacity: usize, tls: Arc<rustls::ServerConfig>, listen: Listen) -> Self {
        ServerConfig {
            max_capacity,
            allowed_ip: None,
            tls,
            listen,
            keep_alive: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            setup_timeout: Duration::from_secs(10),
            h2: pool_h2_config(),
            log: None,
        }
    }
}

/// The HTTP/2 settings pools use by default: h2mux's, with room for many streams, and
/// reset limits fit for a pool, where every stream an application abandons is one
/// RST_STREAM: 10 000 per 10 s instead of 200 (the Rapid Reset defence still ends a
/// connection that resets faster than that; a reset costs the pool no memory, and the streams
/// a peer can open are bounded by the concurrency limit and, on the server, the capacity).
pub fn pool_h2_config() -> h2mux::Config {
    h2mux::Config {
        max_concurrent_streams: 4096,
        max_pending_accept: 4096,
        max_queued_streams: 4096,
        max_resets_received: 10_000,
        max_resets_sent: 10_000,
        ..h2mux::Config::default()
    }
}

pub(crate) fn with_keepalive(mut h2: h2mux::Config, period: Duration) -> h2mux::Config {
    if !period.is_zero() {
        h2.keepalive_interval = Some(period);
        h2.keepalive_timeout = period;
    }
    h2
}

struct Session {
    conn: ConnectionHandle,
    kill: Arc<KillSwitch>,
    control_given: bool,
}

/// Streams waiting to be handed out, and callers waiting for one.
#[derive(Default)]
struct Queue {
    streams: VecDeque<PoolStream>,
    waiters: VecDeque<oneshot::Sender<PoolStream>>,
}

impl Queue {
    /// The oldest live stream, or a place in the line of waiting callers.
    fn take(&mut self) -> Result<PoolStream, oneshot::Receiver<PoolStream>> {
        while let Some(mut s) = self.streams.pop_front() {
            if s.poll_alive() {
                return Ok(s);
            }
            discard([s]);
        }
        let (tx, rx) = oneshot::channel();
        self.waiters.retain(|w| !w.is_closed());
        self.waiters.push_back(tx);
        Err(rx)
    }

    /// A new stream: to the first caller still waiting, else into the queue.
    fn offer(&mut self, mut s: PoolStream) {
        while let Some(w) = self.waiters.pop_front() {
            match w.send(s) {
                Ok(()) => return,
                Err(back) => s = back,
            }
        }
        self.streams.push_back(s);
    }

    /// Removes the streams `gone` says are gone.
    fn remove(&mut self, mut gone: impl FnMut(&mut PoolStream) -> bool) -> Vec<PoolStream> {
        let mut out = Vec::new();
        let mut keep = VecDeque::with_capacity(self.streams.len());
        for mut s in self.streams.drain(..) {
            if gone(&mut s) {
                out.push(s);
            } else {
                keep.push_back(s);
            }
        }
        self.streams = keep;
        out
    }
}

#[derive(Default)]
struct State {
    /// Data streams.
    data: Queue,
    /// Requests past the capacity check whose answer is not sent yet.
    reserved: usize,
    /// Control streams (one per session).
    control: Queue,
    sessions: HashMap<u64, Session>,
    next_session: u64,
}

struct Shared {
    max_capacity: usize,
    allowed_ip: Option<IpAddr>,
    tls: Arc<rustls::ServerConfig>,
    handshake_timeout: Duration,
    setup_timeout: Duration,
    h2: h2mux::Config,
    log: Option<LogSink>,
    state: Mutex<State>,
    ids: Arc<Mutex<HashSet<PoolStreamId>>>,
    counters: Arc<Counters>,
    accepting: AtomicBool,
    closed: watch::Sender<bool>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }
    fn error(&self, msg: impl FnOnce() -> String) {
        self.counters.errors.fetch_add(1, Ordering::Relaxed);
        log(&self.log, Level::Warn, msg);
    }
}

/// The server side of the pool. Cheap to clone; the pool closes when the last clone is
/// dropped (or on [`ServerPool::close`]).
#[derive(Clone)]
pub struct ServerPool {
    handle: Arc<Handle>,
}

struct Handle {
    shared: Arc<Shared>,
    local_addr: Option<SocketAddr>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        close(&self.shared);
    }
}

impl ServerPool {
    /// Binds (or takes) the listener and starts accepting. Must run inside a tokio runtime.
    pub async fn new(cfg: ServerConfig) -> Result<ServerPool, PoolError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(PoolError::NoRuntime);
        }
        if cfg.max_capacity == 0 {
            return Err(PoolError::Config("max_capacity must be at least 1".into()));
        }
        let (closed, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            max_capacity: cfg.max_capacity,
            allowed_ip: cfg.allowed_ip.map(access::canonical),
            tls: server_tls_h2(&cfg.tls),
            handshake_timeout: cfg.handshake_timeout,
            setup_timeout: cfg.setup_timeout,
            h2: with_keepalive(cfg.h2, cfg.keep_alive),
            log: cfg.log,
            state: Mutex::new(State::default()),
            ids: Arc::new(Mutex::new(HashSet::new())),
            counters: Arc::new(Counters::default()),
            accepting: AtomicBool::new(true),
            closed,
        });
        let (source, local_addr) = match cfg.listen {
            Listen::Addr(a) => {
                let l =
                    tokio::net::TcpListener::bind(&a)
                        .await
                        .map_err(|e| PoolError::Connect {
                            addr: a.clone(),
                            reason: format!("cannot listen: {e}"),
                        })?;
                let addr = l.local_addr().ok();
                (Source::Tcp(l), addr)
            }
            Listen::Listener(l) => {
                let addr = l.local_addr().ok();
                (Source::Tcp(l), addr)
            }
            Listen::Incoming(rx) => (Source::Incoming(rx), None),
        };
        spawn_counted(&shared.counters, accept_loop(shared.clone(), source));
        spawn_counted(&shared.counters, sweep_loop(shared.clone()));
        log(&shared.log, Level::Info, || match local_addr {
            Some(a) => format!("server pool listening on {a}"),
            None => "server pool accepting in-memory transports".into(),
        });
        Ok(ServerPool {
            handle: Arc::new(Handle { shared, local_addr }),
        })
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    /// The address it listens on (None for [`Listen::Incoming`]).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.handle.local_addr
    }

    /// The next data stream (oldest first) with its ID, waiting at most `timeout`.
    pub async fn incoming_get(
        &self,
        timeout: Duration,
    ) -> Result<(PoolStreamId, PoolStream), PoolError> {
        let s = self.take(|st| &mut st.data, timeout).await?;
        Ok((s.id(), s))
    }

    /// The next client's control stream (ID `00000000`, the first stream of each client
    /// connection), waiting at most `timeout`. [`PoolStream::session`] tells which
    /// connection's streams belong with it.
    pub async fn incoming_control(&self, timeout: Duration) -> Result<PoolStream, PoolError> {
        self.take(|st| &mut st.control, timeout).await
    }

    async fn take(
        &self,
        queue: fn(&mut State) -> &mut Queue,
        timeout: Duration,
    ) -> Result<PoolStream, PoolError> {
        let rx = {
            let mut st = self.shared().lock();
            if self.shared().is_closed() {
                return Err(PoolError::Closed);
            }
            match queue(&mut st).take() {
                Ok(s) => return Ok(s),
                Err(rx) => rx,
            }
        };
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(_)) => Err(PoolError::Closed),
            Err(_) => Err(PoolError::Timeout(timeout)),
        }
    }

    /// Whether the pool accepts connections.
    pub fn ready(&self) -> bool {
        self.shared().accepting.load(Ordering::Relaxed) && !self.shared().is_closed()
    }

    /// Streams waiting in the pool (data and control).
    pub fn active(&self) -> usize {
        let st = self.shared().lock();
        st.data.streams.len() + st.control.streams.len()
    }

    /// The most data streams the pool holds (`max_capacity`).
    pub fn capacity(&self) -> usize {
        self.shared().max_capacity
    }

    /// Always zero: the server does not create streams, the client does.
    pub fn interval(&self) -> Duration {
        Duration::ZERO
    }

    /// Ends one client connection at once (its waiting streams leave the pool, its streams
    /// in use fail): e.g. a client that failed the application's authentication. False if
    /// no such session is open.
    pub fn close_session(&self, session: u64) -> bool {
        let kill = self
            .shared()
            .lock()
            .sessions
            .get(&session)
            .map(|s| s.kill.clone());
        match kill {
            Some(k) => {
                k.kill();
                true
            }
            None => false,
        }
    }

    /// Client connections currently open.
    pub fn sessions(&self) -> usize {
        self.shared().lock().sessions.len()
    }

    /// Counts one error (the pool counts its own: refused peers, failed handshakes,
    /// malformed or refused requests, lost connections).
    pub fn add_error(&self) {
        self.shared()
            .counters
            .errors
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Errors counted since the last reset.
    pub fn error_count(&self) -> u64 {
        self.shared().counters.errors.load(Ordering::Relaxed)
    }

    /// Sets the error count to zero.
    pub fn reset_error(&self) {
        self.shared().counters.errors.store(0, Ordering::Relaxed);
    }

    /// Drops every stream waiting in the pool (data and control): the client sees them reset.
    pub fn flush(&self) {
        let (idle, controls) = {
            let mut st = self.shared().lock();
            (
                std::mem::take(&mut st.data.streams),
                std::mem::take(&mut st.control.streams),
            )
        };
        discard(idle.into_iter().chain(controls));
    }

    /// Closes at once: stops accepting, drops waiting streams, fails waiting callers, ends
    /// every connection (streams handed out fail on their next read or write).
    pub fn close(&self) {
        close(self.shared());
    }

    /// Graceful shutdown: stops accepting and sends GOAWAY on every connection, drops the
    /// waiting streams, then waits until the streams handed out are all dropped or `grace`
    /// has passed, and closes.
    pub async fn shutdown(&self, grace: Duration) {
        let sh = self.shared();
        sh.accepting.store(false, Ordering::Relaxed);
        self.flush();
        let conns: Vec<ConnectionHandle> = sh
            .lock()
            .sessions
            .values()
            .map(|s| s.conn.clone())
            .collect();
        for c in &conns {
            c.shutdown();
        }
        crate::transport::streams_dropped(&sh.counters, grace).await;
        close(sh);
    }

    /// Live objects of the pool (to see leaks).
    pub fn stats(&self) -> PoolStats {
        let sh = self.shared();
        let st = sh.lock();
        PoolStats {
            idle: st.data.streams.len() + st.control.streams.len(),
            connections: st.sessions.len(),
            tasks: sh.counters.tasks.load(Ordering::Relaxed),
            streams: sh.counters.streams.load(Ordering::Relaxed),
            errors: sh.counters.errors.load(Ordering::Relaxed),
        }
    }
}

fn close(sh: &Arc<Shared>) {
    if sh.closed.send_replace(true) {
        return;
    }
    sh.accepting.store(false, Ordering::Relaxed);
    let (idle, controls, kills) = {
        let mut st = sh.lock();
        (
            std::mem::take(&mut st.data),
            std::mem::take(&mut st.control),
            st.sessions
                .values()
                .map(|s| s.kill.clone())
                .collect::<Vec<_>>(),
        )
    };
    // Dropping the waiters' senders fails their calls with `Closed`.
    discard(idle.streams.into_iter().chain(controls.streams));
    for k in kills {
        k.kill();
    }
    log(&sh.log, Level::Info, || "server pool closed".into());
}

enum Source {
    Tcp(tokio::net::TcpListener),
    Incoming(tokio::sync::mpsc::Receiver<Transport>),
}

impl Source {
    async fn next(&mut self) -> Option<std::io::Result<Transport>> {
        match self {
            Source::Tcp(l) => Some(l.accept().await.map(|(s, _)| Transport::tcp(s))),
            Source::Incoming(rx) => rx.recv().await.map(Ok),
        }
    }
}

async fn accept_loop(sh: Arc<Shared>, mut source: Source) {
    let mut closed = sh.closed.subscribe();
    loop {
        let t = tokio::select! {
            t = source.next() => t,
            _ = closed_signal(&mut closed) => return,
        };
        let t = match t {
            None => return,
            Some(Err(e)) => {
                // Out of descriptors and the like: wait a little instead of spinning.
                sh.error(|| format!("accept failed: {e}"));
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            Some(Ok(t)) => t,
        };
        if !sh.accepting.load(Ordering::Relaxed) {
            continue;
        }
        if let Some(allowed) = sh.allowed_ip {
            let ok = t
                .peer
                .is_some_and(|p| access::allowed(Some(allowed), p.ip()));
            if !ok {
                sh.error(|| {
                    format!(
                        "refused connection from {}: only {allowed} may connect",
                        t.peer
                            .map_or("an unknown address".into(), |p| p.to_string())
                    )
                });
                continue;
            }
        }
        spawn_counted(&sh.counters, session(sh.clone(), t));
    }
}

async fn sweep_loop(sh: Arc<Shared>) {
    let mut closed = sh.closed.subscribe();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = closed_signal(&mut closed) => return,
        }
        let dead = {
            let mut st = sh.lock();
            let mut dead = st.data.remove(|s| !s.poll_alive());
            dead.extend(st.control.remove(|s| !s.poll_alive()));
            dead
        };
        discard(dead);
    }
}

async fn session(sh: Arc<Shared>, t: Transport) {
    let peer = t
        .peer
        .map_or_else(|| "an in-memory peer".to_string(), |p| p.to_string());
    let (io, kill) = Killable::new(t.io);
    let (io, tls) =
        match server_handshake(Box::new(io), sh.tls.clone(), sh.handshake_timeout, &peer).await {
            Ok(x) => x,
            Err(e) => {
                sh.error(|| format!("{e}"));
                return;
            }
        };
    let (conn, mut incoming) = conn::spawn(io, Role::Server, sh.h2.clone());
    let _live = crate::transport::Live::new(&sh.counters, |c| &c.connections);
    let id = {
        let mut st = sh.lock();
        st.next_session += 1;
        let id = st.next_session;
        st.sessions.insert(
            id,
            Session {
                conn: conn.clone(),
                kill: kill.clone(),
                control_given: false,
            },
        );
        id
    };
    if sh.is_closed() {
        kill.kill();
    }
    log(&sh.log, Level::Info, || {
        format!("client {peer} connected (session {id}, {})", tls.version)
    });
    let info = Arc::new(ConnInfo {
        local: t.local,
        peer: t.peer,
        tls,
        session: id,
    });
    let mut closed = sh.closed.subscribe();
    loop {
        tokio::select! {
            s = incoming.recv() => match s {
                Some(h) => {
                    spawn_counted(&sh.counters, setup(sh.clone(), h, info.clone()));
                }
                None => break,
            },
            _ = closed_signal(&mut closed) => {
                kill.kill();
                break;
            }
        }
    }
    conn.closed().await;
    let gone = {
        let mut st = sh.lock();
        st.sessions.remove(&id);
        let mut gone = st.data.remove(|s| s.session() == id);
        gone.extend(st.control.remove(|s| s.session() == id));
        gone
    };
    let n = gone.len();
    discard(gone);
    if !sh.is_closed() {
        sh.error(|| {
            format!("client {peer} (session {id}) disconnected; {n} waiting streams dropped")
        });
    }
}

fn status(code: u16) -> Vec<HeaderField> {
    vec![HeaderField::new(
        &b":status"[..],
        Bytes::from(code.to_string()),
    )]
}

async fn refuse(tx: &StreamSender, code: u16) {
    let _ = tx.send_headers(status(code), true).await;
}

fn pseudo<'a>(fields: &'a [HeaderField], name: &[u8]) -> &'a str {
    fields
        .iter()
        .find(|f| &f.name[..] == name)
        .and_then(|f| std::str::from_utf8(&f.value).ok())
        .unwrap_or("")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Control,
    Data,
    Full,
}

/// What a stream request turned into.
enum Setup {
    Ready(Box<PoolStream>, bool),
    Refused(String),
}

async fn setup(sh: Arc<Shared>, h: StreamHandle, info: Arc<ConnInfo>) {
    let peer = info
        .peer
        .map_or_else(|| "in-memory peer".to_string(), |p| p.to_string());
    let r = tokio::time::timeout(sh.setup_timeout, setup_stream(&sh, h, info)).await;
    match r {
        Err(_) => sh.error(|| {
            format!(
                "{peer}: stream request incomplete after {:?}",
                sh.setup_timeout
            )
        }),
        Ok(Setup::Refused(why)) => sh.error(|| format!("{peer}: {why}")),
        Ok(Setup::Ready(s, control)) => register(&sh, *s, control),
    }
}

async fn setup_stream(sh: &Arc<Shared>, h: StreamHandle, info: Arc<ConnInfo>) -> Setup {
    let (tx, mut rx) = h.split();
    let refused = Setup::Refused;
    let Some(StreamEvent::Headers(fields, end)) = rx.recv().await else {
        return refused("stream ended before its request".into());
    };
    let (method, path) = (pseudo(&fields, b":method"), pseudo(&fields, b":path"));
    if let Err(r) = check_request(method, path) {
        refuse(&tx, r.status()).await;
        return refused(format!("{method} {path} refused with {}", r.status()));
    }
    if end {
        refuse(&tx, 400).await;
        return refused("request without a body (no 0x00 octet) refused with 400".into());
    }
    let (first, ended) = loop {
        match rx.recv().await {
            Some(StreamEvent::Data(d, end)) if !d.is_empty() => break (d, end),
            Some(StreamEvent::Data(_, false)) => continue,
            Some(StreamEvent::Data(_, true)) | Some(StreamEvent::Trailers(_)) => {
                refuse(&tx, 400).await;
                return refused("request body ended before the 0x00 octet".into());
            }
            Some(StreamEvent::Reset(c)) => {
                return refused(format!("stream reset during setup: {c:?}"))
            }
            Some(StreamEvent::ConnectionLost(e)) => {
                return refused(format!("connection lost during setup: {e}"))
            }
            Some(StreamEvent::Headers(..)) => continue,
            None => return refused("stream ended during setup".into()),
        }
    };
    if let Err(e) = check_hello(first[0]) {
        refuse(&tx, 400).await;
        return refused(format!("{e}; refused with 400"));
    }
    // The ID: the session's control stream first, then random ones, within the capacity.
    let decision = {
        let mut guard = sh.lock();
        let st = &mut *guard;
        let full = st.data.streams.len() + st.reserved >= sh.max_capacity;
        match st.sessions.get_mut(&info.session) {
            None => return refused("session closed during setup".into()),
            Some(sess) if !sess.control_given => {
                sess.control_given = true;
                Decision::Control
            }
            Some(_) if full => Decision::Full,
            Some(_) => {
                st.reserved += 1;
                Decision::Data
            }
        }
    };
    let (id, hold) = match decision {
        Decision::Full => {
            refuse(&tx, Refusal::Full.status()).await;
            return refused(format!(
                "pool full ({} streams waiting): refused with 404",
                sh.max_capacity
            ));
        }
        Decision::Control => (PoolStreamId::CONTROL, None),
        Decision::Data => {
            let id = fresh_id(sh);
            (
                id,
                Some(IdHold {
                    registry: sh.ids.clone(),
                    id,
                }),
            )
        }
    };
    let control = decision == Decision::Control;
    let answer = async {
        tx.send_headers(status(200), false).await?;
        tx.send_data(Bytes::copy_from_slice(&id.0), false).await
    };
    let answered = answer.await;
    if !control {
        sh.lock().reserved -= 1;
    }
    if let Err(e) = answered {
        return refused(format!("answering stream {id} failed: {e}"));
    }
    let rest = first.slice(1..);
    Setup::Ready(
        Box::new(PoolStream::new(
            id,
            (tx, rx),
            rest,
            ended,
            info,
            &sh.counters,
            hold,
        )),
        control,
    )
}

/// A random ID no other live stream of the pool has.
fn fresh_id(sh: &Arc<Shared>) -> PoolStreamId {
    let mut ids = sh.ids.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let id = PoolStreamId::random().unwrap_or_else(|_| fallback_id());
        if ids.insert(id) {
            return id;
        }
    }
}

/// Only if the OS RNG fails: time-derived bits (never the control ID). Collisions are still
/// excluded by the registry.
fn fallback_id() -> PoolStreamId {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
        .unwrap_or(1);
    PoolStreamId(t.max(1).to_be_bytes())
}

fn register(sh: &Arc<Shared>, s: PoolStream, control: bool) {
    let mut st = sh.lock();
    if sh.is_closed() || !st.sessions.contains_key(&s.session()) {
        drop(st);
        discard([s]);
        return;
    }
    if control {
        st.control.offer(s);
    } else {
        st.data.offer(s);
    }
}
