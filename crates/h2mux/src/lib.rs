//! # h2mux — HTTP/2 over tokio
//!
//! Not built yet: see README's status table.
#![forbid(unsafe_code)]
pub use h2mux_proto as proto;
pub use h2mux_wire as wire;
