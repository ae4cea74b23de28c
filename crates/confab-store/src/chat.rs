//! The storage capability behind dialogs and messages.

use async_trait::async_trait;
use confab_core::chat::{role, Dialog, DialogType, MemberState, Message, Role};
use confab_core::clock::Millis;
use confab_core::query::Query;
use confab_core::{ObjectId, Result};
use serde_json::{Map, Value};

/// One user's membership of a dialog.
#[derive(Debug, Clone, Default)]
pub struct Membership {
    /// Occupant (group/private) or subscriber (public).
    pub occupant: bool,
    pub state: MemberState,
    /// clearHistory mark: messages up to this id are gone for the user.
    pub cleared_before: Option<ObjectId>,
}

/// What posting to a dialog depends on, without the dialog's lists and receipts: every message
/// needs it, so it is one light query.
#[derive(Debug, Clone)]
pub struct PostTarget {
    pub kind: DialogType,
    pub owner_id: i64,
    pub admins_ids: Vec<i64>,
    /// The poster is an occupant (or a public dialog's subscriber).
    pub member: bool,
    /// A private dialog's other occupant; 0 otherwise.
    pub recipient_id: i64,
}

impl PostTarget {
    /// The same role [`Dialog::role_of`] gives.
    pub fn role(&self, user: i64) -> Role {
        role(
            self.kind,
            self.owner_id,
            &self.admins_ids,
            user,
            self.member,
        )
    }
}

/// A change to one user's per-dialog state.
#[derive(Debug, Clone, Copy)]
pub enum MemberChange {
    Hidden(bool),
    Notifications(bool),
    Muted(bool),
    /// Hide every message up to and including this one.
    ClearedBefore(ObjectId),
}

/// Whose view a dialog list is built for.
#[derive(Debug, Clone, Copy)]
pub enum Viewer {
    /// A user: only dialogs they take part in (and the app's broadcasts).
    User(i64),
    /// The administration API: every dialog of the app.
    Admin,
}

/// Extra per-dialog lists only the admin API shows.
#[derive(Debug, Clone, Default)]
pub struct AdminDialogInfo {
    pub silent_ids: Vec<i64>,
    pub deleted_ids: Vec<i64>,
}

/// A search over message bodies with the store's full-text index.
#[derive(Debug, Clone)]
pub struct MessageSearch {
    pub app_id: i64,
    pub user_id: i64,
    /// Words to match any of, or exact phrases.
    pub terms: Vec<String>,
    pub dialog_ids: Option<Vec<ObjectId>>,
    /// Unix seconds, inclusive.
    pub date_from: Option<i64>,
    pub date_to: Option<i64>,
    pub limit: u32,
}

/// Dialogs and messages: what the chat service stores.
pub trait ChatStore: DialogStore + MessageStore {}
impl<T: DialogStore + MessageStore> ChatStore for T {}

/// Dialogs, their members and each member's state.
#[async_trait]
pub trait DialogStore: Send + Sync + 'static {
    /// Inserts a dialog with its first members. For a private dialog `private_key` is unique per
    /// app; when it is taken the existing dialog's id is returned instead. A private
    /// dialog's `private_key` is `"{low}:{high}"` and its `members` are `[low, high]`.
    async fn insert_dialog(
        &self,
        dialog: &Dialog,
        private_key: Option<&str>,
        members: &[i64],
    ) -> Result<ObjectId>;
    /// Creates the private dialog of users `low < high` (keyed `"{low}:{high}"`, both occupants
    /// joined at `dialog.created_at`) when both are users of `dialog.app_id`, in as few round
    /// trips as the store allows. The pair's existing dialog (one created concurrently included)
    /// is returned instead of a new one; `None` when there is none and a user is unknown.
    async fn create_private_dialog(
        &self,
        dialog: &Dialog,
        low: i64,
        high: i64,
    ) -> Result<Option<ObjectId>>;
    async fn find_private_dialog(&self, app_id: i64, key: &str) -> Result<Option<ObjectId>>;
    async fn dialog(&self, app_id: i64, id: ObjectId) -> Result<Option<Dialog>>;
    async fn membership(&self, dialog: ObjectId, user: i64) -> Result<Option<Membership>>;
    /// What deciding whether `user` may post to the dialog needs; `None` for an unknown dialog.
    async fn post_target(
        &self,
        app_id: i64,
        dialog: ObjectId,
        user: i64,
    ) -> Result<Option<PostTarget>>;
    /// Dialogs visible to `viewer`, with the viewer's state; and the total matching.
    async fn list_dialogs(
        &self,
        app_id: i64,
        viewer: Viewer,
        query: &Query,
    ) -> Result<(Vec<(Dialog, MemberState)>, u64)>;
    async fn admin_dialog_info(&self, dialog: ObjectId) -> Result<AdminDialogInfo>;
    /// Saves name, description, photo, admins, pins, custom data and `updated_at`.
    async fn save_dialog(&self, dialog: &Dialog) -> Result<()>;
    async fn add_members(&self, dialog: ObjectId, users: &[i64], now: Millis) -> Result<()>;
    async fn remove_members(&self, dialog: ObjectId, users: &[i64]) -> Result<()>;
    /// Changes one user's state, creating a non-occupant state row when there is none.
    async fn set_member_state(
        &self,
        dialog: ObjectId,
        user: i64,
        change: MemberChange,
        now: Millis,
    ) -> Result<()>;
    async fn delete_dialog(&self, dialog: ObjectId) -> Result<()>;
    /// Occupant/subscriber ids, paged, and their total.
    async fn members(&self, dialog: ObjectId, limit: u32, skip: u32) -> Result<(Vec<i64>, u64)>;
}

/// Messages, their receipts and reactions, unread counts and search.
#[async_trait]
pub trait MessageStore: Send + Sync + 'static {
    /// Stores a message and, in the same transaction, the dialog's `last_message*` and every
    /// other member's unread count. Returns once that transaction is committed.
    async fn insert_message(&self, message: &Message) -> Result<()>;
    /// [`Self::insert_message`] for a message whose sender the caller takes for an occupant of its
    /// dialog (a pair's private dialog it remembers): stored only if the sender is one, checked
    /// in as few round trips as the store allows; `NotFound` when not.
    async fn insert_occupant_message(&self, message: &Message) -> Result<()>;
    async fn message(&self, app_id: i64, id: ObjectId) -> Result<Option<Message>>;
    /// A dialog's messages as `viewer` sees them (without those they deleted or cleared).
    /// The total is counted only when `count` is set: it costs a scan on long histories.
    async fn list_messages(
        &self,
        dialog: ObjectId,
        viewer: Option<i64>,
        cleared_before: Option<ObjectId>,
        query: &Query,
        count: bool,
    ) -> Result<(Vec<Message>, u64)>;
    /// Every message of an app (admin API), filtered and paged.
    async fn list_app_messages(&self, app_id: i64, query: &Query) -> Result<(Vec<Message>, u64)>;
    /// Marks messages read (and delivered) or only delivered for `user`; `None` = the whole
    /// dialog. Unread counts follow.
    async fn mark_messages(
        &self,
        dialog: ObjectId,
        user: i64,
        ids: Option<&[ObjectId]>,
        read: bool,
    ) -> Result<()>;
    async fn edit_message(&self, id: ObjectId, body: Option<&str>, now: Millis) -> Result<()>;
    async fn delete_messages_for_user(
        &self,
        dialog: ObjectId,
        user: i64,
        ids: &[ObjectId],
    ) -> Result<()>;
    /// Deletes messages for everyone; unread counts and `last_message*` follow.
    async fn delete_messages(&self, dialog: ObjectId, ids: &[ObjectId]) -> Result<()>;
    async fn set_reactions(
        &self,
        id: ObjectId,
        reactions: &Map<String, Value>,
        now: Millis,
    ) -> Result<()>;
    /// Unread counts of `user` in the given dialogs, or in all their dialogs.
    async fn unread_counts(
        &self,
        app_id: i64,
        user: i64,
        dialogs: Option<&[ObjectId]>,
    ) -> Result<Vec<(ObjectId, i64)>>;
    /// The sum of `user`'s unread counts over all their dialogs.
    async fn unread_total(&self, app_id: i64, user: i64) -> Result<i64>;
    async fn search_messages(&self, search: &MessageSearch) -> Result<Vec<Message>>;
}
