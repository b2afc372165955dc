//! The catalog in SQL, shared by the SQLite and PostgreSQL backends.
//!
//! [`SqlIndex`] implements [`yunying_index::Index`] over sqlx's `Any` driver,
//! so the ingest transaction, the queries and their matching are written once
//! and behave the same on both engines. What differs per engine (connection
//! set-up, pragmas, the schema's DDL in `migrations/`) lives in
//! `yunying-index-sqlite` and `yunying-index-postgres`, which hand a pool and
//! their migrations to [`SqlIndex::open`].
//!
//! SQL here is written with `?` placeholders and rewritten to the engine's
//! numbered form (`?1` / `$1`) by [`SqlIndex::sql`].

mod application_entities;
mod audit;
mod commit;
mod derive_queue;
mod storage;
mod directory;
mod forward_jobs;
mod migrate;
mod queries;
mod retention;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use sqlx::AnyPool;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};
use yunying_index::sql::{Dialect, Param};
use yunying_index::*;
use yunying_util::InstitutionId;

pub use migrate::Migration;

/// The SQL catalog.
pub struct SqlIndex {
    pool: AnyPool,
    dialect: Dialect,
    backend: &'static str,
    /// SQL text rewritten for the dialect, by template.
    rewritten: Mutex<HashMap<&'static str, Arc<str>>>,
}

/// Maps a sqlx error to the catalog's error.
pub(crate) fn db_err(e: sqlx::Error) -> IndexError {
    IndexError::Backend(e.to_string())
}

/// True for a unique-constraint violation (a concurrent writer got there first).
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => d.is_unique_violation(),
        _ => false,
    }
}

impl SqlIndex {
    /// Wraps a pool and brings the schema up to date.
    pub async fn open(
        pool: AnyPool,
        dialect: Dialect,
        backend: &'static str,
        migrations: &[Migration],
    ) -> Result<SqlIndex> {
        let index = SqlIndex { pool, dialect, backend, rewritten: Mutex::new(HashMap::new()) };
        migrate::run(&index, migrations).await?;
        Ok(index)
    }

    /// The pool, for backend-specific maintenance.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Rewrites `?` placeholders to the dialect's numbered form. Templates are
    /// static, so the result is cached (and sqlx's statement cache hits).
    pub(crate) fn sql(&self, template: &'static str) -> AssertSqlSafe<String> {
        let mut cache = self.rewritten.lock().expect("sql cache poisoned");
        let s = cache.entry(template).or_insert_with(|| Arc::from(number_placeholders(template, self.dialect)));
        AssertSqlSafe(s.to_string())
    }

    /// Begins a transaction that will write. On SQLite it takes the write
    /// lock at once (`BEGIN IMMEDIATE`): a deferred transaction that reads
    /// first cannot upgrade once another connection has written meanwhile
    /// (SQLITE_BUSY_SNAPSHOT, which the busy timeout does not wait out).
    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.dialect {
            Dialect::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Dialect::Postgres => self.pool.begin().await,
        }
    }

    /// A one-off statement built at run time (already numbered).
    pub(crate) fn dynamic(&self, sql: String) -> AssertSqlSafe<String> {
        AssertSqlSafe(sql)
    }
}

/// Replaces each `?` with `?N` (SQLite) or `$N` (PostgreSQL).
pub fn number_placeholders(template: &str, dialect: Dialect) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut n = 0;
    for c in template.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&dialect.placeholder(n));
        } else {
            out.push(c);
        }
    }
    out
}

pub(crate) fn bind_params<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    params: &'q [Param],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    for p in params {
        q = match p {
            Param::Text(s) => q.bind(s.as_str()),
            Param::Int(i) => q.bind(*i),
        };
    }
    q
}

fn institution_from_row(r: &AnyRow) -> Result<Institution> {
    let ae: String = r.try_get("ae_titles").map_err(db_err)?;
    Ok(Institution {
        id: InstitutionId(r.try_get("id").map_err(db_err)?),
        code: r.try_get("code").map_err(db_err)?,
        name_zh: r.try_get("name_zh").map_err(db_err)?,
        name_en: r.try_get("name_en").map_err(db_err)?,
        patient_id_issuer: r.try_get("patient_id_issuer").map_err(db_err)?,
        ae_titles: serde_json::from_str(&ae).unwrap_or_default(),
        created_at: r.try_get("created_at").map_err(db_err)?,
    })
}

#[async_trait]
impl Index for SqlIndex {
    fn backend(&self) -> &'static str {
        self.backend
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query(self.sql("SELECT 1")).execute(&self.pool).await.map_err(db_err)?;
        Ok(())
    }

    async fn upsert_institution(&self, new: &NewInstitution) -> Result<Institution> {
        if new.code.trim().is_empty() {
            return Err(IndexError::Invalid("institution code is empty".into()));
        }
        let registry_titles = new
            .ae_titles
            .iter()
            .map(|t| normalized_ae_title(t))
            .collect::<Result<Vec<&str>, String>>()
            .map_err(|e| IndexError::Invalid(format!("institution {}: {e}", new.code)))?;
        let ae = serde_json::to_string(&new.ae_titles).unwrap_or_else(|_| "[]".into());
        let issuer = new.patient_id_issuer.clone().unwrap_or_else(|| new.code.clone());
        let now = yunying_util::time::now_millis();
        let mut tx = self.begin_write().await.map_err(db_err)?;
        let row = sqlx::query(self.sql(
            "INSERT INTO institution (code, name_zh, name_en, patient_id_issuer, ae_titles, created_at) \
             VALUES (?, ?, ?, ?, ?, ?) \
             ON CONFLICT (code) DO UPDATE SET name_zh = excluded.name_zh, name_en = excluded.name_en, \
             ae_titles = excluded.ae_titles \
             RETURNING id, code, name_zh, name_en, patient_id_issuer, ae_titles, created_at",
        ))
        .bind(new.code.as_str())
        .bind(new.name_zh.as_str())
        .bind(new.name_en.as_str())
        .bind(issuer.as_str())
        .bind(ae.as_str())
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                IndexError::Conflict(format!("patient ID issuer {issuer:?} is already used by another institution"))
            } else {
                db_err(e)
            }
        })?;
        let mut inst = institution_from_row(&row)?;
        if let Some(explicit) = &new.patient_id_issuer
            && *explicit != inst.patient_id_issuer
        {
            sqlx::query(self.sql("UPDATE institution SET patient_id_issuer = ? WHERE id = ?"))
                .bind(explicit.as_str())
                .bind(inst.id.0)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            inst.patient_id_issuer = explicit.clone();
        }
        application_entities::register_institution_titles(self, &mut tx, inst.id, &registry_titles, now).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(inst)
    }

    async fn institution_by_code(&self, code: &str) -> Result<Option<Institution>> {
        let row = sqlx::query(self.sql(
            "SELECT id, code, name_zh, name_en, patient_id_issuer, ae_titles, created_at FROM institution WHERE code = ?",
        ))
        .bind(code)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(institution_from_row).transpose()
    }

    async fn institutions(&self) -> Result<Vec<Institution>> {
        let rows = sqlx::query(self.sql(
            "SELECT id, code, name_zh, name_en, patient_id_issuer, ae_titles, created_at FROM institution ORDER BY id",
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(institution_from_row).collect()
    }

    async fn upsert_application_entity(&self, new: &NewApplicationEntity) -> Result<ApplicationEntity> {
        application_entities::upsert(self, new).await
    }

    async fn remove_application_entity(&self, ae_title: &str) -> Result<bool> {
        application_entities::remove(self, ae_title).await
    }

    async fn application_entities(&self) -> Result<Vec<ApplicationEntity>> {
        application_entities::list(self).await
    }

    async fn application_entity(&self, ae_title: &str) -> Result<Option<ApplicationEntity>> {
        application_entities::by_title(self, ae_title).await
    }

    async fn claim_forward_jobs(&self, now: i64, lease_until: i64, limit: u32) -> Result<Vec<ForwardJob>> {
        forward_jobs::claim(self, now, lease_until, limit).await
    }

    async fn complete_forward_job(&self, id: i64) -> Result<()> {
        forward_jobs::complete(self, id).await
    }

    async fn fail_forward_job(&self, id: i64, error: &str, retry_at: Option<i64>) -> Result<()> {
        forward_jobs::fail(self, id, error, retry_at).await
    }

    async fn forward_backlog(&self) -> Result<Vec<ForwardBacklog>> {
        forward_jobs::backlog(self).await
    }

    async fn claim_cloud_copies(&self, now: i64, lease_until: i64, limit: u32) -> Result<Vec<CloudCopyTask>> {
        storage::claim_cloud(self, now, lease_until, limit).await
    }

    async fn finish_cloud_copy(&self, id: i64, outcome: &CloudCopyOutcome) -> Result<()> {
        storage::finish_cloud(self, id, outcome).await
    }

    async fn request_cloud_copies(&self, since_study_date: &str, retry_failed: bool, now: i64) -> Result<u64> {
        storage::request_cloud(self, since_study_date, retry_failed, now).await
    }

    async fn cloud_expired(&self, before_study_date: &str, after_id: i64, limit: u32) -> Result<Vec<BlobRecord>> {
        storage::cloud_expired(self, before_study_date, after_id, limit).await
    }

    async fn mark_cloud_removed(&self, ids: &[i64], at: i64) -> Result<()> {
        storage::mark_cloud_removed(self, ids, at).await
    }

    async fn cloud_backlog(&self) -> Result<CloudBacklog> {
        storage::cloud_backlog(self).await
    }

    async fn blob_records(&self, after_id: i64, up_to_id: i64, limit: u32) -> Result<Vec<BlobRecord>> {
        storage::blob_records(self, after_id, up_to_id, limit).await
    }

    async fn max_instance_id(&self) -> Result<i64> {
        storage::max_instance_id(self).await
    }

    async fn try_lease(&self, name: &str, holder: &str, now: i64, until: i64) -> Result<bool> {
        storage::try_lease(self, name, holder, now, until).await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        storage::release_lease(self, name, holder).await
    }

    async fn create_storage_task(&self, kind: &str, source: &str, target: Option<&str>, last_id: i64, now: i64) -> Result<StorageTask> {
        storage::create_task(self, kind, source, target, last_id, now).await
    }

    async fn save_storage_task(&self, task: &StorageTask) -> Result<()> {
        storage::save_task(self, task).await
    }

    async fn storage_tasks(&self, kind: Option<&str>, limit: u32) -> Result<Vec<StorageTask>> {
        storage::tasks(self, kind, limit).await
    }

    async fn record_blob_problem(&self, p: &BlobProblem) -> Result<()> {
        storage::record_problem(self, p).await
    }

    async fn resolve_blob_problems(&self, store: &str, blob_key: &str, resolution: &str, at: i64) -> Result<u64> {
        storage::resolve_problems(self, store, blob_key, resolution, at).await
    }

    async fn open_blob_problems(&self, limit: u32) -> Result<(Vec<BlobProblem>, i64)> {
        storage::open_problems(self, limit).await
    }

    async fn claim_derive(&self, now: i64, lease_until: i64, limit: u32) -> Result<Vec<DeriveTask>> {
        derive_queue::claim(self, now, lease_until, limit).await
    }

    async fn finish_derive(&self, id: i64, outcome: &DeriveOutcome) -> Result<()> {
        derive_queue::finish(self, id, outcome).await
    }

    async fn request_derive(&self, scope: Option<&Scope>, modalities: &[String], now: i64) -> Result<u64> {
        derive_queue::request(self, scope, modalities, now).await
    }

    async fn derive_backlog(&self) -> Result<DeriveBacklog> {
        derive_queue::backlog(self).await
    }

    async fn find_version(&self, sop_uid: &str, sha256: &str) -> Result<Option<InstanceRef>> {
        let row = sqlx::query(self.sql(
            "SELECT id, sop_uid, version, blob_key FROM instance WHERE sop_uid = ? AND sha256 = ?",
        ))
        .bind(sop_uid)
        .bind(sha256)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.map(|r| commit::instance_ref(&r)).transpose()
    }

    async fn commit(&self, batch: &[NewInstance]) -> Result<Vec<Result<CommitOutcome>>> {
        commit::commit(self, batch).await
    }

    async fn blob_key_indexed(&self, key: &str) -> Result<bool> {
        let row = sqlx::query(self.sql("SELECT 1 FROM instance WHERE blob_key = ?"))
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(row.is_some())
    }

    async fn query_studies(&self, q: &Query) -> Result<Vec<StudyRow>> {
        queries::studies(self, q).await
    }

    async fn count_studies(&self, q: &Query) -> Result<u64> {
        queries::count_studies(self, q).await
    }

    async fn query_series(&self, q: &Query) -> Result<Vec<SeriesRow>> {
        queries::series(self, q).await
    }

    async fn query_instances(&self, q: &Query) -> Result<Vec<InstanceRow>> {
        queries::instances(self, q).await
    }

    async fn stored_instances(&self, scope: &Scope) -> Result<Vec<StoredInstance>> {
        queries::stored_instances(self, scope).await
    }

    async fn metadata(&self, scope: &Scope) -> Result<Vec<String>> {
        queries::metadata(self, scope).await
    }

    async fn counts(&self) -> Result<Counts> {
        let row = sqlx::query(self.sql(
            "SELECT \
             (SELECT COUNT(*) FROM institution) AS institutions, \
             (SELECT COUNT(*) FROM patient) AS patients, \
             (SELECT COUNT(*) FROM study) AS studies, \
             (SELECT COUNT(*) FROM series) AS series, \
             (SELECT COUNT(*) FROM instance WHERE current = 1) AS instances, \
             (SELECT COUNT(*) FROM instance) AS instance_versions, \
             (SELECT CAST(COALESCE(SUM(size_bytes), 0) AS BIGINT) FROM instance) AS bytes",
        ))
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        let get = |c: &str| -> Result<i64> { row.try_get::<i64, _>(c).map_err(db_err) };
        Ok(Counts {
            institutions: get("institutions")?,
            patients: get("patients")?,
            studies: get("studies")?,
            series: get("series")?,
            instances: get("instances")?,
            instance_versions: get("instance_versions")?,
            bytes: get("bytes")?,
        })
    }

    async fn set_institution_regional(&self, id: InstitutionId, regional: bool) -> Result<()> {
        self.set_regional(id, regional).await
    }
    async fn regional_institutions(&self) -> Result<Vec<InstitutionId>> {
        self.regional().await
    }
    async fn create_user(&self, new: &NewUser) -> Result<User> {
        self.insert_user(new).await
    }
    async fn user_by_username(&self, username: &str) -> Result<Option<User>> {
        self.user_named(username).await
    }
    async fn user_by_id(&self, id: i64) -> Result<Option<User>> {
        self.user(id).await
    }
    async fn users(&self) -> Result<Vec<User>> {
        self.all_users().await
    }
    async fn change_user(&self, id: i64, change: &UserChange) -> Result<User> {
        self.apply_user_change(id, change).await
    }
    async fn record_login_failure(&self, id: i64, max_failures: i64, lock_until: i64) -> Result<User> {
        self.login_failure(id, max_failures, lock_until).await
    }
    async fn record_login_success(&self, id: i64, at: i64) -> Result<()> {
        self.login_success(id, at).await
    }
    async fn use_totp_step(&self, id: i64, step: i64) -> Result<bool> {
        self.totp_step(id, step).await
    }
    async fn create_session(&self, s: &Session) -> Result<()> {
        self.insert_session(s).await
    }
    async fn session(&self, id_hash: &str) -> Result<Option<Session>> {
        self.session_by_hash(id_hash).await
    }
    async fn touch_session(&self, id_hash: &str, at: i64) -> Result<()> {
        self.session_seen(id_hash, at).await
    }
    async fn end_session(&self, id_hash: &str) -> Result<()> {
        self.delete_session(id_hash).await
    }
    async fn end_user_sessions(&self, user_id: i64) -> Result<u64> {
        self.delete_user_sessions(user_id).await
    }
    async fn create_credential(&self, new: &NewCredential) -> Result<Credential> {
        self.insert_credential(new).await
    }
    async fn credential_by_secret(&self, secret_hash: &str) -> Result<Option<Credential>> {
        self.credential_where("secret_hash", secret_hash).await
    }
    async fn credential_by_public_id(&self, public_id: &str) -> Result<Option<Credential>> {
        self.credential_where("public_id", public_id).await
    }
    async fn credentials(&self) -> Result<Vec<Credential>> {
        self.list_credentials().await
    }
    async fn revoke_credential(&self, id: i64, at: i64) -> Result<bool> {
        self.revoke(id, at).await
    }
    async fn touch_credential(&self, id: i64, at: i64) -> Result<()> {
        self.credential_used(id, at).await
    }
    async fn create_grant(&self, new: &NewGrant) -> Result<Grant> {
        self.insert_grant(new).await
    }
    async fn active_grants(&self, user_id: Option<i64>, institution_id: Option<InstitutionId>, now: i64) -> Result<Vec<Grant>> {
        self.grants_to(user_id, institution_id, now).await
    }
    async fn study_grants(&self, study_uid: &str) -> Result<Vec<Grant>> {
        self.grants_on(study_uid).await
    }
    async fn revoke_grant(&self, id: i64, at: i64) -> Result<bool> {
        self.grant_revoke(id, at).await
    }
    async fn patients_by_secret(&self, kind: &str, blind_index: &str) -> Result<Vec<i64>> {
        self.secret_patients(kind, blind_index).await
    }
    async fn patient_secrets(&self, patient_id: i64) -> Result<Vec<PatientSecret>> {
        self.secrets_of(patient_id).await
    }
    async fn secrets_page(&self, after: i64, limit: u32) -> Result<Vec<(i64, PatientSecret)>> {
        self.secrets_after(after, limit).await
    }
    async fn rewrite_secret(&self, row_id: i64, ciphertext: &str, blind_index: &str) -> Result<()> {
        self.secret_rewrite(row_id, ciphertext, blind_index).await
    }
    async fn append_audit(&self, rows: &[AuditRow], anchor: &AuditAnchor) -> Result<()> {
        self.audit_append(rows, anchor).await
    }
    async fn audit_last(&self, chain: &str) -> Result<Option<AuditRow>> {
        self.audit_newest(chain).await
    }
    async fn audit_anchors(&self) -> Result<Vec<AuditAnchor>> {
        self.anchors().await
    }
    async fn audit_chain_names(&self) -> Result<Vec<String>> {
        self.chain_names().await
    }
    async fn audit_chain(&self, chain: &str, after_seq: i64, limit: u32) -> Result<Vec<AuditRow>> {
        self.chain_page(chain, after_seq, limit).await
    }
    async fn audit_search(&self, q: &AuditQuery) -> Result<Vec<AuditRow>> {
        self.search(q).await
    }

    // --- retention, legal holds, approved deletion (see `retention`) ---------

    async fn record_encounter(&self, e: &NewEncounter) -> Result<RecordedEncounter> {
        retention::record_encounter(self, e).await
    }
    async fn recompute_retention(&self, after_id: i64, limit: u32) -> Result<Option<i64>> {
        retention::recompute(self, after_id, limit).await
    }
    async fn study_retention(&self, study_uid: &str) -> Result<Option<StudyRetention>> {
        retention::study(self, study_uid).await
    }
    async fn place_legal_hold(&self, study_uid: &str, reason: &str, by: &str, at: i64) -> Result<LegalHold> {
        retention::place_hold(self, study_uid, reason, by, at).await
    }
    async fn release_legal_hold(&self, study_uid: &str, reason: &str, by: &str, at: i64) -> Result<LegalHold> {
        retention::release_hold(self, study_uid, reason, by, at).await
    }
    async fn legal_holds(&self, study_uid: &str) -> Result<Vec<LegalHold>> {
        retention::holds(self, study_uid).await
    }
    async fn expired_studies(&self, before: &str, limit: u32, offset: u64) -> Result<ExpiredPage> {
        retention::expired(self, before, limit, offset).await
    }
    async fn create_deletion_request(&self, new: &NewDeletionRequest) -> Result<DeletionRequestOutcome> {
        retention::create_request(self, new).await
    }
    async fn deletion_request(&self, id: i64) -> Result<Option<DeletionRequest>> {
        retention::request(self, id).await
    }
    async fn deletion_requests(&self, limit: u32, offset: u64) -> Result<Vec<DeletionRequest>> {
        retention::requests(self, limit, offset).await
    }
    async fn decide_deletion_request(&self, id: i64, decision: &DeletionDecision) -> Result<DeletionRequest> {
        retention::decide(self, id, decision).await
    }
    async fn delete_study_records(&self, request_id: i64, study_uid: &str, by: &str, at: i64, today: &str) -> Result<StudyDeletion> {
        retention::delete_study(self, request_id, study_uid, by, at, today).await
    }
    async fn mark_blobs_removed(&self, deleted_id: i64, at: i64) -> Result<()> {
        retention::blobs_removed(self, deleted_id, at).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn numbering() {
        assert_eq!(number_placeholders("a = ? AND b = ?", Dialect::Sqlite), "a = ?1 AND b = ?2");
        assert_eq!(number_placeholders("a = ? AND b = ?", Dialect::Postgres), "a = $1 AND b = $2");
    }
}
