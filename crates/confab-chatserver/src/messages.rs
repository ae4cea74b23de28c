//! Messages (spec §5): post (every check in the spec's order, then stored once through the
//! domain's send path, which delivers it live on every face) and list newest first.

use axum::body::Bytes;
use axum::extract::{Path, Query, State as St};
use axum::http::StatusCode;
use axum::Json;
use confab_core::chat::{DialogType, Message};
use confab_core::query::{Condition, Field, Op, Query as ChatQuery, Scalar, Sort};
use confab_core::{DialogId, MessageId, UserId};
use confab_service::chat::NewMessage;
use confab_service::chatserver::new_uuid;
use confab_service::send::SendMessage;
use confab_service::{MessageRead, Origin};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::auth::Caller;
use crate::chats::{chat_for, message_ids};
use crate::error::{parse_json, CsError, CsResult};
use crate::render::{message_info, Dates};
use crate::State;

/// `MessageInfo`s with what the domain's message alone does not say: `readMarks` (every reader
/// but the author) and a visibility its author turned on after posting.
pub async fn render_messages(
    face: &State,
    messages: &[(Message, i64)],
    chat: &str,
    dates: Dates,
) -> CsResult<Vec<Value>> {
    let numbers: Vec<i64> = messages.iter().map(|(_, n)| *n).collect();
    let shown = face.ids.shown_messages(face.app, &numbers).await?;
    let readers: std::collections::BTreeSet<i64> = messages
        .iter()
        .flat_map(|(m, _)| m.read_ids.iter().copied().filter(|u| *u != m.sender_id))
        .collect();
    let people = crate::chats::users(face, &readers).await?;
    Ok(messages
        .iter()
        .map(|(m, n)| {
            let mut v = message_info(m, *n, chat, dates);
            let marks: Vec<Value> = m
                .read_ids
                .iter()
                .filter(|u| **u != m.sender_id)
                .filter_map(|u| people.get(u))
                .map(|u| {
                    json!({
                        "id": mark_id(m, u.id),
                        "user": crate::render::user_info(u, false, dates),
                        // The domain keeps no time per read: the message's last change stands in.
                        "createdAt": dates.at(m.updated_at),
                    })
                })
                .collect();
            if let Value::Object(o) = &mut v {
                o.insert("readMarks".into(), Value::Array(marks));
                if shown.contains(n) {
                    o.insert("isVisible".into(), json!(true));
                }
            }
            v
        })
        .collect())
}

/// A read mark's id: the same UUID every time for one reader of one message.
fn mark_id(m: &Message, user: i64) -> String {
    confab_service::chatserver::name_uuid(&format!("read:{}:{user}", m.id))
}

/// One message rendered as [`render_messages`] does.
pub(crate) async fn render_one(
    face: &State,
    m: &Message,
    number: i64,
    chat: &str,
    dates: Dates,
) -> CsResult<Value> {
    let mut out = render_messages(face, &[(m.clone(), number)], chat, dates).await?;
    Ok(out.pop().unwrap_or(Value::Null))
}

const MALFORMED: &str = "Malformed message data.";
const MAX_TEXT_CHARS: usize = 2048;
/// A UUID's length: the shortest `localId` (`"<UserID>+<UUID>"` is longer).
const MIN_LOCAL_ID: usize = 36;
const DEFAULT_PAGE: u32 = 50;
/// The original had no upper bound; one page is still one query's worth.
const MAX_PAGE: u32 = 1000;
/// Messages stored in one millisecond that a page after `before` may have to skip.
const SAME_MILLISECOND: u32 = 16;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostMessage {
    local_id: Option<String>,
    text: Option<String>,
    is_visible: Option<bool>,
    attachment: Option<Attachment>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Attachment {
    #[serde(default)]
    file_type: String,
    #[serde(default)]
    file_size: i64,
    preview_width: Option<i64>,
    preview_height: Option<i64>,
}

fn cant_post() -> CsError {
    CsError::forbidden("You can't post into this chat.")
}

/// `POST /chats/<uuid>/messages`.
pub async fn post_message(
    St(face): St<State>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> CsResult<Json<Value>> {
    let req: PostMessage = parse_json(&body)?;
    // 1. Something to say.
    if req.text.is_none() && req.attachment.is_none() {
        return Err(CsError::bad_request("Message is empty."));
    }
    // 2. A chat the caller takes part in.
    let (uuid, view) = chat_for(&face, caller.user(), &id, cant_post()).await?;
    // Not blocked in it.
    crate::flags::not_blocked(&face, view.dialog.id, caller.user(), cant_post()).await?;
    // 3. In a personal chat, the other side has not blocked it.
    if view.dialog.kind == DialogType::Private {
        let me = caller.user().get();
        if let Some(other) = view.dialog.occupants_ids.iter().find(|u| **u != me) {
            let verdict = face
                .chat
                .privacy()
                .message_verdict(
                    (face.app, caller.user()),
                    None,
                    (face.app, UserId::new(*other)?),
                )
                .await?;
            if verdict.into_result().is_err() {
                return Err(CsError::forbidden("This chat was blocked."));
            }
        }
    }
    // 4. A local id at least as long as a UUID.
    let local_id = req
        .local_id
        .filter(|l| l.chars().count() >= MIN_LOCAL_ID)
        .ok_or_else(|| CsError::bad_request(MALFORMED))?;
    // 5. An attachment says what it is.
    if let Some(a) = &req.attachment {
        if a.file_size <= 0 || a.file_type.is_empty() {
            return Err(CsError::bad_request(MALFORMED));
        }
    }
    // 6. Text of 1–2048 characters (characters, not bytes).
    if let Some(t) = &req.text {
        if !(1..=MAX_TEXT_CHARS).contains(&t.chars().count()) {
            return Err(CsError::bad_request(
                "Message text should be between 1 and 2048 characters long.",
            ));
        }
    }
    let mut custom = Map::new();
    custom.insert("localId".into(), json!(local_id));
    if req.is_visible == Some(false) {
        custom.insert("isVisible".into(), json!(false));
    }
    // The server names the attachment; a client-sent id is ignored, as in the original.
    let attachments = req
        .attachment
        .map(|a| {
            vec![json!({
                "id": new_uuid(),
                "type": a.file_type,
                "size": a.file_size,
                "width": a.preview_width.unwrap_or(300),
                "height": a.preview_height.unwrap_or(200),
            })]
        })
        .unwrap_or_default();
    let message = face
        .chat
        .send_message(SendMessage {
            app: face.app,
            sender: caller.user(),
            message: NewMessage {
                dialog_id: Some(DialogId::from(view.dialog.id)),
                body: req.text,
                attachments,
                custom,
                markable: true,
                ..Default::default()
            },
            // Live on every face: XMPP occupants and this face's sockets (through the bus).
            live: true,
        })
        .await?;
    // The message is stored and sent: a failure here must not make the client post it again.
    if let Err(e) = crate::flags::after_post(&face, &view, caller.user()).await {
        tracing::warn!(reason = %e.reason, "chatserver: chat flags not reset after a post");
    }
    let (number, _) = message_ids(&face, &message).await?;
    Ok(Json(message_info(&message, number, &uuid, Dates::Iso)))
}

#[derive(Deserialize)]
pub struct PageQuery {
    count: Option<String>,
    before: Option<String>,
}

/// `GET /chats/<uuid>/messages?count=&before=`: newest first; `before` is a message id of this
/// face, and the page holds messages older than it.
pub async fn list(
    St(face): St<State>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> CsResult<Json<Value>> {
    let (uuid, view) = chat_for(&face, caller.user(), &id, CsError::forbidden("Forbidden")).await?;
    crate::flags::not_blocked(
        &face,
        view.dialog.id,
        caller.user(),
        CsError::forbidden("Forbidden"),
    )
    .await?;
    let count = match q.count.as_deref() {
        None | Some("") => DEFAULT_PAGE,
        Some(c) => c
            .parse::<u32>()
            .map_err(|_| CsError::bad_request("Invalid count."))?,
    }
    .min(MAX_PAGE);
    // Newest first by when the server stored them: ids and `date_sent` carry whole seconds,
    // and an XMPP message keeps the id its client made.
    let mut conditions = Vec::new();
    let mut before = None;
    if let Some(b) = q.before.as_deref().filter(|b| !b.is_empty()) {
        let number: i64 = b
            .parse()
            .map_err(|_| CsError::bad_request("Invalid message id."))?;
        let Some(id) = face.ids.message_of(face.app, number).await? else {
            return Err(CsError::not_found());
        };
        let (m, _, _) = face
            .chat
            .message_for(face.app, caller.user(), confab_core::MessageId::from(id))
            .await
            .map_err(|_| CsError::not_found())?;
        conditions.push(Condition {
            field: Field::StoredAt,
            op: Op::Lte,
            values: vec![Scalar::Int(m.created_at)],
        });
        before = Some((m.created_at, m.id));
    }
    if count == 0 {
        return Ok(Json(json!([])));
    }
    let query = ChatQuery {
        conditions,
        sort: Some(Sort {
            field: Field::StoredAt,
            desc: true,
        }),
        // Room for the messages stored in the same millisecond as `before` that are not older.
        limit: count + before.map_or(0, |_| SAME_MILLISECOND),
        skip: 0,
    };
    let (mut messages, _) = face
        .chat
        .list_messages(
            face.app,
            caller.user(),
            DialogId::from(view.dialog.id),
            &query,
            false,
        )
        .await?;
    if let Some((at, id)) = before {
        messages.retain(|m| m.created_at < at || m.id < id);
    }
    messages.truncate(count as usize);
    // Numbered oldest first, so messages first seen together keep their order in numbers too.
    let oldest_first: Vec<_> = messages.iter().rev().map(|m| m.id).collect();
    let mut numbers = face.ids.message_numbers(face.app, &oldest_first).await?;
    numbers.reverse();
    let pairs: Vec<(Message, i64)> = messages.into_iter().zip(numbers).collect();
    let list = render_messages(&face, &pairs, &uuid, Dates::Iso).await?;
    Ok(Json(Value::Array(list)))
}

/// A message of this chat by its integer id: 404 for unknown ids and messages of other chats.
async fn message_in(
    face: &State,
    caller: &Caller,
    dialog: confab_core::ObjectId,
    number: &str,
) -> CsResult<Message> {
    let number: i64 = number.parse().map_err(|_| CsError::not_found())?;
    let id = face
        .ids
        .message_of(face.app, number)
        .await?
        .ok_or_else(CsError::not_found)?;
    let (m, _, _) = face
        .chat
        .message_for(face.app, caller.user(), MessageId::from(id))
        .await
        .map_err(|_| CsError::not_found())?;
    if m.dialog_id != dialog {
        return Err(CsError::not_found());
    }
    Ok(m)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateMessage {
    text: Option<String>,
    /// Only `true` does anything, and only to a message posted invisible (the original's rule).
    is_visible: Option<bool>,
    // Optional here (the original required both; its clients always sent them): they only asked
    // for the attachments to be reloaded.
    #[serde(rename = "fileExists")]
    _file_exists: Option<bool>,
    #[serde(rename = "previewExists")]
    _preview_exists: Option<bool>,
}

/// `PUT /chats/<uuid>/messages/<id>`: the author edits the text or makes a message posted
/// invisible visible; participants get `messageUpdate`. Every check comes before any change.
pub async fn update_message(
    St(face): St<State>,
    caller: Caller,
    Path((id, number)): Path<(String, String)>,
    body: Bytes,
) -> CsResult<Json<Value>> {
    let req: UpdateMessage = parse_json(&body)?;
    let (uuid, view) = chat_for(&face, caller.user(), &id, CsError::forbidden("Forbidden")).await?;
    crate::flags::not_blocked(
        &face,
        view.dialog.id,
        caller.user(),
        CsError::forbidden("Forbidden"),
    )
    .await?;
    let mut m = message_in(&face, &caller, view.dialog.id, &number).await?;
    if m.sender_id != caller.user().get() {
        return Err(CsError::forbidden("Forbidden"));
    }
    if let Some(t) = &req.text {
        if !(1..=MAX_TEXT_CHARS).contains(&t.chars().count()) {
            return Err(CsError::bad_request(
                "Message text should be between 1 and 2048 characters long.",
            ));
        }
    }
    let number = face.ids.message_numbers(face.app, &[m.id]).await?[0];
    if req.is_visible == Some(true) && m.custom.get("isVisible") == Some(&json!(false)) {
        face.ids.show_message(face.app, number).await?;
    }
    if req.text.is_some() {
        m = face
            .chat
            .edit_message(face.app, caller.user(), MessageId::from(m.id), req.text)
            .await?;
        face.chat.edited(&m, Origin::ChatServer).await;
    }
    crate::ws::notify_chat(
        &face,
        view.dialog.id,
        &view.dialog.occupants_ids,
        "messageUpdate",
        &caller.user().to_string(),
        render_one(&face, &m, number, &uuid, Dates::Apple).await?,
    )
    .await?;
    Ok(Json(
        render_one(&face, &m, number, &uuid, Dates::Iso).await?,
    ))
}

/// `DELETE /chats/<uuid>/messages/<id>`: the author deletes it for everyone (on both faces);
/// answers it with empty text and `deletedAt`, and participants get `messageUpdate` through the
/// bus.
pub async fn delete_message(
    St(face): St<State>,
    caller: Caller,
    Path((id, number)): Path<(String, String)>,
) -> CsResult<Json<Value>> {
    let (uuid, view) = chat_for(&face, caller.user(), &id, CsError::forbidden("Forbidden")).await?;
    let m = message_in(&face, &caller, view.dialog.id, &number).await?;
    if m.sender_id != caller.user().get() {
        return Err(CsError::forbidden("Forbidden"));
    }
    let deleted = face
        .chat
        .delete_messages_and_notify(face.app, caller.user(), &[MessageId::from(m.id)], true)
        .await?;
    let m = deleted.into_iter().next().unwrap_or(m);
    // The attachment's files go with it (the spec's rule), when the author uploaded them.
    for a in &m.attachments {
        if let (Some(id), Some(kind)) = (a["id"].as_str(), a["type"].as_str()) {
            crate::media::remove_uploads_of(&face, caller.user(), id, kind).await;
        }
    }
    let number = face.ids.message_numbers(face.app, &[m.id]).await?[0];
    Ok(Json(deleted_info(&m, number, &uuid, Dates::Iso)))
}

/// A deleted message as the original showed it: no text, `deletedAt` set.
pub fn deleted_info(m: &Message, number: i64, chat: &str, dates: Dates) -> Value {
    let now = confab_core::clock::now_millis();
    let mut v = message_info(m, number, chat, dates);
    if let Value::Object(o) = &mut v {
        o.insert("text".into(), json!(""));
        o.insert("editedAt".into(), dates.at(now));
        o.insert("deletedAt".into(), dates.at(now));
    }
    v
}

/// `PUT /chats/<uuid>/messages/<id>/read`: marks it read for the caller (on both faces); the
/// first time, participants get `messageUpdate` with the new mark in `readMarks` (the original
/// sent the message as it was before the mark).
pub async fn read_message(
    St(face): St<State>,
    caller: Caller,
    Path((id, number)): Path<(String, String)>,
) -> CsResult<StatusCode> {
    let (uuid, view) = chat_for(&face, caller.user(), &id, CsError::forbidden("Forbidden")).await?;
    let m = message_in(&face, &caller, view.dialog.id, &number).await?;
    let me = caller.user().get();
    if m.read_ids.contains(&me) {
        return Ok(StatusCode::OK);
    }
    face.chat
        .mark(
            face.app,
            caller.user(),
            Some(DialogId::from(view.dialog.id)),
            Some(MessageId::from(m.id)),
            true,
        )
        .await?;
    let m = message_in(&face, &caller, view.dialog.id, &number).await?;
    let read = MessageRead {
        app: face.app,
        message_id: m.id,
        reader: caller.user(),
        message: Some(m.clone()),
        origin: Origin::ChatServer,
    };
    face.chat.read(read).await;
    let number = face.ids.message_numbers(face.app, &[m.id]).await?[0];
    crate::ws::notify_chat(
        &face,
        view.dialog.id,
        &view.dialog.occupants_ids,
        "messageUpdate",
        &me.to_string(),
        render_one(&face, &m, number, &uuid, Dates::Apple).await?,
    )
    .await?;
    Ok(StatusCode::OK)
}

/// How many messages one clearing step deletes.
const CLEAR_BATCH: u32 = 500;

/// `DELETE /chats/<uuid>/messages`: a group's owner deletes every message for everyone (others:
/// `403 "You can't clear this chat."`); in a personal chat the history is cleared for the caller
/// only, the domain's rule (the original deleted both sides' messages). `chatCleared` follows.
pub async fn clear(
    St(face): St<State>,
    caller: Caller,
    Path(id): Path<String>,
) -> CsResult<StatusCode> {
    let (_, view) = chat_for(&face, caller.user(), &id, CsError::forbidden("Forbidden")).await?;
    let me = caller.user().get();
    let dialog = DialogId::from(view.dialog.id);
    let told = if view.dialog.kind == DialogType::Group {
        if view.dialog.owner_id != me {
            return Err(CsError::forbidden("You can't clear this chat."));
        }
        loop {
            let page = ChatQuery {
                conditions: Vec::new(),
                sort: None,
                limit: CLEAR_BATCH,
                skip: 0,
            };
            let (batch, _) = face
                .chat
                .list_messages(face.app, caller.user(), dialog, &page, false)
                .await?;
            if batch.is_empty() {
                break;
            }
            let ids: Vec<MessageId> = batch.iter().map(|m| MessageId::from(m.id)).collect();
            face.chat
                .delete_messages(face.app, caller.user(), &ids, true)
                .await?;
        }
        view.dialog.occupants_ids.clone()
    } else {
        face.chat
            .clear_history(face.app, caller.user(), dialog)
            .await?;
        vec![me]
    };
    crate::ws::notify_chat(
        &face,
        view.dialog.id,
        &told,
        "chatCleared",
        &me.to_string(),
        Value::Null,
    )
    .await?;
    Ok(StatusCode::OK)
}
