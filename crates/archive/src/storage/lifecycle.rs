//! The cloud tier's lifecycle: objects of exams older than the tier's years
//! leave it. Runs on one node at a time (a lease in the catalog), once an
//! hour. An object leaves the cloud only when the local tier is seen to hold
//! it whole (its size); otherwise the cloud copy is kept and the missing
//! local object is recorded as a problem.

use std::sync::Arc;
use std::time::Duration;

use yunying_index::BlobProblem;

use super::years_ago;
use crate::{Archive, ArchiveError};

const LEASE_NAME: &str = "cloud-lifecycle";
const LEASE_MS: i64 = 15 * 60 * 1000;
const EVERY: Duration = Duration::from_secs(3600);

/// What a lifecycle pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LifecycleReport {
    pub removed: u64,
    pub bytes: u64,
    /// Kept in the cloud because the local tier lacks them.
    pub kept: u64,
}

impl Archive {
    pub(super) fn start_lifecycle(self: &Arc<Self>) {
        let Some(cloud) = &self.settings.storage.cloud else { return };
        if !cloud.lifecycle {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                match me.cloud_lifecycle_once().await {
                    Ok(Some(r)) if r.removed + r.kept > 0 => {
                        tracing::info!(removed = r.removed, bytes = r.bytes, kept = r.kept, "cloud lifecycle pass")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "cloud lifecycle failed"),
                }
                tokio::time::sleep(EVERY).await;
            }
        });
    }

    /// One lifecycle pass, when this node gets the lease (`None` otherwise).
    pub async fn cloud_lifecycle_once(&self) -> Result<Option<LifecycleReport>, ArchiveError> {
        let Some(cloud) = self.settings.storage.cloud.clone() else { return Ok(None) };
        let node = self.settings.node.clone();
        let now = yunying_util::time::now_millis();
        if !self.index.try_lease(LEASE_NAME, &node, now, now + LEASE_MS).await? {
            return Ok(None);
        }
        let cutoff = years_ago(cloud.years);
        let mut report = LifecycleReport::default();
        let mut after = 0i64;
        loop {
            let batch = self.index.cloud_expired(&cutoff, after, 500).await?;
            let Some(last) = batch.last() else { break };
            after = last.id;
            let mut removed = Vec::with_capacity(batch.len());
            for rec in &batch {
                match self.local_tier().head(&rec.blob_key).await {
                    Ok(Some(n)) if n as i64 == rec.size_bytes => {
                        cloud.store.delete(&rec.blob_key).await?;
                        removed.push(rec.id);
                        report.removed += 1;
                        report.bytes += n;
                    }
                    other => {
                        report.kept += 1;
                        let detail = match other {
                            Ok(Some(n)) => format!("local size {n}, catalog {}: the cloud copy is kept", rec.size_bytes),
                            Ok(None) => "absent from the local tier: the cloud copy is kept".to_string(),
                            Err(e) => format!("cannot read the local tier ({e}): the cloud copy is kept"),
                        };
                        tracing::error!(key = %rec.blob_key, %detail, "cloud lifecycle");
                        let p = BlobProblem {
                            id: 0,
                            store: "local".into(),
                            blob_key: rec.blob_key.clone(),
                            instance_id: Some(rec.id),
                            problem: "missing".into(),
                            detail,
                            found_at: yunying_util::time::now_millis(),
                            resolved_at: None,
                            resolution: None,
                        };
                        self.index.record_blob_problem(&p).await?;
                    }
                }
            }
            self.index.mark_cloud_removed(&removed, yunying_util::time::now_millis()).await?;
            let now = yunying_util::time::now_millis();
            self.index.try_lease(LEASE_NAME, &node, now, now + LEASE_MS).await?;
        }
        self.index.release_lease(LEASE_NAME, &node).await?;
        Ok(Some(report))
    }
}
