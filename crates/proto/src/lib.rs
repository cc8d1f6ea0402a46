//! # h2mux-proto — the sans-I/O HTTP/2 connection core
//!
//! One [`Connection`] per HTTP/2 connection (RFC 9113), client or server role: a plain data
//! structure fed with received bytes and the current time, asked for bytes to write, events
//! and the next timer deadline. No sockets, no runtime, no clock, no threads (the model is
//! quinn-proto). Frames and HPACK come from `h2mux-wire`.
//!
//! What it implements:
//! * connection preface and SETTINGS negotiation with ACK tracking and timeout
//!   (RFC 9113 §3.4, §6.5);
//! * stream states and identifier rules (§5.1, §5.1.1), SETTINGS_MAX_CONCURRENT_STREAMS both
//!   ways (§5.1.2), a bounded memory of recently closed streams;
//! * HEADERS/CONTINUATION assembly (§6.2, §6.10), header validation (§8.2–8.3),
//!   content-length (§8.1.1), trailers;
//! * flow control (§5.2, §6.9) with batched WINDOW_UPDATEs credited when the application
//!   consumes data, and adaptive windows from a bandwidth-delay-product estimator
//!   ([`bdp`]);
//! * PING (keepalive, RTT), GOAWAY (graceful two-step shutdown), RST_STREAM (§6.4, §6.7,
//!   §6.8);
//! * limits against hostile peers (§10.5): see [`Config`].
//!
//! ## How to drive it
//!
//! ```no_run
//! use bytes::{Bytes, BytesMut};
//! use h2mux_proto::{Config, Connection, Event, Role};
//! use h2mux_wire::hpack::HeaderField;
//! use std::time::Instant;
//!
//! # fn socket_read(_: &mut BytesMut) -> usize { 0 }
//! # fn socket_write_vectored(_: &[Bytes]) {}
//! let mut conn = Connection::new(Role::Client, Config::default(), Instant::now());
//! let id = conn
//!     .open_stream(
//!         vec![
//!             HeaderField::new(":method", "GET"),
//!             HeaderField::new(":scheme", "https"),
//!             HeaderField::new(":path", "/"),
//!             HeaderField::new(":authority", "example.com"),
//!         ],
//!         true,
//!     )
//!     .unwrap();
//! let mut rx = BytesMut::with_capacity(1 << 20);
//! let mut chunks = Vec::new();
//! loop {
//!     // 1. Write everything the connection has to say, in one vectored write per call.
//!     while conn.poll_transmit(Instant::now(), &mut chunks) > 0 {
//!         socket_write_vectored(&chunks);
//!         chunks.clear();
//!     }
//!     if conn.is_closed() {
//!         break;
//!     }
//!     // 2. Sleep until readable or until `conn.poll_timeout()`; on timeout:
//!     //    conn.handle_timeout(Instant::now());
//!     // 3. Feed what was read (the buffer keeps an incomplete frame for the next read).
//!     if socket_read(&mut rx) == 0 {
//!         break;
//!     }
//!     if conn.recv(&mut rx, Instant::now()).is_err() {
//!         continue; // a GOAWAY is queued: write it, then `is_closed()` is true
//!     }
//!     // 4. Handle events; release consumed DATA so the peer gets window back.
//!     while let Some(ev) = conn.poll_event() {
//!         match ev {
//!             Event::Data { id, data, .. } => {
//!                 // ... hand `data` (zero-copy) to the application, then:
//!                 conn.release_capacity(id, data.len()).ok();
//!             }
//!             Event::Headers { .. } | Event::Trailers { .. } => {}
//!             _ => {}
//!         }
//!     }
//!     let _ = id;
//! }
//! ```
//!
//! Rules for the driver:
//! * call `poll_transmit` after every `recv`, command or `handle_timeout`, until it returns 0;
//!   the chunks of one call are one vectored write (control frames first, then DATA);
//! * after writing, if [`Connection::is_closed`], close the socket;
//! * bound what the application queues with [`Connection::send_capacity`] and wait for
//!   [`Event::Writable`] when it is 0;
//! * call [`Connection::release_capacity`] when DATA has been consumed — that is what
//!   gives the peer window back (a slow reader therefore applies back-pressure).
//!
//! * call [`Connection::handle_timeout`] when [`Connection::poll_timeout`] is reached (SETTINGS
//!   ACK timeout, keepalive, drain deadline), then `poll_transmit`.
//!
//! Semantics worth knowing:
//! * A stream exists from `open_stream` (client) or its [`Event::Headers`] (server) until it
//!   is closed in both directions *and* its received data is released, or until it is reset
//!   ([`Event::Reset`] for the peer's reset or a protocol fault; nothing for our own
//!   [`Connection::reset`]). Commands on a stream that is gone return
//!   [`CommandError::UnknownStream`] — treat that as "the stream ended", not as a bug.
//! * `open_stream` beyond the peer's SETTINGS_MAX_CONCURRENT_STREAMS queues the stream (it has
//!   its id; [`Connection::is_queued`]); [`Connection::open_streams_available`] tells how many
//!   open without queueing.
//! * Connection errors are sticky: `recv` and every command return the same
//!   [`ConnectionError`], an [`Event::ConnectionError`] is queued once, and the GOAWAY comes
//!   out of the next `poll_transmit`.
//! * The peer's GOAWAY gives [`Event::GoAway`]; our streams it did not process end with
//!   [`ResetCause::GoAway`] ([`ResetCause::is_retryable`]).
//! * [`Connection::ping`] takes `now` and reports [`Event::PingAck`] with the RTT; the core
//!   also sends its own PINGs (BDP estimation, keepalive, shutdown) and answers the peer's.
//!
//! [`pair`] is an in-memory client↔server harness in virtual time, used by the tests and
//! benchmarks (and usable by the driver's tests).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod bdp;
pub mod config;
mod conn;
pub mod error;
pub mod event;
pub mod flow;
pub mod headers;
mod limits;
pub mod pair;
pub mod state;

pub use config::Config;
pub use conn::{Connection, Role};
pub use error::{CommandError, ConnectionError, StreamError};
pub use event::{Event, PeerSettings, ResetCause, SettingsUpdate, Stats};
pub use headers::HeaderError;
pub use limits::IdHasher;
pub use state::State as StreamState;

pub use h2mux_wire::hpack::HeaderField;
pub use h2mux_wire::{ErrorCode, StreamId};
