//! RFC 6121 presence: broadcast of available/unavailable to contacts with subscription `from`/`both`,
//! the contacts' current presence to a session at its initial presence (what a probe would return),
//! pending subscription requests at login, directed presence between users, and the subscription
//! handshake. Privacy lists (`presence-in`/`presence-out`) are checked on every presence between users.
//!
//! Presence addressed elsewhere (MUC rooms, other domains) is left to other modules.

use std::sync::Arc;

use confab_core::contacts::RosterItem;
use confab_core::ErrorKind;
use confab_service::roster::ContactEffect;
use confab_service::NodeId;

use crate::cluster;
use crate::error::{error_reply, StanzaError};
use crate::hub::{Account, SessionHandle};
use crate::jid::{bare_jid, Jid};
use crate::privacy::presence_allowed;
use crate::roster::{push, roster_full, Available, NOT_ALLOWED_FULL};
use crate::xml::{Element, NS_CLIENT};
use crate::XmppServer;

fn send_to(s: &SessionHandle, mut p: Element) {
    p.set_attr("to", s.full_jid.as_str());
    s.send(p.to_xml().into());
}

/// Presence without a `to` from a bound session: available (initial or update) or unavailable.
/// Returns `true` when this was the session's initial presence.
pub async fn undirected(srv: &Arc<XmppServer>, from: &Arc<SessionHandle>, el: &Element) -> bool {
    let typ = el.attr("type");
    if !matches!(typ, None | Some("unavailable")) {
        return false;
    }
    let account = from.account();
    let mut p = el.clone();
    p.ns = NS_CLIENT.to_string();
    p.set_attr("xmlns", NS_CLIENT);
    p.remove_attr("to");
    p.set_attr("from", from.full_jid.as_str());
    let was_available = {
        let mut map = srv.contacts.available.lock().expect("contacts lock");
        let list = map.entry(account).or_default();
        let pos = list.iter().position(|(s, _)| s.id == from.id);
        if typ.is_none() {
            match pos {
                Some(i) => list[i].1 = p.clone(),
                None => list.push((from.clone(), p.clone())),
            }
        } else if let Some(i) = pos {
            list.remove(i);
        }
        if list.is_empty() {
            map.remove(&account);
        }
        pos.is_some()
    };
    if typ.is_some() && !was_available {
        return false;
    }
    let roster = match srv.roster.rows(account).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = ?e, "reading roster for presence failed");
            Vec::new()
        }
    };
    broadcast(srv, from, &roster, &p).await;
    let initial = typ.is_none() && !was_available;
    if initial {
        // What probes would return: each contact's available resources, and our own other ones,
        // here and on the other nodes.
        for (s, pres) in srv.contacts.available(account) {
            if s.id != from.id {
                send_to(from, pres);
            }
        }
        let contacts: Vec<_> = roster
            .iter()
            .filter(|i| i.in_roster && i.subscription.to())
            .map(|i| i.contact)
            .collect();
        for &contact in &contacts {
            let contact = (account.0, contact);
            for (s, pres) in srv.contacts.available(contact) {
                if presence_allowed(srv, contact, &s.full_jid, account).await {
                    send_to(from, pres);
                }
            }
        }
        let users = std::iter::once(account.1).chain(contacts.iter().copied());
        for (_, pres) in cluster::presence::available_elsewhere(srv, account.0, users).await {
            let Some(jid) = pres.attr("from").map(str::to_string) else {
                continue;
            };
            let Some(of) = Jid::parse(&jid).and_then(|j| j.account()) else {
                continue;
            };
            if of == account || presence_allowed(srv, of, &jid, account).await {
                send_to(from, pres);
            }
        }
        // Subscription requests that arrived while the user was away.
        for item in roster.iter().filter(|i| i.pending_in) {
            let req = subscription_stanza(srv, (account.0, item.contact), account, "subscribe");
            from.send(req.to_xml().into());
        }
    }
    initial
}

/// After this node was cut off from the other nodes (they may have told their sessions that the
/// users here went unavailable): every available session here announces its presence again to its
/// contacts on the other nodes.
pub async fn announce_again_elsewhere(srv: &XmppServer) {
    let available: Vec<Available> = srv
        .contacts
        .available
        .lock()
        .expect("contacts lock")
        .values()
        .flatten()
        .cloned()
        .collect();
    for (session, p) in available {
        let roster = match srv.roster.rows(session.account()).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = ?e, "reading roster for presence failed");
                continue;
            }
        };
        broadcast_to(srv, &session, &roster, &p, false).await;
    }
}

/// Sends `p` (from `from`'s full JID) to the contacts allowed to see it and to `from`'s other
/// available resources, on every node.
async fn broadcast(srv: &XmppServer, from: &SessionHandle, roster: &[RosterItem], p: &Element) {
    broadcast_to(srv, from, roster, p, true).await;
}

/// [`broadcast`], to the sessions on this node too when `here`.
async fn broadcast_to(
    srv: &XmppServer,
    from: &SessionHandle,
    roster: &[RosterItem],
    p: &Element,
    here: bool,
) {
    let account = from.account();
    for (s, _) in srv.contacts.available(account) {
        if here && s.id != from.id {
            send_to(&s, p.clone());
        }
    }
    let mut elsewhere = vec![account.1];
    for item in roster
        .iter()
        .filter(|i| i.in_roster && i.subscription.from())
    {
        let contact = (account.0, item.contact);
        let targets = match here {
            true => srv.contacts.available(contact),
            false => Vec::new(),
        };
        let remote = !srv.cluster.nodes_with(contact.0, contact.1).is_empty();
        if (targets.is_empty() && !remote)
            || !presence_allowed(srv, account, &from.full_jid, contact).await
        {
            continue;
        }
        for (s, _) in targets {
            send_to(&s, p.clone());
        }
        if remote {
            elsewhere.push(contact.1);
        }
    }
    let here = Some(srv.cluster.node_id());
    cluster::presence::deliver_elsewhere(srv, account.0, elsewhere, p, true, here).await;
}

/// A session closed: its resources leave, and contacts see it go unavailable if it was available.
pub async fn session_ended(srv: &Arc<XmppServer>, handle: &Arc<SessionHandle>) {
    srv.active_privacy_lists.session_ended(handle.id);
    srv.contacts.forget_interest(handle.id);
    let available = srv
        .contacts
        .available(handle.account())
        .iter()
        .any(|(s, _)| s.id == handle.id);
    if available {
        let bye = Element::new("presence", NS_CLIENT).with_attr("type", "unavailable");
        undirected(srv, handle, &bye).await;
    }
}

/// `<presence type="…" from="<from bare>" to="<to bare>"/>`.
fn subscription_stanza(srv: &XmppServer, from: Account, to: Account, typ: &str) -> Element {
    let d = srv.config.domain.as_str();
    Element::new("presence", NS_CLIENT)
        .with_attr("from", bare_jid(from.0, from.1, d))
        .with_attr("to", bare_jid(to.0, to.1, d))
        .with_attr("type", typ)
}

/// Hands a subscription stanza to `to`'s available resources on every node (pending requests are
/// also kept on the roster row, and delivered again at login).
pub async fn deliver_subscription(srv: &XmppServer, from: Account, to: Account, typ: &str) {
    let p = subscription_stanza(srv, from, to, typ);
    let xml: Arc<str> = p.to_xml().into();
    for (s, _) in srv.contacts.available(to) {
        s.send(xml.clone());
    }
    cluster::presence::deliver_elsewhere(srv, to.0, [to.1], &p, false, None).await;
}

/// Sends every available presence of `of` (on any node) to `to`'s available resources (on any
/// node).
async fn share_presence(srv: &XmppServer, of: Account, to: Account, unavailable: bool) {
    let targets = srv.contacts.available(to);
    let remote_targets = !srv.cluster.nodes_with(to.0, to.1).is_empty();
    if targets.is_empty() && !remote_targets {
        return;
    }
    let here: NodeId = srv.cluster.node_id().into();
    let mut presences: Vec<(NodeId, String, Element)> = srv
        .contacts
        .available(of)
        .into_iter()
        .map(|(s, p)| (here.clone(), s.full_jid.to_string(), p))
        .collect();
    for (node, p) in cluster::presence::available_elsewhere(srv, of.0, [of.1]).await {
        if let Some(jid) = p.attr("from").map(str::to_string) {
            presences.push((node, jid, p));
        }
    }
    for (node, jid, pres) in presences {
        if !unavailable && !presence_allowed(srv, of, &jid, to).await {
            continue;
        }
        let p = if unavailable {
            Element::new("presence", NS_CLIENT)
                .with_attr("from", jid.as_str())
                .with_attr("type", "unavailable")
        } else {
            pres
        };
        for (t, _) in &targets {
            send_to(t, p.clone());
        }
        if remote_targets {
            cluster::presence::deliver_elsewhere(srv, to.0, [to.1], &p, true, Some(&node)).await;
        }
    }
}

/// Carries out what a step of the domain's subscription handshake asks, in order.
pub async fn apply(srv: &XmppServer, effects: Vec<ContactEffect>) {
    for e in effects {
        match e {
            ContactEffect::Push {
                owner,
                item,
                removed,
            } => push(srv, owner, &item, removed).await,
            ContactEffect::Notice { from, to, notice } => {
                deliver_subscription(srv, from, to, notice.as_str()).await
            }
            ContactEffect::SharePresence {
                of,
                to,
                unavailable,
            } => share_presence(srv, of, to, unavailable).await,
        }
    }
}

/// Presence with a `to` from a bound session. Presence not addressed to a user of the sender's app
/// on this domain is ignored here.
pub async fn directed(
    srv: &Arc<XmppServer>,
    from: &Arc<SessionHandle>,
    el: Element,
) -> Vec<Element> {
    let Some(jid) = el.attr("to").and_then(Jid::parse) else {
        return Vec::new();
    };
    if !jid.domain.eq_ignore_ascii_case(&srv.config.domain) {
        return Vec::new();
    }
    let Some(target) = jid.account().filter(|(app, _)| *app == from.app) else {
        return Vec::new();
    };
    let resource = jid.resource.map(str::to_string);
    let account = from.account();
    let typ = el.attr("type").map(str::to_string);
    let r = match typ.as_deref() {
        Some(t @ ("subscribe" | "subscribed" | "unsubscribe" | "unsubscribed"))
            if target != account =>
        {
            let roster = &srv.roster;
            let step = match t {
                "subscribe" => roster.subscribe(account, target).await,
                "subscribed" => roster.approve(account, target).await,
                "unsubscribe" => roster.unsubscribe(account, target).await,
                _ => roster.cancel(account, target).await,
            };
            match step {
                Ok(effects) => {
                    apply(srv, effects).await;
                    Ok(())
                }
                Err(e) => Err(e),
            }
        }
        None | Some("unavailable") => {
            // Directed presence (RFC 6121 §4.6).
            if presence_allowed(srv, account, &from.full_jid, target).await {
                let mut p = el.clone();
                p.ns = NS_CLIENT.to_string();
                p.set_attr("xmlns", NS_CLIENT);
                p.set_attr("from", from.full_jid.as_str());
                let xml: Arc<str> = p.to_xml().into();
                cluster::presence::directed_here(srv, target, resource.as_deref(), &xml);
                cluster::presence::directed_elsewhere(srv, target, resource.as_deref(), &xml).await;
            }
            Ok(())
        }
        _ => Ok(()),
    };
    match r {
        Ok(()) => Vec::new(),
        Err(e) if e.kind == ErrorKind::Forbidden => {
            vec![error_reply(
                &el,
                &from.full_jid,
                roster_full(),
                Some(NOT_ALLOWED_FULL),
            )]
        }
        Err(e) if e.kind == ErrorKind::NotFound => {
            vec![error_reply(
                &el,
                &from.full_jid,
                StanzaError::ITEM_NOT_FOUND,
                None,
            )]
        }
        Err(e) => vec![error_reply(
            &el,
            &from.full_jid,
            StanzaError::from_domain(&e),
            None,
        )],
    }
}
