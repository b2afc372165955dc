//! The DICOM networking (DIMSE) measurements:
//!
//! - C-STORE with DCMTK `storescu`, over one association and over four
//!   parallel ones (four `storescu` processes); wall time of the processes;
//! - C-MOVE of the series with DCMTK `movescu` to a local DCMTK `storescp`
//!   (registered as a move destination with the server), and C-GET with DCMTK
//!   `getscu`; wall time of `movescu` / `getscu`, the files received checked;
//! - C-FIND at study level with our own SCU (`yunying_dimse`) in this
//!   process, many queries on one association, each timed from sending the
//!   request to the final response (a DCMTK `findscu` per query would time
//!   its own start-up, ~10 ms, more than the query).
//!
//! Every DCMTK tool runs with `TCP_NODELAY=1` in its environment (else
//! Nagle's algorithm and delayed ACKs stall each exchange ~40 ms), against
//! Orthanc and Yunying alike; its output goes to a log file whose end is
//! quoted when it fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::data::FileEntry;
use crate::measure::Res;

/// Our calling AE title, for every SCU.
pub const BENCH_AE: &str = "BENCH";
/// The local `storescp`, destination of the C-MOVE.
pub const DEST_AE: &str = "DEST";

/// The DCMTK tools, found on `PATH`.
#[derive(Debug, Clone)]
pub struct Tools {
    pub storescu: PathBuf,
    pub storescp: PathBuf,
    pub movescu: PathBuf,
    pub getscu: PathBuf,
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

impl Tools {
    /// The four tools, or which are missing.
    pub fn find() -> Result<Tools, String> {
        let names = ["storescu", "storescp", "movescu", "getscu"];
        let found: Vec<Option<PathBuf>> = names.iter().map(|n| which(n)).collect();
        let missing: Vec<&str> = names.iter().zip(&found).filter(|(_, f)| f.is_none()).map(|(n, _)| *n).collect();
        if !missing.is_empty() {
            return Err(format!("DCMTK {} not found on PATH (apt-get install dcmtk)", missing.join(", ")));
        }
        let mut it = found.into_iter().map(|f| f.expect("found"));
        Ok(Tools {
            storescu: it.next().expect("storescu"),
            storescp: it.next().expect("storescp"),
            movescu: it.next().expect("movescu"),
            getscu: it.next().expect("getscu"),
        })
    }
}

/// `host` and `port` of `127.0.0.1:PORT`.
fn host_port(addr: &str) -> (String, String) {
    match addr.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.to_string()),
        None => (addr.to_string(), "104".into()),
    }
}

/// A DCMTK command with `TCP_NODELAY=1`, its output appended to `log`.
fn dcmtk(bin: &Path, log: &Path) -> Res<Command> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(bin);
    cmd.env("TCP_NODELAY", "1").stdin(Stdio::null()).stdout(out).stderr(err);
    Ok(cmd)
}

/// The last lines of a log, for error messages.
fn tail(log: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let v: Vec<&str> = text.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

fn failed(what: &str, status: std::process::ExitStatus, log: &Path) -> String {
    format!("{what} failed ({status}); end of {}:\n{}", log.display(), tail(log, 12))
}

/// C-STORE of `files` to the server at `addr` (AE `ae`) with `associations`
/// `storescu` processes running at once, each sending its share (contiguous
/// slices of the list) over one association. Wall time from starting the
/// first process to the exit of the last.
pub async fn storescu(
    tools: &Tools,
    addr: &str,
    ae: &str,
    files: &[FileEntry],
    associations: usize,
    logs: &Path,
) -> Res<Duration> {
    let (host, port) = host_port(addr);
    let per = files.len().div_ceil(associations.max(1));
    let mut cmds = Vec::new();
    for (i, chunk) in files.chunks(per.max(1)).enumerate() {
        let log = logs.join(format!("storescu-{associations}-{i}.log"));
        let _ = std::fs::remove_file(&log);
        let mut cmd = dcmtk(&tools.storescu, &log)?;
        cmd.args(["-aet", BENCH_AE, "-aec", ae]).arg(&host).arg(&port);
        cmd.args(chunk.iter().map(|f| &f.path));
        cmds.push((cmd, log));
    }
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let mut children: Vec<(Child, PathBuf)> = Vec::new();
        for (mut cmd, log) in cmds {
            let child = cmd.spawn().map_err(|e| format!("cannot start storescu: {e}"))?;
            children.push((child, log));
        }
        let mut errors = Vec::new();
        for (mut c, log) in children {
            match c.wait() {
                Ok(s) if s.success() => {}
                Ok(s) => errors.push(failed("storescu", s, &log)),
                Err(e) => errors.push(format!("storescu: {e}")),
            }
        }
        let elapsed = started.elapsed();
        if errors.is_empty() { Ok(elapsed) } else { Err(errors.join("\n")) }
    })
    .await
    .map_err(|e| e.to_string())?
}

/// The `-k` keys naming the series, study root, series level.
fn series_keys(study: &str, series: &str) -> Vec<String> {
    vec![
        "-S".into(),
        "-k".into(),
        "QueryRetrieveLevel=SERIES".into(),
        "-k".into(),
        format!("StudyInstanceUID={study}"),
        "-k".into(),
        format!("SeriesInstanceUID={series}"),
    ]
}

/// A DCMTK `storescp` listening on `127.0.0.1:port` as [`DEST_AE`], writing
/// what it receives into `dir` (bit-preserving: as received, straight to
/// the file). Stopped (by its PID) when dropped.
pub struct StoreScp {
    child: Child,
    pub dir: PathBuf,
    log: PathBuf,
}

impl StoreScp {
    pub async fn start(tools: &Tools, port: u16, dir: &Path, logs: &Path) -> Res<StoreScp> {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot make {}: {e}", dir.display()))?;
        let log = logs.join("storescp.log");
        let mut cmd = dcmtk(&tools.storescp, &log)?;
        cmd.args(["-aet", DEST_AE, "+B", "-od"]).arg(dir).arg(port.to_string());
        let child = cmd.spawn().map_err(|e| format!("cannot start storescp: {e}"))?;
        let mut scp = StoreScp { child, dir: dir.to_path_buf(), log };
        let started = Instant::now();
        loop {
            if let Ok(Some(s)) = scp.child.try_wait() {
                return Err(failed("storescp", s, &scp.log));
            }
            // A connection closed at once: storescp logs it and goes on.
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                tokio::time::sleep(Duration::from_millis(50)).await;
                return Ok(scp);
            }
            if started.elapsed() > Duration::from_secs(10) {
                return Err(format!("storescp does not listen on port {port} after 10 s"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn alive(&mut self) -> Res<()> {
        match self.child.try_wait() {
            Ok(Some(s)) => Err(failed("storescp", s, &self.log)),
            _ => Ok(()),
        }
    }
}

impl Drop for StoreScp {
    fn drop(&mut self) {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Files and bytes in `dir` (not recursive).
pub fn received(dir: &Path) -> (usize, u64) {
    let mut n = 0;
    let mut bytes = 0;
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if let Ok(m) = e.metadata()
                && m.is_file()
            {
                n += 1;
                bytes += m.len();
            }
        }
    }
    (n, bytes)
}

/// Empties `dir` (keeps it) and flushes dirty pages, so that the next
/// transfer neither finds files nor pays for the previous one's write-back.
pub async fn clear(dir: &Path) {
    let dir = dir.to_path_buf();
    let _ = tokio::task::spawn_blocking(move || {
        if let Ok(rd) = std::fs::read_dir(&dir) {
            for e in rd.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        unsafe { libc::sync() };
    })
    .await;
}

/// Checks that `dir` holds `n` files of at least `min_bytes` in all.
fn check_received(dir: &Path, n: usize, min_bytes: u64, what: &str) -> Res<u64> {
    let (count, bytes) = received(dir);
    if count != n || bytes < min_bytes {
        return Err(format!("{what}: {count} files, {bytes} bytes received; expected {n} files, >= {min_bytes} bytes"));
    }
    Ok(bytes)
}

/// What a C-MOVE or C-GET asks for, of whom, and what must arrive.
pub struct Retrieval<'a> {
    pub tools: &'a Tools,
    /// The server: `127.0.0.1:PORT` and its AE title.
    pub addr: &'a str,
    pub ae: &'a str,
    pub study: &'a str,
    pub series: &'a str,
    /// Files that must arrive, and their least total size.
    pub n: usize,
    pub min_bytes: u64,
    /// Where the tools' logs go.
    pub logs: &'a Path,
}

/// One C-MOVE of the series to the running `storescp` with `movescu`; wall
/// time of `movescu`. The storescp directory must then hold `n` files.
pub async fn movescu(r: &Retrieval<'_>, scp: &mut StoreScp) -> Res<Duration> {
    clear(&scp.dir).await;
    let (host, port) = host_port(r.addr);
    let log = r.logs.join("movescu.log");
    let _ = std::fs::remove_file(&log);
    let mut cmd = dcmtk(&r.tools.movescu, &log)?;
    cmd.args(["-aet", BENCH_AE, "-aec", r.ae, "-aem", DEST_AE]);
    cmd.args(series_keys(r.study, r.series)).arg(&host).arg(&port);
    let (elapsed, status) = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let status = cmd.status();
        (started.elapsed(), status)
    })
    .await
    .map_err(|e| e.to_string())?;
    let status = status.map_err(|e| format!("cannot run movescu: {e}"))?;
    if !status.success() {
        return Err(failed("movescu", status, &log));
    }
    scp.alive()?;
    check_received(&scp.dir, r.n, r.min_bytes, "C-MOVE")?;
    Ok(elapsed)
}

/// One C-GET of the series with `getscu` into `dir` (emptied first); wall
/// time of `getscu`. `dir` must then hold `n` files.
pub async fn getscu(r: &Retrieval<'_>, dir: &Path) -> Res<Duration> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot make {}: {e}", dir.display()))?;
    clear(dir).await;
    let (host, port) = host_port(r.addr);
    let log = r.logs.join("getscu.log");
    let _ = std::fs::remove_file(&log);
    let mut cmd = dcmtk(&r.tools.getscu, &log)?;
    cmd.args(["-aet", BENCH_AE, "-aec", r.ae, "+B", "-od"]).arg(dir);
    cmd.args(series_keys(r.study, r.series)).arg(&host).arg(&port);
    let (elapsed, status) = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let status = cmd.status();
        (started.elapsed(), status)
    })
    .await
    .map_err(|e| e.to_string())?;
    let status = status.map_err(|e| format!("cannot run getscu: {e}"))?;
    if !status.success() {
        return Err(failed("getscu", status, &log));
    }
    check_received(dir, r.n, r.min_bytes, "C-GET")?;
    Ok(elapsed)
}

/// A study-level C-FIND query and what its answer must be.
pub struct FindQuery {
    pub name: &'static str,
    /// The matching keys, as DICOM JSON attributes.
    pub keys: Map<String, Value>,
    /// Number of matches expected.
    pub expected: usize,
    /// Bytes every match must contain (e.g. the Patient ID asked for).
    pub each_contains: Option<String>,
}

/// The identifier: QueryRetrieveLevel=STUDY, the return keys (empty), then
/// the query's matching keys over them.
fn identifier(keys: &Map<String, Value>, explicit_vr: bool) -> Res<Vec<u8>> {
    let mut m = Map::new();
    m.insert("00080052".into(), json!({"vr": "CS", "Value": ["STUDY"]}));
    m.insert("0020000D".into(), json!({"vr": "UI"}));
    m.insert("00100010".into(), json!({"vr": "PN"}));
    m.insert("00100020".into(), json!({"vr": "LO"}));
    m.insert("00080020".into(), json!({"vr": "DA"}));
    m.insert("00201208".into(), json!({"vr": "IS"}));
    for (k, v) in keys {
        m.insert(k.clone(), v.clone());
    }
    yunying_dicom::encode_json_dataset(&m, explicit_vr).map_err(|e| format!("C-FIND identifier: {e}"))
}

/// Each query sent `warmup` times untimed then up to `requests` times timed
/// (at least `min_requests` when the `cap` is reached), one after the
/// other on one association opened by `BENCH` to `ae` at `addr`. Returns
/// the times in ms, per query, or the first error.
pub async fn find(
    addr: &str,
    ae: &str,
    queries: &[FindQuery],
    warmup: usize,
    requests: usize,
    min_requests: usize,
    cap: Duration,
) -> Vec<Res<Vec<f64>>> {
    use yunying_dimse::{Proposal, Requestor, associate, status, uids};
    let req = Requestor::new(BENCH_AE, ae, addr);
    let mut assoc = match associate(&req, &[Proposal::native(uids::STUDY_ROOT_FIND)], &[]).await {
        Ok(a) => a,
        Err(e) => return queries.iter().map(|_| Err(format!("C-FIND association to {ae}@{addr}: {e}"))).collect(),
    };
    let explicit = assoc
        .find_context(uids::STUDY_ROOT_FIND, |_| true)
        .map(|c| c.transfer_syntax == yunying_dicom::ts::EXPLICIT_VR_LE)
        .unwrap_or(true);
    let mut out = Vec::new();
    for q in queries {
        let res = async {
            let id = identifier(&q.keys, explicit)?;
            let finder = q.each_contains.as_ref().map(|s| memchr::memmem::Finder::new(s.as_bytes()).into_owned());
            let mut samples = Vec::with_capacity(requests);
            let began = Instant::now();
            for i in 0..warmup + requests {
                if samples.len() >= min_requests && began.elapsed() > cap {
                    eprintln!("   (stopped after {} queries: {} s cap)", samples.len(), cap.as_secs());
                    break;
                }
                let t = Instant::now();
                let (matches, rsp) =
                    assoc.find(uids::STUDY_ROOT_FIND, &id).await.map_err(|e| format!("C-FIND {}: {e}", q.name))?;
                let d = t.elapsed();
                let st = rsp.status.unwrap_or(0xFFFF);
                if st != status::SUCCESS {
                    return Err(format!("C-FIND {}: final status {st:#06x} {:?}", q.name, rsp.error_comment));
                }
                if matches.len() != q.expected {
                    return Err(format!("C-FIND {}: {} matches, expected {}", q.name, matches.len(), q.expected));
                }
                if let Some(f) = &finder
                    && matches.iter().any(|m| f.find(m).is_none())
                {
                    return Err(format!("C-FIND {}: a match without {:?}", q.name, q.each_contains));
                }
                if i >= warmup {
                    samples.push(d.as_secs_f64() * 1e3);
                }
            }
            Ok(samples)
        };
        let r = res.await;
        let broken = r.is_err();
        out.push(r);
        if broken {
            // The association may be unusable; the other queries say so too.
            for q in &queries[out.len()..] {
                out.push(Err(format!("C-FIND {}: not run after an earlier error", q.name)));
            }
            return out;
        }
    }
    let _ = assoc.release().await;
    out
}
