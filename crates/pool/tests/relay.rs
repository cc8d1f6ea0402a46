//! `h2mux_pool::relay`: a socket joined to a pooled stream both ways, without copies.

mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const T: Duration = Duration::from_secs(10);

/// Both directions carry a distinct checksummed payload at once (more than the stream's
/// in-flight limit, so the relay must wait for room and reuse its buffers), each end of file
/// becomes the other side's end of file, and the relay reports the octets of each way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_ways_intact_with_each_end_passed_on() {
    let (server, client, _certs) = setup(16).await;
    let (mut s, c) = pair(&server, &client).await;

    // `outside` is the relayed socket's far end; the test plays the application there.
    let (mut near, outside) = tokio::io::duplex(64 << 10);
    let relay = tokio::spawn(async move { h2mux_pool::relay(&mut near, &mut s).await });

    let up = payload(1, 5 << 20);
    let down = payload(2, 7 << 20);
    let (up_len, down_len) = (up.len() as u64, down.len() as u64);
    let far = tokio::spawn(async move {
        let (mut r, mut w) = tokio::io::split(outside);
        let send = async {
            w.write_all(&up).await.unwrap();
            w.shutdown().await.unwrap();
        };
        let mut got = Vec::new();
        tokio::join!(send, r.read_to_end(&mut got)).1.unwrap();
        got
    });
    let (mut cr, mut cw) = tokio::io::split(c);
    let peer_send = async {
        cw.write_all(&down).await.unwrap();
        cw.shutdown().await.unwrap();
    };
    let mut peer_got = Vec::new();
    let peer_recv = tokio::time::timeout(T, cr.read_to_end(&mut peer_got));
    tokio::join!(peer_send, peer_recv).1.unwrap().unwrap();

    assert!(
        check_payload(1, &peer_got),
        "socket → stream: {} octets",
        peer_got.len()
    );
    let far_got = tokio::time::timeout(T, far).await.unwrap().unwrap();
    assert!(
        check_payload(2, &far_got),
        "stream → socket: {} octets",
        far_got.len()
    );
    let moved = tokio::time::timeout(T, relay)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(moved, (up_len, down_len));
}

/// A reset of the pooled stream is an error of the relay (`ConnectionReset`), never a
/// clean end, and the socket side is let go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_stream_fails_the_relay() {
    let (server, client, _certs) = setup(16).await;
    let (mut s, mut c) = pair(&server, &client).await;
    let (mut near, mut outside) = tokio::io::duplex(64 << 10);
    let relay = tokio::spawn(async move { h2mux_pool::relay(&mut near, &mut s).await });

    outside.write_all(b"hello").await.unwrap();
    let mut got = [0u8; 5];
    c.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"hello");
    c.reset();
    let err = tokio::time::timeout(T, relay)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
}

/// The stream's read timeout applies inside the relay: a silent peer ends it with
/// `TimedOut` instead of holding the socket for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_read_timeout_bounds_a_silent_peer() {
    let (server, client, _certs) = setup(16).await;
    let (mut s, _c) = pair(&server, &client).await;
    s.set_read_timeout(Some(Duration::from_millis(200)));
    let (mut near, _outside) = tokio::io::duplex(64 << 10);
    let err = tokio::time::timeout(T, h2mux_pool::relay(&mut near, &mut s))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
}
