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
                self.sm = Some(StreamMgmt::default());
                Some(Element::new("enabled", NS_SM))
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
