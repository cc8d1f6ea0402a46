//! The memory rows (issue 5 §6): resident bytes a server keeps per idle connection and per
//! open idle stream.
//!
//! The client here is a few lines of raw HTTP/2 on plain sockets (preface, SETTINGS, HPACK
//! from `h2mux-wire`), so that what it holds per connection — a socket and a few bytes — is
//! negligible beside what the server holds; socket buffers live in the kernel, not in the
//! process's resident set. The row's value is the growth of the server's RSS
//! (`/proc/PID/statm`) divided by the connections (or streams) opened, after one warm-up
//! connection has paid the one-time costs. `h2mux bench` runs these rows' servers in a fresh
//! child process each ([`set_server_pid`]): in one process, memory a previous row freed is
//! reused without the RSS growing, and the contender measured second looks smaller than it
//! is (seen: 0.3 KiB per stream after the `h2` rows, 2.2 KiB alone). Without a child (the
//! `load` example) it is this process's RSS, both sides included.
//!
//! * `mem-conn`: N connections, each completes one request (`GET /bytes/100`) and then sits
//!   idle for [`SETTLE`] (longer than h2mux's 1 s idle release of its big buffers).
//! * `mem-stream`: connections of up to [`STREAMS_PER_CONN`] streams, each opened with
//!   `POST /echo` headers and no body: the server's handler waits for the body; idle.

use crate::Measurement;
use bytes::BytesMut;
use h2mux::wire::frame::{encode_frame_header, flags, kind, FrameHeader, SettingsFrame};
use h2mux::wire::hpack::{Encoder, HeaderField};
use h2mux::wire::StreamId;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Idle connections opened by `mem-conn`.
pub const CONNECTIONS: usize = 1000;
/// Streams per connection of `mem-stream` (below every contender's concurrency limit).
pub const STREAMS_PER_CONN: usize = 180;
/// Connections of `mem-stream`.
pub const STREAM_CONNECTIONS: usize = 4;
/// Time left to the server between opening and measuring.
pub const SETTLE: Duration = Duration::from_millis(1500);

/// The process whose memory the rows measure, when the server runs in a child (0: this one).
static SERVER_PID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Measures the server process `pid` from now on (`None`: this process again).
pub fn set_server_pid(pid: Option<u32>) {
    SERVER_PID.store(pid.unwrap_or(0), std::sync::atomic::Ordering::Relaxed);
}

/// Resident bytes of the server's process.
pub fn resident_bytes() -> io::Result<u64> {
    let statm = match SERVER_PID.load(std::sync::atomic::Ordering::Relaxed) {
        0 => std::fs::read_to_string("/proc/self/statm")?,
        pid => std::fs::read_to_string(format!("/proc/{pid}/statm"))?,
    };
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| io::Error::other("unreadable /proc/self/statm"))?;
    Ok(pages * 4096)
}

struct RawConn {
    sock: TcpStream,
    hpack: Encoder,
    buf: BytesMut,
}

impl RawConn {
    /// Connects and sends the preface and an empty SETTINGS.
    async fn open(addr: SocketAddr) -> io::Result<RawConn> {
        let sock = TcpStream::connect(addr).await?;
        sock.set_nodelay(true)?;
        let mut c = RawConn {
            sock,
            hpack: Encoder::new(),
            buf: BytesMut::new(),
        };
        c.buf.extend_from_slice(h2mux::wire::frame::CLIENT_PREFACE);
        SettingsFrame::encode_settings(&[], &mut c.buf);
        Ok(c)
    }

    /// Queues HEADERS for `id` (`end_stream`: no body follows).
    fn headers(&mut self, id: u32, method: &'static str, path: &'static str, end_stream: bool) {
        let fields = [
            HeaderField::new(":method", method),
            HeaderField::new(":scheme", "http"),
            HeaderField::new(":authority", "localhost"),
            HeaderField::new(":path", path),
        ];
        let mut block = BytesMut::new();
        self.hpack.encode(fields.iter(), &mut block);
        let mut f = flags::END_HEADERS;
        if end_stream {
            f |= flags::END_STREAM;
        }
        encode_frame_header(
            &FrameHeader {
                length: block.len() as u32,
                kind: kind::HEADERS,
                flags: f,
                stream_id: StreamId::new(id),
            },
            &mut self.buf,
        );
        self.buf.extend_from_slice(&block);
    }

    /// Queues a PING (its ACK tells that everything before it was processed).
    fn ping(&mut self) {
        encode_frame_header(
            &FrameHeader {
                length: 8,
                kind: kind::PING,
                flags: 0,
                stream_id: StreamId::ZERO,
            },
            &mut self.buf,
        );
        self.buf.extend_from_slice(&[0; 8]);
    }

    async fn flush(&mut self) -> io::Result<()> {
        self.sock.write_all(&self.buf).await?;
        self.buf.clear();
        Ok(())
    }

    /// Reads frames (acknowledging the server's SETTINGS) until `done` says so.
    async fn read_until(&mut self, mut done: impl FnMut(&FrameHeader) -> bool) -> io::Result<()> {
        let mut head = [0u8; 9];
        let mut payload = Vec::new();
        loop {
            self.sock.read_exact(&mut head).await?;
            let h = FrameHeader {
                length: u32::from_be_bytes([0, head[0], head[1], head[2]]),
                kind: head[3],
                flags: head[4],
                stream_id: StreamId::new(u32::from_be_bytes([head[5], head[6], head[7], head[8]])),
            };
            payload.resize(h.length as usize, 0);
            self.sock.read_exact(&mut payload).await?;
            if h.kind == kind::SETTINGS && h.flags & flags::ACK == 0 {
                SettingsFrame::encode_ack(&mut self.buf);
                self.flush().await?;
            }
            if h.kind == kind::GOAWAY {
                return Err(io::Error::other("the server sent GOAWAY"));
            }
            if done(&h) {
                return Ok(());
            }
        }
    }
}

/// One used, then idle, connection.
async fn idle_connection(addr: SocketAddr) -> io::Result<RawConn> {
    let mut c = RawConn::open(addr).await?;
    c.headers(1, "GET", "/bytes/100", true);
    c.flush().await?;
    c.read_until(|h| {
        h.stream_id.value() == 1
            && h.flags & flags::END_STREAM != 0
            && matches!(h.kind, kind::DATA | kind::HEADERS)
    })
    .await?;
    Ok(c)
}

/// `mem-conn`: KiB of server memory per idle connection.
pub async fn per_idle_connection(addr: SocketAddr) -> io::Result<Measurement> {
    let warm = idle_connection(addr).await?;
    tokio::time::sleep(SETTLE).await;
    let before = resident_bytes()?;
    let mut conns = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        conns.push(idle_connection(addr).await?);
    }
    tokio::time::sleep(SETTLE).await;
    let after = resident_bytes()?;
    drop((warm, conns));
    Ok(Measurement {
        value: after.saturating_sub(before) as f64 / CONNECTIONS as f64 / 1024.0,
        unit: "KiB/conn",
        note: format!("{CONNECTIONS} idle connections after one request each"),
        ..Default::default()
    })
}

/// Opens `n` streams with request headers and no body on a fresh connection; returns once
/// the server has processed them (its PING ACK).
async fn idle_streams(addr: SocketAddr, n: usize) -> io::Result<RawConn> {
    let mut c = RawConn::open(addr).await?;
    for i in 0..n {
        c.headers(1 + 2 * i as u32, "POST", "/echo", false);
    }
    c.ping();
    c.flush().await?;
    c.read_until(|h| h.kind == kind::PING && h.flags & flags::ACK != 0)
        .await?;
    Ok(c)
}

/// `mem-stream`: KiB of server memory per open idle stream. The connections' own cost is
/// taken out: RSS grows by `c` for [`STREAM_CONNECTIONS`] connections without streams, then by
/// `c + s` for as many connections with [`STREAMS_PER_CONN`] streams each.
pub async fn per_idle_stream(addr: SocketAddr) -> io::Result<Measurement> {
    // Warm-up: a connection with a stream, so that one-time costs are paid.
    let warm = idle_streams(addr, 1).await?;
    tokio::time::sleep(SETTLE).await;
    let r0 = resident_bytes()?;
    let mut plain = Vec::with_capacity(STREAM_CONNECTIONS);
    for _ in 0..STREAM_CONNECTIONS {
        plain.push(idle_streams(addr, 0).await?);
    }
    tokio::time::sleep(SETTLE).await;
    let r1 = resident_bytes()?;
    let mut busy = Vec::with_capacity(STREAM_CONNECTIONS);
    for _ in 0..STREAM_CONNECTIONS {
        busy.push(idle_streams(addr, STREAMS_PER_CONN).await?);
    }
    tokio::time::sleep(SETTLE).await;
    let r2 = resident_bytes()?;
    drop((warm, plain, busy));
    let conns = r1.saturating_sub(r0);
    let streams = STREAM_CONNECTIONS * STREAMS_PER_CONN;
    let bytes = r2.saturating_sub(r1).saturating_sub(conns);
    Ok(Measurement {
        value: bytes as f64 / streams as f64 / 1024.0,
        unit: "KiB/stream",
        note: format!("{streams} open idle streams on {STREAM_CONNECTIONS} conns"),
        ..Default::default()
    })
}
