//! `yunying pull --from AE@host:port`: migrates a legacy PACS by query and
//! retrieve. Studies are found with C-FIND (study root) and fetched one by
//! one with C-GET into this data directory's archive (the default) or
//! C-MOVE to a running Yunying's AE (`--move-to`). Resumable: a journal
//! under the data directory records finished studies, and a re-run skips
//! them. A summary lists what was pulled and what failed.

use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use async_trait::async_trait;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value as Json, json};
use sha2::{Digest, Sha256};
use yunying_archive::{Archive, IngestSource};
use yunying_dicom::{Tag, ts};
use yunying_dimse::{
    DataSetStream, Outcome, Proposal, Requestor, RoleSelection, StoreRequest, StoreSink, associate, status, uids,
};
use yunying_util::InstitutionId;

/// A remote AE given as `AE@host:port`.
#[derive(Debug, Clone)]
pub struct Remote {
    pub ae_title: String,
    pub address: String,
}

impl std::str::FromStr for Remote {
    type Err = String;
    fn from_str(s: &str) -> Result<Remote, String> {
        let (ae, addr) = s.split_once('@').ok_or_else(|| format!("{s:?} is not AE@host:port"))?;
        if ae.is_empty() || ae.len() > 16 {
            return Err(format!("AE title {ae:?} must be 1 to 16 characters"));
        }
        let (host, port) = addr.rsplit_once(':').ok_or_else(|| format!("{addr:?} is not host:port"))?;
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(format!("{addr:?} is not host:port"));
        }
        Ok(Remote { ae_title: ae.to_string(), address: addr.to_string() })
    }
}

/// What to pull and how.
pub struct PullOptions {
    pub from: Remote,
    /// Our calling AE title.
    pub ae_title: String,
    /// StudyDate matching value (`20200101-20201231`).
    pub study_date: Option<String>,
    pub patient_id: Option<String>,
    pub modality: Option<String>,
    /// C-MOVE to this AE instead of C-GET into this process.
    pub move_to: Option<String>,
    /// Institution the pulled objects are attributed to.
    pub institution: Option<InstitutionId>,
    pub journal: PathBuf,
    pub progress: bool,
    /// Reach the remote over TLS.
    pub tls: Option<yunying_dimse::ScuTls>,
}

impl PullOptions {
    fn requestor(&self) -> Requestor {
        let mut req = Requestor::new(&self.ae_title, &self.from.ae_title, &self.from.address);
        req.tls = self.tls.clone();
        req
    }
}

/// What a pull did.
#[derive(Debug, Default)]
pub struct PullSummary {
    pub studies_found: usize,
    pub studies_pulled: usize,
    pub studies_already_done: usize,
    pub studies_failed: Vec<(String, String)>,
    pub instances_stored: u64,
    /// Instances the remote sent to the `--move-to` AE (C-MOVE sub-operations completed).
    pub instances_moved: u64,
    pub instances_failed: u64,
    pub bytes: u64,
    pub seconds: f64,
}

impl std::fmt::Display for PullSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "pull summary")?;
        writeln!(f, "  studies found           {}", self.studies_found)?;
        writeln!(f, "  studies pulled          {}", self.studies_pulled)?;
        writeln!(f, "  done in an earlier run  {}", self.studies_already_done)?;
        writeln!(f, "  studies failed          {}", self.studies_failed.len())?;
        writeln!(f, "  instances stored        {}", self.instances_stored)?;
        if self.instances_moved > 0 {
            writeln!(f, "  instances moved         {} (to the --move-to AE)", self.instances_moved)?;
        }
        writeln!(f, "  instances failed        {}", self.instances_failed)?;
        writeln!(
            f,
            "  data                    {:.1} MB in {:.1} s",
            self.bytes as f64 / 1e6,
            self.seconds
        )?;
        for (uid, why) in &self.studies_failed {
            writeln!(f, "  failed: study {uid}: {why}")?;
        }
        Ok(())
    }
}

/// The journal of a pull from `remote` into `data`.
pub fn journal_path(data: &Path, remote: &Remote) -> PathBuf {
    let h = hex::encode(Sha256::digest(format!("{}@{}", remote.ae_title, remote.address).as_bytes()));
    data.join("pull-journal").join(format!("{}.log", &h[..16]))
}

fn read_journal(path: &Path) -> HashSet<String> {
    let Ok(f) = std::fs::File::open(path) else { return HashSet::new() };
    std::io::BufReader::new(f).lines().map_while(Result::ok).filter(|l| !l.is_empty()).collect()
}

/// A study the remote reported.
#[derive(Debug, Clone)]
struct FoundStudy {
    uid: String,
    instances: Option<u64>,
}

fn element(vr: &str, value: Option<&str>) -> Json {
    match value {
        Some(v) if !v.is_empty() => json!({ "vr": vr, "Value": [v] }),
        _ => json!({ "vr": vr }),
    }
}

/// The study-level C-FIND identifier.
fn study_query(o: &PullOptions) -> Map<String, Json> {
    let mut m = Map::new();
    m.insert("00080020".into(), element("DA", o.study_date.as_deref()));
    m.insert("00080052".into(), element("CS", Some("STUDY")));
    m.insert("00080061".into(), element("CS", o.modality.as_deref()));
    m.insert("00100010".into(), element("PN", None));
    m.insert("00100020".into(), element("LO", o.patient_id.as_deref()));
    m.insert("0020000D".into(), element("UI", None));
    m.insert("00201208".into(), element("IS", None));
    m
}

fn study_retrieve(uid: &str) -> Map<String, Json> {
    let mut m = Map::new();
    m.insert("00080052".into(), element("CS", Some("STUDY")));
    m.insert("0020000D".into(), element("UI", Some(uid)));
    m
}

fn encode(m: &Map<String, Json>, transfer_syntax: &str) -> Result<Vec<u8>, String> {
    yunying_dicom::json_dataset::encode_json_dataset(m, transfer_syntax != ts::IMPLICIT_VR_LE).map_err(|e| e.to_string())
}

async fn find_studies(o: &PullOptions) -> Result<Vec<FoundStudy>, String> {
    let req = o.requestor();
    let mut a = associate(&req, &[Proposal::native(uids::STUDY_ROOT_FIND)], &[])
        .await
        .map_err(|e| format!("cannot associate with {} for C-FIND: {e}", o.from.ae_title))?;
    let ctx_ts = a.negotiated().contexts[0].transfer_syntax.clone();
    let (matches, rsp) = a.find(uids::STUDY_ROOT_FIND, &encode(&study_query(o), &ctx_ts)?).await.map_err(|e| e.to_string())?;
    let _ = a.release().await;
    let st = rsp.status.unwrap_or(status::PROCESSING_FAILURE);
    if status::class(st) == status::Class::Failure {
        return Err(format!(
            "C-FIND failed with status 0x{st:04X} {}",
            rsp.error_comment.unwrap_or_default()
        ));
    }
    let mut out = Vec::new();
    for m in matches {
        let ds = yunying_dicom::parse::parse_dataset(
            &mut std::io::Cursor::new(&m[..]),
            m.len() as u64,
            &ctx_ts,
            &Default::default(),
        )
        .map_err(|e| format!("unreadable C-FIND response: {e}"))?;
        let Some(uid) = ds.ascii(Tag(0x0020, 0x000D)).map(|u| yunying_util::uid::trim_padding(&u).to_string()) else {
            continue;
        };
        let instances = ds.ascii(Tag(0x0020, 0x1208)).and_then(|n| n.trim().parse().ok());
        out.push(FoundStudy { uid, instances });
    }
    Ok(out)
}

/// Stores what a C-GET brings into the archive.
struct ArchiveSink {
    archive: Arc<Archive>,
    source_ae: String,
    institution: Option<InstitutionId>,
    stored: AtomicU64,
    failed: AtomicU64,
    bytes: AtomicU64,
    bar: ProgressBar,
}

#[async_trait]
impl StoreSink for ArchiveSink {
    async fn store(&self, rq: &StoreRequest, data: &mut DataSetStream<'_>) -> Outcome {
        let mut source = IngestSource::new("pull", self.source_ae.clone());
        source.institution = self.institution;
        source.sender_ae = Some(self.source_ae.clone());
        let (outcome, bytes) = self.archive.ingest_c_store(rq, data, source).await;
        if outcome.status == status::SUCCESS {
            self.stored.fetch_add(1, Ordering::Relaxed);
            self.bytes.fetch_add(bytes, Ordering::Relaxed);
            self.bar.inc(1);
        } else {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        outcome
    }
}

/// The contexts of a C-GET association: the retrieve model, and storage
/// contexts with us as their SCP. When the study's SOP classes are known
/// (`classes`), each gets one context per transfer syntax we can store
/// (native first), so that the sender can send each instance in the syntax
/// it holds; otherwise the common storage classes get one context each,
/// with every syntax in it.
fn get_proposals(classes: &[String]) -> (Vec<Proposal>, Vec<RoleSelection>) {
    let native = [ts::EXPLICIT_VR_LE, ts::IMPLICIT_VR_LE];
    let mut syntaxes: Vec<&str> = native.to_vec();
    syntaxes.extend(uids::receivable_transfer_syntaxes().into_iter().filter(|t| !native.contains(t)));
    let mut proposals = vec![Proposal::native(uids::STUDY_ROOT_GET)];
    let mut roles = Vec::new();
    let role = |class: &str| RoleSelection { sop_class: class.to_string(), scu: false, scp: true };
    if classes.is_empty() || classes.len() > 64 {
        for class in uids::COMMON_STORAGE_CLASSES.iter().take(127) {
            proposals.push(Proposal::new(class, &syntaxes));
            roles.push(role(class));
        }
        return (proposals, roles);
    }
    let per_class = (127 / classes.len()).min(syntaxes.len());
    for class in classes {
        for t in &syntaxes[..per_class] {
            proposals.push(Proposal::new(class, &[t]));
        }
        roles.push(role(class));
    }
    (proposals, roles)
}

/// The SOP classes of a study, by an IMAGE-level C-FIND (empty when the
/// remote does not answer it).
async fn study_classes(o: &PullOptions, study: &str) -> Vec<String> {
    let req = o.requestor();
    let Ok(mut a) = associate(&req, &[Proposal::native(uids::STUDY_ROOT_FIND)], &[]).await else { return Vec::new() };
    let ctx_ts = a.negotiated().contexts[0].transfer_syntax.clone();
    let mut m = Map::new();
    m.insert("00080016".into(), element("UI", None));
    m.insert("00080018".into(), element("UI", None));
    m.insert("00080052".into(), element("CS", Some("IMAGE")));
    m.insert("0020000D".into(), element("UI", Some(study)));
    m.insert("0020000E".into(), element("UI", None));
    let Ok(identifier) = encode(&m, &ctx_ts) else { return Vec::new() };
    let found = a.find(uids::STUDY_ROOT_FIND, &identifier).await;
    let _ = a.release().await;
    let Ok((matches, _)) = found else { return Vec::new() };
    let mut classes: Vec<String> = Vec::new();
    for m in matches {
        let Ok(ds) = yunying_dicom::parse::parse_dataset(
            &mut std::io::Cursor::new(&m[..]),
            m.len() as u64,
            &ctx_ts,
            &Default::default(),
        ) else {
            continue;
        };
        if let Some(c) = ds.ascii(Tag(0x0008, 0x0016)).map(|c| yunying_util::uid::trim_padding(&c).to_string())
            && !c.is_empty()
            && !classes.contains(&c)
        {
            classes.push(c);
        }
    }
    classes
}

/// Runs a pull into `archive`.
pub async fn run(archive: Arc<Archive>, o: PullOptions) -> Result<PullSummary, String> {
    let started = Instant::now();
    let mut summary = PullSummary::default();
    let studies = find_studies(&o).await?;
    summary.studies_found = studies.len();
    let done = read_journal(&o.journal);
    if let Some(dir) = o.journal.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let mut journal = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&o.journal)
        .map_err(|e| format!("cannot open the journal {}: {e}", o.journal.display()))?;
    let todo: Vec<&FoundStudy> = studies.iter().filter(|s| !done.contains(&s.uid)).collect();
    summary.studies_already_done = studies.len() - todo.len();
    let expected: u64 = todo.iter().map(|s| s.instances.unwrap_or(0)).sum();
    let bar = if o.progress {
        let b = ProgressBar::new(expected.max(todo.len() as u64));
        b.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} instances {per_sec} eta {eta} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    let sink = Arc::new(ArchiveSink {
        archive: archive.clone(),
        source_ae: o.from.ae_title.clone(),
        institution: o.institution,
        stored: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        bar: bar.clone(),
    });
    for study in todo {
        bar.set_message(study.uid.clone());
        let result = match &o.move_to {
            None => pull_by_get(&o, &study.uid, sink.as_ref()).await,
            Some(dest) => pull_by_move(&o, &study.uid, dest, &bar).await.map(|moved| {
                summary.instances_moved += moved;
            }),
        };
        match result {
            Ok(()) => {
                summary.studies_pulled += 1;
                let _ = writeln!(journal, "{}", study.uid);
                let _ = journal.flush();
            }
            Err(why) => {
                tracing::warn!(study = %study.uid, reason = %why, "study not pulled");
                summary.studies_failed.push((study.uid.clone(), why));
            }
        }
    }
    bar.finish_and_clear();
    summary.instances_stored = sink.stored.load(Ordering::Relaxed);
    summary.instances_failed = sink.failed.load(Ordering::Relaxed);
    summary.bytes = sink.bytes.load(Ordering::Relaxed);
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

fn check_final(op: &str, rsp: &yunying_dimse::Command) -> Result<(), String> {
    let st = rsp.status.unwrap_or(status::PROCESSING_FAILURE);
    match status::class(st) {
        status::Class::Success => Ok(()),
        _ => Err(format!(
            "{op} ended with status 0x{st:04X} ({} completed, {} failed) {}",
            rsp.completed.unwrap_or(0),
            rsp.failed.unwrap_or(0),
            rsp.error_comment.clone().unwrap_or_default()
        )),
    }
}

async fn pull_by_get(o: &PullOptions, study: &str, sink: &ArchiveSink) -> Result<(), String> {
    let classes = study_classes(o, study).await;
    let req = o.requestor();
    let (proposals, roles) = get_proposals(&classes);
    let mut a = associate(&req, &proposals, &roles).await.map_err(|e| format!("cannot associate for C-GET: {e}"))?;
    let ctx_ts = a
        .find_context(uids::STUDY_ROOT_GET, |_| true)
        .map(|c| c.transfer_syntax.clone())
        .ok_or("the remote does not accept Study Root C-GET")?;
    let (rsp, _) = a
        .c_get(uids::STUDY_ROOT_GET, &encode(&study_retrieve(study), &ctx_ts)?, sink, |_| {})
        .await
        .map_err(|e| e.to_string())?;
    let _ = a.release().await;
    check_final("C-GET", &rsp)
}

/// C-MOVEs a study to `dest`; returns how many instances were sent.
async fn pull_by_move(o: &PullOptions, study: &str, dest: &str, bar: &ProgressBar) -> Result<u64, String> {
    let req = o.requestor();
    let mut a = associate(&req, &[Proposal::native(uids::STUDY_ROOT_MOVE)], &[])
        .await
        .map_err(|e| format!("cannot associate for C-MOVE: {e}"))?;
    let ctx_ts = a.negotiated().contexts[0].transfer_syntax.clone();
    let mut last = 0u16;
    let (rsp, _) = a
        .c_move(uids::STUDY_ROOT_MOVE, dest, &encode(&study_retrieve(study), &ctx_ts)?, |p| {
            let done = p.completed + p.failed + p.warning;
            bar.inc(done.saturating_sub(last) as u64);
            last = done;
        })
        .await
        .map_err(|e| e.to_string())?;
    let _ = a.release().await;
    check_final("C-MOVE", &rsp)?;
    Ok(u64::from(rsp.completed.unwrap_or(0)) + u64::from(rsp.warning.unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_syntax() {
        let r: Remote = "LEGACY@10.0.0.5:104".parse().unwrap();
        assert_eq!(r.ae_title, "LEGACY");
        assert_eq!(r.address, "10.0.0.5:104");
        assert!("LEGACY".parse::<Remote>().is_err());
        assert!("@h:1".parse::<Remote>().is_err());
        assert!("A@h:x".parse::<Remote>().is_err());
    }

    #[test]
    fn proposals_fit_an_association() {
        let (p, r) = get_proposals(&[]);
        assert!(p.len() <= 128);
        assert_eq!(r.len(), p.len() - 1);
        let classes = vec!["1.2.840.10008.5.1.4.1.1.2".to_string(), "1.2.840.10008.5.1.4.1.1.7".to_string()];
        let (p, r) = get_proposals(&classes);
        assert!(p.len() <= 128);
        assert_eq!(r.len(), 2);
        // One syntax per context, native first.
        assert!(p[1..].iter().all(|x| x.transfer_syntaxes.len() == 1));
        assert_eq!(p[1].transfer_syntaxes[0], ts::EXPLICIT_VR_LE);
    }
}
