//! Rows and SQL fragments shared by the dialog and message stores: column lists, row decoding,
//! and the filters, sorts and pages of the chat API's queries (as [`crate::sqlite`]'s `rows`,
//! with SQLite's comparison rules reproduced where PostgreSQL's differ).

use confab_core::chat::{Dialog, DialogType, Message};
use confab_core::query::{Condition, Field, Op, Query, Scalar, Sort};
use confab_core::{Error, ObjectId, Result};
use serde_json::{Map, Value};
use sqlx::postgres::PgRow;
use sqlx::{Postgres, QueryBuilder, Row};

use super::db;

/// A JSON object column (`data`, `extensions`): its text, or NULL (bound as `$n::jsonb`).
pub(crate) fn encode_object(m: &Option<Map<String, Value>>) -> Option<String> {
    m.as_ref().map(|m| Value::Object(m.clone()).to_string())
}

pub(crate) fn oid(s: &str) -> ObjectId {
    s.parse().unwrap_or_else(|_| ObjectId::generate())
}

pub(crate) fn json_map(s: Option<String>) -> Option<Map<String, Value>> {
    s.and_then(|t| serde_json::from_str::<Map<String, Value>>(&t).ok())
}

/// The ids of `ObjectId`s, for binding as `text[]`.
pub(crate) fn id_strings(ids: &[ObjectId]) -> Vec<String> {
    ids.iter().map(ObjectId::to_string).collect()
}

pub(crate) const DIALOG_COLUMNS: &str = "d.id, d.app_id, d.type, d.owner_id, d.name, d.description, d.photo, \
    d.admins_ids, d.pinned_messages_ids, d.data::text AS data, d.last_message, d.last_message_date_sent, \
    d.last_message_id, d.last_message_user_id, d.created_at, d.updated_at, d.extensions::text AS extensions, \
    (SELECT read_ids FROM messages WHERE id = d.last_message_id) AS last_read_ids, \
    (SELECT delivered_ids FROM messages WHERE id = d.last_message_id) AS last_delivered_ids, \
    CASE WHEN d.type IN (2, 3) THEN ARRAY(SELECT user_id FROM dialog_members \
        WHERE dialog_id = d.id AND occupant ORDER BY user_id) END AS occupants, \
    CASE WHEN d.type = 4 THEN (SELECT COUNT(*) FROM dialog_members WHERE dialog_id = d.id AND occupant) ELSE 0 END AS occupants_count";

pub(crate) fn dialog_from_row(r: &PgRow) -> Result<Dialog> {
    let kind: i64 = r.try_get("type").map_err(db)?;
    let id: String = r.try_get("id").map_err(db)?;
    Ok(Dialog {
        id: oid(&id),
        app_id: r.try_get("app_id").map_err(db)?,
        kind: DialogType::from_i64(kind)?,
        owner_id: r.try_get("owner_id").map_err(db)?,
        name: r.try_get("name").map_err(db)?,
        description: r.try_get("description").map_err(db)?,
        photo: r.try_get("photo").map_err(db)?,
        occupants_ids: r
            .try_get::<Option<Vec<i64>>, _>("occupants")
            .map_err(db)?
            .unwrap_or_default(),
        occupants_count: r.try_get("occupants_count").map_err(db)?,
        admins_ids: r.try_get("admins_ids").map_err(db)?,
        pinned_messages_ids: r.try_get("pinned_messages_ids").map_err(db)?,
        data: json_map(r.try_get("data").map_err(db)?),
        extensions: json_map(r.try_get("extensions").map_err(db)?),
        last_message_read_ids: r
            .try_get::<Option<Vec<i64>>, _>("last_read_ids")
            .map_err(db)?
            .unwrap_or_default(),
        last_message_delivered_ids: r
            .try_get::<Option<Vec<i64>>, _>("last_delivered_ids")
            .map_err(db)?
            .unwrap_or_default(),
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

pub(crate) fn message_from_row(r: &PgRow) -> Result<Message> {
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
        read_ids: r.try_get("read_ids").map_err(db)?,
        delivered_ids: r.try_get("delivered_ids").map_err(db)?,
        deleted_for_ids: r.try_get("deleted_for_ids").map_err(db)?,
        reactions: serde_json::from_str(&reactions).unwrap_or_default(),
        markable: r.try_get("markable").map_err(db)?,
        views_count: r.try_get("views_count").map_err(db)?,
        edited_at: r.try_get("edited_at").map_err(db)?,
        created_at: r.try_get("created_at").map_err(db)?,
        updated_at: r.try_get("updated_at").map_err(db)?,
    })
}

/// The SQL expression of a filterable field and whether it is an integer; `None` when the field
/// does not apply to the table. Integer division truncates as SQLite's does.
pub(crate) fn column(field: &Field, messages: bool) -> Option<(&'static str, bool)> {
    Some(match (field, messages) {
        (Field::Id, false) => ("d.id", false),
        (Field::Id, true) => ("m.id", false),
        (Field::DialogType, false) => ("d.type", true),
        (Field::Name, false) => ("d.name", false),
        (Field::LastMessageDateSent, false) => ("d.last_message_date_sent", true),
        (Field::CreatedAt, false) => ("(d.created_at / 1000)", true),
        (Field::UpdatedAt, false) => ("(d.updated_at / 1000)", true),
        (Field::CreatedAt, true) => ("(m.created_at / 1000)", true),
        (Field::UpdatedAt, true) => ("(m.updated_at / 1000)", true),
        (Field::Body, true) => ("m.body", false),
        (Field::DateSent, true) => ("m.date_sent", true),
        (Field::StoredAt, true) => ("m.created_at", true),
        (Field::SenderId, true) => ("m.sender_id", true),
        (Field::RecipientId, true) => ("m.recipient_id", true),
        (Field::ChatDialogId, true) => ("m.dialog_id", false),
        _ => return None,
    })
}

/// A filter value as the column's type. SQLite converts between text and integers when a
/// column has a type (and compares byte-wise); PostgreSQL refuses to compare mixed types, so the
/// conversion is done here. `None`: text that is no number, compared with an integer column.
fn typed(v: &Scalar, int_column: bool) -> Option<Scalar> {
    match (v, int_column) {
        (Scalar::Text(t), true) => t.trim().parse().ok().map(Scalar::Int),
        (Scalar::Int(i), false) => Some(Scalar::Text(i.to_string())),
        _ => Some(v.clone()),
    }
}

fn push_typed(q: &mut QueryBuilder<'_, Postgres>, v: Scalar) {
    match v {
        Scalar::Int(i) => q.push_bind(i),
        // Byte-wise, as SQLite's BINARY collation (ids are "C" already; names need it).
        Scalar::Text(t) => q.push_bind(t).push(" COLLATE \"C\""),
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

fn comparison(op: Op) -> &'static str {
    match op {
        Op::Eq => "=",
        Op::Lt => "<",
        Op::Lte => "<=",
        Op::Gt => ">",
        Op::Gte => ">=",
        _ => "IS DISTINCT FROM",
    }
}

/// A custom parameter `data.<name>` compared as SQLite compares its `json_extract` value: a JSON
/// number (or boolean, as 1 or 0) is a number, a string (or an object or array, as JSON text) is
/// text, JSON null or a missing key is NULL; a number never equals text and sorts below any.
fn push_custom(q: &mut QueryBuilder<'_, Postgres>, name: &str, op: Op, values: &[Scalar]) {
    let e = format!("NULLIF(d.data -> '{name}', 'null'::jsonb)");
    let num = format!(
        "(CASE jsonb_typeof({e}) WHEN 'number' THEN ({e} #>> '{{}}')::numeric \
         WHEN 'boolean' THEN CASE WHEN {e} = 'true'::jsonb THEN 1 ELSE 0 END END)"
    );
    let txt = format!(
        "(CASE WHEN jsonb_typeof({e}) IN ('string', 'object', 'array') THEN {e} #>> '{{}}' END)"
    );
    match op {
        Op::Eq | Op::In | Op::Nin | Op::All | Op::Ne => {
            if op == Op::All && values.len() > 1 {
                // A single value cannot equal two different ones.
                q.push("FALSE");
                return;
            }
            let values = if matches!(op, Op::Eq | Op::Ne) {
                &values[..1]
            } else {
                values
            };
            let mut ints: Vec<i64> = Vec::new();
            let mut texts: Vec<String> = Vec::new();
            for v in values {
                match v {
                    Scalar::Int(i) => ints.push(*i),
                    Scalar::Text(t) => texts.push(t.clone()),
                }
            }
            // NOT IN is NULL for a NULL value; IS NOT (Ne) is true for it.
            q.push(match op {
                Op::Nin => format!("{e} IS NOT NULL AND NOT ("),
                Op::Ne => "NOT (".to_string(),
                _ => "(".to_string(),
            });
            q.push(format!("COALESCE({num} = ANY("))
                .push_bind(ints)
                .push(format!("), FALSE) OR COALESCE({txt} COLLATE \"C\" = ANY("))
                .push_bind(texts)
                .push("), FALSE))");
        }
        Op::Lt | Op::Lte | Op::Gt | Op::Gte => {
            let sym = comparison(op);
            let below = matches!(op, Op::Lt | Op::Lte);
            match &values[0] {
                Scalar::Int(i) => {
                    q.push(format!(
                        "CASE WHEN {e} IS NULL THEN NULL WHEN {num} IS NOT NULL THEN {num} {sym} "
                    ));
                    q.push_bind(*i).push(format!(" ELSE {} END", !below));
                }
                Scalar::Text(t) => {
                    q.push(format!(
                        "CASE WHEN {e} IS NULL THEN NULL WHEN {num} IS NOT NULL THEN {below} \
                         ELSE {txt} COLLATE \"C\" {sym} "
                    ));
                    q.push_bind(t.clone()).push(" END");
                }
            }
        }
        Op::Ctn => {
            q.push(format!("COALESCE({txt}, {num}::text) ILIKE "));
            q.push_bind(like_pattern(&values[0]));
            q.push(" ESCAPE '\\'");
        }
    }
}

/// Appends ` AND <condition>` for each condition.
pub(crate) fn push_conditions(
    q: &mut QueryBuilder<'_, Postgres>,
    conditions: &[Condition],
    messages: bool,
) -> Result<()> {
    for c in conditions {
        if c.values.is_empty() {
            return Err(Error::bad_request("a filter needs a value"));
        }
        // Attachment types are an array column: membership tests only.
        if c.field == Field::AttachmentType && messages {
            let negate = matches!(c.op, Op::Ne | Op::Nin);
            let all = c.op == Op::All;
            q.push(if negate { " AND NOT (" } else { " AND (" });
            for (i, v) in c.values.iter().enumerate() {
                if i > 0 {
                    q.push(if all { " AND " } else { " OR " });
                }
                let t = match v {
                    Scalar::Int(n) => n.to_string(),
                    Scalar::Text(t) => t.clone(),
                };
                q.push_bind(t).push(" = ANY(m.attachment_types)");
            }
            q.push(")");
            continue;
        }
        if let Field::Custom(name) = &c.field {
            if messages {
                return Err(Error::bad_request("this field cannot be filtered here"));
            }
            // Names are checked here too: they are formatted into the SQL.
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(Error::bad_request("invalid custom field name"));
            }
            q.push(" AND ");
            push_custom(q, name, c.op, &c.values);
            continue;
        }
        let (expr, int_column) = column(&c.field, messages)
            .ok_or_else(|| Error::bad_request("this field cannot be filtered here"))?;
        q.push(" AND ");
        match c.op {
            Op::Eq | Op::Lt | Op::Lte | Op::Gt | Op::Gte | Op::Ne => {
                match typed(&c.values[0], int_column) {
                    Some(v) => {
                        q.push(format!("{expr} {} ", comparison(c.op)));
                        push_typed(q, v);
                    }
                    // SQLite: an integer is below any text, and never equal to it.
                    None => {
                        q.push(match c.op {
                            Op::Eq | Op::Gt | Op::Gte => "FALSE".to_string(),
                            Op::Ne => "TRUE".to_string(),
                            _ => format!("{expr} IS NOT NULL"),
                        });
                    }
                }
            }
            Op::In | Op::Nin | Op::All => {
                if c.op == Op::All && c.values.len() > 1 {
                    // A single-valued field cannot equal two different values.
                    q.push("FALSE");
                    continue;
                }
                let values: Vec<Scalar> = c
                    .values
                    .iter()
                    .filter_map(|v| typed(v, int_column))
                    .collect();
                if values.is_empty() {
                    // Nothing it could equal.
                    q.push(if c.op == Op::Nin {
                        format!("{expr} IS NOT NULL")
                    } else {
                        "FALSE".to_string()
                    });
                    continue;
                }
                q.push(format!(
                    "{expr} {} (",
                    if c.op == Op::Nin { "NOT IN" } else { "IN" }
                ));
                for (i, v) in values.into_iter().enumerate() {
                    if i > 0 {
                        q.push(", ");
                    }
                    push_typed(q, v);
                }
                q.push(")");
            }
            Op::Ctn => {
                // SQLite's LIKE ignores ASCII case and reads integers as text.
                q.push(format!("({expr})::text ILIKE "));
                q.push_bind(like_pattern(&c.values[0]));
                q.push(" ESCAPE '\\'");
            }
        }
    }
    Ok(())
}

pub(crate) fn push_sort(
    q: &mut QueryBuilder<'_, Postgres>,
    sort: &Option<Sort>,
    messages: bool,
    default: &str,
) -> Result<()> {
    match sort {
        None => {
            q.push(" ORDER BY ").push(default);
        }
        Some(s) => {
            let (expr, int_column) = column(&s.field, messages)
                .ok_or_else(|| Error::bad_request("this field cannot be sorted on"))?;
            let dir = if s.desc { "DESC" } else { "ASC" };
            // SQLite sorts NULLs first ascending and last descending; text byte-wise.
            let nulls = if s.desc { "NULLS LAST" } else { "NULLS FIRST" };
            let collate = if int_column { "" } else { " COLLATE \"C\"" };
            // As on SQLite: dialogs tie on the millisecond they were created first.
            let tie = if messages {
                format!("m.id {dir}")
            } else {
                format!("d.created_at {dir}, d.id {dir}")
            };
            q.push(format!(" ORDER BY {expr}{collate} {dir} {nulls}, {tie}"));
        }
    }
    Ok(())
}

/// Appends ` AND <column> = ANY(<ids>)`; an empty list matches nothing.
pub(crate) fn push_id_list(q: &mut QueryBuilder<'_, Postgres>, column: &str, ids: &[ObjectId]) {
    q.push(format!(" AND {column} = ANY("))
        .push_bind(id_strings(ids))
        .push(")");
}

pub(crate) fn push_page(q: &mut QueryBuilder<'_, Postgres>, query: &Query) {
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
         AND x.sender_id <> {user} AND NOT ({user} = ANY(x.read_ids)))"
    )
}

/// `{1,2}`: an integer list as one text value, for a per-row array inside a bound array (a
/// PostgreSQL array has one length per dimension, so a batch of lists cannot be a 2-D array).
pub(crate) fn int_array_literal(ids: &[i64]) -> String {
    format!(
        "{{{}}}",
        ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
    )
}

/// `{"a","b"}`: a text list as one text value (see [`int_array_literal`]), every element quoted.
pub(crate) fn text_array_literal<S: AsRef<str>>(items: &[S]) -> String {
    let quoted: Vec<String> = items
        .iter()
        .map(|s| {
            format!(
                "\"{}\"",
                s.as_ref().replace('\\', "\\\\").replace('"', "\\\"")
            )
        })
        .collect();
    format!("{{{}}}", quoted.join(","))
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
