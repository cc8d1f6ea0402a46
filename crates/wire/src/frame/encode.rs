//! Frame encoding (RFC 9113 §4.1, §6). CONTRACT STUB — the frames work replaces the bodies.

use super::{DataFrame, Frame, FrameHeader, StreamId};
use bytes::{Bytes, BytesMut};

/// Writes a 9-byte frame header.
pub fn encode_frame_header(header: &FrameHeader, dst: &mut BytesMut) {
    let _ = (header, dst);
    todo!("frames work")
}

impl Frame {
    /// Appends the whole frame (header and payload) to `dst`. For DATA prefer
    /// [`DataFrame::encode_header`] and send the payload as its own chunk (zero-copy).
    pub fn encode(&self, dst: &mut BytesMut) {
        let _ = dst;
        todo!("frames work")
    }
}

impl DataFrame {
    /// Appends only the 9-byte header of this (unpadded) DATA frame; the caller writes
    /// `self.payload` after it, e.g. as the next slice of a vectored write.
    pub fn encode_header(&self, dst: &mut BytesMut) {
        let _ = dst;
        todo!("frames work")
    }
}

/// Appends a HEADERS frame followed by as many CONTINUATION frames as needed so that no
/// frame exceeds `max_frame_size` (the peer's SETTINGS_MAX_FRAME_SIZE).
pub fn encode_header_block(
    stream_id: StreamId,
    block: Bytes,
    end_stream: bool,
    max_frame_size: u32,
    dst: &mut BytesMut,
) {
    let _ = (stream_id, block, end_stream, max_frame_size, dst);
    todo!("frames work")
}
