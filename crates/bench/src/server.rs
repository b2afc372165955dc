//! The servers under test, each a child process on loopback with a fresh
//! data directory: Yunying (SQLite or PostgreSQL catalog) and Orthanc with
//! its DICOMweb plugin.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What is measured: the columns of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Product {
    YunyingSqlite,
    YunyingPostgres,
    Orthanc,
}

impl Product {
    pub fn title(self) -> &'static str {
        match self {
            Product::YunyingSqlite => "Yunying (SQLite)",
            Product::YunyingPostgres => "Yunying (PostgreSQL)",
            Product::Orthanc => "Orthanc",
        }
    }

    pub fn short(self) -> &'static str {
        match self {
            Product::YunyingSqlite => "SQLite",
            Product::YunyingPostgres => "PostgreSQL",
            Product::Orthanc => "Orthanc",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Product::YunyingSqlite => "yunying_sqlite",
            Product::YunyingPostgres => "yunying_postgres",
            Product::Orthanc => "orthanc",
        }
    }

    pub fn is_yunying(self) -> bool {
        self != Product::Orthanc
    }
}

/// How to start the servers.
#[derive(Debug, Clone)]
pub struct Launch {
    pub yunying: PathBuf,
    pub orthanc: PathBuf,
    pub orthanc_plugin: PathBuf,
    /// Parent of the fresh data directories (must be on real storage, not tmpfs).
    pub work_root: PathBuf,
    /// The DICOM peers the servers know (Orthanc's `DicomModalities`; for
    /// Yunying, registered with `yunying ae add` by [`Server::register_peers`]).
    pub peers: Vec<Peer>,
}

/// A remote DICOM AE declared to the servers: the bench's SCUs (calling AE)
/// and the local `storescp` that C-MOVE sends to.
#[derive(Debug, Clone)]
pub struct Peer {
    pub ae_title: String,
    /// Where it listens on 127.0.0.1 (a C-MOVE destination must have one).
    pub port: u16,
    /// `yunying ae add --allow` words.
    pub allow: &'static str,
}

/// What `yunying derive --json` says of the streaming copies (instances).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeriveBacklog {
    pub made: u64,
    pub wanted: u64,
    pub failed: u64,
    pub last_error: Option<String>,
}

/// A running server.
pub struct Server {
    pub product: Product,
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// The DICOMweb root, `http://127.0.0.1:PORT/dicom-web`.
    pub dicomweb: String,
    pub log: PathBuf,
    /// The DICOM listener, `127.0.0.1:PORT`, and the AE title it answers to.
    pub dicom: Option<(String, String)>,
    /// The server's data directory (Yunying) or storage directory (Orthanc).
    pub data_dir: PathBuf,
    dir: Option<tempfile::TempDir>,
    pg_url: Option<String>,
    /// Yunying's API token (Orthanc needs none).
    token: Option<String>,
}

impl Server {
    /// A keep-alive client carrying this server's credential.
    pub fn client(&self) -> reqwest::Client {
        crate::measure::client_with(self.token.as_deref())
    }
}

pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(5)).build().expect("http client")
}

/// A throw-away PostgreSQL database (`yunying_index_postgres::testing`);
/// a panic there (no server) becomes an error.
pub async fn create_pg_database() -> Result<String, String> {
    match tokio::spawn(yunying_index_postgres::testing::create_database("yybench")).await {
        Ok(url) => Ok(url),
        Err(e) if e.is_panic() => {
            let p = e.into_panic();
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown error".into());
            Err(format!("cannot create a PostgreSQL database: {msg}"))
        }
        Err(e) => Err(format!("cannot create a PostgreSQL database: {e}")),
    }
}

impl Server {
    /// Starts a fresh server of `product` (a fresh PostgreSQL database for
    /// Yunying on PostgreSQL) and waits until it is ready.
    pub async fn start(product: Product, launch: &Launch) -> Result<Server, String> {
        let dir = tempfile::Builder::new()
            .prefix("yunying-bench-")
            .tempdir_in(&launch.work_root)
            .map_err(|e| format!("cannot make a directory in {}: {e}", launch.work_root.display()))?;
        let log = dir.path().join("server.log");
        let mut server = Server {
            product,
            child: None,
            base: String::new(),
            dicomweb: String::new(),
            log: log.clone(),
            dicom: None,
            data_dir: dir.path().join(if product.is_yunying() { "data" } else { "db" }),
            dir: None,
            pg_url: None,
            token: None,
        };
        let result = match product {
            Product::YunyingSqlite => server.start_yunying(launch, dir.path(), None).await,
            Product::YunyingPostgres => match create_pg_database().await {
                Ok(url) => {
                    server.pg_url = Some(url.clone());
                    server.start_yunying(launch, dir.path(), Some(url)).await
                }
                Err(e) => Err(e),
            },
            Product::Orthanc => server.start_orthanc(launch, dir.path()).await,
        };
        server.dir = Some(dir);
        match result {
            Ok(()) => Ok(server),
            Err(e) => {
                let tail = std::fs::read_to_string(&log)
                    .map(|t| {
                        t.lines().rev().take(15).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
                    })
                    .unwrap_or_default();
                server.stop().await;
                if tail.trim().is_empty() { Err(e) } else { Err(format!("{e}\n--- last lines of its log:\n{tail}")) }
            }
        }
    }

    async fn start_yunying(&mut self, launch: &Launch, dir: &Path, pg: Option<String>) -> Result<(), String> {
        // Every DICOMweb request needs a credential: a region-wide token.
        let token_file = dir.join("token");
        let mut mint = Command::new(&launch.yunying);
        mint.args(["token", "create", "--name", "bench", "--actions", "all", "--out"]).arg(&token_file);
        mint.arg("--data").arg(dir.join("data"));
        if let Some(url) = &pg {
            mint.arg("--catalog-url").arg(url);
        }
        mint.env("YUNYING_LOG", "warn");
        let out = mint.output().map_err(|e| format!("cannot run yunying token create: {e}"))?;
        if !out.status.success() {
            return Err(format!("yunying token create failed: {}", String::from_utf8_lossy(&out.stderr)));
        }
        self.token = Some(std::fs::read_to_string(&token_file).map_err(|e| e.to_string())?.trim().to_string());
        let mut cmd = Command::new(&launch.yunying);
        // The DICOM listener on a free port (its default, 11112, may be taken).
        cmd.arg("serve").arg("--http").arg("127.0.0.1:0").arg("--dicom").arg("127.0.0.1:0");
        cmd.arg("--data").arg(dir.join("data"));
        if let Some(url) = &pg {
            cmd.arg("--catalog-url").arg(url);
        }
        for v in [
            "YUNYING_CONFIG",
            "YUNYING_DATA",
            "YUNYING_HTTP",
            "YUNYING_DICOM",
            "YUNYING_CATALOG_URL",
            "YUNYING_PUBLIC_URL",
        ] {
            cmd.env_remove(v);
        }
        cmd.env("YUNYING_LOG", std::env::var("YUNYING_BENCH_LOG").unwrap_or_else(|_| "warn".into()));
        let log = std::fs::File::create(&self.log).map_err(|e| e.to_string())?;
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(log);
        let mut child = cmd.spawn().map_err(|e| format!("cannot start {}: {e}", launch.yunying.display()))?;
        let stdout = child.stdout.take().expect("stdout");
        self.child = Some(child);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Keeps reading so that the server never blocks on a full pipe.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("yunying: listening on ") {
                    let _ = tx.send((false, addr.trim().to_string()));
                } else if let Some(rest) = line.strip_prefix("yunying: dicom listening on ") {
                    // "ADDR as AE"
                    let _ = tx.send((true, rest.trim().to_string()));
                }
            }
        });
        let started = Instant::now();
        let base = loop {
            match rx.try_recv() {
                Ok((false, a)) => break a,
                Ok((true, a)) => {
                    let (addr, ae) = a.split_once(" as ").unwrap_or((a.as_str(), "YUNYING"));
                    self.dicom = Some((addr.trim().to_string(), ae.trim().to_string()));
                }
                Err(std::sync::mpsc::TryRecvError::Empty) => {}
                Err(_) => return Err(self.exit_message("yunying closed its output without a listening address")),
            }
            self.check_alive("yunying")?;
            if started.elapsed() > Duration::from_secs(60) {
                return Err("yunying printed no listening address within 60 s".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        self.base = base.trim_end_matches('/').to_string();
        self.dicomweb = format!("{}/dicom-web", self.base);
        self.wait_ready(&format!("{}/healthz", self.base), "yunying").await?;
        // The DICOM line is printed before the HTTP one.
        while let Ok((dicom, a)) = rx.try_recv() {
            if dicom {
                let (addr, ae) = a.split_once(" as ").unwrap_or((a.as_str(), "YUNYING"));
                self.dicom = Some((addr.trim().to_string(), ae.trim().to_string()));
            }
        }
        Ok(())
    }

    /// Registers the bench's DICOM peers with a running Yunying
    /// (`yunying ae add ... --institution DEFAULT`); nothing for Orthanc,
    /// whose `DicomModalities` already list them.
    pub async fn register_peers(&self, launch: &Launch) -> Result<(), String> {
        if !self.product.is_yunying() {
            return Ok(());
        }
        for peer in &launch.peers {
            let port = peer.port.to_string();
            let args = ["ae", "add", &peer.ae_title, "--institution", "DEFAULT", "--allow", peer.allow];
            let mut cmd = self.cli(launch, &args);
            cmd.args(["--host", "127.0.0.1", "--port", &port]);
            let out = tokio::task::spawn_blocking(move || cmd.output())
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("cannot run yunying ae add: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "yunying ae add {} failed ({}): {}{}",
                    peer.ae_title,
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        Ok(())
    }

    /// `yunying <args>` on this server's data directory and catalog, beside
    /// the running server (Yunying only).
    fn cli(&self, launch: &Launch, args: &[&str]) -> Command {
        let mut cmd = Command::new(&launch.yunying);
        cmd.args(args).arg("--data").arg(&self.data_dir);
        if let Some(url) = &self.pg_url {
            cmd.arg("--catalog-url").arg(url);
        }
        for v in ["YUNYING_CONFIG", "YUNYING_DATA", "YUNYING_CATALOG_URL"] {
            cmd.env_remove(v);
        }
        cmd.env("YUNYING_LOG", "warn");
        cmd
    }

    /// The streaming copies' queue, from `yunying derive --json` (Yunying only).
    pub async fn derive_backlog(&self, launch: &Launch) -> Result<DeriveBacklog, String> {
        if !self.product.is_yunying() {
            return Err("Orthanc makes no streaming copy".into());
        }
        let mut cmd = self.cli(launch, &["derive", "--json"]);
        let out = tokio::task::spawn_blocking(move || cmd.output())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("cannot run yunying derive: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "yunying derive --json failed ({}): {text}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let j: serde_json::Value = serde_json::from_str(text.trim())
            .map_err(|e| format!("yunying derive --json printed {:?}: {e}", text.trim()))?;
        let count = |k: &str| j[k].as_u64().ok_or_else(|| format!("yunying derive --json: no {k:?} in {j}"));
        Ok(DeriveBacklog {
            made: count("made")?,
            wanted: count("wanted")?,
            failed: count("failed")?,
            last_error: j["last_error"].as_str().map(str::to_string),
        })
    }

    async fn start_orthanc(&mut self, launch: &Launch, dir: &Path) -> Result<(), String> {
        if !launch.orthanc.exists() {
            return Err(format!("{} not found (apt-get install orthanc orthanc-dicomweb)", launch.orthanc.display()));
        }
        if !launch.orthanc_plugin.exists() {
            return Err(format!("the DICOMweb plugin {} is not installed", launch.orthanc_plugin.display()));
        }
        let http = free_port().map_err(|e| e.to_string())?;
        let dicom = free_port().map_err(|e| e.to_string())?;
        let db = dir.join("db");
        let tmp = dir.join("tmp");
        std::fs::create_dir_all(&db).map_err(|e| e.to_string())?;
        std::fs::create_dir_all(&tmp).map_err(|e| e.to_string())?;
        // The configuration of shared/notes/orthanc-reference.md: durable
        // writes, no compression, TCP_NODELAY, the DICOMweb plugin.
        // The bench's peers: the SCUs' calling AE and the C-MOVE destination.
        let modalities: serde_json::Map<String, serde_json::Value> = launch
            .peers
            .iter()
            .map(|p| (p.ae_title.to_lowercase(), serde_json::json!([p.ae_title, "127.0.0.1", p.port])))
            .collect();
        let config = serde_json::json!({
            "Name": "Reference",
            "StorageDirectory": db, "IndexDirectory": db, "TemporaryDirectory": tmp,
            "StorageCompression": false, "SyncStorageArea": true,
            "Plugins": [launch.orthanc_plugin],
            "HttpPort": http, "DicomPort": dicom, "DicomAet": "ORTHANC", "DicomCheckCalledAet": false,
            "RemoteAccessAllowed": false, "AuthenticationEnabled": false,
            "TcpNoDelay": true, "KeepAlive": true, "DicomThreadsCount": 4, "HttpThreadsCount": 50,
            "DicomModalities": modalities,
            "DicomWeb": { "Enable": true, "Root": "/dicom-web/", "StudiesMetadata": "Full", "SeriesMetadata": "Full" }
        });
        let cfg = dir.join("orthanc.json");
        std::fs::write(&cfg, serde_json::to_vec_pretty(&config).expect("json")).map_err(|e| e.to_string())?;
        let log = std::fs::File::create(&self.log).map_err(|e| e.to_string())?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = Command::new(&launch.orthanc);
        cmd.arg(&cfg).current_dir(dir).env("TCP_NODELAY", "1");
        cmd.stdin(Stdio::null()).stdout(log).stderr(log2);
        let child = cmd.spawn().map_err(|e| format!("cannot start {}: {e}", launch.orthanc.display()))?;
        self.child = Some(child);
        self.base = format!("http://127.0.0.1:{http}");
        self.dicomweb = format!("{}/dicom-web", self.base);
        self.dicom = Some((format!("127.0.0.1:{dicom}"), "ORTHANC".into()));
        self.wait_ready(&format!("{}/system", self.base), "Orthanc").await?;
        // The plugin must be loaded, else there is no DICOMweb to measure.
        let plugins = client()
            .get(format!("{}/plugins", self.base))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .text()
            .await
            .unwrap_or_default();
        if !plugins.contains("dicom-web") {
            return Err(format!("Orthanc started without its DICOMweb plugin (plugins: {plugins})"));
        }
        Ok(())
    }

    fn exit_message(&mut self, what: &str) -> String {
        match self.child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(Some(status))) => format!("{what} ({status})"),
            _ => what.to_string(),
        }
    }

    fn check_alive(&mut self, name: &str) -> Result<(), String> {
        if let Some(c) = self.child.as_mut()
            && let Ok(Some(status)) = c.try_wait()
        {
            return Err(format!("{name} exited during start-up: {status} (log: {})", self.log.display()));
        }
        Ok(())
    }

    async fn wait_ready(&mut self, url: &str, name: &str) -> Result<(), String> {
        let started = Instant::now();
        let c = client();
        loop {
            self.check_alive(name)?;
            if let Ok(r) = c.get(url).send().await
                && r.status() == 200
            {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(120) {
                return Err(format!("{name} was not ready within 120 s ({url})"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Peak resident set size of the server process so far (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.split_whitespace().next()?.parse().ok()
    }

    /// CPU time the server process has used so far (user + system), in seconds.
    pub fn cpu_seconds(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).ok()?;
        // Fields after the command name, which is in parentheses: utime is the 14th field overall.
        let rest = &stat[stat.rfind(')')? + 1..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let (utime, stime): (f64, f64) = (f.get(11)?.parse().ok()?, f.get(12)?.parse().ok()?);
        let tck = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        Some((utime + stime) / if tck > 0.0 { tck } else { 100.0 })
    }

    /// Stops the server (SIGTERM, then SIGKILL after 30 s), drops its
    /// PostgreSQL database, removes its data and flushes the page cache's
    /// dirty pages so that the next measurement does not pay for them.
    pub async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                if Instant::now() > deadline {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        if let Some(url) = self.pg_url.take() {
            yunying_index_postgres::testing::drop_database(&url).await;
        }
        if let Some(dir) = self.dir.take() {
            let _ = tokio::task::spawn_blocking(move || drop(dir)).await;
        }
        let _ = tokio::task::spawn_blocking(|| unsafe { libc::sync() }).await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(url) = self.pg_url.take() {
            let _ = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    rt.block_on(yunying_index_postgres::testing::drop_database(&url));
                }
            })
            .join();
        }
    }
}

/// `Orthanc --version`, first line.
pub fn orthanc_version(bin: &Path) -> Option<String> {
    let out = Command::new(bin).arg("--version").output().ok()?;
    // "/usr/sbin/Orthanc 1.10.1": the version is the last word.
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.lines().next().and_then(|l| l.split_whitespace().last()).map(str::to_string)
}
