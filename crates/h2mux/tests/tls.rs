//! HTTP/2 over TLS between our client and our server (rcgen certificates): verified against
//! a private root, insecure mode, and the failures a user must see clearly.

use std::sync::Arc;

use bytes::Bytes;
use h2mux::{tls, Body, Client, Config, Error, Server};
use http::{Request, Response, StatusCode};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

async fn handler(req: Request<Body>) -> Response<Body> {
    let body = req.into_body().collect(1 << 20).await.unwrap_or_default();
    Response::new(Body::from(Bytes::from(
        [b"tls:".as_slice(), &body].concat(),
    )))
}

/// Starts a TLS server for "localhost"; returns its address and its certificate.
async fn start() -> (String, CertificateDer<'static>) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert: CertificateDer<'static> = ck.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()));
    let cfg = tls::server_config(vec![cert.clone()], key).unwrap();
    let server = Server::bind("127.0.0.1:0", Config::default())
        .await
        .unwrap()
        .with_tls(cfg);
    let addr = server.local_addr().unwrap().to_string();
    tokio::spawn(server.serve(handler));
    (addr, cert)
}

#[tokio::test]
async fn verified_client_talks_h2_over_tls() {
    let (addr, cert) = start().await;
    let cfg = tls::client_config_with_roots(&[cert]).unwrap();
    let c = Client::connect_tls(&addr, "localhost", cfg, Config::default())
        .await
        .unwrap();
    let resp = c
        .send(Request::post("/").body(Body::from("hi")).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        &resp.into_body().collect(1024).await.unwrap()[..],
        b"tls:hi"
    );
}

#[tokio::test]
async fn insecure_client_accepts_a_self_signed_server() {
    let (addr, _) = start().await;
    let c = Client::connect_tls(
        &addr,
        "localhost",
        tls::client_config_insecure().unwrap(),
        Config::default(),
    )
    .await
    .unwrap();
    let (status, body) = c.get("/", 1024).await.unwrap();
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"tls:"[..]));
}

#[tokio::test]
async fn wrong_hostname_and_unknown_issuer_fail_clearly() {
    let (addr, cert) = start().await;
    let cfg = tls::client_config_with_roots(&[cert]).unwrap();
    let err = Client::connect_tls(&addr, "example.com", cfg, Config::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Tls(m) if m.contains("handshake")),
        "{err:?}"
    );
    let err = Client::connect_tls(
        &addr,
        "localhost",
        tls::client_config().unwrap(),
        Config::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(&err, Error::Tls(_)), "{err:?}");
}

#[tokio::test]
async fn a_client_without_h2_alpn_is_refused() {
    let (addr, cert) = start().await;
    // A plain rustls client offering only http/1.1.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let err = Client::connect_tls(&addr, "localhost", Arc::new(cfg), Config::default())
        .await
        .unwrap_err();
    assert!(matches!(&err, Error::Tls(_)), "{err:?}");
}

// ---- mutual TLS ----------------------------------------------------------------------------

/// A private CA and a client certificate it signed (for "client-1").
struct ClientPki {
    ca: CertificateDer<'static>,
    client_cert: CertificateDer<'static>,
    client_key: PrivateKeyDer<'static>,
}

fn client_pki() -> ClientPki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "h2mux test client CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["client-1".to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "client-1");
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    ClientPki {
        ca: ca.der().clone(),
        client_cert: cert.der().clone(),
        client_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    }
}

/// A server that verifies client certificates against `ca`; the handler answers with the
/// number of client certificates it saw.
async fn start_mtls(
    ca: &CertificateDer<'static>,
    auth: tls::ClientAuth,
) -> (String, CertificateDer<'static>) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert: CertificateDer<'static> = ck.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()));
    let cfg = tls::server_config_with_client_auth(
        vec![cert.clone()],
        key,
        std::slice::from_ref(ca),
        auth,
    )
    .unwrap();
    let server = Server::bind("127.0.0.1:0", Config::default())
        .await
        .unwrap()
        .with_tls(cfg);
    let addr = server.local_addr().unwrap().to_string();
    tokio::spawn(server.serve(|req: Request<Body>| async move {
        let n = req
            .extensions()
            .get::<h2mux::PeerInfo>()
            .map_or(0, |p| p.client_certificates.len());
        Response::new(Body::from(Bytes::from(format!("client certs: {n}"))))
    }));
    (addr, cert)
}

/// Connects and makes one request; the error of whichever step failed (with TLS 1.3 a
/// refused client certificate is reported after the client's side of the handshake).
async fn one_request(addr: &str, cfg: Arc<rustls::ClientConfig>) -> Result<String, Error> {
    let c = Client::connect_tls(addr, "localhost", cfg, Config::default()).await?;
    let (status, body) = c.get("/", 1024).await?;
    assert_eq!(status, StatusCode::OK);
    Ok(String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn mtls_required_refuses_a_client_without_a_certificate_and_serves_one_with() {
    let pki = client_pki();
    let (addr, server_cert) = start_mtls(&pki.ca, tls::ClientAuth::Required).await;
    let anonymous = tls::client_config_with_roots(std::slice::from_ref(&server_cert)).unwrap();
    let err = one_request(&addr, anonymous).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Tls(_) | Error::ConnectionClosed | Error::Protocol(_)
        ),
        "{err:?}"
    );
    let authenticated = tls::client_config_with_identity(
        &[server_cert],
        vec![pki.client_cert.clone()],
        pki.client_key.clone_key(),
    )
    .unwrap();
    assert_eq!(
        one_request(&addr, authenticated).await.unwrap(),
        "client certs: 1"
    );
}

#[tokio::test]
async fn mtls_refuses_a_certificate_from_another_ca() {
    let pki = client_pki();
    let other = client_pki();
    let (addr, server_cert) = start_mtls(&pki.ca, tls::ClientAuth::Required).await;
    let wrong =
        tls::client_config_with_identity(&[server_cert], vec![other.client_cert], other.client_key)
            .unwrap();
    assert!(one_request(&addr, wrong).await.is_err());
}

#[tokio::test]
async fn mtls_optional_serves_both_and_tells_the_handler() {
    let pki = client_pki();
    let (addr, server_cert) = start_mtls(&pki.ca, tls::ClientAuth::Optional).await;
    let anonymous = tls::client_config_with_roots(std::slice::from_ref(&server_cert)).unwrap();
    assert_eq!(
        one_request(&addr, anonymous).await.unwrap(),
        "client certs: 0"
    );
    let authenticated =
        tls::client_config_with_identity(&[server_cert], vec![pki.client_cert], pki.client_key)
            .unwrap();
    assert_eq!(
        one_request(&addr, authenticated).await.unwrap(),
        "client certs: 1"
    );
}

#[tokio::test]
async fn a_tls_peer_that_stops_reading_is_closed_after_the_send_timeout() {
    // Regression: closing a TLS connection writes close_notify; with a peer that does not
    // read, that write never finished and the connection (and its place) was held forever.
    use tokio::io::AsyncWriteExt;
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert: CertificateDer<'static> = ck.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()));
    let server = Server::bind("127.0.0.1:0", Config::default())
        .await
        .unwrap()
        .with_tls(tls::server_config(vec![cert.clone()], key).unwrap())
        .with_limits(h2mux::ServerLimits {
            send_timeout: Some(std::time::Duration::from_millis(500)),
            ..h2mux::ServerLimits::default()
        });
    let addr = server.local_addr().unwrap().to_string();
    let handle = server.handle();
    tokio::spawn(
        server
            .serve(|_req: Request<Body>| async { Response::new(Body::from(vec![7u8; 32 << 20])) }),
    );
    let connector =
        tokio_rustls::TlsConnector::from(tls::client_config_with_roots(&[cert]).unwrap());
    let sock = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut stream = connector.connect(name, sock).await.unwrap();
    // Preface, SETTINGS (huge stream window), connection window, SETTINGS ACK, GET /.
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend_from_slice(&[0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 4, 0x7f, 0xff, 0xff, 0xff]);
    hello.extend_from_slice(&[0, 0, 4, 8, 0, 0, 0, 0, 0, 0x7f, 0xff, 0, 0]);
    hello.extend_from_slice(&[0, 0, 0, 4, 1, 0, 0, 0, 0]);
    let mut block = Vec::new();
    for (n, v) in [
        (&b":method"[..], &b"GET"[..]),
        (b":scheme", b"https"),
        (b":path", b"/"),
        (b":authority", b"localhost"),
    ] {
        block.extend_from_slice(&[0, n.len() as u8]);
        block.extend_from_slice(n);
        block.push(v.len() as u8);
        block.extend_from_slice(v);
    }
    hello.extend_from_slice(&(block.len() as u32).to_be_bytes()[1..]);
    hello.extend_from_slice(&[1, 0x5, 0, 0, 0, 1]);
    hello.extend_from_slice(&block);
    stream.write_all(&hello).await.unwrap();
    stream.flush().await.unwrap();
    let give_up = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while handle.stats().requests == 0 || handle.stats().connections > 0 {
        assert!(
            tokio::time::Instant::now() < give_up,
            "the connection that does not read was never closed: {:?}",
            handle.stats()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    drop(stream);
}
