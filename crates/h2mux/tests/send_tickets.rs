//! Driver-level tests of the non-waiting send path (`start_send_data` tickets), the poll form
//! of `recv` and `ConnectionHandle::closed`, over an in-memory duplex pipe.

use bytes::Bytes;
use h2mux::conn::{spawn, StreamEvent, StreamHandle};
use h2mux::proto::{HeaderField, Role};
use h2mux::Config;
use std::time::Duration;

fn request() -> Vec<HeaderField> {
    vec![
        HeaderField::new(&b":method"[..], &b"POST"[..]),
        HeaderField::new(&b":scheme"[..], &b"https"[..]),
        HeaderField::new(&b":authority"[..], &b"test"[..]),
        HeaderField::new(&b":path"[..], &b"/"[..]),
    ]
}

/// A client and a server connection joined by a pipe; the server side does not read until told.
async fn pair(
    client: Config,
    server: Config,
) -> (
    h2mux::conn::ConnectionHandle,
    h2mux::conn::ConnectionHandle,
    tokio::sync::mpsc::UnboundedReceiver<StreamHandle>,
) {
    let (a, b) = tokio::io::duplex(1 << 20);
    let (c, _) = spawn(a, Role::Client, client);
    let (s, incoming) = spawn(b, Role::Server, server);
    (c, s, incoming)
}

#[tokio::test]
async fn several_tickets_in_flight_on_a_full_stream_all_wait_for_room_then_resolve() {
    // The server grants a 64 KiB window and does not read; the client buffers 16 KiB at most
    // before its stream reports "full". Two sends then both wait for room, and both resolve
    // once the peer reads.
    let client = Config {
        send_buffer_per_stream: 16 << 10,
        ..Config::default()
    };
    let server = Config {
        initial_stream_window: 65_535,
        initial_connection_window: 65_535,
        adaptive_window: false,
        ..Config::default()
    };
    let (c, _s, mut incoming) = pair(client, server).await;
    let stream = c.open(request(), false).await.unwrap();
    let (tx, _rx) = stream.split();
    // Fill the peer's window and our buffer.
    tx.send_data(Bytes::from(vec![1u8; 65_535]), false)
        .await
        .unwrap();
    let mut t1 = Box::pin(tx.start_send_data(Bytes::from(vec![2u8; 32 << 10]), false));
    assert!(
        tokio::time::timeout(Duration::from_millis(100), &mut t1)
            .await
            .is_err(),
        "a send on a full stream waits (no stale Writable event releases it)"
    );
    // A second send while the first waits: both wait (the first must not be dropped as if
    // the connection had closed, nor released early, which would let the queue grow).
    let mut t2 = Box::pin(tx.start_send_data(Bytes::from(vec![3u8; 32 << 10]), false));
    assert!(
        tokio::time::timeout(Duration::from_millis(100), &mut t1)
            .await
            .is_err(),
        "the earlier ticket still waits for room"
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(50), &mut t2)
            .await
            .is_err(),
        "the later ticket waits for the peer to read"
    );
    // Now the server reads everything; the tickets resolve and all bytes arrive in order.
    let end = tx.start_send_data(Bytes::new(), true);
    let mut peer = incoming.recv().await.unwrap();
    let mut got = Vec::new();
    let mut ended = false;
    while !ended {
        match peer.recv().await.unwrap() {
            StreamEvent::Headers(..) => {}
            StreamEvent::Data(d, end) => {
                got.extend_from_slice(&d);
                ended = end;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), t1).await,
        Ok(Ok(()))
    );
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), t2).await,
        Ok(Ok(()))
    );
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), end).await,
        Ok(Ok(()))
    );
    assert_eq!(got.len(), 65_535 + (64 << 10));
    assert!(got[..65_535].iter().all(|&b| b == 1));
    assert!(got[65_535..65_535 + (32 << 10)].iter().all(|&b| b == 2));
    assert!(got[65_535 + (32 << 10)..].iter().all(|&b| b == 3));
}

#[tokio::test]
async fn a_ticket_on_a_closed_connection_fails_and_closed_resolves() {
    let (c, s, mut incoming) = pair(Config::default(), Config::default()).await;
    let stream = c.open(request(), false).await.unwrap();
    stream
        .send_data(Bytes::from_static(b"x"), false)
        .await
        .unwrap();
    let mut peer = incoming.recv().await.unwrap();
    let (tx, mut rx) = stream.split();
    // Kill the server side: the client's connection ends, `closed` resolves, tickets fail.
    drop(peer.recv().await);
    s.shutdown();
    drop(peer);
    drop(incoming);
    drop(s);
    tokio::time::timeout(Duration::from_secs(5), c.closed())
        .await
        .expect("closed() resolves once the connection task ends");
    assert!(c.is_closed());
    let r = tx.start_send_data(Bytes::from_static(b"late"), false).await;
    assert!(r.is_err(), "{r:?}");
    // The receiver, polled by hand, reports the end.
    let ev = std::future::poll_fn(|cx| rx.poll_recv(cx)).await;
    assert!(
        matches!(
            ev,
            Some(StreamEvent::ConnectionLost(_)) | Some(StreamEvent::Reset(_)) | None
        ),
        "{ev:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stream_opened_on_a_closing_connection_fails_at_once_instead_of_waiting() {
    // Bug: commands reaching a connection task after it stopped taking them (here: lingering
    // after a graceful close, reading what the peer still sends for up to 2 s) stayed in its
    // queue unanswered, and were dropped unanswered when the task ended: the opener waited
    // for ever. The peer here holds its end open and reads nothing, so the task lingers.
    let (a, _peer) = tokio::io::duplex(1 << 20);
    let (c, _) = spawn(a, Role::Client, Config::default());
    c.shutdown();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (stream, opened) = c.start_open(request(), true);
    let answer = tokio::time::timeout(Duration::from_millis(500), opened)
        .await
        .expect("the open is answered while the connection lingers");
    assert!(answer.is_err(), "{answer:?}");
    let (_tx, mut rx) = stream.split();
    let ev = tokio::time::timeout(Duration::from_millis(500), rx.recv())
        .await
        .expect("the stream learns at once that it will not open");
    assert!(
        matches!(ev, None | Some(StreamEvent::ConnectionLost(_))),
        "{ev:?}"
    );
}
