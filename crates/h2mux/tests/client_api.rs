//! The client API beyond one request: queueing at the server's SETTINGS_MAX_CONCURRENT_STREAMS,
//! timeouts (connect, response head, read, write, whole request) as `Error::Timeout`, graceful
//! close, and the blocking wrapper. Bounded; no timing assertions beyond generous limits.

use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use h2mux::{Body, Client, ClientOptions, Config, Error, Server, Timeouts};
use http::{Request, Response, StatusCode};

const GUARD: Duration = Duration::from_secs(20);

/// A server whose handler counts how many requests run at once (and the maximum seen).
struct Counting {
    now: AtomicUsize,
    max: AtomicUsize,
}

async fn start_with(config: Config) -> (String, Arc<Counting>) {
    let server = Server::bind("127.0.0.1:0", config).await.unwrap();
    let addr = server.local_addr().unwrap().to_string();
    let counts = Arc::new(Counting {
        now: AtomicUsize::new(0),
        max: AtomicUsize::new(0),
    });
    let c = counts.clone();
    tokio::spawn(server.serve(move |req: Request<Body>| {
        let c = c.clone();
        async move {
            let n = c.now.fetch_add(1, Ordering::SeqCst) + 1;
            c.max.fetch_max(n, Ordering::SeqCst);
            let resp = match req.uri().path() {
                "/wait" => {
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    Response::new(Body::from("waited"))
                }
                "/slow-head" => {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    Response::new(Body::from("late"))
                }
                "/stall-body" => {
                    let (tx, body) = Body::channel(1);
                    tokio::spawn(async move {
                        let _ = tx.send(Bytes::from_static(b"first")).await;
                        let _ = tx.send(Bytes::from_static(b"second")).await;
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        let _ = tx.send(Bytes::from_static(b"never")).await;
                    });
                    Response::new(body)
                }
                "/drip" => {
                    let (tx, body) = Body::channel(1);
                    tokio::spawn(async move {
                        for _ in 0..100 {
                            if tx.send(Bytes::from_static(b".")).await.is_err() {
                                return;
                            }
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    });
                    Response::new(body)
                }
                "/echo" => {
                    let body = req.into_body().collect(64 << 20).await.unwrap_or_default();
                    Response::new(Body::from(body))
                }
                _ => Response::new(Body::from("ok")),
            };
            c.now.fetch_sub(1, Ordering::SeqCst);
            resp
        }
    }));
    (addr, counts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_servers_stream_limit_wait_their_turn() {
    let (addr, counts) = start_with(Config {
        max_concurrent_streams: 2,
        ..Config::default()
    })
    .await;
    let client = Client::connect(&addr).await.unwrap();
    client.get("/", 100).await.unwrap(); // the server's SETTINGS are in force
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let c = client.clone();
        tasks.push(tokio::spawn(async move { c.get("/wait", 100).await }));
    }
    for t in tasks {
        let (status, body) = tokio::time::timeout(GUARD, t)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!((status, &body[..]), (StatusCode::OK, &b"waited"[..]));
    }
    assert_eq!(
        counts.max.load(Ordering::SeqCst),
        2,
        "the server never saw more than its limit, and the queue filled it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_is_a_typed_error_not_a_hang() {
    let (addr, _) = start_with(Config {
        max_concurrent_streams: 1,
        ..Config::default()
    })
    .await;
    let client = Client::connect_with(
        &addr,
        Config {
            max_queued_streams: 2,
            ..Config::default()
        },
    )
    .await
    .unwrap();
    client.get("/", 100).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let c = client.clone();
        tasks.push(tokio::spawn(async move { c.get("/wait", 100).await }));
    }
    let mut refused = 0;
    for t in tasks {
        match tokio::time::timeout(GUARD, t).await.unwrap().unwrap() {
            Ok(_) => {}
            Err(Error::Command(m)) => {
                assert!(m.contains("queue"), "{m}");
                refused += 1;
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert!(refused >= 1, "one open + two queued at most, six asked");
}

#[tokio::test]
async fn a_response_head_that_never_comes_times_out() {
    let (addr, counts) = start_with(Config::default()).await;
    let options = ClientOptions {
        timeouts: Timeouts {
            response: Some(Duration::from_millis(200)),
            ..Timeouts::default()
        },
        ..ClientOptions::default()
    };
    let client = Client::connect_with_options(&addr, &options).await.unwrap();
    let err = client.get("/slow-head", 100).await.unwrap_err();
    assert_eq!(err, Error::Timeout(Duration::from_millis(200)));
    // The connection is fine for the next request.
    assert_eq!(client.get("/", 100).await.unwrap().0, StatusCode::OK);
    assert!(counts.max.load(Ordering::SeqCst) >= 1);
}

#[tokio::test]
async fn a_body_that_stalls_times_out_on_read() {
    let (addr, _) = start_with(Config::default()).await;
    let client = Client::connect(&addr)
        .await
        .unwrap()
        .with_timeouts(Timeouts {
            read: Some(Duration::from_millis(200)),
            ..Timeouts::default()
        });
    let resp = client
        .send(Request::get("/stall-body").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let mut body = resp.into_body();
    assert_eq!(&body.data().await.unwrap().unwrap()[..], b"first");
    // (the server may hold "second" back until it knows whether it is the last chunk)
    let mut next = body.data().await.unwrap();
    if next.as_ref().is_ok_and(|c| &c[..] == b"second") {
        next = body.data().await.unwrap();
    }
    let err = next.unwrap_err();
    assert_eq!(err, Error::Timeout(Duration::from_millis(200)));
    assert!(body.data().await.is_none(), "nothing after the timeout");
}

#[tokio::test]
async fn the_whole_request_deadline_bounds_a_dripping_body() {
    let (addr, _) = start_with(Config::default()).await;
    let client = Client::connect(&addr)
        .await
        .unwrap()
        .with_timeouts(Timeouts {
            request: Some(Duration::from_millis(500)),
            // Each chunk comes well within the read timeout; only the total is too long.
            read: Some(Duration::from_secs(5)),
            ..Timeouts::default()
        });
    let started = std::time::Instant::now();
    let err = client.get("/drip", 1 << 20).await.unwrap_err();
    assert_eq!(err, Error::Timeout(Duration::from_millis(500)));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn connect_timeout_covers_a_tls_handshake_that_never_answers() {
    // A TCP listener that accepts and then says nothing.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let _hold = tokio::spawn(async move {
        let mut socks = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            socks.push(s);
        }
    });
    let options = ClientOptions {
        connect_timeout: Some(Duration::from_millis(300)),
        ..ClientOptions::default()
    };
    let tls = h2mux::tls::client_config_insecure().unwrap();
    let err = Client::connect_tls_with_options(&addr, "localhost", tls, &options)
        .await
        .unwrap_err();
    assert_eq!(err, Error::Timeout(Duration::from_millis(300)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_close_finishes_requests_in_flight_and_refuses_new_ones() {
    let (addr, counts) = start_with(Config::default()).await;
    let client = Client::connect(&addr).await.unwrap();
    let c = client.clone();
    let in_flight = tokio::spawn(async move { c.get("/wait", 100).await });
    let give_up = tokio::time::Instant::now() + GUARD;
    while counts.now.load(Ordering::SeqCst) == 0 {
        assert!(tokio::time::Instant::now() < give_up);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    client.close();
    let (status, body) = in_flight.await.unwrap().unwrap();
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"waited"[..]));
    let err = client.get("/", 100).await.unwrap_err();
    assert_eq!(err, Error::ConnectionClosed);
    tokio::time::timeout(GUARD, client.close_and_wait())
        .await
        .expect("the connection ends");
}

#[test]
fn the_blocking_client_gets_posts_streams_and_reads() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (addr, _) = rt.block_on(start_with(Config::default()));
    let client = h2mux::blocking::Client::connect(&addr).unwrap();
    let (status, body) = client.get("/", 100).unwrap();
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"ok"[..]));

    // A streaming upload fed from this thread, echoed back and read through `Read`.
    let (tx, body) = Body::channel(2);
    let feeder = std::thread::spawn(move || {
        for i in 0..64u8 {
            tx.blocking_send(Bytes::from(vec![i; 16 * 1024])).unwrap();
        }
    });
    let resp = client
        .send(Request::post("/echo").body(body).unwrap())
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut got = Vec::new();
    resp.into_body().read_to_end(&mut got).unwrap();
    feeder.join().unwrap();
    assert_eq!(got.len(), 64 * 16 * 1024);
    assert!(got
        .chunks(16 * 1024)
        .enumerate()
        .all(|(i, c)| c.iter().all(|b| *b == i as u8)));

    // Clones work from other threads, on the same connection.
    let c2 = client.clone();
    let t = std::thread::spawn(move || c2.get("/", 100).unwrap().0);
    assert_eq!(t.join().unwrap(), StatusCode::OK);
    client.close().unwrap();
    assert!(client.get("/", 100).is_err());
}

#[tokio::test]
async fn the_blocking_client_refuses_to_run_inside_a_runtime() {
    let err = h2mux::blocking::Client::connect("127.0.0.1:1").unwrap_err();
    assert!(
        matches!(&err, Error::Command(m) if m.contains("async runtime")),
        "{err:?}"
    );
}
