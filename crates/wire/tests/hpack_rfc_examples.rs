//! RFC 7541 Appendix C, byte for byte, through our decoder and our encoder.
//!
//! C.2 literal representations, C.3/C.4 three requests on one connection (without/with
//! Huffman), C.5/C.6 three responses with a 256-octet table and evictions.

use bytes::BytesMut;
use h2mux_wire::hpack::{Decoder, Encoder, HeaderField, HuffmanPolicy};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn fields(list: &[(&str, &str)]) -> Vec<HeaderField> {
    list.iter()
        .map(|(n, v)| HeaderField::new(n.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
}

const REQUESTS: [&[(&str, &str)]; 3] = [
    &[
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/"),
        (":authority", "www.example.com"),
    ],
    &[
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/"),
        (":authority", "www.example.com"),
        ("cache-control", "no-cache"),
    ],
    &[
        (":method", "GET"),
        (":scheme", "https"),
        (":path", "/index.html"),
        (":authority", "www.example.com"),
        ("custom-key", "custom-value"),
    ],
];

const RESPONSES: [&[(&str, &str)]; 3] = [
    &[
        (":status", "302"),
        ("cache-control", "private"),
        ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
        ("location", "https://www.example.com"),
    ],
    &[
        (":status", "307"),
        ("cache-control", "private"),
        ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
        ("location", "https://www.example.com"),
    ],
    &[
        (":status", "200"),
        ("cache-control", "private"),
        ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
        ("location", "https://www.example.com"),
        ("content-encoding", "gzip"),
        (
            "set-cookie",
            "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
        ),
    ],
];

const C3: [&str; 3] = [
    "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
    "8286 84be 5808 6e6f 2d63 6163 6865",
    "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
];
const C4: [&str; 3] = [
    "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
    "8286 84be 5886 a8eb 1064 9cbf",
    "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
];
const C5: [&str; 3] = [
    "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
     2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
     6c65 2e63 6f6d",
    "4803 3330 37c1 c0bf",
    "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
     54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
     5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
     3d31",
];
const C6: [&str; 3] = [
    "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
     2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
    "4883 640e ffc1 c0bf",
    "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
     77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
     9587 3160 65c0 03ed 4ee5 b106 3d50 07",
];

/// Table sizes after each block, from the appendix's "Dynamic Table (after decoding)".
const REQUEST_TABLE_SIZES: [usize; 3] = [57, 110, 164];
const RESPONSE_TABLE_SIZES: [usize; 3] = [222, 222, 215];

fn check_sequence(
    lists: &[&[(&str, &str)]; 3],
    wires: &[&str; 3],
    sizes: &[usize; 3],
    table: usize,
    huffman: HuffmanPolicy,
) {
    let mut dec = Decoder::new(table as u32, 64 * 1024);
    let mut enc = Encoder::with_initial_table_size(table);
    enc.set_huffman(huffman);
    for i in 0..3 {
        let wire = hex(wires[i]);
        let expected = fields(lists[i]);
        assert_eq!(
            dec.decode(&wire).unwrap(),
            expected,
            "decode of block {}",
            i + 1
        );
        assert_eq!(
            dec.table_size(),
            sizes[i],
            "decoder table size after block {}",
            i + 1
        );
        let mut out = BytesMut::new();
        enc.encode(&expected, &mut out);
        assert_eq!(&out[..], &wire[..], "encoding of block {}", i + 1);
        assert_eq!(
            enc.table_size(),
            sizes[i],
            "encoder table size after block {}",
            i + 1
        );
    }
}

#[test]
fn c3_requests_without_huffman() {
    check_sequence(
        &REQUESTS,
        &C3,
        &REQUEST_TABLE_SIZES,
        4096,
        HuffmanPolicy::Never,
    );
}

#[test]
fn c4_requests_with_huffman() {
    check_sequence(
        &REQUESTS,
        &C4,
        &REQUEST_TABLE_SIZES,
        4096,
        HuffmanPolicy::Always,
    );
}

#[test]
fn c5_responses_without_huffman_and_evictions() {
    check_sequence(
        &RESPONSES,
        &C5,
        &RESPONSE_TABLE_SIZES,
        256,
        HuffmanPolicy::Never,
    );
}

#[test]
fn c6_responses_with_huffman_and_evictions() {
    check_sequence(
        &RESPONSES,
        &C6,
        &RESPONSE_TABLE_SIZES,
        256,
        HuffmanPolicy::Always,
    );
}

#[test]
fn c2_1_literal_with_indexing() {
    let mut dec = Decoder::new(4096, 1 << 16);
    let out = dec
        .decode(&hex(
            "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
        ))
        .unwrap();
    assert_eq!(out, fields(&[("custom-key", "custom-header")]));
    assert_eq!(dec.table_size(), 55);
}

#[test]
fn c2_2_literal_without_indexing() {
    let mut dec = Decoder::new(4096, 1 << 16);
    let out = dec
        .decode(&hex("040c 2f73 616d 706c 652f 7061 7468"))
        .unwrap();
    assert_eq!(out, fields(&[(":path", "/sample/path")]));
    assert_eq!(dec.table_size(), 0);
}

#[test]
fn c2_3_literal_never_indexed_is_marked_sensitive() {
    let mut dec = Decoder::new(4096, 1 << 16);
    let wire = hex("1008 7061 7373 776f 7264 0673 6563 7265 74");
    let out = dec.decode(&wire).unwrap();
    assert_eq!(
        out,
        vec![HeaderField::sensitive(&b"password"[..], &b"secret"[..])]
    );
    assert_eq!(dec.table_size(), 0);
    // And our encoder produces exactly that for a sensitive field.
    let mut enc = Encoder::new();
    enc.set_huffman(HuffmanPolicy::Never);
    let mut buf = BytesMut::new();
    enc.encode(&out, &mut buf);
    assert_eq!(&buf[..], &wire[..]);
}

#[test]
fn c2_4_indexed_field() {
    let mut dec = Decoder::new(4096, 1 << 16);
    assert_eq!(dec.decode(&[0x82]).unwrap(), fields(&[(":method", "GET")]));
}
