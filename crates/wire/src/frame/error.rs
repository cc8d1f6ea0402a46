//! Frame decoding errors. CONTRACT STUB — the frames work adds the variants.

use super::StreamId;
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
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Placeholder until the frames work lands.
    #[error("frame too large: {length} > SETTINGS_MAX_FRAME_SIZE {max} (RFC 9113 §4.2)")]
    FrameTooLarge {
        /// Declared payload length.
        length: u32,
        /// Our limit.
        max: u32,
    },
}

impl FrameError {
    /// The wire error code to send.
    pub fn code(&self) -> ErrorCode {
        todo!("frames work")
    }
    /// Stream or connection error.
    pub fn scope(&self) -> ErrorScope {
        todo!("frames work")
    }
}
