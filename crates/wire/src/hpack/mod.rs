//! HPACK header compression (RFC 7541).
//!
//! * [`Decoder`]: static and dynamic tables (§2.3, §4), every field representation (§6),
//!   integers with overflow protection (§5.1), string literals with table-driven Huffman
//!   decoding (§5.2, Appendix B), dynamic table size updates only at the start of a block and
//!   never above our SETTINGS_HEADER_TABLE_SIZE (§4.2, §6.3), and a hard cap on the decoded
//!   header list counted as RFC 9113 §6.5.2 does (name + value + 32 per field) — the HPACK
//!   bomb defence: past the cap the block is still decoded to its end, so the dynamic table
//!   stays in sync, but nothing more is stored and no string longer than the cap is ever
//!   materialised.
//! * [`Encoder`]: exact matches as indexed fields, everything else as literals with
//!   incremental indexing (name index reused when known) unless too large for the table,
//!   Huffman only when shorter, the never-indexed representation (§6.2.3) for sensitive
//!   fields (see [`Encoder::encode`]), and table-size updates when the peer changes its
//!   setting (§4.2, §6.3).

mod decoder;
mod encoder;
mod huffman;
mod table;
mod tables;

pub use decoder::Decoder;
pub use encoder::{Encoder, HuffmanPolicy};

use bytes::Bytes;

/// The default SETTINGS_HEADER_TABLE_SIZE (RFC 9113 §6.5.2).
pub const DEFAULT_TABLE_SIZE: u32 = 4096;

/// One header field. `sensitive` fields are encoded with the never-indexed literal
/// representation (RFC 7541 §6.2.3) and decoded fields carry the flag they arrived with.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HeaderField {
    /// Field name (lowercase in HTTP/2).
    pub name: Bytes,
    /// Field value.
    pub value: Bytes,
    /// Never-indexed: intermediaries must not put it in a compression table either.
    pub sensitive: bool,
}

impl HeaderField {
    /// A field that may be indexed.
    pub fn new(name: impl Into<Bytes>, value: impl Into<Bytes>) -> HeaderField {
        HeaderField {
            name: name.into(),
            value: value.into(),
            sensitive: false,
        }
    }
    /// A field that must never be indexed.
    pub fn sensitive(name: impl Into<Bytes>, value: impl Into<Bytes>) -> HeaderField {
        HeaderField {
            name: name.into(),
            value: value.into(),
            sensitive: true,
        }
    }
    /// Its size as RFC 7541 §4.1 and RFC 9113 §6.5.2 count it: name + value + 32.
    pub fn size(&self) -> usize {
        self.name.len() + self.value.len() + 32
    }
}

/// An HPACK decoding error. Every one is a connection error COMPRESSION_ERROR (RFC 9113 §4.3)
/// except [`HpackError::HeaderListTooLarge`], after which the compression state is intact
/// (the block was decoded to its end) and the caller may refuse just the stream.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HpackError {
    /// The decoded header list passed the cap.
    #[error(
        "decoded header list exceeds {limit} bytes (RFC 9113 §6.5.2 SETTINGS_MAX_HEADER_LIST_SIZE)"
    )]
    HeaderListTooLarge {
        /// The limit in force.
        limit: usize,
    },
    /// An integer needs more than 32 bits or too many continuation octets.
    #[error("RFC 7541 §5.1: integer overflows the implementation limit")]
    IntegerOverflow,
    /// The block ended in the middle of a representation.
    #[error("RFC 7541 §5.1/§5.2: header block truncated inside a representation")]
    Truncated,
    /// Index 0 in an indexed field representation.
    #[error("RFC 7541 §6.1: index 0 in an indexed header field")]
    ZeroIndex,
    /// An index beyond both tables.
    #[error(
        "RFC 7541 §2.3.3: index {index} is beyond the static and dynamic tables ({len} entries)"
    )]
    InvalidIndex {
        /// The index received.
        index: usize,
        /// Entries in both tables together.
        len: usize,
    },
    /// A Huffman string containing the EOS symbol.
    #[error("RFC 7541 §5.2: Huffman-encoded string contains the EOS symbol")]
    HuffmanEos,
    /// Huffman padding longer than 7 bits or not all ones.
    #[error("RFC 7541 §5.2: Huffman padding longer than 7 bits or not a prefix of EOS")]
    HuffmanPadding,
    /// A dynamic table size update above our SETTINGS_HEADER_TABLE_SIZE.
    #[error("RFC 7541 §6.3: dynamic table size update to {requested} exceeds the limit {max}")]
    TableSizeUpdateTooLarge {
        /// Size requested.
        requested: usize,
        /// Our SETTINGS_HEADER_TABLE_SIZE.
        max: usize,
    },
    /// A dynamic table size update after the first field of a block.
    #[error("RFC 7541 §4.2: dynamic table size update after the first header field of a block")]
    TableSizeUpdateNotAtStart,
    /// We lowered our SETTINGS_HEADER_TABLE_SIZE and the next block did not start with an
    /// update at or below it.
    #[error("RFC 7541 §4.2: header block does not start with the required dynamic table size update (limit {max})")]
    MissingTableSizeUpdate {
        /// The new limit.
        max: usize,
    },
    /// A string literal longer than anything we would keep (internal guard, reported when
    /// Huffman output passes the cap; the decoder turns it into `HeaderListTooLarge`).
    #[error("string literal longer than {limit} octets")]
    StringTooLong {
        /// The cap.
        limit: usize,
    },
}

impl HpackError {
    /// The wire error code: COMPRESSION_ERROR, except for the over-long header list, which is
    /// a stream-level refusal (the caller picks its code).
    pub fn code(&self) -> crate::ErrorCode {
        match self {
            HpackError::HeaderListTooLarge { .. } => crate::ErrorCode::PROTOCOL_ERROR,
            _ => crate::ErrorCode::COMPRESSION_ERROR,
        }
    }

    /// True when the HPACK context is broken and the connection must end (RFC 9113 §4.3).
    pub fn is_connection_error(&self) -> bool {
        !matches!(self, HpackError::HeaderListTooLarge { .. })
    }
}
