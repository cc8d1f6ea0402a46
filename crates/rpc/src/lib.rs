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
//!   metadata, gzip, status trailers, trailers-only errors, panics as INTERNAL — with the
//!   built-in echo and health services ([`server::echo_service`]).
//!
//! * [`channel`]: the shared channel — cloneable, least-loaded over N connections,
//!   redial with backoff, observable connectivity — and calls of every kind.
//!
//! Status: `h2mux rpc` and the prost-codec tests are not built yet (issue 7).
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
