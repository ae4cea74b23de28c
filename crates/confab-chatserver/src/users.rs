//! Users (spec §3): register, log in with Basic auth and a bare `DeviceInfo`, me, logout, lookup
//! and search. A ChatServer user is a confab user of the face's app: `username` is the `login`,
//! and the password is the account's, on both faces.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State as St};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use confab_core::model::{User, UserFields, UserQuery};
use confab_core::{ErrorKind, UserId};
use confab_service::{DeviceSession, UserKey};
use serde::Deserialize;
use serde_json::Value;

use crate::auth::Caller;
use crate::error::{parse_json, CsError, CsResult};
use crate::media::complete_user_info;
use crate::render::{private_info, user_info, Dates};
use crate::State;

const NAME_ERROR: &str = "Name should consist of letters.";
const USERNAME_ERROR: &str = "Username should be at least 5 characters length, start with letter and consist of letters and digits.";
const PASSWORD_ERROR: &str = "Password should be at least 8 characters length.";

/// `DeviceInfo`, checked for shape and kept as the client sent it.
#[derive(Debug, Deserialize, serde::Serialize)]
pub struct DeviceInfo {
    pub id: String,
    pub name: String,
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    pub transport: Transport,
}

#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    None,
    Apns,
    Fcm,
    Web,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Registration {
    name: String,
    username: String,
    password: String,
    device_info: DeviceInfo,
}

/// Trimmed, with runs of spaces collapsed; letters and digits once the spaces are removed.
pub fn normalize_name(name: &str) -> Option<String> {
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    let ok = !name.is_empty() && name.chars().all(|c| c == ' ' || c.is_alphanumeric());
    ok.then_some(name)
}

/// Lower-cased; 5–25 letters and digits, starting with a letter.
pub fn normalize_username(username: &str) -> Option<String> {
    let u = username.trim().to_lowercase();
    let len = u.chars().count();
    let ok = (5..=25).contains(&len)
        && u.chars().next().is_some_and(char::is_alphabetic)
        && u.chars().all(char::is_alphanumeric);
    ok.then_some(u)
}

pub fn password_ok(password: &str) -> bool {
    (8..=25).contains(&password.chars().count())
}

fn ip(peer: &ConnectInfo<SocketAddr>) -> Option<String> {
    Some(peer.0.ip().to_string())
}

/// A new device session for `user`, answered with the user's private info.
async fn open_session(
    face: &State,
    user: &User,
    device: &DeviceInfo,
    ip: Option<String>,
) -> CsResult<Value> {
    let device_json = serde_json::to_string(device).map_err(confab_core::Error::internal)?;
    // A token the push service refuses means no push for that device, as in the original;
    // signing in still works.
    if let Err(e) = crate::push::sync_device(face, user.user_id(), device).await {
        tracing::debug!(reason = %e.reason, "chatserver: a device's push token was not taken");
    }
    let (session, token) = face
        .ids
        .open_device_session(face.app, user.user_id(), device_json, ip)
        .await?;
    if face.limits.max_sessions_per_user > 0 {
        let ended = face
            .ids
            .keep_newest_sessions(
                face.app,
                user.user_id(),
                face.limits.max_sessions_per_user,
                &session.id,
            )
            .await?;
        for id in ended {
            face.hub.close_session(user.user_id(), &id);
        }
    }
    let sessions = face.ids.device_sessions(face.app, user.user_id()).await?;
    let mut v = private_info(user, &sessions, (&session.id, &token));
    complete_user_info(face, user.user_id(), &mut v["info"]).await?;
    Ok(v)
}

/// A user's full `UserInfo`: with `about` and `photos`.
pub async fn full_user(face: &State, id: UserId) -> CsResult<Value> {
    let user = user_by_id(face, id).await?;
    let mut v = user_info(&user, true, Dates::Iso);
    complete_user_info(face, id, &mut v).await?;
    Ok(v)
}

/// `POST /users`: registers and logs in.
pub async fn register(
    St(face): St<State>,
    peer: ConnectInfo<SocketAddr>,
    body: Bytes,
) -> CsResult<Json<Value>> {
    let r: Registration = parse_json(&body)?;
    let name = normalize_name(&r.name).ok_or_else(|| CsError::bad_request(NAME_ERROR))?;
    let username =
        normalize_username(&r.username).ok_or_else(|| CsError::bad_request(USERNAME_ERROR))?;
    if !password_ok(&r.password) {
        return Err(CsError::bad_request(PASSWORD_ERROR));
    }
    let fields = UserFields {
        login: Some(Some(username)),
        full_name: Some(Some(name)),
        ..Default::default()
    };
    let user = match face
        .accounts
        .signup(face.app, fields, Some(r.password))
        .await
    {
        Ok(u) => u,
        // The original answered a 500 here; a taken name is the client's to fix.
        Err(e) if e.kind == ErrorKind::Invalid && e.fields.contains_key("login") => {
            return Err(CsError::new(
                StatusCode::CONFLICT,
                "This username is already taken.",
            ))
        }
        Err(e) => return Err(e.into()),
    };
    Ok(Json(
        open_session(&face, &user, &r.device_info, ip(&peer)).await?,
    ))
}

/// `username:password` of an `Authorization: Basic` header.
fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// `POST /users/login`: Basic auth, and the bare `DeviceInfo` as the body.
pub async fn login(
    St(face): St<State>,
    peer: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> CsResult<Json<Value>> {
    let (username, password) = basic(&headers).ok_or_else(CsError::unauthorized)?;
    face.accounts.check_login_source(peer.0.ip())?;
    let user = face
        .accounts
        .check_credentials(face.app, &username.trim().to_lowercase(), &password)
        .await?;
    let device: DeviceInfo = parse_json(&body)?;
    Ok(Json(open_session(&face, &user, &device, ip(&peer)).await?))
}

async fn user_by_id(face: &State, id: UserId) -> CsResult<User> {
    face.accounts
        .user(face.app, UserKey::Id(id.get()))
        .await
        .map_err(|e| match e.kind {
            ErrorKind::NotFound => CsError::new(StatusCode::NOT_FOUND, "User not found."),
            _ => e.into(),
        })
}

/// `GET /users/me`.
pub async fn me(St(face): St<State>, caller: Caller) -> CsResult<Json<Value>> {
    let user = user_by_id(&face, caller.user()).await?;
    let sessions: Vec<DeviceSession> = face.ids.device_sessions(face.app, caller.user()).await?;
    let mut v = private_info(&user, &sessions, (&caller.session.id, &caller.token));
    complete_user_info(&face, caller.user(), &mut v["info"]).await?;
    Ok(Json(v))
}

/// `POST /users/me/logout`: every device session of the user ends.
pub async fn logout(St(face): St<State>, caller: Caller) -> CsResult<Response> {
    face.ids
        .close_device_sessions(face.app, caller.user())
        .await?;
    crate::push::forget_devices(&face, caller.user()).await?;
    face.hub.close_user(face.app, caller.user());
    Ok(StatusCode::OK.into_response())
}

/// `GET /users/<id>`: needs a token (the original served it to anyone).
pub async fn get_user(
    St(face): St<State>,
    _caller: Caller,
    Path(id): Path<String>,
) -> CsResult<Json<Value>> {
    let id: UserId = id
        .parse()
        .map_err(|_| CsError::new(StatusCode::NOT_FOUND, "User not found."))?;
    Ok(Json(full_user(&face, id).await?))
}

#[derive(Deserialize)]
pub struct SearchQuery {
    s: Option<String>,
    search: Option<String>,
}

const MAX_SEARCH_RESULTS: u32 = 100;

/// `GET /users?s=`: a number looks a user up by id; otherwise at least 2 characters, matched in
/// names (case-insensitively) and as an exact username. Needs a token.
pub async fn search(
    St(face): St<State>,
    _caller: Caller,
    Query(q): Query<SearchQuery>,
) -> CsResult<Json<Value>> {
    let s = q.s.or(q.search).unwrap_or_default().trim().to_lowercase();
    if let Ok(id) = s.parse::<UserId>() {
        let user = user_by_id(&face, id).await?;
        return Ok(Json(Value::Array(with_photos(&face, &[user]).await?)));
    }
    if s.chars().count() < 2 {
        return Err(CsError::not_found());
    }
    let by_name = UserQuery {
        name_or_login: Some(s.clone()),
        limit: MAX_SEARCH_RESULTS,
        ..Default::default()
    };
    let (mut users, _) = face.accounts.list_users(face.app, &by_name).await?;
    if let Ok(u) = face.accounts.user(face.app, UserKey::Login(s)).await {
        if !users.iter().any(|x| x.id == u.id) {
            users.insert(0, u);
        }
    }
    users.truncate(MAX_SEARCH_RESULTS as usize);
    Ok(Json(Value::Array(with_photos(&face, &users).await?)))
}

/// `UserInfo`s with their `photos`, as the original's search loads them (one query for all).
async fn with_photos(face: &State, users: &[User]) -> CsResult<Vec<Value>> {
    let owners: Vec<String> = users
        .iter()
        .map(|u| crate::media::user_owner(u.user_id()))
        .collect();
    let media = face.ids.media_of(face.app, &owners).await?;
    Ok(users
        .iter()
        .zip(&owners)
        .map(|(u, owner)| {
            let mut info = user_info(u, false, Dates::Iso);
            let photos: Vec<Value> = media
                .iter()
                .filter(|m| &m.owner == owner)
                .map(|m| crate::render::picture(m, Dates::Iso))
                .collect();
            if let Value::Object(o) = &mut info {
                o.insert("photos".into(), Value::Array(photos));
            }
            info
        })
        .collect())
}

#[derive(Deserialize)]
struct UpdateUser {
    name: Option<String>,
    /// Kept by this face (the domain's users have no such field); empty clears it.
    about: Option<String>,
}

/// Longest `about` (the original had no limit; one is needed to bound the row).
const MAX_ABOUT_CHARS: usize = 2048;

/// `PUT /users/me`: the name (normalised as at registration) and `about`; answers the full
/// `UserInfo`. Both are checked before either is stored.
pub async fn update_me(St(face): St<State>, caller: Caller, body: Bytes) -> CsResult<Json<Value>> {
    let req: UpdateUser = parse_json(&body)?;
    let mut fields = UserFields::default();
    if let Some(name) = req.name {
        let name = normalize_name(&name).ok_or_else(|| CsError::bad_request(NAME_ERROR))?;
        fields.full_name = Some(Some(name));
    }
    if let Some(about) = &req.about {
        if about.chars().count() > MAX_ABOUT_CHARS {
            return Err(CsError::bad_request(
                "About should be at most 2048 characters long.",
            ));
        }
    }
    face.accounts
        .update_user(face.app, caller.user(), fields, None)
        .await?;
    if let Some(about) = &req.about {
        face.ids
            .set_about(face.app, caller.user(), about.trim())
            .await?;
    }
    Ok(Json(full_user(&face, caller.user()).await?))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChangePassword {
    old_password: String,
    new_password: String,
}

/// `PUT /users/me/changePassword`: the same password on both faces changes.
pub async fn change_password(
    St(face): St<State>,
    caller: Caller,
    body: Bytes,
) -> CsResult<Response> {
    let req: ChangePassword = parse_json(&body)?;
    if !password_ok(&req.new_password) {
        return Err(CsError::bad_request(PASSWORD_ERROR));
    }
    match face
        .accounts
        .update_user(
            face.app,
            caller.user(),
            UserFields::default(),
            Some((req.new_password, Some(req.old_password))),
        )
        .await
    {
        Ok(_) => Ok(StatusCode::OK.into_response()),
        Err(e) if e.kind == ErrorKind::Invalid && e.fields.contains_key("old_password") => {
            Err(CsError::forbidden("Invalid user or password."))
        }
        Err(e) => Err(e.into()),
    }
}

/// `DELETE /users/me`: the account goes, on both faces, with its sessions.
pub async fn delete_me(St(face): St<State>, caller: Caller) -> CsResult<Response> {
    face.accounts.delete_user(face.app, caller.user()).await?;
    face.hub.close_user(face.app, caller.user());
    Ok(StatusCode::OK.into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeviceUpdate {
    device_name: String,
    device_token: Option<String>,
}

/// `PUT /users/me/device`: renames the caller's device and sets its push token.
pub async fn update_device(
    St(face): St<State>,
    caller: Caller,
    body: Bytes,
) -> CsResult<Json<Value>> {
    let req: DeviceUpdate = parse_json(&body)?;
    let mut device: serde_json::Map<String, Value> =
        serde_json::from_str(&caller.session.device_info).unwrap_or_default();
    device.insert("name".into(), Value::String(req.device_name));
    if let Some(t) = req.device_token {
        device.insert("token".into(), Value::String(t));
    }
    let text = Value::Object(device).to_string();
    if let Ok(info) = serde_json::from_str::<DeviceInfo>(&text) {
        crate::push::sync_device(&face, caller.user(), &info).await?;
    }
    face.ids.update_device(&caller.session.id, &text).await?;
    let user = user_by_id(&face, caller.user()).await?;
    let sessions = face.ids.device_sessions(face.app, caller.user()).await?;
    let mut v = private_info(&user, &sessions, (&caller.session.id, &caller.token));
    complete_user_info(&face, caller.user(), &mut v["info"]).await?;
    Ok(Json(v))
}

const ACCOUNT_KEY_ERROR: &str = "Account key should be between 25 and 100 characters long.";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SetAccountKey {
    password: String,
    account_key: String,
}

/// `PUT /users/me/setAccountKey`: with the password, sets the key that can reset it.
pub async fn set_account_key(
    St(face): St<State>,
    peer: ConnectInfo<SocketAddr>,
    caller: Caller,
    body: Bytes,
) -> CsResult<StatusCode> {
    let req: SetAccountKey = parse_json(&body)?;
    if !(25..=100).contains(&req.account_key.chars().count()) {
        return Err(CsError::bad_request(ACCOUNT_KEY_ERROR));
    }
    face.accounts.check_login_source(peer.0.ip())?;
    let user = user_by_id(&face, caller.user()).await?;
    let login = user.login.clone().unwrap_or_default();
    match face
        .accounts
        .check_credentials(face.app, &login, &req.password)
        .await
    {
        Ok(_) => {}
        Err(e) if e.kind == ErrorKind::Unauthenticated => {
            return Err(CsError::forbidden("Invalid user or password."))
        }
        Err(e) => return Err(e.into()),
    }
    face.ids
        .set_account_key(face.app, caller.user(), req.account_key)
        .await?;
    Ok(StatusCode::OK)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResetPassword {
    user_id: i64,
    new_password: String,
    account_key: String,
}

/// `POST /users/resetPassword` (the document says PUT; the code registers POST): the account key
/// instead of the old password. Counted like a login attempt from the caller's address.
pub async fn reset_password(
    St(face): St<State>,
    peer: ConnectInfo<SocketAddr>,
    body: Bytes,
) -> CsResult<StatusCode> {
    let req: ResetPassword = parse_json(&body)?;
    face.accounts.check_login_source(peer.0.ip())?;
    let id = UserId::new(req.user_id)
        .map_err(|_| CsError::new(StatusCode::NOT_FOUND, "User not found."))?;
    user_by_id(&face, id).await?;
    if !face
        .ids
        .account_key_matches(face.app, id, req.account_key)
        .await?
    {
        return Err(CsError::forbidden("Invalid user or account key."));
    }
    if !password_ok(&req.new_password) {
        return Err(CsError::bad_request(PASSWORD_ERROR));
    }
    face.accounts
        .set_password(face.app, id, req.new_password)
        .await?;
    Ok(StatusCode::OK)
}
