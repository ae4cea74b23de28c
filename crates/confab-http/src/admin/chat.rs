//! Admin chat API: every dialog and message of the app, and changes on users' behalf.

use axum::extract::{Path, State};
use axum::Json;
use confab_core::{Error, UserId};
use confab_service::chat::Actor;
use serde_json::{json, Value};

use super::AdminAuth;
use crate::connectycube::dialogs::{dialog_id, dialog_update, list_response, new_dialog};
use crate::connectycube::messages::MESSAGE_FIELDS;
use crate::connectycube::render_chat;
use crate::error::ApiResult;
use crate::extract::Body;
use crate::filters::{parse_query, spec, FieldSpec, Kind};
use crate::params::ParamExt;
use crate::AppState;

const ADMIN_MESSAGE_SORTS: &[&str] = &["_id", "created_at", "updated_at", "date_sent"];

/// GET /admin/chat/list — newest first, so `_id[lt]=<last id>` walks every dialog.
pub async fn list_dialogs(
    State(s): State<AppState>,
    AdminAuth(app): AdminAuth,
    Body(p): Body,
) -> ApiResult<Json<Value>> {
    list_response(&s, app.id, Actor::Admin, &p, true).await
}

/// GET /admin/chat/messages/list — newest first; filter by `chat_dialog_id`, `_id`, dates.
pub async fn list_messages(
    State(s): State<AppState>,
    AdminAuth(app): AdminAuth,
    Body(p): Body,
) -> ApiResult<Json<Value>> {
    use confab_core::query::Field;
    let mut fields: Vec<FieldSpec> = vec![
        spec("chat_dialog_id", Field::ChatDialogId, Kind::ObjectId),
        spec("created_at", Field::CreatedAt, Kind::Time),
    ];
    fields.extend(
        MESSAGE_FIELDS
            .iter()
            .map(|f| spec(f.name, f.field.clone(), f.kind)),
    );
    let query = parse_query(&p, &fields, ADMIN_MESSAGE_SORTS, false, 100, 100)?;
    let (items, total) = s.chat.admin_messages(app.id, &query).await?;
    let items: Vec<Value> = items
        .iter()
        .map(|m| {
            let mut v = render_chat::message(m, None);
            v["deleted_for_ids"] = json!(m.deleted_for_ids);
            v
        })
        .collect();
    Ok(Json(
        json!({ "total_entries": total, "skip": query.skip, "limit": query.limit, "items": items }),
    ))
}

fn admin_view(
    s: &AppState,
    view: &confab_service::chat::DialogView,
    info: confab_service::AdminDialogInfo,
    muted_for: Option<i64>,
) -> Value {
    let mut v = render_chat::dialog(view, &s.domain, None);
    v["is_muted"] = match muted_for {
        Some(u) => Value::Bool(info.silent_ids.contains(&u)),
        None => Value::Null,
    };
    v["silent_ids"] = json!(info.silent_ids);
    v["deleted_ids"] = json!(info.deleted_ids);
    v["unread_messages_count"] = Value::Null;
    v
}

/// PUT /admin/chat/{id} — the user API's updates, plus `user_id` + `is_muted`.
pub async fn update_dialog(
    State(s): State<AppState>,
    AdminAuth(app): AdminAuth,
    Path(id): Path<String>,
    Body(p): Body,
) -> ApiResult<Json<Value>> {
    let app = app.id;
    let id = dialog_id(&id)?;
    let update = dialog_update(&p)?;
    let muted_user = p.int("user_id")?;
    // Validate the whole request before changing anything.
    let muted = match (p.get("is_muted"), muted_user) {
        (Some(v), Some(u)) => Some((UserId::new(u)?, v.as_flag())),
        (Some(_), None) => {
            return Err(Error::invalid("user_id", "is required with is_muted").into())
        }
        _ => None,
    };
    let view = s.chat.update_dialog(app, Actor::Admin, id, update).await?;
    if let Some((user, on)) = muted {
        s.chat.set_muted(app, id, user, on).await?;
    }
    let info = s.chat.admin_info(id).await?;
    Ok(Json(admin_view(&s, &view, info, muted_user)))
}

/// POST /admin/chat — create a dialog on a user's behalf; the only way to make a broadcast.
pub async fn create_dialog(
    State(s): State<AppState>,
    AdminAuth(app): AdminAuth,
    Body(p): Body,
) -> ApiResult<Json<Value>> {
    let owner = p
        .int("user_id")?
        .and_then(|u| UserId::new(u).ok())
        .ok_or_else(|| Error::invalid("user_id", "can't be blank"))?;
    let view = s
        .chat
        .create_dialog(app.id, owner, new_dialog(&p)?, Actor::Admin)
        .await?;
    let info = s.chat.admin_info(view.dialog.id.into()).await?;
    Ok(Json(admin_view(&s, &view, info, None)))
}
