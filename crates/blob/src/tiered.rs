//! The tiered store: the archive's one view of its storage tiers.
//!
//! - The **local tier** holds every object for its whole retention period;
//!   writes go there first and durably, and reads are served from it.
//! - The **cloud tier** (optional) holds the most recent years. Objects reach
//!   it through the catalog's cloud copy queue, not through `put_*`, so an
//!   ingest never waits for the cloud; reads fall back to it when the local
//!   tier lacks an object (a lost disk, a node without the local tier).
//! - A **mirror** (optional, during a change of store) receives every new
//!   object as part of the same `put_*`: both writes are durable before the
//!   put returns, so nothing stored during a migration's cut-over is missed.
//!
//! Deleting removes an object from every tier.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;

use crate::{BlobError, BlobStore, ByteStream, Result, Sha256Digest};

/// The local tier, an optional cloud tier and an optional mirror.
pub struct TieredStore {
    local: Arc<dyn BlobStore>,
    cloud: Option<Arc<dyn BlobStore>>,
    mirror: Option<Arc<dyn BlobStore>>,
    /// Reads the local tier could not serve and the cloud tier did.
    cloud_reads: Arc<AtomicU64>,
    /// When the last warning about such reads was logged (unix ms), and the
    /// count at that moment: a lost disk is logged every few seconds with
    /// a count, not once per object.
    warned_at: AtomicI64,
    warned_count: AtomicU64,
}

impl TieredStore {
    pub fn new(
        local: Arc<dyn BlobStore>,
        cloud: Option<Arc<dyn BlobStore>>,
        mirror: Option<Arc<dyn BlobStore>>,
    ) -> TieredStore {
        TieredStore {
            local,
            cloud,
            mirror,
            cloud_reads: Arc::new(AtomicU64::new(0)),
            warned_at: AtomicI64::new(0),
            warned_count: AtomicU64::new(0),
        }
    }

    pub fn local(&self) -> &Arc<dyn BlobStore> {
        &self.local
    }

    pub fn cloud(&self) -> Option<&Arc<dyn BlobStore>> {
        self.cloud.as_ref()
    }

    pub fn mirror(&self) -> Option<&Arc<dyn BlobStore>> {
        self.mirror.as_ref()
    }

    /// How many reads were served by the cloud tier because the local tier
    /// lacked the object.
    pub fn cloud_reads(&self) -> u64 {
        self.cloud_reads.load(Ordering::Relaxed)
    }

    /// The counter behind [`TieredStore::cloud_reads`], to watch from elsewhere.
    pub fn cloud_reads_counter(&self) -> Arc<AtomicU64> {
        self.cloud_reads.clone()
    }

    /// The cloud tier, when the local tier answered `NotFound` for `key`.
    fn fallback(&self, key: &str, err: &BlobError) -> Option<&Arc<dyn BlobStore>> {
        let cloud = self.cloud.as_ref()?;
        if matches!(err, BlobError::NotFound(_)) {
            let n = self.cloud_reads.fetch_add(1, Ordering::Relaxed) + 1;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0);
            let last = self.warned_at.load(Ordering::Relaxed);
            if now - last >= 10_000
                && self.warned_at.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
            {
                let since = n - self.warned_count.swap(n, Ordering::Relaxed);
                tracing::warn!(%key, cloud = %cloud.describe(), reads_since_last_warning = since, total = n,
                    "objects missing from the local tier are read from the cloud tier");
            } else {
                tracing::debug!(%key, "object missing from the local tier: read from the cloud tier");
            }
            Some(cloud)
        } else {
            None
        }
    }
}

#[async_trait]
impl BlobStore for TieredStore {
    fn describe(&self) -> String {
        let mut s = format!("local {}", self.local.describe());
        if let Some(c) = &self.cloud {
            s.push_str(&format!(", cloud {}", c.describe()));
        }
        if let Some(m) = &self.mirror {
            s.push_str(&format!(", mirror {}", m.describe()));
        }
        s
    }

    async fn put_file(&self, key: &str, staged: &Path) -> Result<()> {
        self.local.put_file(key, staged).await?;
        if let Some(m) = &self.mirror {
            m.put_file(key, staged).await?;
        }
        Ok(())
    }

    async fn put_bytes(&self, key: &str, bytes: Bytes) -> Result<()> {
        self.local.put_bytes(key, bytes.clone()).await?;
        if let Some(m) = &self.mirror {
            m.put_bytes(key, bytes).await?;
        }
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<ByteStream> {
        match self.local.get(key).await {
            Err(e) => match self.fallback(key, &e) {
                Some(cloud) => cloud.get(key).await,
                None => Err(e),
            },
            ok => ok,
        }
    }

    async fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Bytes> {
        match self.local.get_range(key, offset, len).await {
            Err(e) => match self.fallback(key, &e) {
                Some(cloud) => cloud.get_range(key, offset, len).await,
                None => Err(e),
            },
            ok => ok,
        }
    }

    async fn head(&self, key: &str) -> Result<Option<u64>> {
        match self.local.head(key).await? {
            Some(n) => Ok(Some(n)),
            None => match &self.cloud {
                Some(c) => c.head(key).await,
                None => Ok(None),
            },
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.local.delete(key).await?;
        if let Some(c) = &self.cloud {
            c.delete(key).await?;
        }
        if let Some(m) = &self.mirror {
            m.delete(key).await?;
        }
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        self.local.list(prefix).await
    }

    /// The local tier's file, only when it is there (a missing file falls
    /// back to the cloud tier through `get`).
    fn local_path(&self, key: &str) -> Option<PathBuf> {
        self.local.local_path(key).filter(|p| p.is_file())
    }

    async fn recorded_sha256(&self, key: &str) -> Result<Option<Sha256Digest>> {
        match self.local.recorded_sha256(key).await {
            Err(e) => match self.fallback(key, &e) {
                Some(cloud) => cloud.recorded_sha256(key).await,
                None => Err(e),
            },
            ok => ok,
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::TryStreamExt;

    use super::*;
    use crate::FsStore;

    fn store(dir: &Path, name: &str) -> Arc<dyn BlobStore> {
        Arc::new(FsStore::open(dir.join(name)).unwrap())
    }

    #[tokio::test]
    async fn contract_with_every_tier() {
        let dir = tempfile::tempdir().unwrap();
        let t = TieredStore::new(store(dir.path(), "l"), Some(store(dir.path(), "c")), Some(store(dir.path(), "m")));
        crate::contract::run_all(Arc::new(t), dir.path()).await;
    }

    #[tokio::test]
    async fn writes_local_and_mirror_reads_fall_back_to_cloud() {
        let dir = tempfile::tempdir().unwrap();
        let (local, cloud, mirror) = (store(dir.path(), "l"), store(dir.path(), "c"), store(dir.path(), "m"));
        let t = TieredStore::new(local.clone(), Some(cloud.clone()), Some(mirror.clone()));
        let key = "dicom/v1/aa/bb/1/2/3.0123456789abcdef.dcm";
        t.put_bytes(key, Bytes::from_static(b"pixels")).await.unwrap();
        assert_eq!(local.head(key).await.unwrap(), Some(6));
        assert_eq!(mirror.head(key).await.unwrap(), Some(6));
        assert_eq!(cloud.head(key).await.unwrap(), None, "the cloud tier is filled by the copy queue, not by put");

        // The cloud copy; then the local tier loses the object.
        cloud.put_bytes(key, Bytes::from_static(b"pixels")).await.unwrap();
        local.delete(key).await.unwrap();
        assert!(t.local_path(key).is_none(), "no local file to parse");
        assert_eq!(&t.get_range(key, 1, 3).await.unwrap()[..], b"ixe");
        let whole: Vec<Bytes> = t.get(key).await.unwrap().try_collect().await.unwrap();
        assert_eq!(whole.concat(), b"pixels");
        assert_eq!(t.head(key).await.unwrap(), Some(6));
        assert_eq!(t.cloud_reads(), 2);

        t.delete(key).await.unwrap();
        for s in [&local, &cloud, &mirror] {
            assert_eq!(s.head(key).await.unwrap(), None);
        }
        assert!(matches!(t.get(key).await, Err(BlobError::NotFound(_))));
    }
}
