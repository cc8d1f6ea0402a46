//! gRPC status codes and the `grpc-status` / `grpc-message` trailers
//! (gRPC over HTTP/2 spec, "Responses"; status codes from grpc/doc/statuscodes.md).

use std::fmt;

/// A gRPC status code. Unknown numeric codes are kept as they are (and mean UNKNOWN).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Code(pub u32);

macro_rules! codes {
    ($($name:ident = $value:expr, $text:expr;)*) => {
        impl Code {
            $(#[doc = $text] pub const $name: Code = Code($value);)*

            /// The canonical upper-case name, e.g. `DEADLINE_EXCEEDED`.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some(stringify!($name)),)*
                    _ => None,
                }
            }
        }
    };
}

codes! {
    OK = 0, "Not an error.";
    CANCELLED = 1, "The call was cancelled, typically by the caller.";
    UNKNOWN = 2, "Unknown error.";
    INVALID_ARGUMENT = 3, "The client specified an invalid argument.";
    DEADLINE_EXCEEDED = 4, "The deadline expired before the call could complete.";
    NOT_FOUND = 5, "Some requested entity was not found.";
    ALREADY_EXISTS = 6, "The entity the client tried to create already exists.";
    PERMISSION_DENIED = 7, "The caller may not execute this call.";
    RESOURCE_EXHAUSTED = 8, "Some resource has been exhausted (e.g. a message over the size limit).";
    FAILED_PRECONDITION = 9, "The system is not in a state required for the call.";
    ABORTED = 10, "The call was aborted.";
    OUT_OF_RANGE = 11, "The call was attempted past the valid range.";
    UNIMPLEMENTED = 12, "The method is not implemented or not supported.";
    INTERNAL = 13, "Internal error.";
    UNAVAILABLE = 14, "The service is currently unavailable.";
    DATA_LOSS = 15, "Unrecoverable data loss or corruption.";
    UNAUTHENTICATED = 16, "The request lacks valid authentication credentials.";
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "UNKNOWN({})", self.0),
        }
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The outcome of a call: a code and a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The code.
    pub code: Code,
    /// The message (decoded from `grpc-message`).
    pub message: String,
}

impl Status {
    /// A status with `code` and `message`.
    pub fn new(code: Code, message: impl Into<String>) -> Status {
        Status {
            code,
            message: message.into(),
        }
    }

    /// `OK` with no message.
    pub fn ok() -> Status {
        Status::new(Code::OK, "")
    }

    /// Reads `grpc-status` and `grpc-message` trailer values. A missing or unparsable status
    /// is `UNKNOWN` (the spec: a response without a valid status is an error).
    pub fn from_trailers(grpc_status: Option<&[u8]>, grpc_message: Option<&[u8]>) -> Status {
        let code = grpc_status
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.parse::<u32>().ok())
            .map(Code);
        let message = grpc_message.map(percent_decode).unwrap_or_default();
        match code {
            Some(code) => Status { code, message },
            None => Status::new(
                Code::UNKNOWN,
                if message.is_empty() {
                    "missing or invalid grpc-status".to_string()
                } else {
                    message
                },
            ),
        }
    }

    /// The `grpc-status` value.
    pub fn status_value(&self) -> String {
        self.code.0.to_string()
    }

    /// The `grpc-message` value (percent-encoded), or None when the message is empty.
    pub fn message_value(&self) -> Option<String> {
        (!self.message.is_empty()).then(|| percent_encode(&self.message))
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            write!(f, "{}", self.code)
        } else {
            write!(f, "{}: {}", self.code, self.message)
        }
    }
}

impl std::error::Error for Status {}

/// Percent-encodes a `grpc-message`: every octet outside printable ASCII (0x20–0x7E) and `%`
/// itself becomes `%XX` of its UTF-8 octets (the spec's "Percent-Encoded").
pub fn percent_encode(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for b in message.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes a percent-encoded `grpc-message`. Malformed escapes are kept literally (the spec:
/// a decoder must not fail on them) and invalid UTF-8 is replaced.
pub fn percent_decode(value: &[u8]) -> String {
    let hex = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        if value[i] == b'%' && i + 2 < value.len() {
            if let (Some(h), Some(l)) = (hex(value[i + 1]), hex(value[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(value[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_their_spec_names_and_unknown_codes_survive() {
        assert_eq!(Code::DEADLINE_EXCEEDED.to_string(), "DEADLINE_EXCEEDED");
        assert_eq!(Code(16).name(), Some("UNAUTHENTICATED"));
        assert_eq!(Code(99).to_string(), "UNKNOWN(99)");
    }

    #[test]
    fn messages_round_trip_through_percent_encoding() {
        for m in ["plain", "100% sure", "ünïcödé ✓", "line\nbreak", ""] {
            assert_eq!(percent_decode(percent_encode(m).as_bytes()), m);
        }
        assert_eq!(percent_encode("a%b\n"), "a%25b%0A");
    }

    #[test]
    fn malformed_escapes_are_kept_not_rejected() {
        assert_eq!(percent_decode(b"50%"), "50%");
        assert_eq!(percent_decode(b"%zz"), "%zz");
        assert_eq!(percent_decode(b"%4"), "%4");
        assert_eq!(percent_decode(b"%41"), "A");
    }

    #[test]
    fn trailers_without_a_valid_status_are_unknown() {
        assert_eq!(
            Status::from_trailers(Some(b"5"), Some(b"gone%21")),
            Status::new(Code::NOT_FOUND, "gone!")
        );
        assert_eq!(Status::from_trailers(None, None).code, Code::UNKNOWN);
        assert_eq!(Status::from_trailers(Some(b"x"), None).code, Code::UNKNOWN);
    }
}
