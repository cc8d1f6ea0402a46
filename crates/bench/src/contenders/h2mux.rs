//! The h2mux contender: h2mux's own server and client (crates/h2mux, cleartext h2c) on the
//! same workloads and the same two-thread harness as the peers. The server serves
//! `/bytes/N` as N bytes in 1 MiB chunks and `/echo` by streaming the body back.
//! TLS rows (`--tls`, connect-tls) use the same rcgen certificate setup as the peers.

use super::{mib_per_s, on_two_threads, spread_note};
use crate::{us_since, Config, Measurement, Outcome, Workload};
use bytes::Bytes;
use h2mux::{Body, Client, Server};
use http::{Request, Response};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;

const CHUNK: usize = 1 << 20;

async fn handle(req: Request<Body>) -> Response<Body> {
    let path = req.uri().path();
    if let Some(n) = path.strip_prefix("/bytes/") {
        let n: u64 = n.parse().unwrap_or(0);
        if n <= CHUNK as u64 {
            // One write, as hyper's RepeatBody makes of it.
            return Response::new(Body::from(zeros().slice(..n as usize)));
        }
        let (tx, body) = Body::channel(4);
        tokio::spawn(async move {
            let zeros = zeros();
            let mut left = n;
            while left > 0 {
                let k = left.min(CHUNK as u64) as usize;
                if tx.send(zeros.slice(..k)).await.is_err() {
                    return;
                }
                left -= k as u64;
            }
        });
        return Response::new(body);
    }
    // /echo: the request body back, collected first (as the hyper contenders do).
    match req.into_body().collect(1 << 20).await {
        Ok(b) => Response::new(Body::from(b)),
        Err(_) => Response::new(Body::empty()),
    }
}

/// 1 MiB of zeros, allocated once per server thread (as the peers share theirs).
fn zeros() -> Bytes {
    thread_local! {
        static ZEROS: Bytes = Bytes::from(vec![0u8; CHUNK]);
    }
    ZEROS.with(Bytes::clone)
}

/// The engine's defaults on both sides (no tuning: the defaults are what is measured).
fn h2mux_config() -> h2mux::Config {
    h2mux::Config::default()
}

type Tls = Option<(Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>)>;

async fn serve(listener: TcpListener, tls: Option<Arc<rustls::ServerConfig>>) {
    // Every connection of the harness comes from 127.0.0.1: the per-address limit (a defence
    // against one client taking all connections) would refuse the memory rows' 1000.
    let limits = h2mux::http::ServerLimits {
        max_connections_per_ip: 10_000,
        ..Default::default()
    };
    let mut server = Server::from_listener(listener, h2mux_config()).with_limits(limits);
    if let Some(cfg) = tls {
        server = server.with_tls(cfg);
    }
    let _ = server.serve(handle).await;
}

async fn connect(addr: SocketAddr, tls: &Option<Arc<rustls::ClientConfig>>) -> io::Result<Client> {
    let r = match tls {
        Some(cfg) => {
            let config = h2mux_config();
            Client::connect_tls(&addr.to_string(), "localhost", cfg.clone(), config).await
        }
        None => Client::connect_with(&addr.to_string(), h2mux_config()).await,
    };
    r.map_err(io::Error::other)
}

/// Downloads `/bytes/n`, stopping at `deadline`; returns bytes read.
async fn fetch(c: &Client, n: u64, deadline: Instant) -> io::Result<u64> {
    let req = Request::get(format!("/bytes/{n}"))
        .body(Body::empty())
        .map_err(io::Error::other)?;
    let mut body = c.send(req).await.map_err(io::Error::other)?.into_body();
    let mut got = 0u64;
    while Instant::now() < deadline {
        match body.data().await {
            Some(Ok(d)) => {
                got += d.len() as u64;
                crate::count_received(d.len() as u64);
            }
            Some(Err(e)) => return Err(io::Error::other(e)),
            None => break,
        }
    }
    Ok(got)
}

/// Runs one repetition of workload `w` with h2mux on both sides.
pub fn run(w: Workload, cfg: &Config) -> io::Result<Outcome> {
    let tls: Tls = if cfg.tls || w == Workload::ConnectTls {
        Some(super::raw_tls::configs_with_alpn(&[b"h2"])?)
    } else {
        None
    };
    let (stls, ctls) = (tls.as_ref().map(|t| t.0.clone()), tls.map(|t| t.1));
    let serve = move |l| serve(l, stls);
    let cfg = cfg.clone();
    let m = match w {
        Workload::Bulk1 => on_two_threads(serve, move |addr| async move {
            let c = connect(addr, &ctls).await?;
            let t = Instant::now();
            let got = fetch(&c, cfg.bulk1_bytes, t + cfg.max_time).await?;
            Ok(Measurement {
                value: mib_per_s(got, t.elapsed().as_secs_f64()),
                unit: "MiB/s",
                ..Default::default()
            })
        })?,
        Workload::Bulk100 => on_two_threads(serve, move |addr| async move {
            let c = connect(addr, &ctls).await?;
            let t = Instant::now();
            let deadline = t + cfg.max_time * 3;
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..100 {
                let c = c.clone();
                let n = cfg.bulk100_stream_bytes;
                set.spawn(async move {
                    let got = fetch(&c, n, deadline).await?;
                    Ok::<_, io::Error>((got, us_since(t)))
                });
            }
            let (mut total, mut times) = (0, Vec::new());
            while let Some(r) = set.join_next().await {
                let (got, us) = r.map_err(io::Error::other)??;
                total += got;
                times.push(us);
            }
            Ok(Measurement {
                value: mib_per_s(total, t.elapsed().as_secs_f64()),
                unit: "MiB/s",
                note: format!("1 conn; {}", spread_note(&times)),
                latencies_us: times,
            })
        })?,
        Workload::Rps1Conn | Workload::Rps4Conn => {
            let conns = if w == Workload::Rps1Conn { 1 } else { 4 };
            on_two_threads(serve, move |addr| async move {
                let mut clients = Vec::new();
                for _ in 0..conns {
                    clients.push(connect(addr, &ctls).await?);
                }
                let left = Arc::new(AtomicUsize::new(cfg.rps_requests));
                let t = Instant::now();
                let deadline = t + cfg.max_time;
                let payload = Bytes::from(vec![7u8; 100]);
                let mut set = tokio::task::JoinSet::new();
                for i in 0..100 {
                    let c = clients[i % conns].clone();
                    let left = left.clone();
                    let payload = payload.clone();
                    set.spawn(async move {
                        let mut lat = Vec::new();
                        while Instant::now() < deadline
                            && left
                                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                                    n.checked_sub(1)
                                })
                                .is_ok()
                        {
                            let t1 = Instant::now();
                            let req = Request::post("/echo")
                                .body(Body::from(payload.clone()))
                                .map_err(io::Error::other)?;
                            let resp = c.send(req).await.map_err(io::Error::other)?;
                            let body = resp
                                .into_body()
                                .collect(1 << 20)
                                .await
                                .map_err(io::Error::other)?;
                            if body.len() != 100 {
                                return Err(io::Error::other("echo: wrong body length"));
                            }
                            lat.push(us_since(t1));
                        }
                        Ok::<_, io::Error>(lat)
                    });
                }
                let mut lat = Vec::new();
                while let Some(r) = set.join_next().await {
                    lat.extend(r.map_err(io::Error::other)??);
                }
                Ok(Measurement {
                    value: lat.len() as f64 / t.elapsed().as_secs_f64(),
                    unit: "req/s",
                    note: format!("100 in flight on {conns} conn"),
                    latencies_us: lat,
                })
            })?
        }
        Workload::ConnectH2c | Workload::ConnectTls => {
            on_two_threads(serve, move |addr| async move {
                let t = Instant::now();
                let deadline = t + cfg.max_time;
                let mut lat = Vec::new();
                while lat.len() < cfg.connects && Instant::now() < deadline {
                    let t1 = Instant::now();
                    let c = connect(addr, &ctls).await?;
                    fetch(&c, 100, deadline + cfg.max_time).await?;
                    c.close();
                    lat.push(us_since(t1));
                }
                Ok(Measurement {
                    value: lat.len() as f64 / t.elapsed().as_secs_f64(),
                    unit: "conn/s",
                    note: "connect + first response".into(),
                    latencies_us: lat,
                })
            })?
        }
        Workload::MemConn => on_two_threads(serve, super::mem::per_idle_connection)?,
        Workload::MemStream => on_two_threads(serve, super::mem::per_idle_stream)?,
        _ => return Ok(Outcome::NotBuilt),
    };
    Ok(Outcome::Measured(m))
}
