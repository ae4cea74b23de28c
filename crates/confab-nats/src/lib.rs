//! The cluster over NATS (core publish/subscribe and request/reply; no JetStream): several confab
//! nodes on one PostgreSQL database learn who is online where and hand each other payloads.
//!
//! Subjects (`<prefix>` is `confab`):
//! - `<prefix>.presence.<node>`: a node's announcements ([`directory::Announce`]): a heartbeat every
//!   second, each user's first and last session on the node, and a snapshot of all its users when
//!   another node appears (or the bus comes back). Every node subscribes to `<prefix>.presence.*`.
//! - `<prefix>.node.<node>.<face>`: requests for one face on one node; the answer is the reply.
//!
//! A node not heard from for `node_timeout` is taken as gone, with all its users (but only while
//! this node itself is connected: cut off, silence says nothing). Offline messages a gone node's
//! sessions had claimed are released by the XMPP face (see `Cluster::live_nodes`).

pub mod directory;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use confab_core::{AppId, Error, Result, UserId};
use confab_service::{Cluster, ClusterEvent, NodeHandler, NodeId};
use futures_util::StreamExt;
use tokio::sync::{broadcast, mpsc};

use directory::{Announce, Directory, UserKey};

const PREFIX: &str = "confab";
/// How often a node says it is alive.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long a request to another node may take before the sender acts as if nobody took it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// A request not handled within this long of being sent is dropped by the receiver: half the
/// asker's timeout, so that an answer to a request handled in time arrives in time.
const STALE_AFTER: Duration = Duration::from_secs(1);
const STALE_AFTER_HEADER: &str = "Confab-Stale-After";
/// Cluster events a slow face may fall behind by before it misses some.
const EVENTS: usize = 16 * 1024;
/// Users per snapshot part (well under NATS's default 1 MiB payload limit).
const SNAPSHOT_PART: usize = 10_000;

/// Settings of the bus between nodes.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// `nats://host:port`, several separated by commas.
    pub url: String,
    /// This node's name: letters, digits, `-` and `_` (it is part of subjects).
    pub node_id: String,
    pub node_timeout: Duration,
}

/// What the announcer task sends, in order.
enum Outgoing {
    Announce(Announce),
    /// A snapshot of the users online here, taken when it is sent.
    Snapshot,
    /// A payload for a face on another node, with no answer expected.
    Payload {
        subject: String,
        payload: Vec<u8>,
    },
}

struct Shared {
    id: NodeId,
    /// This run of the node (see [`Announce::Alive`]).
    boot: u64,
    /// Users with at least one session on this node: how many faces have some.
    local: Mutex<HashMap<UserKey, u32>>,
    directory: RwLock<Directory>,
    handlers: RwLock<HashMap<String, Weak<dyn NodeHandler>>>,
    outgoing: mpsc::UnboundedSender<Outgoing>,
    /// What happens on other nodes, for the faces.
    events: broadcast::Sender<ClusterEvent>,
    /// Since when this node is connected to the bus; `None` while it is cut off.
    connected_since: Mutex<Option<Instant>>,
    node_timeout: Duration,
}

impl Shared {
    fn connected(&self, now: Instant) {
        *self.connected_since.lock().expect("connection state") = Some(now);
        self.directory.write().expect("directory").touch_all(now);
    }

    fn disconnected(&self) {
        *self.connected_since.lock().expect("connection state") = None;
    }

    fn connected_for(&self, now: Instant) -> Option<Duration> {
        self.connected_since
            .lock()
            .expect("connection state")
            .map(|since| now.saturating_duration_since(since))
    }
}

pub struct NatsCluster {
    shared: Arc<Shared>,
    client: async_nats::Client,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Whether `id` can be part of a subject.
pub fn valid_node_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn bus_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::internal(std::io::Error::other(format!("{what}: {e}")))
}

impl NatsCluster {
    /// Connects (waiting for the first connection), subscribes and starts announcing.
    pub async fn connect(config: NatsConfig) -> Result<Self> {
        if !valid_node_id(&config.node_id) {
            return Err(bus_error(
                "node_id",
                "use 1 to 64 letters, digits, '-' or '_'",
            ));
        }
        let (outgoing, queued) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            id: config.node_id.as_str().into(),
            boot: rand::random::<u64>() | 1,
            local: Mutex::default(),
            directory: RwLock::default(),
            handlers: RwLock::default(),
            outgoing,
            events: broadcast::channel(EVENTS).0,
            connected_since: Mutex::new(None),
            node_timeout: config.node_timeout,
        });
        let reconnected = shared.clone();
        let client = async_nats::ConnectOptions::new()
            .name(format!("confab-{}", config.node_id))
            // Keep trying for ever: the bus coming back must not need a restart of the node.
            .max_reconnects(None)
            .event_callback(move |event| {
                let shared = reconnected.clone();
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            tracing::info!("bus connected");
                            shared.connected(Instant::now());
                            let _ = shared.events.send(ClusterEvent::Reconnected);
                            // Others may have taken this node as gone meanwhile.
                            let _ = shared.outgoing.send(Outgoing::Snapshot);
                        }
                        async_nats::Event::Disconnected => {
                            tracing::warn!("bus disconnected");
                            shared.disconnected();
                        }
                        other => tracing::debug!(event = %other, "bus event"),
                    }
                }
            })
            .connect(config.url.as_str())
            .await
            .map_err(|e| bus_error("connecting to NATS", e))?;

        if shared.connected_for(Instant::now()).is_none() {
            shared.connected(Instant::now());
        }
        let presence = client
            .subscribe(format!("{PREFIX}.presence.*"))
            .await
            .map_err(|e| bus_error("subscribing", e))?;
        let requests = client
            .subscribe(format!("{PREFIX}.node.{}.*", config.node_id))
            .await
            .map_err(|e| bus_error("subscribing", e))?;
        let tasks = vec![
            tokio::spawn(announce(client.clone(), shared.clone(), queued)),
            tokio::spawn(listen_presence(shared.clone(), presence)),
            tokio::spawn(serve_requests(client.clone(), shared.clone(), requests)),
            tokio::spawn(heartbeat(shared.clone(), config.node_timeout)),
        ];
        // Hear every live node (heartbeats each second; our first one has them send us their
        // users) before this node serves: otherwise it would take users online elsewhere as
        // offline for a moment.
        tokio::time::sleep(HEARTBEAT + Duration::from_millis(250)).await;
        tracing::info!(node = %shared.id, nodes = shared.directory.read().expect("directory").node_count(), "joined the bus");
        Ok(Self {
            shared,
            client,
            tasks,
        })
    }

    /// Tells the other nodes this one is leaving (they forget its users at once) and stops.
    pub async fn leave(&self) {
        let _ = self
            .shared
            .outgoing
            .send(Outgoing::Announce(Announce::Leaving));
        // The announcer sends in order; give it the moment it needs, then flush.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _ = self.client.flush().await;
    }

    /// The other nodes heard from.
    pub fn node_count(&self) -> usize {
        self.shared
            .directory
            .read()
            .expect("directory")
            .node_count()
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

#[async_trait]
impl Cluster for NatsCluster {
    fn node_id(&self) -> &str {
        &self.shared.id
    }

    fn nodes_with(&self, app: AppId, user: UserId) -> Vec<NodeId> {
        self.shared
            .directory
            .read()
            .expect("directory")
            .nodes_with((app.get(), user.get()))
    }

    fn other_nodes(&self) -> Vec<NodeId> {
        self.shared.directory.read().expect("directory").nodes()
    }

    fn live_nodes(&self) -> Option<Vec<NodeId>> {
        // Everyone alive has been heard within a timeout of connecting (heartbeats every second).
        let connected = self.shared.connected_for(Instant::now())?;
        if connected < self.shared.node_timeout + HEARTBEAT {
            return None;
        }
        let mut nodes = self.other_nodes();
        nodes.push(self.shared.id.clone());
        Some(nodes)
    }

    fn online_here(&self, app: AppId, user: UserId, online: bool) {
        let key = (app.get(), user.get());
        let mut local = self.shared.local.lock().expect("local users");
        let changed = if online {
            let faces = local.entry(key).or_insert(0);
            *faces += 1;
            *faces == 1
        } else {
            match local.get_mut(&key) {
                Some(faces) if *faces > 1 => {
                    *faces -= 1;
                    false
                }
                Some(_) => local.remove(&key).is_some(),
                None => false,
            }
        };
        if changed {
            let (app, user) = key;
            let a = if online {
                Announce::Online { app, user }
            } else {
                Announce::Offline { app, user }
            };
            // Sent while the lock is held, so the announcements keep the order of the changes.
            let _ = self.shared.outgoing.send(Outgoing::Announce(a));
        }
    }

    async fn send_to_node(&self, node: &str, face: &str, payload: Vec<u8>) -> Option<Vec<u8>> {
        let subject = format!("{PREFIX}.node.{node}.{face}");
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(
            STALE_AFTER_HEADER,
            (unix_millis() + STALE_AFTER.as_millis() as u64).to_string(),
        );
        let request = async_nats::Request::new()
            .payload(payload.into())
            .headers(headers)
            .timeout(Some(REQUEST_TIMEOUT));
        match self.client.send_request(subject, request).await {
            Ok(reply) => Some(reply.payload.to_vec()),
            Err(e) => {
                tracing::warn!(node, face, error = %e, "another node did not answer");
                None
            }
        }
    }

    fn events(&self) -> broadcast::Receiver<ClusterEvent> {
        self.shared.events.subscribe()
    }

    fn bus_connected(&self) -> Option<bool> {
        Some(self.shared.connected_for(Instant::now()).is_some())
    }

    fn publish_to_node(&self, node: &str, face: &str, payload: Vec<u8>) {
        let subject = format!("{PREFIX}.node.{node}.{face}");
        // Through the announcer: one task publishes, so payloads keep their order.
        let _ = self
            .shared
            .outgoing
            .send(Outgoing::Payload { subject, payload });
    }

    fn serve(&self, face: &str, handler: Weak<dyn NodeHandler>) {
        self.shared
            .handlers
            .write()
            .expect("handlers")
            .insert(face.to_string(), handler);
    }
}

/// Publishes this node's announcements in the order they were made.
async fn announce(
    client: async_nats::Client,
    shared: Arc<Shared>,
    mut queued: mpsc::UnboundedReceiver<Outgoing>,
) {
    let subject = format!("{PREFIX}.presence.{}", shared.id);
    while let Some(next) = queued.recv().await {
        let announces = match next {
            Outgoing::Payload { subject, payload } => {
                if let Err(e) = client.publish(subject, payload.into()).await {
                    tracing::warn!(error = %e, "publishing to another node failed");
                }
                continue;
            }
            Outgoing::Announce(a) => vec![a],
            Outgoing::Snapshot => {
                let users: Vec<UserKey> = shared
                    .local
                    .lock()
                    .expect("local users")
                    .keys()
                    .copied()
                    .collect();
                let mut parts: Vec<Announce> = users
                    .chunks(SNAPSHOT_PART)
                    .enumerate()
                    .map(|(i, part)| Announce::Snapshot {
                        first: i == 0,
                        users: part.to_vec(),
                    })
                    .collect();
                if parts.is_empty() {
                    parts.push(Announce::Snapshot {
                        first: true,
                        users: Vec::new(),
                    });
                }
                parts
            }
        };
        for a in announces {
            let body = serde_json::to_vec(&a).expect("an announcement serializes");
            // While the bus is down the client buffers; a failure here is a full buffer, and the
            // snapshot sent on reconnection repairs what others missed.
            if let Err(e) = client.publish(subject.clone(), body.into()).await {
                tracing::warn!(error = %e, "announcing to the bus failed");
            }
        }
    }
}

async fn listen_presence(shared: Arc<Shared>, mut presence: async_nats::Subscriber) {
    while let Some(msg) = presence.next().await {
        let Some(node) = msg.subject.rsplit('.').next() else {
            continue;
        };
        if node == &*shared.id {
            continue;
        }
        let Ok(announce) = serde_json::from_slice::<Announce>(&msg.payload) else {
            tracing::warn!(node, "unreadable announcement");
            continue;
        };
        let node: NodeId = node.into();
        let change = match announce {
            Announce::Online { app, user } => Some((app, user, true)),
            Announce::Offline { app, user } => Some((app, user, false)),
            _ => None,
        };
        let new =
            shared
                .directory
                .write()
                .expect("directory")
                .apply(&node, announce, Instant::now());
        if let Some((Ok(app), Ok(user), online)) =
            change.map(|(a, u, on)| (AppId::new(a), UserId::new(u), on))
        {
            let _ = shared.events.send(ClusterEvent::UserOnNode {
                app,
                user,
                node: node.clone(),
                online,
            });
        }
        if new {
            tracing::info!(%node, "node joined");
            // It knows nothing of this node's users yet.
            let _ = shared.outgoing.send(Outgoing::Snapshot);
        }
    }
}

async fn serve_requests(
    client: async_nats::Client,
    shared: Arc<Shared>,
    mut requests: async_nats::Subscriber,
) {
    while let Some(msg) = requests.next().await {
        let face = msg.subject.rsplit('.').next().unwrap_or_default();
        let handler = shared
            .handlers
            .read()
            .expect("handlers")
            .get(face)
            .and_then(Weak::upgrade);
        let Some(handler) = handler else {
            continue;
        };
        let Some(reply) = msg.reply.clone() else {
            // Published, not asked: handled here, in the order it arrived.
            handler.handle(msg.payload.to_vec()).await;
            continue;
        };
        if stale(&msg) {
            // The asker has given up on it (the bus held it while it was down) and acted as if
            // nobody took it, storing it offline: taking it now would deliver it twice.
            tracing::warn!(face, "dropped a request that arrived too late");
            continue;
        }
        let client = client.clone();
        tokio::spawn(async move {
            let answer = handler.handle(msg.payload.to_vec()).await;
            if let Err(e) = client.publish(reply, answer.into()).await {
                tracing::warn!(error = %e, "answering another node failed");
            }
        });
    }
}

fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Whether a request arrived after the time its sender put on it (node clocks are assumed in step
/// within well under a second, as NTP keeps them).
fn stale(msg: &async_nats::Message) -> bool {
    msg.headers
        .as_ref()
        .and_then(|h| h.get(STALE_AFTER_HEADER))
        .and_then(|v| v.as_str().parse::<u64>().ok())
        .is_some_and(|deadline| unix_millis() > deadline)
}

/// Says this node is alive every second, and forgets nodes that stopped saying so.
async fn heartbeat(shared: Arc<Shared>, timeout: Duration) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    loop {
        tick.tick().await;
        let _ = shared
            .outgoing
            .send(Outgoing::Announce(Announce::Alive { boot: shared.boot }));
        // Cut off from the bus, silence says nothing about the others.
        if shared.connected_for(Instant::now()).is_none() {
            continue;
        }
        let gone = shared
            .directory
            .write()
            .expect("directory")
            .expire(Instant::now(), timeout);
        for (node, users) in gone {
            tracing::warn!(%node, users = users.len(), "node gone: not heard from in time");
            let users = users
                .into_iter()
                .filter_map(|(a, u)| Some((AppId::new(a).ok()?, UserId::new(u).ok()?)))
                .collect();
            let _ = shared.events.send(ClusterEvent::NodeGone { node, users });
        }
    }
}
