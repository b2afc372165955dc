//! Authorisation: the one place where access is decided.
//!
//! A [`Principal`] (a signed-in user, a machine credential, a DICOM AE, or
//! the platform itself) asks to perform an [`Action`] on a [`Target`];
//! [`decide`] answers. Roles give actions ([`Role::actions`]); where patient
//! data is concerned, the principal's [`DataScope`] limits which studies the
//! action reaches: a doctor sees their institution's data, the consultation
//! centre's radiologists (a regional institution) see the region, and
//! explicit grants (consultation, referral, a patient's share) open single
//! studies beyond that. The three administrators (system, security, audit)
//! are kept apart: none can do another's work, and none reads patient data
//! (the retention actions show the system and security administrators
//! study UIDs and patient IDs, no more). Deletion is a request by one
//! (request-deletion, the system administrator) approved by another
//! (approve-deletion, the security administrator).
//! Handlers never decide: they call the archive, which calls here.

use serde::{Deserialize, Serialize};
use yunying_util::InstitutionId;

/// A role a user holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// 系统管理员: institutions, AEs, storage, configuration, jobs.
    SystemAdmin,
    /// 安全管理员: accounts, roles, credentials, grants.
    SecurityAdmin,
    /// 审计管理员: the audit trail.
    AuditAdmin,
    /// An institution's own administrator: its clinical accounts, its statistics.
    InstitutionAdmin,
    Radiologist,
    ReviewingRadiologist,
    Clinician,
    Technician,
}

impl Role {
    pub const ALL: [Role; 8] = [
        Role::SystemAdmin,
        Role::SecurityAdmin,
        Role::AuditAdmin,
        Role::InstitutionAdmin,
        Role::Radiologist,
        Role::ReviewingRadiologist,
        Role::Clinician,
        Role::Technician,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Role::SystemAdmin => "system-admin",
            Role::SecurityAdmin => "security-admin",
            Role::AuditAdmin => "audit-admin",
            Role::InstitutionAdmin => "institution-admin",
            Role::Radiologist => "radiologist",
            Role::ReviewingRadiologist => "reviewing-radiologist",
            Role::Clinician => "clinician",
            Role::Technician => "technician",
        }
    }

    pub fn from_code(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.code() == s)
    }

    /// The Chinese name shown to users.
    pub fn name_zh(self) -> &'static str {
        match self {
            Role::SystemAdmin => "系统管理员",
            Role::SecurityAdmin => "安全管理员",
            Role::AuditAdmin => "审计管理员",
            Role::InstitutionAdmin => "机构管理员",
            Role::Radiologist => "放射科医师",
            Role::ReviewingRadiologist => "审核医师",
            Role::Clinician => "临床医师",
            Role::Technician => "技师",
        }
    }

    /// The three platform administrators (三员): a second factor is
    /// mandatory for them, and none may hold another's role.
    pub fn is_administrator(self) -> bool {
        matches!(self, Role::SystemAdmin | Role::SecurityAdmin | Role::AuditAdmin | Role::InstitutionAdmin)
    }

    /// What the role may do.
    pub fn actions(self) -> &'static [Action] {
        use Action::*;
        match self {
            // Retention: the system administrator records visits, places and
            // releases holds and asks for deletions; the security
            // administrator (a different person: 三员分立) holds the approval.
            Role::SystemAdmin => &[ManageSystem, ViewStatistics, RecordEncounters, ManageLegalHolds, ViewRetention, RequestDeletion],
            Role::SecurityAdmin => &[ManageUsers, ManageCredentials, ManageGrants, ManageLegalHolds, ViewRetention, ApproveDeletion],
            Role::AuditAdmin => &[ReadAudit, ManageAudit],
            Role::InstitutionAdmin => &[ManageUsers, ViewStatistics],
            Role::Radiologist | Role::ReviewingRadiologist => &[Query, Read, Export, Store, Update, Share],
            Role::Clinician => &[Query, Read, Export, Share],
            Role::Technician => &[Query, Read, Store, Update],
        }
    }
}

/// Why the three administrator roles cannot be combined (三员分立), and
/// why an administrator holds no clinical role.
pub fn check_role_set(roles: &[Role]) -> Result<(), String> {
    let platform = [Role::SystemAdmin, Role::SecurityAdmin, Role::AuditAdmin];
    let held: Vec<Role> = platform.iter().copied().filter(|r| roles.contains(r)).collect();
    if held.len() > 1 {
        return Err(format!(
            "the system, security and audit administrator roles are kept separate; {} cannot be combined",
            held.iter().map(|r| r.code()).collect::<Vec<_>>().join(" and ")
        ));
    }
    if !held.is_empty() && roles.iter().any(|r| !r.is_administrator()) {
        return Err(format!("a {} holds no clinical role", held[0].code()));
    }
    if roles.is_empty() {
        return Err("a user needs at least one role".into());
    }
    Ok(())
}

/// Something a principal does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Search studies (QIDO-RS, C-FIND, the study list).
    Query,
    /// View a study's images and metadata (WADO-RS, the viewer).
    Read,
    /// Send a study elsewhere or download it (C-MOVE, C-GET, downloads).
    Export,
    /// Add data (STOW-RS, C-STORE, imports).
    Store,
    /// Change data (demographic corrections, reports).
    Update,
    /// Delete data (only through the approved retention workflow).
    Delete,
    /// Open a study to another doctor or institution (consultation, referral).
    Share,
    /// Accounts and roles.
    ManageUsers,
    /// API tokens and service accounts.
    ManageCredentials,
    /// Any grant, including revoking others'.
    ManageGrants,
    /// Institutions, AEs, storage, configuration, jobs.
    ManageSystem,
    /// Upload charts and billing figures (no patient data).
    ViewStatistics,
    /// Search and read the audit trail.
    ReadAudit,
    /// Verify and export the audit trail.
    ManageAudit,
    // Retention (see `retention`).
    /// Record patients' visits, which set their studies' retention (HIS feeds, corrections).
    RecordEncounters,
    /// Place and release legal holds on studies.
    ManageLegalHolds,
    /// Read the expiry report and the deletion requests (study UIDs and patient IDs, no names).
    ViewRetention,
    /// Ask for the deletion of studies whose retention has ended.
    RequestDeletion,
    /// Approve or reject another person's deletion request (the deletion itself follows).
    ApproveDeletion,
}

impl Action {
    pub const ALL: [Action; 19] = [
        Action::Query,
        Action::Read,
        Action::Export,
        Action::Store,
        Action::Update,
        Action::Delete,
        Action::Share,
        Action::ManageUsers,
        Action::ManageCredentials,
        Action::ManageGrants,
        Action::ManageSystem,
        Action::ViewStatistics,
        Action::ReadAudit,
        Action::ManageAudit,
        Action::RecordEncounters,
        Action::ManageLegalHolds,
        Action::ViewRetention,
        Action::RequestDeletion,
        Action::ApproveDeletion,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Action::Query => "query",
            Action::Read => "read",
            Action::Export => "export",
            Action::Store => "store",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Share => "share",
            Action::ManageUsers => "manage-users",
            Action::ManageCredentials => "manage-credentials",
            Action::ManageGrants => "manage-grants",
            Action::ManageSystem => "manage-system",
            Action::ViewStatistics => "view-statistics",
            Action::ReadAudit => "read-audit",
            Action::ManageAudit => "manage-audit",
            Action::RecordEncounters => "record-encounters",
            Action::ManageLegalHolds => "manage-legal-holds",
            Action::ViewRetention => "view-retention",
            Action::RequestDeletion => "request-deletion",
            Action::ApproveDeletion => "approve-deletion",
        }
    }

    pub fn from_code(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.code() == s)
    }

    /// Actions on patient data (limited by the principal's data scope).
    pub fn on_patient_data(self) -> bool {
        matches!(
            self,
            Action::Query | Action::Read | Action::Export | Action::Store | Action::Update | Action::Delete | Action::Share
        )
    }

    /// Actions a machine credential may be given. Administration stays with
    /// people (who sign in with a second factor).
    pub fn grantable_to_machines(self) -> bool {
        self.on_patient_data() || matches!(self, Action::ViewStatistics | Action::RecordEncounters)
    }
}

/// Parses a comma-separated list of action codes (`all` = every action a
/// machine may hold).
pub fn parse_actions(s: &str) -> Result<Vec<Action>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if part == "all" {
            // Actions that change what is kept are never given implicitly.
            out.extend(
                Action::ALL
                    .into_iter()
                    .filter(|a| a.grantable_to_machines() && !matches!(a, Action::Delete | Action::RecordEncounters)),
            );
            continue;
        }
        let a = Action::from_code(part).ok_or_else(|| {
            format!(
                "unknown action {part:?} (known: {})",
                Action::ALL.iter().map(|a| a.code()).collect::<Vec<_>>().join(", ")
            )
        })?;
        out.push(a);
    }
    out.sort_by_key(|a| a.code());
    out.dedup();
    if out.is_empty() {
        return Err("no action given".into());
    }
    Ok(out)
}

/// Who is asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrincipalKind {
    User,
    Token,
    Client,
    Ae,
    Patient,
    System,
}

/// An authenticated caller, as the policy sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub kind: PrincipalKind,
    /// Stable identifier for the audit trail: `user:alice`, `token:yyt_Ab12`, `ae:CT_ROOM1`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Roles (users).
    pub roles: Vec<Role>,
    /// The explicit actions of a machine credential (users: `None`, their roles decide).
    pub actions: Option<Vec<Action>>,
    /// The institution it belongs to; `None` for platform staff and
    /// region-wide credentials.
    pub institution: Option<InstitutionId>,
    pub institution_code: Option<String>,
    /// Its institution is regional (the consultation centre).
    pub regional: bool,
    /// Studies opened to it by grants.
    pub granted_studies: Vec<String>,
}

impl Principal {
    /// The platform itself (recovery, forwarding, demo loading).
    pub fn system(what: &str) -> Principal {
        Principal {
            kind: PrincipalKind::System,
            id: format!("system:{what}"),
            name: what.to_string(),
            roles: Vec::new(),
            actions: None,
            institution: None,
            institution_code: None,
            regional: true,
            granted_studies: Vec::new(),
        }
    }

    /// Role codes (for the audit trail).
    pub fn role_codes(&self) -> Vec<String> {
        match &self.actions {
            Some(a) if self.roles.is_empty() => a.iter().map(|a| format!("action:{}", a.code())).collect(),
            _ => self.roles.iter().map(|r| r.code().to_string()).collect(),
        }
    }

    /// Whether the principal may perform the action at all (wherever).
    pub fn holds(&self, action: Action) -> bool {
        match self.kind {
            PrincipalKind::System => true,
            _ => match &self.actions {
                Some(list) => list.contains(&action),
                None => self.roles.iter().any(|r| r.actions().contains(&action)),
            },
        }
    }
}

/// Which studies an action reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataScope {
    /// No study.
    Nothing,
    /// Every study of the region.
    Region,
    /// The studies of these institutions, plus these granted studies.
    Limited { institutions: Vec<InstitutionId>, studies: Vec<String> },
}

impl DataScope {
    /// The restriction to put on a catalog query: `None` for the whole
    /// region; otherwise institution ids and granted Study Instance UIDs.
    pub fn query_restriction(&self) -> Option<(Vec<i64>, Vec<String>)> {
        match self {
            DataScope::Region => None,
            DataScope::Nothing => Some((Vec::new(), Vec::new())),
            DataScope::Limited { institutions, studies } => {
                Some((institutions.iter().map(|i| i.0).collect(), studies.clone()))
            }
        }
    }

    pub fn covers(&self, institution: InstitutionId, study_uid: &str) -> bool {
        match self {
            DataScope::Nothing => false,
            DataScope::Region => true,
            DataScope::Limited { institutions, studies } => {
                institutions.contains(&institution) || studies.iter().any(|s| s == study_uid)
            }
        }
    }
}

/// The reach of a principal for an action on patient data.
pub fn data_scope(p: &Principal, action: Action) -> DataScope {
    if !action.on_patient_data() || !p.holds(action) {
        return DataScope::Nothing;
    }
    if p.kind == PrincipalKind::System {
        return DataScope::Region;
    }
    let regional_reader = match p.kind {
        // Radiologists of the consultation centre read the region; its
        // clinicians and technicians work on their own institution's data.
        PrincipalKind::User => {
            p.regional && p.roles.iter().any(|r| matches!(r, Role::Radiologist | Role::ReviewingRadiologist))
        }
        // A machine credential without an institution is region-wide; an
        // AE of the regional institution (the centre's own equipment and
        // workstations) too.
        PrincipalKind::Token | PrincipalKind::Client => p.institution.is_none(),
        PrincipalKind::Ae => p.regional,
        PrincipalKind::Patient | PrincipalKind::System => false,
    };
    if regional_reader {
        return DataScope::Region;
    }
    // Adding data is limited to one's own institution; grants open reading.
    let studies = if matches!(action, Action::Query | Action::Read | Action::Export) {
        p.granted_studies.clone()
    } else {
        Vec::new()
    };
    let institutions: Vec<InstitutionId> = p.institution.into_iter().collect();
    if institutions.is_empty() && studies.is_empty() {
        DataScope::Nothing
    } else {
        DataScope::Limited { institutions, studies }
    }
}

/// What an action is performed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target<'a> {
    /// The platform as a whole (administration, searches).
    Platform,
    /// A study of an institution.
    Study { institution: InstitutionId, study_uid: &'a str },
    /// An institution's own affairs (its users, its statistics).
    Institution(InstitutionId),
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// The principal may not perform this action at all.
    DenyAction,
    /// The action is allowed, but not on this target (another institution's study).
    DenyScope,
}

impl Decision {
    pub fn allowed(&self) -> bool {
        *self == Decision::Allow
    }
}

/// Decides whether `p` may perform `action` on `target`.
pub fn decide(p: &Principal, action: Action, target: &Target<'_>) -> Decision {
    if !p.holds(action) {
        return Decision::DenyAction;
    }
    match target {
        Target::Platform => Decision::Allow,
        Target::Study { institution, study_uid } => {
            if data_scope(p, action).covers(*institution, study_uid) {
                Decision::Allow
            } else {
                Decision::DenyScope
            }
        }
        Target::Institution(id) => {
            // Institution administrators act on their own institution only;
            // platform administrators on any.
            let platform_wide = p.kind == PrincipalKind::System
                || p.roles.iter().any(|r| matches!(r, Role::SystemAdmin | Role::SecurityAdmin | Role::AuditAdmin))
                || (p.kind != PrincipalKind::User && p.institution.is_none());
            if platform_wide || p.institution == Some(*id) {
                Decision::Allow
            } else {
                Decision::DenyScope
            }
        }
    }
}

/// Which roles a user may give to others: the security administrator any
/// role except another platform administrator's (those come from the CLI
/// on the server), an institution administrator clinical roles only.
pub fn may_assign(assigner: &Principal, role: Role) -> bool {
    if assigner.kind == PrincipalKind::System {
        return true;
    }
    if assigner.roles.contains(&Role::SecurityAdmin) {
        return !matches!(role, Role::SystemAdmin | Role::AuditAdmin | Role::SecurityAdmin);
    }
    if assigner.roles.contains(&Role::InstitutionAdmin) {
        return !role.is_administrator();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: InstitutionId = InstitutionId(2);
    const OTHER: InstitutionId = InstitutionId(3);
    const CENTRE: InstitutionId = InstitutionId(1);

    fn user(roles: &[Role], institution: Option<InstitutionId>) -> Principal {
        Principal {
            kind: PrincipalKind::User,
            id: "user:t".into(),
            name: "t".into(),
            roles: roles.to_vec(),
            actions: None,
            institution,
            institution_code: None,
            regional: institution == Some(CENTRE),
            granted_studies: vec!["1.2.granted".into()],
        }
    }

    fn token(actions: &[Action], institution: Option<InstitutionId>) -> Principal {
        Principal {
            kind: PrincipalKind::Token,
            id: "token:t".into(),
            name: "t".into(),
            roles: vec![],
            actions: Some(actions.to_vec()),
            institution,
            institution_code: None,
            regional: false,
            granted_studies: vec![],
        }
    }

    /// Expected decision, in the notation of the table below: A allow,
    /// a allow only on the own institution (and grants), - deny.
    fn check(p: &Principal, action: Action, expect: char, label: &str) {
        let own = Target::Study { institution: p.institution.unwrap_or(OWN), study_uid: "1.2.own" };
        let other = Target::Study { institution: OTHER, study_uid: "1.2.other" };
        let granted = Target::Study { institution: OTHER, study_uid: "1.2.granted" };
        let (on_own, on_other, on_granted) = (decide(p, action, &own), decide(p, action, &other), decide(p, action, &granted));
        let got = match (on_own.allowed(), on_other.allowed()) {
            (true, true) => 'A',
            (true, false) => 'a',
            (false, false) => '-',
            (false, true) => '?',
        };
        assert_eq!(got, expect, "{label} × {}: own {on_own:?}, other {on_other:?}", action.code());
        if got == 'a' && matches!(action, Action::Query | Action::Read | Action::Export) && p.kind == PrincipalKind::User {
            assert!(on_granted.allowed(), "{label} × {}: a grant opens the study", action.code());
        }
        if got == '-' {
            assert_eq!(on_own, Decision::DenyAction, "{label} × {}: denied for the action itself", action.code());
        }
    }

    #[test]
    fn roles_by_actions_by_scope() {
        use Action::*;
        // Columns, in the order of Action::ALL: Query Read Export Store
        // Update Delete Share | ManageUsers ManageCredentials ManageGrants
        // ManageSystem ViewStatistics ReadAudit ManageAudit | RecordEncounters
        // ManageLegalHolds ViewRetention RequestDeletion ApproveDeletion.
        let columns = Action::ALL;
        let table: Vec<(&str, Principal, &str)> = vec![
            ("system admin", user(&[Role::SystemAdmin], None), "------- ---AA-- AAAA-"),
            ("security admin", user(&[Role::SecurityAdmin], None), "------- AAA---- -AA-A"),
            ("audit admin", user(&[Role::AuditAdmin], None), "------- -----AA -----"),
            ("institution admin", user(&[Role::InstitutionAdmin], Some(OWN)), "------- A---A-- -----"),
            ("radiologist", user(&[Role::Radiologist], Some(OWN)), "aaaaa-a ------- -----"),
            ("reviewing radiologist", user(&[Role::ReviewingRadiologist], Some(OWN)), "aaaaa-a ------- -----"),
            ("clinician", user(&[Role::Clinician], Some(OWN)), "aaa---a ------- -----"),
            ("technician", user(&[Role::Technician], Some(OWN)), "aa-aa-- ------- -----"),
            // The consultation centre's radiologists read the region; its
            // clinicians see the centre's own data only.
            ("centre radiologist", user(&[Role::Radiologist], Some(CENTRE)), "AAAAA-A ------- -----"),
            ("centre clinician", user(&[Role::Clinician], Some(CENTRE)), "aaa---a ------- -----"),
            ("institution token (query, read)", token(&[Query, Read], Some(OWN)), "aa----- ------- -----"),
            ("region token (store, read)", token(&[Store, Read], None), "-A-A--- ------- -----"),
            ("HIS feed token (record encounters)", token(&[RecordEncounters], Some(OWN)), "------- ------- A----"),
        ];
        for (label, p, row) in table {
            let marks: Vec<char> = row.chars().filter(|c| *c != ' ').collect();
            assert_eq!(marks.len(), columns.len(), "{label}");
            for (action, mark) in columns.iter().zip(marks) {
                if action.on_patient_data() {
                    check(&p, *action, mark, label);
                } else {
                    let d = decide(&p, *action, &Target::Platform);
                    assert_eq!(d.allowed(), mark == 'A', "{label} × {}", action.code());
                }
            }
        }
    }

    #[test]
    fn institution_admin_acts_on_its_own_institution() {
        let p = user(&[Role::InstitutionAdmin], Some(OWN));
        assert!(decide(&p, Action::ManageUsers, &Target::Institution(OWN)).allowed());
        assert_eq!(decide(&p, Action::ManageUsers, &Target::Institution(OTHER)), Decision::DenyScope);
        let sec = user(&[Role::SecurityAdmin], None);
        assert!(decide(&sec, Action::ManageUsers, &Target::Institution(OTHER)).allowed());
        assert!(!may_assign(&p, Role::SecurityAdmin));
        assert!(may_assign(&p, Role::Radiologist));
        assert!(!may_assign(&sec, Role::AuditAdmin));
        assert!(may_assign(&sec, Role::InstitutionAdmin));
    }

    #[test]
    fn encounters_are_recorded_for_the_own_institution_only() {
        let feed = token(&[Action::RecordEncounters], Some(OWN));
        assert!(decide(&feed, Action::RecordEncounters, &Target::Institution(OWN)).allowed());
        assert_eq!(decide(&feed, Action::RecordEncounters, &Target::Institution(OTHER)), Decision::DenyScope);
        let region_feed = token(&[Action::RecordEncounters], None);
        assert!(decide(&region_feed, Action::RecordEncounters, &Target::Institution(OTHER)).allowed());
        let sys = user(&[Role::SystemAdmin], None);
        assert!(decide(&sys, Action::RecordEncounters, &Target::Institution(OTHER)).allowed());
        // Approval needs another role than the request: no one holds both (三员分立).
        for r in Role::ALL {
            assert!(
                !(r.actions().contains(&Action::RequestDeletion) && r.actions().contains(&Action::ApproveDeletion)),
                "{} could approve its own requests",
                r.code()
            );
        }
        // A HIS feed is given it explicitly: "all" leaves out what changes retention.
        assert_eq!(parse_actions("record-encounters").unwrap(), vec![Action::RecordEncounters]);
        assert!(!parse_actions("all").unwrap().contains(&Action::RecordEncounters));
        assert!(!parse_actions("all").unwrap().contains(&Action::ApproveDeletion), "administration stays with people");
    }

    #[test]
    fn administrators_are_kept_apart() {
        assert!(check_role_set(&[Role::SystemAdmin, Role::AuditAdmin]).is_err());
        assert!(check_role_set(&[Role::SecurityAdmin, Role::Radiologist]).is_err());
        assert!(check_role_set(&[]).is_err());
        assert!(check_role_set(&[Role::AuditAdmin]).is_ok());
        assert!(check_role_set(&[Role::Radiologist, Role::ReviewingRadiologist]).is_ok());
    }

    #[test]
    fn scopes_restrict_queries() {
        let p = user(&[Role::Clinician], Some(OWN));
        assert_eq!(
            data_scope(&p, Action::Query).query_restriction(),
            Some((vec![OWN.0], vec!["1.2.granted".to_string()]))
        );
        // Grants open reading, never storing into another institution.
        let t = user(&[Role::Technician], Some(OWN));
        assert_eq!(data_scope(&t, Action::Store).query_restriction(), Some((vec![OWN.0], vec![])));
        assert_eq!(data_scope(&user(&[Role::Radiologist], Some(CENTRE)), Action::Query), DataScope::Region);
        assert_eq!(data_scope(&user(&[Role::AuditAdmin], None), Action::Query), DataScope::Nothing);
        assert_eq!(data_scope(&Principal::system("t"), Action::Read), DataScope::Region);
    }

    #[test]
    fn action_lists_parse() {
        assert_eq!(parse_actions("read, query").unwrap(), vec![Action::Query, Action::Read]);
        assert!(parse_actions("read,fly").is_err());
        let all = parse_actions("all").unwrap();
        assert!(all.contains(&Action::Store) && !all.contains(&Action::ManageUsers) && !all.contains(&Action::Delete));
    }
}
