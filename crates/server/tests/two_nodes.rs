//! Two `yunying serve` processes sharing nothing but one PostgreSQL catalog
//! and one S3 store (moto), as behind a load balancer: an instance stored
//! through node A is found and retrieved through node B at once, and the
//! cloud copy queue's work is done once across both nodes (each object is
//! uploaded to the cloud bucket exactly once, whichever node takes it).

use std::path::{Path, PathBuf};

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use yunying_test_support::{PgDatabase, S3TestServer, TestServer, synth_files};

const BIN: &str = env!("CARGO_BIN_EXE_yunying");

fn node_config(dir: &Path, s3: &S3TestServer, node: &str) -> PathBuf {
    let path = dir.join(format!("{node}.toml"));
    let text = format!(
        "[storage]\nkind = \"s3\"\n{}\n[storage.cloud]\nkind = \"s3\"\nyears = 5\ncopy_concurrency = 2\n{}\n[storage.scrub]\ninterval_days = 0\n[audit]\nnode = \"{node}\"\n",
        s3.toml("storage", "archive"),
        s3.toml("storage.cloud", "province"),
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_postgresql_catalog_and_one_object_store() {
    let s3 = S3TestServer::start().await;
    s3.create_bucket("archive").await;
    s3.create_bucket("province").await;
    s3.enable_versioning("province").await;
    let pg = PgDatabase::create("two_nodes").await;
    let dir = tempfile::tempdir().unwrap();
    let mut env = S3TestServer::env("YUNYING_S3");
    env.extend(S3TestServer::env("YUNYING_CLOUD_S3"));
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();

    let cfg_a = node_config(dir.path(), &s3, "node-a");
    let a = TestServer::start(
        Path::new(BIN),
        &["--config", cfg_a.to_str().unwrap(), "--catalog-url", &pg.url, "--dicom", "off"],
        &env_refs,
    )
    .await;
    // Node B shares the key ring (field encryption, audit MACs) and nothing else.
    let cfg_b = node_config(dir.path(), &s3, "node-b");
    let key_file = a.data.join("keys/yunying.keys");
    let mut env_b = env_refs.clone();
    let key = key_file.to_str().unwrap().to_string();
    env_b.push(("YUNYING_KEY_FILE", key.as_str()));
    let b = TestServer::start(
        Path::new(BIN),
        &["--config", cfg_b.to_str().unwrap(), "--catalog-url", &pg.url, "--dicom", "off"],
        &env_b,
    )
    .await;

    // Stored through A...
    let files = synth_files(Path::new(BIN), &dir.path().join("s"), 21, 2, 20);
    let (study, series, sop) = yunying_test_support::file_uids(&files[0]);
    a.stow_files(&files).await;
    // ...found and retrieved through B at once.
    let r = b
        .client()
        .get(format!("{}/studies?StudyInstanceUID={study}", b.dicomweb()))
        .header("Accept", "application/dicom+json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let found: Vec<Value> = r.json().await.unwrap();
    assert_eq!(found.len(), 1, "the study stored through A is found through B");
    let r = b
        .client()
        .get(format!("{}/studies/{study}/series/{series}/instances/{sop}", b.dicomweb()))
        .header("Accept", "multipart/related; type=\"application/dicom\"; transfer-syntax=*")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body = r.bytes().await.unwrap();
    let original = std::fs::read(&files[0]).unwrap();
    assert!(body.windows(original.len()).any(|w| w == &original[..]), "B serves the bytes A stored");
    // Nothing went to the nodes' own disks: the objects are in the shared bucket.
    let keys: Vec<String> = s3.keys("archive").await.into_iter().filter(|k| k.starts_with("dicom/")).collect();
    assert_eq!(keys.len(), files.len());
    assert!(!a.data.join("blobs").join("dicom").exists() && !b.data.join("blobs").join("dicom").exists());

    // Both nodes work the cloud copy queue; each object is uploaded once.
    let started = Instant::now();
    loop {
        let s: Value = serde_json::from_str(&b.cli(&["storage", "status", "--json"])).unwrap();
        if s["cloud_copy"]["pending"] == 0 {
            assert_eq!(s["cloud_copy"]["copied"], files.len(), "{}", s["cloud_copy"]);
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(90), "{}", s["cloud_copy"]);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (versions, _) = s3.versions("province").await;
    assert_eq!(versions.len(), files.len());
    let twice: Vec<_> = versions.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "uploaded by both nodes: {twice:?}");

    // Each node writes its own audit chain in the shared catalog, and both verify.
    let out = b.cli(&["audit", "verify"]);
    assert!(out.contains("node-a") && out.contains("node-b"), "{out}");
}
