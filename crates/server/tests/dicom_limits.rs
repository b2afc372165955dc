//! The acceptor's limits, against the real binary: the cap on simultaneous
//! associations (the next requestor is rejected, transient, "local limit
//! exceeded", and served again once a slot frees), the ARTIM timeout (a
//! connection that never asks for an association is closed), and the idle
//! timeout (an association that goes quiet is aborted).

use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use yunying_dimse::{AssocError, Proposal, Requestor, associate, uids};
use yunying_test_support::TestServer;

const BIN: &str = env!("CARGO_BIN_EXE_yunying");

fn echoscu(port: u16) -> (bool, String) {
    let out = Command::new("echoscu")
        .env("TCP_NODELAY", "1")
        .args(["-v", "-aet", "ECHOSCU", "-aec", "YUNYING", "127.0.0.1", &port.to_string()])
        .output()
        .expect("echoscu (DCMTK) must be installed");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn association_cap_artim_and_idle_timeouts() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("yunying.toml");
    std::fs::write(&config, "[dicom]\nmax_associations = 1\nartim_timeout_secs = 1\nidle_timeout_secs = 2\n").unwrap();
    let server = TestServer::start(Path::new(BIN), &["--config", config.to_str().unwrap()], &[]).await;
    server.cli(&["ae", "add", "ECHOSCU", "--institution", "DEFAULT", "--allow", "store"]);
    let port = server.dicom_port();
    let addr = format!("127.0.0.1:{port}");

    // One association holds the only slot: the next is rejected, transient.
    let mut held = associate(&Requestor::new("ECHOSCU", "YUNYING", &addr), &[Proposal::native(uids::VERIFICATION)], &[])
        .await
        .expect("first association");
    assert_eq!(held.echo().await.unwrap(), 0);
    let (ok, log) = echoscu(port);
    assert!(!ok, "a second association must be refused: {log}");
    assert!(log.contains("Rejected Transient"), "{log}");
    assert!(log.contains("Local Limit Exceeded"), "{log}");
    let second = associate(&Requestor::new("ECHOSCU", "YUNYING", &addr), &[Proposal::native(uids::VERIFICATION)], &[]).await;
    assert!(matches!(second, Err(AssocError::Rejected { result: 2, origin: 3, reason: 2 })), "{second:?}");

    // Released: the slot is free again.
    held.release().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (ok, log) = echoscu(port);
    assert!(ok, "{log}");

    // ARTIM: a connection that sends nothing is closed.
    let started = Instant::now();
    let mut silent = std::net::TcpStream::connect(&addr).unwrap();
    silent.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 64];
    let n = silent.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "closed without an answer");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(900) && waited < Duration::from_secs(5), "closed after {waited:?}");

    // Idle: an association with no request for longer than the idle timeout is aborted.
    let mut quiet = associate(&Requestor::new("ECHOSCU", "YUNYING", &addr), &[Proposal::native(uids::VERIFICATION)], &[])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = quiet.echo().await;
    assert!(after.is_err(), "the idle association should have been aborted: {after:?}");
    // And the slot it held is free.
    let (ok, log) = echoscu(port);
    assert!(ok, "{log}");
}
