//! TLS on the real `yunying` binary, with real peers: curl over HTTPS
//! (HTTP/1.1 and HTTP/2 by ALPN, HSTS, plain HTTP and untrusting clients
//! refused), DCMTK echoscu/storescu/findscu over DICOM TLS, mutual TLS
//! (a client without a certificate, or with one from another CA, is
//! refused), and `yunying echo` over TLS. Certificates are made at test
//! time with the `openssl` command ([`TestPki`]).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use yunying_synth::SynthOptions;
use yunying_test_support::{TestPki, TestServer, TlsOptions};

const BIN: &str = env!("CARGO_BIN_EXE_yunying");
const MODALITY: &str = "MODALITY";
const TOOL_TIMEOUT: Duration = Duration::from_secs(60);

type Run = yunying_test_support::ToolRun;

/// Runs a command to completion (killed after [`TOOL_TIMEOUT`]).
fn run(cmd: Command) -> Run {
    yunying_test_support::run_tool(cmd, TOOL_TIMEOUT)
}

fn tool(name: &str, args: &[&str]) -> Run {
    let mut c = Command::new(name);
    c.args(args);
    run(c)
}

fn yunying(args: &[&str]) -> Run {
    let mut c = Command::new(BIN);
    c.args(args).env("YUNYING_LOG", std::env::var("YUNYING_TEST_LOG").unwrap_or_else(|_| "warn".into()));
    run(c)
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// DCMTK's TLS options with a client certificate (`+tls KEY CERT`) or without one (`+tla`), trusting `ca`.
fn dcmtk_tls<'a>(identity: Option<(&'a Path, &'a Path)>, ca: &'a Path) -> Vec<&'a str> {
    let mut v = match identity {
        Some((cert, key)) => vec!["+tls", p(key), p(cert)],
        None => vec!["+tla"],
    };
    v.extend(["+cf", p(ca)]);
    v
}

fn echoscu(port: u16, tls: &[&str]) -> Run {
    let port = port.to_string();
    let mut args = tls.to_vec();
    args.extend(["-aet", MODALITY, "-aec", "YUNYING", "127.0.0.1", &port]);
    tool("echoscu", &args)
}

// --- HTTPS ------------------------------------------------------------------

#[tokio::test]
async fn https_serves_http1_and_http2_with_hsts_and_refuses_plain_and_untrusting_clients() {
    let pki = TestPki::create();
    let opts = TlsOptions { https: true, ..Default::default() };
    let s = TestServer::start_tls(Path::new(BIN), &pki, opts, &["--dicom", "off"]).await;
    assert!(s.base.starts_with("https://127.0.0.1:"), "{}", s.base);
    let url = format!("{}/healthz", s.base);
    let ca = p(&pki.ca);

    for (flag, version) in [("--http1.1", "1.1"), ("--http2", "2")] {
        let r = tool("curl", &["-sS", flag, "--cacert", ca, "-D", "-", "-w", "\nversion=%{http_version}\n", &url]);
        assert!(r.ok, "curl {flag}: {}", r.out);
        assert!(r.stdout.contains(&format!("version={version}\n")), "curl {flag}: {}", r.stdout);
        assert!(r.stdout.contains("\"status\":\"ok\""), "curl {flag}: {}", r.stdout);
        let hsts = r.stdout.lines().find(|l| l.to_ascii_lowercase().starts_with("strict-transport-security:"));
        assert_eq!(hsts.map(|l| l.split_once(':').unwrap().1.trim()), Some("max-age=31536000"), "{}", r.stdout);
    }
    // Other routes go through the same router (a 404 of ours, over TLS).
    let r = tool("curl", &["-sS", "--cacert", ca, "-o", "/dev/null", "-w", "%{http_code}", &format!("{}/api/nope", s.base)]);
    assert_eq!(r.stdout, "404", "{}", r.out);

    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = url.replacen("https://", "http://", 1);
    let r = tool("curl", &["-sS", "-m", "10", "-o", "/dev/null", "-w", "%{http_code}", &plain]);
    assert!(!r.ok && r.stdout != "200", "plain HTTP to the HTTPS port: {}", r.out);
    // A client that does not trust our CA refuses the server.
    let r = tool("curl", &["-sS", "-m", "10", &url]);
    assert!(!r.ok, "a client without our CA: {}", r.out);
    let other_ca = pki.dir.join("other-ca.crt");
    let r = tool("curl", &["-sS", "-m", "10", "--cacert", p(&other_ca), &url]);
    assert!(!r.ok, "a client trusting another CA: {}", r.out);
    // The server still serves after those failed handshakes.
    let r = tool("curl", &["-sS", "--cacert", ca, "-o", "/dev/null", "-w", "%{http_code}", &url]);
    assert_eq!(r.stdout, "200", "{}", r.out);
}

#[tokio::test]
async fn plain_http_sends_no_hsts() {
    let s = TestServer::start(Path::new(BIN), &["--dicom", "off"], &[]).await;
    let r = tool("curl", &["-sS", "-D", "-", "-o", "/dev/null", &format!("{}/healthz", s.base)]);
    assert!(r.ok, "{}", r.out);
    assert!(!r.stdout.to_ascii_lowercase().contains("strict-transport-security"), "{}", r.stdout);
}

#[tokio::test]
async fn a_bad_certificate_file_stops_the_start_with_its_name() {
    let pki = TestPki::create();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("y.toml");
    // The key of another certificate.
    std::fs::write(
        &config,
        format!("[server.tls]\ncert = {:?}\nkey = {:?}\n", p(&pki.server_cert), p(&pki.client_key)),
    )
    .unwrap();
    let data = dir.path().join("data");
    let r = yunying(&["serve", "--config", p(&config), "--http", "127.0.0.1:0", "--dicom", "off", "--data", p(&data)]);
    assert!(!r.ok);
    assert!(r.out.contains("does not belong to the certificate") && r.out.contains("client.key"), "{}", r.out);
    let missing = dir.path().join("missing.crt");
    std::fs::write(&config, format!("[dicom.tls]\ncert = {:?}\nkey = {:?}\n", p(&missing), p(&pki.server_key))).unwrap();
    let r = yunying(&["serve", "--config", p(&config), "--http", "127.0.0.1:0", "--dicom", "off", "--data", p(&data)]);
    assert!(!r.ok);
    assert!(r.out.contains("missing.crt"), "{}", r.out);
}

// --- DICOM TLS -------------------------------------------------------------

#[tokio::test]
async fn dicom_tls_with_dcmtk_and_yunying_echo() {
    let pki = TestPki::create();
    let opts = TlsOptions { dicom: true, ..Default::default() };
    let s = TestServer::start_tls(Path::new(BIN), &pki, opts, &[]).await;
    s.cli(&["ae", "add", MODALITY, "--institution", "DEFAULT", "--allow", "store,query,retrieve"]);
    let port = s.dicom_tls_port();
    let client = Some((pki.client_cert.as_path(), pki.client_key.as_path()));

    // C-ECHO over TLS, with a client certificate and without one (no client_ca).
    let r = echoscu(port, &dcmtk_tls(client, &pki.ca));
    assert!(r.ok, "echoscu +tls: {}", r.out);
    let r = echoscu(port, &dcmtk_tls(None, &pki.ca));
    assert!(r.ok, "echoscu +tla: {}", r.out);
    // Plain DICOM on the TLS port, and a client that trusts another CA, fail.
    let r = echoscu(port, &["-to", "10", "-ta", "10"]);
    assert!(!r.ok, "plain echoscu to the TLS port: {}", r.out);
    let other_ca = pki.dir.join("other-ca.crt");
    let r = echoscu(port, &dcmtk_tls(client, &other_ca));
    assert!(!r.ok, "echoscu trusting another CA: {}", r.out);
    // The plain listener serves beside it.
    let r = echoscu(s.dicom_port(), &[]);
    assert!(r.ok, "plain echoscu: {}", r.out);

    // C-STORE over TLS, then C-FIND over TLS finds the study.
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("in");
    let plans = yunying_synth::plan(&SynthOptions {
        seed: 7,
        studies: 1,
        ct_slices: 3,
        rows: 64,
        columns: 64,
        end_date: "20250601".into(),
        ..Default::default()
    });
    yunying_synth::write_to_dir(&plans, &src).unwrap();
    let study = plans[0].study_uid.clone();
    let port_s = port.to_string();
    let mut args = dcmtk_tls(client, &pki.ca);
    args.extend(["-aet", MODALITY, "-aec", "YUNYING", "+sd", "+r", "127.0.0.1", &port_s, p(&src)]);
    let r = tool("storescu", &args);
    assert!(r.ok, "storescu +tls: {}", r.out);
    let out = tmp.path().join("find");
    std::fs::create_dir(&out).unwrap();
    let key = format!("StudyInstanceUID={study}");
    let mut args = dcmtk_tls(client, &pki.ca);
    args.extend(["-v", "-X", "-od", p(&out), "-aet", MODALITY, "-aec", "YUNYING", "-S"]);
    args.extend(["-k", "QueryRetrieveLevel=STUDY", "-k", &key]);
    args.extend(["127.0.0.1", &port_s]);
    let r = tool("findscu", &args);
    assert!(r.ok && r.out.contains("Received Final Find Response (Success)"), "findscu +tls: {}", r.out);
    let found: Vec<_> = std::fs::read_dir(&out).unwrap().flatten().collect();
    assert_eq!(found.len(), 1, "one matching study: {}", r.out);
    let rsp = std::fs::read(found[0].path()).unwrap();
    assert!(rsp.windows(study.len()).any(|w| w == study.as_bytes()), "the match carries the study UID");

    // `yunying echo` over TLS (trusting our CA, verifying the name 127.0.0.1).
    let peer = format!("YUNYING@127.0.0.1:{port}");
    let r = yunying(&["echo", &peer, "--ae-title", MODALITY, "--tls-ca", p(&pki.ca)]);
    assert!(r.ok && r.stdout.contains("success"), "yunying echo over TLS: {}", r.out);
    let r = yunying(&["echo", &peer, "--ae-title", MODALITY, "--tls-ca", p(&pki.ca), "--tls-server-name", "localhost"]);
    assert!(r.ok, "yunying echo with the DNS name: {}", r.out);
    // A name the certificate does not carry, another CA, or no TLS at all: refused.
    let r = yunying(&["echo", &peer, "--ae-title", MODALITY, "--tls-ca", p(&pki.ca), "--tls-server-name", "pacs.example.cn"]);
    assert!(!r.ok && r.out.contains("TLS"), "wrong server name: {}", r.out);
    let r = yunying(&["echo", &peer, "--ae-title", MODALITY, "--tls-ca", p(&other_ca)]);
    assert!(!r.ok && r.out.contains("TLS"), "another CA: {}", r.out);
    // Plain to the TLS port, and TLS to the plain port.
    let r = yunying(&["echo", &peer, "--ae-title", MODALITY]);
    assert!(!r.ok, "plain yunying echo to the TLS port: {}", r.out);
    let plain_peer = format!("YUNYING@127.0.0.1:{}", s.dicom_port());
    let r = yunying(&["echo", &plain_peer, "--ae-title", MODALITY, "--tls-ca", p(&pki.ca)]);
    assert!(!r.ok, "TLS to the plain port: {}", r.out);
}

#[tokio::test]
async fn mutual_tls_requires_a_client_certificate_from_the_ca() {
    let pki = TestPki::create();
    let opts = TlsOptions { dicom: true, mutual: true, ..Default::default() };
    let s = TestServer::start_tls(Path::new(BIN), &pki, opts, &["--dicom", "off"]).await;
    s.cli(&["ae", "add", MODALITY, "--institution", "DEFAULT", "--allow", "store,query"]);
    let port = s.dicom_tls_port();

    let r = echoscu(port, &dcmtk_tls(Some((&pki.client_cert, &pki.client_key)), &pki.ca));
    assert!(r.ok, "echoscu with our client certificate: {}", r.out);
    let r = echoscu(port, &dcmtk_tls(None, &pki.ca));
    assert!(!r.ok, "echoscu without a client certificate: {}", r.out);
    let r = echoscu(port, &dcmtk_tls(Some((&pki.stranger_cert, &pki.stranger_key)), &pki.ca));
    assert!(!r.ok, "echoscu with another CA's certificate: {}", r.out);

    let peer = format!("YUNYING@127.0.0.1:{port}");
    let r = yunying(&[
        "echo",
        &peer,
        "--ae-title",
        MODALITY,
        "--tls-ca",
        p(&pki.ca),
        "--tls-cert",
        p(&pki.client_cert),
        "--tls-key",
        p(&pki.client_key),
    ]);
    assert!(r.ok && r.stdout.contains("success"), "yunying echo with a client certificate: {}", r.out);
    let r = yunying(&["echo", &peer, "--ae-title", MODALITY, "--tls-ca", p(&pki.ca)]);
    assert!(!r.ok, "yunying echo without a client certificate: {}", r.out);
}
