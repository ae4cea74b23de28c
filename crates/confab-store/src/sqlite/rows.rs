//! Rows and SQL fragments shared by the dialog and message stores: column lists, row decoding,
//! and the filters, sorts and pages of the chat API's queries.

use confab_core::chat::{Dialog, DialogType, Message};
use confab_core::query::{Condition, Field, Op, Query, Scalar, Sort};
use confab_core::{Error, ObjectId, Result};
use serde_json::{Map, Value};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite};

use super::db;

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

pub(crate) fn decode_ints(s: &str) -> Vec<i64> {
    s.split(',').filter_map(|v| v.parse().ok()).collect()
}

pub(crate) fn decode_strs(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect()
}

pub(crate) fn oid(s: &str) -> ObjectId {
    s.parse().unwrap_or_else(|_| ObjectId::generate())
}

pub(crate) fn json_map(s: Option<String>) -> Option<Map<String, Value>> {
    s.and_then(|t| serde_json::from_str::<Map<String, Value>>(&t).ok())
}

pub(crate) const DIALOG_COLUMNS: &str = "d.id, d.app_id, d.type, d.owner_id, d.name, d.description, d.photo, \
    d.admins_ids, d.pinned_messages_ids, d.data, d.last_message, d.last_message_date_sent, \
    d.last_message_id, d.last_message_user_id, d.created_at, d.updated_at, d.extensions, \
    (SELECT read_ids FROM messages WHERE id = d.last_message_id) AS last_read_ids, \
    (SELECT delivered_ids FROM messages WHERE id = d.last_message_id) AS last_delivered_ids, \
    CASE WHEN d.type IN (2, 3) THEN (SELECT group_concat(user_id) FROM \
        (SELECT user_id FROM dialog_members WHERE dialog_id = d.id AND occupant = 1 ORDER BY user_id)) END AS occupants, \
    CASE WHEN d.type = 4 THEN (SELECT COUNT(*) FROM dialog_members WHERE dialog_id = d.id AND occupant = 1) ELSE 0 END AS occupants_count";

pub(crate) fn dialog_from_row(r: &SqliteRow) -> Result<Dialog> {
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

pub(crate) const MESSAGE_COLUMNS: &str =
    "m.id, m.dialog_id, m.app_id, m.sender_id, m.recipient_id, m.body, \
    m.date_sent, m.attachments, m.custom, m.read_ids, m.delivered_ids, m.deleted_for_ids, \
    m.reactions, m.markable, m.views_count, m.edited_at, m.created_at, m.updated_at";

pub(crate) fn message_from_row(r: &SqliteRow) -> Result<Message> {
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
pub(crate) fn column(field: &Field, messages: bool) -> Option<&'static str> {
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
        (Field::StoredAt, true) => "m.created_at",
        (Field::SenderId, true) => "m.sender_id",
        (Field::RecipientId, true) => "m.recipient_id",
        (Field::ChatDialogId, true) => "m.dialog_id",
        _ => return None,
    })
}

pub(crate) fn push_scalar(q: &mut QueryBuilder<'_, Sqlite>, v: &Scalar) {
    match v {
        Scalar::Int(i) => q.push_bind(*i),
        Scalar::Text(t) => q.push_bind(t.clone()),
    };
}

pub(crate) fn like_pattern(v: &Scalar) -> String {
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
pub(crate) fn push_conditions(
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

pub(crate) fn push_sort(
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
            // Ties in order of creation: private dialogs' ids may not follow it (some are derived
            // from their pair), so dialogs tie on the millisecond they were created first.
            let tie = if messages {
                format!("m.id {dir}")
            } else {
                format!("d.created_at {dir}, d.id {dir}")
            };
            q.push(format!(" ORDER BY {expr} {dir}, {tie}"));
        }
    }
    Ok(())
}

/// Appends ` AND <column> IN (<ids>)`; an empty list matches nothing.
pub(crate) fn push_id_list(q: &mut QueryBuilder<'_, Sqlite>, column: &str, ids: &[ObjectId]) {
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

pub(crate) fn push_page(q: &mut QueryBuilder<'_, Sqlite>, query: &Query) {
    q.push(" LIMIT ")
        .push_bind(i64::from(query.limit))
        .push(" OFFSET ")
        .push_bind(i64::from(query.skip));
}

/// Unread messages of `user` in a dialog they have no state row for (a broadcast reader).
/// The ids are integers, formatted into the SQL so they need no placeholder.
pub(crate) fn unread_without_row(user: i64) -> String {
    format!(
        "(SELECT COUNT(*) FROM messages x WHERE x.dialog_id = d.id \
         AND x.sender_id != {user} AND instr(x.read_ids, ',{user},') = 0)"
    )
}

/// ` AND <message m came after the cutoff message>`: by when each was stored, then by id (ids
/// carry whole seconds, and messages made on several nodes in one second need not follow the
/// order they were stored in); by id alone once the cutoff message is gone. `cutoff` is an SQL
/// expression: a column, or an ObjectId literal (hex only, so it can be written inline).
pub(crate) fn push_after_cutoff<DB: sqlx::Database>(q: &mut QueryBuilder<'_, DB>, cutoff: &str) {
    q.push(format!(
        " AND (CASE WHEN EXISTS (SELECT 1 FROM messages c WHERE c.id = {cutoff}) \
         THEN (m.created_at, m.id) > (SELECT c.created_at, c.id FROM messages c WHERE c.id = {cutoff}) \
         ELSE m.id > {cutoff} END)"
    ));
}
