//! The audit trail in SQL (`audit_event`, `audit_anchor`): appending sealed
//! rows with their chain's anchor in one transaction, reading a chain in
//! order for verification, and searching. Rows are never updated or deleted
//! here (the schema's triggers refuse it).

use sqlx::Row;
use sqlx::any::AnyRow;
use yunying_index::*;

use crate::{SqlIndex, db_err, is_unique_violation};

const COLUMNS: &str = "chain, seq, at, action, outcome, actor_id, patient_id, studies, event, key_id, prev_mac, mac";

fn row_from(r: &AnyRow) -> Result<AuditRow> {
    Ok(AuditRow {
        chain: r.try_get("chain").map_err(db_err)?,
        seq: r.try_get("seq").map_err(db_err)?,
        at: r.try_get("at").map_err(db_err)?,
        action: r.try_get("action").map_err(db_err)?,
        outcome: r.try_get("outcome").map_err(db_err)?,
        actor_id: r.try_get("actor_id").map_err(db_err)?,
        patient_id: r.try_get("patient_id").map_err(db_err)?,
        studies: r.try_get("studies").map_err(db_err)?,
        event: r.try_get("event").map_err(db_err)?,
        key_id: r.try_get("key_id").map_err(db_err)?,
        prev_mac: r.try_get("prev_mac").map_err(db_err)?,
        mac: r.try_get("mac").map_err(db_err)?,
    })
}

impl SqlIndex {
    pub(crate) async fn audit_append(&self, rows: &[AuditRow], anchor: &AuditAnchor) -> Result<()> {
        let mut tx = self.begin_write().await.map_err(db_err)?;
        for r in rows {
            sqlx::query(self.sql(
                "INSERT INTO audit_event (chain, seq, at, action, outcome, actor_id, patient_id, studies, event, key_id, \
                 prev_mac, mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ))
            .bind(r.chain.as_str())
            .bind(r.seq)
            .bind(r.at)
            .bind(r.action.as_str())
            .bind(r.outcome.as_str())
            .bind(r.actor_id.as_str())
            .bind(r.patient_id.as_deref())
            .bind(r.studies.as_str())
            .bind(r.event.as_str())
            .bind(r.key_id.as_str())
            .bind(r.prev_mac.as_str())
            .bind(r.mac.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    IndexError::Conflict(format!(
                        "audit chain {:?} position {} is taken: is another node writing the same chain?",
                        r.chain, r.seq
                    ))
                } else {
                    db_err(e)
                }
            })?;
        }
        sqlx::query(self.sql(
            "INSERT INTO audit_anchor (chain, seq, mac, key_id, anchor_mac) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (chain) DO UPDATE SET seq = excluded.seq, mac = excluded.mac, key_id = excluded.key_id, \
             anchor_mac = excluded.anchor_mac",
        ))
        .bind(anchor.chain.as_str())
        .bind(anchor.seq)
        .bind(anchor.mac.as_str())
        .bind(anchor.key_id.as_str())
        .bind(anchor.anchor_mac.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(())
    }

    pub(crate) async fn audit_newest(&self, chain: &str) -> Result<Option<AuditRow>> {
        let p = self.dialect.placeholder(1);
        let sql = format!("SELECT {COLUMNS} FROM audit_event WHERE chain = {p} ORDER BY seq DESC LIMIT 1");
        let row = sqlx::query(self.dynamic(sql)).bind(chain).fetch_optional(&self.pool).await.map_err(db_err)?;
        row.as_ref().map(row_from).transpose()
    }

    pub(crate) async fn anchors(&self) -> Result<Vec<AuditAnchor>> {
        let rows = sqlx::query(self.sql("SELECT chain, seq, mac, key_id, anchor_mac FROM audit_anchor ORDER BY chain"))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok(AuditAnchor {
                    chain: r.try_get("chain").map_err(db_err)?,
                    seq: r.try_get("seq").map_err(db_err)?,
                    mac: r.try_get("mac").map_err(db_err)?,
                    key_id: r.try_get("key_id").map_err(db_err)?,
                    anchor_mac: r.try_get("anchor_mac").map_err(db_err)?,
                })
            })
            .collect()
    }

    pub(crate) async fn chain_names(&self) -> Result<Vec<String>> {
        let rows = sqlx::query(self.sql("SELECT DISTINCT chain FROM audit_event ORDER BY chain"))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(|r| r.try_get("chain").map_err(db_err)).collect()
    }

    pub(crate) async fn chain_page(&self, chain: &str, after_seq: i64, limit: u32) -> Result<Vec<AuditRow>> {
        let p = |n| self.dialect.placeholder(n);
        let sql = format!(
            "SELECT {COLUMNS} FROM audit_event WHERE chain = {} AND seq > {} ORDER BY seq LIMIT {}",
            p(1),
            p(2),
            p(3)
        );
        let rows = sqlx::query(self.dynamic(sql))
            .bind(chain)
            .bind(after_seq)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(row_from).collect()
    }

    pub(crate) async fn search(&self, q: &AuditQuery) -> Result<Vec<AuditRow>> {
        enum V<'a> {
            I(i64),
            S(&'a str),
            L(String),
        }
        let mut conds: Vec<String> = Vec::new();
        let mut vals: Vec<V> = Vec::new();
        if let Some(v) = q.from {
            conds.push("at >= {}".into());
            vals.push(V::I(v));
        }
        if let Some(v) = q.to {
            conds.push("at < {}".into());
            vals.push(V::I(v));
        }
        if let Some(v) = &q.actor_id {
            conds.push("actor_id = {}".into());
            vals.push(V::S(v));
        }
        if let Some(v) = &q.action {
            conds.push("action = {}".into());
            vals.push(V::S(v));
        }
        if let Some(v) = &q.outcome {
            conds.push("outcome = {}".into());
            vals.push(V::S(v));
        }
        if let Some(v) = &q.patient_id {
            conds.push("patient_id = {}".into());
            vals.push(V::S(v));
        }
        if let Some(v) = &q.study_uid {
            // A whole UID among the space-separated ones; LIKE's wildcards in
            // the value are escaped.
            conds.push("(' ' || studies || ' ') LIKE {} ESCAPE '\\'".into());
            let escaped = v.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            vals.push(V::L(format!("% {escaped} %")));
        }
        let mut sql = format!("SELECT {COLUMNS} FROM audit_event");
        for (i, c) in conds.iter().enumerate() {
            sql.push_str(if i == 0 { " WHERE " } else { " AND " });
            sql.push_str(&c.replace("{}", &self.dialect.placeholder(i + 1)));
        }
        let n = conds.len();
        sql.push_str(&format!(
            " ORDER BY at DESC, chain, seq DESC LIMIT {} OFFSET {}",
            self.dialect.placeholder(n + 1),
            self.dialect.placeholder(n + 2)
        ));
        let mut query = sqlx::query(self.dynamic(sql));
        for v in &vals {
            query = match v {
                V::I(i) => query.bind(*i),
                V::S(s) => query.bind(*s),
                V::L(s) => query.bind(s.as_str()),
            };
        }
        let limit = if q.limit == 0 { 100 } else { q.limit.min(10_000) };
        let rows = query
            .bind(i64::from(limit))
            .bind(i64::from(q.offset))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(row_from).collect()
    }
}
