//! The audit trail over HTTP, for the audit administrator (审计管理员):
//! `GET /api/audit` searches (by time, actor, action, outcome, patient,
//! study; newest first) and answers as JSON, as DICOM PS3.15 audit messages
//! (`format=dicom`, one `AuditMessage` per record in an `AuditMessages`
//! document) or as a FHIR R4 `Bundle` of `AuditEvent`s (`format=fhir`);
//! `GET /api/audit/verify` checks every chain. Using the trail is itself
//! recorded.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use yunying_archive::Caller;
use yunying_archive::policy::{Action, Target};
use yunying_audit::{Action as AuditAction, Outcome};
use yunying_http_common::{AppError, query_pairs};
use yunying_index::AuditQuery;

use crate::Api;

fn parse_time(v: &str) -> Result<i64, AppError> {
    v.parse::<i64>().map_err(|_| AppError::bad_request(format!("{v:?} is not a time in unix milliseconds")))
}

/// `GET /api/audit?from=&to=&actor=&action=&outcome=&patient=&study=&limit=&offset=&format=`
pub async fn search(State(api): State<Api>, Extension(caller): Extension<Caller>, RawQuery(raw): RawQuery) -> Result<Response, AppError> {
    api.archive.authorize(&caller, Action::ReadAudit, &Target::Platform).await?;
    let mut q = AuditQuery { limit: 100, ..Default::default() };
    let mut format = "json".to_string();
    for (k, v) in query_pairs(raw.as_deref()) {
        match k.as_str() {
            "from" => q.from = Some(parse_time(&v)?),
            "to" => q.to = Some(parse_time(&v)?),
            "actor" => q.actor_id = Some(v),
            "action" => q.action = Some(v),
            "outcome" => q.outcome = Some(v),
            "patient" => q.patient_id = Some(v),
            "study" => q.study_uid = Some(v),
            "limit" => q.limit = v.parse().map_err(|_| AppError::bad_request("limit is a number"))?,
            "offset" => q.offset = v.parse().map_err(|_| AppError::bad_request("offset is a number"))?,
            "format" => format = v,
            other => return Err(AppError::bad_request(format!("unknown parameter {other:?}"))),
        }
    }
    if !matches!(format.as_str(), "json" | "dicom" | "fhir") {
        return Err(AppError::bad_request("format is json, dicom or fhir"));
    }
    api.archive.audit_trail().flush().await;
    let records = api.archive.audit_trail().search(&q).await.map_err(yunying_archive::ArchiveError::from)?;
    let mut e = api.archive.audit_event(&caller, if format == "json" { AuditAction::AuditRead } else { AuditAction::AuditExported }, Outcome::Success);
    e.detail = serde_json::json!({ "query": raw.unwrap_or_default(), "count": records.len(), "format": format });
    api.archive.audit(e).await;
    let source = api.archive.settings().node.clone();
    let (body, ct) = match format.as_str() {
        "dicom" => {
            let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<AuditMessages>\n");
            for r in &records {
                let m = yunying_audit::dicom_xml::to_audit_message(r, &source);
                xml.push_str(m.trim_start_matches("<?xml version=\"1.0\" encoding=\"UTF-8\"?>").trim());
                xml.push('\n');
            }
            xml.push_str("</AuditMessages>\n");
            (xml, "application/xml; charset=utf-8")
        }
        "fhir" => (
            yunying_audit::fhir::bundle(records.iter(), &source, yunying_audit::fhir::BundleType::Searchset, Some(records.len() as u64))
                .to_string(),
            "application/fhir+json; charset=utf-8",
        ),
        _ => (serde_json::json!({ "records": records }).to_string(), "application/json; charset=utf-8"),
    };
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    Ok(r)
}

/// `GET /api/audit/verify`: every chain checked; 200 with `"clean": false`
/// and the problems when tampering is found.
pub async fn verify(State(api): State<Api>, Extension(caller): Extension<Caller>) -> Result<Response, AppError> {
    api.archive.authorize(&caller, Action::ManageAudit, &Target::Platform).await?;
    api.archive.audit_trail().flush().await;
    let chains = api.archive.audit_trail().verify().await.map_err(yunying_archive::ArchiveError::from)?;
    let clean = chains.iter().all(|c| c.is_clean());
    let mut e = api.archive.audit_event(&caller, AuditAction::AuditVerified, if clean { Outcome::Success } else { Outcome::SeriousFailure });
    e.detail = serde_json::json!({ "clean": clean, "chains": chains.len() });
    api.archive.audit(e).await;
    let mut r = (StatusCode::OK, serde_json::json!({ "clean": clean, "chains": chains }).to_string()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    Ok(r)
}
