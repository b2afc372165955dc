//! What the catalog records of a study's life after ingest: the patient's
//! visits (encounters) that set its retention, its legal holds, the expiry
//! report's rows, and the approved deletion workflow (requests, their
//! decisions, and the record left of each deleted study). The rule itself
//! is in [`crate::retention`].

use serde::{Deserialize, Serialize};
use yunying_util::InstitutionId;

use crate::model::PatientKey;
use crate::retention::PatientClass;

/// A visit to record (or update, by institution and visit number).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEncounter {
    pub institution_id: InstitutionId,
    /// The patient as the institution identifies them (created when unknown).
    pub patient: PatientKey,
    pub visit_number: String,
    pub class: PatientClass,
    /// Visit date (outpatient, emergency) or admission date (inpatient), `YYYYMMDD`.
    pub admitted: String,
    /// Discharge date, `YYYYMMDD` (inpatient stays, once discharged).
    pub discharged: Option<String>,
}

/// What recording a visit did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedEncounter {
    pub encounter_id: i64,
    /// False when the visit was known (by its number) and was updated.
    pub created: bool,
    /// The retention of every study of the patient at the institution, recomputed.
    pub studies: Vec<StudyRetention>,
}

/// A study's retention, as the expiry report and the deletion workflow see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StudyRetention {
    pub study_uid: String,
    pub institution_code: String,
    pub patient_id: String,
    pub issuer: String,
    pub patient_class: PatientClass,
    /// Study Date (`YYYYMMDD`, empty when the exam had none).
    pub study_date: String,
    /// Kept until this day inclusive; `None`: no end date yet (see `basis`).
    pub retain_until: Option<String>,
    /// Why (`None` when not computed yet: studies stored before retention existed).
    pub basis: Option<String>,
    pub legal_hold: bool,
    pub num_instances: i64,
    pub size_bytes: i64,
}

/// One legal hold of a study, current or released.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegalHold {
    pub id: i64,
    pub study_uid: String,
    pub reason: String,
    pub placed_by: String,
    pub placed_at: i64,
    pub released_by: Option<String>,
    pub released_at: Option<i64>,
    pub release_reason: Option<String>,
}

/// A page of the expiry report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpiredPage {
    /// Every expired, unheld study (ignoring limit and offset).
    pub total: u64,
    /// By retain-until date, then Study Instance UID.
    pub studies: Vec<StudyRetention>,
}

/// Where a deletion request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeletionState {
    /// Waiting for a second person's decision.
    Requested,
    /// Approved; its studies are being deleted (a request left here by a
    /// crash is finished by approving it again).
    Approved,
    /// Refused; nothing was deleted.
    Rejected,
    /// Approved and carried out.
    Done,
}

impl DeletionState {
    pub fn code(self) -> &'static str {
        match self {
            DeletionState::Requested => "requested",
            DeletionState::Approved => "approved",
            DeletionState::Rejected => "rejected",
            DeletionState::Done => "done",
        }
    }

    pub fn from_code(s: &str) -> Option<DeletionState> {
        [DeletionState::Requested, DeletionState::Approved, DeletionState::Rejected, DeletionState::Done]
            .into_iter()
            .find(|d| d.code() == s)
    }
}

/// A request to delete studies whose retention has ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletionRequest {
    pub id: i64,
    pub state: DeletionState,
    pub note: String,
    pub requested_by: String,
    pub requested_at: i64,
    /// Who approved or rejected it, when, and what they wrote.
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
    pub decision_note: Option<String>,
    pub done_at: Option<i64>,
    pub studies: Vec<DeletionItem>,
}

/// One study of a deletion request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletionItem {
    pub study_uid: String,
    /// `pending`, `deleted`, or `skipped` (no longer deletable at approval).
    pub state: String,
    pub detail: Option<String>,
}

/// A deletion request to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewDeletionRequest {
    pub study_uids: Vec<String>,
    pub note: String,
    pub requested_by: String,
    pub requested_at: i64,
    /// Today (`YYYYMMDD`): every study must be expired before it.
    pub today: String,
}

/// A decision on a deletion request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeletionDecision {
    /// `requested` → `approved` (or `approved` again, to resume).
    Approve { by: String, at: i64, note: Option<String> },
    /// `requested` → `rejected`.
    Reject { by: String, at: i64, note: String },
    /// `approved` → `done`.
    Done { at: i64 },
}

/// A stored object of a deleted study: its key and content hash (the
/// derived copies are named by the hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredBlob {
    pub key: String,
    pub sha256: String,
}

/// The record kept of a study deleted by an approved request: the rejection
/// (IOCM: code 113039 DCM "Data Retention Policy Expired"), and the objects
/// to remove from storage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletedStudy {
    pub id: i64,
    pub study_uid: String,
    pub request_id: i64,
    pub institution_code: String,
    pub patient_id: String,
    pub issuer: String,
    pub study_date: String,
    pub retain_until: Option<String>,
    pub num_instances: i64,
    pub size_bytes: i64,
    pub reason_code: String,
    pub deleted_by: String,
    pub deleted_at: i64,
    /// Every version of every instance.
    pub blobs: Vec<StoredBlob>,
    /// When the objects were all removed from storage (`None`: still to do).
    pub blobs_removed_at: Option<i64>,
}

/// What deleting one study of an approved request did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StudyDeletion {
    /// Removed from the catalog (now, or earlier in this request).
    Deleted(Box<DeletedStudy>),
    /// Kept: no longer deletable (held, retention extended, already gone).
    Skipped(String),
}

/// The IOCM rejection reason of retention deletions (PS3.16 CID 7011).
pub const RETENTION_EXPIRED_CODE: &str = "113039";
/// Its coding scheme.
pub const RETENTION_EXPIRED_SCHEME: &str = "DCM";
/// Its meaning.
pub const RETENTION_EXPIRED_MEANING: &str = "Data Retention Policy Expired";

/// Why a study cannot be part of a deletion request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub study_uid: String,
    pub reason: String,
}

/// What asking for a deletion gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeletionRequestOutcome {
    Created(DeletionRequest),
    /// Nothing was recorded: these studies may not be deleted now.
    Refused(Vec<Refusal>),
}
