//! Length-prefixed messages (gRPC over HTTP/2 spec, "Length-Prefixed-Message"):
//! a 1-octet Compressed-Flag, a 4-octet big-endian Message-Length, then the message.
//!
//! The decoder checks the declared length against the receiver's maximum message size before
//! buffering a single octet of the message (RESOURCE_EXHAUSTED), so a peer cannot make us
//! buffer a message we would refuse anyway.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::compression::{self, Encoding};
use crate::status::{Code, Status};

/// Octets of the prefix.
pub const PREFIX_LEN: usize = 5;

/// Default maximum size of a received message: 4 MiB (the gRPC default).
pub const DEFAULT_MAX_RECEIVE_SIZE: usize = 4 << 20;

/// Appends one message to `dst`, compressed with `encoding` when that is not identity.
pub fn encode(message: &[u8], encoding: Encoding, dst: &mut BytesMut) {
    match encoding {
        Encoding::Identity => {
            dst.reserve(PREFIX_LEN + message.len());
            dst.put_u8(0);
            dst.put_u32(message.len() as u32);
            dst.put_slice(message);
        }
        Encoding::Gzip => {
            let z = compression::compress(encoding, message);
            dst.reserve(PREFIX_LEN + z.len());
            dst.put_u8(1);
            dst.put_u32(z.len() as u32);
            dst.put_slice(&z);
        }
    }
}

/// Splits a stream of DATA into messages.
#[derive(Debug)]
pub struct MessageDecoder {
    max_message_size: usize,
    encoding: Option<Encoding>,
}

impl MessageDecoder {
    /// A decoder refusing messages above `max_message_size` octets (before and after
    /// decompression); `encoding` is the stream's `grpc-encoding` (None: not declared).
    pub fn new(max_message_size: usize, encoding: Option<Encoding>) -> MessageDecoder {
        MessageDecoder {
            max_message_size,
            encoding,
        }
    }

    /// Takes the next complete message out of `buf`, or `Ok(None)` when more bytes are needed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, Status> {
        if buf.len() < PREFIX_LEN {
            return Ok(None);
        }
        let flag = buf[0];
        let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
        if len > self.max_message_size {
            return Err(Status::new(
                Code::RESOURCE_EXHAUSTED,
                format!(
                    "received message larger than max ({len} vs. {})",
                    self.max_message_size
                ),
            ));
        }
        let compressed = match flag {
            0 => false,
            1 => true,
            other => {
                return Err(Status::new(
                    Code::INTERNAL,
                    format!("invalid Compressed-Flag {other} (must be 0 or 1)"),
                ))
            }
        };
        if buf.len() < PREFIX_LEN + len {
            buf.reserve(PREFIX_LEN + len - buf.len());
            return Ok(None);
        }
        buf.advance(PREFIX_LEN);
        let body = buf.split_to(len).freeze();
        if !compressed {
            return Ok(Some(body));
        }
        match self.encoding {
            None | Some(Encoding::Identity) => Err(Status::new(
                Code::INTERNAL,
                "compressed message but no grpc-encoding was declared for the stream",
            )),
            Some(enc) => compression::decompress(enc, &body, self.max_message_size)
                .map(|v| Some(Bytes::from(v))),
        }
    }

    /// Call at the end of the stream: leftover octets are a truncated message (INTERNAL).
    pub fn finish(&self, buf: &BytesMut) -> Result<(), Status> {
        if buf.is_empty() {
            Ok(())
        } else {
            Err(Status::new(
                Code::INTERNAL,
                format!(
                    "stream ended inside a message ({} octets left over)",
                    buf.len()
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_declared_length_over_the_limit_fails_before_the_body_arrives() {
        let mut buf = BytesMut::from(&[0u8, 0xff, 0xff, 0xff, 0xff][..]);
        let err = MessageDecoder::new(1024, None)
            .decode(&mut buf)
            .unwrap_err();
        assert_eq!(err.code, Code::RESOURCE_EXHAUSTED);
    }

    #[test]
    fn compressed_without_encoding_is_internal() {
        let mut buf = BytesMut::new();
        encode(b"x", Encoding::Gzip, &mut buf);
        let err = MessageDecoder::new(1024, None)
            .decode(&mut buf)
            .unwrap_err();
        assert_eq!(err.code, Code::INTERNAL);
    }

    #[test]
    fn bad_flag_and_truncation_are_internal() {
        let mut buf = BytesMut::from(&[2u8, 0, 0, 0, 0][..]);
        assert_eq!(
            MessageDecoder::new(10, None)
                .decode(&mut buf)
                .unwrap_err()
                .code,
            Code::INTERNAL
        );
        let d = MessageDecoder::new(10, None);
        assert_eq!(
            d.finish(&BytesMut::from(&[0u8, 0][..])).unwrap_err().code,
            Code::INTERNAL
        );
        assert!(d.finish(&BytesMut::new()).is_ok());
    }

    proptest! {
        #[test]
        fn messages_survive_any_split_of_the_stream(
            msgs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8),
            gzip in any::<bool>(),
            chunk in 1usize..64,
        ) {
            let enc = if gzip { Encoding::Gzip } else { Encoding::Identity };
            let mut wire = BytesMut::new();
            for m in &msgs {
                encode(m, enc, &mut wire);
            }
            let mut dec = MessageDecoder::new(4096, Some(enc));
            let mut buf = BytesMut::new();
            let mut out = Vec::new();
            for piece in wire.chunks(chunk) {
                buf.extend_from_slice(piece);
                while let Some(m) = dec.decode(&mut buf).unwrap() {
                    out.push(m.to_vec());
                }
            }
            dec.finish(&buf).unwrap();
            prop_assert_eq!(out, msgs);
        }

        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut buf = BytesMut::from(&data[..]);
            let mut dec = MessageDecoder::new(16, Some(Encoding::Gzip));
            while let Ok(Some(_)) = dec.decode(&mut buf) {}
        }
    }
}
