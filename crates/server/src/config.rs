//! Configuration in two stages: [`RawConfig`] mirrors the TOML file (every
//! field optional); [`Settings::resolve`] layers defaults < file < environment
//! (`YUNYING_*`) < command-line flags and validates the result.
//! `yunying default-config` prints [`EXAMPLE`], a commented example.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The commented example configuration (`yunying default-config`).
pub const EXAMPLE: &str = r#"# Yunying (云影) configuration.
# Every setting is optional: `yunying serve` with no configuration runs on
# ./yunying-data with SQLite and filesystem blobs. Environment variables
# (YUNYING_HTTP, YUNYING_DATA, YUNYING_CATALOG_URL, YUNYING_PUBLIC_URL,
# YUNYING_LOG) override this file; command-line flags override both.

[server]
# Address of the HTTP listener (DICOMweb under /dicom-web, /healthz).
http = "127.0.0.1:8080"
# Where the platform keeps its data: the SQLite catalog, the blobs, the
# staging area. Must be on durable local storage.
data = "./yunying-data"
# The URL clients reach this server at, when it sits behind a gateway or a
# load balancer (used in RetrieveURL and BulkDataURI). Default: derived from
# each request's Host header.
# public_url = "https://pacs.example.cn"
# Proxies (the TLCP gateway, a load balancer) whose X-Forwarded-For header
# names the client, for the audit trail and rate limits. Others' is ignored.
# trusted_proxies = ["10.0.0.2"]

# HTTPS on the HTTP listener (TLS 1.2/1.3, HTTP/2 and HTTP/1.1). Without this
# section the listener speaks plain HTTP (behind a gateway that terminates TLS).
# [server.tls]
# cert = "/etc/yunying/tls/server.crt"   # PEM chain: the server's certificate first
# key = "/etc/yunying/tls/server.key"    # PEM key: PKCS#8, RSA or EC

[catalog]
# The catalog database. Default: SQLite at <data>/catalog.db.
# For several nodes, point every node at the same PostgreSQL database:
# url = "postgres://yunying@db.example.cn:5432/yunying"
# Connections per node (PostgreSQL).
max_connections = 16

[storage]
# Where original objects (and derived data) are kept: "fs", files under
# `path` on durable local storage, or "s3", an S3-compatible bucket (MinIO,
# Ceph RGW, Alibaba OSS...) described in [storage.s3].
kind = "fs"
# For kind = "fs". Default: <data>/blobs.
# path = "/srv/yunying/blobs"

# For kind = "s3". Every object's SHA-256 is recorded in its metadata
# (x-amz-meta-sha256) and checked when it is read whole; large objects go up
# in parts. Give the bucket a lifecycle rule that removes incomplete multipart
# uploads after a day (they are left behind only by a crash).
# Example, Alibaba OSS (virtual-hosted style, region id as the region):
# [storage.s3]
# endpoint = "https://s3.oss-cn-hangzhou.aliyuncs.com"
# bucket = "yunying-archive"
# region = "cn-hangzhou"
# virtual_hosted = true
# prefix = "pacs"                     # a folder inside the bucket (optional)
# access_key_id = "LTAI5t..."         # env YUNYING_S3_ACCESS_KEY_ID
# The secret is never written here: env YUNYING_S3_SECRET_ACCESS_KEY, or a
# file readable only by the service account:
# secret_access_key_file = "/etc/yunying/s3.secret"
# MinIO / Ceph RGW: path style (the default), region "us-east-1":
# endpoint = "https://minio.example.cn:9000"
# virtual_hosted = false
# Plain http:// endpoints are refused unless allowed (a store on a
# protected network only):
# allow_http = false
# Objects above this size go up in parts of this size (MiB, at least 5),
# this many parts at once:
# part_size_mib = 16
# upload_concurrency = 2
# Check the recorded SHA-256 when an object is read whole:
# verify_reads = true

# The cloud tier (the provincial health cloud): exams of the last `years`
# years are copied there by a durable queue after they are stored (retried,
# visible in `yunying storage status` and GET /api/jobs) and leave it when
# older. Reads fall back to it when the local tier lacks an object.
# Credentials: env YUNYING_CLOUD_S3_ACCESS_KEY_ID / _SECRET_ACCESS_KEY.
# [storage.cloud]
# kind = "s3"
# years = 3
# copy_concurrency = 8
# [storage.cloud.s3]
# endpoint = "https://oss-cn-hangzhou.aliyuncs.com"
# bucket = "county-imaging"
# region = "cn-hangzhou"
# virtual_hosted = true

# Other stores by name, for `yunying storage migrate --from A --to B` (a
# change of vendor) and the mirror of a cut-over (every new object written
# there too). Credentials: env YUNYING_STORE_<NAME>_S3_ACCESS_KEY_ID / ...
# [storage]
# mirror = "newcloud"
# [storage.stores.newcloud]
# kind = "s3"
# [storage.stores.newcloud.s3]
# endpoint = "https://cos.ap-shanghai.myqcloud.com"
# bucket = "county-imaging-1250000000"
# region = "ap-shanghai"
# virtual_hosted = true

# Scrubbing: every object is re-read and compared with its SHA-256 on a
# schedule (`yunying verify` does it on demand).
# [storage.scrub]
# interval_days = 90
# mb_per_s = 25

[ingest]
# Institution that objects are attributed to when the sender's identity does
# not name one (created at start if missing).
default_institution = "DEFAULT"
default_institution_name = "默认机构"
# Encoding of non-ASCII text in objects that declare no Specific Character
# Set. GB18030 covers GBK and GB2312, which Chinese equipment sends.
fallback_charset = "GB18030"
# Largest object accepted, in MiB.
max_object_mib = 16384
# Objects of one STOW-RS request ingested in parallel.
stow_parallelism = 4

[dicomweb]
# Most results of one QIDO-RS response.
max_results = 10000

[dicom]
# The DICOM listener (C-ECHO, C-STORE, C-FIND, C-MOVE, C-GET, storage
# commitment). "off" disables it. Env: YUNYING_DICOM; flag: --dicom.
listen = "127.0.0.1:11112"
# Our AE title.
ae_title = "YUNYING"
# Refuse associations addressed to another AE title.
check_called_ae = true
# Associations served at once; more are rejected (transient, retry later).
max_associations = 64
# Longest wait for the association request after a connection opens (ARTIM).
artim_timeout_secs = 30
# An association idle this long is aborted.
idle_timeout_secs = 300
# Largest PDU we receive, in KiB.
max_pdu_kib = 256
# Calling AE titles missing from the registry (`yunying ae list`) are rejected
# ("calling AE title not recognized") unless this is true; such AEs are then
# attributed to the default institution and may do what unknown_ae_allow says.
accept_unknown_ae = false
unknown_ae_allow = ["store", "query"]
# Accept SOP classes missing from the DICOM dictionary (private classes of
# modalities) as storage classes.
accept_unknown_sop_classes = true

# DICOM over TLS (PS3.15 BCP 195 secure transport) on its own port, beside the
# plain listener, with the same services and the same AE registry.
# Env: YUNYING_DICOM_TLS; flag: --dicom-tls (the listen address, or "off").
# [dicom.tls]
# listen = "0.0.0.0:2762"
# cert = "/etc/yunying/tls/dicom.crt"
# key = "/etc/yunying/tls/dicom.key"
# Require client certificates signed by this CA (mutual TLS):
# client_ca = "/etc/yunying/tls/clients-ca.crt"

# Remote AEs, registered (or updated) at every start; also managed with
# `yunying ae add|list|remove`. host/port are needed for C-MOVE destinations
# and storage commitment reports on a new association.
# [[dicom.remote]]
# ae_title = "SZRMYY_CT1"
# institution = "SZRMYY"
# host = "10.1.2.3"
# port = 104
# allow = ["store", "query", "retrieve"]

# Routing rules: instances received that match are forwarded (C-STORE) to a
# registered AE with host and port, through a durable queue (retried with
# backoff; `yunying forward status` shows the backlog). Empty criteria match all.
# [[dicom.forward]]
# destination = "CENTRE_PACS"
# institutions = ["SZFYBJY"]       # institution codes
# modalities = ["CT", "MR"]
# calling_aes = []                 # AEs the instance came from
# channels = ["dimse", "stow"]     # dimse, stow, import, pull

[security]
# Keys (field encryption SM4-GCM, blind indexes and the audit chain's MAC,
# HMAC-SM3) never live in this file. Default: <data>/keys/yunying.keys, made
# with fresh keys (mode 0600) at first start. In production, keep the key
# file on separate protected storage, or name the client program of your key
# service (KMS / cipher machine), which prints the key file on stdout:
# key_file = "/etc/yunying/yunying.keys"          # env YUNYING_KEY_FILE
# key_command = "/usr/local/bin/fetch-yunying-keys" # env YUNYING_KEY_COMMAND
# Algorithm of new field ciphertexts: "sm4-gcm" or "aes-256-gcm".
field_algorithm = "sm4-gcm"
# Passwords (MLPS level 3): length, character classes (of lower, upper,
# digit, symbol), expiry.
password_min_length = 10
password_min_classes = 3
password_max_age_days = 90
# Lockout after consecutive failed logins.
max_failed_logins = 5
lock_minutes = 30
# Sessions end after this much inactivity, and this long after login.
session_idle_minutes = 15
session_max_hours = 12
# (session_idle_seconds, when minutes are too coarse, wins over session_idle_minutes.)
# How long a node trusts a checked token or session before reading the
# catalog again: a revocation reaches every node within this delay.
credential_cache_seconds = 10
# The TOTP second factor is mandatory for administrators; also for everyone?
second_factor_for_everyone = false
# Lifetime of access tokens issued to service accounts (OAuth2 client credentials).
access_token_minutes = 60
# Sign-in and verification attempts per client address and minute (a whole
# hospital may share one address behind NAT; accounts also lock on their own).
login_attempts_per_minute = 60
# Mark cookies Secure. Default: when served over HTTPS or public_url is https.
# secure_cookies = true

[audit]
# This node's name: each node writes its own audit chain. Default: the host name.
# node = "pacs-1"
# Forward every audit record (RFC 5424, DICOM PS3.15 XML payload) to a syslog
# server / SIEM: udp://host:514 (RFC 5426) or tcp://host:601 (RFC 6587
# octet counting over plain TCP: keep it on the management network).
# syslog = "udp://10.1.0.20:514"
# Records are kept at least this long (never less than 180 days).
retention_days = 180

[pixels]
# The streaming copy: frames of these modalities are encoded again as HTJ2K
# lossless with RPCL progression (1.2.840.10008.1.2.4.202) in the background
# after ingest, so that viewers draw a first image from a few kilobytes.
# [] turns it off; `yunying derive --rebuild` makes the copies again.
derive_modalities = ["CT", "MR", "PT", "NM"]
# Frames encoded at once (default: half the cores, at least one).
# derive_workers = 1
# Memory for rendered images and transcoded frames and objects, in MiB.
output_cache_mib = 256
# The font of electronic film text: one with Chinese glyphs. Default: the
# first found of WenQuanYi Micro/Zen Hei, Noto Sans CJK, Droid Sans Fallback
# (Debian: apt-get install fonts-wqy-microhei).
# film_font = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"

[web]
# The web app (study list and viewer) is embedded in the binary. To serve
# another build of it (development, a customised app), name its directory
# (the output of `npm run build` in web/). Env: YUNYING_WEB_DIR.
# dir = "/opt/yunying/web"

[log]
# error, warn, info, debug, trace; or a filter such as "info,yunying_archive=debug".
level = "info"
# "text" or "json".
format = "text"
"#;

/// The TOML file, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub catalog: RawCatalog,
    #[serde(default)]
    pub storage: RawStorage,
    #[serde(default)]
    pub ingest: RawIngest,
    #[serde(default)]
    pub dicomweb: RawDicomWeb,
    #[serde(default)]
    pub log: RawLog,
    #[serde(default)]
    pub dicom: RawDicom,
    #[serde(default)]
    pub security: RawSecurity,
    #[serde(default)]
    pub audit: RawAudit,
    #[serde(default)]
    pub pixels: RawPixels,
    #[serde(default)]
    pub web: RawWeb,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWeb {
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPixels {
    pub derive_modalities: Option<Vec<String>>,
    pub derive_workers: Option<usize>,
    pub output_cache_mib: Option<usize>,
    pub film_font: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSecurity {
    pub key_file: Option<PathBuf>,
    pub key_command: Option<String>,
    pub field_algorithm: Option<String>,
    pub password_min_length: Option<usize>,
    pub password_min_classes: Option<usize>,
    pub password_max_age_days: Option<u32>,
    pub max_failed_logins: Option<i64>,
    pub lock_minutes: Option<i64>,
    pub session_idle_minutes: Option<i64>,
    pub session_idle_seconds: Option<i64>,
    pub credential_cache_seconds: Option<i64>,
    pub session_max_hours: Option<i64>,
    pub second_factor_for_everyone: Option<bool>,
    pub access_token_minutes: Option<i64>,
    pub login_attempts_per_minute: Option<u32>,
    pub secure_cookies: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAudit {
    pub node: Option<String>,
    pub syslog: Option<String>,
    pub retention_days: Option<u32>,
}

/// Where the keys come from: never from this configuration itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A key file (created with fresh keys at first start when it is the default one).
    File { path: PathBuf, create: bool },
    /// An external key service's client program printing the key file on stdout.
    Command(String),
}

/// Identity, sessions and keys.
#[derive(Debug, Clone)]
pub struct SecurityConfig {
    pub keys: KeySource,
    pub field_algorithm: yunying_security::FieldAlgorithm,
    pub rules: yunying_archive::SecuritySettings,
    pub login_attempts_per_minute: u32,
    /// `None`: Secure cookies when served over HTTPS or behind an https public URL.
    pub secure_cookies: Option<bool>,
    /// This node's name (its audit chain).
    pub node: String,
    pub syslog: Option<yunying_audit::SyslogTarget>,
    pub audit_retention_days: u32,
}

impl SecurityConfig {
    fn resolve(raw: RawSecurity, audit: RawAudit, data: &Path) -> Result<SecurityConfig, ConfigError> {
        let keys = match (env("YUNYING_KEY_COMMAND").or(raw.key_command), env("YUNYING_KEY_FILE").map(PathBuf::from).or(raw.key_file)) {
            (Some(_), Some(_)) => {
                return Err(ConfigError("security: give key_file or key_command, not both".into()));
            }
            (Some(c), None) => KeySource::Command(c),
            (None, Some(f)) => KeySource::File { path: f, create: false },
            (None, None) => KeySource::File { path: data.join("keys").join("yunying.keys"), create: true },
        };
        let field_algorithm = match raw.field_algorithm.as_deref().unwrap_or("sm4-gcm") {
            "sm4-gcm" => yunying_security::FieldAlgorithm::Sm4Gcm,
            "aes-256-gcm" => yunying_security::FieldAlgorithm::Aes256Gcm,
            other => return Err(ConfigError(format!("security.field_algorithm {other:?} is sm4-gcm or aes-256-gcm"))),
        };
        let mut rules = yunying_archive::SecuritySettings::default();
        if let Some(v) = raw.password_min_length {
            if v < 8 {
                return Err(ConfigError("security.password_min_length is at least 8 (MLPS level 3)".into()));
            }
            rules.password_rules.min_length = v;
        }
        // MLPS level 3 floors: complexity (3 of 4 classes), periodic change,
        // lockout after a few failures.
        if let Some(v) = raw.password_min_classes {
            if !(3..=4).contains(&v) {
                return Err(ConfigError("security.password_min_classes is 3 or 4 (MLPS level 3)".into()));
            }
            rules.password_rules.min_classes = v;
        }
        if let Some(v) = raw.password_max_age_days {
            if !(1..=180).contains(&v) {
                return Err(ConfigError("security.password_max_age_days is 1 to 180 (passwords change periodically)".into()));
            }
            rules.password_rules.max_age_days = v;
        }
        if let Some(v) = raw.max_failed_logins {
            if !(1..=10).contains(&v) {
                return Err(ConfigError("security.max_failed_logins is 1 to 10".into()));
            }
            rules.max_failures = v;
        }
        if let Some(v) = raw.lock_minutes {
            rules.lock_minutes = v.max(1);
        }
        if let Some(v) = raw.session_idle_minutes {
            rules.session_idle_seconds = v.clamp(1, 24 * 60) * 60;
        }
        if let Some(v) = raw.session_idle_seconds {
            rules.session_idle_seconds = v.clamp(1, 24 * 3600);
        }
        if let Some(v) = raw.credential_cache_seconds {
            rules.credential_cache_seconds = v.clamp(0, 300);
        }
        if let Some(v) = raw.session_max_hours {
            rules.session_max_hours = v.clamp(1, 24 * 7);
        }
        if let Some(v) = raw.second_factor_for_everyone {
            rules.totp_for_everyone = v;
        }
        if let Some(v) = raw.access_token_minutes {
            rules.access_token_minutes = v.clamp(1, 24 * 60);
        }
        let syslog = match env("YUNYING_AUDIT_SYSLOG").or(audit.syslog) {
            Some(t) => Some(
                yunying_audit::SyslogTarget::parse(&t)
                    .map_err(|e| ConfigError(format!("audit.syslog {t:?}: {e} (use udp://host:514 or tcp://host:601)")))?,
            ),
            None => None,
        };
        let retention = audit.retention_days.unwrap_or(180);
        if retention < 180 {
            return Err(ConfigError("audit.retention_days is at least 180 (网络安全法: six months)".into()));
        }
        let node = env("YUNYING_NODE").or(audit.node).unwrap_or_else(|| {
            std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "node".into())
        });
        Ok(SecurityConfig {
            keys,
            field_algorithm,
            rules,
            login_attempts_per_minute: raw.login_attempts_per_minute.unwrap_or(60).max(1),
            secure_cookies: raw.secure_cookies,
            node,
            syslog,
            audit_retention_days: retention,
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    pub http: Option<String>,
    pub data: Option<PathBuf>,
    pub public_url: Option<String>,
    pub tls: Option<TlsFiles>,
}

/// A certificate chain and its private key, PEM files (`[server.tls]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// `[dicom.tls]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDicomTls {
    pub listen: Option<String>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub client_ca: Option<PathBuf>,
}

/// The DICOM TLS listener.
#[derive(Debug, Clone)]
pub struct DicomTls {
    pub listen: SocketAddr,
    pub files: TlsFiles,
    /// Clients must present a certificate signed by this CA.
    pub client_ca: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCatalog {
    pub url: Option<String>,
    pub max_connections: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStorage {
    /// The local tier: "fs" (default) or "s3".
    pub kind: Option<String>,
    pub path: Option<PathBuf>,
    pub s3: Option<RawS3>,
    /// A store (of [storage.stores]) written with every new object (a
    /// change of store's cut-over).
    pub mirror: Option<String>,
    /// The cloud tier.
    pub cloud: Option<RawCloud>,
    /// Other stores, by name: migration sources and targets, mirrors.
    #[serde(default)]
    pub stores: std::collections::BTreeMap<String, RawStore>,
    pub scrub: Option<RawScrub>,
}

/// A store as written: `kind` with `path` or `[...s3]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    pub kind: Option<String>,
    pub path: Option<PathBuf>,
    pub s3: Option<RawS3>,
}

/// `[storage.cloud]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCloud {
    pub kind: Option<String>,
    pub path: Option<PathBuf>,
    pub s3: Option<RawS3>,
    pub years: Option<u32>,
    pub copy_concurrency: Option<usize>,
    pub lifecycle: Option<bool>,
    pub lease_seconds: Option<u32>,
}

/// `[storage.scrub]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScrub {
    pub interval_days: Option<u32>,
    pub mb_per_s: Option<u32>,
    pub start_delay_minutes: Option<u32>,
    pub cloud: Option<bool>,
}

/// `[storage.s3]` as written.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawS3 {
    pub endpoint: Option<String>,
    pub bucket: Option<String>,
    pub region: Option<String>,
    pub prefix: Option<String>,
    pub virtual_hosted: Option<bool>,
    pub access_key_id: Option<String>,
    pub secret_access_key_file: Option<PathBuf>,
    /// Refused with a clear message: secrets do not belong in this file.
    pub secret_access_key: Option<String>,
    pub allow_http: Option<bool>,
    pub part_size_mib: Option<usize>,
    pub upload_concurrency: Option<usize>,
    pub verify_reads: Option<bool>,
}

impl std::fmt::Debug for RawS3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawS3")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("secret_access_key", &self.secret_access_key.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// One blob store.
#[derive(Debug, Clone)]
pub enum StoreSettings {
    /// Files under a directory.
    Fs { path: PathBuf },
    /// An S3-compatible bucket (its Debug hides the secret).
    S3(yunying_blob::S3Config),
}

/// The cloud tier.
#[derive(Debug, Clone)]
pub struct CloudSettings {
    pub store: StoreSettings,
    /// It holds the exams of the most recent `years` years.
    pub years: u32,
    /// Objects copied at once.
    pub copy_concurrency: usize,
    /// Whether older exams leave the cloud tier (the lifecycle job).
    pub lifecycle: bool,
    /// How long a claimed copy stays reserved for its worker.
    pub lease_seconds: u32,
}

/// Where blobs are kept: the tiers, the other named stores, scrubbing.
#[derive(Debug, Clone)]
pub struct StorageSettings {
    /// The local tier (store name `local`): every object, for its whole retention.
    pub local: StoreSettings,
    /// The cloud tier (store name `cloud`).
    pub cloud: Option<CloudSettings>,
    /// Other stores by name (`[storage.stores.NAME]`).
    pub stores: std::collections::BTreeMap<String, StoreSettings>,
    /// The store every new object is also written to.
    pub mirror: Option<String>,
    pub scrub: yunying_archive::storage::ScrubSettings,
}

/// Reserved store names: the tiers.
pub const LOCAL_STORE: &str = "local";
pub const CLOUD_STORE: &str = "cloud";

impl StorageSettings {
    /// The settings of a store by name (`local`, `cloud`, or a configured one).
    pub fn store(&self, name: &str) -> Option<&StoreSettings> {
        match name {
            LOCAL_STORE => Some(&self.local),
            CLOUD_STORE => self.cloud.as_ref().map(|c| &c.store),
            other => self.stores.get(other),
        }
    }

    /// Every store's name.
    pub fn names(&self) -> Vec<String> {
        let mut v = vec![LOCAL_STORE.to_string()];
        if self.cloud.is_some() {
            v.push(CLOUD_STORE.to_string());
        }
        v.extend(self.stores.keys().cloned());
        v
    }

    fn resolve(raw: RawStorage, data: &Path) -> Result<StorageSettings, ConfigError> {
        let local = StoreSettings::resolve(
            "storage",
            "YUNYING_S3",
            RawStore { kind: raw.kind, path: raw.path, s3: raw.s3 },
            Some(data.join("blobs")),
        )?;
        let cloud = match raw.cloud {
            None => None,
            Some(c) => {
                let years = c.years.unwrap_or(3);
                if !(1..=30).contains(&years) {
                    return Err(ConfigError(format!("storage.cloud.years {years} is 1 to 30")));
                }
                let store = StoreSettings::resolve(
                    "storage.cloud",
                    "YUNYING_CLOUD_S3",
                    RawStore { kind: c.kind, path: c.path, s3: c.s3 },
                    None,
                )?;
                Some(CloudSettings {
                    store,
                    years,
                    copy_concurrency: c.copy_concurrency.unwrap_or(8).clamp(1, 64),
                    lifecycle: c.lifecycle.unwrap_or(true),
                    lease_seconds: c.lease_seconds.unwrap_or(300).clamp(1, 86_400),
                })
            }
        };
        let mut stores = std::collections::BTreeMap::new();
        for (name, raw) in raw.stores {
            let ok = !name.is_empty()
                && name.len() <= 32
                && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
            if !ok || name == LOCAL_STORE || name == CLOUD_STORE {
                return Err(ConfigError(format!(
                    "storage.stores.{name}: a store name is 1 to 32 of [a-z0-9_-], and not \"local\" or \"cloud\" (the tiers)"
                )));
            }
            let env_prefix = format!("YUNYING_STORE_{}_S3", name.to_ascii_uppercase().replace('-', "_"));
            let settings = StoreSettings::resolve(&format!("storage.stores.{name}"), &env_prefix, raw, None)?;
            stores.insert(name, settings);
        }
        if let Some(m) = &raw.mirror
            && !stores.contains_key(m)
        {
            return Err(ConfigError(format!(
                "storage.mirror {m:?} names no store: define it in [storage.stores.{m}]"
            )));
        }
        let mut scrub = yunying_archive::storage::ScrubSettings::default();
        if let Some(r) = raw.scrub {
            if let Some(d) = r.interval_days {
                scrub.interval_days = d;
            }
            if let Some(m) = r.mb_per_s {
                scrub.mb_per_s = m;
            }
            if let Some(m) = r.start_delay_minutes {
                scrub.start_delay_minutes = m;
            }
            if let Some(c) = r.cloud {
                scrub.cloud = c;
            }
        }
        Ok(StorageSettings { local, cloud, stores, mirror: raw.mirror, scrub })
    }
}

impl StoreSettings {
    /// `section` names the store in messages; `env_prefix` is where its S3
    /// credentials come from (`{prefix}_ACCESS_KEY_ID`, `{prefix}_SECRET_ACCESS_KEY`);
    /// `default_path` is for a filesystem store without `path`.
    fn resolve(section: &str, env_prefix: &str, raw: RawStore, default_path: Option<PathBuf>) -> Result<StoreSettings, ConfigError> {
        let default_kind = if default_path.is_some() { "fs" } else { "" };
        let kind = raw.kind.as_deref().map(str::trim).unwrap_or(default_kind).to_ascii_lowercase();
        match kind.as_str() {
            "fs" => {
                if raw.s3.is_some() {
                    return Err(ConfigError(format!(
                        "a [{section}.s3] section is given but {section}.kind is \"fs\": set kind = \"s3\" to use the bucket"
                    )));
                }
                let path = raw
                    .path
                    .or(default_path)
                    .ok_or_else(|| ConfigError(format!("{section}.path is required with kind = \"fs\"")))?;
                Ok(StoreSettings::Fs { path })
            }
            "s3" => {
                if raw.path.is_some() {
                    return Err(ConfigError(format!("{section}.path is for kind = \"fs\"; with kind = \"s3\" use [{section}.s3]")));
                }
                let s3 = raw.s3.ok_or_else(|| {
                    ConfigError(format!(
                        "{section}.kind = \"s3\" needs a [{section}.s3] section (endpoint, bucket, region, access_key_id)"
                    ))
                })?;
                Ok(StoreSettings::S3(resolve_s3(s3, &format!("{section}.s3"), env_prefix)?))
            }
            "" => Err(ConfigError(format!("{section}.kind is required: \"fs\" or \"s3\""))),
            other => Err(ConfigError(format!("{section}.kind {other:?} is \"fs\" or \"s3\""))),
        }
    }
}

fn resolve_s3(raw: RawS3, section: &str, env_prefix: &str) -> Result<yunying_blob::S3Config, ConfigError> {
    let id_env = format!("{env_prefix}_ACCESS_KEY_ID");
    let secret_env = format!("{env_prefix}_SECRET_ACCESS_KEY");
    if raw.secret_access_key.is_some() {
        return Err(ConfigError(
            format!("{section}.secret_access_key: the secret is not read from the configuration file; set {secret_env} or {section}.secret_access_key_file"),
        ));
    }
    let need = |v: Option<String>, what: &str| {
        v.map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ConfigError(format!("{section}.{what} is required with kind = \"s3\"")))
    };
    let endpoint = need(raw.endpoint, "endpoint")?;
    let bucket = need(raw.bucket, "bucket")?;
    let access_key_id =
        need(env(&id_env).or(raw.access_key_id), &format!("access_key_id (or env {id_env})"))?;
    let secret = match (env(&secret_env), raw.secret_access_key_file) {
        (Some(s), _) => s.trim().to_string(),
        (None, Some(file)) => std::fs::read_to_string(&file)
            .map_err(|e| ConfigError(format!("{section}.secret_access_key_file {}: {e}", file.display())))?
            .trim()
            .to_string(),
        (None, None) => {
            return Err(ConfigError(format!(
                "the S3 secret access key of {section} is missing: set {secret_env} or {section}.secret_access_key_file"
            )));
        }
    };
    if secret.is_empty() {
        return Err(ConfigError(format!("the S3 secret access key of {section} is empty")));
    }
    let mut c = yunying_blob::S3Config::new(endpoint, bucket, access_key_id, secret);
    if let Some(r) = raw.region {
        c.region = r.trim().to_string();
    }
    c.prefix = raw.prefix.unwrap_or_default();
    c.virtual_hosted = raw.virtual_hosted.unwrap_or(false);
    c.allow_http = raw.allow_http.unwrap_or(false);
    if let Some(mib) = raw.part_size_mib {
        if !(5..=5 * 1024).contains(&mib) {
            return Err(ConfigError(format!("{section}.part_size_mib {mib} is 5 to 5120 (S3's part sizes)")));
        }
        c.part_size = mib << 20;
    }
    c.upload_concurrency = raw.upload_concurrency.unwrap_or(2).clamp(1, 16);
    c.verify_reads = raw.verify_reads.unwrap_or(true);
    c.validate().map_err(|e| ConfigError(format!("{section}: {e}")))?;
    Ok(c)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIngest {
    pub default_institution: Option<String>,
    pub default_institution_name: Option<String>,
    pub fallback_charset: Option<String>,
    pub max_object_mib: Option<u64>,
    pub stow_parallelism: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDicomWeb {
    pub max_results: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    pub level: Option<String>,
    pub format: Option<String>,
}

/// Where the catalog lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogBackend {
    Sqlite { path: PathBuf },
    Postgres { url: String, max_connections: u32 },
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub http: SocketAddr,
    pub data: PathBuf,
    pub public_url: Option<String>,
    pub catalog: CatalogBackend,
    /// Where blobs are kept.
    pub storage: StorageSettings,
    pub staging_path: PathBuf,
    pub default_institution: String,
    pub default_institution_name: String,
    pub fallback_charset: &'static encoding_rs::Encoding,
    pub max_object_bytes: u64,
    pub stow_parallelism: usize,
    pub max_results: u32,
    pub log_level: String,
    pub log_json: bool,
    pub dicom: DicomSettings,
    /// HTTPS on the HTTP listener.
    pub http_tls: Option<TlsFiles>,
    pub security: SecurityConfig,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// The streaming copy made after ingest.
    pub derive: yunying_archive::DeriveSettings,
    /// Memory for rendered and transcoded output.
    pub output_cache_bytes: usize,
    /// The font of electronic film text.
    pub film_font: Option<PathBuf>,
    /// Serve the web app from this directory instead of the embedded copy.
    pub web_dir: Option<PathBuf>,
}

/// Values given on the command line (they win over everything).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub http: Option<String>,
    pub data: Option<PathBuf>,
    pub catalog_url: Option<String>,
    pub dicom: Option<String>,
    pub dicom_tls: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDicom {
    pub listen: Option<String>,
    pub ae_title: Option<String>,
    pub check_called_ae: Option<bool>,
    pub max_associations: Option<usize>,
    pub artim_timeout_secs: Option<u64>,
    pub idle_timeout_secs: Option<u64>,
    pub max_pdu_kib: Option<u32>,
    pub accept_unknown_ae: Option<bool>,
    pub unknown_ae_allow: Option<Vec<String>>,
    pub accept_unknown_sop_classes: Option<bool>,
    pub tls: Option<RawDicomTls>,
    #[serde(default)]
    pub remote: Vec<RemoteAeConfig>,
    #[serde(default)]
    pub forward: Vec<ForwardRuleConfig>,
}

/// A routing rule as written in the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardRuleConfig {
    pub destination: String,
    #[serde(default)]
    pub institutions: Vec<String>,
    #[serde(default)]
    pub modalities: Vec<String>,
    #[serde(default)]
    pub calling_aes: Vec<String>,
    #[serde(default)]
    pub channels: Vec<String>,
}

/// A remote AE declared in the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteAeConfig {
    pub ae_title: String,
    pub institution: String,
    pub host: Option<String>,
    pub port: Option<u16>,
    #[serde(default = "default_allow")]
    pub allow: Vec<String>,
    #[serde(default)]
    pub description: String,
}

fn default_allow() -> Vec<String> {
    vec!["store".into(), "query".into()]
}

/// What a remote AE may do, from words such as `store`, `query`, `retrieve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AePolicy {
    pub store: bool,
    pub query: bool,
    pub retrieve: bool,
}

impl AePolicy {
    pub fn parse(words: &[String]) -> Result<AePolicy, ConfigError> {
        let mut p = AePolicy::default();
        for w in words {
            match w.trim().to_ascii_lowercase().as_str() {
                "store" => p.store = true,
                "query" => p.query = true,
                "retrieve" => p.retrieve = true,
                other => {
                    return Err(ConfigError(format!("{other:?} is not a permission (use store, query, retrieve)")));
                }
            }
        }
        Ok(p)
    }
}

/// The DICOM listener's settings.
#[derive(Debug, Clone)]
pub struct DicomSettings {
    /// `None`: no listener.
    pub listen: Option<SocketAddr>,
    pub ae_title: String,
    pub check_called_ae: bool,
    pub max_associations: usize,
    pub artim_timeout: std::time::Duration,
    pub idle_timeout: std::time::Duration,
    pub max_pdu: u32,
    pub accept_unknown_ae: bool,
    pub unknown_ae_allow: AePolicy,
    pub accept_unknown_sop_classes: bool,
    pub remotes: Vec<RemoteAeConfig>,
    pub forward: Vec<yunying_archive::ForwardRule>,
    /// `None`: no DICOM TLS listener.
    pub tls: Option<DicomTls>,
}

impl DicomSettings {
    fn resolve(raw: RawDicom, flag: Option<String>, tls_flag: Option<String>) -> Result<DicomSettings, ConfigError> {
        let tls = resolve_dicom_tls(raw.tls, tls_flag)?;
        let listen_s = flag.or_else(|| env("YUNYING_DICOM")).or(raw.listen).unwrap_or_else(|| "127.0.0.1:11112".into());
        let listen = if listen_s.eq_ignore_ascii_case("off") {
            None
        } else {
            Some(listen_s.parse().map_err(|_| {
                ConfigError(format!("dicom.listen {listen_s:?} is not an address such as 127.0.0.1:11112 (or \"off\")"))
            })?)
        };
        let ae_title = raw.ae_title.unwrap_or_else(|| "YUNYING".into()).trim().to_string();
        if ae_title.is_empty() || ae_title.len() > 16 || ae_title.contains('\\') || ae_title.chars().any(|c| c.is_control()) {
            return Err(ConfigError(format!("dicom.ae_title {ae_title:?} must be 1 to 16 characters, no backslash")));
        }
        let mut forward = Vec::new();
        for f in raw.forward {
            if f.destination.trim().is_empty() {
                return Err(ConfigError("dicom.forward: destination must not be empty".into()));
            }
            for c in &f.channels {
                if !["dimse", "stow", "import", "pull"].contains(&c.as_str()) {
                    return Err(ConfigError(format!(
                        "dicom.forward {}: channel {c:?} is not one of dimse, stow, import, pull",
                        f.destination
                    )));
                }
            }
            forward.push(yunying_archive::ForwardRule {
                destination: f.destination.trim().to_string(),
                institutions: f.institutions,
                modalities: f.modalities,
                calling_aes: f.calling_aes,
                channels: f.channels,
            });
        }
        for r in &raw.remote {
            AePolicy::parse(&r.allow).map_err(|e| ConfigError(format!("dicom.remote {}: {}", r.ae_title, e.0)))?;
        }
        Ok(DicomSettings {
            listen,
            ae_title,
            check_called_ae: raw.check_called_ae.unwrap_or(true),
            max_associations: raw.max_associations.unwrap_or(64).clamp(1, 4096),
            artim_timeout: std::time::Duration::from_secs(raw.artim_timeout_secs.unwrap_or(30).max(1)),
            idle_timeout: std::time::Duration::from_secs(raw.idle_timeout_secs.unwrap_or(300).max(1)),
            max_pdu: raw.max_pdu_kib.unwrap_or(256).clamp(4, 16 * 1024) * 1024,
            accept_unknown_ae: raw.accept_unknown_ae.unwrap_or(false),
            unknown_ae_allow: AePolicy::parse(&raw.unknown_ae_allow.unwrap_or_else(default_allow))
                .map_err(|e| ConfigError(format!("dicom.unknown_ae_allow: {}", e.0)))?,
            accept_unknown_sop_classes: raw.accept_unknown_sop_classes.unwrap_or(true),
            remotes: raw.remote,
            forward,
            tls,
        })
    }
}

/// `[dicom.tls]` with its overrides: the listen address defaults to
/// 127.0.0.1:2762 when the section is present; a listen address given
/// without the section's files is an error.
fn resolve_dicom_tls(raw: Option<RawDicomTls>, flag: Option<String>) -> Result<Option<DicomTls>, ConfigError> {
    let listen_s = flag.or_else(|| env("YUNYING_DICOM_TLS"));
    let raw = match (raw, &listen_s) {
        (_, Some(l)) if l.eq_ignore_ascii_case("off") => return Ok(None),
        (Some(raw), _) => raw,
        (None, None) => return Ok(None),
        (None, Some(l)) => {
            return Err(ConfigError(format!(
                "a DICOM TLS listen address ({l}) is given, but no [dicom.tls] section with cert and key"
            )));
        }
    };
    let listen_s = listen_s.or(raw.listen).unwrap_or_else(|| "127.0.0.1:2762".into());
    if listen_s.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let listen = listen_s.parse().map_err(|_| {
        ConfigError(format!("dicom.tls.listen {listen_s:?} is not an address such as 0.0.0.0:2762 (or \"off\")"))
    })?;
    let (Some(cert), Some(key)) = (raw.cert, raw.key) else {
        return Err(ConfigError("[dicom.tls] needs both cert and key (PEM files)".into()));
    };
    Ok(Some(DicomTls { listen, files: TlsFiles { cert, key }, client_ca: raw.client_ca }))
}

/// A configuration problem, said so that the operator knows what to fix.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

impl RawConfig {
    /// Reads and parses a TOML file.
    pub fn from_file(path: &Path) -> Result<RawConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| ConfigError(format!("{}: {e}", path.display())))
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Settings {
    /// Layers defaults, the file, the environment and the flags, and validates.
    pub fn resolve(raw: RawConfig, flags: &Overrides) -> Result<Settings, ConfigError> {
        let http_s = flags
            .http
            .clone()
            .or_else(|| env("YUNYING_HTTP"))
            .or(raw.server.http)
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        let http: SocketAddr = http_s
            .parse()
            .map_err(|_| ConfigError(format!("server.http {http_s:?} is not an address such as 127.0.0.1:8080")))?;
        let data = flags
            .data
            .clone()
            .or_else(|| env("YUNYING_DATA").map(PathBuf::from))
            .or(raw.server.data)
            .unwrap_or_else(|| PathBuf::from("./yunying-data"));
        let public_url = env("YUNYING_PUBLIC_URL").or(raw.server.public_url).map(|u| u.trim_end_matches('/').to_string());
        if let Some(u) = &public_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            return Err(ConfigError(format!("server.public_url {u:?} must start with http:// or https://")));
        }
        let catalog_url = flags.catalog_url.clone().or_else(|| env("YUNYING_CATALOG_URL")).or(raw.catalog.url);
        let catalog = match catalog_url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                CatalogBackend::Postgres { url, max_connections: raw.catalog.max_connections.unwrap_or(16).max(2) }
            }
            Some(url) if url.starts_with("sqlite://") => {
                CatalogBackend::Sqlite { path: PathBuf::from(url.trim_start_matches("sqlite://")) }
            }
            Some(url) => {
                return Err(ConfigError(format!(
                    "catalog.url {url:?} names no known engine: use postgres://... or sqlite://PATH"
                )));
            }
            None => CatalogBackend::Sqlite { path: data.join("catalog.db") },
        };
        let storage = StorageSettings::resolve(raw.storage, &data)?;
        let charset_label = raw.ingest.fallback_charset.unwrap_or_else(|| "GB18030".into());
        let fallback_charset = encoding_rs::Encoding::for_label(charset_label.as_bytes()).ok_or_else(|| {
            ConfigError(format!("ingest.fallback_charset {charset_label:?} is not a known encoding (try GB18030)"))
        })?;
        let default_institution = raw.ingest.default_institution.unwrap_or_else(|| "DEFAULT".into());
        if default_institution.trim().is_empty() {
            return Err(ConfigError("ingest.default_institution must not be empty".into()));
        }
        let dicom = DicomSettings::resolve(raw.dicom, flags.dicom.clone(), flags.dicom_tls.clone())?;
        let security = SecurityConfig::resolve(raw.security, raw.audit, &data)?;
        let trusted_proxies = raw
            .server
            .trusted_proxies
            .iter()
            .map(|a| a.trim().parse().map_err(|_| ConfigError(format!("server.trusted_proxies: {a:?} is not an IP address"))))
            .collect::<Result<Vec<std::net::IpAddr>, ConfigError>>()?;
        let mut derive = yunying_archive::DeriveSettings::default();
        if let Some(m) = raw.pixels.derive_modalities {
            for x in &m {
                if x.is_empty() || x.len() > 16 || !x.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(ConfigError(format!("pixels.derive_modalities: {x:?} is not a modality code")));
                }
            }
            derive.modalities = m.into_iter().map(|x| x.to_ascii_uppercase()).collect();
        }
        if let Some(w) = raw.pixels.derive_workers {
            derive.workers = w.clamp(1, 64);
        }
        let output_cache_bytes = raw.pixels.output_cache_mib.unwrap_or(256).min(64 * 1024) << 20;
        let log_format = raw.log.format.unwrap_or_else(|| "text".into());
        if log_format != "text" && log_format != "json" {
            return Err(ConfigError(format!("log.format {log_format:?} must be \"text\" or \"json\"")));
        }
        Ok(Settings {
            http,
            staging_path: data.join("staging"),
            data,
            public_url,
            catalog,
            storage,
            default_institution,
            default_institution_name: raw.ingest.default_institution_name.unwrap_or_else(|| "默认机构".into()),
            fallback_charset,
            max_object_bytes: raw.ingest.max_object_mib.unwrap_or(16384).max(1) << 20,
            stow_parallelism: raw.ingest.stow_parallelism.unwrap_or(4).clamp(1, 64),
            max_results: raw.dicomweb.max_results.unwrap_or(10_000).max(1),
            log_level: env("YUNYING_LOG").or(raw.log.level).unwrap_or_else(|| "info".into()),
            log_json: log_format == "json",
            dicom,
            http_tls: raw.server.tls,
            security,
            trusted_proxies,
            derive,
            output_cache_bytes,
            film_font: raw.pixels.film_font,
            web_dir: env("YUNYING_WEB_DIR").map(PathBuf::from).or(raw.web.dir),
        })
    }

    /// Loads the file named by the flag or `YUNYING_CONFIG` (if any) and resolves.
    pub fn load(file: Option<&Path>, flags: &Overrides) -> Result<Settings, ConfigError> {
        let file = file.map(PathBuf::from).or_else(|| env("YUNYING_CONFIG").map(PathBuf::from));
        let raw = match file {
            Some(f) => RawConfig::from_file(&f)?,
            None => RawConfig::default(),
        };
        Settings::resolve(raw, flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_parses_and_resolves() {
        let raw: RawConfig = toml::from_str(EXAMPLE).unwrap();
        let s = Settings::resolve(raw, &Overrides::default()).unwrap();
        assert_eq!(s.http.to_string(), "127.0.0.1:8080");
        assert!(matches!(s.catalog, CatalogBackend::Sqlite { .. }));
        assert_eq!(s.fallback_charset, encoding_rs::GB18030);
    }

    #[test]
    fn flags_win_and_errors_are_clear() {
        let raw: RawConfig = toml::from_str("[server]\nhttp = \"0.0.0.0:1\"").unwrap();
        let s = Settings::resolve(
            raw,
            &Overrides {
                http: Some("127.0.0.1:9999".into()),
                catalog_url: Some("postgres://u@h/db".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(s.http.port(), 9999);
        assert!(matches!(s.catalog, CatalogBackend::Postgres { .. }));
        let bad: Result<RawConfig, _> = toml::from_str("[server]\nhtp = \"x\"");
        assert!(bad.is_err(), "unknown keys are refused");
        let e = Settings::resolve(RawConfig::default(), &Overrides { http: Some("nope".into()), ..Default::default() })
            .unwrap_err();
        assert!(e.0.contains("server.http"));
    }

    #[test]
    fn cloud_tier_stores_and_mirror() {
        let flags = Overrides { data: Some("/d".into()), ..Default::default() };
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("s.secret");
        std::fs::write(&secret, "sk\n").unwrap();
        let s3 = |section: &str| {
            format!(
                "[{section}.s3]\nendpoint = \"https://oss-cn-hangzhou.aliyuncs.com\"\nbucket = \"bkt\"\n\
                 access_key_id = \"ak\"\nsecret_access_key_file = {:?}\n",
                secret.display().to_string()
            )
        };
        let resolve = |text: &str| Settings::resolve(toml::from_str(text).unwrap(), &flags);
        let text = format!(
            "[storage]\nmirror = \"newcloud\"\n[storage.cloud]\nkind = \"s3\"\nyears = 5\n{}\
             [storage.stores.newcloud]\nkind = \"s3\"\n{}[storage.stores.old-nas]\nkind = \"fs\"\npath = \"/mnt/nas\"\n\
             [storage.scrub]\ninterval_days = 30\nmb_per_s = 0\n",
            s3("storage.cloud"),
            s3("storage.stores.newcloud")
        );
        let s = resolve(&text).unwrap();
        let c = s.storage.cloud.as_ref().unwrap();
        assert_eq!((c.years, c.copy_concurrency, c.lifecycle, c.lease_seconds), (5, 8, true, 300));
        assert!(matches!(&c.store, StoreSettings::S3(x) if x.bucket == "bkt"));
        assert_eq!(s.storage.names(), vec!["local", "cloud", "newcloud", "old-nas"]);
        assert!(matches!(s.storage.store("old-nas"), Some(StoreSettings::Fs { path }) if path == Path::new("/mnt/nas")));
        assert!(s.storage.store("nope").is_none());
        assert_eq!(s.storage.mirror.as_deref(), Some("newcloud"));
        assert_eq!((s.storage.scrub.interval_days, s.storage.scrub.mb_per_s), (30, 0));
        assert!(!format!("{s:?}").contains("sk\n"));

        let err = |text: &str| resolve(text).unwrap_err().0;
        assert!(err("[storage]\nmirror = \"x\"").contains("names no store"));
        assert!(err("[storage.stores.local]\nkind = \"fs\"\npath = \"/x\"").contains("not \"local\" or \"cloud\""));
        assert!(err("[storage.stores.Big]\nkind = \"fs\"\npath = \"/x\"").contains("[a-z0-9_-]"));
        assert!(err("[storage.stores.x]\npath = \"/x\"").contains("storage.stores.x.kind is required"));
        assert!(err("[storage.cloud]\nkind = \"s3\"").contains("[storage.cloud.s3]"));
        assert!(err(&format!("[storage.cloud]\nkind = \"s3\"\nyears = 0\n{}", s3("storage.cloud"))).contains("years"));
        assert!(err("[storage.cloud]\nkind = \"fs\"").contains("storage.cloud.path is required"));
    }

    #[test]
    fn storage_sections() {
        let flags = Overrides { data: Some("/d".into()), ..Default::default() };
        let s = Settings::resolve(RawConfig::default(), &flags).unwrap();
        assert!(matches!(&s.storage.local, StoreSettings::Fs { path } if path == Path::new("/d/blobs")));
        let raw: RawConfig = toml::from_str("[storage]\npath = \"/srv/blobs\"").unwrap();
        let s = Settings::resolve(raw, &flags).unwrap();
        assert!(matches!(&s.storage.local, StoreSettings::Fs { path } if path == Path::new("/srv/blobs")));

        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("s3.secret");
        std::fs::write(&secret, "oss-secret-value\n").unwrap();
        let s3 = |extra: &str| {
            format!(
                "[storage]\nkind = \"s3\"\n[storage.s3]\nendpoint = \"https://s3.oss-cn-hangzhou.aliyuncs.com\"\n\
                 bucket = \"yunying-archive\"\nregion = \"cn-hangzhou\"\nvirtual_hosted = true\nprefix = \"pacs\"\n\
                 access_key_id = \"LTAI5tExample\"\nsecret_access_key_file = {:?}\n{extra}",
                secret.display().to_string()
            )
        };
        let resolve = |text: &str| Settings::resolve(toml::from_str(text).unwrap(), &flags);
        let s = resolve(&s3("part_size_mib = 32\n")).unwrap();
        assert!(!format!("{s:?}").contains("oss-secret-value"), "the secret never shows in Debug (logs)");
        let StoreSettings::S3(c) = s.storage.local else { panic!("not s3") };
        assert_eq!((c.bucket.as_str(), c.region.as_str(), c.prefix.as_str()), ("yunying-archive", "cn-hangzhou", "pacs"));
        assert!(c.virtual_hosted && !c.allow_http && c.verify_reads);
        assert_eq!(c.part_size, 32 << 20);
        if std::env::var_os("YUNYING_S3_SECRET_ACCESS_KEY").is_none() {
            assert_eq!(c.secret_access_key, "oss-secret-value", "read from the file, trimmed");
        }

        let err = |text: &str| resolve(text).unwrap_err().0;
        assert!(err("[storage]\nkind = \"nfs\"").contains("\"fs\" or \"s3\""));
        assert!(err("[storage]\nkind = \"s3\"").contains("[storage.s3]"));
        assert!(err("[storage.s3]\nbucket = \"b\"").contains("set kind = \"s3\""));
        assert!(err(&s3("secret_access_key = \"oops\"\n")).contains("YUNYING_S3_SECRET_ACCESS_KEY"));
        assert!(err(&s3("part_size_mib = 1\n")).contains("part_size_mib"));
        assert!(err(&s3("").replace("bucket = \"yunying-archive\"\n", "")).contains("storage.s3.bucket is required"));
        let http = s3("")
            .replace("https://s3.oss-cn-hangzhou.aliyuncs.com", "http://10.0.0.5:9000")
            .replace("virtual_hosted = true", "virtual_hosted = false");
        assert!(err(&http).contains("allow_http"));
        assert!(resolve(&format!("{http}allow_http = true\n")).is_ok());
        let missing = s3("").replace(&format!("secret_access_key_file = {:?}\n", secret.display().to_string()), "");
        if std::env::var_os("YUNYING_S3_SECRET_ACCESS_KEY").is_none() {
            assert!(err(&missing).contains("secret access key of storage.s3 is missing"));
        }
        let with_path = s3("").replace("kind = \"s3\"\n", "kind = \"s3\"\npath = \"/x\"\n");
        assert!(err(&with_path).contains("storage.path is for kind"));
    }

    #[test]
    fn tls_sections() {
        let raw: RawConfig = toml::from_str(
            "[server.tls]\ncert = \"s.crt\"\nkey = \"s.key\"\n[dicom.tls]\ncert = \"d.crt\"\nkey = \"d.key\"\nclient_ca = \"ca.crt\"",
        )
        .unwrap();
        let s = Settings::resolve(raw, &Overrides::default()).unwrap();
        assert_eq!(s.http_tls.unwrap().cert, PathBuf::from("s.crt"));
        let t = s.dicom.tls.unwrap();
        assert_eq!(t.listen.to_string(), "127.0.0.1:2762");
        assert_eq!(t.client_ca, Some(PathBuf::from("ca.crt")));
        // The flag wins over the file's address.
        let raw: RawConfig = toml::from_str("[dicom.tls]\nlisten = \"0.0.0.0:2762\"\ncert = \"d.crt\"\nkey = \"d.key\"").unwrap();
        let flags = Overrides { dicom_tls: Some("127.0.0.1:0".into()), ..Default::default() };
        assert_eq!(Settings::resolve(raw, &flags).unwrap().dicom.tls.unwrap().listen.port(), 0);
        // An address without files, or files missing, are errors; "off" turns it off.
        let e = Settings::resolve(RawConfig::default(), &flags).unwrap_err();
        assert!(e.0.contains("[dicom.tls]"), "{e}");
        let raw: RawConfig = toml::from_str("[dicom.tls]\ncert = \"d.crt\"").unwrap();
        assert!(Settings::resolve(raw, &Overrides::default()).unwrap_err().0.contains("cert and key"));
        let raw: RawConfig = toml::from_str("[dicom.tls]\ncert = \"d.crt\"\nkey = \"d.key\"").unwrap();
        let off = Overrides { dicom_tls: Some("off".into()), ..Default::default() };
        assert!(Settings::resolve(raw, &off).unwrap().dicom.tls.is_none());
        assert!(toml::from_str::<RawConfig>("[server.tls]\ncert = \"a\"").is_err(), "key is required");
    }
}
