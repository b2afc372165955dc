//! Identity: who a request comes from. Password logins (argon2id, rules,
//! expiry, lockout after repeated failures), the TOTP second factor
//! (mandatory for administrators), browser sessions with idle and absolute
//! timeouts and a bound CSRF token, API tokens and service accounts
//! (OAuth2 client credentials) scoped to an institution and a set of
//! actions, user administration under the policy's rules, and grants.
//! Every outcome is written to the audit trail.
//!
//! Secrets are never stored: session ids, tokens and client secrets as SM3
//! hashes, passwords as argon2id hashes, TOTP secrets encrypted.

use std::collections::HashMap;
use std::sync::Mutex;

use yunying_audit::{Action as AuditAction, Outcome};
use yunying_index::{
    Credential, CredentialKind, Grant, IndexError, NewCredential, NewGrant, NewUser, Session, User, UserChange,
};
use yunying_security::password::{PasswordRules, hash_password, verify_password};
use yunying_security::{field, token, totp};
use yunying_util::InstitutionId;

use crate::access::Caller;
use crate::policy::{self, Action, Principal, PrincipalKind, Role, Target};
use crate::{Archive, ArchiveError};

/// Login and session rules (MLPS level 3 defaults).
#[derive(Debug, Clone)]
pub struct SecuritySettings {
    pub password_rules: PasswordRules,
    /// Consecutive failures that lock an account.
    pub max_failures: i64,
    pub lock_minutes: i64,
    /// A session unused this long ends (seconds).
    pub session_idle_seconds: i64,
    /// A session ends this long after login, whatever the activity.
    pub session_max_hours: i64,
    /// TOTP for every user, not only administrators.
    pub totp_for_everyone: bool,
    /// Lifetime of access tokens issued to service accounts.
    pub access_token_minutes: i64,
    /// How long an authenticated credential is trusted without re-reading
    /// the catalog (revocation takes effect within this delay on every node).
    pub credential_cache_seconds: i64,
}

impl Default for SecuritySettings {
    fn default() -> Self {
        SecuritySettings {
            password_rules: PasswordRules::default(),
            max_failures: 5,
            lock_minutes: 30,
            session_idle_seconds: 15 * 60,
            session_max_hours: 12,
            totp_for_everyone: false,
            access_token_minutes: 60,
            credential_cache_seconds: 10,
        }
    }
}

/// A browser session as cached: the session and what it still owes.
type CachedSession = (Session, Vec<Pending>);

/// A cached authentication: who, when it was read (unix ms), and the session (for cookies).
type Cached = (Principal, i64, Option<CachedSession>);

/// Recently authenticated credentials, by secret hash.
#[derive(Default)]
pub struct CredentialCache {
    entries: Mutex<HashMap<String, Cached>>,
}

impl CredentialCache {
    fn get(&self, key: &str, now: i64, ttl_ms: i64) -> Option<(Principal, Option<CachedSession>)> {
        let map = self.entries.lock().expect("credential cache");
        map.get(key).filter(|(_, at, _)| now - at < ttl_ms).map(|(p, _, s)| (p.clone(), s.clone()))
    }
    fn put(&self, key: String, p: Principal, s: Option<CachedSession>, now: i64) {
        let mut map = self.entries.lock().expect("credential cache");
        if map.len() > 10_000 {
            map.clear();
        }
        map.insert(key, (p, now, s));
    }
    fn forget(&self, key: &str) {
        self.entries.lock().expect("credential cache").remove(key);
    }
    fn clear(&self) {
        self.entries.lock().expect("credential cache").clear();
    }
}

/// Why a login failed (each is answered differently, and audited).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginError {
    /// Wrong username or password (which one is not said).
    Invalid,
    /// The account is locked until this instant (unix ms).
    Locked { until: i64 },
    /// The password was right; the TOTP code is needed.
    SecondFactorRequired,
    /// The TOTP code was wrong or already used.
    SecondFactorInvalid,
    Internal(String),
}

/// A successful login.
#[derive(Debug, Clone)]
pub struct LoginOk {
    /// The session id (the cookie's value).
    pub session: String,
    /// The CSRF token bound to the session.
    pub csrf: String,
    pub expires_at: i64,
    pub user: User,
    /// What the session must do before anything else.
    pub pending: Vec<Pending>,
}

/// A step a session must take before it may use the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pending {
    /// The password expired or was reset: change it.
    ChangePassword,
    /// The role requires a second factor: enrol TOTP.
    EnrolSecondFactor,
}

/// An authenticated browser session.
#[derive(Debug, Clone)]
pub struct SessionAuth {
    pub caller_principal: Principal,
    pub session: Session,
    pub pending: Vec<Pending>,
}

/// Why credentials were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// Unknown, expired, revoked.
    Invalid(String),
    /// The session's CSRF token is missing or wrong.
    Csrf,
    Internal(String),
}

/// A user to create, as an administrator (or the CLI) gives it.
#[derive(Debug, Clone)]
pub struct UserRequest {
    pub username: String,
    pub display_name: String,
    pub institution_code: Option<String>,
    pub roles: Vec<String>,
    pub password: String,
    /// The user must change this password at first login.
    pub temporary: bool,
}

/// What an administrator changes on an account.
#[derive(Debug, Clone, Default)]
pub struct UserAdministration {
    pub roles: Option<Vec<String>>,
    pub disabled: Option<bool>,
    /// Clears a lockout.
    pub unlock: bool,
    /// A temporary password, to be changed at the next sign-in.
    pub reset_password: Option<String>,
    /// Removes the TOTP second factor (a lost phone): the user enrols again.
    pub reset_second_factor: bool,
}

/// A grant to make: a study opened to one user or one institution.
#[derive(Debug, Clone)]
pub struct GrantRequest {
    pub study_uid: String,
    /// `consultation`, `referral` or `share`.
    pub kind: String,
    pub to_user: Option<String>,
    pub to_institution: Option<String>,
    pub expires_at: Option<i64>,
    pub reason: String,
}

/// A machine credential to create.
#[derive(Debug, Clone)]
pub struct CredentialRequest {
    pub kind: CredentialKind,
    pub name: String,
    pub institution_code: Option<String>,
    pub actions: Vec<Action>,
    pub expires_at: Option<i64>,
}

fn now() -> i64 {
    yunying_util::time::now_millis()
}

fn index_err(e: IndexError) -> ArchiveError {
    match e {
        IndexError::Conflict(m) => ArchiveError::Conflict(m),
        IndexError::NotFound(m) => ArchiveError::NotFound(m),
        IndexError::Invalid(m) => ArchiveError::BadRequest(m),
        other => ArchiveError::Index(other),
    }
}

fn roles_of(user: &User) -> Vec<Role> {
    user.roles.iter().filter_map(|r| Role::from_code(r)).collect()
}

impl Archive {
    /// Whether a user must use a second factor.
    pub fn second_factor_required(&self, user: &User) -> bool {
        self.settings.security.totp_for_everyone || roles_of(user).iter().any(|r| r.is_administrator())
    }

    fn pending_for(&self, user: &User, at: i64) -> Vec<Pending> {
        let mut p = Vec::new();
        let max_age = i64::from(self.settings.security.password_rules.max_age_days) * 86_400_000;
        if user.must_change_password || (max_age > 0 && at - user.password_changed_at > max_age) {
            p.push(Pending::ChangePassword);
        }
        if self.second_factor_required(user) && !user.totp_enabled {
            p.push(Pending::EnrolSecondFactor);
        }
        p
    }

    /// The principal of a user (with their grants).
    pub async fn user_principal(&self, user: &User) -> Result<Principal, ArchiveError> {
        let (code, regional) = self.institution_reach(user.institution_id).await?;
        let grants = self.index.active_grants(Some(user.id), user.institution_id, now()).await?;
        Ok(Principal {
            kind: PrincipalKind::User,
            id: format!("user:{}", user.username),
            name: if user.display_name.is_empty() { user.username.clone() } else { user.display_name.clone() },
            roles: roles_of(user),
            actions: None,
            institution: user.institution_id,
            institution_code: code,
            regional,
            granted_studies: grants.into_iter().map(|g| g.study_uid).collect(),
        })
    }

    async fn institution_reach(&self, id: Option<InstitutionId>) -> Result<(Option<String>, bool), ArchiveError> {
        let Some(id) = id else { return Ok((None, false)) };
        let code = self.find_institution(|i| i.id == id, true).await?.map(|i| i.code);
        let regional = self.index.regional_institutions().await?.contains(&id);
        Ok((code, regional))
    }

    async fn institution_id(&self, code: Option<&str>) -> Result<Option<InstitutionId>, ArchiveError> {
        match code {
            None => Ok(None),
            Some(c) => self
                .find_institution(|i| i.code == c, true)
                .await?
                .map(|i| Some(i.id))
                .ok_or_else(|| ArchiveError::BadRequest(format!("no institution has the code {c:?}"))),
        }
    }

    async fn audit_login(&self, caller: &Caller, action: AuditAction, outcome: Outcome, who: &str, reason: &str) {
        let mut e = self.audit_event(caller, action, outcome);
        if caller.principal.kind == PrincipalKind::System {
            // Not signed in yet: name the account tried.
            e.actor = yunying_audit::Actor::new(yunying_audit::ActorKind::User, format!("user:{who}"), who.to_string());
        }
        e.detail = serde_json::json!({ "reason": reason });
        self.audit(e).await;
    }

    /// A password login (with the TOTP code when the account has one).
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        code: Option<&str>,
        source: &str,
        user_agent: &str,
    ) -> Result<LoginOk, LoginError> {
        let anon = Caller::new(Principal::system("login"), Some(source.to_string()), yunying_audit::event::INTERFACE_HTTP);
        let t = now();
        let internal = |e: IndexError| LoginError::Internal(e.to_string());
        let user = match self.index.user_by_username(username).await.map_err(internal)? {
            Some(u) => u,
            None => {
                // The same work as a real check, so timing says nothing.
                let _ = verify_password("$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXo", password);
                self.audit_login(&anon, AuditAction::LoginFailed, Outcome::MinorFailure, username, "unknown account").await;
                return Err(LoginError::Invalid);
            }
        };
        if user.disabled {
            self.audit_login(&anon, AuditAction::LoginFailed, Outcome::MinorFailure, username, "account disabled").await;
            return Err(LoginError::Invalid);
        }
        if let Some(until) = user.locked_until
            && until > t
        {
            self.audit_login(&anon, AuditAction::LoginFailed, Outcome::MinorFailure, username, "account locked").await;
            return Err(LoginError::Locked { until });
        }
        let s = &self.settings.security;
        if user.locked_until.is_some() {
            // The lock has expired: counting starts again.
            let _ = self.index.change_user(user.id, &UserChange { unlock: true, ..Default::default() }).await;
        }
        let fail = |reason: &'static str| async move {
            let lock_until = t + s.lock_minutes * 60_000;
            let after = self.index.record_login_failure(user.id, s.max_failures, lock_until).await;
            self.audit_login(&anon, AuditAction::LoginFailed, Outcome::MinorFailure, username, reason).await;
            if let Ok(u) = &after
                && u.locked_until == Some(lock_until)
                && u.failed_logins == s.max_failures
            {
                self.audit_login(&anon, AuditAction::AccountLocked, Outcome::MinorFailure, username, "too many failed logins")
                    .await;
                return LoginError::Locked { until: lock_until };
            }
            LoginError::Invalid
        };
        let hash = user.password_hash.clone();
        let pw = password.to_string();
        let ok = tokio::task::spawn_blocking(move || verify_password(&hash, &pw)).await.unwrap_or(false);
        if !ok {
            return Err(fail("wrong password").await);
        }
        let mut second_factor = false;
        if user.totp_enabled {
            let Some(code) = code.filter(|c| !c.trim().is_empty()) else {
                return Err(LoginError::SecondFactorRequired);
            };
            if !self.check_totp(&user, code, t).await.map_err(|e| LoginError::Internal(e.to_string()))? {
                let _ = fail("wrong or reused verification code").await;
                return Err(LoginError::SecondFactorInvalid);
            }
            second_factor = true;
        }
        self.index.record_login_success(user.id, t).await.map_err(internal)?;
        let session = token::new_secret("yys_");
        let csrf = token::new_secret("yyc_");
        let expires_at = t + s.session_max_hours * 3_600_000;
        self.index
            .create_session(&Session {
                id_hash: token::secret_hash(&session),
                user_id: user.id,
                csrf_hash: token::secret_hash(&csrf),
                second_factor,
                created_at: t,
                last_seen_at: t,
                expires_at,
                source: source.to_string(),
                user_agent: user_agent.chars().take(200).collect(),
            })
            .await
            .map_err(internal)?;
        let pending = self.pending_for(&user, t);
        let principal = self.user_principal(&user).await.map_err(|e| LoginError::Internal(e.to_string()))?;
        let caller = Caller::new(principal, Some(source.to_string()), yunying_audit::event::INTERFACE_HTTP);
        let mut e = self.audit_event(&caller, AuditAction::Login, Outcome::Success);
        e.detail = serde_json::json!({ "second_factor": second_factor, "pending": pending });
        self.audit(e).await;
        Ok(LoginOk { session, csrf, expires_at, user, pending })
    }

    /// Checks a TOTP code and consumes its step (a code works once).
    async fn check_totp(&self, user: &User, code: &str, at: i64) -> Result<bool, ArchiveError> {
        let Some(secret) = &user.totp_secret else { return Ok(false) };
        let secret = field::decrypt(&self.settings.keys, secret, &totp_aad(user.id))
            .map_err(|e| ArchiveError::Internal(format!("cannot read a TOTP secret: {e}")))?;
        let secret = totp::base32_decode(&secret).map_err(|e| ArchiveError::Internal(e.to_string()))?;
        let Some(step) = totp::verify(&secret, code.trim(), (at / 1000) as u64, 1, None) else { return Ok(false) };
        Ok(self.index.use_totp_step(user.id, step as i64).await?)
    }

    /// Authenticates a browser session. `csrf` is the request's CSRF header,
    /// required when `state_changing`.
    pub async fn authenticate_session(
        &self,
        session_id: &str,
        csrf: Option<&str>,
        state_changing: bool,
        source: &str,
    ) -> Result<SessionAuth, AuthError> {
        let t = now();
        let key = token::secret_hash(session_id);
        let ttl = self.settings.security.credential_cache_seconds * 1000;
        let idle = self.settings.security.session_idle_seconds * 1000;
        let (principal, (session, pending)) = match self.credential_cache.get(&key, t, ttl) {
            Some((p, Some(s))) => (p, s),
            _ => {
                let s = self
                    .index
                    .session(&key)
                    .await
                    .map_err(|e| AuthError::Internal(e.to_string()))?
                    .ok_or_else(|| AuthError::Invalid("not signed in, or the session has ended".into()))?;
                let user = self
                    .index
                    .user_by_id(s.user_id)
                    .await
                    .map_err(|e| AuthError::Internal(e.to_string()))?
                    .ok_or_else(|| AuthError::Invalid("the account no longer exists".into()))?;
                if user.disabled {
                    return Err(AuthError::Invalid("the account is disabled".into()));
                }
                let p = self.user_principal(&user).await.map_err(|e| AuthError::Internal(e.to_string()))?;
                let pending = self.pending_for(&user, t);
                self.credential_cache.put(key.clone(), p.clone(), Some((s.clone(), pending.clone())), t);
                (p, (s, pending))
            }
        };
        if t >= session.expires_at || t - session.last_seen_at > idle {
            let _ = self.index.end_session(&key).await;
            self.credential_cache.forget(&key);
            let caller = Caller::new(principal, Some(source.to_string()), yunying_audit::event::INTERFACE_HTTP);
            let mut e = self.audit_event(&caller, AuditAction::SessionExpired, Outcome::Success);
            e.detail = serde_json::json!({ "reason": if t >= session.expires_at { "absolute limit" } else { "idle" } });
            self.audit(e).await;
            return Err(AuthError::Invalid("the session has expired; sign in again".into()));
        }
        if state_changing {
            let ok = csrf.is_some_and(|c| token::verify_secret(c, &session.csrf_hash));
            if !ok {
                return Err(AuthError::Csrf);
            }
        }
        // Activity is written at most every 30 s, or a quarter of the idle
        // limit if shorter (the idle clock's resolution).
        let mut session = session;
        if t - session.last_seen_at > (idle / 4).min(30_000) {
            let _ = self.index.touch_session(&key, t).await;
            session.last_seen_at = t;
            self.credential_cache.put(key.clone(), principal.clone(), Some((session.clone(), pending.clone())), t);
        }
        Ok(SessionAuth { caller_principal: principal, session, pending })
    }

    /// Ends a session.
    pub async fn logout(&self, caller: &Caller, session_id: &str) -> Result<(), ArchiveError> {
        let key = token::secret_hash(session_id);
        self.index.end_session(&key).await?;
        self.credential_cache.forget(&key);
        let e = self.audit_event(caller, AuditAction::Logout, Outcome::Success);
        self.audit(e).await;
        Ok(())
    }

    /// Authenticates a bearer token (an API token or an access token issued to a client).
    pub async fn authenticate_token(&self, bearer: &str) -> Result<Principal, AuthError> {
        let t = now();
        let key = token::secret_hash(bearer);
        let ttl = self.settings.security.credential_cache_seconds * 1000;
        if let Some((p, None)) = self.credential_cache.get(&key, t, ttl) {
            return Ok(p);
        }
        let c = self
            .index
            .credential_by_secret(&key)
            .await
            .map_err(|e| AuthError::Internal(e.to_string()))?
            .ok_or_else(|| AuthError::Invalid("unknown token".into()))?;
        if c.kind == CredentialKind::Client {
            return Err(AuthError::Invalid("a client secret is not a bearer token: exchange it at /oauth/token".into()));
        }
        if c.revoked_at.is_some() {
            return Err(AuthError::Invalid("the token was revoked".into()));
        }
        if c.expires_at.is_some_and(|e| e <= t) {
            return Err(AuthError::Invalid("the token has expired".into()));
        }
        let p = self.credential_principal(&c).await.map_err(|e| AuthError::Internal(e.to_string()))?;
        if c.last_used_at.is_none_or(|u| t - u > 60_000) {
            let _ = self.index.touch_credential(c.id, t).await;
        }
        self.credential_cache.put(key, p.clone(), None, t);
        Ok(p)
    }

    async fn credential_principal(&self, c: &Credential) -> Result<Principal, ArchiveError> {
        let (code, regional) = self.institution_reach(c.institution_id).await?;
        let grants = match c.institution_id {
            Some(i) => self.index.active_grants(None, Some(i), now()).await?,
            None => Vec::new(),
        };
        Ok(Principal {
            kind: if c.kind == CredentialKind::Token { PrincipalKind::Token } else { PrincipalKind::Client },
            id: format!("{}:{}", if c.kind == CredentialKind::Token { "token" } else { "client" }, c.public_id),
            name: c.name.clone(),
            roles: Vec::new(),
            actions: Some(c.actions.iter().filter_map(|a| Action::from_code(a)).collect()),
            institution: c.institution_id,
            institution_code: code,
            regional,
            granted_studies: grants.into_iter().map(|g| g.study_uid).collect(),
        })
    }

    /// OAuth2 client credentials: a service account's id and secret for a
    /// short-lived access token. Returns (token, lifetime in seconds, actions).
    pub async fn issue_access_token(
        &self,
        client_id: &str,
        secret: &str,
        source: &str,
    ) -> Result<(String, i64, Vec<String>), AuthError> {
        let anon = Caller::new(Principal::system("oauth"), Some(source.to_string()), yunying_audit::event::INTERFACE_HTTP);
        let client = self.index.credential_by_public_id(client_id).await.map_err(|e| AuthError::Internal(e.to_string()))?;
        let client = match client {
            Some(c) if c.kind == CredentialKind::Client && token::verify_secret(secret, &c.secret_hash) => c,
            _ => {
                let mut e = self.audit_event(&anon, AuditAction::LoginFailed, Outcome::MinorFailure);
                e.actor = yunying_audit::Actor::new(yunying_audit::ActorKind::Client, format!("client:{client_id}"), "");
                e.detail = serde_json::json!({ "reason": "unknown client or wrong secret" });
                self.audit(e).await;
                return Err(AuthError::Invalid("invalid_client".into()));
            }
        };
        let t = now();
        if client.revoked_at.is_some() || client.expires_at.is_some_and(|e| e <= t) {
            return Err(AuthError::Invalid("invalid_client".into()));
        }
        let lifetime = self.settings.security.access_token_minutes * 60;
        let access = token::new_secret("yya_");
        self.index
            .create_credential(&NewCredential {
                kind: CredentialKind::Access,
                public_id: format!("{}.{}", client.public_id, &token::secret_hash(&access)[..12]),
                secret_hash: token::secret_hash(&access),
                name: client.name.clone(),
                institution_id: client.institution_id,
                actions: client.actions.clone(),
                parent_id: Some(client.id),
                expires_at: Some(t + lifetime * 1000),
                created_by: format!("client:{}", client.public_id),
            })
            .await
            .map_err(|e| AuthError::Internal(e.to_string()))?;
        let principal = self.credential_principal(&client).await.map_err(|e| AuthError::Internal(e.to_string()))?;
        let caller = Caller::new(principal, Some(source.to_string()), yunying_audit::event::INTERFACE_HTTP);
        let mut e = self.audit_event(&caller, AuditAction::Login, Outcome::Success);
        e.detail = serde_json::json!({ "grant": "client_credentials", "expires_in": lifetime });
        self.audit(e).await;
        Ok((access, lifetime, client.actions))
    }

    // --- administration ---------------------------------------------------

    /// Creates a user (security administrator, an institution administrator
    /// for their own institution, or the server's CLI).
    pub async fn create_user(&self, caller: &Caller, req: &UserRequest) -> Result<User, ArchiveError> {
        let institution = self.institution_id(req.institution_code.as_deref()).await?;
        let target = institution.map(Target::Institution).unwrap_or(Target::Platform);
        self.authorize(caller, Action::ManageUsers, &target).await?;
        let roles = parse_roles(&req.roles)?;
        policy::check_role_set(&roles).map_err(ArchiveError::BadRequest)?;
        for r in &roles {
            if !policy::may_assign(&caller.principal, *r) {
                return Err(self.deny(caller, Action::ManageUsers, &policy::Decision::DenyAction, None).await);
            }
            if !r.is_administrator() && institution.is_none() {
                return Err(ArchiveError::BadRequest(format!("a {} belongs to an institution", r.code())));
            }
        }
        if req.username.trim().is_empty() || req.username.len() > 64 || req.username.contains(char::is_whitespace) {
            return Err(ArchiveError::BadRequest("a username is 1 to 64 characters without spaces".into()));
        }
        self.settings
            .security
            .password_rules
            .check(&req.username, &req.password)
            .map_err(|p| ArchiveError::BadRequest(format!("{p} / {}", p.zh())))?;
        let pw = req.password.clone();
        let hash = tokio::task::spawn_blocking(move || hash_password(&pw))
            .await
            .map_err(|e| ArchiveError::Internal(e.to_string()))?
            .map_err(|e| ArchiveError::Internal(e.to_string()))?;
        let user = self
            .index
            .create_user(&NewUser {
                username: req.username.clone(),
                display_name: req.display_name.clone(),
                institution_id: institution,
                roles: roles.iter().map(|r| r.code().to_string()).collect(),
                password_hash: hash,
                must_change_password: req.temporary,
                phone: None,
                phone_index: None,
            })
            .await
            .map_err(index_err)?;
        let mut e = self.audit_event(caller, AuditAction::UserCreated, Outcome::Success);
        e.detail = serde_json::json!({ "target": format!("user:{}", user.username), "roles": user.roles, "institution": req.institution_code });
        self.audit(e).await;
        Ok(user)
    }

    /// Changes a user's roles, lock or status as an administrator.
    pub async fn administer_user(&self, caller: &Caller, username: &str, req: &UserAdministration) -> Result<User, ArchiveError> {
        let UserAdministration { roles, disabled, unlock, reset_password, reset_second_factor } = req.clone();
        let user = self
            .index
            .user_by_username(username)
            .await?
            .ok_or_else(|| ArchiveError::NotFound(format!("no user {username:?}")))?;
        let target = user.institution_id.map(Target::Institution).unwrap_or(Target::Platform);
        self.authorize(caller, Action::ManageUsers, &target).await?;
        // Nobody administers a platform administrator but the server's CLI
        // and the security administrator (for the others' accounts).
        for r in roles_of(&user) {
            if !policy::may_assign(&caller.principal, r) {
                return Err(self.deny(caller, Action::ManageUsers, &policy::Decision::DenyAction, None).await);
            }
        }
        let mut change = UserChange { unlock, disabled, ..Default::default() };
        if reset_second_factor {
            change.totp = Some(None);
        }
        if let Some(roles) = &roles {
            let parsed = parse_roles(roles)?;
            policy::check_role_set(&parsed).map_err(ArchiveError::BadRequest)?;
            for r in &parsed {
                if !policy::may_assign(&caller.principal, *r) {
                    return Err(self.deny(caller, Action::ManageUsers, &policy::Decision::DenyAction, None).await);
                }
            }
            change.roles = Some(parsed.iter().map(|r| r.code().to_string()).collect());
        }
        if let Some(pw) = &reset_password {
            self.settings
                .security
                .password_rules
                .check(username, pw)
                .map_err(|p| ArchiveError::BadRequest(format!("{p} / {}", p.zh())))?;
            let pw = pw.clone();
            let hash = tokio::task::spawn_blocking(move || hash_password(&pw))
                .await
                .map_err(|e| ArchiveError::Internal(e.to_string()))?
                .map_err(|e| ArchiveError::Internal(e.to_string()))?;
            change.password_hash = Some(hash);
            change.must_change_password = Some(true);
            change.unlock = true;
        }
        let after = self.index.change_user(user.id, &change).await.map_err(index_err)?;
        if disabled == Some(true) || reset_password.is_some() || roles.is_some() || reset_second_factor {
            self.index.end_user_sessions(user.id).await?;
            self.credential_cache.clear();
        }
        let action = if roles.is_some() { AuditAction::RolesChanged } else { AuditAction::UserChanged };
        let mut e = self.audit_event(caller, action, Outcome::Success);
        e.detail = serde_json::json!({
            "target": format!("user:{username}"), "roles": roles, "disabled": disabled,
            "unlock": unlock, "password_reset": reset_password.is_some(), "second_factor_reset": reset_second_factor,
        });
        self.audit(e).await;
        Ok(after)
    }

    /// A user changes their own password.
    pub async fn change_own_password(&self, caller: &Caller, old: &str, new: &str) -> Result<(), ArchiveError> {
        let user = self.caller_user(caller).await?;
        let (hash, o) = (user.password_hash.clone(), old.to_string());
        if !tokio::task::spawn_blocking(move || verify_password(&hash, &o)).await.unwrap_or(false) {
            let mut e = self.audit_event(caller, AuditAction::PasswordChanged, Outcome::MinorFailure);
            e.detail = serde_json::json!({ "reason": "wrong current password" });
            self.audit(e).await;
            return Err(ArchiveError::Forbidden("the current password is wrong".into()));
        }
        if old == new {
            return Err(ArchiveError::BadRequest("the new password must differ from the current one / 新密码不能与当前密码相同".into()));
        }
        self.settings
            .security
            .password_rules
            .check(&user.username, new)
            .map_err(|p| ArchiveError::BadRequest(format!("{p} / {}", p.zh())))?;
        let n = new.to_string();
        let hash = tokio::task::spawn_blocking(move || hash_password(&n))
            .await
            .map_err(|e| ArchiveError::Internal(e.to_string()))?
            .map_err(|e| ArchiveError::Internal(e.to_string()))?;
        self.index
            .change_user(user.id, &UserChange { password_hash: Some(hash), must_change_password: Some(false), ..Default::default() })
            .await?;
        self.credential_cache.clear();
        let e = self.audit_event(caller, AuditAction::PasswordChanged, Outcome::Success);
        self.audit(e).await;
        Ok(())
    }

    async fn caller_user(&self, caller: &Caller) -> Result<User, ArchiveError> {
        let name = caller
            .principal
            .id
            .strip_prefix("user:")
            .filter(|_| caller.principal.kind == PrincipalKind::User)
            .ok_or_else(|| ArchiveError::Forbidden("only a signed-in user can do this".into()))?;
        self.index.user_by_username(name).await?.ok_or_else(|| ArchiveError::Unauthorized("the account no longer exists".into()))
    }

    /// Starts TOTP enrolment: a new secret (base32) and its otpauth URI for
    /// an authenticator app. Not active until confirmed with a code.
    pub async fn totp_begin(&self, caller: &Caller) -> Result<(String, String), ArchiveError> {
        let user = self.caller_user(caller).await?;
        if user.totp_enabled {
            // A session must not be able to switch the second factor off:
            // re-enrolment goes through an administrator's reset.
            return Err(ArchiveError::Conflict(
                "a second factor is already enrolled; ask the security administrator to reset it / 已绑定动态口令".into(),
            ));
        }
        let mut e = self.audit_event(caller, AuditAction::TotpEnrolled, Outcome::Success);
        e.detail = serde_json::json!({ "step": "started" });
        self.audit(e).await;
        let secret = totp::new_secret();
        let b32 = totp::base32_encode(&secret);
        let sealed = field::encrypt(&self.settings.keys, &b32, &totp_aad(user.id));
        self.index.change_user(user.id, &UserChange { totp: Some(Some((sealed, false))), ..Default::default() }).await?;
        let uri = totp::otpauth_uri("云影 Yunying", &user.username, &secret);
        Ok((b32, uri))
    }

    /// Confirms TOTP enrolment with a first code.
    pub async fn totp_confirm(&self, caller: &Caller, code: &str) -> Result<(), ArchiveError> {
        let user = self.caller_user(caller).await?;
        let Some(sealed) = user.totp_secret.clone() else {
            return Err(ArchiveError::BadRequest("start the enrolment first".into()));
        };
        if !self.check_totp(&user, code, now()).await? {
            let mut e = self.audit_event(caller, AuditAction::TotpEnrolled, Outcome::MinorFailure);
            e.detail = serde_json::json!({ "reason": "wrong verification code" });
            self.audit(e).await;
            return Err(ArchiveError::BadRequest("wrong verification code / 验证码错误".into()));
        }
        let mut change = UserChange { totp: Some(Some((sealed, true))), ..Default::default() };
        // Re-enabling resets the replay guard; keep it at the step just used.
        change.unlock = false;
        self.index.change_user(user.id, &change).await?;
        let step = (now() / 1000) as u64 / totp::STEP_SECS;
        let _ = self.index.use_totp_step(user.id, step as i64).await;
        self.credential_cache.clear();
        let e = self.audit_event(caller, AuditAction::TotpEnrolled, Outcome::Success);
        self.audit(e).await;
        Ok(())
    }

    /// Creates an API token or a service account; returns it with its
    /// secret (shown once).
    pub async fn create_credential(&self, caller: &Caller, req: &CredentialRequest) -> Result<(Credential, String), ArchiveError> {
        self.authorize(caller, Action::ManageCredentials, &Target::Platform).await?;
        if req.kind == CredentialKind::Access {
            return Err(ArchiveError::BadRequest("access tokens are issued to clients, not created".into()));
        }
        if let Some(a) = req.actions.iter().find(|a| !a.grantable_to_machines()) {
            return Err(ArchiveError::BadRequest(format!(
                "a machine credential cannot be given '{}': administration stays with people",
                a.code()
            )));
        }
        if req.actions.is_empty() {
            return Err(ArchiveError::BadRequest("a credential needs at least one action".into()));
        }
        let institution = self.institution_id(req.institution_code.as_deref()).await?;
        let (prefix, public_id) = match req.kind {
            CredentialKind::Token => ("yyt_", String::new()),
            _ => ("yyk_", format!("yyc-{}", &token::new_secret("")[..16].to_lowercase().replace(['-', '_'], "x"))),
        };
        let secret = token::new_secret(prefix);
        let public_id = if public_id.is_empty() { secret[..12].to_string() } else { public_id };
        let c = self
            .index
            .create_credential(&NewCredential {
                kind: req.kind,
                public_id,
                secret_hash: token::secret_hash(&secret),
                name: req.name.clone(),
                institution_id: institution,
                actions: req.actions.iter().map(|a| a.code().to_string()).collect(),
                parent_id: None,
                expires_at: req.expires_at,
                created_by: caller.principal.id.clone(),
            })
            .await
            .map_err(index_err)?;
        let mut e = self.audit_event(caller, AuditAction::TokenCreated, Outcome::Success);
        e.detail = serde_json::json!({
            "target": format!("{}:{}", c.kind.code(), c.public_id), "name": c.name,
            "institution": req.institution_code, "actions": c.actions, "expires_at": c.expires_at,
        });
        self.audit(e).await;
        Ok((c, secret))
    }

    /// Revokes a token or a service account (and its access tokens).
    pub async fn revoke_credential(&self, caller: &Caller, public_id: &str) -> Result<bool, ArchiveError> {
        self.authorize(caller, Action::ManageCredentials, &Target::Platform).await?;
        let Some(c) = self.index.credential_by_public_id(public_id).await? else {
            return Err(ArchiveError::NotFound(format!("no credential {public_id:?}")));
        };
        let done = self.index.revoke_credential(c.id, now()).await?;
        self.credential_cache.clear();
        let mut e = self.audit_event(caller, AuditAction::TokenRevoked, Outcome::Success);
        e.detail = serde_json::json!({ "target": format!("{}:{}", c.kind.code(), c.public_id) });
        self.audit(e).await;
        Ok(done)
    }

    /// Opens a study to a user or an institution (a consultation, a referral).
    pub async fn grant_study(&self, caller: &Caller, req: &GrantRequest) -> Result<Grant, ArchiveError> {
        let GrantRequest { study_uid, kind, to_user, to_institution, expires_at, reason } = req;
        let (study_uid, kind, reason, expires_at) = (study_uid.as_str(), kind.as_str(), reason.as_str(), *expires_at);
        let (to_user, to_institution) = (to_user.as_deref(), to_institution.as_deref());
        if !matches!(kind, "consultation" | "referral" | "share") {
            return Err(ArchiveError::BadRequest("a grant is a consultation, a referral or a share".into()));
        }
        // Whoever may read the study may share it; the security administrator may open any.
        if !caller.principal.holds(Action::ManageGrants) {
            let facts = self.study_access(caller, Action::Share, study_uid).await?;
            let _ = facts;
        } else if self.study_facts(study_uid).await?.is_none() {
            return Err(ArchiveError::NotFound(format!("no study {study_uid}")));
        }
        let user_id = match to_user {
            Some(u) => Some(
                self.index.user_by_username(u).await?.ok_or_else(|| ArchiveError::BadRequest(format!("no user {u:?}")))?.id,
            ),
            None => None,
        };
        let institution_id = self.institution_id(to_institution).await?;
        let g = self
            .index
            .create_grant(&NewGrant {
                study_uid: study_uid.to_string(),
                kind: kind.to_string(),
                user_id,
                institution_id,
                expires_at,
                reason: reason.to_string(),
                created_by: caller.principal.id.clone(),
            })
            .await
            .map_err(index_err)?;
        self.credential_cache.clear();
        let facts = self.study_facts(study_uid).await?;
        let mut e = self.audit_event(caller, AuditAction::GrantCreated, Outcome::Success);
        e.studies = vec![study_uid.to_string()];
        e.patient = facts.and_then(|f| f.patient);
        e.detail = serde_json::json!({ "kind": kind, "user": to_user, "institution": to_institution, "expires_at": expires_at, "reason": reason });
        self.audit(e).await;
        Ok(g)
    }

    /// Revokes a grant (the security administrator).
    pub async fn revoke_grant(&self, caller: &Caller, id: i64) -> Result<bool, ArchiveError> {
        self.authorize(caller, Action::ManageGrants, &Target::Platform).await?;
        let done = self.index.revoke_grant(id, now()).await?;
        self.credential_cache.clear();
        let mut e = self.audit_event(caller, AuditAction::GrantRevoked, Outcome::Success);
        e.detail = serde_json::json!({ "grant": id, "revoked": done });
        self.audit(e).await;
        Ok(done)
    }

    /// Marks an institution as regional (its radiologists read the region).
    pub async fn set_regional(&self, caller: &Caller, code: &str, regional: bool) -> Result<(), ArchiveError> {
        self.authorize(caller, Action::ManageSystem, &Target::Platform).await?;
        let id = self.institution_id(Some(code)).await?.expect("code given");
        self.index.set_institution_regional(id, regional).await?;
        self.credential_cache.clear();
        let mut e = self.audit_event(caller, AuditAction::InstitutionChanged, Outcome::Success);
        e.detail = serde_json::json!({ "target": code, "regional": regional });
        self.audit(e).await;
        Ok(())
    }
}

fn totp_aad(user_id: i64) -> String {
    format!("user.totp.{user_id}")
}

fn parse_roles(codes: &[String]) -> Result<Vec<Role>, ArchiveError> {
    codes
        .iter()
        .map(|c| {
            Role::from_code(c.trim()).ok_or_else(|| {
                ArchiveError::BadRequest(format!(
                    "unknown role {c:?} (known: {})",
                    Role::ALL.iter().map(|r| r.code()).collect::<Vec<_>>().join(", ")
                ))
            })
        })
        .collect()
}
