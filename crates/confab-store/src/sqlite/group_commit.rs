//! Group commit: concurrent writes of one kind share one transaction.
//!
//! Every statement on the SQLite driver is a hand-off to its worker thread and back, and every
//! commit writes to the WAL, so one transaction per row made each row cost several thread
//! switches plus a commit. One writer task per kind takes whatever rows are queued, writes them in
//! one transaction (under the store's write lock) and answers each caller only after the commit.

use std::sync::Arc;

use async_trait::async_trait;
use confab_core::{Error, Result};
use sqlx::{Sqlite, SqlitePool, Transaction};

use super::WriteConn;
use tokio::sync::{mpsc, oneshot, Mutex};

/// Bounds how long one transaction holds the write lock (and keeps a multi-row statement of up
/// to 16 values a row far below SQLite's limit of 32,766 bound values).
const MAX_BATCH: usize = 256;

/// How one kind of row is written in a batch.
#[async_trait]
pub(crate) trait BatchWrite: Send + Sync + 'static {
    type Row: Send + Sync + 'static;
    type Out: Send + 'static;
    /// What the writer is called in logs and errors.
    const NAME: &'static str;

    /// Writes `rows` inside `tx`: one result per row, in order. An `Err` fails the whole batch,
    /// which is then rolled back, so no caller hears "stored" for a row that is not.
    async fn write(
        &self,
        tx: &mut Transaction<'_, Sqlite>,
        rows: &[Self::Row],
    ) -> std::result::Result<Vec<Result<Self::Out>>, sqlx::Error>;
}

/// A queued row and the caller to answer.
type Pending<W> = (
    <W as BatchWrite>::Row,
    oneshot::Sender<Result<<W as BatchWrite>::Out>>,
);

/// The queue in front of one writer task; the task ends when the last clone is dropped.
pub(crate) struct GroupCommit<W: BatchWrite> {
    queue: mpsc::UnboundedSender<Pending<W>>,
}

impl<W: BatchWrite> Clone for GroupCommit<W> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
        }
    }
}

impl<W: BatchWrite> GroupCommit<W> {
    /// Starts the writer task; `write_lock` is the store's lock for writing transactions.
    pub(crate) fn start(writer: W, pool: SqlitePool, write_lock: Arc<Mutex<()>>) -> Self {
        let (queue, pending) = mpsc::unbounded_channel();
        tokio::spawn(run(writer, pool, write_lock, pending));
        Self { queue }
    }

    /// Writes one row; returns once its transaction is committed.
    pub(crate) async fn write(&self, row: W::Row) -> Result<W::Out> {
        let (done, result) = oneshot::channel();
        self.queue.send((row, done)).map_err(|_| stopped::<W>())?;
        result.await.map_err(|_| stopped::<W>())?
    }
}

fn stopped<W: BatchWrite>() -> Error {
    Error::internal(std::io::Error::other(format!("{} writer stopped", W::NAME)))
}

async fn run<W: BatchWrite>(
    writer: W,
    pool: SqlitePool,
    write_lock: Arc<Mutex<()>>,
    mut pending: mpsc::UnboundedReceiver<Pending<W>>,
) {
    let mut batch: Vec<Pending<W>> = Vec::with_capacity(MAX_BATCH);
    let mut rows = Vec::with_capacity(MAX_BATCH);
    while pending.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let results = {
            let _write = write_lock.lock().await;
            // What queued while this waited for the lock joins the same transaction.
            while batch.len() < MAX_BATCH {
                match pending.try_recv() {
                    Ok(p) => batch.push(p),
                    Err(_) => break,
                }
            }
            let mut answers = Vec::with_capacity(batch.len());
            for (row, done) in batch.drain(..) {
                rows.push(row);
                answers.push(done);
            }
            let results = write_batch(&writer, &pool, &rows).await;
            rows.clear();
            answers.into_iter().zip(results)
        };
        for (done, result) in results {
            // The caller may have gone away: nobody left to tell.
            let _ = done.send(result);
        }
    }
}

async fn write_batch<W: BatchWrite>(
    writer: &W,
    pool: &SqlitePool,
    rows: &[W::Row],
) -> Vec<Result<W::Out>> {
    // A batch that does not commit (a full disk) closes its connection: see `WriteConn`.
    let attempt = async {
        let mut conn = WriteConn::acquire(pool).await?;
        let mut tx = conn.begin().await?;
        let results = writer.write(&mut tx, rows).await?;
        tx.commit().await?;
        conn.committed();
        Ok::<_, sqlx::Error>(results)
    };
    match attempt.await {
        Ok(results) => {
            debug_assert_eq!(results.len(), rows.len(), "one result per row");
            results
        }
        Err(e) => {
            tracing::error!(error = %e, rows = rows.len(), writer = W::NAME, "batch failed");
            let e = Arc::new(e);
            rows.iter()
                .map(|_| Err(Error::internal(Arc::clone(&e))))
                .collect()
        }
    }
}

/// A statement that broke a constraint failed as a whole and left nothing behind.
pub(crate) fn is_constraint(e: &sqlx::Error) -> bool {
    use sqlx::error::ErrorKind::*;
    matches!(e, sqlx::Error::Database(d)
        if matches!(d.kind(), UniqueViolation | ForeignKeyViolation | NotNullViolation | CheckViolation))
}
