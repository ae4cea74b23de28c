//! The embedded backend: one SQLite database in WAL mode.
//!
//! One file per capability trait (`accounts`, `dialogs`, `messages`, `offline`, `privacy`,
//! `roster`); `rows` holds what the chat files share. Writes that come in bursts go through
//! group-commit writers (`message_writer`, `private_dialog_writer` on `group_commit`); the hottest
//! reads run on the calling thread (`inline`).

mod accounts;
mod blobs;
mod chatserver;
mod dialogs;
mod group_commit;
mod inline;
mod message_writer;
mod messages;
mod offline;
pub(crate) mod privacy;
mod private_dialog_writer;
mod push;
mod roster;
mod rows;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use confab_core::clock::Millis;
use confab_core::{Error, Result, UserId};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use group_commit::GroupCommit;
use inline::InlineReads;
use message_writer::{MessageBatch, MessageWriter};
use private_dialog_writer::{PrivateDialogBatch, PrivateDialogWriter};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

#[derive(Clone)]
pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
    /// The one connection write transactions run on. SQLite drops a connection's page cache
    /// whenever another connection has committed; with writes spread over the pool every
    /// transaction began by reading its pages again. One writing connection keeps them cached.
    write_pool: SqlitePool,
    /// One writing transaction at a time. SQLite allows one writer anyway, and a deferred
    /// transaction that reads before it writes fails with BUSY instead of waiting when
    /// another writer got in first; taking this lock first makes writers queue instead.
    pub(crate) write: Arc<tokio::sync::Mutex<()>>,
    /// Stored messages go through one writer task that commits them in batches.
    pub(crate) messages: MessageWriter,
    /// New private dialogs likewise (the first messages of many new pairs come in bursts).
    pub(crate) private_dialogs: PrivateDialogWriter,
    /// The hottest reads, run on the calling thread.
    pub(crate) reads: Arc<InlineReads>,
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) `confab.db` in `data_dir` and starts the task that
    /// writes stored messages.
    pub async fn open(data_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(data_dir).map_err(Error::internal)?;
        let file = data_dir.join("confab.db");
        let url = format!("sqlite://{}", file.display());
        let options = SqliteConnectOptions::from_str(&url)
            .map_err(Error::internal)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL survives a killed process; only an OS crash can lose the last commits.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            // A batch statement's undo journal passes 64 KiB and would spill to a temporary file,
            // created, written and deleted per batch; in memory it is a fraction of that.
            .pragma("temp_store", "memory")
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            // An in-process database connection cannot go stale like a network one, and the
            // ping is one more hand-off to the driver's thread per query.
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await
            .map_err(Error::internal)?;
        MIGRATOR.run(&pool).await.map_err(Error::internal)?;
        let write_pool = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(Error::internal)?;
        let write = Arc::new(tokio::sync::Mutex::new(()));
        Ok(Self {
            messages: GroupCommit::start(MessageBatch, write_pool.clone(), Arc::clone(&write)),
            private_dialogs: GroupCommit::start(
                PrivateDialogBatch,
                write_pool.clone(),
                Arc::clone(&write),
            ),
            reads: Arc::new(InlineReads::new(file)),
            pool,
            write_pool,
            write,
        })
    }

    /// Callers hold the write lock.
    pub(crate) async fn record_request(&self, user: UserId, now: Millis) -> Result<()> {
        sqlx::query("UPDATE users SET last_request_at = ? WHERE id = ?")
            .bind(now)
            .bind(user.get())
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(db)
    }

    /// The pool, for capability traits implemented in their own files.
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub async fn close(&self) {
        self.write_pool.close().await;
        self.pool.close().await;
    }
}

/// A pooled connection for one write transaction. Unless the transaction ends in a commit (an
/// error, a full disk), the connection is closed rather than pooled: after a failed write or commit
/// SQLite may have rolled back on its own or kept the transaction and its write lock, and the driver
/// cannot tell which; pooled, it left every later write "database is locked".
pub(crate) struct WriteConn {
    conn: sqlx::pool::PoolConnection<sqlx::Sqlite>,
    committed: bool,
}

impl WriteConn {
    pub(crate) async fn acquire(pool: &SqlitePool) -> sqlx::Result<Self> {
        Ok(Self {
            conn: pool.acquire().await?,
            committed: false,
        })
    }

    pub(crate) async fn begin(&mut self) -> sqlx::Result<sqlx::Transaction<'_, sqlx::Sqlite>> {
        use sqlx::Acquire;
        self.conn.begin().await
    }

    /// The transaction committed: the connection may go back to the pool.
    pub(crate) fn committed(&mut self) {
        self.committed = true;
    }
}

impl Drop for WriteConn {
    fn drop(&mut self) {
        if !self.committed {
            self.conn.close_on_drop();
        }
    }
}

impl SqliteStore {
    /// A connection for one write transaction (callers hold the write lock).
    pub(crate) async fn write_conn(&self) -> Result<WriteConn> {
        WriteConn::acquire(&self.write_pool).await.map_err(db)
    }
}

pub(crate) fn db(e: sqlx::Error) -> Error {
    Error::internal(e)
}
