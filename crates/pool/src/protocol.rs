//! The pool's byte-level protocol, as the NodePass Go library speaks it (seeds/001):
//!
//! 1. TLS 1.3 with ALPN `h2` (anything else is closed); TLS mode `0`/`1` encrypts without
//!    verifying the certificate, `2` verifies it against the configured hostname.
//! 2. The client opens every stream: `POST https://{hostname}/stream`, request body streamed,
//!    and writes one octet `0x00` first.
//! 3. The server reads that octet; it answers 404 when the method or path is wrong or its pool
//!    is full, 403 when the client IP is not the allowed one, else `:status 200` with the
//!    stream's 4-octet ID as the first 4 octets of the response body.
//! 4. Then the stream is a raw byte pipe both ways.
//!
//! Unlike the Go client, which reads 4 octets whatever the status (a 403 page becomes a fake
//! ID), [`check_response`] refuses any status but 200 with a typed error.

use crate::id::PoolStreamId;

/// The request path.
pub const PATH: &str = "/stream";
/// The request method.
pub const METHOD: &str = "POST";
/// The first octet the client writes on every stream.
pub const CLIENT_HELLO: u8 = 0x00;
/// The one ALPN protocol accepted.
pub const ALPN: &[u8] = b"h2";

/// The `:authority`-bearing URL a client requests.
pub fn request_url(hostname: &str) -> String {
    format!("https://{hostname}{PATH}")
}

/// TLS modes of seeds/001.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// `"0"`/`"1"`: encrypted, certificate not verified.
    Unverified,
    /// `"2"`: verified against the configured hostname.
    Verified,
}

/// Errors of the pool protocol, as a client or a server sees them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A TLS mode other than "0", "1", "2".
    #[error(
        "TLS mode {0:?} is not one of \"0\", \"1\" (encrypted, unverified) or \"2\" (verified)"
    )]
    BadTlsMode(String),
    /// The TLS session negotiated another protocol than `h2`.
    #[error("the peer negotiated ALPN {0:?}, not \"h2\"; closing")]
    NotH2(Option<String>),
    /// The server refused the stream: wrong path/method or its pool is full.
    #[error("server answered 404: wrong path or method, or its pool is full")]
    NotFoundOrFull,
    /// The server refused the client's IP address.
    #[error("server answered 403: this client's IP address is not allowed")]
    Forbidden,
    /// Any other status.
    #[error("server answered HTTP status {0}, expected 200")]
    UnexpectedStatus(u16),
    /// The response body ended before the 4-octet ID.
    #[error("stream ended after {0} of the 4 ID octets")]
    TruncatedId(usize),
    /// The client's first octet was not 0x00.
    #[error("client's first octet was {0:#04x}, expected 0x00")]
    BadHello(u8),
}

impl TlsMode {
    /// Parses the Go library's mode strings.
    pub fn parse(mode: &str) -> Result<TlsMode, ProtocolError> {
        match mode {
            "0" | "1" => Ok(TlsMode::Unverified),
            "2" => Ok(TlsMode::Verified),
            other => Err(ProtocolError::BadTlsMode(other.to_string())),
        }
    }
}

/// Checks the negotiated ALPN protocol.
pub fn check_alpn(negotiated: Option<&[u8]>) -> Result<(), ProtocolError> {
    match negotiated {
        Some(p) if p == ALPN => Ok(()),
        other => Err(ProtocolError::NotH2(
            other.map(|p| String::from_utf8_lossy(p).into_owned()),
        )),
    }
}

/// Why a server refuses a stream request, and the status it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Wrong method or path: 404.
    WrongTarget,
    /// The pool is full: 404.
    Full,
    /// The client IP is not the allowed one: 403.
    Forbidden,
}

impl Refusal {
    /// The HTTP status sent.
    pub fn status(self) -> u16 {
        match self {
            Refusal::WrongTarget | Refusal::Full => 404,
            Refusal::Forbidden => 403,
        }
    }
}

/// Server side: checks a request's method and path.
pub fn check_request(method: &str, path: &str) -> Result<(), Refusal> {
    if method == METHOD && path == PATH {
        Ok(())
    } else {
        Err(Refusal::WrongTarget)
    }
}

/// Server side: checks the client's first octet.
pub fn check_hello(first: u8) -> Result<(), ProtocolError> {
    if first == CLIENT_HELLO {
        Ok(())
    } else {
        Err(ProtocolError::BadHello(first))
    }
}

/// Client side: checks the response status.
pub fn check_response(status: u16) -> Result<(), ProtocolError> {
    match status {
        200 => Ok(()),
        403 => Err(ProtocolError::Forbidden),
        404 => Err(ProtocolError::NotFoundOrFull),
        s => Err(ProtocolError::UnexpectedStatus(s)),
    }
}

/// Client side: collects the 4 ID octets from the first response body chunks, however the
/// body is split, and hands back what follows them (already stream data).
#[derive(Debug, Default)]
pub struct IdReader {
    buf: [u8; 4],
    len: usize,
}

impl IdReader {
    /// Feeds a body chunk: `Some((id, rest))` once the 4 octets are in, `rest` being the
    /// stream data after them; `None` while more octets are needed.
    pub fn push<'a>(&mut self, chunk: &'a [u8]) -> Option<(PoolStreamId, &'a [u8])> {
        let take = (4 - self.len).min(chunk.len());
        self.buf[self.len..self.len + take].copy_from_slice(&chunk[..take]);
        self.len += take;
        (self.len == 4).then(|| (PoolStreamId(self.buf), &chunk[take..]))
    }

    /// The body ended: an error when the ID was incomplete.
    pub fn finish(&self) -> Result<(), ProtocolError> {
        if self.len == 4 {
            Ok(())
        } else {
            Err(ProtocolError::TruncatedId(self.len))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_typed_errors() {
        assert_eq!(check_response(200), Ok(()));
        assert_eq!(check_response(403), Err(ProtocolError::Forbidden));
        assert_eq!(check_response(404), Err(ProtocolError::NotFoundOrFull));
        assert_eq!(
            check_response(502),
            Err(ProtocolError::UnexpectedStatus(502))
        );
        assert_eq!(Refusal::Full.status(), 404);
        assert_eq!(Refusal::Forbidden.status(), 403);
    }

    #[test]
    fn requests_and_hello_are_checked() {
        assert_eq!(check_request("POST", "/stream"), Ok(()));
        assert_eq!(check_request("GET", "/stream"), Err(Refusal::WrongTarget));
        assert_eq!(check_request("POST", "/streams"), Err(Refusal::WrongTarget));
        assert_eq!(check_hello(0), Ok(()));
        assert_eq!(check_hello(1), Err(ProtocolError::BadHello(1)));
        assert_eq!(request_url("example.com"), "https://example.com/stream");
    }

    #[test]
    fn the_id_is_read_across_any_split_and_the_rest_is_data() {
        let body = [0xa1, 0xb2, 0xc3, 0xd4, b'h', b'i'];
        for split in 0..=body.len() {
            let mut r = IdReader::default();
            let (first, second) = body.split_at(split);
            let got = r
                .push(first)
                .map(|(id, rest)| (id, rest.to_vec()))
                .or_else(|| r.push(second).map(|(id, rest)| (id, rest.to_vec())));
            let (id, mut rest) = got.expect("ID complete");
            if split < 4 {
                // Data after the ID came in the second chunk.
                assert_eq!(rest, b"hi");
            } else {
                rest.extend_from_slice(second);
                assert_eq!(rest, b"hi");
            }
            assert_eq!(id.to_string(), "a1b2c3d4");
            assert_eq!(r.finish(), Ok(()));
        }
        let mut r = IdReader::default();
        assert!(r.push(&[1, 2]).is_none());
        assert_eq!(r.finish(), Err(ProtocolError::TruncatedId(2)));
    }

    #[test]
    fn tls_modes_and_alpn() {
        assert_eq!(TlsMode::parse("0"), Ok(TlsMode::Unverified));
        assert_eq!(TlsMode::parse("1"), Ok(TlsMode::Unverified));
        assert_eq!(TlsMode::parse("2"), Ok(TlsMode::Verified));
        assert!(TlsMode::parse("3").is_err());
        assert!(check_alpn(Some(b"h2")).is_ok());
        assert_eq!(
            check_alpn(Some(b"http/1.1")),
            Err(ProtocolError::NotH2(Some("http/1.1".into())))
        );
        assert_eq!(check_alpn(None), Err(ProtocolError::NotH2(None)));
    }
}
