//! [`AppError`]: how a failure looks to an HTTP client. Every interface maps
//! its errors here, so a status means the same thing everywhere.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use yunying_archive::{ArchiveError, IngestError, IngestErrorKind};
use yunying_index::IndexError;

/// An HTTP error with a message for the client.
#[derive(Debug)]
pub struct AppError {
    pub status: StatusCode,
    pub message: String,
    /// Seconds after which the client should try again (`Retry-After`,
    /// and `"retrieving": true` in the body): an object being restored
    /// from an archive storage class.
    pub retry_after: Option<u32>,
}

impl AppError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        AppError { status, message: message.into(), retry_after: None }
    }
    pub fn bad_request(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, m)
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, m)
    }
    pub fn not_acceptable(m: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_ACCEPTABLE, m)
    }
    pub fn unsupported_media_type(m: impl Into<String>) -> Self {
        Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, m)
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status, self.message)
    }
}

impl From<ArchiveError> for AppError {
    fn from(e: ArchiveError) -> Self {
        match e {
            ArchiveError::NotFound(m) => AppError::not_found(m),
            ArchiveError::NotAcceptable(m) => AppError::not_acceptable(m),
            ArchiveError::BadRequest(m) => AppError::bad_request(m),
            ArchiveError::Unauthorized(m) => AppError::new(StatusCode::UNAUTHORIZED, m),
            ArchiveError::Forbidden(m) => AppError::new(StatusCode::FORBIDDEN, m),
            ArchiveError::Conflict(m) => AppError::new(StatusCode::CONFLICT, m),
            ArchiveError::Index(IndexError::Invalid(m)) => AppError::bad_request(m),
            ArchiveError::Index(IndexError::NotFound(m)) => AppError::not_found(m),
            ArchiveError::Blob(yunying_archive::BlobError::Archived { key, detail }) => {
                tracing::warn!(%key, %detail, "an object is being retrieved from an archive storage class");
                AppError {
                    retry_after: Some(60),
                    ..AppError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "retrieving: an object of this study is being restored from the archive storage class; try again in a minute",
                    )
                }
            }
            ArchiveError::Blob(yunying_archive::BlobError::NotFound(k)) => {
                tracing::error!(key = %k, "a catalogued object is missing from the blob store");
                AppError::new(StatusCode::INTERNAL_SERVER_ERROR, "a stored object is missing from storage")
            }
            other => {
                tracing::error!(error = %other, "request failed");
                AppError::new(StatusCode::INTERNAL_SERVER_ERROR, other.to_string())
            }
        }
    }
}

impl From<IngestError> for AppError {
    fn from(e: IngestError) -> Self {
        let status = match e.kind {
            IngestErrorKind::Unreadable | IngestErrorKind::Invalid => StatusCode::BAD_REQUEST,
            IngestErrorKind::Conflict => StatusCode::CONFLICT,
            IngestErrorKind::OutOfResources => StatusCode::SERVICE_UNAVAILABLE,
            IngestErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            IngestErrorKind::NotAuthorized => StatusCode::FORBIDDEN,
        };
        AppError::new(status, e.message)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = %self.status, message = %self.message, "request failed");
        } else {
            tracing::info!(status = %self.status, message = %self.message, "request refused");
        }
        let mut body = serde_json::json!({ "error": self.message, "status": self.status.as_u16() });
        if self.retry_after.is_some() {
            body["retrieving"] = serde_json::Value::Bool(true);
        }
        let mut r = (self.status, body.to_string()).into_response();
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
        if let Some(s) = self.retry_after {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}
