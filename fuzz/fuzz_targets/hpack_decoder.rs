//! Fuzz the HPACK decoder: the input is split into header blocks (the first octet says how
//! long each is) decoded by one context with a small table and a small list cap; nothing may
//! panic. Every block that decodes is re-encoded by a fresh encoder and must decode back to
//! the same list.
#![no_main]
use bytes::BytesMut;
use h2mux_wire::hpack::{Decoder, Encoder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut dec = Decoder::new(256, 2048);
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let n = usize::from(len).min(tail.len());
        let (block, next) = tail.split_at(n);
        rest = next;
        match dec.decode(block) {
            Ok(fields) => {
                let mut enc = Encoder::new();
                let mut buf = BytesMut::new();
                enc.encode(&fields, &mut buf);
                let back = Decoder::new(4096, 1 << 20).decode(&buf).expect("our own encoding decodes");
                assert_eq!(back.len(), fields.len());
                for (a, b) in back.iter().zip(&fields) {
                    assert_eq!((&a.name, &a.value), (&b.name, &b.value));
                }
            }
            Err(e) if e.is_connection_error() => break,
            Err(_) => {}
        }
    }
});
