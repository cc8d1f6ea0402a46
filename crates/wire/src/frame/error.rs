//! Frame decoding errors (RFC 9113 §4.2, §5.4, §6).
//!
//! Every rule a single frame can break has its own variant. The `Display` text names the rule
//! and its RFC section; [`FrameError::code`] gives the wire error code and
//! [`FrameError::scope`] says whether the stream (RST_STREAM, §5.4.2) or the whole connection
//! (GOAWAY, §5.4.1) must end.

use super::{HeadersFrame, StreamId};
use crate::ErrorCode;

/// Whether an error ends one stream (RST_STREAM) or the whole connection (GOAWAY)
/// (RFC 9113 §5.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorScope {
    /// A connection error (§5.4.1).
    Connection,
    /// A stream error on the given stream (§5.4.2).
    Stream(StreamId),
}

/// A rule of RFC 9113 broken by a frame, found at decode time.
///
/// Stream-scoped variants ([`ErrorScope::Stream`]) are returned after the offending frame's
/// bytes were consumed, so the connection can go on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The declared length exceeds our SETTINGS_MAX_FRAME_SIZE (connection FRAME_SIZE_ERROR).
    #[error("frame too large: {length} > SETTINGS_MAX_FRAME_SIZE {max} (RFC 9113 §4.2)")]
    FrameTooLarge {
        /// Declared payload length.
        length: u32,
        /// Our limit.
        max: u32,
    },

    // ---- stream-identifier rules -------------------------------------------------------
    /// DATA on stream 0 (connection PROTOCOL_ERROR).
    #[error("DATA frame on stream 0 (RFC 9113 §6.1)")]
    DataOnStreamZero,
    /// HEADERS on stream 0 (connection PROTOCOL_ERROR).
    #[error("HEADERS frame on stream 0 (RFC 9113 §6.2)")]
    HeadersOnStreamZero,
    /// PRIORITY on stream 0 (connection PROTOCOL_ERROR).
    #[error("PRIORITY frame on stream 0 (RFC 9113 §6.3)")]
    PriorityOnStreamZero,
    /// RST_STREAM on stream 0 (connection PROTOCOL_ERROR).
    #[error("RST_STREAM frame on stream 0 (RFC 9113 §6.4)")]
    RstStreamOnStreamZero,
    /// PUSH_PROMISE on stream 0 (connection PROTOCOL_ERROR).
    #[error("PUSH_PROMISE frame on stream 0 (RFC 9113 §6.6)")]
    PushPromiseOnStreamZero,
    /// CONTINUATION on stream 0 (connection PROTOCOL_ERROR).
    #[error("CONTINUATION frame on stream 0 (RFC 9113 §6.10)")]
    ContinuationOnStreamZero,
    /// SETTINGS on a stream other than 0 (connection PROTOCOL_ERROR).
    #[error("SETTINGS frame on stream {stream_id}, not 0 (RFC 9113 §6.5)")]
    SettingsOnStream {
        /// The stream the frame named.
        stream_id: StreamId,
    },
    /// PING on a stream other than 0 (connection PROTOCOL_ERROR).
    #[error("PING frame on stream {stream_id}, not 0 (RFC 9113 §6.7)")]
    PingOnStream {
        /// The stream the frame named.
        stream_id: StreamId,
    },
    /// GOAWAY on a stream other than 0 (connection PROTOCOL_ERROR).
    #[error("GOAWAY frame on stream {stream_id}, not 0 (RFC 9113 §6.8)")]
    GoAwayOnStream {
        /// The stream the frame named.
        stream_id: StreamId,
    },
    /// PUSH_PROMISE promising stream 0 or a client-initiated (odd) stream, never a valid new
    /// server stream (connection PROTOCOL_ERROR).
    #[error("PUSH_PROMISE promises stream {promised}, not a valid server-initiated stream (RFC 9113 §6.6, §5.1.1)")]
    PushPromiseInvalidPromisedId {
        /// The promised stream identifier.
        promised: StreamId,
    },

    // ---- padding -----------------------------------------------------------------------
    /// A PADDED frame too short to hold its Pad Length octet and other mandatory fields
    /// (connection FRAME_SIZE_ERROR).
    #[error("{frame} frame of {length} bytes too short for its mandatory fields ({needed} bytes) (RFC 9113 §4.2, §6.1/§6.2/§6.6)")]
    PayloadTooShort {
        /// Frame type name ("DATA", "HEADERS" or "PUSH_PROMISE").
        frame: &'static str,
        /// Declared payload length.
        length: u32,
        /// Bytes the flags require (Pad Length, priority fields, promised stream id).
        needed: u32,
    },
    /// DATA padding as long as the payload or longer (connection PROTOCOL_ERROR).
    #[error(
        "DATA padding of {pad_len} bytes does not fit a {length}-byte payload (RFC 9113 §6.1)"
    )]
    DataPaddingTooLong {
        /// The Pad Length field.
        pad_len: u8,
        /// Payload length.
        length: u32,
    },
    /// HEADERS padding exceeding the room left for the header block (connection PROTOCOL_ERROR).
    #[error(
        "HEADERS padding of {pad_len} bytes does not fit a {length}-byte payload (RFC 9113 §6.2)"
    )]
    HeadersPaddingTooLong {
        /// The Pad Length field.
        pad_len: u8,
        /// Payload length.
        length: u32,
    },
    /// PUSH_PROMISE padding exceeding the room left for the header block
    /// (connection PROTOCOL_ERROR).
    #[error("PUSH_PROMISE padding of {pad_len} bytes does not fit a {length}-byte payload (RFC 9113 §6.6)")]
    PushPromisePaddingTooLong {
        /// The Pad Length field.
        pad_len: u8,
        /// Payload length.
        length: u32,
    },

    // ---- priority ----------------------------------------------------------------------
    /// PRIORITY whose length is not 5 (STREAM FRAME_SIZE_ERROR; frame consumed).
    #[error("PRIORITY frame of length {length}, not 5 (RFC 9113 §6.3)")]
    PriorityBadLength {
        /// The stream.
        stream_id: StreamId,
        /// Declared payload length.
        length: u32,
    },
    /// PRIORITY making a stream depend on itself (stream PROTOCOL_ERROR; frame consumed).
    #[error("stream {stream_id} depends on itself in PRIORITY (RFC 9113 §5.3.1)")]
    PrioritySelfDependency {
        /// The stream.
        stream_id: StreamId,
    },
    /// HEADERS with priority fields making the stream depend on itself (stream
    /// PROTOCOL_ERROR; frame consumed).
    ///
    /// The decoded frame is carried along: its header block MUST still be fed to the HPACK
    /// decoder to keep the compression context in sync (RFC 9113 §4.3), even though the
    /// stream is reset.
    #[error("stream {stream_id} depends on itself in HEADERS (RFC 9113 §5.3.1)")]
    HeadersSelfDependency {
        /// The stream.
        stream_id: StreamId,
        /// The frame, for its header block.
        headers: Box<HeadersFrame>,
    },

    // ---- fixed-size control frames -----------------------------------------------------
    /// RST_STREAM whose length is not 4 (connection FRAME_SIZE_ERROR).
    #[error("RST_STREAM frame of length {length}, not 4 (RFC 9113 §6.4)")]
    RstStreamBadLength {
        /// Declared payload length.
        length: u32,
    },
    /// SETTINGS with ACK and a payload (connection FRAME_SIZE_ERROR).
    #[error("SETTINGS with ACK and a {length}-byte payload (RFC 9113 §6.5)")]
    SettingsAckWithPayload {
        /// Declared payload length.
        length: u32,
    },
    /// SETTINGS whose length is not a multiple of 6 (connection FRAME_SIZE_ERROR).
    #[error("SETTINGS frame of length {length}, not a multiple of 6 (RFC 9113 §6.5)")]
    SettingsBadLength {
        /// Declared payload length.
        length: u32,
    },
    /// SETTINGS_ENABLE_PUSH other than 0 or 1 (connection PROTOCOL_ERROR).
    #[error("SETTINGS_ENABLE_PUSH = {value}, not 0 or 1 (RFC 9113 §6.5.2)")]
    SettingsInvalidEnablePush {
        /// The value received.
        value: u32,
    },
    /// SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1 (connection FLOW_CONTROL_ERROR).
    #[error("SETTINGS_INITIAL_WINDOW_SIZE = {value} > 2^31-1 (RFC 9113 §6.5.2)")]
    SettingsInitialWindowSizeTooLarge {
        /// The value received.
        value: u32,
    },
    /// SETTINGS_MAX_FRAME_SIZE outside 2^14 ..= 2^24-1 (connection PROTOCOL_ERROR).
    #[error("SETTINGS_MAX_FRAME_SIZE = {value} outside 16384..=16777215 (RFC 9113 §6.5.2)")]
    SettingsInvalidMaxFrameSize {
        /// The value received.
        value: u32,
    },
    /// PING whose length is not 8 (connection FRAME_SIZE_ERROR).
    #[error("PING frame of length {length}, not 8 (RFC 9113 §6.7)")]
    PingBadLength {
        /// Declared payload length.
        length: u32,
    },
    /// GOAWAY shorter than 8 bytes (connection FRAME_SIZE_ERROR).
    #[error("GOAWAY frame of length {length}, less than 8 (RFC 9113 §6.8)")]
    GoAwayTooShort {
        /// Declared payload length.
        length: u32,
    },
    /// WINDOW_UPDATE whose length is not 4 (connection FRAME_SIZE_ERROR).
    #[error("WINDOW_UPDATE frame of length {length}, not 4 (RFC 9113 §6.9)")]
    WindowUpdateBadLength {
        /// Declared payload length.
        length: u32,
    },
    /// WINDOW_UPDATE with an increment of 0: a stream error on a stream, a connection error
    /// on stream 0 (PROTOCOL_ERROR either way; frame consumed).
    #[error("WINDOW_UPDATE with increment 0 on stream {stream_id} (RFC 9113 §6.9)")]
    WindowUpdateZeroIncrement {
        /// The stream (0: the connection window).
        stream_id: StreamId,
    },
}

impl FrameError {
    /// The wire error code to send.
    pub fn code(&self) -> ErrorCode {
        use FrameError::*;
        match self {
            FrameTooLarge { .. }
            | PayloadTooShort { .. }
            | PriorityBadLength { .. }
            | RstStreamBadLength { .. }
            | SettingsAckWithPayload { .. }
            | SettingsBadLength { .. }
            | PingBadLength { .. }
            | GoAwayTooShort { .. }
            | WindowUpdateBadLength { .. } => ErrorCode::FRAME_SIZE_ERROR,
            SettingsInitialWindowSizeTooLarge { .. } => ErrorCode::FLOW_CONTROL_ERROR,
            DataOnStreamZero
            | HeadersOnStreamZero
            | PriorityOnStreamZero
            | RstStreamOnStreamZero
            | PushPromiseOnStreamZero
            | ContinuationOnStreamZero
            | SettingsOnStream { .. }
            | PingOnStream { .. }
            | GoAwayOnStream { .. }
            | PushPromiseInvalidPromisedId { .. }
            | DataPaddingTooLong { .. }
            | HeadersPaddingTooLong { .. }
            | PushPromisePaddingTooLong { .. }
            | PrioritySelfDependency { .. }
            | HeadersSelfDependency { .. }
            | SettingsInvalidEnablePush { .. }
            | SettingsInvalidMaxFrameSize { .. }
            | WindowUpdateZeroIncrement { .. } => ErrorCode::PROTOCOL_ERROR,
        }
    }

    /// Stream or connection error.
    pub fn scope(&self) -> ErrorScope {
        use FrameError::*;
        match self {
            PriorityBadLength { stream_id, .. }
            | PrioritySelfDependency { stream_id }
            | HeadersSelfDependency { stream_id, .. } => ErrorScope::Stream(*stream_id),
            WindowUpdateZeroIncrement { stream_id } if !stream_id.is_zero() => {
                ErrorScope::Stream(*stream_id)
            }
            _ => ErrorScope::Connection,
        }
    }
}
