//! Group, public and broadcast dialogs as live rooms: what a real-time face needs from the chat
//! service (a membership snapshot), and the change that keeps its cache in step, published on the
//! [`crate::bus`] after the store change and before the REST call returns: a user removed from
//! `occupants_ids` stops receiving before the client sees the response.

use confab_core::chat::DialogType;
use confab_core::{AppId, DialogId, ObjectId, Result};

use crate::Chat;

/// Who may take part in a room, as loaded from the store.
#[derive(Debug, Clone)]
pub struct RoomSnapshot {
    pub dialog_id: ObjectId,
    pub app: i64,
    pub kind: DialogType,
    pub owner: i64,
    pub admins: Vec<i64>,
    /// Occupants of a group, subscribers of a public dialog; empty for broadcasts.
    pub members: Vec<i64>,
}

/// A change to a dialog's membership (or the dialog's end).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DialogChanged {
    pub app: i64,
    pub dialog_id: ObjectId,
    /// The user who made the change; `None` for the admin API.
    pub actor: Option<i64>,
    pub added: Vec<i64>,
    /// Users no longer in it; when `deleted`, everyone who was.
    pub removed: Vec<i64>,
    /// Deleted for everyone.
    pub deleted: bool,
}

impl Chat {
    /// The room behind a dialog of `app`; `None` for unknown or foreign dialogs. Private dialogs (no
    /// room) come back with no members, so callers can remember that they are not rooms.
    pub async fn room(&self, app: AppId, id: DialogId) -> Result<Option<RoomSnapshot>> {
        let id = id.object_id();
        let app = app.get();
        let Some(dialog) = self.store.dialog(app, id).await? else {
            return Ok(None);
        };
        if dialog.app_id != app {
            return Ok(None);
        }
        let members = match dialog.kind {
            DialogType::Broadcast | DialogType::Private => Vec::new(),
            _ => self.store.members(id, u32::MAX, 0).await?.0,
        };
        Ok(Some(RoomSnapshot {
            dialog_id: id,
            app,
            kind: dialog.kind,
            owner: dialog.owner_id,
            admins: dialog.admins_ids,
            members,
        }))
    }
}
