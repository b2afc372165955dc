//! QIDO-RS (PS3.18 §10.6): search for studies, series and instances.
//!
//! Query parameters: attribute keywords or tags (`PatientName=`,
//! `00100020=`), `includefield` (repeatable, comma-separated, or `all`),
//! `limit`, `offset`, `fuzzymatching`. Matching follows
//! `yunying_index::query` (one implementation for QIDO-RS and C-FIND).
//! Results carry the default return attributes of their level (PS3.18
//! Tables 10.6.3-3 to -5), the computed attributes, and what was included.
//! Keys the archive cannot match on are ignored and reported in a `Warning`
//! header, as the standard allows.
//!
//! Two extensions serve study lists: `orderby=StudyDate|-PatientName|…`
//! (study level; `-` descending; default newest first) and
//! `institution=CODE[,CODE]` (narrows to member institutions within the
//! caller's scope). A study search that pages (`limit`) gets the total in
//! `X-Total-Count`.

use axum::Extension;
use yunying_archive::Caller;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::value::RawValue;
use serde_json::{Value as Json, json};
use yunying_dicom::Tag;
use yunying_dicom::dict;
use yunying_http_common::{AppError, query_pairs};
use yunying_index::query::{Filter, Key, Level, Matcher, Query, StudyOrder, ValueKind};
use yunying_index::{InstanceRow, SeriesRow, StudyRow};

use crate::DicomWeb;

/// Study-level attributes returned by default.
const STUDY_DEFAULT: &[(u16, u16)] = &[
    (0x0008, 0x0020), // StudyDate
    (0x0008, 0x0030), // StudyTime
    (0x0008, 0x0050), // AccessionNumber
    (0x0008, 0x0090), // ReferringPhysicianName
    (0x0008, 0x0201), // TimezoneOffsetFromUTC
    (0x0008, 0x1030), // StudyDescription
    (0x0010, 0x0010), // PatientName
    (0x0010, 0x0020), // PatientID
    (0x0010, 0x0021), // IssuerOfPatientID
    (0x0010, 0x0030), // PatientBirthDate
    (0x0010, 0x0040), // PatientSex
    (0x0020, 0x000D), // StudyInstanceUID
    (0x0020, 0x0010), // StudyID
];

/// Series-level attributes returned by default.
const SERIES_DEFAULT: &[(u16, u16)] = &[
    (0x0008, 0x0060), // Modality
    (0x0008, 0x0201), // TimezoneOffsetFromUTC
    (0x0008, 0x103E), // SeriesDescription
    (0x0018, 0x0015), // BodyPartExamined
    (0x0020, 0x000E), // SeriesInstanceUID
    (0x0020, 0x0011), // SeriesNumber
    (0x0040, 0x0244), // PerformedProcedureStepStartDate
    (0x0040, 0x0245), // PerformedProcedureStepStartTime
    (0x0040, 0x0275), // RequestAttributesSequence
];

/// Instance-level attributes returned by default.
const INSTANCE_DEFAULT: &[(u16, u16)] = &[
    (0x0008, 0x0016), // SOPClassUID
    (0x0008, 0x0018), // SOPInstanceUID
    (0x0008, 0x0201), // TimezoneOffsetFromUTC
    (0x0020, 0x0013), // InstanceNumber
    (0x0028, 0x0008), // NumberOfFrames
    (0x0028, 0x0010), // Rows
    (0x0028, 0x0011), // Columns
    (0x0028, 0x0100), // BitsAllocated
];

/// What to include beyond the defaults.
#[derive(Debug, Default)]
struct Include {
    all: bool,
    tags: Vec<(u16, u16)>,
}

impl Include {
    fn wants(&self, defaults: &[(u16, u16)], key: &str) -> bool {
        if self.all {
            return true;
        }
        let Ok(v) = u32::from_str_radix(key, 16) else { return false };
        let t = ((v >> 16) as u16, v as u16);
        defaults.contains(&t) || self.tags.contains(&t)
    }
}

/// A parsed QIDO-RS request.
struct Request {
    query: Query,
    include: Include,
    warnings: Vec<String>,
    limit_given: bool,
}

fn kind_of(tag: Tag) -> ValueKind {
    use yunying_dicom::VR;
    match dict::vr_of(tag) {
        VR::PN => ValueKind::PersonName,
        VR::UI => ValueKind::Uid,
        VR::DA => ValueKind::Date,
        VR::TM => ValueKind::Time,
        VR::DT => ValueKind::DateTime,
        VR::IS | VR::US | VR::UL | VR::SS | VR::SL => ValueKind::Integer,
        VR::CS => ValueKind::Code,
        _ => ValueKind::Text,
    }
}

fn level_of_tag(tag: Tag) -> Level {
    let t = (tag.0, tag.1);
    if yunying_dicom::attrs::STUDY_LEVEL.iter().any(|x| (x.0, x.1) == t) {
        Level::Study
    } else if yunying_dicom::attrs::SERIES_LEVEL.iter().any(|x| (x.0, x.1) == t) {
        Level::Series
    } else {
        Level::Instance
    }
}

fn parse_request(dw: &DicomWeb, level: Level, raw: Option<&str>) -> Result<Request, AppError> {
    let mut query = Query::new(level);
    let mut include = Include::default();
    let mut warnings = Vec::new();
    let mut limit_given = false;
    for (k, v) in query_pairs(raw) {
        let key = k.trim();
        match key {
            "" => continue,
            "limit" => {
                let n: u32 = v.trim().parse().map_err(|_| AppError::bad_request(format!("limit {v:?} is not a number")))?;
                query.limit = Some(n);
                limit_given = true;
            }
            "offset" => {
                query.offset =
                    v.trim().parse().map_err(|_| AppError::bad_request(format!("offset {v:?} is not a number")))?;
            }
            "fuzzymatching" => query.fuzzy = v.trim().eq_ignore_ascii_case("true"),
            // Extensions for study lists (not in PS3.18): the order of
            // studies, and a narrowing to some member institutions.
            "orderby" => {
                if level == Level::Study {
                    query.order = Some(StudyOrder::parse(&v).map_err(AppError::bad_request)?);
                } else {
                    warnings.push("orderby applies to study searches only; ignored".into());
                }
            }
            "institution" => {
                let codes = query.institution_codes.get_or_insert_with(Vec::new);
                codes.extend(v.split(',').map(str::trim).filter(|c| !c.is_empty()).map(String::from));
            }
            "includefield" => {
                for f in v.split(',').map(str::trim).filter(|f| !f.is_empty()) {
                    if f == "all" {
                        include.all = true;
                    } else if let Some(t) = dict::parse_attribute(f) {
                        include.tags.push((t.0, t.1));
                    } else if f.contains('.') {
                        warnings.push(format!("includefield {f}: sequence paths are returned whole; use the sequence keyword"));
                    } else {
                        return Err(AppError::bad_request(format!("includefield {f:?} is not an attribute keyword or tag")));
                    }
                }
            }
            _ => {
                if key.contains('.') {
                    warnings.push(format!("{key}: sequence matching is not supported; ignored"));
                    continue;
                }
                let Some(tag) = dict::parse_attribute(key) else {
                    return Err(AppError::bad_request(format!(
                        "unknown query parameter {key:?}: use an attribute keyword (PatientID) or tag (00100020)"
                    )));
                };
                let qkey = Key::known(tag.0, tag.1).unwrap_or(Key::Other {
                    group: tag.0,
                    element: tag.1,
                    level: level_of_tag(tag),
                    kind: kind_of(tag),
                });
                match Matcher::parse(qkey.kind(), &v) {
                    Ok(Some(m)) => query.filters.push(Filter { key: qkey, matcher: m }),
                    Ok(None) => include.tags.push((tag.0, tag.1)), // universal matching: return it
                    Err(e) => return Err(AppError::bad_request(format!("{key}: {e}"))),
                }
            }
        }
    }
    let cap = dw.max_results;
    query.limit = Some(query.limit.unwrap_or(cap).min(cap));
    // Keys below the level cannot be answered: say so.
    let rank = |l: Level| match l {
        Level::Study => 0,
        Level::Series => 1,
        Level::Instance => 2,
    };
    let (kept, dropped): (Vec<Filter>, Vec<Filter>) =
        query.filters.drain(..).partition(|f| rank(f.key.level()) <= rank(level));
    query.filters = kept;
    for f in dropped {
        let (g, e) = f.key.tag();
        let name = dict::keyword_of(Tag(g, e)).map(str::to_string).unwrap_or_else(|| format!("{g:04X}{e:04X}"));
        warnings.push(format!("{name} cannot be matched at this query level; ignored"));
    }
    Ok(Request { query, include, warnings, limit_given })
}

fn scoped(mut q: Query, study: Option<&str>, series: Option<&str>) -> Result<Query, AppError> {
    if let Some(s) = study {
        q = q.filter_str(Key::StudyInstanceUid, s).map_err(AppError::bad_request)?;
    }
    if let Some(s) = series {
        q = q.filter_str(Key::SeriesInstanceUid, s).map_err(AppError::bad_request)?;
    }
    Ok(q)
}

/// A DICOM JSON object under construction, written without re-parsing the
/// stored attribute values (they are copied as raw JSON).
#[derive(Default)]
struct Obj {
    members: Vec<(String, String)>,
}

impl Obj {
    fn set(&mut self, key: &str, raw: String) {
        match self.members.iter_mut().find(|(k, _)| k == key) {
            Some(m) => m.1 = raw,
            None => self.members.push((key.to_string(), raw)),
        }
    }

    /// Copies the wanted members of stored attributes (a JSON object text).
    fn put_stored(&mut self, stored: &str, defaults: &[(u16, u16)], include: &Include) {
        let Ok(map) = serde_json::from_str::<std::collections::BTreeMap<&str, &RawValue>>(stored) else {
            return;
        };
        for (k, v) in map {
            if include.wants(defaults, k) {
                self.set(k, v.get().to_string());
            }
        }
    }

    fn into_json(mut self) -> String {
        self.members.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = String::with_capacity(self.members.iter().map(|(k, v)| k.len() + v.len() + 4).sum::<usize>() + 2);
        out.push('{');
        for (i, (k, v)) in self.members.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('"');
            out.push_str(k);
            out.push_str("\":");
            out.push_str(v);
        }
        out.push('}');
        out
    }
}

fn raw(v: Json) -> String {
    v.to_string()
}

fn study_obj(base: &str, row: &StudyRow, include: &Include) -> Obj {
    let mut m = Obj::default();
    m.set("00080005", raw(json!({"vr": "CS", "Value": ["ISO_IR 192"]})));
    m.put_stored(&row.attrs, STUDY_DEFAULT, include);
    m.set("00080056", raw(json!({"vr": "CS", "Value": ["ONLINE"]})));
    if row.modalities.is_empty() {
        m.set("00080061", raw(json!({"vr": "CS"})));
    } else {
        m.set("00080061", raw(json!({"vr": "CS", "Value": row.modalities})));
    }
    m.set("00081190", raw(json!({"vr": "UR", "Value": [format!("{base}/studies/{}", row.study_uid)]})));
    m.set("00201206", raw(json!({"vr": "IS", "Value": [row.num_series]})));
    m.set("00201208", raw(json!({"vr": "IS", "Value": [row.num_instances]})));
    m
}

fn series_obj(base: &str, row: &SeriesRow, include: &Include, with_study: bool) -> Obj {
    let mut m = if with_study { study_obj(base, &row.study, include) } else { Obj::default() };
    m.set("00080005", raw(json!({"vr": "CS", "Value": ["ISO_IR 192"]})));
    m.put_stored(&row.attrs, SERIES_DEFAULT, include);
    m.set("0020000D", raw(json!({"vr": "UI", "Value": [row.study_uid]})));
    m.set(
        "00081190",
        raw(json!({"vr": "UR", "Value": [format!("{base}/studies/{}/series/{}", row.study_uid, row.series_uid)]})),
    );
    m.set("00201209", raw(json!({"vr": "IS", "Value": [row.num_instances]})));
    m
}

fn instance_obj(base: &str, row: &InstanceRow, include: &Include, with_study: bool, with_series: bool) -> Obj {
    let mut m = if with_study { study_obj(base, &row.study, include) } else { Obj::default() };
    m.set("00080005", raw(json!({"vr": "CS", "Value": ["ISO_IR 192"]})));
    if with_series {
        m.put_stored(&row.series_attrs, SERIES_DEFAULT, include);
        m.set("00201209", raw(json!({"vr": "IS", "Value": [row.series_num_instances]})));
    }
    m.put_stored(&row.attrs, INSTANCE_DEFAULT, include);
    m.set("00080016", raw(json!({"vr": "UI", "Value": [row.sop_class_uid]})));
    m.set("00080018", raw(json!({"vr": "UI", "Value": [row.sop_uid]})));
    m.set("00080056", raw(json!({"vr": "CS", "Value": ["ONLINE"]})));
    m.set("0020000D", raw(json!({"vr": "UI", "Value": [row.study_uid]})));
    m.set("0020000E", raw(json!({"vr": "UI", "Value": [row.series_uid]})));
    m.set(
        "00081190",
        raw(json!({"vr": "UR", "Value": [format!(
            "{base}/studies/{}/series/{}/instances/{}",
            row.study_uid, row.series_uid, row.sop_uid
        )]})),
    );
    m.set("00083002", raw(json!({"vr": "UI", "Value": [row.transfer_syntax]})));
    m
}

fn respond(items: Vec<Obj>, req: &Request, truncated: bool) -> Response {
    let mut body = String::with_capacity(items.len() * 1024 + 2);
    body.push('[');
    for (i, it) in items.into_iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&it.into_json());
    }
    body.push(']');
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/dicom+json"));
    let mut warnings = req.warnings.clone();
    if truncated && !req.limit_given {
        warnings.push("there are more results than returned; use limit and offset to page".into());
    }
    for w in warnings {
        let text = format!("299 yunying \"{}\"", w.replace('"', "'"));
        if let Ok(v) = HeaderValue::from_str(&text) {
            h.append(header::WARNING, v);
        }
    }
    r
}

async fn run_studies(dw: &DicomWeb, caller: &Caller, headers: &HeaderMap, raw: Option<String>) -> Result<Response, AppError> {
    let mut req = parse_request(dw, Level::Study, raw.as_deref())?;
    req.query = dw.archive.scoped_query(caller, req.query).await?;
    let rows = dw.archive.query_studies(&req.query).await?;
    dw.archive.audit_query(caller, &format!("QIDO-RS studies {}", raw.as_deref().unwrap_or("")), rows.len(), None).await;
    let truncated = req.query.limit.is_some_and(|l| rows.len() as u32 >= l);
    // A client that pages is told the total (X-Total-Count), so that a study
    // list can say "page 3 of 12"; the first page of few results needs no count.
    let total = if req.limit_given && (truncated || req.query.offset > 0) {
        Some(dw.archive.count_studies(&req.query).await?)
    } else if req.limit_given {
        Some(req.query.offset as u64 + rows.len() as u64)
    } else {
        None
    };
    let base = dw.base(headers);
    let items = rows.iter().map(|r| study_obj(&base, r, &req.include)).collect();
    let mut r = respond(items, &req, truncated);
    if let Some(n) = total {
        r.headers_mut().insert("x-total-count", HeaderValue::from(n));
    }
    Ok(r)
}

async fn run_series(
    dw: &DicomWeb,
    caller: &Caller,
    headers: &HeaderMap,
    raw: Option<String>,
    study: Option<&str>,
) -> Result<Response, AppError> {
    let mut req = parse_request(dw, Level::Series, raw.as_deref())?;
    req.query = scoped(req.query, study, None)?;
    req.query = dw.archive.scoped_query(caller, req.query).await?;
    let rows = dw.archive.query_series(&req.query).await?;
    dw.archive.audit_query(caller, &format!("QIDO-RS series {}", raw.as_deref().unwrap_or("")), rows.len(), None).await;
    let truncated = req.query.limit.is_some_and(|l| rows.len() as u32 >= l);
    let base = dw.base(headers);
    let items = rows.iter().map(|r| series_obj(&base, r, &req.include, study.is_none())).collect();
    Ok(respond(items, &req, truncated))
}

async fn run_instances(
    dw: &DicomWeb,
    caller: &Caller,
    headers: &HeaderMap,
    raw: Option<String>,
    study: Option<&str>,
    series: Option<&str>,
) -> Result<Response, AppError> {
    let mut req = parse_request(dw, Level::Instance, raw.as_deref())?;
    req.query = scoped(req.query, study, series)?;
    req.query = dw.archive.scoped_query(caller, req.query).await?;
    let rows = dw.archive.query_instances(&req.query).await?;
    dw.archive.audit_query(caller, &format!("QIDO-RS instances {}", raw.as_deref().unwrap_or("")), rows.len(), None).await;
    let truncated = req.query.limit.is_some_and(|l| rows.len() as u32 >= l);
    let base = dw.base(headers);
    let items =
        rows.iter().map(|r| instance_obj(&base, r, &req.include, study.is_none(), series.is_none())).collect();
    Ok(respond(items, &req, truncated))
}

/// `GET /studies`
pub async fn studies(State(dw): State<DicomWeb>, Extension(caller): Extension<Caller>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Result<Response, AppError> {
    run_studies(&dw, &caller, &headers, raw).await
}

/// `GET /series`
pub async fn all_series(State(dw): State<DicomWeb>, Extension(caller): Extension<Caller>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Result<Response, AppError> {
    run_series(&dw, &caller, &headers, raw, None).await
}

/// `GET /studies/{study}/series`
pub async fn study_series(
    State(dw): State<DicomWeb>,
    Extension(caller): Extension<Caller>,
    Path(study): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, AppError> {
    run_series(&dw, &caller, &headers, raw, Some(&study)).await
}

/// `GET /instances`
pub async fn all_instances(State(dw): State<DicomWeb>, Extension(caller): Extension<Caller>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Result<Response, AppError> {
    run_instances(&dw, &caller, &headers, raw, None, None).await
}

/// `GET /studies/{study}/instances`
pub async fn study_instances(
    State(dw): State<DicomWeb>,
    Extension(caller): Extension<Caller>,
    Path(study): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, AppError> {
    run_instances(&dw, &caller, &headers, raw, Some(&study), None).await
}

/// `GET /studies/{study}/series/{series}/instances`
pub async fn series_instances(
    State(dw): State<DicomWeb>,
    Extension(caller): Extension<Caller>,
    Path((study, series)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, AppError> {
    run_instances(&dw, &caller, &headers, raw, Some(&study), Some(&series)).await
}
