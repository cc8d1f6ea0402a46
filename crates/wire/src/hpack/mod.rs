//! HPACK header compression (RFC 7541). CONTRACT STUB — the HPACK work replaces the bodies.

use bytes::{Bytes, BytesMut};

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

/// An HPACK decoding error: every one is a connection error COMPRESSION_ERROR (RFC 9113 §4.3),
/// except [`HpackError::HeaderListTooLarge`], after which the compression state is still
/// intact (the block was decoded to the end) and the caller may refuse just the stream.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HpackError {
    /// Placeholder until the HPACK work lands.
    #[error(
        "decoded header list exceeds {limit} bytes (RFC 9113 §6.5.2 SETTINGS_MAX_HEADER_LIST_SIZE)"
    )]
    HeaderListTooLarge {
        /// The limit in force.
        limit: usize,
    },
}

/// The decoding side of one connection's HPACK context.
#[derive(Debug)]
pub struct Decoder {}

impl Decoder {
    /// `max_table_size`: our SETTINGS_HEADER_TABLE_SIZE; `max_header_list_size`: the cap on
    /// the decoded list (sum of name + value + 32 per field).
    pub fn new(max_table_size: u32, max_header_list_size: usize) -> Decoder {
        let _ = (max_table_size, max_header_list_size);
        todo!("hpack work")
    }
    /// Our SETTINGS_HEADER_TABLE_SIZE changed (takes effect when the peer acknowledged it).
    pub fn set_max_table_size(&mut self, max_table_size: u32) {
        let _ = max_table_size;
        todo!("hpack work")
    }
    /// Changes the decoded-list cap.
    pub fn set_max_header_list_size(&mut self, max_header_list_size: usize) {
        let _ = max_header_list_size;
        todo!("hpack work")
    }
    /// Decodes one complete header block.
    pub fn decode(&mut self, block: &[u8]) -> Result<Vec<HeaderField>, HpackError> {
        let _ = block;
        todo!("hpack work")
    }
}

/// The encoding side of one connection's HPACK context.
#[derive(Debug)]
pub struct Encoder {}

impl Default for Encoder {
    fn default() -> Self {
        Encoder::new()
    }
}

impl Encoder {
    /// An encoder for a peer whose table size is the default 4096.
    pub fn new() -> Encoder {
        todo!("hpack work")
    }
    /// The peer's SETTINGS_HEADER_TABLE_SIZE changed; a size update is emitted at the start
    /// of the next block.
    pub fn set_peer_max_table_size(&mut self, size: u32) {
        let _ = size;
        todo!("hpack work")
    }
    /// Encodes one complete header block, appended to `dst`.
    pub fn encode<'a>(
        &mut self,
        fields: impl IntoIterator<Item = &'a HeaderField>,
        dst: &mut BytesMut,
    ) {
        let _ = (fields.into_iter().count(), dst);
        todo!("hpack work")
    }
}
