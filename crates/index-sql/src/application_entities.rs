//! The registry of remote DICOM application entities (`application_entity`):
//! registering and updating an AE by title, listing, looking up, removing,
//! and registering the AE titles an institution is set up with.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use yunying_index::*;
use yunying_util::InstitutionId;

use crate::{SqlIndex, db_err};

fn from_row(r: &AnyRow) -> Result<ApplicationEntity> {
    let flag = |c: &str| -> Result<bool> { Ok(r.try_get::<i64, _>(c).map_err(db_err)? != 0) };
    let port = r
        .try_get::<Option<i64>, _>("port")
        .map_err(db_err)?
        .map(|p| u16::try_from(p).map_err(|_| IndexError::Backend(format!("stored port {p} is out of range"))))
        .transpose()?;
    Ok(ApplicationEntity {
        id: r.try_get("id").map_err(db_err)?,
        ae_title: r.try_get("ae_title").map_err(db_err)?,
        institution_id: InstitutionId(r.try_get("institution_id").map_err(db_err)?),
        host: r.try_get("host").map_err(db_err)?,
        port,
        may_store: flag("may_store")?,
        may_query: flag("may_query")?,
        may_retrieve: flag("may_retrieve")?,
        description: r.try_get("description").map_err(db_err)?,
        created_at: r.try_get("created_at").map_err(db_err)?,
        updated_at: r.try_get("updated_at").map_err(db_err)?,
    })
}

fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => d.is_foreign_key_violation(),
        _ => false,
    }
}

pub(crate) async fn upsert(index: &SqlIndex, new: &NewApplicationEntity) -> Result<ApplicationEntity> {
    new.validate().map_err(IndexError::Invalid)?;
    let title = normalized_ae_title(&new.ae_title).map_err(IndexError::Invalid)?;
    let host = new.host.as_deref().map(str::trim);
    let unknown_institution =
        || IndexError::NotFound(format!("institution {} (for AE {title:?})", new.institution_id.0));
    let institution = sqlx::query(index.sql("SELECT 1 FROM institution WHERE id = ?"))
        .bind(new.institution_id.0)
        .fetch_optional(&index.pool)
        .await
        .map_err(db_err)?;
    if institution.is_none() {
        return Err(unknown_institution());
    }
    let now = yunying_util::time::now_millis();
    let row = sqlx::query(index.sql(
        "INSERT INTO application_entity (ae_title, institution_id, host, port, may_store, may_query, may_retrieve, \
         description, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (ae_title) DO UPDATE SET institution_id = excluded.institution_id, host = excluded.host, \
         port = excluded.port, may_store = excluded.may_store, may_query = excluded.may_query, \
         may_retrieve = excluded.may_retrieve, description = excluded.description, updated_at = excluded.updated_at \
         RETURNING id, ae_title, institution_id, host, port, may_store, may_query, may_retrieve, \
         description, created_at, updated_at",
    ))
    .bind(title)
    .bind(new.institution_id.0)
    .bind(host)
    .bind(new.port.map(i64::from))
    .bind(i64::from(new.may_store))
    .bind(i64::from(new.may_query))
    .bind(i64::from(new.may_retrieve))
    .bind(new.description.as_str())
    .bind(now)
    .bind(now)
    .fetch_one(&index.pool)
    .await
    .map_err(|e| if is_foreign_key_violation(&e) { unknown_institution() } else { db_err(e) })?;
    from_row(&row)
}

pub(crate) async fn remove(index: &SqlIndex, ae_title: &str) -> Result<bool> {
    let done = sqlx::query(index.sql("DELETE FROM application_entity WHERE ae_title = ?"))
        .bind(ae_title.trim_matches(' '))
        .execute(&index.pool)
        .await
        .map_err(db_err)?;
    Ok(done.rows_affected() > 0)
}

pub(crate) async fn list(index: &SqlIndex) -> Result<Vec<ApplicationEntity>> {
    // The column's collation is byte order on both engines (see the migrations).
    let rows = sqlx::query(index.sql(
        "SELECT id, ae_title, institution_id, host, port, may_store, may_query, may_retrieve, \
         description, created_at, updated_at FROM application_entity ORDER BY ae_title",
    ))
    .fetch_all(&index.pool)
    .await
    .map_err(db_err)?;
    rows.iter().map(from_row).collect()
}

pub(crate) async fn by_title(index: &SqlIndex, ae_title: &str) -> Result<Option<ApplicationEntity>> {
    let row = sqlx::query(index.sql(
        "SELECT id, ae_title, institution_id, host, port, may_store, may_query, may_retrieve, \
         description, created_at, updated_at FROM application_entity WHERE ae_title = ?",
    ))
    .bind(ae_title.trim_matches(' '))
    .fetch_optional(&index.pool)
    .await
    .map_err(db_err)?;
    row.as_ref().map(from_row).transpose()
}

/// Registers, within the caller's transaction, each of an institution's AE
/// titles (already normalised) that the registry does not know yet, with the
/// default policy of equipment declared at set-up: may store and query, not
/// retrieve, no address. A title already registered (for this or another
/// institution) is left alone: the registry is the authority.
pub(crate) async fn register_institution_titles(
    index: &SqlIndex,
    conn: &mut AnyConnection,
    institution: InstitutionId,
    titles: &[&str],
    now: i64,
) -> Result<()> {
    for &title in titles {
        let inserted = sqlx::query(index.sql(
            "INSERT INTO application_entity (ae_title, institution_id, host, port, may_store, may_query, \
             may_retrieve, description, created_at, updated_at) VALUES (?, ?, NULL, NULL, 1, 1, 0, '', ?, ?) \
             ON CONFLICT (ae_title) DO NOTHING",
        ))
        .bind(title)
        .bind(institution.0)
        .bind(now)
        .bind(now)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
        if inserted.rows_affected() > 0 {
            continue;
        }
        let owner: Option<i64> =
            sqlx::query(index.sql("SELECT institution_id FROM application_entity WHERE ae_title = ?"))
                .bind(title)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db_err)?
                .map(|r| r.try_get("institution_id"))
                .transpose()
                .map_err(db_err)?;
        if let Some(owner) = owner
            && owner != institution.0
        {
            tracing::warn!(
                ae_title = title,
                institution = institution.0,
                registered_for = owner,
                "AE title of the institution is registered for another institution; the registry keeps it there"
            );
        }
    }
    Ok(())
}
