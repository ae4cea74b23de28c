//! [`OfflineStore`] on SQLite.

use async_trait::async_trait;
use confab_core::clock::Millis;
use confab_core::{AppId, Error, Result, UserId};
use sqlx::{QueryBuilder, Sqlite};

use super::SqliteStore;
use crate::offline::*;

#[async_trait]
impl OfflineStore for SqliteStore {
    async fn push_offline_many(
        &self,
        app: AppId,
        user: UserId,
        stanzas: &[(&str, Millis)],
        max_per_user: u32,
    ) -> Result<usize> {
        let _write = self.write.lock().await;
        // A failed transaction (a full disk) closes its connection (see `WriteConn`).
        let mut conn = self.write_conn().await?;
        let mut tx = conn.begin().await.map_err(Error::internal)?;
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM offline_messages WHERE app_id = ? AND user_id = ?",
        )
        .bind(app.get())
        .bind(user.get())
        .fetch_one(&mut *tx)
        .await
        .map_err(Error::internal)?;
        let room = (i64::from(max_per_user) - waiting).max(0) as usize;
        let fitting = &stanzas[..stanzas.len().min(room)];
        // 4 values a row: 1,000 rows stay far below SQLite's limit of bound values.
        for chunk in fitting.chunks(1000) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO offline_messages (app_id, user_id, stanza, created_at) ",
            );
            q.push_values(chunk, |mut b, (stanza, at)| {
                b.push_bind(app.get())
                    .push_bind(user.get())
                    .push_bind(*stanza)
                    .push_bind(*at);
            });
            // Kept prepared only in the common one-row form: the text differs with every size.
            q.build()
                .persistent(chunk.len() == 1)
                .execute(&mut *tx)
                .await
                .map_err(Error::internal)?;
        }
        tx.commit().await.map_err(Error::internal)?;
        conn.committed();
        Ok(fitting.len())
    }

    async fn claim_offline(
        &self,
        app: AppId,
        user: UserId,
        claim: &str,
    ) -> Result<Vec<OfflineMessage>> {
        // Most logins find nothing queued: a read answers that without a write transaction.
        // Read in place (see `sqlite_inline`): it runs at every initial presence.
        let waiting = self.reads.run(|c| {
            c.prepare_cached(
                "SELECT 1 FROM offline_messages
                 WHERE app_id = ?1 AND user_id = ?2 AND claimed_by IS NULL LIMIT 1",
            )?
            .exists([app.get(), user.get()])
        })?;
        if !waiting {
            return Ok(Vec::new());
        }
        let _write = self.write.lock().await;
        let mut rows: Vec<(i64, String, i64)> = sqlx::query_as(
            "UPDATE offline_messages SET claimed_by = ?3
             WHERE app_id = ?1 AND user_id = ?2 AND claimed_by IS NULL
             RETURNING id, stanza, created_at",
        )
        .bind(app.get())
        .bind(user.get())
        .bind(claim)
        .fetch_all(self.pool())
        .await
        .map_err(Error::internal)?;
        // In the order the messages were sent: a session that ended stores what it could not
        // deliver with the time it was queued, after newer messages may have been stored.
        rows.sort_by_key(|r| (r.2, r.0));
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
        let mut q = QueryBuilder::<Sqlite>::new("DELETE FROM offline_messages WHERE app_id = ");
        q.push_bind(app.get())
            .push(" AND user_id = ")
            .push_bind(user.get())
            .push(" AND claimed_by = ")
            .push_bind(claim)
            .push(" AND id IN (");
        let mut list = q.separated(", ");
        for id in ids {
            list.push_bind(*id);
        }
        q.push(")");
        let _write = self.write.lock().await;
        let done = q
            .build()
            .execute(self.pool())
            .await
            .map_err(Error::internal)?;
        Ok(done.rows_affected())
    }

    async fn release_offline(&self, app: AppId, user: UserId, claim: &str) -> Result<u64> {
        let _write = self.write.lock().await;
        let done = sqlx::query(
            "UPDATE offline_messages SET claimed_by = NULL
             WHERE app_id = ? AND user_id = ? AND claimed_by = ?",
        )
        .bind(app.get())
        .bind(user.get())
        .bind(claim)
        .execute(self.pool())
        .await
        .map_err(Error::internal)?;
        Ok(done.rows_affected())
    }

    async fn release_all_offline(&self) -> Result<u64> {
        let _write = self.write.lock().await;
        let done = sqlx::query(
            "UPDATE offline_messages SET claimed_by = NULL WHERE claimed_by IS NOT NULL",
        )
        .execute(self.pool())
        .await
        .map_err(Error::internal)?;
        Ok(done.rows_affected())
    }

    async fn release_offline_claims_except(&self, live: &[&str]) -> Result<Vec<(AppId, UserId)>> {
        let live = serde_json::to_string(live).map_err(Error::internal)?;
        let _write = self.write.lock().await;
        // A claim without a node part (an older format) belongs to no live node.
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "UPDATE offline_messages SET claimed_by = NULL
             WHERE claimed_by IS NOT NULL
               AND substr(claimed_by, 1, instr(claimed_by, ':') - 1)
                   NOT IN (SELECT value FROM json_each(?1))
             RETURNING app_id, user_id",
        )
        .bind(live)
        .fetch_all(self.pool())
        .await
        .map_err(Error::internal)?;
        Ok(distinct_users(rows))
    }

    async fn release_offline_claims_of(&self, node: &str) -> Result<u64> {
        let _write = self.write.lock().await;
        let done = sqlx::query(
            "UPDATE offline_messages SET claimed_by = NULL
             WHERE claimed_by IS NOT NULL
               AND substr(claimed_by, 1, instr(claimed_by, ':') - 1) = ?1",
        )
        .bind(node)
        .execute(self.pool())
        .await
        .map_err(Error::internal)?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::privacy::tests::account;

    async fn queue(s: &SqliteStore, app: AppId, user: UserId, n: usize) {
        for i in 0..n {
            let stanza = format!("<message id='m{i}'/>");
            assert!(s.push_offline(app, user, &stanza, 1, 100).await.unwrap());
        }
    }

    fn ids(rows: &[OfflineMessage]) -> Vec<i64> {
        rows.iter().map(|m| m.id).collect()
    }

    #[tokio::test]
    async fn claimed_rows_are_hidden_until_released_and_gone_once_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path()).await.unwrap();
        let (app, user) = account(&s, 1).await;
        queue(&s, app, user, 3).await;

        let a = s.claim_offline(app, user, "a").await.unwrap();
        assert_eq!(a.len(), 3);
        assert!(a.windows(2).all(|w| w[0].id < w[1].id), "oldest first");
        assert!(s.claim_offline(app, user, "b").await.unwrap().is_empty());

        // Another claim cannot delete a's rows; a deletes one of them.
        assert_eq!(s.delete_offline(app, user, "b", &ids(&a)).await.unwrap(), 0);
        assert_eq!(
            s.delete_offline(app, user, "a", &[a[0].id]).await.unwrap(),
            1
        );
        assert_eq!(s.release_offline(app, user, "a").await.unwrap(), 2);
        let b = s.claim_offline(app, user, "b").await.unwrap();
        assert_eq!(ids(&b), ids(&a[1..]));

        // A restart releases every claim.
        assert_eq!(s.release_all_offline().await.unwrap(), 2);
        assert_eq!(s.claim_offline(app, user, "c").await.unwrap().len(), 2);
        // Claimed rows still count against the per-user limit.
        assert!(!s.push_offline(app, user, "<x/>", 1, 2).await.unwrap());
    }

    #[tokio::test]
    async fn concurrent_claims_never_share_a_row() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path()).await.unwrap();
        let (app, user) = account(&s, 1).await;
        queue(&s, app, user, 20).await;
        let claims = (0..8).map(|i| {
            let s = s.clone();
            tokio::spawn(async move { s.claim_offline(app, user, &format!("s{i}")).await })
        });
        let mut seen = Vec::new();
        for c in claims {
            seen.extend(ids(&c.await.unwrap().unwrap()));
        }
        seen.sort_unstable();
        let before = seen.len();
        seen.dedup();
        assert_eq!((before, seen.len()), (20, 20));
    }
}
