//! DICOMweb (PS3.18) for Yunying, mounted under `/dicom-web`.
//!
//! - [`stow`]: STOW-RS, `POST /studies[/{study}]`, streamed part by part
//!   into the archive's ingest road.
//! - [`qido`]: QIDO-RS at study, series and instance level (every query
//!   path of the standard), matching through `yunying_index::query`.
//! - [`rendered`]: rendered and thumbnail resources (JPEG, PNG, WebP) and WADO-URI.
//! - [`wado`]: WADO-RS retrieval of studies, series, instances, frames,
//!   bulk data and metadata, served from the byte ranges recorded at ingest,
//!   as stored or transcoded to the transfer syntax asked for
//!   (`negotiate`: the content negotiation).
//!
//! The conformance statement (`docs/conformance.md`) lists what is
//! supported and how each status is used.

mod negotiate;
pub mod qido;
pub mod rendered;
pub mod stow;
pub mod wado;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use yunying_archive::Archive;

/// What DICOMweb handlers share.
#[derive(Clone)]
pub struct DicomWeb {
    pub archive: Arc<Archive>,
    /// The externally visible base URL of the DICOMweb root, when configured
    /// (`https://pacs.example.cn/dicom-web`); otherwise derived per request.
    pub public_url: Option<String>,
    /// The most results one QIDO-RS response returns.
    pub max_results: u32,
    /// How many objects of one STOW-RS request are processed at once.
    pub stow_parallelism: usize,
}

impl DicomWeb {
    pub fn new(archive: Arc<Archive>) -> Self {
        DicomWeb { archive, public_url: None, max_results: 10_000, stow_parallelism: 4 }
    }

    /// The DICOMweb root as the client sees it.
    pub(crate) fn base(&self, headers: &axum::http::HeaderMap) -> String {
        match &self.public_url {
            Some(p) => p.trim_end_matches('/').to_string(),
            None => format!("{}/dicom-web", yunying_http_common::base_url(headers, None)),
        }
    }
}

/// WADO-URI (`/wado?requestType=WADO...`), mounted at the root for the
/// links older HIS and film printers use.
pub fn wado_uri_router(state: DicomWeb) -> Router {
    Router::new().route("/wado", get(rendered::wado_uri)).with_state(state)
}

/// The DICOMweb routes, to be nested under `/dicom-web`.
pub fn router(state: DicomWeb) -> Router {
    Router::new()
        .route("/studies", get(qido::studies).post(stow::store))
        .route("/series", get(qido::all_series))
        .route("/instances", get(qido::all_instances))
        .route("/studies/{study}", get(wado::study).post(stow::store_in_study))
        .route("/studies/{study}/metadata", get(wado::study_metadata))
        .route("/studies/{study}/series", get(qido::study_series))
        .route("/studies/{study}/instances", get(qido::study_instances))
        .route("/studies/{study}/series/{series}", get(wado::series))
        .route("/studies/{study}/series/{series}/metadata", get(wado::series_metadata))
        .route("/studies/{study}/series/{series}/instances", get(qido::series_instances))
        .route("/studies/{study}/series/{series}/instances/{instance}", get(wado::instance))
        .route("/studies/{study}/series/{series}/instances/{instance}/metadata", get(wado::instance_metadata))
        .route("/studies/{study}/series/{series}/instances/{instance}/frames/{frames}", get(wado::frames))
        .route("/studies/{study}/series/{series}/instances/{instance}/bulkdata/{*path}", get(wado::bulk))
        .route("/studies/{study}/rendered", get(rendered::study::<false>))
        .route("/studies/{study}/thumbnail", get(rendered::study::<true>))
        .route("/studies/{study}/series/{series}/rendered", get(rendered::series::<false>))
        .route("/studies/{study}/series/{series}/thumbnail", get(rendered::series::<true>))
        .route("/studies/{study}/series/{series}/instances/{instance}/rendered", get(rendered::instance::<false>))
        .route("/studies/{study}/series/{series}/instances/{instance}/thumbnail", get(rendered::instance::<true>))
        .route("/studies/{study}/series/{series}/instances/{instance}/frames/{frames}/rendered", get(rendered::frames::<false>))
        .route("/studies/{study}/series/{series}/instances/{instance}/frames/{frames}/thumbnail", get(rendered::frames::<true>))
        .with_state(state)
}

