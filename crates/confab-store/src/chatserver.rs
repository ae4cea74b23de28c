//! The ChatServer face's own rows: device sessions (its tokens), and the stable mappings between
//! its ids (chat UUIDs, integer message ids) and the domain's ObjectIds.

use async_trait::async_trait;
use confab_core::clock::Millis;
use confab_core::{AppId, ObjectId, Result, UserId};

/// A device session: one login of one device, with its own access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSession {
    /// A UUID, upper case.
    pub id: String,
    pub app_id: AppId,
    pub user_id: UserId,
    /// The client's `DeviceInfo`, as JSON text.
    pub device_info: String,
    pub ip_address: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// A chat's UUID and what it was created as on this face (`None` for dialogs made elsewhere).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatKey {
    pub participants_key: String,
    pub is_personal: bool,
}

/// A picture: a user's photo (owner `user:<id>`) or a group chat's image (owner `chat:<UUID>`).
/// Only metadata; the bytes are an upload named after `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// A UUID, upper case.
    pub id: String,
    pub app_id: AppId,
    pub owner: String,
    /// Who added it (the row goes with that user).
    pub added_by: UserId,
    pub file_type: String,
    pub file_size: i64,
    pub preview_width: i64,
    pub preview_height: i64,
    pub created_at: Millis,
}

/// One of a user's contacts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// A UUID, upper case.
    pub id: String,
    pub app_id: AppId,
    pub owner: UserId,
    pub user: UserId,
    pub name: Option<String>,
    pub is_favorite: bool,
    pub is_blocked: bool,
    pub created_at: Millis,
}

/// A user's flags on a chat; all `false` when never set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChatFlags {
    pub archived: bool,
    pub removed_on_device: bool,
    /// The user blocked the chat (hears nothing of it).
    pub chat_blocked: bool,
    /// The user is blocked in the chat (may not post).
    pub user_blocked: bool,
}

/// What naming a blob did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileNaming {
    /// Named; the blob the name named before, if another (the same user's), to be removed.
    Named(Option<i64>),
    /// The name is another user's: nothing changed.
    Taken,
}

#[async_trait]
pub trait ChatServerStore: Send + Sync + 'static {
    /// Stores a new session under the hash of its token.
    async fn create_device_session(&self, session: &DeviceSession, token_hash: &[u8])
        -> Result<()>;
    async fn device_session_by_token(&self, token_hash: &[u8]) -> Result<Option<DeviceSession>>;
    /// Replaces a session's `DeviceInfo` JSON; `false` when there is no such session.
    async fn update_device_info(&self, id: &str, device_info: &str, now: Millis) -> Result<bool>;
    /// Every session of the user, oldest first.
    async fn device_sessions_of(&self, app: AppId, user: UserId) -> Result<Vec<DeviceSession>>;
    /// Deletes every session of the user; returns how many.
    async fn delete_device_sessions_of(&self, app: AppId, user: UserId) -> Result<u64>;
    /// Deletes one session; `false` when there is no such session.
    async fn delete_device_session(&self, id: &str) -> Result<bool>;

    /// Sets (or replaces) the hash of a user's account key.
    async fn set_account_key_hash(
        &self,
        app: AppId,
        user: UserId,
        hash: &str,
        now: Millis,
    ) -> Result<()>;
    /// The hash of a user's account key, when one was set.
    async fn account_key_hash(&self, app: AppId, user: UserId) -> Result<Option<String>>;

    /// The UUID of each dialog: the stored one, or the candidate given beside it, stored now.
    async fn chat_uuids(&self, app: AppId, dialogs: &[(ObjectId, String)]) -> Result<Vec<String>>;
    /// Records the participants key of a chat created on this face (its UUID stored or not).
    async fn set_chat_key(
        &self,
        app: AppId,
        dialog: ObjectId,
        candidate_uuid: &str,
        key: &ChatKey,
    ) -> Result<String>;
    /// The dialogs of chats created on this face with this key, newest first.
    async fn dialogs_by_chat_key(&self, app: AppId, key: &ChatKey) -> Result<Vec<ObjectId>>;
    /// The dialog a chat UUID names (compared upper case).
    async fn dialog_of_chat(&self, app: AppId, uuid: &str) -> Result<Option<ObjectId>>;

    /// The integer id of each message, assigned in the given order to those without one.
    async fn message_numbers(&self, app: AppId, messages: &[ObjectId]) -> Result<Vec<i64>>;
    /// The message an integer id names.
    async fn message_of_number(&self, app: AppId, number: i64) -> Result<Option<ObjectId>>;

    /// A message's integer id names one posted invisible that its author has since made visible.
    async fn show_message(&self, app: AppId, number: i64) -> Result<bool>;
    /// Of the given integer ids, those made visible with [`Self::show_message`].
    async fn shown_messages(&self, app: AppId, numbers: &[i64]) -> Result<Vec<i64>>;

    /// Sets (`Some`) or clears a user's "about" text.
    async fn set_about(&self, app: AppId, user: UserId, about: Option<&str>) -> Result<()>;
    async fn about(&self, app: AppId, user: UserId) -> Result<Option<String>>;

    /// Adds a picture; `false` when its id is taken.
    async fn add_media(&self, media: &Media) -> Result<bool>;
    async fn media(&self, app: AppId, id: &str) -> Result<Option<Media>>;
    /// The pictures of these owners, oldest first.
    async fn media_of(&self, app: AppId, owners: &[String]) -> Result<Vec<Media>>;
    /// Deletes a picture; returns it, `None` when there was none.
    async fn delete_media(&self, app: AppId, id: &str) -> Result<Option<Media>>;

    /// Adds a contact; when the owner has this user already, returns that one unchanged.
    async fn add_contact(&self, contact: &Contact) -> Result<Contact>;
    /// The owner's contacts, oldest first.
    async fn contacts_of(&self, app: AppId, owner: UserId) -> Result<Vec<Contact>>;
    /// `false` when the owner has no contact with this id.
    async fn delete_contact(&self, app: AppId, owner: UserId, id: &str) -> Result<bool>;

    /// The user's flags on each dialog, in the given order.
    async fn chat_flags(
        &self,
        app: AppId,
        user: UserId,
        dialogs: &[ObjectId],
    ) -> Result<Vec<ChatFlags>>;
    async fn set_chat_flags(
        &self,
        app: AppId,
        dialog: ObjectId,
        user: UserId,
        flags: ChatFlags,
    ) -> Result<()>;
    /// Every user of the dialog with a flag set, by user id.
    async fn dialog_chat_flags(
        &self,
        app: AppId,
        dialog: ObjectId,
    ) -> Result<Vec<(UserId, ChatFlags)>>;

    /// The blob an upload name (`<name>.<type>`) names.
    async fn file_blob(&self, app: AppId, name: &str) -> Result<Option<i64>>;
    /// Names a blob, unless the name names another user's blob (checked and changed in one
    /// transaction, so of two users racing for a new name one wins).
    async fn set_file_blob(&self, app: AppId, name: &str, blob: i64) -> Result<FileNaming>;
}
