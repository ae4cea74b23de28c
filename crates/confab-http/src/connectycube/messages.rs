//! Messages: `/chat/Message`, unread counts, reactions, and `/chat/search`.

use axum::extract::{Path, State};
use axum::Json;
use confab_core::query::{Condition, Field, Op, Query, Scalar};
use confab_core::{Error, MessageId, Result, UserId};
use confab_service::chat::NewMessage;
use confab_service::send::{SendMessage, SendSystemMessage};
use confab_service::{MessageSearch, Origin};
use serde_json::{json, Map, Value};

use super::dialogs::dialog_id;
use super::render;
use super::render_chat;
use crate::error::ApiResult;
use crate::extract::{Auth, Body};
use crate::filters::{object_ids, parse_query, path_ids, spec, FieldSpec, Kind};
use crate::params::{ParamExt, Params};
use crate::AppState;

pub const MESSAGE_FIELDS: &[FieldSpec] = &[
    spec("_id", Field::Id, Kind::ObjectId),
    spec("message", Field::Body, Kind::Text),
    spec("date_sent", Field::DateSent, Kind::Int),
    spec("sender_id", Field::SenderId, Kind::Int),
    spec("recipient_id", Field::RecipientId, Kind::Int),
    spec("attachments.type", Field::AttachmentType, Kind::Text),
    spec("updated_at", Field::UpdatedAt, Kind::Time),
];
pub const MESSAGE_SORTS: &[&str] = &["date_sent", "_id", "updated_at", "sender_id"];
const MAX_PAGE: u32 = 100;

/// Parameters of `POST /chat/Message` that are not custom parameters.
const KNOWN: &[&str] = &[
    "chat_dialog_id",
    "recipient_id",
    "message",
    "attachments",
    "date_sent",
    "send_to_chat",
    "markable",
    "_id",
    "sender_id",
    "read_ids",
    "delivered_ids",
    "created_at",
    "updated_at",
    "read",
    "views_count",
    "reactions",
    "token",
];
const MAX_ATTACHMENTS: usize = 20;
const MAX_CUSTOM: usize = 50;

/// `attachments` as an array, or as the seed's `{"0": {...}, "1": {...}}` object.
fn attachments(v: Option<&Value>) -> Result<Vec<Value>> {
    let items: Vec<Value> = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a.clone(),
        Some(Value::Object(m)) => m.values().cloned().collect(),
        Some(_) => return Err(Error::bad_request("attachments must be a list of objects")),
    };
    if items.len() > MAX_ATTACHMENTS {
        return Err(Error::invalid(
            "attachments",
            format!("at most {MAX_ATTACHMENTS}"),
        ));
    }
    if items.iter().any(|a| !a.is_object()) {
        return Err(Error::bad_request("each attachment must be an object"));
    }
    Ok(items)
}

fn new_message(p: &Params) -> Result<NewMessage> {
    let dialog = p
        .text("chat_dialog_id")
        .map(|d| dialog_id(&d))
        .transpose()?;
    let recipient = p.int("recipient_id")?.filter(|r| *r > 0);
    let body = match p.get("message") {
        None => None,
        Some(v) => Some(
            v.as_text()
                .ok_or_else(|| Error::bad_request("message must be a string"))?,
        ),
    };
    let custom: Map<String, Value> =
        p.0.iter()
            .filter(|(k, _)| !KNOWN.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
    if custom.len() > MAX_CUSTOM || custom.keys().any(|k| k.len() > 64) {
        return Err(Error::bad_request("too many or too long custom parameters"));
    }
    Ok(NewMessage {
        id: None,
        dialog_id: dialog,
        recipient_id: recipient,
        body,
        date_sent: p.int("date_sent")?,
        attachments: attachments(p.get("attachments"))?,
        custom,
        markable: p.flag("markable"),
    })
}

/// POST /chat/Message
pub async fn create_message(
    State(s): State<AppState>,
    auth: Auth,
    Body(p): Body,
) -> ApiResult<Json<Value>> {
    let user = auth.ctx.user()?;
    let message = s
        .chat
        .send_message(SendMessage {
            app: auth.ctx.app(),
            sender: user,
            message: new_message(&p)?,
            live: p.flag("send_to_chat"),
        })
        .await?;
    Ok(Json(render_chat::message(&message, Some(user.get()))))
}

/// POST /chat/Message/system — a system notification to one user of the app.
pub async fn create_system_message(
    State(s): State<AppState>,
    auth: Auth,
    Body(p): Body,
) -> ApiResult<Json<Value>> {
    let user = auth.ctx.user()?;
    let recipient = p
        .int("recipientId")?
        .filter(|r| *r > 0)
        .ok_or_else(|| Error::invalid("recipientId", "can't be blank"))?;
    s.accounts
        .user(auth.ctx.app(), confab_service::UserKey::Id(recipient))
        .await
        .map_err(|_| Error::not_found("Recipient not found"))?;
    let params: Map<String, Value> =
        p.0.iter()
            .filter(|(k, _)| k.as_str() != "recipientId" && k.as_str() != "token")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
    if params.len() > MAX_CUSTOM || params.keys().any(|k| k.is_empty() || k.len() > 64) {
        return Err(Error::bad_request("too many or too long parameters").into());
    }
    let id = s
        .chat
        .send_system_message(SendSystemMessage {
            app: auth.ctx.app(),
            sender: user,
            recipient: UserId::new(recipient)?,
            params: params.clone(),
        })
        .await?;
    Ok(Json(json!({
        "messageId": id.to_string(),
        "recipientId": recipient,
        "extensionParams": params,
    })))
}

/// GET /chat/Message
pub async fn list_messages(
    State(s): State<AppState>,
    auth: Auth,
    Body(p): Body,
) -> ApiResult<Json<Value>> {
    let user = auth.ctx.user()?;
    let dialog = p
        .text("chat_dialog_id")
        .ok_or_else(|| Error::invalid("chat_dialog_id", "can't be blank"))?;
    let dialog = dialog_id(&dialog)?;
    let mut query = parse_query(&p, MESSAGE_FIELDS, MESSAGE_SORTS, false, 100, MAX_PAGE)?;
    let mark_read = p.get("mark_as_read").is_none_or(|v| v.as_flag());
    if p.flag("count") {
        query.limit = 0;
        let (_, total) = s
            .chat
            .list_messages(auth.ctx.app(), user, dialog, &query, false)
            .await?;
        return Ok(Json(json!({ "items": { "count": total } })));
    }
    let (items, _) = s
        .chat
        .list_messages(auth.ctx.app(), user, dialog, &query, mark_read)
        .await?;
    Ok(Json(json!({
        "skip": query.skip,
        "limit": query.limit,
        "items": items.iter().map(|m| render_chat::message(m, Some(user.get()))).collect::<Vec<_>>(),
    })))
}

async fn update(
    s: &AppState,
    auth: &Auth,
    id: Option<MessageId>,
    p: &Params,
) -> ApiResult<Json<Value>> {
    let user = auth.ctx.user()?;
    let app = auth.ctx.app();
    let dialog = p
        .text("chat_dialog_id")
        .map(|d| dialog_id(&d))
        .transpose()?;
    let mut did_something = false;
    if let Some(v) = p.get("message") {
        let id = id.ok_or_else(|| Error::invalid("_id", "is needed to edit a message"))?;
        let body = v
            .as_text()
            .ok_or_else(|| Error::bad_request("message must be a string"))?;
        let edited = s.chat.edit_message(app, user, id, Some(body)).await?;
        s.chat.edited(&edited, Origin::Rest).await;
        did_something = true;
    }
    if p.flag("read") {
        s.chat.mark_and_tell(app, user, dialog, id, true).await?;
        did_something = true;
    } else if p.flag("delivered") {
        s.chat.mark(app, user, dialog, id, false).await?;
        did_something = true;
    }
    if !did_something {
        return Err(
            Error::invalid("base", "nothing to update: pass message, read or delivered").into(),
        );
    }
    Ok(Json(json!({})))
}

/// PUT /chat/Message/{id}
pub async fn update_message(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Body(p): Body,
) -> ApiResult<Json<Value>> {
    let id: MessageId = id.trim().parse()?;
    update(&s, &auth, Some(id), &p).await
}

/// PUT /chat/Message — marks a whole dialog read or delivered.
pub async fn update_dialog_messages(
    State(s): State<AppState>,
    auth: Auth,
    Body(p): Body,
) -> ApiResult<Json<Value>> {
    update(&s, &auth, None, &p).await
}

/// DELETE /chat/Message/{ids}
pub async fn delete_messages(
    State(s): State<AppState>,
    auth: Auth,
    Path(ids): Path<String>,
    Body(p): Body,
) -> ApiResult<Json<Value>> {
    let ids = path_ids(&ids)?;
    s.chat
        .delete_messages_and_notify(auth.ctx.app(), auth.ctx.user()?, &ids, p.flag("force"))
        .await?;
    Ok(Json(json!({})))
}

/// GET /chat/Message/unread
pub async fn unread_count(
    State(s): State<AppState>,
    auth: Auth,
    Body(p): Body,
) -> ApiResult<Json<Value>> {
    let user = auth.ctx.user()?;
    let ids = match p.get("chat_dialog_ids") {
        None => None,
        Some(v) => Some(object_ids(
            &v.as_list()
                .ok_or_else(|| Error::bad_request("chat_dialog_ids must be a list"))?,
            100,
        )?),
    };
    let (total, counts) = s.chat.unread(auth.ctx.app(), user, ids.as_deref()).await?;
    let mut out = Map::new();
    out.insert("total".into(), json!(total));
    for (id, n) in counts {
        out.insert(id.to_string(), json!(n));
    }
    Ok(Json(Value::Object(out)))
}

/// GET /chat/Message/{id}/reactions
pub async fn list_reactions(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let user = auth.ctx.user()?;
    let id: MessageId = id.trim().parse()?;
    Ok(Json(Value::Object(
        s.chat.reactions(auth.ctx.app(), user, id).await?,
    )))
}

/// PUT /chat/Message/{id}/reactions
pub async fn update_reactions(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Body(p): Body,
) -> ApiResult<Json<Value>> {
    let user = auth.ctx.user()?;
    let id: MessageId = id.trim().parse()?;
    let add = p.text("add");
    let remove = p.text("remove");
    if add.is_none() && remove.is_none() {
        return Err(Error::invalid("add", "or remove is required").into());
    }
    s.chat.react(auth.ctx.app(), user, id, add, remove).await?;
    Ok(Json(json!({})))
}

const MAX_SEARCH_DIALOGS: usize = 10;
const MAX_SEARCH_SPAN_SECS: i64 = 92 * 24 * 60 * 60;

/// Words, or quoted phrases kept whole. Control characters (a NUL the full-text index cannot take)
/// separate words like spaces do.
fn search_terms(text: &str) -> Vec<String> {
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut terms = Vec::new();
    for (i, part) in text.split('"').enumerate() {
        if i % 2 == 1 {
            if !part.trim().is_empty() {
                terms.push(part.trim().to_string());
            }
        } else {
            terms.extend(part.split_whitespace().map(str::to_string));
        }
    }
    terms.truncate(20);
    terms
}

fn date_param(p: &Params, key: &str) -> Result<Option<i64>> {
    match p.text(key) {
        None => Ok(None),
        Some(raw) => {
            if let Ok(n) = raw.trim().parse::<i64>() {
                return Ok(Some(n));
            }
            time::OffsetDateTime::parse(raw.trim(), &time::format_description::well_known::Rfc3339)
                .map(|t| Some(t.unix_timestamp()))
                .map_err(|_| Error::bad_request(format!("{key} must be an ISO 8601 date")))
        }
    }
}

/// GET /chat/search
pub async fn search(
    State(s): State<AppState>,
    auth: Auth,
    Body(p): Body,
) -> ApiResult<Json<Value>> {
    let user = auth.ctx.user()?;
    let app = auth.ctx.app();
    let text = p.text("search_text").unwrap_or_default();
    let terms = search_terms(&text);
    if terms.iter().map(|t| t.chars().count()).sum::<usize>() <= 4 {
        return Err(Error::invalid("search_text", "should be longer than 4 characters").into());
    }
    let dialog_ids = match p.get("chat_dialog_ids") {
        None => None,
        Some(v) => {
            let raw = v
                .as_list()
                .ok_or_else(|| Error::bad_request("chat_dialog_ids must be a list"))?;
            if raw.len() > MAX_SEARCH_DIALOGS {
                return Err(Error::invalid(
                    "chat_dialog_ids",
                    format!("at most {MAX_SEARCH_DIALOGS} dialogs"),
                )
                .into());
            }
            Some(object_ids(&raw, MAX_SEARCH_DIALOGS)?)
        }
    };
    // The seed: start_date is the later bound (lte), end_date the earlier one (gte).
    let start = date_param(&p, "start_date")?;
    let end = date_param(&p, "end_date")?;
    if start.is_some() && end.is_none() {
        return Err(Error::invalid("end_date", "is required with start_date").into());
    }
    if let (Some(a), Some(b)) = (start, end) {
        if (a - b).abs() > MAX_SEARCH_SPAN_SECS {
            return Err(Error::invalid("end_date", "must be within 3 months of start_date").into());
        }
    }
    let (date_to, date_from) = match (start, end) {
        (Some(a), Some(b)) => (Some(a.max(b)), Some(a.min(b))),
        (None, b) => (None, b),
        (a, None) => (a, None),
    };
    let limit = p.bounded("limit", 100, 100)?;
    let search = MessageSearch {
        app_id: app.get(),
        user_id: user.get(),
        terms: terms.clone(),
        dialog_ids: dialog_ids.clone(),
        date_from,
        date_to,
        limit,
    };
    // Dialogs whose name contains the text; limited to the given dialogs when there are some.
    let mut dialog_query = Query {
        limit,
        ..Default::default()
    };
    dialog_query.conditions.push(Condition {
        field: Field::Name,
        op: Op::Ctn,
        values: vec![Scalar::Text(terms.first().cloned().unwrap_or_default())],
    });
    if let Some(ids) = &dialog_ids {
        dialog_query.conditions.push(Condition {
            field: Field::Id,
            op: Op::In,
            values: ids.iter().map(|i| Scalar::Text(i.to_string())).collect(),
        });
    }
    let results = s.chat.search(app, user, search, &dialog_query).await?;
    Ok(Json(json!({
        "results": {
            "dialogs": results.dialogs.iter().map(|d| render_chat::dialog(d, &s.domain, Some(user.get()))).collect::<Vec<_>>(),
            "messages": results.messages.iter().map(|m| render_chat::message(m, Some(user.get()))).collect::<Vec<_>>(),
            "users": results.users.iter().map(|u| json!({ "user": render::user(u) })).collect::<Vec<_>>(),
        }
    })))
}
