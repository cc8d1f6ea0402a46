//! Criterion benchmarks for the frame codec (RFC 9113 §4, §6).
//!
//! * decode of a 1 MiB buffer of DATA frames: 64 × 16 KiB frames (default limit) and one
//!   1 MiB frame (limit raised), reported as bytes/s;
//! * encode of the small control frames the core sends most (DATA header, WINDOW_UPDATE,
//!   PING, RST_STREAM, SETTINGS, SETTINGS ACK).
use bytes::{Bytes, BytesMut};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use h2mux_wire::frame::{
    DataFrame, Frame, FrameDecoder, PingFrame, RstStreamFrame, Setting, SettingsFrame, StreamId,
    WindowUpdateFrame,
};
use h2mux_wire::ErrorCode;

const MIB: usize = 1 << 20;

fn data_frames(frame_len: usize, total: usize) -> BytesMut {
    let payload = Bytes::from(vec![0xabu8; frame_len]);
    let mut buf = BytesMut::with_capacity(total + total / frame_len * 9);
    for i in 0..total / frame_len {
        DataFrame {
            stream_id: StreamId::new(1 + 2 * (i as u32 % 8)),
            payload: payload.clone(),
            end_stream: false,
            flow_controlled_len: frame_len as u32,
        }
        .encode(&mut buf);
    }
    buf
}

fn decode_all(dec: &mut FrameDecoder, mut buf: BytesMut) -> usize {
    let mut n = 0;
    while let Ok(Some(f)) = dec.decode(&mut buf) {
        if let Frame::Data(d) = f {
            n += d.payload.len();
        }
    }
    n
}

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode_1MiB");
    g.throughput(Throughput::Bytes(MIB as u64));
    let small = data_frames(16 * 1024, MIB);
    g.bench_function("64x16KiB_data", |b| {
        let mut dec = FrameDecoder::new(16 * 1024);
        // The clone (a 1 MiB memcpy into a fresh buffer) is part of the measurement: it
        // stands for the socket read into the receive buffer, so this is an upper bound of
        // what the read path can sustain per core.
        b.iter(|| black_box(decode_all(&mut dec, small.clone())))
    });
    let big = data_frames(MIB, MIB);
    g.bench_function("1x1MiB_data", |b| {
        let mut dec = FrameDecoder::new(2 * MIB as u32);
        b.iter(|| black_box(decode_all(&mut dec, big.clone())))
    });
    g.finish();

    // Decode cost alone, without the buffer copy (made in the untimed setup). Decoding is
    // zero-copy, so its cost is per frame, not per byte: reported in frames/s.
    let mut g = c.benchmark_group("decode_1MiB_nocopy");
    g.throughput(Throughput::Elements(64));
    g.bench_function("64x16KiB_data", |b| {
        let mut dec = FrameDecoder::new(16 * 1024);
        b.iter_batched(
            || small.clone(),
            |buf| black_box(decode_all(&mut dec, buf)),
            criterion::BatchSize::LargeInput,
        )
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("1x1MiB_data", |b| {
        let mut dec = FrameDecoder::new(2 * MIB as u32);
        b.iter_batched(
            || big.clone(),
            |buf| black_box(decode_all(&mut dec, buf)),
            criterion::BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode_control");
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut run = |name: &str, f: &dyn Fn(&mut BytesMut)| {
        g.bench_function(name, |b| {
            b.iter(|| {
                if buf.len() > 60 * 1024 {
                    buf.clear();
                }
                f(black_box(&mut buf));
            })
        });
    };
    let sid = StreamId::new(7);
    run("data_header", &|d| {
        DataFrame::encode_header_for(sid, 16_384, false, d)
    });
    run("window_update", &|d| {
        WindowUpdateFrame {
            stream_id: sid,
            increment: 1 << 20,
        }
        .encode(d)
    });
    run("ping", &|d| {
        PingFrame {
            ack: true,
            payload: *b"h2muxpng",
        }
        .encode(d)
    });
    run("rst_stream", &|d| {
        RstStreamFrame {
            stream_id: sid,
            error_code: ErrorCode::CANCEL,
        }
        .encode(d)
    });
    let settings = [
        Setting::MaxConcurrentStreams(1000),
        Setting::InitialWindowSize(16 << 20),
        Setting::MaxFrameSize(1 << 20),
    ];
    run("settings_3", &|d| {
        SettingsFrame::encode_settings(&settings, d)
    });
    run("settings_ack", &|d| SettingsFrame::encode_ack(d));
    g.finish();
}

criterion_group!(benches, decode, encode);
criterion_main!(benches);
