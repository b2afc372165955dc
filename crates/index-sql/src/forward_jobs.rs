//! The forwarding queue (`forward_job`): jobs are queued with their instance
//! at commit time, claimed with a lease by the forwarding workers (one
//! worker per job across nodes: PostgreSQL skips rows another transaction
//! holds; SQLite has one writer), deleted once sent, retried or kept as
//! failed otherwise.

use sqlx::{AnyConnection, Row};
use yunying_index::*;

use crate::{SqlIndex, db_err};

/// Queues a job per destination for a newly stored instance (inside the commit's transaction).
pub(crate) async fn enqueue(
    index: &SqlIndex,
    c: &mut AnyConnection,
    instance_id: i64,
    destinations: &[String],
    now: i64,
) -> Result<(), sqlx::Error> {
    for d in destinations {
        sqlx::query(index.sql(
            "INSERT INTO forward_job (instance_id, destination, state, attempts, next_attempt_at, created_at) \
             VALUES (?, ?, 'pending', 0, ?, ?)",
        ))
        .bind(instance_id)
        .bind(d.as_str())
        .bind(now)
        .bind(now)
        .execute(&mut *c)
        .await?;
    }
    Ok(())
}

pub(crate) async fn claim(index: &SqlIndex, now: i64, lease_until: i64, limit: u32) -> Result<Vec<ForwardJob>> {
    let pick = match index.dialect() {
        yunying_index::sql::Dialect::Postgres => {
            "SELECT id FROM forward_job WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY id LIMIT ? \
             FOR UPDATE SKIP LOCKED"
        }
        yunying_index::sql::Dialect::Sqlite => {
            "SELECT id FROM forward_job WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY id LIMIT ?"
        }
    };
    let mut tx = index.begin_write().await.map_err(db_err)?;
    let ids: Vec<i64> = sqlx::query(index.sql(pick))
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?
        .iter()
        .map(|r| r.try_get::<i64, _>("id"))
        .collect::<Result<_, _>>()
        .map_err(db_err)?;
    let mut jobs = Vec::with_capacity(ids.len());
    for id in ids {
        sqlx::query(index.sql("UPDATE forward_job SET next_attempt_at = ? WHERE id = ?"))
            .bind(lease_until)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let r = sqlx::query(index.sql(
            "SELECT j.id, j.destination, j.attempts, i.sop_class_uid, i.sop_uid, i.transfer_syntax, i.blob_key, \
             i.size_bytes FROM forward_job j JOIN instance i ON i.id = j.instance_id WHERE j.id = ?",
        ))
        .bind(id)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        jobs.push(ForwardJob {
            id,
            destination: r.try_get("destination").map_err(db_err)?,
            sop_class_uid: r.try_get("sop_class_uid").map_err(db_err)?,
            sop_uid: r.try_get("sop_uid").map_err(db_err)?,
            transfer_syntax: r.try_get("transfer_syntax").map_err(db_err)?,
            blob_key: r.try_get("blob_key").map_err(db_err)?,
            size_bytes: r.try_get("size_bytes").map_err(db_err)?,
            attempts: r.try_get("attempts").map_err(db_err)?,
        });
    }
    tx.commit().await.map_err(db_err)?;
    Ok(jobs)
}

pub(crate) async fn complete(index: &SqlIndex, id: i64) -> Result<()> {
    sqlx::query(index.sql("DELETE FROM forward_job WHERE id = ?")).bind(id).execute(&index.pool).await.map_err(db_err)?;
    Ok(())
}

pub(crate) async fn fail(index: &SqlIndex, id: i64, error: &str, retry_at: Option<i64>) -> Result<()> {
    let error: String = error.chars().take(1000).collect();
    match retry_at {
        Some(at) => sqlx::query(index.sql(
            "UPDATE forward_job SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE id = ?",
        ))
        .bind(error)
        .bind(at)
        .bind(id),
        None => sqlx::query(index.sql(
            "UPDATE forward_job SET attempts = attempts + 1, last_error = ?, state = 'failed' WHERE id = ?",
        ))
        .bind(error)
        .bind(id),
    }
    .execute(&index.pool)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub(crate) async fn backlog(index: &SqlIndex) -> Result<Vec<ForwardBacklog>> {
    let rows = sqlx::query(index.sql(
        "SELECT destination, \
         SUM(CASE WHEN state = 'pending' THEN 1 ELSE 0 END) AS pending, \
         SUM(CASE WHEN state = 'failed' THEN 1 ELSE 0 END) AS failed, \
         MIN(CASE WHEN state = 'pending' THEN created_at END) AS oldest, \
         MAX(id) AS last_id \
         FROM forward_job GROUP BY destination ORDER BY destination",
    ))
    .fetch_all(&index.pool)
    .await
    .map_err(db_err)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let destination: String = r.try_get("destination").map_err(db_err)?;
        let last_error: Option<String> = sqlx::query(index.sql(
            "SELECT last_error FROM forward_job WHERE destination = ? AND last_error IS NOT NULL ORDER BY id DESC LIMIT 1",
        ))
        .bind(destination.as_str())
        .fetch_optional(&index.pool)
        .await
        .map_err(db_err)?
        .map(|r| r.try_get("last_error"))
        .transpose()
        .map_err(db_err)?;
        out.push(ForwardBacklog {
            destination,
            pending: r.try_get::<Option<i64>, _>("pending").map_err(db_err)?.unwrap_or(0),
            failed: r.try_get::<Option<i64>, _>("failed").map_err(db_err)?.unwrap_or(0),
            oldest_pending_at: r.try_get("oldest").map_err(db_err)?,
            last_error,
        });
    }
    Ok(out)
}
