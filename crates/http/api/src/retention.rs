//! Retention over HTTP (the archive's `retention` module decides and audits):
//!
//! - `POST /api/encounters`: records a patient's visit and recomputes the
//!   retention of their studies at the institution.
//! - `GET /api/studies/{study}/retention`: a study's retention and holds.
//! - `POST` / `DELETE /api/studies/{study}/legal-hold` `{"reason"}`: places
//!   or releases a legal hold.
//! - `GET /api/retention/expired?before=YYYYMMDD&limit=&offset=`: the
//!   expiry report (default: expired before today).
//! - `GET|POST /api/retention/deletions`, `GET /api/retention/deletions/{id}`,
//!   `POST /api/retention/deletions/{id}/approve|reject`: the approved
//!   deletion workflow. A refusal because studies are not deletable is 409
//!   with `"refused": [{"study_uid", "reason"}]`.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use yunying_archive::Caller;
use yunying_archive::retention::{DeletionError, EncounterRequest};
use yunying_http_common::{AppError, query_pairs};
use yunying_index::lifecycle::{DeletionRequest, LegalHold, StudyRetention};

use crate::Api;

fn json(status: StatusCode, v: serde_json::Value) -> Response {
    let mut r = (status, v.to_string()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    r
}

fn deletion_error(e: DeletionError) -> Response {
    match e {
        DeletionError::Refused(refused) => json(
            StatusCode::CONFLICT,
            serde_json::json!({
                "error": DeletionError::Refused(refused.clone()).to_string(),
                "status": 409,
                "refused": refused,
            }),
        ),
        DeletionError::Archive(a) => AppError::from(a).into_response(),
    }
}

fn study_json(s: &StudyRetention) -> serde_json::Value {
    serde_json::json!({
        "study_uid": s.study_uid,
        "institution": s.institution_code,
        "patient_id": s.patient_id,
        "issuer": s.issuer,
        "class": s.patient_class,
        "study_date": s.study_date,
        "retain_until": s.retain_until,
        "basis": s.basis,
        "legal_hold": s.legal_hold,
        "instances": s.num_instances,
        "size_bytes": s.size_bytes,
    })
}

fn hold_json(h: &LegalHold) -> serde_json::Value {
    serde_json::to_value(h).unwrap_or_default()
}

fn request_json(r: &DeletionRequest) -> serde_json::Value {
    serde_json::to_value(r).unwrap_or_default()
}

/// `POST /api/encounters`
pub async fn record_encounter(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Json(req): Json<EncounterRequest>,
) -> Result<Response, AppError> {
    let rec = api.archive.record_encounter(&caller, &req).await?;
    let status = if rec.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok(json(
        status,
        serde_json::json!({
            "encounter_id": rec.encounter_id,
            "created": rec.created,
            "studies": rec.studies.iter().map(study_json).collect::<Vec<_>>(),
        }),
    ))
}

/// `GET /api/studies/{study}/retention`
pub async fn study(State(api): State<Api>, Extension(caller): Extension<Caller>, Path(study): Path<String>) -> Result<Response, AppError> {
    let (s, holds) = api.archive.study_retention(&caller, &study).await?;
    let mut v = study_json(&s);
    v["holds"] = holds.iter().map(hold_json).collect();
    Ok(json(StatusCode::OK, v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    pub reason: String,
}

/// `POST /api/studies/{study}/legal-hold`
pub async fn place_hold(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path(study): Path<String>,
    Json(b): Json<ReasonBody>,
) -> Result<Response, AppError> {
    let h = api.archive.place_legal_hold(&caller, &study, &b.reason).await?;
    Ok(json(StatusCode::CREATED, hold_json(&h)))
}

/// `DELETE /api/studies/{study}/legal-hold`
pub async fn release_hold(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path(study): Path<String>,
    Json(b): Json<ReasonBody>,
) -> Result<Response, AppError> {
    let h = api.archive.release_legal_hold(&caller, &study, &b.reason).await?;
    Ok(json(StatusCode::OK, hold_json(&h)))
}

/// The parameters of a listing: `limit` (1..=1000, default 100), `offset`,
/// and `before` where the listing takes it.
struct Listing {
    limit: u32,
    offset: u64,
    before: Option<String>,
}

fn listing(raw: Option<&str>, takes_before: bool) -> Result<Listing, AppError> {
    let mut l = Listing { limit: 100, offset: 0, before: None };
    for (k, v) in query_pairs(raw) {
        match k.as_str() {
            "limit" => l.limit = v.parse().map_err(|_| AppError::bad_request(format!("limit {v:?} is not a number")))?,
            "offset" => l.offset = v.parse().map_err(|_| AppError::bad_request(format!("offset {v:?} is not a number")))?,
            "before" if takes_before => l.before = Some(v),
            other => return Err(AppError::bad_request(format!("unknown parameter {other:?}"))),
        }
    }
    Ok(l)
}

/// `GET /api/retention/expired?before=&limit=&offset=`
pub async fn expired(State(api): State<Api>, Extension(caller): Extension<Caller>, RawQuery(raw): RawQuery) -> Result<Response, AppError> {
    let Listing { limit, offset, before } = listing(raw.as_deref(), true)?;
    let page = api.archive.expiry_report(&caller, before.as_deref(), limit, offset).await?;
    Ok(json(
        StatusCode::OK,
        serde_json::json!({
            "total": page.total,
            "limit": limit,
            "offset": offset,
            "studies": page.studies.iter().map(study_json).collect::<Vec<_>>(),
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeletionBody {
    pub study_uids: Vec<String>,
    pub note: String,
}

/// `POST /api/retention/deletions`
pub async fn request_deletion(State(api): State<Api>, Extension(caller): Extension<Caller>, Json(b): Json<DeletionBody>) -> Response {
    match api.archive.request_deletion(&caller, &b.study_uids, &b.note).await {
        Ok(r) => json(StatusCode::CREATED, request_json(&r)),
        Err(e) => deletion_error(e),
    }
}

/// `GET /api/retention/deletions?limit=&offset=`
pub async fn list_deletions(State(api): State<Api>, Extension(caller): Extension<Caller>, RawQuery(raw): RawQuery) -> Result<Response, AppError> {
    let Listing { limit, offset, .. } = listing(raw.as_deref(), false)?;
    let list = api.archive.deletion_requests(&caller, limit, offset).await?;
    Ok(json(StatusCode::OK, serde_json::json!({ "requests": list.iter().map(request_json).collect::<Vec<_>>() })))
}

/// `GET /api/retention/deletions/{id}`
pub async fn deletion(State(api): State<Api>, Extension(caller): Extension<Caller>, Path(id): Path<i64>) -> Result<Response, AppError> {
    let r = api.archive.deletion_request(&caller, id).await?;
    Ok(json(StatusCode::OK, request_json(&r)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    #[serde(default)]
    pub note: Option<String>,
}

/// `POST /api/retention/deletions/{id}/approve` (body optional: `{"note"}`)
pub async fn approve(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    body: Option<Json<DecisionBody>>,
) -> Response {
    let note = body.and_then(|Json(b)| b.note);
    match api.archive.approve_deletion(&caller, id, note.as_deref()).await {
        Ok(r) => json(StatusCode::OK, request_json(&r)),
        Err(e) => deletion_error(e),
    }
}

/// `POST /api/retention/deletions/{id}/reject` `{"note"}` (required: why)
pub async fn reject(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    Json(b): Json<DecisionBody>,
) -> Result<Response, AppError> {
    let r = api.archive.reject_deletion(&caller, id, b.note.as_deref().unwrap_or("")).await?;
    Ok(json(StatusCode::OK, request_json(&r)))
}
