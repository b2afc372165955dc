//! `yunying backup --out FILE` and `yunying restore --from FILE`: the SQLite
//! catalog's backup and restore.
//!
//! A backup is a consistent snapshot taken while the server may be running
//! (`VACUUM INTO`), checked (integrity, schema version), fsync'd, with a
//! manifest beside it (`FILE.manifest.json`: format, schema version, counts,
//! size and SHA-256). A restore refuses while a server holds the data
//! directory, verifies the file against its manifest and SQLite's checks,
//! keeps the replaced catalog as `catalog.db.before-restore-<ts>` and puts
//! the backup in its place. Images stored after the backup are then added
//! from the blob store with `yunying reindex --merge`.
//!
//! With a PostgreSQL catalog both commands explain the PostgreSQL procedure
//! (see `docs/operations.md`) and fail: PostgreSQL's own tools do it better.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use yunying_index_sqlite::backup::{self, CatalogFacts};

use crate::config::{CatalogBackend, Settings};

/// The manifest's format name and version.
const MANIFEST_FORMAT: &str = "yunying-catalog-backup";
const MANIFEST_VERSION: u32 = 1;

/// What the manifest beside a backup says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    /// Unix ms.
    pub created_at: i64,
    pub yunying: String,
    /// The catalog file the backup was taken of.
    pub source: String,
    pub bytes: u64,
    pub sha256: String,
    pub catalog: CatalogFacts,
}

/// The procedure for a PostgreSQL catalog, printed by both commands.
pub const POSTGRES_PROCEDURE: &str = "\
The catalog is on PostgreSQL: back it up and restore it with PostgreSQL's tools
(see docs/operations.md, \"Backing up and restoring the catalog\"):
  logical:        pg_dump -Fc -f yunying.dump <catalog url>
                  pg_restore --clean --if-exists -d <catalog url> yunying.dump   (servers stopped)
  point in time:  pg_basebackup + WAL archiving (archive_mode = on, archive_command),
                  restore the base backup, set restore_command and recovery_target_time
Then, before starting the nodes, run `yunying reindex --merge` to add the images
stored after the backup (the blob store's ingest journal holds their facts).";

fn manifest_path(file: &Path) -> PathBuf {
    let mut name = file.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".manifest.json");
    file.with_file_name(name)
}

fn sqlite_path(settings: &Settings) -> Result<PathBuf, String> {
    match &settings.catalog {
        CatalogBackend::Sqlite { path } => Ok(path.clone()),
        CatalogBackend::Postgres { .. } => Err(POSTGRES_PROCEDURE.to_string()),
    }
}

fn sha256_of(file: &Path) -> Result<(String, u64), String> {
    use sha2::{Digest, Sha256};
    let mut f = std::fs::File::open(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let (mut h, mut n, mut buf) = (Sha256::new(), 0u64, vec![0u8; 1 << 20]);
    loop {
        let k = f.read(&mut buf).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((hex::encode(h.finalize()), n))
}

fn fsync_file(file: &Path) -> Result<(), String> {
    std::fs::File::open(file).and_then(|f| f.sync_all()).map_err(|e| format!("cannot fsync {}: {e}", file.display()))
}

fn fsync_dir_of(file: &Path) -> Result<(), String> {
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::File::open(&dir).and_then(|d| d.sync_all()).map_err(|e| format!("cannot fsync {}: {e}", dir.display()))
}

fn describe(f: &CatalogFacts) -> String {
    format!(
        "schema version {}, {} institutions, {} users, {} studies, {} series, {} instance versions, {} audit records",
        f.schema_version, f.institutions, f.users, f.studies, f.series, f.instance_versions, f.audit_events
    )
}

/// `yunying backup --out FILE`.
pub async fn backup(settings: &Settings, out: &Path) -> Result<String, String> {
    let catalog = sqlite_path(settings)?;
    if out.exists() {
        return Err(format!("{} exists: give a new file", out.display()));
    }
    let partial = out.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    backup::snapshot(&catalog, &partial).await.map_err(|e| e.to_string())?;
    let checked = async {
        let facts = backup::inspect(&partial).await.map_err(|e| e.to_string())?;
        let newest = yunying_index_sqlite::MIGRATIONS.last().map(|m| m.version).unwrap_or(0);
        if facts.schema_version != newest {
            return Err(format!("the snapshot has schema version {}, this release {newest}", facts.schema_version));
        }
        fsync_file(&partial)?;
        Ok(facts)
    }
    .await;
    let facts = match checked {
        Ok(f) => f,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    std::fs::rename(&partial, out).map_err(|e| format!("cannot rename into {}: {e}", out.display()))?;
    let (sha256, bytes) = sha256_of(out)?;
    let manifest = Manifest {
        format: MANIFEST_FORMAT.into(),
        version: MANIFEST_VERSION,
        created_at: yunying_util::time::now_millis(),
        yunying: env!("CARGO_PKG_VERSION").into(),
        source: catalog.display().to_string(),
        bytes,
        sha256: sha256.clone(),
        catalog: facts.clone(),
    };
    let mpath = manifest_path(out);
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| e.to_string())?;
    std::fs::write(&mpath, text + "\n").map_err(|e| format!("cannot write {}: {e}", mpath.display()))?;
    fsync_file(&mpath)?;
    fsync_dir_of(out)?;
    Ok(format!(
        "backup of {} written to {} ({bytes} bytes, sha256 {sha256})\n  {}\n  manifest {}\n",
        catalog.display(),
        out.display(),
        describe(&facts),
        mpath.display()
    ))
}

/// `yunying restore --from FILE`.
pub async fn restore(settings: &Settings, from: &Path) -> Result<String, String> {
    let catalog = sqlite_path(settings)?;
    // Held until the restore is done: no server starts meanwhile.
    let _lock = crate::data_lock::acquire(&settings.data, "restore").map_err(|e| e.to_string())?;

    // 1. The file is what its manifest says, and a sound catalog this release can open.
    let mpath = manifest_path(from);
    let manifest: Manifest = {
        let text = std::fs::read_to_string(&mpath)
            .map_err(|e| format!("cannot read the backup's manifest {}: {e}", mpath.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{} is not a backup manifest: {e}", mpath.display()))?
    };
    if manifest.format != MANIFEST_FORMAT || manifest.version != MANIFEST_VERSION {
        return Err(format!("{} is not a manifest this release reads ({} v{})", mpath.display(), manifest.format, manifest.version));
    }
    let (sha256, bytes) = sha256_of(from)?;
    if sha256 != manifest.sha256 || bytes != manifest.bytes {
        return Err(format!(
            "{} is damaged: {bytes} bytes with SHA-256 {sha256}, its manifest says {} bytes with {}",
            from.display(),
            manifest.bytes,
            manifest.sha256
        ));
    }
    let facts = backup::inspect(from).await.map_err(|e| e.to_string())?;
    let newest = yunying_index_sqlite::MIGRATIONS.last().map(|m| m.version).unwrap_or(0);
    if facts.schema_version > newest {
        return Err(format!(
            "the backup has schema version {}, newer than this release's {newest}: restore it with the release that made it",
            facts.schema_version
        ));
    }

    // 2. A copy beside the catalog, made durable, then swapped in; the
    // replaced catalog (and its WAL, which may hold committed transactions)
    // is kept under another name.
    let incoming = catalog.with_extension("db.restoring");
    std::fs::copy(from, &incoming).map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), incoming.display()))?;
    fsync_file(&incoming)?;
    let stamp = yunying_util::time::rfc3339_millis(yunying_util::time::now_millis()).replace([':', '.'], "");
    let kept = catalog.with_file_name(format!(
        "{}.before-restore-{stamp}",
        catalog.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "catalog.db".into())
    ));
    let mut replaced = None;
    if catalog.exists() {
        std::fs::rename(&catalog, &kept).map_err(|e| format!("cannot move {} aside: {e}", catalog.display()))?;
        for suffix in ["-wal", "-shm"] {
            let side = PathBuf::from(format!("{}{suffix}", catalog.display()));
            if side.exists() {
                let to = PathBuf::from(format!("{}{suffix}", kept.display()));
                std::fs::rename(&side, &to).map_err(|e| format!("cannot move {} aside: {e}", side.display()))?;
            }
        }
        replaced = Some(kept);
    }
    std::fs::rename(&incoming, &catalog).map_err(|e| format!("cannot move the backup into place: {e}"))?;
    fsync_dir_of(&catalog)?;

    let mut report = format!(
        "restored {} (taken {}) into {}\n  {}\n",
        from.display(),
        yunying_util::time::rfc3339_millis(manifest.created_at),
        catalog.display(),
        describe(&facts)
    );
    match replaced {
        Some(k) => report += &format!("  the replaced catalog is kept as {}\n", k.display()),
        None => report += "  there was no catalog to replace\n",
    }
    report += "  next: `yunying reindex --merge` adds the images stored after the backup, then start the server\n";
    Ok(report)
}
