//! Retention on the real `yunying` binary: visits recorded over the API set
//! each study's retain-until date (15 years from the last outpatient visit,
//! 30 from the last discharge), the expiry report lists what has expired
//! (API and `yunying retention report`), legal holds hide studies from it
//! and block their deletion, and deletion takes a request by one
//! administrator and the approval of another, after which QIDO-RS and
//! WADO-RS no longer find the study and its files are gone from the data
//! directory. Bad input changes nothing; every step is audited. On SQLite
//! and on PostgreSQL.

use std::path::{Path, PathBuf};

use reqwest::StatusCode;
use serde_json::{Value as Json, json};
use sha2::Digest;
use yunying_dicom::write::ObjectBuilder;
use yunying_dicom::{Tag, VR};
use yunying_test_support::{PgDatabase, TestServer, multipart_body};

const BIN: &str = env!("CARGO_BIN_EXE_yunying");
const PASSWORD: &str = "Correct-Horse-42";

/// Outpatient exam of 2000, patient seen again in 2005: kept until 20200315.
const OLD: &str = "1.2.826.0.1.3680043.8.1055.88.1";
/// Inpatient exam of 1990 (Admission ID ZY1990), discharged 19900110: kept until 20200110.
const INPATIENT: &str = "1.2.826.0.1.3680043.8.1055.88.2";
/// A recent exam: kept until 2041.
const RECENT: &str = "1.2.826.0.1.3680043.8.1055.88.3";

fn ct(study: &str, patient: &str, date: &str, admission: Option<&str>) -> Vec<u8> {
    let mut b = ObjectBuilder::new("1.2.840.10008.5.1.4.1.1.2", &format!("{study}.1.1"), "1.2.840.10008.1.2.1");
    b.charset("ISO_IR 192");
    b.str(Tag(0x0010, 0x0010), VR::PN, "Wang^Wu=王^五");
    b.str(Tag(0x0010, 0x0020), VR::LO, patient);
    b.str(Tag(0x0020, 0x000D), VR::UI, study);
    b.str(Tag(0x0020, 0x000E), VR::UI, &format!("{study}.1"));
    b.str(Tag(0x0008, 0x0060), VR::CS, "CT");
    b.str(Tag(0x0008, 0x0020), VR::DA, date);
    if let Some(a) = admission {
        b.str(Tag(0x0038, 0x0010), VR::LO, a);
    }
    b.u16(Tag(0x0028, 0x0002), 1).u16(Tag(0x0028, 0x0010), 2).u16(Tag(0x0028, 0x0011), 2);
    b.u16(Tag(0x0028, 0x0100), 16).u16(Tag(0x0028, 0x0101), 12).u16(Tag(0x0028, 0x0102), 11);
    b.str(Tag(0x0028, 0x0004), VR::CS, "MONOCHROME2");
    b.pixel_data_native(vec![1, 0, 2, 0, 3, 0, 4, 0], VR::OW);
    b.to_bytes()
}

/// A signed-in browser: the session cookie and the CSRF token.
struct Browser {
    http: reqwest::Client,
    csrf: String,
    base: String,
}

impl Browser {
    async fn get(&self, path: &str) -> (StatusCode, Json) {
        let r = self.http.get(format!("{}{path}", self.base)).send().await.unwrap();
        (r.status(), r.json().await.unwrap_or_default())
    }
    async fn send(&self, method: reqwest::Method, path: &str, body: Json) -> (StatusCode, Json) {
        let r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("X-CSRF-Token", &self.csrf)
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status(), r.json().await.unwrap_or_default())
    }
    async fn post(&self, path: &str, body: Json) -> (StatusCode, Json) {
        self.send(reqwest::Method::POST, path, body).await
    }
}

async fn login(base: &str, user: &str, code: Option<&str>) -> (StatusCode, Json, Option<Browser>) {
    let r = reqwest::Client::new()
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"username": user, "password": PASSWORD, "code": code}))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("yy_session="))
        .map(|c| c.split(';').next().unwrap().to_string());
    let body: Json = r.json().await.unwrap_or_default();
    let Some(cookie) = cookie.filter(|_| status == StatusCode::OK) else { return (status, body, None) };
    let mut h = reqwest::header::HeaderMap::new();
    h.insert(reqwest::header::COOKIE, cookie.parse().unwrap());
    let http = reqwest::Client::builder().default_headers(h).build().unwrap();
    let csrf = body["csrf_token"].as_str().unwrap().to_string();
    (status, body, Some(Browser { http, csrf, base: base.to_string() }))
}

fn totp(secret: &str, offset: u64) -> String {
    let secret = yunying_security::totp::base32_decode(secret).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    yunying_security::totp::code_at(&secret, now + offset)
}

/// Signs an administrator in, enrolling the mandatory second factor.
async fn admin_login(base: &str, user: &str) -> Browser {
    let (s, body, b) = login(base, user, None).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let b = b.unwrap();
    let (_, setup) = b.post("/api/auth/totp/setup", json!({})).await;
    let secret = setup["secret"].as_str().unwrap().to_string();
    let (s, _) = b.post("/api/auth/totp/confirm", json!({"code": totp(&secret, 0)})).await;
    assert_eq!(s, StatusCode::OK);
    let (s, body, b) = login(base, user, Some(&totp(&secret, 30))).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    b.unwrap()
}

/// Every file under `dir`.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() { todo.push(p) } else { out.push(p) }
        }
    }
    out
}

fn files_named(dir: &Path, part: &str) -> Vec<PathBuf> {
    files(dir).into_iter().filter(|p| p.to_string_lossy().contains(part)).collect()
}

fn uids(v: &Json) -> Vec<&str> {
    v["studies"].as_array().unwrap().iter().map(|s| s["study_uid"].as_str().unwrap()).collect()
}

async fn qido_finds(server: &TestServer, study: &str) -> bool {
    let r = server.client().get(format!("{}/studies?StudyInstanceUID={study}", server.dicomweb())).send().await.unwrap();
    if r.status() == StatusCode::NO_CONTENT {
        return false;
    }
    assert_eq!(r.status(), StatusCode::OK);
    let body: Json = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap_or(json!([]));
    !body.as_array().unwrap().is_empty()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_holds_report_and_approved_deletion_on_sqlite() {
    scenario(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_holds_report_and_approved_deletion_on_postgres() {
    let db = PgDatabase::create("yy_retention").await;
    scenario(Some(&db)).await;
}

async fn scenario(pg: Option<&PgDatabase>) {
    let args: Vec<&str> = pg.map(|db| vec!["--catalog-url", db.url.as_str()]).unwrap_or_default();
    let server = TestServer::start(Path::new(BIN), &args, &[("YUNYING_PW", PASSWORD)]).await;
    let base = server.base.clone();
    for (user, role) in [("sysadmin", "system-admin"), ("secadmin", "security-admin"), ("auditadmin", "audit-admin")] {
        server.cli(&["user", "add", user, "--role", role, "--password-env", "YUNYING_PW"]);
    }
    server.cli(&["user", "add", "doctor", "--role", "clinician", "--institution", "DEFAULT", "--password-env", "YUNYING_PW"]);
    let old_object = ct(OLD, "RT001", "20000110", None);
    let old_sha = hex::encode(sha2::Sha256::digest(&old_object));
    let (content_type, body) = multipart_body(&[
        old_object,
        ct(INPATIENT, "RT002", "19900105", Some("ZY1990")),
        ct(RECENT, "RT003", "20260101", None),
    ]);
    let r = server.client().post(format!("{}/studies", server.dicomweb())).header("Content-Type", content_type).body(body).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    let sys = admin_login(&base, "sysadmin").await;
    let sec = admin_login(&base, "secadmin").await;
    let (s, _, doctor) = login(&base, "doctor", None).await;
    assert_eq!(s, StatusCode::OK);
    let doctor = doctor.unwrap();

    // At ingest: outpatient, 15 years from the exam.
    let (s, v) = sys.get(&format!("/api/studies/{OLD}/retention")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!((v["class"].as_str(), v["retain_until"].as_str()), (Some("O"), Some("20150110")), "{v}");

    // An outpatient visit in 2005: 15 years from it.
    let visit = json!({"institution": "DEFAULT", "patient_id": "RT001", "visit_number": "MZ2005", "class": "O", "admitted": "20050315"});
    let (s, v) = sys.post("/api/encounters", visit.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(uids(&v), vec![OLD]);
    assert_eq!(v["studies"][0]["retain_until"], "20200315");
    // Bad input is refused with a reason and changes nothing.
    for (field, bad) in [("class", json!("X")), ("admitted", json!("2005-03-15")), ("institution", json!("NOWHERE"))] {
        let mut b = visit.clone();
        // Were it accepted, this visit (2010) would extend the retention checked below.
        b["admitted"] = json!("20100101");
        b[field] = bad;
        let (s, v) = sys.post("/api/encounters", b).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{field}: {v}");
        assert!(v["error"].as_str().unwrap().contains(field), "{field}: {v}");
    }
    let (s, v) = sys.post("/api/encounters", json!({"institution": "DEFAULT", "patient_id": "RT001", "visit_number": "MZ2", "class": "I", "admitted": "20100105", "discharged": "20100101"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, _) = doctor.post("/api/encounters", visit.clone()).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a clinician does not record visits");
    assert_eq!(sys.get(&format!("/api/studies/{OLD}/retention")).await.1["retain_until"], "20200315");

    // The inpatient stay the object named: no end while admitted, 30 years from the discharge.
    let stay = json!({"institution": "DEFAULT", "patient_id": "RT002", "visit_number": "ZY1990", "class": "I", "admitted": "19900101"});
    let (s, v) = sys.post("/api/encounters", stay.clone()).await;
    assert_eq!(s, StatusCode::OK, "the visit is known from the object's Admission ID: {v}");
    assert_eq!((v["studies"][0]["class"].as_str(), &v["studies"][0]["retain_until"]), (Some("I"), &Json::Null), "{v}");
    let mut discharged = stay.clone();
    discharged["discharged"] = json!("19900110");
    let (s, v) = sys.post("/api/encounters", discharged).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["studies"][0]["retain_until"], "20200110", "{v}");

    // The expiry report: retained until a day before `before`.
    let (s, v) = sys.get("/api/retention/expired").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(uids(&v), vec![INPATIENT, OLD], "{v}");
    assert_eq!(v["total"], 2);
    let old_row = &v["studies"][1];
    assert_eq!((old_row["patient_id"].as_str(), old_row["institution"].as_str()), (Some("RT001"), Some("DEFAULT")));
    assert_eq!((old_row["class"].as_str(), old_row["study_date"].as_str()), (Some("O"), Some("20000110")));
    assert!(old_row["size_bytes"].as_i64().unwrap() > 0);
    assert_eq!(uids(&sys.get("/api/retention/expired?before=20200315").await.1), vec![INPATIENT]);
    assert_eq!(uids(&sys.get("/api/retention/expired?before=20200316").await.1), vec![INPATIENT, OLD]);
    assert_eq!(uids(&sys.get("/api/retention/expired?limit=1&offset=1").await.1), vec![OLD]);
    assert_eq!(sys.get("/api/retention/expired?before=2020").await.0, StatusCode::BAD_REQUEST);
    assert_eq!(sys.get("/api/retention/expired?limit=0").await.0, StatusCode::BAD_REQUEST);
    assert_eq!(doctor.get("/api/retention/expired").await.0, StatusCode::FORBIDDEN);
    // The same report on the command line.
    let csv = server.cli(&["retention", "report", "--before", "20991231", "--format", "csv"]);
    assert!(csv.starts_with("study_uid,patient_id,issuer,institution,class,study_date,retain_until,size_bytes\n"), "{csv}");
    assert!(csv.contains(&format!("{OLD},RT001,DEFAULT,DEFAULT,O,20000110,20200315,")), "{csv}");
    assert!(csv.contains(&format!("{RECENT},RT003,")), "{csv}");
    let table = server.cli(&["retention", "report"]);
    assert!(table.contains(OLD) && table.contains("2 expired studies") && !table.contains(RECENT), "{table}");
    let (ok, _, err) = server.cli_result(&["retention", "report", "--format", "xml"]);
    assert!(!ok && err.contains("csv"), "{err}");

    // A legal hold: off the report, not deletable, until released.
    let hold = format!("/api/studies/{OLD}/legal-hold");
    assert_eq!(sys.post(&hold, json!({"reason": " "})).await.0, StatusCode::BAD_REQUEST);
    let (s, v) = sys.post(&hold, json!({"reason": "医疗纠纷 2026-17"})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["placed_by"], "user:sysadmin");
    assert_eq!(sys.post(&hold, json!({"reason": "again"})).await.0, StatusCode::CONFLICT);
    assert_eq!(uids(&sys.get("/api/retention/expired").await.1), vec![INPATIENT]);
    let (s, v) = sys.post("/api/retention/deletions", json!({"study_uids": [OLD], "note": "review"})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(v["refused"][0]["reason"].as_str().unwrap().contains("legal hold"), "{v}");
    let (s, v) = sec.send(reqwest::Method::DELETE, &hold, json!({"reason": "dispute settled"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["released_by"], "user:secadmin");
    let (_, v) = sys.get(&format!("/api/studies/{OLD}/retention")).await;
    assert_eq!((v["legal_hold"].as_bool(), v["holds"][0]["release_reason"].as_str()), (Some(false), Some("dispute settled")));
    assert_eq!(uids(&sys.get("/api/retention/expired").await.1), vec![INPATIENT, OLD]);

    // A recent study cannot be requested; a request with one is refused whole.
    let (s, v) = sys.post("/api/retention/deletions", json!({"study_uids": [RECENT], "note": "review"})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(v["refused"][0]["reason"].as_str().unwrap().contains("retained until 20410101"), "{v}");
    let (s, v) = sys.post("/api/retention/deletions", json!({"study_uids": [OLD, RECENT], "note": "review"})).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(v["refused"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(sys.post("/api/retention/deletions", json!({"study_uids": ["not a uid"], "note": "x"})).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(sys.post("/api/retention/deletions", json!({"study_uids": [OLD], "note": ""})).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(sys.get("/api/retention/deletions").await.1["requests"], json!([]), "nothing was recorded");

    // Requested by one administrator...
    assert_eq!(sec.post("/api/retention/deletions", json!({"study_uids": [OLD], "note": "x"})).await.0, StatusCode::FORBIDDEN);
    let (s, req) = sys.post("/api/retention/deletions", json!({"study_uids": [OLD], "note": "2026 retention review"})).await;
    assert_eq!(s, StatusCode::CREATED, "{req}");
    assert_eq!((req["state"].as_str(), req["requested_by"].as_str()), (Some("requested"), Some("user:sysadmin")));
    let id = req["id"].as_i64().unwrap();
    // ...never approved by the same one...
    let (s, v) = sys.post(&format!("/api/retention/deletions/{id}/approve"), json!({})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert!(qido_finds(&server, OLD).await);
    // Its derived streaming copy exists by now (made in the background).
    let derived = format!("htj2k-rpcl/{}/{old_sha}", &old_sha[..2]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while files_named(&server.data, &derived).is_empty() {
        assert!(std::time::Instant::now() < deadline, "no streaming copy was made");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(files_named(&server.data, &format!("{OLD}.1.1.")).len(), 1, "the original object is on disk");
    // ...approved by another.
    let (s, done) = sec.post(&format!("/api/retention/deletions/{id}/approve"), json!({"note": "checked"})).await;
    assert_eq!(s, StatusCode::OK, "{done}");
    assert_eq!((done["state"].as_str(), done["decided_by"].as_str()), (Some("done"), Some("user:secadmin")), "{done}");
    assert_eq!(done["studies"][0]["state"], "deleted");
    assert_eq!(sec.post(&format!("/api/retention/deletions/{id}/approve"), json!({})).await.0, StatusCode::CONFLICT);

    // Gone: QIDO-RS, WADO-RS, the data directory.
    assert!(!qido_finds(&server, OLD).await);
    let r = server.client().get(format!("{}/studies/{OLD}", server.dicomweb())).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(files_named(&server.data, &format!("{OLD}.1.1.")).is_empty(), "the original object is deleted");
    assert!(files_named(&server.data, &derived).is_empty(), "the streaming copy is deleted");
    assert!(qido_finds(&server, RECENT).await && qido_finds(&server, INPATIENT).await);
    assert_eq!(sys.get(&format!("/api/studies/{OLD}/retention")).await.0, StatusCode::NOT_FOUND);

    // A request can be rejected: nothing happens to the study.
    let (s, req) = sys.post("/api/retention/deletions", json!({"study_uids": [INPATIENT], "note": "2026 retention review"})).await;
    assert_eq!(s, StatusCode::CREATED, "{req}");
    let id2 = req["id"].as_i64().unwrap();
    assert_eq!(sec.post(&format!("/api/retention/deletions/{id2}/reject"), json!({})).await.0, StatusCode::BAD_REQUEST, "a rejection says why");
    let (s, v) = sec.post(&format!("/api/retention/deletions/{id2}/reject"), json!({"note": "needed for a follow-up study"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "rejected");
    assert!(qido_finds(&server, INPATIENT).await);
    let (_, list) = sec.get("/api/retention/deletions").await;
    let states: Vec<&str> = list["requests"].as_array().unwrap().iter().map(|r| r["state"].as_str().unwrap()).collect();
    assert_eq!(states, vec!["rejected", "done"]);
    assert_eq!(sec.get("/api/retention/deletions/99999").await.0, StatusCode::NOT_FOUND);

    // The audit trail has every step, the deletion with its IOCM reason code.
    let aud = admin_login(&base, "auditadmin").await;
    let (s, v) = aud.get("/api/audit?action=delete").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let deletions = v["records"].as_array().unwrap();
    assert_eq!(deletions.len(), 1, "{v}");
    let e = &deletions[0]["event"];
    assert_eq!((e["outcome"].as_str(), e["studies"][0].as_str()), (Some("success"), Some(OLD)), "{e}");
    assert_eq!(e["detail"]["reason_code"], "113039");
    assert_eq!(e["patient"]["id"], "RT001");
    for (action, n) in [
        ("encounter-recorded", 3),
        ("legal-hold-placed", 2),
        ("legal-hold-released", 1),
        ("deletion-approved", 1),
        ("deletion-rejected", 1),
    ] {
        let (_, v) = aud.get(&format!("/api/audit?action={action}")).await;
        assert_eq!(v["records"].as_array().unwrap().len(), n, "{action}: {v}");
    }
    let (_, v) = aud.get("/api/audit?action=deletion-requested").await;
    let outcomes: Vec<&str> = v["records"].as_array().unwrap().iter().map(|r| r["event"]["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes.iter().filter(|o| **o == "success").count(), 2, "{outcomes:?}");
    assert!(outcomes.contains(&"minor-failure"), "refusals are recorded too: {outcomes:?}");
}
