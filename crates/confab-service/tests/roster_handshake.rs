//! The presence subscription handshake as the domain runs it: rows on both sides and the effects
//! the live faces are asked to carry out, without sockets.

use std::sync::Arc;

use confab_core::contacts::{PrivacyItem, Subscription};
use confab_core::model::UserFields;
use confab_core::{AppId, ErrorKind, UserId};
use confab_service::roster::{ContactEffect, Notice};
use confab_service::{Accounts, AccountsConfig, Privacy, Roster};
use confab_store::sqlite::SqliteStore;

struct World {
    _dir: tempfile::TempDir,
    roster: Roster,
    privacy: Arc<Privacy>,
    app: AppId,
    alice: UserId,
    bob: UserId,
}

async fn world(max_contacts: u32) -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let accounts = Accounts::new(Arc::new(store.clone()), AccountsConfig::default());
    let app = accounts.create_app("t").await.unwrap().app.id;
    let mut ids = Vec::new();
    for login in ["alice", "bob"] {
        let fields = UserFields {
            login: Some(Some(login.into())),
            ..UserFields::default()
        };
        let user = accounts.signup(app, fields, Some("password1".into()));
        ids.push(user.await.unwrap().user_id());
    }
    let privacy = Arc::new(Privacy::new(Arc::new(store.clone()), "localhost"));
    let roster = Roster::new(
        Arc::new(store.clone()),
        Arc::new(store),
        privacy.clone(),
        max_contacts,
    );
    World {
        _dir: dir,
        roster,
        privacy,
        app,
        alice: ids[0],
        bob: ids[1],
    }
}

fn notices(effects: &[ContactEffect]) -> Vec<(UserId, UserId, Notice)> {
    effects
        .iter()
        .filter_map(|e| match e {
            ContactEffect::Notice { from, to, notice } => Some((from.1, to.1, *notice)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn subscribe_then_approve_makes_a_subscription_both_rows_agree_on() {
    let w = world(300).await;
    let (a, b) = ((w.app, w.alice), (w.app, w.bob));
    let effects = w.roster.subscribe(a, b).await.unwrap();
    assert_eq!(notices(&effects), [(w.alice, w.bob, Notice::Subscribe)]);
    assert!(w.roster.row(a, w.bob).await.unwrap().unwrap().ask);
    assert!(w.roster.row(b, w.alice).await.unwrap().unwrap().pending_in);

    let effects = w.roster.approve(b, a).await.unwrap();
    assert_eq!(notices(&effects), [(w.bob, w.alice, Notice::Subscribed)]);
    assert!(effects.contains(&ContactEffect::SharePresence {
        of: b,
        to: a,
        unavailable: false
    }));
    let alices = w.roster.row(a, w.bob).await.unwrap().unwrap();
    assert_eq!((alices.subscription, alices.ask), (Subscription::To, false));
    let bobs = w.roster.row(b, w.alice).await.unwrap().unwrap();
    assert_eq!(
        (bobs.subscription, bobs.pending_in),
        (Subscription::From, false)
    );
    // Approving again changes nothing; subscribing again is answered for bob.
    assert!(w.roster.approve(b, a).await.unwrap().is_empty());
    let again = w.roster.subscribe(a, b).await.unwrap();
    assert_eq!(notices(&again), [(w.bob, w.alice, Notice::Subscribed)]);

    // Unsubscribing stops alice seeing bob, on both rows, and she sees him go.
    let effects = w.roster.unsubscribe(a, b).await.unwrap();
    assert!(effects.contains(&ContactEffect::SharePresence {
        of: b,
        to: a,
        unavailable: true
    }));
    assert_eq!(
        w.roster
            .row(b, w.alice)
            .await
            .unwrap()
            .unwrap()
            .subscription,
        Subscription::None
    );
    // Removing the contact deletes the row and pushes the removal.
    let effects = w.roster.remove_contact(a, b).await.unwrap().unwrap();
    assert!(matches!(
        effects.last(),
        Some(ContactEffect::Push { removed: true, .. })
    ));
    assert!(w.roster.row(a, w.bob).await.unwrap().is_none());
    assert!(w.roster.remove_contact(a, b).await.unwrap().is_none());
}

#[tokio::test]
async fn a_blocked_request_is_never_heard_of_and_unknown_users_are_not_found() {
    let w = world(300).await;
    let (a, b) = ((w.app, w.alice), (w.app, w.bob));
    let block = PrivacyItem {
        kind: Some("jid".into()),
        value: Some(format!("{}-{}@localhost", w.alice, w.app)),
        allow: false,
        order: 1,
        stanzas: confab_core::contacts::stanzas::PRESENCE_IN,
    };
    w.privacy.put_list(b, "bl", &[block]).await.unwrap();
    w.privacy.set_default(b, Some("bl")).await.unwrap();
    let effects = w.roster.subscribe(a, b).await.unwrap();
    assert!(notices(&effects).is_empty());
    assert!(w.roster.row(b, w.alice).await.unwrap().is_none());

    let ghost = (w.app, UserId::new(999_999).unwrap());
    let e = w.roster.subscribe(a, ghost).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
}

#[tokio::test]
async fn the_contact_limit_refuses_a_new_contact_and_changes_nothing() {
    let w = world(0).await;
    let e = w
        .roster
        .subscribe((w.app, w.alice), (w.app, w.bob))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden);
    assert!(w
        .roster
        .row((w.app, w.alice), w.bob)
        .await
        .unwrap()
        .is_none());
    assert!(w
        .roster
        .row((w.app, w.bob), w.alice)
        .await
        .unwrap()
        .is_none());
}
