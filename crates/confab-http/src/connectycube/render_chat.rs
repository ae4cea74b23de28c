//! JSON shapes of dialogs and messages as the SDK reads them.

use confab_core::chat::{Dialog, DialogType, Message};
use confab_core::clock::to_iso;
use confab_service::chat::DialogView;
use serde_json::{json, Map, Value};

/// A dialog as `viewer` sees it (`None` for the admin API).
pub fn dialog(view: &DialogView, domain: &str, viewer: Option<i64>) -> Value {
    let d: &Dialog = &view.dialog;
    let mut v = json!({
        "_id": d.id.to_string(),
        "user_id": d.owner_id,
        "type": d.kind as i64,
        "name": d.name,
        "description": d.description,
        "photo": d.photo,
        "xmpp_room_jid": d.room_jid(domain),
        "occupants_ids": d.occupants_ids,
        "occupants_count": if d.kind == DialogType::Public { Value::from(d.occupants_count) } else { Value::Null },
        "admins_ids": d.admins_ids,
        "pinned_messages_ids": d.pinned_messages_ids,
        "last_message": d.last_message,
        "last_message_date_sent": d.last_message_date_sent,
        "last_message_id": d.last_message_id,
        "last_message_user_id": d.last_message_user_id,
        "last_message_status": viewer.and_then(|v| d.last_message_status(v)),
        "unread_messages_count": view.state.unread_count,
        "created_at": to_iso(d.created_at),
        "updated_at": to_iso(d.updated_at),
    });
    if let Some(data) = &d.data {
        v["data"] = Value::Object(data.clone());
    }
    if let Some(ext) = &d.extensions {
        v["extensions"] = Value::Object(ext.clone());
    }
    v
}

/// A message for `viewer`; custom parameters become top-level fields.
pub fn message(m: &Message, viewer: Option<i64>) -> Value {
    let reactions = if m.reactions.is_empty() {
        Value::Null
    } else {
        let mut own = Vec::new();
        let mut total = Map::new();
        for (emoji, users) in &m.reactions {
            let users = users.as_array().map(Vec::as_slice).unwrap_or_default();
            if viewer.is_some_and(|v| users.iter().any(|u| u.as_i64() == Some(v))) {
                own.push(Value::String(emoji.clone()));
            }
            total.insert(emoji.clone(), Value::from(users.len()));
        }
        json!({ "own": own, "total": total })
    };
    let mut v = Map::new();
    for (k, val) in &m.custom {
        v.insert(k.clone(), val.clone());
    }
    let fixed = json!({
        "_id": m.id.to_string(),
        "chat_dialog_id": m.dialog_id.to_string(),
        "message": m.body,
        "date_sent": m.date_sent,
        "sender_id": m.sender_id,
        "recipient_id": m.recipient_id,
        "attachments": m.attachments,
        "read_ids": m.read_ids,
        "delivered_ids": m.delivered_ids,
        "views_count": m.views_count,
        "read": i64::from(viewer.is_some_and(|u| m.read_ids.contains(&u))),
        "reactions": reactions,
        "markable": i64::from(m.markable),
        "edited_at": m.edited_at,
        "created_at": to_iso(m.created_at),
        "updated_at": to_iso(m.updated_at),
    });
    if let Value::Object(f) = fixed {
        v.extend(f);
    }
    Value::Object(v)
}
