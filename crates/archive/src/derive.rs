//! Derived data: the streaming copy of multi-slice series. After ingest, a
//! background worker encodes every frame of the instances marked at commit
//! (CT, MR and the other modalities configured) as HTJ2K lossless with RPCL
//! progression (1.2.840.10008.1.2.4.202), so that a viewer can draw a
//! low-resolution image from the first kilobytes of a frame and refine it.
//!
//! The queue lives in the catalog (`Index::claim_derive`): an instance is
//! claimed with a lease, so the work is resumable after a crash and done
//! once across nodes; the sender never waits for it. The frames are blobs
//! under `derived/v1/htj2k-rpcl/`, named by the object's SHA-256: a cache
//! that `yunying derive --rebuild` drops and makes again.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use yunying_index::{DeriveBacklog, DeriveOutcome, DeriveTask, Scope, StoredInstance};
use yunying_pixels::transcode::HTJ2K_LOSSLESS_RPCL;

use crate::{Archive, ArchiveError};

/// How the streaming copy is made.
#[derive(Debug, Clone)]
pub struct DeriveSettings {
    /// Modalities whose instances get a streaming copy (none: no copies).
    pub modalities: Vec<String>,
    /// Frames encoded at once (each takes a core while it runs).
    pub workers: usize,
}

impl Default for DeriveSettings {
    fn default() -> Self {
        DeriveSettings {
            modalities: ["CT", "MR", "PT", "NM"].iter().map(|m| m.to_string()).collect(),
            workers: std::thread::available_parallelism().map(|n| n.get().div_ceil(2)).unwrap_or(1),
        }
    }
}

/// A claim lasts this long before another worker may take the instance.
const LEASE_MS: i64 = 10 * 60 * 1000;
/// Attempts before an instance is given up on.
const MAX_ATTEMPTS: i64 = 5;

/// Where frame `frame` of an object's streaming copy is kept.
pub fn derived_key(sha256: &str, frame: u32) -> String {
    format!("{}{frame}.j2c", derived_prefix(sha256))
}

pub(crate) fn derived_prefix(sha256: &str) -> String {
    format!("{DERIVED_ROOT}{}/{sha256}/", &sha256[..2.min(sha256.len())])
}

fn has_frames(inst: &StoredInstance) -> bool {
    use yunying_dicom::frames::FrameIndex;
    !matches!(
        serde_json::from_str::<FrameIndex>(&inst.frames),
        Ok(FrameIndex::None | FrameIndex::Unavailable { .. }) | Err(_)
    )
}

/// Every streaming copy lives under this prefix.
pub const DERIVED_ROOT: &str = "derived/v1/htj2k-rpcl/";

impl Archive {
    /// Whether instances of `modality` are marked for a streaming copy.
    pub(crate) fn wants_derived(&self, modality: Option<&str>, has_pixels: bool) -> bool {
        has_pixels
            && modality.is_some_and(|m| self.settings.derive.modalities.iter().any(|x| x.eq_ignore_ascii_case(m)))
    }

    /// Starts the derive worker (nothing when no modality is configured).
    pub fn start_deriving(self: &Arc<Self>) {
        if self.settings.derive.modalities.is_empty() {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                let worked = match me.derive_once().await {
                    Ok(n) => n > 0,
                    Err(e) => {
                        tracing::warn!(error = %e, "derive: catalog error");
                        false
                    }
                };
                if !worked {
                    let _ = tokio::time::timeout(Duration::from_secs(5), me.derive_wakeup.notified()).await;
                }
            }
        });
    }

    /// Claims and makes one batch of streaming copies; returns how many
    /// instances were handled.
    pub async fn derive_once(&self) -> Result<usize, ArchiveError> {
        let now = yunying_util::time::now_millis();
        let workers = self.settings.derive.workers.max(1);
        let tasks = self.index.claim_derive(now, now + LEASE_MS, (workers * 8) as u32).await?;
        let n = tasks.len();
        futures::stream::iter(tasks)
            .for_each_concurrent(workers, |task| async move {
                let outcome = self.derive_instance(&task).await;
                if let DeriveOutcome::Failed { error, .. } = &outcome {
                    tracing::warn!(sop = %task.instance.sop_uid, attempts = task.attempts + 1, %error, "derive failed");
                }
                if let Err(e) = self.index.finish_derive(task.id, &outcome).await {
                    tracing::warn!(sop = %task.instance.sop_uid, error = %e, "derive: cannot record the outcome");
                }
            })
            .await;
        Ok(n)
    }

    async fn derive_instance(&self, task: &DeriveTask) -> DeriveOutcome {
        let inst = &task.instance;
        match self.make_derived(inst).await {
            Ok(true) => DeriveOutcome::Made,
            Ok(false) => DeriveOutcome::NotApplicable,
            Err(e) => {
                let attempts = task.attempts + 1;
                let retry_at = (attempts < MAX_ATTEMPTS)
                    .then(|| yunying_util::time::now_millis() + 30_000 * (1i64 << attempts.min(6)));
                DeriveOutcome::Failed { error: e.to_string(), retry_at }
            }
        }
    }

    /// Makes the streaming copy of one instance, frame by frame (frames
    /// already made are kept). `false` when the instance has nothing to
    /// stream: not a grayscale image, no decoder, or stored streamable.
    async fn make_derived(&self, inst: &StoredInstance) -> Result<bool, ArchiveError> {
        if inst.transfer_syntax == HTJ2K_LOSSLESS_RPCL
            || !yunying_pixels::decode::is_supported(&inst.transfer_syntax)
            || !has_frames(inst)
        {
            return Ok(false);
        }
        let header = match self.image_header(inst).await {
            Ok(h) => h,
            Err(ArchiveError::NotAcceptable(_)) => return Ok(false),
            Err(e) => return Err(e),
        };
        if !header.photometric.is_monochrome() {
            return Ok(false);
        }
        let count = header.number_of_frames.max(1);
        for frame in 1..=count {
            let key = derived_key(&inst.sha256, frame);
            if self.blobs.head(&key).await?.is_some() {
                continue;
            }
            let made = self.transcode_frames(inst, &[frame], HTJ2K_LOSSLESS_RPCL).await?;
            let bytes = made.into_iter().next().unwrap_or_default();
            self.blobs.put_bytes(&key, bytes).await?;
        }
        Ok(true)
    }

    /// A frame of the streaming copy, when it is made.
    pub(crate) async fn derived_frame(&self, inst: &StoredInstance, frame: u32) -> Result<Option<Bytes>, ArchiveError> {
        let key = derived_key(&inst.sha256, frame);
        match self.blobs.head(&key).await? {
            Some(len) => Ok(Some(self.blobs.get_range(&key, 0, len).await?)),
            None => Ok(None),
        }
    }

    /// Keeps a frame made on request, so the next reader finds it (a cache:
    /// failing to keep it only costs time).
    pub(crate) async fn store_derived_frame(&self, inst: &StoredInstance, frame: u32, bytes: Bytes) {
        if let Err(e) = self.blobs.put_bytes(&derived_key(&inst.sha256, frame), bytes).await {
            tracing::debug!(sop = %inst.sop_uid, error = %e, "cannot keep a derived frame");
        }
    }

    /// Drops the streaming copies in `scope` (all when `None`) and marks the
    /// instances of the configured modalities for new ones. Returns the
    /// blobs deleted and the instances marked.
    pub async fn rebuild_derived(&self, scope: Option<&Scope>) -> Result<(usize, u64), ArchiveError> {
        let keys = match scope {
            None => self.blobs.list(DERIVED_ROOT).await?,
            Some(s) => {
                let mut keys = Vec::new();
                for inst in self.index.stored_instances(s).await? {
                    keys.extend(self.blobs.list(&derived_prefix(&inst.sha256)).await?);
                }
                keys
            }
        };
        for k in &keys {
            self.blobs.delete(k).await?;
        }
        let now = yunying_util::time::now_millis();
        let marked = self.index.request_derive(scope, &self.settings.derive.modalities, now).await?;
        self.derive_wakeup.notify_one();
        Ok((keys.len(), marked))
    }

    /// How the cache of rendered and transcoded output is doing.
    pub fn output_cache_stats(&self) -> crate::CacheStats {
        self.output_cache.stats()
    }

    /// The derive queue's counts.
    pub async fn derive_backlog(&self) -> Result<DeriveBacklog, ArchiveError> {
        Ok(self.index.derive_backlog().await?)
    }
}
