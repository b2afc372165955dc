//! Authentication at the HTTP edge: every data and administration route
//! passes through [`require_credentials`], which accepts a bearer token
//! (`Authorization: Bearer …`: API tokens and OAuth2 access tokens) or a
//! browser session cookie (with its CSRF token on state-changing requests),
//! asks the archive who that is, and hands the handlers a
//! [`yunying_archive::Caller`] in the request's extensions. No credential:
//! 401 with `WWW-Authenticate`. Deciding what the caller may do is not done
//! here: the archive's policy does it.
//!
//! Also here: [`security_headers`] for every response and a small
//! per-address [`RateLimiter`] for login and verification endpoints.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use yunying_archive::identity::AuthError;
use yunying_archive::{Archive, Caller};

use crate::AppError;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "yy_session";
/// The CSRF cookie's name (readable by the page, which echoes it in [`CSRF_HEADER`]).
pub const CSRF_COOKIE: &str = "yy_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// What the authentication layer needs.
#[derive(Clone)]
pub struct AuthLayerState {
    pub archive: Arc<Archive>,
}

/// The client's address as [`resolve_client`] found it (behind a trusted proxy).
#[derive(Debug, Clone)]
pub struct ClientAddr(pub String);

/// The client's address: from a trusted proxy's `X-Forwarded-For` when
/// [`resolve_client`] found one, else the connection's peer.
pub fn client_ip(req_ext: &axum::http::Extensions) -> String {
    if let Some(ClientAddr(a)) = req_ext.get::<ClientAddr>() {
        return a.clone();
    }
    req_ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string()).unwrap_or_else(|| "unknown".into())
}

/// Middleware: when the connection comes from a trusted proxy (the TLCP
/// gateway, a load balancer), the client is the right-most address of
/// `X-Forwarded-For` that is not itself a trusted proxy. From anyone else
/// the header is ignored (it could be forged). Audit records and rate
/// limits then see the real client.
pub async fn resolve_client(State(trusted): State<Arc<Vec<std::net::IpAddr>>>, mut req: Request, next: Next) -> Response {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    if let Some(peer) = peer
        && trusted.contains(&peer)
    {
        let forwarded: Vec<std::net::IpAddr> = req
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse().ok())
            .collect();
        if let Some(client) = forwarded.iter().rev().find(|a| !trusted.contains(a)) {
            req.extensions_mut().insert(ClientAddr(client.to_string()));
        }
    }
    next.run(req).await
}

/// A cookie's value from the request headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string())
}

fn unauthorized(message: &str) -> Response {
    let mut r = AppError::new(StatusCode::UNAUTHORIZED, message).into_response();
    r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"yunying\""));
    r
}

/// Whether a method changes state (and so needs the CSRF token with a cookie).
pub fn state_changing(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Authenticates the request (bearer token or session) and puts its
/// [`Caller`] in the extensions. Sessions that still owe a step (a password
/// change, second-factor enrolment) reach only `/api/auth/`.
pub async fn require_credentials(State(st): State<AuthLayerState>, mut req: Request, next: Next) -> Response {
    let ip = client_ip(req.extensions());
    let headers = req.headers();
    let caller = if let Some(token) = bearer(headers) {
        match st.archive.authenticate_token(&token).await {
            Ok(p) => Caller::new(p, Some(ip), yunying_audit::event::INTERFACE_HTTP),
            Err(AuthError::Invalid(m)) => return unauthorized(&m),
            Err(AuthError::Csrf) => return unauthorized("invalid credentials"),
            Err(AuthError::Internal(m)) => {
                return AppError::new(StatusCode::SERVICE_UNAVAILABLE, format!("cannot check credentials: {m}")).into_response();
            }
        }
    } else if let Some(sid) = cookie(headers, SESSION_COOKIE) {
        let csrf = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).map(String::from);
        let changing = state_changing(req.method());
        match st.archive.authenticate_session(&sid, csrf.as_deref(), changing, &ip).await {
            Ok(s) => {
                let path = req.uri().path();
                if !s.pending.is_empty() && !path.starts_with("/api/auth/") {
                    let body = serde_json::json!({
                        "error": "finish signing in first (change the password or enrol the second factor) / 请先完成登录步骤",
                        "status": 403,
                        "pending": s.pending,
                    });
                    let mut r = (StatusCode::FORBIDDEN, body.to_string()).into_response();
                    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                    return r;
                }
                req.extensions_mut().insert(s.pending.clone());
                req.extensions_mut().insert(SessionId(sid));
                Caller::new(s.caller_principal, Some(ip), yunying_audit::event::INTERFACE_HTTP)
            }
            Err(AuthError::Csrf) => {
                return AppError::new(StatusCode::FORBIDDEN, "missing or wrong CSRF token (X-CSRF-Token)").into_response();
            }
            Err(AuthError::Invalid(m)) => return unauthorized(&m),
            Err(AuthError::Internal(m)) => {
                return AppError::new(StatusCode::SERVICE_UNAVAILABLE, format!("cannot check the session: {m}")).into_response();
            }
        }
    } else {
        return unauthorized("sign in, or send a bearer token (Authorization: Bearer …)");
    };
    req.extensions_mut().insert(caller);
    next.run(req).await
}

/// The session id of a cookie-authenticated request.
#[derive(Debug, Clone)]
pub struct SessionId(pub String);

/// Security headers on every response.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/") || req.uri().path().starts_with("/oauth/");
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    // A page that states its own policy (the web app's) keeps it.
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'self'; img-src 'self' data: blob:; frame-ancestors 'none'; object-src 'none'"),
        );
    }
    if api && !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

/// A fixed-window limit of requests per client address.
pub struct RateLimiter {
    per_window: u32,
    window: Duration,
    seen: Mutex<HashMap<String, (Instant, u32)>>,
}

impl RateLimiter {
    pub fn new(per_window: u32, window: Duration) -> Arc<RateLimiter> {
        Arc::new(RateLimiter { per_window, window, seen: Mutex::new(HashMap::new()) })
    }

    /// `Ok` when the request may go on, otherwise the seconds to wait.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        let now = Instant::now();
        let mut seen = self.seen.lock().expect("rate limiter");
        if seen.len() > 50_000 {
            seen.retain(|_, (start, _)| now.duration_since(*start) < self.window);
        }
        let e = seen.entry(key.to_string()).or_insert((now, 0));
        if now.duration_since(e.0) >= self.window {
            *e = (now, 0);
        }
        e.1 += 1;
        if e.1 > self.per_window {
            let wait = self.window.saturating_sub(now.duration_since(e.0)).as_secs().max(1);
            return Err(wait);
        }
        Ok(())
    }
}

/// Middleware: answers 429 (with `Retry-After`) over the limit.
pub async fn rate_limited(State(limiter): State<Arc<RateLimiter>>, req: Request, next: Next) -> Response {
    let ip = client_ip(req.extensions());
    match limiter.check(&ip) {
        Ok(()) => next.run(req).await,
        Err(wait) => {
            tracing::warn!(%ip, path = %req.uri().path(), "rate limit reached");
            let mut r = AppError::new(StatusCode::TOO_MANY_REQUESTS, "too many attempts; wait and try again / 尝试过于频繁，请稍后再试")
                .into_response();
            if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
    }
}
