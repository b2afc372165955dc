//! The ingest journal, format v1: the facts of an ingest that the stored
//! object does not carry (the institution it was received for, its patient
//! ID issuer, who sent it and when), written to the blob store so that the
//! catalog can be rebuilt from the store alone (`yunying reindex`).
//!
//! The group committer writes one journal blob per batch, durably, before it
//! commits the batch's catalog transaction: nothing is acknowledged without
//! its journal line. Blobs are named
//! `journal/v1/{yyyy}/{mm}/{dd}/{node}-{unix_ms:013}-{run}-{seq:08}.jsonl`
//! (UTC date; `run` is random per process, so that two processes of one
//! node never share a name) and hold one JSON object per line, in commit
//! order: see [`JournalLine`]. Replaying the lines in [`JournalName`] order
//! commits the objects in the order they were first committed, which
//! reproduces the version order of a SOP instance's versions.
//! A line whose object is absent was refused by the catalog (its blob was
//! removed) or deleted since.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// Where journal blobs live.
pub const JOURNAL_ROOT: &str = "journal/v1/";

/// One ingested object, as journaled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalLine {
    /// Format version of the line (1).
    pub v: u32,
    /// The object's key in the blob store (`dicom/v1/...`).
    pub key: String,
    /// SHA-256 of the object's bytes (hex).
    pub sha256: String,
    /// Size of the object in bytes.
    pub size: u64,
    /// Code of the institution the object was received for.
    pub institution: String,
    /// The issuer that scopes the object's Patient ID.
    pub issuer: String,
    /// `channel:peer` (`dimse:CT_ROOM2`, `stow:10.1.2.3`, `import:/path`).
    pub from: String,
    /// When it was received (unix ms).
    pub at: i64,
    /// True when these facts are defaults chosen by `reindex` for an object
    /// stored without a journal line (by an earlier release): replayed
    /// before every real line, as such objects were stored before them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub assumed: bool,
}

/// The version of [`JournalLine`] this release writes.
pub const LINE_VERSION: u32 = 1;

/// Encodes a batch's lines (one JSON object per line).
pub fn encode(lines: &[JournalLine]) -> bytes::Bytes {
    let mut out = Vec::with_capacity(lines.len() * 320);
    for l in lines {
        // A line of plain strings and numbers always serialises.
        serde_json::to_writer(&mut out, l).expect("journal line serialises");
        out.push(b'\n');
    }
    out.into()
}

/// Decodes a journal blob: its lines, and the errors of lines that could
/// not be read (1-based line number, reason).
pub fn decode(bytes: &[u8]) -> (Vec<JournalLine>, Vec<(usize, String)>) {
    let (mut lines, mut bad) = (Vec::new(), Vec::new());
    for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<JournalLine>(raw) {
            Ok(l) if l.v == LINE_VERSION => lines.push(l),
            Ok(l) => bad.push((i + 1, format!("line version {} is not known to this release", l.v))),
            Err(e) => bad.push((i + 1, e.to_string())),
        }
    }
    (lines, bad)
}

/// The parts of a journal blob's name, ordered as the batches were committed
/// (time first; ties, which only different processes can make, by node,
/// run and sequence).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct JournalName {
    pub unix_ms: i64,
    pub node: String,
    pub run: String,
    pub seq: u64,
}

impl JournalName {
    /// Parses a key written by [`JournalWriter::next_key`]; `None` for other keys.
    pub fn parse(key: &str) -> Option<JournalName> {
        let file = key.strip_prefix(JOURNAL_ROOT)?.rsplit('/').next()?.strip_suffix(".jsonl")?;
        let mut parts = file.rsplitn(4, '-');
        let seq = parts.next()?.parse().ok()?;
        let run = parts.next()?.to_string();
        let unix_ms = parts.next()?.parse().ok()?;
        let node = parts.next()?.to_string();
        Some(JournalName { unix_ms, node, run, seq })
    }
}

/// Names the journal blobs of one process.
#[derive(Debug)]
pub struct JournalWriter {
    node: String,
    run: String,
    seq: AtomicU64,
}

impl JournalWriter {
    /// `node` is this node's name (characters a key cannot hold become `_`).
    pub fn new(node: &str) -> JournalWriter {
        let node: String =
            node.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
        let run = hex::encode(&uuid::Uuid::new_v4().as_bytes()[..4]);
        JournalWriter { node: if node.is_empty() { "node".into() } else { node }, run, seq: AtomicU64::new(0) }
    }

    /// The key of the next batch's journal blob, written at `unix_ms`.
    pub fn next_key(&self, unix_ms: i64) -> String {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let (y, m, d) = yunying_util::time::civil_from_days(unix_ms.div_euclid(86_400_000));
        format!("{JOURNAL_ROOT}{y:04}/{m:02}/{d:02}/{}-{unix_ms:013}-{}-{seq:08}.jsonl", self.node, self.run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(key: &str) -> JournalLine {
        JournalLine {
            v: 1,
            key: key.into(),
            sha256: "ab".repeat(32),
            size: 42,
            institution: "SZRMYY".into(),
            issuer: "SZRMYY".into(),
            from: "dimse:CT-2".into(),
            at: 1_764_000_000_000,
            assumed: false,
        }
    }

    #[test]
    fn names_sort_as_batches_were_written() {
        let w = JournalWriter::new("node-1/a");
        let a = w.next_key(1_764_115_200_000);
        let b = w.next_key(1_764_115_200_000);
        yunying_blob::validate_key(&a).unwrap();
        assert!(a.starts_with("journal/v1/2025/11/26/node-1_a-1764115200000-"), "{a}");
        let (na, nb) = (JournalName::parse(&a).unwrap(), JournalName::parse(&b).unwrap());
        assert_eq!(na.node, "node-1_a");
        assert_eq!(na.unix_ms, 1_764_115_200_000);
        assert!(na < nb);
        assert!(nb < JournalName::parse(&w.next_key(1_764_115_200_001)).unwrap());
        assert_eq!(JournalName::parse("dicom/v1/ab/cd/x.dcm"), None);
    }

    #[test]
    fn lines_round_trip_and_bad_lines_are_reported() {
        let mut assumed = line("dicom/v1/b");
        assumed.assumed = true;
        let bytes = encode(&[line("dicom/v1/a"), assumed.clone()]);
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(!text.lines().next().unwrap().contains("assumed"));
        let mut damaged = bytes.to_vec();
        damaged.extend_from_slice(b"{\"v\":1,\"key\":\n{\"v\":2}\n\n");
        let (lines, bad) = decode(&damaged);
        assert_eq!(lines, vec![line("dicom/v1/a"), assumed]);
        assert_eq!(bad.len(), 2);
        assert_eq!(bad[0].0, 3);
    }
}
