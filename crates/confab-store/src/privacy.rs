//! XEP-0016 privacy lists, per user. Lists are read and written whole; the XMPP face caches each
//! user's default list in memory, so this is read once per user, not per stanza.

use std::collections::HashMap;

use async_trait::async_trait;
use confab_core::clock::Millis;
use confab_core::{AppId, Result, UserId};

pub use confab_core::contacts::{stanzas, PrivacyItem, PrivacyNames};

#[async_trait]
pub trait PrivacyStore: Send + Sync + 'static {
    /// Creates or replaces a list (items in order). Keeps its default flag.
    async fn put_privacy_list(
        &self,
        app: AppId,
        user: UserId,
        name: &str,
        items: &[PrivacyItem],
        now: Millis,
    ) -> Result<()>;
    async fn privacy_list(
        &self,
        app: AppId,
        user: UserId,
        name: &str,
    ) -> Result<Option<Vec<PrivacyItem>>>;
    async fn privacy_names(&self, app: AppId, user: UserId) -> Result<PrivacyNames>;
    /// `false` when there was no such list.
    async fn delete_privacy_list(&self, app: AppId, user: UserId, name: &str) -> Result<bool>;
    /// Makes `name` the default (or declines any default with `None`). `false` when no such list.
    async fn set_default_privacy_list(
        &self,
        app: AppId,
        user: UserId,
        name: Option<&str>,
    ) -> Result<bool>;
    /// The default list's items, if the user has one.
    async fn default_privacy_list(
        &self,
        app: AppId,
        user: UserId,
    ) -> Result<Option<Vec<PrivacyItem>>>;
    /// The default lists of `users` in one read; users without one are left out.
    async fn default_privacy_lists(
        &self,
        app: AppId,
        users: &[UserId],
    ) -> Result<HashMap<UserId, Vec<PrivacyItem>>>;
}
