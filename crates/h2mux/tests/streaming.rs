//! Streaming bodies in both directions where each side waits for an answer to what it sent
//! (the shape of a gRPC bidi call): a chunk must reach the peer without waiting for the next
//! chunk to be written.

use std::time::Duration;

use bytes::Bytes;
use h2mux::{Body, Client, Config, Server};
use http::{Request, Response};

/// A hang guard: the exchanges below deadlock when a chunk is held back.
const GUARD: Duration = Duration::from_secs(10);

/// Answers each request chunk with the same chunk, on a streaming response.
async fn ping_pong_server() -> String {
    let server = Server::bind("127.0.0.1:0", Config::default())
        .await
        .unwrap();
    let addr = server.local_addr().unwrap().to_string();
    tokio::spawn(server.serve(|req: Request<Body>| async move {
        let mut body = req.into_body();
        let (tx, out) = Body::channel(4);
        tokio::spawn(async move {
            while let Some(Ok(chunk)) = body.data().await {
                if tx.send(chunk).await.is_err() {
                    return;
                }
            }
        });
        Response::new(out)
    }));
    addr
}

#[tokio::test]
async fn each_request_chunk_is_answered_before_the_next_is_sent() {
    let addr = ping_pong_server().await;
    let client = Client::connect(&addr).await.unwrap();
    let (tx, body) = Body::channel(4);
    let req = Request::post("/pingpong").body(body).unwrap();
    let sent = client.send(req);
    tx.send(Bytes::from_static(b"first")).await.unwrap();
    let resp = tokio::time::timeout(GUARD, sent)
        .await
        .expect("the response head never came: the first request chunk was held back")
        .unwrap();
    let mut replies = resp.into_body();
    for word in [&b"first"[..], b"second", b"third"] {
        if word != b"first" {
            tx.send(Bytes::copy_from_slice(word)).await.unwrap();
        }
        let got = tokio::time::timeout(GUARD, replies.data())
            .await
            .expect("no answer to a chunk: a chunk was held back waiting for the next one")
            .unwrap()
            .unwrap();
        assert_eq!(&got[..], word);
    }
    drop(tx);
    let end = tokio::time::timeout(GUARD, replies.data()).await.unwrap();
    assert!(
        end.is_none(),
        "the response should end after the request did"
    );
}

#[tokio::test]
async fn a_finished_body_still_ends_with_its_last_chunk() {
    // The last chunk and the end arrive together: the request ends on that DATA frame and
    // the server sees every byte exactly once.
    let addr = ping_pong_server().await;
    let client = Client::connect(&addr).await.unwrap();
    let (tx, body) = Body::channel(4);
    tx.send(Bytes::from_static(b"a")).await.unwrap();
    tx.send(Bytes::from_static(b"b")).await.unwrap();
    drop(tx);
    let resp = tokio::time::timeout(GUARD, client.send(Request::post("/").body(body).unwrap()))
        .await
        .unwrap()
        .unwrap();
    let all = tokio::time::timeout(GUARD, resp.into_body().collect(1 << 20))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&all[..], b"ab");
}

#[tokio::test]
async fn a_full_body_with_trailers_sends_both() {
    let server = Server::bind("127.0.0.1:0", Config::default())
        .await
        .unwrap();
    let addr = server.local_addr().unwrap().to_string();
    tokio::spawn(server.serve(|_req: Request<Body>| async move {
        let mut t = http::HeaderMap::new();
        t.insert("x-status", http::HeaderValue::from_static("done"));
        Response::new(Body::from("all of it").with_trailers(t))
    }));
    let client = Client::connect(&addr).await.unwrap();
    let resp = client
        .send(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let mut body = resp.into_body();
    let mut got = Vec::new();
    while let Some(c) = tokio::time::timeout(GUARD, body.data()).await.unwrap() {
        got.extend_from_slice(&c.unwrap());
    }
    assert_eq!(got, b"all of it");
    assert_eq!(body.trailers().unwrap()["x-status"], "done");
}
