//! Our client against hostile servers that speak raw frames (issue 9 §1, client side): huge
//! header blocks and lists, window games (a window that never opens, window overflow),
//! endless DATA beyond content-length, PUSH_PROMISE although we disabled push, a server that
//! never completes the handshake. Each must end in a typed error, within a bounded time and
//! with bounded memory; the hostile server counts what it managed to write before our client
//! cut it off.
//!
//! Frames are built with the conformance suite's own codec (an oracle independent of ours).
//! The tests run one at a time (a lock) so that this process's resident memory, sampled
//! during each, is that test's alone.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use h2mux::{Body, Client, ClientOptions, Config, Error, Timeouts};
use h2mux_conformance::conn::{flag, frame, kind, setting, settings_payload};
use h2mux_conformance::hpack_lite;
use http::Request;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Longest any scenario may take before it counts as a hang.
const HANG: Duration = Duration::from_secs(15);
/// Largest growth of this process's resident memory a scenario may cause (the hostile
/// servers push 64 MiB or more).
const RSS_BOUND_KIB: u64 = 48 * 1024;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A frame our client sent.
#[derive(Debug)]
struct Seen {
    kind: u8,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
}

/// The hostile server's side of one connection.
struct Peer {
    wr: OwnedWriteHalf,
    seen: mpsc::UnboundedReceiver<Seen>,
    written: Arc<AtomicU64>,
}

impl Peer {
    /// Writes; false once the client has closed the connection.
    async fn write(&mut self, bytes: &[u8]) -> bool {
        if self.wr.write_all(bytes).await.is_err() {
            return false;
        }
        self.written
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        true
    }

    /// Waits for a frame of `kind` from the client (None: the client closed first).
    async fn wait_for(&mut self, kind: u8) -> Option<Seen> {
        while let Some(f) = self.seen.recv().await {
            if f.kind == kind {
                return Some(f);
            }
        }
        None
    }

    /// Our SETTINGS (with `settings`) and the ACK of the client's, then the client's request.
    async fn handshake(&mut self, settings: &[(u16, u32)]) -> Seen {
        let mut out = frame(kind::SETTINGS, 0, 0, &settings_payload(settings));
        out.extend(frame(kind::SETTINGS, flag::ACK, 0, &[]));
        assert!(self.write(&out).await);
        self.wait_for(kind::HEADERS).await.expect("the request")
    }
}

/// Starts a one-connection hostile server running `script`; returns its address and the
/// counter of bytes it wrote.
async fn hostile<F, Fut>(script: F) -> (String, Arc<AtomicU64>)
where
    F: FnOnce(Peer) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let written = Arc::new(AtomicU64::new(0));
    let w = written.clone();
    tokio::spawn(async move {
        let (sock, _) = l.accept().await.unwrap();
        let (mut rd, wr) = sock.into_split();
        let (tx, seen) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut preface = [0u8; 24];
            if rd.read_exact(&mut preface).await.is_err() {
                return;
            }
            loop {
                let mut h = [0u8; 9];
                if rd.read_exact(&mut h).await.is_err() {
                    return;
                }
                let len = u32::from_be_bytes([0, h[0], h[1], h[2]]) as usize;
                let mut payload = vec![0u8; len];
                if rd.read_exact(&mut payload).await.is_err() {
                    return;
                }
                let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
                let _ = tx.send(Seen {
                    kind: h[3],
                    flags: h[4],
                    stream,
                    payload,
                });
            }
        });
        script(Peer {
            wr,
            seen,
            written: w,
        })
        .await;
    });
    (addr, written)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// Runs `f` with the process's RSS sampled; fails if it grew beyond [`RSS_BOUND_KIB`] or
/// `f` took longer than [`HANG`].
async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    let before = rss_kib();
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(before));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let out = tokio::time::timeout(HANG, f).await;
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let grew = peak.load(Ordering::Relaxed).saturating_sub(before);
    eprintln!("{what}: rss +{grew} KiB");
    assert!(grew < RSS_BOUND_KIB, "{what}: RSS grew by {grew} KiB");
    out.unwrap_or_else(|_| panic!("{what}: the client hung for {HANG:?}"))
}

fn response_block(fields: &[(&str, &str)]) -> Vec<u8> {
    hpack_lite::block(fields)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_continuation_frames_end_the_connection() {
    let _serial = SERIAL.lock().await;
    let (addr, written) = hostile(|mut p| async move {
        let req = p.handshake(&[]).await;
        let block = response_block(&[(":status", "200")]);
        if !p.write(&frame(kind::HEADERS, 0, req.stream, &block)).await {
            return;
        }
        let mut filler = Vec::new();
        hpack_lite::literal(&mut filler, b"x-filler", &[b'a'; 16_000]);
        let cont = frame(kind::CONTINUATION, 0, req.stream, &filler);
        // Up to 256 MiB of header block that never ends.
        for _ in 0..16_000 {
            if !p.write(&cont).await {
                return;
            }
        }
    })
    .await;
    let client = Client::connect(&addr).await.unwrap();
    let err = bounded("endless CONTINUATION", client.get("/", 1024))
        .await
        .unwrap_err();
    eprintln!("  -> {err}");
    assert!(
        matches!(&err, Error::Protocol(m) if m.contains("GOAWAY")),
        "{err:?}"
    );
    let pushed = written.load(Ordering::Relaxed);
    assert!(
        pushed < 64 << 20,
        "the client kept reading the header block: {pushed} bytes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_list_over_our_limit_is_refused() {
    let _serial = SERIAL.lock().await;
    let (addr, _) = hostile(|mut p| async move {
        let req = p.handshake(&[]).await;
        // 100 KiB decoded: within the block limit (128 KiB), over the list limit (64 KiB).
        let big = "v".repeat(100_000);
        let block = response_block(&[(":status", "200"), ("x-big", &big)]);
        p.write(&frame(kind::HEADERS, flag::END_HEADERS, req.stream, &block))
            .await;
        let _ = p.wait_for(kind::GOAWAY).await;
    })
    .await;
    let client = Client::connect_with(
        &addr,
        Config {
            max_frame_size: 1 << 20,
            ..Config::default()
        },
    )
    .await
    .unwrap();
    let err = bounded("100 KiB header list", client.get("/", 1024))
        .await
        .unwrap_err();
    eprintln!("  -> {err}");
    assert!(
        matches!(&err, Error::StreamReset(m) | Error::Protocol(m) if m.contains("header")),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_that_never_opens_times_out_the_upload() {
    let _serial = SERIAL.lock().await;
    let (addr, _) = hostile(|mut p| async move {
        let _req = p.handshake(&[(setting::INITIAL_WINDOW_SIZE, 0)]).await;
        // Answer PINGs forever (the connection looks alive), never a WINDOW_UPDATE.
        while let Some(f) = p.seen.recv().await {
            if f.kind == kind::PING && f.flags & flag::ACK == 0 {
                p.write(&frame(kind::PING, flag::ACK, 0, &f.payload)).await;
            }
        }
    })
    .await;
    let options = ClientOptions {
        timeouts: Timeouts {
            write: Some(Duration::from_millis(300)),
            ..Timeouts::default()
        },
        ..ClientOptions::default()
    };
    let client = Client::connect_with_options(&addr, &options).await.unwrap();
    // 64 MiB offered: the client must not buffer it all while the window stays shut.
    let (tx, body) = Body::channel(1);
    tokio::spawn(async move {
        let chunk = Bytes::from(vec![1u8; 1 << 20]);
        for _ in 0..64 {
            if tx.send(chunk.clone()).await.is_err() {
                return;
            }
        }
    });
    let err = bounded(
        "zero window forever",
        client.send(Request::post("/up").body(body).unwrap()),
    )
    .await
    .unwrap_err();
    eprintln!("  -> {err}");
    assert_eq!(err, Error::Timeout(Duration::from_millis(300)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_window_overflow_is_a_flow_control_error() {
    let _serial = SERIAL.lock().await;
    let (addr, _) = hostile(|mut p| async move {
        let _req = p.handshake(&[]).await;
        // 65 535 + (2^31 - 1) > 2^31 - 1 (RFC 9113 §6.9.1).
        p.write(&frame(
            kind::WINDOW_UPDATE,
            0,
            0,
            &0x7fff_ffffu32.to_be_bytes(),
        ))
        .await;
        let _ = p.wait_for(kind::GOAWAY).await;
    })
    .await;
    let client = Client::connect(&addr).await.unwrap();
    let err = bounded("connection window overflow", client.get("/", 1024))
        .await
        .unwrap_err();
    eprintln!("  -> {err}");
    assert!(
        matches!(&err, Error::Protocol(m) if m.contains("FLOW_CONTROL_ERROR")),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_window_overflow_resets_the_request() {
    let _serial = SERIAL.lock().await;
    let (addr, _) = hostile(|mut p| async move {
        let req = p.handshake(&[]).await;
        p.write(&frame(
            kind::WINDOW_UPDATE,
            0,
            req.stream,
            &0x7fff_ffffu32.to_be_bytes(),
        ))
        .await;
        let _ = p.wait_for(kind::GOAWAY).await;
    })
    .await;
    let client = Client::connect(&addr).await.unwrap();
    let (tx, body) = Body::channel(1);
    let _feeder = tokio::spawn(async move {
        let _ = tx.send(Bytes::from_static(b"a")).await;
        std::future::pending::<()>().await;
    });
    let err = bounded(
        "stream window overflow",
        client.send(Request::post("/").body(body).unwrap()),
    )
    .await
    .unwrap_err();
    eprintln!("  -> {err}");
    assert!(err.to_string().contains("FLOW_CONTROL_ERROR"), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_data_beyond_content_length_fails_the_body() {
    let _serial = SERIAL.lock().await;
    let (addr, written) = hostile(|mut p| async move {
        let req = p.handshake(&[]).await;
        let block = response_block(&[(":status", "200"), ("content-length", "10")]);
        if !p
            .write(&frame(kind::HEADERS, flag::END_HEADERS, req.stream, &block))
            .await
        {
            return;
        }
        // 64 MiB of DATA on a stream that promised 10 octets, windows ignored.
        let data = frame(kind::DATA, 0, req.stream, &[b'd'; 16_384]);
        for _ in 0..4096 {
            if !p.write(&data).await {
                return;
            }
        }
    })
    .await;
    let client = Client::connect(&addr).await.unwrap();
    let err = bounded("DATA beyond content-length", async {
        let resp = client.get("/", 1 << 30).await;
        resp.map(|(_, b)| b.len())
    })
    .await
    .unwrap_err();
    eprintln!("  -> {err}");
    assert!(
        matches!(&err, Error::StreamReset(m) | Error::Protocol(m) if m.contains("content-length") || m.contains("FLOW_CONTROL")),
        "{err:?}"
    );
    let pushed = written.load(Ordering::Relaxed);
    assert!(pushed <= (64 << 20) + 4096 * 9 + 1024, "{pushed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_promise_while_push_is_disabled_is_a_protocol_error() {
    let _serial = SERIAL.lock().await;
    let (addr, _) = hostile(|mut p| async move {
        let req = p.handshake(&[]).await;
        let mut payload = 2u32.to_be_bytes().to_vec();
        payload.extend(response_block(&[
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/pushed"),
            (":authority", "x"),
        ]));
        p.write(&frame(
            kind::PUSH_PROMISE,
            flag::END_HEADERS,
            req.stream,
            &payload,
        ))
        .await;
        let _ = p.wait_for(kind::GOAWAY).await;
    })
    .await;
    let client = Client::connect(&addr).await.unwrap();
    let err = bounded("PUSH_PROMISE", client.get("/", 1024))
        .await
        .unwrap_err();
    eprintln!("  -> {err}");
    assert!(
        matches!(&err, Error::Protocol(m) if m.contains("PUSH_PROMISE") && m.contains("PROTOCOL_ERROR")),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_acknowledges_our_settings_is_given_up_on() {
    let _serial = SERIAL.lock().await;
    let (addr, _) = hostile(|mut p| async move {
        // Its own SETTINGS but never the ACK of ours, and never an answer.
        p.write(&frame(kind::SETTINGS, 0, 0, &[])).await;
        while p.seen.recv().await.is_some() {}
    })
    .await;
    let client = Client::connect_with(
        &addr,
        Config {
            settings_timeout: Duration::from_millis(300),
            ..Config::default()
        },
    )
    .await
    .unwrap();
    let err = bounded("no SETTINGS ACK", client.get("/", 1024))
        .await
        .unwrap_err();
    eprintln!("  -> {err}");
    assert!(
        matches!(&err, Error::Protocol(m) if m.contains("SETTINGS_TIMEOUT")),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn giving_up_on_a_response_resets_its_stream() {
    let _serial = SERIAL.lock().await;
    let (tx_seen, rx_seen) = tokio::sync::oneshot::channel();
    let (addr, _) = hostile(|mut p| async move {
        let req = p.handshake(&[]).await;
        // Never answer; report the client's RST_STREAM.
        let rst = p.wait_for(kind::RST_STREAM).await;
        let _ = tx_seen.send(rst.map(|f| (f.stream == req.stream, f.payload)));
    })
    .await;
    let client = Client::connect(&addr)
        .await
        .unwrap()
        .with_timeouts(Timeouts {
            response: Some(Duration::from_millis(200)),
            ..Timeouts::default()
        });
    let err = bounded("no response", client.get("/", 1024))
        .await
        .unwrap_err();
    eprintln!("  -> {err}");
    assert_eq!(err, Error::Timeout(Duration::from_millis(200)));
    let (same_stream, code) = tokio::time::timeout(HANG, rx_seen)
        .await
        .unwrap()
        .unwrap()
        .expect("a RST_STREAM");
    assert!(same_stream);
    assert_eq!(code, 0x8u32.to_be_bytes(), "CANCEL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_response_body_cancels_the_stream() {
    let _serial = SERIAL.lock().await;
    let (tx_seen, rx_seen) = tokio::sync::oneshot::channel();
    let (addr, _) = hostile(|mut p| async move {
        let req = p.handshake(&[]).await;
        let block = response_block(&[(":status", "200")]);
        p.write(&frame(kind::HEADERS, flag::END_HEADERS, req.stream, &block))
            .await;
        p.write(&frame(kind::DATA, 0, req.stream, b"part of a long body"))
            .await;
        let rst = p.wait_for(kind::RST_STREAM).await;
        let _ = tx_seen.send(rst.map(|f| f.payload));
    })
    .await;
    let client = Client::connect(&addr).await.unwrap();
    let resp = client
        .send(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let mut body = resp.into_body();
    assert_eq!(
        &body.data().await.unwrap().unwrap()[..],
        b"part of a long body"
    );
    drop(body);
    let code = tokio::time::timeout(HANG, rx_seen)
        .await
        .unwrap()
        .unwrap()
        .expect("a RST_STREAM");
    assert_eq!(code, 0x8u32.to_be_bytes(), "CANCEL");
}
