//! XEP-0198 stream management counters of one session, and the offline rows waiting for an ack.
//!
//! Both directions count stanzas (`<message/>`, `<presence/>`, `<iq/>`) modulo 2^32 from the moment
//! `<enabled/>` is sent. An offline row handed to the client is remembered with the outbound count it
//! got, and is confirmed once the client's `<a h/>` reaches that count.

use std::collections::VecDeque;

/// What an `<a h='N'/>` from the client means.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ack {
    /// These offline rows are now acknowledged (possibly none).
    Confirmed(Vec<i64>),
    /// The client acknowledges more than was sent: a protocol violation, nothing is confirmed.
    TooHigh { h: u32, sent: u32 },
}

#[derive(Debug, Default)]
pub(crate) struct StreamMgmt {
    /// Inbound stanzas handled.
    pub handled: u32,
    /// Outbound stanzas sent.
    sent: u32,
    /// The client's last `h`.
    acked: u32,
    /// Offline row ids with the outbound count their stanza got, in sending order.
    pending: VecDeque<(u32, i64)>,
}

impl StreamMgmt {
    /// Counts `n` stanzas just written to the client.
    pub fn sent(&mut self, n: usize) {
        // Truncation is the modulo 2^32 the protocol asks for.
        self.sent = self.sent.wrapping_add(n as u32);
    }

    /// Remembers that the stanza counted last carried offline row `id`.
    pub fn track(&mut self, id: i64) {
        self.pending.push_back((self.sent, id));
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
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
        while let Some(&(at, id)) = self.pending.front() {
            if at.wrapping_sub(self.acked) > advance {
                break;
            }
            confirmed.push(id);
            self.pending.pop_front();
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
