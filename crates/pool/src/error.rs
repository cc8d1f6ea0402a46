//! Errors of the async pools, in words a user can act on.

use std::time::Duration;

use crate::id::PoolStreamId;
use crate::protocol::ProtocolError;

/// What went wrong in a pool.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// The pool protocol was broken by the peer (status, ID, hello, ALPN).
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The configuration cannot work (the message says which field and why).
    #[error("invalid pool configuration: {0}")]
    Config(String),
    /// `new` was called outside a tokio runtime (the pool spawns its tasks on it).
    #[error("the pool must be created inside a tokio runtime")]
    NoRuntime,
    /// The address resolver failed.
    #[error("resolving the server address failed: {0}")]
    Resolve(String),
    /// Binding or connecting a socket failed.
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// The address.
        addr: String,
        /// The operating system's reason.
        reason: String,
    },
    /// The TLS handshake failed or negotiated something the pool refuses.
    #[error("TLS with {peer}: {reason}")]
    Tls {
        /// Who the handshake was with.
        peer: String,
        /// What failed (rustls' words, e.g. a certificate not valid for the hostname).
        reason: String,
    },
    /// The HTTP/2 connection or stream failed.
    #[error("HTTP/2: {0}")]
    H2(#[from] h2mux::Error),
    /// The connection carrying the stream (or the one the stream was expected on) was lost.
    #[error("the pool's connection was lost: {0}")]
    ConnectionLost(String),
    /// No stream with this ID arrived in time.
    #[error("no stream {id} arrived within {timeout:?}")]
    NotFound {
        /// The ID asked for.
        id: PoolStreamId,
        /// The time waited.
        timeout: Duration,
    },
    /// No stream arrived in time.
    #[error("no stream arrived within {0:?}")]
    Timeout(Duration),
    /// The server gave an ID that a stream in the pool already has; the newcomer is dropped.
    #[error("the server gave ID {0} twice; the second stream is dropped")]
    DuplicateId(PoolStreamId),
    /// The pool is closed.
    #[error("the pool is closed")]
    Closed,
}
