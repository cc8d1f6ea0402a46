//! hyper 1.x contenders: HTTP/1.1 (`hyper-h1`) and HTTP/2 through the `h2` crate with hyper's
//! defaults (`h2-default`) or tuned (`h2-tuned`: 16 MiB stream and connection windows, 1 MiB
//! max frame size, 4 MiB send buffer, adaptive window OFF). Adaptive window makes hyper ignore
//! the fixed windows; measured on the 2-core dev box (2026-11-23, two runs each) it was slower:
//! bulk-1 4.0–4.5 GiB/s with adaptive ON vs 4.8–5.1 GiB/s OFF, so OFF is the tuned setting.
//!
//! Server: `/bytes/N` streams N bytes as 1 MiB body frames; `/echo` echoes the request body.

use super::{mib_per_s, on_two_threads, spread_note};
use crate::{us_since, Config, Measurement, Outcome, Workload};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::net::{TcpListener, TcpStream};

/// Which hyper protocol/configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// HTTP/1.1.
    H1,
    /// HTTP/2 with hyper's defaults.
    H2Default,
    /// HTTP/2 with large windows and frames.
    H2Tuned,
}

const WINDOW: u32 = 16 << 20;
const FRAME: u32 = 1 << 20;
const CHUNK: usize = 1 << 20;

/// A body of `remaining` bytes sent as `chunk`-sized frames (1 MiB application writes).
struct RepeatBody {
    chunk: Bytes,
    remaining: u64,
}

impl Body for RepeatBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let n = self.remaining.min(self.chunk.len() as u64) as usize;
        self.remaining -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(self.chunk.slice(..n)))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

async fn handle(req: Request<Incoming>, zeros: Bytes) -> Result<Response<RepeatBody>, Infallible> {
    let path = req.uri().path().to_string();
    if let Some(n) = path.strip_prefix("/bytes/") {
        let remaining = n.parse().unwrap_or(0);
        return Ok(Response::new(RepeatBody {
            chunk: zeros,
            remaining,
        }));
    }
    let body = match req.into_body().collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let remaining = body.len() as u64;
    Ok(Response::new(RepeatBody {
        chunk: body,
        remaining,
    }))
}

/// ALPN protocol ids of a hyper contender over TLS.
fn alpn(proto: Proto) -> &'static [&'static [u8]] {
    match proto {
        Proto::H1 => &[b"http/1.1"],
        Proto::H2Default | Proto::H2Tuned => &[b"h2"],
    }
}

type TlsPair = (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>);

async fn serve(proto: Proto, listener: TcpListener, tls: Option<Arc<rustls::ServerConfig>>) {
    let zeros = Bytes::from(vec![0u8; CHUNK]);
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    while let Ok((s, _)) = listener.accept().await {
        let _ = s.set_nodelay(true);
        let zeros = zeros.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            match acceptor {
                Some(a) => {
                    if let Ok(tls) = a.accept(s).await {
                        serve_io(proto, tls, zeros).await;
                    }
                }
                None => serve_io(proto, s, zeros).await,
            }
        });
    }
}

async fn serve_io<I>(proto: Proto, io: I, zeros: Bytes)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req| handle(req, zeros.clone()));
    let io = TokioIo::new(io);
    let _ = match proto {
        Proto::H1 => {
            hyper::server::conn::http1::Builder::new()
                .serve_connection(io, svc)
                .await
        }
        Proto::H2Default => {
            hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(io, svc)
                .await
        }
        Proto::H2Tuned => {
            hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .initial_stream_window_size(WINDOW)
                .initial_connection_window_size(WINDOW)
                .max_frame_size(FRAME)
                .max_send_buf_size(4 << 20)
                .adaptive_window(false)
                .serve_connection(io, svc)
                .await
        }
    };
}

/// A client connection: HTTP/1.1 or HTTP/2 send handle.
#[derive(Clone)]
enum Sender {
    H1(Arc<tokio::sync::Mutex<hyper::client::conn::http1::SendRequest<Full<Bytes>>>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

impl Sender {
    async fn send(&self, req: Request<Full<Bytes>>) -> io::Result<Response<Incoming>> {
        let r = match self {
            Sender::H1(s) => {
                let mut s = s.lock().await;
                s.ready().await.map_err(io::Error::other)?;
                s.send_request(req).await
            }
            Sender::H2(s) => {
                let mut s = s.clone();
                s.ready().await.map_err(io::Error::other)?;
                s.send_request(req).await
            }
        };
        r.map_err(io::Error::other)
    }
}

async fn connect(
    proto: Proto,
    addr: SocketAddr,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> io::Result<Sender> {
    match tls {
        Some(cfg) => handshake(proto, super::raw_tls::connect(addr, cfg).await?).await,
        None => {
            let s = TcpStream::connect(addr).await?;
            s.set_nodelay(true)?;
            handshake(proto, s).await
        }
    }
}

async fn handshake<I>(proto: Proto, io: I) -> io::Result<Sender>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(io);
    Ok(match proto {
        Proto::H1 => {
            let (send, conn) = hyper::client::conn::http1::handshake(io)
                .await
                .map_err(io::Error::other)?;
            tokio::spawn(conn);
            Sender::H1(Arc::new(tokio::sync::Mutex::new(send)))
        }
        Proto::H2Default | Proto::H2Tuned => {
            let mut b = hyper::client::conn::http2::Builder::new(TokioExecutor::new());
            if proto == Proto::H2Tuned {
                b.initial_stream_window_size(WINDOW)
                    .initial_connection_window_size(WINDOW)
                    .max_frame_size(FRAME)
                    .max_send_buf_size(4 << 20)
                    .adaptive_window(false);
            }
            let (send, conn) = b.handshake(io).await.map_err(io::Error::other)?;
            tokio::spawn(conn);
            Sender::H2(send)
        }
    })
}

fn get(addr: SocketAddr, path: &str) -> io::Result<Request<Full<Bytes>>> {
    Request::get(format!("http://{addr}{path}"))
        .body(Full::new(Bytes::new()))
        .map_err(io::Error::other)
}

/// Downloads `/bytes/n`, stopping at `deadline`; returns bytes read.
async fn fetch(s: &Sender, addr: SocketAddr, n: u64, deadline: Instant) -> io::Result<u64> {
    let resp = s.send(get(addr, &format!("/bytes/{n}"))?).await?;
    let mut body = resp.into_body();
    let mut got = 0u64;
    while Instant::now() < deadline {
        match body.frame().await {
            Some(f) => {
                if let Ok(d) = f.map_err(io::Error::other)?.into_data() {
                    got += d.len() as u64;
                    crate::count_received(d.len() as u64);
                }
            }
            None => break,
        }
    }
    Ok(got)
}

/// Runs one repetition.
pub fn run(proto: Proto, w: Workload, cfg: &Config) -> io::Result<Outcome> {
    let cfg = cfg.clone();
    let tls: Option<TlsPair> = if cfg.tls || w == Workload::ConnectTls {
        Some(super::raw_tls::configs_with_alpn(alpn(proto))?)
    } else {
        None
    };
    let (stls, ctls) = (tls.as_ref().map(|t| t.0.clone()), tls.map(|t| t.1));
    let server = move |l| serve(proto, l, stls);
    let m = match w {
        Workload::Bulk1 => on_two_threads(server, move |addr| async move {
            let s = connect(proto, addr, ctls.clone()).await?;
            let t = Instant::now();
            let got = fetch(&s, addr, cfg.bulk1_bytes, t + cfg.max_time).await?;
            Ok(Measurement {
                value: mib_per_s(got, t.elapsed().as_secs_f64()),
                unit: "MiB/s",
                ..Default::default()
            })
        })?,
        Workload::Bulk100 => on_two_threads(server, move |addr| async move {
            // HTTP/1.1 cannot multiplex: 100 connections; HTTP/2: 100 streams on one.
            let shared = if proto == Proto::H1 {
                None
            } else {
                Some(connect(proto, addr, ctls.clone()).await?)
            };
            let t = Instant::now();
            let deadline = t + cfg.max_time * 3;
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..100 {
                let n = cfg.bulk100_stream_bytes;
                let shared = shared.clone();
                let ctls = ctls.clone();
                set.spawn(async move {
                    let s = match shared {
                        Some(s) => s,
                        None => connect(proto, addr, ctls.clone()).await?,
                    };
                    let got = fetch(&s, addr, n, deadline).await?;
                    Ok::<_, io::Error>((got, us_since(t)))
                });
            }
            let mut total = 0;
            let mut times = Vec::new();
            while let Some(r) = set.join_next().await {
                let (got, us) = r.map_err(io::Error::other)??;
                total += got;
                times.push(us);
            }
            let how = if proto == Proto::H1 {
                "100 conns"
            } else {
                "1 conn"
            };
            Ok(Measurement {
                value: mib_per_s(total, t.elapsed().as_secs_f64()),
                unit: "MiB/s",
                note: format!("{how}; {}", spread_note(&times)),
                latencies_us: times,
            })
        })?,
        Workload::Rps1Conn | Workload::Rps4Conn if proto == Proto::H1 => {
            return Ok(Outcome::NotApplicable(
                "HTTP/1.1 has one request in flight per connection",
            ))
        }
        Workload::Rps1Conn | Workload::Rps4Conn => {
            let conns = if w == Workload::Rps1Conn { 1 } else { 4 };
            on_two_threads(server, move |addr| async move {
                let mut senders = Vec::new();
                for _ in 0..conns {
                    senders.push(connect(proto, addr, ctls.clone()).await?);
                }
                let left = Arc::new(AtomicUsize::new(cfg.rps_requests));
                let t = Instant::now();
                let deadline = t + cfg.max_time;
                let payload = Bytes::from(vec![7u8; 100]);
                let mut set = tokio::task::JoinSet::new();
                for i in 0..100 {
                    let s = senders[i % conns].clone();
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
                            let req = Request::post(format!("http://{addr}/echo"))
                                .body(Full::new(payload.clone()))
                                .map_err(io::Error::other)?;
                            let resp = s.send(req).await?;
                            let body = resp
                                .into_body()
                                .collect()
                                .await
                                .map_err(io::Error::other)?
                                .to_bytes();
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
            on_two_threads(server, move |addr| async move {
                let t = Instant::now();
                let deadline = t + cfg.max_time;
                let mut lat = Vec::new();
                while lat.len() < cfg.connects && Instant::now() < deadline {
                    let t1 = Instant::now();
                    let s = connect(proto, addr, ctls.clone()).await?;
                    fetch(&s, addr, 100, deadline + cfg.max_time).await?;
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
        Workload::MemConn => on_two_threads(server, super::mem::per_idle_connection)?,
        Workload::MemStream => on_two_threads(server, super::mem::per_idle_stream)?,
        _ => return Ok(Outcome::NotBuilt),
    };
    Ok(Outcome::Measured(m))
}
