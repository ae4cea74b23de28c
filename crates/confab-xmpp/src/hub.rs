//! The hub: who is online where, and fan-out to their sessions.
//!
//! Every bound session has a bounded queue. Delivery uses `try_send`: a session whose queue is full is
//! too slow, so it is told to close, and never blocks the sender or other recipients. Durable
//! stanzas (1:1 chat messages, which would be stored if the user were offline) that a closing
//! session can no longer queue are kept aside in order, and the session's end stores them offline
//! with whatever it queued but never confirmed (see [`crate::session`]).
//! The hub also keeps what other features need about presence: last-seen times (XEP-0012), the
//! Tigase mobile-v2 active flag per session, carbons enablement and status-streaming watchers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};

use confab_core::clock::{now_millis, Millis};
use confab_core::{AppId, UserId};
use tokio::sync::{mpsc, Notify};

use crate::receipt::Receipt;

/// One user of one app.
pub type Account = (AppId, UserId);

/// What a queued item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutKind {
    Plain,
    /// Stored offline if the client never confirms it.
    Durable,
    /// No stanza: offline messages were stored for the user since the session last looked.
    ClaimOffline,
}

/// One queued item.
pub struct Outbound {
    pub xml: Arc<str>,
    pub kind: OutKind,
    /// When it was queued: its offline timestamp if it comes to that.
    pub queued_at: Millis,
    /// A durable stanza's sender waits for this (see [`crate::receipt`]).
    pub receipt: Option<Receipt>,
}

/// At most this many durable stanzas are kept aside for a closing session; beyond, the caller
/// stores them offline itself.
const MAX_SPILL: usize = 4096;

/// A bound session as the rest of the server sees it.
pub struct SessionHandle {
    pub id: u64,
    pub app: AppId,
    pub user: UserId,
    pub resource: String,
    pub full_jid: String,
    tx: mpsc::Sender<Outbound>,
    /// Durable stanzas that came while the session was closing; `None` once its end took them.
    spill: Mutex<Option<Vec<Outbound>>>,
    carbons: AtomicBool,
    inactive: AtomicBool,
    killed: AtomicBool,
    kill: Notify,
}

impl SessionHandle {
    pub fn account(&self) -> Account {
        (self.app, self.user)
    }

    /// Queues rendered XML for the session. `false` when the session is gone or too slow.
    pub fn send(&self, xml: Arc<str>) -> bool {
        self.queue(xml, OutKind::Plain)
    }

    /// Queues a stanza that must not be lost: once taken (`true`), the session delivers it or, if
    /// the client never confirms it, stores it offline when it ends. `false`: the session is gone
    /// and the caller must store it. The session confirms `receipt` once the stanza is safe.
    pub fn send_durable(&self, xml: Arc<str>, receipt: Option<Receipt>) -> bool {
        self.queue_item(Outbound {
            xml,
            kind: OutKind::Durable,
            queued_at: now_millis(),
            receipt,
        })
    }

    /// Tells the session that offline messages were stored for its user, so an available session
    /// hands them out now (one that claimed before they were stored would not see them otherwise
    /// until the next login).
    pub fn offline_stored(&self) {
        self.queue(Arc::from(""), OutKind::ClaimOffline);
    }

    fn queue(&self, xml: Arc<str>, kind: OutKind) -> bool {
        self.queue_item(Outbound {
            xml,
            kind,
            queued_at: now_millis(),
            receipt: None,
        })
    }

    fn queue_item(&self, item: Outbound) -> bool {
        let durable = item.kind == OutKind::Durable;
        if self.is_killed() {
            return durable && self.spill(item);
        }
        match self.tx.try_send(item) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(item)) => {
                tracing::warn!(
                    session = self.id,
                    "session queue full; disconnecting slow client"
                );
                self.kill();
                durable && self.spill(item)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    fn spill(&self, item: Outbound) -> bool {
        match self.spill.lock().expect("spill lock").as_mut() {
            Some(kept) if kept.len() < MAX_SPILL => {
                kept.push(item);
                true
            }
            _ => false,
        }
    }

    /// At the session's end: the durable stanzas kept aside, in order. Later ones are refused.
    pub fn take_spilled(&self) -> Vec<Outbound> {
        self.spill
            .lock()
            .expect("spill lock")
            .take()
            .unwrap_or_default()
    }

    /// Asks the session task to close its stream.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
        self.kill.notify_one();
    }

    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }

    /// Resolves when [`kill`](Self::kill) was called.
    pub async fn killed(&self) {
        self.kill.notified().await
    }

    pub fn carbons(&self) -> bool {
        self.carbons.load(Ordering::Relaxed)
    }

    pub fn set_carbons(&self, on: bool) {
        self.carbons.store(on, Ordering::Relaxed)
    }

    /// Tigase mobile v2: `true` after `markInactive` (`enable="true"`).
    pub fn inactive(&self) -> bool {
        self.inactive.load(Ordering::Relaxed)
    }

    pub fn set_inactive(&self, on: bool) {
        self.inactive.store(on, Ordering::Relaxed)
    }
}

/// Sends status-streaming pushes; implemented by the face that renders them.
pub type WatchRender = fn(target: Account, seconds: u64, watcher: &SessionHandle) -> String;

/// A user's online sessions. Replaced whole when one comes or goes (rare), so that every message
/// takes the list with one reference count instead of a copy.
pub type SessionList = Arc<[Arc<SessionHandle>]>;

#[derive(Default)]
pub struct Hub {
    sessions: RwLock<HashMap<Account, SessionList>>,
    /// What [`Hub::sessions`] answers for a user who is offline.
    no_sessions: SessionList,
    /// Every session of an app by session id, for broadcast dialogs (no scan over other apps).
    by_app: RwLock<HashMap<AppId, HashMap<u64, Arc<SessionHandle>>>>,
    last_seen: Mutex<HashMap<Account, Millis>>,
    watchers: Mutex<HashMap<Account, Vec<Weak<SessionHandle>>>>,
    next_id: AtomicU64,
}

impl Hub {
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates and registers a session handle; the receiver is the session's outbound queue.
    pub fn register(
        &self,
        app: AppId,
        user: UserId,
        resource: String,
        full_jid: String,
        queue_len: usize,
    ) -> (Arc<SessionHandle>, mpsc::Receiver<Outbound>, bool) {
        let (tx, rx) = mpsc::channel(queue_len.max(1));
        let handle = Arc::new(SessionHandle {
            id: self.next_id.fetch_add(1, Ordering::Relaxed) + 1,
            app,
            user,
            resource,
            full_jid,
            tx,
            spill: Mutex::new(Some(Vec::new())),
            carbons: AtomicBool::new(false),
            inactive: AtomicBool::new(false),
            killed: AtomicBool::new(false),
            kill: Notify::new(),
        });
        let mut map = self.sessions.write().expect("hub lock");
        let list = map.entry((app, user)).or_default();
        let first = list.is_empty();
        *list = list.iter().cloned().chain([handle.clone()]).collect();
        drop(map);
        self.by_app
            .write()
            .expect("hub lock")
            .entry(app)
            .or_default()
            .insert(handle.id, handle.clone());
        (handle, rx, first)
    }

    /// Removes a session; `true` when it was the user's last one.
    pub fn unregister(&self, handle: &SessionHandle) -> bool {
        let key = handle.account();
        let mut map = self.sessions.write().expect("hub lock");
        let Some(list) = map.get_mut(&key) else {
            return false;
        };
        let before = list.len();
        *list = list.iter().filter(|s| s.id != handle.id).cloned().collect();
        let removed = list.len() != before;
        let last = list.is_empty();
        if last {
            map.remove(&key);
        }
        drop(map);
        if removed {
            let mut apps = self.by_app.write().expect("hub lock");
            if let Some(m) = apps.get_mut(&handle.app) {
                m.remove(&handle.id);
                if m.is_empty() {
                    apps.remove(&handle.app);
                }
            }
        }
        if removed && last {
            self.last_seen
                .lock()
                .expect("hub lock")
                .insert(key, now_millis());
        }
        removed && last
    }

    /// Every online session of a user.
    pub fn sessions(&self, account: Account) -> SessionList {
        self.sessions
            .read()
            .expect("hub lock")
            .get(&account)
            .unwrap_or(&self.no_sessions)
            .clone()
    }

    pub fn session(&self, account: Account, resource: &str) -> Option<Arc<SessionHandle>> {
        self.sessions(account)
            .iter()
            .find(|s| s.resource == resource)
            .cloned()
    }

    pub fn is_online(&self, account: Account) -> bool {
        self.sessions
            .read()
            .expect("hub lock")
            .get(&account)
            .is_some_and(|l| !l.is_empty())
    }

    /// Seconds since the user was last online: 0 while online, `None` if not seen since start.
    pub fn last_activity(&self, account: Account) -> Option<u64> {
        if self.is_online(account) {
            return Some(0);
        }
        let seen = *self.last_seen.lock().expect("hub lock").get(&account)?;
        Some(((now_millis() - seen).max(0) / 1000) as u64)
    }

    /// Tigase mobile v2 states of a user's sessions: `(resource, active)`.
    pub fn client_states(&self, account: Account) -> Vec<(String, bool)> {
        self.sessions(account)
            .iter()
            .map(|s| (s.resource.clone(), !s.inactive()))
            .collect()
    }

    /// Queues `xml` for every online session of the given users of `app` (one lock, no copies of
    /// the stanza), skipping the session `skip`. Returns how many sessions took it.
    pub fn send_to_users(
        &self,
        app: AppId,
        users: impl IntoIterator<Item = UserId>,
        xml: &Arc<str>,
        skip: Option<u64>,
    ) -> usize {
        let map = self.sessions.read().expect("hub lock");
        let mut n = 0;
        for user in users {
            for s in map.get(&(app, user)).into_iter().flat_map(|l| l.iter()) {
                if Some(s.id) != skip && s.send(xml.clone()) {
                    n += 1;
                }
            }
        }
        n
    }

    /// Of `users`, those with no online session that is active (offline, or only in background):
    /// the ones a chat alert is for.
    pub fn without_active_session(
        &self,
        app: AppId,
        users: impl IntoIterator<Item = UserId>,
    ) -> Vec<UserId> {
        let map = self.sessions.read().expect("hub lock");
        users
            .into_iter()
            .filter(|&u| {
                !map.get(&(app, u))
                    .is_some_and(|l| l.iter().any(|s| !s.inactive()))
            })
            .collect()
    }

    /// Queues `xml` for every online session of `app`, skipping the session `skip`.
    pub fn send_to_app(&self, app: AppId, xml: &Arc<str>, skip: Option<u64>) -> usize {
        let apps = self.by_app.read().expect("hub lock");
        let mut n = 0;
        for s in apps.get(&app).into_iter().flat_map(HashMap::values) {
            if Some(s.id) != skip && s.send(xml.clone()) {
                n += 1;
            }
        }
        n
    }

    /// Number of bound sessions (all apps).
    pub fn session_count(&self) -> usize {
        self.sessions
            .read()
            .expect("hub lock")
            .values()
            .map(|l| l.len())
            .sum()
    }

    /// Calls `f` on every bound session.
    pub fn each_session(&self, f: impl Fn(&SessionHandle)) {
        for list in self.sessions.read().expect("hub lock").values() {
            for s in list.iter() {
                f(s);
            }
        }
    }

    /// Asks every session to close (server shutdown).
    pub fn kill_all(&self) {
        for list in self.sessions.read().expect("hub lock").values() {
            for s in list.iter() {
                s.kill();
            }
        }
    }

    /// Status streaming: `watcher` wants pushes when `target` comes online or goes offline.
    pub fn watch(&self, target: Account, watcher: &Arc<SessionHandle>, on: bool) {
        let mut w = self.watchers.lock().expect("hub lock");
        let list = w.entry(target).or_default();
        list.retain(|x| x.upgrade().is_some_and(|x| x.id != watcher.id));
        if on {
            list.push(Arc::downgrade(watcher));
        }
        if list.is_empty() {
            w.remove(&target);
        }
    }

    /// Records that `account`'s last session anywhere ended now (on another node).
    pub fn seen_now(&self, account: Account) {
        self.last_seen
            .lock()
            .expect("hub lock")
            .insert(account, now_millis());
    }

    /// Sends a push to everyone watching `target`, with its last activity as known here.
    pub fn notify_watchers(&self, target: Account, render: WatchRender) {
        self.notify_watchers_at(target, self.last_activity(target).unwrap_or(0), render);
    }

    /// Sends a push to everyone watching `target`: `seconds` since its last activity.
    pub fn notify_watchers_at(&self, target: Account, seconds: u64, render: WatchRender) {
        let live: Vec<Arc<SessionHandle>> = {
            let mut w = self.watchers.lock().expect("hub lock");
            let Some(list) = w.get_mut(&target) else {
                return;
            };
            list.retain(|x| x.strong_count() > 0);
            list.iter().filter_map(Weak::upgrade).collect()
        };
        for s in live {
            if !s.is_killed() {
                s.send(render(target, seconds, &s).into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(a: i64, u: i64) -> (AppId, UserId) {
        (AppId::new(a).unwrap(), UserId::new(u).unwrap())
    }

    #[tokio::test]
    async fn durable_stanzas_for_a_closing_session_are_kept_in_order() {
        let hub = Hub::new();
        let (a, u) = ids(1, 2);
        let (s, mut rx, _) = hub.register(a, u, "r".into(), "j".into(), 1);
        assert!(s.send_durable("<m1/>".into(), None));
        // The queue is full: the session is told to close, and the message kept aside.
        assert!(s.send_durable("<m2/>".into(), None));
        assert!(s.is_killed());
        assert!(!s.send("<p/>".into()), "a presence is not kept");
        assert!(s.send_durable("<m3/>".into(), None));
        let queued = rx.recv().await.unwrap();
        assert_eq!((&*queued.xml, queued.kind), ("<m1/>", OutKind::Durable));
        let kept: Vec<String> = s.take_spilled().iter().map(|o| o.xml.to_string()).collect();
        assert_eq!(kept, ["<m2/>", "<m3/>"]);
        // Once the session's end took them, the caller stores later ones itself.
        assert!(!s.send_durable("<m4/>".into(), None));
    }

    #[tokio::test]
    async fn full_queue_kills_only_that_session() {
        let hub = Hub::new();
        let (a, u) = ids(1, 2);
        let (slow, _rx_slow, first) = hub.register(a, u, "r1".into(), "j1".into(), 1);
        assert!(first);
        let (fast, mut rx_fast, first) = hub.register(a, u, "r2".into(), "j2".into(), 8);
        assert!(!first);
        assert!(slow.send("<a/>".into()));
        assert!(!slow.send("<b/>".into()));
        assert!(slow.is_killed());
        assert!(fast.send("<b/>".into()));
        assert_eq!(&*rx_fast.recv().await.unwrap().xml, "<b/>");
        assert!(!hub.unregister(&slow));
        assert_eq!(hub.last_activity((a, u)), Some(0));
        assert!(hub.unregister(&fast));
        assert_eq!(hub.last_activity((a, u)), Some(0));
        assert!(!hub.is_online((a, u)));
    }
}
