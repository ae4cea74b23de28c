//! 1:1 message routing: `from` stamping, history hook, fan-out to every resource, *sent* carbons
//! (XEP-0280), offline storage with XEP-0203 `<delay/>` (the session confirms delivery, see
//! [`crate::session`]), and message errors back to the sender.
//!
//! Typing (XEP-0085), chat markers, corrections (XEP-0308) and ConnectyCube deletes are forwarded as
//! they are. Headline messages (system notifications, WebRTC call signalling) are delivered live only.

use std::sync::Arc;

use confab_core::clock::{now_millis, to_iso, Millis};
use confab_core::ErrorKind;
use confab_service::push::ChatAlert;

use crate::error::{error_reply, StanzaError};
use crate::history::{extra_params_to_json, message_event, ChatMessage, MessageEvent};
use crate::hub::{Account, SessionHandle};
use crate::jid::Jid;
use crate::receipt::{Receipt, ReceiptWait};
use crate::xml::{parse_element, Element, Scope, NS_CLIENT};
use crate::XmppServer;

pub const NS_CARBONS: &str = "urn:xmpp:carbons:2";
pub const NS_FORWARD: &str = "urn:xmpp:forward:0";
pub const NS_DELAY: &str = "urn:xmpp:delay";
pub const NS_CHATSTATES: &str = "http://jabber.org/protocol/chatstates";
pub const NS_MARKERS: &str = "urn:xmpp:chat-markers:0";
pub const NS_CORRECT: &str = "urn:xmpp:message-correct:0";
pub const NS_CC_DELETE: &str = "urn:xmpp:message-delete:0";
pub const NS_HINTS: &str = "urn:xmpp:hints";

/// Disco features this module implements.
pub const FEATURES: &[&str] = &[
    NS_CARBONS,
    NS_DELAY,
    NS_CHATSTATES,
    NS_MARKERS,
    NS_CORRECT,
    "msgoffline",
];

/// What kind of 1:1 message this is, for storage and carbons decisions.
struct Kind {
    body: bool,
    typing_only: bool,
    marker: bool,
    correction: bool,
}

fn classify(msg: &Element) -> Kind {
    let body = msg.child("body", NS_CLIENT).is_some();
    let chat_state = msg.elements().any(|e| e.ns == NS_CHATSTATES);
    let marker = msg
        .elements()
        .any(|e| e.ns == NS_MARKERS && matches!(e.local_name(), "received" | "displayed"));
    let correction = msg.has_child("replace", NS_CORRECT) || msg.has_child("remove", NS_CC_DELETE);
    Kind {
        body,
        typing_only: chat_state && !body && !marker && !correction,
        marker,
        correction,
    }
}

/// A 1:1 message handed only to the recipient's sessions, which the sender's XEP-0198 count waits
/// for (see [`crate::receipt`]).
pub struct Unconfirmed {
    pub wait: ReceiptWait,
    target: Account,
    xml: Arc<str>,
    queued_at: Millis,
}

/// What routing a message gives back to its sender's session.
#[derive(Default)]
pub struct Routed {
    /// Stanzas for the sender (errors).
    pub replies: Vec<Element>,
    /// Set when the sender asked for a receipt and the message is safe only in memory yet.
    pub unconfirmed: Option<Unconfirmed>,
}

/// Routes a `<message>` from a bound session. Returns what goes back to the sender (errors).
pub async fn route(srv: &Arc<XmppServer>, from: &Arc<SessionHandle>, msg: Element) -> Vec<Element> {
    route_with_receipt(srv, from, msg, false).await.replies
}

/// Routes a `<message>`; with `want_receipt`, a 1:1 chat message that is stored nowhere yet comes
/// back [`Unconfirmed`].
pub async fn route_with_receipt(
    srv: &Arc<XmppServer>,
    from: &Arc<SessionHandle>,
    msg: Element,
    want_receipt: bool,
) -> Routed {
    let mut unconfirmed = None;
    let replies = route_inner(srv, from, msg, want_receipt, &mut unconfirmed).await;
    Routed {
        replies,
        unconfirmed,
    }
}

async fn route_inner(
    srv: &Arc<XmppServer>,
    from: &Arc<SessionHandle>,
    mut msg: Element,
    want_receipt: bool,
    unconfirmed: &mut Option<Unconfirmed>,
) -> Vec<Element> {
    let typ = msg.attr("type").unwrap_or("normal").to_string();
    let bounce =
        |msg: &Element, err: StanzaError| vec![error_reply(msg, &from.full_jid, err, None)];
    let Some(to) = msg.attr("to").map(str::to_string) else {
        // Messages to the server itself: nothing to do.
        return Vec::new();
    };
    let Some(jid) = Jid::parse(&to) else {
        return if typ == "error" {
            Vec::new()
        } else {
            bounce(&msg, StanzaError::new("modify", 400, "jid-malformed"))
        };
    };
    let domain = &srv.config.domain;
    let target = jid
        .account()
        .filter(|_| jid.domain.eq_ignore_ascii_case(domain));
    // Other apps' users are invisible: the same answer as for a user that does not exist.
    let Some(target) = target.filter(|(app, _)| *app == from.app) else {
        return if typ == "error" {
            Vec::new()
        } else {
            bounce(&msg, StanzaError::SERVICE_UNAVAILABLE)
        };
    };
    let resource = jid.resource.map(str::to_string);

    msg.set_attr("xmlns", NS_CLIENT);
    msg.ns = NS_CLIENT.to_string();
    msg.set_attr("from", from.full_jid.as_str());
    let kind = classify(&msg);
    // In the history, a message is safe before it is delivered.
    let mut saved = false;

    // XEP-0016: the recipient's and the sender's default privacy lists.
    if typ != "error" {
        if let Some(err) = crate::privacy::check_message(srv, from, target).await {
            return bounce(&msg, err);
        }
    }

    if typ == "error" {
        // Error replies go only to the resource they answer.
        if let Some(s) = resource.and_then(|r| srv.hub.session(target, &r)) {
            s.send(msg.to_xml().into());
        }
        return Vec::new();
    }

    if typ == "chat" && (kind.marker || kind.correction) {
        if let (Some(history), Some(event)) = (&srv.history, message_event(&msg)) {
            if let Err(e) = history.record_event(from.app, from.user, &event).await {
                if !matches!(event, MessageEvent::Marker { .. }) {
                    let err = StanzaError::from_domain(&e);
                    let text = (e.kind != ErrorKind::Internal).then_some(e.message.as_str());
                    return vec![error_reply(&msg, &from.full_jid, err, text)];
                }
                tracing::debug!(kind = ?e.kind, "marker for a message not in history");
            }
        }
    }

    if (typ == "chat" || typ == "headline" || typ == "normal") && kind.body && !kind.correction {
        if typ == "chat" {
            if let Some(history) = &srv.history {
                let extra = msg
                    .child("extraParams", NS_CLIENT)
                    .map(extra_params_to_json)
                    .unwrap_or_default();
                let record = ChatMessage {
                    app: from.app,
                    sender: from.user,
                    recipient: target.1,
                    stanza_id: msg.attr("id").map(str::to_string),
                    body: msg.child("body", NS_CLIENT).map(Element::text),
                    save_to_history: extra.get("save_to_history").and_then(|v| v.as_str())
                        == Some("1"),
                    extra_params: extra,
                };
                match history.record_chat_message(&record).await {
                    // extraParams stay as sent; the dialog id is added only when missing.
                    Ok(Some(dialog_id)) => {
                        saved = record.save_to_history;
                        set_extra(&mut msg, "dialog_id", &dialog_id, false)
                    }
                    Ok(None) => {}
                    Err(e) => {
                        let err = StanzaError::from_domain(&e);
                        let text = (e.kind != ErrorKind::Internal).then_some(e.message.as_str());
                        return vec![error_reply(&msg, &from.full_jid, err, text)];
                    }
                }
            }
        }
        let now_secs = (now_millis() / 1000).to_string();
        set_extra(&mut msg, "date_sent", &now_secs, false);
    }

    let xml: Arc<str> = msg.to_xml().into();
    // Chat messages would be stored for an offline user, so they must not be lost on the way to an
    // online one either (see `SessionHandle::send_durable`).
    let durable = typ == "chat" && !kind.typing_only && !kind.marker;
    // To a full JID that is online here, only here; otherwise the user's sessions on other nodes too.
    let resource_here = resource
        .as_deref()
        .is_some_and(|r| srv.hub.session(target, r).is_some());
    let to_other_nodes = !resource_here && !srv.cluster.nodes_with(target.0, target.1).is_empty();
    // A message saved to history needs no receipt on this node: a session that ends stores what it
    // did not write (`send_durable`). A node that dies stores nothing, so a copy on another node is
    // confirmed by it, or the sender's session stores the message offline.
    let (receipt, wait) = if want_receipt && durable && (!saved || to_other_nodes) {
        let (receipt, wait) = Receipt::new();
        (Some(receipt), Some(wait))
    } else {
        (None, None)
    };
    let here = crate::cluster::deliver_here(
        srv,
        target,
        resource.as_deref(),
        &xml,
        durable,
        receipt.as_ref(),
    );
    let elsewhere = if !to_other_nodes {
        crate::cluster::Delivered::default()
    } else {
        let key = crate::cluster::delivery_key(&msg);
        let receipt = receipt.as_ref();
        crate::cluster::deliver_elsewhere(
            srv,
            target,
            resource.as_deref(),
            &xml,
            durable,
            key,
            receipt,
        )
        .await
    };
    drop(receipt);
    let taken = here.taken || elsewhere.taken;
    // Copies here carry the receipt; copies on other nodes are confirmed by their node.
    if let Some(wait) = wait.filter(|_| taken) {
        *unconfirmed = Some(Unconfirmed {
            wait,
            target,
            xml: xml.clone(),
            queued_at: now_millis(),
        });
    }
    // Whether an active session got it: otherwise the recipient's devices get a chat alert.
    let reached_active = here.active || elsewhere.active;

    let mut replies = Vec::new();
    if !taken && durable {
        match srv
            .accounts
            .user(target.0, confab_service::UserKey::Id(target.1.get()))
            .await
        {
            Ok(_) => {}
            Err(e) if e.kind == ErrorKind::NotFound => {
                return bounce(&msg, StanzaError::SERVICE_UNAVAILABLE)
            }
            Err(e) => return bounce(&msg, StanzaError::from_domain(&e)),
        }
        match store_offline(srv, target, &[(&xml, now_millis())]).await {
            Ok(1) => {}
            Ok(_) => replies = bounce(&msg, StanzaError::RESOURCE_CONSTRAINT),
            Err(e) => return bounce(&msg, StanzaError::from_domain(&e)),
        }
    }

    if durable && kind.body && !kind.correction && !reached_active && replies.is_empty() {
        alert(srv, from, target, &msg);
    }

    // XEP-0280: only <sent/> carbons. <received/> carbons are misread by the SDK as delivery markers,
    // so bare-JID fan-out replaces them.
    // COMPAT: connectycube JS SDK 6.1.2 treats any <received> child as a chat marker.
    let private = msg.has_child("private", NS_CARBONS) || msg.has_child("no-copy", NS_HINTS);
    // A message to one's own bare JID already reached every resource.
    if typ == "chat" && !kind.typing_only && !private && target != from.account() {
        crate::cluster::carbons_everywhere(srv, from.account(), from.id, &msg).await;
    }
    replies
}

/// Settles a message whose every copy was dropped unconfirmed: stores it offline, or answers the
/// sender with an error when that fails. Returns the error for the sender, if any.
pub async fn store_unconfirmed(
    srv: &XmppServer,
    from: &SessionHandle,
    u: Unconfirmed,
) -> Option<Element> {
    let err = match store_offline(srv, u.target, &[(&u.xml, u.queued_at)]).await {
        Ok(1) => return None,
        Ok(_) => StanzaError::RESOURCE_CONSTRAINT,
        Err(e) => StanzaError::from_domain(&e),
    };
    tracing::warn!(
        session = from.id,
        "an undelivered live message could not be stored offline"
    );
    let msg = parse_element(u.xml.as_bytes(), &Scope::client()).ok()?;
    Some(error_reply(&msg, &from.full_jid, err, None))
}

/// Queues a chat alert for a 1:1 message that reached no active session of its recipient.
fn alert(srv: &XmppServer, from: &SessionHandle, target: Account, msg: &Element) {
    let Some(push) = &srv.push else { return };
    let extra = msg
        .child("extraParams", NS_CLIENT)
        .map(extra_params_to_json)
        .unwrap_or_default();
    let flag = |k: &str| extra.get(k).and_then(|v| v.as_str()) == Some("1");
    push.alert(ChatAlert {
        app: from.app,
        sender: from.user,
        dialog_id: extra
            .get("dialog_id")
            .and_then(|v| v.as_str())
            .and_then(|d| d.parse().ok()),
        message_id: msg.attr("id").map(str::to_string),
        body: msg.child("body", NS_CLIENT).map(Element::text),
        recipients: vec![target.1],
        silent: flag("silent"),
    });
}

/// Stores stanzas offline for `user`, each with its time (only as many as fit below the limit, in
/// order), and tells the user's sessions on every node: one that is online already (it logged in
/// while these were on their way to storage) hands them out now instead of at its next login.
pub async fn store_offline(
    srv: &XmppServer,
    user: Account,
    stanzas: &[(&str, Millis)],
) -> confab_core::Result<usize> {
    let stored = srv.offline.queue(user.0, user.1, stanzas).await?;
    if stored > 0 {
        crate::cluster::claim_now_here(srv, user);
        crate::cluster::claim_now_elsewhere(srv, user).await;
    }
    Ok(stored)
}

/// Sets `extraParams/<key>` (creating `<extraParams>` when needed); keeps an existing value unless
/// `overwrite`.
fn set_extra(msg: &mut Element, key: &str, value: &str, overwrite: bool) {
    if msg.child("extraParams", NS_CLIENT).is_none() {
        msg.push(Element::new("extraParams", NS_CLIENT));
    }
    let extra = msg.child_mut("extraParams", NS_CLIENT).expect("just added");
    if let Some(existing) = extra.elements_mut().find(|e| e.name == key) {
        if overwrite || existing.text().is_empty() {
            existing.children = vec![crate::xml::Node::Text(value.to_string())];
        }
        return;
    }
    extra.push(Element::bare(key).with_text(value));
}

/// Claims the session's offline messages for `claim` and renders them with `<delay/>` (XEP-0203),
/// oldest first, as `(row id, stanza)`. The session writes them and deletes each row once the client
/// has it; unreadable rows are deleted here, as they can never be delivered.
pub async fn claim_offline(
    srv: &Arc<XmppServer>,
    to: &SessionHandle,
    claim: &str,
) -> Vec<(i64, String)> {
    let stored = match srv.offline.claim(to.app, to.user, claim).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = ?e, "reading offline messages failed");
            return Vec::new();
        }
    };
    if stored.is_empty() {
        return Vec::new();
    }
    tracing::debug!(
        session = to.id,
        count = stored.len(),
        "delivering offline messages"
    );
    let mut unreadable = Vec::new();
    let mut out = Vec::with_capacity(stored.len());
    for m in stored {
        let Ok(mut el) = parse_element(m.stanza.as_bytes(), &Scope::client()) else {
            tracing::warn!(id = m.id, "dropping unreadable offline message");
            unreadable.push(m.id);
            continue;
        };
        let account = (to.app, to.user);
        if crate::cluster::delivery_key(&el)
            .is_some_and(|k| srv.recent_deliveries.delivered(account, &k))
        {
            // Delivered live from another node whose answer was lost: this is the second copy.
            unreadable.push(m.id);
            continue;
        }
        el.push(
            Element::new("delay", NS_DELAY)
                .with_attr("from", srv.config.domain.as_str())
                .with_attr("stamp", to_iso(m.created_at)),
        );
        out.push((m.id, el.to_xml()));
    }
    if let Err(e) = srv
        .offline
        .confirm(to.app, to.user, claim, &unreadable)
        .await
    {
        tracing::error!(error = ?e, "deleting unreadable offline messages failed");
    }
    out
}
