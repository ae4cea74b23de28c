//! The sending rules of the domain, without sockets: a recording subscriber on the in-process bus
//! stands in for the live faces, a real embedded store holds the data.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use confab_core::chat::Message;
use confab_core::model::UserFields;
use confab_core::{AppId, ErrorKind, ObjectId, UserId};
use confab_service::bus::{Event, LocalBus, Subscriber};
use confab_service::chat::{Actor, NewDialog, NewMessage};
use confab_service::send::SendMessage;
use confab_service::{Accounts, AccountsConfig, Chat, Privacy};
use confab_store::sqlite::SqliteStore;
use confab_store::PrivacyItem;

/// Records what would have gone out live.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

#[async_trait]
impl Subscriber for Recorder {
    async fn on_event(&self, event: &Event) {
        let line = match event {
            Event::MessageSent(m) => m.body.clone().unwrap_or_default(),
            Event::MessageRecorded(m) => format!("recorded {}", m.body.clone().unwrap_or_default()),
            Event::MessageDeleted(m) => format!("deleted {}", m.id),
            Event::SystemMessage(_) => "system".into(),
            Event::DialogChanged(_)
            | Event::MessageEdited(..)
            | Event::MessageRead(_)
            | Event::MessagesReadOverRest(_) => return,
        };
        self.0.lock().unwrap().push(line);
    }
}

struct World {
    _dir: tempfile::TempDir,
    chat: Chat,
    live: Arc<Recorder>,
    app: AppId,
    alice: UserId,
    bob: UserId,
    carol: UserId,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let accounts = Accounts::new(Arc::new(store.clone()), AccountsConfig::default());
    let app = accounts.create_app("t").await.unwrap().app.id;
    let mut ids = Vec::new();
    for login in ["alice", "bob", "carol"] {
        let fields = UserFields {
            login: Some(Some(login.into())),
            ..UserFields::default()
        };
        let u = accounts
            .signup(app, fields, Some("password1".into()))
            .await
            .unwrap();
        ids.push(u.user_id());
    }
    let privacy = Arc::new(Privacy::new(Arc::new(store.clone()), "localhost"));
    let bus = Arc::new(LocalBus::default());
    let chat = Chat::new(
        Arc::new(store.clone()),
        Arc::new(store),
        privacy,
        bus.clone(),
    );
    let live = Arc::new(Recorder::default());
    let subscriber: Arc<dyn Subscriber> = live.clone();
    confab_service::Bus::subscribe(&*bus, Arc::downgrade(&subscriber));
    World {
        _dir: dir,
        chat,
        live,
        app,
        alice: ids[0],
        bob: ids[1],
        carol: ids[2],
    }
}

impl World {
    /// `owner` blocks `peer`: one way (messages in only) or two ways (no flags: everything).
    async fn block(&self, owner: UserId, peer: UserId, two_way: bool) {
        let item = PrivacyItem {
            kind: Some("jid".into()),
            value: Some(format!("{peer}-{}@localhost", self.app)),
            allow: false,
            order: 1,
            stanzas: if two_way { 0 } else { 1 },
        };
        let p = self.chat.privacy();
        p.put_list((self.app, owner), "bl", &[item]).await.unwrap();
        assert!(p.set_default((self.app, owner), Some("bl")).await.unwrap());
    }

    async fn send(
        &self,
        from: UserId,
        to: Option<UserId>,
        dialog: Option<ObjectId>,
        body: &str,
    ) -> confab_core::Result<Message> {
        self.chat
            .send_message(SendMessage {
                app: self.app,
                sender: from,
                message: NewMessage {
                    recipient_id: to.map(|u| u.get()),
                    dialog_id: dialog.map(Into::into),
                    body: Some(body.into()),
                    ..Default::default()
                },
                live: true,
            })
            .await
    }

    async fn stored(&self, reader: UserId, dialog: ObjectId) -> usize {
        let q = confab_core::query::Query {
            limit: 100,
            ..Default::default()
        };
        self.chat
            .list_messages(self.app, reader, dialog.into(), &q, false)
            .await
            .unwrap()
            .0
            .len()
    }

    fn delivered(&self) -> Vec<String> {
        self.live.0.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn a_blocked_sender_stores_and_delivers_nothing() {
    let w = world().await;
    let first = w.send(w.alice, Some(w.bob), None, "hello").await.unwrap();
    w.block(w.bob, w.alice, false).await;
    for (to, dialog) in [(Some(w.bob), None), (None, Some(first.dialog_id))] {
        let e = w.send(w.alice, to, dialog, "blocked").await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Forbidden);
    }
    assert_eq!(w.delivered(), ["hello"]);
    assert_eq!(w.stored(w.bob, first.dialog_id).await, 1);
    // One way: the blocker still writes; an unrelated pair is untouched.
    w.send(w.bob, Some(w.alice), None, "reply").await.unwrap();
    w.send(w.alice, Some(w.carol), None, "other").await.unwrap();
    assert_eq!(w.delivered(), ["hello", "reply", "other"]);
}

#[tokio::test]
async fn a_two_way_block_stops_the_blocker_and_lifting_it_takes_effect_at_once() {
    let w = world().await;
    w.block(w.bob, w.alice, true).await;
    let e = w.send(w.bob, Some(w.alice), None, "x").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden);
    assert!(w
        .chat
        .privacy()
        .set_default((w.app, w.bob), None)
        .await
        .unwrap());
    w.send(w.bob, Some(w.alice), None, "y").await.unwrap();
    assert_eq!(w.delivered(), ["y"]);
}

#[tokio::test]
async fn group_messages_are_stored_and_blocked_members_are_named() {
    let w = world().await;
    let group = w
        .chat
        .create_dialog(
            w.app,
            w.alice,
            NewDialog {
                kind: Some(confab_core::chat::DialogType::Group),
                name: Some("G".into()),
                occupants_ids: vec![w.bob.get(), w.carol.get()],
                ..Default::default()
            },
            Actor::User(w.alice.get()),
        )
        .await
        .unwrap()
        .dialog
        .id;
    w.block(w.bob, w.alice, false).await;
    w.send(w.alice, None, Some(group), "to all").await.unwrap();
    assert_eq!(w.stored(w.bob, group).await, 1, "stored for everyone");
    let blocked = w
        .chat
        .privacy()
        .blocked_in_group(w.app, w.alice, [w.alice, w.bob, w.carol])
        .await;
    assert_eq!(blocked.into_iter().collect::<Vec<_>>(), [w.bob]);
    // The sender's own block of a member counts too.
    w.block(w.alice, w.carol, false).await;
    let mut blocked: Vec<_> = w
        .chat
        .privacy()
        .blocked_in_group(w.app, w.alice, [w.bob, w.carol])
        .await
        .into_iter()
        .collect();
    blocked.sort();
    assert_eq!(blocked, [w.bob, w.carol]);
}

#[tokio::test]
async fn deletions_for_everyone_and_system_messages_are_published() {
    let w = world().await;
    let m = w.send(w.alice, Some(w.bob), None, "oops").await.unwrap();
    w.chat
        .delete_messages_and_notify(w.app, w.alice, &[m.id.into()], false)
        .await
        .unwrap();
    assert_eq!(w.delivered(), ["oops"], "deleted for me only: nothing live");
    let m = w.send(w.alice, Some(w.bob), None, "oops2").await.unwrap();
    w.chat
        .delete_messages_and_notify(w.app, w.alice, &[m.id.into()], true)
        .await
        .unwrap();
    assert_eq!(w.delivered()[2], format!("deleted {}", m.id));
    let system = confab_service::send::SendSystemMessage {
        app: w.app,
        sender: w.alice,
        recipient: w.bob,
        params: Default::default(),
    };
    w.chat.send_system_message(system.clone()).await.unwrap();
    assert_eq!(w.delivered().last().unwrap(), "system");
    // With no live face subscribed, a system message (which is never stored) is an error.
    drop(w.live);
    let e = w.chat.send_system_message(system).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Internal);
}

/// What a live face stores while delivering it itself reaches the other faces through the bus,
/// once; what it does not store stays between the live face and its clients.
#[tokio::test]
async fn messages_a_live_face_stores_reach_the_other_faces() {
    use confab_service::history::{ChatHistory, ChatMessage};
    let w = world().await;
    let message = |body: &str, save: bool| ChatMessage {
        app: w.app,
        sender: w.alice,
        recipient: w.bob,
        stanza_id: None,
        body: Some(body.into()),
        extra_params: Default::default(),
        save_to_history: save,
    };
    w.chat
        .record_chat_message(&message("kept", true))
        .await
        .unwrap();
    w.chat
        .record_chat_message(&message("not kept", false))
        .await
        .unwrap();
    assert_eq!(*w.live.0.lock().unwrap(), vec!["recorded kept".to_string()]);
}
