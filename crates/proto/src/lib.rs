//! # h2mux-proto — the sans-I/O HTTP/2 connection core
//!
//! Status: only the codec-independent building blocks exist so far
//! (the `Connection` state machine itself is not built yet):
//!
//! * [`config`] — tunables with documented defaults (RFC 9113 §6.5.2 settings, limits).
//! * [`flow`] — receive/send window arithmetic and the batched WINDOW_UPDATE policy
//!   (RFC 9113 §5.2, §6.9).
//! * [`state`] — the stream state machine of RFC 9113 §5.1.
//! * [`bdp`] — the bandwidth-delay-product estimator that grows receive windows.
#![forbid(unsafe_code)]

pub mod bdp;
pub mod config;
pub mod flow;
pub mod state;
