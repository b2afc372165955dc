//! Administration: accounts (`/api/users`), machine credentials
//! (`/api/credentials`: API tokens and service accounts), grants
//! (`/api/grants`) and institutions (`/api/institutions`). Who may do what
//! is the policy's decision (三员分立: the security administrator manages
//! accounts and credentials, the system administrator institutions).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use yunying_archive::Caller;
use yunying_archive::identity::{CredentialRequest, UserRequest};
use yunying_archive::policy::{Action, Target, parse_actions};
use yunying_http_common::AppError;
use yunying_index::{CredentialKind, NewInstitution};

use crate::Api;
use crate::auth::user_json;

fn ok(status: StatusCode, v: serde_json::Value) -> Response {
    let mut r = (status, v.to_string()).into_response();
    r.headers_mut().insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static("application/json; charset=utf-8"));
    r
}

/// `GET /api/users`: the security administrator sees every account; an
/// institution administrator their institution's.
pub async fn list_users(State(api): State<Api>, Extension(caller): Extension<Caller>) -> Result<Response, AppError> {
    let p = &caller.principal;
    let everyone = yunying_archive::policy::decide(p, Action::ManageUsers, &Target::Platform).allowed()
        && p.institution.is_none();
    if !everyone {
        let own = p.institution.ok_or_else(|| AppError::new(StatusCode::FORBIDDEN, "not allowed"))?;
        api.archive.authorize(&caller, Action::ManageUsers, &Target::Institution(own)).await?;
    }
    let users = api.archive.index().users().await.map_err(yunying_archive::ArchiveError::from)?;
    let list: Vec<serde_json::Value> =
        users.iter().filter(|u| everyone || u.institution_id == p.institution).map(user_json).collect();
    Ok(ok(StatusCode::OK, serde_json::json!({ "users": list })))
}

#[derive(Deserialize)]
pub struct NewUserBody {
    pub username: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub institution: Option<String>,
    pub roles: Vec<String>,
    pub password: String,
    /// Must be changed at first sign-in (default true: an administrator set it).
    #[serde(default = "yes")]
    pub temporary: bool,
}

fn yes() -> bool {
    true
}

/// `POST /api/users`
pub async fn create_user(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Json(b): Json<NewUserBody>,
) -> Result<Response, AppError> {
    let user = api
        .archive
        .create_user(
            &caller,
            &UserRequest {
                username: b.username,
                display_name: b.display_name,
                institution_code: b.institution,
                roles: b.roles,
                password: b.password,
                temporary: b.temporary,
            },
        )
        .await?;
    Ok(ok(StatusCode::CREATED, user_json(&user)))
}

#[derive(Deserialize)]
pub struct ChangeUserBody {
    #[serde(default)]
    pub roles: Option<Vec<String>>,
    #[serde(default)]
    pub disabled: Option<bool>,
    #[serde(default)]
    pub unlock: bool,
    /// A temporary password (the user must change it at next sign-in).
    #[serde(default)]
    pub reset_password: Option<String>,
    /// Removes the TOTP second factor (a lost phone); the user enrols again.
    #[serde(default)]
    pub reset_second_factor: bool,
}

/// `PATCH /api/users/{username}`
pub async fn change_user(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path(username): Path<String>,
    Json(b): Json<ChangeUserBody>,
) -> Result<Response, AppError> {
    let req = yunying_archive::identity::UserAdministration {
        roles: b.roles,
        disabled: b.disabled,
        unlock: b.unlock,
        reset_password: b.reset_password,
        reset_second_factor: b.reset_second_factor,
    };
    let user = api.archive.administer_user(&caller, &username, &req).await?;
    Ok(ok(StatusCode::OK, user_json(&user)))
}

/// `GET /api/credentials`
pub async fn list_credentials(State(api): State<Api>, Extension(caller): Extension<Caller>) -> Result<Response, AppError> {
    api.archive.authorize(&caller, Action::ManageCredentials, &Target::Platform).await?;
    let list = api.archive.index().credentials().await.map_err(yunying_archive::ArchiveError::from)?;
    let list: Vec<serde_json::Value> = list
        .iter()
        .map(|c| {
            serde_json::json!({
                "id": c.public_id, "kind": c.kind, "name": c.name, "institution_id": c.institution_id.map(|i| i.0),
                "actions": c.actions, "expires_at": c.expires_at, "revoked_at": c.revoked_at,
                "created_by": c.created_by, "created_at": c.created_at, "last_used_at": c.last_used_at,
            })
        })
        .collect();
    Ok(ok(StatusCode::OK, serde_json::json!({ "credentials": list })))
}

#[derive(Deserialize)]
pub struct NewCredentialBody {
    /// `token` (a bearer token) or `client` (a service account for OAuth2 client credentials).
    #[serde(default = "token_kind")]
    pub kind: String,
    pub name: String,
    /// Institution code; absent for a region-wide credential.
    #[serde(default)]
    pub institution: Option<String>,
    /// Action codes, e.g. `["query", "read"]`.
    pub actions: Vec<String>,
    #[serde(default)]
    pub expires_in_days: Option<i64>,
}

fn token_kind() -> String {
    "token".into()
}

/// `POST /api/credentials`: the secret is in the answer, once.
pub async fn create_credential(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Json(b): Json<NewCredentialBody>,
) -> Result<Response, AppError> {
    let kind = match b.kind.as_str() {
        "token" => CredentialKind::Token,
        "client" => CredentialKind::Client,
        other => return Err(AppError::bad_request(format!("unknown credential kind {other:?} (token or client)"))),
    };
    let actions = parse_actions(&b.actions.join(",")).map_err(AppError::bad_request)?;
    let expires_at = b.expires_in_days.map(|d| yunying_util_now() + d * 86_400_000);
    let (c, secret) = api
        .archive
        .create_credential(&caller, &CredentialRequest { kind, name: b.name, institution_code: b.institution, actions, expires_at })
        .await?;
    let mut v = serde_json::json!({ "id": c.public_id, "kind": c.kind, "actions": c.actions, "expires_at": c.expires_at });
    if kind == CredentialKind::Token {
        v["token"] = secret.into();
    } else {
        v["client_id"] = c.public_id.clone().into();
        v["client_secret"] = secret.into();
    }
    Ok(ok(StatusCode::CREATED, v))
}

fn yunying_util_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// `DELETE /api/credentials/{id}`
pub async fn revoke_credential(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path(public_id): Path<String>,
) -> Result<Response, AppError> {
    let done = api.archive.revoke_credential(&caller, &public_id).await?;
    Ok(ok(StatusCode::OK, serde_json::json!({ "revoked": done })))
}

#[derive(Deserialize)]
pub struct GrantBody {
    pub study_uid: String,
    /// `consultation`, `referral` or `share`.
    pub kind: String,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub institution: Option<String>,
    #[serde(default)]
    pub expires_at: Option<i64>,
    #[serde(default)]
    pub reason: String,
}

/// `POST /api/grants`
pub async fn create_grant(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Json(b): Json<GrantBody>,
) -> Result<Response, AppError> {
    if b.user.is_some() == b.institution.is_some() {
        return Err(AppError::bad_request("name exactly one grantee: \"user\" or \"institution\""));
    }
    let req = yunying_archive::identity::GrantRequest {
        study_uid: b.study_uid,
        kind: b.kind,
        to_user: b.user,
        to_institution: b.institution,
        expires_at: b.expires_at,
        reason: b.reason,
    };
    let g = api.archive.grant_study(&caller, &req).await?;
    Ok(ok(StatusCode::CREATED, serde_json::json!({ "id": g.id, "study_uid": g.study_uid, "kind": g.kind, "expires_at": g.expires_at })))
}

/// `DELETE /api/grants/{id}`
pub async fn revoke_grant(State(api): State<Api>, Extension(caller): Extension<Caller>, Path(id): Path<i64>) -> Result<Response, AppError> {
    let done = api.archive.revoke_grant(&caller, id).await?;
    Ok(ok(StatusCode::OK, serde_json::json!({ "revoked": done })))
}

/// `GET /api/institutions`: any signed-in caller (names are not patient data).
pub async fn list_institutions(State(api): State<Api>, Extension(_caller): Extension<Caller>) -> Result<Response, AppError> {
    let list = api.archive.index().institutions().await.map_err(yunying_archive::ArchiveError::from)?;
    let regional = api.archive.index().regional_institutions().await.map_err(yunying_archive::ArchiveError::from)?;
    let list: Vec<serde_json::Value> = list
        .iter()
        .map(|i| {
            serde_json::json!({
                "code": i.code, "name_zh": i.name_zh, "name_en": i.name_en, "patient_id_issuer": i.patient_id_issuer,
                "ae_titles": i.ae_titles, "regional": regional.contains(&i.id),
            })
        })
        .collect();
    Ok(ok(StatusCode::OK, serde_json::json!({ "institutions": list })))
}

#[derive(Deserialize)]
pub struct InstitutionBody {
    pub code: String,
    pub name_zh: String,
    #[serde(default)]
    pub name_en: String,
    #[serde(default)]
    pub patient_id_issuer: Option<String>,
    #[serde(default)]
    pub ae_titles: Vec<String>,
    #[serde(default)]
    pub regional: Option<bool>,
}

/// `POST /api/institutions`: the system administrator adds or updates a member.
pub async fn create_institution(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Json(b): Json<InstitutionBody>,
) -> Result<Response, AppError> {
    api.archive.authorize(&caller, Action::ManageSystem, &Target::Platform).await?;
    let inst = api
        .archive
        .index()
        .upsert_institution(&NewInstitution {
            code: b.code.clone(),
            name_zh: b.name_zh,
            name_en: b.name_en,
            patient_id_issuer: b.patient_id_issuer,
            ae_titles: b.ae_titles,
        })
        .await
        .map_err(yunying_archive::ArchiveError::from)?;
    let mut e = api.archive.audit_event(&caller, yunying_audit::Action::InstitutionChanged, yunying_audit::Outcome::Success);
    e.detail = serde_json::json!({ "target": inst.code });
    api.archive.audit(e).await;
    if let Some(r) = b.regional {
        api.archive.set_regional(&caller, &b.code, r).await?;
    }
    Ok(ok(StatusCode::CREATED, serde_json::json!({ "code": inst.code, "id": inst.id.0 })))
}
