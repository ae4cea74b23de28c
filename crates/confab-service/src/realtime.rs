//! The seam between REST-side changes and live delivery: the real-time face implements it,
//! so a message created over REST with `send_to_chat=1` reaches online users.

use async_trait::async_trait;
use confab_core::chat::Message;

#[async_trait]
pub trait Realtime: Send + Sync + 'static {
    /// A stored message that should also be delivered live.
    async fn deliver_rest_message(&self, message: &Message);
    /// A message deleted for everyone.
    async fn message_deleted(&self, message: &Message);
}
