//! [`ChatStore`] on SQLite.

use async_trait::async_trait;
use confab_core::chat::{Dialog, DialogType, MemberState, Message};
use confab_core::clock::Millis;
use confab_core::query::{Condition, Field, Op, Query, Scalar, Sort};
use confab_core::{Error, ObjectId, Result};
use serde_json::{Map, Value};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite};

use crate::chat::{
    AdminDialogInfo, ChatStore, MemberChange, Membership, MessageSearch, PostTarget, Viewer,
};
use crate::sqlite::{db, SqliteStore};
use crate::sqlite_messages::MessageRow;
use crate::sqlite_private_dialogs::{pair_key, PrivateDialogRow};

/// A JSON object column (`data`, `extensions`): its text, or NULL.
pub(crate) fn encode_object(m: &Option<Map<String, Value>>) -> Option<String> {
    m.as_ref().map(|m| Value::Object(m.clone()).to_string())
}

/// `[1, 2]` ↔ `",1,2,"`: membership tests become `instr(col, ',1,')`.
pub(crate) fn encode_ids<T: ToString>(ids: &[T]) -> String {
    if ids.is_empty() {
        String::new()
    } else {
        format!(
            ",{},",
            ids.iter().map(T::to_string).collect::<Vec<_>>().join(",")
        )
    }
}

fn decode_ints(s: &str) -> Vec<i64> {
    s.split(',').filter_map(|v| v.parse().ok()).collect()
}

fn decode_strs(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect()
}

fn oid(s: &str) -> ObjectId {
    s.parse().unwrap_or_else(|_| ObjectId::generate())
}

fn json_map(s: Option<String>) -> Option<Map<String, Value>> {
    s.and_then(|t| serde_json::from_str::<Map<String, Value>>(&t).ok())
}

const DIALOG_COLUMNS: &str = "d.id, d.app_id, d.type, d.owner_id, d.name, d.description, d.photo, \
    d.admins_ids, d.pinned_messages_ids, d.data, d.last_message, d.last_message_date_sent, \
    d.last_message_id, d.last_message_user_id, d.created_at, d.updated_at, d.extensions, \
    (SELECT read_ids FROM messages WHERE id = d.last_message_id) AS last_read_ids, \
    (SELECT delivered_ids FROM messages WHERE id = d.last_message_id) AS last_delivered_ids, \
    CASE WHEN d.type IN (2, 3) THEN (SELECT group_concat(user_id) FROM \
        (SELECT user_id FROM dialog_members WHERE dialog_id = d.id AND occupant = 1 ORDER BY user_id)) END AS occupants, \
    CASE WHEN d.type = 4 THEN (SELECT COUNT(*) FROM dialog_members WHERE dialog_id = d.id AND occupant = 1) ELSE 0 END AS occupants_count";

fn dialog_from_row(r: &SqliteRow) -> Result<Dialog> {
    let kind: i64 = r.try_get("type").map_err(db)?;
    let id: String = r.try_get("id").map_err(db)?;
    let occupants: Option<String> = r.try_get("occupants").map_err(db)?;
    Ok(Dialog {
        id: oid(&id),
        app_id: r.try_get("app_id").map_err(db)?,
        kind: DialogType::from_i64(kind)?,
        owner_id: r.try_get("owner_id").map_err(db)?,
        name: r.try_get("name").map_err(db)?,
        description: r.try_get("description").map_err(db)?,
        photo: r.try_get("photo").map_err(db)?,
        occupants_ids: occupants.as_deref().map(decode_ints).unwrap_or_default(),
        occupants_count: r.try_get("occupants_count").map_err(db)?,
        admins_ids: decode_ints(&r.try_get::<String, _>("admins_ids").map_err(db)?),
        pinned_messages_ids: decode_strs(
            &r.try_get::<String, _>("pinned_messages_ids").map_err(db)?,
        ),
        data: json_map(r.try_get("data").map_err(db)?),
        extensions: json_map(r.try_get("extensions").map_err(db)?),
        last_message_read_ids: decode_ints(
            &r.try_get::<Option<String>, _>("last_read_ids")
                .map_err(db)?
                .unwrap_or_default(),
        ),
        last_message_delivered_ids: decode_ints(
            &r.try_get::<Option<String>, _>("last_delivered_ids")
                .map_err(db)?
                .unwrap_or_default(),
        ),
        last_message: r.try_get("last_message").map_err(db)?,
        last_message_date_sent: r.try_get("last_message_date_sent").map_err(db)?,
        last_message_id: r.try_get("last_message_id").map_err(db)?,
        last_message_user_id: r.try_get("last_message_user_id").map_err(db)?,
        created_at: r.try_get("created_at").map_err(db)?,
        updated_at: r.try_get("updated_at").map_err(db)?,
    })
}

const MESSAGE_COLUMNS: &str = "m.id, m.dialog_id, m.app_id, m.sender_id, m.recipient_id, m.body, \
    m.date_sent, m.attachments, m.custom, m.read_ids, m.delivered_ids, m.deleted_for_ids, \
    m.reactions, m.markable, m.views_count, m.edited_at, m.created_at, m.updated_at";

fn message_from_row(r: &SqliteRow) -> Result<Message> {
    let id: String = r.try_get("id").map_err(db)?;
    let dialog: String = r.try_get("dialog_id").map_err(db)?;
    let attachments: String = r.try_get("attachments").map_err(db)?;
    let reactions: String = r.try_get("reactions").map_err(db)?;
    Ok(Message {
        id: oid(&id),
        app_id: r.try_get("app_id").map_err(db)?,
        dialog_id: oid(&dialog),
        sender_id: r.try_get("sender_id").map_err(db)?,
        recipient_id: r.try_get("recipient_id").map_err(db)?,
        body: r.try_get("body").map_err(db)?,
        date_sent: r.try_get("date_sent").map_err(db)?,
        attachments: serde_json::from_str(&attachments).unwrap_or_default(),
        custom: json_map(r.try_get("custom").map_err(db)?).unwrap_or_default(),
        read_ids: decode_ints(&r.try_get::<String, _>("read_ids").map_err(db)?),
        delivered_ids: decode_ints(&r.try_get::<String, _>("delivered_ids").map_err(db)?),
        deleted_for_ids: decode_ints(&r.try_get::<String, _>("deleted_for_ids").map_err(db)?),
        reactions: serde_json::from_str(&reactions).unwrap_or_default(),
        markable: r.try_get("markable").map_err(db)?,
        views_count: r.try_get("views_count").map_err(db)?,
        edited_at: r.try_get("edited_at").map_err(db)?,
        created_at: r.try_get("created_at").map_err(db)?,
        updated_at: r.try_get("updated_at").map_err(db)?,
    })
}

/// The SQL expression of a filterable field; `None` when it does not apply to the table.
fn column(field: &Field, messages: bool) -> Option<&'static str> {
    Some(match (field, messages) {
        (Field::Id, false) => "d.id",
        (Field::Id, true) => "m.id",
        (Field::DialogType, false) => "d.type",
        (Field::Name, false) => "d.name",
        (Field::LastMessageDateSent, false) => "d.last_message_date_sent",
        (Field::CreatedAt, false) => "(d.created_at / 1000)",
        (Field::UpdatedAt, false) => "(d.updated_at / 1000)",
        (Field::CreatedAt, true) => "(m.created_at / 1000)",
        (Field::UpdatedAt, true) => "(m.updated_at / 1000)",
        (Field::Body, true) => "m.body",
        (Field::DateSent, true) => "m.date_sent",
        (Field::SenderId, true) => "m.sender_id",
        (Field::RecipientId, true) => "m.recipient_id",
        (Field::ChatDialogId, true) => "m.dialog_id",
        _ => return None,
    })
}

fn push_scalar(q: &mut QueryBuilder<'_, Sqlite>, v: &Scalar) {
    match v {
        Scalar::Int(i) => q.push_bind(*i),
        Scalar::Text(t) => q.push_bind(t.clone()),
    };
}

fn like_pattern(v: &Scalar) -> String {
    let text = match v {
        Scalar::Int(i) => i.to_string(),
        Scalar::Text(t) => t.clone(),
    };
    format!(
        "%{}%",
        text.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    )
}

/// Appends ` AND <condition>` for each condition.
fn push_conditions(
    q: &mut QueryBuilder<'_, Sqlite>,
    conditions: &[Condition],
    messages: bool,
) -> Result<()> {
    for c in conditions {
        if c.values.is_empty() {
            return Err(Error::bad_request("a filter needs a value"));
        }
        // Attachment types are a ",a,b," list column: membership tests only.
        if c.field == Field::AttachmentType && messages {
            let negate = matches!(c.op, Op::Ne | Op::Nin);
            let all = c.op == Op::All;
            q.push(if negate { " AND NOT (" } else { " AND (" });
            for (i, v) in c.values.iter().enumerate() {
                if i > 0 {
                    q.push(if all { " AND " } else { " OR " });
                }
                q.push("instr(m.attachment_types, ");
                match v {
                    Scalar::Int(n) => q.push_bind(format!(",{n},")),
                    Scalar::Text(t) => q.push_bind(format!(",{t},")),
                };
                q.push(") > 0");
            }
            q.push(")");
            continue;
        }
        let expr: String = match &c.field {
            Field::Custom(name) if !messages => {
                // Names are checked here too: they are formatted into the SQL.
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(Error::bad_request("invalid custom field name"));
                }
                format!("json_extract(d.data, '$.{name}')")
            }
            f => column(f, messages)
                .ok_or_else(|| Error::bad_request("this field cannot be filtered here"))?
                .to_string(),
        };
        q.push(" AND ");
        match c.op {
            Op::Eq | Op::Lt | Op::Lte | Op::Gt | Op::Gte | Op::Ne => {
                let sym = match c.op {
                    Op::Eq => "=",
                    Op::Lt => "<",
                    Op::Lte => "<=",
                    Op::Gt => ">",
                    Op::Gte => ">=",
                    _ => "IS NOT",
                };
                q.push(format!("{expr} {sym} "));
                push_scalar(q, &c.values[0]);
            }
            Op::In | Op::Nin | Op::All => {
                if c.op == Op::All && c.values.len() > 1 {
                    // A single-valued field cannot equal two different values.
                    q.push("0");
                    continue;
                }
                q.push(format!(
                    "{expr} {} (",
                    if c.op == Op::Nin { "NOT IN" } else { "IN" }
                ));
                let mut sep = q.separated(", ");
                for v in &c.values {
                    match v {
                        Scalar::Int(i) => sep.push_bind(*i),
                        Scalar::Text(t) => sep.push_bind(t.clone()),
                    };
                }
                q.push(")");
            }
            Op::Ctn => {
                q.push(format!("{expr} LIKE "));
                q.push_bind(like_pattern(&c.values[0]));
                q.push(" ESCAPE '\\'");
            }
        }
    }
    Ok(())
}

fn push_sort(
    q: &mut QueryBuilder<'_, Sqlite>,
    sort: &Option<Sort>,
    messages: bool,
    default: &str,
) -> Result<()> {
    match sort {
        None => {
            q.push(" ORDER BY ").push(default);
        }
        Some(s) => {
            let expr = column(&s.field, messages)
                .ok_or_else(|| Error::bad_request("this field cannot be sorted on"))?;
            let dir = if s.desc { "DESC" } else { "ASC" };
            let tie = if messages { "m.id" } else { "d.id" };
            q.push(format!(" ORDER BY {expr} {dir}, {tie} {dir}"));
        }
    }
    Ok(())
}

/// Appends ` AND <column> IN (<ids>)`; an empty list matches nothing.
fn push_id_list(q: &mut QueryBuilder<'_, Sqlite>, column: &str, ids: &[ObjectId]) {
    q.push(format!(" AND {column} IN ("));
    let mut sep = q.separated(", ");
    for id in ids {
        sep.push_bind(id.to_string());
    }
    if ids.is_empty() {
        sep.push("NULL");
    }
    q.push(")");
}

fn push_page(q: &mut QueryBuilder<'_, Sqlite>, query: &Query) {
    q.push(" LIMIT ")
        .push_bind(i64::from(query.limit))
        .push(" OFFSET ")
        .push_bind(i64::from(query.skip));
}

/// Unread messages of `user` in a dialog they have no state row for (a broadcast reader).
/// The ids are integers, formatted into the SQL so they need no placeholder.
fn unread_without_row(user: i64) -> String {
    format!(
        "(SELECT COUNT(*) FROM messages x WHERE x.dialog_id = d.id \
         AND x.sender_id != {user} AND instr(x.read_ids, ',{user},') = 0)"
    )
}

impl SqliteStore {
    /// Inserts private dialog `d` of users `low` and `high` (batched with concurrent ones) when
    /// both exist. When nothing was inserted, the pair's existing dialog, or `None` for an
    /// unknown user.
    async fn insert_private(&self, d: &Dialog, low: i64, high: i64) -> Result<Option<ObjectId>> {
        if self
            .private_dialogs
            .write(PrivateDialogRow::new(d, low, high))
            .await?
        {
            return Ok(Some(d.id));
        }
        self.find_private_dialog(d.app_id, &pair_key(low, high))
            .await
    }

    /// Inserts a group dialog's row; whether it was inserted (its id was not taken).
    async fn insert_group_row(tx: &mut sqlx::Transaction<'_, Sqlite>, d: &Dialog) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO dialogs (id, app_id, type, owner_id, name, description, photo, admins_ids, \
             pinned_messages_ids, data, created_at, updated_at, extensions) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(d.id.to_string())
        .bind(d.app_id)
        .bind(d.kind as i64)
        .bind(d.owner_id)
        .bind(&d.name)
        .bind(&d.description)
        .bind(&d.photo)
        .bind(encode_ids(&d.admins_ids))
        .bind(encode_ids(&d.pinned_messages_ids))
        .bind(encode_object(&d.data))
        .bind(d.created_at)
        .bind(d.updated_at)
        .bind(encode_object(&d.extensions))
        .execute(&mut **tx)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    /// Keeps `last_message*` pointing at the newest remaining message.
    async fn refresh_last_message(
        tx: &mut sqlx::Transaction<'_, Sqlite>,
        dialog: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE dialogs SET (last_message, last_message_date_sent, last_message_id, last_message_user_id) = \
             (SELECT body, date_sent, id, sender_id FROM messages WHERE dialog_id = ?1 ORDER BY date_sent DESC, id DESC LIMIT 1) \
             WHERE id = ?1",
        )
        .bind(dialog)
        .execute(&mut **tx)
        .await
        .map_err(db)?;
        Ok(())
    }
}

#[async_trait]
impl ChatStore for SqliteStore {
    async fn insert_dialog(
        &self,
        d: &Dialog,
        private_key: Option<&str>,
        members: &[i64],
    ) -> Result<ObjectId> {
        if let Some(key) = private_key {
            // The members come from the key (see `sqlite_private_dialogs`).
            let &[low, high] = members else {
                return Err(Error::bad_request("a private dialog has two occupants"));
            };
            debug_assert_eq!(key, pair_key(low, high), "members are the key's pair");
            // Users were checked by the caller; `None` only if one was deleted meanwhile.
            return self
                .insert_private(d, low, high)
                .await?
                .ok_or_else(|| Error::not_found("User not found"));
        }
        let _write = self.write.lock().await;
        let mut tx = self.pool.begin().await.map_err(db)?;
        if !Self::insert_group_row(&mut tx, d).await? {
            tx.rollback().await.map_err(db)?;
            return Err(Error::bad_request("duplicate dialog id"));
        }
        for user in members {
            sqlx::query(
                "INSERT OR IGNORE INTO dialog_members (dialog_id, user_id, occupant, joined_at) VALUES (?, ?, 1, ?)",
            )
            .bind(d.id.to_string())
            .bind(user)
            .bind(d.created_at)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(d.id)
    }

    async fn create_private_dialog(
        &self,
        d: &Dialog,
        low: i64,
        high: i64,
    ) -> Result<Option<ObjectId>> {
        debug_assert!(
            low < high,
            "a private dialog's pair is ordered and distinct"
        );
        self.insert_private(d, low, high).await
    }

    async fn find_private_dialog(&self, app_id: i64, key: &str) -> Result<Option<ObjectId>> {
        // The first message of every pair after a start asks this: read in place.
        let id: Option<String> = self.reads.run(|c| {
            let mut q =
                c.prepare_cached("SELECT id FROM dialogs WHERE app_id = ?1 AND private_key = ?2")?;
            let mut rows = q.query(rusqlite::params![app_id, key])?;
            rows.next()?.map(|r| r.get(0)).transpose()
        })?;
        Ok(id.map(|s| oid(&s)))
    }

    async fn dialog(&self, app_id: i64, id: ObjectId) -> Result<Option<Dialog>> {
        let row = sqlx::query(&format!(
            "SELECT {DIALOG_COLUMNS} FROM dialogs d WHERE d.id = ? AND d.app_id = ?"
        ))
        .bind(id.to_string())
        .bind(app_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.as_ref().map(dialog_from_row).transpose()
    }

    async fn post_target(
        &self,
        app_id: i64,
        dialog: ObjectId,
        user: i64,
    ) -> Result<Option<PostTarget>> {
        // Every stored message asks this: read in place (see `sqlite_inline`).
        let row = self.reads.run(|c| {
            let mut q = c.prepare_cached(
                "SELECT d.type, d.owner_id, d.admins_ids, \
                 EXISTS (SELECT 1 FROM dialog_members WHERE dialog_id = d.id AND user_id = ?1 AND occupant = 1), \
                 CASE WHEN d.type = 3 THEN (SELECT user_id FROM dialog_members WHERE dialog_id = d.id \
                     AND occupant = 1 AND user_id != ?1 ORDER BY user_id LIMIT 1) END \
                 FROM dialogs d WHERE d.id = ?2 AND d.app_id = ?3",
            )?;
            let mut rows = q.query(rusqlite::params![user, dialog.to_string(), app_id])?;
            let Some(r) = rows.next()? else {
                return Ok(None);
            };
            let row: (i64, i64, String, bool, Option<i64>) =
                (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
            Ok(Some(row))
        })?;
        row.map(
            |(kind, owner_id, admins, member, other)| -> Result<PostTarget> {
                Ok(PostTarget {
                    kind: DialogType::from_i64(kind)?,
                    owner_id,
                    admins_ids: decode_ints(&admins),
                    member,
                    recipient_id: other.unwrap_or(0),
                })
            },
        )
        .transpose()
    }

    async fn membership(&self, dialog: ObjectId, user: i64) -> Result<Option<Membership>> {
        let row = sqlx::query(
            "SELECT occupant, hidden, unread_count, notifications, muted, cleared_before \
             FROM dialog_members WHERE dialog_id = ? AND user_id = ?",
        )
        .bind(dialog.to_string())
        .bind(user)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.map(|r| -> Result<Membership> {
            let cleared: Option<String> = r.try_get("cleared_before").map_err(db)?;
            Ok(Membership {
                occupant: r.try_get("occupant").map_err(db)?,
                state: MemberState {
                    unread_count: r.try_get("unread_count").map_err(db)?,
                    notifications: r.try_get("notifications").map_err(db)?,
                    muted: r.try_get("muted").map_err(db)?,
                    hidden: r.try_get("hidden").map_err(db)?,
                },
                cleared_before: cleared.map(|c| oid(&c)),
            })
        })
        .transpose()
    }

    async fn list_dialogs(
        &self,
        app_id: i64,
        viewer: Viewer,
        query: &Query,
    ) -> Result<(Vec<(Dialog, MemberState)>, u64)> {
        let user = match viewer {
            Viewer::User(u) => u,
            Viewer::Admin => 0,
        };
        // Integer ids are formatted into the SQL; only filter values are bound.
        let from = |q: &mut QueryBuilder<'_, Sqlite>| -> Result<()> {
            q.push(format!(
                " FROM dialogs d LEFT JOIN dialog_members mb ON mb.dialog_id = d.id AND mb.user_id = {user} \
                 WHERE d.app_id = {app_id}"
            ));
            if let Viewer::User(_) = viewer {
                q.push(
                    " AND ((d.type != 1 AND mb.occupant = 1 AND mb.hidden = 0) \
                       OR (d.type = 1 AND COALESCE(mb.hidden, 0) = 0))",
                );
            }
            push_conditions(q, &query.conditions, false)
        };
        let mut count = QueryBuilder::<Sqlite>::new("SELECT COUNT(*)");
        from(&mut count)?;
        let total: i64 = count
            .build_query_scalar()
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        if query.limit == 0 {
            return Ok((Vec::new(), total as u64));
        }
        let default_sort = match viewer {
            Viewer::User(_) => {
                "COALESCE(d.last_message_date_sent, d.created_at / 1000) DESC, d.id DESC"
            }
            Viewer::Admin => "d.id DESC",
        };
        // Two steps: pick the page's ids with cheap columns only, then compute the costly ones
        // (occupant lists, counts, the last message's receipts) for those rows alone.
        let mut q = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {DIALOG_COLUMNS}, COALESCE(mb.unread_count, CASE WHEN d.type = 1 THEN {} ELSE 0 END) AS unread, \
             COALESCE(mb.notifications, 1) AS notifications, COALESCE(mb.muted, 0) AS muted \
             FROM dialogs d LEFT JOIN dialog_members mb ON mb.dialog_id = d.id AND mb.user_id = {user} \
             WHERE d.id IN (SELECT d.id",
            unread_without_row(user)
        ));
        from(&mut q)?;
        push_sort(&mut q, &query.sort, false, default_sort)?;
        push_page(&mut q, query);
        q.push(")");
        push_sort(&mut q, &query.sort, false, default_sort)?;
        let rows = q.build().fetch_all(&self.pool).await.map_err(db)?;
        let items = rows
            .iter()
            .map(|r| {
                Ok((
                    dialog_from_row(r)?,
                    MemberState {
                        unread_count: r.try_get("unread").map_err(db)?,
                        notifications: r.try_get("notifications").map_err(db)?,
                        muted: r.try_get("muted").map_err(db)?,
                        hidden: false,
                    },
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((items, total as u64))
    }

    async fn admin_dialog_info(&self, dialog: ObjectId) -> Result<AdminDialogInfo> {
        let rows = sqlx::query("SELECT user_id, muted, hidden FROM dialog_members WHERE dialog_id = ? ORDER BY user_id")
            .bind(dialog.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        let mut info = AdminDialogInfo::default();
        for r in rows {
            let user: i64 = r.get("user_id");
            if r.get::<bool, _>("muted") {
                info.silent_ids.push(user);
            }
            if r.get::<bool, _>("hidden") {
                info.deleted_ids.push(user);
            }
        }
        Ok(info)
    }

    async fn save_dialog(&self, d: &Dialog) -> Result<()> {
        let _write = self.write.lock().await;
        sqlx::query(
            "UPDATE dialogs SET name = ?, description = ?, photo = ?, admins_ids = ?, \
             pinned_messages_ids = ?, data = ?, updated_at = ?, extensions = ? WHERE id = ?",
        )
        .bind(&d.name)
        .bind(&d.description)
        .bind(&d.photo)
        .bind(encode_ids(&d.admins_ids))
        .bind(encode_ids(&d.pinned_messages_ids))
        .bind(encode_object(&d.data))
        .bind(d.updated_at)
        .bind(encode_object(&d.extensions))
        .bind(d.id.to_string())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn add_members(&self, dialog: ObjectId, users: &[i64], now: Millis) -> Result<()> {
        let _write = self.write.lock().await;
        let mut tx = self.pool.begin().await.map_err(db)?;
        for user in users {
            sqlx::query(
                "INSERT INTO dialog_members (dialog_id, user_id, occupant, joined_at) VALUES (?, ?, 1, ?) \
                 ON CONFLICT (dialog_id, user_id) DO UPDATE SET occupant = 1, hidden = 0",
            )
            .bind(dialog.to_string())
            .bind(user)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn remove_members(&self, dialog: ObjectId, users: &[i64]) -> Result<()> {
        let _write = self.write.lock().await;
        let mut tx = self.pool.begin().await.map_err(db)?;
        for user in users {
            sqlx::query("DELETE FROM dialog_members WHERE dialog_id = ? AND user_id = ?")
                .bind(dialog.to_string())
                .bind(user)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn set_member_state(
        &self,
        dialog: ObjectId,
        user: i64,
        change: MemberChange,
        now: Millis,
    ) -> Result<()> {
        let (column, value): (&str, String) = match change {
            MemberChange::Hidden(v) => ("hidden", i64::from(v).to_string()),
            MemberChange::Notifications(v) => ("notifications", i64::from(v).to_string()),
            MemberChange::Muted(v) => ("muted", i64::from(v).to_string()),
            MemberChange::ClearedBefore(id) => ("cleared_before", id.to_string()),
        };
        let _write = self.write.lock().await;
        let mut tx = self.pool.begin().await.map_err(db)?;
        // A reader without a row starts with what they have not read yet.
        sqlx::query(
            "INSERT OR IGNORE INTO dialog_members (dialog_id, user_id, occupant, unread_count, joined_at) \
             VALUES (?1, ?2, 0, (SELECT COUNT(*) FROM messages x WHERE x.dialog_id = ?1 AND x.sender_id != ?2 \
             AND instr(x.read_ids, ',' || ?2 || ',') = 0), ?3)",
        )
        .bind(dialog.to_string())
        .bind(user)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let q =
            format!("UPDATE dialog_members SET {column} = ? WHERE dialog_id = ? AND user_id = ?");
        let mut stmt = sqlx::query(&q);
        stmt = match change {
            MemberChange::ClearedBefore(_) => stmt.bind(value),
            _ => stmt.bind(value.parse::<i64>().unwrap_or(0)),
        };
        stmt.bind(dialog.to_string())
            .bind(user)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if let MemberChange::ClearedBefore(_) = change {
            sqlx::query(
                "UPDATE dialog_members SET unread_count = 0 WHERE dialog_id = ? AND user_id = ?",
            )
            .bind(dialog.to_string())
            .bind(user)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn delete_dialog(&self, dialog: ObjectId) -> Result<()> {
        let _write = self.write.lock().await;
        sqlx::query("DELETE FROM dialogs WHERE id = ?")
            .bind(dialog.to_string())
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn members(&self, dialog: ObjectId, limit: u32, skip: u32) -> Result<(Vec<i64>, u64)> {
        let total: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM dialog_members WHERE dialog_id = ? AND occupant = 1",
        )
        .bind(dialog.to_string())
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT user_id FROM dialog_members WHERE dialog_id = ? AND occupant = 1 ORDER BY user_id LIMIT ? OFFSET ?",
        )
        .bind(dialog.to_string())
        .bind(i64::from(limit))
        .bind(i64::from(skip))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok((ids, total as u64))
    }

    async fn insert_message(&self, m: &Message) -> Result<()> {
        self.messages.write(MessageRow::new(m)).await
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
                q.push(" AND m.id > ").push_bind(c.to_string());
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
        let mut tx = self.pool.begin().await.map_err(db)?;
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
        tx.commit().await.map_err(db)
    }

    async fn edit_message(&self, id: ObjectId, body: Option<&str>, now: Millis) -> Result<()> {
        let _write = self.write.lock().await;
        let mut tx = self.pool.begin().await.map_err(db)?;
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
        tx.commit().await.map_err(db)
    }

    async fn delete_messages_for_user(
        &self,
        dialog: ObjectId,
        user: i64,
        ids: &[ObjectId],
    ) -> Result<()> {
        let tag = format!(",{user},");
        let _write = self.write.lock().await;
        let mut tx = self.pool.begin().await.map_err(db)?;
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
        tx.commit().await.map_err(db)
    }

    async fn delete_messages(&self, dialog: ObjectId, ids: &[ObjectId]) -> Result<()> {
        let d = dialog.to_string();
        let _write = self.write.lock().await;
        let mut tx = self.pool.begin().await.map_err(db)?;
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
        tx.commit().await.map_err(db)
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
        q.push(" AND (mb.cleared_before IS NULL OR m.id > mb.cleared_before)");
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

#[cfg(test)]
mod tests {
    use confab_core::chat::{Dialog, DialogType};
    use confab_core::ObjectId;

    use crate::chat::ChatStore;
    use crate::privacy::tests::account;
    use crate::sqlite::SqliteStore;
    use crate::AccountStore;

    /// user_id, occupant, hidden, unread_count, notifications, muted, cleared_before, joined_at.
    type MemberRow = (i64, i64, i64, i64, i64, i64, Option<String>, i64);

    fn private(app: i64, owner: i64, now: i64) -> Dialog {
        Dialog {
            id: ObjectId::generate(),
            app_id: app,
            kind: DialogType::Private,
            owner_id: owner,
            name: None,
            description: None,
            photo: None,
            occupants_ids: Vec::new(),
            occupants_count: 0,
            admins_ids: Vec::new(),
            pinned_messages_ids: Vec::new(),
            data: None,
            extensions: None,
            last_message: None,
            last_message_date_sent: None,
            last_message_id: None,
            last_message_user_id: None,
            last_message_delivered_ids: Vec::new(),
            last_message_read_ids: Vec::new(),
            created_at: now,
            updated_at: now,
        }
    }

    async fn counts(s: &SqliteStore) -> (i64, i64) {
        let dialogs = sqlx::query_scalar("SELECT COUNT(*) FROM dialogs")
            .fetch_one(s.pool())
            .await
            .unwrap();
        let members = sqlx::query_scalar("SELECT COUNT(*) FROM dialog_members")
            .fetch_one(s.pool())
            .await
            .unwrap();
        (dialogs, members)
    }

    #[tokio::test]
    async fn private_dialog_is_created_once_with_both_members() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path()).await.unwrap();
        let (app, a) = account(&s, 1).await;
        let (_, b) = account(&s, 2).await;
        let (app, low, high) = (app.get(), a.get().min(b.get()), a.get().max(b.get()));

        // Many first messages of the same pair at once, from either side.
        let tasks: Vec<_> = (0..16)
            .map(|n| {
                let s = s.clone();
                let owner = if n % 2 == 0 { low } else { high };
                tokio::spawn(async move {
                    let d = private(app, owner, 1000 + n);
                    let id = s.create_private_dialog(&d, low, high).await.unwrap();
                    let id = id.expect("both users exist");
                    (id, (id == d.id).then_some((d.id, d.created_at, d.owner_id)))
                })
            })
            .collect();
        let mut created = Vec::new();
        let mut ids = Vec::new();
        for t in tasks {
            let (id, fresh) = t.await.unwrap();
            ids.push(id);
            created.extend(fresh);
        }
        assert_eq!(created.len(), 1, "exactly one creation wins");
        let (winner, created_at, owner) = created[0];
        assert!(ids.iter().all(|id| *id == winner));
        assert_eq!(counts(&s).await, (1, 2));

        let row: (String, i64, i64, Option<String>, String, String, i64, i64) = sqlx::query_as(
            "SELECT id, type, owner_id, private_key, admins_ids, pinned_messages_ids, created_at, \
             updated_at FROM dialogs",
        )
        .fetch_one(s.pool())
        .await
        .unwrap();
        assert_eq!(
            row,
            (
                winner.to_string(),
                DialogType::Private as i64,
                owner,
                Some(format!("{low}:{high}")),
                String::new(),
                String::new(),
                created_at,
                created_at,
            )
        );
        let members: Vec<MemberRow> = sqlx::query_as(
            "SELECT user_id, occupant, hidden, unread_count, notifications, muted, cleared_before, \
             joined_at FROM dialog_members WHERE dialog_id = ? ORDER BY user_id",
        )
        .bind(winner.to_string())
        .fetch_all(s.pool())
        .await
        .unwrap();
        assert_eq!(
            members,
            vec![
                (low, 1, 0, 0, 1, 0, None, created_at),
                (high, 1, 0, 0, 1, 0, None, created_at),
            ]
        );
        assert_eq!(
            s.find_private_dialog(app, &format!("{low}:{high}"))
                .await
                .unwrap(),
            Some(winner)
        );

        // The REST path (`insert_dialog` with the key) finds the same dialog.
        let d = private(app, low, 5000);
        assert_eq!(
            s.insert_dialog(&d, Some(&format!("{low}:{high}")), &[low, high])
                .await
                .unwrap(),
            winner
        );
        assert_eq!(counts(&s).await, (1, 2));
    }

    #[tokio::test]
    async fn new_pairs_queued_together_are_created_in_one_batch() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path()).await.unwrap();
        let mut users = Vec::new();
        for n in 0..10 {
            users.push(account(&s, n).await.1.get());
        }
        let app = account(&s, 99).await.0.get();
        let unknown = users[9] + 1000;
        // Five pairs (each asked for three times) and two pairs with an unknown user, all queued
        // while the write lock is held, so the writer takes them as one batch.
        let mut asks = Vec::new();
        for round in 0..3 {
            for p in 0..5 {
                asks.push((users[2 * p], users[2 * p + 1], round));
            }
            asks.push((users[0], unknown, round));
        }
        let write = s.write.lock().await;
        let tasks: Vec<_> = asks
            .iter()
            .map(|&(low, high, round)| {
                let s = s.clone();
                tokio::spawn(async move {
                    let d = private(app, low, round);
                    (
                        low,
                        high,
                        s.create_private_dialog(&d, low, high).await.unwrap(),
                    )
                })
            })
            .collect();
        tokio::task::yield_now().await;
        drop(write);
        let mut by_pair = std::collections::HashMap::new();
        for t in tasks {
            let (low, high, id) = t.await.unwrap();
            if high == unknown {
                assert_eq!(id, None, "a pair with an unknown user gets no dialog");
                continue;
            }
            let id = id.expect("both users exist");
            // Every ask of a pair gets the same dialog.
            assert_eq!(*by_pair.entry((low, high)).or_insert(id), id);
        }
        assert_eq!(by_pair.len(), 5);
        assert_eq!(counts(&s).await, (5, 10));
        for ((low, high), id) in by_pair {
            let members: Vec<i64> = sqlx::query_scalar(
                "SELECT user_id FROM dialog_members WHERE dialog_id = ? ORDER BY user_id",
            )
            .bind(id.to_string())
            .fetch_all(s.pool())
            .await
            .unwrap();
            assert_eq!(members, vec![low, high]);
            assert_eq!(
                s.find_private_dialog(app, &format!("{low}:{high}"))
                    .await
                    .unwrap(),
                Some(id)
            );
        }
    }

    #[tokio::test]
    async fn private_dialog_with_an_unknown_user_is_not_created() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path()).await.unwrap();
        let (app, a) = account(&s, 1).await;
        let (_, b) = account(&s, 2).await;
        let (app, a, b) = (app.get(), a.get(), b.get());
        let unknown = a.max(b) + 1000;
        let d = private(app, a, 1);
        assert_eq!(s.create_private_dialog(&d, a, unknown).await.unwrap(), None);
        // Users of another app do not count either.
        let other = s.create_app("o", "k2", "s2", b"h2", 1).await.unwrap();
        let d = private(other.id.get(), a, 1);
        let (low, high) = (a.min(b), a.max(b));
        assert_eq!(s.create_private_dialog(&d, low, high).await.unwrap(), None);
        assert_eq!(counts(&s).await, (0, 0));
    }
}
