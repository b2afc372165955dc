//! Catalog queries (QIDO-RS / C-FIND) and retrieval look-ups.

use sqlx::Row;
use sqlx::any::AnyRow;
use yunying_index::query::{Filter, Level, ValueKind};
use yunying_index::sql::{Conditions, conditions};
use yunying_index::*;
use yunying_util::InstitutionId;

use crate::{SqlIndex, bind_params, db_err};

const STUDY_COLS: &str = "st.study_uid, st.attrs AS study_attrs, st.modalities_bar, st.num_series, \
    st.num_instances AS study_num_instances, inst.code AS institution_code, st.size_bytes AS study_size";

const STUDY_ORDER: &str = "st.study_date DESC, st.study_time DESC, st.id DESC";

/// The ORDER BY of a study search: the order asked for, then newest first.
fn study_order(q: &Query) -> String {
    use yunying_index::query::StudyOrderKey as K;
    let Some(o) = q.order else { return STUDY_ORDER.to_string() };
    let dir = if o.descending { "DESC" } else { "ASC" };
    let cols: &[&str] = match o.key {
        K::StudyDate => &["st.study_date", "st.study_time"],
        K::PatientName => &["st.pn_alpha", "st.pn_ideo", "st.pat_id"],
        K::PatientId => &["st.pat_id"],
        K::AccessionNumber => &["COALESCE(st.accession_number, '')"],
        K::Modalities => &["st.modalities_bar"],
        K::Institution => &["inst.code"],
    };
    let mut out: Vec<String> = cols.iter().map(|c| format!("{c} {dir}")).collect();
    out.push(STUDY_ORDER.to_string());
    out.join(", ")
}

fn study_from_row(r: &AnyRow) -> Result<StudyRow> {
    let bar: String = r.try_get("modalities_bar").map_err(db_err)?;
    Ok(StudyRow {
        study_uid: r.try_get("study_uid").map_err(db_err)?,
        attrs: r.try_get("study_attrs").map_err(db_err)?,
        modalities: bar.split('|').filter(|s| !s.is_empty()).map(String::from).collect(),
        num_series: r.try_get("num_series").map_err(db_err)?,
        num_instances: r.try_get("study_num_instances").map_err(db_err)?,
        institution_code: r.try_get("institution_code").map_err(db_err)?,
        size_bytes: r.try_get("study_size").map_err(db_err)?,
    })
}

/// `LIMIT/OFFSET` in SQL when every filter was answered there; otherwise the
/// rows are filtered in Rust and paged afterwards.
fn paging(q: &Query, c: &Conditions) -> String {
    if !c.residual.is_empty() {
        return String::new();
    }
    match q.limit {
        Some(l) => format!(" LIMIT {l} OFFSET {}", q.offset),
        None if q.offset > 0 => format!(" LIMIT 9223372036854775807 OFFSET {}", q.offset),
        None => String::new(),
    }
}

fn page<T>(rows: Vec<T>, q: &Query, c: &Conditions) -> Vec<T> {
    if c.residual.is_empty() {
        return rows;
    }
    let it = rows.into_iter().skip(q.offset as usize);
    match q.limit {
        Some(l) => it.take(l as usize).collect(),
        None => it.collect(),
    }
}

/// The values of a DICOM JSON element as matching sees them: strings as
/// they are, numbers in decimal, person names as `A=I=P`, joined by `\`.
fn json_values(attrs: &serde_json::Map<String, serde_json::Value>, group: u16, element: u16) -> Option<String> {
    let el = attrs.get(&format!("{group:04X}{element:04X}"))?;
    let vals = el.get("Value")?.as_array()?;
    let parts: Vec<String> = vals
        .iter()
        .map(|v| match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Object(pn) => ["Alphabetic", "Ideographic", "Phonetic"]
                .iter()
                .map(|k| pn.get(*k).and_then(|x| x.as_str()).unwrap_or(""))
                .collect::<Vec<_>>()
                .join("=")
                .trim_end_matches('=')
                .to_string(),
            _ => String::new(),
        })
        .collect();
    Some(parts.join("\\"))
}

/// Applies residual filters to a row's attributes of each level.
fn residual_ok(filters: &[Filter], fuzzy: bool, by_level: &dyn Fn(Level) -> Option<String>) -> bool {
    for f in filters {
        let Some(attrs) = by_level(f.key.level()) else { return false };
        let Ok(map) = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&attrs) else {
            return false;
        };
        let (g, e) = f.key.tag();
        let Some(v) = json_values(&map, g, e) else { return false };
        let kind = f.key.kind();
        if !f.matcher.matches(kind, &v, fuzzy && kind == ValueKind::PersonName) {
            return false;
        }
    }
    true
}

pub(crate) async fn studies(index: &SqlIndex, q: &Query) -> Result<Vec<StudyRow>> {
    let mut q = q.clone();
    q.level = Level::Study;
    let (c, _ignored) = conditions(&q, index.dialect);
    let sql = format!(
        "SELECT {STUDY_COLS} FROM study st JOIN institution inst ON inst.id = st.institution_id{} ORDER BY {}{}",
        c.where_sql(),
        study_order(&q),
        paging(&q, &c)
    );
    let rows = bind_params(sqlx::query(index.dynamic(sql)), &c.params)
        .fetch_all(&index.pool)
        .await
        .map_err(db_err)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let s = study_from_row(r)?;
        if c.residual.is_empty() || residual_ok(&c.residual, q.fuzzy, &|_| Some(s.attrs.clone())) {
            out.push(s);
        }
    }
    Ok(page(out, &q, &c))
}

pub(crate) async fn count_studies(index: &SqlIndex, q: &Query) -> Result<u64> {
    let mut q = q.clone();
    q.level = Level::Study;
    q.limit = None;
    q.offset = 0;
    let (c, _ignored) = conditions(&q, index.dialect);
    if !c.residual.is_empty() {
        // Some filters are answered in Rust: count what they let through.
        return Ok(studies(index, &q).await?.len() as u64);
    }
    let sql = format!(
        "SELECT COUNT(*) AS n FROM study st JOIN institution inst ON inst.id = st.institution_id{}",
        c.where_sql()
    );
    let row = bind_params(sqlx::query(index.dynamic(sql)), &c.params).fetch_one(&index.pool).await.map_err(db_err)?;
    let n: i64 = row.try_get("n").map_err(db_err)?;
    Ok(n.max(0) as u64)
}

pub(crate) async fn series(index: &SqlIndex, q: &Query) -> Result<Vec<SeriesRow>> {
    let mut q = q.clone();
    q.level = Level::Series;
    let (c, _ignored) = conditions(&q, index.dialect);
    let sql = format!(
        "SELECT se.series_uid, se.attrs AS series_attrs, se.num_instances AS series_num_instances, {STUDY_COLS} \
         FROM series se JOIN study st ON st.id = se.study_id JOIN institution inst ON inst.id = st.institution_id{} \
         ORDER BY {STUDY_ORDER}, se.series_number ASC NULLS LAST, se.id{}",
        c.where_sql(),
        paging(&q, &c)
    );
    let rows = bind_params(sqlx::query(index.dynamic(sql)), &c.params)
        .fetch_all(&index.pool)
        .await
        .map_err(db_err)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let study = study_from_row(r)?;
        let row = SeriesRow {
            study_uid: study.study_uid.clone(),
            series_uid: r.try_get("series_uid").map_err(db_err)?,
            attrs: r.try_get("series_attrs").map_err(db_err)?,
            num_instances: r.try_get("series_num_instances").map_err(db_err)?,
            study,
        };
        if c.residual.is_empty()
            || residual_ok(&c.residual, q.fuzzy, &|l| match l {
                Level::Study => Some(row.study.attrs.clone()),
                Level::Series => Some(row.attrs.clone()),
                Level::Instance => None,
            })
        {
            out.push(row);
        }
    }
    Ok(page(out, &q, &c))
}

pub(crate) async fn instances(index: &SqlIndex, q: &Query) -> Result<Vec<InstanceRow>> {
    let mut q = q.clone();
    q.level = Level::Instance;
    let (mut c, _ignored) = conditions(&q, index.dialect);
    c.clauses.insert(0, "i.current = 1".into());
    let sql = format!(
        "SELECT i.sop_uid, i.sop_class_uid, i.transfer_syntax, i.attrs AS instance_attrs, \
         se.series_uid, se.attrs AS series_attrs, se.num_instances AS series_num_instances, {STUDY_COLS} \
         FROM instance i JOIN series se ON se.id = i.series_id JOIN study st ON st.id = i.study_id \
         JOIN institution inst ON inst.id = st.institution_id{} \
         ORDER BY {STUDY_ORDER}, se.series_number ASC NULLS LAST, se.id, i.instance_number ASC NULLS LAST, i.id{}",
        c.where_sql(),
        paging(&q, &c)
    );
    let rows = bind_params(sqlx::query(index.dynamic(sql)), &c.params)
        .fetch_all(&index.pool)
        .await
        .map_err(db_err)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let study = study_from_row(r)?;
        let row = InstanceRow {
            study_uid: study.study_uid.clone(),
            series_uid: r.try_get("series_uid").map_err(db_err)?,
            sop_uid: r.try_get("sop_uid").map_err(db_err)?,
            sop_class_uid: r.try_get("sop_class_uid").map_err(db_err)?,
            transfer_syntax: r.try_get("transfer_syntax").map_err(db_err)?,
            attrs: r.try_get("instance_attrs").map_err(db_err)?,
            series_attrs: r.try_get("series_attrs").map_err(db_err)?,
            series_num_instances: r.try_get("series_num_instances").map_err(db_err)?,
            study,
        };
        if c.residual.is_empty()
            || residual_ok(&c.residual, q.fuzzy, &|l| match l {
                Level::Study => Some(row.study.attrs.clone()),
                Level::Series => Some(row.series_attrs.clone()),
                Level::Instance => Some(row.attrs.clone()),
            })
        {
            out.push(row);
        }
    }
    Ok(page(out, &q, &c))
}

/// The WHERE clause and parameters of a retrieval scope.
pub(crate) fn scope_where(scope: &Scope) -> (String, Vec<String>) {
    let mut sql = String::from(" WHERE i.current = 1 AND st.study_uid = ?");
    let mut params = vec![scope.study_uid.clone()];
    if let Some(s) = &scope.series_uid {
        sql.push_str(" AND se.series_uid = ?");
        params.push(s.clone());
    }
    if let Some(s) = &scope.sop_uid {
        sql.push_str(" AND i.sop_uid = ?");
        params.push(s.clone());
    }
    (sql, params)
}

const SCOPE_ORDER: &str = " ORDER BY se.series_number ASC NULLS LAST, se.id, i.instance_number ASC NULLS LAST, i.id";

pub(crate) async fn stored_instances(index: &SqlIndex, scope: &Scope) -> Result<Vec<StoredInstance>> {
    let (w, params) = scope_where(scope);
    let sql = crate::number_placeholders(
        &format!(
            "SELECT {STORED_COLUMNS} \
             FROM instance i JOIN series se ON se.id = i.series_id JOIN study st ON st.id = i.study_id{w}{SCOPE_ORDER}"
        ),
        index.dialect,
    );
    let mut query = sqlx::query(index.dynamic(sql));
    for p in &params {
        query = query.bind(p.as_str());
    }
    let rows = query.fetch_all(&index.pool).await.map_err(db_err)?;
    rows.iter().map(stored_instance).collect()
}

/// The columns [`stored_instance`] reads, for the queries that select instances.
pub(crate) const STORED_COLUMNS: &str = "st.study_uid, se.series_uid, i.sop_uid, i.sop_class_uid, i.transfer_syntax, \
     i.version, i.blob_key, i.size_bytes, i.sha256, i.frames, i.bulk, i.number_of_frames, i.institution_id";

pub(crate) fn stored_instance(r: &sqlx::any::AnyRow) -> Result<StoredInstance> {
    Ok(StoredInstance {
        study_uid: r.try_get("study_uid").map_err(db_err)?,
        series_uid: r.try_get("series_uid").map_err(db_err)?,
        sop_uid: r.try_get("sop_uid").map_err(db_err)?,
        sop_class_uid: r.try_get("sop_class_uid").map_err(db_err)?,
        transfer_syntax: r.try_get("transfer_syntax").map_err(db_err)?,
        version: r.try_get("version").map_err(db_err)?,
        blob_key: r.try_get("blob_key").map_err(db_err)?,
        size_bytes: r.try_get("size_bytes").map_err(db_err)?,
        sha256: r.try_get("sha256").map_err(db_err)?,
        frames: r.try_get("frames").map_err(db_err)?,
        bulk: r.try_get("bulk").map_err(db_err)?,
        number_of_frames: r.try_get("number_of_frames").map_err(db_err)?,
        institution_id: InstitutionId(r.try_get("institution_id").map_err(db_err)?),
    })
}

pub(crate) async fn metadata(index: &SqlIndex, scope: &Scope) -> Result<Vec<String>> {
    let (w, params) = scope_where(scope);
    let sql = crate::number_placeholders(
        &format!(
            "SELECT m.metadata FROM instance i JOIN instance_metadata m ON m.instance_id = i.id \
             JOIN series se ON se.id = i.series_id JOIN study st ON st.id = i.study_id{w}{SCOPE_ORDER}"
        ),
        index.dialect,
    );
    let mut query = sqlx::query(index.dynamic(sql));
    for p in &params {
        query = query.bind(p.as_str());
    }
    let rows = query.fetch_all(&index.pool).await.map_err(db_err)?;
    rows.iter().map(|r| r.try_get::<String, _>("metadata").map_err(db_err)).collect()
}
