//! # h2mux — HTTP/2 over tokio
//!
//! * [`conn`]: the driver — one task per connection owning the socket and the sans-I/O core
//!   (`h2mux-proto`), stream handles talking to it through channels;
//! * [`http`]: HTTP requests and responses (`http` crate types) with streaming bodies, a
//!   [`Server`] and a [`Client`] over cleartext HTTP/2 (h2c).
//!
//! * [`tls`]: rustls configurations (ALPN h2; verified, private roots or insecure; mutual
//!   TLS).
//! * [`blocking`]: the client for callers without an async runtime.
//!
//! Limits: [`Config`] bounds what one peer can make a connection do (docs/LIMITS.md);
//! [`ServerLimits`] bounds connections across peers (counts per IP and in total, idle,
//! handshake and send timeouts); [`Timeouts`] bound a client's requests.
#![forbid(unsafe_code)]

pub mod blocking;
pub mod conn;
pub mod error;
mod guard;
pub mod http;
mod read_buffer;
pub mod tls;

pub use error::Error;
pub use h2mux_proto as proto;
pub use h2mux_proto::Config;
pub use h2mux_wire as wire;
pub use http::{
    Body, BodySender, Client, ClientOptions, PeerInfo, Server, ServerHandle, ServerLimits,
    ServerStats, Timeouts,
};
pub use rustls;
