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
