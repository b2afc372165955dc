//! The command line: `serve`, `default-config`, `synth`, `import`, `ae`,
//! `pull`, `echo`, `retention`; `reindex`, `backup`, `restore`; `storage`, `verify`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};

use crate::app::anyhow_like::{Error, Result};
use crate::config::{Overrides, Settings};

#[derive(Parser, Debug)]
#[command(name = "yunying", version, about = "Yunying (云影): a regional cloud imaging platform")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug, Clone, Default)]
struct Common {
    /// Configuration file (TOML; see `yunying default-config`). Env: YUNYING_CONFIG.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (catalog, blobs, staging). Env: YUNYING_DATA. Default: ./yunying-data.
    #[arg(long, global = true, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Catalog database URL (postgres://... for a shared catalog). Env: YUNYING_CATALOG_URL.
    #[arg(long, global = true, value_name = "URL")]
    catalog_url: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs the platform.
    Serve {
        #[command(flatten)]
        common: Common,
        /// HTTP listen address. Env: YUNYING_HTTP. Default: 127.0.0.1:8080.
        #[arg(long, value_name = "ADDR")]
        http: Option<String>,
        /// DICOM listen address, or "off". Env: YUNYING_DICOM. Default: 127.0.0.1:11112.
        #[arg(long, value_name = "ADDR")]
        dicom: Option<String>,
        /// DICOM TLS listen address, or "off" (certificates: [dicom.tls] in the file). Env: YUNYING_DICOM_TLS.
        #[arg(long, value_name = "ADDR")]
        dicom_tls: Option<String>,
        /// Seeds the region's institutions and, on first start, synthetic demo studies.
        #[arg(long)]
        demo: bool,
        /// Number of demo studies.
        #[arg(long, default_value_t = 16, requires = "demo")]
        demo_studies: usize,
        /// Slices of each demo chest CT series (2 mm apart at 120: thin
        /// enough for MPR and 3D in the viewer; other series scale with it).
        #[arg(long, default_value_t = 120, requires = "demo")]
        demo_slices: usize,
    },
    /// Prints a commented example configuration.
    DefaultConfig,
    /// Makes realistic synthetic studies (Part-10 files, or sent by STOW-RS).
    Synth {
        /// Writes files under this directory (`<study>/<series>/<sop>.dcm`).
        #[arg(long, value_name = "DIR", conflicts_with = "url")]
        out: Option<PathBuf>,
        /// Sends them to this DICOMweb root, e.g. http://127.0.0.1:8080/dicom-web.
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// Number of studies.
        #[arg(long, default_value_t = 4)]
        studies: usize,
        /// Slices of each CT series.
        #[arg(long, default_value_t = 40)]
        slices: usize,
        /// Seed (the same seed makes the same studies, UIDs included).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Makes one study with a single CT series of N slices instead (the benchmark series).
        #[arg(long, value_name = "N")]
        single_series: Option<usize>,
        /// Objects per STOW-RS request.
        #[arg(long, default_value_t = 50)]
        batch: usize,
    },
    /// Imports a folder tree of Part-10 files (historical migration); resumable.
    Import {
        /// The folder to import.
        dir: PathBuf,
        #[command(flatten)]
        common: Common,
        /// Institution code the objects come from (default: the configured default institution).
        #[arg(long, value_name = "CODE")]
        institution: Option<String>,
        /// Sends to a running server over STOW-RS instead of opening the data directory.
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// Files in flight.
        #[arg(long, default_value_t = 4)]
        parallel: usize,
        /// Forgets what earlier runs of this import finished.
        #[arg(long)]
        restart: bool,
    },
    /// Manages the registry of remote DICOM AEs (modalities, PACS, workstations).
    Ae {
        #[command(flatten)]
        common: Common,
        #[command(subcommand)]
        command: crate::ae_cmd::AeCommand,
    },
    /// Migrates a legacy PACS by query/retrieve (C-FIND, then C-GET or C-MOVE per study); resumable.
    Pull {
        /// The remote PACS, as AE@host:port.
        #[arg(long, value_name = "AE@HOST:PORT")]
        from: crate::pull::Remote,
        #[command(flatten)]
        common: Common,
        /// Our AE title towards the remote (default: dicom.ae_title).
        #[arg(long, value_name = "AE")]
        ae_title: Option<String>,
        /// Only studies of these dates (DICOM range, e.g. 20150101-20151231).
        #[arg(long, value_name = "RANGE")]
        study_date: Option<String>,
        /// Only this patient's studies.
        #[arg(long, value_name = "ID")]
        patient_id: Option<String>,
        /// Only studies with this modality.
        #[arg(long, value_name = "MODALITY")]
        modality: Option<String>,
        /// Retrieve by C-MOVE to this AE (a running Yunying registered at the remote) instead of C-GET.
        #[arg(long, value_name = "AE")]
        move_to: Option<String>,
        /// Institution code the pulled objects belong to (default: the remote AE's
        /// institution if registered, else the default institution).
        #[arg(long, value_name = "CODE")]
        institution: Option<String>,
        /// Forgets what earlier runs of this pull finished.
        #[arg(long)]
        restart: bool,
        #[command(flatten)]
        tls: TlsClient,
    },
    /// Accounts: add, list, unlock, disable, reset passwords, set roles.
    User {
        #[command(flatten)]
        common: Common,
        #[command(subcommand)]
        command: crate::security_cmd::UserCommand,
    },
    /// API tokens and service accounts (OAuth2 client credentials).
    Token {
        #[command(flatten)]
        common: Common,
        #[command(subcommand)]
        command: crate::security_cmd::TokenCommand,
    },
    /// The audit trail: verify its chains, export records.
    Audit {
        #[command(flatten)]
        common: Common,
        #[command(subcommand)]
        command: crate::security_cmd::AuditCommand,
    },
    /// Key files: generate, show ids, rotate (re-encrypting stored personal data).
    Keys {
        #[command(flatten)]
        common: Common,
        #[command(subcommand)]
        command: crate::security_cmd::KeysCommand,
    },
    /// Member institutions (tenants).
    Institution {
        #[command(flatten)]
        common: Common,
        #[command(subcommand)]
        command: crate::security_cmd::InstitutionCommand,
    },
    /// Shows the forwarding backlog of the routing rules, per destination.
    ForwardStatus {
        #[command(flatten)]
        common: Common,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// The streaming copies (HTJ2K RPCL frames made after ingest): shows the
    /// queue, or drops and rebuilds them.
    Derive {
        #[command(flatten)]
        common: Common,
        /// Drops the derived copies (of one study with --study, else all) and
        /// queues them to be made again by the running server.
        #[arg(long)]
        rebuild: bool,
        /// Only this study.
        #[arg(long, value_name = "UID", requires = "rebuild")]
        study: Option<String>,
        /// Makes the queued copies here, now, and returns when none is left.
        #[arg(long)]
        wait: bool,
        /// One JSON object.
        #[arg(long)]
        json: bool,
    },
    /// The storage tiers: status, migration between stores, purge, cloud sync.
    Storage {
        #[command(flatten)]
        common: Common,
        #[command(subcommand)]
        command: crate::storage_cmd::StorageCommand,
    },
    /// Re-reads every object of a tier and compares it with the catalog's
    /// checksums; damaged local objects are restored from the cloud tier.
    Verify {
        #[command(flatten)]
        common: Common,
        /// The tier: local or cloud.
        #[arg(long, default_value = "local")]
        store: String,
        /// Read rate limit in MB/s (0: unthrottled).
        #[arg(long, default_value_t = 0)]
        mb_per_s: u32,
        /// Only report; do not restore damaged local objects from the cloud tier.
        #[arg(long)]
        no_repair: bool,
    },
    /// Retention: the expiry report, recomputing every study's retain-until date.
    Retention {
        #[command(flatten)]
        common: Common,
        #[command(subcommand)]
        command: crate::retention_cmd::RetentionCommand,
    },
    /// Checks a DICOM peer with C-ECHO (verification).
    Echo {
        /// The peer, as AE@host:port.
        peer: crate::pull::Remote,
        /// Our calling AE title.
        #[arg(long, default_value = "YUNYING")]
        ae_title: String,
        #[command(flatten)]
        tls: TlsClient,
    },

    // --- catalog rebuild, backup and restore (crates/server/src/reindex.rs, backup.rs) ---
    /// Rebuilds the image catalog from the blob store (objects and ingest journal).
    Reindex {
        #[command(flatten)]
        common: Common,
        /// Adds only what the catalog lacks (after a restore, or to resume an interrupted run).
        #[arg(long)]
        merge: bool,
        /// Objects read and parsed at once.
        #[arg(long, default_value_t = 4)]
        parallel: usize,
    },
    /// Backs up the SQLite catalog (consistent while the server runs) to FILE, with FILE.manifest.json.
    Backup {
        #[command(flatten)]
        common: Common,
        /// The backup file to write (must not exist).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Restores the SQLite catalog from a backup (the server must be stopped).
    Restore {
        #[command(flatten)]
        common: Common,
        /// The backup file (its FILE.manifest.json beside it).
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
    },
}

/// DICOM TLS towards a peer (`echo`, `pull`).
#[derive(Args, Debug, Clone, Default)]
struct TlsClient {
    /// Connects over TLS, trusting the CA certificates of this PEM file.
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// Our certificate chain (PEM), for peers that require client certificates.
    #[arg(long, value_name = "FILE", requires_all = ["tls_ca", "tls_key"])]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// The name the peer's certificate must carry. Default: the host of the peer's address.
    #[arg(long, value_name = "NAME", requires = "tls_ca")]
    tls_server_name: Option<String>,
}

impl TlsClient {
    /// The TLS settings for reaching `address` (`host:port`), if TLS was asked for.
    fn scu(&self, address: &str) -> Result<Option<yunying_dimse::ScuTls>> {
        let Some(ca) = &self.tls_ca else { return Ok(None) };
        let identity = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(crate::config::TlsFiles { cert: cert.clone(), key: key.clone() }),
            _ => None,
        };
        let config = crate::tls::client_config(ca, identity.as_ref())?;
        let host = match &self.tls_server_name {
            Some(n) => n.clone(),
            None => address.rsplit_once(':').map(|(h, _)| h).unwrap_or(address).to_string(),
        };
        Ok(Some(yunying_dimse::ScuTls::new(config, crate::tls::server_name(&host)?)))
    }
}

fn init_logging(settings: &Settings) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(&settings.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if settings.log_json { builder.json().try_init() } else { builder.try_init() };
}

fn cli_settings(common: &Common) -> Result<Settings> {
    let settings = Settings::load(
        common.config.as_deref(),
        &Overrides { data: common.data.clone(), catalog_url: common.catalog_url.clone(), ..Default::default() },
    )?;
    init_cli_logging();
    Ok(settings)
}

/// The archive for an administration command: its audit records go to the
/// node's own `-cli` chain, so a running server's chain is never contended.
/// Beside a running server (it holds the data directory's lock), the
/// staging area is the server's and is left alone.
async fn cli_archive(common: &Common) -> Result<std::sync::Arc<yunying_archive::Archive>> {
    let mut settings = cli_settings(common)?;
    settings.security.node = format!("{}-cli", settings.security.node);
    let server_running =
        matches!(crate::data_lock::acquire(&settings.data, "cli"), Err(crate::data_lock::LockError::InUse(_)));
    crate::app::open_archive_with(&settings, !server_running).await
}

fn init_cli_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("YUNYING_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("yunying").build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("yunying: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("yunying: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::DefaultConfig => {
            print!("{}", crate::config::EXAMPLE);
            Ok(())
        }
        Command::Serve { common, http, dicom, dicom_tls, demo, demo_studies, demo_slices } => {
            let settings = Settings::load(
                common.config.as_deref(),
                &Overrides { http, data: common.data, catalog_url: common.catalog_url, dicom, dicom_tls },
            )?;
            init_logging(&settings);
            let data = settings.data.clone();
            crate::app::serve(settings, move |archive| async move {
                if demo {
                    crate::demo::load(archive, &data, demo_studies, demo_slices).await?;
                }
                Ok(())
            })
            .await
        }
        Command::Synth { out, url, studies, slices, seed, single_series, batch } => {
            init_cli_logging();
            synth(out, url, studies, slices, seed, single_series, batch).await
        }
        Command::Import { dir, common, institution, url, parallel, restart } => {
            let settings = Settings::load(
                common.config.as_deref(),
                &Overrides { data: common.data, catalog_url: common.catalog_url, ..Default::default() },
            )?;
            init_logging(&settings);
            import(settings, dir, institution, url, parallel, restart).await
        }
        Command::Ae { common, command } => {
            let archive = cli_archive(&common).await?;
            // Registry changes are permission changes for machines: audited.
            let change = (!matches!(command, crate::ae_cmd::AeCommand::List { .. })).then(|| format!("{command:?}"));
            let mut out = std::io::stdout();
            crate::ae_cmd::run(archive.index().clone(), command, &mut out).await.map_err(Error)?;
            if let Some(what) = change {
                let mut e = archive.audit_event(
                    &yunying_archive::Caller::cli("ae"),
                    yunying_audit::Action::AeChanged,
                    yunying_audit::Outcome::Success,
                );
                e.detail = serde_json::json!({ "command": what });
                archive.audit(e).await;
                archive.audit_trail().flush().await;
            }
            Ok(())
        }
        Command::Pull { from, common, ae_title, study_date, patient_id, modality, move_to, institution, restart, tls } => {
            let tls = tls.scu(&from.address)?;
            let settings = Settings::load(
                common.config.as_deref(),
                &Overrides { data: common.data, catalog_url: common.catalog_url, ..Default::default() },
            )?;
            init_cli_logging();
            let archive = crate::app::open_archive(&settings).await?;
            let institution = match institution {
                Some(code) => Some(
                    archive
                        .index()
                        .institution_by_code(&code)
                        .await?
                        .ok_or_else(|| Error(format!("no institution with code {code:?}")))?
                        .id,
                ),
                None => archive.index().application_entity(&from.ae_title).await?.map(|ae| ae.institution_id),
            };
            let journal = crate::pull::journal_path(&settings.data, &from);
            if restart {
                let _ = std::fs::remove_file(&journal);
            }
            let options = crate::pull::PullOptions {
                ae_title: ae_title.unwrap_or_else(|| settings.dicom.ae_title.clone()),
                from,
                study_date,
                patient_id,
                modality,
                move_to,
                institution,
                journal,
                progress: true,
                tls,
            };
            let summary = crate::pull::run(archive, options).await.map_err(Error)?;
            print!("{summary}");
            if !summary.studies_failed.is_empty() || summary.instances_failed > 0 {
                return Err(Error("some studies or instances failed; run the same command again to retry them".into()));
            }
            Ok(())
        }
        Command::User { common, command } => {
            let archive = cli_archive(&common).await?;
            crate::security_cmd::user(archive, command).await.map_err(Error)
        }
        Command::Token { common, command } => {
            let archive = cli_archive(&common).await?;
            crate::security_cmd::token(archive, command).await.map_err(Error)
        }
        Command::Audit { common, command } => {
            let archive = cli_archive(&common).await?;
            crate::security_cmd::audit(archive, command).await.map_err(Error)
        }
        Command::Institution { common, command } => {
            let archive = cli_archive(&common).await?;
            crate::security_cmd::institution(archive, command).await.map_err(Error)
        }
        Command::Keys { common, command } => {
            use crate::security_cmd::KeysCommand;
            match command {
                KeysCommand::Generate { out, algorithm } => crate::security_cmd::generate_keys(&out, &algorithm).map_err(Error),
                KeysCommand::Show => {
                    let settings = cli_settings(&common)?;
                    let ring = crate::app::load_keys(&settings)?;
                    crate::security_cmd::show_keys(&ring);
                    Ok(())
                }
                KeysCommand::Rotate { algorithm, blind, audit } => {
                    let settings = cli_settings(&common)?;
                    let crate::config::KeySource::File { path, .. } = &settings.security.keys else {
                        return Err(Error("keys come from security.key_command: rotate them in the key service".into()));
                    };
                    let mut ring = (*crate::app::load_keys(&settings)?).clone();
                    let alg = match algorithm.as_str() {
                        "aes-256-gcm" => yunying_security::FieldAlgorithm::Aes256Gcm,
                        "sm4-gcm" => yunying_security::FieldAlgorithm::Sm4Gcm,
                        other => return Err(Error(format!("{other:?} is sm4-gcm or aes-256-gcm"))),
                    };
                    let id = ring.rotate_data(alg);
                    if blind {
                        ring.rotate_blind();
                    }
                    if audit {
                        ring.rotate_audit();
                    }
                    // The new keys are saved before anything is encrypted with
                    // them (the old ones stay in the file): an interrupted
                    // rotation leaves every field readable, and running it
                    // again finishes it.
                    ring.write_file(path).map_err(|e| Error(format!("cannot write {}: {e}", path.display())))?;
                    let archive = cli_archive(&common).await?;
                    let n = crate::security_cmd::reencrypt(&archive, &ring).await.map_err(Error)?;
                    let mut e = archive.audit_event(
                        &yunying_archive::Caller::cli("keys"),
                        yunying_audit::Action::KeyRotated,
                        yunying_audit::Outcome::Success,
                    );
                    e.detail = serde_json::json!({ "data_key": id, "blind": blind, "audit": audit, "reencrypted": n });
                    archive.audit(e).await;
                    archive.audit_trail().flush().await;
                    println!("new data key {id}; {n} personal fields re-encrypted; restart the server to use the new keys");
                    Ok(())
                }
            }
        }
        Command::ForwardStatus { common, json } => {
            let settings = Settings::load(
                common.config.as_deref(),
                &Overrides { data: common.data, catalog_url: common.catalog_url, ..Default::default() },
            )?;
            init_cli_logging();
            let index = crate::app::open_catalog(&settings).await?;
            let backlog = index.forward_backlog().await?;
            if json {
                for b in &backlog {
                    println!("{}", serde_json::to_string(b).unwrap_or_default());
                }
            } else if backlog.is_empty() {
                println!("nothing waits to be forwarded");
            } else {
                println!("{:<16} {:>8} {:>8}  {:<20} LAST ERROR", "DESTINATION", "PENDING", "FAILED", "OLDEST PENDING");
                for b in &backlog {
                    let oldest = b
                        .oldest_pending_at
                        .map(|ms| format!("{:.0} min ago", (yunying_util::time::now_millis() - ms) as f64 / 60_000.0))
                        .unwrap_or_else(|| "-".into());
                    println!(
                        "{:<16} {:>8} {:>8}  {:<20} {}",
                        b.destination,
                        b.pending,
                        b.failed,
                        oldest,
                        b.last_error.as_deref().unwrap_or("")
                    );
                }
            }
            Ok(())
        }
        Command::Storage { common, command } => {
            let settings = cli_settings(&common)?;
            let archive = cli_archive(&common).await?;
            crate::storage_cmd::run(&settings, archive, command).await
        }
        Command::Verify { common, store, mb_per_s, no_repair } => {
            let archive = cli_archive(&common).await?;
            crate::storage_cmd::verify(archive, &store, mb_per_s, !no_repair).await
        }
        Command::Derive { common, rebuild, study, wait, json } => {
            let settings = Settings::load(
                common.config.as_deref(),
                &Overrides { data: common.data, catalog_url: common.catalog_url, ..Default::default() },
            )?;
            init_cli_logging();
            let archive = crate::app::open_archive(&settings).await?;
            if rebuild {
                let scope = study.as_deref().map(yunying_index::Scope::study);
                let (deleted, marked) = archive.rebuild_derived(scope.as_ref()).await?;
                eprintln!("dropped {deleted} derived frame(s); {marked} instance(s) queued for a new streaming copy");
            }
            if wait {
                let started = Instant::now();
                while archive.derive_once().await? > 0 {}
                eprintln!("derive queue empty after {:.1} s", started.elapsed().as_secs_f64());
            }
            let b = archive.derive_backlog().await?;
            if json {
                println!("{}", serde_json::to_string(&b).unwrap_or_default());
            } else {
                let oldest = b
                    .oldest_wanted_at
                    .map(|ms| format!(", oldest waiting {:.0} s", (yunying_util::time::now_millis() - ms) as f64 / 1000.0))
                    .unwrap_or_default();
                println!("streaming copies: {} made, {} waiting{oldest}, {} failed", b.made, b.wanted, b.failed);
                if let Some(e) = &b.last_error {
                    println!("last error: {e}");
                }
            }
            Ok(())
        }
        Command::Retention { common, command } => {
            let archive = cli_archive(&common).await?;
            crate::retention_cmd::run(archive, command, &mut std::io::stdout()).await.map_err(Error)
        }
        Command::Echo { peer, ae_title, tls } => {
            init_cli_logging();
            let mut req = yunying_dimse::Requestor::new(&ae_title, &peer.ae_title, &peer.address);
            req.tls = tls.scu(&peer.address)?;
            let started = Instant::now();
            let mut a = yunying_dimse::associate(&req, &[yunying_dimse::Proposal::native(yunying_dimse::uids::VERIFICATION)], &[])
                .await?;
            let status = a.echo().await?;
            let _ = a.release().await;
            if status != 0 {
                return Err(Error(format!("C-ECHO answered status 0x{status:04X}")));
            }
            println!("C-ECHO {}@{}: success in {:.1} ms", peer.ae_title, peer.address, started.elapsed().as_secs_f64() * 1e3);
            Ok(())
        }

        // --- catalog rebuild, backup and restore ---
        Command::Reindex { common, merge, parallel } => reindex(&common, merge, parallel).await,
        Command::Backup { common, out } => {
            let settings = cli_settings(&common)?;
            print!("{}", crate::backup::backup(&settings, &out).await.map_err(Error)?);
            Ok(())
        }
        Command::Restore { common, from } => {
            let settings = cli_settings(&common)?;
            print!("{}", crate::backup::restore(&settings, &from).await.map_err(Error)?);
            // Recorded in the restored catalog's trail (the server is stopped).
            let archive = cli_archive(&common).await?;
            let mut e = archive.audit_event(
                &yunying_archive::Caller::cli("restore"),
                yunying_audit::Action::Update,
                yunying_audit::Outcome::Success,
            );
            e.detail = serde_json::json!({ "command": "restore", "from": from.display().to_string() });
            archive.audit(e).await;
            archive.audit_trail().flush().await;
            Ok(())
        }
    }
}

/// `yunying reindex`: the run, its summary, and one audit record.
async fn reindex(common: &Common, merge: bool, parallel: usize) -> Result<()> {
    let archive = cli_archive(common).await?;
    let options = crate::reindex::ReindexOptions { merge, parallel, progress: true };
    let summary = crate::reindex::run(archive.clone(), options).await.map_err(Error)?;
    print!("{summary}");
    let mut e = archive.audit_event(
        &yunying_archive::Caller::cli("reindex"),
        yunying_audit::Action::Update,
        if summary.failed == 0 { yunying_audit::Outcome::Success } else { yunying_audit::Outcome::MinorFailure },
    );
    e.detail = serde_json::json!({
        "command": "reindex",
        "merge": merge,
        "objects": summary.objects,
        "indexed": summary.indexed,
        "new_versions": summary.new_versions,
        "already_present": summary.already_present,
        "failed": summary.failed,
    });
    archive.audit(e).await;
    archive.audit_trail().flush().await;
    if summary.failed > 0 {
        return Err(Error(format!("{} objects failed (see above); fix or remove them and run `yunying reindex --merge` again", summary.failed)));
    }
    Ok(())
}

async fn synth(
    out: Option<PathBuf>,
    url: Option<String>,
    studies: usize,
    slices: usize,
    seed: u64,
    single_series: Option<usize>,
    batch: usize,
) -> Result<()> {
    let institutions = yunying_synth::region_institutions();
    let plans = match single_series {
        Some(n) => vec![yunying_synth::ct_series_study(seed, n, &institutions[0])],
        None => yunying_synth::plan(&yunying_synth::SynthOptions {
            seed,
            studies,
            ct_slices: slices,
            institutions,
            ..Default::default()
        }),
    };
    let total: usize = plans.iter().map(|p| p.instance_count()).sum();
    let started = Instant::now();
    match (out, url) {
        (Some(dir), _) => {
            let n = yunying_synth::write_to_dir(&plans, &dir)
                .map_err(|e| Error(format!("cannot write under {}: {e}", dir.display())))?;
            println!("wrote {n} files ({} studies) under {} in {:.1} s", plans.len(), dir.display(), started.elapsed().as_secs_f64());
        }
        (None, Some(url)) => {
            let client = crate::stow_client::StowClient::new(&url);
            let bar = indicatif::ProgressBar::new(total as u64);
            let (mut stored, mut failed) = (0, 0);
            for plan in &plans {
                let mut chunk = Vec::with_capacity(batch);
                let send = |chunk: Vec<bytes::Bytes>| {
                    let client = client.clone();
                    async move { client.store(chunk).await }
                };
                for (_, bytes) in plan.instances() {
                    chunk.push(bytes::Bytes::from(bytes));
                    if chunk.len() >= batch.max(1) {
                        let n = chunk.len();
                        let s = send(std::mem::take(&mut chunk)).await.map_err(Error)?;
                        stored += s.stored;
                        failed += s.failed;
                        bar.inc(n as u64);
                    }
                }
                if !chunk.is_empty() {
                    let n = chunk.len();
                    let s = send(chunk).await.map_err(Error)?;
                    stored += s.stored;
                    failed += s.failed;
                    bar.inc(n as u64);
                }
            }
            bar.finish_and_clear();
            println!(
                "sent {total} instances ({} studies) to {url}: {stored} stored, {failed} failed, {:.1} s",
                plans.len(),
                started.elapsed().as_secs_f64()
            );
            if failed > 0 {
                return Err(Error(format!("{failed} instances were refused")));
            }
        }
        (None, None) => return Err(Error("give --out DIR or --url URL".into())),
    }
    Ok(())
}

async fn import(
    settings: Settings,
    dir: PathBuf,
    institution: Option<String>,
    url: Option<String>,
    parallel: usize,
    restart: bool,
) -> Result<()> {
    if !dir.is_dir() {
        return Err(Error(format!("{} is not a directory", dir.display())));
    }
    let journal = crate::import::journal_path(&settings.data, &dir);
    if restart {
        let _ = std::fs::remove_file(&journal);
    }
    let (target, institution_id) = match url {
        Some(u) => (crate::import::Target::Stow(crate::stow_client::StowClient::new(&u)), None),
        None => {
            let archive = crate::app::open_archive(&settings).await?;
            let id = match &institution {
                Some(code) => Some(
                    archive
                        .index()
                        .institution_by_code(code)
                        .await?
                        .ok_or_else(|| Error(format!("no institution with code {code:?}")))?
                        .id,
                ),
                None => None,
            };
            (crate::import::Target::Archive(archive), id)
        }
    };
    let summary = crate::import::run(
        target,
        crate::import::ImportOptions {
            dir,
            institution: institution_id,
            parallel,
            journal: Some(journal),
            progress: true,
        },
    )
    .await
    .map_err(Error)?;
    print!("{summary}");
    if summary.failed > 0 {
        return Err(Error(format!("{} files failed; run the same command again to retry them", summary.failed)));
    }
    Ok(())
}
