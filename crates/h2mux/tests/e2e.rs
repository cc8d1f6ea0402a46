//! Our client against our server over loopback (h2c): bodies both ways, checksums, many
//! concurrent streams, trailers, resets, errors. Deterministic and bounded; no timing
//! assertions.

use std::time::Duration;

use bytes::Bytes;
use h2mux::{Body, Client, Config, Error, Server};
use http::{HeaderMap, Request, Response, StatusCode};

/// FNV-1a, enough to check that bytes arrived intact and in order.
fn checksum(data: &[u8], mut h: u64) -> u64 {
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
const FNV0: u64 = 0xcbf2_9ce4_8422_2325;

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

async fn handler(req: Request<Body>) -> Response<Body> {
    let path = req.uri().path().to_string();
    match path.as_str() {
        "/hello" => Response::new(Body::from("hello")),
        "/pattern" => Response::new(Body::from(pattern(5 << 20, 7))),
        "/sum" => {
            // Stream the request body through a checksum; answer with it in a trailer.
            let mut body = req.into_body();
            let (tx, out) = Body::channel(2);
            tokio::spawn(async move {
                let (mut h, mut n) = (FNV0, 0usize);
                while let Some(Ok(c)) = body.data().await {
                    h = checksum(&c, h);
                    n += c.len();
                }
                let _ = tx.send(Bytes::from(format!("{n}"))).await;
                let mut t = HeaderMap::new();
                t.insert("x-checksum", format!("{h:016x}").parse().unwrap());
                let _ = tx.send_trailers(t).await;
            });
            Response::new(out)
        }
        "/echo" => {
            let mut body = req.into_body();
            let (tx, out) = Body::channel(2);
            tokio::spawn(async move {
                while let Some(Ok(c)) = body.data().await {
                    if tx.send(c).await.is_err() {
                        return;
                    }
                }
            });
            Response::new(out)
        }
        "/panic" => panic!("handler panics on purpose"),
        _ => {
            let mut r = Response::new(Body::from("no"));
            *r.status_mut() = StatusCode::NOT_FOUND;
            r
        }
    }
}

async fn start() -> String {
    let server = Server::bind("127.0.0.1:0", Config::default())
        .await
        .unwrap();
    let addr = server.local_addr().unwrap().to_string();
    tokio::spawn(server.serve(handler));
    addr
}

#[tokio::test]
async fn get_small_and_large_bodies_intact() {
    let addr = start().await;
    let c = Client::connect(&addr).await.unwrap();
    let (status, body) = c.get("/hello", 1 << 20).await.unwrap();
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"hello"[..]));
    let (status, body) = c.get("/pattern", 16 << 20).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.len(), 5 << 20);
    assert_eq!(checksum(&body, FNV0), checksum(&pattern(5 << 20, 7), FNV0));
    let (status, _) = c.get("/missing", 1024).await.unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn streaming_upload_with_trailers_in_the_answer() {
    let addr = start().await;
    let c = Client::connect(&addr).await.unwrap();
    let (tx, body) = Body::channel(2);
    let data = pattern(3 << 20, 3);
    let expect = checksum(&data, FNV0);
    let feeder = tokio::spawn(async move {
        for chunk in data.chunks(100_000) {
            tx.send(Bytes::copy_from_slice(chunk)).await.unwrap();
        }
    });
    let resp = c
        .send(Request::post("/sum").body(body).unwrap())
        .await
        .unwrap();
    let mut body = resp.into_body();
    let mut text = Vec::new();
    while let Some(chunk) = body.data().await {
        text.extend_from_slice(&chunk.unwrap());
    }
    feeder.await.unwrap();
    assert_eq!(String::from_utf8(text).unwrap(), (3usize << 20).to_string());
    let trailers = body.trailers().expect("trailers");
    assert_eq!(
        trailers["x-checksum"].to_str().unwrap(),
        format!("{expect:016x}")
    );
}

#[tokio::test]
async fn two_hundred_concurrent_echo_streams_do_not_cross() {
    let addr = start().await;
    let c = Client::connect(&addr).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..200u32 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let data = pattern(20_000 + i as usize * 97, i as u8);
            let resp = c
                .send(
                    Request::post("/echo")
                        .body(Body::from(data.clone()))
                        .unwrap(),
                )
                .await
                .unwrap();
            let got = resp.into_body().collect(1 << 20).await.unwrap();
            assert_eq!(&got[..], &data[..], "stream {i}");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test]
async fn a_panicking_handler_resets_only_its_stream() {
    let addr = start().await;
    let c = Client::connect(&addr).await.unwrap();
    let err = c.get("/panic", 1024).await.unwrap_err();
    assert!(matches!(err, Error::StreamReset(_)), "{err:?}");
    let (status, body) = c.get("/hello", 1024).await.unwrap();
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"hello"[..]));
}

#[tokio::test]
async fn a_refused_connection_is_a_clear_error() {
    // Bind then drop a listener: the port is (almost certainly) closed now.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    drop(l);
    let err = Client::connect(&addr).await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains(&addr));
}

#[tokio::test]
async fn http1_requests_get_505() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = start().await;
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.starts_with(b"HTTP/1.1 505 "),
        "{:?}",
        String::from_utf8_lossy(&out)
    );
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused() {
    let addr = start().await;
    let c = Client::connect(&addr).await.unwrap();
    let err = c.get("/pattern", 1024).await.unwrap_err();
    assert_eq!(err, Error::BodyTooLarge { limit: 1024 });
}
