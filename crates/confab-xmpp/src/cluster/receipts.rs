//! Receipts across nodes: a live 1:1 message handed to a session on another node counts for its
//! sender once that node says a copy is safe (see [`crate::receipt`]). The sending node keeps the
//! message's [`Receipt`] here under a number sent with the request; the receiving node gives its
//! copies a receipt of their own and, once it resolves, publishes [`Request::Receipt`] back. When
//! the receiving node dies, or never answers in time, the entry is dropped: if no copy is left,
//! the sender's session stores the message offline itself.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Request, FACE};
use crate::receipt::{Receipt, ReceiptWait};
use crate::XmppServer;

/// On the receiving node: once the copies here are settled, tells the sending node `to`.
pub(super) fn answer_when_settled(srv: &XmppServer, id: u64, to: String, wait: ReceiptWait) {
    let cluster = srv.cluster.clone();
    tokio::spawn(async move {
        let safe = wait.await.is_ok();
        let answer = Request::Receipt {
            id,
            node: cluster.node_id().to_string(),
            safe,
        };
        let payload = serde_json::to_vec(&answer).expect("a receipt serializes");
        cluster.publish_to_node(&to, FACE, payload);
    });
}

/// Receipts waiting for other nodes, by the number their requests carried.
#[derive(Default)]
pub struct RemoteReceipts {
    next: AtomicU64,
    waiting: Mutex<HashMap<u64, Waiting>>,
}

struct Waiting {
    receipt: Receipt,
    /// The nodes that took a copy and may still confirm it.
    nodes: Vec<Arc<str>>,
    since: Instant,
}

impl RemoteReceipts {
    /// Keeps `receipt` while `nodes` are asked; returns the number the requests carry.
    pub(crate) fn register(&self, receipt: &Receipt, nodes: &[Arc<str>]) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let waiting = Waiting {
            receipt: receipt.clone(),
            nodes: nodes.to_vec(),
            since: Instant::now(),
        };
        self.lock().insert(id, waiting);
        id
    }

    /// Only `took` of the nodes asked took a copy: the others will never confirm it.
    pub(crate) fn taken_by(&self, id: u64, took: &[Arc<str>]) {
        let mut waiting = self.lock();
        if let Some(w) = waiting.get_mut(&id) {
            w.nodes.retain(|n| took.contains(n));
            if w.nodes.is_empty() {
                waiting.remove(&id);
            }
        }
    }

    /// `node` settled its copies: safe, or all dropped unstored.
    pub(crate) fn settled(&self, id: u64, node: &str, safe: bool) {
        let mut waiting = self.lock();
        let Some(w) = waiting.get_mut(&id) else {
            return;
        };
        if safe {
            w.receipt.confirm();
            waiting.remove(&id);
            return;
        }
        w.nodes.retain(|n| &**n != node);
        if w.nodes.is_empty() {
            waiting.remove(&id);
        }
    }

    /// `node` is gone: its copies will never be confirmed.
    pub(crate) fn node_gone(&self, node: &str) {
        self.lock().retain(|_, w| {
            w.nodes.retain(|n| &**n != node);
            !w.nodes.is_empty()
        });
    }

    /// Drops what waited longer than `limit` (an answer lost while the bus was down).
    pub(crate) fn expire(&self, limit: Duration) {
        self.lock().retain(|_, w| w.since.elapsed() < limit);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Waiting>> {
        self.waiting.lock().expect("remote receipts")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(names: &[&str]) -> Vec<Arc<str>> {
        names.iter().map(|n| Arc::from(*n)).collect()
    }

    #[test]
    fn a_safe_copy_on_any_node_confirms() {
        let r = RemoteReceipts::default();
        let (receipt, mut wait) = Receipt::new();
        let id = r.register(&receipt, &nodes(&["b", "c"]));
        drop(receipt);
        r.settled(id, "b", false);
        assert!(wait.try_recv().is_err(), "c may still confirm");
        r.settled(id, "c", true);
        assert_eq!(wait.try_recv(), Ok(()));
    }

    #[test]
    fn a_dead_node_drops_its_copies() {
        let r = RemoteReceipts::default();
        let (receipt, mut wait) = Receipt::new();
        let id = r.register(&receipt, &nodes(&["b", "c"]));
        drop(receipt);
        r.taken_by(id, &nodes(&["b"]));
        r.node_gone("b");
        assert_eq!(
            wait.try_recv(),
            Err(tokio::sync::oneshot::error::TryRecvError::Closed),
            "no copy left: the sender stores it"
        );
    }

    #[test]
    fn old_entries_expire() {
        let r = RemoteReceipts::default();
        let (receipt, mut wait) = Receipt::new();
        r.register(&receipt, &nodes(&["b"]));
        drop(receipt);
        r.expire(Duration::from_secs(60));
        assert!(wait.try_recv().is_err());
        r.expire(Duration::ZERO);
        assert_eq!(
            wait.try_recv(),
            Err(tokio::sync::oneshot::error::TryRecvError::Closed)
        );
    }
}
