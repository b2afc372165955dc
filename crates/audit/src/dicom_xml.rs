//! DICOM PS3.15 A.5 audit messages (the `AuditMessage` XML of IHE ATNA):
//! [`to_audit_message`] turns a sealed record into one, for export and as
//! the payload of syslog messages.
//!
//! Layout (schema order of PS3.15 A.5.1): `EventIdentification` (EventID,
//! EventTypeCode, EventOutcomeDescription), the requesting `ActiveParticipant`
//! (our actor) and one for this node, `AuditSourceIdentification`, then
//! `ParticipantObjectIdentification`s: the patient (type 1, role 1, ID type
//! RFC-3881 2 "Patient Number"), each study (type 2, role 3, ID type DCM
//! 110180 "Study Instance UID"), the query of a Query (type 2, role 24), the
//! user acted upon by an account change (type 1, role 11), the audit log of
//! an audit use (type 2, role 13). `detail` travels base64-encoded as a
//! `ParticipantObjectDetail` of type `detail` on the first object.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::chain::{SealedEvent, canonical_json};
use crate::event::*;

/// Our private coding scheme for user roles (`99` marks a private scheme in DICOM).
pub const ROLE_CODE_SYSTEM: &str = "99YUNYING";

/// The DICOM coding of an event: [`Action::dicom`], with updates and
/// deletions of a patient record that touch no study coded as 110110
/// Patient Record.
pub fn coding(e: &AuditEvent) -> DicomCoding {
    let mut c = e.action.dicom();
    if matches!(e.action, Action::Update | Action::Delete)
        && e.studies.is_empty()
        && e.patient.is_some()
    {
        c.event_id = DCM_PATIENT_RECORD;
    }
    c
}

/// The DCM role of the requesting participant and of this node, where
/// PS3.15 gives them one.
pub(crate) fn participant_roles(action: Action) -> (Option<DcmCode>, Option<DcmCode>) {
    match action {
        // The querier is the source of the query, we its destination (A.5.3.12).
        Action::Query | Action::Store => (Some(DCM_ROLE_SOURCE), Some(DCM_ROLE_DESTINATION)),
        Action::Read | Action::Export => (Some(DCM_ROLE_DESTINATION), Some(DCM_ROLE_SOURCE)),
        Action::ApplicationStart | Action::ApplicationStop => (
            Some(DCM_ROLE_APPLICATION_LAUNCHER),
            Some(DCM_ROLE_APPLICATION),
        ),
        _ => (None, None),
    }
}

/// `(address, NetworkAccessPointTypeCode)` of a source: `AE@ip` gives the
/// ip; an IP address is type 2, anything else a machine name (type 1).
pub(crate) fn network_access_point(source: &str) -> (&str, &'static str) {
    let addr = source.rsplit_once('@').map(|(_, ip)| ip).unwrap_or(source);
    let bare = addr.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<std::net::IpAddr>().is_ok() {
        (bare, "2")
    } else {
        (addr, "1")
    }
}

/// The PS3.15 A.5 `AuditMessage` of a record. `source_id` is the
/// AuditSourceID (this archive, e.g. `yunying@region-a`).
pub fn to_audit_message(r: &SealedEvent, source_id: &str) -> String {
    let e = &r.event;
    let c = coding(e);
    let mut x = Xml::new();
    x.raw("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<AuditMessage>");

    // EventIdentification
    x.open(
        "EventIdentification",
        &[
            ("EventActionCode", c.action.code()),
            ("EventDateTime", &yunying_util::time::rfc3339_millis(e.at)),
            ("EventOutcomeIndicator", &e.outcome.dicom().to_string()),
        ],
    );
    x.code("EventID", c.event_id.code, "DCM", c.event_id.meaning);
    if let Some(t) = c.event_type {
        x.code("EventTypeCode", t.code, "DCM", t.meaning);
    }
    if let Some(reason) = e.detail_str("reason") {
        x.text_element("EventOutcomeDescription", reason);
    }
    x.close("EventIdentification");

    // The actor.
    let (actor_role, node_role) = participant_roles(e.action);
    let a = &e.actor;
    let mut attrs: Vec<(&str, String)> = vec![("UserID", a.id.clone())];
    if a.kind == ActorKind::Ae {
        attrs.push(("AlternativeUserID", format!("AETITLES={}", a.id)));
    }
    if !a.name.is_empty() {
        attrs.push(("UserName", a.name.clone()));
    }
    attrs.push(("UserIsRequestor", "true".into()));
    if let Some(src) = e.source.as_deref().filter(|s| !s.is_empty()) {
        let (nap, typ) = network_access_point(src);
        attrs.push(("NetworkAccessPointID", nap.to_owned()));
        attrs.push(("NetworkAccessPointTypeCode", typ.to_owned()));
    }
    let attrs_ref: Vec<(&str, &str)> = attrs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    x.open("ActiveParticipant", &attrs_ref);
    if let Some(role) = actor_role {
        x.code("RoleIDCode", role.code, "DCM", role.meaning);
    }
    for role in &a.roles {
        x.code("RoleIDCode", role, ROLE_CODE_SYSTEM, role);
    }
    x.close("ActiveParticipant");

    // This node.
    x.open(
        "ActiveParticipant",
        &[
            ("UserID", &e.node),
            ("AlternativeUserID", source_id),
            ("UserIsRequestor", "false"),
        ],
    );
    if let Some(role) = node_role {
        x.code("RoleIDCode", role.code, "DCM", role.meaning);
    }
    x.close("ActiveParticipant");

    // AuditSourceIdentification: an application server.
    let mut src_attrs = vec![("AuditSourceID", source_id)];
    if let Some(inst) = a
        .institution
        .as_deref()
        .filter(|_| a.kind == ActorKind::User)
    {
        // The enterprise site is the institution the requesting user acts for.
        src_attrs.insert(0, ("AuditEnterpriseSiteID", inst));
    }
    x.open("AuditSourceIdentification", &src_attrs);
    x.empty("AuditSourceTypeCode", &[("csd-code", "4")]);
    x.close("AuditSourceIdentification");

    // Participant objects.
    let detail = match &e.detail {
        serde_json::Value::Null => None,
        serde_json::Value::Object(m) if m.is_empty() => None,
        d => Some(B64.encode(canonical_json(d))),
    };
    let mut detail = detail.as_deref();
    let mut take_detail = |x: &mut Xml| {
        if let Some(d) = detail.take() {
            x.empty(
                "ParticipantObjectDetail",
                &[("type", "detail"), ("value", d)],
            );
        }
    };

    if let Some(p) = &e.patient {
        x.open(
            "ParticipantObjectIdentification",
            &[
                ("ParticipantObjectID", &patient_id_cx(&p.id, &p.issuer)),
                ("ParticipantObjectTypeCode", "1"),
                ("ParticipantObjectTypeCodeRole", "1"),
            ],
        );
        x.code(
            "ParticipantObjectIDTypeCode",
            "2",
            "RFC-3881",
            "Patient Number",
        );
        if let Some(name) = p.name.as_deref() {
            x.text_element("ParticipantObjectName", name);
        }
        take_detail(&mut x);
        x.close("ParticipantObjectIdentification");
    }
    for study in &e.studies {
        x.open(
            "ParticipantObjectIdentification",
            &[
                ("ParticipantObjectID", study),
                ("ParticipantObjectTypeCode", "2"),
                ("ParticipantObjectTypeCodeRole", "3"),
            ],
        );
        x.code(
            "ParticipantObjectIDTypeCode",
            DCM_STUDY_INSTANCE_UID.code,
            "DCM",
            DCM_STUDY_INSTANCE_UID.meaning,
        );
        take_detail(&mut x);
        x.close("ParticipantObjectIdentification");
    }
    if e.action == Action::Query {
        let query = e.detail_str("query");
        let (id, id_type) = match e.detail_str("sop_class") {
            Some(uid) => (
                uid,
                (DCM_SOP_CLASS_UID.code, "DCM", DCM_SOP_CLASS_UID.meaning),
            ),
            None => (query.unwrap_or("query"), ("12", "RFC-3881", "URI")),
        };
        x.open(
            "ParticipantObjectIdentification",
            &[
                ("ParticipantObjectID", id),
                ("ParticipantObjectTypeCode", "2"),
                ("ParticipantObjectTypeCodeRole", "24"),
            ],
        );
        x.code(
            "ParticipantObjectIDTypeCode",
            id_type.0,
            id_type.1,
            id_type.2,
        );
        if let Some(q) = query {
            x.text_element("ParticipantObjectQuery", &B64.encode(q));
        }
        take_detail(&mut x);
        x.close("ParticipantObjectIdentification");
    }
    if let Some(target) = e
        .detail_str("target")
        .filter(|_| c.event_id == DCM_SECURITY_ALERT)
    {
        x.open(
            "ParticipantObjectIdentification",
            &[
                ("ParticipantObjectID", target),
                ("ParticipantObjectTypeCode", "1"),
                ("ParticipantObjectTypeCodeRole", "11"),
            ],
        );
        x.code(
            "ParticipantObjectIDTypeCode",
            "11",
            "RFC-3881",
            "User Identifier",
        );
        take_detail(&mut x);
        x.close("ParticipantObjectIdentification");
    }
    if e.action.is_audit_use() {
        let log = format!(
            "urn:yunying:audit:{}",
            e.detail_str("chain").unwrap_or(&r.chain)
        );
        x.open(
            "ParticipantObjectIdentification",
            &[
                ("ParticipantObjectID", &log),
                ("ParticipantObjectTypeCode", "2"),
                ("ParticipantObjectTypeCodeRole", "13"),
            ],
        );
        x.code("ParticipantObjectIDTypeCode", "12", "RFC-3881", "URI");
        x.text_element("ParticipantObjectName", "Security Audit Log");
        take_detail(&mut x);
        x.close("ParticipantObjectIdentification");
    }

    x.raw("</AuditMessage>");
    x.out
}

/// Patient ID with its issuer, HL7 CX style (`id^^^issuer`), as IHE ATNA
/// expects for the Patient Number.
fn patient_id_cx(id: &str, issuer: &str) -> String {
    if issuer.is_empty() {
        id.to_owned()
    } else {
        format!("{id}^^^{issuer}")
    }
}

/// A small XML writer (no indentation).
struct Xml {
    out: String,
}

impl Xml {
    fn new() -> Self {
        Xml {
            out: String::with_capacity(2048),
        }
    }

    fn raw(&mut self, s: &str) {
        self.out.push_str(s);
    }

    fn start(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.out.push('<');
        self.out.push_str(name);
        for (k, v) in attrs {
            self.out.push(' ');
            self.out.push_str(k);
            self.out.push_str("=\"");
            escape_into(&mut self.out, v, true);
            self.out.push('"');
        }
    }

    fn open(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.start(name, attrs);
        self.out.push('>');
    }

    fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.start(name, attrs);
        self.out.push_str("/>");
    }

    fn close(&mut self, name: &str) {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }

    fn code(&mut self, name: &str, code: &str, system: &str, meaning: &str) {
        self.empty(
            name,
            &[
                ("csd-code", code),
                ("codeSystemName", system),
                ("originalText", meaning),
            ],
        );
    }

    fn text_element(&mut self, name: &str, text: &str) {
        self.open(name, &[]);
        escape_into(&mut self.out, text, false);
        self.close(name);
    }
}

/// Escapes text for XML 1.0: markup characters as entities, characters XML
/// cannot carry at all (most C0 controls, U+FFFE, U+FFFF) as U+FFFD, and in
/// attributes tab/newline/carriage return as character references so that
/// attribute-value normalisation keeps them.
pub fn escape_into(out: &mut String, s: &str, attribute: bool) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            '\'' if attribute => out.push_str("&apos;"),
            '\t' if attribute => out.push_str("&#9;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::tests::{sample_event, test_mac};
    use crate::chain::{GENESIS_MAC, seal};
    use serde_json::json;

    fn attr<'a>(n: roxmltree::Node<'a, 'a>, a: &str) -> &'a str {
        n.attribute(a)
            .unwrap_or_else(|| panic!("{} has no {a}", n.tag_name().name()))
    }

    fn children<'a>(n: roxmltree::Node<'a, 'a>, name: &str) -> Vec<roxmltree::Node<'a, 'a>> {
        n.children()
            .filter(|c| c.is_element() && c.tag_name().name() == name)
            .collect()
    }

    #[test]
    fn read_event_is_a_well_formed_audit_message() {
        let mut e = sample_event(1);
        e.detail = json!({"reason": "a <b> & \"c\"\u{1}", "count": 3});
        e.studies.push("1.2.3.4".into());
        let r = seal("node-a", 1, GENESIS_MAC, e, "k1", &test_mac).unwrap();
        let xml = to_audit_message(&r, "yunying@区域");
        let doc = roxmltree::Document::parse(&xml).expect("well-formed");
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "AuditMessage");
        let names: Vec<&str> = root
            .children()
            .filter(|c| c.is_element())
            .map(|c| c.tag_name().name())
            .collect();
        assert_eq!(
            names,
            [
                "EventIdentification",
                "ActiveParticipant",
                "ActiveParticipant",
                "AuditSourceIdentification",
                "ParticipantObjectIdentification",
                "ParticipantObjectIdentification",
                "ParticipantObjectIdentification"
            ]
        );

        let ev = children(root, "EventIdentification")[0];
        assert_eq!(attr(ev, "EventActionCode"), "R");
        assert_eq!(attr(ev, "EventOutcomeIndicator"), "0");
        assert_eq!(attr(ev, "EventDateTime"), "2025-11-24T16:00:00.001Z");
        let id = children(ev, "EventID")[0];
        assert_eq!(attr(id, "csd-code"), "110103");
        assert_eq!(attr(id, "codeSystemName"), "DCM");
        assert_eq!(attr(id, "originalText"), "DICOM Instances Accessed");
        assert_eq!(
            children(ev, "EventOutcomeDescription")[0].text(),
            Some("a <b> & \"c\"\u{FFFD}")
        );

        let ap = children(root, "ActiveParticipant");
        assert_eq!(attr(ap[0], "UserID"), "zhang.wei");
        assert_eq!(attr(ap[0], "UserName"), "张伟 <\"dr\"> & co");
        assert_eq!(attr(ap[0], "UserIsRequestor"), "true");
        assert_eq!(attr(ap[0], "NetworkAccessPointID"), "10.1.2.3");
        assert_eq!(attr(ap[0], "NetworkAccessPointTypeCode"), "2");
        let roles: Vec<&str> = children(ap[0], "RoleIDCode")
            .iter()
            .map(|n| attr(*n, "csd-code"))
            .collect();
        assert_eq!(roles, ["110152", "radiologist", "reader"]);
        assert_eq!(attr(ap[1], "UserID"), "node-a");
        assert_eq!(attr(ap[1], "UserIsRequestor"), "false");

        let src = children(root, "AuditSourceIdentification")[0];
        assert_eq!(attr(src, "AuditSourceID"), "yunying@区域");
        assert_eq!(attr(src, "AuditEnterpriseSiteID"), "HOSP01");
        assert_eq!(
            attr(children(src, "AuditSourceTypeCode")[0], "csd-code"),
            "4"
        );

        let po = children(root, "ParticipantObjectIdentification");
        assert_eq!(attr(po[0], "ParticipantObjectID"), "P1^^^HOSP01");
        assert_eq!(attr(po[0], "ParticipantObjectTypeCode"), "1");
        assert_eq!(attr(po[0], "ParticipantObjectTypeCodeRole"), "1");
        let idt = children(po[0], "ParticipantObjectIDTypeCode")[0];
        assert_eq!(
            (attr(idt, "csd-code"), attr(idt, "codeSystemName")),
            ("2", "RFC-3881")
        );
        assert_eq!(
            children(po[0], "ParticipantObjectName")[0].text(),
            Some("李^娜")
        );
        let d = children(po[0], "ParticipantObjectDetail")[0];
        let decoded = B64.decode(attr(d, "value")).unwrap();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&decoded).unwrap()["count"],
            3
        );
        for (i, uid) in ["1.2.840.99.1", "1.2.3.4"].iter().enumerate() {
            let s = po[i + 1];
            assert_eq!(attr(s, "ParticipantObjectID"), *uid);
            assert_eq!(attr(s, "ParticipantObjectTypeCode"), "2");
            assert_eq!(attr(s, "ParticipantObjectTypeCodeRole"), "3");
            let t = children(s, "ParticipantObjectIDTypeCode")[0];
            assert_eq!(
                (attr(t, "csd-code"), attr(t, "codeSystemName")),
                ("110180", "DCM")
            );
            assert_eq!(attr(t, "originalText"), "Study Instance UID");
        }
    }

    #[test]
    fn login_failure_from_a_dicom_ae_and_other_shapes() {
        let mut actor = Actor::new(ActorKind::Ae, "MODALITY1", "");
        actor.roles.clear();
        let e = AuditEvent::new(
            0,
            Action::LoginFailed,
            Outcome::MinorFailure,
            actor,
            "dicom",
            "n1",
        )
        .with_source("MODALITY1@192.168.0.7");
        let r = seal("n1", 1, GENESIS_MAC, e, "k1", &test_mac).unwrap();
        let xml = to_audit_message(&r, "src");
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let root = doc.root_element();
        let ev = children(root, "EventIdentification")[0];
        assert_eq!(attr(ev, "EventActionCode"), "E");
        assert_eq!(attr(ev, "EventOutcomeIndicator"), "4");
        assert_eq!(attr(ev, "EventDateTime"), "1970-01-01T00:00:00.000Z");
        assert_eq!(attr(children(ev, "EventID")[0], "csd-code"), "110114");
        assert_eq!(attr(children(ev, "EventTypeCode")[0], "csd-code"), "110122");
        let ap = children(root, "ActiveParticipant")[0];
        assert_eq!(attr(ap, "AlternativeUserID"), "AETITLES=MODALITY1");
        assert_eq!(attr(ap, "NetworkAccessPointID"), "192.168.0.7");
        assert!(ap.attribute("UserName").is_none());
        assert!(children(root, "ParticipantObjectIdentification").is_empty());

        // A roles change names the user changed.
        let e = AuditEvent::new(
            0,
            Action::RolesChanged,
            Outcome::Success,
            Actor::new(ActorKind::User, "admin", "管理员"),
            "http",
            "n1",
        )
        .with_source("::1")
        .with_detail(json!({"target": "li.na", "roles": ["reader"]}));
        let r = seal("n1", 2, GENESIS_MAC, e, "k1", &test_mac).unwrap();
        let doc_text = to_audit_message(&r, "src");
        let doc = roxmltree::Document::parse(&doc_text).unwrap();
        let root = doc.root_element();
        let ev = children(root, "EventIdentification")[0];
        assert_eq!(attr(children(ev, "EventID")[0], "csd-code"), "110113");
        assert_eq!(attr(children(ev, "EventTypeCode")[0], "csd-code"), "110136");
        let po = children(root, "ParticipantObjectIdentification");
        assert_eq!(attr(po[0], "ParticipantObjectID"), "li.na");
        assert_eq!(attr(po[0], "ParticipantObjectTypeCodeRole"), "11");

        // A query carries its text.
        let e = AuditEvent::new(
            0,
            Action::Query,
            Outcome::Success,
            Actor::new(ActorKind::User, "u", ""),
            "http",
            "n1",
        )
        .with_detail(json!({"query": "/studies?PatientID=P1&limit=10"}));
        let r = seal("n1", 3, GENESIS_MAC, e, "k1", &test_mac).unwrap();
        let doc_text = to_audit_message(&r, "src");
        let doc = roxmltree::Document::parse(&doc_text).unwrap();
        let po = children(doc.root_element(), "ParticipantObjectIdentification");
        assert_eq!(attr(po[0], "ParticipantObjectTypeCodeRole"), "24");
        let q = children(po[0], "ParticipantObjectQuery")[0].text().unwrap();
        assert_eq!(B64.decode(q).unwrap(), b"/studies?PatientID=P1&limit=10");

        // A patient-only update is a Patient Record event.
        let e = AuditEvent::new(
            0,
            Action::Update,
            Outcome::Success,
            Actor::new(ActorKind::User, "u", ""),
            "http",
            "n1",
        )
        .with_patient(PatientRef {
            id: "P".into(),
            issuer: "".into(),
            name: None,
        });
        assert_eq!(coding(&e).event_id, DCM_PATIENT_RECORD);
    }

    #[test]
    fn every_action_gives_well_formed_xml() {
        for a in Action::ALL {
            let mut e = sample_event(3);
            e.action = a;
            e.detail = json!({"target": "x\ty", "query": "q", "chain": "c"});
            let r = seal("c", 1, GENESIS_MAC, e, "k1", &test_mac).unwrap();
            let xml = to_audit_message(&r, "s");
            roxmltree::Document::parse(&xml).unwrap_or_else(|err| panic!("{a}: {err}\n{xml}"));
        }
    }
}
