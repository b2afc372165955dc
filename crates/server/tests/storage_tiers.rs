//! The storage tiers on the real binary, with a real S3-compatible server
//! (moto) as the provincial cloud: every recent object is copied to the
//! cloud tier once and verified; an old exam is not, and leaves the cloud
//! when the lifecycle pass runs; a lost or damaged local object is served
//! from the cloud and restored by `yunying verify`; a server killed (-9)
//! in the middle of the copies loses nothing and uploads nothing twice.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use yunying_test_support::{S3TestServer, TestServer, synth_files};

const BIN: &str = env!("CARGO_BIN_EXE_yunying");
const PASSWORD: &str = "Correct-Horse-42";

/// Dates every file of one study to 2010 (with DCMTK's dcmodify).
fn backdate(files: &[PathBuf]) {
    let out = Command::new("dcmodify")
        .args(["-nb", "-m", "(0008,0020)=20100105", "-m", "(0008,0021)=20100105"])
        .args(files)
        .output()
        .expect("dcmodify (DCMTK)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// `yunying storage status --json` on the server's catalog.
fn status(server: &TestServer) -> Value {
    serde_json::from_str(&server.cli(&["storage", "status", "--json"])).unwrap()
}

/// Waits until the cloud copy queue is empty.
async fn wait_copied(server: &TestServer, within: Duration) -> Value {
    let started = Instant::now();
    loop {
        let s = status(server);
        if s["cloud_copy"]["pending"] == 0 {
            return s;
        }
        assert!(started.elapsed() < within, "cloud copies still waiting after {within:?}: {}", s["cloud_copy"]);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The original objects under the local tier, by key.
fn local_objects(data: &Path) -> Vec<(String, PathBuf)> {
    let root = data.join("blobs");
    let mut out = Vec::new();
    let mut stack = vec![root.join("dicom")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.strip_prefix(&root).unwrap().to_str().unwrap().to_string(), p));
            }
        }
    }
    out.sort();
    out
}

fn config(dir: &Path, s3: &S3TestServer, bucket: &str, concurrency: usize) -> PathBuf {
    let path = dir.join("yunying.toml");
    let text = format!(
        "[storage.cloud]\nkind = \"s3\"\nyears = 5\ncopy_concurrency = {concurrency}\nlease_seconds = 3\n{}\n[storage.scrub]\ninterval_days = 0\n",
        s3.toml("storage.cloud", bucket)
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn cloud_env() -> Vec<(String, String)> {
    S3TestServer::env("YUNYING_CLOUD_S3")
}

async fn start(config: &Path, extra_env: &[(&str, &str)]) -> TestServer {
    let env = cloud_env();
    let mut envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    envs.extend_from_slice(extra_env);
    TestServer::start(Path::new(BIN), &["--config", config.to_str().unwrap(), "--dicom", "off"], &envs).await
}

/// The SHA-256 (hex) of a file.
fn sha256_file(p: &Path) -> String {
    use yunying_blob::Sha256Digest;
    Sha256Digest::of(&std::fs::read(p).unwrap()).to_hex()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recent_objects_reach_the_cloud_once_and_repair_the_local_tier() {
    let s3 = S3TestServer::start().await;
    s3.create_bucket("province").await;
    s3.enable_versioning("province").await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &s3, "province", 2);
    let server = start(&cfg, &[("YUNYING_PW", PASSWORD)]).await;

    let recent = synth_files(Path::new(BIN), &dir.path().join("recent"), 3, 2, 6);
    let old = synth_files(Path::new(BIN), &dir.path().join("old"), 4, 1, 6);
    backdate(&old);
    server.stow_files(&recent).await;
    server.stow_files(&old).await;

    // Every recent object is copied, the 2010 exam is not (older than 5 years).
    let s = wait_copied(&server, Duration::from_secs(90)).await;
    let c = &s["cloud_copy"];
    assert_eq!(c["copied"], recent.len(), "{c}");
    assert_eq!((c["failed"].as_i64(), c["retrying"].as_i64()), (Some(0), Some(0)), "{c}");
    let local = local_objects(&server.data);
    assert_eq!(local.len(), recent.len() + old.len());
    let (versions, _) = s3.versions("province").await;
    assert_eq!(versions.len(), recent.len(), "{versions:?}");
    assert!(versions.values().all(|&n| n == 1), "each object uploaded once: {versions:?}");
    // The cloud's copies are the local bytes (read back through S3).
    let mut cloud_cfg = yunying_blob::S3Config::new(s3.endpoint.clone(), "province", "yunying-test", "moto-secret-Never-Logged");
    cloud_cfg.allow_http = true;
    let cloud = yunying_blob::S3Store::open(&cloud_cfg).unwrap();
    use yunying_blob::BlobStore;
    for (key, path) in &local {
        let want = sha256_file(path);
        if versions.contains_key(key) {
            assert_eq!(cloud.content_sha256(key).await.unwrap().to_hex(), want, "{key}");
            assert_eq!(cloud.recorded_sha256(key).await.unwrap().map(|d| d.to_hex()), Some(want));
        }
    }

    // The jobs view (system administrator): the queue and this node's work.
    let admin = admin_session(&server).await;
    let jobs: Value = admin.get(format!("{}/api/jobs", server.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(jobs["cloud_copy"]["copied"], recent.len(), "{jobs}");
    assert_eq!(jobs["cloud_copy"]["pending"], 0);
    assert_eq!(jobs["this_node"]["cloud_copies_sent"], recent.len(), "{jobs}");
    assert!(jobs["cloud_copy"]["oldest_pending_age_seconds"].is_null());
    let r = server.client().get(format!("{}/api/jobs", server.base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "a data token does not see the jobs");

    // The local tier loses one recent object: it is served from the cloud.
    let (lost_key, lost_path) = local.iter().find(|(k, _)| versions.contains_key(k)).unwrap().clone();
    let original = std::fs::read(&lost_path).unwrap();
    std::fs::remove_file(&lost_path).unwrap();
    let (study, series, sop) = yunying_archive::keys::uids_of(&lost_key).unwrap();
    let url = format!("{}/studies/{study}/series/{series}/instances/{sop}", server.dicomweb());
    let r = server.client().get(&url).header("Accept", "multipart/related; type=\"application/dicom\"; transfer-syntax=*").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "served from the cloud tier");
    let body = r.bytes().await.unwrap();
    assert!(body.windows(original.len().min(4096)).any(|w| w == &original[..original.len().min(4096)]), "the stored bytes");
    let jobs: Value = admin.get(format!("{}/api/jobs", server.base)).send().await.unwrap().json().await.unwrap();
    assert!(jobs["this_node"]["cloud_reads"].as_u64().unwrap() >= 1, "{jobs}");

    // Another recent object is damaged in place (same size).
    let (_, damaged_path) = local.iter().filter(|(k, _)| versions.contains_key(k)).nth(1).unwrap().clone();
    let damaged_original = std::fs::read(&damaged_path).unwrap();
    let mut bad = damaged_original.clone();
    let at = bad.len() - 100;
    bad[at] ^= 0xff;
    std::fs::write(&damaged_path, &bad).unwrap();

    // verify finds both and restores them from the cloud.
    let (ok, out, err) = server.cli_result(&["verify"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains(&format!("verified {} object(s)", local.len())), "{out}");
    assert_eq!(std::fs::read(&lost_path).unwrap(), original, "restored");
    assert_eq!(std::fs::read(&damaged_path).unwrap(), damaged_original, "repaired");

    // Damage to an object the cloud does not hold is found and reported.
    let (old_key, old_path) = local.iter().find(|(k, _)| !versions.contains_key(k)).unwrap().clone();
    let mut bad = std::fs::read(&old_path).unwrap();
    let at = bad.len() / 2;
    bad[at] ^= 0x01;
    std::fs::write(&old_path, &bad).unwrap();
    let (ok, out, _) = server.cli_result(&["verify", "--no-repair"]);
    assert!(!ok, "a damaged object fails verification: {out}");
    assert!(out.contains(&old_key) && out.contains("damaged"), "{out}");
    let s = status(&server);
    assert!(s["open_problems"].as_i64().unwrap() >= 1);
    assert!(s["problems"].as_array().unwrap().iter().any(|p| p["blob_key"] == old_key.as_str()), "{s}");

    // The old exam can be sent to the cloud on request; the lifecycle pass
    // then takes it out again (older than the tier's 5 years), and only it.
    server.cli(&["storage", "cloud-sync", "--since", "20000101"]);
    // The damaged one is refused by the copy (its content is not the catalog's).
    let s = wait_copied(&server, Duration::from_secs(60)).await;
    assert_eq!(s["cloud_copy"]["copied"], recent.len() + old.len() - 1, "{}", s["cloud_copy"]);
    assert_eq!(s["cloud_copy"]["failed"], 1, "the damaged object is given up on: {}", s["cloud_copy"]);
    let out = server.cli(&["storage", "lifecycle"]);
    assert!(out.contains(&format!("{} object(s)", old.len() - 1)), "{out}");
    let keys = s3.keys("province").await;
    assert_eq!(keys.len(), recent.len(), "only the recent exams stay in the cloud");
    assert!(!keys.contains(&old_key));
    let s = status(&server);
    assert_eq!(s["cloud_copy"]["removed"], old.len() - 1, "{}", s["cloud_copy"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_during_the_cloud_copy_loses_nothing_and_uploads_nothing_twice() {
    let s3 = S3TestServer::start().await;
    s3.create_bucket("province").await;
    s3.enable_versioning("province").await;
    let dir = tempfile::tempdir().unwrap();
    // The archive holds its studies before the cloud tier is added.
    let cfg = dir.path().join("yunying.toml");
    std::fs::write(&cfg, "[storage.scrub]\ninterval_days = 0\n").unwrap();
    let mut server = start(&cfg, &[]).await;
    let files = synth_files(Path::new(BIN), &dir.path().join("s"), 5, 2, 30);
    server.stow_files(&files).await;
    let total = files.len() as i64;
    server.stop();

    // The tier is added and the existing exams queued for it; the server
    // starts copying them (one at a time) and is killed -9 under way.
    config(dir.path(), &s3, "province", 1);
    let out = server.cli(&["storage", "cloud-sync"]);
    assert!(out.contains(&format!("0 copied, {total} waiting")), "{out}");
    server.restart().await;
    let started = Instant::now();
    loop {
        let c = status(&server)["cloud_copy"].clone();
        let copied = c["copied"].as_i64().unwrap();
        if copied >= 3 {
            assert!(copied < total, "the copies finished before the kill: make the test data larger");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no copy started: {c}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.crash();
    let at_kill = status(&server)["cloud_copy"].clone();
    assert!(at_kill["pending"].as_i64().unwrap() > 0, "{at_kill}");

    // Restarted, it finishes (claims of the dead process expire after their lease).
    server.restart().await;
    let s = wait_copied(&server, Duration::from_secs(120)).await;
    assert_eq!(s["cloud_copy"]["copied"], total, "{}", s["cloud_copy"]);
    let (versions, deletes) = s3.versions("province").await;
    assert_eq!(versions.len() as i64, total);
    assert_eq!(deletes, 0);
    let twice: Vec<_> = versions.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "objects uploaded twice: {twice:?}");
    let mut cloud_cfg = yunying_blob::S3Config::new(s3.endpoint.clone(), "province", "yunying-test", "moto-secret-Never-Logged");
    cloud_cfg.allow_http = true;
    let cloud = yunying_blob::S3Store::open(&cloud_cfg).unwrap();
    use yunying_blob::BlobStore;
    for (key, path) in local_objects(&server.data) {
        assert_eq!(cloud.content_sha256(&key).await.unwrap().to_hex(), sha256_file(&path), "{key}");
    }
}

/// Signs the system administrator in (enrolling TOTP on the way).
pub async fn admin_session(server: &TestServer) -> reqwest::Client {
    server.cli(&["user", "add", "sysadmin", "--role", "system-admin", "--password-env", "YUNYING_PW"]);
    let login = |code: Option<String>| {
        let base = server.base.clone();
        async move {
            let r = reqwest::Client::new()
                .post(format!("{base}/api/auth/login"))
                .json(&json!({"username": "sysadmin", "password": PASSWORD, "code": code}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            let cookie = r
                .headers()
                .get_all("set-cookie")
                .iter()
                .map(|v| v.to_str().unwrap().to_string())
                .find(|c| c.starts_with("yy_session="))
                .unwrap();
            let body: Value = r.json().await.unwrap();
            let mut h = reqwest::header::HeaderMap::new();
            h.insert(reqwest::header::COOKIE, cookie.split(';').next().unwrap().parse().unwrap());
            h.insert("X-CSRF-Token", body["csrf_token"].as_str().unwrap().parse().unwrap());
            reqwest::Client::builder().default_headers(h).build().unwrap()
        }
    };
    let first = login(None).await;
    let setup: Value = first.post(format!("{}/api/auth/totp/setup", server.base)).json(&json!({})).send().await.unwrap().json().await.unwrap();
    let secret = yunying_security::totp::base32_decode(setup["secret"].as_str().unwrap()).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let r = first
        .post(format!("{}/api/auth/totp/confirm", server.base))
        .json(&json!({"code": yunying_security::totp::code_at(&secret, now)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    login(Some(yunying_security::totp::code_at(&secret, now + 30))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_in_an_archive_storage_class_is_retrieving_then_restored() {
    let s3 = S3TestServer::start().await;
    s3.create_bucket("province").await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &s3, "province", 2);
    let server = start(&cfg, &[]).await;
    let files = synth_files(Path::new(BIN), &dir.path().join("s"), 8, 1, 3);
    server.stow_files(&files).await;
    wait_copied(&server, Duration::from_secs(60)).await;

    // The bucket's lifecycle moved one object to the archive class (Glacier /
    // OSS Archive), and the local tier lost it.
    let (key, path) = local_objects(&server.data).into_iter().next().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let python = std::env::var("YUNYING_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/yunying/venv"))
        .join("bin/python");
    let script = format!(
        "import boto3\n\
         s3 = boto3.client('s3', endpoint_url='{}', aws_access_key_id='k', aws_secret_access_key='s', region_name='us-east-1')\n\
         s3.copy_object(Bucket='province', Key='{key}', CopySource={{'Bucket': 'province', 'Key': '{key}'}}, \
         StorageClass='GLACIER', MetadataDirective='COPY')\n\
         assert s3.head_object(Bucket='province', Key='{key}')['StorageClass'] == 'GLACIER'\n",
        s3.endpoint
    );
    let out = Command::new(&python).args(["-c", &script]).output().expect("the test venv's python (boto3 comes with moto)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = &bytes;
    std::fs::remove_file(&path).unwrap();

    // The first read says "retrieving" (503, Retry-After) and asks for a restore...
    let (study, series, sop) = yunying_archive::keys::uids_of(&key).unwrap();
    let url = format!("{}/studies/{study}/series/{series}/instances/{sop}", server.dicomweb());
    let accept = "multipart/related; type=\"application/dicom\"; transfer-syntax=*";
    let r = server.client().get(&url).header("Accept", accept).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers().get("retry-after").unwrap(), "60");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["retrieving"], true, "{body}");
    // ...and once the store has restored it, the read succeeds.
    let started = Instant::now();
    loop {
        let r = server.client().get(&url).header("Accept", accept).send().await.unwrap();
        if r.status() == StatusCode::OK {
            let got = r.bytes().await.unwrap();
            assert!(got.windows(bytes.len()).any(|w| w == &bytes[..]), "the stored bytes");
            break;
        }
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(started.elapsed() < Duration::from_secs(120), "not restored within the 2-minute budget");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
