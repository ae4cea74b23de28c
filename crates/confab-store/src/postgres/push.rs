//! [`PushStore`] on PostgreSQL.

use async_trait::async_trait;
use confab_core::clock::Millis;
use confab_core::{AppId, Error, ErrorKind, ObjectId, Result, UserId};

use super::{db, PgStore};
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

#[async_trait]
impl PushStore for PgStore {
    async fn upsert_subscription(&self, s: NewSubscription) -> Result<PushSubscription> {
        let sql = format!(
            "INSERT INTO push_subscriptions (app_id, user_id, channel, environment, platform, udid, \
                 token, web_auth, web_p256dh, bundle_identifier, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) \
             ON CONFLICT (app_id, user_id, udid, channel) DO UPDATE SET \
                 environment = excluded.environment, platform = excluded.platform, \
                 token = excluded.token, web_auth = excluded.web_auth, \
                 web_p256dh = excluded.web_p256dh, bundle_identifier = excluded.bundle_identifier, \
                 updated_at = excluded.updated_at \
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
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        row.try_into()
    }

    async fn subscriptions(&self, app: AppId, user: UserId) -> Result<Vec<PushSubscription>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM push_subscriptions WHERE app_id = $1 AND user_id = $2 ORDER BY id"
        );
        let rows = sqlx::query_as(&sql)
            .bind(app.get())
            .bind(user.get())
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        all(rows)
    }

    async fn subscriptions_of(
        &self,
        app: AppId,
        users: &[UserId],
    ) -> Result<Vec<PushSubscription>> {
        let ids: Vec<i64> = users.iter().map(|u| u.get()).collect();
        let sql = format!(
            "SELECT {COLUMNS} FROM push_subscriptions WHERE app_id = $1 AND user_id = ANY($2) ORDER BY id"
        );
        let rows = sqlx::query_as(&sql)
            .bind(app.get())
            .bind(&ids)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        all(rows)
    }

    async fn delete_subscription(&self, app: AppId, user: UserId, id: i64) -> Result<bool> {
        let done = sqlx::query(
            "DELETE FROM push_subscriptions WHERE app_id = $1 AND user_id = $2 AND id = $3",
        )
        .bind(app.get())
        .bind(user.get())
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn drop_subscription(&self, id: i64) -> Result<()> {
        sqlx::query("DELETE FROM push_subscriptions WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn silenced(&self, pairs: &[(ObjectId, UserId)]) -> Result<Vec<(ObjectId, UserId)>> {
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        let dialogs: Vec<String> = pairs.iter().map(|(d, _)| d.to_string()).collect();
        let users: Vec<i64> = pairs.iter().map(|(_, u)| u.get()).collect();
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT mb.dialog_id, mb.user_id FROM dialog_members mb \
             JOIN UNNEST($1::text[], $2::bigint[]) AS p(dialog_id, user_id) \
                 ON mb.dialog_id = p.dialog_id AND mb.user_id = p.user_id \
             WHERE NOT mb.notifications OR mb.muted",
        )
        .bind(&dialogs)
        .bind(&users)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.into_iter()
            .map(|(dialog, user)| {
                let dialog = dialog.parse().map_err(|_| {
                    Error::new(ErrorKind::Internal, "a stored dialog id is malformed")
                })?;
                Ok((dialog, UserId::new(user)?))
            })
            .collect()
    }

    async fn enqueue_pushes(&self, pushes: &[NewPush], now: Millis) -> Result<()> {
        if pushes.is_empty() {
            return Ok(());
        }
        let apps: Vec<i64> = pushes.iter().map(|p| p.app_id.get()).collect();
        let users: Vec<i64> = pushes.iter().map(|p| p.user_id.get()).collect();
        let subs: Vec<Option<i64>> = pushes.iter().map(|p| p.subscription_id).collect();
        let payloads: Vec<&str> = pushes.iter().map(|p| p.payload.as_str()).collect();
        let due: Vec<Millis> = pushes.iter().map(|p| p.due_at).collect();
        // One statement for the batch (rows in order).
        sqlx::query(
            "INSERT INTO push_outbox (app_id, user_id, subscription_id, payload, due_at, created_at) \
             SELECT a, u, s, p, d, $6 FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::bigint[]) \
                 WITH ORDINALITY AS v(a, u, s, p, d, n) ORDER BY n",
        )
        .bind(&apps)
        .bind(&users)
        .bind(&subs)
        .bind(&payloads)
        .bind(&due)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn claim_pushes(
        &self,
        now: Millis,
        lease_until: Millis,
        limit: u32,
    ) -> Result<Vec<OutboxPush>> {
        // One statement. SKIP LOCKED: workers on several nodes claim disjoint rows instead of
        // queueing on each other's.
        let rows: Vec<OutboxRow> = sqlx::query_as(&format!(
            "WITH due AS (SELECT id FROM push_outbox WHERE due_at <= $1 ORDER BY due_at, id LIMIT $3 \
                 FOR UPDATE SKIP LOCKED), \
             c AS (UPDATE push_outbox o SET due_at = $2 FROM due WHERE o.id = due.id \
                 RETURNING o.id, o.app_id, o.user_id, o.subscription_id, o.payload, o.attempts) \
             SELECT c.id AS outbox_id, c.app_id AS outbox_app_id, c.user_id AS outbox_user_id, \
                 c.payload, c.attempts, {} \
             FROM c LEFT JOIN push_subscriptions s ON s.id = c.subscription_id ORDER BY c.id",
            COLUMNS
                .split(", ")
                .map(|c| format!("s.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .bind(now)
        .bind(lease_until)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.into_iter()
            .map(|r| {
                Ok(OutboxPush {
                    id: r.outbox_id,
                    app_id: AppId::new(r.outbox_app_id)?,
                    user_id: UserId::new(r.outbox_user_id)?,
                    subscription: r.sub.into_subscription()?,
                    payload: r.payload,
                    attempts: u32::try_from(r.attempts).unwrap_or(u32::MAX),
                })
            })
            .collect()
    }

    async fn finish_pushes(&self, ids: &[i64]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        sqlx::query("DELETE FROM push_outbox WHERE id = ANY($1)")
            .bind(ids)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn repeat_push(&self, id: i64, due_at: Millis) -> Result<()> {
        sqlx::query("UPDATE push_outbox SET attempts = 0, due_at = $1 WHERE id = $2")
            .bind(due_at)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn retry_push(&self, id: i64, due_at: Millis) -> Result<()> {
        sqlx::query("UPDATE push_outbox SET attempts = attempts + 1, due_at = $1 WHERE id = $2")
            .bind(due_at)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn next_push_due(&self) -> Result<Option<Millis>> {
        sqlx::query_scalar("SELECT MIN(due_at) FROM push_outbox")
            .fetch_one(&self.pool)
            .await
            .map_err(db)
    }
}
