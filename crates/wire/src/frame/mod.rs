//! HTTP/2 frames (RFC 9113 §4 frame format, §6 frame definitions).
//!
//! Parse, don't validate: a [`Frame`] value exists only as the result of [`FrameDecoder`]
//! accepting its bytes, or of the caller building it to encode. Decoding checks every rule
//! that a single frame can break (sizes, stream-identifier rules, padding) and reports a
//! violation as a [`FrameError`] naming the rule, its scope and its [`ErrorCode`].
//!
//! Unknown frame types are surfaced as [`Frame::Unknown`] so the caller can ignore them
//! (RFC 9113 §4.1: "Implementations MUST ignore and discard frames of unknown types");
//! unknown flags are dropped (§4.1: "Unused flags MUST be ignored on receipt").

mod decode;
mod encode;
mod error;

pub use decode::FrameDecoder;
pub use encode::{encode_frame_header, encode_header_block};
pub use error::{ErrorScope, FrameError};

use crate::ErrorCode;
use bytes::Bytes;
use std::fmt;

/// Length of the fixed frame header (RFC 9113 §4.1).
pub const FRAME_HEADER_LEN: usize = 9;
/// The connection preface a client sends first (RFC 9113 §3.4).
pub const CLIENT_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The smallest value SETTINGS_MAX_FRAME_SIZE may take, and its initial value (§6.5.2).
pub const MIN_MAX_FRAME_SIZE: u32 = 16_384;
/// The largest value SETTINGS_MAX_FRAME_SIZE may take: 2^24-1 (§6.5.2).
pub const MAX_MAX_FRAME_SIZE: u32 = (1 << 24) - 1;
/// The largest flow-control window: 2^31-1 (§6.9.1).
pub const MAX_WINDOW_SIZE: u32 = (1 << 31) - 1;
/// The initial flow-control window of a stream and of the connection (§6.9.2).
pub const DEFAULT_INITIAL_WINDOW_SIZE: u32 = 65_535;

/// A 31-bit stream identifier (RFC 9113 §5.1.1). The reserved high bit is always clear.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId(u32);

impl StreamId {
    /// Stream 0: the connection itself.
    pub const ZERO: StreamId = StreamId(0);
    /// The largest stream identifier, 2^31-1.
    pub const MAX: StreamId = StreamId(MAX_WINDOW_SIZE);

    /// Builds an identifier from a `u32`, clearing the reserved bit (RFC 9113 §4.1:
    /// "The semantics of this bit are undefined ... MUST remain unset (0x00) when sending
    /// and MUST be ignored when receiving").
    pub const fn new(id: u32) -> StreamId {
        StreamId(id & MAX_WINDOW_SIZE)
    }
    /// The numeric value.
    pub const fn value(self) -> u32 {
        self.0
    }
    /// True for stream 0, the connection control stream.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }
    /// True for streams a client initiates (odd identifiers, §5.1.1).
    pub const fn is_client_initiated(self) -> bool {
        self.0 % 2 == 1
    }
    /// True for streams a server initiates (even, non-zero identifiers, §5.1.1).
    pub const fn is_server_initiated(self) -> bool {
        self.0 != 0 && self.0 & 1 == 0
    }
}

impl fmt::Debug for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StreamId({})", self.0)
    }
}
impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}
impl From<u32> for StreamId {
    fn from(id: u32) -> Self {
        StreamId::new(id)
    }
}

/// Frame type codes (RFC 9113 §6, §11.2).
pub mod kind {
    /// DATA (§6.1).
    pub const DATA: u8 = 0x0;
    /// HEADERS (§6.2).
    pub const HEADERS: u8 = 0x1;
    /// PRIORITY (§6.3).
    pub const PRIORITY: u8 = 0x2;
    /// RST_STREAM (§6.4).
    pub const RST_STREAM: u8 = 0x3;
    /// SETTINGS (§6.5).
    pub const SETTINGS: u8 = 0x4;
    /// PUSH_PROMISE (§6.6).
    pub const PUSH_PROMISE: u8 = 0x5;
    /// PING (§6.7).
    pub const PING: u8 = 0x6;
    /// GOAWAY (§6.8).
    pub const GOAWAY: u8 = 0x7;
    /// WINDOW_UPDATE (§6.9).
    pub const WINDOW_UPDATE: u8 = 0x8;
    /// CONTINUATION (§6.10).
    pub const CONTINUATION: u8 = 0x9;
}

/// Frame flag bits (RFC 9113 §6).
pub mod flags {
    /// END_STREAM on DATA and HEADERS.
    pub const END_STREAM: u8 = 0x1;
    /// ACK on SETTINGS and PING.
    pub const ACK: u8 = 0x1;
    /// END_HEADERS on HEADERS, PUSH_PROMISE and CONTINUATION.
    pub const END_HEADERS: u8 = 0x4;
    /// PADDED on DATA, HEADERS and PUSH_PROMISE.
    pub const PADDED: u8 = 0x8;
    /// PRIORITY on HEADERS.
    pub const PRIORITY: u8 = 0x20;
}

/// The 9-byte frame header (RFC 9113 §4.1), as read off the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// Payload length in bytes (24 bits).
    pub length: u32,
    /// Frame type code (see [`kind`]).
    pub kind: u8,
    /// Raw flags, including bits this frame type does not define.
    pub flags: u8,
    /// Stream identifier with the reserved bit cleared.
    pub stream_id: StreamId,
}

/// A decoded HTTP/2 frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// DATA (§6.1).
    Data(DataFrame),
    /// HEADERS (§6.2).
    Headers(HeadersFrame),
    /// PRIORITY (§6.3): parsed and otherwise ignored (RFC 9113 §5.3.2 deprecates it).
    Priority(PriorityFrame),
    /// RST_STREAM (§6.4).
    RstStream(RstStreamFrame),
    /// SETTINGS (§6.5).
    Settings(SettingsFrame),
    /// PUSH_PROMISE (§6.6).
    PushPromise(PushPromiseFrame),
    /// PING (§6.7).
    Ping(PingFrame),
    /// GOAWAY (§6.8).
    GoAway(GoAwayFrame),
    /// WINDOW_UPDATE (§6.9).
    WindowUpdate(WindowUpdateFrame),
    /// CONTINUATION (§6.10).
    Continuation(ContinuationFrame),
    /// A frame of a type RFC 9113 does not define; its payload has been skipped.
    /// The caller must ignore it (§4.1), except that it may not interrupt a header block
    /// (§6.10 — that check needs connection state and lives in the protocol core).
    Unknown(UnknownFrame),
}

impl Frame {
    /// The stream this frame belongs to (0 for SETTINGS, PING, GOAWAY and connection-level
    /// WINDOW_UPDATE; the associated stream for PUSH_PROMISE).
    pub fn stream_id(&self) -> StreamId {
        match self {
            Frame::Data(f) => f.stream_id,
            Frame::Headers(f) => f.stream_id,
            Frame::Priority(f) => f.stream_id,
            Frame::RstStream(f) => f.stream_id,
            Frame::PushPromise(f) => f.stream_id,
            Frame::WindowUpdate(f) => f.stream_id,
            Frame::Continuation(f) => f.stream_id,
            Frame::Settings(_) | Frame::Ping(_) | Frame::GoAway(_) => StreamId::ZERO,
            Frame::Unknown(f) => f.header.stream_id,
        }
    }
}

/// DATA (RFC 9113 §6.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataFrame {
    /// The stream; never 0 in a decoded frame.
    pub stream_id: StreamId,
    /// The application data, padding removed: a zero-copy slice of the decoder's buffer.
    pub payload: Bytes,
    /// END_STREAM flag.
    pub end_stream: bool,
    /// The bytes this frame counts against flow control: the whole frame payload, padding
    /// and pad-length octet included (§6.1: "The entire DATA frame payload is included in
    /// flow control, including the Pad Length and Padding fields if present").
    /// Equal to `payload.len()` for an unpadded frame.
    pub flow_controlled_len: u32,
}

/// Stream priority fields of HEADERS and PRIORITY (RFC 9113 §5.3.2, deprecated: parsed, ignored).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrioritySpec {
    /// The stream this one depends on.
    pub dependency: StreamId,
    /// The exclusive flag.
    pub exclusive: bool,
    /// Weight minus one, as on the wire (0..=255).
    pub weight: u8,
}

/// HEADERS (RFC 9113 §6.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeadersFrame {
    /// The stream; never 0 in a decoded frame.
    pub stream_id: StreamId,
    /// The header block fragment (padding removed): HPACK bytes, possibly continued by
    /// CONTINUATION frames.
    pub header_block: Bytes,
    /// END_STREAM flag.
    pub end_stream: bool,
    /// END_HEADERS flag: no CONTINUATION follows.
    pub end_headers: bool,
    /// Priority fields when the PRIORITY flag was set.
    pub priority: Option<PrioritySpec>,
}

/// PRIORITY (RFC 9113 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PriorityFrame {
    /// The stream; never 0 in a decoded frame.
    pub stream_id: StreamId,
    /// The priority fields.
    pub priority: PrioritySpec,
}

/// RST_STREAM (RFC 9113 §6.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RstStreamFrame {
    /// The stream; never 0 in a decoded frame.
    pub stream_id: StreamId,
    /// Why the stream was reset.
    pub error_code: ErrorCode,
}

/// One SETTINGS parameter (RFC 9113 §6.5.2). Values are range-checked at decode time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setting {
    /// SETTINGS_HEADER_TABLE_SIZE (0x1).
    HeaderTableSize(u32),
    /// SETTINGS_ENABLE_PUSH (0x2): only 0 or 1 are valid.
    EnablePush(bool),
    /// SETTINGS_MAX_CONCURRENT_STREAMS (0x3).
    MaxConcurrentStreams(u32),
    /// SETTINGS_INITIAL_WINDOW_SIZE (0x4): at most 2^31-1.
    InitialWindowSize(u32),
    /// SETTINGS_MAX_FRAME_SIZE (0x5): 2^14 ..= 2^24-1.
    MaxFrameSize(u32),
    /// SETTINGS_MAX_HEADER_LIST_SIZE (0x6).
    MaxHeaderListSize(u32),
    /// A setting this implementation does not know: kept so it can be ignored (§6.5.2:
    /// "An endpoint that receives a SETTINGS frame with any unknown or unsupported identifier
    /// MUST ignore that setting").
    Unknown {
        /// The identifier.
        id: u16,
        /// The value.
        value: u32,
    },
}

/// SETTINGS (RFC 9113 §6.5).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SettingsFrame {
    /// ACK flag: this acknowledges the peer's SETTINGS (and carries no parameters).
    pub ack: bool,
    /// Parameters in the order they appeared ("processed in the order in which they appear").
    pub settings: Vec<Setting>,
}

/// PUSH_PROMISE (RFC 9113 §6.6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushPromiseFrame {
    /// The associated stream; never 0 in a decoded frame.
    pub stream_id: StreamId,
    /// The stream the server promises to open.
    pub promised_stream_id: StreamId,
    /// The header block fragment (padding removed).
    pub header_block: Bytes,
    /// END_HEADERS flag.
    pub end_headers: bool,
}

/// PING (RFC 9113 §6.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PingFrame {
    /// ACK flag.
    pub ack: bool,
    /// The 8 opaque bytes.
    pub payload: [u8; 8],
}

/// GOAWAY (RFC 9113 §6.8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoAwayFrame {
    /// The highest-numbered stream the sender might have processed.
    pub last_stream_id: StreamId,
    /// Why the connection is closing.
    pub error_code: ErrorCode,
    /// Opaque diagnostic data (zero-copy slice).
    pub debug_data: Bytes,
}

/// WINDOW_UPDATE (RFC 9113 §6.9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowUpdateFrame {
    /// The stream, or 0 for the connection window.
    pub stream_id: StreamId,
    /// The increment, 1 ..= 2^31-1 in a decoded frame.
    pub increment: u32,
}

/// CONTINUATION (RFC 9113 §6.10).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContinuationFrame {
    /// The stream; never 0 in a decoded frame.
    pub stream_id: StreamId,
    /// The header block fragment.
    pub header_block: Bytes,
    /// END_HEADERS flag.
    pub end_headers: bool,
}

/// A frame of an unknown type, kept only as its header (the payload has been skipped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownFrame {
    /// The header as read.
    pub header: FrameHeader,
}
