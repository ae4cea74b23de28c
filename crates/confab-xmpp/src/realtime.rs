//! The XMPP face's subscriber on the domain's bus: messages sent over REST with `send_to_chat=1`,
//! deletes for everyone and system messages reach the recipients' online sessions (or the offline
//! queue) as the same stanzas an XMPP sender would produce; membership changes reach the rooms.

use std::sync::Arc;

use async_trait::async_trait;
use confab_core::chat::Message;
use confab_core::clock::now_millis;
use confab_core::{AppId, UserId};
use confab_service::bus::{Event, MessageRead, Origin, SystemMessage};
use confab_service::push::ChatAlert;
use confab_service::Subscriber;
use serde_json::Value;

use crate::jid::bare_jid;
use crate::message::{NS_CC_DELETE, NS_CORRECT, NS_MARKERS};
use crate::xml::{Element, NS_CLIENT};
use crate::XmppServer;

pub struct XmppRealtime {
    pub server: Arc<XmppServer>,
}

/// Custom parameters as `extraParams` children, the way the SDK encodes them.
fn value_element(name: &str, v: &Value) -> Element {
    match v {
        Value::Object(m) => {
            let mut e = Element::bare(name);
            for (k, v) in m {
                e.push(value_element(k, v));
            }
            e
        }
        Value::Null => Element::bare(name),
        Value::String(s) => Element::bare(name).with_text(s.as_str()),
        other => Element::bare(name).with_text(other.to_string()),
    }
}

pub(crate) fn extra_params(m: &Message) -> Element {
    let mut extra = Element::new("extraParams", NS_CLIENT)
        .with_child(Element::bare("save_to_history").with_text("1"))
        .with_child(Element::bare("dialog_id").with_text(m.dialog_id.to_string()))
        .with_child(Element::bare("date_sent").with_text(m.date_sent.to_string()));
    for a in &m.attachments {
        let mut att = Element::bare("attachment");
        if let Value::Object(fields) = a {
            for (k, v) in fields {
                let text = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                att.set_attr(k, text);
            }
        }
        extra.push(att);
    }
    for (k, v) in &m.custom {
        extra.push(value_element(k, v));
    }
    extra
}

impl XmppRealtime {
    /// Sends to every session of the recipient, or queues it when none is online (or none could
    /// take it).
    /// Returns whether a session in the foreground got it, here or on another node.
    async fn deliver(
        &self,
        app: AppId,
        user: UserId,
        stanza: Element,
        queue_offline: bool,
    ) -> bool {
        let xml: Arc<str> = stanza.to_xml().into();
        let srv = &self.server;
        let here = crate::cluster::deliver_here(srv, (app, user), None, &xml, queue_offline, None);
        let key = crate::cluster::delivery_key(&stanza);
        let elsewhere = crate::cluster::deliver_elsewhere(
            srv,
            (app, user),
            None,
            &xml,
            queue_offline,
            key,
            None,
        )
        .await;
        let active = here.active || elsewhere.active;
        if here.taken || elsewhere.taken || !queue_offline {
            return active;
        }
        match crate::message::store_offline(&self.server, (app, user), &[(&xml, now_millis())])
            .await
        {
            Ok(1) => {}
            Ok(_) => tracing::warn!("offline queue full: a REST message was not queued"),
            Err(e) => tracing::warn!(error = ?e, "queueing a REST message offline failed"),
        }
        false
    }

    /// The private dialog's other user, if the message is a 1:1 one.
    fn recipient(m: &Message) -> Option<(AppId, UserId, UserId)> {
        let app = AppId::new(m.app_id).ok()?;
        let to = UserId::new(m.recipient_id).ok()?;
        let from = UserId::new(m.sender_id).ok()?;
        Some((app, from, to))
    }
}

#[async_trait]
impl Subscriber for XmppRealtime {
    async fn on_event(&self, event: &Event) {
        match event {
            Event::MessageSent(m) => self.deliver_rest_message(m).await,
            // This face delivered it already, when it stored it.
            Event::MessageRecorded(_) => {}
            Event::MessageDeleted(m) => self.message_deleted(m).await,
            Event::SystemMessage(s) => self.deliver_system_message(s).await,
            Event::MessageEdited(m, Origin::ChatServer) => self.message_edited(m).await,
            Event::MessageRead(r) if r.origin == Origin::ChatServer => self.message_read(r).await,
            // Told to this face's clients by this face, or by the clients themselves (REST).
            Event::MessageEdited(..) | Event::MessageRead(_) | Event::MessagesReadOverRest(_) => {}
            Event::DialogChanged(change) => {
                if let Some(rooms) = self.server.muc.get() {
                    rooms.dialog_changed(change);
                }
                crate::cluster::dialog_changed_elsewhere(&self.server, change).await;
            }
        }
    }
}

impl XmppRealtime {
    async fn deliver_rest_message(&self, m: &Message) {
        // Group, public and broadcast dialogs go through their room.
        if m.recipient_id == 0 {
            if let Some(rooms) = self.server.muc.get() {
                rooms.deliver_stored(m, extra_params(m)).await;
            }
            return;
        }
        let Some((app, from, to)) = Self::recipient(m) else {
            return;
        };
        let mut stanza = self.chat_stanza(app, from, to, m.id.to_string());
        if let Some(body) = &m.body {
            stanza.push(Element::bare("body").with_text(body.as_str()));
        }
        stanza.push(extra_params(m));
        let reached_active = self.deliver(app, to, stanza, true).await;
        if let Some(push) = self.server.push.as_ref().filter(|_| !reached_active) {
            push.alert(ChatAlert {
                app,
                sender: from,
                dialog_id: Some(m.dialog_id),
                message_id: Some(m.id.to_string()),
                body: m.body.clone(),
                recipients: vec![to],
                silent: m.custom.get("silent").and_then(|v| v.as_str()) == Some("1"),
            });
        }
    }

    async fn deliver_system_message(&self, s: &SystemMessage) {
        let (app, from, to, id, params) = (s.app, s.sender, s.recipient, s.id, &s.params);
        let domain = &self.server.config.domain;
        let mut extra = Element::new("extraParams", NS_CLIENT)
            .with_child(Element::bare("moduleIdentifier").with_text("SystemNotifications"));
        for (k, v) in params {
            extra.push(value_element(k, v));
        }
        let stanza = Element::new("message", NS_CLIENT)
            .with_attr("type", "headline")
            .with_attr("id", id.to_string())
            .with_attr("from", bare_jid(app, from, domain))
            .with_attr("to", bare_jid(app, to, domain))
            .with_child(extra);
        self.deliver(app, to, stanza, true).await;
    }

    /// Edited on another face: a correction (XEP-0308, with the SDK's `last`) for the other side
    /// of a 1:1 dialog, or for a group's members, live only (the history has the new text).
    async fn message_edited(&self, m: &Message) {
        if m.recipient_id == 0 {
            if let Some(rooms) = self.server.muc.get() {
                rooms.deliver_correction(m, dialog_only(m)).await;
            }
            return;
        }
        let Some((app, from, to)) = Self::recipient(m) else {
            return;
        };
        let stanza = self
            .chat_stanza(app, from, to, confab_core::ObjectId::generate().to_string())
            .with_child(Element::bare("body").with_text(m.body.as_deref().unwrap_or("")))
            .with_child(
                Element::new("replace", NS_CORRECT)
                    .with_attr("id", m.id.to_string())
                    .with_attr("last", "true"),
            )
            .with_child(dialog_only(m));
        self.deliver(app, to, stanza, false).await;
    }

    /// Read on another face: the read marker (XEP-0333, as the SDK sends it: `type="chat"` to
    /// the author's user JID, for 1:1 and group messages alike), live only.
    async fn message_read(&self, r: &MessageRead) {
        let Some(m) = &r.message else { return };
        let Ok(author) = UserId::new(m.sender_id) else {
            return;
        };
        if author == r.reader {
            return;
        }
        let id = confab_core::ObjectId::generate().to_string();
        let stanza = self
            .chat_stanza(r.app, r.reader, author, id)
            .with_child(Element::new("displayed", NS_MARKERS).with_attr("id", m.id.to_string()))
            .with_child(dialog_only(m));
        self.deliver(r.app, author, stanza, false).await;
    }

    /// A `type="chat"` message from one user's bare JID to another's.
    fn chat_stanza(&self, app: AppId, from: UserId, to: UserId, id: String) -> Element {
        let domain = &self.server.config.domain;
        Element::new("message", NS_CLIENT)
            .with_attr("type", "chat")
            .with_attr("id", id)
            .with_attr("from", bare_jid(app, from, domain))
            .with_attr("to", bare_jid(app, to, domain))
    }

    async fn message_deleted(&self, m: &Message) {
        let Some((app, from, to)) = Self::recipient(m) else {
            return;
        };
        let stanza = self
            .chat_stanza(app, from, to, confab_core::ObjectId::generate().to_string())
            .with_child(Element::new("remove", NS_CC_DELETE).with_attr("id", m.id.to_string()))
            .with_child(dialog_only(m));
        self.deliver(app, to, stanza, false).await;
    }
}

/// `<extraParams>` with only the message's dialog id, as the SDK puts on markers, corrections and
/// deletes.
fn dialog_only(m: &Message) -> Element {
    Element::new("extraParams", NS_CLIENT)
        .with_child(Element::bare("dialog_id").with_text(m.dialog_id.to_string()))
}
