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

fn media_from_row(r: &sqlx::postgres::PgRow) -> Result<Media> {
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

fn contact_from_row(r: &sqlx::postgres::PgRow) -> Result<Contact> {
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

const FLAG_COLUMNS: &str = "archived, removed_on_device, chat_blocked, user_blocked";

fn flags_from_row(r: &sqlx::postgres::PgRow) -> Result<ChatFlags> {
    Ok(ChatFlags {
        archived: r.try_get("archived").map_err(db)?,
        removed_on_device: r.try_get("removed_on_device").map_err(db)?,
        chat_blocked: r.try_get("chat_blocked").map_err(db)?,
        user_blocked: r.try_get("user_blocked").map_err(db)?,
    })
}

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

    async fn delete_device_session(&self, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM chatserver_device_sessions WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
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

    async fn show_message(&self, app: AppId, number: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE chatserver_messages SET shown = TRUE WHERE id = $1 AND app_id = $2",
        )
        .bind(number)
        .bind(app.get())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn shown_messages(&self, app: AppId, numbers: &[i64]) -> Result<Vec<i64>> {
        let shown: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM chatserver_messages WHERE shown AND app_id = $1 AND id = ANY($2)",
        )
        .bind(app.get())
        .bind(numbers)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        // In the order asked.
        Ok(numbers
            .iter()
            .copied()
            .filter(|n| shown.contains(n))
            .collect())
    }

    async fn set_about(&self, app: AppId, user: UserId, about: Option<&str>) -> Result<()> {
        let q = match about {
            Some(text) => sqlx::query(
                "INSERT INTO chatserver_profiles (user_id, app_id, about) VALUES ($1, $2, $3) \
                 ON CONFLICT (user_id) DO UPDATE SET about = excluded.about",
            )
            .bind(user.get())
            .bind(app.get())
            .bind(text),
            None => {
                sqlx::query("DELETE FROM chatserver_profiles WHERE user_id = $1 AND app_id = $2")
                    .bind(user.get())
                    .bind(app.get())
            }
        };
        q.execute(&self.pool).await.map_err(db)?;
        Ok(())
    }

    async fn about(&self, app: AppId, user: UserId) -> Result<Option<String>> {
        sqlx::query_scalar(
            "SELECT about FROM chatserver_profiles WHERE user_id = $1 AND app_id = $2",
        )
        .bind(user.get())
        .bind(app.get())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)
    }

    async fn add_media(&self, m: &Media) -> Result<bool> {
        let done = sqlx::query(&format!(
            "INSERT INTO chatserver_media ({MEDIA_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING"
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
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn media(&self, app: AppId, id: &str) -> Result<Option<Media>> {
        let row = sqlx::query(&format!(
            "SELECT {MEDIA_COLUMNS} FROM chatserver_media WHERE id = $1 AND app_id = $2"
        ))
        .bind(id)
        .bind(app.get())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.as_ref().map(media_from_row).transpose()
    }

    async fn media_of(&self, app: AppId, owners: &[String]) -> Result<Vec<Media>> {
        let rows = sqlx::query(&format!(
            "SELECT {MEDIA_COLUMNS} FROM chatserver_media WHERE app_id = $1 AND owner = ANY($2) \
             ORDER BY created_at, id"
        ))
        .bind(app.get())
        .bind(owners)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let found = rows
            .iter()
            .map(media_from_row)
            .collect::<Result<Vec<_>>>()?;
        // Grouped by owner in the order asked, each oldest first.
        let mut grouped = Vec::with_capacity(found.len());
        for owner in owners {
            grouped.extend(found.iter().filter(|m| &m.owner == owner).cloned());
        }
        Ok(grouped)
    }

    async fn delete_media(&self, app: AppId, id: &str) -> Result<Option<Media>> {
        let row = sqlx::query(&format!(
            "DELETE FROM chatserver_media WHERE id = $1 AND app_id = $2 RETURNING {MEDIA_COLUMNS}"
        ))
        .bind(id)
        .bind(app.get())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.as_ref().map(media_from_row).transpose()
    }

    async fn add_contact(&self, c: &Contact) -> Result<Contact> {
        sqlx::query(&format!(
            "INSERT INTO chatserver_contacts ({CONTACT_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (owner_id, user_id) DO NOTHING"
        ))
        .bind(&c.id)
        .bind(c.app_id.get())
        .bind(c.owner.get())
        .bind(c.user.get())
        .bind(&c.name)
        .bind(c.is_favorite)
        .bind(c.is_blocked)
        .bind(c.created_at)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        let row = sqlx::query(&format!(
            "SELECT {CONTACT_COLUMNS} FROM chatserver_contacts WHERE owner_id = $1 AND user_id = $2"
        ))
        .bind(c.owner.get())
        .bind(c.user.get())
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        contact_from_row(&row)
    }

    async fn contacts_of(&self, app: AppId, owner: UserId) -> Result<Vec<Contact>> {
        let rows = sqlx::query(&format!(
            "SELECT {CONTACT_COLUMNS} FROM chatserver_contacts WHERE app_id = $1 AND owner_id = $2 \
             ORDER BY created_at, id"
        ))
        .bind(app.get())
        .bind(owner.get())
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(contact_from_row).collect()
    }

    async fn delete_contact(&self, app: AppId, owner: UserId, id: &str) -> Result<bool> {
        let done = sqlx::query(
            "DELETE FROM chatserver_contacts WHERE id = $1 AND app_id = $2 AND owner_id = $3",
        )
        .bind(id)
        .bind(app.get())
        .bind(owner.get())
        .execute(&self.pool)
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
        let rows = sqlx::query(&format!(
            "SELECT dialog_id, {FLAG_COLUMNS} FROM chatserver_chat_flags \
             WHERE app_id = $1 AND user_id = $2 AND dialog_id = ANY($3)"
        ))
        .bind(app.get())
        .bind(user.get())
        .bind(&ids)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let mut found = std::collections::HashMap::new();
        for r in &rows {
            let dialog: String = r.try_get("dialog_id").map_err(db)?;
            found.insert(dialog, flags_from_row(r)?);
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
        sqlx::query(&format!(
            "INSERT INTO chatserver_chat_flags (dialog_id, user_id, app_id, {FLAG_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (dialog_id, user_id) DO UPDATE SET \
                archived = excluded.archived, removed_on_device = excluded.removed_on_device, \
                chat_blocked = excluded.chat_blocked, user_blocked = excluded.user_blocked"
        ))
        .bind(dialog.to_string())
        .bind(user.get())
        .bind(app.get())
        .bind(flags.archived)
        .bind(flags.removed_on_device)
        .bind(flags.chat_blocked)
        .bind(flags.user_blocked)
        .execute(&self.pool)
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
            "SELECT user_id, {FLAG_COLUMNS} FROM chatserver_chat_flags \
             WHERE dialog_id = $1 AND app_id = $2 ORDER BY user_id"
        ))
        .bind(dialog.to_string())
        .bind(app.get())
        .fetch_all(&self.pool)
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
        sqlx::query_scalar("SELECT blob_id FROM chatserver_files WHERE app_id = $1 AND name = $2")
            .bind(app.get())
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)
    }

    async fn set_file_blob(&self, app: AppId, name: &str, blob: i64) -> Result<FileNaming> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        // Users racing for a new name (no row to lock yet) take turns on one lock per name.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, $2))")
            .bind(name)
            .bind(app.get())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        // The name's blob, and whether its owner is another than the new blob's.
        let old: Option<(i64, bool)> = sqlx::query_as(
            "SELECT f.blob_id, COALESCE(o.user_id <> n.user_id, FALSE)
             FROM chatserver_files f
             LEFT JOIN blobs o ON o.id = f.blob_id
             LEFT JOIN blobs n ON n.id = $3
             WHERE f.app_id = $1 AND f.name = $2",
        )
        .bind(app.get())
        .bind(name)
        .bind(blob)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        if old.is_some_and(|(_, theirs)| theirs) {
            return Ok(FileNaming::Taken);
        }
        let old = old.map(|(id, _)| id);
        sqlx::query(
            "INSERT INTO chatserver_files (app_id, name, blob_id) VALUES ($1, $2, $3) \
             ON CONFLICT (app_id, name) DO UPDATE SET blob_id = excluded.blob_id",
        )
        .bind(app.get())
        .bind(name)
        .bind(blob)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(FileNaming::Named(old.filter(|o| *o != blob)))
    }
}
