//! Push over real sockets: subscriptions and events through the REST API, chat alerts for offline
//! and background recipients over XMPP, delivered to fake FCM and webhook endpoints on loopback
//! that check what the real ones check (the OAuth2 JWT, the v1 body, the webhook signature) and
//! answer with failures on demand to prove retries, restarts and token removal.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Form, Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use confab_testkit as common;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::sync::mpsc;

use common::xmpp::{Transport, XmppClient};

mod chatserver_common;
use common::TestServer;

const WEBHOOK_SECRET: &str = "test-webhook-secret";
const KEY_PEM: &str = include_str!("fixtures/fcm-test-key.pem");
const PUB_PEM: &str = include_str!("fixtures/fcm-test-key.pub.pem");
const CLIENT_EMAIL: &str = "confab-test@example.iam.gserviceaccount.com";
const PROJECT: &str = "confab-test";

/// What the fakes received, in order.
#[derive(Debug, Clone)]
enum Received {
    Fcm { token: String, data: Value },
    Hook(Value),
}

/// Answers the fakes give, per device token (FCM) or for the webhook: popped one per request;
/// 200 when none is left.
#[derive(Clone, Default)]
struct Script(Arc<Mutex<HashMap<String, Vec<Answer>>>>);

/// A status code and an optional `Retry-After` in seconds.
type Answer = (u16, Option<u64>);

impl Script {
    fn set(&self, key: &str, answers: &[Answer]) {
        self.0.lock().unwrap().insert(key.into(), answers.to_vec());
    }
    fn next(&self, key: &str) -> Answer {
        let mut m = self.0.lock().unwrap();
        match m.get_mut(key) {
            Some(list) if !list.is_empty() => list.remove(0),
            _ => (200, None),
        }
    }
}

#[derive(Clone)]
struct Fakes {
    tx: mpsc::UnboundedSender<Received>,
    script: Script,
    token_uri: Arc<Mutex<String>>,
    tokens_issued: Arc<Mutex<u32>>,
}

fn answer(status: u16, retry_after: Option<u64>, body: Value) -> Response {
    let mut resp = (StatusCode::from_u16(status).unwrap(), Json(body)).into_response();
    if let Some(s) = retry_after {
        resp.headers_mut()
            .insert("retry-after", s.to_string().parse().unwrap());
    }
    resp
}

/// The OAuth2 token endpoint: a JWT-bearer grant signed by the service account's key.
async fn token(State(f): State<Fakes>, Form(form): Form<HashMap<String, String>>) -> Response {
    assert_eq!(
        form.get("grant_type").map(String::as_str),
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    );
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&[f.token_uri.lock().unwrap().clone()]);
    v.set_issuer(&[CLIENT_EMAIL]);
    let claims = jsonwebtoken::decode::<Value>(
        &form["assertion"],
        &DecodingKey::from_rsa_pem(PUB_PEM.as_bytes()).unwrap(),
        &v,
    )
    .expect("a valid RS256 assertion")
    .claims;
    assert_eq!(
        claims["scope"],
        "https://www.googleapis.com/auth/firebase.messaging"
    );
    let life = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert!(life > 0 && life <= 3600, "{life}");
    let mut n = f.tokens_issued.lock().unwrap();
    *n += 1;
    Json(json!({ "access_token": format!("access-{n}"), "expires_in": 3600 })).into_response()
}

/// FCM HTTP v1 `messages:send`.
async fn fcm_send(
    State(f): State<Fakes>,
    Path((project, action)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    assert_eq!(
        (project.as_str(), action.as_str()),
        (PROJECT, "messages:send")
    );
    let auth = headers["authorization"].to_str().unwrap();
    assert!(auth.starts_with("Bearer access-"), "{auth}");
    let msg = &body["message"];
    let token = msg["token"].as_str().unwrap().to_string();
    let data = msg["data"].clone();
    assert!(
        data.as_object().unwrap().values().all(Value::is_string),
        "{data}"
    );
    assert!(data.to_string().len() <= 4096);
    let (status, retry_after) = f.script.next(&token);
    if status == 200 {
        f.tx.send(Received::Fcm { token, data }).unwrap();
        return answer(
            200,
            None,
            json!({ "name": format!("projects/{PROJECT}/messages/1") }),
        );
    }
    let error = if status == 404 {
        "UNREGISTERED"
    } else {
        "UNAVAILABLE"
    };
    answer(status, retry_after, json!({ "error": { "status": error } }))
}

async fn hook(State(f): State<Fakes>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let sig = headers["x-confab-signature"].to_str().unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).unwrap();
    mac.update(&body);
    assert_eq!(
        sig,
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    );
    let (status, retry_after) = f.script.next("webhook");
    if status == 0 {
        // A provider that hangs (until the server's push timeout gives up on it).
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    if status == 200 {
        f.tx.send(Received::Hook(serde_json::from_slice(&body).unwrap()))
            .unwrap();
    }
    answer(status, retry_after, json!({}))
}

struct Harness {
    ts: TestServer,
    rx: mpsc::UnboundedReceiver<Received>,
    script: Script,
    _account: tempfile::NamedTempFile,
}

impl Harness {
    async fn start() -> Self {
        Self::start_on(false).await
    }

    /// With the ChatServer face on too, when `chatserver`.
    async fn start_on(chatserver: bool) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let fakes = Fakes {
            tx,
            script: Script::default(),
            token_uri: Arc::default(),
            tokens_issued: Arc::default(),
        };
        let app = Router::new()
            .route("/token", post(token))
            .route("/v1/projects/{project}/{action}", post(fcm_send))
            .route("/hook", post(hook))
            .with_state(fakes.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        *fakes.token_uri.lock().unwrap() = format!("{base}/token");
        let account = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(
            account.path(),
            json!({
                "type": "service_account",
                "project_id": PROJECT,
                "private_key_id": "k1",
                "private_key": KEY_PEM,
                "client_email": CLIENT_EMAIL,
                "token_uri": format!("{base}/token"),
            })
            .to_string(),
        )
        .unwrap();
        let path = account.path().to_path_buf();
        let tweak = |c: &mut confab::Config| {
            c.push_webhook_url = Some(format!("{base}/hook"));
            c.push_webhook_secret = Some(WEBHOOK_SECRET.into());
            c.fcm_credentials = Some(path);
            c.fcm_endpoint = base.clone();
            c.push_allow_private_endpoints = true;
        };
        let ts = match chatserver {
            true => TestServer::start_chatserver_with(tweak).await,
            false => TestServer::start_with(tweak).await,
        };
        Self {
            ts,
            rx,
            script: fakes.script,
            _account: account,
        }
    }

    async fn next(&mut self, within: Duration) -> Option<Received> {
        tokio::time::timeout(within, self.rx.recv())
            .await
            .ok()
            .flatten()
    }

    /// Everything received within `within`.
    async fn drain(&mut self, within: Duration) -> Vec<Received> {
        let mut got = Vec::new();
        while let Some(r) = self.next(within).await {
            got.push(r);
        }
        got
    }

    async fn subscribe_gcm(&self, token: &str, udid: &str, device_token: &str) -> Value {
        let (s, v) = self
            .ts
            .call(
                Method::POST,
                "/subscriptions.json",
                Some(token),
                Some(json!({
                    "notification_channel": "gcm",
                    "push_token": { "environment": "development", "client_identification_sequence": device_token },
                    "device": { "platform": "android", "udid": udid },
                })),
            )
            .await;
        assert!(s.is_success(), "{v}");
        v
    }
}

fn p256dh() -> String {
    let mut point = vec![4u8];
    point.extend([7u8; 64]);
    URL_SAFE_NO_PAD.encode(point)
}

#[tokio::test]
async fn subscriptions_are_the_users_own_and_replace_per_device() {
    let h = Harness::start().await;
    let ts = &h.ts;
    let (_, at) = ts.user("alice").await;
    let (_, bt) = ts.user("bob").await;

    let v = h.subscribe_gcm(&at, "phone-1", "token-1").await;
    let sub = &v[0]["subscription"];
    assert_eq!(sub["notification_channel"]["name"], "gcm");
    assert_eq!(sub["device"]["udid"], "phone-1");
    assert_eq!(sub["device"]["platform"]["name"], "android");
    let id = sub["id"].as_i64().unwrap();

    // A new token for the same device replaces the old one.
    let again = h.subscribe_gcm(&at, "phone-1", "token-2").await;
    assert_eq!(again[0]["subscription"]["id"].as_i64(), Some(id));
    let (web_status, web) = ts
        .call(
            Method::POST,
            "/subscriptions.json",
            Some(&at),
            Some(json!({
                "notification_channel": "web",
                "push_token": { "environment": "production", "web_endpoint": "http://127.0.0.1:9/push",
                                "web_auth": URL_SAFE_NO_PAD.encode([1u8; 16]), "web_p256dh": p256dh() },
                "device": { "platform": "web", "udid": "browser-1" },
            })),
        )
        .await;
    assert!(web_status.is_success(), "{web}");
    let (_, list) = ts
        .call(Method::GET, "/subscriptions.json", Some(&at), None)
        .await;
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");

    // Someone else's subscription does not exist for bob; no session, no access.
    let (s, _) = ts
        .call(
            Method::DELETE,
            &format!("/subscriptions/{id}.json"),
            Some(&bt),
            None,
        )
        .await;
    assert_eq!(s, 404);
    let (s, _) = ts
        .call(Method::GET, "/subscriptions.json", None, None)
        .await;
    assert_eq!(s, 401);
    let (_, bobs) = ts
        .call(Method::GET, "/subscriptions.json", Some(&bt), None)
        .await;
    assert_eq!(bobs, json!([]));

    let (s, _) = ts
        .call(
            Method::DELETE,
            &format!("/subscriptions/{id}.json"),
            Some(&at),
            None,
        )
        .await;
    assert!(s.is_success());
    let (_, list) = ts
        .call(Method::GET, "/subscriptions.json", Some(&at), None)
        .await;
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn bad_subscriptions_are_refused_and_store_nothing() {
    let h = Harness::start().await;
    let ts = &h.ts;
    let (_, at) = ts.user("alice").await;
    let good_web = json!({ "environment": "production", "web_endpoint": "https://push.example.com/x",
                           "web_auth": URL_SAFE_NO_PAD.encode([1u8; 16]), "web_p256dh": p256dh() });
    let cases = [
        // Unknown channel, environment, platform; no udid; no token.
        (
            json!({"notification_channel":"sms","push_token":{"environment":"development","client_identification_sequence":"t"},"device":{"platform":"android","udid":"u"}}),
            "notification_channel",
        ),
        (
            json!({"notification_channel":"gcm","push_token":{"environment":"staging","client_identification_sequence":"t"},"device":{"platform":"android","udid":"u"}}),
            "environment",
        ),
        (
            json!({"notification_channel":"gcm","push_token":{"environment":"development","client_identification_sequence":"t"},"device":{"platform":"symbian","udid":"u"}}),
            "platform",
        ),
        (
            json!({"notification_channel":"gcm","push_token":{"environment":"development","client_identification_sequence":"t"},"device":{"platform":"android"}}),
            "udid",
        ),
        (
            json!({"notification_channel":"apns","push_token":{"environment":"development"},"device":{"platform":"ios","udid":"u"}}),
            "client_identification_sequence",
        ),
        // Web Push: a bad key, a short auth secret, no endpoint.
        (
            json!({"notification_channel":"web","push_token":{"environment":"production","web_endpoint":"https://push.example.com/x","web_auth":URL_SAFE_NO_PAD.encode([1u8; 16]),"web_p256dh":"AAAA"},"device":{"platform":"web","udid":"u"}}),
            "web_p256dh",
        ),
        (
            json!({"notification_channel":"web","push_token":{"environment":"production","web_endpoint":"https://push.example.com/x","web_auth":"AAAA","web_p256dh":p256dh()},"device":{"platform":"web","udid":"u"}}),
            "web_auth",
        ),
        (
            json!({"notification_channel":"web","push_token":{"environment":"production","web_auth":URL_SAFE_NO_PAD.encode([1u8; 16]),"web_p256dh":p256dh()},"device":{"platform":"web","udid":"u"}}),
            "web_endpoint",
        ),
        (
            json!({"notification_channel":"web","push_token": good_web, "device":{"platform":"web"}}),
            "udid",
        ),
    ];
    for (body, field) in cases {
        let (s, v) = ts
            .call(Method::POST, "/subscriptions.json", Some(&at), Some(body))
            .await;
        assert_eq!(s, 422, "{v}");
        assert!(v["errors"].to_string().contains(field), "{field}: {v}");
    }
    let (_, list) = ts
        .call(Method::GET, "/subscriptions.json", Some(&at), None)
        .await;
    assert_eq!(list, json!([]));
}

#[tokio::test]
async fn web_endpoints_must_be_public_https_unless_allowed() {
    let ts = TestServer::start().await;
    let (_, at) = ts.user("alice").await;
    for endpoint in [
        "http://push.example.com/x",
        "https://127.0.0.1/x",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]:8443/x",
        "https://localhost/x",
    ] {
        let (s, v) = ts
            .call(
                Method::POST,
                "/subscriptions.json",
                Some(&at),
                Some(json!({
                    "notification_channel": "web",
                    "push_token": { "environment": "production", "web_endpoint": endpoint,
                                    "web_auth": URL_SAFE_NO_PAD.encode([1u8; 16]), "web_p256dh": p256dh() },
                    "device": { "platform": "web", "udid": "b" },
                })),
            )
            .await;
        assert_eq!(s, 422, "{endpoint}: {v}");
        assert!(v["errors"].to_string().contains("web_endpoint"), "{v}");
    }
}

#[tokio::test]
async fn events_reach_subscriptions_of_their_environment_and_the_webhook() {
    let mut h = Harness::start().await;
    let (alice, at) = h.ts.user("alice").await;
    let (bob, bt) = h.ts.user("bob").await;
    let (carol, _) = h.ts.user("carol").await;
    h.subscribe_gcm(&at, "a-phone", "alice-token").await;
    h.subscribe_gcm(&bt, "b-phone", "bob-token").await;
    let universal = STANDARD.encode(r#"{"message":"Game starts","ios_badge":3,"match":"m1"}"#);
    let (s, v) =
        h.ts.call(
            Method::POST,
            "/events.json",
            Some(&at),
            Some(json!({ "event": {
                "notification_type": "push",
                "environment": "development",
                "message": universal,
                "user": { "ids": format!("{bob},{carol}") },
            }})),
        )
        .await;
    assert!(s.is_success(), "{v}");
    let event_id = v[0]["event"]["id"].as_i64().unwrap();
    assert_eq!(v[0]["event"]["environment"], "development");

    let got = h.drain(Duration::from_millis(1500)).await;
    // Bob's phone once; a webhook copy for bob and for carol (who has no device); none for alice.
    let fcm: Vec<_> = got
        .iter()
        .filter_map(|r| match r {
            Received::Fcm { token, data } => Some((token.clone(), data.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(fcm.len(), 1, "{got:?}");
    assert_eq!(fcm[0].0, "bob-token");
    assert_eq!(fcm[0].1["message"], "Game starts");
    assert_eq!(fcm[0].1["ios_badge"], "3");
    assert_eq!(fcm[0].1["match"], "m1");
    let mut hooks: Vec<Value> = got
        .iter()
        .filter_map(|r| match r {
            Received::Hook(v) => Some(v.clone()),
            _ => None,
        })
        .collect();
    hooks.sort_by_key(|v| v["user_id"].as_i64());
    assert_eq!(hooks.len(), 2, "{got:?}");
    assert_eq!(hooks[0]["type"], "event");
    assert_eq!(hooks[0]["user_id"], bob);
    assert_eq!(hooks[1]["user_id"], carol);
    assert_eq!(hooks[0]["event_id"], event_id);
    assert_eq!(hooks[0]["payload"], universal);
    assert_eq!(hooks[0]["app_id"], h.ts.app_id);
    let _ = alice;

    // Another environment reaches no device, only the webhook.
    let (s, _) =
        h.ts.call(
            Method::POST,
            "/events.json",
            Some(&at),
            Some(json!({ "event": {
                "notification_type": "push", "environment": "production", "push_type": "gcm",
                "message": STANDARD.encode("prod only"), "user": { "ids": [bob] },
            }})),
        )
        .await;
    assert!(s.is_success());
    let got = h.drain(Duration::from_millis(800)).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(matches!(&got[0], Received::Hook(v) if v["message"] == "prod only"));
}

#[tokio::test]
async fn bad_events_are_refused_and_send_nothing() {
    let mut h = Harness::start().await;
    let (bob, bt) = h.ts.user("bob").await;
    h.subscribe_gcm(&bt, "b-phone", "bob-token").await;
    let msg = STANDARD.encode("hi");
    let cases = [
        (
            json!({"notification_type":"email","environment":"development","message":msg,"user":{"ids":[bob]}}),
            "notification_type",
        ),
        (
            json!({"notification_type":"push","environment":"staging","message":msg,"user":{"ids":[bob]}}),
            "environment",
        ),
        (
            json!({"notification_type":"push","environment":"development","push_type":"sms","message":msg,"user":{"ids":[bob]}}),
            "push_type",
        ),
        (
            json!({"notification_type":"push","environment":"development","user":{"ids":[bob]}}),
            "message",
        ),
        (
            json!({"notification_type":"push","environment":"development","message":"%%%","user":{"ids":[bob]}}),
            "message",
        ),
        (
            json!({"notification_type":"push","environment":"development","message":msg}),
            "user",
        ),
        (
            json!({"notification_type":"push","environment":"development","message":msg,"user":{"ids":"1,x"}}),
            "user.ids",
        ),
        (
            json!({"notification_type":"push","environment":"development","event_type":"hourly","message":msg,"user":{"ids":[bob]}}),
            "event_type",
        ),
        (
            json!({"notification_type":"push","environment":"development","event_type":"fixed_date","message":msg,"user":{"ids":[bob]}}),
            "date",
        ),
        (
            json!({"notification_type":"push","environment":"development","event_type":"fixed_date","date":1_000_000_000,"message":msg,"user":{"ids":[bob]}}),
            "date",
        ),
    ];
    for (event, field) in cases {
        let (s, v) =
            h.ts.call(
                Method::POST,
                "/events.json",
                Some(&bt),
                Some(json!({ "event": event })),
            )
            .await;
        assert_eq!(s, 422, "{v}");
        assert!(v["errors"].to_string().contains(field), "{field}: {v}");
    }
    let (s, _) =
        h.ts.call(
            Method::POST,
            "/events.json",
            None,
            Some(json!({"event":{}})),
        )
        .await;
    assert_eq!(s, 401);
    assert!(h.drain(Duration::from_millis(500)).await.is_empty());
}

async fn xmpp_user(ts: &TestServer, id: i64, token: &str) -> XmppClient {
    let mut c = XmppClient::over(ts, Transport::Tcp).await;
    c.login(id, ts.app_id, token).await;
    c.send("<presence/>").await;
    c
}

fn chat(to: &str, id: &str, body: &str, extra: &str) -> String {
    format!(
        "<message to='{to}' type='chat' id='{id}'><body>{body}</body>\
         <extraParams xmlns='jabber:client'>{extra}</extraParams></message>"
    )
}

#[tokio::test]
async fn offline_and_background_recipients_get_chat_alerts() {
    let mut h = Harness::start().await;
    let (alice, at) = h.ts.user("alice").await;
    let (bob, bt) = h.ts.user("bob").await;
    h.subscribe_gcm(&bt, "b-phone", "bob-token").await;
    let mut a = xmpp_user(&h.ts, alice, &at).await;
    let bob_jid = format!("{bob}-{}@localhost", h.ts.app_id);

    // Bob is offline: one push to his phone within 2 s, and the webhook's copy.
    let started = std::time::Instant::now();
    a.send(&chat(
        &bob_jid,
        "m1",
        "are you there?",
        "<save_to_history>1</save_to_history>",
    ))
    .await;
    let mut fcm = None;
    let mut hook = None;
    while fcm.is_none() || hook.is_none() {
        match h
            .next(Duration::from_secs(2))
            .await
            .expect("an alert within 2 s")
        {
            Received::Fcm { data, .. } => fcm = Some(data),
            Received::Hook(v) => hook = Some(v),
        }
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    let (fcm, hook) = (fcm.unwrap(), hook.unwrap());
    assert_eq!(fcm["message"], "alice: are you there?");
    let dialog = fcm["dialog_id"].as_str().unwrap().to_string();
    assert_eq!(dialog.len(), 24);
    assert_eq!(hook["type"], "chat_alert");
    assert_eq!(hook["user_id"], bob);
    assert_eq!(hook["sender_id"], alice);
    assert_eq!(hook["dialog_id"], dialog.as_str());
    assert_eq!(hook["message_id"], "m1");

    // Silent messages alert nobody.
    a.send(&chat(&bob_jid, "m2", "psst", "<silent>1</silent>"))
        .await;
    assert!(h.drain(Duration::from_millis(700)).await.is_empty());

    // Online and active: no alert. In the background (markInactive): alerts again.
    let mut b = xmpp_user(&h.ts, bob, &bt).await;
    b.until(|e| e.name == "message").await;
    a.send(&chat(&bob_jid, "m3", "you are here", "")).await;
    b.until(|e| e.name == "message" && e.attr("id") == Some("m3"))
        .await;
    assert!(h.drain(Duration::from_millis(700)).await.is_empty());
    b.send("<iq type='set' id='bg'><mobile xmlns='http://tigase.org/protocol/mobile#v2' enable='true'/></iq>")
        .await;
    b.until(|e| e.name == "iq" && e.attr("id") == Some("bg"))
        .await;
    a.send(&chat(&bob_jid, "m4", "wake up", "")).await;
    let got = h.drain(Duration::from_millis(1000)).await;
    assert!(
        got.iter().any(
            |r| matches!(r, Received::Fcm { data, .. } if data["message"] == "alice: wake up")
        ),
        "{got:?}"
    );

    // Notifications off for the dialog: no alert while they are off.
    let (s, v) =
        h.ts.call(
            Method::PUT,
            &format!("/chat/Dialog/{dialog}/notifications.json"),
            Some(&bt),
            Some(json!({ "enabled": 0 })),
        )
        .await;
    assert!(s.is_success(), "{v}");
    a.send(&chat(
        &bob_jid,
        "m5",
        "quiet please",
        &format!("<dialog_id>{dialog}</dialog_id>"),
    ))
    .await;
    assert!(h.drain(Duration::from_millis(700)).await.is_empty());
}

#[tokio::test]
async fn group_members_without_an_active_session_get_alerts() {
    let mut h = Harness::start().await;
    let (alice, at) = h.ts.user("alice").await;
    let (bob, bt) = h.ts.user("bob").await;
    let (carol, ct) = h.ts.user("carol").await;
    h.subscribe_gcm(&bt, "b-phone", "bob-token").await;
    h.subscribe_gcm(&ct, "c-phone", "carol-token").await;
    h.subscribe_gcm(&at, "a-phone", "alice-token").await;
    let dialog = h.ts.group(&at, &[bob, carol]).await;
    // Carol is online and active; bob is offline.
    let mut c = xmpp_user(&h.ts, carol, &ct).await;
    let mut a = xmpp_user(&h.ts, alice, &at).await;
    let room = format!("{}_{dialog}@muc.localhost", h.ts.app_id);
    a.send(&format!(
        "<message to='{room}' type='groupchat' id='g1'><body>team meeting</body>\
         <extraParams xmlns='jabber:client'><save_to_history>1</save_to_history></extraParams></message>"
    ))
    .await;
    c.until(|e| e.name == "message" && e.attr("id") == Some("g1"))
        .await;
    let got = h.drain(Duration::from_millis(1200)).await;
    let tokens: Vec<_> = got
        .iter()
        .filter_map(|r| match r {
            Received::Fcm { token, data } => {
                assert_eq!(data["dialog_id"], dialog.as_str());
                assert_eq!(data["message"], "alice: team meeting");
                Some(token.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(tokens, vec!["bob-token".to_string()], "{got:?}");
}

#[tokio::test]
async fn failures_are_retried_with_backoff_and_gone_tokens_removed() {
    let mut h = Harness::start().await;
    let (_, at) = h.ts.user("alice").await;
    let (bob, bt) = h.ts.user("bob").await;
    let (carol, ct) = h.ts.user("carol").await;
    h.subscribe_gcm(&bt, "b-phone", "flaky").await;
    h.subscribe_gcm(&ct, "c-phone", "gone").await;
    // Bob's token fails twice (a 503 asking for 1 s, then a 429), then works; the webhook fails once.
    h.script.set("flaky", &[(503, Some(1)), (429, None)]);
    h.script.set("gone", &[(404, None)]);
    h.script.set("webhook", &[(500, None)]);
    let (s, _) =
        h.ts.call(
            Method::POST,
            "/events.json",
            Some(&at),
            Some(json!({ "event": {
                "notification_type": "push", "environment": "development",
                "message": STANDARD.encode("retry me"), "user": { "ids": [bob, carol] },
            }})),
        )
        .await;
    assert!(s.is_success());
    let got = h.drain(Duration::from_secs(6)).await;
    let fcm: Vec<_> = got
        .iter()
        .filter(|r| matches!(r, Received::Fcm { .. }))
        .collect();
    // Delivered exactly once to bob after the retries; never to the gone token.
    assert_eq!(fcm.len(), 1, "{got:?}");
    assert!(matches!(fcm[0], Received::Fcm { token, .. } if token == "flaky"));
    let hooks = got
        .iter()
        .filter(|r| matches!(r, Received::Hook(_)))
        .count();
    assert_eq!(hooks, 2, "{got:?}");
    // Carol's subscription went with her token.
    let (_, list) =
        h.ts.call(Method::GET, "/subscriptions.json", Some(&ct), None)
            .await;
    assert_eq!(list, json!([]));
    let (_, list) =
        h.ts.call(Method::GET, "/subscriptions.json", Some(&bt), None)
            .await;
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn queued_pushes_survive_a_restart() {
    let mut h = Harness::start().await;
    let (_, at) = h.ts.user("alice").await;
    let (bob, bt) = h.ts.user("bob").await;
    h.subscribe_gcm(&bt, "b-phone", "later").await;
    // The provider is down long enough for the server to stop with the push still queued.
    h.script.set("later", &[(503, Some(30))]);
    h.script.set("webhook", &[(503, Some(30))]);
    let (s, _) =
        h.ts.call(
            Method::POST,
            "/events.json",
            Some(&at),
            Some(json!({ "event": {
                "notification_type": "push", "environment": "development",
                "message": STANDARD.encode("after restart"), "user": { "ids": [bob] },
            }})),
        )
        .await;
    assert!(s.is_success());
    assert!(h.drain(Duration::from_millis(800)).await.is_empty());
    h.ts.restart().await;
    // Still waiting out Retry-After: nothing yet...
    assert!(h.drain(Duration::from_millis(500)).await.is_empty());
    // ...and once due, delivered (the worker wakes for it).
    h.ts.sql_execute("UPDATE push_outbox SET due_at = 0", &[])
        .await;
    // The worker sleeps at most until the due time it knew; a new push wakes it at once.
    let (s, _) =
        h.ts.call(
            Method::POST,
            "/events.json",
            Some(&at),
            Some(json!({ "event": {
                "notification_type": "push", "environment": "production",
                "message": STANDARD.encode("nudge"), "user": { "ids": [bob] },
            }})),
        )
        .await;
    assert!(s.is_success());
    let got = h.drain(Duration::from_secs(2)).await;
    assert!(
        got.iter()
            .any(|r| matches!(r, Received::Fcm { token, data } if token == "later" && data["message"] == "after restart")),
        "{got:?}"
    );
    let hooks: Vec<_> = got
        .iter()
        .filter_map(|r| match r {
            Received::Hook(v) => Some(v["message"].as_str().unwrap().to_string()),
            _ => None,
        })
        .collect();
    assert!(hooks.contains(&"after restart".to_string()), "{hooks:?}");
}

#[tokio::test]
async fn a_hanging_provider_never_delays_chat() {
    let h = Harness::start().await;
    let (alice, at) = h.ts.user("alice").await;
    let (bob, bt) = h.ts.user("bob").await;
    let (carol, _) = h.ts.user("carol").await;
    // Every webhook call hangs; carol is offline, so each message to her makes one.
    h.script.set("webhook", &[(0, None); 64]);
    let mut a = xmpp_user(&h.ts, alice, &at).await;
    let carol_jid = format!("{carol}-{}@localhost", h.ts.app_id);
    for i in 0..20 {
        a.send(&chat(&carol_jid, &format!("c{i}"), "are you there", ""))
            .await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Chat between online users goes on at full speed meanwhile.
    let mut b = xmpp_user(&h.ts, bob, &bt).await;
    let bob_jid = format!("{bob}-{}@localhost", h.ts.app_id);
    let started = std::time::Instant::now();
    for i in 0..20 {
        let id = format!("b{i}");
        a.send(&chat(&bob_jid, &id, "quick", "")).await;
        b.until(|e| e.name == "message" && e.attr("id") == Some(id.as_str()))
            .await;
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // Nor does it hold up a shutdown.
    let started = std::time::Instant::now();
    h.ts.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn subscriptions_per_user_are_capped() {
    let ts = TestServer::start_with(|c| c.push_max_subscriptions_per_user = 3).await;
    let (_, at) = ts.user("alice").await;
    let sub = |udid: &str, token: &str| {
        json!({
            "notification_channel": "gcm",
            "push_token": { "environment": "development", "client_identification_sequence": token },
            "device": { "platform": "android", "udid": udid },
        })
    };
    for i in 0..3 {
        let (s, v) = ts
            .call(
                Method::POST,
                "/subscriptions.json",
                Some(&at),
                Some(sub(&format!("d{i}"), "t")),
            )
            .await;
        assert!(s.is_success(), "{v}");
    }
    // At the limit: a new device is refused, a known one may refresh its token.
    let (s, v) = ts
        .call(
            Method::POST,
            "/subscriptions.json",
            Some(&at),
            Some(sub("d3", "t")),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    assert!(v["errors"].to_string().contains("too many"), "{v}");
    let (s, _) = ts
        .call(
            Method::POST,
            "/subscriptions.json",
            Some(&at),
            Some(sub("d0", "fresh")),
        )
        .await;
    assert!(s.is_success());
    let (_, list) = ts
        .call(Method::GET, "/subscriptions.json", Some(&at), None)
        .await;
    assert_eq!(list.as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn an_event_may_address_at_most_the_configured_users() {
    let ts = TestServer::start_with(|c| c.push_event_max_recipients = 2).await;
    let (a, at) = ts.user("alice").await;
    let (b, _) = ts.user("bob").await;
    let (c, _) = ts.user("carol").await;
    let event = |ids: Vec<i64>| {
        json!({ "event": {
            "notification_type": "push", "environment": "development",
            "message": STANDARD.encode("hi"), "user": { "ids": ids },
        }})
    };
    let (s, v) = ts
        .call(
            Method::POST,
            "/events.json",
            Some(&at),
            Some(event(vec![a, b])),
        )
        .await;
    assert!(s.is_success(), "{v}");
    let (s, v) = ts
        .call(
            Method::POST,
            "/events.json",
            Some(&at),
            Some(event(vec![a, b, c])),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    assert!(v["errors"].to_string().contains("more than 2"), "{v}");
}

#[tokio::test]
async fn fixed_date_events_are_sent_at_their_date() {
    let mut h = Harness::start().await;
    let (_, at) = h.ts.user("alice").await;
    let (bob, _) = h.ts.user("bob").await;
    let date = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        // Whole seconds: +3 puts the date 2 to 3 s away, so the first drain below ends well
        // before it even on a busy machine (+2 left as little as 1 s).
        + 3;
    let (s, v) =
        h.ts.call(
            Method::POST,
            "/events.json",
            Some(&at),
            Some(json!({ "event": {
                "notification_type": "push", "environment": "development",
                "event_type": "fixed_date", "date": date,
                "message": STANDARD.encode("it is time"), "user": { "ids": [bob] },
            }})),
        )
        .await;
    assert!(s.is_success(), "{v}");
    assert_eq!(v[0]["event"]["event_type"], "fixed_date");
    // Nothing before the date...
    assert!(h.drain(Duration::from_millis(1000)).await.is_empty());
    // ...then the webhook's copy, once.
    let got = h.drain(Duration::from_millis(3500)).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(matches!(&got[0], Received::Hook(v) if v["message"] == "it is time"));
}

#[tokio::test]
async fn period_date_events_come_back_every_period() {
    let mut h = Harness::start().await;
    let (_, at) = h.ts.user("alice").await;
    let (bob, _) = h.ts.user("bob").await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let event = |period: i64, end: u64| {
        json!({ "event": {
            "notification_type": "push", "environment": "development",
            "event_type": "period_date", "date": now + 1, "period": period, "end_date": end,
            "message": STANDARD.encode("daily digest"), "user": { "ids": [bob] },
        }})
    };
    let (s, v) =
        h.ts.call(
            Method::POST,
            "/events.json",
            Some(&at),
            Some(event(3600, now + 86400 * 7)),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    assert!(v["errors"].to_string().contains("period"), "{v}");

    let (s, v) =
        h.ts.call(
            Method::POST,
            "/events.json",
            Some(&at),
            Some(event(86_400, now + 86_400 * 7)),
        )
        .await;
    assert!(s.is_success(), "{v}");
    assert_eq!(v[0]["event"]["period"], 86_400);
    let got = h.drain(Duration::from_millis(2500)).await;
    assert_eq!(got.len(), 1, "{got:?}");
    // Delivered, and due again a day later (the same row).
    let due = h.ts.sql_i64s("SELECT due_at FROM push_outbox", &[]).await;
    assert_eq!(due.len(), 1, "{due:?}");
    let day_later = (now as i64 + 86_400) * 1000;
    assert!(
        (due[0] - day_later).abs() < 10_000,
        "{} vs {day_later}",
        due[0]
    );
}

/// The devices of `received` that got an FCM push, in order.
fn fcm_tokens(received: &[Received]) -> Vec<String> {
    received
        .iter()
        .filter_map(|r| match r {
            Received::Fcm { token, .. } => Some(token.clone()),
            Received::Hook(_) => None,
        })
        .collect()
}

/// The ChatServer face's devices (a push token in `DeviceInfo`) get chat alerts through the same
/// push service while no socket of their user is open, unless the chat is muted; `auxiliary`
/// events reach them for the `push` and `all` realms; a logout ends them.
#[tokio::test]
async fn chatserver_devices_get_alerts_while_no_socket_is_open() {
    let mut h = Harness::start_on(true).await;
    let base = h.ts.chatserver_base.clone().unwrap();
    let client = h.ts.client.clone();
    let call = |m, path: &str, token: Option<&str>, body: Option<Value>| {
        let req = client.request(m, format!("{base}{path}"));
        let req = match token {
            Some(t) => req.header("authorization", format!("Bearer {t}")),
            None => req,
        };
        let req = match body {
            Some(b) => req.json(&b),
            None => req,
        };
        async move { chatserver_common::read(req.send().await.unwrap()).await }
    };
    let phone = |token: &str| {
        json!({"id": "6E2C51B5-2C3F-4DB3-8A6E-54E9C5E25A01", "name": "Phone", "model": "P",
               "transport": "fcm", "token": token})
    };
    let (s, v) = call(
        Method::POST,
        "/users",
        None,
        Some(
            json!({"name": "Ann", "username": "annpush", "password": "password1",
                    "deviceInfo": chatserver_common::device(1)}),
        ),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let ann_id = v["info"]["id"].as_i64().unwrap();
    let ann = v["deviceSessions"][0]["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, v) = call(
        Method::POST,
        "/users",
        None,
        Some(
            json!({"name": "Ben", "username": "benpush", "password": "password1",
                    "deviceInfo": phone("ben-phone")}),
        ),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let ben_id = v["info"]["id"].as_i64().unwrap();
    let ben = v["deviceSessions"][0]["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    let ben_session = v["deviceSessions"][0]["id"].as_str().unwrap().to_string();
    let (s, chat) = call(
        Method::POST,
        "/chats",
        Some(&ann),
        Some(json!({"participants": [ben_id], "isPersonal": true})),
    )
    .await;
    assert_eq!(s, 200, "{chat}");
    let chat = chat["id"].as_str().unwrap().to_string();
    let post = |text: &str| {
        call(
            Method::POST,
            &format!("/chats/{chat}/messages"),
            Some(&ann),
            Some(json!({"localId": chatserver_common::local_id(ann_id), "text": text})),
        )
    };

    // Ben has no socket: his phone gets the alert within 2 s.
    let started = std::time::Instant::now();
    assert_eq!(post("lunch?").await.0, 200);
    let data = loop {
        match h.next(Duration::from_secs(2)).await.expect("an alert") {
            Received::Fcm { token, data } => {
                assert_eq!(token, "ben-phone");
                break data;
            }
            Received::Hook(_) => continue,
        }
    };
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(data["message"], "Ann: lunch?");
    assert_eq!(data["dialog_id"].as_str().unwrap().len(), 24);
    h.drain(Duration::from_millis(300)).await;

    // With a socket open he hears it there, and nothing is pushed (not even the webhook's copy).
    let ws = format!("{}/{ben_session}", base.replacen("http", "ws", 1));
    let mut req =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(ws.as_str())
            .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {ben}").parse().unwrap());
    let mut socket = chatserver_common::Socket::open(req).await;
    assert_eq!(post("here?").await.0, 200);
    assert_eq!(socket.frame().await["payload"]["text"], "here?");
    assert!(h.drain(Duration::from_millis(800)).await.is_empty());
    drop(socket);

    // An auxiliary event for the push realm reaches his phone, with its name and data.
    let data_b64 = STANDARD.encode(json!({"deleted": true}).to_string());
    let (s, v) = call(
        Method::POST,
        &format!("/chats/{chat}/notify"),
        Some(&ann),
        Some(json!({"name": "ping", "text": "wake up", "realm": "push", "data": data_b64})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let got = h.drain(Duration::from_millis(1500)).await;
    let pushed = got
        .iter()
        .find_map(|r| match r {
            Received::Fcm { token, data } if token == "ben-phone" => Some(data.clone()),
            _ => None,
        })
        .expect("the event on ben's phone");
    assert_eq!(pushed["message"], "wake up");
    assert_eq!(pushed["name"], "ping");
    assert!(
        pushed["data"].as_str().unwrap().contains("deleted"),
        "{pushed}"
    );
    assert_eq!(
        fcm_tokens(&got),
        ["ben-phone"],
        "ann's own devices get nothing"
    );

    // Muted: no alert, no event.
    let (s, _) = call(
        Method::PUT,
        &format!("/chats/{chat}/settings"),
        Some(&ben),
        Some(json!({"isMuted": true})),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(post("muted?").await.0, 200);
    assert!(fcm_tokens(&h.drain(Duration::from_millis(800)).await).is_empty());
    call(
        Method::PUT,
        &format!("/chats/{chat}/settings"),
        Some(&ben),
        Some(json!({"isMuted": false})),
    )
    .await;

    // A new token for the device replaces the old one.
    let (s, v) = call(
        Method::PUT,
        "/users/me/device",
        Some(&ben),
        Some(json!({"deviceName": "Phone", "deviceToken": "ben-new-phone"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(post("new phone?").await.0, 200);
    assert_eq!(
        fcm_tokens(&h.drain(Duration::from_millis(1500)).await),
        ["ben-new-phone"]
    );

    // After a logout nothing reaches the phone.
    let (s, _) = call(Method::POST, "/users/me/logout", Some(&ben), None).await;
    assert_eq!(s, 200);
    assert_eq!(post("gone?").await.0, 200);
    assert!(fcm_tokens(&h.drain(Duration::from_millis(1000)).await).is_empty());
}
