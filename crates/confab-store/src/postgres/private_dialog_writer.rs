//! Private dialogs, created in batches (see `group_commit`).
//!
//! The first 1:1 messages between many new pairs (a fresh app, a burst after a migration) each
//! need their pair's dialog; one statement per batch inserts them all. A row is inserted only
//! when both users of its pair exist, `ON CONFLICT DO NOTHING` keeps one dialog per pair (also
//! when the same pair is twice in a batch, or another node inserts it meanwhile), and the same
//! statement adds the two members of each dialog it inserted (a dialog that loses the race adds
//! nobody).

use std::collections::HashSet;

use async_trait::async_trait;
use confab_core::chat::Dialog;
use confab_core::Result;
use sqlx::PgConnection;

use super::group_commit::{BatchWrite, GroupCommit};
use super::rows::{encode_object, int_array_literal, text_array_literal};

/// A private dialog encoded for its row, with the pair of users its key names.
pub(crate) struct PrivateDialogRow {
    id: String,
    app_id: i64,
    kind: i64,
    owner_id: i64,
    name: Option<String>,
    description: Option<String>,
    photo: Option<String>,
    admins_ids: String,
    pinned_messages_ids: String,
    data: Option<String>,
    key: String,
    created_at: i64,
    updated_at: i64,
    extensions: Option<String>,
    low: i64,
    high: i64,
    /// App and key: the unique index's order.
    sort: String,
}

impl PrivateDialogRow {
    pub(crate) fn new(d: &Dialog, low: i64, high: i64) -> Self {
        let key = pair_key(low, high);
        Self {
            id: d.id.to_string(),
            app_id: d.app_id,
            kind: d.kind as i64,
            owner_id: d.owner_id,
            name: d.name.clone(),
            description: d.description.clone(),
            photo: d.photo.clone(),
            admins_ids: int_array_literal(&d.admins_ids),
            pinned_messages_ids: text_array_literal(&d.pinned_messages_ids),
            data: encode_object(&d.data),
            sort: format!("{:020}/{key}", d.app_id),
            key,
            created_at: d.created_at,
            updated_at: d.updated_at,
            extensions: encode_object(&d.extensions),
            low,
            high,
        }
    }
}

/// The unique key of a pair's private dialog.
pub(crate) fn pair_key(low: i64, high: i64) -> String {
    format!("{low}:{high}")
}

/// Answers, per row, whether it was inserted (else the pair has a dialog or a user is unknown).
pub(crate) struct PrivateDialogBatch;

pub(crate) type PrivateDialogWriter = GroupCommit<PrivateDialogBatch>;

#[async_trait]
impl BatchWrite for PrivateDialogBatch {
    type Row = PrivateDialogRow;
    type Out = bool;
    const NAME: &'static str = "private dialog";

    /// Batches take the pairs' unique keys in one order, so two cannot wait on each other.
    fn sort_key(row: &PrivateDialogRow) -> &str {
        &row.sort
    }

    async fn write(
        &self,
        db: &mut PgConnection,
        rows: &[&PrivateDialogRow],
    ) -> std::result::Result<Vec<Result<bool>>, sqlx::Error> {
        macro_rules! column {
            ($field:ident) => {
                rows.iter().map(|r| r.$field.clone()).collect::<Vec<_>>()
            };
        }
        let inserted: HashSet<String> = sqlx::query_scalar(
            "WITH d AS (INSERT INTO dialogs (id, app_id, type, owner_id, name, description, photo, admins_ids, \
             pinned_messages_ids, data, private_key, created_at, updated_at, extensions) \
             SELECT id, app_id, type, owner_id, name, description, photo, admins_ids::bigint[], \
                 pinned_messages_ids::text[], data::jsonb, private_key, created_at, updated_at, \
                 extensions::jsonb \
             FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[], $6::text[], \
                 $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::bigint[], \
                 $13::bigint[], $14::text[], $15::bigint[], $16::bigint[]) WITH ORDINALITY \
                 AS v(id, app_id, type, owner_id, name, description, photo, admins_ids, \
                 pinned_messages_ids, data, private_key, created_at, updated_at, extensions, low, high, n) \
             WHERE (SELECT u.app_id FROM users u WHERE u.id = v.low) = v.app_id \
                 AND (SELECT u.app_id FROM users u WHERE u.id = v.high) = v.app_id \
             ORDER BY n \
             ON CONFLICT DO NOTHING RETURNING id, private_key, created_at), \
             m AS (INSERT INTO dialog_members (dialog_id, user_id, occupant, joined_at) \
                 SELECT d.id, split_part(d.private_key, ':', side)::bigint, TRUE, d.created_at \
                 FROM d, (VALUES (1), (2)) AS sides(side) \
                 ON CONFLICT DO NOTHING) \
             SELECT id FROM d",
        )
        .bind(column!(id))
        .bind(column!(app_id))
        .bind(column!(kind))
        .bind(column!(owner_id))
        .bind(column!(name))
        .bind(column!(description))
        .bind(column!(photo))
        .bind(column!(admins_ids))
        .bind(column!(pinned_messages_ids))
        .bind(column!(data))
        .bind(column!(key))
        .bind(column!(created_at))
        .bind(column!(updated_at))
        .bind(column!(extensions))
        .bind(column!(low))
        .bind(column!(high))
        .fetch_all(&mut *db)
        .await?
        .into_iter()
        .collect();
        Ok(rows.iter().map(|r| Ok(inserted.contains(&r.id))).collect())
    }
}
