//! What the catalog shows of the stored images, for before/after
//! comparisons (`reindex`, `backup`/`restore`): every QIDO-RS answer with
//! all attributes, every study's metadata, and, read from the catalog
//! itself (read-only, `sqlite3` or `psql`), each instance version's
//! institution, version, checksum, sender and time.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value as Json, json};
use yunying_test_support::TestServer;

pub const BIN: &str = env!("CARGO_BIN_EXE_yunying");

/// Where the catalog is.
#[derive(Debug, Clone)]
pub enum Catalog {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Catalog {
    /// Rows of a query, one string per row (`|` between columns).
    pub fn rows(&self, sql: &str) -> Vec<String> {
        let out = match self {
            Catalog::Sqlite(path) => Command::new("sqlite3").arg("-readonly").arg(path).arg(sql).output(),
            Catalog::Postgres(url) => Command::new("psql").args(["-X", "-q", "-A", "-t", "-c", sql, url]).output(),
        }
        .expect("sqlite3 / psql runs");
        assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
    }
}

/// The images' catalog as the API and the catalog's rows show it.
pub async fn view(server: &TestServer, catalog: &Catalog) -> Json {
    let get = |path: String| {
        let client = server.client();
        let url = format!("{}{path}", server.dicomweb());
        async move {
            let r = client.get(&url).header("Accept", "application/dicom+json").send().await.unwrap();
            assert_eq!(r.status(), 200, "GET {url}");
            let v: Json = r.json().await.unwrap();
            v
        }
    };
    let sorted = |mut v: Json, tag: &str| {
        let tag = tag.to_string();
        v.as_array_mut().expect("an array").sort_by_key(|x| x[&tag]["Value"][0].as_str().unwrap_or_default().to_string());
        v
    };
    let studies = sorted(get("/studies?includefield=all".into()).await, "0020000D");
    let mut per_study = serde_json::Map::new();
    for s in studies.as_array().unwrap() {
        let uid = s["0020000D"]["Value"][0].as_str().unwrap().to_string();
        per_study.insert(
            uid.clone(),
            json!({
                "series": sorted(get(format!("/studies/{uid}/series?includefield=all")).await, "0020000E"),
                "instances": sorted(get(format!("/studies/{uid}/instances?includefield=all")).await, "00080018"),
                "metadata": sorted(get(format!("/studies/{uid}/metadata")).await, "00080018"),
            }),
        );
    }
    let v = json!({
        "studies": studies,
        "per_study": per_study,
        "instance_rows": catalog.rows(
            "SELECT i.sop_uid, i.version, i.current, i.sha256, i.size_bytes, i.blob_key, inst.code, i.received_from, \
             i.received_at, i.transfer_syntax, i.frames, i.bulk FROM instance i JOIN institution inst ON inst.id = i.institution_id \
             ORDER BY i.sop_uid, i.version"),
        "study_rows": catalog.rows(
            "SELECT s.study_uid, inst.code, s.pat_id, s.pat_issuer, s.num_instances, s.num_series, s.size_bytes, \
             s.modalities_bar, s.attrs FROM study s JOIN institution inst ON inst.id = s.institution_id ORDER BY s.study_uid"),
        "series_rows": catalog.rows(
            "SELECT se.series_uid, inst.code, se.num_instances, se.size_bytes, se.attrs FROM series se \
             JOIN institution inst ON inst.id = se.institution_id ORDER BY se.series_uid"),
        "patient_identifiers": catalog.rows(
            "SELECT pi.issuer, pi.value, pi.kind, inst.code FROM patient_identifier pi \
             JOIN institution inst ON inst.id = pi.institution_id ORDER BY pi.issuer, pi.value"),
    });
    // URLs name the server's address, which changes with each start.
    serde_json::from_str(&v.to_string().replace(&server.base, "http://SERVER")).unwrap()
}

/// Makes `studies` small synthetic studies under `dir` (`<study>/<series>/<sop>.dcm`);
/// returns the study directories, by name.
pub fn synth(dir: &Path, studies: usize, seed: u64) -> Vec<PathBuf> {
    let out = Command::new(BIN)
        .args(["synth", "--out", dir.to_str().unwrap(), "--studies", &studies.to_string(), "--slices", "3"])
        .args(["--seed", &seed.to_string()])
        .env("YUNYING_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    assert_eq!(dirs.len(), studies);
    dirs
}

/// Every file under `dir`, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() { out.extend(files_under(&p)) } else { out.push(p) }
    }
    out.sort();
    out
}

/// STOW-RS of files; panics unless every one is stored.
pub async fn stow(server: &TestServer, files: &[PathBuf]) {
    server.stow_files(files).await;
}

/// storescu (DCMTK) of a directory as `calling`.
pub fn storescu(server: &TestServer, calling: &str, dir: &Path) {
    let port = server.dicom_port().to_string();
    let out = Command::new("storescu")
        .args(["-aet", calling, "-aec", "YUNYING", "+sd", "+r", "127.0.0.1", &port])
        .arg(dir)
        .output()
        .expect("storescu (DCMTK) runs");
    assert!(out.status.success(), "storescu: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

/// A second version of a stored object: the same UIDs, other content
/// (Image Comments set with DCMTK's `dcmodify`).
pub fn second_version(file: &Path, dir: &Path) -> PathBuf {
    let copy = dir.join("second-version.dcm");
    std::fs::copy(file, &copy).unwrap();
    let out = Command::new("dcmodify")
        .args(["-nb", "-i", "(0020,4000)=second version, corrected"])
        .arg(&copy)
        .output()
        .expect("dcmodify (DCMTK) runs");
    assert!(out.status.success(), "dcmodify: {}", String::from_utf8_lossy(&out.stderr));
    copy
}

/// A new test token (the old one went with a deleted catalog).
pub fn new_token(server: &mut TestServer, name: &str) {
    let file = server.data.with_file_name(format!("token-{name}"));
    let _ = std::fs::remove_file(&file);
    server.cli(&["token", "create", "--name", name, "--actions", "all", "--out", file.to_str().unwrap()]);
    server.token = std::fs::read_to_string(&file).unwrap().trim().to_string();
}

/// Runs the CLI on the server's data (and catalog), returning (success, stdout + stderr).
pub fn cli(server: &TestServer, args: &[&str]) -> (bool, String) {
    let (ok, out, err) = server.cli_result(args);
    (ok, format!("{out}{err}"))
}

/// The number in a summary line such as `  indexed                12`.
pub fn figure(summary: &str, label: &str) -> usize {
    summary
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {label:?} in:\n{summary}"))
}
