//! Who is in which room on the other nodes, as their join and leave presences told this node, so
//! that when a node dies its occupants can be seen leaving the rooms here.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use confab_core::{AppId, ObjectId, UserId};

/// One user in one room.
pub type Occupant = (AppId, ObjectId, UserId);

/// The other nodes' room occupants, by node.
#[derive(Default)]
pub struct RemoteOccupants {
    by_node: Mutex<HashMap<String, HashSet<Occupant>>>,
}

impl RemoteOccupants {
    /// `node` said `occupant` joined (or left) the room there.
    pub(super) fn heard(&self, node: &str, occupant: Occupant, joined: bool) {
        let mut by_node = self.by_node.lock().expect("remote occupants");
        if joined {
            by_node
                .entry(node.to_string())
                .or_default()
                .insert(occupant);
        } else if let Some(set) = by_node.get_mut(node) {
            set.remove(&occupant);
            if set.is_empty() {
                by_node.remove(node);
            }
        }
    }

    /// `node` is gone: its occupants that no other node has in the same room.
    pub(super) fn take_node(&self, node: &str) -> Vec<Occupant> {
        let mut by_node = self.by_node.lock().expect("remote occupants");
        let Some(gone) = by_node.remove(node) else {
            return Vec::new();
        };
        gone.into_iter()
            .filter(|o| !by_node.values().any(|set| set.contains(o)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn occupant(user: i64) -> Occupant {
        (
            AppId::new(1).unwrap(),
            "0123456789abcdef01234567".parse().unwrap(),
            UserId::new(user).unwrap(),
        )
    }

    #[test]
    fn a_gone_nodes_occupants_leave_unless_in_the_room_elsewhere() {
        let r = RemoteOccupants::default();
        r.heard("b", occupant(1), true);
        r.heard("b", occupant(2), true);
        r.heard("b", occupant(3), true);
        r.heard("b", occupant(3), false);
        r.heard("c", occupant(2), true);
        assert_eq!(r.take_node("b"), vec![occupant(1)]);
        assert!(r.take_node("b").is_empty(), "taken once");
    }
}
