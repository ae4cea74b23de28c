//! The seam between REST-side changes and live delivery: the real-time face implements it,
//! so a message created over REST with `send_to_chat=1` reaches online users.

use async_trait::async_trait;
use confab_core::chat::Message;
use confab_core::ObjectId;
use serde_json::{Map, Value};

#[async_trait]
pub trait Realtime: Send + Sync + 'static {
    /// A stored message that should also be delivered live.
    async fn deliver_rest_message(&self, message: &Message);
    /// A message deleted for everyone.
    async fn message_deleted(&self, message: &Message);
    /// `POST /chat/Message/system`: a system notification for one user (live, or at next login).
    async fn deliver_system_message(
        &self,
        app: i64,
        sender: i64,
        recipient: i64,
        id: ObjectId,
        params: &Map<String, Value>,
    );
}
