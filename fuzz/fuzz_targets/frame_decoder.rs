#![no_main]
//! Fuzzes the HTTP/2 frame decoder (RFC 9113 §4, §6).
//!
//! The input is decoded twice — all at once and fed in chunks whose sizes come from the input
//! itself — and both must give the same frames and the same error. Every decoded frame is
//! re-encoded and decoded again: it must come back equal (modulo padding, which we never send,
//! and the skipped payload of unknown frames).
use bytes::BytesMut;
use h2mux_wire::frame::{Frame, FrameDecoder, FrameError};
use libfuzzer_sys::fuzz_target;

type Item = Result<Frame, FrameError>;

fn decode_all(dec: &mut FrameDecoder, data: &[u8]) -> Vec<Item> {
    let mut buf = BytesMut::from(data);
    let mut out = Vec::new();
    loop {
        match dec.decode(&mut buf) {
            Ok(Some(f)) => out.push(Ok(f)),
            Ok(None) => return out,
            Err(e) => {
                let conn = e.scope() == h2mux_wire::frame::ErrorScope::Connection;
                out.push(Err(e));
                if conn {
                    return out;
                }
            }
        }
    }
}

fn decode_chunked(dec: &mut FrameDecoder, data: &[u8], sizes: &[u8]) -> Vec<Item> {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    loop {
        match dec.decode(&mut buf) {
            Ok(Some(f)) => out.push(Ok(f)),
            Ok(None) => {
                if pos == data.len() {
                    return out;
                }
                let n = sizes.get(i % sizes.len().max(1)).copied().unwrap_or(1).max(1) as usize;
                i += 1;
                let end = (pos + n).min(data.len());
                buf.extend_from_slice(&data[pos..end]);
                pos = end;
            }
            Err(e) => {
                let conn = e.scope() == h2mux_wire::frame::ErrorScope::Connection;
                out.push(Err(e));
                if conn {
                    return out;
                }
            }
        }
    }
}

/// What a frame looks like after we re-encode it (unpadded, unknown payload dropped).
fn normalize(f: &Frame) -> Frame {
    let mut f = f.clone();
    match &mut f {
        Frame::Data(d) => d.flow_controlled_len = d.payload.len() as u32,
        Frame::Unknown(u) => u.header.length = 0,
        _ => {}
    }
    f
}

fuzz_target!(|input: &[u8]| {
    let (ctl, data) = match input.split_first() {
        Some((c, d)) => (*c, d),
        None => return,
    };
    // Low bit of the control byte: small or large frame limit.
    let max = if ctl & 1 == 0 { 16_384 } else { 1 << 20 };
    let sizes: Vec<u8> = input.iter().rev().take(16).copied().collect();

    let whole = decode_all(&mut FrameDecoder::new(max), data);
    let chunked = decode_chunked(&mut FrameDecoder::new(max), data, &sizes);
    assert_eq!(whole, chunked, "chunked decoding differs from whole-buffer decoding");

    for item in &whole {
        let frame = match item {
            Ok(f) => f,
            Err(e) => {
                let _ = (e.code(), e.scope(), e.to_string());
                continue;
            }
        };
        if let Frame::Data(d) = frame {
            assert!(d.payload.len() as u32 <= d.flow_controlled_len);
            assert!(d.flow_controlled_len <= max);
        }
        let mut enc = BytesMut::new();
        frame.encode(&mut enc);
        let mut dec = FrameDecoder::new(max);
        let again = dec.decode(&mut enc).expect("re-encoded frame must decode");
        assert_eq!(again, Some(normalize(frame)), "round trip changed the frame");
        assert!(enc.is_empty(), "re-encoded frame left bytes behind");
    }
});
