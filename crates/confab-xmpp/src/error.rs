//! The XMPP renderer of domain errors, and the stanza/stream error builders.
//!
//! Stanza errors carry the legacy numeric `code` attribute too: the ConnectyCube SDK reports
//! `parseInt(error@code)` to `onMessageErrorListener` and last-activity rejections.
// COMPAT: connectycube JS SDK 6.1.2 reads only `error@code`, not the RFC 6120 condition.

use confab_core::{Error, ErrorKind};

use crate::xml::{Element, NS_STANZAS, NS_STREAM, NS_STREAMS};

/// An RFC 6120 stanza error condition with its legacy code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StanzaError {
    pub kind: &'static str,
    pub code: u16,
    pub condition: &'static str,
}

impl StanzaError {
    pub const SERVICE_UNAVAILABLE: Self = Self::new("cancel", 503, "service-unavailable");
    pub const ITEM_NOT_FOUND: Self = Self::new("cancel", 404, "item-not-found");
    pub const BAD_REQUEST: Self = Self::new("modify", 400, "bad-request");
    pub const FORBIDDEN: Self = Self::new("auth", 403, "forbidden");
    pub const NOT_ALLOWED: Self = Self::new("cancel", 405, "not-allowed");
    pub const RESOURCE_CONSTRAINT: Self = Self::new("wait", 500, "resource-constraint");
    pub const INTERNAL: Self = Self::new("cancel", 500, "internal-server-error");
    pub const FEATURE_NOT_IMPLEMENTED: Self = Self::new("cancel", 501, "feature-not-implemented");

    pub const fn new(kind: &'static str, code: u16, condition: &'static str) -> Self {
        Self {
            kind,
            code,
            condition,
        }
    }

    /// The domain error as XMPP sees it. Internal details are logged here, never sent.
    pub fn from_domain(e: &Error) -> Self {
        match e.kind {
            ErrorKind::Unauthenticated => Self::new("auth", 401, "not-authorized"),
            ErrorKind::Forbidden => Self::FORBIDDEN,
            ErrorKind::NotFound => Self::ITEM_NOT_FOUND,
            ErrorKind::Invalid | ErrorKind::BadRequest => Self::BAD_REQUEST,
            ErrorKind::TooLarge => Self::new("modify", 406, "not-acceptable"),
            ErrorKind::RateLimited => Self::RESOURCE_CONSTRAINT,
            ErrorKind::Internal => {
                tracing::error!(error = ?e, "internal error in the XMPP face");
                Self::INTERNAL
            }
        }
    }

    /// `<error type code><condition/>[<text/>]</error>`.
    pub fn element(&self, text: Option<&str>) -> Element {
        let mut e = Element::bare("error")
            .with_attr("type", self.kind)
            .with_attr("code", self.code.to_string())
            .with_child(Element::new(self.condition, NS_STANZAS));
        if let Some(t) = text {
            e.push(Element::new("text", NS_STANZAS).with_text(t));
        }
        e
    }
}

/// Turns a stanza into its error reply: swaps `from`/`to`, sets `type="error"`, drops the payload
/// (bodies are never echoed back).
pub fn error_reply(
    stanza: &Element,
    own_jid: &str,
    err: StanzaError,
    text: Option<&str>,
) -> Element {
    let mut reply = Element::new(&stanza.name, crate::xml::NS_CLIENT);
    reply.set_attr("type", "error");
    if let Some(id) = stanza.attr("id") {
        reply.set_attr("id", id);
    }
    if let Some(to) = stanza.attr("to") {
        reply.set_attr("from", to);
    }
    reply.set_attr("to", own_jid);
    reply.push(err.element(text));
    reply
}

/// `<stream:error>` with its own namespace declarations (spec §3.2).
pub fn stream_error(condition: &str) -> String {
    stream_error_element(condition).to_xml()
}

/// A stream error with an application-specific condition after the defined one (RFC 6120 §4.9.4).
pub fn stream_error_with(condition: &str, detail: Element) -> String {
    stream_error_element(condition).with_child(detail).to_xml()
}

fn stream_error_element(condition: &str) -> Element {
    let mut e = Element::bare("stream:error");
    e.set_attr("xmlns:stream", NS_STREAM);
    e.push(Element::new(condition, NS_STREAMS));
    e
}
