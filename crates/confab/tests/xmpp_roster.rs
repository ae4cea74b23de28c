//! RFC 6121 contact lists over real sockets: roster get/set/remove with pushes, the subscription
//! handshake both ways, presence broadcast and probes, offline subscription requests, the contact limit.

use confab_testkit as common;

use common::xmpp::{Transport, XmppClient};
use common::TestServer;
use confab_xmpp::xml::Element;

fn jid(ts: &TestServer, id: i64) -> String {
    format!("{id}-{}@localhost", ts.app_id)
}

async fn login(ts: &TestServer, t: Transport, id: i64) -> XmppClient {
    let mut c = XmppClient::over(ts, t).await;
    c.login(id, ts.app_id, "password1").await;
    c
}

async fn iq(c: &mut XmppClient, id: &str, xml: &str) -> Element {
    c.send(xml).await;
    c.until(|e| e.name == "iq" && e.attr("id") == Some(id))
        .await
}

/// Fetches the roster (which also subscribes the session to roster pushes): `(jid, subscription, ask)`.
async fn roster(c: &mut XmppClient, id: &str) -> Vec<(String, String, Option<String>)> {
    let r = iq(
        c,
        id,
        &format!("<iq type='get' id='{id}'><query xmlns='jabber:iq:roster'/></iq>"),
    )
    .await;
    assert_eq!(r.attr("type"), Some("result"), "{}", r.to_xml());
    r.child_named("query")
        .unwrap()
        .elements()
        .map(|i| {
            (
                i.attr("jid").unwrap().to_string(),
                i.attr("subscription").unwrap().to_string(),
                i.attr("ask").map(str::to_string),
            )
        })
        .collect()
}

async fn presence_from(c: &mut XmppClient, from_prefix: &str, typ: Option<&str>) -> Element {
    c.until(|e| {
        e.name == "presence"
            && e.attr("from").is_some_and(|f| f.starts_with(from_prefix))
            && e.attr("type") == typ
    })
    .await
}

async fn push_for(c: &mut XmppClient, contact: &str, subscription: &str) -> Element {
    c.until(|e| {
        e.name == "iq"
            && e.attr("type") == Some("set")
            && e.child_named("query")
                .and_then(|q| q.child_named("item"))
                .is_some_and(|i| {
                    i.attr("jid") == Some(contact) && i.attr("subscription") == Some(subscription)
                })
    })
    .await
}

async fn subscriptions_both_ways_then_presence_flows(t: Transport) {
    let ts = TestServer::start().await;
    let alice = ts.signup("alice").await;
    let bob = ts.signup("bob").await;
    let (aj, bj) = (jid(&ts, alice), jid(&ts, bob));
    let mut a = login(&ts, t, alice).await;
    let mut b = login(&ts, t, bob).await;
    assert!(roster(&mut a, "r0").await.is_empty());
    roster(&mut b, "r0").await;
    a.send("<presence/>").await;
    b.send("<presence><status>here</status></presence>").await;

    // Roster set with name and group: result and a push.
    let r = iq(&mut a, "s1", &format!("<iq type='set' id='s1'><query xmlns='jabber:iq:roster'><item jid='{bj}' name='Bob'><group>Friends</group></item></query></iq>")).await;
    assert_eq!(r.attr("type"), Some("result"), "{}", r.to_xml());
    let p = push_for(&mut a, &bj, "none").await;
    let item = p.child_named("query").unwrap().child_named("item").unwrap();
    assert_eq!(item.attr("name"), Some("Bob"));
    assert_eq!(item.child_named("group").unwrap().text(), "Friends");

    // alice asks to see bob's presence.
    a.send(&format!("<presence to='{bj}' type='subscribe'/>"))
        .await;
    let p = push_for(&mut a, &bj, "none").await;
    let item = p.child_named("query").unwrap().child_named("item").unwrap();
    assert_eq!(item.attr("ask"), Some("subscribe"));
    let req = presence_from(&mut b, &aj, Some("subscribe")).await;
    assert_eq!(
        req.attr("from"),
        Some(aj.as_str()),
        "subscription stanzas come from the bare JID"
    );

    // bob approves: alice sees "to", gets "subscribed" and bob's current presence.
    b.send(&format!("<presence to='{aj}' type='subscribed'/>"))
        .await;
    push_for(&mut b, &aj, "from").await;
    push_for(&mut a, &bj, "to").await;
    presence_from(&mut a, &bj, Some("subscribed")).await;
    let live = presence_from(&mut a, &format!("{bj}/"), None).await;
    assert_eq!(live.child_named("status").unwrap().text(), "here");
    assert_eq!(
        roster(&mut a, "r1").await,
        vec![(bj.clone(), "to".into(), None)]
    );

    // And back: bob subscribes to alice, alice approves → both.
    b.send(&format!("<presence to='{aj}' type='subscribe'/>"))
        .await;
    presence_from(&mut a, &bj, Some("subscribe")).await;
    a.send(&format!("<presence to='{bj}' type='subscribed'/>"))
        .await;
    presence_from(&mut b, &aj, Some("subscribed")).await;
    presence_from(&mut b, &format!("{aj}/"), None).await;
    assert_eq!(
        roster(&mut a, "r2").await,
        vec![(bj.clone(), "both".into(), None)]
    );
    assert_eq!(
        roster(&mut b, "r2").await,
        vec![(aj.clone(), "both".into(), None)]
    );

    // Presence updates and unavailable reach the contact.
    a.send("<presence><show>away</show></presence>").await;
    let p = presence_from(&mut b, &format!("{aj}/"), None).await;
    assert_eq!(p.child_named("show").unwrap().text(), "away");
    a.close().await;
    presence_from(&mut b, &format!("{aj}/"), Some("unavailable")).await;

    // At alice's next initial presence she gets bob's presence (probe result), and bob hers.
    let mut a = login(&ts, t, alice).await;
    a.send("<presence/>").await;
    let p = presence_from(&mut a, &format!("{bj}/"), None).await;
    assert_eq!(p.attr("to"), Some(a.jid.as_str()));
    presence_from(&mut b, &format!("{aj}/"), None).await;
    ts.stop().await;
}

async fn offline_request_arrives_at_login_and_can_be_rejected(t: Transport) {
    let ts = TestServer::start().await;
    let alice = ts.signup("alice").await;
    let bob = ts.signup("bob").await;
    let (aj, bj) = (jid(&ts, alice), jid(&ts, bob));
    let mut a = login(&ts, t, alice).await;
    roster(&mut a, "r0").await;
    a.send("<presence/>").await;
    a.send(&format!("<presence to='{bj}' type='subscribe'/>"))
        .await;
    push_for(&mut a, &bj, "none").await;

    // bob was offline; the request waits for his initial presence (and is not in his roster).
    let mut b = login(&ts, t, bob).await;
    assert!(roster(&mut b, "r0").await.is_empty());
    b.send("<presence/>").await;
    presence_from(&mut b, &aj, Some("subscribe")).await;

    // bob rejects.
    b.send(&format!("<presence to='{aj}' type='unsubscribed'/>"))
        .await;
    presence_from(&mut a, &bj, Some("unsubscribed")).await;
    assert_eq!(
        roster(&mut a, "r1").await,
        vec![(bj.clone(), "none".into(), None)]
    );

    // The rejected request is gone: not delivered again at bob's next login.
    b.close().await;
    let mut b = login(&ts, t, bob).await;
    b.send("<presence/>").await;
    b.send("<iq type='get' id='sync' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    let e = b
        .until(|e| e.attr("id") == Some("sync") || e.attr("type") == Some("subscribe"))
        .await;
    assert_eq!(
        e.attr("id"),
        Some("sync"),
        "request delivered again: {}",
        e.to_xml()
    );
    ts.stop().await;
}

async fn roster_remove_cancels_both_subscriptions(t: Transport) {
    let ts = TestServer::start().await;
    let alice = ts.signup("alice").await;
    let bob = ts.signup("bob").await;
    let (aj, bj) = (jid(&ts, alice), jid(&ts, bob));
    let mut a = login(&ts, t, alice).await;
    let mut b = login(&ts, t, bob).await;
    roster(&mut a, "r0").await;
    roster(&mut b, "r0").await;
    a.send("<presence/>").await;
    b.send("<presence/>").await;
    for (x, xj, y, yj) in [(&mut a, &aj, &mut b, &bj)] {
        x.send(&format!("<presence to='{yj}' type='subscribe'/>"))
            .await;
        presence_from(y, xj, Some("subscribe")).await;
        y.send(&format!("<presence to='{xj}' type='subscribed'/>"))
            .await;
        presence_from(x, yj, Some("subscribed")).await;
        y.send(&format!("<presence to='{xj}' type='subscribe'/>"))
            .await;
        presence_from(x, yj, Some("subscribe")).await;
        x.send(&format!("<presence to='{yj}' type='subscribed'/>"))
            .await;
        presence_from(y, xj, Some("subscribed")).await;
    }
    assert_eq!(
        roster(&mut b, "r1").await,
        vec![(aj.clone(), "both".into(), None)]
    );

    let r = iq(&mut a, "rm", &format!("<iq type='set' id='rm'><query xmlns='jabber:iq:roster'><item jid='{bj}' subscription='remove'/></query></iq>")).await;
    assert_eq!(r.attr("type"), Some("result"), "{}", r.to_xml());
    push_for(&mut a, &bj, "remove").await;
    presence_from(&mut b, &aj, Some("unsubscribe")).await;
    presence_from(&mut b, &aj, Some("unsubscribed")).await;
    assert!(roster(&mut a, "r2").await.is_empty());
    assert_eq!(
        roster(&mut b, "r2").await,
        vec![(aj.clone(), "none".into(), None)]
    );

    // Removing again: item-not-found.
    let r = iq(&mut a, "rm2", &format!("<iq type='set' id='rm2'><query xmlns='jabber:iq:roster'><item jid='{bj}' subscription='remove'/></query></iq>")).await;
    assert_eq!(r.attr("type"), Some("error"));
    ts.stop().await;
}

async fn contact_limit_is_enforced(t: Transport) {
    let ts = TestServer::start_with(|c| c.xmpp_max_contacts = 2).await;
    let alice = ts.signup("alice").await;
    let others = [
        ts.signup("u1").await,
        ts.signup("u2").await,
        ts.signup("u3").await,
    ];
    let mut a = login(&ts, t, alice).await;
    for (n, u) in others.iter().enumerate() {
        let id = format!("s{n}");
        let r = iq(&mut a, &id, &format!("<iq type='set' id='{id}'><query xmlns='jabber:iq:roster'><item jid='{}'/></query></iq>", jid(&ts, *u))).await;
        if n < 2 {
            assert_eq!(r.attr("type"), Some("result"), "{}", r.to_xml());
        } else {
            assert_eq!(r.attr("type"), Some("error"));
            let err = r.child_named("error").unwrap();
            assert_eq!(err.attr("code"), Some("405"), "{}", r.to_xml());
        }
    }
    // A subscription request to a third contact is refused the same way.
    a.send(&format!(
        "<presence to='{}' type='subscribe' id='p3'/>",
        jid(&ts, others[2])
    ))
    .await;
    let e = a
        .until(|e| e.name == "presence" && e.attr("id") == Some("p3"))
        .await;
    assert_eq!(e.attr("type"), Some("error"));
    assert_eq!(roster(&mut a, "r").await.len(), 2);
    // Unknown users cannot be added.
    let r = iq(
        &mut a,
        "bad",
        &format!(
            "<iq type='set' id='bad'><query xmlns='jabber:iq:roster'><item jid='{}'/></query></iq>",
            jid(&ts, 999_999)
        ),
    )
    .await;
    assert_eq!(r.attr("type"), Some("error"));
    ts.stop().await;
}

confab_testkit::on_both_transports!(
    subscriptions_both_ways_then_presence_flows,
    offline_request_arrives_at_login_and_can_be_rejected,
    roster_remove_cancels_both_subscriptions,
    contact_limit_is_enforced,
);
