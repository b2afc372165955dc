//! Signing in and out, the session's own account, and OAuth2 client
//! credentials.
//!
//! `POST /api/auth/login` takes `{"username", "password", "code"?}` and sets
//! two cookies: `yy_session` (HttpOnly, SameSite=Strict, Secure over HTTPS:
//! the session) and `yy_csrf` (readable by the page, which sends it back in
//! `X-CSRF-Token` on every state-changing request). Nothing secret travels
//! in a URL.

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use yunying_archive::Caller;
use yunying_archive::identity::{AuthError, LoginError, Pending};
use yunying_http_common::AppError;
use yunying_http_common::auth::{CSRF_COOKIE, SESSION_COOKIE, SessionId, client_ip};

use crate::Api;

#[derive(Deserialize)]
pub struct LoginBody {
    pub username: String,
    pub password: String,
    /// The TOTP code, when the account has a second factor.
    #[serde(default)]
    pub code: Option<String>,
}

fn json(status: StatusCode, v: serde_json::Value) -> Response {
    let mut r = (status, v.to_string()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    r
}

fn cookie_attrs(secure: bool) -> &'static str {
    if secure { "; Path=/; SameSite=Strict; Secure" } else { "; Path=/; SameSite=Strict" }
}

/// `POST /api/auth/login`
pub async fn login(State(api): State<Api>, req: axum::extract::Request) -> Response {
    let ip = client_ip(req.extensions());
    let ua = req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let body = match axum::body::to_bytes(req.into_body(), 64 * 1024).await {
        Ok(b) => b,
        Err(_) => return AppError::bad_request("the request body is too large").into_response(),
    };
    let body: LoginBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return AppError::bad_request(format!("expected {{\"username\", \"password\", \"code\"?}}: {e}")).into_response(),
    };
    match api.archive.login(&body.username, &body.password, body.code.as_deref(), &ip, &ua).await {
        Ok(ok) => {
            let max_age = ((ok.expires_at - now_ms()) / 1000).max(0);
            let attrs = cookie_attrs(api.secure_cookies);
            let mut r = json(
                StatusCode::OK,
                serde_json::json!({
                    "user": user_json(&ok.user),
                    "csrf_token": ok.csrf,
                    "expires_at": ok.expires_at,
                    "pending": ok.pending,
                }),
            );
            let h = r.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&format!("{SESSION_COOKIE}={}; HttpOnly; Max-Age={max_age}{attrs}", ok.session)) {
                h.append(header::SET_COOKIE, v);
            }
            if let Ok(v) = HeaderValue::from_str(&format!("{CSRF_COOKIE}={}; Max-Age={max_age}{attrs}", ok.csrf)) {
                h.append(header::SET_COOKIE, v);
            }
            r
        }
        Err(LoginError::Invalid) => json(
            StatusCode::UNAUTHORIZED,
            serde_json::json!({"error": "wrong username or password / 用户名或密码错误", "status": 401}),
        ),
        Err(LoginError::SecondFactorRequired) => json(
            StatusCode::UNAUTHORIZED,
            serde_json::json!({"error": "enter the verification code / 请输入动态验证码", "status": 401, "second_factor_required": true}),
        ),
        Err(LoginError::SecondFactorInvalid) => json(
            StatusCode::UNAUTHORIZED,
            serde_json::json!({"error": "wrong or already used verification code / 验证码错误或已使用", "status": 401, "second_factor_required": true}),
        ),
        Err(LoginError::Locked { until }) => json(
            StatusCode::LOCKED,
            serde_json::json!({"error": "the account is locked after repeated failures / 账户因多次登录失败已锁定", "status": 423, "locked_until": until}),
        ),
        Err(LoginError::Internal(m)) => AppError::new(StatusCode::SERVICE_UNAVAILABLE, m).into_response(),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

pub(crate) fn user_json(u: &yunying_index::User) -> serde_json::Value {
    serde_json::json!({
        "username": u.username,
        "display_name": u.display_name,
        "roles": u.roles,
        "institution_id": u.institution_id.map(|i| i.0),
        "second_factor": u.totp_enabled,
        "disabled": u.disabled,
        "locked_until": u.locked_until,
        "last_login_at": u.last_login_at,
        "password_changed_at": u.password_changed_at,
    })
}

/// `POST /api/auth/logout`
pub async fn logout(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    session: Option<Extension<SessionId>>,
) -> Result<Response, AppError> {
    if let Some(Extension(SessionId(sid))) = session {
        api.archive.logout(&caller, &sid).await?;
    }
    let attrs = cookie_attrs(api.secure_cookies);
    let mut r = json(StatusCode::OK, serde_json::json!({"signed_out": true}));
    for name in [SESSION_COOKIE, CSRF_COOKIE] {
        if let Ok(v) = HeaderValue::from_str(&format!("{name}=; Max-Age=0{attrs}")) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(r)
}

/// `GET /api/auth/me`: who the credential is.
pub async fn me(Extension(caller): Extension<Caller>, pending: Option<Extension<Vec<Pending>>>) -> Response {
    let p = &caller.principal;
    json(
        StatusCode::OK,
        serde_json::json!({
            "id": p.id,
            "kind": p.kind,
            "name": p.name,
            "roles": p.roles,
            "actions": p.actions,
            "institution": p.institution_code,
            "regional": p.regional,
            "pending": pending.map(|Extension(p)| p).unwrap_or_default(),
        }),
    )
}

#[derive(Deserialize)]
pub struct PasswordBody {
    pub current: String,
    pub new: String,
}

/// `POST /api/auth/password`
pub async fn change_password(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Json(b): Json<PasswordBody>,
) -> Result<Response, AppError> {
    api.archive.change_own_password(&caller, &b.current, &b.new).await?;
    Ok(json(StatusCode::OK, serde_json::json!({"changed": true})))
}

/// `POST /api/auth/totp/setup`: a new secret to put in an authenticator app.
pub async fn totp_setup(State(api): State<Api>, Extension(caller): Extension<Caller>) -> Result<Response, AppError> {
    let (secret, uri) = api.archive.totp_begin(&caller).await?;
    Ok(json(StatusCode::OK, serde_json::json!({"secret": secret, "otpauth_uri": uri})))
}

#[derive(Deserialize)]
pub struct CodeBody {
    pub code: String,
}

/// `POST /api/auth/totp/confirm`
pub async fn totp_confirm(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Json(b): Json<CodeBody>,
) -> Result<Response, AppError> {
    api.archive.totp_confirm(&caller, &b.code).await?;
    Ok(json(StatusCode::OK, serde_json::json!({"second_factor": true})))
}

/// `POST /oauth/token` (RFC 6749 §4.4): `grant_type=client_credentials`,
/// the client authenticated by HTTP Basic or `client_id`/`client_secret` in
/// the form.
pub async fn oauth_token(State(api): State<Api>, req: axum::extract::Request) -> Response {
    let ip = client_ip(req.extensions());
    let headers: HeaderMap = req.headers().clone();
    let body: Bytes = match axum::body::to_bytes(req.into_body(), 16 * 1024).await {
        Ok(b) => b,
        Err(_) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request"),
    };
    let form: std::collections::HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")))
        .and_then(|b| base64_decode(b.trim()))
        .and_then(|s| s.split_once(':').map(|(a, b)| (a.to_string(), b.to_string())));
    let (id, secret) = match basic.or_else(|| Some((form.get("client_id")?.clone(), form.get("client_secret")?.clone()))) {
        Some(x) => x,
        None => return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client"),
    };
    match api.archive.issue_access_token(&id, &secret, &ip).await {
        Ok((token, lifetime, actions)) => json(
            StatusCode::OK,
            serde_json::json!({"access_token": token, "token_type": "Bearer", "expires_in": lifetime, "scope": actions.join(" ")}),
        ),
        Err(AuthError::Internal(m)) => AppError::new(StatusCode::SERVICE_UNAVAILABLE, m).into_response(),
        Err(_) => oauth_error(StatusCode::UNAUTHORIZED, "invalid_client"),
    }
}

fn oauth_error(status: StatusCode, code: &str) -> Response {
    let mut r = json(status, serde_json::json!({"error": code}));
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"yunying\""));
    }
    r
}

/// Standard base64 (for HTTP Basic).
fn base64_decode(s: &str) -> Option<String> {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = T.iter().position(|t| *t == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn basic_credentials_decode() {
        assert_eq!(super::base64_decode("YWxhZGRpbjpvcGVuc2VzYW1l").as_deref(), Some("aladdin:opensesame"));
    }
}
