//! The catalog of the region: its model, its queries, and the [`Index`] trait
//! that every catalog backend implements.
//!
//! - [`model`]: what the catalog records (institutions and the registry of
//!   their DICOM application entities, patients keyed by issuer and ID and
//!   linked to a master record, studies, series, instances with their
//!   versions) and the rows queries return.
//! - [`query`]: the one place where DICOM matching semantics live (single
//!   value, wildcard, UID list, range, person-name rules, fuzzy matching),
//!   shared by QIDO-RS and C-FIND. [`query::Matcher::matches`] is the
//!   reference semantics; backends translate the same matchers to SQL.
//! - [`sql`]: the SQL text of those matchers for the SQL backends.
//! - [`contract`] (feature `contract-tests`): the test suite every backend passes.
//!
//! Backends: `yunying-index-sqlite` (embedded default) and
//! `yunying-index-postgres` (scale-out), both built on `yunying-index-sql`.

pub mod model;
pub mod query;
pub mod sql;
#[cfg(any(test, feature = "contract-tests"))]
pub mod contract;

pub use model::*;
pub use query::{Filter, Key, Level, Matcher, Query};

use async_trait::async_trait;

/// Errors of a catalog backend.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The catalog cannot be reached or answered with an error.
    #[error("catalog error: {0}")]
    Backend(String),
    /// The record contradicts what the catalog already holds.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A referenced record does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The request is not valid (bad query value, unknown code...).
    #[error("invalid: {0}")]
    Invalid(String),
}

pub type Result<T, E = IndexError> = std::result::Result<T, E>;

/// The catalog. Implementations are cheap to share (`Arc<dyn Index>`) and
/// safe to call from many tasks at once.
#[async_trait]
pub trait Index: Send + Sync + 'static {
    /// The backend's name, for logs and `/healthz` (`sqlite`, `postgres`).
    fn backend(&self) -> &'static str;

    /// Cheap liveness check of the connection.
    async fn ping(&self) -> Result<()>;

    // --- institutions -----------------------------------------------------

    /// Creates an institution or updates its names and AE titles by code.
    /// Each of its AE titles not yet in the application entity registry is
    /// registered for it (may store and query, not retrieve, no address);
    /// titles already registered are left as they are. An invalid AE title
    /// is [`IndexError::Invalid`].
    async fn upsert_institution(&self, new: &NewInstitution) -> Result<Institution>;
    async fn institution_by_code(&self, code: &str) -> Result<Option<Institution>>;
    async fn institutions(&self) -> Result<Vec<Institution>>;

    // --- application entities (the AE registry) ----------------------------

    /// Registers a remote AE, or updates the one with this AE title (its
    /// creation time is kept). The title is stored without padding spaces.
    /// [`IndexError::Invalid`] when [`NewApplicationEntity::validate`] fails,
    /// [`IndexError::NotFound`] when the institution does not exist.
    async fn upsert_application_entity(&self, new: &NewApplicationEntity) -> Result<ApplicationEntity>;
    /// Forgets a remote AE; false when it was not registered.
    async fn remove_application_entity(&self, ae_title: &str) -> Result<bool>;
    /// Every registered AE, by AE title (byte order).
    async fn application_entities(&self) -> Result<Vec<ApplicationEntity>>;
    /// The AE registered under this title (padding spaces ignored), if any.
    async fn application_entity(&self, ae_title: &str) -> Result<Option<ApplicationEntity>>;

    // --- ingest -----------------------------------------------------------

    /// The stored version of this SOP instance with exactly this content, if any
    /// (an identical re-send is a no-op).
    async fn find_version(&self, sop_uid: &str, sha256: &str) -> Result<Option<InstanceRef>>;

    /// Records a batch of instances whose blobs are already durable, in one
    /// transaction. Each item succeeds or fails on its own: a conflicting
    /// item does not stop the others.
    async fn commit(&self, batch: &[NewInstance]) -> Result<Vec<Result<CommitOutcome>>>;

    /// True when some instance version references this blob key.
    async fn blob_key_indexed(&self, key: &str) -> Result<bool>;

    // --- queries (QIDO-RS, C-FIND) ----------------------------------------

    async fn query_studies(&self, q: &Query) -> Result<Vec<StudyRow>>;
    async fn query_series(&self, q: &Query) -> Result<Vec<SeriesRow>>;
    async fn query_instances(&self, q: &Query) -> Result<Vec<InstanceRow>>;

    // --- retrieval ----------------------------------------------------------

    /// The current version of every instance in scope, in study / series
    /// number / instance number order.
    async fn stored_instances(&self, scope: &Scope) -> Result<Vec<StoredInstance>>;

    /// The precomputed metadata (DICOM JSON, with bulk URI placeholders) of
    /// every current instance in scope, in the same order.
    async fn metadata(&self, scope: &Scope) -> Result<Vec<String>>;

    // --- forwarding (routing rules) ---------------------------------------

    /// Claims up to `limit` due forwarding jobs: each is leased until
    /// `lease_until` (a worker that dies leaves them to be claimed again).
    /// Across nodes, a job is claimed by one worker at a time.
    async fn claim_forward_jobs(&self, now: i64, lease_until: i64, limit: u32) -> Result<Vec<ForwardJob>>;

    /// A job was sent: it is removed.
    async fn complete_forward_job(&self, id: i64) -> Result<()>;

    /// A job failed: retried at `retry_at`, or kept as failed when `None`.
    async fn fail_forward_job(&self, id: i64, error: &str, retry_at: Option<i64>) -> Result<()>;

    /// The backlog per destination.
    async fn forward_backlog(&self) -> Result<Vec<ForwardBacklog>>;

    /// Totals, for operations and tests.
    async fn counts(&self) -> Result<Counts>;
}
