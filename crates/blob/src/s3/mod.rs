//! The S3-compatible blob store: objects in a bucket of MinIO, Ceph RGW,
//! s3s-fs (path-style requests) or Alibaba OSS (virtual-hosted style), over
//! object_store's S3 client.
//!
//! - Durability: a put returns when the store acknowledged it (PUT or
//!   CompleteMultipartUpload succeeded).
//! - Large files go up in parts (multipart upload, a few parts in flight),
//!   streamed from the staged file: a multi-gigabyte object is never held in
//!   memory. An interrupted upload is aborted; one left by a crash is removed
//!   by the bucket's lifecycle rule (AbortIncompleteMultipartUpload).
//! - Checksums: the SHA-256 of the content is computed before the upload and
//!   recorded in the object's metadata (`x-amz-meta-sha256`); whole reads
//!   ([`BlobStore::get`]) check it as they stream (a damaged object ends its
//!   stream with an `InvalidData` error), [`BlobStore::verify`] reports
//!   [`BlobError::ChecksumMismatch`]. Requests are signed with the payload's
//!   SHA-256 (SigV4), so the store also refuses bytes altered in transit.
//! - Retries with exponential backoff on connection errors, 5xx and throttling.

mod http;
mod restore;
#[cfg(test)]
mod tests;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{
    Attribute, Attributes, BackoffConfig, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutMultipartOptions,
    PutOptions, PutPayload, RetryConfig, WriteMultipart,
};
use sha2::Digest;
use tokio::io::AsyncReadExt;

use crate::{BlobError, BlobStore, ByteStream, Result, Sha256Digest, validate_key};

/// The user metadata the content's SHA-256 is recorded in (`x-amz-meta-sha256`).
const SHA256_METADATA: &str = "sha256";
/// S3's smallest part (except the last).
const MIN_PART: usize = 5 << 20;
/// S3's most parts of one upload.
const MAX_PARTS: u64 = 10_000;
const READ_CHUNK: usize = 1 << 20;

/// Where and how to reach the bucket.
#[derive(Clone)]
pub struct S3Config {
    /// `https://s3.oss-cn-hangzhou.aliyuncs.com`, `http://127.0.0.1:9000`...
    /// (without the bucket, in either style).
    pub endpoint: String,
    pub bucket: String,
    /// The signing region (`us-east-1` for MinIO/Ceph, `cn-hangzhou` for OSS).
    pub region: String,
    /// Keys are stored under this folder of the bucket (`""`: at its root).
    pub prefix: String,
    /// Virtual-hosted style (`https://BUCKET.endpoint/key`, Alibaba OSS,
    /// AWS) instead of path style (`https://endpoint/BUCKET/key`, MinIO,
    /// Ceph RGW, s3s-fs).
    pub virtual_hosted: bool,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Allow a plain `http://` endpoint (loopback tests, a store on a
    /// private network behind its own protection).
    pub allow_http: bool,
    /// Files larger than this go up in parts of `part_size` bytes.
    pub part_size: usize,
    /// Parts uploaded at once.
    pub upload_concurrency: usize,
    /// Check the recorded SHA-256 when a whole object is read.
    pub verify_reads: bool,
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of a response.
    pub read_timeout: Duration,
    /// Retries of a failed request, for at most `retry_timeout` in all.
    pub max_retries: usize,
    pub retry_timeout: Duration,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("prefix", &self.prefix)
            .field("virtual_hosted", &self.virtual_hosted)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("allow_http", &self.allow_http)
            .field("part_size", &self.part_size)
            .field("upload_concurrency", &self.upload_concurrency)
            .field("verify_reads", &self.verify_reads)
            .finish_non_exhaustive()
    }
}

impl S3Config {
    /// Settings with the defaults: path style, region `us-east-1`, no
    /// prefix, HTTPS only, 16 MiB parts, 2 parts in flight, reads verified,
    /// 10 s to connect, 60 s without data, 5 retries within 3 minutes.
    pub fn new(
        endpoint: impl Into<String>,
        bucket: impl Into<String>,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
    ) -> S3Config {
        S3Config {
            endpoint: endpoint.into(),
            bucket: bucket.into(),
            region: "us-east-1".into(),
            prefix: String::new(),
            virtual_hosted: false,
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            allow_http: false,
            part_size: 16 << 20,
            upload_concurrency: 2,
            verify_reads: true,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
            max_retries: 5,
            retry_timeout: Duration::from_secs(180),
        }
    }

    /// Checks the settings; the message says what to fix.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let url = reqwest::Url::parse(self.endpoint.trim())
            .map_err(|e| format!("endpoint {:?} is not a URL ({e}); use https://host[:port]", self.endpoint))?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            "http" => {
                return Err(format!(
                    "endpoint {:?} is plain HTTP; use https://, or set allow_http = true for a store on a protected network",
                    self.endpoint
                ));
            }
            other => return Err(format!("endpoint {:?}: scheme {other:?} is not http(s)", self.endpoint)),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("endpoint must not carry credentials; give access_key_id and the secret separately".into());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!("endpoint {:?} must not have a query or fragment", self.endpoint));
        }
        let host = url.host_str().ok_or_else(|| format!("endpoint {:?} has no host", self.endpoint))?;
        let is_ip = host.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>().is_ok();
        if self.virtual_hosted && is_ip {
            return Err(format!(
                "endpoint {:?}: virtual-hosted style puts the bucket in the host name, so it needs a DNS name, not an IP address (use path style)",
                self.endpoint
            ));
        }
        let b = &self.bucket;
        let bucket_ok = (3..=63).contains(&b.len())
            && b.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.')
            && b.as_bytes()[0].is_ascii_alphanumeric()
            && b.as_bytes()[b.len() - 1].is_ascii_alphanumeric();
        if !bucket_ok {
            return Err(format!(
                "bucket {b:?} is not a bucket name (3 to 63 lowercase letters, digits, '-' or '.', starting and ending with a letter or digit)"
            ));
        }
        if self.region.trim().is_empty() {
            return Err(
                "region must not be empty (us-east-1 for MinIO and Ceph, the region id such as cn-hangzhou for OSS)"
                    .into(),
            );
        }
        let prefix = self.prefix.trim_matches('/');
        if !prefix.is_empty() && validate_key(prefix).is_err() {
            return Err(format!("prefix {:?} must be a path of [A-Za-z0-9._-] segments", self.prefix));
        }
        if self.access_key_id.trim().is_empty() || self.secret_access_key.is_empty() {
            return Err("the access key id and the secret access key are both needed".into());
        }
        if self.part_size < MIN_PART {
            return Err(format!("part size {} is below S3's minimum of 5 MiB", self.part_size));
        }
        Ok(())
    }

    /// The URL of the bucket: the endpoint with the bucket in the path
    /// (path style) or in front of the host name (virtual-hosted style).
    pub fn bucket_url(&self) -> std::result::Result<String, String> {
        self.validate()?;
        let mut url = reqwest::Url::parse(self.endpoint.trim()).map_err(|e| e.to_string())?;
        let path = url.path().trim_end_matches('/').to_string();
        if self.virtual_hosted {
            let host = url.host_str().unwrap_or_default().to_string();
            if !host.starts_with(&format!("{}.", self.bucket)) {
                url.set_host(Some(&format!("{}.{host}", self.bucket))).map_err(|e| e.to_string())?;
            }
            url.set_path(&path);
        } else {
            url.set_path(&format!("{path}/{}", self.bucket));
        }
        Ok(url.as_str().trim_end_matches('/').to_string())
    }
}

/// Blobs as objects in an S3-compatible bucket.
#[derive(Debug, Clone)]
pub struct S3Store {
    store: Arc<AmazonS3>,
    /// `""` or `folder/` (with the slash).
    prefix: String,
    describe: String,
    part_size: usize,
    upload_concurrency: usize,
    verify_reads: bool,
    restorer: Arc<restore::Restorer>,
}

fn remote(key: &str) -> impl FnOnce(object_store::Error) -> BlobError + '_ {
    move |e| match e {
        object_store::Error::NotFound { .. } => BlobError::NotFound(key.to_string()),
        object_store::Error::InvalidPath { .. } => BlobError::InvalidKey(key.to_string()),
        other => BlobError::Remote { key: key.to_string(), source: Box::new(other) },
    }
}

fn io_err(key: &str) -> impl FnOnce(io::Error) -> BlobError + '_ {
    move |source| BlobError::Io { key: key.to_string(), source }
}

fn recorded(attributes: &Attributes) -> Option<Sha256Digest> {
    attributes.get(&Attribute::Metadata(SHA256_METADATA.into())).and_then(|v| Sha256Digest::from_hex(v.as_ref()))
}

fn with_sha256(sha: &Sha256Digest) -> Attributes {
    let mut a = Attributes::new();
    a.insert(Attribute::Metadata(SHA256_METADATA.into()), sha.to_hex().into());
    a
}

/// The SHA-256 and size of a local file, read in a blocking task.
async fn hash_file(key: &str, path: &Path) -> Result<(Sha256Digest, u64)> {
    let path = path.to_path_buf();
    let res = tokio::task::spawn_blocking(move || -> io::Result<(Sha256Digest, u64)> {
        use std::io::Read;
        let mut f = std::fs::File::open(&path)?;
        let mut h = sha2::Sha256::new();
        let mut buf = vec![0u8; READ_CHUNK];
        let mut n = 0u64;
        loop {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(k) => {
                    h.update(&buf[..k]);
                    n += k as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok((Sha256Digest(h.finalize().into()), n))
    })
    .await
    .unwrap_or_else(|e| Err(io::Error::other(format!("hashing task failed: {e}"))));
    res.map_err(io_err(key))
}

impl S3Store {
    /// A store for the bucket the settings name (no request is made yet).
    pub fn open(config: &S3Config) -> Result<S3Store> {
        config.validate().map_err(BlobError::Config)?;
        let bucket_url = config.bucket_url().map_err(BlobError::Config)?;
        let connector =
            http::ReqwestConnector::new(http::Timeouts { connect: config.connect_timeout, read: config.read_timeout })
                .map_err(|e| BlobError::Config(format!("cannot set up the HTTP client: {e}")))?;
        let restorer = Arc::new(restore::Restorer {
            client: connector.client(),
            credential: object_store::aws::AwsCredential {
                key_id: config.access_key_id.trim().to_string(),
                secret_key: config.secret_access_key.clone(),
                token: None,
            },
            region: config.region.trim().to_string(),
            bucket_url: bucket_url.clone(),
        });
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(200),
                max_backoff: Duration::from_secs(15),
                base: 2.0,
            },
            max_retries: config.max_retries,
            retry_timeout: config.retry_timeout,
        };
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(config.region.trim())
            .with_access_key_id(config.access_key_id.trim())
            .with_secret_access_key(&config.secret_access_key)
            .with_allow_http(config.allow_http)
            .with_retry(retry)
            .with_http_connector(connector);
        builder = if config.virtual_hosted {
            // object_store wants the bucket's own host as the endpoint.
            builder.with_virtual_hosted_style_request(true).with_endpoint(bucket_url)
        } else {
            builder.with_endpoint(config.endpoint.trim().trim_end_matches('/'))
        };
        let store = builder.build().map_err(|e| BlobError::Config(format!("S3 store: {e}")))?;
        let prefix = match config.prefix.trim_matches('/') {
            "" => String::new(),
            p => format!("{p}/"),
        };
        let describe = format!("s3://{}/{} ({})", config.bucket, prefix, config.endpoint.trim().trim_end_matches('/'));
        Ok(S3Store {
            store: Arc::new(store),
            prefix,
            describe,
            part_size: config.part_size,
            upload_concurrency: config.upload_concurrency.clamp(1, 16),
            verify_reads: config.verify_reads,
            restorer,
        })
    }

    /// Maps a read's error; an object in an archive storage class gets a
    /// restore request and is reported as [`BlobError::Archived`].
    async fn read_error(&self, key: &str, e: object_store::Error) -> BlobError {
        if !restore::is_archived(&e) {
            return remote(key)(e);
        }
        let detail = match self.restorer.request(&format!("{}{key}", self.prefix)).await {
            Ok(restore::RestoreState::Started) => "a restore was requested".to_string(),
            Ok(restore::RestoreState::InProgress) => "a restore is under way".to_string(),
            Ok(restore::RestoreState::Ready) => "restored just now".to_string(),
            Err(e) => format!("the restore request failed: {e}"),
        };
        tracing::warn!(%key, %detail, "an object in an archive storage class was read");
        BlobError::Archived { key: key.to_string(), detail }
    }

    fn location(&self, key: &str) -> Result<ObjectPath> {
        validate_key(key)?;
        ObjectPath::parse(format!("{}{key}", self.prefix)).map_err(|_| BlobError::InvalidKey(key.to_string()))
    }

    /// The part size for an object of `size` bytes (larger than the
    /// configured one when it would need more than 10 000 parts).
    fn part_size_for(&self, size: u64) -> usize {
        let needed = size.div_ceil(MAX_PARTS) as usize;
        self.part_size.max(needed).max(MIN_PART)
    }

    async fn put_small(&self, key: &str, path: &ObjectPath, bytes: Bytes, sha: &Sha256Digest) -> Result<()> {
        let opts = PutOptions { attributes: with_sha256(sha), ..Default::default() };
        self.store.put_opts(path, PutPayload::from(bytes), opts).await.map_err(remote(key))?;
        Ok(())
    }

    async fn start_multipart(
        &self,
        key: &str,
        path: &ObjectPath,
        sha: &Sha256Digest,
        size: u64,
    ) -> Result<WriteMultipart> {
        let opts = PutMultipartOptions { attributes: with_sha256(sha), ..Default::default() };
        let upload = self.store.put_multipart_opts(path, opts).await.map_err(remote(key))?;
        Ok(WriteMultipart::new_with_chunk_size(upload, self.part_size_for(size)))
    }

    /// Streams a staged file up in parts; aborts the upload on any failure.
    async fn put_file_multipart(
        &self,
        key: &str,
        path: &ObjectPath,
        staged: &Path,
        sha: &Sha256Digest,
        size: u64,
    ) -> Result<()> {
        let mut file = tokio::fs::File::open(staged).await.map_err(io_err(key))?;
        let mut w = self.start_multipart(key, path, sha, size).await?;
        let mut buf = vec![0u8; READ_CHUNK];
        let mut sent = 0u64;
        let failure = loop {
            let n = match file.read(&mut buf).await {
                Ok(0) => break None,
                Ok(n) => n,
                Err(e) => break Some(io_err(key)(e)),
            };
            if let Err(e) = w.wait_for_capacity(self.upload_concurrency).await {
                break Some(remote(key)(e));
            }
            w.write(&buf[..n]);
            sent += n as u64;
        };
        let failure = failure.or_else(|| {
            (sent != size).then(|| BlobError::Io {
                key: key.to_string(),
                source: io::Error::other(format!(
                    "the staged file changed during the upload ({size} then {sent} bytes)"
                )),
            })
        });
        if let Some(e) = failure {
            if let Err(abort) = w.abort().await {
                tracing::warn!(key, error = %abort, "could not abort a multipart upload (the bucket's lifecycle rule removes it)");
            }
            return Err(e);
        }
        // finish() aborts the upload when a part or the completion fails.
        w.finish().await.map_err(remote(key))?;
        Ok(())
    }

    /// The whole object, its stream checked against the recorded SHA-256
    /// when `verify` (a mismatch ends the stream with `InvalidData`).
    async fn get_stream(&self, key: &str, verify: bool) -> Result<ByteStream> {
        let path = self.location(key)?;
        let res = match self.store.get(&path).await {
            Ok(r) => r,
            Err(e) => return Err(self.read_error(key, e).await),
        };
        let want = recorded(&res.attributes);
        let k = key.to_string();
        let inner = res
            .into_stream()
            .map_err(move |e| io::Error::other(BlobError::Remote { key: k.clone(), source: Box::new(e) }));
        let Some(want) = want.filter(|_| verify) else {
            return Ok(Box::pin(inner));
        };
        let key = key.to_string();
        let stream = futures::stream::unfold(Some((inner, sha2::Sha256::new())), move |state| {
            let key = key.clone();
            async move {
                let (mut inner, mut h) = state?;
                match inner.next().await {
                    Some(Ok(b)) => {
                        h.update(&b);
                        Some((Ok(b), Some((inner, h))))
                    }
                    Some(Err(e)) => Some((Err(e), None)),
                    None => {
                        let actual = Sha256Digest(h.finalize().into());
                        if actual == want {
                            None
                        } else {
                            tracing::error!(key, recorded = %want, actual = %actual, "a stored object does not match its recorded SHA-256");
                            let e = BlobError::ChecksumMismatch {
                                key,
                                what: "recorded by the store",
                                expected: want,
                                actual,
                            };
                            Some((Err(io::Error::new(io::ErrorKind::InvalidData, e)), None))
                        }
                    }
                }
            }
        });
        Ok(Box::pin(stream))
    }
}

#[async_trait]
impl BlobStore for S3Store {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    async fn put_file(&self, key: &str, staged: &Path) -> Result<()> {
        let path = self.location(key)?;
        let want = tokio::fs::metadata(staged).await.map_err(io_err(key))?.len();
        if let Some(have) = self.head(key).await? {
            if have == want {
                return Ok(());
            }
            return Err(BlobError::Io {
                key: key.to_string(),
                source: io::Error::other(format!("a different blob ({have} bytes) already has this key")),
            });
        }
        if want <= self.part_size as u64 {
            // Small: one PUT of the file's bytes.
            let bytes = Bytes::from(tokio::fs::read(staged).await.map_err(io_err(key))?);
            let sha = Sha256Digest::of(&bytes);
            return self.put_small(key, &path, bytes, &sha).await;
        }
        // Large: the checksum goes in the metadata at the start of the
        // upload, so hash the file first, then stream it up in parts.
        let (sha, size) = hash_file(key, staged).await?;
        self.put_file_multipart(key, &path, staged, &sha, size).await
    }

    async fn put_bytes(&self, key: &str, bytes: Bytes) -> Result<()> {
        let sha = Sha256Digest::of(&bytes);
        self.put_bytes_with_sha256(key, bytes, &sha).await
    }

    async fn put_bytes_with_sha256(&self, key: &str, bytes: Bytes, sha: &Sha256Digest) -> Result<()> {
        let path = self.location(key)?;
        let sha = *sha;
        if bytes.len() <= self.part_size {
            return self.put_small(key, &path, bytes, &sha).await;
        }
        let mut w = self.start_multipart(key, &path, &sha, bytes.len() as u64).await?;
        w.put(bytes);
        // finish() aborts the upload when a part or the completion fails.
        w.finish().await.map_err(remote(key))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<ByteStream> {
        self.get_stream(key, self.verify_reads).await
    }

    async fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Bytes> {
        let path = self.location(key)?;
        let outside = |size| BlobError::RangeOutside { key: key.to_string(), offset, len, size };
        let Some(end) = offset.checked_add(len) else {
            return Err(outside(self.head(key).await?.ok_or_else(|| BlobError::NotFound(key.to_string()))?));
        };
        if len == 0 {
            let size = self.head(key).await?.ok_or_else(|| BlobError::NotFound(key.to_string()))?;
            return if offset <= size { Ok(Bytes::new()) } else { Err(outside(size)) };
        }
        let opts = GetOptions { range: Some(GetRange::Bounded(offset..end)), ..Default::default() };
        let res = match self.store.get_opts(&path, opts).await {
            Ok(res) => res,
            Err(object_store::Error::NotFound { .. }) => return Err(BlobError::NotFound(key.to_string())),
            Err(e) if restore::is_archived(&e) => return Err(self.read_error(key, e).await),
            Err(e) => {
                // A range starting past the end is refused (416): say so as FsStore does.
                return match self.head(key).await {
                    Ok(None) => Err(BlobError::NotFound(key.to_string())),
                    Ok(Some(size)) if end > size => Err(outside(size)),
                    _ => Err(remote(key)(e)),
                };
            }
        };
        let size = res.meta.size;
        if end > size {
            return Err(outside(size));
        }
        let bytes = res.bytes().await.map_err(remote(key))?;
        if bytes.len() as u64 != len {
            return Err(BlobError::Remote {
                key: key.to_string(),
                source: format!("asked for {len} bytes at {offset}, got {}", bytes.len()).into(),
            });
        }
        Ok(bytes)
    }

    async fn head(&self, key: &str) -> Result<Option<u64>> {
        let path = self.location(key)?;
        match self.store.head(&path).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(remote(key)(e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let path = self.location(key)?;
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(remote(key)(e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        // object_store lists whole path segments: list the folder the
        // prefix names, then keep the keys that start with the prefix.
        let dir = match prefix.rfind('/') {
            Some(i) => &prefix[..i],
            None => "",
        };
        let full = format!("{}{dir}", self.prefix);
        let full = full.trim_end_matches('/');
        let folder = if full.is_empty() {
            None
        } else {
            Some(ObjectPath::parse(full).map_err(|_| BlobError::InvalidKey(prefix.to_string()))?)
        };
        let mut stream = self.store.list(folder.as_ref());
        let mut out = Vec::new();
        while let Some(meta) = stream.try_next().await.map_err(remote(prefix))? {
            let Some(key) = meta.location.as_ref().strip_prefix(self.prefix.as_str()) else { continue };
            if key.starts_with(prefix) && validate_key(key).is_ok() {
                out.push(key.to_string());
            }
        }
        Ok(out)
    }

    fn local_path(&self, _key: &str) -> Option<PathBuf> {
        None
    }

    async fn recorded_sha256(&self, key: &str) -> Result<Option<Sha256Digest>> {
        let path = self.location(key)?;
        let opts = GetOptions { head: true, ..Default::default() };
        let res = self.store.get_opts(&path, opts).await.map_err(remote(key))?;
        Ok(recorded(&res.attributes))
    }

    async fn content_sha256(&self, key: &str) -> Result<Sha256Digest> {
        let mut stream = self.get_stream(key, false).await?;
        let mut h = sha2::Sha256::new();
        while let Some(b) = stream.try_next().await.map_err(io_err(key))? {
            h.update(&b);
        }
        Ok(Sha256Digest(h.finalize().into()))
    }
}
