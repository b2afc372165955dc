//! The group committer: one task that indexes instances in batches.
//!
//! Ingest tasks make their blobs durable concurrently, then queue their
//! catalog rows here and wait. While one transaction commits, the next rows
//! queue up and go together in the following one, so the catalog's fsync is
//! shared by every instance of a batch (SQLite has one writer anyway).
//!
//! Each batch's ingest journal (see [`crate::journal`]) is put into the blob
//! store, durably, as one blob, at the same time as the batch's catalog
//! transaction runs (and while the previous batch's transaction finishes):
//! a sender is answered only when both are durable, so the journal costs no
//! extra wait on a single DICOM association (one object per batch) beyond
//! the slower of the two writes. If the journal put fails, the batch is
//! refused even when its transaction committed: the sender retries, finds
//! its object indexed (a duplicate, no-op) and the retry's batch journals
//! it. If the transaction fails, a journal line may name an object that was
//! never indexed; its blob is removed, and `reindex` ignores lines without
//! blobs. Transactions still run one at a time, in order.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use yunying_blob::BlobStore;
use yunying_index::{CommitOutcome, Index, IndexError, NewInstance};

use crate::journal::{self, JournalLine, JournalWriter};

type Reply = oneshot::Sender<Result<CommitOutcome, IndexError>>;

/// A row to commit, with its journal line (`None` when its facts are
/// journaled already: a re-index of a journaled object).
struct Queued {
    row: NewInstance,
    line: Option<JournalLine>,
    reply: Reply,
}

pub(crate) struct Committer {
    tx: mpsc::Sender<Queued>,
}

/// The wait for one queued row's commit.
pub(crate) type Committed = oneshot::Receiver<Result<CommitOutcome, IndexError>>;

impl Committer {
    pub(crate) fn start(
        index: Arc<dyn Index>,
        blobs: Arc<dyn BlobStore>,
        journal: JournalWriter,
        max_batch: usize,
    ) -> Committer {
        let (tx, mut rx) = mpsc::channel::<Queued>(max_batch.max(1) * 4);
        tokio::spawn(async move {
            // The previous batch's commit (its transaction and journal),
            // running while the next batch is gathered and its journal
            // started; transactions stay in order.
            let mut committing: Option<tokio::task::JoinHandle<()>> = None;
            while let Some(first) = rx.recv().await {
                let (mut batch, mut lines, mut replies) = (Vec::new(), Vec::new(), Vec::new());
                let mut next = Some(first);
                while let Some(q) = next.take() {
                    batch.push(q.row);
                    lines.extend(q.line);
                    replies.push(q.reply);
                    if batch.len() < max_batch {
                        next = rx.try_recv().ok();
                    }
                }
                // Named here, in batch order (the names order the replay).
                let key = (!lines.is_empty()).then(|| journal.next_key(yunying_util::time::now_millis()));
                let journaled = tokio::spawn(write_journal(blobs.clone(), key, lines));
                if let Some(previous) = committing.take() {
                    let _ = previous.await;
                }
                committing = Some(tokio::spawn(commit_and_reply(index.clone(), batch, replies, journaled)));
            }
            if let Some(previous) = committing {
                let _ = previous.await;
            }
        });
        Committer { tx }
    }

    /// Queues a row and waits for its transaction to commit.
    pub(crate) async fn commit(&self, row: NewInstance, line: Option<JournalLine>) -> Result<CommitOutcome, IndexError> {
        let wait = self.submit(row, line).await?;
        wait.await.map_err(|_| stopped())?
    }

    /// Queues a row and returns the wait for its commit: rows queued by one
    /// task are committed in the order they were queued.
    pub(crate) async fn submit(&self, row: NewInstance, line: Option<JournalLine>) -> Result<Committed, IndexError> {
        let (reply, wait) = oneshot::channel();
        self.tx.send(Queued { row, line, reply }).await.map_err(|_| stopped())?;
        Ok(wait)
    }
}

/// Commits a batch while its journal is written, and answers each of its
/// rows once both are durable.
async fn commit_and_reply(
    index: Arc<dyn Index>,
    batch: Vec<NewInstance>,
    replies: Vec<Reply>,
    journaled: tokio::task::JoinHandle<Result<(), IndexError>>,
) {
    let (committed, journaled) = tokio::join!(index.commit(&batch), journaled);
    let journaled = journaled.unwrap_or_else(|e| Err(IndexError::Backend(format!("the journal task failed: {e}"))));
    match (committed, journaled) {
        (Ok(results), Ok(())) => {
            for (reply, r) in replies.into_iter().zip(results) {
                let _ = reply.send(r);
            }
        }
        (Ok(_), Err(e)) => {
            tracing::error!(error = %e, rows = batch.len(), "a batch committed without its journal: refused, its senders retry");
            answer_failure(replies, &e);
        }
        (Err(e), _) => {
            tracing::error!(error = %e, rows = batch.len(), "catalog commit failed");
            answer_failure(replies, &e);
        }
    }
}

fn answer_failure(replies: Vec<Reply>, e: &IndexError) {
    let message = match e {
        IndexError::Backend(m) => m.clone(),
        other => other.to_string(),
    };
    for reply in replies {
        let _ = reply.send(Err(IndexError::Backend(message.clone())));
    }
}

fn stopped() -> IndexError {
    IndexError::Backend("the catalog committer stopped".into())
}

/// Puts a batch's journal blob (nothing when no line is to be journaled).
async fn write_journal(blobs: Arc<dyn BlobStore>, key: Option<String>, lines: Vec<JournalLine>) -> Result<(), IndexError> {
    let Some(key) = key else { return Ok(()) };
    blobs.put_bytes(&key, journal::encode(&lines)).await.map_err(|e| {
        tracing::error!(error = %e, %key, "cannot write the ingest journal; the batch is refused");
        IndexError::Backend(format!("cannot write the ingest journal: {e}"))
    })
}
