//! The cloud copy queue's worker: copies new objects from the local tier to
//! the cloud tier.
//!
//! Objects are claimed from the catalog with a lease (one worker per object
//! across nodes; a worker that dies leaves its claims to expire and be taken
//! again). A copy counts only when the cloud tier's record of the object's
//! SHA-256 equals the catalog's; a copy already there (a crash between the
//! upload and its record) is recognised and not sent again. Failures are
//! retried with exponential backoff and stay visible in the backlog; after
//! [`MAX_ATTEMPTS`] the object is given up on (the local copy is intact) until
//! an operator runs `yunying storage cloud-sync --retry-failed`.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use yunying_blob::{BlobError, BlobStore, Sha256Digest};
use yunying_index::{BlobProblem, BlobRecord, CloudCopyOutcome, CloudCopyTask};

use super::CloudTier;
use crate::{Archive, ArchiveError};

/// Attempts before an object is given up on (about a day of backoff).
pub const MAX_ATTEMPTS: i64 = 12;

/// Objects up to this size are copied from memory (one read, one PUT).
const IN_MEMORY_COPY: i64 = 16 << 20;

/// The wait before attempt `attempts + 1`: 15 s doubling, at most 4 h.
fn backoff_ms(attempts: i64) -> i64 {
    (15_000i64 << attempts.clamp(0, 10)).min(4 * 3600 * 1000)
}

/// How one copy went.
#[derive(Debug, PartialEq, Eq)]
pub enum Copied {
    /// Sent and checked.
    Sent,
    /// The cloud tier already held it, checked.
    AlreadyThere,
}

impl Archive {
    pub(super) fn start_cloud_copy(self: &Arc<Self>) {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                let worked = match me.cloud_copy_once().await {
                    Ok(n) => n > 0,
                    Err(e) => {
                        tracing::warn!(error = %e, "cloud copy: catalog error");
                        false
                    }
                };
                if !worked {
                    let _ = tokio::time::timeout(Duration::from_secs(5), me.cloud_wakeup.notified()).await;
                }
            }
        });
    }

    /// Claims and copies one batch; returns how many objects were handled.
    pub async fn cloud_copy_once(&self) -> Result<usize, ArchiveError> {
        let Some(cloud) = self.settings.storage.cloud.clone() else { return Ok(0) };
        let now = yunying_util::time::now_millis();
        let workers = cloud.copy_concurrency.max(1);
        let lease_ms = i64::from(cloud.lease_seconds.max(1)) * 1000;
        let tasks = self.index.claim_cloud_copies(now, now + lease_ms, (workers * 4) as u32).await?;
        let n = tasks.len();
        futures::stream::iter(tasks)
            .for_each_concurrent(workers, |task| {
                let cloud = &cloud;
                async move {
                    let outcome = self.copy_task(cloud, &task).await;
                    if let Err(e) = self.index.finish_cloud_copy(task.blob.id, &outcome).await {
                        tracing::warn!(key = %task.blob.blob_key, error = %e, "cloud copy: cannot record the outcome");
                    }
                }
            })
            .await;
        Ok(n)
    }

    async fn copy_task(&self, cloud: &CloudTier, task: &CloudCopyTask) -> CloudCopyOutcome {
        let rec = &task.blob;
        use std::sync::atomic::Ordering::Relaxed;
        let c = &self.cloud_counters;
        match copy_object(self.local_tier().as_ref(), cloud.store.as_ref(), rec).await {
            Ok(how) => {
                if how == Copied::Sent {
                    c.sent.fetch_add(1, Relaxed);
                    c.bytes_sent.fetch_add(rec.size_bytes.max(0) as u64, Relaxed);
                } else {
                    c.already_there.fetch_add(1, Relaxed);
                }
                CloudCopyOutcome::Copied { at: yunying_util::time::now_millis() }
            }
            Err(e) => {
                c.failed.fetch_add(1, Relaxed);
                let attempts = task.attempts + 1;
                let damaged = matches!(e, BlobError::ChecksumMismatch { .. } | BlobError::NotFound(_));
                // A damaged or missing local object will not heal by waiting:
                // it is a problem for scrubbing and an operator; give up on it.
                let retry_at = (!damaged && attempts < MAX_ATTEMPTS)
                    .then(|| yunying_util::time::now_millis() + backoff_ms(attempts));
                if damaged {
                    tracing::error!(key = %rec.blob_key, error = %e, "cloud copy: the local object is damaged or missing");
                    let problem = BlobProblem {
                        id: 0,
                        store: "local".into(),
                        blob_key: rec.blob_key.clone(),
                        instance_id: Some(rec.id),
                        problem: if matches!(e, BlobError::NotFound(_)) { "missing" } else { "damaged" }.into(),
                        detail: format!("found by the cloud copy: {e}"),
                        found_at: yunying_util::time::now_millis(),
                        resolved_at: None,
                        resolution: None,
                    };
                    if let Err(e) = self.index.record_blob_problem(&problem).await {
                        tracing::warn!(error = %e, "cannot record a blob problem");
                    }
                } else {
                    tracing::warn!(key = %rec.blob_key, attempts, error = %e, "cloud copy failed; will retry");
                }
                CloudCopyOutcome::Failed { error: e.to_string(), retry_at }
            }
        }
    }
}

/// Copies one object from `from` to `to` unless `to` holds it already (the
/// target's record of its SHA-256 is the catalog's). The content sent is
/// checked against the catalog's SHA-256: a damaged source is reported as
/// `ChecksumMismatch` and leaves no copy behind.
pub async fn copy_object(from: &dyn BlobStore, to: &dyn BlobStore, rec: &BlobRecord) -> Result<Copied, BlobError> {
    let key = rec.blob_key.as_str();
    let want = Sha256Digest::from_hex(&rec.sha256)
        .ok_or_else(|| BlobError::Config(format!("the catalog's checksum of {key} is not SHA-256 hex")))?;
    match to.recorded_sha256(key).await {
        Ok(Some(d)) if d == want => return Ok(Copied::AlreadyThere),
        Ok(Some(_)) => {
            // A wrong copy (written by something else): replace it.
            to.delete(key).await?;
        }
        Ok(None) => {
            // A store that records no checksum (a filesystem): compare the content.
            if to.head(key).await?.is_some() {
                if to.content_sha256(key).await? == want {
                    return Ok(Copied::AlreadyThere);
                }
                to.delete(key).await?;
            }
        }
        Err(BlobError::NotFound(_)) => {}
        Err(e) => return Err(e),
    }
    if rec.size_bytes <= IN_MEMORY_COPY {
        // Small (nearly every object): read once, check against the catalog
        // before anything leaves, and send with a signed payload hash, which
        // the store checks on arrival. A damaged source is never uploaded.
        let bytes = match from.local_path(key).filter(|p| p.is_file()) {
            Some(path) => bytes::Bytes::from(
                tokio::fs::read(&path).await.map_err(|source| BlobError::Io { key: key.to_string(), source })?,
            ),
            None => read_all(from, key).await?,
        };
        let got = Sha256Digest::of(&bytes);
        if got != want {
            return Err(BlobError::ChecksumMismatch {
                key: key.to_string(),
                what: "recorded in the catalog",
                expected: want,
                actual: got,
            });
        }
        to.put_bytes_with_sha256(key, bytes, &got).await?;
        return Ok(Copied::Sent);
    }
    // Large: streamed from the file (or read whole from a remote source),
    // then the target's record is checked; a wrong copy is removed again.
    match from.local_path(key).filter(|p| p.is_file()) {
        Some(path) => to.put_file(key, &path).await?,
        None => {
            let bytes = read_all(from, key).await?;
            to.put_bytes(key, bytes).await?;
        }
    }
    let got = match to.recorded_sha256(key).await? {
        Some(d) => d,
        None => to.content_sha256(key).await?,
    };
    if got != want {
        let _ = to.delete(key).await;
        return Err(BlobError::ChecksumMismatch {
            key: key.to_string(),
            what: "recorded in the catalog",
            expected: want,
            actual: got,
        });
    }
    Ok(Copied::Sent)
}

/// The whole content of a blob, in memory.
pub(crate) async fn read_all(store: &dyn BlobStore, key: &str) -> Result<bytes::Bytes, BlobError> {
    use futures::TryStreamExt;
    let mut stream = store.get(key).await?;
    let mut buf = bytes::BytesMut::new();
    while let Some(chunk) = stream.try_next().await.map_err(|source| BlobError::Io { key: key.to_string(), source })? {
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    #[test]
    fn backoff_doubles_up_to_four_hours() {
        assert_eq!(super::backoff_ms(1), 30_000);
        assert_eq!(super::backoff_ms(2), 60_000);
        assert_eq!(super::backoff_ms(11), 4 * 3600 * 1000);
    }
}
