//! The connection state machine (RFC 9113 §3.4 preface, §5 streams, §6 frames, §8 messages).

use crate::bdp::Bdp;
use crate::config::{Config, SMALL_WINDOW};
use crate::error::{CommandError, ConnectionError, StreamError};
use crate::event::{Event, PeerSettings, ResetCause, SettingsUpdate, Stats};
use crate::flow::{FlowError, RecvWindow, SendWindow};
use crate::headers::{self, HeaderError};
use crate::limits::{ClosedMemory, IdMap, RateWindow};
use crate::state::State;
use bytes::{Bytes, BytesMut};
use h2mux_wire::frame::{
    encode_frame_header, encode_header_block, flags, kind, DataFrame, ErrorScope, Frame,
    FrameError, FrameHeader, GoAwayFrame, HeadersFrame, PingFrame, RstStreamFrame, Setting,
    SettingsFrame, WindowUpdateFrame, CLIENT_PREFACE, DEFAULT_INITIAL_WINDOW_SIZE,
    MAX_MAX_FRAME_SIZE, MAX_WINDOW_SIZE, MIN_MAX_FRAME_SIZE,
};
use h2mux_wire::hpack::{self, HeaderField, HpackError};
use h2mux_wire::{ErrorCode, FrameDecoder, StreamId};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Which end of the connection we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We sent the preface; we open odd streams with requests.
    Client,
    /// We received the preface; the peer opens odd streams, we respond.
    Server,
}

/// Payloads copied into the coalescing buffer instead of being sent as their own chunk.
const SMALL_PAYLOAD: usize = 1024;

/// Tags of the PINGs we send (first payload byte).
const PING_BDP: u8 = b'B';
const PING_KEEPALIVE: u8 = b'K';
const PING_USER: u8 = b'U';
const PING_SHUTDOWN: u8 = b'S';

/// Where the receive side of a stream is in its message (RFC 9113 §8.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RecvPhase {
    /// Waiting for the (final) response headers (client streams).
    AwaitHeaders,
    /// Headers received; DATA or trailers may follow.
    Body,
    /// END_STREAM received.
    Done,
}

#[derive(Debug)]
struct Stream {
    id: StreamId,
    state: State,
    recv: RecvWindow,
    send: SendWindow,
    // ---- send side
    queue: VecDeque<Bytes>,
    queued: usize,
    /// END_STREAM is queued after the data (and trailers, if any).
    end_queued: bool,
    trailers: Option<Vec<HeaderField>>,
    /// HEADERS waiting for a concurrency slot (client streams opened while at the limit).
    pending_open: Option<(Vec<HeaderField>, bool)>,
    /// A final (non-1xx) header section was sent (server) / the request was sent (client).
    headers_sent: bool,
    in_ready: bool,
    want_writable: bool,
    // ---- receive side
    phase: RecvPhase,
    content_length: Option<u64>,
    data_received: u64,
    /// Client stream whose request was HEAD: the response has no content.
    head: bool,
    /// Peer stream whose opening `Event::Headers` the application has not taken yet.
    pending_accept: bool,
    wu_dirty: bool,
}

impl Stream {
    fn has_more(&self) -> bool {
        self.pending_open.is_none()
            && (!self.queue.is_empty() || (self.end_queued && self.state.send(true).is_some()))
    }
}

fn counted(s: State) -> bool {
    matches!(
        s,
        State::Open | State::HalfClosedLocal | State::HalfClosedRemote
    )
}

/// Our settings as acknowledged, and the SETTINGS frames sent but not yet acknowledged.
#[derive(Debug, Clone, Copy)]
struct LocalSettings {
    header_table_size: u32,
    max_concurrent_streams: u32,
    initial_window_size: u32,
    max_frame_size: u32,
    max_header_list_size: u32,
}

/// Shutdown progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shutdown {
    None,
    /// Server: GOAWAY(2^31-1) and a PING sent; the real GOAWAY follows the PING's ACK.
    AwaitPing,
    /// Final GOAWAY sent: no new streams; close when the last stream ends.
    Draining,
}

/// One HTTP/2 connection, client or server, without I/O.
///
/// See the [crate documentation](crate) for how to drive it.
#[derive(Debug)]
pub struct Connection {
    role: Role,
    config: Config,
    error: Option<ConnectionError>,
    // ---- receive
    /// Server: bytes of the client preface still to be matched.
    preface_left: usize,
    got_settings: bool,
    decoder: FrameDecoder,
    hpack_dec: hpack::Decoder,
    block: Option<BlockAssembly>,
    // ---- send
    hpack_enc: hpack::Encoder,
    hpack_buf: BytesMut,
    /// Control frames and header blocks, in the order generated; flushed ahead of DATA.
    out: BytesMut,
    queued_control: usize,
    scratch: BytesMut,
    // ---- streams
    streams: IdMap<Stream>,
    ready: VecDeque<StreamId>,
    wu_dirty: Vec<StreamId>,
    queued_opens: VecDeque<StreamId>,
    next_local_id: u32,
    last_peer_id: u32,
    active_local: u32,
    active_peer: u32,
    pending_accept: usize,
    closed: ClosedMemory,
    // ---- flow control
    conn_recv: RecvWindow,
    conn_send: SendWindow,
    stream_target: u32,
    bdp: Option<Bdp>,
    bdp_data_seen: bool,
    // ---- settings
    local: LocalSettings,
    pending_settings: VecDeque<(LocalSettings, Instant)>,
    peer: PeerSettings,
    // ---- ping, goaway, timers
    ping_seq: u32,
    user_pings: VecDeque<(u32, Instant)>,
    last_recv: Instant,
    keepalive_sent: Option<Instant>,
    shutdown: Shutdown,
    drain_deadline: Option<Instant>,
    goaway_sent_last: Option<u32>,
    goaway_received: Option<u32>,
    goaway_code: Option<ErrorCode>,
    // ---- limits
    resets_received: RateWindow,
    resets_sent: RateWindow,
    empty_frames: RateWindow,
    priority_frames: RateWindow,
    small_window_updates: RateWindow,
    events: VecDeque<Event>,
    stats: Stats,
}

#[derive(Debug)]
struct BlockAssembly {
    id: StreamId,
    end_stream: bool,
    buf: BytesMut,
    continuations: u32,
    /// A stream error to raise once the block is decoded (HEADERS self-dependency).
    reset: Option<StreamError>,
}

impl Connection {
    /// A new connection at `now`. The client preface (client role) and our SETTINGS (plus a
    /// connection WINDOW_UPDATE raising the window to `config.initial_connection_window`)
    /// are queued at once: call [`Connection::poll_transmit`] and write them.
    pub fn new(role: Role, config: Config, now: Instant) -> Connection {
        let config = config.normalized();
        let local = LocalSettings {
            header_table_size: config.header_table_size,
            max_concurrent_streams: config.max_concurrent_streams,
            initial_window_size: config.initial_stream_window,
            max_frame_size: config.max_frame_size,
            max_header_list_size: config.max_header_list_size,
        };
        let thr = config.window_update_threshold;
        let mut c = Connection {
            role,
            error: None,
            preface_left: if role == Role::Server {
                CLIENT_PREFACE.len()
            } else {
                0
            },
            got_settings: false,
            decoder: FrameDecoder::new(config.max_frame_size),
            // The peer's encoder may use the default 4096 until it has seen our SETTINGS.
            hpack_dec: hpack::Decoder::new(
                config.header_table_size.max(hpack::DEFAULT_TABLE_SIZE),
                config.max_header_list_size as usize,
            ),
            block: None,
            hpack_enc: hpack::Encoder::new(),
            hpack_buf: BytesMut::new(),
            // Empty until used, and given back when idle (`release_idle_buffers`): an idle
            // connection keeps no working space.
            out: BytesMut::new(),
            queued_control: 0,
            scratch: BytesMut::new(),
            streams: IdMap::default(),
            ready: VecDeque::new(),
            wu_dirty: Vec::new(),
            queued_opens: VecDeque::new(),
            next_local_id: if role == Role::Client { 1 } else { 2 },
            last_peer_id: 0,
            active_local: 0,
            active_peer: 0,
            pending_accept: 0,
            closed: ClosedMemory::new(config.closed_stream_memory),
            conn_recv: RecvWindow::new(
                DEFAULT_INITIAL_WINDOW_SIZE,
                config.initial_connection_window,
                thr,
            ),
            conn_send: SendWindow::new(DEFAULT_INITIAL_WINDOW_SIZE),
            stream_target: config.initial_stream_window,
            bdp: config
                .adaptive_window
                .then(|| Bdp::new(config.initial_stream_window, config.max_stream_window)),
            bdp_data_seen: false,
            local,
            pending_settings: VecDeque::new(),
            peer: PeerSettings::default(),
            ping_seq: 0,
            user_pings: VecDeque::new(),
            last_recv: now,
            keepalive_sent: None,
            shutdown: Shutdown::None,
            drain_deadline: None,
            goaway_sent_last: None,
            goaway_received: None,
            goaway_code: None,
            resets_received: RateWindow::default(),
            resets_sent: RateWindow::default(),
            empty_frames: RateWindow::default(),
            priority_frames: RateWindow::default(),
            small_window_updates: RateWindow::default(),
            events: VecDeque::new(),
            stats: Stats::default(),
            config,
        };
        if role == Role::Client {
            c.out.extend_from_slice(CLIENT_PREFACE);
        }
        let mut settings = vec![Setting::EnablePush(false)];
        if local.header_table_size != hpack::DEFAULT_TABLE_SIZE {
            settings.push(Setting::HeaderTableSize(local.header_table_size));
        }
        settings.extend([
            Setting::MaxConcurrentStreams(local.max_concurrent_streams),
            Setting::InitialWindowSize(local.initial_window_size),
            Setting::MaxFrameSize(local.max_frame_size),
            Setting::MaxHeaderListSize(local.max_header_list_size),
        ]);
        SettingsFrame::encode_settings(&settings, &mut c.out);
        c.pending_settings.push_back((local, now));
        // The initial values apply to us at once where being lenient is safe: a larger
        // window or frame size than the peer yet knows of only accepts more.
        if let Some(inc) = c.conn_recv.take_update() {
            c.push_window_update(StreamId::ZERO, inc);
        }
        c
    }

    // =========================================================================================
    // Queries
    // =========================================================================================

    /// Our role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The error the connection failed with, if it did.
    pub fn error(&self) -> Option<&ConnectionError> {
        self.error.as_ref()
    }

    /// True once nothing more will happen: the connection failed (or went away gracefully
    /// with every stream finished) and everything to write has been taken by
    /// `poll_transmit`. The driver then closes the socket.
    pub fn is_closed(&self) -> bool {
        if !self.out.is_empty() {
            return false;
        }
        if self.error.is_some() {
            return true;
        }
        let going_away = self.shutdown == Shutdown::Draining || self.goaway_received.is_some();
        going_away
            && self.active_local == 0
            && self.active_peer == 0
            && self.queued_opens.is_empty()
    }

    /// The peer's settings in force.
    pub fn peer_settings(&self) -> PeerSettings {
        self.peer
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The latest round-trip time measured by a PING, if any.
    pub fn rtt(&self) -> Option<Duration> {
        self.bdp.as_ref().and_then(Bdp::rtt)
    }

    /// The receive window currently targeted for streams (grows with the adaptive window).
    pub fn stream_window_target(&self) -> u32 {
        self.stream_target
    }

    /// The receive window currently targeted for the connection.
    pub fn connection_window_target(&self) -> u32 {
        self.conn_recv.target()
    }

    /// State of a stream (`None` if unknown or forgotten).
    pub fn stream_state(&self, id: StreamId) -> Option<State> {
        self.streams.get(id).map(|s| s.state)
    }

    /// Whether `id` was opened while the peer's SETTINGS_MAX_CONCURRENT_STREAMS was reached
    /// and its HEADERS are still waiting for a slot.
    pub fn is_queued(&self, id: StreamId) -> bool {
        self.streams
            .get(id)
            .is_some_and(|s| s.pending_open.is_some())
    }

    /// How many more streams [`Connection::open_stream`] can open right now without
    /// queueing (0 while going away).
    pub fn open_streams_available(&self) -> usize {
        if self.error.is_some() || self.goaway_received.is_some() || self.shutdown != Shutdown::None
        {
            return 0;
        }
        if !self.queued_opens.is_empty() {
            return 0;
        }
        self.peer
            .max_concurrent_streams
            .saturating_sub(self.active_local) as usize
    }

    /// Bytes queued on a stream with `send_data` and not yet handed out by `poll_transmit`.
    pub fn send_buffered(&self, id: StreamId) -> Option<usize> {
        self.streams.get(id).map(|s| s.queued)
    }

    /// Bytes of control frames and header blocks generated and not yet taken by
    /// [`Connection::poll_transmit`]. A driver that stops calling `poll_transmit` while its
    /// socket is slow counts these against its write bound, so a peer that does not read
    /// cannot make them pile up (CVE-2019-9517).
    pub fn unsent_control_bytes(&self) -> usize {
        self.out.len()
    }

    /// How many more bytes the application should queue on this stream now:
    /// `Config::send_buffer_per_stream` minus [`Connection::send_buffered`]. When it is 0 the
    /// driver should wait for [`Event::Writable`].
    pub fn send_capacity(&self, id: StreamId) -> Option<usize> {
        self.streams
            .get(id)
            .map(|s| self.config.send_buffer_per_stream.saturating_sub(s.queued))
    }

    /// Bytes the flow-control windows let us send on this stream now (min of the stream's
    /// and the connection's send window).
    pub fn send_window(&self, id: StreamId) -> Option<u32> {
        self.streams
            .get(id)
            .map(|s| s.send.available().min(self.conn_send.available()))
    }

    /// Received DATA bytes of this stream not yet released with `release_capacity`.
    pub fn recv_buffered(&self, id: StreamId) -> Option<u64> {
        self.streams.get(id).map(|s| s.recv.buffered())
    }

    /// The connection's send window (what the peer lets us send in total).
    pub fn connection_send_window(&self) -> i64 {
        self.conn_send.raw()
    }

    /// The connection receive window the peer has left (what it may still send us).
    pub fn connection_recv_window(&self) -> i64 {
        self.conn_recv.available()
    }

    /// Our send window of a stream (possibly negative after a SETTINGS change, §6.9.2).
    pub fn stream_send_window(&self, id: StreamId) -> Option<i64> {
        self.streams.get(id).map(|s| s.send.raw())
    }

    /// DATA bytes received on all streams and not yet released by the application (the
    /// memory a peer makes us hold; never above the connection window target).
    pub fn connection_recv_buffered(&self) -> u64 {
        self.conn_recv.buffered()
    }

    /// The receive window the peer has left on a stream.
    pub fn stream_recv_window(&self, id: StreamId) -> Option<i64> {
        self.streams.get(id).map(|s| s.recv.available())
    }

    /// Ids of the streams that currently exist (any state), in no particular order.
    pub fn stream_ids(&self) -> Vec<StreamId> {
        self.streams.keys().collect()
    }

    // =========================================================================================
    // Input
    // =========================================================================================

    /// Feeds bytes read from the socket. Every complete frame at the front of `data` is
    /// consumed (DATA payloads come out in [`Event::Data`] as zero-copy slices of it); an
    /// incomplete frame is left at the front for the next call, so the driver appends the
    /// next read to the same buffer.
    ///
    /// On a connection error, a GOAWAY is queued for `poll_transmit`, an
    /// [`Event::ConnectionError`] is queued, and this and every later call return the same
    /// error.
    pub fn recv(&mut self, data: &mut BytesMut, now: Instant) -> Result<(), ConnectionError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        match self.recv_inner(data, now) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.fail(e.clone());
                Err(e)
            }
        }
    }

    fn recv_inner(&mut self, data: &mut BytesMut, now: Instant) -> Result<(), ConnectionError> {
        if data.is_empty() {
            return Ok(());
        }
        self.last_recv = now;
        if self.preface_left > 0 {
            let start = CLIENT_PREFACE.len() - self.preface_left;
            let n = self.preface_left.min(data.len());
            if data[..n] != CLIENT_PREFACE[start..start + n] {
                return Err(ConnectionError::BadPreface);
            }
            let _ = data.split_to(n);
            self.preface_left -= n;
            if self.preface_left > 0 {
                return Ok(());
            }
        }
        loop {
            let frame = match self.decoder.decode(data) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    if !self.got_settings {
                        return Err(ConnectionError::Frame(e));
                    }
                    self.on_frame_error(e, now)?;
                    continue;
                }
            };
            self.on_frame(frame, now)?;
            if self.queued_control > self.config.max_queued_control_frames {
                return Err(ConnectionError::ControlFrameFlood {
                    limit: self.config.max_queued_control_frames,
                });
            }
            if self.error.is_some() {
                break;
            }
        }
        Ok(())
    }

    fn on_frame_error(&mut self, e: FrameError, now: Instant) -> Result<(), ConnectionError> {
        let ErrorScope::Stream(id) = e.scope() else {
            return Err(ConnectionError::Frame(e));
        };
        if let Some(b) = &self.block {
            return Err(ConnectionError::ExpectedContinuation {
                expected: b.id,
                kind: 0xff,
                got: id,
            });
        }
        match e {
            FrameError::HeadersSelfDependency { headers, .. } => {
                // The block must still be decoded to keep HPACK in sync (§4.3).
                let err = StreamError::Frame(FrameError::HeadersSelfDependency {
                    stream_id: id,
                    headers: headers.clone(),
                });
                self.on_headers(*headers, Some(err), now)
            }
            other => {
                if matches!(
                    other,
                    FrameError::PrioritySelfDependency { .. }
                        | FrameError::PriorityBadLength { .. }
                ) {
                    self.count_priority(now)?;
                }
                if self.is_idle(id) {
                    if matches!(other, FrameError::WindowUpdateZeroIncrement { .. }) {
                        return Err(ConnectionError::FrameOnIdleStream {
                            kind: kind::WINDOW_UPDATE,
                            id,
                        });
                    }
                    // PRIORITY errors on idle streams: the frame has no effect anyway, and
                    // RST_STREAM on an idle stream is forbidden (§6.4).
                    return Ok(());
                }
                if self.streams.get(id).is_some() {
                    self.stream_error(id, StreamError::Frame(other), now)
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Whether `id` is idle from our point of view (§5.1): never opened by either side.
    fn is_idle(&self, id: StreamId) -> bool {
        let v = id.value();
        if self.is_local_id(id) {
            v >= self.next_local_id
                || self
                    .streams
                    .get(id)
                    .is_some_and(|s| s.pending_open.is_some())
        } else {
            v > self.last_peer_id
        }
    }

    /// A peer stream above the last-stream-id of our GOAWAY: every frame on it is ignored
    /// (§6.8).
    fn ignored_after_goaway(&self, id: StreamId) -> bool {
        !self.is_local_id(id) && self.goaway_sent_last.is_some_and(|l| id.value() > l)
    }

    fn is_local_id(&self, id: StreamId) -> bool {
        match self.role {
            Role::Client => id.is_client_initiated(),
            Role::Server => id.is_server_initiated(),
        }
    }

    fn on_frame(&mut self, frame: Frame, now: Instant) -> Result<(), ConnectionError> {
        if !self.got_settings {
            match &frame {
                Frame::Settings(s) if !s.ack => self.got_settings = true,
                other => {
                    return Err(ConnectionError::FirstFrameNotSettings {
                        kind: frame_kind(other),
                    })
                }
            }
        }
        if let Some(b) = &self.block {
            let ok = matches!(&frame, Frame::Continuation(c) if c.stream_id == b.id);
            if !ok {
                return Err(ConnectionError::ExpectedContinuation {
                    expected: b.id,
                    kind: frame_kind(&frame),
                    got: frame.stream_id(),
                });
            }
        }
        match frame {
            Frame::Data(d) => self.on_data(d, now),
            Frame::Headers(h) => self.on_headers(h, None, now),
            Frame::Continuation(c) => {
                let Some(b) = self.block.as_mut() else {
                    return Err(ConnectionError::UnexpectedContinuation { id: c.stream_id });
                };
                b.continuations += 1;
                if b.continuations > self.config.max_continuation_frames {
                    return Err(ConnectionError::TooManyContinuations {
                        limit: self.config.max_continuation_frames,
                    });
                }
                if b.buf.len() + c.header_block.len() > self.config.max_header_block_size {
                    return Err(ConnectionError::HeaderBlockTooLarge {
                        limit: self.config.max_header_block_size,
                    });
                }
                b.buf.extend_from_slice(&c.header_block);
                let empty = c.header_block.is_empty() && !c.end_headers;
                if empty {
                    self.count_empty(now)?;
                }
                if c.end_headers {
                    if let Some(b) = self.block.take() {
                        let block = b.buf.freeze();
                        self.on_header_block(b.id, block, b.end_stream, b.reset, now)?;
                    }
                }
                Ok(())
            }
            // No priority tree (RFC 9113 §5.3.2 deprecates the scheme): only counted.
            Frame::Priority(_) => self.count_priority(now),
            Frame::RstStream(r) => self.on_rst(r, now),
            Frame::Settings(s) => self.on_settings(s, now),
            Frame::PushPromise(_) => Err(ConnectionError::PushPromise),
            Frame::Ping(p) => self.on_ping(p, now),
            Frame::GoAway(g) => self.on_goaway(g),
            Frame::WindowUpdate(w) => self.on_window_update(w, now),
            Frame::Unknown(_) => Ok(()),
        }
    }

    fn count_empty(&mut self, now: Instant) -> Result<(), ConnectionError> {
        let limit = self.config.max_empty_frames;
        if self.empty_frames.hit(now, self.config.reset_window, limit) {
            return Err(ConnectionError::TooManyEmptyFrames { limit });
        }
        Ok(())
    }

    fn on_headers(
        &mut self,
        h: HeadersFrame,
        reset: Option<StreamError>,
        now: Instant,
    ) -> Result<(), ConnectionError> {
        if h.header_block.len() > self.config.max_header_block_size {
            return Err(ConnectionError::HeaderBlockTooLarge {
                limit: self.config.max_header_block_size,
            });
        }
        if h.end_headers {
            return self.on_header_block(h.stream_id, h.header_block, h.end_stream, reset, now);
        }
        if h.header_block.is_empty() {
            self.count_empty(now)?;
        }
        let mut buf = BytesMut::with_capacity(h.header_block.len() * 2);
        buf.extend_from_slice(&h.header_block);
        self.block = Some(BlockAssembly {
            id: h.stream_id,
            end_stream: h.end_stream,
            buf,
            continuations: 0,
            reset,
        });
        Ok(())
    }

    /// A complete header block for stream `id`.
    fn on_header_block(
        &mut self,
        id: StreamId,
        block: Bytes,
        end_stream: bool,
        reset: Option<StreamError>,
        now: Instant,
    ) -> Result<(), ConnectionError> {
        // Decode first, whatever happens to the stream: the HPACK context is shared (§4.3).
        let decoded = match self.hpack_dec.decode(&block) {
            Ok(f) => Ok(f),
            Err(HpackError::HeaderListTooLarge { limit }) => {
                Err(StreamError::HeaderListTooLarge { limit })
            }
            Err(e) => return Err(ConnectionError::Hpack(e)),
        };
        let Some(s) = self.streams.get(id) else {
            return self.on_new_stream_headers(id, decoded, end_stream, reset, now);
        };
        if s.pending_open.is_some() {
            return Err(ConnectionError::FrameOnIdleStream {
                kind: kind::HEADERS,
                id,
            });
        }
        let fields = match (reset, decoded) {
            (Some(e), _) | (None, Err(e)) => return self.stream_error(id, e, now),
            (None, Ok(f)) => f,
        };
        if s.state.recv_headers(end_stream).is_err() {
            return self.stream_error(id, StreamError::StreamClosed { id }, now);
        }
        let event = match s.phase {
            RecvPhase::AwaitHeaders => {
                // Client: the response, possibly informational (§8.1).
                let info = match headers::validate_response(&fields) {
                    Ok(i) => i,
                    Err(e) => return self.stream_error(id, StreamError::Malformed(e), now),
                };
                let informational = (100..200).contains(&info.status);
                if informational && end_stream {
                    let e = StreamError::Malformed(HeaderError::UnexpectedHeaders);
                    return self.stream_error(id, e, now);
                }
                if !informational {
                    let head = s.head;
                    if let Some(s) = self.streams.get_mut(id) {
                        s.phase = RecvPhase::Body;
                        // HEAD, 204 and 304 responses carry no content (RFC 9110 §6.4.1).
                        s.content_length = if head || info.status == 204 || info.status == 304 {
                            Some(0)
                        } else {
                            info.content_length
                        };
                    }
                }
                Event::Headers {
                    id,
                    fields,
                    end_stream,
                }
            }
            RecvPhase::Body => {
                // Trailers: they must end the stream (§8.1).
                if !end_stream {
                    let e = StreamError::Malformed(HeaderError::UnexpectedHeaders);
                    return self.stream_error(id, e, now);
                }
                if let Err(e) = headers::validate_trailers(&fields) {
                    return self.stream_error(id, StreamError::Malformed(e), now);
                }
                Event::Trailers { id, fields }
            }
            RecvPhase::Done => return self.stream_error(id, StreamError::StreamClosed { id }, now),
        };
        if end_stream {
            if let Some(e) = self.content_length_mismatch(id) {
                return self.stream_error(id, e, now);
            }
        }
        self.events.push_back(event);
        if end_stream {
            self.recv_end(id);
        }
        Ok(())
    }

    fn content_length_mismatch(&self, id: StreamId) -> Option<StreamError> {
        let s = self.streams.get(id)?;
        let cl = s.content_length?;
        (cl != s.data_received).then_some(StreamError::ContentLength {
            expected: cl,
            received: s.data_received,
        })
    }

    /// HEADERS on a stream we do not have: a new peer stream, or a late frame.
    fn on_new_stream_headers(
        &mut self,
        id: StreamId,
        decoded: Result<Vec<HeaderField>, StreamError>,
        end_stream: bool,
        reset: Option<StreamError>,
        now: Instant,
    ) -> Result<(), ConnectionError> {
        let v = id.value();
        let closed = if self.is_local_id(id) {
            v < self.next_local_id
        } else {
            v <= self.last_peer_id
        };
        if closed {
            // §5.1: frames on a stream we reset are ignored; otherwise HEADERS on a closed
            // stream is a connection error STREAM_CLOSED.
            if self.closed.was_reset(id) || self.ignored_after_goaway(id) {
                return Ok(());
            }
            // §5.1.1: a peer id below its highest that it never used is not a closed stream
            // but an attempt to open a new one out of order: "The identifier of a newly
            // established stream MUST be numerically greater than all streams that the
            // initiating endpoint has opened" (PROTOCOL_ERROR). Ids we remember as used and
            // closed get STREAM_CLOSED (§5.1); ids older than that memory count as unused.
            if !self.is_local_id(id) && !self.closed.contains(id) {
                return Err(ConnectionError::InvalidStreamId { id });
            }
            return Err(ConnectionError::HeadersOnClosedStream { id });
        }
        if self.is_local_id(id) || self.role == Role::Client {
            // §5.1.1: the peer may only open streams of its own parity; a server only
            // opens streams with PUSH_PROMISE, which we disable.
            return Err(ConnectionError::InvalidStreamId { id });
        }
        self.last_peer_id = v;
        if self.goaway_sent_last.is_some_and(|last| v > last) {
            // §6.8: streams above the last-stream-id of our GOAWAY are ignored.
            return Ok(());
        }
        if let Some(e) = reset {
            return self.stream_error(id, e, now);
        }
        let fields = match decoded {
            Ok(f) => f,
            Err(e) => return self.stream_error(id, e, now),
        };
        if self.active_peer >= self.local.max_concurrent_streams {
            let limit = self.local.max_concurrent_streams;
            return self.stream_error(id, StreamError::ConcurrencyExceeded { limit }, now);
        }
        if self.pending_accept >= self.config.max_pending_accept {
            let limit = self.config.max_pending_accept;
            return self.stream_error(id, StreamError::PendingAcceptExceeded { limit }, now);
        }
        let info = match headers::validate_request(&fields) {
            Ok(i) => i,
            Err(e) => return self.stream_error(id, StreamError::Malformed(e), now),
        };
        if end_stream && info.content_length.is_some_and(|c| c != 0) {
            let e = StreamError::ContentLength {
                expected: info.content_length.unwrap_or(0),
                received: 0,
            };
            return self.stream_error(id, e, now);
        }
        let mut s = self.new_stream(id);
        s.phase = RecvPhase::Body;
        s.content_length = info.content_length;
        s.pending_accept = true;
        s.state = State::Open;
        self.pending_accept += 1;
        self.active_peer += 1;
        self.streams.insert(id, s);
        self.events.push_back(Event::Headers {
            id,
            fields,
            end_stream,
        });
        if end_stream {
            self.recv_end(id);
        }
        Ok(())
    }

    fn new_stream(&self, id: StreamId) -> Stream {
        Stream {
            id,
            state: State::Idle,
            recv: RecvWindow::new(
                self.local.initial_window_size,
                self.stream_target.max(self.local.initial_window_size),
                self.config.window_update_threshold,
            ),
            send: SendWindow::new(self.peer.initial_window_size),
            queue: VecDeque::new(),
            queued: 0,
            end_queued: false,
            trailers: None,
            pending_open: None,
            headers_sent: false,
            in_ready: false,
            want_writable: false,
            phase: RecvPhase::AwaitHeaders,
            content_length: None,
            data_received: 0,
            head: false,
            pending_accept: false,
            wu_dirty: false,
        }
    }

    /// Moves a stream to `new`, keeping the concurrency counters right.
    fn transition(&mut self, id: StreamId, new: State) {
        let local = self.is_local_id(id);
        let Some(s) = self.streams.get_mut(id) else {
            return;
        };
        let old = s.state;
        s.state = new;
        let counter = if local {
            &mut self.active_local
        } else {
            &mut self.active_peer
        };
        match (counted(old), counted(new)) {
            (true, false) => *counter = counter.saturating_sub(1),
            (false, true) => *counter += 1,
            _ => {}
        }
    }

    /// END_STREAM received on `id`.
    fn recv_end(&mut self, id: StreamId) {
        let Some(s) = self.streams.get_mut(id) else {
            return;
        };
        s.phase = RecvPhase::Done;
        s.recv.end();
        let new = match s.state {
            State::Open => State::HalfClosedRemote,
            State::HalfClosedLocal => State::Closed,
            other => other,
        };
        self.transition(id, new);
        self.maybe_remove(id);
    }

    /// END_STREAM sent on `id`.
    fn send_end(&mut self, id: StreamId) {
        let Some(s) = self.streams.get(id) else {
            return;
        };
        if let Some(new) = s.state.send(true) {
            self.transition(id, new);
        }
        self.maybe_remove(id);
    }

    /// Forgets a closed stream once nothing is left to send or to release.
    fn maybe_remove(&mut self, id: StreamId) {
        let done = self.streams.get(id).is_some_and(|s| {
            s.state == State::Closed && s.queue.is_empty() && s.recv.buffered() == 0
        });
        if done {
            if let Some(s) = self.streams.remove(id) {
                if s.pending_accept {
                    self.pending_accept = self.pending_accept.saturating_sub(1);
                }
            }
            self.closed.remember(id, false);
        }
    }

    /// Removes a reset stream: its unreleased data is released to the connection window.
    /// `by_us`: we sent (or never needed to send) the RST_STREAM, so late frames from the
    /// peer are ignored (§5.1 closed: "... MUST ignore frames that it receives on closed
    /// streams after it has sent a RST_STREAM frame"); after the peer's RST_STREAM they are
    /// STREAM_CLOSED errors. Returns whether the stream existed.
    fn remove_reset(&mut self, id: StreamId, by_us: bool) -> bool {
        let Some(s) = self.streams.get(id) else {
            if by_us {
                self.closed.remember(id, true);
            }
            return false;
        };
        if counted(s.state) {
            self.transition(id, State::Closed);
        }
        if let Some(s) = self.streams.remove(id) {
            self.conn_recv.consume(s.recv.buffered());
            if s.pending_accept {
                self.pending_accept = self.pending_accept.saturating_sub(1);
            }
            if s.pending_open.is_some() {
                self.queued_opens.retain(|q| *q != id);
            }
        }
        self.closed.remember(id, by_us);
        true
    }

    /// A stream error (§5.4.2): RST_STREAM, counted against `max_resets_sent`.
    fn stream_error(
        &mut self,
        id: StreamId,
        err: StreamError,
        now: Instant,
    ) -> Result<(), ConnectionError> {
        let limit = self.config.max_resets_sent;
        if self.resets_sent.hit(now, self.config.reset_window, limit) {
            return Err(ConnectionError::TooManyResetsSent { limit });
        }
        RstStreamFrame {
            stream_id: id,
            error_code: err.code(),
        }
        .encode(&mut self.out);
        self.queued_control += 1;
        self.stats.resets_sent += 1;
        if self.remove_reset(id, true) {
            self.events.push_back(Event::Reset {
                id,
                cause: ResetCause::Local(err),
            });
        }
        Ok(())
    }

    fn on_data(&mut self, d: DataFrame, now: Instant) -> Result<(), ConnectionError> {
        let id = d.stream_id;
        let len = d.flow_controlled_len;
        // §6.9: every DATA frame counts against the connection window.
        self.conn_recv.on_data(len).map_err(|e| match e {
            FlowError::WindowExceeded { len, available } => {
                ConnectionError::ConnectionWindowExceeded { len, available }
            }
            _ => ConnectionError::ConnectionWindowOverflow,
        })?;
        self.stats.data_frames_received += 1;
        self.stats.data_bytes_received += u64::from(len);
        if self.bdp.is_some() {
            self.bdp_data_seen = true;
        }
        if d.payload.is_empty() && !d.end_stream {
            self.count_empty(now)?;
        }
        let verdict = match self.streams.get_mut(id) {
            None => None,
            Some(s) if s.pending_open.is_some() => {
                return Err(ConnectionError::FrameOnIdleStream {
                    kind: kind::DATA,
                    id,
                })
            }
            Some(s) if !s.state.can_recv() || s.phase == RecvPhase::Done => {
                Some(Err(StreamError::StreamClosed { id }))
            }
            Some(s) if s.phase == RecvPhase::AwaitHeaders => {
                Some(Err(StreamError::Malformed(HeaderError::DataBeforeHeaders)))
            }
            Some(s) => match s.recv.on_data(len) {
                Err(FlowError::WindowExceeded { len, available }) => {
                    Some(Err(StreamError::WindowExceeded { len, available }))
                }
                Err(_) => Some(Err(StreamError::WindowOverflow)),
                Ok(()) => {
                    // Padding is released at once: the application never sees it.
                    let padding = u64::from(len).saturating_sub(d.payload.len() as u64);
                    if padding > 0 {
                        s.recv.consume(padding);
                        self.conn_recv.consume(padding);
                        if !s.wu_dirty {
                            s.wu_dirty = true;
                            self.wu_dirty.push(id);
                        }
                    }
                    s.data_received += d.payload.len() as u64;
                    let over = s.content_length.filter(|cl| {
                        s.data_received > *cl || (d.end_stream && s.data_received != *cl)
                    });
                    Some(match over {
                        Some(cl) => Err(StreamError::ContentLength {
                            expected: cl,
                            received: s.data_received,
                        }),
                        None => Ok(()),
                    })
                }
            },
        };
        match verdict {
            None => {
                // Nobody will read it: release it from the connection window now.
                self.conn_recv.consume(u64::from(len));
                if self.is_idle(id) {
                    return Err(ConnectionError::FrameOnIdleStream {
                        kind: kind::DATA,
                        id,
                    });
                }
                if self.closed.was_reset(id) || self.ignored_after_goaway(id) {
                    return Ok(());
                }
                self.stream_error(id, StreamError::StreamClosed { id }, now)
            }
            Some(Err(e)) => {
                let counted_in_stream = matches!(e, StreamError::ContentLength { .. });
                if !counted_in_stream {
                    self.conn_recv.consume(u64::from(len));
                }
                self.stream_error(id, e, now)
            }
            Some(Ok(())) => {
                if !d.payload.is_empty() || d.end_stream {
                    self.events.push_back(Event::Data {
                        id,
                        data: d.payload,
                        end_stream: d.end_stream,
                    });
                }
                if d.end_stream {
                    self.recv_end(id);
                }
                Ok(())
            }
        }
    }

    fn on_rst(&mut self, r: RstStreamFrame, now: Instant) -> Result<(), ConnectionError> {
        let limit = self.config.max_resets_received;
        if self
            .resets_received
            .hit(now, self.config.reset_window, limit)
        {
            return Err(ConnectionError::RapidReset { limit });
        }
        self.stats.resets_received += 1;
        let id = r.stream_id;
        if self.is_idle(id) {
            return Err(ConnectionError::FrameOnIdleStream {
                kind: kind::RST_STREAM,
                id,
            });
        }
        if self.remove_reset(id, false) {
            self.events.push_back(Event::Reset {
                id,
                cause: ResetCause::Remote(r.error_code),
            });
        }
        Ok(())
    }

    fn on_settings(&mut self, f: SettingsFrame, _now: Instant) -> Result<(), ConnectionError> {
        if f.ack {
            if let Some((ls, _)) = self.pending_settings.pop_front() {
                self.apply_local(ls);
            }
            return Ok(());
        }
        for s in f.settings {
            match s {
                Setting::HeaderTableSize(v) => {
                    self.peer.header_table_size = v;
                    self.hpack_enc.set_peer_max_table_size(v);
                }
                Setting::EnablePush(p) => {
                    if p && self.role == Role::Client {
                        return Err(ConnectionError::EnablePushFromServer);
                    }
                    self.peer.enable_push = p;
                }
                Setting::MaxConcurrentStreams(v) => self.peer.max_concurrent_streams = v,
                Setting::InitialWindowSize(v) => {
                    let old = self.peer.initial_window_size;
                    if old != v {
                        for s in self.streams.values_mut() {
                            if s.send.on_initial_change(old, v).is_err() {
                                return Err(ConnectionError::InitialWindowOverflow { id: s.id });
                            }
                        }
                        self.peer.initial_window_size = v;
                        if v > old {
                            let ids: Vec<StreamId> = self.streams.keys().collect();
                            for id in ids {
                                self.schedule(id);
                            }
                        }
                    }
                }
                Setting::MaxFrameSize(v) => self.peer.max_frame_size = v,
                Setting::MaxHeaderListSize(v) => self.peer.max_header_list_size = v,
                Setting::Unknown { .. } => {}
            }
        }
        SettingsFrame::encode_ack(&mut self.out);
        self.queued_control += 1;
        self.events.push_back(Event::PeerSettings(self.peer));
        Ok(())
    }

    /// Our SETTINGS `new` was acknowledged (§6.5.3): it is in force now.
    fn apply_local(&mut self, new: LocalSettings) {
        let old = self.local;
        self.hpack_dec.set_max_table_size(new.header_table_size);
        self.hpack_dec
            .set_max_header_list_size(new.max_header_list_size as usize);
        self.decoder.set_max_frame_size(new.max_frame_size);
        if new.initial_window_size != old.initial_window_size {
            for s in self.streams.values_mut() {
                s.recv
                    .on_initial_change(old.initial_window_size, new.initial_window_size);
                if !s.wu_dirty {
                    s.wu_dirty = true;
                    self.wu_dirty.push(s.id);
                }
            }
            let delta = i64::from(new.initial_window_size) - i64::from(old.initial_window_size);
            self.stream_target =
                (i64::from(self.stream_target) + delta).clamp(0, i64::from(MAX_WINDOW_SIZE)) as u32;
        }
        self.local = new;
    }

    fn on_ping(&mut self, p: PingFrame, now: Instant) -> Result<(), ConnectionError> {
        if !p.ack {
            PingFrame {
                ack: true,
                payload: p.payload,
            }
            .encode(&mut self.out);
            self.queued_control += 1;
            return Ok(());
        }
        match p.payload[0] {
            PING_BDP => {
                let grown = self.bdp.as_mut().and_then(|b| b.on_ping_ack(now));
                if let Some(w) = grown {
                    self.grow_windows(w);
                }
            }
            PING_KEEPALIVE => self.keepalive_sent = None,
            PING_USER => {
                let seq =
                    u32::from_be_bytes([p.payload[4], p.payload[5], p.payload[6], p.payload[7]]);
                while let Some(&(s, sent)) = self.user_pings.front() {
                    if s > seq {
                        break;
                    }
                    self.user_pings.pop_front();
                    if s == seq {
                        self.events.push_back(Event::PingAck {
                            rtt: now.saturating_duration_since(sent),
                        });
                    }
                }
            }
            PING_SHUTDOWN if self.shutdown == Shutdown::AwaitPing => {
                // §6.8: after one RTT every stream the client opened is known: send the
                // real last-stream-id.
                let last = StreamId::new(self.last_peer_id);
                GoAwayFrame::encode_parts(last, ErrorCode::NO_ERROR, b"", &mut self.out);
                self.goaway_sent_last = Some(self.last_peer_id);
                self.shutdown = Shutdown::Draining;
            }
            _ => {}
        }
        Ok(())
    }

    /// The adaptive estimator found the windows too small: grow them to `w` per stream.
    fn grow_windows(&mut self, w: u32) {
        self.stats.window_growths += 1;
        self.stream_target = w.max(self.stream_target);
        for s in self.streams.values_mut() {
            if !s.recv.is_ended() {
                s.recv.set_target(self.stream_target);
                if !s.wu_dirty {
                    s.wu_dirty = true;
                    self.wu_dirty.push(s.id);
                }
            }
        }
        let conn = (u64::from(self.stream_target) * 2)
            .max(u64::from(self.config.initial_connection_window))
            .min(u64::from(self.config.max_connection_window)) as u32;
        self.conn_recv.set_target(conn);
    }

    fn on_goaway(&mut self, g: GoAwayFrame) -> Result<(), ConnectionError> {
        let last = g.last_stream_id.value();
        let prev = self.goaway_received;
        let last = prev.map_or(last, |prev| prev.min(last));
        self.goaway_received = Some(last);
        // One event per change (a GOAWAY flood does not grow the event queue).
        if prev != Some(last) || self.goaway_code != Some(g.error_code) {
            self.goaway_code = Some(g.error_code);
            self.events.push_back(Event::GoAway {
                last_stream_id: StreamId::new(last),
                code: g.error_code,
                debug_data: g.debug_data,
            });
        }
        // §6.8: streams we opened above `last` were not processed: retryable.
        // §6.8: "Receivers of a GOAWAY frame MUST NOT open new streams": streams still
        // queued for a concurrency slot are refused too, whatever the last-stream-id.
        let mut refused: Vec<StreamId> = self
            .streams
            .keys()
            .filter(|id| {
                self.is_local_id(*id)
                    && (id.value() > last
                        || self
                            .streams
                            .get(*id)
                            .is_some_and(|s| s.pending_open.is_some()))
            })
            .collect();
        refused.sort_unstable();
        for id in refused {
            self.remove_reset(id, false);
            self.events.push_back(Event::Reset {
                id,
                cause: ResetCause::GoAway,
            });
        }
        Ok(())
    }

    fn on_window_update(
        &mut self,
        w: WindowUpdateFrame,
        now: Instant,
    ) -> Result<(), ConnectionError> {
        self.stats.window_updates_received += 1;
        let id = w.stream_id;
        if id.is_zero() {
            self.conn_send
                .on_update(w.increment)
                .map_err(|_| ConnectionError::ConnectionWindowOverflow)?;
            // Data waits on the connection window and this update lets only a sliver out.
            if i64::from(w.increment) < SMALL_WINDOW
                && i64::from(self.conn_send.available()) < SMALL_WINDOW
                && !self.ready.is_empty()
            {
                self.count_small_window_update(now)?;
            }
            return Ok(());
        }
        if self.is_idle(id) {
            return Err(ConnectionError::FrameOnIdleStream {
                kind: kind::WINDOW_UPDATE,
                id,
            });
        }
        let Some(s) = self.streams.get_mut(id) else {
            self.stats.window_updates_after_end_stream += 1;
            return Ok(());
        };
        if matches!(s.state, State::HalfClosedLocal | State::Closed) {
            self.stats.window_updates_after_end_stream += 1;
        }
        if s.send.on_update(w.increment).is_err() {
            return self.stream_error(id, StreamError::WindowOverflow, now);
        }
        // Data dribble: a tiny increment on a stream we are still sending on (whether its
        // data is queued yet or not — under a flood the handler may lag behind).
        let dribble = i64::from(w.increment) < SMALL_WINDOW
            && matches!(s.state, State::Open | State::HalfClosedRemote);
        self.schedule(id);
        if dribble {
            self.count_small_window_update(now)?;
        }
        Ok(())
    }

    fn count_priority(&mut self, now: Instant) -> Result<(), ConnectionError> {
        let limit = self.config.max_priority_frames;
        if self
            .priority_frames
            .hit(now, self.config.reset_window, limit)
        {
            return Err(ConnectionError::TooManyPriorityFrames { limit });
        }
        Ok(())
    }

    fn count_small_window_update(&mut self, now: Instant) -> Result<(), ConnectionError> {
        let limit = self.config.max_small_window_updates;
        if self
            .small_window_updates
            .hit(now, self.config.reset_window, limit)
        {
            return Err(ConnectionError::TooManySmallWindowUpdates { limit });
        }
        Ok(())
    }

    /// Puts a stream with something to send (and the window to send it) in the round-robin.
    fn schedule(&mut self, id: StreamId) {
        if let Some(s) = self.streams.get_mut(id) {
            if !s.in_ready && s.has_more() && (s.queue.is_empty() || s.send.available() > 0) {
                s.in_ready = true;
                self.ready.push_back(id);
            }
        }
    }

    /// Connection error: GOAWAY queued, everything else dropped (§5.4.1).
    fn fail(&mut self, e: ConnectionError) {
        if self.error.is_some() {
            return;
        }
        if !matches!(e, ConnectionError::GoAway { .. }) {
            let msg = e.to_string();
            let debug = &msg.as_bytes()[..msg.len().min(256)];
            GoAwayFrame::encode_parts(
                StreamId::new(self.last_peer_id),
                e.code(),
                debug,
                &mut self.out,
            );
        }
        self.error = Some(e.clone());
        self.streams.clear();
        self.ready.clear();
        self.queued_opens.clear();
        self.events.push_back(Event::ConnectionError(e));
    }

    // =========================================================================================
    // Commands
    // =========================================================================================

    fn check(&self) -> Result<(), CommandError> {
        match &self.error {
            Some(e) => Err(CommandError::Connection(e.clone())),
            None => Ok(()),
        }
    }

    fn check_peer_list_size(&self, fields: &[HeaderField]) -> Result<(), CommandError> {
        let size: usize = fields.iter().map(HeaderField::size).sum();
        let limit = self.peer.max_header_list_size as usize;
        if size > limit {
            return Err(CommandError::HeaderListTooLarge { size, limit });
        }
        Ok(())
    }

    /// Client: opens a stream with a request header section (validated, RFC 9113 §8.3.1),
    /// `end_stream` if the request has no content.
    ///
    /// Returns the new stream's id. If the peer's SETTINGS_MAX_CONCURRENT_STREAMS is
    /// reached, the stream is **queued**: it has its id already, [`Connection::is_queued`]
    /// is true, `send_data`/`send_trailers` may be called on it (buffered), and its HEADERS
    /// go out in FIFO order as soon as a slot frees up. At most `Config::max_queued_streams`
    /// are queued ([`CommandError::TooManyQueuedStreams`]); use
    /// [`Connection::open_streams_available`] to avoid queueing. If the peer sends GOAWAY
    /// first, queued streams end with [`Event::Reset`] / [`ResetCause::GoAway`].
    pub fn open_stream(
        &mut self,
        fields: Vec<HeaderField>,
        end_stream: bool,
    ) -> Result<StreamId, CommandError> {
        self.check()?;
        if self.role != Role::Client {
            return Err(CommandError::WrongRole(
                "open_stream (server push is not supported)",
            ));
        }
        if self.goaway_received.is_some() || self.shutdown != Shutdown::None {
            return Err(CommandError::GoingAway);
        }
        let info = headers::validate_request(&fields).map_err(CommandError::InvalidHeaders)?;
        self.check_peer_list_size(&fields)?;
        if self.next_local_id > MAX_WINDOW_SIZE {
            return Err(CommandError::StreamIdsExhausted);
        }
        let queue =
            !self.queued_opens.is_empty() || self.active_local >= self.peer.max_concurrent_streams;
        if queue && self.queued_opens.len() >= self.config.max_queued_streams {
            return Err(CommandError::TooManyQueuedStreams {
                limit: self.config.max_queued_streams,
            });
        }
        let id = StreamId::new(self.next_local_id);
        self.next_local_id += 2;
        let mut s = self.new_stream(id);
        s.head = info.is_head;
        if queue {
            s.pending_open = Some((fields, end_stream));
            s.end_queued = end_stream;
            self.streams.insert(id, s);
            self.queued_opens.push_back(id);
        } else {
            self.streams.insert(id, s);
            self.start_local_stream(id, &fields, end_stream);
        }
        Ok(id)
    }

    /// Sends the HEADERS of a client stream (now or when it leaves the queue).
    fn start_local_stream(&mut self, id: StreamId, fields: &[HeaderField], end_stream: bool) {
        encode_block(
            &mut self.hpack_enc,
            &mut self.hpack_buf,
            id,
            fields,
            end_stream,
            self.peer.max_frame_size,
            &mut self.out,
        );
        let new = if end_stream {
            State::HalfClosedLocal
        } else {
            State::Open
        };
        self.transition(id, new);
        if let Some(s) = self.streams.get_mut(id) {
            s.pending_open = None;
            s.headers_sent = true;
            s.end_queued |= end_stream;
            // A window grown while it was queued is announced now.
            if !s.wu_dirty {
                s.wu_dirty = true;
                self.wu_dirty.push(id);
            }
        }
        self.schedule(id);
    }

    fn flush_queued_opens(&mut self) {
        while let Some(&id) = self.queued_opens.front() {
            if self.active_local >= self.peer.max_concurrent_streams {
                break;
            }
            self.queued_opens.pop_front();
            let Some((fields, end)) = self.streams.get_mut(id).and_then(|s| s.pending_open.take())
            else {
                continue;
            };
            self.start_local_stream(id, &fields, end);
        }
    }

    /// Server: sends a response header section on a peer-opened stream (validated, RFC 9113
    /// §8.3.2). 1xx responses may precede the final one (never with `end_stream`); after
    /// the final one, only DATA and trailers.
    pub fn send_headers(
        &mut self,
        id: StreamId,
        fields: Vec<HeaderField>,
        end_stream: bool,
    ) -> Result<(), CommandError> {
        self.check()?;
        if self.role != Role::Server {
            return Err(CommandError::WrongRole(
                "send_headers (clients use open_stream)",
            ));
        }
        let s = self
            .streams
            .get(id)
            .ok_or(CommandError::UnknownStream(id))?;
        if s.headers_sent {
            return Err(CommandError::InvalidState {
                id,
                what: "a second final response (use send_trailers)",
            });
        }
        let info = headers::validate_response(&fields).map_err(CommandError::InvalidHeaders)?;
        let informational = (100..200).contains(&info.status);
        if informational && end_stream {
            return Err(CommandError::InvalidHeaders(HeaderError::UnexpectedHeaders));
        }
        let Some(new) = s.state.send(end_stream) else {
            return Err(CommandError::InvalidState {
                id,
                what: "headers after END_STREAM",
            });
        };
        self.check_peer_list_size(&fields)?;
        encode_block(
            &mut self.hpack_enc,
            &mut self.hpack_buf,
            id,
            &fields,
            end_stream,
            self.peer.max_frame_size,
            &mut self.out,
        );
        if let Some(s) = self.streams.get_mut(id) {
            s.headers_sent |= !informational;
            s.end_queued |= end_stream;
        }
        self.transition(id, new);
        self.maybe_remove(id);
        Ok(())
    }

    /// Queues `data` on a stream (zero-copy: the same `Bytes` goes into `poll_transmit`'s
    /// output, split at frame boundaries), then END_STREAM if `end_stream`. Always accepted
    /// while the stream may send; the driver bounds what it queues with
    /// [`Connection::send_capacity`] / [`Event::Writable`]. DATA leaves as the flow-control
    /// windows allow, round-robin between streams, in frames as large as the peer's
    /// SETTINGS_MAX_FRAME_SIZE.
    pub fn send_data(
        &mut self,
        id: StreamId,
        data: Bytes,
        end_stream: bool,
    ) -> Result<(), CommandError> {
        self.check()?;
        let limit = self.config.send_buffer_per_stream;
        let s = self
            .streams
            .get_mut(id)
            .ok_or(CommandError::UnknownStream(id))?;
        if !s.headers_sent && s.pending_open.is_none() {
            return Err(CommandError::InvalidState {
                id,
                what: "DATA before the response HEADERS",
            });
        }
        if s.end_queued || (s.pending_open.is_none() && s.state.send(false).is_none()) {
            return Err(CommandError::InvalidState {
                id,
                what: "DATA after END_STREAM",
            });
        }
        if !data.is_empty() {
            s.queued += data.len();
            s.queue.push_back(data);
        }
        s.end_queued = end_stream;
        if s.queued >= limit {
            s.want_writable = true;
        }
        self.schedule(id);
        Ok(())
    }

    /// Queues a trailer section (no pseudo-headers) ending the stream, after the data
    /// already queued.
    pub fn send_trailers(
        &mut self,
        id: StreamId,
        fields: Vec<HeaderField>,
    ) -> Result<(), CommandError> {
        self.check()?;
        headers::validate_trailers(&fields).map_err(CommandError::InvalidHeaders)?;
        self.check_peer_list_size(&fields)?;
        let s = self
            .streams
            .get_mut(id)
            .ok_or(CommandError::UnknownStream(id))?;
        if (!s.headers_sent && s.pending_open.is_none())
            || s.end_queued
            || (s.pending_open.is_none() && s.state.send(true).is_none())
        {
            return Err(CommandError::InvalidState {
                id,
                what: "trailers",
            });
        }
        s.trailers = Some(fields);
        s.end_queued = true;
        self.schedule(id);
        Ok(())
    }

    /// Resets a stream (RST_STREAM with `code`, RFC 9113 §6.4) and forgets it: queued data
    /// is dropped, received data not yet released is released. A stream still queued for a
    /// concurrency slot is dropped without any frame. Resetting a stream that is already
    /// gone is not an error.
    pub fn reset(&mut self, id: StreamId, code: ErrorCode) -> Result<(), CommandError> {
        self.check()?;
        let Some(s) = self.streams.get(id) else {
            if self.closed.contains(id) {
                return Ok(());
            }
            return Err(CommandError::UnknownStream(id));
        };
        if s.pending_open.is_none() {
            RstStreamFrame {
                stream_id: id,
                error_code: code,
            }
            .encode(&mut self.out);
            self.stats.resets_sent += 1;
        }
        self.remove_reset(id, true);
        Ok(())
    }

    /// The application consumed `n` bytes of DATA received on `id`: the stream and
    /// connection windows are credited, and a WINDOW_UPDATE goes out with the next
    /// `poll_transmit` once the uncredited bytes reach the threshold (half the window by
    /// default; never for a stream whose END_STREAM was received). Extra bytes, or a stream
    /// that is gone, are ignored.
    ///
    /// Every byte delivered in [`Event::Data`] must eventually be released (or the stream
    /// reset): a closed stream is forgotten only once its received data is released, and
    /// unreleased bytes keep the connection window closed.
    pub fn release_capacity(&mut self, id: StreamId, n: usize) -> Result<(), CommandError> {
        self.check()?;
        if let Some(s) = self.streams.get_mut(id) {
            let released = s.recv.consume(n as u64);
            self.conn_recv.consume(released);
            if let Some(b) = self.bdp.as_mut() {
                b.on_consumed(released);
            }
            if !s.wu_dirty && !s.recv.is_ended() {
                s.wu_dirty = true;
                self.wu_dirty.push(id);
            }
            self.maybe_remove(id);
        }
        Ok(())
    }

    /// Sends a PING; its acknowledgement comes as [`Event::PingAck`] with the RTT measured
    /// from `now`.
    pub fn ping(&mut self, now: Instant) -> Result<(), CommandError> {
        self.check()?;
        self.ping_seq = self.ping_seq.wrapping_add(1);
        self.send_ping(PING_USER, self.ping_seq);
        self.user_pings.push_back((self.ping_seq, now));
        Ok(())
    }

    fn send_ping(&mut self, tag: u8, seq: u32) {
        let s = seq.to_be_bytes();
        PingFrame {
            ack: false,
            payload: [tag, 0, 0, 0, s[0], s[1], s[2], s[3]],
        }
        .encode(&mut self.out);
        self.stats.pings_sent += 1;
    }

    /// Starts a graceful shutdown (RFC 9113 §6.8): no new streams; streams in progress
    /// finish; [`Connection::is_closed`] becomes true when the last one ends (or after
    /// `Config::drain_timeout`). A server first sends GOAWAY(2^31-1) and a PING, then the
    /// real last-stream-id once the PING is acknowledged, so requests in flight are not
    /// lost. A client's queued streams end with [`ResetCause::GoAway`].
    pub fn graceful_shutdown(&mut self, now: Instant) -> Result<(), CommandError> {
        self.check()?;
        if self.shutdown != Shutdown::None {
            return Ok(());
        }
        self.drain_deadline = Some(now + self.config.drain_timeout);
        match self.role {
            Role::Server => {
                GoAwayFrame::encode_parts(StreamId::MAX, ErrorCode::NO_ERROR, b"", &mut self.out);
                self.send_ping(PING_SHUTDOWN, 0);
                self.shutdown = Shutdown::AwaitPing;
            }
            Role::Client => {
                let last = StreamId::new(self.last_peer_id);
                GoAwayFrame::encode_parts(last, ErrorCode::NO_ERROR, b"", &mut self.out);
                self.goaway_sent_last = Some(self.last_peer_id);
                self.shutdown = Shutdown::Draining;
                let queued: Vec<StreamId> = self.queued_opens.iter().copied().collect();
                for id in queued {
                    self.remove_reset(id, true);
                    self.events.push_back(Event::Reset {
                        id,
                        cause: ResetCause::GoAway,
                    });
                }
            }
        }
        Ok(())
    }

    /// Ends the connection at once with GOAWAY(`code`); every stream is gone.
    pub fn abort(&mut self, code: ErrorCode) {
        self.fail(ConnectionError::LocalAbort { code });
    }

    /// Changes our settings: a SETTINGS frame is queued; the values take effect when the
    /// peer acknowledges it (a larger frame size or header list is accepted at once).
    pub fn update_settings(&mut self, u: SettingsUpdate, now: Instant) -> Result<(), CommandError> {
        use h2mux_wire::frame::{MAX_MAX_FRAME_SIZE, MIN_MAX_FRAME_SIZE};
        self.check()?;
        if u.initial_window_size.is_some_and(|v| v > MAX_WINDOW_SIZE)
            || u.max_frame_size
                .is_some_and(|v| !(MIN_MAX_FRAME_SIZE..=MAX_MAX_FRAME_SIZE).contains(&v))
        {
            return Err(CommandError::InvalidSetting);
        }
        let mut new = self.pending_settings.back().map_or(self.local, |(s, _)| *s);
        let mut list = Vec::new();
        if let Some(v) = u.header_table_size {
            new.header_table_size = v;
            list.push(Setting::HeaderTableSize(v));
        }
        if let Some(v) = u.max_concurrent_streams {
            new.max_concurrent_streams = v;
            list.push(Setting::MaxConcurrentStreams(v));
        }
        if let Some(v) = u.initial_window_size {
            new.initial_window_size = v;
            list.push(Setting::InitialWindowSize(v));
        }
        if let Some(v) = u.max_frame_size {
            new.max_frame_size = v;
            list.push(Setting::MaxFrameSize(v));
            if v > self.decoder.max_frame_size() {
                self.decoder.set_max_frame_size(v);
            }
        }
        if let Some(v) = u.max_header_list_size {
            new.max_header_list_size = v;
            list.push(Setting::MaxHeaderListSize(v));
            if v > self.local.max_header_list_size {
                self.hpack_dec.set_max_header_list_size(v as usize);
            }
        }
        SettingsFrame::encode_settings(&list, &mut self.out);
        self.pending_settings.push_back((new, now));
        Ok(())
    }

    // =========================================================================================
    // Output
    // =========================================================================================

    /// Takes the next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        let ev = self.events.pop_front()?;
        if let Event::Headers { id, .. } = &ev {
            if let Some(s) = self.streams.get_mut(*id) {
                if s.pending_accept {
                    s.pending_accept = false;
                    self.pending_accept = self.pending_accept.saturating_sub(1);
                }
            }
        }
        Some(ev)
    }

    /// Appends to `chunks` the bytes to write next, ready for ONE vectored write, and returns
    /// how many bytes were appended (0: nothing to write now).
    ///
    /// Order: everything generated since the last call — control frames (SETTINGS and its
    /// ACK, PING ACK, WINDOW_UPDATE, RST_STREAM, GOAWAY) and header blocks — in one
    /// coalesced chunk first, then DATA: round-robin over the streams that have data and
    /// window, one frame per stream per turn, each frame as large as the peer's
    /// SETTINGS_MAX_FRAME_SIZE and both windows allow. A DATA payload is the application's
    /// own `Bytes` (a zero-copy slice); frame headers and small payloads are coalesced into
    /// shared chunks. With N streams ready, frames are capped at
    /// `max(16 KiB, max_transmit_bytes / N)` so every stream gets a turn in the same write. At most `Config::max_transmit_bytes` of DATA and
    /// `Config::max_transmit_chunks` chunks per call: call again while it returns > 0.
    pub fn poll_transmit(&mut self, now: Instant, chunks: &mut Vec<Bytes>) -> usize {
        let start = chunks.len();
        if self.error.is_none() {
            self.flush_queued_opens();
            self.queue_window_updates();
            let want_bdp = self.bdp_data_seen && self.bdp.as_ref().is_some_and(Bdp::wants_ping);
            if want_bdp {
                self.bdp_data_seen = false;
                self.send_ping(PING_BDP, 0);
                if let Some(b) = self.bdp.as_mut() {
                    b.on_ping_sent(now);
                }
            }
        }
        if !self.out.is_empty() {
            chunks.push(self.out.split().freeze());
        }
        self.queued_control = 0;
        if self.error.is_none() {
            self.transmit_data(chunks);
        }
        let total: usize = chunks[start..].iter().map(Bytes::len).sum();
        self.stats.bytes_sent += total as u64;
        total
    }

    fn queue_window_updates(&mut self) {
        let mut dirty = std::mem::take(&mut self.wu_dirty);
        for id in dirty.drain(..) {
            let Some(s) = self.streams.get_mut(id) else {
                continue;
            };
            s.wu_dirty = false;
            if s.pending_open.is_some() {
                // Not on the wire yet: a WINDOW_UPDATE would name an idle stream (§5.1).
                // Marked again when its HEADERS go out.
                continue;
            }
            if let Some(inc) = s.recv.take_update() {
                WindowUpdateFrame {
                    stream_id: id,
                    increment: inc,
                }
                .encode(&mut self.out);
                self.stats.stream_window_updates_sent += 1;
            }
        }
        self.wu_dirty = dirty;
        if let Some(inc) = self.conn_recv.take_update() {
            self.push_window_update(StreamId::ZERO, inc);
        }
    }

    fn push_window_update(&mut self, id: StreamId, inc: u32) {
        WindowUpdateFrame {
            stream_id: id,
            increment: inc,
        }
        .encode(&mut self.out);
        if id.is_zero() {
            self.stats.connection_window_updates_sent += 1;
        } else {
            self.stats.stream_window_updates_sent += 1;
        }
    }

    fn transmit_data(&mut self, chunks: &mut Vec<Bytes>) {
        // One turn per ready stream fits in one call: with many streams ready, frames shrink
        // (never below 16 KiB) so that each gets its share of this vectored write; alone, a
        // stream sends frames as large as the peer allows.
        let share = (self.config.max_transmit_bytes / self.ready.len().max(1)).max(16_384);
        let max_frame = (self.peer.max_frame_size as usize).min(share);
        let mut budget = self.config.max_transmit_bytes;
        let max_chunks = self.config.max_transmit_chunks;
        let half = self.config.send_buffer_per_stream / 2;
        while let Some(id) = self.ready.pop_front() {
            if budget == 0 || chunks.len() + 3 > max_chunks {
                self.ready.push_front(id);
                break;
            }
            let Some(s) = self.streams.get_mut(id) else {
                continue;
            };
            s.in_ready = false;
            if !s.has_more() {
                continue;
            }
            let mut ended = false;
            let mut keep_turn = false;
            if let Some(front) = s.queue.front_mut() {
                let conn_win = self.conn_send.available() as usize;
                if conn_win == 0 {
                    // Blocked on the connection window: keep our turn for its update.
                    s.in_ready = true;
                    self.ready.push_front(id);
                    break;
                }
                let win = (s.send.available() as usize).min(conn_win);
                if win == 0 {
                    continue; // a WINDOW_UPDATE on this stream reschedules it
                }
                let wanted = front.len().min(max_frame).min(s.send.available() as usize);
                let n = wanted.min(conn_win).min(budget);
                // Cut short by the connection window or this call's budget, not by its own
                // data or window: the stream keeps its turn (otherwise the stream that happens
                // to sit at that boundary loses a turn every time, and the same ones can).
                keep_turn = n < wanted;
                let payload = if n == front.len() {
                    s.queue.pop_front().unwrap_or_default()
                } else {
                    front.split_to(n)
                };
                s.queued -= n;
                let end = s.end_queued && s.queue.is_empty() && s.trailers.is_none();
                DataFrame::encode_header_for(id, n, end, &mut self.scratch);
                if n <= SMALL_PAYLOAD {
                    self.scratch.extend_from_slice(&payload);
                } else {
                    if !self.scratch.is_empty() {
                        chunks.push(self.scratch.split().freeze());
                    }
                    chunks.push(payload);
                }
                // n <= both windows, which fit in u32.
                s.send.consume(n as u32);
                self.conn_send.consume(n as u32);
                budget -= n;
                self.stats.data_frames_sent += 1;
                self.stats.data_bytes_sent += n as u64;
                ended = end;
            } else if s.end_queued {
                match s.trailers.take() {
                    Some(t) => encode_block(
                        &mut self.hpack_enc,
                        &mut self.hpack_buf,
                        id,
                        &t,
                        true,
                        self.peer.max_frame_size,
                        &mut self.scratch,
                    ),
                    None => {
                        DataFrame::encode_header_for(id, 0, true, &mut self.scratch);
                        self.stats.data_frames_sent += 1;
                    }
                }
                ended = true;
            }
            if s.want_writable && s.queued <= half {
                s.want_writable = false;
                self.events.push_back(Event::Writable { id });
            }
            if ended {
                self.send_end(id);
            } else if keep_turn {
                s.in_ready = true;
                self.ready.push_front(id);
                break;
            } else {
                self.schedule(id);
            }
        }
        if !self.scratch.is_empty() {
            chunks.push(self.scratch.split().freeze());
        }
    }

    // =========================================================================================
    // Timers
    // =========================================================================================

    /// Whether [`Connection::release_idle_buffers`] would give memory back: an empty encode
    /// buffer or stream table that still holds its capacity.
    pub fn holds_idle_buffers(&self) -> bool {
        (self.out.is_empty() && self.out.capacity() > 0)
            || (self.scratch.is_empty() && self.scratch.capacity() > 0)
            || (self.hpack_buf.is_empty() && self.hpack_buf.capacity() > 0)
            || (self.streams.is_empty() && self.streams.capacity() > 0)
    }

    /// Gives back the capacity of empty encode buffers and of an empty stream table, for a
    /// connection that has been quiet a while (the driver calls it after its idle delay):
    /// an idle connection then keeps only its state, not its working space (issue 5 §6:
    /// ≤ 16 KiB per idle server connection). They grow again on the next use.
    pub fn release_idle_buffers(&mut self) {
        for b in [&mut self.out, &mut self.scratch, &mut self.hpack_buf] {
            if b.is_empty() {
                *b = BytesMut::new();
            }
        }
        if self.streams.is_empty() {
            self.streams = IdMap::default();
        }
        if self.ready.is_empty() {
            self.ready = VecDeque::new();
        }
        if self.wu_dirty.is_empty() {
            self.wu_dirty = Vec::new();
        }
        if self.queued_opens.is_empty() {
            self.queued_opens = VecDeque::new();
        }
        if self.events.is_empty() {
            self.events = VecDeque::new();
        }
    }

    /// The next instant at which [`Connection::handle_timeout`] must be called (SETTINGS
    /// ACK timeout, keepalive PING or its timeout, drain deadline), if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.error.is_some() {
            return None;
        }
        let settings = self
            .pending_settings
            .front()
            .map(|(_, t)| *t + self.config.settings_timeout);
        let keepalive = self
            .config
            .keepalive_interval
            .map(|i| match self.keepalive_sent {
                Some(t) => t + self.config.keepalive_timeout,
                None => self.last_recv + i,
            });
        [settings, keepalive, self.drain_deadline]
            .into_iter()
            .flatten()
            .min()
    }

    /// Handles the timers due at `now`: a late SETTINGS ACK or keepalive PING ends the
    /// connection (an [`Event::ConnectionError`] is queued), a keepalive PING is queued, or
    /// the drain deadline closes the connection.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.error.is_some() {
            return;
        }
        if self
            .pending_settings
            .front()
            .is_some_and(|(_, t)| now >= *t + self.config.settings_timeout)
        {
            self.fail(ConnectionError::SettingsTimeout);
            return;
        }
        if let Some(interval) = self.config.keepalive_interval {
            match self.keepalive_sent {
                Some(t) if now >= t + self.config.keepalive_timeout => {
                    self.fail(ConnectionError::KeepaliveTimeout);
                    return;
                }
                None if now >= self.last_recv + interval => {
                    self.ping_seq = self.ping_seq.wrapping_add(1);
                    self.send_ping(PING_KEEPALIVE, self.ping_seq);
                    self.keepalive_sent = Some(now);
                }
                _ => {}
            }
        }
        if self.drain_deadline.is_some_and(|d| now >= d) && !self.is_closed() {
            self.fail(ConnectionError::LocalAbort {
                code: ErrorCode::NO_ERROR,
            });
        }
    }
}

fn frame_kind(f: &Frame) -> u8 {
    match f {
        Frame::Data(_) => kind::DATA,
        Frame::Headers(_) => kind::HEADERS,
        Frame::Priority(_) => kind::PRIORITY,
        Frame::RstStream(_) => kind::RST_STREAM,
        Frame::Settings(_) => kind::SETTINGS,
        Frame::PushPromise(_) => kind::PUSH_PROMISE,
        Frame::Ping(_) => kind::PING,
        Frame::GoAway(_) => kind::GOAWAY,
        Frame::WindowUpdate(_) => kind::WINDOW_UPDATE,
        Frame::Continuation(_) => kind::CONTINUATION,
        Frame::Unknown(u) => u.header.kind,
    }
}

/// HPACK-encodes `fields` and appends HEADERS + CONTINUATION frames to `dst`.
fn encode_block(
    enc: &mut hpack::Encoder,
    tmp: &mut BytesMut,
    id: StreamId,
    fields: &[HeaderField],
    end_stream: bool,
    max_frame_size: u32,
    dst: &mut BytesMut,
) {
    enc.encode(fields.iter(), tmp);
    let max = max_frame_size.clamp(MIN_MAX_FRAME_SIZE, MAX_MAX_FRAME_SIZE) as usize;
    if tmp.len() <= max {
        // The common case: one HEADERS frame, built in place; `tmp` keeps its capacity.
        let mut f = flags::END_HEADERS;
        if end_stream {
            f |= flags::END_STREAM;
        }
        encode_frame_header(
            &FrameHeader {
                length: tmp.len() as u32,
                kind: kind::HEADERS,
                flags: f,
                stream_id: id,
            },
            dst,
        );
        dst.extend_from_slice(tmp);
        tmp.clear();
    } else {
        let block = tmp.split().freeze();
        encode_header_block(id, block, end_stream, max_frame_size, dst);
    }
}
