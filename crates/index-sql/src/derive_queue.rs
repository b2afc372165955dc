//! The derive queue: which current instances want a derived (streaming)
//! copy, kept as columns of the instance row (`derive_state`, `derive_due`,
//! `derive_attempts`, `derive_error`) rather than as job rows, so marking
//! an instance costs nothing at ingest and `derive --rebuild` is one update.
//! Workers claim due instances with a lease (one worker per instance across
//! nodes: PostgreSQL skips rows another transaction holds; SQLite has one
//! writer).

use sqlx::Row;
use yunying_index::*;

use crate::queries::{STORED_COLUMNS, scope_where, stored_instance};
use crate::{SqlIndex, db_err};

/// `derive_state` values.
pub(crate) const NOT_WANTED: i64 = 0;
pub(crate) const WANTED: i64 = 1;
pub(crate) const MADE: i64 = 2;
pub(crate) const FAILED: i64 = 3;

pub(crate) async fn claim(index: &SqlIndex, now: i64, lease_until: i64, limit: u32) -> Result<Vec<DeriveTask>> {
    let pick = match index.dialect() {
        yunying_index::sql::Dialect::Postgres => {
            "SELECT id, derive_attempts FROM instance WHERE derive_state = 1 AND current = 1 AND derive_due <= ? \
             ORDER BY derive_due, id LIMIT ? FOR UPDATE SKIP LOCKED"
        }
        yunying_index::sql::Dialect::Sqlite => {
            "SELECT id, derive_attempts FROM instance WHERE derive_state = 1 AND current = 1 AND derive_due <= ? \
             ORDER BY derive_due, id LIMIT ?"
        }
    };
    let mut tx = index.begin_write().await.map_err(db_err)?;
    let picked: Vec<(i64, i64)> = sqlx::query(index.sql(pick))
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?
        .iter()
        .map(|r| Ok((r.try_get::<i64, _>("id")?, r.try_get::<i64, _>("derive_attempts")?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(db_err)?;
    let mut tasks = Vec::with_capacity(picked.len());
    for (id, attempts) in picked {
        sqlx::query(index.sql("UPDATE instance SET derive_due = ? WHERE id = ?"))
            .bind(lease_until)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let sql = index.dynamic(crate::number_placeholders(
            &format!(
                "SELECT {STORED_COLUMNS} FROM instance i JOIN series se ON se.id = i.series_id \
                 JOIN study st ON st.id = i.study_id WHERE i.id = ?"
            ),
            index.dialect,
        ));
        let r = sqlx::query(sql).bind(id).fetch_one(&mut *tx).await.map_err(db_err)?;
        tasks.push(DeriveTask { id, instance: stored_instance(&r)?, attempts });
    }
    tx.commit().await.map_err(db_err)?;
    Ok(tasks)
}

pub(crate) async fn finish(index: &SqlIndex, id: i64, outcome: &DeriveOutcome) -> Result<()> {
    let q = match outcome {
        DeriveOutcome::Made => sqlx::query(index.sql(
            "UPDATE instance SET derive_state = ?, derive_error = NULL WHERE id = ? AND derive_state = 1",
        ))
        .bind(MADE)
        .bind(id),
        DeriveOutcome::NotApplicable => sqlx::query(index.sql(
            "UPDATE instance SET derive_state = ?, derive_error = NULL WHERE id = ? AND derive_state = 1",
        ))
        .bind(NOT_WANTED)
        .bind(id),
        DeriveOutcome::Failed { error, retry_at } => {
            let error: String = error.chars().take(1000).collect();
            match retry_at {
                Some(at) => sqlx::query(index.sql(
                    "UPDATE instance SET derive_attempts = derive_attempts + 1, derive_error = ?, derive_due = ? \
                     WHERE id = ? AND derive_state = 1",
                ))
                .bind(error)
                .bind(*at)
                .bind(id),
                None => sqlx::query(index.sql(
                    "UPDATE instance SET derive_attempts = derive_attempts + 1, derive_error = ?, derive_state = ? \
                     WHERE id = ? AND derive_state = 1",
                ))
                .bind(error)
                .bind(FAILED)
                .bind(id),
            }
        }
    };
    q.execute(&index.pool).await.map_err(db_err)?;
    Ok(())
}

pub(crate) async fn request(index: &SqlIndex, scope: Option<&Scope>, modalities: &[String], now: i64) -> Result<u64> {
    if modalities.is_empty() {
        return Ok(0);
    }
    let (scope_sql, mut params) = match scope {
        Some(s) => {
            let (w, p) = scope_where(s);
            (w.replacen(" WHERE ", " AND ", 1), p)
        }
        None => (" AND i.current = 1".to_string(), Vec::new()),
    };
    let marks = vec!["?"; modalities.len()].join(", ");
    params.extend(modalities.iter().cloned());
    let sql = crate::number_placeholders(
        &format!(
            "UPDATE instance SET derive_state = 1, derive_due = ?, derive_attempts = 0, derive_error = NULL \
             WHERE id IN (SELECT i.id FROM instance i JOIN series se ON se.id = i.series_id \
             JOIN study st ON st.id = i.study_id WHERE 1 = 1{scope_sql} AND se.modality IN ({marks}))"
        ),
        index.dialect,
    );
    let mut q = sqlx::query(index.dynamic(sql)).bind(now);
    for p in &params {
        q = q.bind(p.as_str());
    }
    let done = q.execute(&index.pool).await.map_err(db_err)?;
    Ok(done.rows_affected())
}

pub(crate) async fn backlog(index: &SqlIndex) -> Result<DeriveBacklog> {
    let r = sqlx::query(index.sql(
        "SELECT \
         CAST(COALESCE(SUM(CASE WHEN derive_state = 1 THEN 1 ELSE 0 END), 0) AS BIGINT) AS wanted, \
         CAST(COALESCE(SUM(CASE WHEN derive_state = 2 THEN 1 ELSE 0 END), 0) AS BIGINT) AS made, \
         CAST(COALESCE(SUM(CASE WHEN derive_state = 3 THEN 1 ELSE 0 END), 0) AS BIGINT) AS failed, \
         MIN(CASE WHEN derive_state = 1 THEN received_at END) AS oldest \
         FROM instance WHERE current = 1 AND derive_state <> 0",
    ))
    .fetch_one(&index.pool)
    .await
    .map_err(db_err)?;
    let last_error: Option<String> = sqlx::query(index.sql(
        "SELECT derive_error FROM instance WHERE current = 1 AND derive_error IS NOT NULL \
         ORDER BY derive_due DESC, id DESC LIMIT 1",
    ))
    .fetch_optional(&index.pool)
    .await
    .map_err(db_err)?
    .map(|r| r.try_get("derive_error"))
    .transpose()
    .map_err(db_err)?;
    Ok(DeriveBacklog {
        wanted: r.try_get("wanted").map_err(db_err)?,
        made: r.try_get("made").map_err(db_err)?,
        failed: r.try_get("failed").map_err(db_err)?,
        oldest_wanted_at: r.try_get("oldest").map_err(db_err)?,
        last_error,
    })
}
