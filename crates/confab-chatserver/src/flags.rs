//! A user's own flags on a chat (spec §4 #5): `isArchived` and `isRemovedOnDevice`, kept by this
//! face (the domain has mute only). A removed chat leaves `GET /chats` until a message is posted
//! in it; posting also un-archives it for the author.

use confab_core::chat::DialogType;
use confab_core::{ObjectId, UserId};
use confab_service::chat::DialogView;
use confab_service::ChatFlags;
use serde_json::Value;

use crate::error::CsResult;
use crate::State;

/// Writes the caller's `isArchived` into each rendered `ChatInfo`.
pub async fn show_flags(
    face: &State,
    me: UserId,
    chats: &[(String, DialogView)],
    out: &mut [Value],
) -> CsResult<()> {
    let ids: Vec<ObjectId> = chats.iter().map(|(_, v)| v.dialog.id).collect();
    let flags = face.ids.chat_flags(face.app, me, &ids).await?;
    for (f, info) in flags.iter().zip(out.iter_mut()) {
        if let Value::Object(o) = info {
            o.insert("isArchived".into(), Value::Bool(f.archived));
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

/// Changes the given flags of the user on one chat.
pub async fn set(
    face: &State,
    dialog: ObjectId,
    me: UserId,
    archived: Option<bool>,
    removed: Option<bool>,
) -> CsResult<()> {
    if archived.is_none() && removed.is_none() {
        return Ok(());
    }
    let was = face.ids.chat_flags(face.app, me, &[dialog]).await?[0];
    let now = ChatFlags {
        archived: archived.unwrap_or(was.archived),
        removed_on_device: removed.unwrap_or(was.removed_on_device),
    };
    if now != was {
        face.ids.set_chat_flags(face.app, dialog, me, now).await?;
    }
    Ok(())
}

/// After a post: the chat is back (un-archived, un-removed) for the author, and in a personal
/// chat back on the recipient's devices, as in the original.
pub async fn after_post(face: &State, view: &DialogView, author: UserId) -> CsResult<()> {
    let dialog = view.dialog.id;
    set(face, dialog, author, Some(false), Some(false)).await?;
    if view.dialog.kind == DialogType::Private {
        for other in view
            .dialog
            .occupants_ids
            .iter()
            .filter(|u| **u != author.get())
        {
            let other = UserId::new(*other)?;
            set(face, dialog, other, None, Some(false)).await?;
        }
    }
    Ok(())
}
