//! Multi-user chat (XEP-0045 subset) for group (type 2), public (type 4) and broadcast (type 1) dialogs.
//!
//! Rooms are `<appId>_<dialogId>@muc.<domain>`; the nick is the user id. Joining is optional: a
//! `groupchat` message reaches every online resource of every occupant (group), subscriber (public)
//! or user of the app (broadcast), joined or not, and is reflected to the sender. Who may post comes
//! from the roles table (`confab_core::chat::allowed`). Messages with `save_to_history=1` are stored
//! through the [`Chat`] service **before** delivery.
//!
//! Membership is cached per dialog ([`Room`]) and loaded on first use; the chat service tells us about
//! every change inline ([`DialogEvents`]), which drops the cached entry (the next message reloads it)
//! and kicks removed users' joined sessions. An epoch counter keeps a load that raced with a change
//! from caching stale membership.
//!
//! Fan-out serializes each stanza once (`Arc<str>`) and `try_send`s it to each session's bounded
//! queue under one hub lock; a slow session is disconnected by the hub, never waited for.
//!
//! Wire compatibility: the ConnectyCube JS SDK 6.1.2 reads MUC statuses from a child element named
//! `xmlns` (spec §3.9), so self-presences carry `<xmlns><code>110</code></xmlns>` and kicks
//! `<xmlns><code>301</code></xmlns>` with the initiator in a `<item><actor/></item>` directly under
//! `<presence>`. Other occupants' presences never carry it (they would be taken as self-presence).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use confab_core::chat::{allowed, Action, DialogType, Role};
use confab_core::clock::now_millis;
use confab_core::{AppId, ErrorKind, ObjectId, UserId};
use confab_service::chat::NewMessage;
use confab_service::rooms::{DialogChanged, DialogEvents, RoomSnapshot};
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
        let weak: std::sync::Weak<dyn DialogEvents> = Arc::downgrade(&rooms) as _;
        chat.add_dialog_events(weak);
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
            .room(app.get(), dialog)
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

    // ---- messages ----

    /// Routes a message addressed to a room. Returns what goes back to the sender (errors).
    pub async fn route_message(&self, from: &Arc<SessionHandle>, mut msg: Element) -> Vec<Element> {
        let typ = msg.attr("type").unwrap_or("normal").to_string();
        if typ == "error" {
            return Vec::new();
        }
        let bounce = |msg: &Element, err: StanzaError, text: Option<&str>| {
            vec![error_reply(msg, &from.full_jid, err, text)]
        };
        let to = msg.attr("to").unwrap_or_default().to_string();
        let Some((app, dialog_id)) = self.parse_room(&to).filter(|(a, _)| *a == from.app) else {
            return bounce(&msg, StanzaError::ITEM_NOT_FOUND, Some("Dialog not found"));
        };
        if typ != "groupchat" {
            return bounce(
                &msg,
                NOT_ACCEPTABLE,
                Some("Only groupchat messages can be sent to a room"),
            );
        }
        let room = match self.room(app, dialog_id).await {
            Ok(Some(r)) => r,
            Ok(None) => return bounce(&msg, StanzaError::ITEM_NOT_FOUND, Some("Dialog not found")),
            Err(e) => return bounce(&msg, StanzaError::from_domain(&e), None),
        };
        let user = from.user.get();
        let role = room.role(user);
        if !allowed(room.kind, role, Action::Post) {
            return if role == Role::Outsider {
                bounce(
                    &msg,
                    NOT_ACCEPTABLE,
                    Some("You are not a member of this dialog"),
                )
            } else {
                bounce(
                    &msg,
                    StanzaError::FORBIDDEN,
                    Some("Only the owner and admins can post to this dialog"),
                )
            };
        }

        let body = msg.child("body", NS_CLIENT).map(Element::text);
        let typing = msg.elements().any(|e| e.ns == NS_CHATSTATES);
        let replace = msg
            .child("replace", NS_CORRECT)
            .and_then(|e| e.attr("id"))
            .map(str::to_string);
        let remove = msg
            .child("remove", NS_CC_DELETE)
            .and_then(|e| e.attr("id"))
            .map(str::to_string);
        let typing_only = typing && body.is_none() && replace.is_none() && remove.is_none();

        // Store changes first, then deliver.
        let stored = if let Some(id) = replace {
            match id.parse::<ObjectId>() {
                Ok(id) => self
                    .chat
                    .edit_message(app.get(), user, id, body)
                    .await
                    .map(|_| ()),
                Err(_) => Ok(()),
            }
        } else if let Some(id) = remove {
            match id.parse::<ObjectId>() {
                Ok(id) => self
                    .chat
                    .delete_messages(app.get(), user, &[id], true)
                    .await
                    .map(|_| ()),
                Err(_) => Ok(()),
            }
        } else if body.is_some() {
            set_extra(&mut msg, "dialog_id", &dialog_id.to_string(), true);
            let now_secs = (now_millis() / 1000).to_string();
            set_extra(&mut msg, "date_sent", &now_secs, false);
            let extra = msg
                .child("extraParams", NS_CLIENT)
                .map(extra_params_to_json)
                .unwrap_or_default();
            if extra.get("save_to_history").and_then(Value::as_str) == Some("1") {
                let new = NewMessage {
                    id: msg.attr("id").and_then(|i| i.parse().ok()),
                    dialog_id: Some(dialog_id),
                    recipient_id: None,
                    body,
                    date_sent: extra
                        .get("date_sent")
                        .and_then(Value::as_str)
                        .and_then(|d| d.parse().ok()),
                    attachments: extra
                        .get("attachments")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default(),
                    custom: extra
                        .iter()
                        .filter(|(k, _)| !KNOWN_EXTRA.contains(&k.as_str()))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    markable: extra.get("markable").and_then(Value::as_str) == Some("1"),
                };
                match self.chat.create_message(app.get(), user, new).await {
                    Ok(_) => Ok(()),
                    // A resent stanza (stream management retry) is already stored.
                    Err(e) if e.kind == ErrorKind::Invalid && e.fields.contains_key("_id") => {
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            } else {
                Ok(())
            }
        } else {
            Ok(())
        };
        match stored {
            Ok(()) => {}
            // Not in history (never saved, or already gone): forward anyway, as for 1:1.
            Err(e) if e.kind == ErrorKind::NotFound => {}
            Err(e) => {
                let text = (e.kind != ErrorKind::Internal).then_some(e.message.as_str());
                return bounce(&msg, StanzaError::from_domain(&e), text);
            }
        }

        msg.set_attr("xmlns", NS_CLIENT);
        msg.ns = NS_CLIENT.to_string();
        msg.set_attr("from", format!("{}/{user}", self.room_jid(app, dialog_id)));
        // One rendering for every recipient: `to` would differ per session, and clients do not need it.
        msg.remove_attr("to");
        let xml: Arc<str> = msg.to_xml().into();
        // Typing is not echoed to the typing session; everything else is reflected (standard MUC).
        let skip = typing_only.then_some(from.id);
        let blocked = self.blocked_recipients(&room, app, from.user).await;
        self.fan_out(&room, from, &xml, skip, &blocked);
        Vec::new()
    }

    /// Online members who must not get this sender's group messages (the domain's rule).
    async fn blocked_recipients(&self, room: &Room, app: AppId, sender: UserId) -> HashSet<UserId> {
        let Some(srv) = self.srv.upgrade() else {
            return HashSet::new();
        };
        if room.kind == DialogType::Broadcast {
            return HashSet::new();
        }
        srv.privacy
            .blocked_in_group(app, sender, room.members.iter().copied())
            .await
    }

    /// Hands `xml` to every online session of the room's audience (and the sender's other sessions).
    fn fan_out(
        &self,
        room: &Room,
        from: &SessionHandle,
        xml: &Arc<str>,
        skip: Option<u64>,
        blocked: &HashSet<UserId>,
    ) -> usize {
        match room.kind {
            DialogType::Broadcast => self.hub.send_to_app(room.app, xml, skip),
            _ => {
                let sender_extra =
                    (!room.member_set.contains(&from.user.get())).then_some(from.user);
                self.hub.send_to_users(
                    room.app,
                    room.members
                        .iter()
                        .copied()
                        .filter(|u| !blocked.contains(u))
                        .chain(sender_extra),
                    xml,
                    skip,
                )
            }
        }
    }

    /// Delivers a message created over REST with `send_to_chat=1` to the room's audience, as the
    /// groupchat stanza an XMPP sender would have produced.
    pub async fn deliver_stored(&self, m: &confab_core::chat::Message, extra: Element) {
        let (Ok(app), Ok(sender)) = (AppId::new(m.app_id), UserId::new(m.sender_id)) else {
            return;
        };
        let room = match self.room(app, m.dialog_id).await {
            Ok(Some(room)) => room,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = ?e, "loading a room for a REST message failed");
                return;
            }
        };
        let mut stanza = Element::new("message", NS_CLIENT)
            .with_attr("type", "groupchat")
            .with_attr("id", m.id.to_string())
            .with_attr(
                "from",
                format!("{}/{sender}", self.room_jid(app, m.dialog_id)),
            );
        if let Some(body) = &m.body {
            stanza.push(Element::bare("body").with_text(body.as_str()));
        }
        stanza.push(extra);
        let xml: Arc<str> = stanza.to_xml().into();
        match room.kind {
            DialogType::Broadcast => {
                self.hub.send_to_app(room.app, &xml, None);
            }
            _ => {
                // The same privacy rule as a groupchat message sent over XMPP.
                let blocked = self.blocked_recipients(&room, app, sender).await;
                let sender_extra = (!room.member_set.contains(&sender.get())).then_some(sender);
                self.hub.send_to_users(
                    room.app,
                    room.members
                        .iter()
                        .copied()
                        .filter(|u| !blocked.contains(u))
                        .chain(sender_extra),
                    &xml,
                    None,
                );
            }
        }
    }

    // ---- presence ----

    /// Handles a presence addressed to a room occupant JID (join / leave).
    pub async fn presence(&self, from: &Arc<SessionHandle>, el: &Element) -> Vec<Element> {
        let typ = el.attr("type");
        let to = el.attr("to").unwrap_or_default();
        let nick_jid = |room: &str| format!("{room}/{}", from.user);
        let Some((app, dialog_id)) = self.parse_room(to).filter(|(a, _)| *a == from.app) else {
            return match typ {
                None => vec![self.join_error(
                    el,
                    from,
                    to,
                    StanzaError::ITEM_NOT_FOUND,
                    "Dialog not found",
                )],
                _ => Vec::new(),
            };
        };
        let room_jid = self.room_jid(app, dialog_id);
        match typ {
            Some("unavailable") => {
                self.leave(from, dialog_id, &room_jid);
                let me = Element::new("presence", NS_CLIENT)
                    .with_attr("type", "unavailable")
                    .with_attr("from", nick_jid(&room_jid))
                    .with_attr("to", from.full_jid.as_str())
                    .with_child(
                        Element::new("x", NS_MUC_USER)
                            .with_child(Element::bare("status").with_attr("code", "110"))
                            // COMPAT: connectycube JS SDK 6.1.2 resolves leave() only on x/xmlns/code = 110.
                            .with_child(compat_code("110"))
                            .with_child(
                                Element::bare("item")
                                    .with_attr("affiliation", "none")
                                    .with_attr("role", "none"),
                            ),
                    );
                vec![me]
            }
            None => {
                let room = match self.room(app, dialog_id).await {
                    Ok(Some(r)) => r,
                    Ok(None) => {
                        return vec![self.join_error(
                            el,
                            from,
                            &nick_jid(&room_jid),
                            StanzaError::ITEM_NOT_FOUND,
                            "Dialog not found",
                        )]
                    }
                    Err(e) => {
                        return vec![self.join_error(
                            el,
                            from,
                            &nick_jid(&room_jid),
                            StanzaError::from_domain(&e),
                            "Internal server error",
                        )]
                    }
                };
                let role = room.role(from.user.get());
                if !allowed(room.kind, role, Action::Read) {
                    return vec![self.join_error(
                        el,
                        from,
                        &nick_jid(&room_jid),
                        REGISTRATION_REQUIRED,
                        "Not a member",
                    )];
                }
                self.join(from, el, &room, dialog_id, &room_jid, role)
            }
            _ => Vec::new(),
        }
    }

    fn join(
        &self,
        from: &Arc<SessionHandle>,
        el: &Element,
        room: &Room,
        dialog_id: ObjectId,
        room_jid: &str,
        role: Role,
    ) -> Vec<Element> {
        let (others, announce) = {
            let mut j = self.joined.lock().expect("muc lock");
            let list = j.rooms.entry(dialog_id).or_default();
            let already = list.iter().any(|s| s.id == from.id);
            let user_was_in = list.iter().any(|s| s.user == from.user);
            let others: Vec<Arc<SessionHandle>> = list
                .iter()
                .filter(|s| s.user != from.user)
                .cloned()
                .collect();
            if !already {
                list.push(from.clone());
                j.by_session.entry(from.id).or_default().push(dialog_id);
            }
            (others, !user_was_in)
        };
        let mut replies = Vec::new();
        // XEP-0045: first the occupants already there, then the self-presence.
        let mut seen = HashSet::new();
        for o in &others {
            if seen.insert(o.user) {
                let mut p = occupant_presence(room_jid, o.user, room.role(o.user.get()), false);
                p.set_attr("to", from.full_jid.as_str());
                replies.push(p);
            }
        }
        let mut me = Element::new("presence", NS_CLIENT);
        if let Some(id) = el.attr("id") {
            me.set_attr("id", id);
        }
        me.set_attr("from", format!("{room_jid}/{}", from.user));
        me.set_attr("to", from.full_jid.as_str());
        // `muc#user` must be the first <x>; the SDK checks x/status@code after finding x/xmlns/code.
        me.push(
            Element::new("x", NS_MUC_USER)
                .with_child(Element::bare("status").with_attr("code", "110"))
                // COMPAT: connectycube JS SDK 6.1.2 reads the MUC status from x/xmlns/code (spec §3.9);
                // without it join() never resolves.
                .with_child(compat_code("110"))
                .with_child(muc_item(role)),
        );
        replies.push(me);
        if announce && !others.is_empty() {
            let xml: Arc<str> = occupant_presence(room_jid, from.user, role, false)
                .to_xml()
                .into();
            for o in &others {
                o.send(xml.clone());
            }
        }
        replies
    }

    /// Removes a session from a room; tells the others when its user has no session left there.
    fn leave(&self, from: &SessionHandle, dialog_id: ObjectId, room_jid: &str) {
        let others = {
            let mut j = self.joined.lock().expect("muc lock");
            let Some(list) = j.rooms.get_mut(&dialog_id) else {
                return;
            };
            let before = list.len();
            list.retain(|s| s.id != from.id);
            if list.len() == before {
                return;
            }
            let still_in = list.iter().any(|s| s.user == from.user);
            let others: Vec<_> = if still_in { Vec::new() } else { list.clone() };
            if list.is_empty() {
                j.rooms.remove(&dialog_id);
            }
            if let Some(rs) = j.by_session.get_mut(&from.id) {
                rs.retain(|r| *r != dialog_id);
                if rs.is_empty() {
                    j.by_session.remove(&from.id);
                }
            }
            others
        };
        if !others.is_empty() {
            let xml: Arc<str> = occupant_presence(room_jid, from.user, Role::Member, true)
                .to_xml()
                .into();
            for o in &others {
                o.send(xml.clone());
            }
        }
    }

    fn join_error(
        &self,
        el: &Element,
        from: &SessionHandle,
        occupant_jid: &str,
        err: StanzaError,
        text: &str,
    ) -> Element {
        let mut p = Element::new("presence", NS_CLIENT).with_attr("type", "error");
        if let Some(id) = el.attr("id") {
            p.set_attr("id", id);
        }
        p.set_attr("from", occupant_jid);
        p.set_attr("to", from.full_jid.as_str());
        // The SDK rejects join() only when the first <x> is exactly the `muc` namespace.
        p.push(Element::new("x", NS_MUC));
        p.push(err.element(Some(text)));
        p
    }

    /// A session ended: it leaves every room it joined.
    pub fn session_closed(&self, handle: &SessionHandle) {
        let rooms = self
            .joined
            .lock()
            .expect("muc lock")
            .by_session
            .get(&handle.id)
            .cloned()
            .unwrap_or_default();
        for dialog in rooms {
            let jid = self.room_jid(handle.app, dialog);
            self.leave(handle, dialog, &jid);
        }
    }

    /// Users with at least one session joined to the room.
    pub fn joined_users(&self, dialog: ObjectId) -> Vec<UserId> {
        let j = self.joined.lock().expect("muc lock");
        let mut users: Vec<UserId> = j
            .rooms
            .get(&dialog)
            .map(|l| l.iter().map(|s| s.user).collect())
            .unwrap_or_default();
        users.sort_unstable_by_key(|u| u.get());
        users.dedup();
        users
    }

    // ---- iq ----

    /// Handles an iq addressed to a room: disco#info and disco#items (the online occupants).
    pub async fn iq(&self, from: &Arc<SessionHandle>, iq: Element) -> Vec<Element> {
        let typ = iq.attr("type").unwrap_or_default().to_string();
        if !matches!(typ.as_str(), "get" | "set") {
            return Vec::new();
        }
        let err = |e: StanzaError| vec![error_reply(&iq, &from.full_jid, e, None)];
        let to = iq.attr("to").unwrap_or_default().to_string();
        let Some((app, dialog_id)) = self.parse_room(&to).filter(|(a, _)| *a == from.app) else {
            return err(StanzaError::ITEM_NOT_FOUND);
        };
        let Some(query) = iq.elements().next() else {
            return err(StanzaError::BAD_REQUEST);
        };
        let disco_items = query.is("query", NS_DISCO_ITEMS);
        let disco_info = query.is("query", NS_DISCO_INFO);
        if typ != "get" || !(disco_items || disco_info) {
            return err(StanzaError::SERVICE_UNAVAILABLE);
        }
        let room = match self.room(app, dialog_id).await {
            Ok(Some(r)) => r,
            Ok(None) => return err(StanzaError::ITEM_NOT_FOUND),
            Err(e) => return err(StanzaError::from_domain(&e)),
        };
        if !allowed(room.kind, room.role(from.user.get()), Action::Read) {
            return err(StanzaError::FORBIDDEN);
        }
        let room_jid = self.room_jid(app, dialog_id);
        let payload = if disco_items {
            // Online occupants: joined users, and (join being optional) members with a live session.
            // Broadcasts list only joined users: the whole app's presence is not everyone's business.
            let mut users: Vec<i64> = self
                .joined_users(dialog_id)
                .iter()
                .map(|u| u.get())
                .collect();
            if room.kind != DialogType::Broadcast {
                users.extend(
                    room.members
                        .iter()
                        .filter(|u| self.hub.is_online((app, **u)))
                        .map(|u| u.get()),
                );
            }
            users.sort_unstable();
            users.dedup();
            let mut q = Element::new("query", NS_DISCO_ITEMS);
            for u in users {
                q.push(
                    Element::bare("item")
                        .with_attr("jid", format!("{room_jid}/{u}"))
                        .with_attr("name", u.to_string()),
                );
            }
            q
        } else {
            let kind = match room.kind {
                DialogType::Public => "muc_public",
                _ => "muc_membersonly",
            };
            let mut q = Element::new("query", NS_DISCO_INFO).with_child(
                Element::bare("identity")
                    .with_attr("category", "conference")
                    .with_attr("type", "text"),
            );
            for f in [NS_MUC, kind, "muc_persistent"] {
                q.push(Element::bare("feature").with_attr("var", f));
            }
            q
        };
        let mut r = iq::result(&iq, &room_jid, Some(payload));
        r.set_attr("to", from.full_jid.as_str());
        vec![r]
    }

    // ---- live membership changes ----

    fn kick(&self, ev: &DialogChanged) {
        let Ok(app) = AppId::new(ev.app) else {
            return;
        };
        let removed: HashSet<i64> = ev.removed.iter().copied().collect();
        let (victims, remaining) = {
            let mut j = self.joined.lock().expect("muc lock");
            let Some(list) = j.rooms.get_mut(&ev.dialog_id) else {
                return;
            };
            let (victims, remaining): (Vec<_>, Vec<_>) = list
                .drain(..)
                .partition(|s| ev.deleted || removed.contains(&s.user.get()));
            if remaining.is_empty() {
                j.rooms.remove(&ev.dialog_id);
            } else {
                *j.rooms.get_mut(&ev.dialog_id).expect("present") = remaining.clone();
            }
            for v in &victims {
                if let Some(rs) = j.by_session.get_mut(&v.id) {
                    rs.retain(|r| *r != ev.dialog_id);
                    if rs.is_empty() {
                        j.by_session.remove(&v.id);
                    }
                }
            }
            (victims, remaining)
        };
        if victims.is_empty() {
            return;
        }
        let room_jid = self.room_jid(app, ev.dialog_id);
        let mut gone = HashSet::new();
        for v in &victims {
            let mut p = Element::new("presence", NS_CLIENT)
                .with_attr("type", "unavailable")
                .with_attr("from", format!("{room_jid}/{}", v.user))
                .with_attr("to", v.full_jid.as_str());
            p.push(
                Element::new("x", NS_MUC_USER)
                    // COMPAT: connectycube JS SDK 6.1.2 fires onKickOccupant only for x/xmlns/code = 301.
                    .with_child(compat_code("301"))
                    .with_child(
                        Element::bare("item")
                            .with_attr("affiliation", "none")
                            .with_attr("role", "none"),
                    )
                    .with_child(Element::bare("status").with_attr("code", "307")),
            );
            if let Some(actor) = ev.actor.and_then(|a| UserId::new(a).ok()) {
                // COMPAT: connectycube JS SDK 6.1.2 reads the kick initiator from presence/item/actor
                // (a direct child of <presence>, not of <x>).
                p.push(Element::bare("item").with_child(
                    Element::bare("actor").with_attr("jid", bare_jid(app, actor, &self.domain)),
                ));
            }
            v.send(p.to_xml().into());
            gone.insert(v.user);
        }
        // The others see the kicked users leave (standard XEP-0045 307).
        for user in gone {
            if remaining.iter().any(|s| s.user == user) {
                continue;
            }
            let mut p = occupant_presence(&room_jid, user, Role::Outsider, true);
            if let Some(x) = p.child_mut("x", NS_MUC_USER) {
                x.push(Element::bare("status").with_attr("code", "307"));
            }
            let xml: Arc<str> = p.to_xml().into();
            for o in &remaining {
                o.send(xml.clone());
            }
        }
    }
}

impl DialogEvents for Rooms {
    fn dialog_changed(&self, ev: &DialogChanged) {
        {
            let mut cache = self.cache.lock().expect("muc lock");
            cache.remove(&ev.dialog_id);
            self.epoch.fetch_add(1, Ordering::SeqCst);
        }
        if ev.deleted || !ev.removed.is_empty() {
            self.kick(ev);
        }
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
