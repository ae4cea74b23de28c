//! [`MessageStore`] on SQLite: inserts go through the group-commit writer
//! ([`super::message_writer`]); reads, receipts, deletions and search run here.

use async_trait::async_trait;
use confab_core::chat::Message;
use confab_core::clock::Millis;
use confab_core::query::Query;
use confab_core::{Error, ObjectId, Result};
use serde_json::{Map, Value};
use sqlx::{QueryBuilder, Row, Sqlite};

use super::message_writer::MessageRow;
use super::rows::*;
use super::{db, SqliteStore};
use crate::chat::{MessageSearch, MessageStore};

#[async_trait]
impl MessageStore for SqliteStore {
    async fn insert_message(&self, m: &Message) -> Result<()> {
        self.messages.write(MessageRow::new(m)).await
    }

    async fn insert_occupant_message(&self, m: &Message) -> Result<()> {
        // Asking first is a read in place here; the write goes to the writer as any other.
        let (dialog, sender) = (m.dialog_id.to_string(), m.sender_id);
        let occupant = self.reads.run(|c| {
            let mut q = c.prepare_cached(
                "SELECT 1 FROM dialog_members WHERE dialog_id = ?1 AND user_id = ?2 AND occupant = 1",
            )?;
            q.exists(rusqlite::params![dialog, sender])
        })?;
        if !occupant {
            return Err(Error::not_found("Dialog not found"));
        }
        self.insert_message(m).await
    }

    async fn message(&self, app_id: i64, id: ObjectId) -> Result<Option<Message>> {
        let row = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.id = ? AND m.app_id = ?"
        ))
        .bind(id.to_string())
        .bind(app_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.as_ref().map(message_from_row).transpose()
    }

    async fn list_messages(
        &self,
        dialog: ObjectId,
        viewer: Option<i64>,
        cleared_before: Option<ObjectId>,
        query: &Query,
        count: bool,
    ) -> Result<(Vec<Message>, u64)> {
        let filters = |q: &mut QueryBuilder<'_, Sqlite>| -> Result<()> {
            q.push(" FROM messages m WHERE m.dialog_id = ")
                .push_bind(dialog.to_string());
            if let Some(user) = viewer {
                q.push(" AND instr(m.deleted_for_ids, ")
                    .push_bind(format!(",{user},"))
                    .push(") = 0");
            }
            if let Some(c) = cleared_before {
                push_after_cutoff(q, &format!("'{c}'"));
            }
            push_conditions(q, &query.conditions, true)
        };
        let mut total = 0;
        if count {
            let mut c = QueryBuilder::<Sqlite>::new("SELECT COUNT(*)");
            filters(&mut c)?;
            total = c
                .build_query_scalar()
                .fetch_one(&self.pool)
                .await
                .map_err(db)?;
        }
        if query.limit == 0 {
            return Ok((Vec::new(), total as u64));
        }
        let mut q = QueryBuilder::<Sqlite>::new(format!("SELECT {MESSAGE_COLUMNS}"));
        filters(&mut q)?;
        push_sort(&mut q, &query.sort, true, "m.date_sent ASC, m.id ASC")?;
        push_page(&mut q, query);
        let rows = q.build().fetch_all(&self.pool).await.map_err(db)?;
        let items = rows
            .iter()
            .map(message_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok((items, total as u64))
    }

    async fn list_app_messages(&self, app_id: i64, query: &Query) -> Result<(Vec<Message>, u64)> {
        let filters = |q: &mut QueryBuilder<'_, Sqlite>| -> Result<()> {
            q.push(" FROM messages m WHERE m.app_id = ")
                .push_bind(app_id);
            push_conditions(q, &query.conditions, true)
        };
        let mut count = QueryBuilder::<Sqlite>::new("SELECT COUNT(*)");
        filters(&mut count)?;
        let total: i64 = count
            .build_query_scalar()
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        let mut q = QueryBuilder::<Sqlite>::new(format!("SELECT {MESSAGE_COLUMNS}"));
        filters(&mut q)?;
        push_sort(&mut q, &query.sort, true, "m.id DESC")?;
        push_page(&mut q, query);
        let rows = q.build().fetch_all(&self.pool).await.map_err(db)?;
        let items = rows
            .iter()
            .map(message_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok((items, total as u64))
    }

    async fn mark_messages(
        &self,
        dialog: ObjectId,
        user: i64,
        ids: Option<&[ObjectId]>,
        read: bool,
    ) -> Result<()> {
        let tag = format!(",{user},");
        let _write = self.write.lock().await;
        let mut conn = self.write_conn().await?;
        let mut tx = conn.begin().await.map_err(db)?;
        let scope = |q: &mut QueryBuilder<'_, Sqlite>| {
            q.push(" WHERE dialog_id = ").push_bind(dialog.to_string());
            if let Some(ids) = ids {
                push_id_list(q, "id", ids);
            }
        };
        if read {
            // Unread messages of others that this marks read: the unread count drops by as many.
            let mut newly = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM messages");
            scope(&mut newly);
            newly
                .push(" AND sender_id != ")
                .push_bind(user)
                .push(" AND instr(read_ids, ")
                .push_bind(tag.clone())
                .push(") = 0 AND instr(deleted_for_ids, ")
                .push_bind(tag.clone())
                .push(") = 0");
            let newly: i64 = newly
                .build_query_scalar()
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
            let mut upd = QueryBuilder::<Sqlite>::new(
                "UPDATE messages SET read_ids = CASE WHEN read_ids = '' THEN ',' ELSE read_ids END || ",
            );
            upd.push_bind(format!("{user},"));
            scope(&mut upd);
            upd.push(" AND instr(read_ids, ")
                .push_bind(tag.clone())
                .push(") = 0");
            upd.build().execute(&mut *tx).await.map_err(db)?;
            let reset = if ids.is_none() {
                "UPDATE dialog_members SET unread_count = 0 WHERE dialog_id = ?1 AND user_id = ?2"
                    .to_string()
            } else {
                format!("UPDATE dialog_members SET unread_count = MAX(unread_count - {newly}, 0) WHERE dialog_id = ?1 AND user_id = ?2")
            };
            sqlx::query(&reset)
                .bind(dialog.to_string())
                .bind(user)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        let mut upd = QueryBuilder::<Sqlite>::new(
            "UPDATE messages SET delivered_ids = CASE WHEN delivered_ids = '' THEN ',' ELSE delivered_ids END || ",
        );
        upd.push_bind(format!("{user},"));
        scope(&mut upd);
        upd.push(" AND instr(delivered_ids, ")
            .push_bind(tag)
            .push(") = 0");
        upd.build().execute(&mut *tx).await.map_err(db)?;
        tx.commit().await.map_err(db)?;
        conn.committed();
        Ok(())
    }

    async fn edit_message(&self, id: ObjectId, body: Option<&str>, now: Millis) -> Result<()> {
        let _write = self.write.lock().await;
        let mut conn = self.write_conn().await?;
        let mut tx = conn.begin().await.map_err(db)?;
        let dialog: Option<String> = sqlx::query_scalar(
            "UPDATE messages SET body = ?, edited_at = ?, updated_at = ? WHERE id = ? RETURNING dialog_id",
        )
        .bind(body)
        .bind(now / 1000)
        .bind(now)
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        if let Some(d) = dialog {
            sqlx::query("UPDATE dialogs SET last_message = ? WHERE id = ? AND last_message_id = ?")
                .bind(body)
                .bind(d)
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        conn.committed();
        Ok(())
    }

    async fn delete_messages_for_user(
        &self,
        dialog: ObjectId,
        user: i64,
        ids: &[ObjectId],
    ) -> Result<()> {
        let tag = format!(",{user},");
        let _write = self.write.lock().await;
        let mut conn = self.write_conn().await?;
        let mut tx = conn.begin().await.map_err(db)?;
        for id in ids {
            let unread: Option<bool> = sqlx::query_scalar(
                "UPDATE messages SET deleted_for_ids = CASE WHEN deleted_for_ids = '' THEN ',' ELSE deleted_for_ids END || ?1 \
                 WHERE id = ?2 AND dialog_id = ?3 AND instr(deleted_for_ids, ?4) = 0 \
                 RETURNING (sender_id != ?5 AND instr(read_ids, ?4) = 0)",
            )
            .bind(format!("{user},"))
            .bind(id.to_string())
            .bind(dialog.to_string())
            .bind(&tag)
            .bind(user)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
            if unread == Some(true) {
                sqlx::query("UPDATE dialog_members SET unread_count = MAX(unread_count - 1, 0) WHERE dialog_id = ? AND user_id = ?")
                    .bind(dialog.to_string())
                    .bind(user)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
        }
        tx.commit().await.map_err(db)?;
        conn.committed();
        Ok(())
    }

    async fn delete_messages(&self, dialog: ObjectId, ids: &[ObjectId]) -> Result<()> {
        let d = dialog.to_string();
        let _write = self.write.lock().await;
        let mut conn = self.write_conn().await?;
        let mut tx = conn.begin().await.map_err(db)?;
        for id in ids {
            let row = sqlx::query("DELETE FROM messages WHERE id = ? AND dialog_id = ? RETURNING sender_id, read_ids, deleted_for_ids")
                .bind(id.to_string())
                .bind(&d)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
            let Some(row) = row else { continue };
            let sender: i64 = row.get("sender_id");
            let read_ids: String = row.get("read_ids");
            let deleted_for: String = row.get("deleted_for_ids");
            // Whoever had not read it (nor deleted it already) has one unread message less.
            sqlx::query(
                "UPDATE dialog_members SET unread_count = MAX(unread_count - 1, 0) WHERE dialog_id = ?1 \
                 AND user_id != ?2 AND instr(?3, ',' || user_id || ',') = 0 AND instr(?4, ',' || user_id || ',') = 0",
            )
            .bind(&d)
            .bind(sender)
            .bind(read_ids)
            .bind(deleted_for)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        Self::refresh_last_message(&mut tx, &d).await?;
        tx.commit().await.map_err(db)?;
        conn.committed();
        Ok(())
    }

    async fn set_reactions(
        &self,
        id: ObjectId,
        reactions: &Map<String, Value>,
        now: Millis,
    ) -> Result<()> {
        let _write = self.write.lock().await;
        sqlx::query("UPDATE messages SET reactions = ?, updated_at = ? WHERE id = ?")
            .bind(Value::Object(reactions.clone()).to_string())
            .bind(now)
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn unread_counts(
        &self,
        app_id: i64,
        user: i64,
        dialogs: Option<&[ObjectId]>,
    ) -> Result<Vec<(ObjectId, i64)>> {
        let mut q = QueryBuilder::<Sqlite>::new(format!(
            "SELECT d.id, COALESCE(mb.unread_count, CASE WHEN d.type = 1 THEN {} ELSE 0 END) AS unread \
             FROM dialogs d LEFT JOIN dialog_members mb ON mb.dialog_id = d.id AND mb.user_id = {user} \
             WHERE d.app_id = {app_id} AND ((d.type != 1 AND mb.occupant = 1) OR d.type = 1)",
            unread_without_row(user)
        ));
        if let Some(ids) = dialogs {
            push_id_list(&mut q, "d.id", ids);
        }
        let rows = q.build().fetch_all(&self.pool).await.map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| (oid(&r.get::<String, _>("id")), r.get::<i64, _>("unread")))
            .collect())
    }

    async fn unread_total(&self, app_id: i64, user: i64) -> Result<i64> {
        // Member rows carry counters; broadcasts a reader never touched are counted directly.
        let sql = format!(
            "SELECT \
               (SELECT COALESCE(SUM(mb.unread_count), 0) FROM dialog_members mb JOIN dialogs d ON d.id = mb.dialog_id \
                WHERE mb.user_id = {user} AND d.app_id = {app_id} AND (mb.occupant = 1 OR d.type = 1)) + \
               (SELECT COALESCE(SUM({}), 0) FROM dialogs d WHERE d.app_id = {app_id} AND d.type = 1 \
                AND NOT EXISTS (SELECT 1 FROM dialog_members x WHERE x.dialog_id = d.id AND x.user_id = {user}))",
            unread_without_row(user)
        );
        sqlx::query_scalar(&sql)
            .fetch_one(&self.pool)
            .await
            .map_err(db)
    }

    async fn search_messages(&self, s: &MessageSearch) -> Result<Vec<Message>> {
        if s.terms.is_empty() {
            // An empty FTS5 query is a syntax error, and matches nothing anyway.
            return Ok(Vec::new());
        }
        // FTS5 query: every term quoted (phrases stay phrases), joined with OR.
        let fts = s
            .terms
            .iter()
            .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(" OR ");
        let mut q = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages_fts f JOIN messages m ON m.rowid = f.rowid \
             JOIN dialogs d ON d.id = m.dialog_id \
             LEFT JOIN dialog_members mb ON mb.dialog_id = d.id AND mb.user_id = "
        ));
        q.push_bind(s.user_id);
        q.push(" WHERE messages_fts MATCH ").push_bind(fts);
        q.push(" AND m.app_id = ").push_bind(s.app_id);
        q.push(" AND ((d.type != 1 AND mb.occupant = 1) OR d.type = 1)");
        q.push(" AND (mb.cleared_before IS NULL OR (1 = 1");
        push_after_cutoff(&mut q, "mb.cleared_before");
        q.push("))");
        q.push(" AND instr(m.deleted_for_ids, ")
            .push_bind(format!(",{},", s.user_id))
            .push(") = 0");
        if let Some(ids) = &s.dialog_ids {
            push_id_list(&mut q, "m.dialog_id", ids);
        }
        if let Some(from) = s.date_from {
            q.push(" AND m.date_sent >= ").push_bind(from);
        }
        if let Some(to) = s.date_to {
            q.push(" AND m.date_sent <= ").push_bind(to);
        }
        q.push(" ORDER BY m.date_sent DESC, m.id DESC LIMIT ")
            .push_bind(i64::from(s.limit));
        let rows = q.build().fetch_all(&self.pool).await.map_err(db)?;
        rows.iter().map(message_from_row).collect()
    }
}
