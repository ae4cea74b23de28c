//! The offline queue: what could not be delivered live waits here for its recipient.
//!
//! Delivery is at least once: a session *claims* a user's queued entries (they stay stored, hidden
//! from other sessions), and *confirms* each once the client has it; claims a session leaves behind
//! are *released* at its end, and every claim at server start (a killed process leaves some). Each
//! user holds at most `max_per_user` entries; what does not fit is refused, never silently dropped.
//!
//! Entries are opaque to this service: today the XMPP face queues rendered stanzas.

use std::sync::Arc;

use confab_core::clock::Millis;
use confab_core::contacts::OfflineMessage;
use confab_core::{AppId, Result, UserId};
use confab_store::OfflineStore;

pub struct Offline {
    store: Arc<dyn OfflineStore>,
    max_per_user: u32,
}

impl Offline {
    pub fn new(store: Arc<dyn OfflineStore>, max_per_user: u32) -> Self {
        Self {
            store,
            max_per_user,
        }
    }

    /// Queues entries for `user`, each with its time, in order, as many as fit below the per-user
    /// limit. Returns how many were queued.
    pub async fn queue(
        &self,
        app: AppId,
        user: UserId,
        entries: &[(&str, Millis)],
    ) -> Result<usize> {
        self.store
            .push_offline_many(app, user, entries, self.max_per_user)
            .await
    }

    /// Claims every unclaimed entry of `user` for `claim` (a session's unique token), oldest first,
    /// in one atomic step: two sessions logging in at once never both get an entry.
    pub async fn claim(
        &self,
        app: AppId,
        user: UserId,
        claim: &str,
    ) -> Result<Vec<OfflineMessage>> {
        self.store.claim_offline(app, user, claim).await
    }

    /// Removes entries `claim` holds once they are delivered (or can never be). Returns how many.
    pub async fn confirm(&self, app: AppId, user: UserId, claim: &str, ids: &[i64]) -> Result<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        self.store.delete_offline(app, user, claim, ids).await
    }

    /// Makes the entries `claim` still holds deliverable again (its session ended first).
    pub async fn release(&self, app: AppId, user: UserId, claim: &str) -> Result<u64> {
        self.store.release_offline(app, user, claim).await
    }

    /// Releases every claim; at server start, when no session can hold one.
    pub async fn release_all(&self) -> Result<u64> {
        self.store.release_all_offline().await
    }

    /// Releases the claims of `node` (at its start: its previous run was killed).
    pub async fn release_claims_of(&self, node: &str) -> Result<u64> {
        self.store.release_offline_claims_of(node).await
    }

    /// Releases the claims of every node not in `live` (a claim token starts with its node's
    /// name); returns the users whose entries are deliverable again.
    pub async fn release_claims_except(&self, live: &[&str]) -> Result<Vec<(AppId, UserId)>> {
        self.store.release_offline_claims_except(live).await
    }
}
