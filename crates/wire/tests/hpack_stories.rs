//! The hpack-test-case collection (github.com/http2jp/hpack-test-case): header blocks encoded
//! by other implementations, each with the header list it must decode to.
//!
//! * Every story of every directory except `raw-data` decodes to exactly its header list, in
//!   order, with one decoder per story (one connection).
//! * The `raw-data` stories (header lists only) round-trip through our encoder and decoder,
//!   and our total compressed size is printed beside nghttp2's for the same stories.
//!
//! The directory comes from `HPACK_STORIES_DIR` when set, else
//! `<repo>/../shared/testdata/hpack-test-case`. Finding no story is a failure.

use std::path::{Path, PathBuf};

use bytes::BytesMut;
use h2mux_wire::hpack::{Decoder, Encoder, HeaderField};
use serde_json::Value;

fn stories_dir() -> PathBuf {
    match std::env::var_os("HPACK_STORIES_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata/hpack-test-case")
        }
    }
}

struct Case {
    wire: Option<Vec<u8>>,
    headers: Vec<HeaderField>,
    table_size: Option<u32>,
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn load(path: &Path) -> Vec<Case> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let json: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let cases = json["cases"]
        .as_array()
        .unwrap_or_else(|| panic!("{}: no cases", path.display()));
    cases
        .iter()
        .map(|c| Case {
            wire: c["wire"].as_str().map(hex),
            headers: c["headers"]
                .as_array()
                .expect("headers")
                .iter()
                .flat_map(|h| h.as_object().expect("header object").iter())
                .map(|(n, v)| {
                    HeaderField::new(
                        n.clone().into_bytes(),
                        v.as_str().expect("value").as_bytes().to_vec(),
                    )
                })
                .collect(),
            table_size: c["header_table_size"].as_u64().map(|v| v as u32),
        })
        .collect()
}

fn story_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn implementation_dirs() -> Vec<PathBuf> {
    let root = stories_dir();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| {
            panic!(
                "HPACK stories directory {}: {e} (set HPACK_STORIES_DIR)",
                root.display()
            )
        })
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir() && p.file_name().is_some_and(|n| n != "raw-data"))
        .collect();
    dirs.sort();
    dirs
}

/// Header lists compare without the `sensitive` flag (the stories do not record it).
fn plain(list: &[HeaderField]) -> Vec<(&[u8], &[u8])> {
    list.iter().map(|f| (&f.name[..], &f.value[..])).collect()
}

#[test]
fn every_story_decodes_to_its_header_list() {
    let (mut stories, mut cases) = (0usize, 0usize);
    for dir in implementation_dirs() {
        for file in story_files(&dir) {
            let mut dec = Decoder::new(4096, 1 << 20);
            let mut limit = 4096;
            for (i, case) in load(&file).iter().enumerate() {
                let Some(wire) = &case.wire else { continue };
                if let Some(size) = case.table_size.filter(|s| *s > limit) {
                    limit = size;
                    dec.set_max_table_size(size);
                }
                let got = dec
                    .decode(wire)
                    .unwrap_or_else(|e| panic!("{} case {i}: {e}", file.display()));
                assert_eq!(
                    plain(&got),
                    plain(&case.headers),
                    "{} case {i}",
                    file.display()
                );
                cases += 1;
            }
            stories += 1;
        }
    }
    println!("decoded {cases} header blocks from {stories} stories");
    assert!(
        stories > 0 && cases > 0,
        "no HPACK story found under {}",
        stories_dir().display()
    );
}

#[test]
fn raw_data_round_trips_and_compresses_about_as_well_as_nghttp2() {
    let root = stories_dir();
    let (mut ours, mut nghttp2, mut stories) = (0usize, 0usize, 0usize);
    for file in story_files(&root.join("raw-data")) {
        let mut enc = Encoder::new();
        let mut dec = Decoder::new(4096, 1 << 20);
        for (i, case) in load(&file).iter().enumerate() {
            let mut buf = BytesMut::new();
            enc.encode(&case.headers, &mut buf);
            ours += buf.len();
            let back = dec
                .decode(&buf)
                .unwrap_or_else(|e| panic!("{} case {i}: {e}", file.display()));
            for f in back.iter().filter(|f| &f.name[..] == b"cookie") {
                assert!(f.sensitive, "cookies are sent never-indexed by default");
            }
            assert_eq!(
                plain(&back),
                plain(&case.headers),
                "{} case {i}",
                file.display()
            );
        }
        if let Some(name) = file.file_name() {
            let reference = root.join("nghttp2").join(name);
            nghttp2 += load(&reference)
                .iter()
                .filter_map(|c| c.wire.as_ref())
                .map(Vec::len)
                .sum::<usize>();
        }
        stories += 1;
    }
    assert!(stories > 0, "no raw-data story under {}", root.display());
    println!(
        "raw-data: {stories} stories, ours {ours} octets, nghttp2 {nghttp2} octets, ratio {:.3}",
        ours as f64 / nghttp2.max(1) as f64
    );
    // A sanity bound, not a benchmark: a broken indexing policy would be far above this.
    assert!(
        ours < nghttp2 * 3 / 2,
        "compression much worse than nghttp2: {ours} vs {nghttp2}"
    );
}
