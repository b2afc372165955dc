//! The contract every [`Index`] backend passes. Each backend's tests call
//! [`run_all`] with a factory that makes a fresh, empty catalog.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::model::*;
use crate::query::{Key, Level, Query};
use crate::{Index, IndexError};
use yunying_util::InstitutionId;

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
        case!(institution_scope_restricts_results),
        case!(retrieval_order_and_metadata),
        case!(counters_follow_ingest),
        case!(forward_jobs_queue_claim_retry_and_complete),
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
