//! The approved deletion workflow against a real SQLite catalog and
//! filesystem blob store: the two-person rule holds whatever the roles,
//! approval checks every study again, and a deletion removes every version
//! and the derived copy from storage.

use std::sync::Arc;

use yunying_archive::policy::{Action, Principal, PrincipalKind};
use yunying_archive::retention::{DeletionError, EncounterRequest};
use yunying_archive::{Archive, ArchiveError, ArchiveSettings, Caller, IngestSource};
use yunying_blob::{BlobStore, FsStore};
use yunying_dicom::write::ObjectBuilder;
use yunying_dicom::{Tag, VR};
use yunying_index::lifecycle::{DeletionState, StoredBlob};
use yunying_index::{Index, NewInstitution, Scope};

const STUDY: &str = "1.2.826.0.1.7.1";

struct Env {
    _dir: tempfile::TempDir,
    archive: Arc<Archive>,
    index: Arc<dyn Index>,
    blobs: Arc<dyn BlobStore>,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
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
    let archive = Archive::open(index.clone(), blobs.clone(), ArchiveSettings::new(dir.path().join("staging"), "SZRMYY")).await.unwrap();
    Env { _dir: dir, archive, index, blobs }
}

fn ct(pixel: u8) -> Vec<u8> {
    let mut b = ObjectBuilder::new("1.2.840.10008.5.1.4.1.1.2", &format!("{STUDY}.1.1"), "1.2.840.10008.1.2.1");
    b.str(Tag(0x0010, 0x0020), VR::LO, "P1");
    b.str(Tag(0x0020, 0x000D), VR::UI, STUDY);
    b.str(Tag(0x0020, 0x000E), VR::UI, &format!("{STUDY}.1"));
    b.str(Tag(0x0008, 0x0060), VR::CS, "CT");
    b.str(Tag(0x0008, 0x0020), VR::DA, "20000110");
    b.u16(Tag(0x0028, 0x0010), 2).u16(Tag(0x0028, 0x0011), 2).u16(Tag(0x0028, 0x0100), 16);
    b.u16(Tag(0x0028, 0x0002), 1);
    b.pixel_data_native(vec![pixel; 8], VR::OW);
    b.to_bytes()
}

/// A machine credential holding the whole workflow: no account can (三员
/// 分立 keeps requester and approver roles apart), but the archive must
/// not rely on that alone.
fn officer(id: &str) -> Caller {
    Caller::new(
        Principal {
            kind: PrincipalKind::Token,
            id: id.into(),
            name: id.into(),
            roles: vec![],
            actions: Some(vec![Action::RequestDeletion, Action::ApproveDeletion, Action::ViewRetention, Action::ManageLegalHolds]),
            institution: None,
            institution_code: None,
            regional: true,
            granted_studies: vec![],
        },
        None,
        "http",
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn two_people_approval_rechecks_and_storage_is_emptied() {
    let e = env().await;
    let src = IngestSource::new("test", "127.0.0.1");
    e.archive.ingest_bytes(&ct(1), &src).await.unwrap();
    e.archive.ingest_bytes(&ct(2), &src).await.unwrap(); // a second version
    let stored = e.index.stored_instances(&Scope::study(STUDY)).await.unwrap();
    let derived = format!("derived/v1/htj2k-rpcl/{}/{}/1.j2c", &stored[0].sha256[..2], stored[0].sha256);
    e.blobs.put_bytes(&derived, bytes::Bytes::from_static(b"j2c")).await.unwrap();
    assert_eq!(images(&e.blobs).await.len(), 3);

    let (alice, bob) = (officer("token:alice"), officer("token:bob"));
    let note = "retention review";
    let req = e.archive.request_deletion(&alice, &[STUDY.to_string()], note).await.unwrap();
    let same = e.archive.approve_deletion(&alice, req.id, None).await;
    assert!(matches!(same, Err(DeletionError::Archive(ArchiveError::Forbidden(ref m))) if m.contains("two-person")), "{same:?}");

    // A hold placed after the request: approval is refused, the request waits.
    e.archive.place_legal_hold(&bob, STUDY, "complaint").await.unwrap();
    match e.archive.approve_deletion(&bob, req.id, None).await {
        Err(DeletionError::Refused(r)) => assert!(r[0].reason.contains("legal hold"), "{r:?}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(e.index.deletion_request(req.id).await.unwrap().unwrap().state, DeletionState::Requested);
    e.archive.release_legal_hold(&bob, STUDY, "closed").await.unwrap();

    // A later visit would extend the retention: recorded by the system, the study is no longer expired.
    let visit = EncounterRequest {
        institution: "SZRMYY".into(),
        patient_id: "P1".into(),
        issuer: None,
        visit_number: "MZ1".into(),
        class: "O".into(),
        admitted: "20200101".into(),
        discharged: None,
    };
    e.archive.record_encounter(&Caller::system("test"), &visit).await.unwrap();
    assert!(matches!(e.archive.approve_deletion(&bob, req.id, None).await, Err(DeletionError::Refused(_))));
    // The visit was a mistake (another patient's): corrected to its real date.
    let corrected = EncounterRequest { admitted: "20000110".into(), ..visit };
    e.archive.record_encounter(&Caller::system("test"), &corrected).await.unwrap();

    let done = e.archive.approve_deletion(&bob, req.id, Some("ok")).await.unwrap();
    assert_eq!(done.state, DeletionState::Done);
    assert!(images(&e.blobs).await.is_empty(), "both versions and the derived copy are gone");
    assert!(e.index.stored_instances(&Scope::study(STUDY)).await.unwrap().is_empty());
    assert!(matches!(e.archive.study_facts(STUDY).await, Ok(None)));

    // Removing what is already absent is not a failure.
    let again = e.archive.delete_study_blobs(&[StoredBlob { key: stored[0].blob_key.clone(), sha256: stored[0].sha256.clone() }]).await;
    assert_eq!((again.removed, again.failed.len()), (1, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approval_interrupted_by_a_crash_is_finished_by_approving_again() {
    let e = env().await;
    e.archive.ingest_bytes(&ct(1), &IngestSource::new("test", "127.0.0.1")).await.unwrap();
    let (alice, bob) = (officer("token:alice"), officer("token:bob"));
    let req = e.archive.request_deletion(&alice, &[STUDY.to_string()], "review").await.unwrap();
    // The approval was recorded, then the server stopped before deleting anything.
    let decision = yunying_index::lifecycle::DeletionDecision::Approve { by: "token:bob".into(), at: 1, note: None };
    e.index.decide_deletion_request(req.id, &decision).await.unwrap();
    assert_eq!(images(&e.blobs).await.len(), 1);
    let done = e.archive.approve_deletion(&bob, req.id, None).await.unwrap();
    assert_eq!((done.state, done.decided_by.as_deref()), (DeletionState::Done, Some("token:bob")));
    assert!(images(&e.blobs).await.is_empty());
    assert!(e.index.study_retention(STUDY).await.unwrap().is_none());
}

/// The stored images (originals and derived frames), not the ingest journal,
/// which keeps its lines (a re-index ignores lines without objects).
async fn images(blobs: &std::sync::Arc<dyn yunying_blob::BlobStore>) -> Vec<String> {
    blobs.list("").await.unwrap().into_iter().filter(|k| !k.starts_with("journal/")).collect()
}
