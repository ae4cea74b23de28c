//! Chat alerts: a message that reached none of a recipient's active sessions becomes a push to
//! their devices, unless it is silent or the recipient turned the dialog's notifications off (or
//! an admin muted them there).

use std::sync::Arc;

use confab_core::{AppId, ObjectId, Result, UserId};
use confab_store::UserKey;

use super::{Notification, NotificationKind, Push};

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

/// The first `max` characters of `text`, with an ellipsis when cut.
fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

impl Push {
    /// Queues the alert in the background: the chat path that calls this never waits on it.
    pub fn alert(self: &Arc<Self>, alert: ChatAlert) {
        if alert.silent || alert.recipients.is_empty() {
            return;
        }
        let push = self.clone();
        tokio::spawn(async move {
            if let Err(e) = push.queue_alert(alert).await {
                tracing::warn!(error = %e, "queueing a chat alert failed");
            }
        });
    }

    /// Queues the alert for every recipient who wants it; returns how many notifications.
    pub async fn queue_alert(&self, mut alert: ChatAlert) -> Result<usize> {
        if alert.silent {
            return Ok(0);
        }
        alert.recipients.retain(|&u| u != alert.sender);
        if let Some(dialog) = alert.dialog_id {
            let silenced = self
                .store
                .silenced_in_dialog(dialog, &alert.recipients)
                .await?;
            alert.recipients.retain(|u| !silenced.contains(u));
        }
        if alert.recipients.is_empty() {
            return Ok(0);
        }
        let sender = self
            .accounts
            .user(alert.app, UserKey::Id(alert.sender.get()))
            .await?;
        let sender_name = sender
            .as_ref()
            .and_then(|u| {
                u.full_name
                    .clone()
                    .filter(|n| !n.is_empty())
                    .or(u.login.clone())
            })
            .unwrap_or_else(|| alert.sender.to_string());
        let text = match alert.body.as_deref().map(str::trim) {
            Some(t) if !t.is_empty() => shorten(t, self.config.alert_max_chars),
            _ => "Attachment".to_string(),
        };
        let message = self
            .config
            .alert_template
            .replace("{sender}", &sender_name)
            .replace("{text}", &text);
        let notification = Notification {
            kind: NotificationKind::ChatAlert,
            message,
            custom: Default::default(),
            dialog_id: alert.dialog_id.map(|d| d.to_string()),
            sender_id: Some(alert.sender.get()),
            message_id: alert.message_id,
            event_id: None,
            payload: None,
            apns_payload: None,
        };
        let subs = self
            .store
            .subscriptions_of(alert.app, &alert.recipients)
            .await?;
        let users: Vec<_> = alert.recipients.iter().map(|&u| (alert.app, u)).collect();
        self.enqueue(&notification, &subs, &users).await
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
