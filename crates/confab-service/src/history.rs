//! Recording what a live face carries before it delivers it: a 1:1 chat message gets its private
//! dialog's id and, with `save_to_history=1`, is stored **before** delivery (creating the dialog
//! if it is the pair's first stored message); markers, edits
//! and deletes change the stored message. The XMPP face calls this for every 1:1 `type="chat"`
//! message with a body, and for markers, corrections and deletes, before it forwards them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use confab_core::{AppId, DialogId, Error, ErrorKind, MessageId, ObjectId, Result, UserId};
use serde_json::{Map, Value};

use crate::chat::{pair_dialog_id, NewMessage};
use crate::Chat;

/// One 1:1 chat message as the history service sees it. No XML.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatMessage {
    pub app: AppId,
    pub sender: UserId,
    pub recipient: UserId,
    /// The client's stanza id (the SDK sends a 24-hex ObjectId), if any.
    pub stanza_id: Option<String>,
    pub body: Option<String>,
    /// `extraParams` decoded as the SDK decodes it: every value a string or nested object;
    /// `<attachment …/>` elements become `attachments: [{attr: value}]`.
    pub extra_params: Map<String, Value>,
    /// `extraParams/save_to_history == "1"`.
    pub save_to_history: bool,
}

/// A change to an existing message, carried by a 1:1 stanza.
#[derive(Debug, Clone, PartialEq)]
pub enum MessageEvent {
    /// Chat marker (XEP-0333): `received` (read = false) or `displayed` (read = true).
    Marker { message_id: String, read: bool },
    /// XEP-0308 correction: the new body of one's own message.
    Edit { message_id: String, body: String },
    /// ConnectyCube `urn:xmpp:message-delete:0` remove: delete for everyone.
    Delete { message_id: String },
}

#[async_trait]
pub trait ChatHistory: Send + Sync + 'static {
    /// Called before delivery. `Ok(Some(dialog_id))` fills a missing `extraParams/dialog_id`;
    /// `Ok(None)` leaves the message as it is; `Err` rejects the message (the sender gets a message error,
    /// nothing is delivered or stored offline).
    async fn record_chat_message(&self, message: &ChatMessage) -> Result<Option<String>>;

    /// Called before a marker, edit or delete is forwarded. `Err` on an edit or delete stops it
    /// (the sender may not change that message); marker errors are ignored, since markers for
    /// messages that were never stored are normal.
    async fn record_event(&self, app: AppId, user: UserId, event: &MessageEvent) -> Result<()>;
}

/// Private dialog ids by (app, lower user id, higher user id). Every 1:1 message needs its dialog
/// id, and a pair's private dialog never changes (it cannot be deleted for everyone), so the lookup
/// is made once per pair instead of once per message.
#[derive(Default)]
pub(crate) struct PairDialogs(Arc<Mutex<HashMap<PairKey, PairDialog>>>);

/// (app, lower user id, higher user id).
pub(crate) type PairKey = (AppId, UserId, UserId);

#[derive(Clone, Copy)]
enum PairDialog {
    /// The pair had no dialog when it was looked up: its messages that are not stored carry this
    /// id (the pair's derived one) until a stored message writes the dialog.
    Unwritten(DialogId),
    /// The dialog's row exists.
    Stored(DialogId),
}

/// Beyond this many pairs the cache starts over; it refills on demand.
const MAX_CACHED_PAIRS: usize = 100_000;

impl PairDialogs {
    fn get(&self, key: &PairKey) -> Option<PairDialog> {
        self.0.lock().expect("dialog cache").get(key).copied()
    }

    fn set(&self, key: PairKey, value: PairDialog) {
        let mut cache = self.0.lock().expect("dialog cache");
        if cache.len() >= MAX_CACHED_PAIRS {
            cache.clear();
        }
        cache.insert(key, value);
    }
}

impl Chat {
    /// The id a new private dialog of the pair is written under: the one its unsaved messages
    /// carried if this node handed one out (so they and the dialog agree), else a new one, which
    /// keeps the dialog indexes growing at their end.
    pub(crate) fn new_private_dialog_id(&self, pair: PairKey) -> ObjectId {
        match self.pair_dialogs.get(&pair) {
            Some(PairDialog::Unwritten(id)) => id.object_id(),
            _ => ObjectId::generate(),
        }
    }

    /// The pair's private dialog id; `None` for an unknown recipient of a stored message.
    ///
    /// A message that is not stored (`stored == false`) needs only an id: a pair without a dialog
    /// has a known one ([`pair_dialog_id`]) and nothing is written. The pair's first stored
    /// message writes the dialog, under that id when this node handed it out.
    async fn cached_private_dialog(
        &self,
        app: AppId,
        sender: UserId,
        recipient: UserId,
        stored: bool,
    ) -> Result<Option<DialogId>> {
        if sender == recipient {
            return Ok(None);
        }
        let key = (app, sender.min(recipient), sender.max(recipient));
        let unwritten_id = match self.pair_dialogs.get(&key) {
            Some(PairDialog::Stored(id)) => return Ok(Some(id)),
            Some(PairDialog::Unwritten(id)) if !stored => return Ok(Some(id)),
            Some(PairDialog::Unwritten(id)) => id.object_id(),
            // A stored message writes the dialog anyway, and that write answers with the pair's
            // dialog if it exists already: no read first.
            None if stored => ObjectId::generate(),
            None => {
                // The pair may have its dialog already (made by REST, by another node, before a
                // restart): a read in place.
                let pair_key = format!("{}:{}", key.1, key.2);
                if let Some(id) = self.store.find_private_dialog(app.get(), &pair_key).await? {
                    let id = DialogId::from(id);
                    self.pair_dialogs.set(key, PairDialog::Stored(id));
                    return Ok(Some(id));
                }
                let id = DialogId::from(pair_dialog_id(app.get(), key.1.get(), key.2.get()));
                self.pair_dialogs.set(key, PairDialog::Unwritten(id));
                return Ok(Some(id));
            }
        };
        let Some(id) = self
            .create_private_dialog_as(app, sender, recipient, unwritten_id)
            .await?
        else {
            // An unknown recipient: routing answers it like any missing user (503).
            return Ok(None);
        };
        let id = DialogId::from(id);
        self.pair_dialogs.set(key, PairDialog::Stored(id));
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
impl ChatHistory for Chat {
    async fn record_chat_message(&self, m: &ChatMessage) -> Result<Option<String>> {
        let (app, sender) = (m.app, m.sender);
        let Some(dialog) = self
            .cached_private_dialog(app, sender, m.recipient, m.save_to_history)
            .await?
        else {
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
            dialog_id: Some(dialog),
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
        match self
            .record_pair_message(app, sender, m.recipient, dialog, new)
            .await
        {
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
                let id = message_id(id)?;
                self.mark(app, user, None, Some(id), *read).await?;
                if *read {
                    let read = crate::bus::MessageRead {
                        app,
                        message_id: id.object_id(),
                        reader: user,
                        message: None,
                        origin: crate::bus::Origin::Xmpp,
                    };
                    self.read(read).await;
                }
                Ok(())
            }
            MessageEvent::Edit {
                message_id: id,
                body,
            } => {
                let edited = self
                    .edit_message(app, user, message_id(id)?, Some(body.clone()))
                    .await;
                if let Ok(m) = &edited {
                    self.edited(m, crate::bus::Origin::Xmpp).await;
                }
                not_stored_is_fine(edited.map(|_| ()))
            }
            MessageEvent::Delete { message_id: id } => not_stored_is_fine(
                self.delete_messages(app, user, &[message_id(id)?], true)
                    .await
                    .map(|_| ()),
            ),
        }
    }
}
