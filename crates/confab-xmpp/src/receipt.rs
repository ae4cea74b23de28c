//! Delivery receipts: how a sender's session learns that a live 1:1 message it handed to the
//! recipient's sessions no longer depends on their memory.
//!
//! A message without `save_to_history` that goes straight to an online recipient is in no table:
//! until the recipient's client has it, a `kill -9` would lose it. So, for a sender with stream
//! management, the message counts as handled (XEP-0198 `h`) only once one copy is safe: the
//! recipient's client acknowledged it, it was written to a client without stream management (the
//! most such a client can confirm), or the recipient's session stored it offline at its end.
//! Every copy carries a clone of one [`Receipt`]; the first that is safe confirms it. When all
//! copies are gone unconfirmed, the sender's session stores the message offline itself.
//!
//! A message saved to history needs no receipt on one node (a session that ends stores what it
//! did not write), but does on its way to another node: the history is no delivery, and a node
//! that dies stores nothing.

use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// The recipients' side: confirms once, whichever copy gets there first.
#[derive(Clone, Debug)]
pub struct Receipt(Arc<Mutex<Option<oneshot::Sender<()>>>>);

/// The sender's side: resolves with `Ok` when a copy confirmed, `Err` when every copy was dropped.
pub type ReceiptWait = oneshot::Receiver<()>;

impl Receipt {
    pub fn new() -> (Self, ReceiptWait) {
        let (tx, rx) = oneshot::channel();
        (Self(Arc::new(Mutex::new(Some(tx)))), rx)
    }

    /// The copy this receipt travels with is safe.
    pub fn confirm(&self) {
        if let Some(tx) = self.0.lock().expect("receipt lock").take() {
            let _ = tx.send(());
        }
    }
}

/// Confirms every receipt among `receipts`.
pub fn confirm_all<'a>(receipts: impl IntoIterator<Item = &'a Option<Receipt>>) {
    for r in receipts.into_iter().flatten() {
        r.confirm();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_copy_confirms() {
        let (r, mut wait) = Receipt::new();
        let copy = r.clone();
        assert!(wait.try_recv().is_err(), "nothing yet");
        copy.confirm();
        r.confirm();
        assert_eq!(wait.try_recv(), Ok(()));
    }

    #[test]
    fn all_copies_dropped_unconfirmed_is_told() {
        let (r, mut wait) = Receipt::new();
        let copy = r.clone();
        drop(r);
        assert_eq!(wait.try_recv(), Err(oneshot::error::TryRecvError::Empty));
        drop(copy);
        assert_eq!(wait.try_recv(), Err(oneshot::error::TryRecvError::Closed));
    }
}
