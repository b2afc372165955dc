//! Scrubbing: every stored object is re-read and its SHA-256 compared with
//! the catalog's, so that silent damage (a failing disk, a bad copy, a
//! tampered file) is found while another copy can still repair it.
//!
//! A pass is a storage task in the catalog (resumable from its cursor after
//! a restart) and runs on one node at a time (a lease). A damaged or missing
//! local object whose cloud copy is good is restored from the cloud tier;
//! every finding is kept as a blob problem (shown by the jobs view) and
//! logged. `yunying verify` runs a pass on demand, unthrottled.

use std::sync::Arc;
use std::time::{Duration, Instant};

use yunying_blob::{BlobError, BlobStore, Sha256Digest};
use yunying_index::{BlobProblem, BlobRecord, StorageTask};

use crate::{Archive, ArchiveError};

const LEASE_NAME: &str = "scrub";
const LEASE_MS: i64 = 10 * 60 * 1000;
const PAGE: u32 = 200;

/// Which tier a pass reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScrubTarget {
    Local,
    Cloud,
}

impl ScrubTarget {
    pub fn name(self) -> &'static str {
        match self {
            ScrubTarget::Local => "local",
            ScrubTarget::Cloud => "cloud",
        }
    }
}

/// How a pass runs.
#[derive(Debug, Clone)]
pub struct ScrubOptions {
    pub target: ScrubTarget,
    /// MB/s (0: unthrottled).
    pub mb_per_s: u32,
    /// Restore damaged local objects from a good cloud copy.
    pub repair: bool,
}

/// One checked object's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Good,
    /// Damaged or missing, then restored from the cloud tier.
    Repaired,
    Problem { problem: &'static str, detail: String },
}

impl Archive {
    pub(super) fn start_scrubbing(self: &Arc<Self>) {
        let s = self.settings.storage.scrub.clone();
        if s.interval_days == 0 {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(u64::from(s.start_delay_minutes) * 60)).await;
            loop {
                if let Err(e) = me.scrub_if_due(&s).await {
                    tracing::warn!(error = %e, "scrubbing failed");
                }
                tokio::time::sleep(Duration::from_secs(600)).await;
            }
        });
    }

    /// Runs (or resumes) a pass of each tier scrubbing covers when one is due.
    async fn scrub_if_due(&self, s: &super::ScrubSettings) -> Result<(), ArchiveError> {
        let mut targets = vec![ScrubTarget::Local];
        if s.cloud && self.settings.storage.cloud.is_some() {
            targets.push(ScrubTarget::Cloud);
        }
        let interval_ms = i64::from(s.interval_days) * 86_400_000;
        for target in targets {
            let tasks = self.index.storage_tasks(Some(StorageTask::SCRUB), 50).await?;
            let last = tasks.iter().find(|t| t.source == target.name());
            let due = match last {
                None => true,
                Some(t) if t.state == StorageTask::RUNNING => true,
                Some(t) => yunying_util::time::now_millis() - t.started_at >= interval_ms,
            };
            if due {
                let opts = ScrubOptions { target, mb_per_s: s.mb_per_s, repair: true };
                if let Some(t) = self.scrub_pass(&opts, |_| {}).await? {
                    tracing::info!(
                        tier = target.name(), objects = t.objects, bytes = t.bytes, problems = t.problems,
                        "scrubbing pass finished"
                    );
                }
            }
        }
        Ok(())
    }

    /// Runs a scrubbing pass of one tier, resuming an unfinished one.
    /// `None` when another node holds the scrubbing lease. `progress` is
    /// called after each page with the task as saved.
    pub async fn scrub_pass(
        &self,
        opts: &ScrubOptions,
        mut progress: impl FnMut(&StorageTask),
    ) -> Result<Option<StorageTask>, ArchiveError> {
        let store: Arc<dyn BlobStore> = match opts.target {
            ScrubTarget::Local => self.local_tier().clone(),
            ScrubTarget::Cloud => match &self.settings.storage.cloud {
                Some(c) => c.store.clone(),
                None => return Err(ArchiveError::Config("there is no cloud tier to verify".into())),
            },
        };
        let node = self.settings.node.clone();
        let now = yunying_util::time::now_millis();
        if !self.index.try_lease(LEASE_NAME, &node, now, now + LEASE_MS).await? {
            return Ok(None);
        }
        let tasks = self.index.storage_tasks(Some(StorageTask::SCRUB), 50).await?;
        let mut task = match tasks.into_iter().find(|t| t.source == opts.target.name() && t.state == StorageTask::RUNNING) {
            Some(t) => t,
            None => {
                let last = self.index.max_instance_id().await?;
                self.index.create_storage_task(StorageTask::SCRUB, opts.target.name(), None, last, now).await?
            }
        };
        let started = Instant::now();
        let mut read: u64 = 0;
        loop {
            let page = self.index.blob_records(task.cursor_id, task.last_id, PAGE).await?;
            let Some(last) = page.last() else { break };
            let last_id = last.id;
            for rec in &page {
                if opts.target == ScrubTarget::Cloud && !rec.in_cloud {
                    continue;
                }
                let verdict = self.check_object(store.as_ref(), opts, rec).await;
                task.objects += 1;
                task.bytes += rec.size_bytes;
                read += rec.size_bytes.max(0) as u64;
                if let Verdict::Problem { problem, detail } = &verdict {
                    task.problems += 1;
                    task.last_error = Some(format!("{}: {detail}", rec.blob_key));
                    tracing::error!(tier = opts.target.name(), key = %rec.blob_key, problem, %detail, "scrubbing found a problem");
                    let p = BlobProblem {
                        id: 0,
                        store: opts.target.name().into(),
                        blob_key: rec.blob_key.clone(),
                        instance_id: Some(rec.id),
                        problem: (*problem).into(),
                        detail: detail.clone(),
                        found_at: yunying_util::time::now_millis(),
                        resolved_at: None,
                        resolution: None,
                    };
                    self.index.record_blob_problem(&p).await?;
                }
                throttle(opts.mb_per_s, read, started).await;
            }
            task.cursor_id = last_id;
            task.updated_at = yunying_util::time::now_millis();
            self.index.save_storage_task(&task).await?;
            progress(&task);
            let now = yunying_util::time::now_millis();
            self.index.try_lease(LEASE_NAME, &node, now, now + LEASE_MS).await?;
        }
        let now = yunying_util::time::now_millis();
        task.state = if task.problems == 0 { StorageTask::DONE } else { StorageTask::PROBLEMS }.into();
        task.finished_at = Some(now);
        task.updated_at = now;
        self.index.save_storage_task(&task).await?;
        self.index.release_lease(LEASE_NAME, &node).await?;
        progress(&task);
        Ok(Some(task))
    }

    /// Re-reads one object and compares it with the catalog; repairs a
    /// local object from a good cloud copy when asked.
    async fn check_object(&self, store: &dyn BlobStore, opts: &ScrubOptions, rec: &BlobRecord) -> Verdict {
        let Some(want) = Sha256Digest::from_hex(&rec.sha256) else {
            return Verdict::Problem { problem: "unreadable", detail: "the catalog's checksum is not SHA-256 hex".into() };
        };
        let found = match store.verify(&rec.blob_key, Some(&want)).await {
            Ok(_) => match store.head(&rec.blob_key).await {
                Ok(Some(n)) if n as i64 == rec.size_bytes => return Verdict::Good,
                Ok(n) => ("damaged", format!("size {n:?}, the catalog says {}", rec.size_bytes)),
                Err(e) => ("unreadable", e.to_string()),
            },
            Err(BlobError::NotFound(_)) => ("missing", "the object is absent".to_string()),
            Err(e @ BlobError::ChecksumMismatch { .. }) => ("damaged", e.to_string()),
            Err(e) => ("unreadable", e.to_string()),
        };
        if opts.target == ScrubTarget::Local && opts.repair && rec.in_cloud {
            match self.restore_from_cloud(rec, &want).await {
                Ok(()) => {
                    tracing::warn!(key = %rec.blob_key, problem = found.0, "restored a local object from the cloud tier");
                    let now = yunying_util::time::now_millis();
                    let p = BlobProblem {
                        id: 0,
                        store: "local".into(),
                        blob_key: rec.blob_key.clone(),
                        instance_id: Some(rec.id),
                        problem: found.0.into(),
                        detail: found.1.clone(),
                        found_at: now,
                        resolved_at: None,
                        resolution: None,
                    };
                    let _ = self.index.record_blob_problem(&p).await;
                    let _ = self.index.resolve_blob_problems("local", &rec.blob_key, "restored from the cloud tier", now).await;
                    return Verdict::Repaired;
                }
                Err(e) => {
                    return Verdict::Problem {
                        problem: found.0,
                        detail: format!("{}; restoring from the cloud tier failed: {e}", found.1),
                    };
                }
            }
        }
        Verdict::Problem { problem: found.0, detail: found.1 }
    }

    /// Replaces a local object with the cloud tier's copy, checked before
    /// and after.
    async fn restore_from_cloud(&self, rec: &BlobRecord, want: &Sha256Digest) -> Result<(), BlobError> {
        let Some(cloud) = &self.settings.storage.cloud else {
            return Err(BlobError::Config("no cloud tier".into()));
        };
        let bytes = super::cloud_copy::read_all(cloud.store.as_ref(), &rec.blob_key).await?;
        let got = Sha256Digest::of(&bytes);
        if got != *want {
            return Err(BlobError::ChecksumMismatch {
                key: rec.blob_key.clone(),
                what: "recorded in the catalog (the cloud copy)",
                expected: *want,
                actual: got,
            });
        }
        let local = self.local_tier();
        local.delete(&rec.blob_key).await?;
        local.put_bytes(&rec.blob_key, bytes).await?;
        local.verify(&rec.blob_key, Some(want)).await?;
        Ok(())
    }
}

/// Sleeps so that `read` bytes since `started` stay under `mb_per_s`.
async fn throttle(mb_per_s: u32, read: u64, started: Instant) {
    if mb_per_s == 0 {
        return;
    }
    let should_take = Duration::from_secs_f64(read as f64 / (f64::from(mb_per_s) * 1e6));
    let took = started.elapsed();
    if should_take > took {
        tokio::time::sleep(should_take - took).await;
    }
}
