//! The few pieces of the Protocol Buffers wire format the built-in messages need
//! (varints, length-delimited fields, skipping unknown fields), hand-written so that the
//! default build needs no protobuf toolchain.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Why a protobuf message did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    /// The input ended inside a field.
    #[error("truncated message")]
    Truncated,
    /// A varint longer than 10 octets.
    #[error("varint longer than 10 octets")]
    VarintTooLong,
    /// A known field with the wrong wire type.
    #[error("field {field} has wire type {wire_type}, expected {expected}")]
    WrongWireType {
        /// Field number.
        field: u64,
        /// Wire type seen.
        wire_type: u8,
        /// Wire type expected.
        expected: u8,
    },
    /// A `string` field that is not UTF-8.
    #[error("string field is not valid UTF-8")]
    InvalidUtf8,
    /// Wire types 3/4 (groups) or 6/7.
    #[error("unsupported wire type {0}")]
    BadWireType(u8),
}

pub(crate) fn put_varint(dst: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        dst.put_u8(v as u8 | 0x80);
        v >>= 7;
    }
    dst.put_u8(v as u8);
}

pub(crate) fn get_varint(buf: &mut Bytes) -> Result<u64, ProtoError> {
    let mut v = 0u64;
    for i in 0..10 {
        if !buf.has_remaining() {
            return Err(ProtoError::Truncated);
        }
        let b = buf.get_u8();
        v |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Ok(v);
        }
    }
    Err(ProtoError::VarintTooLong)
}

/// Skips the value of an unknown field of wire type `wire_type`.
pub(crate) fn skip_field(buf: &mut Bytes, wire_type: u8) -> Result<(), ProtoError> {
    match wire_type {
        0 => {
            get_varint(buf)?;
        }
        1 | 5 => {
            let n = if wire_type == 1 { 8 } else { 4 };
            if buf.remaining() < n {
                return Err(ProtoError::Truncated);
            }
            buf.advance(n);
        }
        2 => {
            let len = get_varint(buf)?;
            if len > buf.remaining() as u64 {
                return Err(ProtoError::Truncated);
            }
            buf.advance(len as usize);
        }
        w => return Err(ProtoError::BadWireType(w)),
    }
    Ok(())
}

/// Reads a length-delimited field's value (zero-copy).
pub(crate) fn get_bytes(buf: &mut Bytes) -> Result<Bytes, ProtoError> {
    let len = get_varint(buf)?;
    if len > buf.remaining() as u64 {
        return Err(ProtoError::Truncated);
    }
    Ok(buf.split_to(len as usize))
}

/// Writes a length-delimited field (`tag` is the full key octet).
pub(crate) fn put_bytes(dst: &mut BytesMut, tag: u8, value: &[u8]) {
    dst.put_u8(tag);
    put_varint(dst, value.len() as u64);
    dst.put_slice(value);
}
