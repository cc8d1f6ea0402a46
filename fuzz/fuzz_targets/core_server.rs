#![no_main]
//! Fuzzes the sans-I/O connection core in the server role (RFC 9113 §3–§8).
//!
//! The client preface is given; the input is everything the "client" sends after it. It is
//! fed in pieces whose sizes come from the input's first byte, with the server writing,
//! answering requests (HEADERS + DATA + trailers), releasing DATA and firing timers between
//! pieces. Nothing may panic; once `recv` fails it must keep returning the same error, and
//! the connection must report itself closed after writing its GOAWAY.
use bytes::{Bytes, BytesMut};
use h2mux_proto::{Config, Connection, Event, HeaderField, Role};
use h2mux_wire::frame::CLIENT_PREFACE;
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let Some((&knob, rest)) = data.split_first() else {
        return;
    };
    let piece = usize::from(knob % 64) + 1;
    let mut now = Instant::now();
    let mut cfg = Config::default();
    // Small limits so that the fuzzer reaches them.
    cfg.max_concurrent_streams = 8;
    cfg.max_pending_accept = 4;
    cfg.max_header_list_size = 1024;
    cfg.max_queued_control_frames = 64;
    cfg.max_resets_received = 16;
    cfg.max_resets_sent = 16;
    cfg.max_empty_frames = 16;
    cfg.closed_stream_memory = 8;
    cfg.keepalive_interval = Some(Duration::from_millis(50));
    let mut conn = Connection::new(Role::Server, cfg, now);
    let mut buf = BytesMut::from(&CLIENT_PREFACE[..]);
    let mut chunks = Vec::new();
    let mut first_err = None;
    for p in rest.chunks(piece) {
        buf.extend_from_slice(p);
        match conn.recv(&mut buf, now) {
            Ok(()) => assert!(first_err.is_none(), "error not sticky"),
            Err(e) => {
                if let Some(f) = &first_err {
                    assert_eq!(f, &e, "error changed");
                }
                first_err.get_or_insert(e);
            }
        }
        while let Some(ev) = conn.poll_event() {
            match ev {
                Event::Headers { id, end_stream, .. } => {
                    let _ = conn.send_headers(id, vec![HeaderField::new(":status", "200")], false);
                    let _ = conn.send_data(id, Bytes::from_static(b"hello"), false);
                    if end_stream {
                        let _ = conn.send_trailers(id, vec![HeaderField::new("x-t", "1")]);
                    }
                }
                Event::Data { id, data, .. } => {
                    let _ = conn.release_capacity(id, data.len());
                }
                _ => {}
            }
        }
        chunks.clear();
        while conn.poll_transmit(now, &mut chunks) > 0 {
            chunks.clear();
        }
        now += Duration::from_millis(7);
        if conn.poll_timeout().is_some_and(|t| t <= now) {
            conn.handle_timeout(now);
        }
    }
    if first_err.is_some() {
        chunks.clear();
        while conn.poll_transmit(now, &mut chunks) > 0 {}
        assert!(conn.is_closed());
    }
});
