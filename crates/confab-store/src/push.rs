//! Push: device subscriptions and the durable outbox of notifications for the providers.

use async_trait::async_trait;
use confab_core::clock::Millis;
use confab_core::{AppId, ObjectId, Result, UserId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSubscription {
    pub id: i64,
    pub app_id: AppId,
    pub user_id: UserId,
    /// `gcm`, `apns`, `apns_voip` or `web`.
    pub channel: String,
    /// `development` or `production`.
    pub environment: String,
    /// `ios`, `android` or `web`.
    pub platform: String,
    pub udid: String,
    /// The provider's device token, or the Web Push endpoint.
    pub token: String,
    pub web_auth: Option<String>,
    pub web_p256dh: Option<String>,
    pub bundle_identifier: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// A subscription about to be stored (replacing the same device's on the same channel).
#[derive(Debug, Clone)]
pub struct NewSubscription {
    pub app_id: AppId,
    pub user_id: UserId,
    pub channel: String,
    pub environment: String,
    pub platform: String,
    pub udid: String,
    pub token: String,
    pub web_auth: Option<String>,
    pub web_p256dh: Option<String>,
    pub bundle_identifier: Option<String>,
    pub now: Millis,
}

/// A notification waiting in the outbox for one destination.
#[derive(Debug, Clone)]
pub struct NewPush {
    pub app_id: AppId,
    pub user_id: UserId,
    /// `None`: the operator's webhook.
    pub subscription_id: Option<i64>,
    /// The notification, as the service serialised it.
    pub payload: String,
    /// When to send it (now, or an event's `date`).
    pub due_at: Millis,
}

/// A notification claimed from the outbox, with its destination as it is now.
#[derive(Debug, Clone)]
pub struct OutboxPush {
    pub id: i64,
    pub app_id: AppId,
    pub user_id: UserId,
    /// `None` for the webhook.
    pub subscription: Option<PushSubscription>,
    pub payload: String,
    /// Failed attempts so far.
    pub attempts: u32,
}

#[async_trait]
pub trait PushStore: Send + Sync + 'static {
    /// Stores a subscription; the same user, device and channel again replaces the token.
    async fn upsert_subscription(&self, sub: NewSubscription) -> Result<PushSubscription>;
    /// One user's subscriptions, oldest first.
    async fn subscriptions(&self, app: AppId, user: UserId) -> Result<Vec<PushSubscription>>;
    /// The subscriptions of many users of one app (the recipients of an event or alert).
    async fn subscriptions_of(&self, app: AppId, users: &[UserId])
        -> Result<Vec<PushSubscription>>;
    /// Deletes one of `user`'s subscriptions; `false` when it is not theirs or does not exist.
    async fn delete_subscription(&self, app: AppId, user: UserId, id: i64) -> Result<bool>;
    /// Deletes a subscription whose token the provider reported gone.
    async fn drop_subscription(&self, id: i64) -> Result<()>;
    /// Of these (dialog, member) pairs, those where the member turned the dialog's notifications
    /// off or is muted in it.
    async fn silenced(&self, pairs: &[(ObjectId, UserId)]) -> Result<Vec<(ObjectId, UserId)>>;

    /// Adds notifications to the outbox, each due at its `due_at`.
    async fn enqueue_pushes(&self, pushes: &[NewPush], now: Millis) -> Result<()>;
    /// Takes up to `limit` due notifications and holds them until `lease_until` (a worker that
    /// dies leaves them due again then).
    async fn claim_pushes(
        &self,
        now: Millis,
        lease_until: Millis,
        limit: u32,
    ) -> Result<Vec<OutboxPush>>;
    /// The destinations acknowledged (or refused for good): these notifications are done.
    async fn finish_pushes(&self, ids: &[i64]) -> Result<()>;
    /// A temporary failure: one more attempt, due again at `due_at`.
    async fn retry_push(&self, id: i64, due_at: Millis) -> Result<()>;
    /// A recurring notification was delivered: due again at `due_at`, attempts back to 0.
    async fn repeat_push(&self, id: i64, due_at: Millis) -> Result<()>;
    /// When the next notification is due, if any.
    async fn next_push_due(&self) -> Result<Option<Millis>>;
}
