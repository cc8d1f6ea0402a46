//! HPACK properties: any header lists round-trip through one encoder/decoder context (with
//! table-size changes between blocks and sensitive fields), Huffman coding round-trips any
//! octets, and no input makes the decoder panic.

use bytes::BytesMut;
use h2mux_wire::hpack::{Decoder, Encoder, HeaderField, HuffmanPolicy};
use proptest::prelude::*;

fn field() -> impl Strategy<Value = HeaderField> {
    let name = prop_oneof![
        Just(b":path".to_vec()),
        Just(b"cookie".to_vec()),
        Just(b"authorization".to_vec()),
        Just(b"content-type".to_vec()),
        proptest::collection::vec(prop_oneof![b'a'..=b'z', Just(b'-')], 1..12),
    ];
    let value = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..40),
        proptest::collection::vec(b'a'..=b'e', 0..300),
    ];
    (name, value, any::<bool>()).prop_map(|(n, v, s)| HeaderField {
        name: n.into(),
        value: v.into(),
        sensitive: s,
    })
}

#[derive(Debug, Clone)]
enum Step {
    Block(Vec<HeaderField>),
    TableSize(u32),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => proptest::collection::vec(field(), 0..12).prop_map(Step::Block),
        1 => prop_oneof![Just(0u32), 0u32..512, Just(4096u32), 4096u32..70_000].prop_map(Step::TableSize),
    ]
}

fn huffman_policy() -> impl Strategy<Value = HuffmanPolicy> {
    prop_oneof![
        Just(HuffmanPolicy::WhenShorter),
        Just(HuffmanPolicy::Always),
        Just(HuffmanPolicy::Never)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn header_lists_round_trip_through_one_context(steps in proptest::collection::vec(step(), 1..20), policy in huffman_policy()) {
        let mut enc = Encoder::new();
        enc.set_huffman(policy);
        let mut dec = Decoder::new(4096, 1 << 20);
        for s in steps {
            match s {
                Step::TableSize(size) => {
                    // The decoder's side advertises a new SETTINGS_HEADER_TABLE_SIZE.
                    dec.set_max_table_size(size);
                    enc.set_peer_max_table_size(size);
                }
                Step::Block(fields) => {
                    let mut buf = BytesMut::new();
                    enc.encode(&fields, &mut buf);
                    let back = dec.decode(&buf).unwrap();
                    prop_assert_eq!(back.len(), fields.len());
                    for (b, f) in back.iter().zip(&fields) {
                        prop_assert_eq!(&b.name, &f.name);
                        prop_assert_eq!(&b.value, &f.value);
                        if f.sensitive {
                            prop_assert!(b.sensitive, "a sensitive field must arrive never-indexed");
                        }
                    }
                    prop_assert_eq!(dec.table_size(), enc.table_size());
                }
            }
        }
    }

    #[test]
    fn huffman_round_trips_any_octets(value in proptest::collection::vec(any::<u8>(), 0..500)) {
        let mut enc = Encoder::new();
        enc.set_huffman(HuffmanPolicy::Always);
        let field = HeaderField::new(&b"x-any"[..], value);
        let mut buf = BytesMut::new();
        enc.encode(std::slice::from_ref(&field), &mut buf);
        let back = Decoder::new(4096, 1 << 20).decode(&buf).unwrap();
        prop_assert_eq!(back, vec![field]);
    }

    #[test]
    fn random_blocks_never_panic(blocks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..8)) {
        let mut dec = Decoder::new(256, 1024);
        for b in blocks {
            let _ = dec.decode(&b);
        }
    }
}
