//! The store conformance suite on the PostgreSQL backend.
//!
//! Needs a server: `CONFAB_TEST_DATABASE_URL` names a database the tests can connect to and run
//! `CREATE DATABASE` from (`eval "$(scripts/postgres.sh start)"` starts a private one). Each test
//! runs on a fresh database of its own, dropped afterwards. Without the variable every test fails,
//! unless `CONFAB_SKIP_POSTGRES=1` says to skip them.

mod conformance;

use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};

use confab_store::postgres::PgStore;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

/// Drops the test's database when the test ends (passed or not).
struct Database {
    admin: PgConnectOptions,
    name: String,
}

impl Drop for Database {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop runs inside the test's runtime, which cannot be blocked on: a thread of its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut conn = admin.connect().await.ok()?;
                // FORCE: the store's pooled connections may still be open.
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .ok()?;
                conn.close().await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("note: test database {} was not dropped", self.name);
        }
    }
}

fn unique_name() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "confab_test_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

/// A new, empty database: its connect options and the guard that drops it.
async fn fresh_database() -> Option<(PgConnectOptions, Database)> {
    let url = match std::env::var("CONFAB_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ if std::env::var("CONFAB_SKIP_POSTGRES").as_deref() == Ok("1") => {
            eprintln!("skipped: CONFAB_SKIP_POSTGRES=1 and no CONFAB_TEST_DATABASE_URL");
            return None;
        }
        _ => panic!(
            "CONFAB_TEST_DATABASE_URL is not set: these tests need a PostgreSQL server \
             (eval \"$(scripts/postgres.sh start)\" starts one), or CONFAB_SKIP_POSTGRES=1 \
             to skip them"
        ),
    };
    let admin = PgConnectOptions::from_str(&url).expect("CONFAB_TEST_DATABASE_URL is a URL");
    let name = unique_name();
    let mut conn = admin
        .connect()
        .await
        .expect("connect to CONFAB_TEST_DATABASE_URL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("CREATE DATABASE");
    conn.close().await.ok();
    let options = admin.clone().database(&name);
    Some((options, Database { admin, name }))
}

async fn fresh() -> Option<(PgStore, Database)> {
    let (options, guard) = fresh_database().await?;
    let store = PgStore::connect_with(options, 8)
        .await
        .expect("open the store");
    Some((store, guard))
}

conformance_suite!(skippable fresh());

/// The pool outlives its connections.
mod pool {
    use super::*;
    use confab_store::AccountStore;

    #[tokio::test]
    async fn connections_ended_by_the_server_are_replaced() {
        let Some((options, guard)) = fresh_database().await else {
            return;
        };
        let store = PgStore::connect_with(options, 4)
            .await
            .expect("open the store");
        let app = store.create_app("a", "k", "s", b"h", 1).await.unwrap();
        // As a restart of PostgreSQL would: every connection of the store ends.
        let mut admin = guard.admin.connect().await.unwrap();
        let ended: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(&guard.name)
        .fetch_all(&mut admin)
        .await
        .unwrap();
        assert!(ended.contains(&true), "the store had connections to end");
        // Idle longer than the pool hands out a connection without asking it first.
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        for _ in 0..3 {
            let found = store.app(app.id).await.expect("a new connection answers");
            assert!(found.is_some());
        }
    }
}

/// Statements whose plan must not depend on the tables' statistics.
mod plans {
    use super::*;

    /// The generic plan of `sql` on a new database (nothing analyzed yet), as a prepared
    /// statement soon runs with it, for `arguments` (planned, not run: EXPLAIN without ANALYZE).
    /// `None` when PostgreSQL tests are skipped.
    async fn generic_plan(sql: &str, arguments: &str) -> Option<String> {
        let (options, _guard) = fresh_database().await?;
        PgStore::connect_with(options.clone(), 1)
            .await
            .expect("open the store (runs the migrations)");
        let mut conn = options.connect().await.unwrap();
        sqlx::query("SET plan_cache_mode = force_generic_plan")
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::raw_sql(&format!("PREPARE checked AS {sql}"))
            .execute(&mut conn)
            .await
            .unwrap();
        let plan: Vec<String> =
            sqlx::query_scalar(&format!("EXPLAIN EXECUTE checked({arguments})"))
                .fetch_all(&mut conn)
                .await
                .unwrap();
        Some(plan.join("\n"))
    }

    /// On a new database nothing has analyzed `dialogs` yet, and a prepared statement soon runs
    /// with its generic plan: that plan must still look pairs up by key, not scan every dialog.
    #[tokio::test]
    async fn pair_lookups_use_the_key_on_a_new_database() {
        let Some(plan) = generic_plan(
            confab_store::postgres::PAIR_LOOKUP_SQL,
            "'{1,1}', '{1:2,3:4}'",
        )
        .await
        else {
            return;
        };
        assert!(plan.contains("dialogs_private"), "{plan}");
        assert!(!plan.contains("Seq Scan on dialogs"), "{plan}");
    }

    /// The same for the batch insert of stored messages: its occupant check must look the
    /// member up by key, not hash a scan of every member row once per batch.
    #[tokio::test]
    async fn message_inserts_check_occupants_by_key_on_a_new_database() {
        let empty = vec!["'{}'"; 16].join(", ");
        let Some(plan) = generic_plan(confab_store::postgres::MESSAGE_INSERT_SQL, &empty).await
        else {
            return;
        };
        assert!(plan.contains("Index Scan using dialog_members"), "{plan}");
        assert!(!plan.contains("Seq Scan on dialog_members"), "{plan}");
    }
}

/// What PostgreSQL adds to the suite: several nodes (or many connections of one) at once.
mod concurrency {
    use super::*;
    use confab_core::chat::{Dialog, DialogType, Message};
    use confab_core::{AppId, ObjectId, UserId};
    use confab_store::{
        AccountStore, DialogStore, MessageSearch, MessageStore, NewPush, NewUser, OfflineStore,
        PushStore, RosterItem, RosterStore,
    };
    use serde_json::Map;

    async fn account(s: &PgStore, app: AppId, login: &str) -> UserId {
        let mut u = NewUser {
            app_id: app.get(),
            now: 1,
            ..Default::default()
        };
        u.fields.login = Some(Some(login.to_string()));
        UserId::new(s.create_user(u).await.unwrap().id).unwrap()
    }

    fn dialog(app: AppId, kind: DialogType, owner: i64, now: i64) -> Dialog {
        Dialog {
            id: ObjectId::generate(),
            app_id: app.get(),
            kind,
            owner_id: owner,
            name: None,
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
            created_at: now,
            updated_at: now,
        }
    }

    fn message(app: AppId, dialog: ObjectId, sender: i64, body: &str) -> Message {
        Message {
            id: ObjectId::generate(),
            app_id: app.get(),
            dialog_id: dialog,
            sender_id: sender,
            recipient_id: 0,
            body: Some(body.to_string()),
            date_sent: 1_700_000_000,
            attachments: Vec::new(),
            custom: Map::new(),
            read_ids: vec![sender],
            delivered_ids: vec![sender],
            deleted_for_ids: Vec::new(),
            reactions: Map::new(),
            markable: false,
            views_count: 0,
            edited_at: None,
            created_at: 2,
            updated_at: 2,
        }
    }

    async fn unread(s: &PgStore, app: AppId, user: i64, dialog: ObjectId) -> i64 {
        let counts = s
            .unread_counts(app.get(), user, Some(&[dialog]))
            .await
            .unwrap();
        counts.first().map_or(0, |c| c.1)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn nodes_starting_at_once_migrate_once() {
        let Some((options, _guard)) = fresh_database().await else {
            return;
        };
        let nodes = (0..4).map(|_| {
            let options = options.clone();
            tokio::spawn(async move { PgStore::connect_with(options, 2).await })
        });
        let mut stores = Vec::new();
        for n in nodes {
            stores.push(n.await.unwrap().expect("every node starts"));
        }
        let app = stores[0].create_app("a", "k", "s", b"h", 1).await.unwrap();
        assert!(stores[3].app(app.id).await.unwrap().is_some());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_private_dialog_is_created_once_by_racing_creators() {
        let Some((s, _guard)) = fresh().await else {
            return;
        };
        let app = s.create_app("a", "k", "s", b"h", 1).await.unwrap().id;
        let (a, b) = (account(&s, app, "a").await, account(&s, app, "b").await);
        let (low, high) = (a.get().min(b.get()), a.get().max(b.get()));
        let tasks: Vec<_> = (0..16)
            .map(|n| {
                let s = s.clone();
                let owner = if n % 2 == 0 { low } else { high };
                tokio::spawn(async move {
                    let d = dialog(app, DialogType::Private, owner, 1000 + n);
                    let got = s.create_private_dialog(&d, low, high).await.unwrap();
                    (got.expect("both users exist"), d.id)
                })
            })
            .collect();
        let mut ids = Vec::new();
        let mut created = 0;
        for t in tasks {
            let (got, mine) = t.await.unwrap();
            created += usize::from(got == mine);
            ids.push(got);
        }
        assert_eq!(created, 1, "exactly one creation wins");
        assert!(ids.iter().all(|id| *id == ids[0]));
        let d = s.dialog(app.get(), ids[0]).await.unwrap().unwrap();
        assert_eq!(d.occupants_ids, [low, high]);
    }

    /// Inserts, receipts, deletions and membership changes on one dialog at once: nothing
    /// deadlocks, every message lands once, and the counts add up.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writers_on_one_dialog_neither_deadlock_nor_miscount() {
        let Some((s, _guard)) = fresh().await else {
            return;
        };
        let app = s.create_app("a", "k", "s", b"h", 1).await.unwrap().id;
        let mut users = Vec::new();
        for n in 0..4 {
            users.push(account(&s, app, &format!("u{n}")).await.get());
        }
        let g = s
            .insert_dialog(&dialog(app, DialogType::Group, users[0], 1), None, &users)
            .await
            .unwrap();
        let messages: Vec<Message> = (0..200)
            .map(|i| message(app, g, users[i % 4], &format!("word{i} hello")))
            .collect();
        let mut tasks = Vec::new();
        for (i, m) in messages.iter().cloned().enumerate() {
            let s = s.clone();
            let users = users.clone();
            tasks.push(tokio::spawn(async move {
                s.insert_message(&m).await?;
                let reader = users[(i + 1) % 4];
                match i % 5 {
                    0 => s.mark_messages(g, reader, None, true).await,
                    1 => s.mark_messages(g, reader, Some(&[m.id]), true).await,
                    2 => s.delete_messages_for_user(g, reader, &[m.id]).await,
                    3 => s.add_members(g, &[users[2], users[3]], 5).await,
                    _ => s.mark_messages(g, reader, Some(&[m.id]), false).await,
                }
            }));
        }
        for t in tasks {
            t.await.unwrap().expect("no deadlock, no lost write");
        }
        let query = confab_core::query::Query {
            limit: 1000,
            ..Default::default()
        };
        let (all, total) = s.list_messages(g, None, None, &query, true).await.unwrap();
        assert_eq!((all.len(), total), (200, 200));
        // Each user's counter equals what a recount says: others' messages not read, not hidden.
        for &u in &users {
            let expected = all
                .iter()
                .filter(|m| {
                    m.sender_id != u && !m.read_ids.contains(&u) && !m.deleted_for_ids.contains(&u)
                })
                .count() as i64;
            assert_eq!(unread(&s, app, u, g).await, expected, "user {u}");
        }
        // Deleting for everyone half of them, concurrently, keeps the counts right too.
        let doomed: Vec<ObjectId> = all.iter().step_by(2).map(|m| m.id).collect();
        let deletes: Vec<_> = doomed
            .chunks(10)
            .map(|chunk| {
                let (s, chunk) = (s.clone(), chunk.to_vec());
                tokio::spawn(async move { s.delete_messages(g, &chunk).await })
            })
            .collect();
        for d in deletes {
            d.await.unwrap().unwrap();
        }
        let (left, _) = s.list_messages(g, None, None, &query, false).await.unwrap();
        assert_eq!(left.len(), 100);
        for &u in &users {
            let expected = left
                .iter()
                .filter(|m| {
                    m.sender_id != u && !m.read_ids.contains(&u) && !m.deleted_for_ids.contains(&u)
                })
                .count() as i64;
            assert_eq!(unread(&s, app, u, g).await, expected, "user {u}");
        }
        let d = s.dialog(app.get(), g).await.unwrap().unwrap();
        let newest = left
            .iter()
            .max_by_key(|m| (m.date_sent, m.id.to_string()))
            .unwrap();
        assert_eq!(d.last_message_id, Some(newest.id.to_string()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn retried_message_ids_are_stored_once() {
        let Some((s, _guard)) = fresh().await else {
            return;
        };
        let app = s.create_app("a", "k", "s", b"h", 1).await.unwrap().id;
        let a = account(&s, app, "a").await.get();
        let b = account(&s, app, "b").await.get();
        let g = s
            .insert_dialog(&dialog(app, DialogType::Group, a, 1), None, &[a, b])
            .await
            .unwrap();
        let m = message(app, g, a, "once");
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (s, m) = (s.clone(), m.clone());
                tokio::spawn(async move { s.insert_message(&m).await })
            })
            .collect();
        let mut stored = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(()) => stored += 1,
                Err(e) => assert!(e.fields.contains_key("_id"), "{e:?}"),
            }
        }
        assert_eq!(stored, 1);
        assert_eq!(unread(&s, app, b, g).await, 1);
        // A message for a dialog that does not exist fails and leaves nothing.
        assert!(s
            .insert_message(&message(app, ObjectId::generate(), a, "nowhere"))
            .await
            .is_err());
    }

    /// Messages queued together share a batch; a bad one (a retried id, an unknown dialog)
    /// fails alone and the rest are stored with exact counts.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_failing_message_fails_alone_in_its_batch() {
        let Some((s, _guard)) = fresh().await else {
            return;
        };
        let app = s.create_app("a", "k", "s", b"h", 1).await.unwrap().id;
        let a = account(&s, app, "a").await.get();
        let b = account(&s, app, "b").await.get();
        let g = s
            .insert_dialog(&dialog(app, DialogType::Group, a, 1), None, &[a, b])
            .await
            .unwrap();
        let first = message(app, g, a, "first");
        s.insert_message(&first).await.unwrap();
        let mut batch: Vec<Message> = (0..40)
            .map(|i| message(app, g, a, &format!("m{i}")))
            .collect();
        let mut retry = first.clone();
        retry.body = Some("retried".into());
        batch.insert(5, retry);
        batch.insert(10, message(app, ObjectId::generate(), a, "nowhere"));
        let twice = message(app, g, a, "twice");
        batch.insert(15, twice.clone());
        batch.insert(16, twice);
        let tasks: Vec<_> = batch
            .iter()
            .cloned()
            .map(|m| {
                let s = s.clone();
                tokio::spawn(async move { s.insert_message(&m).await })
            })
            .collect();
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        let taken =
            |r: &confab_core::Result<()>| matches!(r, Err(e) if e.fields.contains_key("_id"));
        assert!(taken(&results[5]));
        assert!(results[10].is_err() && !taken(&results[10]));
        assert_eq!(
            usize::from(results[15].is_ok()) + usize::from(results[16].is_ok()),
            1,
            "the same new id twice is stored once"
        );
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 41);
        assert_eq!(unread(&s, app, b, g).await, 42);
        assert_eq!(unread(&s, app, a, g).await, 0);
        let query = confab_core::query::Query {
            limit: 1000,
            ..Default::default()
        };
        let (all, _) = s.list_messages(g, None, None, &query, false).await.unwrap();
        assert_eq!(all.len(), 42);
        assert!(all.iter().all(|m| m.body.as_deref() != Some("retried")));
    }

    /// Nodes flushing session touches of the same users at once, in opposite orders.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn session_touches_from_several_nodes_do_not_deadlock() {
        let Some((s, _guard)) = fresh().await else {
            return;
        };
        let app = s.create_app("a", "k", "s", b"h", 1).await.unwrap().id;
        let mut sessions = Vec::new();
        for n in 0..4 {
            let u = account(&s, app, &format!("u{n}")).await;
            for k in 0..5u8 {
                let token = [n as u8, k];
                sessions.push(
                    s.create_session(app, Some(u), &token, 1, 100)
                        .await
                        .unwrap(),
                );
            }
        }
        let nodes: Vec<_> = (0..6)
            .map(|node| {
                let (s, mut sessions) = (s.clone(), sessions.clone());
                if node % 2 == 1 {
                    sessions.reverse();
                }
                tokio::spawn(async move {
                    for round in 0..20i64 {
                        let at = 1000 + round * 10 + node;
                        let touches: Vec<_> = sessions
                            .iter()
                            .map(|x| (x.clone(), at, at + 5000))
                            .collect();
                        s.touch_sessions(&touches).await?;
                    }
                    Ok::<_, confab_core::Error>(())
                })
            })
            .collect();
        for n in nodes {
            n.await.unwrap().expect("no deadlock");
        }
        // The furthest expiry wins, whoever wrote last.
        let last = 1000 + 19 * 10 + 5 + 5000;
        let found = s
            .session_by_token(&[3, 4], last - 1)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.expires_at, last);
    }

    /// PostgreSQL refuses NUL characters in text (SQLite stores them): a client error, alone in
    /// its batch.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn text_with_nul_characters_is_a_bad_request() {
        let Some((s, _guard)) = fresh().await else {
            return;
        };
        let app = s.create_app("a", "k", "s", b"h", 1).await.unwrap().id;
        let a = account(&s, app, "a").await.get();
        let g = s
            .insert_dialog(&dialog(app, DialogType::Group, a, 1), None, &[a])
            .await
            .unwrap();
        let tasks: Vec<_> = ["fine", "bad\0body", "also fine"]
            .into_iter()
            .map(|body| {
                let s = s.clone();
                let m = message(app, g, a, body);
                tokio::spawn(async move { s.insert_message(&m).await })
            })
            .collect();
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        assert!(results[0].is_ok() && results[2].is_ok());
        let e = results[1].as_ref().unwrap_err();
        assert_eq!(e.kind, confab_core::ErrorKind::BadRequest, "{e:?}");
        let mut d = dialog(app, DialogType::Group, a, 1);
        d.data = serde_json::json!({"k": "a\u{0}b"}).as_object().cloned();
        let e = s.insert_dialog(&d, None, &[a]).await.unwrap_err();
        assert_eq!(e.kind, confab_core::ErrorKind::BadRequest, "{e:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn offline_queue_bound_and_claims_hold_under_concurrency() {
        let Some((s, _guard)) = fresh().await else {
            return;
        };
        let app = s.create_app("a", "k", "s", b"h", 1).await.unwrap().id;
        let u = account(&s, app, "u").await;
        let pushes: Vec<_> = (0..10)
            .map(|i| {
                let s = s.clone();
                tokio::spawn(async move {
                    let a = format!("<a{i}/>");
                    let b = format!("<b{i}/>");
                    let entries = [(a.as_str(), i), (b.as_str(), i)];
                    s.push_offline_many(app, u, &entries, 7).await.unwrap()
                })
            })
            .collect();
        let mut stored = 0;
        for p in pushes {
            stored += p.await.unwrap();
        }
        assert_eq!(stored, 7, "the bound holds across concurrent pushes");
        let claims: Vec<_> = (0..6)
            .map(|i| {
                let s = s.clone();
                tokio::spawn(async move { s.claim_offline(app, u, &format!("c{i}")).await })
            })
            .collect();
        let mut seen = Vec::new();
        for c in claims {
            seen.extend(c.await.unwrap().unwrap().into_iter().map(|m| m.id));
        }
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 7, "every row claimed exactly once");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn push_workers_claim_disjoint_rows() {
        let Some((s, _guard)) = fresh().await else {
            return;
        };
        let app = s.create_app("a", "k", "s", b"h", 1).await.unwrap().id;
        let u = account(&s, app, "u").await;
        let pushes: Vec<NewPush> = (0..60)
            .map(|i| NewPush {
                app_id: app,
                user_id: u,
                subscription_id: None,
                payload: format!("{{\"n\":{i}}}"),
                due_at: 10,
            })
            .collect();
        s.enqueue_pushes(&pushes, 1).await.unwrap();
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let s = s.clone();
                tokio::spawn(async move { s.claim_pushes(100, 1000, 20).await.unwrap() })
            })
            .collect();
        let mut ids = Vec::new();
        for w in workers {
            ids.extend(w.await.unwrap().into_iter().map(|p| p.id));
        }
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!((n, ids.len()), (60, 60));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_contact_limit_holds_under_concurrency() {
        let Some((s, _guard)) = fresh().await else {
            return;
        };
        let app = s.create_app("a", "k", "s", b"h", 1).await.unwrap().id;
        let owner = account(&s, app, "owner").await;
        let mut contacts = Vec::new();
        for n in 0..8 {
            contacts.push(account(&s, app, &format!("c{n}")).await);
        }
        let puts: Vec<_> = contacts
            .iter()
            .map(|&c| {
                let s = s.clone();
                tokio::spawn(async move {
                    s.put_roster_item(app, owner, &RosterItem::new(c), 3, 1)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut added = 0;
        for p in puts {
            added += usize::from(p.await.unwrap());
        }
        assert_eq!(added, 3);
        assert_eq!(s.roster(app, owner).await.unwrap().len(), 3);
    }

    #[tokio::test]
    async fn search_splits_words_at_punctuation_as_fts5_does() {
        let Some((s, _guard)) = fresh().await else {
            return;
        };
        let app = s.create_app("a", "k", "s", b"h", 1).await.unwrap().id;
        let a = account(&s, app, "a").await.get();
        let g = s
            .insert_dialog(&dialog(app, DialogType::Group, a, 1), None, &[a])
            .await
            .unwrap();
        for body in [
            "mail alice@example.com now",
            "pi is 3.14",
            "a Quick-Brown fox",
        ] {
            s.insert_message(&message(app, g, a, body)).await.unwrap();
        }
        let search = |term: &str| MessageSearch {
            app_id: app.get(),
            user_id: a,
            terms: vec![term.to_string()],
            dialog_ids: None,
            date_from: None,
            date_to: None,
            limit: 10,
        };
        for (term, hits) in [
            ("example", 1),
            ("alice@example.com", 1),
            ("14", 1),
            ("quick brown", 1),
            ("QUICK", 1),
            ("brown quick", 0),
            ("!!!", 0),
        ] {
            let found = s.search_messages(&search(term)).await.unwrap();
            assert_eq!(found.len(), hits, "{term}");
        }
    }
}

/// Not a check: how fast concurrent message inserts go (`cargo test -p confab-store --test
/// postgres -- --ignored --nocapture throughput`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore]
async fn throughput_of_concurrent_message_inserts() {
    use confab_core::chat::{Dialog, DialogType, Message};
    use confab_core::{ObjectId, UserId};
    use confab_store::{AccountStore, DialogStore, MessageStore, NewUser};
    let Some((s, _guard)) = fresh().await else {
        return;
    };
    let app = s.create_app("a", "k", "s", b"h", 1).await.unwrap().id;
    let mut users = Vec::new();
    for n in 0..20 {
        let mut u = NewUser {
            app_id: app.get(),
            now: 1,
            ..Default::default()
        };
        u.fields.login = Some(Some(format!("u{n}")));
        users.push(
            UserId::new(s.create_user(u).await.unwrap().id)
                .unwrap()
                .get(),
        );
    }
    let mut dialogs = Vec::new();
    for pair in users.chunks(2) {
        let mut d = Dialog {
            id: ObjectId::generate(),
            app_id: app.get(),
            kind: DialogType::Private,
            owner_id: pair[0],
            name: None,
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
            created_at: 1,
            updated_at: 1,
        };
        d.id = s
            .create_private_dialog(&d, pair[0], pair[1])
            .await
            .unwrap()
            .unwrap();
        dialogs.push((d.id, pair[0]));
    }
    let n = 4000;
    let started = std::time::Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let s = s.clone();
            let (dialog, sender) = dialogs[i % dialogs.len()];
            tokio::spawn(async move {
                let m = Message {
                    id: ObjectId::generate(),
                    app_id: app.get(),
                    dialog_id: dialog,
                    sender_id: sender,
                    recipient_id: 0,
                    body: Some(format!("hello number {i}")),
                    date_sent: 1_700_000_000,
                    attachments: Vec::new(),
                    custom: serde_json::Map::new(),
                    read_ids: vec![sender],
                    delivered_ids: vec![sender],
                    deleted_for_ids: Vec::new(),
                    reactions: serde_json::Map::new(),
                    markable: false,
                    views_count: 0,
                    edited_at: None,
                    created_at: 2,
                    updated_at: 2,
                };
                s.insert_message(&m).await.unwrap();
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "{n} messages over {} dialogs in {secs:.2}s: {:.0}/s",
        dialogs.len(),
        n as f64 / secs
    );
}

/// The same writes on both backends, then the chat API's filters, sorts and pages on both:
/// PostgreSQL must answer what SQLite answers (SQLite's comparison rules are the reference).
mod differential {
    use super::*;
    use confab_core::chat::{Dialog, DialogType, Message};
    use confab_core::query::{Condition, Field, Op, Query, Scalar, Sort};
    use confab_core::{AppId, ObjectId};
    use confab_store::sqlite::SqliteStore;
    use confab_store::{
        AccountStore, ChatStore, DialogStore, MemberChange, MessageSearch, MessageStore, NewUser,
        UserKey, Viewer,
    };
    use serde_json::{json, Map, Value};

    fn obj(v: Value) -> Option<Map<String, Value>> {
        v.as_object().cloned()
    }

    struct World {
        app: AppId,
        users: Vec<i64>,
        dialogs: Vec<ObjectId>,
    }

    /// Identical writes (ids included) on a store.
    async fn populate<S: AccountStore + ChatStore>(
        s: &S,
        dialogs: &[Dialog],
        messages: &[Message],
    ) -> World {
        let app = s.create_app("a", "k", "s", b"h", 1).await.unwrap().id;
        let mut users = Vec::new();
        for (n, login) in ["Alice", "bob", "carol", "dave"].iter().enumerate() {
            let mut u = NewUser {
                app_id: app.get(),
                now: 1,
                ..Default::default()
            };
            u.fields.login = Some(Some(login.to_string()));
            u.fields.full_name = Some(Some(format!("{login} Person")));
            u.fields.tags = Some(vec![format!("T{}", n % 2)]);
            users.push(s.create_user(u).await.unwrap().id);
        }
        let mut ids = Vec::new();
        for d in dialogs {
            let mut d = d.clone();
            d.app_id = app.get();
            ids.push(if d.kind == DialogType::Private {
                let (low, high) = (users[0], users[1]);
                s.insert_dialog(&d, Some(&format!("{low}:{high}")), &[low, high])
                    .await
                    .unwrap()
            } else {
                s.insert_dialog(&d, None, &users[..3]).await.unwrap()
            });
        }
        for m in messages {
            let mut m = m.clone();
            m.app_id = app.get();
            s.insert_message(&m).await.unwrap();
        }
        s.mark_messages(ids[0], users[1], None, true).await.unwrap();
        s.delete_messages_for_user(ids[0], users[2], &[messages[0].id])
            .await
            .unwrap();
        s.set_member_state(ids[1], users[3], MemberChange::Muted(true), 5)
            .await
            .unwrap();
        World {
            app,
            users,
            dialogs: ids,
        }
    }

    fn fixtures() -> (Vec<Dialog>, Vec<Message>) {
        let base = |kind, name: Option<&str>, data: Option<Value>, at: i64| Dialog {
            id: ObjectId::generate(),
            app_id: 0,
            kind,
            owner_id: 1,
            name: name.map(str::to_string),
            description: None,
            photo: None,
            occupants_ids: Vec::new(),
            occupants_count: 0,
            admins_ids: vec![1, 2],
            pinned_messages_ids: vec!["x".into()],
            data: data.and_then(obj),
            extensions: obj(json!({"e": [1, 2.5, "s"]})),
            last_message: None,
            last_message_date_sent: None,
            last_message_id: None,
            last_message_user_id: None,
            last_message_delivered_ids: Vec::new(),
            last_message_read_ids: Vec::new(),
            created_at: at,
            updated_at: at,
        };
        let dialogs = vec![
            base(
                DialogType::Group,
                Some("alpha"),
                Some(json!({"color": "red", "n": 5, "f": true})),
                1_000_000,
            ),
            base(
                DialogType::Group,
                Some("Beta_1%"),
                Some(json!({"color": "blue", "n": 12})),
                2_000_000,
            ),
            base(
                DialogType::Public,
                Some("gamma"),
                Some(json!({"color": "Red", "n": "5"})),
                3_000_000,
            ),
            base(DialogType::Broadcast, None, None, 4_000_000),
            base(
                DialogType::Private,
                None,
                Some(json!({"n": 2.5})),
                5_000_000,
            ),
            base(
                DialogType::Group,
                Some("Zeta"),
                Some(json!({"color": null, "o": {"k": 1}})),
                6_000_000,
            ),
        ];
        let mut messages = Vec::new();
        let bodies = [
            "Hello World",
            "hello there",
            "100% sure",
            "under_score",
            "ünïcode words",
            "the quick brown fox",
            "x",
            "",
            "brown",
            "Brown bread",
            "café crème",
            "Ñandú İstanbul",
            "Łukasz Dvořák",
            "Ḑeẓa Ṫest",
        ];
        for (i, body) in bodies.iter().enumerate() {
            let d = &dialogs[i % 5];
            let sender = 1 + (i % 3) as i64;
            let kind = ["image", "video", "audio"][i % 3];
            messages.push(Message {
                id: ObjectId::generate(),
                app_id: 0,
                dialog_id: d.id,
                sender_id: sender,
                recipient_id: if d.kind == DialogType::Private { 2 } else { 0 },
                body: (i != 6).then(|| body.to_string()),
                date_sent: 1_700_000_000 + (i as i64 % 4) * 10,
                attachments: if i % 2 == 0 {
                    vec![json!({"type": kind, "id": i}), json!({"type": "file"})]
                } else {
                    Vec::new()
                },
                custom: obj(json!({"k": i})).unwrap_or_default(),
                read_ids: vec![sender],
                delivered_ids: vec![sender],
                deleted_for_ids: Vec::new(),
                reactions: Map::new(),
                markable: i % 2 == 1,
                views_count: 0,
                edited_at: None,
                created_at: 1_700_000_000_000 + i as i64 * 1500,
                updated_at: 1_700_000_000_000 + i as i64 * 1500,
            });
        }
        (dialogs, messages)
    }

    fn cond(field: Field, op: Op, values: Vec<Scalar>) -> Condition {
        Condition { field, op, values }
    }

    fn t(s: &str) -> Scalar {
        Scalar::Text(s.to_string())
    }

    /// Edits and deletions, the same on any store.
    #[async_trait::async_trait]
    trait Probe: Sync {
        async fn churn(&self, app: i64, dialogs: &[ObjectId], users: &[i64], messages: &[Message]);
    }

    #[async_trait::async_trait]
    impl<S: ChatStore> Probe for S {
        async fn churn(&self, app: i64, dialogs: &[ObjectId], users: &[i64], messages: &[Message]) {
            let _ = app;
            self.edit_message(messages[5].id, Some("edited body"), 9_000)
                .await
                .unwrap();
            let mut reactions = Map::new();
            reactions.insert("+1".into(), json!([users[1]]));
            self.set_reactions(messages[2].id, &reactions, 9_100)
                .await
                .unwrap();
            self.mark_messages(
                dialogs[1],
                users[2],
                Some(&[messages[1].id, messages[6].id]),
                true,
            )
            .await
            .unwrap();
            self.mark_messages(dialogs[2], users[0], None, false)
                .await
                .unwrap();
            self.delete_messages(dialogs[0], &[messages[5].id])
                .await
                .unwrap();
            self.delete_messages(dialogs[4], &[messages[4].id, messages[9].id])
                .await
                .unwrap();
            self.delete_messages_for_user(dialogs[3], users[1], &[messages[3].id, messages[8].id])
                .await
                .unwrap();
            self.set_member_state(dialogs[3], users[3], MemberChange::Hidden(true), 9_200)
                .await
                .unwrap();
            self.set_member_state(
                dialogs[0],
                users[0],
                MemberChange::ClearedBefore(messages[0].id),
                9_300,
            )
            .await
            .unwrap();
            self.set_member_state(
                dialogs[1],
                users[1],
                MemberChange::Notifications(false),
                9_400,
            )
            .await
            .unwrap();
            self.add_members(dialogs[2], &[users[3], users[3]], 9_500)
                .await
                .unwrap();
            self.remove_members(dialogs[1], &[users[0]]).await.unwrap();
            self.delete_dialog(dialogs[5]).await.unwrap();
        }
    }

    #[tokio::test]
    async fn chat_queries_answer_as_on_sqlite() {
        let Some((pg, _guard)) = fresh().await else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let lite = SqliteStore::open(dir.path()).await.unwrap();
        let (dialogs, messages) = fixtures();
        let wp = populate(&pg, &dialogs, &messages).await;
        let wl = populate(&lite, &dialogs, &messages).await;
        assert_eq!(
            (wp.users.clone(), wp.dialogs.clone()),
            (wl.users.clone(), wl.dialogs.clone())
        );
        let (app, users) = (wp.app.get(), wp.users.clone());

        use Field::*;
        use Op::*;
        let i = Scalar::Int;
        let dialog_conditions = vec![
            vec![],
            vec![cond(Name, Eq, vec![t("alpha")])],
            vec![cond(Name, Ne, vec![t("alpha")])],
            vec![cond(Name, Lt, vec![t("b")])],
            vec![cond(Name, Gte, vec![t("Beta")])],
            vec![cond(Name, In, vec![t("alpha"), t("Zeta"), i(5)])],
            vec![cond(Name, Nin, vec![t("alpha")])],
            vec![cond(Name, All, vec![t("alpha"), t("Zeta")])],
            vec![cond(Name, Ctn, vec![t("ETA")])],
            vec![cond(Name, Ctn, vec![t("_1%")])],
            vec![cond(Name, Ctn, vec![t("a_p")])],
            vec![cond(DialogType, In, vec![i(2), i(4)])],
            vec![cond(DialogType, Eq, vec![t("2")])],
            vec![cond(DialogType, Eq, vec![t("two")])],
            vec![cond(DialogType, Lt, vec![t("two")])],
            vec![cond(CreatedAt, Gt, vec![i(2000)])],
            vec![cond(CreatedAt, Lte, vec![i(3000)])],
            vec![cond(UpdatedAt, Ne, vec![i(1000)])],
            vec![cond(LastMessageDateSent, Gte, vec![i(1_700_000_010)])],
            vec![cond(LastMessageDateSent, Ne, vec![i(1_700_000_010)])],
            vec![cond(
                Id,
                In,
                vec![t(&wp.dialogs[1].to_string()), t(&wp.dialogs[2].to_string())],
            )],
            vec![cond(Id, Gt, vec![t(&wp.dialogs[2].to_string())])],
            vec![cond(Custom("color".into()), Eq, vec![t("red")])],
            vec![cond(Custom("color".into()), Ne, vec![t("red")])],
            vec![cond(Custom("color".into()), In, vec![t("red"), t("blue")])],
            vec![cond(Custom("color".into()), Nin, vec![t("red")])],
            vec![cond(Custom("color".into()), Lt, vec![t("c")])],
            vec![cond(Custom("color".into()), Ctn, vec![t("E")])],
            vec![cond(Custom("n".into()), Eq, vec![t("5")])],
            vec![cond(Custom("n".into()), Gt, vec![t("3")])],
            vec![cond(Custom("n".into()), Lt, vec![t("3")])],
            vec![cond(Custom("n".into()), Ctn, vec![t("5")])],
            vec![cond(Custom("n".into()), Eq, vec![i(5)])],
            vec![cond(Custom("n".into()), Gt, vec![i(3)])],
            vec![cond(Custom("f".into()), Eq, vec![i(1)])],
            vec![cond(Custom("o".into()), Ctn, vec![t("k")])],
            vec![cond(Custom("missing".into()), Ne, vec![t("x")])],
            vec![
                cond(DialogType, Ne, vec![i(1)]),
                cond(Name, Ctn, vec![t("a")]),
            ],
        ];
        let sorts = [
            None,
            Some(Sort {
                field: Name,
                desc: false,
            }),
            Some(Sort {
                field: Name,
                desc: true,
            }),
            Some(Sort {
                field: LastMessageDateSent,
                desc: false,
            }),
            Some(Sort {
                field: LastMessageDateSent,
                desc: true,
            }),
            Some(Sort {
                field: CreatedAt,
                desc: true,
            }),
        ];
        let viewers = [
            Viewer::Admin,
            Viewer::User(users[0]),
            Viewer::User(users[2]),
            Viewer::User(users[3]),
        ];
        let mut checked = 0;
        for conditions in &dialog_conditions {
            for sort in &sorts {
                for viewer in viewers {
                    for (limit, skip) in [(100, 0), (2, 1)] {
                        let q = Query {
                            conditions: conditions.clone(),
                            sort: sort.clone(),
                            limit,
                            skip,
                        };
                        let got = pg
                            .list_dialogs(app, viewer, &q)
                            .await
                            .map(|(d, n)| (format!("{d:?}"), n));
                        let want = lite
                            .list_dialogs(app, viewer, &q)
                            .await
                            .map(|(d, n)| (format!("{d:?}"), n));
                        match (&got, &want) {
                            (Ok(g), Ok(w)) => assert_eq!(g, w, "list_dialogs {viewer:?} {q:?}"),
                            (Err(_), Err(_)) => {}
                            _ => panic!("list_dialogs {viewer:?} {q:?}: {got:?} vs {want:?}"),
                        }
                        checked += 1;
                    }
                }
            }
        }

        let message_conditions = vec![
            vec![],
            vec![cond(Body, Ctn, vec![t("HELLO")])],
            vec![cond(Body, Ctn, vec![t("%")])],
            vec![cond(Body, Ctn, vec![t("_")])],
            vec![cond(Body, Eq, vec![t("x")])],
            vec![cond(Body, Ne, vec![t("x")])],
            vec![cond(Body, Lt, vec![t("a")])],
            vec![cond(SenderId, In, vec![i(1), i(3)])],
            vec![cond(SenderId, Nin, vec![i(1)])],
            vec![cond(SenderId, Ctn, vec![t("2")])],
            vec![cond(RecipientId, Eq, vec![i(2)])],
            vec![cond(DateSent, Gt, vec![i(1_700_000_010)])],
            vec![cond(DateSent, Lte, vec![t("1700000010")])],
            vec![cond(CreatedAt, Gte, vec![i(1_700_000_006)])],
            vec![cond(AttachmentType, In, vec![t("image"), t("video")])],
            vec![cond(AttachmentType, All, vec![t("image"), t("file")])],
            vec![cond(AttachmentType, Nin, vec![t("file")])],
            vec![cond(AttachmentType, Eq, vec![t("audio")])],
            vec![cond(Id, Gt, vec![t(&messages[4].id.to_string())])],
            vec![cond(ChatDialogId, Eq, vec![t(&wp.dialogs[0].to_string())])],
            vec![cond(Custom("x".into()), Eq, vec![t("y")])],
        ];
        let message_sorts = [
            None,
            Some(Sort {
                field: DateSent,
                desc: true,
            }),
            Some(Sort {
                field: Body,
                desc: false,
            }),
            Some(Sort {
                field: Body,
                desc: true,
            }),
            Some(Sort {
                field: SenderId,
                desc: false,
            }),
        ];
        for conditions in &message_conditions {
            for sort in &message_sorts {
                for (limit, skip) in [(100, 0), (3, 2)] {
                    let q = Query {
                        conditions: conditions.clone(),
                        sort: sort.clone(),
                        limit,
                        skip,
                    };
                    let got = pg
                        .list_app_messages(app, &q)
                        .await
                        .map(|(m, n)| (format!("{m:?}"), n));
                    let want = lite
                        .list_app_messages(app, &q)
                        .await
                        .map(|(m, n)| (format!("{m:?}"), n));
                    match (&got, &want) {
                        (Ok(g), Ok(w)) => assert_eq!(g, w, "list_app_messages {q:?}"),
                        (Err(_), Err(_)) => {}
                        _ => panic!("list_app_messages {q:?}: {got:?} vs {want:?}"),
                    }
                    for (d, viewer) in [(0, Some(users[2])), (1, None), (4, Some(users[0]))] {
                        let dialog = wp.dialogs[d];
                        let got = pg
                            .list_messages(
                                dialog,
                                viewer,
                                Some(messages[1].id).filter(|_| d == 1),
                                &q,
                                true,
                            )
                            .await
                            .map(|(m, n)| (format!("{m:?}"), n));
                        let want = lite
                            .list_messages(
                                dialog,
                                viewer,
                                Some(messages[1].id).filter(|_| d == 1),
                                &q,
                                true,
                            )
                            .await
                            .map(|(m, n)| (format!("{m:?}"), n));
                        match (&got, &want) {
                            (Ok(g), Ok(w)) => assert_eq!(g, w, "list_messages {d} {q:?}"),
                            (Err(_), Err(_)) => {}
                            _ => panic!("list_messages {q:?}: {got:?} vs {want:?}"),
                        }
                        checked += 1;
                    }
                }
            }
        }

        for &u in &users {
            assert_eq!(
                pg.unread_counts(app, u, None).await.unwrap(),
                lite.unread_counts(app, u, None).await.unwrap(),
                "unread_counts {u}"
            );
            assert_eq!(
                pg.unread_total(app, u).await.unwrap(),
                lite.unread_total(app, u).await.unwrap(),
                "unread_total {u}"
            );
            for terms in [
                vec!["hello"],
                vec!["HELLO world"],
                vec!["world hello"],
                vec!["brown", "sure"],
                vec!["under"],
                vec!["under_score"],
                vec!["100"],
                vec!["ünïcode"],
                vec!["\"quoted\""],
                vec!["unicode"],
                vec!["CAFE creme"],
                vec!["nandu", "istanbul"],
                vec!["dvorak"],
                vec!["Łukasz"],
                vec!["deza test"],
                vec!["ǘber"],
            ] {
                let search = MessageSearch {
                    app_id: app,
                    user_id: u,
                    terms: terms.iter().map(|t| t.to_string()).collect(),
                    dialog_ids: None,
                    date_from: Some(1_700_000_000),
                    date_to: None,
                    limit: 50,
                };
                let got = format!("{:?}", pg.search_messages(&search).await.unwrap());
                let want = format!("{:?}", lite.search_messages(&search).await.unwrap());
                assert_eq!(got, want, "search {terms:?} as {u}");
            }
        }
        for key in [
            UserKey::Login("alice".into()),
            UserKey::Login("ALICE".into()),
            UserKey::Email("x".into()),
        ] {
            let got = format!("{:?}", pg.user(wp.app, key.clone()).await.unwrap());
            let want = format!("{:?}", lite.user(wl.app, key.clone()).await.unwrap());
            assert_eq!(got, want, "{key:?}");
        }
        let query = confab_core::model::UserQuery {
            logins: Some(vec!["BOB".into(), "alice".into()]),
            full_name: Some("PERSON".into()),
            tags: Some(vec!["t1".into()]),
            limit: 10,
            ..Default::default()
        };
        assert_eq!(
            format!("{:?}", pg.list_users(wp.app, &query).await.unwrap()),
            format!("{:?}", lite.list_users(wl.app, &query).await.unwrap())
        );
        // Per-dialog reads, then the same edits and deletions on both, then the reads again.
        async fn reads<S: ChatStore>(
            s: &S,
            app: i64,
            dialogs: &[ObjectId],
            users: &[i64],
        ) -> String {
            let mut out = String::new();
            for &d in dialogs {
                out += &format!("{:?}\n", s.dialog(app, d).await.unwrap());
                out += &format!("{:?}\n", s.admin_dialog_info(d).await.unwrap());
                out += &format!("{:?}\n", s.members(d, 2, 1).await.unwrap());
                for &u in users {
                    out += &format!("{:?}\n", s.membership(d, u).await.unwrap());
                    out += &format!("{:?}\n", s.post_target(app, d, u).await.unwrap());
                }
            }
            out
        }
        assert_eq!(
            reads(&pg, app, &wp.dialogs, &users).await,
            reads(&lite, app, &wl.dialogs, &users).await
        );
        for s in [&pg as &dyn Probe, &lite as &dyn Probe] {
            s.churn(app, &wp.dialogs, &users, &messages).await;
        }
        assert_eq!(
            reads(&pg, app, &wp.dialogs, &users).await,
            reads(&lite, app, &wl.dialogs, &users).await
        );
        let q = Query {
            limit: 100,
            ..Default::default()
        };
        for &u in &users {
            assert_eq!(
                format!(
                    "{:?}",
                    pg.list_dialogs(app, Viewer::User(u), &q).await.unwrap()
                ),
                format!(
                    "{:?}",
                    lite.list_dialogs(app, Viewer::User(u), &q).await.unwrap()
                )
            );
            assert_eq!(
                pg.unread_total(app, u).await.unwrap(),
                lite.unread_total(app, u).await.unwrap()
            );
        }
        assert_eq!(
            format!("{:?}", pg.list_app_messages(app, &q).await.unwrap()),
            format!("{:?}", lite.list_app_messages(app, &q).await.unwrap())
        );
        eprintln!("{checked} queries answered alike");
    }
}
