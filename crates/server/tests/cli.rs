//! The command line: `synth` to files and to a server, `import` with its
//! summary and resumability.

use std::process::Command;

use yunying_test_support::TestServer;

const BIN: &str = env!("CARGO_BIN_EXE_yunying");

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN).args(args).env("YUNYING_LOG", "warn").output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn count_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| if e.file_type().unwrap().is_dir() { count_files(&e.path()) } else { 1 })
        .sum()
}

#[test]
fn synth_then_import_is_resumable_and_summarised() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("export");
    let (ok, out, err) = run(&["synth", "--out", src.to_str().unwrap(), "--studies", "2", "--slices", "6", "--seed", "7"]);
    assert!(ok, "{out}{err}");
    let files = count_files(&src);
    assert!(files >= 8, "{files} files");
    // Junk next to the objects: skipped and counted, not fatal.
    std::fs::write(src.join("README.txt"), "exported by the old PACS").unwrap();
    std::fs::write(src.join("DICOMDIR"), [0u8; 200]).unwrap();
    let data = dir.path().join("data");
    let (ok, out, err) = run(&["import", src.to_str().unwrap(), "--data", data.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    assert!(out.contains(&format!("stored                {files}")), "{out}");
    assert!(out.contains("not DICOM (skipped)   1"), "{out}");
    // Again: everything was journaled.
    let (ok, out, _) = run(&["import", src.to_str().unwrap(), "--data", data.to_str().unwrap()]);
    assert!(ok);
    assert!(out.contains(&format!("done in an earlier run {}", files + 1)), "{out}");
    // With --restart the archive recognises every object as already stored.
    let (ok, out, _) = run(&["import", src.to_str().unwrap(), "--data", data.to_str().unwrap(), "--restart"]);
    assert!(ok);
    assert!(out.contains(&format!("already in archive    {files}")), "{out}");
    // An unknown institution is a clear error.
    let (ok, _, err) = run(&["import", src.to_str().unwrap(), "--data", data.to_str().unwrap(), "--institution", "NOPE"]);
    assert!(!ok);
    assert!(err.contains("no institution with code \"NOPE\""), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synth_sends_to_a_running_server() {
    let server = TestServer::start(std::path::Path::new(BIN), &[], &[]).await;
    let url = server.dicomweb();
    let token = server.token.clone();
    let out = tokio::task::spawn_blocking(move || {
        let out = Command::new(BIN)
            .args(["synth", "--url", &url, "--studies", "3", "--slices", "4", "--batch", "5"])
            .env("YUNYING_LOG", "warn")
            .env("YUNYING_TOKEN", token)
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string(), String::from_utf8_lossy(&out.stderr).to_string())
    })
    .await
    .unwrap();
    assert!(out.0, "{}{}", out.1, out.2);
    let body = server.client().get(format!("{}/studies", server.dicomweb())).send().await.unwrap().bytes().await.unwrap();
    let studies: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(studies.as_array().unwrap().len(), 3);
}
