//! The PostgreSQL backend: every store trait on one connection pool, for deployments that run
//! several nodes against one database.
//!
//! One file per capability trait, as in [`crate::sqlite`]; `rows` holds what the chat files
//! share. Writes that come in bursts (stored messages, new private dialogs) go through
//! group-commit writers as on SQLite (`message_writer`, `private_dialog_writer` on
//! `group_commit`): one multi-row statement and one plain transaction per batch, several batches
//! at once. Everything else is one statement or one short transaction per call, with arrays
//! (`UNNEST`, `= ANY`) wherever a call reads or writes many rows.
//!
//! Needs PostgreSQL 12 or later (generated columns) and a UTF8 database; the user connecting
//! creates the schema on first start (tables, indexes, PL/pgSQL triggers, one SQL function), so
//! it needs CREATE on the database's schema then.
//!
//! Lock order, so concurrent writers (here and on other nodes) queue instead of deadlocking:
//! - a dialog row before its messages, messages before member rows. Writers that change several
//!   member rows of a dialog lock the dialog row first (`lock_dialog`); the message trigger
//!   updates the dialog before the members, and message batches visit dialogs in id order;
//! - sessions before users, several of either in id order;
//! - what a per-user limit or rule guards (the offline queue's bound, the contact limit, the one
//!   default privacy list) is counted or changed only while holding the user's row.

mod accounts;
mod blobs;
mod chatserver;
mod dialogs;
mod group_commit;
mod message_writer;
mod messages;
mod offline;
mod privacy;
mod private_dialog_lookup;
mod private_dialog_writer;
mod push;
mod roster;
mod rows;

use std::str::FromStr;
use std::time::Duration;

use confab_core::{Error, Result};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgPool};

use group_commit::GroupCommit;
/// The batch insert of stored messages, for a test of its plan.
pub use message_writer::MESSAGE_INSERT_SQL;
use message_writer::{MessageBatch, MessageWriter};
/// The statement behind `find_private_dialog`, for a test of its plan.
pub use private_dialog_lookup::PAIR_LOOKUP_SQL;
use private_dialog_lookup::{PairLookupBatch, PrivateDialogLookup};
use private_dialog_writer::{PrivateDialogBatch, PrivateDialogWriter};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Connections per node unless the caller picks ([`PgStore::connect_with`]).
const DEFAULT_MAX_CONNECTIONS: u32 = 16;

/// A pooled connection idle for longer than this is pinged before it is handed out, so one that
/// broke meanwhile (PostgreSQL restarted, a proxy dropped it) is replaced instead of failing a
/// request. One in use a moment ago is not: sqlx pings every connection it gets back anyway, and
/// a second round trip before every statement cost as much as a small statement.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct PgStore {
    pub(crate) pool: PgPool,
    /// Stored messages go through writer tasks that insert them in batches.
    pub(crate) messages: MessageWriter,
    /// New private dialogs likewise (the first messages of many new pairs come in bursts).
    pub(crate) private_dialogs: PrivateDialogWriter,
    /// And their lookups by pair (each new pair's first message reads its dialog id).
    pub(crate) private_dialog_lookups: PrivateDialogLookup,
}

impl PgStore {
    /// Opens a pool on `url` (`postgres://user@host:port/db?sslmode=...`) and migrates the schema.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = PgConnectOptions::from_str(url).map_err(Error::internal)?;
        Self::connect_with(options, DEFAULT_MAX_CONNECTIONS).await
    }

    /// [`Self::connect`] with options built by the caller.
    pub async fn connect_with(options: PgConnectOptions, max_connections: u32) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > PING_IF_IDLE_FOR {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await
            .map_err(Error::internal)?;
        // Safe when several nodes start at once: sqlx's PostgreSQL migrator takes a session-level
        // `pg_advisory_lock` (keyed by the database name) before it reads or creates
        // `_sqlx_migrations`, and applies each migration in its own transaction, so the first
        // node migrates while the others wait and then find nothing left to apply.
        MIGRATOR.run(&pool).await.map_err(Error::internal)?;
        Ok(Self {
            messages: GroupCommit::start(MessageBatch, pool.clone()),
            private_dialogs: GroupCommit::start(PrivateDialogBatch, pool.clone()),
            private_dialog_lookups: GroupCommit::start(PairLookupBatch, pool.clone()),
            pool,
        })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

pub(crate) fn db(e: sqlx::Error) -> Error {
    if let sqlx::Error::Database(d) = &e {
        // Text PostgreSQL cannot store, where SQLite could: a NUL character in a text column
        // (22021), or the escape \u0000 in a JSONB value (22P05). The client's doing, not ours.
        if matches!(d.code().as_deref(), Some("22021" | "22P05")) {
            return Error::bad_request("text must not contain NUL characters");
        }
    }
    Error::internal(e)
}

/// Locks a dialog's row for the rest of the transaction (see the lock order above).
pub(crate) async fn lock_dialog(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    dialog: &str,
) -> Result<()> {
    sqlx::query("SELECT 1 FROM dialogs WHERE id = $1 FOR NO KEY UPDATE")
        .bind(dialog)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db)?;
    Ok(())
}
