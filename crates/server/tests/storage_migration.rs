//! Changing cloud vendor on the real binary, with moto holding both
//! vendors' buckets: the new bucket is the mirror during the cut-over
//! (new objects are written to both at once); `yunying storage migrate` is
//! killed -9 half-way and resumes where it was; every object ends in the new
//! bucket once, verified; the old bucket cannot be purged while it is in use
//! or before the migration is complete, and is emptied afterwards.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use yunying_test_support::{S3TestServer, TestServer, synth_files};

const BIN: &str = env!("CARGO_BIN_EXE_yunying");

fn status(server: &TestServer) -> Value {
    serde_json::from_str(&server.cli(&["storage", "status", "--json"])).unwrap()
}

/// The configuration: `cloud` and `other` name buckets; `mirror` writes new objects to `other` too.
fn write_config(path: &Path, s3: &S3TestServer, cloud: &str, other_name: &str, other: &str, mirror: bool) {
    let mut text = format!(
        "[storage]\n{}[storage.cloud]\nkind = \"s3\"\nyears = 5\n{}\n[storage.stores.{other_name}]\nkind = \"s3\"\n{}\n[storage.scrub]\ninterval_days = 0\n",
        if mirror { format!("mirror = \"{other_name}\"\n") } else { String::new() },
        s3.toml("storage.cloud", cloud),
        s3.toml(&format!("storage.stores.{other_name}"), other),
    );
    text = text.replace("[storage]\n[storage.cloud]", "[storage.cloud]");
    std::fs::write(path, text).unwrap();
}

fn envs() -> Vec<(String, String)> {
    let mut v = S3TestServer::env("YUNYING_CLOUD_S3");
    v.extend(S3TestServer::env("YUNYING_STORE_NEWVENDOR_S3"));
    v.extend(S3TestServer::env("YUNYING_STORE_OLDVENDOR_S3"));
    v
}

/// The original objects in a bucket (a mirror also receives the derived
/// streaming frames, which are a cache and are not migrated).
async fn originals(s3: &S3TestServer, bucket: &str) -> Vec<String> {
    s3.keys(bucket).await.into_iter().filter(|k| k.starts_with("dicom/")).collect()
}

async fn wait_copied(server: &TestServer) {
    let started = Instant::now();
    while status(server)["cloud_copy"]["pending"] != 0 {
        assert!(started.elapsed() < Duration::from_secs(90), "cloud copies still waiting");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn migration(server: &TestServer) -> Value {
    status(server)["storage_tasks"].as_array().unwrap().iter().find(|t| t["kind"] == "migrate").cloned().unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_of_cloud_vendor_with_a_killed_migration_and_a_guarded_purge() {
    let s3 = S3TestServer::start().await;
    for b in ["old-vendor", "new-vendor"] {
        s3.create_bucket(b).await;
    }
    s3.enable_versioning("new-vendor").await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("yunying.toml");
    let env = envs();
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();

    // Years of exams on the old vendor's cloud.
    write_config(&cfg, &s3, "old-vendor", "newvendor", "new-vendor", false);
    let mut server = TestServer::start(Path::new(BIN), &["--config", cfg.to_str().unwrap(), "--dicom", "off"], &env_refs).await;
    let before = synth_files(Path::new(BIN), &dir.path().join("a"), 11, 3, 20);
    server.stow_files(&before).await;
    wait_copied(&server).await;
    assert_eq!(originals(&s3, "old-vendor").await.len(), before.len());
    assert!(s3.keys("new-vendor").await.is_empty());

    // Cut-over: the new bucket is the mirror; new objects reach it at once.
    server.stop();
    write_config(&cfg, &s3, "old-vendor", "newvendor", "new-vendor", true);
    server.restart().await;
    let during = synth_files(Path::new(BIN), &dir.path().join("b"), 12, 1, 4);
    server.stow_files(&during).await;
    assert_eq!(originals(&s3, "new-vendor").await.len(), during.len(), "written to the mirror with the store");
    wait_copied(&server).await;
    let total = before.len() + during.len();

    // The migration is killed -9 half-way.
    let mut child = Command::new(BIN)
        .args(["storage", "migrate", "--from", "cloud", "--to", "newvendor", "--concurrency", "1", "--page", "4"])
        .arg("--data")
        .arg(&server.data)
        .arg("--config")
        .arg(&cfg)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        let t = migration(&server);
        if t["objects"].as_u64().unwrap_or(0) >= 8 {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "the migration ended before it was killed: {t}");
        assert!(started.elapsed() < Duration::from_secs(60), "the migration did not start: {t}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let t = migration(&server);
    assert_eq!(t["state"], "running", "{t}");
    let done_at_kill = t["objects"].as_u64().unwrap();
    assert!((done_at_kill as usize) < total, "{t}");

    // The old store is still the cloud tier: no purge.
    let (ok, _, err) = server.cli_result(&["storage", "purge", "--store", "cloud", "--to", "newvendor", "--yes"]);
    assert!(!ok && err.contains("in use (as the cloud tier)"), "{err}");

    // Resumed: it continues, sends only what is missing, and verifies everything.
    let (ok, out, err) = server.cli_result(&["storage", "migrate", "--from", "cloud", "--to", "newvendor"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("resumed an interrupted migration"), "{out}");
    assert!(out.contains(&format!("objects verified      {total} ")), "{out}");
    assert!(out.contains("problems              0"), "{out}");
    let (mut versions, _) = s3.versions("new-vendor").await;
    versions.retain(|k, _| k.starts_with("dicom/"));
    assert_eq!(versions.len(), total);
    let twice: Vec<_> = versions.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "uploaded twice: {twice:?}");

    // The new vendor becomes the cloud tier; the old one is kept as a named store.
    server.stop();
    write_config(&cfg, &s3, "new-vendor", "oldvendor", "old-vendor", false);
    server.restart().await;
    let (ok, _, err) = server.cli_result(&["storage", "purge", "--store", "oldvendor", "--to", "cloud"]);
    assert!(!ok && err.contains("--yes"), "{err}");
    // An object stored after the migration that the new store lacks blocks the purge.
    let late = originals(&s3, "new-vendor").await.into_iter().next().unwrap();
    let cloud_only = {
        // Remove it from the new bucket only (as if the mirror had missed it).
        let mut c = yunying_blob::S3Config::new(s3.endpoint.clone(), "new-vendor", "yunying-test", "moto-secret-Never-Logged");
        c.allow_http = true;
        use yunying_blob::BlobStore;
        yunying_blob::S3Store::open(&c).unwrap().delete(&late).await.unwrap();
        late
    };
    let (ok, out, _) = server.cli_result(&["verify", "--store", "cloud", "--no-repair"]);
    assert!(!ok && out.contains(&cloud_only) && out.contains("missing"), "verify of the cloud tier finds the gap: {out}");
    // Migrating again fills the gap, then the purge goes through.
    let (ok, out, err) = server.cli_result(&["storage", "migrate", "--from", "oldvendor", "--to", "cloud"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("sent in this run      1 "), "{out}");
    let (ok, out, err) = server.cli_result(&["storage", "purge", "--store", "oldvendor", "--to", "cloud", "--yes"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains(&format!("{total} object(s) deleted")), "{out}");
    assert!(s3.keys("old-vendor").await.is_empty(), "the old vendor's bucket is empty");
    assert_eq!(originals(&s3, "new-vendor").await.len(), total);
    let t = migration(&server);
    assert_eq!(t["state"], "purged", "{t}");

    // The archive still serves every study (local tier), and copies new ones to the new vendor.
    let more = synth_files(Path::new(BIN), &dir.path().join("c"), 13, 1, 3);
    server.stow_files(&more).await;
    wait_copied(&server).await;
    assert_eq!(originals(&s3, "new-vendor").await.len(), total + more.len());
}
