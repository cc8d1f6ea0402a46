//! Frame decoding (RFC 9113 §4.1–§4.2, §6). CONTRACT STUB — the frames work replaces the bodies.

use super::{Frame, FrameError, FrameHeader, MIN_MAX_FRAME_SIZE};
use bytes::BytesMut;

/// Decodes frames from the front of a receive buffer.
///
/// The length of every frame is checked against the local SETTINGS_MAX_FRAME_SIZE as soon as
/// its 9-byte header is available, before any payload is read or any memory is reserved.
#[derive(Clone, Debug)]
pub struct FrameDecoder {
    max_frame_size: u32,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder::new(MIN_MAX_FRAME_SIZE)
    }
}

impl FrameDecoder {
    /// A decoder that accepts frames of at most `max_frame_size` payload bytes (our
    /// SETTINGS_MAX_FRAME_SIZE; clamped to 2^14 ..= 2^24-1).
    pub fn new(max_frame_size: u32) -> FrameDecoder {
        let mut d = FrameDecoder { max_frame_size: MIN_MAX_FRAME_SIZE };
        d.set_max_frame_size(max_frame_size);
        d
    }

    /// Changes the limit (when our SETTINGS_MAX_FRAME_SIZE is acknowledged).
    pub fn set_max_frame_size(&mut self, max_frame_size: u32) {
        self.max_frame_size = max_frame_size.clamp(MIN_MAX_FRAME_SIZE, super::MAX_MAX_FRAME_SIZE);
    }

    /// The current limit.
    pub fn max_frame_size(&self) -> u32 {
        self.max_frame_size
    }

    /// Reads a frame header from the first 9 bytes of `bytes`, or `None` if fewer are there.
    pub fn peek_header(bytes: &[u8]) -> Option<FrameHeader> {
        let _ = bytes;
        todo!("frames work")
    }

    /// Decodes one frame from the front of `buf`.
    ///
    /// * `Ok(None)`: the buffer does not hold a whole frame yet; nothing was consumed.
    /// * `Ok(Some(frame))`: the frame's bytes were removed from `buf`; DATA payloads and
    ///   header blocks are zero-copy slices of them.
    /// * `Err(e)` with `e.scope()` a stream: the offending frame was consumed, the
    ///   connection can go on. With connection scope, the connection must end with
    ///   GOAWAY(`e.code()`); the buffer is left in an unspecified state.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        let _ = buf;
        todo!("frames work")
    }
}
