//! The chat alert queue (`push_alert_queue_len`) at its limit: the chat path hands alerts over
//! without waiting; when the queue is full the next alert is dropped (and logged), and the ones
//! queued before it all become notifications. The test runs on one thread, so the task that drains
//! the queue cannot run until the test awaits: the queue fills deterministically.

use std::sync::Arc;

use confab_core::model::UserFields;
use confab_service::push::{ChatAlert, Push, PushConfig};
use confab_service::{Accounts, AccountsConfig};
use confab_store::sqlite::SqliteStore;

#[tokio::test(flavor = "current_thread")]
async fn a_full_alert_queue_drops_the_next_alert_and_keeps_the_queued_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let accounts = Accounts::new(Arc::new(store.clone()), AccountsConfig::default());
    let app = accounts.create_app("t").await.unwrap().app.id;
    let mut users = Vec::new();
    for login in ["alice", "bob"] {
        let fields = UserFields {
            login: Some(Some(login.into())),
            ..UserFields::default()
        };
        let u = accounts
            .signup(app, fields, Some("password1".into()))
            .await
            .unwrap();
        users.push(u.user_id());
    }
    // The operator webhook gets a notification per alert: no device subscription needed.
    let config = PushConfig {
        webhook: true,
        alert_queue_len: 3,
        ..PushConfig::default()
    };
    let push = Push::new(Arc::new(store.clone()), Arc::new(store.clone()), config);
    let alert = |n: usize| ChatAlert {
        app,
        sender: users[0],
        dialog_id: None,
        message_id: Some(format!("m{n}")),
        body: Some(format!("hello {n}")),
        recipients: vec![users[1]],
        silent: false,
    };
    let taken: Vec<bool> = (0..5).map(|n| push.alert(alert(n))).collect();
    assert_eq!(
        taken,
        [true, true, true, false, false],
        "3 fit, then dropped"
    );

    // Once the queue is drained there is room again.
    let store: Arc<dyn confab_store::PushStore> = push.store();
    let mut queued = Vec::new();
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let now = confab_core::clock::now_millis();
        queued.extend(store.claim_pushes(now, now + 60_000, 100).await.unwrap());
        if queued.len() >= 3 {
            break;
        }
    }
    let bodies: Vec<String> = queued.iter().map(|p| p.payload.clone()).collect();
    assert_eq!(bodies.len(), 3, "{bodies:?}");
    for n in 0..3 {
        assert!(
            bodies.iter().any(|b| b.contains(&format!("hello {n}"))),
            "{bodies:?}"
        );
    }
    assert!(push.alert(alert(5)), "room again");
}
