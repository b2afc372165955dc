//! FHIR R4 `AuditEvent` resources of sealed records ([`to_audit_event`])
//! and Bundles of them ([`bundle`]).
//!
//! The coding follows the DICOM one (`dicom_xml::coding`): `type` is the
//! DCM EventID, `subtype` the DCM EventTypeCode (when there is one) and our
//! action code (system [`ACTION_SYSTEM`]), `action` C/R/U/D/E, `outcome`
//! 0/4/8/12. The record's place in the chain (chain, seq, key id, previous
//! MAC, MAC) travels in the extension [`SEAL_EXTENSION_URL`], and the
//! `detail` as an entity detail (`detail`, base64 of its canonical JSON) on
//! the first entity, or on an entity of its own when there is none.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value, json};

use crate::chain::{SealedEvent, canonical_json};
use crate::dicom_xml::{coding, network_access_point, participant_roles};
use crate::event::*;

/// System of DICOM's coding scheme in FHIR.
pub const DCM_SYSTEM: &str = "http://dicom.nema.org/resources/ontology/DCM";
/// System of our action codes.
pub const ACTION_SYSTEM: &str = "urn:yunying:audit-action";
/// System of our role names.
pub const ROLE_SYSTEM: &str = "urn:yunying:role";
/// URL of the extension carrying the record's seal.
pub const SEAL_EXTENSION_URL: &str =
    "https://github.com/yunying-pacs/yunying/fhir/StructureDefinition/audit-seal";

const ENTITY_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-entity-type";
const OBJECT_ROLE: &str = "http://terminology.hl7.org/CodeSystem/object-role";
const SOURCE_TYPE: &str = "http://terminology.hl7.org/CodeSystem/security-source-type";

fn dcm(c: DcmCode) -> Value {
    json!({ "system": DCM_SYSTEM, "code": c.code, "display": c.meaning })
}

/// A FHIR id (`[A-Za-z0-9\-\.]{1,64}`) for a record: `chain-seq`, other
/// characters replaced by `-`, a long chain name cut.
pub fn resource_id(r: &SealedEvent) -> String {
    let seq = r.seq.to_string();
    let mut chain: String = r
        .chain
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    chain.truncate(63 - seq.len());
    if chain.is_empty() {
        chain.push('a');
    }
    format!("{chain}-{seq}")
}

fn entity(
    type_code: &str,
    type_display: &str,
    role_code: &str,
    role_display: &str,
) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(
        "type".into(),
        json!({ "system": ENTITY_TYPE, "code": type_code, "display": type_display }),
    );
    m.insert(
        "role".into(),
        json!({ "system": OBJECT_ROLE, "code": role_code, "display": role_display }),
    );
    m
}

/// The FHIR R4 AuditEvent of a record. `source_id` is the observer (this
/// archive, e.g. `yunying@region-a`).
pub fn to_audit_event(r: &SealedEvent, source_id: &str) -> Value {
    let e = &r.event;
    let c = coding(e);

    let mut subtype = Vec::new();
    if let Some(t) = c.event_type {
        subtype.push(dcm(t));
    }
    subtype.push(json!({ "system": ACTION_SYSTEM, "code": e.action.code() }));

    // Agents: the actor (requestor) and this node.
    let a = &e.actor;
    let (actor_role, node_role) = participant_roles(e.action);
    let mut identifier = Map::new();
    identifier.insert(
        "system".into(),
        json!(format!("urn:yunying:{}", a.kind.code())),
    );
    identifier.insert("value".into(), json!(a.id));
    if let Some(inst) = &a.institution {
        identifier.insert("assigner".into(), json!({ "display": inst }));
    }
    let reference_type = match a.kind {
        ActorKind::User => "Practitioner",
        ActorKind::Patient => "Patient",
        ActorKind::Token | ActorKind::Client | ActorKind::Ae | ActorKind::System => "Device",
    };
    let mut who = Map::new();
    who.insert("type".into(), json!(reference_type));
    who.insert("identifier".into(), Value::Object(identifier));
    if !a.name.is_empty() {
        who.insert("display".into(), json!(a.name));
    }
    let mut actor = Map::new();
    if let Some(role) = actor_role {
        actor.insert("type".into(), json!({ "coding": [dcm(role)] }));
    }
    if !a.roles.is_empty() {
        let roles: Vec<Value> = a
            .roles
            .iter()
            .map(|r| json!({ "coding": [{ "system": ROLE_SYSTEM, "code": r }], "text": r }))
            .collect();
        actor.insert("role".into(), Value::Array(roles));
    }
    actor.insert("who".into(), Value::Object(who));
    if a.kind == ActorKind::Ae {
        actor.insert("altId".into(), json!(format!("AETITLES={}", a.id)));
    }
    if !a.name.is_empty() {
        actor.insert("name".into(), json!(a.name));
    }
    actor.insert("requestor".into(), json!(true));
    if let Some(src) = e.source.as_deref().filter(|s| !s.is_empty()) {
        let (address, typ) = network_access_point(src);
        actor.insert("network".into(), json!({ "address": address, "type": typ }));
    }
    let mut node = Map::new();
    if let Some(role) = node_role {
        node.insert("type".into(), json!({ "coding": [dcm(role)] }));
    }
    node.insert("who".into(), json!({ "type": "Device", "identifier": { "system": "urn:yunying:node", "value": e.node }, "display": e.node }));
    node.insert("requestor".into(), json!(false));

    // Entities.
    let mut entities: Vec<Map<String, Value>> = Vec::new();
    if let Some(p) = &e.patient {
        let mut m = entity("1", "Person", "1", "Patient");
        let mut id = Map::new();
        if is_oid(&p.issuer) {
            id.insert("system".into(), json!(format!("urn:oid:{}", p.issuer)));
        }
        id.insert("value".into(), json!(p.id));
        if !p.issuer.is_empty() {
            id.insert("assigner".into(), json!({ "display": p.issuer }));
        }
        m.insert(
            "what".into(),
            json!({ "type": "Patient", "identifier": id }),
        );
        if let Some(name) = &p.name {
            m.insert("name".into(), json!(name));
        }
        entities.push(m);
    }
    for study in &e.studies {
        let mut m = entity("2", "System Object", "3", "Report");
        m.insert(
            "what".into(),
            json!({ "type": "ImagingStudy", "identifier": { "system": "urn:dicom:uid", "value": format!("urn:oid:{study}") } }),
        );
        entities.push(m);
    }
    if e.action == Action::Query
        && let Some(q) = e.detail_str("query")
    {
        let mut m = entity("2", "System Object", "24", "Query");
        m.insert("query".into(), json!(B64.encode(q)));
        if let Some(uid) = e.detail_str("sop_class") {
            m.insert("what".into(), json!({ "identifier": { "system": "urn:dicom:uid", "value": format!("urn:oid:{uid}") } }));
        }
        entities.push(m);
    }
    if c.event_id == DCM_SECURITY_ALERT
        && let Some(target) = e.detail_str("target")
    {
        let mut m = entity("1", "Person", "11", "Security User Entity");
        m.insert("what".into(), json!({ "identifier": { "value": target } }));
        entities.push(m);
    }
    let detail = match &e.detail {
        Value::Null => None,
        Value::Object(m) if m.is_empty() => None,
        d => Some(B64.encode(canonical_json(d))),
    };
    if let Some(d) = detail {
        if entities.is_empty() {
            entities.push(entity("4", "Other", "4", "Resource"));
        }
        entities[0].insert(
            "detail".into(),
            json!([{ "type": "detail", "valueBase64Binary": d }]),
        );
    }

    let mut out = Map::new();
    out.insert("resourceType".into(), json!("AuditEvent"));
    out.insert("id".into(), json!(resource_id(r)));
    out.insert(
        "extension".into(),
        json!([{
            "url": SEAL_EXTENSION_URL,
            "extension": [
                { "url": "chain", "valueString": r.chain },
                { "url": "seq", "valueString": r.seq.to_string() },
                { "url": "keyId", "valueString": r.key_id },
                { "url": "prevMac", "valueString": r.prev_mac },
                { "url": "mac", "valueString": r.mac },
            ]
        }]),
    );
    out.insert("type".into(), dcm(c.event_id));
    out.insert("subtype".into(), Value::Array(subtype));
    out.insert("action".into(), json!(c.action.code()));
    out.insert(
        "recorded".into(),
        json!(yunying_util::time::rfc3339_millis(e.at)),
    );
    out.insert("outcome".into(), json!(e.outcome.dicom().to_string()));
    if let Some(reason) = e.detail_str("reason") {
        out.insert("outcomeDesc".into(), json!(reason));
    }
    out.insert(
        "agent".into(),
        json!([Value::Object(actor), Value::Object(node)]),
    );
    out.insert(
        "source".into(),
        json!({
            "site": e.node,
            "observer": { "identifier": { "value": source_id }, "display": source_id },
            "type": [{ "system": SOURCE_TYPE, "code": "4", "display": "Application Server" }]
        }),
    );
    if !entities.is_empty() {
        out.insert(
            "entity".into(),
            Value::Array(entities.into_iter().map(Value::Object).collect()),
        );
    }
    Value::Object(out)
}

fn is_oid(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|p| {
            !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && (p == "0" || !p.starts_with('0'))
        })
        && s.contains('.')
}

/// The kind of Bundle [`bundle`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleType {
    /// The answer to a search (`GET /AuditEvent?...`): entries in search mode `match`, with `total`.
    Searchset,
    /// An export.
    Collection,
}

/// A Bundle of the records' AuditEvents. `total` (searchset only) is the
/// number of matches in all pages; the number of records given when `None`.
pub fn bundle<'a>(
    records: impl IntoIterator<Item = &'a SealedEvent>,
    source_id: &str,
    kind: BundleType,
    total: Option<u64>,
) -> Value {
    let entries: Vec<Value> = records
        .into_iter()
        .map(|r| {
            let mut entry = json!({ "resource": to_audit_event(r, source_id) });
            if kind == BundleType::Searchset {
                entry["search"] = json!({ "mode": "match" });
            }
            entry
        })
        .collect();
    let mut b = Map::new();
    b.insert("resourceType".into(), json!("Bundle"));
    match kind {
        BundleType::Searchset => {
            b.insert("type".into(), json!("searchset"));
            b.insert("total".into(), json!(total.unwrap_or(entries.len() as u64)));
        }
        BundleType::Collection => {
            b.insert("type".into(), json!("collection"));
        }
    }
    b.insert(
        "timestamp".into(),
        json!(yunying_util::time::rfc3339_millis(
            yunying_util::time::now_millis()
        )),
    );
    b.insert("entry".into(), Value::Array(entries));
    Value::Object(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::tests::{sample_event, test_mac};
    use crate::chain::{GENESIS_MAC, seal};

    #[test]
    fn read_event_shape() {
        let r = seal(
            "node a/1",
            12,
            GENESIS_MAC,
            sample_event(1),
            "k1",
            &test_mac,
        )
        .unwrap();
        let v = to_audit_event(&r, "yunying@region");
        assert_eq!(v["resourceType"], "AuditEvent");
        assert_eq!(v["id"], "node-a-1-12");
        assert_eq!(v["type"]["system"], DCM_SYSTEM);
        assert_eq!(v["type"]["code"], "110103");
        assert_eq!(v["subtype"][0]["code"], "read");
        assert_eq!(v["action"], "R");
        assert_eq!(v["recorded"], "2025-11-24T16:00:00.001Z");
        assert_eq!(v["outcome"], "0");
        let agent = &v["agent"][0];
        assert_eq!(agent["requestor"], true);
        assert_eq!(agent["who"]["identifier"]["value"], "zhang.wei");
        assert_eq!(agent["who"]["identifier"]["assigner"]["display"], "HOSP01");
        assert_eq!(agent["name"], "张伟 <\"dr\"> & co");
        assert_eq!(agent["network"]["address"], "10.1.2.3");
        assert_eq!(agent["network"]["type"], "2");
        assert_eq!(agent["type"]["coding"][0]["code"], "110152");
        assert_eq!(agent["role"][0]["coding"][0]["code"], "radiologist");
        assert_eq!(v["agent"][1]["requestor"], false);
        assert_eq!(v["agent"][1]["who"]["identifier"]["value"], "node-a");
        assert_eq!(v["source"]["observer"]["display"], "yunying@region");
        assert_eq!(v["source"]["type"][0]["code"], "4");

        let patient = &v["entity"][0];
        assert_eq!(patient["what"]["identifier"]["value"], "P1");
        assert_eq!(patient["type"]["code"], "1");
        assert_eq!(patient["role"]["code"], "1");
        assert_eq!(patient["name"], "李^娜");
        let detail = B64
            .decode(patient["detail"][0]["valueBase64Binary"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&detail).unwrap()["count"],
            1
        );
        let study = &v["entity"][1];
        assert_eq!(study["what"]["identifier"]["value"], "urn:oid:1.2.840.99.1");
        assert_eq!(study["type"]["code"], "2");
        assert_eq!(study["role"]["code"], "3");

        let seal_ext = &v["extension"][0];
        assert_eq!(seal_ext["url"], SEAL_EXTENSION_URL);
        let get = |name: &str| {
            seal_ext["extension"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["url"] == name)
                .unwrap()["valueString"]
                .clone()
        };
        assert_eq!(get("chain"), "node a/1");
        assert_eq!(get("seq"), "12");
        assert_eq!(get("mac"), r.mac.as_str());
        assert_eq!(get("prevMac"), GENESIS_MAC);
    }

    #[test]
    fn login_and_failure() {
        let e = AuditEvent::new(
            5,
            Action::LoginFailed,
            Outcome::MinorFailure,
            Actor::new(ActorKind::User, "bob", ""),
            "http",
            "n",
        )
        .with_source("10.0.0.9")
        .with_detail(json!({"reason": "bad password"}));
        let r = seal("n", 1, GENESIS_MAC, e, "k1", &test_mac).unwrap();
        let v = to_audit_event(&r, "s");
        assert_eq!(v["type"]["code"], "110114");
        assert_eq!(v["subtype"][0]["code"], "110122");
        assert_eq!(v["subtype"][1]["code"], "login-failed");
        assert_eq!(v["action"], "E");
        assert_eq!(v["outcome"], "4");
        assert_eq!(v["outcomeDesc"], "bad password");
        // The detail has an entity of its own.
        assert_eq!(v["entity"][0]["detail"][0]["type"], "detail");
        assert!(v["agent"][0].get("type").is_none());
    }

    #[test]
    fn bundles() {
        let rs: Vec<SealedEvent> = (1..=3)
            .map(|i| seal("n", i, GENESIS_MAC, sample_event(i), "k1", &test_mac).unwrap())
            .collect();
        let b = bundle(&rs, "s", BundleType::Searchset, Some(40));
        assert_eq!(b["resourceType"], "Bundle");
        assert_eq!(b["type"], "searchset");
        assert_eq!(b["total"], 40);
        assert_eq!(b["entry"].as_array().unwrap().len(), 3);
        assert_eq!(b["entry"][2]["resource"]["id"], "n-3");
        assert_eq!(b["entry"][0]["search"]["mode"], "match");
        let b = bundle(rs.iter(), "s", BundleType::Collection, None);
        assert_eq!(b["type"], "collection");
        assert!(b.get("total").is_none());
        assert!(b["entry"][0].get("search").is_none());
    }

    #[test]
    fn ids() {
        let mut r = seal("x", 1, GENESIS_MAC, sample_event(1), "k1", &test_mac).unwrap();
        r.chain = "长".repeat(100);
        let id = resource_id(&r);
        assert!(id.len() <= 64 && id.ends_with("-1"));
        assert!(is_oid("1.2.840.10008") && !is_oid("HOSP01") && !is_oid("1..2") && !is_oid("01.2"));
    }
}
