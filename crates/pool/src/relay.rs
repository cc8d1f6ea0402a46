//! Relaying a socket through a pooled stream without copying the octets in user space: what a
//! tunnel does with each of its connections.
//!
//! `tokio::io::copy_bidirectional` over a [`PoolStream`] copies every octet twice more than
//! needed: into its own buffer and then into the stream's write arena one way, out of the
//! connection's read buffer into its buffer the other way. [`relay`] reads the socket into a
//! `BytesMut` and queues what arrived as a `Bytes` (the stream's zero-copy
//! [`PoolStream::write_chunk`] path), and writes the received `Bytes` slices
//! ([`PoolStream::read_chunk`]) straight to the socket. Measured with `h2mux tunnel` on
//! loopback (BENCHMARKS.md, "The tunnel's relay"), the two tunnel processes spend less CPU
//! per GiB.
//!
//! Semantics are those of `copy_bidirectional`: an end of file on one side becomes a
//! half-close of the other (`shutdown` of the socket's write half; END_STREAM on the
//! stream); it returns when both directions have ended, or at the first error of either
//! (a reset stream is `ConnectionReset`, a stream timeout `TimedOut`), with the octets moved
//! each way. Memory stays bounded: the socket is read only while the stream has room in
//! flight (`MAX_IN_FLIGHT`), and one received chunk at a time is held for the socket.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use crate::stream::PoolStream;

/// Room asked for when the socket buffer runs low (one read takes at most what is free).
const READ_BUFFER: usize = 256 << 10;
/// Below this much free room, the next read gets a fresh (or reclaimed) buffer.
const MIN_READ_ROOM: usize = 16 << 10;

/// Copies `outside` → `stream` and `stream` → `outside` at once until both directions have
/// ended or one fails. Returns the octets moved (outside → stream, stream → outside).
pub async fn relay<T>(outside: &mut T, stream: &mut PoolStream) -> io::Result<(u64, u64)>
where
    T: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let mut up = Up::default();
    let mut down = Down::default();
    std::future::poll_fn(|cx| {
        // A finished direction is not polled again.
        if !up.done {
            if let Poll::Ready(Err(e)) = up.poll(cx, outside, stream) {
                return Poll::Ready(Err(e));
            }
        }
        if !down.done {
            if let Poll::Ready(Err(e)) = down.poll(cx, outside, stream) {
                return Poll::Ready(Err(e));
            }
        }
        if up.done && down.done {
            Poll::Ready(Ok((up.moved, down.moved)))
        } else {
            Poll::Pending
        }
    })
    .await
}

/// outside → stream.
#[derive(Default)]
struct Up {
    buf: BytesMut,
    /// Read from the socket, waiting for room in the stream.
    pending: Option<Bytes>,
    eof: bool,
    /// Ended (the other side was shut down): Ready, and not polled again.
    done: bool,
    moved: u64,
}

impl Up {
    fn poll<T>(
        &mut self,
        cx: &mut Context<'_>,
        outside: &mut T,
        stream: &mut PoolStream,
    ) -> Poll<io::Result<()>>
    where
        T: AsyncRead + Unpin + ?Sized,
    {
        loop {
            if let Some(chunk) = self.pending.take() {
                if let Poll::Ready(r) = stream.poll_writable(cx) {
                    r?;
                    self.moved += chunk.len() as u64;
                    stream.queue_chunk(chunk);
                    continue;
                }
                self.pending = Some(chunk);
                return Poll::Pending;
            }
            if self.eof {
                ready!(Pin::new(&mut *stream).poll_shutdown(cx))?;
                self.done = true;
                return Poll::Ready(Ok(()));
            }
            if self.buf.capacity() - self.buf.len() < MIN_READ_ROOM {
                // Reclaims the buffer in place once the connection has written (dropped)
                // every slice of it; allocates another while it still holds some.
                self.buf.reserve(READ_BUFFER);
            }
            let read = std::pin::pin!(outside.read_buf(&mut self.buf));
            match ready!(read.poll(cx))? {
                0 => self.eof = true,
                _ => self.pending = Some(self.buf.split().freeze()),
            }
        }
    }
}

/// stream → outside.
#[derive(Default)]
struct Down {
    /// Received and not yet (all) written to the socket.
    chunk: Bytes,
    unflushed: bool,
    eof: bool,
    /// Ended (the other side was shut down): Ready, and not polled again.
    done: bool,
    moved: u64,
}

impl Down {
    fn poll<T>(
        &mut self,
        cx: &mut Context<'_>,
        outside: &mut T,
        stream: &mut PoolStream,
    ) -> Poll<io::Result<()>>
    where
        T: AsyncWrite + Unpin + ?Sized,
    {
        loop {
            if !self.chunk.is_empty() {
                let n = ready!(Pin::new(&mut *outside).poll_write(cx, &self.chunk))?;
                if n == 0 {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "the socket took no more octets",
                    )));
                }
                self.chunk.advance(n);
                if self.chunk.is_empty() {
                    // An empty slice would still pin the connection's read buffer.
                    self.chunk = Bytes::new();
                }
                self.moved += n as u64;
                self.unflushed = true;
                continue;
            }
            if self.eof {
                ready!(Pin::new(&mut *outside).poll_shutdown(cx))?;
                self.done = true;
                return Poll::Ready(Ok(()));
            }
            match stream.poll_read_chunk(cx)? {
                Poll::Ready(Some(c)) => self.chunk = c,
                Poll::Ready(None) => self.eof = true,
                Poll::Pending => {
                    if self.unflushed {
                        ready!(Pin::new(&mut *outside).poll_flush(cx))?;
                        self.unflushed = false;
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}
