//! Forwarding (routing rules): instances received from some senders, of
//! some institutions or modalities, are sent on by C-STORE to another AE —
//! the consultation centre's PACS, an AI server, a teaching archive.
//!
//! The rules are configuration ([`ForwardRule`]). A matching instance gets a
//! job per destination in the catalog, in the same transaction as the
//! instance itself, so nothing stored is ever forgotten. A worker claims due
//! jobs with a lease (several nodes never send the same job), sends them in
//! batches per destination over one association, deletes what was sent,
//! retries network failures with backoff (up to an hour apart, forever), and
//! keeps instances the receiver refused as failed for the operator to see
//! (`yunying forward status`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use yunying_dimse::retrieve::Prepared;
use yunying_dimse::{Requestor, RetrieveItem, associate, status};
use yunying_index::{ForwardJob, Institution};

use crate::{Archive, IngestSource};

/// Where instances matching some criteria are sent. Empty criteria match all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForwardRule {
    /// The destination AE title (registered with host and port).
    pub destination: String,
    /// Institution codes the instance must belong to.
    pub institutions: Vec<String>,
    /// Modalities (0008,0060) the instance must have.
    pub modalities: Vec<String>,
    /// Calling AE titles the instance must come from.
    pub calling_aes: Vec<String>,
    /// Channels (`dimse`, `stow`, `import`, `pull`) it must come through.
    pub channels: Vec<String>,
}

impl ForwardRule {
    fn matches(&self, source: &IngestSource, institution: &Institution, modality: Option<&str>) -> bool {
        let any = |list: &[String], v: Option<&str>| list.is_empty() || v.is_some_and(|v| list.iter().any(|x| x == v));
        any(&self.institutions, Some(&institution.code))
            && any(&self.modalities, modality)
            && any(&self.calling_aes, source.sender_ae.as_deref())
            && any(&self.channels, Some(source.channel))
            // Never send an instance back to the AE it came from.
            && source.sender_ae.as_deref() != Some(self.destination.as_str())
    }
}

/// Jobs claimed at once.
const BATCH: u32 = 64;
/// How long a claimed job is reserved for its worker.
const LEASE_MS: i64 = 10 * 60 * 1000;
/// How long a destination that failed is left alone before the next attempt.
const DOWN_MS: i64 = 10 * 1000;

impl Archive {
    /// The destinations the routing rules give for an instance.
    pub(crate) fn forward_destinations(
        &self,
        source: &IngestSource,
        institution: &Institution,
        modality: Option<&str>,
    ) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in &self.settings.forward_rules {
            if r.matches(source, institution, modality) && !out.contains(&r.destination) {
                out.push(r.destination.clone());
            }
        }
        out
    }

    /// The data set (no file meta) of a stored object.
    pub async fn load_dataset(&self, blob_key: &str) -> Result<bytes::Bytes, String> {
        let file = match self.blobs.local_path(blob_key) {
            Some(path) => {
                bytes::Bytes::from(tokio::fs::read(&path).await.map_err(|e| format!("cannot read {blob_key}: {e}"))?)
            }
            None => {
                use futures::TryStreamExt;
                let stream = self.blobs.get(blob_key).await.map_err(|e| e.to_string())?;
                let chunks: Vec<bytes::Bytes> = stream.try_collect().await.map_err(|e| e.to_string())?;
                bytes::Bytes::from(chunks.concat())
            }
        };
        let offset = yunying_dicom::dataset_offset(&file).ok_or_else(|| format!("{blob_key} is not a Part-10 file"))?;
        Ok(file.slice(offset..))
    }

    /// Starts the forwarding worker (a no-op loop when there are no rules).
    pub fn start_forwarding(self: &Arc<Self>, our_ae: &str) {
        if self.settings.forward_rules.is_empty() {
            return;
        }
        let me = self.clone();
        let our_ae = our_ae.to_string();
        tokio::spawn(async move {
            loop {
                let worked = match me.forward_once(&our_ae).await {
                    Ok(n) => n > 0,
                    Err(e) => {
                        tracing::warn!(error = %e, "forwarding: catalog error");
                        false
                    }
                };
                if !worked {
                    // Wake on new work, or poll for retries coming due.
                    let _ = tokio::time::timeout(Duration::from_secs(5), me.forward_wakeup.notified()).await;
                }
            }
        });
    }

    /// Claims and sends one batch of due jobs; returns how many were handled.
    pub async fn forward_once(&self, our_ae: &str) -> Result<usize, yunying_index::IndexError> {
        let now = yunying_util::time::now_millis();
        let jobs = self.index.claim_forward_jobs(now, now + LEASE_MS, BATCH).await?;
        let n = jobs.len();
        let mut by_destination: BTreeMap<String, Vec<ForwardJob>> = BTreeMap::new();
        for j in jobs {
            by_destination.entry(j.destination.clone()).or_default().push(j);
        }
        for (destination, jobs) in by_destination {
            self.forward_to(our_ae, &destination, jobs).await?;
        }
        Ok(n)
    }

    async fn forward_to(&self, our_ae: &str, destination: &str, jobs: Vec<ForwardJob>) -> Result<(), yunying_index::IndexError> {
        let retry_at = |attempts: i64| {
            let delay_s = (10i64 << attempts.clamp(0, 9)).min(3600);
            yunying_util::time::now_millis() + delay_s * 1000
        };
        // A destination that just failed is left alone for a while: the jobs
        // queued meanwhile wait for the same moment, without a connection
        // attempt (or a log line) each.
        let down = self.forward_down.lock().expect("forward state").get(destination).cloned();
        if let Some((until, why)) = down
            && until > yunying_util::time::now_millis()
        {
            tracing::debug!(destination, jobs = jobs.len(), "destination down: jobs wait");
            for j in &jobs {
                self.index.fail_forward_job(j.id, &why, Some(until)).await?;
            }
            return Ok(());
        }
        let retry_all = |why: String, jobs: &[ForwardJob]| {
            let jobs = jobs.to_vec();
            async move {
                tracing::warn!(destination, jobs = jobs.len(), reason = %why, "forwarding deferred");
                let until = yunying_util::time::now_millis() + DOWN_MS;
                self.forward_down.lock().expect("forward state").insert(destination.to_string(), (until, why.clone()));
                for j in &jobs {
                    self.index.fail_forward_job(j.id, &why, Some(retry_at(j.attempts).max(until))).await?;
                }
                Ok::<(), yunying_index::IndexError>(())
            }
        };
        let ae = match self.index.application_entity(destination).await? {
            Some(ae) => ae,
            None => return retry_all(format!("{destination} is not a registered AE"), &jobs).await,
        };
        let (Some(host), Some(port)) = (ae.host.clone(), ae.port) else {
            return retry_all(format!("{destination} is registered without host and port"), &jobs).await;
        };
        let items: Vec<RetrieveItem> = jobs
            .iter()
            .map(|j| RetrieveItem {
                sop_class_uid: j.sop_class_uid.clone(),
                sop_instance_uid: j.sop_uid.clone(),
                transfer_syntax: j.transfer_syntax.clone(),
                key: j.blob_key.clone(),
                size: j.size_bytes.max(0) as u64,
            })
            .collect();
        let req = Requestor::new(our_ae, destination, &format!("{host}:{port}"));
        let proposals = yunying_dimse::retrieve::storage_proposals(&items, &|f, t| Archive::can_transcode_object(f, t));
        let mut assoc = match associate(&req, &proposals, &[]).await {
            Ok(a) => a,
            Err(e) => return retry_all(format!("cannot associate with {destination}: {e}"), &jobs).await,
        };
        let (mut sent, mut refused) = (0usize, 0usize);
        for (j, item) in jobs.iter().zip(&items) {
            let prepared = match self.load_dataset(&j.blob_key).await {
                Ok(d) => match yunying_dimse::retrieve::prepare_for(&assoc, item, d.clone(), &Archive::can_transcode_object) {
                    Ok(Prepared::Ready(c, b)) => Ok((c, b)),
                    Ok(Prepared::Transcode(c, to)) => self.dataset_in(item, &to).await.map(|b| (c, b)),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            };
            let (ctx, data) = match prepared {
                Ok(x) => x,
                Err(why) => {
                    refused += 1;
                    self.index.fail_forward_job(j.id, &why, None).await?;
                    continue;
                }
            };
            match assoc.store(ctx, &j.sop_class_uid, &j.sop_uid, &[data], None).await {
                Ok(rsp) => match rsp.status.map(status::class) {
                    Some(status::Class::Success | status::Class::Warning) => {
                        sent += 1;
                        self.index.complete_forward_job(j.id).await?;
                    }
                    _ => {
                        refused += 1;
                        let why = format!(
                            "{destination} answered status 0x{:04X} {}",
                            rsp.status.unwrap_or(0xFFFF),
                            rsp.error_comment.unwrap_or_default()
                        );
                        self.index.fail_forward_job(j.id, &why, None).await?;
                    }
                },
                Err(e) => {
                    let rest: Vec<ForwardJob> =
                        jobs.iter().skip_while(|x| x.id != j.id).cloned().collect();
                    return retry_all(format!("association with {destination} failed: {e}"), &rest).await;
                }
            }
        }
        let _ = assoc.release().await;
        self.forward_down.lock().expect("forward state").remove(destination);
        tracing::info!(destination, sent, refused, "forwarded");
        Ok(())
    }
}
