//! A notification as the outbox keeps it and the providers render it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    ChatAlert,
    Event,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub kind: NotificationKind,
    /// The text shown on the device.
    pub message: String,
    /// Other universal parameters of an event (`ios_badge`, `ios_sound`, custom keys).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub custom: Map<String, Value>,
    /// Chat alerts: the dialog, the sender and the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialog_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Events: the event's id and its `message` as the app sent it (base64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    /// An event's own APNs payload (`payload=<base64 JSON>`), sent to APNs as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apns_payload: Option<Map<String, Value>>,
    /// A `period_date` event: sent again every period until its end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<Repeat>,
}

/// When a recurring notification is sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repeat {
    pub every_ms: i64,
    /// No sending after this time; `None`: until the event is deleted with its app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<i64>,
}

impl Repeat {
    /// The next due time after a delivery at `now`, if any is left. Counted from the delivery, so
    /// periods missed while the server was down are not sent in a burst afterwards.
    pub fn next_after(&self, now: i64) -> Option<i64> {
        let next = now + self.every_ms;
        match self.until_ms {
            Some(until) if next > until => None,
            _ => Some(next),
        }
    }
}

impl Notification {
    /// The custom keys and `dialog_id` as flat string pairs (FCM `data` takes only strings).
    pub fn data_strings(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .custom
            .iter()
            .map(|(k, v)| {
                let s = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), s)
            })
            .collect();
        if let Some(d) = &self.dialog_id {
            out.push(("dialog_id".into(), d.clone()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::Repeat;

    #[test]
    fn repeats_until_their_end() {
        let daily = Repeat {
            every_ms: 86_400_000,
            until_ms: Some(2 * 86_400_000),
        };
        assert_eq!(daily.next_after(0), Some(86_400_000));
        assert_eq!(daily.next_after(86_400_000), Some(2 * 86_400_000));
        assert_eq!(daily.next_after(86_400_001), None);
        let forever = Repeat {
            every_ms: 1000,
            until_ms: None,
        };
        assert_eq!(forever.next_after(5), Some(1005));
    }
}
