//! The catalog on SQLite: the embedded default of `yunying serve`.
//!
//! One database file in WAL mode with `synchronous = FULL`, so that a commit
//! is on disk before the archive answers a sender. Reads run concurrently on
//! a small pool; the archive serialises writes through its group committer.
//! The schema lives in `migrations/`; the shared SQL is `yunying-index-sql`.

pub mod backup;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::Executor;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use yunying_index::sql::Dialect;
use yunying_index::{IndexError, Result};
use yunying_index_sql::{Migration, SqlIndex};

/// The SQLite schema, in order.
pub const MIGRATIONS: &[Migration] =
    &[
        Migration { version: 1, name: "catalog", sql: include_str!("../migrations/0001_catalog.sql") },
        Migration { version: 2, name: "name indexes", sql: include_str!("../migrations/0002_name_indexes.sql") },
        Migration {
            version: 3,
            name: "application entities",
            sql: include_str!("../migrations/0003_application_entities.sql"),
        },
        Migration { version: 4, name: "forward jobs", sql: include_str!("../migrations/0004_forward_jobs.sql") },
        Migration { version: 5, name: "identity, access and audit", sql: include_str!("../migrations/0005_identity.sql") },
        Migration { version: 6, name: "derive queue", sql: include_str!("../migrations/0006_derived.sql") },
        Migration { version: 7, name: "storage tiers", sql: include_str!("../migrations/0007_storage.sql") },
        Migration { version: 8, name: "retention", sql: include_str!("../migrations/0008_retention.sql") },
    ];

/// Opens (creating if needed) the catalog at `path` and migrates it.
pub async fn open(path: &Path) -> Result<SqlIndex> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| IndexError::Backend(format!("cannot create {}: {e}", dir.display())))?;
    }
    let url = format!("sqlite://{}?mode=rwc", path.display());
    open_url(&url, 8).await
}

/// Opens an in-memory catalog (tests).
pub async fn open_in_memory() -> Result<SqlIndex> {
    // One connection: every in-memory connection would be its own database.
    open_url("sqlite::memory:", 1).await
}

async fn open_url(url: &str, connections: u32) -> Result<SqlIndex> {
    sqlx::any::install_default_drivers();
    let opts = AnyConnectOptions::from_str(url).map_err(|e| IndexError::Backend(e.to_string()))?;
    let pool = AnyPoolOptions::new()
        .max_connections(connections)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                conn.execute(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
                     PRAGMA busy_timeout = 10000; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -65536; \
                     PRAGMA mmap_size = 268435456;",
                )
                .await?;
                Ok(())
            })
        })
        .connect_with(opts)
        .await
        .map_err(|e| IndexError::Backend(format!("cannot open the SQLite catalog {url}: {e}")))?;
    SqlIndex::open(pool, Dialect::Sqlite, "sqlite", MIGRATIONS).await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use yunying_index::Index;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn contract() {
        let dir = tempfile::tempdir().unwrap();
        let counter = std::sync::atomic::AtomicUsize::new(0);
        yunying_index::contract::run_all(|| {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let path = dir.path().join(format!("catalog-{n}.db"));
            async move { Arc::new(super::open(&path).await.unwrap()) as Arc<dyn Index> }
        })
        .await;
    }

    #[tokio::test]
    async fn reopening_keeps_data_and_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        {
            let idx = super::open(&path).await.unwrap();
            idx.upsert_institution(&yunying_index::NewInstitution {
                code: "X".into(),
                name_zh: "某医院".into(),
                name_en: "X".into(),
                patient_id_issuer: None,
                ae_titles: vec![],
            })
            .await
            .unwrap();
        }
        let idx = super::open(&path).await.unwrap();
        assert_eq!(idx.institutions().await.unwrap().len(), 1);
    }
}
