//! A user's flags on a chat, kept by this face (the domain has mute only): their own
//! `isArchived` and `isRemovedOnDevice` (spec §4 #5), their block of a group chat (#13: they hear
//! nothing of it) and whether they are blocked in it (#14: they may not post). A removed chat
//! leaves `GET /chats` until a message is posted in it; posting also un-archives it for the author.

use confab_core::chat::DialogType;
use confab_core::{ObjectId, UserId};
use confab_service::chat::DialogView;
use confab_service::ChatFlags;
use serde_json::Value;

use crate::error::{CsError, CsResult};
use crate::State;

/// Writes the caller's `isArchived` into each rendered `ChatInfo`, and for groups `isBlocked`
/// (the caller's block of the chat; personal chats show their privacy block, see `blocks`).
pub async fn show_flags(
    face: &State,
    me: UserId,
    chats: &[(String, DialogView)],
    out: &mut [Value],
) -> CsResult<()> {
    let ids: Vec<ObjectId> = chats.iter().map(|(_, v)| v.dialog.id).collect();
    let flags = face.ids.chat_flags(face.app, me, &ids).await?;
    for ((f, (_, view)), info) in flags.iter().zip(chats).zip(out.iter_mut()) {
        if let Value::Object(o) = info {
            o.insert("isArchived".into(), Value::Bool(f.archived));
            if view.dialog.kind == DialogType::Group {
                o.insert("isBlocked".into(), Value::Bool(f.chat_blocked));
            }
        }
    }
    Ok(())
}

/// The chats the user has not removed from their devices.
pub async fn not_removed(
    face: &State,
    me: UserId,
    chats: Vec<(String, DialogView)>,
) -> CsResult<Vec<(String, DialogView)>> {
    let ids: Vec<ObjectId> = chats.iter().map(|(_, v)| v.dialog.id).collect();
    let flags = face.ids.chat_flags(face.app, me, &ids).await?;
    Ok(chats
        .into_iter()
        .zip(flags)
        .filter(|(_, f)| !f.removed_on_device)
        .map(|(c, _)| c)
        .collect())
}

/// Changes the user's flags on one chat; writes only when something changed.
pub async fn update(
    face: &State,
    dialog: ObjectId,
    user: UserId,
    change: impl FnOnce(&mut ChatFlags),
) -> CsResult<()> {
    let was = face.ids.chat_flags(face.app, user, &[dialog]).await?[0];
    let mut now = was;
    change(&mut now);
    if now != was {
        face.ids.set_chat_flags(face.app, dialog, user, now).await?;
    }
    Ok(())
}

/// After a post: the chat is back (un-archived, un-removed) for the author, and in a personal
/// chat back on the recipient's devices, as in the original.
pub async fn after_post(face: &State, view: &DialogView, author: UserId) -> CsResult<()> {
    let dialog = view.dialog.id;
    update(face, dialog, author, |f| {
        f.archived = false;
        f.removed_on_device = false;
    })
    .await?;
    if view.dialog.kind == DialogType::Private {
        for other in view
            .dialog
            .occupants_ids
            .iter()
            .filter(|u| **u != author.get())
        {
            let other = UserId::new(*other)?;
            update(face, dialog, other, |f| f.removed_on_device = false).await?;
        }
    }
    Ok(())
}

/// `refusal` when the user is blocked in the chat.
pub async fn not_blocked(
    face: &State,
    dialog: ObjectId,
    user: UserId,
    refusal: CsError,
) -> CsResult<()> {
    let f = face.ids.chat_flags(face.app, user, &[dialog]).await?[0];
    if f.user_blocked {
        Err(refusal)
    } else {
        Ok(())
    }
}

/// The users blocked in the chat.
pub async fn blocked_users(face: &State, dialog: ObjectId) -> CsResult<Vec<UserId>> {
    Ok(face
        .ids
        .dialog_chat_flags(face.app, dialog)
        .await?
        .into_iter()
        .filter(|(_, f)| f.user_blocked)
        .map(|(u, _)| u)
        .collect())
}

/// Who of `users` hears of the chat: not those blocked in it, nor those who blocked it (the
/// original's recipients; the domain's group blocks, read from its cache).
pub async fn listeners(face: &crate::Face, dialog: ObjectId, users: &[i64]) -> CsResult<Vec<i64>> {
    let deaf = face.chat.group_blocks(face.app, dialog).await;
    Ok(users
        .iter()
        .copied()
        .filter(|&u| !UserId::new(u).is_ok_and(|u| deaf.deaf.contains(&u)))
        .collect())
}

/// [`listeners`], split by their own `isArchived` of the chat: `(not archived, archived)`.
pub async fn listeners_by_archive(
    face: &crate::Face,
    dialog: ObjectId,
    users: &[i64],
) -> CsResult<(Vec<i64>, Vec<i64>)> {
    let flags: std::collections::HashMap<i64, ChatFlags> = face
        .ids
        .dialog_chat_flags(face.app, dialog)
        .await?
        .into_iter()
        .map(|(u, f)| (u.get(), f))
        .collect();
    let flag = |u: i64| flags.get(&u).copied().unwrap_or_default();
    Ok(users
        .iter()
        .copied()
        .filter(|&u| !(flag(u).chat_blocked || flag(u).user_blocked))
        .partition(|&u| !flag(u).archived))
}
