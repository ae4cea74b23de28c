//! [`RosterStore`] on PostgreSQL.

use async_trait::async_trait;
use confab_core::clock::Millis;
use confab_core::{AppId, Error, Result, UserId};

use super::{db, PgStore};
use crate::roster::*;

type Row = (i64, Option<String>, String, String, bool, bool, bool);

fn from_row(r: Row) -> Result<RosterItem> {
    Ok(RosterItem {
        contact: UserId::new(r.0)?,
        name: r.1,
        groups: serde_json::from_str(&r.2).unwrap_or_default(),
        subscription: Subscription::parse(&r.3),
        ask: r.4,
        pending_in: r.5,
        in_roster: r.6,
    })
}

const COLUMNS: &str = "contact_id, name, groups, subscription, ask, pending_in, in_roster";

#[async_trait]
impl RosterStore for PgStore {
    async fn roster(&self, app: AppId, user: UserId) -> Result<Vec<RosterItem>> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM roster_items WHERE app_id = $1 AND user_id = $2 ORDER BY contact_id"
        ))
        .bind(app.get())
        .bind(user.get())
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.into_iter().map(from_row).collect()
    }

    async fn roster_item(
        &self,
        app: AppId,
        user: UserId,
        contact: UserId,
    ) -> Result<Option<RosterItem>> {
        let row: Option<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM roster_items WHERE app_id = $1 AND user_id = $2 AND contact_id = $3"
        ))
        .bind(app.get())
        .bind(user.get())
        .bind(contact.get())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.map(from_row).transpose()
    }

    async fn put_roster_item(
        &self,
        app: AppId,
        user: UserId,
        item: &RosterItem,
        max_contacts: u32,
        now: Millis,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        if item.in_roster {
            // Writes to one user's roster queue on the user's row, so two nodes cannot both
            // see room for the last contact. The count is a statement of its own: its snapshot
            // is taken once the lock is held.
            sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE")
                .bind(user.get())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
            let counts: Option<(i64, bool)> = sqlx::query_as(
                "SELECT COUNT(*), COALESCE(bool_or(contact_id = $3), FALSE) FROM roster_items \
                 WHERE app_id = $1 AND user_id = $2 AND in_roster",
            )
            .bind(app.get())
            .bind(user.get())
            .bind(item.contact.get())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
            let (visible, this_visible) = counts.unwrap_or((0, false));
            if !this_visible && visible >= i64::from(max_contacts) {
                return Ok(false);
            }
        }
        let groups = serde_json::to_string(&item.groups).map_err(Error::internal)?;
        sqlx::query(
            "INSERT INTO roster_items (app_id, user_id, contact_id, name, groups, subscription, ask, \
                 pending_in, in_roster, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (app_id, user_id, contact_id) DO UPDATE SET \
                name = $4, groups = $5, subscription = $6, ask = $7, pending_in = $8, \
                in_roster = $9, updated_at = $10",
        )
        .bind(app.get())
        .bind(user.get())
        .bind(item.contact.get())
        .bind(item.name.as_deref())
        .bind(groups)
        .bind(item.subscription.as_str())
        .bind(item.ask)
        .bind(item.pending_in)
        .bind(item.in_roster)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn delete_roster_item(&self, app: AppId, user: UserId, contact: UserId) -> Result<bool> {
        let done = sqlx::query(
            "DELETE FROM roster_items WHERE app_id = $1 AND user_id = $2 AND contact_id = $3",
        )
        .bind(app.get())
        .bind(user.get())
        .bind(contact.get())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }
}
