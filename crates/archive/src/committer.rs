//! The group committer: one task that indexes instances in batches.
//!
//! Ingest tasks make their blobs durable concurrently, then queue their
//! catalog rows here and wait. While one transaction commits, the next rows
//! queue up and go together in the following one, so the catalog's fsync is
//! shared by every instance of a batch (SQLite has one writer anyway).

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use yunying_index::{CommitOutcome, Index, IndexError, NewInstance};

type Reply = oneshot::Sender<Result<CommitOutcome, IndexError>>;

pub(crate) struct Committer {
    tx: mpsc::Sender<(NewInstance, Reply)>,
}

impl Committer {
    pub(crate) fn start(index: Arc<dyn Index>, max_batch: usize) -> Committer {
        let (tx, mut rx) = mpsc::channel::<(NewInstance, Reply)>(max_batch.max(1) * 4);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(max_batch);
            let mut replies = Vec::with_capacity(max_batch);
            while let Some((row, reply)) = rx.recv().await {
                batch.push(row);
                replies.push(reply);
                while batch.len() < max_batch {
                    match rx.try_recv() {
                        Ok((row, reply)) => {
                            batch.push(row);
                            replies.push(reply);
                        }
                        Err(_) => break,
                    }
                }
                match index.commit(&batch).await {
                    Ok(results) => {
                        for (reply, r) in replies.drain(..).zip(results) {
                            let _ = reply.send(r);
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, rows = batch.len(), "catalog commit failed");
                        for reply in replies.drain(..) {
                            let _ = reply.send(Err(IndexError::Backend(e.to_string())));
                        }
                    }
                }
                batch.clear();
            }
        });
        Committer { tx }
    }

    /// Queues a row and waits for its transaction to commit.
    pub(crate) async fn commit(&self, row: NewInstance) -> Result<CommitOutcome, IndexError> {
        let (reply, wait) = oneshot::channel();
        self.tx.send((row, reply)).await.map_err(|_| IndexError::Backend("the catalog committer stopped".into()))?;
        wait.await.map_err(|_| IndexError::Backend("the catalog committer stopped".into()))?
    }
}
