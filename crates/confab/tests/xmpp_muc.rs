//! Group (type 2), public (type 4) and broadcast (type 1) dialogs over XMPP against the real server:
//! join/leave/kick/error presences, delivery to members who never joined, reflection, refusal of
//! non-members, history and unread counts through REST, live membership changes made over REST.

use confab_testkit as common;

use std::time::Duration;

use common::xmpp::XmppClient;
use common::TestServer;
use confab_core::ObjectId;
use confab_xmpp::xml::Element;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const QUIET: Duration = Duration::from_millis(300);

async fn connect(ts: &TestServer, id: i64, token: &str) -> XmppClient {
    let mut c = XmppClient::tcp(ts.xmpp_addr()).await;
    c.login(id, ts.app_id, token).await;
    c.send("<presence/>").await;
    c
}

/// A ping round trip: returns everything received before the reply.
async fn sync(c: &mut XmppClient) -> Vec<Element> {
    c.send("<iq type='get' id='sync' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    let mut before = Vec::new();
    loop {
        let e = c.element().await;
        if e.attr("id") == Some("sync") {
            return before;
        }
        before.push(e);
    }
}

fn room(ts: &TestServer, dialog: &str) -> String {
    format!("{}_{dialog}@muc.localhost", ts.app_id)
}

async fn group(ts: &TestServer, owner_tok: &str, kind: i64, occupants: &[i64]) -> String {
    let (s, v) = ts
        .call(
            Method::POST,
            "/chat/Dialog.json",
            Some(owner_tok),
            Some(json!({"type": kind, "name": "G", "occupants_ids": occupants})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["_id"].as_str().unwrap().to_string()
}

async fn join(c: &mut XmppClient, room_jid: &str, user: i64, id: &str) -> Element {
    c.send(&format!(
        "<presence id='{id}' to='{room_jid}/{user}'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>"
    ))
    .await;
    c.until(|e| e.name == "presence" && e.attr("id") == Some(id))
        .await
}

fn is_self_110(p: &Element) -> bool {
    let Some(x) = p.child("x", "http://jabber.org/protocol/muc#user") else {
        return false;
    };
    let status = x
        .child_named("status")
        .and_then(|s| s.attr("code"))
        .map(str::to_string);
    let compat = x
        .child_named("xmlns")
        .and_then(|c| c.child_named("code"))
        .map(|c| c.text());
    status.as_deref() == Some("110") && compat.as_deref() == Some("110")
}

async fn send_group(c: &mut XmppClient, room_jid: &str, id: &str, body: &str, save: bool) {
    let extra = if save {
        "<extraParams xmlns='jabber:client'><save_to_history>1</save_to_history><custom>v</custom></extraParams>"
    } else {
        ""
    };
    c.send(&format!(
        "<message to='{room_jid}' type='groupchat' id='{id}'><body>{body}</body>{extra}</message>"
    ))
    .await;
}

async fn next_message(c: &mut XmppClient) -> Element {
    c.until(|e| e.name == "message").await
}

async fn history(ts: &TestServer, tok: &str, dialog: &str) -> Value {
    let (s, v) = ts
        .call(
            Method::GET,
            &format!("/chat/Message.json?chat_dialog_id={dialog}&mark_as_read=0"),
            Some(tok),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

fn error_code(e: &Element) -> Option<String> {
    e.child_named("error")
        .and_then(|x| x.attr("code"))
        .map(str::to_string)
}

#[tokio::test]
async fn group_join_deliver_reflect_store_typing_and_leave() {
    let ts = TestServer::start().await;
    let (a, at) = ts.user("alice").await;
    let (b, bt) = ts.user("bob").await;
    let (c, ct) = ts.user("carol").await;
    let (d, dt) = ts.user("dave").await;
    let dialog = group(&ts, &at, 2, &[b, c]).await;
    let rj = room(&ts, &dialog);
    let mut ca = connect(&ts, a, &at).await;
    let mut cb = connect(&ts, b, &bt).await;
    let mut cc = connect(&ts, c, &ct).await;
    let mut cd = connect(&ts, d, &dt).await;

    // Join: the self-presence echoes the id and carries status 110 both ways.
    let p = join(&mut ca, &rj, a, "u1:join").await;
    assert!(is_self_110(&p), "{}", p.to_xml());
    assert_eq!(p.attr("from"), Some(format!("{rj}/{a}").as_str()));
    assert_eq!(p.attr("type"), None);
    // The muc#user <x> is the first <x>.
    assert_eq!(
        p.elements().find(|e| e.name == "x").unwrap().ns,
        "http://jabber.org/protocol/muc#user"
    );
    let p = join(&mut cb, &rj, b, "u2:join").await;
    assert!(is_self_110(&p));
    // Bob saw Alice first (another occupant: no SDK self marker).
    assert!(cb.raw.contains(&format!("from=\"{rj}/{a}\"")));
    // Alice sees Bob join, without the self marker.
    let pj = ca.until(|e| e.name == "presence").await;
    assert_eq!(pj.attr("from"), Some(format!("{rj}/{b}").as_str()));
    assert!(pj
        .child("x", "http://jabber.org/protocol/muc#user")
        .unwrap()
        .child_named("xmlns")
        .is_none());

    // A non-member's join is refused with 407 and the join id.
    let e = join(&mut cd, &rj, d, "u3:join").await;
    assert_eq!(e.attr("type"), Some("error"));
    assert_eq!(error_code(&e).as_deref(), Some("407"));
    assert_eq!(
        e.elements().find(|x| x.name == "x").unwrap().ns,
        "http://jabber.org/protocol/muc"
    );

    // A message reaches the member who never joined, the joined member and (reflected) the sender.
    let mid = ObjectId::generate().to_string();
    send_group(&mut ca, &rj, &mid, "hello group", true).await;
    for client in [&mut ca, &mut cb, &mut cc] {
        let m = next_message(client).await;
        assert_eq!(m.attr("type"), Some("groupchat"));
        assert_eq!(m.attr("id"), Some(mid.as_str()));
        assert_eq!(m.attr("from"), Some(format!("{rj}/{a}").as_str()));
        assert_eq!(m.child_named("body").unwrap().text(), "hello group");
        let extra = m.child_named("extraParams").unwrap();
        assert_eq!(extra.child_named("dialog_id").unwrap().text(), dialog);
        assert!(!extra.child_named("date_sent").unwrap().text().is_empty());
    }
    assert!(sync(&mut cd).await.is_empty(), "outsider got nothing");

    // History has it under the stanza id; the other occupants' unread counts went up.
    let h = history(&ts, &ct, &dialog).await;
    assert_eq!(h["items"].as_array().unwrap().len(), 1, "{h}");
    assert_eq!(h["items"][0]["_id"], json!(mid));
    assert_eq!(h["items"][0]["message"], json!("hello group"));
    assert_eq!(h["items"][0]["sender_id"], json!(a));
    assert_eq!(h["items"][0]["custom"], json!("v"));
    let (_, u) = ts
        .call(
            Method::GET,
            &format!("/chat/Message/unread.json?chat_dialog_ids={dialog}"),
            Some(&ct),
            None,
        )
        .await;
    assert_eq!(u[&dialog], json!(1), "{u}");
    let (_, u) = ts
        .call(
            Method::GET,
            &format!("/chat/Message/unread.json?chat_dialog_ids={dialog}"),
            Some(&at),
            None,
        )
        .await;
    assert_eq!(u[&dialog], json!(0), "{u}");

    // Not saved: delivered but not stored.
    send_group(&mut cb, &rj, "nosave1", "ephemeral", false).await;
    let m = next_message(&mut cc).await;
    assert_eq!(m.attr("from"), Some(format!("{rj}/{b}").as_str()));
    next_message(&mut ca).await;
    next_message(&mut cb).await;
    assert_eq!(
        history(&ts, &at, &dialog).await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // A non-member's message is refused (legacy code), nothing delivered or stored.
    let bad = ObjectId::generate().to_string();
    send_group(&mut cd, &rj, &bad, "intruder", true).await;
    let e = cd.until(|e| e.name == "message").await;
    assert_eq!(e.attr("type"), Some("error"));
    assert_eq!(e.attr("id"), Some(bad.as_str()));
    assert_eq!(error_code(&e).as_deref(), Some("406"));
    assert!(!e.to_xml().contains("intruder"), "body is not echoed");
    cc.nothing_for(QUIET).await;
    assert_eq!(
        history(&ts, &at, &dialog).await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Typing goes to the others, not back to the typist.
    cc.send(&format!(
        "<message to='{rj}' type='groupchat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>"
    ))
    .await;
    for client in [&mut ca, &mut cb] {
        let m = next_message(client).await;
        assert!(m.child_named("composing").is_some());
        assert_eq!(m.attr("from"), Some(format!("{rj}/{c}").as_str()));
    }
    assert!(sync(&mut cc).await.is_empty());

    // Read marker from Carol to Alice's user JID: routed 1:1 and recorded.
    cc.send(&format!(
        "<message type='chat' to='{a}-{}@localhost' id='mk1'><displayed xmlns='urn:xmpp:chat-markers:0' id='{mid}'/><extraParams xmlns='jabber:client'><dialog_id>{dialog}</dialog_id></extraParams></message>",
        ts.app_id
    ))
    .await;
    let m = next_message(&mut ca).await;
    assert!(m.child_named("displayed").is_some());
    let h = history(&ts, &at, &dialog).await;
    assert!(h["items"][0]["read_ids"]
        .as_array()
        .unwrap()
        .contains(&json!(c)));

    // disco#items lists the online occupants.
    ca.send(&format!(
        "<iq type='get' to='{rj}' id='u4:muc_disco_items'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>"
    ))
    .await;
    let r = ca
        .until(|e| e.attr("id") == Some("u4:muc_disco_items"))
        .await;
    assert_eq!(r.attr("type"), Some("result"), "{}", r.to_xml());
    let items: Vec<String> = r
        .child_named("query")
        .unwrap()
        .elements()
        .map(|i| i.attr("jid").unwrap().to_string())
        .collect();
    assert_eq!(
        items,
        [a, b, c].map(|u| format!("{rj}/{u}")).to_vec(),
        "{}",
        r.to_xml()
    );

    // Leave: Bob's self-presence (110) resolves leave(); Alice sees him go.
    cb.send(&format!("<presence type='unavailable' to='{rj}/{b}'/>"))
        .await;
    let p = cb.until(|e| e.name == "presence").await;
    assert_eq!(p.attr("type"), Some("unavailable"));
    assert!(is_self_110(&p));
    let p = ca.until(|e| e.name == "presence").await;
    assert_eq!(p.attr("type"), Some("unavailable"));
    assert_eq!(p.attr("from"), Some(format!("{rj}/{b}").as_str()));
    // Left, but still a member: still receives.
    send_group(
        &mut ca,
        &rj,
        &ObjectId::generate().to_string(),
        "still",
        false,
    )
    .await;
    assert_eq!(
        next_message(&mut cb)
            .await
            .child_named("body")
            .unwrap()
            .text(),
        "still"
    );
    ts.stop().await;
}

#[tokio::test]
async fn rest_membership_changes_are_live() {
    let ts = TestServer::start().await;
    let (a, at) = ts.user("alice").await;
    let (b, bt) = ts.user("bob").await;
    let (c, ct) = ts.user("carol").await;
    let (d, dt) = ts.user("dave").await;
    let dialog = group(&ts, &at, 2, &[b, c]).await;
    let rj = room(&ts, &dialog);
    let mut ca = connect(&ts, a, &at).await;
    let mut cb = connect(&ts, b, &bt).await;
    let mut cc = connect(&ts, c, &ct).await;
    let mut cd = connect(&ts, d, &dt).await;
    assert!(is_self_110(&join(&mut ca, &rj, a, "a:join").await));
    assert!(is_self_110(&join(&mut cb, &rj, b, "b:join").await));
    sync(&mut ca).await;

    // Warm the cache with a message.
    send_group(&mut ca, &rj, "warm1", "one", false).await;
    for client in [&mut ca, &mut cb, &mut cc] {
        next_message(client).await;
    }

    // The owner removes Bob: Bob is kicked (SDK-readable 301, initiator in presence/item/actor).
    let (s, v) = ts
        .call(
            Method::PUT,
            &format!("/chat/Dialog/{dialog}.json"),
            Some(&at),
            Some(json!({"pull_all": {"occupants_ids": [b]}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let k = cb.until(|e| e.name == "presence").await;
    assert_eq!(k.attr("type"), Some("unavailable"));
    assert_eq!(k.attr("from"), Some(format!("{rj}/{b}").as_str()));
    let x = k.child("x", "http://jabber.org/protocol/muc#user").unwrap();
    assert_eq!(
        x.child_named("xmlns")
            .unwrap()
            .child_named("code")
            .unwrap()
            .text(),
        "301"
    );
    let actor = k.child_named("item").unwrap().child_named("actor").unwrap();
    assert_eq!(
        actor.attr("jid"),
        Some(format!("{a}-{}@localhost", ts.app_id).as_str())
    );
    // Alice sees Bob leave (no self marker).
    let p = ca.until(|e| e.name == "presence").await;
    assert_eq!(p.attr("type"), Some("unavailable"));
    assert_eq!(p.attr("from"), Some(format!("{rj}/{b}").as_str()));
    assert!(!p.to_xml().contains("<xmlns>"));

    // Bob no longer receives, and may no longer post.
    send_group(&mut ca, &rj, "after1", "after kick", false).await;
    next_message(&mut cc).await;
    next_message(&mut ca).await;
    assert!(sync(&mut cb).await.is_empty(), "removed member got it");
    send_group(&mut cb, &rj, "bob2", "let me in", false).await;
    let e = next_message(&mut cb).await;
    assert_eq!(error_code(&e).as_deref(), Some("406"));

    // Dave is added: receives at once.
    let (s, v) = ts
        .call(
            Method::PUT,
            &format!("/chat/Dialog/{dialog}.json"),
            Some(&at),
            Some(json!({"push_all": {"occupants_ids": [d]}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    send_group(&mut ca, &rj, "after2", "welcome", false).await;
    assert_eq!(
        next_message(&mut cd)
            .await
            .child_named("body")
            .unwrap()
            .text(),
        "welcome"
    );
    next_message(&mut cc).await;
    next_message(&mut ca).await;

    // The owner deletes the dialog for everyone: joined sessions are told, routing stops.
    let (s, _) = ts
        .form(
            Method::DELETE,
            &format!("/chat/Dialog/{dialog}.json"),
            &at,
            "force=1",
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let k = ca.until(|e| e.name == "presence").await;
    assert_eq!(k.attr("type"), Some("unavailable"));
    send_group(&mut ca, &rj, "gone1", "anyone?", false).await;
    let e = next_message(&mut ca).await;
    assert_eq!(e.attr("type"), Some("error"));
    assert_eq!(error_code(&e).as_deref(), Some("404"));
    assert!(sync(&mut cc).await.is_empty());
    assert!(sync(&mut cd).await.is_empty());
    ts.stop().await;
}

#[tokio::test]
async fn edit_and_delete_in_a_group() {
    let ts = TestServer::start().await;
    let (a, at) = ts.user("alice").await;
    let (b, bt) = ts.user("bob").await;
    let dialog = group(&ts, &at, 2, &[b]).await;
    let rj = room(&ts, &dialog);
    let mut ca = connect(&ts, a, &at).await;
    let mut cb = connect(&ts, b, &bt).await;
    let ma = ObjectId::generate().to_string();
    send_group(&mut ca, &rj, &ma, "original", true).await;
    next_message(&mut ca).await;
    next_message(&mut cb).await;
    let mb = ObjectId::generate().to_string();
    send_group(&mut cb, &rj, &mb, "bob's", true).await;
    next_message(&mut ca).await;
    next_message(&mut cb).await;

    // Alice edits her message: stored, then forwarded.
    ca.send(&format!(
        "<message to='{rj}' type='groupchat' id='e1'><body>edited</body><replace xmlns='urn:xmpp:message-correct:0' id='{ma}' last='true'/></message>"
    ))
    .await;
    let m = next_message(&mut cb).await;
    assert_eq!(
        m.child_named("replace").unwrap().attr("id"),
        Some(ma.as_str())
    );
    assert_eq!(m.attr("from"), Some(format!("{rj}/{a}").as_str()));
    next_message(&mut ca).await;
    let h = history(&ts, &at, &dialog).await;
    let orig = h["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["_id"] == json!(ma))
        .unwrap();
    assert_eq!(orig["message"], json!("edited"));

    // Bob may not delete Alice's message (only admins/owner) nor edit it.
    cb.send(&format!(
        "<message to='{rj}' type='groupchat' id='d1'><remove xmlns='urn:xmpp:message-delete:0' id='{ma}'/></message>"
    ))
    .await;
    let e = next_message(&mut cb).await;
    assert_eq!(error_code(&e).as_deref(), Some("403"));
    cb.send(&format!(
        "<message to='{rj}' type='groupchat' id='e2'><body>hacked</body><replace xmlns='urn:xmpp:message-correct:0' id='{ma}' last='true'/></message>"
    ))
    .await;
    let e = next_message(&mut cb).await;
    assert_eq!(error_code(&e).as_deref(), Some("403"));
    assert!(sync(&mut ca).await.is_empty());

    // The owner deletes Bob's message for everyone.
    ca.send(&format!(
        "<message to='{rj}' type='groupchat' id='d2'><remove xmlns='urn:xmpp:message-delete:0' id='{mb}'/></message>"
    ))
    .await;
    let m = next_message(&mut cb).await;
    assert_eq!(
        m.child_named("remove").unwrap().attr("id"),
        Some(mb.as_str())
    );
    let h = history(&ts, &at, &dialog).await;
    let ids: Vec<&Value> = h["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["_id"])
        .collect();
    assert_eq!(ids, vec![&json!(ma)]);
    ts.stop().await;
}

#[tokio::test]
async fn public_dialog_reaches_subscribers_only() {
    let ts = TestServer::start().await;
    let (a, at) = ts.user("alice").await;
    let (b, bt) = ts.user("bob").await;
    let (c, ct) = ts.user("carol").await;
    let dialog = group(&ts, &at, 4, &[]).await;
    let (s, v) = ts
        .call(
            Method::POST,
            &format!("/chat/Dialog/{dialog}/subscribe.json"),
            Some(&bt),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let rj = room(&ts, &dialog);
    let mut ca = connect(&ts, a, &at).await;
    let mut cb = connect(&ts, b, &bt).await;
    let mut cc = connect(&ts, c, &ct).await;

    let mid = ObjectId::generate().to_string();
    send_group(&mut cb, &rj, &mid, "from a subscriber", true).await;
    for client in [&mut ca, &mut cb] {
        let m = next_message(client).await;
        assert_eq!(m.attr("from"), Some(format!("{rj}/{b}").as_str()));
    }
    assert!(sync(&mut cc).await.is_empty());
    assert_eq!(
        history(&ts, &at, &dialog).await["items"][0]["_id"],
        json!(mid)
    );

    // Not subscribed: may not post or join.
    send_group(&mut cc, &rj, "c1", "hi", false).await;
    assert_eq!(
        error_code(&next_message(&mut cc).await).as_deref(),
        Some("406")
    );
    let e = join(&mut cc, &rj, c, "c:join").await;
    assert_eq!(error_code(&e).as_deref(), Some("407"));

    // Subscribing over REST takes effect at once; unsubscribing too.
    let (s, _) = ts
        .call(
            Method::POST,
            &format!("/chat/Dialog/{dialog}/subscribe.json"),
            Some(&ct),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    send_group(&mut ca, &rj, "a1", "now you", false).await;
    assert_eq!(
        next_message(&mut cc)
            .await
            .child_named("body")
            .unwrap()
            .text(),
        "now you"
    );
    let (s, _) = ts
        .call(
            Method::DELETE,
            &format!("/chat/Dialog/{dialog}/subscribe.json"),
            Some(&bt),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    sync(&mut cb).await;
    send_group(&mut ca, &rj, "a2", "bye bob", false).await;
    next_message(&mut cc).await;
    assert!(sync(&mut cb).await.is_empty());
    ts.stop().await;
}

#[tokio::test]
async fn broadcast_reaches_every_user_of_the_app_only() {
    let ts = TestServer::start().await;
    let (a, at) = ts.user("alice").await;
    let (b, bt) = ts.user("bob").await;
    let (c, ct) = ts.user("carol").await;
    let (s, v) = ts
        .admin(
            Method::POST,
            "/admin/chat.json",
            Some(json!({"type": 1, "name": "News", "user_id": a})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let dialog = v["_id"].as_str().unwrap().to_string();
    let rj = room(&ts, &dialog);

    // A user of another app, connected to the same server.
    let (app2, key2) = ts.second_app().await;
    let (s, v) = ts
        .call(
            Method::POST,
            "/session.json",
            None,
            Some(json!({"application_id": app2, "auth_key": key2})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let app_tok = v["session"]["token"].as_str().unwrap().to_string();
    let (s, v) = ts
        .call(
            Method::POST,
            "/users.json",
            Some(&app_tok),
            Some(json!({"user": {"login": "xavier", "password": "password1"}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let x = v["user"]["id"].as_i64().unwrap();
    let (s, v) = ts
        .call(
            Method::POST,
            "/session.json",
            None,
            Some(json!({"application_id": app2, "auth_key": key2, "user": {"login": "xavier", "password": "password1"}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let xt = v["session"]["token"].as_str().unwrap().to_string();
    let mut cx = XmppClient::tcp(ts.xmpp_addr()).await;
    cx.login(x, app2, &xt).await;

    let mut ca = connect(&ts, a, &at).await;
    let mut cb = connect(&ts, b, &bt).await;
    let mut cc = connect(&ts, c, &ct).await;

    let mid = ObjectId::generate().to_string();
    send_group(&mut ca, &rj, &mid, "announcement", true).await;
    for client in [&mut ca, &mut cb, &mut cc] {
        let m = next_message(client).await;
        assert_eq!(m.attr("id"), Some(mid.as_str()));
        assert_eq!(m.attr("from"), Some(format!("{rj}/{a}").as_str()));
    }
    assert!(sync(&mut cx).await.is_empty(), "another app's user got it");
    assert_eq!(
        history(&ts, &bt, &dialog).await["items"][0]["_id"],
        json!(mid)
    );

    // A regular user may read (and join) but not post.
    let p = join(&mut cb, &rj, b, "b:join").await;
    assert!(is_self_110(&p), "{}", p.to_xml());
    send_group(&mut cb, &rj, "b1", "me too", true).await;
    let e = next_message(&mut cb).await;
    assert_eq!(e.attr("type"), Some("error"));
    assert_eq!(error_code(&e).as_deref(), Some("403"));
    assert!(sync(&mut cc).await.is_empty());
    assert_eq!(
        history(&ts, &bt, &dialog).await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // The other app cannot address the room at all.
    send_group(&mut cx, &rj, "x1", "cross", false).await;
    assert_eq!(
        error_code(&next_message(&mut cx).await).as_deref(),
        Some("404")
    );
    assert!(sync(&mut cc).await.is_empty());

    // An admin may post.
    let (s, v) = ts
        .call(
            Method::PUT,
            &format!("/chat/Dialog/{dialog}/admins.json"),
            Some(&at),
            Some(json!({"push_all": {"admins_ids": [c]}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    send_group(&mut cc, &rj, "c1", "admin speaking", false).await;
    assert_eq!(
        next_message(&mut cb)
            .await
            .child_named("body")
            .unwrap()
            .text(),
        "admin speaking"
    );
    ts.stop().await;
}

#[tokio::test]
async fn session_end_leaves_rooms() {
    let ts = TestServer::start().await;
    let (a, at) = ts.user("alice").await;
    let (b, bt) = ts.user("bob").await;
    let dialog = group(&ts, &at, 2, &[b]).await;
    let rj = room(&ts, &dialog);
    let mut ca = connect(&ts, a, &at).await;
    let mut cb = connect(&ts, b, &bt).await;
    join(&mut ca, &rj, a, "a:join").await;
    join(&mut cb, &rj, b, "b:join").await;
    sync(&mut ca).await;
    cb.close().await;
    let p = ca.until(|e| e.name == "presence").await;
    assert_eq!(p.attr("type"), Some("unavailable"));
    assert_eq!(p.attr("from"), Some(format!("{rj}/{b}").as_str()));
    ts.stop().await;
}
