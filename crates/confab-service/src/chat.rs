//! Dialogs and messages: the chat API's rules, once, for REST, XMPP and every other face.

use std::collections::BTreeSet;
use std::sync::Arc;

use confab_core::chat::{
    allowed, Action, Dialog, DialogType, MemberState, Message, Role, MAX_ADMINS,
};
use confab_core::clock::now_millis;
use confab_core::model::{User, UserQuery};
use confab_core::query::Query;
use confab_core::{AppId, Error, ObjectId, Result};
use confab_store::{AccountStore, ChatStore, MemberChange, Membership, MessageSearch, Viewer};
use serde_json::{Map, Value};

/// Who is acting: a user of the app, or the app's backend through the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    User(i64),
    Admin,
}

#[derive(Debug, Clone, Default)]
pub struct NewDialog {
    pub kind: Option<DialogType>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub photo: Option<String>,
    pub occupants_ids: Vec<i64>,
    pub admins_ids: Vec<i64>,
    pub data: Option<Map<String, Value>>,
    pub extensions: Option<Map<String, Value>>,
}

/// A dialog update; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct DialogUpdate {
    pub name: Option<Option<String>>,
    pub description: Option<Option<String>>,
    pub photo: Option<Option<String>>,
    pub data: Option<Map<String, Value>>,
    pub extensions: Option<Map<String, Value>>,
    pub push_occupants: Vec<i64>,
    pub pull_occupants: Vec<i64>,
    pub push_admins: Vec<i64>,
    pub pull_admins: Vec<i64>,
    pub push_pins: Vec<ObjectId>,
    pub pull_pins: Vec<ObjectId>,
}

#[derive(Debug, Clone, Default)]
pub struct DeleteOutcome {
    pub deleted: Vec<ObjectId>,
    pub not_found: Vec<ObjectId>,
    pub forbidden: Vec<ObjectId>,
}

#[derive(Debug, Clone, Default)]
pub struct NewMessage {
    /// The client's id when it sent a valid one (XMPP stanza id), so markers and REST agree.
    pub id: Option<ObjectId>,
    pub dialog_id: Option<ObjectId>,
    pub recipient_id: Option<i64>,
    pub body: Option<String>,
    pub date_sent: Option<i64>,
    pub attachments: Vec<Value>,
    pub custom: Map<String, Value>,
    pub markable: bool,
}

/// A dialog as one user sees it.
#[derive(Debug, Clone)]
pub struct DialogView {
    pub dialog: Dialog,
    pub state: MemberState,
}

pub struct SearchResults {
    pub dialogs: Vec<DialogView>,
    pub messages: Vec<Message>,
    pub users: Vec<User>,
}

const MAX_NAME: usize = 200;
const MAX_TEXT: usize = 1000;
const MAX_BODY: usize = 64 * 1024;
const MAX_OCCUPANTS: usize = 1000;

pub struct Chat {
    pub(crate) store: Arc<dyn ChatStore>,
    pub(crate) accounts: Arc<dyn AccountStore>,
    /// Membership changes for live rooms (see [`crate::rooms`]).
    pub(crate) events: crate::rooms::EventSink,
    /// Who may send to whom (see [`crate::send`]).
    pub(crate) privacy: Arc<crate::Privacy>,
    /// Live delivery, once a real-time face has plugged in (see [`crate::send`]).
    pub(crate) live: std::sync::OnceLock<Arc<dyn crate::Realtime>>,
}

fn check_len(field: &str, v: &Option<String>, max: usize) -> Result<()> {
    match v {
        Some(s) if s.chars().count() > max => Err(Error::invalid(
            field,
            format!("is too long (maximum is {max} characters)"),
        )),
        _ => Ok(()),
    }
}

fn forbidden() -> Error {
    Error::forbidden("You don't have appropriate permissions to perform this operation")
}

/// A new dialog with nothing set beyond its type and owner.
fn blank_dialog(app: i64, kind: DialogType, owner: i64, now: i64) -> Dialog {
    Dialog {
        id: ObjectId::generate(),
        app_id: app,
        kind,
        owner_id: owner,
        name: None,
        description: None,
        photo: None,
        occupants_ids: Vec::new(),
        occupants_count: 0,
        admins_ids: Vec::new(),
        pinned_messages_ids: Vec::new(),
        data: None,
        extensions: None,
        last_message_delivered_ids: Vec::new(),
        last_message_read_ids: Vec::new(),
        last_message: None,
        last_message_date_sent: None,
        last_message_id: None,
        last_message_user_id: None,
        created_at: now,
        updated_at: now,
    }
}

fn dialog_not_found() -> Error {
    Error::not_found("Dialog not found")
}

impl Chat {
    pub fn new(
        store: Arc<dyn ChatStore>,
        accounts: Arc<dyn AccountStore>,
        privacy: Arc<crate::Privacy>,
    ) -> Self {
        Self {
            store,
            accounts,
            events: Default::default(),
            privacy,
            live: std::sync::OnceLock::new(),
        }
    }

    /// Fails unless every id is a user of the app.
    async fn require_users(&self, app: i64, ids: &[i64]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let unique: BTreeSet<i64> = ids.iter().copied().collect();
        let query = UserQuery {
            ids: Some(unique.iter().copied().collect()),
            limit: 0,
            ..Default::default()
        };
        let (_, found) = self.accounts.list_users(AppId::new(app)?, &query).await?;
        if found as usize != unique.len() {
            return Err(Error::invalid("occupants_ids", "contains unknown users"));
        }
        Ok(())
    }

    /// Loads a dialog with the actor's role and membership; unknown or foreign ids are 404.
    async fn load(
        &self,
        app: i64,
        actor: Actor,
        id: ObjectId,
    ) -> Result<(Dialog, Role, Option<Membership>)> {
        let dialog = self
            .store
            .dialog(app, id)
            .await?
            .ok_or_else(dialog_not_found)?;
        match actor {
            Actor::Admin => Ok((dialog, Role::Owner, None)),
            Actor::User(user) => {
                let membership = self.store.membership(id, user).await?;
                let member = membership.as_ref().is_some_and(|m| m.occupant);
                let role = dialog.role_of(user, member);
                Ok((dialog, role, membership))
            }
        }
    }

    /// A dialog the user may read, or 404 (outsiders do not learn it exists).
    async fn readable(
        &self,
        app: i64,
        user: i64,
        id: ObjectId,
    ) -> Result<(Dialog, Role, Option<Membership>)> {
        let loaded = self.load(app, Actor::User(user), id).await?;
        if !allowed(loaded.0.kind, loaded.1, Action::Read) {
            return Err(dialog_not_found());
        }
        Ok(loaded)
    }

    // ---- dialogs ----

    /// `POST /chat/Dialog` (and the admin API's create, which alone may make broadcasts).
    pub async fn create_dialog(
        &self,
        app: i64,
        owner: i64,
        new: NewDialog,
        actor: Actor,
    ) -> Result<DialogView> {
        let kind = new
            .kind
            .ok_or_else(|| Error::invalid("type", "can't be blank"))?;
        if kind == DialogType::Broadcast && actor != Actor::Admin {
            return Err(Error::forbidden(
                "Broadcast dialogs can only be created through the admin API",
            ));
        }
        check_len("name", &new.name, MAX_NAME)?;
        check_len("description", &new.description, MAX_TEXT)?;
        check_len("photo", &new.photo, MAX_TEXT)?;
        let mut occupants: BTreeSet<i64> = new.occupants_ids.iter().copied().collect();
        occupants.insert(owner);
        if occupants.len() > MAX_OCCUPANTS {
            return Err(Error::invalid(
                "occupants_ids",
                format!("at most {MAX_OCCUPANTS} occupants"),
            ));
        }
        let now = now_millis();
        let mut private_key = None;
        match kind {
            DialogType::Private => {
                if occupants.len() != 2 {
                    return Err(Error::invalid(
                        "occupants_ids",
                        "a private dialog needs exactly one other user",
                    ));
                }
                let v: Vec<i64> = occupants.iter().copied().collect();
                let key = format!("{}:{}", v[0], v[1]);
                if let Some(existing) = self.store.find_private_dialog(app, &key).await? {
                    return self.view(app, owner, existing).await;
                }
                private_key = Some(key);
            }
            DialogType::Group => {
                if new.name.as_deref().is_none_or(|n| n.trim().is_empty()) {
                    return Err(Error::invalid("name", "can't be blank"));
                }
                if new.occupants_ids.is_empty() {
                    return Err(Error::invalid("occupants_ids", "can't be blank"));
                }
            }
            DialogType::Public | DialogType::Broadcast => {
                if new.name.as_deref().is_none_or(|n| n.trim().is_empty()) {
                    return Err(Error::invalid("name", "can't be blank"));
                }
            }
        }
        let members: Vec<i64> = match kind {
            DialogType::Group | DialogType::Private => occupants.into_iter().collect(),
            // The owner subscribes to their public dialog; broadcasts reach everyone anyway.
            DialogType::Public => vec![owner],
            DialogType::Broadcast => Vec::new(),
        };
        self.require_users(app, &members).await?;
        self.require_users(app, &[owner]).await?;
        let mut admins: Vec<i64> = Vec::new();
        for a in &new.admins_ids {
            if *a != owner && !admins.contains(a) {
                admins.push(*a);
            }
        }
        if !admins.is_empty() {
            if kind == DialogType::Private {
                return Err(Error::invalid(
                    "admins_ids",
                    "private dialogs have no admins",
                ));
            }
            if admins.len() > MAX_ADMINS {
                return Err(Error::invalid(
                    "admins_ids",
                    format!("at most {MAX_ADMINS} admins"),
                ));
            }
            if kind == DialogType::Group && admins.iter().any(|a| !members.contains(a)) {
                return Err(Error::invalid("admins_ids", "admins must be occupants"));
            }
            self.require_users(app, &admins).await?;
        }
        let private = kind == DialogType::Private;
        let dialog = Dialog {
            name: if private { None } else { new.name },
            description: new.description,
            photo: if private { None } else { new.photo },
            admins_ids: admins,
            data: new.data,
            extensions: new.extensions,
            ..blank_dialog(app, kind, owner, now)
        };
        let id = self
            .store
            .insert_dialog(&dialog, private_key.as_deref(), &members)
            .await?;
        self.view(app, owner, id).await
    }

    /// The id of the private dialog of `sender` and `recipient`, created when missing (as
    /// `create_dialog` would, owned by `sender`); `None` when a user does not exist or both are
    /// the same. For 1:1 XMPP messages, which need only the id: no view is loaded.
    pub async fn private_dialog_id(
        &self,
        app: i64,
        sender: i64,
        recipient: i64,
    ) -> Result<Option<ObjectId>> {
        if sender == recipient {
            return Ok(None);
        }
        let (low, high) = (sender.min(recipient), sender.max(recipient));
        // Most pairs already have their dialog (e.g. after a restart): a read, without the write lock.
        if let Some(id) = self
            .store
            .find_private_dialog(app, &format!("{low}:{high}"))
            .await?
        {
            return Ok(Some(id));
        }
        // A new pair, one statement: the store checks both users, inserts the dialog and its
        // members, and falls back to a lookup only when nothing was inserted.
        let dialog = blank_dialog(app, DialogType::Private, sender, now_millis());
        self.store.create_private_dialog(&dialog, low, high).await
    }

    async fn view(&self, app: i64, user: i64, id: ObjectId) -> Result<DialogView> {
        let dialog = self
            .store
            .dialog(app, id)
            .await?
            .ok_or_else(dialog_not_found)?;
        let state = self
            .store
            .membership(id, user)
            .await?
            .map(|m| m.state)
            .unwrap_or_default();
        Ok(DialogView { dialog, state })
    }

    pub async fn dialog_for(&self, app: i64, actor: Actor, id: ObjectId) -> Result<DialogView> {
        match actor {
            Actor::Admin => {
                let dialog = self
                    .store
                    .dialog(app, id)
                    .await?
                    .ok_or_else(dialog_not_found)?;
                Ok(DialogView {
                    dialog,
                    state: MemberState::default(),
                })
            }
            Actor::User(user) => {
                self.readable(app, user, id).await?;
                self.view(app, user, id).await
            }
        }
    }

    pub async fn list_dialogs(
        &self,
        app: i64,
        actor: Actor,
        query: &Query,
    ) -> Result<(Vec<DialogView>, u64)> {
        let viewer = match actor {
            Actor::User(u) => Viewer::User(u),
            Actor::Admin => Viewer::Admin,
        };
        let (items, total) = self.store.list_dialogs(app, viewer, query).await?;
        Ok((
            items
                .into_iter()
                .map(|(dialog, state)| DialogView { dialog, state })
                .collect(),
            total,
        ))
    }

    pub async fn admin_info(&self, id: ObjectId) -> Result<confab_store::chat::AdminDialogInfo> {
        self.store.admin_dialog_info(id).await
    }

    /// `PUT /chat/Dialog/{id}`: each part of the update is checked against the roles table.
    pub async fn update_dialog(
        &self,
        app: i64,
        actor: Actor,
        id: ObjectId,
        up: DialogUpdate,
    ) -> Result<DialogView> {
        let (mut dialog, role, _) = self.load(app, actor, id).await?;
        let me = match actor {
            Actor::User(u) => u,
            Actor::Admin => dialog.owner_id,
        };
        if !allowed(dialog.kind, role, Action::Read) {
            return Err(dialog_not_found());
        }
        let may = |action: Action| allowed(dialog.kind, role, action);
        let info = up.name.is_some()
            || up.description.is_some()
            || up.photo.is_some()
            || up.data.is_some();
        // Leaving a group (pulling oneself) needs no privilege.
        let pulls_others = up.pull_occupants.iter().any(|u| *u != me);
        if (info && !may(Action::EditInfo))
            || (!up.push_occupants.is_empty() && !may(Action::AddOccupants))
            || (pulls_others && !may(Action::RemoveOccupants))
            || (!up.pull_occupants.is_empty() && !matches!(dialog.kind, DialogType::Group))
            || ((!up.push_admins.is_empty() || !up.pull_admins.is_empty())
                && !may(Action::ManageAdmins))
            || ((!up.push_pins.is_empty() || !up.pull_pins.is_empty()) && !may(Action::Pin))
        {
            return Err(forbidden());
        }
        if up.pull_occupants.contains(&dialog.owner_id) && me != dialog.owner_id {
            return Err(forbidden());
        }
        // Validate everything before changing anything.
        check_len("name", &up.name.clone().flatten(), MAX_NAME)?;
        check_len("description", &up.description.clone().flatten(), MAX_TEXT)?;
        check_len("photo", &up.photo.clone().flatten(), MAX_TEXT)?;
        if matches!(&up.name, Some(None))
            || matches!(&up.name, Some(Some(n)) if n.trim().is_empty())
        {
            return Err(Error::invalid("name", "can't be blank"));
        }
        self.require_users(app, &up.push_occupants).await?;
        self.require_users(app, &up.push_admins).await?;
        let mut occupants: BTreeSet<i64> = dialog.occupants_ids.iter().copied().collect();
        occupants.extend(up.push_occupants.iter().copied());
        for u in &up.pull_occupants {
            occupants.remove(u);
        }
        if occupants.len() > MAX_OCCUPANTS {
            return Err(Error::invalid(
                "occupants_ids",
                format!("at most {MAX_OCCUPANTS} occupants"),
            ));
        }
        let mut admins: Vec<i64> = dialog.admins_ids.clone();
        for a in &up.push_admins {
            if !admins.contains(a) && *a != dialog.owner_id {
                admins.push(*a);
            }
        }
        admins.retain(|a| !up.pull_admins.contains(a) && !up.pull_occupants.contains(a));
        if admins.len() > MAX_ADMINS {
            return Err(Error::invalid(
                "admins_ids",
                format!("at most {MAX_ADMINS} admins"),
            ));
        }
        if dialog.kind == DialogType::Group && admins.iter().any(|a| !occupants.contains(a)) {
            return Err(Error::invalid("admins_ids", "admins must be occupants"));
        }
        for pin in &up.push_pins {
            let found = self.store.message(app, *pin).await?;
            if found.is_none_or(|m| m.dialog_id != id) {
                return Err(Error::invalid(
                    "pinned_messages_ids",
                    "contains unknown messages",
                ));
            }
        }
        let mut pins = dialog.pinned_messages_ids.clone();
        for p in &up.push_pins {
            let p = p.to_string();
            if !pins.contains(&p) {
                pins.push(p);
            }
        }
        pins.retain(|p| !up.pull_pins.iter().any(|x| x.to_string() == *p));

        if let Some(n) = up.name {
            dialog.name = n;
        }
        if let Some(d) = up.description {
            dialog.description = d;
        }
        if let Some(p) = up.photo {
            dialog.photo = p;
        }
        if let Some(data) = up.data {
            let merged = dialog.data.get_or_insert_with(Map::new);
            for (k, v) in data {
                merged.insert(k, v);
            }
        }
        if let Some(ext) = up.extensions {
            let merged = dialog.extensions.get_or_insert_with(Map::new);
            for (k, v) in ext {
                merged.insert(k, v);
            }
        }
        dialog.admins_ids = admins;
        dialog.pinned_messages_ids = pins;
        dialog.updated_at = now_millis();
        self.store.save_dialog(&dialog).await?;
        let added: Vec<i64> = up
            .push_occupants
            .iter()
            .copied()
            .filter(|u| !dialog.occupants_ids.contains(u))
            .collect();
        if !added.is_empty() {
            self.store
                .add_members(id, &added, dialog.updated_at)
                .await?;
        }
        if !up.pull_occupants.is_empty() {
            self.store.remove_members(id, &up.pull_occupants).await?;
        }
        self.events.emit(crate::rooms::DialogChanged {
            app,
            dialog_id: id,
            actor: match actor {
                Actor::User(u) => Some(u),
                Actor::Admin => None,
            },
            added,
            removed: up.pull_occupants.clone(),
            deleted: false,
        });
        self.view(app, me, id).await
    }

    /// `DELETE /chat/Dialog/{ids}`: for the caller only, or for everyone with `force` (owner).
    pub async fn delete_dialogs(
        &self,
        app: i64,
        user: i64,
        ids: &[ObjectId],
        force: bool,
    ) -> Result<DeleteOutcome> {
        let mut out = DeleteOutcome::default();
        for id in ids {
            let loaded = match self.load(app, Actor::User(user), *id).await {
                Ok(l) => l,
                Err(e) if e.kind == confab_core::ErrorKind::NotFound => {
                    out.not_found.push(*id);
                    continue;
                }
                Err(e) => return Err(e),
            };
            let (dialog, role, _) = loaded;
            if !allowed(dialog.kind, role, Action::Read) {
                out.not_found.push(*id);
                continue;
            }
            if force {
                if !allowed(dialog.kind, role, Action::DeleteDialogForAll) {
                    out.forbidden.push(*id);
                    continue;
                }
                self.store.delete_dialog(*id).await?;
                self.events.emit(crate::rooms::DialogChanged {
                    app,
                    dialog_id: *id,
                    actor: Some(user),
                    added: Vec::new(),
                    removed: Vec::new(),
                    deleted: true,
                });
            } else {
                match dialog.kind {
                    // Leaving a group or public dialog removes the user from it.
                    DialogType::Group | DialogType::Public => {
                        self.store.remove_members(*id, &[user]).await?;
                        if dialog.admins_ids.contains(&user) {
                            let mut d = dialog.clone();
                            d.admins_ids.retain(|a| *a != user);
                            self.store.save_dialog(&d).await?;
                        }
                        self.events.emit(crate::rooms::DialogChanged {
                            app,
                            dialog_id: *id,
                            actor: Some(user),
                            added: Vec::new(),
                            removed: vec![user],
                            deleted: false,
                        });
                    }
                    DialogType::Private | DialogType::Broadcast => {
                        self.store
                            .set_member_state(*id, user, MemberChange::Hidden(true), now_millis())
                            .await?;
                    }
                }
            }
            out.deleted.push(*id);
        }
        Ok(out)
    }

    /// `DELETE /chat/Dialog/clearHistory/{id}`.
    pub async fn clear_history(&self, app: i64, user: i64, id: ObjectId) -> Result<()> {
        let (dialog, _, _) = self.readable(app, user, id).await?;
        if let Some(last) = dialog.last_message_id.and_then(|l| l.parse().ok()) {
            self.store
                .set_member_state(id, user, MemberChange::ClearedBefore(last), now_millis())
                .await?;
        }
        Ok(())
    }

    pub async fn subscribe(&self, app: i64, user: i64, id: ObjectId) -> Result<DialogView> {
        let dialog = self
            .store
            .dialog(app, id)
            .await?
            .ok_or_else(dialog_not_found)?;
        if dialog.kind != DialogType::Public {
            return Err(Error::forbidden("Only public dialogs can be subscribed to"));
        }
        self.store.add_members(id, &[user], now_millis()).await?;
        self.events.emit(crate::rooms::DialogChanged {
            app,
            dialog_id: id,
            actor: Some(user),
            added: vec![user],
            removed: Vec::new(),
            deleted: false,
        });
        self.view(app, user, id).await
    }

    pub async fn unsubscribe(&self, app: i64, user: i64, id: ObjectId) -> Result<()> {
        let dialog = self
            .store
            .dialog(app, id)
            .await?
            .ok_or_else(dialog_not_found)?;
        if dialog.kind != DialogType::Public {
            return Err(Error::forbidden(
                "Only public dialogs can be unsubscribed from",
            ));
        }
        if user == dialog.owner_id {
            return Err(Error::forbidden("The owner cannot unsubscribe"));
        }
        self.store.remove_members(id, &[user]).await?;
        self.events.emit(crate::rooms::DialogChanged {
            app,
            dialog_id: id,
            actor: Some(user),
            added: Vec::new(),
            removed: vec![user],
            deleted: false,
        });
        Ok(())
    }

    pub async fn notifications(&self, app: i64, user: i64, id: ObjectId) -> Result<bool> {
        let (_, _, membership) = self.readable(app, user, id).await?;
        Ok(membership.is_none_or(|m| m.state.notifications))
    }

    pub async fn set_notifications(
        &self,
        app: i64,
        user: i64,
        id: ObjectId,
        enabled: bool,
    ) -> Result<bool> {
        self.readable(app, user, id).await?;
        self.store
            .set_member_state(id, user, MemberChange::Notifications(enabled), now_millis())
            .await?;
        Ok(enabled)
    }

    /// Admin API: mute or unmute a dialog for one user (`silent_ids`).
    pub async fn set_muted(&self, app: i64, id: ObjectId, user: i64, muted: bool) -> Result<()> {
        self.store
            .dialog(app, id)
            .await?
            .ok_or_else(dialog_not_found)?;
        self.require_users(app, &[user]).await?;
        self.store
            .set_member_state(id, user, MemberChange::Muted(muted), now_millis())
            .await
    }

    /// `GET /chat/Dialog/{id}/occupants`: users of a dialog, paged.
    pub async fn occupants(
        &self,
        app: i64,
        user: i64,
        id: ObjectId,
        limit: u32,
        skip: u32,
    ) -> Result<(Vec<User>, u64)> {
        let dialog = self
            .store
            .dialog(app, id)
            .await?
            .ok_or_else(dialog_not_found)?;
        if dialog.kind == DialogType::Group || dialog.kind == DialogType::Private {
            self.readable(app, user, id).await?;
        }
        let (ids, total) = self.store.members(id, limit, skip).await?;
        let query = UserQuery {
            ids: Some(ids),
            limit,
            skip: 0,
            ..Default::default()
        };
        let (users, _) = self.accounts.list_users(AppId::new(app)?, &query).await?;
        Ok((users, total))
    }

    // ---- messages ----

    /// Stores a message: authorised by the roles table, `last_message*` and unread counts
    /// updated in the same transaction. Private dialogs are created on first message.
    pub async fn create_message(&self, app: i64, sender: i64, new: NewMessage) -> Result<Message> {
        check_len("message", &new.body, MAX_BODY)?;
        let dialog_id = match (new.dialog_id, new.recipient_id) {
            (Some(d), _) => d,
            (None, Some(r)) => {
                let view = self
                    .create_dialog(
                        app,
                        sender,
                        NewDialog {
                            kind: Some(DialogType::Private),
                            occupants_ids: vec![r],
                            ..Default::default()
                        },
                        Actor::User(sender),
                    )
                    .await?;
                view.dialog.id
            }
            (None, None) => return Err(Error::invalid("chat_dialog_id", "can't be blank")),
        };
        // The same rules as `readable` and the roles table, from one light query: the dialog's
        // occupant list and receipts are not needed to post.
        let target = self
            .store
            .post_target(app, dialog_id, sender)
            .await?
            .ok_or_else(dialog_not_found)?;
        let role = target.role(sender);
        if !allowed(target.kind, role, Action::Read) {
            return Err(dialog_not_found());
        }
        if !allowed(target.kind, role, Action::Post) {
            return Err(forbidden());
        }
        let recipient_id = target.recipient_id;
        if let Some(r) = new.recipient_id {
            if target.kind == DialogType::Private && r != recipient_id {
                return Err(Error::invalid(
                    "recipient_id",
                    "is not the other occupant of this dialog",
                ));
            }
        }
        let now = now_millis();
        let message = Message {
            id: new.id.unwrap_or_else(ObjectId::generate),
            app_id: app,
            dialog_id,
            sender_id: sender,
            recipient_id,
            body: new.body,
            date_sent: new.date_sent.unwrap_or(now / 1000),
            attachments: new.attachments,
            custom: new.custom,
            read_ids: vec![sender],
            delivered_ids: vec![sender],
            deleted_for_ids: Vec::new(),
            reactions: Map::new(),
            markable: new.markable,
            views_count: 0,
            edited_at: None,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_message(&message).await?;
        Ok(message)
    }

    /// `GET /chat/Message`: marks the returned page read unless told not to.
    pub async fn list_messages(
        &self,
        app: i64,
        user: i64,
        dialog_id: ObjectId,
        query: &Query,
        mark_read: bool,
    ) -> Result<(Vec<Message>, u64)> {
        let (_, _, membership) = self.readable(app, user, dialog_id).await?;
        let cleared = membership.and_then(|m| m.cleared_before);
        let (mut items, total) = self
            .store
            .list_messages(dialog_id, Some(user), cleared, query, query.limit == 0)
            .await?;
        if mark_read && query.limit > 0 {
            let unread: Vec<ObjectId> = items
                .iter()
                .filter(|m| !m.read_ids.contains(&user))
                .map(|m| m.id)
                .collect();
            if !unread.is_empty() {
                self.ensure_state(dialog_id, user).await?;
                self.store
                    .mark_messages(dialog_id, user, Some(&unread), true)
                    .await?;
                for m in items.iter_mut().filter(|m| unread.contains(&m.id)) {
                    m.read_ids.push(user);
                    if !m.delivered_ids.contains(&user) {
                        m.delivered_ids.push(user);
                    }
                }
            }
        }
        Ok((items, total))
    }

    /// Broadcast readers get a state row before their unread count changes.
    async fn ensure_state(&self, dialog: ObjectId, user: i64) -> Result<()> {
        if self.store.membership(dialog, user).await?.is_none() {
            self.store
                .set_member_state(dialog, user, MemberChange::Hidden(false), now_millis())
                .await?;
        }
        Ok(())
    }

    pub async fn message_for(
        &self,
        app: i64,
        user: i64,
        id: ObjectId,
    ) -> Result<(Message, Dialog, Role)> {
        let message = self
            .store
            .message(app, id)
            .await?
            .ok_or_else(|| Error::not_found("Message not found"))?;
        let (dialog, role, _) = self
            .readable(app, user, message.dialog_id)
            .await
            .map_err(|_| Error::not_found("Message not found"))?;
        if message.deleted_for_ids.contains(&user) {
            return Err(Error::not_found("Message not found"));
        }
        Ok((message, dialog, role))
    }

    /// Marks one message (or, without an id, the whole dialog) read or delivered.
    pub async fn mark(
        &self,
        app: i64,
        user: i64,
        dialog_id: Option<ObjectId>,
        id: Option<ObjectId>,
        read: bool,
    ) -> Result<()> {
        let dialog_id = match (id, dialog_id) {
            (Some(mid), d) => {
                let (m, _, _) = self.message_for(app, user, mid).await?;
                if d.is_some_and(|d| d != m.dialog_id) {
                    return Err(Error::invalid(
                        "chat_dialog_id",
                        "does not match the message",
                    ));
                }
                m.dialog_id
            }
            (None, Some(d)) => {
                self.readable(app, user, d).await?;
                d
            }
            (None, None) => return Err(Error::invalid("chat_dialog_id", "can't be blank")),
        };
        self.ensure_state(dialog_id, user).await?;
        let ids = id.map(|i| vec![i]);
        self.store
            .mark_messages(dialog_id, user, ids.as_deref(), read)
            .await
    }

    /// Edits the body of one's own message.
    pub async fn edit_message(
        &self,
        app: i64,
        user: i64,
        id: ObjectId,
        body: Option<String>,
    ) -> Result<Message> {
        check_len("message", &body, MAX_BODY)?;
        let (message, _, _) = self.message_for(app, user, id).await?;
        if message.sender_id != user {
            return Err(forbidden());
        }
        self.store
            .edit_message(id, body.as_deref(), now_millis())
            .await?;
        self.store
            .message(app, id)
            .await?
            .ok_or_else(|| Error::not_found("Message not found"))
    }

    /// `DELETE /chat/Message/{ids}`: for me, or with `force` for everyone when the roles allow.
    /// All ids are checked before anything is deleted.
    pub async fn delete_messages(
        &self,
        app: i64,
        user: i64,
        ids: &[ObjectId],
        force: bool,
    ) -> Result<Vec<Message>> {
        let mut found = Vec::new();
        for id in ids {
            let (m, dialog, role) = self.message_for(app, user, *id).await?;
            let ok = if force {
                allowed(dialog.kind, role, Action::DeleteAnyMessageForAll)
                    || (m.sender_id == user
                        && allowed(dialog.kind, role, Action::DeleteOwnMessageForAll))
            } else {
                allowed(dialog.kind, role, Action::DeleteMessageForMe)
            };
            if !ok {
                return Err(forbidden());
            }
            found.push(m);
        }
        for m in &found {
            if force {
                self.store.delete_messages(m.dialog_id, &[m.id]).await?;
            } else {
                self.store
                    .delete_messages_for_user(m.dialog_id, user, &[m.id])
                    .await?;
            }
        }
        Ok(found)
    }

    /// `GET /chat/Message/unread`: per-dialog counts and their total.
    pub async fn unread(
        &self,
        app: i64,
        user: i64,
        dialogs: Option<&[ObjectId]>,
    ) -> Result<(i64, Vec<(ObjectId, i64)>)> {
        // Without dialog ids only the total is asked for (the seed: "do not use this parameter").
        let Some(ids) = dialogs else {
            return Ok((self.store.unread_total(app, user).await?, Vec::new()));
        };
        let counts = self.store.unread_counts(app, user, Some(ids)).await?;
        let total = counts.iter().map(|(_, n)| n).sum();
        Ok((total, counts))
    }

    /// `PUT /chat/Message/{id}/reactions`.
    pub async fn react(
        &self,
        app: i64,
        user: i64,
        id: ObjectId,
        add: Option<String>,
        remove: Option<String>,
    ) -> Result<()> {
        let (message, _, _) = self.message_for(app, user, id).await?;
        let mut reactions = message.reactions;
        for emoji in [&add, &remove].into_iter().flatten() {
            if emoji.is_empty() || emoji.chars().count() > 16 {
                return Err(Error::invalid("reaction", "must be 1 to 16 characters"));
            }
        }
        if let Some(r) = remove {
            if let Some(Value::Array(users)) = reactions.get_mut(&r) {
                users.retain(|u| u.as_i64() != Some(user));
                if users.is_empty() {
                    reactions.remove(&r);
                }
            }
        }
        if let Some(a) = add {
            let users = reactions
                .entry(a)
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(list) = users {
                if !list.iter().any(|u| u.as_i64() == Some(user)) {
                    list.push(Value::from(user));
                }
            }
        }
        self.store.set_reactions(id, &reactions, now_millis()).await
    }

    pub async fn reactions(&self, app: i64, user: i64, id: ObjectId) -> Result<Map<String, Value>> {
        Ok(self.message_for(app, user, id).await?.0.reactions)
    }

    /// `GET /chat/search`: messages through the full-text index, dialogs and users by name.
    pub async fn search(
        &self,
        app: i64,
        user: i64,
        search: MessageSearch,
        dialog_query: &Query,
    ) -> Result<SearchResults> {
        let messages = self.store.search_messages(&search).await?;
        let (dialogs, _) = self
            .list_dialogs(app, Actor::User(user), dialog_query)
            .await?;
        let mut user_ids: BTreeSet<i64> = BTreeSet::new();
        for d in &dialogs {
            user_ids.extend(d.dialog.occupants_ids.iter().copied());
        }
        for m in &messages {
            user_ids.insert(m.sender_id);
        }
        let users = if user_ids.is_empty() {
            Vec::new()
        } else {
            let q = UserQuery {
                ids: Some(user_ids.into_iter().collect()),
                limit: 100,
                ..Default::default()
            };
            self.accounts.list_users(AppId::new(app)?, &q).await?.0
        };
        Ok(SearchResults {
            dialogs,
            messages,
            users,
        })
    }

    /// Admin API: every message of the app.
    pub async fn admin_messages(&self, app: i64, query: &Query) -> Result<(Vec<Message>, u64)> {
        self.store.list_app_messages(app, query).await
    }
}
