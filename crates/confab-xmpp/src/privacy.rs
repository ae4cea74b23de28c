//! The XMPP side of XEP-0016 privacy lists: the `jabber:iq:privacy` queries (create/replace, get,
//! names, default, active, delete) parsed into and rendered from the domain's
//! [`confab_service::Privacy`], which owns the lists, their cache and every check (and which the
//! REST face's deliveries ask too).
//!
//! A blocked sender gets `service-unavailable` (503); a blocker writing through a two-way block gets
//! `not-acceptable` (406, XEP-0016 §2.13). Active lists are accepted and reported per session but
//! not applied: the ConnectyCube SDK never sends `<active/>` (spec §3.10).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use confab_core::contacts::{stanzas, PrivacyItem};
use confab_service::privacy::{validate_items, ListDeletion, MessageVerdict};

use crate::error::{error_reply, StanzaError};
use crate::hub::{Account, SessionHandle};
use crate::iq::result;
use crate::jid::{bare_jid, Jid};
use crate::xml::Element;
use crate::XmppServer;

pub const NS_PRIVACY: &str = "jabber:iq:privacy";

/// Disco features of this module.
pub const FEATURES: &[&str] = &[NS_PRIVACY];

/// Active list names per session. XEP-0016 lets a session activate a list; the rules themselves
/// (default lists, their cache, every check) belong to the domain's
/// [`confab_service::Privacy`].
#[derive(Default)]
pub struct ActiveLists(Mutex<HashMap<u64, String>>);

impl ActiveLists {
    fn get(&self, session: u64) -> Option<String> {
        self.0.lock().expect("privacy lock").get(&session).cloned()
    }

    fn set(&self, session: u64, name: Option<&str>) {
        let mut m = self.0.lock().expect("privacy lock");
        match name {
            Some(n) => m.insert(session, n.to_string()),
            None => m.remove(&session),
        };
    }

    /// Forgets a closed session's active list.
    pub fn session_ended(&self, session: u64) {
        self.set(session, None);
    }
}

/// The check 1:1 routing makes. `None`: deliver; `Some(e)`: bounce `e` to the sender.
pub async fn check_message(
    srv: &XmppServer,
    from: &SessionHandle,
    to: Account,
) -> Option<StanzaError> {
    match srv
        .privacy
        .message_verdict(from.account(), Some(&from.full_jid), to)
        .await
    {
        Ok(MessageVerdict::Deliver) => None,
        Ok(MessageVerdict::BlockedByRecipient) => Some(StanzaError::SERVICE_UNAVAILABLE),
        // XEP-0016 §2.13: a blocker writing through a two-way block.
        Ok(MessageVerdict::BlockedBySender) => {
            Some(StanzaError::new("modify", 406, "not-acceptable"))
        }
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
    srv.privacy.presence_allowed(from, from_full, to).await
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
    let owner = from.account();
    let privacy = &srv.privacy;
    let children: Vec<&Element> = query.elements().collect();
    let r = match iq.attr("type") {
        Some("get") => match children.as_slice() {
            [] => privacy.names(owner).await.map(|names| {
                let mut q = Element::new("query", NS_PRIVACY);
                if let Some(a) = srv.active_privacy_lists.get(from.id) {
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
                privacy.list(owner, name).await.map(|items| match items {
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
                    srv.active_privacy_lists.set(from.id, None);
                    Ok(vec![result(iq, reply_from, None)])
                }
                Some(name) => privacy.list(owner, name).await.map(|l| match l {
                    None => err(StanzaError::ITEM_NOT_FOUND),
                    Some(_) => {
                        srv.active_privacy_lists.set(from.id, Some(name));
                        vec![result(iq, reply_from, None)]
                    }
                }),
            },
            [c] if c.local_name() == "default" => privacy
                .set_default(owner, c.attr("name"))
                .await
                .map(|found| {
                    if found {
                        vec![result(iq, reply_from, None)]
                    } else {
                        err(StanzaError::ITEM_NOT_FOUND)
                    }
                }),
            [list] if list.local_name() == "list" && list.attr("name").is_some() => {
                let name = list.attr("name").unwrap_or("");
                if list.elements().next().is_none() {
                    privacy.delete_list(owner, name).await.map(|d| match d {
                        ListDeletion::Deleted => vec![result(iq, reply_from, None)],
                        ListDeletion::NotFound => err(StanzaError::ITEM_NOT_FOUND),
                        ListDeletion::IsDefault => err(StanzaError::new("cancel", 409, "conflict")),
                    })
                } else {
                    match parse_items(list) {
                        Err(e) => Ok(err(e)),
                        Ok(items) => privacy
                            .put_list(owner, name, &items)
                            .await
                            .map(|()| vec![result(iq, reply_from, None)]),
                    }
                }
            }
            _ => Ok(err(StanzaError::BAD_REQUEST)),
        },
        _ => Ok(err(StanzaError::BAD_REQUEST)),
    };
    if iq.attr("type") == Some("set") {
        // Other nodes check this user's stanzas against their cached default list.
        crate::cluster::privacy_changed_elsewhere(srv, owner).await;
    }
    r.unwrap_or_else(|e| err(StanzaError::from_domain(&e)))
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
    validate_items(&items).map_err(|e| StanzaError::from_domain(&e))?;
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
