//! Feature tests through the in-memory pair (client core ↔ server core, virtual time).

// Tests read best as "defaults, then the one knob under test".
#![allow(clippy::field_reassign_with_default)]

mod common;

use bytes::Bytes;
use common::*;
use h2mux_proto::pair::Pair;
use h2mux_proto::{CommandError, Config, ErrorCode, Event, ResetCause, StreamState};
use std::time::Duration;

fn respond(p: &mut Pair, id: h2mux_proto::StreamId, body: &'static [u8]) {
    p.server
        .conn
        .send_headers(id, status("200"), body.is_empty())
        .unwrap();
    if !body.is_empty() {
        p.server
            .conn
            .send_data(id, Bytes::from_static(body), true)
            .unwrap();
    }
}

#[test]
fn handshake_exchanges_settings() {
    let p = Pair::connected();
    // Both sides applied the other's SETTINGS (RFC 9113 §3.4: "the SETTINGS frame ... MUST
    // be the first frame"; both ends then see the advertised values).
    assert_eq!(p.client.conn.peer_settings().max_frame_size, 1 << 20);
    assert_eq!(p.server.conn.peer_settings().max_frame_size, 1 << 20);
    assert_eq!(p.client.conn.peer_settings().initial_window_size, 2 << 20);
    assert_eq!(p.client.conn.peer_settings().max_concurrent_streams, 256);
    assert!(!p.client.conn.peer_settings().enable_push);
    // The connection window was raised to 4 MiB at once.
    assert_eq!(p.client.conn.connection_send_window(), 4 << 20);
    assert!(p.client.error.is_none() && p.server.error.is_none());
    // Settings were acknowledged: no timer left.
    assert_eq!(p.client.conn.poll_timeout(), None);
    assert_eq!(p.server.conn.poll_timeout(), None);
}

fn request_response(piece: Option<usize>) {
    let mut p = Pair::new(Config::default(), Config::default());
    p.c2s.piece = piece;
    p.s2c.piece = piece;
    let id = p.client.conn.open_stream(get("/hello"), true).unwrap();
    assert_eq!(id, sid(1));
    p.run();
    let Some(Event::Headers {
        id: sid_s,
        fields,
        end_stream: true,
    }) = p.server.take(|e| matches!(e, Event::Headers { .. }))
    else {
        panic!("no request: {:?}", p.server.events)
    };
    assert_eq!(sid_s, id);
    assert_eq!(fields, get("/hello"));
    respond(&mut p, id, b"hello world");
    p.run();
    let Some(Event::Headers {
        fields,
        end_stream: false,
        ..
    }) = p.client.take(|e| matches!(e, Event::Headers { .. }))
    else {
        panic!("no response")
    };
    assert_eq!(fields, status("200"));
    let Some(Event::Data {
        data,
        end_stream: true,
        ..
    }) = p.client.take(|e| matches!(e, Event::Data { .. }))
    else {
        panic!("no data")
    };
    assert_eq!(&data[..], b"hello world");
    // Both sides closed and forgot the stream (RFC 9113 §5.1 "closed").
    assert!(p.client.conn.stream_ids().is_empty());
    assert!(p.server.conn.stream_ids().is_empty());
}

#[test]
fn request_response_roundtrip() {
    request_response(None);
}

#[test]
fn request_response_byte_by_byte() {
    request_response(Some(1));
}

#[test]
fn request_response_in_7_byte_pieces() {
    request_response(Some(7));
}

#[test]
fn post_body_and_trailers() {
    let mut p = Pair::connected();
    let id = p.client.conn.open_stream(post("/up"), false).unwrap();
    p.client
        .conn
        .send_data(id, Bytes::from_static(b"abc"), false)
        .unwrap();
    p.client
        .conn
        .send_data(id, Bytes::from_static(b"def"), false)
        .unwrap();
    p.client
        .conn
        .send_trailers(id, vec![h("x-checksum", "42")])
        .unwrap();
    // Nothing may follow END_STREAM.
    assert!(matches!(
        p.client.conn.send_data(id, Bytes::from_static(b"x"), false),
        Err(CommandError::InvalidState { .. })
    ));
    p.run();
    assert_eq!(p.server.received.get(&id), Some(&6));
    let t = p.server.take(|e| matches!(e, Event::Trailers { .. }));
    assert_eq!(
        t,
        Some(Event::Trailers {
            id,
            fields: vec![h("x-checksum", "42")]
        })
    );
    assert_eq!(
        p.server.conn.stream_state(id),
        Some(StreamState::HalfClosedRemote)
    );
    // Response with trailers too.
    p.server
        .conn
        .send_headers(id, status("200"), false)
        .unwrap();
    p.server
        .conn
        .send_data(id, Bytes::from_static(b"ok"), false)
        .unwrap();
    p.server
        .conn
        .send_trailers(id, vec![h("grpc-status", "0")])
        .unwrap();
    p.run();
    assert!(p.client.ended.contains(&id));
    assert!(p
        .client
        .take(|e| matches!(e, Event::Trailers { .. }))
        .is_some());
    assert!(p.client.conn.stream_ids().is_empty());
    assert!(p.server.conn.stream_ids().is_empty());
}

#[test]
fn informational_response_then_final() {
    let mut p = Pair::connected();
    let id = p.client.conn.open_stream(get("/"), true).unwrap();
    p.run();
    p.server
        .conn
        .send_headers(id, status("103"), false)
        .unwrap();
    // 1xx never ends a stream.
    assert!(p.server.conn.send_headers(id, status("100"), true).is_err());
    p.server.conn.send_headers(id, status("204"), true).unwrap();
    p.run();
    let heads: Vec<_> = p
        .client
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Headers {
                fields, end_stream, ..
            } => Some((fields[0].value.clone(), *end_stream)),
            _ => None,
        })
        .collect();
    assert_eq!(
        heads,
        vec![
            (Bytes::from_static(b"103"), false),
            (Bytes::from_static(b"204"), true)
        ]
    );
}

#[test]
fn large_body_uses_large_frames_and_flows() {
    let mut p = Pair::connected();
    let id = p.client.conn.open_stream(get("/big"), true).unwrap();
    p.run();
    p.server.keep_data = false;
    p.client.keep_data = false;
    p.server
        .conn
        .send_headers(id, status("200"), false)
        .unwrap();
    let mib = Bytes::from(vec![7u8; 1 << 20]);
    for i in 0..64 {
        p.server.conn.send_data(id, mib.clone(), i == 63).unwrap();
    }
    p.run();
    assert_eq!(p.client.received.get(&id), Some(&(64 << 20)));
    assert!(p.client.ended.contains(&id));
    // "send DATA frames as large as the peer allows": 1 MiB frames.
    assert_eq!(p.s2c.sent.max_data_frame, 1 << 20);
    assert_eq!(p.s2c.sent.window_updates_after_end, 0);
    assert_eq!(p.c2s.sent.window_updates_after_end, 0);
}

#[test]
fn slow_reader_applies_back_pressure() {
    let mut p = Pair::connected();
    p.client.auto_release = false;
    p.client.keep_data = true;
    let id = p.client.conn.open_stream(get("/big"), true).unwrap();
    p.run();
    p.server
        .conn
        .send_headers(id, status("200"), false)
        .unwrap();
    p.server
        .conn
        .send_data(id, Bytes::from(vec![1u8; 16 << 20]), true)
        .unwrap();
    p.run();
    // The client never released anything: exactly the initial stream window (2 MiB) arrived,
    // the rest waits at the sender (RFC 9113 §5.2: flow control bounds what is buffered).
    assert_eq!(p.client.received.get(&id), Some(&(2 << 20)));
    assert_eq!(p.client.conn.recv_buffered(id), Some(2 << 20));
    assert_eq!(p.server.conn.send_buffered(id), Some(14 << 20));
    assert_eq!(p.server.conn.send_window(id), Some(0));
    // Releasing a little is not worth a WINDOW_UPDATE yet (batching: half the window).
    let before = p.s2c.delivered.frames[8] + p.c2s.delivered.frames[8];
    p.client.conn.release_capacity(id, 100_000).unwrap();
    p.run();
    assert_eq!(
        p.c2s.delivered.frames[8] + p.s2c.delivered.frames[8],
        before
    );
    // Releasing half the window lets the server send again.
    p.client.conn.release_capacity(id, 1 << 20).unwrap();
    p.run();
    assert!(p.client.received[&id] > 2 << 20);
    // Now read everything.
    p.client.auto_release = true;
    let buffered = p.client.conn.recv_buffered(id).unwrap_or(0);
    p.client
        .conn
        .release_capacity(id, buffered as usize)
        .unwrap();
    p.run();
    assert_eq!(p.client.received.get(&id), Some(&(16 << 20)));
}

#[test]
fn streams_share_the_connection_round_robin() {
    let mut cfg = Config::default();
    cfg.max_transmit_bytes = 1 << 20;
    let mut client = Config::default();
    client.max_frame_size = 256 << 10;
    let mut p = Pair::new(client, cfg);
    p.run();
    p.client.keep_data = false;
    let a = p.client.conn.open_stream(get("/a"), true).unwrap();
    let b = p.client.conn.open_stream(get("/b"), true).unwrap();
    p.run();
    let body = Bytes::from(vec![0u8; 8 << 20]);
    for id in [a, b] {
        p.server
            .conn
            .send_headers(id, status("200"), false)
            .unwrap();
        p.server.conn.send_data(id, body.clone(), true).unwrap();
    }
    // Frames are 256 KiB here so turns are visible.
    let mut chunks = Vec::new();
    p.server.conn.poll_transmit(p.now, &mut chunks);
    let sent_a = 8usize << 20;
    let a_left = p.server.conn.send_buffered(a).unwrap();
    let b_left = p.server.conn.send_buffered(b).unwrap();
    // Both made progress in the same transmit (not first-come-takes-all).
    assert!(a_left < sent_a && b_left < sent_a, "{a_left} {b_left}");
    assert!(a_left.abs_diff(b_left) <= 1 << 20, "{a_left} {b_left}");
}

#[test]
fn client_queues_streams_at_peer_concurrency_limit() {
    let mut server = Config::default();
    server.max_concurrent_streams = 2;
    let mut p = Pair::new(Config::default(), server);
    p.run();
    assert_eq!(p.client.conn.open_streams_available(), 2);
    let ids: Vec<_> = (0..5)
        .map(|i| {
            let (fields, end) = if i == 2 {
                (post("/"), false)
            } else {
                (get("/"), true)
            };
            p.client.conn.open_stream(fields, end).unwrap()
        })
        .collect();
    assert_eq!(ids, vec![sid(1), sid(3), sid(5), sid(7), sid(9)]);
    assert!(!p.client.conn.is_queued(ids[1]));
    assert!(p.client.conn.is_queued(ids[2]));
    assert_eq!(p.client.conn.open_streams_available(), 0);
    p.run();
    let reqs = |p: &mut Pair| {
        let mut v = Vec::new();
        while let Some(Event::Headers { id, .. }) =
            p.server.take(|e| matches!(e, Event::Headers { .. }))
        {
            v.push(id);
        }
        v
    };
    // RFC 9113 §5.1.2: "Endpoints MUST NOT exceed the limit set by their peer."
    assert_eq!(reqs(&mut p), vec![sid(1), sid(3)]);
    // A queued stream may already carry data: it follows its HEADERS once a slot frees.
    p.client
        .conn
        .send_data(ids[2], Bytes::from_static(b"queued body"), true)
        .unwrap();
    respond(&mut p, sid(1), b"");
    p.run();
    assert_eq!(reqs(&mut p), vec![sid(5)]);
    assert_eq!(p.server.received.get(&sid(5)), Some(&11));
    respond(&mut p, sid(3), b"");
    respond(&mut p, sid(5), b"x");
    p.run();
    assert_eq!(reqs(&mut p), vec![sid(7), sid(9)]);
    assert!(p.server.error.is_none());
    assert_eq!(p.server.conn.stats().resets_sent, 0);
}

#[test]
fn server_refuses_streams_over_its_limit() {
    let mut server = Config::default();
    server.max_concurrent_streams = 2;
    let mut p = Pair::new(Config::default(), server);
    // Opened before the server's SETTINGS arrived: the client does not know the limit yet.
    for _ in 0..4 {
        p.client.conn.open_stream(get("/"), true).unwrap();
    }
    p.run();
    // §5.1.2: "... MUST treat this as a stream error of type PROTOCOL_ERROR or
    // REFUSED_STREAM".
    let refused: Vec<_> = p
        .client
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Reset { id, cause } => Some((*id, cause.is_retryable())),
            _ => None,
        })
        .collect();
    assert_eq!(refused, vec![(sid(5), true), (sid(7), true)]);
    assert_eq!(p.server.conn.stats().resets_sent, 2);
}

#[test]
fn reset_both_ways() {
    let mut p = Pair::connected();
    let a = p.client.conn.open_stream(post("/a"), false).unwrap();
    let b = p.client.conn.open_stream(post("/b"), false).unwrap();
    p.run();
    p.client.conn.reset(a, ErrorCode::CANCEL).unwrap();
    p.server.conn.reset(b, ErrorCode::INTERNAL_ERROR).unwrap();
    p.run();
    assert!(p.server.events.contains(&Event::Reset {
        id: a,
        cause: ResetCause::Remote(ErrorCode::CANCEL)
    }));
    assert!(p.client.events.contains(&Event::Reset {
        id: b,
        cause: ResetCause::Remote(ErrorCode::INTERNAL_ERROR)
    }));
    assert!(p.client.conn.stream_ids().is_empty());
    assert!(p.server.conn.stream_ids().is_empty());
    // Late frames on a stream we reset are ignored (§5.1), not errors.
    assert!(p.client.conn.reset(a, ErrorCode::CANCEL).is_ok());
    assert!(p.client.error.is_none() && p.server.error.is_none());
}

#[test]
fn data_in_flight_after_reset_is_ignored_and_credited() {
    let mut p = Pair::connected();
    p.s2c.latency = Duration::from_millis(10);
    p.c2s.latency = Duration::from_millis(10);
    let id = p.client.conn.open_stream(get("/"), true).unwrap();
    p.run();
    p.server
        .conn
        .send_headers(id, status("200"), false)
        .unwrap();
    p.server
        .conn
        .send_data(id, Bytes::from(vec![0u8; 1 << 20]), false)
        .unwrap();
    p.step(); // the server writes; the bytes are in flight
    p.client.conn.reset(id, ErrorCode::CANCEL).unwrap();
    p.run();
    assert!(p.client.error.is_none(), "{:?}", p.client.error);
    assert_eq!(p.client.received.get(&id), None);
    assert_eq!(p.client.conn.stats().resets_sent, 1);
    // The ignored DATA still counted against, and was credited back to, the connection
    // window (§6.9: flow control applies to every DATA frame): a whole connection window
    // (4 MiB) still flows on a new stream.
    let id2 = p.client.conn.open_stream(get("/2"), true).unwrap();
    p.run();
    p.server
        .conn
        .send_headers(id2, status("200"), false)
        .unwrap();
    p.server
        .conn
        .send_data(id2, Bytes::from(vec![0u8; 4 << 20]), true)
        .unwrap();
    p.run();
    assert_eq!(p.client.received.get(&id2), Some(&(4 << 20)));
}

#[test]
fn ping_measures_rtt() {
    let mut p = Pair::connected();
    p.set_link(Duration::from_millis(25), None);
    let t0 = p.now;
    p.client.conn.ping(t0).unwrap();
    p.run();
    let Some(Event::PingAck { rtt }) = p.client.take(|e| matches!(e, Event::PingAck { .. })) else {
        panic!("no ping ack")
    };
    assert_eq!(rtt, Duration::from_millis(50));
}

#[test]
fn keepalive_pings_idle_connection_and_times_out_dead_peer() {
    let mut c = Config::default();
    c.keepalive_interval = Some(Duration::from_secs(5));
    c.keepalive_timeout = Duration::from_secs(3);
    let mut p = Pair::new(c, Config::default());
    p.run();
    // An idle but live peer: PINGs go out and are answered, the connection stays up.
    assert!(
        !p.run_until(Duration::from_secs(60), |p| p.client.error.is_some()
            || p.client.conn.error().is_some())
    );
    assert!(p.client.conn.stats().pings_sent >= 10);
    // The peer goes silent (its bytes never arrive).
    p.s2c.latency = Duration::from_secs(3600);
    let ok = p.run_until(Duration::from_secs(30), |p| p.client.conn.error().is_some());
    assert!(ok);
    assert_eq!(
        p.client.conn.error(),
        Some(&h2mux_proto::ConnectionError::KeepaliveTimeout)
    );
}

#[test]
fn settings_ack_timeout() {
    let mut p = Pair::new(Config::default(), Config::default());
    p.s2c.latency = Duration::from_secs(3600);
    // RFC 9113 §6.5.3: "If the sender of a SETTINGS frame does not receive an
    // acknowledgment within a reasonable amount of time, it MAY issue a connection error of
    // type SETTINGS_TIMEOUT."
    assert!(p.run_until(Duration::from_secs(11), |p| p.client.conn.error().is_some()));
    assert_eq!(
        p.client.conn.error().map(|e| e.code()),
        Some(ErrorCode::SETTINGS_TIMEOUT)
    );
}

#[test]
fn graceful_shutdown_drains_streams_in_flight() {
    let mut p = Pair::connected();
    p.set_link(Duration::from_millis(5), None);
    let a = p.client.conn.open_stream(get("/a"), true).unwrap();
    p.run();
    p.server.conn.graceful_shutdown(p.now).unwrap();
    // A request crossing the first GOAWAY is still processed (two-step GOAWAY, §6.8).
    let b = p.client.conn.open_stream(get("/b"), true).unwrap();
    p.run();
    assert!(p
        .client
        .events
        .iter()
        .any(|e| matches!(e, Event::GoAway { code, .. } if *code == ErrorCode::NO_ERROR)));
    assert_eq!(
        p.client.conn.open_stream(get("/c"), true),
        Err(CommandError::GoingAway)
    );
    assert!(!p.server.conn.is_closed());
    respond(&mut p, a, b"A");
    respond(&mut p, b, b"B");
    p.run();
    assert_eq!(p.client.received.get(&a), Some(&1));
    assert_eq!(p.client.received.get(&b), Some(&1));
    assert!(p.server.conn.is_closed());
    assert!(p.client.conn.is_closed());
    assert!(p.client.error.is_none() && p.server.error.is_none());
}

#[test]
fn initial_window_change_adjusts_open_streams() {
    let mut p = Pair::connected();
    let id = p.client.conn.open_stream(post("/"), false).unwrap();
    p.run();
    assert_eq!(p.client.conn.stream_send_window(id), Some(2 << 20));
    // RFC 9113 §6.9.2: "a receiver MUST adjust the size of all stream flow-control windows
    // that it maintains by the difference between the new value and the old value."
    p.server
        .conn
        .update_settings(
            h2mux_proto::SettingsUpdate {
                initial_window_size: Some(1 << 20),
                ..Default::default()
            },
            p.now,
        )
        .unwrap();
    p.run();
    assert_eq!(p.client.conn.stream_send_window(id), Some(1 << 20));
    assert_eq!(p.server.conn.stream_recv_window(id), Some(1 << 20));
    p.client
        .conn
        .send_data(id, Bytes::from(vec![0u8; 3 << 20]), true)
        .unwrap();
    p.run();
    assert_eq!(p.server.received.get(&id), Some(&(3 << 20)));
    assert!(p.client.error.is_none() && p.server.error.is_none());
}

#[test]
fn writable_event_after_send_buffer_drains() {
    let mut c = Config::default();
    c.send_buffer_per_stream = 1 << 20;
    let mut p = Pair::new(c, Config::default());
    p.run();
    p.server.keep_data = false;
    let id = p.client.conn.open_stream(post("/"), false).unwrap();
    p.client
        .conn
        .send_data(id, Bytes::from(vec![0u8; 4 << 20]), false)
        .unwrap();
    assert_eq!(p.client.conn.send_capacity(id), Some(0));
    p.run();
    assert!(p.client.events.contains(&Event::Writable { id }));
    assert_eq!(p.client.conn.send_capacity(id), Some(1 << 20));
}

#[test]
fn peer_frame_size_and_header_list_limits_are_honoured() {
    // §6.5.2 SETTINGS_MAX_FRAME_SIZE: we never send a frame larger than the peer allows.
    let mut client = Config::default();
    client.max_frame_size = 16_384;
    client.max_header_list_size = 300;
    let mut p = Pair::new(client, Config::default());
    p.run();
    p.client.keep_data = false;
    let id = p.client.conn.open_stream(get("/"), true).unwrap();
    p.run();
    p.server
        .conn
        .send_headers(id, status("200"), false)
        .unwrap();
    p.server
        .conn
        .send_data(id, Bytes::from(vec![1u8; 1 << 20]), true)
        .unwrap();
    p.run();
    assert_eq!(p.client.received.get(&id), Some(&(1 << 20)));
    assert_eq!(p.s2c.sent.max_data_frame, 16_384);
    assert_eq!(p.s2c.sent.frames[0], 64);
    // SETTINGS_MAX_HEADER_LIST_SIZE is advisory for the sender; we refuse to send a list
    // the peer announced it would reject.
    let id = p.client.conn.open_stream(get("/2"), true).unwrap();
    p.run();
    let mut big = status("200");
    big.push(h("x-big", "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"));
    assert!(matches!(
        p.server.conn.send_headers(id, big, true),
        Err(CommandError::HeaderListTooLarge { limit: 300, .. })
    ));
}

#[test]
fn our_frame_size_change_takes_effect_after_ack() {
    let mut client = Config::default();
    client.max_frame_size = 16_384;
    let mut p = Pair::new(client, Config::default());
    p.run();
    p.client.keep_data = false;
    p.client
        .conn
        .update_settings(
            h2mux_proto::SettingsUpdate {
                max_frame_size: Some(65_536),
                ..Default::default()
            },
            p.now,
        )
        .unwrap();
    p.run();
    assert_eq!(p.server.conn.peer_settings().max_frame_size, 65_536);
    let id = p.client.conn.open_stream(get("/"), true).unwrap();
    p.run();
    p.server
        .conn
        .send_headers(id, status("200"), false)
        .unwrap();
    p.server
        .conn
        .send_data(id, Bytes::from(vec![1u8; 1 << 20]), true)
        .unwrap();
    p.run();
    assert_eq!(p.s2c.sent.max_data_frame, 65_536);
    assert!(p.client.error.is_none());
}

#[test]
fn queued_streams_get_no_window_update_before_their_headers() {
    // Found by the property test: a WINDOW_UPDATE for a stream still queued for a
    // concurrency slot names an idle stream (§5.1: connection error at the peer).
    let mut server = Config::default();
    server.max_concurrent_streams = 1;
    let mut p = Pair::new(Config::default(), server);
    p.run();
    let a = p.client.conn.open_stream(get("/a"), true).unwrap();
    let b = p.client.conn.open_stream(post("/b"), false).unwrap();
    assert!(p.client.conn.is_queued(b));
    // Growing our initial window dirties every stream's receive window.
    p.client
        .conn
        .update_settings(
            h2mux_proto::SettingsUpdate {
                initial_window_size: Some(4 << 20),
                ..Default::default()
            },
            p.now,
        )
        .unwrap();
    p.run();
    assert!(p.server.error.is_none(), "{:?}", p.server.error);
    respond(&mut p, a, b"");
    p.run();
    assert!(!p.client.conn.is_queued(b));
    assert_eq!(p.server.conn.stream_send_window(b), Some(4 << 20));
    assert!(p.server.error.is_none() && p.client.error.is_none());
}

#[test]
fn goaway_refuses_streams_still_queued() {
    // §6.8: "Receivers of a GOAWAY frame MUST NOT open new streams on the connection" —
    // including the ones waiting for a concurrency slot.
    let mut server = Config::default();
    server.max_concurrent_streams = 1;
    let mut p = Pair::new(Config::default(), server);
    p.run();
    let a = p.client.conn.open_stream(get("/a"), true).unwrap();
    let b = p.client.conn.open_stream(get("/b"), true).unwrap();
    p.run();
    p.server.conn.graceful_shutdown(p.now).unwrap();
    p.run();
    assert!(p.client.events.contains(&Event::Reset {
        id: b,
        cause: ResetCause::GoAway
    }));
    respond(&mut p, a, b"ok");
    p.run();
    assert_eq!(p.client.received.get(&a), Some(&2));
    assert!(p.client.conn.is_closed() && p.server.conn.is_closed());
    assert!(p.server.error.is_none() && p.client.error.is_none());
}

#[test]
fn connection_is_send_and_sync() {
    // The driver moves a Connection into its task.
    fn check<T: Send + Sync + 'static>() {}
    check::<h2mux_proto::Connection>();
    check::<h2mux_proto::Event>();
    check::<h2mux_proto::ConnectionError>();
    println!(
        "size_of::<Connection>() = {} bytes",
        std::mem::size_of::<h2mux_proto::Connection>()
    );
}

#[test]
fn hundred_streams_progress_together() {
    // Fairness: 100 downloads of 2 MiB over a 100 MB/s link. When the first finishes, every
    // other one is at least 80 % done (round-robin with a per-stream share of each write,
    // not first-come-takes-all).
    let mut p = Pair::connected();
    p.set_link(Duration::from_millis(1), Some(100_000_000));
    p.client.keep_data = false;
    p.server.keep_data = false;
    let ids: Vec<_> = (0..100)
        .map(|_| p.client.conn.open_stream(get("/"), true).unwrap())
        .collect();
    p.run();
    let body = Bytes::from(vec![3u8; 2 << 20]);
    for &id in &ids {
        p.server
            .conn
            .send_headers(id, status("200"), false)
            .unwrap();
        p.server.conn.send_data(id, body.clone(), true).unwrap();
    }
    assert!(p.run_until(Duration::from_secs(10), |p| !p.client.ended.is_empty()));
    let min = ids
        .iter()
        .map(|id| p.client.received.get(id).copied().unwrap_or(0))
        .min()
        .unwrap();
    println!(
        "slowest stream at {min} bytes when the first one completed; windows {} / {}, growths {}",
        p.client.conn.stream_window_target(),
        p.client.conn.connection_window_target(),
        p.client.conn.stats().window_growths
    );
    assert!(min >= (2 << 20) * 8 / 10, "slowest stream at {min} bytes");
    p.run();
    assert_eq!(p.client.ended.len(), 100);
}

#[test]
fn large_header_blocks_go_out_as_headers_plus_continuation() {
    // §6.10 / §4.2: a header block larger than the peer's SETTINGS_MAX_FRAME_SIZE is split
    // into HEADERS + CONTINUATION frames, reassembled at the other end.
    let mut client = Config::default();
    client.max_frame_size = 16_384;
    let mut p = Pair::new(client, Config::default());
    p.run();
    let id = p.client.conn.open_stream(get("/"), true).unwrap();
    p.run();
    let big: &'static str = Box::leak("v".repeat(40_000).into_boxed_str());
    let mut fields = status("200");
    fields.push(h("x-large", big));
    p.server
        .conn
        .send_headers(id, fields.clone(), true)
        .unwrap();
    p.run();
    assert!(p.s2c.sent.frames[9] >= 2, "{:?}", p.s2c.sent.frames);
    let got = p.client.take(|e| matches!(e, Event::Headers { .. }));
    assert_eq!(
        got,
        Some(Event::Headers {
            id,
            fields,
            end_stream: true
        })
    );
}

#[test]
fn body_delivered_in_tiny_pieces_with_flow_control() {
    // Partial frames at every byte boundary, with the windows cycling several times.
    let mut cfg = Config::default();
    cfg.initial_stream_window = 65_535;
    cfg.initial_connection_window = 65_535;
    cfg.max_frame_size = 16_384;
    cfg.adaptive_window = false;
    let mut p = Pair::new(cfg.clone(), cfg);
    p.c2s.piece = Some(3);
    p.s2c.piece = Some(1);
    p.client.keep_data = false;
    p.server.keep_data = false;
    let id = p.client.conn.open_stream(post("/echo"), false).unwrap();
    p.client
        .conn
        .send_data(id, Bytes::from(vec![9u8; 300_000]), true)
        .unwrap();
    p.run();
    assert_eq!(p.server.received.get(&id), Some(&300_000));
    p.server
        .conn
        .send_headers(id, status("200"), false)
        .unwrap();
    p.server
        .conn
        .send_data(id, Bytes::from(vec![8u8; 200_000]), false)
        .unwrap();
    p.server
        .conn
        .send_trailers(id, vec![h("x-done", "1")])
        .unwrap();
    p.run();
    assert_eq!(p.client.received.get(&id), Some(&200_000));
    assert!(p.client.ended.contains(&id));
    assert!(p.client.error.is_none() && p.server.error.is_none());
    assert_eq!(p.c2s.sent.window_updates_after_end, 0);
    assert_eq!(p.s2c.sent.window_updates_after_end, 0);
}
