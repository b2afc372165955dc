//! The audit trail: every login, failed login, permission change and every
//! access to patient data is recorded here, whatever the interface.
//!
//! [`AuditTrail`] owns this node's chain. Events are handed to one writer
//! task, which seals them in order into the keyed hash chain
//! (`yunying_audit::chain`, HMAC-SM3 with the key ring's audit key), appends
//! them with the chain's sealed anchor in one catalog transaction, and then
//! hands each to the forwarder (syslog), if any. Repeated reads of the same
//! study by the same caller within a minute (a viewer fetching 800 frames)
//! are recorded once, followed by one summary event counting the repeats.
//! [`AuditTrail::verify`] walks every chain and reports edited, missing,
//! relinked and truncated records.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use yunying_audit::chain::{self, Anchor, AnchorStatus, SealedEvent, VerifyReport};
use yunying_audit::{Action as AuditAction, AuditEvent, Outcome};
use yunying_index::{AuditAnchor, AuditQuery, AuditRow, Index, IndexError};
use yunying_security::Keyring;

/// How long repeated reads of one study by one caller fold into one record.
const FOLD_WINDOW_MS: i64 = 60_000;
/// Most events sealed in one transaction.
const BATCH: usize = 512;
/// How long the writer gathers events before writing them (a crash can lose
/// at most this much of the trail, beside what is in flight).
const LINGER: Duration = Duration::from_millis(100);

/// Called with every sealed event once it is stored (syslog forwarding).
pub type Forwarder = Arc<dyn Fn(&SealedEvent) + Send + Sync>;

enum Msg {
    Event(Box<AuditEvent>),
    Flush(oneshot::Sender<()>),
}

/// This node's audit chain writer.
pub struct AuditTrail {
    tx: mpsc::Sender<Msg>,
    forwarder: Arc<std::sync::OnceLock<Forwarder>>,
    chain: String,
    index: Arc<dyn Index>,
    keys: Arc<Keyring>,
}

/// What `verify` found on one chain.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ChainVerification {
    pub chain: String,
    pub report: VerifyReport,
    /// The end of the chain against its sealed anchor; `None` when the
    /// anchor row is missing (removed: the chain cannot be trusted).
    pub anchor: Option<AnchorStatus>,
    /// Rows whose search columns disagree with their sealed event.
    pub inconsistent: Vec<i64>,
}

impl ChainVerification {
    pub fn is_clean(&self) -> bool {
        self.report.is_clean()
            && self.inconsistent.is_empty()
            && matches!(self.anchor, Some(AnchorStatus::Matches))
    }
}

impl AuditTrail {
    /// Starts the writer of `chain` (this node's name), resuming after its
    /// newest stored record.
    pub async fn start(
        index: Arc<dyn Index>,
        keys: Arc<Keyring>,
        chain: &str,
    ) -> Result<Arc<AuditTrail>, IndexError> {
        let last = index.audit_last(chain).await?;
        let (seq, mac) = match last {
            Some(r) => (r.seq, r.mac),
            None => (chain::FIRST_SEQ - 1, chain::GENESIS_MAC.to_string()),
        };
        let (tx, rx) = mpsc::channel(8192);
        let forwarder = Arc::new(std::sync::OnceLock::new());
        let writer = Writer {
            index: index.clone(),
            keys: keys.clone(),
            chain: chain.to_string(),
            seq,
            mac,
            forwarder: forwarder.clone(),
            folds: HashMap::new(),
        };
        tokio::spawn(writer.run(rx));
        Ok(Arc::new(AuditTrail { tx, forwarder, chain: chain.to_string(), index, keys }))
    }

    /// Sets where stored events are forwarded (once; later calls are ignored).
    pub fn set_forwarder(&self, f: Forwarder) {
        let _ = self.forwarder.set(f);
    }

    pub fn chain(&self) -> &str {
        &self.chain
    }

    /// Records an event (waits only when the writer is far behind).
    pub async fn record(&self, event: AuditEvent) {
        if self.tx.send(Msg::Event(Box::new(event))).await.is_err() {
            tracing::error!("the audit writer has stopped; an audit event was not recorded");
        }
    }

    /// Records an event from a context that cannot wait.
    pub fn record_now(&self, event: AuditEvent) {
        match self.tx.try_send(Msg::Event(Box::new(event))) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(Msg::Event(e))) => {
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let _ = tx.send(Msg::Event(e)).await;
                });
            }
            Err(_) => tracing::error!("the audit writer has stopped; an audit event was not recorded"),
        }
    }

    /// Waits until everything recorded so far is stored (and folded reads summarised).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Searches the trail (newest first).
    pub async fn search(&self, q: &AuditQuery) -> Result<Vec<SealedEvent>, IndexError> {
        let rows = self.index.audit_search(q).await?;
        Ok(rows.into_iter().filter_map(|r| sealed_from_row(&r).ok()).collect())
    }

    /// Verifies every chain of the catalog.
    pub async fn verify(&self) -> Result<Vec<ChainVerification>, IndexError> {
        verify_all(self.index.as_ref(), &self.keys).await
    }
}

/// Verifies every chain of a catalog with a key ring (also used offline by `yunying audit verify`).
pub async fn verify_all(index: &dyn Index, keys: &Keyring) -> Result<Vec<ChainVerification>, IndexError> {
    let mac = |id: &str, b: &[u8]| keys.audit_mac(id, b);
    let anchors = index.audit_anchors().await?;
    // Every chain with records, and every anchored chain: a chain whose
    // anchor row was removed is still verified, and reported.
    let mut chains: Vec<String> = index.audit_chain_names().await?;
    chains.extend(anchors.iter().map(|a| a.chain.clone()));
    chains.sort();
    chains.dedup();
    let mut out = Vec::new();
    for chain in chains {
        let a = anchors.iter().find(|a| a.chain == chain);
        let mut records = Vec::new();
        let mut inconsistent = Vec::new();
        let mut after = 0i64;
        loop {
            let page = index.audit_chain(&chain, after, 5000).await?;
            if page.is_empty() {
                break;
            }
            after = page.last().map(|r| r.seq).unwrap_or(after);
            for row in &page {
                match sealed_from_row(row) {
                    Ok(s) => {
                        if !consistent(row, &s) {
                            inconsistent.push(row.seq);
                        }
                        records.push(s);
                    }
                    Err(_) => {
                        // An event that no longer parses was edited: keep
                        // its place so the MAC check reports it.
                        inconsistent.push(row.seq);
                    }
                }
            }
        }
        // The anchors were read first: on a live node the chain may have
        // grown since, which is fine when the anchored record is in it.
        let anchored: Vec<(i64, String)> = records.iter().map(|r| (r.seq, r.mac.clone())).collect();
        let report = chain::verify(records.into_iter(), None, &mac);
        let anchor = a.map(|a| {
            let anchor = Anchor {
                chain: a.chain.clone(),
                seq: a.seq,
                mac: a.mac.clone(),
                key_id: a.key_id.clone(),
                anchor_mac: a.anchor_mac.clone(),
            };
            match anchor.check(report.last.as_ref(), &mac) {
                AnchorStatus::Behind { .. } if anchored.iter().any(|(seq, m)| anchor.covers(*seq, m)) => AnchorStatus::Matches,
                other => other,
            }
        });
        out.push(ChainVerification { chain, report, anchor, inconsistent });
    }
    Ok(out)
}

fn consistent(row: &AuditRow, s: &SealedEvent) -> bool {
    row.at == s.event.at
        && row.action == s.event.action.code()
        && row.outcome == s.event.outcome.code()
        && row.actor_id == s.event.actor.id
        && row.patient_id == s.event.patient.as_ref().map(|p| p.id.clone())
        && row.studies == s.event.studies.join(" ")
}

/// A stored row as the sealed event it holds.
pub fn sealed_from_row(r: &AuditRow) -> Result<SealedEvent, serde_json::Error> {
    Ok(SealedEvent {
        chain: r.chain.clone(),
        seq: r.seq,
        event: serde_json::from_str(&r.event)?,
        key_id: r.key_id.clone(),
        prev_mac: r.prev_mac.clone(),
        mac: r.mac.clone(),
    })
}

fn row_from_sealed(s: &SealedEvent) -> AuditRow {
    AuditRow {
        chain: s.chain.clone(),
        seq: s.seq,
        at: s.event.at,
        action: s.event.action.code().to_string(),
        outcome: s.event.outcome.code().to_string(),
        actor_id: s.event.actor.id.clone(),
        patient_id: s.event.patient.as_ref().map(|p| p.id.clone()),
        studies: s.event.studies.join(" "),
        event: serde_json::to_string(&s.event).unwrap_or_default(),
        key_id: s.key_id.clone(),
        prev_mac: s.prev_mac.clone(),
        mac: s.mac.clone(),
    }
}

/// A read being folded: the first one was recorded; repeats are counted.
struct Fold {
    first_at: i64,
    repeats: u64,
    last: AuditEvent,
}

struct Writer {
    index: Arc<dyn Index>,
    keys: Arc<Keyring>,
    chain: String,
    seq: i64,
    mac: String,
    forwarder: Arc<std::sync::OnceLock<Forwarder>>,
    folds: HashMap<String, Fold>,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let first = tokio::select! {
                m = rx.recv() => m,
                _ = tick.tick() => {
                    let due = self.expired_folds(yunying_util::time::now_millis(), false);
                    self.write(due).await;
                    continue;
                }
            };
            let Some(first) = first else { break };
            let mut events = Vec::new();
            let mut flushes = Vec::new();
            let linger_until = tokio::time::Instant::now() + LINGER;
            let mut next = Some(first);
            while let Some(m) = next {
                match m {
                    Msg::Event(e) => {
                        if let Some(e) = self.fold(*e) {
                            events.push(e);
                        }
                    }
                    Msg::Flush(done) => flushes.push(done),
                }
                if events.len() >= BATCH || !flushes.is_empty() {
                    break;
                }
                next = match rx.try_recv() {
                    Ok(m) => Some(m),
                    // Linger a moment: a busy node's events share one
                    // transaction (one fsync) instead of one each.
                    Err(_) => tokio::time::timeout_at(linger_until, rx.recv()).await.ok().flatten(),
                };
            }
            if !flushes.is_empty() {
                events.extend(self.expired_folds(i64::MAX, true));
            }
            self.write(events).await;
            for f in flushes {
                let _ = f.send(());
            }
        }
        // Shutting down: summarise what is folded.
        let rest = self.expired_folds(i64::MAX, true);
        self.write(rest).await;
    }

    /// Folds a repeated successful read or store; returns the event to record now, if any.
    fn fold(&mut self, e: AuditEvent) -> Option<AuditEvent> {
        if !matches!(e.action, AuditAction::Read | AuditAction::Store) || e.outcome != Outcome::Success {
            return Some(e);
        }
        let key = format!("{}|{}|{}|{}", e.action.code(), e.actor.id, e.studies.join(" "), e.source.as_deref().unwrap_or(""));
        match self.folds.get_mut(&key) {
            Some(f) if e.at - f.first_at < FOLD_WINDOW_MS => {
                f.repeats += 1;
                f.last = e;
                None
            }
            _ => {
                self.folds.insert(key, Fold { first_at: e.at, repeats: 0, last: e.clone() });
                Some(e)
            }
        }
    }

    /// Summaries of folds whose window ended (all of them with `all`).
    fn expired_folds(&mut self, now: i64, all: bool) -> Vec<AuditEvent> {
        let mut out = Vec::new();
        self.folds.retain(|_, f| {
            let ended = all || now - f.first_at >= FOLD_WINDOW_MS;
            if ended && f.repeats > 0 {
                let mut e = f.last.clone();
                let mut detail = match e.detail.take() {
                    serde_json::Value::Object(m) => m,
                    _ => serde_json::Map::new(),
                };
                detail.insert("repeats".into(), f.repeats.into());
                detail.insert("since".into(), f.first_at.into());
                e.detail = serde_json::Value::Object(detail);
                out.push(e);
            }
            !ended
        });
        out
    }

    async fn write(&mut self, events: Vec<AuditEvent>) {
        if events.is_empty() {
            return;
        }
        let mut attempt = 0u32;
        loop {
            let keys = self.keys.clone();
            let mac_fn = move |id: &str, b: &[u8]| keys.audit_mac(id, b);
            let key_id = self.keys.active_audit().id().to_string();
            let mut sealed = Vec::with_capacity(events.len());
            let (mut seq, mut prev) = (self.seq, self.mac.clone());
            for e in &events {
                seq += 1;
                match chain::seal(&self.chain, seq, &prev, e.clone(), &key_id, &mac_fn) {
                    Ok(s) => {
                        prev = s.mac.clone();
                        sealed.push(s);
                    }
                    Err(err) => {
                        tracing::error!(error = %err, "cannot seal an audit event");
                        return;
                    }
                }
            }
            let last = sealed.last().expect("non-empty");
            let anchor = match Anchor::of(last, &key_id, &mac_fn) {
                Ok(a) => AuditAnchor {
                    chain: a.chain,
                    seq: a.seq,
                    mac: a.mac,
                    key_id: a.key_id,
                    anchor_mac: a.anchor_mac,
                },
                Err(err) => {
                    tracing::error!(error = %err, "cannot anchor the audit chain");
                    return;
                }
            };
            let rows: Vec<AuditRow> = sealed.iter().map(row_from_sealed).collect();
            match self.index.append_audit(&rows, &anchor).await {
                Ok(()) => {
                    self.seq = seq;
                    self.mac = prev;
                    if let Some(f) = self.forwarder.get() {
                        for s in &sealed {
                            f(s);
                        }
                    }
                    return;
                }
                Err(IndexError::Conflict(m)) => {
                    // Another writer moved this chain: continue after it.
                    tracing::error!(chain = %self.chain, "{m}");
                    if let Ok(Some(r)) = self.index.audit_last(&self.chain).await {
                        self.seq = r.seq;
                        self.mac = r.mac;
                    }
                }
                Err(e) => {
                    attempt += 1;
                    tracing::error!(error = %e, attempt, pending = events.len(), "cannot store audit events; retrying");
                    tokio::time::sleep(Duration::from_millis((200 * u64::from(attempt)).min(5000))).await;
                }
            }
        }
    }
}
