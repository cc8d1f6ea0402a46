//! The HPACK decoder (RFC 7541 §3, §5, §6).

use bytes::Bytes;

use super::table::{self, DynamicTable, STATIC_LEN};
use super::{huffman, HeaderField, HpackError};

/// Continuation octets allowed in one integer: 5 × 7 bits covers 32 bits past any prefix.
const MAX_INTEGER_OCTETS: usize = 5;

/// The decoding side of one connection's HPACK context.
#[derive(Debug)]
pub struct Decoder {
    table: DynamicTable,
    /// Our SETTINGS_HEADER_TABLE_SIZE: the most the peer may set the table to.
    max_table_size: usize,
    /// Set when we lowered our setting below the table's current maximum: the next block must
    /// begin with a size update at or below it (§4.2).
    update_required: bool,
    max_header_list_size: usize,
}

/// A cursor over one header block.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// An integer with an `n`-bit prefix (§5.1), limited to u32.
    fn integer(&mut self, prefix_bits: u8) -> Result<usize, HpackError> {
        let first = self.peek().ok_or(HpackError::Truncated)?;
        self.pos += 1;
        let max_prefix = (1u32 << prefix_bits) - 1;
        let mut value = u32::from(first) & max_prefix;
        if value < max_prefix {
            return Ok(value as usize);
        }
        let mut shift = 0u32;
        for _ in 0..MAX_INTEGER_OCTETS {
            let b = self.peek().ok_or(HpackError::Truncated)?;
            self.pos += 1;
            let add = u64::from(b & 0x7f) << shift;
            let sum = u64::from(value) + add;
            value = u32::try_from(sum).map_err(|_| HpackError::IntegerOverflow)?;
            if b & 0x80 == 0 {
                return Ok(value as usize);
            }
            shift += 7;
        }
        Err(HpackError::IntegerOverflow)
    }

    /// A string literal (§5.2). Returns None (after skipping it) when it would be longer than
    /// `limit` octets: such a string can never be stored.
    fn string(&mut self, limit: usize) -> Result<Option<Bytes>, HpackError> {
        let first = self.peek().ok_or(HpackError::Truncated)?;
        let huffman_coded = first & 0x80 != 0;
        let len = self.integer(7)?;
        let end = self.pos.checked_add(len).ok_or(HpackError::Truncated)?;
        let raw = self.buf.get(self.pos..end).ok_or(HpackError::Truncated)?;
        self.pos = end;
        if !huffman_coded {
            return Ok((raw.len() <= limit).then(|| Bytes::copy_from_slice(raw)));
        }
        // Huffman output is at most 8/5 of the input; decode with the cap.
        let mut out = Vec::with_capacity((raw.len() * 8 / 5 + 1).min(limit.saturating_add(1)));
        match huffman::decode(raw, &mut out, limit) {
            Ok(()) => Ok(Some(Bytes::from(out))),
            // Too long to keep: still check the whole coding, without storing it, so that
            // an EOS or padding error is not masked.
            Err(HpackError::StringTooLong { .. }) => huffman::validate(raw).map(|()| None),
            Err(e) => Err(e),
        }
    }
}

impl Decoder {
    /// `max_table_size`: our SETTINGS_HEADER_TABLE_SIZE; `max_header_list_size`: the cap on
    /// the decoded list (sum of name + value + 32 per field).
    ///
    /// The table starts at `max_table_size` without a size update. Until the peer has
    /// acknowledged our SETTINGS its encoder assumes 4096 (RFC 9113 §6.5.2), so start with
    /// [`DEFAULT_TABLE_SIZE`](super::DEFAULT_TABLE_SIZE) and call
    /// [`Decoder::set_max_table_size`] on the acknowledgement — lowering it then makes the
    /// peer's next block start with a size update, as §4.2 requires.
    pub fn new(max_table_size: u32, max_header_list_size: usize) -> Decoder {
        Decoder {
            table: DynamicTable::new(max_table_size as usize),
            max_table_size: max_table_size as usize,
            update_required: false,
            max_header_list_size,
        }
    }

    /// Our SETTINGS_HEADER_TABLE_SIZE changed (call when the peer acknowledged it). When it
    /// drops below the table's current maximum, the next block must begin with a size update.
    pub fn set_max_table_size(&mut self, max_table_size: u32) {
        let max = max_table_size as usize;
        self.max_table_size = max;
        if max < self.table.max_size() {
            self.update_required = true;
        }
    }

    /// Changes the decoded-list cap.
    pub fn set_max_header_list_size(&mut self, max_header_list_size: usize) {
        self.max_header_list_size = max_header_list_size;
    }

    /// The dynamic table's current size in octets (§4.1).
    pub fn table_size(&self) -> usize {
        self.table.size()
    }

    fn lookup(&self, index: usize) -> Result<(Bytes, Bytes), HpackError> {
        if index == 0 {
            return Err(HpackError::ZeroIndex);
        }
        let found = if index <= STATIC_LEN {
            table::static_entry(index)
        } else {
            self.table.get(index - STATIC_LEN - 1)
        };
        found.cloned().ok_or(HpackError::InvalidIndex {
            index,
            len: STATIC_LEN + self.table.len(),
        })
    }

    /// Decodes one complete header block.
    ///
    /// On [`HpackError::HeaderListTooLarge`] the whole block has been processed and the
    /// dynamic table is in sync with the peer's encoder; on any other error the context is
    /// unusable and the connection must end with COMPRESSION_ERROR.
    pub fn decode(&mut self, block: &[u8]) -> Result<Vec<HeaderField>, HpackError> {
        let mut r = Reader { buf: block, pos: 0 };
        // Every field takes at least one octet: one allocation for the usual short block.
        let mut fields = Vec::with_capacity(block.len().clamp(1, 16));
        let mut list_size = 0usize;
        let mut too_large = false;
        let mut seen_field = false;
        if self.update_required && r.peek().is_some_and(|b| b & 0xe0 != 0x20) {
            return Err(HpackError::MissingTableSizeUpdate {
                max: self.max_table_size,
            });
        }
        while let Some(b) = r.peek() {
            let (name, value, sensitive, index_it) = if b & 0x80 != 0 {
                // §6.1 indexed header field.
                let index = r.integer(7)?;
                let (n, v) = self.lookup(index)?;
                (Some(n), Some(v), false, false)
            } else if b & 0xe0 == 0x20 {
                // §6.3 dynamic table size update: only before the first field.
                if seen_field {
                    return Err(HpackError::TableSizeUpdateNotAtStart);
                }
                let size = r.integer(5)?;
                if size > self.max_table_size {
                    return Err(HpackError::TableSizeUpdateTooLarge {
                        requested: size,
                        max: self.max_table_size,
                    });
                }
                self.table.set_max_size(size);
                self.update_required = false;
                continue;
            } else {
                // §6.2: literal with incremental indexing (01), never indexed (0001) or
                // without indexing (0000).
                let (prefix, index_it, sensitive) = match b {
                    _ if b & 0xc0 == 0x40 => (6, true, false),
                    _ if b & 0xf0 == 0x10 => (4, false, true),
                    _ => (4, false, false),
                };
                // A string longer than this can never be stored: not in the list (the room
                // left under the cap; none once it is passed) and, for an indexed literal,
                // not in the table either (an entry larger than the table empties it
                // instead, §4.4). Such a string is skipped, never materialised.
                let list_room = if too_large {
                    0
                } else {
                    self.max_header_list_size.saturating_sub(list_size)
                };
                let string_limit = if index_it {
                    list_room.max(self.table.max_size())
                } else {
                    list_room
                };
                let name_index = r.integer(prefix)?;
                let name = if name_index == 0 {
                    r.string(string_limit)?
                } else {
                    Some(self.lookup(name_index)?.0)
                };
                let value = r.string(string_limit)?;
                (name, value, sensitive, index_it)
            };
            if self.update_required {
                return Err(HpackError::MissingTableSizeUpdate {
                    max: self.max_table_size,
                });
            }
            seen_field = true;
            match (name, value) {
                (Some(name), Some(value)) => {
                    if index_it {
                        self.table.insert(name.clone(), value.clone());
                    }
                    let size = table::entry_size(&name, &value);
                    list_size = list_size.saturating_add(size);
                    if list_size > self.max_header_list_size {
                        too_large = true;
                        fields = Vec::new();
                    }
                    if !too_large {
                        fields.push(HeaderField {
                            name,
                            value,
                            sensitive,
                        });
                    }
                }
                _ => {
                    // A string too long to store: the list is over the cap; an indexed
                    // literal this large could not fit the table either, so it empties it.
                    too_large = true;
                    fields = Vec::new();
                    if index_it {
                        self.table.clear();
                    }
                }
            }
        }
        if self.update_required && block.is_empty() {
            return Err(HpackError::MissingTableSizeUpdate {
                max: self.max_table_size,
            });
        }
        if too_large {
            return Err(HpackError::HeaderListTooLarge {
                limit: self.max_header_list_size,
            });
        }
        Ok(fields)
    }
}
