//! What the pools run on: byte transports (TCP, or anything `AsyncRead + AsyncWrite`), the
//! address resolver, the TLS handshake with the pool's checks (TLS 1.3, ALPN `h2`), the kill
//! switch that ends a connection at once, and the counters that make leaks visible.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use crate::error::PoolError;
use crate::protocol::{check_alpn, TlsMode};

/// A byte transport the pool can run HTTP/2 over.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// A boxed transport.
pub type BoxIo = Box<dyn Io>;

/// A connected transport and the addresses of its two ends (none for in-memory pipes).
pub struct Transport {
    /// The bytes.
    pub io: BoxIo,
    /// Our end.
    pub local: Option<SocketAddr>,
    /// The peer's end.
    pub peer: Option<SocketAddr>,
}

impl Transport {
    /// A TCP connection (TCP_NODELAY set).
    pub fn tcp(s: TcpStream) -> Transport {
        let _ = s.set_nodelay(true);
        Transport {
            local: s.local_addr().ok(),
            peer: s.peer_addr().ok(),
            io: Box::new(s),
        }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Where the client pool dials: called before every (re)connection, so a resolver that
/// returns different servers spreads the pool's connections over them.
#[derive(Clone)]
pub struct Resolver(Arc<dyn Fn() -> BoxFuture<Result<String, String>> + Send + Sync>);

impl Resolver {
    /// An async function returning `host:port` (or an error message).
    pub fn new<F, Fut>(f: F) -> Resolver
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, String>> + Send + 'static,
    {
        Resolver(Arc::new(move || Box::pin(f())))
    }

    /// Always the same address.
    pub fn fixed(addr: impl Into<String>) -> Resolver {
        let addr = addr.into();
        Resolver::new(move || {
            let a = addr.clone();
            async move { Ok(a) }
        })
    }

    /// The given addresses in turn.
    pub fn round_robin(addrs: Vec<String>) -> Resolver {
        let next = Arc::new(AtomicUsize::new(0));
        let addrs = Arc::new(addrs);
        Resolver::new(move || {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let a = addrs
                .get(i % addrs.len().max(1))
                .cloned()
                .ok_or_else(|| "no addresses to resolve".to_string());
            async move { a }
        })
    }

    /// The next address.
    pub async fn resolve(&self) -> Result<String, PoolError> {
        (self.0)().await.map_err(PoolError::Resolve)
    }
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Resolver")
    }
}

/// How the client pool opens a transport to a resolved address.
#[derive(Clone)]
pub enum Dialer {
    /// TCP, from any local address or from the given one (multi-homed hosts).
    Tcp {
        /// The local address to connect from.
        bind: Option<IpAddr>,
    },
    /// Anything else (an in-memory pipe in tests, a proxy, a Unix socket).
    Custom(Arc<dyn Fn(String) -> BoxFuture<io::Result<Transport>> + Send + Sync>),
}

impl Dialer {
    /// A custom dialer from an async function of the resolved address.
    pub fn custom<F, Fut>(f: F) -> Dialer
    where
        F: Fn(String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = io::Result<Transport>> + Send + 'static,
    {
        Dialer::Custom(Arc::new(move |a| Box::pin(f(a))))
    }

    pub(crate) async fn dial(&self, addr: &str) -> Result<Transport, PoolError> {
        let err = |e: io::Error| PoolError::Connect {
            addr: addr.to_string(),
            reason: e.to_string(),
        };
        match self {
            Dialer::Custom(f) => f(addr.to_string()).await.map_err(err),
            Dialer::Tcp { bind } => {
                let mut last = io::Error::new(io::ErrorKind::NotFound, "no address found");
                for sa in tokio::net::lookup_host(addr).await.map_err(err)? {
                    let attempt = async {
                        let sock = if sa.is_ipv4() {
                            TcpSocket::new_v4()?
                        } else {
                            TcpSocket::new_v6()?
                        };
                        if let Some(ip) = bind {
                            sock.bind(SocketAddr::new(*ip, 0))?;
                        }
                        sock.connect(sa).await
                    };
                    match attempt.await {
                        Ok(s) => return Ok(Transport::tcp(s)),
                        Err(e) => last = e,
                    }
                }
                Err(err(last))
            }
        }
    }
}

impl std::fmt::Debug for Dialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dialer::Tcp { bind } => write!(f, "Dialer::Tcp {{ bind: {bind:?} }}"),
            Dialer::Custom(_) => f.write_str("Dialer::Custom"),
        }
    }
}

/// Where the server pool takes its connections from.
pub enum Listen {
    /// Bind this address (`host:port`, port 0 for any).
    Addr(String),
    /// An already bound listener.
    Listener(TcpListener),
    /// Transports handed in by the caller (in-memory pipes in tests, another acceptor).
    Incoming(tokio::sync::mpsc::Receiver<Transport>),
}

impl std::fmt::Debug for Listen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listen::Addr(a) => write!(f, "Listen::Addr({a:?})"),
            Listen::Listener(l) => write!(f, "Listen::Listener({:?})", l.local_addr()),
            Listen::Incoming(_) => f.write_str("Listen::Incoming"),
        }
    }
}

/// Wraps the decrypted HTTP/2 byte stream of a connection (to record or trace it).
pub type PlaintextHook = Arc<dyn Fn(BoxIo) -> BoxIo + Send + Sync>;

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Routine events (connected, redialled).
    Info,
    /// Something failed and the pool copes (lost connection, refused stream).
    Warn,
}

/// Receives the pool's log lines (the pool has no logging dependency of its own).
pub type LogSink = Arc<dyn Fn(Level, &str) + Send + Sync>;

pub(crate) fn log(sink: &Option<LogSink>, level: Level, msg: impl FnOnce() -> String) {
    if let Some(s) = sink {
        s(level, &msg());
    }
}

// ---------------------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------------------

/// What was negotiated on a connection's TLS session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// The protocol version (always TLS 1.3 in a pool).
    pub version: String,
    /// The cipher suite.
    pub cipher_suite: String,
    /// The ALPN protocol (always `h2` in a pool).
    pub alpn: Option<String>,
    /// The SNI name the client sent (server side) or the name verified (client side).
    pub server_name: Option<String>,
    /// The peer's certificate chain (empty on the server side: pools do not use client
    /// certificates).
    pub peer_certificates: Vec<CertificateDer<'static>>,
    /// The session's `tls-exporter` channel binding (RFC 9266: 32 octets exported with the
    /// label `EXPORTER-Channel-Binding`). Both ends of one TLS session see the same value; a
    /// man in the middle, holding two sessions, makes each end see a different one, so an
    /// authentication that covers it fails through a relay (the tunnel's does).
    pub channel_binding: Vec<u8>,
}

/// RFC 9266 §2: the exporter label of `tls-exporter` channel bindings.
const CHANNEL_BINDING_LABEL: &[u8] = b"EXPORTER-Channel-Binding";

/// The connection a pooled stream runs on.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// Our socket address.
    pub local: Option<SocketAddr>,
    /// The peer's socket address.
    pub peer: Option<SocketAddr>,
    /// The TLS session.
    pub tls: TlsInfo,
    /// The connection's number in its pool (server: session; client: connection), from 1.
    pub session: u64,
}

/// Checks a finished handshake (ALPN `h2`, TLS 1.3) and describes the session.
fn session_info(
    c: &rustls::CommonState,
    server_name: Option<String>,
    channel_binding: Result<[u8; 32], rustls::Error>,
    peer: &str,
) -> Result<TlsInfo, PoolError> {
    check_alpn(c.alpn_protocol())?;
    let version = c.protocol_version();
    if version != Some(rustls::ProtocolVersion::TLSv1_3) {
        return Err(PoolError::Tls {
            peer: peer.to_string(),
            reason: format!("negotiated {version:?}; the pool requires TLS 1.3"),
        });
    }
    Ok(TlsInfo {
        version: format!(
            "{:?}",
            version.unwrap_or(rustls::ProtocolVersion::Unknown(0))
        ),
        cipher_suite: c
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()))
            .unwrap_or_default(),
        alpn: c
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
        server_name,
        channel_binding: channel_binding
            .map_err(|e| PoolError::Tls {
                peer: peer.to_string(),
                reason: format!("exporting the channel binding: {e}"),
            })?
            .to_vec(),
        peer_certificates: c
            .peer_certificates()
            .map(|cs| cs.iter().map(|c| c.clone().into_owned()).collect())
            .unwrap_or_default(),
    })
}

/// Runs a handshake with a timeout, naming the peer in the error.
async fn handshake<T, E: std::fmt::Display>(
    f: impl Future<Output = Result<T, E>>,
    timeout: Duration,
    peer: &str,
) -> Result<T, PoolError> {
    let tls_err = |reason: String| PoolError::Tls {
        peer: peer.to_string(),
        reason,
    };
    tokio::time::timeout(timeout, f)
        .await
        .map_err(|_| tls_err(format!("handshake did not finish within {timeout:?}")))?
        .map_err(|e| tls_err(format!("handshake failed: {e}")))
}

/// The client TLS configuration of a mode: `0`/`1` encrypt without verifying, `2` verifies
/// against `roots` (the public web roots when empty).
pub fn client_tls(
    mode: TlsMode,
    roots: &[CertificateDer<'static>],
) -> Result<Arc<rustls::ClientConfig>, PoolError> {
    let cfg = match mode {
        TlsMode::Unverified => h2mux::tls::client_config_insecure(),
        TlsMode::Verified if roots.is_empty() => h2mux::tls::client_config(),
        TlsMode::Verified => h2mux::tls::client_config_with_roots(roots),
    };
    cfg.map_err(|e| PoolError::Config(e.to_string()))
}

/// The server configuration with ALPN `h2` as the only protocol.
pub(crate) fn server_tls_h2(cfg: &Arc<rustls::ServerConfig>) -> Arc<rustls::ServerConfig> {
    if cfg.alpn_protocols == [crate::protocol::ALPN.to_vec()] {
        return cfg.clone();
    }
    let mut c = (**cfg).clone();
    c.alpn_protocols = vec![crate::protocol::ALPN.to_vec()];
    Arc::new(c)
}

/// Client handshake with a timeout and the pool's checks.
pub(crate) async fn client_handshake(
    t: Transport,
    cfg: Arc<rustls::ClientConfig>,
    hostname: &str,
    timeout: Duration,
    peer: &str,
) -> Result<(BoxIo, TlsInfo), PoolError> {
    let name = ServerName::try_from(hostname.to_string())
        .map_err(|e| PoolError::Config(format!("hostname {hostname:?}: {e}")))?;
    let connector = tokio_rustls::TlsConnector::from(cfg);
    let s = handshake(connector.connect(name, t.io), timeout, peer).await?;
    let c = s.get_ref().1;
    let binding = c.export_keying_material([0u8; 32], CHANNEL_BINDING_LABEL, None);
    let info = session_info(c, Some(hostname.to_string()), binding, peer)?;
    Ok((Box::new(s), info))
}

/// Server handshake with a timeout and the pool's checks.
pub(crate) async fn server_handshake(
    io: BoxIo,
    cfg: Arc<rustls::ServerConfig>,
    timeout: Duration,
    peer: &str,
) -> Result<(BoxIo, TlsInfo), PoolError> {
    let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
    let s = handshake(acceptor.accept(io), timeout, peer).await?;
    let c = s.get_ref().1;
    let binding = c.export_keying_material([0u8; 32], CHANNEL_BINDING_LABEL, None);
    let info = session_info(c, c.server_name().map(str::to_string), binding, peer)?;
    Ok((Box::new(s), info))
}

// ---------------------------------------------------------------------------------------
// Kill switch
// ---------------------------------------------------------------------------------------

/// Ends a connection at once: every read and write of its transport fails from then on, so
/// the driver task ends and every stream on it learns the loss.
#[derive(Default)]
pub(crate) struct KillSwitch {
    killed: AtomicBool,
    wakers: Mutex<Vec<Waker>>,
}

impl KillSwitch {
    pub(crate) fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
        let wakers = std::mem::take(&mut *self.wakers.lock().unwrap_or_else(|p| p.into_inner()));
        for w in wakers {
            w.wake();
        }
    }

    fn is_killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }

    /// Registers interest in the kill; true when it already happened.
    fn park(&self, cx: &Context<'_>) -> bool {
        let mut w = self.wakers.lock().unwrap_or_else(|p| p.into_inner());
        if !w.iter().any(|x| x.will_wake(cx.waker())) {
            w.push(cx.waker().clone());
        }
        drop(w);
        self.is_killed()
    }
}

/// A transport with a kill switch. Only the pending path takes the switch's lock.
pub(crate) struct Killable {
    inner: BoxIo,
    switch: Arc<KillSwitch>,
}

impl Killable {
    pub(crate) fn new(inner: BoxIo) -> (Killable, Arc<KillSwitch>) {
        let switch = Arc::new(KillSwitch::default());
        (
            Killable {
                inner,
                switch: switch.clone(),
            },
            switch,
        )
    }
}

fn killed() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "connection closed by the pool",
    )
}

impl AsyncRead for Killable {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.switch.is_killed() {
            return Poll::Ready(Err(killed()));
        }
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Pending if self.switch.park(cx) => Poll::Ready(Err(killed())),
            other => other,
        }
    }
}

impl AsyncWrite for Killable {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.switch.is_killed() {
            return Poll::Ready(Err(killed()));
        }
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Pending if self.switch.park(cx) => Poll::Ready(Err(killed())),
            other => other,
        }
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.switch.is_killed() {
            return Poll::Ready(Err(killed()));
        }
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Pending if self.switch.park(cx) => Poll::Ready(Err(killed())),
            other => other,
        }
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.switch.is_killed() {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.switch.is_killed() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

// ---------------------------------------------------------------------------------------
// Counters
// ---------------------------------------------------------------------------------------

/// Live objects of a pool, to see leaks: tasks it spawned that are still running, pooled
/// streams that exist (idle or handed out), connections whose driver still runs.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) tasks: AtomicUsize,
    pub(crate) streams: AtomicUsize,
    pub(crate) connections: AtomicUsize,
    pub(crate) errors: AtomicU64,
}

/// Decrements a counter when dropped.
pub(crate) struct Live {
    counters: Arc<Counters>,
    which: fn(&Counters) -> &AtomicUsize,
}

impl Live {
    pub(crate) fn new(counters: &Arc<Counters>, which: fn(&Counters) -> &AtomicUsize) -> Live {
        which(counters).fetch_add(1, Ordering::Relaxed);
        Live {
            counters: counters.clone(),
            which,
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        (self.which)(&self.counters).fetch_sub(1, Ordering::Relaxed);
    }
}

/// Spawns a task counted in `counters.tasks` until it ends or is aborted.
pub(crate) fn spawn_counted<F>(counters: &Arc<Counters>, fut: F) -> tokio::task::JoinHandle<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let live = Live::new(counters, |c| &c.tasks);
    tokio::spawn(async move {
        let _live = live;
        fut.await
    })
}

/// Waits until no pooled stream of the pool exists any more, or `grace` has passed.
pub(crate) async fn streams_dropped(counters: &Counters, grace: Duration) {
    let deadline = tokio::time::Instant::now() + grace;
    while counters.streams.load(Ordering::Relaxed) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A uniformly random u32 for backoff jitter (the OS RNG; a fixed value if it fails, which
/// only loses the jitter).
pub(crate) fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    let _ = getrandom::getrandom(&mut b);
    u32::from_le_bytes(b)
}

/// Resolves once the pool's closed flag is set (the guard of the watch is not held across
/// the caller's awaits, keeping its futures `Send`).
pub(crate) async fn closed_signal(rx: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|c| *c).await;
}
