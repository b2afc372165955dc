//! The directory in SQL: users (`app_user`), sessions (`user_session`),
//! machine credentials (`credential`), grants (`access_grant`), regional
//! institutions, and patients' encrypted personal data (`patient_secret`).

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use yunying_index::*;
use yunying_util::InstitutionId;

use crate::{SqlIndex, db_err, is_unique_violation};

fn now() -> i64 {
    yunying_util::time::now_millis()
}

fn flag(r: &AnyRow, c: &str) -> Result<bool> {
    Ok(r.try_get::<i64, _>(c).map_err(db_err)? != 0)
}

fn json_list(r: &AnyRow, c: &str) -> Result<Vec<String>> {
    let s: String = r.try_get(c).map_err(db_err)?;
    serde_json::from_str(&s).map_err(|e| IndexError::Backend(format!("stored {c} is not a JSON list: {e}")))
}

const USER_COLUMNS: &str = "id, username, display_name, institution_id, roles, password_hash, password_changed_at, \
     must_change_password, totp_secret, totp_enabled, failed_logins, locked_until, disabled, phone, phone_index, \
     last_login_at, created_at, updated_at";

fn user_from_row(r: &AnyRow) -> Result<User> {
    Ok(User {
        id: r.try_get("id").map_err(db_err)?,
        username: r.try_get("username").map_err(db_err)?,
        display_name: r.try_get("display_name").map_err(db_err)?,
        institution_id: r.try_get::<Option<i64>, _>("institution_id").map_err(db_err)?.map(InstitutionId),
        roles: json_list(r, "roles")?,
        password_hash: r.try_get("password_hash").map_err(db_err)?,
        password_changed_at: r.try_get("password_changed_at").map_err(db_err)?,
        must_change_password: flag(r, "must_change_password")?,
        totp_secret: r.try_get("totp_secret").map_err(db_err)?,
        totp_enabled: flag(r, "totp_enabled")?,
        failed_logins: r.try_get("failed_logins").map_err(db_err)?,
        locked_until: r.try_get("locked_until").map_err(db_err)?,
        disabled: flag(r, "disabled")?,
        phone: r.try_get("phone").map_err(db_err)?,
        phone_index: r.try_get("phone_index").map_err(db_err)?,
        last_login_at: r.try_get("last_login_at").map_err(db_err)?,
        created_at: r.try_get("created_at").map_err(db_err)?,
        updated_at: r.try_get("updated_at").map_err(db_err)?,
    })
}

impl SqlIndex {
    pub(crate) async fn set_regional(&self, id: InstitutionId, regional: bool) -> Result<()> {
        let r = sqlx::query(self.sql("UPDATE institution SET regional = ? WHERE id = ?"))
            .bind(i64::from(regional))
            .bind(id.0)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        if r.rows_affected() == 0 {
            return Err(IndexError::NotFound(format!("institution {}", id.0)));
        }
        Ok(())
    }

    pub(crate) async fn regional(&self) -> Result<Vec<InstitutionId>> {
        let rows = sqlx::query(self.sql("SELECT id FROM institution WHERE regional = 1 ORDER BY id"))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(|r| Ok(InstitutionId(r.try_get("id").map_err(db_err)?))).collect()
    }

    pub(crate) async fn insert_user(&self, n: &NewUser) -> Result<User> {
        let t = now();
        let roles = serde_json::to_string(&n.roles).unwrap_or_else(|_| "[]".into());
        let row = sqlx::query(self.sql(
            "INSERT INTO app_user (username, display_name, institution_id, roles, password_hash, password_changed_at, \
             must_change_password, phone, phone_index, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        ))
        .bind(n.username.as_str())
        .bind(n.display_name.as_str())
        .bind(n.institution_id.map(|i| i.0))
        .bind(roles)
        .bind(n.password_hash.as_str())
        .bind(t)
        .bind(i64::from(n.must_change_password))
        .bind(n.phone.as_deref())
        .bind(n.phone_index.as_deref())
        .bind(t)
        .bind(t)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                IndexError::Conflict(format!("the username {:?} is taken", n.username))
            } else {
                db_err(e)
            }
        })?;
        let id: i64 = row.try_get("id").map_err(db_err)?;
        self.user(id).await?.ok_or_else(|| IndexError::Backend("a created user vanished".into()))
    }

    pub(crate) async fn user(&self, id: i64) -> Result<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM app_user WHERE id = {}", self.dialect.placeholder(1));
        let row = sqlx::query(self.dynamic(sql)).bind(id).fetch_optional(&self.pool).await.map_err(db_err)?;
        row.as_ref().map(user_from_row).transpose()
    }

    pub(crate) async fn user_named(&self, username: &str) -> Result<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM app_user WHERE username = {}", self.dialect.placeholder(1));
        let row = sqlx::query(self.dynamic(sql)).bind(username).fetch_optional(&self.pool).await.map_err(db_err)?;
        row.as_ref().map(user_from_row).transpose()
    }

    pub(crate) async fn all_users(&self) -> Result<Vec<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM app_user ORDER BY username");
        let rows = sqlx::query(self.dynamic(sql)).fetch_all(&self.pool).await.map_err(db_err)?;
        rows.iter().map(user_from_row).collect()
    }

    pub(crate) async fn apply_user_change(&self, id: i64, ch: &UserChange) -> Result<User> {
        let mut tx = self.begin_write().await.map_err(db_err)?;
        let t = now();
        let exists = sqlx::query(self.sql("SELECT 1 FROM app_user WHERE id = ?"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
        if exists.is_none() {
            return Err(IndexError::NotFound(format!("user {id}")));
        }
        let c: &mut AnyConnection = &mut tx;
        if let Some(v) = &ch.display_name {
            self.set_user(c, id, "UPDATE app_user SET display_name = ? WHERE id = ?", v.as_str()).await?;
        }
        if let Some(v) = &ch.institution_id {
            sqlx::query(self.sql("UPDATE app_user SET institution_id = ? WHERE id = ?"))
                .bind(v.map(|i| i.0))
                .bind(id)
                .execute(&mut *c)
                .await
                .map_err(db_err)?;
        }
        if let Some(v) = &ch.roles {
            let roles = serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
            self.set_user(c, id, "UPDATE app_user SET roles = ? WHERE id = ?", roles.as_str()).await?;
        }
        if let Some(v) = &ch.password_hash {
            sqlx::query(self.sql("UPDATE app_user SET password_hash = ?, password_changed_at = ? WHERE id = ?"))
                .bind(v.as_str())
                .bind(t)
                .bind(id)
                .execute(&mut *c)
                .await
                .map_err(db_err)?;
        }
        if let Some(v) = ch.must_change_password {
            self.set_user_int(c, id, "UPDATE app_user SET must_change_password = ? WHERE id = ?", i64::from(v)).await?;
        }
        if let Some(v) = &ch.totp {
            let (secret, enabled) = match v {
                Some((s, e)) => (Some(s.as_str()), *e),
                None => (None, false),
            };
            sqlx::query(self.sql("UPDATE app_user SET totp_secret = ?, totp_enabled = ?, totp_last_step = 0 WHERE id = ?"))
                .bind(secret)
                .bind(i64::from(enabled))
                .bind(id)
                .execute(&mut *c)
                .await
                .map_err(db_err)?;
        }
        if let Some(v) = ch.disabled {
            self.set_user_int(c, id, "UPDATE app_user SET disabled = ? WHERE id = ?", i64::from(v)).await?;
        }
        if ch.unlock {
            sqlx::query(self.sql("UPDATE app_user SET failed_logins = 0, locked_until = NULL WHERE id = ?"))
                .bind(id)
                .execute(&mut *c)
                .await
                .map_err(db_err)?;
        }
        if let Some(v) = &ch.phone {
            let (p, i) = match v {
                Some((p, i)) => (Some(p.as_str()), Some(i.as_str())),
                None => (None, None),
            };
            sqlx::query(self.sql("UPDATE app_user SET phone = ?, phone_index = ? WHERE id = ?"))
                .bind(p)
                .bind(i)
                .bind(id)
                .execute(&mut *c)
                .await
                .map_err(db_err)?;
        }
        self.set_user_int(c, id, "UPDATE app_user SET updated_at = ? WHERE id = ?", t).await?;
        tx.commit().await.map_err(db_err)?;
        self.user(id).await?.ok_or_else(|| IndexError::NotFound(format!("user {id}")))
    }

    async fn set_user(&self, c: &mut AnyConnection, id: i64, sql: &'static str, v: &str) -> Result<()> {
        sqlx::query(self.sql(sql)).bind(v).bind(id).execute(c).await.map_err(db_err)?;
        Ok(())
    }

    async fn set_user_int(&self, c: &mut AnyConnection, id: i64, sql: &'static str, v: i64) -> Result<()> {
        sqlx::query(self.sql(sql)).bind(v).bind(id).execute(c).await.map_err(db_err)?;
        Ok(())
    }

    pub(crate) async fn login_failure(&self, id: i64, max_failures: i64, lock_until: i64) -> Result<User> {
        sqlx::query(self.sql(
            "UPDATE app_user SET failed_logins = failed_logins + 1, \
             locked_until = CASE WHEN failed_logins + 1 >= ? THEN ? ELSE locked_until END WHERE id = ?",
        ))
        .bind(max_failures)
        .bind(lock_until)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        self.user(id).await?.ok_or_else(|| IndexError::NotFound(format!("user {id}")))
    }

    pub(crate) async fn login_success(&self, id: i64, at: i64) -> Result<()> {
        sqlx::query(self.sql(
            "UPDATE app_user SET failed_logins = 0, locked_until = NULL, last_login_at = ? WHERE id = ?",
        ))
        .bind(at)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    pub(crate) async fn totp_step(&self, id: i64, step: i64) -> Result<bool> {
        let r = sqlx::query(self.sql("UPDATE app_user SET totp_last_step = ? WHERE id = ? AND totp_last_step < ?"))
            .bind(step)
            .bind(id)
            .bind(step)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(r.rows_affected() == 1)
    }

    pub(crate) async fn insert_session(&self, s: &Session) -> Result<()> {
        sqlx::query(self.sql(
            "INSERT INTO user_session (id_hash, user_id, csrf_hash, second_factor, created_at, last_seen_at, expires_at, \
             source, user_agent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(s.id_hash.as_str())
        .bind(s.user_id)
        .bind(s.csrf_hash.as_str())
        .bind(i64::from(s.second_factor))
        .bind(s.created_at)
        .bind(s.last_seen_at)
        .bind(s.expires_at)
        .bind(s.source.as_str())
        .bind(s.user_agent.as_str())
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    pub(crate) async fn session_by_hash(&self, id_hash: &str) -> Result<Option<Session>> {
        let row = sqlx::query(self.sql(
            "SELECT id_hash, user_id, csrf_hash, second_factor, created_at, last_seen_at, expires_at, source, user_agent \
             FROM user_session WHERE id_hash = ?",
        ))
        .bind(id_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.map(|r| -> Result<Session> {
            Ok(Session {
                id_hash: r.try_get("id_hash").map_err(db_err)?,
                user_id: r.try_get("user_id").map_err(db_err)?,
                csrf_hash: r.try_get("csrf_hash").map_err(db_err)?,
                second_factor: flag(&r, "second_factor")?,
                created_at: r.try_get("created_at").map_err(db_err)?,
                last_seen_at: r.try_get("last_seen_at").map_err(db_err)?,
                expires_at: r.try_get("expires_at").map_err(db_err)?,
                source: r.try_get("source").map_err(db_err)?,
                user_agent: r.try_get("user_agent").map_err(db_err)?,
            })
        })
        .transpose()
    }

    pub(crate) async fn session_seen(&self, id_hash: &str, at: i64) -> Result<()> {
        sqlx::query(self.sql("UPDATE user_session SET last_seen_at = ? WHERE id_hash = ? AND last_seen_at < ?"))
            .bind(at)
            .bind(id_hash)
            .bind(at)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    pub(crate) async fn delete_session(&self, id_hash: &str) -> Result<()> {
        sqlx::query(self.sql("DELETE FROM user_session WHERE id_hash = ?"))
            .bind(id_hash)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    pub(crate) async fn delete_user_sessions(&self, user_id: i64) -> Result<u64> {
        let r = sqlx::query(self.sql("DELETE FROM user_session WHERE user_id = ?"))
            .bind(user_id)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(r.rows_affected())
    }
}

const CREDENTIAL_COLUMNS: &str = "id, kind, public_id, secret_hash, name, institution_id, actions, parent_id, \
     expires_at, revoked_at, created_by, created_at, last_used_at";

fn credential_from_row(r: &AnyRow) -> Result<Credential> {
    let kind: String = r.try_get("kind").map_err(db_err)?;
    Ok(Credential {
        id: r.try_get("id").map_err(db_err)?,
        kind: CredentialKind::from_code(&kind)
            .ok_or_else(|| IndexError::Backend(format!("unknown credential kind {kind:?}")))?,
        public_id: r.try_get("public_id").map_err(db_err)?,
        secret_hash: r.try_get("secret_hash").map_err(db_err)?,
        name: r.try_get("name").map_err(db_err)?,
        institution_id: r.try_get::<Option<i64>, _>("institution_id").map_err(db_err)?.map(InstitutionId),
        actions: json_list(r, "actions")?,
        parent_id: r.try_get("parent_id").map_err(db_err)?,
        expires_at: r.try_get("expires_at").map_err(db_err)?,
        revoked_at: r.try_get("revoked_at").map_err(db_err)?,
        created_by: r.try_get("created_by").map_err(db_err)?,
        created_at: r.try_get("created_at").map_err(db_err)?,
        last_used_at: r.try_get("last_used_at").map_err(db_err)?,
    })
}

impl SqlIndex {
    pub(crate) async fn insert_credential(&self, n: &NewCredential) -> Result<Credential> {
        let actions = serde_json::to_string(&n.actions).unwrap_or_else(|_| "[]".into());
        let row = sqlx::query(self.sql(
            "INSERT INTO credential (kind, public_id, secret_hash, name, institution_id, actions, parent_id, expires_at, \
             created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        ))
        .bind(n.kind.code())
        .bind(n.public_id.as_str())
        .bind(n.secret_hash.as_str())
        .bind(n.name.as_str())
        .bind(n.institution_id.map(|i| i.0))
        .bind(actions)
        .bind(n.parent_id)
        .bind(n.expires_at)
        .bind(n.created_by.as_str())
        .bind(now())
        .fetch_one(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                IndexError::Conflict(format!("the credential id {:?} is taken", n.public_id))
            } else {
                db_err(e)
            }
        })?;
        let id: i64 = row.try_get("id").map_err(db_err)?;
        let sql = format!("SELECT {CREDENTIAL_COLUMNS} FROM credential WHERE id = {}", self.dialect.placeholder(1));
        let row = sqlx::query(self.dynamic(sql)).bind(id).fetch_one(&self.pool).await.map_err(db_err)?;
        credential_from_row(&row)
    }

    pub(crate) async fn credential_where(&self, column: &str, value: &str) -> Result<Option<Credential>> {
        let sql = format!("SELECT {CREDENTIAL_COLUMNS} FROM credential WHERE {column} = {}", self.dialect.placeholder(1));
        let row = sqlx::query(self.dynamic(sql)).bind(value).fetch_optional(&self.pool).await.map_err(db_err)?;
        row.as_ref().map(credential_from_row).transpose()
    }

    pub(crate) async fn list_credentials(&self) -> Result<Vec<Credential>> {
        let sql = format!("SELECT {CREDENTIAL_COLUMNS} FROM credential WHERE kind <> 'access' ORDER BY id DESC");
        let rows = sqlx::query(self.dynamic(sql)).fetch_all(&self.pool).await.map_err(db_err)?;
        rows.iter().map(credential_from_row).collect()
    }

    pub(crate) async fn revoke(&self, id: i64, at: i64) -> Result<bool> {
        let mut tx = self.begin_write().await.map_err(db_err)?;
        let r = sqlx::query(self.sql("UPDATE credential SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"))
            .bind(at)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        sqlx::query(self.sql("UPDATE credential SET revoked_at = ? WHERE parent_id = ? AND revoked_at IS NULL"))
            .bind(at)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(r.rows_affected() == 1)
    }

    pub(crate) async fn credential_used(&self, id: i64, at: i64) -> Result<()> {
        sqlx::query(self.sql("UPDATE credential SET last_used_at = ? WHERE id = ?"))
            .bind(at)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }
}

const GRANT_COLUMNS: &str =
    "id, study_uid, kind, user_id, institution_id, expires_at, reason, created_by, created_at, revoked_at";

fn grant_from_row(r: &AnyRow) -> Result<Grant> {
    Ok(Grant {
        id: r.try_get("id").map_err(db_err)?,
        study_uid: r.try_get("study_uid").map_err(db_err)?,
        kind: r.try_get("kind").map_err(db_err)?,
        user_id: r.try_get("user_id").map_err(db_err)?,
        institution_id: r.try_get::<Option<i64>, _>("institution_id").map_err(db_err)?.map(InstitutionId),
        expires_at: r.try_get("expires_at").map_err(db_err)?,
        reason: r.try_get("reason").map_err(db_err)?,
        created_by: r.try_get("created_by").map_err(db_err)?,
        created_at: r.try_get("created_at").map_err(db_err)?,
        revoked_at: r.try_get("revoked_at").map_err(db_err)?,
    })
}

impl SqlIndex {
    pub(crate) async fn insert_grant(&self, n: &NewGrant) -> Result<Grant> {
        if n.user_id.is_some() == n.institution_id.is_some() {
            return Err(IndexError::Invalid("a grant names exactly one grantee: a user or an institution".into()));
        }
        let row = sqlx::query(self.sql(
            "INSERT INTO access_grant (study_uid, kind, user_id, institution_id, expires_at, reason, created_by, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        ))
        .bind(n.study_uid.as_str())
        .bind(n.kind.as_str())
        .bind(n.user_id)
        .bind(n.institution_id.map(|i| i.0))
        .bind(n.expires_at)
        .bind(n.reason.as_str())
        .bind(n.created_by.as_str())
        .bind(now())
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        let id: i64 = row.try_get("id").map_err(db_err)?;
        let sql = format!("SELECT {GRANT_COLUMNS} FROM access_grant WHERE id = {}", self.dialect.placeholder(1));
        let row = sqlx::query(self.dynamic(sql)).bind(id).fetch_one(&self.pool).await.map_err(db_err)?;
        grant_from_row(&row)
    }

    pub(crate) async fn grants_to(&self, user: Option<i64>, inst: Option<InstitutionId>, at: i64) -> Result<Vec<Grant>> {
        let p = |n| self.dialect.placeholder(n);
        let sql = format!(
            "SELECT {GRANT_COLUMNS} FROM access_grant WHERE revoked_at IS NULL \
             AND (expires_at IS NULL OR expires_at > {}) AND (user_id = {} OR institution_id = {}) ORDER BY id",
            p(1),
            p(2),
            p(3)
        );
        let rows = sqlx::query(self.dynamic(sql))
            .bind(at)
            .bind(user.unwrap_or(-1))
            .bind(inst.map(|i| i.0).unwrap_or(-1))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(grant_from_row).collect()
    }

    pub(crate) async fn grants_on(&self, study_uid: &str) -> Result<Vec<Grant>> {
        let sql =
            format!("SELECT {GRANT_COLUMNS} FROM access_grant WHERE study_uid = {} ORDER BY id DESC", self.dialect.placeholder(1));
        let rows = sqlx::query(self.dynamic(sql)).bind(study_uid).fetch_all(&self.pool).await.map_err(db_err)?;
        rows.iter().map(grant_from_row).collect()
    }

    pub(crate) async fn grant_revoke(&self, id: i64, at: i64) -> Result<bool> {
        let r = sqlx::query(self.sql("UPDATE access_grant SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"))
            .bind(at)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(r.rows_affected() == 1)
    }

    pub(crate) async fn secret_patients(&self, kind: &str, blind_index: &str) -> Result<Vec<i64>> {
        let rows = sqlx::query(self.sql(
            "SELECT DISTINCT patient_id FROM patient_secret WHERE kind = ? AND blind_index = ? ORDER BY patient_id",
        ))
        .bind(kind)
        .bind(blind_index)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(|r| r.try_get("patient_id").map_err(db_err)).collect()
    }

    pub(crate) async fn secrets_of(&self, patient_id: i64) -> Result<Vec<PatientSecret>> {
        let rows = sqlx::query(self.sql(
            "SELECT kind, ciphertext, blind_index FROM patient_secret WHERE patient_id = ? ORDER BY id",
        ))
        .bind(patient_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(secret_from_row).collect()
    }

    pub(crate) async fn secrets_after(&self, after: i64, limit: u32) -> Result<Vec<(i64, PatientSecret)>> {
        let rows = sqlx::query(self.sql(
            "SELECT id, kind, ciphertext, blind_index FROM patient_secret WHERE id > ? ORDER BY id LIMIT ?",
        ))
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(|r| Ok((r.try_get("id").map_err(db_err)?, secret_from_row(r)?))).collect()
    }

    pub(crate) async fn secret_rewrite(&self, id: i64, ciphertext: &str, blind_index: &str) -> Result<()> {
        sqlx::query(self.sql("UPDATE patient_secret SET ciphertext = ?, blind_index = ? WHERE id = ?"))
            .bind(ciphertext)
            .bind(blind_index)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }
}

fn secret_from_row(r: &AnyRow) -> Result<PatientSecret> {
    Ok(PatientSecret {
        kind: r.try_get("kind").map_err(db_err)?,
        ciphertext: r.try_get("ciphertext").map_err(db_err)?,
        blind_index: r.try_get("blind_index").map_err(db_err)?,
    })
}

/// Records a patient's secrets inside the commit's transaction (one row per
/// kind and value; a value already known is left as it is).
pub(crate) async fn record_secrets(
    index: &SqlIndex,
    c: &mut AnyConnection,
    patient_id: i64,
    secrets: &[PatientSecret],
    at: i64,
) -> Result<(), sqlx::Error> {
    for s in secrets {
        sqlx::query(index.sql(
            "INSERT INTO patient_secret (patient_id, kind, ciphertext, blind_index, created_at) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (patient_id, kind, blind_index) DO NOTHING",
        ))
        .bind(patient_id)
        .bind(s.kind.as_str())
        .bind(s.ciphertext.as_str())
        .bind(s.blind_index.as_str())
        .bind(at)
        .execute(&mut *c)
        .await?;
    }
    Ok(())
}
