//! Query/retrieve for the DIMSE C-FIND, C-MOVE and C-GET SCPs (PS3.4 Annex C).
//!
//! The network layer hands over the request identifier as raw data-set bytes
//! (no file meta) in the transfer syntax of its presentation context;
//! [`Archive::qr_find`] answers with DICOM JSON objects (one per match, for
//! the SCP to encode), [`Archive::qr_retrieve_set`] with the instances a
//! C-MOVE / C-GET must send.
//!
//! # Matching
//!
//! Matching is QIDO-RS's, from `yunying_index::query`: each identifier
//! element with a value becomes a [`Filter`] — a catalog [`Key`] (or
//! `Key::Other`, matched against the stored DICOM JSON of its level) and a
//! [`Matcher`] parsed from the value by [`Matcher::parse`] (single value,
//! wildcard, list, range). Text is decoded with the identifier's own Specific
//! Character Set (the archive's fallback, GB18030 by default, for undeclared
//! non-ASCII bytes), so a Chinese modality may send GB18030 names.
//!
//! This is **extended** behaviour (PS3.4 §C.4.1.2.1), deliberately lenient
//! because many SCUs send higher-level keys with values or leave out the
//! unique keys of the levels above: any key that has a value is a filter,
//! whatever its level (at PATIENT level, study attributes filter the
//! patient's studies too; the patient counts still cover all of them). Also:
//! - `Modality` (0008,0060) with a value at STUDY or PATIENT level matches as
//!   `ModalitiesInStudy` (a common SCU habit);
//! - keys below the query level, sequence keys with item values, binary
//!   values, private attributes, computed attributes and attributes the
//!   archive does not keep cannot be matched: they are returned (empty when
//!   the archive has no value) and a message goes to
//!   [`FindResults::warnings`] (the SCP may answer Pending 0xFF01);
//! - a value that cannot be parsed for its attribute's kind (a date
//!   `2024-01-01`, a UID with letters) is an error 0xA900 naming the attribute.
//!
//! # Returned attributes
//!
//! Every match holds exactly: each key of the identifier (its stored value
//! when the archive has one, else an empty element `{"vr": ".."}`); the
//! computed attributes when asked (ModalitiesInStudy, SOPClassesInStudy,
//! the Number of Patient/Study/Series Related ... counts, InstanceAvailability
//! `ONLINE`, AvailableTransferSyntaxUID at IMAGE level); and always
//! SpecificCharacterSet `ISO_IR 192`, QueryRetrieveLevel, RetrieveAETitle and
//! the unique keys of the level and the levels above (PatientID in the
//! Patient Root model). IssuerOfPatientID, when asked, is the issuer the
//! catalog scopes the patient ID with (the one that matching uses and that a
//! PATIENT-level C-MOVE accepts back).
//!
//! # Statuses
//!
//! [`QrError::status`] is the DICOM status of the refusal:
//!
//! | status   | when |
//! |----------|------|
//! | `0xA900` | identifier does not match SOP class: QueryRetrieveLevel missing or invalid for the model, a value that cannot be parsed for its attribute, a C-MOVE/C-GET without the unique key of its level (or with a wildcard in it) |
//! | `0xC000` | unable to process: the identifier bytes cannot be parsed |
//! | `0xA700` | out of resources: the retrieve set exceeds the cap ([`QR_MAX_RETRIEVE_INSTANCES`] or the caller's) |
//! | `0xC001` | unable to process: the catalog failed (retry later) |
//!
//! A retrieve that matches nothing (unknown UIDs, or outside the caller's
//! institutions) is not an error: the set is empty and the SCP answers
//! success with zero sub-operations.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value as Json, json};
use yunying_dicom::charset::{CharacterSet, vr_uses_charset};
use yunying_dicom::dict::{self, tag_key};
use yunying_dicom::parse::{DataSet, Element, ParseOptions, Value, parse_dataset};
use yunying_dicom::{Tag, VR, attrs, ts};
use yunying_index::query::{Filter, Key, Level, Matcher, Query, ValueKind};
use yunying_index::{IndexError, Scope, StoredInstance, StudyRow};

use crate::{Archive, ArchiveError};

/// Most instances one C-MOVE / C-GET may address ([`Archive::qr_retrieve_set`];
/// [`Archive::qr_retrieve_set_capped`] takes another cap).
pub const QR_MAX_RETRIEVE_INSTANCES: usize = 200_000;

/// Most studies read to group the patients of one PATIENT-level C-FIND; past
/// it the patient counts are re-read patient by patient.
const PATIENT_SCAN_STUDIES: u32 = 50_000;

/// In a retrieve by SOP Instance UID, up to this many instances of one series
/// are looked up one by one; more, and the series is read whole and filtered.
const SINGLE_LOOKUPS_PER_SERIES: usize = 16;

const SPECIFIC_CHARACTER_SET: Tag = Tag(0x0008, 0x0005);
const QUERY_RETRIEVE_LEVEL: Tag = Tag(0x0008, 0x0052);
const RETRIEVE_AE_TITLE: Tag = Tag(0x0008, 0x0054);
const INSTANCE_AVAILABILITY: Tag = Tag(0x0008, 0x0056);
const MODALITIES_IN_STUDY: Tag = Tag(0x0008, 0x0061);
const SOP_CLASSES_IN_STUDY: Tag = Tag(0x0008, 0x0062);
const AVAILABLE_TRANSFER_SYNTAX: Tag = Tag(0x0008, 0x3002);
const PATIENT_ID: Tag = Tag(0x0010, 0x0020);
const ISSUER_OF_PATIENT_ID: Tag = Tag(0x0010, 0x0021);
const STUDY_UID: Tag = Tag(0x0020, 0x000D);
const SERIES_UID: Tag = Tag(0x0020, 0x000E);
const SOP_UID: Tag = Tag(0x0008, 0x0018);
const PATIENT_STUDIES: Tag = Tag(0x0020, 0x1200);
const PATIENT_SERIES: Tag = Tag(0x0020, 0x1202);
const PATIENT_INSTANCES: Tag = Tag(0x0020, 0x1204);
const STUDY_SERIES: Tag = Tag(0x0020, 0x1206);
const STUDY_INSTANCES: Tag = Tag(0x0020, 0x1208);
const SERIES_INSTANCES: Tag = Tag(0x0020, 0x1209);

/// Attributes the archive computes or answers itself: returned when asked,
/// never matched.
const RETURN_ONLY: &[Tag] = &[
    RETRIEVE_AE_TITLE,
    INSTANCE_AVAILABILITY,
    SOP_CLASSES_IN_STUDY,
    AVAILABLE_TRANSFER_SYNTAX,
    Tag(0x0008, 0x0053), // QueryRetrieveView
    PATIENT_STUDIES,
    PATIENT_SERIES,
    PATIENT_INSTANCES,
    STUDY_SERIES,
    STUDY_INSTANCES,
    SERIES_INSTANCES,
];

/// The query/retrieve information model of the SOP class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QrModel {
    PatientRoot,
    StudyRoot,
}

/// Query/Retrieve Level (0008,0052).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QrLevel {
    Patient,
    Study,
    Series,
    Image,
}

impl QrLevel {
    /// The defined term: `PATIENT`, `STUDY`, `SERIES`, `IMAGE`.
    pub fn as_str(self) -> &'static str {
        match self {
            QrLevel::Patient => "PATIENT",
            QrLevel::Study => "STUDY",
            QrLevel::Series => "SERIES",
            QrLevel::Image => "IMAGE",
        }
    }

    /// The level named by a (0008,0052) value in `model`; 0xA900 when it is
    /// missing, unknown, or not part of the model (PATIENT in Study Root).
    pub fn parse(model: QrModel, value: Option<&str>) -> Result<QrLevel, QrError> {
        let v = value
            .map(|v| v.trim_matches([' ', '\0']).to_ascii_uppercase())
            .unwrap_or_default();
        let level = match v.as_str() {
            "" => {
                return Err(QrError::mismatch(
                    "QueryRetrieveLevel (0008,0052) is missing or empty",
                ));
            }
            "PATIENT" => QrLevel::Patient,
            "STUDY" => QrLevel::Study,
            "SERIES" => QrLevel::Series,
            "IMAGE" => QrLevel::Image,
            other => {
                return Err(QrError::mismatch(format!(
                    "QueryRetrieveLevel (0008,0052) {other:?} is not PATIENT, STUDY, SERIES or IMAGE"
                )));
            }
        };
        if level == QrLevel::Patient && model == QrModel::StudyRoot {
            return Err(QrError::mismatch(
                "QueryRetrieveLevel PATIENT is not part of the Study Root information model",
            ));
        }
        Ok(level)
    }

    /// Depth of the level; PATIENT shares the catalog's study rows.
    fn rank(self) -> u8 {
        match self {
            QrLevel::Patient | QrLevel::Study => 0,
            QrLevel::Series => 1,
            QrLevel::Image => 2,
        }
    }
}

fn key_rank(l: Level) -> u8 {
    match l {
        Level::Study => 0,
        Level::Series => 1,
        Level::Instance => 2,
    }
}

/// Why a query/retrieve request cannot be served; `status` is its DICOM
/// status (see the module documentation for the mapping).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (status 0x{status:04X})")]
pub struct QrError {
    pub status: u16,
    pub message: String,
}

impl QrError {
    /// Error: identifier does not match SOP class.
    pub const IDENTIFIER_MISMATCH: u16 = 0xA900;
    /// Error: unable to process (the identifier cannot be parsed).
    pub const UNABLE_TO_PROCESS: u16 = 0xC000;
    /// Refused: out of resources.
    pub const OUT_OF_RESOURCES: u16 = 0xA700;
    /// Error: unable to process, because the catalog failed.
    pub const CATALOG_FAILURE: u16 = 0xC001;

    pub fn new(status: u16, message: impl Into<String>) -> Self {
        QrError {
            status,
            message: message.into(),
        }
    }

    fn mismatch(message: impl Into<String>) -> Self {
        QrError::new(Self::IDENTIFIER_MISMATCH, message)
    }

    fn catalog(e: ArchiveError) -> Self {
        match e {
            ArchiveError::Index(IndexError::Invalid(m)) | ArchiveError::BadRequest(m) => {
                QrError::mismatch(m)
            }
            other => QrError::new(Self::CATALOG_FAILURE, other.to_string()),
        }
    }
}

/// The answer to a C-FIND.
#[derive(Debug, Clone, PartialEq)]
pub struct FindResults {
    pub level: QrLevel,
    /// One DICOM JSON object per match, in catalog order (studies newest
    /// first, series and instances by number).
    pub matches: Vec<Map<String, Json>>,
    /// Keys that were not matched (and why), and the result limit when hit.
    pub warnings: Vec<String>,
    /// True when more matches exist than `max_results` allowed.
    pub truncated: bool,
}

/// An identifier, parsed.
struct Identifier {
    ds: DataSet,
    cs: CharacterSet,
    big_endian: bool,
    level: QrLevel,
}

/// The text of an identifier element.
enum Text {
    /// Zero length (or only padding): universal matching / a return key.
    Empty,
    Value(String),
    /// A sequence, a binary value or a value the parser left in place.
    Unmatchable,
}

impl Identifier {
    fn text(&self, el: &Element) -> Text {
        let Value::Inline(bytes) = &el.value else {
            return Text::Unmatchable;
        };
        if bytes.is_empty() {
            return Text::Empty;
        }
        let s = match el.vr {
            VR::OB | VR::OD | VR::OF | VR::OL | VR::OV | VR::OW | VR::UN | VR::SQ => {
                return Text::Unmatchable;
            }
            VR::US | VR::SS | VR::UL | VR::SL | VR::FL | VR::FD | VR::SV | VR::UV | VR::AT => {
                let Some(vals) =
                    yunying_dicom::json::decode_values(el.vr, bytes, &self.cs, self.big_endian)
                else {
                    return Text::Unmatchable;
                };
                vals.iter()
                    .map(|v| match v {
                        Json::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join("\\")
            }
            vr if vr_uses_charset(vr) => self.cs.decode(bytes),
            _ => bytes.iter().map(|&b| b as char).collect(),
        };
        let s = s.trim_matches([' ', '\0']);
        if s.is_empty() {
            Text::Empty
        } else {
            Text::Value(s.to_string())
        }
    }

    /// The decoded value of a top-level attribute, if it has one.
    fn value(&self, tag: Tag) -> Option<String> {
        match self.text(self.ds.get(tag)?) {
            Text::Value(v) => Some(v),
            _ => None,
        }
    }
}

/// What a C-FIND asks for.
struct FindPlan {
    /// Every key of the identifier (tag, VR for an empty answer), in tag order.
    keys: Vec<(Tag, VR)>,
    filters: Vec<Filter>,
    warnings: Vec<String>,
    /// A filter on something other than patient attributes (PATIENT level).
    non_patient_filter: bool,
}

fn name_of(tag: Tag) -> String {
    match dict::keyword_of(tag) {
        Some(k) => format!("{k} ({:04X},{:04X})", tag.0, tag.1),
        None => format!("({:04X},{:04X})", tag.0, tag.1),
    }
}

/// The catalog level whose stored JSON holds a tag, if the archive keeps it.
fn stored_level(tag: Tag) -> Option<Level> {
    if attrs::STUDY_LEVEL.contains(&tag) {
        Some(Level::Study)
    } else if attrs::SERIES_LEVEL.contains(&tag) {
        Some(Level::Series)
    } else if attrs::INSTANCE_LEVEL.contains(&tag) {
        Some(Level::Instance)
    } else {
        None
    }
}

/// How values of a VR compare (as QIDO-RS decides it).
fn kind_of(vr: VR) -> ValueKind {
    match vr {
        VR::PN => ValueKind::PersonName,
        VR::UI => ValueKind::Uid,
        VR::DA => ValueKind::Date,
        VR::TM => ValueKind::Time,
        VR::DT => ValueKind::DateTime,
        VR::IS | VR::US | VR::UL | VR::SS | VR::SL | VR::SV | VR::UV => ValueKind::Integer,
        VR::CS => ValueKind::Code,
        _ => ValueKind::Text,
    }
}

/// The VR of an attribute as the dictionary has it, else as sent.
fn vr_for(tag: Tag, sent: VR) -> VR {
    match dict::vr_of(tag) {
        VR::UN => sent,
        vr => vr,
    }
}

fn has_values(ds: &DataSet) -> bool {
    ds.elements.iter().any(|e| match &e.value {
        Value::Inline(b) => b.iter().any(|&c| c != b' ' && c != 0),
        Value::Sequence(items) => items.iter().any(has_values),
        _ => true,
    })
}

fn plan_find(id: &Identifier) -> Result<FindPlan, QrError> {
    let level = id.level;
    let mut plan = FindPlan {
        keys: Vec::new(),
        filters: Vec::new(),
        warnings: Vec::new(),
        non_patient_filter: false,
    };
    for el in &id.ds.elements {
        let t = el.tag;
        if t.1 == 0x0000
            || t.0 == 0x0002
            || t.0 == 0xFFFE
            || t == SPECIFIC_CHARACTER_SET
            || t == QUERY_RETRIEVE_LEVEL
        {
            continue;
        }
        plan.keys.push((t, vr_for(t, el.vr)));
        let value = match (&el.value, id.text(el)) {
            (_, Text::Empty) => continue,
            (_, Text::Value(v)) => v,
            (Value::Sequence(items), _) => {
                if items.iter().any(has_values) {
                    plan.warnings.push(format!(
                        "{}: sequence matching is not supported; ignored",
                        name_of(t)
                    ));
                }
                continue;
            }
            _ => {
                plan.warnings.push(format!(
                    "{}: binary (or oversized) values cannot be matched; ignored",
                    name_of(t)
                ));
                continue;
            }
        };
        if RETURN_ONLY.contains(&t) {
            plan.warnings.push(format!(
                "{}: computed by the archive, not matched; ignored",
                name_of(t)
            ));
            continue;
        }
        if t.0 % 2 == 1 {
            plan.warnings.push(format!(
                "{}: private attributes cannot be matched; ignored",
                name_of(t)
            ));
            continue;
        }
        let key = match Key::known(t.0, t.1) {
            Some(Key::Modality) if level.rank() == 0 => Key::ModalitiesInStudy,
            Some(k) => k,
            None => match stored_level(t) {
                Some(l) => Key::Other {
                    group: t.0,
                    element: t.1,
                    level: l,
                    kind: kind_of(vr_for(t, el.vr)),
                },
                None => {
                    plan.warnings.push(format!(
                        "{}: not supported for matching; ignored",
                        name_of(t)
                    ));
                    continue;
                }
            },
        };
        if key_rank(key.level()) > level.rank() {
            plan.warnings.push(format!(
                "{}: cannot be matched at {} level; ignored",
                name_of(t),
                level.as_str()
            ));
            continue;
        }
        match Matcher::parse(key.kind(), &value) {
            Ok(Some(m)) => {
                if t.0 != 0x0010 {
                    plan.non_patient_filter = true;
                }
                plan.filters.push(Filter { key, matcher: m });
            }
            Ok(None) => {}
            Err(e) => return Err(QrError::mismatch(format!("{}: {e}", name_of(t)))),
        }
    }
    Ok(plan)
}

/// Stored DICOM JSON of one catalog level (empty when unreadable).
fn parse_attrs(s: &str, wanted: &HashSet<String>) -> Map<String, Json> {
    // Only the attributes a match can use are decoded: a stored study holds
    // dozens, a query asks for a few, and full decoding dominated C-FIND time.
    let raw: HashMap<&str, &serde_json::value::RawValue> = serde_json::from_str(s).unwrap_or_default();
    let mut out = Map::new();
    for (k, v) in raw {
        if wanted.contains(k)
            && let Ok(v) = serde_json::from_str::<Json>(v.get())
        {
            out.insert(k.to_string(), v);
        }
    }
    out
}

/// The stored attributes a find must decode: what was asked, and what the
/// archive itself reads (patient ID and its issuer).
fn wanted_keys(plan: &FindPlan) -> HashSet<String> {
    let mut w: HashSet<String> = plan.keys.iter().map(|(t, _)| tag_key(*t)).collect();
    w.insert(tag_key(PATIENT_ID));
    w.insert(tag_key(ISSUER_OF_PATIENT_ID));
    w
}

/// The first value of a stored element, as text.
fn first_string(m: &Map<String, Json>, tag: Tag) -> Option<String> {
    let v = m.get(&tag_key(tag))?.get("Value")?.as_array()?.first()?;
    match v {
        Json::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn element(vr: VR, values: Vec<Json>) -> Json {
    if values.is_empty() {
        json!({ "vr": vr.to_string() })
    } else {
        json!({ "vr": vr.to_string(), "Value": values })
    }
}

fn text_element(vr: VR, value: Option<&str>) -> Json {
    element(
        vr,
        value
            .filter(|v| !v.is_empty())
            .map(|v| vec![json!(v)])
            .unwrap_or_default(),
    )
}

fn count_element(n: i64) -> Json {
    json!({ "vr": "IS", "Value": [n] })
}

/// One match under construction.
struct MatchRow<'a> {
    /// Stored attributes, looked up in this order.
    sources: Vec<&'a Map<String, Json>>,
    /// Computed attributes (used only when asked); they win over stored ones.
    computed: HashMap<Tag, Json>,
    /// Unique keys always returned: tag, VR, value.
    unique: Vec<(Tag, VR, Option<String>)>,
}

impl MatchRow<'_> {
    fn build(&self, keys: &[(Tag, VR)], level: QrLevel, retrieve_ae: &str) -> Map<String, Json> {
        let mut m = Map::new();
        for &(tag, vr) in keys {
            let k = tag_key(tag);
            let v = self
                .computed
                .get(&tag)
                .cloned()
                .or_else(|| self.sources.iter().find_map(|s| s.get(&k).cloned()))
                .unwrap_or_else(|| element(vr, Vec::new()));
            m.insert(k, v);
        }
        m.insert(
            tag_key(SPECIFIC_CHARACTER_SET),
            json!({ "vr": "CS", "Value": ["ISO_IR 192"] }),
        );
        m.insert(
            tag_key(QUERY_RETRIEVE_LEVEL),
            json!({ "vr": "CS", "Value": [level.as_str()] }),
        );
        m.insert(
            tag_key(RETRIEVE_AE_TITLE),
            text_element(VR::AE, Some(retrieve_ae.trim())),
        );
        for (tag, vr, value) in &self.unique {
            m.insert(tag_key(*tag), text_element(*vr, value.as_deref()));
        }
        m
    }
}

/// Resolves the issuer the catalog scoped a study's patient ID with (as
/// ingest decides it: the issuer named in the object when it is a member
/// institution's, else the study's institution's), caching look-ups.
struct Issuers<'a> {
    archive: &'a Archive,
    cache: HashMap<(String, Option<String>), String>,
}

impl<'a> Issuers<'a> {
    fn new(archive: &'a Archive) -> Self {
        Issuers {
            archive,
            cache: HashMap::new(),
        }
    }

    async fn of(&mut self, study: &StudyRow, attrs: &Map<String, Json>) -> String {
        let named = first_string(attrs, ISSUER_OF_PATIENT_ID);
        let key = (study.institution_code.clone(), named.clone());
        if let Some(v) = self.cache.get(&key) {
            return v.clone();
        }
        let mut issuer = None;
        if let Some(n) = &named
            && let Ok(Some(i)) = self
                .archive
                .find_institution(|i| i.patient_id_issuer == *n || i.code == *n, false)
                .await
        {
            issuer = Some(i.patient_id_issuer);
        }
        if issuer.is_none() {
            let code = &study.institution_code;
            issuer = match self
                .archive
                .find_institution(|i| i.code == *code, true)
                .await
            {
                Ok(Some(i)) => Some(i.patient_id_issuer),
                _ => named.clone().or_else(|| Some(code.clone())),
            };
        }
        let issuer = issuer.unwrap_or_default();
        self.cache.insert(key, issuer.clone());
        issuer
    }
}

/// The query limit that tells whether more than `max` results exist.
fn probe_limit(max: u32) -> Option<u32> {
    if max == 0 {
        None
    } else {
        Some(max.saturating_add(1))
    }
}

fn truncate<T>(rows: &mut Vec<T>, max: u32, warnings: &mut Vec<String>) -> bool {
    if max > 0 && rows.len() > max as usize {
        rows.truncate(max as usize);
        warnings.push(format!(
            "more than {max} matches; only the first {max} are returned"
        ));
        true
    } else {
        false
    }
}

fn single(key: Key, value: &str) -> Filter {
    Filter {
        key,
        matcher: Matcher::Single(value.to_string()),
    }
}

impl Archive {
    /// Parses an identifier and its QueryRetrieveLevel.
    fn qr_identifier(
        &self,
        model: QrModel,
        identifier: &[u8],
        ts_uid: &str,
    ) -> Result<Identifier, QrError> {
        let mut opts: ParseOptions = self.settings.parse.clone();
        opts.max_elements = opts.max_elements.min(100_000);
        opts.max_inflated = opts.max_inflated.min(64 << 20);
        let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            parse_dataset(
                &mut std::io::Cursor::new(identifier),
                identifier.len() as u64,
                ts_uid,
                &opts,
            )
        }));
        let ds = match parsed {
            Ok(Ok(ds)) => ds,
            Ok(Err(e)) => {
                return Err(QrError::new(
                    QrError::UNABLE_TO_PROCESS,
                    format!("the identifier cannot be parsed: {e}"),
                ));
            }
            Err(_) => {
                tracing::error!("the DICOM parser panicked on a query/retrieve identifier");
                return Err(QrError::new(
                    QrError::UNABLE_TO_PROCESS,
                    "the identifier cannot be parsed (malformed)",
                ));
            }
        };
        let cs = attrs::charset_of(&ds, self.settings.fallback_charset);
        let big_endian = ts::encoding_of(ts_uid).big_endian;
        let level_value = ds.ascii(QUERY_RETRIEVE_LEVEL);
        let level = QrLevel::parse(model, level_value.as_deref())?;
        Ok(Identifier {
            ds,
            cs,
            big_endian,
            level,
        })
    }

    /// C-FIND: `identifier` is the data set (no meta) in transfer syntax
    /// `ts`. Returns one DICOM JSON object per match (at most `max_results`;
    /// 0 means no limit), the warnings for the SCP, and whether the limit cut
    /// the results. `institutions` restricts matches to those institutions'
    /// studies (`None`: the whole region).
    pub async fn qr_find(
        &self,
        model: QrModel,
        identifier: &[u8],
        ts: &str,
        retrieve_ae: &str,
        institutions: Option<Vec<i64>>,
        max_results: u32,
    ) -> Result<FindResults, QrError> {
        let id = self.qr_identifier(model, identifier, ts)?;
        let mut plan = plan_find(&id)?;
        let wanted = wanted_keys(&plan);
        let level = id.level;
        let asked: HashSet<Tag> = plan.keys.iter().map(|k| k.0).collect();
        let wants = |t: Tag| asked.contains(&t);
        let mut issuers = Issuers::new(self);
        let patient_key = model == QrModel::PatientRoot;
        let mut matches = Vec::new();
        let truncated;
        match level {
            QrLevel::Patient => {
                return self
                    .qr_find_patients(plan, retrieve_ae, institutions, max_results)
                    .await;
            }
            QrLevel::Study => {
                let mut q = Query::new(Level::Study);
                q.filters = std::mem::take(&mut plan.filters);
                q.institutions = institutions;
                q.limit = probe_limit(max_results);
                let mut rows = self.query_studies(&q).await.map_err(QrError::catalog)?;
                truncated = truncate(&mut rows, max_results, &mut plan.warnings);
                for row in &rows {
                    let study = parse_attrs(&row.attrs, &wanted);
                    let mut computed = self
                        .study_computed(row, &study, &mut issuers, wants(SOP_CLASSES_IN_STUDY))
                        .await?;
                    computed.retain(|t, _| wants(*t));
                    let mut unique = Vec::new();
                    if patient_key {
                        unique.push((PATIENT_ID, VR::LO, first_string(&study, PATIENT_ID)));
                    }
                    unique.push((STUDY_UID, VR::UI, Some(row.study_uid.clone())));
                    let m = MatchRow {
                        sources: vec![&study],
                        computed,
                        unique,
                    };
                    matches.push(m.build(&plan.keys, level, retrieve_ae));
                }
            }
            QrLevel::Series => {
                let mut q = Query::new(Level::Series);
                q.filters = std::mem::take(&mut plan.filters);
                q.institutions = institutions;
                q.limit = probe_limit(max_results);
                let mut rows = self.query_series(&q).await.map_err(QrError::catalog)?;
                truncated = truncate(&mut rows, max_results, &mut plan.warnings);
                let mut sop_classes = HashMap::new();
                for row in &rows {
                    let study = parse_attrs(&row.study.attrs, &wanted);
                    let series = parse_attrs(&row.attrs, &wanted);
                    let classes =
                        wants(SOP_CLASSES_IN_STUDY) && !sop_classes.contains_key(&row.study_uid);
                    let mut computed = self
                        .study_computed(&row.study, &study, &mut issuers, classes)
                        .await?;
                    cache_sop_classes(&mut computed, &mut sop_classes, &row.study_uid);
                    computed.insert(SERIES_INSTANCES, count_element(row.num_instances));
                    computed.retain(|t, _| wants(*t));
                    let mut unique = Vec::new();
                    if patient_key {
                        unique.push((PATIENT_ID, VR::LO, first_string(&study, PATIENT_ID)));
                    }
                    unique.push((STUDY_UID, VR::UI, Some(row.study_uid.clone())));
                    unique.push((SERIES_UID, VR::UI, Some(row.series_uid.clone())));
                    let m = MatchRow {
                        sources: vec![&series, &study],
                        computed,
                        unique,
                    };
                    matches.push(m.build(&plan.keys, level, retrieve_ae));
                }
            }
            QrLevel::Image => {
                let mut q = Query::new(Level::Instance);
                q.filters = std::mem::take(&mut plan.filters);
                q.institutions = institutions;
                q.limit = probe_limit(max_results);
                let mut rows = self.query_instances(&q).await.map_err(QrError::catalog)?;
                truncated = truncate(&mut rows, max_results, &mut plan.warnings);
                let mut sop_classes = HashMap::new();
                let mut parsed_series: HashMap<String, Map<String, Json>> = HashMap::new();
                let mut parsed_studies: HashMap<String, Map<String, Json>> = HashMap::new();
                for row in &rows {
                    let study = parsed_studies
                        .entry(row.study_uid.clone())
                        .or_insert_with(|| parse_attrs(&row.study.attrs, &wanted));
                    let series = parsed_series
                        .entry(row.series_uid.clone())
                        .or_insert_with(|| parse_attrs(&row.series_attrs, &wanted));
                    let instance = parse_attrs(&row.attrs, &wanted);
                    let classes =
                        wants(SOP_CLASSES_IN_STUDY) && !sop_classes.contains_key(&row.study_uid);
                    let mut computed = self
                        .study_computed(&row.study, study, &mut issuers, classes)
                        .await?;
                    cache_sop_classes(&mut computed, &mut sop_classes, &row.study_uid);
                    computed.insert(SERIES_INSTANCES, count_element(row.series_num_instances));
                    computed.insert(
                        AVAILABLE_TRANSFER_SYNTAX,
                        text_element(VR::UI, Some(&row.transfer_syntax)),
                    );
                    computed.retain(|t, _| wants(*t));
                    let mut unique = Vec::new();
                    if patient_key {
                        unique.push((PATIENT_ID, VR::LO, first_string(study, PATIENT_ID)));
                    }
                    unique.push((STUDY_UID, VR::UI, Some(row.study_uid.clone())));
                    unique.push((SERIES_UID, VR::UI, Some(row.series_uid.clone())));
                    unique.push((SOP_UID, VR::UI, Some(row.sop_uid.clone())));
                    let m = MatchRow {
                        sources: vec![&instance, &*series, &*study],
                        computed,
                        unique,
                    };
                    matches.push(m.build(&plan.keys, level, retrieve_ae));
                }
            }
        }
        Ok(FindResults {
            level,
            matches,
            warnings: plan.warnings,
            truncated,
        })
    }

    /// The computed attributes of a study (SOPClassesInStudy only when
    /// `sop_classes`: it reads the study's instances).
    async fn study_computed(
        &self,
        row: &StudyRow,
        attrs: &Map<String, Json>,
        issuers: &mut Issuers<'_>,
        sop_classes: bool,
    ) -> Result<HashMap<Tag, Json>, QrError> {
        let mut c = HashMap::new();
        c.insert(
            MODALITIES_IN_STUDY,
            element(VR::CS, row.modalities.iter().map(|m| json!(m)).collect()),
        );
        c.insert(STUDY_SERIES, count_element(row.num_series));
        c.insert(STUDY_INSTANCES, count_element(row.num_instances));
        c.insert(
            INSTANCE_AVAILABILITY,
            json!({ "vr": "CS", "Value": ["ONLINE"] }),
        );
        c.insert(
            ISSUER_OF_PATIENT_ID,
            text_element(VR::LO, Some(&issuers.of(row, attrs).await)),
        );
        if sop_classes {
            let stored = self
                .index
                .stored_instances(&Scope::study(&row.study_uid))
                .await
                .map_err(|e| QrError::catalog(e.into()))?;
            let mut classes: Vec<String> = Vec::new();
            for s in stored {
                if !classes.contains(&s.sop_class_uid) {
                    classes.push(s.sop_class_uid);
                }
            }
            classes.sort();
            c.insert(
                SOP_CLASSES_IN_STUDY,
                element(VR::UI, classes.into_iter().map(Json::String).collect()),
            );
        }
        Ok(c)
    }

    /// PATIENT level: studies matching the filters, grouped by (PatientID,
    /// issuer) in catalog order; the counts cover each patient's studies.
    async fn qr_find_patients(
        &self,
        mut plan: FindPlan,
        retrieve_ae: &str,
        institutions: Option<Vec<i64>>,
        max_results: u32,
    ) -> Result<FindResults, QrError> {
        struct Patient {
            id: String,
            has_id: bool,
            issuer: String,
            attrs: Map<String, Json>,
            studies: i64,
            series: i64,
            instances: i64,
        }
        let wanted = wanted_keys(&plan);
        let mut q = Query::new(Level::Study);
        q.filters = std::mem::take(&mut plan.filters);
        q.institutions = institutions.clone();
        q.limit = Some(PATIENT_SCAN_STUDIES + 1);
        let mut rows = self.query_studies(&q).await.map_err(QrError::catalog)?;
        let scan_cut = rows.len() > PATIENT_SCAN_STUDIES as usize;
        rows.truncate(PATIENT_SCAN_STUDIES as usize);
        let mut issuers = Issuers::new(self);
        let mut patients: Vec<Patient> = Vec::new();
        let mut index: HashMap<(String, String), usize> = HashMap::new();
        for row in &rows {
            let attrs = parse_attrs(&row.attrs, &wanted);
            let issuer = issuers.of(row, &attrs).await;
            let pid = first_string(&attrs, PATIENT_ID);
            let id = pid.clone().unwrap_or_else(|| format!("~{}", row.study_uid));
            let at = *index
                .entry((id.clone(), issuer.clone()))
                .or_insert_with(|| {
                    let mut own: Map<String, Json> = Map::new();
                    for (k, v) in &attrs {
                        if k.starts_with("0010") {
                            own.insert(k.clone(), v.clone());
                        }
                    }
                    patients.push(Patient {
                        id,
                        has_id: pid.is_some(),
                        issuer,
                        attrs: own,
                        studies: 0,
                        series: 0,
                        instances: 0,
                    });
                    patients.len() - 1
                });
            let p = &mut patients[at];
            p.studies += 1;
            p.series += row.num_series;
            p.instances += row.num_instances;
        }
        let truncated = truncate(&mut patients, max_results, &mut plan.warnings);
        let wants_counts = plan
            .keys
            .iter()
            .any(|k| [PATIENT_STUDIES, PATIENT_SERIES, PATIENT_INSTANCES].contains(&k.0));
        if wants_counts && (scan_cut || plan.non_patient_filter) {
            // The matched studies are not all of each patient's studies: count them.
            for p in &mut patients {
                let mut q = Query::new(Level::Study)
                    .filter(Key::PatientId, Matcher::Single(p.id.clone()))
                    .filter(Key::IssuerOfPatientId, Matcher::Single(p.issuer.clone()));
                q.institutions = institutions.clone();
                let all = self.query_studies(&q).await.map_err(QrError::catalog)?;
                p.studies = all.len() as i64;
                p.series = all.iter().map(|s| s.num_series).sum();
                p.instances = all.iter().map(|s| s.num_instances).sum();
            }
        }
        let wants = |t: Tag| plan.keys.iter().any(|k| k.0 == t);
        let mut matches = Vec::with_capacity(patients.len());
        for p in &patients {
            let mut computed = HashMap::new();
            computed.insert(PATIENT_STUDIES, count_element(p.studies));
            computed.insert(PATIENT_SERIES, count_element(p.series));
            computed.insert(PATIENT_INSTANCES, count_element(p.instances));
            computed.insert(ISSUER_OF_PATIENT_ID, text_element(VR::LO, Some(&p.issuer)));
            computed.insert(
                INSTANCE_AVAILABILITY,
                json!({ "vr": "CS", "Value": ["ONLINE"] }),
            );
            computed.retain(|t, _| wants(*t));
            let unique = vec![(PATIENT_ID, VR::LO, p.has_id.then(|| p.id.clone()))];
            let m = MatchRow {
                sources: vec![&p.attrs],
                computed,
                unique,
            };
            matches.push(m.build(&plan.keys, QrLevel::Patient, retrieve_ae));
        }
        Ok(FindResults {
            level: QrLevel::Patient,
            matches,
            warnings: plan.warnings,
            truncated,
        })
    }

    /// C-MOVE / C-GET: the current instances the identifier designates, in
    /// study / series / instance order, at most [`QR_MAX_RETRIEVE_INSTANCES`].
    pub async fn qr_retrieve_set(
        &self,
        model: QrModel,
        identifier: &[u8],
        ts: &str,
        institutions: Option<Vec<i64>>,
    ) -> Result<Vec<StoredInstance>, QrError> {
        self.qr_retrieve_set_capped(
            model,
            identifier,
            ts,
            institutions,
            QR_MAX_RETRIEVE_INSTANCES,
        )
        .await
    }

    /// [`Archive::qr_retrieve_set`] with another cap: more than
    /// `max_instances` instances → 0xA700 (refused before any is read).
    ///
    /// Unique keys by level: STUDY needs StudyInstanceUID, SERIES
    /// SeriesInstanceUID, IMAGE SOPInstanceUID (each one UID or a list;
    /// the UIDs of the levels above are optional and narrow the search when
    /// given); PATIENT (Patient Root) needs PatientID (one value or a list,
    /// no wildcard; IssuerOfPatientID optional). Missing → 0xA900.
    pub async fn qr_retrieve_set_capped(
        &self,
        model: QrModel,
        identifier: &[u8],
        ts: &str,
        institutions: Option<Vec<i64>>,
        max_instances: usize,
    ) -> Result<Vec<StoredInstance>, QrError> {
        let id = self.qr_identifier(model, identifier, ts)?;
        let level = id.level;
        let uids = |tag: Tag, key: Key, required: bool| -> Result<Option<Filter>, QrError> {
            let value = id.value(tag);
            let m = match &value {
                Some(v) => Matcher::parse(ValueKind::Uid, v)
                    .map_err(|e| QrError::mismatch(format!("{}: {e}", name_of(tag))))?,
                None => None,
            };
            match m {
                Some(matcher) => Ok(Some(Filter { key, matcher })),
                None if required => Err(QrError::mismatch(format!(
                    "a retrieve at {} level needs {} (one UID or a list)",
                    level.as_str(),
                    name_of(tag)
                ))),
                None => Ok(None),
            }
        };
        let too_many = |n: i64| -> Result<(), QrError> {
            if n > max_instances as i64 {
                Err(QrError::new(
                    QrError::OUT_OF_RESOURCES,
                    format!(
                        "the request addresses {n} instances; at most {max_instances} can be retrieved at once"
                    ),
                ))
            } else {
                Ok(())
            }
        };
        let mut filters: Vec<Filter> = Vec::new();
        match level {
            QrLevel::Patient => {
                let v = id.value(PATIENT_ID).ok_or_else(|| {
                    QrError::mismatch(format!(
                        "a retrieve at PATIENT level needs {}",
                        name_of(PATIENT_ID)
                    ))
                })?;
                let matcher = match Matcher::parse(ValueKind::Text, &v) {
                    Ok(Some(m @ (Matcher::Single(_) | Matcher::List(_)))) => m,
                    _ => {
                        return Err(QrError::mismatch(format!(
                            "{}: {v:?} is not a patient ID (no wildcards in a retrieve)",
                            name_of(PATIENT_ID)
                        )));
                    }
                };
                filters.push(Filter {
                    key: Key::PatientId,
                    matcher,
                });
                if let Some(issuer) = id.value(ISSUER_OF_PATIENT_ID) {
                    filters.push(single(Key::IssuerOfPatientId, &issuer));
                }
            }
            QrLevel::Study => filters.extend(uids(STUDY_UID, Key::StudyInstanceUid, true)?),
            QrLevel::Series => {
                filters.extend(uids(STUDY_UID, Key::StudyInstanceUid, false)?);
                filters.extend(uids(SERIES_UID, Key::SeriesInstanceUid, true)?);
            }
            QrLevel::Image => {
                filters.extend(uids(STUDY_UID, Key::StudyInstanceUid, false)?);
                filters.extend(uids(SERIES_UID, Key::SeriesInstanceUid, false)?);
                filters.extend(uids(SOP_UID, Key::SopInstanceUid, true)?);
            }
        }
        let stored = |scope: Scope| async move {
            match self.stored(&scope).await {
                Ok(v) => Ok(v),
                Err(ArchiveError::NotFound(_)) => Ok(Vec::new()), // gone since the query
                Err(e) => Err(QrError::catalog(e)),
            }
        };
        let mut out = Vec::new();
        match level {
            QrLevel::Patient | QrLevel::Study => {
                let mut q = Query::new(Level::Study);
                q.filters = filters;
                q.institutions = institutions;
                let rows = self.query_studies(&q).await.map_err(QrError::catalog)?;
                too_many(rows.iter().map(|r| r.num_instances).sum())?;
                for r in &rows {
                    out.extend(stored(Scope::study(&r.study_uid)).await?);
                }
            }
            QrLevel::Series => {
                let mut q = Query::new(Level::Series);
                q.filters = filters;
                q.institutions = institutions;
                let rows = self.query_series(&q).await.map_err(QrError::catalog)?;
                too_many(rows.iter().map(|r| r.num_instances).sum())?;
                for r in &rows {
                    out.extend(stored(Scope::series(&r.study_uid, &r.series_uid)).await?);
                }
            }
            QrLevel::Image => {
                let mut q = Query::new(Level::Instance);
                q.filters = filters;
                q.institutions = institutions;
                let rows = self.query_instances(&q).await.map_err(QrError::catalog)?;
                too_many(rows.len() as i64)?;
                // Consecutive rows of one series (the query orders them so).
                let mut i = 0;
                while i < rows.len() {
                    let (study, series) = (&rows[i].study_uid, &rows[i].series_uid);
                    let mut j = i;
                    while j < rows.len()
                        && rows[j].study_uid == *study
                        && rows[j].series_uid == *series
                    {
                        j += 1;
                    }
                    let group = &rows[i..j];
                    if group.len() <= SINGLE_LOOKUPS_PER_SERIES {
                        for r in group {
                            out.extend(stored(Scope::instance(study, series, &r.sop_uid)).await?);
                        }
                    } else {
                        let wanted: HashSet<&str> =
                            group.iter().map(|r| r.sop_uid.as_str()).collect();
                        let all = stored(Scope::series(study, series)).await?;
                        out.extend(
                            all.into_iter()
                                .filter(|s| wanted.contains(s.sop_uid.as_str())),
                        );
                    }
                    i = j;
                }
            }
        }
        too_many(out.len() as i64)?;
        Ok(out)
    }
}

/// Remembers a study's SOPClassesInStudy for its other series / instances,
/// or puts the remembered value in `computed`.
fn cache_sop_classes(
    computed: &mut HashMap<Tag, Json>,
    cache: &mut HashMap<String, Json>,
    study: &str,
) {
    match computed.get(&SOP_CLASSES_IN_STUDY) {
        Some(v) => {
            cache.insert(study.to_string(), v.clone());
        }
        None => {
            if let Some(v) = cache.get(study) {
                computed.insert(SOP_CLASSES_IN_STUDY, v.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        assert_eq!(
            QrLevel::parse(QrModel::StudyRoot, Some("STUDY ")).unwrap(),
            QrLevel::Study
        );
        assert_eq!(
            QrLevel::parse(QrModel::PatientRoot, Some("PATIENT")).unwrap(),
            QrLevel::Patient
        );
        assert_eq!(
            QrLevel::parse(QrModel::StudyRoot, Some("PATIENT"))
                .unwrap_err()
                .status,
            0xA900
        );
        assert_eq!(
            QrLevel::parse(QrModel::StudyRoot, Some("FRAME"))
                .unwrap_err()
                .status,
            0xA900
        );
        assert_eq!(
            QrLevel::parse(QrModel::StudyRoot, None).unwrap_err().status,
            0xA900
        );
    }

    #[test]
    fn probe_and_truncate() {
        assert_eq!(probe_limit(0), None);
        assert_eq!(probe_limit(10), Some(11));
        let mut w = Vec::new();
        let mut v = vec![1, 2, 3];
        assert!(!truncate(&mut v, 3, &mut w));
        assert!(truncate(&mut v, 2, &mut w));
        assert_eq!(v, vec![1, 2]);
        assert_eq!(w.len(), 1);
    }
}
