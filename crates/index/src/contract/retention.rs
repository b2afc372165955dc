//! Contract cases of retention: visits recompute each study's retain-until
//! date (per institution), legal holds hide studies from the expiry report,
//! and deletion requests check, approve, delete and record.

use std::sync::Arc;

use super::{Sample, commit_one, institution};
use crate::lifecycle::*;
use crate::model::*;
use crate::retention::PatientClass;
use crate::{Index, IndexError};

async fn until(index: &Arc<dyn Index>, uid: &str) -> (PatientClass, Option<String>) {
    let r = index.study_retention(uid).await.unwrap().unwrap_or_else(|| panic!("study {uid}"));
    (r.patient_class, r.retain_until)
}

fn visit(inst: &Institution, patient: &str, number: &str, class: PatientClass, admitted: &str, discharged: Option<&str>) -> NewEncounter {
    NewEncounter {
        institution_id: inst.id,
        patient: PatientKey { issuer: format!("ISSUER{}", inst.id.0), id: patient.into() },
        visit_number: number.into(),
        class,
        admitted: admitted.into(),
        discharged: discharged.map(String::from),
    }
}

fn expired_uids(p: &ExpiredPage) -> Vec<&str> {
    p.studies.iter().map(|s| s.study_uid.as_str()).collect()
}

pub(super) async fn retention_follows_visits_per_institution(index: Arc<dyn Index>) {
    use PatientClass::*;
    let a = institution(&index, "RA").await;
    let b = institution(&index, "RB").await;
    let mut s = Sample::new(a.id, "P1", "8.1", "8.1.1", "8.1.1.1");
    s.study_date = "20000110".into();
    commit_one(&index, s.build()).await.unwrap();
    // At ingest: outpatient, 15 years from the exam (its visit VP1 has no class yet).
    assert_eq!(until(&index, "8.1").await, (Outpatient, Some("20150110".into())));
    // The same person (same issuer) examined at another institution.
    let mut s = Sample::new(b.id, "P1", "8.2", "8.2.1", "8.2.1.1");
    s.issuer = format!("ISSUER{}", a.id.0);
    s.study_date = "20010101".into();
    commit_one(&index, s.build()).await.unwrap();

    // A later outpatient visit at A extends A's exam only.
    let rec = index.record_encounter(&visit(&a, "P1", "MZ2005", Outpatient, "20050315", None)).await.unwrap();
    assert!(rec.created);
    assert_eq!(rec.studies.iter().map(|s| s.study_uid.as_str()).collect::<Vec<_>>(), vec!["8.1"]);
    assert_eq!(rec.studies[0].retain_until.as_deref(), Some("20200315"));
    assert_eq!(until(&index, "8.2").await, (Outpatient, Some("20160101".into())), "B's exam counts B's visits only");

    // The exam's own visit (its Admission ID) turns out to be an inpatient stay, not yet discharged.
    let rec = index.record_encounter(&visit(&a, "P1", "VP1", Inpatient, "19991231", None)).await.unwrap();
    assert!(!rec.created, "the visit the object named is updated");
    assert_eq!(until(&index, "8.1").await, (Inpatient, None), "still admitted: no end date");
    let basis = index.study_retention("8.1").await.unwrap().unwrap().basis.unwrap();
    assert!(basis.contains("VP1"), "{basis}");
    // The discharge arrives: 30 years from it.
    index.record_encounter(&visit(&a, "P1", "VP1", Inpatient, "19991231", Some("20000120"))).await.unwrap();
    assert_eq!(until(&index, "8.1").await, (Inpatient, Some("20300120".into())));

    // A new exam at A is computed at ingest from the visits already known.
    let mut s = Sample::new(a.id, "P1", "8.3", "8.3.1", "8.3.1.1");
    s.study_date = "20010101".into();
    let mut n = s.build();
    n.study.visit_number = None;
    commit_one(&index, n).await.unwrap();
    assert_eq!(until(&index, "8.3").await, (Outpatient, Some("20200315".into())));

    // A visit number belongs to one patient.
    let err = index.record_encounter(&visit(&a, "P2", "VP1", Outpatient, "20050101", None)).await;
    assert!(matches!(err, Err(IndexError::Conflict(_))), "{err:?}");
    // Visits of a patient the catalog has not seen yet are kept for later studies.
    index.record_encounter(&visit(&a, "P9", "MZ9", Emergency, "20100101", None)).await.unwrap();
    let mut s = Sample::new(a.id, "P9", "8.9", "8.9.1", "8.9.1.1");
    s.study_date = "20000101".into();
    let mut n = s.build();
    n.study.visit_number = None;
    commit_one(&index, n).await.unwrap();
    assert_eq!(until(&index, "8.9").await, (Outpatient, Some("20250101".into())));

    // A later exam at A is a visit too: it extends the outpatient exams there, not the inpatient one.
    let mut s = Sample::new(a.id, "P1", "8.11", "8.11.1", "8.11.1.1");
    s.study_date = "20120505".into();
    let mut n = s.build();
    n.study.visit_number = None;
    commit_one(&index, n).await.unwrap();
    assert_eq!(until(&index, "8.3").await, (Outpatient, Some("20270505".into())));
    assert_eq!(until(&index, "8.11").await, (Outpatient, Some("20270505".into())));
    assert_eq!(until(&index, "8.1").await, (Inpatient, Some("20300120".into())));
    assert_eq!(until(&index, "8.2").await, (Outpatient, Some("20160101".into())), "B's exam counts B's visits only");

    // Recomputing everything changes nothing and pages through every study.
    let mut after = 0;
    let mut pages = 0;
    while let Some(last) = index.recompute_retention(after, 2).await.unwrap() {
        after = last;
        pages += 1;
    }
    assert_eq!(pages, 3, "5 studies, 2 per page");
    assert_eq!(until(&index, "8.1").await, (Inpatient, Some("20300120".into())));
    assert_eq!(until(&index, "8.3").await, (Outpatient, Some("20270505".into())));
    assert!(index.study_retention("9.9").await.unwrap().is_none());
}

pub(super) async fn legal_holds_and_the_expiry_report(index: Arc<dyn Index>) {
    let a = institution(&index, "RA").await;
    for (uid, date) in [("8.4", "20000101"), ("8.5", "20040229"), ("8.6", "20240101")] {
        let mut s = Sample::new(a.id, &format!("P{uid}"), uid, &format!("{uid}.1"), &format!("{uid}.1.1"));
        s.study_date = date.into();
        commit_one(&index, s.build()).await.unwrap();
    }
    let page = index.expired_studies("20250101", 100, 0).await.unwrap();
    assert_eq!(expired_uids(&page), vec!["8.4", "8.5"], "by retain-until date");
    assert_eq!(page.total, 2);
    assert_eq!(page.studies[1].retain_until.as_deref(), Some("20190228"));
    assert_eq!(page.studies[0].institution_code, "RA");
    assert_eq!(page.studies[0].patient_id, "P8.4");
    assert_eq!(page.studies[0].size_bytes, 1000);
    // Retained until 20150101 inclusive: expired before 20150102, not before 20150101.
    assert!(expired_uids(&index.expired_studies("20150101", 100, 0).await.unwrap()).is_empty());
    assert_eq!(expired_uids(&index.expired_studies("20150102", 100, 0).await.unwrap()), vec!["8.4"]);
    let paged = index.expired_studies("20250101", 1, 1).await.unwrap();
    assert_eq!((paged.total, expired_uids(&paged)), (2, vec!["8.5"]));

    let hold = index.place_legal_hold("8.4", "诉讼 2025-民-17", "user:sec", 100).await.unwrap();
    assert_eq!(hold.placed_by, "user:sec");
    assert!(index.study_retention("8.4").await.unwrap().unwrap().legal_hold);
    assert_eq!(expired_uids(&index.expired_studies("20250101", 100, 0).await.unwrap()), vec!["8.5"], "held studies are not expired");
    let again = index.place_legal_hold("8.4", "again", "user:sec", 101).await;
    assert!(matches!(again, Err(IndexError::Conflict(_))), "{again:?}");
    assert!(matches!(index.place_legal_hold("9.9", "x", "user:sec", 1).await, Err(IndexError::NotFound(_))));
    let released = index.release_legal_hold("8.4", "judgment final", "user:sys", 200).await.unwrap();
    assert_eq!((released.released_by.as_deref(), released.released_at), (Some("user:sys"), Some(200)));
    assert!(matches!(index.release_legal_hold("8.4", "twice", "user:sys", 201).await, Err(IndexError::Conflict(_))));
    assert_eq!(expired_uids(&index.expired_studies("20250101", 100, 0).await.unwrap()), vec!["8.4", "8.5"]);
    let history = index.legal_holds("8.4").await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].release_reason.as_deref(), Some("judgment final"));
    assert_eq!(history[0].reason, "诉讼 2025-民-17");
}

pub(super) async fn deletion_requests_check_approve_delete_and_record(index: Arc<dyn Index>) {
    let a = institution(&index, "RA").await;
    for (uid, date) in [("8.7", "20000101"), ("8.8", "20240101"), ("8.10", "20010101")] {
        let mut s = Sample::new(a.id, &format!("P{uid}"), uid, &format!("{uid}.1"), &format!("{uid}.1.1"));
        s.study_date = date.into();
        commit_one(&index, s.build()).await.unwrap();
    }
    // A second version of 8.7's instance: both are deleted.
    let mut v2 = Sample::new(a.id, "P8.7", "8.7", "8.7.1", "8.7.1.1");
    v2.sha = format!("{:e>64}", "7");
    commit_one(&index, v2.build()).await.unwrap();
    let before = index.counts().await.unwrap();
    let new = |uids: &[&str]| NewDeletionRequest {
        study_uids: uids.iter().map(|s| s.to_string()).collect(),
        note: "retention review 2025".into(),
        requested_by: "user:sys".into(),
        requested_at: 1000,
        today: "20250101".into(),
    };
    let created = |o: DeletionRequestOutcome| match o {
        DeletionRequestOutcome::Created(r) => r,
        other => panic!("expected a request, got {other:?}"),
    };
    // Refused as a whole when one study is not deletable; nothing is recorded.
    match index.create_deletion_request(&new(&["8.7", "8.8", "9.9"])).await.unwrap() {
        DeletionRequestOutcome::Refused(r) => {
            assert_eq!(r.iter().map(|r| r.study_uid.as_str()).collect::<Vec<_>>(), vec!["8.8", "9.9"]);
            assert!(r[0].reason.contains("retained until 20390101"), "{}", r[0].reason);
            assert!(r[1].reason.contains("no such study"), "{}", r[1].reason);
        }
        other => panic!("{other:?}"),
    }
    assert!(index.deletion_requests(100, 0).await.unwrap().is_empty());
    assert!(matches!(index.create_deletion_request(&new(&[" "])).await, Err(IndexError::Invalid(_))));

    let req = created(index.create_deletion_request(&new(&["8.7"])).await.unwrap());
    assert_eq!(req.state, DeletionState::Requested);
    assert_eq!(req.studies, vec![DeletionItem { study_uid: "8.7".into(), state: "pending".into(), detail: None }]);
    match index.create_deletion_request(&new(&["8.7"])).await.unwrap() {
        DeletionRequestOutcome::Refused(r) => assert!(r[0].reason.contains(&format!("deletion request {}", req.id)), "{r:?}"),
        other => panic!("{other:?}"),
    }
    // Nothing is deleted before approval.
    let early = index.delete_study_records(req.id, "8.7", "user:sec", 2000, "20250101").await;
    assert!(matches!(early, Err(IndexError::Conflict(_))), "{early:?}");

    let approved = index
        .decide_deletion_request(req.id, &DeletionDecision::Approve { by: "user:sec".into(), at: 2000, note: None })
        .await
        .unwrap();
    assert_eq!((approved.state, approved.decided_by.as_deref()), (DeletionState::Approved, Some("user:sec")));
    let StudyDeletion::Deleted(gone) = index.delete_study_records(req.id, "8.7", "user:sec", 2000, "20250101").await.unwrap() else {
        panic!("8.7 should be deleted");
    };
    assert_eq!(gone.reason_code, "113039");
    assert_eq!(gone.blobs.len(), 2, "every version");
    assert_eq!((gone.num_instances, gone.size_bytes), (1, 2000));
    assert_eq!(gone.patient_id, "P8.7");
    assert!(index.study_retention("8.7").await.unwrap().is_none());
    assert!(index.stored_instances(&Scope::study("8.7")).await.unwrap().is_empty());
    for b in &gone.blobs {
        assert!(!index.blob_key_indexed(&b.key).await.unwrap());
    }
    let after = index.counts().await.unwrap();
    assert_eq!((after.studies, after.series, after.instance_versions), (before.studies - 1, before.series - 1, before.instance_versions - 2));
    assert_eq!(after.patients, before.patients, "the patient and their visits stay");
    // Again (a resumed approval): the same record, nothing more.
    let StudyDeletion::Deleted(again) = index.delete_study_records(req.id, "8.7", "user:sec", 3000, "20250101").await.unwrap() else {
        panic!("8.7's record");
    };
    assert_eq!((again.id, again.blobs_removed_at), (gone.id, None));
    index.mark_blobs_removed(gone.id, 2500).await.unwrap();
    let StudyDeletion::Deleted(again) = index.delete_study_records(req.id, "8.7", "user:sec", 3000, "20250101").await.unwrap() else {
        panic!("8.7's record");
    };
    assert_eq!(again.blobs_removed_at, Some(2500));
    let done = index.decide_deletion_request(req.id, &DeletionDecision::Done { at: 3000 }).await.unwrap();
    assert_eq!((done.state, done.done_at), (DeletionState::Done, Some(3000)));
    assert_eq!(done.studies[0].state, "deleted");
    let late = index.decide_deletion_request(req.id, &DeletionDecision::Approve { by: "user:x".into(), at: 1, note: None }).await;
    assert!(matches!(late, Err(IndexError::Conflict(_))), "{late:?}");

    // Rejected: nothing happens to the study.
    let req2 = created(index.create_deletion_request(&new(&["8.10"])).await.unwrap());
    let rejected = index
        .decide_deletion_request(req2.id, &DeletionDecision::Reject { by: "user:sec".into(), at: 4000, note: "keep for research".into() })
        .await
        .unwrap();
    assert_eq!((rejected.state, rejected.decision_note.as_deref()), (DeletionState::Rejected, Some("keep for research")));
    let after_reject = index.decide_deletion_request(req2.id, &DeletionDecision::Approve { by: "user:sec".into(), at: 1, note: None }).await;
    assert!(matches!(after_reject, Err(IndexError::Conflict(_))));
    assert!(index.study_retention("8.10").await.unwrap().is_some());

    // A hold placed after the request: the study is skipped at approval.
    let req3 = created(index.create_deletion_request(&new(&["8.10"])).await.unwrap());
    index.place_legal_hold("8.10", "complaint", "user:sec", 5000).await.unwrap();
    index.decide_deletion_request(req3.id, &DeletionDecision::Approve { by: "user:sec".into(), at: 5001, note: None }).await.unwrap();
    match index.delete_study_records(req3.id, "8.10", "user:sec", 5002, "20250101").await.unwrap() {
        StudyDeletion::Skipped(why) => assert!(why.contains("legal hold"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(index.study_retention("8.10").await.unwrap().is_some());
    let listed = index.deletion_requests(100, 0).await.unwrap();
    assert_eq!(listed.iter().map(|r| r.id).collect::<Vec<_>>(), vec![req3.id, req2.id, req.id], "newest first");
    assert_eq!(listed[0].studies[0].state, "skipped");
    assert!(index.deletion_request(9999).await.unwrap().is_none());
}
