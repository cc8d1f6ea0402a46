//! Connection configuration: the settings we advertise (RFC 9113 §6.5.2), flow-control policy
//! (§5.2, §6.9) and the limits that protect us from hostile peers.
//!
//! # Defaults and why
//!
//! * **Frames**: we advertise SETTINGS_MAX_FRAME_SIZE = 1 MiB (the RFC allows up to 2^24-1).
//!   Per-frame overhead, not the wire, limited HTTP/2 throughput with 16 KiB frames
//!   (MISSION.md); large frames cut the frame count 64×.
//! * **Windows**: 2 MiB per stream, 4 MiB per connection to start with — enough to fill
//!   ~160 Mbit/s at 100 ms RTT before any adaptation, while a slow reader bounds what the peer
//!   may buffer at us. The adaptive estimator ([`crate::bdp`]) grows them, from PING-timed RTT
//!   × the rate at which the application *consumes* DATA, doubling per RTT while the sender
//!   is window-limited, up to [`Config::max_stream_window`] = 64 MiB and
//!   [`Config::max_connection_window`] = 128 MiB (twice the stream maximum, so two streams
//!   can each run at full window). 64 MiB is what one stream needs to fill a 50 ms path at
//!   ≈ 6 Gbit/s (BDP 37 MiB at 730 MiB/s, and the half-window update cadence leaves the
//!   sender ≈ 3/4 of the window on average); 16 MiB capped such a path at ≈ 0.24× raw TCP.
//! * **Memory bound**: the peer can never have more DATA in flight or buffered at us than the
//!   connection window target, so received-but-unread DATA per connection is at most
//!   [`Config::max_connection_window`] (128 MiB by default), and per stream at most
//!   [`Config::max_stream_window`]. Because the window grows only with what the application
//!   consumed, a reader that stops (or never starts) reading holds at most the window it had
//!   then — the initial 2 MiB per stream / 4 MiB per connection if it never read at speed;
//!   the full 128 MiB only after it drained 64 MiB per RTT and then stopped. Servers facing
//!   many untrusted uploaders can lower both maxima (the cost is throughput on long paths:
//!   at most ≈ max_stream_window per RTT).
//! * **WINDOW_UPDATE** is sent when the consumed-but-uncredited bytes reach half the window
//!   ([`Config::window_update_threshold`]), but at most 16 MiB
//!   ([`crate::flow::MAX_UPDATE_THRESHOLD`]): a 2 MiB window costs one update per 1 MiB, a
//!   64 MiB window one per 16 MiB (credit in quarters keeps the sender ≈ 7/8 of the window
//!   on average instead of 3/4).
//! * **Limits**: each hostile-peer limit is a field below with its default and the error that
//!   crossing it raises.

use std::time::Duration;

/// A window increment (and, on the connection, a window) below this many octets counts as
/// "small" for [`Config::max_small_window_updates`]: frames that small cost more in
/// per-frame work than they carry.
pub const SMALL_WINDOW: i64 = 1024;

/// Tunables of one connection. `Config::default()` is the recommended starting point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    // ---- settings we advertise (RFC 9113 §6.5.2) --------------------------------------------
    /// SETTINGS_HEADER_TABLE_SIZE: the HPACK dynamic table the peer's encoder may use against
    /// our decoder. Default 4096 (the protocol default).
    pub header_table_size: u32,
    /// SETTINGS_MAX_CONCURRENT_STREAMS: how many streams the peer may open at once. Default 256.
    /// A HEADERS frame opening one more is refused with RST_STREAM(REFUSED_STREAM) (§5.1.2).
    pub max_concurrent_streams: u32,
    /// SETTINGS_INITIAL_WINDOW_SIZE: the receive window of each new stream. Default 2 MiB.
    pub initial_stream_window: u32,
    /// SETTINGS_MAX_FRAME_SIZE: the largest frame payload we accept. Default 1 MiB.
    /// Clamped to 2^14 ..= 2^24-1.
    pub max_frame_size: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE: the largest decoded header list (name + value + 32 per
    /// field) we accept. Default 64 KiB. A larger list resets the stream
    /// ([`crate::StreamError::HeaderListTooLarge`]).
    pub max_header_list_size: u32,

    // ---- flow control ------------------------------------------------------------------
    /// Receive window of the connection (raised from 65 535 with a WINDOW_UPDATE on stream 0
    /// right after our SETTINGS). Default 4 MiB.
    pub initial_connection_window: u32,
    /// Upper bound of the adaptive stream window; also the bound on bytes the peer can make
    /// us buffer for one stream. Default 64 MiB (fills ≈ 6 Gbit/s at 50 ms RTT).
    pub max_stream_window: u32,
    /// Upper bound of the adaptive connection window; also the bound on bytes the peer can
    /// make us buffer for the whole connection (the worst-case DATA memory per connection).
    /// Default 128 MiB.
    pub max_connection_window: u32,
    /// A WINDOW_UPDATE is sent once consumed-but-uncredited bytes reach this fraction of the
    /// window, in 1/256ths. Default 128 (half the window). Clamped to 1 ..= 256.
    pub window_update_threshold: u32,
    /// Grow receive windows toward the bandwidth-delay product (PING-timed RTT × receive
    /// rate). Default true.
    pub adaptive_window: bool,

    // ---- send side ----------------------------------------------------------------------
    /// Per-stream send buffer the application should keep queued at most: once
    /// [`crate::Connection::send_buffered`] reaches it, [`crate::Connection::send_capacity`] is
    /// 0, and an [`crate::Event::Writable`] follows when it drains to half. Not enforced (the
    /// driver decides), so it is not a peer-driven allocation. Default 4 MiB.
    pub send_buffer_per_stream: usize,
    /// Most bytes one [`crate::Connection::poll_transmit`] call hands out (one vectored
    /// write); the rest waits for the next call. Default 4 MiB.
    pub max_transmit_bytes: usize,
    /// Most chunks one [`crate::Connection::poll_transmit`] call hands out (IOV_MAX is 1024
    /// on Linux). Default 512.
    pub max_transmit_chunks: usize,
    /// Streams [`crate::Connection::open_stream`] may queue while the peer's
    /// SETTINGS_MAX_CONCURRENT_STREAMS is reached. Default 1024; beyond it `open_stream`
    /// fails with [`crate::CommandError::TooManyQueuedStreams`].
    pub max_queued_streams: usize,

    // ---- timers -------------------------------------------------------------------------
    /// How long the peer has to acknowledge our SETTINGS before we close with
    /// SETTINGS_TIMEOUT (§6.5.3). Default 10 s.
    pub settings_timeout: Duration,
    /// Send a keepalive PING when nothing was received for this long. Default `None` (off).
    pub keepalive_interval: Option<Duration>,
    /// A keepalive PING unanswered for this long ends the connection
    /// ([`crate::ConnectionError::KeepaliveTimeout`]). Default 20 s.
    pub keepalive_timeout: Duration,
    /// After a graceful shutdown, how long streams may drain before the connection is
    /// closed anyway. Default 30 s.
    pub drain_timeout: Duration,

    // ---- limits against hostile peers (issue 4, item 6) ---------------------------------
    /// Most CONTINUATION frames in one header block (CONTINUATION flood).
    /// Default 32. Error: [`crate::ConnectionError::TooManyContinuations`].
    pub max_continuation_frames: u32,
    /// Most bytes of one compressed header block (HEADERS + CONTINUATIONs) we buffer before
    /// decoding. Default 128 KiB. Error: [`crate::ConnectionError::HeaderBlockTooLarge`].
    pub max_header_block_size: usize,
    /// Most control frames (SETTINGS ACK, PING ACK, RST_STREAM we generate in reply)
    /// queued and not yet taken by `poll_transmit` (PING/SETTINGS flood). Default 4096.
    /// Error: [`crate::ConnectionError::ControlFrameFlood`].
    pub max_queued_control_frames: usize,
    /// Most RST_STREAM frames the peer may send per [`Config::reset_window`] (Rapid Reset,
    /// CVE-2023-44487). Default 200. Error: [`crate::ConnectionError::RapidReset`].
    pub max_resets_received: u32,
    /// Most RST_STREAM frames we may have to send because of the peer's faults per
    /// [`Config::reset_window`] (MadeYouReset). Default 200.
    /// Error: [`crate::ConnectionError::TooManyResetsSent`].
    pub max_resets_sent: u32,
    /// Window of the reset counters. Default 10 s.
    pub reset_window: Duration,
    /// Most empty frames (DATA without payload nor END_STREAM, HEADERS/CONTINUATION with an
    /// empty fragment that does not end the block) per [`Config::reset_window`].
    /// Default 1000. Error: [`crate::ConnectionError::TooManyEmptyFrames`].
    pub max_empty_frames: u32,
    /// Most PRIORITY frames per [`Config::reset_window`] (CVE-2019-9513: we keep no
    /// priority tree, so each costs only its parsing, but an endless stream of them is
    /// work for nothing). Default 1000. Error: [`crate::ConnectionError::TooManyPriorityFrames`].
    pub max_priority_frames: u32,
    /// Most "small" WINDOW_UPDATE frames per [`Config::reset_window`]: on a stream we are
    /// still sending on, an increment under [`crate::config::SMALL_WINDOW`] octets; on the
    /// connection, one that leaves its window under that while data waits — each lets only
    /// a tiny DATA frame out (CVE-2019-9511 "data dribble"). Default 1000.
    /// Error: [`crate::ConnectionError::TooManySmallWindowUpdates`].
    pub max_small_window_updates: u32,
    /// Most peer-opened streams whose opening [`crate::Event::Headers`] the application has
    /// not yet taken with `poll_event`. Beyond it new streams are refused with
    /// RST_STREAM(REFUSED_STREAM). Default 256.
    pub max_pending_accept: usize,
    /// How many recently closed or reset stream ids we remember, to tell "late frame on a
    /// stream we reset" (ignored) from "frame on a stream closed long ago". Default 1024.
    pub closed_stream_memory: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            header_table_size: 4096,
            max_concurrent_streams: 256,
            initial_stream_window: 2 << 20,
            max_frame_size: 1 << 20,
            max_header_list_size: 64 << 10,
            initial_connection_window: 4 << 20,
            max_stream_window: 64 << 20,
            max_connection_window: 128 << 20,
            window_update_threshold: 128,
            adaptive_window: true,
            send_buffer_per_stream: 4 << 20,
            max_transmit_bytes: 4 << 20,
            max_transmit_chunks: 512,
            max_queued_streams: 1024,
            settings_timeout: Duration::from_secs(10),
            keepalive_interval: None,
            keepalive_timeout: Duration::from_secs(20),
            drain_timeout: Duration::from_secs(30),
            max_continuation_frames: 32,
            max_header_block_size: 128 << 10,
            max_queued_control_frames: 4096,
            max_resets_received: 200,
            max_resets_sent: 200,
            reset_window: Duration::from_secs(10),
            max_empty_frames: 1000,
            max_priority_frames: 1000,
            max_small_window_updates: 1000,
            max_pending_accept: 256,
            closed_stream_memory: 1024,
        }
    }
}

impl Config {
    /// The values clamped into the ranges the RFC allows (so the SETTINGS we send are valid).
    pub(crate) fn normalized(mut self) -> Config {
        use h2mux_wire::frame::{MAX_MAX_FRAME_SIZE, MAX_WINDOW_SIZE, MIN_MAX_FRAME_SIZE};
        self.max_frame_size = self
            .max_frame_size
            .clamp(MIN_MAX_FRAME_SIZE, MAX_MAX_FRAME_SIZE);
        self.initial_stream_window = self.initial_stream_window.min(MAX_WINDOW_SIZE);
        self.initial_connection_window = self.initial_connection_window.clamp(
            h2mux_wire::frame::DEFAULT_INITIAL_WINDOW_SIZE,
            MAX_WINDOW_SIZE,
        );
        self.max_stream_window = self
            .max_stream_window
            .clamp(self.initial_stream_window, MAX_WINDOW_SIZE);
        self.max_connection_window = self
            .max_connection_window
            .clamp(self.initial_connection_window, MAX_WINDOW_SIZE);
        self.window_update_threshold = self.window_update_threshold.clamp(1, 256);
        self.max_transmit_chunks = self.max_transmit_chunks.max(4);
        self.max_transmit_bytes = self.max_transmit_bytes.max(1);
        self.send_buffer_per_stream = self.send_buffer_per_stream.max(1);
        self
    }
}
