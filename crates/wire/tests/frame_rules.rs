//! Conformance tests: one test per single-frame rule of RFC 9113 §4–§6 that the decoder
//! enforces. Each quotes the MUST it checks and asserts the variant, the code and the scope.

use bytes::{BufMut, BytesMut};
use h2mux_wire::frame::{
    flags, kind, ErrorScope, Frame, FrameDecoder, FrameError, PrioritySpec, Setting, StreamId,
};
use h2mux_wire::ErrorCode;

/// Builds a raw frame: header with the given fields and `payload.len()` as length.
fn raw(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> BytesMut {
    let mut b = BytesMut::new();
    let len = payload.len() as u32;
    b.put_slice(&len.to_be_bytes()[1..]);
    b.put_u8(kind);
    b.put_u8(flags);
    b.put_u32(stream);
    b.put_slice(payload);
    b
}

fn decode(mut b: BytesMut) -> (Result<Option<Frame>, FrameError>, BytesMut) {
    let r = FrameDecoder::default().decode(&mut b);
    (r, b)
}

fn err(b: BytesMut) -> FrameError {
    match decode(b).0 {
        Err(e) => e,
        other => panic!("expected an error, got {other:?}"),
    }
}

fn ok(b: BytesMut) -> Frame {
    match decode(b) {
        (Ok(Some(f)), rest) => {
            assert!(rest.is_empty(), "frame not fully consumed");
            f
        }
        other => panic!("expected a frame, got {other:?}"),
    }
}

fn conn(e: &FrameError, code: ErrorCode) {
    assert_eq!(e.code(), code, "{e}");
    assert_eq!(e.scope(), ErrorScope::Connection, "{e}");
    assert!(
        e.to_string().contains("RFC 9113 §"),
        "Display must name the rule: {e}"
    );
}

fn stream(e: &FrameError, code: ErrorCode, id: u32) {
    assert_eq!(e.code(), code, "{e}");
    assert_eq!(e.scope(), ErrorScope::Stream(StreamId::new(id)), "{e}");
    assert!(
        e.to_string().contains("RFC 9113 §"),
        "Display must name the rule: {e}"
    );
}

// ---- §4.1 / §4.2 frame format and size ------------------------------------------------------

/// §4.2: "An endpoint MUST send an error code of FRAME_SIZE_ERROR if a frame exceeds the size
/// defined in SETTINGS_MAX_FRAME_SIZE". Checked from the 9 header bytes alone.
#[test]
fn frame_over_max_size_is_rejected_from_the_header_alone() {
    let mut b = BytesMut::new();
    b.put_slice(&[0x00, 0x40, 0x01, kind::DATA, 0, 0, 0, 0, 1]); // 16385 bytes declared
    let cap = b.capacity();
    let e = FrameDecoder::default().decode(&mut b).unwrap_err();
    assert_eq!(
        e,
        FrameError::FrameTooLarge {
            length: 16_385,
            max: 16_384
        }
    );
    conn(&e, ErrorCode::FRAME_SIZE_ERROR);
    assert_eq!(
        b.capacity(),
        cap,
        "no memory reserved for the declared payload"
    );
    // The maximum itself is fine.
    let f = ok(raw(kind::DATA, 0, 1, &vec![7u8; 16_384]));
    assert!(matches!(f, Frame::Data(d) if d.payload.len() == 16_384));
}

#[test]
fn partial_buffers_consume_nothing() {
    let full = raw(kind::PING, 0, 0, &[1, 2, 3, 4, 5, 6, 7, 8]);
    for n in 0..full.len() {
        let mut b = BytesMut::from(&full[..n]);
        assert_eq!(FrameDecoder::default().decode(&mut b), Ok(None));
        assert_eq!(&b[..], &full[..n]);
    }
}

/// §4.1: the reserved bit "MUST be ignored when receiving".
#[test]
fn reserved_stream_bit_is_ignored() {
    let f = ok(raw(kind::RST_STREAM, 0, 0x8000_0003, &[0, 0, 0, 8]));
    assert!(
        matches!(f, Frame::RstStream(r) if r.stream_id == StreamId::new(3)
        && r.error_code == ErrorCode::CANCEL)
    );
}

/// §4.1: "Unused flags MUST be ignored on receipt".
#[test]
fn unknown_flags_are_ignored() {
    let f = ok(raw(kind::DATA, !flags::PADDED, 1, b"hi"));
    assert!(matches!(f, Frame::Data(d) if d.end_stream && &d.payload[..] == b"hi"));
    let f = ok(raw(kind::PING, 0xfe, 0, &[0; 8]));
    assert!(matches!(f, Frame::Ping(p) if !p.ack));
}

/// §4.1: "Implementations MUST ignore and discard frames of unknown types."
#[test]
fn unknown_frame_type_is_skipped() {
    let mut b = raw(0xfa, 0x3, 7, b"whatever");
    b.extend_from_slice(&raw(kind::PING, flags::ACK, 0, &[9; 8]));
    let mut d = FrameDecoder::default();
    match d.decode(&mut b) {
        Ok(Some(Frame::Unknown(u))) => {
            assert_eq!(u.header.kind, 0xfa);
            assert_eq!(u.header.length, 8);
            assert_eq!(u.header.stream_id, StreamId::new(7));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(d.decode(&mut b), Ok(Some(Frame::Ping(p))) if p.ack && p.payload == [9; 8]));
    assert!(b.is_empty());
}

// ---- stream 0 rules ----------------------------------------------------------------------

/// §6.1: "If a DATA frame is received whose Stream Identifier field is 0x00, the recipient
/// MUST respond with a connection error of type PROTOCOL_ERROR."
#[test]
fn data_on_stream_zero() {
    let e = err(raw(kind::DATA, 0, 0, b"x"));
    assert_eq!(e, FrameError::DataOnStreamZero);
    conn(&e, ErrorCode::PROTOCOL_ERROR);
}

/// §6.2: HEADERS on stream 0: "the recipient MUST respond with a connection error of type
/// PROTOCOL_ERROR."
#[test]
fn headers_on_stream_zero() {
    let e = err(raw(kind::HEADERS, flags::END_HEADERS, 0, b"x"));
    assert_eq!(e, FrameError::HeadersOnStreamZero);
    conn(&e, ErrorCode::PROTOCOL_ERROR);
}

/// §6.3: PRIORITY on stream 0: "the recipient MUST respond with a connection error of type
/// PROTOCOL_ERROR."
#[test]
fn priority_on_stream_zero() {
    let e = err(raw(kind::PRIORITY, 0, 0, &[0, 0, 0, 1, 16]));
    assert_eq!(e, FrameError::PriorityOnStreamZero);
    conn(&e, ErrorCode::PROTOCOL_ERROR);
}

/// §6.4: RST_STREAM on stream 0: "the recipient MUST treat this as a connection error of type
/// PROTOCOL_ERROR."
#[test]
fn rst_stream_on_stream_zero() {
    let e = err(raw(kind::RST_STREAM, 0, 0, &[0, 0, 0, 8]));
    assert_eq!(e, FrameError::RstStreamOnStreamZero);
    conn(&e, ErrorCode::PROTOCOL_ERROR);
}

/// §6.6: PUSH_PROMISE with stream 0: "the recipient MUST respond with a connection error of
/// type PROTOCOL_ERROR."
#[test]
fn push_promise_on_stream_zero() {
    let e = err(raw(kind::PUSH_PROMISE, 0, 0, &[0, 0, 0, 2]));
    assert_eq!(e, FrameError::PushPromiseOnStreamZero);
    conn(&e, ErrorCode::PROTOCOL_ERROR);
}

/// §6.10: CONTINUATION on stream 0: "the recipient MUST respond with a connection error of
/// type PROTOCOL_ERROR."
#[test]
fn continuation_on_stream_zero() {
    let e = err(raw(kind::CONTINUATION, flags::END_HEADERS, 0, b"x"));
    assert_eq!(e, FrameError::ContinuationOnStreamZero);
    conn(&e, ErrorCode::PROTOCOL_ERROR);
}

/// §6.5: "If an endpoint receives a SETTINGS frame whose Stream Identifier field is anything
/// other than 0x00, the endpoint MUST respond with a connection error of type PROTOCOL_ERROR."
#[test]
fn settings_on_a_stream() {
    let e = err(raw(kind::SETTINGS, 0, 1, &[]));
    assert_eq!(
        e,
        FrameError::SettingsOnStream {
            stream_id: StreamId::new(1)
        }
    );
    conn(&e, ErrorCode::PROTOCOL_ERROR);
}

/// §6.7: PING with a non-zero stream: "the recipient MUST respond with a connection error of
/// type PROTOCOL_ERROR."
#[test]
fn ping_on_a_stream() {
    let e = err(raw(kind::PING, 0, 3, &[0; 8]));
    assert_eq!(
        e,
        FrameError::PingOnStream {
            stream_id: StreamId::new(3)
        }
    );
    conn(&e, ErrorCode::PROTOCOL_ERROR);
}

/// §6.8: "An endpoint MUST treat a GOAWAY frame with a stream identifier other than 0x00 as a
/// connection error of type PROTOCOL_ERROR."
#[test]
fn goaway_on_a_stream() {
    let e = err(raw(kind::GOAWAY, 0, 5, &[0; 8]));
    assert_eq!(
        e,
        FrameError::GoAwayOnStream {
            stream_id: StreamId::new(5)
        }
    );
    conn(&e, ErrorCode::PROTOCOL_ERROR);
}

/// §6.6 / §5.1.1: the promised stream "MUST be a valid choice for the next stream sent by the
/// sender"; 0 and odd (client) identifiers never are.
#[test]
fn push_promise_promising_an_invalid_stream() {
    for promised in [0u32, 3] {
        let e = err(raw(
            kind::PUSH_PROMISE,
            flags::END_HEADERS,
            1,
            &promised.to_be_bytes(),
        ));
        assert_eq!(
            e,
            FrameError::PushPromiseInvalidPromisedId {
                promised: StreamId::new(promised)
            }
        );
        conn(&e, ErrorCode::PROTOCOL_ERROR);
    }
}

// ---- padding ------------------------------------------------------------------------------

#[test]
fn padded_data_is_stripped_and_flow_control_counts_everything() {
    let f = ok(raw(
        kind::DATA,
        flags::PADDED | flags::END_STREAM,
        1,
        &[2, b'a', b'b', 0, 0],
    ));
    match f {
        Frame::Data(d) => {
            assert_eq!(&d.payload[..], b"ab");
            assert!(d.end_stream);
            assert_eq!(d.flow_controlled_len, 5);
        }
        other => panic!("{other:?}"),
    }
}

/// §6.1: "If the length of the padding is the length of the frame payload or greater, the
/// recipient MUST treat this as a connection error of type PROTOCOL_ERROR."
#[test]
fn data_padding_too_long() {
    let e = err(raw(kind::DATA, flags::PADDED, 1, &[3, 0, 0]));
    assert_eq!(
        e,
        FrameError::DataPaddingTooLong {
            pad_len: 3,
            length: 3
        }
    );
    conn(&e, ErrorCode::PROTOCOL_ERROR);
    // Padding filling everything after the Pad Length octet is allowed.
    assert!(matches!(ok(raw(kind::DATA, flags::PADDED, 1, &[2, 0, 0])),
        Frame::Data(d) if d.payload.is_empty()));
}

/// §4.2: FRAME_SIZE_ERROR for a frame "too small to contain mandatory frame data": a PADDED
/// DATA frame without its Pad Length octet.
#[test]
fn padded_data_without_pad_length() {
    let e = err(raw(kind::DATA, flags::PADDED, 1, &[]));
    assert_eq!(
        e,
        FrameError::PayloadTooShort {
            frame: "DATA",
            length: 0,
            needed: 1
        }
    );
    conn(&e, ErrorCode::FRAME_SIZE_ERROR);
}

/// §6.2: "Padding that exceeds the size remaining for the header block fragment MUST be
/// treated as a PROTOCOL_ERROR."
#[test]
fn headers_padding_too_long() {
    // PRIORITY + PADDED: 1 + 5 mandatory bytes, 1 byte of block, padding 2 > 1.
    let e = err(raw(
        kind::HEADERS,
        flags::PADDED | flags::PRIORITY,
        1,
        &[2, 0, 0, 0, 0, 15, 0xaa],
    ));
    assert_eq!(
        e,
        FrameError::HeadersPaddingTooLong {
            pad_len: 2,
            length: 7
        }
    );
    conn(&e, ErrorCode::PROTOCOL_ERROR);
}

/// §4.2: HEADERS with the PRIORITY flag too short for the 5 priority octets.
#[test]
fn headers_too_short_for_priority() {
    let e = err(raw(kind::HEADERS, flags::PRIORITY, 1, &[0, 0, 0]));
    assert_eq!(
        e,
        FrameError::PayloadTooShort {
            frame: "HEADERS",
            length: 3,
            needed: 5
        }
    );
    conn(&e, ErrorCode::FRAME_SIZE_ERROR);
}

#[test]
fn headers_with_padding_and_priority_decode() {
    let f = ok(raw(
        kind::HEADERS,
        flags::PADDED | flags::PRIORITY | flags::END_HEADERS | flags::END_STREAM,
        5,
        &[1, 0x80, 0, 0, 3, 200, 0x82, 0],
    ));
    match f {
        Frame::Headers(h) => {
            assert_eq!(&h.header_block[..], &[0x82]);
            assert!(h.end_headers && h.end_stream);
            assert_eq!(
                h.priority,
                Some(PrioritySpec {
                    dependency: StreamId::new(3),
                    exclusive: true,
                    weight: 200
                })
            );
        }
        other => panic!("{other:?}"),
    }
}

/// §6.6: "Padding that exceeds the size remaining for the header block fragment MUST be
/// treated as a PROTOCOL_ERROR" (PUSH_PROMISE uses the same padding as HEADERS).
#[test]
fn push_promise_padding_too_long() {
    let e = err(raw(kind::PUSH_PROMISE, flags::PADDED, 1, &[1, 0, 0, 0, 2]));
    assert_eq!(
        e,
        FrameError::PushPromisePaddingTooLong {
            pad_len: 1,
            length: 5
        }
    );
    conn(&e, ErrorCode::PROTOCOL_ERROR);
}

/// §4.2: PUSH_PROMISE too short for its Promised Stream ID.
#[test]
fn push_promise_too_short_for_promised_id() {
    let e = err(raw(kind::PUSH_PROMISE, flags::PADDED, 1, &[0, 0, 0]));
    assert_eq!(
        e,
        FrameError::PayloadTooShort {
            frame: "PUSH_PROMISE",
            length: 3,
            needed: 5
        }
    );
    conn(&e, ErrorCode::FRAME_SIZE_ERROR);
}

// ---- PRIORITY -------------------------------------------------------------------------------

/// §6.3: "A PRIORITY frame with a length other than 5 octets MUST be treated as a stream error
/// of type FRAME_SIZE_ERROR." The frame is consumed and the next one decodes.
#[test]
fn priority_bad_length_is_a_stream_error() {
    let mut b = raw(kind::PRIORITY, 0, 3, &[0, 0, 0, 1]);
    b.extend_from_slice(&raw(kind::PING, 0, 0, &[0; 8]));
    let mut d = FrameDecoder::default();
    let e = d.decode(&mut b).unwrap_err();
    assert_eq!(
        e,
        FrameError::PriorityBadLength {
            stream_id: StreamId::new(3),
            length: 4
        }
    );
    stream(&e, ErrorCode::FRAME_SIZE_ERROR, 3);
    assert!(matches!(d.decode(&mut b), Ok(Some(Frame::Ping(_)))));
}

/// §5.3.1: "A stream cannot depend on itself. An endpoint MUST treat this as a stream error of
/// type PROTOCOL_ERROR."
#[test]
fn priority_self_dependency_is_a_stream_error() {
    let (r, rest) = decode(raw(kind::PRIORITY, 0, 3, &[0x80, 0, 0, 3, 1]));
    let e = r.unwrap_err();
    assert_eq!(
        e,
        FrameError::PrioritySelfDependency {
            stream_id: StreamId::new(3)
        }
    );
    stream(&e, ErrorCode::PROTOCOL_ERROR, 3);
    assert!(rest.is_empty(), "frame consumed");
}

/// §5.3.1 for HEADERS: the error carries the header block so HPACK state stays in sync (§4.3).
#[test]
fn headers_self_dependency_is_a_stream_error_that_keeps_the_block() {
    let (r, rest) = decode(raw(
        kind::HEADERS,
        flags::PRIORITY | flags::END_HEADERS,
        3,
        &[0, 0, 0, 3, 1, 0x82],
    ));
    let e = r.unwrap_err();
    stream(&e, ErrorCode::PROTOCOL_ERROR, 3);
    match e {
        FrameError::HeadersSelfDependency { stream_id, headers } => {
            assert_eq!(stream_id, StreamId::new(3));
            assert_eq!(&headers.header_block[..], &[0x82]);
        }
        other => panic!("{other:?}"),
    }
    assert!(rest.is_empty());
}

// ---- fixed-size control frames ----------------------------------------------------------------

/// §6.4: "A RST_STREAM frame with a length other than 4 octets MUST be treated as a connection
/// error of type FRAME_SIZE_ERROR."
#[test]
fn rst_stream_bad_length() {
    let e = err(raw(kind::RST_STREAM, 0, 1, &[0, 0, 0, 0, 0]));
    assert_eq!(e, FrameError::RstStreamBadLength { length: 5 });
    conn(&e, ErrorCode::FRAME_SIZE_ERROR);
}

/// §6.5: "Receipt of a SETTINGS frame with the ACK flag set and a length field value other than
/// 0 MUST be treated as a connection error of type FRAME_SIZE_ERROR."
#[test]
fn settings_ack_with_payload() {
    let e = err(raw(kind::SETTINGS, flags::ACK, 0, &[0, 1, 0, 0, 0, 0]));
    assert_eq!(e, FrameError::SettingsAckWithPayload { length: 6 });
    conn(&e, ErrorCode::FRAME_SIZE_ERROR);
}

/// §6.5: "A SETTINGS frame with a length other than a multiple of 6 octets MUST be treated as
/// a connection error of type FRAME_SIZE_ERROR."
#[test]
fn settings_length_not_multiple_of_six() {
    let e = err(raw(kind::SETTINGS, 0, 0, &[0, 1, 0, 0, 0]));
    assert_eq!(e, FrameError::SettingsBadLength { length: 5 });
    conn(&e, ErrorCode::FRAME_SIZE_ERROR);
}

fn setting(id: u16, value: u32) -> BytesMut {
    let mut p = Vec::new();
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&value.to_be_bytes());
    raw(kind::SETTINGS, 0, 0, &p)
}

/// §6.5.2: "Any value other than 0 or 1 MUST be treated as a connection error of type
/// PROTOCOL_ERROR" (SETTINGS_ENABLE_PUSH).
#[test]
fn settings_enable_push_invalid() {
    let e = err(setting(0x2, 2));
    assert_eq!(e, FrameError::SettingsInvalidEnablePush { value: 2 });
    conn(&e, ErrorCode::PROTOCOL_ERROR);
}

/// §6.5.2: "Values above the maximum flow-control window size of 2^31-1 MUST be treated as a
/// connection error of type FLOW_CONTROL_ERROR."
#[test]
fn settings_initial_window_too_large() {
    let e = err(setting(0x4, 1 << 31));
    assert_eq!(
        e,
        FrameError::SettingsInitialWindowSizeTooLarge { value: 1 << 31 }
    );
    conn(&e, ErrorCode::FLOW_CONTROL_ERROR);
    assert!(matches!(ok(setting(0x4, (1 << 31) - 1)),
        Frame::Settings(s) if s.settings == [Setting::InitialWindowSize((1 << 31) - 1)]));
}

/// §6.5.2: "Values outside this range MUST be treated as a connection error of type
/// PROTOCOL_ERROR" (SETTINGS_MAX_FRAME_SIZE, 2^14..=2^24-1).
#[test]
fn settings_max_frame_size_out_of_range() {
    for v in [16_383u32, 1 << 24] {
        let e = err(setting(0x5, v));
        assert_eq!(e, FrameError::SettingsInvalidMaxFrameSize { value: v });
        conn(&e, ErrorCode::PROTOCOL_ERROR);
    }
    for v in [16_384u32, (1 << 24) - 1] {
        assert!(matches!(ok(setting(0x5, v)),
            Frame::Settings(s) if s.settings == [Setting::MaxFrameSize(v)]));
    }
}

/// §6.5.2: "An endpoint that receives a SETTINGS frame with any unknown or unsupported
/// identifier MUST ignore that setting" — kept as `Setting::Unknown`, in order.
#[test]
fn settings_unknown_are_kept_in_order() {
    let mut p = Vec::new();
    for (id, v) in [
        (0x1u16, 4096u32),
        (0x99, 7),
        (0x3, 100),
        (0x2, 0),
        (0x6, 8192),
    ] {
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&v.to_be_bytes());
    }
    match ok(raw(kind::SETTINGS, 0, 0, &p)) {
        Frame::Settings(s) => {
            assert!(!s.ack);
            assert_eq!(
                s.settings,
                [
                    Setting::HeaderTableSize(4096),
                    Setting::Unknown { id: 0x99, value: 7 },
                    Setting::MaxConcurrentStreams(100),
                    Setting::EnablePush(false),
                    Setting::MaxHeaderListSize(8192),
                ]
            );
        }
        other => panic!("{other:?}"),
    }
}

/// §6.7: "Receipt of a PING frame with a length field value other than 8 MUST be treated as a
/// connection error of type FRAME_SIZE_ERROR."
#[test]
fn ping_bad_length() {
    let e = err(raw(kind::PING, 0, 0, &[0; 7]));
    assert_eq!(e, FrameError::PingBadLength { length: 7 });
    conn(&e, ErrorCode::FRAME_SIZE_ERROR);
}

/// §4.2 / §6.8: GOAWAY shorter than its 8 mandatory octets is a FRAME_SIZE_ERROR.
#[test]
fn goaway_too_short() {
    let e = err(raw(kind::GOAWAY, 0, 0, &[0; 7]));
    assert_eq!(e, FrameError::GoAwayTooShort { length: 7 });
    conn(&e, ErrorCode::FRAME_SIZE_ERROR);
    match ok(raw(
        kind::GOAWAY,
        0,
        0,
        &[0x80, 0, 0, 9, 0, 0, 0, 0xb, b'b', b'y', b'e'],
    )) {
        Frame::GoAway(g) => {
            assert_eq!(g.last_stream_id, StreamId::new(9));
            assert_eq!(g.error_code, ErrorCode::ENHANCE_YOUR_CALM);
            assert_eq!(&g.debug_data[..], b"bye");
        }
        other => panic!("{other:?}"),
    }
}

/// §6.9: "A WINDOW_UPDATE frame with a length other than 4 octets MUST be treated as a
/// connection error of type FRAME_SIZE_ERROR."
#[test]
fn window_update_bad_length() {
    let e = err(raw(kind::WINDOW_UPDATE, 0, 1, &[0, 0, 0, 0, 1]));
    assert_eq!(e, FrameError::WindowUpdateBadLength { length: 5 });
    conn(&e, ErrorCode::FRAME_SIZE_ERROR);
}

/// §6.9: "A receiver MUST treat the receipt of a WINDOW_UPDATE frame with a flow-control window
/// increment of 0 as a stream error of type PROTOCOL_ERROR; errors on the connection
/// flow-control window MUST be treated as a connection error".
#[test]
fn window_update_zero_increment_on_stream_and_connection() {
    let (r, rest) = decode(raw(kind::WINDOW_UPDATE, 0, 7, &[0x80, 0, 0, 0]));
    let e = r.unwrap_err();
    assert_eq!(
        e,
        FrameError::WindowUpdateZeroIncrement {
            stream_id: StreamId::new(7)
        }
    );
    stream(&e, ErrorCode::PROTOCOL_ERROR, 7);
    assert!(rest.is_empty(), "frame consumed");

    let e = err(raw(kind::WINDOW_UPDATE, 0, 0, &[0, 0, 0, 0]));
    assert_eq!(
        e,
        FrameError::WindowUpdateZeroIncrement {
            stream_id: StreamId::ZERO
        }
    );
    conn(&e, ErrorCode::PROTOCOL_ERROR);
}

/// §6.9.1: the reserved bit of the increment is ignored.
#[test]
fn window_update_reserved_bit_ignored() {
    assert!(
        matches!(ok(raw(kind::WINDOW_UPDATE, 0, 0, &[0x80, 0, 0, 5])),
        Frame::WindowUpdate(w) if w.increment == 5 && w.stream_id.is_zero())
    );
}

#[test]
fn frame_stream_id_accessor() {
    assert_eq!(
        ok(raw(kind::DATA, 0, 9, b"x")).stream_id(),
        StreamId::new(9)
    );
    assert_eq!(
        ok(raw(kind::PING, 0, 0, &[0; 8])).stream_id(),
        StreamId::ZERO
    );
    assert_eq!(
        ok(raw(0xee, 0, 0x8000_0004, b"")).stream_id(),
        StreamId::new(4)
    );
}
