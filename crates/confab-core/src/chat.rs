//! Dialogs, messages and the roles-and-privileges table of the ConnectyCube chat API.

use serde_json::{Map, Value};

use crate::clock::Millis;
use crate::error::Error;
use crate::ids::ObjectId;

/// Dialog types, numbered as the ConnectyCube REST API numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DialogType {
    Broadcast = 1,
    Group = 2,
    Private = 3,
    Public = 4,
}

impl DialogType {
    pub fn from_i64(v: i64) -> Result<Self, Error> {
        Ok(match v {
            1 => Self::Broadcast,
            2 => Self::Group,
            3 => Self::Private,
            4 => Self::Public,
            _ => return Err(Error::invalid("type", "must be 1, 2, 3 or 4")),
        })
    }

    /// Group, public and broadcast dialogs are XMPP rooms.
    pub fn has_room(self) -> bool {
        self != Self::Private
    }
}

/// At most this many admins per dialog.
pub const MAX_ADMINS: usize = 5;

#[derive(Debug, Clone)]
pub struct Dialog {
    pub id: ObjectId,
    pub app_id: i64,
    pub kind: DialogType,
    pub owner_id: i64,
    pub name: Option<String>,
    pub description: Option<String>,
    pub photo: Option<String>,
    /// Occupants of group/private dialogs; empty for public and broadcast ones.
    pub occupants_ids: Vec<i64>,
    /// Subscribers of a public dialog.
    pub occupants_count: i64,
    pub admins_ids: Vec<i64>,
    pub pinned_messages_ids: Vec<String>,
    /// Custom parameters (`data[class_name]`, `data[field]`).
    pub data: Option<Map<String, Value>>,
    /// The SDK's free-form `extensions` object.
    pub extensions: Option<Map<String, Value>>,
    pub last_message: Option<String>,
    pub last_message_date_sent: Option<i64>,
    pub last_message_id: Option<String>,
    pub last_message_user_id: Option<i64>,
    /// Who besides the sender has received / read the last message.
    pub last_message_delivered_ids: Vec<i64>,
    pub last_message_read_ids: Vec<i64>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

impl Dialog {
    /// `sent`, `delivered` or `read` for the last message, as its sender sees it; `None` for
    /// anyone else or when there is no message.
    pub fn last_message_status(&self, viewer: i64) -> Option<&'static str> {
        if self.last_message_user_id != Some(viewer) {
            return None;
        }
        let others = |ids: &[i64]| ids.iter().any(|u| *u != viewer);
        Some(if others(&self.last_message_read_ids) {
            "read"
        } else if others(&self.last_message_delivered_ids) {
            "delivered"
        } else {
            "sent"
        })
    }
}

/// Per-user state of a dialog, as one user sees it.
#[derive(Debug, Clone, Default)]
pub struct MemberState {
    pub unread_count: i64,
    pub notifications: bool,
    pub muted: bool,
    pub hidden: bool,
}

/// A user's role in one dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Not in the dialog at all.
    Outsider,
    /// May read but not take part (a broadcast's ordinary users; a public dialog's visitors).
    Reader,
    Member,
    Admin,
    Owner,
}

/// What someone may try to do to a dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Read,
    Post,
    AddOccupants,
    RemoveOccupants,
    EditInfo,
    Pin,
    ManageAdmins,
    DeleteAnyMessageForAll,
    DeleteOwnMessageForAll,
    DeleteMessageForMe,
    DeleteDialogForAll,
}

impl Dialog {
    /// `member` says whether the user is an occupant (or a public dialog's subscriber).
    pub fn role_of(&self, user: i64, member: bool) -> Role {
        let member = member || self.occupants_ids.contains(&user);
        role(self.kind, self.owner_id, &self.admins_ids, user, member)
    }

    pub fn room_jid(&self, domain: &str) -> Option<String> {
        self.kind
            .has_room()
            .then(|| format!("{}_{}@muc.{}", self.app_id, self.id, domain))
    }
}

/// A user's role from the few dialog fields it depends on; `member` = occupant or subscriber.
pub fn role(kind: DialogType, owner_id: i64, admins_ids: &[i64], user: i64, member: bool) -> Role {
    if user == owner_id {
        Role::Owner
    } else if admins_ids.contains(&user) {
        Role::Admin
    } else if member {
        Role::Member
    } else if kind == DialogType::Broadcast {
        Role::Reader
    } else {
        Role::Outsider
    }
}

/// The roles-and-privileges table of the chat API, one place for every face.
///
/// Admins and the owner of a public dialog are members too (they can post); for
/// public dialogs "member" means "subscriber".
pub fn allowed(kind: DialogType, role: Role, action: Action) -> bool {
    use Action::*;
    use DialogType::*;
    use Role::*;
    if role == Outsider {
        return false;
    }
    match (kind, action) {
        (_, Read) => true,
        (Broadcast, Post | DeleteMessageForMe) => role >= Admin,
        (_, Post | DeleteOwnMessageForAll | DeleteMessageForMe) => role >= Member,
        (Private, _) => false,
        (Group, AddOccupants) => role >= Member,
        (Group, EditInfo) => role >= Member,
        // Seed 002 (the SDK's guide): "Only group chat owner can remove other users".
        (Group, RemoveOccupants) => role == Owner,
        (Public | Broadcast, AddOccupants | RemoveOccupants) => false,
        (Public | Broadcast, EditInfo) => role >= Admin,
        (_, Pin | DeleteAnyMessageForAll) => role >= Admin,
        (_, ManageAdmins | DeleteDialogForAll) => role == Owner,
    }
}

#[derive(Debug, Clone)]
pub struct Message {
    pub id: ObjectId,
    pub app_id: i64,
    pub dialog_id: ObjectId,
    pub sender_id: i64,
    /// The other user of a private dialog; 0 otherwise.
    pub recipient_id: i64,
    pub body: Option<String>,
    /// Unix seconds, as clients send it.
    pub date_sent: i64,
    pub attachments: Vec<Value>,
    /// Custom parameters, rendered as top-level fields.
    pub custom: Map<String, Value>,
    pub read_ids: Vec<i64>,
    pub delivered_ids: Vec<i64>,
    pub deleted_for_ids: Vec<i64>,
    /// Emoji → user ids.
    pub reactions: Map<String, Value>,
    pub markable: bool,
    pub views_count: i64,
    pub edited_at: Option<i64>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

#[cfg(test)]
mod tests {
    use super::Action::*;
    use super::DialogType::*;
    use super::Role::*;
    use super::*;

    #[test]
    fn roles_table() {
        // Private: regular users only.
        assert!(allowed(Private, Member, Post));
        assert!(!allowed(Private, Member, EditInfo));
        assert!(!allowed(Private, Member, AddOccupants));
        // Group.
        assert!(allowed(Group, Member, AddOccupants));
        assert!(allowed(Group, Member, EditInfo));
        assert!(!allowed(Group, Member, Pin));
        assert!(!allowed(Group, Member, RemoveOccupants));
        assert!(!allowed(Group, Admin, RemoveOccupants));
        assert!(allowed(Group, Owner, RemoveOccupants));
        assert!(allowed(Group, Admin, Pin));
        assert!(!allowed(Group, Admin, ManageAdmins));
        assert!(allowed(Group, Owner, ManageAdmins));
        assert!(allowed(Group, Owner, DeleteDialogForAll));
        // Public.
        assert!(allowed(Public, Member, Post));
        assert!(!allowed(Public, Member, EditInfo));
        assert!(allowed(Public, Admin, EditInfo));
        // Broadcast: ordinary users only read.
        assert!(allowed(Broadcast, Reader, Read));
        assert!(!allowed(Broadcast, Reader, Post));
        assert!(allowed(Broadcast, Admin, Post));
        assert!(!allowed(Group, Outsider, Read));
    }
}
