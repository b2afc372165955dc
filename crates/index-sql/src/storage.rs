//! Storage jobs in SQL: the cloud copy queue (columns of the instance row,
//! claimed with a lease; `FOR UPDATE SKIP LOCKED` on PostgreSQL, SQLite has
//! one writer), leases of jobs that run on one node at a time, storage tasks
//! (migrations, scrubbing runs) and damaged objects.

use sqlx::Row;
use sqlx::any::AnyRow;
use yunying_index::*;

use crate::{SqlIndex, db_err};

/// `cloud_state` values.
pub(crate) const CLOUD_NOT_WANTED: i64 = 0;
pub(crate) const CLOUD_WANTED: i64 = 1;
pub(crate) const CLOUD_COPIED: i64 = 2;
pub(crate) const CLOUD_FAILED: i64 = 3;
pub(crate) const CLOUD_REMOVED: i64 = 4;

fn blob_record(r: &AnyRow) -> Result<BlobRecord> {
    Ok(BlobRecord {
        id: r.try_get("id").map_err(db_err)?,
        blob_key: r.try_get("blob_key").map_err(db_err)?,
        sha256: r.try_get("sha256").map_err(db_err)?,
        size_bytes: r.try_get("size_bytes").map_err(db_err)?,
        in_cloud: r.try_get::<i64, _>("cloud_state").map_err(db_err)? == CLOUD_COPIED,
    })
}

pub(crate) async fn claim_cloud(index: &SqlIndex, now: i64, lease_until: i64, limit: u32) -> Result<Vec<CloudCopyTask>> {
    let pick = match index.dialect() {
        yunying_index::sql::Dialect::Postgres => {
            "SELECT id, blob_key, sha256, size_bytes, cloud_state, cloud_attempts FROM instance \
             WHERE cloud_state = 1 AND cloud_due <= ? ORDER BY cloud_due, id LIMIT ? FOR UPDATE SKIP LOCKED"
        }
        yunying_index::sql::Dialect::Sqlite => {
            "SELECT id, blob_key, sha256, size_bytes, cloud_state, cloud_attempts FROM instance \
             WHERE cloud_state = 1 AND cloud_due <= ? ORDER BY cloud_due, id LIMIT ?"
        }
    };
    let mut tx = index.begin_write().await.map_err(db_err)?;
    let rows = sqlx::query(index.sql(pick))
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
    let mut tasks = Vec::with_capacity(rows.len());
    for r in &rows {
        tasks.push(CloudCopyTask { blob: blob_record(r)?, attempts: r.try_get("cloud_attempts").map_err(db_err)? });
    }
    if !tasks.is_empty() {
        let ids = tasks.iter().map(|t| t.blob.id.to_string()).collect::<Vec<_>>().join(", ");
        // Ids are integers from the catalog itself.
        let sql = crate::number_placeholders(&format!("UPDATE instance SET cloud_due = ? WHERE id IN ({ids})"), index.dialect);
        sqlx::query(index.dynamic(sql)).bind(lease_until).execute(&mut *tx).await.map_err(db_err)?;
    }
    tx.commit().await.map_err(db_err)?;
    Ok(tasks)
}

pub(crate) async fn finish_cloud(index: &SqlIndex, id: i64, outcome: &CloudCopyOutcome) -> Result<()> {
    let q = match outcome {
        CloudCopyOutcome::Copied { at } => sqlx::query(index.sql(
            "UPDATE instance SET cloud_state = ?, cloud_at = ?, cloud_error = NULL WHERE id = ? AND cloud_state = 1",
        ))
        .bind(CLOUD_COPIED)
        .bind(*at)
        .bind(id),
        CloudCopyOutcome::Failed { error, retry_at } => {
            let error: String = error.chars().take(1000).collect();
            match retry_at {
                Some(at) => sqlx::query(index.sql(
                    "UPDATE instance SET cloud_attempts = cloud_attempts + 1, cloud_error = ?, cloud_due = ? \
                     WHERE id = ? AND cloud_state = 1",
                ))
                .bind(error)
                .bind(*at)
                .bind(id),
                None => sqlx::query(index.sql(
                    "UPDATE instance SET cloud_attempts = cloud_attempts + 1, cloud_error = ?, cloud_state = ? \
                     WHERE id = ? AND cloud_state = 1",
                ))
                .bind(error)
                .bind(CLOUD_FAILED)
                .bind(id),
            }
        }
    };
    q.execute(&index.pool).await.map_err(db_err)?;
    Ok(())
}

pub(crate) async fn request_cloud(index: &SqlIndex, since: &str, retry_failed: bool, now: i64) -> Result<u64> {
    let states = if retry_failed { "0, 3, 4" } else { "0, 4" };
    let sql = crate::number_placeholders(
        &format!(
            "UPDATE instance SET cloud_state = 1, cloud_due = ?, cloud_attempts = 0, cloud_error = NULL \
             WHERE cloud_state IN ({states}) AND study_id IN \
             (SELECT id FROM study WHERE study_date = '' OR study_date >= ?)"
        ),
        index.dialect,
    );
    let done = sqlx::query(index.dynamic(sql)).bind(now).bind(since).execute(&index.pool).await.map_err(db_err)?;
    Ok(done.rows_affected())
}

pub(crate) async fn cloud_expired(index: &SqlIndex, before: &str, after: i64, limit: u32) -> Result<Vec<BlobRecord>> {
    let rows = sqlx::query(index.sql(
        "SELECT i.id, i.blob_key, i.sha256, i.size_bytes, i.cloud_state FROM instance i \
         JOIN study st ON st.id = i.study_id \
         WHERE i.cloud_state = 2 AND st.study_date <> '' AND st.study_date < ? AND i.id > ? ORDER BY i.id LIMIT ?",
    ))
    .bind(before)
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(&index.pool)
    .await
    .map_err(db_err)?;
    rows.iter().map(blob_record).collect()
}

pub(crate) async fn mark_cloud_removed(index: &SqlIndex, ids: &[i64], at: i64) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
    let sql = crate::number_placeholders(
        &format!("UPDATE instance SET cloud_state = ?, cloud_at = ? WHERE cloud_state = 2 AND id IN ({list})"),
        index.dialect,
    );
    sqlx::query(index.dynamic(sql)).bind(CLOUD_REMOVED).bind(at).execute(&index.pool).await.map_err(db_err)?;
    Ok(())
}

pub(crate) async fn cloud_backlog(index: &SqlIndex) -> Result<CloudBacklog> {
    let r = sqlx::query(index.sql(
        "SELECT \
         CAST(COALESCE(SUM(CASE WHEN cloud_state = 1 THEN 1 ELSE 0 END), 0) AS BIGINT) AS pending, \
         CAST(COALESCE(SUM(CASE WHEN cloud_state = 1 THEN size_bytes ELSE 0 END), 0) AS BIGINT) AS pending_bytes, \
         CAST(COALESCE(SUM(CASE WHEN cloud_state = 1 AND cloud_attempts > 0 THEN 1 ELSE 0 END), 0) AS BIGINT) AS retrying, \
         CAST(COALESCE(SUM(CASE WHEN cloud_state = 3 THEN 1 ELSE 0 END), 0) AS BIGINT) AS failed, \
         CAST(COALESCE(SUM(CASE WHEN cloud_state = 2 THEN 1 ELSE 0 END), 0) AS BIGINT) AS copied, \
         CAST(COALESCE(SUM(CASE WHEN cloud_state = 4 THEN 1 ELSE 0 END), 0) AS BIGINT) AS removed, \
         MIN(CASE WHEN cloud_state = 1 THEN received_at END) AS oldest \
         FROM instance WHERE cloud_state <> 0",
    ))
    .fetch_one(&index.pool)
    .await
    .map_err(db_err)?;
    let last_error: Option<String> = sqlx::query(index.sql(
        "SELECT cloud_error FROM instance WHERE cloud_state IN (1, 3) AND cloud_error IS NOT NULL \
         ORDER BY cloud_due DESC, id DESC LIMIT 1",
    ))
    .fetch_optional(&index.pool)
    .await
    .map_err(db_err)?
    .map(|r| r.try_get("cloud_error"))
    .transpose()
    .map_err(db_err)?;
    Ok(CloudBacklog {
        pending: r.try_get("pending").map_err(db_err)?,
        pending_bytes: r.try_get("pending_bytes").map_err(db_err)?,
        retrying: r.try_get("retrying").map_err(db_err)?,
        failed: r.try_get("failed").map_err(db_err)?,
        copied: r.try_get("copied").map_err(db_err)?,
        removed: r.try_get("removed").map_err(db_err)?,
        oldest_pending_received_at: r.try_get("oldest").map_err(db_err)?,
        last_error,
    })
}

pub(crate) async fn blob_records(index: &SqlIndex, after: i64, up_to: i64, limit: u32) -> Result<Vec<BlobRecord>> {
    let rows = sqlx::query(index.sql(
        "SELECT id, blob_key, sha256, size_bytes, cloud_state FROM instance WHERE id > ? AND id <= ? ORDER BY id LIMIT ?",
    ))
    .bind(after)
    .bind(up_to)
    .bind(i64::from(limit))
    .fetch_all(&index.pool)
    .await
    .map_err(db_err)?;
    rows.iter().map(blob_record).collect()
}

pub(crate) async fn max_instance_id(index: &SqlIndex) -> Result<i64> {
    let r = sqlx::query(index.sql("SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT) AS m FROM instance"))
        .fetch_one(&index.pool)
        .await
        .map_err(db_err)?;
    r.try_get("m").map_err(db_err)
}

pub(crate) async fn try_lease(index: &SqlIndex, name: &str, holder: &str, now: i64, until: i64) -> Result<bool> {
    // Insert the lease when it is new; otherwise take it only when it has
    // expired or is ours. One statement each, so two nodes cannot both win.
    let inserted = sqlx::query(index.sql(
        "INSERT INTO job_lease (name, holder, until_ms) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
    ))
    .bind(name)
    .bind(holder)
    .bind(until)
    .execute(&index.pool)
    .await
    .map_err(db_err)?;
    if inserted.rows_affected() == 1 {
        return Ok(true);
    }
    let taken = sqlx::query(index.sql(
        "UPDATE job_lease SET holder = ?, until_ms = ? WHERE name = ? AND (holder = ? OR until_ms < ?)",
    ))
    .bind(holder)
    .bind(until)
    .bind(name)
    .bind(holder)
    .bind(now)
    .execute(&index.pool)
    .await
    .map_err(db_err)?;
    Ok(taken.rows_affected() == 1)
}

pub(crate) async fn release_lease(index: &SqlIndex, name: &str, holder: &str) -> Result<()> {
    sqlx::query(index.sql("DELETE FROM job_lease WHERE name = ? AND holder = ?"))
        .bind(name)
        .bind(holder)
        .execute(&index.pool)
        .await
        .map_err(db_err)?;
    Ok(())
}

const TASK_COLUMNS: &str = "id, kind, source, target, state, cursor_id, last_id, objects, bytes, skipped, problems, \
     started_at, updated_at, finished_at, last_error";

fn task(r: &AnyRow) -> Result<StorageTask> {
    let g = |e| db_err(e);
    Ok(StorageTask {
        id: r.try_get("id").map_err(g)?,
        kind: r.try_get("kind").map_err(g)?,
        source: r.try_get("source").map_err(g)?,
        target: r.try_get("target").map_err(g)?,
        state: r.try_get("state").map_err(g)?,
        cursor_id: r.try_get("cursor_id").map_err(g)?,
        last_id: r.try_get("last_id").map_err(g)?,
        objects: r.try_get("objects").map_err(g)?,
        bytes: r.try_get("bytes").map_err(g)?,
        skipped: r.try_get("skipped").map_err(g)?,
        problems: r.try_get("problems").map_err(g)?,
        started_at: r.try_get("started_at").map_err(g)?,
        updated_at: r.try_get("updated_at").map_err(g)?,
        finished_at: r.try_get("finished_at").map_err(g)?,
        last_error: r.try_get("last_error").map_err(g)?,
    })
}

pub(crate) async fn create_task(
    index: &SqlIndex,
    kind: &str,
    source: &str,
    target: Option<&str>,
    last_id: i64,
    now: i64,
) -> Result<StorageTask> {
    let sql = crate::number_placeholders(
        &format!(
            "INSERT INTO storage_task (kind, source, target, state, last_id, started_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING {TASK_COLUMNS}"
        ),
        index.dialect,
    );
    let r = sqlx::query(index.dynamic(sql))
        .bind(kind)
        .bind(source)
        .bind(target)
        .bind(StorageTask::RUNNING)
        .bind(last_id)
        .bind(now)
        .bind(now)
        .fetch_one(&index.pool)
        .await
        .map_err(db_err)?;
    task(&r)
}

pub(crate) async fn save_task(index: &SqlIndex, t: &StorageTask) -> Result<()> {
    let done = sqlx::query(index.sql(
        "UPDATE storage_task SET state = ?, cursor_id = ?, last_id = ?, objects = ?, bytes = ?, skipped = ?, \
         problems = ?, updated_at = ?, finished_at = ?, last_error = ? WHERE id = ?",
    ))
    .bind(t.state.as_str())
    .bind(t.cursor_id)
    .bind(t.last_id)
    .bind(t.objects)
    .bind(t.bytes)
    .bind(t.skipped)
    .bind(t.problems)
    .bind(t.updated_at)
    .bind(t.finished_at)
    .bind(t.last_error.as_deref())
    .bind(t.id)
    .execute(&index.pool)
    .await
    .map_err(db_err)?;
    if done.rows_affected() == 0 {
        return Err(IndexError::NotFound(format!("storage task {}", t.id)));
    }
    Ok(())
}

pub(crate) async fn tasks(index: &SqlIndex, kind: Option<&str>, limit: u32) -> Result<Vec<StorageTask>> {
    let rows = match kind {
        Some(k) => {
            let sql = crate::number_placeholders(
                &format!("SELECT {TASK_COLUMNS} FROM storage_task WHERE kind = ? ORDER BY id DESC LIMIT ?"),
                index.dialect,
            );
            sqlx::query(index.dynamic(sql)).bind(k).bind(i64::from(limit)).fetch_all(&index.pool).await
        }
        None => {
            let sql = crate::number_placeholders(
                &format!("SELECT {TASK_COLUMNS} FROM storage_task ORDER BY id DESC LIMIT ?"),
                index.dialect,
            );
            sqlx::query(index.dynamic(sql)).bind(i64::from(limit)).fetch_all(&index.pool).await
        }
    }
    .map_err(db_err)?;
    rows.iter().map(task).collect()
}

pub(crate) async fn record_problem(index: &SqlIndex, p: &BlobProblem) -> Result<()> {
    let detail: String = p.detail.chars().take(2000).collect();
    sqlx::query(index.sql(
        "INSERT INTO blob_problem (store, blob_key, instance_id, problem, detail, found_at) VALUES (?, ?, ?, ?, ?, ?)",
    ))
    .bind(p.store.as_str())
    .bind(p.blob_key.as_str())
    .bind(p.instance_id)
    .bind(p.problem.as_str())
    .bind(detail)
    .bind(p.found_at)
    .execute(&index.pool)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub(crate) async fn resolve_problems(index: &SqlIndex, store: &str, key: &str, resolution: &str, at: i64) -> Result<u64> {
    let done = sqlx::query(index.sql(
        "UPDATE blob_problem SET resolved_at = ?, resolution = ? WHERE store = ? AND blob_key = ? AND resolved_at IS NULL",
    ))
    .bind(at)
    .bind(resolution)
    .bind(store)
    .bind(key)
    .execute(&index.pool)
    .await
    .map_err(db_err)?;
    Ok(done.rows_affected())
}

pub(crate) async fn open_problems(index: &SqlIndex, limit: u32) -> Result<(Vec<BlobProblem>, i64)> {
    let rows = sqlx::query(index.sql(
        "SELECT id, store, blob_key, instance_id, problem, detail, found_at, resolved_at, resolution \
         FROM blob_problem WHERE resolved_at IS NULL ORDER BY found_at DESC, id DESC LIMIT ?",
    ))
    .bind(i64::from(limit))
    .fetch_all(&index.pool)
    .await
    .map_err(db_err)?;
    let list = rows
        .iter()
        .map(|r| {
            Ok(BlobProblem {
                id: r.try_get("id")?,
                store: r.try_get("store")?,
                blob_key: r.try_get("blob_key")?,
                instance_id: r.try_get("instance_id")?,
                problem: r.try_get("problem")?,
                detail: r.try_get("detail")?,
                found_at: r.try_get("found_at")?,
                resolved_at: r.try_get("resolved_at")?,
                resolution: r.try_get("resolution")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(db_err)?;
    let n: i64 = sqlx::query(index.sql(
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM blob_problem WHERE resolved_at IS NULL",
    ))
    .fetch_one(&index.pool)
    .await
    .map_err(db_err)?
    .try_get("n")
    .map_err(db_err)?;
    Ok((list, n))
}
