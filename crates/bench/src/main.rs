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
//! 2. DICOM networking (DIMSE), for each run, for each product in turn, on
//!    the same CT series files: DCMTK `storescu` of the series over one
//!    association into a fresh server, then C-MOVE (`movescu` to a local
//!    `storescp`) and C-GET (`getscu`) of it; then `storescu` over 4
//!    parallel associations into another fresh server;
//! 3. the catalog: a fresh server loaded with 10 000 one-instance studies,
//!    then 200 sequential requests of each QIDO query (p50, p95), and of each
//!    study-level C-FIND query on one association (in-process SCU);
//! 4. pixels (Yunying on SQLite, and Orthanc where it can): `/rendered` of
//!    one CT frame as JPEG and PNG, first request and warm; HTJ2K encoding;
//!    the streaming copy (HTJ2K RPCL) of the series ready after its STOW;
//!    the bytes of a first view and a `Range` request for them; every frame
//!    as HTJ2K RPCL (see [`pixels`]).
//!
//! The exit code is 0 even when a budget is missed: this is a report. It is
//! 2 when nothing could be measured.

mod data;
mod dimse;
mod measure;
mod pixels;
mod report;
mod server;
mod storage;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;

use data::{CtSeries, SmallStudies};
use report::{Context, Metric, Results, median};
use server::{Launch, Peer, Product, Server};

#[derive(Parser, Debug)]
#[command(
    name = "yunying-bench",
    about = "Yunying against Orthanc, same run, same data: STOW-RS, WADO-RS, metadata, frames, QIDO, memory, \
             DIMSE, C-FIND; rendered images, HTJ2K encoding, streaming copies and first-view bytes"
)]
struct Args {
    /// The yunying binary (default: `yunying` next to this binary, i.e. target/release/yunying).
    #[arg(long, value_name = "PATH")]
    yunying: Option<PathBuf>,
    /// Runs of the series, DIMSE and pixels phases, each on fresh servers; medians are reported.
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
    /// Skips the catalog phase's QIDO queries (the C-FIND ones still load the small studies).
    #[arg(long)]
    skip_qido: bool,
    /// Skips the DICOM networking phase (storescu, C-MOVE, C-GET) and the C-FIND queries.
    #[arg(long)]
    skip_dimse: bool,
    /// Runs only the DIMSE measurements (as --skip-series --skip-qido --skip-pixels).
    #[arg(long, conflicts_with = "skip_dimse")]
    only_dimse: bool,
    /// Skips the pixels phase (rendered images, HTJ2K encoding, streaming copy, first view, HTJ2K frames).
    #[arg(long)]
    skip_pixels: bool,
    /// Runs only the pixels phase (as --skip-series --skip-qido --skip-dimse; PostgreSQL is not measured there).
    #[arg(long, conflicts_with_all = ["skip_pixels", "only_dimse"])]
    only_pixels: bool,
    /// Runs only the storage tier benchmark (cloud copy, reads through the
    /// S3 tier, a verified migration between two buckets; moto on loopback
    /// unless --s3-endpoint is given).
    #[arg(long, conflicts_with_all = ["only_pixels", "only_dimse"])]
    only_storage: bool,
    /// Objects in the storage benchmark's archive.
    #[arg(long, default_value_t = 10_000)]
    storage_objects: usize,
    /// Instances read through each tier.
    #[arg(long, default_value_t = 200)]
    storage_reads: usize,
    /// Part-10 files for the storage benchmark instead of synthetic studies.
    #[arg(long, value_name = "DIR")]
    storage_data: Option<PathBuf>,
    /// An S3 endpoint for the storage benchmark instead of moto (e.g. the
    /// customer's OSS); credentials in YUNYING_BENCH_S3_ACCESS_KEY_ID and
    /// YUNYING_BENCH_S3_SECRET_ACCESS_KEY.
    #[arg(long, value_name = "URL", requires = "s3_bucket")]
    s3_endpoint: Option<String>,
    /// The bucket at --s3-endpoint (the benchmark works under its own prefixes).
    #[arg(long)]
    s3_bucket: Option<String>,
    /// The signing region at --s3-endpoint.
    #[arg(long, default_value = "us-east-1")]
    s3_region: String,
    /// Virtual-hosted style requests (Alibaba OSS).
    #[arg(long)]
    s3_virtual_hosted: bool,
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
/// `FRAMES_REPS` and `FRAME_CONNECTIONS` are also those of the HTJ2K frames.
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
/// `storescu` processes (one association each) of the parallel C-STORE.
const STORE_ASSOCIATIONS: usize = 4;
/// Timed C-MOVEs and C-GETs of the series on each server (each run's value is their median).
const MOVE_REPS: usize = 3;
const GET_REPS: usize = 3;

fn main() -> std::process::ExitCode {
    let mut args = Args::parse();
    if args.only_dimse {
        args.skip_series = true;
        args.skip_qido = true;
        args.skip_pixels = true;
    }
    if args.only_pixels {
        args.skip_series = true;
        args.skip_qido = true;
        args.skip_dimse = true;
        args.skip_postgres = true;
    }
    if let Some(url) = &args.pg_url {
        // Read by yunying_index_postgres::testing; set before any thread starts.
        unsafe { std::env::set_var("YUNYING_TEST_PG", url) };
    }
    // One line per panic (e.g. PostgreSQL unreachable when making a test
    // database, which is reported and its column skipped), no backtrace.
    std::panic::set_hook(Box::new(|info| eprintln!("yunying-bench: {info}")));
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    if args.only_storage {
        return rt.block_on(run_storage(args));
    }
    rt.block_on(run(args))
}

async fn run_storage(args: Args) -> std::process::ExitCode {
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    let b = storage::StorageBench {
        yunying: args.yunying.clone().unwrap_or_else(default_yunying),
        cache: args.cache_dir.clone().unwrap_or_else(|| home.join(".cache/yunying/bench")),
        work_root: args.work_dir.clone().unwrap_or_else(std::env::temp_dir),
        objects: args.storage_objects.max(10),
        reads: args.storage_reads.max(1),
        data_dir: args.storage_data.clone(),
        endpoint: args.s3_endpoint.clone(),
        bucket: args.s3_bucket.clone(),
        region: args.s3_region.clone(),
        virtual_hosted: args.s3_virtual_hosted,
    };
    match storage::run(&b).await {
        Ok(figures) => {
            if let Some(out) = &args.out
                && let Err(e) = std::fs::write(out, serde_json::to_string_pretty(&figures).unwrap_or_default())
            {
                eprintln!("yunying-bench: cannot write {}: {e}", out.display());
                return std::process::ExitCode::FAILURE;
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("yunying-bench: storage: {e}");
            std::process::ExitCode::FAILURE
        }
    }
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
    // The DICOM peers every server knows: the bench's SCUs (BENCH; it does
    // not listen, the port is a free one) and the storescp of the C-MOVE.
    let (bench_port, dest_port) = match (server::free_port(), server::free_port()) {
        (Ok(a), Ok(b)) => (a, b),
        _ => (11113, 11114),
    };
    let launch = Launch {
        yunying: yunying.clone(),
        orthanc: args.orthanc.clone(),
        orthanc_plugin: args.orthanc_plugin.clone(),
        work_root: args.work_dir.clone().unwrap_or_else(std::env::temp_dir),
        peers: vec![
            Peer { ae_title: dimse::BENCH_AE.into(), port: bench_port, allow: "store,query,retrieve" },
            Peer { ae_title: dimse::DEST_AE.into(), port: dest_port, allow: "store" },
        ],
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
    let mut ctx = Context {
        slices: args.slices,
        studies: args.studies,
        name_query: NAME_QUERY.into(),
        store_associations: STORE_ASSOCIATIONS,
        rendered_requests: pixels::RENDERED_REQUESTS,
        ..Default::default()
    };
    let tools = if args.skip_dimse {
        None
    } else {
        match dimse::Tools::find() {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("\n!!! {e}\n!!! the DIMSE measurements are skipped.\n");
                None
            }
        }
    };
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
    let ct = if !args.skip_series || tools.is_some() || !args.skip_pixels {
        match tokio::task::spawn_blocking({
            let cache = cache.clone();
            let slices = args.slices;
            move || data::ct_series(&cache, slices)
        })
        .await
        .expect("generator")
        {
            Ok(ct) => Some(ct),
            Err(e) => {
                eprintln!("yunying-bench: cannot generate the CT series under {}: {e}", cache.display());
                return std::process::ExitCode::from(2);
            }
        }
    } else {
        None
    };
    if let Some(ct) = &ct {
        ctx.series_bytes = ct.total_bytes();
        (ctx.rows, ctx.columns) = (ct.rows, ct.columns);
        eprintln!(
            "data: study {} series {}: {} files, {:.1} MB",
            ct.study_uid,
            ct.series_uid,
            ct.files.len(),
            ctx.series_bytes as f64 / 1e6
        );
    }
    if let Some(ct) = ct.as_ref().filter(|_| !args.skip_series) {
        let phase = Instant::now();
        for run in 1..=runs {
            for &p in &products {
                if results.unavailable.contains_key(&p) {
                    continue;
                }
                eprintln!("[series run {run}/{runs}] {}", p.title());
                match Server::start(p, &launch).await {
                    Ok(mut s) => {
                        series_run(&mut s, ct, &mut results).await;
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

    if let Some(ct) = ct.as_ref().filter(|_| !args.skip_pixels) {
        let phase = Instant::now();
        pixels::run(&launch, ct, &products, runs, &mut results).await;
        phase_results.push(("pixels", phase.elapsed()));
    }

    if let (Some(ct), Some(tools)) = (&ct, &tools) {
        let phase = Instant::now();
        let scratch = match tempfile::Builder::new().prefix("yunying-bench-dimse-").tempdir_in(&launch.work_root) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("yunying-bench: cannot make a directory in {}: {e}", launch.work_root.display());
                return std::process::ExitCode::from(2);
            }
        };
        for run in 1..=runs {
            for &p in &products {
                if results.unavailable.contains_key(&p) {
                    continue;
                }
                for associations in [1, STORE_ASSOCIATIONS] {
                    eprintln!("[dimse run {run}/{runs}] {}, storescu over {associations} association(s)", p.title());
                    match Server::start(p, &launch).await {
                        Ok(mut s) => {
                            dimse_run(
                                &mut s,
                                &launch,
                                tools,
                                ct,
                                associations,
                                scratch.path(),
                                dest_port,
                                &mut results,
                            )
                            .await;
                            s.stop().await;
                        }
                        Err(e) => {
                            eprintln!("\n!!! cannot start {}: {e}\n!!! its column is skipped.\n", p.title());
                            results.unavailable.insert(p, e);
                            break;
                        }
                    }
                }
            }
        }
        let _ = tokio::task::spawn_blocking(move || drop(scratch)).await;
        phase_results.push(("dimse", phase.elapsed()));
    }

    let cfind = tools.is_some();
    if !args.skip_qido || cfind {
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
        let dates = if cfind {
            match tokio::task::spawn_blocking({
                let small = small.clone();
                move || data::study_dates(&small)
            })
            .await
            .expect("dates")
            {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("yunying-bench: cannot read the small studies' dates: {e}");
                    return std::process::ExitCode::from(2);
                }
            }
        } else {
            Vec::new()
        };
        let date_range = month_range(&dates);
        ctx.date_matches = dates.iter().filter(|d| in_range(d, &date_range)).count();
        ctx.date_range = date_range.clone();
        let phase = Instant::now();
        for &p in &products {
            if results.unavailable.contains_key(&p) {
                continue;
            }
            if p == Product::Orthanc && !args.orthanc_qido {
                let mut skipped = vec![Metric::Load];
                if !args.skip_qido {
                    skipped.extend([Metric::QidoPatientId, Metric::QidoLimit, Metric::QidoName]);
                }
                if cfind {
                    skipped.extend([Metric::FindPatientId, Metric::FindName, Metric::FindDate]);
                }
                for m in skipped {
                    results.not_run.insert((m, p), "(--orthanc-qido)".into());
                }
                continue;
            }
            eprintln!("[catalog] {}", p.title());
            match Server::start(p, &launch).await {
                Ok(mut s) => {
                    let what = CatalogQueries { qido: !args.skip_qido, cfind, date_range: &date_range, dates: &dates };
                    catalog_run(&mut s, &launch, &small, &what, &mut results).await;
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
        "{yunying_version}; Orthanc {}; runs: {runs}; medians; each STOW on a fresh server and data directory",
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
            "dimse": tools.is_some(), "store_associations": STORE_ASSOCIATIONS, "move_reps": MOVE_REPS,
            "get_reps": GET_REPS, "date_range": ctx.date_range, "date_matches": ctx.date_matches,
            "pixels": !args.skip_pixels, "rendered_requests": pixels::RENDERED_REQUESTS,
            "encode_reps": pixels::ENCODE_REPS, "derive_poll_ms": pixels::DERIVE_POLL.as_millis() as u64,
            "first_view_side": pixels::FIRST_VIEW_SIDE,
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
    let client = s.client();
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
    let clients: Vec<reqwest::Client> = (0..FRAME_CONNECTIONS).map(|_| s.client()).collect();
    let frame_bytes = ct.rows as u64 * ct.columns as u64 * 2;
    let ask = measure::FrameAsk { accept: measure::FRAMES_AS_STORED, min_bytes: frame_bytes, starts_with: b"" };
    let frames = async {
        measure::frames(&clients, urls.clone(), ask).await?; // warm-up
        let mut v = Vec::new();
        for _ in 0..FRAMES_REPS {
            let (d, bytes) = measure::frames(&clients, urls.clone(), ask).await?;
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

/// What the catalog phase measures.
struct CatalogQueries<'a> {
    qido: bool,
    cfind: bool,
    /// The C-FIND StudyDate range, and each study's date.
    date_range: &'a str,
    dates: &'a [String],
}

/// The catalog phase on a fresh server: load the small studies, then time
/// each query (QIDO over HTTP, C-FIND over DIMSE).
async fn catalog_run(
    s: &mut Server,
    launch: &Launch,
    small: &SmallStudies,
    what: &CatalogQueries<'_>,
    r: &mut Results,
) {
    let p = s.product;
    let client = s.client();
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
    if what.cfind {
        cfind_run(s, launch, small, &pid, what, r).await;
    }
    if !what.qido {
        return;
    }
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

/// The study-level C-FIND queries on one association to the loaded server.
async fn cfind_run(
    s: &mut Server,
    launch: &Launch,
    small: &SmallStudies,
    pid: &str,
    what: &CatalogQueries<'_>,
    r: &mut Results,
) {
    let p = s.product;
    let metrics = [Metric::FindPatientId, Metric::FindName, Metric::FindDate];
    let fail = |r: &mut Results, e: String| {
        for m in metrics {
            r.error(m, p, e.clone());
        }
    };
    let Some((addr, ae)) = s.dicom.clone() else {
        return fail(r, "the server has no DICOM listener".into());
    };
    if let Err(e) = s.register_peers(launch).await {
        return fail(r, e);
    }
    let expected_pid = small.patients.iter().filter(|(id, _)| id == pid).count();
    let expected_name = small.patients.iter().filter(|(_, nm)| name_matches(nm, NAME_QUERY)).count();
    let expected_date = what.dates.iter().filter(|d| in_range(d, what.date_range)).count();
    let keys = |tag: &str, vr: &str, v: &str| {
        let mut m = serde_json::Map::new();
        m.insert(tag.into(), serde_json::json!({"vr": vr, "Value": [v]}));
        m
    };
    let queries = [
        dimse::FindQuery {
            name: "PatientID",
            keys: keys("00100020", "LO", pid),
            expected: expected_pid,
            each_contains: Some(pid.to_string()),
        },
        dimse::FindQuery {
            name: "PatientName",
            keys: keys("00100010", "PN", NAME_QUERY),
            expected: expected_name,
            each_contains: None,
        },
        dimse::FindQuery {
            name: "StudyDate",
            keys: keys("00080020", "DA", what.date_range),
            expected: expected_date,
            each_contains: None,
        },
    ];
    // The SCU runs on a thread of its own with a single-threaded runtime, so
    // that its reader task and the query loop share one thread: on the
    // multi-threaded runtime every response PDU would cost a cross-thread
    // wake-up in the client, which is the bench's time, not the server's.
    let (queries, results) = tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let results = rt.block_on(dimse::find(
            &addr,
            &ae,
            &queries,
            QIDO_WARMUP,
            QIDO_REQUESTS,
            QIDO_MIN_REQUESTS,
            QIDO_TIME_CAP,
        ));
        (queries, results)
    })
    .await
    .expect("C-FIND client");
    for ((m, q), res) in metrics.into_iter().zip(&queries).zip(results) {
        match res {
            Ok(samples) => {
                let v = |x| report::percentile(&samples, x).unwrap_or(f64::NAN);
                eprintln!("   {}: p50 {:.2} ms, p95 {:.2} ms ({} matches)", m.key(), v(50.0), v(95.0), q.expected);
                r.entry(m, p).samples = samples;
            }
            Err(e) => r.error(m, p, e),
        }
    }
}

/// The DIMSE measurements on a fresh server: `storescu` of the series over
/// `associations` association(s); after a single association, also the
/// C-MOVE and C-GET of the series.
#[allow(clippy::too_many_arguments)]
async fn dimse_run(
    s: &mut Server,
    launch: &Launch,
    tools: &dimse::Tools,
    ct: &CtSeries,
    associations: usize,
    scratch: &std::path::Path,
    dest_port: u16,
    r: &mut Results,
) {
    let p = s.product;
    let n = ct.files.len();
    let store_metric = if associations == 1 { Metric::DimseStore1 } else { Metric::DimseStore4 };
    let Some((addr, ae)) = s.dicom.clone() else {
        return r.error(store_metric, p, "the server has no DICOM listener".into());
    };
    if let Err(e) = s.register_peers(launch).await {
        return r.error(store_metric, p, e);
    }
    let logs = scratch.join("logs");
    let _ = std::fs::create_dir_all(&logs);

    // C-STORE of the series.
    let cpu_before = s.cpu_seconds();
    match dimse::storescu(tools, &addr, &ae, &ct.files, associations, &logs).await {
        Ok(d) => {
            let rate = n as f64 / d.as_secs_f64();
            let cpu = s.cpu_seconds().zip(cpu_before).map(|(a, b)| a - b);
            eprintln!(
                "   storescu x{associations}: {n} instances in {:.2} s = {rate:.0}/s; server CPU {:.2} s",
                d.as_secs_f64(),
                cpu.unwrap_or(f64::NAN)
            );
            r.push(store_metric, p, rate);
            if associations == 1 {
                if let Some(cpu) = cpu {
                    r.push(Metric::DimseStoreCpu, p, cpu);
                }
                if let Some(kib) = s.peak_rss_kib() {
                    let mb = kib as f64 * 1024.0 / 1e6;
                    eprintln!("   peak RSS (VmHWM): {mb:.0} MB");
                    r.push(Metric::DimseStoreRss, p, mb);
                }
            }
        }
        Err(e) => return r.error(store_metric, p, e),
    }
    // Everything must be there (QIDO over HTTP, untimed).
    let client = s.client();
    let url = format!("{}/studies/{}/series/{}/instances", s.dicomweb, ct.study_uid, ct.series_uid);
    match measure::get_json_array(&client, &url).await {
        Ok((_, items)) if items.len() == n => {}
        Ok((_, items)) => {
            return r.error(
                store_metric,
                p,
                format!("after storescu the series has {} instances, not {n}", items.len()),
            );
        }
        Err(e) => return r.error(store_metric, p, format!("after storescu: {e}")),
    }
    if associations != 1 {
        return;
    }

    // The series, as stored, is what C-MOVE and C-GET must bring back
    // (their files have their own meta header: allow 1% less).
    let total = ct.total_bytes();
    let min_bytes = total - total / 100;
    let mb_per_s = |d: Duration| total as f64 / 1e6 / d.as_secs_f64();
    let what = dimse::Retrieval {
        tools,
        addr: &addr,
        ae: &ae,
        study: &ct.study_uid,
        series: &ct.series_uid,
        n,
        min_bytes,
        logs: &logs,
    };

    // C-MOVE to a local storescp.
    let moves = async {
        let mut scp = dimse::StoreScp::start(tools, dest_port, &scratch.join("move"), &logs).await?;
        let mut v = Vec::new();
        for _ in 0..MOVE_REPS {
            let cpu0 = s.cpu_seconds();
            let d = dimse::movescu(&what, &mut scp).await?;
            let cpu = s.cpu_seconds().zip(cpu0).map(|(a, b)| a - b).unwrap_or(f64::NAN);
            eprintln!("   C-MOVE: {:.2} s = {:.0} MB/s; server CPU {cpu:.2} s", d.as_secs_f64(), mb_per_s(d));
            v.push(mb_per_s(d));
        }
        drop(scp);
        dimse::clear(&scratch.join("move")).await;
        Ok(v)
    };
    record_reps(r, Metric::CMove, p, moves.await, "C-MOVE", "MB/s");

    // C-GET with getscu.
    let gets = async {
        let dir = scratch.join("get");
        let mut v = Vec::new();
        for _ in 0..GET_REPS {
            let cpu0 = s.cpu_seconds();
            let d = dimse::getscu(&what, &dir).await?;
            let cpu = s.cpu_seconds().zip(cpu0).map(|(a, b)| a - b).unwrap_or(f64::NAN);
            eprintln!("   C-GET: {:.2} s = {:.0} MB/s; server CPU {cpu:.2} s", d.as_secs_f64(), mb_per_s(d));
            v.push(mb_per_s(d));
        }
        dimse::clear(&dir).await;
        Ok(v)
    };
    record_reps(r, Metric::CGet, p, gets.await, "C-GET", "MB/s");
}

/// The calendar month of the median date, as a DICOM date range
/// (`20230301-20230331`); "" when there are no dates.
fn month_range(dates: &[String]) -> String {
    let mut v: Vec<&String> = dates.iter().filter(|d| d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit())).collect();
    if v.is_empty() {
        return String::new();
    }
    v.sort();
    let mid = v[v.len() / 2];
    let (y, m): (u32, u32) = (mid[..4].parse().unwrap_or(2000), mid[4..6].parse().unwrap_or(1));
    let leap = (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let last = match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    format!("{y:04}{m:02}01-{y:04}{m:02}{last:02}")
}

/// Whether a DA value falls in an inclusive `lo-hi` range.
fn in_range(date: &str, range: &str) -> bool {
    match range.split_once('-') {
        Some((lo, hi)) => !date.is_empty() && date >= lo && date <= hi,
        None => false,
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
    fn month() {
        let d = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(super::month_range(&d(&["20240210", "20230415", "20250101"])), "20240201-20240229");
        assert_eq!(super::month_range(&d(&["20230415"])), "20230401-20230430");
        assert!(super::in_range("20230430", "20230401-20230430"));
        assert!(!super::in_range("20230501", "20230401-20230430"));
    }

    #[test]
    fn wildcard() {
        assert!(super::name_matches("Zhang^Weiwei=张^伟伟", "Zhang*"));
        assert!(!super::name_matches("Zheng^Weiwei=郑^伟伟", "Zhang*"));
    }
}
