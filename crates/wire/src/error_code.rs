//! HTTP/2 error codes (RFC 9113 §7).

use std::fmt;

/// An HTTP/2 error code as carried by RST_STREAM and GOAWAY (RFC 9113 §7).
///
/// Unknown codes are kept as they are: RFC 9113 §7 says they "MUST NOT trigger any special
/// behavior" and may be treated as [`ErrorCode::INTERNAL_ERROR`], which is the caller's choice.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode(pub u32);

impl ErrorCode {
    /// 0x0: graceful shutdown, no error.
    pub const NO_ERROR: ErrorCode = ErrorCode(0x0);
    /// 0x1: a generic protocol error.
    pub const PROTOCOL_ERROR: ErrorCode = ErrorCode(0x1);
    /// 0x2: an unexpected internal error.
    pub const INTERNAL_ERROR: ErrorCode = ErrorCode(0x2);
    /// 0x3: the peer violated the flow-control protocol.
    pub const FLOW_CONTROL_ERROR: ErrorCode = ErrorCode(0x3);
    /// 0x4: a SETTINGS frame was not acknowledged in time.
    pub const SETTINGS_TIMEOUT: ErrorCode = ErrorCode(0x4);
    /// 0x5: a frame arrived after the stream was half-closed.
    pub const STREAM_CLOSED: ErrorCode = ErrorCode(0x5);
    /// 0x6: a frame had an invalid size.
    pub const FRAME_SIZE_ERROR: ErrorCode = ErrorCode(0x6);
    /// 0x7: the stream was refused before any application processing.
    pub const REFUSED_STREAM: ErrorCode = ErrorCode(0x7);
    /// 0x8: the stream is no longer needed.
    pub const CANCEL: ErrorCode = ErrorCode(0x8);
    /// 0x9: the HPACK compression context cannot be maintained.
    pub const COMPRESSION_ERROR: ErrorCode = ErrorCode(0x9);
    /// 0xa: the CONNECT tunnel was reset or closed abnormally.
    pub const CONNECT_ERROR: ErrorCode = ErrorCode(0xa);
    /// 0xb: the peer is generating excessive load.
    pub const ENHANCE_YOUR_CALM: ErrorCode = ErrorCode(0xb);
    /// 0xc: the transport does not meet minimum security requirements.
    pub const INADEQUATE_SECURITY: ErrorCode = ErrorCode(0xc);
    /// 0xd: the endpoint requires HTTP/1.1 instead of HTTP/2.
    pub const HTTP_1_1_REQUIRED: ErrorCode = ErrorCode(0xd);

    /// The RFC name of this code, or `None` for a code RFC 9113 does not define.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0x0 => "NO_ERROR",
            0x1 => "PROTOCOL_ERROR",
            0x2 => "INTERNAL_ERROR",
            0x3 => "FLOW_CONTROL_ERROR",
            0x4 => "SETTINGS_TIMEOUT",
            0x5 => "STREAM_CLOSED",
            0x6 => "FRAME_SIZE_ERROR",
            0x7 => "REFUSED_STREAM",
            0x8 => "CANCEL",
            0x9 => "COMPRESSION_ERROR",
            0xa => "CONNECT_ERROR",
            0xb => "ENHANCE_YOUR_CALM",
            0xc => "INADEQUATE_SECURITY",
            0xd => "HTTP_1_1_REQUIRED",
            _ => return None,
        })
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "UNKNOWN_ERROR_{:#x}", self.0),
        }
    }
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl From<u32> for ErrorCode {
    fn from(code: u32) -> Self {
        ErrorCode(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_codes_have_rfc_names_and_unknown_codes_survive() {
        assert_eq!(
            ErrorCode::ENHANCE_YOUR_CALM.to_string(),
            "ENHANCE_YOUR_CALM"
        );
        assert_eq!(ErrorCode::from(0xd).name(), Some("HTTP_1_1_REQUIRED"));
        let odd = ErrorCode::from(0xdead);
        assert_eq!(odd.name(), None);
        assert_eq!(odd.to_string(), "UNKNOWN_ERROR_0xdead");
        assert_eq!(odd.0, 0xdead);
    }
}
