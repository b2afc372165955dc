//! Blob stores: where the bytes of original objects (and, later, derived
//! data) live. The catalog records keys; a [`BlobStore`] maps keys to bytes.
//!
//! - [`BlobStore`]: the trait the archive holds as `Arc<dyn BlobStore>`.
//! - [`FsStore`]: files under a root directory, written durably (temp file,
//!   fsync, link into place, fsync the directory). The embedded default.
//! - [`contract`] (feature `contract-tests`): the suite every store passes.
//!
//! Keys are relative, `/`-separated paths of `[A-Za-z0-9._-]` segments, so
//! that the same key works as a file path and as an object-store key.

mod fs;
#[cfg(any(test, feature = "contract-tests"))]
pub mod contract;

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

pub use fs::FsStore;

/// Errors of a blob store.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("no blob with key {0}")]
    NotFound(String),
    #[error("invalid blob key {0:?}: keys are relative paths of [A-Za-z0-9._-] segments")]
    InvalidKey(String),
    #[error("range {offset}+{len} is outside blob {key} ({size} bytes)")]
    RangeOutside { key: String, offset: u64, len: u64, size: u64 },
    #[error("blob store I/O error on {key}: {source}")]
    Io { key: String, source: std::io::Error },
}

pub type Result<T, E = BlobError> = std::result::Result<T, E>;

/// A stream of a blob's bytes.
pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

/// A store of immutable blobs by key.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// A short name for logs (`fs:/var/lib/yunying/blobs`).
    fn describe(&self) -> String;

    /// Stores the content of a local, already fsync'd file under `key`,
    /// durably: when this returns, the blob survives a power failure. The
    /// staged file is left in place (the caller removes it). Storing the same
    /// key again is a no-op when the content has the same size.
    async fn put_file(&self, key: &str, staged: &Path) -> Result<()>;

    /// Stores bytes under `key`, durably.
    async fn put_bytes(&self, key: &str, bytes: Bytes) -> Result<()>;

    /// Streams the whole blob.
    async fn get(&self, key: &str) -> Result<ByteStream>;

    /// Reads `len` bytes from `offset`.
    async fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Bytes>;

    /// The size of a blob, or `None` when absent.
    async fn head(&self, key: &str) -> Result<Option<u64>>;

    /// Removes a blob (absent blobs are not an error).
    async fn delete(&self, key: &str) -> Result<()>;

    /// Every key under a prefix (`""` for all), in no particular order.
    async fn list(&self, prefix: &str) -> Result<Vec<String>>;

    /// The local file of a blob, when the store keeps blobs as files: lets
    /// the archive parse or serve it without copying.
    fn local_path(&self, key: &str) -> Option<PathBuf>;
}

/// Checks a key's syntax.
pub fn validate_key(key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && key.len() <= 1024
        && key.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        });
    if ok { Ok(()) } else { Err(BlobError::InvalidKey(key.to_string())) }
}

#[cfg(test)]
mod tests {
    #[test]
    fn key_syntax() {
        assert!(super::validate_key("dicom/v1/ab/cd/1.2.3/4.5.dcm").is_ok());
        for bad in ["", "/abs", "a//b", "../x", "a/./b", "a b", "a\\b", "x/.."] {
            assert!(super::validate_key(bad).is_err(), "{bad}");
        }
    }
}
