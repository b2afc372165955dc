//! Backups of the SQLite catalog: a consistent snapshot taken while the
//! server may be writing (`VACUUM INTO`, one read transaction), and the
//! checks a backup file must pass before it is trusted (integrity, schema
//! version, what it holds).

use std::path::Path;
use std::str::FromStr;

use sqlx::any::AnyConnectOptions;
use sqlx::{AnyConnection, ConnectOptions, Connection, Row};
use yunying_index::{IndexError, Result};

/// What a catalog file holds, as read by [`inspect`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CatalogFacts {
    /// The newest migration applied (`schema_migrations`).
    pub schema_version: i64,
    pub institutions: i64,
    pub users: i64,
    pub studies: i64,
    pub series: i64,
    /// Every instance version, superseded ones included.
    pub instance_versions: i64,
    pub audit_events: i64,
}

fn backend(what: &str) -> impl FnOnce(sqlx::Error) -> IndexError + '_ {
    move |e| IndexError::Backend(format!("{what}: {e}"))
}

async fn connect(url: &str) -> Result<AnyConnection> {
    sqlx::any::install_default_drivers();
    AnyConnectOptions::from_str(url)
        .map_err(|e| IndexError::Backend(e.to_string()))?
        .connect()
        .await
        .map_err(backend("cannot open the SQLite catalog"))
}

/// Writes a consistent snapshot of the catalog at `catalog` to `out` (which
/// must not exist), while other connections may be writing, and makes it a
/// self-contained file (rollback journal, no `-wal` beside it).
pub async fn snapshot(catalog: &Path, out: &Path) -> Result<()> {
    if !catalog.is_file() {
        return Err(IndexError::NotFound(format!("no SQLite catalog at {}", catalog.display())));
    }
    let mut c = connect(&format!("sqlite://{}?mode=rw", catalog.display())).await?;
    sqlx::query("PRAGMA busy_timeout = 30000").execute(&mut c).await.map_err(backend("busy_timeout"))?;
    sqlx::query("VACUUM INTO ?")
        .bind(out.display().to_string())
        .execute(&mut c)
        .await
        .map_err(backend("VACUUM INTO"))?;
    c.close().await.map_err(backend("close"))?;
    let mut b = connect(&format!("sqlite://{}?mode=rw", out.display())).await?;
    sqlx::query("PRAGMA journal_mode = DELETE").execute(&mut b).await.map_err(backend("journal_mode"))?;
    b.close().await.map_err(backend("close"))?;
    Ok(())
}

/// Checks a catalog file (read-only): `PRAGMA integrity_check` must answer
/// `ok`; returns its schema version and counts.
pub async fn inspect(file: &Path) -> Result<CatalogFacts> {
    if !file.is_file() {
        return Err(IndexError::NotFound(format!("no file {}", file.display())));
    }
    let mut c = connect(&format!("sqlite://{}?mode=ro", file.display())).await?;
    let problems: Vec<String> = sqlx::query("PRAGMA integrity_check")
        .fetch_all(&mut c)
        .await
        .map_err(backend("integrity_check"))?
        .iter()
        .map(|r| r.try_get::<String, _>(0).unwrap_or_default())
        .collect();
    if problems != ["ok"] {
        return Err(IndexError::Invalid(format!(
            "{} fails SQLite's integrity check: {}",
            file.display(),
            problems.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
        )));
    }
    let mut count = async |sql: &'static str| -> Result<i64> {
        sqlx::query(sql)
            .fetch_one(&mut c)
            .await
            .and_then(|r| r.try_get::<i64, _>(0))
            .map_err(|e| IndexError::Invalid(format!("{} is not a Yunying catalog ({sql}: {e})", file.display())))
    };
    let facts = CatalogFacts {
        schema_version: count("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").await?,
        institutions: count("SELECT COUNT(*) FROM institution").await?,
        users: count("SELECT COUNT(*) FROM app_user").await?,
        studies: count("SELECT COUNT(*) FROM study").await?,
        series: count("SELECT COUNT(*) FROM series").await?,
        instance_versions: count("SELECT COUNT(*) FROM instance").await?,
        audit_events: count("SELECT COUNT(*) FROM audit_event").await?,
    };
    c.close().await.map_err(backend("close"))?;
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use yunying_index::{Index, NewInstitution};

    #[tokio::test]
    async fn a_snapshot_holds_what_the_catalog_holds_and_passes_the_checks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.db");
        let idx = crate::open(&path).await.unwrap();
        idx.upsert_institution(&NewInstitution {
            code: "X".into(),
            name_zh: "某医院".into(),
            name_en: "X".into(),
            patient_id_issuer: None,
            ae_titles: vec![],
        })
        .await
        .unwrap();
        let out = dir.path().join("backup.db");
        super::snapshot(&path, &out).await.unwrap();
        // Written while the catalog stays open; a self-contained file.
        assert!(!dir.path().join("backup.db-wal").exists());
        let facts = super::inspect(&out).await.unwrap();
        assert_eq!(facts.institutions, 1);
        assert_eq!(facts.schema_version, crate::MIGRATIONS.last().unwrap().version);
        assert!(super::snapshot(&path, &out).await.is_err(), "an existing file is not overwritten");
        // A damaged file is refused.
        let mut bytes = std::fs::read(&out).unwrap();
        let n = bytes.len();
        for b in &mut bytes[n / 2..n / 2 + 4096.min(n / 2)] {
            *b = 0x5a;
        }
        std::fs::write(&out, &bytes).unwrap();
        assert!(super::inspect(&out).await.is_err());
        assert_eq!(idx.institutions().await.unwrap().len(), 1);
    }
}
