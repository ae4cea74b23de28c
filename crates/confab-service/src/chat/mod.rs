//! Dialogs and messages: the chat API's rules, once, for REST, XMPP and every other face.

mod dialogs;
pub use dialogs::pair_dialog_id;
mod messages;
mod search;

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::group_blocks::{Blocks, GroupBlocks};
use confab_core::chat::{
    allowed, Action, Dialog, DialogType, MemberState, Message, Role, MAX_ADMINS,
};
use confab_core::clock::now_millis;
use confab_core::model::{User, UserQuery};
use confab_core::query::{Field, Query, Sort};
use confab_core::{AppId, DialogId, Error, MessageId, ObjectId, Result, UserId};
use confab_store::{
    AccountStore, ChatStore, MemberChange, Membership, MessageSearch, PostTarget, Viewer,
};
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
    pub dialog_id: Option<DialogId>,
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
    /// Who may send to whom (see [`crate::send`]).
    pub(crate) privacy: Arc<crate::Privacy>,
    /// Where what happened goes for the live faces (see [`crate::bus`]).
    pub(crate) bus: Arc<dyn crate::Bus>,
    /// Each pair's private dialog, once known (see [`crate::history`]).
    pub(crate) pair_dialogs: crate::history::PairDialogs,
    /// Who is blocked in which group (see [`crate::group_blocks`]); none when not given.
    group_blocks: Option<Arc<GroupBlocks>>,
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
pub(crate) fn blank_dialog(app: i64, kind: DialogType, owner: i64, now: i64) -> Dialog {
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
        bus: Arc<dyn crate::Bus>,
    ) -> Self {
        Self {
            store,
            accounts,
            privacy,
            bus,
            pair_dialogs: Default::default(),
            group_blocks: None,
        }
    }

    /// Obeys the group blocks kept in `blocks`.
    pub fn with_group_blocks(mut self, blocks: Arc<GroupBlocks>) -> Self {
        self.group_blocks = Some(blocks);
        self
    }

    /// A group dialog's blocks: who hears nothing of it, who may not post in it.
    pub async fn group_blocks(&self, app: AppId, dialog: ObjectId) -> Arc<Blocks> {
        match &self.group_blocks {
            Some(g) => g.of(app, dialog).await,
            None => Arc::default(),
        }
    }

    /// The bus the live faces subscribe to.
    pub fn bus(&self) -> &Arc<dyn crate::Bus> {
        &self.bus
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
}
