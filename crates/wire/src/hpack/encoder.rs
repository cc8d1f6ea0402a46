//! The HPACK encoder (RFC 7541 §4, §5, §6).

use bytes::{BufMut, BytesMut};

use super::table::{self, DynamicTable, STATIC_LEN};
use super::{huffman, HeaderField, DEFAULT_TABLE_SIZE};

/// When string literals are Huffman-coded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HuffmanPolicy {
    /// Only when that is shorter than the raw string (the default).
    WhenShorter,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// The encoding side of one connection's HPACK context.
///
/// Indexing policy: a field found in the static or dynamic table is sent as an index; any
/// other field is a literal with incremental indexing (reusing a known name's index) unless
/// its entry would take more than 3/4 of the table (it would flush everything else for one
/// field) — then it is a literal without indexing. Sensitive fields are never indexed: those
/// the caller marks ([`HeaderField::sensitive`]), every `authorization` and
/// `proxy-authorization`, and every `cookie` (RFC 7541 §7.1.3). Cookies cost 1–2 % of
/// compression on the hpack-test-case raw data this way; [`Encoder::set_index_long_cookies`]
/// indexes cookies of 20 octets or more, as RFC 7541 §7.1.3 allows (only short values are
/// practical to recover by guessing).
#[derive(Debug)]
pub struct Encoder {
    table: DynamicTable,
    /// The most table we are willing to use, whatever the peer allows (memory bound).
    limit: usize,
    /// Smallest size the table must pass through before the next block (§4.2), if any.
    pending_min: Option<usize>,
    /// Size the table must have at the start of the next block.
    pending_final: usize,
    huffman: HuffmanPolicy,
    index_long_cookies: bool,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder::new()
    }
}

/// The largest dynamic table the encoder uses by default even if the peer allows more.
pub const DEFAULT_ENCODER_TABLE_LIMIT: usize = DEFAULT_TABLE_SIZE as usize;

impl Encoder {
    /// An encoder for a peer whose table size is the default 4096.
    pub fn new() -> Encoder {
        Encoder::with_initial_table_size(DEFAULT_TABLE_SIZE as usize)
    }

    /// An encoder whose table starts at `size` without a size update on the wire — for when
    /// both ends agreed on it out of band (as in RFC 7541 Appendix C.5).
    pub fn with_initial_table_size(size: usize) -> Encoder {
        Encoder {
            table: DynamicTable::with_lookup(size),
            limit: size.max(DEFAULT_ENCODER_TABLE_LIMIT),
            pending_min: None,
            pending_final: size,
            huffman: HuffmanPolicy::WhenShorter,
            index_long_cookies: false,
        }
    }

    /// Caps the table this encoder uses (default 4096), whatever the peer allows.
    pub fn set_table_limit(&mut self, limit: usize) {
        self.limit = limit;
        let size = self.pending_final.min(limit);
        self.schedule(size);
    }

    /// Index `cookie` values of 20 octets or more (default: never index any cookie).
    pub fn set_index_long_cookies(&mut self, yes: bool) {
        self.index_long_cookies = yes;
    }

    /// Chooses when strings are Huffman-coded.
    pub fn set_huffman(&mut self, policy: HuffmanPolicy) {
        self.huffman = policy;
    }

    /// The peer's SETTINGS_HEADER_TABLE_SIZE changed; a size update is emitted at the start
    /// of the next block (the smallest size passed through first, then the final one, §4.2).
    pub fn set_peer_max_table_size(&mut self, size: u32) {
        let size = (size as usize).min(self.limit);
        self.schedule(size);
    }

    fn schedule(&mut self, size: usize) {
        let current = self.table.max_size();
        let min = self.pending_min.unwrap_or(current).min(size);
        self.pending_final = size;
        self.pending_min = if min == current && size == current {
            None
        } else {
            Some(min)
        };
    }

    /// The dynamic table's current size in octets (§4.1).
    pub fn table_size(&self) -> usize {
        self.table.size()
    }

    /// Encodes one complete header block, appended to `dst`.
    pub fn encode<'a>(
        &mut self,
        fields: impl IntoIterator<Item = &'a HeaderField>,
        dst: &mut BytesMut,
    ) {
        if let Some(min) = self.pending_min.take() {
            // §4.2: the smallest size passed through first, when it evicts more than the
            // final size does; then the final size, when it differs from the current one.
            let current = self.table.max_size();
            let target = self.pending_final;
            if min < current && min < target {
                integer(dst, 0x20, 5, min);
                self.table.set_max_size(min);
            }
            if target != current || min < current {
                integer(dst, 0x20, 5, target);
                self.table.set_max_size(target);
            }
        }
        for field in fields {
            self.encode_field(field, dst);
        }
    }

    fn encode_field(&mut self, field: &HeaderField, dst: &mut BytesMut) {
        let (name, value) = (&field.name[..], &field.value[..]);
        let sensitive = field.sensitive
            || name == b"authorization"
            || name == b"proxy-authorization"
            || (name == b"cookie" && !(self.index_long_cookies && value.len() >= 20));
        let (static_exact, static_name) = table::static_lookup(name, value);
        if let (false, Some(i)) = (sensitive, static_exact) {
            integer(dst, 0x80, 7, i);
            return;
        }
        let (dyn_exact, dyn_name) = self.table.lookup(name, value);
        if let (false, Some(p)) = (sensitive, dyn_exact) {
            integer(dst, 0x80, 7, STATIC_LEN + 1 + p);
            return;
        }
        let name_index = static_name
            .or(dyn_name.map(|p| STATIC_LEN + 1 + p))
            .unwrap_or(0);
        let size = table::entry_size(name, value);
        let index_it = !sensitive && size * 4 <= self.table.max_size() * 3;
        let (first, prefix) = match (sensitive, index_it) {
            (true, _) => (0x10, 4),
            (false, true) => (0x40, 6),
            (false, false) => (0x00, 4),
        };
        integer(dst, first, prefix, name_index);
        if name_index == 0 {
            self.string(dst, name);
        }
        self.string(dst, value);
        if index_it {
            self.table.insert(field.name.clone(), field.value.clone());
        }
    }

    fn string(&self, dst: &mut BytesMut, s: &[u8]) {
        let coded_len = huffman::encoded_len(s);
        let use_huffman = match self.huffman {
            HuffmanPolicy::Always => true,
            HuffmanPolicy::Never => false,
            HuffmanPolicy::WhenShorter => coded_len < s.len(),
        };
        // The octets plus a length of up to 5 octets (§5.1, 7-bit prefix).
        dst.reserve(if use_huffman { coded_len } else { s.len() } + 6);
        if use_huffman {
            integer(dst, 0x80, 7, coded_len);
            huffman::encode(s, dst);
        } else {
            integer(dst, 0x00, 7, s.len());
            dst.put_slice(s);
        }
    }
}

/// Appends an integer with an `n`-bit prefix (§5.1); `first` holds the flag bits.
fn integer(dst: &mut BytesMut, first: u8, prefix_bits: u8, mut value: usize) {
    let max_prefix = (1usize << prefix_bits) - 1;
    if value < max_prefix {
        dst.put_u8(first | value as u8);
        return;
    }
    dst.put_u8(first | max_prefix as u8);
    value -= max_prefix;
    while value >= 128 {
        dst.put_u8((value % 128) as u8 | 0x80);
        value /= 128;
    }
    dst.put_u8(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_octets(enc: &mut Encoder, n: usize) -> Vec<u8> {
        let mut dst = BytesMut::new();
        // ":method: GET" is static index 2: one octet after any size updates.
        enc.encode(&[HeaderField::new(&b":method"[..], &b"GET"[..])], &mut dst);
        assert_eq!(dst.last(), Some(&0x82));
        dst[..dst.len() - 1].iter().copied().take(n).collect()
    }

    #[test]
    fn a_lowered_setting_is_signalled_once() {
        let mut enc = Encoder::new();
        enc.set_peer_max_table_size(1024);
        // 1024 = 31 + 0x61 + (7 << 7).
        assert_eq!(first_octets(&mut enc, 8), [0x3f, 0xe1, 0x07]);
        assert_eq!(
            first_octets(&mut enc, 8),
            [],
            "only the next block carries it"
        );
    }

    #[test]
    fn a_drop_and_rise_between_blocks_signals_the_minimum_first() {
        // "the smallest maximum table size that occurs in that interval MUST be signaled in
        // a dynamic table size update" (RFC 7541 §4.2).
        let mut enc = Encoder::new();
        enc.set_peer_max_table_size(0);
        enc.set_peer_max_table_size(4096);
        assert_eq!(first_octets(&mut enc, 8), [0x20, 0x3f, 0xe1, 0x1f]);
        let mut enc = Encoder::new();
        enc.set_peer_max_table_size(1024);
        enc.set_peer_max_table_size(2048);
        assert_eq!(
            first_octets(&mut enc, 8),
            [0x3f, 0xe1, 0x07, 0x3f, 0xe1, 0x0f]
        );
    }

    #[test]
    fn no_update_when_nothing_changes_and_no_redundant_minimum() {
        let mut enc = Encoder::new();
        enc.set_peer_max_table_size(4096);
        assert_eq!(first_octets(&mut enc, 8), []);
        // Above the encoder's own limit (4096): it keeps using 4096, so nothing to signal.
        enc.set_peer_max_table_size(65_536);
        assert_eq!(first_octets(&mut enc, 8), []);
        // A rise only: the final size alone (the table never went below 256).
        let mut enc = Encoder::with_initial_table_size(256);
        enc.set_peer_max_table_size(1024);
        assert_eq!(first_octets(&mut enc, 8), [0x3f, 0xe1, 0x07]);
    }
}
