//! [`MessageStore`] on PostgreSQL: messages, receipts, unread counts and full-text search.

use async_trait::async_trait;
use confab_core::chat::Message;
use confab_core::clock::Millis;
use confab_core::query::Query;
use confab_core::{ObjectId, Result};
use serde_json::{Map, Value};
use sqlx::{Postgres, QueryBuilder, Row};

use super::message_writer::MessageRow;
use super::rows::*;
use super::{db, lock_dialog, PgStore};
use crate::chat::{MessageSearch, MessageStore};

#[async_trait]
impl MessageStore for PgStore {
    async fn insert_message(&self, m: &Message) -> Result<()> {
        // Batched with concurrent inserts (see `message_writer`); the `messages_dialogs_insert`
        // trigger updates the dialog and the unread counts in the same statement.
        self.messages.write(MessageRow::new(m)).await
    }

    async fn insert_occupant_message(&self, m: &Message) -> Result<()> {
        // The check rides in the batch's statement: no round trip of its own.
        self.messages.write(MessageRow::of_occupant(m)).await
    }

    async fn message(&self, app_id: i64, id: ObjectId) -> Result<Option<Message>> {
        let row = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.id = $1 AND m.app_id = $2"
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
        let filters = |q: &mut QueryBuilder<'_, Postgres>| -> Result<()> {
            q.push(" FROM messages m WHERE m.dialog_id = ")
                .push_bind(dialog.to_string());
            if let Some(user) = viewer {
                q.push(" AND NOT (")
                    .push_bind(user)
                    .push(" = ANY(m.deleted_for_ids))");
            }
            if let Some(c) = cleared_before {
                push_after_cutoff(q, &format!("'{c}'"));
            }
            push_conditions(q, &query.conditions, true)
        };
        let mut total: i64 = 0;
        if count {
            let mut c = QueryBuilder::<Postgres>::new("SELECT COUNT(*)");
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
        let mut q = QueryBuilder::<Postgres>::new(format!("SELECT {MESSAGE_COLUMNS}"));
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
        let filters = |q: &mut QueryBuilder<'_, Postgres>| -> Result<()> {
            q.push(" FROM messages m WHERE m.app_id = ")
                .push_bind(app_id);
            push_conditions(q, &query.conditions, true)
        };
        let mut count = QueryBuilder::<Postgres>::new("SELECT COUNT(*)");
        filters(&mut count)?;
        let total: i64 = count
            .build_query_scalar()
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        let mut q = QueryBuilder::<Postgres>::new(format!("SELECT {MESSAGE_COLUMNS}"));
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
        let d = dialog.to_string();
        // NULL: the whole dialog.
        let ids = ids.map(id_strings);
        let mut tx = self.pool.begin().await.map_err(db)?;
        // Receipts of one dialog queue here (see the lock order in mod.rs).
        lock_dialog(&mut tx, &d).await?;
        if read {
            // Read implies delivered. The unread count drops by the unread messages of others
            // this marks read (all of them when the whole dialog is marked).
            sqlx::query(
                "WITH old AS (SELECT id, sender_id, deleted_for_ids, $2 = ANY(read_ids) AS was_read \
                     FROM messages WHERE dialog_id = $1 AND ($3::text[] IS NULL OR id = ANY($3)) \
                     AND NOT ($2 = ANY(read_ids) AND $2 = ANY(delivered_ids))), \
                 upd AS (UPDATE messages m SET \
                     read_ids = CASE WHEN old.was_read THEN m.read_ids ELSE array_append(m.read_ids, $2) END, \
                     delivered_ids = CASE WHEN $2 = ANY(m.delivered_ids) THEN m.delivered_ids \
                         ELSE array_append(m.delivered_ids, $2) END \
                     FROM old WHERE m.id = old.id \
                     RETURNING NOT old.was_read AND old.sender_id <> $2 AND NOT ($2 = ANY(old.deleted_for_ids)) AS newly) \
                 UPDATE dialog_members SET unread_count = CASE WHEN $3::text[] IS NULL THEN 0 \
                     ELSE GREATEST(unread_count - (SELECT COUNT(*) FROM upd WHERE newly), 0) END \
                 WHERE dialog_id = $1 AND user_id = $2",
            )
            .bind(&d)
            .bind(user)
            .bind(&ids)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        } else {
            sqlx::query(
                "UPDATE messages SET delivered_ids = array_append(delivered_ids, $2) \
                 WHERE dialog_id = $1 AND ($3::text[] IS NULL OR id = ANY($3)) \
                 AND NOT ($2 = ANY(delivered_ids))",
            )
            .bind(&d)
            .bind(user)
            .bind(&ids)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn edit_message(&self, id: ObjectId, body: Option<&str>, now: Millis) -> Result<()> {
        let id = id.to_string();
        let mut tx = self.pool.begin().await.map_err(db)?;
        // The dialog first (the lock order in mod.rs), when this is its last message.
        sqlx::query(
            "UPDATE dialogs SET last_message = $1 \
             WHERE id = (SELECT dialog_id FROM messages WHERE id = $2) AND last_message_id = $2",
        )
        .bind(body)
        .bind(&id)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        sqlx::query("UPDATE messages SET body = $1, edited_at = $2, updated_at = $3 WHERE id = $4")
            .bind(body)
            .bind(now / 1000)
            .bind(now)
            .bind(&id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn delete_messages_for_user(
        &self,
        dialog: ObjectId,
        user: i64,
        ids: &[ObjectId],
    ) -> Result<()> {
        let d = dialog.to_string();
        let mut tx = self.pool.begin().await.map_err(db)?;
        lock_dialog(&mut tx, &d).await?;
        // Hiding a message the user had not read yet is one unread message less.
        sqlx::query(
            "WITH upd AS (UPDATE messages SET deleted_for_ids = array_append(deleted_for_ids, $2) \
                 WHERE dialog_id = $1 AND id = ANY($3) AND NOT ($2 = ANY(deleted_for_ids)) \
                 RETURNING sender_id <> $2 AND NOT ($2 = ANY(read_ids)) AS unread) \
             UPDATE dialog_members SET unread_count = GREATEST(unread_count - \
                 (SELECT COUNT(*) FROM upd WHERE unread), 0) \
             WHERE dialog_id = $1 AND user_id = $2",
        )
        .bind(&d)
        .bind(user)
        .bind(id_strings(ids))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn delete_messages(&self, dialog: ObjectId, ids: &[ObjectId]) -> Result<()> {
        let d = dialog.to_string();
        let mut tx = self.pool.begin().await.map_err(db)?;
        lock_dialog(&mut tx, &d).await?;
        // Whoever had not read a deleted message (nor deleted it already) has one unread
        // message less per such message.
        sqlx::query(
            "WITH del AS (DELETE FROM messages WHERE dialog_id = $1 AND id = ANY($2) \
                 RETURNING sender_id, read_ids, deleted_for_ids), \
             dec AS (SELECT mb.user_id, COUNT(*) AS n FROM dialog_members mb JOIN del \
                 ON mb.user_id <> del.sender_id AND NOT (mb.user_id = ANY(del.read_ids)) \
                 AND NOT (mb.user_id = ANY(del.deleted_for_ids)) \
                 WHERE mb.dialog_id = $1 GROUP BY mb.user_id) \
             UPDATE dialog_members mb SET unread_count = GREATEST(mb.unread_count - dec.n, 0) \
             FROM dec WHERE mb.dialog_id = $1 AND mb.user_id = dec.user_id",
        )
        .bind(&d)
        .bind(id_strings(ids))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        Self::refresh_last_message(&mut tx, &d).await?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn set_reactions(
        &self,
        id: ObjectId,
        reactions: &Map<String, Value>,
        now: Millis,
    ) -> Result<()> {
        sqlx::query("UPDATE messages SET reactions = $1, updated_at = $2 WHERE id = $3")
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
        let mut q = QueryBuilder::<Postgres>::new(format!(
            "SELECT d.id, COALESCE(mb.unread_count, CASE WHEN d.type = 1 THEN {} ELSE 0 END) AS unread \
             FROM dialogs d LEFT JOIN dialog_members mb ON mb.dialog_id = d.id AND mb.user_id = {user} \
             WHERE d.app_id = {app_id} AND ((d.type <> 1 AND mb.occupant) OR d.type = 1)",
            unread_without_row(user)
        ));
        if let Some(ids) = dialogs {
            push_id_list(&mut q, "d.id", ids);
        }
        let rows = q.build().fetch_all(&self.pool).await.map_err(db)?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get("id").map_err(db)?;
                Ok((oid(&id), r.try_get::<i64, _>("unread").map_err(db)?))
            })
            .collect()
    }

    async fn unread_total(&self, app_id: i64, user: i64) -> Result<i64> {
        // Member rows carry counters; broadcasts a reader never touched are counted directly.
        let sql = format!(
            "SELECT \
               (SELECT COALESCE(SUM(mb.unread_count), 0) FROM dialog_members mb JOIN dialogs d ON d.id = mb.dialog_id \
                WHERE mb.user_id = {user} AND d.app_id = {app_id} AND (mb.occupant OR d.type = 1))::bigint + \
               (SELECT COALESCE(SUM({}), 0) FROM dialogs d WHERE d.app_id = {app_id} AND d.type = 1 \
                AND NOT EXISTS (SELECT 1 FROM dialog_members x WHERE x.dialog_id = d.id AND x.user_id = {user}))::bigint",
            unread_without_row(user)
        );
        sqlx::query_scalar(&sql)
            .fetch_one(&self.pool)
            .await
            .map_err(db)
    }

    async fn search_messages(&self, s: &MessageSearch) -> Result<Vec<Message>> {
        if s.terms.is_empty() {
            // As on SQLite: no terms match nothing.
            return Ok(Vec::new());
        }
        // The FTS5 query SQLite builds quotes every term (a phrase stays a phrase) and ORs
        // them: here one phraseto_tsquery per term (its words adjacent and in order), ORed.
        let mut q = QueryBuilder::<Postgres>::new(format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m JOIN dialogs d ON d.id = m.dialog_id \
             LEFT JOIN dialog_members mb ON mb.dialog_id = d.id AND mb.user_id = "
        ));
        q.push_bind(s.user_id);
        q.push(" WHERE m.body_tsv @@ (");
        for (i, term) in s.terms.iter().enumerate() {
            if i > 0 {
                q.push(" || ");
            }
            // Tokenized as the bodies are (see search_text in migration 0002).
            q.push("phraseto_tsquery('simple', search_text(")
                .push_bind(term.clone())
                .push("))");
        }
        q.push(") AND m.app_id = ").push_bind(s.app_id);
        q.push(" AND ((d.type <> 1 AND mb.occupant) OR d.type = 1)");
        q.push(" AND (mb.cleared_before IS NULL OR (1 = 1");
        push_after_cutoff(&mut q, "mb.cleared_before");
        q.push("))");
        q.push(" AND NOT (")
            .push_bind(s.user_id)
            .push(" = ANY(m.deleted_for_ids))");
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
