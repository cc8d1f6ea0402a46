//! Fuzz the HPACK decoder. The first octet picks a table size; the rest is split into header
//! blocks (the first octet of each says how long it is) decoded by one context with a
//! 256-octet table and a 2 KiB list cap: nothing may panic. Every list that decodes is then
//! encoded by one long-lived encoder (table size from the first octet, so eviction and
//! size updates happen) and decoded by its long-lived peer decoder: the lists must match and
//! the two dynamic tables must stay the same size.
#![no_main]
use bytes::BytesMut;
use h2mux_wire::hpack::{Decoder, Encoder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&size, mut rest)) = data.split_first() else {
        return;
    };
    let mut dec = Decoder::new(256, 2048);
    let mut enc = Encoder::new();
    let mut peer = Decoder::new(4096, 1 << 20);
    let table = u32::from(size) * 16;
    enc.set_peer_max_table_size(table);
    peer.set_max_table_size(table);
    while let Some((&len, tail)) = rest.split_first() {
        let n = usize::from(len).min(tail.len());
        let (block, next) = tail.split_at(n);
        rest = next;
        match dec.decode(block) {
            Ok(fields) => {
                let mut buf = BytesMut::new();
                enc.encode(&fields, &mut buf);
                let back = peer.decode(&buf).expect("our own encoding decodes");
                assert_eq!(back.len(), fields.len());
                for (a, b) in back.iter().zip(&fields) {
                    assert_eq!((&a.name, &a.value), (&b.name, &b.value));
                    assert!(a.sensitive || !b.sensitive, "sensitive stays never-indexed");
                }
                assert_eq!(peer.table_size(), enc.table_size());
            }
            Err(e) if e.is_connection_error() => break,
            Err(_) => {}
        }
    }
});
