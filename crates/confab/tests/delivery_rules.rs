//! Rules that used to live in one face only, now the domain's: privacy lists apply to messages sent
//! over REST (`POST /chat/Message`, with or without `send_to_chat=1`) exactly as to the same
//! messages sent over XMPP, 1:1 and in groups, with the same stored-history rule on both paths.
use confab_testkit as common;

use std::time::Duration;

use common::xmpp::{Transport, XmppClient};
use common::TestServer;
use confab_xmpp::stream::StreamEvent;
use confab_xmpp::xml::Element;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn online(ts: &TestServer, t: Transport, id: i64, token: &str) -> XmppClient {
    let mut c = XmppClient::over(ts, t).await;
    c.login(id, ts.app_id, token).await;
    c.send("<presence/>").await;
    c
}

fn jid(ts: &TestServer, id: i64) -> String {
    format!("{id}-{}@localhost", ts.app_id)
}

/// Makes `blocked` the owner's default privacy list, as the SDK's `privacylist.create` +
/// `setAsDefault` send it: a one-way block, or with `mutual` a two-way one.
async fn block(c: &mut XmppClient, ts: &TestServer, blocked: i64, mutual: bool) {
    let children = if mutual {
        ""
    } else {
        "<message/><presence-in/><presence-out/><iq/>"
    };
    c.send(&format!(
        "<iq type='set' id='pl'><query xmlns='jabber:iq:privacy'><list name='bl'>\
         <item type='jid' value='{}' action='deny' order='1'>{children}</item>\
         </list></query></iq>",
        jid(ts, blocked)
    ))
    .await;
    let r = c.until(|e| e.attr("id") == Some("pl")).await;
    assert_eq!(r.attr("type"), Some("result"), "{}", r.to_xml());
    c.send(
        "<iq type='set' id='pd'><query xmlns='jabber:iq:privacy'><default name='bl'/></query></iq>",
    )
    .await;
    let r = c.until(|e| e.attr("id") == Some("pd")).await;
    assert_eq!(r.attr("type"), Some("result"), "{}", r.to_xml());
}

/// Asserts no message arrives for a moment (presence and iq results are ignored).
async fn no_message(c: &mut XmppClient) {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match c.next_within(left).await {
            None => return,
            Some(StreamEvent::Element(e)) if e.name == "message" => {
                panic!("unexpected message: {}", e.to_xml())
            }
            Some(_) => {}
        }
    }
}

async fn got_message(c: &mut XmppClient, body: &str) -> Element {
    c.until(|e| e.name == "message" && e.child_named("body").is_some_and(|b| b.text() == body))
        .await
}

async fn bodies(ts: &TestServer, token: &str, dialog: &str) -> Vec<String> {
    let (s, v) = ts
        .call(
            Method::GET,
            &format!("/chat/Message.json?chat_dialog_id={dialog}&mark_as_read=0"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

async fn rest_post(ts: &TestServer, token: &str, body: Value) -> (StatusCode, Value) {
    ts.call(Method::POST, "/chat/Message.json", Some(token), Some(body))
        .await
}

/// A one-way block: the blocked user's messages are refused on both faces and nothing is stored;
/// the blocker may still write. Before the block, both faces deliver and store.
async fn one_to_one_blocks_apply_to_rest_and_xmpp_alike(t: Transport) {
    let ts = TestServer::start().await;
    let (alice, at) = ts.user("alice").await;
    let (bob, bt) = ts.user("bob").await;
    let mut a = online(&ts, t, alice, &at).await;
    let mut b = online(&ts, t, bob, &bt).await;

    // Unblocked: REST with send_to_chat reaches bob live and is stored.
    let (s, v) = rest_post(
        &ts,
        &at,
        json!({"recipient_id": bob, "message": "before", "send_to_chat": 1}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let dialog = v["chat_dialog_id"].as_str().unwrap().to_string();
    got_message(&mut b, "before").await;

    block(&mut b, &ts, alice, false).await;

    // REST, live and not live, by recipient and by dialog: refused, nothing delivered or stored.
    for body in [
        json!({"recipient_id": bob, "message": "rest live", "send_to_chat": 1}),
        json!({"chat_dialog_id": dialog, "message": "rest live", "send_to_chat": 1}),
        json!({"chat_dialog_id": dialog, "message": "rest stored"}),
    ] {
        let (s, v) = rest_post(&ts, &at, body.clone()).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{body}: {v}");
        assert!(v["errors"]["base"][0]
            .as_str()
            .unwrap()
            .contains("privacy list"));
    }
    // XMPP, stored: bounced with 503, nothing stored.
    a.send(&format!(
        "<message type='chat' to='{}' id='x1'><body>xmpp</body>\
         <extraParams xmlns='jabber:client'><save_to_history>1</save_to_history></extraParams></message>",
        jid(&ts, bob)
    ))
    .await;
    let e = a.until(|e| e.attr("id") == Some("x1")).await;
    assert_eq!(e.attr("type"), Some("error"));
    no_message(&mut b).await;
    assert_eq!(bodies(&ts, &bt, &dialog).await, ["before"]);

    // One way: bob still writes to alice, over REST too.
    let (s, v) = rest_post(
        &ts,
        &bt,
        json!({"recipient_id": alice, "message": "from the blocker", "send_to_chat": 1}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    got_message(&mut a, "from the blocker").await;
    ts.stop().await;
}

/// A two-way block stops the blocker too, on both faces.
async fn two_way_block_stops_the_blocker_over_rest(t: Transport) {
    let ts = TestServer::start().await;
    let (alice, at) = ts.user("alice").await;
    let (bob, bt) = ts.user("bob").await;
    let mut a = online(&ts, t, alice, &at).await;
    let mut b = online(&ts, t, bob, &bt).await;
    block(&mut b, &ts, alice, true).await;
    let (s, v) = rest_post(
        &ts,
        &bt,
        json!({"recipient_id": alice, "message": "blocker writes", "send_to_chat": 1}),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    b.send(&format!(
        "<message type='chat' to='{}' id='x2'><body>blocker writes</body></message>",
        jid(&ts, alice)
    ))
    .await;
    let e = b.until(|e| e.attr("id") == Some("x2")).await;
    assert_eq!(e.attr("type"), Some("error"));
    no_message(&mut a).await;
    ts.stop().await;
}

/// In a group, a message is stored for everyone but not delivered live to members whose list
/// blocks the sender — whether it was sent over XMPP or over REST with `send_to_chat=1`.
async fn group_messages_from_rest_respect_privacy_like_xmpp(t: Transport) {
    let ts = TestServer::start().await;
    let (alice, at) = ts.user("alice").await;
    let (bob, bt) = ts.user("bob").await;
    let (carol, ct) = ts.user("carol").await;
    let dialog = ts.group(&at, &[bob, carol]).await;
    let room = format!("{}_{dialog}@muc.localhost", ts.app_id);
    let mut a = online(&ts, t, alice, &at).await;
    let mut b = online(&ts, t, bob, &bt).await;
    let mut c = online(&ts, t, carol, &ct).await;
    block(&mut b, &ts, alice, false).await;

    let (s, v) = rest_post(
        &ts,
        &at,
        json!({"chat_dialog_id": dialog, "message": "over rest", "send_to_chat": 1}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    got_message(&mut c, "over rest").await;

    a.send(&format!(
        "<message to='{room}' type='groupchat' id='g1'><body>over xmpp</body>\
         <extraParams xmlns='jabber:client'><save_to_history>1</save_to_history></extraParams></message>"
    ))
    .await;
    got_message(&mut c, "over xmpp").await;
    no_message(&mut b).await;

    // Both are in the group's history, for the blocker too.
    let mut stored = bodies(&ts, &bt, &dialog).await;
    stored.sort();
    assert_eq!(stored, ["over rest", "over xmpp"]);
    ts.stop().await;
}

confab_testkit::on_both_transports!(
    one_to_one_blocks_apply_to_rest_and_xmpp_alike,
    two_way_block_stops_the_blocker_over_rest,
    group_messages_from_rest_respect_privacy_like_xmpp,
);
