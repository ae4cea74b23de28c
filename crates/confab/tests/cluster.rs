//! Several nodes on one store and a NATS bus between them: a user's sessions on another node get
//! 1:1 messages, REST messages and carbons exactly as on one node, and a message for a user online
//! nowhere is stored once, by the sending node. A node killed with `kill -9` loses nothing it had
//! handed out unacknowledged.

use std::time::Duration;

use common::cluster::{
    gone_elsewhere, killable_cluster, seen_elsewhere, two_nodes, KillableCluster,
};
use common::process::ConfabProcess;
use common::xmpp::XmppClient;
use common::TestServer;
use confab_core::{AppId, UserId};
use confab_testkit as common;
use confab_xmpp::stream::StreamEvent;
use confab_xmpp::xml::Element;
use reqwest::Method;
use serde_json::json;

async fn online(ts: &TestServer, id: i64, token: &str) -> XmppClient {
    let mut c = XmppClient::tcp(ts.xmpp_addr()).await;
    c.login(id, ts.app_id, token).await;
    c.send("<presence/>").await;
    c
}

fn jid(ts: &TestServer, user: i64) -> String {
    format!("{user}-{}@localhost", ts.app_id)
}

async fn body_of_next_message(c: &mut XmppClient) -> (Element, String) {
    let m = c
        .until(|e| e.name == "message" && e.child_named("body").is_some())
        .await;
    let body = m.child_named("body").unwrap().text();
    (m, body)
}

async fn offline_rows(ts: &TestServer, user: i64) -> i64 {
    let sql = "SELECT COUNT(*) FROM offline_messages WHERE user_id = ?";
    ts.sql_i64s(sql, &[common::db::Arg::Int(user)]).await[0]
}

#[tokio::test]
async fn one_to_one_messages_reach_sessions_on_the_other_node() {
    let (_nats, a, b) = two_nodes().await;
    let (alice, at) = a.user("alice").await;
    let (bob, bt) = a.user("bob").await;
    let mut alice_c = online(&a, alice, &at).await;
    let mut bob_c = online(&b, bob, &bt).await;
    seen_elsewhere(&a, bob).await;
    seen_elsewhere(&b, alice).await;

    alice_c
        .send(&format!(
            "<message to='{}' type='chat' id='m1'><body>across</body>\
             <extraParams xmlns='jabber:client'><save_to_history>1</save_to_history></extraParams></message>",
            jid(&a, bob)
        ))
        .await;
    let (m, body) = body_of_next_message(&mut bob_c).await;
    assert_eq!(body, "across");
    assert!(m.attr("from").unwrap().starts_with(&jid(&a, alice)));
    // Taken by bob's session on node B: nothing was stored offline.
    assert_eq!(offline_rows(&a, bob).await, 0);

    bob_c
        .send(&format!(
            "<message to='{}' type='chat' id='m2'><body>and back</body></message>",
            jid(&a, alice)
        ))
        .await;
    let (_, body) = body_of_next_message(&mut alice_c).await;
    assert_eq!(body, "and back");

    // Stored once in history, whichever node stored it.
    let (s, v) = a
        .call(
            Method::GET,
            &format!(
                "/chat/Message.json?chat_dialog_id={}",
                dialog_of(&a, &at, bob).await
            ),
            Some(&at),
            None,
        )
        .await;
    assert!(s.is_success(), "{v}");
    let bodies: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["message"].as_str())
        .collect();
    assert_eq!(bodies, ["across"]);
}

async fn dialog_of(ts: &TestServer, token: &str, other: i64) -> String {
    let (_, v) = ts
        .call(Method::GET, "/chat/Dialog.json?type=3", Some(token), None)
        .await;
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| {
            d["occupants_ids"]
                .as_array()
                .unwrap()
                .contains(&json!(other))
        })
        .expect("the private dialog")["_id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_user_online_nowhere_gets_the_message_once_at_next_login() {
    let (_nats, a, b) = two_nodes().await;
    let (alice, at) = a.user("alice").await;
    let (carol, ct) = a.user("carol").await;
    let mut alice_c = online(&a, alice, &at).await;
    // Carol was on node B and left.
    let mut carol_c = online(&b, carol, &ct).await;
    seen_elsewhere(&a, carol).await;
    carol_c.close().await;
    gone_elsewhere(&a, carol).await;

    alice_c
        .send(&format!(
            "<message to='{}' type='chat' id='off1'><body>while away</body></message>",
            jid(&a, carol)
        ))
        .await;
    // Stored by the sending node, once.
    for _ in 0..100 {
        if offline_rows(&a, carol).await > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(offline_rows(&a, carol).await, 1);

    let mut carol_again = online(&b, carol, &ct).await;
    let (m, body) = body_of_next_message(&mut carol_again).await;
    assert_eq!(body, "while away");
    assert!(m.child("delay", "urn:xmpp:delay").is_some());
    carol_again.nothing_for(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn rest_messages_and_carbons_cross_nodes() {
    let (_nats, a, b) = two_nodes().await;
    let (alice, at) = a.user("alice").await;
    let (bob, bt) = a.user("bob").await;
    // Alice has one session on each node; the one on node B wants carbons.
    let mut alice_a = online(&a, alice, &at).await;
    let mut alice_b = online(&b, alice, &at).await;
    alice_b
        .send("<iq type='set' id='c1'><enable xmlns='urn:xmpp:carbons:2'/></iq>")
        .await;
    alice_b.until(|e| e.attr("id") == Some("c1")).await;
    let mut bob_b = online(&b, bob, &bt).await;
    seen_elsewhere(&a, bob).await;
    seen_elsewhere(&a, alice).await;

    // REST with send_to_chat=1 on node A reaches bob's session on node B.
    let (s, v) = a
        .call(
            Method::POST,
            "/chat/Message.json",
            Some(&at),
            Some(json!({"recipient_id": bob, "message": "over rest", "send_to_chat": 1})),
        )
        .await;
    assert!(s.is_success(), "{v}");
    let (_, body) = body_of_next_message(&mut bob_b).await;
    assert_eq!(body, "over rest");

    // An XMPP message from alice's session on node A: a *sent* carbon reaches her session on B.
    alice_a
        .send(&format!(
            "<message to='{}' type='chat' id='cc1'><body>carbon me</body></message>",
            jid(&a, bob)
        ))
        .await;
    let (_, body) = body_of_next_message(&mut bob_b).await;
    assert_eq!(body, "carbon me");
    let carbon = alice_b
        .until(|e| e.name == "message" && e.child("sent", "urn:xmpp:carbons:2").is_some())
        .await;
    assert!(carbon.to_xml().contains("carbon me"));

    // A system notification posted on node A reaches Bob's session on node B.
    let (s, v) = a
        .call(
            Method::POST,
            "/chat/Message/system.json",
            Some(&at),
            Some(json!({"recipientId": bob, "param1": "across"})),
        )
        .await;
    assert!(s.is_success(), "{v}");
    let id = v["messageId"].as_str().unwrap().to_string();
    let got = bob_b
        .until(|e| e.name == "message" && e.attr("id") == Some(id.as_str()))
        .await;
    assert_eq!(got.attr("type"), Some("headline"));
}

#[tokio::test]
async fn a_node_that_leaves_stops_counting_at_once() {
    let (_nats, a, b) = two_nodes().await;
    let (bob, bt) = a.user("bob").await;
    let _bob_b = online(&b, bob, &bt).await;
    seen_elsewhere(&a, bob).await;
    b.stop().await;
    // A clean shutdown says so on the bus: no waiting for the node timeout.
    gone_elsewhere(&a, bob).await;
}

#[tokio::test]
async fn group_messages_reach_members_on_the_other_node() {
    let (_nats, a, b) = two_nodes().await;
    let (alice, at) = a.user("alice").await;
    let (bob, bt) = a.user("bob").await;
    let (carol, ct) = a.user("carol").await;
    let dialog = a.group(&at, &[bob, carol]).await;
    let room = format!("{}_{dialog}@muc.localhost", a.app_id);
    let mut alice_a = online(&a, alice, &at).await;
    let mut bob_b = online(&b, bob, &bt).await;
    let mut carol_a = online(&a, carol, &ct).await;
    seen_elsewhere(&a, bob).await;

    // Over XMPP, stored: the members on both nodes get it, the sender's session its reflection.
    alice_a
        .send(&format!(
            "<message to='{room}' type='groupchat' id='g1'><body>to all</body>\
             <extraParams xmlns='jabber:client'><save_to_history>1</save_to_history></extraParams></message>"
        ))
        .await;
    for c in [&mut bob_b, &mut carol_a, &mut alice_a] {
        let (m, body) = body_of_next_message(c).await;
        assert_eq!(
            (m.attr("type"), body.as_str()),
            (Some("groupchat"), "to all")
        );
    }
    // Over REST with send_to_chat=1, posted on node B: alice and carol on node A get it.
    let (s, v) = b
        .call(
            Method::POST,
            "/chat/Message.json",
            Some(&bt),
            Some(json!({"chat_dialog_id": dialog, "message": "from b", "send_to_chat": 1})),
        )
        .await;
    assert!(s.is_success(), "{v}");
    for c in [&mut alice_a, &mut carol_a, &mut bob_b] {
        let (_, body) = body_of_next_message(c).await;
        assert_eq!(body, "from b");
    }

    // Carol is removed on node B; node A, which had the room loaded, stops sending her its
    // messages at once, and her session leaves the room.
    let (s, v) = b
        .call(
            Method::PUT,
            &format!("/chat/Dialog/{dialog}.json"),
            Some(&at),
            Some(json!({"pull_all": {"occupants_ids": [carol]}})),
        )
        .await;
    assert!(s.is_success(), "{v}");
    alice_a
        .send(&format!(
            "<message to='{room}' type='groupchat' id='g2'><body>without carol</body>             <extraParams xmlns='jabber:client'><save_to_history>1</save_to_history></extraParams></message>"
        ))
        .await;
    let (_, body) = body_of_next_message(&mut bob_b).await;
    assert_eq!(body, "without carol");
    let (_, body) = body_of_next_message(&mut alice_a).await;
    assert_eq!(body, "without carol");
    let late = carol_a
        .next_within(Duration::from_millis(500))
        .await
        .map(|e| format!("{e:?}"))
        .unwrap_or_default();
    assert!(!late.contains("without carol"), "{late}");
}

/// A privacy list set on one node is enforced at once by the other node, which had the user's
/// previous (empty) default list cached.
#[tokio::test]
async fn privacy_lists_set_on_one_node_hold_on_the_other() {
    let (_nats, a, b) = two_nodes().await;
    let (alice, at) = a.user("alice").await;
    let (bob, bt) = a.user("bob").await;
    let mut alice_a = online(&a, alice, &at).await;
    let mut bob_b = online(&b, bob, &bt).await;
    seen_elsewhere(&a, bob).await;
    let to_bob = |id: &str| {
        format!(
            "<message to='{}' type='chat' id='{id}'><body>{id}</body></message>",
            jid(&a, bob)
        )
    };
    alice_a.send(&to_bob("before")).await;
    assert_eq!(body_of_next_message(&mut bob_b).await.1, "before");

    bob_b
        .send(&format!(
            "<iq type='set' id='p1'><query xmlns='jabber:iq:privacy'><list name='block'>\
             <item type='jid' value='{}' action='deny' order='1'/></list></query></iq>",
            jid(&a, alice)
        ))
        .await;
    let r = bob_b.until(|e| e.attr("id") == Some("p1")).await;
    assert_eq!(r.attr("type"), Some("result"), "{}", r.to_xml());
    bob_b
        .send("<iq type='set' id='p2'><query xmlns='jabber:iq:privacy'><default name='block'/></query></iq>")
        .await;
    let r = bob_b.until(|e| e.attr("id") == Some("p2")).await;
    assert_eq!(r.attr("type"), Some("result"), "{}", r.to_xml());

    alice_a.send(&to_bob("blocked")).await;
    let late = bob_b
        .next_within(Duration::from_millis(700))
        .await
        .map(|e| format!("{e:?}"))
        .unwrap_or_default();
    assert!(!late.contains("blocked"), "{late}");
}

/// A user who comes online on one node has their default privacy list read on every node before
/// any message to or from them needs it.
#[tokio::test]
async fn privacy_lists_are_read_ahead_where_a_user_comes_online() {
    let (_nats, a, b) = two_nodes().await;
    let (bob, bt) = a.user("bob").await;
    let account = (AppId::new(a.app_id).unwrap(), UserId::new(bob).unwrap());
    let cached = |ts: &TestServer| ts.server.as_ref().unwrap().xmpp.privacy.is_cached(account);
    assert!(!cached(&a) && !cached(&b));
    let _bob_b = online(&b, bob, &bt).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !(cached(&a) && cached(&b)) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "read ahead here: {}, on the other node: {}",
            cached(&b),
            cached(&a)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn two_nodes_on_postgresql_share_conversations() {
    let Some((nats, database_url, a)) = common::postgres::first_node("confab_cluster", |c| {
        c.node_id = Some("pg-a".into());
    })
    .await
    else {
        return;
    };
    let url = nats.url();
    let b = a
        .another_node(|c| {
            c.nats_url = Some(url.clone());
            c.node_id = Some("pg-b".into());
        })
        .await;
    // Users made on node A log in on node B: one store.
    let (alice, at) = a.user("alice").await;
    let (bob, _) = a.user("bob").await;
    let bt = b.login("bob").await;
    let mut alice_a = online(&a, alice, &at).await;
    let mut bob_b = online(&b, bob, &bt).await;
    seen_elsewhere(&a, bob).await;

    alice_a
        .send(&format!(
            "<message to='{}' type='chat' id='pg1'><body>on postgres</body>\
             <extraParams xmlns='jabber:client'><save_to_history>1</save_to_history></extraParams></message>",
            jid(&a, bob)
        ))
        .await;
    let (_, body) = body_of_next_message(&mut bob_b).await;
    assert_eq!(body, "on postgres");
    // Node B's REST API lists what node A stored.
    let dialog = dialog_of(&b, &bt, alice).await;
    let (s, v) = b
        .call(
            Method::GET,
            &format!("/chat/Message.json?chat_dialog_id={dialog}"),
            Some(&bt),
            None,
        )
        .await;
    assert!(s.is_success(), "{v}");
    assert_eq!(v["items"][0]["message"], "on postgres");
    assert_eq!(v["items"].as_array().unwrap().len(), 1);

    // /health: the store and the bus answer; without the database the node cannot serve.
    let (s, v) = b.call(Method::GET, "/health", None, None).await;
    assert_eq!(s, reqwest::StatusCode::OK);
    assert_eq!(v, json!({"status": "ok", "store": "ok", "bus": "ok"}));
    let name = url::Url::parse(&database_url).unwrap().path()[1..].to_string();
    let admin = sqlx::PgPool::connect(&std::env::var("CONFAB_TEST_DATABASE_URL").unwrap())
        .await
        .unwrap();
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&admin)
        .await
        .unwrap();
    let (s, v) = b.call(Method::GET, "/health", None, None).await;
    assert_eq!(s, reqwest::StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["store"], "down");
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn nodes_find_each_other_again_after_the_bus_restarts() {
    let (mut nats, a, b) = two_nodes().await;
    let (alice, at) = a.user("alice").await;
    let (bob, bt) = a.user("bob").await;
    let mut alice_a = online(&a, alice, &at).await;
    let mut bob_b = online(&b, bob, &bt).await;
    seen_elsewhere(&a, bob).await;

    // The bus goes away for 3 s and comes back on the same address. Meanwhile node A cannot reach
    // node B, so what Alice sends is stored offline (after the request times out).
    let mut sent = 0;
    let down = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        for n in 0..2 {
            alice_a
                .send(&format!(
                    "<message to='{}' type='chat' id='during{n}'><body>during {n}</body></message>",
                    jid(&a, bob)
                ))
                .await;
            sent += 1;
        }
    };
    let health_while_down = async {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        a.call(Method::GET, "/health", None, None).await
    };
    let ((), (), (s, v)) = tokio::join!(
        down,
        nats.restart_after(Duration::from_secs(3)),
        health_while_down
    );
    // A bus that is down is reported, and the node keeps serving its own clients.
    assert_eq!(s, reqwest::StatusCode::OK);
    assert_eq!(v["bus"], "down", "{v}");
    // The nodes reconnect by themselves, announce their users again, and live delivery across
    // nodes resumes.
    // Until then a message may be stored offline and handed out with <delay/> (nothing is lost);
    // live delivery is one that arrives without it.
    let mut live = false;
    let mut received = std::collections::BTreeSet::new();
    for attempt in 0..40 {
        sent += 1;
        alice_a
            .send(&format!(
                "<message to='{}' type='chat' id='after{attempt}'><body>after {attempt}</body></message>",
                jid(&a, bob)
            ))
            .await;
        while let Some(StreamEvent::Element(m)) =
            bob_b.next_within(Duration::from_millis(250)).await
        {
            if m.name == "message" && m.child_named("body").is_some() {
                let id = m.attr("id").unwrap().to_string();
                assert!(received.insert(id.clone()), "{id} twice");
                if m.child("delay", "urn:xmpp:delay").is_none() {
                    live = true;
                }
            }
        }
        if live {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        live,
        "no message crossed nodes live after the bus came back"
    );
    // What was stored offline while the bus was down reaches Bob's open session, each once.
    while received.len() < sent {
        match bob_b.next_within(Duration::from_secs(10)).await {
            Some(StreamEvent::Element(m)) if m.name == "message" => {
                if m.child_named("body").is_some() {
                    let id = m.attr("id").unwrap().to_string();
                    assert!(received.insert(id.clone()), "{id} twice");
                }
            }
            Some(_) => {}
            None => panic!("{} of {sent} messages arrived", received.len()),
        }
    }
}

/// A node is `kill -9`ed after handing a user their offline messages, before the client
/// acknowledged them: the surviving node releases what the dead node's session had claimed, and the
/// user, reconnected there, gets every message once, including one sent while the dead node still
/// counted as having the user.
#[tokio::test]
async fn a_killed_nodes_unacknowledged_offline_messages_reach_the_user_elsewhere() {
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_confab"));
    let Some(KillableCluster {
        a,
        mut c,
        nats: _nats,
        dir: _dir,
    }) = killable_cluster("confab_node_loss", "loss", bin).await
    else {
        return;
    };
    let (alice, at) = a.user("alice").await;
    let (bob, bt) = a.user("bob").await;
    let mut alice_a = online(&a, alice, &at).await;
    let send = |id: &str| {
        format!(
            "<message to='{}' type='chat' id='{id}'><body>{id}</body></message>",
            jid(&a, bob)
        )
    };
    for id in ["m1", "m2", "m3"] {
        alice_a.send(&send(id)).await;
    }
    for _ in 0..200 {
        if offline_rows(&a, bob).await == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(offline_rows(&a, bob).await, 3);

    // Bob logs in on node C with stream management and gets them, but never acknowledges.
    let mut bob_c = XmppClient::tcp(c.xmpp).await;
    bob_c.login(bob, a.app_id, &bt).await;
    bob_c.send("<enable xmlns='urn:xmpp:sm:3'/>").await;
    bob_c.until(|e| e.name == "enabled").await;
    bob_c.send("<presence/>").await;
    for _ in 0..3 {
        body_of_next_message(&mut bob_c).await;
    }
    seen_elsewhere(&a, bob).await;
    c.kill().await;
    drop(bob_c);

    // Node A still counts Bob as on node C: the message waits for an answer, then is stored.
    alice_a.send(&send("m4")).await;
    let mut bob_a = online(&a, bob, &bt).await;
    let mut got = Vec::new();
    while got.len() < 4 {
        let Some(StreamEvent::Element(m)) = bob_a.next_within(Duration::from_secs(20)).await else {
            panic!("only {got:?} arrived after node C died");
        };
        if m.name == "message" {
            got.push(m.child_named("body").unwrap().text());
        }
    }
    got.sort();
    assert_eq!(got, ["m1", "m2", "m3", "m4"], "each once");
    bob_a.nothing_for(Duration::from_millis(500)).await;
    gone_elsewhere(&a, bob).await;
    assert_eq!(offline_rows(&a, bob).await, 0);
    a.stop().await;
}

fn is_presence_from(e: &Element, from_prefix: &str, typ: Option<&str>) -> bool {
    e.name == "presence"
        && e.attr("type") == typ
        && e.attr("from").is_some_and(|f| f.starts_with(from_prefix))
}

/// Alice (on `a_c`) and Bob (on `b_c`) subscribe to each other's presence with the RFC 6121
/// handshake, each step crossing nodes.
async fn befriend(a_c: &mut XmppClient, alice_jid: &str, b_c: &mut XmppClient, bob_jid: &str) {
    a_c.send(&format!("<presence to='{bob_jid}' type='subscribe'/>"))
        .await;
    b_c.until(|e| is_presence_from(e, alice_jid, Some("subscribe")))
        .await;
    b_c.send(&format!("<presence to='{alice_jid}' type='subscribed'/>"))
        .await;
    a_c.until(|e| is_presence_from(e, bob_jid, Some("subscribed")))
        .await;
    // Bob's current presence follows the approval.
    a_c.until(|e| is_presence_from(e, &format!("{bob_jid}/"), None))
        .await;
    b_c.send(&format!("<presence to='{alice_jid}' type='subscribe'/>"))
        .await;
    a_c.until(|e| is_presence_from(e, bob_jid, Some("subscribe")))
        .await;
    a_c.send(&format!("<presence to='{bob_jid}' type='subscribed'/>"))
        .await;
    b_c.until(|e| is_presence_from(e, &format!("{alice_jid}/"), None))
        .await;
}

/// Contacts on different nodes: the subscription handshake, presence broadcasts, what a new
/// session learns at its initial presence, directed presence, roster pushes, last activity and
/// the unavailable presence at the end, all as on one node.
#[tokio::test]
async fn presence_and_contacts_cross_nodes() {
    let (_nats, a, b) = two_nodes().await;
    let (alice, at) = a.user("alice").await;
    let (bob, bt) = a.user("bob").await;
    let (alice_jid, bob_jid) = (jid(&a, alice), jid(&a, bob));
    let mut alice_a = online(&a, alice, &at).await;
    let mut bob_b = online(&b, bob, &bt).await;
    // Bob's session on node B asked for its roster: it gets roster pushes.
    bob_b
        .send("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>")
        .await;
    bob_b.until(|e| e.attr("id") == Some("r1")).await;
    seen_elsewhere(&a, bob).await;
    seen_elsewhere(&b, alice).await;
    befriend(&mut alice_a, &alice_jid, &mut bob_b, &bob_jid).await;

    // A presence update on node B reaches the contact on node A.
    bob_b
        .send("<presence><status>on node b</status></presence>")
        .await;
    let p = alice_a
        .until(|e| is_presence_from(e, &format!("{bob_jid}/"), None))
        .await;
    assert_eq!(p.child_named("status").unwrap().text(), "on node b");

    // A new session of Bob's on node A: its roster change is pushed to his session on node B,
    // and its initial presence learns Alice's presence (same node) and Bob's own other one.
    let mut bob_a = XmppClient::tcp(a.xmpp_addr()).await;
    bob_a.login(bob, a.app_id, &bt).await;
    bob_a
        .send(&format!(
            "<iq type='set' id='r2'><query xmlns='jabber:iq:roster'><item jid='{alice_jid}' name='Al'/></query></iq>"
        ))
        .await;
    let push = bob_b
        .until(|e| e.name == "iq" && e.attr("type") == Some("set"))
        .await;
    assert!(push.to_xml().contains("name=\"Al\""), "{}", push.to_xml());
    bob_a.send("<presence/>").await;
    bob_a
        .until(|e| is_presence_from(e, &format!("{alice_jid}/"), None))
        .await;
    let own = bob_a
        .until(|e| is_presence_from(e, &format!("{bob_jid}/"), None))
        .await;
    assert_eq!(own.child_named("status").unwrap().text(), "on node b");
    bob_a.close().await;

    // A new session of Alice's on node B learns Bob's presence from node B too.
    let mut alice_b = online(&b, alice, &at).await;
    let p = alice_b
        .until(|e| is_presence_from(e, &format!("{bob_jid}/"), None))
        .await;
    assert_eq!(p.child_named("status").unwrap().text(), "on node b");
    alice_b.close().await;

    // Directed presence and last activity across nodes.
    alice_a
        .send(&format!(
            "<presence to='{bob_jid}'><status>just for you</status></presence>"
        ))
        .await;
    let d = bob_b
        .until(|e| {
            is_presence_from(e, &format!("{alice_jid}/"), None)
                && e.child_named("status")
                    .is_some_and(|s| s.text() == "just for you")
        })
        .await;
    assert!(d.attr("to").is_some());
    alice_a
        .send(&format!(
            "<iq type='get' id='last1' to='{bob_jid}'><query xmlns='jabber:iq:last'/></iq>"
        ))
        .await;
    let last = alice_a.until(|e| e.attr("id") == Some("last1")).await;
    assert_eq!(last.attr("type"), Some("result"), "{}", last.to_xml());
    assert_eq!(
        last.child_named("query").unwrap().attr("seconds"),
        Some("0")
    );

    // Bob leaves node B: Alice sees him go.
    bob_b.close().await;
    alice_a
        .until(|e| is_presence_from(e, &format!("{bob_jid}/"), Some("unavailable")))
        .await;
    a.stop().await;
    b.stop().await;
}

/// A node is `kill -9`ed: within the node timeout its users go unavailable to their contacts on
/// the surviving node, and those watching them by status streaming get a push.
#[tokio::test]
async fn a_killed_nodes_users_go_unavailable_to_their_contacts() {
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_confab"));
    let Some(KillableCluster {
        a,
        mut c,
        nats: _nats,
        dir: _dir,
    }) = killable_cluster("confab_node_loss", "gone", bin).await
    else {
        return;
    };
    let (alice, at) = a.user("alice").await;
    let (bob, bt) = a.user("bob").await;
    let (alice_jid, bob_jid) = (jid(&a, alice), jid(&a, bob));
    let mut alice_a = online(&a, alice, &at).await;
    let mut bob_c = XmppClient::tcp(c.xmpp).await;
    bob_c.login(bob, a.app_id, &bt).await;
    bob_c.send("<presence/>").await;
    seen_elsewhere(&a, bob).await;
    befriend(&mut alice_a, &alice_jid, &mut bob_c, &bob_jid).await;
    alice_a
        .send(&format!("<iq type='set' id='watch'><subscribe xmlns='https://connectycube.com/protocol/status_streaming' user_jid='{bob_jid}' enable='true'/></iq>"))
        .await;
    alice_a.until(|e| e.attr("id") == Some("watch")).await;

    let killed = std::time::Instant::now();
    c.kill().await;
    alice_a
        .until(|e| is_presence_from(e, &format!("{bob_jid}/"), Some("unavailable")))
        .await;
    let push = alice_a
        .until(|e| e.name == "iq" && e.attr("from") == Some(bob_jid.as_str()))
        .await;
    assert!(push.child_named("query").is_some(), "{}", push.to_xml());
    assert!(
        killed.elapsed() < Duration::from_secs(30),
        "took {:?}",
        killed.elapsed()
    );
    drop(bob_c);
    a.stop().await;
}

/// A node is `kill -9`ed with a user in a room: the room's occupants on the surviving node see
/// that user leave (XEP-0045 unavailable presence from the room) once the node is taken as gone.
#[tokio::test]
async fn a_killed_nodes_room_occupants_leave_the_room_elsewhere() {
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_confab"));
    let Some(KillableCluster {
        a,
        mut c,
        nats: _nats,
        dir: _dir,
    }) = killable_cluster("confab_node_loss", "room", bin).await
    else {
        return;
    };
    let (alice, at) = a.user("alice").await;
    let (bob, bt) = a.user("bob").await;
    let dialog = a.group(&at, &[bob]).await;
    let room = format!("{}_{dialog}@muc.localhost", a.app_id);
    let join = |user: i64| {
        format!(
            "<presence to='{room}/{user}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
        )
    };
    let mut alice_a = online(&a, alice, &at).await;
    alice_a.send(&join(alice)).await;
    alice_a
        .until(|e| is_presence_from(e, &format!("{room}/{alice}"), None))
        .await;
    let mut bob_c = online_at(c.xmpp, a.app_id, bob, &bt).await;
    bob_c.send(&join(bob)).await;
    bob_c
        .until(|e| is_presence_from(e, &format!("{room}/{bob}"), None))
        .await;
    alice_a
        .until(|e| is_presence_from(e, &format!("{room}/{bob}"), None))
        .await;

    c.kill().await;
    let left = tokio::time::timeout(
        Duration::from_secs(20),
        alice_a.until(|e| is_presence_from(e, &format!("{room}/{bob}"), Some("unavailable"))),
    )
    .await
    .expect("bob's leave presence after node C died");
    assert!(
        left.child("x", "http://jabber.org/protocol/muc#user")
            .is_some(),
        "{}",
        left.to_xml()
    );
    drop(bob_c);
    a.stop().await;
}

/// A node killed and started again under the same `node_id` (before anyone took it as gone)
/// releases what its previous run had claimed: the user gets those messages at the next login.
#[tokio::test]
async fn a_node_restarted_under_its_name_releases_its_previous_claims() {
    let Some((nats, database_url, a)) = common::postgres::first_node("confab_node_loss", |c| {
        c.node_id = Some("again-a".into());
        // Nobody takes the killed node as gone during this test.
        c.node_timeout_secs = 60;
    })
    .await
    else {
        return;
    };
    let url = nats.url();
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("CONFAB_DATABASE_URL", database_url.as_str()),
        ("CONFAB_NATS_URL", url.as_str()),
        ("CONFAB_NODE_ID", "again-c"),
        ("CONFAB_NODE_TIMEOUT_SECS", "60"),
    ];
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_confab"));
    let mut c = ConfabProcess::serve(bin, dir.path(), &env).await;
    let (alice, at) = a.user("alice").await;
    let (bob, bt) = a.user("bob").await;
    let mut alice_a = online(&a, alice, &at).await;
    for id in ["r1", "r2"] {
        alice_a
            .send(&format!(
                "<message to='{}' type='chat' id='{id}'><body>{id}</body></message>",
                jid(&a, bob)
            ))
            .await;
    }
    for _ in 0..200 {
        if offline_rows(&a, bob).await == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let mut bob_c = XmppClient::tcp(c.xmpp).await;
    bob_c.login(bob, a.app_id, &bt).await;
    bob_c.send("<enable xmlns='urn:xmpp:sm:3'/>").await;
    bob_c.until(|e| e.name == "enabled").await;
    bob_c.send("<presence/>").await;
    for _ in 0..2 {
        body_of_next_message(&mut bob_c).await;
    }
    c.kill().await;
    drop(bob_c);

    let c = ConfabProcess::serve(bin, dir.path(), &env).await;
    let mut bob_again = online_at(c.xmpp, a.app_id, bob, &bt).await;
    let mut got = Vec::new();
    for _ in 0..2 {
        got.push(body_of_next_message(&mut bob_again).await.1);
    }
    assert_eq!(got, ["r1", "r2"]);
    bob_again.nothing_for(Duration::from_millis(300)).await;
    a.stop().await;
}

async fn online_at(addr: std::net::SocketAddr, app: i64, id: i64, token: &str) -> XmppClient {
    let mut c = XmppClient::tcp(addr).await;
    c.login(id, app, token).await;
    c.send("<presence/>").await;
    c
}

/// A network partition: node B loses the bus (its connection breaks, new ones are refused) while
/// its clients stay connected. Node A takes it as gone after the node timeout: Bob's contacts see
/// him go, and what Alice sends meanwhile is stored offline. When the partition heals, B rejoins by
/// itself, Bob is back for his contacts, and his open session gets every message stored
/// meanwhile, each once.
#[tokio::test]
async fn a_node_cut_off_from_the_bus_rejoins_and_loses_nothing() {
    use common::nats::NatsServer;
    use common::proxy::CuttableProxy;
    let nats = NatsServer::start().await;
    let url = nats.url();
    let target: std::net::SocketAddr = url.trim_start_matches("nats://").parse().unwrap();
    let proxy = CuttableProxy::start(target).await;
    let a = TestServer::start_with(|c| {
        c.nats_url = Some(url.clone());
        c.node_id = Some("node-a".into());
        c.node_timeout_secs = 2;
    })
    .await;
    let b = a
        .another_node(|c| {
            c.nats_url = Some(format!("nats://{}", proxy.addr()));
            c.node_id = Some("node-b".into());
            c.node_timeout_secs = 2;
        })
        .await;
    let (alice, at) = a.user("alice").await;
    let (bob, bt) = a.user("bob").await;
    let (alice_jid, bob_jid) = (jid(&a, alice), jid(&a, bob));
    let mut alice_a = online(&a, alice, &at).await;
    let mut bob_b = online(&b, bob, &bt).await;
    seen_elsewhere(&a, bob).await;
    befriend(&mut alice_a, &alice_jid, &mut bob_b, &bob_jid).await;

    proxy.cut();
    // Bob's contacts on A see him go once B is taken as gone.
    alice_a
        .until(|e| is_presence_from(e, &format!("{bob_jid}/"), Some("unavailable")))
        .await;
    // A takes B as gone once B is silent for the node timeout.
    let deadline = std::time::Instant::now() + Duration::from_secs(8);
    let cluster = a.server.as_ref().unwrap().xmpp.cluster.clone();
    let (app, bob_id) = (
        confab_core::AppId::new(a.app_id).unwrap(),
        confab_core::UserId::new(bob).unwrap(),
    );
    while !cluster.nodes_with(app, bob_id).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "B was never taken as gone"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for n in 0..3 {
        alice_a
            .send(&format!(
                "<message to='{}' type='chat' id='cut{n}'><body>cut {n}</body></message>",
                jid(&a, bob)
            ))
            .await;
    }
    // Stored offline by A: it has no node for Bob.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while offline_rows(&a, bob).await < 3 {
        assert!(std::time::Instant::now() < deadline, "not stored offline");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    proxy.restore();
    seen_elsewhere(&a, bob).await;
    // ...and come back once the partition heals.
    alice_a
        .until(|e| is_presence_from(e, &format!("{bob_jid}/"), None))
        .await;
    let mut received = std::collections::BTreeSet::new();
    while received.len() < 3 {
        match bob_b.next_within(Duration::from_secs(10)).await {
            Some(StreamEvent::Element(m)) if m.name == "message" => {
                if let Some(body) = m.child_named("body") {
                    assert!(received.insert(body.text()), "{} twice", body.text());
                }
            }
            Some(_) => {}
            None => panic!("{} of 3 stored messages reached Bob", received.len()),
        }
    }
    // Live delivery across the healed partition, and nothing more of the stored ones.
    alice_a
        .send(&format!(
            "<message to='{}' type='chat' id='healed'><body>healed</body></message>",
            jid(&a, bob)
        ))
        .await;
    let (m, body) = body_of_next_message(&mut bob_b).await;
    assert_eq!(body, "healed");
    assert!(m.child("delay", "urn:xmpp:delay").is_none(), "live: {m:?}");
    b.stop().await;
    a.stop().await;
}
