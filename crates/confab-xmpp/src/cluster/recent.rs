//! Stanzas other nodes handed to sessions here lately, so that a copy the sender also stored
//! offline (its answer was lost) is not handed out a second time.

use std::time::Duration;

use crate::hub::Account;
use crate::xml::Element;

/// The key [`RecentDeliveries`] knows a stanza by: `<from>|<id>`; `None` without an id.
pub fn delivery_key(stanza: &Element) -> Option<String> {
    Some(format!("{}|{}", stanza.attr("from")?, stanza.attr("id")?))
}

/// Stanzas other nodes handed to sessions here lately, by recipient and [`delivery_key`]. When a
/// node's answer is lost (the bus went down after the request arrived), the sender stores the
/// stanza offline as well; the recipient's next claim skips that copy.
#[derive(Default)]
pub struct RecentDeliveries {
    inner: std::sync::Mutex<RecentInner>,
}

#[derive(Default)]
struct RecentInner {
    keys: std::collections::HashSet<(Account, String)>,
    order: std::collections::VecDeque<((Account, String), std::time::Instant)>,
}

/// How many keys are kept, and for how long: a lost answer is followed by an offline store within
/// the request timeout, and a claim soon after the bus comes back.
const RECENT_MAX: usize = 65_536;
const RECENT_FOR: Duration = Duration::from_secs(300);

impl RecentDeliveries {
    pub(super) fn remember(&self, to: Account, key: String) {
        let now = std::time::Instant::now();
        let mut r = self.inner.lock().expect("recent deliveries");
        while let Some((old, at)) = r.order.front() {
            if r.order.len() < RECENT_MAX && now.duration_since(*at) < RECENT_FOR {
                break;
            }
            let old = old.clone();
            r.keys.remove(&old);
            r.order.pop_front();
        }
        if r.keys.insert((to, key.clone())) {
            r.order.push_back(((to, key), now));
        }
    }

    /// Whether a stanza with `key` reached a session of `to` here lately.
    pub fn delivered(&self, to: Account, key: &str) -> bool {
        let r = self.inner.lock().expect("recent deliveries");
        !r.keys.is_empty() && r.keys.contains(&(to, key.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::account;
    use crate::xml::NS_CLIENT;

    #[test]
    fn recent_deliveries_are_known_per_recipient() {
        let r = RecentDeliveries::default();
        let (a, b) = (account(1, 2).expect("ids"), account(1, 3).expect("ids"));
        let msg = Element::new("message", NS_CLIENT)
            .with_attr("from", "5-1@localhost/r")
            .with_attr("id", "m1");
        let key = delivery_key(&msg).expect("from and id");
        assert!(!r.delivered(a, &key));
        r.remember(a, key.clone());
        assert!(r.delivered(a, &key));
        assert!(
            !r.delivered(b, &key),
            "another recipient's copy is not a duplicate"
        );
        assert_eq!(delivery_key(&Element::new("message", NS_CLIENT)), None);
    }
}
