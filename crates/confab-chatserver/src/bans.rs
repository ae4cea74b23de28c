//! Blocking users in a group chat (spec §4 #14–15): a blocked participant stays in the chat but
//! may not post, edit, list messages, change the chat or its members, or notify, and hears
//! nothing of it over the WebSocket. Only the owner and admins block (the original let any
//! participant, as it let any remove others; the domain's roles decide here), never the owner.
//! Enforced on this face only: the ConnectyCube face does not know of these blocks.

use std::collections::BTreeSet;

use axum::extract::{Path, State as St};
use axum::http::StatusCode;
use axum::Json;
use confab_core::chat::DialogType;
use confab_core::UserId;
use confab_service::chat::DialogView;
use serde_json::Value;

use crate::auth::Caller;
use crate::chats::{chat_for, users};
use crate::error::{CsError, CsResult};
use crate::render::{user_info, Dates};
use crate::State;

fn forbidden() -> CsError {
    CsError::forbidden("Forbidden")
}

/// The group the path names, with the caller a participant not blocked in it.
async fn group_for(face: &State, caller: &Caller, id: &str) -> CsResult<DialogView> {
    let (_, view) = chat_for(face, caller.user(), id, forbidden()).await?;
    if view.dialog.kind == DialogType::Private {
        return Err(CsError::bad_request(
            "You can't block users in personal chat.",
        ));
    }
    crate::flags::not_blocked(face, view.dialog.id, caller.user(), forbidden()).await?;
    Ok(view)
}

/// Blocks (`true`) or unblocks a participant, as the group's owner or an admin.
async fn set_blocked(
    face: &State,
    caller: &Caller,
    id: &str,
    target: &str,
    blocked: bool,
) -> CsResult<StatusCode> {
    let view = group_for(face, caller, id).await?;
    let me = caller.user().get();
    if view.dialog.owner_id != me && !view.dialog.admins_ids.contains(&me) {
        return Err(forbidden());
    }
    let target: i64 = target
        .parse()
        .ok()
        .filter(|t| view.dialog.occupants_ids.contains(t))
        .ok_or_else(|| CsError::new(StatusCode::NOT_FOUND, "User not found."))?;
    if target == me {
        return Err(CsError::bad_request("You can't block yourself."));
    }
    if target == view.dialog.owner_id {
        return Err(forbidden());
    }
    crate::flags::update(face, view.dialog.id, UserId::new(target)?, |f| {
        f.user_blocked = blocked
    })
    .await?;
    Ok(StatusCode::OK)
}

/// `PUT /chats/<uuid>/users/<userId>/block`.
pub async fn block_user(
    St(face): St<State>,
    caller: Caller,
    Path((id, target)): Path<(String, String)>,
) -> CsResult<StatusCode> {
    set_blocked(&face, &caller, &id, &target, true).await
}

/// `PUT /chats/<uuid>/users/<userId>/unblock`.
pub async fn unblock_user(
    St(face): St<State>,
    caller: Caller,
    Path((id, target)): Path<(String, String)>,
) -> CsResult<StatusCode> {
    set_blocked(&face, &caller, &id, &target, false).await
}

/// `GET /chats/<uuid>/users/blocked`: the participants blocked in the chat.
pub async fn blocked_list(
    St(face): St<State>,
    caller: Caller,
    Path(id): Path<String>,
) -> CsResult<Json<Value>> {
    let view = group_for(&face, &caller, &id).await?;
    let blocked: BTreeSet<i64> = crate::flags::blocked_users(&face, view.dialog.id)
        .await?
        .into_iter()
        .map(|u| u.get())
        .filter(|u| view.dialog.occupants_ids.contains(u))
        .collect();
    let people = users(&face, &blocked).await?;
    let list: Vec<Value> = blocked
        .iter()
        .filter_map(|u| people.get(u))
        .map(|u| user_info(u, false, Dates::Iso))
        .collect();
    Ok(Json(Value::Array(list)))
}
