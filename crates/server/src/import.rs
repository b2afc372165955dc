//! `yunying import DIR`: migrates a folder tree of Part-10 files (a legacy
//! archive's export, a CD's content) through the ingest road, with a progress
//! bar and a summary. Resumable: a journal under the data directory records
//! finished files (path, size, modification time), and a re-run skips them.
//! Identical objects already in the archive are no-ops anyway.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use yunying_archive::{Archive, IngestSource, IngestStatus};
use yunying_util::InstitutionId;

use crate::stow_client::StowClient;

/// Where objects go: this process's archive, or a server over STOW-RS.
pub enum Target {
    Archive(Arc<Archive>),
    Stow(StowClient),
}

/// Import settings.
pub struct ImportOptions {
    pub dir: PathBuf,
    pub institution: Option<InstitutionId>,
    pub parallel: usize,
    /// Journal file of finished paths (resumability); `None` disables it.
    pub journal: Option<PathBuf>,
    pub progress: bool,
}

/// What an import did.
#[derive(Debug, Default, Clone)]
pub struct ImportSummary {
    pub files: usize,
    pub stored: usize,
    pub duplicates: usize,
    pub new_versions: usize,
    pub failed: usize,
    pub not_dicom: usize,
    pub already_done: usize,
    pub bytes: u64,
    pub seconds: f64,
    /// Failure reasons with their counts and one example path each.
    pub reasons: BTreeMap<String, (usize, String)>,
}

impl std::fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "import summary")?;
        writeln!(f, "  files examined        {}", self.files)?;
        writeln!(f, "  stored                {}", self.stored)?;
        writeln!(f, "  already in archive    {}", self.duplicates)?;
        writeln!(f, "  new versions          {}", self.new_versions)?;
        writeln!(f, "  done in an earlier run {}", self.already_done)?;
        writeln!(f, "  not DICOM (skipped)   {}", self.not_dicom)?;
        writeln!(f, "  failed                {}", self.failed)?;
        let mb = self.bytes as f64 / 1e6;
        let rate = if self.seconds > 0.0 { mb / self.seconds } else { 0.0 };
        writeln!(f, "  data                  {mb:.1} MB in {:.1} s ({rate:.1} MB/s)", self.seconds)?;
        for (reason, (n, example)) in &self.reasons {
            writeln!(f, "  - {n} × {reason} (e.g. {example})")?;
        }
        Ok(())
    }
}

/// The default journal of an import of `dir`, under the data directory.
pub fn journal_path(data: &Path, dir: &Path) -> PathBuf {
    let canon = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let h = hex::encode(Sha256::digest(canon.to_string_lossy().as_bytes()));
    data.join("import-journal").join(format!("{}.log", &h[..16]))
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with('.') {
            continue;
        }
        let ft = e.file_type()?;
        if ft.is_dir() {
            walk(&e.path(), out)?;
        } else if ft.is_file() && !name.eq_ignore_ascii_case("DICOMDIR") {
            out.push(e.path());
        }
    }
    Ok(())
}

fn fingerprint(path: &Path) -> String {
    let meta = std::fs::metadata(path).ok();
    let size = meta.as_ref().map(|m| m.len()).unwrap_or(0);
    let mtime = meta
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{}\t{size}\t{mtime}", path.display())
}

fn is_part10(path: &Path) -> bool {
    let mut head = [0u8; 132];
    match std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)) {
        Ok(()) => &head[128..132] == b"DICM",
        Err(_) => false,
    }
}

enum FileResult {
    Status(IngestStatus),
    StowOk,
    Failed(String),
}

/// Runs an import.
pub async fn run(target: Target, opts: ImportOptions) -> Result<ImportSummary, String> {
    let started = Instant::now();
    let mut files = Vec::new();
    walk(&opts.dir, &mut files).map_err(|e| format!("cannot read {}: {e}", opts.dir.display()))?;
    let done: HashSet<String> = match &opts.journal {
        Some(j) => std::fs::File::open(j)
            .map(|f| std::io::BufReader::new(f).lines().map_while(Result::ok).collect())
            .unwrap_or_default(),
        None => HashSet::new(),
    };
    let mut journal = match &opts.journal {
        Some(j) => {
            if let Some(d) = j.parent() {
                std::fs::create_dir_all(d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
            }
            Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(j)
                    .map_err(|e| format!("cannot open the journal {}: {e}", j.display()))?,
            )
        }
        None => None,
    };
    let mut summary = ImportSummary { files: files.len(), ..Default::default() };
    let bar = if opts.progress { ProgressBar::new(files.len() as u64) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} files  {per_sec}  eta {eta}  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let target = Arc::new(target);
    let mut pending = tokio::task::JoinSet::new();
    let mut iter = files.into_iter();
    loop {
        while pending.len() < opts.parallel.max(1) {
            let Some(path) = iter.next() else { break };
            let fp = fingerprint(&path);
            if done.contains(&fp) {
                summary.already_done += 1;
                bar.inc(1);
                continue;
            }
            let target = target.clone();
            let institution = opts.institution;
            pending.spawn(async move {
                if !is_part10(&path) {
                    return (path, fp, 0, None);
                }
                let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                let r = match &*target {
                    Target::Archive(a) => {
                        let mut source = IngestSource::new("import", path.display().to_string());
                        source.institution = institution;
                        match a.ingest_file(&path, &source).await {
                            Ok(o) => FileResult::Status(o.status),
                            Err(e) => FileResult::Failed(e.message),
                        }
                    }
                    Target::Stow(c) => match std::fs::read(&path) {
                        Ok(b) => match c.store(vec![bytes::Bytes::from(b)]).await {
                            Ok(s) if s.stored == 1 => FileResult::StowOk,
                            Ok(s) => FileResult::Failed(
                                s.warnings.first().cloned().unwrap_or_else(|| format!("HTTP {}", s.status)),
                            ),
                            Err(e) => FileResult::Failed(e),
                        },
                        Err(e) => FileResult::Failed(e.to_string()),
                    },
                };
                (path, fp, size, Some(r))
            });
        }
        let Some(joined) = pending.join_next().await else { break };
        let (path, fp, size, r) = joined.map_err(|e| format!("import task failed: {e}"))?;
        bar.inc(1);
        let finished = match r {
            None => {
                summary.not_dicom += 1;
                true
            }
            Some(FileResult::Status(s)) => {
                match s {
                    IngestStatus::Stored => summary.stored += 1,
                    IngestStatus::Duplicate => summary.duplicates += 1,
                    IngestStatus::NewVersion { .. } => summary.new_versions += 1,
                }
                summary.bytes += size;
                true
            }
            Some(FileResult::StowOk) => {
                summary.stored += 1;
                summary.bytes += size;
                true
            }
            Some(FileResult::Failed(reason)) => {
                summary.failed += 1;
                let short: String = reason.chars().take(160).collect();
                let e = summary.reasons.entry(short).or_insert((0, path.display().to_string()));
                e.0 += 1;
                bar.set_message(format!("{} failed", summary.failed));
                // Failures are not journaled: a re-run tries them again.
                false
            }
        };
        if finished && let Some(j) = journal.as_mut() {
            let _ = writeln!(j, "{fp}");
        }
    }
    bar.finish_and_clear();
    if let Some(j) = journal.as_mut() {
        let _ = j.sync_all();
    }
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}
