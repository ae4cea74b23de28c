//! [`RosterStore`] on SQLite.

use async_trait::async_trait;
use confab_core::clock::Millis;
use confab_core::{AppId, Error, Result, UserId};

use super::SqliteStore;
use crate::roster::*;

type Row = (i64, Option<String>, String, String, i64, i64, i64);

fn from_row(r: Row) -> Result<RosterItem> {
    Ok(RosterItem {
        contact: UserId::new(r.0)?,
        name: r.1,
        groups: serde_json::from_str(&r.2).unwrap_or_default(),
        subscription: Subscription::parse(&r.3),
        ask: r.4 != 0,
        pending_in: r.5 != 0,
        in_roster: r.6 != 0,
    })
}

const COLUMNS: &str = "contact_id, name, groups, subscription, ask, pending_in, in_roster";

#[async_trait]
impl RosterStore for SqliteStore {
    async fn roster(&self, app: AppId, user: UserId) -> Result<Vec<RosterItem>> {
        // Read at every initial presence and session end: in place (see `sqlite_inline`).
        let rows: Vec<Row> = self.reads.run(|c| {
            let mut q = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM roster_items WHERE app_id = ?1 AND user_id = ?2 ORDER BY contact_id"
            ))?;
            let rows = q.query_map([app.get(), user.get()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
            })?;
            rows.collect()
        })?;
        rows.into_iter().map(from_row).collect()
    }

    async fn roster_item(
        &self,
        app: AppId,
        user: UserId,
        contact: UserId,
    ) -> Result<Option<RosterItem>> {
        let row: Option<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM roster_items WHERE app_id = ? AND user_id = ? AND contact_id = ?"
        ))
        .bind(app.get())
        .bind(user.get())
        .bind(contact.get())
        .fetch_optional(self.pool())
        .await
        .map_err(Error::internal)?;
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
        let _write = self.write.lock().await;
        let mut conn = self.write_conn().await?;
        let mut tx = conn.begin().await.map_err(Error::internal)?;
        if item.in_roster {
            let (visible, this_visible): (i64, i64) = sqlx::query_as(
                "SELECT COUNT(*), COALESCE(SUM(contact_id = ?3), 0) FROM roster_items
                 WHERE app_id = ?1 AND user_id = ?2 AND in_roster = 1",
            )
            .bind(app.get())
            .bind(user.get())
            .bind(item.contact.get())
            .fetch_one(&mut *tx)
            .await
            .map_err(Error::internal)?;
            if this_visible == 0 && visible >= i64::from(max_contacts) {
                return Ok(false);
            }
        }
        let groups = serde_json::to_string(&item.groups).map_err(Error::internal)?;
        sqlx::query(
            "INSERT INTO roster_items (app_id, user_id, contact_id, name, groups, subscription, ask,
                                       pending_in, in_roster, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (app_id, user_id, contact_id) DO UPDATE SET
                name = ?4, groups = ?5, subscription = ?6, ask = ?7, pending_in = ?8,
                in_roster = ?9, updated_at = ?10",
        )
        .bind(app.get())
        .bind(user.get())
        .bind(item.contact.get())
        .bind(item.name.as_deref())
        .bind(groups)
        .bind(item.subscription.as_str())
        .bind(i64::from(item.ask))
        .bind(i64::from(item.pending_in))
        .bind(i64::from(item.in_roster))
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(Error::internal)?;
        tx.commit().await.map_err(Error::internal)?;
        conn.committed();
        Ok(true)
    }

    async fn delete_roster_item(&self, app: AppId, user: UserId, contact: UserId) -> Result<bool> {
        let _write = self.write.lock().await;
        let done = sqlx::query(
            "DELETE FROM roster_items WHERE app_id = ? AND user_id = ? AND contact_id = ?",
        )
        .bind(app.get())
        .bind(user.get())
        .bind(contact.get())
        .execute(self.pool())
        .await
        .map_err(Error::internal)?;
        Ok(done.rows_affected() > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::privacy::tests::account;

    #[tokio::test]
    async fn rows_round_trip_and_limit() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path()).await.unwrap();
        let (app, a) = account(&s, 1).await;
        let (_, b) = account(&s, 2).await;
        let (_, c) = account(&s, 3).await;
        let mut item = RosterItem::new(b);
        item.name = Some("Bee".into());
        item.groups = vec!["Friends".into()];
        item.subscription = Subscription::To;
        item.ask = true;
        assert!(s.put_roster_item(app, a, &item, 1, 1).await.unwrap());
        // Updating the same contact is not a new one.
        assert!(s.put_roster_item(app, a, &item, 1, 2).await.unwrap());
        // A second visible contact is over the limit of 1; a hidden pending row is not.
        assert!(!s
            .put_roster_item(app, a, &RosterItem::new(c), 1, 3)
            .await
            .unwrap());
        let mut hidden = RosterItem::new(c);
        hidden.in_roster = false;
        hidden.pending_in = true;
        assert!(s.put_roster_item(app, a, &hidden, 1, 3).await.unwrap());
        assert_eq!(s.roster(app, a).await.unwrap(), vec![item.clone(), hidden]);
        assert_eq!(s.roster_item(app, a, b).await.unwrap(), Some(item));
        assert!(s.delete_roster_item(app, a, b).await.unwrap());
        assert_eq!(s.roster_item(app, a, b).await.unwrap(), None);
    }
}
