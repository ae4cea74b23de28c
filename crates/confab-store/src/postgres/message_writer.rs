//! Stored messages, written in batches (see `group_commit`): concurrent inserts share one
//! statement in one transaction, and the statement trigger of migration 0600 updates each
//! dialog and its members' unread counts once per batch.

use std::collections::HashSet;

use async_trait::async_trait;
use confab_core::chat::Message;
use confab_core::{Error, Result};
use serde_json::Value;
use sqlx::PgConnection;

use super::group_commit::{BatchWrite, GroupCommit};
use super::rows::{int_array_literal, text_array_literal};

/// A message encoded for its row, so the writer only binds.
pub(crate) struct MessageRow {
    id: String,
    dialog_id: String,
    app_id: i64,
    sender_id: i64,
    recipient_id: i64,
    body: Option<String>,
    date_sent: i64,
    attachments: String,
    /// Array literals: one bound array of them carries every row's list.
    attachment_types: String,
    custom: Option<String>,
    read_ids: String,
    delivered_ids: String,
    markable: bool,
    created_at: i64,
    updated_at: i64,
    /// Stored only if the sender is an occupant of the dialog.
    occupant_only: bool,
}

impl MessageRow {
    /// The row of a message whose sender the caller takes for an occupant of its dialog: the
    /// statement checks it, in the same round trip.
    pub(crate) fn of_occupant(m: &Message) -> Self {
        Self {
            occupant_only: true,
            ..Self::new(m)
        }
    }

    pub(crate) fn new(m: &Message) -> Self {
        let types: Vec<&str> = m
            .attachments
            .iter()
            .filter_map(|a| a.get("type").and_then(Value::as_str))
            .collect();
        Self {
            id: m.id.to_string(),
            dialog_id: m.dialog_id.to_string(),
            app_id: m.app_id,
            sender_id: m.sender_id,
            recipient_id: m.recipient_id,
            body: m.body.clone(),
            date_sent: m.date_sent,
            attachments: Value::Array(m.attachments.clone()).to_string(),
            attachment_types: text_array_literal(&types),
            custom: (!m.custom.is_empty()).then(|| Value::Object(m.custom.clone()).to_string()),
            read_ids: int_array_literal(&m.read_ids),
            delivered_ids: int_array_literal(&m.delivered_ids),
            markable: m.markable,
            created_at: m.created_at,
            updated_at: m.updated_at,
            occupant_only: false,
        }
    }
}

pub(crate) struct MessageBatch;

pub(crate) type MessageWriter = GroupCommit<MessageBatch>;

/// The batch insert. Per row: stored, the id was taken already (also by an earlier row of the
/// same batch), or (`occupant_only`) the sender is not an occupant of the dialog.
///
/// The occupant check is one lookup of the member's key per row. `OFFSET 0` keeps PostgreSQL
/// from turning the `EXISTS` into a hash of member rows: its generic plan, made before anything
/// analyzed a new database's `dialog_members`, built that hash from a sequential scan of the
/// whole table once per batch, as the table grew.
pub const MESSAGE_INSERT_SQL: &str = "INSERT INTO messages (id, dialog_id, app_id, sender_id, recipient_id, body, date_sent, \
             attachments, attachment_types, custom, read_ids, delivered_ids, markable, created_at, updated_at) \
             SELECT id, dialog_id, app_id, sender_id, recipient_id, body, date_sent, attachments, \
                 attachment_types::text[], custom, read_ids::bigint[], delivered_ids::bigint[], markable, \
                 created_at, updated_at \
             FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[], \
                 $7::bigint[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], \
                 $13::boolean[], $14::bigint[], $15::bigint[], $16::boolean[]) WITH ORDINALITY \
                 AS v(id, dialog_id, app_id, sender_id, recipient_id, body, date_sent, attachments, \
                 attachment_types, custom, read_ids, delivered_ids, markable, created_at, updated_at, \
                 occupant_only, n) \
             WHERE NOT v.occupant_only OR EXISTS (SELECT 1 FROM dialog_members mb \
                 WHERE mb.dialog_id = v.dialog_id AND mb.user_id = v.sender_id AND mb.occupant \
                 OFFSET 0) \
             ORDER BY n \
             ON CONFLICT (id) DO NOTHING RETURNING id";

#[async_trait]
impl BatchWrite for MessageBatch {
    type Row = MessageRow;
    type Out = ();
    const NAME: &'static str = "message";

    /// Rows of one dialog together, in their order: the dialog rows are locked in id order.
    fn sort_key(row: &MessageRow) -> &str {
        &row.dialog_id
    }

    /// One statement whatever the batch size (so it stays prepared): every column is an array
    /// ([`MESSAGE_INSERT_SQL`]).
    async fn write(
        &self,
        db: &mut PgConnection,
        rows: &[&MessageRow],
    ) -> std::result::Result<Vec<Result<()>>, sqlx::Error> {
        macro_rules! column {
            ($field:ident) => {
                rows.iter().map(|r| r.$field.clone()).collect::<Vec<_>>()
            };
        }
        let inserted: Vec<String> = sqlx::query_scalar(MESSAGE_INSERT_SQL)
            .bind(column!(id))
            .bind(column!(dialog_id))
            .bind(column!(app_id))
            .bind(column!(sender_id))
            .bind(column!(recipient_id))
            .bind(column!(body))
            .bind(column!(date_sent))
            .bind(column!(attachments))
            .bind(column!(attachment_types))
            .bind(column!(custom))
            .bind(column!(read_ids))
            .bind(column!(delivered_ids))
            .bind(column!(markable))
            .bind(column!(created_at))
            .bind(column!(updated_at))
            .bind(column!(occupant_only))
            .fetch_all(&mut *db)
            .await?;
        let mut inserted: HashSet<String> = inserted.into_iter().collect();
        // Rows left out for their sender, told apart from taken ids (rare: one more read).
        let unsure: Vec<String> = rows
            .iter()
            .filter(|m| m.occupant_only && !inserted.contains(&m.id))
            .map(|m| m.id.clone())
            .collect();
        let taken: HashSet<String> = if unsure.is_empty() {
            HashSet::new()
        } else {
            sqlx::query_scalar("SELECT id FROM messages WHERE id = ANY($1)")
                .bind(&unsure)
                .fetch_all(&mut *db)
                .await?
                .into_iter()
                .collect()
        };
        Ok(rows
            .iter()
            .map(|m| {
                if inserted.remove(&m.id) {
                    Ok(())
                } else if m.occupant_only && !taken.contains(&m.id) {
                    Err(Error::not_found("Dialog not found"))
                } else {
                    // A client retry: storing the message once is enough.
                    Err(Error::invalid("_id", "has already been taken"))
                }
            })
            .collect())
    }
}
