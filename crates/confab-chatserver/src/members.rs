//! Membership of group chats (spec §4 rows 8, 9, 11): add and remove participants, leave. The
//! changes go through the Chat service, which tells every live face on the bus.

use std::collections::BTreeSet;

use axum::body::Bytes;
use axum::extract::{Path, State as St};
use axum::http::StatusCode;
use axum::Json;
use confab_core::chat::DialogType;
use confab_core::DialogId;
use confab_service::chat::{Actor, DialogUpdate, DialogView};
use serde::Deserialize;
use serde_json::Value;

use crate::auth::Caller;
use crate::chats::{chat_for, render_chats, users};
use crate::error::{parse_json, CsError, CsResult};
use crate::render::Dates;
use crate::State;

#[derive(Deserialize)]
struct ChatUsers {
    users: Vec<i64>,
}

/// Most users one `POST /chats/<uuid>/users` adds.
const MAX_ADDED: usize = 10;

/// `ChatInfo` with `addedUsers` or `removedUsers` (`key`) listing `ids`.
pub async fn with_users(
    face: &State,
    chat: (String, DialogView),
    key: &str,
    ids: &[i64],
    dates: Dates,
) -> CsResult<Value> {
    let people = users(face, &ids.iter().copied().collect()).await?;
    let mut out = render_chats(face, &[chat], false, dates).await?;
    let mut info = out.pop().unwrap_or(Value::Null);
    let list: Vec<Value> = ids
        .iter()
        .filter_map(|id| people.get(id))
        .map(|u| crate::render::user_info(u, false, dates))
        .collect();
    if let Value::Object(o) = &mut info {
        o.insert(key.into(), Value::Array(list));
    }
    Ok(info)
}

/// Adds or removes occupants as the caller, under the domain's role rules.
async fn update_members(
    face: &State,
    caller: &Caller,
    view: &DialogView,
    update: DialogUpdate,
) -> CsResult<DialogView> {
    Ok(face
        .chat
        .update_dialog(
            face.app,
            Actor::User(caller.user().get()),
            DialogId::from(view.dialog.id),
            update,
        )
        .await?)
}

/// `POST /chats/<uuid>/users`: adds up to 10 new participants to a group; they and everyone
/// already there get `addedUsers` through the bus.
pub async fn add_users(
    St(face): St<State>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> CsResult<Json<Value>> {
    let req: ChatUsers = parse_json(&body)?;
    let (uuid, view) = chat_for(&face, caller.user(), &id, CsError::forbidden("Forbidden")).await?;
    if view.dialog.kind == DialogType::Private {
        return Err(CsError::bad_request("Bad Request"));
    }
    crate::flags::not_blocked(
        &face,
        view.dialog.id,
        caller.user(),
        CsError::forbidden("Forbidden"),
    )
    .await?;
    // Those who blocked the chat are not added back (they left it or hear nothing of it).
    let blockers: BTreeSet<i64> = face
        .ids
        .dialog_chat_flags(face.app, view.dialog.id)
        .await?
        .into_iter()
        .filter(|(_, f)| f.chat_blocked)
        .map(|(u, _)| u.get())
        .collect();
    let current: BTreeSet<i64> = view.dialog.occupants_ids.iter().copied().collect();
    let new: Vec<i64> = req
        .users
        .iter()
        .copied()
        .filter(|u| !current.contains(u) && !blockers.contains(u))
        .collect::<BTreeSet<i64>>()
        .into_iter()
        .collect();
    if new.is_empty() {
        return Err(CsError::bad_request("No users to add found."));
    }
    if new.len() > MAX_ADDED {
        return Err(CsError::bad_request("To many users to add at once."));
    }
    if users(&face, &new.iter().copied().collect()).await?.len() != new.len() {
        return Err(CsError::new(StatusCode::NOT_FOUND, "User not found."));
    }
    let update = DialogUpdate {
        push_occupants: new.clone(),
        ..Default::default()
    };
    let view = update_members(&face, &caller, &view, update).await?;
    Ok(Json(
        with_users(&face, (uuid, view), "addedUsers", &new, Dates::Iso).await?,
    ))
}

/// `DELETE /chats/<uuid>/users`: removes participants of a group (the owner, as the domain's
/// roles table has it; anyone may remove themselves); those left get `removedUsers`.
pub async fn remove_users(
    St(face): St<State>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> CsResult<Json<Value>> {
    let req: ChatUsers = parse_json(&body)?;
    if req.users.is_empty() {
        return Err(CsError::bad_request("Bad Request"));
    }
    let (uuid, view) = chat_for(&face, caller.user(), &id, CsError::forbidden("Forbidden")).await?;
    if view.dialog.kind == DialogType::Private {
        return Err(CsError::bad_request("Bad Request"));
    }
    crate::flags::not_blocked(
        &face,
        view.dialog.id,
        caller.user(),
        CsError::forbidden("Forbidden"),
    )
    .await?;
    let removed: Vec<i64> = req
        .users
        .iter()
        .copied()
        .filter(|u| view.dialog.occupants_ids.contains(u))
        .collect::<BTreeSet<i64>>()
        .into_iter()
        .collect();
    if removed.is_empty() {
        return Err(CsError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Users provided are not participants of this chat.",
        ));
    }
    let update = DialogUpdate {
        pull_occupants: removed.clone(),
        ..Default::default()
    };
    let view = update_members(&face, &caller, &view, update).await?;
    Ok(Json(
        with_users(&face, (uuid, view), "removedUsers", &removed, Dates::Iso).await?,
    ))
}

/// `DELETE /chats/<uuid>/me`: leaves a group (on both faces); those left get `removedUsers`.
pub async fn exit(
    St(face): St<State>,
    caller: Caller,
    Path(id): Path<String>,
) -> CsResult<StatusCode> {
    let (_, view) = chat_for(&face, caller.user(), &id, CsError::forbidden("Forbidden")).await?;
    if view.dialog.kind == DialogType::Private {
        return Err(CsError::bad_request("Bad Request"));
    }
    face.chat
        .update_dialog(
            face.app,
            Actor::User(caller.user().get()),
            DialogId::from(view.dialog.id),
            DialogUpdate {
                pull_occupants: vec![caller.user().get()],
                ..Default::default()
            },
        )
        .await?;
    Ok(StatusCode::OK)
}
