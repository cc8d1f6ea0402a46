//! The cases, one per MUST, grouped by RFC section, and the expectations they share.
//!
//! Each case gets a fresh connection. An expectation is one of the reactions the RFC requires:
//! a connection error (GOAWAY with the code, RFC 9113 §5.4.1 — a closed TCP connection is
//! accepted too, as the GOAWAY is only a SHOULD), a stream error (RST_STREAM with the code,
//! §5.4.2 — or the same code as a connection error, which §5.4 permits), or "ignored" (the
//! connection still answers a PING and nothing was reset).

use h2mux_wire::ErrorCode;

use crate::conn::{flag, kind, Conn, Observed};

mod framing;
mod hpack;
mod http;
mod streams;

/// How a case's connection is prepared before the case runs.
#[derive(Debug, Clone, Copy)]
pub enum Setup {
    /// Preface + empty SETTINGS, both SETTINGS acknowledged.
    Handshake,
    /// Preface + SETTINGS with these values, both acknowledged.
    HandshakeWith(&'static [(u16, u32)]),
    /// Nothing sent: the case writes the preface itself.
    Raw,
}

/// One conformance check.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// Short stable identifier, e.g. `6.5/ack-with-payload` (filter with `--only`).
    pub id: &'static str,
    /// The RFC and section, e.g. `RFC 9113 §6.5`.
    pub rfc: &'static str,
    /// The requirement, quoted from the RFC.
    pub must: &'static str,
    /// How the connection is prepared.
    pub setup: Setup,
    /// The case itself.
    pub run: fn(&mut Conn) -> Outcome,
}

/// The result of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The peer reacted as the RFC requires.
    Pass,
    /// The peer did something else (what, in words).
    Fail(String),
    /// The case cannot be checked against this peer (why, in words); counted apart.
    NotApplicable(String),
}

/// Every case of the suite, in RFC order.
pub fn all() -> Vec<Case> {
    let mut v = framing::preface_and_framing();
    v.extend(streams::cases());
    v.extend(framing::frame_definitions());
    v.extend(http::cases());
    v.extend(hpack::cases());
    v
}

/// Shorthand for a case after the standard handshake.
fn case(
    id: &'static str,
    rfc: &'static str,
    must: &'static str,
    run: fn(&mut Conn) -> Outcome,
) -> Case {
    Case {
        id,
        rfc,
        must,
        setup: Setup::Handshake,
        run,
    }
}

/// The peer must close the connection with `code` (GOAWAY, or at least a TCP close).
pub fn expect_connection_error(conn: &mut Conn, code: ErrorCode) -> Outcome {
    let mut seen = Vec::new();
    loop {
        match conn.read_frame() {
            Observed::Frame(f) if f.kind == kind::GOAWAY => {
                return match f.error_code() {
                    Some(c) if c == code => Outcome::Pass,
                    _ => Outcome::Fail(format!("expected GOAWAY({code}), got {}", f.describe())),
                }
            }
            Observed::Frame(f) => {
                if f.kind == kind::RST_STREAM {
                    seen.push(f.describe());
                }
            }
            Observed::Closed => return Outcome::Pass,
            Observed::Timeout => {
                let extra = if seen.is_empty() {
                    String::new()
                } else {
                    format!(" (saw {})", seen.join(", "))
                };
                return Outcome::Fail(format!(
                    "expected connection error {code}, connection stayed open{extra}"
                ));
            }
        }
    }
}

/// The peer must reset `stream` with one of `codes` (or close the connection with it).
pub fn expect_stream_error(conn: &mut Conn, stream: u32, codes: &[ErrorCode]) -> Outcome {
    let wanted = codes
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(" or ");
    let mut answered = None;
    loop {
        match conn.read_frame() {
            Observed::Frame(f) if f.kind == kind::RST_STREAM && f.stream == stream => {
                return match f.error_code() {
                    Some(c) if codes.contains(&c) => Outcome::Pass,
                    _ => Outcome::Fail(format!("expected RST_STREAM({wanted}), got {}", f.describe())),
                }
            }
            Observed::Frame(f) if f.kind == kind::GOAWAY => {
                return match f.error_code() {
                    Some(c) if codes.contains(&c) => Outcome::Pass,
                    _ => Outcome::Fail(format!("expected RST_STREAM({wanted}), got {}", f.describe())),
                }
            }
            Observed::Frame(f) if f.stream == stream && f.flags & flag::END_STREAM != 0 => {
                // RFC 9113 §8.1.1: a server MAY answer a malformed request before resetting it,
                // so an ended response is noted and the RST_STREAM still awaited.
                answered = Some(f.describe());
            }
            Observed::Frame(_) => {}
            Observed::Closed => return Outcome::Pass,
            Observed::Timeout => {
                return Outcome::Fail(match answered {
                    Some(f) => format!("expected RST_STREAM({wanted}), the stream was answered and ended ({f}) without a reset"),
                    None => format!("expected RST_STREAM({wanted}) on stream {stream}, nothing came"),
                })
            }
        }
    }
}

/// The connection must still work: a PING is answered, and nothing was reset or closed.
pub fn expect_alive(conn: &mut Conn) -> Outcome {
    let payload = conn.send_ping();
    loop {
        match conn.read_frame() {
            Observed::Frame(f)
                if f.kind == kind::PING && f.flags & flag::ACK != 0 && f.payload == payload =>
            {
                return Outcome::Pass
            }
            Observed::Frame(f) if f.kind == kind::GOAWAY || f.kind == kind::RST_STREAM => {
                return Outcome::Fail(format!(
                    "expected the frame to be ignored, got {}",
                    f.describe()
                ))
            }
            Observed::Frame(_) => {}
            Observed::Closed => {
                return Outcome::Fail(
                    "expected the frame to be ignored, the connection was closed".into(),
                )
            }
            Observed::Timeout => {
                return Outcome::Fail("no PING ACK: the connection stopped answering".into())
            }
        }
    }
}

/// The peer must answer `stream` with a HEADERS frame (a response), without resetting it.
pub fn expect_response(conn: &mut Conn, stream: u32) -> Outcome {
    loop {
        match conn.read_frame() {
            Observed::Frame(f) if f.kind == kind::HEADERS && f.stream == stream => {
                return Outcome::Pass
            }
            Observed::Frame(f)
                if f.kind == kind::GOAWAY || (f.kind == kind::RST_STREAM && f.stream == stream) =>
            {
                return Outcome::Fail(format!(
                    "expected a response on stream {stream}, got {}",
                    f.describe()
                ))
            }
            Observed::Frame(_) => {}
            Observed::Closed => {
                return Outcome::Fail("expected a response, the connection was closed".into())
            }
            Observed::Timeout => {
                return Outcome::Fail(format!(
                    "expected a response on stream {stream}, nothing came"
                ))
            }
        }
    }
}

/// Reads the response on `stream` up to its END_STREAM (giving DATA back to the windows);
/// `Err` with the outcome when it does not complete.
pub fn read_response_to_end(c: &mut Conn, stream: u32) -> Result<(), Outcome> {
    loop {
        match c.read_frame() {
            Observed::Frame(f) if f.stream == stream && f.flags & flag::END_STREAM != 0 => {
                return Ok(())
            }
            Observed::Frame(f) if f.kind == kind::DATA && f.stream == stream => {
                let n = (f.payload.len() as u32).to_be_bytes();
                let mut b = crate::conn::frame(kind::WINDOW_UPDATE, 0, 0, &n);
                b.extend(crate::conn::frame(kind::WINDOW_UPDATE, 0, stream, &n));
                c.send_bytes(&b);
            }
            Observed::Frame(f)
                if f.kind == kind::GOAWAY || (f.kind == kind::RST_STREAM && f.stream == stream) =>
            {
                return Err(Outcome::Fail(format!(
                    "the request failed: {}",
                    f.describe()
                )))
            }
            Observed::Frame(_) => {}
            Observed::Closed => return Err(Outcome::Fail("the connection was closed".into())),
            Observed::Timeout => return Err(Outcome::Fail("the response did not end".into())),
        }
    }
}
