//! The S3 store against a real S3-compatible server: s3s-fs (pinned 0.14.1,
//! installed by `scripts/setup-s3s.sh`) started on a free loopback port by
//! each test. Without the binary the server tests are skipped with a loud
//! message, unless `YUNYING_REQUIRE_S3` is set (CI), when they fail.
//!
//! s3s-fs keeps each object's metadata in a file at its root named with the
//! base64 of the whole key, so it fails (500, "File name too long") on keys
//! longer than about 170 bytes; the archive's real keys (about 175 bytes with
//! a prefix) work on MinIO, Ceph, OSS and moto, but not on s3s-fs. The keys
//! of these tests are shorter.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::signer::Signer;

use super::{S3Config, S3Store};
use crate::{BlobError, BlobStore, Sha256Digest};

const ACCESS_KEY: &str = "yunying-test";
const SECRET_KEY: &str = "s3s-secret-Never-Logged";
const BUCKET: &str = "yunying-test";

/// The s3s-fs binary: `YUNYING_S3S_FS`, the tool cache, or the PATH.
fn s3s_binary() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("YUNYING_S3S_FS") {
        return Some(PathBuf::from(p));
    }
    let tools = std::env::var_os("YUNYING_TOOLS_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/yunying/tools")));
    if let Some(t) = tools {
        let p = t.join("bin/s3s-fs");
        if p.is_file() {
            return Some(p);
        }
    }
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join("s3s-fs")).find(|p| p.is_file())
}

/// A running s3s-fs over a temporary root, killed on drop.
struct Server {
    child: Child,
    root: tempfile::TempDir,
    endpoint: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts a server with an empty bucket, or `None` (test skipped) when
    /// the binary is missing and `YUNYING_REQUIRE_S3` is unset.
    fn start(test: &str) -> Option<Server> {
        let Some(bin) = s3s_binary() else {
            if std::env::var_os("YUNYING_REQUIRE_S3").is_some() {
                panic!("YUNYING_REQUIRE_S3 is set but s3s-fs is missing: run scripts/setup-s3s.sh");
            }
            eprintln!(
                "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
                 !!! SKIPPED {test}: s3s-fs is not installed, so the S3 store is NOT tested.\n\
                 !!! Run scripts/setup-s3s.sh (set YUNYING_REQUIRE_S3=1 to make this a failure).\n\
                 !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
            );
            return None;
        };
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join(BUCKET)).unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(&bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--access-key", ACCESS_KEY])
            .args(["--secret-key", SECRET_KEY])
            .arg(root.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let server = Server { child, root, endpoint: format!("http://127.0.0.1:{port}") };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not listen on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(server)
    }

    fn config(&self, prefix: &str) -> S3Config {
        let mut c = S3Config::new(&self.endpoint, BUCKET, ACCESS_KEY, SECRET_KEY);
        c.prefix = prefix.into();
        c.allow_http = true;
        c.max_retries = 2;
        c.retry_timeout = Duration::from_secs(20);
        c
    }

    /// The file s3s-fs keeps an object in.
    fn object_file(&self, prefix: &str, key: &str) -> PathBuf {
        let mut p = self.root.path().join(BUCKET);
        if !prefix.is_empty() {
            p = p.join(prefix);
        }
        p.join(key)
    }
}

/// Deterministic, incompressible test content.
fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_on_s3s_fs() {
    let Some(server) = Server::start("contract_on_s3s_fs") else { return };
    let scratch = tempfile::tempdir().unwrap();
    let store = Arc::new(S3Store::open(&server.config("archive/site-1")).unwrap());
    crate::contract::run_all(store.clone(), scratch.path()).await;
    // The keys live under the prefix, in the bucket.
    store.put_bytes("derived/v1/y/z.jpg", Bytes::from_static(b"z")).await.unwrap();
    assert!(server.object_file("archive/site-1", "derived/v1/y/z.jpg").is_file());
    assert_eq!(store.recorded_sha256("derived/v1/y/z.jpg").await.unwrap(), Some(Sha256Digest::of(b"z")));

    // And at the bucket's root, without a prefix: the prefix's objects are
    // then listed as keys too (under archive/...).
    let root_store = Arc::new(S3Store::open(&server.config("")).unwrap());
    let mut keys = root_store.list("archive/site-1/derived/").await.unwrap();
    keys.sort();
    assert_eq!(keys, ["archive/site-1/derived/v1/x/thumb.jpg", "archive/site-1/derived/v1/y/z.jpg"]);
    let scratch2 = tempfile::tempdir().unwrap();
    root_store.delete("archive/site-1/derived/v1/y/z.jpg").await.unwrap();
    root_store.delete("archive/site-1/derived/v1/x/thumb.jpg").await.unwrap();
    assert!(root_store.list("").await.unwrap().is_empty(), "{:?}", root_store.list("").await);
    crate::contract::run_all(root_store, scratch2.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_upload_round_trips() {
    let Some(server) = Server::start("multipart_upload_round_trips") else { return };
    let scratch = tempfile::tempdir().unwrap();
    let mut config = server.config("mp");
    config.part_size = 16 << 20;
    let store = S3Store::open(&config).unwrap();
    // 40 MB: three parts (16 + 16 + 8 MiB-ish).
    let content = pseudo_random(40_000_000, 42);
    let staged = scratch.path().join("big.dcm");
    std::fs::write(&staged, &content).unwrap();
    let key = "dicom/v1/12/34/1.2/1.2.3/1.2.3.4.big.dcm";
    store.put_file(key, &staged).await.unwrap();
    assert_eq!(store.head(key).await.unwrap(), Some(content.len() as u64));
    assert_eq!(std::fs::read(server.object_file("mp", key)).unwrap(), content, "byte-exact on the server's disk");
    // A multipart upload's ETag is `hash-parts`.
    let etag = |k: &str| {
        let store = &store;
        let k = k.to_string();
        async move { store.store.head(&store.location(&k).unwrap()).await.unwrap().e_tag.unwrap_or_default() }
    };
    assert!(etag(key).await.trim_matches('"').ends_with("-3"), "three parts: {}", etag(key).await);
    let got: Vec<Bytes> = store.get(key).await.unwrap().try_collect().await.unwrap();
    assert_eq!(got.concat(), content, "byte-exact through get");
    // Ranged reads, across the part boundary and at the end.
    let b: usize = 16 << 20;
    assert_eq!(&store.get_range(key, b as u64 - 10, 20).await.unwrap()[..], &content[b - 10..b + 10]);
    assert_eq!(&store.get_range(key, 39_999_990, 10).await.unwrap()[..], &content[39_999_990..]);
    assert!(matches!(
        store.get_range(key, 39_999_990, 11).await,
        Err(BlobError::RangeOutside { size: 40_000_000, .. })
    ));
    assert!(matches!(store.get_range(key, 50_000_000, 1).await, Err(BlobError::RangeOutside { size: 40_000_000, .. })));
    // The checksum of the whole content was recorded at the start of the upload.
    let sha = Sha256Digest::of(&content);
    assert_eq!(store.recorded_sha256(key).await.unwrap(), Some(sha));
    assert_eq!(store.verify(key, Some(&sha)).await.unwrap(), sha);

    // put_bytes above the part size goes up in parts too.
    let bytes = Bytes::from(pseudo_random(17 << 20, 7));
    store.put_bytes("derived/v1/big.bin", bytes.clone()).await.unwrap();
    assert_eq!(store.recorded_sha256("derived/v1/big.bin").await.unwrap(), Some(Sha256Digest::of(&bytes)));
    assert_eq!(store.get_range("derived/v1/big.bin", 0, bytes.len() as u64).await.unwrap(), bytes);
    assert!(etag("derived/v1/big.bin").await.trim_matches('"').ends_with("-2"));
    // Below the part size, one PUT.
    store.put_bytes("derived/v1/small.bin", Bytes::from_static(b"small")).await.unwrap();
    assert!(!etag("derived/v1/small.bin").await.contains('-'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_is_detected() {
    let Some(server) = Server::start("tampering_is_detected") else { return };
    let store = S3Store::open(&server.config("t")).unwrap();
    let key = "dicom/v1/aa/bb/1/2/3.dcm";
    let content = pseudo_random(300_000, 3);
    store.put_bytes(key, Bytes::from(content.clone())).await.unwrap();
    let sha = Sha256Digest::of(&content);
    assert_eq!(store.verify(key, None).await.unwrap(), sha);

    // Flip one byte in the object's file behind the server's back.
    let file = server.object_file("t", key);
    let mut damaged = std::fs::read(&file).unwrap();
    assert_eq!(damaged, content);
    damaged[1234] ^= 0xff;
    std::fs::write(&file, &damaged).unwrap();

    assert_eq!(store.recorded_sha256(key).await.unwrap(), Some(sha), "the record is unchanged");
    match store.verify(key, None).await {
        Err(BlobError::ChecksumMismatch { expected, actual, what, .. }) => {
            assert_eq!((expected, actual, what), (sha, Sha256Digest::of(&damaged), "recorded by the store"));
        }
        other => panic!("verify of a damaged object: {other:?}"),
    }
    // A whole read delivers the bytes, then ends with an error instead of
    // passing damaged content off as good.
    let res: Result<Vec<Bytes>, std::io::Error> = store.get(key).await.unwrap().try_collect().await;
    let e = res.unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
    assert!(e.to_string().contains("damaged"), "{e}");
    // Ranged reads (frames) are not checked: they cannot be, without the whole object.
    assert_eq!(store.get_range(key, 1234, 1).await.unwrap()[0], damaged[1234]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_an_error_not_a_hang() {
    let Some(server) = Server::start("wrong_credentials_are_an_error_not_a_hang") else { return };
    let mut config = server.config("");
    config.secret_access_key = "wrong-secret-xyzzy".into();
    let store = S3Store::open(&config).unwrap();
    let e = store.put_bytes("a/b", Bytes::from_static(b"x")).await.unwrap_err();
    assert!(matches!(e, BlobError::Remote { .. }), "{e:?}");
    assert!(!e.to_string().contains(SECRET_KEY) && !e.to_string().contains("xyzzy"), "{e}");
}

#[tokio::test]
async fn virtual_hosted_urls_for_alibaba_oss() {
    let mut c = S3Config::new("https://oss-cn-hangzhou.aliyuncs.com", "yunying-archive", "LTAI5tExample", "oss-secret");
    c.region = "cn-hangzhou".into();
    c.prefix = "/pacs/".into();
    c.virtual_hosted = true;
    assert_eq!(c.bucket_url().unwrap(), "https://yunying-archive.oss-cn-hangzhou.aliyuncs.com");
    let store = S3Store::open(&c).unwrap();
    assert_eq!(store.describe(), "s3://yunying-archive/pacs/ (https://oss-cn-hangzhou.aliyuncs.com)");
    let path = store.location("dicom/v1/ab/cd/1.2.3/x.dcm").unwrap();
    let url = store.store.signed_url(http::Method::GET, &path, Duration::from_secs(60)).await.unwrap();
    assert_eq!(url.host_str(), Some("yunying-archive.oss-cn-hangzhou.aliyuncs.com"));
    assert_eq!(url.path(), "/pacs/dicom/v1/ab/cd/1.2.3/x.dcm");
    let q = url.query().unwrap();
    assert!(q.contains("X-Amz-Credential=LTAI5tExample%2F") && q.contains("%2Fcn-hangzhou%2Fs3%2Faws4_request"), "{q}");
    assert!(!url.as_str().contains("oss-secret"));
    // An endpoint that already names the bucket is kept as it is.
    c.endpoint = "https://yunying-archive.oss-cn-hangzhou-internal.aliyuncs.com/".into();
    assert_eq!(c.bucket_url().unwrap(), "https://yunying-archive.oss-cn-hangzhou-internal.aliyuncs.com");

    // Path style (MinIO, Ceph, s3s-fs): the bucket in the path.
    let mut p = S3Config::new("http://127.0.0.1:9000/", "pacs", "minio", "minio-secret");
    p.allow_http = true;
    assert_eq!(p.bucket_url().unwrap(), "http://127.0.0.1:9000/pacs");
    let store = S3Store::open(&p).unwrap();
    let url = store
        .store
        .signed_url(http::Method::GET, &store.location("a/b.dcm").unwrap(), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!((url.host_str(), url.port(), url.path()), (Some("127.0.0.1"), Some(9000), "/pacs/a/b.dcm"));
    assert_eq!(store.describe(), "s3://pacs/ (http://127.0.0.1:9000)");
}

#[test]
fn settings_are_checked_and_secrets_hidden() {
    let ok = S3Config::new("https://s3.example.cn", "pacs-archive", "id", "top-secret");
    assert!(ok.validate().is_ok());
    assert!(!format!("{ok:?}").contains("top-secret"));
    let check = |f: &dyn Fn(&mut S3Config), needle: &str| {
        let mut c = ok.clone();
        f(&mut c);
        let e = S3Store::open(&c).unwrap_err().to_string();
        assert!(e.contains(needle), "{e:?} should mention {needle:?}");
        assert!(!e.contains("top-secret"));
    };
    check(&|c| c.endpoint = "http://10.0.0.5:9000".into(), "allow_http");
    check(&|c| c.endpoint = "ftp://x".into(), "scheme");
    check(&|c| c.endpoint = "s3.example.cn".into(), "not a URL");
    check(&|c| c.endpoint = "https://id:top-secret@s3.example.cn".into(), "credentials");
    check(&|c| c.bucket = "Pacs_Archive".into(), "bucket");
    check(&|c| c.prefix = "a/../b".into(), "prefix");
    check(&|c| c.secret_access_key = String::new(), "secret");
    check(&|c| c.part_size = 1 << 20, "5 MiB");
    check(
        &|c| {
            c.endpoint = "https://10.0.0.5".into();
            c.virtual_hosted = true
        },
        "DNS name",
    );
}

#[test]
fn part_size_grows_for_huge_objects() {
    let store = S3Store::open(&S3Config::new("https://s3.example.cn", "pacs", "id", "secret")).unwrap();
    assert_eq!(store.part_size_for(40_000_000), 16 << 20);
    let huge = 500u64 << 30; // 500 GiB: 16 MiB parts would need 32 000
    assert!(huge.div_ceil(store.part_size_for(huge) as u64) <= 10_000);
}
