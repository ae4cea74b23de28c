//! Open XMPP connections, in all and per client address. A connection over either cap is refused
//! before any session state exists; a [`ConnSlot`] frees its place when the connection ends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `max_connections` is reached.
    Total,
    /// `max_connections_per_ip` is reached for this address.
    PerIp,
}

impl Refusal {
    /// The XMPP stream error condition.
    pub fn condition(self) -> &'static str {
        match self {
            Refusal::Total => "resource-constraint",
            Refusal::PerIp => "policy-violation",
        }
    }

    /// The text shown with it.
    pub fn text(self) -> &'static str {
        match self {
            Refusal::Total => "The server has too many connections, try again later",
            Refusal::PerIp => "Too many connections from your address",
        }
    }
}

/// The counts behind the caps (0: no cap).
pub struct ConnLimits {
    max_total: u32,
    max_per_ip: u32,
    total: AtomicU32,
    /// Only addresses with open connections: an entry goes when its count reaches 0.
    per_ip: Mutex<HashMap<IpAddr, u32>>,
}

impl ConnLimits {
    pub fn new(max_total: u32, max_per_ip: u32) -> Arc<Self> {
        Arc::new(Self {
            max_total,
            max_per_ip,
            total: AtomicU32::new(0),
            per_ip: Mutex::new(HashMap::new()),
        })
    }

    /// A place for one more connection from `ip`, or why there is none.
    pub fn acquire(self: &Arc<Self>, ip: Option<IpAddr>) -> Result<ConnSlot, Refusal> {
        let total = self.total.fetch_add(1, Ordering::AcqRel);
        if self.max_total > 0 && total >= self.max_total {
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::Total);
        }
        let ip = ip.filter(|_| self.max_per_ip > 0);
        if let Some(ip) = ip {
            let mut map = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
            let n = map.entry(ip).or_insert(0);
            if *n >= self.max_per_ip {
                drop(map);
                self.total.fetch_sub(1, Ordering::AcqRel);
                return Err(Refusal::PerIp);
            }
            *n += 1;
        }
        Ok(ConnSlot(Box::new((self.clone(), ip))))
    }

    /// Open connections now.
    pub fn open(&self) -> u32 {
        self.total.load(Ordering::Acquire)
    }
}

/// One counted connection; dropping it frees the place. Boxed: every connection's task holds one.
pub struct ConnSlot(Box<(Arc<ConnLimits>, Option<IpAddr>)>);

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let (limits, ip) = &*self.0;
        if let Some(ip) = *ip {
            let mut map = limits.per_ip.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = map.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&ip);
                }
            }
        }
        limits.total.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_and_slots_free_their_place() {
        let l = ConnLimits::new(3, 2);
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let a1 = l.acquire(Some(a)).unwrap();
        let _a2 = l.acquire(Some(a)).unwrap();
        assert_eq!(l.acquire(Some(a)).err(), Some(Refusal::PerIp));
        let _b1 = l.acquire(Some(b)).unwrap();
        assert_eq!(l.acquire(Some(b)).err(), Some(Refusal::Total));
        assert_eq!(l.open(), 3);
        drop(a1);
        let _a3 = l.acquire(Some(a)).unwrap();
        drop(_a3);
        drop(_a2);
        assert!(l.per_ip.lock().unwrap().get(&a).is_none());
    }

    #[test]
    fn zero_is_no_cap() {
        let l = ConnLimits::new(0, 0);
        let slots: Vec<_> = (0..100)
            .map(|_| l.acquire(Some([10, 0, 0, 1].into())).unwrap())
            .collect();
        assert_eq!(l.open(), 100);
        drop(slots);
        assert_eq!(l.open(), 0);
    }
}
