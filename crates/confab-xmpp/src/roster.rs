//! RFC 6121 contact lists: roster get/set/remove, roster pushes, and the presence subscription
//! handshake (`subscribe`, `subscribed`, `unsubscribe`, `unsubscribed`).
//!
//! Rows and their size limit are the domain's [`confab_service::Roster`]; each user has at most
//! `xmpp_max_contacts` visible contacts (ConnectyCube: 300). A pending inbound request is
//! kept on the recipient's row (`pending_in`), so it is delivered again at each login until it is
//! answered — that is how requests to offline users arrive. Roster versioning and pre-approval are
//! not supported. The ConnectyCube SDK 6.1.2 has no contact list (spec §3.13); this is for standard
//! clients.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use confab_core::contacts::RosterItem;
use confab_core::{ErrorKind, Result, UserId};

use crate::error::{error_reply, StanzaError};
use crate::hub::{Account, SessionHandle};
use crate::iq::{result, NS_ROSTER};
use crate::jid::{bare_jid, Jid};
use crate::xml::{Element, NS_CLIENT};
use crate::XmppServer;

pub use confab_service::roster::CONTACTS_FULL as NOT_ALLOWED_FULL;

/// An available session with its last broadcast presence.
pub type Available = (Arc<SessionHandle>, Element);

/// Contact-list state of the XMPP face (the rows and their rules are the domain's
/// [`confab_service::Roster`]).
#[derive(Default)]
pub struct Contacts {
    /// Sessions that asked for their roster and so get roster pushes (RFC 6121 §2.1.6).
    interested: Mutex<HashSet<u64>>,
    /// Available sessions (initial presence sent) with their last broadcast presence.
    pub(crate) available: Mutex<HashMap<Account, Vec<Available>>>,
    push_seq: AtomicU64,
}

impl Contacts {
    /// The user's available sessions with their presence.
    pub fn available(&self, account: Account) -> Vec<Available> {
        self.available
            .lock()
            .expect("contacts lock")
            .get(&account)
            .cloned()
            .unwrap_or_default()
    }

    pub(crate) fn forget_interest(&self, session: u64) {
        self.interested
            .lock()
            .expect("contacts lock")
            .remove(&session);
    }
}

fn item_element(item: &RosterItem, domain: &str, app: confab_core::AppId, remove: bool) -> Element {
    let mut e = Element::bare("item").with_attr("jid", bare_jid(app, item.contact, domain));
    if remove {
        e.set_attr("subscription", "remove");
        return e;
    }
    if let Some(n) = &item.name {
        e.set_attr("name", n.as_str());
    }
    e.set_attr("subscription", item.subscription.as_str());
    if item.ask {
        e.set_attr("ask", "subscribe");
    }
    for g in &item.groups {
        e.push(Element::bare("group").with_text(g.as_str()));
    }
    e
}

/// The `<query>` of a roster push for `owner`'s item.
fn push_payload(srv: &XmppServer, owner: Account, item: &RosterItem, remove: bool) -> Element {
    Element::new("query", NS_ROSTER).with_child(item_element(
        item,
        &srv.config.domain,
        owner.0,
        remove,
    ))
}

/// Sends a roster push for `owner`'s item to every interested session of theirs, on every node.
pub async fn push(srv: &XmppServer, owner: Account, item: &RosterItem, remove: bool) {
    let q = push_payload(srv, owner, item, remove);
    push_query(srv, owner, &q);
    crate::cluster::presence::roster_push_elsewhere(srv, owner, &q).await;
}

/// Sends the roster push `q` to every interested session of `owner` on this node.
pub fn push_query(srv: &XmppServer, owner: Account, q: &Element) {
    let interested: Vec<Arc<SessionHandle>> = {
        let set = srv.contacts.interested.lock().expect("contacts lock");
        srv.hub
            .sessions(owner)
            .iter()
            .filter(|s| set.contains(&s.id))
            .cloned()
            .collect()
    };
    for s in interested {
        let n = srv.contacts.push_seq.fetch_add(1, Ordering::Relaxed);
        let iq = Element::new("iq", NS_CLIENT)
            .with_attr("type", "set")
            .with_attr("id", format!("push-{n}"))
            .with_attr("to", s.full_jid.as_str())
            .with_child(q.clone());
        s.send(iq.to_xml().into());
    }
}

/// Writes a row; a new visible contact beyond the limit is `Forbidden`.
pub(crate) async fn save(srv: &XmppServer, owner: Account, item: &RosterItem) -> Result<()> {
    srv.roster.save(owner, item).await
}

pub(crate) async fn row(
    srv: &XmppServer,
    owner: Account,
    contact: UserId,
) -> Result<Option<RosterItem>> {
    srv.roster.row(owner, contact).await
}

/// The error for a full roster: `not-allowed` (RFC 6121 §2.5.3? servers MAY limit roster size).
pub fn roster_full() -> StanzaError {
    StanzaError::NOT_ALLOWED
}

/// Handles `<iq><query xmlns="jabber:iq:roster"/></iq>` for the sender's own account.
pub async fn handle_iq(
    srv: &Arc<XmppServer>,
    from: &Arc<SessionHandle>,
    iq: &Element,
    reply_from: &str,
) -> Vec<Element> {
    let err = |e: StanzaError, text: Option<&str>| vec![error_reply(iq, &from.full_jid, e, text)];
    let Some(query) = iq.elements().next() else {
        return err(StanzaError::BAD_REQUEST, None);
    };
    let owner = from.account();
    let domain = srv.config.domain.as_str();
    match iq.attr("type") {
        Some("get") => {
            srv.contacts
                .interested
                .lock()
                .expect("contacts lock")
                .insert(from.id);
            match srv.roster.rows(owner).await {
                Ok(items) => {
                    let mut q = Element::new("query", NS_ROSTER);
                    for i in items.iter().filter(|i| i.in_roster) {
                        q.push(item_element(i, domain, owner.0, false));
                    }
                    vec![result(iq, reply_from, Some(q))]
                }
                Err(e) => err(StanzaError::from_domain(&e), None),
            }
        }
        Some("set") => {
            let items: Vec<&Element> = query.elements().collect();
            let [item] = items.as_slice() else {
                return err(StanzaError::BAD_REQUEST, None);
            };
            let contact = item
                .attr("jid")
                .and_then(Jid::parse)
                .filter(|j| j.resource.is_none())
                .and_then(|j| j.account())
                .filter(|(app, _)| *app == owner.0);
            let Some(contact) = contact else {
                return err(StanzaError::BAD_REQUEST, None);
            };
            if contact == owner {
                return err(StanzaError::NOT_ALLOWED, None);
            }
            let r = if item.attr("subscription") == Some("remove") {
                remove(srv, from, contact).await
            } else {
                update(srv, owner, contact, item).await
            };
            match r {
                Ok(true) => vec![result(iq, reply_from, None)],
                Ok(false) => err(StanzaError::ITEM_NOT_FOUND, None),
                Err(e) if e.kind == ErrorKind::Forbidden => {
                    err(roster_full(), Some(NOT_ALLOWED_FULL))
                }
                Err(e) => err(StanzaError::from_domain(&e), None),
            }
        }
        _ => err(StanzaError::BAD_REQUEST, None),
    }
}

/// Roster set: adds or updates name and groups (never the subscription).
async fn update(srv: &XmppServer, owner: Account, contact: Account, el: &Element) -> Result<bool> {
    if !srv.roster.user_exists(contact).await? {
        return Ok(false);
    }
    let mut item = row(srv, owner, contact.1)
        .await?
        .unwrap_or_else(|| RosterItem::new(contact.1));
    item.in_roster = true;
    item.name = el
        .attr("name")
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    item.groups = el
        .elements()
        .filter(|g| g.local_name() == "group")
        .map(|g| g.text())
        .filter(|g| !g.is_empty())
        .collect();
    item.groups.sort();
    item.groups.dedup();
    save(srv, owner, &item).await?;
    push(srv, owner, &item, false).await;
    Ok(true)
}

/// Roster remove: cancels subscriptions both ways, then deletes the row (RFC 6121 §2.5.2).
async fn remove(srv: &Arc<XmppServer>, from: &SessionHandle, contact: Account) -> Result<bool> {
    match srv.roster.remove_contact(from.account(), contact).await? {
        None => Ok(false),
        Some(effects) => {
            crate::presence::apply(srv, effects).await;
            Ok(true)
        }
    }
}
