//! Errors of the driver and the HTTP layer.

use h2mux_proto::{CommandError, ConnectionError, ResetCause};
use h2mux_wire::ErrorCode;

/// What went wrong, in words a user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Connecting failed (refused, unreachable, timed out).
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// The address dialled.
        addr: String,
        /// The operating system's reason.
        reason: String,
    },
    /// Listening failed (address in use, permission denied, not a local address).
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address to listen on.
        addr: String,
        /// The operating system's reason.
        reason: String,
    },
    /// The connection is closed (by the peer, by an I/O error, or after a GOAWAY).
    #[error("the HTTP/2 connection is closed")]
    ConnectionClosed,
    /// The connection failed with a protocol error (the message names the RFC rule and code).
    #[error("HTTP/2 protocol error: {0}")]
    Protocol(String),
    /// A command the connection refused (e.g. invalid headers, stream already ended).
    #[error("{0}")]
    Command(String),
    /// The stream was reset.
    #[error("the stream was reset: {0}")]
    StreamReset(String),
    /// A request or response could not be built from what was received or given.
    #[error("invalid message: {0}")]
    InvalidMessage(String),
    /// A body was longer than the caller's limit.
    #[error("body longer than the limit of {limit} bytes")]
    BodyTooLarge {
        /// The limit.
        limit: usize,
    },
    /// TLS failed: configuration, handshake, certificate or ALPN.
    #[error("TLS: {0}")]
    Tls(String),
    /// An operation did not finish in time.
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
}

impl Error {
    /// The connection failed on our side of a rule: the message names the rule and the code.
    pub fn from_connection_error(e: &ConnectionError) -> Error {
        Error::Protocol(format!("{e} (GOAWAY {})", e.code()))
    }

    /// The peer ended the connection with GOAWAY carrying an error code.
    pub fn peer_goaway(code: ErrorCode, debug_data: &[u8]) -> Error {
        let debug = String::from_utf8_lossy(debug_data);
        if debug.is_empty() {
            Error::Protocol(format!("the peer closed the connection with GOAWAY {code}"))
        } else {
            Error::Protocol(format!(
                "the peer closed the connection with GOAWAY {code}: {debug}"
            ))
        }
    }

    /// A stream reset, in words: who reset it and with which code.
    pub fn from_reset(cause: &ResetCause) -> Error {
        Error::StreamReset(match cause {
            ResetCause::Remote(code) => format!("the peer sent RST_STREAM {code}"),
            ResetCause::Local(e) => format!("{e} (RST_STREAM {})", e.code()),
            ResetCause::GoAway => "the peer's GOAWAY says it was not processed (retryable)".into(),
        })
    }
}

impl From<CommandError> for Error {
    fn from(e: CommandError) -> Error {
        match e {
            CommandError::Connection(c) => Error::from_connection_error(&c),
            CommandError::GoingAway => Error::ConnectionClosed,
            other => Error::Command(other.to_string()),
        }
    }
}
