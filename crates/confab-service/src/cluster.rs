//! The cluster: which other nodes have live sessions of a user, and a way to hand a face's payload
//! to one of them. One node alone is [`SingleNode`] (no other node, nothing to hand on); several
//! nodes share a [`Cluster`] over a message bus between them (NATS).
//!
//! The rule every face keeps: a node delivers to its own sessions, hands the same delivery to the
//! nodes that have sessions of the recipient, and only when no node took it does the *sending* node
//! store it offline — so a message is stored once, by one node, whatever the number of nodes.

use std::sync::{Arc, Weak};

use async_trait::async_trait;
use confab_core::{AppId, UserId};
use tokio::sync::broadcast;

/// A node's name in the cluster (`node_id` in the configuration).
pub type NodeId = Arc<str>;

/// What happened on other nodes that a face reacts to (status streaming, contacts' presence).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterEvent {
    /// A user's first session on `node` began (`online`), or their last one there ended.
    UserOnNode {
        app: AppId,
        user: UserId,
        node: NodeId,
        online: bool,
    },
    /// `node` was not heard from in time and is taken as gone, with the sessions of `users`.
    NodeGone {
        node: NodeId,
        users: Vec<(AppId, UserId)>,
    },
    /// This node is connected to the bus again after losing it: what other nodes stored for its
    /// sessions meanwhile could not be signalled.
    Reconnected,
}

/// What one face does with a payload another node's face handed to it; the answer goes back to
/// the sender.
#[async_trait]
pub trait NodeHandler: Send + Sync + 'static {
    async fn handle(&self, payload: Vec<u8>) -> Vec<u8>;
}

#[async_trait]
pub trait Cluster: Send + Sync + 'static {
    /// This node's name.
    fn node_id(&self) -> &str;
    /// The other nodes that have at least one session of the user, as last announced.
    fn nodes_with(&self, app: AppId, user: UserId) -> Vec<NodeId>;
    /// Every other node heard from.
    fn other_nodes(&self) -> Vec<NodeId>;
    /// Every node alive, this one included, once this node has been on the bus long enough to
    /// have heard from all of them; `None` while it cannot know (just joined, or cut off).
    fn live_nodes(&self) -> Option<Vec<NodeId>>;
    /// A face's first session of a user on this node began (`true`) or its last one ended
    /// (`false`). Counted across faces: the user is online here while any face has a session.
    fn online_here(&self, app: AppId, user: UserId, online: bool);
    /// Hands `payload` to the handler of `face` on `node` and returns its answer; `None` when the
    /// node did not answer in time (gone, or the bus is down): the caller acts as if nobody took it.
    async fn send_to_node(&self, node: &str, face: &str, payload: Vec<u8>) -> Option<Vec<u8>>;
    /// Hands `payload` to the handler of `face` on `node` without waiting for an answer; payloads
    /// to one node arrive in the order they were published (lost if the node is gone).
    fn publish_to_node(&self, node: &str, face: &str, payload: Vec<u8>);
    /// Serves payloads other nodes send to `face` on this node (held weakly, like bus subscribers).
    fn serve(&self, face: &str, handler: Weak<dyn NodeHandler>);
    /// What happens on other nodes, from now on.
    fn events(&self) -> broadcast::Receiver<ClusterEvent>;
    /// Whether this node is connected to the bus; `None` when there is no bus (one node alone).
    fn bus_connected(&self) -> Option<bool>;
}

/// One node alone: nobody else has sessions, nothing to hand on.
pub struct SingleNode {
    id: NodeId,
    /// Never sends: there are no other nodes.
    events: broadcast::Sender<ClusterEvent>,
}

impl SingleNode {
    pub fn new(id: &str) -> Self {
        Self {
            id: id.into(),
            events: broadcast::channel(1).0,
        }
    }
}

impl Default for SingleNode {
    fn default() -> Self {
        Self::new("local")
    }
}

#[async_trait]
impl Cluster for SingleNode {
    fn node_id(&self) -> &str {
        &self.id
    }

    fn nodes_with(&self, _app: AppId, _user: UserId) -> Vec<NodeId> {
        Vec::new()
    }

    fn other_nodes(&self) -> Vec<NodeId> {
        Vec::new()
    }

    fn live_nodes(&self) -> Option<Vec<NodeId>> {
        Some(vec![self.id.clone()])
    }

    fn online_here(&self, _app: AppId, _user: UserId, _online: bool) {}

    async fn send_to_node(&self, _node: &str, _face: &str, _payload: Vec<u8>) -> Option<Vec<u8>> {
        None
    }

    fn publish_to_node(&self, _node: &str, _face: &str, _payload: Vec<u8>) {}

    fn serve(&self, _face: &str, _handler: Weak<dyn NodeHandler>) {}

    fn events(&self) -> broadcast::Receiver<ClusterEvent> {
        self.events.subscribe()
    }

    fn bus_connected(&self) -> Option<bool> {
        None
    }
}
