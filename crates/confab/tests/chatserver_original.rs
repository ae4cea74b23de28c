//! The behaviours the original ChatServer's XCTest cases assert that the other `chatserver_*`
//! suites do not, over real HTTP and WebSocket against the real server. Each test names the
//! original case(s) it stands for; where this face deliberately differs from the original
//! (docs/chatserver.md), the test asserts this face's documented behaviour and says so. The
//! full mapping of the original's 70 cases is in docs/chatserver.md, "The original's tests".
mod chatserver_common;

use chatserver_common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Registers `username` with a chosen display name (`Cs::register` always uses "Test User").
async fn register_named(cs: &Cs, name: &str, username: &str) -> CsUser {
    let (s, v) = cs
        .call(
            Method::POST,
            "/users",
            None,
            Some(
                json!({"name": name, "username": username, "password": "password1",
                        "deviceInfo": device(1)}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    CsUser {
        id: v["info"]["id"].as_i64().unwrap(),
        username: username.into(),
        token: v["deviceSessions"][0]["accessToken"]
            .as_str()
            .unwrap()
            .into(),
        session: v["deviceSessions"][0]["id"].as_str().unwrap().into(),
    }
}

/// The session's socket at `/<sessionId>`, as the original's clients open it.
async fn socket(cs: &Cs, u: &CsUser) -> Socket {
    cs.socket(&u.token, &format!("/{}", u.session)).await
}

async fn get(cs: &Cs, token: &str, path: &str) -> (StatusCode, Value) {
    cs.call(Method::GET, path, Some(token), None).await
}

/// The ids of `v`'s objects (a list of users, for example), sorted.
fn ids(v: &Value) -> Vec<i64> {
    let mut ids: Vec<i64> = v
        .as_array()
        .unwrap_or_else(|| panic!("a list: {v}"))
        .iter()
        .map(|x| x["id"].as_i64().unwrap())
        .collect();
    ids.sort();
    ids
}

fn sorted(mut v: Vec<i64>) -> Vec<i64> {
    v.sort();
    v
}

/// The ids of the chats `GET /chats` lists for `token`.
async fn listed(cs: &Cs, token: &str) -> Vec<String> {
    let (s, v) = get(cs, token, "/chats").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

/// The texts of a chat's newest messages, newest first.
async fn texts(cs: &Cs, token: &str, chat: &str) -> Vec<String> {
    let (s, v) = get(cs, token, &format!("/chats/{chat}/messages")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v.as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// UserTests
// ---------------------------------------------------------------------------------------------

// UserTests.test_10_tryResetPasswordWithInvalidAccountKey: an empty account key is refused like a
// wrong one (403), and the password stays as it was.
#[tokio::test]
async fn reset_password_with_an_empty_account_key_is_refused() {
    let cs = Cs::start().await;
    let u = cs.register("emptykey1").await;
    let key = "abcdefghigklmnopqrstuvwxyz";
    let (s, v) = cs
        .call(
            Method::PUT,
            "/users/me/setAccountKey",
            Some(&u.token),
            Some(json!({"password": "password1", "accountKey": key})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_error(
        cs.call(
            Method::POST,
            "/users/resetPassword",
            None,
            Some(json!({"userId": u.id, "newPassword": "12345678", "accountKey": ""})),
        )
        .await,
        StatusCode::FORBIDDEN,
        "Invalid user or account key.",
    );
    assert_eq!(
        cs.login("emptykey1", "password1", device(2)).await.0,
        StatusCode::OK
    );
    assert_eq!(
        cs.login("emptykey1", "12345678", device(2)).await.0,
        StatusCode::UNAUTHORIZED
    );
}

// UserTests.test_17_searchUsers: by id, by part of a name ("em" finds "Demo 1" and "Demo 2") or of
// a username ("se" finds both "Name" users). Deliberate difference (docs/chatserver.md): the lookup
// needs a token.
#[tokio::test]
async fn search_by_id_by_part_of_a_name_or_of_a_username() {
    let cs = Cs::start().await;
    let n1 = register_named(&cs, "Name 1", "user001").await;
    let n2 = register_named(&cs, "Name 2", "user002").await;
    let d1 = register_named(&cs, "Demo 1", "test001").await;
    let d2 = register_named(&cs, "Demo 2", "test002").await;
    let search = |q: &str| {
        let (cs, path, token) = (&cs, format!("/users?s={q}"), n1.token.clone());
        async move {
            let (s, v) = get(cs, &token, &path).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            v
        }
    };
    // By id: exactly that user.
    let v = search(&n2.id.to_string()).await;
    assert_eq!(ids(&v), [n2.id]);
    assert_eq!(v[0]["username"], "user002");
    // By part of the name.
    let v = search("em").await;
    let mut found: Vec<(i64, String)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["id"].as_i64().unwrap(),
                u["name"].as_str().unwrap().into(),
            )
        })
        .collect();
    found.sort();
    assert_eq!(
        found,
        [(d1.id, "Demo 1".to_string()), (d2.id, "Demo 2".to_string())]
    );
    // By part of the username.
    let mut found = ids(&search("se").await);
    found.sort();
    assert_eq!(found, [n1.id, n2.id]);
    assert_eq!(ids(&search("user001").await), [n1.id]);
    assert_eq!(ids(&search("test002").await), [d2.id]);
}

// UserTests.test_17_searchUsers (its last assertions): the users a search finds carry their
// `photos` — none for "Demo 1", one for "Demo 2".
#[tokio::test]
async fn search_results_carry_the_users_photos() {
    let cs = Cs::start().await;
    let d1 = register_named(&cs, "Demo 1", "test001").await;
    let d2 = register_named(&cs, "Demo 2", "test002").await;
    let (s, v) = cs
        .call(
            Method::POST,
            "/users/me/photos",
            Some(&d2.token),
            Some(json!({"photo": {"id": uuid(17), "fileType": "png", "fileSize": 1}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = get(&cs, &d1.token, "/users?s=em").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let photos = |id: i64| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|u| u["id"] == json!(id))
            .unwrap_or_else(|| panic!("{id} in {v}"))["photos"]
            .as_array()
            .map(Vec::len)
    };
    assert_eq!(photos(d1.id), Some(0), "{v}");
    assert_eq!(photos(d2.id), Some(1), "{v}");
}

// UserTests.test_18_addAndDeletePhotoOfUser: a photo added after its file and preview were
// uploaded lists once; deleting it removes both `<id>.<type>` and `<id>-preview.<type>`.
#[tokio::test]
async fn deleting_a_photo_removes_its_file_and_preview() {
    let cs = Cs::start().await;
    let u = cs.register("photoprev").await;
    let id = uuid(18);
    cs.upload_picture(&u.token, &id).await;
    assert_eq!(cs.picture_files(&id).await, [StatusCode::OK; 2]);
    let (s, v) = cs
        .call(
            Method::POST,
            "/users/me/photos",
            Some(&u.token),
            Some(json!({"photo": {"id": id, "fileType": "png", "fileSize": 1}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["photos"].as_array().unwrap().len(), 1);
    assert_eq!(v["photos"][0]["id"], json!(id));

    assert_eq!(
        cs.status(Method::DELETE, &format!("/users/me/photos/{id}"), &u.token)
            .await,
        StatusCode::OK
    );
    assert_eq!(cs.picture_files(&id).await, [StatusCode::NOT_FOUND; 2]);
}

// ---------------------------------------------------------------------------------------------
// ChatTests: creating and changing chats
// ---------------------------------------------------------------------------------------------

// ChatTests.test_06_createPersonalChat, test_08_tryCreatePersonalChatDuplicate and
// test_09_createPersonalChatWhenParticipantsKeyDuplicateExists: with a group of the same two users
// already there, asking for a personal chat (`isPersonal: true`) makes a new one of those two
// users, and asking again finds it.
#[tokio::test]
async fn a_personal_chat_is_kept_apart_from_a_group_of_the_same_users() {
    let cs = Cs::start().await;
    let a = cs.register("pairusera").await;
    let b = cs.register("pairuserb").await;
    let group = cs.chat(&a.token, &[b.id], Some(false)).await;
    assert_eq!(group["isPersonal"], false);

    let personal = cs.chat(&a.token, &[b.id], Some(true)).await;
    assert_ne!(personal["id"], group["id"]);
    assert_eq!(personal["isPersonal"], true);
    assert_eq!(ids(&personal["allUsers"]), sorted(vec![a.id, b.id]));

    let again = cs.chat(&a.token, &[b.id], Some(true)).await;
    assert_eq!(again["id"], personal["id"]);
    assert_eq!(again["isPersonal"], true);
    assert_eq!(ids(&again["allUsers"]), sorted(vec![a.id, b.id]));
    assert_eq!(listed(&cs, &a.token).await.len(), 2);
}

// ChatTests.test_13_updateChat: the new title is answered and every participant is told
// `chatUpdate` — the one who renamed it too (the original sent 3 notifications for 3 users).
#[tokio::test]
async fn renaming_a_group_tells_every_participant_the_renamer_too() {
    let cs = Cs::start().await;
    let a = cs.register("renamera1").await;
    let b = cs.register("renamerb1").await;
    let c = cs.register("renamerc1").await;
    let group = cs.chat(&a.token, &[b.id, c.id], None).await;
    let gid = group["id"].as_str().unwrap();
    let mut sockets = [
        socket(&cs, &a).await,
        socket(&cs, &b).await,
        socket(&cs, &c).await,
    ];
    let (s, v) = cs
        .call(
            Method::PUT,
            &format!("/chats/{gid}"),
            Some(&a.token),
            Some(json!({"title": "Some"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!((&v["id"], &v["title"]), (&group["id"], &json!("Some")));
    for sock in &mut sockets {
        let f = sock.frame().await;
        assert_eq!(f["event"], "chatUpdate");
        assert_eq!(f["source"], json!(a.id.to_string()));
        assert_eq!(f["payload"]["title"], "Some");
        sock.quiet(200).await;
    }
}

// ChatTests.test_16_tryUpdatePersonalChatByBlockedUser: a personal chat cannot be renamed by the
// side that is blocked. Deliberate difference: this face blocks users inside groups only (a
// personal chat is `400` for that); the block of a personal chat is the other side's
// `PUT /chats/<uuid>/block`, so that is the block set up here. Neither side gets a `200`.
#[tokio::test]
async fn a_blocked_personal_chat_cannot_be_renamed() {
    let cs = Cs::start().await;
    let a = cs.register("pblocka01").await;
    let b = cs.register("pblockb01").await;
    let personal = cs.chat(&a.token, &[b.id], None).await;
    let pid = personal["id"].as_str().unwrap();
    assert_eq!(
        cs.status(Method::PUT, &format!("/chats/{pid}/block"), &b.token)
            .await,
        StatusCode::OK
    );
    for who in [&a, &b] {
        assert_error(
            cs.call(
                Method::PUT,
                &format!("/chats/{pid}"),
                Some(&who.token),
                Some(json!({"title": "Some"})),
            )
            .await,
            StatusCode::BAD_REQUEST,
            "You can't update personal chat.",
        );
    }
    let (_, v) = get(&cs, &a.token, &format!("/chats/{pid}")).await;
    assert!(v.get("title").is_none(), "{v}");
}

// ChatTests.test_18_addAndDeleteChatImage: an image added after its file and preview were uploaded
// lists once; deleting it removes both `<id>.<type>` and `<id>-preview.<type>`.
#[tokio::test]
async fn deleting_a_chat_image_removes_its_file_and_preview() {
    let cs = Cs::start().await;
    let a = cs.register("chatimga1").await;
    let b = cs.register("chatimgb1").await;
    let group = cs.chat(&a.token, &[b.id], Some(false)).await;
    let gid = group["id"].as_str().unwrap();
    let id = uuid(180);
    cs.upload_picture(&a.token, &id).await;
    let (s, v) = cs
        .call(
            Method::POST,
            &format!("/chats/{gid}/images"),
            Some(&a.token),
            Some(json!({"image": {"id": id, "fileType": "png", "fileSize": 1}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["images"].as_array().unwrap().len(), 1);
    assert_eq!(v["images"][0]["id"], json!(id));
    assert_eq!(cs.picture_files(&id).await, [StatusCode::OK; 2]);

    assert_eq!(
        cs.status(
            Method::DELETE,
            &format!("/chats/{gid}/images/{id}"),
            &a.token
        )
        .await,
        StatusCode::OK
    );
    assert_eq!(cs.picture_files(&id).await, [StatusCode::NOT_FOUND; 2]);
}

// ChatTests.test_19_addUsersToChat: of the users asked for, only those not yet there are added
// (`addedUsers`), the chat then has all of them, and `addedUsers` reaches everyone in it
// afterwards — the adder and the new user included (the original sent 4 notifications for 4).
#[tokio::test]
async fn adding_users_adds_only_new_ones_and_tells_all_four() {
    let cs = Cs::start().await;
    let a = cs.register("addersa01").await;
    let b = cs.register("addersb01").await;
    let c = cs.register("addersc01").await;
    let d = cs.register("addersd01").await;
    let group = cs.chat(&a.token, &[b.id, c.id], None).await;
    let gid = group["id"].as_str().unwrap();
    let mut sockets = [
        socket(&cs, &a).await,
        socket(&cs, &b).await,
        socket(&cs, &c).await,
        socket(&cs, &d).await,
    ];
    let (s, v) = cs
        .call(
            Method::POST,
            &format!("/chats/{gid}/users"),
            Some(&a.token),
            Some(json!({"users": [c.id, d.id]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["id"], group["id"]);
    assert_eq!(ids(&v["addedUsers"]), [d.id]);
    let (_, v) = get(&cs, &a.token, &format!("/chats/{gid}")).await;
    assert_eq!(ids(&v["allUsers"]), sorted(vec![a.id, b.id, c.id, d.id]));
    for sock in &mut sockets {
        let f = sock.frame().await;
        assert_eq!(f["event"], "addedUsers");
        assert_eq!(f["source"], json!(a.id.to_string()));
        assert_eq!(ids(&f["payload"]["addedUsers"]), [d.id]);
        sock.quiet(200).await;
    }
}

// ChatTests.test_21_removeUsersFromChat: of the users asked for, only participants are removed
// (`removedUsers`), and `removedUsers` reaches those left — the remover included — but not the
// removed one (the original sent 2 notifications for the 2 left).
#[tokio::test]
async fn removing_users_removes_only_participants_and_tells_those_left() {
    let cs = Cs::start().await;
    let a = cs.register("removera1").await;
    let b = cs.register("removerb1").await;
    let c = cs.register("removerc1").await;
    let d = cs.register("removerd1").await;
    let group = cs.chat(&a.token, &[b.id, c.id], None).await;
    let gid = group["id"].as_str().unwrap();
    let mut sa = socket(&cs, &a).await;
    let mut sb = socket(&cs, &b).await;
    let mut sc = socket(&cs, &c).await;
    let (s, v) = cs
        .call(
            Method::DELETE,
            &format!("/chats/{gid}/users"),
            Some(&a.token),
            Some(json!({"users": [c.id, d.id]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["id"], group["id"]);
    assert_eq!(ids(&v["removedUsers"]), [c.id]);
    let (_, v) = get(&cs, &a.token, &format!("/chats/{gid}")).await;
    assert_eq!(ids(&v["allUsers"]), sorted(vec![a.id, b.id]));
    for sock in [&mut sa, &mut sb] {
        let f = sock.frame().await;
        assert_eq!(f["event"], "removedUsers");
        assert_eq!(f["source"], json!(a.id.to_string()));
        assert_eq!(ids(&f["payload"]["removedUsers"]), [c.id]);
        sock.quiet(200).await;
    }
    sc.quiet(300).await;
}

// ---------------------------------------------------------------------------------------------
// ChatTests: messages
// ---------------------------------------------------------------------------------------------

// ChatTests.test_23_getChatMessagesPaginated: 8 messages and then one with an attachment; a page of
// 5 starts with the newest ("pic", with its attachment) and ends at "text 5"; the page before the
// last of those has the 4 older ones.
#[tokio::test]
async fn pages_carry_attachments_newest_first() {
    let cs = Cs::start().await;
    let a = cs.register("pagesa001").await;
    let b = cs.register("pagesb001").await;
    let chat = cs.chat(&a.token, &[b.id], Some(true)).await;
    let id = chat["id"].as_str().unwrap();
    for i in 1..=8 {
        cs.post(&a, id, &format!("text {i}")).await;
    }
    let (s, m) = cs
        .call(
            Method::POST,
            &format!("/chats/{id}/messages"),
            Some(&a.token),
            Some(json!({"localId": local_id(a.id), "text": "pic",
                        "attachment": {"fileType": "png", "fileSize": 1}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{m}");

    let (s, page1) = get(&cs, &b.token, &format!("/chats/{id}/messages?count=5")).await;
    assert_eq!(s, StatusCode::OK, "{page1}");
    let page1 = page1.as_array().unwrap();
    assert_eq!(page1.len(), 5);
    assert_eq!(page1[0]["text"], "pic");
    assert_eq!(page1[0]["attachments"].as_array().unwrap().len(), 1);
    assert_eq!(page1[0]["attachments"][0]["id"], m["attachments"][0]["id"]);
    assert_eq!(page1[4]["text"], "text 5");

    let before = page1[4]["id"].as_i64().unwrap();
    let (s, page2) = get(
        &cs,
        &b.token,
        &format!("/chats/{id}/messages?count=5&before={before}"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{page2}");
    let texts: Vec<&str> = page2
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["text 4", "text 3", "text 2", "text 1"]);
}

// ChatTests.test_26_postAndDeleteChatMessageWithAttachment: a message with only an attachment is
// told to both users; its files are not there until uploaded; the update with
// `fileExists`/`previewExists` tells both; deleting it answers `deletedAt` and the attachment and
// tells both. (That the delete also removes the files is the next test.)
#[tokio::test]
async fn an_attachment_is_posted_announced_and_deleted() {
    let cs = Cs::start().await;
    let a = cs.register("attdela01").await;
    let b = cs.register("attdelb01").await;
    let group = cs.chat(&a.token, &[b.id], Some(false)).await;
    let gid = group["id"].as_str().unwrap();
    let mut sa = socket(&cs, &a).await;
    let mut sb = socket(&cs, &b).await;

    let (s, m) = cs
        .call(
            Method::POST,
            &format!("/chats/{gid}/messages"),
            Some(&a.token),
            Some(json!({"localId": local_id(a.id),
                        "attachment": {"fileType": "png", "fileSize": 1}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{m}");
    let att = m["attachments"][0]["id"].as_str().unwrap().to_string();
    let n = m["id"].as_i64().unwrap();
    for sock in [&mut sa, &mut sb] {
        let f = sock.frame().await;
        assert_eq!(f["event"], "message");
        assert_eq!(f["payload"]["attachments"][0]["id"], json!(att));
    }
    assert_eq!(cs.picture_files(&att).await, [StatusCode::NOT_FOUND; 2]);

    cs.upload_picture(&a.token, &att).await;
    let path = format!("/chats/{gid}/messages/{n}");
    let (s, v) = cs
        .call(
            Method::PUT,
            &path,
            Some(&a.token),
            Some(json!({"fileExists": true, "previewExists": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["attachments"][0]["id"], json!(att));
    for sock in [&mut sa, &mut sb] {
        let f = sock.frame().await;
        assert_eq!(f["event"], "messageUpdate");
        assert_eq!(f["payload"]["attachments"][0]["id"], json!(att));
    }
    assert_eq!(cs.picture_files(&att).await, [StatusCode::OK; 2]);

    let (s, v) = cs.call(Method::DELETE, &path, Some(&a.token), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["deletedAt"].is_string(), "{v}");
    assert_eq!(v["attachments"][0]["id"], json!(att), "{v}");
    for sock in [&mut sa, &mut sb] {
        let f = sock.frame().await;
        assert_eq!(f["event"], "messageUpdate");
        assert!(f["payload"]["deletedAt"].is_number(), "{f}");
        sock.quiet(200).await;
    }
    assert!(texts(&cs, &b.token, gid).await.is_empty());
}

// ChatTests.test_26_postAndDeleteChatMessageWithAttachment (its last assertions): deleting a
// message removes its attachment's uploaded file and preview, as deleting a photo or a chat image
// removes theirs.
#[tokio::test]
async fn deleting_a_message_removes_its_attachments_files() {
    let cs = Cs::start().await;
    let a = cs.register("attfile01").await;
    let b = cs.register("attfile02").await;
    let group = cs.chat(&a.token, &[b.id], Some(false)).await;
    let gid = group["id"].as_str().unwrap();
    let (s, m) = cs
        .call(
            Method::POST,
            &format!("/chats/{gid}/messages"),
            Some(&a.token),
            Some(json!({"localId": local_id(a.id),
                        "attachment": {"fileType": "png", "fileSize": 1}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{m}");
    let att = m["attachments"][0]["id"].as_str().unwrap().to_string();
    cs.upload_picture(&a.token, &att).await;
    let (s, v) = cs
        .call(
            Method::DELETE,
            &format!("/chats/{gid}/messages/{}", m["id"]),
            Some(&a.token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        cs.picture_files(&att).await,
        [StatusCode::NOT_FOUND; 2],
        "removed with the message"
    );
}

// ChatTests.test_31_editMessageInChat: the edit answers the same message with the new text and an
// `editedAt` later than its `createdAt`, and both users are told `messageUpdate`.
#[tokio::test]
async fn an_edit_is_dated_after_the_message_and_told_to_both() {
    let cs = Cs::start().await;
    let a = cs.register("editdate1").await;
    let b = cs.register("editdate2").await;
    let chat = cs.chat(&a.token, &[b.id], Some(true)).await;
    let id = chat["id"].as_str().unwrap();
    let m = cs.post(&a, id, "text 1").await;
    let mut sa = socket(&cs, &a).await;
    let mut sb = socket(&cs, &b).await;
    // REST dates have whole seconds.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (s, v) = cs
        .call(
            Method::PUT,
            &format!("/chats/{id}/messages/{}", m["id"]),
            Some(&a.token),
            Some(json!({"text": "Hi"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["id"], m["id"]);
    assert_eq!(v["text"], "Hi");
    let (edited, created) = (
        v["editedAt"].as_str().unwrap(),
        v["createdAt"].as_str().unwrap(),
    );
    // Same ISO-8601 shape, so the strings order as the times do.
    assert_eq!(edited.len(), created.len());
    assert!(edited > created, "{edited} > {created}");
    for sock in [&mut sa, &mut sb] {
        let f = sock.frame().await;
        assert_eq!(f["event"], "messageUpdate");
        assert_eq!(f["payload"]["text"], "Hi");
        let (e, c) = (
            f["payload"]["editedAt"].as_f64().unwrap(),
            f["payload"]["createdAt"].as_f64().unwrap(),
        );
        assert!(e > c, "{f}");
        sock.quiet(200).await;
    }
}

// ChatTests.test_32_tryEditMessageInChatByBlockedUser and test_35_deleteMessageInChatByBlockedUser:
// a user blocked in the chat may not edit their message (403) but may still delete it (answered
// with empty text and `deletedAt`). Deliberate difference: this face blocks users inside groups
// only (the original's cases used a personal chat), so the block here is the owner's
// `PUT /chats/<uuid>/users/<id>/block` in a group.
#[tokio::test]
async fn a_blocked_user_cannot_edit_but_can_delete_their_message() {
    let cs = Cs::start().await;
    let a = cs.register("bedita001").await;
    let b = cs.register("beditb001").await;
    let c = cs.register("beditc001").await;
    let group = cs.chat(&a.token, &[b.id, c.id], None).await;
    let gid = group["id"].as_str().unwrap();
    let m = cs.post(&c, gid, "text 1").await;
    let path = format!("/chats/{gid}/messages/{}", m["id"]);
    assert_eq!(
        cs.status(
            Method::PUT,
            &format!("/chats/{gid}/users/{}/block", c.id),
            &a.token
        )
        .await,
        StatusCode::OK
    );

    let (s, v) = cs
        .call(
            Method::PUT,
            &path,
            Some(&c.token),
            Some(json!({"text": "Hi"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(texts(&cs, &a.token, gid).await, ["text 1"]);

    let (s, v) = cs.call(Method::DELETE, &path, Some(&c.token), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["id"], m["id"]);
    assert_eq!(v["text"], "");
    assert!(v["deletedAt"].is_string(), "{v}");
    assert!(texts(&cs, &a.token, gid).await.is_empty());
}

// ChatTests.test_34_deleteMessageInChat: a delete answers the same message with empty text and
// `deletedAt`, and the deleted message can no longer be edited. Deliberate difference: a deleted
// message is gone from both faces' histories here (the original kept the row and refused the edit
// with `400 "You can't edit deleted message."`), so the edit finds no message: `404`.
#[tokio::test]
async fn a_deleted_message_cannot_be_edited() {
    let cs = Cs::start().await;
    let a = cs.register("delmsga01").await;
    let b = cs.register("delmsgb01").await;
    let chat = cs.chat(&a.token, &[b.id], Some(true)).await;
    let id = chat["id"].as_str().unwrap();
    let m = cs.post(&a, id, "text 1").await;
    let path = format!("/chats/{id}/messages/{}", m["id"]);
    let (s, v) = cs.call(Method::DELETE, &path, Some(&a.token), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["id"], m["id"]);
    assert_eq!(v["text"], "");
    assert!(v["deletedAt"].is_string(), "{v}");

    let (s, v) = cs
        .call(
            Method::PUT,
            &path,
            Some(&a.token),
            Some(json!({"text": "Hi"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(v["error"], true);
    assert!(texts(&cs, &a.token, id).await.is_empty());
    assert!(texts(&cs, &b.token, id).await.is_empty());
}

// ---------------------------------------------------------------------------------------------
// ChatTests: deleting and clearing chats
// ---------------------------------------------------------------------------------------------

// ChatTests.test_38_tryDeleteChatNotOwningIt: a participant who is not the owner cannot delete a
// group (403), nobody is told anything, and the chat stays.
#[tokio::test]
async fn a_refused_group_delete_tells_nobody() {
    let cs = Cs::start().await;
    let a = cs.register("nodela001").await;
    let b = cs.register("nodelb001").await;
    // b owns it.
    let group = cs.chat(&b.token, &[a.id], Some(false)).await;
    let gid = group["id"].as_str().unwrap();
    let mut sa = socket(&cs, &a).await;
    let mut sb = socket(&cs, &b).await;
    assert_error(
        cs.call(
            Method::DELETE,
            &format!("/chats/{gid}"),
            Some(&a.token),
            None,
        )
        .await,
        StatusCode::FORBIDDEN,
        "You can't delete this chat.",
    );
    sa.quiet(300).await;
    sb.quiet(100).await;
    for t in [&a.token, &b.token] {
        assert_eq!(listed(&cs, t).await, [gid]);
    }
}

// ChatTests.test_40_deletePersonalChatNotOwningIt and test_41_deletePersonalChatByBlockedUser:
// either user of a personal chat may delete it, also the one who did not create it and also the
// blocked side; it then leaves their list. Deliberate difference: deleting a personal chat only
// removes it from the caller's list (the original deleted its messages for both and told both
// `chatDeleted`): the other user keeps it, with its messages, and hears nothing. The block is the
// other side's `PUT /chats/<uuid>/block` (this face has no user blocks in personal chats).
#[tokio::test]
async fn either_side_of_a_personal_chat_deletes_it_for_themselves_even_when_blocked() {
    let cs = Cs::start().await;
    let a = cs.register("pdela0001").await;
    let b = cs.register("pdelb0001").await;
    let c = cs.register("pdelc0001").await;
    let mut sb = socket(&cs, &b).await;
    let mut sc = socket(&cs, &c).await;

    // Not the owner: b made the chat, a deletes it.
    let chat = cs.chat(&b.token, &[a.id], Some(true)).await;
    let pid = chat["id"].as_str().unwrap().to_string();
    cs.post(&b, &pid, "text 1").await;
    assert_eq!(sb.frame().await["event"], "message");
    assert_eq!(
        cs.status(Method::DELETE, &format!("/chats/{pid}"), &a.token)
            .await,
        StatusCode::OK
    );
    assert!(listed(&cs, &a.token).await.is_empty());
    assert_eq!(listed(&cs, &b.token).await, [pid.as_str()]);
    assert_eq!(texts(&cs, &b.token, &pid).await, ["text 1"]);
    sb.quiet(300).await;

    // Blocked: c made the chat and blocked it, a deletes it.
    let chat = cs.chat(&c.token, &[a.id], Some(true)).await;
    let cid = chat["id"].as_str().unwrap().to_string();
    cs.post(&c, &cid, "text 1").await;
    assert_eq!(sc.frame().await["event"], "message");
    assert_eq!(
        cs.status(Method::PUT, &format!("/chats/{cid}/block"), &c.token)
            .await,
        StatusCode::OK
    );
    assert_eq!(
        cs.status(Method::DELETE, &format!("/chats/{cid}"), &a.token)
            .await,
        StatusCode::OK
    );
    assert!(listed(&cs, &a.token).await.is_empty());
    assert_eq!(listed(&cs, &c.token).await, [cid.as_str()]);
    assert_eq!(texts(&cs, &c.token, &cid).await, ["text 1"]);
    sc.quiet(300).await;
}

// ChatTests.test_44_clearChat: the owner clears a group: its messages are gone, the chat stays in
// both users' lists, and both — the owner too — are told `chatCleared`.
#[tokio::test]
async fn clearing_a_group_keeps_it_and_tells_both() {
    let cs = Cs::start().await;
    let a = cs.register("gclear001").await;
    let b = cs.register("gclear002").await;
    let group = cs.chat(&a.token, &[b.id], Some(false)).await;
    let gid = group["id"].as_str().unwrap();
    cs.post(&b, gid, "text 1").await;
    let mut sa = socket(&cs, &a).await;
    let mut sb = socket(&cs, &b).await;
    assert_eq!(
        cs.status(Method::DELETE, &format!("/chats/{gid}/messages"), &a.token)
            .await,
        StatusCode::OK
    );
    for sock in [&mut sa, &mut sb] {
        let f = sock.frame().await;
        assert_eq!(f["event"], "chatCleared");
        assert_eq!(f["source"], json!(a.id.to_string()));
        sock.quiet(200).await;
    }
    for t in [&a.token, &b.token] {
        assert_eq!(listed(&cs, t).await, [gid]);
        assert!(texts(&cs, t, gid).await.is_empty());
    }
}

// ChatTests.test_46_clearPersonalChat: a user who did not create a personal chat may clear it; the
// chat stays in their list with no messages, and they are told `chatCleared`. Deliberate
// difference: only the caller's history is cleared (the original deleted both sides' and told
// both): the other user keeps the messages and hears nothing.
#[tokio::test]
async fn clearing_a_personal_chat_clears_the_callers_history_only() {
    let cs = Cs::start().await;
    let a = cs.register("pclear001").await;
    let b = cs.register("pclear002").await;
    // a made it; b clears it.
    let chat = cs.chat(&a.token, &[b.id], Some(true)).await;
    let pid = chat["id"].as_str().unwrap();
    cs.post(&a, pid, "text 1").await;
    let mut sa = socket(&cs, &a).await;
    let mut sb = socket(&cs, &b).await;
    assert_eq!(
        cs.status(Method::DELETE, &format!("/chats/{pid}/messages"), &b.token)
            .await,
        StatusCode::OK
    );
    let f = sb.frame().await;
    assert_eq!(f["event"], "chatCleared");
    sb.quiet(200).await;
    sa.quiet(300).await;
    assert_eq!(listed(&cs, &b.token).await, [pid]);
    assert!(texts(&cs, &b.token, pid).await.is_empty());
    assert_eq!(listed(&cs, &a.token).await, [pid]);
    assert_eq!(texts(&cs, &a.token, pid).await, ["text 1"]);
}
