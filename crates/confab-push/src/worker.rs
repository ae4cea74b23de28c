//! The outbox worker: claims due notifications, sends each through its provider (several at a
//! time), and records what happened. Woken when notifications are queued; otherwise it sleeps
//! until the next one is due.

use std::sync::Arc;
use std::time::Duration;

use confab_core::clock::{now_millis, Millis};
use confab_service::push::Notification;
use confab_store::{OutboxPush, PushStore};
use futures_util::stream::{self, StreamExt};
use tokio::sync::{watch, Notify};

use crate::{Outcome, Provider};

/// When a delivered recurring notification is due again, if it is one and has periods left.
fn repeat_after(item: &OutboxPush) -> Option<Millis> {
    let n: Notification = serde_json::from_str(&item.payload).ok()?;
    n.repeat?.next_after(now_millis())
}

/// The configured providers; a channel without one drops its notifications (logged).
#[derive(Default, Clone)]
pub struct Providers {
    pub webhook: Option<Arc<dyn Provider>>,
    pub fcm: Option<Arc<dyn Provider>>,
    pub apns: Option<Arc<dyn Provider>>,
    pub web: Option<Arc<dyn Provider>>,
}

impl Providers {
    fn for_item(&self, item: &OutboxPush) -> Option<&Arc<dyn Provider>> {
        match item.subscription.as_ref().map(|s| s.channel.as_str()) {
            None => self.webhook.as_ref(),
            Some("gcm") => self.fcm.as_ref(),
            Some("apns" | "apns_voip") => self.apns.as_ref(),
            Some("web") => self.web.as_ref(),
            Some(_) => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Notifications claimed per round.
    pub batch: u32,
    /// Sent at the same time.
    pub concurrency: usize,
    /// How long a claimed notification stays with this worker before it is due again (a worker
    /// that died mid-send leaves it to the next).
    pub lease: Duration,
    /// The first retry's delay; each next one doubles, up to `max_backoff`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// Attempts before a notification is given up.
    pub max_attempts: u32,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            batch: 200,
            concurrency: 64,
            lease: Duration::from_secs(120),
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(3600),
            max_attempts: 12,
        }
    }
}

pub struct Worker {
    store: Arc<dyn PushStore>,
    signal: Arc<Notify>,
    providers: Providers,
    config: WorkerConfig,
}

impl Worker {
    pub fn new(
        store: Arc<dyn PushStore>,
        signal: Arc<Notify>,
        providers: Providers,
        config: WorkerConfig,
    ) -> Self {
        Self {
            store,
            signal,
            providers,
            config,
        }
    }

    /// Runs until `stop` turns true. Sends in flight then are abandoned: their rows stay leased
    /// and are sent again after the lease, so a provider that hangs never holds up a shutdown.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            let round = tokio::select! {
                r = self.round() => r,
                _ = stop.wait_for(|s| *s) => return,
            };
            let full = match round {
                Ok(n) => n == self.config.batch as usize,
                Err(e) => {
                    tracing::warn!(error = %e, "push outbox round failed");
                    false
                }
            };
            if full {
                continue;
            }
            let wait = self.until_next_due().await;
            tokio::select! {
                _ = self.signal.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    async fn until_next_due(&self) -> Duration {
        let idle = Duration::from_secs(30);
        match self.store.next_push_due().await {
            Ok(Some(due)) => Duration::from_millis((due - now_millis()).clamp(0, 30_000) as u64),
            _ => idle,
        }
    }

    /// Claims and sends one batch; returns how many were claimed.
    pub async fn round(&self) -> confab_core::Result<usize> {
        let now = now_millis();
        let lease_until = now + self.config.lease.as_millis() as Millis;
        let items = self
            .store
            .claim_pushes(now, lease_until, self.config.batch)
            .await?;
        let n = items.len();
        let outcomes: Vec<(OutboxPush, Outcome)> = stream::iter(items)
            .map(|item| async move {
                let outcome = self.send(&item).await;
                (item, outcome)
            })
            .buffer_unordered(self.config.concurrency)
            .collect()
            .await;
        // What is done is recorded in one statement; the rest (rare) one by one.
        let mut done = Vec::with_capacity(n);
        for (item, outcome) in outcomes {
            match self.record(&item, outcome).await {
                Ok(Some(id)) => done.push(id),
                Ok(None) => {}
                // The lease runs out and the notification is tried again.
                Err(e) => tracing::warn!(error = %e, "recording a push outcome failed"),
            }
        }
        if let Err(e) = self.store.finish_pushes(&done).await {
            tracing::warn!(error = %e, "recording delivered pushes failed");
        }
        Ok(n)
    }

    async fn send(&self, item: &OutboxPush) -> Outcome {
        match (
            serde_json::from_str::<Notification>(&item.payload),
            self.providers.for_item(item),
        ) {
            (Err(e), _) => Outcome::Rejected(format!("unreadable notification: {e}")),
            (_, None) => Outcome::Rejected("no provider configured for the channel".into()),
            (Ok(n), Some(p)) => {
                p.send(
                    item.subscription.as_ref(),
                    (item.app_id.get(), item.user_id.get()),
                    &n,
                )
                .await
            }
        }
    }

    /// Acts on an outcome; returns the row's id when the row is done (to delete with the batch).
    async fn record(
        &self,
        item: &OutboxPush,
        outcome: Outcome,
    ) -> confab_core::Result<Option<i64>> {
        let channel = item
            .subscription
            .as_ref()
            .map_or("webhook", |s| s.channel.as_str());
        match outcome {
            Outcome::Delivered => match repeat_after(item) {
                // A recurring event: the same row, due again next period.
                Some(next) => {
                    self.store.repeat_push(item.id, next).await?;
                    Ok(None)
                }
                None => Ok(Some(item.id)),
            },
            Outcome::Gone => {
                tracing::info!(channel, "device token gone, subscription removed");
                if let Some(sub) = &item.subscription {
                    // Its outbox rows go with it.
                    self.store.drop_subscription(sub.id).await?;
                }
                Ok(Some(item.id))
            }
            Outcome::Rejected(reason) => {
                tracing::warn!(channel, %reason, "push refused, dropped");
                Ok(Some(item.id))
            }
            Outcome::Retry { after, reason } => {
                let attempts = item.attempts + 1;
                if attempts >= self.config.max_attempts {
                    tracing::warn!(channel, %reason, attempts, "push given up");
                    return Ok(Some(item.id));
                }
                let delay = self.backoff(item.attempts).max(after.unwrap_or_default());
                tracing::debug!(channel, %reason, ?delay, "push will be retried");
                self.store
                    .retry_push(item.id, now_millis() + delay.as_millis() as Millis)
                    .await?;
                Ok(None)
            }
        }
    }

    /// `first_backoff` doubled per earlier failure, at most `max_backoff`.
    fn backoff(&self, failures: u32) -> Duration {
        self.config
            .first_backoff
            .saturating_mul(1u32 << failures.min(20))
            .min(self.config.max_backoff)
    }
}
