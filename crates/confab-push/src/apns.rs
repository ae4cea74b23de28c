//! Apple Push Notification service: HTTP/2 over TLS to `/3/device/<token>`, authenticated with an
//! ES256 provider token (the team's `.p8` key) that is reused for 40 minutes, as Apple asks.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use confab_core::clock::now_millis;
use confab_service::push::Notification;
use confab_store::PushSubscription;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use serde_json::{json, Map, Value};
use tokio::sync::Mutex;

use crate::{classify_status, fit_text, transport_failure, Outcome, Provider, MAX_PAYLOAD_BYTES};

pub const PRODUCTION: &str = "https://api.push.apple.com";
pub const DEVELOPMENT: &str = "https://api.sandbox.push.apple.com";
/// Apple refuses tokens older than an hour and throttles ones renewed more often than every 20
/// minutes.
const TOKEN_LIFE: Duration = Duration::from_secs(40 * 60);

#[derive(Debug, Clone)]
pub struct ApnsConfig {
    /// The `.p8` key file's PEM text.
    pub key_pem: String,
    pub key_id: String,
    pub team_id: String,
    /// The app's bundle id.
    pub topic: String,
    /// One endpoint for both environments (tests, proxies); Apple's two otherwise.
    pub endpoint: Option<String>,
    /// A PEM CA trusted besides the system's roots.
    pub ca_pem: Option<Vec<u8>>,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    iat: i64,
}

pub struct Apns {
    config: ApnsConfig,
    key: EncodingKey,
    client: reqwest::Client,
    token: Mutex<Option<(String, Instant)>>,
}

impl Apns {
    pub fn new(config: ApnsConfig, timeout: Duration) -> Result<Self, String> {
        let key = EncodingKey::from_ec_pem(config.key_pem.as_bytes())
            .map_err(|e| format!("the APNs key: {e}"))?;
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .http2_prior_knowledge();
        if let Some(ca) = &config.ca_pem {
            let cert =
                reqwest::Certificate::from_pem(ca).map_err(|e| format!("the APNs CA: {e}"))?;
            builder = builder.add_root_certificate(cert);
        }
        Ok(Self {
            client: builder.build().map_err(|e| e.to_string())?,
            config,
            key,
            token: Mutex::new(None),
        })
    }

    async fn provider_token(&self) -> Result<String, Outcome> {
        let mut cached = self.token.lock().await;
        if let Some((token, made)) = cached.as_ref() {
            if made.elapsed() < TOKEN_LIFE {
                return Ok(token.clone());
            }
        }
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.config.key_id.clone());
        let claims = Claims {
            iss: &self.config.team_id,
            iat: now_millis() / 1000,
        };
        let token = jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| Outcome::Rejected(format!("signing the APNs token: {e}")))?;
        *cached = Some((token.clone(), Instant::now()));
        Ok(token)
    }

    /// The APNs JSON: an event's own payload as given, else the alert text with `badge`/`sound`
    /// from the universal parameters and the custom keys beside `aps`.
    pub fn payload(n: &Notification) -> Vec<u8> {
        if let Some(raw) = &n.apns_payload {
            return Value::Object(raw.clone()).to_string().into_bytes();
        }
        let build = |text: &str| {
            let mut aps = Map::new();
            aps.insert("alert".into(), json!({ "body": text }));
            let mut top = Map::new();
            for (k, v) in &n.custom {
                match k.as_str() {
                    "ios_badge" => {
                        let badge = v
                            .as_i64()
                            .or_else(|| v.as_str().and_then(|s| s.parse().ok()));
                        aps.insert("badge".into(), json!(badge));
                    }
                    "ios_sound" => {
                        aps.insert("sound".into(), v.clone());
                    }
                    _ => {
                        top.insert(k.clone(), v.clone());
                    }
                }
            }
            if let Some(d) = &n.dialog_id {
                top.insert("dialog_id".into(), d.clone().into());
            }
            top.insert("aps".into(), Value::Object(aps));
            let bytes = Value::Object(top).to_string().into_bytes();
            let size = bytes.len();
            (bytes, size)
        };
        fit_text(&n.message, MAX_PAYLOAD_BYTES, build)
    }
}

#[async_trait]
impl Provider for Apns {
    async fn send(
        &self,
        sub: Option<&PushSubscription>,
        _user: (i64, i64),
        n: &Notification,
    ) -> Outcome {
        let Some(sub) = sub else {
            return Outcome::Rejected("no device token".into());
        };
        if !sub.token.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Outcome::Gone;
        }
        let token = match self.provider_token().await {
            Ok(t) => t,
            Err(outcome) => return outcome,
        };
        let base = match (&self.config.endpoint, sub.environment.as_str()) {
            (Some(e), _) => e.trim_end_matches('/').to_string(),
            (None, "production") => PRODUCTION.into(),
            (None, _) => DEVELOPMENT.into(),
        };
        let voip = sub.channel == "apns_voip";
        let topic = if voip {
            format!("{}.voip", self.config.topic)
        } else {
            self.config.topic.clone()
        };
        let resp = match self
            .client
            .post(format!("{base}/3/device/{}", sub.token))
            .header("authorization", format!("bearer {token}"))
            .header("apns-topic", topic)
            .header("apns-push-type", if voip { "voip" } else { "alert" })
            .header("apns-priority", "10")
            .header("content-type", "application/json")
            .body(Self::payload(n))
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return transport_failure(e),
        };
        match resp.status().as_u16() {
            410 => Outcome::Gone,
            403 => {
                // ExpiredProviderToken and friends: sign a new one next time.
                *self.token.lock().await = None;
                Outcome::Retry {
                    after: None,
                    reason: "HTTP 403".into(),
                }
            }
            _ => classify_status(&resp),
        }
    }
}
