//! Private dialogs, created in batches (see `group_commit`).
//!
//! The first 1:1 messages between many new pairs (a fresh app, a burst after a migration) each
//! need their pair's dialog; one statement per batch inserts them all. A row is inserted only
//! when both users of its pair exist, `ON CONFLICT DO NOTHING` keeps one dialog per pair (also
//! when the same pair is twice in a batch), and the `dialogs_private_members` trigger adds the
//! two members in the same statement.

use std::collections::HashSet;

use async_trait::async_trait;
use confab_core::chat::Dialog;
use confab_core::Result;
use sqlx::{QueryBuilder, Sqlite, Transaction};

use super::group_commit::{BatchWrite, GroupCommit};
use super::rows::{encode_ids, encode_object};

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
}

impl PrivateDialogRow {
    pub(crate) fn new(d: &Dialog, low: i64, high: i64) -> Self {
        Self {
            id: d.id.to_string(),
            app_id: d.app_id,
            kind: d.kind as i64,
            owner_id: d.owner_id,
            name: d.name.clone(),
            description: d.description.clone(),
            photo: d.photo.clone(),
            admins_ids: encode_ids(&d.admins_ids),
            pinned_messages_ids: encode_ids(&d.pinned_messages_ids),
            data: encode_object(&d.data),
            key: pair_key(low, high),
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

    async fn write(
        &self,
        tx: &mut Transaction<'_, Sqlite>,
        rows: &[PrivateDialogRow],
    ) -> std::result::Result<Vec<Result<bool>>, sqlx::Error> {
        let mut q = QueryBuilder::<Sqlite>::new(
            "WITH pending (id, app_id, type, owner_id, name, description, photo, admins_ids, \
             pinned_messages_ids, data, private_key, created_at, updated_at, extensions, low, high) AS (",
        );
        q.push_values(rows, |mut b, r| {
            b.push_bind(&r.id)
                .push_bind(r.app_id)
                .push_bind(r.kind)
                .push_bind(r.owner_id)
                .push_bind(&r.name)
                .push_bind(&r.description)
                .push_bind(&r.photo)
                .push_bind(&r.admins_ids)
                .push_bind(&r.pinned_messages_ids)
                .push_bind(&r.data)
                .push_bind(&r.key)
                .push_bind(r.created_at)
                .push_bind(r.updated_at)
                .push_bind(&r.extensions)
                .push_bind(r.low)
                .push_bind(r.high);
        });
        // The WHERE also keeps the SELECT from being read as part of the upsert clause.
        q.push(
            ") INSERT INTO dialogs (id, app_id, type, owner_id, name, description, photo, admins_ids, \
             pinned_messages_ids, data, private_key, created_at, updated_at, extensions) \
             SELECT id, app_id, type, owner_id, name, description, photo, admins_ids, \
             pinned_messages_ids, data, private_key, created_at, updated_at, extensions FROM pending \
             WHERE (SELECT COUNT(*) FROM users u WHERE u.app_id = pending.app_id AND u.id IN (pending.low, pending.high)) = 2 \
             ON CONFLICT DO NOTHING RETURNING id",
        );
        // Not kept prepared: the text differs with every batch size.
        let inserted: HashSet<String> = q
            .build_query_scalar()
            .persistent(false)
            .fetch_all(&mut **tx)
            .await?
            .into_iter()
            .collect();
        Ok(rows.iter().map(|r| Ok(inserted.contains(&r.id))).collect())
    }
}
