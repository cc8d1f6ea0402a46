//! Shared by the pool's end-to-end tests: rcgen certificates, pools on loopback, payloads
//! with checksums, bounded waiting.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use h2mux_pool::{ClientConfig, ClientPool, Listen, Resolver, ServerConfig, ServerPool, TlsMode};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A self-signed certificate for "localhost" and "pool.test", its server config, and the
/// certificate to trust.
pub struct Certs {
    pub server: Arc<rustls::ServerConfig>,
    pub cert: CertificateDer<'static>,
}

pub fn certs() -> Certs {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "pool.test".into()]).unwrap();
    let cert: CertificateDer<'static> = ck.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()));
    let server = h2mux::tls::server_config(vec![cert.clone()], key).unwrap();
    Certs { server, cert }
}

/// A server pool on 127.0.0.1 (any port).
pub async fn server(max_capacity: usize, certs: &Certs) -> ServerPool {
    ServerPool::new(ServerConfig::new(
        max_capacity,
        certs.server.clone(),
        Listen::Addr("127.0.0.1:0".into()),
    ))
    .await
    .unwrap()
}

/// A server pool on 127.0.0.1 that lets only `allowed` connect.
pub async fn server_allowing(allowed: &str, certs: &Certs) -> ServerPool {
    let mut cfg = ServerConfig::new(16, certs.server.clone(), Listen::Addr("127.0.0.1:0".into()));
    cfg.allowed_ip = Some(allowed.parse().unwrap());
    ServerPool::new(cfg).await.unwrap()
}

/// A client configuration for tests: quick rounds, verified against the test certificate.
pub fn client_config(addr: &str, certs: &Certs) -> ClientConfig {
    let mut c = ClientConfig::new(TlsMode::Verified, "pool.test", Resolver::fixed(addr));
    c.tls_roots = vec![certs.cert.clone()];
    c.min_capacity = 8;
    c.max_capacity = 64;
    c.min_interval = Duration::from_millis(20);
    c.max_interval = Duration::from_millis(200);
    c.backoff_base = Duration::from_millis(20);
    c.backoff_cap = Duration::from_millis(200);
    c
}

pub fn client(addr: &str, certs: &Certs) -> ClientPool {
    ClientPool::new(client_config(addr, certs)).unwrap()
}

/// Takes one stream on the server and the same stream on the client (the ID passed in
/// process, as an application would over its control stream).
pub async fn pair(
    server: &ServerPool,
    client: &ClientPool,
) -> (h2mux_pool::PoolStream, h2mux_pool::PoolStream) {
    let (id, s) = server.incoming_get(Duration::from_secs(10)).await.unwrap();
    let c = client
        .outgoing_get(id, Duration::from_secs(10))
        .await
        .unwrap();
    (s, c)
}

pub async fn setup(server_capacity: usize) -> (ServerPool, ClientPool, Certs) {
    let certs = certs();
    let server = server(server_capacity, &certs).await;
    let client = client(&server.local_addr().unwrap().to_string(), &certs);
    (server, client, certs)
}

/// Waits (polling every 5 ms) until `cond` holds; panics with `what` after `limit`.
pub async fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !cond() {
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {limit:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// FNV-1a over the bytes.
pub fn checksum(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A payload that depends on `seed`, `len` bytes followed by its 8-byte checksum.
pub fn payload(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed ^ 0x9e37_79b9_7f4a_7c15;
    let mut v = Vec::with_capacity(len + 8);
    for _ in 0..len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(x as u8);
    }
    let c = checksum(&v);
    v.extend_from_slice(&c.to_be_bytes());
    v
}

/// Checks a payload made by [`payload`] with the same seed.
pub fn check_payload(seed: u64, got: &[u8]) -> bool {
    got.len() >= 8 && {
        let (body, sum) = got.split_at(got.len() - 8);
        sum == checksum(body).to_be_bytes() && got == payload(seed, body.len()).as_slice()
    }
}

/// A TCP forwarder between a client and a server whose connections the test can cut (both
/// sockets dropped, as when a network path dies) and whose listening can stop.
pub struct Proxy {
    pub addr: String,
    conns: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(target: String) -> Proxy {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let conns: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>> = Default::default();
        let c2 = conns.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut a, _)) = l.accept().await {
                let target = target.clone();
                let h = tokio::spawn(async move {
                    if let Ok(mut b) = tokio::net::TcpStream::connect(&target).await {
                        let _ = a.set_nodelay(true);
                        let _ = b.set_nodelay(true);
                        let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
                    }
                });
                c2.lock().unwrap().push(h);
            }
        });
        Proxy {
            addr,
            conns,
            accept,
        }
    }

    /// Drops every forwarded connection (both sockets close).
    pub fn cut(&self) {
        for h in self.conns.lock().unwrap().drain(..) {
            h.abort();
        }
    }

    /// Connections forwarded and not cut.
    pub fn open(&self) -> usize {
        let mut c = self.conns.lock().unwrap();
        c.retain(|h| !h.is_finished());
        c.len()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}
