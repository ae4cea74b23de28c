//! Sessions: `/session` and `/login`.

use axum::extract::State;
use axum::Json;
use confab_core::{AppId, Error};
use confab_service::Credentials;
use confab_service::UserKey;
use serde_json::{json, Value};

use super::render;
use crate::error::ApiResult;
use crate::extract::{Auth, Body, ClientIp};
use crate::params::Params;
use crate::AppState;

/// Reads `{login|email, password}` or `{guest, full_name}` credentials.
fn credentials(p: &Params) -> Result<Credentials, Error> {
    if p.flag("guest") {
        return Ok(Credentials::Guest {
            full_name: p.text("full_name"),
        });
    }
    let password = p
        .text("password")
        .ok_or_else(|| Error::invalid("password", "can't be blank"))?;
    if let Some(login) = p.text("login") {
        Ok(Credentials::Login { login, password })
    } else if let Some(email) = p.text("email") {
        Ok(Credentials::Email { email, password })
    } else {
        Err(Error::invalid("login", "can't be blank"))
    }
}

fn has_password(c: &Credentials) -> bool {
    !matches!(c, Credentials::Guest { .. })
}

/// Password attempts per client address (the per-login limit is the accounts service's own).
fn check_source(s: &AppState, ip: Option<std::net::IpAddr>) -> Result<(), Error> {
    match ip {
        Some(ip) => s.accounts.check_login_source(ip),
        None => Ok(()),
    }
}

/// POST /session
pub async fn create_session(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    Body(p): Body,
) -> ApiResult<Json<Value>> {
    let app_id = p
        .int("application_id")?
        .ok_or_else(|| Error::invalid("application_id", "can't be blank"))?;
    let app_id = AppId::new(app_id)?;
    let auth_key = p
        .text("auth_key")
        .ok_or_else(|| Error::invalid("auth_key", "can't be blank"))?;
    if p.get("provider").is_some() {
        return Err(Error::invalid("provider", "is not supported by this server").into());
    }
    let creds = p.object("user")?.map(|u| credentials(&u)).transpose()?;
    if creds.as_ref().is_some_and(has_password) {
        check_source(&s, ip)?;
    }
    let (session, token, user) = s.accounts.create_session(app_id, &auth_key, creds).await?;
    Ok(Json(render::session(&session, &token, user.as_ref())))
}

/// GET /session
pub async fn get_session(State(s): State<AppState>, auth: Auth) -> ApiResult<Json<Value>> {
    let user = match auth.ctx.session.user_id {
        Some(u) => Some(
            s.accounts
                .user(auth.ctx.app(), UserKey::Id(u.get()))
                .await?,
        ),
        None => None,
    };
    Ok(Json(render::session(
        &auth.ctx.session,
        &auth.token,
        user.as_ref(),
    )))
}

/// DELETE /session
pub async fn delete_session(State(s): State<AppState>, auth: Auth) -> ApiResult<Json<Value>> {
    s.accounts.destroy_session(&auth.ctx).await?;
    Ok(Json(json!({})))
}

/// POST /login
pub async fn login(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    auth: Auth,
    Body(p): Body,
) -> ApiResult<Json<Value>> {
    // Both `{login, password}` and `{user: {login, password}}` are seen in the wild.
    let p = p.object("user")?.unwrap_or(p);
    let creds = credentials(&p)?;
    if has_password(&creds) {
        check_source(&s, ip)?;
    }
    let user = s.accounts.login(&auth.ctx, creds).await?;
    Ok(Json(json!({ "user": render::user(&user) })))
}

/// DELETE /login
pub async fn logout(State(s): State<AppState>, auth: Auth) -> ApiResult<Json<Value>> {
    s.accounts.logout(&auth.ctx).await?;
    Ok(Json(json!({})))
}
