//! The one road in: parse → validate → attribute → store durably → index →
//! answer. Also start-up recovery of the staging area.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use yunying_dicom::attrs::{self, InstanceAttrs};
use yunying_dicom::frames::{self, FrameIndex};
use yunying_dicom::json::{JsonOptions, to_json};
use yunying_dicom::parse::{DataSet, ParseError, ParsedObject, Value, parse_part10};
use yunying_index::{
    CommitOutcome, IndexError, InstanceFields, Institution, NewInstance, PatientFields, PatientKey, SeriesFields,
    StudyFields,
};
use yunying_util::InstitutionId;

use crate::error::{IngestError, IngestErrorKind};
use crate::journal::JournalLine;
use crate::retrieve::METADATA_BASE_PLACEHOLDER;
use crate::staging::{self, Contents, Staged};
use crate::{Archive, Recovered, keys};

/// Who is sending, for attribution and the record.
#[derive(Debug, Clone)]
pub struct IngestSource {
    /// `stow`, `dimse`, `import`...
    pub channel: &'static str,
    /// The peer: an IP address, an AE title, a path.
    pub peer: String,
    /// The institution the sender belongs to, when its identity says so;
    /// otherwise the archive's default institution.
    pub institution: Option<InstitutionId>,
    /// The study the request addressed (STOW-RS `/studies/{uid}`): objects
    /// of other studies are refused.
    pub expected_study: Option<String>,
    /// The SOP Class and Instance UIDs the request announced (C-STORE's
    /// Affected SOP Class/Instance UID): an object naming others is refused.
    pub expected_instance: Option<(String, String)>,
    /// The sender's AE title (DIMSE), for routing rules.
    pub sender_ae: Option<String>,
    /// Who is storing: checked by the policy (store into this institution)
    /// and recorded in the audit trail.
    pub caller: crate::Caller,
}

impl IngestSource {
    pub fn new(channel: &'static str, peer: impl Into<String>) -> Self {
        IngestSource {
            channel,
            peer: peer.into(),
            institution: None,
            expected_study: None,
            expected_instance: None,
            sender_ae: None,
            caller: crate::Caller::system(channel),
        }
    }
}

/// What happened to an accepted object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestStatus {
    /// Stored (first version).
    Stored,
    /// The same bytes were already stored; nothing changed.
    Duplicate,
    /// Stored as a new version of a known SOP instance; the earlier versions are kept.
    NewVersion { version: i64 },
}

/// An accepted object.
#[derive(Debug, Clone)]
pub struct IngestOutcome {
    pub status: IngestStatus,
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    pub study_uid: String,
    pub series_uid: String,
    pub transfer_syntax: String,
}

/// Everything the header tells, computed off the async runtime.
pub(crate) struct Examined {
    pub(crate) attrs: InstanceAttrs,
    study_json: String,
    series_json: String,
    instance_json: String,
    metadata: String,
    frames: String,
    bulk: String,
    pub(crate) issuer_in_object: Option<String>,
    /// Personal data taken out of the attributes (kind, value), to be held encrypted.
    personal: Vec<(String, String)>,
}

/// What the store knows of a received object besides its bytes: the facts
/// its catalog row and journal line record.
pub(crate) struct Received {
    pub(crate) key: String,
    pub(crate) sha256: String,
    pub(crate) size: u64,
    /// `channel:peer`.
    pub(crate) from: String,
    /// Unix ms.
    pub(crate) at: i64,
}

impl Received {
    pub(crate) fn journal_line(&self, institution: &Institution, issuer: &str, assumed: bool) -> JournalLine {
        JournalLine {
            v: crate::journal::LINE_VERSION,
            key: self.key.clone(),
            sha256: self.sha256.clone(),
            size: self.size,
            institution: institution.code.clone(),
            issuer: issuer.to_string(),
            from: self.from.clone(),
            at: self.at,
            assumed,
        }
    }
}

impl Archive {
    /// The catalog rows of an examined object (ingest and re-index alike).
    pub(crate) fn instance_row(
        &self,
        ex: &Examined,
        institution: &Institution,
        issuer: String,
        patient_id: String,
        received: &Received,
        forward_to: Vec<String>,
    ) -> NewInstance {
        let a = &ex.attrs;
        NewInstance {
            derive: self.wants_derived(a.modality.as_deref(), a.rows.is_some()),
            cloud: self.wants_cloud(a.study_date.as_deref().map(normalize_date).as_deref()),
            patient_secrets: crate::personal_data::seal(&self.settings.keys, &ex.personal),
            forward_to,
            institution_id: institution.id,
            patient_key: PatientKey { issuer, id: patient_id },
            patient: PatientFields {
                name: a.patient_name.clone(),
                birth_date: a.patient_birth_date.clone(),
                sex: a.patient_sex.clone(),
            },
            study: StudyFields {
                uid: a.study_instance_uid.clone(),
                date: a.study_date.as_deref().map(normalize_date),
                time: a.study_time.clone(),
                accession_number: a.accession_number.clone(),
                study_id: a.study_id.clone(),
                description: a.study_description.clone(),
                referring_physician: a.referring_physician_name.clone(),
                visit_number: a.admission_id.clone(),
                attrs: ex.study_json.clone(),
            },
            series: SeriesFields {
                uid: a.series_instance_uid.clone(),
                modality: a.modality.clone(),
                number: a.series_number,
                description: a.series_description.clone(),
                body_part: a.body_part_examined.clone(),
                date: a.series_date.as_deref().map(normalize_date),
                time: a.series_time.clone(),
                station_name: a.station_name.clone(),
                attrs: ex.series_json.clone(),
            },
            instance: InstanceFields {
                sop_uid: a.sop_instance_uid.clone(),
                sop_class_uid: a.sop_class_uid.clone(),
                transfer_syntax: a.transfer_syntax.clone(),
                number: a.instance_number,
                rows: a.rows.map(i64::from),
                columns: a.columns.map(i64::from),
                bits_allocated: a.bits_allocated.map(i64::from),
                number_of_frames: a.number_of_frames.map(i64::from),
                sha256: received.sha256.clone(),
                size_bytes: received.size as i64,
                blob_key: received.key.clone(),
                frames: ex.frames.clone(),
                bulk: ex.bulk.clone(),
                attrs: ex.instance_json.clone(),
                metadata: ex.metadata.clone(),
                received_from: received.from.clone(),
                received_at: received.at,
            },
        }
    }

    /// Starts receiving an object. `institution` is the sender's institution
    /// when known (it is recorded with the staged file, for recovery).
    pub fn stage(&self, institution: Option<InstitutionId>) -> Result<Staged, IngestError> {
        Staged::create(&self.settings.staging_dir, institution.map(|i| i.0), self.settings.max_object_bytes)
    }

    /// Ingests a fully received object. On success the object is durable
    /// and indexed; on failure nothing of it is kept.
    pub async fn ingest(self: &Arc<Self>, mut staged: Staged, source: &IngestSource) -> Result<IngestOutcome, IngestError> {
        if staged.is_empty() {
            return Err(IngestError::new(IngestErrorKind::Unreadable, "the object is empty"));
        }
        // 1. Durable staging (the write-ahead intent) and, beside it, the
        // header, off the runtime.
        let started = std::time::Instant::now();
        let (finishing, contents) = if staged.in_one_block() {
            staged.begin_finish()?
        } else {
            // The last block is written here: off the runtime.
            let mut s = staged;
            let r = tokio::task::spawn_blocking(move || s.begin_finish().map(|x| (s, x)))
                .await
                .map_err(|e| IngestError::internal("ingest task failed", e))??;
            staged = r.0;
            r.1
        };
        let me = self.clone();
        let (durable, examined) = tokio::join!(
            tokio::task::spawn_blocking(move || finishing.run()),
            tokio::task::spawn_blocking(move || me.examine(contents)),
        );
        durable.map_err(|e| IngestError::internal("ingest task failed", e))??;
        let examined = examined.map_err(|e| IngestError::internal("ingest task failed", e))?;
        let ex = examined?;
        let a = &ex.attrs;
        let with_uids = |e: IngestError| e.with_uids(&a.sop_class_uid, &a.sop_instance_uid);

        // 2. Validation against the request.
        if let Some(expected) = &source.expected_study
            && *expected != a.study_instance_uid
        {
            return Err(with_uids(IngestError::new(
                IngestErrorKind::Conflict,
                format!(
                    "the object belongs to study {}, not to study {expected} addressed by the request",
                    a.study_instance_uid
                ),
            )));
        }

        if let Some((class, instance)) = &source.expected_instance
            && (*class != a.sop_class_uid || *instance != a.sop_instance_uid)
        {
            return Err(with_uids(IngestError::new(
                IngestErrorKind::Invalid,
                format!(
                    "the data set is SOP instance {} of class {}, but the request announced instance {instance} of class {class}",
                    a.sop_instance_uid, a.sop_class_uid
                ),
            )));
        }

        // 3. An identical re-send is found by the commit (its blob key is the
        // same, so linking it again is a no-op): no extra catalog round trip.
        let sha = staged.sha256_hex();

        // 4. Institution and patient identity.
        let institution = self.institution_for(source, staged.institution()).await.map_err(with_uids)?;
        let issuer = self.patient_issuer(&institution, ex.issuer_in_object.as_deref()).await.map_err(with_uids)?;
        let patient_id = a.patient_id.clone().unwrap_or_else(|| format!("~{}", a.study_instance_uid));
        let facts = crate::StudyFacts {
            study_uid: a.study_instance_uid.clone(),
            institution: institution.id,
            patient: Some(yunying_audit::PatientRef {
                id: patient_id.clone(),
                issuer: issuer.clone(),
                name: a.patient_name.clone(),
            }),
        };
        let decision = crate::policy::decide(
            &source.caller.principal,
            crate::policy::Action::Store,
            &crate::policy::Target::Study { institution: institution.id, study_uid: &a.study_instance_uid },
        );
        if !decision.allowed() {
            let e = self.deny(&source.caller, crate::policy::Action::Store, &decision, Some(&facts)).await;
            return Err(with_uids(IngestError::new(IngestErrorKind::NotAuthorized, e.to_string())));
        }

        // 5. Durable blob.
        let staged_at = started.elapsed();
        let key = keys::original(&a.study_instance_uid, &a.series_instance_uid, &a.sop_instance_uid, &sha);
        self.blobs
            .put_file(&key, staged.path())
            .await
            .map_err(|e| with_uids(IngestError::internal("cannot store the object", e)))?;

        // 6. Index (group commit, with the forwarding jobs the routing
        // rules ask for), then answer.
        let forward_to = self.forward_destinations(source, &institution, a.modality.as_deref());
        let forwarding = !forward_to.is_empty();
        let derive = self.wants_derived(a.modality.as_deref(), a.rows.is_some());
        let cloud = self.wants_cloud(a.study_date.as_deref().map(normalize_date).as_deref());
        let received = Received {
            key: key.clone(),
            sha256: sha.clone(),
            size: staged.len(),
            from: format!("{}:{}", source.channel, source.peer),
            at: yunying_util::time::now_millis(),
        };
        let line = received.journal_line(&institution, &issuer, false);
        let row = self.instance_row(&ex, &institution, issuer, patient_id, &received, forward_to);
        let blob_at = started.elapsed();
        let result = self.committer.commit(row, Some(line)).await;
        let status = match result {
            Ok(CommitOutcome::Stored(_)) => IngestStatus::Stored,
            Ok(CommitOutcome::Duplicate(_)) => IngestStatus::Duplicate,
            Ok(CommitOutcome::NewVersion { stored, previous }) => {
                tracing::warn!(
                    sop = %a.sop_instance_uid, version = stored.version, previous,
                    from = %format!("{}:{}", source.channel, source.peer),
                    "different content under a known SOP Instance UID: kept as a new version"
                );
                IngestStatus::NewVersion { version: stored.version }
            }
            Err(e) => {
                // Nothing indexed: the blob must not stay either.
                if !self.index.blob_key_indexed(&key).await.unwrap_or(true) {
                    let _ = self.blobs.delete(&key).await;
                }
                return Err(with_uids(index_err(e)));
            }
        };
        drop(staged); // removes the staged file: the catalog has committed
        tracing::debug!(
            sop = %a.sop_instance_uid,
            staged_us = staged_at.as_micros() as u64,
            blob_us = (blob_at - staged_at).as_micros() as u64,
            commit_us = (started.elapsed() - blob_at).as_micros() as u64,
            "ingested"
        );
        if forwarding && status != IngestStatus::Duplicate {
            self.forward_wakeup.notify_one();
        }
        if derive && status != IngestStatus::Duplicate {
            self.derive_wakeup.notify_one();
        }
        if cloud && status != IngestStatus::Duplicate {
            self.cloud_wakeup.notify_one();
        }
        // Repeated stores into one study by one sender fold into one record
        // and a count (see `audit`).
        self.audit_access(
            &source.caller,
            crate::policy::Action::Store,
            &facts,
            serde_json::json!({ "channel": source.channel }),
        )
        .await;
        Ok(outcome(a, status))
    }

    /// Ingests bytes already in memory (tests, the synthetic generator).
    pub async fn ingest_bytes(self: &Arc<Self>, bytes: &[u8], source: &IngestSource) -> Result<IngestOutcome, IngestError> {
        let mut staged = self.stage(source.institution)?;
        for chunk in bytes.chunks(1 << 20) {
            staged.write(chunk)?;
        }
        self.ingest(staged, source).await
    }

    /// Ingests a Part-10 file from disk (imports of historical data).
    pub async fn ingest_file(self: &Arc<Self>, path: &Path, source: &IngestSource) -> Result<IngestOutcome, IngestError> {
        let staged = self.stage_file(path, source.institution).await?;
        self.ingest(staged, source).await
    }

    /// Copies a file into the staging area.
    async fn stage_file(self: &Arc<Self>, path: &Path, institution: Option<InstitutionId>) -> Result<Staged, IngestError> {
        let me = self.clone();
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || -> Result<Staged, IngestError> {
            let mut f = File::open(&path).map_err(|e| IngestError::io(&format!("cannot read {}", path.display()), e))?;
            let mut staged = me.stage(institution)?;
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = f.read(&mut buf).map_err(|e| IngestError::io("cannot read the file", e))?;
                if n == 0 {
                    break;
                }
                staged.write(&buf[..n])?;
            }
            Ok(staged)
        })
        .await
        .map_err(|e| IngestError::internal("staging task failed", e))?
    }

    /// Parses and examines a staged object (blocking): from memory when it
    /// is still there, else from its file.
    fn examine(&self, contents: Contents) -> Result<Examined, IngestError> {
        match contents {
            Contents::Memory(chunks) => {
                let mut r = staging::ChunkReader::new(&chunks);
                let len = r.len();
                self.fenced(|| examine_reader(&mut r, len, &self.settings.parse, self.settings.fallback_charset))
            }
            Contents::File(path, len) => self.examine_path(&path, len),
        }
    }

    /// Parses and examines a file (blocking).
    pub(crate) fn examine_path(&self, path: &Path, len: u64) -> Result<Examined, IngestError> {
        let file = File::open(path).map_err(|e| IngestError::io("cannot open the staged object", e))?;
        let mut reader = BufReader::with_capacity(64 * 1024, file);
        self.fenced(|| examine_reader(&mut reader, len, &self.settings.parse, self.settings.fallback_charset))
    }

    /// The parser is written not to panic; this is the second fence.
    fn fenced(&self, f: impl FnOnce() -> Result<Examined, IngestError>) -> Result<Examined, IngestError> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|p| {
            let what = p.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| p.downcast_ref::<String>().cloned());
            tracing::error!(panic = ?what, "the DICOM parser panicked on an object; refused");
            Err(IngestError::new(IngestErrorKind::Unreadable, "the object could not be parsed (malformed)"))
        })
    }

    async fn institution_for(&self, source: &IngestSource, staged: Option<i64>) -> Result<Institution, IngestError> {
        let wanted = source.institution.map(|i| i.0).or(staged);
        match wanted {
            None => Ok(self.default_institution.clone()),
            Some(id) if id == self.default_institution.id.0 => Ok(self.default_institution.clone()),
            Some(id) => self
                .find_institution(|i| i.id.0 == id, true)
                .await
                .map_err(|e| IngestError::internal("institution look-up", e))?
                .ok_or_else(|| IngestError::new(IngestErrorKind::Internal, format!("institution {id} does not exist"))),
        }
    }

    /// The issuer that scopes the object's patient ID: the sending
    /// institution's, unless the object names the issuer of another member
    /// institution (a study forwarded by the consultation centre).
    pub(crate) async fn patient_issuer(&self, sender: &Institution, in_object: Option<&str>) -> Result<String, IngestError> {
        if let Some(named) = in_object
            && named != sender.patient_id_issuer
        {
            let other = self
                .find_institution(|i| i.patient_id_issuer == named || i.code == named, false)
                .await
                .map_err(|e| IngestError::internal("institution look-up", e))?;
            if let Some(other) = other {
                return Ok(other.patient_id_issuer.clone());
            }
        }
        Ok(sender.patient_id_issuer.clone())
    }

    /// Finishes or discards what an interrupted run left in the staging area.
    pub(crate) async fn recover(self: &Arc<Self>) -> Result<Recovered, crate::ArchiveError> {
        let mut done = Recovered::default();
        let dir = self.settings.staging_dir.clone();
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| crate::ArchiveError::Internal(format!("cannot read {}: {e}", dir.display())))?;
        let entries: Vec<_> = entries.flatten().collect();
        for entry in entries {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if !path.is_file() {
                continue;
            }
            let finished = self.recover_one(&path, &name).await;
            let _ = std::fs::remove_file(&path);
            match finished {
                Ok(true) => done.finished += 1,
                Ok(false) => done.discarded += 1,
                Err(e) => {
                    tracing::warn!(file = %name, error = %e, "staged object discarded during recovery");
                    done.discarded += 1;
                }
            }
        }
        Ok(done)
    }

    /// `Ok(true)` when the staged object's blob had reached the store and it
    /// is now indexed; `Ok(false)` when it never had (discard).
    async fn recover_one(self: &Arc<Self>, path: &Path, name: &str) -> Result<bool, IngestError> {
        let len = std::fs::metadata(path).map_err(|e| IngestError::io("stat", e))?.len();
        let sha = {
            let p = path.to_path_buf();
            tokio::task::spawn_blocking(move || sha256_file(&p))
                .await
                .map_err(|e| IngestError::internal("recovery task", e))?
                .map_err(|e| IngestError::io("read", e))?
        };
        let ex = self.examine_path(path, len)?;
        let a = &ex.attrs;
        let key = keys::original(&a.study_instance_uid, &a.series_instance_uid, &a.sop_instance_uid, &sha);
        if self.index.blob_key_indexed(&key).await.map_err(index_err)? {
            return Ok(true); // committed; only the staged file remained
        }
        match self.blobs.head(&key).await {
            Ok(Some(size)) if size == len => {}
            _ => return Ok(false), // never linked: the sender got no success
        }
        // Linked but not indexed: finish it.
        let institution = staging::institution_from_name(name).map(InstitutionId);
        let staged = self.stage_file(path, institution).await?;
        let source = IngestSource {
            channel: "recovered",
            peer: name.to_string(),
            institution,
            expected_study: None,
            expected_instance: None,
            sender_ae: None,
            caller: crate::Caller::system("recovery"),
        };
        self.ingest(staged, &source).await?;
        Ok(true)
    }
}

pub(crate) fn sha256_file(path: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

fn outcome(a: &InstanceAttrs, status: IngestStatus) -> IngestOutcome {
    IngestOutcome {
        status,
        sop_class_uid: a.sop_class_uid.clone(),
        sop_instance_uid: a.sop_instance_uid.clone(),
        study_uid: a.study_instance_uid.clone(),
        series_uid: a.series_instance_uid.clone(),
        transfer_syntax: a.transfer_syntax.clone(),
    }
}

pub(crate) fn index_err(e: IndexError) -> IngestError {
    match e {
        IndexError::Conflict(m) => IngestError::new(IngestErrorKind::Conflict, m),
        IndexError::Invalid(m) => IngestError::new(IngestErrorKind::Invalid, m),
        IndexError::NotFound(m) => IngestError::new(IngestErrorKind::Invalid, m),
        IndexError::Backend(m) => IngestError::new(IngestErrorKind::Internal, format!("catalog error: {m}")),
    }
}

/// `2024.01.15` (ACR-NEMA style, still sent) → `20240115`.
fn normalize_date(d: &str) -> String {
    d.chars().filter(|c| c.is_ascii_digit()).collect()
}

fn parse_error(e: ParseError) -> IngestError {
    match e {
        ParseError::Io(io) => IngestError::io("cannot read the staged object", io),
        other => IngestError::new(IngestErrorKind::Unreadable, format!("not a readable DICOM object: {other}")),
    }
}

/// Parses an object and computes everything the catalog records.
fn examine_reader<R: Read + Seek>(
    reader: &mut R,
    len: u64,
    opts: &yunying_dicom::ParseOptions,
    fallback: &'static encoding_rs::Encoding,
) -> Result<Examined, IngestError> {
    let obj = parse_part10(reader, len, opts).map_err(parse_error)?;
    let cs = attrs::charset_of(&obj.dataset, fallback);
    let a = attrs::extract(&obj, &cs).map_err(|e| {
        let mut err = IngestError::new(IngestErrorKind::Invalid, e.to_string());
        // Name the object in the refusal when its UIDs can be read.
        err.sop_class_uid = obj.dataset.ascii(yunying_dicom::Tag(0x0008, 0x0016));
        err.sop_instance_uid = obj.dataset.ascii(yunying_dicom::Tag(0x0008, 0x0018));
        err
    })?;
    if let Some(meta_sop) = &obj.meta.media_storage_sop_instance_uid
        && *meta_sop != a.sop_instance_uid
    {
        tracing::warn!(meta = %meta_sop, dataset = %a.sop_instance_uid, "Media Storage SOP Instance UID differs from SOP Instance UID");
    }

    // Frame layout: fragment heads are read when needed.
    let head_reader = reader;
    let frame_index = frames::locate(&obj, |offset| {
        if obj.offsets_in_inflated {
            return None;
        }
        let mut b = [0u8; 2];
        head_reader.seek(SeekFrom::Start(offset)).ok()?;
        head_reader.read_exact(&mut b).ok()?;
        Some(b)
    });
    if let FrameIndex::Unavailable { reason } = &frame_index {
        tracing::info!(sop = %a.sop_instance_uid, %reason, "frames of this object are not byte-addressable");
    }

    let base = |path: &str| {
        format!(
            "{METADATA_BASE_PLACEHOLDER}/studies/{}/series/{}/instances/{}/bulkdata/{path}",
            a.study_instance_uid, a.series_instance_uid, a.sop_instance_uid
        )
    };
    let metadata = to_json(
        &obj.dataset,
        &JsonOptions { charset: &cs, big_endian: obj.encoding.big_endian, inline_binary_limit: 1024, bulk_uri: Some(&base) },
    );
    let mut metadata = metadata;
    let personal = crate::personal_data::take_sensitive(&mut metadata);
    let mut metadata = serde_json::Value::Object(metadata);
    // The transfer syntax of the stored object, as servers commonly report it.
    if let Some(m) = metadata.as_object_mut() {
        m.insert(
            "00020010".into(),
            serde_json::json!({"vr": "UI", "Value": [obj.meta.transfer_syntax]}),
        );
    }
    let bulk = bulk_map(&obj);
    Ok(Examined {
        study_json: {
            let mut study = attrs::level_json(&obj, &cs, attrs::STUDY_LEVEL);
            crate::personal_data::take_sensitive(&mut study);
            serde_json::to_string(&study).unwrap_or_default()
        },
        series_json: serde_json::to_string(&attrs::level_json(&obj, &cs, attrs::SERIES_LEVEL)).unwrap_or_default(),
        instance_json: serde_json::to_string(&attrs::level_json(&obj, &cs, attrs::INSTANCE_LEVEL)).unwrap_or_default(),
        metadata: metadata.to_string(),
        frames: serde_json::to_string(&frame_index).unwrap_or_default(),
        bulk,
        issuer_in_object: obj.dataset.ascii(yunying_dicom::Tag(0x0010, 0x0021)),
        attrs: a,
        personal,
    })
}

/// Path → [offset, length] of every value the parser left in place, so that
/// `/bulkdata/{path}` is a ranged read. `{"inflated": true}` marks deflated objects.
fn bulk_map(obj: &ParsedObject) -> String {
    fn walk(ds: &DataSet, parents: &mut Vec<(yunying_dicom::Tag, usize)>, out: &mut BTreeMap<String, [u64; 2]>) {
        for el in &ds.elements {
            match &el.value {
                Value::Bulk { offset, length } => {
                    out.insert(yunying_dicom::json::bulk_path(parents, el.tag), [*offset, *length]);
                }
                Value::Sequence(items) => {
                    for (i, item) in items.iter().enumerate() {
                        parents.push((el.tag, i));
                        walk(item, parents, out);
                        parents.pop();
                    }
                }
                _ => {}
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&obj.dataset, &mut Vec::new(), &mut out);
    let mut v = serde_json::json!({ "values": out });
    if obj.offsets_in_inflated {
        v["inflated"] = serde_json::Value::Bool(true);
    }
    v.to_string()
}
