//! Presence across nodes: broadcasts, probes, subscription notices, directed presence and roster
//! pushes for sessions on other nodes, status streaming of users whose sessions are elsewhere, and
//! the unavailable presence of the users of a node that died. After the bus comes back, every
//! session here claims what was stored offline meanwhile, and announces its presence again to
//! contacts on the other nodes (which may have taken this node as gone).
//!
//! The node of the session that acts decides who may see what (privacy lists, subscriptions); the
//! other nodes only hand the stanzas to their own sessions. Each node remembers which full JIDs on
//! which other node it has heard as available ([`RemotePresences`]), so that when that node is
//! taken as gone it can tell its own sessions those JIDs went unavailable.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use confab_core::{AppId, UserId};
use confab_service::{ClusterEvent, NodeId};
use tokio::sync::broadcast::error::RecvError;

use super::{ask, Request};
use crate::hub::{Account, SessionHandle};
use crate::jid::Jid;
use crate::xml::{parse_element, Element, Scope, NS_CLIENT};
use crate::XmppServer;

/// The second look at the offline queues after the bus came back: past the 2 s a request to
/// another node may wait before its sender stores it offline.
const CLAIM_AGAIN_AFTER: std::time::Duration = std::time::Duration::from_secs(3);

/// How much longer than the recipients' ack timeout a receipt from another node is waited for.
const RECEIPT_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Full JIDs heard as available on other nodes, per node and user.
#[derive(Default)]
pub struct RemotePresences {
    by_node: Mutex<HashMap<NodeId, HashMap<Account, HashSet<String>>>>,
}

impl RemotePresences {
    fn record(&self, node: &str, p: &Element) {
        let Some(jid) = p.attr("from") else { return };
        let Some(account) = Jid::parse(jid).and_then(|j| j.account()) else {
            return;
        };
        let available = match p.attr("type") {
            None => true,
            Some("unavailable") => false,
            Some(_) => return,
        };
        let mut map = self.by_node.lock().expect("remote presences");
        if available {
            map.entry(node.into())
                .or_default()
                .entry(account)
                .or_default()
                .insert(jid.to_string());
        } else if let Some(users) = map.get_mut(node) {
            if let Some(jids) = users.get_mut(&account) {
                jids.remove(jid);
                if jids.is_empty() {
                    users.remove(&account);
                }
            }
        }
    }

    /// Forgets what was heard of `account` on `node` (its sessions there ended).
    fn forget(&self, node: &str, account: Account) {
        if let Some(users) = self.by_node.lock().expect("remote presences").get_mut(node) {
            users.remove(&account);
        }
    }

    fn take_node(&self, node: &str) -> HashMap<Account, HashSet<String>> {
        self.by_node
            .lock()
            .expect("remote presences")
            .remove(node)
            .unwrap_or_default()
    }
}

fn readdressed(p: &Element, to: &SessionHandle) -> Arc<str> {
    let mut p = p.clone();
    p.set_attr("to", to.full_jid.as_str());
    p.to_xml().into()
}

/// Hands a presence stanza to this node's available sessions of `users` (for another node).
pub(crate) fn deliver_here(
    srv: &XmppServer,
    app: AppId,
    users: impl Iterator<Item = UserId>,
    xml: &str,
    readdress: bool,
    origin: Option<&str>,
) {
    let Ok(p) = parse_element(xml.as_bytes(), &Scope::client()) else {
        tracing::warn!("unreadable presence from another node");
        return;
    };
    if let Some(node) = origin {
        srv.remote_presences.record(node, &p);
    }
    let as_is: Arc<str> = xml.into();
    for user in users {
        for (s, _) in srv.contacts.available((app, user)) {
            s.send(if readdress {
                readdressed(&p, &s)
            } else {
                as_is.clone()
            });
        }
    }
}

/// Hands a directed presence to this node's sessions of `target` (only `resource`, when given).
pub(crate) fn directed_here(
    srv: &XmppServer,
    target: Account,
    resource: Option<&str>,
    xml: &Arc<str>,
) {
    for s in srv.hub.sessions(target).iter() {
        if resource.is_none_or(|r| r == s.resource) {
            s.send(xml.clone());
        }
    }
}

/// The available presences on this node of `users`, as sent.
pub(crate) fn available_here(
    srv: &XmppServer,
    app: AppId,
    users: impl Iterator<Item = UserId>,
) -> Vec<String> {
    users
        .flat_map(|u| srv.contacts.available((app, u)))
        .map(|(_, p)| p.to_xml())
        .collect()
}

/// Groups `users` by the other nodes that have sessions of them.
pub(super) fn per_node(
    srv: &XmppServer,
    app: AppId,
    users: impl IntoIterator<Item = UserId>,
) -> HashMap<NodeId, Vec<i64>> {
    let mut per_node: HashMap<NodeId, Vec<i64>> = HashMap::new();
    for user in users {
        for node in srv.cluster.nodes_with(app, user) {
            per_node.entry(node).or_default().push(user.get());
        }
    }
    per_node
}

/// Hands the presence `p` to the available sessions of `users` on the other nodes. `origin`: the
/// node of the session whose available or unavailable presence this is, which the others remember.
pub async fn deliver_elsewhere(
    srv: &XmppServer,
    app: AppId,
    users: impl IntoIterator<Item = UserId>,
    p: &Element,
    readdress: bool,
    origin: Option<&str>,
) {
    let per_node = per_node(srv, app, users);
    if per_node.is_empty() {
        return;
    }
    let xml = p.to_xml();
    let origin = origin.map(str::to_string);
    let asks = per_node.into_iter().map(|(node, users)| {
        let request = Request::Presence {
            app: app.get(),
            users,
            xml: xml.clone(),
            readdress,
            origin: origin.clone(),
        };
        async move { ask(srv, &[node], &request).await }
    });
    futures_util::future::join_all(asks).await;
}

/// The available presences of `users` on the other nodes, each with its node (and remembered as
/// heard there).
pub async fn available_elsewhere(
    srv: &XmppServer,
    app: AppId,
    users: impl IntoIterator<Item = UserId>,
) -> Vec<(NodeId, Element)> {
    let per_node = per_node(srv, app, users);
    let asks = per_node.into_iter().map(|(node, users)| {
        let request = Request::AvailableOf {
            app: app.get(),
            users,
        };
        async move { (node.clone(), ask(srv, &[node], &request).await) }
    });
    let mut out = Vec::new();
    for (node, answers) in futures_util::future::join_all(asks).await {
        for xml in answers.into_iter().flat_map(|a| a.presences) {
            if let Ok(p) = parse_element(xml.as_bytes(), &Scope::client()) {
                srv.remote_presences.record(&node, &p);
                out.push((node.clone(), p));
            }
        }
    }
    out
}

/// Hands a directed presence to `target`'s sessions on the other nodes.
pub async fn directed_elsewhere(
    srv: &XmppServer,
    target: Account,
    resource: Option<&str>,
    xml: &str,
) {
    let nodes = srv.cluster.nodes_with(target.0, target.1);
    if !nodes.is_empty() {
        let request = Request::Directed {
            app: target.0.get(),
            user: target.1.get(),
            resource: resource.map(str::to_string),
            xml: xml.to_string(),
        };
        ask(srv, &nodes, &request).await;
    }
}

/// Hands the roster push `q` to `owner`'s interested sessions on the other nodes.
pub async fn roster_push_elsewhere(srv: &XmppServer, owner: Account, q: &Element) {
    let nodes = srv.cluster.nodes_with(owner.0, owner.1);
    if !nodes.is_empty() {
        let request = Request::RosterPush {
            app: owner.0.get(),
            user: owner.1.get(),
            query: q.to_xml(),
        };
        ask(srv, &nodes, &request).await;
    }
}

/// Follows what happens on other nodes while the server runs: status-streaming pushes for users
/// whose sessions are elsewhere, and the unavailable presence of a dead node's users.
pub fn spawn_event_listener(srv: &Arc<XmppServer>) {
    let server = Arc::downgrade(srv);
    let mut events = srv.cluster.events();
    let mut shutdown = srv.shutdown_signal();
    // A receipt another node never answered (its answer lost while the bus was down) is given up
    // once any recipient there would have been disconnected for not acknowledging.
    let receipts_expire_after = srv.config.ack_timeout + RECEIPT_GRACE;
    tokio::spawn(async move {
        let mut sweep = tokio::time::interval(RECEIPT_GRACE);
        loop {
            let event = tokio::select! {
                e = events.recv() => e,
                _ = sweep.tick() => {
                    let Some(srv) = server.upgrade() else { return };
                    srv.remote_receipts.expire(receipts_expire_after);
                    continue;
                }
                _ = shutdown.changed() => return,
            };
            let Some(srv) = server.upgrade() else { return };
            match event {
                Ok(ClusterEvent::Reconnected) => {
                    // Other nodes may have stored offline messages for sessions here while the
                    // bus was down, and could not say so: every session looks now, and again
                    // once requests sent before the bus came back have timed out and been
                    // stored by their senders (whose "claim now" may have been lost as well).
                    srv.hub.each_session(|s| s.offline_stored());
                    let later = server.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(CLAIM_AGAIN_AFTER).await;
                        if let Some(srv) = later.upgrade() {
                            srv.hub.each_session(|s| s.offline_stored());
                            // Other nodes may have taken this one as gone meanwhile, and told
                            // their sessions its users left; by now the nodes know each other
                            // again.
                            crate::presence::announce_again_elsewhere(&srv).await;
                        }
                    });
                }
                Ok(event) => on_event(&srv, event).await,
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "fell behind on events of other nodes")
                }
                Err(RecvError::Closed) => return,
            }
        }
    });
}

async fn on_event(srv: &XmppServer, event: ClusterEvent) {
    match event {
        ClusterEvent::UserOnNode {
            app,
            user,
            node,
            online,
        } => {
            let account = (app, user);
            if online {
                srv.privacy_warmup.read_ahead(account);
            } else {
                srv.remote_presences.forget(&node, account);
            }
            if srv.hub.is_online(account) {
                return;
            }
            let elsewhere = srv.cluster.nodes_with(app, user);
            if online && elsewhere.len() == 1 {
                srv.hub
                    .notify_watchers_at(account, 0, crate::iq::status_push);
            } else if !online && elsewhere.is_empty() {
                went_offline(srv, account);
            }
        }
        // Handled by the listener itself (it needs the server beyond this call).
        ClusterEvent::Reconnected => {}
        ClusterEvent::NodeGone { node, users } => {
            srv.remote_receipts.node_gone(&node);
            if let Some(rooms) = srv.muc.get() {
                for (app, dialog, user) in srv.remote_occupants.take_node(&node) {
                    rooms.occupant_gone_elsewhere(app, dialog, user);
                }
            }
            for (account, jids) in srv.remote_presences.take_node(&node) {
                for jid in jids {
                    let bye = Element::new("presence", NS_CLIENT)
                        .with_attr("from", jid)
                        .with_attr("type", "unavailable");
                    to_contacts_here(srv, account, &bye).await;
                }
            }
            for account in users {
                if !srv.hub.is_online(account)
                    && srv.cluster.nodes_with(account.0, account.1).is_empty()
                {
                    went_offline(srv, account);
                }
            }
        }
    }
}

/// The user's last session anywhere ended: watchers here learn it.
fn went_offline(srv: &XmppServer, account: Account) {
    srv.hub.seen_now(account);
    srv.hub.notify_watchers(account, crate::iq::status_push);
}

/// Sends a presence of `account` to its own available sessions here and to its contacts here
/// with a subscription to it.
async fn to_contacts_here(srv: &XmppServer, account: Account, p: &Element) {
    for (s, _) in srv.contacts.available(account) {
        s.send(readdressed(p, &s));
    }
    let roster = match srv.roster.rows(account).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = ?e, "reading roster for presence failed");
            return;
        }
    };
    for item in roster
        .iter()
        .filter(|i| i.in_roster && i.subscription.from())
    {
        for (s, _) in srv.contacts.available((account.0, item.contact)) {
            s.send(readdressed(p, &s));
        }
    }
}
