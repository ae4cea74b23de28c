//! Groupchat messages: the posting rules, storing before delivery, privacy, fan-out and
//! reflection; and messages sent over REST delivered to the room.

use super::*;

impl Rooms {
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

        if room.kind == DialogType::Group
            && self
                .chat
                .group_blocks(app, dialog_id)
                .await
                .mute
                .contains(&from.user)
        {
            return bounce(
                &msg,
                StanzaError::FORBIDDEN,
                Some("You are blocked in this dialog"),
            );
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
        let is_new_message = body.is_some() && replace.is_none() && remove.is_none();

        // Store changes first, then deliver.
        let stored = if let Some(id) = replace {
            match id.parse::<ObjectId>() {
                Ok(id) => match self
                    .chat
                    .edit_message(app, from.user, id.into(), body)
                    .await
                {
                    // The ChatServer face's sockets hear it from the domain.
                    Ok(m) => {
                        self.chat.edited(&m, confab_service::Origin::Xmpp).await;
                        Ok(())
                    }
                    Err(e) => Err(e),
                },
                Err(_) => Ok(()),
            }
        } else if let Some(id) = remove {
            match id.parse::<ObjectId>() {
                Ok(id) => self
                    .chat
                    .delete_messages(app, from.user, &[id.into()], true)
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
                    dialog_id: Some(dialog_id.into()),
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
                match self.chat.record_live_message(app, from.user, new).await {
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
        let blocked = self
            .blocked_recipients(&room, app, dialog_id, from.user)
            .await;
        let active_elsewhere = self.fan_out(&room, from.user, &xml, skip, &blocked).await;
        if is_new_message {
            let extra = msg
                .child("extraParams", NS_CLIENT)
                .map(extra_params_to_json)
                .unwrap_or_default();
            let alert = ChatAlert {
                app,
                sender: from.user,
                dialog_id: Some(dialog_id),
                message_id: msg.attr("id").map(str::to_string),
                body: msg.child("body", NS_CLIENT).map(Element::text),
                recipients: Vec::new(),
                silent: extra.get("silent").and_then(Value::as_str) == Some("1"),
            };
            self.alert_members(&room, &blocked, &active_elsewhere, alert);
        }
        Vec::new()
    }

    /// Queues chat alerts for the members the message reached no active session of, here or on
    /// another node (`active_elsewhere`).
    fn alert_members(
        &self,
        room: &Room,
        blocked: &HashSet<UserId>,
        active_elsewhere: &HashSet<UserId>,
        mut alert: ChatAlert,
    ) {
        // A broadcast goes to the whole app: live only.
        if room.kind == DialogType::Broadcast || alert.silent {
            return;
        }
        let Some(push) = self.srv.upgrade().and_then(|s| s.push.clone()) else {
            return;
        };
        let sender = alert.sender;
        alert.recipients = self.hub.without_active_session(
            room.app,
            room.members
                .iter()
                .copied()
                .filter(|u| *u != sender && !blocked.contains(u) && !active_elsewhere.contains(u)),
        );
        push.alert(alert);
    }

    /// Online members who must not get this sender's group messages (the domain's rules: privacy
    /// lists, and group blocks).
    async fn blocked_recipients(
        &self,
        room: &Room,
        app: AppId,
        dialog: ObjectId,
        sender: UserId,
    ) -> HashSet<UserId> {
        let Some(srv) = self.srv.upgrade() else {
            return HashSet::new();
        };
        if room.kind == DialogType::Broadcast {
            return HashSet::new();
        }
        let mut blocked = srv
            .privacy
            .blocked_in_group(app, sender, room.members.iter().copied())
            .await;
        if room.kind == DialogType::Group {
            let blocks = self.chat.group_blocks(app, dialog).await;
            blocked.extend(blocks.deaf.iter().copied().filter(|u| *u != sender));
        }
        blocked
    }

    /// Hands `xml` to every online session of the room's audience but `blocked` (and the sender's
    /// other sessions), skipping session `skip`, on this node and the others. Returns the members
    /// with a session in the foreground on another node.
    async fn fan_out(
        &self,
        room: &Room,
        sender: UserId,
        xml: &Arc<str>,
        skip: Option<u64>,
        blocked: &HashSet<UserId>,
    ) -> HashSet<UserId> {
        let Some(srv) = self.srv.upgrade() else {
            return HashSet::new();
        };
        if room.kind == DialogType::Broadcast {
            self.hub.send_to_app(room.app, xml, skip);
            crate::cluster::to_app_elsewhere(&srv, room.app, xml).await;
            return HashSet::new();
        }
        let sender_extra = (!room.member_set.contains(&sender.get())).then_some(sender);
        let audience = || {
            room.members
                .iter()
                .copied()
                .filter(|u| !blocked.contains(u))
                .chain(sender_extra)
        };
        self.hub.send_to_users(room.app, audience(), xml, skip);
        crate::cluster::to_users_elsewhere(&srv, room.app, audience(), xml)
            .await
            .active_users
            .into_iter()
            .filter_map(|u| UserId::new(u).ok())
            .collect()
    }

    /// Delivers a message created over REST with `send_to_chat=1` to the room's audience, as the
    /// groupchat stanza an XMPP sender would have produced.
    pub async fn deliver_stored(&self, m: &confab_core::chat::Message, extra: Element) {
        let Some((app, sender, room)) = self.room_of(m).await else {
            return;
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
        // The same privacy rule as a groupchat message sent over XMPP.
        let blocked = self
            .blocked_recipients(&room, app, m.dialog_id, sender)
            .await;
        let active_elsewhere = self.fan_out(&room, sender, &xml, None, &blocked).await;
        let alert = ChatAlert {
            app,
            sender,
            dialog_id: Some(m.dialog_id),
            message_id: Some(m.id.to_string()),
            body: m.body.clone(),
            recipients: Vec::new(),
            silent: m.custom.get("silent").and_then(Value::as_str) == Some("1"),
        };
        self.alert_members(&room, &blocked, &active_elsewhere, alert);
    }

    /// A message of a group edited on another face: its members here get the correction (XEP-0308,
    /// with the SDK's `last`) from the author's occupant JID, live only.
    pub async fn deliver_correction(&self, m: &confab_core::chat::Message, extra: Element) {
        let Some((app, sender, room)) = self.room_of(m).await else {
            return;
        };
        let stanza = Element::new("message", NS_CLIENT)
            .with_attr("type", "groupchat")
            .with_attr("id", confab_core::ObjectId::generate().to_string())
            .with_attr(
                "from",
                format!("{}/{sender}", self.room_jid(app, m.dialog_id)),
            )
            .with_child(Element::bare("body").with_text(m.body.as_deref().unwrap_or("")))
            .with_child(
                Element::new("replace", crate::message::NS_CORRECT)
                    .with_attr("id", m.id.to_string())
                    .with_attr("last", "true"),
            )
            .with_child(extra);
        let xml: Arc<str> = stanza.to_xml().into();
        let blocked = self
            .blocked_recipients(&room, app, m.dialog_id, sender)
            .await;
        self.fan_out(&room, sender, &xml, None, &blocked).await;
    }

    /// The room of a stored message's dialog, with its app and author; `None` for dialogs that are
    /// not rooms (or when it cannot be loaded).
    async fn room_of(&self, m: &confab_core::chat::Message) -> Option<(AppId, UserId, Arc<Room>)> {
        let (Ok(app), Ok(sender)) = (AppId::new(m.app_id), UserId::new(m.sender_id)) else {
            return None;
        };
        match self.room(app, m.dialog_id).await {
            Ok(room) => room.map(|room| (app, sender, room)),
            Err(e) => {
                tracing::warn!(error = ?e, "loading a room for a stored message failed");
                None
            }
        }
    }
}
