//! 1:1 XMPP messages and the chat history: stored before delivery with the stanza id, visible
//! over REST with unread counts; markers, edits and deletes change the stored message; REST
//! messages with `send_to_chat=1` and REST deletes reach XMPP sessions live.

use confab_testkit as common;

use common::db::Arg;
use common::xmpp::{Transport, XmppClient};
use common::TestServer;
use reqwest::Method;
use serde_json::json;

const NS_MARKERS: &str = "urn:xmpp:chat-markers:0";

async fn online(ts: &TestServer, t: Transport, id: i64, token: &str) -> XmppClient {
    let mut c = XmppClient::over(ts, t).await;
    c.login(id, ts.app_id, token).await;
    c.send("<presence/>").await;
    c
}

fn oid(n: u32) -> String {
    format!("6b02b1f7b5a07d16{n:02x}000000")
}

async fn history(ts: &TestServer, token: &str, dialog: &str) -> serde_json::Value {
    let (s, v) = ts
        .call(
            Method::GET,
            &format!("/chat/Message.json?chat_dialog_id={dialog}&mark_as_read=0"),
            Some(token),
            None,
        )
        .await;
    assert!(s.is_success(), "{v}");
    v
}

async fn saved_messages_markers_edits_and_deletes(t: Transport) {
    let ts = TestServer::start().await;
    let (alice, at) = ts.user("alice").await;
    let (bob, bt) = ts.user("bob").await;
    let mut a = online(&ts, t, alice, &at).await;
    let mut b = online(&ts, t, bob, &bt).await;
    let bob_jid = format!("{bob}-{}@localhost", ts.app_id);
    let alice_jid = format!("{alice}-{}@localhost", ts.app_id);

    // Saved: the stanza id becomes the message id; the dialog id is stamped in.
    let id1 = oid(1);
    a.send(&format!(
        "<message to='{bob_jid}' type='chat' id='{id1}'><body>hello bob</body>\
         <extraParams xmlns='jabber:client'><save_to_history>1</save_to_history><topic>greeting</topic></extraParams></message>"
    ))
    .await;
    let got = b
        .until(|e| e.name == "message" && e.attr("id") == Some(id1.as_str()))
        .await;
    let dialog = got
        .child_named("extraParams")
        .unwrap()
        .child_named("dialog_id")
        .unwrap()
        .text();
    assert_eq!(dialog.len(), 24);
    assert!(got
        .child_named("extraParams")
        .unwrap()
        .child_named("date_sent")
        .is_some());
    let h = history(&ts, &bt, &dialog).await;
    assert_eq!(h["items"][0]["_id"], json!(id1));
    assert_eq!(h["items"][0]["message"], json!("hello bob"));
    assert_eq!(h["items"][0]["topic"], json!("greeting"));
    assert_eq!(h["items"][0]["sender_id"], json!(alice));
    assert_eq!(h["items"][0]["recipient_id"], json!(bob));
    let (_, u) = ts
        .call(Method::GET, "/chat/Message/unread.json", Some(&bt), None)
        .await;
    assert_eq!(u["total"], json!(1));
    let (_, d) = ts
        .call(
            Method::GET,
            &format!("/chat/Dialog.json?_id={dialog}"),
            Some(&bt),
            None,
        )
        .await;
    assert_eq!(d["items"][0]["last_message"], json!("hello bob"));
    assert_eq!(d["items"][0]["last_message_id"], json!(id1));

    // Not saved: delivered, not in history, but the private dialog is still named.
    let id2 = oid(2);
    a.send(&format!(
        "<message to='{bob_jid}' type='chat' id='{id2}'><body>ephemeral</body></message>"
    ))
    .await;
    let got = b
        .until(|e| e.name == "message" && e.attr("id") == Some(id2.as_str()))
        .await;
    assert_eq!(
        got.child_named("extraParams")
            .unwrap()
            .child_named("dialog_id")
            .unwrap()
            .text(),
        dialog
    );
    assert_eq!(
        history(&ts, &bt, &dialog).await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Markers: delivered then displayed update delivered_ids/read_ids and the unread count.
    b.send(&format!(
        "<message to='{alice_jid}' type='chat' id='m1'><received xmlns='{NS_MARKERS}' id='{id1}'/>\
         <extraParams xmlns='jabber:client'><dialog_id>{dialog}</dialog_id></extraParams></message>"
    ))
    .await;
    let fwd = a
        .until(|e| e.name == "message" && e.attr("id") == Some("m1"))
        .await;
    assert!(fwd.child("received", NS_MARKERS).is_some());
    let h = history(&ts, &at, &dialog).await;
    assert!(h["items"][0]["delivered_ids"]
        .as_array()
        .unwrap()
        .contains(&json!(bob)));
    assert!(!h["items"][0]["read_ids"]
        .as_array()
        .unwrap()
        .contains(&json!(bob)));
    b.send(&format!(
        "<message to='{alice_jid}' type='chat' id='m2'><displayed xmlns='{NS_MARKERS}' id='{id1}'/>\
         <extraParams xmlns='jabber:client'><dialog_id>{dialog}</dialog_id></extraParams></message>"
    ))
    .await;
    a.until(|e| e.name == "message" && e.attr("id") == Some("m2"))
        .await;
    let h = history(&ts, &at, &dialog).await;
    assert!(h["items"][0]["read_ids"]
        .as_array()
        .unwrap()
        .contains(&json!(bob)));
    let (_, u) = ts
        .call(Method::GET, "/chat/Message/unread.json", Some(&bt), None)
        .await;
    assert_eq!(u["total"], json!(0));

    // Bob may not edit Alice's message: error back, nothing forwarded, nothing changed.
    b.send(&format!(
        "<message to='{alice_jid}' type='chat' id='e1'><body>forged</body><replace xmlns='urn:xmpp:message-correct:0' id='{id1}' last='true'/></message>"
    ))
    .await;
    let err = b
        .until(|e| e.name == "message" && e.attr("id") == Some("e1"))
        .await;
    assert_eq!(err.attr("type"), Some("error"));
    assert_eq!(err.child_named("error").unwrap().attr("code"), Some("403"));
    assert_eq!(
        history(&ts, &at, &dialog).await["items"][0]["message"],
        json!("hello bob")
    );
    // Alice edits her own: stored and forwarded.
    a.send(&format!(
        "<message to='{bob_jid}' type='chat' id='e2'><body>hello, bob!</body><replace xmlns='urn:xmpp:message-correct:0' id='{id1}' last='true'/></message>"
    ))
    .await;
    let fwd = b
        .until(|e| e.name == "message" && e.attr("id") == Some("e2"))
        .await;
    assert!(fwd.child_named("replace").is_some());
    let h = history(&ts, &bt, &dialog).await;
    assert_eq!(h["items"][0]["message"], json!("hello, bob!"));
    assert!(h["items"][0]["edited_at"].is_number());

    // Alice deletes it for everyone.
    a.send(&format!(
        "<message to='{bob_jid}' type='chat' id='d1'><remove xmlns='urn:xmpp:message-delete:0' id='{id1}'/></message>"
    ))
    .await;
    b.until(|e| e.name == "message" && e.attr("id") == Some("d1"))
        .await;
    assert_eq!(
        history(&ts, &bt, &dialog).await["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    ts.stop().await;
}

async fn rest_messages_reach_xmpp_sessions(t: Transport) {
    let ts = TestServer::start().await;
    let (alice, at) = ts.user("alice").await;
    let (bob, bt) = ts.user("bob").await;
    let mut b = online(&ts, t, bob, &bt).await;
    let (s, m) = ts
        .call(Method::POST, "/chat/Message.json", Some(&at),
            Some(json!({"recipient_id": bob, "message": "via rest", "send_to_chat": 1, "attachments": [{"type": "image", "uid": "u9"}], "mood": "happy"})))
        .await;
    assert!(s.is_success(), "{m}");
    let id = m["_id"].as_str().unwrap().to_string();
    let got = b
        .until(|e| e.name == "message" && e.attr("id") == Some(id.as_str()))
        .await;
    assert_eq!(
        got.attr("from"),
        Some(format!("{alice}-{}@localhost", ts.app_id).as_str())
    );
    assert_eq!(got.child_named("body").unwrap().text(), "via rest");
    let extra = got.child_named("extraParams").unwrap();
    assert_eq!(
        extra.child_named("dialog_id").unwrap().text(),
        m["chat_dialog_id"].as_str().unwrap()
    );
    assert_eq!(extra.child_named("mood").unwrap().text(), "happy");
    assert_eq!(
        extra.child_named("attachment").unwrap().attr("uid"),
        Some("u9")
    );

    // Without send_to_chat nothing is delivered live.
    let (_, quiet) = ts
        .call(
            Method::POST,
            "/chat/Message.json",
            Some(&at),
            Some(json!({"recipient_id": bob, "message": "history only"})),
        )
        .await;
    let quiet_id = quiet["_id"].as_str().unwrap().to_string();
    b.send("<iq type='get' id='sync' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    let mut seen = Vec::new();
    loop {
        let e = b.element().await;
        if e.attr("id") == Some("sync") {
            break;
        }
        seen.push(e.attr("id").map(str::to_string));
    }
    assert!(!seen.contains(&Some(quiet_id)));

    // A REST delete for everyone is pushed as a remove.
    let (s, _) = ts
        .form(
            Method::DELETE,
            &format!("/chat/Message/{id}.json"),
            &at,
            "force=1",
        )
        .await;
    assert!(s.is_success());
    let rm = b
        .until(|e| e.name == "message" && e.child_named("remove").is_some())
        .await;
    assert_eq!(
        rm.child_named("remove").unwrap().attr("id"),
        Some(id.as_str())
    );

    // Offline: a REST message with send_to_chat waits for the next login.
    b.close().await;
    let (_, later) = ts
        .call(
            Method::POST,
            "/chat/Message.json",
            Some(&at),
            Some(json!({"recipient_id": bob, "message": "while away", "send_to_chat": "1"})),
        )
        .await;
    let later_id = later["_id"].as_str().unwrap().to_string();
    let mut b2 = online(&ts, t, bob, &bt).await;
    let got = b2
        .until(|e| e.name == "message" && e.attr("id") == Some(later_id.as_str()))
        .await;
    assert!(got.child_named("delay").is_some());
    ts.stop().await;
}

async fn rest_system_messages_are_delivered_as_headlines(t: Transport) {
    let ts = TestServer::start().await;
    let (alice, at) = ts.user("alice").await;
    let (bob, bt) = ts.user("bob").await;
    let mut b = online(&ts, t, bob, &bt).await;
    let (s, v) = ts
        .call(
            Method::POST,
            "/chat/Message/system.json",
            Some(&at),
            Some(json!({"recipientId": bob, "param1": "a", "nested": {"x": "1"}})),
        )
        .await;
    assert!(s.is_success(), "{v}");
    assert_eq!(v["recipientId"], json!(bob));
    assert_eq!(
        v["extensionParams"],
        json!({"param1": "a", "nested": {"x": "1"}})
    );
    let id = v["messageId"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 24);
    let got = b
        .until(|e| e.name == "message" && e.attr("id") == Some(id.as_str()))
        .await;
    assert_eq!(got.attr("type"), Some("headline"));
    assert_eq!(
        got.attr("from"),
        Some(format!("{alice}-{}@localhost", ts.app_id).as_str())
    );
    let extra = got.child_named("extraParams").unwrap();
    assert_eq!(
        extra.child_named("moduleIdentifier").unwrap().text(),
        "SystemNotifications"
    );
    assert_eq!(extra.child_named("param1").unwrap().text(), "a");
    assert_eq!(
        extra
            .child_named("nested")
            .unwrap()
            .child_named("x")
            .unwrap()
            .text(),
        "1"
    );

    // Unknown or missing recipients are refused.
    let (s, _) = ts
        .call(
            Method::POST,
            "/chat/Message/system.json",
            Some(&at),
            Some(json!({"recipientId": 999_999})),
        )
        .await;
    assert_eq!(s, reqwest::StatusCode::NOT_FOUND);
    let (s, _) = ts
        .call(
            Method::POST,
            "/chat/Message/system.json",
            Some(&at),
            Some(json!({"param1": "a"})),
        )
        .await;
    assert_eq!(s, reqwest::StatusCode::UNPROCESSABLE_ENTITY);
    ts.stop().await;
}

async fn rest_group_messages_reach_room_members_live(t: Transport) {
    let ts = TestServer::start().await;
    let (alice, at) = ts.user("alice").await;
    let (bob, bt) = ts.user("bob").await;
    let (carol, ct) = ts.user("carol").await;
    let (s, g) = ts
        .call(
            Method::POST,
            "/chat/Dialog.json",
            Some(&at),
            Some(json!({"type": 2, "name": "G", "occupants_ids": [bob]})),
        )
        .await;
    assert!(s.is_success(), "{g}");
    let gid = g["_id"].as_str().unwrap().to_string();
    // Bob never joins the room; Carol is not a member.
    let mut b = online(&ts, t, bob, &bt).await;
    let mut c = online(&ts, t, carol, &ct).await;
    let (s, m) = ts
        .call(
            Method::POST,
            "/chat/Message.json",
            Some(&at),
            Some(json!({"chat_dialog_id": gid, "message": "to the group", "send_to_chat": 1})),
        )
        .await;
    assert!(s.is_success(), "{m}");
    let id = m["_id"].as_str().unwrap().to_string();
    let got = b
        .until(|e| e.name == "message" && e.attr("id") == Some(id.as_str()))
        .await;
    assert_eq!(got.attr("type"), Some("groupchat"));
    assert_eq!(
        got.attr("from"),
        Some(format!("{}_{gid}@muc.localhost/{alice}", ts.app_id).as_str())
    );
    assert_eq!(got.child_named("body").unwrap().text(), "to the group");
    assert_eq!(
        got.child_named("extraParams")
            .unwrap()
            .child_named("dialog_id")
            .unwrap()
            .text(),
        gid
    );
    // The outsider gets nothing.
    c.send("<iq type='get' id='sync' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    loop {
        let e = c.element().await;
        assert_ne!(
            e.attr("id"),
            Some(id.as_str()),
            "a non-member received a group message"
        );
        if e.attr("id") == Some("sync") {
            break;
        }
    }
    ts.stop().await;
}

/// Stored message `i` of sender `s`: ObjectId-shaped so it is kept as the message id.
fn sid(s: usize, i: usize) -> String {
    format!("6b02b1f7b5a07d{s:02x}{i:02x}000000")
}

async fn unread_of(ts: &TestServer, token: &str, dialog: &str) -> serde_json::Value {
    let (_, u) = ts
        .call(
            Method::GET,
            &format!("/chat/Message/unread.json?chat_dialog_ids={dialog}"),
            Some(token),
            None,
        )
        .await;
    u[dialog].clone()
}

async fn stored_messages_sent_at_once_by_many_senders_all_land_in_order(t: Transport) {
    let ts = TestServer::start().await;
    let (bob, bt) = ts.user("bob").await;
    let mut b = online(&ts, t, bob, &bt).await;
    let bob_jid = format!("{bob}-{}@localhost", ts.app_id);
    const SENDERS: usize = 4;
    const EACH: usize = 25;
    let mut senders = Vec::new();
    for s in 0..SENDERS {
        let (id, token) = ts.user(&format!("sender{s}")).await;
        senders.push(online(&ts, t, id, &token).await);
    }
    // Every sender writes its whole burst without waiting, so the stores overlap.
    for (s, c) in senders.iter_mut().enumerate() {
        let burst: String = (0..EACH)
            .map(|i| {
                format!(
                    "<message to='{bob_jid}' type='chat' id='{}'><body>s{s} m{i}</body>\
                     <extraParams xmlns='jabber:client'><save_to_history>1</save_to_history></extraParams></message>",
                    sid(s, i)
                )
            })
            .collect();
        c.send(&burst).await;
    }
    let mut dialogs = vec![String::new(); SENDERS];
    for _ in 0..SENDERS * EACH {
        let m = b.until(|e| e.name == "message").await;
        assert_ne!(m.attr("type"), Some("error"));
        let body = m.child_named("body").unwrap().text();
        let s: usize = body[1..body.find(' ').unwrap()].parse().unwrap();
        dialogs[s] = m
            .child_named("extraParams")
            .unwrap()
            .child_named("dialog_id")
            .unwrap()
            .text();
    }
    for (s, dialog) in dialogs.iter().enumerate() {
        let h = history(&ts, &bt, dialog).await;
        let ids: Vec<&str> = h["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["_id"].as_str().unwrap())
            .collect();
        let sent: Vec<String> = (0..EACH).map(|i| sid(s, i)).collect();
        assert_eq!(ids, sent);
        assert_eq!(unread_of(&ts, &bt, dialog).await, json!(EACH));
        let (_, d) = ts
            .call(
                Method::GET,
                &format!("/chat/Dialog.json?_id={dialog}"),
                Some(&bt),
                None,
            )
            .await;
        assert_eq!(d["items"][0]["last_message_id"], json!(sid(s, EACH - 1)));
        assert_eq!(d["items"][0]["unread_messages_count"], json!(EACH));
    }
    let (_, u) = ts
        .call(Method::GET, "/chat/Message/unread.json", Some(&bt), None)
        .await;
    assert_eq!(u["total"], json!(SENDERS * EACH));
    ts.stop().await;
}

async fn a_sender_no_longer_in_the_dialog_gets_an_error_and_nothing_is_stored(t: Transport) {
    let ts = TestServer::start().await;
    let (alice, at) = ts.user("alice").await;
    let (bob, bt) = ts.user("bob").await;
    let mut a = online(&ts, t, alice, &at).await;
    let mut b = online(&ts, t, bob, &bt).await;
    let stored = |to: i64, id: &str, body: &str| {
        format!(
            "<message to='{to}-{}@localhost' type='chat' id='{id}'><body>{body}</body>\
             <extraParams xmlns='jabber:client'><save_to_history>1</save_to_history></extraParams></message>",
            ts.app_id
        )
    };
    // Alice's first message creates the pair's dialog (she owns it); Bob answers.
    a.send(&stored(bob, &oid(1), "first")).await;
    let got = b
        .until(|e| e.name == "message" && e.attr("id") == Some(oid(1).as_str()))
        .await;
    let dialog = got
        .child_named("extraParams")
        .unwrap()
        .child_named("dialog_id")
        .unwrap()
        .text();
    b.send(&stored(alice, &oid(2), "reply")).await;
    a.until(|e| e.name == "message" && e.attr("id") == Some(oid(2).as_str()))
        .await;

    // Bob is taken out of the dialog behind the server's back: the dialog id the server
    // remembers for the pair must not let him post.
    ts.sql_execute(
        "DELETE FROM dialog_members WHERE dialog_id = ? AND user_id = ?",
        &[Arg::Text(dialog.clone()), Arg::Int(bob)],
    )
    .await;

    b.send(&stored(alice, &oid(3), "refused")).await;
    let err = b
        .until(|e| e.name == "message" && e.attr("id") == Some(oid(3).as_str()))
        .await;
    assert_eq!(err.attr("type"), Some("error"));
    // Not delivered: the next thing Alice gets is a later, unsaved message.
    b.send(&format!(
        "<message to='{alice}-{}@localhost' type='chat' id='after'><body>after</body></message>",
        ts.app_id
    ))
    .await;
    let next = a
        .until(|e| {
            e.name == "message" && matches!(e.attr("id"), Some(id) if id == oid(3) || id == "after")
        })
        .await;
    assert_eq!(next.attr("id"), Some("after"));
    let h = history(&ts, &at, &dialog).await;
    assert_eq!(h["items"].as_array().unwrap().len(), 2);
    assert_eq!(unread_of(&ts, &at, &dialog).await, json!(1));
    ts.stop().await;
}

confab_testkit::on_both_transports!(
    saved_messages_markers_edits_and_deletes,
    rest_messages_reach_xmpp_sessions,
    rest_system_messages_are_delivered_as_headlines,
    rest_group_messages_reach_room_members_live,
    stored_messages_sent_at_once_by_many_senders_all_land_in_order,
    a_sender_no_longer_in_the_dialog_gets_an_error_and_nothing_is_stored,
    first_contact_dialog_id_is_the_stored_one,
    unsaved_messages_carry_the_pairs_id_without_writing_a_dialog,
);

/// A first contact without history is delivered before its dialog is written; the id it carries
/// is the one the dialog gets, also when the pair's next message is stored at once.
async fn first_contact_dialog_id_is_the_stored_one(t: Transport) {
    let ts = TestServer::start().await;
    let (alice, at) = ts.user("alice").await;
    let (bob, bt) = ts.user("bob").await;
    let mut a = online(&ts, t, alice, &at).await;
    let mut b = online(&ts, t, bob, &bt).await;
    let bob_jid = format!("{bob}-{}@localhost", ts.app_id);

    let (first, second) = (oid(40), oid(41));
    // Both written at once: the stored one may arrive while the dialog is still being written.
    a.send(&format!(
        "<message to='{bob_jid}' type='chat' id='{first}'><body>hi</body></message>\
         <message to='{bob_jid}' type='chat' id='{second}'><body>kept</body>\
         <extraParams xmlns='jabber:client'><save_to_history>1</save_to_history></extraParams></message>"
    ))
    .await;
    let mut dialogs = Vec::new();
    for id in [&first, &second] {
        let got = b
            .until(|e| e.name == "message" && e.attr("id") == Some(id.as_str()))
            .await;
        dialogs.push(
            got.child_named("extraParams")
                .unwrap()
                .child_named("dialog_id")
                .unwrap()
                .text(),
        );
    }
    assert_eq!(dialogs[0], dialogs[1]);
    let h = history(&ts, &bt, &dialogs[0]).await;
    assert_eq!(h["items"][0]["_id"], json!(second));
    let (_, d) = ts
        .call(Method::GET, "/chat/Dialog.json", Some(&at), None)
        .await;
    assert_eq!(d["total_entries"], json!(1), "{d}");
    assert_eq!(d["items"][0]["_id"], json!(dialogs[0]));
    assert_eq!(d["items"][0]["type"], json!(3));
    ts.stop().await;
}

/// Messages that are not saved carry their pair's dialog id but write no dialog: the pair's
/// dialog appears with its first saved message or a REST create, under the id already carried.
async fn unsaved_messages_carry_the_pairs_id_without_writing_a_dialog(t: Transport) {
    let ts = TestServer::start().await;
    let (alice, at) = ts.user("alice").await;
    let (bob, bt) = ts.user("bob").await;
    let mut a = online(&ts, t, alice, &at).await;
    let mut b = online(&ts, t, bob, &bt).await;
    let unsaved = |to: i64, id: &str| {
        format!(
            "<message to='{to}-{}@localhost' type='chat' id='{id}'><body>hi</body></message>",
            ts.app_id
        )
    };
    let dialog_of = |e: &confab_xmpp::xml::Element| {
        e.child_named("extraParams")
            .unwrap()
            .child_named("dialog_id")
            .unwrap()
            .text()
    };
    a.send(&unsaved(bob, "u1")).await;
    let got = b
        .until(|e| e.name == "message" && e.attr("id") == Some("u1"))
        .await;
    let carried = dialog_of(&got);
    b.send(&unsaved(alice, "u2")).await;
    let got = a
        .until(|e| e.name == "message" && e.attr("id") == Some("u2"))
        .await;
    assert_eq!(dialog_of(&got), carried, "both directions carry one id");
    // Long enough for any write in the background to have landed.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    for token in [&at, &bt] {
        let (_, d) = ts
            .call(Method::GET, "/chat/Dialog.json", Some(token), None)
            .await;
        assert_eq!(d["total_entries"], json!(0), "{d}");
    }
    let (status, created) = ts
        .call(
            Method::POST,
            "/chat/Dialog.json",
            Some(&bt),
            Some(json!({"type": 3, "occupants_ids": [alice]})),
        )
        .await;
    assert!(status.is_success(), "{created}");
    assert_eq!(created["_id"], json!(carried));
    ts.stop().await;
}
