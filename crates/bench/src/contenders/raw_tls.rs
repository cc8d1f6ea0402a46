//! raw-tls: the physical limit over TLS. The raw-tcp protocol (8-byte length, N bytes back in
//! 1 MiB writes) inside tokio-rustls (ring provider, TLS 1.3), with a self-signed certificate
//! made by rcgen at start and trusted explicitly by the client.

use super::raw_tcp::{fetch, serve_conn};
use super::{mib_per_s, on_two_threads, spread_note};
use crate::{us_since, Config, Measurement, Outcome, Workload};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{client::TlsStream, TlsAcceptor, TlsConnector};

/// A self-signed server config and a client config trusting it, both offering `alpn`.
pub(crate) fn configs_with_alpn(
    alpn: &[&[u8]],
) -> io::Result<(Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>)> {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .map_err(io::Error::other)?;
    let cert: CertificateDer<'static> = ck.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .map_err(io::Error::other)?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).map_err(io::Error::other)?;
    let mut client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    server.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    client.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok((Arc::new(server), Arc::new(client)))
}

fn configs() -> io::Result<(Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>)> {
    configs_with_alpn(&[])
}

async fn serve(listener: TcpListener, cfg: Arc<rustls::ServerConfig>) {
    let acceptor = TlsAcceptor::from(cfg);
    while let Ok((s, _)) = listener.accept().await {
        let _ = s.set_nodelay(true);
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            if let Ok(tls) = acceptor.accept(s).await {
                serve_conn(tls).await;
            }
        });
    }
}

/// TCP connect (TCP_NODELAY) and a TLS handshake for "localhost".
pub(crate) async fn connect(
    addr: SocketAddr,
    cfg: Arc<rustls::ClientConfig>,
) -> io::Result<TlsStream<TcpStream>> {
    let s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    let name = ServerName::try_from("localhost").map_err(io::Error::other)?;
    TlsConnector::from(cfg).connect(name, s).await
}

/// Runs one repetition.
pub fn run(w: Workload, cfg: &Config) -> io::Result<Outcome> {
    let cfg = cfg.clone();
    let (scfg, ccfg) = configs()?;
    let server = move |l| serve(l, scfg);
    let m = match w {
        Workload::Bulk1 => on_two_threads(server, move |addr| async move {
            let mut s = connect(addr, ccfg).await?;
            let t = Instant::now();
            let got = fetch(&mut s, cfg.bulk1_bytes, t + cfg.max_time).await?;
            Ok(Measurement {
                value: mib_per_s(got, t.elapsed().as_secs_f64()),
                unit: "MiB/s",
                note: "TLS 1.3, rustls+ring".into(),
                ..Default::default()
            })
        })?,
        Workload::Bulk100 => on_two_threads(server, move |addr| async move {
            let t = Instant::now();
            let deadline = t + cfg.max_time * 3;
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..100 {
                let n = cfg.bulk100_stream_bytes;
                let ccfg = ccfg.clone();
                set.spawn(async move {
                    let mut s = connect(addr, ccfg).await?;
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
                note: format!("100 TLS conns; {}", spread_note(&times)),
                latencies_us: times,
            })
        })?,
        Workload::ConnectTls => on_two_threads(server, move |addr| async move {
            let t = Instant::now();
            let deadline = t + cfg.max_time;
            let mut lat = Vec::new();
            while lat.len() < cfg.connects && Instant::now() < deadline {
                let t1 = Instant::now();
                let mut s = connect(addr, ccfg.clone()).await?;
                fetch(&mut s, 100, deadline + Duration::from_secs(1)).await?;
                lat.push(us_since(t1));
            }
            Ok(Measurement {
                value: lat.len() as f64 / t.elapsed().as_secs_f64(),
                unit: "conn/s",
                note: "TCP + TLS 1.3 handshake + 100-byte reply".into(),
                latencies_us: lat,
            })
        })?,
        Workload::Rps1Conn | Workload::Rps4Conn => {
            return Ok(Outcome::NotApplicable("no multiplexing on raw TLS"))
        }
        Workload::ConnectH2c => return Ok(Outcome::NotApplicable("cleartext row")),
        _ => return Ok(Outcome::NotBuilt),
    };
    Ok(Outcome::Measured(m))
}
