//! Access to patient data: every read, search, export and store goes
//! through here with its [`Caller`], which the policy module judges and the
//! audit trail records. Handlers and the DIMSE services never decide
//! themselves: they ask for a scoped query ([`Archive::scoped_query`]) or a
//! study's access ([`Archive::study_access`]) and report what they served
//! ([`Archive::audit_access`]).

use std::sync::Arc;

use yunying_audit::{Action as AuditAction, Actor, ActorKind, AuditEvent, Outcome, PatientRef};
use yunying_index::query::{Key, Level, Matcher, Query};
use yunying_util::InstitutionId;

use crate::policy::{self, Action, Decision, Principal, PrincipalKind, Target};
use crate::{Archive, ArchiveError};

/// Who is calling, from where, through which interface.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Arc<Principal>,
    /// Client IP, or `AE@ip`.
    pub source: Option<String>,
    /// `http`, `dicom`, `cli`, `system`.
    pub interface: &'static str,
}

impl Caller {
    pub fn new(principal: Principal, source: Option<String>, interface: &'static str) -> Caller {
        Caller { principal: Arc::new(principal), source, interface }
    }

    /// The platform itself.
    pub fn system(what: &str) -> Caller {
        Caller::new(Principal::system(what), None, yunying_audit::event::INTERFACE_SYSTEM)
    }

    /// The command line of an operator on the server.
    pub fn cli(what: &str) -> Caller {
        Caller::new(Principal::system(what), None, yunying_audit::event::INTERFACE_CLI)
    }

    /// The caller as the audit trail names it.
    pub fn actor(&self) -> Actor {
        let p = &self.principal;
        let kind = match p.kind {
            PrincipalKind::User => ActorKind::User,
            PrincipalKind::Token => ActorKind::Token,
            PrincipalKind::Client => ActorKind::Client,
            PrincipalKind::Ae => ActorKind::Ae,
            PrincipalKind::Patient => ActorKind::Patient,
            PrincipalKind::System => ActorKind::System,
        };
        let mut a = Actor::new(kind, p.id.clone(), p.name.clone());
        a.institution = p.institution_code.clone();
        a.roles = p.role_codes();
        a
    }
}

/// What the access check learnt about a study.
#[derive(Debug, Clone)]
pub struct StudyFacts {
    pub study_uid: String,
    pub institution: InstitutionId,
    pub patient: Option<PatientRef>,
}

fn audit_action(a: Action) -> AuditAction {
    match a {
        Action::Query => AuditAction::Query,
        Action::Read => AuditAction::Read,
        Action::Export => AuditAction::Export,
        Action::Store => AuditAction::Store,
        Action::Update => AuditAction::Update,
        Action::Delete => AuditAction::Delete,
        Action::Share => AuditAction::GrantCreated,
        Action::ReadAudit => AuditAction::AuditRead,
        _ => AuditAction::ConfigChanged,
    }
}

impl Archive {
    /// An audit event by this caller, stamped now on this node.
    pub fn audit_event(&self, caller: &Caller, action: AuditAction, outcome: Outcome) -> AuditEvent {
        let mut e = AuditEvent::new(
            yunying_util::time::now_millis(),
            action,
            outcome,
            caller.actor(),
            caller.interface,
            &self.settings.node,
        );
        e.source = caller.source.clone();
        e
    }

    /// Records an event in the audit trail.
    pub async fn audit(&self, event: AuditEvent) {
        self.audit_trail().record(event).await;
    }

    /// Records a refusal and returns the error to answer with.
    pub async fn deny(&self, caller: &Caller, action: Action, decision: &Decision, study: Option<&StudyFacts>) -> ArchiveError {
        let reason = match decision {
            Decision::DenyAction => format!("{} may not {}", caller.principal.id, action.code()),
            _ => format!("{} may not {} data of this institution", caller.principal.id, action.code()),
        };
        let mut e = self.audit_event(caller, AuditAction::AccessDenied, Outcome::MinorFailure);
        e.detail = serde_json::json!({ "action": action.code(), "reason": reason });
        if let Some(s) = study {
            e.studies = vec![s.study_uid.clone()];
            e.patient = s.patient.clone();
        }
        self.audit(e).await;
        ArchiveError::Forbidden(match decision {
            Decision::DenyAction => format!("not allowed: your role does not permit '{}'", action.code()),
            _ => "not allowed: this study belongs to an institution outside your access".to_string(),
        })
    }

    /// Checks that the caller may perform a non-data action (administration).
    pub async fn authorize(&self, caller: &Caller, action: Action, target: &Target<'_>) -> Result<(), ArchiveError> {
        let d = policy::decide(&caller.principal, action, target);
        if d.allowed() { Ok(()) } else { Err(self.deny(caller, action, &d, None).await) }
    }

    /// Restricts a catalog query to what the caller may see.
    pub async fn scoped_query(&self, caller: &Caller, mut q: Query) -> Result<Query, ArchiveError> {
        if !caller.principal.holds(Action::Query) {
            return Err(self.deny(caller, Action::Query, &Decision::DenyAction, None).await);
        }
        if let Some((institutions, studies)) = policy::data_scope(&caller.principal, Action::Query).query_restriction() {
            q.institutions = Some(institutions);
            q.granted_studies = studies;
        }
        Ok(q)
    }

    /// The institution ids (and granted studies) an action reaches, for the
    /// DIMSE query/retrieve code: `None` for the whole region.
    pub fn scope_for(&self, caller: &Caller, action: Action) -> Option<(Vec<i64>, Vec<String>)> {
        policy::data_scope(&caller.principal, action).query_restriction()
    }

    /// Records a search and how many results it gave.
    pub async fn audit_query(&self, caller: &Caller, what: &str, results: usize, patient: Option<PatientRef>) {
        let mut e = self.audit_event(caller, AuditAction::Query, Outcome::Success);
        e.patient = patient;
        e.detail = serde_json::json!({ "query": what, "count": results });
        self.audit(e).await;
    }

    /// The studies (within the caller's scope) of the patients holding this
    /// personal identifier (`national_id`, `phone`...), found through its
    /// blind index: the value itself is never stored or logged in clear.
    pub async fn studies_by_identifier(
        &self,
        caller: &Caller,
        kind: &str,
        value: &str,
        limit: u32,
    ) -> Result<Vec<yunying_index::StudyRow>, ArchiveError> {
        let mut patients = Vec::new();
        // Every blind key still in the ring, while a rotation re-indexes.
        for index in yunying_security::blind::blind_indexes(&self.settings.keys, kind, value) {
            patients.extend(self.index.patients_by_secret(kind, &index).await?);
        }
        patients.sort_unstable();
        patients.dedup();
        let mut q = Query::new(Level::Study).limit(limit);
        q.patients = Some(patients);
        let q = self.scoped_query(caller, q).await?;
        let rows = self.index.query_studies(&q).await?;
        let mut e = self.audit_event(caller, AuditAction::Query, Outcome::Success);
        e.studies = rows.iter().map(|r| r.study_uid.clone()).collect();
        e.detail = serde_json::json!({ "query": format!("studies by {kind}"), "count": rows.len() });
        self.audit(e).await;
        Ok(rows)
    }

    /// Checks the caller's access to a study (which must exist) and returns what it is.
    /// Refusals are audited here; the caller audits what it then serves.
    pub async fn study_access(&self, caller: &Caller, action: Action, study_uid: &str) -> Result<StudyFacts, ArchiveError> {
        if !caller.principal.holds(action) {
            return Err(self.deny(caller, action, &Decision::DenyAction, None).await);
        }
        let facts = self
            .study_facts(study_uid)
            .await?
            .ok_or_else(|| ArchiveError::NotFound(format!("no study {study_uid}")))?;
        let d = policy::decide(
            &caller.principal,
            action,
            &Target::Study { institution: facts.institution, study_uid: &facts.study_uid },
        );
        if !d.allowed() {
            return Err(self.deny(caller, action, &d, Some(&facts)).await);
        }
        Ok(facts)
    }

    /// Records an allowed access to a study.
    pub async fn audit_access(&self, caller: &Caller, action: Action, facts: &StudyFacts, detail: serde_json::Value) {
        let mut e = self.audit_event(caller, audit_action(action), Outcome::Success);
        e.studies = vec![facts.study_uid.clone()];
        e.patient = facts.patient.clone();
        e.detail = detail;
        self.audit(e).await;
    }

    /// The institution and patient of a study (cached: they never change
    /// for a study UID).
    pub async fn study_facts(&self, study_uid: &str) -> Result<Option<StudyFacts>, ArchiveError> {
        if let Some(f) = self.study_facts_cache.lock().expect("study facts cache").get(study_uid) {
            return Ok(Some(f.clone()));
        }
        let q = Query::new(Level::Study).filter(Key::StudyInstanceUid, Matcher::Single(study_uid.to_string())).limit(1);
        let rows = self.index.query_studies(&q).await?;
        let Some(row) = rows.into_iter().next() else { return Ok(None) };
        let institution = self
            .find_institution(|i| i.code == row.institution_code, true)
            .await?
            .map(|i| i.id)
            .ok_or_else(|| ArchiveError::Internal(format!("study {study_uid}: unknown institution {}", row.institution_code)))?;
        let attrs: serde_json::Value = serde_json::from_str(&row.attrs).unwrap_or_default();
        let text = |tag: &str| attrs.get(tag).and_then(|v| v.get("Value")).and_then(|v| v.get(0)).and_then(|v| v.as_str()).map(String::from);
        let name = attrs
            .get("00100010")
            .and_then(|v| v.get("Value"))
            .and_then(|v| v.get(0))
            .and_then(|v| v.get("Alphabetic").or_else(|| v.get("Ideographic")))
            .and_then(|v| v.as_str())
            .map(String::from);
        let patient = text("00100020").map(|id| PatientRef {
            id,
            issuer: text("00100021").unwrap_or_else(|| row.institution_code.clone()),
            name,
        });
        let facts = StudyFacts { study_uid: study_uid.to_string(), institution, patient };
        let mut cache = self.study_facts_cache.lock().expect("study facts cache");
        if cache.len() > 20_000 {
            cache.clear();
        }
        cache.insert(study_uid.to_string(), facts.clone());
        Ok(Some(facts))
    }
}
