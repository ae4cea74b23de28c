//! The ChatServer face's chats (spec §4) over real HTTP: create with dedupe by participant set,
//! the personal-chat rule, list (with `full`), get (UUIDs in either case), someone else's chat,
//! and the same conversations on the ConnectyCube face.
mod chatserver_common;

use chatserver_common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn create_dedupes_by_participants_and_checks_personal_chats() {
    let cs = Cs::start().await;
    let a = cs.register("chatusera").await;
    let b = cs.register("chatuserb").await;
    let c = cs.register("chatuserc").await;

    // Nobody but the creator.
    for participants in [json!([]), json!([a.id])] {
        assert_error(
            cs.call(
                Method::POST,
                "/chats",
                Some(&a.token),
                Some(json!({"participants": participants})),
            )
            .await,
            StatusCode::BAD_REQUEST,
            "New chat should contain at least one participant.",
        );
    }
    assert_error(
        cs.call(
            Method::POST,
            "/chats",
            Some(&a.token),
            Some(json!({"participants": [b.id, c.id], "isPersonal": true})),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "Personal chat can only contain two users.",
    );

    // Two users: personal by default, and the same chat however it is asked for.
    let p1 = cs.chat(&a.token, &[b.id], None).await;
    assert_eq!(p1["isPersonal"], json!(true));
    assert!(p1.get("title").is_none());
    assert_eq!(p1["owner"]["id"], json!(a.id));
    assert_eq!(p1["allUsers"].as_array().unwrap().len(), 2);
    let p2 = cs.chat(&b.token, &[a.id, b.id, a.id], None).await;
    assert_eq!(p2["id"], p1["id"]);
    let uuid = p1["id"].as_str().unwrap();
    assert_eq!(uuid.len(), 36);
    assert_eq!(uuid, uuid.to_uppercase());

    // Groups: dedupe by the same set; a personal flag makes another chat.
    let g1 = cs.chat(&a.token, &[b.id, c.id], None).await;
    assert_eq!(g1["isPersonal"], json!(false));
    assert_eq!(g1["allUsers"].as_array().unwrap().len(), 3);
    let g2 = cs.chat(&c.token, &[a.id, b.id], None).await;
    assert_eq!(g2["id"], g1["id"]);
    let titled = cs
        .call(
            Method::POST,
            "/chats",
            Some(&a.token),
            Some(json!({"participants": [b.id], "isPersonal": false, "title": "Pair group"})),
        )
        .await;
    assert_eq!(titled.0, StatusCode::OK, "{}", titled.1);
    assert_eq!(titled.1["title"], "Pair group");
    assert_ne!(titled.1["id"], p1["id"]);

    // Unknown users, malformed bodies, no token: errors, nothing created.
    let (s, _) = cs
        .call(
            Method::POST,
            "/chats",
            Some(&a.token),
            Some(json!({"participants": [999999]})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = cs
        .call_raw(Method::POST, "/chats", Some(&a.token), "[1,")
        .await;
    assert_eq!((s, &v["error"]), (StatusCode::BAD_REQUEST, &json!(true)));
    assert_error(
        cs.call(
            Method::POST,
            "/chats",
            None,
            Some(json!({"participants": [b.id]})),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "Unauthorized",
    );
    let (_, list) = cs.call(Method::GET, "/chats", Some(&a.token), None).await;
    assert_eq!(list.as_array().unwrap().len(), 3, "{list}");
}

#[tokio::test]
async fn list_and_get_with_uuids_in_either_case() {
    let cs = Cs::start().await;
    let a = cs.register("listusera").await;
    let b = cs.register("listuserb").await;
    let outsider = cs.register("outsider1").await;
    let chat = cs.chat(&a.token, &[b.id], None).await;
    let uuid = chat["id"].as_str().unwrap();

    let (s, list) = cs.call(Method::GET, "/chats", Some(&b.token), None).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], json!(uuid));
    assert!(list[0].get("allUsers").is_none(), "only with full");
    let (s, slash) = cs.call(Method::GET, "/chats/", Some(&b.token), None).await;
    assert_eq!((s, slash.as_array().unwrap()), (StatusCode::OK, list));
    assert_eq!(list[0]["owner"]["id"], json!(a.id));
    for full in ["1", "true"] {
        let (_, v) = cs
            .call(
                Method::GET,
                &format!("/chats?full={full}"),
                Some(&b.token),
                None,
            )
            .await;
        assert_eq!(v[0]["allUsers"].as_array().unwrap().len(), 2);
    }

    for id in [uuid.to_string(), uuid.to_lowercase()] {
        let (s, v) = cs
            .call(Method::GET, &format!("/chats/{id}"), Some(&a.token), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["id"], json!(uuid));
        assert_eq!(v["allUsers"].as_array().unwrap().len(), 2);
        assert_eq!(v["isMuted"], json!(false));
    }
    // Someone else's chat, an unknown UUID, a malformed one.
    for (token, id) in [
        (&outsider.token, uuid.to_string()),
        (&a.token, "E621E1F8-C36C-495A-93FC-0C247A3E6E5F".to_string()),
        (&a.token, "not-a-uuid".to_string()),
    ] {
        assert_error(
            cs.call(Method::GET, &format!("/chats/{id}"), Some(token), None)
                .await,
            StatusCode::NOT_FOUND,
            "Not Found",
        );
    }
    let (_, v) = cs
        .call(Method::GET, "/chats", Some(&outsider.token), None)
        .await;
    assert_eq!(v, json!([]));
}

#[tokio::test]
async fn chats_are_the_connectycube_dialogs_and_keep_their_ids() {
    let mut cs = Cs::start().await;
    let a = cs.register("dialogusera").await;
    let b = cs.register("dialoguserb").await;
    let c = cs.register("dialoguserc").await;
    let personal = cs.chat(&a.token, &[b.id], None).await;
    let group = cs.chat(&a.token, &[b.id, c.id], None).await;

    // The ConnectyCube face sees a private (3) and a group (2) dialog with the same users.
    let token = cs.ts.login("dialogusera").await;
    let (s, v) = cs
        .ts
        .call(Method::GET, "/chat/Dialog.json", Some(&token), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{v}");
    let mut types: Vec<i64> = items.iter().map(|d| d["type"].as_i64().unwrap()).collect();
    types.sort();
    assert_eq!(types, [2, 3]);

    // A dialog made on the ConnectyCube side gets a UUID the first time it is shown here.
    let cc_group = cs.ts.group(&token, &[b.id]).await;
    let (_, list) = cs.call(Method::GET, "/chats", Some(&a.token), None).await;
    assert_eq!(list.as_array().unwrap().len(), 3, "{list}");
    let ids_before: Vec<String> = {
        let mut v: Vec<String> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    assert!(!cc_group.is_empty());

    // Ids survive a restart.
    cs.ts.restart().await;
    cs.base = cs.ts.chatserver_base.clone().unwrap();
    let (_, list) = cs.call(Method::GET, "/chats", Some(&a.token), None).await;
    let mut ids_after: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    ids_after.sort();
    assert_eq!(ids_before, ids_after);
    assert!(ids_after.contains(&personal["id"].as_str().unwrap().to_string()));
    assert!(ids_after.contains(&group["id"].as_str().unwrap().to_string()));
    // And dedupe still finds the same group.
    let again = cs.chat(&b.token, &[a.id, c.id], None).await;
    assert_eq!(again["id"], group["id"]);
}

#[tokio::test]
async fn title_and_settings() {
    let cs = Cs::start().await;
    let a = cs.register("titlea01").await;
    let b = cs.register("titleb01").await;
    let c = cs.register("titlec01").await;
    let outsider = cs.register("titleout").await;
    let group = cs.chat(&a.token, &[b.id, c.id], None).await;
    let personal = cs.chat(&a.token, &[b.id], None).await;
    let gid = group["id"].as_str().unwrap();
    let mut sa = cs.socket(&a.token, &format!("/{}", a.session)).await;
    let mut sc = cs.socket(&c.token, &format!("/{}", c.session)).await;

    // Any participant renames a group; everyone is told.
    let (s, v) = cs
        .call(
            Method::PUT,
            &format!("/chats/{gid}"),
            Some(&b.token),
            Some(json!({"title": "Renamed"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["title"], "Renamed");
    assert!(v.get("allUsers").is_none());
    for sock in [&mut sa, &mut sc] {
        let f = sock.frame().await;
        assert_eq!(f["event"], "chatUpdate");
        assert_eq!(f["source"], json!(b.id.to_string()));
        assert_eq!(f["payload"]["title"], "Renamed");
    }
    // The ConnectyCube dialog has the new name.
    let token = cs.ts.login("titlec01").await;
    let (_, dialogs) = cs
        .ts
        .call(Method::GET, "/chat/Dialog.json", Some(&token), None)
        .await;
    assert!(dialogs["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["name"] == "Renamed"));

    assert_error(
        cs.call(
            Method::PUT,
            &format!("/chats/{}", personal["id"].as_str().unwrap()),
            Some(&a.token),
            Some(json!({"title": "x"})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "You can't update personal chat.",
    );
    assert_error(
        cs.call(
            Method::PUT,
            &format!("/chats/{gid}"),
            Some(&outsider.token),
            Some(json!({"title": "x"})),
        )
        .await,
        StatusCode::FORBIDDEN,
        "Forbidden",
    );
    let (s, _) = cs
        .call_raw(Method::PUT, &format!("/chats/{gid}"), Some(&a.token), "{")
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (_, v) = cs
        .call(Method::GET, &format!("/chats/{gid}"), Some(&a.token), None)
        .await;
    assert_eq!(
        v["title"], "Renamed",
        "nothing changed by the refused calls"
    );

    // Mute is the caller's own.
    let (s, v) = cs
        .call(
            Method::PUT,
            &format!("/chats/{gid}/settings"),
            Some(&c.token),
            Some(json!({"isMuted": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["isMuted"], json!(true));
    let (_, v) = cs
        .call(Method::GET, &format!("/chats/{gid}"), Some(&c.token), None)
        .await;
    assert_eq!(v["isMuted"], json!(true));
    let (_, v) = cs
        .call(Method::GET, &format!("/chats/{gid}"), Some(&a.token), None)
        .await;
    assert_eq!(v["isMuted"], json!(false));
    assert_error(
        cs.call(
            Method::PUT,
            &format!("/chats/{gid}/settings"),
            Some(&outsider.token),
            Some(json!({"isMuted": true})),
        )
        .await,
        StatusCode::FORBIDDEN,
        "Forbidden",
    );
}

#[tokio::test]
async fn adding_and_removing_users_on_either_face() {
    let cs = Cs::start().await;
    let a = cs.register("membera1").await;
    let b = cs.register("memberb1").await;
    let c = cs.register("memberc1").await;
    let d = cs.register("memberd1").await;
    let group = cs.chat(&a.token, &[b.id], Some(false)).await;
    let gid = group["id"].as_str().unwrap();
    let path = format!("/chats/{gid}/users");
    let mut sa = cs.socket(&a.token, &format!("/{}", a.session)).await;
    let mut sc = cs.socket(&c.token, &format!("/{}", c.session)).await;

    // Any participant adds; the new one and everyone there hear of it.
    let (s, v) = cs
        .call(
            Method::POST,
            &path,
            Some(&b.token),
            Some(json!({"users": [c.id, a.id]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["addedUsers"][0]["id"], json!(c.id));
    assert_eq!(v["addedUsers"].as_array().unwrap().len(), 1);
    for sock in [&mut sa, &mut sc] {
        let f = sock.frame().await;
        assert_eq!(f["event"], "addedUsers");
        assert_eq!(f["source"], json!(b.id.to_string()));
        assert_eq!(f["payload"]["addedUsers"][0]["id"], json!(c.id));
    }
    assert_error(
        cs.call(
            Method::POST,
            &path,
            Some(&b.token),
            Some(json!({"users": [c.id]})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "No users to add found.",
    );
    let many: Vec<i64> = (100_001..=100_011).collect();
    assert_error(
        cs.call(
            Method::POST,
            &path,
            Some(&b.token),
            Some(json!({"users": many})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "To many users to add at once.",
    );
    let personal = cs.chat(&a.token, &[b.id], None).await;
    let (s, _) = cs
        .call(
            Method::POST,
            &format!("/chats/{}/users", personal["id"].as_str().unwrap()),
            Some(&a.token),
            Some(json!({"users": [c.id]})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        cs.call(
            Method::POST,
            &path,
            Some(&d.token),
            Some(json!({"users": [d.id]}))
        )
        .await
        .0,
        StatusCode::FORBIDDEN,
        "outsiders cannot add themselves"
    );

    // Removing: the owner may; the removed one hears nothing more.
    let (s, _) = cs
        .call(
            Method::DELETE,
            &path,
            Some(&b.token),
            Some(json!({"users": [c.id]})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "only the owner removes others");
    let (s, v) = cs
        .call(
            Method::DELETE,
            &path,
            Some(&a.token),
            Some(json!({"users": [c.id]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["removedUsers"][0]["id"], json!(c.id));
    let f = sa.frame().await;
    assert_eq!(f["event"], "removedUsers");
    assert_eq!(f["payload"]["removedUsers"][0]["id"], json!(c.id));
    sc.quiet(300).await;
    assert_error(
        cs.call(
            Method::DELETE,
            &path,
            Some(&a.token),
            Some(json!({"users": [c.id]})),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "Users provided are not participants of this chat.",
    );
    let (s, _) = cs
        .call(
            Method::DELETE,
            &path,
            Some(&a.token),
            Some(json!({"users": []})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // A change on the ConnectyCube face shows here: d added there, and a rename.
    let token = cs.ts.login("membera1").await;
    let (_, dialogs) = cs
        .ts
        .call(Method::GET, "/chat/Dialog.json", Some(&token), None)
        .await;
    let dialog = dialogs["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["type"] == 2)
        .unwrap()
        .clone();
    let occupants: Vec<i64> = dialog["occupants_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert!(!occupants.contains(&c.id));
    let did = dialog["_id"].as_str().unwrap();
    let (s, v) = cs
        .ts
        .call(
            Method::PUT,
            &format!("/chat/Dialog/{did}.json"),
            Some(&token),
            Some(json!({"push_all": {"occupants_ids": [d.id]}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let f = sa.frame().await;
    assert_eq!(f["event"], "addedUsers");
    assert_eq!(f["source"], json!(a.id.to_string()));
    assert_eq!(f["payload"]["addedUsers"][0]["id"], json!(d.id));
    assert_eq!(f["payload"]["id"], json!(gid));
    let (s, _) = cs
        .ts
        .call(
            Method::PUT,
            &format!("/chat/Dialog/{did}.json"),
            Some(&token),
            Some(json!({"name": "From the SDK"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let f = sa.frame().await;
    assert_eq!(
        (f["event"].as_str(), f["payload"]["title"].as_str()),
        (Some("chatUpdate"), Some("From the SDK"))
    );
}

#[tokio::test]
async fn exit_a_group() {
    let cs = Cs::start().await;
    let a = cs.register("exitera1").await;
    let b = cs.register("exiterb1").await;
    let group = cs.chat(&a.token, &[b.id], Some(false)).await;
    let personal = cs.chat(&a.token, &[b.id], None).await;
    let gid = group["id"].as_str().unwrap();
    let mut sa = cs.socket(&a.token, &format!("/{}", a.session)).await;
    assert_error(
        cs.call(
            Method::DELETE,
            &format!("/chats/{}/me", personal["id"].as_str().unwrap()),
            Some(&b.token),
            None,
        )
        .await,
        StatusCode::BAD_REQUEST,
        "Bad Request",
    );
    assert_eq!(
        cs.status(Method::DELETE, &format!("/chats/{gid}/me"), &b.token)
            .await,
        StatusCode::OK
    );
    let f = sa.frame().await;
    assert_eq!(f["event"], "removedUsers");
    assert_eq!(f["payload"]["removedUsers"][0]["id"], json!(b.id));
    assert_eq!(
        cs.status(Method::GET, &format!("/chats/{gid}"), &b.token)
            .await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        cs.status(Method::DELETE, &format!("/chats/{gid}/me"), &b.token)
            .await,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn deleting_chats() {
    let cs = Cs::start().await;
    let a = cs.register("deletea1").await;
    let b = cs.register("deleteb1").await;
    let group = cs.chat(&a.token, &[b.id], Some(false)).await;
    let personal = cs.chat(&a.token, &[b.id], None).await;
    let gid = group["id"].as_str().unwrap();
    let pid = personal["id"].as_str().unwrap();
    cs.post(&a, pid, "kept for b").await;
    let mut sb = cs.socket(&b.token, &format!("/{}", b.session)).await;

    assert_error(
        cs.call(
            Method::DELETE,
            &format!("/chats/{gid}"),
            Some(&b.token),
            None,
        )
        .await,
        StatusCode::FORBIDDEN,
        "You can't delete this chat.",
    );
    assert_eq!(
        cs.status(Method::DELETE, &format!("/chats/{gid}"), &a.token)
            .await,
        StatusCode::OK
    );
    let f = sb.frame().await;
    assert_eq!(
        (f["event"].as_str(), &f["payload"]),
        (Some("chatDeleted"), &json!(null))
    );
    for t in [&a.token, &b.token] {
        assert_eq!(
            cs.status(Method::GET, &format!("/chats/{gid}"), t).await,
            StatusCode::NOT_FOUND
        );
    }

    // A group deleted on the ConnectyCube face (the owner's `DELETE /chat/Dialog?force=1`) is
    // gone for the sockets too.
    let other = cs.chat(&a.token, &[b.id], Some(false)).await;
    let oid = other["id"].as_str().unwrap();
    let token = cs.ts.login("deletea1").await;
    let dialog = cs.first_dialog(&token, "?type=2").await;
    let (s, v) = cs
        .ts
        .call(
            Method::DELETE,
            &format!("/chat/Dialog/{dialog}.json?force=1"),
            Some(&token),
            None,
        )
        .await;
    assert!(s.is_success(), "{v}");
    let f = sb.frame().await;
    assert_eq!(
        (f["event"].as_str(), f["source"].as_str()),
        (Some("chatDeleted"), Some(a.id.to_string().as_str()))
    );
    assert_eq!(
        cs.status(Method::GET, &format!("/chats/{oid}"), &b.token)
            .await,
        StatusCode::NOT_FOUND
    );

    // A personal chat leaves the caller's list only.
    assert_eq!(
        cs.status(Method::DELETE, &format!("/chats/{pid}"), &a.token)
            .await,
        StatusCode::OK
    );
    sb.quiet(300).await;
    let (_, mine) = cs.call(Method::GET, "/chats", Some(&a.token), None).await;
    assert_eq!(mine, json!([]));
    let (_, theirs) = cs.call(Method::GET, "/chats", Some(&b.token), None).await;
    assert_eq!(theirs[0]["id"], json!(pid));
    assert_eq!(theirs[0]["lastMessage"]["text"], "kept for b");
}

/// The ids of the chats `GET /chats` lists for `token`.
async fn listed(cs: &Cs, token: &str) -> Vec<String> {
    let (s, v) = cs.call(Method::GET, "/chats", Some(token), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

async fn settings(cs: &Cs, token: &str, chat: &str, body: serde_json::Value) -> serde_json::Value {
    let (s, v) = cs
        .call(
            Method::PUT,
            &format!("/chats/{chat}/settings"),
            Some(token),
            Some(body),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

#[tokio::test]
async fn archive_and_remove_on_device_are_per_user() {
    let cs = Cs::start().await;
    let a = cs.register("flagsa01").await;
    let b = cs.register("flagsb01").await;
    let c = cs.register("flagsc01").await;
    let personal = cs.chat(&a.token, &[b.id], None).await;
    let group = cs.chat(&a.token, &[b.id, c.id], None).await;
    let (pid, gid) = (
        personal["id"].as_str().unwrap().to_string(),
        group["id"].as_str().unwrap().to_string(),
    );
    assert_eq!(personal["isArchived"], false);

    // Archiving shows in every answer to the caller, and only to them.
    let v = settings(&cs, &a.token, &gid, json!({"isArchived": true})).await;
    assert_eq!(v["isArchived"], true);
    let (_, v) = cs
        .call(Method::GET, &format!("/chats/{gid}"), Some(&a.token), None)
        .await;
    assert_eq!(v["isArchived"], true);
    let (_, list) = cs.call(Method::GET, "/chats", Some(&a.token), None).await;
    let mine = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == json!(gid))
        .unwrap();
    assert_eq!(mine["isArchived"], true);
    let (_, v) = cs
        .call(Method::GET, &format!("/chats/{gid}"), Some(&b.token), None)
        .await;
    assert_eq!(v["isArchived"], false);
    // Another setting leaves it as it is.
    let v = settings(&cs, &a.token, &gid, json!({"isMuted": true})).await;
    assert_eq!(
        (&v["isArchived"], &v["isMuted"]),
        (&json!(true), &json!(true))
    );

    // Removed on device: gone from the list, still readable by id.
    settings(&cs, &a.token, &pid, json!({"isRemovedOnDevice": true})).await;
    settings(&cs, &a.token, &gid, json!({"isRemovedOnDevice": true})).await;
    assert!(listed(&cs, &a.token).await.is_empty());
    assert_eq!(listed(&cs, &b.token).await.len(), 2);
    assert_eq!(
        cs.status(Method::GET, &format!("/chats/{pid}"), &a.token)
            .await,
        StatusCode::OK
    );

    // A message in a personal chat brings it back for the recipient; in a group it does not.
    cs.post(&b, &pid, "back?").await;
    cs.post(&b, &gid, "not for a").await;
    assert_eq!(listed(&cs, &a.token).await, vec![pid.clone()]);
    // The author's own post brings it back and un-archives it.
    cs.post(&a, &gid, "here").await;
    assert_eq!(listed(&cs, &a.token).await.len(), 2);
    let (_, v) = cs
        .call(Method::GET, &format!("/chats/{gid}"), Some(&a.token), None)
        .await;
    assert_eq!(
        (&v["isArchived"], &v["isMuted"]),
        (&json!(false), &json!(true))
    );

    // Bad input changes nothing.
    let outsider = cs.register("flagsout1").await;
    assert_error(
        cs.call(
            Method::PUT,
            &format!("/chats/{gid}/settings"),
            Some(&outsider.token),
            Some(json!({"isArchived": true})),
        )
        .await,
        StatusCode::FORBIDDEN,
        "Forbidden",
    );
    let (s, _) = cs
        .call_raw(
            Method::PUT,
            &format!("/chats/{gid}/settings"),
            Some(&a.token),
            "{\"isArchived\": true",
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = cs
        .call(
            Method::PUT,
            &format!("/chats/{gid}/settings"),
            Some(&a.token),
            Some(json!({"isArchived": "yes"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = cs
        .call(
            Method::PUT,
            &format!("/chats/{gid}/settings"),
            None,
            Some(json!({"isArchived": true})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (_, v) = cs
        .call(Method::GET, &format!("/chats/{gid}"), Some(&a.token), None)
        .await;
    assert_eq!(v["isArchived"], false);
    let (_, v) = cs
        .call(
            Method::GET,
            &format!("/chats/{gid}"),
            Some(&outsider.token),
            None,
        )
        .await;
    assert_eq!(v["error"], true);
}

#[tokio::test]
async fn group_images_belong_to_the_owner_and_are_told() {
    let cs = Cs::start().await;
    let a = cs.register("imagesa01").await;
    let b = cs.register("imagesb01").await;
    let group = cs.chat(&a.token, &[b.id], Some(false)).await;
    let personal = cs.chat(&a.token, &[b.id], None).await;
    let gid = group["id"].as_str().unwrap();
    assert_eq!(group["images"], json!([]));
    let mut sb = cs.socket(&b.token, &format!("/{}", b.session)).await;
    let image = |id: Option<String>, kind: &str, size: i64| {
        let mut i = json!({"fileType": kind, "fileSize": size, "previewWidth": 40});
        if let Some(id) = id {
            i["id"] = json!(id);
        }
        json!({ "image": i })
    };
    let post = |token: String, chat: String, body: serde_json::Value| {
        let cs = &cs;
        async move {
            cs.call(
                Method::POST,
                &format!("/chats/{chat}/images"),
                Some(&token),
                Some(body),
            )
            .await
        }
    };

    let id = uuid(7);
    let (s, v) = post(
        a.token.clone(),
        gid.into(),
        image(Some(id.clone()), "jpg", 500),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["id"], json!(gid));
    assert_eq!(v["images"][0]["id"], json!(id));
    assert_eq!(
        (
            &v["images"][0]["previewWidth"],
            &v["images"][0]["previewHeight"]
        ),
        (&json!(40), &json!(100))
    );
    // The participants are told (the original was silent, its document said otherwise).
    let f = sb.frame().await;
    assert_eq!(f["event"], "chatUpdate");
    assert_eq!(f["source"], json!(a.id.to_string()));
    assert_eq!(f["payload"]["images"][0]["id"], json!(id));
    assert!(f["payload"]["images"][0]["createdAt"].is_number());
    let (_, list) = cs.call(Method::GET, "/chats", Some(&b.token), None).await;
    let listed = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == json!(gid))
        .unwrap();
    assert_eq!(listed["images"][0]["id"], json!(id));

    // Refused: not the owner, a personal chat, bad media; nothing is added or told.
    assert_error(
        post(b.token.clone(), gid.into(), image(Some(uuid(8)), "jpg", 5)).await,
        StatusCode::FORBIDDEN,
        "Forbidden",
    );
    assert_error(
        post(
            a.token.clone(),
            personal["id"].as_str().unwrap().into(),
            image(Some(uuid(8)), "jpg", 5),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "You can't update personal chat.",
    );
    assert_error(
        post(a.token.clone(), gid.into(), image(None, "jpg", 5)).await,
        StatusCode::BAD_REQUEST,
        "Media resource id is missing.",
    );
    assert_error(
        post(a.token.clone(), gid.into(), image(Some(uuid(8)), "jpg", 0)).await,
        StatusCode::BAD_REQUEST,
        "Media fileType or fileSize are missing.",
    );
    assert_error(
        post(a.token.clone(), uuid(99), image(Some(uuid(8)), "jpg", 5)).await,
        StatusCode::NOT_FOUND,
        "Not Found",
    );
    let (s, _) = cs
        .call_raw(
            Method::POST,
            &format!("/chats/{gid}/images"),
            Some(&a.token),
            "{\"image\":",
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    sb.quiet(300).await;
    let (_, v) = cs
        .call(Method::GET, &format!("/chats/{gid}"), Some(&a.token), None)
        .await;
    assert_eq!(v["images"].as_array().unwrap().len(), 1);

    // Removing: owner only, known ids only; then it is gone and told.
    let path = format!("/chats/{gid}/images/{id}");
    assert_error(
        cs.call(Method::DELETE, &path, Some(&b.token), None).await,
        StatusCode::FORBIDDEN,
        "Forbidden",
    );
    assert_error(
        cs.call(
            Method::DELETE,
            &format!("/chats/{gid}/images/{}", uuid(8)),
            Some(&a.token),
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
        "Not Found",
    );
    sb.quiet(300).await;
    assert_eq!(
        cs.status(Method::DELETE, &path, &a.token).await,
        StatusCode::OK
    );
    let f = sb.frame().await;
    assert_eq!(f["event"], "chatUpdate");
    assert_eq!(f["payload"]["images"], json!([]));
    let (_, v) = cs
        .call(Method::GET, &format!("/chats/{gid}"), Some(&b.token), None)
        .await;
    assert_eq!(v["images"], json!([]));

    // The full info shows the participants with their photos.
    let (s, _) = cs
        .call(
            Method::POST,
            "/users/me/photos",
            Some(&a.token),
            Some(json!({"photo": {"id": uuid(30), "fileType": "png", "fileSize": 3}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, v) = cs
        .call(Method::GET, &format!("/chats/{gid}"), Some(&b.token), None)
        .await;
    let photos = |id: i64| {
        v["allUsers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["id"] == json!(id))
            .unwrap()["photos"]
            .clone()
    };
    assert_eq!(photos(a.id)[0]["id"], json!(uuid(30)));
    assert_eq!(photos(b.id), json!([]));

    // Deleting the group takes its images and the owner's uploads of their names.
    let id = uuid(31);
    let (s, _) = post(
        a.token.clone(),
        gid.into(),
        image(Some(id.clone()), "png", 5),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = cs
        .upload(Some(&a.token), Some(&id), Some("png"), "image".into())
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(cs.fetch_file(&format!("/{id}.png")).await.0, StatusCode::OK);
    assert_eq!(
        cs.status(Method::DELETE, &format!("/chats/{gid}"), &a.token)
            .await,
        StatusCode::OK
    );
    assert_eq!(
        cs.fetch_file(&format!("/{id}.png")).await.0,
        StatusCode::NOT_FOUND
    );
    // Its id is free again.
    let other = cs.chat(&a.token, &[b.id], Some(false)).await;
    let (s, _) = post(
        a.token.clone(),
        other["id"].as_str().unwrap().into(),
        image(Some(id), "png", 5),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
}

async fn put(cs: &Cs, token: &str, path: &str) -> StatusCode {
    cs.call(Method::PUT, path, Some(token), None).await.0
}

#[tokio::test]
async fn a_blocked_group_is_silent_and_its_blocker_not_added_back() {
    let cs = Cs::start().await;
    let a = cs.register("gblocka01").await;
    let b = cs.register("gblockb01").await;
    let c = cs.register("gblockc01").await;
    let group = cs.chat(&a.token, &[b.id, c.id], None).await;
    let gid = group["id"].as_str().unwrap();
    let mut sb = cs.socket(&b.token, &format!("/{}", b.session)).await;
    let mut sc = cs.socket(&c.token, &format!("/{}", c.session)).await;

    assert_eq!(
        put(&cs, &b.token, &format!("/chats/{gid}/block")).await,
        StatusCode::OK
    );
    assert_eq!(
        put(&cs, &b.token, &format!("/chats/{gid}/block")).await,
        StatusCode::OK
    );
    let (_, v) = cs
        .call(Method::GET, &format!("/chats/{gid}"), Some(&b.token), None)
        .await;
    assert_eq!(v["isBlocked"], true);
    let (_, v) = cs
        .call(Method::GET, &format!("/chats/{gid}"), Some(&a.token), None)
        .await;
    assert_eq!(v["isBlocked"], false);

    // The blocker hears nothing of the chat; the others do.
    cs.post(&a, gid, "quiet please").await;
    let (s, _) = cs
        .call(
            Method::PUT,
            &format!("/chats/{gid}"),
            Some(&a.token),
            Some(json!({"title": "Renamed"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(sc.frame().await["event"], "message");
    assert_eq!(sc.frame().await["event"], "chatUpdate");
    sb.quiet(300).await;

    // Unblocked, they hear it again.
    assert_eq!(
        put(&cs, &b.token, &format!("/chats/{gid}/unblock")).await,
        StatusCode::OK
    );
    cs.post(&a, gid, "welcome back").await;
    let f = sb.frame().await;
    assert_eq!(
        (&f["event"], &f["payload"]["text"]),
        (&json!("message"), &json!("welcome back"))
    );

    // Blocked and gone, they are not added back.
    assert_eq!(
        put(&cs, &b.token, &format!("/chats/{gid}/block")).await,
        StatusCode::OK
    );
    assert_eq!(
        cs.status(Method::DELETE, &format!("/chats/{gid}/me"), &b.token)
            .await,
        StatusCode::OK
    );
    assert_error(
        cs.call(
            Method::POST,
            &format!("/chats/{gid}/users"),
            Some(&a.token),
            Some(json!({"users": [b.id]})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "No users to add found.",
    );
    let (_, v) = cs
        .call(Method::GET, &format!("/chats/{gid}"), Some(&a.token), None)
        .await;
    assert_eq!(v["allUsers"].as_array().unwrap().len(), 2);
    // Outsiders cannot block it; the one who left may lift their block, and can be added again.
    let outsider = cs.register("gblockout").await;
    let blocking = format!("/chats/{gid}/block");
    assert_eq!(put(&cs, &b.token, &blocking).await, StatusCode::FORBIDDEN);
    assert_eq!(
        put(&cs, &outsider.token, &blocking).await,
        StatusCode::FORBIDDEN
    );
    let unblocking = format!("/chats/{gid}/unblock");
    assert_eq!(
        put(&cs, &outsider.token, &unblocking).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(put(&cs, &b.token, &unblocking).await, StatusCode::OK);
    let (s, v) = cs
        .call(
            Method::POST,
            &format!("/chats/{gid}/users"),
            Some(&a.token),
            Some(json!({"users": [b.id]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["addedUsers"][0]["id"], json!(b.id));
}

#[tokio::test]
async fn users_blocked_in_a_group_may_read_but_not_take_part() {
    let cs = Cs::start().await;
    let a = cs.register("ubanaaa01").await;
    let b = cs.register("ubanbbb01").await;
    let c = cs.register("ubanccc01").await;
    let d = cs.register("uband0001").await;
    let group = cs.chat(&a.token, &[b.id, c.id], None).await;
    let personal = cs.chat(&a.token, &[b.id], None).await;
    let gid = group["id"].as_str().unwrap();
    let ban = |user: i64, what: &str| format!("/chats/{gid}/users/{user}/{what}");
    let blocked_list = |token: String| {
        let (cs, path) = (&cs, format!("/chats/{gid}/users/blocked"));
        async move { cs.call(Method::GET, &path, Some(&token), None).await }
    };
    let m = cs.post(&a, gid, "before").await;
    let mut sc = cs.socket(&c.token, &format!("/{}", c.session)).await;
    let mut sb = cs.socket(&b.token, &format!("/{}", b.session)).await;

    // Only the owner (or an admin) blocks, only participants, never themselves; nothing changes
    // when refused.
    assert_eq!(
        put(&cs, &b.token, &ban(c.id, "block")).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        put(&cs, &a.token, &ban(d.id, "block")).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        put(&cs, &a.token, &ban(999_999, "block")).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        put(&cs, &a.token, &ban(a.id, "block")).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        put(
            &cs,
            &a.token,
            &format!("/chats/{}/users/{}/block", uuid(5), c.id)
        )
        .await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        put(
            &cs,
            &a.token,
            &format!(
                "/chats/{}/users/{}/block",
                personal["id"].as_str().unwrap(),
                b.id
            )
        )
        .await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        put(&cs, &d.token, &ban(c.id, "block")).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        blocked_list(a.token.clone()).await,
        (StatusCode::OK, json!([]))
    );

    assert_eq!(
        put(&cs, &a.token, &ban(c.id, "block")).await,
        StatusCode::OK
    );
    let (s, v) = blocked_list(b.token.clone()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(
        (&v[0]["id"], &v[0]["username"]),
        (&json!(c.id), &json!("ubanccc01"))
    );

    // Blocked: no posting, editing, listing, renaming, members, notifying, blocking, or list.
    let (s, v) = cs
        .call(
            Method::POST,
            &format!("/chats/{gid}/messages"),
            Some(&c.token),
            Some(json!({"localId": local_id(c.id), "text": "let me in"})),
        )
        .await;
    assert_error(
        (s, v),
        StatusCode::FORBIDDEN,
        "You can't post into this chat.",
    );
    let refused = [
        (Method::GET, format!("/chats/{gid}/messages"), None),
        (
            Method::PUT,
            format!("/chats/{gid}"),
            Some(json!({"title": "Mine"})),
        ),
        (
            Method::POST,
            format!("/chats/{gid}/users"),
            Some(json!({"users": [d.id]})),
        ),
        (
            Method::DELETE,
            format!("/chats/{gid}/users"),
            Some(json!({"users": [b.id]})),
        ),
        (
            Method::POST,
            format!("/chats/{gid}/notify"),
            Some(json!({"name": "typing"})),
        ),
        (Method::PUT, ban(b.id, "block"), None),
        (Method::GET, format!("/chats/{gid}/users/blocked"), None),
    ];
    for (method, path, body) in refused {
        let (s, v) = cs.call(method.clone(), &path, Some(&c.token), body).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{method} {path}: {v}");
    }
    let (_, v) = cs
        .call(Method::GET, &format!("/chats/{gid}"), Some(&a.token), None)
        .await;
    assert_eq!(v["title"], group["title"]);
    assert_eq!(v["allUsers"].as_array().unwrap().len(), 3);
    sb.quiet(300).await;
    // Still allowed: the chat itself, marking read.
    assert_eq!(
        cs.status(Method::GET, &format!("/chats/{gid}"), &c.token)
            .await,
        StatusCode::OK
    );
    let read = format!("/chats/{gid}/messages/{}/read", m["id"]);
    assert_eq!(put(&cs, &c.token, &read).await, StatusCode::OK);
    // And they hear nothing of it.
    assert_eq!(sb.frame().await["event"], "messageUpdate");
    cs.post(&a, gid, "while blocked").await;
    assert_eq!(sb.frame().await["event"], "message");
    sc.quiet(300).await;

    // Unblocked, all is back.
    assert_eq!(
        put(&cs, &a.token, &ban(c.id, "unblock")).await,
        StatusCode::OK
    );
    assert_eq!(
        blocked_list(a.token.clone()).await,
        (StatusCode::OK, json!([]))
    );
    cs.post(&c, gid, "thanks").await;
    assert_eq!(sc.frame().await["payload"]["text"], "thanks");
}

/// A `ChatInfo` sent over the sockets shows each participant their own `isArchived`.
#[tokio::test]
async fn chat_events_show_each_participant_their_own_archive_flag() {
    let cs = Cs::start().await;
    let a = cs.register("archivea1").await;
    let b = cs.register("archiveb1").await;
    let c = cs.register("archivec1").await;
    let group = cs.chat(&a.token, &[b.id, c.id], None).await;
    let gid = group["id"].as_str().unwrap();
    settings(&cs, &c.token, gid, json!({"isArchived": true})).await;
    let mut sa = cs.socket(&a.token, &format!("/{}", a.session)).await;
    let mut sc = cs.socket(&c.token, &format!("/{}", c.session)).await;

    let (s, v) = cs
        .call(
            Method::PUT,
            &format!("/chats/{gid}"),
            Some(&b.token),
            Some(json!({"title": "Archived by c"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    for (sock, archived) in [(&mut sa, false), (&mut sc, true)] {
        let f = sock.frame().await;
        assert_eq!(f["event"], "chatUpdate");
        assert_eq!(f["payload"]["title"], "Archived by c");
        assert_eq!(f["payload"]["isArchived"], archived, "{f}");
    }
}

/// Group blocks are the domain's: over XMPP (and the ConnectyCube REST API) a member blocked in a
/// group may not post and hears nothing of it live, and one who blocked the group hears nothing
/// of it either; lifting the block lets them hear it again.
#[tokio::test]
async fn group_blocks_hold_over_xmpp_and_rest() {
    use confab_testkit::xmpp::XmppClient;
    let cs = Cs::start().await;
    let o = cs.register("gbowner01").await;
    let m = cs.register("gbmuted01").await;
    let k = cs.register("gbblock01").await;
    let c = cs.register("gbcheck01").await;
    let group = cs.chat(&o.token, &[m.id, k.id, c.id], None).await;
    let gid = group["id"].as_str().unwrap().to_string();
    assert_eq!(
        cs.status(
            Method::PUT,
            &format!("/chats/{gid}/users/{}/block", m.id),
            &o.token
        )
        .await,
        StatusCode::OK
    );
    assert_eq!(
        cs.status(Method::PUT, &format!("/chats/{gid}/block"), &k.token)
            .await,
        StatusCode::OK
    );

    // Each member in the room over XMPP.
    let app = cs.ts.app_id;
    let mut clients = Vec::new();
    let mut dialog = String::new();
    for u in [&m, &k, &c] {
        let token = cs.ts.login(&u.username).await;
        if dialog.is_empty() {
            dialog = cs.first_dialog(&token, "?type=2").await;
        }
        let mut x = XmppClient::tcp(cs.ts.xmpp_addr()).await;
        x.login(u.id, app, &token).await;
        let room = format!("{app}_{dialog}@muc.localhost");
        x.send(&format!(
            "<presence id='j{}' to='{room}/{}'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>",
            u.id, u.id
        ))
        .await;
        x.until(|e| e.name == "presence" && e.attr("id") == Some(&format!("j{}", u.id)))
            .await;
        clients.push((token, x));
    }
    let room = format!("{app}_{dialog}@muc.localhost");
    let body_is = |text: &'static str| {
        move |e: &confab_xmpp::xml::Element| {
            e.name == "message" && e.child_named("body").is_some_and(|b| b.text() == text)
        }
    };

    // The owner posts here: only the member without a block hears it over XMPP.
    cs.post(&o, &gid, "hello all").await;
    clients[2].1.until(body_is("hello all")).await;
    for (_, x) in clients.iter_mut().take(2) {
        x.no_message_for(std::time::Duration::from_millis(300))
            .await;
    }

    // The blocked member may not post over XMPP or REST.
    clients[0]
        .1
        .send(&format!(
            "<message to='{room}' type='groupchat' id='gb1'><body>let me in</body></message>"
        ))
        .await;
    let err = clients[0].1.until(|e| e.attr("id") == Some("gb1")).await;
    assert_eq!(err.attr("type"), Some("error"), "{err:?}");
    assert!(err
        .child_named("error")
        .unwrap()
        .child_named("forbidden")
        .is_some());
    let (s, v) = cs
        .ts
        .call(
            Method::POST,
            "/chat/Message.json",
            Some(&clients[0].0),
            Some(json!({"chat_dialog_id": dialog, "message": "let me in"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    // Nor read its history there.
    let (s, v) = cs
        .ts
        .call(
            Method::GET,
            &format!("/chat/Message.json?chat_dialog_id={dialog}"),
            Some(&clients[0].0),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    clients[2]
        .1
        .no_message_for(std::time::Duration::from_millis(300))
        .await;

    // Unblocked, the blocker hears the group again.
    assert_eq!(
        cs.status(Method::PUT, &format!("/chats/{gid}/unblock"), &k.token)
            .await,
        StatusCode::OK
    );
    cs.post(&o, &gid, "welcome back").await;
    clients[1].1.until(body_is("welcome back")).await;
    clients[0]
        .1
        .no_message_for(std::time::Duration::from_millis(300))
        .await;
}
