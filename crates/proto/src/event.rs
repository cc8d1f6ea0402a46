//! What the connection reports to the application ([`crate::Connection::poll_event`]).

use crate::error::{ConnectionError, StreamError};
use bytes::Bytes;
use h2mux_wire::hpack::HeaderField;
use h2mux_wire::{ErrorCode, StreamId};
use std::time::Duration;

/// Something the application must know about. Taken out with
/// [`crate::Connection::poll_event`], in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A header section opening a message: a request (server role; the stream is new, the
    /// application "accepts" it by taking this event) or a response (client role; an
    /// informational 1xx response comes as its own `Headers` event with `end_stream == false`,
    /// followed later by the final one). Fields are validated (RFC 9113 §8.2–8.3), pseudo-
    /// headers first.
    Headers {
        /// The stream.
        id: StreamId,
        /// The decoded fields.
        fields: Vec<HeaderField>,
        /// The peer will send nothing more on this stream.
        end_stream: bool,
    },
    /// Message content: a zero-copy slice of the buffer given to [`crate::Connection::recv`].
    /// The application must call [`crate::Connection::release_capacity`] with `data.len()`
    /// once it has consumed it, or the peer runs out of window (back-pressure).
    /// `data` may be empty when only `end_stream` is reported.
    Data {
        /// The stream.
        id: StreamId,
        /// The payload (padding removed).
        data: Bytes,
        /// The peer will send nothing more on this stream.
        end_stream: bool,
    },
    /// The trailer section; the peer will send nothing more on this stream.
    Trailers {
        /// The stream.
        id: StreamId,
        /// The decoded fields (no pseudo-headers).
        fields: Vec<HeaderField>,
    },
    /// The stream ended abnormally; it no longer exists. Data not yet released is released.
    Reset {
        /// The stream.
        id: StreamId,
        /// Why.
        cause: ResetCause,
    },
    /// The stream's send buffer ([`crate::Connection::send_buffered`]) drained to half of
    /// `Config::send_buffer_per_stream` after having reached it: queue more (the "window
    /// opened" signal of the send side).
    Writable {
        /// The stream.
        id: StreamId,
    },
    /// The peer's SETTINGS were applied (and acknowledged).
    PeerSettings(PeerSettings),
    /// A PING sent with [`crate::Connection::ping`] was acknowledged.
    PingAck {
        /// Time between `ping` and the acknowledgement being fed to `recv`.
        rtt: Duration,
    },
    /// The peer sent GOAWAY (RFC 9113 §6.8): no new streams; streams above
    /// `last_stream_id` that we opened were not processed and are reported as
    /// [`ResetCause::GoAway`] (retryable).
    GoAway {
        /// The last stream the peer may have processed.
        last_stream_id: StreamId,
        /// The peer's error code (NO_ERROR for a graceful shutdown).
        code: ErrorCode,
        /// Opaque debug data.
        debug_data: Bytes,
    },
    /// The connection failed (also returned by `recv`); after the GOAWAY is written
    /// [`crate::Connection::is_closed`] is true. Every stream is gone.
    ConnectionError(ConnectionError),
}

/// Why a stream was reset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResetCause {
    /// The peer sent RST_STREAM with this code.
    Remote(ErrorCode),
    /// The peer broke a stream rule; we sent RST_STREAM with `error.code()`.
    Local(StreamError),
    /// The peer's GOAWAY says it never processed this stream (or it was still queued):
    /// safe to retry on another connection.
    GoAway,
}

impl ResetCause {
    /// Whether the request certainly was not processed and may be retried (GOAWAY above
    /// its id, or RST_STREAM(REFUSED_STREAM), RFC 9113 §8.7).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ResetCause::GoAway | ResetCause::Remote(ErrorCode::REFUSED_STREAM)
        )
    }
}

/// The peer's settings as currently in force (RFC 9113 §6.5.2), with the protocol's initial
/// values until its first SETTINGS arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerSettings {
    /// SETTINGS_HEADER_TABLE_SIZE (our encoder's table bound).
    pub header_table_size: u32,
    /// SETTINGS_ENABLE_PUSH.
    pub enable_push: bool,
    /// SETTINGS_MAX_CONCURRENT_STREAMS (u32::MAX = unlimited).
    pub max_concurrent_streams: u32,
    /// SETTINGS_INITIAL_WINDOW_SIZE (our send window of new streams).
    pub initial_window_size: u32,
    /// SETTINGS_MAX_FRAME_SIZE (largest frame we send).
    pub max_frame_size: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE (u32::MAX = unlimited).
    pub max_header_list_size: u32,
}

impl Default for PeerSettings {
    fn default() -> Self {
        PeerSettings {
            header_table_size: 4096,
            enable_push: true,
            max_concurrent_streams: u32::MAX,
            initial_window_size: h2mux_wire::frame::DEFAULT_INITIAL_WINDOW_SIZE,
            max_frame_size: h2mux_wire::frame::MIN_MAX_FRAME_SIZE,
            max_header_list_size: u32::MAX,
        }
    }
}

/// A change of our settings for [`crate::Connection::update_settings`]; `None` keeps the
/// current value. Takes effect when the peer acknowledges it (RFC 9113 §6.5.3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SettingsUpdate {
    /// SETTINGS_HEADER_TABLE_SIZE.
    pub header_table_size: Option<u32>,
    /// SETTINGS_MAX_CONCURRENT_STREAMS.
    pub max_concurrent_streams: Option<u32>,
    /// SETTINGS_INITIAL_WINDOW_SIZE (≤ 2^31-1).
    pub initial_window_size: Option<u32>,
    /// SETTINGS_MAX_FRAME_SIZE (2^14 ..= 2^24-1).
    pub max_frame_size: Option<u32>,
    /// SETTINGS_MAX_HEADER_LIST_SIZE.
    pub max_header_list_size: Option<u32>,
}

/// Counters of one connection, for tests, benchmarks and monitoring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes handed out by `poll_transmit`.
    pub bytes_sent: u64,
    /// DATA frames sent.
    pub data_frames_sent: u64,
    /// DATA payload bytes sent.
    pub data_bytes_sent: u64,
    /// DATA frames received.
    pub data_frames_received: u64,
    /// Flow-controlled DATA bytes received.
    pub data_bytes_received: u64,
    /// WINDOW_UPDATE frames sent on streams.
    pub stream_window_updates_sent: u64,
    /// WINDOW_UPDATE frames sent on stream 0.
    pub connection_window_updates_sent: u64,
    /// WINDOW_UPDATE frames received for a stream after we sent its END_STREAM (or after it
    /// was gone). Not an error: an update the peer sent before our END_STREAM reached it
    /// arrives late. (We never *send* one for a stream whose END_STREAM we received: the
    /// pair harness checks that on the wire.)
    pub window_updates_after_end_stream: u64,
    /// WINDOW_UPDATE frames received.
    pub window_updates_received: u64,
    /// PING frames sent (not ACKs).
    pub pings_sent: u64,
    /// RST_STREAM frames sent.
    pub resets_sent: u64,
    /// RST_STREAM frames received.
    pub resets_received: u64,
    /// Times the adaptive estimator grew the receive windows.
    pub window_growths: u64,
}
