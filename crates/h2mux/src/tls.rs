//! TLS for h2mux (RFC 9113 §3.2, §9.2): rustls with the ring provider, ALPN `h2` only.
//!
//! * Servers load a certificate chain and a private key from PEM files
//!   ([`server_config_from_pem`]) or take a ready `rustls::ServerConfig`.
//! * Clients verify the server against the public roots of `webpki-roots` by default
//!   ([`client_config`]), against extra roots of the caller ([`client_config_with_roots`]),
//!   or not at all ([`client_config_insecure`], for self-signed test servers — the handshake
//!   is still encrypted and its signatures still checked).
//! * A connection that does not negotiate `h2` is refused with [`Error::Tls`].
//! * Mutual TLS: a server may verify client certificates against its own roots
//!   ([`server_config_with_client_auth`], [`ClientAuth`]): required (a client without a
//!   valid certificate fails the handshake) or optional (verified when presented; the
//!   handler sees them in [`crate::PeerInfo::client_certificates`]). Clients present a
//!   certificate with [`client_config_with_identity`].

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::error::Error;

/// The ALPN protocol id of HTTP/2 over TLS.
pub const ALPN_H2: &[u8] = b"h2";

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Tls(format!("{what}: {e}"))
}

/// Reads every certificate of a PEM file (at least one).
pub fn certificates_from_pem(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| tls_err(&format!("reading certificates from {}", path.display()), e))?
        .collect::<Result<_, _>>()
        .map_err(|e| tls_err(&format!("parsing certificates in {}", path.display()), e))?;
    if certs.is_empty() {
        return Err(Error::Tls(format!("no certificate in {}", path.display())));
    }
    Ok(certs)
}

/// Reads the private key of a PEM file.
pub fn private_key_from_pem(path: &Path) -> Result<PrivateKeyDer<'static>, Error> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| tls_err(&format!("reading the private key {}", path.display()), e))
}

/// A server configuration from a PEM certificate chain and a PEM private key.
pub fn server_config_from_pem(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, Error> {
    server_config(certificates_from_pem(cert)?, private_key_from_pem(key)?)
}

/// A server configuration from DER certificates and key.
pub fn server_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ServerConfig>, Error> {
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err("TLS versions", e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| tls_err("certificate and key", e))?;
    cfg.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Arc::new(cfg))
}

/// Whether a mutual-TLS server insists on a client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// A client without a certificate signed by the roots fails the handshake.
    Required,
    /// A client may present no certificate; one it presents must verify.
    Optional,
}

/// A server configuration that verifies client certificates against `client_roots` (DER),
/// e.g. a private CA (mutual TLS).
pub fn server_config_with_client_auth(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_roots: &[CertificateDer<'static>],
    auth: ClientAuth,
) -> Result<Arc<rustls::ServerConfig>, Error> {
    let store = root_store(client_roots)?;
    let mut verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(store), provider());
    if auth == ClientAuth::Optional {
        verifier = verifier.allow_unauthenticated();
    }
    let verifier = verifier
        .build()
        .map_err(|e| tls_err("client certificate verifier", e))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err("TLS versions", e))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| tls_err("certificate and key", e))?;
    cfg.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Arc::new(cfg))
}

/// [`server_config_with_client_auth`] from PEM files: the server's chain and key, and the
/// roots client certificates must chain to.
pub fn server_config_from_pem_with_client_auth(
    cert: &Path,
    key: &Path,
    client_ca: &Path,
    auth: ClientAuth,
) -> Result<Arc<rustls::ServerConfig>, Error> {
    server_config_with_client_auth(
        certificates_from_pem(cert)?,
        private_key_from_pem(key)?,
        &certificates_from_pem(client_ca)?,
        auth,
    )
}

/// A client configuration verifying servers against `roots` (DER) and presenting the
/// certificate chain `certs` with its `key` when the server asks (mutual TLS).
pub fn client_config_with_identity(
    roots: &[CertificateDer<'static>],
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ClientConfig>, Error> {
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err("TLS versions", e))?
        .with_root_certificates(root_store(roots)?)
        .with_client_auth_cert(certs, key)
        .map_err(|e| tls_err("client certificate and key", e))?;
    cfg.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Arc::new(cfg))
}

/// A client configuration verifying servers against the public web roots.
pub fn client_config() -> Result<Arc<rustls::ClientConfig>, Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    finish_client(roots)
}

/// A client configuration verifying servers against `roots` (DER), e.g. a private CA.
pub fn client_config_with_roots(
    roots: &[CertificateDer<'static>],
) -> Result<Arc<rustls::ClientConfig>, Error> {
    finish_client(root_store(roots)?)
}

/// A root store of `roots` (DER).
fn root_store(roots: &[CertificateDer<'static>]) -> Result<rustls::RootCertStore, Error> {
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store
            .add(r.clone())
            .map_err(|e| tls_err("adding a root certificate", e))?;
    }
    Ok(store)
}

fn finish_client(roots: rustls::RootCertStore) -> Result<Arc<rustls::ClientConfig>, Error> {
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err("TLS versions", e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Arc::new(cfg))
}

/// A client configuration that accepts any server certificate (encrypted, not
/// authenticated): for self-signed test servers only.
pub fn client_config_insecure() -> Result<Arc<rustls::ClientConfig>, Error> {
    let p = provider();
    let mut cfg = rustls::ClientConfig::builder_with_provider(p.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err("TLS versions", e))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(p)))
        .with_no_client_auth();
    cfg.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Arc::new(cfg))
}

/// Accepts any certificate but still checks the handshake signatures.
#[derive(Debug)]
struct AcceptAnyCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Refuses a session that did not negotiate `h2`.
pub fn check_alpn(negotiated: Option<&[u8]>) -> Result<(), Error> {
    match negotiated {
        Some(ALPN_H2) => Ok(()),
        Some(other) => Err(Error::Tls(format!(
            "peer negotiated ALPN {:?}, not h2",
            String::from_utf8_lossy(other)
        ))),
        None => Err(Error::Tls("peer did not negotiate ALPN h2".into())),
    }
}
