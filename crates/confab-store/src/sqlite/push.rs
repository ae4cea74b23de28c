//! [`PushStore`] on SQLite.

use async_trait::async_trait;
use confab_core::clock::Millis;
use confab_core::{AppId, Error, ErrorKind, ObjectId, Result, UserId};
use sqlx::{QueryBuilder, Sqlite};

use super::{db, SqliteStore};
use crate::push::*;

const COLUMNS: &str = "id, app_id, user_id, channel, environment, platform, udid, token, \
     web_auth, web_p256dh, bundle_identifier, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct SubscriptionRow {
    id: i64,
    app_id: i64,
    user_id: i64,
    channel: String,
    environment: String,
    platform: String,
    udid: String,
    token: String,
    web_auth: Option<String>,
    web_p256dh: Option<String>,
    bundle_identifier: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<SubscriptionRow> for PushSubscription {
    type Error = Error;
    fn try_from(r: SubscriptionRow) -> Result<Self> {
        Ok(PushSubscription {
            id: r.id,
            app_id: AppId::new(r.app_id)?,
            user_id: UserId::new(r.user_id)?,
            channel: r.channel,
            environment: r.environment,
            platform: r.platform,
            udid: r.udid,
            token: r.token,
            web_auth: r.web_auth,
            web_p256dh: r.web_p256dh,
            bundle_identifier: r.bundle_identifier,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

fn all(rows: Vec<SubscriptionRow>) -> Result<Vec<PushSubscription>> {
    rows.into_iter().map(PushSubscription::try_from).collect()
}

/// An outbox row joined with its subscription (all subscription columns NULL for the webhook).
#[derive(sqlx::FromRow)]
struct OutboxRow {
    outbox_id: i64,
    outbox_app_id: i64,
    outbox_user_id: i64,
    payload: String,
    attempts: i64,
    #[sqlx(flatten)]
    sub: NullableSubscriptionRow,
}

#[derive(sqlx::FromRow)]
struct NullableSubscriptionRow {
    id: Option<i64>,
    app_id: Option<i64>,
    user_id: Option<i64>,
    channel: Option<String>,
    environment: Option<String>,
    platform: Option<String>,
    udid: Option<String>,
    token: Option<String>,
    web_auth: Option<String>,
    web_p256dh: Option<String>,
    bundle_identifier: Option<String>,
    created_at: Option<i64>,
    updated_at: Option<i64>,
}

impl NullableSubscriptionRow {
    fn into_subscription(self) -> Result<Option<PushSubscription>> {
        let Some(id) = self.id else { return Ok(None) };
        let missing = || Error::new(ErrorKind::Internal, "incomplete subscription row");
        SubscriptionRow {
            id,
            app_id: self.app_id.ok_or_else(missing)?,
            user_id: self.user_id.ok_or_else(missing)?,
            channel: self.channel.ok_or_else(missing)?,
            environment: self.environment.ok_or_else(missing)?,
            platform: self.platform.ok_or_else(missing)?,
            udid: self.udid.ok_or_else(missing)?,
            token: self.token.ok_or_else(missing)?,
            web_auth: self.web_auth,
            web_p256dh: self.web_p256dh,
            bundle_identifier: self.bundle_identifier,
            created_at: self.created_at.ok_or_else(missing)?,
            updated_at: self.updated_at.ok_or_else(missing)?,
        }
        .try_into()
        .map(Some)
    }
}

impl SqliteStore {
    /// Moves a notification's due time; `attempts` is the SQL of its new attempt count.
    async fn reschedule_push(&self, id: i64, due_at: Millis, attempts: &str) -> Result<()> {
        let _write = self.write.lock().await;
        let sql = format!("UPDATE push_outbox SET attempts = {attempts}, due_at = ? WHERE id = ?");
        sqlx::query(&sql)
            .bind(due_at)
            .bind(id)
            .execute(self.pool())
            .await
            .map_err(db)?;
        Ok(())
    }
}

#[async_trait]
impl PushStore for SqliteStore {
    async fn upsert_subscription(&self, s: NewSubscription) -> Result<PushSubscription> {
        let _write = self.write.lock().await;
        let sql = format!(
            "INSERT INTO push_subscriptions (app_id, user_id, channel, environment, platform, udid,
                 token, web_auth, web_p256dh, bundle_identifier, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (app_id, user_id, udid, channel) DO UPDATE SET
                 environment = excluded.environment, platform = excluded.platform,
                 token = excluded.token, web_auth = excluded.web_auth,
                 web_p256dh = excluded.web_p256dh, bundle_identifier = excluded.bundle_identifier,
                 updated_at = excluded.updated_at
             RETURNING {COLUMNS}"
        );
        let row: SubscriptionRow = sqlx::query_as(&sql)
            .bind(s.app_id.get())
            .bind(s.user_id.get())
            .bind(&s.channel)
            .bind(&s.environment)
            .bind(&s.platform)
            .bind(&s.udid)
            .bind(&s.token)
            .bind(&s.web_auth)
            .bind(&s.web_p256dh)
            .bind(&s.bundle_identifier)
            .bind(s.now)
            .bind(s.now)
            .fetch_one(self.pool())
            .await
            .map_err(db)?;
        row.try_into()
    }

    async fn subscriptions(&self, app: AppId, user: UserId) -> Result<Vec<PushSubscription>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM push_subscriptions WHERE app_id = ? AND user_id = ? ORDER BY id"
        );
        let rows = sqlx::query_as(&sql)
            .bind(app.get())
            .bind(user.get())
            .fetch_all(self.pool())
            .await
            .map_err(db)?;
        all(rows)
    }

    async fn subscriptions_of(
        &self,
        app: AppId,
        users: &[UserId],
    ) -> Result<Vec<PushSubscription>> {
        let mut found = Vec::new();
        for chunk in users.chunks(500) {
            let mut q = QueryBuilder::<Sqlite>::new(format!(
                "SELECT {COLUMNS} FROM push_subscriptions WHERE app_id = "
            ));
            q.push_bind(app.get()).push(" AND user_id IN (");
            let mut ids = q.separated(", ");
            for u in chunk {
                ids.push_bind(u.get());
            }
            q.push(") ORDER BY id");
            let rows: Vec<SubscriptionRow> = q
                .build_query_as()
                .fetch_all(self.pool())
                .await
                .map_err(db)?;
            found.extend(all(rows)?);
        }
        Ok(found)
    }

    async fn delete_subscription(&self, app: AppId, user: UserId, id: i64) -> Result<bool> {
        let _write = self.write.lock().await;
        let done = sqlx::query(
            "DELETE FROM push_subscriptions WHERE app_id = ? AND user_id = ? AND id = ?",
        )
        .bind(app.get())
        .bind(user.get())
        .bind(id)
        .execute(self.pool())
        .await
        .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn drop_subscription(&self, id: i64) -> Result<()> {
        let _write = self.write.lock().await;
        sqlx::query("DELETE FROM push_subscriptions WHERE id = ?")
            .bind(id)
            .execute(self.pool())
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn silenced(&self, pairs: &[(ObjectId, UserId)]) -> Result<Vec<(ObjectId, UserId)>> {
        let mut silenced = Vec::new();
        // 2 values a pair: 400 pairs stay far below SQLite's limit of bound values.
        for chunk in pairs.chunks(400) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "SELECT dialog_id, user_id FROM dialog_members \
                 WHERE (notifications = 0 OR muted = 1) AND (dialog_id, user_id) IN (VALUES ",
            );
            let mut values = q.separated(", ");
            for (dialog, user) in chunk {
                values
                    .push("(")
                    .push_bind_unseparated(dialog.to_string())
                    .push_unseparated(", ")
                    .push_bind_unseparated(user.get())
                    .push_unseparated(")");
            }
            q.push(")");
            let rows: Vec<(String, i64)> = q
                .build_query_as()
                .fetch_all(self.pool())
                .await
                .map_err(db)?;
            for (dialog, user) in rows {
                let dialog = dialog.parse().map_err(|_| {
                    Error::new(ErrorKind::Internal, "a stored dialog id is malformed")
                })?;
                silenced.push((dialog, UserId::new(user)?));
            }
        }
        Ok(silenced)
    }

    async fn enqueue_pushes(&self, pushes: &[NewPush], now: Millis) -> Result<()> {
        if pushes.is_empty() {
            return Ok(());
        }
        let _write = self.write.lock().await;
        // A failed transaction (a full disk) closes its connection (see `WriteConn`).
        let mut conn = self.write_conn().await?;
        let mut tx = conn.begin().await.map_err(Error::internal)?;
        // 6 values a row: 500 rows stay far below SQLite's limit of bound values.
        for chunk in pushes.chunks(500) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO push_outbox (app_id, user_id, subscription_id, payload, due_at, \
                 created_at) ",
            );
            q.push_values(chunk, |mut b, p| {
                b.push_bind(p.app_id.get())
                    .push_bind(p.user_id.get())
                    .push_bind(p.subscription_id)
                    .push_bind(&p.payload)
                    .push_bind(p.due_at)
                    .push_bind(now);
            });
            q.build()
                .persistent(chunk.len() == 1)
                .execute(&mut *tx)
                .await
                .map_err(Error::internal)?;
        }
        tx.commit().await.map_err(Error::internal)?;
        conn.committed();
        Ok(())
    }

    async fn claim_pushes(
        &self,
        now: Millis,
        lease_until: Millis,
        limit: u32,
    ) -> Result<Vec<OutboxPush>> {
        let _write = self.write.lock().await;
        let mut conn = self.write_conn().await?;
        let mut tx = conn.begin().await.map_err(Error::internal)?;
        let ids: Vec<i64> = sqlx::query_scalar(
            "UPDATE push_outbox SET due_at = ? WHERE id IN
                 (SELECT id FROM push_outbox WHERE due_at <= ? ORDER BY due_at, id LIMIT ?)
             RETURNING id",
        )
        .bind(lease_until)
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(Error::internal)?;
        let mut claimed = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let mut q = QueryBuilder::<Sqlite>::new(format!(
                "SELECT o.id AS outbox_id, o.app_id AS outbox_app_id, o.user_id AS outbox_user_id,
                     o.payload, o.attempts, {}
                 FROM push_outbox o LEFT JOIN push_subscriptions s ON s.id = o.subscription_id
                 WHERE o.id IN (",
                COLUMNS
                    .split(", ")
                    .map(|c| format!("s.{c}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            let mut sep = q.separated(", ");
            for id in chunk {
                sep.push_bind(*id);
            }
            q.push(") ORDER BY o.id");
            let rows: Vec<OutboxRow> = q
                .build_query_as()
                .fetch_all(&mut *tx)
                .await
                .map_err(Error::internal)?;
            for r in rows {
                claimed.push(OutboxPush {
                    id: r.outbox_id,
                    app_id: AppId::new(r.outbox_app_id)?,
                    user_id: UserId::new(r.outbox_user_id)?,
                    subscription: r.sub.into_subscription()?,
                    payload: r.payload,
                    attempts: u32::try_from(r.attempts).unwrap_or(u32::MAX),
                });
            }
        }
        tx.commit().await.map_err(Error::internal)?;
        conn.committed();
        Ok(claimed)
    }

    async fn finish_pushes(&self, ids: &[i64]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let _write = self.write.lock().await;
        for chunk in ids.chunks(500) {
            let mut q = QueryBuilder::<Sqlite>::new("DELETE FROM push_outbox WHERE id IN (");
            let mut sep = q.separated(", ");
            for id in chunk {
                sep.push_bind(*id);
            }
            q.push(")");
            q.build()
                .persistent(false)
                .execute(self.pool())
                .await
                .map_err(db)?;
        }
        Ok(())
    }

    async fn repeat_push(&self, id: i64, due_at: Millis) -> Result<()> {
        self.reschedule_push(id, due_at, "0").await
    }

    async fn retry_push(&self, id: i64, due_at: Millis) -> Result<()> {
        self.reschedule_push(id, due_at, "attempts + 1").await
    }

    async fn next_push_due(&self) -> Result<Option<Millis>> {
        sqlx::query_scalar("SELECT MIN(due_at) FROM push_outbox")
            .fetch_one(self.pool())
            .await
            .map_err(db)
    }
}
