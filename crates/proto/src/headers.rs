//! Header-list validation of RFC 9113 §8.2–§8.3 (and §8.1 message framing).
//!
//! Received lists that break a rule make the message malformed (§8.1.1: "Malformed requests
//! or responses that are detected MUST be treated as a stream error of type PROTOCOL_ERROR");
//! lists the application wants to send are checked with the same code before anything is
//! encoded.

use h2mux_wire::hpack::HeaderField;
use thiserror::Error;

/// A rule of RFC 9113 §8.2–§8.3 broken by a header list.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HeaderError {
    /// §8.2.1: "A field name MUST NOT contain characters in the ranges 0x00-0x20, 0x41-0x5a,
    /// or 0x7f-0xff" (uppercase included), nor a colon outside pseudo-headers, and must not
    /// be empty.
    #[error("RFC 9113 §8.2.1: invalid character in field name or empty name")]
    InvalidName,
    /// §8.2.1: "A field value MUST NOT contain the zero value (0x00), line feed (0x0a), or
    /// carriage return (0x0d)" nor start or end with whitespace.
    #[error("RFC 9113 §8.2.1: invalid field value")]
    InvalidValue,
    /// §8.2.2: connection-specific fields (connection, keep-alive, proxy-connection,
    /// transfer-encoding, upgrade) MUST NOT appear.
    #[error("RFC 9113 §8.2.2: connection-specific header field")]
    ConnectionSpecific,
    /// §8.2.2: "TE ... MUST NOT contain any value other than \"trailers\"".
    #[error("RFC 9113 §8.2.2: te other than \"trailers\"")]
    InvalidTe,
    /// §8.3: "All pseudo-header fields MUST appear in a field block before all regular field
    /// lines".
    #[error("RFC 9113 §8.3: pseudo-header after a regular field")]
    PseudoAfterRegular,
    /// §8.3: unknown pseudo-header, or one defined for the other message kind.
    #[error("RFC 9113 §8.3: pseudo-header not valid here")]
    InvalidPseudo,
    /// §8.3: "The same pseudo-header field name MUST NOT appear more than once".
    #[error("RFC 9113 §8.3: duplicate pseudo-header")]
    DuplicatePseudo,
    /// §8.3.1 / §8.3.2: a mandatory pseudo-header is missing or empty.
    #[error("RFC 9113 §8.3: missing mandatory pseudo-header {0}")]
    MissingPseudo(&'static str),
    /// §8.1: "Pseudo-header fields MUST NOT appear in a trailer section".
    #[error("RFC 9113 §8.1: pseudo-header in trailers")]
    PseudoInTrailers,
    /// §8.3.2: :status must be a three-digit code.
    #[error("RFC 9113 §8.3.2: invalid :status")]
    InvalidStatus,
    /// §8.3.1: CONNECT must carry :authority and no :scheme or :path (§8.5).
    #[error("RFC 9113 §8.5: CONNECT with :scheme or :path, or without :authority")]
    InvalidConnect,
    /// RFC 9110 §8.6: content-length that is not a decimal number, or several that disagree.
    #[error("RFC 9110 §8.6: invalid content-length")]
    InvalidContentLength,
    /// §8.1: DATA before the HEADERS that open the message.
    #[error("RFC 9113 §8.1: DATA before HEADERS")]
    DataBeforeHeaders,
    /// §8.1: a response with a 1xx status and END_STREAM, or HEADERS after the final
    /// response or request headers without END_STREAM.
    #[error("RFC 9113 §8.1: HEADERS out of sequence")]
    UnexpectedHeaders,
}

/// What the core needs to remember of a valid request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RequestInfo {
    pub is_head: bool,
    pub content_length: Option<u64>,
}

/// What the core needs to remember of a valid response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ResponseInfo {
    pub status: u16,
    pub content_length: Option<u64>,
}

/// A regular field name (§8.2.1): not empty, none of 0x00-0x20, 0x41-0x5a, 0x7f-0xff, and
/// no colon ("field names MUST NOT include a colon" outside pseudo-headers).
fn valid_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name
            .iter()
            .all(|&b| !matches!(b, 0..=0x20 | b':' | b'A'..=b'Z' | 0x7f..=0xff))
}

fn valid_value(v: &[u8]) -> bool {
    if v.iter().any(|&b| matches!(b, 0 | b'\n' | b'\r')) {
        return false;
    }
    let ws = |b: &u8| *b == b' ' || *b == b'\t';
    !(v.first().is_some_and(ws) || v.last().is_some_and(ws))
}

fn parse_u64(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in v {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(b - b'0');
    }
    Some(n)
}

/// Checks the regular (non-pseudo) fields from `fields[start..]`; returns content-length.
fn regular(fields: &[HeaderField]) -> Result<Option<u64>, HeaderError> {
    let mut content_length = None;
    for f in fields {
        let name = &f.name[..];
        if name.first() == Some(&b':') {
            return Err(HeaderError::PseudoAfterRegular);
        }
        if !valid_name(name) {
            return Err(HeaderError::InvalidName);
        }
        if !valid_value(&f.value) {
            return Err(HeaderError::InvalidValue);
        }
        match name {
            b"connection" | b"keep-alive" | b"proxy-connection" | b"transfer-encoding"
            | b"upgrade" => return Err(HeaderError::ConnectionSpecific),
            b"te" if &f.value[..] != b"trailers" => return Err(HeaderError::InvalidTe),
            b"content-length" => {
                let n = parse_u64(&f.value).ok_or(HeaderError::InvalidContentLength)?;
                if content_length.is_some_and(|c| c != n) {
                    return Err(HeaderError::InvalidContentLength);
                }
                content_length = Some(n);
            }
            _ => {}
        }
    }
    Ok(content_length)
}

/// Number of leading pseudo-header fields.
fn pseudo_count(fields: &[HeaderField]) -> usize {
    fields
        .iter()
        .take_while(|f| f.name.first() == Some(&b':'))
        .count()
}

/// Validates a request header list (§8.3.1).
pub(crate) fn validate_request(fields: &[HeaderField]) -> Result<RequestInfo, HeaderError> {
    let n = pseudo_count(fields);
    let (pseudo, rest) = fields.split_at(n);
    let (mut method, mut scheme, mut path, mut authority, mut protocol) =
        (None, None, None, None, None);
    for f in pseudo {
        let slot = match &f.name[..] {
            b":method" => &mut method,
            b":scheme" => &mut scheme,
            b":path" => &mut path,
            b":authority" => &mut authority,
            b":protocol" => &mut protocol,
            _ => return Err(HeaderError::InvalidPseudo),
        };
        if slot.is_some() {
            return Err(HeaderError::DuplicatePseudo);
        }
        if !valid_value(&f.value) {
            return Err(HeaderError::InvalidValue);
        }
        *slot = Some(&f.value[..]);
    }
    let method = method
        .filter(|m| !m.is_empty())
        .ok_or(HeaderError::MissingPseudo(":method"))?;
    if method == b"CONNECT" && protocol.is_none() {
        // §8.5: ":scheme and :path pseudo-header fields MUST be omitted", ":authority"
        // MUST be present.
        if scheme.is_some() || path.is_some() || authority.is_none_or(|a| a.is_empty()) {
            return Err(HeaderError::InvalidConnect);
        }
    } else {
        if protocol.is_some() && method != b"CONNECT" {
            return Err(HeaderError::InvalidPseudo);
        }
        scheme
            .filter(|s| !s.is_empty())
            .ok_or(HeaderError::MissingPseudo(":scheme"))?;
        // §8.3.1: "This pseudo-header field MUST NOT be empty for "http" or "https" URIs".
        path.filter(|p| !p.is_empty())
            .ok_or(HeaderError::MissingPseudo(":path"))?;
    }
    let content_length = regular(rest)?;
    Ok(RequestInfo {
        is_head: method == b"HEAD",
        content_length,
    })
}

/// Validates a response header list (§8.3.2).
pub(crate) fn validate_response(fields: &[HeaderField]) -> Result<ResponseInfo, HeaderError> {
    let n = pseudo_count(fields);
    let (pseudo, rest) = fields.split_at(n);
    let mut status = None;
    for f in pseudo {
        if &f.name[..] != b":status" {
            return Err(HeaderError::InvalidPseudo);
        }
        if status.is_some() {
            return Err(HeaderError::DuplicatePseudo);
        }
        let v = &f.value[..];
        if v.len() != 3 || !v.iter().all(u8::is_ascii_digit) || v[0] == b'0' {
            return Err(HeaderError::InvalidStatus);
        }
        status = Some(
            u16::from(v[0] - b'0') * 100 + u16::from(v[1] - b'0') * 10 + u16::from(v[2] - b'0'),
        );
    }
    let status = status.ok_or(HeaderError::MissingPseudo(":status"))?;
    let content_length = regular(rest)?;
    Ok(ResponseInfo {
        status,
        content_length,
    })
}

/// Validates a trailer section (§8.1: no pseudo-headers).
pub(crate) fn validate_trailers(fields: &[HeaderField]) -> Result<(), HeaderError> {
    if pseudo_count(fields) > 0 {
        return Err(HeaderError::PseudoInTrailers);
    }
    regular(fields).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n: &'static str, v: &'static str) -> HeaderField {
        HeaderField::new(n, v)
    }

    fn get() -> Vec<HeaderField> {
        vec![
            h(":method", "GET"),
            h(":scheme", "https"),
            h(":path", "/"),
            h(":authority", "x"),
        ]
    }

    #[test]
    fn valid_request_and_response() {
        assert_eq!(
            validate_request(&get()),
            Ok(RequestInfo {
                is_head: false,
                content_length: None
            })
        );
        let r = vec![h(":status", "200"), h("content-length", "5")];
        assert_eq!(
            validate_response(&r),
            Ok(ResponseInfo {
                status: 200,
                content_length: Some(5)
            })
        );
        let c = vec![h(":method", "CONNECT"), h(":authority", "host:443")];
        assert!(validate_request(&c).is_ok());
    }

    #[test]
    fn request_rules() {
        // §8.3.1: "All HTTP/2 requests MUST include exactly one valid value for the :method,
        // :scheme, and :path pseudo-header fields"
        let mut r = get();
        r.remove(2);
        assert_eq!(
            validate_request(&r),
            Err(HeaderError::MissingPseudo(":path"))
        );
        let mut r = get();
        r.push(h("accept", "*/*"));
        r.push(h(":path", "/again"));
        assert_eq!(validate_request(&r), Err(HeaderError::PseudoAfterRegular));
        let mut r = get();
        r.insert(1, h(":method", "PUT"));
        assert_eq!(validate_request(&r), Err(HeaderError::DuplicatePseudo));
        let mut r = get();
        r.insert(0, h(":status", "200"));
        assert_eq!(validate_request(&r), Err(HeaderError::InvalidPseudo));
        let mut r = get();
        r.push(h("Host", "x"));
        assert_eq!(validate_request(&r), Err(HeaderError::InvalidName));
        // §8.2.1: "field names MUST NOT include a colon" (found by the conformance suite).
        let mut r = get();
        r.push(h("x:colon", "1"));
        assert_eq!(validate_request(&r), Err(HeaderError::InvalidName));
        let mut r = get();
        r.push(h("connection", "close"));
        assert_eq!(validate_request(&r), Err(HeaderError::ConnectionSpecific));
        let mut r = get();
        r.push(h("te", "gzip"));
        assert_eq!(validate_request(&r), Err(HeaderError::InvalidTe));
        let mut r = get();
        r.push(h("te", "trailers"));
        assert!(validate_request(&r).is_ok());
        let mut r = get();
        r.push(h("x", "a\r\nb"));
        assert_eq!(validate_request(&r), Err(HeaderError::InvalidValue));
        let mut r = get();
        r.push(h("x", " lead"));
        assert_eq!(validate_request(&r), Err(HeaderError::InvalidValue));
        let mut r = get();
        r.push(h("content-length", "12a"));
        assert_eq!(validate_request(&r), Err(HeaderError::InvalidContentLength));
        let mut r = get();
        r.push(h("content-length", "1"));
        r.push(h("content-length", "2"));
        assert_eq!(validate_request(&r), Err(HeaderError::InvalidContentLength));
        let c = vec![
            h(":method", "CONNECT"),
            h(":authority", "h:1"),
            h(":path", "/"),
        ];
        assert_eq!(validate_request(&c), Err(HeaderError::InvalidConnect));
        let head = vec![h(":method", "HEAD"), h(":scheme", "http"), h(":path", "*")];
        assert!(validate_request(&head).unwrap().is_head);
    }

    #[test]
    fn response_and_trailer_rules() {
        assert_eq!(
            validate_response(&[h(":status", "20")]),
            Err(HeaderError::InvalidStatus)
        );
        assert_eq!(
            validate_response(&[h(":status", "abc")]),
            Err(HeaderError::InvalidStatus)
        );
        assert_eq!(
            validate_response(&[h("server", "x")]),
            Err(HeaderError::MissingPseudo(":status"))
        );
        assert_eq!(
            validate_response(&[h(":status", "200"), h(":path", "/")]),
            Err(HeaderError::InvalidPseudo)
        );
        assert_eq!(
            validate_trailers(&[h(":status", "200")]),
            Err(HeaderError::PseudoInTrailers)
        );
        assert!(validate_trailers(&[h("grpc-status", "0")]).is_ok());
    }
}
