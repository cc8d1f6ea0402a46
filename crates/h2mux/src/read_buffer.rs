//! The driver's read side: large, recycled read buffers while traffic flows, nothing held
//! while the connection is idle.
//!
//! DATA payloads leave the driver as zero-copy [`Bytes`] slices of the buffer a frame was read
//! into, so a buffer is busy until the application drops the last slice of it. Measured on the
//! 2-core loopback box (`examples/load bulk-1 h2mux 4096` under `perf stat`), letting `BytesMut`
//! grow a 256 KiB buffer for 1 MiB frames cost 320 000–365 000 page faults per 4 GiB in half the
//! runs (fresh allocations for every frame, each partial frame copied again at each growth:
//! `memmove` + `clear_page` ≈ 30 % of the profile). Here:
//!
//! * **Big mode** (traffic flows): reads go straight into one of a few buffers of at least
//!   [`BIG_BUFFER`] bytes (larger if a frame needs it). A buffer whose slices are all dropped is
//!   reclaimed in place (`BytesMut::try_reclaim`) instead of allocating a new one, so the same
//!   warm pages are reused, as a raw TCP copy loop reuses its one buffer. Reads are cut at the
//!   end of a large frame (and, after one, the next read only probes [`PROBE_READ`] bytes to
//!   learn the next frame's size), so a frame starts near the front of a buffer with room for
//!   all of it: switching buffers then copies at most a probe's worth.
//! * **Small mode** (idle or light traffic): each read goes into a [`SMALL_READ`] array on the
//!   stack and only what arrived is copied to the heap; nothing is kept while waiting, so an
//!   idle connection holds no read buffer. A read that fills the array, or a frame larger than
//!   it, switches to big mode; the driver calls [`ReadBuffers::release`] when the connection
//!   has been quiet for a while.

use std::future::Future;
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{BufMut, BytesMut};
use h2mux_wire::FrameDecoder;
use tokio::io::{AsyncRead, ReadBuf};

/// Stack buffer of a small-mode read.
pub(crate) const SMALL_READ: usize = 16 * 1024;
/// Least capacity of a big-mode buffer (issue 5: ≥ 256 KiB).
pub(crate) const BIG_BUFFER: usize = 256 * 1024;
/// Frames larger than this are read up to their end and no further.
const LARGE_FRAME: usize = 64 * 1024;
/// After a large frame, the next read takes at most this much (the next frame's header).
const PROBE_READ: usize = 16 * 1024;
/// Free room wanted before an ordinary big-mode read.
const MIN_ROOM: usize = 64 * 1024;
/// Buffers kept for reuse besides the current one.
const MAX_SPARES: usize = 4;
/// Buffer sizes are rounded up to this.
const GRANULE: usize = 64 * 1024;

/// The read buffers of one connection.
#[derive(Debug)]
pub(crate) struct ReadBuffers {
    /// Bytes read and not yet consumed by the core (a partial frame) at the front.
    buf: BytesMut,
    /// Earlier buffers, reused once the application dropped every slice of them.
    spares: Vec<BytesMut>,
    big: bool,
    /// The last read was cut at the end of a large frame: probe before reading on.
    after_large: bool,
    /// Largest frame (header included) the core accepts: never make room for more.
    max_frame_total: usize,
}

/// How much room the next read needs and how much it may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Free capacity to have before reading.
    pub room: usize,
    /// Most bytes the read may take.
    pub cap: usize,
}

/// The next big-mode read, from what the buffer holds: `held` bytes, of which the first frame
/// is `frame_total` bytes long when its header is complete.
pub(crate) fn plan(
    held: usize,
    frame_total: Option<usize>,
    after_large: bool,
    max_frame_total: usize,
) -> Plan {
    match frame_total {
        Some(total) if total > held && total <= max_frame_total => {
            let rest = total - held;
            if total > LARGE_FRAME {
                Plan {
                    room: rest,
                    cap: rest,
                }
            } else {
                Plan {
                    room: rest.max(MIN_ROOM),
                    cap: usize::MAX,
                }
            }
        }
        _ if after_large => Plan {
            room: PROBE_READ,
            cap: PROBE_READ,
        },
        _ => Plan {
            room: MIN_ROOM,
            cap: usize::MAX,
        },
    }
}

impl ReadBuffers {
    pub(crate) fn new(max_frame_size: u32) -> ReadBuffers {
        ReadBuffers {
            buf: BytesMut::new(),
            spares: Vec::new(),
            big: false,
            after_large: false,
            max_frame_total: max_frame_size as usize + 9,
        }
    }

    /// The unconsumed bytes, for the core's `recv`.
    pub(crate) fn data(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Whether reads go to the large buffers.
    pub(crate) fn is_big(&self) -> bool {
        self.big
    }

    /// Free capacity of the current buffer and the spares (their unused tails), for tests.
    #[cfg(test)]
    pub(crate) fn held_capacity(&self) -> usize {
        self.buf.capacity() + self.spares.iter().map(BytesMut::capacity).sum::<usize>()
    }

    fn frame_total(&self) -> Option<usize> {
        FrameDecoder::peek_header(&self.buf).map(|h| 9 + h.length as usize)
    }

    /// Called after the core consumed what it could: in small mode an emptied buffer is
    /// dropped, so nothing is held while waiting.
    pub(crate) fn after_recv(&mut self) {
        if !self.big && self.buf.is_empty() {
            self.buf = BytesMut::new();
        }
    }

    /// Gives the big buffers back (the connection went quiet). Bytes of a partial frame are
    /// kept, in a buffer of their size.
    pub(crate) fn release(&mut self) {
        self.spares = Vec::new();
        self.big = false;
        self.after_large = false;
        if self.buf.is_empty() {
            self.buf = BytesMut::new();
        } else if self.buf.capacity() > 2 * self.buf.len() + SMALL_READ {
            let kept = BytesMut::from(&self.buf[..]);
            self.buf = kept;
        }
    }

    /// Reads once from `io`. `Ok(0)` is the end of the stream.
    pub(crate) fn poll_read<IO: AsyncRead + Unpin>(
        &mut self,
        io: &mut IO,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        let total = self.frame_total();
        if !self.big && total.is_some_and(|t| t > self.buf.len() + SMALL_READ) {
            self.big = true;
        }
        if !self.big {
            let mut stack = [MaybeUninit::<u8>::uninit(); SMALL_READ];
            let mut rb = ReadBuf::uninit(&mut stack);
            std::task::ready!(Pin::new(io).poll_read(cx, &mut rb))?;
            let got = rb.filled();
            if got.len() == SMALL_READ {
                self.big = true;
            }
            self.buf.extend_from_slice(got);
            return Poll::Ready(Ok(got.len()));
        }
        let p = plan(
            self.buf.len(),
            total,
            self.after_large,
            self.max_frame_total,
        );
        // A read cut at the end of a large frame: the next one probes for the next header.
        self.after_large = total.is_some_and(|t| t > LARGE_FRAME && p.cap == t - self.buf.len());
        self.make_room(p.room);
        let mut limited = (&mut self.buf).limit(p.cap);
        let fut = tokio::io::AsyncReadExt::read_buf(io, &mut limited);
        std::pin::pin!(fut).poll(cx)
    }

    /// Makes sure at least `room` bytes are free after the held ones: in place if the buffer
    /// can be reclaimed, else in a spare whose slices are all gone, else in a new buffer.
    fn make_room(&mut self, room: usize) {
        let room = room.max(1);
        if self.buf.capacity() - self.buf.len() >= room {
            return;
        }
        if self.buf.try_reclaim(room) && self.buf.capacity() - self.buf.len() >= room {
            return;
        }
        let need = self.buf.len() + room;
        let reusable = self.spares.iter_mut().position(|s| {
            s.clear();
            s.try_reclaim(need) && s.capacity() >= need
        });
        let mut next = match reusable {
            Some(i) => self.spares.swap_remove(i),
            None => {
                let size = need.max(BIG_BUFFER).div_ceil(GRANULE) * GRANULE;
                BytesMut::with_capacity(size)
            }
        };
        next.extend_from_slice(&self.buf);
        let mut old = std::mem::replace(&mut self.buf, next);
        old.clear();
        if old.capacity() > 0 {
            if self.spares.len() >= MAX_SPARES {
                self.spares.remove(0);
            }
            self.spares.push(old);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::sync::Arc;
    use std::task::{Wake, Waker};

    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }

    /// Serves `data` at most `chunk` bytes per read.
    struct Source {
        data: Bytes,
        chunk: usize,
    }

    impl AsyncRead for Source {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let n = self.data.len().min(self.chunk).min(buf.remaining());
            let part = self.data.split_to(n);
            buf.put_slice(&part);
            Poll::Ready(Ok(()))
        }
    }

    fn data_frame(len: usize) -> Vec<u8> {
        let mut f = vec![
            (len >> 16) as u8,
            (len >> 8) as u8,
            len as u8,
            0,
            0,
            0,
            0,
            0,
            1,
        ];
        f.resize(9 + len, 7);
        f
    }

    /// Reads everything, splitting complete frames off as the core does; each frame is handed
    /// to `keep` (which may hold it or drop it). Returns the most buffer memory ever held.
    fn drain(rb: &mut ReadBuffers, src: &mut Source, mut keep: impl FnMut(Bytes)) -> usize {
        let waker = Waker::from(Arc::new(Noop));
        let mut cx = Context::from_waker(&waker);
        let mut most = 0;
        loop {
            match rb.poll_read(src, &mut cx) {
                Poll::Ready(Ok(0)) => return most,
                Poll::Ready(Ok(_)) => {}
                other => panic!("{other:?}"),
            }
            most = most.max(rb.held_capacity());
            while let Some(h) = FrameDecoder::peek_header(rb.data()) {
                let total = 9 + h.length as usize;
                if rb.data().len() < total {
                    break;
                }
                keep(rb.data().split_to(total).freeze());
            }
            rb.after_recv();
        }
    }

    #[test]
    fn large_frames_are_read_to_their_end_then_probed() {
        let max = (1 << 20) + 9;
        // Header known, 1 MiB frame, 100 KiB of it held: read exactly the rest.
        let p = plan(100 << 10, Some((1 << 20) + 9), false, max);
        assert_eq!(p.room, (1 << 20) + 9 - (100 << 10));
        assert_eq!(p.cap, p.room);
        // Just after it: only a probe, to learn the next frame's size.
        assert_eq!(
            plan(0, None, true, max),
            Plan {
                room: PROBE_READ,
                cap: PROBE_READ
            }
        );
        // Small frames: room for several, no cap.
        let p = plan(3, Some(109), false, max);
        assert!(p.room >= MIN_ROOM && p.cap == usize::MAX);
        // A header beyond our limit is the core's to reject: no room is made for it.
        assert_eq!(plan(9, Some(max + 1), false, max).room, MIN_ROOM);
    }

    #[test]
    fn big_buffers_are_reused_when_the_frames_are_dropped() {
        let frames = 64;
        let mut wire = Vec::new();
        for _ in 0..frames {
            wire.extend(data_frame(1 << 20));
        }
        let mut src = Source {
            data: Bytes::from(wire),
            chunk: 300 << 10,
        };
        let mut rb = ReadBuffers::new(1 << 20);
        let mut got = 0;
        let most = drain(&mut rb, &mut src, |f| {
            assert_eq!(f.len(), 9 + (1 << 20));
            got += 1;
        });
        assert_eq!(got, frames);
        // 64 MiB went through at most two ~1.1 MiB buffers: each was reclaimed in place.
        assert!(
            most <= 2 * ((1 << 20) + GRANULE + PROBE_READ),
            "held {most}"
        );
    }

    #[test]
    fn frames_still_held_get_new_buffers_and_are_intact() {
        let mut wire = Vec::new();
        for i in 0..8u8 {
            let mut f = data_frame(200 << 10);
            f[9..].fill(i);
            wire.extend(f);
        }
        let mut src = Source {
            data: Bytes::from(wire),
            chunk: 70 << 10,
        };
        let mut rb = ReadBuffers::new(1 << 20);
        let mut held = Vec::new();
        drain(&mut rb, &mut src, |f| held.push(f));
        assert_eq!(held.len(), 8);
        for (i, f) in held.iter().enumerate() {
            assert!(f[9..].iter().all(|&b| b == i as u8), "frame {i} corrupted");
        }
    }

    #[test]
    fn small_reads_hold_nothing_once_consumed_and_release_gives_big_buffers_back() {
        let mut src = Source {
            data: Bytes::from(data_frame(100)),
            chunk: 1 << 20,
        };
        let mut rb = ReadBuffers::new(1 << 20);
        drain(&mut rb, &mut src, drop);
        assert!(!rb.is_big());
        assert_eq!(
            rb.held_capacity(),
            0,
            "an idle connection holds no read buffer"
        );

        let mut src = Source {
            data: Bytes::from(data_frame(1 << 20)),
            chunk: 1 << 20,
        };
        let most = drain(&mut rb, &mut src, drop);
        assert!(rb.is_big(), "a large frame switches to the big buffers");
        assert!(
            most > 1 << 20,
            "the frame was read into one buffer ({most})"
        );
        rb.release();
        assert!(!rb.is_big());
        assert_eq!(rb.held_capacity(), 0);
    }

    #[test]
    fn release_keeps_a_partial_frame() {
        let frame = data_frame(300 << 10);
        let mut src = Source {
            data: Bytes::copy_from_slice(&frame[..(100 << 10)]),
            chunk: 1 << 20,
        };
        let mut rb = ReadBuffers::new(1 << 20);
        drain(&mut rb, &mut src, |_| panic!("incomplete"));
        rb.release();
        assert_eq!(&rb.data()[..], &frame[..(100 << 10)]);
        assert!(rb.held_capacity() < 2 * (100 << 10) + SMALL_READ);
    }
}
