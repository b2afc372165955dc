//! Security administration from the server's command line, for scripting
//! and for the first set-up: `yunying user`, `yunying token`, `yunying
//! audit`, `yunying keys`, `yunying institution`. The operator on the
//! server acts as the platform itself (every command is audited, on the
//! node's `-cli` chain); secrets are printed once and never logged.

use std::io::Write;
use std::sync::Arc;

use yunying_archive::identity::{CredentialRequest, UserAdministration, UserRequest};
use yunying_archive::policy::parse_actions;
use yunying_archive::{Archive, Caller};
use yunying_index::{AuditQuery, CredentialKind, NewInstitution};

/// `yunying user …`
#[derive(clap::Subcommand, Debug)]
pub enum UserCommand {
    /// Creates an account. Without --password-env the password is random,
    /// printed once, and must be changed at first sign-in.
    Add {
        username: String,
        /// Role(s): system-admin, security-admin, audit-admin, institution-admin,
        /// radiologist, reviewing-radiologist, clinician, technician.
        #[arg(long = "role", required = true, value_delimiter = ',')]
        roles: Vec<String>,
        /// The institution (code) the user works for; none for platform administrators.
        #[arg(long, value_name = "CODE")]
        institution: Option<String>,
        /// Display name.
        #[arg(long, default_value = "")]
        name: String,
        /// Takes the password from this environment variable (never from the command line).
        #[arg(long, value_name = "VAR")]
        password_env: Option<String>,
    },
    /// Lists accounts.
    List,
    /// Clears a lockout.
    Unlock { username: String },
    /// Disables an account (its sessions end).
    Disable { username: String },
    /// Re-enables an account.
    Enable { username: String },
    /// Sets a random temporary password (printed once; to be changed at sign-in).
    ResetPassword { username: String },
    /// Removes the TOTP second factor (a lost phone); the user enrols again at sign-in.
    #[command(name = "reset-2fa")]
    Reset2fa { username: String },
    /// Changes an account's roles.
    SetRoles {
        username: String,
        #[arg(long = "role", required = true, value_delimiter = ',')]
        roles: Vec<String>,
    },
}

/// `yunying token …`
#[derive(clap::Subcommand, Debug)]
pub enum TokenCommand {
    /// Creates an API token (or, with --client, a service account for OAuth2
    /// client credentials); its secret is printed once.
    Create {
        #[arg(long)]
        name: String,
        /// Institution (code) whose data it reaches; without it, the whole region.
        #[arg(long, value_name = "CODE")]
        institution: Option<String>,
        /// Actions, comma-separated: query, read, export, store, update, share,
        /// view-statistics, record-encounters (a HIS feed), or "all".
        #[arg(long, value_delimiter = ',', required = true)]
        actions: Vec<String>,
        /// Expires after this many days (default: never).
        #[arg(long)]
        expires_days: Option<i64>,
        /// A service account (client id + secret) instead of a bearer token.
        #[arg(long)]
        client: bool,
        /// Writes the secret to this file (mode 0600) instead of printing it.
        #[arg(long, value_name = "FILE")]
        out: Option<std::path::PathBuf>,
    },
    /// Lists tokens and service accounts (never their secrets).
    List,
    /// Revokes a token or service account by its id.
    Revoke { id: String },
}

/// `yunying audit …`
#[derive(clap::Subcommand, Debug)]
pub enum AuditCommand {
    /// Checks every audit chain: an edited, removed or re-linked record, or
    /// removed newest records, are reported; the exit status is 1 then.
    Verify {
        /// The report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Prints records (newest first) as JSON lines, DICOM PS3.15 XML or a FHIR Bundle.
    Export {
        #[arg(long, default_value = "json")]
        format: String,
        /// From / to, unix milliseconds.
        #[arg(long)]
        from: Option<i64>,
        #[arg(long)]
        to: Option<i64>,
        #[arg(long)]
        patient: Option<String>,
        #[arg(long)]
        actor: Option<String>,
        #[arg(long, default_value_t = 1000)]
        limit: u32,
    },
}

/// `yunying keys …`
#[derive(clap::Subcommand, Debug)]
pub enum KeysCommand {
    /// Writes a new key file (mode 0600).
    Generate {
        #[arg(long, value_name = "FILE")]
        out: std::path::PathBuf,
        /// sm4-gcm or aes-256-gcm.
        #[arg(long, default_value = "sm4-gcm")]
        algorithm: String,
    },
    /// Shows the key ids of the configured key ring (never the keys).
    Show,
    /// Adds a new active field-encryption key to the configured key file and
    /// re-encrypts every stored personal field with it (old keys stay, to read backups).
    Rotate {
        /// sm4-gcm or aes-256-gcm.
        #[arg(long, default_value = "sm4-gcm")]
        algorithm: String,
        /// Also a new blind-index key (every blind index is recomputed).
        #[arg(long)]
        blind: bool,
        /// Also a new audit MAC key (new records are sealed with it).
        #[arg(long)]
        audit: bool,
    },
}

/// `yunying institution …`
#[derive(clap::Subcommand, Debug)]
pub enum InstitutionCommand {
    /// Adds or updates a member institution.
    Add {
        code: String,
        #[arg(long)]
        name_zh: String,
        #[arg(long, default_value = "")]
        name_en: String,
        /// Its patient-ID issuer (default: the code).
        #[arg(long)]
        issuer: Option<String>,
        /// The consultation centre: its radiologists read the whole region.
        #[arg(long)]
        regional: bool,
    },
    /// Lists institutions.
    List,
}

type R = Result<(), String>;

fn algorithm(s: &str) -> Result<yunying_security::FieldAlgorithm, String> {
    match s {
        "sm4-gcm" => Ok(yunying_security::FieldAlgorithm::Sm4Gcm),
        "aes-256-gcm" => Ok(yunying_security::FieldAlgorithm::Aes256Gcm),
        other => Err(format!("{other:?} is sm4-gcm or aes-256-gcm")),
    }
}

fn write_secret_file(path: &std::path::Path, secret: &str) -> R {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o.open(path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    f.write_all(secret.as_bytes()).map_err(|e| e.to_string())
}

pub async fn user(archive: Arc<Archive>, cmd: UserCommand) -> R {
    let caller = Caller::cli("user");
    let e = |e: yunying_archive::ArchiveError| e.to_string();
    match cmd {
        UserCommand::Add { username, roles, institution, name, password_env } => {
            let (password, temporary) = match password_env {
                Some(var) => (std::env::var(&var).map_err(|_| format!("the environment variable {var} is not set"))?, false),
                None => (crate::accounts::random_password(), true),
            };
            let u = archive
                .create_user(
                    &caller,
                    &UserRequest { username, display_name: name, institution_code: institution, roles, password: password.clone(), temporary },
                )
                .await
                .map_err(e)?;
            println!("created {} ({})", u.username, u.roles.join(", "));
            if temporary {
                println!("temporary password (change it at first sign-in): {password}");
            }
        }
        UserCommand::List => {
            let institutions = archive.index().institutions().await.map_err(|e| e.to_string())?;
            println!("{:<20} {:<28} {:<12} {:<8} STATE", "USERNAME", "ROLES", "INSTITUTION", "2FA");
            for u in archive.index().users().await.map_err(|e| e.to_string())? {
                let inst = u
                    .institution_id
                    .and_then(|i| institutions.iter().find(|x| x.id == i))
                    .map(|i| i.code.clone())
                    .unwrap_or_else(|| "-".into());
                let now = yunying_util::time::now_millis();
                let state = if u.disabled {
                    "disabled"
                } else if u.locked_until.is_some_and(|l| l > now) {
                    "locked"
                } else {
                    "active"
                };
                println!(
                    "{:<20} {:<28} {:<12} {:<8} {}",
                    u.username,
                    u.roles.join(","),
                    inst,
                    if u.totp_enabled { "yes" } else { "no" },
                    state
                );
            }
        }
        UserCommand::Unlock { username } => {
            archive.administer_user(&caller, &username, &UserAdministration { unlock: true, ..Default::default() }).await.map_err(e)?;
            println!("unlocked {username}");
        }
        UserCommand::Disable { username } => {
            archive.administer_user(&caller, &username, &UserAdministration { disabled: Some(true), ..Default::default() }).await.map_err(e)?;
            println!("disabled {username}");
        }
        UserCommand::Enable { username } => {
            archive.administer_user(&caller, &username, &UserAdministration { disabled: Some(false), ..Default::default() }).await.map_err(e)?;
            println!("enabled {username}");
        }
        UserCommand::ResetPassword { username } => {
            let pw = crate::accounts::random_password();
            archive.administer_user(&caller, &username, &UserAdministration { unlock: true, reset_password: Some(pw.clone()), ..Default::default() }).await.map_err(e)?;
            println!("temporary password for {username} (change it at sign-in): {pw}");
        }
        UserCommand::Reset2fa { username } => {
            archive
                .administer_user(&caller, &username, &UserAdministration { reset_second_factor: true, ..Default::default() })
                .await
                .map_err(e)?;
            println!("{username}: second factor removed; enrolment is asked at the next sign-in");
        }
        UserCommand::SetRoles { username, roles } => {
            let u = archive.administer_user(&caller, &username, &UserAdministration { roles: Some(roles), ..Default::default() }).await.map_err(e)?;
            println!("{username}: {}", u.roles.join(", "));
        }
    }
    archive.audit_trail().flush().await;
    Ok(())
}

pub async fn token(archive: Arc<Archive>, cmd: TokenCommand) -> R {
    let caller = Caller::cli("token");
    match cmd {
        TokenCommand::Create { name, institution, actions, expires_days, client, out } => {
            let actions = parse_actions(&actions.join(","))?;
            let req = CredentialRequest {
                kind: if client { CredentialKind::Client } else { CredentialKind::Token },
                name,
                institution_code: institution,
                actions,
                expires_at: expires_days.map(|d| yunying_util::time::now_millis() + d * 86_400_000),
            };
            let (c, secret) = archive.create_credential(&caller, &req).await.map_err(|e| e.to_string())?;
            match out {
                Some(path) => {
                    write_secret_file(&path, &secret)?;
                    println!("created {} {} (secret written to {})", c.kind.code(), c.public_id, path.display());
                }
                None if client => println!("client_id: {}\nclient_secret: {secret}", c.public_id),
                None => println!("{secret}"),
            }
        }
        TokenCommand::List => {
            println!("{:<24} {:<7} {:<24} {:<40} STATE", "ID", "KIND", "NAME", "ACTIONS");
            let now = yunying_util::time::now_millis();
            for c in archive.index().credentials().await.map_err(|e| e.to_string())? {
                let state = if c.revoked_at.is_some() {
                    "revoked"
                } else if c.expires_at.is_some_and(|x| x <= now) {
                    "expired"
                } else {
                    "active"
                };
                println!("{:<24} {:<7} {:<24} {:<40} {}", c.public_id, c.kind.code(), c.name, c.actions.join(","), state);
            }
        }
        TokenCommand::Revoke { id } => {
            let done = archive.revoke_credential(&caller, &id).await.map_err(|e| e.to_string())?;
            println!("{}", if done { format!("revoked {id}") } else { format!("{id} was already revoked") });
        }
    }
    archive.audit_trail().flush().await;
    Ok(())
}

pub async fn audit(archive: Arc<Archive>, cmd: AuditCommand) -> R {
    match cmd {
        AuditCommand::Verify { json } => {
            let chains = archive.audit_trail().verify().await.map_err(|e| e.to_string())?;
            let clean = chains.iter().all(|c| c.is_clean());
            let mut e = archive.audit_event(
                &Caller::cli("audit"),
                yunying_audit::Action::AuditVerified,
                if clean { yunying_audit::Outcome::Success } else { yunying_audit::Outcome::SeriousFailure },
            );
            e.detail = serde_json::json!({ "clean": clean, "chains": chains.len() });
            archive.audit(e).await;
            archive.audit_trail().flush().await;
            if json {
                println!("{}", serde_json::json!({ "clean": clean, "chains": chains }));
            } else {
                for c in &chains {
                    let status = if c.is_clean() { "ok" } else { "TAMPERED" };
                    println!("chain {:<24} {:>8} records  {status}", c.chain, c.report.checked);
                    for p in &c.report.problems {
                        println!("  record {}: {:?}", p.seq, p.kind);
                    }
                    for seq in &c.inconsistent {
                        println!("  record {seq}: its search columns differ from the sealed event (edited)");
                    }
                    match &c.anchor {
                        None => println!("  end of chain: its sealed anchor is missing (removed)"),
                        Some(yunying_audit::chain::AnchorStatus::Matches) => {}
                        Some(a) => println!("  end of chain: {a:?}"),
                    }
                }
                if chains.is_empty() {
                    println!("no audit records yet");
                }
            }
            if clean { Ok(()) } else { Err("the audit trail has been tampered with (see above)".into()) }
        }
        AuditCommand::Export { format, from, to, patient, actor, limit } => {
            let q = AuditQuery { from, to, patient_id: patient, actor_id: actor, limit, ..Default::default() };
            let records = archive.audit_trail().search(&q).await.map_err(|e| e.to_string())?;
            let node = archive.settings().node.clone();
            match format.as_str() {
                "json" => {
                    for r in &records {
                        println!("{}", serde_json::to_string(r).unwrap_or_default());
                    }
                }
                "dicom" => {
                    for r in &records {
                        println!("{}", yunying_audit::dicom_xml::to_audit_message(r, &node));
                    }
                }
                "fhir" => println!(
                    "{}",
                    yunying_audit::fhir::bundle(records.iter(), &node, yunying_audit::fhir::BundleType::Collection, None)
                ),
                other => return Err(format!("format {other:?} is json, dicom or fhir")),
            }
            let mut e = archive.audit_event(&Caller::cli("audit"), yunying_audit::Action::AuditExported, yunying_audit::Outcome::Success);
            e.detail = serde_json::json!({ "format": format, "count": records.len() });
            archive.audit(e).await;
            archive.audit_trail().flush().await;
            Ok(())
        }
    }
}

/// `keys generate` needs no archive.
pub fn generate_keys(out: &std::path::Path, alg: &str) -> R {
    if out.exists() {
        return Err(format!("{} exists; refusing to overwrite a key file", out.display()));
    }
    let ring = yunying_security::Keyring::generate(algorithm(alg)?);
    ring.write_file(out).map_err(|e| e.to_string())?;
    println!("wrote {} (mode 0600): data key {}, blind-index key {}, audit key {}", out.display(), ring.active_data().id(), ring.active_blind().id(), ring.active_audit().id());
    Ok(())
}

pub fn show_keys(ring: &yunying_security::Keyring) {
    for k in ring.data_keys() {
        println!("data   {:<28} {:<12} {}", k.id(), k.algorithm().as_str(), if k.is_active() { "active" } else { "" });
    }
    for k in ring.blind_keys() {
        println!("blind  {:<28} {:<12} {}", k.id(), "hmac-sm3", if k.is_active() { "active" } else { "" });
    }
    for k in ring.audit_keys() {
        println!("audit  {:<28} {:<12} {}", k.id(), "hmac-sm3", if k.is_active() { "active" } else { "" });
    }
}

/// Re-encrypts every stored personal field with the ring's active keys.
pub async fn reencrypt(archive: &Archive, ring: &yunying_security::Keyring) -> Result<u64, String> {
    use yunying_security::{blind, field};
    let mut after = 0i64;
    let mut done = 0u64;
    loop {
        let page = archive.index().secrets_page(after, 500).await.map_err(|e| e.to_string())?;
        if page.is_empty() {
            break;
        }
        for (id, s) in &page {
            after = *id;
            let aad = yunying_archive::personal_data::aad(&s.kind);
            let clear = field::decrypt(ring, &s.ciphertext, &aad).map_err(|e| format!("personal field {id}: {e}"))?;
            let ct = field::encrypt(ring, &clear, &aad);
            let bi = blind::blind_index(ring, &s.kind, &clear);
            archive.index().rewrite_secret(*id, &ct, &bi).await.map_err(|e| e.to_string())?;
            done += 1;
        }
    }
    Ok(done)
}

pub async fn institution(archive: Arc<Archive>, cmd: InstitutionCommand) -> R {
    match cmd {
        InstitutionCommand::Add { code, name_zh, name_en, issuer, regional } => {
            let inst = archive
                .index()
                .upsert_institution(&NewInstitution {
                    code: code.clone(),
                    name_zh,
                    name_en,
                    patient_id_issuer: issuer,
                    ae_titles: vec![],
                })
                .await
                .map_err(|e| e.to_string())?;
            archive.set_regional(&Caller::cli("institution"), &code, regional).await.map_err(|e| e.to_string())?;
            archive.audit_trail().flush().await;
            println!("{} {} (issuer {}){}", inst.code, inst.name_zh, inst.patient_id_issuer, if regional { ", regional" } else { "" });
        }
        InstitutionCommand::List => {
            let regional = archive.index().regional_institutions().await.map_err(|e| e.to_string())?;
            for i in archive.index().institutions().await.map_err(|e| e.to_string())? {
                println!(
                    "{:<10} {:<24} {:<12} {}",
                    i.code,
                    i.name_zh,
                    i.patient_id_issuer,
                    if regional.contains(&i.id) { "regional" } else { "" }
                );
            }
        }
    }
    Ok(())
}
