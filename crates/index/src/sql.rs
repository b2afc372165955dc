//! The SQL form of [`crate::query`]'s matchers, for the SQL backends.
//!
//! Table aliases: `st` study, `se` series, `i` instance. Person names are
//! matched on normalised lower-case group columns (`*_alpha`, `*_ideo`,
//! `*_phon`) and a words column for fuzzy matching, all computed in Rust at
//! ingest (so both backends agree, whatever their collation). Filters on
//! attributes without a column come back as `residual` filters, matched in
//! Rust against the stored JSON.

use crate::query::{Filter, Key, Level, Matcher, Query, ValueKind, normalize_person_name};

/// The SQL dialect to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The placeholder of the n-th (1-based) parameter.
    pub fn placeholder(self, n: usize) -> String {
        match self {
            Dialect::Sqlite => format!("?{n}"),
            Dialect::Postgres => format!("${n}"),
        }
    }
}

/// A bound parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    Text(String),
    Int(i64),
}

/// WHERE conditions with their parameters.
#[derive(Debug, Default)]
pub struct Conditions {
    pub clauses: Vec<String>,
    pub params: Vec<Param>,
    /// Filters that SQL cannot answer; apply [`Matcher::matches`] to the rows.
    pub residual: Vec<Filter>,
}

impl Conditions {
    /// `WHERE a AND b ...`, or an empty string.
    pub fn where_sql(&self) -> String {
        if self.clauses.is_empty() { String::new() } else { format!(" WHERE {}", self.clauses.join(" AND ")) }
    }

    fn bind(&mut self, d: Dialect, p: Param) -> String {
        self.params.push(p);
        d.placeholder(self.params.len())
    }

    /// Adds a raw clause with one text parameter written as `{}`.
    pub fn push_text(&mut self, d: Dialect, template: &str, value: &str) {
        let ph = self.bind(d, Param::Text(value.to_string()));
        self.clauses.push(template.replace("{}", &ph));
    }
}

/// Escapes a DICOM wildcard pattern into a LIKE pattern (escape char `\`).
pub fn like_pattern(dicom: &str) -> String {
    let mut out = String::with_capacity(dicom.len() + 4);
    for c in dicom.chars() {
        match c {
            '*' => out.push('%'),
            '?' => out.push('_'),
            '%' | '_' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

fn column(key: Key) -> Option<&'static str> {
    Some(match key {
        Key::PatientId => "st.pat_id",
        Key::IssuerOfPatientId => "st.pat_issuer",
        Key::PatientBirthDate => "st.pat_birth_date",
        Key::PatientSex => "st.pat_sex",
        Key::StudyInstanceUid => "st.study_uid",
        Key::StudyDate => "st.study_date",
        Key::StudyTime => "st.study_time",
        Key::AccessionNumber => "st.accession_number",
        Key::StudyId => "st.study_id",
        Key::StudyDescription => "st.description",
        Key::SeriesInstanceUid => "se.series_uid",
        Key::Modality => "se.modality",
        Key::SeriesNumber => "se.series_number",
        Key::SeriesDescription => "se.description",
        Key::BodyPartExamined => "se.body_part",
        Key::SeriesDate => "se.series_date",
        Key::SeriesTime => "se.series_time",
        Key::SopInstanceUid => "i.sop_uid",
        Key::SopClassUid => "i.sop_class_uid",
        Key::InstanceNumber => "i.instance_number",
        _ => return None,
    })
}

fn level_rank(l: Level) -> u8 {
    match l {
        Level::Study => 0,
        Level::Series => 1,
        Level::Instance => 2,
    }
}

/// Builds the conditions of a query. Keys below the query level (a series
/// attribute in a study query) cannot be answered and are returned in
/// `ignored`, for the caller to report.
pub fn conditions(q: &Query, d: Dialect) -> (Conditions, Vec<Filter>) {
    let mut c = Conditions::default();
    let mut ignored = Vec::new();
    for f in &q.filters {
        let key_level = f.key.level();
        // ModalitiesInStudy belongs to the study level but is computed.
        if level_rank(key_level) > level_rank(q.level) {
            ignored.push(f.clone());
            continue;
        }
        match f.key {
            Key::PatientName => person_name(&mut c, d, "st.pn", &f.matcher, q.fuzzy),
            Key::ReferringPhysicianName => person_name(&mut c, d, "st.ref", &f.matcher, q.fuzzy),
            Key::ModalitiesInStudy => {
                let vals: Vec<&str> = match &f.matcher {
                    Matcher::Single(v) | Matcher::Wildcard(v) => vec![v.as_str()],
                    Matcher::List(vs) => vs.iter().map(|s| s.as_str()).collect(),
                    Matcher::Range { .. } => vec![],
                };
                let mut ors = Vec::new();
                for v in vals {
                    let p = format!("%|{}|%", like_pattern(v));
                    let ph = c.bind(d, Param::Text(p));
                    ors.push(format!("('|' || st.modalities_bar || '|') LIKE {ph} ESCAPE '\\'"));
                }
                if ors.is_empty() {
                    c.clauses.push("1=0".into());
                } else {
                    c.clauses.push(format!("({})", ors.join(" OR ")));
                }
            }
            key => match column(key) {
                Some(col) => plain(&mut c, d, col, key.kind(), &f.matcher),
                None => c.residual.push(f.clone()),
            },
        }
    }
    if let Some(patients) = &q.patients {
        if patients.is_empty() {
            c.clauses.push("1=0".into());
        } else {
            let phs: Vec<String> = patients.iter().map(|i| c.bind(d, Param::Int(*i))).collect();
            c.clauses.push(format!("st.patient_id IN ({})", phs.join(", ")));
        }
    }
    if let Some(codes) = &q.institution_codes {
        if codes.is_empty() {
            c.clauses.push("1=0".into());
        } else {
            let phs: Vec<String> = codes.iter().map(|code| c.bind(d, Param::Text(code.clone()))).collect();
            c.clauses.push(format!("st.institution_id IN (SELECT id FROM institution WHERE code IN ({}))", phs.join(", ")));
        }
    }
    if let Some(insts) = &q.institutions {
        let mut ors = Vec::new();
        if !insts.is_empty() {
            let phs: Vec<String> = insts.iter().map(|i| c.bind(d, Param::Int(*i))).collect();
            ors.push(format!("st.institution_id IN ({})", phs.join(", ")));
        }
        if !q.granted_studies.is_empty() {
            let phs: Vec<String> = q.granted_studies.iter().map(|u| c.bind(d, Param::Text(u.clone()))).collect();
            ors.push(format!("st.study_uid IN ({})", phs.join(", ")));
        }
        if ors.is_empty() {
            c.clauses.push("1=0".into());
        } else {
            c.clauses.push(format!("({})", ors.join(" OR ")));
        }
    }
    (c, ignored)
}

fn plain(c: &mut Conditions, d: Dialect, col: &str, kind: ValueKind, m: &Matcher) {
    let int = kind == ValueKind::Integer;
    let param = |s: &str| if int { Param::Int(s.parse().unwrap_or(i64::MIN)) } else { Param::Text(s.to_string()) };
    match m {
        Matcher::Single(v) => {
            if kind == ValueKind::Time {
                // 1015 matches 101500.000: a prefix.
                let ph = c.bind(d, Param::Text(format!("{}%", like_pattern(v))));
                c.clauses.push(format!("{col} LIKE {ph} ESCAPE '\\'"));
            } else {
                let ph = c.bind(d, param(v));
                c.clauses.push(format!("{col} = {ph}"));
            }
        }
        Matcher::Wildcard(p) => {
            let ph = c.bind(d, Param::Text(like_pattern(&p.to_lowercase())));
            c.clauses.push(format!("lower({col}) LIKE {ph} ESCAPE '\\'"));
        }
        Matcher::List(vs) => {
            let phs: Vec<String> = vs.iter().map(|v| c.bind(d, param(v))).collect();
            c.clauses.push(format!("{col} IN ({})", phs.join(", ")));
        }
        Matcher::Range { from, to } => {
            let mut parts = vec![format!("{col} <> ''")];
            if let Some(f) = from {
                let ph = c.bind(d, Param::Text(f.clone()));
                parts.push(format!("{col} >= {ph}"));
            }
            if let Some(t) = to {
                let ph = c.bind(d, Param::Text(t.clone()));
                let ph2 = c.bind(d, Param::Text(format!("{}%", like_pattern(t))));
                parts.push(format!("({col} <= {ph} OR {col} LIKE {ph2} ESCAPE '\\')"));
            }
            c.clauses.push(format!("({})", parts.join(" AND ")));
        }
    }
}

/// Person-name matching over the normalised group columns `{prefix}_alpha`,
/// `{prefix}_ideo`, `{prefix}_phon` and `{prefix}_words`.
fn person_name(c: &mut Conditions, d: Dialect, prefix: &str, m: &Matcher, fuzzy: bool) {
    let queries: Vec<(String, bool)> = match m {
        Matcher::Single(q) => vec![(q.clone(), false)],
        Matcher::Wildcard(q) => vec![(q.clone(), true)],
        Matcher::List(qs) => qs.iter().map(|q| (q.clone(), q.contains(['*', '?']))).collect(),
        Matcher::Range { .. } => {
            c.clauses.push("1=0".into());
            return;
        }
    };
    // PostgreSQL compares in the "C" collation (byte order, as SQLite does),
    // which is what the name indexes are built with.
    let col = |g: &str| match d {
        Dialect::Postgres => format!("{prefix}_{g} COLLATE \"C\""),
        Dialect::Sqlite => format!("{prefix}_{g}"),
    };
    let mut ors = Vec::new();
    for (q, wildcard) in queries {
        let n = normalize_person_name(&q);
        if !wildcard {
            let ph = c.bind(d, Param::Text(n.clone()));
            for g in ["alpha", "ideo", "phon"] {
                ors.push(format!("{} = {ph}", col(g)));
            }
        } else {
            let like = c.bind(d, Param::Text(like_pattern(&n)));
            // A literal prefix becomes an index range; the LIKE keeps the exact semantics.
            let range = literal_prefix_range(&n).map(|(lo, hi)| {
                (c.bind(d, Param::Text(lo)), c.bind(d, Param::Text(hi)))
            });
            for g in ["alpha", "ideo", "phon"] {
                match &range {
                    Some((lo, hi)) => ors.push(format!(
                        "({cg} >= {lo} AND {cg} < {hi} AND {prefix}_{g} LIKE {like} ESCAPE '\\')",
                        cg = col(g)
                    )),
                    None => ors.push(format!("{prefix}_{g} LIKE {like} ESCAPE '\\'")),
                }
            }
        }
        if fuzzy {
            let stem = n.trim_end_matches(['*', '?']).replace('^', " ");
            let stem = stem.trim();
            if !stem.is_empty() && !stem.contains(['*', '?']) {
                let ph = c.bind(d, Param::Text(format!("% {}%", like_pattern(stem))));
                ors.push(format!("{prefix}_words LIKE {ph} ESCAPE '\\'"));
            }
        }
    }
    c.clauses.push(format!("({})", ors.join(" OR ")));
}

/// The half-open range `[prefix, next)` of the values a wildcard pattern's
/// literal prefix allows (`zhang*` → `["zhang", "zhanh")`), when it has one.
pub fn literal_prefix_range(pattern: &str) -> Option<(String, String)> {
    let prefix: String = pattern.chars().take_while(|c| *c != '*' && *c != '?').collect();
    let last = prefix.chars().last()?;
    let next = char::from_u32(last as u32 + 1)
        .or_else(|| char::from_u32(last as u32 + 0x801))?; // skip the surrogate gap
    let mut hi: String = prefix.chars().take(prefix.chars().count() - 1).collect();
    hi.push(next);
    Some((prefix, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_placeholders_in_order() {
        let q = Query::new(Level::Study)
            .filter_str(Key::PatientId, "P001")
            .unwrap()
            .filter_str(Key::StudyDate, "20240101-20240131")
            .unwrap()
            .filter_str(Key::PatientName, "张*")
            .unwrap();
        let (c, ignored) = conditions(&q, Dialect::Sqlite);
        assert!(ignored.is_empty());
        assert_eq!(c.clauses[0], "st.pat_id = ?1");
        assert!(c.clauses[1].contains("st.study_date >= ?2"));
        assert!(c.where_sql().contains("st.pn_ideo >= ?6 AND st.pn_ideo < ?7 AND st.pn_ideo LIKE ?5"), "{}", c.where_sql());
        assert_eq!(c.params[4], Param::Text("张%".into()));
        assert_eq!(c.params[5], Param::Text("张".into()));
        assert_eq!(c.params[6], Param::Text("弡".into()));
        let (pg, _) = conditions(&q, Dialect::Postgres);
        assert_eq!(pg.clauses[0], "st.pat_id = $1");
    }

    #[test]
    fn series_key_in_study_query_is_ignored() {
        let q = Query::new(Level::Study).filter_str(Key::Modality, "CT").unwrap();
        let (c, ignored) = conditions(&q, Dialect::Sqlite);
        assert!(c.clauses.is_empty());
        assert_eq!(ignored.len(), 1);
    }

    #[test]
    fn prefix_ranges() {
        assert_eq!(literal_prefix_range("zhang*"), Some(("zhang".into(), "zhanh".into())));
        assert_eq!(literal_prefix_range("z?ang"), Some(("z".into(), "{".into())));
        assert_eq!(literal_prefix_range("*ang"), None);
    }

    #[test]
    fn like_escaping() {
        assert_eq!(like_pattern("a_b%c*d?"), "a\\_b\\%c%d_");
    }
}
