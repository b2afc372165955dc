//! `yunying reindex`: rebuilds the image catalog from the blob store alone.
//!
//! Reads every ingest journal blob (`journal/v1/`, in the order the batches
//! were committed) and every original object (`dicom/v1/`), and commits each
//! object's rows through the archive's ingest code without storing it again
//! (see `yunying_archive::ReindexPrepared`). Objects stored by an earlier
//! release, without a journal line, are indexed first, with the defaults
//! (default institution, `reindex` as sender, now as time), and those facts
//! are journaled so that a later rebuild gives the same catalog.
//!
//! Users, institutions' names and reach, the AE registry, tokens and the
//! audit trail are not in the blob store: they come from the catalog backup
//! (`yunying restore`); `reindex --merge` then adds the images stored since.
//! An institution the journal names and the catalog lacks is created with
//! its code as name.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use futures::{StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use yunying_archive::journal::{self, JournalLine, JournalName};
use yunying_archive::{Archive, IngestStatus, ReindexFacts};
use yunying_index::NewInstitution;

/// Re-index settings.
pub struct ReindexOptions {
    /// Adds what the catalog lacks instead of refusing a catalog that holds instances.
    pub merge: bool,
    /// Objects read and parsed at once.
    pub parallel: usize,
    pub progress: bool,
}

/// What a re-index did.
#[derive(Debug, Default, Clone)]
pub struct ReindexSummary {
    /// Original objects in the store.
    pub objects: usize,
    /// Indexed as first versions.
    pub indexed: usize,
    /// Indexed as later versions of a SOP instance.
    pub new_versions: usize,
    /// Already in the catalog (with --merge, or identical copies).
    pub already_present: usize,
    /// Objects without a journal line, indexed with the defaults.
    pub without_journal: usize,
    pub journal_blobs: usize,
    pub journal_lines: usize,
    /// Journal lines whose object is not in the store (refused by the
    /// catalog when received, or deleted since).
    pub lines_without_object: usize,
    /// Journal lines that could not be read (blob key: line, reason).
    pub bad_lines: Vec<String>,
    /// Institutions the journal names that the catalog lacked (created).
    pub institutions_created: Vec<String>,
    pub failed: usize,
    /// Failure reasons with their counts and one example key each.
    pub reasons: BTreeMap<String, (usize, String)>,
    pub seconds: f64,
}

impl std::fmt::Display for ReindexSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "reindex summary")?;
        writeln!(f, "  objects in the store   {}", self.objects)?;
        writeln!(f, "  indexed                {}", self.indexed)?;
        writeln!(f, "  new versions           {}", self.new_versions)?;
        writeln!(f, "  already present        {}", self.already_present)?;
        writeln!(f, "  failed                 {}", self.failed)?;
        writeln!(f, "  without journal line   {} (default institution, received now)", self.without_journal)?;
        writeln!(f, "  journal                {} lines in {} blobs", self.journal_lines, self.journal_blobs)?;
        writeln!(f, "  lines without object   {}", self.lines_without_object)?;
        let rate = if self.seconds > 0.0 { self.objects as f64 / self.seconds } else { 0.0 };
        writeln!(f, "  time                   {:.1} s ({rate:.0} objects/s)", self.seconds)?;
        for code in &self.institutions_created {
            writeln!(f, "  ! institution {code} was created with its code as name: restore the catalog backup for its names, AEs and users")?;
        }
        for bad in &self.bad_lines {
            writeln!(f, "  ! unreadable journal line {bad}")?;
        }
        for (reason, (n, example)) in &self.reasons {
            writeln!(f, "  - {n} × {reason} (e.g. {example})")?;
        }
        Ok(())
    }
}

/// One object to index, in commit order.
struct Planned {
    key: String,
    facts: ReindexFacts,
}

/// Runs a re-index.
pub async fn run(archive: Arc<Archive>, opts: ReindexOptions) -> Result<ReindexSummary, String> {
    let started = Instant::now();
    let index = archive.index().clone();
    let counts = index.counts().await.map_err(|e| e.to_string())?;
    if counts.instance_versions > 0 && !opts.merge {
        return Err(format!(
            "the catalog already holds {} instances: reindex rebuilds an empty catalog (give --merge to add only what it lacks)",
            counts.instance_versions
        ));
    }
    let mut summary = ReindexSummary::default();
    let blobs = archive.blobs().clone();

    // 1. The journal, in commit order: lines reindex assumed first (their
    // objects predate the journal), then the real ones.
    let mut names: Vec<(JournalName, String)> = blobs
        .list(journal::JOURNAL_ROOT)
        .await
        .map_err(|e| format!("cannot list the journal: {e}"))?
        .into_iter()
        .filter_map(|k| Some((JournalName::parse(&k)?, k)))
        .collect();
    names.sort();
    summary.journal_blobs = names.len();
    let (mut assumed, mut real) = (Vec::new(), Vec::new());
    for (_, key) in &names {
        let bytes: Vec<u8> = blobs
            .get(key)
            .await
            .map_err(|e| format!("cannot read journal blob {key}: {e}"))?
            .try_fold(Vec::new(), |mut acc, chunk| async move {
                acc.extend_from_slice(&chunk);
                Ok(acc)
            })
            .await
            .map_err(|e| format!("cannot read journal blob {key}: {e}"))?;
        let (lines, bad) = journal::decode(&bytes);
        summary.bad_lines.extend(bad.into_iter().map(|(n, why)| format!("{key}:{n}: {why}")));
        summary.journal_lines += lines.len();
        for l in lines {
            if l.assumed { assumed.push(l) } else { real.push(l) }
        }
    }

    // 2. The objects.
    let stored: HashSet<String> = blobs
        .list("dicom/")
        .await
        .map_err(|e| format!("cannot list the blob store: {e}"))?
        .into_iter()
        .filter(|k| yunying_archive::keys::uids_of(k).is_some())
        .collect();
    summary.objects = stored.len();

    // 3. The plan: objects with assumed lines, then objects without any line
    // (by key), then the journal's order. A key's first line counts.
    let journaled: HashSet<&str> = assumed.iter().chain(&real).map(|l| l.key.as_str()).collect();
    let mut unjournaled: Vec<&String> = stored.iter().filter(|k| !journaled.contains(k.as_str())).collect();
    unjournaled.sort();
    summary.without_journal = unjournaled.len();
    let now = yunying_util::time::now_millis();
    let mut planned: HashSet<String> = HashSet::new();
    let mut plan = Vec::with_capacity(stored.len());
    let mut follow = |lines: &[JournalLine], plan: &mut Vec<Planned>, summary: &mut ReindexSummary| {
        for l in lines {
            if !stored.contains(&l.key) {
                summary.lines_without_object += 1;
            } else if planned.insert(l.key.clone()) {
                plan.push(Planned { key: l.key.clone(), facts: ReindexFacts::Journaled(l.clone()) });
            }
        }
    };
    follow(&assumed, &mut plan, &mut summary);
    plan.extend(unjournaled.into_iter().map(|k| Planned { key: k.clone(), facts: ReindexFacts::Assumed { at: now } }));
    follow(&real, &mut plan, &mut summary);

    // 4. Institutions the journal names that the catalog lacks.
    let known: HashSet<String> = index.institutions().await.map_err(|e| e.to_string())?.into_iter().map(|i| i.code).collect();
    let mut missing: Vec<&str> = plan
        .iter()
        .filter_map(|p| match &p.facts {
            ReindexFacts::Journaled(l) if !known.contains(&l.institution) => Some(l.institution.as_str()),
            _ => None,
        })
        .collect();
    missing.sort();
    missing.dedup();
    for code in missing {
        index
            .upsert_institution(&NewInstitution {
                code: code.to_string(),
                name_zh: code.to_string(),
                name_en: code.to_string(),
                patient_id_issuer: None,
                ae_titles: vec![],
            })
            .await
            .map_err(|e| format!("cannot create institution {code}: {e}"))?;
        summary.institutions_created.push(code.to_string());
    }

    // 5. Read and parse in parallel, commit in plan order.
    let bar = if opts.progress { ProgressBar::new(plan.len() as u64) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} objects  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let merge = opts.merge;
    let mut prepared = futures::stream::iter(plan)
        .map(|p| {
            let archive = archive.clone();
            async move {
                if merge {
                    match archive.index().blob_key_indexed(&p.key).await {
                        Ok(true) => return (p.key, Ok(None)),
                        Ok(false) => {}
                        Err(e) => return (p.key, Err(format!("catalog error: {e}"))),
                    }
                }
                let r = archive.prepare_reindex(&p.key, &p.facts).await.map(Some).map_err(|e| e.message);
                (p.key, r)
            }
        })
        .buffered(opts.parallel.max(1));
    let mut waiting: VecDeque<(String, tokio::task::JoinHandle<Result<IngestStatus, yunying_archive::IngestError>>)> =
        VecDeque::new();
    let mut failures: HashMap<String, (usize, String)> = HashMap::new();
    let mut settle = |summary: &mut ReindexSummary, key: String, r: Result<IngestStatus, String>| {
        match r {
            Ok(IngestStatus::Stored) => summary.indexed += 1,
            Ok(IngestStatus::NewVersion { .. }) => summary.new_versions += 1,
            Ok(IngestStatus::Duplicate) => summary.already_present += 1,
            Err(why) => {
                summary.failed += 1;
                failures.entry(why).or_insert((0, key)).0 += 1;
            }
        }
        bar.inc(1);
    };
    let joined = |r: Result<Result<IngestStatus, yunying_archive::IngestError>, tokio::task::JoinError>| {
        r.map_err(|e| e.to_string()).and_then(|r| r.map_err(|e| e.message))
    };
    while let Some((key, r)) = prepared.next().await {
        match r {
            Ok(None) => settle(&mut summary, key, Ok(IngestStatus::Duplicate)),
            Err(why) => settle(&mut summary, key, Err(why)),
            Ok(Some(p)) => match archive.queue_reindex(p).await {
                Ok(wait) => waiting.push_back((key, tokio::spawn(wait))),
                Err(e) => settle(&mut summary, key, Err(e.message)),
            },
        }
        while waiting.len() > 512 {
            let (key, h) = waiting.pop_front().expect("non-empty");
            settle(&mut summary, key, joined(h.await));
        }
    }
    for (key, h) in waiting {
        settle(&mut summary, key, joined(h.await));
    }
    bar.finish_and_clear();
    summary.reasons = failures.into_iter().collect();
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}
