//! RFC 6121 contact lists: one row per (owner, contact) with the presence subscription state.
//!
//! Subscription handshakes change two rows (the user's and the contact's); the XMPP face does the
//! state transitions and writes each row whole with [`RosterStore::put_roster_item`].

use async_trait::async_trait;
use confab_core::clock::Millis;
use confab_core::{AppId, Result, UserId};

pub use confab_core::contacts::{RosterItem, Subscription};

#[async_trait]
pub trait RosterStore: Send + Sync + 'static {
    /// Every row of the user's, including hidden ones with only a pending inbound request.
    async fn roster(&self, app: AppId, user: UserId) -> Result<Vec<RosterItem>>;
    async fn roster_item(
        &self,
        app: AppId,
        user: UserId,
        contact: UserId,
    ) -> Result<Option<RosterItem>>;
    /// Inserts or replaces a row. Returns `false` (and writes nothing) when the row would be a new
    /// visible contact and the user already has `max_contacts` of them.
    async fn put_roster_item(
        &self,
        app: AppId,
        user: UserId,
        item: &RosterItem,
        max_contacts: u32,
        now: Millis,
    ) -> Result<bool>;
    /// `false` when there was no such row.
    async fn delete_roster_item(&self, app: AppId, user: UserId, contact: UserId) -> Result<bool>;
}
