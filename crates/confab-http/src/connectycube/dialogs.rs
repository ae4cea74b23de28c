//! Dialogs: `/chat/Dialog` and its sub-resources.

use axum::extract::{Path, State};
use axum::Json;
use confab_core::chat::DialogType;
use confab_core::query::Field;
use confab_core::{AppId, DialogId, Error, ObjectId, Result};
use confab_service::chat::{Actor, DialogUpdate, NewDialog};
use serde_json::{json, Map, Value};

use super::render;
use super::render_chat;
use crate::error::ApiResult;
use crate::extract::{Auth, Body};
use crate::filters::{object_ids, parse_query, path_ids, spec, FieldSpec, Kind};
use crate::params::{ParamExt, Params};
use crate::AppState;

pub const DIALOG_FIELDS: &[FieldSpec] = &[
    spec("_id", Field::Id, Kind::ObjectId),
    spec("type", Field::DialogType, Kind::Int),
    spec("name", Field::Name, Kind::Text),
    spec(
        "last_message_date_sent",
        Field::LastMessageDateSent,
        Kind::Int,
    ),
    spec("created_at", Field::CreatedAt, Kind::Time),
    spec("updated_at", Field::UpdatedAt, Kind::Time),
];
pub const DIALOG_SORTS: &[&str] = &[
    "_id",
    "name",
    "last_message_date_sent",
    "created_at",
    "updated_at",
    "type",
];
const MAX_PAGE: u32 = 100;

pub fn dialog_id(raw: &str) -> Result<DialogId> {
    raw.trim().parse()
}

/// An id list as the SDK sends it: an array, or a `"5, 6"` string.
pub fn user_ids(v: Option<&Value>, field: &str) -> Result<Vec<i64>> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let items = v
        .as_list()
        .ok_or_else(|| Error::bad_request(format!("{field} must be a list of user ids")))?;
    items
        .iter()
        .map(|s| s.parse::<i64>().ok().filter(|n| *n > 0))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| Error::bad_request(format!("{field} must hold user ids")))
}

fn opt_text(p: &Params, key: &str) -> Result<Option<Option<String>>> {
    match p.0.get(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(v) => v
            .as_text()
            .map(|s| Some(Some(s)))
            .ok_or_else(|| Error::bad_request(format!("{key} must be a string"))),
    }
}

fn custom_data(p: &Params) -> Result<Option<Map<String, Value>>> {
    object_param(p, "data")
}

/// A free-form object parameter (`data`, `extensions`), bounded in size.
fn object_param(p: &Params, key: &str) -> Result<Option<Map<String, Value>>> {
    match p.get(key) {
        None => Ok(None),
        Some(Value::Object(m)) => {
            if m.len() > 50 || m.keys().any(|k| k.is_empty() || k.len() > 64) {
                return Err(Error::bad_request(format!(
                    "{key} has too many or invalid fields"
                )));
            }
            Ok(Some(m.clone()))
        }
        Some(_) => Err(Error::bad_request(format!("{key} must be an object"))),
    }
}

/// Reads a dialog-creating body (user API and admin API share it).
pub fn new_dialog(p: &Params) -> Result<NewDialog> {
    let kind = p.int("type")?.map(DialogType::from_i64).transpose()?;
    Ok(NewDialog {
        kind,
        name: opt_text(p, "name")?.flatten(),
        description: opt_text(p, "description")?.flatten(),
        photo: opt_text(p, "photo")?.flatten(),
        occupants_ids: user_ids(p.get("occupants_ids"), "occupants_ids")?,
        admins_ids: user_ids(p.get("admins_ids"), "admins_ids")?,
        data: custom_data(p)?,
        extensions: object_param(p, "extensions")?,
    })
}

fn push_pull(p: &Params, op: &str, key: &str) -> Result<Option<Value>> {
    match p.get(op) {
        None => Ok(None),
        Some(Value::Object(m)) => Ok(m.get(key).cloned()),
        Some(_) => Err(Error::bad_request(format!("{op} must be an object"))),
    }
}

fn pins(v: Option<Value>) -> Result<Vec<ObjectId>> {
    match v {
        None => Ok(Vec::new()),
        Some(v) => object_ids(
            &v.as_list()
                .ok_or_else(|| Error::bad_request("pinned_messages_ids must be a list"))?,
            100,
        ),
    }
}

/// Reads an update body (user API and admin API share it).
pub fn dialog_update(p: &Params) -> Result<DialogUpdate> {
    for op in ["push_all", "pull_all"] {
        if let Some(Value::Object(m)) = p.get(op) {
            if let Some(k) = m.keys().find(|k| {
                !["occupants_ids", "admins_ids", "pinned_messages_ids"].contains(&k.as_str())
            }) {
                return Err(Error::bad_request(format!(
                    "{op}[{k:.40}] is not supported"
                )));
            }
        }
    }
    Ok(DialogUpdate {
        name: opt_text(p, "name")?,
        description: opt_text(p, "description")?,
        photo: opt_text(p, "photo")?,
        data: custom_data(p)?,
        extensions: object_param(p, "extensions")?,
        push_occupants: user_ids(
            push_pull(p, "push_all", "occupants_ids")?.as_ref(),
            "occupants_ids",
        )?,
        pull_occupants: user_ids(
            push_pull(p, "pull_all", "occupants_ids")?.as_ref(),
            "occupants_ids",
        )?,
        push_admins: user_ids(
            push_pull(p, "push_all", "admins_ids")?.as_ref(),
            "admins_ids",
        )?,
        pull_admins: user_ids(
            push_pull(p, "pull_all", "admins_ids")?.as_ref(),
            "admins_ids",
        )?,
        push_pins: pins(push_pull(p, "push_all", "pinned_messages_ids")?)?,
        pull_pins: pins(push_pull(p, "pull_all", "pinned_messages_ids")?)?,
    })
}

/// `{total_entries, skip, limit, items}` or, with `count=1`, `{items: {count}}`.
pub async fn list_response(
    s: &AppState,
    app: AppId,
    actor: Actor,
    p: &Params,
    admin: bool,
) -> ApiResult<Json<Value>> {
    let mut query = parse_query(p, DIALOG_FIELDS, DIALOG_SORTS, true, 100, MAX_PAGE)?;
    if p.flag("count") {
        query.limit = 0;
        let (_, total) = s.chat.list_dialogs(app, actor, &query).await?;
        return Ok(Json(json!({ "items": { "count": total } })));
    }
    let (items, total) = s.chat.list_dialogs(app, actor, &query).await?;
    let mut rendered = Vec::with_capacity(items.len());
    for view in &items {
        let viewer = match actor {
            Actor::User(u) => Some(u),
            Actor::Admin => None,
        };
        let mut v = render_chat::dialog(view, &s.domain, viewer);
        if admin {
            let info = s.chat.admin_info(view.dialog.id.into()).await?;
            v["silent_ids"] = json!(info.silent_ids);
            v["deleted_ids"] = json!(info.deleted_ids);
            v["unread_messages_count"] = Value::Null;
        }
        rendered.push(v);
    }
    Ok(Json(json!({
        "total_entries": total,
        "skip": query.skip,
        "limit": query.limit,
        "items": rendered,
    })))
}

/// GET /chat/Dialog
pub async fn list_dialogs(
    State(s): State<AppState>,
    auth: Auth,
    Body(p): Body,
) -> ApiResult<Json<Value>> {
    let user = auth.ctx.user()?;
    list_response(&s, auth.ctx.app(), Actor::User(user.get()), &p, false).await
}

/// POST /chat/Dialog
pub async fn create_dialog(
    State(s): State<AppState>,
    auth: Auth,
    Body(p): Body,
) -> ApiResult<Json<Value>> {
    let user = auth.ctx.user()?;
    let view = s
        .chat
        .create_dialog(
            auth.ctx.app(),
            user,
            new_dialog(&p)?,
            Actor::User(user.get()),
        )
        .await?;
    Ok(Json(render_chat::dialog(
        &view,
        &s.domain,
        Some(user.get()),
    )))
}

/// PUT /chat/Dialog/{id}
pub async fn update_dialog(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Body(p): Body,
) -> ApiResult<Json<Value>> {
    let user = auth.ctx.user()?;
    let view = s
        .chat
        .update_dialog(
            auth.ctx.app(),
            Actor::User(user.get()),
            dialog_id(&id)?,
            dialog_update(&p)?,
        )
        .await?;
    Ok(Json(render_chat::dialog(
        &view,
        &s.domain,
        Some(user.get()),
    )))
}

/// PUT /chat/Dialog/{id}/admins
pub async fn update_admins(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Body(p): Body,
) -> ApiResult<Json<Value>> {
    let user = auth.ctx.user()?;
    let full = dialog_update(&p)?;
    let up = DialogUpdate {
        push_admins: full.push_admins,
        pull_admins: full.pull_admins,
        ..Default::default()
    };
    let view = s
        .chat
        .update_dialog(auth.ctx.app(), Actor::User(user.get()), dialog_id(&id)?, up)
        .await?;
    Ok(Json(render_chat::dialog(
        &view,
        &s.domain,
        Some(user.get()),
    )))
}

/// DELETE /chat/Dialog/{ids}
pub async fn delete_dialogs(
    State(s): State<AppState>,
    auth: Auth,
    Path(ids): Path<String>,
    Body(p): Body,
) -> ApiResult<Json<Value>> {
    let user = auth.ctx.user()?;
    let ids = path_ids(&ids)?;
    let out = s
        .chat
        .delete_dialogs(auth.ctx.app(), user, &ids, p.flag("force"))
        .await?;
    if ids.len() == 1 {
        if !out.not_found.is_empty() {
            return Err(Error::not_found("Dialog not found").into());
        }
        if !out.forbidden.is_empty() {
            return Err(Error::forbidden(
                "You don't have appropriate permissions to perform this operation",
            )
            .into());
        }
        return Ok(Json(json!({})));
    }
    let strs = |v: &[ObjectId]| v.iter().map(ToString::to_string).collect::<Vec<_>>();
    Ok(Json(json!({
        "SuccessfullyDeleted": { "ids": strs(&out.deleted) },
        "NotFound": { "ids": strs(&out.not_found) },
        "WrongPermissions": { "ids": strs(&out.forbidden) },
    })))
}

/// DELETE /chat/Dialog/clearHistory/{id}
pub async fn clear_history(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let user = auth.ctx.user()?;
    s.chat
        .clear_history(auth.ctx.app(), user, dialog_id(&id)?)
        .await?;
    Ok(Json(json!({})))
}

/// POST /chat/Dialog/{id}/subscribe
pub async fn subscribe(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let user = auth.ctx.user()?;
    let view = s
        .chat
        .subscribe(auth.ctx.app(), user, dialog_id(&id)?)
        .await?;
    Ok(Json(render_chat::dialog(
        &view,
        &s.domain,
        Some(user.get()),
    )))
}

/// DELETE /chat/Dialog/{id}/subscribe
pub async fn unsubscribe(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let user = auth.ctx.user()?;
    s.chat
        .unsubscribe(auth.ctx.app(), user, dialog_id(&id)?)
        .await?;
    Ok(Json(json!({})))
}

/// GET /chat/Dialog/{id}/notifications
pub async fn get_notifications(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let user = auth.ctx.user()?;
    let on = s
        .chat
        .notifications(auth.ctx.app(), user, dialog_id(&id)?)
        .await?;
    Ok(Json(
        json!({ "notifications": { "enabled": i64::from(on) } }),
    ))
}

/// PUT /chat/Dialog/{id}/notifications
pub async fn update_notifications(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Body(p): Body,
) -> ApiResult<Json<Value>> {
    let user = auth.ctx.user()?;
    // `{"enabled": 0|1}`, or nested as the seed's response shows it.
    let p = p.object("notifications")?.unwrap_or(p);
    let enabled = p
        .get("enabled")
        .ok_or_else(|| Error::invalid("enabled", "can't be blank"))?;
    let on = match enabled.as_text().as_deref().map(str::trim) {
        Some("1" | "true") => true,
        Some("0" | "false") => false,
        _ => return Err(Error::invalid("enabled", "must be 0 or 1").into()),
    };
    let on = s
        .chat
        .set_notifications(auth.ctx.app(), user, dialog_id(&id)?, on)
        .await?;
    Ok(Json(
        json!({ "notifications": { "enabled": i64::from(on) } }),
    ))
}

/// GET /chat/Dialog/{id}/occupants
pub async fn list_occupants(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Body(p): Body,
) -> ApiResult<Json<Value>> {
    let user = auth.ctx.user()?;
    let limit = p.bounded("limit", 100, MAX_PAGE)?;
    let skip = p.bounded("skip", 0, u32::MAX)?;
    let (users, total) = s
        .chat
        .occupants(auth.ctx.app(), user, dialog_id(&id)?, limit, skip)
        .await?;
    Ok(Json(json!({
        "total_entries": total,
        "skip": skip,
        "limit": limit,
        "items": users.iter().map(|u| json!({ "user": render::user(u) })).collect::<Vec<_>>(),
    })))
}
