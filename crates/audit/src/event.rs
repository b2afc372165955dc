//! What an audit event records: who ([`Actor`]) did what ([`Action`]) to
//! which patient and studies, when, from where, through which interface,
//! on which node, and with what [`Outcome`]; plus each action's stable
//! string code and its DICOM PS3.15 coding ([`DicomCoding`]).
//!
//! The string codes (`Action::code`, `Outcome::code`, `ActorKind::code`) are
//! the serde forms and are persisted (in the sealed bytes of the chain and in
//! searchable columns): never rename one.

use serde::{Deserialize, Serialize};

/// Interface names for [`AuditEvent::interface`].
pub const INTERFACE_HTTP: &str = "http";
/// DICOM upper layer (DIMSE).
pub const INTERFACE_DICOM: &str = "dicom";
/// The command line.
pub const INTERFACE_CLI: &str = "cli";
/// The server itself (start, stop, scheduled work).
pub const INTERFACE_SYSTEM: &str = "system";

/// One audited event.
///
/// `detail` is free-form; by convention these keys are understood by the
/// exports: `reason` (string: why it failed or was done), `query` (string:
/// the query text or URL of a [`Action::Query`]), `sop_class` (string: the
/// SOP Class UID of a DIMSE request), `target` (string: the user, token or
/// AE acted upon by an account or security change), `count` (integer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Unix milliseconds.
    pub at: i64,
    pub action: Action,
    pub outcome: Outcome,
    pub actor: Actor,
    /// Client IP address, or `AE@ip` for DICOM.
    #[serde(default)]
    pub source: Option<String>,
    /// `http`, `dicom`, `cli` or `system` (see the `INTERFACE_*` constants).
    pub interface: String,
    /// The server node that wrote it.
    pub node: String,
    #[serde(default)]
    pub patient: Option<PatientRef>,
    /// Study Instance UIDs touched.
    #[serde(default)]
    pub studies: Vec<String>,
    /// Free-form details (query, counts, reason, target user...).
    #[serde(default)]
    pub detail: serde_json::Value,
}

impl AuditEvent {
    /// An event with no source, patient, studies or detail.
    pub fn new(
        at: i64,
        action: Action,
        outcome: Outcome,
        actor: Actor,
        interface: &str,
        node: &str,
    ) -> Self {
        AuditEvent {
            at,
            action,
            outcome,
            actor,
            source: None,
            interface: interface.to_owned(),
            node: node.to_owned(),
            patient: None,
            studies: Vec::new(),
            detail: serde_json::Value::Null,
        }
    }

    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    pub fn with_patient(mut self, patient: PatientRef) -> Self {
        self.patient = Some(patient);
        self
    }

    pub fn with_studies<I, S>(mut self, studies: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.studies = studies.into_iter().map(Into::into).collect();
        self
    }

    pub fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }

    /// `detail[key]` when it is a string.
    pub fn detail_str(&self, key: &str) -> Option<&str> {
        self.detail.get(key).and_then(|v| v.as_str())
    }
}

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub kind: ActorKind,
    /// User name, token id, client id, AE title, patient id, or node name.
    pub id: String,
    /// Display name (may be Chinese); empty when unknown.
    #[serde(default)]
    pub name: String,
    /// Institution code.
    #[serde(default)]
    pub institution: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
}

impl Actor {
    pub fn new(kind: ActorKind, id: impl Into<String>, name: impl Into<String>) -> Self {
        Actor {
            kind,
            id: id.into(),
            name: name.into(),
            institution: None,
            roles: Vec::new(),
        }
    }

    /// The server itself (node name as id).
    pub fn system(node: &str) -> Self {
        Actor::new(ActorKind::System, node, "")
    }
}

/// What kind of principal an [`Actor`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActorKind {
    User,
    Token,
    Client,
    Ae,
    Patient,
    System,
}

impl ActorKind {
    pub fn code(self) -> &'static str {
        match self {
            ActorKind::User => "user",
            ActorKind::Token => "token",
            ActorKind::Client => "client",
            ActorKind::Ae => "ae",
            ActorKind::Patient => "patient",
            ActorKind::System => "system",
        }
    }
}

/// The patient whose data was touched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientRef {
    /// Patient ID.
    pub id: String,
    /// Issuer of Patient ID (institution code).
    pub issuer: String,
    #[serde(default)]
    pub name: Option<String>,
}

/// How it ended (DICOM / RFC 3881 EventOutcomeIndicator).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// `0`.
    Success,
    /// `4`: the request failed (refused, not found, bad request...).
    MinorFailure,
    /// `8`: the request failed through a fault of ours.
    SeriousFailure,
    /// `12`: the service is now unavailable.
    MajorFailure,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [
        Outcome::Success,
        Outcome::MinorFailure,
        Outcome::SeriousFailure,
        Outcome::MajorFailure,
    ];

    /// `success`, `minor-failure`, `serious-failure`, `major-failure` (the serde form).
    pub fn code(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::MinorFailure => "minor-failure",
            Outcome::SeriousFailure => "serious-failure",
            Outcome::MajorFailure => "major-failure",
        }
    }

    pub fn from_code(code: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.code() == code)
    }

    /// DICOM EventOutcomeIndicator: 0, 4, 8 or 12.
    pub fn dicom(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::MinorFailure => 4,
            Outcome::SeriousFailure => 8,
            Outcome::MajorFailure => 12,
        }
    }

    pub fn is_success(self) -> bool {
        self == Outcome::Success
    }
}

/// A code of DICOM's own coding scheme (`DCM`, PS3.16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DcmCode {
    pub code: &'static str,
    pub meaning: &'static str,
}

const fn dcm(code: &'static str, meaning: &'static str) -> DcmCode {
    DcmCode { code, meaning }
}

/// EventID 110100.
pub const DCM_APPLICATION_ACTIVITY: DcmCode = dcm("110100", "Application Activity");
/// EventID 110101.
pub const DCM_AUDIT_LOG_USED: DcmCode = dcm("110101", "Audit Log Used");
/// EventID 110103.
pub const DCM_INSTANCES_ACCESSED: DcmCode = dcm("110103", "DICOM Instances Accessed");
/// EventID 110104.
pub const DCM_INSTANCES_TRANSFERRED: DcmCode = dcm("110104", "DICOM Instances Transferred");
/// EventID 110105.
pub const DCM_STUDY_DELETED: DcmCode = dcm("110105", "DICOM Study Deleted");
/// EventID 110106.
pub const DCM_EXPORT: DcmCode = dcm("110106", "Export");
/// EventID 110107.
pub const DCM_IMPORT: DcmCode = dcm("110107", "Import");
/// EventID 110110.
pub const DCM_PATIENT_RECORD: DcmCode = dcm("110110", "Patient Record");
/// EventID 110112.
pub const DCM_QUERY: DcmCode = dcm("110112", "Query");
/// EventID 110113.
pub const DCM_SECURITY_ALERT: DcmCode = dcm("110113", "Security Alert");
/// EventID 110114.
pub const DCM_USER_AUTHENTICATION: DcmCode = dcm("110114", "User Authentication");

/// EventTypeCode of Application Activity.
pub const DCM_APPLICATION_START: DcmCode = dcm("110120", "Application Start");
pub const DCM_APPLICATION_STOP: DcmCode = dcm("110121", "Application Stop");
/// EventTypeCode of User Authentication.
pub const DCM_LOGIN: DcmCode = dcm("110122", "Login");
pub const DCM_LOGOUT: DcmCode = dcm("110123", "Logout");
/// EventTypeCodes of Security Alert.
pub const DCM_NODE_AUTHENTICATION: DcmCode = dcm("110126", "Node Authentication");
pub const DCM_NETWORK_CONFIGURATION: DcmCode = dcm("110128", "Network Configuration");
pub const DCM_SECURITY_CONFIGURATION: DcmCode = dcm("110129", "Security Configuration");
pub const DCM_SOFTWARE_CONFIGURATION: DcmCode = dcm("110131", "Software Configuration");
pub const DCM_USE_OF_RESTRICTED_FUNCTION: DcmCode = dcm("110132", "Use of Restricted Function");
pub const DCM_OBJECT_SECURITY_ATTRIBUTES_CHANGED: DcmCode =
    dcm("110135", "Object Security Attributes Changed");
pub const DCM_SECURITY_ROLES_CHANGED: DcmCode = dcm("110136", "Security Roles Changed");
pub const DCM_USER_SECURITY_ATTRIBUTES_CHANGED: DcmCode =
    dcm("110137", "User Security Attributes Changed");

/// ActiveParticipant RoleIDCodes.
pub const DCM_ROLE_APPLICATION: DcmCode = dcm("110150", "Application");
pub const DCM_ROLE_APPLICATION_LAUNCHER: DcmCode = dcm("110151", "Application Launcher");
pub const DCM_ROLE_DESTINATION: DcmCode = dcm("110152", "Destination Role ID");
pub const DCM_ROLE_SOURCE: DcmCode = dcm("110153", "Source Role ID");

/// ParticipantObjectIDTypeCodes.
pub const DCM_STUDY_INSTANCE_UID: DcmCode = dcm("110180", "Study Instance UID");
pub const DCM_SOP_CLASS_UID: DcmCode = dcm("110181", "SOP Class UID");

/// EventActionCode (C/R/U/D/E).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventAction {
    Create,
    Read,
    Update,
    Delete,
    Execute,
}

impl EventAction {
    pub fn code(self) -> &'static str {
        match self {
            EventAction::Create => "C",
            EventAction::Read => "R",
            EventAction::Update => "U",
            EventAction::Delete => "D",
            EventAction::Execute => "E",
        }
    }
}

/// How an action is coded in a DICOM PS3.15 audit message (and a FHIR
/// AuditEvent): EventID, EventActionCode and EventTypeCode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DicomCoding {
    pub event_id: DcmCode,
    pub action: EventAction,
    pub event_type: Option<DcmCode>,
}

/// What was done. The serde form is [`Action::code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Login,
    LoginFailed,
    Logout,
    SessionExpired,
    AccountLocked,
    PasswordChanged,
    TotpEnrolled,
    UserCreated,
    UserChanged,
    RolesChanged,
    TokenCreated,
    TokenRevoked,
    GrantCreated,
    GrantRevoked,
    InstitutionChanged,
    AeChanged,
    ConfigChanged,
    KeyRotated,
    Query,
    Read,
    Export,
    Store,
    Update,
    Delete,
    AccessDenied,
    AssociationRejected,
    SecurityAlert,
    AuditRead,
    AuditExported,
    AuditVerified,
    ApplicationStart,
    ApplicationStop,
    // Retention (added with migration 8 of the catalog).
    /// A visit of a patient recorded (it sets the retention of their studies).
    EncounterRecorded,
    LegalHoldPlaced,
    LegalHoldReleased,
    /// Deletion of studies whose retention ended, asked for...
    DeletionRequested,
    /// ...approved by a second person (each study deleted is then a `Delete`)...
    DeletionApproved,
    /// ...or refused.
    DeletionRejected,
}

impl Action {
    pub const ALL: [Action; 38] = [
        Action::Login,
        Action::LoginFailed,
        Action::Logout,
        Action::SessionExpired,
        Action::AccountLocked,
        Action::PasswordChanged,
        Action::TotpEnrolled,
        Action::UserCreated,
        Action::UserChanged,
        Action::RolesChanged,
        Action::TokenCreated,
        Action::TokenRevoked,
        Action::GrantCreated,
        Action::GrantRevoked,
        Action::InstitutionChanged,
        Action::AeChanged,
        Action::ConfigChanged,
        Action::KeyRotated,
        Action::Query,
        Action::Read,
        Action::Export,
        Action::Store,
        Action::Update,
        Action::Delete,
        Action::AccessDenied,
        Action::AssociationRejected,
        Action::SecurityAlert,
        Action::AuditRead,
        Action::AuditExported,
        Action::AuditVerified,
        Action::ApplicationStart,
        Action::ApplicationStop,
        Action::EncounterRecorded,
        Action::LegalHoldPlaced,
        Action::LegalHoldReleased,
        Action::DeletionRequested,
        Action::DeletionApproved,
        Action::DeletionRejected,
    ];

    /// The stable string code (kebab-case, as serialized).
    pub fn code(self) -> &'static str {
        match self {
            Action::Login => "login",
            Action::LoginFailed => "login-failed",
            Action::Logout => "logout",
            Action::SessionExpired => "session-expired",
            Action::AccountLocked => "account-locked",
            Action::PasswordChanged => "password-changed",
            Action::TotpEnrolled => "totp-enrolled",
            Action::UserCreated => "user-created",
            Action::UserChanged => "user-changed",
            Action::RolesChanged => "roles-changed",
            Action::TokenCreated => "token-created",
            Action::TokenRevoked => "token-revoked",
            Action::GrantCreated => "grant-created",
            Action::GrantRevoked => "grant-revoked",
            Action::InstitutionChanged => "institution-changed",
            Action::AeChanged => "ae-changed",
            Action::ConfigChanged => "config-changed",
            Action::KeyRotated => "key-rotated",
            Action::Query => "query",
            Action::Read => "read",
            Action::Export => "export",
            Action::Store => "store",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::AccessDenied => "access-denied",
            Action::AssociationRejected => "association-rejected",
            Action::SecurityAlert => "security-alert",
            Action::AuditRead => "audit-read",
            Action::AuditExported => "audit-exported",
            Action::AuditVerified => "audit-verified",
            Action::ApplicationStart => "application-start",
            Action::ApplicationStop => "application-stop",
            Action::EncounterRecorded => "encounter-recorded",
            Action::LegalHoldPlaced => "legal-hold-placed",
            Action::LegalHoldReleased => "legal-hold-released",
            Action::DeletionRequested => "deletion-requested",
            Action::DeletionApproved => "deletion-approved",
            Action::DeletionRejected => "deletion-rejected",
        }
    }

    pub fn from_code(code: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.code() == code)
    }

    /// Reads or changes patient data (the events MLPS requires for every
    /// access to medical records).
    pub fn is_patient_data(self) -> bool {
        matches!(
            self,
            Action::Query
                | Action::Read
                | Action::Export
                | Action::Store
                | Action::Update
                | Action::Delete
        )
    }

    /// Authentication and sessions.
    pub fn is_authentication(self) -> bool {
        matches!(
            self,
            Action::Login | Action::LoginFailed | Action::Logout | Action::SessionExpired
        )
    }

    /// Uses of the audit trail itself.
    pub fn is_audit_use(self) -> bool {
        matches!(
            self,
            Action::AuditRead | Action::AuditExported | Action::AuditVerified
        )
    }

    /// The DICOM PS3.15 coding of this action.
    ///
    /// Account and permission changes are Security Alerts (110113) whose
    /// EventTypeCode says what changed (110136 Security Roles Changed,
    /// 110137 User Security Attributes Changed, 110135 Object Security
    /// Attributes Changed for grants on studies...), as PS3.15 A.5.3.11
    /// defines them. See also `dicom_xml::coding`, which refines
    /// updates and deletions of a patient record without studies to
    /// 110110 Patient Record.
    pub fn dicom(self) -> DicomCoding {
        use EventAction::*;
        let c = |event_id, action, event_type| DicomCoding {
            event_id,
            action,
            event_type,
        };
        match self {
            Action::Login | Action::LoginFailed => {
                c(DCM_USER_AUTHENTICATION, Execute, Some(DCM_LOGIN))
            }
            Action::Logout | Action::SessionExpired => {
                c(DCM_USER_AUTHENTICATION, Execute, Some(DCM_LOGOUT))
            }
            Action::AccountLocked => c(
                DCM_SECURITY_ALERT,
                Execute,
                Some(DCM_USER_SECURITY_ATTRIBUTES_CHANGED),
            ),
            Action::PasswordChanged | Action::TotpEnrolled | Action::UserChanged => c(
                DCM_SECURITY_ALERT,
                Update,
                Some(DCM_USER_SECURITY_ATTRIBUTES_CHANGED),
            ),
            Action::UserCreated | Action::TokenCreated => c(
                DCM_SECURITY_ALERT,
                Create,
                Some(DCM_USER_SECURITY_ATTRIBUTES_CHANGED),
            ),
            Action::TokenRevoked => c(
                DCM_SECURITY_ALERT,
                Delete,
                Some(DCM_USER_SECURITY_ATTRIBUTES_CHANGED),
            ),
            Action::RolesChanged => c(DCM_SECURITY_ALERT, Update, Some(DCM_SECURITY_ROLES_CHANGED)),
            Action::GrantCreated => c(
                DCM_SECURITY_ALERT,
                Create,
                Some(DCM_OBJECT_SECURITY_ATTRIBUTES_CHANGED),
            ),
            Action::GrantRevoked => c(
                DCM_SECURITY_ALERT,
                Delete,
                Some(DCM_OBJECT_SECURITY_ATTRIBUTES_CHANGED),
            ),
            Action::InstitutionChanged | Action::KeyRotated => {
                c(DCM_SECURITY_ALERT, Update, Some(DCM_SECURITY_CONFIGURATION))
            }
            Action::AeChanged => c(DCM_SECURITY_ALERT, Update, Some(DCM_NETWORK_CONFIGURATION)),
            Action::ConfigChanged => {
                c(DCM_SECURITY_ALERT, Update, Some(DCM_SOFTWARE_CONFIGURATION))
            }
            Action::Query => c(DCM_QUERY, Execute, None),
            Action::Read => c(DCM_INSTANCES_ACCESSED, Read, None),
            Action::Export => c(DCM_EXPORT, Read, None),
            Action::Store => c(DCM_INSTANCES_TRANSFERRED, Create, None),
            Action::Update => c(DCM_INSTANCES_ACCESSED, Update, None),
            Action::Delete => c(DCM_STUDY_DELETED, Delete, None),
            Action::AccessDenied => c(
                DCM_SECURITY_ALERT,
                Execute,
                Some(DCM_USE_OF_RESTRICTED_FUNCTION),
            ),
            Action::AssociationRejected => {
                c(DCM_SECURITY_ALERT, Execute, Some(DCM_NODE_AUTHENTICATION))
            }
            Action::SecurityAlert => c(DCM_SECURITY_ALERT, Execute, None),
            Action::AuditRead | Action::AuditExported | Action::AuditVerified => {
                c(DCM_AUDIT_LOG_USED, Read, None)
            }
            Action::ApplicationStart => c(
                DCM_APPLICATION_ACTIVITY,
                Execute,
                Some(DCM_APPLICATION_START),
            ),
            Action::ApplicationStop => c(
                DCM_APPLICATION_ACTIVITY,
                Execute,
                Some(DCM_APPLICATION_STOP),
            ),
            // A visit changes the patient's record.
            Action::EncounterRecorded => c(DCM_PATIENT_RECORD, Update, None),
            // A hold changes what may be done with the studies' instances.
            Action::LegalHoldPlaced | Action::LegalHoldReleased => {
                c(DCM_INSTANCES_ACCESSED, Update, None)
            }
            // The deletion workflow is a restricted function; the
            // deletions themselves are 110105 Study Deleted (`Delete`).
            Action::DeletionRequested | Action::DeletionApproved | Action::DeletionRejected => c(
                DCM_SECURITY_ALERT,
                Execute,
                Some(DCM_USE_OF_RESTRICTED_FUNCTION),
            ),
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_serde_forms_and_round_trip() {
        for a in Action::ALL {
            assert_eq!(
                serde_json::to_value(a).unwrap(),
                serde_json::Value::from(a.code())
            );
            assert_eq!(Action::from_code(a.code()), Some(a));
            assert_eq!(
                serde_json::from_value::<Action>(a.code().into()).unwrap(),
                a
            );
        }
        for o in Outcome::ALL {
            assert_eq!(
                serde_json::to_value(o).unwrap(),
                serde_json::Value::from(o.code())
            );
            assert_eq!(Outcome::from_code(o.code()), Some(o));
        }
        assert_eq!(serde_json::to_value(ActorKind::Ae).unwrap(), "ae");
        assert_eq!(Action::from_code("nope"), None);
        let codes: std::collections::HashSet<_> = Action::ALL.iter().map(|a| a.code()).collect();
        assert_eq!(codes.len(), Action::ALL.len());
    }

    #[test]
    fn dicom_codings() {
        assert_eq!(Action::Login.dicom().event_id.code, "110114");
        assert_eq!(Action::Logout.dicom().event_type.unwrap().code, "110123");
        assert_eq!(
            Action::RolesChanged.dicom().event_type.unwrap().code,
            "110136"
        );
        assert_eq!(Action::Delete.dicom().action, EventAction::Delete);
        assert_eq!(Action::Export.dicom().event_id.code, "110106");
        assert!(Action::Read.is_patient_data());
        assert!(!Action::Login.is_patient_data());
        assert_eq!(Outcome::SeriousFailure.dicom(), 8);
    }
}
