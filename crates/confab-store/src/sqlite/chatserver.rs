//! [`ChatServerStore`] on SQLite.

use async_trait::async_trait;
use confab_core::clock::Millis;
use confab_core::{AppId, ObjectId, Result, UserId};
use sqlx::{QueryBuilder, Row, Sqlite};

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

fn media_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<Media> {
    Ok(Media {
        id: r.try_get("id").map_err(db)?,
        app_id: AppId::new(r.try_get("app_id").map_err(db)?)?,
        owner: r.try_get("owner").map_err(db)?,
        added_by: UserId::new(r.try_get("added_by").map_err(db)?)?,
        file_type: r.try_get("file_type").map_err(db)?,
        file_size: r.try_get("file_size").map_err(db)?,
        preview_width: r.try_get("preview_width").map_err(db)?,
        preview_height: r.try_get("preview_height").map_err(db)?,
        created_at: r.try_get("created_at").map_err(db)?,
    })
}

const MEDIA_COLUMNS: &str = "id, app_id, owner, added_by, file_type, file_size, preview_width, \
                             preview_height, created_at";

fn contact_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<Contact> {
    Ok(Contact {
        id: r.try_get("id").map_err(db)?,
        app_id: AppId::new(r.try_get("app_id").map_err(db)?)?,
        owner: UserId::new(r.try_get("owner_id").map_err(db)?)?,
        user: UserId::new(r.try_get("user_id").map_err(db)?)?,
        name: r.try_get("name").map_err(db)?,
        is_favorite: r.try_get("is_favorite").map_err(db)?,
        is_blocked: r.try_get("is_blocked").map_err(db)?,
        created_at: r.try_get("created_at").map_err(db)?,
    })
}

const CONTACT_COLUMNS: &str =
    "id, app_id, owner_id, user_id, name, is_favorite, is_blocked, created_at";

/// Values bound in one `IN (…)` list (SQLite allows 32766 parameters per statement).
const IN_BATCH: usize = 500;

/// `… IN (?, ?, …)` over `values`, closed.
fn push_in<'a, T>(q: &mut QueryBuilder<'a, Sqlite>, values: &'a [T])
where
    T: 'a + sqlx::Encode<'a, Sqlite> + sqlx::Type<Sqlite> + Send + Sync + Clone,
{
    q.push(" IN (");
    let mut sep = q.separated(", ");
    for v in values {
        sep.push_bind(v.clone());
    }
    q.push(")");
}

const FLAG_COLUMNS: &str = "archived, removed_on_device, chat_blocked, user_blocked";

fn flags_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<ChatFlags> {
    Ok(ChatFlags {
        archived: r.try_get("archived").map_err(db)?,
        removed_on_device: r.try_get("removed_on_device").map_err(db)?,
        chat_blocked: r.try_get("chat_blocked").map_err(db)?,
        user_blocked: r.try_get("user_blocked").map_err(db)?,
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

    async fn delete_device_session(&self, id: &str) -> Result<bool> {
        let _write = self.write.lock().await;
        let done = sqlx::query("DELETE FROM chatserver_device_sessions WHERE id = ?")
            .bind(id)
            .execute(self.pool())
            .await
            .map_err(db)?;
        Ok(done.rows_affected() > 0)
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

    async fn show_message(&self, app: AppId, number: i64) -> Result<bool> {
        let _write = self.write.lock().await;
        let done =
            sqlx::query("UPDATE chatserver_messages SET shown = 1 WHERE id = ? AND app_id = ?")
                .bind(number)
                .bind(app.get())
                .execute(self.pool())
                .await
                .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn shown_messages(&self, app: AppId, numbers: &[i64]) -> Result<Vec<i64>> {
        let mut shown = Vec::new();
        for batch in numbers.chunks(IN_BATCH) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "SELECT id FROM chatserver_messages WHERE shown = 1 AND app_id = ",
            );
            q.push_bind(app.get()).push(" AND id");
            push_in(&mut q, batch);
            let ids: Vec<i64> = q
                .build_query_scalar()
                .fetch_all(self.pool())
                .await
                .map_err(db)?;
            shown.extend(ids);
        }
        // In the order asked.
        Ok(numbers
            .iter()
            .copied()
            .filter(|n| shown.contains(n))
            .collect())
    }

    async fn set_about(&self, app: AppId, user: UserId, about: Option<&str>) -> Result<()> {
        let _write = self.write.lock().await;
        let q = match about {
            Some(text) => sqlx::query(
                "INSERT INTO chatserver_profiles (user_id, app_id, about) VALUES (?, ?, ?)
                 ON CONFLICT (user_id) DO UPDATE SET about = excluded.about",
            )
            .bind(user.get())
            .bind(app.get())
            .bind(text),
            None => sqlx::query("DELETE FROM chatserver_profiles WHERE user_id = ? AND app_id = ?")
                .bind(user.get())
                .bind(app.get()),
        };
        q.execute(self.pool()).await.map_err(db)?;
        Ok(())
    }

    async fn about(&self, app: AppId, user: UserId) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT about FROM chatserver_profiles WHERE user_id = ? AND app_id = ?")
            .bind(user.get())
            .bind(app.get())
            .fetch_optional(self.pool())
            .await
            .map_err(db)
    }

    async fn add_media(&self, m: &Media) -> Result<bool> {
        let _write = self.write.lock().await;
        let done = sqlx::query(&format!(
            "INSERT INTO chatserver_media ({MEDIA_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (id) DO NOTHING"
        ))
        .bind(&m.id)
        .bind(m.app_id.get())
        .bind(&m.owner)
        .bind(m.added_by.get())
        .bind(&m.file_type)
        .bind(m.file_size)
        .bind(m.preview_width)
        .bind(m.preview_height)
        .bind(m.created_at)
        .execute(self.pool())
        .await
        .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn media(&self, app: AppId, id: &str) -> Result<Option<Media>> {
        let row = sqlx::query(&format!(
            "SELECT {MEDIA_COLUMNS} FROM chatserver_media WHERE id = ? AND app_id = ?"
        ))
        .bind(id)
        .bind(app.get())
        .fetch_optional(self.pool())
        .await
        .map_err(db)?;
        row.as_ref().map(media_from_row).transpose()
    }

    async fn media_of(&self, app: AppId, owners: &[String]) -> Result<Vec<Media>> {
        let mut out = Vec::new();
        for batch in owners.chunks(IN_BATCH) {
            let mut q = QueryBuilder::<Sqlite>::new(format!(
                "SELECT {MEDIA_COLUMNS} FROM chatserver_media WHERE app_id = "
            ));
            q.push_bind(app.get()).push(" AND owner");
            push_in(&mut q, batch);
            q.push(" ORDER BY created_at, id");
            let rows = q.build().fetch_all(self.pool()).await.map_err(db)?;
            for r in &rows {
                out.push(media_from_row(r)?);
            }
        }
        // Grouped by owner in the order asked, each oldest first.
        let mut grouped = Vec::with_capacity(out.len());
        for owner in owners {
            grouped.extend(out.iter().filter(|m| &m.owner == owner).cloned());
        }
        Ok(grouped)
    }

    async fn delete_media(&self, app: AppId, id: &str) -> Result<Option<Media>> {
        let _write = self.write.lock().await;
        let row = sqlx::query(&format!(
            "DELETE FROM chatserver_media WHERE id = ? AND app_id = ? RETURNING {MEDIA_COLUMNS}"
        ))
        .bind(id)
        .bind(app.get())
        .fetch_optional(self.pool())
        .await
        .map_err(db)?;
        row.as_ref().map(media_from_row).transpose()
    }

    async fn add_contact(&self, c: &Contact) -> Result<Contact> {
        let _write = self.write.lock().await;
        sqlx::query(&format!(
            "INSERT INTO chatserver_contacts ({CONTACT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (owner_id, user_id) DO NOTHING"
        ))
        .bind(&c.id)
        .bind(c.app_id.get())
        .bind(c.owner.get())
        .bind(c.user.get())
        .bind(&c.name)
        .bind(c.is_favorite)
        .bind(c.is_blocked)
        .bind(c.created_at)
        .execute(self.pool())
        .await
        .map_err(db)?;
        let row = sqlx::query(&format!(
            "SELECT {CONTACT_COLUMNS} FROM chatserver_contacts WHERE owner_id = ? AND user_id = ?"
        ))
        .bind(c.owner.get())
        .bind(c.user.get())
        .fetch_one(self.pool())
        .await
        .map_err(db)?;
        contact_from_row(&row)
    }

    async fn contacts_of(&self, app: AppId, owner: UserId) -> Result<Vec<Contact>> {
        let rows = sqlx::query(&format!(
            "SELECT {CONTACT_COLUMNS} FROM chatserver_contacts WHERE app_id = ? AND owner_id = ?
             ORDER BY created_at, id"
        ))
        .bind(app.get())
        .bind(owner.get())
        .fetch_all(self.pool())
        .await
        .map_err(db)?;
        rows.iter().map(contact_from_row).collect()
    }

    async fn delete_contact(&self, app: AppId, owner: UserId, id: &str) -> Result<bool> {
        let _write = self.write.lock().await;
        let done = sqlx::query(
            "DELETE FROM chatserver_contacts WHERE id = ? AND app_id = ? AND owner_id = ?",
        )
        .bind(id)
        .bind(app.get())
        .bind(owner.get())
        .execute(self.pool())
        .await
        .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn chat_flags(
        &self,
        app: AppId,
        user: UserId,
        dialogs: &[ObjectId],
    ) -> Result<Vec<ChatFlags>> {
        let ids: Vec<String> = dialogs.iter().map(ObjectId::to_string).collect();
        let mut found = std::collections::HashMap::new();
        for batch in ids.chunks(IN_BATCH) {
            let mut q = QueryBuilder::<Sqlite>::new(format!(
                "SELECT dialog_id, {FLAG_COLUMNS} FROM chatserver_chat_flags WHERE app_id = "
            ));
            q.push_bind(app.get())
                .push(" AND user_id = ")
                .push_bind(user.get())
                .push(" AND dialog_id");
            push_in(&mut q, batch);
            for r in q.build().fetch_all(self.pool()).await.map_err(db)? {
                let dialog: String = r.try_get("dialog_id").map_err(db)?;
                found.insert(dialog, flags_from_row(&r)?);
            }
        }
        Ok(ids
            .iter()
            .map(|d| found.get(d).copied().unwrap_or_default())
            .collect())
    }

    async fn set_chat_flags(
        &self,
        app: AppId,
        dialog: ObjectId,
        user: UserId,
        flags: ChatFlags,
    ) -> Result<()> {
        let _write = self.write.lock().await;
        sqlx::query(&format!(
            "INSERT INTO chatserver_chat_flags (dialog_id, user_id, app_id, {FLAG_COLUMNS})
             VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (dialog_id, user_id) DO UPDATE SET
                archived = excluded.archived, removed_on_device = excluded.removed_on_device,
                chat_blocked = excluded.chat_blocked, user_blocked = excluded.user_blocked"
        ))
        .bind(dialog.to_string())
        .bind(user.get())
        .bind(app.get())
        .bind(flags.archived)
        .bind(flags.removed_on_device)
        .bind(flags.chat_blocked)
        .bind(flags.user_blocked)
        .execute(self.pool())
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn dialog_chat_flags(
        &self,
        app: AppId,
        dialog: ObjectId,
    ) -> Result<Vec<(UserId, ChatFlags)>> {
        let rows = sqlx::query(&format!(
            "SELECT user_id, {FLAG_COLUMNS} FROM chatserver_chat_flags
             WHERE dialog_id = ? AND app_id = ? ORDER BY user_id"
        ))
        .bind(dialog.to_string())
        .bind(app.get())
        .fetch_all(self.pool())
        .await
        .map_err(db)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let flags = flags_from_row(r)?;
            if flags != ChatFlags::default() {
                out.push((UserId::new(r.try_get("user_id").map_err(db)?)?, flags));
            }
        }
        Ok(out)
    }

    async fn file_blob(&self, app: AppId, name: &str) -> Result<Option<i64>> {
        sqlx::query_scalar("SELECT blob_id FROM chatserver_files WHERE app_id = ? AND name = ?")
            .bind(app.get())
            .bind(name)
            .fetch_optional(self.pool())
            .await
            .map_err(db)
    }

    async fn set_file_blob(&self, app: AppId, name: &str, blob: i64) -> Result<FileNaming> {
        let _write = self.write.lock().await;
        let mut conn = self.write_conn().await?;
        let mut tx = conn.begin().await.map_err(db)?;
        // The name's blob, and whether its owner is another than the new blob's.
        let old: Option<(i64, bool)> = sqlx::query_as(
            "SELECT f.blob_id, COALESCE(o.user_id <> n.user_id, 0)
             FROM chatserver_files f
             LEFT JOIN blobs o ON o.id = f.blob_id
             LEFT JOIN blobs n ON n.id = ?
             WHERE f.app_id = ? AND f.name = ?",
        )
        .bind(blob)
        .bind(app.get())
        .bind(name)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        if old.is_some_and(|(_, theirs)| theirs) {
            return Ok(FileNaming::Taken);
        }
        let old = old.map(|(id, _)| id);
        sqlx::query(
            "INSERT INTO chatserver_files (app_id, name, blob_id) VALUES (?, ?, ?)
             ON CONFLICT (app_id, name) DO UPDATE SET blob_id = excluded.blob_id",
        )
        .bind(app.get())
        .bind(name)
        .bind(blob)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        conn.committed();
        Ok(FileNaming::Named(old.filter(|o| *o != blob)))
    }
}
