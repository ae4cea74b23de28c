//! A 1:1 chat message without `save_to_history` that goes straight to an online recipient is stored
//! nowhere, so the sender's XEP-0198 ack (`<a h/>`) waits until it is safe: the recipient's client
//! acknowledged it, or it was written to a recipient without stream management, or the recipient's
//! session stored it offline. A recipient that never acknowledges is disconnected after
//! `xmpp_ack_timeout_secs` and gets the message at its next login. A `kill -9` between the sender's
//! ack and the recipient's can no longer lose a message.

use confab_testkit as common;

use std::time::Duration;

use common::xmpp::XmppClient;
use common::TestServer;
use confab_xmpp::xml::Element;

const NS_SM: &str = "urn:xmpp:sm:3";

/// A logged-in client, available, with stream management when `sm`: the client, its bare JID and
/// how many stanzas it was sent since `<enabled/>` (what its `<a h/>` must count).
async fn client(ts: &TestServer, login: &str, sm: bool) -> (XmppClient, String, u32) {
    let (id, token) = ts.user(login).await;
    let mut c = XmppClient::tcp(ts.xmpp_addr()).await;
    c.login(id, ts.app_id, &token).await;
    if sm {
        c.enable_sm().await;
    }
    c.send("<presence/>").await;
    let received = c.sync_counting().await;
    (c, format!("{id}-{}@localhost", ts.app_id), received)
}

/// Sends a chat message and asks for an ack.
async fn send_chat(c: &mut XmppClient, to: &str, id: &str, history: bool) {
    let extra = if history {
        "<extraParams xmlns='jabber:client'><save_to_history>1</save_to_history></extraParams>"
    } else {
        ""
    };
    c.send(&format!(
        "<message to='{to}' type='chat' id='{id}'><body>text {id}</body>{extra}</message><r xmlns='{NS_SM}'/>"
    ))
    .await;
}

/// Reads until the chat message `id` arrives; returns it.
async fn message(c: &mut XmppClient, id: &str) -> Element {
    c.until(|e| e.name == "message" && e.attr("id") == Some(id))
        .await
}

#[tokio::test]
async fn the_senders_ack_waits_for_the_recipients() {
    let ts = TestServer::start().await;
    let (mut alice, _, _) = client(&ts, "alice", true).await;
    let (mut bob, bob_jid, mut bob_h) = client(&ts, "bob", true).await;

    send_chat(&mut alice, &bob_jid, "m1", false).await;
    message(&mut bob, "m1").await;
    bob_h += 1;
    assert_eq!(
        alice.sm_ack_within(Duration::from_millis(500)).await,
        None,
        "no ack before bob has the message"
    );
    bob.send(&format!("<a xmlns='{NS_SM}' h='{bob_h}'/>")).await;
    // alice sent presence and the sync ping, then the message: h covers all three.
    assert_eq!(alice.sm_ack_within(Duration::from_secs(5)).await, Some(3));

    // Saved to the history, a message is safe before delivery: acked at once.
    send_chat(&mut alice, &bob_jid, "m2", true).await;
    assert_eq!(alice.sm_ack_within(Duration::from_secs(5)).await, Some(4));
    message(&mut bob, "m2").await;
    ts.stop().await;
}

#[tokio::test]
async fn a_recipient_without_stream_management_confirms_by_reading() {
    let ts = TestServer::start().await;
    let (mut alice, _, _) = client(&ts, "alice", true).await;
    let (mut bob, bob_jid, _) = client(&ts, "bob", false).await;
    send_chat(&mut alice, &bob_jid, "m1", false).await;
    assert_eq!(alice.sm_ack_within(Duration::from_secs(5)).await, Some(3));
    message(&mut bob, "m1").await;
    ts.stop().await;
}

#[tokio::test]
async fn a_recipient_that_never_acks_is_closed_and_the_message_kept() {
    let ts = TestServer::start_with(|c| c.xmpp_ack_timeout_secs = 1).await;
    let (mut alice, _, _) = client(&ts, "alice", true).await;
    let (mut bob, bob_jid, _) = client(&ts, "bob", true).await;

    let started = std::time::Instant::now();
    send_chat(&mut alice, &bob_jid, "m1", false).await;
    message(&mut bob, "m1").await;
    assert_eq!(alice.sm_ack_within(Duration::from_millis(300)).await, None);
    // bob reads but never acks: the server gives up on him and stores the message offline; only
    // then is alice's message safe.
    bob.expect_stream_error("connection-timeout").await;
    assert_eq!(alice.sm_ack_within(Duration::from_secs(5)).await, Some(3));
    assert!(started.elapsed() >= Duration::from_millis(900));

    let id = bob_jid.split('-').next().unwrap().parse().unwrap();
    let token = ts.login("bob").await;
    let mut bob = XmppClient::tcp(ts.xmpp_addr()).await;
    bob.login(id, ts.app_id, &token).await;
    bob.send("<presence/>").await;
    let m = message(&mut bob, "m1").await;
    assert!(
        m.child("delay", "urn:xmpp:delay").is_some(),
        "delivered offline"
    );
    ts.stop().await;
}

#[tokio::test]
async fn a_recipient_that_acks_in_time_stays() {
    let ts = TestServer::start_with(|c| c.xmpp_ack_timeout_secs = 1).await;
    let (mut alice, _, _) = client(&ts, "alice", true).await;
    let (mut bob, bob_jid, mut bob_h) = client(&ts, "bob", true).await;
    for (n, id) in ["m1", "m2", "m3"].into_iter().enumerate() {
        send_chat(&mut alice, &bob_jid, id, false).await;
        message(&mut bob, id).await;
        bob_h += 1;
        tokio::time::sleep(Duration::from_millis(400)).await;
        bob.send(&format!("<a xmlns='{NS_SM}' h='{bob_h}'/>")).await;
        assert_eq!(
            alice.sm_ack_within(Duration::from_secs(5)).await,
            Some(3 + n as u32)
        );
    }
    // 1.2 s of traffic, each ack within the limit: bob is still connected.
    bob.sync_counting().await;
    ts.stop().await;
}
