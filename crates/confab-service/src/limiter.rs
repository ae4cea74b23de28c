//! A keyed `governor` rate limiter that forgets idle keys, so made-up keys (addresses, logins,
//! tokens) cannot grow its map without bound: keys whose buckets are full again are dropped at
//! most once a minute, on the next check.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// How often keys whose buckets refilled are dropped.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

pub struct KeyedLimiter<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
    started: Instant,
    /// Seconds after `started` of the last sweep.
    swept_at: AtomicU64,
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    pub fn new(quota: Quota) -> Self {
        Self {
            limiter: RateLimiter::keyed(quota),
            started: Instant::now(),
            swept_at: AtomicU64::new(0),
        }
    }

    /// `per_sec` with bursts of `burst` (`per_sec` when 0); `None` (no limit) for a zero rate.
    pub fn per_second(per_sec: u32, burst: u32) -> Option<Self> {
        let rate = NonZeroU32::new(per_sec)?;
        let burst = NonZeroU32::new(burst).unwrap_or(rate);
        Some(Self::new(Quota::per_second(rate).allow_burst(burst)))
    }

    /// `n` per minute, all of them at once if need be; `None` (no limit) for zero.
    pub fn per_minute(n: u32) -> Option<Self> {
        Some(Self::new(Quota::per_minute(NonZeroU32::new(n)?)))
    }

    /// `Err(wait)` when `key` is over its rate; otherwise the call is counted.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        self.sweep();
        self.limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// At most once per [`SWEEP_EVERY`], forgets keys whose buckets are full again.
    fn sweep(&self) {
        let now = self.started.elapsed().as_secs();
        let last = self.swept_at.load(Ordering::Relaxed);
        if now < last + SWEEP_EVERY.as_secs() {
            return;
        }
        // One caller sweeps; the others go on.
        if self
            .swept_at
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
    }

    /// Keys held now.
    pub fn len(&self) -> usize {
        self.limiter.len()
    }

    pub fn is_empty(&self) -> bool {
        self.limiter.is_empty()
    }
}

/// Whether per-address limits skip `ip`: loopback clients are the same host (a local reverse proxy,
/// whose clients all share its address, or the benchmarks and test suites), unless asked otherwise.
pub fn exempt(ip: IpAddr, limit_loopback: bool) -> bool {
    !limit_loopback && ip.to_canonical().is_loopback()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_exempt_unless_asked() {
        let v4: IpAddr = [127, 0, 1, 9].into();
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert!(exempt(v4, false) && exempt(mapped, false));
        assert!(!exempt(v4, true));
        assert!(!exempt([10, 0, 0, 1].into(), false));
    }

    #[test]
    fn zero_is_no_limit() {
        assert!(KeyedLimiter::<u32>::per_second(0, 10).is_none());
        assert!(KeyedLimiter::<u32>::per_minute(0).is_none());
    }

    #[test]
    fn the_burst_passes_then_the_next_waits() {
        let l = KeyedLimiter::per_second(1, 3).unwrap();
        for _ in 0..3 {
            assert!(l.check(&1).is_ok());
        }
        let wait = l.check(&1).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1));
        // Another key has its own bucket.
        assert!(l.check(&2).is_ok());
    }

    #[test]
    fn a_sweep_forgets_refilled_keys_and_keeps_busy_ones() {
        let mut l = KeyedLimiter::per_second(1000, 1).unwrap();
        for k in 0..1000u32 {
            let _ = l.check(&k);
        }
        assert_eq!(l.len(), 1000);
        std::thread::sleep(Duration::from_millis(5));
        // A minute later, one key is busy again.
        l.started -= SWEEP_EVERY;
        l.limiter.check_key(&7).unwrap();
        l.sweep();
        assert_eq!(l.len(), 1);
    }
}
