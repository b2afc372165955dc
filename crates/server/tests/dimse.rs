//! The DICOM listener of the real `yunying` binary, driven by DCMTK (echoscu,
//! storescu, findscu, movescu, getscu, storescp, dcmqrscp): AE title checks,
//! C-STORE of native and compressed objects, several associations at once,
//! C-FIND at every level, C-MOVE and C-GET (bit-exact), garbage and
//! associations cut short, and `yunying pull` from a legacy PACS (dcmqrscp)
//! and from another Yunying.
//!
//! Every DCMTK tool runs with TCP_NODELAY=1; every child process is killed
//! when its guard drops; listeners use free ports.

use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value as Json;
use yunying_dicom::charset::CharacterSet;
use yunying_dicom::{DataSet, Tag};
use yunying_dimse::command::{Command as DimseCommand, field};
use yunying_dimse::pdu::{self, Abort, AssociateRq, Pdu, Pdv, ProposedContext, UserInfo};
use yunying_synth::{StudyPlan, SynthOptions};
use yunying_test_support::{TestServer, multipart_parts};

const BIN: &str = env!("CARGO_BIN_EXE_yunying");
/// The calling AE title registered (store, query, retrieve) on every test server.
const MODALITY: &str = "MODALITY";
const CT_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.2";
const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";
const JPEG_LOSSLESS_SV1: &str = "1.2.840.10008.1.2.4.70";
const JPEG_LS_LOSSLESS: &str = "1.2.840.10008.1.2.4.80";
/// Longest any one tool may run before the test gives up on it.
const TOOL_TIMEOUT: Duration = Duration::from_secs(60);

// --- processes ------------------------------------------------------------

/// A free TCP port on 127.0.0.1 (bound, read, released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A long-running child (storescp, dcmqrscp, storescu), killed on drop.
struct Proc {
    child: Child,
    name: String,
    log: PathBuf,
}

impl Proc {
    /// Starts `tool args` with TCP_NODELAY=1, output to `log`.
    fn spawn(tool: &str, args: &[&str], log: &Path) -> Proc {
        let f = std::fs::File::create(log).unwrap();
        let child = Command::new(tool)
            .args(args)
            .env("TCP_NODELAY", "1")
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {tool}: {e}"));
        Proc { child, name: tool.to_string(), log: log.to_path_buf() }
    }

    /// Waits for the exit (at most [`TOOL_TIMEOUT`]); returns success and the output.
    fn finish(mut self) -> Run {
        let deadline = Instant::now() + TOOL_TIMEOUT;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                let out = std::fs::read_to_string(&self.log).unwrap_or_default();
                return Run { ok: st.success(), stdout: out.clone(), out };
            }
            if Instant::now() > deadline {
                let out = std::fs::read_to_string(&self.log).unwrap_or_default();
                panic!("{} did not finish within {TOOL_TIMEOUT:?}: {out}", self.name);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a finished tool did.
type Run = yunying_test_support::ToolRun;

/// Runs a command to completion (killed after [`TOOL_TIMEOUT`]).
fn run(cmd: Command) -> Run {
    yunying_test_support::run_tool(cmd, TOOL_TIMEOUT)
}

/// Runs a DCMTK tool with TCP_NODELAY=1.
fn dcmtk(tool: &str, args: &[&str]) -> Run {
    let mut c = Command::new(tool);
    c.args(args).env("TCP_NODELAY", "1");
    run(c)
}

/// Runs `yunying ARGS`.
fn yunying(args: &[&str]) -> Run {
    let mut c = Command::new(BIN);
    c.args(args).env("YUNYING_LOG", std::env::var("YUNYING_TEST_LOG").unwrap_or_else(|_| "warn".into()));
    run(c)
}

/// Waits until something listens on `port`.
fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

// --- data -------------------------------------------------------------------

/// Small synthetic studies (128×128 CT slices) written under `dir` as
/// `<study>/<series>/<sop>.dcm`.
fn synth(dir: &Path, seed: u64, studies: usize, slices: usize) -> Vec<StudyPlan> {
    let plans = yunying_synth::plan(&SynthOptions {
        seed,
        studies,
        ct_slices: slices,
        rows: 128,
        columns: 128,
        end_date: "20250601".into(),
        ..Default::default()
    });
    yunying_synth::write_to_dir(&plans, dir).unwrap();
    plans
}

/// Every file under `dir`, sorted.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() { out.extend(files_under(&p)) } else { out.push(p) }
        }
    }
    out.sort();
    out
}

/// The data set of a Part-10 file (everything after the meta group).
fn data_set(file: &[u8]) -> &[u8] {
    &file[yunying_dicom::dataset_offset(file).expect("a Part-10 file")..]
}

/// A parsed Part-10 object.
struct Obj {
    meta_ts: String,
    ds: DataSet,
    cs: CharacterSet,
}

impl Obj {
    fn parse(bytes: &[u8]) -> Obj {
        let p = yunying_dicom::parse_part10(&mut std::io::Cursor::new(bytes), bytes.len() as u64, &Default::default())
            .expect("a parseable Part-10 object");
        let cs = CharacterSet::from_specific_character_set(p.dataset.bytes(Tag(0x0008, 0x0005)), encoding_rs::GB18030);
        Obj { meta_ts: p.meta.transfer_syntax.trim_end_matches(['\0', ' ']).to_string(), ds: p.dataset, cs }
    }

    fn read(path: &Path) -> Obj {
        Obj::parse(&std::fs::read(path).unwrap())
    }

    /// A UID, code or number (first value, padding trimmed).
    fn ascii(&self, g: u16, e: u16) -> Option<String> {
        self.ds.ascii(Tag(g, e))
    }

    /// A text value decoded with the object's character set.
    fn text(&self, g: u16, e: u16) -> Option<String> {
        self.ds.bytes(Tag(g, e)).map(|b| self.cs.decode(b).trim_end_matches([' ', '\0']).to_string())
    }

    fn sop(&self) -> String {
        self.ascii(0x0008, 0x0018).expect("SOP Instance UID")
    }
}

/// SOP Instance UID → original file, for the files of a synth directory.
fn originals(dir: &Path) -> HashMap<String, PathBuf> {
    files_under(dir).into_iter().map(|p| (p.file_stem().unwrap().to_string_lossy().into_owned(), p)).collect()
}

/// Asserts that every file under `received` carries, byte for byte, the data
/// set of the original with the same SOP Instance UID; returns their UIDs.
fn assert_bit_exact(received: &Path, originals: &HashMap<String, PathBuf>) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for f in files_under(received) {
        let got = std::fs::read(&f).unwrap();
        let obj = Obj::parse(&got);
        assert_eq!(obj.meta_ts, EXPLICIT_VR_LE, "{}", f.display());
        let sop = obj.sop();
        let original = std::fs::read(originals.get(&sop).unwrap_or_else(|| panic!("{sop} was never sent"))).unwrap();
        assert!(data_set(&got) == data_set(&original), "{} differs from the original {sop}", f.display());
        seen.insert(sop);
    }
    seen
}

fn ideographic(patient_name: &str) -> &str {
    patient_name.split_once('=').map(|(_, i)| i).unwrap_or("")
}

fn alphabetic(patient_name: &str) -> &str {
    patient_name.split('=').next().unwrap_or("")
}

// --- the server -------------------------------------------------------------

/// A fresh server with [`MODALITY`] registered (store, query, retrieve).
async fn server() -> TestServer {
    let s = TestServer::start(Path::new(BIN), &[], &[]).await;
    s.cli(&["ae", "add", MODALITY, "--institution", "DEFAULT", "--allow", "store,query,retrieve"]);
    s
}

async fn qido(s: &TestServer, path: &str) -> Vec<Json> {
    let url = format!("{}{path}", s.dicomweb());
    let r = s.client().get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200, "GET {url}");
    let body = r.bytes().await.unwrap();
    if body.is_empty() {
        return Vec::new();
    }
    match serde_json::from_slice(&body).unwrap() {
        Json::Array(a) => a,
        other => panic!("GET {url}: {other}"),
    }
}

/// The stored object, as WADO-RS returns it in its stored transfer syntax.
async fn wado_instance(s: &TestServer, study: &str, series: &str, sop: &str) -> Vec<u8> {
    let url = format!("{}/studies/{study}/series/{series}/instances/{sop}", s.dicomweb());
    let r = s
        .client()
        .get(&url)
        .header("Accept", "multipart/related; type=\"application/dicom\"; transfer-syntax=*")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "GET {url}");
    let ctype = r.headers()["content-type"].to_str().unwrap().to_string();
    let mut parts = multipart_parts(&ctype, &r.bytes().await.unwrap());
    assert_eq!(parts.len(), 1, "GET {url}");
    parts.remove(0)
}

fn first_str(v: &Json, tag: &str) -> Option<String> {
    v[tag]["Value"][0].as_str().map(str::to_string)
}

/// storescu of `paths` (files or directories, recursively) as `calling`.
fn storescu(port: u16, calling: &str, extra: &[&str], paths: &[&Path]) -> Run {
    let port = port.to_string();
    let mut args = vec!["-aet", calling, "-aec", "YUNYING", "+sd", "+r"];
    args.extend_from_slice(extra);
    args.extend(["127.0.0.1", port.as_str()]);
    args.extend(paths.iter().map(|p| p.to_str().unwrap()));
    dcmtk("storescu", &args)
}

/// Files under the staging area of a data directory.
fn staged_files(data: &Path) -> Vec<PathBuf> {
    files_under(&data.join("staging"))
}

// --- 1. C-ECHO and AE titles ------------------------------------------------

#[tokio::test]
async fn echo_checks_calling_and_called_ae_titles() {
    let s = server().await;
    let port = s.dicom_port().to_string();
    let echo = |calling: &str, called: &str| dcmtk("echoscu", &["-aet", calling, "-aec", called, "127.0.0.1", &port]);

    let r = echo(MODALITY, "YUNYING");
    assert!(r.ok, "a registered AE is answered: {}", r.out);

    let r = echo("STRANGER", "YUNYING");
    assert!(!r.ok, "an unregistered calling AE is refused: {}", r.out);
    assert!(r.out.contains("Association Rejected"), "{}", r.out);
    assert!(r.out.contains("Calling AE Title Not Recognized"), "{}", r.out);

    let r = echo(MODALITY, "NOT_YUNYING");
    assert!(!r.ok, "a wrong called AE title is refused: {}", r.out);
    assert!(r.out.contains("Called AE Title Not Recognized"), "{}", r.out);

    // `yunying echo` as a registered AE, and as an unknown one.
    let peer = format!("YUNYING@127.0.0.1:{port}");
    let r = yunying(&["echo", &peer, "--ae-title", MODALITY]);
    assert!(r.ok, "{}", r.out);
    assert!(r.stdout.contains(&format!("C-ECHO {peer}: success")), "{}", r.stdout);
    let r = yunying(&["echo", &peer, "--ae-title", "STRANGER"]);
    assert!(!r.ok, "{}", r.out);
    assert!(r.out.contains("rejected"), "{}", r.out);

    // The registry is read at each association: a removed AE is refused at once.
    s.cli(&["ae", "remove", MODALITY]);
    let r = echo(MODALITY, "YUNYING");
    assert!(!r.ok && r.out.contains("Calling AE Title Not Recognized"), "{}", r.out);
}

// --- 2. C-STORE -------------------------------------------------------------

#[tokio::test]
async fn store_all_files_keeping_chinese_names_and_refuse_an_ae_without_store() {
    let s = server().await;
    s.cli(&["ae", "add", "VIEWER", "--institution", "DEFAULT", "--allow", "query"]);
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("in");
    let plans = synth(&src, 11, 3, 6);
    let files = files_under(&src).len();
    assert_eq!(files, plans.iter().map(|p| p.instance_count()).sum::<usize>());

    // An AE that may only query: every storage context is rejected, nothing stored.
    let r = storescu(s.dicom_port(), "VIEWER", &[], &[&src]);
    assert!(!r.ok, "{}", r.out);
    assert!(r.out.contains("No Acceptable Presentation Contexts"), "{}", r.out);
    assert_eq!(qido(&s, "/instances").await.len(), 0);

    let r = storescu(s.dicom_port(), MODALITY, &[], &[&src]);
    assert!(r.ok, "{}", r.out);
    assert_eq!(qido(&s, "/instances").await.len(), files);
    let studies = qido(&s, "/studies").await;
    assert_eq!(studies.len(), plans.len());
    for p in &plans {
        let st = studies
            .iter()
            .find(|v| first_str(v, "0020000D").as_deref() == Some(p.study_uid.as_str()))
            .unwrap_or_else(|| panic!("study {} missing", p.study_uid));
        let name = &st["00100010"]["Value"][0];
        assert_eq!(name["Alphabetic"], alphabetic(&p.patient_name), "{}", p.specific_character_set);
        assert_eq!(name["Ideographic"], ideographic(&p.patient_name), "{}", p.specific_character_set);
        assert!(!ideographic(&p.patient_name).is_ascii());
        assert_eq!(first_str(st, "00081030").as_deref(), Some(p.study_description.as_str()));
        assert_eq!(st["00201208"]["Value"][0], p.instance_count());
        assert_eq!(first_str(st, "00100020").as_deref(), Some(p.patient_id.as_str()));
    }
    assert!(staged_files(&s.data).is_empty(), "{:?}", staged_files(&s.data));
}

#[tokio::test]
async fn store_keeps_jpeg_ls_and_jpeg_lossless_as_sent() {
    let s = server().await;
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("in");
    let plans = synth(&src, 12, 1, 4);
    let ct = plans[0].series.iter().find(|se| se.modality == "CT" && se.instance_count > 1).expect("a CT series");
    let original = files_under(&src.join(&plans[0].study_uid).join(&ct.series_uid)).remove(0);
    let original = original.to_str().unwrap();
    let jls = tmp.path().join("jls.dcm");
    let jpg = tmp.path().join("jpg.dcm");
    let (jls_s, jpg_s) = (jls.to_str().unwrap(), jpg.to_str().unwrap());
    let r = dcmtk("dcmcjpls", &[original, jls_s]);
    assert!(r.ok, "{}", r.out);
    let r = dcmtk("dcmcjpeg", &["+e1", original, jpg_s]);
    assert!(r.ok, "{}", r.out);
    // Distinct SOP instances (the lossless copies keep the original's UID).
    let r = dcmtk("dcmodify", &["-nb", "-gin", jls_s, jpg_s]);
    assert!(r.ok, "{}", r.out);

    // storescu proposes the compressed syntax and the native ones, in
    // separate contexts; it cannot decompress, so the store succeeds only if
    // the compressed context is the one accepted.
    for (file, option, ts) in [(&jls, "-xt", JPEG_LS_LOSSLESS), (&jpg, "-xs", JPEG_LOSSLESS_SV1)] {
        let sent = std::fs::read(file).unwrap();
        let obj = Obj::parse(&sent);
        assert_eq!(obj.meta_ts, ts);
        let r = storescu(s.dicom_port(), MODALITY, &["-R", option, "-v"], &[file]);
        assert!(r.ok, "{}", r.out);
        assert!(r.out.contains("Received Store Response (Success)"), "{}", r.out);
        let stored =
            wado_instance(&s, &obj.ascii(0x0020, 0x000D).unwrap(), &obj.ascii(0x0020, 0x000E).unwrap(), &obj.sop())
                .await;
        let back = Obj::parse(&stored);
        assert_eq!(back.meta_ts, ts, "stored in the syntax it was sent in");
        assert_eq!(back.sop(), obj.sop());
        assert!(data_set(&stored) == data_set(&sent), "the compressed data set is kept as sent ({ts})");
        let found = qido(&s, &format!("/instances?SOPInstanceUID={}", obj.sop())).await;
        assert_eq!(found.len(), 1);
        assert_eq!(first_str(&found[0], "00083002").as_deref(), Some(ts));
    }
    assert_eq!(qido(&s, "/instances").await.len(), 2);

    // A receiver that takes only uncompressed syntaxes (getscu's default)
    // gets them decoded: the pixels DCMTK's own decompressors give.
    let dir = tmp.path().join("get-native");
    std::fs::create_dir_all(&dir).unwrap();
    let study = format!("StudyInstanceUID={}", plans[0].study_uid);
    let port = s.dicom_port().to_string();
    let r = dcmtk(
        "getscu",
        &["-v", "-aet", MODALITY, "-aec", "YUNYING", "-od", dir.to_str().unwrap(), "-S", "-k", "QueryRetrieveLevel=STUDY", "-k", &study, "127.0.0.1", &port],
    );
    assert!(r.ok, "{}", r.out);
    assert!(r.out.contains("Number of Completed Suboperations : 2"), "{}", r.out);
    let mut want = HashMap::new();
    for (file, tool) in [(&jls, "dcmdjpls"), (&jpg, "dcmdjpeg")] {
        let native = tmp.path().join(format!("{tool}.dcm"));
        assert!(dcmtk(tool, &[file.to_str().unwrap(), native.to_str().unwrap()]).ok);
        want.insert(Obj::read(file).sop(), pixel_data(&native, tmp.path()));
    }
    for got in files_under(&dir) {
        let obj = Obj::read(&got);
        assert!(obj.meta_ts == "1.2.840.10008.1.2.1" || obj.meta_ts == "1.2.840.10008.1.2", "{}", obj.meta_ts);
        assert!(pixel_data(&got, tmp.path()) == want[&obj.sop()], "{}: pixels differ from DCMTK's decompression", obj.sop());
    }
}

/// The Pixel Data value of a file, as DCMTK writes it out.
fn pixel_data(file: &Path, scratch: &Path) -> Vec<u8> {
    let dir = scratch.join(format!("raw-{}", file.file_name().unwrap().to_string_lossy()));
    std::fs::create_dir_all(&dir).unwrap();
    assert!(dcmtk("dcmdump", &["+W", dir.to_str().unwrap(), file.to_str().unwrap()]).ok);
    let mut raws: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    raws.sort_by_key(|p| std::fs::metadata(p).unwrap().len());
    std::fs::read(raws.last().expect("pixel data written")).unwrap()
}

#[tokio::test]
async fn four_associations_at_once_store_everything() {
    let s = server().await;
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("in");
    let plans = synth(&src, 13, 4, 16);
    assert_eq!(plans.len(), 4);
    let port = s.dicom_port().to_string();
    let senders: Vec<Proc> = plans
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let dir = src.join(&p.study_uid);
            Proc::spawn(
                "storescu",
                &["-aet", MODALITY, "-aec", "YUNYING", "+sd", "+r", "127.0.0.1", &port, dir.to_str().unwrap()],
                &tmp.path().join(format!("storescu{i}.log")),
            )
        })
        .collect();
    for sender in senders {
        let r = sender.finish();
        assert!(r.ok, "{}", r.out);
    }
    let total: usize = plans.iter().map(|p| p.instance_count()).sum();
    assert_eq!(qido(&s, "/instances").await.len(), total);
    for p in &plans {
        let st = qido(&s, &format!("/studies?StudyInstanceUID={}", p.study_uid)).await;
        assert_eq!(st.len(), 1);
        assert_eq!(st[0]["00201208"]["Value"][0], p.instance_count(), "{}", p.study_uid);
        assert_eq!(st[0]["00201206"]["Value"][0], p.series.len(), "{}", p.study_uid);
    }
}

// --- 3. C-FIND --------------------------------------------------------------

/// findscu with `-X`: the responses as parsed objects, and the run.
fn findscu(port: u16, model: &str, keys: &[&str]) -> (Run, Vec<Obj>) {
    let out = tempfile::tempdir().unwrap();
    let port = port.to_string();
    let mut args = vec!["-v", "-X", "-od", out.path().to_str().unwrap(), "-aet", MODALITY, "-aec", "YUNYING", model];
    for k in keys {
        args.extend(["-k", k]);
    }
    args.extend(["127.0.0.1", port.as_str()]);
    let r = dcmtk("findscu", &args);
    let rsps = files_under(out.path()).iter().map(|f| Obj::read(f)).collect();
    (r, rsps)
}

fn study_uids(rsps: &[Obj]) -> BTreeSet<String> {
    rsps.iter().map(|r| r.ascii(0x0020, 0x000D).expect("StudyInstanceUID")).collect()
}

#[tokio::test]
async fn find_at_patient_study_series_and_image_level() {
    let s = server().await;
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("in");
    let plans = synth(&src, 14, 6, 4);
    let r = storescu(s.dicom_port(), MODALITY, &[], &[&src]);
    assert!(r.ok, "{}", r.out);
    let port = s.dicom_port();
    let ok = |r: &Run| assert!(r.ok && r.out.contains("Received Final Find Response (Success)"), "{}", r.out);
    let uids_of = |pred: &dyn Fn(&StudyPlan) -> bool| -> BTreeSet<String> {
        plans.iter().filter(|p| pred(p)).map(|p| p.study_uid.clone()).collect()
    };
    let p = &plans[0];
    let family = alphabetic(&p.patient_name).split('^').next().unwrap().to_string();
    let modality = p.modality_summary[0].clone();

    // STUDY: each key alone, then together.
    let name_key = format!("PatientName={family}*");
    let (r, rsps) = findscu(
        port,
        "-S",
        &["QueryRetrieveLevel=STUDY", &name_key, "StudyInstanceUID", "PatientID", "NumberOfStudyRelatedInstances"],
    );
    ok(&r);
    assert_eq!(study_uids(&rsps), uids_of(&|q| q.patient_name.starts_with(&family)));
    for rsp in &rsps {
        let q = plans.iter().find(|q| Some(&q.study_uid) == rsp.ascii(0x0020, 0x000D).as_ref()).unwrap();
        assert_eq!(
            rsp.text(0x0010, 0x0010).as_deref(),
            Some(q.patient_name.as_str()),
            "PN in {}",
            q.specific_character_set
        );
        assert_eq!(rsp.ascii(0x0010, 0x0020).as_deref(), Some(q.patient_id.as_str()));
        assert_eq!(rsp.ascii(0x0020, 0x1208), Some(q.instance_count().to_string()));
    }

    let mut dates: Vec<&str> = plans.iter().map(|q| q.study_date.as_str()).collect();
    dates.sort();
    let (from, to) = (dates[1], dates[dates.len() - 2]);
    let date_key = format!("StudyDate={from}-{to}");
    let (r, rsps) = findscu(port, "-S", &["QueryRetrieveLevel=STUDY", &date_key, "StudyInstanceUID"]);
    ok(&r);
    let expected = uids_of(&|q| q.study_date.as_str() >= from && q.study_date.as_str() <= to);
    assert!(expected.len() >= 2 && expected.len() < plans.len(), "{dates:?}");
    assert_eq!(study_uids(&rsps), expected);
    for rsp in &rsps {
        let d = rsp.ascii(0x0008, 0x0020).unwrap();
        assert!(d.as_str() >= from && d.as_str() <= to, "{d}");
    }

    let mut modalities_found = 0;
    for m in ["CT", "DX", "MR", "CR"] {
        let key = format!("ModalitiesInStudy={m}");
        let (r, rsps) = findscu(port, "-S", &["QueryRetrieveLevel=STUDY", &key, "StudyInstanceUID"]);
        ok(&r);
        assert_eq!(study_uids(&rsps), uids_of(&|q| q.modality_summary.iter().any(|x| x == m)), "{m}");
        for rsp in &rsps {
            assert!(rsp.text(0x0008, 0x0061).unwrap().split('\\').any(|x| x == m));
        }
        modalities_found += usize::from(!rsps.is_empty());
    }
    assert!(modalities_found >= 2, "the data should hold several modalities");

    let date_key = format!("StudyDate={}-{}", p.study_date, p.study_date);
    let mod_key = format!("ModalitiesInStudy={modality}");
    let (r, rsps) =
        findscu(port, "-S", &["QueryRetrieveLevel=STUDY", &name_key, &date_key, &mod_key, "StudyInstanceUID"]);
    ok(&r);
    let expected = uids_of(&|q| {
        q.patient_name.starts_with(&family) && q.study_date == p.study_date && q.modality_summary.contains(&modality)
    });
    assert!(expected.contains(&p.study_uid));
    assert_eq!(study_uids(&rsps), expected);

    let (r, rsps) = findscu(port, "-S", &["QueryRetrieveLevel=STUDY", "PatientName=Nobody*", "StudyInstanceUID"]);
    ok(&r);
    assert!(rsps.is_empty());

    // SERIES of one study.
    let study_key = format!("StudyInstanceUID={}", p.study_uid);
    let (r, rsps) = findscu(
        port,
        "-S",
        &[
            "QueryRetrieveLevel=SERIES",
            &study_key,
            "SeriesInstanceUID",
            "Modality",
            "SeriesNumber",
            "NumberOfSeriesRelatedInstances",
        ],
    );
    ok(&r);
    assert_eq!(rsps.len(), p.series.len());
    for se in &p.series {
        let rsp = rsps
            .iter()
            .find(|r| r.ascii(0x0020, 0x000E).as_deref() == Some(se.series_uid.as_str()))
            .unwrap_or_else(|| panic!("series {} missing", se.series_uid));
        assert_eq!(rsp.ascii(0x0008, 0x0060).as_deref(), Some(se.modality.as_str()));
        assert_eq!(rsp.ascii(0x0020, 0x0011), Some(se.series_number.to_string()));
        assert_eq!(rsp.ascii(0x0020, 0x1209), Some(se.instance_count.to_string()));
        assert_eq!(rsp.ascii(0x0020, 0x000D).as_deref(), Some(p.study_uid.as_str()));
    }

    // IMAGE of one series.
    let se = p.series.iter().max_by_key(|se| se.instance_count).unwrap();
    let series_key = format!("SeriesInstanceUID={}", se.series_uid);
    let (r, rsps) =
        findscu(port, "-S", &["QueryRetrieveLevel=IMAGE", &study_key, &series_key, "SOPInstanceUID", "InstanceNumber"]);
    ok(&r);
    let expected: BTreeSet<String> = files_under(&src.join(&p.study_uid).join(&se.series_uid))
        .iter()
        .map(|f| f.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(expected.len(), se.instance_count);
    assert_eq!(rsps.iter().map(|r| r.sop()).collect::<BTreeSet<_>>(), expected);
    let mut numbers: Vec<u64> = rsps.iter().map(|r| r.ascii(0x0020, 0x0013).unwrap().parse().unwrap()).collect();
    numbers.sort();
    assert_eq!(numbers, (1..=se.instance_count as u64).collect::<Vec<_>>());

    // PATIENT (patient root).
    let id_key = format!("PatientID={}", p.patient_id);
    let (r, rsps) = findscu(port, "-P", &["QueryRetrieveLevel=PATIENT", &id_key, "PatientName", "PatientBirthDate"]);
    ok(&r);
    assert_eq!(rsps.len(), 1, "one patient with ID {}", p.patient_id);
    assert_eq!(rsps[0].ascii(0x0010, 0x0020).as_deref(), Some(p.patient_id.as_str()));
    assert_eq!(rsps[0].text(0x0010, 0x0010).as_deref(), Some(p.patient_name.as_str()));
    assert_eq!(rsps[0].ascii(0x0010, 0x0030).as_deref(), Some(p.patient_birth_date.as_str()));
    let (r, rsps) = findscu(port, "-P", &["QueryRetrieveLevel=PATIENT", "PatientID", "PatientName"]);
    ok(&r);
    let patients: BTreeSet<&str> = plans.iter().map(|q| q.patient_id.as_str()).collect();
    assert_eq!(rsps.len(), patients.len());
    assert_eq!(rsps.iter().map(|r| r.ascii(0x0010, 0x0020).unwrap()).collect::<BTreeSet<_>>(), {
        patients.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>()
    });

    // Invalid levels: a failure status (A900), no match. PATIENT does not
    // exist in the study root model; a missing level is no level.
    for keys in [
        &["QueryRetrieveLevel=BOGUS", "PatientID"][..],
        &["QueryRetrieveLevel=PATIENT", "PatientID"][..],
        &["PatientID"][..],
    ] {
        let (r, rsps) = findscu(port, "-S", keys);
        assert!(rsps.is_empty(), "{keys:?}");
        assert!(
            r.out.contains("Received Final Find Response (Error: DataSetDoesNotMatchSOPClass)"),
            "{keys:?}: {}",
            r.out
        );
    }
}

// --- 4. C-MOVE --------------------------------------------------------------

/// A DCMTK storescp as the move destination DEST, registered on `s`.
struct Destination {
    _proc: Proc,
    dir: PathBuf,
}

fn destination(s: &TestServer, tmp: &Path, ae: &str) -> Destination {
    let port = free_port();
    let dir = tmp.join(format!("{ae}-received"));
    std::fs::create_dir_all(&dir).unwrap();
    let proc = Proc::spawn(
        "storescp",
        &["-aet", ae, "-od", dir.to_str().unwrap(), &port.to_string()],
        &tmp.join(format!("{ae}.log")),
    );
    wait_port(port);
    s.cli(&[
        "ae",
        "add",
        ae,
        "--institution",
        "DEFAULT",
        "--host",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--allow",
        "store",
    ]);
    Destination { _proc: proc, dir }
}

fn clear(dir: &Path) {
    for f in files_under(dir) {
        std::fs::remove_file(f).unwrap();
    }
}

fn movescu(port: u16, model: &str, dest: &str, keys: &[&str]) -> Run {
    let port = port.to_string();
    let mut args = vec!["-v", "-aet", MODALITY, "-aec", "YUNYING", "-aem", dest, model];
    for k in keys {
        args.extend(["-k", k]);
    }
    args.extend(["127.0.0.1", port.as_str()]);
    dcmtk("movescu", &args)
}

#[tokio::test]
async fn move_study_series_image_and_patient_to_storescp_bit_exact() {
    let s = server().await;
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("in");
    let plans = synth(&src, 15, 3, 5);
    let orig = originals(&src);
    let r = storescu(s.dicom_port(), MODALITY, &[], &[&src]);
    assert!(r.ok, "{}", r.out);
    let dest = destination(&s, tmp.path(), "DEST");
    let port = s.dicom_port();
    let success = |r: &Run| assert!(r.ok && r.out.contains("Received Final Move Response (Success)"), "{}", r.out);
    let p = plans.iter().max_by_key(|p| p.series.len()).unwrap();

    // STUDY
    let study_key = format!("StudyInstanceUID={}", p.study_uid);
    let r = movescu(port, "-S", "DEST", &["QueryRetrieveLevel=STUDY", &study_key]);
    success(&r);
    let got = assert_bit_exact(&dest.dir, &orig);
    let expected: BTreeSet<String> = files_under(&src.join(&p.study_uid))
        .iter()
        .map(|f| f.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(got, expected);
    assert_eq!(got.len(), p.instance_count());

    // SERIES
    clear(&dest.dir);
    let se = p.series.iter().max_by_key(|se| se.instance_count).unwrap();
    let series_key = format!("SeriesInstanceUID={}", se.series_uid);
    let r = movescu(port, "-S", "DEST", &["QueryRetrieveLevel=SERIES", &study_key, &series_key]);
    success(&r);
    let got = assert_bit_exact(&dest.dir, &orig);
    assert_eq!(got.len(), se.instance_count);
    for sop in &got {
        assert!(orig[sop].starts_with(src.join(&p.study_uid).join(&se.series_uid)), "{sop} is not of the series");
    }

    // IMAGE
    clear(&dest.dir);
    let one = files_under(&src.join(&p.study_uid).join(&se.series_uid)).pop().unwrap();
    let sop = one.file_stem().unwrap().to_string_lossy().into_owned();
    let sop_key = format!("SOPInstanceUID={sop}");
    let r = movescu(port, "-S", "DEST", &["QueryRetrieveLevel=IMAGE", &study_key, &series_key, &sop_key]);
    success(&r);
    assert_eq!(assert_bit_exact(&dest.dir, &orig), BTreeSet::from([sop]));

    // PATIENT (patient root): every study of the patient.
    clear(&dest.dir);
    let q = &plans[0];
    let id_key = format!("PatientID={}", q.patient_id);
    let r = movescu(port, "-P", "DEST", &["QueryRetrieveLevel=PATIENT", &id_key]);
    success(&r);
    let expected: usize = plans.iter().filter(|x| x.patient_id == q.patient_id).map(|x| x.instance_count()).sum();
    assert_eq!(assert_bit_exact(&dest.dir, &orig).len(), expected);

    // An unknown destination: refused with A801, nothing sent.
    clear(&dest.dir);
    let r = movescu(port, "-S", "NOWHERE", &["QueryRetrieveLevel=STUDY", &study_key]);
    assert!(r.out.contains("Received Final Move Response (Refused: MoveDestinationUnknown)"), "{}", r.out);
    assert!(files_under(&dest.dir).is_empty());
}

// --- 5. C-GET ---------------------------------------------------------------

#[tokio::test]
async fn get_study_and_series_bit_exact() {
    let s = server().await;
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("in");
    let plans = synth(&src, 16, 2, 6);
    let orig = originals(&src);
    let r = storescu(s.dicom_port(), MODALITY, &[], &[&src]);
    assert!(r.ok, "{}", r.out);
    let port = s.dicom_port().to_string();
    let get = |dir: &Path, keys: &[&str]| {
        std::fs::create_dir_all(dir).unwrap();
        let mut args = vec!["-v", "-aet", MODALITY, "-aec", "YUNYING", "-od", dir.to_str().unwrap(), "-S"];
        for k in keys {
            args.extend(["-k", *k]);
        }
        args.extend(["127.0.0.1", port.as_str()]);
        dcmtk("getscu", &args)
    };
    for p in &plans {
        let dir = tmp.path().join(format!("get-{}", p.study_uid));
        let r = get(&dir, &["QueryRetrieveLevel=STUDY", &format!("StudyInstanceUID={}", p.study_uid)]);
        assert!(r.ok, "{}", r.out);
        assert!(r.out.contains(&format!("Number of Completed Suboperations : {}", p.instance_count())), "{}", r.out);
        let got = assert_bit_exact(&dir, &orig);
        assert_eq!(got.len(), p.instance_count());
        let expected: BTreeSet<String> =
            orig.iter().filter(|(_, f)| f.starts_with(src.join(&p.study_uid))).map(|(k, _)| k.clone()).collect();
        assert_eq!(got, expected);
    }
    let p = &plans[0];
    let se = p.series.iter().max_by_key(|se| se.instance_count).unwrap();
    let dir = tmp.path().join("get-series");
    let r = get(
        &dir,
        &[
            "QueryRetrieveLevel=SERIES",
            &format!("StudyInstanceUID={}", p.study_uid),
            &format!("SeriesInstanceUID={}", se.series_uid),
        ],
    );
    assert!(r.ok, "{}", r.out);
    assert_eq!(assert_bit_exact(&dir, &orig).len(), se.instance_count);
}

// --- 6. robustness ----------------------------------------------------------

/// Reads until the peer closes (EOF or reset); false if it is still open after `within`.
fn closed_by_peer(stream: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
            Err(_) => return true,
        }
    }
    false
}

#[tokio::test]
async fn garbage_on_the_port_is_dropped_and_the_listener_lives_on() {
    use rand::{Rng, SeedableRng};
    let s = server().await;
    let port = s.dicom_port();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5EED);
    let mut random = vec![0u8; 10 * 1024];
    rng.fill(&mut random[..]);
    // Pure noise; and noise behind a plausible A-ASSOCIATE-RQ header.
    let mut fake_rq = random.clone();
    fake_rq[..6].copy_from_slice(&[0x01, 0x00, 0, 0, ((10 * 1024 - 6) >> 8) as u8, ((10 * 1024 - 6) & 0xFF) as u8]);
    let mut noise = random.clone();
    noise[0] = 0xA5;
    for (what, bytes) in [("noise", &noise), ("fake A-ASSOCIATE-RQ", &fake_rq)] {
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let _ = c.write_all(bytes); // the server may close before all is written
        assert!(closed_by_peer(&mut c, Duration::from_secs(10)), "{what}: the server kept the connection open");
        let r = dcmtk("echoscu", &["-aet", MODALITY, "-aec", "YUNYING", "127.0.0.1", &port.to_string()]);
        assert!(r.ok, "after {what}: {}", r.out);
    }
}

/// An association opened by hand (A-ASSOCIATE-RQ/AC over a plain socket).
struct RawAssociation {
    stream: TcpStream,
    context_id: u8,
}

fn send_pdu(stream: &mut TcpStream, p: &Pdu) {
    stream.write_all(&pdu::encode(p)).unwrap();
}

fn read_pdu(stream: &mut TcpStream) -> Pdu {
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut h = [0u8; 6];
    stream.read_exact(&mut h).unwrap();
    let len = u32::from_be_bytes([h[2], h[3], h[4], h[5]]) as usize;
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).unwrap();
    pdu::decode(h[0], Bytes::from(body)).unwrap()
}

fn raw_associate(port: u16, calling: &str) -> RawAssociation {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_nodelay(true).unwrap();
    let rq = AssociateRq {
        protocol_version: 1,
        called_ae: "YUNYING".into(),
        calling_ae: calling.into(),
        application_context: pdu::APPLICATION_CONTEXT.into(),
        contexts: vec![ProposedContext {
            id: 1,
            abstract_syntax: CT_IMAGE_STORAGE.into(),
            transfer_syntaxes: vec![EXPLICIT_VR_LE.into()],
        }],
        user: UserInfo {
            max_pdu_length: 16384,
            implementation_class_uid: "1.2.826.0.1.3680043.8.1055.99".into(),
            ..Default::default()
        },
    };
    send_pdu(&mut stream, &Pdu::AssociateRq(rq));
    match read_pdu(&mut stream) {
        Pdu::AssociateAc(ac) => {
            let ctx = ac.contexts.iter().find(|c| c.id == 1).expect("context 1 answered");
            assert_eq!(ctx.result, 0, "CT storage accepted");
            assert_eq!(ctx.transfer_syntax, EXPLICIT_VR_LE);
        }
        other => panic!("association not accepted: {other:?}"),
    }
    RawAssociation { stream, context_id: 1 }
}

#[derive(Clone, Copy, Debug)]
enum Cut {
    /// The TCP connection just closes.
    Drop,
    /// An A-ABORT, then the close.
    Abort,
}

/// Starts a C-STORE of a CT slice, sends half of its data set, then cuts the
/// association short: nothing is stored, nothing stays in the staging area,
/// and the server serves the next association (which stores the same object).
async fn store_cut_short(cut: Cut) {
    let s = server().await;
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("in");
    let plans = synth(&src, 17, 1, 4);
    let se = plans[0].series.iter().find(|se| se.modality == "CT" && se.instance_count > 1).unwrap();
    let file = files_under(&src.join(&plans[0].study_uid).join(&se.series_uid)).remove(0);
    let sop = file.file_stem().unwrap().to_string_lossy().into_owned();
    let bytes = std::fs::read(&file).unwrap();
    let ds = data_set(&bytes);
    assert!(ds.len() > 32 * 1024, "a data set of several PDUs: {}", ds.len());

    let mut a = raw_associate(s.dicom_port(), MODALITY);
    let mut rq = DimseCommand::new(field::C_STORE_RQ);
    rq.affected_sop_class_uid = Some(CT_IMAGE_STORAGE.into());
    rq.affected_sop_instance_uid = Some(sop.clone());
    rq.message_id = Some(1);
    rq.priority = Some(0);
    rq.data_set_type = 0x0000;
    let ctx = a.context_id;
    send_pdu(
        &mut a.stream,
        &Pdu::PData(vec![Pdv { context_id: ctx, command: true, last: true, data: rq.encode().into() }]),
    );
    for chunk in ds[..ds.len() / 2].chunks(16_000) {
        let pdv = Pdv { context_id: ctx, command: false, last: false, data: Bytes::copy_from_slice(chunk) };
        send_pdu(&mut a.stream, &Pdu::PData(vec![pdv]));
    }
    a.stream.flush().unwrap();
    // The object is being received: a staging file exists.
    let deadline = Instant::now() + Duration::from_secs(5);
    while staged_files(&s.data).is_empty() {
        assert!(Instant::now() < deadline, "no staging file appeared while the data set arrived");
        std::thread::sleep(Duration::from_millis(10));
    }
    match cut {
        Cut::Drop => {}
        Cut::Abort => send_pdu(&mut a.stream, &Pdu::Abort(Abort::USER)),
    }
    let _ = a.stream.shutdown(Shutdown::Both);
    drop(a);

    let deadline = Instant::now() + Duration::from_secs(10);
    while !staged_files(&s.data).is_empty() {
        assert!(Instant::now() < deadline, "{cut:?}: staging files left: {:?}", staged_files(&s.data));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(qido(&s, "/instances").await.is_empty(), "{cut:?}: a cut-short object was stored");

    // The server is fine, and the same object arrives whole on a new association.
    let port = s.dicom_port().to_string();
    let r = dcmtk("echoscu", &["-aet", MODALITY, "-aec", "YUNYING", "127.0.0.1", &port]);
    assert!(r.ok, "{}", r.out);
    let r = storescu(s.dicom_port(), MODALITY, &[], &[&file]);
    assert!(r.ok, "{}", r.out);
    let found = qido(&s, "/instances").await;
    assert_eq!(found.len(), 1);
    assert_eq!(first_str(&found[0], "00080018"), Some(sop.clone()));
    let stored = wado_instance(&s, &plans[0].study_uid, &se.series_uid, &sop).await;
    assert!(data_set(&stored) == ds);
    assert!(staged_files(&s.data).is_empty());
}

#[tokio::test]
async fn connection_dropped_in_the_middle_of_a_data_set_leaves_nothing() {
    store_cut_short(Cut::Drop).await;
}

#[tokio::test]
async fn abort_in_the_middle_of_a_data_set_leaves_nothing() {
    store_cut_short(Cut::Abort).await;
}

// --- 7. yunying pull --------------------------------------------------------

/// DCMTK dcmqrscp as a legacy PACS (AE LEGACY), optionally knowing a move destination.
struct Legacy {
    _proc: Proc,
    port: u16,
}

fn legacy_pacs(tmp: &Path, move_destination: Option<(&str, u16)>) -> Legacy {
    let port = free_port();
    let db = tmp.join("legacy-db");
    std::fs::create_dir_all(&db).unwrap();
    let hosts = match move_destination {
        // dcmqrscp wants a host name here, not an address.
        Some((ae, p)) => format!("dest = ({ae}, localhost, {p})\n"),
        None => String::new(),
    };
    let cfg = tmp.join("dcmqrscp.cfg");
    std::fs::write(
        &cfg,
        format!(
            "NetworkTCPPort  = {port}\nMaxPDUSize      = 16384\nMaxAssociations = 16\n\
             HostTable BEGIN\n{hosts}HostTable END\n\
             VendorTable BEGIN\nVendorTable END\n\
             AETable BEGIN\nLEGACY {} RW (100, 1024mb) ANY\nAETable END\n",
            db.display()
        ),
    )
    .unwrap();
    let proc = Proc::spawn("dcmqrscp", &["-c", cfg.to_str().unwrap(), &port.to_string()], &tmp.join("dcmqrscp.log"));
    // (Not a bare TCP probe: dcmqrscp logs it as a failed association.)
    let deadline = Instant::now() + Duration::from_secs(20);
    while !dcmtk("echoscu", &["-aec", "LEGACY", "127.0.0.1", &port.to_string()]).ok {
        assert!(Instant::now() < deadline, "dcmqrscp does not answer on port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    Legacy { _proc: proc, port }
}

fn fill_legacy(legacy: &Legacy, src: &Path) {
    let r = dcmtk(
        "storescu",
        &["-aet", "OLDCT", "-aec", "LEGACY", "+sd", "+r", "127.0.0.1", &legacy.port.to_string(), src.to_str().unwrap()],
    );
    assert!(r.ok, "{}", r.out);
}

/// The value of one line of the pull summary, e.g. `studies pulled`.
fn summary(out: &str, line: &str) -> u64 {
    out.lines()
        .find_map(|l| l.trim().strip_prefix(line))
        .unwrap_or_else(|| panic!("no {line:?} in the summary: {out}"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn pull_from_dcmqrscp_by_c_get_is_resumable() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("in");
    let plans = synth(&src, 18, 3, 4);
    let total: usize = plans.iter().map(|p| p.instance_count()).sum();
    let legacy = legacy_pacs(tmp.path(), None);
    fill_legacy(&legacy, &src);

    let data = tmp.path().join("pulled");
    let from = format!("LEGACY@127.0.0.1:{}", legacy.port);
    let r = yunying(&["pull", "--from", &from, "--data", data.to_str().unwrap()]);
    assert!(r.ok, "{}\n{}", r.out, std::fs::read_to_string(tmp.path().join("dcmqrscp.log")).unwrap_or_default());
    assert_eq!(summary(&r.stdout, "studies found"), 3);
    assert_eq!(summary(&r.stdout, "studies pulled"), 3);
    assert_eq!(summary(&r.stdout, "instances stored"), total as u64);
    assert_eq!(summary(&r.stdout, "studies failed"), 0);

    // Again: everything was done in the earlier run.
    let r = yunying(&["pull", "--from", &from, "--data", data.to_str().unwrap()]);
    assert!(r.ok, "{}", r.out);
    assert_eq!(summary(&r.stdout, "done in an earlier run"), 3);
    assert_eq!(summary(&r.stdout, "studies pulled"), 0);
    assert_eq!(summary(&r.stdout, "instances stored"), 0);

    let s = TestServer::start_with_data(Path::new(BIN), &data, &[]).await;
    assert_eq!(qido(&s, "/instances").await.len(), total);
    let studies = qido(&s, "/studies").await;
    assert_eq!(studies.len(), 3);
    for p in &plans {
        let st = studies.iter().find(|v| first_str(v, "0020000D").as_deref() == Some(p.study_uid.as_str())).unwrap();
        assert_eq!(st["00100010"]["Value"][0]["Ideographic"], ideographic(&p.patient_name));
        assert_eq!(st["00201208"]["Value"][0], p.instance_count());
    }
    // Every object, byte for byte as the legacy PACS holds it (dcmqrscp
    // normalises some objects it receives, so not always the synth file).
    let held: HashMap<String, PathBuf> = files_under(&tmp.path().join("legacy-db"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e != "dat"))
        .filter_map(|p| std::fs::read(&p).ok().filter(|b| b.len() > 132 && &b[128..132] == b"DICM").map(|b| (Obj::parse(&b).sop(), p)))
        .collect();
    assert_eq!(held.len(), total, "dcmqrscp holds every object");
    for (sop, path) in &held {
        let o = Obj::read(path);
        let stored = wado_instance(&s, &o.ascii(0x0020, 0x000D).unwrap(), &o.ascii(0x0020, 0x000E).unwrap(), sop).await;
        let back = Obj::parse(&stored);
        assert!(
            data_set(&stored) == data_set(&std::fs::read(path).unwrap()),
            "{sop}: stored as {} from {}, differs from the original ({})",
            back.meta_ts,
            path.display(),
            o.meta_ts
        );
    }
}

#[tokio::test]
async fn pull_from_dcmqrscp_by_c_move_into_a_running_server() {
    let s = server().await;
    // dcmqrscp sends the C-MOVE sub-operations as LEGACY.
    s.cli(&["ae", "add", "LEGACY", "--institution", "DEFAULT", "--allow", "store"]);
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("in");
    let plans = synth(&src, 19, 3, 4);
    let total: usize = plans.iter().map(|p| p.instance_count()).sum();
    let legacy = legacy_pacs(tmp.path(), Some(("YUNYING", s.dicom_port())));
    fill_legacy(&legacy, &src);

    let journal_data = tmp.path().join("puller");
    let from = format!("LEGACY@127.0.0.1:{}", legacy.port);
    let r = yunying(&["pull", "--from", &from, "--move-to", "YUNYING", "--data", journal_data.to_str().unwrap()]);
    assert!(r.ok, "{}\n{}", r.out, std::fs::read_to_string(tmp.path().join("dcmqrscp.log")).unwrap_or_default());
    assert_eq!(summary(&r.stdout, "studies pulled"), 3);
    assert_eq!(summary(&r.stdout, "studies failed"), 0);
    assert_eq!(qido(&s, "/instances").await.len(), total);
    assert_eq!(qido(&s, "/studies").await.len(), 3);

    let r = yunying(&["pull", "--from", &from, "--move-to", "YUNYING", "--data", journal_data.to_str().unwrap()]);
    assert!(r.ok, "{}", r.out);
    assert_eq!(summary(&r.stdout, "done in an earlier run"), 3);
    assert_eq!(summary(&r.stdout, "studies pulled"), 0);
}

/// A second Yunying, B (AE title ARCHIVE_B), as the receiving end of a migration.
async fn archive_b(tmp: &Path) -> TestServer {
    let cfg = tmp.join("archive-b.toml");
    std::fs::write(&cfg, "[dicom]\nae_title = \"ARCHIVE_B\"\n").unwrap();
    TestServer::start(Path::new(BIN), &["--config", cfg.to_str().unwrap()], &[]).await
}

#[tokio::test]
async fn pull_from_another_yunying_by_c_move() {
    let a = server().await;
    let tmp = tempfile::tempdir().unwrap();
    let b = archive_b(tmp.path()).await;
    let b_port = b.dicom_port().to_string();
    a.cli(&["ae", "add", "PULLER", "--institution", "DEFAULT", "--allow", "query,retrieve"]);
    a.cli(&["ae", "add", "NOSY", "--institution", "DEFAULT", "--allow", "query"]);
    a.cli(&[
        "ae",
        "add",
        "ARCHIVE_B",
        "--institution",
        "DEFAULT",
        "--host",
        "127.0.0.1",
        "--port",
        &b_port,
        "--allow",
        "store",
    ]);
    // A sends the sub-operations as itself.
    b.cli(&["ae", "add", "YUNYING", "--institution", "DEFAULT", "--allow", "store"]);
    let src = tmp.path().join("in");
    let plans = synth(&src, 20, 3, 4);
    let total: usize = plans.iter().map(|p| p.instance_count()).sum();
    let r = storescu(a.dicom_port(), MODALITY, &[], &[&src]);
    assert!(r.ok, "{}", r.out);
    let from = format!("YUNYING@127.0.0.1:{}", a.dicom_port());
    let journal = tmp.path().join("puller");
    let pull = |ae: &str| {
        yunying(&[
            "pull",
            "--from",
            &from,
            "--ae-title",
            ae,
            "--move-to",
            "ARCHIVE_B",
            "--data",
            journal.to_str().unwrap(),
        ])
    };

    // An AE that may query but not retrieve finds the studies and moves none.
    let r = pull("NOSY");
    assert!(!r.ok, "{}", r.out);
    assert_eq!(summary(&r.stdout, "studies found"), 3);
    assert_eq!(summary(&r.stdout, "studies failed"), 3);
    assert!(qido(&b, "/instances").await.is_empty());

    let r = pull("PULLER");
    assert!(r.ok, "{}", r.out);
    assert_eq!(summary(&r.stdout, "studies pulled"), 3);
    assert_eq!(qido(&b, "/instances").await.len(), total);
    let studies = qido(&b, "/studies").await;
    assert_eq!(studies.len(), 3);
    for p in &plans {
        let st = studies.iter().find(|v| first_str(v, "0020000D").as_deref() == Some(p.study_uid.as_str())).unwrap();
        assert_eq!(st["00100010"]["Value"][0]["Ideographic"], ideographic(&p.patient_name));
        assert_eq!(st["00201208"]["Value"][0], p.instance_count());
    }
    // What B holds is byte for byte what A held (storescu itself may have
    // re-encoded the originals on the way to A: it rewrites sequences of
    // undefined length with explicit lengths when it converts).
    for (sop, path) in originals(&src) {
        let o = Obj::read(&path);
        let (study, series) = (o.ascii(0x0020, 0x000D).unwrap(), o.ascii(0x0020, 0x000E).unwrap());
        let in_b = wado_instance(&b, &study, &series, &sop).await;
        let in_a = wado_instance(&a, &study, &series, &sop).await;
        assert!(data_set(&in_b) == data_set(&in_a), "{sop} differs between A and B");
    }
}

/// One natively stored CT slice on a fresh server; returns the server, the
/// file and its study UID.
async fn one_native_ct(tmp: &Path) -> (TestServer, PathBuf, String) {
    let s = server().await;
    let src = tmp.join("in");
    let plans = synth(&src, 21, 1, 4);
    let se = plans[0].series.iter().find(|se| se.modality == "CT").unwrap();
    let file = files_under(&src.join(&plans[0].study_uid).join(&se.series_uid)).remove(0);
    let r = storescu(s.dicom_port(), MODALITY, &[], &[&file]);
    assert!(r.ok, "{}", r.out);
    assert_eq!(qido(&s, "/instances").await.len(), 1);
    (s, file, plans[0].study_uid.clone())
}

#[tokio::test]
async fn get_sends_native_objects_when_compressed_syntaxes_are_also_proposed() {
    let tmp = tempfile::tempdir().unwrap();
    let (s, file, study) = one_native_ct(tmp.path()).await;
    let dir = tmp.path().join("got");
    std::fs::create_dir_all(&dir).unwrap();
    // +xs: getscu proposes JPEG lossless, then the native syntaxes, in one
    // context per storage class (SCP role).
    let port = s.dicom_port().to_string();
    let study_key = format!("StudyInstanceUID={study}");
    let r = dcmtk(
        "getscu",
        &[
            "-v",
            "+xs",
            "-aet",
            MODALITY,
            "-aec",
            "YUNYING",
            "-od",
            dir.to_str().unwrap(),
            "-S",
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            &study_key,
            "127.0.0.1",
            &port,
        ],
    );
    assert!(r.out.contains("Number of Completed Suboperations : 1"), "{}", r.out);
    let got = files_under(&dir);
    assert_eq!(got.len(), 1, "{}", r.out);
    assert!(data_set(&std::fs::read(&got[0]).unwrap()) == data_set(&std::fs::read(&file).unwrap()));
}

#[tokio::test]
async fn pull_from_another_yunying_by_c_get() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, file, study) = one_native_ct(tmp.path()).await;
    a.cli(&["ae", "add", "PULLER", "--institution", "DEFAULT", "--allow", "query,retrieve"]);
    let from = format!("YUNYING@127.0.0.1:{}", a.dicom_port());
    let data = tmp.path().join("pulled");
    let r = yunying(&["pull", "--from", &from, "--ae-title", "PULLER", "--data", data.to_str().unwrap()]);
    assert!(r.ok, "{}", r.out);
    assert_eq!(summary(&r.stdout, "studies pulled"), 1);
    assert_eq!(summary(&r.stdout, "instances stored"), 1);
    let b = TestServer::start_with_data(Path::new(BIN), &data, &[]).await;
    let found = qido(&b, &format!("/studies/{study}/instances")).await;
    assert_eq!(found.len(), 1);
    let o = Obj::read(&file);
    let stored = wado_instance(&b, &study, &o.ascii(0x0020, 0x000E).unwrap(), &o.sop()).await;
    assert!(data_set(&stored) == data_set(&std::fs::read(&file).unwrap()));
}
