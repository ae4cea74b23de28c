//! Who is online on which other node, from the nodes' own announcements. Pure state: no I/O.
//!
//! Every node announces on its own subject, so one node's announcements arrive in the order it
//! sent them: a change (`Online`, `Offline`), a heartbeat (`Alive`), or a snapshot of every user it
//! has (`Snapshot`, in parts; the first part replaces what was known of that node). Changes are
//! idempotent, so a snapshot taken at any moment between them converges to the node's real state.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use confab_service::NodeId;
use serde::{Deserialize, Serialize};

/// A user: `(app id, user id)`.
pub type UserKey = (i64, i64);

/// What a node says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Announce {
    /// A heartbeat; `boot` is random per process, so a node started again under the same name is
    /// told apart from its previous run (whose users are gone, and which had heard of nobody).
    Alive {
        boot: u64,
    },
    Online {
        app: i64,
        user: i64,
    },
    Offline {
        app: i64,
        user: i64,
    },
    /// Part of the full list of the node's users; `first` replaces what was known.
    Snapshot {
        first: bool,
        users: Vec<UserKey>,
    },
    /// The node is shutting down: forget it now rather than after the timeout.
    Leaving,
}

struct Node {
    seen: Instant,
    /// The run announcing under this name; 0 until its first heartbeat.
    boot: u64,
    users: HashSet<UserKey>,
}

#[derive(Default)]
pub struct Directory {
    nodes: HashMap<NodeId, Node>,
    by_user: HashMap<UserKey, Vec<NodeId>>,
}

impl Directory {
    /// Applies one announcement of `node`; `true` when the node was not known before (it started,
    /// or came back after being taken as gone): it then needs this node's snapshot.
    pub fn apply(&mut self, node: &NodeId, announce: Announce, now: Instant) -> bool {
        if announce == Announce::Leaving {
            self.forget(node);
            return false;
        }
        let mut new = !self.nodes.contains_key(node);
        let entry = self.nodes.entry(node.clone()).or_insert_with(|| Node {
            seen: now,
            boot: 0,
            users: HashSet::new(),
        });
        entry.seen = now;
        match announce {
            Announce::Leaving => {}
            Announce::Alive { boot } => {
                if entry.boot != boot {
                    if entry.boot != 0 {
                        // Restarted: its earlier run's users are gone, and it needs snapshots.
                        new = true;
                        for u in std::mem::take(&mut entry.users) {
                            remove(&mut self.by_user, u, node);
                        }
                    }
                    entry.boot = boot;
                }
            }
            Announce::Online { app, user } => {
                if entry.users.insert((app, user)) {
                    add(&mut self.by_user, (app, user), node);
                }
            }
            Announce::Offline { app, user } => {
                if entry.users.remove(&(app, user)) {
                    remove(&mut self.by_user, (app, user), node);
                }
            }
            Announce::Snapshot { first, users } => {
                if first {
                    for u in std::mem::take(&mut entry.users) {
                        remove(&mut self.by_user, u, node);
                    }
                }
                for u in users {
                    if entry.users.insert(u) {
                        add(&mut self.by_user, u, node);
                    }
                }
            }
        }
        new
    }

    /// Counts every node as heard from `now`: after this node was cut off from the bus, the others
    /// get the full timeout to be heard again before they are taken as gone.
    pub fn touch_all(&mut self, now: Instant) {
        for n in self.nodes.values_mut() {
            n.seen = now;
        }
    }

    /// Forgets nodes not heard from for `timeout`; returns them with the users they had.
    pub fn expire(&mut self, now: Instant, timeout: Duration) -> Vec<(NodeId, Vec<UserKey>)> {
        let gone: Vec<NodeId> = self
            .nodes
            .iter()
            .filter(|(_, n)| now.saturating_duration_since(n.seen) > timeout)
            .map(|(id, _)| id.clone())
            .collect();
        gone.into_iter()
            .map(|id| {
                let users = self.forget(&id);
                (id, users)
            })
            .collect()
    }

    /// Drops `node` and returns the users it had.
    fn forget(&mut self, node: &NodeId) -> Vec<UserKey> {
        let Some(n) = self.nodes.remove(node) else {
            return Vec::new();
        };
        for u in &n.users {
            remove(&mut self.by_user, *u, node);
        }
        n.users.into_iter().collect()
    }

    /// The nodes with a session of `user`.
    pub fn nodes_with(&self, user: UserKey) -> Vec<NodeId> {
        self.by_user.get(&user).cloned().unwrap_or_default()
    }

    /// Every node heard from.
    pub fn nodes(&self) -> Vec<NodeId> {
        self.nodes.keys().cloned().collect()
    }

    /// The nodes heard from, for diagnostics and tests.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }
}

fn add(by_user: &mut HashMap<UserKey, Vec<NodeId>>, user: UserKey, node: &NodeId) {
    by_user.entry(user).or_default().push(node.clone());
}

fn remove(by_user: &mut HashMap<UserKey, Vec<NodeId>>, user: UserKey, node: &NodeId) {
    if let Some(list) = by_user.get_mut(&user) {
        list.retain(|n| n != node);
        if list.is_empty() {
            by_user.remove(&user);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        s.into()
    }

    #[test]
    fn changes_and_snapshots_converge() {
        let mut d = Directory::default();
        let t = Instant::now();
        let (a, b) = (id("a"), id("b"));
        assert!(d.apply(&a, Announce::Online { app: 1, user: 7 }, t));
        assert!(!d.apply(&a, Announce::Online { app: 1, user: 7 }, t));
        assert!(d.apply(&b, Announce::Online { app: 1, user: 7 }, t));
        assert_eq!(d.nodes_with((1, 7)).len(), 2);
        d.apply(&a, Announce::Offline { app: 1, user: 7 }, t);
        assert_eq!(d.nodes_with((1, 7)), vec![b.clone()]);
        // A first snapshot part replaces what was known of the node; later parts add.
        let snapshot = |first, users| Announce::Snapshot { first, users };
        d.apply(&b, snapshot(true, vec![(1, 8)]), t);
        d.apply(&b, snapshot(false, vec![(1, 9)]), t);
        assert!(d.nodes_with((1, 7)).is_empty());
        assert_eq!(d.nodes_with((1, 8)), vec![b.clone()]);
        assert_eq!(d.nodes_with((1, 9)), vec![b.clone()]);
        d.apply(&b, Announce::Leaving, t);
        assert!(d.nodes_with((1, 8)).is_empty());
        assert_eq!(d.node_count(), 1);
    }

    #[test]
    fn silent_nodes_expire_with_their_users() {
        let mut d = Directory::default();
        let t = Instant::now();
        let (a, b) = (id("a"), id("b"));
        d.apply(&a, Announce::Online { app: 1, user: 7 }, t);
        d.apply(&b, Announce::Online { app: 1, user: 7 }, t);
        let later = t + Duration::from_secs(5);
        d.apply(&b, Announce::Alive { boot: 1 }, later);
        assert_eq!(
            d.expire(later, Duration::from_secs(3)),
            vec![(a.clone(), vec![(1, 7)])]
        );
        assert_eq!(d.nodes_with((1, 7)), vec![b]);
        // Heard again after being taken as gone: a new node, which needs a snapshot.
        assert!(d.apply(&a, Announce::Alive { boot: 1 }, later));
    }

    #[test]
    fn after_a_reconnection_every_node_gets_a_full_timeout() {
        let mut d = Directory::default();
        let t = Instant::now();
        let a = id("a");
        d.apply(&a, Announce::Online { app: 1, user: 7 }, t);
        // This node was cut off for 10 s; on reconnecting, silence so far counts for nothing.
        let back = t + Duration::from_secs(10);
        d.touch_all(back);
        assert!(d
            .expire(back + Duration::from_secs(2), Duration::from_secs(3))
            .is_empty());
        assert_eq!(d.nodes_with((1, 7)), vec![a.clone()]);
        let gone = d.expire(back + Duration::from_secs(4), Duration::from_secs(3));
        assert_eq!(gone, vec![(a, vec![(1, 7)])]);
    }

    #[test]
    fn a_node_back_under_its_name_is_new_and_without_its_old_users() {
        let mut d = Directory::default();
        let t = Instant::now();
        let a = id("a");
        assert!(d.apply(&a, Announce::Alive { boot: 1 }, t));
        d.apply(&a, Announce::Online { app: 1, user: 7 }, t);
        assert!(!d.apply(&a, Announce::Alive { boot: 1 }, t));
        assert_eq!(d.nodes_with((1, 7)), vec![a.clone()]);
        // Killed and started again before it timed out.
        assert!(d.apply(&a, Announce::Alive { boot: 2 }, t));
        assert!(d.nodes_with((1, 7)).is_empty());
    }
}
