//! Blocking a chat (spec §4 row 13). A personal chat: the caller's default privacy list denies the
//! other user's messages, so the block holds on both faces (XMPP bounces them too) and posting
//! into the chat gets `403 "This chat was blocked."`. Only the incoming messages are denied, as in
//! the original, where the blocker could still post. A group chat: the caller stays a participant
//! but hears nothing of it on this face's sockets and is not added back (see `flags`).

use axum::extract::{Path, State as St};
use axum::http::StatusCode;
use confab_core::chat::DialogType;
use confab_core::contacts::{stanzas, PrivacyItem};
use confab_core::jid::bare_jid;
use confab_core::UserId;
use confab_service::chat::DialogView;
use confab_service::privacy::Check;
use serde_json::Value;

use crate::auth::Caller;
use crate::chats::chat_for;
use crate::error::{CsError, CsResult};
use crate::State;

/// The list this face creates when the user has no default list yet.
const LIST: &str = "chatserver";

/// The other user of a personal chat the caller takes part in; `None` for a group, whose block
/// is the caller's flag, set here.
async fn other_side(
    face: &State,
    caller: &Caller,
    id: &str,
    blocked: bool,
) -> CsResult<Option<UserId>> {
    let (_, view) = chat_for(face, caller.user(), id, CsError::forbidden("Forbidden")).await?;
    if view.dialog.kind != DialogType::Private {
        crate::flags::update(face, view.dialog.id, caller.user(), |f| {
            f.chat_blocked = blocked
        })
        .await?;
        return Ok(None);
    }
    let me = caller.user().get();
    let other = view
        .dialog
        .occupants_ids
        .iter()
        .copied()
        .find(|u| *u != me)
        .ok_or_else(CsError::not_found)?;
    Ok(Some(UserId::new(other)?))
}

fn denies(item: &PrivacyItem, jid: &str) -> bool {
    item.kind.as_deref() == Some("jid") && item.value.as_deref() == Some(jid) && !item.allow
}

/// `PUT /chats/<uuid>/block`.
pub async fn block(
    St(face): St<State>,
    caller: Caller,
    Path(id): Path<String>,
) -> CsResult<StatusCode> {
    let Some(other) = other_side(&face, &caller, &id, true).await? else {
        return Ok(StatusCode::OK);
    };
    let privacy = face.chat.privacy();
    let owner = (face.app, caller.user());
    let jid = bare_jid(face.app, other, &face.domain);
    let names = privacy.names(owner).await?;
    let name = names.default.clone().unwrap_or_else(|| LIST.to_string());
    let items = privacy.list(owner, &name).await?.unwrap_or_default();
    if items.iter().any(|i| denies(i, &jid)) {
        return Ok(StatusCode::OK);
    }
    // First in the list, so no earlier rule lets the user through.
    let mut new = vec![PrivacyItem {
        kind: Some("jid".into()),
        value: Some(jid),
        allow: false,
        order: 1,
        stanzas: stanzas::MESSAGE,
    }];
    new.extend(items.into_iter().map(|mut i| {
        i.order += 1;
        i
    }));
    privacy.put_list(owner, &name, &new).await?;
    if names.default.is_none() {
        privacy.set_default(owner, Some(&name)).await?;
    }
    Ok(StatusCode::OK)
}

/// Lifts the caller's block of a group, even one they have left (so they can be added back);
/// `false` when they had none.
async fn unblock_group(face: &State, caller: &Caller, id: &str) -> CsResult<bool> {
    let Some(dialog) = face.ids.dialog_of(face.app, id).await? else {
        return Ok(false);
    };
    let flags = face
        .ids
        .chat_flags(face.app, caller.user(), &[dialog])
        .await?[0];
    if !flags.chat_blocked {
        return Ok(false);
    }
    crate::flags::update(face, dialog, caller.user(), |f| f.chat_blocked = false).await?;
    Ok(true)
}

/// `PUT /chats/<uuid>/unblock`.
pub async fn unblock(
    St(face): St<State>,
    caller: Caller,
    Path(id): Path<String>,
) -> CsResult<StatusCode> {
    if unblock_group(&face, &caller, &id).await? {
        return Ok(StatusCode::OK);
    }
    let Some(other) = other_side(&face, &caller, &id, false).await? else {
        return Ok(StatusCode::OK);
    };
    let privacy = face.chat.privacy();
    let owner = (face.app, caller.user());
    let jid = bare_jid(face.app, other, &face.domain);
    let Some(name) = privacy.names(owner).await?.default else {
        return Ok(StatusCode::OK);
    };
    let items = privacy.list(owner, &name).await?.unwrap_or_default();
    let kept: Vec<PrivacyItem> = items.iter().filter(|i| !denies(i, &jid)).cloned().collect();
    if kept.len() == items.len() {
        return Ok(StatusCode::OK);
    }
    if kept.is_empty() && name == LIST {
        // Our own list, now empty: decline it and remove it.
        privacy.set_default(owner, None).await?;
        privacy.delete_list(owner, &name).await?;
    } else {
        privacy.put_list(owner, &name, &kept).await?;
    }
    Ok(StatusCode::OK)
}

/// Sets `isBlocked` in rendered personal chats: whether the caller's default privacy list denies
/// the other user's messages.
pub async fn show_blocked(
    face: &State,
    me: UserId,
    chats: &[(String, DialogView)],
    out: &mut [Value],
) {
    let privacy = face.chat.privacy();
    for ((_, view), info) in chats.iter().zip(out.iter_mut()) {
        if view.dialog.kind != DialogType::Private {
            continue;
        }
        let Some(other) = view
            .dialog
            .occupants_ids
            .iter()
            .find(|u| **u != me.get())
            .and_then(|u| UserId::new(*u).ok())
        else {
            continue;
        };
        // A failed check shows as not blocked: the flag is informative only.
        let blocked = privacy
            .denies((face.app, me), (face.app, other), None, Check::MessageIn)
            .await
            .unwrap_or(false);
        if let Value::Object(o) = info {
            o.insert("isBlocked".into(), Value::Bool(blocked));
        }
    }
}
