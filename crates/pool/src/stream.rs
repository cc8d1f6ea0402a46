//! The pooled stream: a plain `AsyncRead + AsyncWrite` byte pipe over one HTTP/2 stream.
//!
//! * **Reading** hands out the DATA the peer sent, in order; the peer's END_STREAM is end of
//!   file; a reset or a lost connection is an error (`ConnectionReset` / `ConnectionAborted`).
//! * **Writing** queues each write with the connection at once (nothing waits for more data:
//!   every write is flushed onto the wire as soon as the connection task takes it). Several
//!   writes may be in flight; past [`MAX_IN_FLIGHT`] bytes a write waits until the connection
//!   has room, so a slow peer pushes back on the writer.
//! * **Half-close**: `shutdown` sends END_STREAM; the peer reads EOF and may go on writing.
//! * **Close**, as closing a TCP socket: dropping a stream whose peer has finished sending
//!   (EOF read) sends END_STREAM if `shutdown` did not, after what was written — a clean
//!   close. Dropping it while the peer may still send aborts it with RST_STREAM(CANCEL), as a
//!   socket closed with unread data sends RST: the peer's next read or write fails with
//!   `ConnectionReset` and it stops sending (it would otherwise send into the void; what we
//!   had queued and not yet sent is dropped too). [`PoolStream::reset`] aborts at any time.
//!   A tunnel that copies both ways until both ends are done closes every stream cleanly.
//! * **Zero copy**: [`PoolStream::read_chunk`] hands out the received `Bytes` as they are
//!   and [`PoolStream::write_chunk`] queues a `Bytes` without copying; `AsyncRead` and
//!   `AsyncWrite` copy once each way (into the caller's buffer; into a recycled arena).
//!   [`crate::relay()`] joins a socket to a stream this way, without copying.
//! * **Timeouts** are per stream ([`PoolStream::set_read_timeout`],
//!   [`PoolStream::set_write_timeout`]): a read or write that cannot finish in time fails
//!   with `TimedOut`; the stream stays usable and other streams are not affected (the Go
//!   library's deadlines went to the shared connection and killed every stream).

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use h2mux::conn::{SendTicket, StreamEvent, StreamReceiver, StreamSender};
use h2mux::wire::ErrorCode;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use crate::id::PoolStreamId;
use crate::transport::{ConnInfo, Counters, Live, TlsInfo};

/// Bytes a stream may have queued with the connection beyond what the connection has
/// accepted, before a write waits.
pub const MAX_IN_FLIGHT: usize = 1 << 20;

/// What a send counts against [`MAX_IN_FLIGHT`] at least.
const MIN_SEND_COST: usize = 1024;

/// Largest single write taken at once (a larger buffer is taken in parts).
const MAX_WRITE: usize = 1 << 20;

/// Writes at least this large are copied into the stream's recycled arenas; smaller ones
/// into a small fresh allocation (cheap, and an idle stream then holds no arena).
const ARENA_MIN_WRITE: usize = 16 << 10;
/// Size of one write arena.
const ARENA: usize = 1 << 20;
/// Arenas kept for reuse besides the current one. The connection keeps a stream's slices
/// until it has written them: up to its per-stream send buffer (4 MiB by default) plus what
/// is in flight here (`MAX_IN_FLIGHT` and one write more), so a steady 1 MiB writer has about
/// seven arenas alive. With only three kept, every write past them allocated a fresh arena and
/// freed an old one: 16 000 page faults per GiB through `AsyncWrite` against 1 700 through
/// `write_chunk` (`perf stat -e page-faults examples/load pool-bulk h2mux 1024`); with eight,
/// 4 000. Spares exist only while the stream writes that much, and go with the stream.
const MAX_SPARE_ARENAS: usize = 8;

/// Where a stream's writes are copied to. Each write leaves as a `Bytes` slice of an arena;
/// once the connection has written (and dropped) every slice of an arena, the arena is
/// reclaimed in place instead of allocating a new one. Fresh 1 MiB allocations per write
/// cost ~90 page faults per MiB (`perf stat` of `examples/load pool-bulk h2mux`), as the
/// driver's read side had found (crates/h2mux/src/read_buffer.rs).
#[derive(Default)]
struct WriteArenas {
    current: Option<BytesMut>,
    spares: Vec<BytesMut>,
    /// Arenas allocated so far (for the tests).
    #[cfg_attr(not(test), allow(dead_code))]
    allocated: usize,
}

impl WriteArenas {
    fn copy(&mut self, data: &[u8]) -> Bytes {
        let n = data.len();
        if n < ARENA_MIN_WRITE {
            return Bytes::copy_from_slice(data);
        }
        let current = self
            .current
            .take()
            .map(|mut b| (b.capacity() >= n || b.try_reclaim(n), b));
        let arena = match current {
            Some((true, b)) => b,
            old => {
                let old = old.map(|(_, b)| b);
                let next = match self.spares.iter_mut().position(|b| b.try_reclaim(n)) {
                    Some(i) => self.spares.swap_remove(i),
                    None => {
                        self.allocated += 1;
                        BytesMut::with_capacity(n.max(ARENA))
                    }
                };
                if let Some(old) = old {
                    if self.spares.len() < MAX_SPARE_ARENAS {
                        self.spares.push(old);
                    }
                }
                next
            }
        };
        let arena = self.current.insert(arena);
        arena.extend_from_slice(data);
        arena.split().freeze()
    }
}

#[derive(Debug)]
enum ReadState {
    Open,
    Eof,
    Failed(io::ErrorKind, String),
}

/// One pooled byte stream. See the module docs.
pub struct PoolStream {
    id: PoolStreamId,
    tx: StreamSender,
    rx: StreamReceiver,
    chunk: Bytes,
    read: ReadState,
    /// Sends queued with the connection, with what each counts against `MAX_IN_FLIGHT`.
    in_flight: VecDeque<(SendTicket, usize)>,
    in_flight_bytes: usize,
    arenas: WriteArenas,
    write_error: Option<(io::ErrorKind, String)>,
    end_sent: bool,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    read_timer: Option<Pin<Box<Sleep>>>,
    write_timer: Option<Pin<Box<Sleep>>>,
    conn: Arc<ConnInfo>,
    /// Keeps the ID reserved in the server pool while the stream exists.
    _hold: Option<IdHold>,
    _live: Live,
}

/// Holds an ID in a registry of IDs in use, until dropped.
pub(crate) struct IdHold {
    pub(crate) registry: Arc<std::sync::Mutex<std::collections::HashSet<PoolStreamId>>>,
    pub(crate) id: PoolStreamId,
}

impl Drop for IdHold {
    fn drop(&mut self) {
        self.registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
    }
}

impl std::fmt::Debug for PoolStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolStream")
            .field("id", &self.id)
            .field("h2_stream", &self.tx.id())
            .field("peer", &self.conn.peer)
            .finish()
    }
}

impl PoolStream {
    pub(crate) fn new(
        id: PoolStreamId,
        (tx, rx): (StreamSender, StreamReceiver),
        first: Bytes,
        ended: bool,
        conn: Arc<ConnInfo>,
        counters: &Arc<Counters>,
        hold: Option<IdHold>,
    ) -> PoolStream {
        PoolStream {
            id,
            tx,
            rx,
            chunk: first,
            read: if ended {
                ReadState::Eof
            } else {
                ReadState::Open
            },
            in_flight: VecDeque::new(),
            in_flight_bytes: 0,
            arenas: WriteArenas::default(),
            write_error: None,
            end_sent: false,
            read_timeout: None,
            write_timeout: None,
            read_timer: None,
            write_timer: None,
            conn,
            _hold: hold,
            _live: Live::new(counters, |c| &c.streams),
        }
    }

    /// The pool ID both ends know this stream by.
    pub fn id(&self) -> PoolStreamId {
        self.id
    }

    /// Our socket address (none on in-memory transports).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.conn.local
    }

    /// The peer's socket address (none on in-memory transports).
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.conn.peer
    }

    /// The TLS session of the stream's connection.
    pub fn tls_info(&self) -> &TlsInfo {
        &self.conn.tls
    }

    /// The number of the connection (server: session) the stream runs on, from 1.
    pub fn session(&self) -> u64 {
        self.conn.session
    }

    /// A read that waits longer than this fails with `TimedOut` (None: wait forever).
    pub fn set_read_timeout(&mut self, t: Option<Duration>) {
        self.read_timeout = t;
        self.read_timer = None;
    }

    /// A write (or flush/shutdown) that waits longer than this for room fails with `TimedOut`.
    pub fn set_write_timeout(&mut self, t: Option<Duration>) {
        self.write_timeout = t;
        self.write_timer = None;
    }

    /// Zero-copy read: the next piece of data as the connection received it (`None` at the
    /// end of the stream), with the read timeout. Mixes freely with `AsyncRead`.
    pub async fn read_chunk(&mut self) -> io::Result<Option<Bytes>> {
        std::future::poll_fn(|cx| self.poll_read_chunk(cx)).await
    }

    /// Poll form of [`PoolStream::read_chunk`].
    pub fn poll_read_chunk(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<Bytes>>> {
        loop {
            if !self.chunk.is_empty() {
                self.read_timer = None;
                return Poll::Ready(Ok(Some(std::mem::take(&mut self.chunk))));
            }
            match &self.read {
                ReadState::Eof => return Poll::Ready(Ok(None)),
                ReadState::Failed(k, m) => return Poll::Ready(Err(io::Error::new(*k, m.clone()))),
                ReadState::Open => {}
            }
            match self.next_event(cx) {
                Poll::Ready(()) => continue,
                Poll::Pending => {
                    if poll_timer(&mut self.read_timer, self.read_timeout, cx) {
                        return Poll::Ready(Err(timed_out("read", self.id, self.read_timeout)));
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    /// Zero-copy write: queues `data` as it is (no copy), waiting for room first as a write
    /// does, with the write timeout.
    pub async fn write_chunk(&mut self, data: Bytes) -> io::Result<()> {
        let mut data = Some(data);
        std::future::poll_fn(|cx| {
            std::task::ready!(self.poll_writable(cx))?;
            if let Some(d) = data.take() {
                self.queue_chunk(d);
            }
            Poll::Ready(Ok(()))
        })
        .await
    }

    /// Ready when a write may be queued: not shut down, and room in flight.
    pub(crate) fn poll_writable(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.end_sent {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                format!("stream {}: write after shutdown", self.id),
            )));
        }
        self.poll_room(cx, MAX_IN_FLIGHT - MIN_SEND_COST)
    }

    /// Resets the stream with CANCEL: both directions end at once and the peer's reads and
    /// writes fail.
    pub fn reset(&mut self) {
        self.tx.reset(ErrorCode::CANCEL);
        self.read = ReadState::Failed(io::ErrorKind::ConnectionReset, "stream reset".into());
        self.write_error = Some((io::ErrorKind::BrokenPipe, "stream reset".into()));
    }

    /// For a stream waiting in a pool: takes the events that already arrived, without
    /// waiting. False when the stream cannot be handed out any more (reset, its connection
    /// lost, or closed by the peer without data); data stays buffered for the reader.
    pub(crate) fn poll_alive(&mut self) -> bool {
        let waker = std::task::Waker::from(Arc::new(NoopWake));
        let mut cx = Context::from_waker(&waker);
        while self.chunk.is_empty() && matches!(self.read, ReadState::Open) {
            match self.next_event(&mut cx) {
                Poll::Ready(()) => continue,
                Poll::Pending => break,
            }
        }
        // Data the peer sent (and perhaps ended) before the stream was taken is the
        // application's to read: only a stream closed or reset empty is dead.
        match self.read {
            ReadState::Open => true,
            ReadState::Eof => !self.chunk.is_empty(),
            ReadState::Failed(..) => false,
        }
    }

    /// Takes one event into the read state (Ready) or registers the waker (Pending).
    fn next_event(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let ev = match self.rx.poll_recv(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(ev) => ev,
        };
        match ev {
            Some(StreamEvent::Data(d, end)) => {
                self.chunk = d;
                if end {
                    self.read = ReadState::Eof;
                }
            }
            Some(StreamEvent::Headers(_, end)) => {
                if end {
                    self.read = ReadState::Eof;
                }
            }
            Some(StreamEvent::Trailers(_)) | None => self.read = ReadState::Eof,
            Some(StreamEvent::Reset(cause)) => {
                let msg = format!("stream {} reset: {cause:?}", self.id);
                self.write_error = Some((io::ErrorKind::ConnectionReset, msg.clone()));
                self.read = ReadState::Failed(io::ErrorKind::ConnectionReset, msg);
            }
            Some(StreamEvent::ConnectionLost(e)) => {
                let msg = format!("stream {}: connection lost ({e})", self.id);
                self.write_error = Some((io::ErrorKind::ConnectionAborted, msg.clone()));
                self.read = ReadState::Failed(io::ErrorKind::ConnectionAborted, msg);
            }
        }
        Poll::Ready(())
    }

    /// Retires the sends the connection has taken, oldest first; Ready once at most `keep`
    /// bytes remain in flight.
    fn poll_retire(&mut self, cx: &mut Context<'_>, keep: usize) -> Poll<io::Result<()>> {
        while let Some((ticket, cost)) = self.in_flight.front_mut() {
            match Pin::new(ticket).poll(cx) {
                Poll::Pending => break,
                Poll::Ready(r) => {
                    self.in_flight_bytes -= *cost;
                    self.in_flight.pop_front();
                    if let Err(e) = r {
                        let kind = match e {
                            h2mux::Error::StreamReset(_) => io::ErrorKind::ConnectionReset,
                            h2mux::Error::ConnectionClosed | h2mux::Error::Protocol(_) => {
                                io::ErrorKind::ConnectionAborted
                            }
                            // The stream no longer takes data (reset, or ended by us).
                            _ => io::ErrorKind::BrokenPipe,
                        };
                        self.write_error = Some((kind, format!("stream {}: {e}", self.id)));
                        self.in_flight.clear();
                        self.in_flight_bytes = 0;
                        return Poll::Ready(Err(self.write_err()));
                    }
                }
            }
        }
        if self.in_flight_bytes <= keep {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }

    fn write_err(&self) -> io::Error {
        match &self.write_error {
            Some((k, m)) => io::Error::new(*k, m.clone()),
            None => io::Error::other("no error"),
        }
    }

    /// Waits for room for the writer, with the write timeout.
    fn poll_room(&mut self, cx: &mut Context<'_>, keep: usize) -> Poll<io::Result<()>> {
        if self.write_error.is_some() {
            return Poll::Ready(Err(self.write_err()));
        }
        match self.poll_retire(cx, keep) {
            Poll::Ready(r) => {
                self.write_timer = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                if poll_timer(&mut self.write_timer, self.write_timeout, cx) {
                    return Poll::Ready(Err(timed_out("write", self.id, self.write_timeout)));
                }
                Poll::Pending
            }
        }
    }

    /// Queues `data` without waiting (after [`PoolStream::poll_writable`] said there is room).
    pub(crate) fn queue_chunk(&mut self, data: Bytes) {
        if !data.is_empty() {
            self.start_send(data, false);
        }
    }

    fn start_send(&mut self, data: Bytes, end: bool) {
        // Small sends count as 1 KiB, so the number of tickets in flight is bounded too.
        let cost = data.len().max(MIN_SEND_COST);
        self.in_flight
            .push_back((self.tx.start_send_data(data, end), cost));
        self.in_flight_bytes += cost;
    }
}

/// Streams leaving a pool unused: reset, so the peer's half leaves its pool too.
pub(crate) fn discard(streams: impl IntoIterator<Item = PoolStream>) {
    for mut s in streams {
        s.reset();
    }
}

impl Drop for PoolStream {
    fn drop(&mut self) {
        match self.read {
            // The peer is done: close cleanly, END_STREAM after what was written (the driver
            // then forgets the stream without resetting it).
            ReadState::Eof => {
                if !self.end_sent && self.write_error.is_none() {
                    drop(self.tx.start_send_data(Bytes::new(), true));
                }
            }
            // The peer may still send: abort, so that it learns and stops.
            ReadState::Open => self.tx.reset(ErrorCode::CANCEL),
            ReadState::Failed(..) => {}
        }
    }
}

struct NoopWake;
impl std::task::Wake for NoopWake {
    fn wake(self: Arc<Self>) {}
}

/// Arms the timer on the first pending poll; true when it fired (and then disarms it).
fn poll_timer(
    timer: &mut Option<Pin<Box<Sleep>>>,
    timeout: Option<Duration>,
    cx: &mut Context<'_>,
) -> bool {
    let Some(t) = timeout else {
        return false;
    };
    let sleep = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(t)));
    if sleep.as_mut().poll(cx).is_ready() {
        *timer = None;
        return true;
    }
    false
}

fn timed_out(what: &str, id: PoolStreamId, t: Option<Duration>) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!(
            "{what} on stream {id} timed out after {:?}",
            t.unwrap_or_default()
        ),
    )
}

use std::future::Future;

impl AsyncRead for PoolStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.chunk.is_empty() {
            match std::task::ready!(this.poll_read_chunk(cx))? {
                Some(c) => this.chunk = c,
                None => return Poll::Ready(Ok(())),
            }
        }
        loop {
            let n = this.chunk.len().min(buf.remaining());
            buf.put_slice(&this.chunk[..n]);
            if n == this.chunk.len() {
                // Let go of the driver's read buffer now: an empty slice still pins it, and
                // the driver can reuse a buffer only once every slice of it is dropped.
                this.chunk = Bytes::new();
            } else {
                this.chunk.advance(n);
            }
            // Room left: take what has already arrived too (one read per event would make
            // a caller with a large buffer read in frame-sized pieces), without waiting.
            // An end or error that comes now is reported by the next read, after this data.
            if buf.remaining() == 0 || !matches!(this.read, ReadState::Open) {
                break;
            }
            if this.next_event(cx).is_pending() {
                break;
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for PoolStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        std::task::ready!(this.poll_writable(cx))?;
        let n = buf.len().min(MAX_WRITE);
        let data = this.arenas.copy(&buf[..n]);
        this.start_send(data, false);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_room(cx, 0)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.end_sent {
            std::task::ready!(this.poll_room(cx, 0))?;
            this.start_send(Bytes::new(), true);
            this.end_sent = true;
        }
        this.poll_room(cx, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_arenas_are_reused_once_their_slices_are_dropped() {
        let mut a = WriteArenas::default();
        let data = vec![7u8; 600 << 10];
        let first = a.copy(&data);
        assert_eq!(&first[..], &data[..]);
        let p1 = first.as_ptr();
        // Still in flight: the next copy cannot reuse its memory.
        let second = a.copy(&data);
        assert_ne!(second.as_ptr(), p1);
        drop(first);
        drop(second);
        // Both gone: the memory of the first arena comes back (current or spare).
        let third = a.copy(&data);
        let fourth = a.copy(&data);
        assert!(
            third.as_ptr() == p1 || fourth.as_ptr() == p1,
            "a dropped arena is reclaimed instead of allocating"
        );
        assert!(a.spares.len() <= MAX_SPARE_ARENAS);
    }

    #[test]
    fn a_steady_writer_reuses_its_arenas_while_the_connection_holds_several() {
        // 1 MiB writes, the connection holding the last seven until it has written them:
        // after the first seven, no arena is allocated any more.
        let mut a = WriteArenas::default();
        let data = vec![1u8; 1 << 20];
        let mut held = VecDeque::new();
        for _ in 0..100 {
            held.push_back(a.copy(&data));
            if held.len() > 7 {
                held.pop_front();
            }
        }
        assert!(
            a.allocated <= 8,
            "{} arenas allocated for 100 writes",
            a.allocated
        );
    }

    #[test]
    fn small_writes_take_no_arena() {
        let mut a = WriteArenas::default();
        let b = a.copy(b"small");
        assert_eq!(&b[..], b"small");
        assert!(a.current.is_none() && a.spares.is_empty());
    }
}
