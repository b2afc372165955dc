//! DICOM matching, in one place (PS3.4 §C.2.2.2, PS3.18 §8.3.4).
//!
//! A [`Query`] is a level, a list of [`Filter`]s and paging. Each filter is a
//! [`Key`] (an attribute the catalog knows, or any other attribute matched
//! against the stored JSON) and a [`Matcher`] parsed from the request value by
//! [`Matcher::parse`] according to the attribute's kind:
//!
//! | request value           | matcher                                  |
//! |-------------------------|------------------------------------------|
//! | `CT`                    | single value (exact; person names ignore case) |
//! | `ZHANG*`, `?ang*`       | wildcard (`*` any run, `?` one character; case-insensitive) |
//! | `1.2.3\1.2.4`           | list (UID list; any of several values)   |
//! | `20240101-20240131`, `-20240131`, `20240101-` | range (dates and times) |
//!
//! Person names match each component group (alphabetic, ideographic,
//! phonetic) on its own, ignoring case and trailing `^`; with fuzzy matching a
//! query also matches any name component that starts with it.
//! [`Matcher::matches`] is the reference semantics, used for attributes
//! without a catalog column; [`crate::sql`] gives the same answers in SQL.

use serde::{Deserialize, Serialize};

/// Query/retrieve level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Level {
    Study,
    Series,
    Instance,
}

/// How an attribute's values compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ValueKind {
    Text,
    PersonName,
    Uid,
    Date,
    Time,
    DateTime,
    Integer,
    /// Codes (CS): exact, case-sensitive; wildcards allowed.
    Code,
}

/// An attribute a query can match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Key {
    PatientName,
    PatientId,
    IssuerOfPatientId,
    PatientBirthDate,
    PatientSex,
    StudyInstanceUid,
    StudyDate,
    StudyTime,
    AccessionNumber,
    StudyId,
    StudyDescription,
    ReferringPhysicianName,
    ModalitiesInStudy,
    SeriesInstanceUid,
    Modality,
    SeriesNumber,
    SeriesDescription,
    BodyPartExamined,
    SeriesDate,
    SeriesTime,
    SopInstanceUid,
    SopClassUid,
    InstanceNumber,
    /// Any other attribute, matched against the stored attributes of `level`.
    Other { group: u16, element: u16, level: Level, kind: ValueKind },
}

impl Key {
    /// The catalog key of a DICOM tag, if the catalog has a column for it.
    pub fn known(group: u16, element: u16) -> Option<Key> {
        Some(match (group, element) {
            (0x0010, 0x0010) => Key::PatientName,
            (0x0010, 0x0020) => Key::PatientId,
            (0x0010, 0x0021) => Key::IssuerOfPatientId,
            (0x0010, 0x0030) => Key::PatientBirthDate,
            (0x0010, 0x0040) => Key::PatientSex,
            (0x0020, 0x000D) => Key::StudyInstanceUid,
            (0x0008, 0x0020) => Key::StudyDate,
            (0x0008, 0x0030) => Key::StudyTime,
            (0x0008, 0x0050) => Key::AccessionNumber,
            (0x0020, 0x0010) => Key::StudyId,
            (0x0008, 0x1030) => Key::StudyDescription,
            (0x0008, 0x0090) => Key::ReferringPhysicianName,
            (0x0008, 0x0061) => Key::ModalitiesInStudy,
            (0x0020, 0x000E) => Key::SeriesInstanceUid,
            (0x0008, 0x0060) => Key::Modality,
            (0x0020, 0x0011) => Key::SeriesNumber,
            (0x0008, 0x103E) => Key::SeriesDescription,
            (0x0018, 0x0015) => Key::BodyPartExamined,
            (0x0008, 0x0021) => Key::SeriesDate,
            (0x0008, 0x0031) => Key::SeriesTime,
            (0x0008, 0x0018) => Key::SopInstanceUid,
            (0x0008, 0x0016) => Key::SopClassUid,
            (0x0020, 0x0013) => Key::InstanceNumber,
            _ => return None,
        })
    }

    /// The level whose records hold this attribute.
    pub fn level(&self) -> Level {
        match self {
            Key::PatientName
            | Key::PatientId
            | Key::IssuerOfPatientId
            | Key::PatientBirthDate
            | Key::PatientSex
            | Key::StudyInstanceUid
            | Key::StudyDate
            | Key::StudyTime
            | Key::AccessionNumber
            | Key::StudyId
            | Key::StudyDescription
            | Key::ReferringPhysicianName
            | Key::ModalitiesInStudy => Level::Study,
            Key::SeriesInstanceUid
            | Key::Modality
            | Key::SeriesNumber
            | Key::SeriesDescription
            | Key::BodyPartExamined
            | Key::SeriesDate
            | Key::SeriesTime => Level::Series,
            Key::SopInstanceUid | Key::SopClassUid | Key::InstanceNumber => Level::Instance,
            Key::Other { level, .. } => *level,
        }
    }

    /// How this attribute's values compare.
    pub fn kind(&self) -> ValueKind {
        match self {
            Key::PatientName | Key::ReferringPhysicianName => ValueKind::PersonName,
            Key::StudyInstanceUid | Key::SeriesInstanceUid | Key::SopInstanceUid | Key::SopClassUid => ValueKind::Uid,
            Key::PatientBirthDate | Key::StudyDate | Key::SeriesDate => ValueKind::Date,
            Key::StudyTime | Key::SeriesTime => ValueKind::Time,
            Key::SeriesNumber | Key::InstanceNumber => ValueKind::Integer,
            Key::PatientSex | Key::ModalitiesInStudy | Key::Modality | Key::BodyPartExamined => ValueKind::Code,
            Key::Other { kind, .. } => *kind,
            _ => ValueKind::Text,
        }
    }

    /// The DICOM tag of the key.
    pub fn tag(&self) -> (u16, u16) {
        match self {
            Key::PatientName => (0x0010, 0x0010),
            Key::PatientId => (0x0010, 0x0020),
            Key::IssuerOfPatientId => (0x0010, 0x0021),
            Key::PatientBirthDate => (0x0010, 0x0030),
            Key::PatientSex => (0x0010, 0x0040),
            Key::StudyInstanceUid => (0x0020, 0x000D),
            Key::StudyDate => (0x0008, 0x0020),
            Key::StudyTime => (0x0008, 0x0030),
            Key::AccessionNumber => (0x0008, 0x0050),
            Key::StudyId => (0x0020, 0x0010),
            Key::StudyDescription => (0x0008, 0x1030),
            Key::ReferringPhysicianName => (0x0008, 0x0090),
            Key::ModalitiesInStudy => (0x0008, 0x0061),
            Key::SeriesInstanceUid => (0x0020, 0x000E),
            Key::Modality => (0x0008, 0x0060),
            Key::SeriesNumber => (0x0020, 0x0011),
            Key::SeriesDescription => (0x0008, 0x103E),
            Key::BodyPartExamined => (0x0018, 0x0015),
            Key::SeriesDate => (0x0008, 0x0021),
            Key::SeriesTime => (0x0008, 0x0031),
            Key::SopInstanceUid => (0x0008, 0x0018),
            Key::SopClassUid => (0x0008, 0x0016),
            Key::InstanceNumber => (0x0020, 0x0013),
            Key::Other { group, element, .. } => (*group, *element),
        }
    }
}

/// How a value is matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Matcher {
    /// Single value matching.
    Single(String),
    /// Wildcard matching with `*` and `?`.
    Wildcard(String),
    /// Any of several values (UID list matching; ModalitiesInStudy lists).
    List(Vec<String>),
    /// Inclusive range; either end may be open.
    Range { from: Option<String>, to: Option<String> },
}

impl Matcher {
    /// Parses a request value. Returns `Ok(None)` for universal matching (an
    /// empty value: no constraint) and `Err` with a message for a value the
    /// kind does not allow.
    pub fn parse(kind: ValueKind, raw: &str) -> Result<Option<Matcher>, String> {
        let v = raw.trim();
        if v.is_empty() || v == "*" {
            return Ok(None);
        }
        match kind {
            ValueKind::Date | ValueKind::Time | ValueKind::DateTime => {
                let check = |s: &str| -> Result<String, String> {
                    let ok = match kind {
                        ValueKind::Date => s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()),
                        ValueKind::Time => {
                            !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b':')
                        }
                        _ => s.bytes().all(|b| b.is_ascii_digit() || b"+-.".contains(&b)),
                    };
                    if ok { Ok(s.replace(':', "")) } else { Err(format!("{s:?} is not a valid {kind:?} value")) }
                };
                if kind != ValueKind::DateTime
                    && let Some((a, b)) = v.split_once('-')
                {
                    let from = if a.is_empty() { None } else { Some(check(a)?) };
                    let to = if b.is_empty() { None } else { Some(check(b)?) };
                    if from.is_none() && to.is_none() {
                        return Ok(None);
                    }
                    return Ok(Some(Matcher::Range { from, to }));
                }
                if v.contains('\\') {
                    let vals = v.split('\\').map(check).collect::<Result<Vec<_>, _>>()?;
                    return Ok(Some(Matcher::List(vals)));
                }
                Ok(Some(Matcher::Single(check(v)?)))
            }
            ValueKind::Uid => {
                let vals: Vec<String> =
                    v.split(['\\', ',']).map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
                for u in &vals {
                    if !u.bytes().all(|b| b.is_ascii_digit() || b == b'.') || u.len() > 64 {
                        return Err(format!("{u:?} is not a valid UID"));
                    }
                }
                Ok(Some(if vals.len() == 1 { Matcher::Single(vals[0].clone()) } else { Matcher::List(vals) }))
            }
            ValueKind::Integer => {
                let vals = v
                    .split('\\')
                    .map(|s| s.trim().parse::<i64>().map(|i| i.to_string()).map_err(|_| format!("{s:?} is not an integer")))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Some(if vals.len() == 1 { Matcher::Single(vals[0].clone()) } else { Matcher::List(vals) }))
            }
            _ => {
                if v.contains('\\') {
                    let vals: Vec<String> = v.split('\\').map(|s| s.trim().to_string()).collect();
                    return Ok(Some(Matcher::List(vals)));
                }
                if v.contains(['*', '?']) {
                    return Ok(Some(Matcher::Wildcard(v.to_string())));
                }
                Ok(Some(Matcher::Single(v.to_string())))
            }
        }
    }

    /// Whether a stored value matches (the reference semantics).
    /// `value` is the stored attribute value, multi-values joined by `\`.
    pub fn matches(&self, kind: ValueKind, value: &str, fuzzy: bool) -> bool {
        if kind == ValueKind::PersonName {
            return self.matches_person_name(value, fuzzy);
        }
        let values: Vec<&str> = value.split('\\').map(|s| s.trim()).collect();
        values.iter().any(|v| self.matches_one(kind, v))
    }

    fn matches_one(&self, kind: ValueKind, v: &str) -> bool {
        if v.is_empty() {
            return false;
        }
        match self {
            Matcher::Single(q) => match kind {
                ValueKind::Integer => q.parse::<i64>().ok() == v.parse::<f64>().ok().map(|f| f as i64),
                ValueKind::Time => v.starts_with(q.as_str()),
                _ => v == q,
            },
            Matcher::Wildcard(p) => wildcard_match(&p.to_lowercase(), &v.to_lowercase()),
            Matcher::List(qs) => qs.iter().any(|q| Matcher::Single(q.clone()).matches_one(kind, v)),
            Matcher::Range { from, to } => {
                from.as_deref().is_none_or(|f| v >= f) && to.as_deref().is_none_or(|t| range_upper_ok(v, t))
            }
        }
    }

    fn matches_person_name(&self, value: &str, fuzzy: bool) -> bool {
        let groups = person_name_search_groups(value);
        let words = person_name_words(value);
        let one = |q: &str, wildcard: bool| -> bool {
            let q = normalize_person_name(q);
            let hit = groups.iter().filter(|g| !g.is_empty()).any(|g| {
                if wildcard { wildcard_match(&q, g) } else { *g == q }
            });
            if hit {
                return true;
            }
            if fuzzy {
                let stem = q.trim_end_matches(['*', '?']);
                let stem = stem.replace('^', " ");
                let stem = stem.trim();
                return !stem.is_empty() && !stem.contains(['*', '?']) && words.contains(&format!(" {stem}"));
            }
            false
        };
        match self {
            Matcher::Single(q) => one(q, false),
            Matcher::Wildcard(q) => one(q, true),
            Matcher::List(qs) => qs.iter().any(|q| one(q, q.contains(['*', '?']))),
            Matcher::Range { .. } => false,
        }
    }
}

/// The upper end of a range includes values that start with it (a time
/// range ending `1200` includes `120000.5`).
fn range_upper_ok(v: &str, to: &str) -> bool {
    v <= to || v.starts_with(to)
}

/// DICOM wildcard matching: `*` matches any run, `?` one character.
pub fn wildcard_match(pattern: &str, value: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let v: Vec<char> = value.chars().collect();
    let (mut pi, mut vi) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while vi < v.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == v[vi]) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = vi;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            vi = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// A person name component group as stored for searching: lower case,
/// trailing `^` and spaces removed.
pub fn normalize_person_name(group: &str) -> String {
    group.trim().trim_end_matches('^').trim().to_lowercase()
}

/// The three component groups of a PN value, normalised for searching.
pub fn person_name_search_groups(pn: &str) -> [String; 3] {
    let mut it = pn.split('=');
    let mut g = || normalize_person_name(it.next().unwrap_or(""));
    [g(), g(), g()]
}

/// Every name component of every group, lower case, each preceded by a
/// space: the fuzzy-matching form (`" zhang san 张 三"`).
pub fn person_name_words(pn: &str) -> String {
    let mut out = String::new();
    for w in pn.split(['=', '^', ' ']).map(|w| w.trim()).filter(|w| !w.is_empty()) {
        out.push(' ');
        out.push_str(&w.to_lowercase());
    }
    out
}

/// One constraint of a query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    pub key: Key,
    pub matcher: Matcher,
}

/// A catalog query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Query {
    pub level: Level,
    pub filters: Vec<Filter>,
    /// PS3.18 `fuzzymatching=true`: person names also match on name components.
    pub fuzzy: bool,
    pub limit: Option<u32>,
    pub offset: u32,
    /// Restricts results to these institutions (the caller's access scope);
    /// `None` means the whole region.
    pub institutions: Option<Vec<i64>>,
    /// Studies open to the caller beyond `institutions` (grants), by Study
    /// Instance UID; only meaningful when `institutions` is set.
    pub granted_studies: Vec<String>,
    /// Restricts results to these master patient records (a look-up by an
    /// encrypted identifier's blind index).
    pub patients: Option<Vec<i64>>,
    /// Restricts results to studies of these institutions (by code), within
    /// the caller's scope (a narrowing the user asked for, not a right).
    #[serde(default)]
    pub institution_codes: Option<Vec<String>>,
    /// The order of studies (default: newest first).
    #[serde(default)]
    pub order: Option<StudyOrder>,
}

/// What studies can be sorted by (an extension of QIDO-RS: `orderby`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StudyOrderKey {
    StudyDate,
    PatientName,
    PatientId,
    AccessionNumber,
    Modalities,
    Institution,
}

/// A study order: a key and a direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StudyOrder {
    pub key: StudyOrderKey,
    pub descending: bool,
}

impl StudyOrder {
    /// Parses `StudyDate`, `-PatientName`, `00100020`… (a leading `-` means descending).
    pub fn parse(s: &str) -> Result<StudyOrder, String> {
        let s = s.trim();
        let (descending, name) = match s.strip_prefix('-') {
            Some(rest) => (true, rest.trim()),
            None => (false, s.strip_prefix('+').unwrap_or(s).trim()),
        };
        let key = match name {
            "StudyDate" | "00080020" => StudyOrderKey::StudyDate,
            "PatientName" | "00100010" => StudyOrderKey::PatientName,
            "PatientID" | "00100020" => StudyOrderKey::PatientId,
            "AccessionNumber" | "00080050" => StudyOrderKey::AccessionNumber,
            "ModalitiesInStudy" | "00080061" => StudyOrderKey::Modalities,
            "InstitutionName" | "00080080" | "institution" => StudyOrderKey::Institution,
            _ => {
                return Err(format!(
                    "orderby {s:?}: use StudyDate, PatientName, PatientID, AccessionNumber, ModalitiesInStudy or InstitutionName, with - for descending"
                ));
            }
        };
        Ok(StudyOrder { key, descending })
    }
}

impl Query {
    pub fn new(level: Level) -> Query {
        Query {
            level,
            filters: Vec::new(),
            fuzzy: false,
            limit: None,
            offset: 0,
            institutions: None,
            granted_studies: Vec::new(),
            patients: None,
            institution_codes: None,
            order: None,
        }
    }

    /// Adds a filter (builder style).
    pub fn filter(mut self, key: Key, matcher: Matcher) -> Query {
        self.filters.push(Filter { key, matcher });
        self
    }

    /// Adds a filter parsed from a request value; universal values add nothing.
    pub fn filter_str(mut self, key: Key, raw: &str) -> Result<Query, String> {
        if let Some(m) = Matcher::parse(key.kind(), raw)? {
            self.filters.push(Filter { key, matcher: m });
        }
        Ok(self)
    }

    pub fn limit(mut self, limit: u32) -> Query {
        self.limit = Some(limit);
        self
    }

    pub fn offset(mut self, offset: u32) -> Query {
        self.offset = offset;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(kind: ValueKind, q: &str) -> Matcher {
        Matcher::parse(kind, q).unwrap().unwrap()
    }

    #[test]
    fn parse_kinds() {
        assert_eq!(Matcher::parse(ValueKind::Text, "").unwrap(), None);
        assert_eq!(Matcher::parse(ValueKind::Text, "*").unwrap(), None);
        assert_eq!(m(ValueKind::Text, "ab*"), Matcher::Wildcard("ab*".into()));
        assert_eq!(
            m(ValueKind::Date, "20240101-"),
            Matcher::Range { from: Some("20240101".into()), to: None }
        );
        assert_eq!(m(ValueKind::Uid, "1.2\\1.3"), Matcher::List(vec!["1.2".into(), "1.3".into()]));
        assert!(Matcher::parse(ValueKind::Date, "2024-01-01x").is_err());
        assert!(Matcher::parse(ValueKind::Uid, "1.2.abc").is_err());
        assert!(Matcher::parse(ValueKind::Integer, "x").is_err());
    }

    #[test]
    fn person_names() {
        let pn = "Zhang^San=张^三=";
        let k = ValueKind::PersonName;
        assert!(m(k, "zhang^san").matches(k, pn, false));
        assert!(m(k, "ZHANG^SAN^^").matches(k, pn, false));
        assert!(m(k, "张*").matches(k, pn, false));
        assert!(m(k, "Zh*").matches(k, pn, false));
        assert!(!m(k, "San*").matches(k, pn, false));
        assert!(m(k, "San").matches(k, pn, true));
        assert!(m(k, "sa*").matches(k, pn, true));
        assert!(!m(k, "Li*").matches(k, pn, true));
        assert!(!m(k, "zhang").matches(k, pn, false));
    }

    #[test]
    fn ranges_lists_wildcards() {
        let d = ValueKind::Date;
        assert!(m(d, "20240101-20240131").matches(d, "20240115", false));
        assert!(!m(d, "20240101-20240131").matches(d, "20240201", false));
        assert!(m(d, "-20240131").matches(d, "19990101", false));
        let t = ValueKind::Time;
        assert!(m(t, "1000-1200").matches(t, "120000.5", false));
        assert!(!m(t, "1000-1200").matches(t, "120100", false));
        let c = ValueKind::Code;
        assert!(m(c, "CT\\MR").matches(c, "MR\\SR", false));
        assert!(!m(c, "CT").matches(c, "MR", false));
        assert!(wildcard_match("a*c?e", "abbbcde"));
        assert!(!wildcard_match("a*c?e", "abbbce"));
        assert!(wildcard_match("*", ""));
    }
}
