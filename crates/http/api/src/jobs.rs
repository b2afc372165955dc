//! The background jobs over HTTP, for the system administrator:
//! `GET /api/jobs` shows the cloud copy queue (waiting, retrying, given up,
//! copied, the age of the oldest waiting object: the "on the cloud within
//! 30 minutes" watch), the derive and forwarding queues, storage tasks
//! (migrations, scrubbing passes) and damaged or missing objects.

use axum::extract::State;
use axum::{Extension, Json};
use yunying_archive::Caller;
use yunying_archive::policy::{Action, Target};
use yunying_archive::storage::JobsStatus;
use yunying_http_common::AppError;

use crate::Api;

/// `GET /api/jobs`
pub async fn status(State(api): State<Api>, Extension(caller): Extension<Caller>) -> Result<Json<JobsStatus>, AppError> {
    api.archive.authorize(&caller, Action::ManageSystem, &Target::Platform).await?;
    Ok(Json(api.archive.jobs_status().await?))
}
