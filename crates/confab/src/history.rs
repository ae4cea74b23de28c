//! Connects the XMPP face to the messages service: 1:1 chat messages find (or create) their
//! private dialog and, with `save_to_history=1`, are stored before they are delivered; markers,
//! edits and deletes change the stored message.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use confab_core::{AppId, Error, ErrorKind, MessageId, ObjectId, Result, UserId};
use confab_service::chat::NewMessage;
use confab_service::Chat;
use confab_xmpp::{ChatHistory, ChatMessage, MessageEvent};
use serde_json::Value;

pub struct ServiceHistory {
    chat: Arc<Chat>,
    /// Private dialog ids by (app, lower user id, higher user id). Every 1:1 message needs its
    /// dialog id, and a pair's private dialog never changes (it cannot be deleted for everyone),
    /// so the lookup is made once per pair instead of once per message.
    dialogs: Mutex<HashMap<(AppId, UserId, UserId), ObjectId>>,
}

/// Beyond this many pairs the cache starts over; it refills on demand.
const MAX_CACHED_PAIRS: usize = 100_000;

impl ServiceHistory {
    pub fn new(chat: Arc<Chat>) -> Self {
        Self {
            chat,
            dialogs: Mutex::new(HashMap::new()),
        }
    }

    /// The pair's private dialog, created on first use; `None` for an unknown recipient.
    async fn private_dialog(
        &self,
        app: AppId,
        sender: UserId,
        recipient: UserId,
    ) -> Result<Option<ObjectId>> {
        let key = (app, sender.min(recipient), sender.max(recipient));
        if let Some(id) = self.dialogs.lock().expect("dialog cache").get(&key) {
            return Ok(Some(*id));
        }
        let Some(id) = self.chat.private_dialog_id(app, sender, recipient).await? else {
            // An unknown recipient: routing answers it like any missing user (503).
            return Ok(None);
        };
        let mut cache = self.dialogs.lock().expect("dialog cache");
        if cache.len() >= MAX_CACHED_PAIRS {
            cache.clear();
        }
        cache.insert(key, id);
        Ok(Some(id))
    }
}

/// `extraParams` keys that describe the message rather than being custom parameters.
const RESERVED: &[&str] = &["save_to_history", "dialog_id", "date_sent", "attachments"];

/// Edits and deletes of messages that were never stored are still forwarded.
fn not_stored_is_fine(r: Result<()>) -> Result<()> {
    match r {
        Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

fn message_id(raw: &str) -> Result<MessageId> {
    raw.parse()
        .map_err(|_| Error::not_found("Message not found"))
}

#[async_trait]
impl ChatHistory for ServiceHistory {
    async fn record_chat_message(&self, m: &ChatMessage) -> Result<Option<String>> {
        let (app, sender) = (m.app, m.sender);
        let Some(dialog) = self.private_dialog(app, sender, m.recipient).await? else {
            return Ok(None);
        };
        if !m.save_to_history {
            return Ok(Some(dialog.to_string()));
        }
        let extra = &m.extra_params;
        let attachments = match extra.get("attachments") {
            Some(Value::Array(a)) => a.clone(),
            _ => Vec::new(),
        };
        let custom = extra
            .iter()
            .filter(|(k, _)| !RESERVED.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let new = NewMessage {
            // The SDK's stanza ids are ObjectIds: keeping them lets markers and REST agree.
            id: m.stanza_id.as_deref().and_then(|s| s.parse().ok()),
            dialog_id: Some(dialog.into()),
            recipient_id: None,
            body: m.body.clone(),
            date_sent: extra
                .get("date_sent")
                .and_then(Value::as_str)
                .and_then(|s| s.trim().parse().ok()),
            attachments,
            custom,
            markable: extra.get("markable").and_then(Value::as_str) == Some("1"),
        };
        match self.chat.create_message(app, sender, new).await {
            Ok(_) => {}
            // A resent stanza (stream management retry) is already stored.
            Err(e) if e.kind == ErrorKind::Invalid && e.fields.contains_key("_id") => {}
            Err(e) => return Err(e),
        }
        Ok(Some(dialog.to_string()))
    }

    async fn record_event(&self, app: AppId, user: UserId, event: &MessageEvent) -> Result<()> {
        match event {
            MessageEvent::Marker {
                message_id: id,
                read,
            } => {
                self.chat
                    .mark(app, user, None, Some(message_id(id)?), *read)
                    .await
            }
            MessageEvent::Edit {
                message_id: id,
                body,
            } => not_stored_is_fine(
                self.chat
                    .edit_message(app, user, message_id(id)?, Some(body.clone()))
                    .await
                    .map(|_| ()),
            ),
            MessageEvent::Delete { message_id: id } => not_stored_is_fine(
                self.chat
                    .delete_messages(app, user, &[message_id(id)?], true)
                    .await
                    .map(|_| ()),
            ),
        }
    }
}
