//! `yunying reindex`: the catalog rebuilt from the blob store alone (the
//! objects and the ingest journal) shows the same images as before —
//! studies, series, instances with all attributes, metadata, and each
//! instance version's institution, version, checksum, sender and time —
//! for objects received over DICOM from two institutions' AEs and over
//! STOW-RS, including a second version of one SOP instance. On SQLite and
//! on PostgreSQL.

mod catalog_view;

use std::path::Path;

use catalog_view::{BIN, Catalog, cli, figure, files_under, new_token, second_version, stow, storescu, synth, view};
use yunying_test_support::{PgDatabase, TestServer};

/// Stores four studies (two institutions over DICOM, the default one over
/// STOW-RS, a second version of one object), returns how many objects the
/// store holds.
async fn store_region(server: &TestServer, work: &Path) -> usize {
    server.cli(&["institution", "add", "SZRMYY", "--name-zh", "嵊州市人民医院"]);
    server.cli(&["institution", "add", "GLZXWSY", "--name-zh", "甘霖镇中心卫生院"]);
    server.cli(&["ae", "add", "CT_SZRMYY", "--institution", "SZRMYY", "--allow", "store"]);
    server.cli(&["ae", "add", "CT_GLZX", "--institution", "GLZXWSY", "--allow", "store"]);
    let studies = synth(&work.join("synth"), 4, 11);
    storescu(server, "CT_SZRMYY", &studies[0]);
    storescu(server, "CT_GLZX", &studies[1]);
    let by_stow = [files_under(&studies[2]), files_under(&studies[3])].concat();
    stow(server, &by_stow).await;
    let corrected = second_version(&by_stow[0], work);
    stow(server, &[corrected]).await;
    studies.iter().map(|s| files_under(s).len()).sum::<usize>() + 1
}

async fn rebuilt_catalog_shows_the_same_images(server: &mut TestServer, catalog: Catalog, drop_catalog: impl Fn()) {
    let work = tempfile::tempdir().unwrap();
    let objects = store_region(server, work.path()).await;
    let before = view(server, &catalog).await;
    assert_eq!(before["studies"].as_array().unwrap().len(), 4);
    let rows = before["instance_rows"].as_array().unwrap();
    assert_eq!(rows.len(), objects);
    for code in ["|SZRMYY|dimse:CT_SZRMYY@", "|GLZXWSY|dimse:CT_GLZX@", "|DEFAULT|stow:"] {
        assert!(rows.iter().any(|r| r.as_str().unwrap().contains(code)), "no instance row with {code}: {rows:#?}");
    }
    assert!(rows.iter().any(|r| r.as_str().unwrap().contains("|2|1|")), "a second version: {rows:#?}");

    // The catalog is lost; the blob store holds objects and journal.
    server.stop();
    drop_catalog();
    let journal = files_under(&server.data.join("blobs/journal/v1"));
    assert!(!journal.is_empty(), "journal blobs were written");

    let (ok, out) = cli(server, &["reindex"]);
    assert!(ok, "{out}");
    assert_eq!(figure(&out, "objects in the store"), objects, "{out}");
    assert_eq!(figure(&out, "indexed"), objects - 1, "{out}");
    assert_eq!(figure(&out, "new versions"), 1, "{out}");
    assert_eq!(figure(&out, "failed"), 0, "{out}");
    assert_eq!(figure(&out, "without journal line"), 0, "{out}");
    assert!(out.contains("objects/s"), "{out}");
    // Institutions the journal names come back (their names from a catalog backup).
    assert!(out.contains("institution GLZXWSY was created"), "{out}");

    // Again: refused on a catalog that holds instances; with --merge, nothing to add.
    let (ok, out) = cli(server, &["reindex"]);
    assert!(!ok && out.contains("--merge"), "{out}");
    let (ok, out) = cli(server, &["reindex", "--merge"]);
    assert!(ok, "{out}");
    assert_eq!(figure(&out, "already present"), objects, "{out}");
    assert_eq!(figure(&out, "indexed"), 0, "{out}");
    let recorded = catalog.rows("SELECT COUNT(*) FROM audit_event WHERE event LIKE '%\"reindex\"%'");
    assert_eq!(recorded, vec!["2"], "each run is in the audit trail");

    new_token(server, "after-reindex");
    server.restart().await;
    let after = view(server, &catalog).await;
    assert_eq!(
        serde_json::to_string_pretty(&before).unwrap(),
        serde_json::to_string_pretty(&after).unwrap(),
        "the rebuilt catalog differs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_catalog_rebuilt_from_the_blob_store() {
    let mut server = TestServer::start(Path::new(BIN), &[], &[]).await;
    let db = server.data.join("catalog.db");
    let catalog = Catalog::Sqlite(db.clone());
    rebuilt_catalog_shows_the_same_images(&mut server, catalog, || {
        for f in ["catalog.db", "catalog.db-wal", "catalog.db-shm"] {
            let _ = std::fs::remove_file(db.with_file_name(f));
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_catalog_rebuilt_from_the_blob_store() {
    let pg = PgDatabase::create("reindex").await;
    let mut server = TestServer::start(Path::new(BIN), &["--catalog-url", &pg.url], &[]).await;
    let url = pg.url.clone();
    rebuilt_catalog_shows_the_same_images(&mut server, Catalog::Postgres(pg.url.clone()), || {
        Catalog::Postgres(url.clone()).rows("DROP SCHEMA public CASCADE; CREATE SCHEMA public;");
    })
    .await;
}

/// Objects stored by an earlier release (no journal line) are indexed with
/// the defaults; a damaged object is reported, not indexed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_without_journal_and_damaged_objects() {
    let mut server = TestServer::start(Path::new(BIN), &[], &[]).await;
    let work = tempfile::tempdir().unwrap();
    let studies = synth(&work.path().join("synth"), 2, 5);
    let files = [files_under(&studies[0]), files_under(&studies[1])].concat();
    stow(&server, &files).await;
    server.stop();
    let db = server.data.join("catalog.db");
    for f in ["catalog.db", "catalog.db-wal", "catalog.db-shm"] {
        let _ = std::fs::remove_file(db.with_file_name(f));
    }
    // As an earlier release left it: no journal.
    std::fs::remove_dir_all(server.data.join("blobs/journal")).unwrap();
    // One object damaged on disk.
    let stored = files_under(&server.data.join("blobs/dicom/v1"));
    let mut bytes = std::fs::read(&stored[0]).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 0xff;
    std::fs::write(&stored[0], bytes).unwrap();

    let (ok, out) = cli(&server, &["reindex"]);
    assert!(!ok, "a failure makes the run fail: {out}");
    assert_eq!(figure(&out, "objects in the store"), files.len(), "{out}");
    assert_eq!(figure(&out, "without journal line"), files.len(), "{out}");
    assert_eq!(figure(&out, "indexed"), files.len() - 1, "{out}");
    assert_eq!(figure(&out, "failed"), 1, "{out}");
    assert!(out.contains("does not match its key"), "{out}");
    let catalog = Catalog::Sqlite(db.clone());
    let rows = catalog.rows("SELECT DISTINCT received_from FROM instance");
    assert_eq!(rows, vec!["reindex".to_string()]);
    // The defaults were journaled: a second rebuild gives the same times.
    let first = catalog.rows("SELECT sop_uid, received_at FROM instance ORDER BY sop_uid");
    for f in ["catalog.db", "catalog.db-wal", "catalog.db-shm"] {
        let _ = std::fs::remove_file(db.with_file_name(f));
    }
    let (_, out) = cli(&server, &["reindex"]);
    assert_eq!(figure(&out, "without journal line"), 1, "only the damaged one: {out}");
    assert_eq!(catalog.rows("SELECT sop_uid, received_at FROM instance ORDER BY sop_uid"), first);
    new_token(&mut server, "after");
    server.restart().await;
}

/// Nothing is acknowledged without its journal line: when the journal
/// cannot be written, the batch fails and the sender hears so (the catalog
/// transaction runs beside the journal put, so the object may be indexed
/// already); its retry is a duplicate, and that batch journals it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_whose_journal_cannot_be_written_is_refused() {
    let server = TestServer::start(Path::new(BIN), &[], &[]).await;
    let work = tempfile::tempdir().unwrap();
    let studies = synth(&work.path().join("synth"), 2, 3);
    stow(&server, &files_under(&studies[0])).await;
    // The journal's directory becomes a file: no journal blob can be written.
    let journal = server.data.join("blobs/journal");
    std::fs::rename(&journal, work.path().join("journal-aside")).unwrap();
    std::fs::write(&journal, b"not a directory").unwrap();

    let files = files_under(&studies[1]);
    let (ctype, body) = yunying_test_support::multipart_body(&[std::fs::read(&files[0]).unwrap()]);
    let r = server
        .client()
        .post(format!("{}/studies", server.dicomweb()))
        .header("Content-Type", ctype)
        .header("Accept", "application/dicom+json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    assert_ne!(status, 200, "{text}");
    let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["00081198"]["Value"][0]["00081197"]["Value"][0], 0x0110, "processing failure: {text}");
    let catalog = Catalog::Sqlite(server.data.join("catalog.db"));
    let (_, _, sop) = yunying_test_support::file_uids(&files[0]);

    // Once the journal can be written again, the sender's retry succeeds and
    // its batch journals the object.
    std::fs::remove_file(&journal).unwrap();
    std::fs::rename(work.path().join("journal-aside"), &journal).unwrap();
    stow(&server, &files[..1]).await;
    assert_eq!(catalog.rows("SELECT COUNT(*) FROM study"), vec!["2"]);
    let lines: String = files_under(&journal).iter().map(|p| std::fs::read_to_string(p).unwrap()).collect();
    assert!(lines.contains(&sop), "the retried object has its journal line");
}
