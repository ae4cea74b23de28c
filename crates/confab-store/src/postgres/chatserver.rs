//! [`ChatServerStore`] on PostgreSQL.

use async_trait::async_trait;
use confab_core::clock::Millis;
use confab_core::{AppId, ObjectId, Result, UserId};
use sqlx::Row;

use super::rows::id_strings;
use super::{db, PgStore};
use crate::chatserver::*;

fn session_from_row(r: &sqlx::postgres::PgRow) -> Result<DeviceSession> {
    Ok(DeviceSession {
        id: r.try_get("id").map_err(db)?,
        app_id: AppId::new(r.try_get("app_id").map_err(db)?)?,
        user_id: UserId::new(r.try_get("user_id").map_err(db)?)?,
        device_info: r.try_get("device_info").map_err(db)?,
        ip_address: r.try_get("ip_address").map_err(db)?,
        created_at: r.try_get("created_at").map_err(db)?,
        updated_at: r.try_get("updated_at").map_err(db)?,
    })
}

const SESSION_COLUMNS: &str =
    "id, app_id, user_id, device_info, ip_address, created_at, updated_at";

#[async_trait]
impl ChatServerStore for PgStore {
    async fn create_device_session(&self, s: &DeviceSession, token_hash: &[u8]) -> Result<()> {
        sqlx::query(
            "INSERT INTO chatserver_device_sessions \
             (id, app_id, user_id, token_hash, device_info, ip_address, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&s.id)
        .bind(s.app_id.get())
        .bind(s.user_id.get())
        .bind(token_hash)
        .bind(&s.device_info)
        .bind(&s.ip_address)
        .bind(s.created_at)
        .bind(s.updated_at)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn device_session_by_token(&self, token_hash: &[u8]) -> Result<Option<DeviceSession>> {
        let row = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM chatserver_device_sessions WHERE token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn update_device_info(&self, id: &str, device_info: &str, now: Millis) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE chatserver_device_sessions SET device_info = $1, updated_at = $2 WHERE id = $3",
        )
        .bind(device_info)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn device_sessions_of(&self, app: AppId, user: UserId) -> Result<Vec<DeviceSession>> {
        let rows = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM chatserver_device_sessions \
             WHERE app_id = $1 AND user_id = $2 ORDER BY created_at, id"
        ))
        .bind(app.get())
        .bind(user.get())
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(session_from_row).collect()
    }

    async fn delete_device_sessions_of(&self, app: AppId, user: UserId) -> Result<u64> {
        let done = sqlx::query(
            "DELETE FROM chatserver_device_sessions WHERE app_id = $1 AND user_id = $2",
        )
        .bind(app.get())
        .bind(user.get())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected())
    }

    async fn set_account_key_hash(
        &self,
        app: AppId,
        user: UserId,
        hash: &str,
        now: Millis,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO chatserver_account_keys (user_id, app_id, key_hash, updated_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id) DO UPDATE SET \
                key_hash = excluded.key_hash, updated_at = excluded.updated_at",
        )
        .bind(user.get())
        .bind(app.get())
        .bind(hash)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn account_key_hash(&self, app: AppId, user: UserId) -> Result<Option<String>> {
        sqlx::query_scalar(
            "SELECT key_hash FROM chatserver_account_keys WHERE user_id = $1 AND app_id = $2",
        )
        .bind(user.get())
        .bind(app.get())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)
    }

    async fn chat_uuids(&self, app: AppId, dialogs: &[(ObjectId, String)]) -> Result<Vec<String>> {
        if dialogs.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = dialogs.iter().map(|(d, _)| d.to_string()).collect();
        let candidates: Vec<&str> = dialogs.iter().map(|(_, c)| c.as_str()).collect();
        // One statement: the stored UUIDs, and the candidates stored for dialogs without one.
        // Another request may have named a dialog meanwhile: its name wins (the no-op update
        // returns the stored row). DISTINCT ON: one row per dialog, as ON CONFLICT DO UPDATE
        // refuses to touch a row twice.
        let rows: Vec<(String, String)> = sqlx::query_as(
            "WITH v AS (SELECT DISTINCT ON (d) d, c FROM UNNEST($2::text[], $3::text[]) WITH ORDINALITY AS v(d, c, n) \
                 ORDER BY d, n), \
             missing AS (SELECT v.d, v.c FROM v WHERE NOT EXISTS \
                 (SELECT 1 FROM chatserver_chats x WHERE x.dialog_id = v.d)), \
             ins AS (INSERT INTO chatserver_chats (uuid, app_id, dialog_id) \
                 SELECT c, $1, d FROM missing ORDER BY d \
                 ON CONFLICT (dialog_id) DO UPDATE SET dialog_id = excluded.dialog_id \
                 RETURNING dialog_id, uuid) \
             SELECT dialog_id, uuid FROM ins \
             UNION ALL SELECT dialog_id, uuid FROM chatserver_chats WHERE dialog_id = ANY($2) \
                 AND dialog_id NOT IN (SELECT d FROM missing)",
        )
        .bind(app.get())
        .bind(&ids)
        .bind(&candidates)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let found: std::collections::HashMap<String, String> = rows.into_iter().collect();
        Ok(ids
            .iter()
            .map(|d| found.get(d).cloned().unwrap_or_default())
            .collect())
    }

    async fn set_chat_key(
        &self,
        app: AppId,
        dialog: ObjectId,
        candidate_uuid: &str,
        key: &ChatKey,
    ) -> Result<String> {
        sqlx::query_scalar(
            "INSERT INTO chatserver_chats (uuid, app_id, dialog_id, participants_key, is_personal) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (dialog_id) DO UPDATE SET \
                participants_key = excluded.participants_key, is_personal = excluded.is_personal \
             RETURNING uuid",
        )
        .bind(candidate_uuid)
        .bind(app.get())
        .bind(dialog.to_string())
        .bind(&key.participants_key)
        .bind(key.is_personal)
        .fetch_one(&self.pool)
        .await
        .map_err(db)
    }

    async fn dialogs_by_chat_key(&self, app: AppId, key: &ChatKey) -> Result<Vec<ObjectId>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT dialog_id FROM chatserver_chats \
             WHERE app_id = $1 AND participants_key = $2 AND is_personal = $3 \
             ORDER BY dialog_id DESC",
        )
        .bind(app.get())
        .bind(&key.participants_key)
        .bind(key.is_personal)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(ids.iter().filter_map(|s| s.parse().ok()).collect())
    }

    async fn dialog_of_chat(&self, app: AppId, uuid: &str) -> Result<Option<ObjectId>> {
        let id: Option<String> = sqlx::query_scalar(
            "SELECT dialog_id FROM chatserver_chats WHERE uuid = $1 AND app_id = $2",
        )
        .bind(uuid.to_ascii_uppercase())
        .bind(app.get())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        Ok(id.and_then(|s| s.parse().ok()))
    }

    async fn message_numbers(&self, app: AppId, messages: &[ObjectId]) -> Result<Vec<i64>> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let ids = id_strings(messages);
        // One statement: the stored numbers, and new ones for the rest, drawn in the given order
        // (the insert reads its rows in ordinality order, and the identity follows). A number
        // another request gave meanwhile wins (the no-op update returns the stored row).
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "WITH v AS (SELECT m, MIN(n) AS n FROM UNNEST($2::text[]) WITH ORDINALITY AS v(m, n) GROUP BY m), \
             missing AS (SELECT v.m, v.n FROM v WHERE NOT EXISTS \
                 (SELECT 1 FROM chatserver_messages x WHERE x.message_id = v.m)), \
             ins AS (INSERT INTO chatserver_messages (app_id, message_id) \
                 SELECT $1, m FROM missing ORDER BY n \
                 ON CONFLICT (message_id) DO UPDATE SET message_id = excluded.message_id \
                 RETURNING message_id, id) \
             SELECT message_id, id FROM ins \
             UNION ALL SELECT message_id, id FROM chatserver_messages WHERE message_id = ANY($2) \
                 AND message_id NOT IN (SELECT m FROM missing)",
        )
        .bind(app.get())
        .bind(&ids)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let found: std::collections::HashMap<String, i64> = rows.into_iter().collect();
        Ok(ids
            .iter()
            .map(|m| found.get(m).copied().unwrap_or_default())
            .collect())
    }

    async fn message_of_number(&self, app: AppId, number: i64) -> Result<Option<ObjectId>> {
        let id: Option<String> = sqlx::query_scalar(
            "SELECT message_id FROM chatserver_messages WHERE id = $1 AND app_id = $2",
        )
        .bind(number)
        .bind(app.get())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        Ok(id.and_then(|s| s.parse().ok()))
    }
}
