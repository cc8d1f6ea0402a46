//! Custom metadata (gRPC over HTTP/2 spec, "Custom-Metadata"): ASCII keys of `0-9 a-z _ - .`;
//! ASCII values of printable characters; keys ending in `-bin` carry arbitrary bytes,
//! base64-encoded on the wire (sent unpadded, accepted padded or not). Keys starting with
//! `grpc-` are reserved for the protocol and refused as custom metadata.

/// Why a metadata entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// The key has a character outside `0-9 a-z _ - .` or is empty.
    #[error("metadata key {0:?} must be non-empty and use only 0-9 a-z _ - .")]
    InvalidKey(String),
    /// The key is reserved (`grpc-…`, pseudo-headers, or an HTTP field the protocol sets).
    #[error("metadata key {0:?} is reserved for the protocol")]
    ReservedKey(String),
    /// An ASCII value holds a character outside printable ASCII.
    #[error("value of {0:?} must be printable ASCII (0x20-0x7E); use a -bin key for bytes")]
    InvalidValue(String),
    /// A `-bin` value is not valid base64.
    #[error("value of {0:?} is not valid base64")]
    InvalidBase64(String),
}

/// Ordered custom metadata (duplicates allowed, as in HTTP).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    entries: Vec<(String, Vec<u8>)>,
}

/// Fields the protocol owns; they never appear as custom metadata.
const RESERVED: &[&str] = &[
    "content-type",
    "te",
    "user-agent",
    "content-length",
    "host",
    "connection",
];

fn check_key(key: &str) -> Result<(), MetadataError> {
    if key.is_empty()
        || !key
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase() || b"_-.".contains(&b))
    {
        return Err(MetadataError::InvalidKey(key.to_string()));
    }
    if key.starts_with("grpc-") || RESERVED.contains(&key) {
        return Err(MetadataError::ReservedKey(key.to_string()));
    }
    Ok(())
}

impl Metadata {
    /// Empty metadata.
    pub fn new() -> Metadata {
        Metadata::default()
    }

    /// Appends an ASCII entry.
    pub fn insert(&mut self, key: &str, value: &str) -> Result<(), MetadataError> {
        check_key(key)?;
        if key.ends_with("-bin") {
            self.entries
                .push((key.to_string(), value.as_bytes().to_vec()));
            return Ok(());
        }
        if !value.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
            return Err(MetadataError::InvalidValue(key.to_string()));
        }
        self.entries
            .push((key.to_string(), value.as_bytes().to_vec()));
        Ok(())
    }

    /// Appends a binary entry; `key` must end in `-bin`.
    pub fn insert_bin(&mut self, key: &str, value: &[u8]) -> Result<(), MetadataError> {
        check_key(key)?;
        if !key.ends_with("-bin") {
            return Err(MetadataError::InvalidKey(format!(
                "{key} (binary values need a -bin key)"
            )));
        }
        self.entries.push((key.to_string(), value.to_vec()));
        Ok(())
    }

    /// The first value of `key` (decoded bytes for `-bin` keys).
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }

    /// The first value of `key` as text, if it is valid UTF-8.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// All entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries as HTTP header fields (`-bin` values base64-encoded without padding).
    pub fn to_fields(&self) -> Vec<(String, Vec<u8>)> {
        self.entries
            .iter()
            .map(|(k, v)| {
                if k.ends_with("-bin") {
                    (k.clone(), base64_encode(v).into_bytes())
                } else {
                    (k.clone(), v.clone())
                }
            })
            .collect()
    }

    /// Collects custom metadata from received header fields, skipping pseudo-headers and the
    /// fields the protocol owns; a bad entry is an error naming it.
    pub fn from_fields<'a>(
        fields: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
    ) -> Result<Metadata, MetadataError> {
        let mut md = Metadata::new();
        for (name, value) in fields {
            let Ok(key) = std::str::from_utf8(name) else {
                return Err(MetadataError::InvalidKey(
                    String::from_utf8_lossy(name).into(),
                ));
            };
            if key.starts_with(':') || key.starts_with("grpc-") || RESERVED.contains(&key) {
                continue;
            }
            check_key(key)?;
            if key.ends_with("-bin") {
                let bytes = base64_decode(value)
                    .ok_or_else(|| MetadataError::InvalidBase64(key.to_string()))?;
                md.entries.push((key.to_string(), bytes));
            } else {
                if !value.iter().all(|b| (0x20..=0x7e).contains(b)) {
                    return Err(MetadataError::InvalidValue(key.to_string()));
                }
                md.entries.push((key.to_string(), value.to_vec()));
            }
        }
        Ok(md)
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 (RFC 4648 §4) without padding.
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// Standard base64, padded or not; None on any other character or an impossible length.
pub fn base64_decode(text: &[u8]) -> Option<Vec<u8>> {
    let text = match text.iter().position(|&c| c == b'=') {
        Some(p)
            if text[p..].iter().all(|&c| c == b'=')
                && text.len().is_multiple_of(4)
                && text.len() - p <= 2 =>
        {
            &text[..p]
        }
        Some(_) => return None,
        None => text,
    };
    if text.len() % 4 == 1 {
        return None;
    }
    let val = |c: u8| B64.iter().position(|&x| x == c).map(|p| p as u32);
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c)? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn base64_matches_rfc4648_vectors_unpadded() {
        let vectors = [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, enc) in vectors {
            assert_eq!(base64_encode(plain.as_bytes()), enc);
            assert_eq!(base64_decode(enc.as_bytes()).unwrap(), plain.as_bytes());
        }
        assert_eq!(base64_decode(b"Zm8=").unwrap(), b"fo");
        assert_eq!(base64_decode(b"Zg==").unwrap(), b"f");
        assert_eq!(base64_decode(b"Z"), None);
        assert_eq!(base64_decode(b"Zm9v!"), None);
        assert_eq!(base64_decode(b"Z=g="), None);
    }

    #[test]
    fn keys_and_values_are_checked() {
        let mut md = Metadata::new();
        assert!(md.insert("x-request-id", "abc 123").is_ok());
        assert_eq!(
            md.insert("X-Upper", "v"),
            Err(MetadataError::InvalidKey("X-Upper".into()))
        );
        assert_eq!(
            md.insert("grpc-status", "0"),
            Err(MetadataError::ReservedKey("grpc-status".into()))
        );
        assert_eq!(
            md.insert("x-nl", "a\nb"),
            Err(MetadataError::InvalidValue("x-nl".into()))
        );
        assert!(md.insert_bin("x-raw", b"\0\xff").is_err());
        assert!(md.insert_bin("x-raw-bin", b"\0\xff").is_ok());
        assert_eq!(md.get("x-raw-bin"), Some(&b"\0\xff"[..]));
    }

    #[test]
    fn fields_round_trip_and_protocol_fields_are_skipped() {
        let mut md = Metadata::new();
        md.insert("x-a", "1").unwrap();
        md.insert_bin("x-b-bin", &[0, 1, 2, 250]).unwrap();
        let fields = md.to_fields();
        assert_eq!(fields[1].1, b"AAEC+g");
        let mut wire: Vec<(&[u8], &[u8])> = vec![
            (b":path", b"/x"),
            (b"content-type", b"application/grpc"),
            (b"grpc-timeout", b"1S"),
        ];
        wire.extend(fields.iter().map(|(k, v)| (k.as_bytes(), v.as_slice())));
        assert_eq!(Metadata::from_fields(wire).unwrap(), md);
        let bad: Vec<(&[u8], &[u8])> = vec![(b"x-b-bin", b"%%%")];
        assert_eq!(
            Metadata::from_fields(bad),
            Err(MetadataError::InvalidBase64("x-b-bin".into()))
        );
    }

    proptest! {
        #[test]
        fn base64_round_trips(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            prop_assert_eq!(base64_decode(base64_encode(&data).as_bytes()).unwrap(), data);
        }

        #[test]
        fn base64_decode_never_panics(text in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = base64_decode(&text);
        }
    }
}
