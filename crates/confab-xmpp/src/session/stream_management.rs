//! XEP-0198 on the session: `<enable/>`, `<r/>` and the client's `<a h/>`, which confirms what was
//! written (offline messages among it).

use super::*;

impl Session {
    pub(super) async fn on_sm<T: Transport>(&mut self, t: &mut T, el: &Element) -> Flow {
        let unexpected = || {
            Element::new("failed", NS_SM)
                .with_child(Element::new("unexpected-request", crate::xml::NS_STANZAS))
        };
        let reply = match el.local_name() {
            // Enabling twice would restart the counters under the pending offline messages.
            "enable" if self.sm.is_some() => Some(unexpected()),
            "enable" => {
                self.sm = Some(Box::default());
                Some(Element::new("enabled", NS_SM))
            }
            // While messages wait for their receipts, the answer waits for them (`on_receipt`).
            "r" if !self.unconfirmed.is_empty() => {
                self.ack_asked = self.sm.as_ref().map(|sm| sm.received);
                None
            }
            "r" => match &self.sm {
                Some(sm) => Some(Element::new("a", NS_SM).with_attr("h", sm.handled.to_string())),
                None => Some(unexpected()),
            },
            // Client acks of what we sent confirm offline messages; nothing is resent (no resumption).
            "a" => return self.on_ack(el).await,
            _ => return Flow::Close(Some("unsupported-stanza-type")),
        };
        if let Some(r) = reply {
            if !self.send(t, &r.to_xml()).await {
                return Flow::Close(None);
            }
        }
        Flow::Continue
    }

    /// The oldest unconfirmed message is settled (`safe`: a copy is; otherwise none is left, and it
    /// is stored offline here). Settles whatever else already is, moves `h` up to the first message
    /// still waiting and answers an `<r/>` that waited once `h` covers what came before it.
    pub(super) async fn on_receipt<T: Transport>(&mut self, t: &mut T, safe: bool) -> Flow {
        let mut lost = Vec::new();
        if let Some((_, u)) = self.unconfirmed.pop_front() {
            lost.extend((!safe).then_some(u));
        }
        while let Some((_, u)) = self.unconfirmed.front_mut() {
            match u.wait.try_recv() {
                Ok(()) => {}
                Err(tokio::sync::oneshot::error::TryRecvError::Closed) => {
                    lost.extend(self.unconfirmed.pop_front().map(|(_, u)| u));
                    continue;
                }
                Err(tokio::sync::oneshot::error::TryRecvError::Empty) => break,
            }
            self.unconfirmed.pop_front();
        }
        let handle = self.bound.as_ref().expect("bound").handle.clone();
        for u in lost {
            if let Some(err) = message::store_unconfirmed(&self.srv, &handle, u).await {
                if !self.send_stanzas(t, &err.to_xml(), 1).await {
                    return Flow::Close(None);
                }
            }
        }
        let Some(sm) = self.sm.as_mut() else {
            return Flow::Continue;
        };
        sm.handled = match self.unconfirmed.front() {
            Some((seq, _)) => seq.wrapping_sub(1),
            None => sm.received,
        };
        // Counts compared as a distance, as they wrap.
        let covered = |at: u32| sm.handled.wrapping_sub(at) < 1 << 31;
        if self.ack_asked.is_none_or(|at| !covered(at)) {
            return Flow::Continue;
        }
        self.ack_asked = None;
        let a = Element::new("a", NS_SM).with_attr("h", sm.handled.to_string());
        if !self.send(t, &a.to_xml()).await {
            return Flow::Close(None);
        }
        Flow::Continue
    }

    /// When the client must have acknowledged the oldest live message it was sent.
    pub(super) fn ack_due(&self) -> Option<Instant> {
        let queued_at = self.sm.as_ref()?.oldest_live()?;
        let limit = self.srv.config.ack_timeout.as_millis() as Millis;
        let left = (queued_at + limit - confab_core::clock::now_millis()).max(0);
        Some(Instant::now() + std::time::Duration::from_millis(left as u64))
    }

    /// A client `<a h/>`. An `h` that is not a number is ignored (XEP-0198 names no error for it),
    /// which leaves the offline messages claimed until the next valid ack or the session's end. An `h`
    /// above what was sent (or below the previous one, which modulo 2^32 is the same) ends the stream
    /// as XEP-0198 §4 says, deleting nothing.
    pub(super) async fn on_ack(&mut self, el: &Element) -> Flow {
        let Some(sm) = self.sm.as_mut() else {
            return Flow::Continue;
        };
        let Some(h) = el.attr("h").and_then(|h| h.parse::<u32>().ok()) else {
            tracing::debug!(peer = %self.info.peer, "ignoring <a/> without a valid h");
            return Flow::Continue;
        };
        match sm.ack(h) {
            Ack::Confirmed(ids) if ids.is_empty() => Flow::Continue,
            Ack::Confirmed(ids) => {
                let all = !sm.has_pending();
                if self.confirm_offline(&ids).await && all {
                    self.bound.as_mut().expect("bound").claimed = false;
                }
                Flow::Continue
            }
            Ack::TooHigh { h, sent } => {
                tracing::info!(peer = %self.info.peer, h, sent, "client acked more stanzas than sent");
                let detail = Element::new("handled-count-too-high", NS_SM)
                    .with_attr("h", h.to_string())
                    .with_attr("send-count", sent.to_string());
                self.error_detail = Some(Box::new(detail));
                Flow::Close(Some("undefined-condition"))
            }
        }
    }
}
