//! WADO-RS (PS3.18 §10.4): instances, frames, bulk data and metadata.
//!
//! Objects and frames are served as stored, or in the transfer syntax the
//! client asks for (see [`crate::negotiate`]); frames come from the byte
//! ranges recorded at ingest, HTJ2K RPCL frames from the streaming copy.
//! Single-part responses, and multipart responses of one frame, honour
//! `Range` (206 with `Content-Range`), so that a viewer can read the first
//! kilobytes of a progressive frame and refine it.

use axum::Extension;
use yunying_archive::Caller;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::stream::{self, StreamExt};
use yunying_archive::{Archive, FrameData};
use yunying_http_common::accept::accept_of;
use yunying_http_common::multipart::{self, Part};
use yunying_http_common::range::{self, RangeRequest};
use yunying_http_common::AppError;
use yunying_index::{Scope, StoredInstance};

use crate::DicomWeb;
use crate::negotiate::{self, FrameFormat};

async fn send_instances(dw: &DicomWeb, headers: &HeaderMap, scope: Scope) -> Result<Response, AppError> {
    let found = dw.archive.stored(&scope).await?;
    let stored: Vec<&str> = found.iter().map(|i| i.transfer_syntax.as_str()).collect();
    let format = negotiate::instances(&accept_of(headers), &stored, Archive::can_transcode_object)?;
    // Objects being restored from an archive storage class: "retrieving".
    dw.archive.ensure_readable(&found).await?;
    if !format.multipart {
        let inst = &found[0];
        return match &format.target {
            None => {
                let ct = format!("application/dicom; transfer-syntax={}", inst.transfer_syntax);
                single_object(dw, headers, inst, &ct).await
            }
            Some(target) => {
                let bytes = dw.archive.object_in(inst, target).await?;
                Ok(single_bytes(headers, bytes, &format!("application/dicom; transfer-syntax={target}")))
            }
        };
    }
    let boundary = multipart::new_boundary();
    let archive = dw.archive.clone();
    let target = format.target.clone();
    let parts = stream::iter(found).then(move |inst| {
        let archive = archive.clone();
        let target = target.clone();
        async move {
            let io = |e: yunying_archive::ArchiveError| std::io::Error::other(e.to_string());
            match target {
                Some(t) if t != inst.transfer_syntax => {
                    let bytes = archive.object_in(&inst, &t).await.map_err(io)?;
                    Ok(Part {
                        content_type: format!("application/dicom; transfer-syntax={t}"),
                        content_length: Some(bytes.len() as u64),
                        content_location: None,
                        body: stream::once(async move { Ok(bytes) }).boxed(),
                    })
                }
                _ => Ok(Part {
                    content_type: format!("application/dicom; transfer-syntax={}", inst.transfer_syntax),
                    content_length: Some(inst.size_bytes as u64),
                    content_location: None,
                    body: archive.open_object(&inst).await.map_err(io)?,
                }),
            }
        }
    });
    let body = multipart::body(boundary.clone(), parts.boxed());
    let ts = format.target.as_deref();
    Ok(multipart_response(body, &multipart::content_type(&boundary, "application/dicom", ts)))
}

fn multipart_response(body: Body, content_type: &str) -> Response {
    let mut r = Response::new(body);
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

/// A whole stored object as a single-part response, with `Range` support.
async fn single_object(dw: &DicomWeb, headers: &HeaderMap, inst: &StoredInstance, ct: &str) -> Result<Response, AppError> {
    let total = inst.size_bytes as u64;
    let range_header = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    match range::resolve(range_header, total) {
        RangeRequest::Full => {
            let body = Body::from_stream(dw.archive.open_object(inst).await?);
            let mut r = Response::new(body);
            let h = r.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap_or(HeaderValue::from_static("application/dicom")));
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(total));
            h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            Ok(r)
        }
        RangeRequest::Partial(br) => {
            let bytes = dw.archive.object_range(inst, br.start, br.len()).await?;
            Ok(partial(bytes, ct, &br.content_range(total)))
        }
        RangeRequest::Unsatisfiable => Ok(unsatisfiable(total)),
    }
}

fn partial(bytes: Bytes, ct: &str, content_range: &str) -> Response {
    let mut r = (StatusCode::PARTIAL_CONTENT, bytes).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap_or(HeaderValue::from_static("application/octet-stream")));
    if let Ok(v) = HeaderValue::from_str(content_range) {
        h.insert(header::CONTENT_RANGE, v);
    }
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    r
}

fn unsatisfiable(total: u64) -> Response {
    let mut r = AppError::new(StatusCode::RANGE_NOT_SATISFIABLE, "the requested range is outside the resource").into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{total}")) {
        r.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    r
}

fn single_bytes(headers: &HeaderMap, bytes: Bytes, ct: &str) -> Response {
    let total = bytes.len() as u64;
    match range::resolve(headers.get(header::RANGE).and_then(|v| v.to_str().ok()), total) {
        RangeRequest::Full => {
            let mut r = (StatusCode::OK, bytes).into_response();
            let h = r.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap_or(HeaderValue::from_static("application/octet-stream")));
            h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            r
        }
        RangeRequest::Partial(br) => {
            partial(bytes.slice(br.start as usize..=br.end as usize), ct, &br.content_range(total))
        }
        RangeRequest::Unsatisfiable => unsatisfiable(total),
    }
}

/// Checks that the caller may read the study, and records the read (the
/// audit trail folds a viewer's many requests into one record and a count).
async fn read_access(dw: &DicomWeb, caller: &Caller, study: &str, what: &str) -> Result<(), AppError> {
    let facts = dw.archive.study_access(caller, yunying_archive::policy::Action::Read, study).await?;
    dw.archive.audit_access(caller, yunying_archive::policy::Action::Read, &facts, serde_json::json!({ "resource": format!("WADO-RS {what}") })).await;
    Ok(())
}

/// `GET /studies/{study}`
pub async fn study(
    State(dw): State<DicomWeb>,
    Extension(caller): Extension<Caller>,
    Path(study): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    read_access(&dw, &caller, &study, "study").await?;
    send_instances(&dw, &headers, Scope::study(&study)).await
}

/// `GET /studies/{study}/series/{series}`
pub async fn series(
    State(dw): State<DicomWeb>,
    Extension(caller): Extension<Caller>,
    Path((study, series)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    read_access(&dw, &caller, &study, "instances").await?;
    send_instances(&dw, &headers, Scope::series(&study, &series)).await
}

/// `GET /studies/{study}/series/{series}/instances/{instance}`
pub async fn instance(
    State(dw): State<DicomWeb>,
    Extension(caller): Extension<Caller>,
    Path((study, series, sop)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    read_access(&dw, &caller, &study, "instances").await?;
    send_instances(&dw, &headers, Scope::instance(&study, &series, &sop)).await
}

async fn metadata(dw: &DicomWeb, headers: &HeaderMap, scope: Scope) -> Result<Response, AppError> {
    let accept = accept_of(headers);
    let ok = accept.iter().any(|r| {
        matches!(r.essence.as_str(), "application/dicom+json" | "application/json" | "*/*" | "application/*")
    });
    if !ok {
        return Err(AppError::not_acceptable("metadata is available as application/dicom+json only"));
    }
    let body = dw.archive.metadata_json(&scope, &dw.base(headers)).await?;
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/dicom+json"));
    Ok(r)
}

/// `GET /studies/{study}/metadata`
pub async fn study_metadata(
    State(dw): State<DicomWeb>,
    Extension(caller): Extension<Caller>,
    Path(study): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    read_access(&dw, &caller, &study, "metadata").await?;
    metadata(&dw, &headers, Scope::study(&study)).await
}

/// `GET /studies/{study}/series/{series}/metadata`
pub async fn series_metadata(
    State(dw): State<DicomWeb>,
    Extension(caller): Extension<Caller>,
    Path((study, series)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    read_access(&dw, &caller, &study, "instances").await?;
    metadata(&dw, &headers, Scope::series(&study, &series)).await
}

/// `GET /studies/{study}/series/{series}/instances/{instance}/metadata`
pub async fn instance_metadata(
    State(dw): State<DicomWeb>,
    Extension(caller): Extension<Caller>,
    Path((study, series, sop)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    read_access(&dw, &caller, &study, "instances").await?;
    metadata(&dw, &headers, Scope::instance(&study, &series, &sop)).await
}

pub(crate) fn parse_frame_list(s: &str) -> Result<Vec<u32>, AppError> {
    let list: Result<Vec<u32>, _> = s.split(',').map(|f| f.trim().parse::<u32>()).collect();
    match list {
        Ok(l) if !l.is_empty() && l.iter().all(|n| *n > 0) => Ok(l),
        _ => Err(AppError::bad_request(format!("{s:?} is not a list of frame numbers (1, 2, ...)"))),
    }
}

fn frames_response(headers: &HeaderMap, frames: Vec<FrameData>, f: FrameFormat, location: &str, numbers: &[u32]) -> Response {
    let part_type = format!("{}; transfer-syntax={}", f.media_type, f.transfer_syntax);
    if !f.multipart {
        let frame = frames.into_iter().next().map(|fd| fd.bytes).unwrap_or_default();
        return single_bytes(headers, frame, &part_type);
    }
    let ct = |boundary: &str| multipart::content_type(boundary, &f.media_type, Some(&f.transfer_syntax));
    if frames.len() == 1 && headers.contains_key(header::RANGE) {
        // A viewer reading a frame in byte ranges: the body must be the
        // same from one request to the next, boundary included.
        let frame = &frames[0].bytes;
        let boundary = format!("yunying-{:016x}", u64::from_be_bytes(sha2_prefix(frame, &part_type)));
        let loc = format!("{location}/frames/{}", numbers[0]);
        let body = multipart::one_part(&boundary, &part_type, Some(&loc), frame);
        return single_bytes(headers, body, &ct(&boundary));
    }
    let boundary = multipart::new_boundary();
    let loc = location.to_string();
    let nums = numbers.to_vec();
    let parts = stream::iter(frames.into_iter().zip(nums).map(move |(fd, n)| {
        let len = fd.bytes.len() as u64;
        Ok(Part {
            content_type: part_type.clone(),
            content_length: Some(len),
            content_location: Some(format!("{loc}/frames/{n}")),
            body: stream::once(async move { Ok(fd.bytes) }).boxed(),
        })
    }));
    let ct = ct(&boundary);
    multipart_response(multipart::body(boundary, parts.boxed()), &ct)
}

/// Eight bytes naming a frame's content and type, for a stable boundary.
fn sha2_prefix(bytes: &[u8], part_type: &str) -> [u8; 8] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(part_type.as_bytes());
    h.update(bytes);
    let d = h.finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(&d[..8]);
    out
}

/// Frames in the negotiated format: as stored, or transcoded.
async fn frames_for(dw: &DicomWeb, inst: &StoredInstance, numbers: &[u32], f: &FrameFormat) -> Result<Vec<FrameData>, AppError> {
    Ok(if f.transcode {
        dw.archive.frames_in(inst, numbers, &f.transfer_syntax).await?
    } else {
        dw.archive.frames(inst, numbers).await?
    })
}

/// `GET /studies/{study}/series/{series}/instances/{instance}/frames/{list}`
pub async fn frames(
    State(dw): State<DicomWeb>,
    Extension(caller): Extension<Caller>,
    Path((study, series, sop, list)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    read_access(&dw, &caller, &study, "instances").await?;
    let numbers = parse_frame_list(&list)?;
    let found = dw.archive.stored(&Scope::instance(&study, &series, &sop)).await?;
    let inst = &found[0];
    let format = negotiate::frames(&accept_of(&headers), &inst.transfer_syntax, numbers.len(), |t| {
        Archive::can_transcode(&inst.transfer_syntax, t)
    })?;
    let frames = frames_for(&dw, inst, &numbers, &format).await?;
    let location = format!("{}/studies/{study}/series/{series}/instances/{sop}", dw.base(&headers));
    Ok(frames_response(&headers, frames, format, &location, &numbers))
}

/// `GET /studies/{study}/series/{series}/instances/{instance}/bulkdata/{path}`
pub async fn bulk(
    State(dw): State<DicomWeb>,
    Extension(caller): Extension<Caller>,
    Path((study, series, sop, path)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    read_access(&dw, &caller, &study, "instances").await?;
    let found = dw.archive.stored(&Scope::instance(&study, &series, &sop)).await?;
    let inst = &found[0];
    let path = path.trim_matches('/').to_ascii_uppercase();
    match dw.archive.bulk(inst, &path).await {
        Ok(bytes) => {
            let single = accept_of(&headers).iter().any(|r| r.essence == "application/octet-stream");
            if single {
                return Ok(single_bytes(&headers, bytes, "application/octet-stream"));
            }
            let boundary = multipart::new_boundary();
            let len = bytes.len() as u64;
            let parts = stream::once(async move {
                Ok(Part {
                    content_type: "application/octet-stream".into(),
                    content_length: Some(len),
                    content_location: None,
                    body: stream::once(async move { Ok(bytes) }).boxed(),
                })
            });
            let ct = multipart::content_type(&boundary, "application/octet-stream", None);
            Ok(multipart_response(multipart::body(boundary, parts.boxed()), &ct))
        }
        Err(yunying_archive::ArchiveError::NotFound(_)) if path == "7FE00010" => {
            // Encapsulated pixel data: its bulk data is the frames.
            let count = inst.number_of_frames.unwrap_or(1).max(1) as u32;
            let numbers: Vec<u32> = (1..=count).collect();
            let format = negotiate::frames(&accept_of(&headers), &inst.transfer_syntax, numbers.len(), |t| {
                Archive::can_transcode(&inst.transfer_syntax, t)
            })?;
            let frames = frames_for(&dw, inst, &numbers, &format).await?;
            let location = format!("{}/studies/{study}/series/{series}/instances/{sop}", dw.base(&headers));
            Ok(frames_response(&headers, frames, format, &location, &numbers))
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_lists() {
        assert_eq!(parse_frame_list("1,2,3").unwrap(), vec![1, 2, 3]);
        assert!(parse_frame_list("0").is_err());
        assert!(parse_frame_list("a").is_err());
    }
}
