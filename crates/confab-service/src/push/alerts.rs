//! Chat alerts: a message that reached none of a recipient's active sessions becomes a push to
//! their devices, unless it is silent or the recipient turned the dialog's notifications off (or
//! an admin muted them there).
//!
//! The chat path only hands an alert to a bounded queue; one task takes whatever has gathered and
//! queues it in a few statements (names, mute settings and subscriptions read once per batch, one
//! insert), so a burst of messages costs a few database round trips, not several per message.

use std::collections::{HashMap, HashSet};
use std::sync::Weak;

use confab_core::model::UserQuery;
use confab_core::{AppId, ObjectId, Result, UserId};
use confab_store::{NewPush, PushSubscription};
use tokio::sync::mpsc;

use super::{Notification, NotificationKind, Push};

/// Alerts gathered into one batch at most.
const BATCH: usize = 512;

/// A chat message and the recipients it reached no active session of.
#[derive(Debug, Clone)]
pub struct ChatAlert {
    pub app: AppId,
    pub sender: UserId,
    pub dialog_id: Option<ObjectId>,
    pub message_id: Option<String>,
    pub body: Option<String>,
    pub recipients: Vec<UserId>,
    /// `extension.silent = 1`: the sender asked for no alert.
    pub silent: bool,
}

/// A live face's say in chat alerts: it removes the recipients it reached live itself (the face
/// that raised an alert knows only its own sessions). Called once per batch of alerts.
#[async_trait::async_trait]
pub trait AlertFilter: Send + Sync + 'static {
    async fn retain_wanted(&self, alerts: &mut [ChatAlert]);
}

/// The first `max` characters of `text`, with an ellipsis when cut.
fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// Takes batches from the queue until the service is gone.
pub(super) async fn run_queue(push: Weak<Push>, mut rx: mpsc::Receiver<ChatAlert>) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let Some(push) = push.upgrade() else { return };
        if let Err(e) = push.queue_alerts(std::mem::take(&mut batch)).await {
            tracing::warn!(error = %e, "queueing chat alerts failed");
        }
    }
}

impl Push {
    /// Hands the alert to the queue: the chat path that calls this never waits on the database.
    /// `false` when it was dropped because the queue (`alert_queue_len`) is full.
    pub fn alert(&self, alert: ChatAlert) -> bool {
        if alert.silent || alert.recipients.is_empty() {
            return true;
        }
        let queued = self.alerts.try_send(alert).is_ok();
        if !queued {
            tracing::warn!("the chat alert queue is full; an alert was dropped");
        }
        queued
    }

    /// Queues one alert now; returns how many notifications it made.
    pub async fn queue_alert(&self, alert: ChatAlert) -> Result<usize> {
        self.queue_alerts(vec![alert]).await
    }

    /// Queues alerts for every recipient who wants them; returns how many notifications.
    pub async fn queue_alerts(&self, mut alerts: Vec<ChatAlert>) -> Result<usize> {
        alerts.retain(|a| !a.silent);
        for a in &mut alerts {
            let sender = a.sender;
            a.recipients.retain(|&u| u != sender);
        }
        let pairs: Vec<(ObjectId, UserId)> = alerts
            .iter()
            .filter_map(|a| a.dialog_id.map(|d| (d, a)))
            .flat_map(|(d, a)| a.recipients.iter().map(move |&u| (d, u)))
            .collect();
        if !pairs.is_empty() {
            let silenced: HashSet<(ObjectId, UserId)> =
                self.store.silenced(&pairs).await?.into_iter().collect();
            for a in &mut alerts {
                if let Some(d) = a.dialog_id {
                    a.recipients.retain(|&u| !silenced.contains(&(d, u)));
                }
            }
        }
        for filter in self.alert_filters() {
            filter.retain_wanted(&mut alerts).await;
        }
        alerts.retain(|a| !a.recipients.is_empty());
        if alerts.is_empty() {
            return Ok(0);
        }

        let mut rows = Vec::new();
        let now = confab_core::clock::now_millis();
        let mut by_app: HashMap<AppId, Vec<&ChatAlert>> = HashMap::new();
        for a in &alerts {
            by_app.entry(a.app).or_default().push(a);
        }
        for (app, alerts) in by_app {
            let names = self.sender_names(app, &alerts).await?;
            let recipients: Vec<UserId> = alerts
                .iter()
                .flat_map(|a| a.recipients.iter().copied())
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            let mut subs: HashMap<UserId, Vec<PushSubscription>> = HashMap::new();
            for s in self.store.subscriptions_of(app, &recipients).await? {
                subs.entry(s.user_id).or_default().push(s);
            }
            for a in alerts {
                let sender = names
                    .get(&a.sender)
                    .cloned()
                    .unwrap_or_else(|| a.sender.to_string());
                let payload = serde_json::to_string(&self.notification(a, &sender))
                    .map_err(confab_core::Error::internal)?;
                for &user in &a.recipients {
                    let targets = subs.get(&user).into_iter().flatten().map(|s| Some(s.id));
                    let webhook = self.config.webhook.then_some(None);
                    for subscription_id in targets.chain(webhook) {
                        rows.push(NewPush {
                            app_id: app,
                            user_id: user,
                            subscription_id,
                            payload: payload.clone(),
                            due_at: now,
                        });
                    }
                }
            }
        }
        self.enqueue_rows(rows).await
    }

    /// Senders' display names: the full name, else the login.
    async fn sender_names(
        &self,
        app: AppId,
        alerts: &[&ChatAlert],
    ) -> Result<HashMap<UserId, String>> {
        let ids: Vec<i64> = alerts
            .iter()
            .map(|a| a.sender.get())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let query = UserQuery {
            limit: ids.len() as u32,
            ids: Some(ids),
            ..Default::default()
        };
        let (users, _) = self.accounts.list_users(app, &query).await?;
        Ok(users
            .into_iter()
            .filter_map(|u| {
                let name = u.full_name.filter(|n| !n.is_empty()).or(u.login)?;
                Some((UserId::new(u.id).ok()?, name))
            })
            .collect())
    }

    fn notification(&self, a: &ChatAlert, sender_name: &str) -> Notification {
        let text = match a.body.as_deref().map(str::trim) {
            Some(t) if !t.is_empty() => shorten(t, self.config.alert_max_chars),
            _ => "Attachment".to_string(),
        };
        Notification {
            kind: NotificationKind::ChatAlert,
            message: self
                .config
                .alert_template
                .replace("{sender}", sender_name)
                .replace("{text}", &text),
            custom: Default::default(),
            dialog_id: a.dialog_id.map(|d| d.to_string()),
            sender_id: Some(a.sender.get()),
            message_id: a.message_id.clone(),
            event_id: None,
            payload: None,
            apns_payload: None,
            repeat: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::shorten;

    #[test]
    fn shortening_counts_characters() {
        assert_eq!(shorten("hello", 5), "hello");
        assert_eq!(shorten("hello!", 5), "hello…");
        assert_eq!(shorten("ééééé", 2), "éé…");
    }
}
