//! Retention in SQL: the patient's visits (`encounter`) and the retention
//! they give each study (computed by `yunying_index::retention`, stored in
//! `study.retention_until` and `retention_basis`), legal holds
//! (`legal_hold`, mirrored by `study.legal_hold`), the expiry report, and
//! the approved deletion workflow (`deletion_request`,
//! `deletion_request_study`, and `deleted_study`, the record left of each
//! deleted study). Migration 8.

use std::collections::BTreeSet;

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use yunying_index::retention::{self, Exam, PatientClass, Visit};
use yunying_index::*;

use crate::{SqlIndex, db_err};

/// The columns of a [`StudyRetention`], from `study st` joined to `institution i`.
macro_rules! study_retention_select {
    () => {
        "SELECT st.study_uid, i.code AS institution_code, st.pat_id, st.pat_issuer, st.patient_class, st.study_date, \
         st.retention_until, st.retention_basis, st.legal_hold, st.num_instances, st.size_bytes \
         FROM study st JOIN institution i ON i.id = st.institution_id"
    };
}

fn class_of(code: &str) -> PatientClass {
    PatientClass::from_code(code).unwrap_or(PatientClass::Outpatient)
}

fn study_retention(r: &AnyRow) -> Result<StudyRetention, sqlx::Error> {
    Ok(StudyRetention {
        study_uid: r.try_get("study_uid")?,
        institution_code: r.try_get("institution_code")?,
        patient_id: r.try_get("pat_id")?,
        issuer: r.try_get("pat_issuer")?,
        patient_class: class_of(&r.try_get::<String, _>("patient_class")?),
        study_date: r.try_get("study_date")?,
        retain_until: r.try_get("retention_until")?,
        basis: r.try_get("retention_basis")?,
        legal_hold: r.try_get::<i64, _>("legal_hold")? != 0,
        num_instances: r.try_get("num_instances")?,
        size_bytes: r.try_get("size_bytes")?,
    })
}

/// The day (`YYYYMMDD`, China Standard Time) of a catalog instant.
fn day_of_millis(ms: i64) -> String {
    let (y, m, d) = yunying_util::time::civil_from_days((ms + 8 * 3_600_000).div_euclid(86_400_000));
    format!("{y:04}{m:02}{d:02}")
}

/// A visit row as the rule reads it.
struct VisitRow {
    visit_number: String,
    kind: Option<String>,
    admitted: Option<String>,
    discharged: Option<String>,
}

impl VisitRow {
    fn visit(&self) -> Visit<'_> {
        Visit {
            class: self.kind.as_deref().and_then(PatientClass::from_code),
            visit_number: &self.visit_number,
            date: self.admitted.as_deref(),
            discharged: self.discharged.as_deref(),
        }
    }
}

async fn visits(index: &SqlIndex, c: &mut AnyConnection, institution: i64, patient: i64) -> Result<Vec<VisitRow>, sqlx::Error> {
    sqlx::query(index.sql(
        "SELECT visit_number, kind, admitted_at, discharged_at FROM encounter WHERE patient_id = ? AND institution_id = ?",
    ))
    .bind(patient)
    .bind(institution)
    .fetch_all(&mut *c)
    .await?
    .iter()
    .map(|r| {
        Ok(VisitRow {
            visit_number: r.try_get("visit_number")?,
            kind: r.try_get("kind")?,
            admitted: r.try_get("admitted_at")?,
            discharged: r.try_get("discharged_at")?,
        })
    })
    .collect()
}

/// Recomputes every study of a patient at an institution (inside a
/// transaction): at ingest of a new study, when a visit is recorded, and by
/// `recompute_retention`. A study's class is its visit's (named by
/// Admission ID) when known, else the one it has (outpatient at first).
/// The visits are the recorded ones and the patient's exams there (an exam
/// is a visit too). Rows whose retention does not change are not written.
pub(crate) async fn recompute_patient(index: &SqlIndex, c: &mut AnyConnection, institution: i64, patient: i64) -> Result<(), sqlx::Error> {
    let recorded = visits(index, c, institution, patient).await?;
    let studies = sqlx::query(index.sql(
        "SELECT st.id, st.study_uid, st.study_date, st.created_at, st.patient_class, st.retention_until, \
         st.retention_basis, e.kind AS visit_kind \
         FROM study st LEFT JOIN encounter e ON e.id = st.encounter_id \
         WHERE st.patient_id = ? AND st.institution_id = ? ORDER BY st.id",
    ))
    .bind(patient)
    .bind(institution)
    .fetch_all(&mut *c)
    .await?;
    let mut exams = Vec::with_capacity(studies.len());
    for s in &studies {
        let uid: String = s.try_get("study_uid")?;
        let date: String = s.try_get("study_date")?;
        exams.push((format!("exam {uid}"), date));
    }
    let mut list: Vec<Visit<'_>> = recorded.iter().map(VisitRow::visit).collect();
    // An exam's date is a day the patient was seen; its class says nothing
    // of a stay, so it counts as a visit of unknown class.
    list.extend(exams.iter().filter(|(_, d)| !d.is_empty()).map(|(label, date)| Visit {
        class: None,
        visit_number: label,
        date: Some(date.as_str()),
        discharged: None,
    }));
    for s in &studies {
        let stored: String = s.try_get("patient_class")?;
        let visit_kind: Option<String> = s.try_get("visit_kind")?;
        let class = visit_kind.as_deref().and_then(PatientClass::from_code).unwrap_or_else(|| class_of(&stored));
        let date: String = s.try_get("study_date")?;
        let received = day_of_millis(s.try_get("created_at")?);
        let r = retention::retain_until(
            &Exam { class, date: Some(date.as_str()).filter(|d| !d.is_empty()), received: Some(&received) },
            &list,
        );
        let before: (Option<String>, Option<String>) = (s.try_get("retention_until")?, s.try_get("retention_basis")?);
        if stored == class.code() && before.0.as_deref() == r.date() && before.1.as_deref() == Some(r.basis()) {
            continue;
        }
        sqlx::query(index.sql(
            "UPDATE study SET patient_class = ?, retention_until = ?, retention_basis = ? WHERE id = ?",
        ))
        .bind(class.code())
        .bind(r.date())
        .bind(r.basis())
        .bind(s.try_get::<i64, _>("id")?)
        .execute(&mut *c)
        .await?;
    }
    Ok(())
}

/// The master patient of a key, created (with its identifier) when unknown.
async fn patient_of(index: &SqlIndex, c: &mut AnyConnection, e: &NewEncounter, now: i64) -> Result<i64, sqlx::Error> {
    if let Some(r) = sqlx::query(index.sql(
        "SELECT patient_id FROM patient_identifier WHERE kind = 'mrn' AND issuer = ? AND value = ?",
    ))
    .bind(e.patient.issuer.as_str())
    .bind(e.patient.id.as_str())
    .fetch_optional(&mut *c)
    .await?
    {
        return r.try_get("patient_id");
    }
    let pid: i64 = sqlx::query(index.sql("INSERT INTO patient (created_at, updated_at) VALUES (?, ?) RETURNING id"))
        .bind(now)
        .bind(now)
        .fetch_one(&mut *c)
        .await?
        .try_get("id")?;
    sqlx::query(index.sql(
        "INSERT INTO patient_identifier (patient_id, issuer, value, kind, institution_id, created_at) VALUES (?, ?, ?, 'mrn', ?, ?)",
    ))
    .bind(pid)
    .bind(e.patient.issuer.as_str())
    .bind(e.patient.id.as_str())
    .bind(e.institution_id.0)
    .bind(now)
    .execute(&mut *c)
    .await?;
    Ok(pid)
}

pub(crate) async fn record_encounter(index: &SqlIndex, e: &NewEncounter) -> Result<RecordedEncounter> {
    let now = yunying_util::time::now_millis();
    let mut tx = index.begin_write().await.map_err(db_err)?;
    let patient = patient_of(index, &mut tx, e, now).await.map_err(db_err)?;
    let existing = sqlx::query(index.sql("SELECT id, patient_id FROM encounter WHERE institution_id = ? AND visit_number = ?"))
        .bind(e.institution_id.0)
        .bind(e.visit_number.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
    let (encounter_id, created) = match existing {
        Some(r) => {
            let id: i64 = r.try_get("id").map_err(db_err)?;
            let owner: Option<i64> = r.try_get("patient_id").map_err(db_err)?;
            if owner.is_some_and(|o| o != patient) {
                return Err(IndexError::Conflict(format!(
                    "visit {} of this institution belongs to another patient than {:?} (issuer {:?})",
                    e.visit_number, e.patient.id, e.patient.issuer
                )));
            }
            sqlx::query(index.sql(
                "UPDATE encounter SET patient_id = ?, kind = ?, admitted_at = ?, discharged_at = ?, updated_at = ? WHERE id = ?",
            ))
            .bind(patient)
            .bind(e.class.code())
            .bind(e.admitted.as_str())
            .bind(e.discharged.as_deref())
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            (id, false)
        }
        None => {
            let id: i64 = sqlx::query(index.sql(
                "INSERT INTO encounter (institution_id, patient_id, visit_number, kind, admitted_at, discharged_at, \
                 created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            ))
            .bind(e.institution_id.0)
            .bind(patient)
            .bind(e.visit_number.as_str())
            .bind(e.class.code())
            .bind(e.admitted.as_str())
            .bind(e.discharged.as_deref())
            .bind(now)
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?
            .try_get("id")
            .map_err(db_err)?;
            (id, true)
        }
    };
    recompute_patient(index, &mut tx, e.institution_id.0, patient).await.map_err(db_err)?;
    let studies = sqlx::query(index.sql(concat!(
        study_retention_select!(),
        " WHERE st.patient_id = ? AND st.institution_id = ? ORDER BY st.study_date, st.study_uid"
    )))
    .bind(patient)
    .bind(e.institution_id.0)
    .fetch_all(&mut *tx)
    .await
    .map_err(db_err)?
    .iter()
    .map(study_retention)
    .collect::<Result<Vec<_>, _>>()
    .map_err(db_err)?;
    tx.commit().await.map_err(db_err)?;
    Ok(RecordedEncounter { encounter_id, created, studies })
}

pub(crate) async fn recompute(index: &SqlIndex, after_id: i64, limit: u32) -> Result<Option<i64>> {
    let mut tx = index.begin_write().await.map_err(db_err)?;
    let rows = sqlx::query(index.sql("SELECT id, institution_id, patient_id FROM study WHERE id > ? ORDER BY id LIMIT ?"))
        .bind(after_id)
        .bind(i64::from(limit.max(1)))
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
    let mut pairs = BTreeSet::new();
    let mut last = None;
    for r in &rows {
        last = Some(r.try_get::<i64, _>("id").map_err(db_err)?);
        pairs.insert((r.try_get::<i64, _>("institution_id").map_err(db_err)?, r.try_get::<i64, _>("patient_id").map_err(db_err)?));
    }
    for (institution, patient) in pairs {
        recompute_patient(index, &mut tx, institution, patient).await.map_err(db_err)?;
    }
    tx.commit().await.map_err(db_err)?;
    Ok(last)
}

pub(crate) async fn study(index: &SqlIndex, study_uid: &str) -> Result<Option<StudyRetention>> {
    let row = sqlx::query(index.sql(concat!(study_retention_select!(), " WHERE st.study_uid = ?")))
        .bind(study_uid)
        .fetch_optional(&index.pool)
        .await
        .map_err(db_err)?;
    row.as_ref().map(study_retention).transpose().map_err(db_err)
}

const HOLD_COLUMNS: &str = "id, study_uid, reason, placed_by, placed_at, released_by, released_at, release_reason";

fn hold(r: &AnyRow) -> Result<LegalHold, sqlx::Error> {
    Ok(LegalHold {
        id: r.try_get("id")?,
        study_uid: r.try_get("study_uid")?,
        reason: r.try_get("reason")?,
        placed_by: r.try_get("placed_by")?,
        placed_at: r.try_get("placed_at")?,
        released_by: r.try_get("released_by")?,
        released_at: r.try_get("released_at")?,
        release_reason: r.try_get("release_reason")?,
    })
}

async fn current_hold(index: &SqlIndex, c: &mut AnyConnection, study_uid: &str) -> Result<Option<LegalHold>, sqlx::Error> {
    let sql = format!("SELECT {HOLD_COLUMNS} FROM legal_hold WHERE study_uid = {} AND released_at IS NULL", index.dialect().placeholder(1));
    sqlx::query(index.dynamic(sql)).bind(study_uid).fetch_optional(&mut *c).await?.as_ref().map(hold).transpose()
}

async fn study_id(index: &SqlIndex, c: &mut AnyConnection, study_uid: &str) -> Result<i64> {
    sqlx::query(index.sql("SELECT id FROM study WHERE study_uid = ?"))
        .bind(study_uid)
        .fetch_optional(&mut *c)
        .await
        .map_err(db_err)?
        .map(|r| r.try_get::<i64, _>("id").map_err(db_err))
        .transpose()?
        .ok_or_else(|| IndexError::NotFound(format!("no study {study_uid}")))
}

pub(crate) async fn place_hold(index: &SqlIndex, study_uid: &str, reason: &str, by: &str, at: i64) -> Result<LegalHold> {
    let mut tx = index.begin_write().await.map_err(db_err)?;
    let sid = study_id(index, &mut tx, study_uid).await?;
    if let Some(h) = current_hold(index, &mut tx, study_uid).await.map_err(db_err)? {
        return Err(IndexError::Conflict(format!(
            "study {study_uid} is already under legal hold (placed by {} for {:?})",
            h.placed_by, h.reason
        )));
    }
    let id: i64 = sqlx::query(index.sql(
        "INSERT INTO legal_hold (study_uid, reason, placed_by, placed_at) VALUES (?, ?, ?, ?) RETURNING id",
    ))
    .bind(study_uid)
    .bind(reason)
    .bind(by)
    .bind(at)
    .fetch_one(&mut *tx)
    .await
    .map_err(db_err)?
    .try_get("id")
    .map_err(db_err)?;
    sqlx::query(index.sql("UPDATE study SET legal_hold = 1 WHERE id = ?")).bind(sid).execute(&mut *tx).await.map_err(db_err)?;
    tx.commit().await.map_err(db_err)?;
    Ok(LegalHold {
        id,
        study_uid: study_uid.into(),
        reason: reason.into(),
        placed_by: by.into(),
        placed_at: at,
        released_by: None,
        released_at: None,
        release_reason: None,
    })
}

pub(crate) async fn release_hold(index: &SqlIndex, study_uid: &str, reason: &str, by: &str, at: i64) -> Result<LegalHold> {
    let mut tx = index.begin_write().await.map_err(db_err)?;
    let sid = study_id(index, &mut tx, study_uid).await?;
    let Some(mut h) = current_hold(index, &mut tx, study_uid).await.map_err(db_err)? else {
        return Err(IndexError::Conflict(format!("study {study_uid} is not under legal hold")));
    };
    sqlx::query(index.sql("UPDATE legal_hold SET released_by = ?, released_at = ?, release_reason = ? WHERE id = ?"))
        .bind(by)
        .bind(at)
        .bind(reason)
        .bind(h.id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    sqlx::query(index.sql("UPDATE study SET legal_hold = 0 WHERE id = ?")).bind(sid).execute(&mut *tx).await.map_err(db_err)?;
    tx.commit().await.map_err(db_err)?;
    h.released_by = Some(by.into());
    h.released_at = Some(at);
    h.release_reason = Some(reason.into());
    Ok(h)
}

pub(crate) async fn holds(index: &SqlIndex, study_uid: &str) -> Result<Vec<LegalHold>> {
    let sql = format!("SELECT {HOLD_COLUMNS} FROM legal_hold WHERE study_uid = {} ORDER BY id DESC", index.dialect().placeholder(1));
    sqlx::query(index.dynamic(sql))
        .bind(study_uid)
        .fetch_all(&index.pool)
        .await
        .map_err(db_err)?
        .iter()
        .map(hold)
        .collect::<Result<_, _>>()
        .map_err(db_err)
}

pub(crate) async fn expired(index: &SqlIndex, before: &str, limit: u32, offset: u64) -> Result<ExpiredPage> {
    let total: i64 = sqlx::query(index.sql(
        "SELECT COUNT(*) AS n FROM study WHERE legal_hold = 0 AND retention_until IS NOT NULL AND retention_until < ?",
    ))
    .bind(before)
    .fetch_one(&index.pool)
    .await
    .map_err(db_err)?
    .try_get("n")
    .map_err(db_err)?;
    let studies = sqlx::query(index.sql(concat!(
        study_retention_select!(),
        " WHERE st.legal_hold = 0 AND st.retention_until IS NOT NULL AND st.retention_until < ? \
         ORDER BY st.retention_until, st.study_uid LIMIT ? OFFSET ?"
    )))
    .bind(before)
    .bind(i64::from(limit))
    .bind(offset as i64)
    .fetch_all(&index.pool)
    .await
    .map_err(db_err)?
    .iter()
    .map(study_retention)
    .collect::<Result<Vec<_>, _>>()
    .map_err(db_err)?;
    Ok(ExpiredPage { total: total as u64, studies })
}

/// Why a study may not be deleted today (inside a transaction), or `None` when it may.
async fn refusal(index: &SqlIndex, c: &mut AnyConnection, study_uid: &str, today: &str) -> Result<Option<String>, sqlx::Error> {
    let Some(r) = sqlx::query(index.sql(
        "SELECT retention_until, retention_basis, legal_hold FROM study WHERE study_uid = ?",
    ))
    .bind(study_uid)
    .fetch_optional(&mut *c)
    .await?
    else {
        return Ok(Some("no such study".into()));
    };
    let until: Option<String> = r.try_get("retention_until")?;
    let basis: Option<String> = r.try_get("retention_basis")?;
    let held = r.try_get::<i64, _>("legal_hold")? != 0;
    Ok(retention::deletable(until.as_deref(), basis.as_deref(), held, today).err())
}

pub(crate) async fn create_request(index: &SqlIndex, new: &NewDeletionRequest) -> Result<DeletionRequestOutcome> {
    let uids: BTreeSet<&str> = new.study_uids.iter().map(|s| s.trim()).filter(|s| !s.is_empty()).collect();
    if uids.is_empty() {
        return Err(IndexError::Invalid("a deletion request names at least one study".into()));
    }
    let mut tx = index.begin_write().await.map_err(db_err)?;
    let mut refused = Vec::new();
    for uid in &uids {
        let open = sqlx::query(index.sql(
            "SELECT r.id FROM deletion_request_study s JOIN deletion_request r ON r.id = s.request_id \
             WHERE s.study_uid = ? AND r.state IN ('requested', 'approved')",
        ))
        .bind(*uid)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let reason = match open {
            Some(r) => Some(format!("the study is already in deletion request {}", r.try_get::<i64, _>("id").map_err(db_err)?)),
            None => refusal(index, &mut tx, uid, &new.today).await.map_err(db_err)?,
        };
        if let Some(reason) = reason {
            refused.push(Refusal { study_uid: uid.to_string(), reason });
        }
    }
    if !refused.is_empty() {
        tx.rollback().await.map_err(db_err)?;
        return Ok(DeletionRequestOutcome::Refused(refused));
    }
    let id: i64 = sqlx::query(index.sql(
        "INSERT INTO deletion_request (state, note, requested_by, requested_at) VALUES ('requested', ?, ?, ?) RETURNING id",
    ))
    .bind(new.note.as_str())
    .bind(new.requested_by.as_str())
    .bind(new.requested_at)
    .fetch_one(&mut *tx)
    .await
    .map_err(db_err)?
    .try_get("id")
    .map_err(db_err)?;
    for uid in &uids {
        sqlx::query(index.sql("INSERT INTO deletion_request_study (request_id, study_uid, state) VALUES (?, ?, 'pending')"))
            .bind(id)
            .bind(*uid)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
    }
    let request = load_request(index, &mut tx, id).await?.ok_or_else(|| IndexError::Backend("request vanished".into()))?;
    tx.commit().await.map_err(db_err)?;
    Ok(DeletionRequestOutcome::Created(request))
}

async fn load_request(index: &SqlIndex, c: &mut AnyConnection, id: i64) -> Result<Option<DeletionRequest>> {
    let Some(r) = sqlx::query(index.sql(
        "SELECT id, state, note, requested_by, requested_at, decided_by, decided_at, decision_note, done_at \
         FROM deletion_request WHERE id = ?",
    ))
    .bind(id)
    .fetch_optional(&mut *c)
    .await
    .map_err(db_err)?
    else {
        return Ok(None);
    };
    let state: String = r.try_get("state").map_err(db_err)?;
    let studies = sqlx::query(index.sql(
        "SELECT study_uid, state, detail FROM deletion_request_study WHERE request_id = ? ORDER BY study_uid",
    ))
    .bind(id)
    .fetch_all(&mut *c)
    .await
    .map_err(db_err)?
    .iter()
    .map(|s| {
        Ok(DeletionItem { study_uid: s.try_get("study_uid")?, state: s.try_get("state")?, detail: s.try_get("detail")? })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()
    .map_err(db_err)?;
    Ok(Some(DeletionRequest {
        id,
        state: DeletionState::from_code(&state).ok_or_else(|| IndexError::Backend(format!("unknown request state {state:?}")))?,
        note: r.try_get("note").map_err(db_err)?,
        requested_by: r.try_get("requested_by").map_err(db_err)?,
        requested_at: r.try_get("requested_at").map_err(db_err)?,
        decided_by: r.try_get("decided_by").map_err(db_err)?,
        decided_at: r.try_get("decided_at").map_err(db_err)?,
        decision_note: r.try_get("decision_note").map_err(db_err)?,
        done_at: r.try_get("done_at").map_err(db_err)?,
        studies,
    }))
}

pub(crate) async fn request(index: &SqlIndex, id: i64) -> Result<Option<DeletionRequest>> {
    let mut c = index.pool.acquire().await.map_err(db_err)?;
    load_request(index, &mut c, id).await
}

pub(crate) async fn requests(index: &SqlIndex, limit: u32, offset: u64) -> Result<Vec<DeletionRequest>> {
    let mut c = index.pool.acquire().await.map_err(db_err)?;
    let ids: Vec<i64> = sqlx::query(index.sql("SELECT id FROM deletion_request ORDER BY id DESC LIMIT ? OFFSET ?"))
        .bind(i64::from(limit))
        .bind(offset as i64)
        .fetch_all(&mut *c)
        .await
        .map_err(db_err)?
        .iter()
        .map(|r| r.try_get::<i64, _>("id"))
        .collect::<Result<_, _>>()
        .map_err(db_err)?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.extend(load_request(index, &mut c, id).await?);
    }
    Ok(out)
}

pub(crate) async fn decide(index: &SqlIndex, id: i64, decision: &DeletionDecision) -> Result<DeletionRequest> {
    let mut tx = index.begin_write().await.map_err(db_err)?;
    let current = load_request(index, &mut tx, id).await?.ok_or_else(|| IndexError::NotFound(format!("no deletion request {id}")))?;
    let refuse = |what: &str| IndexError::Conflict(format!("deletion request {id} is {}: it cannot be {what}", current.state.code()));
    match decision {
        DeletionDecision::Approve { by, at, note } => match current.state {
            DeletionState::Requested => {
                sqlx::query(index.sql(
                    "UPDATE deletion_request SET state = 'approved', decided_by = ?, decided_at = ?, decision_note = ? WHERE id = ?",
                ))
                .bind(by.as_str())
                .bind(*at)
                .bind(note.as_deref())
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            }
            // Approving again finishes a deletion a crash interrupted.
            DeletionState::Approved => {}
            _ => return Err(refuse("approved")),
        },
        DeletionDecision::Reject { by, at, note } => {
            if current.state != DeletionState::Requested {
                return Err(refuse("rejected"));
            }
            sqlx::query(index.sql(
                "UPDATE deletion_request SET state = 'rejected', decided_by = ?, decided_at = ?, decision_note = ? WHERE id = ?",
            ))
            .bind(by.as_str())
            .bind(*at)
            .bind(note.as_str())
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        DeletionDecision::Done { at } => {
            if current.state != DeletionState::Approved {
                return Err(refuse("finished"));
            }
            sqlx::query(index.sql("UPDATE deletion_request SET state = 'done', done_at = ? WHERE id = ?"))
                .bind(*at)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
    }
    let out = load_request(index, &mut tx, id).await?.ok_or_else(|| IndexError::Backend("request vanished".into()))?;
    tx.commit().await.map_err(db_err)?;
    Ok(out)
}

fn deleted_study(r: &AnyRow) -> Result<DeletedStudy> {
    let blobs: String = r.try_get("blobs").map_err(db_err)?;
    Ok(DeletedStudy {
        id: r.try_get("id").map_err(db_err)?,
        study_uid: r.try_get("study_uid").map_err(db_err)?,
        request_id: r.try_get("request_id").map_err(db_err)?,
        institution_code: r.try_get("institution_code").map_err(db_err)?,
        patient_id: r.try_get("pat_id").map_err(db_err)?,
        issuer: r.try_get("pat_issuer").map_err(db_err)?,
        study_date: r.try_get("study_date").map_err(db_err)?,
        retain_until: r.try_get("retention_until").map_err(db_err)?,
        num_instances: r.try_get("num_instances").map_err(db_err)?,
        size_bytes: r.try_get("size_bytes").map_err(db_err)?,
        reason_code: r.try_get("reason_code").map_err(db_err)?,
        deleted_by: r.try_get("deleted_by").map_err(db_err)?,
        deleted_at: r.try_get("deleted_at").map_err(db_err)?,
        blobs: serde_json::from_str(&blobs).map_err(|e| IndexError::Backend(format!("deleted study blobs: {e}")))?,
        blobs_removed_at: r.try_get("blobs_removed_at").map_err(db_err)?,
    })
}

async fn mark_item(index: &SqlIndex, c: &mut AnyConnection, request_id: i64, study_uid: &str, state: &str, detail: Option<&str>) -> Result<()> {
    sqlx::query(index.sql("UPDATE deletion_request_study SET state = ?, detail = ? WHERE request_id = ? AND study_uid = ?"))
        .bind(state)
        .bind(detail)
        .bind(request_id)
        .bind(study_uid)
        .execute(&mut *c)
        .await
        .map_err(db_err)?;
    Ok(())
}

pub(crate) async fn delete_study(index: &SqlIndex, request_id: i64, study_uid: &str, by: &str, at: i64, today: &str) -> Result<StudyDeletion> {
    let mut tx = index.begin_write().await.map_err(db_err)?;
    let request = load_request(index, &mut tx, request_id)
        .await?
        .ok_or_else(|| IndexError::NotFound(format!("no deletion request {request_id}")))?;
    if request.state != DeletionState::Approved {
        return Err(IndexError::Conflict(format!("deletion request {request_id} is {}, not approved", request.state.code())));
    }
    let item = request
        .studies
        .iter()
        .find(|s| s.study_uid == study_uid)
        .ok_or_else(|| IndexError::NotFound(format!("study {study_uid} is not in deletion request {request_id}")))?;
    match item.state.as_str() {
        "deleted" => {
            let r = sqlx::query(index.sql(
                "SELECT d.*, i.code AS institution_code FROM deleted_study d JOIN institution i ON i.id = d.institution_id \
                 WHERE d.request_id = ? AND d.study_uid = ?",
            ))
            .bind(request_id)
            .bind(study_uid)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
            return Ok(StudyDeletion::Deleted(Box::new(deleted_study(&r)?)));
        }
        "skipped" => return Ok(StudyDeletion::Skipped(item.detail.clone().unwrap_or_default())),
        _ => {}
    }
    if let Some(reason) = refusal(index, &mut tx, study_uid, today).await.map_err(db_err)? {
        mark_item(index, &mut tx, request_id, study_uid, "skipped", Some(&reason)).await?;
        tx.commit().await.map_err(db_err)?;
        return Ok(StudyDeletion::Skipped(reason));
    }
    let st = sqlx::query(index.sql(
        "SELECT st.id, st.institution_id, i.code AS institution_code, st.patient_id, st.pat_id, st.pat_issuer, st.study_date, \
         st.patient_class, st.retention_until, st.num_instances, st.size_bytes \
         FROM study st JOIN institution i ON i.id = st.institution_id WHERE st.study_uid = ?",
    ))
    .bind(study_uid)
    .fetch_one(&mut *tx)
    .await
    .map_err(db_err)?;
    let sid: i64 = st.try_get("id").map_err(db_err)?;
    let blobs: Vec<StoredBlob> = sqlx::query(index.sql("SELECT blob_key, sha256 FROM instance WHERE study_id = ? ORDER BY id"))
        .bind(sid)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?
        .iter()
        .map(|r| Ok(StoredBlob { key: r.try_get("blob_key")?, sha256: r.try_get("sha256")? }))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(db_err)?;
    for statement in [
        "DELETE FROM forward_job WHERE instance_id IN (SELECT id FROM instance WHERE study_id = ?)",
        "DELETE FROM instance_metadata WHERE instance_id IN (SELECT id FROM instance WHERE study_id = ?)",
        "DELETE FROM instance WHERE study_id = ?",
        "DELETE FROM series WHERE study_id = ?",
        "DELETE FROM study WHERE id = ?",
    ] {
        sqlx::query(index.sql(statement)).bind(sid).execute(&mut *tx).await.map_err(db_err)?;
    }
    let blobs_json = serde_json::to_string(&blobs).map_err(|e| IndexError::Backend(e.to_string()))?;
    let record = DeletedStudy {
        id: 0,
        study_uid: study_uid.to_string(),
        request_id,
        institution_code: st.try_get("institution_code").map_err(db_err)?,
        patient_id: st.try_get("pat_id").map_err(db_err)?,
        issuer: st.try_get("pat_issuer").map_err(db_err)?,
        study_date: st.try_get("study_date").map_err(db_err)?,
        retain_until: st.try_get("retention_until").map_err(db_err)?,
        num_instances: st.try_get("num_instances").map_err(db_err)?,
        size_bytes: st.try_get("size_bytes").map_err(db_err)?,
        reason_code: RETENTION_EXPIRED_CODE.to_string(),
        deleted_by: by.to_string(),
        deleted_at: at,
        blobs,
        blobs_removed_at: None,
    };
    let id: i64 = sqlx::query(index.sql(
        "INSERT INTO deleted_study (study_uid, request_id, institution_id, patient_id, pat_id, pat_issuer, study_date, \
         patient_class, retention_until, num_instances, size_bytes, reason_code, reason_scheme, reason_meaning, \
         deleted_by, deleted_at, blobs) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    ))
    .bind(study_uid)
    .bind(request_id)
    .bind(st.try_get::<i64, _>("institution_id").map_err(db_err)?)
    .bind(st.try_get::<i64, _>("patient_id").map_err(db_err)?)
    .bind(record.patient_id.as_str())
    .bind(record.issuer.as_str())
    .bind(record.study_date.as_str())
    .bind(st.try_get::<String, _>("patient_class").map_err(db_err)?)
    .bind(record.retain_until.as_deref())
    .bind(record.num_instances)
    .bind(record.size_bytes)
    .bind(RETENTION_EXPIRED_CODE)
    .bind(RETENTION_EXPIRED_SCHEME)
    .bind(RETENTION_EXPIRED_MEANING)
    .bind(by)
    .bind(at)
    .bind(blobs_json.as_str())
    .fetch_one(&mut *tx)
    .await
    .map_err(db_err)?
    .try_get("id")
    .map_err(db_err)?;
    mark_item(index, &mut tx, request_id, study_uid, "deleted", None).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(StudyDeletion::Deleted(Box::new(DeletedStudy { id, ..record })))
}

pub(crate) async fn blobs_removed(index: &SqlIndex, deleted_id: i64, at: i64) -> Result<()> {
    sqlx::query(index.sql("UPDATE deleted_study SET blobs_removed_at = ? WHERE id = ?"))
        .bind(at)
        .bind(deleted_id)
        .execute(&index.pool)
        .await
        .map_err(db_err)?;
    Ok(())
}
