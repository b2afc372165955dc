//! The directory: who may use the platform and what they did. Users (with
//! their password hash, second factor and lockout state), browser sessions,
//! machine credentials (API tokens, service-account clients and the access
//! tokens issued to them), access grants that open a study beyond a user's
//! institution, encrypted personal data of patients (with blind indexes),
//! and the rows of the audit trail.
//!
//! These are catalog rows, not policy: which role may do what is decided in
//! `yunying-archive`'s policy module; secrets appear here only as hashes or
//! ciphertexts made by `yunying-security`.

use serde::{Deserialize, Serialize};
use yunying_util::InstitutionId;

/// A person who signs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: i64,
    /// Unique login name.
    pub username: String,
    pub display_name: String,
    /// The institution the user works for; `None` for platform staff
    /// (system, security and audit administrators).
    pub institution_id: Option<InstitutionId>,
    /// Role codes (see the archive's policy module).
    pub roles: Vec<String>,
    /// argon2id PHC string.
    pub password_hash: String,
    /// When the password was last set (unix ms): the expiry clock.
    pub password_changed_at: i64,
    /// The next login must change the password first (set by an
    /// administrator's reset).
    pub must_change_password: bool,
    /// The TOTP secret, encrypted (field ciphertext), once enrolled.
    pub totp_secret: Option<String>,
    pub totp_enabled: bool,
    /// Consecutive failed logins since the last success.
    pub failed_logins: i64,
    /// Locked until this instant (unix ms), when locked.
    pub locked_until: Option<i64>,
    pub disabled: bool,
    /// Encrypted phone number (field ciphertext) and its blind index.
    pub phone: Option<String>,
    pub phone_index: Option<String>,
    pub last_login_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A user to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewUser {
    pub username: String,
    pub display_name: String,
    pub institution_id: Option<InstitutionId>,
    pub roles: Vec<String>,
    pub password_hash: String,
    pub must_change_password: bool,
    pub phone: Option<String>,
    pub phone_index: Option<String>,
}

/// The fields an administrator (or the user) changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserChange {
    pub display_name: Option<String>,
    pub institution_id: Option<Option<InstitutionId>>,
    pub roles: Option<Vec<String>>,
    /// A new password hash; also sets `password_changed_at` to now.
    pub password_hash: Option<String>,
    pub must_change_password: Option<bool>,
    /// A new TOTP secret (ciphertext) with its enabled flag, or `Some(None)` to remove it.
    pub totp: Option<Option<(String, bool)>>,
    pub disabled: Option<bool>,
    /// Clears the failure counter and the lock.
    pub unlock: bool,
    pub phone: Option<Option<(String, String)>>,
}

/// A browser session. The session id itself is never stored: only its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id_hash: String,
    pub user_id: i64,
    /// Hash of the CSRF token bound to the session.
    pub csrf_hash: String,
    /// Whether the second factor was verified at login.
    pub second_factor: bool,
    pub created_at: i64,
    pub last_seen_at: i64,
    /// Absolute end, whatever the activity.
    pub expires_at: i64,
    pub source: String,
    pub user_agent: String,
}

/// What kind of machine credential a row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CredentialKind {
    /// A long-lived bearer token made by an administrator.
    Token,
    /// A service account (OAuth2 client credentials): `client_id` + secret.
    Client,
    /// A short-lived bearer token issued to a client.
    Access,
}

impl CredentialKind {
    pub fn code(self) -> &'static str {
        match self {
            CredentialKind::Token => "token",
            CredentialKind::Client => "client",
            CredentialKind::Access => "access",
        }
    }
    pub fn from_code(s: &str) -> Option<CredentialKind> {
        match s {
            "token" => Some(CredentialKind::Token),
            "client" => Some(CredentialKind::Client),
            "access" => Some(CredentialKind::Access),
            _ => None,
        }
    }
}

/// A machine credential: scoped to an institution (or the region) and to a
/// set of actions. The secret is stored as a hash only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    pub id: i64,
    pub kind: CredentialKind,
    /// Public identifier: the client id of a service account, a short
    /// prefix for tokens (shown in listings).
    pub public_id: String,
    pub secret_hash: String,
    pub name: String,
    /// `None`: the whole region.
    pub institution_id: Option<InstitutionId>,
    /// Action codes it may perform.
    pub actions: Vec<String>,
    /// The client an access token was issued to.
    pub parent_id: Option<i64>,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub created_by: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// A credential to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewCredential {
    pub kind: CredentialKind,
    pub public_id: String,
    pub secret_hash: String,
    pub name: String,
    pub institution_id: Option<InstitutionId>,
    pub actions: Vec<String>,
    pub parent_id: Option<i64>,
    pub expires_at: Option<i64>,
    pub created_by: String,
}

/// An explicit opening of a study to someone outside its institution: a
/// consultation, a referral, or a patient's share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub id: i64,
    pub study_uid: String,
    /// `consultation`, `referral` or `share`.
    pub kind: String,
    /// Exactly one grantee: a user or a whole institution.
    pub user_id: Option<i64>,
    pub institution_id: Option<InstitutionId>,
    pub expires_at: Option<i64>,
    pub reason: String,
    pub created_by: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// A grant to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewGrant {
    pub study_uid: String,
    pub kind: String,
    pub user_id: Option<i64>,
    pub institution_id: Option<InstitutionId>,
    pub expires_at: Option<i64>,
    pub reason: String,
    pub created_by: String,
}

/// A piece of a patient's personal data held encrypted (national ID
/// number, phone number, address...), with its blind index for look-ups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientSecret {
    /// `national_id`, `phone`, `address`, `other_id`...
    pub kind: String,
    /// Field ciphertext (names its key).
    pub ciphertext: String,
    /// Keyed blind index (names its key), for exact look-ups.
    pub blind_index: String,
}

/// One sealed row of the audit trail, as stored. The event itself is kept as
/// JSON (`event`), exactly as it was sealed; the other columns exist to
/// search and to verify the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRow {
    /// The chain (one per writing node).
    pub chain: String,
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// Unix ms.
    pub at: i64,
    pub action: String,
    pub outcome: String,
    pub actor_id: String,
    pub patient_id: Option<String>,
    /// Study Instance UIDs, space separated.
    pub studies: String,
    pub event: String,
    pub key_id: String,
    pub prev_mac: String,
    pub mac: String,
}

/// The newest sealed position of a chain, sealed itself so that removing
/// the newest rows is detected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditAnchor {
    pub chain: String,
    pub seq: i64,
    pub mac: String,
    pub key_id: String,
    pub anchor_mac: String,
}

/// A search of the audit trail (all criteria optional, newest first).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditQuery {
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub actor_id: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<String>,
    pub patient_id: Option<String>,
    pub study_uid: Option<String>,
    pub limit: u32,
    pub offset: u32,
}
