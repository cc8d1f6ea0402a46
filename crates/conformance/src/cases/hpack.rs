//! RFC 7541 §2.3.3, §4.2, §4.4, §5.1, §5.2, §6.1, §6.3 — decoding errors a server MUST detect.
//! Each is a connection error of type COMPRESSION_ERROR (RFC 9113 §4.3).

use h2mux_wire::ErrorCode;

use super::{case, expect_connection_error, Case, Outcome};
use crate::conn::{flag, kind, Conn};
use crate::hpack_lite;

/// Sends `prefix` followed by a valid request as one field block on stream 1.
fn block_with(c: &mut Conn, prefix: &[u8], suffix: &[u8]) -> Outcome {
    let mut block = prefix.to_vec();
    block.extend(c.request_block("GET", &[]));
    block.extend_from_slice(suffix);
    c.send(
        kind::HEADERS,
        flag::END_HEADERS | flag::END_STREAM,
        1,
        &block,
    );
    expect_connection_error(c, ErrorCode::COMPRESSION_ERROR)
}

/// §2–§6 of RFC 7541.
pub fn cases() -> Vec<Case> {
    vec![
        case(
            "hpack-2.3.3/index-out-of-range",
            "RFC 7541 §2.3.3",
            "Indices strictly greater than the sum of the lengths of both tables MUST be treated as a decoding error.",
            // 0xbe: indexed field 62, the first dynamic index, while the dynamic table is empty.
            |c| block_with(c, &[0xbe], &[]),
        ),
        case(
            "hpack-6.1/index-zero",
            "RFC 7541 §6.1",
            "The index value of 0 is not used. It MUST be treated as a decoding error if found in an indexed header field representation.",
            |c| block_with(c, &[0x80], &[]),
        ),
        case(
            "hpack-4.2/table-size-update-above-limit",
            "RFC 7541 §6.3",
            "The new maximum size MUST be lower than or equal to the limit determined by the protocol using HPACK. A value that exceeds this limit MUST be treated as a decoding error.",
            |c| {
                let mut update = Vec::new();
                hpack_lite::integer(&mut update, 0x20, 5, 4097);
                block_with(c, &update, &[])
            },
        ),
        case(
            "hpack-4.2/table-size-update-after-field",
            "RFC 7541 §4.2",
            "This dynamic table size update MUST occur at the beginning of the first header block following the change to the dynamic table size.",
            |c| block_with(c, &[], &[0x20]),
        ),
        case(
            "hpack-5.2/huffman-eos",
            "RFC 7541 §5.2",
            "A Huffman-encoded string literal containing the EOS symbol MUST be treated as a decoding error.",
            // A literal whose Huffman name is 32 one-bits: the 30-bit EOS code, then padding.
            |c| block_with(c, &[0x00, 0x84, 0xff, 0xff, 0xff, 0xff, 0x01, b'v'], &[]),
        ),
        case(
            "hpack-5.2/huffman-padding-too-long",
            "RFC 7541 §5.2",
            "A padding strictly longer than 7 bits MUST be treated as a decoding error.",
            // 'a' (00011) followed by 11 one-bits of padding.
            |c| block_with(c, &[0x00, 0x82, 0x1f, 0xff, 0x01, b'v'], &[]),
        ),
        case(
            "hpack-5.2/huffman-padding-not-eos-prefix",
            "RFC 7541 §5.2",
            "A padding not corresponding to the most significant bits of the code for the EOS symbol MUST be treated as a decoding error.",
            // 'a' (00011) followed by three zero bits.
            |c| block_with(c, &[0x00, 0x81, 0x18, 0x01, b'v'], &[]),
        ),
        case(
            "hpack-5.1/integer-overflow",
            "RFC 7541 §5.1",
            "Integer encodings that exceed implementation limits — in value or octet length — MUST be treated as decoding errors.",
            // A string length with ten continuation octets.
            |c| block_with(c, &[0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], &[]),
        ),
        case(
            "hpack-2.3.3/index-beyond-dynamic-table",
            "RFC 7541 §2.3.3",
            "Indices strictly greater than the sum of the lengths of both tables MUST be treated as a decoding error.",
            |c| {
                // One entry in the dynamic table (index 62), then a reference to index 63.
                let mut first = c.request_block("GET", &[]);
                hpack_lite::literal_indexed(&mut first, b"x-one", b"1");
                c.send(kind::HEADERS, flag::END_HEADERS | flag::END_STREAM, 1, &first);
                let answered = super::expect_response(c, 1);
                if answered != Outcome::Pass {
                    return answered;
                }
                let mut block = c.request_block("GET", &[]);
                block.push(0xbf);
                c.send(kind::HEADERS, flag::END_HEADERS | flag::END_STREAM, 3, &block);
                expect_connection_error(c, ErrorCode::COMPRESSION_ERROR)
            },
        ),
        case(
            "hpack-4.4/oversized-entry-empties-table",
            "RFC 7541 §4.4",
            "An attempt to add an entry larger than the maximum size causes the table to be emptied of all existing entries and results in an empty table (not an error). Indices strictly greater than the sum of the lengths of both tables MUST be treated as a decoding error (§2.3.3): afterwards index 62 is one.",
            |c| {
                // "x-small: 1" is entry 62; then a 5 000-octet entry (> 4 096) empties the table.
                let mut first = c.request_block("GET", &[]);
                hpack_lite::literal_indexed(&mut first, b"x-small", b"1");
                hpack_lite::literal_indexed(&mut first, b"x-big", &[b'b'; 5000]);
                c.send(kind::HEADERS, flag::END_HEADERS | flag::END_STREAM, 1, &first);
                let answered = super::expect_response(c, 1);
                if answered != Outcome::Pass {
                    return answered;
                }
                let mut block = c.request_block("GET", &[]);
                block.push(0xbe);
                c.send(kind::HEADERS, flag::END_HEADERS | flag::END_STREAM, 3, &block);
                expect_connection_error(c, ErrorCode::COMPRESSION_ERROR)
            },
        ),
        case(
            "hpack-5.2/string-beyond-block",
            "RFC 9113 §4.3",
            "A decoding error in a field block MUST be treated as a connection error of type COMPRESSION_ERROR. (RFC 7541 §5.2: a string literal announcing 10 octets where the block has 3 left cannot be decoded.)",
            |c| block_with(c, &[], &[0x00, 0x0a, b'a', b'b', b'c']),
        ),
        case(
            "hpack-5.1/integer-beyond-block",
            "RFC 9113 §4.3",
            "A decoding error in a field block MUST be treated as a connection error of type COMPRESSION_ERROR. (RFC 7541 §5.1: an integer whose continuation bit is set on the block's last octet cannot be decoded.)",
            |c| block_with(c, &[], &[0x00, 0x7f, 0x80]),
        ),
    ]
}
