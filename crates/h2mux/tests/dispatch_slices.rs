//! The driver hands out at most a slice of stream events per poll and yields between slices
//! (`conn.rs`, `Driver::dispatch_events`). These tests pin that nothing waits on a timer for
//! it: with the clock paused, time only moves when every task is idle, so a connection that
//! forgot to poll its socket while events were left over would sit until its next deadline
//! (the 1 s idle release) and the elapsed virtual time would show it.

use bytes::Bytes;
use h2mux::conn::{spawn, StreamEvent, StreamHandle, StreamReceiver};
use h2mux::proto::{HeaderField, Role};
use h2mux::Config;
use std::time::Duration;
use tokio::time::Instant;

fn request() -> Vec<HeaderField> {
    vec![
        HeaderField::new(&b":method"[..], &b"POST"[..]),
        HeaderField::new(&b":scheme"[..], &b"http"[..]),
        HeaderField::new(&b":authority"[..], &b"test"[..]),
        HeaderField::new(&b":path"[..], &b"/echo"[..]),
    ]
}

/// Answers every stream with its request body.
async fn echo(mut stream: StreamHandle) {
    let mut body = Vec::new();
    while let Some(ev) = stream.recv().await {
        match ev {
            StreamEvent::Headers(_, true) => break,
            StreamEvent::Data(d, end) => {
                body.extend_from_slice(&d);
                if end {
                    break;
                }
            }
            StreamEvent::Headers(_, false) => {}
            _ => return,
        }
    }
    let (tx, _rx) = stream.split();
    let head = vec![HeaderField::new(&b":status"[..], &b"200"[..])];
    drop(tx.start_send_headers(head, false));
    let _ = tx.send_data(Bytes::from(body), true).await;
}

/// A client connection to a server whose every incoming stream runs `handler` in a task,
/// joined by an in-memory pipe of `pipe` bytes.
fn serve_pair<F, Fut>(pipe: usize, handler: F) -> h2mux::conn::ConnectionHandle
where
    F: Fn(StreamHandle) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (a, b) = tokio::io::duplex(pipe);
    let (client, _) = spawn(a, Role::Client, Config::default());
    let (server, mut incoming) = spawn(b, Role::Server, Config::default());
    tokio::spawn(async move {
        let _server = server;
        while let Some(s) = incoming.recv().await {
            tokio::spawn(handler(s));
        }
    });
    client
}

/// The response body of a stream (its head is skipped); any other event fails `what`.
async fn response_body(rx: &mut StreamReceiver, what: &str) -> Vec<u8> {
    let mut got = Vec::new();
    while let Some(ev) = rx.recv().await {
        match ev {
            StreamEvent::Data(d, end) => {
                got.extend_from_slice(&d);
                if end {
                    break;
                }
            }
            StreamEvent::Headers(_, false) => {}
            other => panic!("{what}: unexpected {other:?}"),
        }
    }
    got
}

/// Joins every task, then checks that the virtual clock barely moved: no connection sat
/// waiting for a timer.
async fn finish_without_a_timer(mut tasks: tokio::task::JoinSet<()>, started: Instant, what: &str) {
    while let Some(r) = tasks.join_next().await {
        r.expect("a task failed");
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(500),
        "{what} took {elapsed:?} of virtual time: a connection waited on a timer"
    );
}

#[tokio::test(start_paused = true)]
async fn many_requests_in_each_read_are_all_answered_without_waiting_on_a_timer() {
    // 100 workers, 20 requests each, one connection: every read of the server holds far
    // more than one slice of events, and so does every read of the client.
    let client = serve_pair(1 << 20, echo);
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..100u32 {
        let client = client.clone();
        workers.spawn(async move {
            for i in 0..20u32 {
                let payload = Bytes::from(format!("worker {w} request {i} {}", "x".repeat(80)));
                let (stream, _opened) = client.start_open(request(), false);
                let (tx, mut rx) = stream.split();
                drop(tx.start_send_data(payload.clone(), true));
                let got = response_body(&mut rx, &format!("worker {w} request {i}")).await;
                assert_eq!(got, payload, "worker {w} request {i}: the echo differs");
            }
        });
    }
    finish_without_a_timer(workers, started, "2 000 requests").await;
}

#[tokio::test(start_paused = true)]
async fn many_streams_of_data_in_each_read_all_arrive_without_waiting_on_a_timer() {
    // 100 streams each receive 1 MiB in 16 KiB frames: every read of the client holds many
    // DATA frames of many streams, far more than one slice, and the readers send little back.
    let client = serve_pair(4 << 20, |s: StreamHandle| async move {
        let (tx, _rx) = s.split();
        let head = vec![HeaderField::new(&b":status"[..], &b"200"[..])];
        drop(tx.start_send_headers(head, false));
        let chunk = Bytes::from(vec![7u8; 64 << 10]);
        for i in 0..16 {
            if tx.send_data(chunk.clone(), i == 15).await.is_err() {
                return;
            }
        }
    });
    let started = Instant::now();
    let mut readers = tokio::task::JoinSet::new();
    for r in 0..100u32 {
        let client = client.clone();
        readers.spawn(async move {
            let stream = client.open(request(), true).await.expect("open");
            let (_tx, mut rx) = stream.split();
            let n = response_body(&mut rx, &format!("stream {r}")).await.len();
            assert_eq!(n, 1 << 20, "stream {r}: bytes lost");
        });
    }
    finish_without_a_timer(readers, started, "100 MiB over 100 streams").await;
}
