//! Criterion benchmarks of the connection core through the in-memory pair (no sockets).
//!
//! * `bulk/<frame size>`: one stream carrying 64 MiB from server to client, with the
//!   receiver advertising SETTINGS_MAX_FRAME_SIZE of 16 KiB, 256 KiB or 1 MiB; bytes/s.
//!   Includes one copy of every byte into the receiver's read buffer (what a socket read
//!   costs in the real driver), the frame encode/decode, flow control and WINDOW_UPDATEs.
//! * `exchange/small`: one GET with a 100-byte response on a warm connection, both
//!   directions, HPACK included; exchanges/s.
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use h2mux_proto::pair::Pair;
use h2mux_proto::{Config, HeaderField};

const MIB: usize = 1 << 20;
const TOTAL: usize = 64 * MIB;

fn req() -> Vec<HeaderField> {
    vec![
        HeaderField::new(":method", "GET"),
        HeaderField::new(":scheme", "https"),
        HeaderField::new(":path", "/bench"),
        HeaderField::new(":authority", "bench.local"),
    ]
}

fn bulk(c: &mut Criterion) {
    let mut g = c.benchmark_group("bulk");
    g.throughput(Throughput::Bytes(TOTAL as u64));
    g.sample_size(10);
    let chunk = Bytes::from(vec![0x5au8; MIB]);
    for (name, frame) in [
        ("16KiB", 16 << 10),
        ("256KiB", 256 << 10),
        ("1MiB", 1 << 20),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let client = Config {
                    max_frame_size: frame,
                    ..Config::default()
                };
                let mut p = Pair::new(client, Config::default());
                p.client.keep_data = false;
                p.server.keep_data = false;
                p.c2s.tap = false;
                p.s2c.tap = false;
                let id = p.client.conn.open_stream(req(), true).unwrap();
                p.run();
                p.server
                    .conn
                    .send_headers(id, vec![HeaderField::new(":status", "200")], false)
                    .unwrap();
                for i in 0..TOTAL / MIB {
                    p.server
                        .conn
                        .send_data(id, chunk.clone(), i + 1 == TOTAL / MIB)
                        .unwrap();
                }
                p.run();
                assert_eq!(p.client.received.get(&id).copied(), Some(TOTAL as u64));
            })
        });
    }
    g.finish();
}

fn exchange(c: &mut Criterion) {
    let mut g = c.benchmark_group("exchange");
    g.throughput(Throughput::Elements(1));
    let body = Bytes::from(vec![b'x'; 100]);
    let mut p = Pair::connected();
    p.client.keep_data = false;
    p.server.keep_data = false;
    p.c2s.tap = false;
    p.s2c.tap = false;
    g.bench_function("small", |b| {
        b.iter(|| {
            let id = p.client.conn.open_stream(req(), true).unwrap();
            p.run();
            p.server.events.clear();
            p.server
                .conn
                .send_headers(id, vec![HeaderField::new(":status", "200")], false)
                .unwrap();
            p.server.conn.send_data(id, body.clone(), true).unwrap();
            p.run();
            p.client.events.clear();
            p.client.received.remove(&id);
            p.client.ended.remove(&id);
        })
    });
    g.finish();
}

criterion_group!(benches, bulk, exchange);
criterion_main!(benches);
