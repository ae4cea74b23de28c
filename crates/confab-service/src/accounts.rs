//! Applications, sessions and users: who is calling, and what they may do to their own account.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use confab_core::clock::{now_millis, Millis};
use confab_core::error::FieldErrors;
use confab_core::model::{App, AppCredentials, Session, User, UserFields, UserQuery};
use confab_core::{AppId, Error, ErrorKind, Result, UserId};
use confab_store::{AccountStore, NewUser, UserKey};

use crate::blobs::Blobs;
use crate::limiter::{self, KeyedLimiter};
use crate::secrets::{hash_password, random_hex, token_hash, verify_password};
use crate::touches::Touches;

pub const MIN_PASSWORD_LEN: usize = 8;
pub const MAX_PASSWORD_LEN: usize = 128;
const MAX_FIELD_LEN: usize = 255;
const MAX_CUSTOM_DATA_LEN: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct AccountsConfig {
    /// A session expires after this long without a request.
    pub session_ttl: Duration,
    /// Password attempts allowed per minute for one login of one app.
    pub login_attempts_per_minute: u32,
    /// Password attempts allowed per minute from one client address, REST and XMPP together
    /// (0: no limit).
    pub login_attempts_per_minute_per_ip: u32,
    /// Whether per-address limits apply to loopback clients too.
    pub limit_loopback: bool,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        Self {
            session_ttl: Duration::from_secs(2 * 60 * 60),
            login_attempts_per_minute: 30,
            login_attempts_per_minute_per_ip: 600,
            limit_loopback: false,
        }
    }
}

/// How a user proves who they are.
#[derive(Debug, Clone)]
pub enum Credentials {
    Login {
        login: String,
        password: String,
    },
    Email {
        email: String,
        password: String,
    },
    /// A throw-away guest account, created on the spot.
    Guest {
        full_name: Option<String>,
    },
}

/// The caller of an authenticated request.
#[derive(Debug, Clone)]
pub struct AuthContext {
    pub session: Session,
}

impl AuthContext {
    pub fn app(&self) -> AppId {
        self.session.app_id
    }

    /// The session's user, or the error for an application-only session.
    pub fn user(&self) -> Result<UserId> {
        self.session
            .user_id
            .ok_or_else(|| Error::forbidden("This action requires a user session"))
    }
}

pub struct Accounts {
    store: Arc<dyn AccountStore>,
    config: AccountsConfig,
    login_limiter: Option<KeyedLimiter<(i64, String)>>,
    login_ip_limiter: Option<KeyedLimiter<IpAddr>>,
    touches: Touches,
    /// Where a deleted user's blob files go from, when the server stores blobs.
    blobs: Option<Arc<Blobs>>,
}

impl Accounts {
    /// Whether the store answers (`/health`).
    pub async fn store_ok(&self) -> bool {
        self.store.ping().await.is_ok()
    }

    pub fn new(store: Arc<dyn AccountStore>, config: AccountsConfig) -> Self {
        Self {
            touches: Touches::new(store.clone()),
            store,
            login_limiter: KeyedLimiter::per_minute(config.login_attempts_per_minute.max(1)),
            login_ip_limiter: KeyedLimiter::per_minute(config.login_attempts_per_minute_per_ip),
            config,
            blobs: None,
        }
    }

    /// Deleting a user deletes their blobs too.
    pub fn with_blobs(mut self, blobs: Arc<Blobs>) -> Self {
        self.blobs = Some(blobs);
        self
    }

    /// Counts a password attempt from `ip` (a REST login or an XMPP authentication);
    /// `RateLimited` when the address made too many in the last minute.
    pub fn check_login_source(&self, ip: IpAddr) -> Result<()> {
        match &self.login_ip_limiter {
            _ if limiter::exempt(ip, self.config.limit_loopback) => Ok(()),
            Some(l) if l.check(&ip).is_err() => Err(Error::new(
                ErrorKind::RateLimited,
                "Too many login attempts, try again later",
            )),
            _ => Ok(()),
        }
    }

    /// Writes session extensions that are still waiting (at shutdown).
    pub async fn flush_session_extensions(&self) -> Result<()> {
        self.touches.flush().await
    }

    fn ttl_ms(&self) -> Millis {
        self.config.session_ttl.as_millis() as Millis
    }

    // ---- applications ----

    pub async fn create_app(&self, name: &str) -> Result<AppCredentials> {
        let name = name.trim();
        if name.is_empty() || name.len() > MAX_FIELD_LEN {
            return Err(Error::invalid("name", "must be 1 to 255 characters"));
        }
        let auth_key = random_hex(16);
        let auth_secret = random_hex(16);
        let api_key = random_hex(24);
        let app = self
            .store
            .create_app(
                name,
                &auth_key,
                &auth_secret,
                &token_hash(&api_key),
                now_millis(),
            )
            .await?;
        Ok(AppCredentials {
            app,
            auth_secret,
            api_key,
        })
    }

    /// The app whose administration key this is.
    pub async fn app_by_api_key(&self, api_key: &str) -> Result<App> {
        if api_key.is_empty() {
            return Err(Error::new(ErrorKind::Unauthenticated, "Unauthorized"));
        }
        self.store
            .app_by_api_key(&token_hash(api_key))
            .await?
            .ok_or_else(|| Error::new(ErrorKind::Unauthenticated, "Unauthorized"))
    }

    /// The app a `CB-AuthKey`/`auth_key` belongs to, checked against the claimed id when given.
    pub async fn app_by_auth_key(&self, app_id: AppId, auth_key: &str) -> Result<App> {
        match self.store.app(app_id).await? {
            Some(app) if constant_time_eq(app.auth_key.as_bytes(), auth_key.as_bytes()) => Ok(app),
            _ => Err(Error::new(
                ErrorKind::Unauthenticated,
                "Unexpected signature: invalid application_id or auth_key",
            )),
        }
    }

    /// The app of a `CB-AuthKey` header (sign-up without a session).
    pub async fn app_by_auth_key_only(&self, auth_key: &str) -> Result<App> {
        if auth_key.is_empty() || auth_key.len() > 256 {
            return Err(Error::no_session());
        }
        self.store
            .app_by_auth_key(auth_key)
            .await?
            .ok_or_else(Error::no_session)
    }

    // ---- sessions ----

    /// `POST /session`: an application session, or a user session when credentials are given.
    pub async fn create_session(
        &self,
        app_id: AppId,
        auth_key: &str,
        credentials: Option<Credentials>,
    ) -> Result<(Session, String, Option<User>)> {
        let app = self.app_by_auth_key(app_id, auth_key).await?;
        let user = match credentials {
            Some(c) => Some(self.verify_credentials(app.id, c).await?),
            None => None,
        };
        let token = random_hex(20);
        let now = now_millis();
        let session = self
            .store
            .create_session(
                app.id,
                user.as_ref().map(User::user_id),
                &token_hash(&token),
                now,
                now + self.ttl_ms(),
            )
            .await?;
        Ok((session, token, user))
    }

    /// Resolves a `CB-Token`; every successful call extends the session.
    pub async fn authenticate(&self, token: &str) -> Result<AuthContext> {
        if token.is_empty() || token.len() > 256 {
            return Err(Error::no_session());
        }
        let now = now_millis();
        let mut session = self
            .store
            .session_by_token(&token_hash(token), now)
            .await?
            .ok_or_else(Error::no_session)?;
        // Extending on every request would be a write per request; a small slack keeps the
        // idle timeout accurate to within a tenth of it (at most 30 s) with far fewer writes.
        let slack = (self.ttl_ms() / 10).min(30_000);
        let expires_at = now + self.ttl_ms();
        if expires_at - session.expires_at > slack {
            self.touches.touch(&session, now, expires_at).await?;
            session.expires_at = expires_at;
        }
        Ok(AuthContext { session })
    }

    pub async fn destroy_session(&self, ctx: &AuthContext) -> Result<()> {
        self.store.delete_session(ctx.session.id).await
    }

    /// `POST /login`: attach a user to an application session.
    pub async fn login(&self, ctx: &AuthContext, credentials: Credentials) -> Result<User> {
        let user = self.verify_credentials(ctx.app(), credentials).await?;
        self.store
            .set_session_user(ctx.session.id, Some(user.user_id()), now_millis())
            .await?;
        Ok(user)
    }

    /// `DELETE /login`: turn the session back into an application session.
    pub async fn logout(&self, ctx: &AuthContext) -> Result<()> {
        ctx.user()?;
        self.store
            .set_session_user(ctx.session.id, None, now_millis())
            .await
    }

    /// Checks a user's secret for chat login: either a live session token of this user or
    /// the account password.
    pub async fn verify_chat_secret(&self, app: AppId, user: UserId, secret: &str) -> Result<()> {
        if let Ok(ctx) = self.authenticate(secret).await {
            // Deleting a user deletes its sessions, so a live session proves the user exists.
            if ctx.app() == app && ctx.session.user_id == Some(user) {
                return Ok(());
            }
        }
        let hash = self.store.user_password_hash(app, user).await?;
        let valid = match hash {
            Some(h) => verify_password(secret.to_string(), h).await,
            None => false,
        };
        if !valid {
            return Err(Error::new(ErrorKind::Unauthenticated, "Unauthorized"));
        }
        Ok(())
    }

    /// Checks a login and password (rate limited like every login) without opening a session:
    /// for faces that issue their own tokens.
    pub async fn check_credentials(&self, app: AppId, login: &str, password: &str) -> Result<User> {
        self.verify_credentials(
            app,
            Credentials::Login {
                login: login.to_string(),
                password: password.to_string(),
            },
        )
        .await
    }

    async fn verify_credentials(&self, app: AppId, credentials: Credentials) -> Result<User> {
        let (key, password) = match credentials {
            Credentials::Guest { full_name } => return self.create_guest(app, full_name).await,
            Credentials::Login { login, password } => (UserKey::Login(login), password),
            Credentials::Email { email, password } => (UserKey::Email(email), password),
        };
        let limiter_key = match &key {
            UserKey::Login(l) | UserKey::Email(l) => (app.get(), l.to_lowercase()),
            _ => unreachable!("only login and email are credentials"),
        };
        if self
            .login_limiter
            .as_ref()
            .is_some_and(|l| l.check(&limiter_key).is_err())
        {
            return Err(Error::new(
                ErrorKind::RateLimited,
                "Too many login attempts, try again later",
            ));
        }
        let unauthorized = || Error::new(ErrorKind::Unauthenticated, "Unauthorized");
        let user = self.store.user(app, key).await?;
        let Some(user) = user else {
            return Err(unauthorized());
        };
        match self.store.user_password_hash(app, user.user_id()).await? {
            Some(h) => {
                if verify_password(password, h).await {
                    Ok(user)
                } else {
                    Err(unauthorized())
                }
            }
            None => Err(unauthorized()),
        }
    }

    async fn create_guest(&self, app: AppId, full_name: Option<String>) -> Result<User> {
        let fields = UserFields {
            full_name: Some(full_name.or_else(|| Some("Guest".into()))),
            ..Default::default()
        };
        validate_fields(&fields)?;
        self.store
            .create_user(NewUser {
                app_id: app.get(),
                fields,
                password_hash: None,
                is_guest: true,
                now: now_millis(),
            })
            .await
    }

    // ---- users ----

    /// `POST /users`: sign up. Needs a login or an email, and a password.
    pub async fn signup(
        &self,
        app: AppId,
        fields: UserFields,
        password: Option<String>,
    ) -> Result<User> {
        let mut errors = FieldErrors::default();
        let has = |f: &Option<Option<String>>| f.as_ref().is_some_and(|v| v.is_some());
        if !has(&fields.login) && !has(&fields.email) {
            errors.add("base", "login or email required");
        }
        match &password {
            None => errors.add("password", "can't be blank"),
            Some(p) => check_password(p, &mut errors),
        }
        check_fields(&fields, &mut errors);
        errors.into_result()?;
        let password_hash = hash_password(password.expect("checked above")).await?;
        self.store
            .create_user(NewUser {
                app_id: app.get(),
                fields,
                password_hash: Some(password_hash),
                is_guest: false,
                now: now_millis(),
            })
            .await
    }

    pub async fn user(&self, app: AppId, key: UserKey) -> Result<User> {
        self.store
            .user(app, key)
            .await?
            .ok_or_else(|| Error::not_found("User not found"))
    }

    pub async fn list_users(&self, app: AppId, query: &UserQuery) -> Result<(Vec<User>, u64)> {
        self.store.list_users(app, query).await
    }

    /// `PUT /users/{id}`: only the session's own user; a new password needs the old one.
    pub async fn update_self(
        &self,
        ctx: &AuthContext,
        target: UserId,
        fields: UserFields,
        new_password: Option<(String, Option<String>)>,
    ) -> Result<User> {
        let me = ctx.user()?;
        if me != target {
            return Err(Error::forbidden("You can only update your own account"));
        }
        self.update_user(ctx.app(), me, fields, new_password).await
    }

    /// Changes a user's profile and, given the current password, their password: for faces
    /// that authenticate users with their own tokens.
    pub async fn update_user(
        &self,
        app: AppId,
        me: UserId,
        fields: UserFields,
        new_password: Option<(String, Option<String>)>,
    ) -> Result<User> {
        validate_fields(&fields)?;
        let mut password_hash = None;
        if let Some((new, old)) = new_password {
            let mut errors = FieldErrors::default();
            check_password(&new, &mut errors);
            errors.into_result()?;
            let current = self.store.user_password_hash(app, me).await?;
            let old_ok = match (old, current) {
                (Some(old), Some(hash)) => verify_password(old, hash).await,
                (None, _) => return Err(Error::invalid("old_password", "can't be blank")),
                (Some(_), None) => false,
            };
            if !old_ok {
                return Err(Error::invalid("old_password", "is incorrect"));
            }
            password_hash = Some(hash_password(new).await?);
        }
        self.store
            .update_user(app, me, &fields, password_hash.as_deref(), now_millis())
            .await?
            .ok_or_else(|| Error::not_found("User not found"))
    }

    /// Sets a new password without the old one, for a face that proved the user otherwise (an
    /// account key).
    pub async fn set_password(&self, app: AppId, user: UserId, new: String) -> Result<()> {
        let mut errors = FieldErrors::default();
        check_password(&new, &mut errors);
        errors.into_result()?;
        let hash = hash_password(new).await?;
        self.store
            .update_user(app, user, &UserFields::default(), Some(&hash), now_millis())
            .await?
            .ok_or_else(|| Error::not_found("User not found"))
            .map(|_| ())
    }

    /// `DELETE /users/{id}`: only the session's own user; their sessions and blobs go with them.
    pub async fn delete_self(&self, ctx: &AuthContext, target: UserId) -> Result<()> {
        let me = ctx.user()?;
        if me != target {
            return Err(Error::forbidden("You can only delete your own account"));
        }
        self.delete_user(ctx.app(), me).await
    }

    /// Deletes a user with their sessions and blobs: for faces with their own tokens.
    pub async fn delete_user(&self, app: AppId, me: UserId) -> Result<()> {
        // The blob rows go with the user's row; which files they named is read first.
        let files = match &self.blobs {
            Some(blobs) => blobs.user_files(app, me).await?,
            None => Vec::new(),
        };
        if !self.store.delete_user(app, me).await? {
            return Err(Error::not_found("User not found"));
        }
        if let Some(blobs) = &self.blobs {
            blobs.remove_files(&files).await;
        }
        Ok(())
    }

    /// `confab app delete`: the application and everything in it, then its blobs' bytes.
    pub async fn delete_app(&self, app: AppId) -> Result<()> {
        let files = match &self.blobs {
            Some(blobs) => blobs.app_files(app).await?,
            None => Vec::new(),
        };
        if !self.store.delete_app(app).await? {
            return Err(Error::not_found("Application not found"));
        }
        if let Some(blobs) = &self.blobs {
            blobs.remove_files(&files).await;
        }
        Ok(())
    }

    /// Drops expired sessions; the server runs this periodically.
    pub async fn purge_expired_sessions(&self) -> Result<u64> {
        self.store.purge_expired_sessions(now_millis()).await
    }
}

fn check_password(p: &str, errors: &mut FieldErrors) {
    let len = p.chars().count();
    if !(MIN_PASSWORD_LEN..=MAX_PASSWORD_LEN).contains(&len) {
        errors.add(
            "password",
            format!("must be {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} characters"),
        );
    }
}

fn validate_fields(f: &UserFields) -> Result<()> {
    let mut errors = FieldErrors::default();
    check_fields(f, &mut errors);
    errors.into_result()
}

fn check_fields(f: &UserFields, errors: &mut FieldErrors) {
    let text = |name: &str, v: &Option<Option<String>>, max: usize, errors: &mut FieldErrors| {
        if let Some(Some(s)) = v {
            if s.chars().count() > max {
                errors.add(name, format!("is too long (maximum is {max} characters)"));
            }
        }
    };
    text("login", &f.login, 50, errors);
    text("email", &f.email, MAX_FIELD_LEN, errors);
    text("full_name", &f.full_name, MAX_FIELD_LEN, errors);
    text("phone", &f.phone, 64, errors);
    text("website", &f.website, MAX_FIELD_LEN, errors);
    text("external_id", &f.external_id, MAX_FIELD_LEN, errors);
    text("facebook_id", &f.facebook_id, MAX_FIELD_LEN, errors);
    text("twitter_id", &f.twitter_id, MAX_FIELD_LEN, errors);
    text("avatar", &f.avatar, 2048, errors);
    text("custom_data", &f.custom_data, MAX_CUSTOM_DATA_LEN, errors);
    if let Some(Some(login)) = &f.login {
        if login.trim().is_empty() {
            errors.add("login", "can't be blank");
        } else if login.trim().parse::<i64>().is_ok() {
            // A numeric login would be ambiguous with user ids in lookups.
            errors.add("login", "should not be a number");
        }
    }
    if let Some(Some(email)) = &f.email {
        let valid = email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
            && !email.contains(char::is_whitespace);
        if !valid {
            errors.add("email", "is invalid");
        }
    }
    if let Some(tags) = &f.tags {
        if tags.len() > 10 {
            errors.add("tag_list", "must have at most 10 tags");
        }
        if tags
            .iter()
            .any(|t| t.is_empty() || t.len() > 64 || t.contains(','))
        {
            errors.add("tag_list", "has an invalid tag");
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
