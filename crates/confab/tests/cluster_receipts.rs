//! Receipts across nodes: a 1:1 message (saved to history or not) to a user online on another
//! node counts toward its sender's XEP-0198 `h` only once that node says a copy is safe (the
//! recipient's client acknowledged it, or it was stored offline). When the recipient's node is
//! killed first, the sending node stores the message offline itself, and the recipient gets it
//! after reconnecting.

use std::time::Duration;

use common::cluster::{killable_cluster, seen_elsewhere, two_nodes, KillableCluster};
use common::xmpp::XmppClient;
use common::TestServer;
use confab_testkit as common;

const NS_SM: &str = "urn:xmpp:sm:3";

/// Logs in at `addr` with stream management and initial presence; returns the client and how many
/// stanzas it was sent since `<enabled/>` (what its `<a h/>` must count).
async fn with_sm(addr: std::net::SocketAddr, app: i64, id: i64, token: &str) -> (XmppClient, u32) {
    let mut c = XmppClient::tcp(addr).await;
    c.login(id, app, token).await;
    c.enable_sm().await;
    c.send("<presence/>").await;
    let n = c.sync_counting().await;
    (c, n)
}

async fn send_chat(c: &mut XmppClient, to: &str, id: &str) {
    c.send(&format!(
        "<message to='{to}' type='chat' id='{id}'><body>{id}</body></message><r xmlns='{NS_SM}'/>"
    ))
    .await;
}

/// Sends a chat message saved to the dialog's history.
async fn send_saved(c: &mut XmppClient, to: &str, id: &str) {
    c.send(&format!(
        "<message to='{to}' type='chat' id='{id}'><body>{id}</body>\
         <extraParams xmlns='jabber:client'><save_to_history>1</save_to_history></extraParams>\
         </message><r xmlns='{NS_SM}'/>"
    ))
    .await;
}

async fn message(c: &mut XmppClient, id: &str) -> confab_xmpp::xml::Element {
    c.until(|e| e.name == "message" && e.attr("id") == Some(id))
        .await
}

fn jid(ts: &TestServer, user: i64) -> String {
    format!("{user}-{}@localhost", ts.app_id)
}

#[tokio::test]
async fn the_senders_ack_waits_for_the_recipient_on_another_node() {
    let (_nats, a, b) = two_nodes().await;
    let (alice, at) = a.user("alice").await;
    let (bob, bt) = a.user("bob").await;
    let (mut alice_a, _) = with_sm(a.xmpp_addr(), a.app_id, alice, &at).await;
    let (mut bob_b, mut bob_h) = with_sm(b.xmpp_addr(), a.app_id, bob, &bt).await;
    seen_elsewhere(&a, bob).await;

    send_chat(&mut alice_a, &jid(&a, bob), "m1").await;
    message(&mut bob_b, "m1").await;
    bob_h += 1;
    assert_eq!(
        alice_a.sm_ack_within(Duration::from_millis(500)).await,
        None,
        "no ack before bob's client has it"
    );
    bob_b
        .send(&format!("<a xmlns='{NS_SM}' h='{bob_h}'/>"))
        .await;
    // alice's presence, her sync ping and the message.
    assert_eq!(alice_a.sm_ack_within(Duration::from_secs(5)).await, Some(3));
    b.stop().await;
    a.stop().await;
}

/// The recipient's node dies while its client has not acknowledged the messages: the sending node
/// hears that the node is gone, stores them offline, and only then acknowledges them. A message
/// saved to history is no exception: the history is no delivery, so it must reach bob over XMPP too.
#[tokio::test]
async fn a_message_unacknowledged_on_a_killed_node_is_stored_by_the_sender() {
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_confab"));
    let Some(KillableCluster {
        a,
        mut c,
        nats: _nats,
        dir: _dir,
    }) = killable_cluster("confab_receipts", "receipt", bin).await
    else {
        return;
    };
    let (alice, at) = a.user("alice").await;
    let (bob, bt) = a.user("bob").await;
    let (mut alice_a, _) = with_sm(a.xmpp_addr(), a.app_id, alice, &at).await;
    let (mut bob_c, _) = with_sm(c.xmpp, a.app_id, bob, &bt).await;
    seen_elsewhere(&a, bob).await;

    send_chat(&mut alice_a, &jid(&a, bob), "m1").await;
    message(&mut bob_c, "m1").await;
    send_saved(&mut alice_a, &jid(&a, bob), "m2").await;
    message(&mut bob_c, "m2").await;
    assert_eq!(
        alice_a.sm_ack_within(Duration::from_millis(300)).await,
        None
    );
    c.kill().await;
    drop(bob_c);
    // alice's presence, her sync ping and the two messages.
    assert_eq!(
        alice_a.sm_ack_within(Duration::from_secs(20)).await,
        Some(4),
        "acknowledged once node A stored them"
    );
    let mut bob_a = XmppClient::tcp(a.xmpp_addr()).await;
    bob_a.login(bob, a.app_id, &bt).await;
    bob_a.send("<presence/>").await;
    for id in ["m1", "m2"] {
        let m = message(&mut bob_a, id).await;
        assert!(m.child("delay", "urn:xmpp:delay").is_some(), "{id} offline");
    }
    a.stop().await;
}
