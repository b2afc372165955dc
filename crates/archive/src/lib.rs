//! The `Archive` context: the only place business rules live.
//!
//! Every way data enters (STOW-RS, C-STORE, imports) ends in
//! [`Archive::ingest`]: the object is staged to disk and fsync'd, its header
//! parsed (bounded, stopping short of pixel data), validated, attributed to
//! an institution and a patient, linked durably into the blob store, and
//! indexed by the group committer in one transaction — and only then is
//! success answered. Every way data leaves reads through the archive too.
//!
//! Main types: [`Archive`] (built once, shared as `Arc<Archive>`),
//! [`ArchiveSettings`], [`Staged`] (an object being received),
//! [`IngestOutcome`] and [`IngestError`] (with its DICOM status).

pub mod audit;
mod committer;
pub mod journal;
mod rebuild;
mod access;
pub mod identity;
mod dimse_services;
mod error;
mod forward;
pub mod derive;
pub mod film;
mod output_cache;
mod transcode;
mod ingest;
pub mod personal_data;
pub mod keys;
pub mod policy;
pub mod render;
pub mod retention;
mod query_retrieve;
mod retrieve;
mod staging;
pub mod storage;

use std::path::PathBuf;
use std::sync::Arc;

use yunying_blob::BlobStore;
use yunying_dicom::parse::ParseOptions;
use yunying_index::{Index, Institution};

pub use access::{Caller, StudyFacts};
pub use audit::AuditTrail;
pub use identity::SecuritySettings;
pub use dimse_services::{DimsePeer, DimsePolicy, DimseServices};
pub use forward::ForwardRule;
pub use derive::DeriveSettings;
pub use output_cache::CacheStats;
pub use error::{ArchiveError, IngestError, IngestErrorKind, status};
pub use yunying_blob::BlobError;
pub use ingest::{IngestOutcome, IngestSource, IngestStatus};
pub use rebuild::{ReindexFacts, ReindexPrepared};
pub use query_retrieve::{FindResults, QR_MAX_RETRIEVE_INSTANCES, QrError, QrLevel, QrModel};
pub use retrieve::{FrameData, METADATA_BASE_PLACEHOLDER};
pub use staging::Staged;

/// How the archive behaves; built by the server from its configuration.
#[derive(Debug, Clone)]
pub struct ArchiveSettings {
    /// Where objects being received are staged (must be on durable storage;
    /// on the same filesystem as a filesystem blob store, links are free).
    pub staging_dir: PathBuf,
    /// Code of the institution objects are attributed to when the sender's
    /// identity does not name one.
    pub default_institution: String,
    /// Encoding of non-ASCII text in objects that declare no Specific
    /// Character Set (GB18030 in China).
    pub fallback_charset: &'static encoding_rs::Encoding,
    /// Limits of the header parser.
    pub parse: ParseOptions,
    /// Largest object accepted, in bytes.
    pub max_object_bytes: u64,
    /// Most instances indexed in one catalog transaction.
    pub commit_batch: usize,
    /// Routing rules: where received instances are forwarded.
    pub forward_rules: Vec<ForwardRule>,
    /// The key ring: field encryption, blind indexes, the audit chain.
    pub keys: Arc<yunying_security::Keyring>,
    /// This node's name: its audit chain.
    pub node: String,
    /// Logins, sessions, lockout, second factor.
    pub security: identity::SecuritySettings,
    /// The streaming copy made after ingest.
    pub derive: derive::DeriveSettings,
    /// Bytes of rendered images and transcoded frames kept in memory.
    pub output_cache_bytes: usize,
    /// The font of film text (a CJK one); `None` looks in the usual places.
    pub film_font: Option<PathBuf>,
    /// The storage tiers and scrubbing.
    pub storage: storage::StorageTiers,
    /// Finish or discard what an interrupted run left in the staging area
    /// when the archive opens. Off for a command run beside a server on the
    /// same data directory: the server's objects being received are there.
    pub recover_staging: bool,
}

impl ArchiveSettings {
    pub fn new(staging_dir: impl Into<PathBuf>, default_institution: impl Into<String>) -> Self {
        ArchiveSettings {
            staging_dir: staging_dir.into(),
            default_institution: default_institution.into(),
            fallback_charset: encoding_rs::GB18030,
            parse: ParseOptions::default(),
            max_object_bytes: 16 << 30,
            commit_batch: 256,
            forward_rules: Vec::new(),
            // An ephemeral ring: the server always sets the one from its key file.
            keys: Arc::new(yunying_security::Keyring::generate(Default::default())),
            node: "node".into(),
            security: identity::SecuritySettings::default(),
            derive: derive::DeriveSettings::default(),
            output_cache_bytes: 256 << 20,
            film_font: None,
            storage: storage::StorageTiers::default(),
            recover_staging: true,
        }
    }
}

/// The archive context.
pub struct Archive {
    /// The catalog.
    index: Arc<dyn Index>,
    /// Where original objects live.
    blobs: Arc<dyn BlobStore>,
    settings: ArchiveSettings,
    /// The institution objects default to.
    default_institution: Institution,
    /// Serialises catalog writes into batched transactions.
    committer: committer::Committer,
    /// The member institutions, as last read from the catalog (refreshed
    /// when a look-up misses: institutions are added, never removed).
    institutions: std::sync::RwLock<Vec<Institution>>,
    /// When the cache was last re-read (misses re-read at most every few seconds).
    institutions_read: std::sync::Mutex<std::time::Instant>,
    /// Wakes the forwarding worker when jobs were queued.
    forward_wakeup: tokio::sync::Notify,
    /// Wakes the derive worker when instances were marked.
    derive_wakeup: tokio::sync::Notify,
    /// Wakes the cloud copy worker when objects were marked.
    cloud_wakeup: tokio::sync::Notify,
    /// What this node's cloud copy worker did since start.
    cloud_counters: storage::NodeCounters,
    /// Rendered images and transcoded frames, briefly.
    output_cache: output_cache::OutputCache,
    /// Forwarding destinations found unreachable: until when (unix ms) new
    /// jobs for them wait without another attempt, and why.
    forward_down: std::sync::Mutex<std::collections::HashMap<String, (i64, String)>>,
    /// This node's audit chain.
    audit: Arc<audit::AuditTrail>,
    /// Institution and patient of studies, for access checks.
    study_facts_cache: std::sync::Mutex<std::collections::HashMap<String, access::StudyFacts>>,
    /// Authenticated credentials, briefly (see `identity`).
    credential_cache: identity::CredentialCache,
}

impl Archive {
    /// Builds the archive: checks the default institution exists, prepares
    /// the staging area and finishes or discards what a crash left there.
    pub async fn open(
        index: Arc<dyn Index>,
        blobs: Arc<dyn BlobStore>,
        settings: ArchiveSettings,
    ) -> Result<Arc<Archive>, ArchiveError> {
        let default_institution = index
            .institution_by_code(&settings.default_institution)
            .await?
            .ok_or_else(|| {
                ArchiveError::Config(format!(
                    "the default institution {:?} does not exist in the catalog",
                    settings.default_institution
                ))
            })?;
        staging::prepare(&settings.staging_dir).map_err(|e| {
            ArchiveError::Config(format!("cannot prepare the staging area {}: {e}", settings.staging_dir.display()))
        })?;
        let committer = committer::Committer::start(
            index.clone(),
            blobs.clone(),
            journal::JournalWriter::new(&settings.node),
            settings.commit_batch,
        );
        let institutions = std::sync::RwLock::new(index.institutions().await?);
        let audit = audit::AuditTrail::start(index.clone(), settings.keys.clone(), &settings.node).await?;
        let output_cache = output_cache::OutputCache::new(settings.output_cache_bytes);
        let archive = Arc::new(Archive {
            index,
            blobs,
            settings,
            default_institution,
            committer,
            institutions,
            institutions_read: std::sync::Mutex::new(std::time::Instant::now()),
            forward_wakeup: tokio::sync::Notify::new(),
            derive_wakeup: tokio::sync::Notify::new(),
            cloud_wakeup: tokio::sync::Notify::new(),
            cloud_counters: storage::NodeCounters::default(),
            output_cache,
            forward_down: std::sync::Mutex::new(std::collections::HashMap::new()),
            audit,
            study_facts_cache: std::sync::Mutex::new(std::collections::HashMap::new()),
            credential_cache: identity::CredentialCache::default(),
        });
        let recovered = if archive.settings.recover_staging { archive.recover().await? } else { Recovered::default() };
        if recovered.finished + recovered.discarded > 0 {
            tracing::warn!(
                finished = recovered.finished,
                discarded = recovered.discarded,
                "recovered objects left in the staging area by an interrupted run"
            );
        }
        Ok(archive)
    }

    /// The catalog (for queries that need no business rule).
    pub fn index(&self) -> &Arc<dyn Index> {
        &self.index
    }

    /// This node's audit trail.
    pub fn audit_trail(&self) -> &Arc<audit::AuditTrail> {
        &self.audit
    }

    /// The blob store.
    pub fn blobs(&self) -> &Arc<dyn BlobStore> {
        &self.blobs
    }

    pub fn settings(&self) -> &ArchiveSettings {
        &self.settings
    }

    pub fn default_institution(&self) -> &Institution {
        &self.default_institution
    }

    /// The first institution matching `pred`, from the cache; on a miss the
    /// catalog is re-read (at most every 5 seconds, so that objects naming
    /// unknown issuers do not query it each time).
    /// With `always_reread`, a miss always re-reads (for look-ups by id,
    /// which must not fail for an institution created a moment ago).
    pub async fn find_institution(
        &self,
        pred: impl Fn(&Institution) -> bool,
        always_reread: bool,
    ) -> Result<Option<Institution>, ArchiveError> {
        if let Some(i) = self.institutions.read().expect("institution cache").iter().find(|i| pred(i)) {
            return Ok(Some(i.clone()));
        }
        {
            let mut last = self.institutions_read.lock().expect("institution cache");
            if !always_reread && last.elapsed() < std::time::Duration::from_secs(5) {
                return Ok(None);
            }
            *last = std::time::Instant::now();
        }
        let fresh = self.index.institutions().await?;
        let found = fresh.iter().find(|i| pred(i)).cloned();
        *self.institutions.write().expect("institution cache") = fresh;
        Ok(found)
    }
}

/// What start-up recovery did with the staging area.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    pub finished: usize,
    pub discarded: usize,
}
