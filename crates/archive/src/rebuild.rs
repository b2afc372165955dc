//! Re-indexing objects already in the blob store (`yunying reindex`): the
//! ingest road without its store step.
//!
//! An object is read from the store, parsed and examined exactly as ingest
//! examines it (metadata JSON, frame index, personal data sealed), checked
//! against its key (UIDs and SHA-256: a damaged object is refused, not
//! indexed), attributed with the facts of its journal line (institution,
//! patient ID issuer, sender, time) or, for an object stored without one by
//! an earlier release, with the documented defaults, and its rows go through
//! the group committer like any ingest. Objects are committed in the order
//! they are queued, so replaying the journal in order reproduces versions.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use futures::TryStreamExt;
use yunying_index::{CommitOutcome, Institution, NewInstance};

use crate::error::{IngestError, IngestErrorKind};
use crate::ingest::{Examined, Received, index_err, sha256_file};
use crate::journal::JournalLine;
use crate::{Archive, IngestStatus, keys};

/// Where the facts of a re-indexed object come from.
#[derive(Debug, Clone)]
pub enum ReindexFacts {
    /// Its journal line.
    Journaled(JournalLine),
    /// None was written (an earlier release): the default institution,
    /// the issuer ingest would choose, `reindex` as sender and `at` as the
    /// time; journaled as an assumed line when committed.
    Assumed { at: i64 },
}

/// An object read and examined, ready to be committed.
pub struct ReindexPrepared {
    row: NewInstance,
    line: Option<JournalLine>,
}

impl ReindexPrepared {
    pub fn sop_instance_uid(&self) -> &str {
        &self.row.instance.sop_uid
    }
}

impl Archive {
    /// Reads the stored object `key` and builds its catalog rows as ingest
    /// would, without storing anything.
    pub async fn prepare_reindex(self: &Arc<Self>, key: &str, facts: &ReindexFacts) -> Result<ReindexPrepared, IngestError> {
        let (file, temporary) = self.stored_file(key).await?;
        let me = self.clone();
        let path = file.clone();
        let examined = tokio::task::spawn_blocking(move || -> Result<(Examined, String, u64), IngestError> {
            let len = std::fs::metadata(&path).map_err(|e| IngestError::io("cannot read the stored object", e))?.len();
            let sha = sha256_file(&path).map_err(|e| IngestError::io("cannot read the stored object", e))?;
            Ok((me.examine_path(&path, len)?, sha, len))
        })
        .await
        .map_err(|e| IngestError::internal("re-index task failed", e));
        if temporary {
            let _ = std::fs::remove_file(&file);
        }
        let (ex, sha, len) = examined??;
        let a = &ex.attrs;
        let with_uids = |e: IngestError| e.with_uids(&a.sop_class_uid, &a.sop_instance_uid);
        let expected = keys::original(&a.study_instance_uid, &a.series_instance_uid, &a.sop_instance_uid, &sha);
        if expected != key {
            return Err(with_uids(IngestError::new(
                IngestErrorKind::Invalid,
                format!("its content does not match its key (its UIDs and SHA-256 give {expected}): damaged, or not stored by Yunying"),
            )));
        }
        let patient_id = a.patient_id.clone().unwrap_or_else(|| format!("~{}", a.study_instance_uid));
        let (institution, issuer, received, line) = match facts {
            ReindexFacts::Journaled(l) => {
                if l.sha256 != sha || l.size != len {
                    return Err(with_uids(IngestError::new(
                        IngestErrorKind::Invalid,
                        format!("its content (SHA-256 {sha}, {len} bytes) is not what its journal line recorded: damaged"),
                    )));
                }
                let institution = self.institution_by_code(&l.institution).await.map_err(with_uids)?;
                let received = Received { key: key.to_string(), sha256: sha, size: len, from: l.from.clone(), at: l.at };
                (institution, l.issuer.clone(), received, None)
            }
            ReindexFacts::Assumed { at } => {
                let institution = self.default_institution.clone();
                let issuer = self.patient_issuer(&institution, ex.issuer_in_object.as_deref()).await.map_err(with_uids)?;
                let received = Received { key: key.to_string(), sha256: sha, size: len, from: "reindex".into(), at: *at };
                let line = received.journal_line(&institution, &issuer, true);
                (institution, issuer, received, Some(line))
            }
        };
        let row = self.instance_row(&ex, &institution, issuer, patient_id, &received, Vec::new());
        Ok(ReindexPrepared { row, line })
    }

    /// Queues prepared rows to the group committer; they are committed in
    /// the order this is called. The returned future is the commit's outcome.
    pub async fn queue_reindex(
        &self,
        prepared: ReindexPrepared,
    ) -> Result<impl Future<Output = Result<IngestStatus, IngestError>> + Send + 'static, IngestError> {
        let wait = self.committer.submit(prepared.row, prepared.line).await.map_err(index_err)?;
        Ok(async move {
            match wait.await {
                Ok(Ok(CommitOutcome::Stored(_))) => Ok(IngestStatus::Stored),
                Ok(Ok(CommitOutcome::Duplicate(_))) => Ok(IngestStatus::Duplicate),
                Ok(Ok(CommitOutcome::NewVersion { stored, .. })) => Ok(IngestStatus::NewVersion { version: stored.version }),
                Ok(Err(e)) => Err(index_err(e)),
                Err(_) => Err(IngestError::new(IngestErrorKind::Internal, "the catalog committer stopped")),
            }
        })
    }

    async fn institution_by_code(&self, code: &str) -> Result<Institution, IngestError> {
        self.find_institution(|i| i.code == code, true)
            .await
            .map_err(|e| IngestError::internal("institution look-up", e))?
            .ok_or_else(|| {
                IngestError::new(
                    IngestErrorKind::Invalid,
                    format!("its journal names institution {code:?}, which the catalog does not hold"),
                )
            })
    }

    /// A local file holding the stored object: the store's own file, or a
    /// temporary copy (true) for stores that keep no files.
    async fn stored_file(&self, key: &str) -> Result<(PathBuf, bool), IngestError> {
        if let Some(path) = self.blobs.local_path(key)
            && path.is_file()
        {
            return Ok((path, false));
        }
        let tmp = std::env::temp_dir().join(format!("yunying-reindex-{}.dcm", uuid::Uuid::new_v4().simple()));
        let mut stream = self.blobs.get(key).await.map_err(|e| IngestError::internal("cannot read the stored object", e))?;
        let mut out = std::fs::File::create(&tmp).map_err(|e| IngestError::io("cannot create a temporary file", e))?;
        let copied: Result<(), IngestError> = async {
            use std::io::Write;
            while let Some(chunk) = stream.try_next().await.map_err(|e| IngestError::io("cannot read the stored object", e))? {
                out.write_all(&chunk).map_err(|e| IngestError::io("cannot write a temporary file", e))?;
            }
            Ok(())
        }
        .await;
        if let Err(e) = copied {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        Ok((tmp, true))
    }
}
