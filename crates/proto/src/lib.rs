//! # h2mux-proto — the sans-I/O HTTP/2 connection core
//!
//! Not built yet: see README's status table.
#![forbid(unsafe_code)]
