//! Joining and leaving rooms (optional for delivery), and what a closed session leaves behind.
//! Who has joined is kept per node; a join or leave is announced to the occupants on every node,
//! and who is in a room is asked of the other nodes when needed (a join, the occupants list).

use super::*;

impl Rooms {
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
                self.leave(from, dialog_id, &room_jid).await;
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
                self.join(from, el, &room, dialog_id, &room_jid, role).await
            }
            _ => Vec::new(),
        }
    }

    async fn join(
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
        // XEP-0045: first the occupants already there (on any node), then the self-presence.
        let mut seen = HashSet::new();
        let elsewhere = match self.srv.upgrade() {
            Some(srv) => crate::cluster::room_joined_elsewhere(&srv, from.app, dialog_id).await,
            None => Vec::new(),
        };
        let already_there = others.iter().map(|o| o.user).chain(elsewhere);
        for user in already_there.filter(|u| *u != from.user) {
            if seen.insert(user) {
                let mut p = occupant_presence(room_jid, user, room.role(user.get()), false);
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
        if announce {
            let xml: Arc<str> = occupant_presence(room_jid, from.user, role, false)
                .to_xml()
                .into();
            for o in &others {
                o.send(xml.clone());
            }
            self.announce_elsewhere(from, dialog_id, &xml, true).await;
        }
        replies
    }

    /// Hands an occupant's join or leave presence to the room's occupants on the other nodes.
    async fn announce_elsewhere(
        &self,
        from: &SessionHandle,
        dialog_id: ObjectId,
        xml: &str,
        joined: bool,
    ) {
        if let Some(srv) = self.srv.upgrade() {
            let (app, user) = (from.app, from.user);
            crate::cluster::room_presence_elsewhere(&srv, app, dialog_id, user, xml, joined).await;
        }
    }

    /// Another node died with `user` in the room: its occupants here see the user leave, unless
    /// the user has a session here in the room.
    pub(crate) fn occupant_gone_elsewhere(&self, app: AppId, dialog: ObjectId, user: UserId) {
        if self.joined_users(dialog).contains(&user) {
            return;
        }
        let jid = self.room_jid(app, dialog);
        let xml = occupant_presence(&jid, user, Role::Member, true).to_xml();
        self.occupant_presence_here(dialog, user, &xml.into());
    }

    /// From another node: an occupant's presence for this node's sessions joined to the room
    /// (not the occupant's own).
    pub(crate) fn occupant_presence_here(&self, dialog: ObjectId, user: UserId, xml: &Arc<str>) {
        let targets: Vec<Arc<SessionHandle>> = {
            let j = self.joined.lock().expect("muc lock");
            j.rooms
                .get(&dialog)
                .map(|l| l.iter().filter(|s| s.user != user).cloned().collect())
                .unwrap_or_default()
        };
        for s in targets {
            s.send(xml.clone());
        }
    }

    /// Removes a session from a room; tells the others (on every node) when its user has no
    /// session left there.
    async fn leave(&self, from: &SessionHandle, dialog_id: ObjectId, room_jid: &str) {
        if let Some(xml) = self.leave_here(from, dialog_id, room_jid) {
            self.announce_elsewhere(from, dialog_id, &xml, false).await;
        }
    }

    /// [`leave`](Self::leave) on this node; the leave presence when the user left the room here.
    fn leave_here(
        &self,
        from: &SessionHandle,
        dialog_id: ObjectId,
        room_jid: &str,
    ) -> Option<Arc<str>> {
        let (others, still_in) = {
            let mut j = self.joined.lock().expect("muc lock");
            let list = j.rooms.get_mut(&dialog_id)?;
            let before = list.len();
            list.retain(|s| s.id != from.id);
            if list.len() == before {
                return None;
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
            (others, still_in)
        };
        if still_in {
            return None;
        }
        let xml: Arc<str> = occupant_presence(room_jid, from.user, Role::Member, true)
            .to_xml()
            .into();
        for o in &others {
            o.send(xml.clone());
        }
        Some(xml)
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
        let mut left = Vec::new();
        for dialog in rooms {
            let jid = self.room_jid(handle.app, dialog);
            if let Some(xml) = self.leave_here(handle, dialog, &jid) {
                left.push((dialog, xml));
            }
        }
        // The session is gone: the other nodes hear of it in the background.
        if let (false, Some(srv)) = (left.is_empty(), self.srv.upgrade()) {
            let (app, user) = (handle.app, handle.user);
            tokio::spawn(async move {
                for (dialog, xml) in left {
                    crate::cluster::room_presence_elsewhere(&srv, app, dialog, user, &xml, false)
                        .await;
                }
            });
        }
    }

    /// Users with at least one session joined to the room, on any node.
    pub async fn joined_users_everywhere(&self, app: AppId, dialog: ObjectId) -> Vec<UserId> {
        let mut users = self.joined_users(dialog);
        if let Some(srv) = self.srv.upgrade() {
            users.extend(crate::cluster::room_joined_elsewhere(&srv, app, dialog).await);
            users.sort_unstable_by_key(|u| u.get());
            users.dedup();
        }
        users
    }

    /// Users with at least one session joined to the room on this node.
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
}
