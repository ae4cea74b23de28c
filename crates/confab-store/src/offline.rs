//! The offline message queue: stanzas kept for users who are not online, handed out once.

use async_trait::async_trait;
use confab_core::clock::Millis;
use confab_core::{AppId, Error, Result, UserId};

use crate::sqlite::SqliteStore;

/// A stored stanza waiting for its recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineMessage {
    pub id: i64,
    pub stanza: String,
    pub created_at: Millis,
}

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
    ) -> Result<bool>;

    /// Removes and returns everything queued for `user`, oldest first, in one atomic step, so two
    /// sessions logging in at once never both receive a message.
    async fn take_offline(&self, app: AppId, user: UserId) -> Result<Vec<OfflineMessage>>;
}

#[async_trait]
impl OfflineStore for SqliteStore {
    async fn push_offline(
        &self,
        app: AppId,
        user: UserId,
        stanza: &str,
        now: Millis,
        max_per_user: u32,
    ) -> Result<bool> {
        let _write = self.write.lock().await;
        let done = sqlx::query(
            "INSERT INTO offline_messages (app_id, user_id, stanza, created_at)
             SELECT ?1, ?2, ?3, ?4
             WHERE (SELECT COUNT(*) FROM offline_messages WHERE app_id = ?1 AND user_id = ?2) < ?5",
        )
        .bind(app.get())
        .bind(user.get())
        .bind(stanza)
        .bind(now)
        .bind(i64::from(max_per_user))
        .execute(self.pool())
        .await
        .map_err(Error::internal)?;
        Ok(done.rows_affected() == 1)
    }

    async fn take_offline(&self, app: AppId, user: UserId) -> Result<Vec<OfflineMessage>> {
        let _write = self.write.lock().await;
        let mut rows: Vec<(i64, String, i64)> = sqlx::query_as(
            "DELETE FROM offline_messages WHERE app_id = ? AND user_id = ?
             RETURNING id, stanza, created_at",
        )
        .bind(app.get())
        .bind(user.get())
        .fetch_all(self.pool())
        .await
        .map_err(Error::internal)?;
        rows.sort_by_key(|r| r.0);
        Ok(rows
            .into_iter()
            .map(|(id, stanza, created_at)| OfflineMessage {
                id,
                stanza,
                created_at,
            })
            .collect())
    }
}
