//! The ChatServer face's messages (spec §5) over real HTTP: every check of posting in the spec's
//! order, paging newest first with `count`/`before`, and one stored message on both faces.
mod chatserver_common;

use chatserver_common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const MALFORMED: &str = "Malformed message data.";
const TEXT_LENGTH: &str = "Message text should be between 1 and 2048 characters long.";

async fn post_raw(cs: &Cs, token: &str, chat: &str, body: Value) -> (StatusCode, Value) {
    cs.call(
        Method::POST,
        &format!("/chats/{chat}/messages"),
        Some(token),
        Some(body),
    )
    .await
}

async fn page(cs: &Cs, token: &str, chat: &str, query: &str) -> Vec<Value> {
    let (s, v) = cs
        .call(
            Method::GET,
            &format!("/chats/{chat}/messages{query}"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v.as_array().unwrap().clone()
}

#[tokio::test]
async fn posting_checks_in_the_spec_order() {
    let cs = Cs::start().await;
    let a = cs.register("postera1").await;
    let b = cs.register("posterb1").await;
    let outsider = cs.register("postout1").await;
    let chat = cs.chat(&a.token, &[b.id], None).await;
    let id = chat["id"].as_str().unwrap();
    let lid = local_id(a.id);

    // 1. Empty beats everything else, even an unknown chat.
    assert_error(
        post_raw(
            &cs,
            &a.token,
            "E621E1F8-C36C-495A-93FC-0C247A3E6E5F",
            json!({"localId": "x"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "Message is empty.",
    );
    // 2. Unknown chat, then someone else's.
    assert_error(
        post_raw(
            &cs,
            &a.token,
            "E621E1F8-C36C-495A-93FC-0C247A3E6E5F",
            json!({"text": "hi"}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "Not Found",
    );
    assert_error(
        post_raw(&cs, &outsider.token, id, json!({"text": "hi"})).await,
        StatusCode::FORBIDDEN,
        "You can't post into this chat.",
    );
    // 4. A local id shorter than a UUID (or none) comes before the text check.
    for body in [
        json!({"text": ""}),
        json!({"localId": "short", "text": ""}),
        json!({"localId": "E621E1F8-C36C-495A-93FC-0C247A3E6E5", "text": "hi"}),
    ] {
        assert_error(
            post_raw(&cs, &a.token, id, body).await,
            StatusCode::BAD_REQUEST,
            MALFORMED,
        );
    }
    // 5. An attachment needs a type and a size.
    for att in [
        json!({"fileType": "png", "fileSize": 0}),
        json!({"fileType": "", "fileSize": 10}),
    ] {
        assert_error(
            post_raw(
                &cs,
                &a.token,
                id,
                json!({"localId": lid, "text": "", "attachment": att}),
            )
            .await,
            StatusCode::BAD_REQUEST,
            MALFORMED,
        );
    }
    // 6. 1–2048 characters, counted as characters: 2048 two-byte ones pass, 2049 do not.
    assert_error(
        post_raw(&cs, &a.token, id, json!({"localId": lid, "text": ""})).await,
        StatusCode::BAD_REQUEST,
        TEXT_LENGTH,
    );
    assert_error(
        post_raw(
            &cs,
            &a.token,
            id,
            json!({"localId": lid, "text": "é".repeat(2049)}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        TEXT_LENGTH,
    );
    // Malformed JSON and no token.
    let (s, v) = cs
        .call_raw(
            Method::POST,
            &format!("/chats/{id}/messages"),
            Some(&a.token),
            "{\"text\":",
        )
        .await;
    assert_eq!((s, &v["error"]), (StatusCode::BAD_REQUEST, &json!(true)));
    assert_error(
        cs.call(
            Method::POST,
            &format!("/chats/{id}/messages"),
            None,
            Some(json!({"text": "x"})),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "Unauthorized",
    );
    assert!(
        page(&cs, &a.token, id, "").await.is_empty(),
        "nothing stored"
    );

    let (s, m) = post_raw(
        &cs,
        &a.token,
        id,
        json!({"localId": lid, "text": "é".repeat(2048)}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{m}");
    assert_eq!(m["chatId"], json!(id));
    assert_eq!(m["authorId"], json!(a.id));
    assert_eq!(m["localId"], json!(lid));
    assert_eq!(m["isVisible"], json!(true));
    assert!(m["id"].is_i64());
    assert!(m["createdAt"].as_str().unwrap().ends_with('Z'));

    // An attachment: named by the server, with the default preview size.
    let (s, m) = post_raw(
        &cs,
        &a.token,
        id,
        json!({"localId": lid, "attachment": {"id": "client-id", "fileType": "png", "fileSize": 1000}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{m}");
    let att = &m["attachments"][0];
    assert_eq!(att["fileType"], "png");
    assert_eq!(att["fileSize"], 1000);
    assert_eq!(
        (att["previewWidth"].as_i64(), att["previewHeight"].as_i64()),
        (Some(300), Some(200))
    );
    assert_ne!(att["id"], "client-id");
    assert_eq!(att["id"].as_str().unwrap().len(), 36);
}

#[tokio::test]
async fn paging_is_newest_first_with_count_and_before() {
    let cs = Cs::start().await;
    let a = cs.register("pagera1").await;
    let b = cs.register("pagerb1").await;
    let c = cs.register("pagerc1").await;
    let outsider = cs.register("pageout1").await;
    let chat = cs.chat(&a.token, &[b.id, c.id], None).await;
    let id = chat["id"].as_str().unwrap();
    let mut posted = Vec::new();
    for i in 0..60 {
        let who = if i % 2 == 0 { &a } else { &b };
        posted.push(
            cs.post(who, id, &format!("m{i}")).await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let texts = |v: &[Value]| -> Vec<String> {
        v.iter()
            .map(|m| m["text"].as_str().unwrap().to_string())
            .collect()
    };
    // Default page: 50, newest first.
    let first = page(&cs, &c.token, id, "").await;
    assert_eq!(first.len(), 50);
    assert_eq!(first[0]["text"], "m59");
    assert_eq!(first[49]["text"], "m10");
    let ids: Vec<i64> = first.iter().map(|m| m["id"].as_i64().unwrap()).collect();
    assert_eq!(ids[0], posted[59], "the ids the posts answered with");
    // count and before.
    let p = page(&cs, &c.token, id, "?count=5").await;
    assert_eq!(texts(&p), ["m59", "m58", "m57", "m56", "m55"]);
    let before = p[4]["id"].as_i64().unwrap();
    let p = page(&cs, &c.token, id, &format!("?count=3&before={before}")).await;
    assert_eq!(texts(&p), ["m54", "m53", "m52"]);
    let p = page(&cs, &c.token, id, &format!("?before={}", posted[2])).await;
    assert_eq!(texts(&p), ["m1", "m0"]);
    assert!(page(&cs, &c.token, id, &format!("?before={}", posted[0]))
        .await
        .is_empty());
    // The chat's lastMessage follows.
    let (_, v) = cs
        .call(Method::GET, &format!("/chats/{id}"), Some(&c.token), None)
        .await;
    assert_eq!(v["lastMessage"]["text"], "m59");
    assert_eq!(v["lastMessage"]["id"], json!(posted[59]));

    // Bad input.
    assert_eq!(
        cs.status(
            Method::GET,
            &format!("/chats/{id}/messages?before=999999"),
            &c.token
        )
        .await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        cs.status(
            Method::GET,
            &format!("/chats/{id}/messages?count=x"),
            &c.token
        )
        .await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        cs.status(
            Method::GET,
            &format!("/chats/{id}/messages"),
            &outsider.token
        )
        .await,
        StatusCode::FORBIDDEN
    );
    let (s, _) = cs
        .call(Method::GET, &format!("/chats/{id}/messages"), None, None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn one_message_on_both_faces() {
    let cs = Cs::start().await;
    let a = cs.register("crossa01").await;
    let b = cs.register("crossb01").await;
    let chat = cs.chat(&a.token, &[b.id], None).await;
    let id = chat["id"].as_str().unwrap();
    cs.post(&a, id, "from chatserver").await;

    // The ConnectyCube face lists it in the private dialog of the two users, once.
    let token = cs.ts.login("crossb01").await;
    let (s, dialogs) = cs
        .ts
        .call(Method::GET, "/chat/Dialog.json", Some(&token), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let dialog = &dialogs["items"][0];
    assert_eq!(dialog["type"], 3);
    assert_eq!(dialog["last_message"], "from chatserver");
    assert_eq!(dialog["unread_messages_count"], 1);
    let dialog_id = dialog["_id"].as_str().unwrap();
    let (s, v) = cs
        .ts
        .call(
            Method::GET,
            &format!("/chat/Message.json?chat_dialog_id={dialog_id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["message"], "from chatserver");
    assert_eq!(items[0]["sender_id"], json!(a.id));

    // And what the SDK side stores shows here.
    let (s, v) = cs
        .ts
        .call(
            Method::POST,
            "/chat/Message.json",
            Some(&token),
            Some(json!({"chat_dialog_id": dialog_id, "message": "from the sdk"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let p = page(&cs, &a.token, id, "").await;
    let texts: Vec<&str> = p.iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["from the sdk", "from chatserver"]);
    assert_eq!(p[0]["authorId"], json!(b.id));
    assert!(p[0]["id"].as_i64().unwrap() > p[1]["id"].as_i64().unwrap());
}

#[tokio::test]
async fn sdk_users_get_it_live_over_xmpp() {
    use confab_testkit::xmpp::{Transport, XmppClient};
    let cs = Cs::start().await;
    let a = cs.register("xmppa001").await;
    let b = cs.register("xmppb001").await;
    let c = cs.register("xmppc001").await;
    let personal = cs.chat(&a.token, &[b.id], None).await;
    let group = cs.chat(&a.token, &[b.id, c.id], None).await;
    // b is an SDK user: XMPP with the same password.
    let mut x = XmppClient::over(&cs.ts, Transport::Tcp).await;
    x.login(b.id, cs.ts.app_id, "password1").await;
    x.send("<presence/>").await;

    let m = cs
        .post(&a, personal["id"].as_str().unwrap(), "to the sdk")
        .await;
    let got = x.until(|e| e.name == "message").await;
    assert_eq!(got.attr("type"), Some("chat"), "{}", got.to_xml());
    let body = got.child_named("body").map(|b| b.text());
    assert_eq!(body.as_deref(), Some("to the sdk"));
    let extra = got.child_named("extraParams").expect("extraParams");
    assert!(extra.child_named("dialog_id").is_some(), "{}", got.to_xml());
    assert!(m["id"].is_i64());

    // A group message reaches the group's room occupants once they joined; stored either way.
    cs.post(&a, group["id"].as_str().unwrap(), "to the group")
        .await;
    let token = cs.ts.login("xmppb001").await;
    let (_, dialogs) = cs
        .ts
        .call(Method::GET, "/chat/Dialog.json", Some(&token), None)
        .await;
    let g = dialogs["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["type"] == 2)
        .unwrap()
        .clone();
    assert_eq!(g["last_message"], "to the group");
}

#[tokio::test]
async fn edit_read_and_delete_on_both_faces() {
    let cs = Cs::start().await;
    let a = cs.register("editora1").await;
    let b = cs.register("editorb1").await;
    let chat = cs.chat(&a.token, &[b.id], None).await;
    let other = cs.chat(&a.token, &[b.id], Some(false)).await;
    let id = chat["id"].as_str().unwrap();
    let m = cs.post(&a, id, "first").await;
    let n = m["id"].as_i64().unwrap();
    let in_other = cs
        .post(&a, other["id"].as_str().unwrap(), "elsewhere")
        .await["id"]
        .as_i64()
        .unwrap();
    let mut sa = cs.socket(&a.token, &format!("/{}", a.session)).await;
    let mut sb = cs.socket(&b.token, &format!("/{}", b.session)).await;
    let path = |n: i64| format!("/chats/{id}/messages/{n}");

    // Edit: the author only; fileExists/previewExists may be left out.
    assert_error(
        cs.call(
            Method::PUT,
            &path(n),
            Some(&b.token),
            Some(json!({"text": "mine now"})),
        )
        .await,
        StatusCode::FORBIDDEN,
        "Forbidden",
    );
    assert_error(
        cs.call(
            Method::PUT,
            &path(n),
            Some(&a.token),
            Some(json!({"text": ""})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        TEXT_LENGTH,
    );
    for unknown in [999_999, in_other] {
        assert_eq!(
            cs.call(
                Method::PUT,
                &path(unknown),
                Some(&a.token),
                Some(json!({"text": "x"}))
            )
            .await
            .0,
            StatusCode::NOT_FOUND
        );
    }
    let (s, v) = cs
        .call(
            Method::PUT,
            &path(n),
            Some(&a.token),
            Some(json!({"text": "edited"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["text"].as_str(), v["id"].as_i64()),
        (Some("edited"), Some(n))
    );
    assert!(v["editedAt"].is_string());
    for sock in [&mut sa, &mut sb] {
        let f = sock.frame().await;
        assert_eq!(f["event"], "messageUpdate");
        assert_eq!(f["payload"]["text"], "edited");
        assert!(f["payload"]["editedAt"].is_f64());
    }
    let token = cs.ts.login("editorb1").await;
    let (_, dialogs) = cs
        .ts
        .call(Method::GET, "/chat/Dialog.json", Some(&token), None)
        .await;
    let dialog_id = dialogs["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["type"] == 3)
        .unwrap()["_id"]
        .as_str()
        .unwrap()
        .to_string();
    let items = history(&cs, &token, &dialog_id).await;
    assert_eq!(items[0]["message"], "edited");
    assert!(!items[0]["read_ids"]
        .as_array()
        .unwrap()
        .contains(&json!(b.id)));

    // Read: once per user, told once.
    assert_eq!(
        cs.status(Method::PUT, &format!("{}/read", path(n)), &b.token)
            .await,
        StatusCode::OK
    );
    for sock in [&mut sa, &mut sb] {
        let f = sock.frame().await;
        assert_eq!(
            (f["event"].as_str(), f["source"].as_str()),
            (Some("messageUpdate"), Some(b.id.to_string().as_str()))
        );
    }
    assert_eq!(
        cs.status(Method::PUT, &format!("{}/read", path(n)), &b.token)
            .await,
        StatusCode::OK
    );
    sa.quiet(300).await;
    let items = history(&cs, &token, &dialog_id).await;
    assert!(items[0]["read_ids"]
        .as_array()
        .unwrap()
        .contains(&json!(b.id)));

    // Delete: the author only, for everyone on both faces.
    assert_error(
        cs.call(Method::DELETE, &path(n), Some(&b.token), None)
            .await,
        StatusCode::FORBIDDEN,
        "Forbidden",
    );
    let (s, v) = cs
        .call(Method::DELETE, &path(n), Some(&a.token), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["text"], "");
    assert!(v["deletedAt"].is_string());
    for sock in [&mut sa, &mut sb] {
        let f = sock.frame().await;
        assert_eq!(f["event"], "messageUpdate");
        assert_eq!(f["payload"]["text"], "");
        assert!(f["payload"]["deletedAt"].is_f64());
    }
    assert!(history(&cs, &token, &dialog_id).await.is_empty());
    let (_, list) = cs
        .call(
            Method::GET,
            &format!("/chats/{id}/messages"),
            Some(&a.token),
            None,
        )
        .await;
    assert_eq!(list, json!([]));

    // A delete for everyone on the ConnectyCube face reaches the sockets too.
    let (s, v) = cs
        .ts
        .call(
            Method::POST,
            "/chat/Message.json",
            Some(&token),
            Some(json!({"chat_dialog_id": dialog_id, "message": "sdk says", "send_to_chat": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let sdk_message = v["_id"].as_str().unwrap().to_string();
    let live = sa.frame().await;
    assert_eq!(live["payload"]["text"], "sdk says");
    sb.frame().await;
    let (s, _) = cs
        .ts
        .call(
            Method::DELETE,
            &format!("/chat/Message/{sdk_message}.json?force=1"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let f = sa.frame().await;
    assert_eq!(f["event"], "messageUpdate");
    assert_eq!(f["payload"]["id"], live["payload"]["id"]);
    assert_eq!(f["payload"]["text"], "");
}

/// The ConnectyCube history of a dialog, without marking it read.
async fn history(cs: &Cs, token: &str, dialog_id: &str) -> Vec<Value> {
    let (_, v) = cs
        .ts
        .call(
            Method::GET,
            &format!("/chat/Message.json?chat_dialog_id={dialog_id}&mark_as_read=0"),
            Some(token),
            None,
        )
        .await;
    v["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_blocked_personal_chat_refuses_the_other_side() {
    let cs = Cs::start().await;
    let a = cs.register("blockera1").await;
    let b = cs.register("blockerb1").await;
    let outsider = cs.register("blockero1").await;
    let chat = cs.chat(&a.token, &[b.id], None).await;
    cs.chat(&a.token, &[b.id], Some(false)).await;
    let id = chat["id"].as_str().unwrap();
    let block = |token: &str, chat: &str, what: &str| {
        let (token, path) = (token.to_string(), format!("/chats/{chat}/{what}"));
        let cs = &cs;
        async move { cs.call(Method::PUT, &path, Some(&token), None).await.0 }
    };
    assert_eq!(block(&a.token, id, "block").await, StatusCode::OK);
    assert_eq!(
        block(&a.token, id, "block").await,
        StatusCode::OK,
        "twice is once"
    );
    let is_blocked = |token: String| {
        let (cs, path) = (&cs, format!("/chats/{id}"));
        async move { cs.call(Method::GET, &path, Some(&token), None).await.1["isBlocked"].clone() }
    };
    assert_eq!(is_blocked(a.token.clone()).await, json!(true));
    assert_eq!(is_blocked(b.token.clone()).await, json!(false));
    let (_, list) = cs.call(Method::GET, "/chats", Some(&a.token), None).await;
    let listed: Vec<bool> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["isBlocked"].as_bool().unwrap())
        .collect();
    assert_eq!(
        listed.iter().filter(|b| **b).count(),
        1,
        "only the personal chat"
    );
    assert_eq!(
        block(&outsider.token, id, "block").await,
        StatusCode::FORBIDDEN
    );

    assert_error(
        post_raw(
            &cs,
            &b.token,
            id,
            json!({"localId": local_id(b.id), "text": "hello?"}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "This chat was blocked.",
    );
    // The blocker can still write, as in the original.
    cs.post(&a, id, "I can still talk").await;
    // The same block holds on the ConnectyCube face.
    let token = cs.ts.login("blockerb1").await;
    let (s, _) = cs
        .ts
        .call(
            Method::POST,
            "/chat/Message.json",
            Some(&token),
            Some(json!({"recipient_id": a.id, "message": "via sdk"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    assert_eq!(block(&a.token, id, "unblock").await, StatusCode::OK);
    assert_eq!(is_blocked(a.token.clone()).await, json!(false));
    cs.post(&b, id, "hello again").await;
    let p = page(&cs, &a.token, id, "").await;
    let texts: Vec<&str> = p.iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["hello again", "I can still talk"]);
}

#[tokio::test]
async fn clearing_a_chat() {
    let cs = Cs::start().await;
    let a = cs.register("cleara01").await;
    let b = cs.register("clearb01").await;
    let group = cs.chat(&a.token, &[b.id], Some(false)).await;
    let personal = cs.chat(&a.token, &[b.id], None).await;
    let (gid, pid) = (
        group["id"].as_str().unwrap(),
        personal["id"].as_str().unwrap(),
    );
    for i in 0..3 {
        cs.post(&a, gid, &format!("g{i}")).await;
        cs.post(&b, gid, &format!("h{i}")).await;
    }
    cs.post(&a, pid, "p from a").await;
    cs.post(&b, pid, "p from b").await;
    let mut sb = cs.socket(&b.token, &format!("/{}", b.session)).await;

    assert_error(
        cs.call(
            Method::DELETE,
            &format!("/chats/{gid}/messages"),
            Some(&b.token),
            None,
        )
        .await,
        StatusCode::FORBIDDEN,
        "You can't clear this chat.",
    );
    assert_eq!(
        page(&cs, &b.token, gid, "").await.len(),
        6,
        "nothing deleted"
    );
    assert_eq!(
        cs.status(Method::DELETE, &format!("/chats/{gid}/messages"), &a.token)
            .await,
        StatusCode::OK
    );
    let f = sb.frame().await;
    assert_eq!(
        (f["event"].as_str(), &f["payload"]),
        (Some("chatCleared"), &json!(null))
    );
    for t in [&a.token, &b.token] {
        assert!(page(&cs, t, gid, "").await.is_empty());
    }

    // Personal: the caller's history only.
    assert_eq!(
        cs.status(Method::DELETE, &format!("/chats/{pid}/messages"), &a.token)
            .await,
        StatusCode::OK
    );
    sb.quiet(300).await;
    assert!(page(&cs, &a.token, pid, "").await.is_empty());
    assert_eq!(page(&cs, &b.token, pid, "").await.len(), 2);
}

#[tokio::test]
async fn read_marks_name_the_readers_and_repeat_reads_change_nothing() {
    let cs = Cs::start().await;
    let a = cs.register("readera01").await;
    let b = cs.register("readerb01").await;
    let c = cs.register("readerc01").await;
    let outsider = cs.register("readerout").await;
    let chat = cs.chat(&a.token, &[b.id, c.id], None).await;
    let id = chat["id"].as_str().unwrap();
    let m = cs.post(&a, id, "read me").await;
    let n = m["id"].as_i64().unwrap();
    assert_eq!(page(&cs, &a.token, id, "").await[0]["readMarks"], json!([]));
    let mut sa = cs.socket(&a.token, &format!("/{}", a.session)).await;
    let mut sc = cs.socket(&c.token, &format!("/{}", c.session)).await;
    let read = format!("/chats/{id}/messages/{n}/read");

    // Someone outside, an unknown message, no token: refused, nothing marked, nothing told.
    assert_eq!(
        cs.status(Method::PUT, &read, &outsider.token).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        cs.status(
            Method::PUT,
            &format!("/chats/{id}/messages/999999/read"),
            &b.token
        )
        .await,
        StatusCode::NOT_FOUND
    );
    let (s, _) = cs.call(Method::PUT, &read, None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    sa.quiet(300).await;
    assert_eq!(page(&cs, &a.token, id, "").await[0]["readMarks"], json!([]));

    // The first read is told to everyone, with the new mark in it.
    let (s, v) = cs.call(Method::PUT, &read, Some(&b.token), None).await;
    assert_eq!((s, v), (StatusCode::OK, Value::Null));
    for sock in [&mut sa, &mut sc] {
        let f = sock.frame().await;
        assert_eq!(f["event"], "messageUpdate");
        assert_eq!(f["source"], json!(b.id.to_string()));
        assert_eq!(f["payload"]["id"], json!(n));
        let marks = f["payload"]["readMarks"].as_array().unwrap();
        assert_eq!(marks.len(), 1, "{f}");
        assert_eq!(marks[0]["user"]["id"], json!(b.id));
        assert!(marks[0]["createdAt"].is_number());
    }
    // A repeat read is ignored.
    assert_eq!(
        cs.status(Method::PUT, &read, &b.token).await,
        StatusCode::OK
    );
    sa.quiet(300).await;
    // The author's own read adds no mark.
    assert_eq!(
        cs.status(Method::PUT, &read, &a.token).await,
        StatusCode::OK
    );
    sc.quiet(300).await;

    assert_eq!(
        cs.status(Method::PUT, &read, &c.token).await,
        StatusCode::OK
    );
    let marks = page(&cs, &a.token, id, "").await[0]["readMarks"].clone();
    let readers: Vec<i64> = marks
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user"]["id"].as_i64().unwrap())
        .collect();
    let mut sorted = readers.clone();
    sorted.sort();
    assert_eq!(sorted, [b.id, c.id]);
    // A mark keeps its id.
    let again = page(&cs, &a.token, id, "").await[0]["readMarks"].clone();
    assert_eq!(marks, again);
    assert_eq!(marks[0]["id"].as_str().unwrap().len(), 36);
    assert_ne!(marks[0]["id"], marks[1]["id"]);
    assert!(marks[0]["createdAt"].is_string());
}

#[tokio::test]
async fn visibility_can_only_be_turned_on_by_the_author() {
    let cs = Cs::start().await;
    let a = cs.register("visiblea1").await;
    let b = cs.register("visibleb1").await;
    let chat = cs.chat(&a.token, &[b.id], None).await;
    let id = chat["id"].as_str().unwrap();
    let (s, m) = post_raw(
        &cs,
        &a.token,
        id,
        json!({"localId": local_id(a.id), "text": "hidden", "isVisible": false}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{m}");
    assert_eq!(m["isVisible"], false);
    let n = m["id"].as_i64().unwrap();
    let path = format!("/chats/{id}/messages/{n}");
    let mut sb = cs.socket(&b.token, &format!("/{}", b.session)).await;

    // Not by someone else, not through a malformed body.
    assert_error(
        cs.call(
            Method::PUT,
            &path,
            Some(&b.token),
            Some(json!({"isVisible": true})),
        )
        .await,
        StatusCode::FORBIDDEN,
        "Forbidden",
    );
    let (s, _) = cs
        .call(
            Method::PUT,
            &path,
            Some(&a.token),
            Some(json!({"isVisible": "yes"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    sb.quiet(300).await;
    assert_eq!(page(&cs, &b.token, id, "").await[0]["isVisible"], false);

    let (s, v) = cs
        .call(
            Method::PUT,
            &path,
            Some(&a.token),
            Some(json!({"isVisible": true, "fileExists": false, "previewExists": false})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (&v["isVisible"], &v["text"]),
        (&json!(true), &json!("hidden"))
    );
    let f = sb.frame().await;
    assert_eq!(f["event"], "messageUpdate");
    assert_eq!(f["payload"]["isVisible"], true);
    assert_eq!(page(&cs, &b.token, id, "").await[0]["isVisible"], true);

    // Once visible it stays so, as in the original.
    let (_, v) = cs
        .call(
            Method::PUT,
            &path,
            Some(&a.token),
            Some(json!({"isVisible": false})),
        )
        .await;
    assert_eq!(v["isVisible"], true);
    // A message posted visible is not changed by it either.
    let m2 = cs.post(&a, id, "plain").await;
    assert_eq!(m2["isVisible"], true);
}

#[tokio::test]
async fn an_attachment_is_uploaded_then_announced() {
    let cs = Cs::start().await;
    let a = cs.register("attacha01").await;
    let b = cs.register("attachb01").await;
    let chat = cs.chat(&a.token, &[b.id], None).await;
    let id = chat["id"].as_str().unwrap();
    let (s, m) = post_raw(
        &cs,
        &a.token,
        id,
        json!({"localId": local_id(a.id), "attachment": {"fileType": "png", "fileSize": 11}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{m}");
    let att = m["attachments"][0]["id"].as_str().unwrap().to_string();
    let n = m["id"].as_i64().unwrap();
    let mut sb = cs.socket(&b.token, &format!("/{}", b.session)).await;

    // The file and its preview, named after the attachment.
    let (s, v) = cs
        .upload(
            Some(&a.token),
            Some(&att),
            Some("png"),
            "hello world".into(),
        )
        .await;
    assert_eq!((s, v), (StatusCode::OK, json!(format!("{att}.png"))));
    let preview = format!("{att}-preview");
    let (s, v) = cs
        .upload(
            Some(&a.token),
            Some(&preview),
            Some("image/png"),
            "tiny".into(),
        )
        .await;
    assert_eq!((s, v), (StatusCode::OK, json!(format!("{preview}.png"))));

    // Announced by an update with the flags only.
    let (s, v) = cs
        .call(
            Method::PUT,
            &format!("/chats/{id}/messages/{n}"),
            Some(&a.token),
            Some(json!({"fileExists": true, "previewExists": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["attachments"][0]["id"], json!(att));
    let f = sb.frame().await;
    assert_eq!(f["event"], "messageUpdate");
    assert_eq!(f["payload"]["attachments"][0]["id"], json!(att));

    // Served at the root and under /files/, to anyone (as image views load them).
    let (s, body) = cs.fetch_file(&format!("/{att}.png")).await;
    assert_eq!((s, body.as_slice()), (StatusCode::OK, &b"hello world"[..]));
    let (s, body) = cs.fetch_file(&format!("/files/{preview}.png")).await;
    assert_eq!((s, body.as_slice()), (StatusCode::OK, &b"tiny"[..]));
    let resp = cs
        .ts
        .client
        .get(format!("{}/{att}.png", cs.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "image/png");
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    assert_eq!(
        cs.fetch_file("/nothing-here.png").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        cs.fetch_file("/files/nothing-here.png").await.0,
        StatusCode::NOT_FOUND
    );
}

/// A body of `total` bytes sent in 1 MiB chunks with no `Content-Length` (so only the streamed
/// count can refuse it); byte `i` is `i % 251`.
fn streamed(total: usize) -> reqwest::Body {
    const CHUNK: usize = 1024 * 1024;
    let chunks = (0..total.div_ceil(CHUNK)).map(move |k| {
        let start = k * CHUNK;
        let end = (start + CHUNK).min(total);
        let bytes: Vec<u8> = (start..end).map(|i| (i % 251) as u8).collect();
        Ok::<_, std::io::Error>(bytes)
    });
    reqwest::Body::wrap_stream(futures_util::stream::iter(chunks))
}

#[tokio::test]
async fn uploads_need_a_token_and_stream_up_to_50_mb() {
    let cs = Cs::start().await;
    let a = cs.register("uploada01").await;

    // No token, or a wrong one: 401 before anything is stored.
    for token in [None, Some("wrong")] {
        assert_error(
            cs.upload(token, Some("anon"), Some("png"), "x".into())
                .await,
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
        );
    }
    assert_eq!(cs.fetch_file("/anon.png").await.0, StatusCode::NOT_FOUND);

    // 49 MB, streamed, well past the JSON body limit.
    let size = 49_000_000;
    let (s, v) = cs
        .upload(
            Some(&a.token),
            Some("big"),
            Some("video/mp4"),
            streamed(size),
        )
        .await;
    assert_eq!((s, v), (StatusCode::OK, json!("big.mp4")));
    let (s, body) = cs.fetch_file("/big.mp4").await;
    assert_eq!((s, body.len()), (StatusCode::OK, size));
    assert!(body.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));

    // Over 50 MB: 413 whether announced or only counted, and nothing is kept.
    let blobs_dir = cs.ts.config.data_dir.join("blobs");
    let files_before = std::fs::read_dir(&blobs_dir).unwrap().count();
    assert_error(
        cs.upload(
            Some(&a.token),
            Some("huge"),
            Some("mp4"),
            streamed(50_000_001),
        )
        .await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "Your upload exeeded max limit of 50Mb.",
    );
    let announced = cs
        .ts
        .client
        .post(format!("{}/uploads", cs.base))
        .bearer_auth(&a.token)
        .header("File-Name", "huge")
        .header("content-type", "mp4")
        .header("content-length", "50000001")
        .body(vec![0u8; 10])
        .send()
        .await;
    // The server answers before reading the body; the client may see the answer or a reset.
    if let Ok(resp) = announced {
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
    assert_eq!(cs.fetch_file("/huge.mp4").await.0, StatusCode::NOT_FOUND);
    assert_eq!(std::fs::read_dir(&blobs_dir).unwrap().count(), files_before);
    let tmp = std::fs::read_dir(blobs_dir.join("tmp")).unwrap().count();
    assert_eq!(tmp, 0, "no partial upload is left behind");
    // The big file is still whole.
    assert_eq!(cs.fetch_file("/big.mp4").await.1.len(), size);
}

#[tokio::test]
async fn upload_names_are_checked_and_stay_their_uploaders() {
    let cs = Cs::start().await;
    let a = cs.register("namesa001").await;
    let b = cs.register("namesb001").await;
    for bad in ["../etc/passwd", "a/b", "..", "a.b", "a\\b", "x y", ""] {
        assert_error(
            cs.upload(Some(&a.token), Some(bad), Some("png"), "x".into())
                .await,
            StatusCode::BAD_REQUEST,
            "File name should consist of letters, digits, '-' and '_'.",
        );
    }
    assert_error(
        cs.upload(Some(&a.token), Some("notype"), None, "x".into())
            .await,
        StatusCode::BAD_REQUEST,
        "Could not upload without file type.",
    );
    for bad_type in ["image/../png", "a.b", "p n g"] {
        let (s, _) = cs
            .upload(Some(&a.token), Some("badtype"), Some(bad_type), "x".into())
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad_type}");
    }
    // Nothing was written outside (or inside) the upload area.
    let data = cs.ts.config.data_dir.clone();
    assert!(!data.join("etc").exists());
    assert_eq!(
        std::fs::read_dir(data.join("blobs")).unwrap().count(),
        1,
        "only tmp/"
    );

    // Without a name the server picks a UUID.
    let (s, v) = cs
        .upload(Some(&a.token), None, Some("image/jpeg"), "jpeg".into())
        .await;
    assert_eq!(s, StatusCode::OK);
    let name = v.as_str().unwrap();
    assert!(name.ends_with(".jpg") && name.len() == 40, "{name}");
    assert_eq!(cs.fetch_file(&format!("/{name}")).await.1, b"jpeg");

    // A name stays its uploader's; the uploader may replace the bytes.
    let (s, _) = cs
        .upload(Some(&a.token), Some("shared"), Some("txt"), "first".into())
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_error(
        cs.upload(Some(&b.token), Some("shared"), Some("txt"), "theirs".into())
            .await,
        StatusCode::FORBIDDEN,
        "This file belongs to another user.",
    );
    assert_eq!(cs.fetch_file("/shared.txt").await.1, b"first");
    let (s, _) = cs
        .upload(Some(&a.token), Some("shared"), Some("txt"), "second".into())
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(cs.fetch_file("/shared.txt").await.1, b"second");
    // The replaced bytes are gone: one file for each name, plus tmp/.
    assert_eq!(std::fs::read_dir(data.join("blobs")).unwrap().count(), 3);
}

/// Ids carry whole seconds and an XMPP message keeps the id its client made, so within one second
/// a later message can have the lower id: pages are still newest first by arrival, and `before`
/// still means "arrived earlier".
#[tokio::test]
async fn messages_of_one_second_are_listed_in_arrival_order() {
    use confab_testkit::xmpp::XmppClient;
    let cs = Cs::start().await;
    let a = cs.register("secorder1").await;
    let b = cs.register("secorder2").await;
    let chat = cs.chat(&a.token, &[b.id], None).await;
    let chat = chat["id"].as_str().unwrap().to_string();
    let token = cs.ts.login("secorder2").await;
    let mut x = XmppClient::tcp(cs.ts.xmpp_addr()).await;
    x.login(b.id, cs.ts.app_id, &token).await;
    x.send("<presence/>").await;
    x.sync_counting().await;

    let first = cs.post(&a, &chat, "first").await;
    let mut sa = cs.socket(&a.token, &format!("/{}", a.session)).await;
    // The second an id made now carries, with the lowest random part.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let low = format!("{now:08x}0000000000000001");
    let a_jid = format!("{}-{}@localhost", a.id, cs.ts.app_id);
    x.send(&format!(
        "<message to='{a_jid}' type='chat' id='{low}'><body>second</body>\
         <extraParams xmlns='jabber:client'><save_to_history>1</save_to_history></extraParams></message>"
    ))
    .await;
    let second = sa.frame().await["payload"]["id"].clone();
    let texts = |p: Vec<Value>| -> Vec<String> {
        p.iter()
            .map(|m| m["text"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        texts(page(&cs, &a.token, &chat, "").await),
        ["second", "first"]
    );
    assert_eq!(
        texts(page(&cs, &a.token, &chat, &format!("?before={second}")).await),
        ["first"]
    );
    assert!(
        page(&cs, &a.token, &chat, &format!("?before={}", first["id"]))
            .await
            .is_empty()
    );
}

/// Two users racing to upload one new name: whatever the interleaving, the name ends up one
/// user's, with the bytes of an upload that was answered 200; every upload answered 403 left
/// nothing behind, and no blob is left unnamed.
#[tokio::test]
async fn racing_uploads_of_one_new_name_leave_one_owner_and_no_orphans() {
    let cs = Cs::start().await;
    let a = cs.register("racera001").await;
    let b = cs.register("racerb001").await;
    let attempts = (0..8).map(|i| {
        let (cs, token) = (&cs, if i % 2 == 0 { &a.token } else { &b.token });
        let body = format!("{}-{i}", if i % 2 == 0 { "a" } else { "b" });
        async move {
            let (s, _) = cs
                .upload(Some(token), Some("raced"), Some("txt"), body.clone().into())
                .await;
            (s, body)
        }
    });
    let answers = futures_util::future::join_all(attempts).await;
    let (status, served) = cs.fetch_file("/raced.txt").await;
    assert_eq!(status, StatusCode::OK);
    let served = String::from_utf8(served).unwrap();
    let owner = &served[..1];
    for (s, body) in &answers {
        match &body[..1] == owner {
            // The owner's uploads replace each other; each was taken.
            true => assert_eq!(*s, StatusCode::OK, "{body}"),
            false => assert_eq!(*s, StatusCode::FORBIDDEN, "{body}"),
        }
    }
    assert!(answers
        .iter()
        .any(|(s, b)| *s == StatusCode::OK && *b == served));
    let blobs = cs.ts.sql_i64s("SELECT COUNT(*) FROM blobs", &[]).await[0];
    assert_eq!(blobs, 1, "no unnamed blob is left");
}
