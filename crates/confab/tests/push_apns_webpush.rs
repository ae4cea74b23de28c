//! APNs and Web Push against fakes that check what Apple and a browser's push service check: an
//! HTTP/2 + TLS APNs (trusted through `apns_ca_file`) verifying the ES256 provider token, topic and
//! push-type headers; a Web Push endpoint verifying the VAPID JWT and decrypting the `aes128gcm`
//! payload with the subscription's private key. Both answer 410 on demand to prove token removal.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Version};
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use confab_testkit as common;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use web_push_native::jwt_simple::prelude::{
    ECDSAP256PublicKeyLike, ES256KeyPair, ES256PublicKey, VerificationOptions,
};
use web_push_native::{p256, Auth};

use common::TestServer;

const APNS_KEY: &str = include_str!("fixtures/apns-test-key.p8");
const APNS_PUB: &str = include_str!("fixtures/apns-test-key.pub.pem");
const KEY_ID: &str = "ABC123DEFG";
const TEAM_ID: &str = "TEAM456789";
const TOPIC: &str = "com.example.chat";
const VAPID_SUBJECT: &str = "mailto:ops@example.com";

#[derive(Debug)]
struct Got {
    path: String,
    headers: HeaderMap,
    body: Value,
}

#[derive(Clone)]
struct Fake {
    tx: mpsc::UnboundedSender<Got>,
    /// Device tokens (or endpoint ids) answered with 410 Gone.
    gone: Arc<Mutex<Vec<String>>>,
    ua_secret: Arc<p256::SecretKey>,
    ua_auth: Auth,
    vapid_public: Arc<ES256PublicKey>,
    web_origin: String,
}

async fn apns(
    State(f): State<Fake>,
    Path(token): Path<String>,
    version: Version,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    assert_eq!(version, Version::HTTP_2, "APNs speaks HTTP/2 only");
    let auth = headers["authorization"].to_str().unwrap();
    let jwt = auth.strip_prefix("bearer ").expect("bearer token");
    let header = jsonwebtoken::decode_header(jwt).unwrap();
    assert_eq!(header.alg, Algorithm::ES256);
    assert_eq!(header.kid.as_deref(), Some(KEY_ID));
    let mut v = Validation::new(Algorithm::ES256);
    v.required_spec_claims.clear();
    v.validate_exp = false;
    v.set_issuer(&[TEAM_ID]);
    let claims = jsonwebtoken::decode::<Value>(
        jwt,
        &DecodingKey::from_ec_pem(APNS_PUB.as_bytes()).unwrap(),
        &v,
    )
    .expect("a provider token signed with the team key")
    .claims;
    let iat = claims["iat"].as_i64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now - iat).abs() < 3600);
    assert!(body.len() <= 4096);
    if f.gone.lock().unwrap().contains(&token) {
        return StatusCode::GONE;
    }
    f.tx.send(Got {
        path: token,
        headers,
        body: serde_json::from_slice(&body).unwrap(),
    })
    .unwrap();
    StatusCode::OK
}

async fn web(
    State(f): State<Fake>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    assert_eq!(headers["content-encoding"], "aes128gcm");
    assert!(headers.contains_key("ttl"));
    // `vapid t=<jwt>, k=<public key>`: the key in the header is the one the JWT verifies with.
    let auth = headers["authorization"].to_str().unwrap();
    let rest = auth.strip_prefix("vapid ").expect("a VAPID authorization");
    let mut t = None;
    let mut k = None;
    for part in rest.split(',') {
        let (name, value) = part.trim().split_once('=').unwrap();
        match name {
            "t" => t = Some(value.to_string()),
            "k" => k = Some(value.to_string()),
            _ => {}
        }
    }
    let k = URL_SAFE_NO_PAD.decode(k.unwrap()).unwrap();
    assert_eq!(k, f.vapid_public.public_key().to_bytes_uncompressed());
    let claims = f
        .vapid_public
        .verify_token::<Value>(&t.unwrap(), Some(VerificationOptions::default()))
        .expect("a VAPID JWT signed with the server's key");
    assert_eq!(claims.subject.as_deref(), Some(VAPID_SUBJECT));
    // The audience is the endpoint's origin. Real push services listen on https's default port,
    // where the origin has none; the VAPID library leaves a non-default port (this fake's) out.
    let aud = claims.audiences.unwrap().into_set();
    let origin = url::Url::parse(&f.web_origin).unwrap();
    let expected = format!("{}://{}", origin.scheme(), origin.host_str().unwrap());
    assert!(aud.contains(&expected), "{aud:?}");
    let exp = claims.expires_at.unwrap().as_secs();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(exp <= now + 24 * 3600);
    assert!(body.len() <= 4096);
    if f.gone.lock().unwrap().contains(&id) {
        return StatusCode::GONE;
    }
    let plain = web_push_native::decrypt(body.to_vec(), &f.ua_secret, &f.ua_auth)
        .expect("decrypts with the subscription's keys");
    f.tx.send(Got {
        path: id,
        headers,
        body: serde_json::from_slice(&plain).unwrap(),
    })
    .unwrap();
    StatusCode::CREATED
}

/// Serves `app` over TLS with HTTP/2 (ALPN `h2`) on loopback; returns the port and the CA PEM.
async fn serve_h2_tls(app: Router) -> (u16, String) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let ca_pem = cert.cert.pem();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_pair.serialize_der().into()),
        )
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |req| {
                    let app = app.clone();
                    async move {
                        Ok::<_, Infallible>(tower::ServiceExt::oneshot(app, req).await.unwrap())
                    }
                });
                let _ =
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
            });
        }
    });
    (port, ca_pem)
}

struct Harness {
    ts: TestServer,
    rx: mpsc::UnboundedReceiver<Got>,
    gone: Arc<Mutex<Vec<String>>>,
    web_base: String,
    ua_public: String,
    ua_auth: String,
    _files: (tempfile::NamedTempFile, tempfile::NamedTempFile),
}

impl Harness {
    async fn start() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let ua_secret = p256::SecretKey::random(&mut rand_core::OsRng);
        let ua_public = URL_SAFE_NO_PAD.encode(
            p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(
                &ua_secret.public_key(),
                false,
            )
            .as_bytes(),
        );
        let auth_bytes: [u8; 16] = rand::random();
        let vapid = ES256KeyPair::generate();
        let web_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let web_origin = format!("http://{}", web_listener.local_addr().unwrap());
        let fake = Fake {
            tx,
            gone: Arc::default(),
            ua_secret: Arc::new(ua_secret),
            ua_auth: Auth::clone_from_slice(&auth_bytes),
            vapid_public: Arc::new(vapid.public_key()),
            web_origin: web_origin.clone(),
        };
        let web_app = Router::new()
            .route("/push/{id}", post(web))
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(web_listener, web_app).await.unwrap() });
        let apns_app = Router::new()
            .route("/3/device/{token}", post(apns))
            .with_state(fake.clone());
        let (port, ca_pem) = serve_h2_tls(apns_app).await;
        let key_file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(key_file.path(), APNS_KEY).unwrap();
        let ca_file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(ca_file.path(), ca_pem).unwrap();
        let (key_path, ca_path) = (key_file.path().to_path_buf(), ca_file.path().to_path_buf());
        let vapid_key = URL_SAFE_NO_PAD.encode(vapid.to_bytes());
        let ts = TestServer::start_with(|c| {
            c.apns_key = Some(key_path);
            c.apns_key_id = Some(KEY_ID.into());
            c.apns_team_id = Some(TEAM_ID.into());
            c.apns_topic = Some(TOPIC.into());
            c.apns_endpoint = Some(format!("https://localhost:{port}"));
            c.apns_ca_file = Some(ca_path);
            c.vapid_private_key = Some(vapid_key);
            c.vapid_subject = VAPID_SUBJECT.into();
            c.push_allow_private_endpoints = true;
        })
        .await;
        Self {
            ts,
            rx,
            gone: fake.gone,
            web_base: format!("{web_origin}/push"),
            ua_public,
            ua_auth: URL_SAFE_NO_PAD.encode(auth_bytes),
            _files: (key_file, ca_file),
        }
    }

    async fn subscribe(&self, token: &str, body: Value) {
        let (s, v) = self
            .ts
            .call(Method::POST, "/subscriptions.json", Some(token), Some(body))
            .await;
        assert!(s.is_success(), "{v}");
    }

    async fn event(&self, token: &str, to: i64, message: &str) {
        let (s, v) = self
            .ts
            .call(
                Method::POST,
                "/events.json",
                Some(token),
                Some(json!({ "event": {
                    "notification_type": "push", "environment": "development",
                    "message": STANDARD.encode(message), "user": { "ids": [to] },
                }})),
            )
            .await;
        assert!(s.is_success(), "{v}");
    }

    async fn drain(&mut self, within: Duration) -> Vec<Got> {
        let mut got = Vec::new();
        while let Ok(Some(g)) = tokio::time::timeout(within, self.rx.recv()).await {
            got.push(g);
        }
        got
    }
}

#[tokio::test]
async fn apns_gets_signed_http2_pushes_and_gone_tokens_are_removed() {
    let mut h = Harness::start().await;
    let (_, at) = h.ts.user("alice").await;
    let (bob, bt) = h.ts.user("bob").await;
    let (carol, ct) = h.ts.user("carol").await;
    let apns = |channel: &str, token: &str, udid: &str| {
        json!({
            "notification_channel": channel,
            "push_token": { "environment": "development", "client_identification_sequence": token },
            "device": { "platform": "ios", "udid": udid },
        })
    };
    h.subscribe(&bt, apns("apns", "b0b1", "b-iphone")).await;
    h.subscribe(&bt, apns("apns_voip", "b0b2", "b-iphone"))
        .await;
    h.subscribe(&ct, apns("apns", "dead", "c-iphone")).await;
    h.gone.lock().unwrap().push("dead".into());

    let universal = r#"{"message":"Your turn","ios_badge":"5","ios_sound":"ping.caf","game":"g7"}"#;
    h.event(&at, bob, universal).await;
    h.event(&at, carol, "hello carol").await;
    let mut got = h.drain(Duration::from_millis(1500)).await;
    got.sort_by(|a, b| a.path.cmp(&b.path));
    assert_eq!(got.len(), 2, "{got:?}");
    let (alert, voip) = (&got[0], &got[1]);
    assert_eq!(alert.path, "b0b1");
    assert_eq!(alert.headers["apns-topic"], TOPIC);
    assert_eq!(alert.headers["apns-push-type"], "alert");
    assert_eq!(alert.body["aps"]["alert"]["body"], "Your turn");
    assert_eq!(alert.body["aps"]["badge"], 5);
    assert_eq!(alert.body["aps"]["sound"], "ping.caf");
    assert_eq!(alert.body["game"], "g7");
    assert_eq!(voip.path, "b0b2");
    assert_eq!(voip.headers["apns-topic"], format!("{TOPIC}.voip"));
    assert_eq!(voip.headers["apns-push-type"], "voip");

    // An event's own APNs payload goes as given.
    let raw = STANDARD.encode(r#"{"aps":{"alert":"raw alert","content-available":1},"x":1}"#);
    let (s, _) =
        h.ts.call(
            Method::POST,
            "/events.json",
            Some(&at),
            Some(json!({ "event": {
                "notification_type": "push", "environment": "development", "push_type": "apns",
                "message": format!("payload={raw}"), "user": { "ids": [bob] },
            }})),
        )
        .await;
    assert!(s.is_success());
    let got = h.drain(Duration::from_millis(1000)).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        got[0].body,
        json!({"aps":{"alert":"raw alert","content-available":1},"x":1})
    );

    // Carol's token answered 410: her subscription is gone.
    let (_, list) =
        h.ts.call(Method::GET, "/subscriptions.json", Some(&ct), None)
            .await;
    assert_eq!(list, json!([]));
}

#[tokio::test]
async fn web_push_is_encrypted_for_the_browser_and_vapid_signed() {
    let mut h = Harness::start().await;
    let (alice, at) = h.ts.user("alice").await;
    let (bob, bt) = h.ts.user("bob").await;
    let web = |id: &str, udid: &str, h: &Harness| {
        json!({
            "notification_channel": "web",
            "push_token": { "environment": "development", "web_endpoint": format!("{}/{id}", h.web_base),
                            "web_auth": h.ua_auth, "web_p256dh": h.ua_public },
            "device": { "platform": "web", "udid": udid },
        })
    };
    h.subscribe(&bt, web("bob-browser", "b-web", &h)).await;
    h.subscribe(&at, web("gone-browser", "a-web", &h)).await;
    h.gone.lock().unwrap().push("gone-browser".into());

    h.event(&at, bob, r#"{"message":"New post","topic":"t9"}"#)
        .await;
    let got = h.drain(Duration::from_millis(1500)).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].path, "bob-browser");
    assert_eq!(
        got[0].body,
        json!({ "data": { "message": "New post", "topic": "t9" } })
    );

    // A long text is shortened so the encrypted record fits 4096 bytes.
    let long = "x".repeat(10_000);
    h.event(&at, bob, &long).await;
    let got = h.drain(Duration::from_millis(1500)).await;
    let text = got[0].body["data"]["message"].as_str().unwrap();
    assert!(text.len() < 4000 && text.ends_with('…'), "{}", text.len());

    // The gone endpoint removes alice's subscription.
    h.event(&bt, alice, "hi alice").await;
    assert!(h.drain(Duration::from_millis(1000)).await.is_empty());
    let (_, list) =
        h.ts.call(Method::GET, "/subscriptions.json", Some(&at), None)
            .await;
    assert_eq!(list, json!([]));
}
