//! The keyed hash chain: how an [`AuditEvent`] is sealed into a
//! [`SealedEvent`] (its canonical bytes and MAC, linked to the previous
//! record's MAC), how a chain is verified ([`verify`]), and the [`Anchor`]
//! that seals a chain's newest position so that removing the newest records
//! is detected too.
//!
//! The MAC (HMAC-SM3 in production) is passed in as a closure
//! `mac(key_id, bytes) -> Option<[u8; 32]>` returning `None` for an unknown
//! key; this crate has no cryptography of its own.
//!
//! # Canonical bytes, version 1 (a persisted format: never change it, add `"v":2`)
//!
//! One line of compact JSON, UTF-8, no whitespace, no trailing newline,
//! with the keys in exactly this order:
//!
//! ```text
//! {"v":1,"chain":S,"seq":I,"key_id":S,"prev_mac":S,"at":I,"action":S,"outcome":S,
//!  "actor":{"kind":S,"id":S,"name":S,"institution":S|null,"roles":[S,...]},
//!  "source":S|null,"interface":S,"node":S,
//!  "patient":null|{"id":S,"issuer":S,"name":S|null},
//!  "studies":[S,...],"detail":J}
//! ```
//!
//! - `S` is a JSON string: `"` and `\` are escaped as `\"` and `\\`, every
//!   character below U+0020 as `\u00xx` (lowercase hex), everything else
//!   (including non-ASCII and U+007F) is written as raw UTF-8. No other
//!   escape form is used.
//! - `I` is a decimal integer (`-` for negatives, no leading zeros).
//! - `action`, `outcome` and `actor.kind` are their string codes; `roles`
//!   and `studies` keep their order.
//! - `J` (`detail`) is canonical JSON: object keys sorted by their UTF-8
//!   bytes at every depth, arrays in order, `null`/`true`/`false`, strings
//!   as `S`, integers (i64/u64) in decimal. A floating-point number whose
//!   value is integral and within ±2^53 is written as that integer (so `3.0`
//!   and `3` seal alike, whatever a database or a JSON tool does to them);
//!   any other float is written in Rust's `{:e}` form (shortest digits that
//!   read back to the same `f64`, e.g. `1.5e0`, `1e-7`). Floats best stay
//!   out of `detail`; these rules only keep a stored-and-reloaded event
//!   sealing to the same bytes.
//!
//! The MAC is taken over these bytes with the key named `key_id`; the
//! record stores it as lowercase hex. The first record of a chain has
//! `seq` 1 and `prev_mac` [`GENESIS_MAC`].
//!
//! The anchor's bytes are `{"v":1,"anchor":S,"seq":I,"mac":S,"key_id":S}`
//! (the chain's name under `anchor`, which no record's bytes can equal).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::AuditEvent;

/// `prev_mac` of a chain's first record: the hex of 32 zero bytes.
pub const GENESIS_MAC: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Sequence number of a chain's first record.
pub const FIRST_SEQ: i64 = 1;

/// Version of the canonical bytes written by [`canonical_bytes`].
pub const CANONICAL_VERSION: u32 = 1;

/// The MAC function: `(key id, bytes) -> MAC`, `None` when the key is unknown.
pub type MacFn<'a> = &'a dyn Fn(&str, &[u8]) -> Option<[u8; 32]>;

/// A record as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SealedEvent {
    /// The chain (one per writing node).
    pub chain: String,
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    pub event: AuditEvent,
    /// The MAC key that sealed it.
    pub key_id: String,
    /// The previous record's MAC (hex), [`GENESIS_MAC`] for the first.
    pub prev_mac: String,
    /// MAC (hex) of [`canonical_bytes`].
    pub mac: String,
}

impl SealedEvent {
    /// The canonical bytes this record's MAC covers.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        canonical_bytes(
            &self.chain,
            self.seq,
            &self.event,
            &self.key_id,
            &self.prev_mac,
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("unknown audit MAC key {0:?}")]
    UnknownKey(String),
    #[error("previous MAC is not 64 lowercase hex digits: {0:?}")]
    BadPrevMac(String),
}

/// The canonical bytes of a record (see the module documentation).
pub fn canonical_bytes(
    chain: &str,
    seq: i64,
    event: &AuditEvent,
    key_id: &str,
    prev_mac: &str,
) -> Vec<u8> {
    let mut o = String::with_capacity(512);
    o.push_str("{\"v\":1,\"chain\":");
    put_str(&mut o, chain);
    o.push_str(",\"seq\":");
    o.push_str(&seq.to_string());
    o.push_str(",\"key_id\":");
    put_str(&mut o, key_id);
    o.push_str(",\"prev_mac\":");
    put_str(&mut o, prev_mac);
    o.push_str(",\"at\":");
    o.push_str(&event.at.to_string());
    o.push_str(",\"action\":");
    put_str(&mut o, event.action.code());
    o.push_str(",\"outcome\":");
    put_str(&mut o, event.outcome.code());
    let a = &event.actor;
    o.push_str(",\"actor\":{\"kind\":");
    put_str(&mut o, a.kind.code());
    o.push_str(",\"id\":");
    put_str(&mut o, &a.id);
    o.push_str(",\"name\":");
    put_str(&mut o, &a.name);
    o.push_str(",\"institution\":");
    put_opt(&mut o, a.institution.as_deref());
    o.push_str(",\"roles\":");
    put_strs(&mut o, &a.roles);
    o.push_str("},\"source\":");
    put_opt(&mut o, event.source.as_deref());
    o.push_str(",\"interface\":");
    put_str(&mut o, &event.interface);
    o.push_str(",\"node\":");
    put_str(&mut o, &event.node);
    o.push_str(",\"patient\":");
    match &event.patient {
        None => o.push_str("null"),
        Some(p) => {
            o.push_str("{\"id\":");
            put_str(&mut o, &p.id);
            o.push_str(",\"issuer\":");
            put_str(&mut o, &p.issuer);
            o.push_str(",\"name\":");
            put_opt(&mut o, p.name.as_deref());
            o.push('}');
        }
    }
    o.push_str(",\"studies\":");
    put_strs(&mut o, &event.studies);
    o.push_str(",\"detail\":");
    put_value(&mut o, &event.detail);
    o.push('}');
    o.into_bytes()
}

/// Canonical JSON text of any value (the `detail` rules of the module
/// documentation): sorted keys, no whitespace, fixed number forms.
pub fn canonical_json(v: &Value) -> String {
    let mut o = String::new();
    put_value(&mut o, v);
    o
}

fn put_str(o: &mut String, s: &str) {
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                o.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => o.push(c),
        }
    }
    o.push('"');
}

fn put_opt(o: &mut String, s: Option<&str>) {
    match s {
        Some(s) => put_str(o, s),
        None => o.push_str("null"),
    }
}

fn put_strs(o: &mut String, items: &[String]) {
    o.push('[');
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        put_str(o, s);
    }
    o.push(']');
}

fn put_value(o: &mut String, v: &Value) {
    match v {
        Value::Null => o.push_str("null"),
        Value::Bool(b) => o.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => put_number(o, n),
        Value::String(s) => put_str(o, s),
        Value::Array(items) => {
            o.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    o.push(',');
                }
                put_value(o, item);
            }
            o.push(']');
        }
        Value::Object(map) => {
            // Sorted explicitly: serde_json's map keeps insertion order when
            // another crate turns on `preserve_order`.
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            o.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    o.push(',');
                }
                put_str(o, k);
                o.push(':');
                put_value(o, v);
            }
            o.push('}');
        }
    }
}

fn put_number(o: &mut String, n: &serde_json::Number) {
    if let Some(i) = n.as_i64() {
        o.push_str(&i.to_string());
    } else if let Some(u) = n.as_u64() {
        o.push_str(&u.to_string());
    } else if let Some(f) = n.as_f64() {
        const MAX_EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
        if f.fract() == 0.0 && f.abs() <= MAX_EXACT {
            o.push_str(&(f as i64).to_string());
        } else {
            o.push_str(&format!("{f:e}"));
        }
    } else {
        // Not reachable without serde_json's `arbitrary_precision`; its text then.
        o.push_str(&n.to_string());
    }
}

fn is_mac_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Seals `event` as record `seq` of `chain`, after the record whose MAC is
/// `prev_mac` ([`GENESIS_MAC`] for the first, `seq` [`FIRST_SEQ`]).
pub fn seal(
    chain: &str,
    seq: i64,
    prev_mac: &str,
    event: AuditEvent,
    key_id: &str,
    mac: MacFn<'_>,
) -> Result<SealedEvent, ChainError> {
    if !is_mac_hex(prev_mac) {
        return Err(ChainError::BadPrevMac(prev_mac.to_owned()));
    }
    let bytes = canonical_bytes(chain, seq, &event, key_id, prev_mac);
    let tag = mac(key_id, &bytes).ok_or_else(|| ChainError::UnknownKey(key_id.to_owned()))?;
    Ok(SealedEvent {
        chain: chain.to_owned(),
        seq,
        event,
        key_id: key_id.to_owned(),
        prev_mac: prev_mac.to_owned(),
        mac: hex::encode(tag),
    })
}

/// A problem found by [`verify`], at the record with sequence number `seq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub seq: i64,
    pub kind: ProblemKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "data", rename_all = "kebab-case")]
pub enum ProblemKind {
    /// The MAC does not match the record's content: it was changed (or its
    /// MAC was).
    Edited,
    /// Records `from..=to` are absent (found at the record after the gap).
    Missing { from: i64, to: i64 },
    /// `prev_mac` is not the previous record's MAC: records were removed and
    /// the chain re-linked, reordered, or spliced from elsewhere.
    Relinked,
    /// Sealed with a key that the MAC function does not know: not checked.
    UnknownKey(String),
    /// The sequence number does not advance (repeated, or going backwards);
    /// the record is otherwise ignored.
    Duplicate,
}

/// What [`verify`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Records examined.
    pub checked: u64,
    /// `(seq, mac)` of the last record accepted in order (compare it with the
    /// chain's [`Anchor`]); `start` when no record followed it.
    pub last: Option<(i64, String)>,
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Verifies the records of ONE chain, given in `seq` order.
///
/// `start` is the `(seq, mac)` of the record preceding the first one given,
/// when the head of the chain was archived (or verification resumes); without
/// it the records must start at [`FIRST_SEQ`] after [`GENESIS_MAC`].
///
/// Every record's MAC is recomputed ([`ProblemKind::Edited`],
/// [`ProblemKind::UnknownKey`]), its `seq` must follow the previous one
/// ([`ProblemKind::Missing`], [`ProblemKind::Duplicate`]) and its `prev_mac`
/// must be the previous record's MAC ([`ProblemKind::Relinked`]; not checked
/// across a gap, which is already reported). Removing the newest records
/// leaves a clean chain: compare [`VerifyReport::last`] with the [`Anchor`].
pub fn verify(
    records: impl Iterator<Item = SealedEvent>,
    start: Option<(i64, String)>,
    mac: MacFn<'_>,
) -> VerifyReport {
    let mut report = VerifyReport {
        checked: 0,
        last: start.clone(),
        problems: Vec::new(),
    };
    let (mut prev_seq, mut prev_mac) = start.unwrap_or((FIRST_SEQ - 1, GENESIS_MAC.to_owned()));
    for r in records {
        report.checked += 1;
        let seq = r.seq;
        match mac(&r.key_id, &r.canonical_bytes()) {
            None => report.problems.push(Problem {
                seq,
                kind: ProblemKind::UnknownKey(r.key_id.clone()),
            }),
            Some(tag) => {
                if !eq_hex(&r.mac, &tag) {
                    report.problems.push(Problem {
                        seq,
                        kind: ProblemKind::Edited,
                    });
                }
            }
        }
        if seq <= prev_seq {
            report.problems.push(Problem {
                seq,
                kind: ProblemKind::Duplicate,
            });
            continue;
        }
        if seq > prev_seq + 1 {
            report.problems.push(Problem {
                seq,
                kind: ProblemKind::Missing {
                    from: prev_seq + 1,
                    to: seq - 1,
                },
            });
        } else if r.prev_mac != prev_mac {
            report.problems.push(Problem {
                seq,
                kind: ProblemKind::Relinked,
            });
        }
        prev_seq = seq;
        prev_mac = r.mac;
        report.last = Some((prev_seq, prev_mac.clone()));
    }
    report
}

/// Compares a stored hex MAC with a computed one, without early exit.
fn eq_hex(stored: &str, tag: &[u8; 32]) -> bool {
    let Ok(bytes) = hex::decode(stored) else {
        return false;
    };
    if bytes.len() != 32 {
        return false;
    }
    bytes.iter().zip(tag).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// The canonical bytes an anchor's MAC covers.
pub fn anchor_bytes(chain: &str, seq: i64, mac: &str, key_id: &str) -> Vec<u8> {
    let mut o = String::with_capacity(160);
    o.push_str("{\"v\":1,\"anchor\":");
    put_str(&mut o, chain);
    o.push_str(",\"seq\":");
    o.push_str(&seq.to_string());
    o.push_str(",\"mac\":");
    put_str(&mut o, mac);
    o.push_str(",\"key_id\":");
    put_str(&mut o, key_id);
    o.push('}');
    o.into_bytes()
}

/// The MAC (hex) sealing `(seq, mac)` as the newest position of `chain`;
/// `None` when the key is unknown.
pub fn anchor_mac(
    chain: &str,
    seq: i64,
    mac: &str,
    key_id: &str,
    mac_fn: MacFn<'_>,
) -> Option<String> {
    mac_fn(key_id, &anchor_bytes(chain, seq, mac, key_id)).map(hex::encode)
}

/// The newest position of a chain, sealed with its own MAC. Kept beside the
/// chain and moved with every append (in the same transaction), so that
/// deleting the newest records — which leaves the remaining chain intact —
/// is detected by comparing it with the last record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    pub chain: String,
    pub seq: i64,
    pub mac: String,
    pub key_id: String,
    pub anchor_mac: String,
}

/// What comparing an [`Anchor`] with a chain found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum AnchorStatus {
    /// The chain ends where the anchor says.
    Matches,
    /// The anchor's own MAC is wrong: it was changed.
    Forged,
    /// The anchor's key is unknown: not checked.
    UnknownKey { key_id: String },
    /// The chain ends before the anchor: its newest records were removed.
    Truncated {
        anchor_seq: i64,
        last_seq: Option<i64>,
    },
    /// The record at the anchor's position has another MAC.
    Diverged { seq: i64 },
    /// The chain goes on past the anchor (an anchor not moved with the
    /// appends); check the record at the anchor's `seq` with [`Anchor::covers`].
    Behind { anchor_seq: i64, last_seq: i64 },
}

impl Anchor {
    /// Seals `(seq, mac)` as the newest position of `chain`.
    pub fn new(
        chain: &str,
        seq: i64,
        mac: &str,
        key_id: &str,
        mac_fn: MacFn<'_>,
    ) -> Result<Anchor, ChainError> {
        let anchor_mac = anchor_mac(chain, seq, mac, key_id, mac_fn)
            .ok_or_else(|| ChainError::UnknownKey(key_id.to_owned()))?;
        Ok(Anchor {
            chain: chain.to_owned(),
            seq,
            mac: mac.to_owned(),
            key_id: key_id.to_owned(),
            anchor_mac,
        })
    }

    /// The anchor of a chain whose newest record is `last`.
    pub fn of(last: &SealedEvent, key_id: &str, mac_fn: MacFn<'_>) -> Result<Anchor, ChainError> {
        Anchor::new(&last.chain, last.seq, &last.mac, key_id, mac_fn)
    }

    /// Checks the anchor's own MAC: `None` when its key is unknown.
    pub fn is_authentic(&self, mac_fn: MacFn<'_>) -> Option<bool> {
        let bytes = anchor_bytes(&self.chain, self.seq, &self.mac, &self.key_id);
        mac_fn(&self.key_id, &bytes).map(|tag| eq_hex(&self.anchor_mac, &tag))
    }

    /// Whether the record at `seq` with `mac` is the anchored one.
    pub fn covers(&self, seq: i64, mac: &str) -> bool {
        self.seq == seq && self.mac == mac
    }

    /// Compares the anchor with the end of a verified chain
    /// ([`VerifyReport::last`], or the newest record's `(seq, mac)`).
    pub fn check(&self, last: Option<&(i64, String)>, mac_fn: MacFn<'_>) -> AnchorStatus {
        match self.is_authentic(mac_fn) {
            None => {
                return AnchorStatus::UnknownKey {
                    key_id: self.key_id.clone(),
                };
            }
            Some(false) => return AnchorStatus::Forged,
            Some(true) => {}
        }
        match last {
            None => AnchorStatus::Truncated {
                anchor_seq: self.seq,
                last_seq: None,
            },
            Some((seq, _)) if *seq < self.seq => AnchorStatus::Truncated {
                anchor_seq: self.seq,
                last_seq: Some(*seq),
            },
            Some((seq, mac)) if *seq == self.seq => {
                if *mac == self.mac {
                    AnchorStatus::Matches
                } else {
                    AnchorStatus::Diverged { seq: *seq }
                }
            }
            Some((seq, _)) => AnchorStatus::Behind {
                anchor_seq: self.seq,
                last_seq: *seq,
            },
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::event::{Action, Actor, ActorKind, AuditEvent, Outcome, PatientRef};
    use serde_json::json;

    /// A toy keyed MAC for tests (not cryptographic): FNV-style mixing of
    /// key and data into 32 bytes. Knows keys `k1` and `k2`.
    pub(crate) fn test_mac(key_id: &str, data: &[u8]) -> Option<[u8; 32]> {
        let key: &[u8] = match key_id {
            "k1" => b"secret-one",
            "k2" => b"secret-two",
            _ => return None,
        };
        let mut out = [0u8; 32];
        for (lane, chunk) in out.chunks_mut(8).enumerate() {
            let mut h: u64 =
                0xcbf2_9ce4_8422_2325 ^ (lane as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            for &b in key.iter().chain(data.iter()).chain(key.iter()) {
                h ^= b as u64;
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
                h ^= h >> 29;
            }
            chunk.copy_from_slice(&h.to_le_bytes());
        }
        Some(out)
    }

    pub(crate) fn sample_event(i: i64) -> AuditEvent {
        let mut actor = Actor::new(ActorKind::User, "zhang.wei", "张伟 <\"dr\"> & co");
        actor.institution = Some("HOSP01".into());
        actor.roles = vec!["radiologist".into(), "reader".into()];
        AuditEvent::new(
            1_764_000_000_000 + i,
            Action::Read,
            Outcome::Success,
            actor,
            "http",
            "node-a",
        )
        .with_source("10.1.2.3")
        .with_patient(PatientRef {
            id: format!("P{i}"),
            issuer: "HOSP01".into(),
            name: Some("李^娜".into()),
        })
        .with_studies([format!("1.2.840.99.{i}")])
        .with_detail(json!({"z": 1, "a": {"y": [1.5, 2.0, "x\n"], "b": null}, "count": i}))
    }

    fn chain_of(n: i64) -> Vec<SealedEvent> {
        let mut out = Vec::new();
        let mut prev = GENESIS_MAC.to_owned();
        for seq in 1..=n {
            let r = seal("node-a", seq, &prev, sample_event(seq), "k1", &test_mac).unwrap();
            prev = r.mac.clone();
            out.push(r);
        }
        out
    }

    fn check(records: Vec<SealedEvent>) -> VerifyReport {
        verify(records.into_iter(), None, &test_mac)
    }

    #[test]
    fn clean_chain_verifies() {
        let c = chain_of(5);
        let report = check(c.clone());
        assert!(report.is_clean(), "{report:?}");
        assert_eq!(report.checked, 5);
        assert_eq!(report.last, Some((5, c[4].mac.clone())));
        assert_eq!(c[0].prev_mac, GENESIS_MAC);
        assert_eq!(c[1].prev_mac, c[0].mac);
    }

    #[test]
    fn edited_field_is_found_at_its_seq() {
        let mut c = chain_of(5);
        c[2].event.outcome = Outcome::MinorFailure;
        let report = check(c.clone());
        assert_eq!(
            report.problems,
            vec![Problem {
                seq: 3,
                kind: ProblemKind::Edited
            }]
        );

        let mut c2 = chain_of(5);
        c2[1].event.detail["count"] = json!(99);
        assert_eq!(
            check(c2).problems,
            vec![Problem {
                seq: 2,
                kind: ProblemKind::Edited
            }]
        );

        let mut c3 = chain_of(5);
        c3[3].event.actor.name.push(' ');
        assert_eq!(
            check(c3).problems,
            vec![Problem {
                seq: 4,
                kind: ProblemKind::Edited
            }]
        );
    }

    #[test]
    fn deleted_middle_record_is_missing() {
        let mut c = chain_of(5);
        c.remove(2);
        let report = check(c);
        assert_eq!(
            report.problems,
            vec![Problem {
                seq: 4,
                kind: ProblemKind::Missing { from: 3, to: 3 }
            }]
        );
        assert_eq!(report.checked, 4);
    }

    #[test]
    fn deleted_and_renumbered_is_found() {
        // Remove seq 3 and renumber the rest: MACs no longer match and the link breaks.
        let mut c = chain_of(5);
        c.remove(2);
        for r in c.iter_mut().skip(2) {
            r.seq -= 1;
        }
        let report = check(c);
        assert!(report.problems.contains(&Problem {
            seq: 3,
            kind: ProblemKind::Edited
        }));
        assert!(report.problems.contains(&Problem {
            seq: 3,
            kind: ProblemKind::Relinked
        }));
    }

    #[test]
    fn swapped_records_are_found() {
        // Swapping two rows whole: the order breaks.
        let mut c = chain_of(5);
        c.swap(1, 2);
        let report = check(c);
        assert!(!report.is_clean());
        assert!(report.problems.contains(&Problem {
            seq: 3,
            kind: ProblemKind::Missing { from: 2, to: 2 }
        }));
        assert!(report.problems.contains(&Problem {
            seq: 2,
            kind: ProblemKind::Duplicate
        }));

        // Swapping the events between two positions: both fail their MAC.
        let mut c = chain_of(5);
        let e1 = c[1].event.clone();
        c[1].event = c[2].event.clone();
        c[2].event = e1;
        let report = check(c);
        assert!(report.problems.contains(&Problem {
            seq: 2,
            kind: ProblemKind::Edited
        }));
        assert!(report.problems.contains(&Problem {
            seq: 3,
            kind: ProblemKind::Edited
        }));

        // Swapping everything but seq (a re-sealed order needs the key): MACs and links break.
        let mut c = chain_of(5);
        let (s1, s2) = (c[1].seq, c[2].seq);
        c.swap(1, 2);
        c[1].seq = s1;
        c[2].seq = s2;
        let report = check(c);
        assert!(
            report
                .problems
                .iter()
                .any(|p| p.kind == ProblemKind::Relinked)
        );
        assert!(
            report
                .problems
                .iter()
                .any(|p| p.kind == ProblemKind::Edited)
        );
    }

    #[test]
    fn duplicate_is_found() {
        let mut c = chain_of(3);
        c.insert(2, c[1].clone());
        let report = check(c);
        assert_eq!(
            report.problems,
            vec![Problem {
                seq: 2,
                kind: ProblemKind::Duplicate
            }]
        );
    }

    #[test]
    fn unknown_key_and_key_rotation() {
        let mut c = chain_of(2);
        // Rotate to k2 for seq 3.
        let r3 = seal("node-a", 3, &c[1].mac, sample_event(3), "k2", &test_mac).unwrap();
        c.push(r3);
        assert!(check(c.clone()).is_clean());
        // A verifier that no longer knows k2.
        let only_k1 = |k: &str, d: &[u8]| if k == "k1" { test_mac(k, d) } else { None };
        let report = verify(c.clone().into_iter(), None, &only_k1);
        assert_eq!(
            report.problems,
            vec![Problem {
                seq: 3,
                kind: ProblemKind::UnknownKey("k2".into())
            }]
        );
        assert_eq!(
            seal("c", 1, GENESIS_MAC, sample_event(1), "nope", &test_mac),
            Err(ChainError::UnknownKey("nope".into()))
        );
        assert!(matches!(
            seal("c", 1, "xyz", sample_event(1), "k1", &test_mac),
            Err(ChainError::BadPrevMac(_))
        ));
        // A record relabelled with another key: its MAC fails.
        c[0].key_id = "k2".into();
        assert_eq!(
            check(c).problems,
            vec![Problem {
                seq: 1,
                kind: ProblemKind::Edited
            }]
        );
    }

    #[test]
    fn start_point_for_an_archived_head() {
        let c = chain_of(5);
        let start = Some((2, c[1].mac.clone()));
        let report = verify(c[2..].iter().cloned(), start.clone(), &test_mac);
        assert!(report.is_clean(), "{report:?}");
        assert_eq!(report.checked, 3);
        // Without the start point, the head is missing.
        let report = verify(c[2..].iter().cloned(), None, &test_mac);
        assert_eq!(
            report.problems,
            vec![Problem {
                seq: 3,
                kind: ProblemKind::Missing { from: 1, to: 2 }
            }]
        );
        // Wrong start mac: relinked.
        let report = verify(
            c[2..].iter().cloned(),
            Some((2, GENESIS_MAC.into())),
            &test_mac,
        );
        assert_eq!(
            report.problems,
            vec![Problem {
                seq: 3,
                kind: ProblemKind::Relinked
            }]
        );
        // Nothing after the start: last is the start.
        let report = verify(std::iter::empty(), start.clone(), &test_mac);
        assert_eq!(report.last, start);
    }

    #[test]
    fn anchor_detects_removal_of_the_newest_record() {
        let mut c = chain_of(5);
        let anchor = Anchor::of(&c[4], "k1", &test_mac).unwrap();
        let report = check(c.clone());
        assert_eq!(
            anchor.check(report.last.as_ref(), &test_mac),
            AnchorStatus::Matches
        );

        c.pop();
        let report = check(c.clone());
        assert!(report.is_clean(), "the remaining chain is intact");
        assert_eq!(
            anchor.check(report.last.as_ref(), &test_mac),
            AnchorStatus::Truncated {
                anchor_seq: 5,
                last_seq: Some(4)
            }
        );
        assert_eq!(
            anchor.check(None, &test_mac),
            AnchorStatus::Truncated {
                anchor_seq: 5,
                last_seq: None
            }
        );

        // Moving the anchor back needs the key.
        let mut forged = anchor.clone();
        forged.seq = 4;
        forged.mac = c[3].mac.clone();
        assert_eq!(
            forged.check(report.last.as_ref(), &test_mac),
            AnchorStatus::Forged
        );

        // An anchor left behind by later appends.
        let old = Anchor::of(&c[2], "k1", &test_mac).unwrap();
        assert_eq!(
            old.check(report.last.as_ref(), &test_mac),
            AnchorStatus::Behind {
                anchor_seq: 3,
                last_seq: 4
            }
        );
        assert!(old.covers(3, &c[2].mac));
        assert_eq!(
            anchor_mac("node-a", 5, &anchor.mac, "k1", &test_mac),
            Some(anchor.anchor_mac.clone())
        );
        assert_eq!(anchor_mac("node-a", 5, &anchor.mac, "k9", &test_mac), None);
    }

    #[test]
    fn canonical_bytes_survive_a_storage_round_trip() {
        for r in chain_of(3) {
            let stored = serde_json::to_string(&r.event).unwrap();
            let loaded: AuditEvent = serde_json::from_str(&stored).unwrap();
            assert_eq!(loaded.canonical_check(&r), r.canonical_bytes());
            // Through a generic Value too (what a JSON column hands back).
            let v: Value = serde_json::from_str(&stored).unwrap();
            let loaded: AuditEvent = serde_json::from_value(v).unwrap();
            assert_eq!(loaded.canonical_check(&r), r.canonical_bytes());
            // The whole record.
            let whole: SealedEvent =
                serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
            assert!(
                verify(
                    std::iter::once(whole),
                    Some((r.seq - 1, r.prev_mac.clone())),
                    &test_mac
                )
                .is_clean()
            );
        }
    }

    impl AuditEvent {
        fn canonical_check(&self, r: &SealedEvent) -> Vec<u8> {
            canonical_bytes(&r.chain, r.seq, self, &r.key_id, &r.prev_mac)
        }
    }

    #[test]
    fn canonical_bytes_layout() {
        let e = AuditEvent::new(
            42,
            Action::Login,
            Outcome::Success,
            Actor::new(ActorKind::User, "u\u{1}", "王"),
            "http",
            "n",
        )
        .with_detail(json!({"b": 3.0, "a": [1e-7, -0.0, 1.5, 18446744073709551615u64], "c": {"y": 1, "x": "\"\\"}}));
        let got = String::from_utf8(canonical_bytes("c1", 7, &e, "k1", GENESIS_MAC)).unwrap();
        let want = format!(
            concat!(
                r#"{{"v":1,"chain":"c1","seq":7,"key_id":"k1","prev_mac":"{}","at":42,"action":"login","outcome":"success","#,
                r#""actor":{{"kind":"user","id":"u\u0001","name":"王","institution":null,"roles":[]}},"#,
                r#""source":null,"interface":"http","node":"n","patient":null,"studies":[],"#,
                r#""detail":{{"a":[1e-7,0,1.5e0,18446744073709551615],"b":3,"c":{{"x":"\"\\","y":1}}}}}}"#
            ),
            GENESIS_MAC
        );
        assert_eq!(got, want);
        // Key order of the input does not matter; 3.0 and 3 seal alike.
        let mut e2 = e.clone();
        e2.detail = json!({"c": {"x": "\"\\", "y": 1}, "b": 3, "a": [1e-7, 0, 1.5, 18446744073709551615u64]});
        assert_eq!(
            canonical_bytes("c1", 7, &e2, "k1", GENESIS_MAC),
            got.as_bytes()
        );
        // The canonical bytes are themselves valid JSON.
        let _: Value = serde_json::from_str(&got).unwrap();
        // Anchor bytes differ in shape from any record's.
        assert!(
            String::from_utf8(anchor_bytes("c1", 7, GENESIS_MAC, "k1"))
                .unwrap()
                .starts_with(r#"{"v":1,"anchor":"c1""#)
        );
    }
}
