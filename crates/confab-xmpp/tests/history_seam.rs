//! The `ChatHistory` seam: called before delivery with the decoded message, its `dialog_id` stamped into
//! what recipients get, its errors bounced to the sender, and not called for typing or markers.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use confab_core::model::UserFields;
use confab_core::{Error, Result};
use confab_service::{Accounts, AccountsConfig, Offline, Privacy, Roster};
use confab_store::sqlite::SqliteStore;
use confab_xmpp::xml::{parse_element, Scope, NS_CLIENT};
use confab_xmpp::{message, ChatHistory, ChatMessage, Services, XmppConfig, XmppServer};

#[derive(Default)]
struct Fake {
    calls: Mutex<Vec<ChatMessage>>,
    reject: Mutex<bool>,
}

#[async_trait]
impl ChatHistory for Fake {
    async fn record_chat_message(&self, m: &ChatMessage) -> Result<Option<String>> {
        self.calls.lock().unwrap().push(m.clone());
        if *self.reject.lock().unwrap() {
            return Err(Error::forbidden("You are not a member of this dialog"));
        }
        Ok(Some("5f1c2d3e4b5a69788796a5b4".into()))
    }

    async fn record_event(
        &self,
        _: confab_core::AppId,
        _: confab_core::UserId,
        _: &confab_xmpp::MessageEvent,
    ) -> Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn history_is_asked_before_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let accounts = Arc::new(Accounts::new(
        Arc::new(store.clone()),
        AccountsConfig::default(),
    ));
    let app = accounts.create_app("t").await.unwrap().app.id;
    let mut ids = Vec::new();
    for login in ["alice", "bob"] {
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
    let fake = Arc::new(Fake::default());
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    let privacy = Arc::new(Privacy::new(Arc::new(store.clone()), "localhost"));
    let srv = XmppServer::new(
        XmppConfig::default(),
        Services {
            accounts,
            offline: Arc::new(Offline::new(Arc::new(store.clone()), 1000)),
            privacy: privacy.clone(),
            roster: Arc::new(Roster::new(
                Arc::new(store.clone()),
                Arc::new(store),
                privacy,
                300,
            )),
            history: Some(fake.clone()),
            push: None,
            cluster: Arc::new(confab_service::SingleNode::default()),
        },
        None,
        stop,
    );
    let (alice, _arx, _) = srv.hub.register(
        app,
        ids[0],
        "ra".into(),
        format!("{}-{app}@localhost/ra", ids[0]),
        8,
    );
    let (_bob, mut brx, _) = srv.hub.register(
        app,
        ids[1],
        "rb".into(),
        format!("{}-{app}@localhost/rb", ids[1]),
        8,
    );
    let to = format!("{}-{app}@localhost", ids[1]);
    let msg = |inner: &str| {
        parse_element(
            format!(
                "<message to='{to}' type='chat' id='6b02b1f7b5a07d1688000000'>{inner}</message>"
            )
            .as_bytes(),
            &Scope::client(),
        )
        .unwrap()
    };

    let replies = message::route(&srv, &alice, msg("<body>hi</body><extraParams xmlns='jabber:client'><save_to_history>1</save_to_history><dialog_id>client-said</dialog_id><custom>v</custom></extraParams>")).await;
    assert!(replies.is_empty());
    {
        let calls = fake.calls.lock().unwrap();
        assert_eq!(calls.len(), 1);
        let c = &calls[0];
        assert_eq!((c.app, c.sender, c.recipient), (app, ids[0], ids[1]));
        assert_eq!(c.stanza_id.as_deref(), Some("6b02b1f7b5a07d1688000000"));
        assert_eq!(c.body.as_deref(), Some("hi"));
        assert!(c.save_to_history);
        assert_eq!(c.extra_params["custom"], "v");
    }
    let got = brx.try_recv().expect("delivered");
    let el = parse_element(got.xml.as_bytes(), &Scope::client()).unwrap();
    let extra = el.child("extraParams", NS_CLIENT).unwrap();
    // extraParams are kept as sent: the service's dialog id only fills a missing one.
    assert_eq!(
        extra.child_named("dialog_id").unwrap().text(),
        "client-said"
    );

    // Typing and markers bypass history.
    message::route(
        &srv,
        &alice,
        msg("<composing xmlns='http://jabber.org/protocol/chatstates'/>"),
    )
    .await;
    message::route(
        &srv,
        &alice,
        msg("<displayed xmlns='urn:xmpp:chat-markers:0' id='x'/>"),
    )
    .await;
    assert_eq!(fake.calls.lock().unwrap().len(), 1);
    brx.try_recv().unwrap();
    brx.try_recv().unwrap();

    // A rejection reaches the sender with a code and stops delivery.
    *fake.reject.lock().unwrap() = true;
    let replies = message::route(&srv, &alice, msg("<body>no</body>")).await;
    assert_eq!(replies.len(), 1);
    let err = replies[0].child("error", NS_CLIENT).unwrap();
    assert_eq!(err.attr("code"), Some("403"));
    assert!(replies[0]
        .to_xml()
        .contains("You are not a member of this dialog"));
    assert!(brx.try_recv().is_err(), "nothing delivered");
}
