//! The store conformance suite: what every backend must do, written against the traits only.
//!
//! A backend's test file builds a fresh, empty store per test and runs each suite through
//! `conformance_suite!`, so a second backend is held to exactly the same behaviour.

use std::collections::HashSet;

use confab_core::chat::{Dialog, DialogType, Message};
use confab_core::clock::Millis;
use confab_core::contacts::{stanzas, PrivacyItem, RosterItem, Subscription};
use confab_core::model::{UserFields, UserQuery};
use confab_core::query::Query;
use confab_core::{AppId, ErrorKind, ObjectId, UserId};
use confab_store::{
    AccountStore, BlobStore, ChatFlags, ChatKey, ChatServerStore, ChatStore, Contact,
    DeviceSession, FileNaming, Media, MemberChange, MessageSearch, NewBlob, NewPush,
    NewSubscription, NewUser, OfflineStore, PrivacyStore, PushStore, RosterStore, UserKey, Viewer,
};
use serde_json::Map;

/// Every capability a backend provides.
pub trait Stores:
    AccountStore
    + BlobStore
    + ChatServerStore
    + ChatStore
    + OfflineStore
    + PrivacyStore
    + PushStore
    + RosterStore
{
}
impl<
        T: AccountStore
            + BlobStore
            + ChatServerStore
            + ChatStore
            + OfflineStore
            + PrivacyStore
            + PushStore
            + RosterStore,
    > Stores for T
{
}

/// Runs every suite against `$make` (an async expression giving a fresh store and whatever keeps
/// it alive, as `(store, guard)`). With `skippable`, `$make` gives an `Option` of that, and `None`
/// skips the test (a backend whose server the environment does not provide, on request only).
#[macro_export]
macro_rules! conformance_suite {
    (skippable $make:expr) => {
        $crate::conformance_suite!(@list $make, |made| match made {
            Some(made) => made,
            None => return,
        });
    };
    ($make:expr) => {
        $crate::conformance_suite!(@list $make, |made| made);
    };
    (@list $make:expr, |$made:ident| $unwrap:expr) => {
        $crate::conformance_suite!(@tests $make, |$made| $unwrap;
            accounts_users_and_uniqueness,
            accounts_sessions_expire_and_follow_their_user,
            offline_queue_is_bounded_claimed_once_and_released,
            offline_claims_of_gone_nodes_are_released,
            privacy_lists_round_trip_with_one_default,
            roster_rows_and_the_contact_limit,
            private_dialogs_are_one_per_pair,
            concurrent_private_dialogs_are_all_written,
            group_dialogs_members_and_roles,
            messages_update_last_message_and_unread_counts,
            a_burst_of_messages_leaves_each_dialog_as_one_by_one_would,
            occupant_messages_are_stored_only_for_occupants,
            messages_deleted_for_one_or_for_all,
            search_finds_words_and_phrases_within_the_app,
            blobs_are_per_app_owned_and_granted_once,
            push_subscriptions_are_per_device_and_go_with_their_user,
            push_outbox_is_claimed_under_a_lease_retried_and_finished,
            deleting_an_app_takes_everything_in_it,
            chatserver_sessions_and_stable_ids,
            chatserver_rest_state,
        );
    };
    (@tests $make:expr, |$made:ident| $unwrap:expr; $($name:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let $made = $make.await;
                let (store, _guard) = $unwrap;
                conformance::$name(&store).await;
            }
        )+
    };
}

const NOW: Millis = 1_700_000_000_000;

async fn app(s: &impl Stores, name: &str) -> AppId {
    s.create_app(name, &format!("key-{name}"), "secret", name.as_bytes(), NOW)
        .await
        .unwrap()
        .id
}

async fn user(s: &impl Stores, app: AppId, login: &str) -> UserId {
    let u = s
        .create_user(NewUser {
            app_id: app.get(),
            fields: UserFields {
                login: Some(Some(login.into())),
                email: Some(Some(format!("{login}@example.com"))),
                ..Default::default()
            },
            password_hash: Some("hash".into()),
            is_guest: false,
            now: NOW,
        })
        .await
        .unwrap();
    UserId::new(u.id).unwrap()
}

fn dialog(app: AppId, kind: DialogType, owner: UserId) -> Dialog {
    Dialog {
        id: ObjectId::generate(),
        app_id: app.get(),
        kind,
        owner_id: owner.get(),
        name: Some("D".into()),
        description: None,
        photo: None,
        occupants_ids: Vec::new(),
        occupants_count: 0,
        admins_ids: Vec::new(),
        pinned_messages_ids: Vec::new(),
        data: None,
        extensions: None,
        last_message: None,
        last_message_date_sent: None,
        last_message_id: None,
        last_message_user_id: None,
        last_message_delivered_ids: Vec::new(),
        last_message_read_ids: Vec::new(),
        created_at: NOW,
        updated_at: NOW,
    }
}

fn message(app: AppId, dialog: ObjectId, from: UserId, to: i64, body: &str, at: i64) -> Message {
    Message {
        id: ObjectId::generate(),
        app_id: app.get(),
        dialog_id: dialog,
        sender_id: from.get(),
        recipient_id: to,
        body: Some(body.into()),
        date_sent: at,
        attachments: Vec::new(),
        custom: Map::new(),
        read_ids: vec![from.get()],
        delivered_ids: vec![from.get()],
        deleted_for_ids: Vec::new(),
        reactions: Map::new(),
        markable: false,
        views_count: 0,
        edited_at: None,
        created_at: NOW + at,
        updated_at: NOW + at,
    }
}

fn page(limit: u32) -> Query {
    Query {
        limit,
        ..Default::default()
    }
}

async fn group(s: &impl Stores, app: AppId, owner: UserId, members: &[UserId]) -> ObjectId {
    let ids: Vec<i64> = members.iter().map(|u| u.get()).collect();
    s.insert_dialog(&dialog(app, DialogType::Group, owner), None, &ids)
        .await
        .unwrap()
}

pub async fn accounts_users_and_uniqueness(s: &impl Stores) {
    let a = app(s, "a").await;
    let b = app(s, "b").await;
    assert_eq!(s.app(a).await.unwrap().unwrap().name, "a");
    assert_eq!(s.app_by_auth_key("key-b").await.unwrap().unwrap().id, b);
    assert_eq!(s.app_by_api_key(b"a").await.unwrap().unwrap().id, a);
    assert!(s.app_by_auth_key("nope").await.unwrap().is_none());

    let alice = user(s, a, "alice").await;
    // The same login in another app is another user; in the same app it is taken.
    let other = user(s, b, "alice").await;
    assert_ne!(alice, other);
    let dup = s
        .create_user(NewUser {
            app_id: a.get(),
            fields: UserFields {
                login: Some(Some("alice".into())),
                ..Default::default()
            },
            now: NOW,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(dup.kind, ErrorKind::Invalid);

    let by_login = s.user(a, UserKey::Login("alice".into())).await.unwrap();
    assert_eq!(by_login.unwrap().id, alice.get());
    let by_email = s
        .user(a, UserKey::Email("alice@example.com".into()))
        .await
        .unwrap();
    assert_eq!(by_email.unwrap().id, alice.get());
    // Another app's user is invisible by id.
    assert!(s.user(a, UserKey::Id(other.get())).await.unwrap().is_none());
    assert_eq!(
        s.user_password_hash(a, alice).await.unwrap().as_deref(),
        Some("hash")
    );
    user(s, a, "bob").await;
    let query = UserQuery {
        limit: 10,
        ..Default::default()
    };
    let (users, total) = s.list_users(a, &query).await.unwrap();
    assert_eq!((users.len(), total), (2, 2));

    let changed = UserFields {
        full_name: Some(Some("Alice A".into())),
        ..Default::default()
    };
    let u = s
        .update_user(a, alice, &changed, None, NOW + 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(u.full_name.as_deref(), Some("Alice A"));
    // A part of the name or of the login, whatever the case.
    for (part, expected) in [
        ("ICE a", 1),
        ("OB", 1),
        ("li", 1),
        ("zz", 0),
        ("b", 1),
        ("a", 1),
    ] {
        let query = UserQuery {
            name_or_login: Some(part.into()),
            limit: 10,
            ..Default::default()
        };
        let (_, total) = s.list_users(a, &query).await.unwrap();
        assert_eq!(total, expected, "{part}");
    }
    assert!(s.delete_user(a, alice).await.unwrap());
    assert!(!s.delete_user(a, alice).await.unwrap());
    assert!(s.user(a, UserKey::Id(alice.get())).await.unwrap().is_none());
}

pub async fn accounts_sessions_expire_and_follow_their_user(s: &impl Stores) {
    let a = app(s, "a").await;
    let alice = user(s, a, "alice").await;
    let sess = s
        .create_session(a, None, b"t1", NOW, NOW + 1000)
        .await
        .unwrap();
    let found = s.session_by_token(b"t1", NOW + 10).await.unwrap().unwrap();
    assert_eq!((found.id, found.user_id), (sess.id, None));
    s.set_session_user(sess.id, Some(alice), NOW + 20)
        .await
        .unwrap();
    let found = s.session_by_token(b"t1", NOW + 30).await.unwrap().unwrap();
    assert_eq!(found.user_id, Some(alice));
    // Expired at its time; extended by a touch.
    assert!(s
        .session_by_token(b"t1", NOW + 1000)
        .await
        .unwrap()
        .is_none());
    s.touch_session(&found, NOW + 40, NOW + 5000).await.unwrap();
    assert!(s
        .session_by_token(b"t1", NOW + 4000)
        .await
        .unwrap()
        .is_some());
    // Purging removes only the expired ones.
    s.create_session(a, None, b"t2", NOW, NOW + 100)
        .await
        .unwrap();
    assert_eq!(s.purge_expired_sessions(NOW + 200).await.unwrap(), 1);
    assert!(s
        .session_by_token(b"t1", NOW + 300)
        .await
        .unwrap()
        .is_some());
    // Deleting the user ends their sessions.
    s.delete_user(a, alice).await.unwrap();
    assert!(s
        .session_by_token(b"t1", NOW + 300)
        .await
        .unwrap()
        .is_none());
    let other = s
        .create_session(a, None, b"t3", NOW, NOW + 1000)
        .await
        .unwrap();
    s.delete_session(other.id).await.unwrap();
    assert!(s.session_by_token(b"t3", NOW).await.unwrap().is_none());
}

pub async fn offline_queue_is_bounded_claimed_once_and_released(s: &impl Stores) {
    let a = app(s, "a").await;
    let bob = user(s, a, "bob").await;
    let carol = user(s, a, "carol").await;
    let entries = [("<m1/>", NOW), ("<m2/>", NOW + 1), ("<m3/>", NOW + 2)];
    // Only as many as fit below the limit, in order.
    assert_eq!(s.push_offline_many(a, bob, &entries, 2).await.unwrap(), 2);
    assert!(!s.push_offline(a, bob, "<m3/>", NOW + 2, 2).await.unwrap());
    assert!(s.push_offline(a, carol, "<c/>", NOW, 2).await.unwrap());

    let first = s.claim_offline(a, bob, "s1").await.unwrap();
    let stanzas: Vec<&str> = first.iter().map(|m| m.stanza.as_str()).collect();
    assert_eq!(stanzas, ["<m1/>", "<m2/>"], "oldest first");
    // Claimed rows are invisible to a second claim, and not another claim's to delete.
    assert!(s.claim_offline(a, bob, "s2").await.unwrap().is_empty());
    assert_eq!(
        s.delete_offline(a, bob, "s2", &[first[0].id])
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        s.delete_offline(a, bob, "s1", &[first[0].id])
            .await
            .unwrap(),
        1
    );
    // Released rows come back; deleted ones do not.
    assert_eq!(s.release_offline(a, bob, "s1").await.unwrap(), 1);
    let again = s.claim_offline(a, bob, "s3").await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].stanza, "<m2/>");
    // A restart releases every claim; other users' rows were never touched.
    s.claim_offline(a, carol, "s4").await.unwrap();
    assert_eq!(s.release_all_offline().await.unwrap(), 2);
    assert_eq!(s.claim_offline(a, carol, "s5").await.unwrap().len(), 1);
}

pub async fn offline_claims_of_gone_nodes_are_released(s: &impl Stores) {
    let a = app(s, "a").await;
    let bob = user(s, a, "bob").await;
    let carol = user(s, a, "carol").await;
    let dave = user(s, a, "dave").await;
    for u in [bob, carol, dave] {
        let entries = [("<m1/>", NOW), ("<m2/>", NOW + 1)];
        assert_eq!(s.push_offline_many(a, u, &entries, 10).await.unwrap(), 2);
    }
    s.claim_offline(a, bob, "node-1:s1").await.unwrap();
    s.claim_offline(a, carol, "node-2:s2").await.unwrap();
    // A claim in the format without a node, left by an older version.
    s.claim_offline(a, dave, "s3").await.unwrap();

    // Node names are compared whole: `node` is not a prefix match for `node-1`.
    let released = s
        .release_offline_claims_except(&["node-1", "node"])
        .await
        .unwrap();
    let mut released: Vec<i64> = released.iter().map(|(_, u)| u.get()).collect();
    released.sort();
    let mut expected = vec![carol.get(), dave.get()];
    expected.sort();
    assert_eq!(released, expected, "each user once");
    assert!(s
        .claim_offline(a, bob, "node-3:x")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        s.claim_offline(a, carol, "node-3:y").await.unwrap().len(),
        2
    );
    assert_eq!(s.claim_offline(a, dave, "node-3:z").await.unwrap().len(), 2);
    // Nothing left to release while every holder is alive.
    assert!(s
        .release_offline_claims_except(&["node-1", "node-3"])
        .await
        .unwrap()
        .is_empty());
    // A node restarting releases its own claims, and only those.
    assert_eq!(s.release_offline_claims_of("node-3").await.unwrap(), 4);
    assert_eq!(s.release_offline_claims_of("node").await.unwrap(), 0);
    assert!(s
        .claim_offline(a, bob, "node-4:w")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        s.claim_offline(a, carol, "node-4:v").await.unwrap().len(),
        2
    );
}

pub async fn privacy_lists_round_trip_with_one_default(s: &impl Stores) {
    let a = app(s, "a").await;
    let alice = user(s, a, "alice").await;
    let items = vec![
        PrivacyItem {
            kind: Some("jid".into()),
            value: Some("2-1@localhost".into()),
            allow: false,
            order: 2,
            stanzas: stanzas::MESSAGE | stanzas::PRESENCE_IN,
        },
        PrivacyItem {
            kind: None,
            value: None,
            allow: true,
            order: 1,
            stanzas: 0,
        },
    ];
    s.put_privacy_list(a, alice, "bl", &items, NOW)
        .await
        .unwrap();
    s.put_privacy_list(a, alice, "other", &items[..1], NOW)
        .await
        .unwrap();
    assert_eq!(
        s.privacy_list(a, alice, "bl").await.unwrap().unwrap(),
        items,
        "kept in the client's order"
    );
    assert!(s.privacy_list(a, alice, "nope").await.unwrap().is_none());
    assert!(s.default_privacy_list(a, alice).await.unwrap().is_none());
    assert!(s
        .set_default_privacy_list(a, alice, Some("bl"))
        .await
        .unwrap());
    assert!(!s
        .set_default_privacy_list(a, alice, Some("nope"))
        .await
        .unwrap());
    let names = s.privacy_names(a, alice).await.unwrap();
    assert_eq!(names.default.as_deref(), Some("bl"));
    let mut all = names.names.clone();
    all.sort();
    assert_eq!(all, ["bl", "other"]);
    // Replacing a list keeps its default flag; only one list is the default.
    s.put_privacy_list(a, alice, "bl", &items[..1], NOW + 1)
        .await
        .unwrap();
    assert_eq!(
        s.default_privacy_list(a, alice).await.unwrap().unwrap(),
        items[..1]
    );
    // Read together: only the users with a default list, each with theirs.
    let bob = user(s, a, "bob").await;
    s.put_privacy_list(a, bob, "not-default", &items, NOW)
        .await
        .unwrap();
    let b = app(s, "b").await;
    let lists = s.default_privacy_lists(b, &[alice, bob]).await.unwrap();
    assert!(lists.is_empty(), "another app's users are other users");
    let lists = s.default_privacy_lists(a, &[alice, bob]).await.unwrap();
    assert_eq!(lists.len(), 1);
    assert_eq!(lists[&alice], items[..1]);
    assert!(s.default_privacy_lists(a, &[]).await.unwrap().is_empty());
    assert!(s
        .set_default_privacy_list(a, alice, Some("other"))
        .await
        .unwrap());
    assert_eq!(
        s.privacy_names(a, alice).await.unwrap().default.as_deref(),
        Some("other")
    );
    assert!(s.set_default_privacy_list(a, alice, None).await.unwrap());
    assert!(s.default_privacy_list(a, alice).await.unwrap().is_none());
    assert!(s.delete_privacy_list(a, alice, "bl").await.unwrap());
    assert!(!s.delete_privacy_list(a, alice, "bl").await.unwrap());
}

pub async fn roster_rows_and_the_contact_limit(s: &impl Stores) {
    let a = app(s, "a").await;
    let alice = user(s, a, "alice").await;
    let bob = user(s, a, "bob").await;
    let carol = user(s, a, "carol").await;
    let dave = user(s, a, "dave").await;
    let mut item = RosterItem::new(bob);
    item.name = Some("Bob".into());
    item.groups = vec!["friends".into()];
    item.subscription = Subscription::To;
    assert!(s.put_roster_item(a, alice, &item, 2, NOW).await.unwrap());
    assert!(s
        .put_roster_item(a, alice, &RosterItem::new(carol), 2, NOW)
        .await
        .unwrap());
    // The limit refuses a new visible contact, but not an update nor a hidden row.
    assert!(!s
        .put_roster_item(a, alice, &RosterItem::new(dave), 2, NOW)
        .await
        .unwrap());
    item.subscription = Subscription::Both;
    assert!(s.put_roster_item(a, alice, &item, 2, NOW).await.unwrap());
    let mut pending = RosterItem::new(dave);
    pending.in_roster = false;
    pending.pending_in = true;
    assert!(s.put_roster_item(a, alice, &pending, 2, NOW).await.unwrap());

    let rows = s.roster(a, alice).await.unwrap();
    assert_eq!(rows.len(), 3);
    let got = s.roster_item(a, alice, bob).await.unwrap().unwrap();
    assert_eq!(got, item);
    assert!(
        s.roster(a, bob).await.unwrap().is_empty(),
        "rows are one-sided"
    );
    assert!(s.delete_roster_item(a, alice, carol).await.unwrap());
    assert!(!s.delete_roster_item(a, alice, carol).await.unwrap());
    assert!(s.roster_item(a, alice, carol).await.unwrap().is_none());
}

pub async fn private_dialogs_are_one_per_pair(s: &impl Stores) {
    let a = app(s, "a").await;
    let alice = user(s, a, "alice").await;
    let bob = user(s, a, "bob").await;
    let (low, high) = (alice.get().min(bob.get()), alice.get().max(bob.get()));
    let first = dialog(a, DialogType::Private, alice);
    let id = s
        .create_private_dialog(&first, low, high)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(id, first.id);
    // Asked again (from either side), the pair's dialog comes back, not a new one.
    let again = s
        .create_private_dialog(&dialog(a, DialogType::Private, bob), low, high)
        .await
        .unwrap();
    assert_eq!(again, Some(id));
    let key = format!("{low}:{high}");
    assert_eq!(
        s.find_private_dialog(a.get(), &key).await.unwrap(),
        Some(id)
    );
    // An unknown user makes no dialog.
    assert_eq!(
        s.create_private_dialog(&dialog(a, DialogType::Private, alice), low, 999_999)
            .await
            .unwrap(),
        None
    );
    let d = s.dialog(a.get(), id).await.unwrap().unwrap();
    let mut occupants = d.occupants_ids.clone();
    occupants.sort();
    assert_eq!(occupants, [low, high]);
    let target = s
        .post_target(a.get(), id, alice.get())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(target.kind, DialogType::Private);
    assert_eq!(target.recipient_id, bob.get());
    assert!(target.member);
    // Another app does not see it.
    let b = app(s, "b").await;
    assert!(s.dialog(b.get(), id).await.unwrap().is_none());
}

/// Private dialogs of many pairs created at once (they share the writer's batches) are all
/// written with the ids they were given; one with an unknown user is not written.
pub async fn concurrent_private_dialogs_are_all_written(s: &impl Stores) {
    let a = app(s, "a").await;
    let mut users = Vec::new();
    for i in 0..6 {
        users.push(user(s, a, &format!("u{i}")).await.get());
    }
    let pairs: Vec<(i64, i64)> = (1..6).map(|i| (users[0], users[i])).collect();
    let creates = pairs.iter().map(|&(low, high)| {
        let d = dialog(a, DialogType::Private, UserId::new(low).unwrap());
        async move { (d.id, s.create_private_dialog(&d, low, high).await) }
    });
    for (id, got) in futures_util::future::join_all(creates).await {
        assert_eq!(got.unwrap(), Some(id));
    }
    for &(low, high) in &pairs {
        let key = format!("{low}:{high}");
        assert!(s
            .find_private_dialog(a.get(), &key)
            .await
            .unwrap()
            .is_some());
    }
    let d = dialog(a, DialogType::Private, UserId::new(users[0]).unwrap());
    assert_eq!(
        s.create_private_dialog(&d, users[0], 999_999)
            .await
            .unwrap(),
        None
    );
    // Looked up at once (they share the lookup's batches), each pair gets its own answer: the
    // pairs with a dialog their id, the others and another app's same keys nothing.
    let b = app(s, "b").await;
    let mut asked = Vec::new();
    for (low, high) in pairs
        .iter()
        .copied()
        .chain((2..6).map(|i| (users[1], users[i])))
    {
        for app in [a, b] {
            asked.push((app, format!("{low}:{high}"), app == a && low == users[0]));
        }
    }
    let lookups = asked
        .iter()
        .map(|(app, key, _)| s.find_private_dialog(app.get(), key));
    let found = futures_util::future::join_all(lookups).await;
    let mut ids = HashSet::new();
    for ((_, key, has), got) in asked.iter().zip(found) {
        let got = got.unwrap();
        assert_eq!(got.is_some(), *has, "pair {key}");
        ids.extend(got);
    }
    assert_eq!(ids.len(), pairs.len(), "one dialog per pair");
}

pub async fn group_dialogs_members_and_roles(s: &impl Stores) {
    let a = app(s, "a").await;
    let owner = user(s, a, "owner").await;
    let bob = user(s, a, "bob").await;
    let carol = user(s, a, "carol").await;
    let id = group(s, a, owner, &[owner, bob]).await;
    assert!(s.membership(id, bob.get()).await.unwrap().unwrap().occupant);
    assert!(s.membership(id, carol.get()).await.unwrap().is_none());
    let t = s
        .post_target(a.get(), id, carol.get())
        .await
        .unwrap()
        .unwrap();
    assert!(!t.member);
    assert_eq!(t.owner_id, owner.get());

    s.add_members(id, &[carol.get()], NOW).await.unwrap();
    let (members, total) = s.members(id, 10, 0).await.unwrap();
    assert_eq!(total, 3);
    assert_eq!(members.len(), 3);
    s.remove_members(id, &[bob.get()]).await.unwrap();
    assert!(!s
        .membership(id, bob.get())
        .await
        .unwrap()
        .is_some_and(|m| m.occupant));
    let (listed, total) = s
        .list_dialogs(a.get(), Viewer::User(carol.get()), &page(10))
        .await
        .unwrap();
    assert_eq!((listed.len(), total), (1, 1));
    assert!(s
        .list_dialogs(a.get(), Viewer::User(bob.get()), &page(10))
        .await
        .unwrap()
        .0
        .is_empty());

    s.set_member_state(id, carol.get(), MemberChange::Notifications(false), NOW)
        .await
        .unwrap();
    let m = s.membership(id, carol.get()).await.unwrap().unwrap();
    assert!(!m.state.notifications);

    let mut d = s.dialog(a.get(), id).await.unwrap().unwrap();
    d.name = Some("Renamed".into());
    d.admins_ids = vec![carol.get()];
    s.save_dialog(&d).await.unwrap();
    let d = s.dialog(a.get(), id).await.unwrap().unwrap();
    assert_eq!(d.name.as_deref(), Some("Renamed"));
    assert_eq!(d.admins_ids, [carol.get()]);
    s.delete_dialog(id).await.unwrap();
    assert!(s.dialog(a.get(), id).await.unwrap().is_none());
}

pub async fn messages_update_last_message_and_unread_counts(s: &impl Stores) {
    let a = app(s, "a").await;
    let alice = user(s, a, "alice").await;
    let bob = user(s, a, "bob").await;
    let carol = user(s, a, "carol").await;
    let id = group(s, a, alice, &[alice, bob, carol]).await;
    let m1 = message(a, id, alice, 0, "one", 100);
    let m2 = message(a, id, alice, 0, "two", 200);
    s.insert_message(&m1).await.unwrap();
    s.insert_message(&m2).await.unwrap();
    let d = s.dialog(a.get(), id).await.unwrap().unwrap();
    assert_eq!(d.last_message.as_deref(), Some("two"));
    assert_eq!(d.last_message_user_id, Some(alice.get()));
    assert_eq!(s.unread_total(a.get(), bob.get()).await.unwrap(), 2);
    assert_eq!(s.unread_total(a.get(), alice.get()).await.unwrap(), 0);
    assert_eq!(
        s.unread_counts(a.get(), carol.get(), Some(&[id]))
            .await
            .unwrap(),
        [(id, 2)]
    );
    let (items, total) = s
        .list_messages(id, Some(bob.get()), None, &page(10), true)
        .await
        .unwrap();
    assert_eq!(total, 2);
    assert_eq!(items.len(), 2);
    assert_eq!(
        s.message(a.get(), m1.id).await.unwrap().unwrap().body,
        m1.body
    );

    // Marks: one message read, then the whole dialog.
    s.mark_messages(id, bob.get(), Some(&[m1.id]), true)
        .await
        .unwrap();
    assert_eq!(s.unread_total(a.get(), bob.get()).await.unwrap(), 1);
    let m = s.message(a.get(), m1.id).await.unwrap().unwrap();
    assert!(m.read_ids.contains(&bob.get()) && m.delivered_ids.contains(&bob.get()));
    s.mark_messages(id, bob.get(), None, true).await.unwrap();
    assert_eq!(s.unread_total(a.get(), bob.get()).await.unwrap(), 0);
    assert_eq!(s.unread_total(a.get(), carol.get()).await.unwrap(), 2);

    s.edit_message(m2.id, Some("two, edited"), NOW + 500)
        .await
        .unwrap();
    let m = s.message(a.get(), m2.id).await.unwrap().unwrap();
    assert_eq!(m.body.as_deref(), Some("two, edited"));
    let mut reactions = Map::new();
    reactions.insert("👍".into(), serde_json::json!([bob.get()]));
    s.set_reactions(m2.id, &reactions, NOW + 600).await.unwrap();
    let m = s.message(a.get(), m2.id).await.unwrap().unwrap();
    assert_eq!(m.reactions, reactions);
    let (all, total) = s.list_app_messages(a.get(), &page(10)).await.unwrap();
    assert_eq!((all.len(), total), (2, 2));
}

/// Messages sent at once share the writer's batches: each dialog still ends with its last
/// message, and each member's unread count with what the others sent, as when written one by one.
pub async fn a_burst_of_messages_leaves_each_dialog_as_one_by_one_would(s: &impl Stores) {
    let a = app(s, "a").await;
    let alice = user(s, a, "alice").await;
    let bob = user(s, a, "bob").await;
    let carol = user(s, a, "carol").await;
    let g1 = group(s, a, alice, &[alice, bob, carol]).await;
    let g2 = group(s, a, bob, &[alice, bob]).await;
    s.set_member_state(g2, alice.get(), MemberChange::Hidden(true), NOW)
        .await
        .unwrap();
    let plan = [
        (g1, alice),
        (g2, bob),
        (g1, bob),
        (g1, carol),
        (g2, alice),
        (g1, alice),
        (g2, bob),
    ];
    let messages: Vec<Message> = plan
        .iter()
        .enumerate()
        .map(|(i, &(d, from))| message(a, d, from, 0, &format!("m{i}"), 100 + i as i64))
        .collect();
    let written =
        futures_util::future::join_all(messages.iter().map(|m| s.insert_message(m))).await;
    assert!(written.iter().all(|w| w.is_ok()), "{written:?}");

    let last = |id| async move { s.dialog(a.get(), id).await.unwrap().unwrap() };
    let d1 = last(g1).await;
    assert_eq!(d1.last_message.as_deref(), Some("m5"));
    assert_eq!(d1.last_message_user_id, Some(alice.get()));
    let d2 = last(g2).await;
    assert_eq!(d2.last_message.as_deref(), Some("m6"));
    assert_eq!(d2.last_message_user_id, Some(bob.get()));
    // g1: alice sent 2, bob 1, carol 1; g2: bob 2, alice 1.
    for (who, expected) in [
        (alice, [(g1, 2), (g2, 2)]),
        (bob, [(g1, 3), (g2, 1)]),
        (carol, [(g1, 3), (g2, 0)]),
    ] {
        let mut counts = s
            .unread_counts(a.get(), who.get(), Some(&[g1, g2]))
            .await
            .unwrap();
        counts.retain(|c| c.1 > 0);
        counts.sort();
        let mut expected: Vec<(ObjectId, i64)> =
            expected.iter().filter(|e| e.1 > 0).cloned().collect();
        expected.sort();
        assert_eq!(counts, expected, "unread counts of user {who:?}");
    }
    // A new message brings a hidden dialog back.
    let m = s.membership(g2, alice.get()).await.unwrap().unwrap();
    assert!(!m.state.hidden);
}

/// `insert_occupant_message`: the store checks the sender's place in the dialog as it writes,
/// also within a batch of others.
pub async fn occupant_messages_are_stored_only_for_occupants(s: &impl Stores) {
    let a = app(s, "a").await;
    let alice = user(s, a, "alice").await;
    let bob = user(s, a, "bob").await;
    let carol = user(s, a, "carol").await;
    let id = group(s, a, alice, &[alice, bob]).await;
    let by_alice = message(a, id, alice, 0, "alice's", 100);
    let by_carol = message(a, id, carol, 0, "carol's", 101);
    let by_bob = message(a, id, bob, 0, "bob's", 102);
    let (alice_wrote, carol_wrote, bob_wrote) = tokio::join!(
        s.insert_occupant_message(&by_alice),
        s.insert_occupant_message(&by_carol),
        s.insert_message(&by_bob),
    );
    alice_wrote.unwrap();
    bob_wrote.unwrap();
    assert_eq!(carol_wrote.unwrap_err().kind, ErrorKind::NotFound);
    assert!(s.message(a.get(), by_carol.id).await.unwrap().is_none());
    // A resent message is a taken id, not a stranger.
    let again = s.insert_occupant_message(&by_alice).await.unwrap_err();
    assert_eq!(again.kind, ErrorKind::Invalid);
    assert!(again.fields.contains_key("_id"), "{again:?}");
    let d = s.dialog(a.get(), id).await.unwrap().unwrap();
    assert_eq!(d.last_message.as_deref(), Some("bob's"));
    assert_eq!(s.unread_total(a.get(), alice.get()).await.unwrap(), 1);
    assert_eq!(s.unread_total(a.get(), bob.get()).await.unwrap(), 1);
}

pub async fn messages_deleted_for_one_or_for_all(s: &impl Stores) {
    let a = app(s, "a").await;
    let alice = user(s, a, "alice").await;
    let bob = user(s, a, "bob").await;
    let id = group(s, a, alice, &[alice, bob]).await;
    let m1 = message(a, id, alice, 0, "one", 100);
    let m2 = message(a, id, alice, 0, "two", 200);
    s.insert_message(&m1).await.unwrap();
    s.insert_message(&m2).await.unwrap();
    // For one user: gone from their view only.
    s.delete_messages_for_user(id, bob.get(), &[m1.id])
        .await
        .unwrap();
    let (bobs, _) = s
        .list_messages(id, Some(bob.get()), None, &page(10), true)
        .await
        .unwrap();
    assert_eq!(bobs.len(), 1);
    let (alices, _) = s
        .list_messages(id, Some(alice.get()), None, &page(10), true)
        .await
        .unwrap();
    assert_eq!(alices.len(), 2);
    assert_eq!(s.unread_total(a.get(), bob.get()).await.unwrap(), 1);
    // For everyone: last_message falls back to the newest remaining one, unread counts follow.
    s.delete_messages(id, &[m2.id]).await.unwrap();
    assert!(s.message(a.get(), m2.id).await.unwrap().is_none());
    let d = s.dialog(a.get(), id).await.unwrap().unwrap();
    assert_eq!(d.last_message.as_deref(), Some("one"));
    assert_eq!(s.unread_total(a.get(), bob.get()).await.unwrap(), 0);
    // Clearing history hides what came before the mark.
    s.set_member_state(id, alice.get(), MemberChange::ClearedBefore(m1.id), NOW)
        .await
        .unwrap();
    let (after, _) = s
        .list_messages(id, Some(alice.get()), Some(m1.id), &page(10), true)
        .await
        .unwrap();
    assert!(after.is_empty());
    // What is stored after the mark shows, even with a lower id (another node's, in the same
    // second); in search too.
    let mut m3 = message(a, id, bob, 0, "three", 300);
    m3.id = "000000000000000000000001".parse().unwrap();
    s.insert_message(&m3).await.unwrap();
    let (after, _) = s
        .list_messages(id, Some(alice.get()), Some(m1.id), &page(10), true)
        .await
        .unwrap();
    assert_eq!(after.iter().map(|m| m.id).collect::<Vec<_>>(), [m3.id]);
    let search = MessageSearch {
        app_id: a.get(),
        user_id: alice.get(),
        terms: vec!["one".into(), "three".into()],
        dialog_ids: None,
        date_from: None,
        date_to: None,
        limit: 10,
    };
    let found = s.search_messages(&search).await.unwrap();
    assert_eq!(found.iter().map(|m| m.id).collect::<Vec<_>>(), [m3.id]);
    // Once the mark's message is gone, ids decide.
    s.delete_messages(id, &[m1.id]).await.unwrap();
    let (after, _) = s
        .list_messages(id, Some(alice.get()), Some(m1.id), &page(10), true)
        .await
        .unwrap();
    assert!(after.is_empty(), "m3's id is below the mark's");
}

pub async fn search_finds_words_and_phrases_within_the_app(s: &impl Stores) {
    let a = app(s, "a").await;
    let alice = user(s, a, "alice").await;
    let bob = user(s, a, "bob").await;
    let id = group(s, a, alice, &[alice, bob]).await;
    for (i, body) in ["the quick brown fox", "lazy dogs sleep", "brown bread"]
        .iter()
        .enumerate()
    {
        s.insert_message(&message(a, id, alice, 0, body, 100 + i as i64))
            .await
            .unwrap();
    }
    let b = app(s, "b").await;
    let eve = user(s, b, "eve").await;
    let other = group(s, b, eve, &[eve]).await;
    s.insert_message(&message(b, other, eve, 0, "brown fox elsewhere", 100))
        .await
        .unwrap();
    let search = |terms: &[&str], user: UserId, app: AppId| MessageSearch {
        app_id: app.get(),
        user_id: user.get(),
        terms: terms.iter().map(|t| t.to_string()).collect(),
        dialog_ids: None,
        date_from: None,
        date_to: None,
        limit: 10,
    };
    let mut found: Vec<String> = s
        .search_messages(&search(&["brown"], bob, a))
        .await
        .unwrap()
        .into_iter()
        .filter_map(|m| m.body)
        .collect();
    found.sort();
    assert_eq!(found, ["brown bread", "the quick brown fox"]);
    let phrase = s
        .search_messages(&search(&["quick brown"], bob, a))
        .await
        .unwrap();
    assert_eq!(phrase.len(), 1);
    // Words are OR-ed; no terms match nothing; another app's messages never show.
    assert_eq!(
        s.search_messages(&search(&["lazy", "bread"], bob, a))
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(s
        .search_messages(&search(&[], bob, a))
        .await
        .unwrap()
        .is_empty());
    assert!(s
        .search_messages(&search(&["elsewhere"], bob, a))
        .await
        .unwrap()
        .is_empty());
}

fn new_blob(app: AppId, user: UserId, uid: &str, now: Millis) -> NewBlob {
    NewBlob {
        app_id: app,
        user_id: user,
        uid: uid.into(),
        name: format!("{uid}.txt"),
        content_type: "text/plain".into(),
        public: false,
        upload_token_hash: vec![1, 2, 3],
        upload_expires_at: now + 1000,
        now,
    }
}

pub async fn blobs_are_per_app_owned_and_granted_once(s: &impl Stores) {
    let a = app(s, "a").await;
    let b = app(s, "b").await;
    let alice = user(s, a, "alice").await;
    let bob = user(s, a, "bob").await;
    let x1 = s.create_blob(new_blob(a, alice, "u1", NOW)).await.unwrap();
    let x2 = s
        .create_blob(new_blob(a, alice, "u2", NOW + 1))
        .await
        .unwrap();
    s.create_blob(new_blob(a, bob, "u3", NOW)).await.unwrap();
    assert_eq!((x1.size, x1.completed_at, x1.public), (None, None, false));
    // Uids are unique across apps.
    assert!(s.create_blob(new_blob(a, bob, "u1", NOW)).await.is_err());

    assert_eq!(s.blob(a, x1.id).await.unwrap().unwrap().uid, "u1");
    assert!(s.blob(b, x1.id).await.unwrap().is_none());
    assert_eq!(s.blob_by_uid("u2").await.unwrap().unwrap().id, x2.id);
    let (page, total) = s.list_blobs(a, alice, 0, 1).await.unwrap();
    assert_eq!((page[0].id, total), (x2.id, 2), "newest first");
    let (page, _) = s.list_blobs(a, alice, 1, 1).await.unwrap();
    assert_eq!(page[0].id, x1.id);

    // The upload grant is spent once.
    let (_, hash) = s.blob_for_upload(x1.id).await.unwrap().unwrap();
    assert_eq!(hash, Some(vec![1, 2, 3]));
    assert!(s.mark_blob_uploaded(x1.id, 42, NOW + 5).await.unwrap());
    assert!(!s.mark_blob_uploaded(x1.id, 43, NOW + 6).await.unwrap());
    let (up, hash) = s.blob_for_upload(x1.id).await.unwrap().unwrap();
    assert_eq!(
        (up.size, up.uploaded_at, hash),
        (Some(42), Some(NOW + 5), None)
    );

    let done = s.complete_blob(a, x1.id, NOW + 7).await.unwrap().unwrap();
    assert_eq!(done.completed_at, Some(NOW + 7));
    assert!(s.complete_blob(b, x1.id, NOW + 8).await.unwrap().is_none());
    let renamed = s
        .rename_blob(a, x1.id, "new.txt", NOW + 9)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (renamed.name.as_str(), renamed.updated_at),
        ("new.txt", NOW + 9)
    );

    // Never completed and old enough: x2 and bob's, not the completed x1.
    let stale: Vec<_> = s
        .incomplete_blobs(NOW + 100, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.uid)
        .collect();
    assert_eq!(stale.len(), 2);
    assert!(!stale.contains(&"u1".to_string()));
    assert!(s.incomplete_blobs(NOW, 10).await.unwrap().is_empty());

    assert_eq!(s.user_blobs(a, alice).await.unwrap().len(), 2);
    assert!(!s.delete_blob(b, x2.id).await.unwrap());
    assert!(s.delete_blob(a, x2.id).await.unwrap());
    assert!(s.blob(a, x2.id).await.unwrap().is_none());
    // Blobs go with their user.
    assert!(s.delete_user(a, bob).await.unwrap());
    assert!(s.blob_by_uid("u3").await.unwrap().is_none());
}

fn subscription(
    app: AppId,
    user: UserId,
    udid: &str,
    channel: &str,
    token: &str,
) -> NewSubscription {
    NewSubscription {
        app_id: app,
        user_id: user,
        channel: channel.into(),
        environment: "development".into(),
        platform: "android".into(),
        udid: udid.into(),
        token: token.into(),
        web_auth: None,
        web_p256dh: None,
        bundle_identifier: None,
        now: NOW,
    }
}

pub async fn push_subscriptions_are_per_device_and_go_with_their_user(s: &impl Stores) {
    let app = app(s, "push").await;
    let (alice, bob) = (user(s, app, "alice").await, user(s, app, "bob").await);
    let first = s
        .upsert_subscription(subscription(app, alice, "phone", "gcm", "t1"))
        .await
        .unwrap();
    // The same device and channel again replaces the token, keeping the id.
    let again = s
        .upsert_subscription(subscription(app, alice, "phone", "gcm", "t2"))
        .await
        .unwrap();
    assert_eq!(again.id, first.id);
    assert_eq!(again.token, "t2");
    let voip = s
        .upsert_subscription(subscription(app, alice, "phone", "apns_voip", "v1"))
        .await
        .unwrap();
    assert_ne!(voip.id, first.id);
    s.upsert_subscription(subscription(app, bob, "tab", "gcm", "b1"))
        .await
        .unwrap();
    assert_eq!(s.subscriptions(app, alice).await.unwrap().len(), 2);
    assert_eq!(
        s.subscriptions_of(app, &[alice, bob]).await.unwrap().len(),
        3
    );
    // Only the owner deletes; another app sees nothing.
    assert!(!s.delete_subscription(app, bob, first.id).await.unwrap());
    let other = self::app(s, "other").await;
    assert!(s
        .subscriptions_of(other, &[alice])
        .await
        .unwrap()
        .is_empty());
    assert!(s.delete_subscription(app, alice, first.id).await.unwrap());
    s.drop_subscription(voip.id).await.unwrap();
    assert!(s.subscriptions(app, alice).await.unwrap().is_empty());
    // A deleted user's subscriptions go with them.
    assert!(s.delete_user(app, bob).await.unwrap());
    assert!(s.subscriptions_of(app, &[bob]).await.unwrap().is_empty());

    // Silenced: notifications off or muted, per dialog and member.
    let carol = user(s, app, "carol").await;
    let dave = user(s, app, "dave").await;
    let g = group(s, app, alice, &[alice, carol, dave]).await;
    s.set_member_state(g, carol.get(), MemberChange::Notifications(false), NOW)
        .await
        .unwrap();
    s.set_member_state(g, dave.get(), MemberChange::Muted(true), NOW)
        .await
        .unwrap();
    let mut silenced = s
        .silenced(&[(g, alice), (g, carol), (g, dave)])
        .await
        .unwrap();
    silenced.sort_by_key(|(_, u)| u.get());
    assert_eq!(silenced, vec![(g, carol), (g, dave)]);
}

pub async fn push_outbox_is_claimed_under_a_lease_retried_and_finished(s: &impl Stores) {
    let app = app(s, "outbox").await;
    let alice = user(s, app, "alice").await;
    let sub = s
        .upsert_subscription(subscription(app, alice, "phone", "gcm", "t1"))
        .await
        .unwrap();
    let push = |subscription_id| NewPush {
        app_id: app,
        user_id: alice,
        subscription_id,
        payload: "{}".into(),
        due_at: NOW,
    };
    s.enqueue_pushes(&[push(Some(sub.id)), push(None)], NOW)
        .await
        .unwrap();
    assert_eq!(s.next_push_due().await.unwrap(), Some(NOW));
    let claimed = s.claim_pushes(NOW, NOW + 1000, 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    assert_eq!(claimed[0].subscription.as_ref().map(|s| s.id), Some(sub.id));
    assert!(
        claimed[1].subscription.is_none(),
        "the webhook row has no subscription"
    );
    // Held by the lease...
    assert!(s
        .claim_pushes(NOW + 500, NOW + 1500, 10)
        .await
        .unwrap()
        .is_empty());
    // ...due again when it ends; a retry counts an attempt and moves the due time.
    s.retry_push(claimed[1].id, NOW + 5000).await.unwrap();
    let again = s.claim_pushes(NOW + 1000, NOW + 2000, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, claimed[0].id);
    s.finish_pushes(&[claimed[0].id]).await.unwrap();
    let later = s.claim_pushes(NOW + 5000, NOW + 6000, 10).await.unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].attempts, 1);
    s.finish_pushes(&[later[0].id]).await.unwrap();
    assert_eq!(s.next_push_due().await.unwrap(), None);
    // A subscription's rows go with it.
    s.enqueue_pushes(&[push(Some(sub.id))], NOW).await.unwrap();
    s.drop_subscription(sub.id).await.unwrap();
    assert!(s.claim_pushes(NOW, NOW + 1, 10).await.unwrap().is_empty());
}

pub async fn deleting_an_app_takes_everything_in_it(s: &impl Stores) {
    let (doomed, kept) = (app(s, "doomed").await, app(s, "kept").await);
    let (alice, bob) = (user(s, doomed, "alice").await, user(s, doomed, "bob").await);
    let carol = user(s, kept, "carol").await;
    let g = group(s, doomed, alice, &[alice, bob]).await;
    let other = group(s, kept, carol, &[carol]).await;
    s.upsert_subscription(subscription(doomed, alice, "phone", "gcm", "t"))
        .await
        .unwrap();
    s.enqueue_pushes(
        &[NewPush {
            app_id: doomed,
            user_id: alice,
            subscription_id: None,
            payload: "{}".into(),
            due_at: NOW,
        }],
        NOW,
    )
    .await
    .unwrap();
    assert!(s.delete_app(doomed).await.unwrap());
    assert!(!s.delete_app(doomed).await.unwrap());
    assert!(s.app(doomed).await.unwrap().is_none());
    assert!(s
        .user(doomed, UserKey::Id(alice.get()))
        .await
        .unwrap()
        .is_none());
    assert!(s.dialog(doomed.get(), g).await.unwrap().is_none());
    assert!(s.subscriptions(doomed, alice).await.unwrap().is_empty());
    assert!(s.claim_pushes(NOW, NOW + 1, 10).await.unwrap().is_empty());
    // The other app is untouched.
    assert!(s
        .user(kept, UserKey::Id(carol.get()))
        .await
        .unwrap()
        .is_some());
    assert!(s.dialog(kept.get(), other).await.unwrap().is_some());
}

pub async fn chatserver_sessions_and_stable_ids(s: &impl Stores) {
    let a = app(s, "a").await;
    let b = app(s, "b").await;
    let alice = user(s, a, "alice").await;
    let bob = user(s, a, "bob").await;
    let session = |id: &str, user: UserId, at: Millis| DeviceSession {
        id: id.into(),
        app_id: a,
        user_id: user,
        device_info: "{}".into(),
        ip_address: None,
        created_at: at,
        updated_at: at,
    };
    s.create_device_session(&session("S1", alice, NOW), b"h1")
        .await
        .unwrap();
    s.create_device_session(&session("S2", alice, NOW + 1), b"h2")
        .await
        .unwrap();
    s.create_device_session(&session("S3", bob, NOW), b"h3")
        .await
        .unwrap();
    // A token hash names one session.
    assert!(s
        .create_device_session(&session("S4", bob, NOW), b"h3")
        .await
        .is_err());
    assert_eq!(
        s.device_session_by_token(b"h2").await.unwrap().unwrap(),
        session("S2", alice, NOW + 1)
    );
    assert!(s.device_session_by_token(b"nope").await.unwrap().is_none());
    assert!(s
        .update_device_info("S2", r#"{"name":"new"}"#, NOW + 5)
        .await
        .unwrap());
    assert!(!s.update_device_info("S9", "{}", NOW + 5).await.unwrap());
    let updated = s.device_session_by_token(b"h2").await.unwrap().unwrap();
    assert_eq!(
        (
            updated.device_info.as_str(),
            updated.updated_at,
            updated.created_at
        ),
        (r#"{"name":"new"}"#, NOW + 5, NOW + 1)
    );
    let ids: Vec<String> = s
        .device_sessions_of(a, alice)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(ids, ["S1", "S2"]);
    assert_eq!(s.delete_device_sessions_of(a, alice).await.unwrap(), 2);
    assert!(s.device_session_by_token(b"h1").await.unwrap().is_none());
    assert!(s.device_session_by_token(b"h3").await.unwrap().is_some());
    // One session ends alone.
    assert!(s.delete_device_session("S3").await.unwrap());
    assert!(!s.delete_device_session("S3").await.unwrap());
    assert!(s.device_session_by_token(b"h3").await.unwrap().is_none());

    // Account keys: one per user, replaced, gone with the user.
    assert_eq!(s.account_key_hash(a, bob).await.unwrap(), None);
    s.set_account_key_hash(a, bob, "k1", NOW).await.unwrap();
    s.set_account_key_hash(a, bob, "k2", NOW + 1).await.unwrap();
    assert_eq!(
        s.account_key_hash(a, bob).await.unwrap().as_deref(),
        Some("k2")
    );
    assert_eq!(s.account_key_hash(b, bob).await.unwrap(), None);

    // A dialog keeps the first UUID it was given.
    let (d1, d2) = (ObjectId::generate(), ObjectId::generate());
    let first = s
        .chat_uuids(a, &[(d1, "U1".into()), (d2, "U2".into())])
        .await
        .unwrap();
    assert_eq!(first, ["U1", "U2"]);
    let again = s.chat_uuids(a, &[(d1, "X".into())]).await.unwrap();
    assert_eq!(again, ["U1"]);
    assert_eq!(s.dialog_of_chat(a, "u1").await.unwrap(), Some(d1));
    assert_eq!(s.dialog_of_chat(b, "U1").await.unwrap(), None);
    let key = ChatKey {
        participants_key: "1+2+3".into(),
        is_personal: false,
    };
    assert_eq!(s.set_chat_key(a, d2, "X", &key).await.unwrap(), "U2");
    let d3 = ObjectId::generate();
    assert_eq!(s.set_chat_key(a, d3, "U3", &key).await.unwrap(), "U3");
    assert_eq!(s.dialogs_by_chat_key(a, &key).await.unwrap(), [d3, d2]);
    let personal = ChatKey {
        is_personal: true,
        ..key.clone()
    };
    assert!(s
        .dialogs_by_chat_key(a, &personal)
        .await
        .unwrap()
        .is_empty());

    // Message numbers: given in order on first sight, then stable.
    let (m1, m2, m3) = (
        ObjectId::generate(),
        ObjectId::generate(),
        ObjectId::generate(),
    );
    let n = s.message_numbers(a, &[m1, m2]).await.unwrap();
    assert!(n[0] < n[1]);
    let again = s.message_numbers(a, &[m3, m2, m1]).await.unwrap();
    assert_eq!((again[1], again[2]), (n[1], n[0]));
    assert!(again[0] > n[1]);
    assert_eq!(s.message_of_number(a, n[0]).await.unwrap(), Some(m1));
    assert_eq!(s.message_of_number(b, n[0]).await.unwrap(), None);
    assert_eq!(s.message_of_number(a, 9999).await.unwrap(), None);

    assert!(s.delete_user(a, bob).await.unwrap());
    assert_eq!(s.account_key_hash(a, bob).await.unwrap(), None);
    assert!(s.device_session_by_token(b"h3").await.unwrap().is_none());
}

pub async fn chatserver_rest_state(s: &impl Stores) {
    let a = app(s, "a").await;
    let b = app(s, "b").await;
    let alice = user(s, a, "alice").await;
    let bob = user(s, a, "bob").await;

    // Visibility: only numbers of the app, only once shown.
    let m = ObjectId::generate();
    let n = s.message_numbers(a, &[m]).await.unwrap()[0];
    assert!(s.shown_messages(a, &[n]).await.unwrap().is_empty());
    assert!(!s.show_message(b, n).await.unwrap());
    assert!(s.show_message(a, n).await.unwrap());
    assert_eq!(s.shown_messages(a, &[n, 9999]).await.unwrap(), [n]);
    assert!(s.shown_messages(b, &[n]).await.unwrap().is_empty());

    // About: set, replaced, cleared.
    assert_eq!(s.about(a, alice).await.unwrap(), None);
    s.set_about(a, alice, Some("one")).await.unwrap();
    s.set_about(a, alice, Some("two")).await.unwrap();
    assert_eq!(s.about(a, alice).await.unwrap().as_deref(), Some("two"));
    assert_eq!(s.about(b, alice).await.unwrap(), None);
    s.set_about(a, alice, None).await.unwrap();
    assert_eq!(s.about(a, alice).await.unwrap(), None);

    // Media: ids unique, listed per owner oldest first, deleted once.
    let media = |id: &str, owner: &str, by: UserId, at: Millis| Media {
        id: id.into(),
        app_id: a,
        owner: owner.into(),
        added_by: by,
        file_type: "png".into(),
        file_size: 10,
        preview_width: 100,
        preview_height: 100,
        created_at: at,
    };
    assert!(s
        .add_media(&media("M2", "user:1", alice, NOW + 1))
        .await
        .unwrap());
    assert!(s
        .add_media(&media("M1", "user:1", alice, NOW))
        .await
        .unwrap());
    assert!(s.add_media(&media("M3", "chat:C", bob, NOW)).await.unwrap());
    assert!(!s.add_media(&media("M1", "chat:C", bob, NOW)).await.unwrap());
    let ids = |v: Vec<Media>| v.into_iter().map(|m| m.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.media_of(a, &["user:1".into()]).await.unwrap()),
        ["M1", "M2"]
    );
    assert_eq!(
        ids(s
            .media_of(a, &["chat:C".into(), "user:1".into()])
            .await
            .unwrap()),
        ["M3", "M1", "M2"]
    );
    assert!(s.media_of(b, &["user:1".into()]).await.unwrap().is_empty());
    assert_eq!(
        s.media(a, "M3").await.unwrap(),
        Some(media("M3", "chat:C", bob, NOW))
    );
    assert_eq!(s.media(b, "M3").await.unwrap(), None);
    assert_eq!(s.delete_media(b, "M1").await.unwrap(), None);
    assert_eq!(
        s.delete_media(a, "M1").await.unwrap(),
        Some(media("M1", "user:1", alice, NOW))
    );
    assert_eq!(s.delete_media(a, "M1").await.unwrap(), None);

    // Contacts: one per pair (the first wins), per owner, deleted by their owner only.
    let contact = |id: &str, owner: UserId, user: UserId, name: Option<&str>| Contact {
        id: id.into(),
        app_id: a,
        owner,
        user,
        name: name.map(Into::into),
        is_favorite: true,
        is_blocked: false,
        created_at: NOW,
    };
    let c1 = contact("C1", alice, bob, Some("Bobby"));
    assert_eq!(s.add_contact(&c1).await.unwrap(), c1);
    assert_eq!(
        s.add_contact(&contact("C2", alice, bob, None))
            .await
            .unwrap(),
        c1
    );
    assert_eq!(s.contacts_of(a, alice).await.unwrap(), vec![c1.clone()]);
    assert!(s.contacts_of(a, bob).await.unwrap().is_empty());
    assert!(!s.delete_contact(a, bob, "C1").await.unwrap());
    assert!(s.delete_contact(a, alice, "C1").await.unwrap());
    assert!(s.contacts_of(a, alice).await.unwrap().is_empty());

    // Chat flags: default until set, per user.
    let (d1, d2) = (ObjectId::generate(), ObjectId::generate());
    let on = ChatFlags {
        archived: true,
        ..ChatFlags::default()
    };
    s.set_chat_flags(a, d1, alice, on).await.unwrap();
    assert_eq!(
        s.chat_flags(a, alice, &[d2, d1]).await.unwrap(),
        [ChatFlags::default(), on]
    );
    assert_eq!(
        s.chat_flags(a, bob, &[d1]).await.unwrap(),
        [ChatFlags::default()]
    );
    let blocked = ChatFlags {
        user_blocked: true,
        chat_blocked: true,
        ..ChatFlags::default()
    };
    s.set_chat_flags(a, d1, bob, blocked).await.unwrap();
    assert_eq!(s.chat_flags(a, bob, &[d1]).await.unwrap(), [blocked]);
    // A dialog's flags: only users with one set.
    s.set_chat_flags(a, d1, alice, ChatFlags::default())
        .await
        .unwrap();
    assert_eq!(
        s.chat_flags(a, alice, &[d1]).await.unwrap(),
        [ChatFlags::default()]
    );
    assert_eq!(s.dialog_chat_flags(a, d1).await.unwrap(), [(bob, blocked)]);
    assert!(s.dialog_chat_flags(b, d1).await.unwrap().is_empty());
    assert!(s.dialog_chat_flags(a, d2).await.unwrap().is_empty());

    // Upload names: a name names one blob, per app; renaming tells the old one.
    let blob = |uid: &str| NewBlob {
        app_id: a,
        user_id: alice,
        uid: uid.into(),
        name: "f.png".into(),
        content_type: "image/png".into(),
        public: true,
        upload_token_hash: vec![1],
        upload_expires_at: NOW,
        now: NOW,
    };
    let b1 = s.create_blob(blob("u1")).await.unwrap().id;
    let b2 = s.create_blob(blob("u2")).await.unwrap().id;
    assert_eq!(s.file_blob(a, "f.png").await.unwrap(), None);
    let named = |old| FileNaming::Named(old);
    assert_eq!(s.set_file_blob(a, "f.png", b1).await.unwrap(), named(None));
    assert_eq!(s.set_file_blob(a, "f.png", b1).await.unwrap(), named(None));
    assert_eq!(
        s.set_file_blob(a, "f.png", b2).await.unwrap(),
        named(Some(b1))
    );
    assert_eq!(s.file_blob(a, "f.png").await.unwrap(), Some(b2));
    // Another user's blob does not take the name.
    let mut bobs = blob("u3");
    bobs.user_id = bob;
    let b3 = s.create_blob(bobs).await.unwrap().id;
    assert_eq!(
        s.set_file_blob(a, "f.png", b3).await.unwrap(),
        FileNaming::Taken
    );
    assert_eq!(s.file_blob(a, "f.png").await.unwrap(), Some(b2));
    s.delete_blob(a, b3).await.unwrap();
    assert_eq!(s.file_blob(b, "f.png").await.unwrap(), None);
    // The blob's row going takes the name with it.
    s.delete_blob(a, b2).await.unwrap();
    assert_eq!(s.file_blob(a, "f.png").await.unwrap(), None);

    // Everything goes with the user.
    s.set_about(a, bob, Some("x")).await.unwrap();
    s.set_chat_flags(a, d1, bob, on).await.unwrap();
    s.add_contact(&contact("C3", bob, alice, None))
        .await
        .unwrap();
    assert!(s.delete_user(a, bob).await.unwrap());
    assert_eq!(s.about(a, bob).await.unwrap(), None);
    assert!(s.media_of(a, &["chat:C".into()]).await.unwrap().is_empty());
    assert!(s.contacts_of(a, bob).await.unwrap().is_empty());
    assert_eq!(
        s.chat_flags(a, bob, &[d1]).await.unwrap(),
        [ChatFlags::default()]
    );
    assert!(s.dialog_chat_flags(a, d1).await.unwrap().is_empty());
}
