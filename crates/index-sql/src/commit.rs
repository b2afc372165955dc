//! The ingest transaction: patient, study, series and instance rows of a
//! batch, in one transaction, each item in its own savepoint so that one
//! conflicting object does not stop the others.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use yunying_index::query::{person_name_search_groups, person_name_words};
use yunying_index::*;

use crate::{SqlIndex, db_err, is_unique_violation};

/// How many times a batch is retried when a concurrent writer (another node)
/// created the same patient, study or series first.
const RETRIES: usize = 5;

pub(crate) fn instance_ref(r: &AnyRow) -> Result<InstanceRef> {
    Ok(InstanceRef {
        id: r.try_get("id").map_err(db_err)?,
        sop_uid: r.try_get("sop_uid").map_err(db_err)?,
        version: r.try_get("version").map_err(db_err)?,
        blob_key: r.try_get("blob_key").map_err(db_err)?,
    })
}

enum ItemError {
    /// The item is refused; the batch goes on.
    Refused(IndexError),
    /// The transaction cannot go on (database error).
    Fatal(sqlx::Error),
}

impl From<sqlx::Error> for ItemError {
    fn from(e: sqlx::Error) -> Self {
        ItemError::Fatal(e)
    }
}

pub(crate) async fn commit(index: &SqlIndex, batch: &[NewInstance]) -> Result<Vec<Result<CommitOutcome>>> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match try_commit(index, batch).await {
            Ok(out) => return Ok(out),
            Err(e) if is_unique_violation(&e) && attempt < RETRIES => {
                tracing::debug!(attempt, "catalog commit raced with another writer; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(5 * attempt as u64)).await;
            }
            Err(e) => return Err(db_err(e)),
        }
    }
}

async fn try_commit(index: &SqlIndex, batch: &[NewInstance]) -> Result<Vec<Result<CommitOutcome>>, sqlx::Error> {
    let mut tx = index.pool.begin().await?;
    let mut out = Vec::with_capacity(batch.len());
    for item in batch {
        let mut sp = sqlx::Connection::begin(&mut *tx).await?;
        match commit_one(index, &mut sp, item).await {
            Ok(o) => {
                sp.commit().await?;
                out.push(Ok(o));
            }
            Err(ItemError::Refused(e)) => {
                sp.rollback().await?;
                out.push(Err(e));
            }
            Err(ItemError::Fatal(e)) => return Err(e),
        }
    }
    tx.commit().await?;
    Ok(out)
}

fn refused(e: IndexError) -> ItemError {
    ItemError::Refused(e)
}

fn opt(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

async fn commit_one(index: &SqlIndex, c: &mut AnyConnection, n: &NewInstance) -> Result<CommitOutcome, ItemError> {
    let now = yunying_util::time::now_millis();
    let inst = &n.instance;

    // 1. The same bytes again: nothing to do.
    if let Some(r) = sqlx::query(index.sql(
        "SELECT id, sop_uid, version, blob_key FROM instance WHERE sop_uid = ? AND sha256 = ?",
    ))
    .bind(inst.sop_uid.as_str())
    .bind(inst.sha256.as_str())
    .fetch_optional(&mut *c)
    .await?
    {
        return Ok(CommitOutcome::Duplicate(instance_ref(&r).map_err(refused)?));
    }

    // 2. The patient, by (issuer, ID) → master record.
    let (patient_id, identifier_id) = match sqlx::query(index.sql(
        "SELECT id, patient_id FROM patient_identifier WHERE kind = 'mrn' AND issuer = ? AND value = ?",
    ))
    .bind(n.patient_key.issuer.as_str())
    .bind(n.patient_key.id.as_str())
    .fetch_optional(&mut *c)
    .await?
    {
        Some(r) => {
            let pid: i64 = r.try_get("patient_id")?;
            // Fill demographics the master record lacks.
            sqlx::query(index.sql(
                "UPDATE patient SET name = COALESCE(name, ?), birth_date = COALESCE(birth_date, ?), \
                 sex = COALESCE(sex, ?) WHERE id = ? AND (name IS NULL OR birth_date IS NULL OR sex IS NULL)",
            ))
            .bind(opt(&n.patient.name))
            .bind(opt(&n.patient.birth_date))
            .bind(opt(&n.patient.sex))
            .bind(pid)
            .execute(&mut *c)
            .await?;
            (pid, r.try_get::<i64, _>("id")?)
        }
        None => {
            let pid: i64 = sqlx::query(index.sql(
                "INSERT INTO patient (name, birth_date, sex, created_at, updated_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
            ))
            .bind(opt(&n.patient.name))
            .bind(opt(&n.patient.birth_date))
            .bind(opt(&n.patient.sex))
            .bind(now)
            .bind(now)
            .fetch_one(&mut *c)
            .await?
            .try_get("id")?;
            let iid: i64 = sqlx::query(index.sql(
                "INSERT INTO patient_identifier (patient_id, issuer, value, kind, institution_id, created_at) \
                 VALUES (?, ?, ?, 'mrn', ?, ?) RETURNING id",
            ))
            .bind(pid)
            .bind(n.patient_key.issuer.as_str())
            .bind(n.patient_key.id.as_str())
            .bind(n.institution_id.0)
            .bind(now)
            .fetch_one(&mut *c)
            .await?
            .try_get("id")?;
            (pid, iid)
        }
    };

    // 3. The study: one patient per study.
    let study = &n.study;
    let existing = sqlx::query(index.sql(
        "SELECT st.id, st.patient_identifier_id, st.attrs, pi.issuer, pi.value FROM study st \
         JOIN patient_identifier pi ON pi.id = st.patient_identifier_id WHERE st.study_uid = ?",
    ))
    .bind(study.uid.as_str())
    .fetch_optional(&mut *c)
    .await?;
    let (study_id, study_is_new) = match existing {
        Some(r) => {
            let sid: i64 = r.try_get("id")?;
            let ident: i64 = r.try_get("patient_identifier_id")?;
            if ident != identifier_id {
                let issuer: String = r.try_get("issuer")?;
                let value: String = r.try_get("value")?;
                return Err(refused(IndexError::Conflict(format!(
                    "study {} belongs to patient {value:?} (issuer {issuer:?}), but this object names patient {:?} (issuer {:?})",
                    study.uid, n.patient_key.id, n.patient_key.issuer
                ))));
            }
            let attrs: String = r.try_get("attrs")?;
            if let Some(merged) = merge_attrs(&attrs, &study.attrs) {
                sqlx::query(index.sql("UPDATE study SET attrs = ? WHERE id = ?"))
                    .bind(merged)
                    .bind(sid)
                    .execute(&mut *c)
                    .await?;
            }
            (sid, false)
        }
        None => {
            let encounter_id = match opt(&study.visit_number) {
                Some(visit) => Some(encounter(index, c, n, patient_id, visit, now).await?),
                None => None,
            };
            let pn = n.patient.name.clone().unwrap_or_default();
            let [pa, pi, pp] = person_name_search_groups(&pn);
            let rf = study.referring_physician.clone().unwrap_or_default();
            let [ra, ri, rp] = person_name_search_groups(&rf);
            let sid: i64 = sqlx::query(index.sql(
                "INSERT INTO study (study_uid, institution_id, patient_id, patient_identifier_id, encounter_id, \
                 pat_name, pn_alpha, pn_ideo, pn_phon, pn_words, pat_id, pat_issuer, pat_birth_date, pat_sex, \
                 study_date, study_time, accession_number, study_id, description, \
                 ref_name, ref_alpha, ref_ideo, ref_phon, ref_words, visit_number, \
                 attrs, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            ))
            .bind(study.uid.as_str())
            .bind(n.institution_id.0)
            .bind(patient_id)
            .bind(identifier_id)
            .bind(encounter_id)
            .bind(opt(&n.patient.name))
            .bind(pa)
            .bind(pi)
            .bind(pp)
            .bind(person_name_words(&pn))
            .bind(n.patient_key.id.as_str())
            .bind(n.patient_key.issuer.as_str())
            .bind(opt(&n.patient.birth_date))
            .bind(opt(&n.patient.sex))
            .bind(opt(&study.date).unwrap_or(""))
            .bind(opt(&study.time).unwrap_or(""))
            .bind(opt(&study.accession_number))
            .bind(opt(&study.study_id))
            .bind(opt(&study.description))
            .bind(opt(&study.referring_physician))
            .bind(ra)
            .bind(ri)
            .bind(rp)
            .bind(person_name_words(&rf))
            .bind(opt(&study.visit_number))
            .bind(study.attrs.as_str())
            .bind(now)
            .bind(now)
            .fetch_one(&mut *c)
            .await?
            .try_get("id")?;
            (sid, true)
        }
    };

    // 4. The series: one study per series.
    let series = &n.series;
    let (series_id, series_is_new) = match sqlx::query(index.sql(
        "SELECT se.id, se.study_id, st.study_uid FROM series se JOIN study st ON st.id = se.study_id WHERE se.series_uid = ?",
    ))
    .bind(series.uid.as_str())
    .fetch_optional(&mut *c)
    .await?
    {
        Some(r) => {
            let owner: i64 = r.try_get("study_id")?;
            if owner != study_id {
                let other: String = r.try_get("study_uid")?;
                return Err(refused(IndexError::Conflict(format!(
                    "series {} belongs to study {other}, not to study {}",
                    series.uid, study.uid
                ))));
            }
            (r.try_get::<i64, _>("id")?, false)
        }
        None => {
            let id: i64 = sqlx::query(index.sql(
                "INSERT INTO series (series_uid, study_id, institution_id, modality, series_number, description, \
                 body_part, series_date, series_time, station_name, attrs, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            ))
            .bind(series.uid.as_str())
            .bind(study_id)
            .bind(n.institution_id.0)
            .bind(opt(&series.modality))
            .bind(series.number)
            .bind(opt(&series.description))
            .bind(opt(&series.body_part))
            .bind(opt(&series.date).unwrap_or(""))
            .bind(opt(&series.time).unwrap_or(""))
            .bind(opt(&series.station_name))
            .bind(series.attrs.as_str())
            .bind(now)
            .bind(now)
            .fetch_one(&mut *c)
            .await?
            .try_get("id")?;
            (id, true)
        }
    };

    // 5. Earlier versions of this SOP instance.
    let current = sqlx::query(index.sql(
        "SELECT id, series_id, version FROM instance WHERE sop_uid = ? AND current = 1",
    ))
    .bind(inst.sop_uid.as_str())
    .fetch_optional(&mut *c)
    .await?;
    let mut previous = None;
    if let Some(r) = &current {
        let owner: i64 = r.try_get("series_id")?;
        if owner != series_id {
            return Err(refused(IndexError::Conflict(format!(
                "SOP instance {} is already stored in another series",
                inst.sop_uid
            ))));
        }
        let id: i64 = r.try_get("id")?;
        previous = Some(r.try_get::<i64, _>("version")?);
        sqlx::query(index.sql("UPDATE instance SET current = 0 WHERE id = ?")).bind(id).execute(&mut *c).await?;
    }
    let version: i64 = match previous {
        None => 1,
        Some(_) => {
            sqlx::query(index.sql("SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) + 1 AS v FROM instance WHERE sop_uid = ?"))
                .bind(inst.sop_uid.as_str())
                .fetch_one(&mut *c)
                .await?
                .try_get("v")?
        }
    };

    // 6. The instance row and its metadata.
    let instance_id: i64 = sqlx::query(index.sql(
        "INSERT INTO instance (series_id, study_id, sop_uid, version, current, sop_class_uid, transfer_syntax, \
         instance_number, rows_, columns_, bits_allocated, number_of_frames, sha256, size_bytes, blob_key, \
         frames, bulk, attrs, institution_id, received_from, received_at) \
         VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    ))
    .bind(series_id)
    .bind(study_id)
    .bind(inst.sop_uid.as_str())
    .bind(version)
    .bind(inst.sop_class_uid.as_str())
    .bind(inst.transfer_syntax.as_str())
    .bind(inst.number)
    .bind(inst.rows)
    .bind(inst.columns)
    .bind(inst.bits_allocated)
    .bind(inst.number_of_frames)
    .bind(inst.sha256.as_str())
    .bind(inst.size_bytes)
    .bind(inst.blob_key.as_str())
    .bind(inst.frames.as_str())
    .bind(inst.bulk.as_str())
    .bind(inst.attrs.as_str())
    .bind(n.institution_id.0)
    .bind(inst.received_from.as_str())
    .bind(inst.received_at)
    .fetch_one(&mut *c)
    .await?
    .try_get("id")?;
    sqlx::query(index.sql("INSERT INTO instance_metadata (instance_id, metadata) VALUES (?, ?)"))
        .bind(instance_id)
        .bind(inst.metadata.as_str())
        .execute(&mut *c)
        .await?;

    // 7. Counters.
    let added = if previous.is_none() { 1i64 } else { 0 };
    sqlx::query(index.sql(
        "UPDATE series SET num_instances = num_instances + ?, size_bytes = size_bytes + ?, updated_at = ? WHERE id = ?",
    ))
    .bind(added)
    .bind(inst.size_bytes)
    .bind(now)
    .bind(series_id)
    .execute(&mut *c)
    .await?;
    sqlx::query(index.sql(
        "UPDATE study SET num_instances = num_instances + ?, num_series = num_series + ?, \
         size_bytes = size_bytes + ?, updated_at = ? WHERE id = ?",
    ))
    .bind(added)
    .bind(if series_is_new { 1i64 } else { 0 })
    .bind(inst.size_bytes)
    .bind(now)
    .bind(study_id)
    .execute(&mut *c)
    .await?;
    if series_is_new {
        let mods: Vec<String> = sqlx::query(index.sql(
            "SELECT DISTINCT modality FROM series WHERE study_id = ? AND modality IS NOT NULL ORDER BY modality",
        ))
        .bind(study_id)
        .fetch_all(&mut *c)
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>("modality"))
        .collect::<Result<_, _>>()?;
        sqlx::query(index.sql("UPDATE study SET modalities_bar = ? WHERE id = ?"))
            .bind(mods.join("|"))
            .bind(study_id)
            .execute(&mut *c)
            .await?;
    }
    let _ = study_is_new;

    let stored = InstanceRef { id: instance_id, sop_uid: inst.sop_uid.clone(), version, blob_key: inst.blob_key.clone() };
    Ok(match previous {
        None => CommitOutcome::Stored(stored),
        Some(p) => CommitOutcome::NewVersion { stored, previous: p },
    })
}

/// Records the visit an object names (Admission ID), keyed by institution and number.
async fn encounter(
    index: &SqlIndex,
    c: &mut AnyConnection,
    n: &NewInstance,
    patient_id: i64,
    visit: &str,
    now: i64,
) -> Result<i64, ItemError> {
    if let Some(r) = sqlx::query(index.sql("SELECT id FROM encounter WHERE institution_id = ? AND visit_number = ?"))
        .bind(n.institution_id.0)
        .bind(visit)
        .fetch_optional(&mut *c)
        .await?
    {
        return Ok(r.try_get("id")?);
    }
    Ok(sqlx::query(index.sql(
        "INSERT INTO encounter (institution_id, patient_id, visit_number, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?) RETURNING id",
    ))
    .bind(n.institution_id.0)
    .bind(patient_id)
    .bind(visit)
    .bind(now)
    .bind(now)
    .fetch_one(&mut *c)
    .await?
    .try_get("id")?)
}

/// Adds to the stored study attributes the attributes a later object carries
/// and the stored ones lack. `None` when nothing is new.
fn merge_attrs(stored: &str, incoming: &str) -> Option<String> {
    let mut a: serde_json::Map<String, serde_json::Value> = serde_json::from_str(stored).ok()?;
    let b: serde_json::Map<String, serde_json::Value> = serde_json::from_str(incoming).ok()?;
    let mut changed = false;
    for (k, v) in b {
        let has_value = a.get(&k).is_some_and(|x| x.get("Value").is_some());
        if !has_value && v.get("Value").is_some() {
            a.insert(k, v);
            changed = true;
        }
    }
    if changed { serde_json::to_string(&a).ok() } else { None }
}
