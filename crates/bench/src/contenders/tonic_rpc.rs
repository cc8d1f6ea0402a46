//! tonic contender for the RPC rows — the seeds/002 experiment: 100 workers making unary
//! `h2mux.echo.v1.Echo/Unary` calls (100-octet payloads) for a fixed time, either each with
//! its own channel (`rpc-per-worker`: 100 HTTP/2 connections) or all sharing one channel
//! balanced over 1, 2 or 4 connections (`rpc-shared-N`).
//!
//! No protobuf toolchain: the echo messages are h2mux-rpc's hand-coded ones, plugged into
//! tonic through its `Codec` trait, and the server is a hand-written tower service of the
//! same shape tonic's generated code has.

use super::on_two_threads;
use crate::{us_since, Config, Measurement, Outcome, Workload};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use h2mux_rpc::echo::{method, EchoReply, EchoRequest};
use std::io;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::task::{Context, Poll};
use std::time::Instant;
use tokio_stream::StreamExt;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http;
use tonic::transport::{Channel, Endpoint};
use tonic::Status;

/// The two echo messages, as tonic's codec needs them.
trait Message: Sized + Send + 'static {
    fn encode_to(&self, dst: &mut BytesMut);
    fn decode_from(src: Bytes) -> Result<Self, String>;
}

impl Message for EchoRequest {
    fn encode_to(&self, dst: &mut BytesMut) {
        self.encode(dst)
    }
    fn decode_from(src: Bytes) -> Result<Self, String> {
        EchoRequest::decode(src).map_err(|e| e.to_string())
    }
}

impl Message for EchoReply {
    fn encode_to(&self, dst: &mut BytesMut) {
        self.encode(dst)
    }
    fn decode_from(src: Bytes) -> Result<Self, String> {
        EchoReply::decode(src).map_err(|e| e.to_string())
    }
}

/// Sends `E`, receives `D`.
struct EchoCodec<E, D>(PhantomData<fn() -> (E, D)>);

impl<E, D> Default for EchoCodec<E, D> {
    fn default() -> Self {
        EchoCodec(PhantomData)
    }
}

struct Enc<E>(PhantomData<fn() -> E>);
struct Dec<D>(PhantomData<fn() -> D>);

impl<E: Message> Encoder for Enc<E> {
    type Item = E;
    type Error = Status;
    fn encode(&mut self, item: E, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        let mut b = BytesMut::new();
        item.encode_to(&mut b);
        dst.put_slice(&b);
        Ok(())
    }
}

impl<D: Message> Decoder for Dec<D> {
    type Item = D;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<D>, Status> {
        let n = src.remaining();
        D::decode_from(src.copy_to_bytes(n))
            .map(Some)
            .map_err(Status::internal)
    }
}

impl<E: Message, D: Message> Codec for EchoCodec<E, D> {
    type Encode = E;
    type Decode = D;
    type Encoder = Enc<E>;
    type Decoder = Dec<D>;
    fn encoder(&mut self) -> Enc<E> {
        Enc(PhantomData)
    }
    fn decoder(&mut self) -> Dec<D> {
        Dec(PhantomData)
    }
}

/// The echo service's Unary method as a tower service (what tonic-build would generate).
#[derive(Clone, Copy)]
struct EchoServer;

impl tonic::server::NamedService for EchoServer {
    const NAME: &'static str = "h2mux.echo.v1.Echo";
}

struct Unary;

impl tonic::server::UnaryService<EchoRequest> for Unary {
    type Response = EchoReply;
    type Future = std::future::Ready<Result<tonic::Response<EchoReply>, Status>>;
    fn call(&mut self, req: tonic::Request<EchoRequest>) -> Self::Future {
        let r = req.into_inner();
        std::future::ready(Ok(tonic::Response::new(EchoReply {
            payload: r.payload,
            index: 0,
        })))
    }
}

impl<B> tonic::codegen::Service<http::Request<B>> for EchoServer
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::BoxBody>;
    type Error = std::convert::Infallible;
    type Future = tonic::codegen::BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() == method::UNARY {
            Box::pin(async move {
                let mut grpc =
                    tonic::server::Grpc::new(EchoCodec::<EchoReply, EchoRequest>::default());
                Ok(grpc.unary(Unary, req).await)
            })
        } else {
            Box::pin(async move { Ok(Status::unimplemented("only Unary is served").into_http()) })
        }
    }
}

async fn serve(listener: tokio::net::TcpListener) {
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener).map(|r| {
        r.inspect(|s| {
            let _ = s.set_nodelay(true);
        })
    });
    let _ = tonic::transport::Server::builder()
        .add_service(EchoServer)
        .serve_with_incoming(incoming)
        .await;
}

fn endpoint(addr: SocketAddr) -> io::Result<Endpoint> {
    Ok(Endpoint::from_shared(format!("http://{addr}"))
        .map_err(io::Error::other)?
        .tcp_nodelay(true))
}

/// One unary echo call.
async fn call(ch: Channel, payload: Bytes) -> io::Result<()> {
    let mut grpc = tonic::client::Grpc::new(ch);
    grpc.ready().await.map_err(io::Error::other)?;
    let reply = grpc
        .unary(
            tonic::Request::new(EchoRequest { payload, repeat: 0 }),
            http::uri::PathAndQuery::from_static(method::UNARY),
            EchoCodec::<EchoRequest, EchoReply>::default(),
        )
        .await
        .map_err(io::Error::other)?;
    if reply.get_ref().payload.len() != 100 {
        return Err(io::Error::other("echo: wrong payload length"));
    }
    Ok(())
}

/// A channel over `conns` connections (tonic balances across a list of endpoints).
async fn channel(addr: SocketAddr, conns: usize) -> io::Result<Channel> {
    if conns == 1 {
        endpoint(addr)?.connect().await.map_err(io::Error::other)
    } else {
        let eps = (0..conns)
            .map(|_| endpoint(addr))
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Channel::balance_list(eps.into_iter()))
    }
}

/// Runs one repetition.
pub fn run(w: Workload, cfg: &Config) -> io::Result<Outcome> {
    let shared_conns = match w {
        Workload::RpcPerWorker => None,
        Workload::RpcShared1 => Some(1),
        Workload::RpcShared2 => Some(2),
        Workload::RpcShared4 => Some(4),
        _ => return Ok(Outcome::NotApplicable("tonic is for the RPC rows")),
    };
    let cfg = cfg.clone();
    let m = on_two_threads(serve, move |addr| async move {
        let payload = Bytes::from(vec![7u8; 100]);
        // Time to first call on a fresh channel.
        let t0 = Instant::now();
        let first = channel(addr, shared_conns.unwrap_or(1)).await?;
        call(first.clone(), payload.clone()).await?;
        let first_call = t0.elapsed();
        let shared = shared_conns.map(|_| first);
        let t = Instant::now();
        let deadline = t + cfg.max_time;
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..100 {
            let shared = shared.clone();
            let payload = payload.clone();
            set.spawn(async move {
                let ch = match shared {
                    Some(ch) => ch,
                    None => channel(addr, 1).await?,
                };
                let mut lat = Vec::new();
                while Instant::now() < deadline && lat.len() < cfg.rps_requests {
                    let t1 = Instant::now();
                    call(ch.clone(), payload.clone()).await?;
                    lat.push(us_since(t1));
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
