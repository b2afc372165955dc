//! Finding a patient's studies by an identifier held only encrypted
//! (national ID number, phone number): `POST /api/patients/search` with
//! `{"national_id": "..."}` or `{"phone": "..."}` (in the body, never in a
//! URL). The answer lists the studies the caller may see, as QIDO-RS would
//! (DICOM JSON of the study attributes).

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use yunying_archive::Caller;
use yunying_http_common::AppError;

use crate::Api;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchBody {
    #[serde(default)]
    pub national_id: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub limit: Option<u32>,
}

/// `POST /api/patients/search`
pub async fn search(State(api): State<Api>, Extension(caller): Extension<Caller>, Json(b): Json<SearchBody>) -> Result<Response, AppError> {
    let (kind, value) = match (b.national_id, b.phone) {
        (Some(v), None) => ("national_id", v),
        (None, Some(v)) => ("phone", v),
        _ => return Err(AppError::bad_request("give exactly one of \"national_id\" or \"phone\"")),
    };
    if value.trim().is_empty() {
        return Err(AppError::bad_request("the identifier is empty"));
    }
    let rows = api.archive.studies_by_identifier(&caller, kind, &value, b.limit.unwrap_or(100).min(1000)).await?;
    let studies: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let mut attrs: serde_json::Value = serde_json::from_str(&r.attrs).unwrap_or_default();
            if let Some(m) = attrs.as_object_mut() {
                m.insert("00080061".into(), serde_json::json!({"vr": "CS", "Value": r.modalities}));
                m.insert("00201206".into(), serde_json::json!({"vr": "IS", "Value": [r.num_series]}));
                m.insert("00201208".into(), serde_json::json!({"vr": "IS", "Value": [r.num_instances]}));
            }
            attrs
        })
        .collect();
    let mut r = (StatusCode::OK, serde_json::json!({ "studies": studies }).to_string()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    Ok(r)
}
