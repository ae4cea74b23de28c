//! Per-session input rates (stanzas and bytes per second, with bursts). Over them nothing is
//! refused: the session stops reading its socket until the debt is paid, so the client's own
//! writes slow down (TCP backpressure) and nothing is lost, with or without XEP-0198.
//!
//! A read batch is handled first and paid for afterwards, before the next read: one check per
//! batch and limit, never one per byte or stanza.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// A rate with a burst; a zero rate is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputRate {
    pub per_sec: u32,
    pub burst: u32,
}

impl InputRate {
    pub const OFF: InputRate = InputRate {
        per_sec: 0,
        burst: 0,
    };
}

/// One limited quantity and what is owed on it.
struct Bucket {
    limiter: DefaultDirectRateLimiter,
    burst: NonZeroU32,
    owed: u64,
}

impl Bucket {
    fn new(rate: InputRate) -> Option<Self> {
        let per_sec = NonZeroU32::new(rate.per_sec)?;
        let burst = NonZeroU32::new(rate.burst).unwrap_or(per_sec);
        Some(Self {
            limiter: RateLimiter::direct(Quota::per_second(per_sec).allow_burst(burst)),
            burst,
            owed: 0,
        })
    }

    /// Pays as much of the debt as the bucket holds; how long until the rest can be paid.
    fn pay(&mut self) -> Option<Duration> {
        while self.owed > 0 {
            let n = self.owed.min(u64::from(self.burst.get())) as u32;
            let n = NonZeroU32::new(n).expect("owed > 0");
            match self.limiter.check_n(n) {
                Ok(Ok(())) => self.owed -= u64::from(n.get()),
                Ok(Err(not_until)) => {
                    return Some(not_until.wait_time_from(DefaultClock::default().now()))
                }
                // n never exceeds the burst.
                Err(_) => self.owed = 0,
            }
        }
        None
    }
}

/// A session's input limits; only sessions with some limit have one.
pub struct Throttle {
    stanzas: Option<Bucket>,
    bytes: Option<Bucket>,
    /// Bytes buffered before the current read.
    buffered: usize,
}

impl Throttle {
    /// `None` when neither rate is limited.
    pub fn new(stanzas: InputRate, bytes: InputRate) -> Option<Box<Self>> {
        let (stanzas, bytes) = (Bucket::new(stanzas), Bucket::new(bytes));
        (stanzas.is_some() || bytes.is_some()).then(|| {
            Box::new(Self {
                stanzas,
                bytes,
                buffered: 0,
            })
        })
    }

    /// Counts what one read brought and what was handled from it.
    pub fn owe(&mut self, stanzas: usize, bytes: usize) {
        if let Some(b) = &mut self.stanzas {
            b.owed += stanzas as u64;
        }
        if let Some(b) = &mut self.bytes {
            b.owed += bytes as u64;
        }
    }

    /// Before a read: the session's input buffer holds `len` bytes.
    pub fn before_read(&mut self, len: usize) {
        self.buffered = len;
    }

    /// After a read: the buffer holds `len` bytes; the difference came from the client.
    pub fn after_read(&mut self, len: usize) {
        let got = len.saturating_sub(self.buffered);
        self.owe(0, got);
        self.buffered = len;
    }

    /// `None` when the session may read again now; otherwise how long it must wait first.
    pub fn admit(&mut self) -> Option<Duration> {
        let a = self.stanzas.as_mut().and_then(Bucket::pay);
        let b = self.bytes.as_mut().and_then(Bucket::pay);
        a.max(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_is_none() {
        assert!(Throttle::new(InputRate::OFF, InputRate::OFF).is_none());
    }

    #[test]
    fn a_burst_is_free_and_more_waits_for_the_rate() {
        let rate = InputRate {
            per_sec: 10,
            burst: 10,
        };
        let mut t = Throttle::new(rate, InputRate::OFF).unwrap();
        t.owe(10, 1_000_000);
        assert_eq!(t.admit(), None);
        t.owe(5, 0);
        let wait = t.admit().unwrap();
        // Five more cells at 10 per second.
        assert!(wait > Duration::from_millis(400) && wait <= Duration::from_millis(500));
    }

    #[test]
    fn a_debt_larger_than_the_burst_is_paid_in_parts() {
        let rate = InputRate {
            per_sec: 1000,
            burst: 100,
        };
        let mut t = Throttle::new(InputRate::OFF, rate).unwrap();
        t.owe(0, 250);
        // 100 now, then waits; never refuses.
        let start = std::time::Instant::now();
        let mut waits = 0;
        while let Some(wait) = t.admit() {
            assert!(wait <= Duration::from_millis(100));
            std::thread::sleep(wait);
            waits += 1;
        }
        assert!(waits >= 1);
        assert!(start.elapsed() >= Duration::from_millis(140));
    }
}
