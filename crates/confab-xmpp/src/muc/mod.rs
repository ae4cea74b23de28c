//! Multi-user chat (XEP-0045 subset) for group (type 2), public (type 4) and broadcast (type 1) dialogs.
//!
//! Rooms are `<appId>_<dialogId>@muc.<domain>`; the nick is the user id. Joining is optional: a
//! `groupchat` message reaches every online resource of every occupant (group), subscriber (public)
//! or user of the app (broadcast), joined or not, and is reflected to the sender. Who may post comes
//! from the roles table (`confab_core::chat::allowed`). Messages with `save_to_history=1` are stored
//! through the [`Chat`] service **before** delivery.
//!
//! Membership is cached per dialog ([`Room`]) and loaded on first use; every membership change
//! arrives from the domain's bus ([`crate::realtime`]), drops the cached entry (the next message
//! reloads it) and kicks removed users' joined sessions. An epoch counter keeps a load that raced
//! with a change from caching stale membership.
//!
//! Files: `messages` (groupchat and REST messages to rooms), `presence` (join, leave), `disco`,
//! `membership` (changes from the bus).
//!
//! Fan-out serializes each stanza once (`Arc<str>`) and `try_send`s it to each session's bounded
//! queue under one hub lock; a slow session is disconnected by the hub, never waited for.
//!
//! Wire compatibility: the ConnectyCube JS SDK 6.1.2 reads MUC statuses from a child element named
//! `xmlns` (spec §3.9), so self-presences carry `<xmlns><code>110</code></xmlns>` and kicks
//! `<xmlns><code>301</code></xmlns>` with the initiator in a `<item><actor/></item>` directly under
//! `<presence>`. Other occupants' presences never carry it (they would be taken as self-presence).

mod disco;
mod membership;
mod messages;
mod presence;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use confab_core::chat::{allowed, Action, DialogType, Role};
use confab_core::clock::now_millis;
use confab_core::{AppId, ErrorKind, ObjectId, UserId};
use confab_service::chat::NewMessage;
use confab_service::push::ChatAlert;
use confab_service::rooms::{DialogChanged, RoomSnapshot};
use confab_service::Chat;
use serde_json::Value;

use crate::error::{error_reply, StanzaError};
use crate::history::extra_params_to_json;
use crate::hub::{Hub, SessionHandle};
use crate::iq::{self, NS_DISCO_INFO, NS_DISCO_ITEMS};
use crate::jid::{bare_jid, Jid};
use crate::message::{NS_CC_DELETE, NS_CHATSTATES, NS_CORRECT};
use crate::xml::{Element, Node, NS_CLIENT};
use crate::XmppServer;

pub const NS_MUC: &str = "http://jabber.org/protocol/muc";
pub const NS_MUC_USER: &str = "http://jabber.org/protocol/muc#user";

const NOT_ACCEPTABLE: StanzaError = StanzaError::new("cancel", 406, "not-acceptable");
const REGISTRATION_REQUIRED: StanzaError = StanzaError::new("auth", 407, "registration-required");

/// Cached rooms beyond this are dropped wholesale (they reload on use).
const MAX_CACHED_ROOMS: usize = 100_000;

/// `extraParams` keys that are not custom parameters of a stored message.
const KNOWN_EXTRA: &[&str] = &[
    "save_to_history",
    "dialog_id",
    "date_sent",
    "attachments",
    "markable",
];

/// Who may take part in one room.
#[derive(Debug)]
pub struct Room {
    pub app: AppId,
    pub kind: DialogType,
    pub owner: i64,
    pub admins: Vec<i64>,
    members: Vec<UserId>,
    member_set: HashSet<i64>,
}

impl Room {
    fn from_snapshot(s: RoomSnapshot) -> Option<Self> {
        let members: Vec<UserId> = s
            .members
            .iter()
            .filter_map(|u| UserId::new(*u).ok())
            .collect();
        Some(Self {
            app: AppId::new(s.app).ok()?,
            kind: s.kind,
            owner: s.owner,
            admins: s.admins,
            member_set: s.members.into_iter().collect(),
            members,
        })
    }

    /// The same rules as `Dialog::role_of`.
    pub fn role(&self, user: i64) -> Role {
        if user == self.owner {
            Role::Owner
        } else if self.admins.contains(&user) {
            Role::Admin
        } else if self.member_set.contains(&user) {
            Role::Member
        } else if self.kind == DialogType::Broadcast {
            Role::Reader
        } else {
            Role::Outsider
        }
    }
}

/// XEP-0045 affiliation and role for a dialog role.
fn muc_item(role: Role) -> Element {
    let (affiliation, r) = match role {
        Role::Owner => ("owner", "moderator"),
        Role::Admin => ("admin", "moderator"),
        Role::Member => ("member", "participant"),
        Role::Reader => ("none", "visitor"),
        Role::Outsider => ("none", "none"),
    };
    Element::bare("item")
        .with_attr("affiliation", affiliation)
        .with_attr("role", r)
}

#[derive(Default)]
struct Joined {
    rooms: HashMap<ObjectId, Vec<Arc<SessionHandle>>>,
    by_session: HashMap<u64, Vec<ObjectId>>,
}

/// The MUC service of one server.
pub struct Rooms {
    chat: Arc<Chat>,
    hub: Arc<Hub>,
    /// The server, for privacy checks (weak: the server owns this service).
    srv: std::sync::Weak<XmppServer>,
    domain: String,
    muc_domain: String,
    cache: Mutex<HashMap<ObjectId, Arc<Room>>>,
    epoch: AtomicU64,
    joined: Mutex<Joined>,
}

impl Rooms {
    /// Creates the MUC service, subscribes it to dialog changes and plugs it into `srv`.
    pub fn install(srv: &Arc<XmppServer>, chat: Arc<Chat>) -> Arc<Self> {
        let rooms = Arc::new(Self {
            chat: chat.clone(),
            hub: srv.hub.clone(),
            srv: Arc::downgrade(srv),
            domain: srv.config.domain.clone(),
            muc_domain: format!("muc.{}", srv.config.domain),
            cache: Mutex::new(HashMap::new()),
            epoch: AtomicU64::new(0),
            joined: Mutex::new(Joined::default()),
        });
        let _ = srv.muc.set(rooms.clone());
        rooms
    }

    pub fn muc_domain(&self) -> &str {
        &self.muc_domain
    }

    /// Whether a stanza is addressed to the MUC service (a room or an occupant).
    pub fn is_for_rooms(&self, stanza: &Element) -> bool {
        stanza
            .attr("to")
            .and_then(Jid::parse)
            .is_some_and(|j| j.domain.eq_ignore_ascii_case(&self.muc_domain))
    }

    /// `<appId>_<dialogId>@muc.<domain>[/nick]` → ids.
    fn parse_room(&self, jid: &str) -> Option<(AppId, ObjectId)> {
        let j = Jid::parse(jid)?;
        if !j.domain.eq_ignore_ascii_case(&self.muc_domain) {
            return None;
        }
        let (app, dialog) = j.local?.split_once('_')?;
        if !app.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let app = AppId::new(app.parse().ok()?).ok()?;
        Some((app, dialog.parse().ok()?))
    }

    pub fn room_jid(&self, app: AppId, dialog: ObjectId) -> String {
        format!("{app}_{dialog}@{}", self.muc_domain)
    }

    /// The room of `dialog` in `app`, from the cache or the store. Private dialogs are cached too, as
    /// "not a room" (a dialog's type never changes), so stray groupchat traffic to them costs no query.
    pub async fn room(
        &self,
        app: AppId,
        dialog: ObjectId,
    ) -> confab_core::Result<Option<Arc<Room>>> {
        if let Some(r) = self.cache.lock().expect("muc lock").get(&dialog) {
            return Ok((r.app == app && r.kind.has_room()).then(|| r.clone()));
        }
        let epoch = self.epoch.load(Ordering::SeqCst);
        let Some(room) = self
            .chat
            .room(app, dialog.into())
            .await?
            .and_then(Room::from_snapshot)
        else {
            return Ok(None);
        };
        let room = Arc::new(room);
        let mut cache = self.cache.lock().expect("muc lock");
        // A change while we were loading: what we read may be stale, so do not keep it.
        if self.epoch.load(Ordering::SeqCst) == epoch {
            if cache.len() >= MAX_CACHED_ROOMS {
                cache.clear();
            }
            cache.insert(dialog, room.clone());
        }
        Ok(room.kind.has_room().then_some(room))
    }
}

/// `<xmlns><code>N</code></xmlns>`: the status as the ConnectyCube SDK reads it.
fn compat_code(code: &str) -> Element {
    Element::bare("xmlns").with_child(Element::bare("code").with_text(code))
}

/// Another occupant's presence (never with the SDK's self-presence marker).
fn occupant_presence(room_jid: &str, user: UserId, role: Role, unavailable: bool) -> Element {
    let mut p = Element::new("presence", NS_CLIENT).with_attr("from", format!("{room_jid}/{user}"));
    if unavailable {
        p.set_attr("type", "unavailable");
    }
    let item = if unavailable {
        muc_item(Role::Outsider)
    } else {
        muc_item(role)
    };
    p.push(Element::new("x", NS_MUC_USER).with_child(item));
    p
}

/// Sets `extraParams/<key>` (creating `<extraParams>` when needed); keeps an existing non-empty value
/// unless `overwrite`.
fn set_extra(msg: &mut Element, key: &str, value: &str, overwrite: bool) {
    if msg.child("extraParams", NS_CLIENT).is_none() {
        msg.push(Element::new("extraParams", NS_CLIENT));
    }
    let extra = msg.child_mut("extraParams", NS_CLIENT).expect("just added");
    if let Some(existing) = extra.elements_mut().find(|e| e.name == key) {
        if overwrite || existing.text().is_empty() {
            existing.children = vec![Node::Text(value.to_string())];
        }
        return;
    }
    extra.push(Element::bare(key).with_text(value));
}
