//! Push notifications: device subscriptions, events an app sends (`POST /events`), and chat
//! alerts for recipients a message reached no active session of.
//!
//! Nothing here talks to a provider. Every notification becomes one outbox row per destination (a
//! subscription, or the operator's webhook) in the store, and the delivery worker, woken through
//! [`Push::outbox_signal`], sends them; so a slow provider never delays chat, and nothing waiting
//! is lost in a restart.

mod alerts;
mod events;
mod notification;
pub mod subscriptions;

use std::sync::{Arc, RwLock, Weak};

use confab_core::clock::now_millis;
use confab_core::{AppId, Result, UserId};
use confab_store::{AccountStore, NewPush, PushStore};
use tokio::sync::{mpsc, Notify};

pub use alerts::{AlertFilter, ChatAlert};
pub use confab_store::PushSubscription;
pub use events::{EventCreated, EventRecipients, NewEvent};
pub use notification::{Notification, NotificationKind, Repeat};
pub use subscriptions::SubscribeRequest;

#[derive(Debug, Clone)]
pub struct PushConfig {
    /// Web Push endpoints may be plain `http` and on private addresses (tests, private networks).
    pub allow_private_endpoints: bool,
    /// Whether an operator webhook is configured: it gets a copy of every alert and event.
    pub webhook: bool,
    /// The alert text: `{sender}` (the sender's full name, else login) and `{text}` (the body).
    pub alert_template: String,
    /// Longest body text put into an alert, in characters.
    pub alert_max_chars: usize,
    /// Most users one event may address.
    pub max_event_recipients: u32,
    /// Devices (subscriptions) one user may have.
    pub max_subscriptions_per_user: usize,
    /// Chat alerts waiting to be queued at most; beyond it alerts are dropped (logged).
    pub alert_queue_len: usize,
}

impl Default for PushConfig {
    fn default() -> Self {
        Self {
            allow_private_endpoints: false,
            webhook: false,
            alert_template: "{sender}: {text}".into(),
            alert_max_chars: 200,
            max_event_recipients: 10_000,
            alert_queue_len: 65_536,
            max_subscriptions_per_user: 25,
        }
    }
}

pub struct Push {
    store: Arc<dyn PushStore>,
    accounts: Arc<dyn AccountStore>,
    config: PushConfig,
    outbox: Arc<Notify>,
    alerts: mpsc::Sender<ChatAlert>,
    /// The faces' say in chat alerts (held weakly: a face holds the service).
    filters: RwLock<Vec<Weak<dyn AlertFilter>>>,
}

impl Push {
    /// Starts the task that queues chat alerts (so call it inside a Tokio runtime).
    pub fn new(
        store: Arc<dyn PushStore>,
        accounts: Arc<dyn AccountStore>,
        config: PushConfig,
    ) -> Arc<Self> {
        let (tx, rx) = mpsc::channel(config.alert_queue_len.max(1));
        let push = Arc::new(Self {
            store,
            accounts,
            config,
            outbox: Arc::new(Notify::new()),
            alerts: tx,
            filters: RwLock::default(),
        });
        tokio::spawn(alerts::run_queue(Arc::downgrade(&push), rx));
        push
    }

    /// Lets a live face remove recipients from chat alerts (see [`AlertFilter`]).
    pub fn add_alert_filter(&self, filter: Weak<dyn AlertFilter>) {
        self.filters.write().expect("filters lock").push(filter);
    }

    fn alert_filters(&self) -> Vec<Arc<dyn AlertFilter>> {
        let filters = self.filters.read().expect("filters lock");
        filters.iter().filter_map(Weak::upgrade).collect()
    }

    /// Queues `notification` for every device of `users` (and the webhook) in `dialog`, except
    /// those who turned the dialog's notifications off; returns how many notifications.
    pub async fn notify_in_dialog(
        &self,
        app: AppId,
        dialog: confab_core::ObjectId,
        users: &[UserId],
        notification: &Notification,
    ) -> Result<usize> {
        let pairs: Vec<_> = users.iter().map(|&u| (dialog, u)).collect();
        let silenced = self.store.silenced(&pairs).await?;
        let users: Vec<UserId> = users
            .iter()
            .copied()
            .filter(|&u| !silenced.contains(&(dialog, u)))
            .collect();
        if users.is_empty() {
            return Ok(0);
        }
        let subs = self.store.subscriptions_of(app, &users).await?;
        let targets: Vec<(AppId, UserId)> = users.iter().map(|&u| (app, u)).collect();
        self.enqueue(notification, &subs, &targets, now_millis())
            .await
    }

    /// Notified whenever notifications were added to the outbox.
    pub fn outbox_signal(&self) -> Arc<Notify> {
        self.outbox.clone()
    }

    /// The store the delivery worker reads the outbox from.
    pub fn store(&self) -> Arc<dyn PushStore> {
        self.store.clone()
    }

    /// Queues `notification` for every subscription in `subs` (and the webhook, once per user in
    /// `users`), then wakes the worker.
    async fn enqueue(
        &self,
        notification: &Notification,
        subs: &[PushSubscription],
        users: &[(AppId, UserId)],
        due_at: confab_core::clock::Millis,
    ) -> Result<usize> {
        let payload = serde_json::to_string(notification).map_err(confab_core::Error::internal)?;
        let mut rows: Vec<NewPush> = subs
            .iter()
            .map(|s| NewPush {
                app_id: s.app_id,
                user_id: s.user_id,
                subscription_id: Some(s.id),
                payload: payload.clone(),
                due_at,
            })
            .collect();
        if self.config.webhook {
            rows.extend(users.iter().map(|&(app_id, user_id)| NewPush {
                app_id,
                user_id,
                subscription_id: None,
                payload: payload.clone(),
                due_at,
            }));
        }
        self.enqueue_rows(rows).await
    }

    async fn enqueue_rows(&self, rows: Vec<NewPush>) -> Result<usize> {
        self.store.enqueue_pushes(&rows, now_millis()).await?;
        if !rows.is_empty() {
            self.outbox.notify_one();
        }
        Ok(rows.len())
    }
}
