//! The client pool: dials the server pool, keeps pre-opened streams, hands them out by the
//! ID the server gave them (the dialling side of seeds/001).
//!
//! # Who runs the manager
//! [`ClientPool::new`] starts its tasks itself (it must be called inside a tokio runtime):
//! one manager task and one task per configured connection. There is nothing like the Go
//! library's `go pool.ClientManager()` to forget; [`ClientPool::close`] (or dropping the last
//! clone of the pool) stops them.
//!
//! # Connections
//! Each of the `connections` connection tasks asks the [`Resolver`] for an address before
//! every (re)dial, so a resolver that returns several servers in turn spreads one pool over
//! them. On every new connection the first stream is created alone, so that it is the one the
//! server names `00000000` (the control stream); the rest follow concurrently. When a
//! connection ends (socket lost, keepalive PING unanswered, server gone), its waiting streams
//! leave the pool at once, callers waiting in [`ClientPool::outgoing_get`] get
//! [`PoolError::ConnectionLost`] (the stream they wait for may have been on it), and the task
//! redials after a capped exponential backoff with jitter ([`crate::backoff`]), starting over
//! at the base delay after each successful connection.
//!
//! # Rounds: when streams are created
//! The manager works in rounds of [`ClientPool::interval`]. At the end of a round it feeds
//! what happened (streams taken, the fewest idle during the round, creations that succeeded
//! and failed) to the rule of [`crate::adjust`], which moves the capacity and the interval
//! within their bounds; then it creates streams up to the capacity. Two things start creation early, without
//! ending the round: a connection coming up, and a take that leaves no idle data stream.
//! The control stream `00000000` does not count against the capacity.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use h2mux::conn::{self, ConnectionHandle, StreamEvent};
use h2mux::proto::{HeaderField, Role};
use rustls::pki_types::CertificateDer;
use tokio::sync::{oneshot, watch, Notify};

use crate::adjust::{Adjuster, Limits, Round};
use crate::backoff::Backoff;
use crate::error::PoolError;
use crate::id::PoolStreamId;
use crate::protocol::{check_response, request_url, IdReader, TlsMode, CLIENT_HELLO, METHOD, PATH};
use crate::server::{pool_h2_config, with_keepalive};
use crate::stream::{discard, PoolStream};
use crate::transport::{
    client_handshake, client_tls, closed_signal, log, random_u32, spawn_counted, ConnInfo,
    Counters, Dialer, KillSwitch, Killable, Level, Live, LogSink, PlaintextHook, Resolver,
    Transport,
};
use crate::PoolStats;

/// Configuration of a [`ClientPool`].
#[derive(Clone)]
pub struct ClientConfig {
    /// Fewest idle data streams kept (≥ 1).
    pub min_capacity: usize,
    /// Most idle data streams kept.
    pub max_capacity: usize,
    /// Shortest round (time between creation rounds).
    pub min_interval: Duration,
    /// Longest round.
    pub max_interval: Duration,
    /// Keepalive PING period on idle connections; a PING unanswered as long ends the
    /// connection (and the pool redials). Zero: no keepalive.
    pub keep_alive: Duration,
    /// TLS mode `0`/`1` (encrypted, not verified) or `2` (verified against `hostname`).
    pub tls_mode: TlsMode,
    /// The server name: SNI, `:authority`, and the name verified in mode 2.
    pub hostname: String,
    /// Where to dial, asked before every (re)dial.
    pub resolver: Resolver,
    /// How many connections the pool keeps (each resolves its own address). Default 1.
    pub connections: usize,
    /// Roots verified against in mode 2 (empty: the public web roots).
    pub tls_roots: Vec<CertificateDer<'static>>,
    /// A complete TLS configuration instead of the one `tls_mode` builds (ALPN must be `h2`).
    pub tls_config: Option<Arc<rustls::ClientConfig>>,
    /// How transports are opened. Default TCP.
    pub dialer: Dialer,
    /// Most time for a TCP connect. Default 10 s.
    pub connect_timeout: Duration,
    /// Most time for the TLS handshake. Default 10 s.
    pub handshake_timeout: Duration,
    /// Most time from opening a stream to having its ID. Default 10 s.
    pub create_timeout: Duration,
    /// First redial delay (doubled per failure, with jitter). Default 100 ms.
    pub backoff_base: Duration,
    /// Longest redial delay. Default 5 s.
    pub backoff_cap: Duration,
    /// HTTP/2 settings of each connection.
    pub h2: h2mux::Config,
    /// Wraps the decrypted HTTP/2 bytes of each connection (to record or trace them).
    pub plaintext_hook: Option<PlaintextHook>,
    /// Where log lines go (None: nowhere).
    pub log: Option<LogSink>,
}

impl ClientConfig {
    /// The seeds/001 example defaults (capacity 5..20, interval 500 ms..5 s, keepalive 30 s)
    /// around the required parts.
    pub fn new(tls_mode: TlsMode, hostname: impl Into<String>, resolver: Resolver) -> Self {
        ClientConfig {
            min_capacity: 5,
            max_capacity: 20,
            min_interval: Duration::from_millis(500),
            max_interval: Duration::from_secs(5),
            keep_alive: Duration::from_secs(30),
            tls_mode,
            hostname: hostname.into(),
            resolver,
            connections: 1,
            tls_roots: Vec::new(),
            tls_config: None,
            dialer: Dialer::Tcp { bind: None },
            connect_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            create_timeout: Duration::from_secs(10),
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_secs(5),
            h2: pool_h2_config(),
            plaintext_hook: None,
            log: None,
        }
    }

    fn limits(&self) -> Limits {
        Limits {
            min_capacity: self.min_capacity,
            max_capacity: self.max_capacity,
            min_interval: self.min_interval,
            max_interval: self.max_interval,
        }
    }
}

type Waiter = oneshot::Sender<Result<PoolStream, PoolError>>;

struct Conn {
    handle: ConnectionHandle,
    kill: Arc<KillSwitch>,
    info: Arc<ConnInfo>,
    /// Its first stream (the control stream) is done: the manager may create on it.
    ready: bool,
}

struct State {
    idle: HashMap<PoolStreamId, PoolStream>,
    waiters: HashMap<PoolStreamId, Vec<Waiter>>,
    conns: BTreeMap<u64, Conn>,
    next_conn: u64,
    creating: usize,
    cursor: usize,
    round: Round,
    /// The fewest idle data streams since the round began.
    round_low: usize,
    adjuster: Adjuster,
    creating_allowed: bool,
}

impl State {
    fn idle_data(&self) -> usize {
        self.idle.len() - usize::from(self.idle.contains_key(&PoolStreamId::CONTROL))
    }
}

struct Shared {
    hostname: String,
    resolver: Resolver,
    dialer: Dialer,
    tls: Arc<rustls::ClientConfig>,
    connect_timeout: Duration,
    handshake_timeout: Duration,
    create_timeout: Duration,
    backoff: (Duration, Duration),
    h2: h2mux::Config,
    hook: Option<PlaintextHook>,
    log: Option<LogSink>,
    state: Mutex<State>,
    wake: Notify,
    counters: Arc<Counters>,
    closed: watch::Sender<bool>,
    last_error: Mutex<Option<PoolError>>,
    capacity: AtomicUsize,
    interval_us: AtomicU64,
    rounds: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }
    fn record(&self, e: PoolError) {
        self.counters.errors.fetch_add(1, Ordering::Relaxed);
        log(&self.log, Level::Warn, || e.to_string());
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
    }
    fn mirror(&self, a: &Adjuster) {
        self.capacity.store(a.capacity(), Ordering::Relaxed);
        self.interval_us
            .store(a.interval().as_micros() as u64, Ordering::Relaxed);
    }
}

/// The client side of the pool. Cheap to clone; the pool closes when the last clone is
/// dropped (or on [`ClientPool::close`]).
#[derive(Clone)]
pub struct ClientPool {
    handle: Arc<Handle>,
}

struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        close(&self.shared);
    }
}

impl ClientPool {
    /// Builds the pool and starts its tasks (manager and connections) on the current tokio
    /// runtime.
    pub fn new(cfg: ClientConfig) -> Result<ClientPool, PoolError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(PoolError::NoRuntime);
        }
        if cfg.hostname.is_empty() {
            return Err(PoolError::Config("hostname is empty".into()));
        }
        if cfg.connections == 0 {
            return Err(PoolError::Config("connections must be at least 1".into()));
        }
        let tls = match &cfg.tls_config {
            Some(c) => c.clone(),
            None => client_tls(cfg.tls_mode, &cfg.tls_roots)?,
        };
        let adjuster = Adjuster::new(cfg.limits());
        let (closed, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            hostname: cfg.hostname.clone(),
            resolver: cfg.resolver.clone(),
            dialer: cfg.dialer.clone(),
            tls,
            connect_timeout: cfg.connect_timeout,
            handshake_timeout: cfg.handshake_timeout,
            create_timeout: cfg.create_timeout,
            backoff: (cfg.backoff_base, cfg.backoff_cap),
            h2: with_keepalive(cfg.h2.clone(), cfg.keep_alive),
            hook: cfg.plaintext_hook.clone(),
            log: cfg.log.clone(),
            capacity: AtomicUsize::new(adjuster.capacity()),
            interval_us: AtomicU64::new(adjuster.interval().as_micros() as u64),
            state: Mutex::new(State {
                idle: HashMap::new(),
                waiters: HashMap::new(),
                conns: BTreeMap::new(),
                next_conn: 0,
                creating: 0,
                cursor: 0,
                round: Round::default(),
                round_low: 0,
                adjuster,
                creating_allowed: true,
            }),
            wake: Notify::new(),
            counters: Arc::new(Counters::default()),
            closed,
            last_error: Mutex::new(None),
            rounds: AtomicU64::new(0),
        });
        spawn_counted(&shared.counters, manager(shared.clone()));
        for _ in 0..cfg.connections {
            spawn_counted(&shared.counters, connection_task(shared.clone()));
        }
        Ok(ClientPool {
            handle: Arc::new(Handle { shared }),
        })
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    /// The stream the server named `id`: at once if it is in the pool, else as soon as it
    /// arrives, waiting at most `timeout`. Fails at once when the pool is closed or the
    /// stream was reset while waiting, and with [`PoolError::ConnectionLost`] when a
    /// connection drops while waiting.
    pub async fn outgoing_get(
        &self,
        id: PoolStreamId,
        timeout: Duration,
    ) -> Result<PoolStream, PoolError> {
        let sh = self.shared();
        let rx = {
            let mut st = sh.lock();
            if sh.is_closed() {
                return Err(PoolError::Closed);
            }
            if let Some(mut s) = st.idle.remove(&id) {
                let conn_up = st
                    .conns
                    .get(&s.session())
                    .is_some_and(|c| !c.handle.is_closed());
                if !(conn_up && s.poll_alive()) {
                    drop(st);
                    discard([s]);
                    return Err(PoolError::ConnectionLost(format!(
                        "stream {id} was reset before it was taken"
                    )));
                }
                took(sh, &mut st);
                return Ok(s);
            }
            let (tx, rx) = oneshot::channel();
            let ws = st.waiters.entry(id).or_default();
            ws.retain(|w| !w.is_closed());
            ws.push(tx);
            rx
        };
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(PoolError::Closed),
            Err(_) => Err(PoolError::NotFound { id, timeout }),
        }
    }

    /// Whether the stream named `id` waits in the pool now (an `outgoing_get` would not wait).
    pub fn contains(&self, id: PoolStreamId) -> bool {
        self.shared().lock().idle.contains_key(&id)
    }

    /// Whether at least one connection is up and has its control stream done.
    pub fn ready(&self) -> bool {
        self.shared().lock().conns.values().any(|c| c.ready)
    }

    /// Idle streams in the pool (the control stream included while it waits).
    pub fn active(&self) -> usize {
        self.shared().lock().idle.len()
    }

    /// Idle data streams the pool currently aims to keep.
    pub fn capacity(&self) -> usize {
        self.shared().capacity.load(Ordering::Relaxed)
    }

    /// The current round length.
    pub fn interval(&self) -> Duration {
        Duration::from_micros(self.shared().interval_us.load(Ordering::Relaxed))
    }

    /// Rounds ended so far.
    pub fn rounds(&self) -> u64 {
        self.shared().rounds.load(Ordering::Relaxed)
    }

    /// New capacity and interval bounds, in force at once (the knobs are clamped into them).
    pub fn set_limits(&self, limits: Limits) {
        let sh = self.shared();
        let mut st = sh.lock();
        st.adjuster.set_limits(limits);
        sh.mirror(&st.adjuster);
        drop(st);
        sh.wake.notify_one();
    }

    /// Counts one error (the pool counts its own: failed dials and handshakes, refused or
    /// malformed stream answers, lost connections).
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

    /// Sets the error count to zero (the last error is kept).
    pub fn reset_error(&self) {
        self.shared().counters.errors.store(0, Ordering::Relaxed);
    }

    /// The last error the pool met, to tell why it is not ready.
    pub fn last_error(&self) -> Option<PoolError> {
        self.shared()
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Drops every idle stream (the server sees them reset); the manager refills the pool.
    pub fn flush(&self) {
        let sh = self.shared();
        let idle = {
            let mut st = sh.lock();
            st.round_low = 0;
            std::mem::take(&mut st.idle)
        };
        discard(idle.into_values());
        sh.wake.notify_one();
    }

    /// Closes at once: stops the tasks, drops idle streams, fails waiting callers with
    /// [`PoolError::Closed`], ends every connection (streams handed out fail on their next
    /// read or write).
    pub fn close(&self) {
        close(self.shared());
    }

    /// Graceful shutdown: stops creating, drops the idle streams, sends GOAWAY on every
    /// connection, then waits until the streams handed out are all dropped or `grace` has
    /// passed, and closes.
    pub async fn shutdown(&self, grace: Duration) {
        let sh = self.shared();
        let conns: Vec<ConnectionHandle> = {
            let mut st = sh.lock();
            st.creating_allowed = false;
            let idle = std::mem::take(&mut st.idle);
            discard(idle.into_values());
            st.conns.values().map(|c| c.handle.clone()).collect()
        };
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
            idle: st.idle.len(),
            connections: st.conns.len(),
            tasks: sh.counters.tasks.load(Ordering::Relaxed),
            streams: sh.counters.streams.load(Ordering::Relaxed),
            errors: sh.counters.errors.load(Ordering::Relaxed),
        }
    }
}

/// Counts a take; an empty pool starts creation at once.
fn took(sh: &Shared, st: &mut State) {
    st.round.taken += 1;
    let idle = st.idle_data();
    st.round_low = st.round_low.min(idle);
    if idle == 0 {
        sh.wake.notify_one();
    }
}

fn close(sh: &Arc<Shared>) {
    if sh.closed.send_replace(true) {
        return;
    }
    let (idle, waiters, kills) = {
        let mut st = sh.lock();
        st.creating_allowed = false;
        (
            std::mem::take(&mut st.idle),
            std::mem::take(&mut st.waiters),
            st.conns
                .values()
                .map(|c| c.kill.clone())
                .collect::<Vec<_>>(),
        )
    };
    discard(idle.into_values());
    for w in waiters.into_values().flatten() {
        let _ = w.send(Err(PoolError::Closed));
    }
    for k in kills {
        k.kill();
    }
    log(&sh.log, Level::Info, || "client pool closed".into());
}

async fn manager(sh: Arc<Shared>) {
    let mut closed = sh.closed.subscribe();
    let mut round_start = tokio::time::Instant::now();
    loop {
        let interval = sh.lock().adjuster.interval();
        let end = round_start + interval;
        tokio::select! {
            _ = tokio::time::sleep_until(end) => {
                end_round(&sh);
                round_start = tokio::time::Instant::now();
            }
            _ = sh.wake.notified() => {}
            _ = closed_signal(&mut closed) => return,
        }
        create(&sh);
    }
}

fn end_round(sh: &Shared) {
    let dead = {
        let mut st = sh.lock();
        // Idle streams reset by the server since the last round leave the pool.
        let dead_ids: Vec<PoolStreamId> = st
            .idle
            .iter_mut()
            .filter_map(|(id, s)| (!s.poll_alive()).then_some(*id))
            .collect();
        let dead: Vec<PoolStream> = dead_ids
            .iter()
            .filter_map(|id| st.idle.remove(id))
            .collect();
        let r = Round {
            idle: st.round_low.min(st.idle_data()),
            ..st.round
        };
        st.adjuster.end_round(r);
        st.round = Round::default();
        st.round_low = usize::MAX;
        sh.mirror(&st.adjuster);
        dead
    };
    discard(dead);
    sh.rounds.fetch_add(1, Ordering::Relaxed);
}

/// Starts creations up to the capacity, spread over the connections that are ready.
fn create(sh: &Arc<Shared>) {
    let jobs: Vec<(ConnectionHandle, Arc<ConnInfo>)> = {
        let mut guard = sh.lock();
        let st = &mut *guard;
        if !st.creating_allowed || sh.is_closed() {
            return;
        }
        let n = st.adjuster.to_create(st.idle_data() + st.creating);
        let live: Vec<(ConnectionHandle, Arc<ConnInfo>)> = st
            .conns
            .values()
            .filter(|c| c.ready && !c.handle.is_going_away())
            .map(|c| (c.handle.clone(), c.info.clone()))
            .collect();
        if live.is_empty() || n == 0 {
            return;
        }
        st.creating += n;
        let start = st.cursor;
        st.cursor = st.cursor.wrapping_add(n);
        (0..n)
            .map(|i| live[(start + i) % live.len()].clone())
            .collect()
    };
    for (handle, info) in jobs {
        let sh2 = sh.clone();
        spawn_counted(&sh.counters, async move {
            let r = create_stream(&sh2, &handle, info).await;
            finish_creation(&sh2, r);
        });
    }
}

fn finish_creation(sh: &Arc<Shared>, r: Result<PoolStream, PoolError>) {
    {
        let mut st = sh.lock();
        st.creating -= 1;
        match &r {
            Ok(_) => st.round.created += 1,
            Err(_) => st.round.failed += 1,
        }
    }
    match r {
        Ok(s) => deliver(sh, s),
        Err(e) => sh.record(e),
    }
}

/// A new stream: to a caller waiting for its ID, else into the pool.
fn deliver(sh: &Arc<Shared>, s: PoolStream) {
    let mut st = sh.lock();
    if sh.is_closed() || !st.conns.contains_key(&s.session()) {
        drop(st);
        discard([s]);
        return;
    }
    let id = s.id();
    let mut s = s;
    if let Some(mut ws) = st.waiters.remove(&id) {
        while let Some(w) = ws.pop() {
            match w.send(Ok(s)) {
                Ok(()) => {
                    if !ws.is_empty() {
                        st.waiters.insert(id, ws);
                    }
                    took(sh, &mut st);
                    return;
                }
                Err(Ok(back)) => s = back,
                Err(Err(_)) => return,
            }
        }
    }
    if st.idle.contains_key(&id) {
        drop(st);
        discard([s]);
        sh.record(PoolError::DuplicateId(id));
        return;
    }
    st.idle.insert(id, s);
}

fn request(hostname: &str) -> Vec<HeaderField> {
    debug_assert!(request_url(hostname).ends_with(PATH));
    vec![
        HeaderField::new(&b":method"[..], METHOD.as_bytes()),
        HeaderField::new(&b":scheme"[..], &b"https"[..]),
        HeaderField::new(&b":authority"[..], Bytes::from(hostname.to_string())),
        HeaderField::new(&b":path"[..], PATH.as_bytes()),
    ]
}

/// One stream: `POST /stream`, the 0x00 octet, then the status and the 4 ID octets.
async fn create_stream(
    sh: &Shared,
    conn: &ConnectionHandle,
    info: Arc<ConnInfo>,
) -> Result<PoolStream, PoolError> {
    let work = async {
        let h = conn.open(request(&sh.hostname), false).await?;
        let (tx, mut rx) = h.split();
        tx.send_data(Bytes::from_static(&[CLIENT_HELLO]), false)
            .await?;
        loop {
            match rx.recv().await {
                Some(StreamEvent::Headers(fields, end)) => {
                    let status = fields
                        .iter()
                        .find(|f| &f.name[..] == b":status")
                        .and_then(|f| std::str::from_utf8(&f.value).ok()?.parse::<u16>().ok())
                        .unwrap_or(0);
                    if (100..200).contains(&status) && !end {
                        continue;
                    }
                    check_response(status)?;
                    if end {
                        IdReader::default().finish()?;
                    }
                    break;
                }
                Some(StreamEvent::Reset(c)) => {
                    return Err(h2mux::Error::StreamReset(format!("{c:?}")).into())
                }
                Some(StreamEvent::ConnectionLost(e)) => {
                    return Err(PoolError::ConnectionLost(e.to_string()))
                }
                Some(_) => continue,
                None => return Err(PoolError::ConnectionLost("stream ended".into())),
            }
        }
        let mut reader = IdReader::default();
        loop {
            match rx.recv().await {
                Some(StreamEvent::Data(d, end)) => {
                    if let Some((id, rest)) = reader.push(&d) {
                        let rest = d.slice(d.len() - rest.len()..);
                        return Ok(PoolStream::new(
                            id,
                            (tx, rx),
                            rest,
                            end,
                            info,
                            &sh.counters,
                            None,
                        ));
                    }
                    if end {
                        reader.finish()?;
                    }
                }
                Some(StreamEvent::Reset(c)) => {
                    return Err(h2mux::Error::StreamReset(format!("{c:?}")).into())
                }
                Some(StreamEvent::ConnectionLost(e)) => {
                    return Err(PoolError::ConnectionLost(e.to_string()))
                }
                Some(_) | None => {
                    reader.finish()?;
                    return Err(PoolError::ConnectionLost("stream ended".into()));
                }
            }
        }
    };
    tokio::time::timeout(sh.create_timeout, work)
        .await
        .map_err(|_| PoolError::Timeout(sh.create_timeout))?
}

/// Resolve, dial, handshake, start HTTP/2.
async fn connect(
    sh: &Shared,
) -> Result<(ConnectionHandle, Arc<KillSwitch>, Transport2), PoolError> {
    let addr = sh.resolver.resolve().await?;
    let t = tokio::time::timeout(sh.connect_timeout, sh.dialer.dial(&addr))
        .await
        .map_err(|_| PoolError::Connect {
            addr: addr.clone(),
            reason: format!("no answer within {:?}", sh.connect_timeout),
        })??;
    let (io, kill) = Killable::new(t.io);
    let (io, tls) = client_handshake(
        Transport {
            io: Box::new(io),
            local: t.local,
            peer: t.peer,
        },
        sh.tls.clone(),
        &sh.hostname,
        sh.handshake_timeout,
        &addr,
    )
    .await?;
    let io = match &sh.hook {
        Some(h) => h(io),
        None => io,
    };
    let (handle, _pushes) = conn::spawn(io, Role::Client, sh.h2.clone());
    Ok((
        handle,
        kill,
        Transport2 {
            addr,
            local: t.local,
            peer: t.peer,
            tls,
        },
    ))
}

/// What a connection is, beside its handle.
struct Transport2 {
    addr: String,
    local: Option<std::net::SocketAddr>,
    peer: Option<std::net::SocketAddr>,
    tls: crate::transport::TlsInfo,
}

async fn connection_task(sh: Arc<Shared>) {
    let mut backoff = Backoff::new(sh.backoff.0, sh.backoff.1);
    let mut closed = sh.closed.subscribe();
    loop {
        if sh.is_closed() {
            return;
        }
        let r = tokio::select! {
            r = connect(&sh) => r,
            _ = closed_signal(&mut closed) => return,
        };
        match r {
            Err(e) => sh.record(e),
            Ok((handle, kill, t)) => {
                backoff.reset();
                serve_connection(&sh, handle, kill, t, &mut closed).await;
            }
        }
        let delay = backoff.next_delay(random_u32());
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = closed_signal(&mut closed) => return,
        }
    }
}

/// Runs one connection until it ends: its control stream first, then the manager's
/// creations; cleans up after it.
async fn serve_connection(
    sh: &Arc<Shared>,
    handle: ConnectionHandle,
    kill: Arc<KillSwitch>,
    t: Transport2,
    closed: &mut watch::Receiver<bool>,
) {
    let _live = Live::new(&sh.counters, |c| &c.connections);
    let id = {
        let mut st = sh.lock();
        st.next_conn += 1;
        st.next_conn
    };
    let info = Arc::new(ConnInfo {
        local: t.local,
        peer: t.peer,
        tls: t.tls,
        session: id,
    });
    sh.lock().conns.insert(
        id,
        Conn {
            handle: handle.clone(),
            kill: kill.clone(),
            info: info.clone(),
            ready: false,
        },
    );
    if sh.is_closed() {
        kill.kill();
    }
    log(&sh.log, Level::Info, || {
        format!(
            "connected to {} (connection {id}, {})",
            t.addr, info.tls.version
        )
    });
    // The first stream alone, so that it is the one the server names 00000000.
    {
        let allowed = sh.lock().creating_allowed;
        if allowed {
            sh.lock().creating += 1;
            let r = create_stream(sh, &handle, info.clone()).await;
            finish_creation(sh, r);
        }
    }
    if let Some(c) = sh.lock().conns.get_mut(&id) {
        c.ready = true;
    }
    sh.wake.notify_one();
    tokio::select! {
        _ = handle.closed() => {}
        _ = closed_signal(closed) => {
            kill.kill();
            handle.closed().await;
        }
    }
    let (lost, waiters) = {
        let mut st = sh.lock();
        st.conns.remove(&id);
        let ids: Vec<PoolStreamId> = st
            .idle
            .iter()
            .filter(|(_, s)| s.session() == id)
            .map(|(k, _)| *k)
            .collect();
        let lost: Vec<PoolStream> = ids.iter().filter_map(|k| st.idle.remove(k)).collect();
        (lost, std::mem::take(&mut st.waiters))
    };
    let n = lost.len();
    discard(lost);
    let why = format!(
        "connection {id} to {} ended; {n} idle streams dropped",
        t.addr
    );
    for w in waiters.into_values().flatten() {
        let _ = w.send(Err(PoolError::ConnectionLost(why.clone())));
    }
    if !sh.is_closed() {
        sh.record(PoolError::ConnectionLost(why));
    }
}
