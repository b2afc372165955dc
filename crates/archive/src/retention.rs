//! Retention at the archive: recording patients' visits (which set their
//! studies' retain-until dates, see `yunying_index::retention` for the rule
//! and its legal basis), legal holds, the expiry report, and the approved
//! deletion workflow. Who may do each is `policy`'s decision; every step is
//! audited here.
//!
//! Deletion is never automatic. A person allowed to request it (the system
//! administrator) names studies whose retention has ended and that are not
//! held; a different person allowed to approve (the security
//! administrator: 三员分立 keeps the two roles apart, and the requester can
//! never approve their own request whatever their roles) approves it. The
//! approval checks every study again, then deletes each one IOCM-style:
//! the rejection (code 113039 DCM "Data Retention Policy Expired") is
//! recorded in the catalog and the audit trail, the study leaves the
//! catalog (queries and retrieval no longer find it), and its objects leave
//! the blob store ([`Archive::delete_study_blobs`]: every version and the
//! derived streaming copy). A crash in between leaves the request
//! `approved`; approving it again finishes the work.

use serde::Deserialize;
use yunying_audit::{Action as AuditAction, Outcome, PatientRef};
use yunying_index::lifecycle::*;
use yunying_index::retention::PatientClass;
use yunying_index::{IndexError, PatientKey};
use yunying_util::time::{is_valid_da, today_da_cst};

use crate::policy::{Action, Target};
use crate::{Archive, ArchiveError, Caller};

/// Most studies in one deletion request, and most rows in one report page.
pub const MAX_STUDIES: usize = 1000;
/// Longest reason or note kept.
const MAX_TEXT: usize = 2000;

/// A visit to record (`POST /api/encounters`; later HL7 ADT feeds).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncounterRequest {
    /// Institution code.
    pub institution: String,
    pub patient_id: String,
    /// Issuer of the patient ID (default: the institution's issuer).
    #[serde(default)]
    pub issuer: Option<String>,
    pub visit_number: String,
    /// `O` outpatient, `E` emergency, `I` inpatient.
    pub class: String,
    /// Visit date (O, E) or admission date (I), `YYYYMMDD`.
    #[serde(alias = "visit_date")]
    pub admitted: String,
    /// Discharge date, `YYYYMMDD`.
    #[serde(default)]
    pub discharged: Option<String>,
}

/// Why a deletion could not be asked for or approved.
#[derive(Debug, thiserror::Error)]
pub enum DeletionError {
    /// These studies may not be deleted now; nothing was done.
    #[error("{}", refusal_text(.0))]
    Refused(Vec<Refusal>),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
}

fn refusal_text(r: &[Refusal]) -> String {
    let each: Vec<String> = r.iter().map(|r| format!("{}: {}", r.study_uid, r.reason)).collect();
    format!("not deletable now: {}", each.join("; "))
}

impl From<IndexError> for DeletionError {
    fn from(e: IndexError) -> Self {
        DeletionError::Archive(catalog_error(e))
    }
}

/// What removing a deleted study's objects from storage did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlobRemoval {
    /// Original objects and derived frames removed (or already absent).
    pub removed: usize,
    /// Keys that could not be removed, with why.
    pub failed: Vec<String>,
}

/// A conflict of the catalog is a conflict of the request (409), not a fault.
fn catalog_error(e: IndexError) -> ArchiveError {
    match e {
        IndexError::Conflict(m) => ArchiveError::Conflict(m),
        other => ArchiveError::Index(other),
    }
}

fn text(what: &str, v: &str) -> Result<String, ArchiveError> {
    let v = v.trim();
    if v.is_empty() {
        return Err(ArchiveError::BadRequest(format!("{what} is required")));
    }
    if v.chars().count() > MAX_TEXT {
        return Err(ArchiveError::BadRequest(format!("{what} is longer than {MAX_TEXT} characters")));
    }
    Ok(v.to_string())
}

fn date(what: &str, v: &str) -> Result<String, ArchiveError> {
    let v = v.trim();
    if !is_valid_da(v) {
        return Err(ArchiveError::BadRequest(format!("{what} {v:?} is not a date (YYYYMMDD)")));
    }
    Ok(v.to_string())
}

fn patient_of(s: &StudyRetention) -> PatientRef {
    PatientRef { id: s.patient_id.clone(), issuer: s.issuer.clone(), name: None }
}

impl Archive {
    /// Records a visit and recomputes the retention of the patient's studies
    /// at the institution. The caller needs `record-encounters` for that institution.
    pub async fn record_encounter(&self, caller: &Caller, req: &EncounterRequest) -> Result<RecordedEncounter, ArchiveError> {
        let code = req.institution.trim();
        let institution = self
            .find_institution(|i| i.code == code, true)
            .await?
            .ok_or_else(|| ArchiveError::BadRequest(format!("no institution with code {code:?}")))?;
        self.authorize(caller, Action::RecordEncounters, &Target::Institution(institution.id)).await?;
        let class = PatientClass::from_code(&req.class)
            .ok_or_else(|| ArchiveError::BadRequest(format!("class {:?} is O (outpatient), E (emergency) or I (inpatient)", req.class)))?;
        let admitted = date("admitted", &req.admitted)?;
        let discharged = req.discharged.as_deref().map(|d| date("discharged", d)).transpose()?;
        if let Some(d) = &discharged
            && *d < admitted
        {
            return Err(ArchiveError::BadRequest(format!("discharged {d} is before admitted {admitted}")));
        }
        let issuer = match req.issuer.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(i) => i.to_string(),
            None => institution.patient_id_issuer.clone(),
        };
        let new = NewEncounter {
            institution_id: institution.id,
            patient: PatientKey { issuer, id: text("patient_id", &req.patient_id)? },
            visit_number: text("visit_number", &req.visit_number)?,
            class,
            admitted,
            discharged,
        };
        let recorded = self.index.record_encounter(&new).await.map_err(catalog_error)?;
        let mut e = self.audit_event(caller, AuditAction::EncounterRecorded, Outcome::Success);
        e.patient = Some(PatientRef { id: new.patient.id.clone(), issuer: new.patient.issuer.clone(), name: None });
        e.studies = recorded.studies.iter().map(|s| s.study_uid.clone()).collect();
        e.detail = serde_json::json!({
            "institution": institution.code,
            "visit_number": new.visit_number,
            "class": class.code(),
            "admitted": new.admitted,
            "discharged": new.discharged,
            "created": recorded.created,
        });
        self.audit(e).await;
        Ok(recorded)
    }

    /// A study's retention and its legal holds (`view-retention`).
    pub async fn study_retention(&self, caller: &Caller, study_uid: &str) -> Result<(StudyRetention, Vec<LegalHold>), ArchiveError> {
        self.authorize(caller, Action::ViewRetention, &Target::Platform).await?;
        let study = self.index.study_retention(study_uid).await?.ok_or_else(|| ArchiveError::NotFound(format!("no study {study_uid}")))?;
        let holds = self.index.legal_holds(study_uid).await?;
        let mut e = self.audit_event(caller, AuditAction::Query, Outcome::Success);
        e.patient = Some(patient_of(&study));
        e.studies = vec![study_uid.to_string()];
        e.detail = serde_json::json!({ "query": "study retention", "count": 1 });
        self.audit(e).await;
        Ok((study, holds))
    }

    /// Places a legal hold (`manage-legal-holds`): a held study is never deletable.
    pub async fn place_legal_hold(&self, caller: &Caller, study_uid: &str, reason: &str) -> Result<LegalHold, ArchiveError> {
        self.change_hold(caller, study_uid, reason, true).await
    }

    /// Releases a study's legal hold (`manage-legal-holds`), saying why.
    pub async fn release_legal_hold(&self, caller: &Caller, study_uid: &str, reason: &str) -> Result<LegalHold, ArchiveError> {
        self.change_hold(caller, study_uid, reason, false).await
    }

    async fn change_hold(&self, caller: &Caller, study_uid: &str, reason: &str, place: bool) -> Result<LegalHold, ArchiveError> {
        self.authorize(caller, Action::ManageLegalHolds, &Target::Platform).await?;
        let reason = text("reason", reason)?;
        let study = self.index.study_retention(study_uid).await?.ok_or_else(|| ArchiveError::NotFound(format!("no study {study_uid}")))?;
        let by = &caller.principal.id;
        let now = yunying_util::time::now_millis();
        let result = if place {
            self.index.place_legal_hold(study_uid, &reason, by, now).await
        } else {
            self.index.release_legal_hold(study_uid, &reason, by, now).await
        };
        let action = if place { AuditAction::LegalHoldPlaced } else { AuditAction::LegalHoldReleased };
        let mut e = self.audit_event(caller, action, if result.is_ok() { Outcome::Success } else { Outcome::MinorFailure });
        e.patient = Some(patient_of(&study));
        e.studies = vec![study_uid.to_string()];
        e.detail = match &result {
            Ok(h) => serde_json::json!({ "reason": reason, "hold": h.id }),
            Err(err) => serde_json::json!({ "reason": err.to_string() }),
        };
        self.audit(e).await;
        result.map_err(catalog_error)
    }

    /// The expiry report (`view-retention`): studies not held whose
    /// retention ended before `before` (`YYYYMMDD`, default today).
    pub async fn expiry_report(&self, caller: &Caller, before: Option<&str>, limit: u32, offset: u64) -> Result<ExpiredPage, ArchiveError> {
        self.authorize(caller, Action::ViewRetention, &Target::Platform).await?;
        let before = match before {
            Some(b) => date("before", b)?,
            None => today_da_cst(),
        };
        if limit == 0 || limit as usize > MAX_STUDIES {
            return Err(ArchiveError::BadRequest(format!("limit is between 1 and {MAX_STUDIES}")));
        }
        let page = self.index.expired_studies(&before, limit, offset).await?;
        let mut e = self.audit_event(caller, AuditAction::Query, Outcome::Success);
        e.studies = page.studies.iter().map(|s| s.study_uid.clone()).collect();
        e.detail = serde_json::json!({
            "query": format!("retention expired before {before}, limit {limit}, offset {offset}"),
            "count": page.studies.len(),
        });
        self.audit(e).await;
        Ok(page)
    }

    /// Asks for the deletion of studies (`request-deletion`). Each must be
    /// expired (before today) and not held, now; otherwise nothing is
    /// recorded and every refused study is named.
    pub async fn request_deletion(&self, caller: &Caller, study_uids: &[String], note: &str) -> Result<DeletionRequest, DeletionError> {
        self.authorize(caller, Action::RequestDeletion, &Target::Platform).await?;
        let note = text("note", note)?;
        if study_uids.is_empty() || study_uids.len() > MAX_STUDIES {
            return Err(ArchiveError::BadRequest(format!("name between 1 and {MAX_STUDIES} studies in study_uids")).into());
        }
        if let Some(bad) = study_uids.iter().find(|u| yunying_util::uid::validate(u.trim()).is_err()) {
            return Err(ArchiveError::BadRequest(format!("{bad:?} is not a Study Instance UID")).into());
        }
        let new = NewDeletionRequest {
            study_uids: study_uids.to_vec(),
            note: note.clone(),
            requested_by: caller.principal.id.clone(),
            requested_at: yunying_util::time::now_millis(),
            today: today_da_cst(),
        };
        let outcome = self.index.create_deletion_request(&new).await?;
        let (audit_outcome, detail, result) = match outcome {
            DeletionRequestOutcome::Created(r) => (Outcome::Success, serde_json::json!({ "request": r.id, "note": note }), Ok(r)),
            DeletionRequestOutcome::Refused(refused) => (
                Outcome::MinorFailure,
                serde_json::json!({ "reason": refusal_text(&refused), "note": note }),
                Err(DeletionError::Refused(refused)),
            ),
        };
        let mut e = self.audit_event(caller, AuditAction::DeletionRequested, audit_outcome);
        e.studies = study_uids.iter().map(|s| s.trim().to_string()).collect();
        e.detail = detail;
        self.audit(e).await;
        result
    }

    /// The deletion requests, newest first (`view-retention`).
    pub async fn deletion_requests(&self, caller: &Caller, limit: u32, offset: u64) -> Result<Vec<DeletionRequest>, ArchiveError> {
        self.authorize(caller, Action::ViewRetention, &Target::Platform).await?;
        if limit == 0 || limit as usize > MAX_STUDIES {
            return Err(ArchiveError::BadRequest(format!("limit is between 1 and {MAX_STUDIES}")));
        }
        Ok(self.index.deletion_requests(limit, offset).await?)
    }

    /// One deletion request (`view-retention`).
    pub async fn deletion_request(&self, caller: &Caller, id: i64) -> Result<DeletionRequest, ArchiveError> {
        self.authorize(caller, Action::ViewRetention, &Target::Platform).await?;
        self.index.deletion_request(id).await?.ok_or_else(|| ArchiveError::NotFound(format!("no deletion request {id}")))
    }

    /// Refuses a deletion request (`approve-deletion`); nothing is deleted.
    pub async fn reject_deletion(&self, caller: &Caller, id: i64, note: &str) -> Result<DeletionRequest, ArchiveError> {
        self.authorize(caller, Action::ApproveDeletion, &Target::Platform).await?;
        let note = text("note", note)?;
        let decision = DeletionDecision::Reject { by: caller.principal.id.clone(), at: yunying_util::time::now_millis(), note: note.clone() };
        let result = self.index.decide_deletion_request(id, &decision).await.map_err(|e| match e {
            IndexError::NotFound(m) => ArchiveError::NotFound(m),
            other => catalog_error(other),
        });
        let mut e = self.audit_event(caller, AuditAction::DeletionRejected, if result.is_ok() { Outcome::Success } else { Outcome::MinorFailure });
        if let Ok(r) = &result {
            e.studies = r.studies.iter().map(|s| s.study_uid.clone()).collect();
        }
        e.detail = match &result {
            Ok(_) => serde_json::json!({ "request": id, "note": note }),
            Err(err) => serde_json::json!({ "request": id, "reason": err.to_string() }),
        };
        self.audit(e).await;
        result
    }

    /// Approves another person's deletion request (`approve-deletion`) and
    /// carries it out: every pending study is checked again (expired, not
    /// held) before anything is done, then deleted from the catalog and its
    /// objects from storage. A request left `approved` by a crash is finished.
    pub async fn approve_deletion(&self, caller: &Caller, id: i64, note: Option<&str>) -> Result<DeletionRequest, DeletionError> {
        self.authorize(caller, Action::ApproveDeletion, &Target::Platform).await?;
        let note = note.map(|n| text("note", n)).transpose()?;
        let request = self.index.deletion_request(id).await?.ok_or_else(|| ArchiveError::NotFound(format!("no deletion request {id}")))?;
        if request.requested_by == caller.principal.id {
            let mut e = self.audit_event(caller, AuditAction::AccessDenied, Outcome::MinorFailure);
            e.detail = serde_json::json!({ "action": Action::ApproveDeletion.code(), "request": id, "reason": "two-person rule: the requester cannot approve" });
            self.audit(e).await;
            return Err(ArchiveError::Forbidden(format!(
                "deletion request {id} was made by you: another person must approve it (two-person rule)"
            ))
            .into());
        }
        let today = today_da_cst();
        if request.state == DeletionState::Requested {
            let mut refused = Vec::new();
            for item in request.studies.iter().filter(|s| s.state == "pending") {
                let why = match self.index.study_retention(&item.study_uid).await? {
                    None => Some("no such study".to_string()),
                    Some(s) => yunying_index::retention::deletable(s.retain_until.as_deref(), s.basis.as_deref(), s.legal_hold, &today).err(),
                };
                if let Some(reason) = why {
                    refused.push(Refusal { study_uid: item.study_uid.clone(), reason });
                }
            }
            if !refused.is_empty() {
                let mut e = self.audit_event(caller, AuditAction::DeletionApproved, Outcome::MinorFailure);
                e.studies = refused.iter().map(|r| r.study_uid.clone()).collect();
                e.detail = serde_json::json!({ "request": id, "reason": refusal_text(&refused) });
                self.audit(e).await;
                return Err(DeletionError::Refused(refused));
            }
        }
        let by = caller.principal.id.clone();
        let decision = DeletionDecision::Approve { by: by.clone(), at: yunying_util::time::now_millis(), note: note.clone() };
        let approved = self.index.decide_deletion_request(id, &decision).await.map_err(catalog_error)?;
        let mut e = self.audit_event(caller, AuditAction::DeletionApproved, Outcome::Success);
        e.studies = approved.studies.iter().map(|s| s.study_uid.clone()).collect();
        e.detail = serde_json::json!({ "request": id, "requested_by": approved.requested_by, "note": note });
        self.audit(e).await;

        let mut left_in_storage = 0;
        for item in &approved.studies {
            let now = yunying_util::time::now_millis();
            match self.index.delete_study_records(id, &item.study_uid, &by, now, &today).await.map_err(catalog_error)? {
                StudyDeletion::Deleted(gone) => left_in_storage += self.finish_deleted_study(caller, &gone).await,
                StudyDeletion::Skipped(why) => {
                    tracing::warn!(request = id, study = %item.study_uid, reason = %why, "retention deletion skipped a study");
                }
            }
        }
        if left_in_storage > 0 {
            // The request stays approved: approving it again retries.
            return Err(ArchiveError::Internal(format!(
                "deletion request {id}: {left_in_storage} object(s) could not be removed from storage (see the audit trail); approve it again to retry"
            ))
            .into());
        }
        let done = self.index.decide_deletion_request(id, &DeletionDecision::Done { at: yunying_util::time::now_millis() }).await.map_err(catalog_error)?;
        Ok(done)
    }

    /// After a study left the catalog: its objects leave storage, the
    /// deletion is audited, caches forget the study. Returns how many
    /// objects could not be removed.
    async fn finish_deleted_study(&self, caller: &Caller, gone: &DeletedStudy) -> usize {
        self.study_facts_cache.lock().expect("study facts cache").remove(&gone.study_uid);
        if gone.blobs_removed_at.is_some() {
            return 0;
        }
        let removal = self.delete_study_blobs(&gone.blobs).await;
        if removal.failed.is_empty()
            && let Err(e) = self.index.mark_blobs_removed(gone.id, yunying_util::time::now_millis()).await
        {
            tracing::warn!(study = %gone.study_uid, error = %e, "cannot record that a deleted study's objects are gone");
        }
        let outcome = if removal.failed.is_empty() { Outcome::Success } else { Outcome::SeriousFailure };
        let mut e = self.audit_event(caller, AuditAction::Delete, outcome);
        e.patient = Some(PatientRef { id: gone.patient_id.clone(), issuer: gone.issuer.clone(), name: None });
        e.studies = vec![gone.study_uid.clone()];
        e.detail = serde_json::json!({
            "reason": format!("{RETENTION_EXPIRED_CODE} ({RETENTION_EXPIRED_SCHEME}, \"{RETENTION_EXPIRED_MEANING}\")"),
            "reason_code": RETENTION_EXPIRED_CODE,
            "request": gone.request_id,
            "retain_until": gone.retain_until,
            "institution": gone.institution_code,
            "instances": gone.num_instances,
            "objects": gone.blobs.len(),
            "bytes": gone.size_bytes,
            "storage_failures": removal.failed,
        });
        self.audit(e).await;
        removal.failed.len()
    }

    /// Removes a deleted study's objects from the archive's blob store:
    /// each original object (every version) and its derived streaming copy
    /// (`derived/v1/htj2k-rpcl/{sha[0..2]}/{sha256}/`). Absent blobs count
    /// as removed; failures are returned, not fatal (the catalog keeps the
    /// list until every object is gone). The one place a study's objects
    /// are deleted: other tiers of the store are reached through it.
    pub async fn delete_study_blobs(&self, blobs: &[StoredBlob]) -> BlobRemoval {
        let mut out = BlobRemoval::default();
        for b in blobs {
            let mut keys = vec![b.key.clone()];
            if b.sha256.len() >= 2 {
                match self.blobs.list(&crate::derive::derived_prefix(&b.sha256)).await {
                    Ok(derived) => keys.extend(derived),
                    Err(e) => out.failed.push(format!("derived copy of {}: {e}", b.key)),
                }
            }
            for key in keys {
                match self.blobs.delete(&key).await {
                    Ok(()) => out.removed += 1,
                    Err(e) => out.failed.push(format!("{key}: {e}")),
                }
            }
        }
        out
    }

    /// Recomputes the retention of every study (after an upgrade, or a
    /// change of the rule), 500 studies per transaction.
    pub async fn recompute_all_retention(&self) -> Result<(), ArchiveError> {
        let mut after = 0i64;
        while let Some(last) = self.index.recompute_retention(after, 500).await? {
            after = last;
        }
        Ok(())
    }
}
