//! One test per HPACK decoding error, each quoting the rule of RFC 7541 (or RFC 9113) it
//! enforces, plus the HPACK-bomb defence.

use bytes::BytesMut;
use h2mux_wire::hpack::{Decoder, Encoder, HeaderField, HpackError};
use h2mux_wire::ErrorCode;

fn decoder() -> Decoder {
    Decoder::new(4096, 16 * 1024)
}

/// "Integer encodings that exceed implementation limits — in value or octet length — MUST be
/// treated as decoding errors." (RFC 7541 §5.1)
#[test]
fn integer_overflow_in_value_and_in_length() {
    // 2^32 as an index: 0xff then continuation octets worth more than u32.
    let too_big = [0xff, 0x80, 0x80, 0x80, 0x80, 0x10];
    assert_eq!(decoder().decode(&too_big), Err(HpackError::IntegerOverflow));
    // Endless continuation octets (zero-valued), longer than any u32 needs.
    let too_long = [0xff, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00];
    assert_eq!(
        decoder().decode(&too_long),
        Err(HpackError::IntegerOverflow)
    );
}

/// A block that ends inside a representation cannot be decoded (RFC 7541 §5.1, §5.2).
#[test]
fn truncated_blocks() {
    for block in [
        &[0xff][..],
        &[0x40, 0x05, b'a'],
        &[0x40, 0x01, b'a', 0x03, b'b'],
        &[0x0f],
    ] {
        assert_eq!(
            decoder().decode(block),
            Err(HpackError::Truncated),
            "{block:02x?}"
        );
    }
}

/// "The index value of 0 is not used. It MUST be treated as a decoding error if found in an
/// indexed header field representation." (RFC 7541 §6.1)
#[test]
fn index_zero() {
    assert_eq!(decoder().decode(&[0x80]), Err(HpackError::ZeroIndex));
}

/// "Indices strictly greater than the sum of the lengths of both tables MUST be treated as a
/// decoding error." (RFC 7541 §2.3.3)
#[test]
fn index_beyond_both_tables() {
    assert_eq!(
        decoder().decode(&[0xbe]),
        Err(HpackError::InvalidIndex { index: 62, len: 61 })
    );
    // Also as the name index of a literal.
    assert_eq!(
        decoder().decode(&[0x7f, 0x00, 0x00]),
        Err(HpackError::InvalidIndex { index: 63, len: 61 })
    );
}

/// "A Huffman-encoded string literal containing the EOS symbol MUST be treated as a decoding
/// error." (RFC 7541 §5.2)
#[test]
fn huffman_eos() {
    assert_eq!(
        decoder().decode(&[0x00, 0x84, 0xff, 0xff, 0xff, 0xff, 0x00]),
        Err(HpackError::HuffmanEos)
    );
}

/// "A padding strictly longer than 7 bits MUST be treated as a decoding error. A padding not
/// corresponding to the most significant bits of the code for the EOS symbol MUST be treated
/// as a decoding error." (RFC 7541 §5.2)
#[test]
fn huffman_padding() {
    assert_eq!(
        decoder().decode(&[0x00, 0x82, 0x1f, 0xff, 0x00]),
        Err(HpackError::HuffmanPadding)
    );
    assert_eq!(
        decoder().decode(&[0x00, 0x81, 0x18, 0x00]),
        Err(HpackError::HuffmanPadding)
    );
}

/// "The new maximum size MUST be lower than or equal to the limit determined by the protocol
/// using HPACK. A value that exceeds this limit MUST be treated as a decoding error."
/// (RFC 7541 §6.3)
#[test]
fn table_size_update_above_the_setting() {
    // 0x3f e2 1f = 31 + 0x62 + (0x1f << 7) = 4097.
    assert_eq!(
        decoder().decode(&[0x3f, 0xe2, 0x1f]),
        Err(HpackError::TableSizeUpdateTooLarge {
            requested: 4097,
            max: 4096
        })
    );
}

/// "This dynamic table size update MUST occur at the beginning of the first header block
/// following the change to the dynamic table size." (RFC 7541 §4.2) — and an update after a
/// field is out of place.
#[test]
fn table_size_update_after_a_field() {
    assert_eq!(
        decoder().decode(&[0x82, 0x20]),
        Err(HpackError::TableSizeUpdateNotAtStart)
    );
    // Several updates in a row at the start are fine.
    assert!(decoder().decode(&[0x20, 0x3f, 0xe1, 0x1f, 0x82]).is_ok());
}

/// When we lower SETTINGS_HEADER_TABLE_SIZE below the table's current maximum, the peer's next
/// block MUST begin with a size update (RFC 7541 §4.2).
#[test]
fn missing_size_update_after_our_setting_dropped() {
    let mut dec = decoder();
    dec.set_max_table_size(1024);
    assert_eq!(
        dec.decode(&[0x82]),
        Err(HpackError::MissingTableSizeUpdate { max: 1024 })
    );
    let mut dec = decoder();
    dec.set_max_table_size(1024);
    // 0x3f e1 07 = 31 + 0x61 + (7 << 7) = 1024.
    assert!(dec.decode(&[0x3f, 0xe1, 0x07, 0x82]).is_ok());
    assert!(
        dec.decode(&[0x82]).is_ok(),
        "only the first block needs the update"
    );
}

/// The decoded header list is capped as RFC 9113 §6.5.2 counts it (name + value + 32 per
/// field); past the cap the block is decoded to the end (table in sync) and the error is the
/// stream-level `HeaderListTooLarge`, not a COMPRESSION_ERROR.
#[test]
fn header_list_cap_keeps_the_table_in_sync() {
    let mut enc = Encoder::new();
    let mut dec = Decoder::new(4096, 200);
    let big: Vec<HeaderField> = (0..10)
        .map(|i| HeaderField::new(format!("x-field-{i}"), "v".repeat(20)))
        .collect();
    let mut block = BytesMut::new();
    enc.encode(&big, &mut block);
    let err = dec.decode(&block).unwrap_err();
    assert_eq!(err, HpackError::HeaderListTooLarge { limit: 200 });
    assert!(!err.is_connection_error());
    assert_eq!(
        dec.table_size(),
        enc.table_size(),
        "the decoder's table followed the encoder's"
    );
    // The next block, which refers to entries indexed by the refused one, still decodes.
    let small = vec![big[9].clone(), big[8].clone()];
    let mut block = BytesMut::new();
    enc.encode(&small, &mut block);
    assert_eq!(block.len(), 2, "both fields are indexed references");
    assert_eq!(dec.decode(&block).unwrap(), small);
}

/// The HPACK bomb (RFC 7541 §7.3, RFC 9113 §10.5.1): one 4 000-octet entry referenced 10 000
/// times would decode to 40 MB; the decoder stops storing at the cap.
#[test]
fn hpack_bomb_is_refused_without_expanding() {
    let mut block = vec![0x40, 0x06];
    block.extend_from_slice(b"x-bomb");
    block.extend_from_slice(&[0x7f, 0x81, 0x1e]); // raw string length 127 + 0x01 + (0x1e << 7) = 3968
    block.extend(std::iter::repeat_n(b'b', 3968));
    block.extend(std::iter::repeat_n(0xbe, 10_000));
    let mut dec = Decoder::new(4096, 64 * 1024);
    assert_eq!(
        dec.decode(&block),
        Err(HpackError::HeaderListTooLarge { limit: 64 * 1024 })
    );
}

/// A string literal declared longer than anything we could keep is skipped, never allocated.
#[test]
fn giant_literal_is_not_materialised() {
    let mut block = vec![0x00, 0x01, b'x', 0x7f];
    // Length 127 + 1 000 000.
    let mut n = 1_000_000u32;
    while n >= 128 {
        block.push((n % 128) as u8 | 0x80);
        n /= 128;
    }
    block.push(n as u8);
    block.extend(std::iter::repeat_n(b'a', 1_000_127));
    let mut dec = Decoder::new(4096, 8 * 1024);
    assert_eq!(
        dec.decode(&block),
        Err(HpackError::HeaderListTooLarge { limit: 8 * 1024 })
    );
}

/// A Huffman string too long to keep is skipped without being materialised, but its coding
/// is still checked: an EOS inside it is the §5.2 COMPRESSION_ERROR, not a mere refusal.
#[test]
fn giant_huffman_literal_is_checked_but_not_materialised() {
    // 3 000 octets of Huffman code ('a' = 00011, padding ones): about 4 800 decoded octets,
    // over the 1 024-octet cap and over the 256-octet table.
    let mut code = [0x18u8, 0xc6, 0x31, 0x8c, 0x63].repeat(600);
    let literal = |code: &[u8]| {
        let mut block = vec![0x00, 0x01, b'x', 0xff];
        let mut n = code.len() - 127;
        while n >= 128 {
            block.push((n % 128) as u8 | 0x80);
            n /= 128;
        }
        block.push(n as u8);
        block.extend_from_slice(code);
        block
    };
    let mut dec = Decoder::new(256, 1024);
    assert_eq!(
        dec.decode(&literal(&code)),
        Err(HpackError::HeaderListTooLarge { limit: 1024 })
    );
    // The same string with EOS (30 ones) at its end.
    code.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
    assert_eq!(
        Decoder::new(256, 1024).decode(&literal(&code)),
        Err(HpackError::HuffmanEos)
    );
}

/// Past the cap, a literal that will not be indexed is skipped without being materialised,
/// while an indexed one still enters the table (RFC 7541 §4.4 requires the table to follow
/// the encoder's) and can be referenced by the next block.
#[test]
fn past_the_cap_indexed_literals_still_enter_the_table() {
    let mut dec = Decoder::new(4096, 100);
    // Literal without indexing, new name "a", value of 127 + 1 + (6 << 7) = 896 octets.
    let mut block = vec![0x00, 0x01, b'a', 0x7f, 0x81, 0x06];
    block.extend(std::iter::repeat_n(b'v', 896));
    // Literal with incremental indexing, new name "b", value of 127 + 0x75 + (2 << 7) = 500.
    block.extend([0x40, 0x01, b'b', 0x7f, 0xf5, 0x02]);
    block.extend(std::iter::repeat_n(b'w', 500));
    assert_eq!(
        dec.decode(&block),
        Err(HpackError::HeaderListTooLarge { limit: 100 })
    );
    assert_eq!(dec.table_size(), 1 + 500 + 32);
    dec.set_max_header_list_size(1000);
    assert_eq!(
        dec.decode(&[0xbe]).unwrap(),
        vec![HeaderField::new("b", "w".repeat(500))]
    );
}

#[test]
fn every_error_but_the_list_cap_is_a_compression_error() {
    assert_eq!(HpackError::ZeroIndex.code(), ErrorCode::COMPRESSION_ERROR);
    assert!(HpackError::HuffmanEos.is_connection_error());
    assert!(!HpackError::HeaderListTooLarge { limit: 1 }.is_connection_error());
}

/// Sensitive fields use the never-indexed literal (RFC 7541 §6.2.3) and stay out of the table.
#[test]
fn authorization_cookie_and_marked_fields_are_never_indexed() {
    let mut enc = Encoder::new();
    let list = vec![
        HeaderField::new(&b"authorization"[..], &b"Bearer abc"[..]),
        HeaderField::new(&b"cookie"[..], &b"session=0123456789abcdefghij"[..]),
        HeaderField::sensitive(&b"x-api-key"[..], &b"k"[..]),
        HeaderField::new(&b"x-plain"[..], &b"v"[..]),
    ];
    let mut block = BytesMut::new();
    enc.encode(&list, &mut block);
    let back = Decoder::new(4096, 1 << 16).decode(&block).unwrap();
    let flags: Vec<bool> = back.iter().map(|f| f.sensitive).collect();
    assert_eq!(flags, [true, true, true, false]);
    assert_eq!(enc.table_size(), 7 + 1 + 32, "only x-plain was indexed");
    // With long-cookie indexing on, a 20+ octet cookie is indexed (RFC 7541 §7.1.3 allows it).
    let mut enc = Encoder::new();
    enc.set_index_long_cookies(true);
    let mut block = BytesMut::new();
    enc.encode(&list[1..2], &mut block);
    assert_eq!(enc.table_size(), 6 + 28 + 32);
}

/// A lowered peer table size is announced at the start of the next block, the smallest size
/// first when it dropped and rose again (RFC 7541 §4.2).
#[test]
fn encoder_announces_table_size_changes() {
    let mut enc = Encoder::new();
    enc.set_peer_max_table_size(1024);
    enc.set_peer_max_table_size(2048);
    let mut block = BytesMut::new();
    enc.encode(
        &[HeaderField::new(&b":method"[..], &b"GET"[..])],
        &mut block,
    );
    // 1024 = 0x3f e1 07, 2048 = 0x3f e1 0f, then :method GET (0x82).
    assert_eq!(&block[..], &[0x3f, 0xe1, 0x07, 0x3f, 0xe1, 0x0f, 0x82]);
    let mut dec = Decoder::new(4096, 1 << 16);
    dec.set_max_table_size(2048);
    assert_eq!(dec.decode(&block).unwrap().len(), 1);
    // No change, no update.
    let mut block = BytesMut::new();
    enc.encode(
        &[HeaderField::new(&b":method"[..], &b"GET"[..])],
        &mut block,
    );
    assert_eq!(&block[..], &[0x82]);
}
