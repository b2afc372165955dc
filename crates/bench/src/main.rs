//! `yunying-bench`: measures Yunying (on SQLite and on PostgreSQL) and
//! Orthanc 1.10 with its DICOMweb plugin in the same run, on the same data,
//! and prints the figures (medians) against the budgets. See
//! `docs/benchmarks.md`.
//!
//! Phases:
//! 1. the N-slice CT series (default 800 × 512×512, ≈420 MB): for each run,
//!    for each product in turn, a fresh server on a fresh data directory:
//!    STOW-RS of the whole series in one request (streamed from the cached
//!    files), the server's peak RSS, then WADO-RS of the series, its
//!    `/metadata`, the QIDO of its instances and every frame over 6
//!    connections;
//! 2. the catalog: a fresh server loaded with 10 000 one-instance studies,
//!    then 200 sequential requests of each QIDO query (p50, p95).
//!
//! The exit code is 0 even when a budget is missed: this is a report. It is
//! 2 when nothing could be measured.

mod data;
mod measure;
mod report;
mod server;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;

use data::{CtSeries, SmallStudies};
use report::{Context, Metric, Results, median};
use server::{Launch, Product, Server};

#[derive(Parser, Debug)]
#[command(
    name = "yunying-bench",
    about = "Yunying against Orthanc, same run, same data: STOW-RS, WADO-RS, metadata, frames, QIDO, memory"
)]
struct Args {
    /// The yunying binary (default: `yunying` next to this binary, i.e. target/release/yunying).
    #[arg(long, value_name = "PATH")]
    yunying: Option<PathBuf>,
    /// Runs of the series phase, each on fresh servers; medians are reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Does not measure Orthanc.
    #[arg(long)]
    skip_orthanc: bool,
    /// Does not measure Yunying on PostgreSQL.
    #[arg(long)]
    skip_postgres: bool,
    /// Also loads Orthanc with the small studies and measures its QIDO (slow).
    #[arg(long)]
    orthanc_qido: bool,
    /// Studies indexed for the catalog queries.
    #[arg(long, default_value_t = 10_000)]
    studies: usize,
    /// Writes the figures as JSON to this file.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Slices of the CT series (the budgets are for 800).
    #[arg(long, default_value_t = 800)]
    slices: usize,
    /// Skips the series phase (STOW, WADO, metadata, frames, memory).
    #[arg(long)]
    skip_series: bool,
    /// Skips the catalog phase (the QIDO of the small studies).
    #[arg(long)]
    skip_qido: bool,
    /// The Orthanc binary.
    #[arg(long, value_name = "PATH", default_value = "/usr/sbin/Orthanc")]
    orthanc: PathBuf,
    /// Orthanc's DICOMweb plugin.
    #[arg(long, value_name = "PATH", default_value = "/usr/lib/orthanc/libOrthancDicomWeb.so.1.7")]
    orthanc_plugin: PathBuf,
    /// Where the generated data is kept between runs (default: ~/.cache/yunying/bench).
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Where the servers' fresh data directories are made (real storage, not tmpfs; default: the temp dir).
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// PostgreSQL server for the throw-away catalogs (default: $YUNYING_TEST_PG or postgres://postgres@127.0.0.1:5432).
    #[arg(long, value_name = "URL")]
    pg_url: Option<String>,
}

/// Repetitions of each read measurement on one server (after one untimed warm-up).
const WADO_REPS: usize = 3;
const METADATA_REPS: usize = 5;
const QIDO_SERIES_REPS: usize = 5;
const FRAMES_REPS: usize = 3;
const FRAME_CONNECTIONS: usize = 6;
/// Requests of each catalog query (after 5 untimed ones), and the time
/// after which a slow server gets fewer (at least `QIDO_MIN_REQUESTS`).
const QIDO_REQUESTS: usize = 200;
const QIDO_MIN_REQUESTS: usize = 20;
const QIDO_TIME_CAP: Duration = Duration::from_secs(60);
const QIDO_WARMUP: usize = 5;
/// Objects per STOW-RS request when loading the small studies.
const LOAD_BATCH: usize = 200;
/// The wildcard query.
const NAME_QUERY: &str = "Zhang*";

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if let Some(url) = &args.pg_url {
        // Read by yunying_index_postgres::testing; set before any thread starts.
        unsafe { std::env::set_var("YUNYING_TEST_PG", url) };
    }
    // One line per panic (e.g. PostgreSQL unreachable when making a test
    // database, which is reported and its column skipped), no backtrace.
    std::panic::set_hook(Box::new(|info| eprintln!("yunying-bench: {info}")));
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(run(args))
}

fn default_yunying() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("yunying")))
        .unwrap_or_else(|| PathBuf::from("target/release/yunying"))
}

async fn run(args: Args) -> std::process::ExitCode {
    let started = Instant::now();
    let yunying = args.yunying.clone().unwrap_or_else(default_yunying);
    if !yunying.exists() {
        eprintln!(
            "yunying-bench: {} not found; build it with `cargo build --release -p yunying` or pass --yunying",
            yunying.display()
        );
        return std::process::ExitCode::from(2);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    let cache = args.cache_dir.clone().unwrap_or_else(|| home.join(".cache/yunying/bench"));
    let launch = Launch {
        yunying: yunying.clone(),
        orthanc: args.orthanc.clone(),
        orthanc_plugin: args.orthanc_plugin.clone(),
        work_root: args.work_dir.clone().unwrap_or_else(std::env::temp_dir),
    };
    if let Err(e) = std::fs::create_dir_all(&launch.work_root) {
        eprintln!("yunying-bench: cannot make {}: {e}", launch.work_root.display());
        return std::process::ExitCode::from(2);
    }
    let mut products = vec![Product::YunyingSqlite];
    if !args.skip_postgres {
        products.push(Product::YunyingPostgres);
    }
    if !args.skip_orthanc {
        products.push(Product::Orthanc);
    }
    let mut results = Results { products: products.clone(), ..Default::default() };
    let mut ctx =
        Context { slices: args.slices, studies: args.studies, name_query: NAME_QUERY.into(), ..Default::default() };
    let runs = args.runs.max(1);

    let machine = machine_info(&launch);
    let yunying_version = std::process::Command::new(&yunying)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let orthanc_version = if args.skip_orthanc { None } else { server::orthanc_version(&args.orthanc) };
    eprintln!(
        "yunying-bench: {yunying_version} ({}), {}",
        yunying.display(),
        machine["summary"].as_str().unwrap_or("")
    );
    if let Some(v) = &orthanc_version {
        eprintln!("yunying-bench: Orthanc {v} ({}, {})", args.orthanc.display(), args.orthanc_plugin.display());
    }

    // A product that cannot start is reported once and skipped afterwards.
    let mut phase_results = Vec::new();
    if !args.skip_series {
        let ct = match tokio::task::spawn_blocking({
            let cache = cache.clone();
            let slices = args.slices;
            move || data::ct_series(&cache, slices)
        })
        .await
        .expect("generator")
        {
            Ok(ct) => ct,
            Err(e) => {
                eprintln!("yunying-bench: cannot generate the CT series under {}: {e}", cache.display());
                return std::process::ExitCode::from(2);
            }
        };
        ctx.series_bytes = ct.total_bytes();
        eprintln!(
            "data: study {} series {}: {} files, {:.1} MB",
            ct.study_uid,
            ct.series_uid,
            ct.files.len(),
            ctx.series_bytes as f64 / 1e6
        );
        let phase = Instant::now();
        for run in 1..=runs {
            for &p in &products {
                if results.unavailable.contains_key(&p) {
                    continue;
                }
                eprintln!("[series run {run}/{runs}] {}", p.title());
                match Server::start(p, &launch).await {
                    Ok(mut s) => {
                        series_run(&mut s, &ct, &mut results).await;
                        s.stop().await;
                    }
                    Err(e) => {
                        eprintln!("\n!!! cannot start {}: {e}\n!!! its column is skipped.\n", p.title());
                        results.unavailable.insert(p, e);
                    }
                }
            }
        }
        phase_results.push(("series", phase.elapsed()));
    }

    if !args.skip_qido {
        let small = match tokio::task::spawn_blocking({
            let cache = cache.clone();
            let n = args.studies;
            move || data::small_studies(&cache, n)
        })
        .await
        .expect("generator")
        {
            Ok(s) => s,
            Err(e) => {
                eprintln!("yunying-bench: cannot generate the small studies under {}: {e}", cache.display());
                return std::process::ExitCode::from(2);
            }
        };
        ctx.name_matches = small.patients.iter().filter(|(_, n)| name_matches(n, NAME_QUERY)).count();
        let phase = Instant::now();
        for &p in &products {
            if results.unavailable.contains_key(&p) {
                continue;
            }
            if p == Product::Orthanc && !args.orthanc_qido {
                for m in [Metric::Load, Metric::QidoPatientId, Metric::QidoLimit, Metric::QidoName] {
                    results.not_run.insert((m, p), "(--orthanc-qido)".into());
                }
                continue;
            }
            eprintln!("[catalog] {}", p.title());
            match Server::start(p, &launch).await {
                Ok(mut s) => {
                    catalog_run(&mut s, &small, &mut results).await;
                    s.stop().await;
                }
                Err(e) => {
                    eprintln!("\n!!! cannot start {}: {e}\n!!! its column is skipped.\n", p.title());
                    results.unavailable.insert(p, e);
                }
            }
        }
        phase_results.push(("catalog", phase.elapsed()));
    }

    let elapsed = started.elapsed();
    let table = results.table(&ctx);
    let details = results.details(&ctx);
    let failures = results.failures(&ctx);
    let date = utc_now();
    println!();
    println!("Yunying benchmark, {date}; {}", machine["summary"].as_str().unwrap_or(""));
    println!(
        "{yunying_version}; Orthanc {}; series runs: {runs}; medians; each STOW on a fresh server and data directory",
        orthanc_version.as_deref().unwrap_or("not measured")
    );
    println!();
    print!("{table}");
    println!();
    println!("All values:");
    print!("{details}");
    let phases: Vec<String> = phase_results.iter().map(|(n, d)| format!("{n} {:.0} s", d.as_secs_f64())).collect();
    println!("Bench time: {:.0} s ({})", elapsed.as_secs_f64(), phases.join(", "));
    if failures.is_empty() {
        println!("\nEvery Yunying figure meets its budget.");
    } else {
        println!();
        println!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
        println!("!!! FAIL: {} budget(s) missed", failures.len());
        for f in &failures {
            println!("!!!   {f}");
        }
        println!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
    }
    if let Some(out) = &args.out {
        let mut j = results.to_json(&ctx);
        j["date"] = serde_json::json!(date);
        j["machine"] = machine.clone();
        j["yunying"] = serde_json::json!(yunying_version);
        j["orthanc"] = serde_json::json!(orthanc_version);
        j["settings"] = serde_json::json!({
            "runs": runs, "slices": args.slices, "series_bytes": ctx.series_bytes, "studies": args.studies,
            "wado_reps": WADO_REPS, "metadata_reps": METADATA_REPS, "qido_series_reps": QIDO_SERIES_REPS,
            "frames_reps": FRAMES_REPS, "frame_connections": FRAME_CONNECTIONS, "qido_requests": QIDO_REQUESTS,
            "load_batch": LOAD_BATCH, "name_query": NAME_QUERY, "name_matches": ctx.name_matches,
        });
        j["failures"] = serde_json::json!(failures);
        j["elapsed_s"] = serde_json::json!(elapsed.as_secs_f64());
        match std::fs::write(out, serde_json::to_vec_pretty(&j).expect("json")) {
            Ok(()) => println!("\nFigures written to {}", out.display()),
            Err(e) => eprintln!("yunying-bench: cannot write {}: {e}", out.display()),
        }
    }
    let measured =
        results.entries.values().any(|e| e.errors.is_empty() && (!e.runs.is_empty() || !e.samples.is_empty()));
    if measured { std::process::ExitCode::SUCCESS } else { std::process::ExitCode::from(2) }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// One run of the series phase on a fresh server.
async fn series_run(s: &mut Server, ct: &CtSeries, r: &mut Results) {
    let p = s.product;
    let client = measure::client();
    let n = ct.files.len();

    // STOW-RS of the whole series, one request, then the peak RSS.
    let cpu_before = s.cpu_seconds();
    match measure::stow(&client, &s.dicomweb, &ct.files).await {
        Ok(d) => {
            let rate = n as f64 / d.as_secs_f64();
            let cpu = s.cpu_seconds().zip(cpu_before).map(|(a, b)| a - b);
            eprintln!(
                "   STOW-RS: {n} instances in {:.2} s = {rate:.0}/s; server CPU {:.2} s",
                d.as_secs_f64(),
                cpu.unwrap_or(f64::NAN)
            );
            r.push(Metric::StowRate, p, rate);
            if let Some(cpu) = cpu {
                r.push(Metric::StowCpu, p, cpu);
            }
        }
        Err(e) => {
            r.error(Metric::StowRate, p, e);
            return;
        }
    }
    match s.peak_rss_kib() {
        Some(kib) => {
            let mb = kib as f64 * 1024.0 / 1e6;
            eprintln!("   peak RSS (VmHWM): {mb:.0} MB");
            r.push(Metric::StowRss, p, mb);
        }
        None => r.error(Metric::StowRss, p, format!("cannot read /proc/{}/status", s.pid())),
    }

    let series_url = format!("{}/studies/{}/series/{}", s.dicomweb, ct.study_uid, ct.series_uid);

    // WADO-RS of the series: the untimed warm-up also checks the parts.
    let accept = "multipart/related; type=\"application/dicom\"";
    let total = ct.total_bytes();
    let wado = async {
        let warm = measure::get(&client, &series_url, accept, false, true).await?;
        if warm.matches != n + 1 {
            return Err(format!(
                "WADO-RS series: {} multipart delimiters for {n} instances ({} bytes, {})",
                warm.matches, warm.bytes, warm.content_type
            ));
        }
        let mut v = Vec::new();
        for _ in 0..WADO_REPS {
            let g = measure::get(&client, &series_url, accept, false, false).await?;
            if g.bytes < total {
                return Err(format!("WADO-RS series: {} bytes, less than the {total} bytes stored", g.bytes));
            }
            v.push(g.bytes as f64 / g.elapsed.as_secs_f64() / 1e6);
        }
        Ok(v)
    };
    record_reps(r, Metric::WadoSeries, p, wado.await, "WADO-RS series", "MB/s");

    // Metadata of the series, warm.
    let url = format!("{series_url}/metadata");
    let metadata = json_reps(&client, &url, n, METADATA_REPS, "series metadata").await;
    record_reps(r, Metric::Metadata, p, metadata, "metadata", "ms");

    // QIDO of the series' instances.
    let url = format!("{series_url}/instances");
    let qido = json_reps(&client, &url, n, QIDO_SERIES_REPS, "QIDO series instances").await;
    record_reps(r, Metric::QidoSeriesInstances, p, qido, "QIDO instances", "ms");

    // Every frame, one request each, 6 connections.
    let urls: Arc<Vec<String>> =
        Arc::new(ct.files.iter().map(|f| format!("{series_url}/instances/{}/frames/1", f.sop_uid)).collect());
    let clients: Vec<reqwest::Client> = (0..FRAME_CONNECTIONS).map(|_| measure::client()).collect();
    let frame_bytes = ct.rows as u64 * ct.columns as u64 * 2;
    let frames = async {
        measure::frames(&clients, urls.clone(), frame_bytes).await?; // warm-up
        let mut v = Vec::new();
        for _ in 0..FRAMES_REPS {
            let (d, bytes) = measure::frames(&clients, urls.clone(), frame_bytes).await?;
            if bytes < frame_bytes * n as u64 {
                return Err(format!("frames: {bytes} bytes for {n} frames"));
            }
            v.push(d.as_secs_f64());
        }
        Ok(v)
    };
    record_reps(r, Metric::Frames, p, frames.await, "frames", "s");
}

/// `reps` timed GETs of a JSON array that must have `expected` items (after one warm-up).
async fn json_reps(
    client: &reqwest::Client,
    url: &str,
    expected: usize,
    reps: usize,
    what: &str,
) -> Result<Vec<f64>, String> {
    let mut v = Vec::new();
    for i in 0..=reps {
        let (d, items) = measure::get_json_array(client, url).await?;
        if items.len() != expected {
            return Err(format!("{what}: {} items, expected {expected}", items.len()));
        }
        if i > 0 {
            v.push(ms(d));
        }
    }
    Ok(v)
}

fn record_reps(r: &mut Results, m: Metric, p: Product, v: Result<Vec<f64>, String>, what: &str, unit: &str) {
    match v {
        Ok(v) => {
            let med = median(&v).unwrap_or(f64::NAN);
            let all: Vec<String> = v.iter().map(|x| format!("{x:.3}")).collect();
            eprintln!("   {what}: median {med:.3} {unit} [{}]", all.join(", "));
            r.push(m, p, med);
        }
        Err(e) => r.error(m, p, e),
    }
}

/// DICOM person-name wildcard match of one component group (case-insensitive,
/// trailing `*` only, as used here) against any group of `name`.
fn name_matches(name: &str, query: &str) -> bool {
    let prefix = query.trim_end_matches('*').to_lowercase();
    name.split('=').any(|g| g.to_lowercase().starts_with(&prefix))
}

/// The catalog phase on a fresh server: load the small studies, then time
/// each query.
async fn catalog_run(s: &mut Server, small: &SmallStudies, r: &mut Results) {
    let p = s.product;
    let client = measure::client();
    let n = small.files.len();
    eprintln!("   loading {n} studies in STOW-RS requests of {LOAD_BATCH} ...");
    match measure::load(&client, &s.dicomweb, &small.files, LOAD_BATCH).await {
        Ok(d) => {
            let rate = n as f64 / d.as_secs_f64();
            eprintln!("   loaded in {:.1} s = {rate:.0} instances/s", d.as_secs_f64());
            r.push(Metric::Load, p, rate);
        }
        Err(e) => {
            r.error(Metric::Load, p, e);
            return;
        }
    }
    // A patient in the middle of the load; exactly one study.
    let i = n * 7 / 10 + 3;
    let pid = small.patients.get(i).map(|(id, _)| id.clone()).unwrap_or_else(|| data::patient_id(0));
    let expected_pid = small.patients.iter().filter(|(id, _)| *id == pid).count();
    let name_expected = small.patients.iter().filter(|(_, nm)| name_matches(nm, NAME_QUERY)).count();
    let queries = [
        (Metric::QidoPatientId, format!("{}/studies?PatientID={pid}", s.dicomweb), expected_pid),
        (Metric::QidoLimit, format!("{}/studies?limit=100", s.dicomweb), 100.min(n)),
        (Metric::QidoName, format!("{}/studies?PatientName={NAME_QUERY}", s.dicomweb), name_expected),
    ];
    for (m, url, expected) in queries {
        let res = async {
            let mut samples = Vec::with_capacity(QIDO_REQUESTS);
            let began = Instant::now();
            for i in 0..QIDO_WARMUP + QIDO_REQUESTS {
                if samples.len() >= QIDO_MIN_REQUESTS && began.elapsed() > QIDO_TIME_CAP {
                    eprintln!("   (stopped after {} requests: {} s cap)", samples.len(), QIDO_TIME_CAP.as_secs());
                    break;
                }
                let (d, items) = measure::get_json_array(&client, &url).await?;
                if items.len() != expected {
                    return Err(format!("{url}: {} studies, expected {expected}", items.len()));
                }
                if m == Metric::QidoPatientId
                    && items.iter().any(|it| it["00100020"]["Value"][0].as_str() != Some(pid.as_str()))
                {
                    return Err(format!("{url}: a study of another patient"));
                }
                if i >= QIDO_WARMUP {
                    samples.push(ms(d));
                }
            }
            Ok(samples)
        };
        match res.await {
            Ok(samples) => {
                let q = |x| report::percentile(&samples, x).unwrap_or(f64::NAN);
                eprintln!("   {}: p50 {:.2} ms, p95 {:.2} ms ({expected} results)", m.key(), q(50.0), q(95.0));
                r.entry(m, p).samples = samples;
            }
            Err(e) => r.error(m, p, e),
        }
    }
}

/// CPU, cores, memory, kernel, and the file system of the work directory.
fn machine_info(launch: &Launch) -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, v)| v.trim().to_string()))
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gb = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .map(|kib| kib * 1024.0 / 1e9)
        .unwrap_or(0.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string();
    let fs = std::process::Command::new("df")
        .arg("--output=fstype")
        .arg(&launch.work_root)
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).lines().nth(1).map(|s| s.trim().to_string()))
        .unwrap_or_default();
    let summary = format!("{cores} cores ({model}), {mem_gb:.0} GB RAM, Linux {kernel}, data on {fs}, loopback");
    serde_json::json!({"cpu": model, "cores": cores, "memory_gb": mem_gb, "kernel": kernel,
        "work_dir": launch.work_root, "work_fs": fs, "summary": summary})
}

/// The current UTC time as `YYYY-MM-DD HH:MM UTC`.
fn utc_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil from days (H. Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02} UTC", rem / 3600, rem / 60 % 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn wildcard() {
        assert!(super::name_matches("Zhang^Weiwei=张^伟伟", "Zhang*"));
        assert!(!super::name_matches("Zheng^Weiwei=郑^伟伟", "Zhang*"));
    }
}
