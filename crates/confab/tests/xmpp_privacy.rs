//! XEP-0016 privacy lists over real sockets: list management as the ConnectyCube SDK sends it
//! (spec §3.10), and enforcement of the default list on 1:1 routing (one-way and two-way blocks,
//! seed 002).

use confab_testkit as common;

use std::time::Duration;

use common::xmpp::{Transport, XmppClient};
use common::TestServer;
use confab_xmpp::xml::Element;

async fn online(ts: &TestServer, t: Transport, id: i64) -> XmppClient {
    let mut c = XmppClient::over(ts, t).await;
    c.login(id, ts.app_id, "password1").await;
    c.send("<presence/>").await;
    c
}

/// Sends an iq and returns its reply.
async fn iq(c: &mut XmppClient, id: &str, xml: &str) -> Element {
    c.send(xml).await;
    c.until(|e| e.name == "iq" && e.attr("id") == Some(id))
        .await
}

fn jid(ts: &TestServer, id: i64) -> String {
    format!("{id}-{}@localhost", ts.app_id)
}

/// The SDK's `privacylist.create`: user JID and MUC nick items per user.
fn create_xml(ts: &TestServer, id: &str, name: &str, blocked: &[(i64, bool)]) -> String {
    let mut items = String::new();
    let mut order = 1;
    for (user, mutual) in blocked {
        let children = if *mutual {
            ""
        } else {
            "<message/><presence-in/><presence-out/><iq/>"
        };
        for value in [jid(ts, *user), format!("muc.localhost/{user}")] {
            if children.is_empty() {
                items.push_str(&format!(
                    "<item type='jid' value='{value}' action='deny' order='{order}'/>"
                ));
            } else {
                items.push_str(&format!(
                    "<item type='jid' value='{value}' action='deny' order='{order}'>{children}</item>"
                ));
            }
            order += 1;
        }
    }
    format!("<iq type='set' id='{id}'><query xmlns='jabber:iq:privacy'><list name='{name}'>{items}</list></query></iq>")
}

fn set_default_xml(id: &str, name: Option<&str>) -> String {
    let d = match name {
        Some(n) => format!("<default name='{n}'/>"),
        None => "<default/>".into(),
    };
    format!("<iq type='set' id='{id}'><query xmlns='jabber:iq:privacy'>{d}</query></iq>")
}

fn error_code(e: &Element) -> Option<String> {
    e.child_named("error")
        .and_then(|x| x.attr("code"))
        .map(str::to_string)
}

async fn chat(from: &mut XmppClient, ts: &TestServer, to: i64, id: &str) {
    from.send(&format!(
        "<message type='chat' to='{}' id='{id}'><body>hi {id}</body></message>",
        jid(ts, to)
    ))
    .await;
}

/// Waits for the message with `id` (skipping presence and other noise).
async fn got_message(c: &mut XmppClient, id: &str) -> Element {
    c.until(|e| e.name == "message" && e.attr("id") == Some(id))
        .await
}

/// Asserts no message arrives for a moment (presence and iq results are ignored).
async fn no_message(c: &mut XmppClient) {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match c.next_within(left).await {
            None => return,
            Some(confab_xmpp::stream::StreamEvent::Element(e)) if e.name == "message" => {
                panic!("unexpected message: {}", e.to_xml())
            }
            Some(_) => {}
        }
    }
}

async fn lists_are_created_read_defaulted_and_deleted(t: Transport) {
    let ts = TestServer::start().await;
    let alice = ts.signup("alice").await;
    let bob = ts.signup("bob").await;
    let carol = ts.signup("carol").await;
    let mut a = online(&ts, t, alice).await;

    let r = iq(
        &mut a,
        "c1",
        &create_xml(&ts, "c1", "blocked", &[(bob, false), (carol, true)]),
    )
    .await;
    assert_eq!(r.attr("type"), Some("result"), "{}", r.to_xml());
    iq(
        &mut a,
        "c2",
        &create_xml(&ts, "c2", "other", &[(carol, false)]),
    )
    .await;

    // getList: items in stored order, children kept (the SDK reads even indexes in pairs).
    let r = iq(&mut a, "g1", "<iq type='get' id='g1'><query xmlns='jabber:iq:privacy'><list name='blocked'/></query></iq>").await;
    assert_eq!(r.attr("type"), Some("result"), "{}", r.to_xml());
    let list = r.child_named("query").unwrap().child_named("list").unwrap();
    assert_eq!(list.attr("name"), Some("blocked"));
    let items: Vec<&Element> = list.elements().collect();
    assert_eq!(items.len(), 4);
    assert_eq!(items[0].attr("value"), Some(jid(&ts, bob).as_str()));
    assert_eq!(items[0].attr("action"), Some("deny"));
    assert_eq!(items[0].attr("order"), Some("1"));
    let kids: Vec<&str> = items[0].elements().map(|e| e.name.as_str()).collect();
    assert_eq!(kids, ["message", "presence-in", "presence-out", "iq"]);
    assert_eq!(
        items[1].attr("value"),
        Some(format!("muc.localhost/{bob}").as_str())
    );
    assert_eq!(items[2].attr("value"), Some(jid(&ts, carol).as_str()));
    assert_eq!(
        items[2].elements().count(),
        0,
        "mutual block has no children"
    );

    // Unknown list.
    let r = iq(
        &mut a,
        "g2",
        "<iq type='get' id='g2'><query xmlns='jabber:iq:privacy'><list name='nope'/></query></iq>",
    )
    .await;
    assert_eq!(error_code(&r).as_deref(), Some("404"));
    let r = iq(&mut a, "d0", &set_default_xml("d0", Some("nope"))).await;
    assert_eq!(error_code(&r).as_deref(), Some("404"));

    // Names and default.
    let r = iq(&mut a, "d1", &set_default_xml("d1", Some("blocked"))).await;
    assert_eq!(r.attr("type"), Some("result"));
    let r = iq(
        &mut a,
        "n1",
        "<iq type='get' id='n1'><query xmlns='jabber:iq:privacy'/></iq>",
    )
    .await;
    let q = r.child_named("query").unwrap();
    assert_eq!(
        q.child_named("default").and_then(|d| d.attr("name")),
        Some("blocked")
    );
    let names: Vec<&str> = q
        .elements()
        .filter(|e| e.name == "list")
        .filter_map(|e| e.attr("name"))
        .collect();
    assert_eq!(names, ["blocked", "other"]);

    // The default list cannot be deleted until it is declined.
    let del = "<iq type='set' id='x1'><query xmlns='jabber:iq:privacy'><list name='blocked'/></query></iq>";
    let r = iq(&mut a, "x1", del).await;
    assert_eq!(error_code(&r).as_deref(), Some("409"), "{}", r.to_xml());
    iq(&mut a, "d2", &set_default_xml("d2", None)).await;
    let r = iq(&mut a, "x1", del).await;
    assert_eq!(r.attr("type"), Some("result"), "{}", r.to_xml());
    let r = iq(
        &mut a,
        "n2",
        "<iq type='get' id='n2'><query xmlns='jabber:iq:privacy'/></iq>",
    )
    .await;
    let q = r.child_named("query").unwrap();
    assert!(q.child_named("default").is_none());
    assert_eq!(q.elements().filter(|e| e.name == "list").count(), 1);

    // Malformed lists are refused.
    let r = iq(&mut a, "b1", "<iq type='set' id='b1'><query xmlns='jabber:iq:privacy'><list name='z'><item action='maybe' order='1'/></list></query></iq>").await;
    assert_eq!(error_code(&r).as_deref(), Some("400"));
    ts.stop().await;
}

async fn one_way_block_refuses_the_blocked_sender_only(t: Transport) {
    let ts = TestServer::start().await;
    let alice = ts.signup("alice").await;
    let bob = ts.signup("bob").await;
    let mut a = online(&ts, t, alice).await;
    let mut b = online(&ts, t, bob).await;

    iq(&mut a, "c1", &create_xml(&ts, "c1", "bl", &[(bob, false)])).await;
    // Created but not the default: not enforced yet.
    chat(&mut b, &ts, alice, "m1").await;
    got_message(&mut a, "m1").await;

    iq(&mut a, "d1", &set_default_xml("d1", Some("bl"))).await;
    chat(&mut b, &ts, alice, "m2").await;
    let e = got_message(&mut b, "m2").await;
    assert_eq!(e.attr("type"), Some("error"));
    assert_eq!(error_code(&e).as_deref(), Some("503"), "{}", e.to_xml());
    assert!(!b.raw.contains("hi m2</body>"), "the body is not echoed");
    no_message(&mut a).await;

    // One way: alice can still write to bob.
    chat(&mut a, &ts, bob, "m3").await;
    let m = got_message(&mut b, "m3").await;
    assert_eq!(m.attr("type"), Some("chat"));

    // A blocked message to an offline blocker is not stored either.
    a.close().await;
    chat(&mut b, &ts, alice, "m4").await;
    let e = got_message(&mut b, "m4").await;
    assert_eq!(error_code(&e).as_deref(), Some("503"));
    let mut a = online(&ts, t, alice).await;
    no_message(&mut a).await;

    // Declining the default lifts the block at once (cache invalidated).
    iq(&mut a, "d2", &set_default_xml("d2", None)).await;
    chat(&mut b, &ts, alice, "m5").await;
    got_message(&mut a, "m5").await;
    ts.stop().await;
}

async fn two_way_block_stops_both_directions(t: Transport) {
    let ts = TestServer::start().await;
    let alice = ts.signup("alice").await;
    let bob = ts.signup("bob").await;
    let carol = ts.signup("carol").await;
    let mut a = online(&ts, t, alice).await;
    let mut b = online(&ts, t, bob).await;
    let mut c = online(&ts, t, carol).await;

    iq(&mut a, "c1", &create_xml(&ts, "c1", "bl", &[(bob, true)])).await;
    iq(&mut a, "d1", &set_default_xml("d1", Some("bl"))).await;

    chat(&mut b, &ts, alice, "m1").await;
    let e = got_message(&mut b, "m1").await;
    assert_eq!(error_code(&e).as_deref(), Some("503"));

    chat(&mut a, &ts, bob, "m2").await;
    let e = got_message(&mut a, "m2").await;
    assert_eq!(e.attr("type"), Some("error"));
    assert_eq!(error_code(&e).as_deref(), Some("406"), "{}", e.to_xml());
    no_message(&mut b).await;

    // Others are unaffected.
    chat(&mut c, &ts, alice, "m3").await;
    got_message(&mut a, "m3").await;
    chat(&mut a, &ts, carol, "m4").await;
    got_message(&mut c, "m4").await;

    // Replacing the default list's items takes effect at once: now only carol is blocked, one way.
    iq(
        &mut a,
        "c2",
        &create_xml(&ts, "c2", "bl", &[(carol, false)]),
    )
    .await;
    chat(&mut b, &ts, alice, "m5").await;
    got_message(&mut a, "m5").await;
    chat(&mut c, &ts, alice, "m6").await;
    let e = got_message(&mut c, "m6").await;
    assert_eq!(error_code(&e).as_deref(), Some("503"));
    ts.stop().await;
}

async fn allow_items_and_fall_through_are_evaluated_in_order(t: Transport) {
    let ts = TestServer::start().await;
    let alice = ts.signup("alice").await;
    let bob = ts.signup("bob").await;
    let carol = ts.signup("carol").await;
    let mut a = online(&ts, t, alice).await;
    let mut b = online(&ts, t, bob).await;
    let mut c = online(&ts, t, carol).await;
    // Allow bob (order 1), deny everyone else's messages (order 2), sent in reverse order.
    let xml = format!(
        "<iq type='set' id='c1'><query xmlns='jabber:iq:privacy'><list name='only-bob'>\
         <item action='deny' order='2'><message/></item>\
         <item type='jid' value='{}' action='allow' order='1'/>\
         </list></query></iq>",
        jid(&ts, bob)
    );
    let r = iq(&mut a, "c1", &xml).await;
    assert_eq!(r.attr("type"), Some("result"), "{}", r.to_xml());
    iq(&mut a, "d1", &set_default_xml("d1", Some("only-bob"))).await;
    chat(&mut b, &ts, alice, "m1").await;
    got_message(&mut a, "m1").await;
    chat(&mut c, &ts, alice, "m2").await;
    let e = got_message(&mut c, "m2").await;
    assert_eq!(error_code(&e).as_deref(), Some("503"));
    ts.stop().await;
}

confab_testkit::on_both_transports!(
    lists_are_created_read_defaulted_and_deleted,
    one_way_block_refuses_the_blocked_sender_only,
    two_way_block_stops_both_directions,
    allow_items_and_fall_through_are_evaluated_in_order,
);
