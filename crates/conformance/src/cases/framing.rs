//! RFC 9113 §3.4 (preface), §4 (frame format, size, field blocks) and §6 (frame definitions).

use h2mux_wire::ErrorCode;

use super::{
    case, expect_alive, expect_connection_error, expect_response, expect_stream_error, Case,
    Outcome, Setup,
};
use crate::conn::{flag, frame, kind, setting, settings_payload, Conn, Observed, PREFACE};

const MAX_WINDOW: u32 = (1 << 31) - 1;

/// §3.4 and §4.
pub fn preface_and_framing() -> Vec<Case> {
    vec![
        Case {
            id: "3.4/invalid-preface",
            rfc: "RFC 9113 §3.4",
            must: "Clients and servers MUST treat an invalid connection preface as a connection error of type PROTOCOL_ERROR.",
            setup: Setup::Raw,
            run: |c| {
                c.send_bytes(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n");
                c.send(kind::SETTINGS, 0, 0, &[]);
                expect_connection_error(c, ErrorCode::PROTOCOL_ERROR)
            },
        },
        Case {
            id: "3.4/preface-not-followed-by-settings",
            rfc: "RFC 9113 §3.4",
            must: "The client connection preface (the string, then a SETTINGS frame) MUST be sent; clients and servers MUST treat an invalid connection preface as a connection error of type PROTOCOL_ERROR.",
            setup: Setup::Raw,
            run: |c| {
                let mut bytes = PREFACE.to_vec();
                bytes.extend(frame(kind::PING, 0, 0, b"notfirst"));
                c.send_bytes(&bytes);
                expect_connection_error(c, ErrorCode::PROTOCOL_ERROR)
            },
        },
        Case {
            id: "3.4/server-preface-is-settings",
            rfc: "RFC 9113 §3.4",
            must: "The server connection preface consists of a potentially empty SETTINGS frame that MUST be the first frame the server sends in the HTTP/2 connection.",
            setup: Setup::Raw,
            run: |c| {
                let mut bytes = PREFACE.to_vec();
                bytes.extend(frame(kind::SETTINGS, 0, 0, &[]));
                c.send_bytes(&bytes);
                match c.read_frame() {
                    Observed::Frame(f) if f.kind == kind::SETTINGS && f.flags & flag::ACK == 0 => Outcome::Pass,
                    Observed::Frame(f) => Outcome::Fail(format!("first frame was {}", f.describe())),
                    Observed::Closed => Outcome::Fail("connection closed before any frame".into()),
                    Observed::Timeout => Outcome::Fail("no frame arrived".into()),
                }
            },
        },
        case(
            "4.1/unknown-type-ignored",
            "RFC 9113 §4.1",
            "Implementations MUST ignore and discard frames of unknown types.",
            |c| {
                c.send(0x16, 0, 0, b"extension");
                c.send(0x20, 0xff, 1, b"on an idle stream");
                expect_alive(c)
            },
        ),
        case("4.1/unknown-flags-ignored", "RFC 9113 §4.1", "Unused flags MUST be ignored on receipt and MUST be left unset (0x00) when sending.", |c| {
            let payload = *b"flags!!!";
            c.send(kind::PING, 0xfe, 0, &payload);
            expect_ping_ack(c, payload)
        }),
        case(
            "4.1/reserved-bit-ignored",
            "RFC 9113 §4.1",
            "The semantics of this bit are undefined, and the bit MUST remain unset (0x00) when sending and MUST be ignored when receiving.",
            |c| {
                let payload = *b"reserved";
                c.send(kind::PING, 0, 0x8000_0000, &payload);
                expect_ping_ack(c, payload)
            },
        ),
        case(
            "4.2/data-exceeds-max-frame-size",
            "RFC 9113 §4.2",
            "An endpoint MUST send an error code of FRAME_SIZE_ERROR if a frame exceeds the size defined in SETTINGS_MAX_FRAME_SIZE.",
            |c| {
                c.open_stream(1, false);
                let too_big = vec![0u8; c.peer.max_frame_size as usize + 1];
                c.send(kind::DATA, 0, 1, &too_big);
                expect_stream_error(c, 1, &[ErrorCode::FRAME_SIZE_ERROR])
            },
        ),
        case(
            "4.2/headers-exceeds-max-frame-size",
            "RFC 9113 §4.2",
            "A frame size error in a frame that could alter the state of the entire connection MUST be treated as a connection error; this includes any frame carrying a field block.",
            |c| {
                let filler = "a".repeat(c.peer.max_frame_size as usize);
                let block = c.request_block("GET", &[("x-filler", &filler)]);
                c.send(kind::HEADERS, flag::END_HEADERS | flag::END_STREAM, 1, &block);
                expect_connection_error(c, ErrorCode::FRAME_SIZE_ERROR)
            },
        ),
        case(
            "4.3/undecodable-field-block",
            "RFC 9113 §4.3",
            "A decoding error in a field block MUST be treated as a connection error of type COMPRESSION_ERROR.",
            |c| {
                // A literal whose name claims 10 octets but the block ends after 2.
                c.send(kind::HEADERS, flag::END_HEADERS | flag::END_STREAM, 1, &[0x00, 0x0a, b'a', b'b']);
                expect_connection_error(c, ErrorCode::COMPRESSION_ERROR)
            },
        ),
        case(
            "4.3/field-block-interleaved-by-data",
            "RFC 9113 §4.3",
            "Field blocks MUST be transmitted as a contiguous sequence of frames, with no interleaved frames of any other type or from any other stream.",
            |c| {
                let block = c.request_block("POST", &[]);
                c.send(kind::HEADERS, 0, 1, &block);
                c.send(kind::DATA, 0, 1, b"x");
                expect_connection_error(c, ErrorCode::PROTOCOL_ERROR)
            },
        ),
        case(
            "4.3/field-block-interleaved-by-other-stream",
            "RFC 9113 §4.3",
            "Field blocks MUST be transmitted as a contiguous sequence of frames, with no interleaved frames of any other type or from any other stream.",
            |c| {
                let block = c.request_block("GET", &[]);
                c.send(kind::HEADERS, flag::END_STREAM, 1, &block);
                c.send(kind::HEADERS, flag::END_STREAM | flag::END_HEADERS, 3, &block);
                expect_connection_error(c, ErrorCode::PROTOCOL_ERROR)
            },
        ),
        case(
            "5.5/extension-frame-inside-field-block",
            "RFC 9113 §5.5",
            "Extension frames that appear in the middle of a field block are not permitted; these MUST be treated as a connection error of type PROTOCOL_ERROR.",
            |c| {
                let block = c.request_block("GET", &[]);
                c.send(kind::HEADERS, flag::END_STREAM, 1, &block);
                c.send(0x16, 0, 1, b"extension");
                expect_connection_error(c, ErrorCode::PROTOCOL_ERROR)
            },
        ),
        case(
            "4.2/goaway-too-short",
            "RFC 9113 §4.2",
            "An endpoint MUST send an error code of FRAME_SIZE_ERROR if a frame ... is too small to contain mandatory frame data. A frame size error in a frame that could alter the state of the entire connection MUST be treated as a connection error; this includes ... any frame with a stream identifier of 0.",
            |c| {
                // GOAWAY needs 8 octets (last stream id and error code); 4 are sent.
                c.send(kind::GOAWAY, 0, 0, &[0, 0, 0, 0]);
                expect_connection_error(c, ErrorCode::FRAME_SIZE_ERROR)
            },
        ),
        case(
            "4.2/headers-with-priority-too-short",
            "RFC 9113 §4.2",
            "An endpoint MUST send an error code of FRAME_SIZE_ERROR if a frame ... is too small to contain mandatory frame data. A frame size error in a frame that could alter the state of the entire connection MUST be treated as a connection error; this includes any frame carrying a field block (HEADERS, PUSH_PROMISE, and CONTINUATION).",
            |c| {
                // The PRIORITY flag announces 5 octets of priority fields; 3 are sent.
                c.send(kind::HEADERS, flag::END_HEADERS | flag::END_STREAM | flag::PRIORITY, 1, &[0, 0, 0]);
                expect_connection_error(c, ErrorCode::FRAME_SIZE_ERROR)
            },
        ),
        case(
            "4.2/padded-data-without-pad-length",
            "RFC 9113 §4.2",
            "An endpoint MUST send an error code of FRAME_SIZE_ERROR if a frame ... is too small to contain mandatory frame data. (A PADDED DATA frame of length 0 has no room for its Pad Length field; a server that reads it as padding as long as the payload answers PROTOCOL_ERROR per §6.1, which is accepted too.)",
            |c| {
                c.open_stream(1, false);
                c.send(kind::DATA, flag::PADDED, 1, &[]);
                expect_stream_error(c, 1, &[ErrorCode::FRAME_SIZE_ERROR, ErrorCode::PROTOCOL_ERROR])
            },
        ),
        case(
            "4.3/field-block-after-reset-still-decoded",
            "RFC 9113 §4.3",
            "A receiver MUST terminate the connection with a connection error of type COMPRESSION_ERROR if it does not decompress a field block. (Header compression is stateful: a field block the receiver ignores — on a stream it has reset, whose later frames it MUST ignore, §5.1 — still changes the dynamic table, and a later request that refers to the entry it added must be understood.)",
            |c| {
                // A malformed request the server resets (uppercase field name), left open.
                let block = c.request_block("POST", &[("X-Upper", "1")]);
                c.send(kind::HEADERS, flag::END_HEADERS, 1, &block);
                let reset = expect_stream_error(c, 1, &[ErrorCode::PROTOCOL_ERROR]);
                if reset != Outcome::Pass {
                    return Outcome::NotApplicable(format!("the malformed request was not reset: {reset:?}"));
                }
                // Trailers on the reset stream that add "x-kept: 1" to the dynamic table.
                let mut trailers = Vec::new();
                crate::hpack_lite::literal_indexed(&mut trailers, b"x-kept", b"1");
                c.send(kind::HEADERS, flag::END_HEADERS | flag::END_STREAM, 1, &trailers);
                // A new request referring to that entry (index 62).
                let mut block = c.request_block("GET", &[]);
                block.push(0xbe);
                c.send(kind::HEADERS, flag::END_HEADERS | flag::END_STREAM, 3, &block);
                expect_response(c, 3)
            },
        ),
    ]
}

/// The peer must acknowledge the PING it was sent, echoing `payload`, and not answer anything else.
fn expect_ping_ack(c: &mut Conn, payload: [u8; 8]) -> Outcome {
    loop {
        match c.read_frame() {
            Observed::Frame(f) if f.kind == kind::PING => {
                return if f.flags & flag::ACK != 0 && f.payload == payload {
                    Outcome::Pass
                } else {
                    Outcome::Fail(format!(
                        "expected a PING ACK echoing the payload, got {}",
                        f.describe()
                    ))
                }
            }
            Observed::Frame(f) if f.kind == kind::GOAWAY => {
                return Outcome::Fail(format!("expected a PING ACK, got {}", f.describe()))
            }
            Observed::Frame(_) => {}
            Observed::Closed => {
                return Outcome::Fail("expected a PING ACK, the connection was closed".into())
            }
            Observed::Timeout => return Outcome::Fail("expected a PING ACK, nothing came".into()),
        }
    }
}

/// A path whose response is larger than the initial windows: `h2mux serve` streams
/// `/bytes/N`; against other servers the case may be not applicable (a small 404).
const LARGE_BODY_PATH: &str = "/bytes/262144";

/// Reads DATA on stream 1 until the server stops sending (a timeout): it must have sent
/// exactly `window` octets — no more (the rule), and no less unless the body ended
/// (then the case cannot tell: not applicable).
fn expect_data_within_window(c: &mut Conn, window: usize) -> Outcome {
    let mut received = 0usize;
    let quiet = std::time::Duration::from_millis(500).min(c.timeout);
    loop {
        let deadline = std::time::Instant::now() + quiet;
        match c.read_frame_until(deadline) {
            Observed::Frame(f) if f.kind == kind::DATA && f.stream == 1 => {
                received += f.payload.len();
                if received > window {
                    return Outcome::Fail(format!(
                        "received {received} octets of DATA with {window} octets of window"
                    ));
                }
                if f.flags & flag::END_STREAM != 0 {
                    return Outcome::NotApplicable(format!(
                        "the response body ended after {received} octets, within the window"
                    ));
                }
            }
            Observed::Frame(f)
                if f.kind == kind::HEADERS && f.stream == 1 && f.flags & flag::END_STREAM != 0 =>
            {
                return Outcome::NotApplicable("the response had no body".into())
            }
            Observed::Frame(f) if f.kind == kind::GOAWAY || f.kind == kind::RST_STREAM => {
                return Outcome::Fail(format!("unexpected {}", f.describe()))
            }
            Observed::Frame(_) => {}
            Observed::Closed => return Outcome::Fail("the connection was closed".into()),
            Observed::Timeout if received == window => return Outcome::Pass,
            Observed::Timeout => {
                return Outcome::Fail(format!(
                    "only {received} octets of DATA arrived with {window} octets of window"
                ))
            }
        }
    }
}

/// §6.1–§6.10.
pub fn frame_definitions() -> Vec<Case> {
    vec![
        case(
            "6.1/data-on-stream-0",
            "RFC 9113 §6.1",
            "If a DATA frame is received whose Stream Identifier field is 0x00, the recipient MUST respond with a connection error of type PROTOCOL_ERROR.",
            |c| {
                c.send(kind::DATA, 0, 0, b"x");
                expect_connection_error(c, ErrorCode::PROTOCOL_ERROR)
            },
        ),
        case(
            "6.1/data-padding-too-long",
            "RFC 9113 §6.1",
            "If the length of the padding is the length of the frame payload or greater, the recipient MUST treat this as a connection error of type PROTOCOL_ERROR.",
            |c| {
                c.open_stream(1, false);
                c.send(kind::DATA, flag::PADDED, 1, &[5, 0, 0, 0, 0]);
                expect_connection_error(c, ErrorCode::PROTOCOL_ERROR)
            },
        ),
        case(
            "6.2/headers-on-stream-0",
            "RFC 9113 §6.2",
            "If a HEADERS frame is received whose Stream Identifier field is 0x00, the recipient MUST respond with a connection error of type PROTOCOL_ERROR.",
            |c| {
                let block = c.request_block("GET", &[]);
                c.send(kind::HEADERS, flag::END_HEADERS | flag::END_STREAM, 0, &block);
                expect_connection_error(c, ErrorCode::PROTOCOL_ERROR)
            },
        ),
        case(
            "6.2/headers-padding-too-long",
            "RFC 9113 §6.2",
            "If the length of the padding is the length of the frame payload or greater, the recipient MUST treat this as a connection error of type PROTOCOL_ERROR.",
            |c| {
                let block = c.request_block("GET", &[]);
                let mut payload = vec![(block.len() + 1).min(255) as u8];
                payload.extend_from_slice(&block[..block.len().min(254)]);
                c.send(kind::HEADERS, flag::END_HEADERS | flag::END_STREAM | flag::PADDED, 1, &payload);
                expect_connection_error(c, ErrorCode::PROTOCOL_ERROR)
            },
        ),
        case(
            "6.2/continuation-on-other-stream",
            "RFC 9113 §6.2",
            "A HEADERS frame without the END_HEADERS flag set MUST be followed by a CONTINUATION frame for the same stream. A receiver MUST treat the receipt of any other type of frame or a frame on a different stream as a connection error of type PROTOCOL_ERROR.",
            |c| {
                let block = c.request_block("GET", &[]);
                let (first, rest) = block.split_at(block.len() / 2);
                c.send(kind::HEADERS, flag::END_STREAM, 1, first);
                c.send(kind::CONTINUATION, flag::END_HEADERS, 3, rest);
                expect_connection_error(c, ErrorCode::PROTOCOL_ERROR)
            },
        ),
        case(
            "6.3/priority-on-stream-0",
            "RFC 9113 §6.3",
            "If a PRIORITY frame is received with a stream identifier of 0x00, the recipient MUST respond with a connection error of type PROTOCOL_ERROR.",
            |c| {
                c.send(kind::PRIORITY, 0, 0, &[0, 0, 0, 1, 16]);
                expect_connection_error(c, ErrorCode::PROTOCOL_ERROR)
            },
        ),
        case(
            "6.3/priority-bad-length",
            "RFC 9113 §6.3",
            "A PRIORITY frame with a length other than 5 octets MUST be treated as a stream error of type FRAME_SIZE_ERROR.",
            |c| {
                c.open_stream(1, false);
                c.send(kind::PRIORITY, 0, 1, &[0, 0, 0, 3]);
                expect_stream_error(c, 1, &[ErrorCode::FRAME_SIZE_ERROR])
            },
        ),
        case(
            "6.3/priority-on-idle-stream-allowed",
            "RFC 9113 §5.1",
            "Receiving any frame other than HEADERS or PRIORITY on a stream in this state MUST be treated as a connection error (so PRIORITY on an idle stream is allowed).",
            |c| {
                c.send(kind::PRIORITY, 0, 9, &[0, 0, 0, 0, 16]);
                expect_alive(c)
            },
        ),
        case(
            "6.4/rst-stream-on-stream-0",
            "RFC 9113 §6.4",
            "If a RST_STREAM frame is received with a stream identifier of 0x00, the recipient MUST treat this as a connection error of type PROTOCOL_ERROR.",
            |c| {
                c.send(kind::RST_STREAM, 0, 0, &ErrorCode::CANCEL.0.to_be_bytes());
                expect_connection_error(c, ErrorCode::PROTOCOL_ERROR)
            },
        ),
        case(
            "6.4/rst-stream-on-idle-stream",
            "RFC 9113 §6.4",
            "If a RST_STREAM frame identifying an idle stream is received, the recipient MUST treat this as a connection error of type PROTOCOL_ERROR.",
            |c| {
                c.send(kind::RST_STREAM, 0, 1, &ErrorCode::CANCEL.0.to_be_bytes());
                expect_connection_error(c, ErrorCode::PROTOCOL_ERROR)
            },
        ),
        case(
            "6.4/rst-stream-bad-length",
            "RFC 9113 §6.4",
            "A RST_STREAM frame with a length other than 4 octets MUST be treated as a connection error of type FRAME_SIZE_ERROR.",
            |c| {
                c.open_stream(1, false);
                c.send(kind::RST_STREAM, 0, 1, &[0, 0, 8]);
                expect_connection_error(c, ErrorCode::FRAME_SIZE_ERROR)
            },
        ),
        case(
            "6.5/ack-with-payload",
            "RFC 9113 §6.5",
            "Receipt of a SETTINGS frame with the ACK flag set and a length field value other than 0 MUST be treated as a connection error of type FRAME_SIZE_ERROR.",
            |c| {
                c.send(kind::SETTINGS, flag::ACK, 0, &settings_payload(&[(setting::ENABLE_PUSH, 0)]));
                expect_connection_error(c, ErrorCode::FRAME_SIZE_ERROR)
            },
        ),
        case(
            "6.5/settings-on-a-stream",
            "RFC 9113 §6.5",
            "If an endpoint receives a SETTINGS frame whose Stream Identifier field is anything other than 0x00, the endpoint MUST respond with a connection error of type PROTOCOL_ERROR.",
            |c| {
                c.send(kind::SETTINGS, 0, 1, &[]);
                expect_connection_error(c, ErrorCode::PROTOCOL_ERROR)
            },
        ),
        case(
            "6.5/length-not-multiple-of-6",
            "RFC 9113 §6.5",
            "A SETTINGS frame with a length other than a multiple of 6 octets MUST be treated as a connection error of type FRAME_SIZE_ERROR.",
            |c| {
                c.send(kind::SETTINGS, 0, 0, &[0, 2, 0]);
                expect_connection_error(c, ErrorCode::FRAME_SIZE_ERROR)
            },
        ),
        case(
            "6.5.2/enable-push-not-0-or-1",
            "RFC 9113 §6.5.2",
            "Any value other than 0 or 1 MUST be treated as a connection error of type PROTOCOL_ERROR.",
            |c| {
                c.send(kind::SETTINGS, 0, 0, &settings_payload(&[(setting::ENABLE_PUSH, 2)]));
                expect_connection_error(c, ErrorCode::PROTOCOL_ERROR)
            },
        ),
        case(
            "6.5.2/initial-window-size-too-large",
            "RFC 9113 §6.5.2",
            "Values above the maximum flow-control window size of 2^31-1 MUST be treated as a connection error of type FLOW_CONTROL_ERROR.",
            |c| {
                c.send(kind::SETTINGS, 0, 0, &settings_payload(&[(setting::INITIAL_WINDOW_SIZE, 1 << 31)]));
                expect_connection_error(c, ErrorCode::FLOW_CONTROL_ERROR)
            },
        ),
        case(
            "6.5.2/max-frame-size-too-small",
            "RFC 9113 §6.5.2",
            "The value advertised by an endpoint MUST be between this initial value and the maximum allowed frame size (2^24-1 octets), inclusive. Values outside this range MUST be treated as a connection error of type PROTOCOL_ERROR.",
            |c| {
                c.send(kind::SETTINGS, 0, 0, &settings_payload(&[(setting::MAX_FRAME_SIZE, 16_383)]));
                expect_connection_error(c, ErrorCode::PROTOCOL_ERROR)
            },
        ),
        case(
            "6.5.2/max-frame-size-too-large",
            "RFC 9113 §6.5.2",
            "The value advertised by an endpoint MUST be between this initial value and the maximum allowed frame size (2^24-1 octets), inclusive. Values outside this range MUST be treated as a connection error of type PROTOCOL_ERROR.",
            |c| {
                c.send(kind::SETTINGS, 0, 0, &settings_payload(&[(setting::MAX_FRAME_SIZE, 1 << 24)]));
                expect_connection_error(c, ErrorCode::PROTOCOL_ERROR)
            },
        ),
        case(
            "6.5.2/unknown-setting-ignored",
            "RFC 9113 §6.5.2",
            "An endpoint that receives a SETTINGS frame with any unknown or unsupported identifier MUST ignore that setting.",
            |c| {
                c.send(kind::SETTINGS, 0, 0, &settings_payload(&[(0x00ff, 7), (0xfafa, u32::MAX)]));
                expect_settings_ack(c)
            },
        ),
        case(
            "6.5.3/settings-acknowledged",
            "RFC 9113 §6.5.3",
            "Upon receiving a SETTINGS frame with the ACK flag not set, the recipient MUST apply the updated settings as soon as possible upon receipt (and acknowledge them with a SETTINGS frame with the ACK flag).",
            |c| {
                c.send(kind::SETTINGS, 0, 0, &settings_payload(&[(setting::HEADER_TABLE_SIZE, 4096), (setting::MAX_CONCURRENT_STREAMS, 100)]));
                expect_settings_ack(c)
            },
        ),
        case(
            "6.5.2/largest-legal-values-accepted",
            "RFC 9113 §6.5.2",
            "SETTINGS_INITIAL_WINDOW_SIZE: values above 2^31-1 MUST be treated as an error; SETTINGS_MAX_FRAME_SIZE: the value MUST be between 2^14 and 2^24-1 inclusive (so the largest legal values MUST be accepted).",
            |c| {
                c.send(
                    kind::SETTINGS,
                    0,
                    0,
                    &settings_payload(&[(setting::INITIAL_WINDOW_SIZE, MAX_WINDOW), (setting::MAX_FRAME_SIZE, (1 << 24) - 1)]),
                );
                expect_settings_ack(c)
            },
        ),
        case(
            "6.2/headers-with-priority-accepted",
            "RFC 9113 §5.3.2",
            "Priority signals (the PRIORITY flag of HEADERS) are deprecated but MUST still be parsed: a request carrying one is answered normally.",
            |c| {
                let mut payload = vec![0, 0, 0, 0, 200];
                payload.extend(c.request_block("GET", &[]));
                c.send(kind::HEADERS, flag::END_HEADERS | flag::END_STREAM | flag::PRIORITY, 1, &payload);
                expect_response(c, 1)
            },
        ),
        case(
            "5.1/window-update-on-half-closed-remote-allowed",
            "RFC 9113 §5.1",
            "half-closed (remote): If an endpoint receives additional frames, other than WINDOW_UPDATE, PRIORITY, or RST_STREAM, for a stream that is in this state, it MUST respond with a stream error of type STREAM_CLOSED (so WINDOW_UPDATE is allowed).",
            |c| {
                c.open_stream(1, true);
                c.send(kind::WINDOW_UPDATE, 0, 1, &1000u32.to_be_bytes());
                c.send(kind::PRIORITY, 0, 1, &[0, 0, 0, 0, 16]);
                expect_response(c, 1)
            },
        ),
        case(
            "6.7/ping-acknowledged",
            "RFC 9113 §6.7",
            "Receivers of a PING frame that does not include an ACK flag MUST send a PING frame with the ACK flag set in response, with an identical frame payload.",
            |c| {
                let payload = *b"\x00\x01\x02\x03\xfc\xfd\xfe\xff";
                c.send(kind::PING, 0, 0, &payload);
                expect_ping_ack(c, payload)
            },
        ),
        case("6.7/ping-ack-not-answered", "RFC 9113 §6.7", "An endpoint MUST NOT respond to PING frames containing this flag.", |c| {
            c.send(kind::PING, flag::ACK, 0, b"unasked!");
            let payload = *b"asked!!!";
            c.send(kind::PING, 0, 0, &payload);
            expect_ping_ack(c, payload)
        }),
        case(
            "6.7/ping-on-a-stream",
            "RFC 9113 §6.7",
            "If a PING frame is received with a Stream Identifier field value other than 0x00, the recipient MUST respond with a connection error of type PROTOCOL_ERROR.",
            |c| {
                c.send(kind::PING, 0, 1, b"stream 1");
                expect_connection_error(c, ErrorCode::PROTOCOL_ERROR)
            },
        ),
        case(
            "6.7/ping-bad-length",
            "RFC 9113 §6.7",
            "Receipt of a PING frame with a length field value other than 8 MUST be treated as a connection error of type FRAME_SIZE_ERROR.",
            |c| {
                c.send(kind::PING, 0, 0, b"short");
                expect_connection_error(c, ErrorCode::FRAME_SIZE_ERROR)
            },
        ),
        case(
            "6.8/goaway-on-a-stream",
            "RFC 9113 §6.8",
            "An endpoint MUST treat a GOAWAY frame with a stream identifier other than 0x00 as a connection error of type PROTOCOL_ERROR.",
            |c| {
                c.send(kind::GOAWAY, 0, 1, &[0, 0, 0, 0, 0, 0, 0, 0]);
                expect_connection_error(c, ErrorCode::PROTOCOL_ERROR)
            },
        ),
        case(
            "6.9/zero-increment-on-connection",
            "RFC 9113 §6.9",
            "A receiver MUST treat the receipt of a WINDOW_UPDATE frame with a flow-control window increment of 0 as a stream error of type PROTOCOL_ERROR; errors on the connection flow-control window MUST be treated as a connection error.",
            |c| {
                c.send(kind::WINDOW_UPDATE, 0, 0, &[0, 0, 0, 0]);
                expect_connection_error(c, ErrorCode::PROTOCOL_ERROR)
            },
        ),
        case(
            "6.9/zero-increment-on-stream",
            "RFC 9113 §6.9",
            "A receiver MUST treat the receipt of a WINDOW_UPDATE frame with a flow-control window increment of 0 as a stream error of type PROTOCOL_ERROR.",
            |c| {
                c.open_stream(1, false);
                c.send(kind::WINDOW_UPDATE, 0, 1, &[0, 0, 0, 0]);
                expect_stream_error(c, 1, &[ErrorCode::PROTOCOL_ERROR])
            },
        ),
        case(
            "6.9/window-update-bad-length",
            "RFC 9113 §6.9",
            "A WINDOW_UPDATE frame with a length other than 4 octets MUST be treated as a connection error of type FRAME_SIZE_ERROR.",
            |c| {
                c.send(kind::WINDOW_UPDATE, 0, 0, &[0, 0, 1]);
                expect_connection_error(c, ErrorCode::FRAME_SIZE_ERROR)
            },
        ),
        case(
            "6.9.1/connection-window-overflow",
            "RFC 9113 §6.9.1",
            "If a sender receives a WINDOW_UPDATE that causes a flow-control window to exceed this maximum, it MUST terminate either the stream or the connection, as appropriate. For the connection, a GOAWAY frame with an error code of FLOW_CONTROL_ERROR is sent.",
            |c| {
                c.send(kind::WINDOW_UPDATE, 0, 0, &MAX_WINDOW.to_be_bytes());
                c.send(kind::WINDOW_UPDATE, 0, 0, &MAX_WINDOW.to_be_bytes());
                expect_connection_error(c, ErrorCode::FLOW_CONTROL_ERROR)
            },
        ),
        Case {
            id: "6.9.1/stream-window-overflow",
            rfc: "RFC 9113 §6.9.1",
            must: "If a sender receives a WINDOW_UPDATE that causes a flow-control window to exceed this maximum, it MUST terminate either the stream or the connection, as appropriate. For streams, the sender sends a RST_STREAM with an error code of FLOW_CONTROL_ERROR.",
            // Our receive window of 0 keeps the response body (and so the stream) pending.
            setup: Setup::HandshakeWith(&[(setting::INITIAL_WINDOW_SIZE, 0)]),
            run: |c| {
                c.open_stream(1, true);
                // Both updates in one write, so the server sees them before it can finish
                // the response with the window the first one opened.
                let mut bytes = frame(kind::WINDOW_UPDATE, 0, 1, &MAX_WINDOW.to_be_bytes());
                bytes.extend(frame(kind::WINDOW_UPDATE, 0, 1, &1u32.to_be_bytes()));
                c.send_bytes(&bytes);
                expect_stream_error(c, 1, &[ErrorCode::FLOW_CONTROL_ERROR])
            },
        },
        Case {
            id: "6.9.1/sender-respects-window",
            rfc: "RFC 9113 §6.9.1",
            must: "The sender MUST NOT send a flow-controlled frame with a length that exceeds the space available in either of the flow-control windows advertised by the receiver.",
            setup: Setup::HandshakeWith(&[(setting::INITIAL_WINDOW_SIZE, 1)]),
            run: |c| {
                c.open_stream(1, true);
                let mut received = 0usize;
                loop {
                    match c.read_frame() {
                        Observed::Frame(f) if f.kind == kind::DATA && f.stream == 1 => {
                            received += f.payload.len();
                            if received > 1 {
                                return Outcome::Fail(format!("received {received} octets of DATA with a stream window of 1"));
                            }
                            if f.flags & flag::END_STREAM != 0 {
                                return Outcome::NotApplicable("the response body was at most 1 octet".into());
                            }
                        }
                        Observed::Frame(f) if f.kind == kind::HEADERS && f.stream == 1 && f.flags & flag::END_STREAM != 0 => {
                            return Outcome::NotApplicable("the response had no body".into())
                        }
                        Observed::Frame(f) if f.kind == kind::GOAWAY || f.kind == kind::RST_STREAM => {
                            return Outcome::Fail(format!("unexpected {}", f.describe()))
                        }
                        Observed::Frame(_) => {}
                        Observed::Closed => return Outcome::Fail("the connection was closed".into()),
                        Observed::Timeout if received == 1 => return Outcome::Pass,
                        Observed::Timeout => return Outcome::Fail("no DATA arrived within the window of 1 octet".into()),
                    }
                }
            },
        },
        Case {
            id: "6.9.2/initial-window-change-overflow",
            rfc: "RFC 9113 §6.9.2",
            must: "An endpoint MUST treat a change to SETTINGS_INITIAL_WINDOW_SIZE that causes any flow-control window to exceed the maximum size as a connection error of type FLOW_CONTROL_ERROR.",
            setup: Setup::HandshakeWith(&[(setting::INITIAL_WINDOW_SIZE, 0)]),
            run: |c| {
                c.open_stream(1, true);
                let mut bytes = frame(kind::WINDOW_UPDATE, 0, 1, &MAX_WINDOW.to_be_bytes());
                bytes.extend(frame(kind::SETTINGS, 0, 0, &settings_payload(&[(setting::INITIAL_WINDOW_SIZE, 1)])));
                c.send_bytes(&bytes);
                expect_connection_error(c, ErrorCode::FLOW_CONTROL_ERROR)
            },
        },
        case(
            "6.10/continuation-without-headers",
            "RFC 9113 §6.10",
            "A CONTINUATION frame MUST be preceded by a HEADERS, PUSH_PROMISE or CONTINUATION frame without the END_HEADERS flag set. A recipient that observes violation of this rule MUST respond with a connection error of type PROTOCOL_ERROR.",
            |c| {
                let block = c.request_block("GET", &[]);
                c.send(kind::CONTINUATION, flag::END_HEADERS, 1, &block);
                expect_connection_error(c, ErrorCode::PROTOCOL_ERROR)
            },
        ),
        case(
            "6.10/continuation-after-end-headers",
            "RFC 9113 §6.10",
            "A CONTINUATION frame MUST be preceded by a HEADERS, PUSH_PROMISE or CONTINUATION frame without the END_HEADERS flag set. A recipient that observes violation of this rule MUST respond with a connection error of type PROTOCOL_ERROR.",
            |c| {
                let block = c.request_block("POST", &[]);
                c.send(kind::HEADERS, flag::END_HEADERS, 1, &block);
                c.send(kind::CONTINUATION, flag::END_HEADERS, 1, &crate::hpack_lite::block(&[("x-late", "1")]));
                expect_connection_error(c, ErrorCode::PROTOCOL_ERROR)
            },
        ),
        case(
            "6.10/continuation-assembles",
            "RFC 9113 §6.10",
            "Any number of CONTINUATION frames can be sent, as long as the preceding frame is on the same stream and is a HEADERS, PUSH_PROMISE, or CONTINUATION frame without the END_HEADERS flag set (the block MUST be processed as one unit).",
            |c| {
                let block = c.request_block("GET", &[]);
                let third = block.len() / 3;
                c.send(kind::HEADERS, flag::END_STREAM, 1, &block[..third]);
                c.send(kind::CONTINUATION, 0, 1, &block[third..2 * third]);
                c.send(kind::CONTINUATION, flag::END_HEADERS, 1, &block[2 * third..]);
                expect_response(c, 1)
            },
        ),
        case(
            "8.4/client-push-promise",
            "RFC 9113 §8.4",
            "A client cannot push. Thus, servers MUST treat the receipt of a PUSH_PROMISE frame as a connection error of type PROTOCOL_ERROR.",
            |c| {
                c.open_stream(1, false);
                let mut payload = 2u32.to_be_bytes().to_vec();
                payload.extend(c.request_block("GET", &[]));
                c.send(kind::PUSH_PROMISE, flag::END_HEADERS, 1, &payload);
                expect_connection_error(c, ErrorCode::PROTOCOL_ERROR)
            },
        ),
        case(
            "6.1/data-on-closed-stream",
            "RFC 9113 §6.1",
            "If a DATA frame is received whose stream is not in the \"open\" or \"half-closed (local)\" state, the recipient MUST respond with a stream error of type STREAM_CLOSED.",
            |c| {
                c.open_stream(1, true);
                if let Err(o) = super::read_response_to_end(c, 1) {
                    return o;
                }
                c.send(kind::DATA, 0, 1, b"after the exchange");
                expect_stream_error(c, 1, &[ErrorCode::STREAM_CLOSED])
            },
        ),
        Case {
            id: "6.9.1/sender-respects-connection-window",
            rfc: "RFC 9113 §6.9.1",
            must: "The sender MUST NOT send a flow-controlled frame with a length that exceeds the space available in either of the flow-control windows advertised by the receiver.",
            // A huge stream window, the connection window left at its initial 65 535.
            setup: Setup::HandshakeWith(&[(setting::INITIAL_WINDOW_SIZE, MAX_WINDOW)]),
            run: |c| {
                let block = crate::hpack_lite::block(&[
                    (":method", "GET"),
                    (":scheme", "http"),
                    (":path", LARGE_BODY_PATH),
                    (":authority", &c.authority.clone()),
                ]);
                c.send(kind::HEADERS, flag::END_HEADERS | flag::END_STREAM, 1, &block);
                expect_data_within_window(c, 65_535)
            },
        },
        Case {
            id: "6.9.2/negative-window-respected",
            rfc: "RFC 9113 §6.9.2",
            must: "A change to SETTINGS_INITIAL_WINDOW_SIZE can cause the available space in a flow-control window to become negative. A sender MUST track the negative flow-control window and MUST NOT send new flow-controlled frames until it receives WINDOW_UPDATE frames that cause the flow-control window to become positive.",
            setup: Setup::HandshakeWith(&[(setting::INITIAL_WINDOW_SIZE, 100)]),
            run: |c| {
                c.open_stream(1, true);
                // Take the first 100 octets: the stream window is 0.
                match expect_data_within_window(c, 100) {
                    Outcome::Pass => {}
                    other => return other,
                }
                // 0 - 100 = -100, then +60: still -40, nothing may be sent.
                let mut b = frame(kind::SETTINGS, 0, 0, &settings_payload(&[(setting::INITIAL_WINDOW_SIZE, 0)]));
                b.extend(frame(kind::WINDOW_UPDATE, 0, 1, &60u32.to_be_bytes()));
                c.send_bytes(&b);
                match expect_data_within_window(c, 0) {
                    Outcome::Pass => {}
                    other => return other,
                }
                // +70: the window is 30.
                c.send(kind::WINDOW_UPDATE, 0, 1, &70u32.to_be_bytes());
                expect_data_within_window(c, 30)
            },
        },
    ]
}

/// The peer must acknowledge our SETTINGS and otherwise carry on.
fn expect_settings_ack(c: &mut Conn) -> Outcome {
    loop {
        match c.read_frame() {
            Observed::Frame(f) if f.kind == kind::SETTINGS && f.flags & flag::ACK != 0 => {
                return expect_alive(c)
            }
            Observed::Frame(f) if f.kind == kind::GOAWAY => {
                return Outcome::Fail(format!("expected a SETTINGS ACK, got {}", f.describe()))
            }
            Observed::Frame(_) => {}
            Observed::Closed => {
                return Outcome::Fail("expected a SETTINGS ACK, the connection was closed".into())
            }
            Observed::Timeout => {
                return Outcome::Fail("expected a SETTINGS ACK, nothing came".into())
            }
        }
    }
}
