//! A reverse TCP tunnel on the pool, in the NodePass manner (`h2mux tunnel server|client`).
//!
//! The **tunnel server** runs on a reachable host: a [`ServerPool`] for the tunnel client and a
//! public TCP port. The **tunnel client** runs behind NAT next to a target service: it dials out
//! with a [`ClientPool`], so no inbound port is needed where it runs.
//!
//! 1. The client's first stream (the control stream `00000000`) carries the authentication
//!    ([`control`]: an HMAC challenge over the shared secret and the TLS channel binding). A
//!    client that fails it is told so and its connection closed, with a clear log line on
//!    both sides; only streams of the authenticated connection are ever used.
//! 2. For each public TCP connection the server takes a pre-opened stream of that connection
//!    ([`ServerPool::incoming_get`]), announces its ID on the control stream (`Open`), and
//!    copies bytes both ways. The client takes the stream by ID
//!    ([`ClientPool::outgoing_get`]), connects to the target and copies. A target that refuses
//!    is reported back (`Refused`, logged by the server) and the public connection closed.
//! 3. Half-closes pass through (EOF on one side shuts the other side's write half); an error
//!    on one side aborts the other; a connection with no traffic either way for the idle
//!    timeout is closed.
//! 4. A new authenticated client replaces the previous one (a restarted client is served as
//!    soon as it is back, even before the old connection's loss is noticed); public
//!    connections that arrive while no client is connected wait for one up to
//!    `stream_timeout`.

pub mod control;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::PoolError;
use crate::id::PoolStreamId;
use crate::protocol::TlsMode;
use crate::stream::PoolStream;
use crate::transport::{log, Level, Listen, LogSink, Resolver};
use crate::{ClientConfig, ClientPool, ServerConfig, ServerPool};
use control::{read_message, write_message, ControlError, Message, Secret};

/// How long each side waits for the other's authentication message.
const AUTH_TIMEOUT: Duration = Duration::from_secs(10);

/// What can stop a tunnel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TunnelError {
    /// The configuration cannot work.
    #[error("invalid tunnel configuration: {0}")]
    Config(String),
    /// The pool failed to start.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// The public port could not be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: String,
        /// The operating system's reason.
        reason: String,
    },
    /// The server refused this client's authentication (wrong secret, or a relay between).
    #[error("the tunnel server refused this client: {0}")]
    Refused(String),
    /// The server did not prove it knows the secret.
    #[error("the tunnel server failed to prove it knows the secret (wrong secret on the server, or a relay between us)")]
    ServerUnproven,
}

/// Counters of a tunnel end, readable at any time ([`TunnelStats::snapshot`]).
#[derive(Debug, Default)]
pub struct TunnelStats {
    accepted: AtomicU64,
    active: AtomicU64,
    completed: AtomicU64,
    failed: AtomicU64,
    refused: AtomicU64,
    idle_closed: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    auth_failures: AtomicU64,
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatsSnapshot {
    /// Tunnelled connections started (server: public connections; client: `Open`s).
    pub accepted: u64,
    /// Tunnelled connections open now.
    pub active: u64,
    /// Finished cleanly (both directions ended).
    pub completed: u64,
    /// Ended by an error (including the ones below).
    pub failed: u64,
    /// Of those, refused by the target.
    pub refused: u64,
    /// Closed by the idle timeout.
    pub idle_closed: u64,
    /// Octets from the public side (server) or from the target (client) into the tunnel.
    pub bytes_in: u64,
    /// Octets out of the tunnel to the public side (server) or the target (client).
    pub bytes_out: u64,
    /// Failed authentications (server: clients refused; client: refusals met).
    pub auth_failures: u64,
}

impl std::fmt::Display for StatsSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "connections {} (active {}, done {}, failed {}: target refused {}, idle {}); \
             bytes in {} out {}; authentication failures {}",
            self.accepted,
            self.active,
            self.completed,
            self.failed,
            self.refused,
            self.idle_closed,
            self.bytes_in,
            self.bytes_out,
            self.auth_failures
        )
    }
}

impl TunnelStats {
    /// The counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            accepted: g(&self.accepted),
            active: g(&self.active),
            completed: g(&self.completed),
            failed: g(&self.failed),
            refused: g(&self.refused),
            idle_closed: g(&self.idle_closed),
            bytes_in: g(&self.bytes_in),
            bytes_out: g(&self.bytes_out),
            auth_failures: g(&self.auth_failures),
        }
    }

    fn add(a: &AtomicU64) {
        a.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a connection as open until the guard goes.
    fn open(self: &Arc<Self>) -> ActiveGuard {
        Self::add(&self.accepted);
        Self::add(&self.active);
        ActiveGuard(self.clone())
    }

    fn finish(&self, r: &Result<(u64, u64), PipeError>) {
        match r {
            Ok((i, o)) => {
                Self::add(&self.completed);
                self.bytes_in.fetch_add(*i, Ordering::Relaxed);
                self.bytes_out.fetch_add(*o, Ordering::Relaxed);
            }
            Err(PipeError::Idle(_)) => {
                Self::add(&self.failed);
                Self::add(&self.idle_closed);
            }
            Err(PipeError::Io(_)) => Self::add(&self.failed),
        }
    }
}

struct ActiveGuard(Arc<TunnelStats>);
impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

// ---------------------------------------------------------------------------------------
// Copying both ways, with an idle timeout
// ---------------------------------------------------------------------------------------

/// Why a tunnelled connection ended early.
#[derive(Debug)]
enum PipeError {
    Idle(Duration),
    Io(std::io::Error),
}

impl std::fmt::Display for PipeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PipeError::Idle(d) => write!(f, "idle for {d:?}, closed"),
            PipeError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Marks the time of the last byte through it.
struct Activity<T> {
    inner: T,
    last: Arc<AtomicU64>,
    base: tokio::time::Instant,
}

impl<T> Activity<T> {
    fn touch(&self) {
        self.last
            .store(self.base.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Activity<T> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Activity<T> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let r = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, std::task::Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Copies both ways between `outside` (the public or target socket) and the pooled stream
/// until both directions have ended, or one fails, or nothing moved for `idle`. Returns the
/// octets (outside → tunnel, tunnel → outside).
async fn pipe<T: AsyncRead + AsyncWrite + Unpin>(
    outside: T,
    stream: &mut PoolStream,
    idle: Duration,
) -> Result<(u64, u64), PipeError> {
    let last = Arc::new(AtomicU64::new(0));
    let base = tokio::time::Instant::now();
    let mut outside = Activity {
        inner: outside,
        last: last.clone(),
        base,
    };
    let watch = async {
        loop {
            let quiet = base
                .elapsed()
                .saturating_sub(Duration::from_millis(last.load(Ordering::Relaxed)));
            if quiet >= idle {
                return;
            }
            tokio::time::sleep(idle - quiet).await;
        }
    };
    tokio::select! {
        r = crate::relay(&mut outside, stream) => {
            r.map_err(PipeError::Io)
        }
        _ = watch => Err(PipeError::Idle(idle)),
    }
}

// ---------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------

/// Configuration of a [`TunnelServer`].
pub struct TunnelServerConfig {
    /// Where the tunnel client connects (the pool).
    pub listen: Listen,
    /// The public TCP port.
    pub public: Listen,
    /// The pool's TLS configuration.
    pub tls: Arc<rustls::ServerConfig>,
    /// The only address the tunnel client may connect from.
    pub allowed_ip: Option<std::net::IpAddr>,
    /// The shared secret.
    pub secret: Vec<u8>,
    /// A tunnelled connection with no traffic either way for this long is closed. Default
    /// 5 minutes.
    pub idle_timeout: Duration,
    /// How long a public connection waits for a pooled stream (or for a client to connect).
    /// Default 5 s.
    pub stream_timeout: Duration,
    /// Most pre-opened streams waiting in the server pool. Default 1024.
    pub pool_capacity: usize,
    /// Pool keepalive period. Default 30 s.
    pub keep_alive: Duration,
    /// Log lines go here (None: nowhere).
    pub log: Option<LogSink>,
}

impl TunnelServerConfig {
    /// Defaults around the required parts.
    pub fn new(
        listen: Listen,
        public: Listen,
        tls: Arc<rustls::ServerConfig>,
        secret: impl Into<Vec<u8>>,
    ) -> Self {
        TunnelServerConfig {
            listen,
            public,
            tls,
            allowed_ip: None,
            secret: secret.into(),
            idle_timeout: Duration::from_secs(300),
            stream_timeout: Duration::from_secs(5),
            pool_capacity: 1024,
            keep_alive: Duration::from_secs(30),
            log: None,
        }
    }
}

/// The authenticated client: its pool session and the queue to its control stream.
#[derive(Clone)]
struct Active {
    session: u64,
    control: mpsc::UnboundedSender<Message>,
}

struct ServerShared {
    pool: ServerPool,
    secret: Secret,
    active: Mutex<Option<Active>>,
    /// Streams announced and not finished, with the public peer they serve (for log lines).
    open: Mutex<HashMap<PoolStreamId, SocketAddr>>,
    stats: Arc<TunnelStats>,
    idle: Duration,
    stream_timeout: Duration,
    log: Option<LogSink>,
}

/// The public end of a tunnel. Stops when dropped (or on [`TunnelServer::close`]).
pub struct TunnelServer {
    shared: Arc<ServerShared>,
    pool_addr: Option<SocketAddr>,
    public_addr: Option<SocketAddr>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for TunnelServer {
    fn drop(&mut self) {
        self.close();
    }
}

async fn bind(l: Listen) -> Result<(TcpListener, SocketAddr), TunnelError> {
    let l = match l {
        Listen::Listener(l) => l,
        Listen::Addr(a) => TcpListener::bind(&a)
            .await
            .map_err(|e| TunnelError::Listen {
                addr: a.clone(),
                reason: e.to_string(),
            })?,
        Listen::Incoming(_) => {
            return Err(TunnelError::Config(
                "the public side must be a TCP address or listener".into(),
            ))
        }
    };
    let addr = l.local_addr().map_err(|e| TunnelError::Listen {
        addr: "?".into(),
        reason: e.to_string(),
    })?;
    Ok((l, addr))
}

impl TunnelServer {
    /// Starts the pool and the public port.
    pub async fn start(cfg: TunnelServerConfig) -> Result<TunnelServer, TunnelError> {
        let secret = Secret::new(&cfg.secret)
            .ok_or_else(|| TunnelError::Config("the shared secret is empty".into()))?;
        let (public, public_addr) = bind(cfg.public).await?;
        let mut pcfg = ServerConfig::new(cfg.pool_capacity, cfg.tls, cfg.listen);
        pcfg.allowed_ip = cfg.allowed_ip;
        pcfg.keep_alive = cfg.keep_alive;
        pcfg.log = cfg.log.clone();
        let pool = ServerPool::new(pcfg).await?;
        let pool_addr = pool.local_addr();
        let shared = Arc::new(ServerShared {
            pool,
            secret,
            active: Mutex::new(None),
            open: Mutex::new(HashMap::new()),
            stats: Arc::default(),
            idle: cfg.idle_timeout,
            stream_timeout: cfg.stream_timeout,
            log: cfg.log,
        });
        log(&shared.log, Level::Info, || {
            format!(
                "tunnel server: pool on {}, public port {public_addr}",
                pool_addr.map_or("(in-memory)".into(), |a| a.to_string())
            )
        });
        let tasks = vec![
            tokio::spawn(accept_controls(shared.clone())),
            tokio::spawn(accept_public(shared.clone(), public)),
        ];
        Ok(TunnelServer {
            shared,
            pool_addr,
            public_addr: Some(public_addr),
            tasks,
        })
    }

    /// Where the tunnel client connects.
    pub fn pool_addr(&self) -> Option<SocketAddr> {
        self.pool_addr
    }

    /// The public port.
    pub fn public_addr(&self) -> Option<SocketAddr> {
        self.public_addr
    }

    /// The counters.
    pub fn stats(&self) -> Arc<TunnelStats> {
        self.shared.stats.clone()
    }

    /// Whether an authenticated client is connected.
    pub fn has_client(&self) -> bool {
        lock(&self.shared.active).is_some()
    }

    /// Stops at once (the pool closes; tunnelled connections fail).
    pub fn close(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
        self.shared.pool.close();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn peer_text(a: Option<SocketAddr>) -> String {
    a.map_or_else(|| "an in-memory peer".to_string(), |a| a.to_string())
}

async fn accept_controls(sh: Arc<ServerShared>) {
    loop {
        match sh.pool.incoming_control(Duration::from_secs(3600)).await {
            Ok(ctl) => {
                tokio::spawn(authenticate(sh.clone(), ctl));
            }
            Err(PoolError::Closed) => return,
            Err(_) => continue,
        }
    }
}

/// Runs the challenge on a new control stream; then serves it while that client is the one.
async fn authenticate(sh: Arc<ServerShared>, mut ctl: PoolStream) {
    let session = ctl.session();
    let peer = peer_text(ctl.peer_addr());
    let binding = ctl.tls_info().channel_binding.clone();
    let outcome = async {
        let sn = control::nonce()?;
        write_message(
            &mut ctl,
            &Message::Hello {
                version: control::VERSION,
                nonce: sn,
            },
        )
        .await?;
        let answer = tokio::time::timeout(AUTH_TIMEOUT, read_message(&mut ctl))
            .await
            .map_err(|_| ControlError::Io(format!("no answer within {AUTH_TIMEOUT:?}")))??;
        match answer {
            Message::Auth { nonce: cn, mac }
                if sh.secret.verify_client(&binding, &sn, &cn, &mac) =>
            {
                Ok(Ok(sh.secret.server_mac(&binding, &sn, &cn)))
            }
            Message::Auth { .. } => Ok(Err("wrong secret (or a relay between us)".to_string())),
            other => Ok(Err(format!("expected the authentication, got {other:?}"))),
        }
    }
    .await;
    let mac = match outcome {
        Ok(Ok(mac)) => mac,
        Ok(Err(why)) | Err(ControlError::Io(why)) => {
            refuse(&sh, ctl, session, &peer, &why).await;
            return;
        }
        Err(e) => {
            refuse(&sh, ctl, session, &peer, &e.to_string()).await;
            return;
        }
    };
    if write_message(&mut ctl, &Message::Accepted { mac })
        .await
        .is_err()
    {
        return;
    }
    let (mut rd, mut wr) = tokio::io::split(ctl);
    let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
    let previous = lock(&sh.active).replace(Active {
        session,
        control: tx,
    });
    if let Some(p) = previous.filter(|p| p.session != session) {
        // A restarted client is back: the old connection is dead or will be.
        sh.pool.close_session(p.session);
    }
    log(&sh.log, Level::Info, || {
        format!("tunnel client {peer} authenticated (session {session})")
    });
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if write_message(&mut wr, &m).await.is_err() {
                return;
            }
        }
    });
    loop {
        match read_message(&mut rd).await {
            Ok(Message::Refused { id, reason }) => {
                TunnelStats::add(&sh.stats.refused);
                let public = lock(&sh.open).get(&id).copied();
                log(&sh.log, Level::Warn, || {
                    format!(
                        "target refused the connection of {} (stream {id}): {reason}",
                        peer_text(public)
                    )
                });
            }
            Ok(other) => log(&sh.log, Level::Warn, || {
                format!("tunnel client {peer}: unexpected {other:?} on the control stream")
            }),
            Err(e) => {
                log(&sh.log, Level::Warn, || {
                    format!("tunnel client {peer} (session {session}) gone: {e}")
                });
                break;
            }
        }
    }
    writer.abort();
    let mut active = lock(&sh.active);
    if active.as_ref().is_some_and(|a| a.session == session) {
        *active = None;
    }
}

/// Tells a client it is refused, logs it, and closes its connection.
async fn refuse(sh: &ServerShared, mut ctl: PoolStream, session: u64, peer: &str, why: &str) {
    TunnelStats::add(&sh.stats.auth_failures);
    log(&sh.log, Level::Warn, || {
        format!("tunnel client {peer} refused: authentication failed: {why}")
    });
    let _ = write_message(
        &mut ctl,
        &Message::Rejected {
            reason: format!("authentication failed: {why}"),
        },
    )
    .await;
    // Let the answer reach the client (it closes on reading it), then end the connection.
    let _ = tokio::io::AsyncWriteExt::shutdown(&mut ctl).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), ctl.read_chunk()).await;
    sh.pool.close_session(session);
}

async fn accept_public(sh: Arc<ServerShared>, public: TcpListener) {
    loop {
        match public.accept().await {
            Ok((tcp, peer)) => {
                let _ = tcp.set_nodelay(true);
                tokio::spawn(serve_public(sh.clone(), tcp, peer));
            }
            Err(e) => {
                log(&sh.log, Level::Warn, || {
                    format!("public accept failed: {e}")
                });
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// A pooled stream of the authenticated client, waiting at most `stream_timeout`.
async fn stream_for_public(sh: &ServerShared) -> Result<(PoolStream, Active), String> {
    let deadline = tokio::time::Instant::now() + sh.stream_timeout;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Err(match lock(&sh.active).as_ref() {
                None => "no tunnel client is connected".into(),
                Some(_) => format!("no pooled stream within {:?}", sh.stream_timeout),
            });
        }
        let Some(active) = lock(&sh.active).clone() else {
            tokio::time::sleep(left.min(Duration::from_millis(20))).await;
            continue;
        };
        match sh
            .pool
            .incoming_get(left.min(Duration::from_millis(200)))
            .await
        {
            Ok((_, s)) if s.session() == active.session => return Ok((s, active)),
            // A stream of another (older or unauthenticated) client: never used.
            Ok((_, mut s)) => s.reset(),
            Err(PoolError::Closed) => return Err("the tunnel server is closing".into()),
            Err(_) => {}
        }
    }
}

async fn serve_public(sh: Arc<ServerShared>, tcp: tokio::net::TcpStream, peer: SocketAddr) {
    let _guard = sh.stats.open();
    let (mut s, active) = match stream_for_public(&sh).await {
        Ok(x) => x,
        Err(why) => {
            TunnelStats::add(&sh.stats.failed);
            log(&sh.log, Level::Warn, || {
                format!("public connection from {peer} closed: {why}")
            });
            return;
        }
    };
    let id = s.id();
    lock(&sh.open).insert(id, peer);
    if active.control.send(Message::Open { id }).is_err() {
        TunnelStats::add(&sh.stats.failed);
        s.reset();
        lock(&sh.open).remove(&id);
        return;
    }
    let r = pipe(tcp, &mut s, sh.idle).await;
    sh.stats.finish(&r);
    match &r {
        Ok(_) => {
            lock(&sh.open).remove(&id);
        }
        Err(e) => {
            log(&sh.log, Level::Info, || {
                format!("public connection from {peer} (stream {id}) ended: {e}")
            });
            // The client's `Refused` may arrive after the stream's reset: keep the entry a
            // moment so that its log line can name the public peer.
            let sh = sh.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(5)).await;
                lock(&sh.open).remove(&id);
            });
        }
    }
}

// ---------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------

/// Configuration of a [`TunnelClient`].
#[derive(Clone)]
pub struct TunnelClientConfig {
    /// The tunnel server's pool address (`host:port`).
    pub server: String,
    /// The service the tunnel leads to (`host:port`).
    pub target: String,
    /// TLS mode (`0`/`1` unverified, `2` verified against `hostname`).
    pub tls_mode: TlsMode,
    /// The server's name (SNI; verified in mode 2). Default: the host part of `server`.
    pub hostname: String,
    /// Roots for mode 2 (empty: the public web roots).
    pub tls_roots: Vec<CertificateDer<'static>>,
    /// The shared secret.
    pub secret: Vec<u8>,
    /// Idle timeout of tunnelled connections. Default 5 minutes.
    pub idle_timeout: Duration,
    /// Most time to connect to the target. Default 5 s.
    pub connect_timeout: Duration,
    /// Fewest / most idle streams in the pool. Default 64 / 1024.
    pub min_capacity: usize,
    /// See `min_capacity`.
    pub max_capacity: usize,
    /// Pool rounds. Default 50 ms .. 1 s.
    pub min_interval: Duration,
    /// See `min_interval`.
    pub max_interval: Duration,
    /// Pool keepalive period. Default 30 s.
    pub keep_alive: Duration,
    /// Log lines go here (None: nowhere).
    pub log: Option<LogSink>,
}

impl TunnelClientConfig {
    /// Defaults around the required parts.
    pub fn new(
        server: impl Into<String>,
        target: impl Into<String>,
        tls_mode: TlsMode,
        secret: impl Into<Vec<u8>>,
    ) -> Self {
        let server = server.into();
        let hostname = server
            .rsplit_once(':')
            .map_or(server.as_str(), |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        TunnelClientConfig {
            server,
            target: target.into(),
            tls_mode,
            hostname,
            tls_roots: Vec::new(),
            secret: secret.into(),
            idle_timeout: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(5),
            min_capacity: 64,
            max_capacity: 1024,
            min_interval: Duration::from_millis(50),
            max_interval: Duration::from_secs(1),
            keep_alive: Duration::from_secs(30),
            log: None,
        }
    }
}

/// The NAT-side end of a tunnel. Stops when dropped (or on [`TunnelClient::close`]).
pub struct TunnelClient {
    pool: ClientPool,
    stats: Arc<TunnelStats>,
    task: Option<JoinHandle<Result<(), TunnelError>>>,
}

impl Drop for TunnelClient {
    fn drop(&mut self) {
        self.close();
    }
}

impl TunnelClient {
    /// Starts the pool and the control loop.
    pub fn start(cfg: TunnelClientConfig) -> Result<TunnelClient, TunnelError> {
        let secret = Secret::new(&cfg.secret)
            .ok_or_else(|| TunnelError::Config("the shared secret is empty".into()))?;
        let mut pcfg = ClientConfig::new(cfg.tls_mode, &cfg.hostname, Resolver::fixed(&cfg.server));
        pcfg.tls_roots = cfg.tls_roots.clone();
        pcfg.min_capacity = cfg.min_capacity;
        pcfg.max_capacity = cfg.max_capacity;
        pcfg.min_interval = cfg.min_interval;
        pcfg.max_interval = cfg.max_interval;
        pcfg.keep_alive = cfg.keep_alive;
        pcfg.log = cfg.log.clone();
        let pool = ClientPool::new(pcfg)?;
        let stats: Arc<TunnelStats> = Arc::default();
        let task = tokio::spawn(client_loop(pool.clone(), secret, stats.clone(), cfg));
        Ok(TunnelClient {
            pool,
            stats,
            task: Some(task),
        })
    }

    /// The counters.
    pub fn stats(&self) -> Arc<TunnelStats> {
        self.stats.clone()
    }

    /// The pool underneath.
    pub fn pool(&self) -> &ClientPool {
        &self.pool
    }

    /// Runs until the tunnel stops for good (the server refused this client, or `close`).
    pub async fn wait(&mut self) -> Result<(), TunnelError> {
        match self.task.as_mut() {
            Some(t) => {
                let r = t.await.unwrap_or(Ok(()));
                self.task = None;
                r
            }
            None => Ok(()),
        }
    }

    /// Stops at once.
    pub fn close(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
        self.pool.close();
    }
}

/// Authenticates on each new control stream, then serves its `Open`s; a refusal ends it.
async fn client_loop(
    pool: ClientPool,
    secret: Secret,
    stats: Arc<TunnelStats>,
    cfg: TunnelClientConfig,
) -> Result<(), TunnelError> {
    let cfg = Arc::new(cfg);
    loop {
        let mut ctl = match pool
            .outgoing_get(PoolStreamId::CONTROL, Duration::from_secs(3600))
            .await
        {
            Ok(c) => c,
            Err(PoolError::Closed) => return Ok(()),
            Err(_) => continue,
        };
        let peer = peer_text(ctl.peer_addr());
        match client_auth(&mut ctl, &secret).await {
            Ok(()) => {}
            Err(AuthOutcome::Fatal(e)) => {
                TunnelStats::add(&stats.auth_failures);
                log(&cfg.log, Level::Warn, || format!("{e}; stopping"));
                pool.close();
                return Err(e);
            }
            Err(AuthOutcome::Lost(why)) => {
                log(&cfg.log, Level::Warn, || {
                    format!("authentication with {peer} interrupted: {why}")
                });
                continue;
            }
        }
        log(&cfg.log, Level::Info, || {
            format!(
                "authenticated with the tunnel server {peer}; forwarding to {}",
                cfg.target
            )
        });
        let (mut rd, mut wr) = tokio::io::split(ctl);
        let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
        let writer = tokio::spawn(async move {
            while let Some(m) = rx.recv().await {
                if write_message(&mut wr, &m).await.is_err() {
                    return;
                }
            }
        });
        loop {
            match read_message(&mut rd).await {
                Ok(Message::Open { id }) => {
                    tokio::spawn(serve_open(
                        pool.clone(),
                        id,
                        tx.clone(),
                        stats.clone(),
                        cfg.clone(),
                    ));
                }
                Ok(other) => log(&cfg.log, Level::Warn, || {
                    format!("unexpected {other:?} on the control stream")
                }),
                Err(e) => {
                    log(&cfg.log, Level::Warn, || {
                        format!("control stream to {peer} lost ({e}); waiting for the pool to reconnect")
                    });
                    break;
                }
            }
        }
        writer.abort();
    }
}

enum AuthOutcome {
    Fatal(TunnelError),
    Lost(String),
}

async fn client_auth(ctl: &mut PoolStream, secret: &Secret) -> Result<(), AuthOutcome> {
    let lost = |e: ControlError| AuthOutcome::Lost(e.to_string());
    let binding = ctl.tls_info().channel_binding.clone();
    let hello = tokio::time::timeout(AUTH_TIMEOUT, read_message(ctl))
        .await
        .map_err(|_| AuthOutcome::Lost(format!("no challenge within {AUTH_TIMEOUT:?}")))?
        .map_err(lost)?;
    let Message::Hello { version, nonce: sn } = hello else {
        return Err(AuthOutcome::Lost(format!(
            "expected the challenge, got {hello:?}"
        )));
    };
    if version != control::VERSION {
        return Err(AuthOutcome::Fatal(TunnelError::Refused(format!(
            "the server speaks tunnel protocol version {version}, this client {}",
            control::VERSION
        ))));
    }
    let cn = control::nonce().map_err(lost)?;
    let mac = secret.client_mac(&binding, &sn, &cn);
    write_message(ctl, &Message::Auth { nonce: cn, mac })
        .await
        .map_err(lost)?;
    let answer = tokio::time::timeout(AUTH_TIMEOUT, read_message(ctl))
        .await
        .map_err(|_| AuthOutcome::Lost(format!("no answer within {AUTH_TIMEOUT:?}")))?
        .map_err(lost)?;
    match answer {
        Message::Accepted { mac } if secret.verify_server(&binding, &sn, &cn, &mac) => Ok(()),
        Message::Accepted { .. } => Err(AuthOutcome::Fatal(TunnelError::ServerUnproven)),
        Message::Rejected { reason } => Err(AuthOutcome::Fatal(TunnelError::Refused(reason))),
        other => Err(AuthOutcome::Lost(format!(
            "expected the verdict, got {other:?}"
        ))),
    }
}

/// One `Open`: take the stream, connect the target, copy; report a refusing target.
async fn serve_open(
    pool: ClientPool,
    id: PoolStreamId,
    control: mpsc::UnboundedSender<Message>,
    stats: Arc<TunnelStats>,
    cfg: Arc<TunnelClientConfig>,
) {
    let _guard = stats.open();
    let mut s = match pool.outgoing_get(id, cfg.connect_timeout).await {
        Ok(s) => s,
        Err(e) => {
            TunnelStats::add(&stats.failed);
            log(&cfg.log, Level::Warn, || format!("stream {id}: {e}"));
            let _ = control.send(Message::Refused {
                id,
                reason: format!("the tunnel client has no stream {id}: {e}"),
            });
            return;
        }
    };
    let target = tokio::time::timeout(
        cfg.connect_timeout,
        tokio::net::TcpStream::connect(&cfg.target),
    )
    .await
    .map_err(|_| format!("no answer within {:?}", cfg.connect_timeout))
    .and_then(|r| r.map_err(|e| e.to_string()));
    let tcp = match target {
        Ok(t) => t,
        Err(why) => {
            TunnelStats::add(&stats.failed);
            TunnelStats::add(&stats.refused);
            log(&cfg.log, Level::Warn, || {
                format!("target {} refused stream {id}: {why}", cfg.target)
            });
            let _ = control.send(Message::Refused {
                id,
                reason: format!("{}: {why}", cfg.target),
            });
            s.reset();
            return;
        }
    };
    let _ = tcp.set_nodelay(true);
    let r = pipe(tcp, &mut s, cfg.idle_timeout).await;
    stats.finish(&r);
    if let Err(e) = &r {
        log(&cfg.log, Level::Info, || {
            format!("stream {id} to {} ended: {e}", cfg.target)
        });
    }
}
