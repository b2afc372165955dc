//! WADO-RS rendered resources (PS3.18 §10.4.1.1.3, §8.3.5): `/rendered` and
//! `/thumbnail` of studies, series, instances and frames as JPEG (default),
//! PNG or lossless WebP, with the `window`, `viewport` and `quality` parameters; and
//! WADO-URI (PS3.18 §9) for older HIS links and film printers. Access is
//! checked and audited like every WADO-RS read. Responses carry an `ETag`
//! (the stored object's hash and the rendering parameters) and answer
//! `If-None-Match` with 304.

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use futures::stream;
use yunying_archive::Caller;
use yunying_archive::policy::Action;
use yunying_archive::render::{ImageFormat, RenderRequest};
use yunying_http_common::multipart::{self, Part};
use yunying_http_common::{AppError, query_pairs};
use yunying_index::{Scope, StoredInstance};
use yunying_pixels::VoiFunction;

use crate::DicomWeb;

/// The default size of a thumbnail.
const THUMBNAIL: (u32, u32) = (128, 128);

fn parse_window(v: &str) -> Result<(f64, f64, VoiFunction), AppError> {
    let parts: Vec<&str> = v.split(',').map(str::trim).collect();
    let num = |s: &str| s.parse::<f64>().map_err(|_| AppError::bad_request(format!("window {v:?}: {s:?} is not a number")));
    if parts.len() < 2 || parts.len() > 3 {
        return Err(AppError::bad_request("window is center,width[,function]"));
    }
    let (c, w) = (num(parts[0])?, num(parts[1])?);
    if w < 1.0 {
        return Err(AppError::bad_request("window width must be at least 1"));
    }
    let f = match parts.get(2).map(|s| s.to_ascii_lowercase()) {
        None => VoiFunction::Linear,
        Some(f) if f == "linear" => VoiFunction::Linear,
        Some(f) if f == "linear_exact" || f == "linear-exact" => VoiFunction::LinearExact,
        Some(f) if f == "sigmoid" => VoiFunction::Sigmoid,
        Some(f) => return Err(AppError::bad_request(format!("unknown VOI function {f:?} (linear, linear-exact, sigmoid)"))),
    };
    Ok((c, w, f))
}

fn parse_size(name: &str, v: &str) -> Result<(u32, u32), AppError> {
    let parts: Vec<&str> = v.split(',').map(str::trim).collect();
    let n = |s: &str| {
        s.parse::<u32>()
            .ok()
            .filter(|n| (1..=8192).contains(n))
            .ok_or_else(|| AppError::bad_request(format!("{name} {v:?}: sizes are 1 to 8192")))
    };
    match parts.as_slice() {
        [w, h] => Ok((n(w)?, n(h)?)),
        [s] => Ok((n(s)?, n(s)?)),
        _ => Err(AppError::bad_request(format!("{name} is width,height"))),
    }
}

fn format_from(mt: &str) -> Option<ImageFormat> {
    match mt.trim().split(';').next().unwrap_or("").trim() {
        "image/jpeg" | "image/jpg" | "image/*" | "*/*" => Some(ImageFormat::Jpeg),
        "image/png" => Some(ImageFormat::Png),
        "image/webp" => Some(ImageFormat::Webp),
        _ => None,
    }
}

/// The rendering the request asks for (query parameters, then `Accept`).
fn request_of(headers: &HeaderMap, raw: Option<&str>, thumbnail: bool) -> Result<RenderRequest, AppError> {
    let mut req = RenderRequest::default();
    let mut accept_param = None;
    for (k, v) in query_pairs(raw) {
        match k.as_str() {
            "window" => req.window = Some(parse_window(&v)?),
            "viewport" => req.viewport = Some(parse_size("viewport", &v)?),
            "quality" => {
                req.quality = v
                    .parse::<u8>()
                    .ok()
                    .filter(|q| (1..=100).contains(q))
                    .ok_or_else(|| AppError::bad_request("quality is 1 to 100"))?
            }
            "accept" => accept_param = Some(v),
            "annotation" | "charset" => {}
            other => return Err(AppError::bad_request(format!("unknown parameter {other:?} of a rendered resource"))),
        }
    }
    let accept = accept_param.or_else(|| headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).map(String::from));
    if let Some(a) = accept {
        let wanted: Vec<&str> = a.split(',').collect();
        req.format = wanted.iter().find_map(|m| format_from(m)).ok_or_else(|| {
            AppError::not_acceptable(format!("rendered images are image/jpeg or image/png, not {a}"))
        })?;
    }
    if thumbnail && req.viewport.is_none() {
        req.viewport = Some(THUMBNAIL);
    }
    Ok(req)
}

fn etag(inst: &StoredInstance, frame: u32, req: &RenderRequest) -> String {
    use sha2::Digest;
    let key = format!("{}|{}|{frame}|{req:?}", inst.sop_uid, inst.sha256);
    let h = sha2::Sha256::digest(key.as_bytes());
    format!("\"r-{}\"", hex::encode(&h[..12]))
}

fn image_response(bytes: bytes::Bytes, format: ImageFormat, tag: &str) -> Response {
    let mut r = Response::new(Body::from(bytes));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.media_type()));
    if let Ok(v) = HeaderValue::from_str(tag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=3600"));
    r
}

async fn access(dw: &DicomWeb, caller: &Caller, study: &str) -> Result<(), AppError> {
    let facts = dw.archive.study_access(caller, Action::Read, study).await?;
    dw.archive
        .audit_access(caller, Action::Read, &facts, serde_json::json!({ "resource": "WADO-RS rendered" }))
        .await;
    Ok(())
}

/// One rendered frame, or 304 when the client has it.
async fn one(dw: &DicomWeb, headers: &HeaderMap, inst: &StoredInstance, frame: u32, req: &RenderRequest) -> Result<Response, AppError> {
    let tag = etag(inst, frame, req);
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).is_some_and(|v| v.split(',').any(|t| t.trim() == tag)) {
        let mut r = StatusCode::NOT_MODIFIED.into_response();
        if let Ok(v) = HeaderValue::from_str(&tag) {
            r.headers_mut().insert(header::ETAG, v);
        }
        return Ok(r);
    }
    let bytes = dw.archive.render(inst, frame, req).await?;
    Ok(image_response(bytes, req.format, &tag))
}

/// Several rendered frames as `multipart/related`.
fn many(dw: &DicomWeb, items: Vec<(StoredInstance, u32)>, req: RenderRequest) -> Response {
    let boundary = multipart::new_boundary();
    let archive = dw.archive.clone();
    let format = req.format;
    let parts = stream::iter(items).then(move |(inst, frame)| {
        let archive = archive.clone();
        let req = req.clone();
        async move {
            let bytes = archive.render(&inst, frame, &req).await.map_err(|e| std::io::Error::other(e.to_string()))?;
            Ok(Part {
                content_type: format.media_type().to_string(),
                content_length: Some(bytes.len() as u64),
                content_location: None,
                body: stream::once(async move { Ok(bytes) }).boxed(),
            })
        }
    });
    let body = multipart::body(boundary.clone(), parts.boxed());
    let mut r = Response::new(body);
    if let Ok(v) = HeaderValue::from_str(&multipart::content_type(&boundary, format.media_type(), None)) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

fn frame_count(inst: &StoredInstance) -> u32 {
    inst.number_of_frames.unwrap_or(1).max(1) as u32
}

/// The representative instance of a set: the middle one of the first
/// series that has instances this server can render (the first series when
/// none can).
fn representative(found: &[StoredInstance]) -> Option<&StoredInstance> {
    let renderable = |i: &&StoredInstance| yunying_pixels::decode::is_supported(&i.transfer_syntax);
    let first_series = &found.iter().find(renderable).or_else(|| found.first())?.series_uid;
    let in_series: Vec<&StoredInstance> = found.iter().filter(|i| &i.series_uid == first_series).collect();
    let candidates: Vec<&StoredInstance> = in_series.iter().copied().filter(renderable).collect();
    let pool = if candidates.is_empty() { in_series } else { candidates };
    pool.get(pool.len() / 2).copied()
}

async fn set(dw: &DicomWeb, caller: &Caller, headers: &HeaderMap, raw: Option<&str>, scope: Scope, thumbnail: bool) -> Result<Response, AppError> {
    access(dw, caller, &scope.study_uid).await?;
    let req = request_of(headers, raw, thumbnail)?;
    let found = dw.archive.stored(&scope).await?;
    if thumbnail {
        let inst = representative(&found).ok_or_else(|| AppError::not_found("nothing to render"))?;
        let frame = frame_count(inst).div_ceil(2);
        return one(dw, headers, inst, frame, &req).await;
    }
    if found.len() == 1 && frame_count(&found[0]) == 1 {
        return one(dw, headers, &found[0], 1, &req).await;
    }
    let items: Vec<(StoredInstance, u32)> = if found.len() == 1 {
        (1..=frame_count(&found[0])).map(|f| (found[0].clone(), f)).collect()
    } else {
        found.into_iter().map(|i| (i, 1)).collect()
    };
    Ok(many(dw, items, req))
}

/// `GET /studies/{study}/rendered` (and `/thumbnail` with `THUMB`).
pub async fn study<const THUMB: bool>(
    State(dw): State<DicomWeb>,
    Extension(caller): Extension<Caller>,
    Path(study): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, AppError> {
    set(&dw, &caller, &headers, raw.as_deref(), Scope::study(&study), THUMB).await
}

/// `GET /studies/{study}/series/{series}/rendered` (and `/thumbnail`).
pub async fn series<const THUMB: bool>(
    State(dw): State<DicomWeb>,
    Extension(caller): Extension<Caller>,
    Path((study, series)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, AppError> {
    set(&dw, &caller, &headers, raw.as_deref(), Scope::series(&study, &series), THUMB).await
}

/// `GET /studies/{study}/series/{series}/instances/{instance}/rendered` (and `/thumbnail`).
pub async fn instance<const THUMB: bool>(
    State(dw): State<DicomWeb>,
    Extension(caller): Extension<Caller>,
    Path((study, series, sop)): Path<(String, String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, AppError> {
    set(&dw, &caller, &headers, raw.as_deref(), Scope::instance(&study, &series, &sop), THUMB).await
}

/// `GET /studies/{study}/series/{series}/instances/{instance}/frames/{frames}/rendered` (and `/thumbnail`).
pub async fn frames<const THUMB: bool>(
    State(dw): State<DicomWeb>,
    Extension(caller): Extension<Caller>,
    Path((study, series, sop, list)): Path<(String, String, String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, AppError> {
    access(&dw, &caller, &study).await?;
    let req = request_of(&headers, raw.as_deref(), THUMB)?;
    let numbers = crate::wado::parse_frame_list(&list)?;
    let found = dw.archive.stored(&Scope::instance(&study, &series, &sop)).await?;
    let inst = &found[0];
    if let Some(n) = numbers.iter().find(|n| **n > frame_count(inst)) {
        return Err(AppError::not_found(format!("instance {sop} has {} frame(s); frame {n} does not exist", frame_count(inst))));
    }
    if numbers.len() == 1 || THUMB {
        return one(&dw, &headers, inst, numbers[0], &req).await;
    }
    Ok(many(&dw, numbers.iter().map(|n| (inst.clone(), *n)).collect(), req))
}

/// `GET /wado?requestType=WADO&studyUID=&seriesUID=&objectUID=...` (PS3.18 §9):
/// `contentType` image/jpeg (default), image/png, image/webp or
/// application/dicom (as stored, or in `transferSyntax`); `frameNumber`, `windowCenter` + `windowWidth`, `rows` / `columns`,
/// `imageQuality`.
pub async fn wado_uri(
    State(dw): State<DicomWeb>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, AppError> {
    let mut p = std::collections::HashMap::new();
    for (k, v) in query_pairs(raw.as_deref()) {
        p.insert(k, v);
    }
    if p.get("requestType").map(String::as_str) != Some("WADO") {
        return Err(AppError::bad_request("requestType=WADO is required"));
    }
    let get = |k: &str| p.get(k).cloned().ok_or_else(|| AppError::bad_request(format!("{k} is required")));
    let (study, series, sop) = (get("studyUID")?, get("seriesUID")?, get("objectUID")?);
    access(&dw, &caller, &study).await?;
    let found = dw.archive.stored(&Scope::instance(&study, &series, &sop)).await?;
    let inst = &found[0];
    let content_type = p.get("contentType").map(String::as_str).unwrap_or("image/jpeg");
    if content_type.starts_with("application/dicom") {
        // As stored, unless `transferSyntax` names another syntax.
        let mut r = match p.get("transferSyntax").filter(|t| **t != inst.transfer_syntax && t.as_str() != "*") {
            Some(t) => {
                if !yunying_archive::Archive::can_transcode_object(&inst.transfer_syntax, t) {
                    return Err(AppError::not_acceptable(format!(
                        "the object is stored as {} and cannot be given as {t}",
                        inst.transfer_syntax
                    )));
                }
                Response::new(Body::from(dw.archive.object_in(inst, t).await?))
            }
            None => Response::new(Body::from_stream(dw.archive.open_object(inst).await?)),
        };
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/dicom"));
        return Ok(r);
    }
    let mut req = RenderRequest {
        format: format_from(content_type)
            .ok_or_else(|| AppError::not_acceptable(format!("contentType {content_type:?} is not served (image/jpeg, image/png, application/dicom)")))?,
        ..Default::default()
    };
    if let (Some(c), Some(w)) = (p.get("windowCenter"), p.get("windowWidth")) {
        req.window = Some(parse_window(&format!("{c},{w}"))?);
    }
    let dim = |k: &str| p.get(k).map(|v| parse_size(k, v).map(|x| x.0)).transpose();
    match (dim("columns")?, dim("rows")?) {
        (Some(c), Some(r)) => req.viewport = Some((c, r)),
        (Some(c), None) => req.viewport = Some((c, 8192)),
        (None, Some(r)) => req.viewport = Some((8192, r)),
        (None, None) => {}
    }
    if let Some(q) = p.get("imageQuality") {
        req.quality = q.parse::<u8>().ok().filter(|q| (1..=100).contains(q)).ok_or_else(|| AppError::bad_request("imageQuality is 1 to 100"))?;
    }
    let frame = match p.get("frameNumber") {
        Some(f) => f.parse::<u32>().ok().filter(|f| *f >= 1).ok_or_else(|| AppError::bad_request("frameNumber is 1 or more"))?,
        None => 1,
    };
    if frame > frame_count(inst) {
        return Err(AppError::not_found(format!("the object has {} frame(s)", frame_count(inst))));
    }
    one(&dw, &headers, inst, frame, &req).await
}
