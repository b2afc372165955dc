//! The key ring: field encryption keys, blind index keys and audit chain
//! keys, loaded from a key file or from an external key service command,
//! generated, rotated and written back. Keys never live in the
//! configuration file.
//!
//! Key file format (TOML, version 1):
//!
//! ```toml
//! # Yunying key file. Keep it outside the configuration, owned by the service user, mode 0600.
//! version = 1
//! [[data]]      # field encryption keys; exactly one active; old ones kept to decrypt
//! id = "d-20261125-1a2b"
//! algorithm = "sm4-gcm"     # or "aes-256-gcm"
//! key = "<hex>"             # 16 bytes for sm4-gcm, 32 for aes-256-gcm
//! created = "2026-11-25T22:10:00Z"
//! active = true
//! [[blind]]     # HMAC-SM3 keys of blind indexes; exactly one active
//! [[audit]]     # HMAC-SM3 keys sealing the audit chain; one active; old kept to verify
//! ```
//!
//! Key material is zeroized when dropped and never shown by `Debug`.

use std::fmt;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use zeroize::{Zeroize, Zeroizing};

use crate::SecurityError;
use crate::mac;
use crate::token::{fill_random, random_bytes};

/// Version of the key file format written and read by this release.
pub const KEY_FILE_VERSION: i64 = 1;
/// Length of blind index and audit keys, in bytes.
pub const MAC_KEY_LEN: usize = 32;

const HEADER: &str = "\
# Yunying key file. Keep it outside the configuration, owned by the service user, mode 0600.
# [[data]]  field encryption keys: exactly one active; older ones are kept to decrypt.
# [[blind]] HMAC-SM3 keys of blind indexes (searchable encrypted fields): exactly one active.
# [[audit]] HMAC-SM3 keys sealing the audit chain: exactly one active; older ones are kept to verify.
";

/// Algorithm of a field encryption key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum FieldAlgorithm {
    /// SM4 in GCM mode (GB/T 32907 block cipher), 128-bit key. The default.
    #[default]
    Sm4Gcm,
    /// AES-256 in GCM mode, 256-bit key.
    Aes256Gcm,
}

impl FieldAlgorithm {
    /// The name used in key files: `sm4-gcm` or `aes-256-gcm`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sm4Gcm => "sm4-gcm",
            Self::Aes256Gcm => "aes-256-gcm",
        }
    }

    /// Key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Self::Sm4Gcm => 16,
            Self::Aes256Gcm => 32,
        }
    }
}

impl fmt::Display for FieldAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FieldAlgorithm {
    type Err = SecurityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sm4-gcm" | "sm4" => Ok(Self::Sm4Gcm),
            "aes-256-gcm" | "aes256-gcm" | "aes-gcm" => Ok(Self::Aes256Gcm),
            _ => Err(SecurityError::InvalidKeyFile {
                origin: "algorithm".to_owned(),
                reason: format!("unknown algorithm `{s}` (expected sm4-gcm or aes-256-gcm)"),
            }),
        }
    }
}

/// A field encryption key.
#[derive(Clone)]
pub struct DataKey {
    id: String,
    algorithm: FieldAlgorithm,
    key: Zeroizing<Vec<u8>>,
    created: Option<String>,
    active: bool,
}

impl DataKey {
    /// The key id written into every ciphertext sealed with this key.
    pub fn id(&self) -> &str {
        &self.id
    }
    pub fn algorithm(&self) -> FieldAlgorithm {
        self.algorithm
    }
    /// The raw key (16 or 32 bytes according to the algorithm).
    pub fn key_bytes(&self) -> &[u8] {
        &self.key
    }
    /// Creation time as written in the key file (RFC 3339), if any.
    pub fn created(&self) -> Option<&str> {
        self.created.as_deref()
    }
    pub fn is_active(&self) -> bool {
        self.active
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataKey")
            .field("id", &self.id)
            .field("algorithm", &self.algorithm)
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

/// An HMAC-SM3 key (blind indexes, audit chain).
#[derive(Clone)]
pub struct MacKey {
    id: String,
    key: Zeroizing<[u8; MAC_KEY_LEN]>,
    created: Option<String>,
    active: bool,
}

/// A blind index key.
pub type BlindKey = MacKey;
/// An audit chain key.
pub type AuditKey = MacKey;

impl MacKey {
    pub fn id(&self) -> &str {
        &self.id
    }
    /// The raw 32-byte key.
    pub fn key_bytes(&self) -> &[u8; MAC_KEY_LEN] {
        &self.key
    }
    /// Creation time as written in the key file (RFC 3339), if any.
    pub fn created(&self) -> Option<&str> {
        self.created.as_deref()
    }
    pub fn is_active(&self) -> bool {
        self.active
    }
    /// HMAC-SM3 of `data` under this key.
    pub fn mac(&self, data: &[u8]) -> [u8; 32] {
        mac::hmac_sm3(&self.key[..], data)
    }
    /// HMAC-SM3 of the concatenation of `parts` under this key.
    pub fn mac_parts(&self, parts: &[&[u8]]) -> [u8; 32] {
        mac::hmac_sm3_parts(&self.key[..], parts)
    }
}

impl fmt::Debug for MacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MacKey")
            .field("id", &self.id)
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

/// All keys of a deployment. Always holds exactly one active key of each
/// purpose (data, blind, audit), with unique ids.
#[derive(Clone)]
pub struct Keyring {
    data: Vec<DataKey>,
    blind: Vec<MacKey>,
    audit: Vec<MacKey>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("data", &self.data)
            .field("blind", &self.blind)
            .field("audit", &self.audit)
            .finish()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    version: i64,
    #[serde(default)]
    data: Vec<RawKey>,
    #[serde(default)]
    blind: Vec<RawKey>,
    #[serde(default)]
    audit: Vec<RawKey>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    id: String,
    #[serde(default)]
    algorithm: Option<String>,
    key: String,
    #[serde(default)]
    created: Option<toml::Value>,
    #[serde(default)]
    active: bool,
}

impl Drop for RawKey {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

fn invalid(origin: &str, reason: impl Into<String>) -> SecurityError {
    SecurityError::InvalidKeyFile {
        origin: origin.to_owned(),
        reason: reason.into(),
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn created_text(
    origin: &str,
    id: &str,
    v: &Option<toml::Value>,
) -> Result<Option<String>, SecurityError> {
    match v {
        None => Ok(None),
        Some(toml::Value::String(s)) => Ok(Some(s.clone())),
        Some(toml::Value::Datetime(d)) => Ok(Some(d.to_string())),
        Some(_) => Err(invalid(
            origin,
            format!("`created` of key `{id}` must be a date-time string"),
        )),
    }
}

fn decode_key(
    origin: &str,
    section: &str,
    raw: &RawKey,
) -> Result<Zeroizing<Vec<u8>>, SecurityError> {
    let mut bytes = Zeroizing::new(Vec::new());
    let text = raw.key.trim();
    if text.is_empty() || !text.len().is_multiple_of(2) {
        return Err(invalid(
            origin,
            format!(
                "key of [[{section}]] `{}` must be an even number of hex digits",
                raw.id
            ),
        ));
    }
    bytes.resize(text.len() / 2, 0);
    hex::decode_to_slice(text, &mut bytes[..]).map_err(|_| {
        invalid(
            origin,
            format!("key of [[{section}]] `{}` is not hexadecimal", raw.id),
        )
    })?;
    Ok(bytes)
}

fn check_one_active(
    origin: &str,
    section: &str,
    actives: usize,
    total: usize,
) -> Result<(), SecurityError> {
    match actives {
        1 => Ok(()),
        0 if total == 0 => Err(invalid(
            origin,
            format!("no [[{section}]] key; one active key is required"),
        )),
        0 => Err(invalid(
            origin,
            format!("no [[{section}]] key is marked `active = true`; exactly one must be"),
        )),
        n => Err(invalid(
            origin,
            format!("{n} [[{section}]] keys are marked active; exactly one must be"),
        )),
    }
}

fn parse_mac_keys(
    origin: &str,
    section: &str,
    raws: &[RawKey],
) -> Result<Vec<MacKey>, SecurityError> {
    let mut keys = Vec::with_capacity(raws.len());
    for raw in raws {
        if let Some(alg) = &raw.algorithm
            && !alg.eq_ignore_ascii_case("hmac-sm3")
        {
            return Err(invalid(
                origin,
                format!(
                    "[[{section}]] key `{}` has algorithm `{alg}`; only hmac-sm3 is supported",
                    raw.id
                ),
            ));
        }
        let bytes = decode_key(origin, section, raw)?;
        if bytes.len() != MAC_KEY_LEN {
            return Err(invalid(
                origin,
                format!(
                    "[[{section}]] key `{}` has {} bytes; HMAC-SM3 keys must have {MAC_KEY_LEN} ({} hex digits)",
                    raw.id,
                    bytes.len(),
                    MAC_KEY_LEN * 2
                ),
            ));
        }
        let mut key = Zeroizing::new([0u8; MAC_KEY_LEN]);
        key.copy_from_slice(&bytes);
        keys.push(MacKey {
            id: raw.id.clone(),
            key,
            created: created_text(origin, &raw.id, &raw.created)?,
            active: raw.active,
        });
    }
    let actives = keys.iter().filter(|k| k.active).count();
    check_one_active(origin, section, actives, keys.len())?;
    Ok(keys)
}

/// Line number (1-based) of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

impl Keyring {
    /// Parses and validates a key file's text.
    pub fn from_toml(text: &str) -> Result<Keyring, SecurityError> {
        Self::parse(text, "key file text")
    }

    fn parse(text: &str, origin: &str) -> Result<Keyring, SecurityError> {
        // The parser's own rendering quotes the offending line, which may
        // hold a key: report only its message and line number.
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|s| format!(" (line {})", line_of(text, s.start)))
                .unwrap_or_default();
            invalid(
                origin,
                format!("not valid TOML: {}{at}", e.message().trim()),
            )
        })?;
        if raw.version != KEY_FILE_VERSION {
            return Err(invalid(
                origin,
                format!(
                    "unsupported key file version {} (this release reads version {KEY_FILE_VERSION})",
                    raw.version
                ),
            ));
        }
        let mut ids: Vec<&str> = Vec::new();
        for (section, list) in [
            ("data", &raw.data),
            ("blind", &raw.blind),
            ("audit", &raw.audit),
        ] {
            for k in list {
                if !valid_id(&k.id) {
                    return Err(invalid(
                        origin,
                        format!(
                            "[[{section}]] key id `{}` is invalid: use 1 to 64 letters, digits, `-`, `_` or `.`",
                            k.id
                        ),
                    ));
                }
                if ids.contains(&k.id.as_str()) {
                    return Err(invalid(
                        origin,
                        format!("key id `{}` appears more than once", k.id),
                    ));
                }
                ids.push(&k.id);
            }
        }
        let mut data = Vec::with_capacity(raw.data.len());
        for k in &raw.data {
            let Some(alg) = &k.algorithm else {
                return Err(invalid(
                    origin,
                    format!(
                        "[[data]] key `{}` has no `algorithm` (sm4-gcm or aes-256-gcm)",
                        k.id
                    ),
                ));
            };
            let algorithm = alg.parse::<FieldAlgorithm>().map_err(|_| {
                invalid(
                    origin,
                    format!("[[data]] key `{}` has unknown algorithm `{alg}` (expected sm4-gcm or aes-256-gcm)", k.id),
                )
            })?;
            let key = decode_key(origin, "data", k)?;
            if key.len() != algorithm.key_len() {
                return Err(invalid(
                    origin,
                    format!(
                        "[[data]] key `{}` has {} bytes; {algorithm} keys must have {} ({} hex digits)",
                        k.id,
                        key.len(),
                        algorithm.key_len(),
                        algorithm.key_len() * 2
                    ),
                ));
            }
            data.push(DataKey {
                id: k.id.clone(),
                algorithm,
                key,
                created: created_text(origin, &k.id, &k.created)?,
                active: k.active,
            });
        }
        check_one_active(
            origin,
            "data",
            data.iter().filter(|k| k.active).count(),
            data.len(),
        )?;
        let blind = parse_mac_keys(origin, "blind", &raw.blind)?;
        let audit = parse_mac_keys(origin, "audit", &raw.audit)?;
        Ok(Keyring { data, blind, audit })
    }

    /// Reads a key file. On unix, refuses a file that group or others may
    /// access (mode & 0o077 != 0).
    pub fn load_file(path: impl AsRef<Path>) -> Result<Keyring, SecurityError> {
        let path = path.as_ref();
        let io = |source| SecurityError::Io {
            path: path.to_owned(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                return Err(SecurityError::KeyFilePermissions {
                    path: path.to_owned(),
                    mode,
                });
            }
        }
        if !meta.is_file() {
            return Err(io(std::io::Error::other("not a regular file")));
        }
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(io)?);
        Self::parse(&text, &path.display().to_string())
    }

    /// Runs `cmd` with `sh -c` (no standard input) and reads a key file
    /// from its standard output. This is how an external key management
    /// service or cipher machine client is plugged in. Errors carry the
    /// command's exit status and standard error.
    pub fn load_command(cmd: &str) -> Result<Keyring, SecurityError> {
        // Name only the program: arguments may carry credentials.
        let mut words = cmd.split_whitespace();
        let shown = match (words.next(), words.next()) {
            (Some(first), Some(_)) => format!("{first} …"),
            (Some(first), None) => first.to_owned(),
            (None, _) => String::new(),
        };
        let fail = |reason: String| SecurityError::KeyCommand {
            command: shown.clone(),
            reason,
        };
        if cmd.trim().is_empty() {
            return Err(fail("the command is empty".to_owned()));
        }
        let output = Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| fail(format!("cannot start `sh`: {e}")))?;
        let stdout = Zeroizing::new(output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stderr = stderr.trim();
        let stderr_note = if stderr.is_empty() {
            String::new()
        } else {
            let cut: String = stderr.chars().take(2000).collect();
            format!("; stderr: {cut}")
        };
        if !output.status.success() {
            return Err(fail(format!("{}{stderr_note}", output.status)));
        }
        let text = std::str::from_utf8(&stdout)
            .map_err(|_| fail(format!("its output is not UTF-8 text{stderr_note}")))?;
        Self::parse(text, "key command output").map_err(|e| match e {
            SecurityError::InvalidKeyFile { reason, .. } => fail(format!(
                "its output is not a valid key file: {reason}{stderr_note}"
            )),
            other => other,
        })
    }

    /// A new key ring with one fresh random key of each purpose, the data
    /// key of the given algorithm.
    pub fn generate(algorithm: FieldAlgorithm) -> Keyring {
        let mut ring = Keyring {
            data: Vec::new(),
            blind: Vec::new(),
            audit: Vec::new(),
        };
        ring.rotate_data(algorithm);
        ring.rotate_blind();
        ring.rotate_audit();
        ring
    }

    /// The key file text, with its header comment. Holds key material:
    /// zeroize it after use where that matters.
    pub fn to_toml(&self) -> String {
        let mut out = String::from(HEADER);
        out.push_str(&format!("version = {KEY_FILE_VERSION}\n"));
        let entry = |out: &mut String,
                     section: &str,
                     id: &str,
                     alg: &str,
                     key: &[u8],
                     created: Option<&str>,
                     active: bool| {
            out.push_str(&format!(
                "\n[[{section}]]\nid = {}\nalgorithm = {}\nkey = \"",
                quote(id),
                quote(alg)
            ));
            out.push_str(&hex::encode(key));
            out.push_str("\"\n");
            if let Some(c) = created {
                out.push_str(&format!("created = {}\n", quote(c)));
            }
            out.push_str(&format!("active = {active}\n"));
        };
        for k in &self.data {
            entry(
                &mut out,
                "data",
                &k.id,
                k.algorithm.as_str(),
                &k.key,
                k.created(),
                k.active,
            );
        }
        for (section, keys) in [("blind", &self.blind), ("audit", &self.audit)] {
            for k in keys {
                entry(
                    &mut out,
                    section,
                    &k.id,
                    "hmac-sm3",
                    &k.key[..],
                    k.created(),
                    k.active,
                );
            }
        }
        out
    }

    /// Writes the key file atomically: parent directories are created with
    /// mode 0700, the text goes to a temporary file (mode 0600) in the same
    /// directory, is flushed to disk, then renamed over `path`.
    pub fn write_file(&self, path: impl AsRef<Path>) -> Result<(), SecurityError> {
        let path = path.as_ref();
        let io = |source| SecurityError::Io {
            path: path.to_owned(),
            source,
        };
        let Some(name) = path.file_name() else {
            return Err(io(std::io::Error::other("the path names no file")));
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => Path::new(".").to_owned(),
        };
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&dir).map_err(io)?;

        let tmp = dir.join(format!(
            ".{}.tmp-{}",
            name.to_string_lossy(),
            hex::encode(random_bytes::<4>())
        ));
        let text = Zeroizing::new(self.to_toml());
        let result = (|| {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&tmp)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            drop(file);
            std::fs::rename(&tmp, path)?;
            #[cfg(unix)]
            std::fs::File::open(&dir)?.sync_all()?;
            Ok(())
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map_err(io)
    }

    fn fresh_id(&self, prefix: char) -> String {
        let date = utc_date_compact(now_unix());
        loop {
            let id = format!("{prefix}-{date}-{}", hex::encode(random_bytes::<2>()));
            if !self.ids().any(|existing| existing == id) {
                return id;
            }
        }
    }

    fn ids(&self) -> impl Iterator<Item = &str> {
        self.data
            .iter()
            .map(|k| k.id.as_str())
            .chain(self.blind.iter().map(|k| k.id.as_str()))
            .chain(self.audit.iter().map(|k| k.id.as_str()))
    }

    /// Adds a new active data key of `algorithm`; older keys stay (inactive)
    /// to decrypt what they sealed. Returns the new key's id.
    pub fn rotate_data(&mut self, algorithm: FieldAlgorithm) -> String {
        let id = self.fresh_id('d');
        let mut key = Zeroizing::new(vec![0u8; algorithm.key_len()]);
        fill_random(&mut key);
        self.data.iter_mut().for_each(|k| k.active = false);
        self.data.push(DataKey {
            id: id.clone(),
            algorithm,
            key,
            created: Some(utc_rfc3339(now_unix())),
            active: true,
        });
        id
    }

    /// Adds a new active blind index key (indexes must then be rebuilt with
    /// it). Returns the new key's id.
    pub fn rotate_blind(&mut self) -> String {
        let id = self.fresh_id('b');
        let key = new_mac_key(&id);
        self.blind.iter_mut().for_each(|k| k.active = false);
        self.blind.push(key);
        id
    }

    /// Adds a new active audit chain key; older keys stay to verify the
    /// records they sealed. Returns the new key's id.
    pub fn rotate_audit(&mut self) -> String {
        let id = self.fresh_id('a');
        let key = new_mac_key(&id);
        self.audit.iter_mut().for_each(|k| k.active = false);
        self.audit.push(key);
        id
    }

    /// The data key new ciphertexts are sealed with.
    pub fn active_data(&self) -> &DataKey {
        self.data
            .iter()
            .find(|k| k.active)
            .expect("a key ring always has an active data key")
    }
    pub fn data_key(&self, id: &str) -> Option<&DataKey> {
        self.data.iter().find(|k| k.id == id)
    }
    /// All data keys, oldest first.
    pub fn data_keys(&self) -> &[DataKey] {
        &self.data
    }

    /// The key new blind indexes are computed with.
    pub fn active_blind(&self) -> &BlindKey {
        self.blind
            .iter()
            .find(|k| k.active)
            .expect("a key ring always has an active blind key")
    }
    pub fn blind_key(&self, id: &str) -> Option<&BlindKey> {
        self.blind.iter().find(|k| k.id == id)
    }
    /// All blind index keys, oldest first.
    pub fn blind_keys(&self) -> &[BlindKey] {
        &self.blind
    }

    /// The key new audit records are sealed with.
    pub fn active_audit(&self) -> &AuditKey {
        self.audit
            .iter()
            .find(|k| k.active)
            .expect("a key ring always has an active audit key")
    }
    pub fn audit_key(&self, id: &str) -> Option<&AuditKey> {
        self.audit.iter().find(|k| k.id == id)
    }
    /// All audit keys, oldest first.
    pub fn audit_keys(&self) -> &[AuditKey] {
        &self.audit
    }

    /// HMAC-SM3 of `bytes` under the audit key `key_id`, `None` when the
    /// ring does not hold that key (the MAC function of the audit chain).
    pub fn audit_mac(&self, key_id: &str, bytes: &[u8]) -> Option<[u8; 32]> {
        self.audit_key(key_id).map(|k| k.mac(bytes))
    }
}

fn new_mac_key(id: &str) -> MacKey {
    let mut key = Zeroizing::new([0u8; MAC_KEY_LEN]);
    fill_random(&mut key[..]);
    MacKey {
        id: id.to_owned(),
        key,
        created: Some(utc_rfc3339(now_unix())),
        active: true,
    }
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// (year, month, day) of a day count since 1970-01-01 (proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn utc_date_compact(unix: u64) -> String {
    let (y, m, d) = civil_from_days((unix / 86_400) as i64);
    format!("{y:04}{m:02}{d:02}")
}

fn utc_rfc3339(unix: u64) -> String {
    let (y, m, d) = civil_from_days((unix / 86_400) as i64);
    let secs = unix % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
# comment
version = 1

[[data]]
id = "d-20261125-1a2b"
algorithm = "sm4-gcm"
key = "0123456789abcdeffedcba9876543210"
created = "2026-11-25T22:10:00Z"
active = true

[[data]]
id = "d-20250101-0000"
algorithm = "aes-256-gcm"
key = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
created = 2025-01-01T00:00:00Z

[[blind]]
id = "b-20261125-aaaa"
key = "1111111111111111111111111111111111111111111111111111111111111111"
created = "2026-11-25T22:10:00Z"
active = true

[[audit]]
id = "a-20261125-bbbb"
algorithm = "hmac-sm3"
key = "2222222222222222222222222222222222222222222222222222222222222222"
active = true
"#;

    fn reason(err: SecurityError) -> String {
        match err {
            SecurityError::InvalidKeyFile { reason, .. } => reason,
            other => panic!("unexpected error {other:?}"),
        }
    }

    #[test]
    fn parses_sample() {
        let ring = Keyring::from_toml(SAMPLE).unwrap();
        assert_eq!(ring.active_data().id(), "d-20261125-1a2b");
        assert_eq!(ring.active_data().algorithm(), FieldAlgorithm::Sm4Gcm);
        assert_eq!(ring.active_data().created(), Some("2026-11-25T22:10:00Z"));
        let old = ring.data_key("d-20250101-0000").unwrap();
        assert_eq!(old.algorithm(), FieldAlgorithm::Aes256Gcm);
        assert!(!old.is_active());
        assert_eq!(old.created(), Some("2025-01-01T00:00:00Z"));
        assert_eq!(ring.active_blind().id(), "b-20261125-aaaa");
        assert_eq!(ring.active_blind().key_bytes(), &[0x11; 32]);
        assert_eq!(ring.active_audit().id(), "a-20261125-bbbb");
        assert_eq!(ring.audit_key("a-20261125-bbbb").unwrap().created(), None);
        assert!(ring.data_key("nope").is_none());
        assert!(ring.blind_key("b-20261125-aaaa").is_some());
        // Round trip through to_toml.
        let again = Keyring::from_toml(&ring.to_toml()).unwrap();
        assert_eq!(again.to_toml(), ring.to_toml());
        assert_eq!(again.data_keys().len(), 2);
    }

    #[test]
    fn debug_shows_no_key_material() {
        let ring = Keyring::from_toml(SAMPLE).unwrap();
        let shown = format!(
            "{ring:?} {:?} {:?}",
            ring.active_data(),
            ring.active_audit()
        );
        assert!(shown.contains("d-20261125-1a2b"), "{shown}");
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
        assert!(!shown.contains("1111"), "{shown}");
        assert!(!shown.contains("[1, 35"), "{shown}");
        assert!(!shown.contains("17, 17"), "{shown}");
    }

    #[test]
    fn validation_errors() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "active = true\n\n[[data]]",
                "active = false\n\n[[data]]",
                "no [[data]] key is marked",
            ),
            (
                "created = 2025-01-01T00:00:00Z",
                "created = 2025-01-01T00:00:00Z\nactive = true",
                "2 [[data]] keys are marked active",
            ),
            (
                "0123456789abcdeffedcba9876543210",
                "0123456789abcdeffedcba98765432",
                "has 15 bytes; sm4-gcm keys must have 16",
            ),
            (
                "0123456789abcdeffedcba9876543210",
                "0123456789abcdeffedcba987654321z",
                "not hexadecimal",
            ),
            (
                "0123456789abcdeffedcba9876543210",
                "0123456789abcdeffedcba987654321",
                "even number",
            ),
            ("\"sm4-gcm\"", "\"des\"", "unknown algorithm `des`"),
            (
                "id = \"b-20261125-aaaa\"",
                "id = \"d-20261125-1a2b\"",
                "appears more than once",
            ),
            ("id = \"b-20261125-aaaa\"", "id = \"b:1\"", "is invalid"),
            (
                "version = 1",
                "version = 2",
                "unsupported key file version 2",
            ),
            ("\"hmac-sm3\"", "\"hmac-sha256\"", "only hmac-sm3"),
            (
                "2222222222222222222222222222222222222222222222222222222222222222",
                "2222",
                "must have 32",
            ),
            (
                "active = true\n\n[[audit]]",
                "actve = true\n\n[[audit]]",
                "unknown field `actve`",
            ),
        ];
        for (from, to, expected) in cases {
            assert!(SAMPLE.contains(from), "{from}");
            let text = SAMPLE.replacen(from, to, 1);
            let msg = reason(Keyring::from_toml(&text).unwrap_err());
            assert!(msg.contains(expected), "{to}: {msg}");
        }
        let no_audit = SAMPLE.split("[[audit]]").next().unwrap();
        assert!(reason(Keyring::from_toml(no_audit).unwrap_err()).contains("no [[audit]] key"));
        let msg = reason(Keyring::from_toml("version = 1\n[[data]]\nkey = \"00\n").unwrap_err());
        assert!(msg.contains("line 3"), "{msg}");
        assert!(
            !msg.contains("\"00"),
            "the parser's snippet must not be echoed: {msg}"
        );
    }

    #[test]
    fn generate_and_rotate() {
        let mut ring = Keyring::generate(FieldAlgorithm::Sm4Gcm);
        assert_eq!(ring.active_data().key_bytes().len(), 16);
        assert!(ring.active_data().id().starts_with("d-"));
        assert!(ring.active_blind().id().starts_with("b-"));
        assert!(ring.active_audit().id().starts_with("a-"));
        let first = ring.active_data().id().to_owned();
        let second = ring.rotate_data(FieldAlgorithm::Aes256Gcm);
        assert_ne!(first, second);
        assert_eq!(ring.active_data().id(), second);
        assert_eq!(ring.active_data().key_bytes().len(), 32);
        assert!(!ring.data_key(&first).unwrap().is_active());
        let old_audit = ring.active_audit().id().to_owned();
        let new_audit = ring.rotate_audit();
        assert_eq!(ring.active_audit().id(), new_audit);
        assert!(ring.audit_key(&old_audit).is_some());
        let new_blind = ring.rotate_blind();
        assert_eq!(ring.active_blind().id(), new_blind);
        assert_eq!(ring.blind_keys().len(), 2);
        let parsed = Keyring::from_toml(&ring.to_toml()).unwrap();
        assert_eq!(parsed.active_data().id(), second);
        assert_eq!(
            parsed.data_key(&first).unwrap().key_bytes(),
            ring.data_key(&first).unwrap().key_bytes()
        );
        assert!(ring.to_toml().starts_with("# Yunying key file."));
    }

    #[test]
    fn dates() {
        assert_eq!(utc_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_rfc3339(1_795_644_600), "2026-11-25T22:10:00Z");
        assert_eq!(utc_rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc_date_compact(1_795_644_600), "20261125");
    }

    #[test]
    fn file_round_trip_and_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/sub/yunying-keys.toml");
        let ring = Keyring::generate(FieldAlgorithm::Aes256Gcm);
        ring.write_file(&path).unwrap();
        let loaded = Keyring::load_file(&path).unwrap();
        assert_eq!(loaded.to_toml(), ring.to_toml());
        // Only the key file is left in the directory (no temporary file).
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("yunying-keys.toml")]);
        // Overwriting works.
        let mut ring2 = ring.clone();
        ring2.rotate_data(FieldAlgorithm::Sm4Gcm);
        ring2.write_file(&path).unwrap();
        assert_eq!(Keyring::load_file(&path).unwrap().data_keys().len(), 2);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(path.parent().unwrap()), 0o700);
            assert_eq!(mode(&dir.path().join("keys")), 0o700);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
            let err = Keyring::load_file(&path).unwrap_err();
            assert!(
                matches!(err, SecurityError::KeyFilePermissions { mode: 0o640, .. }),
                "{err:?}"
            );
            let msg = err.to_string();
            assert!(
                msg.contains("readable by group or others") && msg.contains("chmod 600"),
                "{msg}"
            );
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o604)).unwrap();
            assert!(Keyring::load_file(&path).is_err());
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
            assert!(Keyring::load_file(&path).is_ok());
        }
        let missing = Keyring::load_file(dir.path().join("missing.toml")).unwrap_err();
        assert!(matches!(missing, SecurityError::Io { .. }), "{missing:?}");
        assert!(missing.to_string().contains("missing.toml"));
    }

    #[test]
    fn load_command_reads_stdout() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.toml");
        std::fs::write(&path, SAMPLE).unwrap();
        let ring = Keyring::load_command(&format!("cat '{}'", path.display())).unwrap();
        assert_eq!(ring.active_data().id(), "d-20261125-1a2b");

        let printf = format!("printf '%s' '{}'", SAMPLE.replace('\'', "'\\''"));
        assert_eq!(
            Keyring::load_command(&printf).unwrap().active_audit().id(),
            "a-20261125-bbbb"
        );

        let err = Keyring::load_command("echo 'kms: token expired' >&2; exit 3").unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, SecurityError::KeyCommand { .. }));
        assert!(
            msg.contains("kms: token expired") && msg.contains('3'),
            "{msg}"
        );

        let err = Keyring::load_command("echo 'version = 7'; echo warn >&2")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unsupported key file version 7") && err.contains("warn"),
            "{err}"
        );

        let err = Keyring::load_command("kms-client --token s3cr3t; exit 1")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("s3cr3t"), "{err}");
        assert!(Keyring::load_command("  ").is_err());
    }

    #[test]
    fn audit_mac_and_thread_safety() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Keyring>();
        let ring = Keyring::from_toml(SAMPLE).unwrap();
        assert_eq!(
            ring.audit_mac("a-20261125-bbbb", b"x"),
            Some(mac::hmac_sm3(&[0x22; 32], b"x"))
        );
        assert_eq!(ring.audit_mac("d-20261125-1a2b", b"x"), None);
    }

    #[test]
    fn algorithm_names() {
        assert_eq!(
            "SM4-GCM".parse::<FieldAlgorithm>().unwrap(),
            FieldAlgorithm::Sm4Gcm
        );
        assert_eq!(
            "aes-256-gcm".parse::<FieldAlgorithm>().unwrap(),
            FieldAlgorithm::Aes256Gcm
        );
        assert!("rot13".parse::<FieldAlgorithm>().is_err());
        assert_eq!(FieldAlgorithm::default().to_string(), "sm4-gcm");
    }
}
