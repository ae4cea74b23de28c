//! Writing to the client: queued stanzas coalesced into one write, each write bounded in time.

use super::*;

pub(super) async fn next_out(rx: &mut Option<mpsc::Receiver<Outbound>>) -> Option<Outbound> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Queued stanzas joined for one write.
#[derive(Default)]
pub(super) struct Batch {
    /// The first stanza, and all of them once there are more.
    first: Option<Arc<str>>,
    joined: Option<String>,
    /// How many stanzas it holds.
    n: usize,
    /// The durable ones, with their position in the batch (from 1).
    durable: Vec<(u32, LiveStanza)>,
    /// Offline messages were stored for the user meanwhile.
    claim_offline: bool,
}

impl Batch {
    pub(super) fn add(&mut self, o: Outbound) {
        if o.kind == OutKind::ClaimOffline {
            self.claim_offline = true;
            return;
        }
        match &self.first {
            None => self.first = Some(o.xml.clone()),
            Some(first) => self
                .joined
                .get_or_insert_with(|| String::from(&**first))
                .push_str(&o.xml),
        }
        self.n += 1;
        if o.kind == OutKind::Durable {
            self.durable.push((self.n as u32, LiveStanza::from(o)));
        }
    }

    pub(super) fn len(&self) -> usize {
        match (&self.joined, &self.first) {
            (Some(j), _) => j.len(),
            (None, Some(f)) => f.len(),
            (None, None) => 0,
        }
    }

    /// The XML of every stanza in the batch.
    pub(super) fn xml(&mut self) -> Arc<str> {
        match self.joined.take() {
            Some(j) => j.into(),
            None => self.first.take().unwrap_or_else(|| Arc::from("")),
        }
    }
}

/// Over TCP, appends whatever else is already queued (up to 64 KiB) so a burst (e.g. a busy group)
/// costs one write instead of one per stanza. WebSocket needs one frame per stanza (RFC 7395).
pub(super) fn coalesce(
    framing: Framing,
    first: Outbound,
    rx: &mut Option<mpsc::Receiver<Outbound>>,
) -> Batch {
    const MAX_BATCH: usize = 64 * 1024;
    let mut batch = Batch::default();
    batch.add(first);
    let Some(rx) = rx.as_mut().filter(|_| matches!(framing, Framing::Tcp)) else {
        return batch;
    };
    while batch.len() < MAX_BATCH {
        let Ok(more) = rx.try_recv() else { break };
        batch.add(more);
    }
    batch
}

/// Writes `xml`. A write the client does not take within `limit` fails: a client that stopped
/// reading would otherwise hold its session, and all that is queued for it, forever. Only a write
/// that does not complete at once gets a timer.
pub(super) async fn write_within<T: Transport>(
    t: &mut T,
    xml: &str,
    limit: std::time::Duration,
) -> bool {
    let mut write = std::pin::pin!(t.send(xml));
    let first = std::future::poll_fn(|cx| {
        std::task::Poll::Ready(std::future::Future::poll(write.as_mut(), cx))
    })
    .await;
    match first {
        std::task::Poll::Ready(r) => r.is_ok(),
        // Boxed: the timer is large, and every session's task would carry it.
        std::task::Poll::Pending => matches!(
            Box::pin(tokio::time::timeout(limit, write)).await,
            Ok(Ok(()))
        ),
    }
}

impl Session {
    /// Writes stanzas taken from the queue. With stream management, the durable ones wait for the
    /// client's ack, which an `<r/>` asks for at once; without, they are safe once written. A failed
    /// write keeps them for the end.
    pub(super) async fn write_queued<T: Transport>(&mut self, t: &mut T, mut b: Batch) -> Flow {
        // Boxed: rare, and its future would make every session's task larger.
        if b.claim_offline
            && self.bound.as_ref().is_some_and(|b| b.available)
            && !Box::pin(self.deliver_offline(t)).await
        {
            return Flow::Close(None);
        }
        if b.n == 0 {
            return Flow::Continue;
        }
        let base = self.sm.as_ref().map_or(0, |sm| sm.sent_count());
        if !self.send_stanzas(t, &b.xml(), b.n).await {
            let lost = b.durable.into_iter().map(|(_, stanza)| stanza);
            self.undelivered.extend(lost);
            return Flow::Close(None);
        }
        let Some(sm) = self.sm.as_mut() else {
            b.durable.iter().for_each(|(_, stanza)| stanza.confirm());
            return Flow::Continue;
        };
        if b.durable.is_empty() {
            return Flow::Continue;
        }
        for (n, stanza) in b.durable {
            sm.track_live(base.wrapping_add(n), stanza);
        }
        if sm.unacked() > MAX_UNACKED {
            tracing::info!(peer = %self.info.peer, "client leaves too many stanzas unacknowledged");
            return Flow::Close(Some("policy-violation"));
        }
        if !self.send(t, &Element::new("r", NS_SM).to_xml()).await {
            return Flow::Close(None);
        }
        Flow::Continue
    }

    /// Writes `n` stanzas and counts them for XEP-0198 (nonzas such as `<a/>` go through `send`).
    pub(super) async fn send_stanzas<T: Transport>(
        &mut self,
        t: &mut T,
        xml: &str,
        n: usize,
    ) -> bool {
        let ok = self.send(t, xml).await;
        if let (true, Some(sm)) = (ok, self.sm.as_mut()) {
            sm.sent(n);
        }
        ok
    }
}
