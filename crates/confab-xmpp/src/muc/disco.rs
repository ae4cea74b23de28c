//! Queries addressed to rooms (disco info and items).

use super::*;

impl Rooms {
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
                .joined_users_everywhere(app, dialog_id)
                .await
                .iter()
                .map(|u| u.get())
                .collect();
            let cluster = self.srv.upgrade().map(|s| s.cluster.clone());
            let online_anywhere = |u: UserId| {
                self.hub.is_online((app, u))
                    || cluster
                        .as_ref()
                        .is_some_and(|c| !c.nodes_with(app, u).is_empty())
            };
            if room.kind != DialogType::Broadcast {
                users.extend(
                    room.members
                        .iter()
                        .filter(|u| online_anywhere(**u))
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
}
