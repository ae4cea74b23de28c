//! XEP-0198 stream management counters of one session, and what waits for the client's ack.
//!
//! Both directions count stanzas (`<message/>`, `<presence/>`, `<iq/>`) modulo 2^32 from the moment
//! `<enabled/>` is sent. An offline row or a live durable stanza handed to the client is remembered
//! with the outbound count it got, and is confirmed once the client's `<a h/>` reaches that count.
//! What is still unconfirmed when the session ends is stored offline again.

use std::collections::VecDeque;
use std::sync::Arc;

use confab_core::clock::Millis;

use crate::receipt::Receipt;

/// What an `<a h='N'/>` from the client means.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ack {
    /// These offline rows are now acknowledged (possibly none).
    Confirmed(Vec<i64>),
    /// The client acknowledges more than was sent: a protocol violation, nothing is confirmed.
    TooHigh { h: u32, sent: u32 },
}

/// A live durable stanza (a 1:1 chat message) on its way to the client.
#[derive(Debug)]
pub(crate) struct LiveStanza {
    pub xml: Arc<str>,
    /// When it was queued: its offline timestamp if it comes to that.
    pub queued_at: Millis,
    /// Confirmed once the client has it, or once it is stored offline.
    pub receipt: Option<Receipt>,
}

impl From<crate::hub::Outbound> for LiveStanza {
    fn from(o: crate::hub::Outbound) -> Self {
        Self {
            xml: o.xml,
            queued_at: o.queued_at,
            receipt: o.receipt,
        }
    }
}

impl LiveStanza {
    /// The stanza is safe: confirms its receipt.
    pub fn confirm(&self) {
        if let Some(r) = &self.receipt {
            r.confirm();
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct StreamMgmt {
    /// Inbound stanzas handled and safe, as reported in `<a h/>`.
    pub handled: u32,
    /// Inbound stanzas handled, some of which may still wait for a receipt.
    pub received: u32,
    /// Outbound stanzas sent.
    sent: u32,
    /// The client's last `h`.
    acked: u32,
    /// Offline rows waiting for an ack, with the outbound count their stanza got, in order.
    offline: VecDeque<(u32, i64)>,
    /// Live durable stanzas waiting for an ack, likewise.
    live: VecDeque<(u32, LiveStanza)>,
}

impl StreamMgmt {
    /// Counts `n` stanzas just written to the client.
    pub fn sent(&mut self, n: usize) {
        // Truncation is the modulo 2^32 the protocol asks for.
        self.sent = self.sent.wrapping_add(n as u32);
    }

    /// The outbound count so far.
    pub fn sent_count(&self) -> u32 {
        self.sent
    }

    /// Remembers that the stanza counted last carried offline row `id`.
    pub fn track(&mut self, id: i64) {
        self.offline.push_back((self.sent, id));
    }

    /// Remembers the live durable stanza that got outbound count `count`.
    pub fn track_live(&mut self, count: u32, stanza: LiveStanza) {
        self.live.push_back((count, stanza));
    }

    /// Whether offline rows wait for an ack.
    pub fn has_pending(&self) -> bool {
        !self.offline.is_empty()
    }

    /// How many stanzas wait for an ack.
    pub fn unacked(&self) -> usize {
        self.offline.len() + self.live.len()
    }

    /// When the oldest live stanza still waiting for an ack was queued.
    pub fn oldest_live(&self) -> Option<Millis> {
        self.live.front().map(|(_, s)| s.queued_at)
    }

    /// At the session's end: the live durable stanzas never acknowledged, in sending order.
    pub fn take_unacked_live(&mut self) -> Vec<LiveStanza> {
        self.offline.clear();
        self.live.drain(..).map(|(_, s)| s).collect()
    }

    /// Applies the client's `<a h/>`: confirms the live stanzas it covers and answers the offline
    /// rows it covers. Counts are compared as distances from the previous ack, so they keep working
    /// when the 32-bit counters wrap.
    pub fn ack(&mut self, h: u32) -> Ack {
        let advance = h.wrapping_sub(self.acked);
        let outstanding = self.sent.wrapping_sub(self.acked);
        if advance > outstanding {
            return Ack::TooHigh { h, sent: self.sent };
        }
        let acked = self.acked;
        let covered = |at: u32| at.wrapping_sub(acked) <= advance;
        while self.live.front().is_some_and(|(at, _)| covered(*at)) {
            if let Some((_, s)) = self.live.pop_front() {
                s.confirm();
            }
        }
        let mut confirmed = Vec::new();
        while self.offline.front().is_some_and(|(at, _)| covered(*at)) {
            confirmed.extend(self.offline.pop_front().map(|(_, id)| id));
        }
        self.acked = h;
        Ack::Confirmed(confirmed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_confirmed_when_the_ack_reaches_their_count() {
        let mut sm = StreamMgmt::default();
        sm.sent(2);
        sm.track(10);
        sm.sent(1);
        sm.track(11);
        sm.sent(3);
        assert_eq!(sm.ack(1), Ack::Confirmed(vec![]));
        assert_eq!(sm.ack(2), Ack::Confirmed(vec![10]));
        assert_eq!(sm.ack(2), Ack::Confirmed(vec![]), "repeated ack");
        assert!(sm.has_pending());
        assert_eq!(sm.ack(6), Ack::Confirmed(vec![11]));
        assert!(!sm.has_pending());
    }

    fn live(xml: &str, queued_at: Millis, receipt: Option<Receipt>) -> LiveStanza {
        LiveStanza {
            xml: xml.into(),
            queued_at,
            receipt,
        }
    }

    #[test]
    fn live_stanzas_wait_with_offline_rows_until_acked() {
        let mut sm = StreamMgmt::default();
        sm.sent(1);
        sm.track(5);
        let base = sm.sent_count();
        sm.sent(3);
        let (receipt, mut wait) = Receipt::new();
        sm.track_live(base + 1, live("<m1/>", 10, Some(receipt)));
        sm.track_live(base + 3, live("<m3/>", 11, None));
        assert_eq!(sm.oldest_live(), Some(10));
        assert_eq!(sm.unacked(), 3);
        assert!(wait.try_recv().is_err(), "not acknowledged yet");
        assert_eq!(sm.ack(2), Ack::Confirmed(vec![5]));
        assert_eq!(wait.try_recv(), Ok(()), "the ack confirmed the receipt");
        assert_eq!(sm.oldest_live(), Some(11));
        assert!(!sm.has_pending(), "no offline row waits");
        assert_eq!(sm.unacked(), 1);
        let left = sm.take_unacked_live();
        assert_eq!(left.len(), 1);
        assert_eq!((&*left[0].xml, left[0].queued_at), ("<m3/>", 11));
        assert_eq!(sm.unacked(), 0);
    }

    #[test]
    fn acking_more_than_sent_confirms_nothing() {
        let mut sm = StreamMgmt::default();
        sm.sent(1);
        sm.track(7);
        assert_eq!(sm.ack(2), Ack::TooHigh { h: 2, sent: 1 });
        assert_eq!(sm.ack(1), Ack::Confirmed(vec![7]));
        // An ack going backwards is as wrong: modulo 2^32 it is ahead of what was sent.
        assert_eq!(sm.ack(0), Ack::TooHigh { h: 0, sent: 1 });
    }

    #[test]
    fn counts_wrap_around() {
        let mut sm = StreamMgmt::default();
        sm.sent(u32::MAX as usize - 1);
        assert_eq!(sm.ack(u32::MAX - 1), Ack::Confirmed(vec![]));
        sm.sent(1);
        sm.track(1); // count u32::MAX
        sm.sent(1);
        sm.track(2); // count 0
        sm.sent(1);
        sm.track(3); // count 1
        assert_eq!(sm.ack(0), Ack::Confirmed(vec![1, 2]));
        assert_eq!(sm.ack(2), Ack::TooHigh { h: 2, sent: 1 });
        assert_eq!(sm.ack(1), Ack::Confirmed(vec![3]));
    }
}
