//! Errors of the driver and the HTTP layer.

use h2mux_proto::CommandError;

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

impl From<CommandError> for Error {
    fn from(e: CommandError) -> Error {
        match e {
            CommandError::Connection(c) => Error::Protocol(c.to_string()),
            CommandError::GoingAway => Error::ConnectionClosed,
            other => Error::Command(other.to_string()),
        }
    }
}
