//! Privacy lists in group dialogs: a user blocked by a default privacy list receives nothing from
//! the blocker in a group, and a blocker receives nothing from the user they blocked.

use confab_testkit as common;

use common::xmpp::XmppClient;
use common::TestServer;
use reqwest::Method;
use serde_json::json;

async fn online(ts: &TestServer, id: i64, token: &str) -> XmppClient {
    let mut c = XmppClient::tcp(ts.xmpp_addr()).await;
    c.login(id, ts.app_id, token).await;
    c.send("<presence/>").await;
    c
}

/// Sets a default list on `c` that denies messages from `blocked`.
async fn block(c: &mut XmppClient, ts: &TestServer, blocked: i64) {
    let jid = format!("{blocked}-{}@localhost", ts.app_id);
    c.send(&format!(
        "<iq type='set' id='pl'><query xmlns='jabber:iq:privacy'><list name='bl'>\
         <item type='jid' value='{jid}' action='deny' order='1'><message/><presence-in/></item>\
         </list></query></iq>"
    ))
    .await;
    let r = c.until(|e| e.attr("id") == Some("pl")).await;
    assert_eq!(r.attr("type"), Some("result"));
    c.send(
        "<iq type='set' id='pd'><query xmlns='jabber:iq:privacy'><default name='bl'/></query></iq>",
    )
    .await;
    let r = c.until(|e| e.attr("id") == Some("pd")).await;
    assert_eq!(r.attr("type"), Some("result"));
}

/// Everything up to a ping reply; returns the ids of the messages seen.
async fn drain(c: &mut XmppClient) -> Vec<String> {
    c.send("<iq type='get' id='sync' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    let mut ids = Vec::new();
    loop {
        let e = c.element().await;
        if e.attr("id") == Some("sync") {
            return ids;
        }
        if e.name == "message" {
            ids.extend(e.attr("id").map(str::to_string));
        }
    }
}

#[tokio::test]
async fn blocked_users_get_nothing_from_the_blocker_in_groups() {
    let ts = TestServer::start().await;
    let (alice, at) = ts.user("alice").await;
    let (bob, bt) = ts.user("bob").await;
    let (carol, ct) = ts.user("carol").await;
    let (_, g) = ts
        .call(
            Method::POST,
            "/chat/Dialog.json",
            Some(&at),
            Some(json!({"type": 2, "name": "G", "occupants_ids": [bob, carol]})),
        )
        .await;
    let room = format!("{}_{}@muc.localhost", ts.app_id, g["_id"].as_str().unwrap());
    let mut a = online(&ts, alice, &at).await;
    let mut b = online(&ts, bob, &bt).await;
    let mut c = online(&ts, carol, &ct).await;

    // Alice blocks Bob: Bob receives nothing from Alice in the group; Carol still does.
    block(&mut a, &ts, bob).await;
    a.send(&format!(
        "<message to='{room}' type='groupchat' id='g1'><body>hello</body></message>"
    ))
    .await;
    c.until(|e| e.name == "message" && e.attr("id") == Some("g1"))
        .await;
    assert!(
        !drain(&mut b).await.contains(&"g1".to_string()),
        "the blocked user got the blocker's group message"
    );
    // The sender still sees the reflection.
    assert!(drain(&mut a).await.contains(&"g1".to_string()));

    // Carol blocks Bob: she receives nothing from him in the group; Alice (who blocked him too) neither.
    block(&mut c, &ts, bob).await;
    b.send(&format!(
        "<message to='{room}' type='groupchat' id='g2'><body>hi all</body></message>"
    ))
    .await;
    assert!(
        drain(&mut b).await.contains(&"g2".to_string()),
        "no error for the blocked sender, only silence"
    );
    assert!(!drain(&mut c).await.contains(&"g2".to_string()));
    assert!(!drain(&mut a).await.contains(&"g2".to_string()));
    ts.stop().await;
}
