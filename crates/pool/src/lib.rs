//! # h2mux-pool — pre-opened, ID-matched byte streams over one HTTP/2 connection
//!
//! The system of seeds/001 (the NodePass Go library's stream pool), rebuilt so that a Rust
//! node and a Go node pair on the wire, without the Go library's faults. This crate holds the
//! parts that are pure logic, each tested on its own:
//!
//! * [`id`]: the 4-octet stream IDs, their 8-character lowercase hex names, the control
//!   stream `00000000`, generation from the OS's cryptographic RNG;
//! * [`protocol`]: the byte-level protocol — `POST https://{hostname}/stream`, the client's
//!   first octet `0x00`, the server's 404/403/200 answers and the ID as the first 4 octets of
//!   the response body — as request checks and response parsing with typed errors;
//! * [`access`]: the client-IP restriction, comparing parsed addresses (IPv4-mapped IPv6
//!   included), meant to run at accept time;
//! * [`adjust`]: the dynamic capacity and creation-interval rule, driven by explicit rounds
//!   (no clock inside: tests run it in virtual time);
//! * [`backoff`]: capped exponential redial backoff with jitter.
//!
//! Status: the async `ClientPool` / `ServerPool` on top of the h2mux driver are not built
//! yet (issue 6).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod access;
pub mod adjust;
pub mod backoff;
pub mod id;
pub mod protocol;
