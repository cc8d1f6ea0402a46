//! HPACK criterion benchmarks: encoding and decoding every raw-data story of the
//! hpack-test-case collection (headers/s and octets/s), and Huffman decoding (octets/s).
//!
//! `cargo bench -p h2mux-wire --bench hpack -- --warm-up-time 1 --measurement-time 3`
//! Stories from `HPACK_STORIES_DIR`, else `<repo>/../shared/testdata/hpack-test-case`.

use std::path::{Path, PathBuf};

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use h2mux_wire::hpack::{Decoder, Encoder, HeaderField, HuffmanPolicy};

fn raw_data_stories() -> Vec<Vec<Vec<HeaderField>>> {
    let root = std::env::var_os("HPACK_STORIES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata/hpack-test-case")
        });
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("raw-data"))
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .filter_map(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .map(|json| {
            json["cases"]
                .as_array()
                .map(|cases| {
                    cases
                        .iter()
                        .map(|c| {
                            c["headers"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .filter_map(|h| h.as_object())
                                .flat_map(|o| o.iter())
                                .map(|(n, v)| {
                                    HeaderField::new(
                                        n.clone().into_bytes(),
                                        v.as_str().unwrap_or("").as_bytes().to_vec(),
                                    )
                                })
                                .collect()
                        })
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect()
}

fn encode_all(stories: &[Vec<Vec<HeaderField>>]) -> Vec<Vec<BytesMut>> {
    stories
        .iter()
        .map(|story| {
            let mut enc = Encoder::new();
            story
                .iter()
                .map(|list| {
                    let mut b = BytesMut::new();
                    enc.encode(list, &mut b);
                    b
                })
                .collect()
        })
        .collect()
}

fn bench_hpack(c: &mut Criterion) {
    let stories = raw_data_stories();
    if stories.is_empty() {
        eprintln!("hpack bench: no raw-data stories found (set HPACK_STORIES_DIR); skipping");
        return;
    }
    let headers: u64 = stories.iter().flatten().map(|l| l.len() as u64).sum();
    let encoded = encode_all(&stories);
    let wire_bytes: u64 = encoded.iter().flatten().map(|b| b.len() as u64).sum();

    let mut g = c.benchmark_group("hpack raw-data stories");
    g.throughput(Throughput::Elements(headers));
    g.bench_function("encode (headers/s)", |b| b.iter(|| encode_all(&stories)));
    g.bench_function("decode (headers/s)", |b| {
        b.iter(|| {
            for story in &encoded {
                let mut dec = Decoder::new(4096, 1 << 20);
                for block in story {
                    dec.decode(block).expect("decodes");
                }
            }
        })
    });
    g.throughput(Throughput::Bytes(wire_bytes));
    g.bench_function("decode (wire octets/s)", |b| {
        b.iter(|| {
            for story in &encoded {
                let mut dec = Decoder::new(4096, 1 << 20);
                for block in story {
                    dec.decode(block).expect("decodes");
                }
            }
        })
    });
    g.finish();

    // Huffman decoding of one long literal (a 16 KiB cookie-like value).
    let value: Vec<u8> = (0..16 * 1024)
        .map(|i| b"abcdefghijklmnopqrstuvwxyz0123456789=;-_"[i % 40])
        .collect();
    let mut enc = Encoder::new();
    enc.set_huffman(HuffmanPolicy::Always);
    let mut block = BytesMut::new();
    enc.encode(&[HeaderField::new(&b"x-long"[..], value)], &mut block);
    let mut g = c.benchmark_group("huffman");
    g.throughput(Throughput::Bytes(block.len() as u64));
    g.bench_with_input(
        BenchmarkId::new("decode", "16 KiB value"),
        &block,
        |b, block| b.iter(|| Decoder::new(4096, 1 << 20).decode(block).expect("decodes")),
    );
    g.finish();
}

criterion_group!(benches, bench_hpack);
criterion_main!(benches);
