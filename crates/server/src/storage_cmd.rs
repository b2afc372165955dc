//! `yunying storage` and `yunying verify`: the storage tiers from the
//! command line. Shows the tiers and their queues, migrates every object
//! from one configured store to another (verified, resumable, with progress
//! and a final report), empties an old store once a migration from it is
//! verified, marks an existing archive's recent exams for a new cloud tier,
//! and re-reads every object against the catalog's checksums.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Instant;

use yunying_archive::Archive;
use yunying_archive::storage::migrate::{MigrateOptions, NamedStore, migrate, purge};
use yunying_archive::storage::scrub::{ScrubOptions, ScrubTarget};
use yunying_archive::storage::{JobsStatus, human_bytes, years_ago};
use yunying_index::StorageTask;

use crate::app::anyhow_like::{Error, Result};
use crate::config::{CLOUD_STORE, LOCAL_STORE, Settings};

/// The `storage` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum StorageCommand {
    /// The tiers, the cloud copy queue, storage tasks and open problems.
    Status {
        /// One JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Copies every object from one store to another and verifies each copy
    /// (SHA-256 and size, read back); resumes an interrupted migration.
    Migrate {
        /// Source store: local, cloud, or a name of [storage.stores].
        #[arg(long)]
        from: String,
        /// Target store.
        #[arg(long)]
        to: String,
        /// Objects copied at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Objects per saved step (a resumed run repeats at most one step's checks).
        #[arg(long, default_value_t = 256)]
        page: u32,
        /// The source should hold every object (an old local store): report
        /// absent ones as problems. The local tier always should; a cloud
        /// tier holds only recent exams, so by default absent objects are skipped.
        #[arg(long)]
        complete_source: bool,
        /// The final report as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Deletes everything in a store that a verified migration has replaced.
    Purge {
        /// The old store.
        #[arg(long)]
        store: String,
        /// The store it was migrated to.
        #[arg(long)]
        to: String,
        /// Confirms the deletion (nothing is deleted without it).
        #[arg(long)]
        yes: bool,
    },
    /// Marks the recent exams of an existing archive for the cloud tier
    /// (after adding one), and optionally copies them now.
    CloudSync {
        /// Exams from this date (YYYYMMDD) on; default: the cloud tier's years.
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
        /// Also retry objects the queue gave up on.
        #[arg(long)]
        retry_failed: bool,
        /// Copies here, now, until the queue is empty.
        #[arg(long)]
        wait: bool,
    },
    /// Runs the cloud tier's lifecycle pass now: objects of exams older than
    /// its years leave it (the server runs it hourly).
    Lifecycle,
}

/// Runs a `storage` subcommand.
pub async fn run(settings: &Settings, archive: Arc<Archive>, command: StorageCommand) -> Result<()> {
    match command {
        StorageCommand::Status { json } => {
            let status = archive.jobs_status().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status).unwrap_or_default());
            } else {
                print_status(settings, &archive, &status);
            }
            Ok(())
        }
        StorageCommand::Migrate { from, to, concurrency, page, complete_source, json } => {
            let source = NamedStore { store: crate::app::open_named_store(settings, &from)?, name: from.clone() };
            let target = NamedStore { store: crate::app::open_named_store(settings, &to)?, name: to.clone() };
            if settings.storage.mirror.as_deref() != Some(to.as_str()) && [LOCAL_STORE, CLOUD_STORE].contains(&from.as_str()) {
                eprintln!(
                    "note: {to} is not the configured mirror (storage.mirror): objects stored while this runs are \
                     taken at the end of this run; set storage.mirror = {to:?} for the cut-over so none is missed"
                );
            }
            let opts = MigrateOptions {
                concurrency,
                page: page.max(1),
                source_holds_everything: from == LOCAL_STORE || complete_source,
            };
            let tty = std::io::stderr().is_terminal();
            let mut last_print = Instant::now();
            eprintln!("migrating {} → {}", source.store.describe(), target.store.describe());
            let report = migrate(archive.index(), &source, &target, &opts, |task, r| {
                if !tty && last_print.elapsed().as_secs() < 5 {
                    return;
                }
                last_print = Instant::now();
                let line = progress_line(task, r.seconds, r.bytes_sent);
                if tty {
                    eprint!("\r{line}   ");
                } else {
                    eprintln!("{line}");
                }
                let _ = std::io::stderr().flush();
            })
            .await?;
            if tty {
                eprintln!();
            }
            let t = &report.task;
            let secs = report.seconds.max(1e-9);
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "task": t,
                        "resumed": report.resumed,
                        "sent": report.sent,
                        "already_there": report.already_there,
                        "bytes_sent": report.bytes_sent,
                        "journal_sent": report.journal_sent,
                        "seconds": report.seconds,
                        "objects_per_second": (report.sent + report.already_there) as f64 / secs,
                        "mb_per_second": report.bytes_sent as f64 / 1e6 / secs,
                    })
                );
            } else {
                println!("migration {} → {} (task {})", t.source, t.target.as_deref().unwrap_or("?"), t.id);
                if report.resumed {
                    println!("  resumed an interrupted migration");
                }
                println!("  objects verified      {} ({})", t.objects, human_bytes(t.bytes.max(0) as u64));
                println!("  sent in this run      {} ({})", report.sent, human_bytes(report.bytes_sent));
                println!("  already in the target {}", report.already_there);
                println!("  journal blobs sent    {}", report.journal_sent);
                println!("  not in the source     {} (skipped)", t.skipped);
                println!("  problems              {}", t.problems);
                println!(
                    "  rate                  {:.1} objects/s, {:.1} MB/s over {:.1} s",
                    (report.sent + report.already_there) as f64 / secs,
                    report.bytes_sent as f64 / 1e6 / secs,
                    report.seconds
                );
                if t.problems == 0 {
                    println!("  state                 verified: every object is in {} with its checksum", t.target.as_deref().unwrap_or("?"));
                } else {
                    println!(
                        "  state                 {} problem(s), last: {}; see `yunying storage status`, fix, and run again",
                        t.problems,
                        t.last_error.as_deref().unwrap_or("")
                    );
                }
            }
            if t.problems == 0 { Ok(()) } else { Err(Error(format!("the migration found {} problem(s)", t.problems))) }
        }
        StorageCommand::Purge { store, to, yes } => {
            let source = NamedStore { store: crate::app::open_named_store(settings, &store)?, name: store.clone() };
            let target = NamedStore { store: crate::app::open_named_store(settings, &to)?, name: to.clone() };
            // In use when the configuration still reads or writes it, under any name.
            let id = source.store.describe();
            let mut in_use: Option<&'static str> = None;
            for (role, name) in [("local tier", Some(LOCAL_STORE)), ("cloud tier", Some(CLOUD_STORE)), ("mirror", settings.storage.mirror.as_deref())] {
                if let Some(name) = name
                    && settings.storage.store(name).is_some()
                    && crate::app::open_named_store(settings, name)?.describe() == id
                {
                    in_use = Some(role);
                }
            }
            if !yes {
                return Err(Error(format!(
                    "purging deletes every object in {} ({}); run again with --yes to confirm",
                    store,
                    source.store.describe()
                )));
            }
            match purge(archive.index(), &source, &target, in_use).await? {
                Ok(r) => {
                    let mut e = archive.audit_event(
                        &yunying_archive::Caller::cli("storage"),
                        yunying_audit::Action::Delete,
                        yunying_audit::Outcome::Success,
                    );
                    e.detail = serde_json::json!({ "purged": store, "migrated_to": to, "deleted": r.deleted, "migration": r.migration });
                    archive.audit(e).await;
                    archive.audit_trail().flush().await;
                    println!("purged {store}: {} object(s) deleted (migration {} to {to} verified)", r.deleted, r.migration);
                    Ok(())
                }
                Err(refused) => Err(Error(format!("purge refused: {refused}"))),
            }
        }
        StorageCommand::Lifecycle => {
            match archive.cloud_lifecycle_once().await? {
                None if settings.storage.cloud.is_none() => {
                    return Err(Error("no cloud tier is configured ([storage.cloud])".into()));
                }
                None => return Err(Error("another node is running the lifecycle pass now; try again later".into())),
                Some(r) => println!(
                    "lifecycle: {} object(s) ({}) left the cloud tier; {} kept (missing locally)",
                    r.removed,
                    human_bytes(r.bytes),
                    r.kept
                ),
            }
            Ok(())
        }
        StorageCommand::CloudSync { since, retry_failed, wait } => {
            let Some(cloud) = &settings.storage.cloud else {
                return Err(Error("no cloud tier is configured ([storage.cloud])".into()));
            };
            let since = match since {
                Some(d) if d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()) => d,
                Some(d) => return Err(Error(format!("--since {d:?} is a date as YYYYMMDD"))),
                None => years_ago(cloud.years),
            };
            let marked = archive.index().request_cloud_copies(&since, retry_failed, yunying_util::time::now_millis()).await?;
            eprintln!("{marked} object(s) of exams since {since} queued for the cloud tier");
            if wait {
                let started = Instant::now();
                while archive.cloud_copy_once().await? > 0 {}
                eprintln!("cloud copy queue empty after {:.1} s", started.elapsed().as_secs_f64());
            }
            let b = archive.index().cloud_backlog().await?;
            println!("cloud tier: {} copied, {} waiting, {} given up", b.copied, b.pending, b.failed);
            Ok(())
        }
    }
}

fn progress_line(t: &StorageTask, seconds: f64, bytes_sent: u64) -> String {
    let pct = if t.last_id > 0 { 100.0 * t.cursor_id as f64 / t.last_id as f64 } else { 100.0 };
    let secs = seconds.max(1e-9);
    format!(
        "[{:<30}] {pct:5.1}%  {} objects, {} verified, {:.0} objects/s, {:.1} MB/s, {} problem(s)",
        "#".repeat(((pct / 100.0) * 30.0).round().clamp(0.0, 30.0) as usize),
        t.objects,
        human_bytes(t.bytes.max(0) as u64),
        t.objects as f64 / secs,
        bytes_sent as f64 / 1e6 / secs,
        t.problems
    )
}

fn print_status(settings: &Settings, archive: &Archive, s: &JobsStatus) {
    println!("local tier   {}", archive.tiers().local.as_ref().unwrap_or(archive.blobs()).describe());
    match &s.cloud_copy {
        None => println!("cloud tier   none"),
        Some(c) => {
            println!("cloud tier   {} (exams of the last {} years)", c.store, c.years);
            let age = c.oldest_pending_age_seconds.map(|a| format!(", oldest waiting {a} s")).unwrap_or_default();
            println!(
                "  copies     {} copied, {} waiting ({}){age}, {} retrying, {} given up, {} aged out",
                c.backlog.copied,
                c.backlog.pending,
                human_bytes(c.backlog.pending_bytes.max(0) as u64),
                c.backlog.retrying,
                c.backlog.failed,
                c.backlog.removed
            );
            if let Some(e) = &c.backlog.last_error {
                println!("  last error {e}");
            }
        }
    }
    if let Some(m) = &settings.storage.mirror {
        println!("mirror       {m} (every new object is written there too)");
    }
    for name in settings.storage.stores.keys() {
        println!("store        {name}");
    }
    for t in &s.storage_tasks {
        println!(
            "task {:>4}    {} {}{} {}: {} objects ({}), {} skipped, {} problem(s), at row {} of {}",
            t.id,
            t.kind,
            t.source,
            t.target.as_deref().map(|x| format!(" → {x}")).unwrap_or_default(),
            t.state,
            t.objects,
            human_bytes(t.bytes.max(0) as u64),
            t.skipped,
            t.problems,
            t.cursor_id,
            t.last_id
        );
    }
    println!("problems     {} open", s.open_problems);
    for p in s.problems.iter().take(20) {
        println!("  {} {} {}: {}", p.store, p.problem, p.blob_key, p.detail);
    }
}

/// `yunying verify`: re-reads every object of a tier against the catalog.
pub async fn verify(archive: Arc<Archive>, tier: &str, mb_per_s: u32, repair: bool) -> Result<()> {
    let target = match tier {
        LOCAL_STORE => ScrubTarget::Local,
        CLOUD_STORE => ScrubTarget::Cloud,
        other => return Err(Error(format!("--store is local or cloud, not {other:?}"))),
    };
    let tty = std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut last_print = Instant::now();
    let opts = ScrubOptions { target, mb_per_s, repair };
    let task = archive
        .scrub_pass(&opts, |t| {
            if !tty && last_print.elapsed().as_secs() < 5 {
                return;
            }
            last_print = Instant::now();
            let line = progress_line(t, started.elapsed().as_secs_f64(), t.bytes.max(0) as u64);
            if tty {
                eprint!("\r{line}   ");
            } else {
                eprintln!("{line}");
            }
        })
        .await?;
    if tty {
        eprintln!();
    }
    let Some(t) = task else {
        return Err(Error("another node is scrubbing now (it holds the lease); try again later".into()));
    };
    println!(
        "verified {} object(s) ({}) of the {} tier in {:.1} s: {} problem(s)",
        t.objects,
        human_bytes(t.bytes.max(0) as u64),
        tier,
        started.elapsed().as_secs_f64(),
        t.problems
    );
    let (problems, open) = archive.index().open_blob_problems(50).await?;
    for p in problems.iter().filter(|p| p.store == tier) {
        println!("  {} {}: {}", p.problem, p.blob_key, p.detail);
    }
    if open > 0 {
        println!("{open} open problem(s) in all; `yunying storage status` lists them");
    }
    if t.problems == 0 { Ok(()) } else { Err(Error(format!("verification found {} problem(s)", t.problems))) }
}
