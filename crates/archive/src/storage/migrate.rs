//! Moving the archive from one store to another (a new cloud vendor, a new
//! on-premises object store).
//!
//! A migration walks the catalog's objects (every version) in row order and
//! copies each one the source holds to the target, then reads the target's
//! copy back whole and compares its SHA-256 and size with the catalog's. Its
//! progress is a storage task in the catalog, saved after every page, so a
//! migration stopped at any point (a crash, `kill -9`, a restart) resumes
//! where it was; an object copied before the stop is recognised by its
//! checksum and not sent again. Objects stored while it runs are taken too
//! (the extent grows until it catches up); during the cut-over the target is
//! configured as the mirror, so that every new object is written to both.
//!
//! The ingest journal (`journal/v1/`, not in the catalog) is copied too, so
//! that the new store can rebuild the catalog as the old one could.
//!
//! Emptying the old store ([`purge`]) is refused until a migration from it
//! has finished with every object verified and no problem, and the objects
//! stored since are all found in the target.

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use yunying_blob::{BlobStore, Sha256Digest};
use yunying_index::{BlobProblem, BlobRecord, Index, StorageTask};

use super::cloud_copy::{Copied, copy_object};
use crate::ArchiveError;

/// A store with its configured name.
#[derive(Clone)]
pub struct NamedStore {
    pub name: String,
    pub store: Arc<dyn BlobStore>,
}

/// How a migration runs.
#[derive(Debug, Clone)]
pub struct MigrateOptions {
    /// Objects copied at once.
    pub concurrency: usize,
    /// Objects per page (the progress is saved after each).
    pub page: u32,
    /// Whether the source must hold every object (the local tier does; a
    /// cloud tier holds only recent exams, so its absent objects are skipped).
    pub source_holds_everything: bool,
}

impl Default for MigrateOptions {
    fn default() -> Self {
        MigrateOptions { concurrency: 8, page: 256, source_holds_everything: true }
    }
}

/// What a migration run did (the task holds the totals over every run).
#[derive(Debug, Clone)]
pub struct MigrateReport {
    pub task: StorageTask,
    /// Whether this run continued an earlier one.
    pub resumed: bool,
    /// Objects this run sent, and those the target already held.
    pub sent: u64,
    pub already_there: u64,
    pub bytes_sent: u64,
    /// Journal blobs sent (the ingest journal travels with the objects).
    pub journal_sent: u64,
    pub seconds: f64,
}

/// Runs (or resumes) the migration from `from` to `to`.
pub async fn migrate(
    index: &Arc<dyn Index>,
    from: &NamedStore,
    to: &NamedStore,
    opts: &MigrateOptions,
    mut progress: impl FnMut(&StorageTask, &MigrateReport),
) -> Result<MigrateReport, ArchiveError> {
    if from.name == to.name {
        return Err(ArchiveError::Config("a migration needs two different stores".into()));
    }
    // Tasks name stores by what they are (bucket and endpoint, or folder),
    // so that renaming them in the configuration after a cut-over keeps the record.
    let (from_id, to_id) = (from.store.describe(), to.store.describe());
    if from_id == to_id {
        return Err(ArchiveError::Config(format!("{} and {} are the same store ({from_id})", from.name, to.name)));
    }
    let now = yunying_util::time::now_millis();
    let earlier = index.storage_tasks(Some(StorageTask::MIGRATE), 1000).await?;
    let running = earlier
        .into_iter()
        .find(|t| t.state == StorageTask::RUNNING && t.source == from_id && t.target.as_deref() == Some(to_id.as_str()));
    let resumed = running.is_some();
    let mut task = match running {
        Some(t) => t,
        None => {
            let last = index.max_instance_id().await?;
            index.create_storage_task(StorageTask::MIGRATE, &from_id, Some(&to_id), last, now).await?
        }
    };
    let started = Instant::now();
    let mut report =
        MigrateReport { task: task.clone(), resumed, sent: 0, already_there: 0, bytes_sent: 0, journal_sent: 0, seconds: 0.0 };
    loop {
        let page = index.blob_records(task.cursor_id, task.last_id, opts.page).await?;
        let Some(last) = page.last() else {
            // Caught up with the extent: objects stored meanwhile extend it.
            let newest = index.max_instance_id().await?;
            if newest > task.last_id {
                task.last_id = newest;
                continue;
            }
            break;
        };
        let last_id = last.id;
        let results: Vec<(BlobRecord, Result<Option<Copied>, String>)> = futures::stream::iter(page)
            .map(|rec| async move {
                let r = copy_one(from, to, &rec).await;
                (rec, r)
            })
            .buffer_unordered(opts.concurrency.max(1))
            .collect()
            .await;
        for (rec, r) in results {
            match r {
                Ok(Some(how)) => {
                    task.objects += 1;
                    task.bytes += rec.size_bytes;
                    match how {
                        Copied::Sent => {
                            report.sent += 1;
                            report.bytes_sent += rec.size_bytes.max(0) as u64;
                        }
                        Copied::AlreadyThere => report.already_there += 1,
                    }
                }
                Ok(None) if !opts.source_holds_everything => task.skipped += 1,
                Ok(None) => {
                    problem(index, &mut task, &from.name, &rec, "missing", "absent from the source store".into()).await?
                }
                Err(detail) => problem(index, &mut task, &to.name, &rec, "copy-failed", detail).await?,
            }
        }
        task.cursor_id = last_id;
        task.updated_at = yunying_util::time::now_millis();
        index.save_storage_task(&task).await?;
        report.seconds = started.elapsed().as_secs_f64();
        report.task = task.clone();
        progress(&task, &report);
    }
    // The ingest journal (what `yunying reindex` rebuilds the catalog from)
    // goes with the objects; it is not in the catalog, so it is listed.
    for key in from.store.list(crate::journal::JOURNAL_ROOT).await? {
        match copy_journal(from.store.as_ref(), to.store.as_ref(), &key).await {
            Ok(true) => report.journal_sent += 1,
            Ok(false) => {}
            Err(e) => {
                let rec = BlobRecord { id: 0, blob_key: key.clone(), sha256: String::new(), size_bytes: 0, in_cloud: false };
                problem(index, &mut task, &to.name, &rec, "copy-failed", format!("journal: {e}")).await?;
            }
        }
    }
    let now = yunying_util::time::now_millis();
    task.state = if task.problems == 0 { StorageTask::DONE } else { StorageTask::PROBLEMS }.into();
    task.finished_at = Some(now);
    task.updated_at = now;
    index.save_storage_task(&task).await?;
    report.seconds = started.elapsed().as_secs_f64();
    report.task = task;
    Ok(report)
}

/// Copies one journal blob unless the target holds the same bytes; reads
/// the copy back. `true` when it was sent.
async fn copy_journal(from: &dyn BlobStore, to: &dyn BlobStore, key: &str) -> Result<bool, yunying_blob::BlobError> {
    let bytes = super::cloud_copy::read_all(from, key).await?;
    let want = Sha256Digest::of(&bytes);
    if to.head(key).await?.is_some() {
        if to.content_sha256(key).await? == want {
            return Ok(false);
        }
        to.delete(key).await?;
    }
    to.put_bytes(key, bytes).await?;
    to.verify(key, Some(&want)).await?;
    Ok(true)
}

async fn problem(
    index: &Arc<dyn Index>,
    task: &mut StorageTask,
    store: &str,
    rec: &BlobRecord,
    what: &str,
    detail: String,
) -> Result<(), ArchiveError> {
    tracing::error!(key = %rec.blob_key, store, what, %detail, "migration");
    task.problems += 1;
    task.last_error = Some(format!("{}: {detail}", rec.blob_key));
    index
        .record_blob_problem(&BlobProblem {
            id: 0,
            store: store.into(),
            blob_key: rec.blob_key.clone(),
            instance_id: Some(rec.id),
            problem: what.into(),
            detail,
            found_at: yunying_util::time::now_millis(),
            resolved_at: None,
            resolution: None,
        })
        .await?;
    Ok(())
}

/// Copies one object and reads the target's copy back: `None` when the
/// source does not hold it. Four requests for an object to send (the
/// target's record, the source's bytes, the upload, the read-back).
async fn copy_one(from: &NamedStore, to: &NamedStore, rec: &BlobRecord) -> Result<Option<Copied>, String> {
    let how = match copy_object(from.store.as_ref(), to.store.as_ref(), rec).await {
        Ok(how) => how,
        // copy_object handles an absent target itself: NotFound is the source's.
        Err(yunying_blob::BlobError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    verify_copy(to.store.as_ref(), rec).await?;
    Ok(Some(how))
}

/// Reads the target's copy back whole: its content's SHA-256 and its size
/// must be the catalog's.
async fn verify_copy(store: &dyn BlobStore, rec: &BlobRecord) -> Result<(), String> {
    use futures::TryStreamExt;
    use sha2::Digest;
    let want = Sha256Digest::from_hex(&rec.sha256).ok_or("the catalog's checksum is not SHA-256 hex")?;
    let mut stream = store.get(&rec.blob_key).await.map_err(|e| format!("verification: {e}"))?;
    let (mut hasher, mut size) = (sha2::Sha256::new(), 0u64);
    while let Some(chunk) = stream.try_next().await.map_err(|e| format!("verification: {e}"))? {
        hasher.update(&chunk);
        size += chunk.len() as u64;
    }
    let got = Sha256Digest(hasher.finalize().into());
    if got != want {
        return Err(format!("verification: the copy's SHA-256 is {got}, the catalog's {want}"));
    }
    if size as i64 != rec.size_bytes {
        return Err(format!("verification: the copy has {size} bytes, the catalog says {}", rec.size_bytes));
    }
    Ok(())
}

/// Why a purge is refused.
#[derive(Debug, thiserror::Error)]
pub enum PurgeRefused {
    #[error("no finished migration from {0} exists: run `yunying storage migrate --from {0} --to <store>` first")]
    NoMigration(String),
    #[error("the migration from {from} to {to} is still running ({done} of about {total} objects): finish it first")]
    Unfinished { from: String, to: String, done: i64, total: i64 },
    #[error("the migration from {from} to {to} finished with {problems} problem(s): resolve them and migrate again")]
    Problems { from: String, to: String, problems: i64 },
    #[error("{0} is still in use (as the {1}): change the configuration to the new store first")]
    InUse(String, &'static str),
    #[error("{missing} object(s) stored since the migration are missing from {to} (e.g. {example}): migrate again")]
    Incomplete { to: String, missing: u64, example: String },
}

/// What a purge removed.
#[derive(Debug, Clone, Default)]
pub struct PurgeReport {
    pub deleted: u64,
    pub migration: i64,
}

/// Empties `from` once a verified migration to `to` exists (see the module
/// doc; stores are matched by what they are, not by their names). `in_use`
/// names the role `from` still has in the configuration, if any (refused then). Objects stored after the migration (row ids above its
/// extent) are checked in the target first.
pub async fn purge(
    index: &Arc<dyn Index>,
    from: &NamedStore,
    to: &NamedStore,
    in_use: Option<&'static str>,
) -> Result<Result<PurgeReport, PurgeRefused>, ArchiveError> {
    if let Some(role) = in_use {
        return Ok(Err(PurgeRefused::InUse(from.name.clone(), role)));
    }
    let (from_id, to_id) = (from.store.describe(), to.store.describe());
    let tasks = index.storage_tasks(Some(StorageTask::MIGRATE), 1000).await?;
    let Some(mut task) = tasks.into_iter().find(|t| t.source == from_id && t.target.as_deref() == Some(to_id.as_str()))
    else {
        return Ok(Err(PurgeRefused::NoMigration(from.name.clone())));
    };
    match task.state.as_str() {
        StorageTask::RUNNING => {
            return Ok(Err(PurgeRefused::Unfinished {
                from: from.name.clone(),
                to: to.name.clone(),
                done: task.objects,
                total: task.last_id,
            }));
        }
        StorageTask::PROBLEMS => {
            return Ok(Err(PurgeRefused::Problems { from: from.name.clone(), to: to.name.clone(), problems: task.problems }));
        }
        _ => {}
    }
    // Objects stored since the migration finished.
    let newest = index.max_instance_id().await?;
    let mut after = task.last_id;
    let mut missing = 0u64;
    let mut example = String::new();
    loop {
        let page = index.blob_records(after, newest, 500).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for rec in &page {
            let there = to.store.head(&rec.blob_key).await?;
            if there != Some(rec.size_bytes as u64) && from.store.head(&rec.blob_key).await?.is_some() {
                missing += 1;
                if example.is_empty() {
                    example = rec.blob_key.clone();
                }
            }
        }
    }
    if missing > 0 {
        return Ok(Err(PurgeRefused::Incomplete { to: to.name.clone(), missing, example }));
    }
    let keys = from.store.list("").await?;
    let mut deleted = 0u64;
    for key in keys {
        from.store.delete(&key).await?;
        deleted += 1;
    }
    task.state = StorageTask::PURGED.into();
    task.updated_at = yunying_util::time::now_millis();
    index.save_storage_task(&task).await?;
    Ok(Ok(PurgeReport { deleted, migration: task.id }))
}
