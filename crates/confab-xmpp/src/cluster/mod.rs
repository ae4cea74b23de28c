//! The XMPP face across nodes: 1:1 stanzas and carbons for a user's sessions on other nodes;
//! presence, subscriptions and roster pushes are in [`presence`].
//!
//! The sending node renders the stanza once and hands it to every node the cluster says has a
//! session of the recipient; each delivers to its own sessions exactly as [`crate::message`] does
//! locally and answers whether a session took it. Only the sending node stores offline, and only
//! when no node took it, so a message is stored once.

mod claims;
mod occupants;
pub mod presence;
mod receipts;
mod recent;

pub use claims::{
    claim_now_elsewhere, claim_now_here, release_claims_of_gone_nodes, spawn_claim_sweeper,
};
pub use occupants::RemoteOccupants;
pub use receipts::RemoteReceipts;
pub use recent::{delivery_key, RecentDeliveries};

use std::sync::{Arc, Weak};

use async_trait::async_trait;
use confab_core::{AppId, ObjectId, UserId};
use confab_service::rooms::DialogChanged;
use confab_service::NodeHandler;
use serde::{Deserialize, Serialize};

use crate::hub::Account;
use crate::jid::bare_jid;
use crate::message::{NS_CARBONS, NS_FORWARD};
use crate::receipt::Receipt;
use crate::xml::{parse_element, Element, Scope, NS_CLIENT};
use crate::XmppServer;

/// The face's name on the cluster.
pub const FACE: &str = "xmpp";

/// What one node asks another's XMPP face to do.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Request {
    /// A stanza for the user's sessions there (that resource only, when it is there).
    Deliver {
        app: i64,
        user: i64,
        resource: Option<String>,
        xml: String,
        durable: bool,
        /// `<from>|<id>` of the stanza: remembered when taken, so that a copy the sender also
        /// stored offline (it never got this node's answer) is not handed out a second time.
        #[serde(default)]
        key: Option<String>,
        /// The sender waits for a receipt (see [`receipts`]): its number on `reply_to`, the
        /// sending node, which hears [`Request::Receipt`] once a copy here is safe.
        #[serde(default)]
        receipt: Option<u64>,
        #[serde(default)]
        reply_to: Option<String>,
    },
    /// The copies `node` took of a message with receipt `id` are settled: one is safe, or all
    /// were dropped unstored.
    Receipt { id: u64, node: String, safe: bool },
    /// A *sent* carbon (XEP-0280) of `message` for the user's sessions there that enabled carbons.
    Carbon {
        app: i64,
        user: i64,
        message: String,
    },
    /// A room's stanza for every session there of these users (group fan-out).
    ToUsers {
        app: i64,
        users: Vec<i64>,
        xml: String,
    },
    /// A broadcast dialog's stanza for every session there of the app.
    ToApp { app: i64, xml: String },
    /// Offline messages of the user became deliverable (stored, or released): its sessions there
    /// that are past their login claim them now.
    ClaimNow { app: i64, user: i64 },
    /// A presence-family stanza for the available sessions there of `users`; `readdress` sets each
    /// copy's `to` to the session's full JID. `origin` names the node of the session that
    /// broadcast it (an undirected presence), remembered there in case that node dies.
    Presence {
        app: i64,
        users: Vec<i64>,
        xml: String,
        readdress: bool,
        origin: Option<String>,
    },
    /// A directed presence for the user's sessions there (only `resource`, when given).
    Directed {
        app: i64,
        user: i64,
        resource: Option<String>,
        xml: String,
    },
    /// The available presences there of `users`.
    AvailableOf { app: i64, users: Vec<i64> },
    /// A roster push (its `<query>`) for the user's sessions there that asked for their roster.
    RosterPush { app: i64, user: i64, query: String },
    /// A group dialog's membership changed (or it was deleted): rooms there reload it, and
    /// removed members' sessions there leave it.
    DialogChanged { change: DialogChanged },
    /// The user's privacy lists changed: the cached default list there is stale.
    PrivacyChanged { app: i64, user: i64 },
    /// Who has joined the room there.
    RoomJoined { app: i64, dialog: String },
    /// An occupant joined or left a room (its presence): for the room's occupants there.
    RoomPresence {
        app: i64,
        dialog: String,
        user: i64,
        xml: String,
        /// The node the occupant is on, and whether they joined (or left): remembered, so that
        /// they can be seen leaving if that node dies.
        #[serde(default)]
        origin: Option<String>,
        #[serde(default)]
        joined: bool,
    },
}

/// What a node answers about a delivery.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Delivered {
    /// A session took it.
    pub taken: bool,
    /// A session in the foreground took it (otherwise the recipient gets a chat alert).
    pub active: bool,
    /// Of a group fan-out's users, those with a session in the foreground there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub active_users: Vec<i64>,
    /// Answering [`Request::AvailableOf`]: the available presences there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub presences: Vec<String>,
    /// Answering [`Request::RoomJoined`]: the users joined there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub joined: Vec<i64>,
}

/// The face's side of the cluster: serves what other nodes send.
pub struct XmppNodeHandler {
    pub server: Weak<XmppServer>,
}

#[async_trait]
impl NodeHandler for XmppNodeHandler {
    async fn handle(&self, payload: Vec<u8>) -> Vec<u8> {
        let answer = match (self.server.upgrade(), serde_json::from_slice(&payload)) {
            (Some(srv), Ok(request)) => handle(&srv, request),
            (_, Err(e)) => {
                tracing::warn!(error = %e, "unreadable request from another node");
                Delivered::default()
            }
            (None, _) => Delivered::default(),
        };
        serde_json::to_vec(&answer).unwrap_or_default()
    }
}

fn handle(srv: &XmppServer, request: Request) -> Delivered {
    match request {
        Request::Deliver {
            app,
            user,
            resource,
            xml,
            durable,
            key,
            receipt,
            reply_to,
        } => {
            let Some(account) = account(app, user) else {
                return Delivered::default();
            };
            let (local, wait) = match (receipt, reply_to) {
                (Some(id), Some(to)) if durable => {
                    let (local, wait) = Receipt::new();
                    (Some(local), Some((id, to, wait)))
                }
                _ => (None, None),
            };
            let xml = xml.into();
            let delivered = deliver_here(
                srv,
                account,
                resource.as_deref(),
                &xml,
                durable,
                local.as_ref(),
            );
            drop(local);
            if let Some(key) = key.filter(|_| delivered.taken && durable) {
                srv.recent_deliveries.remember(account, key);
            }
            if let Some((id, to, wait)) = wait.filter(|_| delivered.taken) {
                receipts::answer_when_settled(srv, id, to, wait);
            }
            delivered
        }
        Request::Receipt { id, node, safe } => {
            srv.remote_receipts.settled(id, &node, safe);
            Delivered::default()
        }
        Request::Carbon { app, user, message } => {
            let Some(account) = account(app, user) else {
                return Delivered::default();
            };
            match parse_element(message.as_bytes(), &Scope::client()) {
                Ok(msg) => send_carbons(srv, account, None, &msg),
                Err(_) => tracing::warn!("unreadable carbon from another node"),
            }
            Delivered::default()
        }
        Request::ToUsers { app, users, xml } => {
            let Ok(app) = AppId::new(app) else {
                return Delivered::default();
            };
            let users: Vec<UserId> = users
                .into_iter()
                .filter_map(|u| UserId::new(u).ok())
                .collect();
            let xml: Arc<str> = xml.into();
            let taken = srv
                .hub
                .send_to_users(app, users.iter().copied(), &xml, None)
                > 0;
            let passive = srv.hub.without_active_session(app, users.iter().copied());
            Delivered {
                taken,
                active: passive.len() < users.len(),
                active_users: users
                    .iter()
                    .filter(|u| !passive.contains(u))
                    .map(|u| u.get())
                    .collect(),
                ..Delivered::default()
            }
        }
        Request::ToApp { app, xml } => {
            let Ok(app) = AppId::new(app) else {
                return Delivered::default();
            };
            let taken = srv.hub.send_to_app(app, &xml.into(), None) > 0;
            Delivered {
                taken,
                ..Delivered::default()
            }
        }
        Request::ClaimNow { app, user } => {
            if let Some(account) = account(app, user) {
                claim_now_here(srv, account);
            }
            Delivered::default()
        }
        Request::Presence {
            app,
            users,
            xml,
            readdress,
            origin,
        } => {
            if let Ok(app) = AppId::new(app) {
                let users = users.into_iter().filter_map(|u| UserId::new(u).ok());
                presence::deliver_here(srv, app, users, &xml, readdress, origin.as_deref());
            }
            Delivered::default()
        }
        Request::Directed {
            app,
            user,
            resource,
            xml,
        } => {
            if let Some(account) = account(app, user) {
                presence::directed_here(srv, account, resource.as_deref(), &xml.into());
            }
            Delivered::default()
        }
        Request::AvailableOf { app, users } => Delivered {
            presences: match AppId::new(app) {
                Ok(app) => presence::available_here(
                    srv,
                    app,
                    users.into_iter().filter_map(|u| UserId::new(u).ok()),
                ),
                Err(_) => Vec::new(),
            },
            ..Delivered::default()
        },
        Request::DialogChanged { change } => {
            if let Some(rooms) = srv.muc.get() {
                rooms.dialog_changed(&change);
            }
            Delivered::default()
        }
        Request::RoomJoined { app: _, dialog } => Delivered {
            joined: match (srv.muc.get(), dialog.parse::<ObjectId>()) {
                (Some(rooms), Ok(dialog)) => {
                    rooms.joined_users(dialog).iter().map(|u| u.get()).collect()
                }
                _ => Vec::new(),
            },
            ..Delivered::default()
        },
        Request::RoomPresence {
            app,
            dialog,
            user,
            xml,
            origin,
            joined,
        } => {
            if let (Some(rooms), Ok(dialog), Some((app, user))) = (
                srv.muc.get(),
                dialog.parse::<ObjectId>(),
                account(app, user),
            ) {
                rooms.occupant_presence_here(dialog, user, &xml.into());
                if let Some(node) = origin {
                    srv.remote_occupants
                        .heard(&node, (app, dialog, user), joined);
                }
            }
            Delivered::default()
        }
        Request::PrivacyChanged { app, user } => {
            if let Some(owner) = account(app, user) {
                srv.privacy.invalidate(owner);
            }
            Delivered::default()
        }
        Request::RosterPush { app, user, query } => {
            match (
                account(app, user),
                parse_element(query.as_bytes(), &Scope::client()),
            ) {
                (Some(owner), Ok(q)) => crate::roster::push_query(srv, owner, &q),
                _ => tracing::warn!("unreadable roster push from another node"),
            }
            Delivered::default()
        }
    }
}

/// Tells every other node a group dialog's membership changed; returns once they all applied it
/// (or did not answer in time), so a removed member stops receiving everywhere first.
pub async fn dialog_changed_elsewhere(srv: &XmppServer, change: &DialogChanged) {
    let nodes = srv.cluster.other_nodes();
    if !nodes.is_empty() {
        let request = Request::DialogChanged {
            change: change.clone(),
        };
        ask(srv, &nodes, &request).await;
    }
}

/// The users joined to a room on the other nodes.
pub async fn room_joined_elsewhere(srv: &XmppServer, app: AppId, dialog: ObjectId) -> Vec<UserId> {
    let nodes = srv.cluster.other_nodes();
    if nodes.is_empty() {
        return Vec::new();
    }
    let request = Request::RoomJoined {
        app: app.get(),
        dialog: dialog.to_string(),
    };
    ask(srv, &nodes, &request)
        .await
        .into_iter()
        .flat_map(|a| a.joined)
        .filter_map(|u| UserId::new(u).ok())
        .collect()
}

/// Hands an occupant's join or leave presence to the room's occupants on every other node.
pub async fn room_presence_elsewhere(
    srv: &XmppServer,
    app: AppId,
    dialog: ObjectId,
    user: UserId,
    xml: &str,
    joined: bool,
) {
    let nodes = srv.cluster.other_nodes();
    if !nodes.is_empty() {
        let request = Request::RoomPresence {
            app: app.get(),
            dialog: dialog.to_string(),
            user: user.get(),
            xml: xml.to_string(),
            origin: Some(srv.cluster.node_id().to_string()),
            joined,
        };
        ask(srv, &nodes, &request).await;
    }
}

/// Tells every other node that `owner`'s privacy lists changed.
pub async fn privacy_changed_elsewhere(srv: &XmppServer, owner: Account) {
    let nodes = srv.cluster.other_nodes();
    if !nodes.is_empty() {
        let request = Request::PrivacyChanged {
            app: owner.0.get(),
            user: owner.1.get(),
        };
        ask(srv, &nodes, &request).await;
    }
}

pub(crate) fn account(app: i64, user: i64) -> Option<Account> {
    Some((AppId::new(app).ok()?, UserId::new(user).ok()?))
}

/// Delivers to this node's sessions of `target`: to `resource` when it is here, else to every one.
pub fn deliver_here(
    srv: &XmppServer,
    target: Account,
    resource: Option<&str>,
    xml: &Arc<str>,
    durable: bool,
    receipt: Option<&Receipt>,
) -> Delivered {
    let sessions = srv.hub.sessions(target);
    let only = resource.filter(|r| sessions.iter().any(|s| s.resource == *r));
    let mut delivered = Delivered::default();
    for s in sessions
        .iter()
        .filter(|s| only.is_none_or(|r| s.resource == r))
    {
        let took = if durable {
            s.send_durable(xml.clone(), receipt.cloned())
        } else {
            s.send(xml.clone())
        };
        delivered.taken |= took;
        delivered.active |= !s.inactive();
    }
    delivered
}

/// Hands a stanza to every other node with a session of `target`; what they answered, together.
pub async fn deliver_elsewhere(
    srv: &XmppServer,
    target: Account,
    resource: Option<&str>,
    xml: &str,
    durable: bool,
    key: Option<String>,
    receipt: Option<&Receipt>,
) -> Delivered {
    let nodes = srv.cluster.nodes_with(target.0, target.1);
    if nodes.is_empty() {
        return Delivered::default();
    }
    let receipt = receipt
        .filter(|_| durable)
        .map(|r| srv.remote_receipts.register(r, &nodes));
    let request = Request::Deliver {
        app: target.0.get(),
        user: target.1.get(),
        resource: resource.map(str::to_string),
        xml: xml.to_string(),
        durable,
        key,
        receipt,
        reply_to: receipt.map(|_| srv.cluster.node_id().to_string()),
    };
    let answers = ask_each(srv, &nodes, &request).await;
    if let Some(id) = receipt {
        let took: Vec<Arc<str>> = answers
            .iter()
            .filter(|(_, d)| d.as_ref().is_some_and(|d| d.taken))
            .map(|(n, _)| n.clone())
            .collect();
        srv.remote_receipts.taken_by(id, &took);
    }
    merge(answers.into_iter().filter_map(|(_, d)| d).collect())
}

fn merge(answers: Vec<Delivered>) -> Delivered {
    let mut all = Delivered::default();
    for answer in answers {
        all.taken |= answer.taken;
        all.active |= answer.active;
        all.active_users.extend(answer.active_users);
    }
    all
}

/// Hands a room's stanza to the other nodes with sessions of `users`, each node once with the
/// users it has; answers which of them have a session in the foreground there.
pub async fn to_users_elsewhere(
    srv: &XmppServer,
    app: AppId,
    users: impl IntoIterator<Item = UserId>,
    xml: &str,
) -> Delivered {
    let asks = presence::per_node(srv, app, users)
        .into_iter()
        .map(|(node, users)| {
            let request = Request::ToUsers {
                app: app.get(),
                users,
                xml: xml.to_string(),
            };
            let payload = serde_json::to_vec(&request).expect("a request serializes");
            async move { srv.cluster.send_to_node(&node, FACE, payload).await }
        });
    let answers = futures_util::future::join_all(asks).await;
    merge(
        answers
            .into_iter()
            .flatten()
            .filter_map(|a| serde_json::from_slice(&a).ok())
            .collect(),
    )
}

/// Hands a broadcast dialog's stanza to every other node.
pub async fn to_app_elsewhere(srv: &XmppServer, app: AppId, xml: &str) {
    let nodes = srv.cluster.other_nodes();
    if !nodes.is_empty() {
        let request = Request::ToApp {
            app: app.get(),
            xml: xml.to_string(),
        };
        ask(srv, &nodes, &request).await;
    }
}

/// Sends *sent* carbons of `msg` to the sender's sessions with carbons on, here and on the other
/// nodes, except the sending session `skip`.
pub async fn carbons_everywhere(srv: &XmppServer, own: Account, skip: u64, msg: &Element) {
    send_carbons(srv, own, Some(skip), msg);
    let nodes = srv.cluster.nodes_with(own.0, own.1);
    if !nodes.is_empty() {
        let request = Request::Carbon {
            app: own.0.get(),
            user: own.1.get(),
            message: msg.to_xml(),
        };
        ask(srv, &nodes, &request).await;
    }
}

fn send_carbons(srv: &XmppServer, own: Account, skip: Option<u64>, msg: &Element) {
    let sessions = srv.hub.sessions(own);
    let targets = || {
        sessions
            .iter()
            .filter(|s| Some(s.id) != skip && s.carbons())
    };
    if targets().next().is_none() {
        return;
    }
    let own_bare = bare_jid(own.0, own.1, &srv.config.domain);
    for s in targets() {
        let carbon = Element::new("message", NS_CLIENT)
            .with_attr("from", own_bare.as_str())
            .with_attr("to", s.full_jid.as_str())
            .with_attr("type", "chat")
            .with_child(
                Element::new("sent", NS_CARBONS)
                    .with_child(Element::new("forwarded", NS_FORWARD).with_child(msg.clone())),
            );
        s.send(carbon.to_xml().into());
    }
}

/// Sends `request` to every node at once; the answers of those that answered.
pub(crate) async fn ask(srv: &XmppServer, nodes: &[Arc<str>], request: &Request) -> Vec<Delivered> {
    let answers = ask_each(srv, nodes, request).await;
    answers.into_iter().filter_map(|(_, d)| d).collect()
}

/// Like [`ask`], with each node's answer (`None`: it did not answer in time).
async fn ask_each(
    srv: &XmppServer,
    nodes: &[Arc<str>],
    request: &Request,
) -> Vec<(Arc<str>, Option<Delivered>)> {
    let payload = serde_json::to_vec(request).expect("a request serializes");
    let answers = futures_util::future::join_all(
        nodes
            .iter()
            .map(|node| srv.cluster.send_to_node(node, FACE, payload.clone())),
    )
    .await;
    nodes
        .iter()
        .cloned()
        .zip(answers)
        .map(|(n, a)| (n, a.and_then(|a| serde_json::from_slice(&a).ok())))
        .collect()
}
