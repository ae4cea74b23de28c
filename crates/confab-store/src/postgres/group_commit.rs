//! Group commit: concurrent writes of one kind share one statement in one transaction (and
//! concurrent reads of one kind one query: `private_dialog_lookup`).
//!
//! The PostgreSQL twin of [`crate::sqlite`]'s `group_commit`. A burst of stored messages (or of
//! first messages between new pairs) costs a round trip, a statement and a commit per row when
//! each caller writes its own; here writer tasks take whatever rows are queued and write them with
//! one multi-row statement, answering each caller once it has returned (committed: a single
//! statement is its own transaction, so no BEGIN and COMMIT round trips).
//! No write lock: PostgreSQL takes concurrent transactions, so a few writers run side by side (on
//! as many pooled connections) and other nodes write alongside.
//!
//! A batch whose statement fails (a row breaks a constraint) is rolled back as a whole and its
//! rows written one by one, so the bad row fails alone; a batch that finds no connection fails as
//! a whole.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use confab_core::{Error, Result};

use super::db;
use sqlx::{PgConnection, PgPool};
use tokio::sync::{mpsc, oneshot, Mutex, Notify};

/// Bounds how long one transaction holds its row locks.
const MAX_BATCH: usize = 256;

/// Batches written at once, each on its own connection.
const WRITERS: usize = 2;

/// How long rows wait for company while another batch is being written. Each statement costs
/// the database a fixed amount whatever its size (a batch of 14 messages ~200 µs per row, one of
/// 50 ~90 µs), so a second writer that took every row the moment it came would double that cost
/// under load; rows gathered until the batch in flight is written share it. Long enough for one
/// batch to be written (a few ms), so it only caps a wait on a batch that is stuck on locks. An
/// idle store writes at once.
const BUSY_LINGER: std::time::Duration = std::time::Duration::from_millis(5);

/// How one kind of row is written in a batch.
#[async_trait]
pub(crate) trait BatchWrite: Send + Sync + 'static {
    type Row: Send + Sync + 'static;
    type Out: Send + 'static;
    /// What the writer is called in logs and errors.
    const NAME: &'static str;

    /// Writes `rows` with one statement on `db`: one result per row, in order. An `Err` fails
    /// the statement, which rolls back; the rows are then written one by one.
    async fn write(
        &self,
        db: &mut PgConnection,
        rows: &[&Self::Row],
    ) -> std::result::Result<Vec<Result<Self::Out>>, sqlx::Error>;

    /// The order rows are written in within a batch. Writers that lock rows in this order
    /// (dialogs, unique keys) cannot deadlock with each other, here or on another node.
    fn sort_key(row: &Self::Row) -> &str;
}

/// The batches being written, and a signal when one is done.
#[derive(Default)]
struct InFlight {
    count: AtomicUsize,
    done: Notify,
}

/// A queued row and the caller to answer.
type Pending<W> = (
    <W as BatchWrite>::Row,
    oneshot::Sender<Result<<W as BatchWrite>::Out>>,
);

/// The queue in front of the writer tasks; they end when the last clone is dropped.
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
    pub(crate) fn start(writer: W, pool: PgPool) -> Self {
        let (queue, pending) = mpsc::unbounded_channel();
        let pending = Arc::new(Mutex::new(pending));
        let writer = Arc::new(writer);
        let writing = Arc::new(InFlight::default());
        for _ in 0..WRITERS {
            tokio::spawn(run(
                Arc::clone(&writer),
                pool.clone(),
                Arc::clone(&pending),
                Arc::clone(&writing),
            ));
        }
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
    writer: Arc<W>,
    pool: PgPool,
    pending: Arc<Mutex<mpsc::UnboundedReceiver<Pending<W>>>>,
    writing: Arc<InFlight>,
) {
    let mut batch: Vec<Pending<W>> = Vec::with_capacity(MAX_BATCH);
    loop {
        {
            // One writer takes a batch at a time; the others write theirs meanwhile.
            let mut queue = pending.lock().await;
            if queue.recv_many(&mut batch, MAX_BATCH).await == 0 {
                return;
            }
            // Let more rows join while another batch is being written.
            let until = tokio::time::Instant::now() + BUSY_LINGER;
            while batch.len() < MAX_BATCH {
                // Listening before looking, so a batch finished in between is not missed.
                let written = writing.done.notified();
                tokio::pin!(written);
                written.as_mut().enable();
                if writing.count.load(Ordering::Acquire) == 0 {
                    break;
                }
                let room = MAX_BATCH - batch.len();
                tokio::select! {
                    n = queue.recv_many(&mut batch, room) => if n == 0 { break },
                    _ = &mut written => break,
                    _ = tokio::time::sleep_until(until) => break,
                }
            }
        }
        // Stable: rows of one key (one dialog's messages) keep their order.
        batch.sort_by(|a, b| W::sort_key(&a.0).cmp(W::sort_key(&b.0)));
        let rows: Vec<&W::Row> = batch.iter().map(|p| &p.0).collect();
        writing.count.fetch_add(1, Ordering::AcqRel);
        let results = write_batch(&*writer, &pool, &rows).await;
        writing.count.fetch_sub(1, Ordering::AcqRel);
        writing.done.notify_waiters();
        for ((_, done), result) in batch.drain(..).zip(results) {
            // The caller may have gone away: nobody left to tell.
            let _ = done.send(result);
        }
    }
}

async fn write_batch<W: BatchWrite>(
    writer: &W,
    pool: &PgPool,
    rows: &[&W::Row],
) -> Vec<Result<W::Out>> {
    let attempt = async {
        let mut db = pool.acquire().await?;
        writer.write(&mut db, rows).await
    };
    match attempt.await {
        Ok(results) => {
            debug_assert_eq!(results.len(), rows.len(), "one result per row");
            results
        }
        // The statement failed (a row broke a constraint) and wrote nothing: row by
        // row, the bad row fails alone.
        Err(sqlx::Error::Database(_)) if rows.len() > 1 => {
            let mut results = Vec::with_capacity(rows.len());
            for row in rows {
                results
                    .extend(Box::pin(write_batch(writer, pool, std::slice::from_ref(row))).await);
            }
            results
        }
        // One row's own error.
        Err(e) if rows.len() == 1 => vec![Err(db(e))],
        // No connection, or one that broke: every row fails alike, at once (retrying each
        // would wait for a connection once per row).
        Err(e) => {
            tracing::error!(error = %e, rows = rows.len(), writer = W::NAME, "batch failed");
            let e = Arc::new(e);
            rows.iter()
                .map(|_| Err(Error::internal(Arc::clone(&e))))
                .collect()
        }
    }
}
