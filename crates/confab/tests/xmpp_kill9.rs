//! An acknowledged message survives `kill -9` of the server: the real `confab` binary is killed with
//! SIGKILL right after it acknowledged (XEP-0198 `<a h/>`) a burst of chat messages to an offline
//! user, then started again on the same data directory. Every message reaches the recipient at
//! login, once and in the order sent, and those sent with `save_to_history=1` are in the REST history.

use confab_testkit as common;

use std::collections::BTreeSet;
use std::path::Path;

use common::process::ConfabProcess;
use common::xmpp::XmppClient;
use serde_json::{json, Value};
use tokio::process::Child;

const MESSAGES: usize = 300;

/// `confab serve` on `data_dir`: the child and its HTTP and XMPP addresses.
async fn serve(data_dir: &Path) -> (Child, String, std::net::SocketAddr) {
    let p = ConfabProcess::serve(Path::new(env!("CARGO_BIN_EXE_confab")), data_dir, &[]).await;
    (p.child, p.http, p.xmpp)
}

async fn post(http: &str, path: &str, body: Value, headers: &[(&str, &str)]) -> Value {
    let mut req = reqwest::Client::new()
        .post(format!("http://{http}{path}"))
        .json(&body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    resp.json().await.unwrap()
}

/// Signs a user up and opens a session: `(user id, session token)`.
async fn user(http: &str, app: &Value, login: &str) -> (i64, String) {
    let auth_key = app["auth_key"].as_str().unwrap();
    let creds = json!({"login": login, "password": "password1"});
    let u = post(
        http,
        "/users.json",
        json!({"user": creds}),
        &[("CB-AuthKey", auth_key)],
    )
    .await;
    let s = post(
        http,
        "/session.json",
        json!({"application_id": app["id"], "auth_key": auth_key, "user": creds}),
        &[],
    )
    .await;
    (
        u["user"]["id"].as_i64().unwrap(),
        s["session"]["token"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn acknowledged_messages_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_confab"))
        .args(["app", "create", "--name", "kill9"])
        .env("CONFAB_DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let app: Value = serde_json::from_str(&text[text.find('{').unwrap()..]).unwrap();
    let app_id = app["id"].as_i64().unwrap();

    let (mut server, http, xmpp) = serve(dir.path()).await;
    let (alice, alice_token) = user(&http, &app, "alice").await;
    let (bob, bob_token) = user(&http, &app, "bob").await;

    let mut a = XmppClient::tcp(xmpp).await;
    a.login(alice, app_id, &alice_token).await;
    a.send("<enable xmlns='urn:xmpp:sm:3'/>").await;
    a.until(|e| e.name == "enabled").await;
    let bob_bare = format!("{bob}-{app_id}@localhost");
    let burst: String = (0..MESSAGES)
        .map(|i| {
            let save = i % 2;
            format!("<message to='{bob_bare}' type='chat' id='{i:024x}'><body>m{i}</body><extraParams xmlns='jabber:client'><save_to_history>{save}</save_to_history></extraParams></message>")
        })
        .collect();
    a.send(&format!("{burst}<r xmlns='urn:xmpp:sm:3'/>")).await;
    let ack = a.until(|e| e.name == "a").await;
    assert_eq!(ack.attr("h"), Some(MESSAGES.to_string().as_str()));

    // SIGKILL at once: no shutdown, no flush.
    server.kill().await.unwrap();
    drop(a);

    let (_server, http, xmpp) = serve(dir.path()).await;
    let mut b = XmppClient::tcp(xmpp).await;
    b.login(bob, app_id, &bob_token).await;
    b.send("<presence/>").await;
    let mut got = Vec::new();
    let mut dialog = String::new();
    while got.len() < MESSAGES {
        let m = b.until(|e| e.name == "message").await;
        assert!(m.child("delay", "urn:xmpp:delay").is_some());
        got.push(m.attr("id").unwrap().to_string());
        dialog = m
            .child_named("extraParams")
            .and_then(|x| x.child_named("dialog_id"))
            .map(|d| d.text())
            .unwrap_or_default();
    }
    let want: Vec<String> = (0..MESSAGES).map(|i| format!("{i:024x}")).collect();
    assert_eq!(
        got, want,
        "every acknowledged message, once, in the order sent"
    );

    // The saved half, from REST history (pages of at most 100).
    let mut saved = BTreeSet::new();
    for skip in (0..MESSAGES).step_by(100) {
        let page: Value = reqwest::Client::new()
            .get(format!(
                "http://{http}/chat/Message.json?chat_dialog_id={dialog}&limit=100&skip={skip}"
            ))
            .header("CB-Token", &bob_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let items = page["items"].as_array().unwrap_or_else(|| panic!("{page}"));
        saved.extend(items.iter().map(|m| m["_id"].as_str().unwrap().to_string()));
    }
    let want_saved: BTreeSet<String> = (0..MESSAGES)
        .filter(|i| i % 2 == 1)
        .map(|i| format!("{i:024x}"))
        .collect();
    assert_eq!(saved, want_saved);
}
