//! The face's JSON objects (spec §9), built from the domain's models. REST writes dates as
//! ISO-8601 without fractional seconds; WebSocket payloads as seconds since 2001-01-01 (Swift's
//! default `Date` encoding), so every builder takes the [`Dates`] style.

use confab_core::chat::{Dialog, DialogType, MemberState, Message};
use confab_core::clock::{to_iso, Millis};
use confab_core::model::User;
use confab_service::{DeviceSession, Media};
use serde_json::{json, Map, Value};

/// Seconds from the Unix epoch to Apple's reference date (2001-01-01T00:00:00Z).
const APPLE_EPOCH_OFFSET: f64 = 978_307_200.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dates {
    /// REST: `2025-08-08T11:41:06Z`.
    Iso,
    /// WebSocket payloads: seconds since 2001-01-01, a number.
    Apple,
}

impl Dates {
    pub fn at(self, ms: Millis) -> Value {
        match self {
            Dates::Iso => Value::String(to_iso(ms)),
            Dates::Apple => json!(ms as f64 / 1000.0 - APPLE_EPOCH_OFFSET),
        }
    }
}

/// `UserInfo`; `full` adds `lastAccess` (and `photos`, none yet).
pub fn user_info(u: &User, full: bool, dates: Dates) -> Value {
    let username = u.login.clone().unwrap_or_default();
    let mut o = Map::new();
    o.insert("id".into(), json!(u.id));
    o.insert(
        "name".into(),
        json!(u.full_name.clone().unwrap_or_else(|| username.clone())),
    );
    o.insert("username".into(), json!(username));
    if full {
        let last = u.last_request_at.unwrap_or(u.updated_at);
        o.insert("lastAccess".into(), dates.at(last));
        o.insert("photos".into(), json!([]));
    }
    Value::Object(o)
}

/// `DeviceSession.Info`. Only the token the caller holds is known (the store keeps hashes), so
/// other sessions show an empty `accessToken`.
pub fn device_session(s: &DeviceSession, token: Option<&str>, dates: Dates) -> Value {
    let device: Value = serde_json::from_str(&s.device_info).unwrap_or(Value::Null);
    let mut o = Map::new();
    o.insert("id".into(), json!(s.id));
    o.insert("accessToken".into(), json!(token.unwrap_or("")));
    o.insert("deviceInfo".into(), device);
    if let Some(ip) = &s.ip_address {
        o.insert("ipAddress".into(), json!(ip));
    }
    o.insert("createdAt".into(), dates.at(s.created_at));
    o.insert("updatedAt".into(), dates.at(s.updated_at));
    Value::Object(o)
}

/// `User.PrivateInfo`: `{"info", "deviceSessions"}`; `current` is the caller's session and token.
pub fn private_info(u: &User, sessions: &[DeviceSession], current: (&str, &str)) -> Value {
    let list: Vec<Value> = sessions
        .iter()
        .map(|s| {
            let token = (s.id == current.0).then_some(current.1);
            device_session(s, token, Dates::Iso)
        })
        .collect();
    json!({ "info": user_info(u, true, Dates::Iso), "deviceSessions": list })
}

/// `MediaInfo` of a photo or chat image.
pub fn picture(m: &Media, dates: Dates) -> Value {
    json!({
        "id": m.id,
        "fileType": m.file_type,
        "fileSize": m.file_size,
        "previewWidth": m.preview_width,
        "previewHeight": m.preview_height,
        "createdAt": dates.at(m.created_at),
    })
}

/// `MediaInfo` of a stored attachment (ours, or one an SDK client sent).
fn media_info(a: &Value, dates: Dates, created: Millis) -> Value {
    let mut o = Map::new();
    if let Some(id) = a.get("id").and_then(Value::as_str) {
        o.insert("id".into(), json!(id));
    }
    let kind = a
        .get("fileType")
        .or_else(|| a.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("");
    o.insert("fileType".into(), json!(kind));
    let size = a
        .get("fileSize")
        .or_else(|| a.get("size"))
        .and_then(|v| {
            v.as_i64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
        .unwrap_or(0);
    o.insert("fileSize".into(), json!(size));
    for (ours, theirs) in [("previewWidth", "width"), ("previewHeight", "height")] {
        if let Some(v) = a
            .get(ours)
            .or_else(|| a.get(theirs))
            .and_then(Value::as_i64)
        {
            o.insert(ours.into(), json!(v));
        }
    }
    o.insert("createdAt".into(), dates.at(created));
    Value::Object(o)
}

/// `MessageInfo` with its `attachments`.
pub fn message_info(m: &Message, number: i64, chat: &str, dates: Dates) -> Value {
    let local_id = m
        .custom
        .get("localId")
        .and_then(Value::as_str)
        .unwrap_or("");
    let visible = !matches!(m.custom.get("isVisible"), Some(Value::Bool(false)));
    let mut o = Map::new();
    o.insert("id".into(), json!(number));
    o.insert("localId".into(), json!(local_id));
    o.insert("chatId".into(), json!(chat));
    o.insert("authorId".into(), json!(m.sender_id));
    if let Some(text) = &m.body {
        o.insert("text".into(), json!(text));
    }
    o.insert("createdAt".into(), dates.at(m.created_at));
    o.insert("updatedAt".into(), dates.at(m.updated_at));
    if let Some(e) = m.edited_at {
        // Stored in seconds, as ConnectyCube's `edited_at`.
        o.insert("editedAt".into(), dates.at(e * 1000));
    }
    o.insert("isVisible".into(), json!(visible));
    let attachments: Vec<Value> = m
        .attachments
        .iter()
        .map(|a| media_info(a, dates, m.created_at))
        .collect();
    o.insert("attachments".into(), json!(attachments));
    Value::Object(o)
}

/// The `lastMessage` of a chat, from the dialog's `last_message*` fields (no attachments).
fn last_message(d: &Dialog, number: i64, chat: &str, dates: Dates) -> Option<Value> {
    d.last_message_id.as_ref()?;
    let at = d.last_message_date_sent.unwrap_or(d.updated_at / 1000) * 1000;
    let mut o = Map::new();
    o.insert("id".into(), json!(number));
    o.insert("localId".into(), json!(""));
    o.insert("chatId".into(), json!(chat));
    o.insert(
        "authorId".into(),
        json!(d.last_message_user_id.unwrap_or(0)),
    );
    if let Some(t) = &d.last_message {
        o.insert("text".into(), json!(t));
    }
    o.insert("createdAt".into(), dates.at(at));
    o.insert("updatedAt".into(), dates.at(at));
    o.insert("isVisible".into(), json!(true));
    Some(Value::Object(o))
}

/// What a `ChatInfo` is built from.
pub struct ChatParts<'a> {
    pub uuid: &'a str,
    pub dialog: &'a Dialog,
    pub state: &'a MemberState,
    pub owner: Option<&'a User>,
    /// `Some` for the full info (`allUsers`).
    pub all_users: Option<Vec<&'a User>>,
    /// The integer id of the dialog's last message, when it has one.
    pub last_number: Option<i64>,
    /// Its `MediaInfo`s.
    pub images: Vec<Value>,
}

/// `ChatInfo`. A personal chat has no title.
pub fn chat_info(p: &ChatParts<'_>, dates: Dates) -> Value {
    let personal = p.dialog.kind == DialogType::Private;
    let mut o = Map::new();
    o.insert("id".into(), json!(p.uuid));
    if !personal {
        if let Some(t) = &p.dialog.name {
            o.insert("title".into(), json!(t));
        }
    }
    o.insert("isPersonal".into(), json!(personal));
    if let Some(owner) = p.owner {
        o.insert("owner".into(), user_info(owner, false, dates));
    }
    if let Some(all) = &p.all_users {
        let users: Vec<Value> = all.iter().map(|u| user_info(u, false, dates)).collect();
        o.insert("allUsers".into(), json!(users));
    }
    if let Some(m) = p
        .last_number
        .and_then(|n| last_message(p.dialog, n, p.uuid, dates))
    {
        o.insert("lastMessage".into(), m);
    }
    o.insert("images".into(), Value::Array(p.images.clone()));
    o.insert("isMuted".into(), json!(p.state.muted));
    o.insert("isArchived".into(), json!(false));
    o.insert("isBlocked".into(), json!(false));
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apple_dates_count_from_2001() {
        assert_eq!(Dates::Apple.at(978_307_200_000), json!(0.0));
        assert_eq!(
            Dates::Iso.at(978_307_200_500),
            json!("2001-01-01T00:00:00Z")
        );
    }
}
