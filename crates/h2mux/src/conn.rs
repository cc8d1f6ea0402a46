//! The tokio driver: one task per connection owns the socket and the sans-I/O
//! [`h2mux_proto::Connection`]; stream handles talk to it through one command queue and a
//! small state block per stream.
//!
//! # The task
//! [`spawn`] starts one future per connection that polls, in turn: every queued command, the
//! socket (reads fed to the core until the socket has nothing more, the events they make
//! handed to the streams a slice at a time — see `Driver::dispatch_events`), the core's output
//! (everything it has to send, gathered into vectored writes of up to [`MAX_IOVECS`] chunks —
//! whatever was queued by all streams since the last write leaves in one syscall), and one
//! timer (the core's deadlines, and the idle deadline that gives the read buffers back).
//! The socket is not split: the task owns it whole. The core is asked for new output only
//! when what it gave before is (almost) written, so control frames it generates meanwhile
//! (WINDOW_UPDATE, PING and SETTINGS ACKs) head the next write instead of queueing behind
//! megabytes of DATA. Reads: [`crate::read_buffer`].
//!
//! # Why a queue in and a state block per stream, and no lock shared by all streams
//! The core is one plain data structure per connection. Putting it behind a mutex shared by
//! every stream would make every `send_data` and every received frame contend on one lock
//! (hyper's `h2` does this: its one connection reaches 0.72× of four in the issue's
//! two-process measurement). Here the connection task is the only owner of the core. Streams
//! send it *commands* through one unbounded MPSC queue per connection (lock-free; each
//! command a few words), and the task answers through a per-stream [`StreamShared`] block: a
//! `Mutex` that only that stream's handles and the task ever take, never held across an
//! `await` or while another lock is held — events in, send tickets resolved, wakers.
//!
//! The first version had a tokio MPSC queue per stream for events and a `oneshot` per
//! command for the answer. Measured with `valgrind --tool=callgrind` on
//! `examples/load rps-1conn h2mux 20000` (100-byte requests, 100 in flight, client and server
//! in one process), creating the per-stream queue alone cost 5 200 instructions per request
//! (its first block holds 32 events and is allocated cache-aligned) and the oneshots and
//! their wake-ups another ~1 500, of ~59 500 instructions per request in all. The state block
//! is one allocation per stream; the answer to a command is a counter bump under that lock.
//! See BENCHMARKS.md for the before/after figures.
//!
//! # Back-pressure
//! * Receiving: DATA reaches a stream as zero-copy `Bytes` slices of the read buffer; the
//!   core gives the peer window back only when the stream's reader has *consumed* a chunk
//!   (the handle reports it), so a slow reader stalls its sender instead of growing a queue —
//!   the per-stream queue is bounded by the flow-control window. Data still queued for a
//!   receiver that is dropped is released at once.
//! * Sending: [`StreamSender::send_data`] resolves once the core has room for more on that
//!   stream (`send_capacity`, `Event::Writable`), so an application can never queue more than
//!   `Config::send_buffer_per_stream` per stream (plus the chunk in hand).
//! * Writing: while more than [`MAX_PENDING_WRITE`] bytes wait for a slow socket the task
//!   stops reading, so a peer that does not read (CVE-2019-9517) cannot make us buffer
//!   without bound.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::hash::BuildHasherDefault;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Buf, Bytes};
use h2mux_proto::{Config, Connection, Event, HeaderField, IdHasher, ResetCause, Role, StreamId};
use h2mux_wire::ErrorCode;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};

use crate::error::Error;
use crate::read_buffer::ReadBuffers;

/// Most chunks handed to one vectored write.
pub const MAX_IOVECS: usize = 64;
/// Stop reading while this many bytes wait to be written.
pub const MAX_PENDING_WRITE: usize = 8 << 20;
/// Ask the core for more output only while less than this waits to be written.
const REFILL_BELOW: usize = 256 << 10;
/// Commands taken per turn before the socket gets its turn again.
const COMMANDS_PER_TURN: usize = 1024;
/// Reads per turn before writes and commands get theirs.
const READS_PER_TURN: usize = 16;
/// Turns of the task before it yields to the runtime.
const TURNS_PER_POLL: usize = 32;
/// Stream events handed out per poll before the task yields (see [`Driver::dispatch_events`]).
const DISPATCH_SLICE: usize = 32;
/// A connection with no reads or writes for this long gives its big buffers back.
pub const IDLE_RELEASE: Duration = Duration::from_secs(1);
/// How long an aborted connection may still try to write its GOAWAY.
const ABORT_GRACE: Duration = Duration::from_secs(1);
/// How long a closing connection keeps reading (and discarding) what the peer still sends.
const LINGER: Duration = Duration::from_secs(2);

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
    /// The connection failed (or, right after `open`, the stream could not be opened).
    ConnectionLost(Error),
}

// ---------------------------------------------------------------------------------------
// Per-stream state shared by the handles and the connection task
// ---------------------------------------------------------------------------------------

/// One stream's meeting point with the connection task. Only this stream's handles and the
/// task lock it, briefly, never across an `await`.
struct StreamShared {
    /// Set by the task when the stream is opened (0 until then).
    id: AtomicU32,
    /// Handles alive (senders and the receiver); the last one gone tells the task.
    handles: AtomicUsize,
    commands: mpsc::UnboundedSender<Command>,
    state: Mutex<StreamState>,
}

/// A FIFO of stream events whose first two live inline: most streams (a request, a
/// response) see two or three events, and a `VecDeque` would allocate for every stream.
#[derive(Default)]
struct EventQueue {
    inline: [Option<StreamEvent>; 2],
    head: usize,
    len: usize,
    /// Used only once the inline slots are full, until it drains (keeps the order).
    overflow: VecDeque<StreamEvent>,
}

impl EventQueue {
    fn push(&mut self, ev: StreamEvent) {
        if self.overflow.is_empty() && self.len < 2 {
            self.inline[(self.head + self.len) % 2] = Some(ev);
            self.len += 1;
        } else {
            self.overflow.push_back(ev);
        }
    }

    fn pop(&mut self) -> Option<StreamEvent> {
        if self.len > 0 {
            let ev = self.inline[self.head].take();
            self.head = (self.head + 1) % 2;
            self.len -= 1;
            return ev;
        }
        self.overflow.pop_front()
    }
}

#[derive(Default)]
struct StreamState {
    events: EventQueue,
    rx_waker: Option<Waker>,
    /// The task dropped the stream: nothing more will come.
    detached: bool,
    /// Tickets handed out (commands that answer) and answered, in order.
    issued: u64,
    answered: u64,
    /// Answered tickets that failed (removed when their ticket takes the error).
    failures: Vec<(u64, Error)>,
    /// Tasks waiting for tickets (usually one: the stream's writer).
    tx_waker: Option<Waker>,
    more_tx_wakers: Vec<Waker>,
}

impl StreamState {
    fn take_tx_wakers(&mut self) -> impl Iterator<Item = Waker> {
        let more = std::mem::take(&mut self.more_tx_wakers);
        self.tx_waker.take().into_iter().chain(more)
    }

    fn add_tx_waker(&mut self, w: &Waker) {
        match &self.tx_waker {
            None => self.tx_waker = Some(w.clone()),
            Some(first) if first.will_wake(w) => {}
            Some(_) => {
                if !self.more_tx_wakers.iter().any(|x| x.will_wake(w)) {
                    self.more_tx_wakers.push(w.clone());
                }
            }
        }
    }
}

impl StreamShared {
    fn new(commands: mpsc::UnboundedSender<Command>, id: StreamId) -> Arc<StreamShared> {
        Arc::new(StreamShared {
            id: AtomicU32::new(id.value()),
            handles: AtomicUsize::new(0),
            commands,
            state: Mutex::new(StreamState::default()),
        })
    }

    fn id(&self) -> StreamId {
        StreamId::new(self.id.load(Ordering::Relaxed))
    }

    fn lock(&self) -> MutexGuard<'_, StreamState> {
        // A panic while holding this lock leaves plain data behind: keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a command that answers; returns its ticket number (0: the task is gone).
    /// The lock is held while queueing so that ticket numbers follow queue order even with
    /// cloned senders on several threads.
    fn issue(self: &Arc<Self>, make: impl FnOnce(Arc<StreamShared>, u64) -> Command) -> u64 {
        let mut st = self.lock();
        let seq = st.issued + 1;
        if self.commands.send(make(self.clone(), seq)).is_err() {
            return 0;
        }
        st.issued = seq;
        seq
    }

    /// Task side: answers every ticket up to `seq` (`Err` for `seq` itself if `result` is).
    fn answer(&self, seq: u64, result: Result<(), Error>) {
        let wakers = {
            let mut st = self.lock();
            if let Err(e) = result {
                st.failures.push((seq, e));
            }
            st.answered = st.answered.max(seq);
            st.take_tx_wakers()
        };
        wakers.for_each(Waker::wake);
    }

    /// Task side: a stream event for the receiver.
    fn push(&self, ev: StreamEvent) {
        let waker = {
            let mut st = self.lock();
            st.events.push(ev);
            st.rx_waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Task side: the stream is gone from the connection.
    fn detach(&self) {
        let (rx, tx, more) = {
            let mut st = self.lock();
            st.detached = true;
            let more = std::mem::take(&mut st.more_tx_wakers);
            (st.rx_waker.take(), st.tx_waker.take(), more)
        };
        rx.into_iter().chain(tx).chain(more).for_each(Waker::wake);
    }

    fn poll_ticket(&self, seq: u64, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if seq == 0 {
            return Poll::Ready(Err(Error::ConnectionClosed));
        }
        let mut st = self.lock();
        if st.answered >= seq {
            let failed = st.failures.iter().position(|(s, _)| *s == seq);
            return Poll::Ready(match failed {
                Some(i) => Err(st.failures.swap_remove(i).1),
                None => Ok(()),
            });
        }
        // Unanswered and the task will never answer: it ended (its queue is closed) or
        // dropped the stream.
        if st.detached || self.commands.is_closed() {
            return Poll::Ready(Err(Error::ConnectionClosed));
        }
        st.add_tx_waker(cx.waker());
        Poll::Pending
    }

    fn forget_ticket(&self, seq: u64) {
        let mut st = self.lock();
        st.failures.retain(|(s, _)| *s != seq);
    }

    fn send(self: &Arc<Self>, make: impl FnOnce(Arc<StreamShared>) -> Command) {
        let _ = self.commands.send(make(self.clone()));
    }

    fn add_handle(self: &Arc<Self>) -> Arc<StreamShared> {
        self.handles.fetch_add(1, Ordering::Relaxed);
        self.clone()
    }

    fn drop_handle(self: &Arc<Self>) {
        if self.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.send(Command::Forget);
        }
    }
}

enum Command {
    Open {
        stream: Arc<StreamShared>,
        seq: u64,
        headers: Vec<HeaderField>,
        end_stream: bool,
    },
    Headers {
        stream: Arc<StreamShared>,
        seq: u64,
        headers: Vec<HeaderField>,
        end_stream: bool,
    },
    Data {
        stream: Arc<StreamShared>,
        seq: u64,
        data: Bytes,
        end_stream: bool,
    },
    Trailers {
        stream: Arc<StreamShared>,
        seq: u64,
        headers: Vec<HeaderField>,
    },
    Reset(Arc<StreamShared>, ErrorCode),
    Release(Arc<StreamShared>, usize),
    /// The receiver is gone: release whatever arrives.
    Ignore(Arc<StreamShared>),
    /// Every handle is gone.
    Forget(Arc<StreamShared>),
    Shutdown,
    /// Ends the connection at once with GOAWAY(code) (e.g. a drain deadline passed).
    Abort(ErrorCode),
}

/// An answer to one command of a stream ([`StreamSender::start_send_data`]): resolves once
/// the connection took it (for DATA: and can take more on the stream), or with the error.
pub struct SendTicket {
    stream: Arc<StreamShared>,
    seq: u64,
    done: bool,
}

impl std::fmt::Debug for SendTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendTicket")
            .field("seq", &self.seq)
            .finish()
    }
}

impl Future for SendTicket {
    type Output = Result<(), Error>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let r = std::task::ready!(self.stream.poll_ticket(self.seq, cx));
        self.done = true;
        Poll::Ready(r)
    }
}

impl Drop for SendTicket {
    fn drop(&mut self) {
        if !self.done && self.seq != 0 {
            self.stream.forget_ticket(self.seq);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Handles
// ---------------------------------------------------------------------------------------

/// The sending half of a stream (cloneable).
pub struct StreamSender {
    shared: Arc<StreamShared>,
}

impl Clone for StreamSender {
    fn clone(&self) -> StreamSender {
        StreamSender {
            shared: self.shared.add_handle(),
        }
    }
}

impl Drop for StreamSender {
    fn drop(&mut self) {
        self.shared.drop_handle();
    }
}

/// The receiving half of a stream.
pub struct StreamReceiver {
    shared: Arc<StreamShared>,
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
    fn new(shared: &Arc<StreamShared>) -> StreamHandle {
        StreamHandle {
            tx: StreamSender {
                shared: shared.add_handle(),
            },
            rx: StreamReceiver {
                shared: shared.add_handle(),
                unreleased: 0,
                finished: false,
            },
        }
    }
    /// The stream's identifier.
    pub fn id(&self) -> StreamId {
        self.tx.id()
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
        self.shared.id()
    }

    fn ticket(&self, seq: u64) -> SendTicket {
        SendTicket {
            stream: self.shared.clone(),
            seq,
            done: false,
        }
    }

    /// Starts sending response headers (server) — or informational ones when `end_stream`
    /// is false and the status is 1xx — without waiting; the ticket says whether the
    /// connection took them.
    pub fn start_send_headers(&self, headers: Vec<HeaderField>, end_stream: bool) -> SendTicket {
        let seq = self.shared.issue(|stream, seq| Command::Headers {
            stream,
            seq,
            headers,
            end_stream,
        });
        self.ticket(seq)
    }

    /// Sends response headers (server) — or informational ones when `end_stream` is false
    /// and the status is 1xx.
    pub async fn send_headers(
        &self,
        headers: Vec<HeaderField>,
        end_stream: bool,
    ) -> Result<(), Error> {
        self.start_send_headers(headers, end_stream).await
    }

    /// Queues body data now, without waiting; the returned [`SendTicket`] resolves as
    /// [`StreamSender::send_data`] does (once the connection can take more on this stream, or
    /// with the error). Tickets resolve in the order the data was queued, so a writer may keep
    /// several in flight (bounding their bytes itself) instead of waiting for each.
    pub fn start_send_data(&self, data: Bytes, end_stream: bool) -> SendTicket {
        let seq = self.shared.issue(|stream, seq| Command::Data {
            stream,
            seq,
            data,
            end_stream,
        });
        self.ticket(seq)
    }

    /// Queues body data; resolves once the connection can take more on this stream.
    pub async fn send_data(&self, data: Bytes, end_stream: bool) -> Result<(), Error> {
        self.start_send_data(data, end_stream).await
    }

    /// Starts sending trailers (ending the stream) without waiting.
    pub fn start_send_trailers(&self, headers: Vec<HeaderField>) -> SendTicket {
        let seq = self.shared.issue(|stream, seq| Command::Trailers {
            stream,
            seq,
            headers,
        });
        self.ticket(seq)
    }

    /// Sends trailers, ending the stream.
    pub async fn send_trailers(&self, headers: Vec<HeaderField>) -> Result<(), Error> {
        self.start_send_trailers(headers).await
    }

    /// Resets the stream with `code`.
    pub fn reset(&self, code: ErrorCode) {
        self.shared.send(|s| Command::Reset(s, code));
    }
}

impl StreamReceiver {
    /// The stream's identifier.
    pub fn id(&self) -> StreamId {
        self.shared.id()
    }

    /// The next event; `None` once the stream is over. Data consumed by the caller is given
    /// back to the peer's window when the next event is asked for.
    pub async fn recv(&mut self) -> Option<StreamEvent> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Poll form of [`StreamReceiver::recv`], for `AsyncRead` adapters.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<StreamEvent>> {
        self.release_pending();
        if self.finished {
            return Poll::Ready(None);
        }
        let ev = {
            let mut st = self.shared.lock();
            match st.events.pop() {
                Some(ev) => ev,
                None if st.detached || self.shared.commands.is_closed() => {
                    drop(st);
                    self.finished = true;
                    return Poll::Ready(None);
                }
                None => {
                    if !st
                        .rx_waker
                        .as_ref()
                        .is_some_and(|w| w.will_wake(cx.waker()))
                    {
                        st.rx_waker = Some(cx.waker().clone());
                    }
                    return Poll::Pending;
                }
            }
        };
        match &ev {
            StreamEvent::Data(d, end) => {
                self.unreleased += d.len();
                if *end {
                    self.release_pending();
                    self.finished = true;
                }
            }
            StreamEvent::Headers(_, true)
            | StreamEvent::Trailers(_)
            | StreamEvent::Reset(_)
            | StreamEvent::ConnectionLost(_) => self.finished = true,
            StreamEvent::Headers(_, false) => {}
        }
        Poll::Ready(Some(ev))
    }

    fn release_pending(&mut self) {
        if self.unreleased > 0 {
            let n = std::mem::take(&mut self.unreleased);
            self.shared.send(|s| Command::Release(s, n));
        }
    }
}

impl Drop for StreamReceiver {
    fn drop(&mut self) {
        // Data queued and never taken is released too, or the connection window would shrink
        // for good.
        let queued: usize = {
            let mut st = self.shared.lock();
            std::iter::from_fn(|| st.events.pop())
                .map(|e| match e {
                    StreamEvent::Data(d, _) => d.len(),
                    _ => 0,
                })
                .sum()
        };
        self.unreleased += queued;
        self.release_pending();
        // Nobody reads any more: the connection releases whatever still arrives.
        self.shared.send(Command::Ignore);
        self.shared.drop_handle();
    }
}

// ---------------------------------------------------------------------------------------
// Connection handle
// ---------------------------------------------------------------------------------------

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
    /// Opens a stream with request headers (client role) without waiting for the
    /// connection task: the handle is usable at once (its id is known once the task took
    /// the command), and if the stream cannot be opened its first event is
    /// [`StreamEvent::ConnectionLost`] with the reason. The ticket resolves when the task
    /// opened it (or with the reason).
    pub fn start_open(
        &self,
        headers: Vec<HeaderField>,
        end_stream: bool,
    ) -> (StreamHandle, SendTicket) {
        let shared = StreamShared::new(self.commands.clone(), StreamId::ZERO);
        let handle = StreamHandle::new(&shared);
        let seq = shared.issue(|stream, seq| Command::Open {
            stream,
            seq,
            headers,
            end_stream,
        });
        let ticket = handle.tx.ticket(seq);
        (handle, ticket)
    }

    /// Opens a stream with request headers (client role). When the peer's concurrency limit
    /// is reached the stream waits in the core's queue and its events come when it opens.
    pub async fn open(
        &self,
        headers: Vec<HeaderField>,
        end_stream: bool,
    ) -> Result<StreamHandle, Error> {
        let (handle, ticket) = self.start_open(headers, end_stream);
        ticket.await?;
        Ok(handle)
    }

    /// Starts a graceful shutdown (GOAWAY; open streams drain).
    pub fn shutdown(&self) {
        let _ = self.commands.send(Command::Shutdown);
    }

    /// Ends the connection at once: GOAWAY with `code`, every stream fails. For a drain
    /// deadline that has passed; [`ConnectionHandle::shutdown`] is the graceful way.
    pub fn abort(&self, code: ErrorCode) {
        let _ = self.commands.send(Command::Abort(code));
    }

    /// Whether the connection task has ended.
    pub fn is_closed(&self) -> bool {
        self.commands.is_closed()
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

/// Starts the connection task on `io` and returns its handle and, for servers, the queue of
/// streams the peer opens. The task ends when the connection is closed, or gracefully once
/// every handle (connection and streams) is gone.
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
    tokio::spawn(Driver::new(
        io,
        role,
        config,
        cmd_tx.downgrade(),
        cmd_rx,
        accept_tx,
        info,
    ));
    (handle, accept_rx)
}

// ---------------------------------------------------------------------------------------
// The connection task
// ---------------------------------------------------------------------------------------

struct Slot {
    shared: Arc<StreamShared>,
    /// The ticket of a `send_data` waiting for room.
    parked: Option<u64>,
    /// The receiver is gone: release whatever arrives.
    orphan: bool,
    /// We queued our END_STREAM (headers, data or trailers): nothing of ours is cut short if
    /// the handles go away.
    local_done: bool,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shared.detach();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    /// Writing the last bytes, then shutting the socket's write side.
    Closing,
    /// Lingering close: after our FIN, read and discard until the peer closes too (at most
    /// [`LINGER`]). Closing at once while the peer still sends — WINDOW_UPDATEs for the
    /// response it is reading — makes the kernel answer with a TCP reset, and a reset makes
    /// the peer's kernel drop what it received but had not yet read: the tail of our last
    /// response.
    Lingering,
    Done,
}

struct Driver<IO> {
    io: IO,
    conn: Connection,
    streams: HashMap<StreamId, Slot, BuildHasherDefault<IdHasher>>,
    /// Weak, so that the queue closes (and the connection shuts down gracefully) when every
    /// handle is gone.
    commands_weak: mpsc::WeakUnboundedSender<Command>,
    commands: mpsc::UnboundedReceiver<Command>,
    commands_open: bool,
    accept: mpsc::UnboundedSender<StreamHandle>,
    info: Arc<ConnectionInfo>,
    rbuf: ReadBuffers,
    read_open: bool,
    pending: VecDeque<Bytes>,
    pending_bytes: usize,
    /// Bytes written since the last flush.
    unflushed: bool,
    /// Stream events still to hand out this poll (see [`DISPATCH_SLICE`]).
    dispatch_budget: usize,
    /// Events wait in the core because the budget ran out: hand them out next poll.
    events_left: bool,
    chunks: Vec<Bytes>,
    timer: Pin<Box<Sleep>>,
    timer_at: Option<Instant>,
    /// The deadline the timer last fired for.
    timer_spent: Option<Instant>,
    last_io: Instant,
    /// The `last_io` after which the core's idle buffers were last given back: once per
    /// quiet spell (a stalled writer keeps refilling them, and must not spin the timer).
    released_after: Option<Instant>,
    phase: Phase,
    /// The peer's GOAWAY with an error code, if any: what its closing the connection means.
    peer_goaway: Option<Error>,
    /// After an abort: when to drop the socket even if the GOAWAY could not be written (a
    /// peer that stopped reading must not keep the task alive); while lingering: when to stop.
    give_up_at: Option<Instant>,
}

impl<IO> Driver<IO> {
    /// Once the task no longer takes commands (closing, lingering, done, or dropped by the
    /// runtime): closes the queue, so later sends fail at once, and answers what is still in
    /// it — every ticket fails and an unopened stream learns the connection is gone. Left in
    /// the queue, they would wait for a task that never reads it again.
    fn refuse_commands(&mut self) {
        self.commands.close();
        while let Ok(c) = self.commands.try_recv() {
            let e = Error::ConnectionClosed;
            match c {
                Command::Open { stream, seq, .. } => {
                    stream.push(StreamEvent::ConnectionLost(e.clone()));
                    stream.answer(seq, Err(e));
                    stream.detach();
                }
                Command::Headers { stream, seq, .. }
                | Command::Data { stream, seq, .. }
                | Command::Trailers { stream, seq, .. } => stream.answer(seq, Err(e)),
                _ => {}
            }
        }
    }
}

impl<IO> Drop for Driver<IO> {
    fn drop(&mut self) {
        self.refuse_commands();
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Driver<IO> {
    fn new(
        io: IO,
        role: Role,
        config: Config,
        commands_weak: mpsc::WeakUnboundedSender<Command>,
        commands: mpsc::UnboundedReceiver<Command>,
        accept: mpsc::UnboundedSender<StreamHandle>,
        info: Arc<ConnectionInfo>,
    ) -> Driver<IO> {
        let now = Instant::now();
        let max_frame = config.max_frame_size;
        let mut d = Driver {
            io,
            conn: Connection::new(role, config, now.into_std()),
            streams: HashMap::default(),
            commands_weak,
            commands,
            commands_open: true,
            accept,
            info,
            rbuf: ReadBuffers::new(max_frame),
            read_open: true,
            pending: VecDeque::new(),
            pending_bytes: 0,
            unflushed: false,
            dispatch_budget: usize::MAX,
            events_left: false,
            chunks: Vec::new(),
            timer: Box::pin(tokio::time::sleep_until(now)),
            timer_at: None,
            timer_spent: None,
            last_io: now,
            released_after: None,
            phase: Phase::Running,
            peer_goaway: None,
            give_up_at: None,
        };
        d.refill();
        d
    }

    /// One turn: commands, reads, events, writes, timers. Returns whether anything happened.
    fn turn(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        if self.phase == Phase::Running {
            progress |= self.poll_commands(cx);
            if self.events_left {
                // Handed out before anything more is read; the socket is polled (and its
                // waker registered) in a later turn, which `progress` guarantees.
                self.dispatch_events();
                progress = true;
            } else {
                progress |= self.poll_reads(cx);
            }
        }
        self.dispatch_events();
        progress |= self.poll_writes(cx);
        progress |= self.poll_timer(cx);
        self.check_end();
        progress
    }

    fn poll_commands(&mut self, cx: &mut Context<'_>) -> bool {
        let mut n = 0;
        while self.commands_open && n < COMMANDS_PER_TURN {
            match self.commands.poll_recv(cx) {
                Poll::Ready(Some(c)) => {
                    self.command(c);
                    n += 1;
                }
                Poll::Ready(None) => {
                    // Every handle is gone: close gracefully.
                    self.commands_open = false;
                    let _ = self.conn.graceful_shutdown(std::time::Instant::now());
                    n += 1;
                }
                Poll::Pending => break,
            }
        }
        n > 0
    }

    fn poll_reads(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        for _ in 0..READS_PER_TURN {
            if self.events_left {
                break;
            }
            let unsent = self.pending_bytes + self.conn.unsent_control_bytes();
            if !self.read_open || unsent >= MAX_PENDING_WRITE {
                break;
            }
            match self.rbuf.poll_read(&mut self.io, cx) {
                Poll::Pending => break,
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                    self.read_open = false;
                    let e = self.peer_goaway.clone().unwrap_or(Error::ConnectionClosed);
                    self.fail_all(e);
                    progress = true;
                }
                Poll::Ready(Ok(_)) => {
                    let now = Instant::now();
                    self.last_io = now;
                    let _ = self.conn.recv(self.rbuf.data(), now.into_std());
                    self.rbuf.after_recv();
                    self.dispatch_events();
                    progress = true;
                }
            }
        }
        progress
    }

    /// Moves the core's output to the write queue while little is waiting.
    fn refill(&mut self) {
        if self.pending_bytes >= REFILL_BELOW {
            return;
        }
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
            if self.pending_bytes >= REFILL_BELOW {
                break;
            }
        }
    }

    fn poll_writes(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        loop {
            self.refill();
            // Writable events from the data just taken.
            self.dispatch_events();
            if self.pending.is_empty() {
                break;
            }
            let mut iov = [IoSlice::new(&[]); MAX_IOVECS];
            let mut k = 0;
            for (slot, chunk) in iov.iter_mut().zip(self.pending.iter()) {
                *slot = IoSlice::new(chunk);
                k += 1;
            }
            match Pin::new(&mut self.io).poll_write_vectored(cx, &iov[..k]) {
                Poll::Pending => break,
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                    self.write_failed();
                    return true;
                }
                Poll::Ready(Ok(n)) => {
                    self.advance(n);
                    self.unflushed = true;
                    self.last_io = Instant::now();
                    progress = true;
                }
            }
        }
        if self.pending.is_empty() && self.unflushed {
            match Pin::new(&mut self.io).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.unflushed = false,
                Poll::Ready(Err(_)) => {
                    self.write_failed();
                    return true;
                }
                Poll::Pending => {}
            }
        }
        progress
    }

    fn write_failed(&mut self) {
        self.pending.clear();
        self.pending_bytes = 0;
        self.read_open = false;
        self.fail_all(Error::ConnectionClosed);
        self.phase = Phase::Done;
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
    }

    fn poll_timer(&mut self, cx: &mut Context<'_>) -> bool {
        let core = self.conn.poll_timeout().map(Instant::from_std);
        // Big read buffers, and the core's empty working buffers, held while nothing moves
        // are given back after IDLE_RELEASE.
        let core_idle = self.released_after != Some(self.last_io) && self.conn.holds_idle_buffers();
        let idle = (self.rbuf.is_big() || core_idle).then(|| self.last_io + IDLE_RELEASE);
        let due = [core, idle, self.give_up_at].into_iter().flatten().min();
        let Some(due) = due else {
            self.timer_at = None;
            return false;
        };
        if self.timer_spent == Some(due) {
            // Handled already and the core did not move it (e.g. a drain deadline once the
            // connection is closed): firing again would only spin.
            return false;
        }
        // Re-armed only to an earlier instant: a timer that fires early is just re-armed, so
        // the idle deadline moving with every read costs nothing.
        if self.timer_at.is_none_or(|t| due < t) {
            self.timer.as_mut().reset(due);
            self.timer_at = Some(due);
        }
        if self.timer.as_mut().poll(cx).is_pending() {
            return false;
        }
        self.timer_at = None;
        let now = Instant::now();
        if now < due {
            // Armed for an earlier instant that has since moved later (the idle deadline
            // follows the I/O): not this deadline's turn. Marking it spent would leave it,
            // and every later deadline behind it (a lingering close's give-up), never armed
            // again; the next turn re-arms the timer for it instead.
            return true;
        }
        self.timer_spent = Some(due);
        if core.is_some_and(|t| t <= now) {
            self.conn.handle_timeout(now.into_std());
            self.dispatch_events();
        }
        if now >= self.last_io + IDLE_RELEASE {
            if self.rbuf.is_big() {
                self.rbuf.release();
            }
            self.conn.release_idle_buffers();
            self.released_after = Some(self.last_io);
        }
        if self.give_up_at.is_some_and(|t| now >= t) {
            self.pending.clear();
            self.pending_bytes = 0;
            self.phase = Phase::Done;
        }
        true
    }

    /// Whether the core ended with a GOAWAY carrying an error code (not a graceful end).
    fn failed_with_error(&self) -> bool {
        self.conn
            .error()
            .is_some_and(|e| e.code() != ErrorCode::NO_ERROR)
    }

    /// Reads and discards until the peer closes or the linger time is up.
    fn poll_linger(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(give_up) = self.give_up_at else {
            return Poll::Ready(());
        };
        if Instant::now() >= give_up {
            return Poll::Ready(());
        }
        for _ in 0..READS_PER_TURN {
            let mut sink = [std::mem::MaybeUninit::<u8>::uninit(); 4096];
            let mut rb = tokio::io::ReadBuf::uninit(&mut sink);
            match Pin::new(&mut self.io).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) if !rb.filled().is_empty() => continue,
                Poll::Ready(_) => return Poll::Ready(()),
                Poll::Pending => {
                    if self.timer_at != Some(give_up) {
                        self.timer.as_mut().reset(give_up);
                        self.timer_at = Some(give_up);
                    }
                    return self.timer.as_mut().poll(cx);
                }
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Decides whether the connection is over.
    fn check_end(&mut self) {
        if self.phase != Phase::Running {
            return;
        }
        let over = (self.conn.is_closed() && self.pending.is_empty())
            || (!self.read_open && self.pending.is_empty());
        if over {
            self.phase = Phase::Closing;
        }
    }

    /// Hands the core's events to the streams — at most [`DISPATCH_SLICE`] per poll of the
    /// task while running. A read often holds a whole batch of requests (or responses):
    /// handing all of them out before anything is written makes the two ends take turns —
    /// the peer waits while we work through the batch, then we wait while it works through
    /// our answers. Handing out a slice, then yielding (the woken stream tasks run, their
    /// answers leave in the next turn's write), lets the peer start on the first answers
    /// while we work on the rest: a pipeline instead of a ping-pong. Measured on
    /// `rps-1conn` (100 requests in flight, client and server each on its own thread):
    /// 2.0× the requests/s of handing out everything at once; BENCHMARKS.md, "rps slices".
    /// The events left stay queued in the core, and nothing more is read until they are out.
    fn dispatch_events(&mut self) {
        loop {
            if self.dispatch_budget == 0 && self.phase == Phase::Running {
                self.events_left = true;
                break;
            }
            let Some(ev) = self.conn.poll_event() else {
                self.events_left = false;
                break;
            };
            self.dispatch_budget = self.dispatch_budget.saturating_sub(1);
            match ev {
                Event::Headers {
                    id,
                    fields,
                    end_stream,
                } => {
                    if !self.streams.contains_key(&id) && self.conn.role() == Role::Server {
                        let Some(commands) = self.commands_weak.upgrade() else {
                            let _ = self.conn.reset(id, ErrorCode::REFUSED_STREAM);
                            continue;
                        };
                        let shared = StreamShared::new(commands, id);
                        shared.push(StreamEvent::Headers(fields, end_stream));
                        let handle = StreamHandle::new(&shared);
                        self.insert_slot(id, shared);
                        if self.accept.send(handle).is_err() {
                            let _ = self.conn.reset(id, ErrorCode::REFUSED_STREAM);
                            self.streams.remove(&id);
                        }
                        continue;
                    }
                    self.deliver(id, StreamEvent::Headers(fields, end_stream));
                }
                Event::Data {
                    id,
                    data,
                    end_stream,
                } => {
                    let n = data.len();
                    if !self.deliver(id, StreamEvent::Data(data, end_stream)) && n > 0 {
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
                        if let Some(seq) = slot.parked {
                            let e = refused_by
                                .clone()
                                .unwrap_or_else(|| Error::from_reset(&cause));
                            slot.shared.answer(seq, Err(e));
                        }
                        slot.shared.push(match refused_by {
                            Some(e) => StreamEvent::ConnectionLost(e),
                            None => StreamEvent::Reset(cause),
                        });
                    }
                }
                // The event may be older than the writer now parked (it is dispatched after
                // the commands of the same turn): wake only if there is room now.
                Event::Writable { id } if self.conn.send_capacity(id).is_none_or(|c| c > 0) => {
                    if let Some(slot) = self.streams.get_mut(&id) {
                        if let Some(seq) = slot.parked.take() {
                            slot.shared.answer(seq, Ok(()));
                        }
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

    fn insert_slot(&mut self, id: StreamId, shared: Arc<StreamShared>) {
        self.streams.insert(
            id,
            Slot {
                shared,
                parked: None,
                orphan: false,
                local_done: false,
            },
        );
    }

    /// Sends an event to a stream's handle; false when nobody is listening.
    fn deliver(&mut self, id: StreamId, ev: StreamEvent) -> bool {
        match self.streams.get(&id) {
            Some(slot) if !slot.orphan => {
                slot.shared.push(ev);
                true
            }
            _ => false,
        }
    }

    fn fail_all(&mut self, e: Error) {
        self.info.going_away.store(true, Ordering::Relaxed);
        for (_, slot) in self.streams.drain() {
            if let Some(seq) = slot.parked {
                slot.shared.answer(seq, Err(e.clone()));
            }
            slot.shared.push(StreamEvent::ConnectionLost(e.clone()));
        }
    }

    /// The slot of a command's stream, if the stream is still ours.
    fn slot_of(&mut self, stream: &Arc<StreamShared>) -> Option<&mut Slot> {
        self.streams
            .get_mut(&stream.id())
            .filter(|s| Arc::ptr_eq(&s.shared, stream))
    }

    fn mark_done(&mut self, stream: &Arc<StreamShared>) {
        if let Some(slot) = self.slot_of(stream) {
            slot.local_done = true;
        }
    }

    fn command(&mut self, c: Command) {
        let now = std::time::Instant::now();
        match c {
            Command::Open {
                stream,
                seq,
                headers,
                end_stream,
            } => match self.conn.open_stream(headers, end_stream) {
                Ok(id) => {
                    stream.id.store(id.value(), Ordering::Relaxed);
                    self.insert_slot(id, stream.clone());
                    if end_stream {
                        self.mark_done(&stream);
                    }
                    stream.answer(seq, Ok(()));
                }
                Err(e) => {
                    let e = Error::from(e);
                    stream.push(StreamEvent::ConnectionLost(e.clone()));
                    stream.answer(seq, Err(e));
                    stream.detach();
                }
            },
            Command::Headers {
                stream,
                seq,
                headers,
                end_stream,
            } => {
                let r = self
                    .conn
                    .send_headers(stream.id(), headers, end_stream)
                    .map_err(Error::from);
                if r.is_ok() && end_stream {
                    self.mark_done(&stream);
                }
                stream.answer(seq, r);
            }
            Command::Data {
                stream,
                seq,
                data,
                end_stream,
            } => {
                let id = stream.id();
                match self.conn.send_data(id, data, end_stream) {
                    Err(e) => stream.answer(seq, Err(e.into())),
                    Ok(()) => {
                        if end_stream {
                            self.mark_done(&stream);
                        }
                        let full = self.conn.send_capacity(id).is_some_and(|c| c == 0);
                        match self.slot_of(&stream) {
                            Some(slot) if full => {
                                // Parked until there is room: with several sends in flight (or
                                // a cloned sender) the earlier parked ones stay unanswered too
                                // (answering `seq` later answers them all). Releasing them now
                                // would let a pipelining writer queue without bound.
                                slot.parked = Some(seq);
                            }
                            _ => stream.answer(seq, Ok(())),
                        }
                    }
                }
            }
            Command::Trailers {
                stream,
                seq,
                headers,
            } => {
                let r = self
                    .conn
                    .send_trailers(stream.id(), headers)
                    .map_err(Error::from);
                if r.is_ok() {
                    self.mark_done(&stream);
                }
                stream.answer(seq, r);
            }
            Command::Reset(stream, code) => {
                let id = stream.id();
                if self.slot_of(&stream).is_some() {
                    let _ = self.conn.reset(id, code);
                    self.streams.remove(&id);
                }
            }
            Command::Release(stream, n) => {
                if self.slot_of(&stream).is_some() {
                    let _ = self.conn.release_capacity(stream.id(), n);
                }
            }
            Command::Ignore(stream) => {
                if let Some(slot) = self.slot_of(&stream) {
                    slot.orphan = true;
                }
            }
            Command::Forget(stream) => {
                // Every handle is gone. If our side was not finished the stream is cancelled;
                // if it was, what we queued still goes out and whatever the peer still sends is
                // released unread (no slot any more).
                let id = stream.id();
                if self.slot_of(&stream).is_none() {
                    return;
                }
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
            Command::Abort(code) => {
                self.conn.abort(code);
                self.fail_all(Error::ConnectionClosed);
                self.give_up_at = Some(Instant::now() + ABORT_GRACE);
            }
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Future for Driver<IO> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let d = self.get_mut();
        d.dispatch_budget = DISPATCH_SLICE;
        for _ in 0..TURNS_PER_POLL {
            if d.phase != Phase::Running {
                d.refuse_commands();
            }
            if d.phase == Phase::Closing && d.pending.is_empty() {
                match Pin::new(&mut d.io).poll_shutdown(cx) {
                    Poll::Pending => return Poll::Pending,
                    // Linger after a graceful end (the tail of a response must reach the peer),
                    // not after a connection error of ours: a flooding peer would only keep
                    // us reading its flood.
                    Poll::Ready(_) if d.read_open && !d.failed_with_error() => {
                        d.fail_all(Error::ConnectionClosed);
                        d.rbuf.release();
                        d.phase = Phase::Lingering;
                        d.give_up_at = Some(Instant::now() + LINGER);
                    }
                    Poll::Ready(_) => d.phase = Phase::Done,
                }
            }
            if d.phase == Phase::Lingering {
                return d.poll_linger(cx);
            }
            if d.phase == Phase::Done {
                d.fail_all(Error::ConnectionClosed);
                return Poll::Ready(());
            }
            let progress = d.turn(cx);
            if d.events_left && d.phase == Phase::Running {
                // The rest of the events after the tasks just woken have run (see
                // `dispatch_events`).
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            if !progress {
                if d.phase == Phase::Running {
                    return Poll::Pending;
                }
                if d.phase == Phase::Closing && !d.pending.is_empty() {
                    return Poll::Pending;
                }
            }
        }
        // Still busy: let the runtime's other tasks run, then continue.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// How long a graceful shutdown waits for streams before the connection is dropped.
pub const DEFAULT_DRAIN: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> (Arc<StreamShared>, mpsc::UnboundedReceiver<Command>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (StreamShared::new(tx, StreamId::new(1)), rx)
    }

    #[test]
    fn a_dropped_receiver_releases_the_data_it_never_took() {
        // Found while replacing the per-stream queues: data still queued for a receiver that
        // is dropped was never released, so the connection window shrank for good.
        let (shared, mut commands) = stream();
        let handle = StreamHandle::new(&shared);
        shared.push(StreamEvent::Headers(Vec::new(), false));
        shared.push(StreamEvent::Data(Bytes::from_static(b"0123456789"), false));
        shared.push(StreamEvent::Data(Bytes::from_static(b"abcde"), false));
        shared.push(StreamEvent::Data(Bytes::from_static(b"xyz"), true));
        let (_tx, rx) = handle.split();
        drop(rx);
        let mut released = 0;
        let mut ignored = false;
        while let Ok(c) = commands.try_recv() {
            match c {
                Command::Release(_, n) => released += n,
                Command::Ignore(_) => ignored = true,
                _ => {}
            }
        }
        assert_eq!(released, 18, "every queued byte is given back");
        assert!(ignored, "and later data is released on arrival");
    }

    #[test]
    fn events_keep_their_order_across_the_inline_slots_and_the_overflow() {
        let mut q = EventQueue::default();
        let data = |n: u8| StreamEvent::Data(Bytes::from(vec![n]), false);
        let num = |e: Option<StreamEvent>| match e {
            Some(StreamEvent::Data(d, _)) => d[0],
            other => panic!("{other:?}"),
        };
        for i in 0..3 {
            q.push(data(i));
        }
        assert_eq!(num(q.pop()), 0);
        q.push(data(3)); // behind the overflowed 2
        assert_eq!(num(q.pop()), 1);
        assert_eq!(num(q.pop()), 2);
        q.push(data(4));
        assert_eq!(num(q.pop()), 3);
        assert_eq!(num(q.pop()), 4);
        assert!(q.pop().is_none());
        q.push(data(5));
        assert_eq!(num(q.pop()), 5);
    }

    #[test]
    fn tickets_resolve_in_order_and_carry_their_own_failure() {
        let (shared, _commands) = stream();
        let handle = StreamHandle::new(&shared);
        let (tx, _rx) = handle.split();
        let waker = Waker::from(Arc::new(NoopWake));
        let mut cx = Context::from_waker(&waker);
        let mut t1 = tx.start_send_data(Bytes::from_static(b"a"), false);
        let mut t2 = tx.start_send_data(Bytes::from_static(b"b"), false);
        let mut t3 = tx.start_send_data(Bytes::from_static(b"c"), true);
        assert!(Pin::new(&mut t1).poll(&mut cx).is_pending());
        shared.answer(2, Err(Error::Command("no".into())));
        assert_eq!(Pin::new(&mut t1).poll(&mut cx), Poll::Ready(Ok(())));
        assert_eq!(
            Pin::new(&mut t2).poll(&mut cx),
            Poll::Ready(Err(Error::Command("no".into())))
        );
        assert!(Pin::new(&mut t3).poll(&mut cx).is_pending());
        shared.detach();
        assert_eq!(
            Pin::new(&mut t3).poll(&mut cx),
            Poll::Ready(Err(Error::ConnectionClosed)),
            "a stream the task dropped answers no more"
        );
    }

    struct NoopWake;
    impl std::task::Wake for NoopWake {
        fn wake(self: Arc<Self>) {}
    }
}
