//! [`OfflineStore`] on PostgreSQL.

use async_trait::async_trait;
use confab_core::clock::Millis;
use confab_core::{AppId, Result, UserId};

use super::{db, PgStore};
use crate::offline::*;

#[async_trait]
impl OfflineStore for PgStore {
    async fn push_offline_many(
        &self,
        app: AppId,
        user: UserId,
        stanzas: &[(&str, Millis)],
        max_per_user: u32,
    ) -> Result<usize> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        // Pushes for one user queue on the user's row, so two nodes cannot both see room for
        // the last slot. (The rows' foreign key takes a KEY SHARE lock, which this does not
        // block.) The count is a statement of its own: its snapshot is taken once the lock is
        // held, so it sees what the previous holder committed.
        sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE")
            .bind(user.get())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM offline_messages WHERE app_id = $1 AND user_id = $2",
        )
        .bind(app.get())
        .bind(user.get())
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        let room = (i64::from(max_per_user) - waiting).max(0) as usize;
        let fitting = &stanzas[..stanzas.len().min(room)];
        if !fitting.is_empty() {
            let (texts, times): (Vec<&str>, Vec<Millis>) = fitting.iter().copied().unzip();
            // One statement for the batch, rows in order (ids follow WITH ORDINALITY).
            sqlx::query(
                "INSERT INTO offline_messages (app_id, user_id, stanza, created_at) \
                 SELECT $1, $2, s, t FROM UNNEST($3::text[], $4::bigint[]) WITH ORDINALITY AS v(s, t, n) \
                 ORDER BY n",
            )
            .bind(app.get())
            .bind(user.get())
            .bind(&texts)
            .bind(&times)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(fitting.len())
    }

    async fn claim_offline(
        &self,
        app: AppId,
        user: UserId,
        claim: &str,
    ) -> Result<Vec<OfflineMessage>> {
        // One atomic UPDATE: a concurrent claim waits on the rows, then finds them claimed.
        // In the order the messages were sent: a session that ended stores what it could not
        // deliver with the time it was queued, after newer messages may have been stored.
        let rows: Vec<(i64, String, i64)> = sqlx::query_as(
            "WITH c AS (UPDATE offline_messages SET claimed_by = $3 \
                 WHERE app_id = $1 AND user_id = $2 AND claimed_by IS NULL \
                 RETURNING id, stanza, created_at) \
             SELECT id, stanza, created_at FROM c ORDER BY created_at, id",
        )
        .bind(app.get())
        .bind(user.get())
        .bind(claim)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows
            .into_iter()
            .map(|(id, stanza, created_at)| OfflineMessage {
                id,
                stanza,
                created_at,
            })
            .collect())
    }

    async fn delete_offline(
        &self,
        app: AppId,
        user: UserId,
        claim: &str,
        ids: &[i64],
    ) -> Result<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let done = sqlx::query(
            "DELETE FROM offline_messages WHERE app_id = $1 AND user_id = $2 AND claimed_by = $3 \
             AND id = ANY($4)",
        )
        .bind(app.get())
        .bind(user.get())
        .bind(claim)
        .bind(ids)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected())
    }

    async fn release_offline(&self, app: AppId, user: UserId, claim: &str) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE offline_messages SET claimed_by = NULL \
             WHERE app_id = $1 AND user_id = $2 AND claimed_by = $3",
        )
        .bind(app.get())
        .bind(user.get())
        .bind(claim)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected())
    }

    async fn release_all_offline(&self) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE offline_messages SET claimed_by = NULL WHERE claimed_by IS NOT NULL",
        )
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected())
    }

    async fn release_offline_claims_except(&self, live: &[&str]) -> Result<Vec<(AppId, UserId)>> {
        // A claim without a node part (an older format) belongs to no live node.
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "UPDATE offline_messages SET claimed_by = NULL \
             WHERE claimed_by IS NOT NULL \
               AND (strpos(claimed_by, ':') = 0 \
                    OR split_part(claimed_by, ':', 1) <> ALL($1)) \
             RETURNING app_id, user_id",
        )
        .bind(live)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(distinct_users(rows))
    }

    async fn release_offline_claims_of(&self, node: &str) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE offline_messages SET claimed_by = NULL \
             WHERE claimed_by IS NOT NULL AND strpos(claimed_by, ':') > 0 \
               AND split_part(claimed_by, ':', 1) = $1",
        )
        .bind(node)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected())
    }
}
