//! The roles-and-privileges table of the chat API, tried action by action over real HTTP:
//! a regular user, an admin and the owner of each dialog type attempt every privileged
//! action; allowed ones succeed, the rest get 403 and change nothing.

use confab_testkit as common;

use common::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    Regular,
    Admin,
    Owner,
}

#[derive(Debug, Clone, Copy)]
enum Act {
    Rename,
    AddOccupant,
    RemoveOccupant,
    Pin,
    AddAdmin,
    DeleteOthersMessageForAll,
    Post,
    DeleteDialogForAll,
}

const ACTS: [Act; 8] = [
    Act::Rename,
    Act::AddOccupant,
    Act::RemoveOccupant,
    Act::Pin,
    Act::AddAdmin,
    Act::DeleteOthersMessageForAll,
    Act::Post,
    Act::DeleteDialogForAll,
];

/// The seed's table, written out independently of the server's code.
fn expected(kind: i64, who: Who, act: Act) -> bool {
    use Act::*;
    use Who::*;
    match kind {
        // Private: two regular users; they only post.
        3 => matches!(act, Post),
        // Group. Removing others is the owner's alone: seed 002 says so explicitly, where seed
        // 000's table lists "add/remove users" among admin rights.
        2 => match act {
            Rename | AddOccupant | Post => true,
            Pin | DeleteOthersMessageForAll => who != Regular,
            RemoveOccupant | AddAdmin | DeleteDialogForAll => who == Owner,
        },
        // Public.
        4 => match act {
            Post => true,
            AddOccupant | RemoveOccupant => false,
            Rename | Pin | DeleteOthersMessageForAll => who != Regular,
            AddAdmin | DeleteDialogForAll => who == Owner,
        },
        // Broadcast: ordinary users only receive.
        1 => match act {
            AddOccupant | RemoveOccupant => false,
            Rename | Pin | DeleteOthersMessageForAll | Post => who != Regular,
            AddAdmin | DeleteDialogForAll => who == Owner,
        },
        _ => unreachable!(),
    }
}

struct Cast {
    owner: (i64, String),
    admin: (i64, String),
    regular: (i64, String),
    other: (i64, String),
    extra: (i64, String),
}

async fn cast(t: &TestServer) -> Cast {
    let mut people = Vec::new();
    for name in ["owner", "admin", "regular", "other", "extra"] {
        let id = t.signup(name).await;
        people.push((id, t.login(name).await));
    }
    let mut it = people.into_iter();
    Cast {
        owner: it.next().unwrap(),
        admin: it.next().unwrap(),
        regular: it.next().unwrap(),
        other: it.next().unwrap(),
        extra: it.next().unwrap(),
    }
}

/// A fresh dialog of `kind` with its admin set up and one message to act on.
/// Returns (dialog id, id of a message by someone other than `actor`).
async fn setup(t: &TestServer, c: &Cast, kind: i64, actor: i64) -> (String, String) {
    let (owner, owner_tok) = &c.owner;
    let dialog = match kind {
        1 => {
            let (s, v) = t
                .admin(
                    Method::POST,
                    "/admin/chat",
                    Some(json!({"type": 1, "name": "B", "user_id": owner})),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
            v
        }
        3 => {
            let (s, v) = t
                .call(
                    Method::POST,
                    "/chat/Dialog.json",
                    Some(owner_tok),
                    Some(json!({"type": 3, "occupants_ids": [c.regular.0]})),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
            v
        }
        _ => {
            let (s, v) = t
                .call(Method::POST, "/chat/Dialog.json", Some(owner_tok),
                    Some(json!({"type": kind, "name": "D", "occupants_ids": format!("{}, {}, {}", c.admin.0, c.regular.0, c.other.0)})))
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
            v
        }
    };
    let id = dialog["_id"].as_str().unwrap().to_string();
    if kind == 4 {
        for tok in [&c.admin.1, &c.regular.1, &c.other.1] {
            let (s, v) = t
                .call(
                    Method::POST,
                    &format!("/chat/Dialog/{id}/subscribe.json"),
                    Some(tok),
                    None,
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
        }
    }
    if kind != 3 {
        let (s, v) = t
            .call(
                Method::PUT,
                &format!("/chat/Dialog/{id}/admins.json"),
                Some(owner_tok),
                Some(json!({"push_all": {"admins_ids": [c.admin.0]}})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["admins_ids"], json!([c.admin.0]));
    }
    // Someone other than the actor writes the message the actor will try to delete or pin.
    let author = match kind {
        1 if actor == *owner => &c.admin.1,
        1 => owner_tok,
        3 if actor == *owner => &c.regular.1,
        3 => owner_tok,
        _ => &c.other.1,
    };
    let (s, v) = t
        .call(
            Method::POST,
            "/chat/Message.json",
            Some(author),
            Some(json!({"chat_dialog_id": id, "message": "first"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    (id, v["_id"].as_str().unwrap().to_string())
}

/// Everything an action could change, as the owner sees it (admin API for broadcasts).
async fn snapshot(t: &TestServer, c: &Cast, id: &str) -> Value {
    let (s, v) = t
        .admin(
            Method::GET,
            &format!("/admin/chat/list.json?_id={id}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let mut d = v["items"][0].clone();
    if let Some(obj) = d.as_object_mut() {
        obj.remove("unread_messages_count");
    }
    let (_, msgs) = t
        .admin(
            Method::GET,
            &format!("/admin/chat/messages/list.json?chat_dialog_id={id}"),
            None,
        )
        .await;
    let _ = c;
    json!({"dialog": d, "messages": msgs["total_entries"]})
}

async fn attempt(t: &TestServer, c: &Cast, tok: &str, id: &str, msg: &str, act: Act) -> StatusCode {
    let path = format!("/chat/Dialog/{id}.json");
    match act {
        Act::Rename => {
            t.call(
                Method::PUT,
                &path,
                Some(tok),
                Some(json!({"name": "Renamed"})),
            )
            .await
            .0
        }
        Act::AddOccupant => {
            t.call(
                Method::PUT,
                &path,
                Some(tok),
                Some(json!({"push_all": {"occupants_ids": [c.extra.0]}})),
            )
            .await
            .0
        }
        Act::RemoveOccupant => {
            t.call(
                Method::PUT,
                &path,
                Some(tok),
                Some(json!({"pull_all": {"occupants_ids": [c.other.0]}})),
            )
            .await
            .0
        }
        Act::Pin => {
            t.call(
                Method::PUT,
                &path,
                Some(tok),
                Some(json!({"push_all": {"pinned_messages_ids": [msg]}})),
            )
            .await
            .0
        }
        Act::AddAdmin => {
            t.call(
                Method::PUT,
                &format!("/chat/Dialog/{id}/admins.json"),
                Some(tok),
                Some(json!({"push_all": {"admins_ids": [c.other.0]}})),
            )
            .await
            .0
        }
        Act::DeleteOthersMessageForAll => {
            t.form(
                Method::DELETE,
                &format!("/chat/Message/{msg}.json"),
                tok,
                "force=1",
            )
            .await
            .0
        }
        Act::Post => {
            t.call(
                Method::POST,
                "/chat/Message.json",
                Some(tok),
                Some(json!({"chat_dialog_id": id, "message": "hi"})),
            )
            .await
            .0
        }
        Act::DeleteDialogForAll => t.form(Method::DELETE, &path, tok, "force=1").await.0,
    }
}

#[tokio::test]
async fn roles_and_privileges_table() {
    let t = TestServer::start().await;
    let c = cast(&t).await;
    let mut failures = Vec::new();
    for kind in [1, 2, 3, 4] {
        for who in [Who::Regular, Who::Admin, Who::Owner] {
            if kind == 3 && who == Who::Admin {
                continue; // Private dialogs have no admins.
            }
            let (actor, tok) = match who {
                Who::Regular => &c.regular,
                Who::Admin => &c.admin,
                Who::Owner => &c.owner,
            };
            for act in ACTS {
                let (id, msg) = setup(&t, &c, kind, *actor).await;
                let before = snapshot(&t, &c, &id).await;
                let status = attempt(&t, &c, tok, &id, &msg, act).await;
                let allowed = expected(kind, who, act);
                let ok = if allowed {
                    status == StatusCode::OK
                } else {
                    status == StatusCode::FORBIDDEN && snapshot(&t, &c, &id).await == before
                };
                if !ok {
                    failures.push(format!(
                        "type {kind} {who:?} {act:?}: expected {}, got {status}",
                        if allowed { "200" } else { "403 and no change" }
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "roles table mismatches:\n{}",
        failures.join("\n")
    );
    t.stop().await;
}

#[tokio::test]
async fn admin_limits_and_owner_protection() {
    let t = TestServer::start().await;
    let owner = t.signup("boss").await;
    let owner_tok = t.login("boss").await;
    let mut members = Vec::new();
    for i in 0..7 {
        members.push(t.signup(&format!("member{i}")).await);
    }
    let (_, d) = t
        .call(
            Method::POST,
            "/chat/Dialog.json",
            Some(&owner_tok),
            Some(json!({"type": 2, "name": "Big", "occupants_ids": members})),
        )
        .await;
    let id = d["_id"].as_str().unwrap();
    let (s, v) = t
        .call(
            Method::PUT,
            &format!("/chat/Dialog/{id}/admins.json"),
            Some(&owner_tok),
            Some(json!({"push_all": {"admins_ids": &members[..5]}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // A sixth admin is refused, and nothing changes.
    let (s, v) = t
        .call(
            Method::PUT,
            &format!("/chat/Dialog/{id}/admins.json"),
            Some(&owner_tok),
            Some(json!({"push_all": {"admins_ids": [members[5]]}})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (_, v) = t
        .call(
            Method::GET,
            &format!("/chat/Dialog.json?_id={id}"),
            Some(&owner_tok),
            None,
        )
        .await;
    assert_eq!(v["items"][0]["admins_ids"].as_array().unwrap().len(), 5);
    // An admin cannot remove the owner.
    let admin_tok = t.login("member0").await;
    let (s, _) = t
        .call(
            Method::PUT,
            &format!("/chat/Dialog/{id}.json"),
            Some(&admin_tok),
            Some(json!({"pull_all": {"occupants_ids": [owner]}})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // A regular member may leave by pulling themselves.
    let leaver = t.login("member6").await;
    let (s, v) = t
        .call(
            Method::PUT,
            &format!("/chat/Dialog/{id}.json"),
            Some(&leaver),
            Some(json!({"pull_all": {"occupants_ids": [members[6]]}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(!v["occupants_ids"]
        .as_array()
        .unwrap()
        .contains(&json!(members[6])));
    t.stop().await;
}
