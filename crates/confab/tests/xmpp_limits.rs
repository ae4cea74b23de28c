//! XMPP abuse limits at their limits, over real sockets: connection caps (per address and in all),
//! per-session input rates (backpressure, nothing lost) and password attempts per address.
use confab_testkit as common;

use std::time::{Duration, Instant};

use common::xmpp::{Transport, XmppClient};
use common::TestServer;
use confab_xmpp::stream::StreamEvent;
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn ping(c: &mut XmppClient, id: &str) {
    c.send(&format!(
        "<iq type='get' id='{id}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"
    ))
    .await;
    let r = c.until(|e| e.attr("id") == Some(id)).await;
    assert_eq!(r.attr("type"), Some("result"));
}

/// An open stream (features received), not logged in.
async fn opened(ts: &TestServer, t: Transport) -> XmppClient {
    let mut c = XmppClient::over(ts, t).await;
    c.open("localhost").await;
    c
}

/// What a connection over a cap gets: over TCP a stream error with its text, over WebSocket a 503
/// before any upgrade.
async fn assert_refused(ts: &TestServer, t: Transport, condition: &str, text: &str) {
    match t {
        Transport::Tcp => {
            let mut c = XmppClient::tcp(ts.xmpp_addr()).await;
            match c.next().await {
                StreamEvent::Open(_) => {}
                other => panic!("expected the stream header, got {other:?}"),
            }
            c.expect_stream_error(condition).await;
            assert!(c.raw.contains(text), "{}", c.raw);
        }
        Transport::WebSocket => {
            let resp = ts
                .client
                .get(ts.url("/ws"))
                .header("Connection", "Upgrade")
                .header("Upgrade", "websocket")
                .header("Sec-WebSocket-Version", "13")
                .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
                .header("Sec-WebSocket-Protocol", "xmpp")
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
            let v: Value = resp.json().await.unwrap();
            assert_eq!(v, json!({"errors": {"base": [text]}}));
        }
    }
}

/// The server frees a closed connection's place shortly after the client leaves.
async fn wait_open_connections(ts: &TestServer, n: u32) {
    let srv = ts.server.as_ref().unwrap().xmpp.clone();
    let deadline = Instant::now() + Duration::from_secs(10);
    while srv.connections.open() != n {
        assert!(Instant::now() < deadline, "{} open", srv.connections.open());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn connections_per_address_are_capped(t: Transport) {
    let ts = TestServer::start_with(|c| c.xmpp_max_connections_per_ip = 2).await;
    let (alice, at) = ts.user("alice").await;
    let mut a = XmppClient::over(&ts, t).await;
    a.login(alice, ts.app_id, &at).await;
    let mut b = opened(&ts, t).await;
    assert_refused(
        &ts,
        t,
        "policy-violation",
        "Too many connections from your address",
    )
    .await;
    // The other transport counts towards the same address.
    let other = match t {
        Transport::Tcp => Transport::WebSocket,
        Transport::WebSocket => Transport::Tcp,
    };
    assert_refused(
        &ts,
        other,
        "policy-violation",
        "Too many connections from your address",
    )
    .await;
    // Those already in are unharmed; a place freed is taken again.
    ping(&mut a, "still-here").await;
    b.close().await;
    wait_open_connections(&ts, 1).await;
    let mut c = XmppClient::over(&ts, t).await;
    c.login(alice, ts.app_id, &at).await;
    ping(&mut c, "new").await;
    ts.stop().await;
}

async fn connections_in_all_are_capped(t: Transport) {
    let ts = TestServer::start_with(|c| {
        c.max_connections = 2;
        c.xmpp_max_connections_per_ip = 0;
    })
    .await;
    let mut a = opened(&ts, t).await;
    let _b = opened(&ts, Transport::Tcp).await;
    assert_refused(
        &ts,
        t,
        "resource-constraint",
        "The server has too many connections, try again later",
    )
    .await;
    // REST is not an XMPP connection and is still served.
    ts.app_session().await;
    a.close().await;
    wait_open_connections(&ts, 1).await;
    opened(&ts, t).await;
    ts.stop().await;
}

/// Sends `n` pings in one write (one frame each over WebSocket) and reads all the answers.
async fn burst_of_pings(c: &mut XmppClient, n: usize, pad: usize) {
    let pad = "p".repeat(pad);
    let all: String = (0..n)
        .map(|i| {
            format!("<iq type='get' id='b{i}' to='localhost' pad='{pad}'><ping xmlns='urn:xmpp:ping'/></iq>")
        })
        .collect();
    match c.framing {
        confab_xmpp::stream::Framing::Tcp => c.send(&all).await,
        confab_xmpp::stream::Framing::WebSocket => {
            for i in 0..n {
                c.send(&format!(
                    "<iq type='get' id='b{i}' to='localhost' pad='{pad}'><ping xmlns='urn:xmpp:ping'/></iq>"
                ))
                .await;
            }
        }
    }
    let last = format!("b{}", n - 1);
    c.until(|e| e.attr("id") == Some(last.as_str())).await;
}

/// How long `n` padded pings and then one more take to be answered.
async fn burst_time(c: &mut XmppClient, n: usize, pad: usize) -> Duration {
    let start = Instant::now();
    burst_of_pings(c, n, pad).await;
    ping(c, "after-burst").await;
    start.elapsed()
}

/// A session over its stanza rate is read more slowly; nothing is refused or lost. At 5 stanzas a
/// second with a burst of 10: 10 stanzas are answered at once, 16 wait for the ones over the burst
/// (about a second).
async fn stanza_rate_slows_reading(t: Transport) {
    let ts = TestServer::start_with(|c| {
        c.xmpp_max_stanzas_per_sec = 5;
        c.xmpp_stanza_burst = 10;
    })
    .await;
    let (alice, at) = ts.user("alice").await;
    let mut a = XmppClient::over(&ts, t).await;
    a.login(alice, ts.app_id, &at).await;
    // Let the login's stanzas be paid for: the bucket is full again.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let quick = burst_time(&mut a, 9, 0).await;
    assert!(quick < Duration::from_millis(500), "{quick:?}");

    tokio::time::sleep(Duration::from_secs(3)).await;
    let slow = burst_time(&mut a, 15, 0).await;
    assert!(slow >= Duration::from_millis(700), "{slow:?}");
    assert!(slow < Duration::from_secs(5), "{slow:?}");
    ts.stop().await;
}

/// The same for bytes: 8 KiB a second with a burst of 16 KiB.
async fn byte_rate_slows_reading(t: Transport) {
    let ts = TestServer::start_with(|c| {
        c.xmpp_max_bytes_per_sec = 8 * 1024;
        c.xmpp_byte_burst = 16 * 1024;
    })
    .await;
    let (alice, at) = ts.user("alice").await;
    let mut a = XmppClient::over(&ts, t).await;
    a.login(alice, ts.app_id, &at).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Four stanzas of about 3.6 KiB and a ping: just under the burst.
    let quick = burst_time(&mut a, 4, 3600).await;
    assert!(quick < Duration::from_millis(500), "{quick:?}");

    tokio::time::sleep(Duration::from_secs(3)).await;
    // About 24 KiB: 8 KiB over the burst, a second at 8 KiB/s.
    let slow = burst_time(&mut a, 6, 4000).await;
    assert!(slow >= Duration::from_millis(700), "{slow:?}");
    assert!(slow < Duration::from_secs(5), "{slow:?}");
    ts.stop().await;
}

/// Password attempts from one address count across accounts and across REST and XMPP; over the
/// limit SASL answers `temporary-auth-failure`, even with the right password.
async fn password_attempts_per_address_are_limited(t: Transport) {
    let ts = TestServer::start_with(|c| {
        c.login_attempts_per_minute_per_ip = 3;
        c.per_ip_limits_on_loopback = true;
    })
    .await;
    let alice = ts.signup("alice").await;
    let bob = ts.signup("bob").await;
    let user = |id: i64| format!("{id}-{}", ts.app_id);

    // One REST attempt...
    let (s, _) = ts.user_session("alice", "wrong").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // ...and two over XMPP, for two accounts.
    for (id, secret) in [(alice, "wrong"), (bob, "password1")] {
        let mut c = XmppClient::over(&ts, t).await;
        c.open("localhost").await;
        let r = c.auth(&user(id), secret).await;
        assert_eq!(r.is_ok(), secret == "password1", "{r:?}");
    }
    let mut c = XmppClient::over(&ts, t).await;
    c.open("localhost").await;
    assert_eq!(
        c.auth(&user(alice), "password1").await,
        Err("temporary-auth-failure".to_string())
    );
    ts.stop().await;
}

confab_testkit::on_both_transports!(
    connections_per_address_are_capped,
    connections_in_all_are_capped,
    stanza_rate_slows_reading,
    byte_rate_slows_reading,
    password_attempts_per_address_are_limited,
);
