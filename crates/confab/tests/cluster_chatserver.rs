//! The ChatServer face on two nodes of a cluster: a user's sockets on one node get the events of
//! what happens on the other (messages posted there, a logout there), as on one node.

mod chatserver_common;

use std::time::Duration;

use chatserver_common::*;
use confab_core::{AppId, UserId};
use confab_testkit::nats::NatsServer;
use confab_testkit::xmpp::XmppClient;
use reqwest::Method;
use serde_json::json;

/// Node A and node B, both serving the ChatServer face, on one store and a private NATS server.
async fn two_nodes() -> (NatsServer, Cs, Cs) {
    two_nodes_with(|_| {}).await
}

/// [`two_nodes`], with more configuration for node A.
async fn two_nodes_with(tweak_a: impl FnOnce(&mut confab::Config)) -> (NatsServer, Cs, Cs) {
    let nats = NatsServer::start().await;
    let url = nats.url();
    let a = Cs::start_with(|c| {
        c.nats_url = Some(url.clone());
        c.node_id = Some("cs-a".into());
        tweak_a(c);
    })
    .await;
    let ts =
        a.ts.another_node(|c| {
            c.nats_url = Some(url.clone());
            c.node_id = Some("cs-b".into());
        })
        .await;
    let base = ts.chatserver_base.clone().expect("face on");
    (nats, a, Cs { ts, base })
}

/// Waits until `node` knows that `user` has a session on another node.
async fn seen_elsewhere(node: &Cs, user: i64) {
    let cluster = node.ts.server.as_ref().unwrap().xmpp.cluster.clone();
    let (app, user) = (
        AppId::new(node.ts.app_id).unwrap(),
        UserId::new(user).unwrap(),
    );
    for _ in 0..200 {
        if !cluster.nodes_with(app, user).is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the other node's socket was never announced");
}

#[tokio::test]
async fn sockets_on_another_node_get_the_events() {
    let (_nats, a, b) = two_nodes().await;
    let alice = a.register("clusteral").await;
    let bob = a.register("clusterbo").await;
    let chat = a.chat(&alice.token, &[bob.id], None).await;
    let id = chat["id"].as_str().unwrap();
    // Bob's token, issued on node A, opens his socket on node B.
    let mut bob_b = b.socket(&bob.token, &format!("/{}", bob.session)).await;
    let mut alice_a = a.socket(&alice.token, &format!("/{}", alice.session)).await;
    seen_elsewhere(&a, bob.id).await;

    for n in 0..5 {
        a.post(&alice, id, &format!("from a {n}")).await;
    }
    for s in [&mut bob_b, &mut alice_a] {
        for n in 0..5 {
            let f = s.frame().await;
            assert_eq!(f["event"], "message");
            assert_eq!(
                f["payload"]["text"],
                json!(format!("from a {n}")),
                "in order"
            );
        }
    }
    // And the other way: posted on node B, heard on node A.
    b.post(&bob, id, "from b").await;
    for s in [&mut alice_a, &mut bob_b] {
        assert_eq!(s.frame().await["payload"]["text"], "from b");
    }

    // Bob's XMPP session on node B comes and goes: his socket there still counts as online.
    let cc_token = b.ts.login("clusterbo").await;
    let mut xmpp = XmppClient::tcp(b.ts.xmpp_addr()).await;
    xmpp.login(bob.id, b.ts.app_id, &cc_token).await;
    xmpp.close().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    a.post(&alice, id, "after xmpp left").await;
    alice_a.frame().await;
    assert_eq!(bob_b.frame().await["payload"]["text"], "after xmpp left");

    // A logout on node A closes Bob's socket on node B.
    let (s, v) = a
        .call(Method::POST, "/users/me/logout", Some(&bob.token), None)
        .await;
    assert!(s.is_success(), "{v}");
    assert!(bob_b.closed().await, "the socket on node B stays open");
}

/// Chat alerts skip a user whose socket is open on another node, as on one node: a message posted
/// on node A to Bob, whose socket is on node B, makes no alert (not even the webhook's copy);
/// once that socket is closed, the next one does.
#[tokio::test]
async fn a_socket_on_another_node_keeps_alerts_away() {
    use axum::routing::post;
    let (hook_tx, mut hook_rx) = tokio::sync::mpsc::unbounded_channel::<serde_json::Value>();
    let hook = axum::Router::new().route(
        "/hook",
        post(move |body: axum::body::Bytes| {
            let tx = hook_tx.clone();
            async move {
                let _ = tx.send(serde_json::from_slice(&body).unwrap_or_default());
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, hook).await.unwrap() });

    let (_nats, a, b) = two_nodes_with(|c| {
        c.push_webhook_url = Some(hook_url.clone());
        c.push_webhook_secret = Some("secret".into());
    })
    .await;
    let alice = a.register("alertsal").await;
    let bob = a.register("alertsbo").await;
    let chat = a.chat(&alice.token, &[bob.id], None).await;
    let id = chat["id"].as_str().unwrap();
    let mut bob_b = b.socket(&bob.token, &format!("/{}", bob.session)).await;
    seen_elsewhere(&a, bob.id).await;

    a.post(&alice, id, "are you there?").await;
    assert_eq!(bob_b.frame().await["payload"]["text"], "are you there?");
    let quiet = tokio::time::timeout(Duration::from_millis(1500), hook_rx.recv()).await;
    assert!(
        quiet.is_err(),
        "an alert for a user with a socket: {quiet:?}"
    );

    drop(bob_b);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let cluster = a.ts.server.as_ref().unwrap().xmpp.cluster.clone();
    let (app, bob_id) = (
        AppId::new(a.ts.app_id).unwrap(),
        UserId::new(bob.id).unwrap(),
    );
    while !cluster.nodes_with(app, bob_id).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the socket's end was never announced"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    a.post(&alice, id, "gone?").await;
    let alert = tokio::time::timeout(Duration::from_secs(2), hook_rx.recv())
        .await
        .expect("an alert within 2 s")
        .unwrap();
    assert_eq!(alert["user_id"], json!(bob.id), "{alert}");
    b.ts.stop().await;
}
