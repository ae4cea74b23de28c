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
}
