//! A raw HTTP/2 client connection for the suite: it writes exactly the bytes a case crafts and
//! reads the peer's frames with its own minimal frame parser (RFC 9113 §4.1), so that a bug in
//! h2mux's decoder cannot hide a bug in h2mux's server.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use h2mux_wire::ErrorCode;

use crate::hpack_lite;

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Frame type codes (RFC 9113 §6).
#[allow(missing_docs)]
pub mod kind {
    pub const DATA: u8 = 0x0;
    pub const HEADERS: u8 = 0x1;
    pub const PRIORITY: u8 = 0x2;
    pub const RST_STREAM: u8 = 0x3;
    pub const SETTINGS: u8 = 0x4;
    pub const PUSH_PROMISE: u8 = 0x5;
    pub const PING: u8 = 0x6;
    pub const GOAWAY: u8 = 0x7;
    pub const WINDOW_UPDATE: u8 = 0x8;
    pub const CONTINUATION: u8 = 0x9;
}

/// Frame flags (RFC 9113 §6).
#[allow(missing_docs)]
pub mod flag {
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const PADDED: u8 = 0x8;
    pub const PRIORITY: u8 = 0x20;
}

/// SETTINGS identifiers (RFC 9113 §6.5.2).
#[allow(missing_docs)]
pub mod setting {
    pub const HEADER_TABLE_SIZE: u16 = 0x1;
    pub const ENABLE_PUSH: u16 = 0x2;
    pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
    pub const MAX_FRAME_SIZE: u16 = 0x5;
    pub const MAX_HEADER_LIST_SIZE: u16 = 0x6;
}

/// The largest frame payload this client accepts from a peer (the RFC's absolute maximum).
const MAX_ACCEPTED_PAYLOAD: usize = (1 << 24) - 1;

/// One frame as the peer sent it.
#[derive(Debug, Clone)]
pub struct RawFrame {
    /// Frame type.
    pub kind: u8,
    /// Flags octet.
    pub flags: u8,
    /// Stream identifier (reserved bit cleared).
    pub stream: u32,
    /// Payload bytes.
    pub payload: Vec<u8>,
}

impl RawFrame {
    /// The error code carried by a GOAWAY or RST_STREAM frame.
    pub fn error_code(&self) -> Option<ErrorCode> {
        let at = match self.kind {
            kind::GOAWAY => 4,
            kind::RST_STREAM => 0,
            _ => return None,
        };
        let b = self.payload.get(at..at + 4)?;
        Some(ErrorCode::from(u32::from_be_bytes([
            b[0], b[1], b[2], b[3],
        ])))
    }

    /// A one-line description for failure messages.
    pub fn describe(&self) -> String {
        let name = match self.kind {
            kind::DATA => "DATA",
            kind::HEADERS => "HEADERS",
            kind::PRIORITY => "PRIORITY",
            kind::RST_STREAM => "RST_STREAM",
            kind::SETTINGS => "SETTINGS",
            kind::PUSH_PROMISE => "PUSH_PROMISE",
            kind::PING => "PING",
            kind::GOAWAY => "GOAWAY",
            kind::WINDOW_UPDATE => "WINDOW_UPDATE",
            kind::CONTINUATION => "CONTINUATION",
            _ => "unknown",
        };
        match self.error_code() {
            Some(code) => format!("{name}({code}) on stream {}", self.stream),
            None => format!(
                "{name} flags=0x{:02x} len={} on stream {}",
                self.flags,
                self.payload.len(),
                self.stream
            ),
        }
    }
}

/// What reading from the peer produced.
#[derive(Debug)]
pub enum Observed {
    /// A complete frame.
    Frame(RawFrame),
    /// The peer closed (or reset) the TCP connection.
    Closed,
    /// Nothing arrived before the deadline.
    Timeout,
}

/// What [`Conn::send_bounded`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendOutcome {
    /// Everything was written.
    Sent,
    /// The peer stopped reading: the write did not complete within the patience.
    Blocked,
    /// The connection is closed or reset.
    Closed,
}

/// Settings the peer announced (defaults of RFC 9113 §6.5.2 until it says otherwise).
#[derive(Debug, Clone, Copy)]
pub struct PeerSettings {
    /// SETTINGS_MAX_FRAME_SIZE.
    pub max_frame_size: u32,
    /// SETTINGS_MAX_CONCURRENT_STREAMS (None: unlimited).
    pub max_concurrent_streams: Option<u32>,
    /// SETTINGS_INITIAL_WINDOW_SIZE.
    pub initial_window_size: u32,
}

impl Default for PeerSettings {
    fn default() -> Self {
        PeerSettings {
            max_frame_size: 16_384,
            max_concurrent_streams: None,
            initial_window_size: 65_535,
        }
    }
}

/// Encodes one frame: the 9-octet header of RFC 9113 §4.1 followed by `payload`.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = Vec::with_capacity(9 + payload.len());
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The payload of a SETTINGS frame carrying `pairs`.
pub fn settings_payload(pairs: &[(u16, u32)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(pairs.len() * 6);
    for (id, value) in pairs {
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&value.to_be_bytes());
    }
    out
}

/// A TCP connection to `addr` from the local address `from` (any port; any address when
/// `None`), within `timeout`.
pub fn tcp_connect(
    addr: SocketAddr,
    from: Option<std::net::IpAddr>,
    timeout: Duration,
) -> io::Result<TcpStream> {
    let Some(ip) = from else {
        return TcpStream::connect_timeout(&addr, timeout);
    };
    let domain = if addr.is_ipv4() {
        socket2::Domain::IPV4
    } else {
        socket2::Domain::IPV6
    };
    let s = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    s.bind(&SocketAddr::new(ip, 0).into())?;
    s.connect_timeout(&addr.into(), timeout)?;
    Ok(s.into())
}

/// A raw client connection to the server under test.
pub struct Conn {
    sock: TcpStream,
    rbuf: Vec<u8>,
    /// How long an expectation waits for the peer's reaction.
    pub timeout: Duration,
    /// What the peer announced in its SETTINGS.
    pub peer: PeerSettings,
    /// The `:authority` sent in requests.
    pub authority: String,
    /// Acknowledge the peer's SETTINGS automatically (off for attacks that must not write).
    pub auto_ack_settings: bool,
    pings_sent: u64,
}

impl Conn {
    /// Opens a TCP connection (no bytes sent yet).
    pub fn connect(addr: SocketAddr, authority: &str, timeout: Duration) -> io::Result<Conn> {
        Conn::connect_from(addr, None, authority, timeout)
    }

    /// Opens a TCP connection from the local address `from` (any, when `None`).
    pub fn connect_from(
        addr: SocketAddr,
        from: Option<std::net::IpAddr>,
        authority: &str,
        timeout: Duration,
    ) -> io::Result<Conn> {
        let sock = tcp_connect(addr, from, timeout)?;
        sock.set_nodelay(true)?;
        Ok(Conn {
            sock,
            rbuf: Vec::with_capacity(64 * 1024),
            timeout,
            peer: PeerSettings::default(),
            authority: authority.to_string(),
            auto_ack_settings: true,
            pings_sent: 0,
        })
    }

    /// A second handle on the same connection for reading on another thread (it never
    /// writes: SETTINGS are not acknowledged by it). Frames already buffered stay here.
    pub fn reader(&self) -> io::Result<Conn> {
        Ok(Conn {
            sock: self.sock.try_clone()?,
            rbuf: Vec::with_capacity(64 * 1024),
            timeout: self.timeout,
            peer: self.peer,
            authority: self.authority.clone(),
            auto_ack_settings: false,
            pings_sent: 0,
        })
    }

    /// Sends the preface and a SETTINGS frame with `settings`, then waits until the server's
    /// SETTINGS has arrived (and is acknowledged) and our SETTINGS is acknowledged.
    pub fn handshake(&mut self, settings: &[(u16, u32)]) -> Result<(), String> {
        let mut bytes = PREFACE.to_vec();
        bytes.extend(frame(kind::SETTINGS, 0, 0, &settings_payload(settings)));
        self.send_bytes(&bytes);
        let deadline = Instant::now() + self.timeout;
        let (mut got_settings, mut got_ack) = (false, false);
        while !(got_settings && got_ack) {
            match self.read_frame_until(deadline) {
                Observed::Frame(f) if f.kind == kind::SETTINGS && f.flags & flag::ACK == 0 => {
                    got_settings = true
                }
                Observed::Frame(f) if f.kind == kind::SETTINGS => got_ack = true,
                Observed::Frame(f) if f.kind == kind::GOAWAY => {
                    return Err(format!("handshake: server sent {}", f.describe()))
                }
                Observed::Frame(_) => {}
                Observed::Closed => return Err("handshake: server closed the connection".into()),
                Observed::Timeout => {
                    return Err(format!(
                        "handshake: no {} within {:?}",
                        if got_settings {
                            "SETTINGS ACK"
                        } else {
                            "server SETTINGS"
                        },
                        self.timeout
                    ))
                }
            }
        }
        Ok(())
    }

    /// Writes bytes; a write error (peer already gone) shows up as `Closed` on the next read.
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        let _ = self.sock.write_all(bytes);
    }

    /// Writes bytes, waiting at most `patience` for the peer to make room: tells whether they
    /// all went out, the peer stopped reading (TCP back-pressure), or the connection is gone.
    pub fn send_bounded(&mut self, bytes: &[u8], patience: Duration) -> SendOutcome {
        if self.sock.set_write_timeout(Some(patience)).is_err() {
            return SendOutcome::Closed;
        }
        let out = match self.sock.write_all(bytes) {
            Ok(()) => SendOutcome::Sent,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                SendOutcome::Blocked
            }
            Err(_) => SendOutcome::Closed,
        };
        let _ = self.sock.set_write_timeout(None);
        out
    }

    /// Writes one frame.
    pub fn send(&mut self, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
        self.send_bytes(&frame(kind, flags, stream, payload));
    }

    /// The header list of a minimal valid request for `method` on this connection.
    pub fn request_fields(&self, method: &'static str) -> Vec<(&'static str, String)> {
        vec![
            (":method", method.to_string()),
            (":scheme", "http".to_string()),
            (":path", "/".to_string()),
            (":authority", self.authority.clone()),
        ]
    }

    /// A valid request header block for `method`, with `extra` fields appended.
    pub fn request_block(&self, method: &'static str, extra: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, value) in self.request_fields(method) {
            hpack_lite::literal(&mut out, name.as_bytes(), value.as_bytes());
        }
        for (name, value) in extra {
            hpack_lite::literal(&mut out, name.as_bytes(), value.as_bytes());
        }
        out
    }

    /// Opens `stream` with a GET (END_STREAM) or a POST whose body stays open.
    pub fn open_stream(&mut self, stream: u32, end_stream: bool) {
        let method = if end_stream { "GET" } else { "POST" };
        let block = self.request_block(method, &[]);
        let flags = flag::END_HEADERS | if end_stream { flag::END_STREAM } else { 0 };
        self.send(kind::HEADERS, flags, stream, &block);
    }

    /// Sends a PING with a fresh payload and returns that payload.
    pub fn send_ping(&mut self) -> [u8; 8] {
        self.pings_sent += 1;
        let payload = (0x6832_6d75_0000_0000u64 | self.pings_sent).to_be_bytes();
        self.send(kind::PING, 0, 0, &payload);
        payload
    }

    /// Reads the next frame before the expectation timeout.
    pub fn read_frame(&mut self) -> Observed {
        let deadline = Instant::now() + self.timeout;
        self.read_frame_until(deadline)
    }

    /// Reads the next frame before `deadline`. A SETTINGS frame from the peer is recorded and
    /// acknowledged, as RFC 9113 §6.5.3 requires, and still returned.
    pub fn read_frame_until(&mut self, deadline: Instant) -> Observed {
        loop {
            if let Some(f) = self.pop_frame() {
                if f.kind == kind::SETTINGS && f.flags & flag::ACK == 0 {
                    self.record_settings(&f.payload);
                    if self.auto_ack_settings {
                        self.send(kind::SETTINGS, flag::ACK, 0, &[]);
                    }
                }
                return Observed::Frame(f);
            }
            if self.rbuf.len() >= 9 && self.declared_len() > MAX_ACCEPTED_PAYLOAD {
                return Observed::Closed;
            }
            let now = Instant::now();
            if now >= deadline {
                return Observed::Timeout;
            }
            if self.sock.set_read_timeout(Some(deadline - now)).is_err() {
                return Observed::Closed;
            }
            let mut chunk = [0u8; 16 * 1024];
            match self.sock.read(&mut chunk) {
                Ok(0) => return Observed::Closed,
                Ok(n) => self.rbuf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Observed::Timeout
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Observed::Closed,
            }
        }
    }

    fn declared_len(&self) -> usize {
        (usize::from(self.rbuf[0]) << 16)
            | (usize::from(self.rbuf[1]) << 8)
            | usize::from(self.rbuf[2])
    }

    fn pop_frame(&mut self) -> Option<RawFrame> {
        if self.rbuf.len() < 9 {
            return None;
        }
        let len = self.declared_len();
        if self.rbuf.len() < 9 + len {
            return None;
        }
        let h = &self.rbuf[..9];
        let f = RawFrame {
            kind: h[3],
            flags: h[4],
            stream: u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff,
            payload: self.rbuf[9..9 + len].to_vec(),
        };
        self.rbuf.drain(..9 + len);
        Some(f)
    }

    fn record_settings(&mut self, payload: &[u8]) {
        for pair in payload.chunks_exact(6) {
            let id = u16::from_be_bytes([pair[0], pair[1]]);
            let value = u32::from_be_bytes([pair[2], pair[3], pair[4], pair[5]]);
            match id {
                setting::MAX_FRAME_SIZE => self.peer.max_frame_size = value,
                setting::MAX_CONCURRENT_STREAMS => self.peer.max_concurrent_streams = Some(value),
                setting::INITIAL_WINDOW_SIZE => self.peer.initial_window_size = value,
                _ => {}
            }
        }
    }
}
