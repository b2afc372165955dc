//! Test helpers: [`TestServer`] runs the real `yunying` binary on a free
//! port with its own data directory (over TLS with [`TestServer::start_tls`]
//! and the certificates of a [`TestPki`]); [`PgDatabase`] is a throw-away
//! PostgreSQL database on the local server; [`multipart_body`] builds a
//! STOW-RS request body; [`testdata`] and [`file_uids`] find the real test
//! files and what DCMTK reads in them.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The real test files (`scripts/fetch-testdata.sh`): `$YUNYING_TESTDATA`,
/// else `~/.cache/yunying/testdata`.
pub fn testdata() -> PathBuf {
    let dir = std::env::var("YUNYING_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/yunying/testdata"));
    assert!(dir.join("MANIFEST.txt").exists(), "test data missing in {}: run scripts/fetch-testdata.sh", dir.display());
    dir
}

/// Study, series and SOP Instance UIDs of a file, as DCMTK's `dcmdump` reads them.
pub fn file_uids(path: &Path) -> (String, String, String) {
    let out = Command::new("dcmdump")
        .args(["-Un", "+P", "0020,000d", "+P", "0020,000e", "+P", "0008,0018"])
        .arg(path)
        .output()
        .expect("dcmdump (DCMTK) runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let find = |tag: &str| {
        text.lines()
            .find(|l| l.starts_with(tag))
            .and_then(|l| Some(l.split('[').nth(1)?.split(']').next()?.trim_end_matches('\0').to_string()))
            .unwrap_or_else(|| panic!("{tag} missing in {}", path.display()))
    };
    (find("(0020,000d)"), find("(0020,000e)"), find("(0008,0018)"))
}

/// What a tool run by [`run_tool`] did.
#[derive(Debug, Clone)]
pub struct ToolRun {
    pub ok: bool,
    /// Standard output alone.
    pub stdout: String,
    /// Standard output and error together (DCMTK logs on stderr).
    pub out: String,
}

/// Runs a command to completion, killed (and the test failed) after `timeout`.
pub fn run_tool(mut cmd: Command, timeout: Duration) -> ToolRun {
    use std::io::{Read, Seek};
    let stdout = tempfile::tempfile().expect("temp file");
    let stderr = tempfile::tempfile().expect("temp file");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(stdout.try_clone().expect("temp file"))
        .stderr(stderr.try_clone().expect("temp file"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let read = |mut f: std::fs::File| {
        let mut s = Vec::new();
        f.rewind().expect("rewind");
        f.read_to_end(&mut s).expect("read");
        String::from_utf8_lossy(&s).into_owned()
    };
    let (o, e) = (read(stdout), read(stderr));
    ToolRun { ok: status.success(), out: format!("{o}{e}"), stdout: o }
}

/// The `yunying` binary running in a child process.
pub struct TestServer {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// The data directory (kept for the server's lifetime).
    pub data: PathBuf,
    /// `127.0.0.1:PORT` of the DICOM listener (`None` when turned off).
    pub dicom: Option<String>,
    /// `127.0.0.1:PORT` of the DICOM TLS listener (with [`TestServer::start_tls`]).
    pub dicom_tls: Option<String>,
    _dir: Option<tempfile::TempDir>,
    bin: PathBuf,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    /// The CA that signed the HTTPS certificate (health checks with curl).
    https_ca: Option<PathBuf>,
    /// Start a DICOM TLS listener (`--dicom-tls`).
    want_dicom_tls: bool,
    /// A region-wide API token with every data action (made with `yunying
    /// token create` before the first start): what [`TestServer::client`] sends.
    pub token: String,
}

/// What [`TestServer::start_tls`] turns on.
#[derive(Debug, Clone, Copy, Default)]
pub struct TlsOptions {
    /// HTTPS on the HTTP listener (`[server.tls]`).
    pub https: bool,
    /// The DICOM TLS listener (`[dicom.tls]`).
    pub dicom: bool,
    /// DICOM TLS requires client certificates signed by the test CA.
    pub mutual: bool,
}

impl TestServer {
    /// Starts `bin serve --http 127.0.0.1:0 --data <temp> <args>` and waits
    /// until `/healthz` answers 200.
    pub async fn start(bin: &Path, args: &[&str], envs: &[(&str, &str)]) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let mut s = TestServer::new(bin, data, Some(dir), args.iter().map(|s| s.to_string()).collect());
        s.envs = envs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        s.launch().await;
        s
    }

    /// Like [`TestServer::start`], with TLS as `opts` says, using the
    /// certificates of `pki` (a configuration file names them; the DICOM
    /// TLS listener is on a free port, see [`TestServer::dicom_tls_port`]).
    pub async fn start_tls(bin: &Path, pki: &TestPki, opts: TlsOptions, args: &[&str]) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let config = dir.path().join("yunying.toml");
        let q = |p: &Path| format!("{:?}", p.display().to_string());
        let mut toml = String::new();
        if opts.https {
            toml += &format!("[server.tls]\ncert = {}\nkey = {}\n", q(&pki.server_cert), q(&pki.server_key));
        }
        if opts.dicom {
            toml += &format!("[dicom.tls]\ncert = {}\nkey = {}\n", q(&pki.server_cert), q(&pki.server_key));
            if opts.mutual {
                toml += &format!("client_ca = {}\n", q(&pki.ca));
            }
        }
        std::fs::write(&config, toml).expect("write the configuration");
        let mut all = vec!["--config".to_string(), config.display().to_string()];
        all.extend(args.iter().map(|s| s.to_string()));
        let mut s = TestServer::new(bin, data, Some(dir), all);
        s.https_ca = opts.https.then(|| pki.ca.clone());
        s.want_dicom_tls = opts.dicom;
        s.launch().await;
        s
    }

    /// Like [`TestServer::start`], on an existing data directory (e.g. one a
    /// `yunying pull` or `import` filled), which is left in place afterwards.
    pub async fn start_with_data(bin: &Path, data: &Path, args: &[&str]) -> TestServer {
        let mut s = TestServer::new(bin, data.to_path_buf(), None, args.iter().map(|s| s.to_string()).collect());
        s.launch().await;
        s
    }

    /// A server not started yet.
    fn new(bin: &Path, data: PathBuf, dir: Option<tempfile::TempDir>, args: Vec<String>) -> TestServer {
        TestServer {
            child: None,
            base: String::new(),
            data,
            dicom: None,
            dicom_tls: None,
            _dir: dir,
            bin: bin.to_path_buf(),
            args,
            envs: Vec::new(),
            https_ca: None,
            want_dicom_tls: false,
            token: String::new(),
        }
    }

    /// The catalog and configuration arguments among the server's (for CLI runs on the same catalog).
    fn catalog_args(&self) -> Vec<String> {
        let mut out = Vec::new();
        for w in self.args.windows(2) {
            if w[0] == "--catalog-url" || w[0] == "--config" {
                out.extend([w[0].clone(), w[1].clone()]);
            }
        }
        out
    }

    /// Makes the test token (once, before the first start).
    fn mint_token(&mut self) {
        if !self.token.is_empty() {
            return;
        }
        std::fs::create_dir_all(&self.data).expect("data dir");
        let file = self.data.with_file_name("test-token");
        let file_arg = file.display().to_string();
        self.cli(&["token", "create", "--name", "tests", "--actions", "all", "--out", &file_arg]);
        self.token = std::fs::read_to_string(&file).expect("token file").trim().to_string();
    }

    /// An HTTP client that sends the test token.
    pub fn client(&self) -> reqwest::Client {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(
            reqwest::header::AUTHORIZATION,
            reqwest::header::HeaderValue::from_str(&format!("Bearer {}", self.token)).expect("token header"),
        );
        reqwest::Client::builder().default_headers(h).build().expect("http client")
    }

    /// `Authorization: Bearer <test token>`, for curl and other tools.
    pub fn auth_header(&self) -> String {
        format!("Authorization: Bearer {}", self.token)
    }

    /// Runs the CLI on this server's catalog with the given arguments (plus
    /// `--data` and the catalog arguments), returning (success, stdout, stderr).
    pub fn cli_result(&self, args: &[&str]) -> (bool, String, String) {
        let out = self.cli_command(args).output().expect("run yunying");
        (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string(), String::from_utf8_lossy(&out.stderr).to_string())
    }

    /// `yunying ARGS --data <data> <catalog args>` with the server's environment.
    fn cli_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .arg("--data")
            .arg(&self.data)
            .args(self.catalog_args())
            .envs(self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        cmd
    }

    async fn launch(&mut self) {
        self.mint_token();
        let mut cmd = Command::new(&self.bin);
        cmd.arg("serve").arg("--http").arg("127.0.0.1:0").arg("--data").arg(&self.data);
        if !self.args.iter().any(|a| a == "--dicom") {
            // A free port: tests run side by side.
            cmd.arg("--dicom").arg(self.dicom.as_deref().unwrap_or("127.0.0.1:0"));
        }
        if self.want_dicom_tls {
            cmd.arg("--dicom-tls").arg(self.dicom_tls.as_deref().unwrap_or("127.0.0.1:0"));
        }
        cmd.args(&self.args);
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        cmd.env("YUNYING_LOG", std::env::var("YUNYING_TEST_LOG").unwrap_or_else(|_| "warn".into()));
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin.display()));
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("yunying: listening on ") {
                    let _ = tx.send(addr.trim().to_string());
                }
                if let Some(rest) = line.strip_prefix("yunying: dicom listening on ") {
                    let addr = rest.split_whitespace().next().unwrap_or_default();
                    let _ = tx.send(format!("dicom {addr}"));
                }
                if let Some(rest) = line.strip_prefix("yunying: dicom tls listening on ") {
                    let addr = rest.split_whitespace().next().unwrap_or_default();
                    let _ = tx.send(format!("dicomtls {addr}"));
                }
            }
        });
        let dicom_off = self.args.windows(2).any(|w| w[0] == "--dicom" && w[1] == "off");
        let (mut base, mut dicom, mut dicom_tls) = (None, None, None);
        while base.is_none() || (dicom.is_none() && !dicom_off) || (dicom_tls.is_none() && self.want_dicom_tls) {
            let line = rx.recv_timeout(Duration::from_secs(60)).expect("the server printed no listening address");
            if let Some(addr) = line.strip_prefix("dicom ") {
                dicom = Some(addr.to_string());
            } else if let Some(addr) = line.strip_prefix("dicomtls ") {
                dicom_tls = Some(addr.to_string());
            } else {
                base = Some(line);
            }
        }
        if dicom_tls.is_some() {
            self.dicom_tls = dicom_tls;
        }
        self.base = base.expect("address");
        // On restart, the DICOM port stays the same (clients keep their address).
        if dicom.is_some() {
            self.dicom = dicom;
        }
        self.child = Some(child);
        self.wait_healthy(Duration::from_secs(120)).await;
    }

    /// Waits for `/healthz` to answer 200.
    pub async fn wait_healthy(&mut self, within: Duration) {
        let started = Instant::now();
        let client = reqwest::Client::new();
        loop {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!("the server exited during start-up: {status}");
            }
            if let Some(ca) = &self.https_ca {
                let code = Command::new("curl")
                    .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
                    .arg(ca)
                    .arg(format!("{}/healthz", self.base))
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
                    .unwrap_or_default();
                if code == "200" {
                    return;
                }
            } else if let Ok(r) = client.get(format!("{}/healthz", self.base)).send().await
                && r.status() == 200
            {
                return;
            }
            if started.elapsed() > within {
                panic!("the server did not become healthy within {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The DICOM listener's port.
    pub fn dicom_port(&self) -> u16 {
        let addr = self.dicom.as_deref().expect("the DICOM listener is off");
        addr.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port")
    }

    /// The DICOM TLS listener's port.
    pub fn dicom_tls_port(&self) -> u16 {
        let addr = self.dicom_tls.as_deref().expect("no DICOM TLS listener (start_tls with dicom)");
        addr.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port")
    }

    /// Runs `yunying ARGS --data <this server's data>` (the CLI on the same
    /// data directory, e.g. `ae add`), returning stdout; panics on failure.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = self.cli_command(args).output().expect("run yunying");
        assert!(
            out.status.success(),
            "yunying {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// The DICOMweb root.
    pub fn dicomweb(&self) -> String {
        format!("{}/dicom-web", self.base)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Peak resident memory of the server so far, in KiB (VmHWM).
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// Stops with SIGTERM and waits.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills with SIGKILL, as a crash or power cut would.
    pub fn crash(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts again on the same data directory (after [`stop`] or [`crash`]).
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "stop or crash the server first");
        self.launch().await;
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.crash();
    }
}

/// A throw-away PKI made at test time with the `openssl` command: a CA,
/// a server certificate for 127.0.0.1 and localhost, a client certificate
/// (CN `MODALITY`), and a stranger: a client certificate from another CA.
/// RSA 2048 keys (PKCS#8 PEM), valid two days.
pub struct TestPki {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// Signed by another CA, which the server does not trust.
    pub stranger_cert: PathBuf,
    pub stranger_key: PathBuf,
    pub dir: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestPki {
    pub fn create() -> TestPki {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().to_path_buf();
        let ca_ext = "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n";
        let leaf = |eku: &str, san: &str| {
            format!(
                "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
                 extendedKeyUsage={eku}\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n{san}"
            )
        };
        let ca = issue(&dir, "ca", "/CN=Yunying Test CA", ca_ext, None);
        let other = issue(&dir, "other-ca", "/CN=Another CA", ca_ext, None);
        let server =
            issue(&dir, "server", "/CN=localhost", &leaf("serverAuth", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"), Some(&ca));
        let client = issue(&dir, "client", "/CN=MODALITY", &leaf("clientAuth", ""), Some(&ca));
        let stranger = issue(&dir, "stranger", "/CN=STRANGER", &leaf("clientAuth", ""), Some(&other));
        TestPki {
            ca: ca.0,
            server_cert: server.0,
            server_key: server.1,
            client_cert: client.0,
            client_key: client.1,
            stranger_cert: stranger.0,
            stranger_key: stranger.1,
            dir,
            _dir: tmp,
        }
    }
}

/// Makes `NAME.key` and `NAME.crt` under `dir`, signed by `ca` (cert, key)
/// or self-signed; returns (cert, key).
fn issue(dir: &Path, name: &str, subject: &str, ext: &str, ca: Option<&(PathBuf, PathBuf)>) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{name}.key"));
    let csr = dir.join(format!("{name}.csr"));
    let crt = dir.join(format!("{name}.crt"));
    let extfile = dir.join(format!("{name}.ext"));
    std::fs::write(&extfile, ext).unwrap();
    let openssl = |args: &[&std::ffi::OsStr]| {
        let out = Command::new("openssl").args(args).output().expect("run openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let os = |s: &str| std::ffi::OsStr::new(s).to_owned();
    openssl(&[&os("genpkey"), &os("-algorithm"), &os("RSA"), &os("-pkeyopt"), &os("rsa_keygen_bits:2048"), &os("-out"), key.as_os_str()]);
    openssl(&[&os("req"), &os("-new"), &os("-key"), key.as_os_str(), &os("-subj"), &os(subject), &os("-out"), csr.as_os_str()]);
    let serial = format!("0x{:016x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64);
    let mut args: Vec<std::ffi::OsString> = ["x509", "-req", "-days", "2", "-sha256", "-set_serial", &serial, "-in"].map(os).to_vec();
    args.push(csr.clone().into());
    match ca {
        Some((ca_crt, ca_key)) => {
            args.extend([os("-CA"), ca_crt.clone().into(), os("-CAkey"), ca_key.clone().into()]);
        }
        None => args.extend([os("-signkey"), key.clone().into()]),
    }
    args.extend([os("-extfile"), extfile.into(), os("-out"), crt.clone().into()]);
    openssl(&args.iter().map(|a| a.as_os_str()).collect::<Vec<_>>());
    (crt, key)
}

/// A throw-away PostgreSQL database on the local server (see
/// `YUNYING_TEST_PG`), dropped with the value.
pub struct PgDatabase {
    pub url: String,
}

impl PgDatabase {
    pub async fn create(prefix: &str) -> PgDatabase {
        PgDatabase { url: yunying_index_postgres::testing::create_database(prefix).await }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let url = self.url.clone();
        // Drop from a fresh runtime: Drop may run inside or outside one.
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                rt.block_on(yunying_index_postgres::testing::drop_database(&url));
            }
        })
        .join();
    }
}

/// A `multipart/related; type="application/dicom"` body and its Content-Type.
pub fn multipart_body(parts: &[Vec<u8>]) -> (String, Vec<u8>) {
    let boundary = "yunying-test-boundary-7d1f3a";
    let mut body = Vec::new();
    for p in parts {
        body.extend_from_slice(format!("--{boundary}\r\nContent-Type: application/dicom\r\n\r\n").as_bytes());
        body.extend_from_slice(p);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/related; type=\"application/dicom\"; boundary={boundary}"), body)
}

/// Splits a multipart response body into its parts' bodies.
pub fn multipart_parts(content_type: &str, body: &[u8]) -> Vec<Vec<u8>> {
    let boundary = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .map(|b| b.trim_matches('"').to_string())
        .expect("boundary");
    let delim = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut rest = body;
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    while let Some(start) = find(rest, delim.as_bytes()) {
        rest = &rest[start + delim.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let Some(hdr_end) = find(rest, b"\r\n\r\n") else { break };
        let content = &rest[hdr_end + 4..];
        let end = find(content, format!("\r\n{delim}").as_bytes()).unwrap_or(content.len());
        parts.push(content[..end].to_vec());
        rest = &content[end..];
    }
    parts
}

/// A real S3-compatible server for the storage tier tests: moto's standalone
/// server (pinned in `tests/python/requirements.txt`, installed by
/// `scripts/setup-deps.sh` into the test venv), on a free loopback port,
/// killed on drop. Unlike s3s-fs it holds the archive's long keys.
pub struct S3TestServer {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
}

/// The access key the tests use (moto accepts any).
pub const S3_TEST_ACCESS_KEY: &str = "yunying-test";
/// The secret the tests use.
pub const S3_TEST_SECRET_KEY: &str = "moto-secret-Never-Logged";

impl S3TestServer {
    /// The moto server program: `$YUNYING_MOTO_SERVER`, else the test venv's.
    fn program() -> PathBuf {
        if let Ok(p) = std::env::var("YUNYING_MOTO_SERVER") {
            return PathBuf::from(p);
        }
        let venv = std::env::var("YUNYING_VENV")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/yunying/venv"));
        venv.join("bin/moto_server")
    }

    /// Starts the server and waits until it answers.
    pub async fn start() -> S3TestServer {
        let program = Self::program();
        assert!(
            program.is_file(),
            "{} is missing: run scripts/setup-deps.sh (it installs the Python test tools, moto among them)",
            program.display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let s = S3TestServer { child, endpoint: format!("http://127.0.0.1:{port}") };
        let started = Instant::now();
        let client = reqwest::Client::new();
        while client.get(format!("{}/", s.endpoint)).send().await.is_err() {
            assert!(started.elapsed() < Duration::from_secs(60), "moto_server did not answer within a minute");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        s
    }

    /// Creates a bucket.
    pub async fn create_bucket(&self, bucket: &str) {
        let r = reqwest::Client::new().put(format!("{}/{bucket}", self.endpoint)).send().await.expect("create bucket");
        assert!(r.status().is_success(), "create bucket {bucket}: {}", r.status());
    }

    /// Turns versioning on, so that every upload of a key leaves a version
    /// ([`S3TestServer::versions`] then counts uploads per key).
    pub async fn enable_versioning(&self, bucket: &str) {
        let body = "<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Status>Enabled</Status></VersioningConfiguration>";
        let r = reqwest::Client::new()
            .put(format!("{}/{bucket}?versioning", self.endpoint))
            .body(body)
            .send()
            .await
            .expect("versioning");
        assert!(r.status().is_success(), "versioning on {bucket}: {}", r.status());
    }

    /// How many versions (uploads) each key of a versioned bucket has, and
    /// how many delete markers (first 1000 entries).
    pub async fn versions(&self, bucket: &str) -> (std::collections::BTreeMap<String, usize>, usize) {
        let body = reqwest::Client::new()
            .get(format!("{}/{bucket}?versions&max-keys=1000", self.endpoint))
            .send()
            .await
            .expect("list versions")
            .text()
            .await
            .expect("list body");
        let mut counts = std::collections::BTreeMap::new();
        for v in body.split("<Version>").skip(1) {
            if let Some(k) = v.split("<Key>").nth(1).and_then(|s| s.split("</Key>").next()) {
                *counts.entry(k.to_string()).or_insert(0) += 1;
            }
        }
        (counts, body.matches("<DeleteMarker>").count())
    }

    /// The keys in a bucket (first 1000), read with a plain listing request.
    pub async fn keys(&self, bucket: &str) -> Vec<String> {
        let body = reqwest::Client::new()
            .get(format!("{}/{bucket}?list-type=2&max-keys=1000", self.endpoint))
            .send()
            .await
            .expect("list")
            .text()
            .await
            .expect("list body");
        body.split("<Key>").skip(1).filter_map(|s| s.split("</Key>").next()).map(|s| s.to_string()).collect()
    }

    /// A `[<section>.s3]` block for a bucket of this server (credentials come
    /// from the environment of [`S3TestServer::env`]).
    pub fn toml(&self, section: &str, bucket: &str) -> String {
        format!(
            "[{section}.s3]\nendpoint = \"{}\"\nbucket = \"{bucket}\"\nregion = \"us-east-1\"\nallow_http = true\n",
            self.endpoint
        )
    }

    /// The credential variables for a store whose variables start with `prefix`
    /// (`YUNYING_S3`, `YUNYING_CLOUD_S3`, `YUNYING_STORE_<NAME>_S3`).
    pub fn env(prefix: &str) -> Vec<(String, String)> {
        vec![
            (format!("{prefix}_ACCESS_KEY_ID"), S3_TEST_ACCESS_KEY.to_string()),
            (format!("{prefix}_SECRET_ACCESS_KEY"), S3_TEST_SECRET_KEY.to_string()),
        ]
    }
}

impl Drop for S3TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Synthetic studies as Part-10 files (`yunying synth --out`), sorted:
/// dated within the last three years, UIDs fixed by the seed.
pub fn synth_files(bin: &Path, dir: &Path, seed: u64, studies: usize, slices: usize) -> Vec<PathBuf> {
    let out = Command::new(bin)
        .args(["synth", "--out", dir.to_str().expect("utf-8 path"), "--studies", &studies.to_string()])
        .args(["--slices", &slices.to_string(), "--seed", &seed.to_string()])
        .output()
        .expect("run yunying synth");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir") {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "dcm") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

impl TestServer {
    /// Stores files with STOW-RS, 25 per request, each request answered 200.
    pub async fn stow_files(&self, files: &[PathBuf]) {
        let c = self.client();
        for chunk in files.chunks(25) {
            let parts: Vec<Vec<u8>> = chunk.iter().map(|f| std::fs::read(f).expect("read file")).collect();
            let (ct, body) = multipart_body(&parts);
            let r = c.post(format!("{}/studies", self.dicomweb())).header("Content-Type", ct).body(body).send().await.expect("STOW-RS");
            let status = r.status();
            assert_eq!(status, 200, "{}", r.text().await.unwrap_or_default());
        }
    }
}
