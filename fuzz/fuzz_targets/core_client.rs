#![no_main]
//! Fuzzes the sans-I/O connection core in the client role (RFC 9113 §3–§8): a hostile server.
//!
//! The client has sent its preface and three requests (a GET, a POST with a body still
//! flowing, a POST that ended); the input is everything the "server" sends, fed in pieces
//! whose sizes come from the input's first byte, with the client writing, releasing DATA,
//! opening one more request per piece (up to 16, so the peer's stream limit and the queue are
//! reached) and firing timers between pieces. Nothing may panic; once `recv` fails it must
//! keep returning the same error, and the connection must report itself closed after writing
//! its GOAWAY.
use bytes::{Bytes, BytesMut};
use h2mux_proto::{Config, Connection, Event, HeaderField, Role};
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};

fn request(method: &'static str) -> Vec<HeaderField> {
    vec![
        HeaderField::new(":method", method),
        HeaderField::new(":scheme", "https"),
        HeaderField::new(":path", "/fuzz"),
        HeaderField::new(":authority", "example.com"),
    ]
}

fuzz_target!(|data: &[u8]| {
    let Some((&knob, rest)) = data.split_first() else {
        return;
    };
    let piece = usize::from(knob % 64) + 1;
    let mut now = Instant::now();
    let mut cfg = Config::default();
    // Small limits so that the fuzzer reaches them.
    cfg.max_header_list_size = 1024;
    cfg.max_queued_control_frames = 64;
    cfg.max_resets_received = 16;
    cfg.max_resets_sent = 16;
    cfg.max_empty_frames = 16;
    cfg.closed_stream_memory = 8;
    cfg.max_queued_streams = 4;
    cfg.keepalive_interval = Some(Duration::from_millis(50));
    let mut conn = Connection::new(Role::Client, cfg, now);
    if let Ok(id) = conn.open_stream(request("GET"), true) {
        let _ = id;
    }
    if let Ok(id) = conn.open_stream(request("POST"), false) {
        let _ = conn.send_data(id, Bytes::from_static(&[7u8; 100]), false);
    }
    if let Ok(id) = conn.open_stream(request("POST"), false) {
        let _ = conn.send_data(id, Bytes::from_static(b"done"), true);
    }
    let mut chunks = Vec::new();
    while conn.poll_transmit(now, &mut chunks) > 0 {
        chunks.clear();
    }
    let mut buf = BytesMut::new();
    let mut first_err = None;
    let mut opened = 3;
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
            if let Event::Data { id, data, .. } = ev {
                let _ = conn.release_capacity(id, data.len());
            }
        }
        if opened < 16 && first_err.is_none() {
            let _ = conn.open_stream(request("GET"), true);
            opened += 1;
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
