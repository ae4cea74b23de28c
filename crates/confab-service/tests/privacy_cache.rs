//! The default-list cache: a prefetch reads many users' lists at once and later checks use it
//! without reading the store again, until the list is invalidated.

use std::sync::Arc;

use confab_core::contacts::PrivacyItem;
use confab_core::model::UserFields;
use confab_core::{AppId, UserId};
use confab_service::privacy::MessageVerdict;
use confab_service::{Accounts, AccountsConfig, Privacy};
use confab_store::sqlite::SqliteStore;
use confab_store::PrivacyStore;

struct World {
    _dir: tempfile::TempDir,
    store: SqliteStore,
    privacy: Privacy,
    app: AppId,
    users: Vec<UserId>,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let accounts = Accounts::new(Arc::new(store.clone()), AccountsConfig::default());
    let app = accounts.create_app("t").await.unwrap().app.id;
    let mut users = Vec::new();
    for login in ["alice", "bob", "carol"] {
        let fields = UserFields {
            login: Some(Some(login.into())),
            ..UserFields::default()
        };
        let user = accounts.signup(app, fields, Some("password1".into()));
        users.push(user.await.unwrap().user_id());
    }
    let privacy = Privacy::new(Arc::new(store.clone()), "localhost");
    World {
        _dir: dir,
        store,
        privacy,
        app,
        users,
    }
}

/// Makes `owner`'s default list block `peer` entirely, straight in the store (no invalidation).
async fn block_in_store(w: &World, owner: UserId, peer: UserId) {
    let item = PrivacyItem {
        kind: Some("jid".into()),
        value: Some(format!("{}-{}@localhost", peer.get(), w.app.get())),
        allow: false,
        order: 1,
        stanzas: 0,
    };
    w.store
        .put_privacy_list(w.app, owner, "block", &[item], 1)
        .await
        .unwrap();
    assert!(w
        .store
        .set_default_privacy_list(w.app, owner, Some("block"))
        .await
        .unwrap());
}

async fn verdict(w: &World, from: UserId, to: UserId) -> MessageVerdict {
    w.privacy
        .message_verdict((w.app, from), None, (w.app, to))
        .await
        .unwrap()
}

#[tokio::test]
async fn prefetched_lists_answer_checks_without_reading_the_store() {
    let w = world().await;
    let (alice, bob, carol) = (w.users[0], w.users[1], w.users[2]);
    block_in_store(&w, alice, bob).await;
    w.privacy.prefetch(w.app, &[alice, carol]).await.unwrap();

    // Changed behind the cache's back: the checks still see what the prefetch read.
    assert!(w
        .store
        .set_default_privacy_list(w.app, alice, None)
        .await
        .unwrap());
    block_in_store(&w, carol, bob).await;
    assert_eq!(
        verdict(&w, bob, alice).await,
        MessageVerdict::BlockedByRecipient
    );
    assert_eq!(
        verdict(&w, bob, carol).await,
        MessageVerdict::Deliver,
        "carol had no list"
    );

    // An invalidated user is read again; a second prefetch leaves cached users alone.
    w.privacy.invalidate((w.app, alice));
    w.privacy.prefetch(w.app, &[alice, carol]).await.unwrap();
    assert_eq!(verdict(&w, bob, alice).await, MessageVerdict::Deliver);
    assert_eq!(verdict(&w, bob, carol).await, MessageVerdict::Deliver);
    w.privacy.invalidate((w.app, carol));
    assert_eq!(
        verdict(&w, bob, carol).await,
        MessageVerdict::BlockedByRecipient
    );
}
