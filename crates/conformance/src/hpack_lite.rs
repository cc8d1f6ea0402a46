//! A deliberately tiny HPACK *encoder* (RFC 7541 §5.1, §5.2, §6) for crafting request header
//! blocks — including invalid ones (uppercase names, bad indices, misplaced table-size updates)
//! that a real encoder would refuse to produce.
//!
//! Only literal representations without indexing and with raw (non-Huffman) strings are used,
//! so a block never changes the peer's dynamic table and one case cannot disturb the next.

/// Appends an HPACK integer with an `n`-bit prefix (RFC 7541 §5.1); `first` holds the
/// representation's flag bits above the prefix.
pub fn integer(dst: &mut Vec<u8>, first: u8, prefix_bits: u8, mut value: u64) {
    let max_prefix = (1u64 << prefix_bits) - 1;
    if value < max_prefix {
        dst.push(first | value as u8);
        return;
    }
    dst.push(first | max_prefix as u8);
    value -= max_prefix;
    while value >= 128 {
        dst.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    dst.push(value as u8);
}

/// Appends a raw string literal (H bit clear, RFC 7541 §5.2).
pub fn string(dst: &mut Vec<u8>, s: &[u8]) {
    integer(dst, 0x00, 7, s.len() as u64);
    dst.extend_from_slice(s);
}

/// Appends "literal header field without indexing — new name" (RFC 7541 §6.2.2).
pub fn literal(dst: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    dst.push(0x00);
    string(dst, name);
    string(dst, value);
}

/// Appends "literal header field with incremental indexing — new name" (RFC 7541 §6.2.1):
/// the field becomes the newest dynamic table entry (index 62) of the peer's decoder.
pub fn literal_indexed(dst: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    dst.push(0x40);
    string(dst, name);
    string(dst, value);
}

/// Encodes a whole header list as literals without indexing.
pub fn block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        literal(&mut out, name.as_bytes(), value.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_match_rfc7541_appendix_c1() {
        // C.1.1: 10 with a 5-bit prefix.
        let mut v = Vec::new();
        integer(&mut v, 0, 5, 10);
        assert_eq!(v, [0x0a]);
        // C.1.2: 1337 with a 5-bit prefix.
        v.clear();
        integer(&mut v, 0, 5, 1337);
        assert_eq!(v, [0x1f, 0x9a, 0x0a]);
        // C.1.3: 42 starting at an octet boundary.
        v.clear();
        integer(&mut v, 0, 8, 42);
        assert_eq!(v, [0x2a]);
    }

    #[test]
    fn literal_without_indexing_matches_rfc7541_c2_2_layout() {
        // C.2.2 uses an indexed name; the new-name form is 0x00, name, value.
        let mut v = Vec::new();
        literal(&mut v, b"ab", b"c");
        assert_eq!(v, [0x00, 0x02, b'a', b'b', 0x01, b'c']);
    }
}
