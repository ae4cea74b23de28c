//! The seam to the dialogs/messages service: what the XMPP face asks before delivering a 1:1 message.
//!
//! The XMPP face does not keep history itself. When a `ChatHistory` is plugged in, every 1:1
//! `type="chat"` message with a body (not typing, markers, edits or deletes) is handed to it **before**
//! delivery (persist first, then deliver). It returns the `dialog_id` to stamp into the delivered
//! `extraParams` (when the client did not send one), or an error, which is sent back to the sender as a
//! message error and stops delivery.

use async_trait::async_trait;
use confab_core::{AppId, Result, UserId};
use serde_json::{Map, Value};

use crate::xml::Element;

/// One 1:1 chat message as the history service sees it. No XML.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatMessage {
    pub app: AppId,
    pub sender: UserId,
    pub recipient: UserId,
    /// The client's stanza id (the SDK sends a 24-hex ObjectId), if any.
    pub stanza_id: Option<String>,
    pub body: Option<String>,
    /// `extraParams` decoded as the SDK decodes it: every value a string or nested object;
    /// `<attachment …/>` elements become `attachments: [{attr: value}]`.
    pub extra_params: Map<String, Value>,
    /// `extraParams/save_to_history == "1"`.
    pub save_to_history: bool,
}

/// A change to an existing message, carried by a 1:1 stanza.
#[derive(Debug, Clone, PartialEq)]
pub enum MessageEvent {
    /// Chat marker (XEP-0333): `received` (read = false) or `displayed` (read = true).
    Marker { message_id: String, read: bool },
    /// XEP-0308 correction: the new body of one's own message.
    Edit { message_id: String, body: String },
    /// ConnectyCube `urn:xmpp:message-delete:0` remove: delete for everyone.
    Delete { message_id: String },
}

#[async_trait]
pub trait ChatHistory: Send + Sync + 'static {
    /// Called before delivery. `Ok(Some(dialog_id))` fills a missing `extraParams/dialog_id`;
    /// `Ok(None)` leaves the message as it is; `Err` rejects the message (the sender gets a message error,
    /// nothing is delivered or stored offline).
    async fn record_chat_message(&self, message: &ChatMessage) -> Result<Option<String>>;

    /// Called before a marker, edit or delete is forwarded. `Err` on an edit or delete stops it
    /// (the sender may not change that message); marker errors are ignored, since markers for
    /// messages that were never stored are normal.
    async fn record_event(&self, app: AppId, user: UserId, event: &MessageEvent) -> Result<()>;
}

/// The marker, edit or delete a message carries, if any.
pub fn message_event(msg: &Element) -> Option<MessageEvent> {
    use crate::message::{NS_CC_DELETE, NS_CORRECT, NS_MARKERS};
    for e in msg.elements() {
        let id = e.attr("id").map(str::to_string);
        match (e.ns.as_str(), e.local_name(), id) {
            (NS_MARKERS, "received", Some(message_id)) => {
                return Some(MessageEvent::Marker {
                    message_id,
                    read: false,
                })
            }
            (NS_MARKERS, "displayed", Some(message_id)) => {
                return Some(MessageEvent::Marker {
                    message_id,
                    read: true,
                })
            }
            (NS_CORRECT, "replace", Some(message_id)) => {
                let body = msg
                    .child("body", crate::xml::NS_CLIENT)
                    .map(Element::text)
                    .unwrap_or_default();
                return Some(MessageEvent::Edit { message_id, body });
            }
            (NS_CC_DELETE, "remove", Some(message_id)) => {
                return Some(MessageEvent::Delete { message_id })
            }
            _ => {}
        }
    }
    None
}

/// Decodes `<extraParams>` like the SDK's `parseExtraParams` (all values strings, empty elements dropped).
pub fn extra_params_to_json(extra: &Element) -> Map<String, Value> {
    let mut map = Map::new();
    let mut attachments = Vec::new();
    for child in extra.elements() {
        if child.name == "attachment" {
            let mut a = Map::new();
            for (k, v) in &child.attrs {
                if k != "xmlns" {
                    a.insert(k.clone(), Value::String(v.clone()));
                }
            }
            attachments.push(Value::Object(a));
            continue;
        }
        if let Some(v) = element_value(child) {
            map.insert(child.name.clone(), v);
        }
    }
    if !attachments.is_empty() {
        map.insert("attachments".into(), Value::Array(attachments));
    }
    map
}

fn element_value(e: &Element) -> Option<Value> {
    if e.elements().next().is_some() {
        let mut m = Map::new();
        for c in e.elements() {
            if let Some(v) = element_value(c) {
                m.insert(c.name.clone(), v);
            }
        }
        return Some(Value::Object(m));
    }
    let t = e.text();
    (!t.is_empty()).then_some(Value::String(t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{parse_element, Scope};

    #[test]
    fn decodes_like_the_sdk() {
        let e = parse_element(
            br#"<extraParams><save_to_history>1</save_to_history><attachment uid="u1" size="10"/><nested><a>1</a><b><c>d</c></b></nested><nul></nul><tags><0>x</0></tags></extraParams>"#,
            &Scope::client(),
        )
        .unwrap();
        let j = Value::Object(extra_params_to_json(&e));
        assert_eq!(
            j,
            serde_json::json!({"save_to_history": "1", "nested": {"a": "1", "b": {"c": "d"}},
                "tags": {"0": "x"}, "attachments": [{"uid": "u1", "size": "10"}]})
        );
    }
}
