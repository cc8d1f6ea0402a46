//! RFC 9113 §8.1 (message framing, content-length, trailers), §8.2 (fields), §8.3 (pseudo-headers).
//!
//! "Malformed requests or responses that are detected MUST be treated as a stream error of
//! type PROTOCOL_ERROR" (§8.1.1) — every case here sends one malformed request on stream 1.

use h2mux_wire::ErrorCode;

use super::{case, expect_stream_error, Case, Outcome};
use crate::conn::{flag, kind, Conn};
use crate::hpack_lite;

/// Sends `fields` (in order, as given) as the complete request on stream 1 and expects the
/// stream error §8.1.1 requires.
fn malformed(c: &mut Conn, fields: &[(&str, &str)]) -> Outcome {
    let block = hpack_lite::block(fields);
    c.send(
        kind::HEADERS,
        flag::END_HEADERS | flag::END_STREAM,
        1,
        &block,
    );
    expect_stream_error(c, 1, &[ErrorCode::PROTOCOL_ERROR])
}

const AUTHORITY: &str = "conformance.test";

/// §8.
pub fn cases() -> Vec<Case> {
    vec![
        case(
            "8.1.1/content-length-mismatch",
            "RFC 9113 §8.1.1",
            "A request or response is also malformed if the value of a content-length header field does not equal the sum of the DATA frame payload lengths that form the content. Malformed requests or responses that are detected MUST be treated as a stream error of type PROTOCOL_ERROR.",
            |c| {
                let block = c.request_block("POST", &[("content-length", "1")]);
                c.send(kind::HEADERS, flag::END_HEADERS, 1, &block);
                c.send(kind::DATA, flag::END_STREAM, 1, b"two");
                expect_stream_error(c, 1, &[ErrorCode::PROTOCOL_ERROR])
            },
        ),
        case(
            "8.1/second-headers-without-end-stream",
            "RFC 9113 §8.1",
            "An endpoint that receives a HEADERS frame without the END_STREAM flag set after receiving the HEADERS frame that opens a request MUST treat the corresponding request as malformed.",
            |c| {
                c.open_stream(1, false);
                c.send(kind::HEADERS, flag::END_HEADERS, 1, &hpack_lite::block(&[("x-trailer", "1")]));
                expect_stream_error(c, 1, &[ErrorCode::PROTOCOL_ERROR])
            },
        ),
        case(
            "8.2/uppercase-field-name",
            "RFC 9113 §8.2",
            "Field names MUST be converted to lowercase when constructing an HTTP/2 message. A request or response containing uppercase characters in field names MUST be treated as malformed.",
            |c| malformed(c, &[(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", AUTHORITY), ("X-Upper", "1")]),
        ),
        case(
            "8.2.1/field-value-with-newline",
            "RFC 9113 §8.2.1",
            "A field value MUST NOT contain the zero value (ASCII NUL, 0x00), line feed (ASCII LF, 0x0a), or carriage return (ASCII CR, 0x0d) at any position.",
            |c| malformed(c, &[(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", AUTHORITY), ("x-split", "a\nb")]),
        ),
        case(
            "8.2.2/connection-specific-field",
            "RFC 9113 §8.2.2",
            "An endpoint MUST NOT generate an HTTP/2 message containing connection-specific header fields. Any message containing connection-specific header fields MUST be treated as malformed.",
            |c| malformed(c, &[(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", AUTHORITY), ("connection", "keep-alive")]),
        ),
        case(
            "8.2.2/te-other-than-trailers",
            "RFC 9113 §8.2.2",
            "The only exception to this is the TE header field, which MAY be present in an HTTP/2 request; when it is, it MUST NOT contain any value other than \"trailers\".",
            |c| malformed(c, &[(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", AUTHORITY), ("te", "gzip")]),
        ),
        case(
            "8.2.1/field-name-with-space",
            "RFC 9113 §8.2.1",
            "A field name MUST NOT contain characters in the ranges 0x00-0x20, 0x41-0x5a, or 0x7f-0xff (all ranges inclusive). (A request that breaks this is malformed.)",
            |c| malformed(c, &[(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", AUTHORITY), ("x bad", "1")]),
        ),
        case(
            "8.2.2/transfer-encoding",
            "RFC 9113 §8.2.2",
            "An endpoint MUST NOT generate an HTTP/2 message containing connection-specific header fields (Connection, Proxy-Connection, Keep-Alive, Transfer-Encoding, Upgrade). Any message containing connection-specific header fields MUST be treated as malformed.",
            |c| malformed(c, &[(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", AUTHORITY), ("transfer-encoding", "chunked")]),
        ),
        case(
            "8.2.2/upgrade",
            "RFC 9113 §8.2.2",
            "An endpoint MUST NOT generate an HTTP/2 message containing connection-specific header fields (Connection, Proxy-Connection, Keep-Alive, Transfer-Encoding, Upgrade). Any message containing connection-specific header fields MUST be treated as malformed.",
            |c| malformed(c, &[(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", AUTHORITY), ("upgrade", "h2c")]),
        ),
        case(
            "8.2.2/keep-alive",
            "RFC 9113 §8.2.2",
            "An endpoint MUST NOT generate an HTTP/2 message containing connection-specific header fields (Connection, Proxy-Connection, Keep-Alive, Transfer-Encoding, Upgrade). Any message containing connection-specific header fields MUST be treated as malformed.",
            |c| malformed(c, &[(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", AUTHORITY), ("keep-alive", "timeout=5")]),
        ),
        case(
            "8.5/connect-with-path",
            "RFC 9113 §8.5",
            "The \":scheme\" and \":path\" pseudo-header fields MUST be omitted (from a CONNECT request). A CONNECT request that does not conform to these restrictions is malformed.",
            |c| malformed(c, &[(":method", "CONNECT"), (":authority", "example.com:443"), (":path", "/")]),
        ),
        case(
            "8.5/connect-without-authority",
            "RFC 9113 §8.5",
            "The \":authority\" pseudo-header field contains the host and port to connect to. A CONNECT request that does not conform to these restrictions is malformed (and malformed requests MUST be treated as a stream error of type PROTOCOL_ERROR).",
            |c| malformed(c, &[(":method", "CONNECT")]),
        ),
        case(
            "8.3/unknown-pseudo-header",
            "RFC 9113 §8.3",
            "Endpoints MUST treat a request or response that contains undefined or invalid pseudo-header fields as malformed.",
            |c| malformed(c, &[(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", AUTHORITY), (":foo", "bar")]),
        ),
        case(
            "8.3/response-pseudo-header-in-request",
            "RFC 9113 §8.3",
            "Pseudo-header fields defined for responses MUST NOT appear in requests.",
            |c| malformed(c, &[(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", AUTHORITY), (":status", "200")]),
        ),
        case(
            "8.3/pseudo-header-after-regular-field",
            "RFC 9113 §8.3",
            "All pseudo-header fields MUST appear in a field block before all regular field lines. Any request or response that contains a pseudo-header field that appears in a field block after a regular field line MUST be treated as malformed.",
            |c| malformed(c, &[(":method", "GET"), (":scheme", "http"), (":authority", AUTHORITY), ("x-regular", "1"), (":path", "/")]),
        ),
        case(
            "8.3/pseudo-header-in-trailers",
            "RFC 9113 §8.1",
            "Trailers MUST NOT include pseudo-header fields.",
            |c| {
                c.open_stream(1, false);
                c.send(kind::HEADERS, flag::END_HEADERS | flag::END_STREAM, 1, &hpack_lite::block(&[(":path", "/")]));
                expect_stream_error(c, 1, &[ErrorCode::PROTOCOL_ERROR])
            },
        ),
        case(
            "8.3.1/duplicate-path",
            "RFC 9113 §8.3",
            "The same pseudo-header field name MUST NOT appear more than once in a field block. A field block for an HTTP request or response that contains a repeated pseudo-header field name MUST be treated as malformed.",
            |c| malformed(c, &[(":method", "GET"), (":scheme", "http"), (":path", "/"), (":path", "/"), (":authority", AUTHORITY)]),
        ),
        case(
            "8.3.1/missing-method",
            "RFC 9113 §8.3.1",
            "All HTTP/2 requests MUST include exactly one valid value for the \":method\", \":scheme\", and \":path\" pseudo-header fields, unless they are CONNECT requests.",
            |c| malformed(c, &[(":scheme", "http"), (":path", "/"), (":authority", AUTHORITY)]),
        ),
        case(
            "8.3.1/missing-scheme",
            "RFC 9113 §8.3.1",
            "All HTTP/2 requests MUST include exactly one valid value for the \":method\", \":scheme\", and \":path\" pseudo-header fields, unless they are CONNECT requests.",
            |c| malformed(c, &[(":method", "GET"), (":path", "/"), (":authority", AUTHORITY)]),
        ),
        case(
            "8.3.1/missing-path",
            "RFC 9113 §8.3.1",
            "All HTTP/2 requests MUST include exactly one valid value for the \":method\", \":scheme\", and \":path\" pseudo-header fields, unless they are CONNECT requests.",
            |c| malformed(c, &[(":method", "GET"), (":scheme", "http"), (":authority", AUTHORITY)]),
        ),
        case(
            "8.3.1/empty-path",
            "RFC 9113 §8.3.1",
            "This pseudo-header field MUST NOT be empty for \"http\" or \"https\" URIs; \"http\" or \"https\" URIs that do not contain a path component MUST include a value of '/'.",
            |c| malformed(c, &[(":method", "GET"), (":scheme", "http"), (":path", ""), (":authority", AUTHORITY)]),
        ),
        case(
            "8.2.1/field-value-with-nul",
            "RFC 9113 §8.2.1",
            "A field value MUST NOT contain the zero value (ASCII NUL, 0x00), line feed (ASCII LF, 0x0a), or carriage return (ASCII CR, 0x0d) at any position. A request or response that contains a field that violates any of these conditions MUST be treated as malformed.",
            |c| malformed(c, &[(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", AUTHORITY), ("x-nul", "a\0b")]),
        ),
        case(
            "8.2.1/field-value-with-cr",
            "RFC 9113 §8.2.1",
            "A field value MUST NOT contain the zero value (ASCII NUL, 0x00), line feed (ASCII LF, 0x0a), or carriage return (ASCII CR, 0x0d) at any position. A request or response that contains a field that violates any of these conditions MUST be treated as malformed.",
            |c| malformed(c, &[(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", AUTHORITY), ("x-cr", "a\rb")]),
        ),
        case(
            "8.2.1/field-value-leading-whitespace",
            "RFC 9113 §8.2.1",
            "A field value MUST NOT start or end with an ASCII whitespace character (ASCII SP or HTAB, 0x20 or 0x09). A request or response that contains a field that violates any of these conditions MUST be treated as malformed.",
            |c| malformed(c, &[(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", AUTHORITY), ("x-lead", " value")]),
        ),
        case(
            "8.2.1/field-value-trailing-whitespace",
            "RFC 9113 §8.2.1",
            "A field value MUST NOT start or end with an ASCII whitespace character (ASCII SP or HTAB, 0x20 or 0x09). A request or response that contains a field that violates any of these conditions MUST be treated as malformed.",
            |c| malformed(c, &[(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", AUTHORITY), ("x-trail", "value\t")]),
        ),
        case(
            "8.2.1/field-name-with-colon",
            "RFC 9113 §8.2.1",
            "With the exception of pseudo-header fields, which have a name that starts with a single colon, field names MUST NOT include a colon (ASCII COLON, 0x3a). A request or response that contains a field that violates any of these conditions MUST be treated as malformed.",
            |c| malformed(c, &[(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", AUTHORITY), ("x:colon", "1")]),
        ),
        case(
            "8.2.1/field-name-non-ascii",
            "RFC 9113 §8.2.1",
            "A field name MUST NOT contain characters in the ranges 0x00-0x20, 0x41-0x5a, or 0x7f-0xff (all ranges inclusive). A request or response that contains a field that violates any of these conditions MUST be treated as malformed.",
            |c| malformed(c, &[(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", AUTHORITY), ("x-\u{e9}", "1")]),
        ),
        case(
            "8.2.2/proxy-connection",
            "RFC 9113 §8.2.2",
            "An endpoint MUST NOT generate an HTTP/2 message containing connection-specific header fields (Connection, Proxy-Connection, Keep-Alive, Transfer-Encoding, Upgrade). Any message containing connection-specific header fields MUST be treated as malformed.",
            |c| malformed(c, &[(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", AUTHORITY), ("proxy-connection", "keep-alive")]),
        ),
        case(
            "8.3/duplicate-method",
            "RFC 9113 §8.3",
            "The same pseudo-header field name MUST NOT appear more than once in a field block. A field block for an HTTP request or response that contains a repeated pseudo-header field name MUST be treated as malformed.",
            |c| malformed(c, &[(":method", "GET"), (":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", AUTHORITY)]),
        ),
        case(
            "8.3/duplicate-scheme",
            "RFC 9113 §8.3",
            "The same pseudo-header field name MUST NOT appear more than once in a field block. A field block for an HTTP request or response that contains a repeated pseudo-header field name MUST be treated as malformed.",
            |c| malformed(c, &[(":method", "GET"), (":scheme", "http"), (":scheme", "http"), (":path", "/"), (":authority", AUTHORITY)]),
        ),
        case(
            "8.3/duplicate-authority",
            "RFC 9113 §8.3",
            "The same pseudo-header field name MUST NOT appear more than once in a field block. A field block for an HTTP request or response that contains a repeated pseudo-header field name MUST be treated as malformed.",
            |c| malformed(c, &[(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", AUTHORITY), (":authority", AUTHORITY)]),
        ),
    ]
}
