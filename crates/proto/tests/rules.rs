//! Conformance: one test per connection-state MUST of RFC 9113, driven by hand-built frames.

// Tests read best as "defaults, then the one knob under test".
#![allow(clippy::field_reassign_with_default)]

mod common;

use bytes::BytesMut;
use common::*;
use h2mux_proto::{Config, Connection, ConnectionError, Event, ResetCause, Role, StreamError};
use h2mux_wire::frame::{Frame, GoAwayFrame, Setting, SettingsFrame, CLIENT_PREFACE};
use h2mux_wire::ErrorCode;
use std::time::Instant;

#[test]
fn bad_client_preface_is_a_protocol_error() {
    // §3.4: "Clients and servers MUST treat an invalid connection preface as a connection
    // error of type PROTOCOL_ERROR."
    let mut c = Connection::new(Role::Server, Config::default(), Instant::now());
    let mut b = BytesMut::from(&b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..]);
    assert_eq!(
        c.recv(&mut b, Instant::now()),
        Err(ConnectionError::BadPreface)
    );
    // Sticky: the same error again.
    let mut more = BytesMut::from(&CLIENT_PREFACE[..]);
    assert_eq!(
        c.recv(&mut more, Instant::now()),
        Err(ConnectionError::BadPreface)
    );
    let mut chunks = Vec::new();
    c.poll_transmit(Instant::now(), &mut chunks);
    assert!(c.is_closed());
}

#[test]
fn first_frame_must_be_settings() {
    // §3.4: "The server connection preface consists of a potentially empty SETTINGS frame
    // that MUST be the first frame" / the same for the client after its preface.
    let mut c = Connection::new(Role::Server, Config::default(), Instant::now());
    let mut b = BytesMut::from(&CLIENT_PREFACE[..]);
    ping([0; 8]).encode(&mut b);
    assert!(matches!(
        c.recv(&mut b, Instant::now()),
        Err(ConnectionError::FirstFrameNotSettings { .. })
    ));
}

#[test]
fn data_on_idle_stream_is_a_connection_error() {
    // §5.1 idle: "Receiving any frame other than HEADERS or PRIORITY on a stream in this
    // state MUST be treated as a connection error of type PROTOCOL_ERROR."
    let mut r = Raw::server(Config::default());
    let e = r.feed_frames(&[data(1, b"x", false)]).unwrap_err();
    assert_eq!(e.code(), ErrorCode::PROTOCOL_ERROR);
    assert_eq!(goaway_code(&r.written()), Some(ErrorCode::PROTOCOL_ERROR));
    let mut r = Raw::server(Config::default());
    assert!(r.feed_frames(&[rst(3, ErrorCode::CANCEL)]).is_err());
    let mut r = Raw::server(Config::default());
    assert!(r.feed_frames(&[window_update(5, 10)]).is_err());
}

#[test]
fn stream_ids_must_increase_and_have_client_parity() {
    // §5.1.1: "Streams initiated by a client MUST use odd-numbered stream identifiers";
    // "An endpoint that receives an unexpected stream identifier MUST respond with a
    // connection error of type PROTOCOL_ERROR."
    let mut r = Raw::server(Config::default());
    let b = r.headers(2, &get("/"), true);
    assert!(matches!(
        r.feed(b),
        Err(ConnectionError::InvalidStreamId { .. })
    ));
    // "The identifier of a newly established stream MUST be numerically greater than all
    // streams that the initiating endpoint has opened": a never-used lower id is
    // PROTOCOL_ERROR (found by the conformance suite against `h2mux serve`).
    let mut r = Raw::server(Config::default());
    let b = r.headers(5, &get("/"), true);
    r.feed(b).unwrap();
    let b = r.headers(3, &get("/"), true);
    assert!(matches!(
        r.feed(b),
        Err(ConnectionError::InvalidStreamId { .. })
    ));
    // HEADERS again on a stream that was used and is closed: STREAM_CLOSED (§5.1 closed).
    let mut r = Raw::server(Config::default());
    let b = r.headers(1, &get("/"), true);
    r.feed(b).unwrap();
    while r.conn.poll_event().is_some() {}
    let resp = vec![h2mux_proto::HeaderField::new(":status", "200")];
    r.conn
        .send_headers(h2mux_wire::StreamId::new(1), resp, true)
        .unwrap();
    let _ = r.written();
    let b = r.headers(1, &get("/"), true);
    assert_eq!(r.feed(b).unwrap_err().code(), ErrorCode::STREAM_CLOSED);
}

#[test]
fn frames_after_end_stream_are_stream_closed() {
    // §5.1 half-closed (remote): "If an endpoint receives additional frames, other than
    // WINDOW_UPDATE, PRIORITY, or RST_STREAM, for a stream that is in this state, it MUST
    // respond with a stream error of type STREAM_CLOSED."
    let mut r = Raw::server(Config::default());
    let b = r.headers(1, &post("/"), true);
    r.feed(b).unwrap();
    r.written();
    r.feed_frames(&[data(1, b"late", false)]).unwrap();
    assert_eq!(resets(&r.written()), vec![(1, ErrorCode::STREAM_CLOSED)]);
    // The connection lives on.
    let b = r.headers(3, &get("/"), true);
    r.feed(b).unwrap();
}

#[test]
fn header_block_must_not_be_interrupted() {
    // §6.10: "A receiver MUST treat the receipt of any other type of frame or a frame on a
    // different stream as a connection error of type PROTOCOL_ERROR."
    let mut r = Raw::server(Config::default());
    let b = r.headers_open(1, &get("/"));
    r.feed(b).unwrap();
    let e = r.feed_frames(&[ping([0; 8])]).unwrap_err();
    assert!(matches!(e, ConnectionError::ExpectedContinuation { .. }));
    let mut r = Raw::server(Config::default());
    let b = r.headers_open(1, &get("/"));
    r.feed(b).unwrap();
    let e = r.feed_frames(&[continuation(3, b"", true)]).unwrap_err();
    assert_eq!(e.code(), ErrorCode::PROTOCOL_ERROR);
    // CONTINUATION without HEADERS.
    let mut r = Raw::server(Config::default());
    let e = r.feed_frames(&[continuation(1, b"", true)]).unwrap_err();
    assert!(matches!(e, ConnectionError::UnexpectedContinuation { .. }));
}

#[test]
fn header_block_split_over_continuations_is_assembled() {
    let mut r = Raw::server(Config::default());
    let mut block = BytesMut::new();
    r.enc.encode(get("/split").iter(), &mut block);
    let block = block.freeze();
    let (a, b) = block.split_at(block.len() / 2);
    let mut bytes = BytesMut::new();
    Frame::Headers(h2mux_wire::frame::HeadersFrame {
        stream_id: sid(1),
        header_block: bytes::Bytes::copy_from_slice(a),
        end_stream: true,
        end_headers: false,
        priority: None,
    })
    .encode(&mut bytes);
    Frame::Continuation(h2mux_wire::frame::ContinuationFrame {
        stream_id: sid(1),
        header_block: bytes::Bytes::copy_from_slice(b),
        end_headers: true,
    })
    .encode(&mut bytes);
    r.feed(bytes).unwrap();
    let ev = r.events();
    assert!(ev.iter().any(
        |e| matches!(e, Event::Headers { fields, end_stream: true, .. } if *fields == get("/split"))
    ));
}

#[test]
fn malformed_requests_are_stream_errors() {
    // §8.1.1: "Malformed requests or responses that are detected MUST be treated as a
    // stream error of type PROTOCOL_ERROR."
    let cases: Vec<Vec<h2mux_wire::hpack::HeaderField>> = vec![
        vec![h(":method", "GET"), h(":path", "/")], // no :scheme
        {
            let mut v = get("/");
            v.push(h("Upper", "x"));
            v
        },
        {
            let mut v = get("/");
            v.push(h("connection", "keep-alive"));
            v
        },
        {
            let mut v = vec![h("accept", "*/*")];
            v.extend(get("/"));
            v
        },
    ];
    for (i, fields) in cases.into_iter().enumerate() {
        let mut r = Raw::server(Config::default());
        let id = 1 + 2 * i as u32;
        let b = r.headers(id, &fields, true);
        r.feed(b).unwrap();
        assert_eq!(
            resets(&r.written()),
            vec![(id, ErrorCode::PROTOCOL_ERROR)],
            "case {i}"
        );
        // The application never sees it.
        assert!(!r
            .events()
            .iter()
            .any(|e| matches!(e, Event::Headers { .. })));
    }
}

#[test]
fn content_length_must_match_data() {
    // §8.1.1: "A request or response is also malformed if the value of a content-length
    // header field does not equal the sum of the DATA frame payload lengths".
    let mut fields = post("/");
    fields.push(h("content-length", "5"));
    let mut r = Raw::server(Config::default());
    let b = r.headers(1, &fields, false);
    r.feed(b).unwrap();
    r.feed_frames(&[data(1, b"abc", true)]).unwrap();
    assert_eq!(resets(&r.written()), vec![(1, ErrorCode::PROTOCOL_ERROR)]);
    assert!(r.events().iter().any(|e| matches!(
        e,
        Event::Reset {
            cause: ResetCause::Local(StreamError::ContentLength {
                expected: 5,
                received: 3
            }),
            ..
        }
    )));
    // Too much data is caught at once, before END_STREAM.
    let mut r = Raw::server(Config::default());
    let b = r.headers(1, &fields, false);
    r.feed(b).unwrap();
    r.feed_frames(&[data(1, b"abcdef", false)]).unwrap();
    assert_eq!(resets(&r.written()), vec![(1, ErrorCode::PROTOCOL_ERROR)]);
    // Exact length is fine.
    let mut r = Raw::server(Config::default());
    let b = r.headers(1, &fields, false);
    r.feed(b).unwrap();
    r.feed_frames(&[data(1, b"ab", false), data(1, b"cde", true)])
        .unwrap();
    assert!(resets(&r.written()).is_empty());
}

#[test]
fn trailers_must_end_the_stream_and_carry_no_pseudo_headers() {
    // §8.1: "An endpoint that receives a HEADERS frame without the END_STREAM flag set after
    // receiving the HEADERS frame that opens a request ... MUST treat the corresponding
    // request or response as malformed".
    let mut r = Raw::server(Config::default());
    let b = r.headers(1, &post("/"), false);
    r.feed(b).unwrap();
    let b = r.headers(1, &[h("x-t", "1")], false);
    r.feed(b).unwrap();
    assert_eq!(resets(&r.written()), vec![(1, ErrorCode::PROTOCOL_ERROR)]);
    // §8.1: "Pseudo-header fields MUST NOT appear in a trailer section."
    let mut r = Raw::server(Config::default());
    let b = r.headers(1, &post("/"), false);
    r.feed(b).unwrap();
    let b = r.headers(1, &[h(":status", "200")], true);
    r.feed(b).unwrap();
    assert_eq!(resets(&r.written()), vec![(1, ErrorCode::PROTOCOL_ERROR)]);
}

#[test]
fn push_promise_is_rejected() {
    // §6.6 / §8.4: push is disabled by our SETTINGS_ENABLE_PUSH = 0: "A client ... MUST
    // treat the receipt of a PUSH_PROMISE frame as a connection error of type
    // PROTOCOL_ERROR" (when push is disabled).
    let mut r = Raw::client(Config::default());
    r.conn.open_stream(get("/"), true).unwrap();
    let pp = Frame::PushPromise(h2mux_wire::frame::PushPromiseFrame {
        stream_id: sid(1),
        promised_stream_id: sid(2),
        header_block: bytes::Bytes::new(),
        end_headers: true,
    });
    assert_eq!(r.feed_frames(&[pp]), Err(ConnectionError::PushPromise));
}

#[test]
fn server_may_not_enable_push() {
    // §6.5.2: "A client MUST treat receipt of a SETTINGS frame with SETTINGS_ENABLE_PUSH set
    // to 1 as a connection error of type PROTOCOL_ERROR."
    let mut r = Raw::client(Config::default());
    assert_eq!(
        r.feed_frames(&[settings(vec![Setting::EnablePush(true)])]),
        Err(ConnectionError::EnablePushFromServer)
    );
}

#[test]
fn settings_are_acknowledged() {
    // §6.5.3: "Upon receiving a SETTINGS frame without the ACK flag set, the recipient MUST
    // apply the updated settings as soon as possible upon receipt. ... MUST immediately
    // emit a SETTINGS frame with the ACK flag set."
    let mut r = Raw::server(Config::default());
    let w = r.written();
    assert!(w
        .iter()
        .any(|f| matches!(f, Frame::Settings(SettingsFrame { ack: true, .. }))));
    // Our own SETTINGS went first (§3.4).
    assert!(
        matches!(&w[0], Frame::Settings(SettingsFrame { ack: false, settings }) if settings.contains(&Setting::MaxFrameSize(1 << 20)))
    );
}

#[test]
fn window_overflow_rules() {
    // §6.9.1: "If a sender receives a WINDOW_UPDATE that causes a flow-control window to
    // exceed this maximum, it MUST terminate either the stream or the connection, as
    // appropriate ... FLOW_CONTROL_ERROR".
    let mut r = Raw::server(Config::default());
    let e = r.feed_frames(&[window_update(0, 0x7fff_ffff)]).unwrap_err();
    assert_eq!(e.code(), ErrorCode::FLOW_CONTROL_ERROR);
    let mut r = Raw::server(Config::default());
    let b = r.headers(1, &post("/"), false);
    r.feed(b).unwrap();
    r.written();
    r.feed_frames(&[window_update(1, 0x7fff_ffff)]).unwrap();
    assert_eq!(
        resets(&r.written()),
        vec![(1, ErrorCode::FLOW_CONTROL_ERROR)]
    );
}

#[test]
fn data_beyond_the_window_is_a_flow_control_error() {
    // §6.9.1: "A receiver MAY respond with a stream error or connection error of type
    // FLOW_CONTROL_ERROR" when a sender exceeds the window: connection window → connection.
    let mut cfg = Config::default();
    cfg.initial_connection_window = 65_535;
    cfg.initial_stream_window = 1 << 20;
    cfg.adaptive_window = false;
    let mut r = Raw::server(cfg);
    let b = r.headers(1, &post("/"), false);
    r.feed(b).unwrap();
    let big: &'static [u8] = Box::leak(vec![0u8; 16_384].into_boxed_slice());
    let frames: Vec<Frame> = (0..5).map(|_| data(1, big, false)).collect();
    let e = r.feed_frames(&frames).unwrap_err();
    assert!(matches!(
        e,
        ConnectionError::ConnectionWindowExceeded { .. }
    ));
}

#[test]
fn negative_send_window_after_settings_change() {
    // §6.9.2: "A change to SETTINGS_INITIAL_WINDOW_SIZE can cause the available space in a
    // flow-control window to become negative. A sender MUST track the negative
    // flow-control window and MUST NOT send new flow-controlled frames until it receives
    // WINDOW_UPDATE frames that cause the flow-control window to become positive."
    let mut r = Raw::client(Config::default());
    let id = r.conn.open_stream(post("/"), false).unwrap();
    r.conn
        .send_data(id, bytes::Bytes::from(vec![0u8; 60_000]), false)
        .unwrap();
    r.written();
    assert_eq!(r.conn.stream_send_window(id), Some(65_535 - 60_000));
    r.feed_frames(&[settings(vec![Setting::InitialWindowSize(1000)])])
        .unwrap();
    assert_eq!(r.conn.stream_send_window(id), Some(1000 - 60_000));
    r.conn
        .send_data(id, bytes::Bytes::from_static(b"more"), false)
        .unwrap();
    assert!(!r.written().iter().any(|f| matches!(f, Frame::Data(_))));
    r.feed_frames(&[window_update(id.value(), 59_001)]).unwrap();
    assert!(r.written().iter().any(|f| matches!(f, Frame::Data(_))));
}

#[test]
fn goaway_reports_unprocessed_streams_as_retryable() {
    // §6.8: streams above last-stream-id "were not processed" and may be retried.
    let mut r = Raw::client(Config::default());
    let a = r.conn.open_stream(get("/a"), true).unwrap();
    let b = r.conn.open_stream(get("/b"), true).unwrap();
    let c = r.conn.open_stream(get("/c"), true).unwrap();
    r.written();
    let mut buf = BytesMut::new();
    GoAwayFrame::encode_parts(a, ErrorCode::NO_ERROR, b"bye", &mut buf);
    r.feed(buf).unwrap();
    let ev = r.events();
    assert!(ev.contains(&Event::Reset {
        id: b,
        cause: ResetCause::GoAway
    }));
    assert!(ev.contains(&Event::Reset {
        id: c,
        cause: ResetCause::GoAway
    }));
    assert_eq!(r.conn.stream_ids(), vec![a]);
    assert!(r.conn.open_stream(get("/d"), true).is_err());
    // Stream a still completes, then the connection is done.
    let resp = r.headers(1, &status("200"), true);
    r.feed(resp).unwrap();
    r.written();
    assert!(r.conn.is_closed());
}

#[test]
fn hpack_context_stays_in_sync_for_refused_streams() {
    // §4.3: header blocks of streams we refuse are still decoded; later blocks using the
    // dynamic table keep working.
    let mut cfg = Config::default();
    cfg.max_concurrent_streams = 1;
    let mut r = Raw::server(cfg);
    let b = r.headers(1, &post("/"), false);
    r.feed(b).unwrap();
    let b = r.headers(3, &post("/"), false);
    r.feed(b).unwrap();
    assert_eq!(resets(&r.written()), vec![(3, ErrorCode::REFUSED_STREAM)]);
    r.feed_frames(&[data(1, b"", true)]).unwrap();
    let _ = r.events();
    // Stream 1 is half-closed (remote); finishing it frees the slot.
    r.conn.send_headers(sid(1), status("200"), true).unwrap();
    let b = r.headers(5, &post("/again"), true);
    r.feed(b).unwrap();
    assert!(r.events().iter().any(|e| matches!(e, Event::Headers { id, fields, .. } if *id == sid(5) && *fields == post("/again"))));
}

#[test]
fn unknown_frames_are_ignored() {
    // §4.1: "Implementations MUST ignore and discard frames of unknown types."
    let mut r = Raw::server(Config::default());
    let mut b = BytesMut::new();
    b.extend_from_slice(&[0, 0, 3, 0xee, 0, 0, 0, 0, 1, 1, 2, 3]);
    r.feed(b).unwrap();
    assert!(goaway_code(&r.written()).is_none());
}

#[test]
fn commands_validate_outgoing_headers() {
    let mut r = Raw::client(Config::default());
    let mut bad = get("/");
    bad.push(h("transfer-encoding", "chunked"));
    assert!(matches!(
        r.conn.open_stream(bad, true),
        Err(h2mux_proto::CommandError::InvalidHeaders(_))
    ));
    let mut r = Raw::server(Config::default());
    assert!(r.conn.open_stream(get("/"), true).is_err());
    let b = r.headers(1, &get("/"), true);
    r.feed(b).unwrap();
    assert!(r.conn.send_headers(sid(1), get("/"), true).is_err());
    assert!(r
        .conn
        .send_data(sid(1), bytes::Bytes::from_static(b"x"), true)
        .is_err());
    r.conn.send_headers(sid(1), status("200"), true).unwrap();
    assert!(r.conn.send_headers(sid(1), status("200"), true).is_err());
}

#[test]
fn streams_above_our_final_goaway_are_ignored() {
    // §6.8: "the receiver of the GOAWAY ... MUST NOT open additional streams"; the sender
    // "can ... ignore frames on streams with identifiers higher than the indicated
    // last stream identifier."
    let mut r = Raw::server(Config::default());
    let b = r.headers(1, &post("/"), false);
    r.feed(b).unwrap();
    let _ = r.events();
    r.conn.graceful_shutdown(r.now).unwrap();
    let w = r.written();
    // First GOAWAY with 2^31-1, then a PING.
    assert!(w
        .iter()
        .any(|f| matches!(f, Frame::GoAway(g) if g.last_stream_id.value() == 0x7fff_ffff)));
    let payload = w
        .iter()
        .find_map(|f| match f {
            Frame::Ping(p) if !p.ack => Some(p.payload),
            _ => None,
        })
        .expect("shutdown PING");
    r.feed_frames(&[Frame::Ping(h2mux_wire::frame::PingFrame {
        ack: true,
        payload,
    })])
    .unwrap();
    let w = r.written();
    assert!(w
        .iter()
        .any(|f| matches!(f, Frame::GoAway(g) if g.last_stream_id.value() == 1)));
    let b = r.headers(3, &get("/late"), true);
    r.feed(b).unwrap();
    assert!(!r
        .events()
        .iter()
        .any(|e| matches!(e, Event::Headers { .. })));
    // Stream 1 still completes; then the connection is closed.
    r.feed_frames(&[data(1, b"", true)]).unwrap();
    r.conn.send_headers(sid(1), status("200"), true).unwrap();
    r.written();
    assert!(r.conn.is_closed());
}

#[test]
fn abort_sends_goaway_and_is_sticky() {
    let mut r = Raw::client(Config::default());
    r.conn.open_stream(get("/"), true).unwrap();
    r.written();
    r.conn.abort(ErrorCode::INTERNAL_ERROR);
    assert_eq!(goaway_code(&r.written()), Some(ErrorCode::INTERNAL_ERROR));
    assert!(r.conn.is_closed());
    assert!(r.events().iter().any(|e| matches!(
        e,
        Event::ConnectionError(ConnectionError::LocalAbort { .. })
    )));
    assert!(matches!(
        r.conn.open_stream(get("/"), true),
        Err(h2mux_proto::CommandError::Connection(
            ConnectionError::LocalAbort { .. }
        ))
    ));
    let mut b = BytesMut::new();
    ping([0; 8]).encode(&mut b);
    assert!(matches!(r.feed(b), Err(ConnectionError::LocalAbort { .. })));
}

#[test]
fn frames_after_the_peers_reset_are_stream_closed() {
    // §5.1 closed: "An endpoint that receives any frame other than PRIORITY after receiving
    // a RST_STREAM MUST treat that as a stream error of type STREAM_CLOSED."
    let mut r = Raw::server(Config::default());
    let b = r.headers(1, &post("/"), false);
    r.feed(b).unwrap();
    r.feed_frames(&[rst(1, ErrorCode::CANCEL)]).unwrap();
    r.written();
    r.feed_frames(&[data(1, b"after", false)]).unwrap();
    assert_eq!(resets(&r.written()), vec![(1, ErrorCode::STREAM_CLOSED)]);
    // After a reset *we* sent, late frames are ignored instead.
    let b = r.headers(3, &post("/"), false);
    r.feed(b).unwrap();
    r.conn.reset(sid(3), ErrorCode::CANCEL).unwrap();
    r.written();
    r.feed_frames(&[data(3, b"in flight", false)]).unwrap();
    assert!(resets(&r.written()).is_empty());
}

#[test]
fn data_before_the_final_response_is_malformed() {
    // §8.1: a response is HEADERS (1xx HEADERS first, if any), then DATA; DATA before the
    // final HEADERS is malformed (stream error PROTOCOL_ERROR).
    let mut r = Raw::client(Config::default());
    let id = r.conn.open_stream(get("/"), true).unwrap();
    r.written();
    let b = r.headers(id.value(), &status("103"), false);
    r.feed(b).unwrap();
    r.feed_frames(&[data(id.value(), b"early", false)]).unwrap();
    assert_eq!(
        resets(&r.written()),
        vec![(id.value(), ErrorCode::PROTOCOL_ERROR)]
    );
}

#[test]
fn head_response_carries_no_content() {
    // RFC 9110 §9.3.2: the response to HEAD has no content, whatever content-length says.
    let mut r = Raw::client(Config::default());
    let head = vec![
        h(":method", "HEAD"),
        h(":scheme", "https"),
        h(":path", "/"),
        h(":authority", "x"),
    ];
    let id = r.conn.open_stream(head, true).unwrap();
    r.written();
    let mut resp = status("200");
    resp.push(h("content-length", "1000"));
    let b = r.headers(id.value(), &resp, false);
    r.feed(b).unwrap();
    r.feed_frames(&[data(id.value(), b"", true)]).unwrap();
    assert!(resets(&r.written()).is_empty());
    let id = r.conn.open_stream(get("/"), true).unwrap();
    let id2 = r
        .conn
        .open_stream(
            vec![
                h(":method", "HEAD"),
                h(":scheme", "https"),
                h(":path", "/"),
                h(":authority", "x"),
            ],
            true,
        )
        .unwrap();
    r.written();
    let b = r.headers(id2.value(), &resp, false);
    r.feed(b).unwrap();
    r.feed_frames(&[data(id2.value(), b"body", true)]).unwrap();
    assert_eq!(
        resets(&r.written()),
        vec![(id2.value(), ErrorCode::PROTOCOL_ERROR)]
    );
    let _ = id;
}
