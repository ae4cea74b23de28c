//! The ChatServer face's WebSocket (spec §7) against the real server: the ping on connect, the
//! `message` event on every device session of every participant (the author's too), Apple-epoch
//! dates, token checks, and messages stored through the ConnectyCube face arriving here.
mod chatserver_common;

use chatserver_common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Seconds from 2001-01-01 to now, roughly.
fn apple_now() -> f64 {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    unix - 978_307_200.0
}

#[tokio::test]
async fn message_event_reaches_every_session_of_every_participant() {
    let cs = Cs::start().await;
    let a = cs.register("wsusera1").await;
    let b = cs.register("wsuserb1").await;
    let c = cs.register("wsuserc1").await;
    let outsider = cs.register("wsout001").await;
    let chat = cs.chat(&a.token, &[b.id, c.id], None).await;
    let id = chat["id"].as_str().unwrap();
    // b has two devices; the original's `break` left the second one out.
    let (b2, b2_session) = cs.second_session(&b).await;

    let mut sa = cs.socket(&a.token, &format!("/{}", a.session)).await;
    let mut sb1 = cs.socket(&b.token, &format!("/ws/{}", b.session)).await;
    let mut sb2 = cs.socket(&b2, &format!("/{b2_session}")).await;
    // A browser passes the token in the query.
    let url = format!(
        "ws://{}/ws/{}?token={}",
        cs.ts.chatserver_addr(),
        c.session,
        urlencode(&c.token)
    );
    let mut sc = Socket::open(url.into_client_request().unwrap()).await;
    let mut so = cs
        .socket(&outsider.token, &format!("/{}", outsider.session))
        .await;

    let posted = cs.post(&a, id, "Hey").await;
    for s in [&mut sa, &mut sb1, &mut sb2, &mut sc] {
        let f = s.frame().await;
        assert_eq!(f["event"], "message");
        assert_eq!(f["source"], json!(a.id.to_string()));
        let p = &f["payload"];
        assert_eq!(p["text"], "Hey");
        assert_eq!(p["id"], posted["id"]);
        assert_eq!(p["chatId"], json!(id));
        assert_eq!(p["authorId"], json!(a.id));
        // Dates are numbers: seconds since 2001-01-01.
        let at = p["createdAt"].as_f64().expect("a number");
        assert!((at - apple_now()).abs() < 60.0, "{at}");
    }
    so.quiet(300).await;
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}

#[tokio::test]
async fn sockets_need_a_valid_token() {
    let cs = Cs::start().await;
    let a = cs.register("wstoken1").await;
    for (path, header) in [
        (format!("/{}", a.session), None),
        (format!("/{}", a.session), Some("Bearer bm90IGEgdG9rZW4=")),
        (format!("/ws/{}?token=wrong", a.session), None),
    ] {
        let url = format!("ws://{}{}", cs.ts.chatserver_addr(), path);
        let mut req = url.into_client_request().unwrap();
        if let Some(h) = header {
            req.headers_mut()
                .insert("authorization", h.parse().unwrap());
        }
        let err = tokio_tungstenite::connect_async(req).await.unwrap_err();
        match err {
            tokio_tungstenite::tungstenite::Error::Http(resp) => {
                assert_eq!(resp.status(), 401, "{path}")
            }
            other => panic!("{other:?}"),
        }
    }
    // Logging out closes the open sockets of every session.
    let mut s = cs.socket(&a.token, &format!("/{}", a.session)).await;
    let (st, _) = cs
        .call(Method::POST, "/users/me/logout", Some(&a.token), None)
        .await;
    assert_eq!(st, StatusCode::OK);
    assert!(s.closed().await);
}

#[tokio::test]
async fn connectycube_messages_reach_the_sockets() {
    let cs = Cs::start().await;
    let a = cs.register("wscross1").await;
    let b = cs.register("wscross2").await;
    let chat = cs.chat(&a.token, &[b.id], None).await;
    let id = chat["id"].as_str().unwrap();
    let mut sa = cs.socket(&a.token, &format!("/{}", a.session)).await;

    let token = cs.ts.login("wscross2").await;
    let dialog_id = cs.first_dialog(&token, "").await;
    // Stored without send_to_chat: history only, no live event.
    let (s, _) = cs
        .ts
        .call(
            Method::POST,
            "/chat/Message.json",
            Some(&token),
            Some(json!({"chat_dialog_id": dialog_id, "message": "quiet"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    sa.quiet(300).await;
    // With send_to_chat=1: live on every face.
    let (s, v) = cs
        .ts
        .call(
            Method::POST,
            "/chat/Message.json",
            Some(&token),
            Some(json!({"chat_dialog_id": dialog_id, "message": "live one", "send_to_chat": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let f = sa.frame().await;
    assert_eq!(f["event"], "message");
    assert_eq!(f["source"], json!(b.id.to_string()));
    assert_eq!(f["payload"]["text"], "live one");
    assert_eq!(f["payload"]["chatId"], json!(id));
    // The same integer id as the history shows.
    let (_, page) = cs
        .call(
            Method::GET,
            &format!("/chats/{id}/messages?count=1"),
            Some(&a.token),
            None,
        )
        .await;
    assert_eq!(page[0]["id"], f["payload"]["id"]);
}

#[tokio::test]
async fn a_new_socket_of_a_session_replaces_the_old_one() {
    let cs = Cs::start().await;
    let a = cs.register("wsrepl01").await;
    let b = cs.register("wsrepl02").await;
    let chat = cs.chat(&a.token, &[b.id], None).await;
    let mut old = cs.socket(&b.token, &format!("/{}", b.session)).await;
    let mut new = cs.socket(&b.token, &format!("/ws/{}", b.session)).await;
    assert!(old.closed().await, "one socket per device session");
    cs.post(&a, chat["id"].as_str().unwrap(), "once").await;
    assert_eq!(new.frame().await["payload"]["text"], "once");
    new.quiet(300).await;
}

#[tokio::test]
async fn notify_sends_auxiliary_events() {
    use base64::Engine;
    let cs = Cs::start().await;
    let a = cs.register("notifya1").await;
    let b = cs.register("notifyb1").await;
    let outsider = cs.register("notifyo1").await;
    let chat = cs.chat(&a.token, &[b.id], None).await;
    let path = format!("/chats/{}/notify", chat["id"].as_str().unwrap());
    let mut sa = cs.socket(&a.token, &format!("/{}", a.session)).await;
    let mut sb = cs.socket(&b.token, &format!("/{}", b.session)).await;
    let data = base64::engine::general_purpose::STANDARD.encode(br#"{"deleted":true}"#);
    let (s, v) = cs
        .call(
            Method::POST,
            &path,
            Some(&a.token),
            Some(json!({"name": "typing", "data": data, "realm": "webSocket"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    for sock in [&mut sa, &mut sb] {
        let f = sock.frame().await;
        assert_eq!(f["event"], "auxiliary");
        assert_eq!(f["source"], json!(a.id.to_string()));
        assert_eq!(
            f["payload"],
            json!({"name": "typing", "text": null, "data": {"deleted": true}})
        );
    }
    // Push only: nothing on the sockets (push is not sent yet).
    let (s, _) = cs
        .call(
            Method::POST,
            &path,
            Some(&a.token),
            Some(json!({"name": "typing", "realm": "push"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    sb.quiet(300).await;
    // Bad input and someone else's chat.
    for body in [
        json!({"name": "x", "data": "not base64!"}),
        json!({"name": "x", "realm": "carrier pigeon"}),
        json!({"text": "no name"}),
    ] {
        let (s, v) = cs
            .call(Method::POST, &path, Some(&a.token), Some(body))
            .await;
        assert_eq!(
            (s, &v["error"]),
            (StatusCode::BAD_REQUEST, &json!(true)),
            "{v}"
        );
    }
    assert_error(
        cs.call(
            Method::POST,
            &path,
            Some(&outsider.token),
            Some(json!({"name": "typing"})),
        )
        .await,
        StatusCode::FORBIDDEN,
        "Forbidden",
    );
    sb.quiet(300).await;
}

#[tokio::test]
async fn group_messages_skip_members_on_either_side_of_a_privacy_block() {
    use confab_testkit::xmpp::{Transport, XmppClient};
    let cs = Cs::start().await;
    let a = cs.register("blocka01").await;
    let b = cs.register("blockb01").await;
    let c = cs.register("blockc01").await;
    let group = cs.chat(&a.token, &[b.id, c.id], None).await;
    // c blocks a with a default privacy list, as an SDK client does over XMPP.
    let mut x = XmppClient::over(&cs.ts, Transport::Tcp).await;
    x.login(c.id, cs.ts.app_id, "password1").await;
    x.send(&format!(
        "<iq type='set' id='pl'><query xmlns='jabber:iq:privacy'><list name='bl'>\
         <item type='jid' value='{}-{}@localhost' action='deny' order='1'/>\
         </list></query></iq>",
        a.id, cs.ts.app_id
    ))
    .await;
    let r = x.until(|e| e.attr("id") == Some("pl")).await;
    assert_eq!(r.attr("type"), Some("result"), "{}", r.to_xml());
    x.send(
        "<iq type='set' id='pd'><query xmlns='jabber:iq:privacy'><default name='bl'/></query></iq>",
    )
    .await;
    let r = x.until(|e| e.attr("id") == Some("pd")).await;
    assert_eq!(r.attr("type"), Some("result"), "{}", r.to_xml());

    let mut sb = cs.socket(&b.token, &format!("/{}", b.session)).await;
    let mut sc = cs.socket(&c.token, &format!("/{}", c.session)).await;
    cs.post(&a, group["id"].as_str().unwrap(), "not for c")
        .await;
    assert_eq!(sb.frame().await["payload"]["text"], "not for c");
    sc.quiet(300).await;
}

/// Messages an XMPP client stores (`save_to_history=1`), 1:1 and in a group, reach the ChatServer
/// sockets of the dialog's users; unsaved ones stay on XMPP.
#[tokio::test]
async fn xmpp_messages_with_history_reach_the_sockets() {
    use confab_testkit::xmpp::XmppClient;
    let cs = Cs::start().await;
    let a = cs.register("xmppcross1").await;
    let b = cs.register("xmppcross2").await;
    let c = cs.register("xmppcross3").await;
    let personal = cs.chat(&a.token, &[b.id], None).await;
    let group = cs.chat(&a.token, &[b.id, c.id], Some(false)).await;
    let mut sa = cs.socket(&a.token, &format!("/{}", a.session)).await;

    // b speaks XMPP, with a ConnectyCube session of the same account.
    let token = cs.ts.login("xmppcross2").await;
    let mut x = XmppClient::tcp(cs.ts.xmpp_addr()).await;
    x.login(b.id, cs.ts.app_id, &token).await;
    let a_jid = format!("{}-{}@localhost", a.id, cs.ts.app_id);
    let save =
        "<extraParams xmlns='jabber:client'><save_to_history>1</save_to_history></extraParams>";
    x.send(&format!(
        "<message to='{a_jid}' type='chat' id='6b02b1f7b5a07d1600000001'><body>not kept</body></message>"
    ))
    .await;
    sa.quiet(300).await;
    x.send(&format!(
        "<message to='{a_jid}' type='chat' id='6b02b1f7b5a07d1600000002'><body>kept 1:1</body>{save}</message>"
    ))
    .await;
    let f = sa.frame().await;
    assert_eq!(f["event"], "message");
    assert_eq!(f["source"], json!(b.id.to_string()));
    assert_eq!(f["payload"]["text"], "kept 1:1");
    assert_eq!(f["payload"]["chatId"], personal["id"]);

    // The group dialog behind the ChatServer group: its room, as the SDK addresses it.
    let dialog_id = cs.first_dialog(&token, "?type=2").await;
    let room = format!("{}_{dialog_id}@muc.localhost", cs.ts.app_id);
    x.send(&format!(
        "<message to='{room}' type='groupchat' id='6b02b1f7b5a07d1600000003'><body>kept in the group</body>{save}</message>"
    ))
    .await;
    let f = sa.frame().await;
    assert_eq!(f["event"], "message");
    assert_eq!(f["payload"]["text"], "kept in the group");
    assert_eq!(f["payload"]["chatId"], group["id"]);
    // And the ChatServer history lists it.
    let id = group["id"].as_str().unwrap();
    let (_, page) = cs
        .call(
            Method::GET,
            &format!("/chats/{id}/messages?count=1"),
            Some(&a.token),
            None,
        )
        .await;
    assert_eq!(page[0]["text"], "kept in the group");
}

/// Edits and read marks cross faces, both ways: an XMPP client's correction (XEP-0308) and read
/// marker (XEP-0333) reach the ChatServer socket as `messageUpdate`, and an edit or read made over
/// the ChatServer API reaches the XMPP client as the SDK's `<replace last>` and `<displayed>`.
#[tokio::test]
async fn edits_and_read_marks_cross_faces() {
    use confab_testkit::xmpp::XmppClient;
    let cs = Cs::start().await;
    let a = cs.register("crossedit1").await;
    let b = cs.register("crossedit2").await;
    let personal = cs.chat(&a.token, &[b.id], None).await;
    let chat = personal["id"].as_str().unwrap().to_string();
    let mut sa = cs.socket(&a.token, &format!("/{}", a.session)).await;
    let token = cs.ts.login("crossedit2").await;
    let mut x = XmppClient::tcp(cs.ts.xmpp_addr()).await;
    x.login(b.id, cs.ts.app_id, &token).await;
    x.send("<presence/>").await;
    x.sync_counting().await;
    let a_jid = format!("{}-{}@localhost", a.id, cs.ts.app_id);

    // b writes over XMPP, stored; a's socket has it.
    let m1 = "6b02b1f7b5a07d16000000e1";
    x.send(&format!(
        "<message to='{a_jid}' type='chat' id='{m1}'><body>first</body>\
         <extraParams xmlns='jabber:client'><save_to_history>1</save_to_history></extraParams></message>"
    ))
    .await;
    let f = sa.frame().await;
    assert_eq!(f["payload"]["text"], "first");
    let n1 = f["payload"]["id"].clone();

    // b corrects it over XMPP: a's socket hears the new text.
    x.send(&format!(
        "<message to='{a_jid}' type='chat' id='6b02b1f7b5a07d16000000e2'><body>first, edited</body>\
         <replace xmlns='urn:xmpp:message-correct:0' id='{m1}'/></message>"
    ))
    .await;
    let f = sa.frame().await;
    assert_eq!(f["event"], "messageUpdate", "{f}");
    assert_eq!(f["source"], json!(b.id.to_string()));
    assert_eq!(
        (&f["payload"]["id"], &f["payload"]["text"]),
        (&n1, &json!("first, edited"))
    );

    // a reads it over the ChatServer API: b's XMPP client gets the read marker.
    let read = format!("/chats/{chat}/messages/{n1}/read");
    assert_eq!(
        cs.status(Method::PUT, &read, &a.token).await,
        StatusCode::OK
    );
    let marker = x
        .until(|e| e.child("displayed", "urn:xmpp:chat-markers:0").is_some())
        .await;
    assert_eq!(
        marker
            .child("displayed", "urn:xmpp:chat-markers:0")
            .unwrap()
            .attr("id"),
        Some(m1)
    );
    assert!(marker
        .attr("from")
        .unwrap()
        .starts_with(&format!("{}-", a.id)));
    sa.frame().await; // a's own socket hears the read too (this face's rule).

    // a writes and then edits over the ChatServer API: b gets the message, then the correction.
    let posted = cs.post(&a, &chat, "second").await;
    let m2 = x
        .until(|e| {
            e.name == "message" && e.child_named("body").is_some_and(|b| b.text() == "second")
        })
        .await;
    let m2_id = m2.attr("id").unwrap().to_string();
    sa.frame().await;
    let path = format!("/chats/{chat}/messages/{}", posted["id"]);
    let (s, v) = cs
        .call(
            Method::PUT,
            &path,
            Some(&a.token),
            Some(json!({"text": "second, edited"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let fix = x
        .until(|e| e.child("replace", "urn:xmpp:message-correct:0").is_some())
        .await;
    let replace = fix.child("replace", "urn:xmpp:message-correct:0").unwrap();
    assert_eq!(
        (replace.attr("id"), replace.attr("last")),
        (Some(m2_id.as_str()), Some("true"))
    );
    assert_eq!(fix.child_named("body").unwrap().text(), "second, edited");

    // b reads it over XMPP: a's socket hears the new read mark.
    sa.frame().await; // the edit's own messageUpdate
    x.send(&format!(
        "<message to='{a_jid}' type='chat' id='6b02b1f7b5a07d16000000e3'>\
         <displayed xmlns='urn:xmpp:chat-markers:0' id='{m2_id}'/></message>"
    ))
    .await;
    let f = sa.frame().await;
    assert_eq!(f["event"], "messageUpdate", "{f}");
    assert_eq!(f["payload"]["id"], posted["id"]);
    let marks = f["payload"]["readMarks"].as_array().unwrap();
    assert_eq!(marks.len(), 1, "{f}");
    assert_eq!(marks[0]["user"]["id"], json!(b.id));
}

/// The same for a group: an XMPP member's correction reaches the ChatServer socket, and an edit
/// made over the ChatServer API reaches XMPP members as a groupchat correction from the author.
#[tokio::test]
async fn group_edits_cross_faces() {
    use confab_testkit::xmpp::XmppClient;
    let cs = Cs::start().await;
    let a = cs.register("groupedit1").await;
    let b = cs.register("groupedit2").await;
    let c = cs.register("groupedit3").await;
    let group = cs.chat(&a.token, &[b.id, c.id], Some(false)).await;
    let chat = group["id"].as_str().unwrap().to_string();
    let mut sa = cs.socket(&a.token, &format!("/{}", a.session)).await;
    let token = cs.ts.login("groupedit2").await;
    let mut x = XmppClient::tcp(cs.ts.xmpp_addr()).await;
    x.login(b.id, cs.ts.app_id, &token).await;
    x.send("<presence/>").await;
    x.sync_counting().await;
    let dialog_id = cs.first_dialog(&token, "?type=2").await;
    let room = format!("{}_{dialog_id}@muc.localhost", cs.ts.app_id);

    let m1 = "6b02b1f7b5a07d16000000f1";
    x.send(&format!(
        "<message to='{room}' type='groupchat' id='{m1}'><body>hello all</body>\
         <extraParams xmlns='jabber:client'><save_to_history>1</save_to_history></extraParams></message>"
    ))
    .await;
    let f = sa.frame().await;
    assert_eq!(f["payload"]["text"], "hello all");
    x.send(&format!(
        "<message to='{room}' type='groupchat' id='6b02b1f7b5a07d16000000f2'><body>hello everyone</body>\
         <replace xmlns='urn:xmpp:message-correct:0' id='{m1}'/></message>"
    ))
    .await;
    let f = sa.frame().await;
    assert_eq!(f["event"], "messageUpdate", "{f}");
    assert_eq!(f["payload"]["text"], "hello everyone");

    let posted = cs.post(&a, &chat, "from a").await;
    let m2 = x
        .until(|e| {
            e.name == "message" && e.child_named("body").is_some_and(|b| b.text() == "from a")
        })
        .await;
    let m2_id = m2.attr("id").unwrap().to_string();
    let path = format!("/chats/{chat}/messages/{}", posted["id"]);
    let (s, v) = cs
        .call(
            Method::PUT,
            &path,
            Some(&a.token),
            Some(json!({"text": "from a, edited"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let fix = x
        .until(|e| e.child("replace", "urn:xmpp:message-correct:0").is_some())
        .await;
    assert_eq!(fix.attr("type"), Some("groupchat"));
    assert_eq!(fix.attr("from"), Some(format!("{room}/{}", a.id).as_str()));
    assert_eq!(
        fix.child("replace", "urn:xmpp:message-correct:0")
            .unwrap()
            .attr("id"),
        Some(m2_id.as_str())
    );
    assert_eq!(fix.child_named("body").unwrap().text(), "from a, edited");
}

/// Edits and reads made with the ConnectyCube REST API reach the sockets as `messageUpdate` (the
/// REST API tells no XMPP client: SDK apps send their own stanzas for that).
#[tokio::test]
async fn connectycube_rest_edits_and_reads_reach_the_sockets() {
    let cs = Cs::start().await;
    let a = cs.register("restedit1").await;
    let b = cs.register("restedit2").await;
    let chat = cs.chat(&a.token, &[b.id], None).await;
    let chat = chat["id"].as_str().unwrap().to_string();
    let mut sa = cs.socket(&a.token, &format!("/{}", a.session)).await;
    let token = cs.ts.login("restedit2").await;
    let dialog = cs.first_dialog(&token, "").await;

    // b writes with the REST API, then edits the text: a's socket hears both.
    let (s, sent) = cs
        .ts
        .call(
            Method::POST,
            "/chat/Message.json",
            Some(&token),
            Some(json!({"chat_dialog_id": dialog, "message": "typo", "send_to_chat": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{sent}");
    let f = sa.frame().await;
    assert_eq!(
        (&f["event"], &f["payload"]["text"]),
        (&json!("message"), &json!("typo"))
    );
    let number = f["payload"]["id"].clone();
    let cc_id = sent["_id"].as_str().unwrap();
    let (s, v) = cs
        .ts
        .call(
            Method::PUT,
            &format!("/chat/Message/{cc_id}.json"),
            Some(&token),
            Some(json!({"message": "fixed"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let f = sa.frame().await;
    assert_eq!(f["event"], "messageUpdate", "{f}");
    assert_eq!(f["source"], json!(b.id.to_string()));
    assert_eq!(
        (&f["payload"]["id"], &f["payload"]["text"]),
        (&number, &json!("fixed"))
    );

    // a posts two here; b marks one read by id, then the whole dialog: one update per message,
    // each naming b among the readers; a message already read is not told again.
    let first = cs.post(&a, &chat, "one").await;
    sa.frame().await;
    cs.post(&a, &chat, "two").await;
    sa.frame().await;
    let (_, page) = cs
        .ts
        .call(
            Method::GET,
            &format!("/chat/Message.json?chat_dialog_id={dialog}&mark_as_read=0"),
            Some(&token),
            None,
        )
        .await;
    let one = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["message"] == "one")
        .unwrap()["_id"]
        .as_str()
        .unwrap()
        .to_string();
    let read = json!({"read": 1, "chat_dialog_id": dialog});
    let (s, v) = cs
        .ts
        .call(
            Method::PUT,
            &format!("/chat/Message/{one}.json"),
            Some(&token),
            Some(read.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let f = sa.frame().await;
    assert_eq!(
        (&f["event"], &f["payload"]["id"]),
        (&json!("messageUpdate"), &first["id"])
    );
    assert_eq!(f["source"], json!(b.id.to_string()));
    assert!(
        f["payload"]["readMarks"]
            .to_string()
            .contains(&b.id.to_string()),
        "{f}"
    );
    let (s, v) = cs
        .ts
        .call(Method::PUT, "/chat/Message.json", Some(&token), Some(read))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let f = sa.frame().await;
    assert_eq!(
        (&f["event"], &f["payload"]["text"]),
        (&json!("messageUpdate"), &json!("two"))
    );
    sa.quiet(300).await;

    // Reading with a page of GET /chat/Message tells the sockets too.
    let third = cs.post(&a, &chat, "three").await;
    sa.frame().await;
    let (s, _) = cs
        .ts
        .call(
            Method::GET,
            &format!("/chat/Message.json?chat_dialog_id={dialog}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let f = sa.frame().await;
    assert_eq!(
        (&f["event"], &f["payload"]["id"]),
        (&json!("messageUpdate"), &third["id"])
    );
    sa.quiet(300).await;
}

/// The status a socket upgrade is answered with: 101 when it opened (then dropped at once).
async fn upgrade_status(cs: &Cs, token: &str, session: &str) -> u16 {
    let url = format!("ws://{}/{session}", cs.ts.chatserver_addr());
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Ok(_) => 101,
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("{e}"),
    }
}

/// `chatserver_max_sockets` caps the sockets open on a node (503 with the error body beyond it,
/// a place again once one closes); `chatserver_max_sessions_per_user` ends a user's oldest session,
/// and closes its socket, when a login goes beyond it.
#[tokio::test]
async fn sockets_and_sessions_are_capped() {
    let cs = Cs::start_with(|c| {
        c.chatserver_max_sockets = 2;
        c.chatserver_max_sessions_per_user = 2;
    })
    .await;
    let a = cs.register("capsocket1").await;
    let b = cs.register("capsocket2").await;
    let mut sa = cs.socket(&a.token, &format!("/{}", a.session)).await;
    let _sb = cs.socket(&b.token, &format!("/{}", b.session)).await;
    // A third socket is refused, and says why.
    let url = format!("ws://{}/{}", cs.ts.chatserver_addr(), b.session);
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", b.token).parse().unwrap(),
    );
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 503);
            let body: serde_json::Value =
                serde_json::from_slice(resp.body().as_deref().unwrap()).unwrap();
            assert_eq!(
                body,
                json!({"error": true, "reason": "Too many connections."})
            );
        }
        other => panic!("expected 503, got {other:?}"),
    }

    // a's second login keeps both sessions; the third ends the first, whose socket closes and
    // whose token stops working; the place it held is free again.
    let (second, _) = cs.second_session(&a).await;
    let (s, v) = cs.login(&a.username, "password1", device(3)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(sa.closed().await, "the ended session's socket closes");
    assert_eq!(
        cs.status(Method::GET, "/users/me", &a.token).await,
        StatusCode::UNAUTHORIZED
    );
    let (s, me) = cs.call(Method::GET, "/users/me", Some(&second), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["deviceSessions"].as_array().unwrap().len(), 2, "{me}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while upgrade_status(&cs, &second, "x").await != 101 {
        assert!(std::time::Instant::now() < deadline, "the place is freed");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
