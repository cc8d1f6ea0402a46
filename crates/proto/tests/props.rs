//! Property tests: random command sequences at both ends of the pair, and random frames at a
//! server. Nothing may panic; two well-behaved ends never raise a connection error; at rest
//! both sides agree on every flow-control window.

mod common;

use bytes::{Bytes, BytesMut};
use common::*;
use h2mux_proto::pair::Pair;
use h2mux_proto::{Config, ErrorCode, Event, SettingsUpdate, StreamId};
use h2mux_wire::frame::{Frame, Setting, CLIENT_PREFACE};
use proptest::prelude::*;
use std::time::Duration;

#[derive(Debug, Clone)]
enum Op {
    Open {
        end: bool,
    },
    ClientData {
        s: usize,
        len: usize,
        end: bool,
    },
    ClientTrailers {
        s: usize,
    },
    Respond {
        s: usize,
        end: bool,
    },
    ServerData {
        s: usize,
        len: usize,
        end: bool,
    },
    ServerTrailers {
        s: usize,
    },
    Reset {
        client: bool,
        s: usize,
    },
    Release {
        client: bool,
        s: usize,
        n: usize,
    },
    ToggleAutoRelease {
        client: bool,
    },
    Ping,
    Settings {
        client: bool,
        window: u32,
        frame: u32,
        streams: u32,
    },
    Step,
    Run,
    Advance {
        ms: u64,
    },
    Shutdown {
        client: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<bool>().prop_map(|end| Op::Open { end }),
        4 => (0..8usize, 0..300_000usize, any::<bool>()).prop_map(|(s, len, end)| Op::ClientData { s, len, end }),
        1 => (0..8usize).prop_map(|s| Op::ClientTrailers { s }),
        3 => (0..8usize, any::<bool>()).prop_map(|(s, end)| Op::Respond { s, end }),
        4 => (0..8usize, 0..3_000_000usize, any::<bool>()).prop_map(|(s, len, end)| Op::ServerData { s, len, end }),
        1 => (0..8usize).prop_map(|s| Op::ServerTrailers { s }),
        1 => (any::<bool>(), 0..8usize).prop_map(|(client, s)| Op::Reset { client, s }),
        3 => (any::<bool>(), 0..8usize, 0..2_000_000usize).prop_map(|(client, s, n)| Op::Release { client, s, n }),
        1 => any::<bool>().prop_map(|client| Op::ToggleAutoRelease { client }),
        1 => Just(Op::Ping),
        1 => (any::<bool>(), 0..4_000_000u32, 16_384..100_000u32, 1..8u32)
            .prop_map(|(client, window, frame, streams)| Op::Settings { client, window, frame, streams }),
        4 => Just(Op::Step),
        3 => Just(Op::Run),
        1 => (0..200u64).prop_map(|ms| Op::Advance { ms }),
        1 => any::<bool>().prop_map(|client| Op::Shutdown { client }),
    ]
}

fn arb_config() -> impl Strategy<Value = Config> {
    (
        prop_oneof![Just(16_384u32), Just(65_536), Just(1 << 20)],
        prop_oneof![Just(65_535u32), Just(256 << 10), Just(2 << 20)],
        prop_oneof![Just(16_384usize), Just(4 << 20)],
        any::<bool>(),
        1..300u32,
    )
        .prop_map(|(frame, window, transmit, adaptive, streams)| Config {
            max_frame_size: frame,
            initial_stream_window: window,
            max_transmit_bytes: transmit,
            adaptive_window: adaptive,
            max_concurrent_streams: streams,
            ..Config::default()
        })
}

fn pick(ids: &[StreamId], i: usize) -> Option<StreamId> {
    if ids.is_empty() {
        None
    } else {
        Some(ids[i % ids.len()])
    }
}

fn body(len: usize) -> Bytes {
    Bytes::from(vec![0xab; len])
}

fn apply(p: &mut Pair, opened: &mut Vec<StreamId>, op: &Op) {
    let now = p.now;
    match op.clone() {
        Op::Open { end } => {
            if let Ok(id) = p.client.conn.open_stream(post("/p"), end) {
                opened.push(id);
            }
        }
        Op::ClientData { s, len, end } => {
            if let Some(id) = pick(opened, s) {
                let _ = p.client.conn.send_data(id, body(len), end);
            }
        }
        Op::ClientTrailers { s } => {
            if let Some(id) = pick(opened, s) {
                let _ = p.client.conn.send_trailers(id, vec![h("x-t", "1")]);
            }
        }
        Op::Respond { s, end } => {
            if let Some(id) = pick(opened, s) {
                let _ = p.server.conn.send_headers(id, status("200"), end);
            }
        }
        Op::ServerData { s, len, end } => {
            if let Some(id) = pick(opened, s) {
                let _ = p.server.conn.send_data(id, body(len), end);
            }
        }
        Op::ServerTrailers { s } => {
            if let Some(id) = pick(opened, s) {
                let _ = p.server.conn.send_trailers(id, vec![h("grpc-status", "0")]);
            }
        }
        Op::Reset { client, s } => {
            if let Some(id) = pick(opened, s) {
                let side = if client { &mut p.client } else { &mut p.server };
                let _ = side.conn.reset(id, ErrorCode::CANCEL);
            }
        }
        Op::Release { client, s, n } => {
            if let Some(id) = pick(opened, s) {
                let side = if client { &mut p.client } else { &mut p.server };
                let _ = side.conn.release_capacity(id, n);
            }
        }
        Op::ToggleAutoRelease { client } => {
            let side = if client { &mut p.client } else { &mut p.server };
            side.auto_release = !side.auto_release;
        }
        Op::Ping => {
            let _ = p.client.conn.ping(now);
        }
        Op::Settings {
            client,
            window,
            frame,
            streams,
        } => {
            let side = if client { &mut p.client } else { &mut p.server };
            let _ = side.conn.update_settings(
                SettingsUpdate {
                    initial_window_size: Some(window),
                    max_frame_size: Some(frame),
                    max_concurrent_streams: Some(streams),
                    ..Default::default()
                },
                now,
            );
        }
        Op::Step => {
            p.step();
        }
        Op::Run => p.run(),
        Op::Advance { ms } => p.advance(Duration::from_millis(ms)),
        Op::Shutdown { client } => {
            let side = if client { &mut p.client } else { &mut p.server };
            let _ = side.conn.graceful_shutdown(now);
        }
    }
}

/// Both ends agree on every window once nothing is in flight.
fn check_windows(p: &Pair) {
    assert_eq!(
        p.client.conn.connection_send_window(),
        p.server.conn.connection_recv_window(),
        "client→server connection window"
    );
    assert_eq!(
        p.server.conn.connection_send_window(),
        p.client.conn.connection_recv_window(),
        "server→client connection window"
    );
    for id in p.client.conn.stream_ids() {
        let (Some(cs), Some(sr)) = (
            p.client.conn.stream_send_window(id),
            p.server.conn.stream_recv_window(id),
        ) else {
            continue;
        };
        // Only meaningful while both still track the stream's direction.
        let open = p.client.conn.stream_state(id).is_some_and(|s| {
            matches!(
                s,
                h2mux_proto::StreamState::Open | h2mux_proto::StreamState::HalfClosedRemote
            )
        }) && !p.client.conn.is_queued(id);
        if open {
            assert_eq!(cs, sr, "stream {id} client→server window");
        }
    }
    for id in p.server.conn.stream_ids() {
        let (Some(ss), Some(cr)) = (
            p.server.conn.stream_send_window(id),
            p.client.conn.stream_recv_window(id),
        ) else {
            continue;
        };
        let open = p.server.conn.stream_state(id).is_some_and(|s| {
            matches!(
                s,
                h2mux_proto::StreamState::Open | h2mux_proto::StreamState::HalfClosedRemote
            )
        });
        if open {
            assert_eq!(ss, cr, "stream {id} server→client window");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn random_commands_keep_both_ends_consistent(
        ops in proptest::collection::vec(op(), 1..60),
        piece in prop_oneof![Just(None), (1..64usize).prop_map(Some)],
        latency_ms in prop_oneof![Just(0u64), 1..30u64],
        configs in (arb_config(), arb_config()),
    ) {
        let mut p = Pair::new(configs.0, configs.1);
        p.c2s.piece = piece;
        p.s2c.piece = piece;
        p.set_link(Duration::from_millis(latency_ms), None);
        p.client.keep_data = false;
        p.server.keep_data = false;
        let mut opened = Vec::new();
        for o in &ops {
            apply(&mut p, &mut opened, o);
            // Events the application would act on.
            p.client.events.clear();
            p.server.events.clear();
        }
        p.run();
        prop_assert!(p.client.error.is_none(), "client: {:?}", p.client.error);
        prop_assert!(p.server.error.is_none(), "server: {:?}", p.server.error);
        prop_assert!(p.client.conn.error().is_none(), "client: {:?}", p.client.conn.error());
        prop_assert!(p.server.conn.error().is_none(), "server: {:?}", p.server.conn.error());
        check_windows(&p);
        prop_assert_eq!(p.c2s.sent.window_updates_after_end, 0);
        prop_assert_eq!(p.s2c.sent.window_updates_after_end, 0);
    }
}

fn arb_frame() -> impl Strategy<Value = Frame> {
    let id = prop_oneof![Just(0u32), 1..12u32];
    prop_oneof![
        (
            id.clone(),
            proptest::collection::vec(any::<u8>(), 0..40),
            any::<bool>()
        )
            .prop_map(|(i, p, e)| {
                let n = p.len() as u32;
                Frame::Data(h2mux_wire::frame::DataFrame {
                    stream_id: sid(i.max(1)),
                    payload: Bytes::from(p),
                    end_stream: e,
                    flow_controlled_len: n,
                })
            }),
        (id.clone(), any::<u32>()).prop_map(|(i, c)| rst(i.max(1), ErrorCode(c % 16))),
        any::<[u8; 8]>().prop_map(ping),
        (id.clone(), 1..0x7fff_ffffu32).prop_map(|(i, n)| window_update(i, n)),
        (16_384..100_000u32, 0..3_000_000u32).prop_map(|(f, w)| settings(vec![
            Setting::MaxFrameSize(f),
            Setting::InitialWindowSize(w)
        ])),
        (
            id.clone(),
            proptest::collection::vec(any::<u8>(), 0..20),
            any::<bool>()
        )
            .prop_map(|(i, b, e)| Frame::Continuation(
                h2mux_wire::frame::ContinuationFrame {
                    stream_id: sid(i.max(1)),
                    header_block: Bytes::from(b),
                    end_headers: e,
                }
            )),
        (
            id,
            proptest::collection::vec(any::<u8>(), 0..30),
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(
                |(i, b, es, eh)| Frame::Headers(h2mux_wire::frame::HeadersFrame {
                    stream_id: sid(i.max(1)),
                    header_block: Bytes::from(b),
                    end_stream: es,
                    end_headers: eh,
                    priority: None,
                })
            ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    /// Random (mostly invalid) frames and valid requests mixed: no panic, and once the
    /// connection has failed, the error is sticky.
    #[test]
    fn random_frames_never_panic_a_server(
        frames in proptest::collection::vec(arb_frame(), 0..40),
        requests in proptest::collection::vec(0..12u32, 0..6),
        split in 1..64usize,
    ) {
        let mut r = Raw::server(Config::default());
        let mut wire = BytesMut::new();
        for (i, f) in frames.iter().enumerate() {
            if let Some(&id) = requests.get(i) {
                let b = r.headers(id | 1, &post("/"), false);
                wire.extend_from_slice(&b);
            }
            f.encode(&mut wire);
        }
        let mut buf = BytesMut::new();
        let mut first_err = None;
        for piece in wire.chunks(split) {
            buf.extend_from_slice(piece);
            let res = r.conn.recv(&mut buf, r.now);
            if let Err(e) = res {
                if let Some(f) = &first_err {
                    prop_assert_eq!(f, &e);
                }
                first_err.get_or_insert(e);
            }
            let _ = r.written();
            let _ = r.events();
        }
    }

    /// The same at a client with requests in flight.
    #[test]
    fn random_frames_never_panic_a_client(
        frames in proptest::collection::vec(arb_frame(), 0..40),
        opens in 0..6usize,
        split in 1..64usize,
    ) {
        let mut r = Raw::client(Config::default());
        for _ in 0..opens {
            let _ = r.conn.open_stream(post("/"), false);
        }
        let _ = r.written();
        let mut wire = BytesMut::new();
        for f in &frames {
            f.encode(&mut wire);
        }
        let mut buf = BytesMut::new();
        let mut first_err = None;
        for piece in wire.chunks(split) {
            buf.extend_from_slice(piece);
            if let Err(e) = r.conn.recv(&mut buf, r.now) {
                if let Some(f) = &first_err {
                    prop_assert_eq!(f, &e);
                }
                first_err.get_or_insert(e);
            }
            let _ = r.written();
            for ev in r.events() {
                if let Event::Data { id, data, .. } = ev {
                    let _ = r.conn.release_capacity(id, data.len());
                }
            }
        }
    }

    /// Arbitrary bytes after the preface: no panic.
    #[test]
    fn arbitrary_bytes_never_panic_a_server(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let mut c = h2mux_proto::Connection::new(h2mux_proto::Role::Server, Config::default(), std::time::Instant::now());
        let mut b = BytesMut::from(&CLIENT_PREFACE[..]);
        b.extend_from_slice(&bytes);
        let _ = c.recv(&mut b, std::time::Instant::now());
        let mut chunks = Vec::new();
        c.poll_transmit(std::time::Instant::now(), &mut chunks);
        while c.poll_event().is_some() {}
    }
}

#[test]
fn pair_survives_events_being_left_unread() {
    // Sanity for the harness: an Event::Data is counted even if the test never reads it.
    let mut p = Pair::connected();
    let id = p.client.conn.open_stream(get("/"), true).unwrap();
    p.run();
    p.server
        .conn
        .send_headers(id, status("200"), false)
        .unwrap();
    p.server
        .conn
        .send_data(id, Bytes::from_static(b"abc"), true)
        .unwrap();
    p.run();
    assert!(p
        .client
        .events
        .iter()
        .any(|e| matches!(e, Event::Data { .. })));
    assert_eq!(p.client.received.get(&id), Some(&3));
}
