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
//! - [`storage`]: the cloud copy queue, job leases, storage tasks
//!   (migrations, scrubbing) and damaged objects.
//! - [`sql`]: the SQL text of those matchers for the SQL backends.
//! - [`retention`]: the retention rule (art. 29 of the 2013 medical record
//!   rules) and [`lifecycle`]: encounters, legal holds, the expiry report
//!   and the approved deletion workflow as the catalog records them.
//! - [`contract`] (feature `contract-tests`): the test suite every backend passes.
//!
//! Backends: `yunying-index-sqlite` (embedded default) and
//! `yunying-index-postgres` (scale-out), both built on `yunying-index-sql`.

pub mod directory;
pub mod model;
pub mod lifecycle;
pub mod retention;

pub mod query;
pub mod sql;
pub mod storage;
#[cfg(any(test, feature = "contract-tests"))]
pub mod contract;

pub use directory::*;
pub use model::*;
pub use storage::*;
pub use lifecycle::*;
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
    /// How many studies match, ignoring `limit` and `offset` (a study list's total).
    async fn count_studies(&self, q: &Query) -> Result<u64>;
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

    // --- derived data (streaming copies) ----------------------------------

    /// Claims up to `limit` current instances whose derived copy is wanted
    /// and due, oldest first, each leased until `lease_until`. Across nodes,
    /// an instance is claimed by one worker at a time.
    async fn claim_derive(&self, now: i64, lease_until: i64, limit: u32) -> Result<Vec<DeriveTask>>;

    /// Records how a claimed task ended.
    async fn finish_derive(&self, id: i64, outcome: &DeriveOutcome) -> Result<()>;

    /// Marks the current instances in `scope` (every one when `None`) whose
    /// series modality is one of `modalities` as wanting their derived copy
    /// again, due now; returns how many were marked.
    async fn request_derive(&self, scope: Option<&Scope>, modalities: &[String], now: i64) -> Result<u64>;

    /// The derive queue's counts.
    async fn derive_backlog(&self) -> Result<DeriveBacklog>;

    /// Totals, for operations and tests.
    async fn counts(&self) -> Result<Counts>;

    // --- storage tiers and their jobs (see `storage`) -------------------------

    /// Claims up to `limit` objects whose cloud copy is wanted and due,
    /// oldest first, each leased until `lease_until`. Across nodes, an
    /// object is claimed by one worker at a time.
    async fn claim_cloud_copies(&self, now: i64, lease_until: i64, limit: u32) -> Result<Vec<CloudCopyTask>>;
    /// Records how a claimed copy ended.
    async fn finish_cloud_copy(&self, id: i64, outcome: &CloudCopyOutcome) -> Result<()>;
    /// Marks for a cloud copy every object not yet wanted, copied or given
    /// up on whose study date is `since_study_date` (YYYYMMDD) or later, or
    /// unknown; with `retry_failed`, objects given up on are retried too.
    /// Returns how many were marked. (A cloud tier added to an archive
    /// that already holds data.)
    async fn request_cloud_copies(&self, since_study_date: &str, retry_failed: bool, now: i64) -> Result<u64>;
    /// Up to `limit` objects in the cloud tier whose study date is before
    /// `before_study_date` (YYYYMMDD), with row ids above `after_id`, in id
    /// order: the lifecycle job removes them.
    async fn cloud_expired(&self, before_study_date: &str, after_id: i64, limit: u32) -> Result<Vec<BlobRecord>>;
    /// The lifecycle job removed these objects from the cloud tier.
    async fn mark_cloud_removed(&self, ids: &[i64], at: i64) -> Result<()>;
    /// The cloud copy queue's counts.
    async fn cloud_backlog(&self) -> Result<CloudBacklog>;

    /// Every stored object (all versions) with a row id above `after_id`
    /// and at most `up_to_id`, in id order, at most `limit`.
    async fn blob_records(&self, after_id: i64, up_to_id: i64, limit: u32) -> Result<Vec<BlobRecord>>;
    /// The highest instance row id (0 when empty).
    async fn max_instance_id(&self) -> Result<i64>;

    /// Takes or renews the lease of a job that runs on one node at a time:
    /// true when `holder` holds it until `until` (it was free, expired, or
    /// already held by `holder`).
    async fn try_lease(&self, name: &str, holder: &str, now: i64, until: i64) -> Result<bool>;
    /// Gives a lease up (when held by `holder`).
    async fn release_lease(&self, name: &str, holder: &str) -> Result<()>;

    /// Starts a storage task (state running, cursor 0, extent `last_id`).
    async fn create_storage_task(&self, kind: &str, source: &str, target: Option<&str>, last_id: i64, now: i64) -> Result<StorageTask>;
    /// Saves a task's progress and state.
    async fn save_storage_task(&self, task: &StorageTask) -> Result<()>;
    /// Tasks of a kind (every kind when `None`), newest first, at most `limit`.
    async fn storage_tasks(&self, kind: Option<&str>, limit: u32) -> Result<Vec<StorageTask>>;

    /// Records a damaged or missing object (`id` and `resolved_*` are ignored).
    async fn record_blob_problem(&self, p: &BlobProblem) -> Result<()>;
    /// Marks the open problems of this key in this store resolved.
    async fn resolve_blob_problems(&self, store: &str, blob_key: &str, resolution: &str, at: i64) -> Result<u64>;
    /// Open problems, newest first, at most `limit`; and how many are open.
    async fn open_blob_problems(&self, limit: u32) -> Result<(Vec<BlobProblem>, i64)>;

    // --- institutions' reach ----------------------------------------------

    /// Marks an institution as regional (the consultation centre: its
    /// radiologists read the whole region) or not.
    async fn set_institution_regional(&self, id: yunying_util::InstitutionId, regional: bool) -> Result<()>;
    /// The regional institutions.
    async fn regional_institutions(&self) -> Result<Vec<yunying_util::InstitutionId>>;

    // --- users and sessions -------------------------------------------------

    /// [`IndexError::Conflict`] when the username is taken.
    async fn create_user(&self, new: &NewUser) -> Result<User>;
    async fn user_by_username(&self, username: &str) -> Result<Option<User>>;
    async fn user_by_id(&self, id: i64) -> Result<Option<User>>;
    /// Every user, by username.
    async fn users(&self) -> Result<Vec<User>>;
    /// Applies a change; [`IndexError::NotFound`] for an unknown id.
    async fn change_user(&self, id: i64, change: &UserChange) -> Result<User>;
    /// Counts a failed login atomically; locks the account until
    /// `lock_until` when the count reaches `max_failures`. Returns the user
    /// as it is now.
    async fn record_login_failure(&self, id: i64, max_failures: i64, lock_until: i64) -> Result<User>;
    /// A successful login: clears the counter and the lock.
    async fn record_login_success(&self, id: i64, at: i64) -> Result<()>;
    /// Records that a TOTP step was used; false when this step (or a later
    /// one) was used already (a replayed code), across nodes.
    async fn use_totp_step(&self, id: i64, step: i64) -> Result<bool>;

    async fn create_session(&self, s: &Session) -> Result<()>;
    async fn session(&self, id_hash: &str) -> Result<Option<Session>>;
    /// Records activity (for the idle timeout).
    async fn touch_session(&self, id_hash: &str, at: i64) -> Result<()>;
    async fn end_session(&self, id_hash: &str) -> Result<()>;
    /// Ends every session of a user (password change, disabling, unlock by an administrator).
    async fn end_user_sessions(&self, user_id: i64) -> Result<u64>;

    // --- machine credentials ------------------------------------------------

    /// [`IndexError::Conflict`] when the public id is taken.
    async fn create_credential(&self, new: &NewCredential) -> Result<Credential>;
    /// The credential whose secret has this hash (revoked and expired ones included).
    async fn credential_by_secret(&self, secret_hash: &str) -> Result<Option<Credential>>;
    async fn credential_by_public_id(&self, public_id: &str) -> Result<Option<Credential>>;
    /// Tokens and clients (not the access tokens issued to clients), newest first.
    async fn credentials(&self) -> Result<Vec<Credential>>;
    /// Revokes a credential and whatever was issued from it; false when unknown or already revoked.
    async fn revoke_credential(&self, id: i64, at: i64) -> Result<bool>;
    async fn touch_credential(&self, id: i64, at: i64) -> Result<()>;

    // --- grants ---------------------------------------------------------------

    async fn create_grant(&self, new: &NewGrant) -> Result<Grant>;
    /// Active grants (not revoked, not expired at `now`) to this user or institution.
    async fn active_grants(&self, user_id: Option<i64>, institution_id: Option<yunying_util::InstitutionId>, now: i64) -> Result<Vec<Grant>>;
    /// Every grant on a study, newest first.
    async fn study_grants(&self, study_uid: &str) -> Result<Vec<Grant>>;
    async fn revoke_grant(&self, id: i64, at: i64) -> Result<bool>;

    // --- patients' personal data (encrypted) ----------------------------------

    /// Master patient ids holding a secret of this kind with this blind index.
    async fn patients_by_secret(&self, kind: &str, blind_index: &str) -> Result<Vec<i64>>;
    /// The secrets held for a master patient.
    async fn patient_secrets(&self, patient_id: i64) -> Result<Vec<PatientSecret>>;
    /// Every secret as (row id, kind, ciphertext, blind index), in id order from `after`,
    /// for key rotation.
    async fn secrets_page(&self, after: i64, limit: u32) -> Result<Vec<(i64, PatientSecret)>>;
    /// Replaces one secret's ciphertext and blind index (key rotation).
    async fn rewrite_secret(&self, row_id: i64, ciphertext: &str, blind_index: &str) -> Result<()>;

    // --- the audit trail ----------------------------------------------------

    /// Appends sealed rows and moves the chain's anchor, in one transaction.
    /// [`IndexError::Conflict`] when a position is taken (another writer on the same chain).
    async fn append_audit(&self, rows: &[AuditRow], anchor: &AuditAnchor) -> Result<()>;
    /// The newest row of a chain.
    async fn audit_last(&self, chain: &str) -> Result<Option<AuditRow>>;
    /// Every chain's anchor.
    async fn audit_anchors(&self) -> Result<Vec<AuditAnchor>>;
    /// The names of every chain that has records.
    async fn audit_chain_names(&self) -> Result<Vec<String>>;
    /// Rows of one chain after `after_seq`, in order (for verification).
    async fn audit_chain(&self, chain: &str, after_seq: i64, limit: u32) -> Result<Vec<AuditRow>>;
    /// A search, newest first.
    async fn audit_search(&self, q: &AuditQuery) -> Result<Vec<AuditRow>>;

    // --- retention, legal holds, approved deletion (see `retention`, `lifecycle`) ---

    /// Records a visit, or updates the one with this number at the
    /// institution (creating the patient when unknown), gives its class to
    /// the studies that name it (Admission ID), and recomputes the retention
    /// of every study of the patient at the institution, in one transaction.
    /// [`IndexError::Conflict`] when the visit number belongs to another patient.
    async fn record_encounter(&self, e: &NewEncounter) -> Result<RecordedEncounter>;
    /// Recomputes the retention of up to `limit` studies with a row id above
    /// `after_id`, in id order; returns the last id done (`None`: no more).
    async fn recompute_retention(&self, after_id: i64, limit: u32) -> Result<Option<i64>>;
    /// A study's retention; `None` for an unknown study.
    async fn study_retention(&self, study_uid: &str) -> Result<Option<StudyRetention>>;
    /// Places a legal hold. [`IndexError::NotFound`] for an unknown study,
    /// [`IndexError::Conflict`] when it is held already.
    async fn place_legal_hold(&self, study_uid: &str, reason: &str, by: &str, at: i64) -> Result<LegalHold>;
    /// Releases the study's current hold. [`IndexError::Conflict`] when it is not held.
    async fn release_legal_hold(&self, study_uid: &str, reason: &str, by: &str, at: i64) -> Result<LegalHold>;
    /// Every hold of a study, newest first (kept after the study is deleted).
    async fn legal_holds(&self, study_uid: &str) -> Result<Vec<LegalHold>>;
    /// Studies not under legal hold whose retention ended before `before`
    /// (`YYYYMMDD`: retain-until earlier than it).
    async fn expired_studies(&self, before: &str, limit: u32, offset: u64) -> Result<ExpiredPage>;
    /// Creates a request, checking in the same transaction that every study
    /// exists, is expired before `today`, is not held and is in no other
    /// open request; otherwise records nothing and names each study refused.
    async fn create_deletion_request(&self, new: &NewDeletionRequest) -> Result<DeletionRequestOutcome>;
    async fn deletion_request(&self, id: i64) -> Result<Option<DeletionRequest>>;
    /// Requests, newest first.
    async fn deletion_requests(&self, limit: u32, offset: u64) -> Result<Vec<DeletionRequest>>;
    /// Moves a request on; [`IndexError::Conflict`] when its state does not allow it.
    async fn decide_deletion_request(&self, id: i64, decision: &DeletionDecision) -> Result<DeletionRequest>;
    /// Deletes one study of an approved request from the catalog (its
    /// instances, every version, series, metadata, forwarding jobs), after
    /// checking again that it is expired before `today` and not held, and
    /// leaves a [`DeletedStudy`] record with the rejection code. A study
    /// this request already deleted answers its record again.
    async fn delete_study_records(&self, request_id: i64, study_uid: &str, by: &str, at: i64, today: &str) -> Result<StudyDeletion>;
    /// Every object of a deleted study is gone from storage.
    async fn mark_blobs_removed(&self, deleted_id: i64, at: i64) -> Result<()>;
}
