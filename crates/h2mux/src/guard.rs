//! Server-side guards that the connection core cannot provide because they span connections
//! or need the socket (RFC 9113 §10.5 "denial-of-service considerations"):
//!
//! * [`Admission`]: how many connections are open, in total and per client IP address; a
//!   connection beyond either limit is refused at once (h2c: SETTINGS + GOAWAY
//!   ENHANCE_YOUR_CALM naming the limit; TLS: closed before the handshake costs anything).
//! * [`StallWatch`]: an I/O wrapper that notices when writes stop making progress — the peer
//!   stopped reading (CVE-2019-9517 "internal data buffering", slow-read attacks) — so that
//!   the server can close the connection after `ServerLimits::send_timeout`.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

/// Which admission limit refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `ServerLimits::max_connections`.
    Global(usize),
    /// `ServerLimits::max_connections_per_ip`.
    PerIp(usize),
}

impl Refusal {
    pub(crate) fn describe(self) -> String {
        match self {
            Refusal::Global(n) => format!("connection limit reached ({n} open)"),
            Refusal::PerIp(n) => format!("per-client connection limit reached ({n} open)"),
        }
    }
}

/// Counts open connections, in total and per client address.
#[derive(Debug, Default)]
pub(crate) struct Admission {
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    total: std::sync::atomic::AtomicUsize,
}

/// One admitted connection; dropping it gives its place back.
#[derive(Debug)]
pub(crate) struct Permit {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Admission {
    /// Admits a connection from `ip` if both limits allow it.
    pub(crate) fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        max_total: usize,
        max_per_ip: usize,
    ) -> Result<Permit, Refusal> {
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let total = self.total.load(Ordering::Relaxed);
        if total >= max_total {
            return Err(Refusal::Global(total));
        }
        let n = per_ip.entry(ip).or_insert(0);
        if *n >= max_per_ip {
            return Err(Refusal::PerIp(*n));
        }
        *n += 1;
        self.total.store(total + 1, Ordering::Relaxed);
        Ok(Permit {
            admission: self.clone(),
            ip,
        })
    }

    /// Connections open now.
    pub(crate) fn open(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut per_ip = self
            .admission
            .per_ip
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
        self.admission.total.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Shared between a [`StallWatch`] and whoever enforces the send timeout.
#[derive(Debug)]
pub(crate) struct StallState {
    base: Instant,
    /// Milliseconds since `base` (+1, so 0 means "not blocked") at which a write first found
    /// the socket full without any progress since.
    blocked_since: AtomicU64,
    /// Signalled when a write becomes blocked.
    pub(crate) blocked: Notify,
}

impl StallState {
    pub(crate) fn new() -> Arc<StallState> {
        Arc::new(StallState {
            base: Instant::now(),
            blocked_since: AtomicU64::new(0),
            blocked: Notify::new(),
        })
    }

    /// Since when writes have been blocked without progress, if they are.
    pub(crate) fn blocked_since(&self) -> Option<Instant> {
        match self.blocked_since.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(self.base + Duration::from_millis(ms - 1)),
        }
    }

    fn on_write<T>(&self, r: &Poll<io::Result<T>>, progressed: impl Fn(&T) -> bool) {
        match r {
            Poll::Pending => {
                if self.blocked_since.load(Ordering::Relaxed) == 0 {
                    let ms = self.base.elapsed().as_millis() as u64 + 1;
                    self.blocked_since.store(ms, Ordering::Relaxed);
                    self.blocked.notify_one();
                }
            }
            Poll::Ready(Ok(v)) if progressed(v) => self.blocked_since.store(0, Ordering::Relaxed),
            Poll::Ready(_) => {}
        }
    }
}

/// Forwards every call to `inner`, recording in [`StallState`] when writes stop making
/// progress (one relaxed atomic store per write; vectored writes stay vectored).
pub(crate) struct StallWatch<IO> {
    inner: IO,
    state: Arc<StallState>,
}

impl<IO> StallWatch<IO> {
    pub(crate) fn new(inner: IO, state: Arc<StallState>) -> Self {
        StallWatch { inner, state }
    }

    /// The wrapped I/O object.
    pub(crate) fn get_ref(&self) -> &IO {
        &self.inner
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for StallWatch<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for StallWatch<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.state.on_write(&r, |n| *n > 0);
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.state.on_write(&r, |n| *n > 0);
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.state.on_write(&r, |_| true);
        r
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_counts_per_ip_and_in_total_and_gives_places_back() {
        let a = Arc::new(Admission::default());
        let ip1: IpAddr = "10.0.0.1".parse().unwrap();
        let ip2: IpAddr = "10.0.0.2".parse().unwrap();
        let p1 = a.admit(ip1, 3, 2).unwrap();
        let _p2 = a.admit(ip1, 3, 2).unwrap();
        assert_eq!(a.admit(ip1, 3, 2).unwrap_err(), Refusal::PerIp(2));
        let _p3 = a.admit(ip2, 3, 2).unwrap();
        assert_eq!(a.admit(ip2, 3, 2).unwrap_err(), Refusal::Global(3));
        assert_eq!(a.open(), 3);
        drop(p1);
        assert_eq!(a.open(), 2);
        assert!(a.admit(ip1, 3, 2).is_ok(), "the place came back");
    }

    #[test]
    fn stall_state_records_the_first_blocked_write_and_clears_on_progress() {
        let s = StallState::new();
        assert!(s.blocked_since().is_none());
        s.on_write::<usize>(&Poll::Pending, |n| *n > 0);
        let first = s.blocked_since().expect("blocked");
        s.on_write::<usize>(&Poll::Pending, |n| *n > 0);
        assert_eq!(s.blocked_since(), Some(first), "the first block counts");
        s.on_write(&Poll::Ready(Ok(10usize)), |n| *n > 0);
        assert!(s.blocked_since().is_none());
    }
}
