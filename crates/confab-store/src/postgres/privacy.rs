//! [`PrivacyStore`] on PostgreSQL. Lists are stored as SQLite stores them (a JSON array of items).

use std::collections::HashMap;

use async_trait::async_trait;
use confab_core::clock::Millis;
use confab_core::{AppId, Result, UserId};

use super::{db, PgStore};
use crate::privacy::*;
use crate::sqlite::privacy::{items_from_json, items_to_json, lists_by_user};

#[async_trait]
impl PrivacyStore for PgStore {
    async fn put_privacy_list(
        &self,
        app: AppId,
        user: UserId,
        name: &str,
        items: &[PrivacyItem],
        now: Millis,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO privacy_lists (app_id, user_id, name, items, updated_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (app_id, user_id, name) DO UPDATE SET items = $4, updated_at = $5",
        )
        .bind(app.get())
        .bind(user.get())
        .bind(name)
        .bind(items_to_json(items))
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn privacy_list(
        &self,
        app: AppId,
        user: UserId,
        name: &str,
    ) -> Result<Option<Vec<PrivacyItem>>> {
        let items: Option<String> = sqlx::query_scalar(
            "SELECT items FROM privacy_lists WHERE app_id = $1 AND user_id = $2 AND name = $3",
        )
        .bind(app.get())
        .bind(user.get())
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        items.map(|s| items_from_json(&s)).transpose()
    }

    async fn privacy_names(&self, app: AppId, user: UserId) -> Result<PrivacyNames> {
        let rows: Vec<(String, bool)> = sqlx::query_as(
            "SELECT name, is_default FROM privacy_lists WHERE app_id = $1 AND user_id = $2 \
             ORDER BY name",
        )
        .bind(app.get())
        .bind(user.get())
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let default = rows.iter().find(|r| r.1).map(|r| r.0.clone());
        Ok(PrivacyNames {
            names: rows.into_iter().map(|r| r.0).collect(),
            default,
        })
    }

    async fn delete_privacy_list(&self, app: AppId, user: UserId, name: &str) -> Result<bool> {
        let done = sqlx::query(
            "DELETE FROM privacy_lists WHERE app_id = $1 AND user_id = $2 AND name = $3",
        )
        .bind(app.get())
        .bind(user.get())
        .bind(name)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_default_privacy_list(
        &self,
        app: AppId,
        user: UserId,
        name: Option<&str>,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        // Default changes of one user queue on the user's row: two at once would otherwise both
        // unset the old default and then both set theirs, against the unique index.
        sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE")
            .bind(user.get())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        if let Some(name) = name {
            // Locked, so the list cannot go between this check and the update.
            let exists: Option<i32> = sqlx::query_scalar(
                "SELECT 1 FROM privacy_lists WHERE app_id = $1 AND user_id = $2 AND name = $3 \
                 FOR UPDATE",
            )
            .bind(app.get())
            .bind(user.get())
            .bind(name)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
            if exists.is_none() {
                return Ok(false);
            }
        }
        // Unset first: the partial unique index allows one default at a time.
        sqlx::query(
            "UPDATE privacy_lists SET is_default = FALSE \
             WHERE app_id = $1 AND user_id = $2 AND is_default",
        )
        .bind(app.get())
        .bind(user.get())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if let Some(name) = name {
            sqlx::query(
                "UPDATE privacy_lists SET is_default = TRUE \
                 WHERE app_id = $1 AND user_id = $2 AND name = $3",
            )
            .bind(app.get())
            .bind(user.get())
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn default_privacy_list(
        &self,
        app: AppId,
        user: UserId,
    ) -> Result<Option<Vec<PrivacyItem>>> {
        let items: Option<String> = sqlx::query_scalar(
            "SELECT items FROM privacy_lists WHERE app_id = $1 AND user_id = $2 AND is_default",
        )
        .bind(app.get())
        .bind(user.get())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        items.map(|s| items_from_json(&s)).transpose()
    }

    async fn default_privacy_lists(
        &self,
        app: AppId,
        users: &[UserId],
    ) -> Result<HashMap<UserId, Vec<PrivacyItem>>> {
        let ids: Vec<i64> = users.iter().map(|u| u.get()).collect();
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT user_id, items FROM privacy_lists
             WHERE app_id = $1 AND user_id = ANY($2) AND is_default",
        )
        .bind(app.get())
        .bind(&ids)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        lists_by_user(rows)
    }
}
