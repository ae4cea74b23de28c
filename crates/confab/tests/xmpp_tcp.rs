//! XMPP against the real server: STARTTLS, direct TLS, SASL PLAIN, stream errors and keep-alive over
//! TCP; 1:1 routing, carbons, offline storage, ping, last activity and stream management over TCP
//! and over WebSocket (`on_both_transports!`).
use confab_testkit as common;

use std::time::Duration;

use common::xmpp::{Transport, XmppClient};
use common::TestServer;
use confab_xmpp::stream::StreamEvent;

const NS_CLIENT: &str = "jabber:client";

async fn connect(ts: &TestServer, t: Transport, id: i64, secret: &str) -> XmppClient {
    let mut c = XmppClient::over(ts, t).await;
    c.login(id, ts.app_id, secret).await;
    c
}

async fn presence(c: &mut XmppClient) {
    c.send("<presence/>").await;
}

async fn enable_carbons(c: &mut XmppClient) {
    c.send("<iq type='set' id='carb'><enable xmlns='urn:xmpp:carbons:2'/></iq>")
        .await;
    let r = c.until(|e| e.attr("id") == Some("carb")).await;
    assert_eq!(r.attr("type"), Some("result"));
}

/// A ping round trip: everything the server sent before the reply has been read.
async fn sync(c: &mut XmppClient) -> Vec<confab_xmpp::xml::Element> {
    c.send("<iq type='get' id='sync' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    let mut before = Vec::new();
    loop {
        let e = c.element().await;
        if e.attr("id") == Some("sync") {
            assert_eq!(e.attr("type"), Some("result"));
            return before;
        }
        before.push(e);
    }
}

#[tokio::test]
async fn starttls_then_plain_with_token_and_password() {
    let ts = TestServer::start().await;
    let (alice, token) = ts.user("alice").await;

    let mut c = XmppClient::tcp(ts.xmpp_addr()).await;
    let f = c.open("127.0.0.1").await;
    // Features declare their own namespace, offer STARTTLS and only PLAIN.
    assert!(c
        .raw
        .contains("<stream:features xmlns:stream=\"http://etherx.jabber.org/streams\">"));
    assert!(f.child_named("starttls").is_some());
    let mechs: Vec<String> = f
        .child_named("mechanisms")
        .unwrap()
        .elements()
        .map(|m| m.text())
        .collect();
    assert_eq!(mechs, vec!["PLAIN".to_string()]);
    c.starttls().await;
    let f = c.open("localhost").await;
    assert!(
        f.child_named("starttls").is_none(),
        "no STARTTLS inside TLS"
    );
    c.auth(&format!("{alice}-{}", ts.app_id), &token)
        .await
        .unwrap();
    c.open("localhost").await;
    let jid = c.bind().await;
    let (bare, resource) = jid.split_once('/').unwrap();
    assert_eq!(bare, format!("{alice}-{}@localhost", ts.app_id));
    assert!(resource.len() >= 20, "long random resource, got {resource}");
    assert_ne!(resource, "x", "client-requested resource is ignored");

    // The account password works too.
    let mut p = XmppClient::tcp(ts.xmpp_addr()).await;
    let jid2 = p.login(alice, ts.app_id, "password1").await;
    assert_ne!(jid, jid2, "each connection gets its own resource");

    // A wrong password: not-authorized, then the stream ends.
    let mut bad = XmppClient::tcp(ts.xmpp_addr()).await;
    bad.open("localhost").await;
    let r = bad.auth(&format!("{alice}-{}", ts.app_id), "nope").await;
    assert_eq!(r, Err("not-authorized".to_string()));
    assert!(matches!(
        bad.next_within(Duration::from_secs(5)).await,
        None | Some(StreamEvent::Close)
    ));
    // Another app's id with a valid token fails as well.
    let mut other = XmppClient::tcp(ts.xmpp_addr()).await;
    other.open("localhost").await;
    let r = other
        .auth(&format!("{alice}-{}", ts.app_id + 1), &token)
        .await;
    assert_eq!(r, Err("not-authorized".to_string()));
    ts.stop().await;
}

#[tokio::test]
async fn a_deleted_user_cannot_log_in_with_token_or_password() {
    let ts = TestServer::start().await;
    let (alice, token) = ts.user("alice").await;
    let mut c = XmppClient::tcp(ts.xmpp_addr()).await;
    c.login(alice, ts.app_id, &token).await;
    let (s, _) = ts
        .call(
            reqwest::Method::DELETE,
            &format!("/users/{alice}.json"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(s, reqwest::StatusCode::OK);
    for secret in [token.as_str(), "password1"] {
        let mut c = XmppClient::tcp(ts.xmpp_addr()).await;
        c.open("localhost").await;
        let r = c.auth(&format!("{alice}-{}", ts.app_id), secret).await;
        assert_eq!(r, Err("not-authorized".to_string()), "secret {secret}");
    }
    ts.stop().await;
}

#[tokio::test]
async fn sasl_attempts_are_rate_limited_per_account() {
    let ts = TestServer::start_with(|c| c.login_attempts_per_minute = 3).await;
    let (alice, token) = ts.user("alice").await;
    for _ in 0..3 {
        let mut c = XmppClient::tcp(ts.xmpp_addr()).await;
        c.open("localhost").await;
        let r = c.auth(&format!("{alice}-{}", ts.app_id), "guess").await;
        assert_eq!(r, Err("not-authorized".to_string()));
    }
    // Even the right token is refused for now: guessing is not cheaper over XMPP than over REST.
    let mut c = XmppClient::tcp(ts.xmpp_addr()).await;
    c.open("localhost").await;
    let r = c.auth(&format!("{alice}-{}", ts.app_id), &token).await;
    assert_eq!(r, Err("temporary-auth-failure".to_string()));
    ts.stop().await;
}

#[tokio::test]
async fn direct_tls_port() {
    let ts = TestServer::start_with(|c| c.xmpp_tls_addr = Some("127.0.0.1:0".into())).await;
    let (alice, token) = ts.user("alice").await;
    let addr = ts.server.as_ref().unwrap().xmpp_tls_addr.unwrap();
    let mut c = XmppClient::tls_direct(addr).await;
    let jid = c.login(alice, ts.app_id, &token).await;
    assert!(jid.starts_with(&format!("{alice}-")));
    ts.stop().await;
}

async fn one_to_one_fans_out_to_every_resource_with_sent_carbons(t: Transport) {
    let ts = TestServer::start().await;
    let (alice, at) = ts.user("alice").await;
    let (bob, bt) = ts.user("bob").await;
    let mut a1 = connect(&ts, t, alice, &at).await;
    let mut a2 = connect(&ts, t, alice, &at).await;
    let mut b1 = connect(&ts, t, bob, &bt).await;
    let mut b2 = connect(&ts, t, bob, &bt).await;
    for c in [&mut a1, &mut a2, &mut b1, &mut b2] {
        enable_carbons(c).await;
        presence(c).await;
    }
    let bob_bare = format!("{bob}-{}@localhost", ts.app_id);
    // The SDK's odd `<0>` names must survive.
    a1.send(&format!(
        "<message to='{bob_bare}' type='chat' id='6b02b1f7b5a07d1688000000'><body>Hi &amp; &lt;bob&gt;</body><extraParams xmlns='jabber:client'><save_to_history>1</save_to_history><tags><0>a</0><1>b</1></tags><attachment uid='u1' type='image'/></extraParams></message>"
    ))
    .await;
    for b in [&mut b1, &mut b2] {
        let m = b.until(|e| e.name == "message").await;
        assert_eq!(m.attr("from"), Some(a1.jid.as_str()));
        assert_eq!(m.attr("id"), Some("6b02b1f7b5a07d1688000000"));
        assert_eq!(m.child("body", NS_CLIENT).unwrap().text(), "Hi & <bob>");
        let extra = m.child("extraParams", NS_CLIENT).unwrap();
        assert_eq!(
            extra
                .child_named("tags")
                .unwrap()
                .child_named("0")
                .unwrap()
                .text(),
            "a"
        );
        assert!(extra.child_named("attachment").is_some());
        let date_sent: i64 = extra
            .child_named("date_sent")
            .unwrap()
            .text()
            .parse()
            .unwrap();
        assert!(date_sent > 1_600_000_000);
        assert!(m.child_named("sent").is_none() && m.child_named("received").is_none());
    }
    // The sender's other resource gets a <sent/> carbon; the sender itself gets nothing.
    let c = a2.until(|e| e.name == "message").await;
    let inner = c
        .child("sent", "urn:xmpp:carbons:2")
        .and_then(|s| s.child("forwarded", "urn:xmpp:forward:0"))
        .and_then(|f| f.child("message", NS_CLIENT))
        .expect("sent carbon");
    assert_eq!(inner.attr("from"), Some(a1.jid.as_str()));
    assert_eq!(inner.child("body", NS_CLIENT).unwrap().text(), "Hi & <bob>");
    assert!(
        // (The other resource's presence may arrive: RFC 6121 §4.2.2.)
        sync(&mut a1).await.iter().all(|e| e.name == "presence"),
        "no echo to the sending resource"
    );

    // Typing and markers are forwarded unchanged; typing is not carbon-copied.
    a1.send(&format!("<message to='{bob_bare}' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>")).await;
    let t = b1.until(|e| e.name == "message").await;
    assert!(t
        .child("composing", "http://jabber.org/protocol/chatstates")
        .is_some());
    assert!(
        t.child("extraParams", NS_CLIENT).is_none(),
        "typing stays as sent"
    );
    let alice_bare = format!("{alice}-{}@localhost", ts.app_id);
    b1.send(&format!("<message to='{alice_bare}' type='chat' id='m2'><displayed xmlns='urn:xmpp:chat-markers:0' id='6b02b1f7b5a07d1688000000'/><extraParams xmlns='jabber:client'><dialog_id>D1</dialog_id></extraParams></message>")).await;
    for a in [&mut a1, &mut a2] {
        let m = a.until(|e| e.name == "message").await;
        let d = m.child("displayed", "urn:xmpp:chat-markers:0").unwrap();
        assert_eq!(d.attr("id"), Some("6b02b1f7b5a07d1688000000"));
        assert_eq!(m.attr("from"), Some(b1.jid.as_str()));
    }
    // Bob's other resource gets a sent carbon of the marker; never a <received/> carbon anywhere.
    let c = b2
        .until(|e| e.name == "message" && e.child_named("composing").is_none())
        .await;
    assert!(
        c.child("sent", "urn:xmpp:carbons:2").is_some(),
        "{}",
        c.to_xml()
    );
    for x in [&a1, &a2, &b1, &b2] {
        assert!(!x.raw.contains("<received xmlns=\"urn:xmpp:carbons:2\""));
    }

    // Edit and delete are forwarded.
    a1.send(&format!("<message to='{bob_bare}' type='chat' id='e1'><body>edited</body><replace xmlns='urn:xmpp:message-correct:0' id='6b02b1f7b5a07d1688000000' last='true'/></message>")).await;
    let m = b1.until(|e| e.name == "message").await;
    assert_eq!(
        m.child("replace", "urn:xmpp:message-correct:0")
            .unwrap()
            .attr("last"),
        Some("true")
    );
    a1.send(&format!("<message to='{bob_bare}' type='chat' id='d1'><remove xmlns='urn:xmpp:message-delete:0' id='6b02b1f7b5a07d1688000000'/></message>")).await;
    let m = b1.until(|e| e.name == "message").await;
    assert!(m.child("remove", "urn:xmpp:message-delete:0").is_some());

    // System messages come without `from`; the server stamps it.
    a1.send(&format!("<message to='{bob_bare}' type='headline' id='s1'><body>sys</body><extraParams xmlns='jabber:client'><moduleIdentifier>SystemNotifications</moduleIdentifier></extraParams></message>")).await;
    let m = b2.until(|e| e.attr("id") == Some("s1")).await;
    assert_eq!(m.attr("from"), Some(a1.jid.as_str()));
    assert_eq!(m.attr("type"), Some("headline"));
    ts.stop().await;
}

/// WebRTC call signalling (a `headline` without `from`, spec §3.6) and system messages are stamped and
/// delivered live; neither is stored for an offline recipient, so nothing arrives late.
async fn call_signalling_and_system_messages_are_live_only(t: Transport) {
    let ts = TestServer::start().await;
    let (alice, at) = ts.user("alice").await;
    let (bob, bt) = ts.user("bob").await;
    let bob_bare = format!("{bob}-{}@localhost", ts.app_id);
    let call = |id: &str| {
        format!("<message to='{bob_bare}' type='headline' id='{id}'><extraParams xmlns='jabber:client'><moduleIdentifier>WebRTCVideoChat</moduleIdentifier><signalType>call</signalType><sessionID>S1</sessionID><callType>1</callType><callerID>{alice}</callerID><opponentsIDs><opponentID>{bob}</opponentID></opponentsIDs><sdp>v=0</sdp><platform>web</platform><iceCandidates><iceCandidate><candidate>c</candidate><sdpMid>0</sdpMid><sdpMLineIndex></sdpMLineIndex></iceCandidate></iceCandidates></extraParams></message>")
    };
    let system = |id: &str| {
        format!("<message to='{bob_bare}' type='headline' id='{id}'><body>sys</body><extraParams xmlns='jabber:client'><moduleIdentifier>SystemNotifications</moduleIdentifier></extraParams></message>")
    };
    let mut a = connect(&ts, t, alice, &at).await;
    presence(&mut a).await;
    let mut b = connect(&ts, t, bob, &bt).await;
    presence(&mut b).await;

    a.send(&call("c1")).await;
    let m = b.until(|e| e.attr("id") == Some("c1")).await;
    assert_eq!(m.attr("from"), Some(a.jid.as_str()));
    assert_eq!(m.attr("type"), Some("headline"));
    let extra = m.child("extraParams", NS_CLIENT).unwrap();
    assert_eq!(extra.child_named("signalType").unwrap().text(), "call");
    assert_eq!(extra.child_named("sdp").unwrap().text(), "v=0");
    let candidate = extra
        .child_named("iceCandidates")
        .and_then(|c| c.child_named("iceCandidate"))
        .unwrap();
    assert_eq!(candidate.child_named("sdpMLineIndex").unwrap().text(), "");

    // Bob goes offline; a call, a system message and then a chat message are sent to him.
    b.close().await;
    a.send(&call("c2")).await;
    a.send(&system("s2")).await;
    a.send(&format!(
        "<message to='{bob_bare}' type='chat' id='m2'><body>after the call</body></message>"
    ))
    .await;
    assert!(
        sync(&mut a)
            .await
            .iter()
            .all(|e| e.attr("type") != Some("error")),
        "live-only messages to an offline user are dropped without an error"
    );
    // At his next login only the chat message is waiting.
    let mut b = connect(&ts, t, bob, &bt).await;
    presence(&mut b).await;
    let got = b.until(|e| e.name == "message").await;
    assert_eq!(got.attr("id"), Some("m2"));
    assert!(got.child("delay", "urn:xmpp:delay").is_some());
    let rest = sync(&mut b).await;
    assert!(
        rest.iter().all(|e| e.name != "message"),
        "nothing else arrives late: {:?}",
        rest.iter().map(|e| e.to_xml()).collect::<Vec<_>>()
    );
    ts.stop().await;
}

async fn errors_reach_the_sender_with_a_legacy_code(t: Transport) {
    let ts = TestServer::start().await;
    let (alice, at) = ts.user("alice").await;
    let mut a = connect(&ts, t, alice, &at).await;
    a.send(&format!(
        "<message to='999999-{}@localhost' type='chat' id='x1'><body>hi</body></message>",
        ts.app_id
    ))
    .await;
    let e = a.until(|e| e.attr("id") == Some("x1")).await;
    assert_eq!(e.attr("type"), Some("error"));
    let err = e.child("error", NS_CLIENT).unwrap();
    assert_eq!(err.attr("code"), Some("503"));
    assert_eq!(err.attr("type"), Some("cancel"));
    assert!(err
        .child("service-unavailable", "urn:ietf:params:xml:ns:xmpp-stanzas")
        .is_some());
    assert!(
        !e.to_xml().contains("<body>"),
        "the body is not echoed back"
    );

    // Another app's user looks exactly like a missing one.
    let (bob, _) = ts.user("bob").await;
    a.send(&format!(
        "<message to='{bob}-{}@localhost' type='chat' id='x2'><body>hi</body></message>",
        ts.app_id + 1
    ))
    .await;
    let e = a.until(|e| e.attr("id") == Some("x2")).await;
    assert_eq!(
        e.child("error", NS_CLIENT).unwrap().attr("code"),
        Some("503")
    );
    ts.stop().await;
}

async fn offline_messages_arrive_with_delay_also_after_restart(t: Transport) {
    let mut ts = TestServer::start().await;
    let (alice, at) = ts.user("alice").await;
    let (bob, bt) = ts.user("bob").await;
    let bob_bare = format!("{bob}-{}@localhost", ts.app_id);
    let mut a = connect(&ts, t, alice, &at).await;
    a.send(&format!(
        "<message to='{bob_bare}' type='chat' id='o1'><body>first</body></message>"
    ))
    .await;
    a.send(&format!("<message to='{bob_bare}' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>")).await;
    a.send(&format!(
        "<message to='{bob_bare}' type='chat' id='o2'><body>second</body></message>"
    ))
    .await;
    assert!(
        sync(&mut a).await.is_empty(),
        "no errors for offline recipients"
    );

    let mut b = connect(&ts, t, bob, &bt).await;
    presence(&mut b).await;
    let got = sync(&mut b).await;
    let ids: Vec<_> = got
        .iter()
        .map(|m| m.attr("id").unwrap_or("").to_string())
        .collect();
    assert_eq!(ids, vec!["o1", "o2"], "typing is not stored");
    for m in &got {
        let d = m.child("delay", "urn:xmpp:delay").expect("delay");
        assert!(d.attr("stamp").unwrap().ends_with('Z'));
        assert_eq!(m.attr("from"), Some(a.jid.as_str()));
    }
    b.close().await;
    // Delivered once only.
    let mut b = connect(&ts, t, bob, &bt).await;
    presence(&mut b).await;
    assert!(sync(&mut b).await.is_empty());
    b.close().await;

    // Survives a restart.
    a.send(&format!(
        "<message to='{bob_bare}' type='chat' id='o3'><body>third</body></message>"
    ))
    .await;
    sync(&mut a).await;
    ts.restart().await;
    let bt = ts.login("bob").await;
    let mut b = connect(&ts, t, bob, &bt).await;
    presence(&mut b).await;
    let got = sync(&mut b).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].attr("id"), Some("o3"));
    assert!(got[0].child("delay", "urn:xmpp:delay").is_some());
    ts.stop().await;
}

async fn ping_last_activity_disco_and_client_state(t: Transport) {
    let ts = TestServer::start().await;
    let (alice, at) = ts.user("alice").await;
    let (bob, bt) = ts.user("bob").await;
    let mut a = connect(&ts, t, alice, &at).await;
    a.send("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    let r = a.until(|e| e.attr("id") == Some("p1")).await;
    assert_eq!(r.attr("type"), Some("result"));

    let bob_bare = format!("{bob}-{}@localhost", ts.app_id);
    let ask = |id: &str| {
        format!("<iq type='get' id='{id}' to='{bob_bare}'><query xmlns='jabber:iq:last'/></iq>")
    };
    // Online: 0 seconds; the reply comes from the user's JID (the SDK reads the user id from it).
    let mut b = connect(&ts, t, bob, &bt).await;
    a.send(&ask("l1")).await;
    let r = a.until(|e| e.attr("id") == Some("l1")).await;
    assert_eq!(r.attr("type"), Some("result"));
    assert_eq!(r.attr("from"), Some(bob_bare.as_str()));
    assert_eq!(
        r.child("query", "jabber:iq:last").unwrap().attr("seconds"),
        Some("0")
    );
    b.close().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    a.send(&ask("l2")).await;
    let r = a.until(|e| e.attr("id") == Some("l2")).await;
    let secs: u64 = r
        .child("query", "jabber:iq:last")
        .unwrap()
        .attr("seconds")
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..60).contains(&secs), "{secs}");
    // Unknown user: an error with a code.
    a.send(&format!(
        "<iq type='get' id='l3' to='424242-{}@localhost'><query xmlns='jabber:iq:last'/></iq>",
        ts.app_id
    ))
    .await;
    let r = a.until(|e| e.attr("id") == Some("l3")).await;
    assert_eq!(r.attr("type"), Some("error"));
    assert_eq!(
        r.child("error", NS_CLIENT).unwrap().attr("code"),
        Some("404")
    );

    a.send("<iq type='get' id='d1' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>").await;
    let r = a.until(|e| e.attr("id") == Some("d1")).await;
    let q = r
        .child("query", "http://jabber.org/protocol/disco#info")
        .unwrap();
    let features: Vec<_> = q.elements().filter_map(|f| f.attr("var")).collect();
    for f in [
        "urn:xmpp:ping",
        "jabber:iq:last",
        "urn:xmpp:carbons:2",
        "urn:xmpp:sm:3",
    ] {
        assert!(features.contains(&f), "{f} in {features:?}");
    }

    // Tigase mobile v2 (the SDK's markInactive / markActive) and status streaming are accepted.
    a.send("<iq type='set' id='m1:markActive'><mobile xmlns='http://tigase.org/protocol/mobile#v2' enable='true'/></iq>").await;
    assert_eq!(
        a.until(|e| e.attr("id") == Some("m1:markActive"))
            .await
            .attr("type"),
        Some("result")
    );
    a.send(&format!("<iq type='set' id='ss1'><subscribe xmlns='https://connectycube.com/protocol/status_streaming' user_jid='{bob_bare}' enable='true'/></iq>")).await;
    assert_eq!(
        a.until(|e| e.attr("id") == Some("ss1")).await.attr("type"),
        Some("result")
    );
    // Bob comes online: a last-activity push reaches alice; and another when he leaves.
    let mut b = connect(&ts, t, bob, &bt).await;
    for _ in ["online", "left"] {
        let push = a
            .until(|e| e.name == "iq" && e.attr("from") == Some(bob_bare.as_str()))
            .await;
        assert_eq!(push.attr("type"), Some("result"));
        assert_eq!(
            push.child("query", "jabber:iq:last")
                .unwrap()
                .attr("seconds"),
            Some("0")
        );
        b.close().await;
    }
    // After unsubscribing, bob's comings and goings are not pushed.
    a.send(&format!("<iq type='set' id='ss2'><subscribe xmlns='https://connectycube.com/protocol/status_streaming' user_jid='{bob_bare}' enable='false'/></iq>")).await;
    a.until(|e| e.attr("id") == Some("ss2")).await;
    connect(&ts, t, bob, &bt).await.close().await;
    assert!(
        sync(&mut a).await.iter().all(|e| e.name != "iq"),
        "no push after unsubscribing"
    );

    // No contact list yet: an empty roster.
    a.send("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>")
        .await;
    let r = a.until(|e| e.attr("id") == Some("r1")).await;
    assert_eq!(r.attr("type"), Some("result"));
    assert!(r
        .child("query", "jabber:iq:roster")
        .unwrap()
        .elements()
        .next()
        .is_none());
    // Unknown iqs get service-unavailable.
    a.send("<iq type='get' id='u1'><query xmlns='jabber:iq:roster-nope'/></iq>")
        .await;
    let r = a.until(|e| e.attr("id") == Some("u1")).await;
    assert_eq!(
        r.child("error", NS_CLIENT).unwrap().attr("code"),
        Some("503")
    );
    ts.stop().await;
}

async fn stream_management_acks_handled_stanzas(t: Transport) {
    let ts = TestServer::start().await;
    let (alice, at) = ts.user("alice").await;
    let (bob, _) = ts.user("bob").await;
    let mut a = connect(&ts, t, alice, &at).await;
    a.send("<enable xmlns='urn:xmpp:sm:3'/>").await;
    let e = a.element().await;
    assert!(e.is("enabled", "urn:xmpp:sm:3"), "{}", e.to_xml());
    a.send("<presence/>").await;
    a.send(&format!(
        "<message to='{bob}-{}@localhost' type='chat' id='s1'><body>one</body></message>",
        ts.app_id
    ))
    .await;
    a.send("<r xmlns='urn:xmpp:sm:3'/>").await;
    let ack = a.until(|e| e.local_name() == "a").await;
    assert_eq!(ack.attr("h"), Some("2"));
    a.send("<a xmlns='urn:xmpp:sm:3' h='0'/>").await;
    a.send(&format!(
        "<message to='{bob}-{}@localhost' type='chat' id='s2'><body>two</body></message>",
        ts.app_id
    ))
    .await;
    a.send("<r xmlns='urn:xmpp:sm:3'/>").await;
    let ack = a.until(|e| e.local_name() == "a").await;
    assert_eq!(ack.attr("h"), Some("3"));
    ts.stop().await;
}

#[tokio::test]
async fn malformed_xml_ends_only_that_stream() {
    let ts = TestServer::start().await;
    let (alice, at) = ts.user("alice").await;
    let mut good = connect(&ts, Transport::Tcp, alice, &at).await;
    let mut bad = connect(&ts, Transport::Tcp, alice, &at).await;
    bad.send_bytes(b"<message><body>oops</message>").await;
    bad.expect_stream_error("not-well-formed").await;
    // Whitespace keep-alives are fine, and the other client is still served.
    good.send(" \n ").await;
    assert!(sync(&mut good).await.is_empty());
    // A fresh client can still connect.
    let mut again = connect(&ts, Transport::Tcp, alice, &at).await;
    sync(&mut again).await;
    ts.stop().await;
}

/// A client still sending when its stream fails gets everything the server wrote, the stream error
/// last: the server reads on until the client closes instead of closing with unread input, which
/// would reset the connection and drop what still waits in the server's send queue.
#[tokio::test]
async fn a_client_sending_past_a_stream_error_still_reads_it() {
    let ts = TestServer::start().await;
    let (alice, at) = ts.user("alice").await;
    let mut c = XmppClient::tcp_small_receive_buffer(ts.xmpp_addr()).await;
    c.login(alice, ts.app_id, &at).await;
    // Replies this client does not read yet pile up on the server's side...
    let pings: String = (0..300)
        .map(|i| {
            format!("<iq type='get' id='p{i}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        })
        .collect();
    c.send(&pings).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    // ...then SASL after binding (not allowed: a stream error), and more input right behind it.
    let flood: String = (0..2000)
        .map(|i| {
            format!("<message to='localhost' id='f{i}'><body>after the error</body></message>")
        })
        .collect();
    c.try_send(&format!(
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>{flood}"
    ))
    .await;
    let last = c.until(|e| e.attr("id") == Some("p299")).await;
    assert_eq!(last.attr("type"), Some("result"));
    c.expect_stream_error("unsupported-stanza-type").await;
    ts.stop().await;
}

#[tokio::test]
async fn oversize_stanza_is_a_policy_violation() {
    let ts = TestServer::start_with(|c| c.xmpp_max_stanza_bytes = 4096).await;
    let (alice, at) = ts.user("alice").await;
    let (bob, _) = ts.user("bob").await;
    let mut a = connect(&ts, Transport::Tcp, alice, &at).await;
    let big = "x".repeat(8000);
    a.send(&format!(
        "<message to='{bob}-{}@localhost' type='chat'><body>{big}</body></message>",
        ts.app_id
    ))
    .await;
    a.expect_stream_error("policy-violation").await;
    ts.stop().await;
}

#[tokio::test]
async fn unknown_host_and_early_stanzas_are_stream_errors() {
    let ts = TestServer::start().await;
    let mut c = XmppClient::tcp(ts.xmpp_addr()).await;
    let x = c.open_xml("example.org");
    c.send(&x).await;
    assert!(matches!(c.next().await, StreamEvent::Open(_)));
    c.expect_stream_error("host-unknown").await;

    // The socket's own address is as good as the domain.
    let mut c = XmppClient::tcp(ts.xmpp_addr()).await;
    let features = c.open("127.0.0.1").await;
    assert!(
        features.child_named("mechanisms").is_some() || features.child_named("starttls").is_some()
    );

    let mut c = XmppClient::tcp(ts.xmpp_addr()).await;
    c.open("localhost").await;
    c.send("<message to='1-1@localhost' type='chat'><body>x</body></message>")
        .await;
    c.expect_stream_error("not-authorized").await;
    ts.stop().await;
}

async fn idle_clients_are_pinged_then_dropped(t: Transport) {
    let ts = TestServer::start_with(|c| {
        c.xmpp_ping_interval_secs = 1;
        c.xmpp_ping_timeout_secs = 1;
    })
    .await;
    let (alice, at) = ts.user("alice").await;
    let mut c = connect(&ts, t, alice, &at).await;
    let ping = c.until(|e| e.name == "iq").await;
    assert!(ping.child("ping", "urn:xmpp:ping").is_some());
    assert_eq!(ping.attr("type"), Some("get"));
    // Answering keeps the session alive...
    c.send(&format!(
        "<iq type='result' id='{}' to='localhost'/>",
        ping.attr("id").unwrap()
    ))
    .await;
    let ping = c.until(|e| e.name == "iq").await;
    assert!(ping.child("ping", "urn:xmpp:ping").is_some());
    // ...silence ends it.
    c.expect_stream_error("connection-timeout").await;
    ts.stop().await;
}

confab_testkit::on_both_transports!(
    one_to_one_fans_out_to_every_resource_with_sent_carbons,
    errors_reach_the_sender_with_a_legacy_code,
    call_signalling_and_system_messages_are_live_only,
    offline_messages_arrive_with_delay_also_after_restart,
    ping_last_activity_disco_and_client_state,
    stream_management_acks_handled_stanzas,
    idle_clients_are_pinged_then_dropped,
);
