//! Dialogs: create (private ones on first message too), read, list, update, delete, membership,
//! subscriptions and per-user settings.

use super::*;

impl Chat {
    /// `POST /chat/Dialog` (and the admin API's create, which alone may make broadcasts).
    pub async fn create_dialog(
        &self,
        app: AppId,
        owner: UserId,
        new: NewDialog,
        actor: Actor,
    ) -> Result<DialogView> {
        let (app, owner) = (app.get(), owner.get());
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
        let mut private_id = None;
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
                let pair = (AppId::new(app)?, UserId::new(v[0])?, UserId::new(v[1])?);
                private_id = Some(self.new_private_dialog_id(pair));
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
            // The id the pair's unsaved messages carried, if they did (see `new_private_dialog_id`).
            id: private_id.unwrap_or_else(ObjectId::generate),
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
        app: AppId,
        sender: UserId,
        recipient: UserId,
    ) -> Result<Option<ObjectId>> {
        let (low, high) = (sender.min(recipient), sender.max(recipient));
        // Most pairs already have their dialog (e.g. after a restart): a read, without the write lock.
        if let Some(id) = self
            .store
            .find_private_dialog(app.get(), &format!("{low}:{high}"))
            .await?
        {
            return Ok(Some(id));
        }
        let id = self.new_private_dialog_id((app, low, high));
        self.create_private_dialog_as(app, sender, recipient, id)
            .await
    }

    /// Creates the pair's private dialog with id `new_id` (see `new_private_dialog_id`); when the
    /// pair already has one, that one's id. For callers that already looked the pair up.
    pub(crate) async fn create_private_dialog_as(
        &self,
        app: AppId,
        sender: UserId,
        recipient: UserId,
        new_id: ObjectId,
    ) -> Result<Option<ObjectId>> {
        let (app, sender, recipient) = (app.get(), sender.get(), recipient.get());
        if sender == recipient {
            return Ok(None);
        }
        let (low, high) = (sender.min(recipient), sender.max(recipient));
        // One statement: the store checks both users, inserts the dialog and its members, and
        // falls back to a lookup only when nothing was inserted.
        let dialog = Dialog {
            id: new_id,
            ..blank_dialog(app, DialogType::Private, sender, now_millis())
        };
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

    pub async fn dialog_for(&self, app: AppId, actor: Actor, id: DialogId) -> Result<DialogView> {
        let id = id.object_id();
        let app = app.get();
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
        app: AppId,
        actor: Actor,
        query: &Query,
    ) -> Result<(Vec<DialogView>, u64)> {
        let app = app.get();
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

    pub async fn admin_info(&self, id: DialogId) -> Result<confab_store::chat::AdminDialogInfo> {
        let id = id.object_id();
        self.store.admin_dialog_info(id).await
    }

    /// `PUT /chat/Dialog/{id}`: each part of the update is checked against the roles table.
    pub async fn update_dialog(
        &self,
        app: AppId,
        actor: Actor,
        id: DialogId,
        up: DialogUpdate,
    ) -> Result<DialogView> {
        let id = id.object_id();
        let app = app.get();
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
        self.publish_dialog_changed(crate::rooms::DialogChanged {
            app,
            dialog_id: id,
            actor: match actor {
                Actor::User(u) => Some(u),
                Actor::Admin => None,
            },
            added,
            removed: up.pull_occupants.clone(),
            deleted: false,
        })
        .await;
        self.view(app, me, id).await
    }

    /// `DELETE /chat/Dialog/{ids}`: for the caller only, or for everyone with `force` (owner).
    pub async fn delete_dialogs(
        &self,
        app: AppId,
        user: UserId,
        ids: &[DialogId],
        force: bool,
    ) -> Result<DeleteOutcome> {
        let ids: Vec<ObjectId> = ids.iter().map(|i| i.object_id()).collect();
        let (app, user) = (app.get(), user.get());
        let mut out = DeleteOutcome::default();
        for id in &ids {
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
                self.publish_dialog_changed(crate::rooms::DialogChanged {
                    app,
                    dialog_id: *id,
                    actor: Some(user),
                    added: Vec::new(),
                    // Everyone who was in it: the faces tell them it is gone.
                    removed: dialog.occupants_ids.clone(),
                    deleted: true,
                })
                .await;
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
                        self.publish_dialog_changed(crate::rooms::DialogChanged {
                            app,
                            dialog_id: *id,
                            actor: Some(user),
                            added: Vec::new(),
                            removed: vec![user],
                            deleted: false,
                        })
                        .await;
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
    pub async fn clear_history(&self, app: AppId, user: UserId, id: DialogId) -> Result<()> {
        let id = id.object_id();
        let (app, user) = (app.get(), user.get());
        let (dialog, _, _) = self.readable(app, user, id).await?;
        if let Some(last) = dialog.last_message_id.and_then(|l| l.parse().ok()) {
            self.store
                .set_member_state(id, user, MemberChange::ClearedBefore(last), now_millis())
                .await?;
        }
        Ok(())
    }

    pub async fn subscribe(&self, app: AppId, user: UserId, id: DialogId) -> Result<DialogView> {
        let id = id.object_id();
        let (app, user) = (app.get(), user.get());
        let dialog = self
            .store
            .dialog(app, id)
            .await?
            .ok_or_else(dialog_not_found)?;
        if dialog.kind != DialogType::Public {
            return Err(Error::forbidden("Only public dialogs can be subscribed to"));
        }
        self.store.add_members(id, &[user], now_millis()).await?;
        self.publish_dialog_changed(crate::rooms::DialogChanged {
            app,
            dialog_id: id,
            actor: Some(user),
            added: vec![user],
            removed: Vec::new(),
            deleted: false,
        })
        .await;
        self.view(app, user, id).await
    }

    pub async fn unsubscribe(&self, app: AppId, user: UserId, id: DialogId) -> Result<()> {
        let id = id.object_id();
        let (app, user) = (app.get(), user.get());
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
        self.publish_dialog_changed(crate::rooms::DialogChanged {
            app,
            dialog_id: id,
            actor: Some(user),
            added: Vec::new(),
            removed: vec![user],
            deleted: false,
        })
        .await;
        Ok(())
    }

    pub async fn notifications(&self, app: AppId, user: UserId, id: DialogId) -> Result<bool> {
        let id = id.object_id();
        let (app, user) = (app.get(), user.get());
        let (_, _, membership) = self.readable(app, user, id).await?;
        Ok(membership.is_none_or(|m| m.state.notifications))
    }

    pub async fn set_notifications(
        &self,
        app: AppId,
        user: UserId,
        id: DialogId,
        enabled: bool,
    ) -> Result<bool> {
        let id = id.object_id();
        let (app, user) = (app.get(), user.get());
        self.readable(app, user, id).await?;
        self.store
            .set_member_state(id, user, MemberChange::Notifications(enabled), now_millis())
            .await?;
        Ok(enabled)
    }

    /// Admin API: mute or unmute a dialog for one user (`silent_ids`).
    pub async fn set_muted(
        &self,
        app: AppId,
        id: DialogId,
        user: UserId,
        muted: bool,
    ) -> Result<()> {
        let id = id.object_id();
        let (app, user) = (app.get(), user.get());
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
        app: AppId,
        user: UserId,
        id: DialogId,
        limit: u32,
        skip: u32,
    ) -> Result<(Vec<User>, u64)> {
        let id = id.object_id();
        let (app, user) = (app.get(), user.get());
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
}

/// The dialog id a pair's unsaved 1:1 messages carry while the pair has no dialog, derived from the
/// app and the pair: every node, before and after a restart, hands out the same one without a
/// lookup or a write. Unlike generated ids it does not follow creation time, and writing rows
/// under such ids scatters them over the indexes (a measured 2× the CPU for first stored
/// contacts), so dialogs get one only when its node knows it was handed out.
pub fn pair_dialog_id(app: i64, low: i64, high: i64) -> ObjectId {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"confab private dialog\0");
    for n in [app, low, high] {
        h.update(n.to_be_bytes());
    }
    let digest = h.finalize();
    let mut id = [0u8; 12];
    id.copy_from_slice(&digest[..12]);
    ObjectId::from_bytes(id)
}

#[cfg(test)]
mod tests {
    use super::pair_dialog_id;

    /// Dialogs already written under derived ids must keep being found by them: the derivation
    /// may never change.
    #[test]
    fn a_pairs_dialog_id_is_fixed_and_differs_by_app_and_pair() {
        assert_eq!(
            pair_dialog_id(1, 2, 3).to_string(),
            "322aa91f73899548c3bbfdc6"
        );
        assert_ne!(pair_dialog_id(1, 2, 3), pair_dialog_id(2, 2, 3));
        assert_ne!(pair_dialog_id(1, 2, 3), pair_dialog_id(1, 2, 4));
    }
}
