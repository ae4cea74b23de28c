//! XMPP over WebSocket (RFC 7395) at `/ws`: subprotocol, framing, login, routing across transports.

use confab_testkit as common;

use common::xmpp::XmppClient;
use common::TestServer;
use confab_xmpp::stream::StreamEvent;

const NS_CLIENT: &str = "jabber:client";

#[tokio::test]
async fn websocket_login_framing_and_close() {
    let ts = TestServer::start().await;
    let (alice, token) = ts.user("alice").await;
    let mut c = XmppClient::ws(ts.http_addr()).await;
    // The SDK puts the socket host name in `to`.
    let f = c.open("127.0.0.1").await;
    assert!(
        c.raw
            .starts_with("<open xmlns=\"urn:ietf:params:xml:ns:xmpp-framing\""),
        "{}",
        c.raw
    );
    assert!(c
        .raw
        .contains("<stream:features xmlns:stream=\"http://etherx.jabber.org/streams\">"));
    assert!(
        f.child_named("starttls").is_none(),
        "no STARTTLS over WebSocket"
    );
    c.auth(&format!("{alice}-{}", ts.app_id), &token)
        .await
        .unwrap();
    let f = c.open("127.0.0.1").await;
    assert!(f.child_named("bind").is_some());
    let jid = c.bind().await;
    assert!(jid.split_once('/').unwrap().1.len() >= 20);
    // Ping, then a clean close answered with <close/>.
    c.send("<iq type='get' id='p' to='localhost' xmlns='jabber:client'><ping xmlns='urn:xmpp:ping'/></iq>").await;
    let r = c.until(|e| e.attr("id") == Some("p")).await;
    assert!(
        c.raw.contains("<iq xmlns=\"jabber:client\""),
        "stanzas declare jabber:client"
    );
    assert_eq!(r.attr("type"), Some("result"));
    c.send("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>")
        .await;
    assert_eq!(c.next().await, StreamEvent::Close);
    ts.stop().await;
}

#[tokio::test]
async fn websocket_bad_password_is_not_authorized() {
    let ts = TestServer::start().await;
    let (alice, _) = ts.user("alice").await;
    let mut c = XmppClient::ws(ts.http_addr()).await;
    c.open("127.0.0.1").await;
    assert_eq!(
        c.auth(&format!("{alice}-{}", ts.app_id), "wrong").await,
        Err("not-authorized".into())
    );
    assert!(matches!(
        c.next_within(common::xmpp::WAIT).await,
        None | Some(StreamEvent::Close)
    ));
    ts.stop().await;
}

#[tokio::test]
async fn messages_cross_transports_and_resources() {
    let ts = TestServer::start().await;
    let (alice, at) = ts.user("alice").await;
    let (bob, bt) = ts.user("bob").await;
    let mut a = XmppClient::ws(ts.http_addr()).await;
    a.login(alice, ts.app_id, &at).await;
    let mut b_ws = XmppClient::ws(ts.http_addr()).await;
    b_ws.login(bob, ts.app_id, &bt).await;
    let mut b_tcp = XmppClient::tcp(ts.xmpp_addr()).await;
    b_tcp.login(bob, ts.app_id, &bt).await;

    a.send(&format!("<message to='{bob}-{}@localhost' type='chat' id='w1' xmlns='jabber:client'><body>over ws</body><extraParams xmlns='jabber:client'><dialog_id>D1</dialog_id></extraParams></message>", ts.app_id)).await;
    for b in [&mut b_ws, &mut b_tcp] {
        let m = b.until(|e| e.name == "message").await;
        assert_eq!(m.attr("from"), Some(a.jid.as_str()));
        assert_eq!(m.child("body", NS_CLIENT).unwrap().text(), "over ws");
        let extra = m.child("extraParams", NS_CLIENT).unwrap();
        assert_eq!(extra.child_named("dialog_id").unwrap().text(), "D1");
    }
    // A full-JID address reaches only that resource.
    b_tcp
        .send(&format!(
            "<message to='{}' type='chat' id='w2'><body>back</body></message>",
            a.jid
        ))
        .await;
    let m = a.until(|e| e.name == "message").await;
    assert_eq!(m.attr("id"), Some("w2"));
    assert_eq!(m.attr("from"), Some(b_tcp.jid.as_str()));
    ts.stop().await;
}

#[tokio::test]
async fn websocket_stream_errors_leave_others_alone() {
    let ts = TestServer::start_with(|c| c.xmpp_max_stanza_bytes = 4096).await;
    let (alice, at) = ts.user("alice").await;
    let mut good = XmppClient::ws(ts.http_addr()).await;
    good.login(alice, ts.app_id, &at).await;

    let mut bad = XmppClient::ws(ts.http_addr()).await;
    bad.login(alice, ts.app_id, &at).await;
    bad.send("<message xmlns='jabber:client'><body>x</bodyy></message>")
        .await;
    bad.expect_stream_error("not-well-formed").await;

    let mut big = XmppClient::ws(ts.http_addr()).await;
    big.login(alice, ts.app_id, &at).await;
    let body = "y".repeat(6000);
    big.send(&format!(
        "<message xmlns='jabber:client' to='1-1@localhost'><body>{body}</body></message>"
    ))
    .await;
    big.expect_stream_error("policy-violation").await;

    good.send("<enable xmlns='urn:xmpp:sm:3'/>").await;
    assert_eq!(good.element().await.name, "enabled");
    good.send("<iq type='get' id='p' to='localhost' xmlns='jabber:client'><ping xmlns='urn:xmpp:ping'/></iq>").await;
    good.send("<r xmlns='urn:xmpp:sm:3'/>").await;
    good.until(|e| e.attr("id") == Some("p")).await;
    let a = good.until(|e| e.local_name() == "a").await;
    assert_eq!(a.attr("h"), Some("1"));
    ts.stop().await;
}
