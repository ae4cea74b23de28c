//! Messages: store, list (marking read), receipts, edits, deletions, unread counts and reactions.

use super::*;

impl Chat {
    /// Stores a message a live face delivers itself, and tells the other faces
    /// ([`crate::bus::Event::MessageRecorded`]) so their clients get it too.
    pub async fn record_live_message(
        &self,
        app: AppId,
        sender: UserId,
        new: NewMessage,
    ) -> Result<Message> {
        let message = self.create_message(app, sender, new).await?;
        self.tell_recorded(&message).await;
        Ok(message)
    }

    /// [`Self::record_live_message`] for a 1:1 message whose pair's private dialog the caller
    /// knows: the store checks that the sender is still one of its occupants as it writes, instead
    /// of being asked first (one round trip less per message on a networked store).
    pub(crate) async fn record_pair_message(
        &self,
        app: AppId,
        sender: UserId,
        recipient: UserId,
        dialog: DialogId,
        new: NewMessage,
    ) -> Result<Message> {
        // What the store's check stands for: a private dialog's two occupants.
        let target = PostTarget {
            kind: DialogType::Private,
            owner_id: 0,
            admins_ids: Vec::new(),
            member: true,
            recipient_id: recipient.get(),
        };
        let message = self
            .checked_message(app, sender, dialog.object_id(), &target, new)
            .await?;
        match self.store.insert_occupant_message(&message).await {
            Err(e) if e.kind == confab_core::ErrorKind::NotFound => return Err(dialog_not_found()),
            other => other?,
        }
        self.tell_recorded(&message).await;
        Ok(message)
    }

    async fn tell_recorded(&self, message: &Message) {
        self.bus
            .publish(crate::bus::Event::MessageRecorded(std::sync::Arc::new(
                message.clone(),
            )))
            .await;
    }

    /// Stores a message: authorised by the roles table, `last_message*` and unread counts
    /// updated in the same transaction. Private dialogs are created on first message.
    pub async fn create_message(
        &self,
        app: AppId,
        sender: UserId,
        new: NewMessage,
    ) -> Result<Message> {
        let (app_id, sender_id) = (app, sender);
        let (app, sender) = (app.get(), sender.get());
        check_len("message", &new.body, MAX_BODY)?;
        let dialog_id = match (new.dialog_id, new.recipient_id) {
            (Some(d), _) => d.object_id(),
            (None, Some(r)) => {
                let view = self
                    .create_dialog(
                        app_id,
                        sender_id,
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
        let message = self
            .checked_message(app_id, sender_id, dialog_id, &target, new)
            .await?;
        self.store.insert_message(&message).await?;
        Ok(message)
    }

    /// The message `sender` may post to the dialog `target` describes, checked against the roles
    /// table (and group blocks); not stored yet.
    async fn checked_message(
        &self,
        app_id: AppId,
        sender_id: UserId,
        dialog_id: ObjectId,
        target: &PostTarget,
        new: NewMessage,
    ) -> Result<Message> {
        let (app, sender) = (app_id.get(), sender_id.get());
        check_len("message", &new.body, MAX_BODY)?;
        let role = target.role(sender);
        if !allowed(target.kind, role, Action::Read) {
            return Err(dialog_not_found());
        }
        if !allowed(target.kind, role, Action::Post) {
            return Err(forbidden());
        }
        if target.kind == DialogType::Group {
            self.not_blocked_in(app_id, dialog_id, sender_id).await?;
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
        Ok(message)
    }

    /// `GET /chat/Message`: marks the returned page read unless told not to.
    pub async fn list_messages(
        &self,
        app: AppId,
        user: UserId,
        dialog_id: DialogId,
        query: &Query,
        mark_read: bool,
    ) -> Result<(Vec<Message>, u64)> {
        let dialog_id = dialog_id.object_id();
        let (app_id, user_id) = (app, user);
        let (app, user) = (app.get(), user.get());
        let (dialog, _, membership) = self.readable(app, user, dialog_id).await?;
        // A member blocked in a group hears nothing of it, its history included.
        if dialog.kind == DialogType::Group {
            self.not_blocked_in(app_id, dialog_id, user_id).await?;
        }
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
                let read = items.iter().filter(|m| unread.contains(&m.id)).cloned();
                self.read_over_rest(app_id, user_id, read.collect()).await;
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

    /// A message the user may read, with its dialog and the user's role there.
    pub async fn message_for(
        &self,
        app: AppId,
        user: UserId,
        id: MessageId,
    ) -> Result<(Message, Dialog, Role)> {
        let id = id.object_id();
        self.readable_message(app.get(), user.get(), id).await
    }

    async fn readable_message(
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

    /// Forbidden when `user` is blocked in the group dialog (see [`crate::group_blocks`]).
    async fn not_blocked_in(&self, app: AppId, dialog: ObjectId, user: UserId) -> Result<()> {
        match self.group_blocks(app, dialog).await.mute.contains(&user) {
            true => Err(Error::forbidden("You are blocked in this dialog")),
            false => Ok(()),
        }
    }

    /// `PUT /chat/Message[/{id}]`: [`Chat::mark`], then tells the other live faces which
    /// messages were read for the first time (at most the newest [`READS_TOLD`] of a dialog).
    pub async fn mark_and_tell(
        &self,
        app: AppId,
        user: UserId,
        dialog_id: Option<DialogId>,
        id: Option<MessageId>,
        read: bool,
    ) -> Result<()> {
        let newly_read = match read {
            true => self.unread_by(app, user, dialog_id, id).await?,
            false => Vec::new(),
        };
        self.mark(app, user, dialog_id, id, read).await?;
        let newly_read = newly_read.into_iter().map(|mut m| {
            m.read_ids.push(user.get());
            m
        });
        self.read_over_rest(app, user, newly_read.collect()).await;
        Ok(())
    }

    /// The messages `mark` would mark read for the first time: the one named, or the newest
    /// [`READS_TOLD`] of the dialog. Errors are left for `mark` to report.
    async fn unread_by(
        &self,
        app: AppId,
        user: UserId,
        dialog_id: Option<DialogId>,
        id: Option<MessageId>,
    ) -> Result<Vec<Message>> {
        let (app, user) = (app.get(), user.get());
        let found = match (id, dialog_id) {
            (Some(id), _) => match self.readable_message(app, user, id.object_id()).await {
                Ok((m, _, _)) => vec![m],
                Err(_) => return Ok(Vec::new()),
            },
            (None, Some(d)) => {
                let d = d.object_id();
                let Ok((_, _, membership)) = self.readable(app, user, d).await else {
                    return Ok(Vec::new());
                };
                let cleared = membership.and_then(|m| m.cleared_before);
                let newest = Query {
                    sort: Some(Sort {
                        field: Field::DateSent,
                        desc: true,
                    }),
                    limit: READS_TOLD,
                    ..Query::default()
                };
                self.store
                    .list_messages(d, Some(user), cleared, &newest, false)
                    .await?
                    .0
            }
            (None, None) => return Ok(Vec::new()),
        };
        Ok(found
            .into_iter()
            .filter(|m| !m.read_ids.contains(&user) && m.sender_id != user)
            .collect())
    }

    /// Marks one message (or, without an id, the whole dialog) read or delivered.
    pub async fn mark(
        &self,
        app: AppId,
        user: UserId,
        dialog_id: Option<DialogId>,
        id: Option<MessageId>,
        read: bool,
    ) -> Result<()> {
        let dialog_id = dialog_id.map(DialogId::object_id);
        let id = id.map(MessageId::object_id);
        let (app, user) = (app.get(), user.get());
        let dialog_id = match (id, dialog_id) {
            (Some(mid), d) => {
                let (m, _, _) = self.readable_message(app, user, mid).await?;
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
        app: AppId,
        user: UserId,
        id: MessageId,
        body: Option<String>,
    ) -> Result<Message> {
        let id = id.object_id();
        let (app, user) = (app.get(), user.get());
        check_len("message", &body, MAX_BODY)?;
        let (message, _, _) = self.readable_message(app, user, id).await?;
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
        app: AppId,
        user: UserId,
        ids: &[MessageId],
        force: bool,
    ) -> Result<Vec<Message>> {
        let ids: Vec<ObjectId> = ids.iter().map(|i| i.object_id()).collect();
        let (app, user) = (app.get(), user.get());
        let mut found = Vec::new();
        for id in &ids {
            let (m, dialog, role) = self.readable_message(app, user, *id).await?;
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
        app: AppId,
        user: UserId,
        dialogs: Option<&[ObjectId]>,
    ) -> Result<(i64, Vec<(ObjectId, i64)>)> {
        let (app, user) = (app.get(), user.get());
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
        app: AppId,
        user: UserId,
        id: MessageId,
        add: Option<String>,
        remove: Option<String>,
    ) -> Result<()> {
        let id = id.object_id();
        let (app, user) = (app.get(), user.get());
        let (message, _, _) = self.readable_message(app, user, id).await?;
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

    pub async fn reactions(
        &self,
        app: AppId,
        user: UserId,
        id: MessageId,
    ) -> Result<Map<String, Value>> {
        let id = id.object_id();
        let (app, user) = (app.get(), user.get());
        Ok(self.readable_message(app, user, id).await?.0.reactions)
    }
}

/// How many of a dialog's messages one "mark the dialog read" tells the other faces about.
const READS_TOLD: u32 = 100;
