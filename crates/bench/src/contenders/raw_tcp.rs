//! raw-tcp: the physical limit. A request is an 8-byte big-endian length N; the server answers
//! with N bytes written 1 MiB at a time (tokio socket copy, the same write size as the HTTP
//! contenders).

use super::{mib_per_s, on_two_threads, spread_note};
use crate::{us_since, Config, Measurement, Outcome, Workload};
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub(crate) const WRITE: usize = 1 << 20;

/// Serves length-prefixed download requests on one connection (also used by raw-tls).
pub(crate) async fn serve_conn<S: AsyncRead + AsyncWrite + Unpin>(mut s: S) {
    let buf = vec![0u8; WRITE];
    let mut len = [0u8; 8];
    while s.read_exact(&mut len).await.is_ok() {
        let mut left = u64::from_be_bytes(len);
        while left > 0 {
            let n = left.min(WRITE as u64) as usize;
            if s.write_all(&buf[..n]).await.is_err() {
                return;
            }
            left -= n as u64;
        }
        if s.flush().await.is_err() {
            return;
        }
    }
}

async fn serve(listener: TcpListener) {
    while let Ok((s, _)) = listener.accept().await {
        let _ = s.set_nodelay(true);
        tokio::spawn(serve_conn(s));
    }
}

/// Downloads `n` bytes on `s`, stopping at `deadline`; returns bytes read.
pub(crate) async fn fetch<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    n: u64,
    deadline: Instant,
) -> io::Result<u64> {
    s.write_all(&n.to_be_bytes()).await?;
    s.flush().await?;
    let mut buf = vec![0u8; WRITE];
    let mut got = 0u64;
    while got < n && Instant::now() < deadline {
        let r = s.read(&mut buf).await?;
        if r == 0 {
            break;
        }
        got += r as u64;
        crate::count_received(r as u64);
    }
    Ok(got)
}

async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Runs one repetition.
pub fn run(w: Workload, cfg: &Config) -> io::Result<Outcome> {
    let cfg = cfg.clone();
    let m = match w {
        Workload::Bulk1 => on_two_threads(serve, move |addr| async move {
            let mut s = connect(addr).await?;
            let t = Instant::now();
            let got = fetch(&mut s, cfg.bulk1_bytes, t + cfg.max_time).await?;
            Ok(Measurement {
                value: mib_per_s(got, t.elapsed().as_secs_f64()),
                unit: "MiB/s",
                ..Default::default()
            })
        })?,
        Workload::Bulk100 => on_two_threads(serve, move |addr| async move {
            let t = Instant::now();
            let deadline = t + cfg.max_time * 3;
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..100 {
                let n = cfg.bulk100_stream_bytes;
                set.spawn(async move {
                    let mut s = connect(addr).await?;
                    let got = fetch(&mut s, n, deadline).await?;
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
            Ok(Measurement {
                value: mib_per_s(total, t.elapsed().as_secs_f64()),
                unit: "MiB/s",
                note: format!("100 TCP conns; {}", spread_note(&times)),
                latencies_us: times,
            })
        })?,
        Workload::ConnectH2c => on_two_threads(serve, move |addr| async move {
            let t = Instant::now();
            let deadline = t + cfg.max_time;
            let mut lat = Vec::new();
            while lat.len() < cfg.connects && Instant::now() < deadline {
                let t1 = Instant::now();
                let mut s = connect(addr).await?;
                fetch(&mut s, 100, deadline + Duration::from_secs(1)).await?;
                lat.push(us_since(t1));
            }
            Ok(Measurement {
                value: lat.len() as f64 / t.elapsed().as_secs_f64(),
                unit: "conn/s",
                note: "TCP connect + 100-byte reply".into(),
                latencies_us: lat,
            })
        })?,
        Workload::Rps1Conn | Workload::Rps4Conn => {
            return Ok(Outcome::NotApplicable("no multiplexing on raw TCP"))
        }
        _ => return Ok(Outcome::NotBuilt),
    };
    Ok(Outcome::Measured(m))
}
