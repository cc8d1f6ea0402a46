//! # h2mux-wire — HTTP/2 frames and HPACK, bytes in, typed values out
//!
//! The lowest layer of h2mux. It knows the byte layout of HTTP/2 (RFC 9113 §4, §6) and of
//! HPACK header compression (RFC 7541), and nothing else: no sockets, no clocks, no runtime.
//!
//! * [`frame`] decodes a byte buffer into [`frame::Frame`] values (zero-copy for DATA
//!   payloads) and encodes frames back to bytes. Every size and stream-identifier rule that
//!   can be checked from a single frame is checked here, at decode time, and a violation is a
//!   typed [`frame::FrameError`] that names the rule, its scope (stream or connection) and
//!   its wire [`ErrorCode`].
//! * [`hpack`] is the header compression codec: static and dynamic tables, Huffman coding,
//!   and the limits that defend against decompression bombs.
//!
//! Rules that need connection state (stream states, flow-control windows, SETTINGS
//! negotiation) live one layer up, in `h2mux-proto`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error_code;
pub mod frame;
pub mod hpack;

pub use error_code::ErrorCode;
pub use frame::{Frame, FrameDecoder, FrameError, StreamId};
