//! XEP-0016 privacy lists: create/replace, get, names, default, active, delete; and the checks
//! other modules ask before routing (1:1 messages, presence).
//!
//! Only the **default** list is enforced: the ConnectyCube SDK never sends `<active/>` (spec §3.10).
//! Active lists are accepted and reported per session but not applied.
//!
//! Semantics as ConnectyCube documents them (seed 002): the SDK's one-way block is an item with
//! `<message/><presence-in/><presence-out/><iq/>` children, which blocks *inbound* messages only, so
//! the blocker can still write to the blocked user; its two-way (`mutualBlock`) block is an item with
//! no children, which per XEP-0016 covers every stanza in both directions, so the blocker cannot
//! write either. A blocked sender gets `service-unavailable` (503); a blocker writing through a
//! two-way block gets `not-acceptable` (406, XEP-0016 §2.13).
//!
//! Default lists are cached per user in memory (including "has none") and invalidated on every
//! change, so routing does not read the database per message.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use confab_core::clock::now_millis;
use confab_core::Result;
use confab_store::privacy::stanzas;
use confab_store::PrivacyItem;

use crate::error::{error_reply, StanzaError};
use crate::hub::{Account, SessionHandle};
use crate::iq::result;
use crate::jid::{bare_jid, Jid};
use crate::xml::Element;
use crate::{ContactStores, XmppServer};

pub const NS_PRIVACY: &str = "jabber:iq:privacy";

/// Disco features of this module.
pub const FEATURES: &[&str] = &[NS_PRIVACY];

/// Check flag for an outbound message: only items without children ("everything") block it.
const MESSAGE_OUT: u8 = 16;

/// Cached default lists; beyond this many users the cache starts over (it refills on demand).
const CACHE_MAX: usize = 100_000;

/// A list longer than this is refused (`not-acceptable`).
const MAX_ITEMS: usize = 1000;

/// Which stanza is being checked, from the list owner's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    MessageIn,
    MessageOut,
    PresenceIn,
    PresenceOut,
}

impl Check {
    fn flag(self) -> u8 {
        match self {
            Self::MessageIn => stanzas::MESSAGE,
            Self::MessageOut => MESSAGE_OUT,
            Self::PresenceIn => stanzas::PRESENCE_IN,
            Self::PresenceOut => stanzas::PRESENCE_OUT,
        }
    }
}

type List = Option<Arc<Vec<PrivacyItem>>>;

/// Privacy state of the XMPP face: the default-list cache and per-session active list names.
pub struct Privacy {
    store: Arc<dyn ContactStores>,
    cache: RwLock<HashMap<Account, List>>,
    active: Mutex<HashMap<u64, String>>,
}

impl Privacy {
    pub fn new(store: Arc<dyn ContactStores>) -> Self {
        Self {
            store,
            cache: RwLock::new(HashMap::new()),
            active: Mutex::new(HashMap::new()),
        }
    }

    /// The user's default list (cached).
    pub async fn default_list(&self, owner: Account) -> Result<List> {
        if let Some(l) = self.cache.read().expect("privacy lock").get(&owner) {
            return Ok(l.clone());
        }
        let list = self
            .store
            .default_privacy_list(owner.0, owner.1)
            .await?
            .filter(|l| !l.is_empty())
            .map(|mut l| {
                // Evaluated in `order` order (stored in the client's order).
                l.sort_by_key(|i| i.order);
                Arc::new(l)
            });
        let mut cache = self.cache.write().expect("privacy lock");
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(owner, list.clone());
        Ok(list)
    }

    fn invalidate(&self, owner: Account) {
        self.cache.write().expect("privacy lock").remove(&owner);
    }

    /// Forgets a closed session's active list.
    pub fn session_ended(&self, session: u64) {
        self.active.lock().expect("privacy lock").remove(&session);
    }
}

/// Does `owner`'s default list deny `check` with `peer`? `peer_full` is the peer's full JID when
/// known (inbound stanzas). Items of type `subscription` and `group` read the owner's roster item.
pub async fn denies(
    srv: &XmppServer,
    owner: Account,
    peer: Account,
    peer_full: Option<&str>,
    check: Check,
) -> Result<bool> {
    let Some(list) = srv.privacy.default_list(owner).await? else {
        return Ok(false);
    };
    let flag = check.flag();
    let mut roster_item = None;
    let mut roster_read = false;
    for item in list.iter() {
        let applies = item.stanzas == 0 || item.stanzas & flag != 0;
        if !applies {
            continue;
        }
        let matches = match item.kind.as_deref() {
            None => true,
            Some("jid") => item
                .value
                .as_deref()
                .is_some_and(|v| jid_matches(v, peer, peer_full, &srv.config.domain)),
            Some(kind @ ("subscription" | "group")) => {
                if !roster_read {
                    roster_item = srv
                        .contacts
                        .store
                        .roster_item(owner.0, owner.1, peer.1)
                        .await?;
                    roster_read = true;
                }
                let value = item.value.as_deref().unwrap_or("");
                match (&roster_item, kind) {
                    (Some(r), "subscription") if r.in_roster => r.subscription.as_str() == value,
                    (None, "subscription") => value == "none",
                    (Some(r), "subscription") => !r.in_roster && value == "none",
                    (Some(r), _) => r.in_roster && r.groups.iter().any(|g| g == value),
                    (None, _) => false,
                }
            }
            Some(_) => false,
        };
        if matches {
            return Ok(!item.allow);
        }
    }
    Ok(false)
}

/// XEP-0016 §2.1 JID matching. ConnectyCube JIDs name the account in the local part; the SDK builds
/// them with its configured chat host, which may differ from the server's domain name, so an item
/// naming an account matches that account whatever its domain.
fn jid_matches(value: &str, peer: Account, peer_full: Option<&str>, domain: &str) -> bool {
    let Some(v) = Jid::parse(value) else {
        return false;
    };
    match (v.account(), v.resource) {
        (Some(acc), None) => acc == peer,
        (Some(acc), Some(res)) => {
            acc == peer
                && peer_full
                    .and_then(|f| f.split_once('/'))
                    .is_some_and(|(_, r)| r == res)
        }
        // A bare domain: everyone on it (our users are all on our domain).
        (None, None) if v.local.is_none() => v.domain.eq_ignore_ascii_case(domain),
        _ => false,
    }
}

/// The check 1:1 routing makes. `None`: deliver; `Some(e)`: bounce `e` to the sender.
pub async fn check_message(
    srv: &XmppServer,
    from: &SessionHandle,
    to: Account,
) -> Option<StanzaError> {
    if to == from.account() {
        return None;
    }
    let verdict = async {
        if denies(
            srv,
            to,
            from.account(),
            Some(&from.full_jid),
            Check::MessageIn,
        )
        .await?
        {
            return Ok(Some(StanzaError::SERVICE_UNAVAILABLE));
        }
        if denies(srv, from.account(), to, None, Check::MessageOut).await? {
            return Ok(Some(StanzaError::new("modify", 406, "not-acceptable")));
        }
        Ok(None)
    };
    match verdict.await {
        Ok(v) => v,
        Err(e) => Some(StanzaError::from_domain(&e)),
    }
}

/// May `from`'s presence reach `to` (both users' lists)?
pub async fn presence_allowed(
    srv: &XmppServer,
    from: Account,
    from_full: &str,
    to: Account,
) -> bool {
    if from == to {
        return true;
    }
    let r = async {
        Ok::<_, confab_core::Error>(
            !denies(srv, from, to, None, Check::PresenceOut).await?
                && !denies(srv, to, from, Some(from_full), Check::PresenceIn).await?,
        )
    };
    r.await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "privacy check failed; presence not sent");
        false
    })
}

/// Handles `<iq><query xmlns="jabber:iq:privacy"/></iq>` for the sender's own account.
pub async fn handle_iq(
    srv: &Arc<XmppServer>,
    from: &Arc<SessionHandle>,
    iq: &Element,
    reply_from: &str,
) -> Vec<Element> {
    let err = |e: StanzaError| vec![error_reply(iq, &from.full_jid, e, None)];
    let Some(query) = iq.elements().next() else {
        return err(StanzaError::BAD_REQUEST);
    };
    let (app, user) = from.account();
    let store = &srv.contacts.store;
    let children: Vec<&Element> = query.elements().collect();
    let r = match iq.attr("type") {
        Some("get") => match children.as_slice() {
            [] => store.privacy_names(app, user).await.map(|names| {
                let mut q = Element::new("query", NS_PRIVACY);
                let active = srv
                    .privacy
                    .active
                    .lock()
                    .expect("privacy lock")
                    .get(&from.id)
                    .cloned();
                if let Some(a) = active {
                    q.push(Element::bare("active").with_attr("name", a));
                }
                if let Some(d) = names.default {
                    q.push(Element::bare("default").with_attr("name", d));
                }
                for n in names.names {
                    q.push(Element::bare("list").with_attr("name", n));
                }
                vec![result(iq, reply_from, Some(q))]
            }),
            [list] if list.local_name() == "list" => {
                let name = list.attr("name").unwrap_or("");
                store
                    .privacy_list(app, user, name)
                    .await
                    .map(|items| match items {
                        None => err(StanzaError::ITEM_NOT_FOUND),
                        Some(items) => {
                            let mut l = Element::bare("list").with_attr("name", name);
                            for i in &items {
                                l.push(render_item(i));
                            }
                            vec![result(
                                iq,
                                reply_from,
                                Some(Element::new("query", NS_PRIVACY).with_child(l)),
                            )]
                        }
                    })
            }
            _ => Ok(err(StanzaError::BAD_REQUEST)),
        },
        Some("set") => match children.as_slice() {
            [c] if c.local_name() == "active" => match c.attr("name") {
                None => {
                    srv.privacy
                        .active
                        .lock()
                        .expect("privacy lock")
                        .remove(&from.id);
                    Ok(vec![result(iq, reply_from, None)])
                }
                Some(name) => store.privacy_list(app, user, name).await.map(|l| match l {
                    None => err(StanzaError::ITEM_NOT_FOUND),
                    Some(_) => {
                        srv.privacy
                            .active
                            .lock()
                            .expect("privacy lock")
                            .insert(from.id, name.to_string());
                        vec![result(iq, reply_from, None)]
                    }
                }),
            },
            [c] if c.local_name() == "default" => {
                let r = store
                    .set_default_privacy_list(app, user, c.attr("name"))
                    .await;
                srv.privacy.invalidate((app, user));
                r.map(|found| {
                    if found {
                        tracing::debug!(app = %app, user = %user, "default privacy list changed");
                        vec![result(iq, reply_from, None)]
                    } else {
                        err(StanzaError::ITEM_NOT_FOUND)
                    }
                })
            }
            [list] if list.local_name() == "list" && list.attr("name").is_some() => {
                let name = list.attr("name").unwrap_or("");
                if list.elements().next().is_none() {
                    delete_list(srv, from, iq, reply_from, name).await
                } else {
                    match parse_items(list) {
                        Err(e) => Ok(err(e)),
                        Ok(items) => {
                            let r = store
                                .put_privacy_list(app, user, name, &items, now_millis())
                                .await;
                            srv.privacy.invalidate((app, user));
                            r.map(|()| vec![result(iq, reply_from, None)])
                        }
                    }
                }
            }
            _ => Ok(err(StanzaError::BAD_REQUEST)),
        },
        _ => Ok(err(StanzaError::BAD_REQUEST)),
    };
    r.unwrap_or_else(|e| err(StanzaError::from_domain(&e)))
}

async fn delete_list(
    srv: &Arc<XmppServer>,
    from: &SessionHandle,
    iq: &Element,
    reply_from: &str,
    name: &str,
) -> Result<Vec<Element>> {
    let (app, user) = from.account();
    let store = &srv.contacts.store;
    // The default list cannot be removed while it is the default (ConnectyCube: "decline the
    // current default list first"; XEP-0016 §2.8 conflict).
    if store.privacy_names(app, user).await?.default.as_deref() == Some(name) {
        return Ok(vec![error_reply(
            iq,
            &from.full_jid,
            StanzaError::new("cancel", 409, "conflict"),
            None,
        )]);
    }
    if store.delete_privacy_list(app, user, name).await? {
        srv.privacy.invalidate((app, user));
        Ok(vec![result(iq, reply_from, None)])
    } else {
        Ok(vec![error_reply(
            iq,
            &from.full_jid,
            StanzaError::ITEM_NOT_FOUND,
            None,
        )])
    }
}

fn parse_items(list: &Element) -> std::result::Result<Vec<PrivacyItem>, StanzaError> {
    let mut items = Vec::new();
    for el in list.elements() {
        if el.local_name() != "item" {
            return Err(StanzaError::BAD_REQUEST);
        }
        let allow = match el.attr("action") {
            Some("allow") => true,
            Some("deny") => false,
            _ => return Err(StanzaError::BAD_REQUEST),
        };
        let order: u32 = el
            .attr("order")
            .and_then(|o| o.parse().ok())
            .ok_or(StanzaError::BAD_REQUEST)?;
        let kind = el.attr("type").map(str::to_string);
        let value = el.attr("value").map(str::to_string);
        match (kind.as_deref(), value.as_deref()) {
            (None, _) => {}
            (Some("jid"), Some(v)) if Jid::parse(v).is_some() => {}
            (Some("group"), Some(v)) if !v.is_empty() => {}
            (Some("subscription"), Some("none" | "to" | "from" | "both")) => {}
            _ => return Err(StanzaError::BAD_REQUEST),
        }
        let mut mask = 0u8;
        for c in el.elements() {
            mask |= match c.local_name() {
                "message" => stanzas::MESSAGE,
                "iq" => stanzas::IQ,
                "presence-in" => stanzas::PRESENCE_IN,
                "presence-out" => stanzas::PRESENCE_OUT,
                _ => return Err(StanzaError::BAD_REQUEST),
            };
        }
        // All four children mean the same as none, except that "none" also covers outbound
        // messages; keep what the client sent so one-way and two-way blocks stay distinct.
        items.push(PrivacyItem {
            kind,
            value,
            allow,
            order,
            stanzas: mask,
        });
    }
    if items.len() > MAX_ITEMS {
        return Err(StanzaError::new("modify", 406, "not-acceptable"));
    }
    let mut orders: Vec<u32> = items.iter().map(|i| i.order).collect();
    orders.sort_unstable();
    if orders.windows(2).any(|w| w[0] == w[1]) {
        return Err(StanzaError::BAD_REQUEST);
    }
    // Stored in the client's order (the SDK reads items back in pairs, spec §3.10); evaluated in
    // `order` order.
    Ok(items)
}

fn render_item(i: &PrivacyItem) -> Element {
    let mut e = Element::bare("item");
    if let Some(k) = &i.kind {
        e.set_attr("type", k.as_str());
    }
    if let Some(v) = &i.value {
        e.set_attr("value", v.as_str());
    }
    e.set_attr("action", if i.allow { "allow" } else { "deny" });
    e.set_attr("order", i.order.to_string());
    for (flag, name) in [
        (stanzas::MESSAGE, "message"),
        (stanzas::PRESENCE_IN, "presence-in"),
        (stanzas::PRESENCE_OUT, "presence-out"),
        (stanzas::IQ, "iq"),
    ] {
        if i.stanzas & flag != 0 {
            e.push(Element::bare(name));
        }
    }
    e
}

/// The bare JID replies to account queries come from.
pub fn own_bare(srv: &XmppServer, from: &SessionHandle) -> String {
    bare_jid(from.app, from.user, &srv.config.domain)
}
