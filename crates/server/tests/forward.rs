//! Routing rules, end to end: instances received by DIMSE that match a rule
//! are forwarded by C-STORE to a DCMTK `storescp`; the others are not; a
//! destination that is down leaves a visible backlog, sent once it is back.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use yunying_test_support::TestServer;

const BIN: &str = env!("CARGO_BIN_EXE_yunying");

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn storescp(port: u16, dir: &Path) -> Killed {
    let child = Command::new("storescp")
        .env("TCP_NODELAY", "1")
        .args(["-aet", "DEST", "-od"])
        .arg(dir)
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("storescp (DCMTK) must be installed");
    // Wait until it listens.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "storescp did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Killed(child)
}

fn files_in(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

fn wait_for_files(dir: &Path, n: usize, within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let have = files_in(dir);
        if have >= n || Instant::now() > deadline {
            return have;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matching_instances_are_forwarded_and_a_backlog_waits_for_the_destination() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("yunying.toml");
    std::fs::write(&config, "[[dicom.forward]]\ndestination = \"DEST\"\nmodalities = [\"CT\"]\nchannels = [\"dimse\"]\n")
        .unwrap();
    let server = TestServer::start(Path::new(BIN), &["--config", config.to_str().unwrap()], &[]).await;
    let dest_port = free_port();
    let port_s = dest_port.to_string();
    server.cli(&["ae", "add", "DEST", "--institution", "DEFAULT", "--host", "127.0.0.1", "--port", &port_s, "--allow", "store"]);
    server.cli(&["ae", "add", "MODALITY", "--institution", "DEFAULT", "--allow", "store"]);

    // Two studies: a CT series (forwarded) and a DX image (not).
    let data = tmp.path().join("synth");
    let out = Command::new(BIN).args(["synth", "--studies", "2", "--slices", "4", "--out"]).arg(&data).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let total = walk(&data);
    let ct: usize = count_modality(&data, "CT");
    assert!(ct > 0 && ct < total, "the synthetic data has CT and other modalities ({ct} of {total})");

    // The destination is down at first: jobs wait, and say why.
    let storescu = |dir: &Path| {
        let out = Command::new("storescu")
            .env("TCP_NODELAY", "1")
            .args(["-aet", "MODALITY", "-aec", "YUNYING", "+sd", "+r", "127.0.0.1"])
            .arg(server.dicom_port().to_string())
            .arg(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "storescu failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    };
    storescu(&data);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        let s = server.cli(&["forward-status"]);
        if s.contains("cannot associate") || Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(status.contains("DEST"), "{status}");
    assert!(status.contains(&format!(" {ct} ")), "every CT instance waits: {status}");
    assert!(status.contains("cannot associate"), "{status}");

    // Once it is up, the backlog drains (the first retry comes 10 s later).
    let received = tmp.path().join("received");
    std::fs::create_dir_all(&received).unwrap();
    let _scp = storescp(dest_port, &received);
    assert_eq!(wait_for_files(&received, ct, Duration::from_secs(60)), ct, "the CT instances arrive, nothing else");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(files_in(&received), ct);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = server.cli(&["forward-status"]);
        if s.contains("nothing waits") {
            break;
        }
        assert!(Instant::now() < deadline, "the backlog should be empty: {s}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // With the destination up, new instances go at once; a re-send of the
    // same instances (duplicates) forwards nothing again.
    std::fs::remove_dir_all(&received).unwrap();
    std::fs::create_dir_all(&received).unwrap();
    storescu(&data);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(files_in(&received), 0, "duplicates are not forwarded again");
    let more = tmp.path().join("more");
    let out = Command::new(BIN)
        .args(["synth", "--studies", "1", "--slices", "3", "--seed", "7", "--out"])
        .arg(&more)
        .output()
        .unwrap();
    assert!(out.status.success());
    let more_ct = count_modality(&more, "CT");
    storescu(&more);
    assert_eq!(wait_for_files(&received, more_ct, Duration::from_secs(10)), more_ct);
}

fn walk(dir: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            n += walk(&e.path());
        } else {
            n += 1;
        }
    }
    n
}

fn count_modality(dir: &Path, modality: &str) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            n += count_modality(&e.path(), modality);
        } else {
            let bytes = std::fs::read(e.path()).unwrap();
            let obj = yunying_dicom::parse_part10(
                &mut std::io::Cursor::new(&bytes),
                bytes.len() as u64,
                &Default::default(),
            )
            .unwrap();
            if obj.dataset.ascii(yunying_dicom::Tag(0x0008, 0x0060)).as_deref().map(str::trim) == Some(modality) {
                n += 1;
            }
        }
    }
    n
}
