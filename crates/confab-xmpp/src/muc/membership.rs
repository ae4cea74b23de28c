//! Membership changes from the domain's bus: the cached room is dropped and removed or
//! deleted-for members' joined sessions are kicked.

use super::*;

impl Rooms {
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
    /// A membership change from the bus: the cached room is dropped (the next message reloads it)
    /// and removed or deleted-for members are told.
    pub fn dialog_changed(&self, ev: &DialogChanged) {
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
