//! Message compression: `grpc-encoding` / `grpc-accept-encoding` (gRPC compression spec).
//! Only `identity` and `gzip` are implemented. Decompression is bounded by the receiver's
//! maximum message size, so a small compressed message cannot expand without limit.

use std::io::{Read, Write};

use crate::status::{Code, Status};

/// A message encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// No compression.
    Identity,
    /// gzip (RFC 1952).
    Gzip,
}

impl Encoding {
    /// The header token.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Identity => "identity",
            Encoding::Gzip => "gzip",
        }
    }

    /// Parses a `grpc-encoding` value; unsupported encodings are an UNIMPLEMENTED status, as
    /// the spec requires of a server that receives one.
    pub fn parse(value: &[u8]) -> Result<Encoding, Status> {
        match value {
            b"identity" => Ok(Encoding::Identity),
            b"gzip" => Ok(Encoding::Gzip),
            other => Err(Status::new(
                Code::UNIMPLEMENTED,
                format!(
                    "message encoding {:?} is not supported (identity, gzip are)",
                    String::from_utf8_lossy(other)
                ),
            )),
        }
    }
}

/// The `grpc-accept-encoding` value we send.
pub const ACCEPT_ENCODING: &str = "identity,gzip";

/// Whether a peer's `grpc-accept-encoding` list includes `encoding`.
pub fn accepts(accept_encoding: &[u8], encoding: Encoding) -> bool {
    encoding == Encoding::Identity
        || accept_encoding
            .split(|b| *b == b',')
            .any(|t| t.trim_ascii() == encoding.as_str().as_bytes())
}

/// Compresses `data`.
pub fn compress(encoding: Encoding, data: &[u8]) -> Vec<u8> {
    match encoding {
        Encoding::Identity => data.to_vec(),
        Encoding::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(
                Vec::with_capacity(data.len() / 2 + 32),
                flate2::Compression::fast(),
            );
            // Writing into a Vec cannot fail.
            let _ = enc.write_all(data);
            enc.finish().unwrap_or_default()
        }
    }
}

/// Decompresses `data`, failing with RESOURCE_EXHAUSTED as soon as the output would exceed
/// `limit` octets and INTERNAL when the data is not valid for the encoding.
pub fn decompress(encoding: Encoding, data: &[u8], limit: usize) -> Result<Vec<u8>, Status> {
    match encoding {
        Encoding::Identity => Ok(data.to_vec()),
        Encoding::Gzip => {
            let mut out = Vec::with_capacity(data.len().saturating_mul(2).min(limit));
            let mut reader = flate2::read::GzDecoder::new(data).take(limit as u64 + 1);
            reader
                .read_to_end(&mut out)
                .map_err(|e| Status::new(Code::INTERNAL, format!("invalid gzip message: {e}")))?;
            if out.len() > limit {
                return Err(Status::new(
                    Code::RESOURCE_EXHAUSTED,
                    format!("decompressed message larger than the limit of {limit} octets"),
                ));
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_round_trips_and_shrinks_repetitive_data() {
        let data = b"hello hello hello hello hello hello".repeat(100);
        let z = compress(Encoding::Gzip, &data);
        assert!(z.len() < data.len() / 10);
        assert_eq!(decompress(Encoding::Gzip, &z, data.len()).unwrap(), data);
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_limit() {
        let z = compress(Encoding::Gzip, &vec![0u8; 10 << 20]);
        let err = decompress(Encoding::Gzip, &z, 1 << 20).unwrap_err();
        assert_eq!(err.code, Code::RESOURCE_EXHAUSTED);
    }

    #[test]
    fn garbage_is_internal_and_unknown_encodings_unimplemented() {
        assert_eq!(
            decompress(Encoding::Gzip, b"not gzip", 100)
                .unwrap_err()
                .code,
            Code::INTERNAL
        );
        assert_eq!(
            Encoding::parse(b"snappy").unwrap_err().code,
            Code::UNIMPLEMENTED
        );
        assert_eq!(Encoding::parse(b"gzip").unwrap(), Encoding::Gzip);
    }

    #[test]
    fn accept_encoding_lists_are_matched_by_token() {
        assert!(accepts(b"identity, gzip", Encoding::Gzip));
        assert!(!accepts(b"identity,deflate", Encoding::Gzip));
        assert!(!accepts(b"gzipx", Encoding::Gzip));
        assert!(accepts(b"", Encoding::Identity));
    }
}
