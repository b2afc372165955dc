//! `yunying backup` and `yunying restore` of the SQLite catalog: a backup
//! taken while the server runs and receives, checked and described by its
//! manifest; a restore refused while the server holds the data directory,
//! refused for a damaged file, and, with the server stopped, putting the
//! backup in place (the replaced catalog kept); then `reindex --merge` adds
//! the images stored after the backup, and the server shows exactly what it
//! showed before the restore.

mod catalog_view;

use std::path::Path;

use catalog_view::{BIN, Catalog, cli, figure, files_under, second_version, stow, synth, view};
use yunying_test_support::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_restore_then_reindex_merge_gives_back_the_catalog() {
    let mut server = TestServer::start(Path::new(BIN), &[], &[]).await;
    let work = tempfile::tempdir().unwrap();
    let catalog = Catalog::Sqlite(server.data.join("catalog.db"));
    let studies = synth(&work.path().join("synth"), 3, 21);
    let first = files_under(&studies[0]);
    stow(&server, &first).await;

    // A backup while the server runs, and receives.
    let backup = work.path().join("catalog-backup.db");
    let taking = {
        let (backup, data) = (backup.clone(), server.data.clone());
        tokio::task::spawn_blocking(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            let out = std::process::Command::new(BIN)
                .args(["backup", "--out", backup.to_str().unwrap(), "--data", data.to_str().unwrap()])
                .env("YUNYING_LOG", "warn")
                .output()
                .unwrap();
            (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
        })
    };
    stow(&server, &files_under(&studies[1])).await;
    let (ok, out) = taking.await.unwrap();
    assert!(ok, "{out}");
    assert!(out.contains("schema version"), "{out}");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(work.path().join("catalog-backup.db.manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["format"], "yunying-catalog-backup");
    let in_backup = manifest["catalog"]["instance_versions"].as_i64().unwrap() as usize;
    assert!(in_backup >= first.len(), "{manifest}");
    let sha = String::from_utf8(std::process::Command::new("sha256sum").arg(&backup).output().unwrap().stdout).unwrap();
    assert_eq!(sha.split_whitespace().next().unwrap(), manifest["sha256"].as_str().unwrap());
    let (ok, out) = cli(&server, &["backup", "--out", backup.to_str().unwrap()]);
    assert!(!ok && out.contains("exists"), "an existing backup is not overwritten: {out}");

    // After the backup: the rest of the second study, a third, a second version.
    stow(&server, &files_under(&studies[2])).await;
    let corrected = second_version(&first[0], work.path());
    stow(&server, &[corrected]).await;
    let before = view(&server, &catalog).await;

    // Not while the server runs.
    let (ok, out) = cli(&server, &["restore", "--from", backup.to_str().unwrap()]);
    assert!(!ok, "{out}");
    assert!(out.contains("is in use (yunying serve, pid"), "{out}");

    server.stop();
    // A damaged copy is refused.
    let damaged = work.path().join("damaged.db");
    let mut bytes = std::fs::read(&backup).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x01;
    std::fs::write(&damaged, bytes).unwrap();
    std::fs::copy(work.path().join("catalog-backup.db.manifest.json"), work.path().join("damaged.db.manifest.json")).unwrap();
    let (ok, out) = cli(&server, &["restore", "--from", damaged.to_str().unwrap()]);
    assert!(!ok && out.contains("is damaged"), "{out}");

    let (ok, out) = cli(&server, &["restore", "--from", backup.to_str().unwrap()]);
    assert!(ok, "{out}");
    assert!(out.contains("the replaced catalog is kept as"), "{out}");
    let kept: Vec<_> = std::fs::read_dir(&server.data)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("catalog.db.before-restore-") && !n.ends_with("-wal") && !n.ends_with("-shm"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let old = Catalog::Sqlite(server.data.join(&kept[0]));
    let total = before["instance_rows"].as_array().unwrap().len();
    assert_eq!(old.rows("SELECT COUNT(*) FROM instance"), vec![total.to_string()]);
    assert_eq!(catalog.rows("SELECT COUNT(*) FROM instance"), vec![in_backup.to_string()]);
    let recorded = catalog.rows("SELECT COUNT(*) FROM audit_event WHERE event LIKE '%\"restore\"%'");
    assert_eq!(recorded, vec!["1"], "the restore is in the restored catalog's audit trail");

    // The images stored after the backup come back from the blob store.
    let (ok, out) = cli(&server, &["reindex"]);
    assert!(!ok && out.contains("--merge"), "{out}");
    let (ok, out) = cli(&server, &["reindex", "--merge"]);
    assert!(ok, "{out}");
    assert_eq!(figure(&out, "already present"), in_backup, "{out}");
    assert_eq!(figure(&out, "indexed") + figure(&out, "new versions"), total - in_backup, "{out}");
    assert_eq!(figure(&out, "failed"), 0, "{out}");

    // The restored catalog holds the test token: the server starts as it was.
    server.restart().await;
    let after = view(&server, &catalog).await;
    assert_eq!(
        serde_json::to_string_pretty(&before).unwrap(),
        serde_json::to_string_pretty(&after).unwrap(),
        "the restored and re-indexed catalog differs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_catalog_is_explained_not_backed_up() {
    let pg = yunying_test_support::PgDatabase::create("backup").await;
    let server = TestServer::start(Path::new(BIN), &["--catalog-url", &pg.url], &[]).await;
    let work = tempfile::tempdir().unwrap();
    let out_file = work.path().join("x.db");
    for args in [vec!["backup", "--out", out_file.to_str().unwrap()], vec!["restore", "--from", out_file.to_str().unwrap()]] {
        let (ok, out) = cli(&server, &args);
        assert!(!ok, "{out}");
        assert!(out.contains("pg_dump -Fc") && out.contains("reindex --merge"), "{out}");
    }
    assert!(!out_file.exists());
}
