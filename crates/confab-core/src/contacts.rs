//! Contact lists, privacy lists and the offline queue as the domain names them (RFC 6121,
//! XEP-0016): plain data, shared by the stores that keep them and the services that apply them.

use crate::clock::Millis;
use crate::UserId;

/// Who sees whose presence (RFC 6121 §2.1.2.5), from the owner's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Subscription {
    #[default]
    None,
    /// The owner sees the contact's presence.
    To,
    /// The contact sees the owner's presence.
    From,
    Both,
}

impl Subscription {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::To => "to",
            Self::From => "from",
            Self::Both => "both",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "to" => Self::To,
            "from" => Self::From,
            "both" => Self::Both,
            _ => Self::None,
        }
    }

    /// The owner receives the contact's presence.
    pub fn to(self) -> bool {
        matches!(self, Self::To | Self::Both)
    }

    /// The contact receives the owner's presence.
    pub fn from(self) -> bool {
        matches!(self, Self::From | Self::Both)
    }

    pub fn with(to: bool, from: bool) -> Self {
        match (to, from) {
            (true, true) => Self::Both,
            (true, false) => Self::To,
            (false, true) => Self::From,
            (false, false) => Self::None,
        }
    }
}

/// One contact of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterItem {
    pub contact: UserId,
    pub name: Option<String>,
    pub groups: Vec<String>,
    pub subscription: Subscription,
    /// The owner's subscription request awaits the contact's answer.
    pub ask: bool,
    /// The contact's subscription request awaits the owner's answer.
    pub pending_in: bool,
    /// `false` for rows that only remember a pending inbound request (not shown in the roster).
    pub in_roster: bool,
}

impl RosterItem {
    pub fn new(contact: UserId) -> Self {
        Self {
            contact,
            name: None,
            groups: Vec::new(),
            subscription: Subscription::None,
            ask: false,
            pending_in: false,
            in_roster: true,
        }
    }
}

/// Stanza kinds an item applies to (bit flags); an item with none applies to everything.
pub mod stanzas {
    pub const MESSAGE: u8 = 1;
    pub const IQ: u8 = 2;
    pub const PRESENCE_IN: u8 = 4;
    pub const PRESENCE_OUT: u8 = 8;
    pub const ALL: u8 = MESSAGE | IQ | PRESENCE_IN | PRESENCE_OUT;
}

/// One rule of a list, as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivacyItem {
    /// `jid`, `group` or `subscription`; `None` is the fall-through item that matches everyone.
    pub kind: Option<String>,
    pub value: Option<String>,
    pub allow: bool,
    pub order: u32,
    /// [`stanzas`] flags; 0 means every kind (no child elements).
    pub stanzas: u8,
}

/// The names of a user's lists and which one is the default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrivacyNames {
    pub names: Vec<String>,
    pub default: Option<String>,
}

/// A stored stanza waiting for its recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineMessage {
    pub id: i64,
    pub stanza: String,
    pub created_at: Millis,
}
