//! Electronic film: `POST /api/studies/{study}/films` with a layout (grid,
//! paper, images with their windows and labels) makes the film and stores it
//! with the study (pages as Secondary Capture images, the sheet as a PDF;
//! see `yunying_archive::film`). The answer names what was stored and where
//! to fetch it (WADO-RS rendered pages, the PDF as bulk data).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use yunying_archive::Caller;
use yunying_archive::film::FilmRequest;
use yunying_http_common::AppError;

use crate::Api;

/// `POST /api/studies/{study}/films`
pub async fn create(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path(study): Path<String>,
    Json(req): Json<FilmRequest>,
) -> Result<Response, AppError> {
    let made = api.archive.make_film(&caller, &study, &req).await?;
    let base = format!("/dicom-web/studies/{}/series/{}/instances", made.study, made.series);
    let body = serde_json::json!({
        "study": made.study,
        "series": made.series,
        "pages": made.pages.iter().map(|sop| serde_json::json!({
            "sop_instance_uid": sop,
            "rendered": format!("{base}/{sop}/rendered"),
        })).collect::<Vec<_>>(),
        "pdf": {
            "sop_instance_uid": made.pdf,
            "document": format!("{base}/{}/bulkdata/00420011", made.pdf),
        },
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}
