//! Reads default privacy lists ahead of the first message. Every 1:1 message checks the
//! recipient's and the sender's default lists; they are cached, but the first message of each
//! user would wait for a database read, and when many users start chatting at once (after a
//! restart, or across nodes) those reads pile up in front of delivery. So a node reads the lists
//! of users who come online, here or on another node, a batch per query, as they arrive.

use std::sync::Arc;

use confab_core::UserId;
use confab_service::Privacy;
use tokio::sync::mpsc;

use crate::hub::Account;

/// Users waiting to be read; beyond this, users are skipped (their first message then reads the
/// list itself).
const QUEUE: usize = 10_000;
/// Users read in one query.
const BATCH: usize = 500;

/// The queue of users whose lists are read ahead; the task ends when this is dropped.
pub struct PrivacyWarmup(mpsc::Sender<Account>);

impl PrivacyWarmup {
    pub fn spawn(privacy: Arc<Privacy>) -> Self {
        let (tx, mut rx) = mpsc::channel(QUEUE);
        tokio::spawn(async move {
            let mut batch: Vec<Account> = Vec::with_capacity(BATCH);
            while rx.recv_many(&mut batch, BATCH).await > 0 {
                batch.sort_unstable();
                for same_app in batch.chunk_by(|a, b| a.0 == b.0) {
                    let users: Vec<UserId> = same_app.iter().map(|a| a.1).collect();
                    if let Err(e) = privacy.prefetch(same_app[0].0, &users).await {
                        tracing::debug!(kind = ?e.kind, "privacy lists not read ahead");
                    }
                }
                batch.clear();
            }
        });
        Self(tx)
    }

    /// Reads `account`'s default list soon, unless the queue is full.
    pub fn read_ahead(&self, account: Account) {
        let _ = self.0.try_send(account);
    }
}
