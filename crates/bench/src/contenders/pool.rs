//! The pool rows: h2mux's stream pool (crates/pool) over TLS 1.3 + h2 on loopback, in the
//! same two-thread harness as everyone (the server pool on one thread, the client pool on the
//! other). The server application takes streams with `incoming_get` and announces their IDs
//! on the control stream `00000000`, as a NodePass node does; the client takes them by ID.
//!
//! * `pool-get`: the latency of `outgoing_get` for a stream already pre-opened in the client
//!   pool (the client waits until the announced ID is in its pool, then times the get).
//! * `pool-bulk`: one pooled stream downloading with the raw-tcp protocol (8-byte length, N
//!   bytes back in 1 MiB writes), beside raw TCP and raw TLS doing the same on a socket. The
//!   value is the `AsyncRead`/`AsyncWrite` stream; the note adds the zero-copy chunk API on a
//!   second stream, and the process CPU seconds per GiB of each. `POOL_ONLY=io` or
//!   `POOL_ONLY=chunk` runs only one of the two (`examples/load pool-bulk h2mux 1024`).
//! * `pool-bulk-100`: 100 pooled streams of one pool connection in parallel, beside 100 TCP
//!   and 100 TLS connections.

use super::raw_tcp::{fetch, serve_conn, WRITE};
use super::{mib_per_s, on_two_threads, spread_note};
use crate::{us_since, Config, Measurement, Outcome, Workload};
use bytes::Bytes;
use h2mux_pool::{
    ClientConfig, ClientPool, Listen, PoolStream, PoolStreamId, Resolver, ServerConfig, ServerPool,
    TlsMode,
};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const WAIT: Duration = Duration::from_secs(10);
/// Gets timed by `pool-get` (p99 from 8 000 samples).
const POOL_GETS: usize = 8_000;

/// The raw-tcp download protocol on a pooled stream through the zero-copy API: the same 1 MiB
/// buffer is sent again and again as `Bytes` slices.
async fn serve_chunks(mut s: PoolStream) {
    let buf = Bytes::from(vec![0u8; WRITE]);
    let mut len = [0u8; 8];
    while s.read_exact(&mut len).await.is_ok() {
        let mut left = u64::from_be_bytes(len);
        while left > 0 {
            let n = left.min(WRITE as u64) as usize;
            if s.write_chunk(buf.slice(..n)).await.is_err() {
                return;
            }
            left -= n as u64;
        }
    }
}

/// A download through the zero-copy API.
async fn fetch_chunks(s: &mut PoolStream, n: u64, deadline: Instant) -> io::Result<u64> {
    s.write_all(&n.to_be_bytes()).await?;
    let mut got = 0u64;
    while got < n && Instant::now() < deadline {
        let Some(c) = s.read_chunk().await? else {
            break;
        };
        got += c.len() as u64;
        crate::count_received(c.len() as u64);
    }
    Ok(got)
}

/// The server application: every stream the pool hands out is announced on the control
/// stream and then serves raw-tcp download requests until the client closes it (the first
/// octet from the client picks the API: 0 the zero-copy one, else `AsyncRead`/`AsyncWrite`).
async fn serve(listener: TcpListener, tls: Arc<rustls::ServerConfig>, capacity: usize) {
    let Ok(pool) =
        ServerPool::new(ServerConfig::new(capacity, tls, Listen::Listener(listener))).await
    else {
        return;
    };
    let Ok(mut ctl) = pool.incoming_control(WAIT).await else {
        return;
    };
    while let Ok((id, s)) = pool.incoming_get(Duration::from_secs(3600)).await {
        if ctl.write_all(&id.0).await.is_err() {
            return;
        }
        tokio::spawn(async move {
            let mut s = s;
            let mut api = [0u8; 1];
            if s.read_exact(&mut api).await.is_ok() {
                if api[0] == 0 {
                    serve_chunks(s).await
                } else {
                    serve_conn(s).await
                }
            }
        });
    }
}

fn client_pool(
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    capacity: usize,
) -> io::Result<ClientPool> {
    let mut cfg = ClientConfig::new(
        TlsMode::Verified,
        "localhost",
        Resolver::fixed(addr.to_string()),
    );
    cfg.tls_config = Some(tls);
    cfg.min_capacity = capacity;
    cfg.max_capacity = capacity;
    cfg.min_interval = Duration::from_millis(5);
    cfg.max_interval = Duration::from_millis(50);
    ClientPool::new(cfg).map_err(io::Error::other)
}

/// The next announced ID.
async fn next_id(ctl: &mut h2mux_pool::PoolStream) -> io::Result<PoolStreamId> {
    let mut b = [0u8; 4];
    ctl.read_exact(&mut b).await?;
    Ok(PoolStreamId(b))
}

/// Runs one repetition.
pub fn run(w: Workload, cfg: &Config) -> io::Result<Outcome> {
    let cfg = cfg.clone();
    let (stls, ctls) = super::raw_tls::configs_with_alpn(&[b"h2"])?;
    let m = match w {
        Workload::PoolGet => on_two_threads(
            move |l| serve(l, stls, 256),
            move |addr| async move {
                let pool = client_pool(addr, ctls, 200)?;
                let mut ctl = pool
                    .outgoing_get(PoolStreamId::CONTROL, WAIT)
                    .await
                    .map_err(io::Error::other)?;
                let t = Instant::now();
                let deadline = t + cfg.max_time;
                let mut lat = Vec::new();
                // Each stream taken and dropped unused is one RST_STREAM to the server pool,
                // whose Rapid Reset defence allows 10 000 per 10 s (`pool_h2_config`): stay
                // under it, or the row measures the defence (GOAWAY ENHANCE_YOUR_CALM).
                while lat.len() < POOL_GETS && Instant::now() < deadline {
                    let id = next_id(&mut ctl).await?;
                    // Pre-opened: wait (untimed) until the stream is in the client pool.
                    while !pool.contains(id) {
                        tokio::task::yield_now().await;
                    }
                    let t1 = Instant::now();
                    let s = pool
                        .outgoing_get(id, WAIT)
                        .await
                        .map_err(io::Error::other)?;
                    lat.push(us_since(t1));
                    drop(s);
                }
                let n = lat.len();
                let mut sorted = lat.clone();
                sorted.sort_by(f64::total_cmp);
                Ok(Measurement {
                    value: sorted.get(n / 2).copied().unwrap_or(0.0),
                    unit: "µs p50",
                    note: format!(
                        "{n} gets of pre-opened streams ({:.0}/s incl. waiting for them)",
                        n as f64 / t.elapsed().as_secs_f64()
                    ),
                    latencies_us: lat,
                })
            },
        )?,
        Workload::PoolBulk => on_two_threads(
            move |l| serve(l, stls, 8),
            move |addr| async move {
                let pool = client_pool(addr, ctls, 4)?;
                let mut ctl = pool
                    .outgoing_get(PoolStreamId::CONTROL, WAIT)
                    .await
                    .map_err(io::Error::other)?;
                // The byte interface (AsyncRead/AsyncWrite, as on a socket), then the
                // zero-copy API, one stream each.
                let mut rates = Vec::new();
                let mut cpu = Vec::new();
                // `POOL_ONLY=io|chunk` runs one of the two (for profiling with examples/load).
                let only = std::env::var("POOL_ONLY").ok();
                for api in [1u8, 0] {
                    let c0 = crate::cpu_seconds();
                    let skip = if api == 0 { "io" } else { "chunk" };
                    if only.as_deref() == Some(skip) {
                        rates.push(0.0);
                        cpu.push(0.0);
                        continue;
                    }
                    let id = next_id(&mut ctl).await?;
                    let mut s = pool
                        .outgoing_get(id, WAIT)
                        .await
                        .map_err(io::Error::other)?;
                    s.write_all(&[api]).await?;
                    let t = Instant::now();
                    let got = if api == 0 {
                        fetch_chunks(&mut s, cfg.bulk1_bytes, t + cfg.max_time).await?
                    } else {
                        fetch(&mut s, cfg.bulk1_bytes, t + cfg.max_time).await?
                    };
                    rates.push(mib_per_s(got, t.elapsed().as_secs_f64()));
                    // Process CPU (both threads) per GiB: steadier than MiB/s on a shared box.
                    let gib = got as f64 / f64::from(1u32 << 30);
                    cpu.push((crate::cpu_seconds() - c0) / gib);
                }
                Ok(Measurement {
                    value: rates[0],
                    unit: "MiB/s",
                    note: format!(
                        "1 pooled stream (TLS 1.3 + h2), AsyncRead/AsyncWrite ({:.2} cpu s/GiB); zero-copy chunk API {:.1} MiB/s ({:.2} cpu s/GiB)",
                        cpu[0], rates[1], cpu[1]
                    ),
                    ..Default::default()
                })
            },
        )?,
        Workload::PoolBulk100 => on_two_threads(
            move |l| serve(l, stls, 128),
            move |addr| async move {
                let pool = client_pool(addr, ctls, 100)?;
                let mut ctl = pool
                    .outgoing_get(PoolStreamId::CONTROL, WAIT)
                    .await
                    .map_err(io::Error::other)?;
                let mut streams = Vec::new();
                for _ in 0..100 {
                    let id = next_id(&mut ctl).await?;
                    let mut s = pool
                        .outgoing_get(id, WAIT)
                        .await
                        .map_err(io::Error::other)?;
                    s.write_all(&[1]).await?;
                    streams.push(s);
                }
                let t = Instant::now();
                let deadline = t + cfg.max_time * 3;
                let mut set = tokio::task::JoinSet::new();
                for mut s in streams {
                    let n = cfg.bulk100_stream_bytes;
                    set.spawn(async move {
                        let got = fetch(&mut s, n, deadline).await?;
                        Ok::<_, io::Error>((got, us_since(t)))
                    });
                }
                let (total, times) = super::join_bulk(set).await?;
                Ok(Measurement {
                    value: mib_per_s(total, t.elapsed().as_secs_f64()),
                    unit: "MiB/s",
                    note: format!("1 pool connection; {}", spread_note(&times)),
                    latencies_us: times,
                })
            },
        )?,
        _ => return Ok(Outcome::NotApplicable("pool rows only")),
    };
    Ok(Outcome::Measured(m))
}
