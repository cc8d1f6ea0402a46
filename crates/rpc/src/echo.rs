//! The built-in echo service's messages (`proto/echo.proto`, package `h2mux.echo.v1`),
//! hand-coded in the Protocol Buffers wire format so the default build needs no protobuf
//! toolchain:
//!
//! ```proto
//! message EchoRequest { bytes payload = 1; uint32 repeat = 2; }
//! message EchoReply { bytes payload = 1; uint32 index = 2; }
//! ```
//!
//! Decoding follows proto3: fields may come in any order or repeat (last one wins), unknown
//! fields are skipped, and truncated or malformed input is an error, never a panic.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::codec::{decode_error, Codec};
pub use crate::pb::ProtoError;
use crate::pb::{get_bytes, get_varint, put_bytes, put_varint, skip_field};
use crate::status::Status;

/// Full method paths of the echo service.
pub mod method {
    /// Unary: the payload echoed, index 0.
    pub const UNARY: &str = "/h2mux.echo.v1.Echo/Unary";
    /// Server streaming: `repeat` replies, index 0..repeat-1.
    pub const SERVER_STREAM: &str = "/h2mux.echo.v1.Echo/ServerStream";
    /// Client streaming: the payloads concatenated.
    pub const CLIENT_STREAM: &str = "/h2mux.echo.v1.Echo/ClientStream";
    /// Bidirectional: each request echoed, index counting up.
    pub const BIDI: &str = "/h2mux.echo.v1.Echo/Bidi";
}

/// `h2mux.echo.v1.EchoRequest`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EchoRequest {
    /// Field 1.
    pub payload: Bytes,
    /// Field 2.
    pub repeat: u32,
}

/// `h2mux.echo.v1.EchoReply`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EchoReply {
    /// Field 1.
    pub payload: Bytes,
    /// Field 2.
    pub index: u32,
}

/// Encodes `bytes field = 1; uint32 field = 2;` (proto3: default values are omitted).
fn encode_pair(payload: &[u8], number: u32, dst: &mut BytesMut) {
    if !payload.is_empty() {
        put_bytes(dst, 0x0a, payload);
    }
    if number != 0 {
        dst.put_u8(0x10);
        put_varint(dst, u64::from(number));
    }
}

/// Decodes the two-field shape shared by both messages.
fn decode_pair(mut buf: Bytes) -> Result<(Bytes, u32), ProtoError> {
    let (mut payload, mut number) = (Bytes::new(), 0u32);
    while buf.has_remaining() {
        let key = get_varint(&mut buf)?;
        let (field, wire_type) = (key >> 3, (key & 7) as u8);
        match (field, wire_type) {
            (1, 2) => payload = get_bytes(&mut buf)?,
            (1, w) => {
                return Err(ProtoError::WrongWireType {
                    field: 1,
                    wire_type: w,
                    expected: 2,
                })
            }
            // uint32 is a varint; a larger value is truncated to 32 bits as protobuf does.
            (2, 0) => number = get_varint(&mut buf)? as u32,
            (2, w) => {
                return Err(ProtoError::WrongWireType {
                    field: 2,
                    wire_type: w,
                    expected: 0,
                })
            }
            (_, w) => skip_field(&mut buf, w)?,
        }
    }
    Ok((payload, number))
}

impl EchoRequest {
    /// Serialises the message.
    pub fn encode(&self, dst: &mut BytesMut) {
        encode_pair(&self.payload, self.repeat, dst)
    }
    /// Parses the message (zero-copy: `payload` is a slice of `buf`).
    pub fn decode(buf: Bytes) -> Result<EchoRequest, ProtoError> {
        decode_pair(buf).map(|(payload, repeat)| EchoRequest { payload, repeat })
    }
}

impl EchoReply {
    /// Serialises the message.
    pub fn encode(&self, dst: &mut BytesMut) {
        encode_pair(&self.payload, self.index, dst)
    }
    /// Parses the message (zero-copy: `payload` is a slice of `buf`).
    pub fn decode(buf: Bytes) -> Result<EchoReply, ProtoError> {
        decode_pair(buf).map(|(payload, index)| EchoReply { payload, index })
    }
}

/// Client side of the echo service: sends requests, receives replies.
#[derive(Debug, Clone, Copy, Default)]
pub struct EchoClientCodec;

impl Codec for EchoClientCodec {
    type Encode = EchoRequest;
    type Decode = EchoReply;
    fn encode(&self, item: &EchoRequest, dst: &mut BytesMut) -> Result<(), Status> {
        item.encode(dst);
        Ok(())
    }
    fn decode(&self, message: Bytes) -> Result<EchoReply, Status> {
        EchoReply::decode(message).map_err(|e| decode_error("EchoReply", e))
    }
}

/// Server side of the echo service: receives requests, sends replies.
#[derive(Debug, Clone, Copy, Default)]
pub struct EchoServerCodec;

impl Codec for EchoServerCodec {
    type Encode = EchoReply;
    type Decode = EchoRequest;
    fn encode(&self, item: &EchoReply, dst: &mut BytesMut) -> Result<(), Status> {
        item.encode(dst);
        Ok(())
    }
    fn decode(&self, message: Bytes) -> Result<EchoRequest, Status> {
        EchoRequest::decode(message).map_err(|e| decode_error("EchoRequest", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn matches_the_protobuf_wire_format() {
        // protoc --encode=h2mux.echo.v1.EchoRequest: payload "hi", repeat 300
        let mut b = BytesMut::new();
        EchoRequest {
            payload: Bytes::from_static(b"hi"),
            repeat: 300,
        }
        .encode(&mut b);
        assert_eq!(&b[..], &[0x0a, 0x02, b'h', b'i', 0x10, 0xac, 0x02]);
        // proto3 omits default values: the empty message is zero octets.
        let mut e = BytesMut::new();
        EchoReply::default().encode(&mut e);
        assert!(e.is_empty());
    }

    #[test]
    fn unknown_fields_are_skipped_and_the_last_value_wins() {
        let wire = [
            0x18, 0x05, 0x0a, 0x01, b'a', 0x22, 0x01, 0xff, 0x2d, 1, 2, 3, 4, 0x0a, 0x01, b'b',
            0x10, 0x07,
        ];
        let r = EchoRequest::decode(Bytes::copy_from_slice(&wire)).unwrap();
        assert_eq!(
            r,
            EchoRequest {
                payload: Bytes::from_static(b"b"),
                repeat: 7
            }
        );
    }

    #[test]
    fn malformed_input_is_a_typed_error() {
        assert_eq!(
            EchoRequest::decode(Bytes::from_static(&[0x0a, 0x05, b'a'])),
            Err(ProtoError::Truncated)
        );
        assert_eq!(
            EchoRequest::decode(Bytes::from_static(&[0x10])),
            Err(ProtoError::Truncated)
        );
        assert_eq!(
            EchoRequest::decode(Bytes::from_static(&[
                0x10, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01
            ])),
            Err(ProtoError::VarintTooLong)
        );
        assert!(matches!(
            EchoRequest::decode(Bytes::from_static(&[0x08, 0x01])),
            Err(ProtoError::WrongWireType { field: 1, .. })
        ));
        assert_eq!(
            EchoRequest::decode(Bytes::from_static(&[0x1b])),
            Err(ProtoError::BadWireType(3))
        );
    }

    proptest! {
        #[test]
        fn messages_round_trip(payload in proptest::collection::vec(any::<u8>(), 0..100), n in any::<u32>()) {
            let req = EchoRequest { payload: Bytes::from(payload), repeat: n };
            let mut b = BytesMut::new();
            req.encode(&mut b);
            prop_assert_eq!(EchoRequest::decode(b.freeze()).unwrap(), req);
        }

        #[test]
        fn random_input_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = EchoReply::decode(Bytes::from(data));
        }
    }
}
