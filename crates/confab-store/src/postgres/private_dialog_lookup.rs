//! Private dialogs looked up by pair, in batches (see `group_commit`, which runs read statements
//! as well as writes).
//!
//! A 1:1 message not saved to history still carries its pair's dialog id, so the first message
//! of each pair reads it (a pair may have a dialog made by REST, by another node, before a
//! restart). When many new pairs start at once, one query per message was most of what the
//! database did for them; here the lookups that come while one is running share the next query.

use std::collections::HashMap;

use async_trait::async_trait;
use confab_core::{ObjectId, Result};
use sqlx::PgConnection;

use super::group_commit::{BatchWrite, GroupCommit};
use super::rows::oid;

/// One pair's lookup: its app and unique key (`low:high`).
pub(crate) struct PairLookup {
    app_id: i64,
    key: String,
    /// App and key, for the batch's order (a read needs none; the trait asks for one).
    sort: String,
}

impl PairLookup {
    pub(crate) fn new(app_id: i64, key: &str) -> Self {
        Self {
            app_id,
            key: key.to_string(),
            sort: format!("{app_id:020}/{key}"),
        }
    }
}

/// Each pair's position in the batch (from 1) and its dialog's id, for the pairs that have one.
///
/// A subquery per pair rather than a join: a prepared statement soon runs with a generic plan,
/// made from the table's statistics, and on a new database, before anything has analyzed
/// `dialogs`, the join's generic plan hashed a sequential scan of the whole table. Every lookup
/// then read every dialog as a burst of first contacts filled the table. A subquery that matches
/// the unique key has only the index lookup to choose from, whatever the statistics.
pub const PAIR_LOOKUP_SQL: &str = "SELECT n, id FROM (SELECT v.n, \
         (SELECT d.id FROM dialogs d WHERE d.app_id = v.app_id AND d.private_key = v.private_key) AS id \
     FROM UNNEST($1::bigint[], $2::text[]) WITH ORDINALITY AS v(app_id, private_key, n)) AS found \
     WHERE id IS NOT NULL";

/// Answers, per pair, its dialog's id if it has one.
pub(crate) struct PairLookupBatch;

pub(crate) type PrivateDialogLookup = GroupCommit<PairLookupBatch>;

#[async_trait]
impl BatchWrite for PairLookupBatch {
    type Row = PairLookup;
    type Out = Option<ObjectId>;
    const NAME: &'static str = "private dialog lookup";

    fn sort_key(row: &PairLookup) -> &str {
        &row.sort
    }

    async fn write(
        &self,
        db: &mut PgConnection,
        rows: &[&PairLookup],
    ) -> std::result::Result<Vec<Result<Option<ObjectId>>>, sqlx::Error> {
        let apps: Vec<i64> = rows.iter().map(|r| r.app_id).collect();
        let keys: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
        let found: HashMap<i64, String> = sqlx::query_as(PAIR_LOOKUP_SQL)
            .bind(apps)
            .bind(keys)
            .fetch_all(&mut *db)
            .await?
            .into_iter()
            .collect();
        Ok((1..=rows.len() as i64)
            .map(|n| Ok(found.get(&n).map(|id| oid(id))))
            .collect())
    }
}
