//! What the catalog records, and the rows its queries return.
//!
//! The model is the region's, not one hospital's: every instance records the
//! institution it came from; patients are keyed by (issuer, patient ID), each
//! institution being its own issuer, and every key points to a master patient
//! record, so two institutions' "P001" stay two people until someone (or a
//! rule) links them. Catalog rows are not wire types: protocol crates build
//! their own views from them.

use serde::{Deserialize, Serialize};
use yunying_util::InstitutionId;

/// A member institution of the region (a tenant).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Institution {
    pub id: InstitutionId,
    /// Short stable code, e.g. `SZRMYY`.
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    /// The issuer of its patient IDs (Issuer of Patient ID, 0010,0021).
    pub patient_id_issuer: String,
    /// DICOM AE titles its equipment uses.
    pub ae_titles: Vec<String>,
    pub created_at: i64,
}

/// An institution to create or update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewInstitution {
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    /// Defaults to the code.
    pub patient_id_issuer: Option<String>,
    pub ae_titles: Vec<String>,
}

/// The longest AE title DICOM allows (VR AE: 16 bytes of the default repertoire).
pub const AE_TITLE_MAX_LEN: usize = 16;

/// A known remote DICOM application entity (a modality, another PACS, a
/// workstation) and what it may do. The registry is the authority on AE
/// titles: an object sent by a registered AE is attributed to its institution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplicationEntity {
    pub id: i64,
    /// Unique across the region, stored without DICOM padding spaces.
    pub ae_title: String,
    /// The institution its objects are attributed to.
    pub institution_id: InstitutionId,
    /// Where to reach it (needed to be a C-MOVE destination).
    pub host: Option<String>,
    pub port: Option<u16>,
    /// May send objects to us (C-STORE).
    pub may_store: bool,
    /// May query us (C-FIND).
    pub may_query: bool,
    /// May retrieve from us (C-MOVE / C-GET).
    pub may_retrieve: bool,
    pub description: String,
    /// Unix milliseconds, like every catalog instant.
    pub created_at: i64,
    pub updated_at: i64,
}

/// An application entity to register, or to update by AE title.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewApplicationEntity {
    pub ae_title: String,
    pub institution_id: InstitutionId,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub may_store: bool,
    pub may_query: bool,
    pub may_retrieve: bool,
    pub description: String,
}

impl NewApplicationEntity {
    /// Checks the AE title ([`normalized_ae_title`]), the port (1–65535) and
    /// the host (not blank) when given.
    pub fn validate(&self) -> Result<(), String> {
        normalized_ae_title(&self.ae_title)?;
        if self.port == Some(0) {
            return Err("port must be between 1 and 65535".into());
        }
        if let Some(host) = &self.host
            && host.trim().is_empty()
        {
            return Err("host is empty".into());
        }
        Ok(())
    }
}

/// The AE title without its DICOM padding (leading and trailing spaces), or
/// why it is not a valid one: empty, longer than [`AE_TITLE_MAX_LEN`], or
/// holding a backslash, a control character or a non-ASCII character.
pub fn normalized_ae_title(raw: &str) -> Result<&str, String> {
    let title = raw.trim_matches(' ');
    if title.is_empty() {
        return Err("AE title is empty".into());
    }
    if title.chars().count() > AE_TITLE_MAX_LEN {
        return Err(format!("AE title {title:?} is longer than {AE_TITLE_MAX_LEN} characters"));
    }
    if let Some(c) = title.chars().find(|&c| c == '\\' || c.is_control() || !c.is_ascii()) {
        return Err(format!("AE title {title:?} contains the character {c:?}, not allowed in an AE title"));
    }
    Ok(title)
}

/// The kind of a patient identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentifierKind {
    /// An institution's local patient ID (medical record number).
    Mrn,
    /// Keyed blind index of a national ID number (the value itself is encrypted elsewhere).
    NationalId,
    /// Keyed blind index of a phone number.
    Phone,
    /// Medical insurance number.
    Insurance,
}

impl IdentifierKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IdentifierKind::Mrn => "mrn",
            IdentifierKind::NationalId => "national_id",
            IdentifierKind::Phone => "phone",
            IdentifierKind::Insurance => "insurance",
        }
    }
}

/// The patient an instance belongs to, as the sender identified them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientKey {
    /// Issuer of the ID: the sending institution's issuer unless the object
    /// names another (Issuer of Patient ID).
    pub issuer: String,
    /// The patient ID. Objects without one get a per-study placeholder, so
    /// that anonymous patients are never merged together.
    pub id: String,
}

/// Patient demographics carried by the object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientFields {
    /// Decoded PN value `Alphabetic=Ideographic=Phonetic`.
    pub name: Option<String>,
    pub birth_date: Option<String>,
    pub sex: Option<String>,
}

/// Study attributes carried by the object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StudyFields {
    pub uid: String,
    pub date: Option<String>,
    pub time: Option<String>,
    pub accession_number: Option<String>,
    pub study_id: Option<String>,
    pub description: Option<String>,
    pub referring_physician: Option<String>,
    /// Visit / encounter number (Admission ID) when the sender knows it.
    pub visit_number: Option<String>,
    /// DICOM JSON of the patient- and study-level attributes.
    pub attrs: String,
}

/// Series attributes carried by the object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeriesFields {
    pub uid: String,
    pub modality: Option<String>,
    pub number: Option<i64>,
    pub description: Option<String>,
    pub body_part: Option<String>,
    pub date: Option<String>,
    pub time: Option<String>,
    pub station_name: Option<String>,
    /// DICOM JSON of the series-level attributes.
    pub attrs: String,
}

/// Instance attributes and storage facts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceFields {
    pub sop_uid: String,
    pub sop_class_uid: String,
    pub transfer_syntax: String,
    pub number: Option<i64>,
    pub rows: Option<i64>,
    pub columns: Option<i64>,
    pub bits_allocated: Option<i64>,
    pub number_of_frames: Option<i64>,
    /// SHA-256 of the stored bytes, lower-case hex.
    pub sha256: String,
    pub size_bytes: i64,
    /// Key of the original object in the blob store.
    pub blob_key: String,
    /// JSON of the frame layout (`yunying_dicom::frames::FrameIndex`).
    pub frames: String,
    /// JSON map of bulk value path → [offset, length] for values located in the object.
    pub bulk: String,
    /// DICOM JSON of the instance-level attributes kept for queries.
    pub attrs: String,
    /// Full DICOM JSON metadata with bulk URI placeholders.
    pub metadata: String,
    /// Who sent it: `stow:<peer>`, `dimse:<calling AE>@<peer>`, `import:<path>`...
    pub received_from: String,
    pub received_at: i64,
}

/// Everything the catalog records of one newly stored instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewInstance {
    pub institution_id: InstitutionId,
    pub patient_key: PatientKey,
    pub patient: PatientFields,
    pub study: StudyFields,
    pub series: SeriesFields,
    pub instance: InstanceFields,
    /// AE titles to forward the instance to (routing rules): a job per
    /// destination is queued in the same transaction (not for a duplicate).
    pub forward_to: Vec<String>,
    /// Personal data of the patient carried by the object, encrypted, to be
    /// recorded for the master patient (once per kind and value).
    #[serde(default)]
    pub patient_secrets: Vec<crate::PatientSecret>,
    /// The instance wants a streaming copy (derived frames made in the
    /// background after ingest): it is marked in the same transaction.
    #[serde(default)]
    pub derive: bool,
    /// The instance wants a copy in the cloud tier: it is marked for the
    /// cloud copy queue in the same transaction.
    #[serde(default)]
    pub cloud: bool,
}

/// A stored instance version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceRef {
    pub id: i64,
    pub sop_uid: String,
    pub version: i64,
    pub blob_key: String,
}

/// What happened to an instance given to [`crate::Index::commit`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommitOutcome {
    /// First version of a new SOP instance.
    Stored(InstanceRef),
    /// The same bytes were already stored: nothing changed.
    Duplicate(InstanceRef),
    /// Different content under a known SOP Instance UID: kept as a new
    /// current version; the earlier versions are kept too.
    NewVersion { stored: InstanceRef, previous: i64 },
}

impl CommitOutcome {
    pub fn instance(&self) -> &InstanceRef {
        match self {
            CommitOutcome::Stored(r) | CommitOutcome::Duplicate(r) => r,
            CommitOutcome::NewVersion { stored, .. } => stored,
        }
    }
}

/// A study as QIDO-RS and C-FIND see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyRow {
    pub study_uid: String,
    /// DICOM JSON of the stored patient/study attributes.
    pub attrs: String,
    /// Modalities in the study, sorted.
    pub modalities: Vec<String>,
    pub num_series: i64,
    pub num_instances: i64,
    pub institution_code: String,
    pub size_bytes: i64,
}

/// A series as QIDO-RS and C-FIND see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesRow {
    pub study_uid: String,
    pub series_uid: String,
    pub attrs: String,
    pub num_instances: i64,
    /// The study's row, for queries not scoped to one study.
    pub study: StudyRow,
}

/// An instance as QIDO-RS and C-FIND see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceRow {
    pub study_uid: String,
    pub series_uid: String,
    pub sop_uid: String,
    pub sop_class_uid: String,
    pub transfer_syntax: String,
    pub attrs: String,
    /// Series attributes (for queries not scoped to one series).
    pub series_attrs: String,
    pub series_num_instances: i64,
    pub study: StudyRow,
}

/// What retrieval needs to serve one stored instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredInstance {
    pub study_uid: String,
    pub series_uid: String,
    pub sop_uid: String,
    pub sop_class_uid: String,
    pub transfer_syntax: String,
    pub version: i64,
    pub blob_key: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub frames: String,
    pub bulk: String,
    pub number_of_frames: Option<i64>,
    pub institution_id: InstitutionId,
}

/// The part of the catalog a retrieval addresses.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Scope {
    pub study_uid: String,
    pub series_uid: Option<String>,
    pub sop_uid: Option<String>,
}

impl Scope {
    pub fn study(uid: &str) -> Scope {
        Scope { study_uid: uid.into(), series_uid: None, sop_uid: None }
    }
    pub fn series(study: &str, series: &str) -> Scope {
        Scope { study_uid: study.into(), series_uid: Some(series.into()), sop_uid: None }
    }
    pub fn instance(study: &str, series: &str, sop: &str) -> Scope {
        Scope { study_uid: study.into(), series_uid: Some(series.into()), sop_uid: Some(sop.into()) }
    }
}

/// Catalog totals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub institutions: i64,
    pub patients: i64,
    pub studies: i64,
    pub series: i64,
    /// Current instance versions.
    pub instances: i64,
    /// All versions, superseded ones included.
    pub instance_versions: i64,
    pub bytes: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ae(title: &str) -> NewApplicationEntity {
        NewApplicationEntity {
            ae_title: title.into(),
            institution_id: InstitutionId(1),
            host: None,
            port: None,
            may_store: true,
            may_query: true,
            may_retrieve: false,
            description: String::new(),
        }
    }

    #[test]
    fn ae_titles_are_trimmed_and_checked() {
        assert_eq!(normalized_ae_title("  CT_1 "), Ok("CT_1"));
        assert_eq!(normalized_ae_title("CT 1"), Ok("CT 1"), "inner spaces are significant");
        assert_eq!(normalized_ae_title("ABCDEFGHIJKLMNOP"), Ok("ABCDEFGHIJKLMNOP"));
        assert!(normalized_ae_title("ABCDEFGHIJKLMNOPQ").is_err(), "17 characters");
        assert!(normalized_ae_title("   ").is_err());
        assert!(normalized_ae_title("").is_err());
        assert!(normalized_ae_title("CT\\1").is_err());
        assert!(normalized_ae_title("CT\t1").is_err());
        assert!(normalized_ae_title("影像").is_err());
    }

    #[test]
    fn validation_checks_port_and_host() {
        assert!(ae("CT1").validate().is_ok());
        assert!(ae("").validate().is_err());
        let mut a = ae("CT1");
        a.port = Some(0);
        assert!(a.validate().is_err());
        a.port = Some(104);
        a.host = Some(" ".into());
        assert!(a.validate().is_err());
        a.host = Some("10.0.0.7".into());
        assert!(a.validate().is_ok());
    }
}

/// An instance to send to another AE, as claimed by a forwarding worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardJob {
    pub id: i64,
    pub destination: String,
    pub sop_class_uid: String,
    pub sop_uid: String,
    pub transfer_syntax: String,
    pub blob_key: String,
    pub size_bytes: i64,
    /// Attempts made before this one.
    pub attempts: i64,
}

/// An instance whose derived (streaming) copy is to be made, as claimed by
/// a derive worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeriveTask {
    /// The instance row.
    pub id: i64,
    pub instance: StoredInstance,
    /// Attempts made before this one.
    pub attempts: i64,
}

/// How a derive task ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeriveOutcome {
    /// The derived copy is stored.
    Made,
    /// The instance has nothing to derive (not an image, colour, a syntax
    /// without decoder...): it is no longer wanted.
    NotApplicable,
    /// Failed: tried again at `retry_at`, or given up when `None`.
    Failed { error: String, retry_at: Option<i64> },
}

/// The derive queue at a glance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeriveBacklog {
    /// Current instances waiting for their derived copy.
    pub wanted: i64,
    /// Current instances whose derived copy is made.
    pub made: i64,
    /// Current instances given up on.
    pub failed: i64,
    /// When the oldest waiting instance was received (unix ms).
    pub oldest_wanted_at: Option<i64>,
    /// The most recent error.
    pub last_error: Option<String>,
}

/// The forwarding backlog of one destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardBacklog {
    pub destination: String,
    /// Jobs still to send (including those waiting to be retried).
    pub pending: i64,
    /// Jobs the receiver refused (not retried).
    pub failed: i64,
    /// When the oldest pending job was queued (unix ms).
    pub oldest_pending_at: Option<i64>,
    /// The most recent error of a pending or failed job.
    pub last_error: Option<String>,
}
