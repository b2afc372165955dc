//! The catalog on PostgreSQL: what several `yunying serve` nodes share when
//! one node is not enough. Selected by configuration alone
//! (`[catalog] url = "postgres://..."` or `YUNYING_CATALOG_URL`).
//!
//! Migrations take an advisory lock, so nodes starting together migrate once.
//! The schema lives in `migrations/`; the shared SQL is `yunying-index-sql`.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use yunying_index::sql::Dialect;
use yunying_index::{IndexError, Result};
use yunying_index_sql::{Migration, SqlIndex};

/// The PostgreSQL schema, in order.
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

/// Connection settings.
#[derive(Debug, Clone)]
pub struct PgOptions {
    pub url: String,
    pub max_connections: u32,
}

/// Connects to the catalog database and migrates it.
pub async fn connect(opts: &PgOptions) -> Result<SqlIndex> {
    sqlx::any::install_default_drivers();
    let co = AnyConnectOptions::from_str(&opts.url)
        .map_err(|e| IndexError::Backend(format!("invalid catalog URL: {e}")))?;
    let pool = AnyPoolOptions::new()
        .max_connections(opts.max_connections)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(co)
        .await
        .map_err(|e| IndexError::Backend(format!("cannot connect to the PostgreSQL catalog: {e}")))?;
    SqlIndex::open(pool, Dialect::Postgres, "postgres", MIGRATIONS).await
}

/// Test helpers: throw-away databases on the server named by
/// `YUNYING_TEST_PG` (default `postgres://postgres@127.0.0.1:5432`).
pub mod testing {
    use sqlx::{Connection, Executor};

    /// The server URL for test databases.
    pub fn server_url() -> String {
        std::env::var("YUNYING_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
    }

    /// Creates a fresh database and returns its URL.
    pub async fn create_database(prefix: &str) -> String {
        sqlx::any::install_default_drivers();
        let name = format!(
            "{prefix}_{}_{}",
            std::process::id(),
            yunying_util::uid::generate().rsplit('.').next().unwrap_or("0").chars().take(12).collect::<String>()
        );
        let base = server_url();
        let mut admin = sqlx::AnyConnection::connect(&format!("{base}/postgres"))
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {base} is needed for this test: {e}"));
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .expect("create test database");
        format!("{base}/{name}")
    }

    /// Drops a database made by [`create_database`].
    pub async fn drop_database(url: &str) {
        let (base, name) = url.rsplit_once('/').expect("database URL");
        if let Ok(mut admin) = sqlx::AnyConnection::connect(&format!("{base}/postgres")).await {
            let _ = admin.execute(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use yunying_index::Index;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn contract() {
        let made: Arc<Mutex<Vec<String>>> = Arc::default();
        let m = made.clone();
        yunying_index::contract::run_all(move || {
            let m = m.clone();
            async move {
                let url = super::testing::create_database("yy_contract").await;
                m.lock().unwrap().push(url.clone());
                let idx = super::connect(&super::PgOptions { url, max_connections: 4 }).await.unwrap();
                Arc::new(idx) as Arc<dyn Index>
            }
        })
        .await;
        for url in made.lock().unwrap().clone() {
            super::testing::drop_database(&url).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_nodes_migrate_once_and_see_each_other() {
        let url = super::testing::create_database("yy_twonodes").await;
        let opts = super::PgOptions { url: url.clone(), max_connections: 2 };
        let (a, b) = tokio::join!(super::connect(&opts), super::connect(&opts));
        let (a, b) = (a.unwrap(), b.unwrap());
        a.upsert_institution(&yunying_index::NewInstitution {
            code: "N1".into(),
            name_zh: "一号".into(),
            name_en: "One".into(),
            patient_id_issuer: None,
            ae_titles: vec![],
        })
        .await
        .unwrap();
        assert!(b.institution_by_code("N1").await.unwrap().is_some());
        drop((a, b));
        super::testing::drop_database(&url).await;
    }
}
