//! The offline message queue: stanzas kept for users who are not online.
//!
//! Delivery is at least once: a session *claims* the queued rows (they stay stored, invisible to other
//! sessions) and deletes them only when the client acknowledged them. Claims of a session that ended
//! early are released at its end, and every claim at server start (a killed server leaves some).

use async_trait::async_trait;
use confab_core::clock::Millis;
use confab_core::{AppId, Result, UserId};

pub use confab_core::contacts::OfflineMessage;

#[async_trait]
pub trait OfflineStore: Send + Sync + 'static {
    /// Queues a stanza for `user`. Returns `false` (and stores nothing) when the user already has
    /// `max_per_user` waiting.
    async fn push_offline(
        &self,
        app: AppId,
        user: UserId,
        stanza: &str,
        now: Millis,
        max_per_user: u32,
    ) -> Result<bool> {
        let stored = self
            .push_offline_many(app, user, &[(stanza, now)], max_per_user)
            .await?;
        Ok(stored == 1)
    }

    /// Queues stanzas for `user`, each with its time, in one transaction; only as many as fit
    /// below `max_per_user`, in order. Returns how many were stored.
    async fn push_offline_many(
        &self,
        app: AppId,
        user: UserId,
        stanzas: &[(&str, Millis)],
        max_per_user: u32,
    ) -> Result<usize>;

    /// Marks every unclaimed stanza of `user` as claimed by `claim` (a session's unique token) and
    /// returns them, oldest first, in one atomic step, so two sessions logging in at once never both
    /// receive a message.
    async fn claim_offline(
        &self,
        app: AppId,
        user: UserId,
        claim: &str,
    ) -> Result<Vec<OfflineMessage>>;

    /// Deletes the rows `ids` that `claim` holds (delivered and acknowledged). Returns how many.
    async fn delete_offline(
        &self,
        app: AppId,
        user: UserId,
        claim: &str,
        ids: &[i64],
    ) -> Result<u64>;

    /// Makes the rows `claim` still holds deliverable again (the session ended unacknowledged).
    async fn release_offline(&self, app: AppId, user: UserId, claim: &str) -> Result<u64>;

    /// Releases every claim; called at server start, when no session can hold one.
    async fn release_all_offline(&self) -> Result<u64>;

    /// Releases the claims of nodes not in `live`, in a cluster: a claim is `<node>:<token>`, and
    /// a node that is gone (killed) cannot end its sessions. Returns each user whose entries are
    /// deliverable again, once.
    async fn release_offline_claims_except(&self, live: &[&str]) -> Result<Vec<(AppId, UserId)>>;

    /// Releases the claims of `node`: at its start, when none of its sessions can hold one (its
    /// previous run was killed). Returns how many.
    async fn release_offline_claims_of(&self, node: &str) -> Result<u64>;
}

/// Each `(app, user)` of released rows once, in first-seen order.
pub(crate) fn distinct_users(rows: Vec<(i64, i64)>) -> Vec<(AppId, UserId)> {
    let mut seen = std::collections::HashSet::new();
    rows.into_iter()
        .filter(|r| seen.insert(*r))
        .filter_map(|(a, u)| Some((AppId::new(a).ok()?, UserId::new(u).ok()?)))
        .collect()
}
