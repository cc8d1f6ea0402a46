//! # h2mux-rpc — gRPC-compatible RPC on h2mux
//!
//! Speaks the gRPC wire protocol (the public "gRPC over HTTP/2" specification) so that real
//! gRPC clients and servers interoperate with ours:
//!
//! * [`message`]: 5-octet length-prefixed messages, with the receive size limit checked
//!   before buffering (RESOURCE_EXHAUSTED);
//! * [`status`]: status codes, `grpc-status` / percent-encoded `grpc-message`;
//! * [`timeout`]: the `grpc-timeout` header;
//! * [`metadata`]: custom metadata, ASCII and `-bin` (base64) keys;
//! * [`compression`]: `grpc-encoding: gzip`, bounded decompression;
//! * [`codec`]: messages are bytes by default, any serialisation through [`codec::Codec`]
//!   (`prost` behind the `prost` feature);
//! * [`echo`]: the built-in echo service's messages (`proto/echo.proto`);
//! * [`health`]: the standard `grpc.health.v1.Health/Check` messages.
//!
//! * [`server`]: a gRPC server on h2mux's HTTP server — all four call kinds, deadlines,
//!   metadata, interceptors (an auth example: [`server::bearer_auth`]), gzip, status
//!   trailers, trailers-only errors, panics as INTERNAL — with the built-in echo and health
//!   services ([`server::echo_service`]).
//!
//! * [`channel`]: the shared channel — cloneable, `Send + Sync`, least-active pick over N
//!   connections to one target or a resolver's addresses, extra connections when the peer's
//!   stream limit is reached, redial with backoff, observable connectivity, keepalive,
//!   graceful close — and calls of every kind with deadlines, metadata, size limits, gzip
//!   and cancellation (RST_STREAM CANCEL).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod channel;
pub mod codec;
pub mod compression;
pub mod echo;
pub mod health;
pub mod message;
pub mod metadata;
mod pb;
pub mod server;
pub mod status;
pub mod timeout;

pub use status::{Code, Status};

/// The content type of gRPC requests and responses.
pub const CONTENT_TYPE: &str = "application/grpc";
