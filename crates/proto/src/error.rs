//! Errors of the connection core (RFC 9113 §5.4 error handling).
//!
//! * [`ConnectionError`] ends the whole connection with GOAWAY (§5.4.1). It is sticky: once
//!   the connection has failed, every later call returns the same error.
//! * [`StreamError`] ends one stream with RST_STREAM (§5.4.2); the connection goes on. The
//!   application learns of it through [`crate::Event::Reset`].
//! * [`CommandError`] is returned to the application for a command it may not issue now.
//!
//! Every variant's message names the RFC rule (or the local limit) and `code()` gives the
//! wire error code.

use crate::headers::HeaderError;
use h2mux_wire::frame::FrameError;
use h2mux_wire::hpack::HpackError;
use h2mux_wire::{ErrorCode, StreamId};
use thiserror::Error;

/// An error that ends the connection (RFC 9113 §5.4.1): we send GOAWAY with
/// [`ConnectionError::code`] (unless the peer ended it) and accept nothing more.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConnectionError {
    /// A frame broke a rule checkable from the frame alone.
    #[error(transparent)]
    Frame(FrameError),
    /// The HPACK block could not be decoded (RFC 9113 §4.3: COMPRESSION_ERROR).
    #[error("RFC 9113 §4.3: header block decoding failed: {0}")]
    Hpack(HpackError),
    /// RFC 9113 §3.4: the client connection preface is not
    /// "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" (PROTOCOL_ERROR).
    #[error("RFC 9113 §3.4: invalid client connection preface")]
    BadPreface,
    /// RFC 9113 §3.4: the first frame of the peer was not SETTINGS (PROTOCOL_ERROR).
    #[error("RFC 9113 §3.4: first frame from the peer is not SETTINGS (frame type {kind:#x})")]
    FirstFrameNotSettings {
        /// The frame type received.
        kind: u8,
    },
    /// RFC 9113 §5.1: a frame other than HEADERS or PRIORITY on an idle stream
    /// (PROTOCOL_ERROR).
    #[error("RFC 9113 §5.1: frame type {kind:#x} on idle stream {id}")]
    FrameOnIdleStream {
        /// Frame type.
        kind: u8,
        /// The stream.
        id: StreamId,
    },
    /// RFC 9113 §5.1.1: a stream opened by the peer with an identifier of the wrong parity or
    /// not greater than every stream it opened before (PROTOCOL_ERROR).
    #[error("RFC 9113 §5.1.1: peer opened stream {id} with an invalid identifier")]
    InvalidStreamId {
        /// The stream.
        id: StreamId,
    },
    /// RFC 9113 §5.1: HEADERS on a stream that is closed (STREAM_CLOSED).
    #[error("RFC 9113 §5.1: HEADERS on closed stream {id}")]
    HeadersOnClosedStream {
        /// The stream.
        id: StreamId,
    },
    /// RFC 9113 §6.10: a header block was interrupted by another frame (PROTOCOL_ERROR).
    #[error("RFC 9113 §6.10: expected CONTINUATION on stream {expected}, got frame type {kind:#x} on stream {got}")]
    ExpectedContinuation {
        /// The stream whose block is open.
        expected: StreamId,
        /// Frame type received.
        kind: u8,
        /// Its stream.
        got: StreamId,
    },
    /// RFC 9113 §6.10: CONTINUATION without an open header block (PROTOCOL_ERROR).
    #[error("RFC 9113 §6.10: CONTINUATION on stream {id} without a preceding HEADERS")]
    UnexpectedContinuation {
        /// The stream.
        id: StreamId,
    },
    /// RFC 9113 §6.6 / §8.4: PUSH_PROMISE received although push is disabled (we never enable
    /// it) or received by a server (PROTOCOL_ERROR).
    #[error("RFC 9113 §6.6: PUSH_PROMISE received while push is disabled")]
    PushPromise,
    /// RFC 9113 §6.5.2: a client received SETTINGS_ENABLE_PUSH = 1 (PROTOCOL_ERROR).
    #[error("RFC 9113 §6.5.2: server sent SETTINGS_ENABLE_PUSH = 1")]
    EnablePushFromServer,
    /// RFC 9113 §6.9.1: the peer sent more DATA than the connection window allowed
    /// (FLOW_CONTROL_ERROR).
    #[error("RFC 9113 §6.9.1: {len} DATA bytes with {available} bytes of connection window")]
    ConnectionWindowExceeded {
        /// Flow-controlled bytes received.
        len: u32,
        /// Window the peer had.
        available: i64,
    },
    /// RFC 9113 §6.9.1: a WINDOW_UPDATE on stream 0 pushed our send window above 2^31-1
    /// (FLOW_CONTROL_ERROR).
    #[error("RFC 9113 §6.9.1: connection WINDOW_UPDATE overflows 2^31-1")]
    ConnectionWindowOverflow,
    /// RFC 9113 §6.9.2: a SETTINGS_INITIAL_WINDOW_SIZE change pushed a stream's send window
    /// above 2^31-1 (FLOW_CONTROL_ERROR).
    #[error("RFC 9113 §6.9.2: SETTINGS_INITIAL_WINDOW_SIZE change overflows stream {id}'s window")]
    InitialWindowOverflow {
        /// The stream.
        id: StreamId,
    },
    /// RFC 9113 §6.5.3: our SETTINGS was not acknowledged in time (SETTINGS_TIMEOUT).
    #[error("RFC 9113 §6.5.3: SETTINGS not acknowledged in time")]
    SettingsTimeout,
    /// Local policy (RFC 9113 §6.7): a keepalive PING was not answered in time (NO_ERROR on
    /// the GOAWAY; the peer is presumed gone).
    #[error("keepalive PING not acknowledged in time (RFC 9113 §6.7)")]
    KeepaliveTimeout,
    /// Limit `max_queued_control_frames`: the peer makes us queue too many replies
    /// (PING/SETTINGS flood, RFC 9113 §10.5) (ENHANCE_YOUR_CALM).
    #[error("RFC 9113 §10.5: more than {limit} control frames queued (PING/SETTINGS flood)")]
    ControlFrameFlood {
        /// The limit.
        limit: usize,
    },
    /// Limit `max_resets_received`: Rapid Reset (CVE-2023-44487, RFC 9113 §10.5)
    /// (ENHANCE_YOUR_CALM).
    #[error("RFC 9113 §10.5: more than {limit} RST_STREAM received per window (Rapid Reset)")]
    RapidReset {
        /// The limit.
        limit: u32,
    },
    /// Limit `max_resets_sent`: the peer's faults make us reset too many streams
    /// (MadeYouReset, RFC 9113 §10.5) (ENHANCE_YOUR_CALM).
    #[error(
        "RFC 9113 §10.5: more than {limit} streams reset for peer faults per window (MadeYouReset)"
    )]
    TooManyResetsSent {
        /// The limit.
        limit: u32,
    },
    /// Limit `max_empty_frames` (RFC 9113 §10.5) (ENHANCE_YOUR_CALM).
    #[error("RFC 9113 §10.5: more than {limit} empty DATA/HEADERS/CONTINUATION frames per window")]
    TooManyEmptyFrames {
        /// The limit.
        limit: u32,
    },
    /// Limit `max_priority_frames`: a PRIORITY flood (CVE-2019-9513, RFC 9113 §10.5)
    /// (ENHANCE_YOUR_CALM).
    #[error("RFC 9113 §10.5: more than {limit} PRIORITY frames per window")]
    TooManyPriorityFrames {
        /// The limit.
        limit: u32,
    },
    /// Limit `max_small_window_updates`: the peer opens its windows a few octets at a time
    /// while we are sending (data dribble, CVE-2019-9511, RFC 9113 §10.5)
    /// (ENHANCE_YOUR_CALM).
    #[error("RFC 9113 §10.5: more than {limit} WINDOW_UPDATEs of under 1024 octets per window on streams being sent (data dribble)")]
    TooManySmallWindowUpdates {
        /// The limit.
        limit: u32,
    },
    /// Limit `max_continuation_frames` (CONTINUATION flood, RFC 9113 §10.5)
    /// (ENHANCE_YOUR_CALM).
    #[error("RFC 9113 §10.5: more than {limit} CONTINUATION frames in one header block")]
    TooManyContinuations {
        /// The limit.
        limit: u32,
    },
    /// Limit `max_header_block_size`: a compressed header block too large to buffer
    /// (RFC 9113 §10.5.1) (ENHANCE_YOUR_CALM).
    #[error("RFC 9113 §10.5.1: compressed header block over {limit} bytes")]
    HeaderBlockTooLarge {
        /// The limit.
        limit: usize,
    },
    /// The peer sent GOAWAY with an error code (RFC 9113 §6.8).
    #[error("RFC 9113 §6.8: peer sent GOAWAY({code})")]
    GoAway {
        /// The peer's error code.
        code: ErrorCode,
        /// Its debug data.
        debug_data: bytes::Bytes,
    },
    /// The application aborted the connection with [`crate::Connection::abort`].
    #[error("connection aborted locally ({code})")]
    LocalAbort {
        /// The code sent in GOAWAY.
        code: ErrorCode,
    },
}

impl ConnectionError {
    /// The wire error code (sent in our GOAWAY).
    pub fn code(&self) -> ErrorCode {
        use ConnectionError::*;
        match self {
            Frame(e) => e.code(),
            Hpack(_) => ErrorCode::COMPRESSION_ERROR,
            BadPreface
            | FirstFrameNotSettings { .. }
            | FrameOnIdleStream { .. }
            | InvalidStreamId { .. }
            | ExpectedContinuation { .. }
            | UnexpectedContinuation { .. }
            | PushPromise
            | EnablePushFromServer => ErrorCode::PROTOCOL_ERROR,
            HeadersOnClosedStream { .. } => ErrorCode::STREAM_CLOSED,
            ConnectionWindowExceeded { .. }
            | ConnectionWindowOverflow
            | InitialWindowOverflow { .. } => ErrorCode::FLOW_CONTROL_ERROR,
            SettingsTimeout => ErrorCode::SETTINGS_TIMEOUT,
            KeepaliveTimeout => ErrorCode::NO_ERROR,
            ControlFrameFlood { .. }
            | RapidReset { .. }
            | TooManyResetsSent { .. }
            | TooManyEmptyFrames { .. }
            | TooManyPriorityFrames { .. }
            | TooManySmallWindowUpdates { .. }
            | TooManyContinuations { .. }
            | HeaderBlockTooLarge { .. } => ErrorCode::ENHANCE_YOUR_CALM,
            GoAway { code, .. } => *code,
            LocalAbort { code } => *code,
        }
    }
}

/// An error that ends one stream (RFC 9113 §5.4.2): we sent RST_STREAM with
/// [`StreamError::code`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StreamError {
    /// A frame broke a stream-scoped rule checkable from the frame alone.
    #[error(transparent)]
    Frame(FrameError),
    /// RFC 9113 §8.1.1: a malformed request or response (PROTOCOL_ERROR).
    #[error("RFC 9113 §8.1.1: malformed message: {0}")]
    Malformed(HeaderError),
    /// RFC 9113 §8.1.1: DATA does not add up to content-length (PROTOCOL_ERROR).
    #[error("RFC 9113 §8.1.1: content-length {expected} but {received} DATA bytes")]
    ContentLength {
        /// The content-length header.
        expected: u64,
        /// DATA bytes received (so far, if too many).
        received: u64,
    },
    /// RFC 9113 §5.1: DATA or HEADERS after the peer's END_STREAM (STREAM_CLOSED).
    #[error("RFC 9113 §5.1: frame after END_STREAM on stream {id}")]
    StreamClosed {
        /// The stream.
        id: StreamId,
    },
    /// RFC 9113 §6.9.1: more DATA than the stream window allowed (FLOW_CONTROL_ERROR).
    #[error("RFC 9113 §6.9.1: {len} DATA bytes with {available} bytes of stream window")]
    WindowExceeded {
        /// Flow-controlled bytes received.
        len: u32,
        /// Window the peer had.
        available: i64,
    },
    /// RFC 9113 §6.9.1: a WINDOW_UPDATE pushed the stream's send window above 2^31-1
    /// (FLOW_CONTROL_ERROR).
    #[error("RFC 9113 §6.9.1: stream WINDOW_UPDATE overflows 2^31-1")]
    WindowOverflow,
    /// RFC 9113 §5.1.2: the peer exceeded our SETTINGS_MAX_CONCURRENT_STREAMS
    /// (REFUSED_STREAM).
    #[error("RFC 9113 §5.1.2: peer exceeded SETTINGS_MAX_CONCURRENT_STREAMS = {limit}")]
    ConcurrencyExceeded {
        /// Our limit.
        limit: u32,
    },
    /// Limit `max_pending_accept`: too many peer streams not yet taken by the application
    /// (REFUSED_STREAM).
    #[error("more than {limit} streams waiting for the application (RFC 9113 §10.5)")]
    PendingAcceptExceeded {
        /// The limit.
        limit: usize,
    },
    /// RFC 9113 §6.5.2 / §10.5.1: the decoded header list exceeds our
    /// SETTINGS_MAX_HEADER_LIST_SIZE (PROTOCOL_ERROR; the HPACK context stays in sync).
    #[error("RFC 9113 §10.5.1: header list larger than SETTINGS_MAX_HEADER_LIST_SIZE = {limit}")]
    HeaderListTooLarge {
        /// The limit.
        limit: usize,
    },
}

impl StreamError {
    /// The wire error code (sent in our RST_STREAM).
    pub fn code(&self) -> ErrorCode {
        use StreamError::*;
        match self {
            Frame(e) => e.code(),
            Malformed(_) | ContentLength { .. } | HeaderListTooLarge { .. } => {
                ErrorCode::PROTOCOL_ERROR
            }
            StreamClosed { .. } => ErrorCode::STREAM_CLOSED,
            WindowExceeded { .. } | WindowOverflow => ErrorCode::FLOW_CONTROL_ERROR,
            ConcurrencyExceeded { .. } | PendingAcceptExceeded { .. } => ErrorCode::REFUSED_STREAM,
        }
    }
}

/// A command the application may not issue now. Nothing was queued.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CommandError {
    /// The connection has failed; the same error every time (sticky).
    #[error("connection failed: {0}")]
    Connection(ConnectionError),
    /// The connection is shutting down (GOAWAY sent or received): no new streams.
    #[error("connection is going away: no new streams")]
    GoingAway,
    /// The stream does not exist (never opened, or closed and forgotten).
    #[error("unknown stream {0}")]
    UnknownStream(StreamId),
    /// The stream cannot send this now (END_STREAM already queued, reset, or a
    /// response's HEADERS not sent yet / already sent).
    #[error("stream {id} cannot send {what} now")]
    InvalidState {
        /// The stream.
        id: StreamId,
        /// What was attempted.
        what: &'static str,
    },
    /// The command is for the other role (e.g. a server opening a request stream).
    #[error("{0} is not available in this role")]
    WrongRole(&'static str),
    /// Our header list breaks RFC 9113 §8.2–8.3; nothing was sent.
    #[error("invalid headers: {0}")]
    InvalidHeaders(HeaderError),
    /// The header list exceeds the peer's SETTINGS_MAX_HEADER_LIST_SIZE (RFC 9113 §6.5.2).
    #[error(
        "header list of {size} bytes exceeds the peer's SETTINGS_MAX_HEADER_LIST_SIZE {limit}"
    )]
    HeaderListTooLarge {
        /// Our list's size (name + value + 32 per field).
        size: usize,
        /// The peer's limit.
        limit: usize,
    },
    /// `max_queued_streams` streams are already waiting for the peer's concurrency limit.
    #[error("{limit} streams already queued for SETTINGS_MAX_CONCURRENT_STREAMS")]
    TooManyQueuedStreams {
        /// The limit.
        limit: usize,
    },
    /// RFC 9113 §5.1.1: stream identifiers are exhausted; open a new connection.
    #[error("RFC 9113 §5.1.1: stream identifiers exhausted")]
    StreamIdsExhausted,
    /// A SETTINGS value out of its §6.5.2 range.
    #[error("RFC 9113 §6.5.2: invalid setting value")]
    InvalidSetting,
}

impl From<ConnectionError> for CommandError {
    fn from(e: ConnectionError) -> Self {
        CommandError::Connection(e)
    }
}
