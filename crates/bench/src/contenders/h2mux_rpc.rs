//! h2mux contender for the RPC rows — the same seeds/002 workload as [`super::tonic_rpc`]:
//! 100 workers making unary `h2mux.echo.v1.Echo/Unary` calls (100-octet payloads) for a
//! fixed time, either each with its own channel (`rpc-per-worker`: 100 HTTP/2 connections)
//! or all sharing one `h2mux_rpc::channel::Channel` over 1, 2 or 4 connections
//! (`rpc-shared-N`). The server is the built-in echo service (`h2mux_rpc::server::echo_service`)
//! on a gRPC-only port (`RpcServer::serve`: gRPC straight on h2mux streams), as tonic's is.

use super::on_two_threads;
use crate::{us_since, Config, Measurement, Outcome, Workload};
use bytes::{Bytes, BytesMut};
use h2mux_rpc::channel::{CallOptions, Channel, ChannelConfig};
use h2mux_rpc::echo::{method, EchoReply, EchoRequest};
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

async fn serve(listener: tokio::net::TcpListener) {
    // A gRPC-only port, as tonic's server is: gRPC straight on h2mux streams.
    h2mux_rpc::server::echo_service()
        .serve(listener, h2mux::Config::default())
        .await
}

fn channel(addr: SocketAddr, conns: usize) -> Channel {
    Channel::new(ChannelConfig::new(&addr.to_string()).connections(conns))
}

/// One unary echo call.
async fn call(ch: &Channel, request: &[u8]) -> io::Result<()> {
    let reply = ch
        .unary(method::UNARY, request, CallOptions::default())
        .await
        .map_err(io::Error::other)?;
    let reply = EchoReply::decode(reply).map_err(|e| io::Error::other(e.to_string()))?;
    if reply.payload.len() != 100 {
        return Err(io::Error::other("echo: wrong payload length"));
    }
    Ok(())
}

/// Runs one repetition.
pub fn run(w: Workload, cfg: &Config) -> io::Result<Outcome> {
    let shared_conns = match w {
        Workload::RpcPerWorker => None,
        Workload::RpcShared1 => Some(1),
        Workload::RpcShared2 => Some(2),
        Workload::RpcShared4 => Some(4),
        _ => return Ok(Outcome::NotApplicable("h2mux-rpc is for the RPC rows")),
    };
    let cfg = cfg.clone();
    let m = on_two_threads(serve, move |addr| async move {
        let mut b = BytesMut::new();
        EchoRequest {
            payload: Bytes::from(vec![7u8; 100]),
            repeat: 0,
        }
        .encode(&mut b);
        let request = b.freeze();
        // Time to first call on a fresh channel.
        let t0 = Instant::now();
        let first = channel(addr, shared_conns.unwrap_or(1));
        call(&first, &request).await?;
        let first_call = t0.elapsed();
        let shared = shared_conns.map(|_| first);
        let t = Instant::now();
        let deadline = t + cfg.max_time;
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..100 {
            let shared = shared.clone();
            let request = request.clone();
            set.spawn(async move {
                let own = shared.is_none();
                let ch = shared.unwrap_or_else(|| channel(addr, 1));
                let mut lat = Vec::new();
                while Instant::now() < deadline && lat.len() < cfg.rps_requests {
                    let t1 = Instant::now();
                    call(&ch, &request).await?;
                    lat.push(us_since(t1));
                }
                if own {
                    ch.close();
                }
                Ok::<_, io::Error>(lat)
            });
        }
        let mut lat = Vec::new();
        while let Some(r) = set.join_next().await {
            lat.extend(r.map_err(io::Error::other)??);
        }
        let how = match shared_conns {
            None => "100 channels".to_string(),
            Some(n) => format!("1 channel, {n} conn"),
        };
        Ok(Measurement {
            value: lat.len() as f64 / t.elapsed().as_secs_f64(),
            unit: "calls/s",
            note: format!(
                "100 workers, {how}; first call {:.1} ms",
                first_call.as_secs_f64() * 1e3
            ),
            latencies_us: lat,
        })
    })?;
    Ok(Outcome::Measured(m))
}
