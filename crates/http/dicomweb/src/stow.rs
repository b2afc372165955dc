//! STOW-RS (PS3.18 §10.5): `POST /studies[/{study}]` with
//! `multipart/related; type="application/dicom"`.
//!
//! Parts are streamed to the archive's staging area as they arrive (a part is
//! never held whole in memory) and ingested by a bounded number of tasks, so
//! a large series flows through with a handful of objects in flight. The
//! response lists stored instances (ReferencedSOPSequence) and refused ones
//! with their FailureReason (FailedSOPSequence), with status 200 (all
//! stored), 202 (some refused), 409 (none stored), 400 (malformed request),
//! 415 (not application/dicom), 503 (out of resources). The reason for each
//! refusal is also given in a `Warning` header.

use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use yunying_archive::Caller;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use serde_json::{Map, Value as Json, json};
use tokio::sync::Semaphore;
use yunying_archive::{IngestError, IngestErrorKind, IngestOutcome, IngestSource, IngestStatus};
use yunying_http_common::{AppError, PeerAddr};
use yunying_http_common::accept::parse_media_type;

use crate::DicomWeb;

/// `POST /studies`
pub async fn store(
    State(dw): State<DicomWeb>,
    Extension(caller): Extension<Caller>,
    peer: PeerAddr,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AppError> {
    stow(dw, caller, peer, headers, body, None).await
}

/// `POST /studies/{study}`
pub async fn store_in_study(
    State(dw): State<DicomWeb>,
    Extension(caller): Extension<Caller>,
    Path(study): Path<String>,
    peer: PeerAddr,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AppError> {
    stow(dw, caller, peer, headers, body, Some(study)).await
}

/// The boundary of a STOW-RS request, after checking its media type.
fn boundary_of(headers: &HeaderMap) -> Result<String, AppError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| AppError::unsupported_media_type("STOW-RS needs Content-Type: multipart/related; type=\"application/dicom\""))?;
    let mt = parse_media_type(ct).ok_or_else(|| AppError::bad_request(format!("malformed Content-Type {ct:?}")))?;
    if mt.essence != "multipart/related" {
        return Err(AppError::unsupported_media_type(format!(
            "STOW-RS takes multipart/related; type=\"application/dicom\", not {}",
            mt.essence
        )));
    }
    match mt.param("type") {
        None | Some("application/dicom") => {}
        Some(other) => {
            return Err(AppError::unsupported_media_type(format!(
                "parts of type {other} are not supported: send Part-10 objects as application/dicom"
            )));
        }
    }
    mt.param("boundary")
        .map(str::to_string)
        .ok_or_else(|| AppError::bad_request("the multipart Content-Type has no boundary"))
}

enum PartResult {
    Stored(IngestOutcome),
    Failed(IngestError),
}

async fn stow(dw: DicomWeb, caller: Caller, peer: PeerAddr, headers: HeaderMap, body: Body, study: Option<String>) -> Result<Response, AppError> {
    let boundary = boundary_of(&headers)?;
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let mut multipart = multer::Multipart::new(stream, boundary);
    if !caller.principal.holds(yunying_archive::policy::Action::Store) {
        return Err(dw
            .archive
            .deny(&caller, yunying_archive::policy::Action::Store, &yunying_archive::policy::Decision::DenyAction, None)
            .await
            .into());
    }
    let mut source = IngestSource::new("stow", peer.0);
    // Objects are attributed to the caller's institution; region-wide
    // credentials store into the default institution (or the issuer the
    // object names).
    source.institution = caller.principal.institution;
    source.caller = caller;
    source.expected_study = study.clone();
    let source = Arc::new(source);
    let slots = Arc::new(Semaphore::new(dw.stow_parallelism.max(1)));
    let mut tasks = Vec::new();

    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(AppError::bad_request(format!("malformed multipart body: {e}"))),
        };
        let mut field = field;
        let part_type = field.content_type().map(|m| m.essence_str().to_ascii_lowercase());
        if let Some(t) = part_type
            && t != "application/dicom"
        {
            while let Ok(Some(_)) = field.chunk().await {}
            tasks.push(tokio::spawn(async move {
                PartResult::Failed(IngestError::new(
                    IngestErrorKind::Unreadable,
                    format!("a part of type {t} is not a DICOM object (application/dicom)"),
                ))
            }));
            continue;
        }
        let permit = slots.clone().acquire_owned().await.expect("semaphore open");
        let mut staged = Some(dw.archive.stage(None).map_err(AppError::from)?);
        let mut failure = None;
        loop {
            match field.chunk().await {
                Ok(Some(chunk)) => {
                    if let Some(s) = staged.take() {
                        match s.write_bytes(chunk).await {
                            Ok(s) => staged = Some(s),
                            Err(e) => failure = Some(e),
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => return Err(AppError::bad_request(format!("the request body ended early: {e}"))),
            }
        }
        let archive = dw.archive.clone();
        let source = source.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            match (staged, failure) {
                (_, Some(e)) => PartResult::Failed(e),
                (Some(s), None) => match archive.ingest(s, &source).await {
                    Ok(o) => PartResult::Stored(o),
                    Err(e) => PartResult::Failed(e),
                },
                (None, None) => PartResult::Failed(IngestError::new(IngestErrorKind::Internal, "lost staging")),
            }
        }));
    }

    let mut results = Vec::with_capacity(tasks.len());
    for t in tasks {
        results.push(t.await.unwrap_or_else(|e| {
            PartResult::Failed(IngestError::new(IngestErrorKind::Internal, format!("ingest task failed: {e}")))
        }));
    }
    if results.is_empty() {
        return Err(AppError::bad_request("the request contains no DICOM parts"));
    }
    Ok(respond(&dw, &headers, study.as_deref(), results))
}

fn respond(dw: &DicomWeb, headers: &HeaderMap, study: Option<&str>, results: Vec<PartResult>) -> Response {
    let base = dw.base(headers);
    let mut referenced = Vec::new();
    let mut failed = Vec::new();
    let mut warnings = Vec::new();
    let mut studies = std::collections::BTreeSet::new();
    let mut all_resource_failures = true;
    for r in &results {
        match r {
            PartResult::Stored(o) => {
                studies.insert(o.study_uid.clone());
                let mut item = Map::new();
                item.insert("00081150".into(), json!({"vr": "UI", "Value": [o.sop_class_uid]}));
                item.insert("00081155".into(), json!({"vr": "UI", "Value": [o.sop_instance_uid]}));
                item.insert(
                    "00081190".into(),
                    json!({"vr": "UR", "Value": [format!(
                        "{base}/studies/{}/series/{}/instances/{}",
                        o.study_uid, o.series_uid, o.sop_instance_uid
                    )]}),
                );
                if let IngestStatus::NewVersion { version } = o.status {
                    warnings.push(format!(
                        "{}: different content under a known SOP Instance UID, kept as version {version}",
                        o.sop_instance_uid
                    ));
                }
                referenced.push(Json::Object(item));
            }
            PartResult::Failed(e) => {
                if !matches!(e.kind, IngestErrorKind::OutOfResources | IngestErrorKind::Internal) {
                    all_resource_failures = false;
                }
                let mut item = Map::new();
                let uid = |v: &Option<String>| match v {
                    Some(u) => json!({"vr": "UI", "Value": [u]}),
                    None => json!({"vr": "UI"}),
                };
                item.insert("00081150".into(), uid(&e.sop_class_uid));
                item.insert("00081155".into(), uid(&e.sop_instance_uid));
                item.insert("00081197".into(), json!({"vr": "US", "Value": [e.dicom_status()]}));
                let who = e.sop_instance_uid.clone().unwrap_or_else(|| format!("part {}", failed.len() + referenced.len() + 1));
                warnings.push(format!("{who}: {}", e.message));
                tracing::info!(sop = %who, reason = %e.message, status = format!("{:04X}", e.dicom_status()), "STOW-RS part refused");
                failed.push(Json::Object(item));
            }
        }
    }
    let mut body = Map::new();
    let retrieve_study = study.map(str::to_string).or_else(|| if studies.len() == 1 { studies.first().cloned() } else { None });
    if let Some(s) = retrieve_study
        && !referenced.is_empty()
    {
        body.insert("00081190".into(), json!({"vr": "UR", "Value": [format!("{base}/studies/{s}")]}));
    }
    let status = if failed.is_empty() {
        StatusCode::OK
    } else if referenced.is_empty() {
        if all_resource_failures { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::CONFLICT }
    } else {
        StatusCode::ACCEPTED
    };
    if !failed.is_empty() {
        body.insert("00081198".into(), json!({"vr": "SQ", "Value": failed}));
    }
    if !referenced.is_empty() {
        body.insert("00081199".into(), json!({"vr": "SQ", "Value": referenced}));
    }
    let mut r = (status, Json::Object(body).to_string()).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/dicom+json"));
    for w in warnings.iter().take(50) {
        let text = format!("299 yunying \"{}\"", w.replace(['"', '\r', '\n'], " "));
        if let Ok(v) = HeaderValue::from_str(&text) {
            h.append(header::WARNING, v);
        }
    }
    r
}
