//! Property tests for the frame codec (RFC 9113 §4, §6): encode→decode round trips for every
//! variant, byte-at-a-time decoding equals whole-buffer decoding, random bytes never panic
//! the decoder, and DATA payloads are zero-copy slices of the input buffer.

use bytes::{Bytes, BytesMut};
use h2mux_wire::frame::{
    encode_header_block, ContinuationFrame, DataFrame, ErrorScope, Frame, FrameDecoder, FrameError,
    GoAwayFrame, HeadersFrame, PingFrame, PriorityFrame, PrioritySpec, PushPromiseFrame,
    RstStreamFrame, Setting, SettingsFrame, StreamId, WindowUpdateFrame,
};
use h2mux_wire::ErrorCode;
use proptest::prelude::*;

const MAX: u32 = 16_384;

fn nonzero_stream() -> impl Strategy<Value = StreamId> {
    (1u32..=StreamId::MAX.value()).prop_map(StreamId::new)
}

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

fn priority_for(sid: StreamId) -> impl Strategy<Value = PrioritySpec> {
    (0u32..=StreamId::MAX.value(), any::<bool>(), any::<u8>()).prop_map(
        move |(d, exclusive, weight)| {
            let dependency = if d == sid.value() {
                StreamId::new(d ^ 1)
            } else {
                StreamId::new(d)
            };
            PrioritySpec {
                dependency,
                exclusive,
                weight,
            }
        },
    )
}

fn setting() -> impl Strategy<Value = Setting> {
    prop_oneof![
        any::<u32>().prop_map(Setting::HeaderTableSize),
        any::<bool>().prop_map(Setting::EnablePush),
        any::<u32>().prop_map(Setting::MaxConcurrentStreams),
        (0..=(1u32 << 31) - 1).prop_map(Setting::InitialWindowSize),
        (16_384u32..=(1 << 24) - 1).prop_map(Setting::MaxFrameSize),
        any::<u32>().prop_map(Setting::MaxHeaderListSize),
        (7u16.., any::<u32>()).prop_map(|(id, value)| Setting::Unknown { id, value }),
    ]
}

/// Every variant we can encode, as the decoder would return it after an unpadded encode.
fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        (nonzero_stream(), bytes(300), any::<bool>()).prop_map(
            |(stream_id, payload, end_stream)| {
                Frame::Data(DataFrame {
                    stream_id,
                    flow_controlled_len: payload.len() as u32,
                    payload,
                    end_stream,
                })
            }
        ),
        nonzero_stream()
            .prop_flat_map(|sid| (
                Just(sid),
                bytes(300),
                any::<bool>(),
                any::<bool>(),
                proptest::option::of(priority_for(sid))
            ))
            .prop_map(
                |(stream_id, header_block, end_stream, end_headers, priority)| {
                    Frame::Headers(HeadersFrame {
                        stream_id,
                        header_block,
                        end_stream,
                        end_headers,
                        priority,
                    })
                }
            ),
        nonzero_stream()
            .prop_flat_map(|sid| (Just(sid), priority_for(sid)))
            .prop_map(|(stream_id, priority)| Frame::Priority(PriorityFrame {
                stream_id,
                priority
            })),
        (nonzero_stream(), any::<u32>()).prop_map(|(stream_id, c)| {
            Frame::RstStream(RstStreamFrame {
                stream_id,
                error_code: ErrorCode(c),
            })
        }),
        proptest::collection::vec(setting(), 0..20).prop_map(|settings| Frame::Settings(
            SettingsFrame {
                ack: false,
                settings
            }
        )),
        Just(Frame::Settings(SettingsFrame {
            ack: true,
            settings: vec![]
        })),
        (nonzero_stream(), 1u32..(1 << 30), bytes(300), any::<bool>()).prop_map(
            |(stream_id, p, header_block, end_headers)| {
                Frame::PushPromise(PushPromiseFrame {
                    stream_id,
                    promised_stream_id: StreamId::new(p * 2),
                    header_block,
                    end_headers,
                })
            }
        ),
        (any::<bool>(), any::<[u8; 8]>())
            .prop_map(|(ack, payload)| Frame::Ping(PingFrame { ack, payload })),
        (0..=StreamId::MAX.value(), any::<u32>(), bytes(100)).prop_map(|(l, c, debug_data)| {
            Frame::GoAway(GoAwayFrame {
                last_stream_id: StreamId::new(l),
                error_code: ErrorCode(c),
                debug_data,
            })
        }),
        (0..=StreamId::MAX.value(), 1..=(1u32 << 31) - 1).prop_map(|(s, increment)| {
            Frame::WindowUpdate(WindowUpdateFrame {
                stream_id: StreamId::new(s),
                increment,
            })
        }),
        (nonzero_stream(), bytes(300), any::<bool>()).prop_map(
            |(stream_id, header_block, end_headers)| {
                Frame::Continuation(ContinuationFrame {
                    stream_id,
                    header_block,
                    end_headers,
                })
            }
        ),
    ]
}

fn decode_stream(dec: &mut FrameDecoder, buf: &mut BytesMut) -> Vec<Result<Frame, FrameError>> {
    let mut out = Vec::new();
    loop {
        match dec.decode(buf) {
            Ok(Some(f)) => out.push(Ok(f)),
            Ok(None) => return out,
            Err(e) => {
                let fatal = e.scope() == ErrorScope::Connection;
                out.push(Err(e));
                if fatal {
                    return out;
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any frame we encode decodes to itself, and consumes exactly its bytes.
    #[test]
    fn encode_then_decode_is_identity(frames in proptest::collection::vec(frame(), 1..8)) {
        let mut buf = BytesMut::new();
        for f in &frames {
            f.encode(&mut buf);
        }
        let mut dec = FrameDecoder::new(MAX);
        for f in &frames {
            prop_assert_eq!(dec.decode(&mut buf), Ok(Some(f.clone())));
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(dec.decode(&mut buf), Ok(None));
    }

    /// Feeding one byte at a time gives the same frames as decoding the whole buffer.
    #[test]
    fn byte_by_byte_equals_all_at_once(frames in proptest::collection::vec(frame(), 1..6)) {
        let mut all = BytesMut::new();
        for f in &frames {
            f.encode(&mut all);
        }
        let whole = decode_stream(&mut FrameDecoder::new(MAX), &mut all.clone());
        let mut dec = FrameDecoder::new(MAX);
        let mut buf = BytesMut::new();
        let mut bytewise = Vec::new();
        for b in all.iter() {
            buf.extend_from_slice(&[*b]);
            bytewise.extend(decode_stream(&mut dec, &mut buf));
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(&whole, &bytewise);
        let expected: Vec<_> = frames.into_iter().map(Ok).collect();
        prop_assert_eq!(whole, expected);
    }

    /// Random bytes (also fed byte by byte) never panic the decoder, both feeds agree, and no
    /// decoded frame is longer than the limit.
    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048),
                                big in any::<bool>()) {
        let max = if big { 1 << 20 } else { MAX };
        let whole = decode_stream(&mut FrameDecoder::new(max), &mut BytesMut::from(&data[..]));
        let mut dec = FrameDecoder::new(max);
        let mut buf = BytesMut::new();
        let mut bytewise = Vec::new();
        for b in &data {
            buf.extend_from_slice(&[*b]);
            if bytewise.last().is_some_and(|r: &Result<Frame, FrameError>| {
                r.as_ref().is_err_and(|e| e.scope() == ErrorScope::Connection)
            }) {
                break;
            }
            bytewise.extend(decode_stream(&mut dec, &mut buf));
        }
        prop_assert_eq!(&whole, &bytewise);
        for r in &whole {
            match r {
                Ok(Frame::Data(d)) => prop_assert!(d.flow_controlled_len <= max),
                Ok(Frame::Unknown(u)) => prop_assert!(u.header.length <= max),
                Ok(Frame::Headers(h)) => prop_assert!(h.header_block.len() as u32 <= max),
                Err(e) => prop_assert!(!e.to_string().is_empty()),
                _ => {}
            }
        }
    }

    /// Zero copy: a decoded DATA payload points into the (frozen) receive buffer.
    #[test]
    fn data_payload_is_a_slice_of_the_input(payload in bytes(4000), sid in nonzero_stream(),
                                            prefix in 0usize..3) {
        let mut buf = BytesMut::new();
        for _ in 0..prefix {
            Frame::Ping(PingFrame { ack: false, payload: [0; 8] }).encode(&mut buf);
        }
        DataFrame { stream_id: sid, payload: payload.clone(), end_stream: false,
                    flow_controlled_len: payload.len() as u32 }.encode(&mut buf);
        let range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
        let mut dec = FrameDecoder::new(MAX);
        for _ in 0..prefix {
            prop_assert!(matches!(dec.decode(&mut buf), Ok(Some(Frame::Ping(_)))));
        }
        match dec.decode(&mut buf) {
            Ok(Some(Frame::Data(d))) => {
                prop_assert_eq!(&d.payload, &payload);
                let p = d.payload.as_ptr() as usize;
                prop_assert!(range.contains(&p) || d.payload.is_empty());
                prop_assert!(p + d.payload.len() <= range.end);
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }

    /// encode_header_block splits at max_frame_size and reassembles to the same block.
    #[test]
    fn header_block_split_reassembles(block in bytes(70_000), sid in nonzero_stream(),
                                      end_stream in any::<bool>()) {
        let mut buf = BytesMut::new();
        encode_header_block(sid, block.clone(), end_stream, MAX, &mut buf);
        let mut dec = FrameDecoder::new(MAX);
        let mut got = Vec::new();
        let first = dec.decode(&mut buf);
        let mut done = match first {
            Ok(Some(Frame::Headers(h))) => {
                prop_assert_eq!(h.end_stream, end_stream);
                prop_assert_eq!(h.stream_id, sid);
                got.extend_from_slice(&h.header_block);
                h.end_headers
            }
            other => { prop_assert!(false, "{:?}", other); unreachable!() }
        };
        while !done {
            match dec.decode(&mut buf) {
                Ok(Some(Frame::Continuation(c))) => {
                    prop_assert_eq!(c.stream_id, sid);
                    got.extend_from_slice(&c.header_block);
                    done = c.end_headers;
                }
                other => { prop_assert!(false, "{:?}", other); }
            }
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(&got[..], &block[..]);
    }
}
