//! Storage for confab, behind narrow traits so every backend passes one conformance suite.
//!
//! - [`AccountStore`]: apps, users, sessions.
//! - [`ChatStore`] (in [`chat`]): [`DialogStore`] (dialogs, members) and [`MessageStore`] (messages,
//!   receipts, unread counts, search).
//! - [`BlobStore`] (in [`blobs`]): blob metadata and one-time upload grants.
//! - [`ChatServerStore`] (in [`chatserver`]): the ChatServer face's device sessions and id mappings.
//! - [`PushStore`] (in [`push`]): push subscriptions and the outbox of notifications.
//! - [`OfflineStore`]: the XMPP offline message queue.
//! - [`PrivacyStore`] (in [`privacy`]): XEP-0016 privacy lists; [`RosterStore`] (in [`roster`]):
//!   contact lists and presence subscriptions.
//! - [`sqlite`]: the embedded default backend (SQLite in WAL mode under the data directory).
//! - [`postgres`]: PostgreSQL, for several nodes sharing one database.

use async_trait::async_trait;
use confab_core::clock::Millis;
use confab_core::model::{App, Session, User, UserFields, UserQuery};
use confab_core::{AppId, Result, UserId};

pub mod blobs;
pub mod chat;
pub mod chatserver;
pub mod offline;
pub mod postgres;
pub mod privacy;
pub mod push;
pub mod roster;
pub mod sqlite;

pub use chat::{
    ChatStore, DialogStore, MemberChange, Membership, MessageSearch, MessageStore, PostTarget,
    Viewer,
};

pub use blobs::{Blob, BlobStore, NewBlob};
pub use chatserver::{
    ChatFlags, ChatKey, ChatServerStore, Contact, DeviceSession, FileNaming, Media,
};
pub use offline::{OfflineMessage, OfflineStore};
pub use privacy::{PrivacyItem, PrivacyNames, PrivacyStore};
pub use push::{NewPush, NewSubscription, OutboxPush, PushStore, PushSubscription};
pub use roster::{RosterItem, RosterStore, Subscription};

/// A user row about to be inserted.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub app_id: i64,
    pub fields: UserFields,
    pub password_hash: Option<String>,
    pub is_guest: bool,
    pub now: Millis,
}

/// Which unique user attribute to look a user up by.
#[derive(Debug, Clone)]
pub enum UserKey {
    Id(i64),
    Login(String),
    Email(String),
    ExternalUserId(i64),
}

#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    /// Answers when the database does (`/health`).
    async fn ping(&self) -> Result<()>;

    async fn create_app(
        &self,
        name: &str,
        auth_key: &str,
        auth_secret: &str,
        api_key_hash: &[u8],
        now: Millis,
    ) -> Result<App>;
    async fn app(&self, id: AppId) -> Result<Option<App>>;
    async fn app_by_api_key(&self, api_key_hash: &[u8]) -> Result<Option<App>>;
    async fn app_by_auth_key(&self, auth_key: &str) -> Result<Option<App>>;

    /// Inserts a user; a taken login/email/external id is an `Invalid` field error.
    async fn create_user(&self, user: NewUser) -> Result<User>;
    async fn user(&self, app: AppId, key: UserKey) -> Result<Option<User>>;
    async fn user_password_hash(&self, app: AppId, id: UserId) -> Result<Option<String>>;
    async fn list_users(&self, app: AppId, query: &UserQuery) -> Result<(Vec<User>, u64)>;
    async fn update_user(
        &self,
        app: AppId,
        id: UserId,
        fields: &UserFields,
        password_hash: Option<&str>,
        now: Millis,
    ) -> Result<Option<User>>;
    /// Deletes the user and every session they hold.
    async fn delete_user(&self, app: AppId, id: UserId) -> Result<bool>;
    /// Deletes an application and everything in it (users, sessions, dialogs, messages, blobs,
    /// subscriptions, queued pushes); `false` when it does not exist.
    async fn delete_app(&self, app: AppId) -> Result<bool>;

    async fn create_session(
        &self,
        app: AppId,
        user: Option<UserId>,
        token_hash: &[u8],
        now: Millis,
        expires_at: Millis,
    ) -> Result<Session>;
    /// Finds a session that has not expired at `now`.
    async fn session_by_token(&self, token_hash: &[u8], now: Millis) -> Result<Option<Session>>;
    /// Extends a session and records the user's last request.
    async fn touch_session(&self, session: &Session, now: Millis, expires_at: Millis)
        -> Result<()>;
    /// Several [`touch_session`](Self::touch_session)s at once (one transaction where the store
    /// can): `(session, now, expires_at)` each.
    async fn touch_sessions(&self, touches: &[(Session, Millis, Millis)]) -> Result<()> {
        for (session, now, expires_at) in touches {
            self.touch_session(session, *now, *expires_at).await?;
        }
        Ok(())
    }
    async fn set_session_user(&self, id: i64, user: Option<UserId>, now: Millis) -> Result<()>;
    async fn delete_session(&self, id: i64) -> Result<()>;
    /// Removes sessions that expired before `now`; returns how many.
    async fn purge_expired_sessions(&self, now: Millis) -> Result<u64>;
}
