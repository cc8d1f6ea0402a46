//! The tokio driver: one task per connection owns the socket and the sans-I/O
//! [`h2mux_proto::Connection`]; stream handles talk to it through channels.
//!
//! # Why channels and not a shared lock
//! The core is one plain data structure per connection. Putting it behind a mutex shared by
//! every stream would make every `send_data` and every received frame contend on one lock
//! (and hold it across frame parsing). Instead the connection task is the single owner: it
//! reads the socket into one large reusable buffer, feeds the core, writes what the core
//! produces with vectored writes, and exchanges *messages* with the streams — commands in
//! (one unbounded MPSC queue per connection, each message a few words), events out (one
//! queue per stream). No lock is shared by all streams on the hot path.
//!
//! # Back-pressure
//! * Receiving: DATA reaches a stream as zero-copy `Bytes` slices of the read buffer; the
//!   core gives the peer window back only when the stream's reader has *consumed* a chunk
//!   (the handle reports it), so a slow reader stalls its sender instead of growing a queue —
//!   the per-stream queue is bounded by the flow-control window.
//! * Sending: [`StreamHandle::send_data`] resolves once the core has room for more on that
//!   stream (`send_capacity`, `Event::Writable`), so an application can never queue more than
//!   `Config::send_buffer_per_stream` per stream.
//! * Writing: while bytes wait for a slow socket the task stops reading, so a peer that does
//!   not read (CVE-2019-9517) cannot make us buffer without bound.

use std::collections::{HashMap, VecDeque};
use std::io::IoSlice;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use h2mux_proto::{Config, Connection, Event, HeaderField, ResetCause, Role, StreamId};
use h2mux_wire::ErrorCode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::error::Error;

/// Size of the read buffer (reused across reads while DATA slices are released).
const READ_BUFFER: usize = 256 * 1024;
/// Most chunks handed to one vectored write.
const MAX_IOVECS: usize = 64;
/// Stop reading while this many bytes wait to be written.
const MAX_PENDING_WRITE: usize = 8 << 20;

/// What a stream learns from the connection.
#[derive(Debug)]
pub enum StreamEvent {
    /// Request (server) or response (client) headers; 1xx responses come as their own event.
    Headers(Vec<HeaderField>, bool),
    /// Body data (zero-copy), and whether the peer ended the stream.
    Data(Bytes, bool),
    /// Trailers; the stream is ended.
    Trailers(Vec<HeaderField>),
    /// The stream was reset (by the peer, by us for a peer fault, or refused by GOAWAY).
    Reset(ResetCause),
    /// The connection failed.
    ConnectionLost(Error),
}

pub(crate) enum Command {
    Open {
        headers: Vec<HeaderField>,
        end_stream: bool,
        reply: oneshot::Sender<Result<StreamHandle, Error>>,
    },
    Headers {
        id: StreamId,
        headers: Vec<HeaderField>,
        end_stream: bool,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    Data {
        id: StreamId,
        data: Bytes,
        end_stream: bool,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    Trailers {
        id: StreamId,
        headers: Vec<HeaderField>,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    Reset {
        id: StreamId,
        code: ErrorCode,
    },
    Release {
        id: StreamId,
        n: usize,
    },
    Ignore {
        id: StreamId,
    },
    Forget {
        id: StreamId,
    },
    Shutdown,
    /// Ends the connection at once with GOAWAY(code) (e.g. a drain deadline passed).
    Abort {
        code: ErrorCode,
    },
}

/// Shared by the two halves of a stream; when the last half goes, the connection forgets the
/// stream (resetting it with CANCEL if it is still open).
struct StreamRef {
    id: StreamId,
    commands: mpsc::UnboundedSender<Command>,
}

impl Drop for StreamRef {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Forget { id: self.id });
    }
}

/// The sending half of a stream (cloneable).
#[derive(Clone)]
pub struct StreamSender {
    inner: Arc<StreamRef>,
}

/// The receiving half of a stream.
pub struct StreamReceiver {
    inner: Arc<StreamRef>,
    events: mpsc::UnboundedReceiver<StreamEvent>,
    /// Bytes received and not yet reported consumed.
    unreleased: usize,
    finished: bool,
}

/// A handle on one stream: send headers/data/trailers, receive events, reset. Split it to
/// send and receive from different tasks.
pub struct StreamHandle {
    tx: StreamSender,
    rx: StreamReceiver,
}

impl std::fmt::Debug for StreamHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamHandle")
            .field("id", &self.id())
            .finish()
    }
}

impl StreamHandle {
    /// The stream's identifier.
    pub fn id(&self) -> StreamId {
        self.tx.inner.id
    }
    /// Splits into the sending and the receiving half.
    pub fn split(self) -> (StreamSender, StreamReceiver) {
        (self.tx, self.rx)
    }
    /// See [`StreamSender::send_headers`].
    pub async fn send_headers(
        &self,
        headers: Vec<HeaderField>,
        end_stream: bool,
    ) -> Result<(), Error> {
        self.tx.send_headers(headers, end_stream).await
    }
    /// See [`StreamSender::send_data`].
    pub async fn send_data(&self, data: Bytes, end_stream: bool) -> Result<(), Error> {
        self.tx.send_data(data, end_stream).await
    }
    /// See [`StreamSender::send_trailers`].
    pub async fn send_trailers(&self, headers: Vec<HeaderField>) -> Result<(), Error> {
        self.tx.send_trailers(headers).await
    }
    /// See [`StreamSender::reset`].
    pub fn reset(&mut self, code: ErrorCode) {
        self.rx.finished = true;
        self.tx.reset(code);
    }
    /// See [`StreamReceiver::recv`].
    pub async fn recv(&mut self) -> Option<StreamEvent> {
        self.rx.recv().await
    }
}

impl StreamSender {
    /// The stream's identifier.
    pub fn id(&self) -> StreamId {
        self.inner.id
    }

    async fn call(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<(), Error>>) -> Command,
    ) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .commands
            .send(make(tx))
            .map_err(|_| Error::ConnectionClosed)?;
        rx.await.map_err(|_| Error::ConnectionClosed)?
    }

    /// Sends response headers (server) — or informational ones when `end_stream` is false
    /// and the status is 1xx.
    pub async fn send_headers(
        &self,
        headers: Vec<HeaderField>,
        end_stream: bool,
    ) -> Result<(), Error> {
        let id = self.inner.id;
        self.call(|reply| Command::Headers {
            id,
            headers,
            end_stream,
            reply,
        })
        .await
    }

    /// Queues body data; resolves once the connection can take more on this stream.
    pub async fn send_data(&self, data: Bytes, end_stream: bool) -> Result<(), Error> {
        let id = self.inner.id;
        self.call(|reply| Command::Data {
            id,
            data,
            end_stream,
            reply,
        })
        .await
    }

    /// Queues body data now, without waiting; the returned [`SendTicket`] resolves as
    /// [`StreamSender::send_data`] does (once the connection can take more on this stream, or
    /// with the error). Tickets resolve in the order the data was queued, so a writer may keep
    /// several in flight (bounding their bytes itself) instead of waiting for each.
    pub fn start_send_data(&self, data: Bytes, end_stream: bool) -> SendTicket {
        let (reply, rx) = oneshot::channel();
        // A closed connection drops the command, and with it `reply`: the ticket then resolves
        // with `ConnectionClosed`.
        let _ = self.inner.commands.send(Command::Data {
            id: self.inner.id,
            data,
            end_stream,
            reply,
        });
        SendTicket(rx)
    }

    /// Sends trailers, ending the stream.
    pub async fn send_trailers(&self, headers: Vec<HeaderField>) -> Result<(), Error> {
        let id = self.inner.id;
        self.call(|reply| Command::Trailers { id, headers, reply })
            .await
    }

    /// Resets the stream with `code`.
    pub fn reset(&self, code: ErrorCode) {
        let _ = self.inner.commands.send(Command::Reset {
            id: self.inner.id,
            code,
        });
    }
}

impl StreamReceiver {
    /// The stream's identifier.
    pub fn id(&self) -> StreamId {
        self.inner.id
    }

    /// The next event; `None` once the stream is over. Data consumed by the caller is given
    /// back to the peer's window when the next event is asked for.
    pub async fn recv(&mut self) -> Option<StreamEvent> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Poll form of [`StreamReceiver::recv`], for `AsyncRead` adapters.
    pub fn poll_recv(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<StreamEvent>> {
        self.release_pending();
        if self.finished {
            return std::task::Poll::Ready(None);
        }
        let ev = std::task::ready!(self.events.poll_recv(cx));
        match &ev {
            Some(StreamEvent::Data(d, end)) => {
                self.unreleased += d.len();
                if *end {
                    self.release_pending();
                    self.finished = true;
                }
            }
            Some(StreamEvent::Headers(_, true)) | Some(StreamEvent::Trailers(_)) => {
                self.finished = true
            }
            Some(StreamEvent::Reset(_)) | Some(StreamEvent::ConnectionLost(_)) | None => {
                self.finished = true
            }
            Some(StreamEvent::Headers(_, false)) => {}
        }
        std::task::Poll::Ready(ev)
    }

    fn release_pending(&mut self) {
        if self.unreleased > 0 {
            let _ = self.inner.commands.send(Command::Release {
                id: self.inner.id,
                n: self.unreleased,
            });
            self.unreleased = 0;
        }
    }
}

impl Drop for StreamReceiver {
    fn drop(&mut self) {
        self.release_pending();
        // Nobody reads any more: the connection releases whatever still arrives.
        let _ = self
            .inner
            .commands
            .send(Command::Ignore { id: self.inner.id });
    }
}

/// A send queued by [`StreamSender::start_send_data`]: resolves once the connection can take
/// more data on the stream, or with the error that ended it.
#[derive(Debug)]
pub struct SendTicket(oneshot::Receiver<Result<(), Error>>);

impl std::future::Future for SendTicket {
    type Output = Result<(), Error>;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::future::Future::poll(std::pin::Pin::new(&mut self.0), cx)
            .map(|r| r.unwrap_or(Err(Error::ConnectionClosed)))
    }
}

/// A cloneable handle on a connection: open streams (client role), shut down.
#[derive(Clone, Debug)]
pub struct ConnectionHandle {
    commands: mpsc::UnboundedSender<Command>,
    info: Arc<ConnectionInfo>,
}

/// What the connection task publishes for handles to read without a round trip (for
/// pickers such as the RPC channel): the peer's stream limit and whether new streams are
/// still welcome.
#[derive(Debug)]
struct ConnectionInfo {
    peer_max_concurrent_streams: AtomicU32,
    going_away: AtomicBool,
}

impl ConnectionHandle {
    /// Opens a stream with request headers (client role). When the peer's concurrency limit
    /// is reached the stream waits in the core's queue and its events come when it opens.
    pub async fn open(
        &self,
        headers: Vec<HeaderField>,
        end_stream: bool,
    ) -> Result<StreamHandle, Error> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Open {
                headers,
                end_stream,
                reply: tx,
            })
            .map_err(|_| Error::ConnectionClosed)?;
        rx.await.map_err(|_| Error::ConnectionClosed)?
    }

    /// Starts a graceful shutdown (GOAWAY; open streams drain).
    pub fn shutdown(&self) {
        let _ = self.commands.send(Command::Shutdown);
    }

    /// Whether the connection task has ended.
    pub fn is_closed(&self) -> bool {
        self.commands.is_closed()
    }

    /// Ends the connection at once: GOAWAY with `code`, every stream fails. For a drain
    /// deadline that has passed; [`ConnectionHandle::shutdown`] is the graceful way.
    pub fn abort(&self, code: ErrorCode) {
        let _ = self.commands.send(Command::Abort { code });
    }

    /// Resolves when the connection task has ended (socket closed or failed, GOAWAY drained,
    /// keepalive timed out): the moment every stream of the connection is gone.
    pub async fn closed(&self) {
        self.commands.closed().await
    }

    /// The peer's SETTINGS_MAX_CONCURRENT_STREAMS as last received (`u32::MAX` until its
    /// SETTINGS arrive, as RFC 9113 §6.5.2 has it). Streams opened beyond it wait in the
    /// connection's queue.
    pub fn peer_max_concurrent_streams(&self) -> u32 {
        self.info
            .peer_max_concurrent_streams
            .load(Ordering::Relaxed)
    }

    /// Whether the connection takes no new streams any more: a GOAWAY was received or sent
    /// (graceful shutdown), the connection failed, or its task has ended.
    pub fn is_going_away(&self) -> bool {
        self.info.going_away.load(Ordering::Relaxed) || self.is_closed()
    }
}

struct StreamSlot {
    events: mpsc::UnboundedSender<StreamEvent>,
    /// A `send_data` waiting for room.
    writer: Option<oneshot::Sender<Result<(), Error>>>,
    /// The handle was dropped: release whatever arrives.
    orphan: bool,
    /// We queued our END_STREAM (headers, data or trailers): nothing of ours is cut short if
    /// the handles go away.
    local_done: bool,
}

/// Starts the connection task on `io` and returns its handle and, for servers, the queue of
/// streams the peer opens.
pub fn spawn<IO>(
    io: IO,
    role: Role,
    config: Config,
) -> (ConnectionHandle, mpsc::UnboundedReceiver<StreamHandle>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (accept_tx, accept_rx) = mpsc::unbounded_channel();
    let info = Arc::new(ConnectionInfo {
        peer_max_concurrent_streams: AtomicU32::new(u32::MAX),
        going_away: AtomicBool::new(false),
    });
    let handle = ConnectionHandle {
        commands: cmd_tx.clone(),
        info: info.clone(),
    };
    tokio::spawn(run(io, role, config, cmd_tx, cmd_rx, accept_tx, info));
    (handle, accept_rx)
}

struct Driver {
    conn: Connection,
    streams: HashMap<StreamId, StreamSlot>,
    commands: mpsc::UnboundedSender<Command>,
    accept: mpsc::UnboundedSender<StreamHandle>,
    pending: VecDeque<Bytes>,
    pending_bytes: usize,
    chunks: Vec<Bytes>,
    /// The peer's GOAWAY with an error code, if any: what its closing the connection means.
    peer_goaway: Option<Error>,
    /// After an abort: when to drop the socket even if the GOAWAY could not be written (a
    /// peer that stopped reading must not keep the task alive).
    abort_at: Option<Instant>,
    info: Arc<ConnectionInfo>,
}

/// How long an aborted connection may still try to write its GOAWAY.
const ABORT_GRACE: Duration = Duration::from_secs(1);

async fn run<IO>(
    io: IO,
    role: Role,
    config: Config,
    cmd_tx: mpsc::UnboundedSender<Command>,
    mut cmd_rx: mpsc::UnboundedReceiver<Command>,
    accept: mpsc::UnboundedSender<StreamHandle>,
    info: Arc<ConnectionInfo>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(io);
    let start = std::time::Instant::now();
    let mut d = Driver {
        conn: Connection::new(role, config, start),
        streams: HashMap::new(),
        commands: cmd_tx,
        accept,
        pending: VecDeque::new(),
        pending_bytes: 0,
        chunks: Vec::new(),
        peer_goaway: None,
        abort_at: None,
        info,
    };
    let mut rbuf = BytesMut::with_capacity(READ_BUFFER);
    let mut read_open = true;
    d.flush_core();
    loop {
        if d.conn.is_closed() && d.pending.is_empty() {
            break;
        }
        if !read_open && d.pending.is_empty() && d.streams.is_empty() && cmd_rx.is_closed() {
            break;
        }
        let deadline = d.conn.poll_timeout().map(Instant::from_std);
        let can_read = read_open && d.pending_bytes < MAX_PENDING_WRITE;
        if rbuf.capacity() - rbuf.len() < READ_BUFFER / 4 {
            rbuf.reserve(READ_BUFFER);
        }
        tokio::select! {
            r = rd.read_buf(&mut rbuf), if can_read => {
                match r {
                    Ok(0) | Err(_) => {
                        read_open = false;
                        let e = d.peer_goaway.clone().unwrap_or(Error::ConnectionClosed);
                        d.fail_all(e);
                        if d.pending.is_empty() {
                            break;
                        }
                    }
                    Ok(_) => {
                        let _ = d.conn.recv(&mut rbuf, std::time::Instant::now());
                        d.dispatch_events();
                        d.flush_core();
                    }
                }
            }
            r = write_some(&mut wr, &d.pending), if !d.pending.is_empty() => {
                match r {
                    Ok(n) => d.advance(n),
                    Err(_) => {
                        d.fail_all(Error::ConnectionClosed);
                        break;
                    }
                }
            }
            cmd = cmd_rx.recv() => {
                match cmd {
                    Some(c) => {
                        d.command(c);
                        // Take whatever else is queued before writing: one write for many commands.
                        while let Ok(c) = cmd_rx.try_recv() {
                            d.command(c);
                        }
                        d.dispatch_events();
                        d.flush_core();
                    }
                    None => {
                        // Every handle is gone: close gracefully.
                        let _ = d.conn.graceful_shutdown(std::time::Instant::now());
                        d.flush_core();
                    }
                }
            }
            _ = sleep_until(deadline) => {
                d.conn.handle_timeout(std::time::Instant::now());
                d.dispatch_events();
                d.flush_core();
            }
            _ = sleep_until(d.abort_at), if d.abort_at.is_some() => break,
        }
    }
    // Bounded: over TLS the shutdown writes close_notify, which a peer that stopped reading
    // would never let out.
    let _ = tokio::time::timeout(ABORT_GRACE, wr.shutdown()).await;
    d.fail_all(Error::ConnectionClosed);
    if read_open {
        linger(&mut rd).await;
    }
}

/// How long a closing connection keeps reading (and discarding) what the peer still sends.
const LINGER: Duration = Duration::from_secs(2);

/// Lingering close: after our FIN, read and discard until the peer closes too (at most
/// [`LINGER`]). Closing at once while the peer still sends — WINDOW_UPDATEs for the response
/// it is reading — makes the kernel answer with a TCP reset, and a reset makes the peer's
/// kernel drop what it received but had not yet read: the tail of our last response.
async fn linger<R: AsyncRead + Unpin>(rd: &mut R) {
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(LINGER, async {
        while let Ok(n) = rd.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

async fn write_some<W: AsyncWrite + Unpin>(
    wr: &mut W,
    pending: &VecDeque<Bytes>,
) -> std::io::Result<usize> {
    let slices: Vec<IoSlice<'_>> = pending
        .iter()
        .take(MAX_IOVECS)
        .map(|b| IoSlice::new(b))
        .collect();
    let n = wr.write_vectored(&slices).await?;
    if n == 0 {
        return Err(std::io::ErrorKind::WriteZero.into());
    }
    Ok(n)
}

impl Driver {
    fn flush_core(&mut self) {
        let now = std::time::Instant::now();
        loop {
            self.chunks.clear();
            if self.conn.poll_transmit(now, &mut self.chunks) == 0 {
                break;
            }
            for c in self.chunks.drain(..) {
                self.pending_bytes += c.len();
                self.pending.push_back(c);
            }
        }
        // Room may have opened for parked writers.
        self.wake_writers();
    }

    fn advance(&mut self, mut n: usize) {
        self.pending_bytes -= n;
        while n > 0 {
            let Some(front) = self.pending.front_mut() else {
                break;
            };
            if n >= front.len() {
                n -= front.len();
                self.pending.pop_front();
            } else {
                front.advance(n);
                n = 0;
            }
        }
        if self.pending.is_empty() {
            self.flush_core();
        }
    }

    fn wake_writers(&mut self) {
        for (id, slot) in self.streams.iter_mut() {
            if slot.writer.is_some() && self.conn.send_capacity(*id).is_none_or(|c| c > 0) {
                if let Some(w) = slot.writer.take() {
                    let _ = w.send(Ok(()));
                }
            }
        }
    }

    fn mark_done(&mut self, id: StreamId) {
        if let Some(slot) = self.streams.get_mut(&id) {
            slot.local_done = true;
        }
    }

    fn new_slot(&mut self, id: StreamId) -> StreamHandle {
        let (tx, rx) = mpsc::unbounded_channel();
        self.streams.insert(
            id,
            StreamSlot {
                events: tx,
                writer: None,
                orphan: false,
                local_done: false,
            },
        );
        let inner = Arc::new(StreamRef {
            id,
            commands: self.commands.clone(),
        });
        StreamHandle {
            tx: StreamSender {
                inner: inner.clone(),
            },
            rx: StreamReceiver {
                inner,
                events: rx,
                unreleased: 0,
                finished: false,
            },
        }
    }

    fn command(&mut self, c: Command) {
        let now = std::time::Instant::now();
        match c {
            Command::Open {
                headers,
                end_stream,
                reply,
            } => {
                let r = self
                    .conn
                    .open_stream(headers, end_stream)
                    .map_err(Error::from)
                    .map(|id| self.new_slot(id));
                if let (Ok(h), true) = (&r, end_stream) {
                    self.mark_done(h.id());
                }
                let _ = reply.send(r);
            }
            Command::Headers {
                id,
                headers,
                end_stream,
                reply,
            } => {
                let r = self
                    .conn
                    .send_headers(id, headers, end_stream)
                    .map_err(Error::from);
                if r.is_ok() && end_stream {
                    self.mark_done(id);
                }
                let _ = reply.send(r);
            }
            Command::Data {
                id,
                data,
                end_stream,
                reply,
            } => match self.conn.send_data(id, data, end_stream) {
                Err(e) => {
                    let _ = reply.send(Err(e.into()));
                }
                Ok(()) => {
                    if end_stream {
                        self.mark_done(id);
                    }
                    let full = self.conn.send_capacity(id).is_some_and(|c| c == 0);
                    match self.streams.get_mut(&id) {
                        Some(slot) if full => {
                            // An earlier writer still parked (several sends in flight, or a
                            // cloned sender): its data is queued too, and the newest writer now
                            // carries the back-pressure, so the earlier one is released.
                            if let Some(earlier) = slot.writer.replace(reply) {
                                let _ = earlier.send(Ok(()));
                            }
                        }
                        _ => {
                            let _ = reply.send(Ok(()));
                        }
                    }
                }
            },
            Command::Trailers { id, headers, reply } => {
                let r = self.conn.send_trailers(id, headers).map_err(Error::from);
                if r.is_ok() {
                    self.mark_done(id);
                }
                let _ = reply.send(r);
            }
            Command::Reset { id, code } => {
                let _ = self.conn.reset(id, code);
                self.streams.remove(&id);
            }
            Command::Release { id, n } => {
                let _ = self.conn.release_capacity(id, n);
            }
            Command::Ignore { id } => {
                if let Some(slot) = self.streams.get_mut(&id) {
                    slot.orphan = true;
                }
            }
            Command::Forget { id } => {
                // Both halves are gone. If our side was not finished the stream is cancelled;
                // if it was, what we queued still goes out and whatever the peer still sends is
                // released unread (no slot any more).
                let unfinished = self.streams.remove(&id).is_some_and(|s| !s.local_done);
                if unfinished
                    && self
                        .conn
                        .stream_state(id)
                        .is_some_and(|s| s != h2mux_proto::StreamState::Closed)
                {
                    let _ = self.conn.reset(id, ErrorCode::CANCEL);
                }
            }
            Command::Shutdown => {
                self.info.going_away.store(true, Ordering::Relaxed);
                let _ = self.conn.graceful_shutdown(now);
            }
            Command::Abort { code } => {
                self.conn.abort(code);
                self.fail_all(Error::ConnectionClosed);
                self.abort_at = Some(Instant::now() + ABORT_GRACE);
            }
        }
    }

    fn dispatch_events(&mut self) {
        while let Some(ev) = self.conn.poll_event() {
            match ev {
                Event::Headers {
                    id,
                    fields,
                    end_stream,
                } => {
                    if !self.streams.contains_key(&id) && self.conn.role() == Role::Server {
                        let handle = self.new_slot(id);
                        if self.accept.send(handle).is_err() {
                            let _ = self.conn.reset(id, ErrorCode::REFUSED_STREAM);
                            self.streams.remove(&id);
                            continue;
                        }
                    }
                    self.deliver(id, StreamEvent::Headers(fields, end_stream));
                }
                Event::Data {
                    id,
                    data,
                    end_stream,
                } => {
                    let n = data.len();
                    if !self.deliver(id, StreamEvent::Data(data, end_stream)) {
                        let _ = self.conn.release_capacity(id, n);
                    }
                }
                Event::Trailers { id, fields } => {
                    self.deliver(id, StreamEvent::Trailers(fields));
                }
                Event::Reset { id, cause } => {
                    if let Some(slot) = self.streams.remove(&id) {
                        // Refused by a GOAWAY with an error code: that code is the reason.
                        let refused_by = match (&cause, &self.peer_goaway) {
                            (ResetCause::GoAway, Some(e)) => Some(e.clone()),
                            _ => None,
                        };
                        let err = refused_by
                            .clone()
                            .unwrap_or_else(|| Error::from_reset(&cause));
                        if let Some(w) = slot.writer {
                            let _ = w.send(Err(err));
                        }
                        let _ = slot.events.send(match refused_by {
                            Some(e) => StreamEvent::ConnectionLost(e),
                            None => StreamEvent::Reset(cause),
                        });
                    }
                }
                // The event may be older than the writer now parked (it is dispatched after
                // the commands of the same turn): wake only if there is room now.
                Event::Writable { id } if self.conn.send_capacity(id).is_none_or(|c| c > 0) => {
                    if let Some(w) = self.streams.get_mut(&id).and_then(|s| s.writer.take()) {
                        let _ = w.send(Ok(()));
                    }
                }
                Event::ConnectionError(e) => {
                    self.info.going_away.store(true, Ordering::Relaxed);
                    self.fail_all(Error::from_connection_error(&e))
                }
                Event::PeerSettings(s) => self
                    .info
                    .peer_max_concurrent_streams
                    .store(s.max_concurrent_streams, Ordering::Relaxed),
                Event::GoAway {
                    code, debug_data, ..
                } => {
                    self.info.going_away.store(true, Ordering::Relaxed);
                    if code != ErrorCode::NO_ERROR {
                        // Streams still open when the peer then closes fail with its reason.
                        self.peer_goaway = Some(Error::peer_goaway(code, &debug_data));
                    }
                }
                _ => {}
            }
        }
    }

    /// Sends an event to a stream's handle; false when nobody is listening.
    fn deliver(&mut self, id: StreamId, ev: StreamEvent) -> bool {
        match self.streams.get(&id) {
            Some(slot) if !slot.orphan => slot.events.send(ev).is_ok(),
            _ => false,
        }
    }

    fn fail_all(&mut self, e: Error) {
        self.info.going_away.store(true, Ordering::Relaxed);
        for (_, slot) in self.streams.drain() {
            if let Some(w) = slot.writer {
                let _ = w.send(Err(e.clone()));
            }
            let _ = slot.events.send(StreamEvent::ConnectionLost(e.clone()));
        }
    }
}

/// How long a graceful shutdown waits for streams before the connection is dropped.
pub const DEFAULT_DRAIN: Duration = Duration::from_secs(30);
