//! Hostile input against the real server: what used to take it down or answer 500 now gets a clear
//! protocol-level error, and everyone else keeps being served.
use confab_testkit as common;

use common::xmpp::{Transport, XmppClient};
use common::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn connect(ts: &TestServer, t: Transport, id: i64, secret: &str) -> XmppClient {
    let mut c = XmppClient::over(ts, t).await;
    c.login(id, ts.app_id, secret).await;
    c
}

async fn ping(c: &mut XmppClient, id: &str) {
    c.send(&format!(
        "<iq type='get' id='{id}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"
    ))
    .await;
    let r = c.until(|e| e.attr("id") == Some(id)).await;
    assert_eq!(r.attr("type"), Some("result"));
}

fn nested(depth: usize) -> String {
    format!(
        "{}deep{}",
        "<x>".repeat(depth.saturating_sub(1)),
        "</x>".repeat(depth.saturating_sub(1))
    )
}

/// One message nested 20,000 elements deep to an online user used to overflow the stack and abort
/// the process. Now the sender's stream ends with `policy-violation`, and the recipient, the server
/// and new logins are unharmed. A message exactly at the depth limit is still delivered.
async fn deep_nesting_is_a_policy_violation(t: Transport) {
    let ts = TestServer::start_with(|c| c.xmpp_max_depth = 8).await;
    let (alice, at) = ts.user("alice").await;
    let (bob, bt) = ts.user("bob").await;
    let mut a = connect(&ts, t, alice, &at).await;
    let mut b = connect(&ts, t, bob, &bt).await;
    b.send("<presence/>").await;
    ping(&mut b, "ready").await;
    let to = format!("{bob}-{}@localhost", ts.app_id);

    // message > body counts 2 levels; 6 more reach the limit of 8.
    a.send(&format!(
        "<message to='{to}' type='chat' id='at-limit'><body>ok</body><data xmlns='urn:x'>{}</data></message>",
        nested(5)
    ))
    .await;
    let got = b.until(|e| e.name == "message").await;
    assert_eq!(got.attr("id"), Some("at-limit"));

    a.send(&format!(
        "<message to='{to}' type='chat' id='too-deep'><body>no</body>{}</message>",
        nested(20_000)
    ))
    .await;
    a.expect_stream_error("policy-violation").await;

    // Bob is still connected and got nothing more; the server takes new logins.
    ping(&mut b, "after").await;
    let mut a2 = connect(&ts, t, alice, &at).await;
    ping(&mut a2, "again").await;
    ts.stop().await;
}

async fn too_many_or_too_long_attributes_are_a_policy_violation(t: Transport) {
    let ts = TestServer::start_with(|c| {
        c.xmpp_max_attributes = 4;
        c.xmpp_max_attribute_bytes = 64;
    })
    .await;
    let (alice, at) = ts.user("alice").await;
    let (bob, bt) = ts.user("bob").await;
    let to = format!("{bob}-{}@localhost", ts.app_id);
    let mut b = connect(&ts, t, bob, &bt).await;

    // At the limits: 4 attributes, a 64-byte value.
    let mut a = connect(&ts, t, alice, &at).await;
    let id = "i".repeat(64);
    a.send(&format!(
        "<message to='{to}' type='chat' id='{id}' xml:lang='en'><body>ok</body></message>"
    ))
    .await;
    ping(&mut a, "fine").await;

    a.send(&format!(
        "<message to='{to}' type='chat' id='x' xml:lang='en' a='1'><body>no</body></message>"
    ))
    .await;
    a.expect_stream_error("policy-violation").await;

    let mut a = connect(&ts, t, alice, &at).await;
    a.send(&format!(
        "<message to='{to}' type='chat' id='{}'><body>no</body></message>",
        "i".repeat(65)
    ))
    .await;
    a.expect_stream_error("policy-violation").await;
    ping(&mut b, "alive").await;
    ts.stop().await;
}

confab_testkit::on_both_transports!(
    deep_nesting_is_a_policy_violation,
    too_many_or_too_long_attributes_are_a_policy_violation,
);

/// The default limits take the 20,000-deep message too (no configuration needed to be safe).
#[tokio::test]
async fn default_limits_refuse_deep_nesting() {
    let ts = TestServer::start().await;
    let (alice, at) = ts.user("alice").await;
    let mut a = connect(&ts, Transport::Tcp, alice, &at).await;
    a.send(&format!(
        "<message to='1-{}@localhost' type='chat'>{}</message>",
        ts.app_id,
        nested(20_000)
    ))
    .await;
    a.expect_stream_error("policy-violation").await;
    ts.stop().await;
}

/// A NUL byte in search text used to answer 500; it separates words like a space.
#[tokio::test]
async fn nul_bytes_in_search_text_are_not_a_server_error() {
    let t = TestServer::start().await;
    let (_, token) = t.user("alice").await;
    let (bob, _) = t.user("bob").await;
    let (s, v) = t
        .call(
            Method::POST,
            "/chat/Message.json",
            Some(&token),
            Some(json!({"recipient_id": bob, "message": "alpha bravo"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let dialog = v["chat_dialog_id"].as_str().unwrap().to_string();

    let (s, v) = t
        .call(
            Method::GET,
            "/chat/search.json?search_text=alpha%00bravo",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["results"]["messages"][0]["message"], json!("alpha bravo"));

    for path in [
        format!("/chat/Message.json?chat_dialog_id={dialog}&search_text=alpha%00bravo"),
        format!("/chat/Message.json?chat_dialog_id={dialog}&message[ctn]=al%00pha"),
        format!("/chat/Dialog.json?name[ctn]=a%00b&_id={dialog}"),
        "/chat/search.json?search_text=%00%00%00%00%00".to_string(),
        "/users/v2.json?login=%00".to_string(),
        "/users/by_login.json?login=a%00b".to_string(),
    ] {
        let (s, v) = t.call(Method::GET, &path, Some(&token), None).await;
        assert!(
            s == StatusCode::OK || s.is_client_error(),
            "{path}: {s} {v}"
        );
    }
    t.stop().await;
}

/// Seed 000 prints the unsubscribe path as `/chat/dialog/{id}/subscribe`; it works like the SDK's
/// capitalised one.
#[tokio::test]
async fn lower_case_chat_paths_from_the_seed_work() {
    let t = TestServer::start().await;
    let (_, owner) = t.user("owner").await;
    let (_, reader) = t.user("reader").await;
    let (s, v) = t
        .call(
            Method::POST,
            "/chat/Dialog.json",
            Some(&owner),
            Some(json!({"type": 4, "name": "Open"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let id = v["_id"].as_str().unwrap().to_string();
    let (s, v) = t
        .call(
            Method::POST,
            &format!("/chat/dialog/{id}/subscribe"),
            Some(&reader),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["occupants_count"], json!(2));
    let (s, v) = t
        .form(
            Method::DELETE,
            &format!("/chat/dialog/{id}/subscribe"),
            &reader,
            "",
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = t
        .call(
            Method::GET,
            &format!("/chat/message.json?chat_dialog_id={id}"),
            Some(&owner),
            None,
        )
        .await;
    assert!(v["items"].is_array(), "{v}");
    let (_, v) = t
        .call(
            Method::GET,
            &format!("/chat/Dialog.json?_id={id}"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(v["items"][0]["occupants_count"], json!(1));
    // A path that only starts like an alias is not rewritten.
    let (s, _) = t
        .call(Method::GET, "/chat/dialogs", Some(&owner), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    t.stop().await;
}
