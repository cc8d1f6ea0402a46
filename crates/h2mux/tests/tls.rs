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
