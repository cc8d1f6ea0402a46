//! Frame decoding (RFC 9113 §4.1 frame format, §4.2 frame size, §6 frame definitions).
//!
//! The decoder checks every rule that one frame can break on its own; rules needing
//! connection state (stream states §5.1, CONTINUATION sequencing §6.10, flow-control
//! windows §6.9) belong to the protocol core.

use super::{
    flags, kind, ContinuationFrame, DataFrame, Frame, FrameError, FrameHeader, GoAwayFrame,
    HeadersFrame, PingFrame, PriorityFrame, PrioritySpec, PushPromiseFrame, RstStreamFrame,
    Setting, SettingsFrame, StreamId, UnknownFrame, WindowUpdateFrame, FRAME_HEADER_LEN,
    MAX_MAX_FRAME_SIZE, MAX_WINDOW_SIZE, MIN_MAX_FRAME_SIZE,
};
use crate::ErrorCode;
use bytes::{Buf, Bytes, BytesMut};

/// Decodes frames from the front of a receive buffer.
///
/// The length of every frame is checked against the local SETTINGS_MAX_FRAME_SIZE as soon as
/// its 9-byte header is available, before any payload is read or any memory is reserved.
/// The decoder itself never allocates for a payload: DATA payloads, header blocks and GOAWAY
/// debug data are zero-copy slices of the caller's buffer.
#[derive(Clone, Debug)]
pub struct FrameDecoder {
    max_frame_size: u32,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder::new(MIN_MAX_FRAME_SIZE)
    }
}

#[inline]
fn be_u32(b: &[u8]) -> u32 {
    // Callers guarantee `b.len() >= 4` from a checked frame length.
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_be_bytes(a)
}

impl FrameDecoder {
    /// A decoder that accepts frames of at most `max_frame_size` payload bytes (our
    /// SETTINGS_MAX_FRAME_SIZE; clamped to 2^14 ..= 2^24-1).
    pub fn new(max_frame_size: u32) -> FrameDecoder {
        let mut d = FrameDecoder {
            max_frame_size: MIN_MAX_FRAME_SIZE,
        };
        d.set_max_frame_size(max_frame_size);
        d
    }

    /// Changes the limit (when our SETTINGS_MAX_FRAME_SIZE is acknowledged).
    pub fn set_max_frame_size(&mut self, max_frame_size: u32) {
        self.max_frame_size = max_frame_size.clamp(MIN_MAX_FRAME_SIZE, MAX_MAX_FRAME_SIZE);
    }

    /// The current limit.
    pub fn max_frame_size(&self) -> u32 {
        self.max_frame_size
    }

    /// Reads a frame header from the first 9 bytes of `bytes`, or `None` if fewer are there.
    /// The reserved bit of the stream identifier is cleared (§4.1: "MUST be ignored when
    /// receiving").
    pub fn peek_header(bytes: &[u8]) -> Option<FrameHeader> {
        let h: &[u8; FRAME_HEADER_LEN] = bytes.get(..FRAME_HEADER_LEN)?.try_into().ok()?;
        Some(FrameHeader {
            length: u32::from_be_bytes([0, h[0], h[1], h[2]]),
            kind: h[3],
            flags: h[4],
            stream_id: StreamId::new(u32::from_be_bytes([h[5], h[6], h[7], h[8]])),
        })
    }

    /// Decodes one frame from the front of `buf`.
    ///
    /// * `Ok(None)`: the buffer does not hold a whole frame yet; nothing was consumed.
    /// * `Ok(Some(frame))`: the frame's bytes were removed from `buf`; DATA payloads and
    ///   header blocks are zero-copy slices of them.
    /// * `Err(e)` with `e.scope()` a stream: the offending frame was consumed, the
    ///   connection can go on. With connection scope, the connection must end with
    ///   GOAWAY(`e.code()`); the buffer is left in an unspecified state.
    ///
    /// A frame longer than [`FrameDecoder::max_frame_size`] is rejected with
    /// [`FrameError::FrameTooLarge`] as soon as its header is in `buf`, without waiting for
    /// its payload (§4.2: "An endpoint MUST send an error code of FRAME_SIZE_ERROR if a
    /// frame exceeds the size defined in SETTINGS_MAX_FRAME_SIZE").
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        let Some(header) = Self::peek_header(buf) else {
            return Ok(None);
        };
        if header.length > self.max_frame_size {
            return Err(FrameError::FrameTooLarge {
                length: header.length,
                max: self.max_frame_size,
            });
        }
        // length <= 2^24-1, so this cannot overflow.
        let total = FRAME_HEADER_LEN + header.length as usize;
        if buf.len() < total {
            return Ok(None);
        }
        if !is_known(header.kind) {
            // §4.1: "Implementations MUST ignore and discard frames of unknown types."
            buf.advance(total);
            return Ok(Some(Frame::Unknown(UnknownFrame { header })));
        }
        let mut frame = buf.split_to(total);
        frame.advance(FRAME_HEADER_LEN);
        decode_payload(header, frame.freeze()).map(Some)
    }
}

fn is_known(k: u8) -> bool {
    k <= kind::CONTINUATION
}

/// Strips padding (§6.1, §6.2, §6.6): returns the payload after the Pad Length octet (if
/// PADDED) with the padding removed from its end. `fixed` is the number of mandatory octets
/// that must follow (priority fields, promised stream id); the caller reads them from the
/// front of the result, which is guaranteed to hold at least that many.
fn strip_padding(
    header: &FrameHeader,
    mut payload: Bytes,
    frame: &'static str,
    fixed: u32,
    too_long: fn(u8, u32) -> FrameError,
) -> Result<Bytes, FrameError> {
    let padded = header.flags & flags::PADDED != 0;
    let needed = fixed + u32::from(padded);
    if header.length < needed {
        return Err(FrameError::PayloadTooShort {
            frame,
            length: header.length,
            needed,
        });
    }
    if padded {
        let pad_len = payload.get_u8();
        // Room left for the content after the Pad Length octet and the fixed fields.
        if u32::from(pad_len) > header.length - needed {
            return Err(too_long(pad_len, header.length));
        }
        payload.truncate(payload.len() - usize::from(pad_len));
    }
    Ok(payload)
}

fn priority_spec(b: &[u8]) -> PrioritySpec {
    let raw = be_u32(b);
    PrioritySpec {
        dependency: StreamId::new(raw),
        exclusive: raw & !MAX_WINDOW_SIZE != 0,
        weight: b[4],
    }
}

fn decode_payload(header: FrameHeader, mut payload: Bytes) -> Result<Frame, FrameError> {
    let sid = header.stream_id;
    let len = header.length;
    let f = header.flags;
    match header.kind {
        kind::DATA => {
            if sid.is_zero() {
                return Err(FrameError::DataOnStreamZero);
            }
            let payload = strip_padding(&header, payload, "DATA", 0, |pad_len, length| {
                FrameError::DataPaddingTooLong { pad_len, length }
            })?;
            Ok(Frame::Data(DataFrame {
                stream_id: sid,
                payload,
                end_stream: f & flags::END_STREAM != 0,
                flow_controlled_len: len,
            }))
        }
        kind::HEADERS => {
            if sid.is_zero() {
                return Err(FrameError::HeadersOnStreamZero);
            }
            let has_prio = f & flags::PRIORITY != 0;
            let fixed = if has_prio { 5 } else { 0 };
            let mut block =
                strip_padding(&header, payload, "HEADERS", fixed, |pad_len, length| {
                    FrameError::HeadersPaddingTooLong { pad_len, length }
                })?;
            let priority = if has_prio {
                let spec = priority_spec(&block[..5]);
                block.advance(5);
                Some(spec)
            } else {
                None
            };
            let frame = HeadersFrame {
                stream_id: sid,
                header_block: block,
                end_stream: f & flags::END_STREAM != 0,
                end_headers: f & flags::END_HEADERS != 0,
                priority,
            };
            if priority.is_some_and(|p| p.dependency == sid) {
                // §5.3.1: "A stream cannot depend on itself. An endpoint MUST treat this as
                // a stream error of type PROTOCOL_ERROR."
                return Err(FrameError::HeadersSelfDependency {
                    stream_id: sid,
                    headers: Box::new(frame),
                });
            }
            Ok(Frame::Headers(frame))
        }
        kind::PRIORITY => {
            if sid.is_zero() {
                return Err(FrameError::PriorityOnStreamZero);
            }
            if len != 5 {
                return Err(FrameError::PriorityBadLength {
                    stream_id: sid,
                    length: len,
                });
            }
            let priority = priority_spec(&payload);
            if priority.dependency == sid {
                return Err(FrameError::PrioritySelfDependency { stream_id: sid });
            }
            Ok(Frame::Priority(PriorityFrame {
                stream_id: sid,
                priority,
            }))
        }
        kind::RST_STREAM => {
            if sid.is_zero() {
                return Err(FrameError::RstStreamOnStreamZero);
            }
            if len != 4 {
                return Err(FrameError::RstStreamBadLength { length: len });
            }
            Ok(Frame::RstStream(RstStreamFrame {
                stream_id: sid,
                error_code: ErrorCode(be_u32(&payload)),
            }))
        }
        kind::SETTINGS => {
            if !sid.is_zero() {
                return Err(FrameError::SettingsOnStream { stream_id: sid });
            }
            let ack = f & flags::ACK != 0;
            if ack && len != 0 {
                return Err(FrameError::SettingsAckWithPayload { length: len });
            }
            // `is_multiple_of` needs Rust 1.87; the workspace MSRV is 1.80.
            #[allow(clippy::manual_is_multiple_of)]
            let not_multiple = len % 6 != 0;
            if not_multiple {
                return Err(FrameError::SettingsBadLength { length: len });
            }
            let mut settings = Vec::new();
            for s in payload.chunks_exact(6) {
                let id = u16::from_be_bytes([s[0], s[1]]);
                let value = be_u32(&s[2..]);
                settings.push(decode_setting(id, value)?);
            }
            Ok(Frame::Settings(SettingsFrame { ack, settings }))
        }
        kind::PUSH_PROMISE => {
            if sid.is_zero() {
                return Err(FrameError::PushPromiseOnStreamZero);
            }
            let mut block =
                strip_padding(&header, payload, "PUSH_PROMISE", 4, |pad_len, length| {
                    FrameError::PushPromisePaddingTooLong { pad_len, length }
                })?;
            let promised = StreamId::new(block.get_u32());
            if !promised.is_server_initiated() {
                return Err(FrameError::PushPromiseInvalidPromisedId { promised });
            }
            Ok(Frame::PushPromise(PushPromiseFrame {
                stream_id: sid,
                promised_stream_id: promised,
                header_block: block,
                end_headers: f & flags::END_HEADERS != 0,
            }))
        }
        kind::PING => {
            if !sid.is_zero() {
                return Err(FrameError::PingOnStream { stream_id: sid });
            }
            let data: [u8; 8] = payload[..]
                .try_into()
                .map_err(|_| FrameError::PingBadLength { length: len })?;
            Ok(Frame::Ping(PingFrame {
                ack: f & flags::ACK != 0,
                payload: data,
            }))
        }
        kind::GOAWAY => {
            if !sid.is_zero() {
                return Err(FrameError::GoAwayOnStream { stream_id: sid });
            }
            if len < 8 {
                return Err(FrameError::GoAwayTooShort { length: len });
            }
            let last_stream_id = StreamId::new(payload.get_u32());
            let error_code = ErrorCode(payload.get_u32());
            Ok(Frame::GoAway(GoAwayFrame {
                last_stream_id,
                error_code,
                debug_data: payload,
            }))
        }
        kind::WINDOW_UPDATE => {
            if len != 4 {
                return Err(FrameError::WindowUpdateBadLength { length: len });
            }
            // §6.9: the reserved bit of the increment is ignored.
            let increment = be_u32(&payload) & MAX_WINDOW_SIZE;
            if increment == 0 {
                return Err(FrameError::WindowUpdateZeroIncrement { stream_id: sid });
            }
            Ok(Frame::WindowUpdate(WindowUpdateFrame {
                stream_id: sid,
                increment,
            }))
        }
        kind::CONTINUATION => {
            if sid.is_zero() {
                return Err(FrameError::ContinuationOnStreamZero);
            }
            Ok(Frame::Continuation(ContinuationFrame {
                stream_id: sid,
                header_block: payload,
                end_headers: f & flags::END_HEADERS != 0,
            }))
        }
        // Unknown types are handled by the caller before the payload is split off.
        _ => Ok(Frame::Unknown(UnknownFrame { header })),
    }
}

/// Range-checks one SETTINGS parameter (§6.5.2).
fn decode_setting(id: u16, value: u32) -> Result<Setting, FrameError> {
    Ok(match id {
        0x1 => Setting::HeaderTableSize(value),
        0x2 => match value {
            0 => Setting::EnablePush(false),
            1 => Setting::EnablePush(true),
            _ => return Err(FrameError::SettingsInvalidEnablePush { value }),
        },
        0x3 => Setting::MaxConcurrentStreams(value),
        0x4 => {
            if value > MAX_WINDOW_SIZE {
                return Err(FrameError::SettingsInitialWindowSizeTooLarge { value });
            }
            Setting::InitialWindowSize(value)
        }
        0x5 => {
            if !(MIN_MAX_FRAME_SIZE..=MAX_MAX_FRAME_SIZE).contains(&value) {
                return Err(FrameError::SettingsInvalidMaxFrameSize { value });
            }
            Setting::MaxFrameSize(value)
        }
        0x6 => Setting::MaxHeaderListSize(value),
        _ => Setting::Unknown { id, value },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peek_header_reads_fields_and_clears_reserved_bit() {
        let b = [0x01, 0x02, 0x03, 0x08, 0x21, 0xff, 0xff, 0xff, 0xff, 0xee];
        let h = FrameDecoder::peek_header(&b).unwrap();
        assert_eq!(h.length, 0x01_02_03);
        assert_eq!(h.kind, kind::WINDOW_UPDATE);
        assert_eq!(h.flags, 0x21);
        assert_eq!(h.stream_id, StreamId::MAX);
        assert_eq!(FrameDecoder::peek_header(&b[..8]), None);
    }

    #[test]
    fn limit_is_clamped_to_the_rfc_range() {
        assert_eq!(FrameDecoder::new(0).max_frame_size(), MIN_MAX_FRAME_SIZE);
        assert_eq!(
            FrameDecoder::new(u32::MAX).max_frame_size(),
            MAX_MAX_FRAME_SIZE
        );
        let mut d = FrameDecoder::default();
        d.set_max_frame_size(1 << 20);
        assert_eq!(d.max_frame_size(), 1 << 20);
    }

    #[test]
    fn raised_limit_accepts_large_frames() {
        let mut b = BytesMut::new();
        b.extend_from_slice(&[0x10, 0x00, 0x00, kind::DATA, 0, 0, 0, 0, 1]);
        b.extend_from_slice(&vec![0u8; 1 << 20]);
        let mut d = FrameDecoder::new(1 << 20);
        match d.decode(&mut b) {
            Ok(Some(Frame::Data(f))) => assert_eq!(f.payload.len(), 1 << 20),
            other => panic!("{other:?}"),
        }
    }
}
