//! WADO-RS (PS3.18 §10.4): instances, frames, bulk data and metadata.
//!
//! Objects are served as stored (original transfer syntax). A request for
//! another transfer syntax is answered 406 with the stored one named, until
//! transcoding arrives. Frames come from the byte ranges recorded at ingest.
//! Single-part responses honour `Range`.

use axum::Extension;
use yunying_archive::Caller;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::stream::{self, StreamExt};
use yunying_archive::FrameData;
use yunying_dicom::ts;
use yunying_http_common::accept::{MediaRange, accept_of};
use yunying_http_common::multipart::{self, Part};
use yunying_http_common::range::{self, RangeRequest};
use yunying_http_common::AppError;
use yunying_index::{Scope, StoredInstance};

use crate::DicomWeb;

/// How instances will be sent.
#[derive(Debug, PartialEq)]
enum InstanceFormat {
    Multipart,
    Single,
}

fn ts_name(uid: &str) -> String {
    ts::known(uid).map(|k| format!("{} ({uid})", k.name)).unwrap_or_else(|| uid.to_string())
}

/// Chooses how to send instances stored in `stored` transfer syntaxes.
fn negotiate_instances(accept: &[MediaRange], stored: &[&str], count: usize) -> Result<InstanceFormat, AppError> {
    let ts_ok = |r: &MediaRange| match r.param("transfer-syntax") {
        None | Some("*") => true,
        Some(t) => stored.iter().all(|s| *s == t),
    };
    let mut asked = Vec::new();
    for r in accept {
        match r.essence.as_str() {
            "multipart/related" => {
                let ty = r.param("type").unwrap_or("application/dicom");
                if ty != "application/dicom" {
                    asked.push(format!("multipart/related; type={ty}"));
                    continue;
                }
                if ts_ok(r) {
                    return Ok(InstanceFormat::Multipart);
                }
                asked.push(format!("transfer syntax {}", r.param("transfer-syntax").unwrap_or("")));
            }
            "application/dicom" => {
                if count != 1 {
                    asked.push("application/dicom for several instances".into());
                    continue;
                }
                if ts_ok(r) {
                    return Ok(InstanceFormat::Single);
                }
                asked.push(format!("transfer syntax {}", r.param("transfer-syntax").unwrap_or("")));
            }
            "*/*" | "multipart/*" => return Ok(InstanceFormat::Multipart),
            "application/*" if count == 1 => return Ok(InstanceFormat::Single),
            other => asked.push(other.to_string()),
        }
    }
    let mut kinds: Vec<String> = stored.iter().map(|s| ts_name(s)).collect();
    kinds.dedup();
    Err(AppError::not_acceptable(format!(
        "cannot serve {} : the objects are stored as {}; transcoding is not available yet, ask for \
         multipart/related; type=\"application/dicom\"; transfer-syntax=* (or the stored transfer syntax)",
        asked.join(", "),
        kinds.join(", ")
    )))
}

async fn send_instances(dw: &DicomWeb, headers: &HeaderMap, scope: Scope) -> Result<Response, AppError> {
    let found = dw.archive.stored(&scope).await?;
    let stored: Vec<&str> = found.iter().map(|i| i.transfer_syntax.as_str()).collect();
    let format = negotiate_instances(&accept_of(headers), &stored, found.len())?;
    if format == InstanceFormat::Single {
        let inst = &found[0];
        let ct = format!("application/dicom; transfer-syntax={}", inst.transfer_syntax);
        return single_object(dw, headers, inst, &ct).await;
    }
    let boundary = multipart::new_boundary();
    let archive = dw.archive.clone();
    let parts = stream::iter(found).then(move |inst| {
        let archive = archive.clone();
        async move {
            let body = archive.open_object(&inst).await.map_err(|e| std::io::Error::other(e.to_string()))?;
            Ok(Part {
                content_type: format!("application/dicom; transfer-syntax={}", inst.transfer_syntax),
                content_length: Some(inst.size_bytes as u64),
                content_location: None,
                body,
            })
        }
    });
    let body = multipart::body(boundary.clone(), parts.boxed());
    Ok(multipart_response(body, &multipart::content_type(&boundary, "application/dicom", None)))
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

/// How frames will be sent: multipart or not, the media type and transfer syntax of the parts.
#[derive(Debug, PartialEq)]
struct FrameFormat {
    multipart: bool,
    media_type: String,
    transfer_syntax: String,
    /// Compressed frames decoded to native little endian on the way out.
    decompress: bool,
}

fn negotiate_frames(accept: &[MediaRange], stored_ts: &str, count: usize) -> Result<FrameFormat, AppError> {
    let native = ts::is_native(stored_ts);
    // Native frames leave as little endian (big endian ones are swapped).
    let (media, out_ts) = if native {
        ("application/octet-stream", ts::EXPLICIT_VR_LE.to_string())
    } else {
        (ts::frame_media_type(stored_ts), stored_ts.to_string())
    };
    let ts_ok = |t: Option<&str>| match t {
        None => true,
        Some("*") => true,
        Some(t) => t == out_ts || (native && ts::is_native(t) && t != ts::DEFLATED_EXPLICIT_VR_LE),
    };
    let fits = |ty: &str, t: Option<&str>| -> bool {
        if ty == "application/octet-stream" {
            if native {
                ts_ok(t)
            } else {
                // Compressed bytes as octet-stream only when the client takes any syntax.
                matches!(t, Some("*")) || t == Some(stored_ts)
            }
        } else {
            (ty == media || ty == "*/*" || (ty.ends_with("/*") && media.starts_with(ty.trim_end_matches('*'))))
                && ts_ok(t)
        }
    };
    for r in accept {
        let t = r.param("transfer-syntax");
        match r.essence.as_str() {
            "multipart/related" => {
                let ty = r.param("type").unwrap_or("application/octet-stream");
                if fits(ty, t) {
                    let media_type = if ty == "application/octet-stream" { "application/octet-stream" } else { media };
                    return Ok(FrameFormat { multipart: true, media_type: media_type.into(), transfer_syntax: out_ts, decompress: false });
                }
            }
            "*/*" | "multipart/*" => {
                return Ok(FrameFormat { multipart: true, media_type: media.into(), transfer_syntax: out_ts, decompress: false });
            }
            single if count == 1 && fits(single, t) => {
                let media_type = if single == "application/octet-stream" || single.contains('*') { media } else { single };
                return Ok(FrameFormat { multipart: false, media_type: media_type.into(), transfer_syntax: out_ts, decompress: false });
            }
            _ => {}
        }
    }
    // Compressed frames asked for as native little endian: decoded, when a
    // decoder exists for the stored syntax.
    if !native && yunying_pixels::decode::is_supported(stored_ts) {
        for r in accept {
            let t = r.param("transfer-syntax");
            let wants_native = matches!(t, Some(ts::EXPLICIT_VR_LE) | Some(ts::IMPLICIT_VR_LE));
            let octet = |ty: &str| ty == "application/octet-stream";
            match r.essence.as_str() {
                "multipart/related" if octet(r.param("type").unwrap_or("application/octet-stream")) && wants_native => {
                    return Ok(FrameFormat {
                        multipart: true,
                        media_type: "application/octet-stream".into(),
                        transfer_syntax: ts::EXPLICIT_VR_LE.into(),
                        decompress: true,
                    });
                }
                single if count == 1 && octet(single) && wants_native => {
                    return Ok(FrameFormat {
                        multipart: false,
                        media_type: "application/octet-stream".into(),
                        transfer_syntax: ts::EXPLICIT_VR_LE.into(),
                        decompress: true,
                    });
                }
                _ => {}
            }
        }
    }
    Err(AppError::not_acceptable(format!(
        "the frames are stored as {} ({media}) and cannot be decoded here yet: ask for \
         multipart/related; type=\"{media}\" or type=\"application/octet-stream\"; transfer-syntax=*",
        ts_name(stored_ts)
    )))
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
    let ct = multipart::content_type(&boundary, &f.media_type, Some(&f.transfer_syntax));
    multipart_response(multipart::body(boundary, parts.boxed()), &ct)
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
    let format = negotiate_frames(&accept_of(&headers), &inst.transfer_syntax, numbers.len())?;
    let frames = if format.decompress {
        dw.archive.frames_decompressed(inst, &numbers).await?
    } else {
        dw.archive.frames(inst, &numbers).await?
    };
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
            let format = negotiate_frames(&accept_of(&headers), &inst.transfer_syntax, numbers.len())?;
            let frames = dw.archive.frames(inst, &numbers).await?;
            let location = format!("{}/studies/{study}/series/{series}/instances/{sop}", dw.base(&headers));
            Ok(frames_response(&headers, frames, format, &location, &numbers))
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yunying_http_common::accept::parse_accept;

    #[test]
    fn instance_negotiation() {
        let le = ["1.2.840.10008.1.2.1"];
        assert_eq!(negotiate_instances(&parse_accept(&[]), &le, 3).unwrap(), InstanceFormat::Multipart);
        let a = parse_accept(&[r#"multipart/related; type="application/dicom"; transfer-syntax=*"#]);
        assert_eq!(negotiate_instances(&a, &["1.2.840.10008.1.2.4.80"], 1).unwrap(), InstanceFormat::Multipart);
        let a = parse_accept(&[r#"multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.202"#]);
        let e = negotiate_instances(&a, &le, 1).unwrap_err();
        assert_eq!(e.status, StatusCode::NOT_ACCEPTABLE);
        assert!(e.message.contains("Explicit VR Little Endian"), "{}", e.message);
        let a = parse_accept(&["application/dicom"]);
        assert_eq!(negotiate_instances(&a, &le, 1).unwrap(), InstanceFormat::Single);
        assert!(negotiate_instances(&a, &le, 2).is_err());
    }

    #[test]
    fn frame_negotiation() {
        let cornerstone = parse_accept(&["multipart/related; type=application/octet-stream; transfer-syntax=*"]);
        let f = negotiate_frames(&cornerstone, "1.2.840.10008.1.2", 1).unwrap();
        assert_eq!(
            f,
            FrameFormat {
                multipart: true,
                media_type: "application/octet-stream".into(),
                transfer_syntax: "1.2.840.10008.1.2.1".into(),
                decompress: false
            }
        );
        let f = negotiate_frames(&cornerstone, "1.2.840.10008.1.2.4.80", 1).unwrap();
        assert_eq!(f.transfer_syntax, "1.2.840.10008.1.2.4.80");
        let plain = parse_accept(&["multipart/related; type=application/octet-stream"]);
        assert!(negotiate_frames(&plain, "1.2.840.10008.1.2.4.80", 1).is_err(), "compressed frames are not octet-stream");
        let jls = parse_accept(&[r#"multipart/related; type="image/jls""#]);
        assert_eq!(negotiate_frames(&jls, "1.2.840.10008.1.2.4.80", 1).unwrap().media_type, "image/jls");
        let single = parse_accept(&["application/octet-stream"]);
        assert!(!negotiate_frames(&single, "1.2.840.10008.1.2.1", 1).unwrap().multipart);
        // Native little endian asked of compressed frames: decoded where a decoder exists.
        let native = parse_accept(&["multipart/related; type=application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1"]);
        let f = negotiate_frames(&native, "1.2.840.10008.1.2.5", 1).unwrap();
        assert!(f.decompress && f.transfer_syntax == "1.2.840.10008.1.2.1");
        assert!(negotiate_frames(&native, "1.2.840.10008.1.2.4.80", 1).is_err(), "no JPEG-LS decoder yet");
        assert!(!negotiate_frames(&native, "1.2.840.10008.1.2.1", 1).unwrap().decompress);
        assert!(parse_frame_list("1,2,3").is_ok());
        assert!(parse_frame_list("0").is_err());
        assert!(parse_frame_list("a").is_err());
    }
}
