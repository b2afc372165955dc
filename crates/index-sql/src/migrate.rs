//! Schema migrations: numbered SQL scripts per engine, applied in order,
//! each in its own transaction, recorded in `schema_migrations`.

use sqlx::Row;
use yunying_index::sql::Dialect;
use yunying_index::{IndexError, Result};

use crate::{SqlIndex, db_err};

/// One migration script of an engine.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

pub(crate) async fn run(index: &SqlIndex, migrations: &[Migration]) -> Result<()> {
    let mut conn = index.pool.acquire().await.map_err(db_err)?;
    if index.dialect == Dialect::Postgres {
        // Several nodes may start at once: one migrates, the others wait.
        sqlx::raw_sql("SELECT pg_advisory_lock(7305721)").execute(&mut *conn).await.map_err(db_err)?;
    }
    let result = run_locked(index, &mut conn, migrations).await;
    if index.dialect == Dialect::Postgres {
        let _ = sqlx::raw_sql("SELECT pg_advisory_unlock(7305721)").execute(&mut *conn).await;
    }
    result
}

async fn run_locked(index: &SqlIndex, conn: &mut sqlx::AnyConnection, migrations: &[Migration]) -> Result<()> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations (\
         version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    for m in migrations {
        let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(db_err)?;
        let done = sqlx::query(index.sql("SELECT version FROM schema_migrations WHERE version = ?"))
            .bind(m.version)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
        if done.is_some() {
            tx.rollback().await.map_err(db_err)?;
            continue;
        }
        tracing::info!(version = m.version, name = m.name, backend = index.backend, "applying catalog migration");
        sqlx::raw_sql(sqlx::AssertSqlSafe(m.sql)).execute(&mut *tx).await.map_err(|e| {
            IndexError::Backend(format!("migration {} ({}) failed: {e}", m.version, m.name))
        })?;
        sqlx::query(index.sql("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"))
            .bind(m.version)
            .bind(m.name)
            .bind(yunying_util::time::now_millis())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
    }
    // A catalog newer than this binary is refused rather than misread.
    let newest = sqlx::query(index.sql("SELECT MAX(version) AS v FROM schema_migrations"))
        .fetch_one(&mut *conn)
        .await
        .map_err(db_err)?
        .try_get::<Option<i64>, _>("v")
        .map_err(db_err)?
        .unwrap_or(0);
    let known = migrations.iter().map(|m| m.version).max().unwrap_or(0);
    if newest > known {
        return Err(IndexError::Invalid(format!(
            "the catalog schema is at version {newest} but this yunying knows only up to {known}: upgrade yunying"
        )));
    }
    Ok(())
}
