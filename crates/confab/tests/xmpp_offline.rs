//! Offline messages are not lost between hand-out and receipt: they stay stored (claimed by the
//! session) until the client acknowledges them with XEP-0198 `<a h/>`, or, without stream management,
//! until they were written. Unconfirmed claims are released at the session's end and at server start.

use confab_testkit as common;

use std::collections::HashSet;

use common::db::Arg;
use common::xmpp::XmppClient;
use common::TestServer;
use confab_core::{AppId, UserId};
use confab_xmpp::xml::Element;

const NS_SM: &str = "urn:xmpp:sm:3";

async fn connect(ts: &TestServer, id: i64, secret: &str) -> XmppClient {
    let mut c = XmppClient::tcp(ts.xmpp_addr()).await;
    c.login(id, ts.app_id, secret).await;
    c
}

async fn connect_ws(ts: &TestServer, id: i64, secret: &str) -> XmppClient {
    let mut c = XmppClient::ws(ts.http_addr()).await;
    c.login(id, ts.app_id, secret).await;
    c
}

/// A ping round trip: everything the server sent before the reply has been read.
async fn sync(c: &mut XmppClient) -> Vec<Element> {
    c.send("<iq type='get' id='sync' to='localhost' xmlns='jabber:client'><ping xmlns='urn:xmpp:ping'/></iq>")
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

/// Enables XEP-0198; the stanza count `h` starts now.
async fn enable_sm(c: &mut XmppClient) {
    c.send(&format!("<enable xmlns='{NS_SM}'/>")).await;
    let e = c.element().await;
    assert!(e.is("enabled", NS_SM), "{}", e.to_xml());
}

fn is_stanza(e: &Element) -> bool {
    matches!(e.name.as_str(), "message" | "presence" | "iq")
}

/// A ping round trip under XEP-0198: adds every stanza received to `h`, as a client must. Offline
/// messages come with an `<r/>` after them.
async fn sync_sm(c: &mut XmppClient, h: &mut u32) -> Vec<Element> {
    let got = sync(c).await;
    *h += got.iter().filter(|e| is_stanza(e)).count() as u32 + 1;
    if !offline_ids(&got).is_empty() {
        assert!(
            got.last().unwrap().is("r", NS_SM),
            "<r/> after offline messages"
        );
    }
    got
}

/// Ids of the delayed (offline) messages among `els`.
fn offline_ids(els: &[Element]) -> Vec<String> {
    els.iter()
        .filter(|e| e.name == "message" && e.child("delay", "urn:xmpp:delay").is_some())
        .map(|e| e.attr("id").unwrap_or("").to_string())
        .collect()
}

async fn send_chat(c: &mut XmppClient, to: &str, ids: &[&str]) {
    for id in ids {
        c.send(&format!(
            "<message to='{to}' type='chat' id='{id}'><body>text {id}</body></message>"
        ))
        .await;
    }
    sync(c).await;
}

/// `w` watches `bare`'s status (ConnectyCube status streaming), to learn when its sessions are gone.
async fn watch(w: &mut XmppClient, bare: &str) {
    w.send(&format!("<iq type='set' id='watch'><subscribe xmlns='https://connectycube.com/protocol/status_streaming' user_jid='{bare}' enable='true'/></iq>")).await;
    w.until(|e| e.attr("id") == Some("watch")).await;
}

/// Waits for the next status push about `bare`: sent once its last session was fully ended.
async fn status_push(w: &mut XmppClient, bare: &str) {
    w.until(|e| e.name == "iq" && e.attr("from") == Some(bare))
        .await;
}

struct Pair {
    ts: TestServer,
    alice: XmppClient,
    alice_id: i64,
    bob: i64,
    bob_token: String,
    bob_bare: String,
}

async fn pair(ts: TestServer) -> Pair {
    let (alice_id, at) = ts.user("alice").await;
    let (bob, bob_token) = ts.user("bob").await;
    let bob_bare = format!("{bob}-{}@localhost", ts.app_id);
    let mut alice = connect(&ts, alice_id, &at).await;
    watch(&mut alice, &bob_bare).await;
    Pair {
        ts,
        alice,
        alice_id,
        bob,
        bob_token,
        bob_bare,
    }
}

impl Pair {
    /// Restarts the server on the same data directory; alice reconnects and watches bob again.
    async fn restart(&mut self) {
        self.ts.restart().await;
        self.bob_token = self.ts.login("bob").await;
        let at = self.ts.login("alice").await;
        self.alice = connect(&self.ts, self.alice_id, &at).await;
        watch(&mut self.alice, &self.bob_bare).await;
    }

    async fn bob(&self, ws: bool) -> XmppClient {
        if ws {
            connect_ws(&self.ts, self.bob, &self.bob_token).await
        } else {
            connect(&self.ts, self.bob, &self.bob_token).await
        }
    }

    /// Bob logs in with stream management and initial presence; returns his client, `h` and the ids
    /// of the offline messages he got.
    async fn bob_sm(&mut self, ws: bool) -> (XmppClient, u32, Vec<String>) {
        let mut b = self.bob(ws).await;
        status_push(&mut self.alice, &self.bob_bare).await;
        enable_sm(&mut b).await;
        b.send("<presence xmlns='jabber:client'/>").await;
        let mut h = 0;
        let got = sync_sm(&mut b, &mut h).await;
        (b, h, offline_ids(&got))
    }

    /// Bob logs in without stream management; returns the offline messages' ids.
    async fn bob_plain(&mut self) -> (XmppClient, Vec<String>) {
        let mut b = self.bob(false).await;
        status_push(&mut self.alice, &self.bob_bare).await;
        b.send("<presence/>").await;
        let got = sync(&mut b).await;
        (b, offline_ids(&got))
    }

    /// Drops `b` without closing the stream or acking, and waits until the server ended the session.
    async fn drop_bob(&mut self, b: XmppClient) {
        drop(b);
        status_push(&mut self.alice, &self.bob_bare).await;
    }

    async fn close_bob(&mut self, mut b: XmppClient) {
        b.close().await;
        status_push(&mut self.alice, &self.bob_bare).await;
    }
}

async fn sm_unacked_come_again_until_acked(ws: bool) {
    let mut p = pair(TestServer::start().await).await;
    let to = p.bob_bare.clone();
    send_chat(&mut p.alice, &to, &["o1", "o2"]).await;

    // Handed out, never acknowledged, connection lost: they come again, still with <delay/>.
    let (b, _, ids) = p.bob_sm(ws).await;
    assert_eq!(ids, ["o1", "o2"]);
    p.drop_bob(b).await;
    let (mut b, h, ids) = p.bob_sm(ws).await;
    assert_eq!(ids, ["o1", "o2"], "redelivered after an abrupt disconnect");

    // Acknowledged: gone for good.
    b.send(&format!("<a xmlns='{NS_SM}' h='{h}'/>")).await;
    p.close_bob(b).await;
    let (b, _, ids) = p.bob_sm(ws).await;
    assert!(ids.is_empty(), "acked messages are deleted: {ids:?}");
    p.close_bob(b).await;
    p.ts.stop().await;
}

#[tokio::test]
async fn sm_unacked_offline_messages_come_again_until_acked_tcp() {
    sm_unacked_come_again_until_acked(false).await;
}

#[tokio::test]
async fn sm_unacked_offline_messages_come_again_until_acked_ws() {
    sm_unacked_come_again_until_acked(true).await;
}

#[tokio::test]
async fn without_sm_offline_messages_come_once() {
    let mut p = pair(TestServer::start().await).await;
    let to = p.bob_bare.clone();
    send_chat(&mut p.alice, &to, &["o1", "o2"]).await;
    let (b, ids) = p.bob_plain().await;
    assert_eq!(ids, ["o1", "o2"]);
    // No acks without XEP-0198: a completed write is delivery, even if the client then vanishes.
    p.drop_bob(b).await;
    let (b, ids) = p.bob_plain().await;
    assert!(ids.is_empty(), "{ids:?}");
    // A stray <a/> without stream management is ignored.
    let mut b = b;
    b.send(&format!("<a xmlns='{NS_SM}' h='5'/>")).await;
    assert!(sync(&mut b).await.is_empty());
    p.close_bob(b).await;
    p.ts.stop().await;
}

#[tokio::test]
async fn every_outbound_stanza_counts_toward_the_ack() {
    let ts = TestServer::start_with(|c| c.xmpp_ping_interval_secs = 1).await;
    let mut p = pair(ts).await;
    let to = p.bob_bare.clone();
    send_chat(&mut p.alice, &to, &["o1", "o2"]).await;

    let mut b = p.bob(false).await;
    status_push(&mut p.alice, &p.bob_bare).await;
    enable_sm(&mut b).await;
    let mut h = 0;
    // Live messages from the queue (several per write over TCP).
    let live: Vec<String> = (0..5).map(|i| format!("l{i}")).collect();
    let live: Vec<&str> = live.iter().map(String::as_str).collect();
    send_chat(&mut p.alice, &b.jid.clone(), &live).await;
    // A silent client gets a server ping.
    let ping = loop {
        let e = b.element().await;
        h += u32::from(is_stanza(&e));
        if e.name == "iq" && e.attr("type") == Some("get") {
            break e;
        }
    };
    assert_eq!(h, 6, "5 live messages and the ping");
    b.send(&format!(
        "<iq type='result' id='{}' to='localhost'/>",
        ping.attr("id").unwrap()
    ))
    .await;
    // A direct reply.
    sync_sm(&mut b, &mut h).await;
    b.send("<presence/>").await;
    let got = sync_sm(&mut b, &mut h).await;
    assert_eq!(offline_ids(&got), ["o1", "o2"]);

    // Acking all but the last offline message (and the ping reply after it) confirms only o1.
    b.send(&format!("<a xmlns='{NS_SM}' h='{}'/>", h - 2)).await;
    sync(&mut b).await;
    p.drop_bob(b).await;
    let (mut b, h, ids) = p.bob_sm(false).await;
    assert_eq!(ids, ["o2"]);
    b.send(&format!("<a xmlns='{NS_SM}' h='{h}'/>")).await;
    p.close_bob(b).await;
    let (b, _, ids) = p.bob_sm(false).await;
    assert!(ids.is_empty(), "{ids:?}");
    p.close_bob(b).await;
    p.ts.stop().await;
}

#[tokio::test]
async fn claims_are_released_at_server_start() {
    let mut p = pair(TestServer::start().await).await;
    let to = p.bob_bare.clone();
    send_chat(&mut p.alice, &to, &["o1"]).await;

    // A server killed while a session held claims leaves them in the database.
    let claimed =
        p.ts.sql_execute(
            "UPDATE offline_messages SET claimed_by = 'killed' WHERE user_id = ?",
            &[Arg::Int(p.bob)],
        )
        .await;
    assert_eq!(claimed, 1);
    let (b, _, ids) = p.bob_sm(false).await;
    assert!(ids.is_empty(), "claimed rows are not handed out twice");
    p.close_bob(b).await;

    p.restart().await;
    let (b, _, ids) = p.bob_sm(false).await;
    assert_eq!(ids, ["o1"], "released at start");

    // Still claimed by a live session when the server stops: released as the session ends.
    p.restart().await;
    drop(b);
    let (b, _, ids) = p.bob_sm(false).await;
    assert_eq!(ids, ["o1"]);
    drop(b);
    p.ts.stop().await;
}

#[tokio::test]
async fn sessions_logging_in_at_once_never_share_a_row() {
    let mut p = pair(TestServer::start().await).await;
    let to = p.bob_bare.clone();
    let sent: Vec<String> = (0..40).map(|i| format!("o{i}")).collect();
    send_chat(
        &mut p.alice,
        &to,
        &sent.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await;
    for round in 0..3 {
        let mut b1 = p.bob(false).await;
        let mut b2 = p.bob(round % 2 == 1).await;
        let login = async |b: &mut XmppClient| {
            b.send("<presence xmlns='jabber:client'/>").await;
            offline_ids(&sync(b).await)
        };
        let (got1, got2) = tokio::join!(login(&mut b1), login(&mut b2));
        let one: HashSet<_> = got1.iter().collect();
        assert!(
            got2.iter().all(|id| !one.contains(id)),
            "both got a message"
        );
        let mut all: Vec<_> = got1.iter().chain(&got2).cloned().collect();
        all.sort_by_key(|id| id[1..].parse::<u32>().unwrap());
        if round == 0 {
            assert_eq!(all, sent, "none lost");
        } else {
            assert!(all.is_empty(), "delivered once without stream management");
        }
        drop((b1, b2));
    }
    p.ts.stop().await;
}

#[tokio::test]
async fn bad_acks_delete_nothing() {
    let mut p = pair(TestServer::start().await).await;
    let to = p.bob_bare.clone();
    send_chat(&mut p.alice, &to, &["o1"]).await;

    // Not a number: ignored, the stream goes on and the message stays unconfirmed.
    let (mut b, _, ids) = p.bob_sm(false).await;
    assert_eq!(ids, ["o1"]);
    for h in ["garbage", "-1", "4294967296", ""] {
        b.send(&format!("<a xmlns='{NS_SM}' h='{h}'/>")).await;
    }
    b.send(&format!("<a xmlns='{NS_SM}'/>")).await;
    assert!(sync(&mut b).await.is_empty());
    p.drop_bob(b).await;

    // More than was sent: the stream ends as XEP-0198 says, nothing is deleted.
    let (mut b, h, ids) = p.bob_sm(false).await;
    assert_eq!(ids, ["o1"]);
    b.send(&format!("<a xmlns='{NS_SM}' h='{}'/>", h + 1)).await;
    let e = b.until(|e| e.local_name() == "error").await;
    assert!(
        e.child("undefined-condition", "urn:ietf:params:xml:ns:xmpp-streams")
            .is_some(),
        "{}",
        e.to_xml()
    );
    let detail = e.child("handled-count-too-high", NS_SM).expect("detail");
    assert_eq!(detail.attr("h"), Some((h + 1).to_string().as_str()));
    assert_eq!(detail.attr("send-count"), Some(h.to_string().as_str()));
    status_push(&mut p.alice, &p.bob_bare).await;

    let (b, _, ids) = p.bob_sm(false).await;
    assert_eq!(ids, ["o1"], "still there");
    drop(b);
    p.ts.stop().await;
}

/// Reads live chat messages (and the `<r/>` after each write) until `n` arrived; returns their ids.
async fn live_messages(c: &mut XmppClient, n: usize, h: &mut u32) -> Vec<String> {
    let mut ids = Vec::new();
    while ids.len() < n {
        let e = c.element().await;
        *h += u32::from(is_stanza(&e));
        if e.name == "message" {
            assert!(e.child("delay", "urn:xmpp:delay").is_none(), "live");
            ids.push(e.attr("id").unwrap_or("").to_string());
        }
    }
    ids
}

async fn sm_unacked_live_messages_are_stored_at_the_end(ws: bool) {
    let mut p = pair(TestServer::start().await).await;
    let (mut b, mut h, ids) = p.bob_sm(ws).await;
    assert!(ids.is_empty());
    let to = p.bob_bare.clone();

    // Received live, acknowledged: gone.
    send_chat(&mut p.alice, &to, &["a1"]).await;
    assert_eq!(live_messages(&mut b, 1, &mut h).await, ["a1"]);
    b.until(|e| e.is("r", NS_SM)).await;
    b.send(&format!("<a xmlns='{NS_SM}' h='{h}'/>")).await;
    // Received live, never acknowledged, connection lost: stored, and delivered at the next login.
    send_chat(&mut p.alice, &to, &["l1", "l2"]).await;
    assert_eq!(live_messages(&mut b, 2, &mut h).await, ["l1", "l2"]);
    p.drop_bob(b).await;
    let (mut b, h, ids) = p.bob_sm(ws).await;
    assert_eq!(ids, ["l1", "l2"]);
    b.send(&format!("<a xmlns='{NS_SM}' h='{h}'/>")).await;
    p.close_bob(b).await;
    let (b, _, ids) = p.bob_sm(ws).await;
    assert!(ids.is_empty(), "{ids:?}");
    p.close_bob(b).await;
    p.ts.stop().await;
}

#[tokio::test]
async fn sm_unacked_live_messages_are_stored_at_the_end_tcp() {
    sm_unacked_live_messages_are_stored_at_the_end(false).await;
}

#[tokio::test]
async fn sm_unacked_live_messages_are_stored_at_the_end_ws() {
    sm_unacked_live_messages_are_stored_at_the_end(true).await;
}

#[tokio::test]
async fn live_messages_reaching_another_session_are_not_stored() {
    let mut p = pair(TestServer::start().await).await;
    let (mut b1, mut h1, _) = p.bob_sm(false).await;
    let mut b2 = p.bob(false).await;
    b2.send("<presence/>").await;
    sync(&mut b2).await;
    let to = p.bob_bare.clone();
    send_chat(&mut p.alice, &to, &["l1"]).await;
    assert_eq!(live_messages(&mut b1, 1, &mut h1).await, ["l1"]);
    assert_eq!(live_messages(&mut b2, 1, &mut 0).await, ["l1"]);
    // b1 never acks and vanishes; b2 has the message.
    drop(b1);
    p.close_bob(b2).await;
    let (b, _, ids) = p.bob_sm(false).await;
    assert!(ids.is_empty(), "{ids:?}");
    p.close_bob(b).await;
    p.ts.stop().await;
}

/// A client that stops reading fills its socket and then its queue: the server closes it (the
/// blocked write times out) and stores every message it never confirmed, in order, for the next
/// login. Nothing the sender sent is lost.
#[tokio::test]
async fn a_client_that_stops_reading_loses_no_message() {
    let ts = TestServer::start_with(|c| {
        c.xmpp_session_queue_len = 4;
        c.xmpp_ping_timeout_secs = 1;
        // The sender floods 43 MB on purpose; its input rates would only slow this test down.
        c.xmpp_max_stanzas_per_sec = 0;
        c.xmpp_max_bytes_per_sec = 0;
    })
    .await;
    let mut p = pair(ts).await;
    let (b, _, _) = p.bob_sm(false).await;
    let to = p.bob_bare.clone();
    let filler = "x".repeat(48 * 1024);
    let ids: Vec<String> = (0..900).map(|i| format!("s{i}")).collect();
    for id in &ids {
        p.alice
            .send(&format!(
                "<message to='{to}' type='chat' id='{id}'><body>{filler}</body></message>"
            ))
            .await;
    }
    // Every message was taken: no error comes back to the sender.
    let back = sync(&mut p.alice).await;
    assert!(
        back.iter().all(|e| e.attr("type") != Some("error")),
        "{}",
        back[0].to_xml()
    );
    // bob's session ends although his socket stays open (maybe already while alice synced).
    let bob_bare = p.bob_bare.clone();
    let is_push = |e: &Element| e.name == "iq" && e.attr("from") == Some(bob_bare.as_str());
    if !back.iter().any(is_push) {
        status_push(&mut p.alice, &p.bob_bare).await;
    }
    drop(b);
    let mut b = p.bob(false).await;
    status_push(&mut p.alice, &p.bob_bare).await;
    b.send("<presence/>").await;
    let got = sync(&mut b).await;
    assert_eq!(offline_ids(&got), ids, "every message, once, in order");
    p.close_bob(b).await;
    p.ts.stop().await;
}

/// A message stored offline after an online session already looked (it was on its way to storage
/// while the session logged in) is handed to that session at once, not at its next login. The
/// store call is the one routing uses, made directly to pin down that interleaving.
#[tokio::test]
async fn offline_messages_stored_after_login_reach_the_online_session() {
    let mut p = pair(TestServer::start().await).await;
    let (mut b, ids) = p.bob_plain().await;
    assert!(ids.is_empty());
    // A second session of bob without initial presence: it takes offline messages only then.
    let mut quiet = p.bob(false).await;
    sync(&mut quiet).await;

    let srv = p.ts.server.as_ref().unwrap().xmpp.clone();
    let bob = (
        AppId::new(p.ts.app_id).unwrap(),
        UserId::new(p.bob).unwrap(),
    );
    let from = format!("{}-{}@localhost/x", p.alice_id, p.ts.app_id);
    let xml = format!(
        "<message xmlns='jabber:client' from='{from}' to='{}' type='chat' id='late'><body>late</body></message>",
        p.bob_bare
    );
    let stored = confab_xmpp::message::store_offline(&srv, bob, &[(&xml, 1_700_000_000_000)])
        .await
        .unwrap();
    assert_eq!(stored, 1);
    let got = b.until(|e| e.name == "message").await;
    assert_eq!(got.attr("id"), Some("late"));
    let delay = got.child("delay", "urn:xmpp:delay").expect("<delay/>");
    assert_eq!(delay.attr("stamp"), Some("2023-11-14T22:13:20Z"));
    assert!(
        sync(&mut quiet).await.is_empty(),
        "not before initial presence"
    );

    // Delivered (written, no stream management): gone for the next logins.
    sync(&mut b).await;
    quiet.send("<presence/>").await;
    assert!(offline_ids(&sync(&mut quiet).await).is_empty());
    quiet.close().await;
    p.close_bob(b).await;
    let (b, ids) = p.bob_plain().await;
    assert!(ids.is_empty(), "{ids:?}");
    p.close_bob(b).await;
    p.ts.stop().await;
}

/// Offline messages a session took but never acknowledged go to another session of the user that
/// is online when it ends, not only to the next login.
#[tokio::test]
async fn released_offline_messages_reach_another_online_session() {
    let mut p = pair(TestServer::start().await).await;
    let to = p.bob_bare.clone();
    send_chat(&mut p.alice, &to, &["o1", "o2"]).await;
    let (b1, _, ids) = p.bob_sm(false).await;
    assert_eq!(ids, ["o1", "o2"]);
    let mut b2 = p.bob(false).await;
    b2.send("<presence/>").await;
    assert!(
        offline_ids(&sync(&mut b2).await).is_empty(),
        "claimed by b1"
    );
    drop(b1);
    let mut got = Vec::new();
    while got.len() < 2 {
        let e = b2.until(|e| e.name == "message").await;
        assert!(e.child("delay", "urn:xmpp:delay").is_some());
        got.push(e.attr("id").unwrap().to_string());
    }
    assert_eq!(got, ["o1", "o2"]);
    p.close_bob(b2).await;
    let (b, ids) = p.bob_plain().await;
    assert!(ids.is_empty(), "{ids:?}");
    p.close_bob(b).await;
    p.ts.stop().await;
}
