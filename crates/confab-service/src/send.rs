//! Sending over REST: `POST /chat/Message` (with or without `send_to_chat`), system messages and
//! deletions for everyone. The rule and the order are the same as on the XMPP face: the privacy
//! check first, then storage, then an event on the [`crate::bus`] for the live faces. No HTTP
//! handler delivers anything itself.
//!
//! Stored-history rule, on both faces: a 1:1 message that the recipient's privacy list blocks (or
//! that the sender's own two-way block covers) is refused and nothing is stored; a group message is
//! stored, and members whose lists block the sender (or whom the sender blocks) do not get it live.

use std::sync::Arc;

use confab_core::chat::{DialogType, Message};
use confab_core::{AppId, Error, MessageId, ObjectId, Result, UserId};
use serde_json::{Map, Value};

use crate::bus::{Event, MessageRead, MessagesRead, Origin, SystemMessage};
use crate::chat::NewMessage;
use crate::rooms::DialogChanged;
use crate::Chat;

/// `POST /chat/Message`.
#[derive(Debug, Clone)]
pub struct SendMessage {
    pub app: AppId,
    pub sender: UserId,
    pub message: NewMessage,
    /// `send_to_chat=1`: also deliver it live to the dialog's online users.
    pub live: bool,
}

/// `POST /chat/Message/system`: a notification for one user, live or at their next login; never
/// stored in a dialog.
#[derive(Debug, Clone)]
pub struct SendSystemMessage {
    pub app: AppId,
    pub sender: UserId,
    pub recipient: UserId,
    pub params: Map<String, Value>,
}

impl Chat {
    /// The privacy rules every face applies.
    pub fn privacy(&self) -> &Arc<crate::Privacy> {
        &self.privacy
    }

    /// Checks the privacy rule, stores the message, then delivers it live when asked.
    pub async fn send_message(&self, cmd: SendMessage) -> Result<Message> {
        let (app, sender) = (cmd.app, cmd.sender);
        if let Some(recipient) = self.private_recipient(app, sender, &cmd.message).await? {
            self.privacy
                .message_verdict((app, sender), None, (app, recipient))
                .await?
                .into_result()?;
        }
        let message = self.create_message(app, sender, cmd.message).await?;
        if cmd.live {
            self.bus
                .publish(Event::MessageSent(Arc::new(message.clone())))
                .await;
        }
        Ok(message)
    }

    /// The other user of a 1:1 message; `None` for group, public and broadcast dialogs (and for
    /// dialogs the sender cannot see: storing reports those).
    async fn private_recipient(
        &self,
        app: AppId,
        sender: UserId,
        new: &NewMessage,
    ) -> Result<Option<UserId>> {
        let recipient = match (new.dialog_id, new.recipient_id) {
            (Some(dialog), _) => match self
                .store
                .post_target(app.get(), dialog.object_id(), sender.get())
                .await?
            {
                Some(t) if t.kind == DialogType::Private => Some(t.recipient_id),
                _ => None,
            },
            (None, Some(r)) => Some(r),
            (None, None) => None,
        };
        Ok(recipient.and_then(|r| UserId::new(r).ok()))
    }

    /// Delivers a system message live, or queues it for the recipient's next login.
    pub async fn send_system_message(&self, cmd: SendSystemMessage) -> Result<ObjectId> {
        let id = ObjectId::generate();
        let event = Event::SystemMessage(Arc::new(SystemMessage {
            id,
            app: cmd.app,
            sender: cmd.sender,
            recipient: cmd.recipient,
            params: cmd.params,
        }));
        if self.bus.publish(event).await == 0 {
            return Err(Error::new(
                confab_core::ErrorKind::Internal,
                "real-time delivery is not running",
            ));
        }
        Ok(id)
    }

    /// `DELETE /chat/Message/{ids}`: deletes, and with `force` tells the other side live.
    pub async fn delete_messages_and_notify(
        &self,
        app: AppId,
        user: UserId,
        ids: &[MessageId],
        force: bool,
    ) -> Result<Vec<Message>> {
        let deleted = self.delete_messages(app, user, ids, force).await?;
        if force {
            for m in &deleted {
                self.bus
                    .publish(Event::MessageDeleted(Arc::new(m.clone())))
                    .await;
            }
        }
        Ok(deleted)
    }

    /// Tells the live faces other than `origin` that the message was edited (it is now `m`).
    pub async fn edited(&self, m: &Message, origin: Origin) {
        self.bus
            .publish(Event::MessageEdited(Arc::new(m.clone()), origin))
            .await;
    }

    /// Tells the live faces other than `read.origin` that a message was read.
    pub async fn read(&self, read: MessageRead) {
        self.bus.publish(Event::MessageRead(Arc::new(read))).await;
    }

    /// Tells the live faces that messages of one dialog were read with the REST API.
    pub(crate) async fn read_over_rest(&self, app: AppId, reader: UserId, messages: Vec<Message>) {
        if messages.is_empty() {
            return;
        }
        let read = MessagesRead {
            app,
            reader,
            messages,
        };
        self.bus
            .publish(Event::MessagesReadOverRest(Arc::new(read)))
            .await;
    }

    /// Tells the live faces about a membership change, before the call that made it answers.
    pub(crate) async fn publish_dialog_changed(&self, change: DialogChanged) {
        self.bus
            .publish(Event::DialogChanged(Arc::new(change)))
            .await;
    }
}
