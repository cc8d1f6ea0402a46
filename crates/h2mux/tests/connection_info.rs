//! What a connection handle tells without a round trip (used by the RPC channel's picker):
//! the peer's SETTINGS_MAX_CONCURRENT_STREAMS and whether the connection still takes new
//! streams after a GOAWAY, our own shutdown or its end.

use std::time::Duration;

use bytes::BytesMut;
use h2mux::wire::frame::{GoAwayFrame, SettingsFrame, CLIENT_PREFACE};
use h2mux::wire::{ErrorCode, StreamId};
use h2mux::{Body, Client, Config, Server};
use http::{Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const GUARD: Duration = Duration::from_secs(10);

async fn eventually(what: &str, f: impl Fn() -> bool) {
    let give_up = tokio::time::Instant::now() + GUARD;
    while !f() {
        assert!(tokio::time::Instant::now() < give_up, "never: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn the_peers_stream_limit_is_published() {
    let config = Config {
        max_concurrent_streams: 7,
        ..Config::default()
    };
    let server = Server::bind("127.0.0.1:0", config).await.unwrap();
    let addr = server.local_addr().unwrap().to_string();
    tokio::spawn(server.serve(|_req: Request<Body>| async { Response::new(Body::from("ok")) }));
    let client = Client::connect(&addr).await.unwrap();
    // A full exchange means the server's SETTINGS came before its response.
    client.get("/", 100).await.unwrap();
    assert_eq!(client.connection().peer_max_concurrent_streams(), 7);
    assert!(!client.connection().is_going_away());
    client.close();
    eventually("our own shutdown marks the connection going away", || {
        client.connection().is_going_away()
    })
    .await;
}

/// Reads frames until a HEADERS frame (type 1) arrived.
async fn read_until_headers(sock: &mut tokio::net::TcpStream) {
    let mut preface = [0u8; 24];
    sock.read_exact(&mut preface).await.unwrap();
    assert_eq!(&preface, CLIENT_PREFACE);
    loop {
        let mut head = [0u8; 9];
        sock.read_exact(&mut head).await.unwrap();
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let mut payload = vec![0u8; len];
        sock.read_exact(&mut payload).await.unwrap();
        if head[3] == 1 {
            return;
        }
    }
}

#[tokio::test]
async fn a_goaway_from_the_peer_stops_new_streams_while_old_ones_live() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (sent_goaway_tx, sent_goaway) = tokio::sync::oneshot::channel();
    let peer = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        read_until_headers(&mut sock).await;
        let mut out = BytesMut::new();
        SettingsFrame::encode_settings(&[], &mut out);
        SettingsFrame::encode_ack(&mut out);
        // Graceful: stream 1 (the request in flight) may still be answered.
        GoAwayFrame::encode_parts(StreamId::new(1), ErrorCode::NO_ERROR, b"", &mut out);
        sock.write_all(&out).await.unwrap();
        let _ = sent_goaway_tx.send(());
        // Keep the connection open (never answer) until the test ends.
        let mut sink = [0u8; 1024];
        while sock.read(&mut sink).await.is_ok_and(|n| n > 0) {}
    });
    let client = Client::connect(&addr).await.unwrap();
    let c2 = client.clone();
    let request = tokio::spawn(async move { c2.get("/slow", 100).await });
    sent_goaway.await.unwrap();
    eventually("the GOAWAY marks the connection going away", || {
        client.connection().is_going_away()
    })
    .await;
    assert!(
        !client.connection().is_closed(),
        "stream 1 still keeps the connection open"
    );
    assert!(
        !request.is_finished(),
        "the request in flight was not cut short"
    );
    request.abort();
    peer.abort();
}
