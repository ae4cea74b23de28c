//! [`ChatServerStore`] on SQLite.

use async_trait::async_trait;
use confab_core::clock::Millis;
use confab_core::{AppId, ObjectId, Result, UserId};
use sqlx::Row;

use super::{db, SqliteStore};
use crate::chatserver::*;

fn session_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<DeviceSession> {
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
impl ChatServerStore for SqliteStore {
    async fn create_device_session(&self, s: &DeviceSession, token_hash: &[u8]) -> Result<()> {
        let _write = self.write.lock().await;
        sqlx::query(
            "INSERT INTO chatserver_device_sessions
             (id, app_id, user_id, token_hash, device_info, ip_address, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&s.id)
        .bind(s.app_id.get())
        .bind(s.user_id.get())
        .bind(token_hash)
        .bind(&s.device_info)
        .bind(&s.ip_address)
        .bind(s.created_at)
        .bind(s.updated_at)
        .execute(self.pool())
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn device_session_by_token(&self, token_hash: &[u8]) -> Result<Option<DeviceSession>> {
        let row = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM chatserver_device_sessions WHERE token_hash = ?"
        ))
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await
        .map_err(db)?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn update_device_info(&self, id: &str, device_info: &str, now: Millis) -> Result<bool> {
        let _write = self.write.lock().await;
        let done = sqlx::query(
            "UPDATE chatserver_device_sessions SET device_info = ?, updated_at = ? WHERE id = ?",
        )
        .bind(device_info)
        .bind(now)
        .bind(id)
        .execute(self.pool())
        .await
        .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn device_sessions_of(&self, app: AppId, user: UserId) -> Result<Vec<DeviceSession>> {
        let rows = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM chatserver_device_sessions
             WHERE app_id = ? AND user_id = ? ORDER BY created_at, id"
        ))
        .bind(app.get())
        .bind(user.get())
        .fetch_all(self.pool())
        .await
        .map_err(db)?;
        rows.iter().map(session_from_row).collect()
    }

    async fn delete_device_sessions_of(&self, app: AppId, user: UserId) -> Result<u64> {
        let _write = self.write.lock().await;
        let done =
            sqlx::query("DELETE FROM chatserver_device_sessions WHERE app_id = ? AND user_id = ?")
                .bind(app.get())
                .bind(user.get())
                .execute(self.pool())
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
        let _write = self.write.lock().await;
        sqlx::query(
            "INSERT INTO chatserver_account_keys (user_id, app_id, key_hash, updated_at)
             VALUES (?, ?, ?, ?)
             ON CONFLICT (user_id) DO UPDATE SET
                key_hash = excluded.key_hash, updated_at = excluded.updated_at",
        )
        .bind(user.get())
        .bind(app.get())
        .bind(hash)
        .bind(now)
        .execute(self.pool())
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn account_key_hash(&self, app: AppId, user: UserId) -> Result<Option<String>> {
        sqlx::query_scalar(
            "SELECT key_hash FROM chatserver_account_keys WHERE user_id = ? AND app_id = ?",
        )
        .bind(user.get())
        .bind(app.get())
        .fetch_optional(self.pool())
        .await
        .map_err(db)
    }

    async fn chat_uuids(&self, app: AppId, dialogs: &[(ObjectId, String)]) -> Result<Vec<String>> {
        let mut out = Vec::with_capacity(dialogs.len());
        let mut missing = Vec::new();
        for (i, (dialog, _)) in dialogs.iter().enumerate() {
            let uuid: Option<String> =
                sqlx::query_scalar("SELECT uuid FROM chatserver_chats WHERE dialog_id = ?")
                    .bind(dialog.to_string())
                    .fetch_optional(self.pool())
                    .await
                    .map_err(db)?;
            if uuid.is_none() {
                missing.push(i);
            }
            out.push(uuid.unwrap_or_default());
        }
        if missing.is_empty() {
            return Ok(out);
        }
        let _write = self.write.lock().await;
        let mut conn = self.write_conn().await?;
        let mut tx = conn.begin().await.map_err(db)?;
        for i in missing {
            let (dialog, candidate) = &dialogs[i];
            // Another request may have named it meanwhile: its name wins.
            out[i] = sqlx::query_scalar(
                "INSERT INTO chatserver_chats (uuid, app_id, dialog_id) VALUES (?, ?, ?)
                 ON CONFLICT (dialog_id) DO UPDATE SET dialog_id = excluded.dialog_id
                 RETURNING uuid",
            )
            .bind(candidate)
            .bind(app.get())
            .bind(dialog.to_string())
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        conn.committed();
        Ok(out)
    }

    async fn set_chat_key(
        &self,
        app: AppId,
        dialog: ObjectId,
        candidate_uuid: &str,
        key: &ChatKey,
    ) -> Result<String> {
        let _write = self.write.lock().await;
        sqlx::query_scalar(
            "INSERT INTO chatserver_chats (uuid, app_id, dialog_id, participants_key, is_personal)
             VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (dialog_id) DO UPDATE SET
                participants_key = excluded.participants_key, is_personal = excluded.is_personal
             RETURNING uuid",
        )
        .bind(candidate_uuid)
        .bind(app.get())
        .bind(dialog.to_string())
        .bind(&key.participants_key)
        .bind(key.is_personal)
        .fetch_one(self.pool())
        .await
        .map_err(db)
    }

    async fn dialogs_by_chat_key(&self, app: AppId, key: &ChatKey) -> Result<Vec<ObjectId>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT dialog_id FROM chatserver_chats
             WHERE app_id = ? AND participants_key = ? AND is_personal = ?
             ORDER BY dialog_id DESC",
        )
        .bind(app.get())
        .bind(&key.participants_key)
        .bind(key.is_personal)
        .fetch_all(self.pool())
        .await
        .map_err(db)?;
        Ok(ids.iter().filter_map(|s| s.parse().ok()).collect())
    }

    async fn dialog_of_chat(&self, app: AppId, uuid: &str) -> Result<Option<ObjectId>> {
        let id: Option<String> = sqlx::query_scalar(
            "SELECT dialog_id FROM chatserver_chats WHERE uuid = ? AND app_id = ?",
        )
        .bind(uuid.to_ascii_uppercase())
        .bind(app.get())
        .fetch_optional(self.pool())
        .await
        .map_err(db)?;
        Ok(id.and_then(|s| s.parse().ok()))
    }

    async fn message_numbers(&self, app: AppId, messages: &[ObjectId]) -> Result<Vec<i64>> {
        let mut out = Vec::with_capacity(messages.len());
        let mut missing = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            let n: Option<i64> =
                sqlx::query_scalar("SELECT id FROM chatserver_messages WHERE message_id = ?")
                    .bind(m.to_string())
                    .fetch_optional(self.pool())
                    .await
                    .map_err(db)?;
            if n.is_none() {
                missing.push(i);
            }
            out.push(n.unwrap_or_default());
        }
        if missing.is_empty() {
            return Ok(out);
        }
        let _write = self.write.lock().await;
        let mut conn = self.write_conn().await?;
        let mut tx = conn.begin().await.map_err(db)?;
        for i in missing {
            out[i] = sqlx::query_scalar(
                "INSERT INTO chatserver_messages (app_id, message_id) VALUES (?, ?)
                 ON CONFLICT (message_id) DO UPDATE SET message_id = excluded.message_id
                 RETURNING id",
            )
            .bind(app.get())
            .bind(messages[i].to_string())
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        conn.committed();
        Ok(out)
    }

    async fn message_of_number(&self, app: AppId, number: i64) -> Result<Option<ObjectId>> {
        let id: Option<String> = sqlx::query_scalar(
            "SELECT message_id FROM chatserver_messages WHERE id = ? AND app_id = ?",
        )
        .bind(number)
        .bind(app.get())
        .fetch_optional(self.pool())
        .await
        .map_err(db)?;
        Ok(id.and_then(|s| s.parse().ok()))
    }
}
