//! Identity, access control and audit on the real `yunying` binary, over
//! HTTP (and DIMSE with DCMTK), on both catalog backends: 401 without a
//! credential, the role × action × scope matrix, grants, token scopes,
//! OAuth2 client credentials, lockout, idle timeout, TOTP, CSRF, rate
//! limits, the audit trail (every access recorded; `yunying audit verify`
//! catching an edited, a deleted and a truncated record; syslog), and no
//! clear-text national ID or phone number anywhere in the catalog's tables.

use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value as Json, json};
use yunying_dicom::write::ObjectBuilder;
use yunying_dicom::{Tag, VR};
use yunying_test_support::{PgDatabase, TestServer, multipart_body};

const BIN: &str = env!("CARGO_BIN_EXE_yunying");
const PASSWORD: &str = "Correct-Horse-42";
const PHONE: &str = "13912345678";
const NATIONAL_ID: &str = "11010519491231002X";

/// A CT object of `study`, with personal data the catalog must not hold in clear.
fn ct(study: &str, sop: &str, patient: &str) -> Vec<u8> {
    let mut b = ObjectBuilder::new("1.2.840.10008.5.1.4.1.1.2", sop, "1.2.840.10008.1.2.1");
    b.charset("ISO_IR 192");
    b.str(Tag(0x0010, 0x0010), VR::PN, "Zhang^San=张^三");
    b.str(Tag(0x0010, 0x0020), VR::LO, patient);
    b.str(Tag(0x0010, 0x1000), VR::LO, NATIONAL_ID);
    b.str(Tag(0x0010, 0x2154), VR::SH, PHONE);
    b.str(Tag(0x0010, 0x1040), VR::LO, "浙江省嵊州市鹿山街道100号");
    b.str(Tag(0x0020, 0x000D), VR::UI, study);
    b.str(Tag(0x0020, 0x000E), VR::UI, &format!("{study}.1"));
    b.str(Tag(0x0008, 0x0060), VR::CS, "CT");
    b.str(Tag(0x0008, 0x0020), VR::DA, "20261120");
    b.u16(Tag(0x0028, 0x0002), 1).u16(Tag(0x0028, 0x0010), 2).u16(Tag(0x0028, 0x0011), 2);
    b.u16(Tag(0x0028, 0x0100), 16).u16(Tag(0x0028, 0x0101), 12).u16(Tag(0x0028, 0x0102), 11);
    b.str(Tag(0x0028, 0x0004), VR::CS, "MONOCHROME2");
    b.pixel_data_native(vec![1, 0, 2, 0, 3, 0, 4, 0], VR::OW);
    b.to_bytes()
}

const TOWN_STUDY: &str = "1.2.826.0.1.3680043.8.1055.77.1";
const OTHER_STUDY: &str = "1.2.826.0.1.3680043.8.1055.77.2";

fn bearer(token: &str) -> reqwest::Client {
    let mut h = reqwest::header::HeaderMap::new();
    h.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
    reqwest::Client::builder().default_headers(h).build().unwrap()
}

async fn stow(client: &reqwest::Client, base: &str, parts: &[Vec<u8>]) -> StatusCode {
    let (ct, body) = multipart_body(parts);
    client.post(format!("{base}/studies")).header("Content-Type", ct).body(body).send().await.unwrap().status()
}

/// A signed-in browser: the session cookie and the CSRF token.
struct Browser {
    http: reqwest::Client,
    csrf: String,
    base: String,
}

impl Browser {
    async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(format!("{}{path}", self.base)).send().await.unwrap()
    }
    async fn post(&self, path: &str, body: Json) -> reqwest::Response {
        self.http.post(format!("{}{path}", self.base)).header("X-CSRF-Token", &self.csrf).json(&body).send().await.unwrap()
    }
    async fn patch(&self, path: &str, body: Json) -> reqwest::Response {
        self.http.patch(format!("{}{path}", self.base)).header("X-CSRF-Token", &self.csrf).json(&body).send().await.unwrap()
    }
}

/// Logs in (no cookie store in reqwest's default features: the cookie is carried by hand).
async fn login(base: &str, user: &str, password: &str, code: Option<&str>) -> (StatusCode, Json, Option<Browser>) {
    let r = reqwest::Client::new()
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"username": user, "password": password, "code": code}))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let cookies: Vec<String> =
        r.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect();
    let body: Json = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap_or_default();
    if status != StatusCode::OK {
        return (status, body, None);
    }
    let session = cookies.iter().find(|c| c.starts_with("yy_session=")).expect("session cookie");
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Strict"), "{session}");
    let value = session.split(';').next().unwrap().to_string();
    let mut h = reqwest::header::HeaderMap::new();
    h.insert(reqwest::header::COOKIE, value.parse().unwrap());
    let http = reqwest::Client::builder().default_headers(h).build().unwrap();
    let csrf = body["csrf_token"].as_str().unwrap().to_string();
    (status, body.clone(), Some(Browser { http, csrf, base: base.to_string() }))
}

fn totp_at(secret_b32: &str, offset_secs: u64) -> String {
    let secret = yunying_security::totp::base32_decode(secret_b32).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    yunying_security::totp::code_at(&secret, now + offset_secs)
}

fn totp_now(secret_b32: &str) -> String {
    totp_at(secret_b32, 0)
}

/// Signs an administrator in, enrolling the second factor on the way.
async fn admin_login(base: &str, user: &str) -> Browser {
    let (s, body, b) = login(base, user, PASSWORD, None).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(body["pending"].as_array().unwrap().iter().any(|p| p == "enrol-second-factor"), "{body}");
    let b = b.unwrap();
    // Nothing but finishing the sign-in is open yet.
    assert_eq!(b.get("/dicom-web/studies").await.status(), StatusCode::FORBIDDEN);
    let setup: Json = b.post("/api/auth/totp/setup", json!({})).await.json().await.unwrap();
    let secret = setup["secret"].as_str().unwrap().to_string();
    assert!(setup["otpauth_uri"].as_str().unwrap().starts_with("otpauth://totp/"));
    let r = b.post("/api/auth/totp/confirm", json!({"code": totp_now(&secret)})).await;
    assert_eq!(r.status(), StatusCode::OK);
    // A session cannot replace (and so switch off) an enrolled second factor.
    assert_eq!(b.post("/api/auth/totp/setup", json!({})).await.status(), StatusCode::CONFLICT);
    // A fresh sign-in now needs the code.
    let (s, body, _) = login(base, user, PASSWORD, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(body["second_factor_required"], true);
    // The confirmation used this step's code: it cannot be used again.
    let now_code = totp_now(&secret);
    let (s, body, _) = login(base, user, PASSWORD, Some(&now_code)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "a used code is refused: {body}");
    let (s, _, _) = login(base, user, PASSWORD, Some("000000")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // The next step's code (within the accepted clock drift) signs in.
    let (s, body, b) = login(base, user, PASSWORD, Some(&totp_at(&secret, 30))).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(body["pending"].as_array().unwrap().is_empty(), "{body}");
    b.unwrap()
}

/// Institutions, users, tokens and two studies (one per member institution).
struct Region {
    server: TestServer,
}

async fn region(extra: &[&str], pg: Option<&PgDatabase>) -> Region {
    let mut args: Vec<&str> = extra.to_vec();
    if let Some(db) = pg {
        args.extend(["--catalog-url", db.url.as_str()]);
    }
    let server = TestServer::start(std::path::Path::new(BIN), &args, &[("YUNYING_PW", PASSWORD)]).await;
    server.cli(&["institution", "add", "CENTRE", "--name-zh", "会诊中心", "--regional"]);
    server.cli(&["institution", "add", "TOWN", "--name-zh", "甘霖镇中心卫生院"]);
    server.cli(&["institution", "add", "OTHER", "--name-zh", "仙岩镇卫生院"]);
    for (user, role, inst) in [
        ("sysadmin", "system-admin", None),
        ("secadmin", "security-admin", None),
        ("auditadmin", "audit-admin", None),
        ("townadmin", "institution-admin", Some("TOWN")),
        ("centre-rad", "radiologist", Some("CENTRE")),
        ("doctor", "clinician", Some("TOWN")),
        ("tech", "technician", Some("TOWN")),
    ] {
        let mut a = vec!["user", "add", user, "--role", role, "--password-env", "YUNYING_PW"];
        if let Some(i) = inst {
            a.extend(["--institution", i]);
        }
        server.cli(&a);
    }
    // Each member institution's modality stores its own study.
    for (inst, study, pid) in [("TOWN", TOWN_STUDY, "GL001"), ("OTHER", OTHER_STUDY, "XY001")] {
        let token = server.cli(&["token", "create", "--name", &format!("{inst} modality"), "--institution", inst, "--actions", "store"]);
        let c = bearer(token.trim());
        assert_eq!(stow(&c, &server.dicomweb(), &[ct(study, &format!("{study}.1.1"), pid)]).await, StatusCode::OK);
    }
    Region { server }
}

fn uids(v: &Json) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["0020000D"]["Value"][0].as_str().map(String::from)).collect())
        .unwrap_or_default();
    out.sort();
    out
}

async fn qido(b: &Browser) -> (StatusCode, Vec<String>) {
    let r = b.get("/dicom-web/studies").await;
    let s = r.status();
    let body = r.bytes().await.unwrap();
    (s, if body.is_empty() { vec![] } else { uids(&serde_json::from_slice(&body).unwrap_or_default()) })
}

async fn matrix(pg: Option<&PgDatabase>) {
    let reg = region(&[], pg).await;
    let base = reg.server.base.clone();
    let dw = reg.server.dicomweb();

    // No credential: 401 on every data and administration endpoint; /healthz is open.
    let anon = reqwest::Client::new();
    for path in [
        "/dicom-web/studies",
        &format!("/dicom-web/studies/{TOWN_STUDY}/metadata"),
        "/api/users",
        "/api/audit",
        "/api/institutions",
        "/api/auth/me",
    ] {
        let resp = anon.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert!(resp.headers().get("www-authenticate").is_some(), "{path}");
    }
    assert_eq!(bearer("yyt_forged").get(format!("{base}/dicom-web/studies")).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let health = anon.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.headers()["x-content-type-options"], "nosniff");
    assert_eq!(health.headers()["x-frame-options"], "DENY");

    let login_ok = |u: &'static str| {
        let base = base.clone();
        async move {
            let (s, body, b) = login(&base, u, PASSWORD, None).await;
            assert_eq!(s, StatusCode::OK, "{u}: {body}");
            b.unwrap()
        }
    };
    let doctor = login_ok("doctor").await;
    let tech = login_ok("tech").await;
    let rad = login_ok("centre-rad").await;
    let sys = admin_login(&base, "sysadmin").await;
    let sec = admin_login(&base, "secadmin").await;
    let aud = admin_login(&base, "auditadmin").await;
    let inst_admin = admin_login(&base, "townadmin").await;

    // Query: own institution for the town's staff, the region for the centre's radiologist, nothing for administrators.
    assert_eq!(qido(&doctor).await, (StatusCode::OK, vec![TOWN_STUDY.to_string()]));
    assert_eq!(qido(&tech).await, (StatusCode::OK, vec![TOWN_STUDY.to_string()]));
    assert_eq!(qido(&rad).await, (StatusCode::OK, vec![TOWN_STUDY.to_string(), OTHER_STUDY.to_string()]));
    for admin in [&sys, &sec, &aud, &inst_admin] {
        assert_eq!(qido(admin).await.0, StatusCode::FORBIDDEN);
    }

    // Identifiers held only encrypted stay searchable through their blind
    // index (in a body, never in a URL), within the caller's scope.
    let by_id: Json = doctor.post("/api/patients/search", json!({"national_id": NATIONAL_ID.to_lowercase()})).await.json().await.unwrap();
    assert_eq!(uids(&by_id["studies"]), vec![TOWN_STUDY.to_string()], "{by_id}");
    let by_phone: Json = rad.post("/api/patients/search", json!({"phone": "+86 139-1234-5678"})).await.json().await.unwrap();
    assert_eq!(uids(&by_phone["studies"]), vec![TOWN_STUDY.to_string(), OTHER_STUDY.to_string()]);
    let none: Json = rad.post("/api/patients/search", json!({"phone": "13800000000"})).await.json().await.unwrap();
    assert!(none["studies"].as_array().unwrap().is_empty());
    assert_eq!(sys.post("/api/patients/search", json!({"phone": PHONE})).await.status(), StatusCode::FORBIDDEN);

    // Read: a wrong-institution doctor gets 403.
    let town_meta = format!("/dicom-web/studies/{TOWN_STUDY}/metadata");
    let other_meta = format!("/dicom-web/studies/{OTHER_STUDY}/metadata");
    assert_eq!(doctor.get(&town_meta).await.status(), StatusCode::OK);
    assert_eq!(doctor.get(&other_meta).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(rad.get(&other_meta).await.status(), StatusCode::OK);
    assert_eq!(sys.get(&town_meta).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(aud.get(&town_meta).await.status(), StatusCode::FORBIDDEN);
    // The personal data taken out of the catalog is not in the metadata either.
    let meta = doctor.get(&town_meta).await.text().await.unwrap();
    assert!(!meta.contains(PHONE) && !meta.contains(NATIONAL_ID), "{meta}");

    // Store: technicians may, into their own institution; clinicians may not (STOW by cookie needs CSRF).
    let (ct_header, body) = multipart_body(&[ct("1.2.826.0.1.3680043.8.1055.77.3", "1.2.826.0.1.3680043.8.1055.77.3.1.1", "GL002")]);
    let no_csrf = tech.http.post(format!("{base}/dicom-web/studies")).header("Content-Type", &ct_header).body(body.clone()).send().await.unwrap();
    assert_eq!(no_csrf.status(), StatusCode::FORBIDDEN, "STOW without the CSRF token");
    let stored = tech
        .http
        .post(format!("{base}/dicom-web/studies"))
        .header("Content-Type", &ct_header)
        .header("X-CSRF-Token", &tech.csrf)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(stored.status(), StatusCode::OK);
    let refused = doctor
        .http
        .post(format!("{base}/dicom-web/studies"))
        .header("Content-Type", &ct_header)
        .header("X-CSRF-Token", &doctor.csrf)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    // Administration is split three ways (三员分立).
    assert_eq!(sec.get("/api/users").await.status(), StatusCode::OK);
    for b in [&sys, &aud, &doctor, &rad] {
        assert_eq!(b.get("/api/users").await.status(), StatusCode::FORBIDDEN);
    }
    let town_users: Json = inst_admin.get("/api/users").await.json().await.unwrap();
    let names: Vec<&str> = town_users["users"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert!(names.contains(&"doctor") && !names.contains(&"centre-rad"), "{names:?}");
    assert_eq!(aud.get("/api/audit").await.status(), StatusCode::OK);
    for b in [&sys, &sec, &doctor] {
        assert_eq!(b.get("/api/audit").await.status(), StatusCode::FORBIDDEN);
    }
    let inst = json!({"code": "NEWCLINIC", "name_zh": "新诊所"});
    assert_eq!(sys.post("/api/institutions", inst.clone()).await.status(), StatusCode::CREATED);
    assert_eq!(sec.post("/api/institutions", inst).await.status(), StatusCode::FORBIDDEN);
    // The security administrator creates accounts, but not another platform administrator.
    let new_user = json!({"username": "nurse1", "roles": ["clinician"], "institution": "TOWN", "password": "Another-Pass-77"});
    assert_eq!(sec.post("/api/users", new_user.clone()).await.status(), StatusCode::CREATED);
    assert_eq!(sys.post("/api/users", new_user).await.status(), StatusCode::FORBIDDEN);
    let (st, _, _) = login(&base, "nurse1", "Another-Pass-77", None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(sec.patch("/api/users/nurse1", json!({"disabled": true})).await.status(), StatusCode::OK);
    let (st, _, _) = login(&base, "nurse1", "Another-Pass-77", None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "a disabled account cannot sign in");
    let audit_admin = json!({"username": "aud2", "roles": ["audit-admin"], "password": "Another-Pass-77"});
    assert_eq!(sec.post("/api/users", audit_admin).await.status(), StatusCode::FORBIDDEN);
    let mixed = json!({"username": "x1", "roles": ["security-admin", "radiologist"], "password": "Another-Pass-77"});
    assert_eq!(sec.post("/api/users", mixed).await.status(), StatusCode::BAD_REQUEST);
    let weak = json!({"username": "weak", "roles": ["clinician"], "institution": "TOWN", "password": "abc123"});
    let weak = sec.post("/api/users", weak).await;
    assert_eq!(weak.status(), StatusCode::BAD_REQUEST);
    assert!(weak.text().await.unwrap().contains("密码"), "the refusal is also in Chinese");
    // An institution administrator manages their own institution's clinical accounts only.
    let other_inst = json!({"username": "x2", "roles": ["clinician"], "institution": "OTHER", "password": "Another-Pass-77"});
    assert_eq!(inst_admin.post("/api/users", other_inst).await.status(), StatusCode::FORBIDDEN);

    // A grant opens one study of another institution to one doctor.
    assert_eq!(
        sec.post("/api/grants", json!({"study_uid": OTHER_STUDY, "kind": "consultation", "user": "doctor", "reason": "会诊"})).await.status(),
        StatusCode::CREATED
    );
    let doctor = login_ok("doctor").await;
    assert_eq!(doctor.get(&other_meta).await.status(), StatusCode::OK);
    assert_eq!(qido(&doctor).await.1.len(), 3, "own two studies and the granted one");

    // Revoking the grant closes the study again.
    let grants: Json = aud.get(&format!("/api/audit?action=grant-created&study={OTHER_STUDY}")).await.json().await.unwrap();
    assert!(!grants["records"].as_array().unwrap().is_empty());
    let revoked = sec.http.delete(format!("{base}/api/grants/1")).header("X-CSRF-Token", &sec.csrf).send().await.unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    assert_eq!(doctor.get(&other_meta).await.status(), StatusCode::FORBIDDEN);
    let revoked = doctor.http.delete(format!("{base}/api/grants/1")).header("X-CSRF-Token", &doctor.csrf).send().await.unwrap();
    assert_eq!(revoked.status(), StatusCode::FORBIDDEN, "only the security administrator revokes");

    // A lost phone: the security administrator removes the second factor; enrolment is asked again.
    assert_eq!(sec.patch("/api/users/townadmin", json!({"reset_second_factor": true})).await.status(), StatusCode::OK);
    let (st, body, _) = login(&base, "townadmin", PASSWORD, None).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert!(body["pending"].as_array().unwrap().iter().any(|p| p == "enrol-second-factor"), "{body}");

    // Token scopes: an institution and a set of actions.
    let created: Json = sec
        .post("/api/credentials", json!({"name": "HIS query", "institution": "TOWN", "actions": ["query"]}))
        .await
        .json()
        .await
        .unwrap();
    let his = bearer(created["token"].as_str().unwrap());
    let r = his.get(format!("{base}/dicom-web/studies")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(uids(&r.json().await.unwrap()).iter().all(|u| u != OTHER_STUDY));
    assert_eq!(his.get(format!("{base}{town_meta}")).send().await.unwrap().status(), StatusCode::FORBIDDEN, "no read action");
    assert_eq!(stow(&his, &dw, &[ct(TOWN_STUDY, "1.2.9.9", "GL001")]).await, StatusCode::FORBIDDEN);
    assert_eq!(sys.post("/api/credentials", json!({"name": "x", "actions": ["read"]})).await.status(), StatusCode::FORBIDDEN);
    let admin_token = sec.post("/api/credentials", json!({"name": "x", "actions": ["manage-users"]})).await;
    assert_eq!(admin_token.status(), StatusCode::BAD_REQUEST, "administration stays with people");

    // OAuth2 client credentials for a service account.
    let client: Json = sec
        .post("/api/credentials", json!({"kind": "client", "name": "AI server", "actions": ["query", "read"]}))
        .await
        .json()
        .await
        .unwrap();
    let (id, secret) = (client["client_id"].as_str().unwrap(), client["client_secret"].as_str().unwrap());
    let tok = anon
        .post(format!("{base}/oauth/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(tok.status(), StatusCode::OK);
    let tok: Json = tok.json().await.unwrap();
    assert_eq!(tok["token_type"], "Bearer");
    let ai = bearer(tok["access_token"].as_str().unwrap());
    assert_eq!(ai.get(format!("{base}{other_meta}")).send().await.unwrap().status(), StatusCode::OK);
    let bad = anon
        .post(format!("{base}/oauth/token"))
        .form(&[("grant_type", "client_credentials"), ("client_id", id), ("client_secret", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(bearer(secret).get(format!("{base}/dicom-web/studies")).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    // Revoking the client ends its access tokens.
    assert_eq!(sec.http.delete(format!("{base}/api/credentials/{id}")).header("X-CSRF-Token", &sec.csrf).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(ai.get(format!("{base}/dicom-web/studies")).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);

    // Every access above is in the audit trail, with who, what, which patient and study, from where, and the outcome.
    let audit = |q: String| {
        let aud = &aud;
        async move {
            let r: Json = aud.get(&format!("/api/audit?{q}")).await.json().await.unwrap();
            r["records"].as_array().unwrap().clone()
        }
    };
    let reads = audit(format!("actor=user:doctor&action=read&study={TOWN_STUDY}")).await;
    assert!(!reads.is_empty(), "the doctor's read is recorded");
    let e = &reads[0]["event"];
    assert_eq!(e["outcome"], "success");
    assert_eq!(e["patient"]["id"], "GL001");
    assert_eq!(e["source"], "127.0.0.1");
    assert_eq!(e["actor"]["institution"], "TOWN");
    let denied = audit("actor=user:doctor&action=access-denied".into()).await;
    assert!(denied.iter().any(|r| r["event"]["studies"][0] == OTHER_STUDY), "the refused read is recorded");
    assert!(!audit("actor=user:doctor&action=query".into()).await.is_empty());
    assert!(!audit("actor=user:tech&action=store".into()).await.is_empty());
    assert!(!audit("action=login".into()).await.is_empty());
    assert!(!audit("action=user-created".into()).await.is_empty());
    assert!(!audit("action=grant-created".into()).await.is_empty());
    assert!(!audit("action=token-revoked".into()).await.is_empty());
    assert!(!audit("action=grant-revoked".into()).await.is_empty());
    assert!(!audit("action=application-start".into()).await.is_empty());
    let reads_other = audit(format!("actor=user:centre-rad&study={OTHER_STUDY}")).await;
    assert!(reads_other.iter().any(|r| r["event"]["action"] == "read"));
    // Exports: DICOM PS3.15 and FHIR AuditEvent.
    let xml = aud.get("/api/audit?format=dicom&limit=5").await.text().await.unwrap();
    assert!(xml.contains("<AuditMessage") && xml.contains("EventIdentification"), "{xml}");
    let fhir: Json = aud.get("/api/audit?format=fhir&limit=5").await.json().await.unwrap();
    assert_eq!(fhir["resourceType"], "Bundle");
    assert_eq!(fhir["entry"][0]["resource"]["resourceType"], "AuditEvent");
    // The whole trail verifies.
    let v: Json = aud.get("/api/audit/verify").await.json().await.unwrap();
    assert_eq!(v["clean"], true, "{v}");
    assert!(!serde_json::to_string(&audit("limit=1000".into()).await).unwrap().contains(PHONE));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_action_scope_matrix_on_sqlite() {
    matrix(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_action_scope_matrix_on_postgres() {
    let db = PgDatabase::create("yy_security").await;
    matrix(Some(&db)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockout_idle_timeout_rate_limit_and_password_change() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("yunying.toml");
    std::fs::write(
        &config,
        "[server]\ntrusted_proxies = [\"127.0.0.1\"]\n[security]\nmax_failed_logins = 3\nlock_minutes = 5\nsession_idle_seconds = 2\ncredential_cache_seconds = 0\nlogin_attempts_per_minute = 8\n",
    )
    .unwrap();
    let r = region(&["--config", config.to_str().unwrap()], None).await;
    let base = r.server.base.clone();

    // Three wrong passwords lock the account; then even the right one is refused.
    for i in 1..=3 {
        let (s, _, _) = login(&base, "doctor", "Wrong-Password-1", None).await;
        assert_eq!(s, if i < 3 { StatusCode::UNAUTHORIZED } else { StatusCode::LOCKED }, "attempt {i}");
    }
    let (s, body, _) = login(&base, "doctor", PASSWORD, None).await;
    assert_eq!(s, StatusCode::LOCKED, "{body}");
    assert!(body["locked_until"].as_i64().is_some());
    r.server.cli(&["user", "unlock", "doctor"]);
    let (s, _, b) = login(&base, "doctor", PASSWORD, None).await;
    assert_eq!(s, StatusCode::OK);
    let b = b.unwrap();
    assert_eq!(b.get("/api/auth/me").await.status(), StatusCode::OK);

    // CSRF: a state-changing request with the cookie but without the token is refused.
    let r1 = b.http.post(format!("{base}/api/auth/password")).json(&json!({"current": PASSWORD, "new": "New-Password-99"})).send().await.unwrap();
    assert_eq!(r1.status(), StatusCode::FORBIDDEN);
    let r2 = b.post("/api/auth/password", json!({"current": PASSWORD, "new": "short"})).await;
    assert_eq!(r2.status(), StatusCode::BAD_REQUEST, "weak passwords are refused");
    let r3 = b.post("/api/auth/password", json!({"current": PASSWORD, "new": "New-Password-99"})).await;
    assert_eq!(r3.status(), StatusCode::OK);

    // Idle timeout: two seconds without a request end the session.
    tokio::time::sleep(Duration::from_millis(2600)).await;
    assert_eq!(b.get("/api/auth/me").await.status(), StatusCode::UNAUTHORIZED);

    // Logging out ends a session at once.
    let (_, _, b) = login(&base, "doctor", "New-Password-99", None).await;
    let b = b.unwrap();
    assert_eq!(b.post("/api/auth/logout", json!({})).await.status(), StatusCode::OK);
    assert_eq!(b.get("/api/auth/me").await.status(), StatusCode::UNAUTHORIZED);

    // Behind a trusted proxy (the gateway), the client is the forwarded address.
    let via_gateway = reqwest::Client::new()
        .post(format!("{base}/api/auth/login"))
        .header("X-Forwarded-For", "203.0.113.9")
        .json(&json!({"username": "tech", "password": "Wrong-Password-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(via_gateway.status(), StatusCode::UNAUTHORIZED);

    // Rate limit on sign-in: past 8 attempts a minute from one address, 429 with Retry-After.
    let mut limited = None;
    for _ in 0..10 {
        let r = reqwest::Client::new()
            .post(format!("{base}/api/auth/login"))
            .json(&json!({"username": "tech", "password": "nope"}))
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(r.headers().get("retry-after").cloned());
            break;
        }
    }
    assert!(limited.flatten().is_some(), "sign-in attempts are rate limited");

    // Failed and successful logins and the lock are in the audit trail (read offline here).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let out = r.server.cli(&["audit", "export", "--format", "json", "--actor", "user:doctor"]);
    for action in ["\"login-failed\"", "\"account-locked\"", "\"login\"", "\"password-changed\"", "\"session-expired\"", "\"logout\""] {
        assert!(out.contains(action), "{action} missing from the trail");
    }
    let tech = r.server.cli(&["audit", "export", "--format", "json", "--actor", "user:tech"]);
    assert!(tech.contains("\"source\":\"203.0.113.9\""), "{tech}");
}

/// Runs SQL on the test catalog as an attacker with database access would.
fn sql(server: &TestServer, pg: Option<&PgDatabase>, statement: &str) -> String {
    let out = match pg {
        Some(db) => Command::new("psql").args([db.url.as_str(), "-v", "ON_ERROR_STOP=1", "-At", "-c", statement]).output().unwrap(),
        None => Command::new("python3")
            .args([
                "-c",
                "import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nfor s in sys.argv[2].split(';'):\n  s=s.strip()\n  if s:\n    for r in c.execute(s): print('|'.join(map(str,r)))\nc.commit()",
                server.data.join("catalog.db").to_str().unwrap(),
                statement,
            ])
            .output()
            .unwrap(),
    };
    assert!(out.status.success(), "{statement}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Every byte of the catalog, as a dump.
fn dump(server: &TestServer, pg: Option<&PgDatabase>) -> String {
    let out = match pg {
        Some(db) => Command::new("pg_dump").args(["--data-only", db.url.as_str()]).output().unwrap(),
        None => Command::new("python3")
            .args([
                "-c",
                "import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nfor l in c.iterdump(): print(l)",
                server.data.join("catalog.db").to_str().unwrap(),
            ])
            .output()
            .unwrap(),
    };
    assert!(out.status.success(), "dump: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}

async fn tampering_and_personal_data(pg: Option<&PgDatabase>) {
    let r = region(&[], pg).await;
    let server = &r.server;
    let c = server.client();
    // Some reads, so the chain has records.
    for _ in 0..3 {
        assert_eq!(c.get(format!("{}/studies", server.dicomweb())).send().await.unwrap().status(), StatusCode::OK);
    }

    // No national ID or phone number in clear anywhere in the catalog (the
    // test token's reads above included), but both are held encrypted.
    let all = dump(server, pg);
    assert!(all.contains("GL001"), "the dump is real");
    for secret in [PHONE, NATIONAL_ID, "鹿山街道100号"] {
        assert!(!all.contains(secret), "{secret} is in clear in the catalog");
    }
    let secrets = sql(server, pg, "SELECT kind, ciphertext FROM patient_secret ORDER BY id");
    for kind in ["phone", "national_id", "address"] {
        assert!(secrets.contains(kind), "{kind} not recorded: {secrets}");
    }
    assert!(secrets.lines().all(|l| l.contains("|yy1:")), "{secrets}");
    // The original object itself is kept byte for byte for authorised retrieval.
    let r0 = c
        .get(format!("{}/studies/{TOWN_STUDY}/series/{TOWN_STUDY}.1/instances/{TOWN_STUDY}.1.1", server.dicomweb()))
        .header("Accept", "application/dicom; transfer-syntax=*")
        .send()
        .await
        .unwrap();
    assert_eq!(r0.status(), StatusCode::OK);
    assert!(r0.bytes().await.unwrap().windows(PHONE.len()).any(|w| w == PHONE.as_bytes()));

    // The trail is append-only for SQL too.
    let refused = match pg {
        Some(db) => Command::new("psql").args([db.url.as_str(), "-v", "ON_ERROR_STOP=1", "-c", "UPDATE audit_event SET outcome = 'x'"]).output().unwrap(),
        None => Command::new("python3")
            .args(["-c", "import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nc.execute(\"UPDATE audit_event SET outcome='x'\")\nc.commit()", server.data.join("catalog.db").to_str().unwrap()])
            .output()
            .unwrap(),
    };
    assert!(!refused.status.success(), "an UPDATE of the audit trail is refused");

    let verify = |server: &TestServer| server.cli_result(&["audit", "verify"]);
    let (ok, out, err) = verify(server);
    assert!(ok, "clean trail: {out}{err}");

    // An attacker with database rights drops the guard and edits a record.
    let chain = sql(server, pg, "SELECT chain FROM audit_event WHERE action = 'query' ORDER BY seq LIMIT 1").trim().to_string();
    let drop = match pg {
        Some(_) => "DROP TRIGGER audit_event_no_change ON audit_event",
        None => "DROP TRIGGER audit_event_no_update; DROP TRIGGER audit_event_no_delete",
    };
    sql(server, pg, drop);
    let edited = sql(server, pg, &format!("SELECT seq FROM audit_event WHERE chain = '{chain}' AND action = 'query' ORDER BY seq LIMIT 1"));
    let edited: i64 = edited.trim().parse().unwrap();
    sql(server, pg, &format!("UPDATE audit_event SET event = replace(event, '\"count\":', '\"count\":1') WHERE chain = '{chain}' AND seq = {edited}"));
    let (ok, out, _) = verify(server);
    assert!(!ok, "an edited record is caught");
    assert!(out.contains(&format!("record {edited}")) && out.contains("Edited"), "{out}");

    // A deleted record in the middle, and the newest record, are caught too.
    sql(server, pg, &format!("DELETE FROM audit_event WHERE chain = '{chain}' AND seq = {}", edited + 1));
    let (ok, out, _) = verify(server);
    assert!(!ok && out.contains("Missing"), "{out}");
    sql(server, pg, &format!("DELETE FROM audit_event WHERE chain = '{chain}' AND seq = (SELECT MAX(seq) FROM audit_event WHERE chain = '{chain}')"));
    let (ok, out, _) = verify(server);
    assert!(!ok && out.contains("Truncated"), "{out}");
    // Removing the chain's sealed anchor does not hide the chain.
    sql(server, pg, &format!("DELETE FROM audit_anchor WHERE chain = '{chain}'"));
    let (ok, out, _) = verify(server);
    assert!(!ok && out.contains("anchor is missing"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_tampering_is_detected_and_personal_data_is_encrypted_on_sqlite() {
    tampering_and_personal_data(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_tampering_is_detected_and_personal_data_is_encrypted_on_postgres() {
    let db = PgDatabase::create("yy_security").await;
    tampering_and_personal_data(Some(&db)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dimse_is_scoped_and_audited_and_records_reach_syslog() {
    let syslog = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    syslog.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("yunying.toml");
    std::fs::write(&config, format!("[audit]\nnode = \"node-a\"\nsyslog = \"udp://{}\"\n", syslog.local_addr().unwrap())).unwrap();
    let r = region(&["--config", config.to_str().unwrap()], None).await;
    let s = &r.server;
    s.cli(&["ae", "add", "TOWN_WS", "--institution", "TOWN", "--allow", "query"]);
    s.cli(&["ae", "add", "OTHER_WS", "--institution", "OTHER", "--allow", "query"]);
    let port = s.dicom_port().to_string();
    let find = |aet: &str| {
        let out = Command::new("findscu")
            .args(["-S", "-v", "-aet", aet, "-aec", "YUNYING", "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID", "127.0.0.1", &port])
            .output()
            .unwrap();
        assert!(out.status.success(), "findscu: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout)
    };
    let town = find("TOWN_WS");
    assert!(town.contains(TOWN_STUDY) && !town.contains(OTHER_STUDY), "{town}");
    let other = find("OTHER_WS");
    assert!(other.contains(OTHER_STUDY) && !other.contains(TOWN_STUDY), "{other}");
    // An unknown AE is rejected, and that is recorded too.
    let rej = Command::new("echoscu").args(["-aet", "STRANGER", "-aec", "YUNYING", "127.0.0.1", &port]).output().unwrap();
    assert!(!rej.status.success());

    // The server writes its trail a moment later (events share a transaction).
    let exported = |actor: &str, wanted: &str| {
        for _ in 0..50 {
            let out = s.cli(&["audit", "export", "--actor", actor]);
            if out.contains(wanted) {
                return out;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{wanted} never recorded for {actor}");
    };
    let out = exported("ae:TOWN_WS", "\"query\"");
    assert!(out.contains("\"interface\":\"dicom\""), "{out}");
    exported("ae:STRANGER", "association-rejected");
    exported("system:ae", "ae-changed");

    // Every record also went to syslog as RFC 5424 with the DICOM audit message.
    let mut buf = vec![0u8; 65536];
    let mut seen = Vec::new();
    while let Ok(n) = syslog.recv(&mut buf) {
        let m = String::from_utf8_lossy(&buf[..n]).to_string();
        let done = m.contains("association-rejected");
        seen.push(m);
        if done {
            break;
        }
    }
    assert!(seen.iter().any(|m| m.starts_with("<") && m.contains(" yunying ") && m.contains("<AuditMessage")), "{seen:?}");
    assert!(seen.iter().any(|m| m.contains("association-rejected")), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_reencrypts_personal_data_and_keeps_it_searchable() {
    let mut r = region(&[], None).await;
    let before = sql(&r.server, None, "SELECT ciphertext FROM patient_secret ORDER BY id");
    let old_key = before.lines().next().unwrap().split(':').nth(1).unwrap().to_string();
    r.server.stop();
    let out = r.server.cli(&["keys", "rotate"]);
    assert!(out.contains("personal fields re-encrypted"), "{out}");
    let shown = r.server.cli(&["keys", "show"]);
    assert!(shown.contains(&old_key), "the old key stays, inactive: {shown}");
    let after = sql(&r.server, None, "SELECT ciphertext FROM patient_secret ORDER BY id");
    assert_eq!(before.lines().count(), after.lines().count());
    assert!(after.lines().all(|l| !l.contains(&format!(":{old_key}:"))), "every field re-encrypted: {after}");
    r.server.restart().await;
    let (s, _, b) = login(&r.server.base, "centre-rad", PASSWORD, None).await;
    assert_eq!(s, StatusCode::OK);
    let found: Json = b.unwrap().post("/api/patients/search", json!({"national_id": NATIONAL_ID})).await.json().await.unwrap();
    assert_eq!(uids(&found["studies"]).len(), 2, "{found}");
    // The audit trail made before the rotation still verifies.
    let (ok, out, err) = r.server.cli_result(&["audit", "verify"]);
    assert!(ok, "{out}{err}");
}
