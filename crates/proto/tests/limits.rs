//! Limits against hostile peers (issue 4, item 6): each one crossed, with its typed error.

// Tests read best as "defaults, then the one knob under test".
#![allow(clippy::field_reassign_with_default)]

mod common;

use bytes::BytesMut;
use common::*;
use h2mux_proto::{Config, ConnectionError, Event};
use h2mux_wire::frame::Frame;
use h2mux_wire::ErrorCode;
use std::time::Duration;

#[test]
fn ping_flood_without_writing_is_cut_off() {
    let mut r = Raw::server(Config::default());
    r.written();
    let flood: Vec<Frame> = (0..5000).map(|_| ping([1; 8])).collect();
    assert_eq!(
        r.feed_frames(&flood),
        Err(ConnectionError::ControlFrameFlood { limit: 4096 })
    );
    assert_eq!(
        goaway_code(&r.written()),
        Some(ErrorCode::ENHANCE_YOUR_CALM)
    );
}

#[test]
fn pings_answered_as_they_come_are_fine() {
    let mut r = Raw::server(Config::default());
    for _ in 0..10 {
        let batch: Vec<Frame> = (0..1000).map(|_| ping([2; 8])).collect();
        r.feed_frames(&batch).unwrap();
        let acks = r
            .written()
            .iter()
            .filter(|f| matches!(f, Frame::Ping(p) if p.ack))
            .count();
        assert_eq!(acks, 1000);
    }
}

#[test]
fn settings_flood_is_cut_off() {
    let mut r = Raw::server(Config::default());
    let flood: Vec<Frame> = (0..5000).map(|_| settings(vec![])).collect();
    assert!(matches!(
        r.feed_frames(&flood),
        Err(ConnectionError::ControlFrameFlood { .. })
    ));
}

#[test]
fn rapid_reset_is_detected() {
    // CVE-2023-44487: open and immediately reset streams.
    let mut r = Raw::server(Config::default());
    let mut res = Ok(());
    for i in 0..201u32 {
        let id = 1 + 2 * i;
        let mut b = r.headers(id, &get("/"), true);
        let mut rb = BytesMut::new();
        rst(id, ErrorCode::CANCEL).encode(&mut rb);
        b.extend_from_slice(&rb);
        res = r.feed(b);
        if res.is_err() {
            break;
        }
        r.written();
    }
    assert_eq!(res, Err(ConnectionError::RapidReset { limit: 200 }));
    assert_eq!(
        goaway_code(&r.written()),
        Some(ErrorCode::ENHANCE_YOUR_CALM)
    );
}

#[test]
fn resets_spread_over_time_are_allowed() {
    let mut r = Raw::server(Config::default());
    for i in 0..400u32 {
        let id = 1 + 2 * i;
        let mut b = r.headers(id, &get("/"), true);
        rst(id, ErrorCode::CANCEL).encode(&mut b);
        r.feed(b).unwrap();
        r.written();
        r.now += Duration::from_millis(100); // 100 per 10 s window
    }
}

#[test]
fn made_you_reset_is_detected() {
    // Malformed requests make us send RST_STREAM; too many per window end the connection.
    let mut r = Raw::server(Config::default());
    let mut bad = get("/");
    bad.push(h("connection", "close"));
    let mut res = Ok(());
    for i in 0..201u32 {
        let b = r.headers(1 + 2 * i, &bad, true);
        res = r.feed(b);
        if res.is_err() {
            break;
        }
        r.written();
    }
    assert_eq!(res, Err(ConnectionError::TooManyResetsSent { limit: 200 }));
}

#[test]
fn continuation_flood_is_cut_off() {
    let mut cfg = Config::default();
    cfg.max_empty_frames = 1_000_000;
    let mut r = Raw::server(cfg);
    let b = r.headers_open(1, &get("/"));
    r.feed(b).unwrap();
    let flood: Vec<Frame> = (0..33).map(|_| continuation(1, b"", false)).collect();
    assert_eq!(
        r.feed_frames(&flood),
        Err(ConnectionError::TooManyContinuations { limit: 32 })
    );
}

#[test]
fn oversized_header_block_is_cut_off() {
    let mut cfg = Config::default();
    cfg.max_header_block_size = 1000;
    let mut r = Raw::server(cfg);
    let b = r.headers_open(1, &get("/"));
    r.feed(b).unwrap();
    let chunk: &'static [u8] = Box::leak(vec![0u8; 600].into_boxed_slice());
    let e = r
        .feed_frames(&[continuation(1, chunk, false), continuation(1, chunk, false)])
        .unwrap_err();
    assert_eq!(e, ConnectionError::HeaderBlockTooLarge { limit: 1000 });
}

#[test]
fn empty_frame_flood_is_cut_off() {
    let mut r = Raw::server(Config::default());
    let b = r.headers(1, &post("/"), false);
    r.feed(b).unwrap();
    let flood: Vec<Frame> = (0..1001).map(|_| data(1, b"", false)).collect();
    assert_eq!(
        r.feed_frames(&flood),
        Err(ConnectionError::TooManyEmptyFrames { limit: 1000 })
    );
}

#[test]
fn pending_accept_streams_are_bounded() {
    let mut cfg = Config::default();
    cfg.max_pending_accept = 2;
    let mut r = Raw::server(cfg);
    for id in [1, 3, 5] {
        let b = r.headers(id, &post("/"), false);
        r.feed(b).unwrap();
    }
    assert_eq!(resets(&r.written()), vec![(5, ErrorCode::REFUSED_STREAM)]);
    // The application accepts them: room again.
    let _ = r.events();
    let b = r.headers(7, &post("/"), false);
    r.feed(b).unwrap();
    assert!(resets(&r.written()).is_empty());
}

#[test]
fn header_list_too_large_resets_only_the_stream() {
    let mut cfg = Config::default();
    cfg.max_header_list_size = 200;
    let mut r = Raw::server(cfg);
    let mut big = get("/");
    big.push(h(
        "x-big",
        "0123456789012345678901234567890123456789012345678901234567890123456789",
    ));
    let b = r.headers(1, &big, true);
    r.feed(b).unwrap();
    assert_eq!(resets(&r.written()), vec![(1, ErrorCode::PROTOCOL_ERROR)]);
    // HPACK stayed in sync: the next request decodes.
    let b = r.headers(3, &get("/small"), true);
    r.feed(b).unwrap();
    let ev = r.events();
    assert!(ev
        .iter()
        .any(|e| matches!(e, Event::Headers { fields, .. } if *fields == get("/small"))));
    // The refused stream never reached the application.
    assert!(!ev
        .iter()
        .any(|e| matches!(e, Event::Headers { id, .. } if id.value() == 1)));
}

#[test]
fn closed_stream_memory_is_bounded() {
    let mut cfg = Config::default();
    cfg.closed_stream_memory = 4;
    let mut r = Raw::server(cfg);
    for id in [1u32, 3, 5, 7, 9, 11] {
        let b = r.headers(id, &post("/"), false);
        r.feed(b).unwrap();
        r.conn.reset(sid(id), ErrorCode::CANCEL).unwrap();
    }
    r.written();
    // Stream 11 is remembered as reset by us: late DATA is ignored.
    r.feed_frames(&[data(11, b"late", false)]).unwrap();
    assert!(resets(&r.written()).is_empty());
    // Stream 1 was forgotten: late DATA on it is answered with STREAM_CLOSED.
    r.feed_frames(&[data(1, b"late", false)]).unwrap();
    assert_eq!(resets(&r.written()), vec![(1, ErrorCode::STREAM_CLOSED)]);
}

#[test]
fn received_bytes_are_bounded_by_the_windows() {
    // Bytes buffered per stream are bounded by the stream window the application has not
    // released; more is a flow-control error.
    let mut cfg = Config::default();
    cfg.initial_stream_window = 32_768;
    cfg.adaptive_window = false;
    let mut r = Raw::server(cfg);
    let b = r.headers(1, &post("/"), false);
    r.feed(b).unwrap();
    let chunk: &'static [u8] = Box::leak(vec![0u8; 16_384].into_boxed_slice());
    r.feed_frames(&[data(1, chunk, false), data(1, chunk, false)])
        .unwrap();
    r.written();
    r.feed_frames(&[data(1, b"x", false)]).unwrap();
    assert_eq!(
        resets(&r.written()),
        vec![(1, ErrorCode::FLOW_CONTROL_ERROR)]
    );
}

fn priority(id: u32, on: u32) -> Frame {
    Frame::Priority(h2mux_wire::frame::PriorityFrame {
        stream_id: sid(id),
        priority: h2mux_wire::frame::PrioritySpec {
            dependency: sid(on),
            exclusive: false,
            weight: 15,
        },
    })
}

#[test]
fn priority_flood_is_cut_off() {
    // CVE-2019-9513: we keep no tree, but PRIORITY frames without end are still work.
    let mut r = Raw::server(Config::default());
    // Valid ones and self-dependent ones (a frame error on an idle stream, otherwise
    // ignored) count alike.
    let flood: Vec<Frame> = (0..1001u32)
        .map(|i| priority(1 + 2 * (i % 50), 3))
        .collect();
    assert_eq!(
        r.feed_frames(&flood),
        Err(ConnectionError::TooManyPriorityFrames { limit: 1000 })
    );
    assert_eq!(
        goaway_code(&r.written()),
        Some(ErrorCode::ENHANCE_YOUR_CALM)
    );
}

#[test]
fn priority_frames_spread_over_time_are_allowed() {
    let mut r = Raw::server(Config::default());
    for i in 0..3000u32 {
        r.feed_frames(&[priority(1 + 2 * (i % 50), 3)]).unwrap();
        r.now += Duration::from_millis(20); // 500 per 10 s window
    }
}

/// A server with `n` bytes of a response queued on stream 1 behind a stream window the
/// client set to `window` octets.
fn server_with_queued_response(window: u32, n: usize) -> Raw {
    use h2mux_wire::frame::Setting;
    let mut r = Raw::server(Config::default());
    r.feed_frames(&[settings(vec![Setting::InitialWindowSize(window)])])
        .unwrap();
    let b = r.headers(1, &get("/"), true);
    r.feed(b).unwrap();
    r.events();
    r.conn.send_headers(sid(1), status("200"), false).unwrap();
    r.conn
        .send_data(sid(1), bytes::Bytes::from(vec![0u8; n]), true)
        .unwrap();
    r.written();
    r
}

#[test]
fn data_dribble_is_cut_off() {
    // CVE-2019-9511: a 1-octet window reopened one octet at a time while 1 MiB waits.
    let mut r = server_with_queued_response(1, 1 << 20);
    let mut res = Ok(());
    let mut updates = 0;
    while res.is_ok() && updates < 5000 {
        res = r.feed_frames(&[window_update(1, 1)]);
        updates += 1;
        r.written();
    }
    assert_eq!(
        res,
        Err(ConnectionError::TooManySmallWindowUpdates { limit: 1000 })
    );
    assert_eq!(updates, 1001);
}

#[test]
fn dribble_counts_before_the_response_is_queued() {
    // Under a flood the application may not have queued its response yet: the tiny
    // increments on the open stream count all the same.
    use h2mux_wire::frame::Setting;
    let mut r = Raw::server(Config::default());
    r.feed_frames(&[settings(vec![Setting::InitialWindowSize(1)])])
        .unwrap();
    let b = r.headers(1, &get("/"), true);
    r.feed(b).unwrap();
    r.events();
    r.conn.send_headers(sid(1), status("200"), false).unwrap();
    let flood: Vec<Frame> = (0..1001).map(|_| window_update(1, 1)).collect();
    assert_eq!(
        r.feed_frames(&flood),
        Err(ConnectionError::TooManySmallWindowUpdates { limit: 1000 })
    );
}

#[test]
fn ordinary_window_updates_are_not_dribble() {
    // The same 1 MiB through a 16 KiB window reopened in 16 KiB steps, and many small
    // updates once nothing is queued any more: never a small-window update.
    let mut r = server_with_queued_response(16_384, 1 << 20);
    for _ in 0..64 {
        r.feed_frames(&[window_update(1, 16_384), window_update(0, 16_384)])
            .unwrap();
        r.written();
    }
    let mut r = server_with_queued_response(65_535, 10);
    for _ in 0..5000 {
        r.feed_frames(&[window_update(0, 1)]).unwrap();
    }
    // A client acknowledging every small response frame by frame, on streams that are done.
    let mut r = Raw::server(Config::default());
    for i in 0..2000u32 {
        let id = 1 + 2 * i;
        let b = r.headers(id, &get("/"), true);
        r.feed(b).unwrap();
        r.events();
        r.conn.send_headers(sid(id), status("200"), false).unwrap();
        r.conn
            .send_data(sid(id), bytes::Bytes::from_static(b"small"), true)
            .unwrap();
        r.written();
        r.feed_frames(&[window_update(id, 5), window_update(0, 5)])
            .unwrap();
    }
}
