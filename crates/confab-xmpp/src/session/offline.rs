//! Offline messages: handed out after initial presence and deleted once the client confirmed
//! them; what the session could not deliver is stored at its end, and unconfirmed claims released.

use super::*;

/// Stores offline the durable stanzas a session could not deliver (see the module comment), and
/// confirms their receipts once they are stored.
pub(super) async fn store_undelivered(srv: &XmppServer, h: &SessionHandle, left: Vec<LiveStanza>) {
    if left.is_empty() {
        return;
    }
    if srv.hub.sessions(h.account()).iter().any(|s| s.id != h.id) {
        tracing::debug!(
            session = h.id,
            count = left.len(),
            "undelivered messages reached other sessions"
        );
        // Their copies there confirm the receipts; dropping these tells a sender none did.
        return;
    }
    let rows: Vec<(&str, Millis)> = left.iter().map(|s| (&*s.xml, s.queued_at)).collect();
    let stored = message::store_offline(srv, h.account(), &rows).await;
    // What was stored is safe; a sender whose message was not learns it from the dropped receipt.
    let safe = *stored.as_ref().unwrap_or(&0);
    left[..safe.min(left.len())]
        .iter()
        .for_each(LiveStanza::confirm);
    match stored {
        Ok(stored) if stored == rows.len() => {
            tracing::debug!(
                session = h.id,
                stored,
                "undelivered messages stored offline"
            );
        }
        Ok(stored) => tracing::warn!(
            session = h.id,
            dropped = rows.len() - stored,
            "offline queue full: undelivered messages dropped"
        ),
        Err(e) => {
            tracing::error!(error = ?e, count = rows.len(), "storing undelivered messages failed")
        }
    }
}

/// Makes the offline messages a session claimed but never confirmed deliverable again.
pub(super) async fn release_offline(srv: &XmppServer, b: &Bound) {
    if !b.claimed {
        return;
    }
    let h = &b.handle;
    match srv.offline.release(h.app, h.user, &b.claim).await {
        Ok(0) => {}
        Ok(n) => {
            tracing::debug!(session = h.id, count = n, "offline messages kept for later");
            // Another session of the user that is online, here or on another node, takes them now.
            for s in srv.hub.sessions(h.account()).iter() {
                if s.id != h.id {
                    s.offline_stored();
                }
            }
            crate::cluster::claim_now_elsewhere(srv, h.account()).await;
        }
        Err(e) => tracing::error!(error = ?e, "releasing offline messages failed"),
    }
}

impl Session {
    /// Writes the offline messages straight to the socket, so each gets a known XEP-0198 count.
    /// Without stream management they are deleted once written; with it, once acknowledged, and an
    /// `<r/>` asks for that acknowledgement at once.
    pub(super) async fn deliver_offline<T: Transport>(&mut self, t: &mut T) -> bool {
        let bound = self.bound.as_mut().expect("bound");
        let handle = bound.handle.clone();
        let claim = bound.claim.clone();
        let stored = message::claim_offline(&self.srv, &handle, &claim).await;
        if stored.is_empty() {
            return true;
        }
        bound.claimed = true;
        let mut written = Vec::with_capacity(stored.len());
        for (id, xml) in stored {
            // On failure the session ends, and its end releases what is still claimed.
            if !self.send_stanzas(t, &xml, 1).await {
                self.confirm_offline(&written).await;
                return false;
            }
            match self.sm.as_mut() {
                Some(sm) => sm.track(id),
                None => written.push(id),
            }
        }
        if self.sm.is_some() {
            return self.send(t, &Element::new("r", NS_SM).to_xml()).await;
        }
        if self.confirm_offline(&written).await {
            self.bound.as_mut().expect("bound").claimed = false;
        }
        true
    }

    /// Deletes offline rows the client has. On failure they stay claimed and the session's end
    /// releases them (delivered again later).
    pub(super) async fn confirm_offline(&self, ids: &[i64]) -> bool {
        let bound = self.bound.as_ref().expect("bound");
        let h = &bound.handle;
        let done = self
            .srv
            .offline
            .confirm(h.app, h.user, &bound.claim, ids)
            .await;
        if let Err(e) = &done {
            tracing::error!(error = ?e, "deleting delivered offline messages failed");
        }
        done.is_ok()
    }
}
