//! RFC 9113 §5.1 (stream states), §5.1.1 (identifiers), §5.1.2 (concurrency), §5.3 (priority),
//! §5.4.1 (closing after a connection error), §7 (unknown error codes).

use h2mux_wire::ErrorCode;

use super::{case, expect_alive, expect_connection_error, expect_stream_error, Case, Outcome};
use crate::conn::{flag, kind, Observed};

/// Streams initiated by this many HEADERS at most, whatever the peer's limit.
const MAX_STREAMS_TRIED: u32 = 1000;

/// §5.1–§5.3.
pub fn cases() -> Vec<Case> {
    vec![
        case(
            "5.1/data-on-idle-stream",
            "RFC 9113 §5.1",
            "idle: Receiving any frame other than HEADERS or PRIORITY on a stream in this state MUST be treated as a connection error of type PROTOCOL_ERROR.",
            |c| {
                c.send(kind::DATA, 0, 1, b"x");
                expect_connection_error(c, ErrorCode::PROTOCOL_ERROR)
            },
        ),
        case(
            "5.1/window-update-on-idle-stream",
            "RFC 9113 §5.1",
            "idle: Receiving any frame other than HEADERS or PRIORITY on a stream in this state MUST be treated as a connection error of type PROTOCOL_ERROR.",
            |c| {
                c.send(kind::WINDOW_UPDATE, 0, 1, &100u32.to_be_bytes());
                expect_connection_error(c, ErrorCode::PROTOCOL_ERROR)
            },
        ),
        case(
            "5.1/continuation-on-idle-stream",
            "RFC 9113 §5.1",
            "idle: Receiving any frame other than HEADERS or PRIORITY on a stream in this state MUST be treated as a connection error of type PROTOCOL_ERROR.",
            |c| {
                c.send(kind::CONTINUATION, flag::END_HEADERS, 1, &crate::hpack_lite::block(&[("x", "y")]));
                expect_connection_error(c, ErrorCode::PROTOCOL_ERROR)
            },
        ),
        case(
            "5.1/data-on-half-closed-remote",
            "RFC 9113 §5.1",
            "half-closed (remote): If an endpoint receives additional frames, other than WINDOW_UPDATE, PRIORITY, or RST_STREAM, for a stream that is in this state, it MUST respond with a stream error of type STREAM_CLOSED.",
            |c| {
                c.open_stream(1, true);
                c.send(kind::DATA, 0, 1, b"after END_STREAM");
                expect_stream_error(c, 1, &[ErrorCode::STREAM_CLOSED])
            },
        ),
        case(
            "5.1/headers-on-half-closed-remote",
            "RFC 9113 §5.1",
            "half-closed (remote): If an endpoint receives additional frames, other than WINDOW_UPDATE, PRIORITY, or RST_STREAM, for a stream that is in this state, it MUST respond with a stream error of type STREAM_CLOSED.",
            |c| {
                c.open_stream(1, true);
                let trailers = crate::hpack_lite::block(&[("x-trailer", "late")]);
                c.send(kind::HEADERS, flag::END_HEADERS | flag::END_STREAM, 1, &trailers);
                expect_stream_error(c, 1, &[ErrorCode::STREAM_CLOSED])
            },
        ),
        case(
            "5.1/data-after-rst-stream",
            "RFC 9113 §5.1",
            "closed: An endpoint that sends a RST_STREAM frame on a stream that is in the \"open\" or \"half-closed (local)\" state could receive any type of frame; an endpoint that receives frames after the stream is closed by the peer's RST_STREAM MUST treat that as a stream error of type STREAM_CLOSED.",
            |c| {
                c.open_stream(1, false);
                c.send(kind::RST_STREAM, 0, 1, &ErrorCode::CANCEL.0.to_be_bytes());
                c.send(kind::DATA, 0, 1, b"after RST_STREAM");
                expect_stream_error(c, 1, &[ErrorCode::STREAM_CLOSED])
            },
        ),
        case(
            "5.1.1/even-stream-from-client",
            "RFC 9113 §5.1.1",
            "Streams initiated by a client MUST use odd-numbered stream identifiers. An endpoint that receives an unexpected stream identifier MUST respond with a connection error of type PROTOCOL_ERROR.",
            |c| {
                c.open_stream(2, true);
                expect_connection_error(c, ErrorCode::PROTOCOL_ERROR)
            },
        ),
        case(
            "5.1.1/decreasing-stream-id",
            "RFC 9113 §5.1.1",
            "The identifier of a newly established stream MUST be numerically greater than all streams that the initiating endpoint has opened or reserved. An endpoint that receives an unexpected stream identifier MUST respond with a connection error of type PROTOCOL_ERROR.",
            |c| {
                c.open_stream(5, true);
                c.open_stream(3, true);
                expect_connection_error(c, ErrorCode::PROTOCOL_ERROR)
            },
        ),
        case(
            "5.1.2/exceeding-max-concurrent-streams",
            "RFC 9113 §5.1.2",
            "An endpoint that receives a HEADERS frame that causes its advertised concurrent stream limit to be exceeded MUST treat this as a stream error of type PROTOCOL_ERROR or REFUSED_STREAM.",
            |c| {
                let limit = match c.peer.max_concurrent_streams {
                    Some(n) if n < MAX_STREAMS_TRIED => n,
                    Some(n) => return Outcome::NotApplicable(format!("the peer allows {n} concurrent streams")),
                    None => return Outcome::NotApplicable("the peer sets no concurrent stream limit".into()),
                };
                let mut burst = Vec::new();
                let block = c.request_block("POST", &[]);
                for i in 0..=limit {
                    burst.extend(crate::conn::frame(kind::HEADERS, flag::END_HEADERS, 2 * i + 1, &block));
                }
                c.send_bytes(&burst);
                expect_stream_error(c, 2 * limit + 1, &[ErrorCode::PROTOCOL_ERROR, ErrorCode::REFUSED_STREAM])
            },
        ),
        case(
            "5.3.1/headers-depends-on-itself",
            "RFC 9113 §5.3.1",
            "A stream cannot depend on itself. An endpoint MUST treat this as a stream error of type PROTOCOL_ERROR.",
            |c| {
                let mut payload = vec![0, 0, 0, 1, 16];
                payload.extend(c.request_block("GET", &[]));
                c.send(kind::HEADERS, flag::END_HEADERS | flag::END_STREAM | flag::PRIORITY, 1, &payload);
                expect_stream_error(c, 1, &[ErrorCode::PROTOCOL_ERROR])
            },
        ),
        case(
            "5.3.1/priority-depends-on-itself",
            "RFC 9113 §5.3.1",
            "A stream cannot depend on itself. An endpoint MUST treat this as a stream error of type PROTOCOL_ERROR.",
            |c| {
                c.open_stream(1, false);
                c.send(kind::PRIORITY, 0, 1, &[0, 0, 0, 1, 16]);
                expect_stream_error(c, 1, &[ErrorCode::PROTOCOL_ERROR])
            },
        ),
        case(
            "5.1/headers-on-closed-stream",
            "RFC 9113 §5.1",
            "closed: ... an endpoint that receives any frames after receiving a frame with the END_STREAM flag set MUST treat that as a connection error of type STREAM_CLOSED, unless the frame is permitted as described below (WINDOW_UPDATE, RST_STREAM, PRIORITY).",
            |c| {
                c.open_stream(1, true);
                if let Err(o) = super::read_response_to_end(c, 1) {
                    return o;
                }
                let block = crate::hpack_lite::block(&[("x-trailer", "after the exchange")]);
                c.send(kind::HEADERS, flag::END_HEADERS | flag::END_STREAM, 1, &block);
                expect_connection_error(c, ErrorCode::STREAM_CLOSED)
            },
        ),
        case(
            "5.4.1/connection-closed-after-goaway",
            "RFC 9113 §5.4.1",
            "After sending the GOAWAY frame for an error condition, the endpoint MUST close the TCP connection.",
            |c| {
                c.send(kind::PING, 0, 1, b"stream 1");
                let mut goaway = false;
                loop {
                    match c.read_frame() {
                        Observed::Frame(f) if f.kind == kind::GOAWAY => goaway = true,
                        Observed::Frame(_) => {}
                        Observed::Closed => return Outcome::Pass,
                        Observed::Timeout if goaway => {
                            return Outcome::Fail("GOAWAY sent but the TCP connection stayed open".into())
                        }
                        Observed::Timeout => return Outcome::Fail("no connection error for a PING on a stream".into()),
                    }
                }
            },
        ),
        case(
            "7/unknown-error-code-ignored",
            "RFC 9113 §7",
            "Unknown or unsupported error codes MUST NOT trigger any special behavior. These MAY be treated by an implementation as being equivalent to INTERNAL_ERROR.",
            |c| {
                c.open_stream(1, false);
                c.send(kind::RST_STREAM, 0, 1, &0x00de_ad42u32.to_be_bytes());
                expect_alive(c)
            },
        ),
    ]
}
