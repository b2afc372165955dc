//! Wiring: the one place where concrete backends are named. Opens the
//! catalog and the blob store chosen by the settings, builds the archive and
//! the HTTP application, and serves it until a shutdown signal.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use yunying_archive::{Archive, ArchiveSettings};
use yunying_blob::{BlobStore, FsStore, S3Store, TieredStore};
use yunying_index::{Index, NewInstitution};

use crate::config::{CatalogBackend, Settings, StoreSettings};

/// Opens the catalog the settings name.
pub async fn open_catalog(settings: &Settings) -> anyhow_like::Result<Arc<dyn Index>> {
    let index: Arc<dyn Index> = match &settings.catalog {
        CatalogBackend::Sqlite { path } => Arc::new(yunying_index_sqlite::open(path).await?),
        CatalogBackend::Postgres { url, max_connections } => Arc::new(
            yunying_index_postgres::connect(&yunying_index_postgres::PgOptions {
                url: url.clone(),
                max_connections: *max_connections,
            })
            .await?,
        ),
    };
    Ok(index)
}

/// Opens one store (for S3 no request is made yet: an unreachable bucket
/// shows in the first store or read, and in the logs).
pub fn open_store(settings: &StoreSettings) -> anyhow_like::Result<Arc<dyn BlobStore>> {
    let store: Arc<dyn BlobStore> = match settings {
        StoreSettings::Fs { path } => Arc::new(
            FsStore::open(path)
                .map_err(|e| anyhow_like::Error(format!("cannot open the blob store {}: {e}", path.display())))?,
        ),
        StoreSettings::S3(config) => Arc::new(
            S3Store::open(config).map_err(|e| anyhow_like::Error(format!("cannot open the S3 blob store: {e}")))?,
        ),
    };
    Ok(store)
}

/// Opens a store by its configured name (`local`, `cloud`, or one of
/// `[storage.stores]`).
pub fn open_named_store(settings: &Settings, name: &str) -> anyhow_like::Result<Arc<dyn BlobStore>> {
    let s = settings.storage.store(name).ok_or_else(|| {
        anyhow_like::Error(format!(
            "no store is named {name:?}; the configured stores are {}",
            settings.storage.names().join(", ")
        ))
    })?;
    open_store(s)
}

/// The storage tiers the settings name, and the archive's view of them.
pub fn open_blobs(settings: &Settings) -> anyhow_like::Result<(Arc<dyn BlobStore>, yunying_archive::storage::StorageTiers)> {
    let local = open_store(&settings.storage.local)?;
    let cloud = match &settings.storage.cloud {
        None => None,
        Some(c) => Some(yunying_archive::storage::CloudTier {
            store: open_store(&c.store)?,
            years: c.years,
            copy_concurrency: c.copy_concurrency,
            lifecycle: c.lifecycle,
            lease_seconds: c.lease_seconds,
        }),
    };
    let mirror = match &settings.storage.mirror {
        None => None,
        Some(name) => Some(open_named_store(settings, name)?),
    };
    let mut tiers = yunying_archive::storage::StorageTiers {
        local: Some(local.clone()),
        cloud: cloud.clone(),
        scrub: settings.storage.scrub.clone(),
        cloud_reads: Default::default(),
    };
    let blobs: Arc<dyn BlobStore> = if cloud.is_none() && mirror.is_none() {
        local
    } else {
        let tiered = TieredStore::new(local, cloud.map(|c| c.store), mirror);
        tiers.cloud_reads = tiered.cloud_reads_counter();
        Arc::new(tiered)
    };
    Ok((blobs, tiers))
}

/// Opens everything and returns the archive (creating the default institution if needed).
pub async fn open_archive(settings: &Settings) -> anyhow_like::Result<Arc<Archive>> {
    open_archive_with(settings, true).await
}

/// Like [`open_archive`]; `recover_staging` false leaves the staging area
/// alone (a command run beside a server on the same data directory).
pub async fn open_archive_with(settings: &Settings, recover_staging: bool) -> anyhow_like::Result<Arc<Archive>> {
    std::fs::create_dir_all(&settings.data)
        .map_err(|e| anyhow_like::Error(format!("cannot create the data directory {}: {e}", settings.data.display())))?;
    let index = open_catalog(settings).await?;
    let (blobs, tiers) = open_blobs(settings)?;
    if index.institution_by_code(&settings.default_institution).await?.is_none() {
        index
            .upsert_institution(&NewInstitution {
                code: settings.default_institution.clone(),
                name_zh: settings.default_institution_name.clone(),
                name_en: settings.default_institution.clone(),
                patient_id_issuer: None,
                ae_titles: vec![],
            })
            .await?;
    }
    let mut a = ArchiveSettings::new(&settings.staging_path, settings.default_institution.clone());
    a.fallback_charset = settings.fallback_charset;
    a.max_object_bytes = settings.max_object_bytes;
    a.forward_rules = settings.dicom.forward.clone();
    a.keys = load_keys(settings)?;
    a.node = settings.security.node.clone();
    a.security = settings.security.rules.clone();
    a.derive = settings.derive.clone();
    a.output_cache_bytes = settings.output_cache_bytes;
    a.film_font = settings.film_font.clone();
    a.storage = tiers;
    a.recover_staging = recover_staging;
    Ok(Archive::open(index, blobs, a).await?)
}

/// The key ring the settings name: the key file (made with fresh keys at
/// first start when it is the default one under the data directory) or the
/// external key service's command.
pub fn load_keys(settings: &Settings) -> anyhow_like::Result<Arc<yunying_security::Keyring>> {
    use crate::config::KeySource;
    use yunying_security::Keyring;
    let ring = match &settings.security.keys {
        KeySource::Command(c) => Keyring::load_command(c).map_err(|e| anyhow_like::Error(format!("security.key_command: {e}")))?,
        KeySource::File { path, create } => {
            if !path.exists() && *create {
                let ring = Keyring::generate(settings.security.field_algorithm);
                ring.write_file(path).map_err(|e| anyhow_like::Error(format!("cannot write the key file {}: {e}", path.display())))?;
                tracing::warn!(
                    path = %path.display(),
                    "made a new key file; back it up apart from the data (without it, encrypted fields cannot be read and the audit trail cannot be verified), and in production keep keys in a key service (security.key_command)"
                );
                ring
            } else {
                Keyring::load_file(path).map_err(|e| anyhow_like::Error(format!("security.key_file: {e}")))?
            }
        }
    };
    Ok(Arc::new(ring))
}

/// Cookies are Secure when the platform is reached over HTTPS.
pub fn secure_cookies(settings: &Settings) -> bool {
    settings.security.secure_cookies.unwrap_or_else(|| {
        settings.http_tls.is_some() || settings.public_url.as_deref().is_some_and(|u| u.starts_with("https://"))
    })
}

/// Forwards every stored audit record to the configured syslog server.
pub fn start_audit_forwarding(settings: &Settings, archive: &Archive) {
    let Some(target) = settings.security.syslog.clone() else { return };
    let sink = yunying_audit::SyslogSink::spawn(target.clone(), 10_000);
    let node = settings.security.node.clone();
    archive.audit_trail().set_forwarder(Arc::new(move |s: &yunying_audit::SealedEvent| {
        let xml = yunying_audit::dicom_xml::to_audit_message(s, &node);
        let _ = sink.send(yunying_audit::syslog::format_rfc5424(s, &node, "yunying", &xml));
    }));
    tracing::info!(%target, "audit records are forwarded to syslog");
}

/// Readiness, shared by `/healthz` and start-up.
#[derive(Clone, Default)]
pub struct Health {
    ready: Arc<AtomicBool>,
    archive: Arc<std::sync::OnceLock<Arc<Archive>>>,
}

impl Health {
    pub fn set_ready(&self, archive: Arc<Archive>) {
        let _ = self.archive.set(archive);
        self.ready.store(true, Ordering::SeqCst);
    }
}

async fn healthz(State(h): State<Health>) -> Response {
    if !h.ready.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response();
    }
    let Some(archive) = h.archive.get() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response();
    };
    match archive.index().ping().await {
        Ok(()) => {
            let body = serde_json::json!({
                "status": "ok",
                "catalog": archive.index().backend(),
                "storage": archive.blobs().describe(),
                "version": env!("CARGO_PKG_VERSION"),
            });
            let mut r = (StatusCode::OK, body.to_string()).into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r
        }
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("catalog unavailable: {e}\n")).into_response(),
    }
}

/// The HTTP application around a ready archive.
pub fn router(settings: &Settings, archive: Arc<Archive>, health: Health) -> Router {
    let mut dw = yunying_dicomweb::DicomWeb::new(archive.clone());
    dw.public_url = settings.public_url.as_ref().map(|u| format!("{u}/dicom-web"));
    dw.max_results = settings.max_results;
    dw.stow_parallelism = settings.stow_parallelism;
    let auth = yunying_http_common::auth::AuthLayerState { archive: archive.clone() };
    let wado_uri = dw.clone();
    let api = yunying_api::Api { archive, secure_cookies: secure_cookies(settings) };
    let web = crate::web::WebApp::new(settings.web_dir.as_deref());
    Router::new()
        .nest(
            "/dicom-web",
            yunying_dicomweb::router(dw)
                .layer(axum::middleware::from_fn_with_state(auth.clone(), yunying_http_common::auth::require_credentials)),
        )
        .merge(
            yunying_dicomweb::wado_uri_router(wado_uri)
                .layer(axum::middleware::from_fn_with_state(auth.clone(), yunying_http_common::auth::require_credentials)),
        )
        .merge(yunying_api::router(api, settings.security.login_attempts_per_minute))
        .route("/healthz", get(healthz).with_state(health))
        .fallback(move |req: axum::extract::Request| {
            let web = web.clone();
            async move { crate::web::serve(axum::extract::State(web), req).await }
        })
        .layer(axum::middleware::from_fn(yunying_http_common::auth::security_headers))
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(settings.trusted_proxies.clone()),
            yunying_http_common::auth::resolve_client,
        ))
        .layer(CatchPanicLayer::new())
        .layer(TraceLayer::new_for_http())
}

/// Serves until SIGINT/SIGTERM. Binds first (so the address is known at
/// once, `/healthz` answering 503), then opens the archive and runs
/// `prepare` (demo data) before answering 200.
pub async fn serve<F, Fut>(settings: Settings, prepare: F) -> anyhow_like::Result<()>
where
    F: FnOnce(Arc<Archive>) -> Fut,
    Fut: std::future::Future<Output = anyhow_like::Result<()>>,
{
    // Certificates are read before anything listens: a bad file stops the start.
    let https = match &settings.http_tls {
        Some(files) => Some(tokio_rustls::TlsAcceptor::from(crate::tls::http_server_config(files)?)),
        None => None,
    };
    // The data directory's lock (see `data_lock`): held until the process
    // ends. A filesystem without locks only costs `restore` its check.
    let _data_lock = match crate::data_lock::acquire(&settings.data, "serve") {
        Ok(lock) => Some(lock),
        Err(crate::data_lock::LockError::Unavailable(why)) => {
            tracing::warn!(%why, "the data directory cannot be locked; `yunying restore` will not see that the server runs");
            None
        }
        Err(in_use) => return Err(anyhow_like::Error(in_use.to_string())),
    };
    let listener = tokio::net::TcpListener::bind(settings.http)
        .await
        .map_err(|e| anyhow_like::Error(format!("cannot listen on {}: {e}", settings.http)))?;
    let local: SocketAddr = listener.local_addr().map_err(|e| anyhow_like::Error(e.to_string()))?;
    let health = Health::default();

    // Until the archive is open, only /healthz answers (503).
    let (app_tx, app_rx) = tokio::sync::watch::channel::<Option<Router>>(None);
    let starting = Router::new().route("/healthz", get(healthz).with_state(health.clone())).fallback(|| async {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response()
    });
    let dispatch = tower::service_fn(move |req: axum::extract::Request| {
        let current = app_rx.borrow().clone();
        let starting = starting.clone();
        async move {
            use tower::ServiceExt;
            let app = current.unwrap_or(starting);
            app.oneshot(req).await
        }
    });
    let outer = Router::new().fallback_service(dispatch);
    let server = match https {
        Some(acceptor) => {
            println!("yunying: listening on https://{local}");
            tracing::info!(%local, "listening (HTTPS)");
            tokio::spawn(crate::tls::serve_https(listener, acceptor, outer, shutdown_signal()))
        }
        None => {
            use axum::serve::ListenerExt;
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            println!("yunying: listening on http://{local}");
            tracing::info!(%local, "listening");
            tokio::spawn(async move {
                axum::serve(listener, outer.into_make_service_with_connect_info::<SocketAddr>())
                    .with_graceful_shutdown(shutdown_signal())
                    .await
            })
        }
    };

    let dicom_listener = crate::dicom::bind(&settings.dicom).await?;
    let dicom_tls_listener = crate::dicom::bind_tls(&settings.dicom).await?;

    let archive = open_archive(&settings).await?;
    start_audit_forwarding(&settings, &archive);
    let system = yunying_archive::Caller::system("server");
    let mut e = archive.audit_event(&system, yunying_audit::Action::ApplicationStart, yunying_audit::Outcome::Success);
    e.detail = serde_json::json!({ "version": env!("CARGO_PKG_VERSION"), "catalog": archive.index().backend() });
    archive.audit(e).await;
    crate::accounts::bootstrap_admin(&archive).await?;
    prepare(archive.clone()).await?;
    crate::dicom::register_configured(&archive, &settings.dicom).await?;
    crate::dicom::start(dicom_listener, dicom_tls_listener, &settings.dicom, archive.clone());
    crate::dicom::start_forwarding(&archive, &settings.dicom).await?;
    archive.start_deriving();
    archive.start_storage_jobs();
    let app = router(&settings, archive.clone(), health.clone());
    let _ = app_tx.send(Some(app));
    health.set_ready(archive.clone());
    tracing::info!(
        catalog = archive.index().backend(),
        storage = %archive.blobs().describe(),
        "ready"
    );
    println!("yunying: web app {}", crate::web::WebApp::new(settings.web_dir.as_deref()).describe());
    println!("yunying: ready");
    server
        .await
        .map_err(|e| anyhow_like::Error(e.to_string()))?
        .map_err(|e| anyhow_like::Error(format!("server error: {e}")))?;
    let e = archive.audit_event(&system, yunying_audit::Action::ApplicationStop, yunying_audit::Outcome::Success);
    archive.audit(e).await;
    archive.audit_trail().flush().await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}

/// A minimal error type for the binary: a message for the operator.
pub mod anyhow_like {
    /// An operator-facing error message.
    #[derive(Debug)]
    pub struct Error(pub String);

    impl std::fmt::Display for Error {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }

    impl std::error::Error for Error {}

    pub type Result<T> = std::result::Result<T, Error>;

    macro_rules! from {
        ($($t:ty),*) => {$(
            impl From<$t> for Error {
                fn from(e: $t) -> Self { Error(e.to_string()) }
            }
        )*};
    }
    from!(
        yunying_index::IndexError,
        yunying_archive::ArchiveError,
        yunying_archive::IngestError,
        crate::config::ConfigError,
        yunying_dimse::AssocError,
        std::io::Error
    );
}
