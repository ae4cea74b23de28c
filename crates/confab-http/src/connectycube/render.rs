//! JSON shapes the SDK reads: users and sessions.

use confab_core::clock::to_iso;
use confab_core::model::{Session, User};
use serde_json::{json, Value};

pub fn user(u: &User) -> Value {
    let mut v = json!({
        "id": u.id,
        "full_name": u.full_name,
        "email": u.email,
        "login": u.login,
        "phone": u.phone,
        "website": u.website,
        "created_at": to_iso(u.created_at),
        "updated_at": to_iso(u.updated_at),
        "last_request_at": u.last_request_at.map(to_iso),
        "external_user_id": u.external_user_id,
        "external_id": u.external_id,
        "facebook_id": u.facebook_id,
        "twitter_id": u.twitter_id,
        "blob_id": u.blob_id,
        "custom_data": u.custom_data,
        "avatar": u.avatar,
        "user_tags": if u.tags.is_empty() { Value::Null } else { Value::String(u.tags.join(",")) },
        "timezone": u.timezone,
    });
    if u.is_guest {
        v["is_guest"] = Value::Bool(true);
    }
    v
}

pub fn session(s: &Session, token: &str, user: Option<&User>) -> Value {
    let mut v = json!({
        "id": s.id,
        "_id": s.id.to_string(),
        "application_id": s.app_id.get(),
        // ConnectyCube reports 0 for an application session.
        "user_id": s.user_id.map(|u| u.get()).unwrap_or(0),
        "token": token,
        "ts": s.created_at / 1000,
        "created_at": to_iso(s.created_at),
        "updated_at": to_iso(s.updated_at),
    });
    if let Some(u) = user {
        v["user"] = self::user(u);
    }
    json!({ "session": v })
}
