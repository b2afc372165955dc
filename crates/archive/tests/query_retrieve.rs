//! C-FIND / C-MOVE / C-GET logic against a real SQLite catalog: identifiers
//! built as an SCU sends them (implicit or explicit VR little endian, Chinese
//! names in GB18030), answers checked key by key.

use std::sync::Arc;

use serde_json::{Map, Value as Json};
use yunying_archive::{Archive, ArchiveSettings, FindResults, IngestSource, QrError, QrModel};
use yunying_blob::{BlobStore, FsStore};
use yunying_dicom::write::{DataSetBuilder, ObjectBuilder};
use yunying_dicom::{Tag, VR};
use yunying_index::{Index, NewInstitution};
use yunying_util::InstitutionId;

const EXPLICIT: &str = "1.2.840.10008.1.2.1";
const IMPLICIT: &str = "1.2.840.10008.1.2";
const CT: &str = "1.2.840.10008.5.1.4.1.1.2";
const MR: &str = "1.2.840.10008.5.1.4.1.1.4";
const DX: &str = "1.2.840.10008.5.1.4.1.1.1.1";
const SR: &str = "1.2.840.10008.5.1.4.1.1.88.22";
const AE: &str = "YUNYING";

const S1: &str = "1.2.826.0.1.7.1";
const S2: &str = "1.2.826.0.1.7.2";
const S3: &str = "1.2.826.0.1.7.3";
const S4: &str = "1.2.826.0.1.7.4";

struct Env {
    _dir: tempfile::TempDir,
    archive: Arc<Archive>,
    /// SZRMYY (the default institution) and GLZXWSY (a township health centre).
    szrmyy: i64,
    glzxwsy: i64,
}

struct Patient {
    name: &'static str,
    id: &'static str,
    sex: &'static str,
    charset: &'static str,
}

struct Study {
    uid: &'static str,
    date: &'static str,
    accession: &'static str,
    description: &'static str,
}

struct Series {
    uid: &'static str,
    modality: &'static str,
    number: u32,
    sop_class: &'static str,
    count: u32,
}

const ZHANG: Patient = Patient {
    name: "Zhang^San=张^三",
    id: "P001",
    sex: "M",
    charset: "GB18030",
};
const LI: Patient = Patient {
    name: "Li^Si=李^四",
    id: "P002",
    sex: "F",
    charset: "ISO_IR 192",
};
/// Same local ID as Zhang San, at another institution: another person.
const WANG: Patient = Patient {
    name: "Wang^Wu=王^五",
    id: "P001",
    sex: "M",
    charset: "GBK",
};

fn object(p: &Patient, st: &Study, se: &Series, n: u32) -> Vec<u8> {
    let sop = format!("{}.{n}", se.uid);
    let mut b = ObjectBuilder::new(se.sop_class, &sop, EXPLICIT);
    b.charset(p.charset);
    b.str(Tag(0x0010, 0x0010), VR::PN, p.name);
    b.str(Tag(0x0010, 0x0020), VR::LO, p.id);
    b.str(Tag(0x0010, 0x0030), VR::DA, "19700101");
    b.str(Tag(0x0010, 0x0040), VR::CS, p.sex);
    b.str(Tag(0x0020, 0x000D), VR::UI, st.uid);
    b.str(Tag(0x0008, 0x0020), VR::DA, st.date);
    b.str(Tag(0x0008, 0x0030), VR::TM, "101500");
    b.str(Tag(0x0008, 0x0050), VR::SH, st.accession);
    b.str(Tag(0x0008, 0x1030), VR::LO, st.description);
    b.str(Tag(0x0020, 0x000E), VR::UI, se.uid);
    b.str(Tag(0x0008, 0x0060), VR::CS, se.modality);
    b.str(Tag(0x0020, 0x0011), VR::IS, &se.number.to_string());
    b.str(Tag(0x0020, 0x0013), VR::IS, &n.to_string());
    if se.modality != "SR" {
        b.u16(Tag(0x0028, 0x0010), 4)
            .u16(Tag(0x0028, 0x0011), 4)
            .u16(Tag(0x0028, 0x0100), 16);
        b.u16(Tag(0x0028, 0x0002), 1);
        b.pixel_data_native(vec![n as u8; 32], VR::OW);
    }
    b.to_bytes()
}

async fn ingest(e: &Env, institution: i64, p: &Patient, st: &Study, series: &[Series]) {
    let mut src = IngestSource::new("test", "127.0.0.1");
    src.institution = Some(InstitutionId(institution));
    for se in series {
        for n in 1..=se.count {
            e.archive
                .ingest_bytes(&object(p, st, se, n), &src)
                .await
                .unwrap();
        }
    }
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let index: Arc<dyn Index> = Arc::new(
        yunying_index_sqlite::open(&dir.path().join("catalog.db"))
            .await
            .unwrap(),
    );
    let mut ids = Vec::new();
    for (code, zh, en) in [
        ("SZRMYY", "嵊州市人民医院", "Shengzhou People's Hospital"),
        (
            "GLZXWSY",
            "嵊州市甘霖镇中心卫生院",
            "Ganlin Town Central Health Centre",
        ),
    ] {
        let i = index
            .upsert_institution(&NewInstitution {
                code: code.into(),
                name_zh: zh.into(),
                name_en: en.into(),
                patient_id_issuer: None,
                ae_titles: vec![],
            })
            .await
            .unwrap();
        ids.push(i.id.0);
    }
    let blobs: Arc<dyn BlobStore> = Arc::new(FsStore::open(dir.path().join("blobs")).unwrap());
    let archive = Archive::open(
        index,
        blobs,
        ArchiveSettings::new(dir.path().join("staging"), "SZRMYY"),
    )
    .await
    .unwrap();
    Env {
        _dir: dir,
        archive,
        szrmyy: ids[0],
        glzxwsy: ids[1],
    }
}

/// Four studies: Zhang San (S1 CT+SR 3 series 6 instances, S2 MR), Li Si
/// (S3 DX) at SZRMYY; Wang Wu (S4 CT) at GLZXWSY under the same local ID P001.
async fn populated() -> Env {
    let e = env().await;
    let s1 = Study {
        uid: S1,
        date: "20240115",
        accession: "A1001",
        description: "胸部CT平扫",
    };
    ingest(
        &e,
        e.szrmyy,
        &ZHANG,
        &s1,
        &[
            Series {
                uid: "1.2.826.0.1.7.1.1",
                modality: "CT",
                number: 1,
                sop_class: CT,
                count: 3,
            },
            Series {
                uid: "1.2.826.0.1.7.1.2",
                modality: "CT",
                number: 2,
                sop_class: CT,
                count: 2,
            },
            Series {
                uid: "1.2.826.0.1.7.1.3",
                modality: "SR",
                number: 99,
                sop_class: SR,
                count: 1,
            },
        ],
    )
    .await;
    let s2 = Study {
        uid: S2,
        date: "20240320",
        accession: "A1002",
        description: "头颅MR",
    };
    ingest(
        &e,
        e.szrmyy,
        &ZHANG,
        &s2,
        &[Series {
            uid: "1.2.826.0.1.7.2.1",
            modality: "MR",
            number: 1,
            sop_class: MR,
            count: 2,
        }],
    )
    .await;
    let s3 = Study {
        uid: S3,
        date: "20231201",
        accession: "B2001",
        description: "胸部正位",
    };
    ingest(
        &e,
        e.szrmyy,
        &LI,
        &s3,
        &[Series {
            uid: "1.2.826.0.1.7.3.1",
            modality: "DX",
            number: 1,
            sop_class: DX,
            count: 1,
        }],
    )
    .await;
    let s4 = Study {
        uid: S4,
        date: "20240116",
        accession: "GL0001",
        description: "胸部CT",
    };
    ingest(
        &e,
        e.glzxwsy,
        &WANG,
        &s4,
        &[Series {
            uid: "1.2.826.0.1.7.4.1",
            modality: "CT",
            number: 1,
            sop_class: CT,
            count: 2,
        }],
    )
    .await;
    e
}

/// An identifier: level, optional Specific Character Set, then (group,
/// element, VR, value) keys, in transfer syntax `ts`.
fn ident_ts(
    ts: &str,
    level: &str,
    charset: Option<&str>,
    keys: &[(u16, u16, VR, &str)],
) -> Vec<u8> {
    let mut d = DataSetBuilder::new();
    if let Some(c) = charset {
        d.charset(c);
    }
    d.str(Tag(0x0008, 0x0052), VR::CS, level);
    for &(g, e, vr, v) in keys {
        d.str(Tag(g, e), vr, v);
    }
    d.to_bytes(ts)
}

fn ident(level: &str, keys: &[(u16, u16, VR, &str)]) -> Vec<u8> {
    ident_ts(EXPLICIT, level, None, keys)
}

/// The same, with text in GB18030 (as a Chinese modality sends it).
fn ident_gb(level: &str, keys: &[(u16, u16, VR, &str)]) -> Vec<u8> {
    ident_ts(EXPLICIT, level, Some("GB18030"), keys)
}

async fn find(e: &Env, model: QrModel, id: &[u8]) -> FindResults {
    e.archive
        .qr_find(model, id, EXPLICIT, AE, None, 100)
        .await
        .unwrap()
}

async fn find_err(e: &Env, model: QrModel, id: &[u8]) -> QrError {
    e.archive
        .qr_find(model, id, EXPLICIT, AE, None, 100)
        .await
        .unwrap_err()
}

async fn retrieve(
    e: &Env,
    model: QrModel,
    id: &[u8],
    institutions: Option<Vec<i64>>,
) -> Vec<String> {
    e.archive
        .qr_retrieve_set(model, id, EXPLICIT, institutions)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.sop_uid)
        .collect()
}

fn keys(m: &Map<String, Json>) -> Vec<&str> {
    m.keys().map(|k| k.as_str()).collect()
}

fn sorted(mut v: Vec<&str>) -> Vec<&str> {
    v.sort();
    v.dedup();
    v
}

/// First value as text (numbers in decimal, names by their ideographic group).
fn val(m: &Map<String, Json>, key: &str) -> String {
    match &m[key]["Value"][0] {
        Json::String(s) => s.clone(),
        Json::Number(n) => n.to_string(),
        Json::Object(pn) => pn
            .get("Ideographic")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string(),
        other => panic!("{key} has no value: {other} in {m:?}"),
    }
}

fn values(m: &Map<String, Json>, key: &str) -> Vec<String> {
    m[key]["Value"]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

fn is_empty(m: &Map<String, Json>, key: &str, vr: &str) -> bool {
    m[key] == serde_json::json!({ "vr": vr })
}

fn study_uids(r: &FindResults) -> Vec<String> {
    r.matches.iter().map(|m| val(m, "0020000D")).collect()
}

fn sops(prefix: &str, numbers: &[u32]) -> Vec<String> {
    numbers.iter().map(|n| format!("{prefix}.{n}")).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn study_level_returns_exactly_the_requested_keys() {
    let e = populated().await;
    let asked: &[(u16, u16, VR, &str)] = &[
        (0x0010, 0x0010, VR::PN, "张*"),
        (0x0010, 0x0030, VR::DA, ""),
        (0x0008, 0x0020, VR::DA, ""),
        (0x0008, 0x0050, VR::SH, ""),
        (0x0008, 0x1030, VR::LO, ""),
        (0x0008, 0x0080, VR::LO, ""), // InstitutionName: the objects have none
        (0x0018, 0x0050, VR::DS, ""), // SliceThickness: below the level
        (0x0020, 0x000D, VR::UI, ""),
        (0x0008, 0x0061, VR::CS, ""),
        (0x0008, 0x0062, VR::UI, ""),
        (0x0008, 0x0056, VR::CS, ""),
        (0x0020, 0x1206, VR::IS, ""),
        (0x0020, 0x1208, VR::IS, ""),
    ];
    let r = find(&e, QrModel::StudyRoot, &ident_gb("STUDY", asked)).await;
    assert_eq!(
        study_uids(&r),
        [S2, S1],
        "Zhang San's studies, newest first"
    );
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert!(!r.truncated);
    let mut expected: Vec<&str> = vec!["00080005", "00080052", "00080054"];
    expected.extend([
        "00100010", "00100030", "00080020", "00080050", "00081030", "00080080", "00180050",
        "0020000D", "00080061", "00080062", "00080056", "00201206", "00201208",
    ]);
    let s1 = &r.matches[1];
    assert_eq!(
        keys(s1),
        sorted(expected.clone()),
        "exactly the keys asked, plus the ones always returned"
    );
    assert_eq!(val(s1, "00100010"), "张^三");
    assert_eq!(s1["00100010"]["Value"][0]["Alphabetic"], "Zhang^San");
    assert_eq!(val(s1, "00080020"), "20240115");
    assert_eq!(val(s1, "00080050"), "A1001");
    assert_eq!(val(s1, "00081030"), "胸部CT平扫");
    assert_eq!(val(s1, "00100030"), "19700101");
    assert!(is_empty(s1, "00080080", "LO"), "{}", s1["00080080"]);
    assert!(is_empty(s1, "00180050", "DS"), "{}", s1["00180050"]);
    assert_eq!(values(s1, "00080061"), ["CT", "SR"]);
    assert_eq!(values(s1, "00080062"), [CT, SR]);
    assert_eq!(val(s1, "00201206"), "3");
    assert_eq!(val(s1, "00201208"), "6");
    assert_eq!(val(s1, "00080056"), "ONLINE");
    assert_eq!(val(s1, "00080005"), "ISO_IR 192");
    assert_eq!(val(s1, "00080052"), "STUDY");
    assert_eq!(val(s1, "00080054"), AE);
    let s2 = &r.matches[0];
    assert_eq!(values(s2, "00080061"), ["MR"]);
    assert_eq!(values(s2, "00080062"), [MR]);
    assert_eq!(val(s2, "00201208"), "2");

    // Patient Root adds the patient's unique key.
    let p = find(&e, QrModel::PatientRoot, &ident_gb("STUDY", asked)).await;
    let mut with_pid = expected.clone();
    with_pid.push("00100020");
    assert_eq!(keys(&p.matches[1]), sorted(with_pid));
    assert_eq!(val(&p.matches[1], "00100020"), "P001");

    // The same identifier in implicit VR gives the same answer.
    let implicit = e
        .archive
        .qr_find(
            QrModel::StudyRoot,
            &ident_ts(IMPLICIT, "STUDY", Some("GB18030"), asked),
            IMPLICIT,
            AE,
            None,
            100,
        )
        .await
        .unwrap();
    assert_eq!(implicit.matches, r.matches);

    // Only the required keys: the answer holds the always-returned ones.
    let bare = find(
        &e,
        QrModel::StudyRoot,
        &ident("STUDY", &[(0x0020, 0x000D, VR::UI, S3)]),
    )
    .await;
    assert_eq!(bare.matches.len(), 1);
    assert_eq!(
        keys(&bare.matches[0]),
        ["00080005", "00080052", "00080054", "0020000D"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn wildcard_range_and_list_matching() {
    let e = populated().await;
    let q = |keys: &'static [(u16, u16, VR, &'static str)]| ident_gb("STUDY", keys);
    let cases: Vec<(Vec<u8>, Vec<&str>)> = vec![
        (
            q(&[(0x0008, 0x0020, VR::DA, "20240101-20240131")]),
            vec![S4, S1],
        ),
        (q(&[(0x0008, 0x0020, VR::DA, "-20231231")]), vec![S3]),
        (q(&[(0x0008, 0x0020, VR::DA, "20240320")]), vec![S2]),
        (
            q(&[(0x0020, 0x000D, VR::UI, "1.2.826.0.1.7.1\\1.2.826.0.1.7.3")]),
            vec![S1, S3],
        ),
        (q(&[(0x0008, 0x0050, VR::SH, "A10*")]), vec![S2, S1]),
        (q(&[(0x0008, 0x0050, VR::SH, "?L0001")]), vec![S4]),
        (q(&[(0x0010, 0x0010, VR::PN, "li^si")]), vec![S3]),
        (q(&[(0x0010, 0x0010, VR::PN, "李^四")]), vec![S3]),
        (q(&[(0x0010, 0x0010, VR::PN, "*")]), vec![S2, S4, S1, S3]),
        (q(&[(0x0010, 0x0040, VR::CS, "F")]), vec![S3]),
        (q(&[(0x0008, 0x0061, VR::CS, "MR\\DX")]), vec![S2, S3]),
        // Modality at study level matches the study's modalities (extended).
        (q(&[(0x0008, 0x0060, VR::CS, "SR")]), vec![S1]),
        (q(&[(0x0008, 0x1030, VR::LO, "胸部*")]), vec![S4, S1, S3]),
        (
            q(&[
                (0x0010, 0x0020, VR::LO, "P001"),
                (0x0008, 0x0020, VR::DA, "20240116-"),
            ]),
            vec![S2, S4],
        ),
    ];
    for (i, (id, want)) in cases.into_iter().enumerate() {
        let r = find(&e, QrModel::StudyRoot, &id).await;
        assert_eq!(study_uids(&r), want, "case {i}");
    }
    // The identifier's own character set decides: UTF-8...
    let utf8 = ident_ts(
        EXPLICIT,
        "STUDY",
        Some("ISO_IR 192"),
        &[(0x0010, 0x0010, VR::PN, "王^五")],
    );
    assert_eq!(study_uids(&find(&e, QrModel::StudyRoot, &utf8).await), [S4]);
    // ...and undeclared GB18030 bytes are read with the fallback.
    let mut d = DataSetBuilder::new();
    d.str(Tag(0x0008, 0x0052), VR::CS, "STUDY");
    d.bytes(
        Tag(0x0010, 0x0010),
        VR::PN,
        encoding_rs::GB18030.encode("王*").0.into_owned(),
    );
    assert_eq!(
        study_uids(&find(&e, QrModel::StudyRoot, &d.to_bytes(EXPLICIT)).await),
        [S4]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn series_and_image_levels() {
    let e = populated().await;
    let asked: &[(u16, u16, VR, &str)] = &[
        (0x0020, 0x000D, VR::UI, S1),
        (0x0010, 0x0010, VR::PN, ""),
        (0x0008, 0x0060, VR::CS, ""),
        (0x0020, 0x0011, VR::IS, ""),
        (0x0020, 0x000E, VR::UI, ""),
        (0x0020, 0x1209, VR::IS, ""),
        (0x0020, 0x1206, VR::IS, ""),
    ];
    let r = find(&e, QrModel::StudyRoot, &ident("SERIES", asked)).await;
    assert_eq!(r.matches.len(), 3);
    let numbers: Vec<String> = r.matches.iter().map(|m| val(m, "00200011")).collect();
    assert_eq!(numbers, ["1", "2", "99"], "series in number order");
    let counts: Vec<String> = r.matches.iter().map(|m| val(m, "00201209")).collect();
    assert_eq!(counts, ["3", "2", "1"]);
    let m = &r.matches[2];
    assert_eq!(
        keys(m),
        sorted(vec![
            "00080005", "00080052", "00080054", "0020000D", "0020000E", "00100010", "00080060",
            "00200011", "00201209", "00201206"
        ])
    );
    assert_eq!(val(m, "00080052"), "SERIES");
    assert_eq!(val(m, "00080060"), "SR");
    assert_eq!(val(m, "0020000E"), "1.2.826.0.1.7.1.3");
    assert_eq!(
        val(m, "00100010"),
        "张^三",
        "higher-level keys come with their stored values"
    );
    assert_eq!(val(m, "00201206"), "3");

    // Series filters across studies, and the patient key in Patient Root.
    let sr = find(
        &e,
        QrModel::PatientRoot,
        &ident("SERIES", &[(0x0008, 0x0060, VR::CS, "SR")]),
    )
    .await;
    assert_eq!(sr.matches.len(), 1);
    assert_eq!(val(&sr.matches[0], "0020000E"), "1.2.826.0.1.7.1.3");
    assert_eq!(val(&sr.matches[0], "00100020"), "P001");
    assert_eq!(
        keys(&sr.matches[0]),
        [
            "00080005", "00080052", "00080054", "00080060", "00100020", "0020000D", "0020000E"
        ]
    );
    let ct = find(
        &e,
        QrModel::StudyRoot,
        &ident("SERIES", &[(0x0008, 0x0060, VR::CS, "CT")]),
    )
    .await;
    assert_eq!(ct.matches.len(), 3, "two in S1, one in S4");
    let two = find(
        &e,
        QrModel::StudyRoot,
        &ident("SERIES", &[(0x0020, 0x0011, VR::IS, "2")]),
    )
    .await;
    assert_eq!(
        two.matches
            .iter()
            .map(|m| val(m, "0020000E"))
            .collect::<Vec<_>>(),
        ["1.2.826.0.1.7.1.2"]
    );

    // IMAGE level.
    let asked: &[(u16, u16, VR, &str)] = &[
        (0x0020, 0x000E, VR::UI, "1.2.826.0.1.7.1.1"),
        (0x0008, 0x0018, VR::UI, ""),
        (0x0008, 0x0016, VR::UI, ""),
        (0x0020, 0x0013, VR::IS, ""),
        (0x0028, 0x0010, VR::US, ""),
        (0x0018, 0x0050, VR::DS, ""),
        (0x0008, 0x0060, VR::CS, ""),
        (0x0020, 0x1208, VR::IS, ""),
        (0x0008, 0x3002, VR::UI, ""),
    ];
    let r = find(&e, QrModel::StudyRoot, &ident("IMAGE", asked)).await;
    let sop: Vec<String> = r.matches.iter().map(|m| val(m, "00080018")).collect();
    assert_eq!(sop, sops("1.2.826.0.1.7.1.1", &[1, 2, 3]));
    let m = &r.matches[1];
    assert_eq!(
        keys(m),
        sorted(vec![
            "00080005", "00080052", "00080054", "0020000D", "0020000E", "00080018", "00080016",
            "00200013", "00280010", "00180050", "00080060", "00201208", "00083002"
        ])
    );
    assert_eq!(val(m, "00080052"), "IMAGE");
    assert_eq!(val(m, "00080016"), CT);
    assert_eq!(val(m, "00200013"), "2");
    assert_eq!(val(m, "00280010"), "4");
    assert_eq!(val(m, "00080060"), "CT");
    assert_eq!(val(m, "00201208"), "6");
    assert_eq!(val(m, "00083002"), EXPLICIT);
    assert!(is_empty(m, "00180050", "DS"));
    assert_eq!(val(m, "0020000D"), S1);

    let one = find(
        &e,
        QrModel::StudyRoot,
        &ident(
            "IMAGE",
            &[(0x0020, 0x0013, VR::IS, "2"), (0x0020, 0x000D, VR::UI, S1)],
        ),
    )
    .await;
    assert_eq!(
        one.matches
            .iter()
            .map(|m| val(m, "00080018"))
            .collect::<Vec<_>>(),
        ["1.2.826.0.1.7.1.1.2", "1.2.826.0.1.7.1.2.2"]
    );
    let list = find(
        &e,
        QrModel::PatientRoot,
        &ident(
            "IMAGE",
            &[(
                0x0008,
                0x0018,
                VR::UI,
                "1.2.826.0.1.7.4.1.2\\1.2.826.0.1.7.3.1.1",
            )],
        ),
    )
    .await;
    assert_eq!(list.matches.len(), 2);
    assert_eq!(val(&list.matches[0], "00100020"), "P001");
    assert_eq!(val(&list.matches[1], "00100020"), "P002");
    let sr_class = find(
        &e,
        QrModel::StudyRoot,
        &ident("IMAGE", &[(0x0008, 0x0016, VR::UI, SR)]),
    )
    .await;
    assert_eq!(sr_class.matches.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn patient_level_groups_by_id_and_issuer() {
    let e = populated().await;
    let asked: &[(u16, u16, VR, &str)] = &[
        (0x0010, 0x0010, VR::PN, ""),
        (0x0010, 0x0020, VR::LO, ""),
        (0x0010, 0x0021, VR::LO, ""),
        (0x0010, 0x0030, VR::DA, ""),
        (0x0020, 0x1200, VR::IS, ""),
        (0x0020, 0x1202, VR::IS, ""),
        (0x0020, 0x1204, VR::IS, ""),
        (0x0008, 0x0020, VR::DA, ""), // a study attribute: empty at PATIENT level
    ];
    let r = find(&e, QrModel::PatientRoot, &ident("PATIENT", asked)).await;
    let summary: Vec<(String, String, String, String, String, String)> = r
        .matches
        .iter()
        .map(|m| {
            (
                val(m, "00100010"),
                val(m, "00100020"),
                val(m, "00100021"),
                val(m, "00201200"),
                val(m, "00201202"),
                val(m, "00201204"),
            )
        })
        .collect();
    let row = |a: &str, b: &str, c: &str, d: &str, e: &str, f: &str| {
        (
            a.to_string(),
            b.to_string(),
            c.to_string(),
            d.to_string(),
            e.to_string(),
            f.to_string(),
        )
    };
    assert_eq!(
        summary,
        [
            row("张^三", "P001", "SZRMYY", "2", "4", "8"),
            row("王^五", "P001", "GLZXWSY", "1", "1", "2"),
            row("李^四", "P002", "SZRMYY", "1", "1", "1"),
        ],
        "one match per (PatientID, issuer), in order of their newest study"
    );
    let m = &r.matches[0];
    assert_eq!(
        keys(m),
        sorted(vec![
            "00080005", "00080052", "00080054", "00100010", "00100020", "00100021", "00100030",
            "00201200", "00201202", "00201204", "00080020"
        ])
    );
    assert_eq!(val(m, "00080052"), "PATIENT");
    assert!(is_empty(m, "00080020", "DA"));

    // A study attribute with a value narrows the patients (extended), the
    // counts still cover all their studies.
    let mut narrowed = asked.to_vec();
    narrowed[7] = (0x0008, 0x0020, VR::DA, "20240320");
    let r = find(&e, QrModel::PatientRoot, &ident("PATIENT", &narrowed)).await;
    assert_eq!(r.matches.len(), 1);
    assert_eq!(val(&r.matches[0], "00100010"), "张^三");
    assert_eq!(val(&r.matches[0], "00201200"), "2");
    assert_eq!(val(&r.matches[0], "00201204"), "8");

    let ct = find(
        &e,
        QrModel::PatientRoot,
        &ident(
            "PATIENT",
            &[(0x0008, 0x0060, VR::CS, "CT"), (0x0020, 0x1200, VR::IS, "")],
        ),
    )
    .await;
    let who: Vec<(String, String)> = ct
        .matches
        .iter()
        .map(|m| (val(m, "00100020"), val(m, "00201200")))
        .collect();
    assert_eq!(
        who,
        [
            ("P001".to_string(), "1".to_string()),
            ("P001".to_string(), "2".to_string())
        ],
        "Wang Wu (S4) then Zhang San (S1)"
    );

    let wang = find(
        &e,
        QrModel::PatientRoot,
        &ident_gb("PATIENT", &[(0x0010, 0x0010, VR::PN, "王*")]),
    )
    .await;
    assert_eq!(wang.matches.len(), 1);
    assert_eq!(
        keys(&wang.matches[0]),
        ["00080005", "00080052", "00080054", "00100010", "00100020"]
    );
    assert_eq!(val(&wang.matches[0], "00100020"), "P001");

    let by_issuer = find(
        &e,
        QrModel::PatientRoot,
        &ident(
            "PATIENT",
            &[
                (0x0010, 0x0020, VR::LO, "P001"),
                (0x0010, 0x0021, VR::LO, "GLZXWSY"),
            ],
        ),
    )
    .await;
    assert_eq!(by_issuer.matches.len(), 1);
    assert_eq!(val(&by_issuer.matches[0], "00100021"), "GLZXWSY");

    let err = find_err(&e, QrModel::StudyRoot, &ident("PATIENT", asked)).await;
    assert_eq!(err.status, 0xA900, "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_warnings_and_limits() {
    let e = populated().await;
    for (model, id) in [
        (QrModel::StudyRoot, ident("FOO", &[])),
        (QrModel::StudyRoot, ident("PATIENT", &[])),
        (QrModel::PatientRoot, {
            let mut d = DataSetBuilder::new();
            d.str(Tag(0x0010, 0x0020), VR::LO, "");
            d.to_bytes(EXPLICIT)
        }),
    ] {
        let err = find_err(&e, model, &id).await;
        assert_eq!(err.status, 0xA900, "{err}");
        assert!(err.message.contains("QueryRetrieveLevel"), "{err}");
        let err = e
            .archive
            .qr_retrieve_set(model, &id, EXPLICIT, None)
            .await
            .unwrap_err();
        assert_eq!(err.status, 0xA900, "{err}");
    }
    let err = find_err(
        &e,
        QrModel::StudyRoot,
        &ident("STUDY", &[(0x0008, 0x0020, VR::DA, "2024-01-01")]),
    )
    .await;
    assert_eq!(err.status, 0xA900);
    assert!(err.message.contains("StudyDate"), "{err}");
    let err = find_err(
        &e,
        QrModel::StudyRoot,
        &ident("SERIES", &[(0x0020, 0x000D, VR::UI, "1.2.abc")]),
    )
    .await;
    assert_eq!(err.status, 0xA900);
    assert!(err.message.contains("StudyInstanceUID"), "{err}");
    let err = find_err(
        &e,
        QrModel::StudyRoot,
        &ident("IMAGE", &[(0x0020, 0x0013, VR::IS, "x")]),
    )
    .await;
    assert_eq!(err.status, 0xA900);
    assert!(err.message.contains("InstanceNumber"), "{err}");
    // Bytes that are not a data set.
    let garbage = [0x10, 0x00, 0x10, 0x00, b'P', b'N', 0xFF, 0x00, b'Z'];
    let err = find_err(&e, QrModel::StudyRoot, &garbage).await;
    assert_eq!(err.status, 0xC000, "{err}");
    let err = e
        .archive
        .qr_retrieve_set(QrModel::StudyRoot, &garbage, EXPLICIT, None)
        .await
        .unwrap_err();
    assert_eq!(err.status, 0xC000);

    // Keys that cannot be matched are returned, not matched, and reported.
    let mut d = DataSetBuilder::new();
    d.str(Tag(0x0008, 0x0052), VR::CS, "STUDY");
    d.str(Tag(0x0020, 0x000D), VR::UI, S1);
    let mut item = DataSetBuilder::new();
    item.str(Tag(0x0008, 0x0100), VR::SH, "XYZ");
    d.sequence(Tag(0x0008, 0x1032), vec![item]);
    d.sequence(Tag(0x0008, 0x1110), vec![]); // an empty sequence is only a return key
    d.str(Tag(0x0009, 0x0010), VR::LO, "ACME");
    d.str(Tag(0x0018, 0x0050), VR::DS, "1.25");
    d.str(Tag(0x0020, 0x1208), VR::IS, "99");
    let r = find(&e, QrModel::StudyRoot, &d.to_bytes(EXPLICIT)).await;
    assert_eq!(study_uids(&r), [S1]);
    assert_eq!(r.warnings.len(), 4, "{:?}", r.warnings);
    for (w, what) in r.warnings.iter().zip([
        "ProcedureCodeSequence",
        "(0009,0010)",
        "SliceThickness",
        "NumberOfStudyRelatedInstances",
    ]) {
        assert!(w.contains(what), "{w} / {what}");
    }
    let m = &r.matches[0];
    assert!(is_empty(m, "00081032", "SQ"));
    assert!(is_empty(m, "00081110", "SQ"));
    assert!(is_empty(m, "00090010", "LO"));
    assert_eq!(
        val(m, "00201208"),
        "6",
        "the computed count, not the value sent"
    );

    // A series key with a value at STUDY level cannot be matched there.
    let r = find(
        &e,
        QrModel::StudyRoot,
        &ident("STUDY", &[(0x0020, 0x0011, VR::IS, "99")]),
    )
    .await;
    assert_eq!(r.matches.len(), 4);
    assert!(
        r.warnings[0].contains("SeriesNumber") && r.warnings[0].contains("STUDY"),
        "{:?}",
        r.warnings
    );

    // The result limit.
    let all = ident("STUDY", &[(0x0020, 0x000D, VR::UI, "")]);
    let r = e
        .archive
        .qr_find(QrModel::StudyRoot, &all, EXPLICIT, AE, None, 2)
        .await
        .unwrap();
    assert_eq!(study_uids(&r), [S2, S4]);
    assert!(r.truncated);
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    let r = e
        .archive
        .qr_find(QrModel::StudyRoot, &all, EXPLICIT, AE, None, 4)
        .await
        .unwrap();
    assert_eq!(r.matches.len(), 4);
    assert!(!r.truncated && r.warnings.is_empty());
    let r = e
        .archive
        .qr_find(QrModel::StudyRoot, &all, EXPLICIT, AE, None, 0)
        .await
        .unwrap();
    assert_eq!(r.matches.len(), 4, "0: no limit");
    let r = e
        .archive
        .qr_find(
            QrModel::PatientRoot,
            &ident("PATIENT", &[(0x0010, 0x0020, VR::LO, "")]),
            EXPLICIT,
            AE,
            None,
            1,
        )
        .await
        .unwrap();
    assert_eq!(r.matches.len(), 1);
    assert!(r.truncated);
}

#[tokio::test(flavor = "multi_thread")]
async fn retrieve_sets_at_each_level() {
    let e = populated().await;
    let s1_all: Vec<String> = [
        sops("1.2.826.0.1.7.1.1", &[1, 2, 3]),
        sops("1.2.826.0.1.7.1.2", &[1, 2]),
        sops("1.2.826.0.1.7.1.3", &[1]),
    ]
    .concat();
    let study = ident("STUDY", &[(0x0020, 0x000D, VR::UI, S1)]);
    assert_eq!(
        retrieve(&e, QrModel::StudyRoot, &study, None).await,
        s1_all,
        "series and instance order"
    );
    // Higher-level keys an SCU adds change nothing; implicit VR works too.
    let implicit = ident_ts(
        IMPLICIT,
        "STUDY",
        None,
        &[
            (0x0010, 0x0020, VR::LO, "P001"),
            (0x0020, 0x000D, VR::UI, S1),
        ],
    );
    let got = e
        .archive
        .qr_retrieve_set(QrModel::PatientRoot, &implicit, IMPLICIT, None)
        .await
        .unwrap();
    assert_eq!(got.len(), 6);
    assert!(
        got.iter()
            .all(|s| s.study_uid == S1 && !s.blob_key.is_empty())
    );

    let list = ident(
        "STUDY",
        &[(0x0020, 0x000D, VR::UI, "1.2.826.0.1.7.3\\1.2.826.0.1.7.1")],
    );
    let got = retrieve(&e, QrModel::StudyRoot, &list, None).await;
    assert_eq!(got.len(), 7);
    assert_eq!(
        got[..6],
        s1_all[..],
        "studies in catalog order (newest first)"
    );
    assert_eq!(got[6], "1.2.826.0.1.7.3.1.1");

    let series = ident("SERIES", &[(0x0020, 0x000E, VR::UI, "1.2.826.0.1.7.1.2")]);
    assert_eq!(
        retrieve(&e, QrModel::StudyRoot, &series, None).await,
        sops("1.2.826.0.1.7.1.2", &[1, 2])
    );
    let two = ident(
        "SERIES",
        &[(
            0x0020,
            0x000E,
            VR::UI,
            "1.2.826.0.1.7.1.3\\1.2.826.0.1.7.2.1",
        )],
    );
    assert_eq!(retrieve(&e, QrModel::StudyRoot, &two, None).await.len(), 3);
    let scoped = ident(
        "SERIES",
        &[
            (0x0020, 0x000D, VR::UI, S2),
            (
                0x0020,
                0x000E,
                VR::UI,
                "1.2.826.0.1.7.1.3\\1.2.826.0.1.7.2.1",
            ),
        ],
    );
    assert_eq!(
        retrieve(&e, QrModel::StudyRoot, &scoped, None).await,
        sops("1.2.826.0.1.7.2.1", &[1, 2])
    );

    let images = ident(
        "IMAGE",
        &[(
            0x0008,
            0x0018,
            VR::UI,
            "1.2.826.0.1.7.4.1.2\\1.2.826.0.1.7.1.1.3\\1.2.826.0.1.7.1.1.1",
        )],
    );
    assert_eq!(
        retrieve(&e, QrModel::StudyRoot, &images, None).await,
        [
            "1.2.826.0.1.7.4.1.2",
            "1.2.826.0.1.7.1.1.1",
            "1.2.826.0.1.7.1.1.3"
        ]
    );

    let patient = ident("PATIENT", &[(0x0010, 0x0020, VR::LO, "P001")]);
    let got = retrieve(&e, QrModel::PatientRoot, &patient, None).await;
    assert_eq!(got.len(), 10, "both P001s: S2, S4, S1");
    assert_eq!(got[..2], sops("1.2.826.0.1.7.2.1", &[1, 2])[..]);
    let with_issuer = ident(
        "PATIENT",
        &[
            (0x0010, 0x0020, VR::LO, "P001"),
            (0x0010, 0x0021, VR::LO, "SZRMYY"),
        ],
    );
    assert_eq!(
        retrieve(&e, QrModel::PatientRoot, &with_issuer, None)
            .await
            .len(),
        8
    );

    // Nothing matches: an empty set, not an error.
    let unknown = ident("STUDY", &[(0x0020, 0x000D, VR::UI, "1.2.3.4.5")]);
    assert!(
        retrieve(&e, QrModel::StudyRoot, &unknown, None)
            .await
            .is_empty()
    );

    // Missing unique keys, wildcards, levels.
    for (model, id, what) in [
        (
            QrModel::StudyRoot,
            ident("STUDY", &[(0x0010, 0x0020, VR::LO, "P001")]),
            "StudyInstanceUID",
        ),
        (
            QrModel::StudyRoot,
            ident("SERIES", &[(0x0020, 0x000D, VR::UI, S1)]),
            "SeriesInstanceUID",
        ),
        (
            QrModel::StudyRoot,
            ident("IMAGE", &[(0x0008, 0x0018, VR::UI, "*")]),
            "SOPInstanceUID",
        ),
        (
            QrModel::StudyRoot,
            ident("IMAGE", &[(0x0008, 0x0018, VR::UI, "1.2.826.0.1.7.*")]),
            "SOPInstanceUID",
        ),
        (
            QrModel::PatientRoot,
            ident("PATIENT", &[(0x0010, 0x0020, VR::LO, "P00*")]),
            "PatientID",
        ),
        (
            QrModel::PatientRoot,
            ident("PATIENT", &[(0x0010, 0x0010, VR::PN, "Zhang*")]),
            "PatientID",
        ),
        (
            QrModel::StudyRoot,
            ident("PATIENT", &[(0x0010, 0x0020, VR::LO, "P001")]),
            "PATIENT",
        ),
    ] {
        let err = e
            .archive
            .qr_retrieve_set(model, &id, EXPLICIT, None)
            .await
            .unwrap_err();
        assert_eq!(err.status, 0xA900, "{err}");
        assert!(err.message.contains(what), "{err} / {what}");
    }

    // The cap.
    let err = e
        .archive
        .qr_retrieve_set_capped(QrModel::StudyRoot, &study, EXPLICIT, None, 5)
        .await
        .unwrap_err();
    assert_eq!(err.status, 0xA700, "{err}");
    assert_eq!(
        e.archive
            .qr_retrieve_set_capped(QrModel::StudyRoot, &study, EXPLICIT, None, 6)
            .await
            .unwrap()
            .len(),
        6
    );
    let err = e
        .archive
        .qr_retrieve_set_capped(QrModel::StudyRoot, &images, EXPLICIT, None, 2)
        .await
        .unwrap_err();
    assert_eq!(err.status, 0xA700, "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn institutions_scope_queries_and_retrievals() {
    let e = populated().await;
    let all = ident("STUDY", &[(0x0020, 0x000D, VR::UI, "")]);
    let scoped = |inst: Vec<i64>| {
        let e = &e;
        let all = all.clone();
        async move {
            e.archive
                .qr_find(QrModel::StudyRoot, &all, EXPLICIT, AE, Some(inst), 100)
                .await
                .unwrap()
        }
    };
    assert_eq!(study_uids(&scoped(vec![e.szrmyy]).await), [S2, S1, S3]);
    assert_eq!(study_uids(&scoped(vec![e.glzxwsy]).await), [S4]);
    assert_eq!(
        study_uids(&scoped(vec![e.szrmyy, e.glzxwsy]).await),
        [S2, S4, S1, S3]
    );
    assert!(scoped(vec![]).await.matches.is_empty());

    let patients = ident(
        "PATIENT",
        &[(0x0010, 0x0020, VR::LO, ""), (0x0020, 0x1200, VR::IS, "")],
    );
    let r = e
        .archive
        .qr_find(
            QrModel::PatientRoot,
            &patients,
            EXPLICIT,
            AE,
            Some(vec![e.glzxwsy]),
            100,
        )
        .await
        .unwrap();
    assert_eq!(r.matches.len(), 1);
    assert_eq!(val(&r.matches[0], "00201200"), "1");

    let images = ident("IMAGE", &[(0x0020, 0x000D, VR::UI, S4)]);
    let r = e
        .archive
        .qr_find(
            QrModel::StudyRoot,
            &images,
            EXPLICIT,
            AE,
            Some(vec![e.szrmyy]),
            100,
        )
        .await
        .unwrap();
    assert!(r.matches.is_empty());

    let s4 = ident("STUDY", &[(0x0020, 0x000D, VR::UI, S4)]);
    assert!(
        retrieve(&e, QrModel::StudyRoot, &s4, Some(vec![e.szrmyy]))
            .await
            .is_empty()
    );
    assert_eq!(
        retrieve(&e, QrModel::StudyRoot, &s4, Some(vec![e.glzxwsy]))
            .await
            .len(),
        2
    );
    let sop = ident("IMAGE", &[(0x0008, 0x0018, VR::UI, "1.2.826.0.1.7.4.1.1")]);
    assert!(
        retrieve(&e, QrModel::StudyRoot, &sop, Some(vec![e.szrmyy]))
            .await
            .is_empty()
    );
    let patient = ident("PATIENT", &[(0x0010, 0x0020, VR::LO, "P001")]);
    assert_eq!(
        retrieve(&e, QrModel::PatientRoot, &patient, Some(vec![e.glzxwsy])).await,
        sops("1.2.826.0.1.7.4.1", &[1, 2])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn synthetic_studies_are_found_and_retrieved() {
    let e = env().await;
    let plans = yunying_synth::plan(&yunying_synth::SynthOptions {
        studies: 4,
        ct_slices: 3,
        rows: 32,
        columns: 32,
        institutions: vec![yunying_synth::Institution::new(
            "SZRMYY",
            "嵊州市人民医院",
            "Shengzhou People's Hospital",
        )],
        end_date: "20250601".into(),
        ..Default::default()
    });
    assert_eq!(plans.len(), 4);
    assert!(
        plans.iter().any(|p| p.series.len() > 1),
        "several series in a study"
    );
    let src = IngestSource::new("test", "synth");
    for p in &plans {
        for (_, bytes) in p.instances() {
            e.archive.ingest_bytes(&bytes, &src).await.unwrap();
        }
    }
    for p in &plans {
        // A Chinese modality's query: the ideographic name in GB18030 and the ID.
        let ideographic = p.patient_name.split('=').nth(1).unwrap();
        let id = ident_gb(
            "STUDY",
            &[
                (0x0010, 0x0010, VR::PN, ideographic),
                (0x0010, 0x0020, VR::LO, &p.patient_id),
                (0x0020, 0x000D, VR::UI, ""),
                (0x0008, 0x0061, VR::CS, ""),
                (0x0020, 0x1206, VR::IS, ""),
                (0x0020, 0x1208, VR::IS, ""),
            ],
        );
        let r = find(&e, QrModel::StudyRoot, &id).await;
        let m = r
            .matches
            .iter()
            .find(|m| val(m, "0020000D") == p.study_uid)
            .unwrap_or_else(|| panic!("study of {} not found: {:?}", p.patient_name, r.matches));
        assert_eq!(val(m, "00201206"), p.series.len().to_string());
        assert_eq!(val(m, "00201208"), p.instance_count().to_string());
        let mut modalities: Vec<String> = p.series.iter().map(|s| s.modality.clone()).collect();
        modalities.sort();
        modalities.dedup();
        assert_eq!(values(m, "00080061"), modalities);

        let move_id = ident("STUDY", &[(0x0020, 0x000D, VR::UI, &p.study_uid)]);
        let got = retrieve(&e, QrModel::StudyRoot, &move_id, None).await;
        assert_eq!(got.len(), p.instance_count());
        let first_series = &p
            .series
            .iter()
            .min_by_key(|s| s.series_number)
            .unwrap()
            .series_uid;
        let images = find(
            &e,
            QrModel::StudyRoot,
            &ident("IMAGE", &[(0x0020, 0x000E, VR::UI, first_series)]),
        )
        .await;
        assert_eq!(
            images.matches.len(),
            p.series
                .iter()
                .find(|s| &s.series_uid == first_series)
                .unwrap()
                .instance_count
        );
    }
}
