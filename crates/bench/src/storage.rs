//! The storage tier benchmark (`yunying-bench --only-storage`): the cloud
//! copy's throughput, reads served through the S3 tier, and a migration
//! between two buckets with verification, on a real S3-compatible server
//! (moto on loopback by default, or any endpoint given on the command line,
//! such as the customer's OSS before go-live).
//!
//! Steps, each with the real `yunying` binary:
//! 1. synthetic studies (about `objects` objects, cached) are imported into a
//!    fresh archive (filesystem local tier, SQLite);
//! 2. `yunying storage cloud-sync --wait` copies them all to the cloud tier:
//!    MB/s and objects/s;
//! 3. the server runs; `reads` instances are read with WADO-RS from the
//!    local tier, then with their local files removed, through the S3 tier:
//!    latency p50/p95;
//! 4. `yunying storage migrate --from cloud --to other` copies every object
//!    to a second bucket and reads each back: objects/s and MB/s.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// What the storage benchmark needs.
#[derive(Debug, Clone)]
pub struct StorageBench {
    pub yunying: PathBuf,
    pub cache: PathBuf,
    pub work_root: PathBuf,
    /// Objects in the archive (synthetic studies of about 10 objects each).
    pub objects: usize,
    /// Instances read through each tier.
    pub reads: usize,
    /// Part-10 files to use instead of synthetic studies.
    pub data_dir: Option<PathBuf>,
    /// An S3 endpoint to use instead of moto (credentials in
    /// YUNYING_BENCH_S3_ACCESS_KEY_ID / YUNYING_BENCH_S3_SECRET_ACCESS_KEY).
    pub endpoint: Option<String>,
    /// With `endpoint`: the bucket (the bench works under its own prefixes).
    pub bucket: Option<String>,
    pub region: String,
    pub virtual_hosted: bool,
}

type Res<T> = Result<T, String>;

struct Moto(Child);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn moto_program() -> PathBuf {
    if let Ok(p) = std::env::var("YUNYING_MOTO_SERVER") {
        return PathBuf::from(p);
    }
    let venv = std::env::var("YUNYING_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/yunying/venv"));
    venv.join("bin/moto_server")
}

/// The S3 side: (endpoint, buckets for the cloud tier and the migration target, credentials, moto).
async fn s3(b: &StorageBench) -> Res<(String, String, String, (String, String), Option<Moto>)> {
    if let Some(endpoint) = &b.endpoint {
        let bucket = b.bucket.clone().ok_or("--s3-bucket is required with --s3-endpoint")?;
        let id = std::env::var("YUNYING_BENCH_S3_ACCESS_KEY_ID").map_err(|_| "set YUNYING_BENCH_S3_ACCESS_KEY_ID")?;
        let secret =
            std::env::var("YUNYING_BENCH_S3_SECRET_ACCESS_KEY").map_err(|_| "set YUNYING_BENCH_S3_SECRET_ACCESS_KEY")?;
        return Ok((endpoint.clone(), bucket.clone(), bucket, (id, secret), None));
    }
    let program = moto_program();
    if !program.is_file() {
        return Err(format!("{} is missing: run scripts/setup-deps.sh", program.display()));
    }
    let port = crate::server::free_port().map_err(|e| e.to_string())?;
    let child = Command::new(&program)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
    let moto = Moto(child);
    let endpoint = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let started = Instant::now();
    while http.get(format!("{endpoint}/")).send().await.is_err() {
        if started.elapsed() > Duration::from_secs(60) {
            return Err("moto_server did not answer".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for bucket in ["bench-cloud", "bench-other"] {
        http.put(format!("{endpoint}/{bucket}")).send().await.map_err(|e| e.to_string())?;
    }
    Ok((endpoint, "bench-cloud".into(), "bench-other".into(), ("bench".into(), "bench-secret".into()), Some(moto)))
}

fn s3_block(section: &str, endpoint: &str, bucket: &str, prefix: &str, b: &StorageBench) -> String {
    format!(
        "[{section}.s3]\nendpoint = \"{endpoint}\"\nbucket = \"{bucket}\"\nregion = \"{}\"\nprefix = \"{prefix}\"\n\
         virtual_hosted = {}\nallow_http = true\n",
        b.region, b.virtual_hosted
    )
}

/// The synthetic studies (made once, cached): about `objects` objects.
fn data(b: &StorageBench) -> Res<(PathBuf, usize, u64)> {
    // About 9.6 objects per synthetic study (10 slices per CT series).
    let studies = b.objects.div_ceil(9).max(1);
    let dir = b.data_dir.clone().unwrap_or_else(|| b.cache.join(format!("storage-{studies}")));
    let done = dir.join(".complete");
    if b.data_dir.is_none() && !done.exists() {
        let _ = std::fs::remove_dir_all(&dir);
        eprintln!("storage: making {studies} synthetic studies under {}", dir.display());
        let out = Command::new(&b.yunying)
            .args(["synth", "--out"])
            .arg(&dir)
            .args(["--studies", &studies.to_string(), "--slices", "10", "--seed", "77"])
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!("yunying synth: {}", String::from_utf8_lossy(&out.stderr)));
        }
        std::fs::write(&done, b"").map_err(|e| e.to_string())?;
    }
    let (mut n, mut bytes) = (0usize, 0u64);
    let mut stack = vec![dir.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).map_err(|e| e.to_string())? {
            let p = e.map_err(|e| e.to_string())?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "dcm") {
                n += 1;
                bytes += p.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
    }
    Ok((dir, n, bytes))
}

fn run_cli(b: &StorageBench, data: &Path, config: &Path, env: &[(String, String)], args: &[&str]) -> Res<String> {
    let out = Command::new(&b.yunying)
        .args(args)
        .arg("--data")
        .arg(data)
        .arg("--config")
        .arg(config)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .map_err(|e| e.to_string())?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        return Err(format!("yunying {args:?}: {text}"));
    }
    Ok(text)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Runs the storage benchmark and prints its figures; returns them as JSON.
pub async fn run(b: &StorageBench) -> Res<Value> {
    let (endpoint, cloud_bucket, other_bucket, (id, secret), _moto) = s3(b).await?;
    let (src, objects, bytes) = tokio::task::block_in_place(|| data(b))?;
    eprintln!("storage: {objects} objects, {:.1} MB, S3 at {endpoint}", bytes as f64 / 1e6);
    let work = tempfile::Builder::new().prefix("yunying-bench-storage-").tempdir_in(&b.work_root).map_err(|e| e.to_string())?;
    let data_dir = work.path().join("data");
    let run_id = format!("run{}", std::process::id());
    let config = work.path().join("yunying.toml");
    std::fs::write(
        &config,
        format!(
            "[storage.cloud]\nkind = \"s3\"\nyears = 30\ncopy_concurrency = 8\n{}\n[storage.stores.other]\nkind = \"s3\"\n{}\n[storage.scrub]\ninterval_days = 0\n",
            s3_block("storage.cloud", &endpoint, &cloud_bucket, &format!("{run_id}-cloud"), b),
            s3_block("storage.stores.other", &endpoint, &other_bucket, &format!("{run_id}-other"), b),
        ),
    )
    .map_err(|e| e.to_string())?;
    let env = vec![
        ("YUNYING_CLOUD_S3_ACCESS_KEY_ID".to_string(), id.clone()),
        ("YUNYING_CLOUD_S3_SECRET_ACCESS_KEY".to_string(), secret.clone()),
        ("YUNYING_STORE_OTHER_S3_ACCESS_KEY_ID".to_string(), id),
        ("YUNYING_STORE_OTHER_S3_SECRET_ACCESS_KEY".to_string(), secret),
        ("YUNYING_LOG".to_string(), "warn".to_string()),
    ];

    // 1. Import (the objects are queued for the cloud tier as they are indexed).
    let t = Instant::now();
    tokio::task::block_in_place(|| run_cli(b, &data_dir, &config, &env, &["import", src.to_str().unwrap_or("")]))?;
    eprintln!("storage: imported in {:.1} s", t.elapsed().as_secs_f64());

    // 2. The cloud copy, in one process, timed by the process itself.
    let t = Instant::now();
    let out = tokio::task::block_in_place(|| run_cli(b, &data_dir, &config, &env, &["storage", "cloud-sync", "--wait"]))?;
    let copy_s = t.elapsed().as_secs_f64();
    let copy_s_inner = out
        .lines()
        .find_map(|l| l.strip_prefix("cloud copy queue empty after ").and_then(|r| r.split(' ').next()?.parse::<f64>().ok()))
        .unwrap_or(copy_s);
    let copy_mb_s = bytes as f64 / 1e6 / copy_s_inner;
    eprintln!("storage: cloud copy {objects} objects in {copy_s_inner:.1} s: {copy_mb_s:.1} MB/s");

    // 3. Reads through each tier.
    let (local_ms, cloud_ms) = reads(b, &data_dir, &config, &env).await?;

    // 4. Migration between the two buckets, verified.
    let out = tokio::task::block_in_place(|| {
        run_cli(b, &data_dir, &config, &env, &["storage", "migrate", "--from", "cloud", "--to", "other", "--json"])
    })?;
    let report: Value = out
        .lines()
        .find_map(|l| serde_json::from_str::<Value>(l).ok().filter(|v| v.get("task").is_some()))
        .ok_or_else(|| format!("no migration report in: {out}"))?;
    let mig_objects_s = report["objects_per_second"].as_f64().unwrap_or(f64::NAN);
    let mig_mb_s = report["mb_per_second"].as_f64().unwrap_or(f64::NAN);
    let mig_s = report["seconds"].as_f64().unwrap_or(f64::NAN);
    let problems = report["task"]["problems"].as_i64().unwrap_or(-1);

    println!();
    println!("Storage tiers ({objects} objects, {:.1} MB; S3 at {endpoint})", bytes as f64 / 1e6);
    println!("| | figure | budget |");
    println!("|---|---|---|");
    println!(
        "| WADO-RS instance read, local tier | p50 {:.1} ms, p95 {:.1} ms | |",
        percentile(&local_ms, 0.5),
        percentile(&local_ms, 0.95)
    );
    println!(
        "| WADO-RS instance read through the S3 tier | p50 {:.1} ms, p95 {:.1} ms | < 50 ms p50 |",
        percentile(&cloud_ms, 0.5),
        percentile(&cloud_ms, 0.95)
    );
    println!(
        "| cloud copy | {copy_mb_s:.1} MB/s, {:.0} objects/s | >= 100 MB/s |",
        objects as f64 / copy_s_inner
    );
    println!(
        "| migration between two buckets, verified | {mig_objects_s:.0} objects/s, {mig_mb_s:.1} MB/s ({objects} objects in {mig_s:.1} s, {problems} problems) | prints |"
    );
    Ok(json!({
        "objects": objects,
        "bytes": bytes,
        "endpoint": endpoint,
        "read_local_ms": { "p50": percentile(&local_ms, 0.5), "p95": percentile(&local_ms, 0.95) },
        "read_s3_tier_ms": { "p50": percentile(&cloud_ms, 0.5), "p95": percentile(&cloud_ms, 0.95) },
        "cloud_copy": { "seconds": copy_s_inner, "mb_per_second": copy_mb_s, "objects_per_second": objects as f64 / copy_s_inner },
        "migration": report,
    }))
}

/// WADO-RS reads of `reads` instances from the local tier, then of `reads`
/// others whose local files were removed (served by the S3 tier).
async fn reads(b: &StorageBench, data_dir: &Path, config: &Path, env: &[(String, String)]) -> Res<(Vec<f64>, Vec<f64>)> {
    let token_file = data_dir.with_file_name("bench-token");
    tokio::task::block_in_place(|| {
        run_cli(b, data_dir, config, env, &["token", "create", "--name", "bench", "--actions", "all", "--out", token_file.to_str().unwrap_or("")])
    })?;
    let token = std::fs::read_to_string(&token_file).map_err(|e| e.to_string())?.trim().to_string();
    let port = crate::server::free_port().map_err(|e| e.to_string())?;
    let mut child = Command::new(&b.yunying)
        .args(["serve", "--http", &format!("127.0.0.1:{port}"), "--dicom", "off", "--data"])
        .arg(data_dir)
        .arg("--config")
        .arg(config)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| e.to_string())?;
    let base = format!("http://127.0.0.1:{port}");
    let client = crate::measure::client_with(Some(&token));
    let started = Instant::now();
    loop {
        if let Ok(r) = client.get(format!("{base}/healthz")).send().await
            && r.status() == 200
        {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            return Err("the server did not start".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Every original object, by key (the key names its UIDs).
    let root = data_dir.join("blobs");
    let mut keys = Vec::new();
    let mut stack = vec![root.join("dicom")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).map_err(|e| e.to_string())? {
            let p = e.map_err(|e| e.to_string())?.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                keys.push(p);
            }
        }
    }
    keys.sort();
    let n = b.reads.min(keys.len() / 2);
    let url_of = |p: &Path| -> Option<String> {
        let rel = p.strip_prefix(&root).ok()?.to_str()?;
        let mut parts = rel.strip_prefix("dicom/v1/")?.split('/').skip(2);
        let (study, series, file) = (parts.next()?, parts.next()?, parts.next()?);
        let sop = file.strip_suffix(".dcm")?.rsplit_once('.')?.0;
        Some(format!("{base}/dicom-web/studies/{study}/series/{series}/instances/{sop}"))
    };
    let accept = "multipart/related; type=\"application/dicom\"; transfer-syntax=*";
    let time_reads = async |paths: &[PathBuf]| -> Res<Vec<f64>> {
        let mut ms = Vec::with_capacity(paths.len());
        for p in paths {
            let url = url_of(p).ok_or("unexpected key layout")?;
            let t = Instant::now();
            let r = client.get(&url).header("Accept", accept).send().await.map_err(|e| e.to_string())?;
            if r.status() != 200 {
                return Err(format!("{url}: {}", r.status()));
            }
            let _ = r.bytes().await.map_err(|e| e.to_string())?;
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        ms.sort_by(f64::total_cmp);
        Ok(ms)
    };
    // Warm-up: one read of each kind.
    let _ = time_reads(&keys[..1]).await?;
    let local = time_reads(&keys[1..=n]).await?;
    let remote: Vec<PathBuf> = keys[keys.len() - n - 1..].to_vec();
    for p in &remote {
        std::fs::remove_file(p).map_err(|e| e.to_string())?;
    }
    // Warm-up of the connection to the store, then the timed reads.
    let cloud = match time_reads(&remote[..1]).await {
        Ok(_) => time_reads(&remote[1..]).await,
        Err(e) => Err(e),
    };
    let _ = child.kill();
    let _ = child.wait();
    Ok((local, cloud?))
}
