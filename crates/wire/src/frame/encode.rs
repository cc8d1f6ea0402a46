//! Frame encoding (RFC 9113 §4.1 frame format, §6 frame definitions).
//!
//! Everything we send is unpadded (padding is optional, §6.1) and sets the reserved bit of
//! stream identifiers to 0 (§4.1: "MUST remain unset (0x00) when sending"). Encoding appends to
//! a `BytesMut`; the caller owns buffer reuse. Lengths are the caller's responsibility: a
//! payload must fit the peer's SETTINGS_MAX_FRAME_SIZE (and therefore 24 bits); use
//! [`encode_header_block`] to split header blocks.

use super::{
    flags, kind, ContinuationFrame, DataFrame, Frame, FrameHeader, GoAwayFrame, HeadersFrame,
    PingFrame, PriorityFrame, PrioritySpec, PushPromiseFrame, RstStreamFrame, Setting,
    SettingsFrame, StreamId, UnknownFrame, WindowUpdateFrame, FRAME_HEADER_LEN, MAX_MAX_FRAME_SIZE,
    MAX_WINDOW_SIZE, MIN_MAX_FRAME_SIZE,
};
use crate::ErrorCode;
use bytes::{BufMut, Bytes, BytesMut};

/// Writes a 9-byte frame header. The length is written as its low 24 bits and the reserved
/// bit of the stream id is 0.
pub fn encode_frame_header(header: &FrameHeader, dst: &mut BytesMut) {
    debug_assert!(
        header.length <= MAX_MAX_FRAME_SIZE,
        "frame length over 24 bits"
    );
    let l = header.length.to_be_bytes();
    let s = header.stream_id.value().to_be_bytes();
    dst.extend_from_slice(&[
        l[1],
        l[2],
        l[3],
        header.kind,
        header.flags,
        s[0],
        s[1],
        s[2],
        s[3],
    ]);
}

#[inline]
fn head(dst: &mut BytesMut, length: usize, kind: u8, flags: u8, stream_id: StreamId) {
    encode_frame_header(
        &FrameHeader {
            length: length as u32,
            kind,
            flags,
            stream_id,
        },
        dst,
    );
}

#[inline]
fn flag(on: bool, bit: u8) -> u8 {
    if on {
        bit
    } else {
        0
    }
}

fn put_priority(p: &PrioritySpec, dst: &mut BytesMut) {
    let dep = p.dependency.value() | if p.exclusive { !MAX_WINDOW_SIZE } else { 0 };
    dst.put_u32(dep);
    dst.put_u8(p.weight);
}

impl Frame {
    /// Appends the whole frame (header and payload) to `dst`. For DATA prefer
    /// [`DataFrame::encode_header`] and send the payload as its own chunk (zero-copy).
    ///
    /// [`Frame::Unknown`] carries no payload (the decoder skipped it), so it is encoded as its
    /// header with a **zero** length: same type, flags and stream. We never need to send
    /// unknown frames; this exists so that every value can be encoded.
    pub fn encode(&self, dst: &mut BytesMut) {
        match self {
            Frame::Data(f) => f.encode(dst),
            Frame::Headers(f) => f.encode(dst),
            Frame::Priority(f) => f.encode(dst),
            Frame::RstStream(f) => f.encode(dst),
            Frame::Settings(f) => f.encode(dst),
            Frame::PushPromise(f) => f.encode(dst),
            Frame::Ping(f) => f.encode(dst),
            Frame::GoAway(f) => f.encode(dst),
            Frame::WindowUpdate(f) => f.encode(dst),
            Frame::Continuation(f) => f.encode(dst),
            Frame::Unknown(f) => f.encode(dst),
        }
    }
}

impl DataFrame {
    /// Appends only the 9-byte header of this (unpadded) DATA frame; the caller writes
    /// `self.payload` after it, e.g. as the next slice of a vectored write.
    pub fn encode_header(&self, dst: &mut BytesMut) {
        Self::encode_header_for(self.stream_id, self.payload.len(), self.end_stream, dst);
    }

    /// Appends the 9-byte header of an unpadded DATA frame of `len` payload bytes, without
    /// needing a `DataFrame` (the send path of the core: header in the write buffer, payload
    /// as its own `Bytes` in the vectored write).
    pub fn encode_header_for(
        stream_id: StreamId,
        len: usize,
        end_stream: bool,
        dst: &mut BytesMut,
    ) {
        head(
            dst,
            len,
            kind::DATA,
            flag(end_stream, flags::END_STREAM),
            stream_id,
        );
    }

    /// Appends the whole unpadded frame, copying the payload.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.reserve(FRAME_HEADER_LEN + self.payload.len());
        self.encode_header(dst);
        dst.extend_from_slice(&self.payload);
    }
}

impl HeadersFrame {
    /// Appends this single HEADERS frame (unpadded; priority fields if `priority` is set).
    /// To split a large block into HEADERS + CONTINUATION use [`encode_header_block`].
    pub fn encode(&self, dst: &mut BytesMut) {
        let prio_len = if self.priority.is_some() { 5 } else { 0 };
        let f = flag(self.end_stream, flags::END_STREAM)
            | flag(self.end_headers, flags::END_HEADERS)
            | flag(self.priority.is_some(), flags::PRIORITY);
        head(
            dst,
            prio_len + self.header_block.len(),
            kind::HEADERS,
            f,
            self.stream_id,
        );
        if let Some(p) = &self.priority {
            put_priority(p, dst);
        }
        dst.extend_from_slice(&self.header_block);
    }
}

impl PriorityFrame {
    /// Appends this PRIORITY frame (5-byte payload).
    pub fn encode(&self, dst: &mut BytesMut) {
        head(dst, 5, kind::PRIORITY, 0, self.stream_id);
        put_priority(&self.priority, dst);
    }
}

impl RstStreamFrame {
    /// Appends this RST_STREAM frame (13 bytes).
    pub fn encode(&self, dst: &mut BytesMut) {
        head(dst, 4, kind::RST_STREAM, 0, self.stream_id);
        dst.put_u32(self.error_code.0);
    }
}

impl Setting {
    /// The identifier and value as sent on the wire (§6.5.1).
    pub fn to_wire(self) -> (u16, u32) {
        match self {
            Setting::HeaderTableSize(v) => (0x1, v),
            Setting::EnablePush(v) => (0x2, u32::from(v)),
            Setting::MaxConcurrentStreams(v) => (0x3, v),
            Setting::InitialWindowSize(v) => (0x4, v),
            Setting::MaxFrameSize(v) => (0x5, v),
            Setting::MaxHeaderListSize(v) => (0x6, v),
            Setting::Unknown { id, value } => (id, value),
        }
    }
}

impl SettingsFrame {
    /// Appends this SETTINGS frame. An ACK is sent with an empty payload whatever
    /// `settings` holds (§6.5: ACK "MUST" have an empty payload).
    pub fn encode(&self, dst: &mut BytesMut) {
        if self.ack {
            Self::encode_ack(dst);
        } else {
            Self::encode_settings(&self.settings, dst);
        }
    }

    /// Appends a SETTINGS frame carrying `settings` in order, without building a
    /// `SettingsFrame`.
    pub fn encode_settings(settings: &[Setting], dst: &mut BytesMut) {
        dst.reserve(FRAME_HEADER_LEN + 6 * settings.len());
        head(dst, 6 * settings.len(), kind::SETTINGS, 0, StreamId::ZERO);
        for s in settings {
            let (id, value) = s.to_wire();
            dst.put_u16(id);
            dst.put_u32(value);
        }
    }

    /// Appends a SETTINGS ACK (9 bytes).
    pub fn encode_ack(dst: &mut BytesMut) {
        head(dst, 0, kind::SETTINGS, flags::ACK, StreamId::ZERO);
    }
}

impl PushPromiseFrame {
    /// Appends this single PUSH_PROMISE frame (unpadded).
    pub fn encode(&self, dst: &mut BytesMut) {
        let f = flag(self.end_headers, flags::END_HEADERS);
        head(
            dst,
            4 + self.header_block.len(),
            kind::PUSH_PROMISE,
            f,
            self.stream_id,
        );
        dst.put_u32(self.promised_stream_id.value());
        dst.extend_from_slice(&self.header_block);
    }
}

impl PingFrame {
    /// Appends this PING frame (17 bytes).
    pub fn encode(&self, dst: &mut BytesMut) {
        head(
            dst,
            8,
            kind::PING,
            flag(self.ack, flags::ACK),
            StreamId::ZERO,
        );
        dst.extend_from_slice(&self.payload);
    }
}

impl GoAwayFrame {
    /// Appends this GOAWAY frame (17 bytes plus the debug data).
    pub fn encode(&self, dst: &mut BytesMut) {
        Self::encode_parts(self.last_stream_id, self.error_code, &self.debug_data, dst);
    }

    /// Appends a GOAWAY frame from its fields, without building a `GoAwayFrame` (the debug
    /// data is copied; keep it short).
    pub fn encode_parts(
        last_stream_id: StreamId,
        error_code: ErrorCode,
        debug_data: &[u8],
        dst: &mut BytesMut,
    ) {
        head(dst, 8 + debug_data.len(), kind::GOAWAY, 0, StreamId::ZERO);
        dst.put_u32(last_stream_id.value());
        dst.put_u32(error_code.0);
        dst.extend_from_slice(debug_data);
    }
}

impl WindowUpdateFrame {
    /// Appends this WINDOW_UPDATE frame (13 bytes). The increment's reserved bit is cleared.
    pub fn encode(&self, dst: &mut BytesMut) {
        head(dst, 4, kind::WINDOW_UPDATE, 0, self.stream_id);
        dst.put_u32(self.increment & MAX_WINDOW_SIZE);
    }
}

impl ContinuationFrame {
    /// Appends this CONTINUATION frame.
    pub fn encode(&self, dst: &mut BytesMut) {
        let f = flag(self.end_headers, flags::END_HEADERS);
        head(
            dst,
            self.header_block.len(),
            kind::CONTINUATION,
            f,
            self.stream_id,
        );
        dst.extend_from_slice(&self.header_block);
    }
}

impl UnknownFrame {
    /// Appends the header only, with length 0 (the payload was never kept).
    pub fn encode(&self, dst: &mut BytesMut) {
        head(
            dst,
            0,
            self.header.kind,
            self.header.flags,
            self.header.stream_id,
        );
    }
}

/// Appends a HEADERS frame followed by as many CONTINUATION frames as needed so that no
/// frame exceeds `max_frame_size` (the peer's SETTINGS_MAX_FRAME_SIZE, clamped to
/// 2^14 ..= 2^24-1). END_STREAM goes on the HEADERS frame, END_HEADERS on the last frame
/// (§6.2, §6.10). An empty block gives one empty HEADERS frame with END_HEADERS.
pub fn encode_header_block(
    stream_id: StreamId,
    block: Bytes,
    end_stream: bool,
    max_frame_size: u32,
    dst: &mut BytesMut,
) {
    let max = max_frame_size.clamp(MIN_MAX_FRAME_SIZE, MAX_MAX_FRAME_SIZE) as usize;
    let frames = block.len().div_ceil(max).max(1);
    dst.reserve(block.len() + frames * FRAME_HEADER_LEN);
    let mut rest: &[u8] = &block;
    let first_len = rest.len().min(max);
    let (first, tail) = rest.split_at(first_len);
    rest = tail;
    let f = flag(end_stream, flags::END_STREAM) | flag(rest.is_empty(), flags::END_HEADERS);
    head(dst, first.len(), kind::HEADERS, f, stream_id);
    dst.extend_from_slice(first);
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(rest.len().min(max));
        rest = tail;
        let f = flag(rest.is_empty(), flags::END_HEADERS);
        head(dst, chunk.len(), kind::CONTINUATION, f, stream_id);
        dst.extend_from_slice(chunk);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(f: impl Fn(&mut BytesMut)) -> Vec<u8> {
        let mut b = BytesMut::new();
        f(&mut b);
        b.to_vec()
    }

    #[test]
    fn control_frames_have_the_exact_wire_bytes() {
        let sid = StreamId::new(3);
        assert_eq!(
            enc(|d| DataFrame::encode_header_for(sid, 0x010203, true, d)),
            [1, 2, 3, 0, 1, 0, 0, 0, 3]
        );
        assert_eq!(
            enc(|d| WindowUpdateFrame {
                stream_id: sid,
                increment: u32::MAX
            }
            .encode(d)),
            [0, 0, 4, 8, 0, 0, 0, 0, 3, 0x7f, 0xff, 0xff, 0xff]
        );
        assert_eq!(
            enc(|d| RstStreamFrame {
                stream_id: sid,
                error_code: ErrorCode::CANCEL
            }
            .encode(d)),
            [0, 0, 4, 3, 0, 0, 0, 0, 3, 0, 0, 0, 8]
        );
        assert_eq!(
            enc(|d| PingFrame {
                ack: true,
                payload: [9; 8]
            }
            .encode(d)),
            [0, 0, 8, 6, 1, 0, 0, 0, 0, 9, 9, 9, 9, 9, 9, 9, 9]
        );
        assert_eq!(
            enc(|d| GoAwayFrame::encode_parts(sid, ErrorCode::PROTOCOL_ERROR, b"x", d)),
            [0, 0, 9, 7, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 1, b'x']
        );
        assert_eq!(enc(SettingsFrame::encode_ack), [0, 0, 0, 4, 1, 0, 0, 0, 0]);
        assert_eq!(
            enc(|d| SettingsFrame::encode_settings(&[Setting::EnablePush(false)], d)),
            [0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0]
        );
    }

    #[test]
    fn unknown_frames_encode_with_zero_length() {
        let u = UnknownFrame {
            header: FrameHeader {
                length: 77,
                kind: 0xbb,
                flags: 3,
                stream_id: StreamId::new(1),
            },
        };
        assert_eq!(enc(|d| u.encode(d)), [0, 0, 0, 0xbb, 3, 0, 0, 0, 1]);
    }

    #[test]
    fn header_block_split_flags() {
        // Empty block: one HEADERS with END_HEADERS (and END_STREAM as asked).
        assert_eq!(
            enc(|d| encode_header_block(StreamId::new(1), Bytes::new(), true, 16_384, d)),
            [0, 0, 0, 1, 5, 0, 0, 0, 1]
        );
        // Exactly two frames' worth: HEADERS without END_HEADERS, CONTINUATION with it.
        let block = Bytes::from(vec![1u8; 2 * 16_384]);
        let out = enc(|d| encode_header_block(StreamId::new(1), block.clone(), false, 0, d));
        assert_eq!(out.len(), 2 * (9 + 16_384));
        assert_eq!(&out[..9], &[0x00, 0x40, 0x00, 1, 0, 0, 0, 0, 1]);
        assert_eq!(
            &out[9 + 16_384..][..9],
            &[0x00, 0x40, 0x00, 9, 4, 0, 0, 0, 1]
        );
    }
}
