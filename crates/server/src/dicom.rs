//! The DICOM listener's wiring: the AEs the configuration declares are
//! registered, the DIMSE acceptor is started over the archive, and so is
//! the forwarding worker of the routing rules.

use std::sync::Arc;

use yunying_archive::{Archive, DimsePolicy, DimseServices};
use yunying_dimse::{Scp, ScpConfig};
use yunying_index::NewApplicationEntity;

use crate::app::anyhow_like::{Error, Result};
use crate::config::{AePolicy, DicomSettings};

/// Registers (or updates) the remote AEs of the configuration.
pub async fn register_configured(archive: &Archive, dicom: &DicomSettings) -> Result<()> {
    for r in &dicom.remotes {
        let institution = archive
            .index()
            .institution_by_code(&r.institution)
            .await?
            .ok_or_else(|| Error(format!("dicom.remote {}: no institution has the code {:?}", r.ae_title, r.institution)))?;
        let p = AePolicy::parse(&r.allow)?;
        archive
            .index()
            .upsert_application_entity(&NewApplicationEntity {
                ae_title: r.ae_title.clone(),
                institution_id: institution.id,
                host: r.host.clone(),
                port: r.port,
                may_store: p.store,
                may_query: p.query,
                may_retrieve: p.retrieve,
                description: r.description.clone(),
            })
            .await
            .map_err(|e| Error(format!("dicom.remote {}: {e}", r.ae_title)))?;
    }
    Ok(())
}

/// Binds the DICOM port (before the archive opens, so the address is known at once).
pub async fn bind(dicom: &DicomSettings) -> Result<Option<tokio::net::TcpListener>> {
    let Some(addr) = dicom.listen else { return Ok(None) };
    let l = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error(format!("cannot listen for DICOM on {addr}: {e}")))?;
    let local = l.local_addr()?;
    println!("yunying: dicom listening on {local} as {}", dicom.ae_title);
    tracing::info!(%local, ae = %dicom.ae_title, "DICOM listening");
    Ok(Some(l))
}

/// Loads the DICOM TLS certificates and binds the TLS port, when configured.
pub async fn bind_tls(dicom: &DicomSettings) -> Result<Option<(tokio::net::TcpListener, tokio_rustls::TlsAcceptor)>> {
    let Some(tls) = &dicom.tls else { return Ok(None) };
    let config = crate::tls::dicom_server_config(&tls.files, tls.client_ca.as_deref())?;
    let l = tokio::net::TcpListener::bind(tls.listen)
        .await
        .map_err(|e| Error(format!("cannot listen for DICOM TLS on {}: {e}", tls.listen)))?;
    let local = l.local_addr()?;
    println!("yunying: dicom tls listening on {local} as {}", dicom.ae_title);
    tracing::info!(%local, ae = %dicom.ae_title, mutual = tls.client_ca.is_some(), "DICOM TLS listening");
    Ok(Some((l, tokio_rustls::TlsAcceptor::from(config))))
}

/// Serves DIMSE over the archive on the plain and/or the TLS listener (one
/// acceptor: the same services and one cap on associations for both).
pub fn start(
    listener: Option<tokio::net::TcpListener>,
    tls: Option<(tokio::net::TcpListener, tokio_rustls::TlsAcceptor)>,
    dicom: &DicomSettings,
    archive: Arc<Archive>,
) {
    if listener.is_none() && tls.is_none() {
        return;
    }
    let mut policy = DimsePolicy::new(&dicom.ae_title);
    policy.accept_unknown_ae = dicom.accept_unknown_ae;
    policy.unknown_may_store = dicom.unknown_ae_allow.store;
    policy.unknown_may_query = dicom.unknown_ae_allow.query;
    policy.unknown_may_retrieve = dicom.unknown_ae_allow.retrieve;
    let mut config = ScpConfig::new(&dicom.ae_title);
    config.check_called_ae = dicom.check_called_ae;
    config.max_associations = dicom.max_associations;
    config.artim_timeout = dicom.artim_timeout;
    config.idle_timeout = dicom.idle_timeout;
    config.max_pdu = dicom.max_pdu;
    config.accept_unknown_sop_classes = dicom.accept_unknown_sop_classes;
    let scp = Scp::new(config, DimseServices::new(archive, policy));
    if let Some((l, acceptor)) = tls {
        tokio::spawn(scp.clone().serve_tls(l, acceptor));
    }
    if let Some(l) = listener {
        tokio::spawn(scp.serve(l));
    }
}

/// Starts the worker that sends what the routing rules queue.
pub async fn start_forwarding(archive: &Arc<Archive>, dicom: &DicomSettings) -> Result<()> {
    for rule in &dicom.forward {
        match archive.index().application_entity(&rule.destination).await? {
            Some(ae) if ae.host.is_some() && ae.port.is_some() => {}
            _ => tracing::warn!(
                destination = %rule.destination,
                "forwarding destination not registered with host and port (yunying ae add): its jobs wait"
            ),
        }
    }
    archive.start_forwarding(&dicom.ae_title);
    Ok(())
}
