//! TLS for the HTTP listener (HTTPS), the DICOM TLS listener (PS3.15 B.9,
//! BCP 195) and outgoing DICOM associations (`yunying echo`, `pull`).
//!
//! Certificates and keys are PEM files, read once at start (a rotation is
//! a restart). rustls on the ring provider, TLS 1.2 and 1.3 only, with
//! rustls' default cipher suites (AEAD with forward secrecy only). National
//! (TLCP / SM2-SM3-SM4) suites are not offered here: a certified gateway in
//! front terminates them (see `docs/configuration.md`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::app::anyhow_like::{Error, Result};
use crate::config::TlsFiles;

/// Longest wait for a client's TLS handshake on the HTTPS listener.
const HTTPS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// `Strict-Transport-Security` on every HTTPS response (one year).
const HSTS: HeaderValue = HeaderValue::from_static("max-age=31536000");

/// The ring provider, named explicitly: the process-wide default would be
/// ambiguous if another crate ever enabled a second provider.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn pem_error(path: &Path, what: &str, e: pem::Error) -> Error {
    match e {
        pem::Error::NoItemsFound => Error(format!("{}: no {what} found in this PEM file", path.display())),
        pem::Error::Io(e) => Error(format!("cannot read {} ({what}): {e}", path.display())),
        e => Error(format!("{}: not a valid PEM file of {what}: {e}", path.display())),
    }
}

/// Reads a PEM chain (the leaf first, then intermediates).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(path, "certificate", e))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, "certificate", e))?;
    if certs.is_empty() {
        return Err(pem_error(path, "certificate", pem::Error::NoItemsFound));
    }
    Ok(certs)
}

/// Reads the first private key (PKCS#8, PKCS#1 RSA or SEC1 EC) of a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let key = PrivateKeyDer::from_pem_file(path).map_err(|e| pem_error(path, "private key (PKCS#8, RSA or EC)", e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(path)
            && m.permissions().mode() & 0o004 != 0
        {
            tracing::warn!(file = %path.display(), "the private key is readable by every user: chmod 600 (or 640 for a group)");
        }
    }
    Ok(key)
}

/// Reads the certificates of a PEM file as trust anchors.
pub fn load_roots(path: &Path) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for c in load_certs(path)? {
        roots
            .add(c)
            .map_err(|e| Error(format!("{}: a certificate cannot be used as a trust anchor: {e}", path.display())))?;
    }
    Ok(roots)
}

fn key_error(files: &TlsFiles, e: rustls::Error) -> Error {
    match e {
        rustls::Error::InconsistentKeys(_) => Error(format!(
            "the private key {} does not belong to the certificate {}",
            files.key.display(),
            files.cert.display()
        )),
        e => Error(format!("certificate {} with key {}: {e}", files.cert.display(), files.key.display())),
    }
}

/// The HTTPS listener's configuration: no client certificates, ALPN h2
/// then http/1.1.
pub fn http_server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>> {
    let (certs, key) = (load_certs(&files.cert)?, load_key(&files.key)?);
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| key_error(files, e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The DICOM TLS listener's configuration; with `client_ca`, clients must
/// present a certificate that this CA signed (mutual TLS).
pub fn dicom_server_config(files: &TlsFiles, client_ca: Option<&Path>) -> Result<Arc<ServerConfig>> {
    let (certs, key) = (load_certs(&files.cert)?, load_key(&files.key)?);
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error(format!("TLS: {e}")))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(load_roots(ca)?), provider())
                .build()
                .map_err(|e| Error(format!("{}: cannot verify clients with it: {e}", ca.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    Ok(Arc::new(builder.with_single_cert(certs, key).map_err(|e| key_error(files, e))?))
}

/// A client configuration trusting the CAs of `ca`, presenting `identity`
/// (certificate chain, key) when given.
pub fn client_config(ca: &Path, identity: Option<&TlsFiles>) -> Result<Arc<ClientConfig>> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error(format!("TLS: {e}")))?
        .with_root_certificates(load_roots(ca)?);
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some(files) => builder
            .with_client_auth_cert(load_certs(&files.cert)?, load_key(&files.key)?)
            .map_err(|e| key_error(files, e))?,
    };
    Ok(Arc::new(config))
}

/// The name a peer's certificate must carry, from a host name or an IP address.
pub fn server_name(host: &str) -> Result<ServerName<'static>> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string()).map_err(|_| Error(format!("{host:?} is not a valid TLS server name")))
}

/// Serves `app` over HTTPS (HTTP/1.1 and HTTP/2 by ALPN) on `listener`
/// until `shutdown` completes, then waits for open connections to finish,
/// as `axum::serve(..).with_graceful_shutdown` does for plain HTTP. Each
/// request carries `ConnectInfo<SocketAddr>`; each response gets
/// `Strict-Transport-Security`.
pub async fn serve_https(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(x) => x,
                Err(e) => {
                    // As axum: out of file descriptors and the like pass.
                    tracing::warn!(error = %e, "HTTPS accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, app, watcher) = (acceptor.clone(), app.clone(), graceful.watcher());
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HTTPS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "HTTPS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "HTTPS handshake timed out");
                    return;
                }
            };
            let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                let app = app.clone();
                async move {
                    use tower::ServiceExt;
                    let mut rsp = app.oneshot(req).await?;
                    rsp.headers_mut().insert(header::STRICT_TRANSPORT_SECURITY, HSTS);
                    Ok::<_, Infallible>(rsp)
                }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection(TokioIo::new(tls), service);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(%peer, error = %e, "HTTPS connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
