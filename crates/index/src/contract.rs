//! The contract every [`Index`] backend passes. Each backend's tests call
//! [`run_all`] with a factory that makes a fresh, empty catalog.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::directory::*;
use crate::model::*;
use crate::storage::*;
use crate::query::{Key, Level, Query};
use crate::{Index, IndexError};
use yunying_util::InstitutionId;

mod retention;
use retention::*;

type Case = (&'static str, fn(Arc<dyn Index>) -> Pin<Box<dyn Future<Output = ()> + Send>>);

/// Every contract case, by name.
pub fn cases() -> Vec<Case> {
    macro_rules! case {
        ($f:ident) => {
            (stringify!($f), |i| Box::pin($f(i)))
        };
    }
    vec![
        case!(institutions_upsert_and_list),
        case!(application_entities_register_update_and_remove),
        case!(application_entities_list_in_title_order),
        case!(application_entity_refusals),
        case!(institution_ae_titles_join_the_registry),
        case!(commit_new_duplicate_and_version),
        case!(same_patient_id_at_two_institutions_are_two_patients),
        case!(study_of_another_patient_is_a_conflict),
        case!(batch_items_fail_alone),
        case!(study_queries_match_like_dicom),
        case!(series_and_instance_queries),
        case!(paging_and_order),
        case!(study_list_order_count_and_institution_codes),
        case!(institution_scope_restricts_results),
        case!(retrieval_order_and_metadata),
        case!(counters_follow_ingest),
        // Retention (contract/retention.rs).
        case!(retention_follows_visits_per_institution),
        case!(legal_holds_and_the_expiry_report),
        case!(deletion_requests_check_approve_delete_and_record),
        case!(forward_jobs_queue_claim_retry_and_complete),
        case!(derive_queue_claim_finish_and_request),
        case!(regional_institutions_are_marked_and_listed),
        case!(users_create_look_up_and_list),
        case!(user_taken_username_is_a_conflict),
        case!(user_changes_apply_field_by_field),
        case!(user_unlock_clears_failures_and_lock),
        case!(login_failures_count_to_the_lock),
        case!(login_failures_count_atomically),
        case!(totp_steps_are_never_replayed),
        case!(sessions_live_touch_forward_and_end),
        case!(credentials_create_look_up_and_list),
        case!(credential_public_id_taken_is_a_conflict),
        case!(revoking_a_credential_revokes_what_it_issued),
        case!(grants_active_until_expired_or_revoked),
        case!(grant_needs_exactly_one_grantee),
        case!(patient_secrets_recorded_once_per_value),
        case!(patient_secrets_page_and_rewrite),
        case!(audit_append_moves_the_anchor),
        case!(audit_chain_pages_in_seq_order),
        case!(audit_search_filters_newest_first),
        case!(audit_search_limit_zero_means_one_hundred),
        case!(audit_taken_position_is_a_conflict_writing_nothing),
        case!(cloud_copy_queue_claim_finish_expire_and_request),
        case!(job_leases_one_holder_at_a_time),
        case!(storage_tasks_and_blob_problems),
    ]
}

/// Runs every case against fresh catalogs from `make`, panicking with the
/// case name on the first failure.
pub async fn run_all<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Index>>,
{
    for (name, case) in cases() {
        let index = make().await;
        eprintln!("contract case {name} on {}", index.backend());
        let handle = tokio::spawn(case(index));
        if let Err(e) = handle.await {
            panic!("contract case {name} failed: {e}");
        }
    }
}

/// Builds a plausible [`NewInstance`] for tests.
pub struct Sample {
    pub institution: InstitutionId,
    pub issuer: String,
    pub patient_id: String,
    pub patient_name: String,
    pub study: String,
    pub series: String,
    pub sop: String,
    pub sha: String,
    pub modality: String,
    pub study_date: String,
    pub series_number: i64,
    pub instance_number: i64,
    pub accession: String,
}

impl Sample {
    pub fn new(institution: InstitutionId, patient_id: &str, study: &str, series: &str, sop: &str) -> Sample {
        Sample {
            institution,
            issuer: format!("ISSUER{}", institution.0),
            patient_id: patient_id.into(),
            patient_name: "Zhang^San=张^三".into(),
            study: study.into(),
            series: series.into(),
            sop: sop.into(),
            sha: format!("{:0>64}", sop.replace('.', "")),
            modality: "CT".into(),
            study_date: "20240115".into(),
            series_number: 1,
            instance_number: 1,
            accession: format!("A{}", study.replace('.', "")),
        }
    }

    pub fn build(&self) -> NewInstance {
        let pn_json = serde_json::json!({"Alphabetic": self.patient_name.split('=').next().unwrap_or("")});
        let study_attrs = serde_json::json!({
            "00100010": {"vr": "PN", "Value": [pn_json]},
            "00100020": {"vr": "LO", "Value": [self.patient_id]},
            "0020000D": {"vr": "UI", "Value": [self.study]},
            "00080020": {"vr": "DA", "Value": [self.study_date]},
            "00080050": {"vr": "SH", "Value": [self.accession]},
        });
        let series_attrs = serde_json::json!({
            "00080060": {"vr": "CS", "Value": [self.modality]},
            "0020000E": {"vr": "UI", "Value": [self.series]},
            "00200011": {"vr": "IS", "Value": [self.series_number]},
        });
        let inst_attrs = serde_json::json!({
            "00080018": {"vr": "UI", "Value": [self.sop]},
            "00200013": {"vr": "IS", "Value": [self.instance_number]},
        });
        NewInstance {
            patient_secrets: Vec::new(),
            institution_id: self.institution,
            patient_key: PatientKey { issuer: self.issuer.clone(), id: self.patient_id.clone() },
            patient: PatientFields {
                name: Some(self.patient_name.clone()),
                birth_date: Some("19800101".into()),
                sex: Some("M".into()),
            },
            study: StudyFields {
                uid: self.study.clone(),
                date: Some(self.study_date.clone()),
                time: Some("101500".into()),
                accession_number: Some(self.accession.clone()),
                study_id: Some("1".into()),
                description: Some("胸部CT平扫".into()),
                referring_physician: Some("Li^Si".into()),
                visit_number: Some(format!("V{}", self.patient_id)),
                attrs: study_attrs.to_string(),
            },
            series: SeriesFields {
                uid: self.series.clone(),
                modality: Some(self.modality.clone()),
                number: Some(self.series_number),
                description: Some("Axial".into()),
                body_part: Some("CHEST".into()),
                date: Some(self.study_date.clone()),
                time: None,
                station_name: None,
                attrs: series_attrs.to_string(),
            },
            forward_to: Vec::new(),
            derive: false,
            cloud: false,
            instance: InstanceFields {
                sop_uid: self.sop.clone(),
                sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
                transfer_syntax: "1.2.840.10008.1.2.1".into(),
                number: Some(self.instance_number),
                rows: Some(512),
                columns: Some(512),
                bits_allocated: Some(16),
                number_of_frames: None,
                sha256: self.sha.clone(),
                size_bytes: 1000,
                blob_key: format!("dicom/v1/{}/{}/{}/{}.dcm", self.study, self.series, self.sop, &self.sha[..16]),
                frames: r#"{"k":"native","offset":400,"frame_len":524288,"count":1}"#.into(),
                bulk: "{}".into(),
                attrs: inst_attrs.to_string(),
                metadata: format!(r#"{{"00080018":{{"vr":"UI","Value":["{}"]}}}}"#, self.sop),
                received_from: "test".into(),
                received_at: 1,
            },
        }
    }
}

async fn institution(index: &Arc<dyn Index>, code: &str) -> Institution {
    index
        .upsert_institution(&NewInstitution {
            code: code.into(),
            name_zh: format!("{code}医院"),
            name_en: format!("{code} Hospital"),
            patient_id_issuer: None,
            ae_titles: vec![format!("{code}_CT")],
        })
        .await
        .expect("upsert institution")
}

fn remote_ae(institution: InstitutionId, title: &str) -> NewApplicationEntity {
    NewApplicationEntity {
        ae_title: title.into(),
        institution_id: institution,
        host: None,
        port: None,
        may_store: true,
        may_query: false,
        may_retrieve: false,
        description: String::new(),
    }
}

async fn commit_one(index: &Arc<dyn Index>, n: NewInstance) -> Result<CommitOutcome, IndexError> {
    let mut out = index.commit(&[n]).await.expect("commit batch");
    out.remove(0)
}

fn uids(rows: &[StudyRow]) -> Vec<&str> {
    rows.iter().map(|r| r.study_uid.as_str()).collect()
}

async fn institutions_upsert_and_list(index: Arc<dyn Index>) {
    let a = institution(&index, "SZRMYY").await;
    assert_eq!(a.patient_id_issuer, "SZRMYY");
    assert_eq!(a.ae_titles, vec!["SZRMYY_CT".to_string()]);
    let again = index
        .upsert_institution(&NewInstitution {
            code: "SZRMYY".into(),
            name_zh: "嵊州市人民医院".into(),
            name_en: "Shengzhou People's Hospital".into(),
            patient_id_issuer: None,
            ae_titles: vec!["CT1".into(), "MR1".into()],
        })
        .await
        .unwrap();
    assert_eq!(again.id, a.id, "upsert by code keeps the id");
    assert_eq!(again.name_zh, "嵊州市人民医院");
    assert_eq!(again.ae_titles.len(), 2);
    institution(&index, "SZFYBJY").await;
    let all = index.institutions().await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(index.institution_by_code("NOPE").await.unwrap().is_none());
    assert_eq!(index.institution_by_code("SZRMYY").await.unwrap().unwrap().id, a.id);
}

async fn commit_new_duplicate_and_version(index: Arc<dyn Index>) {
    let inst = institution(&index, "H1").await;
    let s = Sample::new(inst.id, "P001", "1.1", "1.1.1", "1.1.1.1");
    let first = commit_one(&index, s.build()).await.unwrap();
    assert!(matches!(first, CommitOutcome::Stored(ref r) if r.version == 1));
    let dup = commit_one(&index, s.build()).await.unwrap();
    assert!(matches!(dup, CommitOutcome::Duplicate(ref r) if r.version == 1), "{dup:?}");
    let found = index.find_version("1.1.1.1", &s.sha).await.unwrap().unwrap();
    assert_eq!(found.version, 1);

    let mut changed = Sample::new(inst.id, "P001", "1.1", "1.1.1", "1.1.1.1");
    changed.sha = format!("{:f>64}", "1");
    let v2 = commit_one(&index, changed.build()).await.unwrap();
    match v2 {
        CommitOutcome::NewVersion { ref stored, previous } => {
            assert_eq!(stored.version, 2);
            assert_eq!(previous, 1);
        }
        other => panic!("expected a new version, got {other:?}"),
    }
    let counts = index.counts().await.unwrap();
    assert_eq!(counts.instances, 1, "one current instance");
    assert_eq!(counts.instance_versions, 2, "both versions kept");
    let stored = index.stored_instances(&Scope::study("1.1")).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].version, 2);
    assert_eq!(stored[0].sha256, changed.sha);
    assert!(index.blob_key_indexed(&s.build().instance.blob_key).await.unwrap(), "old version's blob still indexed");
    assert!(!index.blob_key_indexed("dicom/v1/none").await.unwrap());
}

async fn same_patient_id_at_two_institutions_are_two_patients(index: Arc<dyn Index>) {
    let a = institution(&index, "HA").await;
    let b = institution(&index, "HB").await;
    commit_one(&index, Sample::new(a.id, "P001", "2.1", "2.1.1", "2.1.1.1").build()).await.unwrap();
    commit_one(&index, Sample::new(b.id, "P001", "2.2", "2.2.1", "2.2.1.1").build()).await.unwrap();
    // A second study of the same patient at A: still one patient there.
    commit_one(&index, Sample::new(a.id, "P001", "2.3", "2.3.1", "2.3.1.1").build()).await.unwrap();
    let counts = index.counts().await.unwrap();
    assert_eq!(counts.patients, 2);
    assert_eq!(counts.studies, 3);
    let q = Query::new(Level::Study).filter_str(Key::PatientId, "P001").unwrap();
    assert_eq!(index.query_studies(&q).await.unwrap().len(), 3);
    let q = q.filter_str(Key::IssuerOfPatientId, "ISSUER1").unwrap();
    let rows = index.query_studies(&q).await.unwrap();
    let mut got = uids(&rows);
    got.sort();
    assert_eq!(got, vec!["2.1", "2.3"]);
}

async fn study_of_another_patient_is_a_conflict(index: Arc<dyn Index>) {
    let a = institution(&index, "HA").await;
    commit_one(&index, Sample::new(a.id, "P001", "3.1", "3.1.1", "3.1.1.1").build()).await.unwrap();
    let err = commit_one(&index, Sample::new(a.id, "P999", "3.1", "3.1.1", "3.1.1.2").build()).await;
    assert!(matches!(err, Err(IndexError::Conflict(_))), "{err:?}");
    // A series UID reused under another study is a conflict too.
    let err = commit_one(&index, Sample::new(a.id, "P001", "3.2", "3.1.1", "3.1.1.3").build()).await;
    assert!(matches!(err, Err(IndexError::Conflict(_))), "{err:?}");
    let counts = index.counts().await.unwrap();
    assert_eq!(counts.instances, 1, "nothing of the conflicting objects was recorded");
    assert_eq!(counts.studies, 1);
}

async fn batch_items_fail_alone(index: Arc<dyn Index>) {
    let a = institution(&index, "HA").await;
    commit_one(&index, Sample::new(a.id, "P001", "4.1", "4.1.1", "4.1.1.1").build()).await.unwrap();
    let batch = vec![
        Sample::new(a.id, "P001", "4.1", "4.1.1", "4.1.1.2").build(),
        Sample::new(a.id, "P002", "4.1", "4.1.1", "4.1.1.3").build(), // wrong patient
        Sample::new(a.id, "P001", "4.1", "4.1.1", "4.1.1.4").build(),
        Sample::new(a.id, "P001", "4.1", "4.1.1", "4.1.1.2").build(), // duplicate within the batch
    ];
    let out = index.commit(&batch).await.unwrap();
    assert!(matches!(out[0], Ok(CommitOutcome::Stored(_))));
    assert!(matches!(out[1], Err(IndexError::Conflict(_))));
    assert!(matches!(out[2], Ok(CommitOutcome::Stored(_))));
    assert!(matches!(out[3], Ok(CommitOutcome::Duplicate(_))), "{:?}", out[3]);
    assert_eq!(index.counts().await.unwrap().instances, 3);
}

async fn study_queries_match_like_dicom(index: Arc<dyn Index>) {
    let a = institution(&index, "HA").await;
    let mut s1 = Sample::new(a.id, "P1", "5.1", "5.1.1", "5.1.1.1");
    s1.patient_name = "Wang^XiaoDong=王^小东".into();
    s1.study_date = "20240110".into();
    let mut s2 = Sample::new(a.id, "P2", "5.2", "5.2.1", "5.2.1.1");
    s2.patient_name = "Li^Si=李^四".into();
    s2.study_date = "20240220".into();
    s2.modality = "MR".into();
    let mut s3 = Sample::new(a.id, "P3", "5.3", "5.3.1", "5.3.1.1");
    s3.patient_name = "WANG^DA".into();
    s3.study_date = "20231231".into();
    let mut s3b = Sample::new(a.id, "P3", "5.3", "5.3.2", "5.3.2.1");
    s3b.patient_name = "WANG^DA".into();
    s3b.modality = "SR".into();
    s3b.series_number = 2;
    for s in [&s1, &s2, &s3, &s3b] {
        commit_one(&index, s.build()).await.unwrap();
    }
    let find = |q: Query| {
        let index = index.clone();
        async move {
            let rows = index.query_studies(&q).await.unwrap();
            let mut u: Vec<String> = rows.into_iter().map(|r| r.study_uid).collect();
            u.sort();
            u
        }
    };
    let q = |k: Key, v: &str| Query::new(Level::Study).filter_str(k, v).unwrap();
    assert_eq!(find(q(Key::PatientName, "wang*")).await, vec!["5.1", "5.3"]);
    assert_eq!(find(q(Key::PatientName, "王*")).await, vec!["5.1"]);
    assert_eq!(find(q(Key::PatientName, "Li^Si")).await, vec!["5.2"]);
    assert_eq!(find(q(Key::PatientName, "李^四")).await, vec!["5.2"]);
    assert_eq!(find(q(Key::PatientName, "Si")).await, Vec::<String>::new());
    let mut fuzzy = q(Key::PatientName, "xiao");
    fuzzy.fuzzy = true;
    assert_eq!(find(fuzzy).await, vec!["5.1"]);
    assert_eq!(find(q(Key::StudyDate, "20240101-20241231")).await, vec!["5.1", "5.2"]);
    assert_eq!(find(q(Key::StudyDate, "-20231231")).await, vec!["5.3"]);
    assert_eq!(find(q(Key::StudyDate, "20240220")).await, vec!["5.2"]);
    assert_eq!(find(q(Key::StudyInstanceUid, "5.1\\5.3")).await, vec!["5.1", "5.3"]);
    assert_eq!(find(q(Key::ModalitiesInStudy, "MR")).await, vec!["5.2"]);
    assert_eq!(find(q(Key::ModalitiesInStudy, "SR\\MR")).await, vec!["5.2", "5.3"]);
    assert_eq!(find(q(Key::AccessionNumber, "A52")).await, vec!["5.2"]);
    assert_eq!(find(q(Key::AccessionNumber, "a5*")).await, vec!["5.1", "5.2", "5.3"]);
    assert_eq!(find(q(Key::PatientId, "P")).await, Vec::<String>::new());
    let rows = index.query_studies(&q(Key::StudyInstanceUid, "5.3")).await.unwrap();
    assert_eq!(rows[0].modalities, vec!["CT".to_string(), "SR".to_string()]);
    assert_eq!(rows[0].num_series, 2);
    assert_eq!(rows[0].num_instances, 2);
    assert_eq!(rows[0].institution_code, "HA");
    let attrs: serde_json::Value = serde_json::from_str(&rows[0].attrs).unwrap();
    assert_eq!(attrs["0020000D"]["Value"][0], "5.3");
}

async fn series_and_instance_queries(index: Arc<dyn Index>) {
    let a = institution(&index, "HA").await;
    for (series, n, modality) in [("6.1.1", 1, "CT"), ("6.1.2", 2, "SR")] {
        for k in 1..=3 {
            let mut s = Sample::new(a.id, "P1", "6.1", series, &format!("{series}.{k}"));
            s.series_number = n;
            s.instance_number = 4 - k;
            s.modality = modality.into();
            commit_one(&index, s.build()).await.unwrap();
        }
    }
    let q = Query::new(Level::Series).filter_str(Key::StudyInstanceUid, "6.1").unwrap();
    let rows = index.query_series(&q).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.series_uid.as_str()).collect::<Vec<_>>(), vec!["6.1.1", "6.1.2"]);
    assert_eq!(rows[0].num_instances, 3);
    assert_eq!(rows[0].study.study_uid, "6.1");
    let q = Query::new(Level::Series).filter_str(Key::Modality, "SR").unwrap();
    assert_eq!(index.query_series(&q).await.unwrap().len(), 1);
    let q = Query::new(Level::Series).filter_str(Key::PatientId, "P1").unwrap().filter_str(Key::SeriesNumber, "2").unwrap();
    assert_eq!(index.query_series(&q).await.unwrap()[0].series_uid, "6.1.2");

    let q = Query::new(Level::Instance).filter_str(Key::SeriesInstanceUid, "6.1.1").unwrap();
    let rows = index.query_instances(&q).await.unwrap();
    assert_eq!(
        rows.iter().map(|r| r.sop_uid.as_str()).collect::<Vec<_>>(),
        vec!["6.1.1.3", "6.1.1.2", "6.1.1.1"],
        "instances in instance-number order"
    );
    assert_eq!(rows[0].series_num_instances, 3);
    let q = Query::new(Level::Instance).filter_str(Key::SopInstanceUid, "6.1.2.2").unwrap();
    let rows = index.query_instances(&q).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].series_uid, "6.1.2");
    assert_eq!(rows[0].study.study_uid, "6.1");
    let q = Query::new(Level::Instance).filter_str(Key::InstanceNumber, "1").unwrap();
    assert_eq!(index.query_instances(&q).await.unwrap().len(), 2);
}

async fn paging_and_order(index: Arc<dyn Index>) {
    let a = institution(&index, "HA").await;
    for d in 1..=9 {
        let mut s = Sample::new(a.id, &format!("P{d}"), &format!("7.{d}"), &format!("7.{d}.1"), &format!("7.{d}.1.1"));
        s.study_date = format!("2024010{d}");
        commit_one(&index, s.build()).await.unwrap();
    }
    let all = index.query_studies(&Query::new(Level::Study)).await.unwrap();
    assert_eq!(uids(&all), vec!["7.9", "7.8", "7.7", "7.6", "7.5", "7.4", "7.3", "7.2", "7.1"], "newest first");
    let page = index.query_studies(&Query::new(Level::Study).limit(3).offset(2)).await.unwrap();
    assert_eq!(uids(&page), vec!["7.7", "7.6", "7.5"]);
    let past = index.query_studies(&Query::new(Level::Study).limit(3).offset(20)).await.unwrap();
    assert!(past.is_empty());
}

async fn study_list_order_count_and_institution_codes(index: Arc<dyn Index>) {
    use crate::query::{StudyOrder, StudyOrderKey};
    let a = institution(&index, "HA").await;
    let b = institution(&index, "HB").await;
    let people = [("P3", "Wang^Wu", "20240103", a.id), ("P1", "Li^Si", "20240101", b.id), ("P2", "Zhao^Liu", "20240102", a.id)];
    for (n, (pid, name, date, inst)) in people.iter().enumerate() {
        let mut s = Sample::new(*inst, pid, &format!("9.{n}"), &format!("9.{n}.1"), &format!("9.{n}.1.1"));
        s.patient_name = name.to_string();
        s.study_date = date.to_string();
        commit_one(&index, s.build()).await.unwrap();
    }
    let ordered = |key, descending| {
        let mut q = Query::new(Level::Study);
        q.order = Some(StudyOrder { key, descending });
        q
    };
    let by_name = index.query_studies(&ordered(StudyOrderKey::PatientName, false)).await.unwrap();
    assert_eq!(uids(&by_name), vec!["9.1", "9.0", "9.2"], "Li, Wang, Zhao");
    let by_id_desc = index.query_studies(&ordered(StudyOrderKey::PatientId, true)).await.unwrap();
    assert_eq!(uids(&by_id_desc), vec!["9.0", "9.2", "9.1"], "P3, P2, P1");
    let oldest = index.query_studies(&ordered(StudyOrderKey::StudyDate, false).limit(2)).await.unwrap();
    assert_eq!(uids(&oldest), vec!["9.1", "9.2"]);
    assert_eq!(index.count_studies(&Query::new(Level::Study).limit(1).offset(1)).await.unwrap(), 3, "paging is ignored");
    let mut q = Query::new(Level::Study);
    q.institution_codes = Some(vec!["HA".into()]);
    assert_eq!(uids(&index.query_studies(&q).await.unwrap()), vec!["9.0", "9.2"]);
    assert_eq!(index.count_studies(&q).await.unwrap(), 2);
    q.institutions = Some(vec![b.id.0]);
    assert!(index.query_studies(&q).await.unwrap().is_empty(), "a narrowing never widens the caller's scope");
    assert_eq!(index.count_studies(&q).await.unwrap(), 0);
}

async fn institution_scope_restricts_results(index: Arc<dyn Index>) {
    let a = institution(&index, "HA").await;
    let b = institution(&index, "HB").await;
    commit_one(&index, Sample::new(a.id, "P1", "8.1", "8.1.1", "8.1.1.1").build()).await.unwrap();
    commit_one(&index, Sample::new(b.id, "P1", "8.2", "8.2.1", "8.2.1.1").build()).await.unwrap();
    let mut q = Query::new(Level::Study);
    q.institutions = Some(vec![b.id.0]);
    assert_eq!(uids(&index.query_studies(&q).await.unwrap()), vec!["8.2"]);
    let mut q = Query::new(Level::Instance);
    q.institutions = Some(vec![a.id.0]);
    assert_eq!(index.query_instances(&q).await.unwrap()[0].sop_uid, "8.1.1.1");
    let mut q = Query::new(Level::Study);
    q.institutions = Some(vec![]);
    assert!(index.query_studies(&q).await.unwrap().is_empty());
}

async fn retrieval_order_and_metadata(index: Arc<dyn Index>) {
    let a = institution(&index, "HA").await;
    let mut batch = Vec::new();
    for (series, n) in [("9.1.2", 2), ("9.1.1", 1)] {
        for k in [3, 1, 2] {
            let mut s = Sample::new(a.id, "P1", "9.1", series, &format!("{series}.{k}"));
            s.series_number = n;
            s.instance_number = k;
            batch.push(s.build());
        }
    }
    for r in index.commit(&batch).await.unwrap() {
        r.unwrap();
    }
    let all = index.stored_instances(&Scope::study("9.1")).await.unwrap();
    assert_eq!(
        all.iter().map(|s| s.sop_uid.as_str()).collect::<Vec<_>>(),
        vec!["9.1.1.1", "9.1.1.2", "9.1.1.3", "9.1.2.1", "9.1.2.2", "9.1.2.3"]
    );
    assert_eq!(all[0].institution_id, a.id);
    let one = index.stored_instances(&Scope::instance("9.1", "9.1.2", "9.1.2.2")).await.unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].frames, r#"{"k":"native","offset":400,"frame_len":524288,"count":1}"#);
    let wrong_study = index.stored_instances(&Scope::instance("9.9", "9.1.2", "9.1.2.2")).await.unwrap();
    assert!(wrong_study.is_empty(), "the scope's study must match");
    let meta = index.metadata(&Scope::series("9.1", "9.1.1")).await.unwrap();
    assert_eq!(meta.len(), 3);
    assert!(meta[0].contains("9.1.1.1"));
    assert!(index.metadata(&Scope::series("9.1", "9.9.9")).await.unwrap().is_empty());
}

async fn counters_follow_ingest(index: Arc<dyn Index>) {
    let a = institution(&index, "HA").await;
    let mut s = Sample::new(a.id, "P1", "10.1", "10.1.1", "10.1.1.1");
    commit_one(&index, s.build()).await.unwrap();
    s.sop = "10.1.1.2".into();
    s.sha = format!("{:a>64}", "2");
    commit_one(&index, s.build()).await.unwrap();
    let counts = index.counts().await.unwrap();
    assert_eq!(counts.studies, 1);
    assert_eq!(counts.series, 1);
    assert_eq!(counts.instances, 2);
    assert_eq!(counts.bytes, 2000);
    assert_eq!(counts.institutions, 1);
    let rows = index.query_studies(&Query::new(Level::Study)).await.unwrap();
    assert_eq!(rows[0].num_instances, 2);
    assert_eq!(rows[0].size_bytes, 2000);
}

async fn application_entities_register_update_and_remove(index: Arc<dyn Index>) {
    let a = institution(&index, "HA").await;
    let b = institution(&index, "HB").await;
    let mut pacs = remote_ae(a.id, "  HA_PACS ");
    pacs.host = Some("10.1.2.3".into());
    pacs.port = Some(104);
    pacs.may_retrieve = true;
    pacs.description = "院内PACS".into();
    let first = index.upsert_application_entity(&pacs).await.unwrap();
    assert_eq!(first.ae_title, "HA_PACS", "stored without padding spaces");
    assert_eq!(first.institution_id, a.id);
    assert_eq!((first.host.as_deref(), first.port), (Some("10.1.2.3"), Some(104)));
    assert_eq!((first.may_store, first.may_query, first.may_retrieve), (true, false, true));
    assert_eq!(first.description, "院内PACS");
    assert!(first.created_at > 0 && first.updated_at == first.created_at);

    // Same title: an update of the same row, whatever the padding, even to another institution.
    let mut moved = remote_ae(b.id, "HA_PACS");
    moved.may_query = true;
    moved.description = "moved".into();
    let second = index.upsert_application_entity(&moved).await.unwrap();
    assert_eq!(second.id, first.id, "upsert by AE title keeps the id");
    assert_eq!(second.created_at, first.created_at, "creation time kept");
    assert!(second.updated_at >= first.updated_at);
    assert_eq!(second.institution_id, b.id);
    assert_eq!((second.host, second.port), (None, None), "an update replaces the address");
    assert_eq!((second.may_store, second.may_query, second.may_retrieve), (true, true, false));

    let found = index.application_entity("HA_PACS").await.unwrap().expect("registered");
    assert_eq!(found.id, first.id);
    assert_eq!(found.description, "moved");
    assert_eq!(index.application_entity("HA_PACS  ").await.unwrap().map(|e| e.id), Some(first.id));
    assert!(index.application_entity("ha_pacs").await.unwrap().is_none(), "AE titles are case-sensitive");
    assert!(index.application_entity("NOPE").await.unwrap().is_none());

    assert!(index.remove_application_entity("HA_PACS").await.unwrap());
    assert!(!index.remove_application_entity("HA_PACS").await.unwrap(), "already gone");
    assert!(index.application_entity("HA_PACS").await.unwrap().is_none());
    let left: Vec<String> = index.application_entities().await.unwrap().into_iter().map(|e| e.ae_title).collect();
    assert_eq!(left, vec!["HA_CT".to_string(), "HB_CT".to_string()], "the institutions' own titles remain");
}

async fn application_entities_list_in_title_order(index: Arc<dyn Index>) {
    let a = institution(&index, "HA").await;
    for title in ["ct1", "CT_1", "ZZ", "CT1", "A B", "AB"] {
        index.upsert_application_entity(&remote_ae(a.id, title)).await.unwrap();
    }
    let titles: Vec<String> = index.application_entities().await.unwrap().into_iter().map(|e| e.ae_title).collect();
    assert_eq!(titles, vec!["A B", "AB", "CT1", "CT_1", "HA_CT", "ZZ", "ct1"], "byte order on every engine");
}

async fn application_entity_refusals(index: Arc<dyn Index>) {
    let a = institution(&index, "HA").await;
    let before = index.application_entities().await.unwrap();
    let mut bad_port = remote_ae(a.id, "CT9");
    bad_port.port = Some(0);
    let mut blank_host = remote_ae(a.id, "CT9");
    blank_host.host = Some("  ".into());
    for (what, new) in [
        ("empty title", remote_ae(a.id, "   ")),
        ("17 characters", remote_ae(a.id, "ABCDEFGHIJKLMNOPQ")),
        ("backslash", remote_ae(a.id, "CT\\9")),
        ("control character", remote_ae(a.id, "CT\n9")),
        ("port 0", bad_port),
        ("blank host", blank_host),
    ] {
        let err = index.upsert_application_entity(&new).await;
        assert!(matches!(err, Err(IndexError::Invalid(_))), "{what}: {err:?}");
    }
    let err = index.upsert_application_entity(&remote_ae(InstitutionId(a.id.0 + 1000), "CT9")).await;
    assert!(matches!(err, Err(IndexError::NotFound(_))), "unknown institution: {err:?}");
    assert_eq!(index.application_entities().await.unwrap(), before, "nothing recorded");
}

async fn institution_ae_titles_join_the_registry(index: Arc<dyn Index>) {
    let a = institution(&index, "HA").await;
    let auto = index.application_entity("HA_CT").await.unwrap().expect("registered with its institution");
    assert_eq!(auto.institution_id, a.id);
    assert_eq!((auto.may_store, auto.may_query, auto.may_retrieve), (true, true, false));
    assert_eq!((auto.host, auto.port), (None, None));

    // Titles the registry already knows keep their registration.
    let b = institution(&index, "HB").await;
    let mut tuned = remote_ae(a.id, "HA_CT");
    tuned.may_retrieve = true;
    tuned.host = Some("ct.ha.example".into());
    tuned.port = Some(11112);
    let tuned = index.upsert_application_entity(&tuned).await.unwrap();
    let again = index
        .upsert_institution(&NewInstitution {
            code: "HA".into(),
            name_zh: "HA医院".into(),
            name_en: "HA Hospital".into(),
            patient_id_issuer: None,
            ae_titles: vec!["HA_CT".into(), " HA_MR ".into(), "HB_CT".into()],
        })
        .await
        .unwrap();
    assert_eq!(
        again.ae_titles,
        vec!["HA_CT".to_string(), " HA_MR ".to_string(), "HB_CT".to_string()],
        "column as given"
    );
    assert_eq!(index.application_entity("HA_CT").await.unwrap(), Some(tuned), "policy and address kept");
    assert_eq!(index.application_entity("HB_CT").await.unwrap().unwrap().institution_id, b.id, "not taken from HB");
    let mr = index.application_entity("HA_MR").await.unwrap().expect("new title registered, trimmed");
    assert_eq!(mr.institution_id, a.id);
    assert_eq!(index.institution_by_code("HA").await.unwrap().unwrap().ae_titles, again.ae_titles);

    // A title that cannot be an AE title is refused, and nothing changes.
    let err = index
        .upsert_institution(&NewInstitution {
            code: "HA".into(),
            name_zh: "改名".into(),
            name_en: "Renamed".into(),
            patient_id_issuer: None,
            ae_titles: vec!["OK".into(), "WAY_TOO_LONG_AE_TITLE".into()],
        })
        .await;
    assert!(matches!(err, Err(IndexError::Invalid(_))), "{err:?}");
    assert_eq!(index.institution_by_code("HA").await.unwrap().unwrap().name_zh, "HA医院");
    assert!(index.application_entity("OK").await.unwrap().is_none());
}

async fn forward_jobs_queue_claim_retry_and_complete(index: Arc<dyn Index>) {
    let inst = institution(&index, "H1").await;
    let s = Sample::new(inst.id, "P001", "9.1", "9.1.1", "9.1.1.1");
    let mut n = s.build();
    n.forward_to = vec!["CENTRE".into(), "AI".into()];
    assert!(matches!(commit_one(&index, n.clone()).await.unwrap(), CommitOutcome::Stored(_)));
    // An identical re-send queues nothing more.
    assert!(matches!(commit_one(&index, n).await.unwrap(), CommitOutcome::Duplicate(_)));
    let now = yunying_util::time::now_millis();
    let jobs = index.claim_forward_jobs(now, now + 60_000, 10).await.unwrap();
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    assert_eq!(jobs[0].sop_uid, "9.1.1.1");
    assert_eq!(jobs[0].blob_key, s.build().instance.blob_key);
    assert_eq!(jobs[0].attempts, 0);
    // Leased: nobody else gets them until the lease ends.
    assert!(index.claim_forward_jobs(now, now + 60_000, 10).await.unwrap().is_empty());
    assert_eq!(index.claim_forward_jobs(now + 60_001, now + 120_000, 10).await.unwrap().len(), 2);

    let (centre, ai) = if jobs[0].destination == "CENTRE" { (&jobs[0], &jobs[1]) } else { (&jobs[1], &jobs[0]) };
    index.complete_forward_job(centre.id).await.unwrap();
    index.fail_forward_job(ai.id, "connection refused", Some(now + 200_000)).await.unwrap();
    assert!(index.claim_forward_jobs(now + 150_000, now + 160_000, 10).await.unwrap().is_empty(), "retry not due yet");
    let again = index.claim_forward_jobs(now + 200_000, now + 260_000, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 1);
    let backlog = index.forward_backlog().await.unwrap();
    assert_eq!(backlog.len(), 1, "the sent job is gone: {backlog:?}");
    assert_eq!(backlog[0].destination, "AI");
    assert_eq!(backlog[0].pending, 1);
    assert_eq!(backlog[0].last_error.as_deref(), Some("connection refused"));
    // Refused by the receiver: kept as failed, never claimed again.
    index.fail_forward_job(again[0].id, "status 0xA900", None).await.unwrap();
    assert!(index.claim_forward_jobs(now + 999_999_999, now + 999_999_999, 10).await.unwrap().is_empty());
    let backlog = index.forward_backlog().await.unwrap();
    assert_eq!((backlog[0].pending, backlog[0].failed), (0, 1));
}

async fn derive_queue_claim_finish_and_request(index: Arc<dyn Index>) {
    let inst = institution(&index, "H1").await;
    let mut wanted = Vec::new();
    for (i, sop) in ["7.1.1.1", "7.1.1.2", "7.1.1.3"].iter().enumerate() {
        let mut s = Sample::new(inst.id, "P007", "7.1", "7.1.1", sop);
        s.instance_number = i as i64 + 1;
        let mut n = s.build();
        n.derive = true;
        commit_one(&index, n).await.unwrap();
        wanted.push(sop.to_string());
    }
    // Not wanted: another modality, never marked.
    let mut us = Sample::new(inst.id, "P007", "7.1", "7.1.2", "7.1.2.1");
    us.modality = "US".into();
    commit_one(&index, us.build()).await.unwrap();
    let b = index.derive_backlog().await.unwrap();
    assert_eq!((b.wanted, b.made, b.failed), (3, 0, 0), "{b:?}");
    assert!(b.oldest_wanted_at.is_some());

    let now = yunying_util::time::now_millis() + 1000;
    let tasks = index.claim_derive(now, now + 60_000, 2).await.unwrap();
    assert_eq!(tasks.len(), 2, "{tasks:?}");
    assert_eq!(tasks[0].instance.sop_uid, "7.1.1.1");
    assert_eq!(tasks[0].instance.series_uid, "7.1.1");
    assert_eq!(tasks[0].attempts, 0);
    // Leased: the next claim gets only the third.
    let rest = index.claim_derive(now, now + 60_000, 10).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].instance.sop_uid, "7.1.1.3");
    assert!(index.claim_derive(now, now + 60_000, 10).await.unwrap().is_empty());

    index.finish_derive(tasks[0].id, &DeriveOutcome::Made).await.unwrap();
    index
        .finish_derive(tasks[1].id, &DeriveOutcome::Failed { error: "decoder said no".into(), retry_at: Some(now + 5_000) })
        .await
        .unwrap();
    index.finish_derive(rest[0].id, &DeriveOutcome::NotApplicable).await.unwrap();
    let b = index.derive_backlog().await.unwrap();
    assert_eq!((b.wanted, b.made, b.failed), (1, 1, 0), "{b:?}");
    assert_eq!(b.last_error.as_deref(), Some("decoder said no"));
    assert!(index.claim_derive(now + 4_000, now + 60_000, 10).await.unwrap().is_empty(), "retry not due");
    let again = index.claim_derive(now + 5_000, now + 60_000, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 1);
    index.finish_derive(again[0].id, &DeriveOutcome::Failed { error: "still no".into(), retry_at: None }).await.unwrap();
    assert!(index.claim_derive(now + 999_999_999, now + 999_999_999, 10).await.unwrap().is_empty());
    let b = index.derive_backlog().await.unwrap();
    assert_eq!((b.wanted, b.made, b.failed), (0, 1, 1), "{b:?}");

    // A rebuild marks every current instance of the modalities in scope again.
    let n = index.request_derive(None, &["CT".into()], now).await.unwrap();
    assert_eq!(n, 3);
    assert_eq!(index.derive_backlog().await.unwrap().wanted, 3);
    let n = index.request_derive(Some(&Scope::instance("7.1", "7.1.1", "7.1.1.2")), &["CT".into()], now).await.unwrap();
    assert_eq!(n, 1);
    let n = index.request_derive(Some(&Scope::study("7.1")), &["US".into(), "CT".into()], now).await.unwrap();
    assert_eq!(n, 4);
    assert_eq!(index.request_derive(Some(&Scope::study("7.1")), &[], now).await.unwrap(), 0);
    let all = index.claim_derive(now + 1, now + 60_000, 10).await.unwrap();
    assert_eq!(all.len(), 4);
    assert!(all.iter().all(|t| t.attempts == 0));
}

// --- the directory (migration 5) ------------------------------------------

async fn regional_institutions_are_marked_and_listed(index: Arc<dyn Index>) {
    let a = institution(&index, "HA").await;
    let b = institution(&index, "HB").await;
    let c = institution(&index, "HC").await;
    assert!(index.regional_institutions().await.unwrap().is_empty(), "none regional at first");
    index.set_institution_regional(c.id, true).await.unwrap();
    index.set_institution_regional(b.id, true).await.unwrap();
    index.set_institution_regional(b.id, true).await.unwrap();
    assert_eq!(index.regional_institutions().await.unwrap(), vec![b.id, c.id], "in id order, once each");
    index.set_institution_regional(b.id, false).await.unwrap();
    assert_eq!(index.regional_institutions().await.unwrap(), vec![c.id]);
    let err = index.set_institution_regional(InstitutionId(a.id.0 + c.id.0 + 1000), true).await;
    assert!(matches!(err, Err(IndexError::NotFound(_))), "unknown institution: {err:?}");
    assert_eq!(index.regional_institutions().await.unwrap(), vec![c.id]);
}

fn new_user(username: &str, institution: Option<InstitutionId>) -> NewUser {
    NewUser {
        username: username.into(),
        display_name: format!("{username} 医生"),
        institution_id: institution,
        roles: vec!["radiologist".into()],
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1${username}$hash"),
        must_change_password: false,
        phone: None,
        phone_index: None,
    }
}

/// Lets the millisecond clock move on, so that "set to now" is visible.
async fn tick() {
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
}

async fn users_create_look_up_and_list(index: Arc<dyn Index>) {
    let a = institution(&index, "HA").await;
    let zhang = index.create_user(&new_user("zhang", Some(a.id))).await.unwrap();
    assert_eq!(zhang.username, "zhang");
    assert_eq!(zhang.display_name, "zhang 医生");
    assert_eq!(zhang.institution_id, Some(a.id));
    assert_eq!(zhang.roles, vec!["radiologist".to_string()]);
    assert_eq!(zhang.password_hash, new_user("zhang", None).password_hash);
    assert!(zhang.created_at > 0);
    assert_eq!(zhang.password_changed_at, zhang.created_at, "the password is set at creation");
    assert_eq!(zhang.updated_at, zhang.created_at);
    assert!(!zhang.must_change_password && !zhang.disabled && !zhang.totp_enabled);
    assert_eq!((zhang.totp_secret.as_deref(), zhang.failed_logins, zhang.locked_until), (None, 0, None));
    assert_eq!((zhang.phone.as_deref(), zhang.phone_index.as_deref(), zhang.last_login_at), (None, None, None));

    let mut staff = new_user("admin", None);
    staff.roles = vec!["system_admin".into(), "security_admin".into()];
    staff.must_change_password = true;
    staff.phone = Some("ct:phone".into());
    staff.phone_index = Some("bi:phone".into());
    let admin = index.create_user(&staff).await.unwrap();
    assert_ne!(admin.id, zhang.id);
    assert_eq!(admin.institution_id, None, "platform staff belong to no institution");
    assert_eq!(admin.roles, staff.roles, "roles kept in order");
    assert!(admin.must_change_password);
    assert_eq!((admin.phone.as_deref(), admin.phone_index.as_deref()), (Some("ct:phone"), Some("bi:phone")));

    assert_eq!(index.user_by_username("zhang").await.unwrap(), Some(zhang.clone()));
    assert_eq!(index.user_by_id(admin.id).await.unwrap(), Some(admin.clone()));
    assert!(index.user_by_username("nobody").await.unwrap().is_none());
    assert!(index.user_by_id(admin.id + zhang.id + 1000).await.unwrap().is_none());
    let all: Vec<String> = index.users().await.unwrap().into_iter().map(|u| u.username).collect();
    assert_eq!(all, vec!["admin".to_string(), "zhang".to_string()], "by username");
}

async fn user_taken_username_is_a_conflict(index: Arc<dyn Index>) {
    let first = index.create_user(&new_user("li", None)).await.unwrap();
    let mut again = new_user("li", None);
    again.display_name = "another Li".into();
    let err = index.create_user(&again).await;
    assert!(matches!(err, Err(IndexError::Conflict(_))), "{err:?}");
    let all = index.users().await.unwrap();
    assert_eq!(all, vec![first], "the first user is untouched and alone");
}

async fn user_changes_apply_field_by_field(index: Arc<dyn Index>) {
    let a = institution(&index, "HA").await;
    let b = institution(&index, "HB").await;
    let u = index.create_user(&new_user("wang", Some(a.id))).await.unwrap();
    tick().await;

    let roles = index
        .change_user(u.id, &UserChange { roles: Some(vec!["technologist".into(), "referrer".into()]), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(roles.roles, vec!["technologist".to_string(), "referrer".to_string()]);
    assert_eq!(roles.password_hash, u.password_hash, "untouched fields kept");
    assert_eq!(roles.password_changed_at, u.password_changed_at, "no new password, no new password date");
    assert_eq!((roles.display_name.as_str(), roles.institution_id), (u.display_name.as_str(), Some(a.id)));
    assert!(roles.updated_at > u.updated_at, "updated_at moves");
    tick().await;

    let pw = index
        .change_user(u.id, &UserChange { password_hash: Some("$argon2id$new".into()), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(pw.password_hash, "$argon2id$new");
    assert!(pw.password_changed_at > u.password_changed_at, "a new password restarts the expiry clock");
    assert_eq!(pw.roles, roles.roles);

    let moved = index
        .change_user(
            u.id,
            &UserChange {
                display_name: Some("王五".into()),
                institution_id: Some(Some(b.id)),
                must_change_password: Some(true),
                phone: Some(Some(("ct:p".into(), "bi:p".into()))),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((moved.display_name.as_str(), moved.institution_id), ("王五", Some(b.id)));
    assert!(moved.must_change_password);
    assert_eq!((moved.phone.as_deref(), moved.phone_index.as_deref()), (Some("ct:p"), Some("bi:p")));
    assert_eq!(moved.password_changed_at, pw.password_changed_at);
    let staff = index
        .change_user(u.id, &UserChange { institution_id: Some(None), phone: Some(None), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(staff.institution_id, None);
    assert_eq!((staff.phone, staff.phone_index), (None, None));

    let totp = index
        .change_user(u.id, &UserChange { totp: Some(Some(("ct:totp".into(), true))), ..Default::default() })
        .await
        .unwrap();
    assert_eq!((totp.totp_secret.as_deref(), totp.totp_enabled), (Some("ct:totp"), true));
    let pending = index
        .change_user(u.id, &UserChange { totp: Some(Some(("ct:totp2".into(), false))), ..Default::default() })
        .await
        .unwrap();
    assert_eq!((pending.totp_secret.as_deref(), pending.totp_enabled), (Some("ct:totp2"), false));
    let removed = index.change_user(u.id, &UserChange { totp: Some(None), ..Default::default() }).await.unwrap();
    assert_eq!((removed.totp_secret, removed.totp_enabled), (None, false));

    let disabled = index.change_user(u.id, &UserChange { disabled: Some(true), ..Default::default() }).await.unwrap();
    assert!(disabled.disabled);
    assert!(index.user_by_id(u.id).await.unwrap().unwrap().disabled, "stored");
    let enabled = index.change_user(u.id, &UserChange { disabled: Some(false), ..Default::default() }).await.unwrap();
    assert!(!enabled.disabled);

    let same = index.change_user(u.id, &UserChange::default()).await.unwrap();
    assert_eq!(User { updated_at: enabled.updated_at, ..same.clone() }, enabled, "an empty change changes nothing else");
    assert_eq!(index.user_by_id(u.id).await.unwrap(), Some(same));

    let err = index.change_user(u.id + 1000, &UserChange { disabled: Some(true), ..Default::default() }).await;
    assert!(matches!(err, Err(IndexError::NotFound(_))), "{err:?}");
}

async fn user_unlock_clears_failures_and_lock(index: Arc<dyn Index>) {
    let u = index.create_user(&new_user("zhao", None)).await.unwrap();
    for _ in 0..3 {
        index.record_login_failure(u.id, 3, 9_000_000).await.unwrap();
    }
    let locked = index.user_by_id(u.id).await.unwrap().unwrap();
    assert_eq!((locked.failed_logins, locked.locked_until), (3, Some(9_000_000)));
    let other = index.change_user(u.id, &UserChange { display_name: Some("x".into()), ..Default::default() }).await.unwrap();
    assert_eq!((other.failed_logins, other.locked_until), (3, Some(9_000_000)), "unlock: false leaves the lock");
    let unlocked = index.change_user(u.id, &UserChange { unlock: true, ..Default::default() }).await.unwrap();
    assert_eq!((unlocked.failed_logins, unlocked.locked_until), (0, None));
    assert_eq!(unlocked.display_name, "x");
}

async fn login_failures_count_to_the_lock(index: Arc<dyn Index>) {
    let u = index.create_user(&new_user("sun", None)).await.unwrap();
    let lock = 1_700_000_900_000;
    let one = index.record_login_failure(u.id, 3, lock).await.unwrap();
    assert_eq!((one.id, one.failed_logins, one.locked_until), (u.id, 1, None), "returns the user as it is now");
    let two = index.record_login_failure(u.id, 3, lock).await.unwrap();
    assert_eq!((two.failed_logins, two.locked_until), (2, None), "below the max: not locked");
    let three = index.record_login_failure(u.id, 3, lock).await.unwrap();
    assert_eq!((three.failed_logins, three.locked_until), (3, Some(lock)), "locked at the max, until the given instant");
    assert_eq!(index.user_by_id(u.id).await.unwrap().unwrap().locked_until, Some(lock), "stored");

    index.record_login_success(u.id, 1_700_001_000_000).await.unwrap();
    let ok = index.user_by_id(u.id).await.unwrap().unwrap();
    assert_eq!((ok.failed_logins, ok.locked_until), (0, None), "a success clears the counter and the lock");
    assert_eq!(ok.last_login_at, Some(1_700_001_000_000));
    let again = index.record_login_failure(u.id, 3, lock + 1).await.unwrap();
    assert_eq!((again.failed_logins, again.locked_until), (1, None), "counting starts over");

    let err = index.record_login_failure(u.id + 1000, 3, lock).await;
    assert!(matches!(err, Err(IndexError::NotFound(_))), "{err:?}");
}

async fn login_failures_count_atomically(index: Arc<dyn Index>) {
    let u = index.create_user(&new_user("zhou", None)).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let index = index.clone();
            tokio::spawn(async move { index.record_login_failure(u.id, 5, 42).await.unwrap() })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let after = index.user_by_id(u.id).await.unwrap().unwrap();
    assert_eq!(after.failed_logins, 8, "no failure lost to a race");
    assert_eq!(after.locked_until, Some(42));
}

async fn totp_steps_are_never_replayed(index: Arc<dyn Index>) {
    let u = index.create_user(&new_user("wu", None)).await.unwrap();
    let v = index.create_user(&new_user("zheng", None)).await.unwrap();
    let step = 56_666_667;
    assert!(index.use_totp_step(u.id, step).await.unwrap(), "a fresh step");
    assert!(!index.use_totp_step(u.id, step).await.unwrap(), "the same step again is a replay");
    assert!(!index.use_totp_step(u.id, step - 1).await.unwrap(), "an earlier step is a replay");
    assert!(index.use_totp_step(v.id, step).await.unwrap(), "steps are per user");
    assert!(index.use_totp_step(u.id, step + 2).await.unwrap(), "a later step");
    assert!(!index.use_totp_step(u.id, step + 1).await.unwrap(), "older than the last used one");
    assert!(!index.use_totp_step(u.id, step + 2).await.unwrap());
}

fn session_of(id_hash: &str, user_id: i64) -> Session {
    Session {
        id_hash: id_hash.into(),
        user_id,
        csrf_hash: format!("csrf-{id_hash}"),
        second_factor: true,
        created_at: 1_000,
        last_seen_at: 1_000,
        expires_at: 100_000,
        source: "10.0.0.7".into(),
        user_agent: "Mozilla/5.0".into(),
    }
}

async fn sessions_live_touch_forward_and_end(index: Arc<dyn Index>) {
    let u = index.create_user(&new_user("qian", None)).await.unwrap();
    let v = index.create_user(&new_user("feng", None)).await.unwrap();
    let s1 = session_of("h1", u.id);
    let mut s2 = session_of("h2", u.id);
    s2.second_factor = false;
    let s3 = session_of("h3", v.id);
    for s in [&s1, &s2, &s3] {
        index.create_session(s).await.unwrap();
    }
    assert_eq!(index.session("h1").await.unwrap(), Some(s1.clone()), "stored as given");
    assert_eq!(index.session("h2").await.unwrap(), Some(s2.clone()));
    assert!(index.session("nope").await.unwrap().is_none());

    index.touch_session("h1", 2_000).await.unwrap();
    assert_eq!(index.session("h1").await.unwrap().unwrap().last_seen_at, 2_000);
    index.touch_session("h1", 1_500).await.unwrap();
    let s = index.session("h1").await.unwrap().unwrap();
    assert_eq!(s.last_seen_at, 2_000, "activity never moves back");
    assert_eq!(Session { last_seen_at: 1_000, ..s }, s1, "touching changes nothing else");
    index.touch_session("nope", 2_000).await.unwrap();

    index.end_session("h1").await.unwrap();
    assert!(index.session("h1").await.unwrap().is_none());
    index.end_session("h1").await.unwrap();
    assert_eq!(index.end_user_sessions(u.id).await.unwrap(), 1, "h2 was left");
    assert!(index.session("h2").await.unwrap().is_none());
    assert_eq!(index.session("h3").await.unwrap(), Some(s3), "another user's session stays");
    assert_eq!(index.end_user_sessions(u.id).await.unwrap(), 0);
}

fn new_credential(kind: CredentialKind, public_id: &str, parent_id: Option<i64>) -> NewCredential {
    NewCredential {
        kind,
        public_id: public_id.into(),
        secret_hash: format!("sha256:{public_id}"),
        name: format!("{public_id} name"),
        institution_id: None,
        actions: vec!["store".into(), "query".into()],
        parent_id,
        expires_at: None,
        created_by: "admin".into(),
    }
}

async fn credentials_create_look_up_and_list(index: Arc<dyn Index>) {
    let a = institution(&index, "HA").await;
    let mut nc = new_credential(CredentialKind::Client, "svc-pacs", None);
    nc.institution_id = Some(a.id);
    let client = index.create_credential(&nc).await.unwrap();
    assert_eq!(client.kind, CredentialKind::Client);
    assert_eq!((client.public_id.as_str(), client.secret_hash.as_str()), ("svc-pacs", "sha256:svc-pacs"));
    assert_eq!((client.name.as_str(), client.created_by.as_str()), ("svc-pacs name", "admin"));
    assert_eq!(client.institution_id, Some(a.id));
    assert_eq!(client.actions, vec!["store".to_string(), "query".to_string()]);
    assert_eq!((client.parent_id, client.expires_at, client.revoked_at, client.last_used_at), (None, None, None, None));
    assert!(client.created_at > 0);

    let mut nt = new_credential(CredentialKind::Token, "yy_ab12", None);
    nt.expires_at = Some(1_900_000_000_000);
    nt.actions = vec!["read".into()];
    let token = index.create_credential(&nt).await.unwrap();
    assert_eq!((token.kind, token.institution_id, token.expires_at), (CredentialKind::Token, None, Some(1_900_000_000_000)));
    let mut na = new_credential(CredentialKind::Access, "at-1", Some(client.id));
    na.expires_at = Some(1_000);
    let access = index.create_credential(&na).await.unwrap();
    assert_eq!((access.kind, access.parent_id), (CredentialKind::Access, Some(client.id)));

    assert_eq!(index.credential_by_secret("sha256:yy_ab12").await.unwrap(), Some(token.clone()));
    assert_eq!(index.credential_by_secret("sha256:at-1").await.unwrap(), Some(access.clone()), "expired ones too");
    assert_eq!(index.credential_by_public_id("svc-pacs").await.unwrap(), Some(client.clone()));
    assert!(index.credential_by_secret("sha256:none").await.unwrap().is_none());
    assert!(index.credential_by_public_id("none").await.unwrap().is_none());
    assert!(index.credential_by_public_id("sha256:svc-pacs").await.unwrap().is_none(), "public id, not secret");

    let listed = index.credentials().await.unwrap();
    assert_eq!(listed, vec![token.clone(), client.clone()], "tokens and clients newest first, no access tokens");

    index.touch_credential(client.id, 5_000).await.unwrap();
    let used = index.credential_by_public_id("svc-pacs").await.unwrap().unwrap();
    assert_eq!(used.last_used_at, Some(5_000));
    assert_eq!(Credential { last_used_at: None, ..used }, client, "touching changes nothing else");
}

async fn credential_public_id_taken_is_a_conflict(index: Arc<dyn Index>) {
    let first = index.create_credential(&new_credential(CredentialKind::Client, "svc-ai", None)).await.unwrap();
    let mut again = new_credential(CredentialKind::Token, "svc-ai", None);
    again.secret_hash = "sha256:another".into();
    let err = index.create_credential(&again).await;
    assert!(matches!(err, Err(IndexError::Conflict(_))), "{err:?}");
    assert_eq!(index.credentials().await.unwrap(), vec![first]);
    assert!(index.credential_by_secret("sha256:another").await.unwrap().is_none(), "nothing recorded");
}

async fn revoking_a_credential_revokes_what_it_issued(index: Arc<dyn Index>) {
    let client = index.create_credential(&new_credential(CredentialKind::Client, "svc", None)).await.unwrap();
    let other = index.create_credential(&new_credential(CredentialKind::Client, "svc2", None)).await.unwrap();
    let a1 = index.create_credential(&new_credential(CredentialKind::Access, "a1", Some(client.id))).await.unwrap();
    let a2 = index.create_credential(&new_credential(CredentialKind::Access, "a2", Some(client.id))).await.unwrap();
    let early = index.create_credential(&new_credential(CredentialKind::Access, "a3", Some(client.id))).await.unwrap();
    let b1 = index.create_credential(&new_credential(CredentialKind::Access, "b1", Some(other.id))).await.unwrap();

    assert!(index.revoke_credential(early.id, 6_000).await.unwrap());
    assert!(index.revoke_credential(client.id, 7_000).await.unwrap());
    let revoked_at = |public_id: &'static str| {
        let index = index.clone();
        async move { index.credential_by_public_id(public_id).await.unwrap().unwrap().revoked_at }
    };
    assert_eq!(revoked_at("svc").await, Some(7_000));
    assert_eq!(revoked_at("a1").await, Some(7_000), "issued from it: revoked with it");
    assert_eq!(revoked_at("a2").await, Some(7_000));
    assert_eq!(revoked_at("a3").await, Some(6_000), "already revoked: its instant kept");
    assert_eq!(revoked_at("svc2").await, None, "another client untouched");
    assert_eq!(revoked_at("b1").await, None, "another client's tokens untouched");
    assert_eq!(index.credential_by_secret(&a1.secret_hash).await.unwrap().unwrap().revoked_at, Some(7_000), "revoked ones are still found");

    assert!(!index.revoke_credential(client.id, 8_000).await.unwrap(), "already revoked");
    assert_eq!(revoked_at("svc").await, Some(7_000), "the first revocation's instant kept");
    assert!(!index.revoke_credential(a2.id, 8_000).await.unwrap(), "revoked through its client");
    assert!(!index.revoke_credential(b1.id + 1000, 8_000).await.unwrap(), "unknown");
}

fn new_grant(study: &str, user_id: Option<i64>, institution_id: Option<InstitutionId>, expires_at: Option<i64>) -> NewGrant {
    NewGrant {
        study_uid: study.into(),
        kind: "consultation".into(),
        user_id,
        institution_id,
        expires_at,
        reason: "会诊".into(),
        created_by: "doctor".into(),
    }
}

fn grant_ids(grants: &[Grant]) -> Vec<i64> {
    let mut ids: Vec<i64> = grants.iter().map(|g| g.id).collect();
    ids.sort();
    ids
}

async fn grants_active_until_expired_or_revoked(index: Arc<dyn Index>) {
    let a = institution(&index, "HA").await;
    let b = institution(&index, "HB").await;
    let u = index.create_user(&new_user("chen", Some(b.id))).await.unwrap();
    let v = index.create_user(&new_user("chu", Some(b.id))).await.unwrap();
    let study = "1.2.156.1";
    let forever = index.create_grant(&new_grant(study, Some(u.id), None, None)).await.unwrap();
    assert_eq!((forever.study_uid.as_str(), forever.kind.as_str()), (study, "consultation"));
    assert_eq!((forever.user_id, forever.institution_id, forever.expires_at), (Some(u.id), None, None));
    assert_eq!((forever.reason.as_str(), forever.created_by.as_str()), ("会诊", "doctor"));
    assert!(forever.created_at > 0);
    assert_eq!(forever.revoked_at, None);
    let expiring = index.create_grant(&new_grant(study, Some(u.id), None, Some(5_000))).await.unwrap();
    let to_revoke = index.create_grant(&new_grant("1.2.156.2", Some(u.id), None, None)).await.unwrap();
    let to_b = index.create_grant(&new_grant(study, None, Some(b.id), None)).await.unwrap();
    assert_eq!((to_b.user_id, to_b.institution_id), (None, Some(b.id)));
    let to_v = index.create_grant(&new_grant(study, Some(v.id), None, None)).await.unwrap();
    let to_a = index.create_grant(&new_grant("1.2.156.2", None, Some(a.id), Some(5_000))).await.unwrap();

    let active = |user: Option<i64>, inst: Option<InstitutionId>, now: i64| {
        let index = index.clone();
        async move { grant_ids(&index.active_grants(user, inst, now).await.unwrap()) }
    };
    assert_eq!(active(Some(u.id), None, 4_999).await, vec![forever.id, expiring.id, to_revoke.id]);
    assert_eq!(active(Some(u.id), None, 5_000).await, vec![forever.id, to_revoke.id], "expired at its expiry instant");
    assert_eq!(active(None, Some(b.id), 1).await, vec![to_b.id], "an institution's grants only");
    assert_eq!(active(Some(u.id), Some(b.id), 1).await, vec![forever.id, expiring.id, to_revoke.id, to_b.id], "the user's and the institution's");
    assert_eq!(active(Some(v.id), Some(a.id), 6_000).await, vec![to_v.id]);
    assert!(active(None, None, 1).await.is_empty(), "no grantee, no grants");

    assert!(index.revoke_grant(to_revoke.id, 3_000).await.unwrap());
    assert!(!index.revoke_grant(to_revoke.id, 3_500).await.unwrap(), "already revoked");
    assert!(!index.revoke_grant(to_a.id + 1000, 3_500).await.unwrap(), "unknown");
    assert_eq!(active(Some(u.id), None, 1).await, vec![forever.id, expiring.id], "revoked grants are not active");

    let on_study: Vec<i64> = index.study_grants(study).await.unwrap().iter().map(|g| g.id).collect();
    assert_eq!(on_study, vec![to_v.id, to_b.id, expiring.id, forever.id], "every grant on the study, newest first");
    let other = index.study_grants("1.2.156.2").await.unwrap();
    assert_eq!(other.iter().map(|g| g.id).collect::<Vec<_>>(), vec![to_a.id, to_revoke.id]);
    assert_eq!(other[1].revoked_at, Some(3_000), "revoked grants listed with their revocation");
    assert!(index.study_grants("9.9").await.unwrap().is_empty());
}

async fn grant_needs_exactly_one_grantee(index: Arc<dyn Index>) {
    let a = institution(&index, "HA").await;
    let u = index.create_user(&new_user("he", Some(a.id))).await.unwrap();
    let both = index.create_grant(&new_grant("1.2.3", Some(u.id), Some(a.id), None)).await;
    assert!(matches!(both, Err(IndexError::Invalid(_))), "both: {both:?}");
    let none = index.create_grant(&new_grant("1.2.3", None, None, None)).await;
    assert!(matches!(none, Err(IndexError::Invalid(_))), "none: {none:?}");
    assert!(index.study_grants("1.2.3").await.unwrap().is_empty(), "nothing recorded");
}

fn secret(kind: &str, ciphertext: &str, blind_index: &str) -> PatientSecret {
    PatientSecret { kind: kind.into(), ciphertext: ciphertext.into(), blind_index: blind_index.into() }
}

async fn patient_secrets_recorded_once_per_value(index: Arc<dyn Index>) {
    let a = institution(&index, "HA").await;
    let b = institution(&index, "HB").await;
    let with = |s: Sample, secrets: Vec<PatientSecret>| {
        let mut n = s.build();
        n.patient_secrets = secrets;
        n
    };
    let id_card = secret("national_id", "ct:v1:id", "bi:v1:id");
    let phone = secret("phone", "ct:v1:phone", "bi:v1:phone");
    commit_one(&index, with(Sample::new(a.id, "P1", "11.1", "11.1.1", "11.1.1.1"), vec![id_card.clone(), phone.clone()]))
        .await
        .unwrap();
    // The same value again (another ciphertext of it, same blind index): one row, the first kept;
    // twice in one batch too.
    let again = secret("national_id", "ct:v1:id-again", "bi:v1:id");
    let out = index
        .commit(&[
            with(Sample::new(a.id, "P1", "11.1", "11.1.1", "11.1.1.2"), vec![again.clone()]),
            with(Sample::new(a.id, "P1", "11.2", "11.2.1", "11.2.1.1"), vec![again.clone(), phone.clone()]),
        ])
        .await
        .unwrap();
    for r in out {
        r.unwrap();
    }
    // Another patient with the same national ID (another institution's record), and one without secrets.
    commit_one(&index, with(Sample::new(b.id, "Q7", "11.3", "11.3.1", "11.3.1.1"), vec![id_card.clone()])).await.unwrap();
    commit_one(&index, Sample::new(a.id, "P2", "11.4", "11.4.1", "11.4.1.1").build()).await.unwrap();

    let by_phone = index.patients_by_secret("phone", "bi:v1:phone").await.unwrap();
    assert_eq!(by_phone.len(), 1, "{by_phone:?}");
    let p1 = by_phone[0];
    assert_eq!(index.patient_secrets(p1).await.unwrap(), vec![id_card.clone(), phone.clone()], "one row per kind and value");
    let by_id = index.patients_by_secret("national_id", "bi:v1:id").await.unwrap();
    assert_eq!(by_id.len(), 2, "both master patients: {by_id:?}");
    assert!(by_id.contains(&p1));
    let q7 = *by_id.iter().find(|&&p| p != p1).unwrap();
    assert_eq!(index.patient_secrets(q7).await.unwrap(), vec![id_card]);
    assert!(index.patients_by_secret("phone", "bi:v1:id").await.unwrap().is_empty(), "the kind must match");
    assert!(index.patients_by_secret("national_id", "bi:none").await.unwrap().is_empty());
    assert!(index.patient_secrets(p1 + q7 + 1000).await.unwrap().is_empty());
    assert_eq!(index.secrets_page(0, 100).await.unwrap().len(), 3, "three rows in all");
}

async fn patient_secrets_page_and_rewrite(index: Arc<dyn Index>) {
    let a = institution(&index, "HA").await;
    for (k, pid) in ["P1", "P2", "P3"].into_iter().enumerate() {
        let mut n = Sample::new(a.id, pid, &format!("12.{k}"), &format!("12.{k}.1"), &format!("12.{k}.1.1")).build();
        n.patient_secrets = vec![
            secret("national_id", &format!("ct:old:id{k}"), &format!("bi:old:id{k}")),
            secret("address", &format!("ct:old:addr{k}"), &format!("bi:old:addr{k}")),
        ];
        commit_one(&index, n).await.unwrap();
    }
    let first = index.secrets_page(0, 4).await.unwrap();
    assert_eq!(first.len(), 4);
    assert!(first.windows(2).all(|w| w[0].0 < w[1].0), "in id order");
    let rest = index.secrets_page(first[3].0, 4).await.unwrap();
    assert_eq!(rest.len(), 2);
    assert!(rest[0].0 > first[3].0);
    assert!(index.secrets_page(rest[1].0, 4).await.unwrap().is_empty(), "the end");
    let all: Vec<(i64, PatientSecret)> = first.into_iter().chain(rest).collect();
    let mut kinds: Vec<String> = all.iter().map(|(_, s)| s.blind_index.clone()).collect();
    kinds.sort();
    assert_eq!(kinds, vec!["bi:old:addr0", "bi:old:addr1", "bi:old:addr2", "bi:old:id0", "bi:old:id1", "bi:old:id2"]);

    let (row, target) = all.iter().find(|(_, s)| s.blind_index == "bi:old:id1").unwrap().clone();
    let patient = index.patients_by_secret("national_id", "bi:old:id1").await.unwrap();
    assert_eq!(patient.len(), 1);
    index.rewrite_secret(row, "ct:new:id1", "bi:new:id1").await.unwrap();
    assert!(index.patients_by_secret("national_id", "bi:old:id1").await.unwrap().is_empty(), "the old index is gone");
    assert_eq!(index.patients_by_secret("national_id", "bi:new:id1").await.unwrap(), patient, "the same master patient");
    let held = index.patient_secrets(patient[0]).await.unwrap();
    assert!(held.contains(&secret(&target.kind, "ct:new:id1", "bi:new:id1")), "{held:?}");
    assert!(held.contains(&secret("address", "ct:old:addr1", "bi:old:addr1")), "the other secret untouched");
    let reread = index.secrets_page(row - 1, 1).await.unwrap();
    assert_eq!(reread, vec![(row, secret("national_id", "ct:new:id1", "bi:new:id1"))], "same row id");
}

// --- the audit trail ------------------------------------------------------

#[allow(clippy::too_many_arguments)]
fn audit_row(chain: &str, seq: i64, at: i64, action: &str, outcome: &str, actor: &str, patient: Option<&str>, studies: &str) -> AuditRow {
    AuditRow {
        chain: chain.into(),
        seq,
        at,
        action: action.into(),
        outcome: outcome.into(),
        actor_id: actor.into(),
        patient_id: patient.map(str::to_string),
        studies: studies.into(),
        event: format!(r#"{{"action":"{action}","actor":"{actor}","seq":{seq}}}"#),
        key_id: "audit-k1".into(),
        prev_mac: format!("mac:{chain}:{}", seq - 1),
        mac: format!("mac:{chain}:{seq}"),
    }
}

fn simple_row(chain: &str, seq: i64) -> AuditRow {
    audit_row(chain, seq, 1_000 + seq, "login", "success", "u1", None, "")
}

fn anchor_at(chain: &str, seq: i64) -> AuditAnchor {
    AuditAnchor {
        chain: chain.into(),
        seq,
        mac: format!("mac:{chain}:{seq}"),
        key_id: "audit-k1".into(),
        anchor_mac: format!("anchor:{chain}:{seq}"),
    }
}

async fn audit_append_moves_the_anchor(index: Arc<dyn Index>) {
    assert!(index.audit_anchors().await.unwrap().is_empty());
    assert!(index.audit_last("node-a").await.unwrap().is_none());
    let rows = vec![simple_row("node-a", 1), simple_row("node-a", 2), simple_row("node-a", 3)];
    index.append_audit(&rows, &anchor_at("node-a", 3)).await.unwrap();
    assert_eq!(index.audit_last("node-a").await.unwrap(), Some(rows[2].clone()), "stored as given");
    assert_eq!(index.audit_anchors().await.unwrap(), vec![anchor_at("node-a", 3)]);

    index.append_audit(&[simple_row("node-b", 1)], &anchor_at("node-b", 1)).await.unwrap();
    index.append_audit(&[simple_row("node-a", 4)], &anchor_at("node-a", 4)).await.unwrap();
    assert_eq!(index.audit_last("node-a").await.unwrap().unwrap().seq, 4);
    assert_eq!(index.audit_last("node-b").await.unwrap().unwrap().seq, 1);
    assert_eq!(index.audit_anchors().await.unwrap(), vec![anchor_at("node-a", 4), anchor_at("node-b", 1)], "one per chain, by chain");
    assert!(index.audit_last("node-c").await.unwrap().is_none());

    // An empty batch only moves the anchor (re-sealing it, say under a new key).
    let mut resealed = anchor_at("node-b", 1);
    resealed.key_id = "audit-k2".into();
    resealed.anchor_mac = "anchor:resealed".into();
    index.append_audit(&[], &resealed).await.unwrap();
    assert_eq!(index.audit_anchors().await.unwrap()[1], resealed);
    assert_eq!(index.audit_chain("node-b", 0, 10).await.unwrap().len(), 1);
}

async fn audit_chain_pages_in_seq_order(index: Arc<dyn Index>) {
    let chain: Vec<AuditRow> = (1..=5).map(|s| simple_row("c1", s)).collect();
    index.append_audit(&chain[..3], &anchor_at("c1", 3)).await.unwrap();
    index.append_audit(&[simple_row("c2", 1), simple_row("c2", 2)], &anchor_at("c2", 2)).await.unwrap();
    // Sealed out of order in the batch, read back in seq order.
    index.append_audit(&[chain[4].clone(), chain[3].clone()], &anchor_at("c1", 5)).await.unwrap();
    assert_eq!(index.audit_chain("c1", 0, 2).await.unwrap(), chain[..2].to_vec());
    assert_eq!(index.audit_chain("c1", 2, 2).await.unwrap(), chain[2..4].to_vec());
    assert_eq!(index.audit_chain("c1", 4, 10).await.unwrap(), chain[4..].to_vec());
    assert!(index.audit_chain("c1", 5, 10).await.unwrap().is_empty());
    assert_eq!(index.audit_chain("c1", 0, 100).await.unwrap(), chain, "this chain's rows only");
    assert_eq!(index.audit_chain("c2", 1, 100).await.unwrap(), vec![simple_row("c2", 2)]);
    assert!(index.audit_chain("c3", 0, 100).await.unwrap().is_empty());
}

async fn audit_search_filters_newest_first(index: Arc<dyn Index>) {
    let a = vec![
        audit_row("node-a", 1, 1_000, "login", "success", "u1", None, ""),
        audit_row("node-a", 2, 2_000, "study.read", "success", "u1", Some("PID1"), "1.2.3 1.2.30"),
        audit_row("node-a", 3, 3_000, "study.read", "failure", "u2", Some("PID2"), "1.2.30"),
    ];
    let b = vec![
        audit_row("node-b", 1, 2_500, "study.export", "success", "u2", Some("PID1"), "1.2.3"),
        audit_row("node-b", 2, 4_000, "login", "failure", "u3", None, ""),
    ];
    index.append_audit(&a, &anchor_at("node-a", 3)).await.unwrap();
    index.append_audit(&b, &anchor_at("node-b", 2)).await.unwrap();
    let search = |q: AuditQuery| {
        let index = index.clone();
        async move {
            index.audit_search(&q).await.unwrap().into_iter().map(|r| format!("{}/{}", r.chain, r.seq)).collect::<Vec<_>>()
        }
    };
    let s = |v: &str| Some(v.to_string());
    assert_eq!(search(AuditQuery::default()).await, vec!["node-b/2", "node-a/3", "node-b/1", "node-a/2", "node-a/1"], "newest first");
    assert_eq!(index.audit_search(&AuditQuery::default()).await.unwrap()[1], a[2], "rows as stored");
    assert_eq!(
        search(AuditQuery { from: Some(2_000), to: Some(3_000), ..Default::default() }).await,
        vec!["node-b/1", "node-a/2"],
        "from inclusive, to exclusive"
    );
    assert_eq!(search(AuditQuery { from: Some(3_000), ..Default::default() }).await, vec!["node-b/2", "node-a/3"]);
    assert_eq!(search(AuditQuery { to: Some(2_000), ..Default::default() }).await, vec!["node-a/1"]);
    assert_eq!(search(AuditQuery { actor_id: s("u1"), ..Default::default() }).await, vec!["node-a/2", "node-a/1"]);
    assert_eq!(search(AuditQuery { action: s("study.read"), ..Default::default() }).await, vec!["node-a/3", "node-a/2"]);
    assert_eq!(search(AuditQuery { outcome: s("failure"), ..Default::default() }).await, vec!["node-b/2", "node-a/3"]);
    assert_eq!(search(AuditQuery { patient_id: s("PID1"), ..Default::default() }).await, vec!["node-b/1", "node-a/2"]);
    assert!(search(AuditQuery { patient_id: s("PID"), ..Default::default() }).await.is_empty(), "exact patient");
    assert_eq!(
        search(AuditQuery { study_uid: s("1.2.3"), ..Default::default() }).await,
        vec!["node-b/1", "node-a/2"],
        "one of the studies, whole UIDs only (not 1.2.30)"
    );
    assert_eq!(search(AuditQuery { study_uid: s("1.2.30"), ..Default::default() }).await, vec!["node-a/3", "node-a/2"]);
    assert!(search(AuditQuery { study_uid: s("2.3"), ..Default::default() }).await.is_empty(), "no partial UID");
    assert!(search(AuditQuery { study_uid: s("1_2_3"), ..Default::default() }).await.is_empty(), "_ is no wildcard");
    assert!(search(AuditQuery { study_uid: s("%"), ..Default::default() }).await.is_empty(), "% is no wildcard");
    assert_eq!(
        search(AuditQuery { actor_id: s("u2"), outcome: s("success"), ..Default::default() }).await,
        vec!["node-b/1"],
        "filters combine"
    );
    assert_eq!(
        search(AuditQuery { patient_id: s("PID1"), study_uid: s("1.2.30"), ..Default::default() }).await,
        vec!["node-a/2"]
    );
    assert!(search(AuditQuery { actor_id: s("u9"), ..Default::default() }).await.is_empty());
    assert_eq!(search(AuditQuery { limit: 2, ..Default::default() }).await, vec!["node-b/2", "node-a/3"]);
    assert_eq!(search(AuditQuery { limit: 2, offset: 2, ..Default::default() }).await, vec!["node-b/1", "node-a/2"]);
    assert_eq!(search(AuditQuery { offset: 4, ..Default::default() }).await, vec!["node-a/1"]);
    assert!(search(AuditQuery { offset: 5, ..Default::default() }).await.is_empty());
}

async fn audit_search_limit_zero_means_one_hundred(index: Arc<dyn Index>) {
    let rows: Vec<AuditRow> = (1..=120).map(|s| simple_row("bulk", s)).collect();
    index.append_audit(&rows, &anchor_at("bulk", 120)).await.unwrap();
    let page = index.audit_search(&AuditQuery::default()).await.unwrap();
    assert_eq!(page.len(), 100);
    assert_eq!((page[0].seq, page[99].seq), (120, 21));
    let next = index.audit_search(&AuditQuery { offset: 100, ..Default::default() }).await.unwrap();
    assert_eq!(next.len(), 20);
    assert_eq!(index.audit_search(&AuditQuery { limit: 110, ..Default::default() }).await.unwrap().len(), 110);
}

async fn audit_taken_position_is_a_conflict_writing_nothing(index: Arc<dyn Index>) {
    let first = vec![simple_row("node-a", 1), simple_row("node-a", 2)];
    index.append_audit(&first, &anchor_at("node-a", 2)).await.unwrap();
    // Another writer on the same chain: its row 3 is new, its row 2 is taken.
    let mut theirs = simple_row("node-a", 2);
    theirs.mac = "mac:other-writer".into();
    let err = index.append_audit(&[simple_row("node-a", 3), theirs], &anchor_at("node-a", 3)).await;
    assert!(matches!(err, Err(IndexError::Conflict(_))), "{err:?}");
    assert_eq!(index.audit_chain("node-a", 0, 100).await.unwrap(), first, "nothing of the failed batch written");
    assert_eq!(index.audit_last("node-a").await.unwrap(), Some(first[1].clone()));
    assert_eq!(index.audit_anchors().await.unwrap(), vec![anchor_at("node-a", 2)], "the anchor did not move");
    let err = index.append_audit(&[simple_row("node-a", 1)], &anchor_at("node-a", 1)).await;
    assert!(matches!(err, Err(IndexError::Conflict(_))), "{err:?}");
    // Positions are per chain, and the chain goes on after the conflict.
    index.append_audit(&[simple_row("node-b", 1), simple_row("node-b", 2)], &anchor_at("node-b", 2)).await.unwrap();
    index.append_audit(&[simple_row("node-a", 3)], &anchor_at("node-a", 3)).await.unwrap();
    assert_eq!(index.audit_chain("node-a", 0, 100).await.unwrap().len(), 3);
    assert_eq!(index.audit_anchors().await.unwrap(), vec![anchor_at("node-a", 3), anchor_at("node-b", 2)]);
}

// --- storage tiers (migration 7) -------------------------------------------

async fn cloud_copy_queue_claim_finish_expire_and_request(index: Arc<dyn Index>) {
    let inst = institution(&index, "H1").await;
    let mut sops = Vec::new();
    for (i, (study, date)) in [("8.1", "20240115"), ("8.1", "20240115"), ("8.2", "20100301")].iter().enumerate() {
        let sop = format!("{study}.1.{i}");
        let mut s = Sample::new(inst.id, "P008", study, &format!("{study}.1"), &sop);
        s.study_date = date.to_string();
        s.instance_number = i as i64 + 1;
        let mut n = s.build();
        n.cloud = i < 2;
        commit_one(&index, n).await.unwrap();
        sops.push(sop);
    }
    let b = index.cloud_backlog().await.unwrap();
    assert_eq!((b.pending, b.copied, b.failed), (2, 0, 0), "{b:?}");
    assert!(b.pending_bytes > 0 && b.oldest_pending_received_at.is_some(), "{b:?}");

    let now = yunying_util::time::now_millis() + 1000;
    let first = index.claim_cloud_copies(now, now + 60_000, 1).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].blob.sha256, format!("{:0>64}", sops[0].replace('.', "")), "oldest first");
    assert_eq!(first[0].attempts, 0);
    // Leased: the next claim gets only the other one, then nothing.
    let second = index.claim_cloud_copies(now, now + 60_000, 10).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_ne!(second[0].blob.id, first[0].blob.id);
    assert!(index.claim_cloud_copies(now, now + 60_000, 10).await.unwrap().is_empty());
    // A lease that ran out is claimed again (a worker died).
    let again = index.claim_cloud_copies(now + 61_000, now + 120_000, 10).await.unwrap();
    assert_eq!(again.len(), 2);

    index.finish_cloud_copy(first[0].blob.id, &CloudCopyOutcome::Copied { at: now }).await.unwrap();
    index
        .finish_cloud_copy(second[0].blob.id, &CloudCopyOutcome::Failed { error: "503 slow down".into(), retry_at: Some(now + 5_000) })
        .await
        .unwrap();
    let b = index.cloud_backlog().await.unwrap();
    assert_eq!((b.pending, b.retrying, b.copied), (1, 1, 1), "{b:?}");
    assert_eq!(b.last_error.as_deref(), Some("503 slow down"));
    // A late outcome of a copy already recorded changes nothing.
    index.finish_cloud_copy(first[0].blob.id, &CloudCopyOutcome::Failed { error: "late".into(), retry_at: None }).await.unwrap();
    assert_eq!(index.cloud_backlog().await.unwrap().copied, 1);
    let retry = index.claim_cloud_copies(now + 5_000, now + 60_000, 10).await.unwrap();
    assert_eq!((retry.len(), retry[0].attempts), (1, 1));
    index.finish_cloud_copy(retry[0].blob.id, &CloudCopyOutcome::Failed { error: "gone".into(), retry_at: None }).await.unwrap();
    let b = index.cloud_backlog().await.unwrap();
    assert_eq!((b.pending, b.failed, b.copied), (0, 1, 1), "{b:?}");

    // Lifecycle: only copied objects of studies before the cut-off.
    assert!(index.cloud_expired("20240115", 0, 10).await.unwrap().is_empty());
    let old = index.cloud_expired("20240116", 0, 10).await.unwrap();
    assert_eq!(old.len(), 1);
    assert!(old[0].in_cloud);
    index.mark_cloud_removed(&[old[0].id], now).await.unwrap();
    let b = index.cloud_backlog().await.unwrap();
    assert_eq!((b.copied, b.removed), (0, 1), "{b:?}");

    // A cloud tier added later: studies from 2024 on are marked (the removed
    // one too), the failed one only when asked, the 2010 study never.
    assert_eq!(index.request_cloud_copies("20240101", false, now).await.unwrap(), 1);
    assert_eq!(index.request_cloud_copies("20240101", true, now).await.unwrap(), 1);
    assert_eq!(index.request_cloud_copies("20240101", true, now).await.unwrap(), 0, "already wanted");
    assert_eq!(index.cloud_backlog().await.unwrap().pending, 2);
    assert_eq!(index.request_cloud_copies("20000101", false, now).await.unwrap(), 1, "the 2010 study");

    // Every object, in id order, within an extent.
    let max = index.max_instance_id().await.unwrap();
    let all = index.blob_records(0, max, 10).await.unwrap();
    assert_eq!(all.len(), 3);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(index.blob_records(all[0].id, max, 1).await.unwrap()[0].id, all[1].id);
    assert!(index.blob_records(0, all[0].id, 10).await.unwrap().len() == 1, "the extent bounds the page");
    assert!(all.iter().all(|r| r.sha256.len() == 64 && r.size_bytes > 0));
}

async fn job_leases_one_holder_at_a_time(index: Arc<dyn Index>) {
    assert!(index.try_lease("scrub", "node-a", 1_000, 61_000).await.unwrap());
    assert!(!index.try_lease("scrub", "node-b", 2_000, 62_000).await.unwrap(), "held by node-a");
    assert!(index.try_lease("scrub", "node-a", 30_000, 90_000).await.unwrap(), "renewed by its holder");
    assert!(!index.try_lease("scrub", "node-b", 89_000, 150_000).await.unwrap());
    assert!(index.try_lease("lifecycle", "node-b", 89_000, 150_000).await.unwrap(), "another job's lease");
    assert!(index.try_lease("scrub", "node-b", 90_001, 150_000).await.unwrap(), "expired: taken over");
    assert!(!index.try_lease("scrub", "node-a", 100_000, 160_000).await.unwrap());
    index.release_lease("scrub", "node-a").await.unwrap();
    assert!(!index.try_lease("scrub", "node-a", 100_000, 160_000).await.unwrap(), "only the holder releases");
    index.release_lease("scrub", "node-b").await.unwrap();
    assert!(index.try_lease("scrub", "node-a", 100_000, 160_000).await.unwrap());
}

async fn storage_tasks_and_blob_problems(index: Arc<dyn Index>) {
    let mut t = index.create_storage_task(StorageTask::MIGRATE, "local", Some("oss"), 42, 1_000).await.unwrap();
    assert_eq!((t.state.as_str(), t.cursor_id, t.last_id, t.objects), (StorageTask::RUNNING, 0, 42, 0));
    t.cursor_id = 17;
    t.objects = 17;
    t.bytes = 1 << 40;
    t.problems = 1;
    t.updated_at = 2_000;
    t.last_error = Some("timeout".into());
    index.save_storage_task(&t).await.unwrap();
    let s = index.create_storage_task(StorageTask::SCRUB, "local", None, 42, 3_000).await.unwrap();
    let all = index.storage_tasks(None, 10).await.unwrap();
    assert_eq!(all.iter().map(|x| x.id).collect::<Vec<_>>(), vec![s.id, t.id], "newest first");
    let m = index.storage_tasks(Some(StorageTask::MIGRATE), 10).await.unwrap();
    assert_eq!(m, vec![t.clone()], "saved as given (1 TiB fits)");
    let mut gone = t.clone();
    gone.id = 999_999;
    assert!(matches!(index.save_storage_task(&gone).await, Err(IndexError::NotFound(_))));

    let p = |store: &str, key: &str, at| BlobProblem {
        id: 0,
        store: store.into(),
        blob_key: key.into(),
        instance_id: Some(3),
        problem: "damaged".into(),
        detail: "sha256 differs".into(),
        found_at: at,
        resolved_at: None,
        resolution: None,
    };
    index.record_blob_problem(&p("local", "dicom/v1/a", 10)).await.unwrap();
    index.record_blob_problem(&p("cloud", "dicom/v1/a", 11)).await.unwrap();
    index.record_blob_problem(&p("local", "dicom/v1/b", 12)).await.unwrap();
    let (open, n) = index.open_blob_problems(2).await.unwrap();
    assert_eq!(n, 3);
    assert_eq!(open.iter().map(|x| x.found_at).collect::<Vec<_>>(), vec![12, 11]);
    assert_eq!(index.resolve_blob_problems("local", "dicom/v1/a", "restored from cloud", 20).await.unwrap(), 1);
    let (open, n) = index.open_blob_problems(10).await.unwrap();
    assert_eq!(n, 2);
    assert!(open.iter().all(|x| !(x.store == "local" && x.blob_key == "dicom/v1/a")));
}
