//! XEP-0198 stream management counters of one session, and what waits for the client's ack.
//!
//! Both directions count stanzas (`<message/>`, `<presence/>`, `<iq/>`) modulo 2^32 from the moment
//! `<enabled/>` is sent. An offline row or a live durable stanza handed to the client is remembered
//! with the outbound count it got, and is confirmed once the client's `<a h/>` reaches that count.
//! What is still unconfirmed when the session ends is stored offline again.

use std::collections::VecDeque;
use std::sync::Arc;

use confab_core::clock::Millis;

/// What an `<a h='N'/>` from the client means.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ack {
    /// These offline rows are now acknowledged (possibly none).
    Confirmed(Vec<i64>),
    /// The client acknowledges more than was sent: a protocol violation, nothing is confirmed.
    TooHigh { h: u32, sent: u32 },
}

/// A stanza written to the client that it has not acknowledged yet.
#[derive(Debug)]
enum Unacked {
    /// An offline row, deleted once acknowledged.
    Offline(i64),
    /// A live durable stanza (a 1:1 chat message) and when it was queued.
    Live(Arc<str>, Millis),
}

#[derive(Debug, Default)]
pub(crate) struct StreamMgmt {
    /// Inbound stanzas handled.
    pub handled: u32,
    /// Outbound stanzas sent.
    sent: u32,
    /// The client's last `h`.
    acked: u32,
    /// What waits for an ack, with the outbound count its stanza got, in sending order.
    pending: VecDeque<(u32, Unacked)>,
    /// How many of `pending` are offline rows.
    offline_pending: usize,
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
        self.pending.push_back((self.sent, Unacked::Offline(id)));
        self.offline_pending += 1;
    }

    /// Remembers the live durable stanza that got outbound count `count`.
    pub fn track_live(&mut self, count: u32, xml: Arc<str>, queued_at: Millis) {
        self.pending
            .push_back((count, Unacked::Live(xml, queued_at)));
    }

    /// Whether offline rows wait for an ack.
    pub fn has_pending(&self) -> bool {
        self.offline_pending > 0
    }

    /// How many stanzas wait for an ack.
    pub fn unacked(&self) -> usize {
        self.pending.len()
    }

    /// At the session's end: the live durable stanzas never acknowledged, in sending order.
    pub fn take_unacked_live(&mut self) -> Vec<(Arc<str>, Millis)> {
        self.offline_pending = 0;
        self.pending
            .drain(..)
            .filter_map(|(_, u)| match u {
                Unacked::Live(xml, at) => Some((xml, at)),
                Unacked::Offline(_) => None,
            })
            .collect()
    }

    /// Applies the client's `<a h/>`. Counts are compared as distances from the previous ack, so they
    /// keep working when the 32-bit counters wrap.
    pub fn ack(&mut self, h: u32) -> Ack {
        let advance = h.wrapping_sub(self.acked);
        let outstanding = self.sent.wrapping_sub(self.acked);
        if advance > outstanding {
            return Ack::TooHigh { h, sent: self.sent };
        }
        let mut confirmed = Vec::new();
        while let Some((at, _)) = self.pending.front() {
            if at.wrapping_sub(self.acked) > advance {
                break;
            }
            if let Some((_, Unacked::Offline(id))) = self.pending.pop_front() {
                confirmed.push(id);
                self.offline_pending -= 1;
            }
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

    #[test]
    fn live_stanzas_wait_with_offline_rows_until_acked() {
        let mut sm = StreamMgmt::default();
        sm.sent(1);
        sm.track(5);
        let base = sm.sent_count();
        sm.sent(3);
        sm.track_live(base + 1, "<m1/>".into(), 10);
        sm.track_live(base + 3, "<m3/>".into(), 11);
        assert_eq!(sm.unacked(), 3);
        assert_eq!(sm.ack(2), Ack::Confirmed(vec![5]));
        assert!(!sm.has_pending(), "no offline row waits");
        assert_eq!(sm.unacked(), 1);
        let left = sm.take_unacked_live();
        assert_eq!(left.len(), 1);
        assert_eq!((&*left[0].0, left[0].1), ("<m3/>", 11));
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
