//! HTTP plumbing shared by Yunying's web interfaces.
//!
//! - [`error`]: [`AppError`], the one place where archive errors become HTTP
//!   statuses (with a JSON message).
//! - [`accept`]: `Accept` header parsing and media-type negotiation.
//! - [`multipart`]: `multipart/related` response bodies, streamed.
//! - [`range`]: single byte-range requests (`Range: bytes=a-b`).
//! - [`base_url`]: the externally visible base URL of a request.

pub mod accept;
pub mod auth;
pub mod error;
pub mod multipart;
pub mod range;

pub use error::AppError;

use axum::http::HeaderMap;

/// The base URL clients reach us at: the configured public URL when set,
/// else the scheme and `Host` the request came with (`X-Forwarded-Proto` and
/// `X-Forwarded-Host` are honoured, for deployments behind a gateway).
pub fn base_url(headers: &HeaderMap, public_url: Option<&str>) -> String {
    if let Some(p) = public_url {
        return p.trim_end_matches('/').to_string();
    }
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(|s| s.split(',').next().unwrap_or("").trim().to_string());
    let proto = get("x-forwarded-proto").filter(|p| p == "https" || p == "http").unwrap_or_else(|| "http".into());
    let host = get("x-forwarded-host").or_else(|| get("host")).unwrap_or_else(|| "localhost".into());
    format!("{proto}://{host}")
}

/// Query-string pairs in order (repeated keys kept), percent-decoded.
pub fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    match raw {
        Some(q) => form_urlencoded::parse(q.as_bytes()).into_owned().collect(),
        None => Vec::new(),
    }
}

/// The client's address, when the server records it (`unknown` otherwise).
#[derive(Debug, Clone)]
pub struct PeerAddr(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for PeerAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(PeerAddr(auth::client_ip(&parts.extensions)))
    }
}
