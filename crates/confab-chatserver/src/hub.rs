//! The open sockets, by user, on this node and, through the cluster, on the other nodes: a frame
//! for a user goes to their sockets here and is published to every other node that has a session
//! of theirs (in order, no answer awaited); each node hands it to its own sockets.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use async_trait::async_trait;
use axum::body::Bytes;
use confab_core::{AppId, UserId};
use confab_service::{Cluster, NodeHandler, NodeId};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// The face's name on the cluster.
pub const FACE: &str = "chatserver";

/// Frames waiting for one socket; a client that lets this many pile up is disconnected.
pub(crate) const QUEUE: usize = 256;

struct Conn {
    session: String,
    /// Tells this registration apart from a later one of the same session.
    seq: u64,
    tx: mpsc::Sender<Bytes>,
}

/// What one node asks another's ChatServer face to do.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Request {
    /// A frame for every socket there of these users.
    Frame { users: Vec<i64>, frame: String },
    /// The user's sessions ended: close their sockets there.
    CloseUser { user: i64 },
    /// One session of the user ended: close its socket there.
    CloseSession { user: i64, session: String },
    /// Which of these users have a socket there (answered with their ids).
    HasSockets { users: Vec<i64> },
}

/// One socket per device session: a new one replaces the old.
pub struct Hub {
    app: AppId,
    cluster: Arc<dyn Cluster>,
    users: Mutex<HashMap<i64, Vec<Conn>>>,
    seq: AtomicU64,
    /// Sockets open on this node, and how many may be (`chatserver_max_sockets`; 0: no cap).
    open: Arc<AtomicUsize>,
    max_sockets: usize,
}

/// A place for one socket, held while it is open.
pub struct SocketSlot(Arc<AtomicUsize>);

impl Drop for SocketSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Hub {
    pub fn new(app: AppId, cluster: Arc<dyn Cluster>, max_sockets: usize) -> Self {
        Self {
            app,
            cluster,
            users: Mutex::default(),
            seq: AtomicU64::new(0),
            open: Arc::default(),
            max_sockets,
        }
    }

    /// A place for a new socket; `None` when this node has as many open as it may.
    pub(crate) fn reserve_socket(&self) -> Option<SocketSlot> {
        let taken = self
            .open
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (self.max_sockets == 0 || n < self.max_sockets).then_some(n + 1)
            })
            .is_ok();
        taken.then(|| SocketSlot(self.open.clone()))
    }

    pub(crate) fn register(&self, user: UserId, session: &str) -> (u64, mpsc::Receiver<Bytes>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let mut users = self.users.lock().expect("hub lock");
        let conns = users.entry(user.get()).or_default();
        let first = conns.is_empty();
        // Dropping the old sender ends the old socket.
        conns.retain(|c| c.session != session);
        conns.push(Conn {
            session: session.to_string(),
            seq,
            tx,
        });
        if first {
            self.cluster.online_here(self.app, user, true);
        }
        (seq, rx)
    }

    pub(crate) fn unregister(&self, user: UserId, seq: u64) {
        let mut users = self.users.lock().expect("hub lock");
        if let Some(conns) = users.get_mut(&user.get()) {
            conns.retain(|c| c.seq != seq);
            if conns.is_empty() {
                users.remove(&user.get());
                self.cluster.online_here(self.app, user, false);
            }
        }
    }

    /// Closes every socket of the user, on every node (their sessions ended).
    pub fn close_user(&self, _app: AppId, user: UserId) {
        self.close_here(user);
        let request = Request::CloseUser { user: user.get() };
        for node in self.cluster.nodes_with(self.app, user) {
            self.publish(&node, &request);
        }
    }

    /// Closes the socket of one ended session of the user, on every node.
    pub fn close_session(&self, user: UserId, session: &str) {
        self.close_session_here(user, session);
        let request = Request::CloseSession {
            user: user.get(),
            session: session.to_string(),
        };
        for node in self.cluster.nodes_with(self.app, user) {
            self.publish(&node, &request);
        }
    }

    fn close_session_here(&self, user: UserId, session: &str) {
        let mut users = self.users.lock().expect("hub lock");
        if let Some(conns) = users.get_mut(&user.get()) {
            // Dropping the sender ends the socket.
            conns.retain(|c| c.session != session);
            if conns.is_empty() {
                users.remove(&user.get());
                self.cluster.online_here(self.app, user, false);
            }
        }
    }

    fn close_here(&self, user: UserId) {
        if self
            .users
            .lock()
            .expect("hub lock")
            .remove(&user.get())
            .is_some()
        {
            self.cluster.online_here(self.app, user, false);
        }
    }

    /// Whether the user has a socket open on this node.
    pub(crate) fn has_here(&self, user: UserId) -> bool {
        self.users
            .lock()
            .expect("hub lock")
            .contains_key(&user.get())
    }

    /// Those of `users` with a socket open on another node (each node that has sessions of them
    /// is asked; one that does not answer in time counts as having none).
    pub(crate) async fn with_sockets_elsewhere(&self, users: &[UserId]) -> HashSet<UserId> {
        let mut per_node: HashMap<NodeId, Vec<i64>> = HashMap::new();
        for &user in users {
            for node in self.cluster.nodes_with(self.app, user) {
                per_node.entry(node).or_default().push(user.get());
            }
        }
        let asks = per_node.into_iter().map(|(node, users)| async move {
            let request = serde_json::to_vec(&Request::HasSockets { users }).ok()?;
            let answer = self.cluster.send_to_node(&node, FACE, request).await?;
            serde_json::from_slice::<Vec<i64>>(&answer).ok()
        });
        futures_util::future::join_all(asks)
            .await
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|u| UserId::new(u).ok())
            .collect()
    }

    /// Whether any of `users` has a session on any node (before rendering a frame for them).
    pub(crate) fn has_any(&self, users: &[i64]) -> bool {
        {
            let map = self.users.lock().expect("hub lock");
            if users.iter().any(|u| map.contains_key(u)) {
                return true;
            }
        }
        users.iter().any(|&u| {
            UserId::new(u).is_ok_and(|u| !self.cluster.nodes_with(self.app, u).is_empty())
        })
    }

    /// Queues `frame` on every socket of every user here and hands it to the other nodes that
    /// have sessions of them. Full queues are dropped (disconnected).
    pub(crate) fn send(&self, users: &[i64], frame: Bytes) -> usize {
        let sent = self.send_here(users, &frame);
        let mut per_node: HashMap<NodeId, Vec<i64>> = HashMap::new();
        for &u in users {
            let Ok(user) = UserId::new(u) else { continue };
            for node in self.cluster.nodes_with(self.app, user) {
                per_node.entry(node).or_default().push(u);
            }
        }
        if !per_node.is_empty() {
            let frame = String::from_utf8_lossy(&frame).into_owned();
            for (node, users) in per_node {
                let request = Request::Frame {
                    users,
                    frame: frame.clone(),
                };
                self.publish(&node, &request);
            }
        }
        sent
    }

    fn send_here(&self, users: &[i64], frame: &Bytes) -> usize {
        let mut sent = 0;
        let mut map = self.users.lock().expect("hub lock");
        for u in users {
            if let Some(conns) = map.get_mut(u) {
                conns.retain(|c| match c.tx.try_send(frame.clone()) {
                    Ok(()) => {
                        sent += 1;
                        true
                    }
                    Err(_) => false,
                });
                if conns.is_empty() {
                    map.remove(u);
                    if let Ok(user) = UserId::new(*u) {
                        self.cluster.online_here(self.app, user, false);
                    }
                }
            }
        }
        sent
    }

    fn publish(&self, node: &str, request: &Request) {
        let payload = serde_json::to_vec(request).expect("a request serializes");
        self.cluster.publish_to_node(node, FACE, payload);
    }
}

/// The face's side of the cluster: frames and closings other nodes publish.
pub struct ChatServerNodeHandler {
    pub hub: Weak<crate::Face>,
}

#[async_trait]
impl NodeHandler for ChatServerNodeHandler {
    async fn handle(&self, payload: Vec<u8>) -> Vec<u8> {
        let Some(face) = self.hub.upgrade() else {
            return Vec::new();
        };
        match serde_json::from_slice(&payload) {
            Ok(Request::Frame { users, frame }) => {
                face.hub.send_here(&users, &Bytes::from(frame));
            }
            Ok(Request::CloseUser { user }) => {
                if let Ok(user) = UserId::new(user) {
                    face.hub.close_here(user);
                }
            }
            Ok(Request::CloseSession { user, session }) => {
                if let Ok(user) = UserId::new(user) {
                    face.hub.close_session_here(user, &session);
                }
            }
            Ok(Request::HasSockets { users }) => {
                let here: Vec<i64> = users
                    .into_iter()
                    .filter(|&u| UserId::new(u).is_ok_and(|u| face.hub.has_here(u)))
                    .collect();
                return serde_json::to_vec(&here).unwrap_or_default();
            }
            Err(e) => tracing::warn!(error = %e, "unreadable request from another node"),
        }
        Vec::new()
    }
}
