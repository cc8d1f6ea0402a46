//! # h2mux-pool — pre-opened, ID-matched byte streams over one HTTP/2 connection
//!
//! The system of seeds/001 (the NodePass Go library's stream pool), rebuilt so that a Rust
//! node and a Go node pair on the wire, without the Go library's faults.
//!
//! * [`ClientPool`] (the dialling side) keeps pre-opened streams, each named by the ID the
//!   server gave it; [`ClientPool::outgoing_get`] hands one out by ID.
//! * [`ServerPool`] (the listening side) answers the client's stream requests and hands the
//!   streams out in arrival order with [`ServerPool::incoming_get`].
//! * [`PoolStream`] is the stream itself: `AsyncRead + AsyncWrite`, half-close, per-stream
//!   timeouts, the addresses and TLS session of its connection.
//! * [`relay()`] joins a socket to a pooled stream both ways without copying the octets
//!   (`copy_bidirectional` without its two extra copies);
//! * [`tunnel`]: a reverse TCP tunnel on the pool (`h2mux tunnel server|client`).
//!
//! The pure parts, each tested on its own:
//! * [`id`]: the 4-octet stream IDs, their 8-character lowercase hex names, the control
//!   stream `00000000`, generation from the OS's cryptographic RNG;
//! * [`protocol`]: the byte-level protocol — `POST https://{hostname}/stream`, the client's
//!   first octet `0x00`, the server's 404/403/200 answers and the ID as the first 4 octets of
//!   the response body — as request checks and response parsing with typed errors;
//! * [`access`]: the client-IP restriction on parsed addresses (IPv4-mapped IPv6 included),
//!   run at accept time;
//! * [`adjust`]: the dynamic capacity and creation-interval rule, driven by explicit rounds;
//! * [`backoff`]: capped exponential redial backoff with jitter.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod access;
pub mod adjust;
pub mod backoff;
pub mod client;
pub mod error;
pub mod id;
pub mod protocol;
pub mod relay;
pub mod server;
pub mod stream;
pub mod transport;
pub mod tunnel;

pub use client::{ClientConfig, ClientPool};
pub use error::PoolError;
pub use id::PoolStreamId;
pub use protocol::{ProtocolError, TlsMode};
pub use relay::relay;
pub use server::{ServerConfig, ServerPool};
pub use stream::PoolStream;
pub use transport::{Dialer, Level, Listen, LogSink, Resolver, TlsInfo, Transport};

/// Live objects of a pool, to see leaks and load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    /// Streams waiting in the pool.
    pub idle: usize,
    /// Connections open.
    pub connections: usize,
    /// Tasks the pool spawned that still run (the HTTP/2 connection tasks not included).
    pub tasks: usize,
    /// Pooled streams that exist (waiting, or handed out and not yet dropped).
    pub streams: usize,
    /// Errors counted (as [`ClientPool::error_count`] / [`ServerPool::error_count`]).
    pub errors: u64,
}
