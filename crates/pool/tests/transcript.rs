//! A recorded byte-level transcript pins the wire protocol: the decrypted HTTP/2 bytes of a
//! real client pool talking to a real server pool are decoded frame by frame and compared with
//! tests/data/transcript.txt.

mod common;

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use common::*;
use h2mux_pool::transport::BoxIo;
use h2mux_pool::PoolStreamId;
use h2mux_wire::{Frame, FrameDecoder};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

const T: Duration = Duration::from_secs(10);

/// Records what crosses it: `sent` what the client wrote, `received` what it read.
struct Recorder {
    inner: BoxIo,
    sent: Arc<Mutex<Vec<u8>>>,
    received: Arc<Mutex<Vec<u8>>>,
}

impl AsyncRead for Recorder {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let new = buf.filled()[before..].to_vec();
        self.received.lock().unwrap().extend_from_slice(&new);
        r
    }
}

impl AsyncWrite for Recorder {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            self.sent.lock().unwrap().extend_from_slice(&buf[..n]);
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The stream-level frames of one direction, as transcript lines (streams 1 and 3 only).
fn frames(dir: &str, bytes: &[u8], id: PoolStreamId) -> Vec<String> {
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    let preface = h2mux_wire::frame::CLIENT_PREFACE;
    if dir == "C>S" {
        assert_eq!(
            &buf[..preface.len()],
            preface,
            "the client preface comes first"
        );
        let _ = buf.split_to(preface.len());
        out.push(format!(
            "{dir} preface {}",
            String::from_utf8_lossy(preface).replace("\r\n", "\\r\\n")
        ));
    }
    let mut dec = FrameDecoder::new(1 << 24);
    let mut hpack = h2mux_wire::hpack::Decoder::new(4096, 1 << 16);
    let mut data: Option<(u32, String)> = None;
    let flush = |data: &mut Option<(u32, String)>, out: &mut Vec<String>, end: bool| {
        if let Some((s, mut text)) = data.take() {
            if end {
                text.push_str(" END_STREAM");
            }
            out.push(format!("{dir} DATA s={s}{text}"));
        }
    };
    while let Some(f) = dec.decode(&mut buf).unwrap() {
        let s = f.stream_id().value();
        match f {
            // HPACK state must follow every header block, whatever its stream.
            Frame::Headers(h) => {
                assert!(h.end_headers, "pool header blocks fit one frame");
                let fields = hpack.decode(&h.header_block).unwrap();
                if s != 1 && s != 3 {
                    continue;
                }
                flush(&mut data, &mut out, false);
                let text: Vec<String> = fields
                    .iter()
                    .filter(|f| f.name.starts_with(b":"))
                    .map(|f| {
                        format!(
                            "{}={}",
                            String::from_utf8_lossy(&f.name),
                            String::from_utf8_lossy(&f.value)
                        )
                    })
                    .collect();
                out.push(format!("{dir} HEADERS s={s} {}", text.join(" ")));
                if h.end_stream {
                    out.push(format!("{dir} END_STREAM s={s}"));
                }
            }
            Frame::Data(d) if s == 1 || s == 3 => {
                if data.as_ref().is_some_and(|(ds, _)| *ds != s) {
                    flush(&mut data, &mut out, false);
                }
                let entry = data.get_or_insert((s, String::new()));
                if !d.payload.is_empty() {
                    let mut hex: String = d.payload.iter().map(|b| format!("{b:02x}")).collect();
                    let id_hex = id.to_string();
                    if s == 3
                        && dir == "S>C"
                        && hex.starts_with(&id_hex)
                        && !entry.1.contains("<id>")
                    {
                        hex = format!("<id>{}", &hex[8..]);
                        if hex.len() > 4 {
                            hex.insert(4, ' ');
                        }
                    }
                    entry.1.push(' ');
                    entry.1.push_str(&hex);
                }
                if d.end_stream {
                    flush(&mut data, &mut out, true);
                }
            }
            Frame::RstStream(r) if s == 1 || s == 3 => {
                flush(&mut data, &mut out, false);
                out.push(format!("{dir} RST_STREAM s={s} {:?}", r.error_code));
            }
            _ => {}
        }
    }
    flush(&mut data, &mut out, false);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wire_protocol_matches_the_recorded_transcript() {
    let certs = certs();
    let server = server(4, &certs).await;
    let sent: Arc<Mutex<Vec<u8>>> = Arc::default();
    let received: Arc<Mutex<Vec<u8>>> = Arc::default();
    let mut cfg = client_config(&server.local_addr().unwrap().to_string(), &certs);
    cfg.min_capacity = 1;
    cfg.max_capacity = 1;
    let (s2, r2) = (sent.clone(), received.clone());
    cfg.plaintext_hook = Some(Arc::new(move |io: BoxIo| -> BoxIo {
        Box::new(Recorder {
            inner: io,
            sent: s2.clone(),
            received: r2.clone(),
        })
    }));
    let client = h2mux_pool::ClientPool::new(cfg).unwrap();
    wait_until(T, "control and one data stream", || client.active() == 2).await;

    let _ctl = server.incoming_control(T).await.unwrap();
    let (id, mut s) = server.incoming_get(T).await.unwrap();
    let mut c = client.outgoing_get(id, T).await.unwrap();
    c.write_all(b"ping").await.unwrap();
    c.shutdown().await.unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"ping");
    s.write_all(b"pong").await.unwrap();
    drop(s);
    let mut got = Vec::new();
    c.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"pong");
    tokio::time::sleep(Duration::from_millis(50)).await;

    let sent = frames("C>S", &sent.lock().unwrap(), id);
    let received = frames("S>C", &received.lock().unwrap(), id);
    // Ordered by stream, then request before answer (each direction keeps its own order).
    let mut merged = vec![sent[0].clone()];
    for stream in [" s=1", " s=3"] {
        for dir in [&sent, &received] {
            merged.extend(dir.iter().filter(|l| l.contains(stream)).cloned());
        }
    }
    let expected: Vec<String> = include_str!("data/transcript.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(str::to_string)
        .collect();
    assert_eq!(merged, expected, "\nrecorded:\n{}\n", merged.join("\n"));
}
