//! The bus: how the domain tells the live faces what happened, as domain events, never as a
//! face's wire format. Each face subscribes and renders what it receives once per format.
//!
//! [`LocalBus`] delivers in-process, to subscribers in the order they subscribed, and `publish`
//! returns once every subscriber has handled the event: a user removed from a group stops receiving
//! before the REST call that removed them answers. A bus between nodes implements the same trait.

use std::sync::{Arc, RwLock, Weak};

use async_trait::async_trait;
use confab_core::chat::Message;
use confab_core::{AppId, ObjectId, UserId};
use serde_json::{Map, Value};

use crate::rooms::DialogChanged;

/// A system notification (`POST /chat/Message/system`): for one user, live or at their next login,
/// never stored in a dialog.
#[derive(Debug, Clone)]
pub struct SystemMessage {
    pub id: ObjectId,
    pub app: AppId,
    pub sender: UserId,
    pub recipient: UserId,
    pub params: Map<String, Value>,
}

/// The live face a change came through: that face told its own clients already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Xmpp,
    ChatServer,
    /// The ConnectyCube REST API, which tells no XMPP client live (as the cloud does: SDK apps
    /// send their own stanzas for edits); the ChatServer face tells its sockets.
    Rest,
}

/// A message read by `reader`.
#[derive(Debug, Clone)]
pub struct MessageRead {
    pub app: AppId,
    pub message_id: ObjectId,
    pub reader: UserId,
    /// The message, when the face that published the read had it at hand.
    pub message: Option<Message>,
    pub origin: Origin,
}

/// Messages of one dialog read by `reader`.
#[derive(Debug, Clone)]
pub struct MessagesRead {
    pub app: AppId,
    pub reader: UserId,
    pub messages: Vec<Message>,
}

/// What happened, for the live faces.
#[derive(Debug, Clone)]
pub enum Event {
    /// A stored message to deliver live (`send_to_chat=1`): a 1:1 one to its recipient (or their
    /// offline queue), a group one to the room's members that no privacy list keeps it from.
    MessageSent(Arc<Message>),
    /// A message a live face stored and delivered to its own clients itself (XMPP 1:1 and
    /// groupchat messages with `save_to_history`): the other faces deliver it to theirs.
    MessageRecorded(Arc<Message>),
    /// A message deleted for everyone; the other side of a 1:1 dialog is told live.
    MessageDeleted(Arc<Message>),
    SystemMessage(Arc<SystemMessage>),
    /// A message's text was edited through `origin` (the message as it is now): the other faces
    /// tell their clients.
    MessageEdited(Arc<Message>, Origin),
    /// A message was marked read through a live face: the other faces tell their clients.
    MessageRead(Arc<MessageRead>),
    /// Messages of one dialog read with the ConnectyCube REST API (as they are now, the reader
    /// among their readers): the ChatServer face tells its sockets; XMPP clients are not told.
    MessagesReadOverRest(Arc<MessagesRead>),
    /// A group dialog's membership changed, or it was deleted for everyone.
    DialogChanged(Arc<DialogChanged>),
}

/// A face's side of the bus.
#[async_trait]
pub trait Subscriber: Send + Sync + 'static {
    async fn on_event(&self, event: &Event);
}

#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Hands `event` to every subscriber; returns how many there were (0: no live face runs).
    async fn publish(&self, event: Event) -> usize;
    /// Adds a subscriber (held weakly: a face usually holds the service that holds the bus).
    fn subscribe(&self, subscriber: Weak<dyn Subscriber>);
}

/// The in-process bus.
#[derive(Default)]
pub struct LocalBus {
    subscribers: RwLock<Vec<Weak<dyn Subscriber>>>,
}

#[async_trait]
impl Bus for LocalBus {
    async fn publish(&self, event: Event) -> usize {
        let live: Vec<Arc<dyn Subscriber>> = self
            .subscribers
            .read()
            .expect("bus lock")
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        for s in &live {
            s.on_event(&event).await;
        }
        live.len()
    }

    fn subscribe(&self, subscriber: Weak<dyn Subscriber>) {
        let mut list = self.subscribers.write().expect("bus lock");
        list.retain(|s| s.strong_count() > 0);
        list.push(subscriber);
    }
}
