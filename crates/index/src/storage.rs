//! What the catalog records about storage: the cloud copy queue, leases of
//! jobs that run on one node at a time, long storage tasks (migrations
//! between stores, scrubbing runs) and objects found damaged or missing.

use serde::{Deserialize, Serialize};

/// An original object (one instance version) as storage jobs see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRecord {
    /// The instance row.
    pub id: i64,
    pub blob_key: String,
    /// Lowercase hex, as computed at ingest.
    pub sha256: String,
    pub size_bytes: i64,
    /// Whether a copy is in the cloud tier (`cloud_state` copied).
    pub in_cloud: bool,
}

/// A claimed cloud copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudCopyTask {
    pub blob: BlobRecord,
    /// Earlier attempts that failed.
    pub attempts: i64,
}

/// How a cloud copy ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloudCopyOutcome {
    /// The cloud tier holds the object, checked against the catalog's checksum.
    Copied { at: i64 },
    /// Retried at `retry_at` (unix ms), or given up when `None`.
    Failed { error: String, retry_at: Option<i64> },
}

/// The cloud copy queue at a glance (current and earlier versions alike).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloudBacklog {
    /// Objects waiting for their copy (including retries).
    pub pending: i64,
    /// Bytes waiting.
    pub pending_bytes: i64,
    /// Waiting objects that failed at least once.
    pub retrying: i64,
    /// Objects given up on (they need an operator).
    pub failed: i64,
    /// Objects in the cloud tier.
    pub copied: i64,
    /// Objects the lifecycle job removed from the cloud tier (older than its years).
    pub removed: i64,
    /// When the oldest waiting object was received (unix ms).
    pub oldest_pending_received_at: Option<i64>,
    /// The most recent error.
    pub last_error: Option<String>,
}

/// A long storage task: a migration between stores or a scrubbing run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageTask {
    pub id: i64,
    /// [`StorageTask::MIGRATE`] or [`StorageTask::SCRUB`].
    pub kind: String,
    /// The store read (a migration's source, the store scrubbed).
    pub source: String,
    /// A migration's target.
    pub target: Option<String>,
    /// [`StorageTask::RUNNING`], [`StorageTask::DONE`] (every object handled
    /// and checked, no problem), [`StorageTask::PROBLEMS`] (finished with
    /// problems) or [`StorageTask::PURGED`] (a migration whose source was emptied).
    pub state: String,
    /// The last instance row id handled (the task resumes after it).
    pub cursor_id: i64,
    /// The highest instance row id when the task started (its extent).
    pub last_id: i64,
    /// Objects handled (copied and verified, or checked).
    pub objects: i64,
    pub bytes: i64,
    /// Objects skipped (a migration: absent from the source because that
    /// tier does not hold them).
    pub skipped: i64,
    /// Objects damaged, missing or that could not be copied.
    pub problems: i64,
    pub started_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
    pub last_error: Option<String>,
}

impl StorageTask {
    pub const MIGRATE: &'static str = "migrate";
    pub const SCRUB: &'static str = "scrub";
    pub const RUNNING: &'static str = "running";
    pub const DONE: &'static str = "done";
    pub const PROBLEMS: &'static str = "problems";
    pub const PURGED: &'static str = "purged";
}

/// An object found damaged or missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobProblem {
    pub id: i64,
    /// The store's name (`local`, `cloud`, a configured store).
    pub store: String,
    pub blob_key: String,
    pub instance_id: Option<i64>,
    /// `missing`, `damaged`, `unreadable`, `copy-failed`.
    pub problem: String,
    pub detail: String,
    pub found_at: i64,
    pub resolved_at: Option<i64>,
    pub resolution: Option<String>,
}
