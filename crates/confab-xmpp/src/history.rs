//! What the XMPP face reads out of a 1:1 stanza for the domain's [`ChatHistory`]: the marker, edit
//! or delete it carries, and its `extraParams` decoded as the SDK decodes them.

use serde_json::{Map, Value};

pub use confab_service::history::{ChatHistory, ChatMessage, MessageEvent};

use crate::xml::Element;

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
