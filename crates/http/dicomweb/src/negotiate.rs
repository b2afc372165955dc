//! Content negotiation of WADO-RS retrievals (PS3.18 §8.7): from the
//! `Accept` header and the syntaxes the objects are stored in, what to send:
//! single part or multipart, which media type, which transfer syntax, and
//! whether the archive must transcode.
//!
//! Rules, in the client's order of preference:
//! - `transfer-syntax=*` (or a wildcard media range) sends what is stored;
//! - a named transfer syntax is sent as named, transcoded when it is not
//!   the stored one (and refused, 406, when it cannot be made);
//! - no transfer syntax means the default of the media type (Table
//!   8.7.3-5): Explicit VR Little Endian for `application/dicom` and
//!   `application/octet-stream`, JPEG-LS lossless for `image/jls`, JPEG 2000
//!   lossless for `image/jp2`, HTJ2K lossless for `image/jphc`, RLE for
//!   `image/dicom-rle`, JPEG Baseline for `image/jpeg`; except that a frame
//!   already stored in that media type is sent as stored.
//!
//! Native frames leave as little endian whatever their stored byte order.

use yunying_dicom::ts;
use yunying_http_common::AppError;
use yunying_http_common::accept::MediaRange;

/// What the stored syntax is sent as, untouched (native → explicit LE).
pub(crate) fn served_as(stored: &str) -> &str {
    if ts::is_native(stored) { ts::EXPLICIT_VR_LE } else { stored }
}

fn ts_name(uid: &str) -> String {
    ts::known(uid).map(|k| format!("{} ({uid})", k.name)).unwrap_or_else(|| uid.to_string())
}

/// The default transfer syntax of a frame media type.
fn default_frame_ts(media: &str) -> Option<&'static str> {
    Some(match media {
        "application/octet-stream" => ts::EXPLICIT_VR_LE,
        "image/jls" => "1.2.840.10008.1.2.4.80",
        "image/jp2" => "1.2.840.10008.1.2.4.90",
        "image/jphc" => "1.2.840.10008.1.2.4.201",
        "image/dicom-rle" | "image/x-dicom-rle" => "1.2.840.10008.1.2.5",
        "image/jpeg" => "1.2.840.10008.1.2.4.50",
        _ => return None,
    })
}

fn media_matches(range: &str, media: &str) -> bool {
    range == media
        || range == "*/*"
        || range == "*"
        || (range.ends_with("/*") && media.starts_with(range.trim_end_matches('*')))
        || (range == "image/x-dicom-rle" && media == "image/dicom-rle")
}

/// How frames will be sent.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FrameFormat {
    pub multipart: bool,
    pub media_type: String,
    /// The transfer syntax the frames are in, as labelled.
    pub transfer_syntax: String,
    /// The archive must transcode to `transfer_syntax`.
    pub transcode: bool,
}

/// Chooses how to send `count` frames stored in `stored`; `can(target)`
/// says whether the archive can make frames in `target`.
pub(crate) fn frames(
    accept: &[MediaRange],
    stored: &str,
    count: usize,
    can: impl Fn(&str) -> bool,
) -> Result<FrameFormat, AppError> {
    let stored_out = served_as(stored);
    let stored_media = ts::frame_media_type(stored_out);
    let mut refused = Vec::new();
    for r in accept {
        let (multipart, ty) = match r.essence.as_str() {
            "multipart/related" => (true, r.param("type").unwrap_or("application/octet-stream").to_ascii_lowercase()),
            "*/*" | "multipart/*" => (true, "*/*".to_string()),
            single if count == 1 => (false, single.to_string()),
            single => {
                refused.push(format!("{single} for {count} frames (ask for multipart/related)"));
                continue;
            }
        };
        let param = r.param("transfer-syntax");
        let as_stored = |media: &str| FrameFormat {
            multipart,
            media_type: media.to_string(),
            transfer_syntax: stored_out.to_string(),
            transcode: false,
        };
        // What is stored, when the client takes it.
        let wildcard = ty.contains('*');
        match param {
            Some("*") if ty == "application/octet-stream" => return Ok(as_stored("application/octet-stream")),
            Some("*") | None if wildcard && media_matches(&ty, stored_media) => return Ok(as_stored(stored_media)),
            Some("*") if ty == stored_media => return Ok(as_stored(stored_media)),
            None if ty == stored_media => return Ok(as_stored(stored_media)),
            Some(t) if t != "*" && served_as(t) == stored_out => {
                let media = if ty == "application/octet-stream" || wildcard { stored_media.to_string() } else { ty.clone() };
                if media_matches(&ty, stored_media) || ty == "application/octet-stream" {
                    return Ok(as_stored(&media));
                }
            }
            _ => {}
        }
        // Otherwise a transcoded frame.
        let target = match param {
            Some(t) if t != "*" => Some(served_as(t)),
            _ => default_frame_ts(&ty),
        };
        let Some(target) = target else {
            refused.push(format!("{ty}{}", param.map(|p| format!(" ({p})")).unwrap_or_default()));
            continue;
        };
        let media = ts::frame_media_type(target);
        if !(ty == "application/octet-stream" || media_matches(&ty, media)) {
            refused.push(format!("{ty} in {}", ts_name(target)));
            continue;
        }
        if can(target) {
            let media_type = if ty == "application/octet-stream" { ty.clone() } else { media.to_string() };
            return Ok(FrameFormat { multipart, media_type, transfer_syntax: target.to_string(), transcode: true });
        }
        refused.push(ts_name(target));
    }
    Err(AppError::not_acceptable(format!(
        "the frames are stored as {} and cannot be given as {}: ask for transfer-syntax=* (the stored syntax) or \
         for a syntax this server encodes (HTJ2K, JPEG-LS, JPEG 2000, RLE, Explicit VR Little Endian)",
        ts_name(stored),
        if refused.is_empty() { "asked".to_string() } else { refused.join(", ") }
    )))
}

/// How instances will be sent.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct InstanceFormat {
    pub multipart: bool,
    /// `None`: as stored; otherwise every instance in this syntax.
    pub target: Option<String>,
}

/// Chooses how to send `stored.len()` instances; `can(stored, target)` says
/// whether the archive can give an object stored in `stored` as `target`.
pub(crate) fn instances(
    accept: &[MediaRange],
    stored: &[&str],
    can: impl Fn(&str, &str) -> bool,
) -> Result<InstanceFormat, AppError> {
    let count = stored.len();
    let mut refused = Vec::new();
    for r in accept {
        let (multipart, ty) = match r.essence.as_str() {
            "multipart/related" => (true, r.param("type").unwrap_or("application/dicom").to_ascii_lowercase()),
            "*/*" | "multipart/*" => return Ok(InstanceFormat { multipart: true, target: None }),
            "application/*" if count == 1 => return Ok(InstanceFormat { multipart: false, target: None }),
            "application/dicom" if count == 1 => (false, "application/dicom".to_string()),
            "application/dicom" => {
                refused.push("application/dicom for several instances (ask for multipart/related)".into());
                continue;
            }
            other => {
                refused.push(other.to_string());
                continue;
            }
        };
        if ty != "application/dicom" && ty != "application/*" && ty != "*/*" {
            refused.push(format!("multipart/related; type={ty}"));
            continue;
        }
        let target = match r.param("transfer-syntax") {
            Some("*") => return Ok(InstanceFormat { multipart, target: None }),
            Some(t) => t,
            None => ts::EXPLICIT_VR_LE,
        };
        if stored.iter().all(|s| *s == target) {
            return Ok(InstanceFormat { multipart, target: None });
        }
        if stored.iter().all(|s| *s == target || can(s, target)) {
            return Ok(InstanceFormat { multipart, target: Some(target.to_string()) });
        }
        refused.push(ts_name(target));
    }
    let mut kinds: Vec<String> = stored.iter().map(|s| ts_name(s)).collect();
    kinds.sort();
    kinds.dedup();
    Err(AppError::not_acceptable(format!(
        "cannot serve {}: the objects are stored as {}; ask for multipart/related; type=\"application/dicom\"; \
         transfer-syntax=* (the stored syntax) or a syntax this server encodes",
        if refused.is_empty() { "what was asked".to_string() } else { refused.join(", ") },
        kinds.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use yunying_http_common::accept::parse_accept;

    const LE: &str = "1.2.840.10008.1.2.1";
    const JLS: &str = "1.2.840.10008.1.2.4.80";
    const RPCL: &str = "1.2.840.10008.1.2.4.202";

    fn all(_: &str) -> bool {
        true
    }
    fn none(_: &str) -> bool {
        false
    }

    #[test]
    fn instances_follow_the_standard_defaults() {
        let le = [LE];
        let any = |_: &str, _: &str| true;
        let no = |_: &str, _: &str| false;
        assert_eq!(instances(&parse_accept(&[]), &le, any).unwrap(), InstanceFormat { multipart: true, target: None });
        let star = parse_accept(&[r#"multipart/related; type="application/dicom"; transfer-syntax=*"#]);
        assert_eq!(instances(&star, &[JLS], no).unwrap().target, None);
        // No transfer syntax: Explicit VR Little Endian.
        let plain = parse_accept(&[r#"multipart/related; type="application/dicom""#]);
        assert_eq!(instances(&plain, &le, no).unwrap().target, None);
        assert_eq!(instances(&plain, &[JLS], any).unwrap().target.as_deref(), Some(LE));
        assert_eq!(instances(&plain, &[JLS], no).unwrap_err().status, StatusCode::NOT_ACCEPTABLE);
        let rpcl = parse_accept(&[&format!(r#"multipart/related; type="application/dicom"; transfer-syntax={RPCL}"#)]);
        assert_eq!(instances(&rpcl, &le, any).unwrap().target.as_deref(), Some(RPCL));
        let e = instances(&rpcl, &le, no).unwrap_err();
        assert!(e.message.contains("Explicit VR Little Endian"), "{}", e.message);
        let single = parse_accept(&["application/dicom"]);
        assert!(!instances(&single, &le, any).unwrap().multipart);
        assert!(instances(&single, &[LE, LE], any).is_err());
    }

    #[test]
    fn frames_as_stored_or_transcoded() {
        let cornerstone = parse_accept(&["multipart/related; type=application/octet-stream; transfer-syntax=*"]);
        let f = frames(&cornerstone, "1.2.840.10008.1.2", 1, none).unwrap();
        assert_eq!(
            f,
            FrameFormat { multipart: true, media_type: "application/octet-stream".into(), transfer_syntax: LE.into(), transcode: false }
        );
        let f = frames(&cornerstone, JLS, 1, none).unwrap();
        assert_eq!((f.transfer_syntax.as_str(), f.transcode), (JLS, false));
        // Plain octet-stream of compressed frames: decompressed (the default syntax).
        let plain = parse_accept(&["multipart/related; type=application/octet-stream"]);
        let f = frames(&plain, JLS, 1, all).unwrap();
        assert_eq!((f.transfer_syntax.as_str(), f.transcode), (LE, true));
        assert!(frames(&plain, JLS, 1, none).is_err());
        let jls = parse_accept(&[r#"multipart/related; type="image/jls""#]);
        let f = frames(&jls, JLS, 1, none).unwrap();
        assert_eq!((f.media_type.as_str(), f.transcode), ("image/jls", false));
        let f = frames(&jls, LE, 1, all).unwrap();
        assert_eq!((f.media_type.as_str(), f.transfer_syntax.as_str(), f.transcode), ("image/jls", JLS, true));
        // HTJ2K RPCL, named.
        let ht = parse_accept(&[&format!("multipart/related; type=\"image/jphc\"; transfer-syntax={RPCL}")]);
        let f = frames(&ht, "1.2.840.10008.1.2.4.70", 1, all).unwrap();
        assert_eq!((f.media_type.as_str(), f.transfer_syntax.as_str(), f.transcode), ("image/jphc", RPCL, true));
        // Single part, for a viewer's byte ranges.
        let single = parse_accept(&[&format!("image/jphc; transfer-syntax={RPCL}")]);
        let f = frames(&single, LE, 1, all).unwrap();
        assert!(!f.multipart && f.transcode);
        assert!(frames(&single, LE, 2, all).is_err(), "several frames need multipart");
        // A mismatched media type and syntax is refused.
        let bad = parse_accept(&[&format!("multipart/related; type=\"image/jls\"; transfer-syntax={RPCL}")]);
        assert!(frames(&bad, LE, 1, all).is_err());
        // Native frames asked as explicit LE are as stored.
        let native = parse_accept(&[&format!("multipart/related; type=application/octet-stream; transfer-syntax={LE}")]);
        assert!(!frames(&native, "1.2.840.10008.1.2.2", 1, none).unwrap().transcode);
    }
}
