//! [`PrivacyStore`] on SQLite.

use std::collections::HashMap;

use async_trait::async_trait;
use confab_core::clock::Millis;
use confab_core::{AppId, Error, Result, UserId};
use serde_json::{json, Value};

use super::SqliteStore;
use crate::privacy::*;

/// The stored form of a list (shared with the PostgreSQL backend).
pub(crate) fn items_to_json(items: &[PrivacyItem]) -> String {
    Value::Array(
        items
            .iter()
            .map(|i| json!({"t": i.kind, "v": i.value, "a": i.allow, "o": i.order, "s": i.stanzas}))
            .collect(),
    )
    .to_string()
}

/// Rows of (user id, items as JSON), keyed by user; rows with an invalid user id are skipped.
pub(crate) fn lists_by_user(rows: Vec<(i64, String)>) -> Result<HashMap<UserId, Vec<PrivacyItem>>> {
    let mut lists = HashMap::with_capacity(rows.len());
    for (user, items) in rows {
        if let Ok(user) = UserId::new(user) {
            lists.insert(user, items_from_json(&items)?);
        }
    }
    Ok(lists)
}

pub(crate) fn items_from_json(s: &str) -> Result<Vec<PrivacyItem>> {
    let v: Value = serde_json::from_str(s).map_err(Error::internal)?;
    let Some(arr) = v.as_array() else {
        return Ok(Vec::new());
    };
    Ok(arr
        .iter()
        .map(|i| PrivacyItem {
            kind: i["t"].as_str().map(str::to_string),
            value: i["v"].as_str().map(str::to_string),
            allow: i["a"].as_bool().unwrap_or(false),
            order: i["o"].as_u64().unwrap_or(0) as u32,
            stanzas: i["s"].as_u64().unwrap_or(0) as u8,
        })
        .collect())
}

#[async_trait]
impl PrivacyStore for SqliteStore {
    async fn put_privacy_list(
        &self,
        app: AppId,
        user: UserId,
        name: &str,
        items: &[PrivacyItem],
        now: Millis,
    ) -> Result<()> {
        let _write = self.write.lock().await;
        sqlx::query(
            "INSERT INTO privacy_lists (app_id, user_id, name, items, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (app_id, user_id, name) DO UPDATE SET items = ?4, updated_at = ?5",
        )
        .bind(app.get())
        .bind(user.get())
        .bind(name)
        .bind(items_to_json(items))
        .bind(now)
        .execute(self.pool())
        .await
        .map_err(Error::internal)?;
        Ok(())
    }

    async fn privacy_list(
        &self,
        app: AppId,
        user: UserId,
        name: &str,
    ) -> Result<Option<Vec<PrivacyItem>>> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT items FROM privacy_lists WHERE app_id = ? AND user_id = ? AND name = ?",
        )
        .bind(app.get())
        .bind(user.get())
        .bind(name)
        .fetch_optional(self.pool())
        .await
        .map_err(Error::internal)?;
        row.map(|(s,)| items_from_json(&s)).transpose()
    }

    async fn privacy_names(&self, app: AppId, user: UserId) -> Result<PrivacyNames> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT name, is_default FROM privacy_lists WHERE app_id = ? AND user_id = ?
             ORDER BY name",
        )
        .bind(app.get())
        .bind(user.get())
        .fetch_all(self.pool())
        .await
        .map_err(Error::internal)?;
        let default = rows.iter().find(|r| r.1 != 0).map(|r| r.0.clone());
        Ok(PrivacyNames {
            names: rows.into_iter().map(|r| r.0).collect(),
            default,
        })
    }

    async fn delete_privacy_list(&self, app: AppId, user: UserId, name: &str) -> Result<bool> {
        let _write = self.write.lock().await;
        let done =
            sqlx::query("DELETE FROM privacy_lists WHERE app_id = ? AND user_id = ? AND name = ?")
                .bind(app.get())
                .bind(user.get())
                .bind(name)
                .execute(self.pool())
                .await
                .map_err(Error::internal)?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_default_privacy_list(
        &self,
        app: AppId,
        user: UserId,
        name: Option<&str>,
    ) -> Result<bool> {
        let _write = self.write.lock().await;
        let mut conn = self.write_conn().await?;
        let mut tx = conn.begin().await.map_err(Error::internal)?;
        if let Some(name) = name {
            let exists: Option<(i64,)> = sqlx::query_as(
                "SELECT 1 FROM privacy_lists WHERE app_id = ? AND user_id = ? AND name = ?",
            )
            .bind(app.get())
            .bind(user.get())
            .bind(name)
            .fetch_optional(&mut *tx)
            .await
            .map_err(Error::internal)?;
            if exists.is_none() {
                return Ok(false);
            }
        }
        sqlx::query(
            "UPDATE privacy_lists SET is_default = 0 WHERE app_id = ? AND user_id = ? AND is_default = 1",
        )
        .bind(app.get())
        .bind(user.get())
        .execute(&mut *tx)
        .await
        .map_err(Error::internal)?;
        if let Some(name) = name {
            sqlx::query(
                "UPDATE privacy_lists SET is_default = 1 WHERE app_id = ? AND user_id = ? AND name = ?",
            )
            .bind(app.get())
            .bind(user.get())
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(Error::internal)?;
        }
        tx.commit().await.map_err(Error::internal)?;
        conn.committed();
        Ok(true)
    }

    async fn default_privacy_list(
        &self,
        app: AppId,
        user: UserId,
    ) -> Result<Option<Vec<PrivacyItem>>> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT items FROM privacy_lists WHERE app_id = ? AND user_id = ? AND is_default = 1",
        )
        .bind(app.get())
        .bind(user.get())
        .fetch_optional(self.pool())
        .await
        .map_err(Error::internal)?;
        row.map(|(s,)| items_from_json(&s)).transpose()
    }

    async fn default_privacy_lists(
        &self,
        app: AppId,
        users: &[UserId],
    ) -> Result<HashMap<UserId, Vec<PrivacyItem>>> {
        let ids: Vec<i64> = users.iter().map(|u| u.get()).collect();
        let ids = serde_json::to_string(&ids).map_err(Error::internal)?;
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT user_id, items FROM privacy_lists
             WHERE app_id = ? AND is_default = 1
               AND user_id IN (SELECT value FROM json_each(?))",
        )
        .bind(app.get())
        .bind(ids)
        .fetch_all(self.pool())
        .await
        .map_err(Error::internal)?;
        lists_by_user(rows)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::{AccountStore, NewUser};

    /// A fresh app (first call) and user; returns their ids.
    pub(crate) async fn account(s: &SqliteStore, n: u32) -> (AppId, UserId) {
        let app = match s.app(AppId::new(1).unwrap()).await.unwrap() {
            Some(a) => a,
            None => s.create_app("t", "k", "s", b"h", 1).await.unwrap(),
        };
        let mut u = NewUser {
            app_id: app.id.get(),
            now: 1,
            ..Default::default()
        };
        u.fields.login = Some(Some(format!("user{n}")));
        let user = s.create_user(u).await.unwrap();
        (app.id, UserId::new(user.id).unwrap())
    }

    #[tokio::test]
    async fn lists_round_trip_and_default() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path()).await.unwrap();
        let (app, user) = account(&s, 1).await;
        let items = vec![
            PrivacyItem {
                kind: Some("jid".into()),
                value: Some("9-1@localhost".into()),
                allow: false,
                order: 1,
                stanzas: stanzas::MESSAGE,
            },
            PrivacyItem {
                kind: None,
                value: None,
                allow: true,
                order: 2,
                stanzas: 0,
            },
        ];
        s.put_privacy_list(app, user, "a", &items, 1).await.unwrap();
        s.put_privacy_list(app, user, "b", &items[..1], 1)
            .await
            .unwrap();
        assert_eq!(
            s.privacy_list(app, user, "a").await.unwrap(),
            Some(items.clone())
        );
        assert!(!s
            .set_default_privacy_list(app, user, Some("zz"))
            .await
            .unwrap());
        assert!(s
            .set_default_privacy_list(app, user, Some("a"))
            .await
            .unwrap());
        assert!(s
            .set_default_privacy_list(app, user, Some("b"))
            .await
            .unwrap());
        let n = s.privacy_names(app, user).await.unwrap();
        assert_eq!(n.names, vec!["a".to_string(), "b".to_string()]);
        assert_eq!(n.default.as_deref(), Some("b"));
        assert_eq!(
            s.default_privacy_list(app, user).await.unwrap(),
            Some(items[..1].to_vec())
        );
        assert!(s.set_default_privacy_list(app, user, None).await.unwrap());
        assert_eq!(s.default_privacy_list(app, user).await.unwrap(), None);
        assert!(s.delete_privacy_list(app, user, "a").await.unwrap());
        assert!(!s.delete_privacy_list(app, user, "a").await.unwrap());
    }
}
