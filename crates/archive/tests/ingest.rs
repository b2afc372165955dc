//! The ingest road against a real SQLite catalog and filesystem blob store.

use std::sync::Arc;

use yunying_archive::{Archive, ArchiveSettings, IngestErrorKind, IngestSource, IngestStatus};
use yunying_blob::{BlobStore, FsStore};
use yunying_dicom::write::ObjectBuilder;
use yunying_dicom::{Tag, VR};
use yunying_index::{Index, NewInstitution, Scope};

struct Env {
    _dir: tempfile::TempDir,
    archive: Arc<Archive>,
    index: Arc<dyn Index>,
    blobs: Arc<dyn BlobStore>,
    staging: std::path::PathBuf,
}

async fn env_at(dir: tempfile::TempDir) -> Env {
    let index: Arc<dyn Index> = Arc::new(yunying_index_sqlite::open(&dir.path().join("catalog.db")).await.unwrap());
    index
        .upsert_institution(&NewInstitution {
            code: "SZRMYY".into(),
            name_zh: "嵊州市人民医院".into(),
            name_en: "Shengzhou People's Hospital".into(),
            patient_id_issuer: None,
            ae_titles: vec![],
        })
        .await
        .unwrap();
    let blobs: Arc<dyn BlobStore> = Arc::new(FsStore::open(dir.path().join("blobs")).unwrap());
    let staging = dir.path().join("staging");
    let archive = Archive::open(index.clone(), blobs.clone(), ArchiveSettings::new(&staging, "SZRMYY")).await.unwrap();
    Env { _dir: dir, archive, index, blobs, staging }
}

async fn env() -> Env {
    env_at(tempfile::tempdir().unwrap()).await
}

fn ct(sop: &str, patient: &str, pixel: u8) -> Vec<u8> {
    let mut b = ObjectBuilder::new("1.2.840.10008.5.1.4.1.1.2", sop, "1.2.840.10008.1.2.1");
    b.charset("GB18030");
    b.str(Tag(0x0010, 0x0010), VR::PN, "Zhang^San=张^三");
    b.str(Tag(0x0010, 0x0020), VR::LO, patient);
    b.str(Tag(0x0020, 0x000D), VR::UI, "1.2.826.0.1.1");
    b.str(Tag(0x0020, 0x000E), VR::UI, "1.2.826.0.1.1.1");
    b.str(Tag(0x0008, 0x0060), VR::CS, "CT");
    b.str(Tag(0x0008, 0x0020), VR::DA, "20240115");
    b.u16(Tag(0x0028, 0x0010), 4).u16(Tag(0x0028, 0x0011), 4).u16(Tag(0x0028, 0x0100), 16);
    b.u16(Tag(0x0028, 0x0002), 1);
    b.pixel_data_native(vec![pixel; 32], VR::OW);
    b.to_bytes()
}

fn src() -> IngestSource {
    IngestSource::new("test", "127.0.0.1")
}

/// Original objects in the store (journal blobs aside).
async fn blob_count(e: &Env) -> usize {
    e.blobs.list("dicom/").await.unwrap().len()
}

/// The ingest journal's lines, in the order the batches were written.
async fn journal_lines(e: &Env) -> Vec<yunying_archive::journal::JournalLine> {
    use futures::TryStreamExt;
    use yunying_archive::journal::{self, JournalName};
    let mut names: Vec<_> = e.blobs.list(journal::JOURNAL_ROOT).await.unwrap();
    names.sort_by_key(|k| JournalName::parse(k).unwrap());
    let mut out = Vec::new();
    for k in names {
        let bytes: Vec<u8> = e
            .blobs
            .get(&k)
            .await
            .unwrap()
            .try_fold(Vec::new(), |mut acc, chunk| async move {
                acc.extend_from_slice(&chunk);
                Ok(acc)
            })
            .await
            .unwrap();
        let (lines, bad) = journal::decode(&bytes);
        assert!(bad.is_empty(), "{bad:?}");
        out.extend(lines);
    }
    out
}

fn staging_files(e: &Env) -> usize {
    std::fs::read_dir(&e.staging).unwrap().count()
}

#[tokio::test(flavor = "multi_thread")]
async fn stores_dedups_and_versions() {
    let e = env().await;
    let first = e.archive.ingest_bytes(&ct("1.2.826.0.1.1.1.1", "P1", 1), &src()).await.unwrap();
    assert_eq!(first.status, IngestStatus::Stored);
    let again = e.archive.ingest_bytes(&ct("1.2.826.0.1.1.1.1", "P1", 1), &src()).await.unwrap();
    assert_eq!(again.status, IngestStatus::Duplicate);
    let changed = e.archive.ingest_bytes(&ct("1.2.826.0.1.1.1.1", "P1", 2), &src()).await.unwrap();
    assert_eq!(changed.status, IngestStatus::NewVersion { version: 2 });
    assert_eq!(blob_count(&e).await, 2, "both versions kept");
    // Each ingest was journaled before its commit, in order, with its facts.
    let lines = journal_lines(&e).await;
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0].key, lines[1].key, "the identical re-send");
    assert_ne!(lines[1].key, lines[2].key, "the new version");
    assert_eq!(lines[2].institution, "SZRMYY");
    assert!(lines[0].at <= lines[2].at);
    assert_eq!(staging_files(&e), 0, "staging emptied");
    let stored = e.archive.stored(&Scope::study("1.2.826.0.1.1")).await.unwrap();
    let frames = e.archive.frames(&stored[0], &[1]).await.unwrap();
    assert_eq!(&frames[0].bytes[..], &[2u8; 32][..], "the current version serves the new pixels");
    let meta = e.archive.metadata_json(&Scope::study("1.2.826.0.1.1"), "http://h/dicom-web").await.unwrap();
    let v: serde_json::Value = serde_json::from_slice(&meta).unwrap();
    assert_eq!(v[0]["00100010"]["Value"][0]["Ideographic"], "张^三");
    assert!(v[0]["7FE00010"]["BulkDataURI"].as_str().unwrap().starts_with("http://h/dicom-web/studies/"));
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_and_broken_input_changes_nothing() {
    let e = env().await;
    // A 4 GB declared length in a small file.
    let mut bomb = ct("1.2.826.0.1.1.1.9", "P1", 1);
    bomb.extend_from_slice(&[0x09, 0x00, 0x10, 0x10, b'O', b'B', 0, 0, 0xF0, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4]);
    let err = e.archive.ingest_bytes(&bomb, &src()).await.unwrap_err();
    assert_eq!(err.kind, IngestErrorKind::Unreadable, "{err}");
    assert!(err.message.contains("declares"), "{err}");
    // Truncated, not DICOM, empty.
    let good = ct("1.2.826.0.1.1.1.8", "P1", 1);
    for bad in [&good[..good.len() - 7], &b"GET / HTTP/1.1\r\n\r\n"[..], &[0u8; 500][..]] {
        let err = e.archive.ingest_bytes(bad, &src()).await.unwrap_err();
        assert_eq!(err.kind, IngestErrorKind::Unreadable, "{err}");
        assert_eq!(err.dicom_status(), 0xC000);
    }
    // Missing Series Instance UID.
    let mut b = ObjectBuilder::new("1.2.840.10008.5.1.4.1.1.7", "1.2.826.0.1.1.1.7", "1.2.840.10008.1.2.1");
    b.str(Tag(0x0020, 0x000D), VR::UI, "1.2.826.0.1.1");
    let err = e.archive.ingest_bytes(&b.to_bytes(), &src()).await.unwrap_err();
    assert_eq!(err.kind, IngestErrorKind::Invalid);
    assert!(err.message.contains("SeriesInstanceUID"), "{err}");
    assert_eq!(err.dicom_status(), 0xA900);
    assert_eq!(blob_count(&e).await, 0);
    assert_eq!(staging_files(&e), 0);
    assert_eq!(e.index.counts().await.unwrap().instance_versions, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn conflicting_patient_is_refused_and_leaves_no_blob() {
    let e = env().await;
    e.archive.ingest_bytes(&ct("1.2.826.0.1.1.1.1", "P1", 1), &src()).await.unwrap();
    let err = e.archive.ingest_bytes(&ct("1.2.826.0.1.1.1.2", "OTHER", 1), &src()).await.unwrap_err();
    assert_eq!(err.kind, IngestErrorKind::Conflict, "{err}");
    assert_eq!(err.sop_instance_uid.as_deref(), Some("1.2.826.0.1.1.1.2"));
    assert_eq!(blob_count(&e).await, 1);
    let mut s = src();
    s.expected_study = Some("9.9.9".into());
    let err = e.archive.ingest_bytes(&ct("1.2.826.0.1.1.1.3", "P1", 1), &s).await.unwrap_err();
    assert_eq!(err.kind, IngestErrorKind::Conflict);
    assert_eq!(blob_count(&e).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn recovery_finishes_linked_objects_and_discards_the_rest() {
    // Simulate a crash after the link, before the commit: a staged file and its blob, no row.
    let e = env().await;
    let bytes = ct("1.2.826.0.1.1.1.5", "P1", 5);
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&bytes))
    };
    let key = yunying_archive::keys::original("1.2.826.0.1.1", "1.2.826.0.1.1.1", "1.2.826.0.1.1.1.5", &sha);
    std::fs::write(e.staging.join("linked-i0.dcm"), &bytes).unwrap();
    e.blobs.put_file(&key, &e.staging.join("linked-i0.dcm")).await.unwrap();
    // And a crash mid-receive: a half file, never linked.
    std::fs::write(e.staging.join("partial-i0.dcm"), &bytes[..bytes.len() / 2]).unwrap();
    let (index, blobs) = (e.index.clone(), e.blobs.clone());
    let staging = e.staging.clone();
    let archive = Archive::open(index.clone(), blobs.clone(), ArchiveSettings::new(&staging, "SZRMYY")).await.unwrap();
    assert_eq!(std::fs::read_dir(&staging).unwrap().count(), 0, "staging area emptied");
    let stored = archive.stored(&Scope::study("1.2.826.0.1.1")).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].blob_key, key);
    assert_eq!(blobs.list("dicom/").await.unwrap().len(), 1);
}

/// Some clients (pydicom's `dcmwrite` without a preamble, used by
/// dicomweb-client) send the meta group without the 128-byte preamble and
/// "DICM": the object is stored with the standard framing added.
#[tokio::test(flavor = "multi_thread")]
async fn missing_preamble_is_framed() {
    let e = env().await;
    let full = ct("1.2.826.0.1.1.1.4", "P1", 4);
    let o = e.archive.ingest_bytes(&full[132..], &src()).await.unwrap();
    assert_eq!(o.status, IngestStatus::Stored);
    let stored = e.archive.stored(&Scope::study("1.2.826.0.1.1")).await.unwrap();
    assert_eq!(stored[0].size_bytes as usize, full.len());
    use futures::TryStreamExt;
    let bytes: Vec<bytes::Bytes> = e.archive.open_object(&stored[0]).await.unwrap().try_collect().await.unwrap();
    assert_eq!(bytes.concat(), full);
    // Sent again with the preamble: the very same object, a no-op.
    let again = e.archive.ingest_bytes(&full, &src()).await.unwrap();
    assert_eq!(again.status, IngestStatus::Duplicate);
}
