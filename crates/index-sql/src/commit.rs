//! The ingest transaction: patient, study, series and instance rows of a
//! batch, in one transaction.
//!
//! A batch is first tried optimistically, every item in the one transaction;
//! if any item is refused (a conflict), the transaction is rolled back and
//! the batch is redone with each item in its own savepoint, so that the
//! refused item fails alone. Within a batch, patients, studies and series
//! already looked up are remembered, and the counters of series and studies
//! are updated once per batch: an 800-image series costs a handful of
//! statements per image, not a dozen (which matters on PostgreSQL, where
//! each statement is a round trip).

use std::collections::{HashMap, HashSet};

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

/// What the batch has learnt so far (rows looked up or created), and the
/// counter changes it owes.
#[derive(Default, Clone)]
struct BatchState {
    /// (issuer, patient id) → (patient id, identifier id)
    patients: HashMap<(String, String), (i64, i64)>,
    /// study uid → (study id, identifier id)
    studies: HashMap<String, (i64, i64)>,
    /// Studies whose stored attributes were already merged in this batch.
    merged: HashSet<i64>,
    /// series uid → (series id, study id)
    series: HashMap<String, (i64, i64)>,
    /// series id → (instances added, bytes added)
    series_delta: HashMap<i64, (i64, i64)>,
    /// study id → (instances added, series added, bytes added)
    study_delta: HashMap<i64, (i64, i64, i64)>,
}

pub(crate) async fn commit(index: &SqlIndex, batch: &[NewInstance]) -> Result<Vec<Result<CommitOutcome>>> {
    let mut attempt = 0;
    let mut savepoints = false;
    loop {
        attempt += 1;
        match try_commit(index, batch, savepoints).await {
            Ok(Some(out)) => return Ok(out),
            Ok(None) => savepoints = true, // an item was refused: redo item by item
            Err(e) if is_unique_violation(&e) && attempt < RETRIES => {
                tracing::debug!(attempt, "catalog commit raced with another writer; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(5 * attempt as u64)).await;
            }
            Err(e) => return Err(db_err(e)),
        }
    }
}

/// `Ok(None)` when, without savepoints, an item was refused.
async fn try_commit(
    index: &SqlIndex,
    batch: &[NewInstance],
    savepoints: bool,
) -> Result<Option<Vec<Result<CommitOutcome>>>, sqlx::Error> {
    let mut tx = index.begin_write().await?;
    let mut state = BatchState::default();
    let mut out = Vec::with_capacity(batch.len());
    for item in batch {
        if !savepoints {
            match commit_one(index, &mut tx, item, &mut state).await {
                Ok(o) => out.push(Ok(o)),
                Err(ItemError::Refused(_)) => {
                    tx.rollback().await?;
                    return Ok(None);
                }
                Err(ItemError::Fatal(e)) => return Err(e),
            }
            continue;
        }
        let mut sp = sqlx::Connection::begin(&mut *tx).await?;
        let mut trial = state.clone();
        match commit_one(index, &mut sp, item, &mut trial).await {
            Ok(o) => {
                sp.commit().await?;
                state = trial;
                out.push(Ok(o));
            }
            Err(ItemError::Refused(e)) => {
                sp.rollback().await?;
                out.push(Err(e));
            }
            Err(ItemError::Fatal(e)) => return Err(e),
        }
    }
    apply_counters(index, &mut tx, &state).await?;
    tx.commit().await?;
    Ok(Some(out))
}

/// Series and study counters, once per batch.
async fn apply_counters(index: &SqlIndex, c: &mut AnyConnection, state: &BatchState) -> Result<(), sqlx::Error> {
    let now = yunying_util::time::now_millis();
    for (series_id, (n, bytes)) in &state.series_delta {
        sqlx::query(index.sql(
            "UPDATE series SET num_instances = num_instances + ?, size_bytes = size_bytes + ?, updated_at = ? WHERE id = ?",
        ))
        .bind(*n)
        .bind(*bytes)
        .bind(now)
        .bind(*series_id)
        .execute(&mut *c)
        .await?;
    }
    for (study_id, (n, new_series, bytes)) in &state.study_delta {
        sqlx::query(index.sql(
            "UPDATE study SET num_instances = num_instances + ?, num_series = num_series + ?, \
             size_bytes = size_bytes + ?, updated_at = ? WHERE id = ?",
        ))
        .bind(*n)
        .bind(*new_series)
        .bind(*bytes)
        .bind(now)
        .bind(*study_id)
        .execute(&mut *c)
        .await?;
        if *new_series > 0 {
            let mods: Vec<String> = sqlx::query(index.sql(
                "SELECT DISTINCT modality FROM series WHERE study_id = ? AND modality IS NOT NULL ORDER BY modality",
            ))
            .bind(*study_id)
            .fetch_all(&mut *c)
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>("modality"))
            .collect::<Result<_, _>>()?;
            sqlx::query(index.sql("UPDATE study SET modalities_bar = ? WHERE id = ?"))
                .bind(mods.join("|"))
                .bind(*study_id)
                .execute(&mut *c)
                .await?;
        }
    }
    Ok(())
}

fn refused(e: IndexError) -> ItemError {
    ItemError::Refused(e)
}

fn opt(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

async fn commit_one(
    index: &SqlIndex,
    c: &mut AnyConnection,
    n: &NewInstance,
    state: &mut BatchState,
) -> Result<CommitOutcome, ItemError> {
    let now = yunying_util::time::now_millis();
    let inst = &n.instance;

    // 1. Versions of this SOP instance: the same bytes again is a no-op.
    let versions = sqlx::query(index.sql(
        "SELECT id, sop_uid, version, blob_key, sha256, series_id, current FROM instance WHERE sop_uid = ?",
    ))
    .bind(inst.sop_uid.as_str())
    .fetch_all(&mut *c)
    .await?;
    let mut current: Option<(i64, i64, i64)> = None; // (id, series id, version)
    let mut max_version = 0i64;
    for r in &versions {
        let sha: String = r.try_get("sha256")?;
        if sha == inst.sha256 {
            return Ok(CommitOutcome::Duplicate(instance_ref(r).map_err(refused)?));
        }
        let version: i64 = r.try_get("version")?;
        max_version = max_version.max(version);
        if r.try_get::<i64, _>("current")? == 1 {
            current = Some((r.try_get("id")?, r.try_get("series_id")?, version));
        }
    }

    // 2. The patient, by (issuer, ID) → master record.
    let pkey = (n.patient_key.issuer.clone(), n.patient_key.id.clone());
    let (patient_id, identifier_id) = match state.patients.get(&pkey) {
        Some(p) => *p,
        None => {
            let p = patient(index, c, n, now).await?;
            state.patients.insert(pkey, p);
            p
        }
    };

    // 3. The study: one patient per study.
    let study = &n.study;
    let study_id = match state.studies.get(&study.uid) {
        Some(&(sid, ident)) => {
            if ident != identifier_id {
                return Err(study_conflict(index, c, n, sid).await);
            }
            sid
        }
        None => {
            let existing = sqlx::query(index.sql(
                "SELECT id, patient_identifier_id, attrs FROM study WHERE study_uid = ?",
            ))
            .bind(study.uid.as_str())
            .fetch_optional(&mut *c)
            .await?;
            let sid = match existing {
                Some(r) => {
                    let sid: i64 = r.try_get("id")?;
                    let ident: i64 = r.try_get("patient_identifier_id")?;
                    if ident != identifier_id {
                        return Err(study_conflict(index, c, n, sid).await);
                    }
                    if state.merged.insert(sid) {
                        let attrs: String = r.try_get("attrs")?;
                        if let Some(merged) = merge_attrs(&attrs, &study.attrs) {
                            sqlx::query(index.sql("UPDATE study SET attrs = ? WHERE id = ?"))
                                .bind(merged)
                                .bind(sid)
                                .execute(&mut *c)
                                .await?;
                        }
                    }
                    sid
                }
                None => {
                    let sid = insert_study(index, c, n, patient_id, identifier_id, now).await?;
                    state.merged.insert(sid);
                    // Its retention, and its patient's other exams there (an exam is a visit).
                    crate::retention::recompute_patient(index, c, n.institution_id.0, patient_id).await?;
                    sid
                }
            };
            state.studies.insert(study.uid.clone(), (sid, identifier_id));
            sid
        }
    };

    // 4. The series: one study per series.
    let series = &n.series;
    let (series_id, series_is_new) = match state.series.get(&series.uid) {
        Some(&(seid, owner)) => {
            if owner != study_id {
                return Err(series_conflict(index, c, n, owner).await);
            }
            (seid, false)
        }
        None => {
            let found = sqlx::query(index.sql("SELECT id, study_id FROM series WHERE series_uid = ?"))
                .bind(series.uid.as_str())
                .fetch_optional(&mut *c)
                .await?;
            let r = match found {
                Some(r) => {
                    let owner: i64 = r.try_get("study_id")?;
                    if owner != study_id {
                        return Err(series_conflict(index, c, n, owner).await);
                    }
                    (r.try_get::<i64, _>("id")?, false)
                }
                None => (insert_series(index, c, n, study_id, now).await?, true),
            };
            state.series.insert(series.uid.clone(), (r.0, study_id));
            r
        }
    };

    // 5. A new version supersedes the current one, in the same series only.
    if let Some((id, owner, _)) = current {
        if owner != series_id {
            return Err(refused(IndexError::Conflict(format!(
                "SOP instance {} is already stored in another series",
                inst.sop_uid
            ))));
        }
        sqlx::query(index.sql("UPDATE instance SET current = 0 WHERE id = ?")).bind(id).execute(&mut *c).await?;
    }
    let version = max_version + 1;

    // 6. The instance row and its metadata.
    let instance_id: i64 = sqlx::query(index.sql(
        "INSERT INTO instance (series_id, study_id, sop_uid, version, current, sop_class_uid, transfer_syntax, \
         instance_number, rows_, columns_, bits_allocated, number_of_frames, sha256, size_bytes, blob_key, \
         frames, bulk, attrs, institution_id, received_from, received_at, derive_state, derive_due, cloud_state, cloud_due) \
         VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
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
    .bind(if n.derive { crate::derive_queue::WANTED } else { crate::derive_queue::NOT_WANTED })
    .bind(now)
    .bind(if n.cloud { crate::storage::CLOUD_WANTED } else { crate::storage::CLOUD_NOT_WANTED })
    .bind(now)
    .fetch_one(&mut *c)
    .await?
    .try_get("id")?;
    sqlx::query(index.sql("INSERT INTO instance_metadata (instance_id, metadata) VALUES (?, ?)"))
        .bind(instance_id)
        .bind(inst.metadata.as_str())
        .execute(&mut *c)
        .await?;
    crate::forward_jobs::enqueue(index, c, instance_id, &n.forward_to, now).await?;
    crate::directory::record_secrets(index, c, patient_id, &n.patient_secrets, now).await?;

    // 7. Counters, owed until the end of the batch.
    let added = if current.is_none() { 1i64 } else { 0 };
    let s = state.series_delta.entry(series_id).or_default();
    s.0 += added;
    s.1 += inst.size_bytes;
    let st = state.study_delta.entry(study_id).or_default();
    st.0 += added;
    st.1 += i64::from(series_is_new);
    st.2 += inst.size_bytes;

    let stored = InstanceRef { id: instance_id, sop_uid: inst.sop_uid.clone(), version, blob_key: inst.blob_key.clone() };
    Ok(match current {
        None => CommitOutcome::Stored(stored),
        Some((_, _, previous)) => CommitOutcome::NewVersion { stored, previous },
    })
}

/// Finds or creates the master record and identifier of the object's patient.
async fn patient(index: &SqlIndex, c: &mut AnyConnection, n: &NewInstance, now: i64) -> Result<(i64, i64), ItemError> {
    if let Some(r) = sqlx::query(index.sql(
        "SELECT id, patient_id FROM patient_identifier WHERE kind = 'mrn' AND issuer = ? AND value = ?",
    ))
    .bind(n.patient_key.issuer.as_str())
    .bind(n.patient_key.id.as_str())
    .fetch_optional(&mut *c)
    .await?
    {
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
        return Ok((pid, r.try_get("id")?));
    }
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
    Ok((pid, iid))
}

async fn insert_study(
    index: &SqlIndex,
    c: &mut AnyConnection,
    n: &NewInstance,
    patient_id: i64,
    identifier_id: i64,
    now: i64,
) -> Result<i64, ItemError> {
    let study = &n.study;
    let encounter_id = match opt(&study.visit_number) {
        Some(visit) => Some(encounter(index, c, n, patient_id, visit, now).await?),
        None => None,
    };
    let pn = n.patient.name.clone().unwrap_or_default();
    let [pa, pi, pp] = person_name_search_groups(&pn);
    let rf = study.referring_physician.clone().unwrap_or_default();
    let [ra, ri, rp] = person_name_search_groups(&rf);
    Ok(sqlx::query(index.sql(
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
    .try_get("id")?)
}

async fn insert_series(index: &SqlIndex, c: &mut AnyConnection, n: &NewInstance, study_id: i64, now: i64) -> Result<i64, ItemError> {
    let series = &n.series;
    Ok(sqlx::query(index.sql(
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
    .try_get("id")?)
}

/// The refusal of an object whose study belongs to another patient, naming both.
async fn study_conflict(index: &SqlIndex, c: &mut AnyConnection, n: &NewInstance, study_id: i64) -> ItemError {
    let owner = sqlx::query(index.sql(
        "SELECT pi.issuer, pi.value FROM study st JOIN patient_identifier pi ON pi.id = st.patient_identifier_id \
         WHERE st.id = ?",
    ))
    .bind(study_id)
    .fetch_one(&mut *c)
    .await;
    let (issuer, value): (String, String) = match owner {
        Ok(r) => (r.try_get("issuer").unwrap_or_default(), r.try_get("value").unwrap_or_default()),
        Err(e) => return ItemError::Fatal(e),
    };
    refused(IndexError::Conflict(format!(
        "study {} belongs to patient {value:?} (issuer {issuer:?}), but this object names patient {:?} (issuer {:?})",
        n.study.uid, n.patient_key.id, n.patient_key.issuer
    )))
}

/// The refusal of an object whose series belongs to another study.
async fn series_conflict(index: &SqlIndex, c: &mut AnyConnection, n: &NewInstance, owner: i64) -> ItemError {
    let other = match sqlx::query(index.sql("SELECT study_uid FROM study WHERE id = ?")).bind(owner).fetch_one(&mut *c).await {
        Ok(r) => r.try_get::<String, _>("study_uid").unwrap_or_default(),
        Err(e) => return ItemError::Fatal(e),
    };
    refused(IndexError::Conflict(format!(
        "series {} belongs to study {other}, not to study {}",
        n.series.uid, n.study.uid
    )))
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
