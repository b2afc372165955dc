//! Storage tiers and the jobs that keep them: what the archive knows of its
//! local and cloud tiers, and the background work on them.
//!
//! - [`cloud_copy`]: every new object of a recent exam is copied to the
//!   cloud tier by a durable queue in the catalog (leases, retries with
//!   backoff, a visible backlog), checked against the catalog's SHA-256.
//! - [`lifecycle`]: objects of exams older than the cloud tier's years leave
//!   it (never before the local tier is seen to hold them).
//! - [`scrub`]: objects are re-read on a schedule and compared with the
//!   catalog's checksums; a damaged local object is restored from the cloud
//!   tier when it holds a good copy. `yunying verify` runs the same pass.
//! - [`migrate`]: copies every object from one store to another, verified
//!   and resumable (`yunying storage migrate`), and empties the old store
//!   only after a complete verified migration.
//!
//! Jobs that must run on one node at a time hold a lease in the catalog;
//! the copy queue is claimed row by row, so any number of nodes share it.

pub mod cloud_copy;
pub mod lifecycle;
pub mod migrate;
pub mod scrub;

use std::sync::Arc;

use serde::Serialize;
use yunying_blob::BlobStore;
use yunying_index::{BlobProblem, CloudBacklog, DeriveBacklog, ForwardBacklog, StorageTask};

use crate::{Archive, ArchiveError};

/// The cloud tier as the archive uses it.
#[derive(Clone)]
pub struct CloudTier {
    pub store: Arc<dyn BlobStore>,
    /// It holds the exams of the most recent `years` years.
    pub years: u32,
    /// Objects copied at once.
    pub copy_concurrency: usize,
    /// Whether older exams leave the cloud tier.
    pub lifecycle: bool,
    /// How long a claimed copy is reserved for its worker: after a crash,
    /// another worker takes it once this has passed.
    pub lease_seconds: u32,
}

impl std::fmt::Debug for CloudTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudTier")
            .field("store", &self.store.describe())
            .field("years", &self.years)
            .field("copy_concurrency", &self.copy_concurrency)
            .field("lifecycle", &self.lifecycle)
            .field("lease_seconds", &self.lease_seconds)
            .finish()
    }
}

/// The archive's tiers. The archive's blob store (`Archive::blobs`) is
/// their combined view; the jobs need each tier on its own.
#[derive(Clone, Default)]
pub struct StorageTiers {
    /// The local tier; `None` means the archive's blob store is the only tier.
    pub local: Option<Arc<dyn BlobStore>>,
    pub cloud: Option<CloudTier>,
    pub scrub: ScrubSettings,
    /// Reads the cloud tier served for the local one (the tiered store's counter).
    pub cloud_reads: Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for StorageTiers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageTiers")
            .field("local", &self.local.as_ref().map(|s| s.describe()))
            .field("cloud", &self.cloud)
            .field("scrub", &self.scrub)
            .finish()
    }
}

/// Scrubbing: re-reading every object on a schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrubSettings {
    /// Days between the starts of two passes (0: never on a schedule).
    pub interval_days: u32,
    /// Read rate limit in MB/s (0: as fast as the store allows).
    pub mb_per_s: u32,
    /// Minutes after start-up before a node begins a due pass.
    pub start_delay_minutes: u32,
    /// Also re-read the cloud tier's copies (costs the cloud's read traffic).
    pub cloud: bool,
}

impl Default for ScrubSettings {
    fn default() -> Self {
        // 30 TB re-read in 90 days is about 4 MB/s; 25 MB/s leaves room to catch up.
        ScrubSettings { interval_days: 90, mb_per_s: 25, start_delay_minutes: 10, cloud: false }
    }
}

/// What one node's cloud copy worker did since it started.
#[derive(Debug, Default)]
pub(crate) struct NodeCounters {
    pub(crate) sent: std::sync::atomic::AtomicU64,
    pub(crate) bytes_sent: std::sync::atomic::AtomicU64,
    pub(crate) already_there: std::sync::atomic::AtomicU64,
    pub(crate) failed: std::sync::atomic::AtomicU64,
}

/// This node's share of the work since it started.
#[derive(Debug, Clone, Serialize)]
pub struct NodeWork {
    pub node: String,
    pub cloud_copies_sent: u64,
    pub cloud_bytes_sent: u64,
    /// Claimed copies the cloud tier already held (a copy interrupted after
    /// its upload, before its record).
    pub cloud_copies_already_there: u64,
    pub cloud_copy_failures: u64,
    /// Reads the local tier could not serve that the cloud tier did.
    pub cloud_reads: u64,
}

/// The background jobs at a glance (the jobs view of the API).
#[derive(Debug, Clone, Serialize)]
pub struct JobsStatus {
    /// Unix ms when this was read.
    pub now: i64,
    /// The node that answered.
    pub this_node: NodeWork,
    pub cloud_copy: Option<CloudCopyStatus>,
    pub derive: DeriveBacklog,
    pub forward: Vec<ForwardBacklog>,
    /// Migrations and scrubbing passes, newest first.
    pub storage_tasks: Vec<StorageTask>,
    pub open_problems: i64,
    pub problems: Vec<BlobProblem>,
}

/// The cloud copy queue, with the age of its oldest waiting object (the
/// "report on the cloud within 30 minutes" watch).
#[derive(Debug, Clone, Serialize)]
pub struct CloudCopyStatus {
    pub store: String,
    pub years: u32,
    #[serde(flatten)]
    pub backlog: CloudBacklog,
    /// Seconds since the oldest waiting object was received.
    pub oldest_pending_age_seconds: Option<i64>,
}

impl Archive {
    /// The archive's tiers.
    pub fn tiers(&self) -> &StorageTiers {
        &self.settings.storage
    }

    /// The local tier on its own (reads that must not fall back to the cloud).
    pub(crate) fn local_tier(&self) -> &Arc<dyn BlobStore> {
        self.settings.storage.local.as_ref().unwrap_or(&self.blobs)
    }

    /// Whether an object of an exam on `study_date` (YYYYMMDD, or unknown)
    /// goes to the cloud tier: when there is one and the exam is recent.
    pub(crate) fn wants_cloud(&self, study_date: Option<&str>) -> bool {
        let Some(cloud) = &self.settings.storage.cloud else { return false };
        match study_date.filter(|d| d.len() == 8) {
            None => true,
            Some(d) => d >= years_ago(cloud.years).as_str(),
        }
    }

    /// Starts the storage jobs of this node: the cloud copy worker and the
    /// lifecycle job (with a cloud tier), and scheduled scrubbing.
    pub fn start_storage_jobs(self: &Arc<Self>) {
        if self.settings.storage.cloud.is_some() {
            self.start_cloud_copy();
            self.start_lifecycle();
        }
        self.start_scrubbing();
    }

    /// Before a retrieve starts streaming: the objects the local tier lacks
    /// must be readable from the cloud tier. Those in an archive storage
    /// class get their restores requested together, and the retrieve is
    /// answered "retrieving" ([`yunying_blob::BlobError::Archived`]) rather
    /// than failing half-way. Only a filesystem local tier is checked (a
    /// `stat` per object); other tiers are read as they come.
    pub async fn ensure_readable(&self, instances: &[yunying_index::StoredInstance]) -> Result<(), ArchiveError> {
        use futures::StreamExt;
        let Some(cloud) = &self.settings.storage.cloud else { return Ok(()) };
        let local = self.local_tier();
        let missing: Vec<String> = instances
            .iter()
            .filter(|i| local.local_path(&i.blob_key).is_some_and(|p| !p.is_file()))
            .map(|i| i.blob_key.clone())
            .collect();
        let store = cloud.store.clone();
        let probes = missing.into_iter().map(move |key| {
            let store = store.clone();
            async move { store.get_range(&key, 0, 1).await.err() }
        });
        let errors: Vec<Option<yunying_blob::BlobError>> = futures::stream::iter(probes).buffer_unordered(16).collect().await;
        let archived: Vec<yunying_blob::BlobError> =
            errors.into_iter().flatten().filter(|e| matches!(e, yunying_blob::BlobError::Archived { .. })).collect();
        match archived.into_iter().next() {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// The jobs view: queues, failures, the oldest waiting copy, storage
    /// tasks and open problems.
    pub async fn jobs_status(&self) -> Result<JobsStatus, ArchiveError> {
        let now = yunying_util::time::now_millis();
        let cloud_copy = match &self.settings.storage.cloud {
            None => None,
            Some(c) => {
                let backlog = self.index.cloud_backlog().await?;
                Some(CloudCopyStatus {
                    store: c.store.describe(),
                    years: c.years,
                    oldest_pending_age_seconds: backlog.oldest_pending_received_at.map(|t| (now - t).max(0) / 1000),
                    backlog,
                })
            }
        };
        let (problems, open_problems) = self.index.open_blob_problems(50).await?;
        use std::sync::atomic::Ordering::Relaxed;
        let c = &self.cloud_counters;
        let this_node = NodeWork {
            node: self.settings.node.clone(),
            cloud_copies_sent: c.sent.load(Relaxed),
            cloud_bytes_sent: c.bytes_sent.load(Relaxed),
            cloud_copies_already_there: c.already_there.load(Relaxed),
            cloud_copy_failures: c.failed.load(Relaxed),
            cloud_reads: self.settings.storage.cloud_reads.load(Relaxed),
        };
        Ok(JobsStatus {
            now,
            this_node,
            cloud_copy,
            derive: self.index.derive_backlog().await?,
            forward: self.index.forward_backlog().await?,
            storage_tasks: self.index.storage_tasks(None, 20).await?,
            open_problems,
            problems,
        })
    }
}

/// The date `years` years before today (China time), as YYYYMMDD.
pub fn years_ago(years: u32) -> String {
    let today = yunying_util::time::today_da_cst();
    let y: i64 = today[..4].parse().unwrap_or(1970);
    format!("{:04}{}", y - i64::from(years), &today[4..])
}

/// Renders a byte count for people.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[u]) }
}
