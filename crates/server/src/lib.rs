//! Yunying (云影), a regional cloud imaging platform: the binary's library.
//!
//! This crate is the only one that reads files, flags and environment, and
//! the only one that names concrete backends:
//! - [`config`]: the two-stage configuration (raw TOML + env + flags →
//!   validated [`config::Settings`]) and the commented example;
//! - [`app`]: opens the catalog (SQLite or PostgreSQL) and the blob store,
//!   builds the [`yunying_archive::Archive`] and the HTTP router, serves;
//! - [`dicom`]: the DICOM listener's wiring (configured AEs, the DIMSE acceptor);
//! - [`web`]: the web app (embedded by `build.rs` or from a directory) at `/`;
//! - [`tls`]: certificates and keys into rustls configurations, the HTTPS server;
//! - [`ae_cmd`]: `yunying ae`, the AE registry from the command line;
//! - [`pull`]: `yunying pull`, migration from a legacy PACS by query/retrieve;
//! - [`retention_cmd`]: `yunying retention`, the expiry report and recomputing retention;
//! - [`cli`]: the subcommands (`serve`, `default-config`, `synth`, `import`, `ae`, `pull`, `echo`);
//! - [`demo`]: the region's institutions and synthetic demo studies;
//! - [`import`]: historical migration of Part-10 folder trees;
//! - [`reindex`], [`backup`], [`data_lock`]: `yunying reindex` (the catalog rebuilt from the
//!   blob store), `yunying backup`/`restore` of the SQLite catalog, the data directory's lock;
//! - [`stow_client`]: a small STOW-RS client used by `synth --url` and `import --url`.

pub mod accounts;
pub mod ae_cmd;
pub mod app;
pub mod backup;
pub mod cli;
pub mod config;
pub mod data_lock;
pub mod dicom;
pub mod demo;
pub mod import;
pub mod pull;
pub mod retention_cmd;
pub mod reindex;
pub mod security_cmd;
pub mod stow_client;
pub mod storage_cmd;
pub mod tls;
pub mod web;
