//! Yunying's JSON API, mounted at `/api` (and the OAuth2 token endpoint at
//! `/oauth/token`).
//!
//! - [`auth`]: sign-in with password and TOTP, sign-out, the session's own
//!   account (password change, second-factor enrolment), OAuth2 client
//!   credentials.
//! - [`admin`]: accounts, machine credentials, grants, institutions.
//! - [`patients`]: finding studies by an identifier held encrypted.
//! - [`films`]: electronic film of a study's images, stored with the study.
//! - [`audit`]: searching, exporting (JSON, DICOM PS3.15, FHIR) and verifying
//!   the audit trail.
//! - [`retention`]: patients' visits, legal holds, the expiry report and the
//!   approved deletion workflow.
//!
//! Every route but sign-in and the token endpoint needs a credential (see
//! `yunying_http_common::auth`); what a caller may do is decided by the
//! archive's policy. Errors are JSON `{"error": "...", "status": N}`.

pub mod admin;
pub mod audit;
pub mod auth;
pub mod films;
pub mod jobs;
pub mod patients;
pub mod retention;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, patch, post};
use yunying_archive::Archive;
use yunying_http_common::auth::{AuthLayerState, RateLimiter, rate_limited, require_credentials};

/// What API handlers share.
#[derive(Clone)]
pub struct Api {
    pub archive: Arc<Archive>,
    /// Cookies carry `Secure` (the platform is reached over HTTPS).
    pub secure_cookies: bool,
}

/// Retention: visits, legal holds, the expiry report, approved deletion.
fn retention_routes() -> Router<Api> {
    use axum::routing::delete;
    Router::new()
        .route("/api/encounters", post(retention::record_encounter))
        .route("/api/studies/{study}/retention", get(retention::study))
        .route("/api/studies/{study}/legal-hold", post(retention::place_hold).merge(delete(retention::release_hold)))
        .route("/api/retention/expired", get(retention::expired))
        .route("/api/retention/deletions", get(retention::list_deletions).post(retention::request_deletion))
        .route("/api/retention/deletions/{id}", get(retention::deletion))
        .route("/api/retention/deletions/{id}/approve", post(retention::approve))
        .route("/api/retention/deletions/{id}/reject", post(retention::reject))
}

/// The API routes: `/api/...` and `/oauth/token`, to be merged at the root.
pub fn router(api: Api, attempts_per_minute: u32) -> Router {
    let limiter = RateLimiter::new(attempts_per_minute, Duration::from_secs(60));
    let open = Router::new()
        .route("/api/auth/login", post(auth::login))
        .route("/oauth/token", post(auth::oauth_token))
        .layer(from_fn_with_state(limiter.clone(), rate_limited))
        .with_state(api.clone());
    let verification = Router::new()
        .route("/api/auth/totp/confirm", post(auth::totp_confirm))
        .route("/api/auth/password", post(auth::change_password))
        .layer(from_fn_with_state(limiter, rate_limited));
    let guarded = Router::new()
        .route("/api/auth/logout", post(auth::logout))
        .route("/api/auth/me", get(auth::me))
        .route("/api/auth/totp/setup", post(auth::totp_setup))
        .merge(verification)
        .route("/api/users", get(admin::list_users).post(admin::create_user))
        .route("/api/users/{username}", patch(admin::change_user))
        .route("/api/credentials", get(admin::list_credentials).post(admin::create_credential))
        .route("/api/credentials/{public_id}", axum::routing::delete(admin::revoke_credential))
        .route("/api/grants", post(admin::create_grant))
        .route("/api/grants/{id}", axum::routing::delete(admin::revoke_grant))
        .route("/api/patients/search", post(patients::search))
        .route("/api/studies/{study}/films", post(films::create))
        .route("/api/institutions", get(admin::list_institutions).post(admin::create_institution))
        .route("/api/audit", get(audit::search))
        .route("/api/audit/verify", get(audit::verify))
        .route("/api/jobs", get(jobs::status))
        .merge(retention_routes())
        .layer(from_fn_with_state(AuthLayerState { archive: api.archive.clone() }, require_credentials))
        .with_state(api);
    open.merge(guarded)
}
