//! Blob stores: where the bytes of original objects (and, later, derived
//! data) live. The catalog records keys; a [`BlobStore`] maps keys to bytes.
//!
//! - [`BlobStore`]: the trait the archive holds as `Arc<dyn BlobStore>`.
//! - [`FsStore`]: files under a root directory, written durably (temp file,
//!   fsync, link into place, fsync the directory). The embedded default.
//! - [`S3Store`]: objects in an S3-compatible bucket (MinIO, Ceph RGW,
//!   Alibaba OSS...), with each object's SHA-256 recorded in its metadata.
//! - [`TieredStore`]: the local tier, an optional cloud tier (filled by the
//!   catalog's copy queue, read when the local tier lacks an object) and an
//!   optional mirror written with every put (a change of store's cut-over).
//! - [`contract`] (feature `contract-tests`): the suite every store passes.
//!
//! Keys are relative, `/`-separated paths of `[A-Za-z0-9._-]` segments, so
//! that the same key works as a file path and as an object-store key.

mod fs;
mod s3;
mod tiered;
#[cfg(any(test, feature = "contract-tests"))]
pub mod contract;

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use futures::stream::BoxStream;
use sha2::Digest;

pub use fs::FsStore;
pub use s3::{S3Config, S3Store};
pub use tiered::TieredStore;

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
    /// The content of a blob is not what was recorded or expected.
    #[error("blob {key} is damaged: its content has SHA-256 {actual}, but {expected} was {what}")]
    ChecksumMismatch { key: String, what: &'static str, expected: Sha256Digest, actual: Sha256Digest },
    /// The remote store (S3...) failed or refused a request (after retries).
    #[error("blob store error on {key}: {source}")]
    Remote { key: String, source: Box<dyn std::error::Error + Send + Sync> },
    /// The store's settings are unusable.
    #[error("blob store configuration: {0}")]
    Config(String),
    /// The object is in an archive storage class: a restore was requested
    /// (or is under way); it can be read in a minute or two.
    #[error("blob {key} is in an archive storage class and is being retrieved ({detail}); try again shortly")]
    Archived { key: String, detail: String },
}

pub type Result<T, E = BlobError> = std::result::Result<T, E>;

/// A stream of a blob's bytes.
pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

/// The SHA-256 digest of a blob's content (shown as lowercase hex, as the
/// catalog keeps it).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha256Digest(pub [u8; 32]);

impl Sha256Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Sha256Digest {
        Sha256Digest(sha2::Sha256::digest(bytes).into())
    }

    /// Parses 64 hex digits (either case).
    pub fn from_hex(hex: &str) -> Option<Sha256Digest> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex.trim(), &mut out).ok()?;
        Some(Sha256Digest(out))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl std::fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl std::fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sha256Digest({})", self.to_hex())
    }
}

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

    /// Stores bytes whose SHA-256 the caller has computed already (a copy
    /// checked against the catalog), durably: a store that records
    /// checksums takes this one instead of hashing the bytes again.
    async fn put_bytes_with_sha256(&self, key: &str, bytes: Bytes, sha256: &Sha256Digest) -> Result<()> {
        let _ = sha256;
        self.put_bytes(key, bytes).await
    }

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

    /// The SHA-256 of a blob's content as the store recorded it when the
    /// blob was stored, read from the store's metadata without reading the
    /// content: a cheap check that a copy elsewhere holds the same bytes, and
    /// the record [`BlobStore::verify`] compares the content with. `None`
    /// when the store keeps no such record (the filesystem store: the
    /// catalog's checksum is the reference there) or the blob was stored
    /// without one (by another program). `NotFound` when the blob is absent.
    async fn recorded_sha256(&self, key: &str) -> Result<Option<Sha256Digest>>;

    /// Reads the whole blob and computes the SHA-256 of its content.
    async fn content_sha256(&self, key: &str) -> Result<Sha256Digest> {
        let mut stream = self.get(key).await?;
        let mut hasher = sha2::Sha256::new();
        let io = |source| BlobError::Io { key: key.to_string(), source };
        while let Some(chunk) = stream.try_next().await.map_err(io)? {
            hasher.update(&chunk);
        }
        Ok(Sha256Digest(hasher.finalize().into()))
    }

    /// Reads the whole blob and checks its content against the store's
    /// record (if any) and against `expected` (for example the catalog's
    /// checksum), returning the content's SHA-256; `ChecksumMismatch` when
    /// either differs.
    async fn verify(&self, key: &str, expected: Option<&Sha256Digest>) -> Result<Sha256Digest> {
        let recorded = self.recorded_sha256(key).await?;
        let actual = self.content_sha256(key).await?;
        for (what, want) in [("recorded by the store", recorded.as_ref()), ("expected", expected)] {
            if let Some(want) = want
                && *want != actual
            {
                return Err(BlobError::ChecksumMismatch { key: key.to_string(), what, expected: *want, actual });
            }
        }
        Ok(actual)
    }
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
    fn digests() {
        let d = super::Sha256Digest::of(b"abc");
        assert_eq!(d.to_hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(super::Sha256Digest::from_hex(&d.to_hex().to_uppercase()), Some(d));
        assert_eq!(super::Sha256Digest::from_hex("abc"), None);
    }

    #[test]
    fn key_syntax() {
        assert!(super::validate_key("dicom/v1/ab/cd/1.2.3/4.5.dcm").is_ok());
        for bad in ["", "/abs", "a//b", "../x", "a/./b", "a b", "a\\b", "x/.."] {
            assert!(super::validate_key(bad).is_err(), "{bad}");
        }
    }
}
