//! Firebase Cloud Messaging HTTP v1: an OAuth2 access token from the service account (a signed
//! JWT exchanged at its `token_uri`, cached until shortly before it expires), then one
//! `messages:send` per device token.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use confab_core::clock::now_millis;
use confab_service::push::Notification;
use confab_store::PushSubscription;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tokio::sync::Mutex;

use crate::{classify_status, fit_text, transport_failure, Outcome, Provider, MAX_PAYLOAD_BYTES};

const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
pub const DEFAULT_ENDPOINT: &str = "https://fcm.googleapis.com";

/// The fields of a service-account JSON file that matter here.
#[derive(Debug, Clone, Deserialize)]
pub struct ServiceAccount {
    pub project_id: String,
    pub client_email: String,
    pub private_key: String,
    #[serde(default)]
    pub private_key_id: Option<String>,
    pub token_uri: String,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

pub struct Fcm {
    account: ServiceAccount,
    key: EncodingKey,
    endpoint: String,
    client: reqwest::Client,
    token: Mutex<Option<(String, Instant)>>,
}

impl Fcm {
    pub fn new(
        account: ServiceAccount,
        endpoint: String,
        timeout: Duration,
    ) -> Result<Self, String> {
        let key = EncodingKey::from_rsa_pem(account.private_key.as_bytes())
            .map_err(|e| format!("the service account's private_key: {e}"))?;
        Ok(Self {
            account,
            key,
            endpoint: endpoint.trim_end_matches('/').to_string(),
            client: reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .map_err(|e| e.to_string())?,
            token: Mutex::new(None),
        })
    }

    /// Reads the service-account JSON file `CONFAB_FCM_CREDENTIALS` names.
    pub fn from_file(path: &str, endpoint: String, timeout: Duration) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        let account: ServiceAccount =
            serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
        Self::new(account, endpoint, timeout)
    }

    async fn access_token(&self) -> Result<String, Outcome> {
        let mut cached = self.token.lock().await;
        if let Some((token, until)) = cached.as_ref() {
            if Instant::now() < *until {
                return Ok(token.clone());
            }
        }
        let iat = now_millis() / 1000;
        let claims = Claims {
            iss: &self.account.client_email,
            scope: SCOPE,
            aud: &self.account.token_uri,
            iat,
            exp: iat + 3600,
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = self.account.private_key_id.clone();
        let assertion = jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| Outcome::Rejected(format!("signing the OAuth2 assertion: {e}")))?;
        let resp = self
            .client
            .post(&self.account.token_uri)
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", assertion.as_str()),
            ])
            .send()
            .await
            .map_err(transport_failure)?;
        if !resp.status().is_success() {
            // A refused assertion is as temporary as a 5xx: the operator may fix the account.
            return Err(Outcome::Retry {
                after: None,
                reason: format!("OAuth2 token: HTTP {}", resp.status()),
            });
        }
        let answer: TokenAnswer = resp.json().await.map_err(transport_failure)?;
        // Renewed a minute early, so a token never expires on the way.
        let life = Duration::from_secs(answer.expires_in.unwrap_or(3600).saturating_sub(60));
        *cached = Some((answer.access_token.clone(), Instant::now() + life));
        Ok(answer.access_token)
    }

    /// The v1 `message`: the text and custom keys as string `data`, as ConnectyCube's guides read
    /// them on the device.
    pub fn body(token: &str, n: &Notification) -> Value {
        let build = |text: &str| {
            let mut data = Map::new();
            data.insert("message".into(), text.into());
            for (k, v) in n.data_strings() {
                data.insert(k, v.into());
            }
            json!({ "message": { "token": token, "data": data } })
        };
        fit_text(&n.message, MAX_PAYLOAD_BYTES, |t| {
            let body = build(t);
            let size = body["message"]["data"].to_string().len();
            (body, size)
        })
    }
}

#[async_trait]
impl Provider for Fcm {
    async fn send(
        &self,
        sub: Option<&PushSubscription>,
        _user: (i64, i64),
        n: &Notification,
    ) -> Outcome {
        let Some(sub) = sub else {
            return Outcome::Rejected("no device token".into());
        };
        let token = match self.access_token().await {
            Ok(t) => t,
            Err(outcome) => return outcome,
        };
        let url = format!(
            "{}/v1/projects/{}/messages:send",
            self.endpoint, self.account.project_id
        );
        let resp = match self
            .client
            .post(url)
            .bearer_auth(token)
            .json(&Self::body(&sub.token, n))
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return transport_failure(e),
        };
        let status = resp.status().as_u16();
        if status == 401 {
            // The access token was revoked early: fetch a new one next time.
            *self.token.lock().await = None;
            return Outcome::Retry {
                after: None,
                reason: "HTTP 401".into(),
            };
        }
        let outcome = classify_status(&resp);
        if status == 404 {
            return Outcome::Gone;
        }
        if status == 400 || status == 403 {
            let text = resp.text().await.unwrap_or_default();
            if text.contains("UNREGISTERED") {
                return Outcome::Gone;
            }
        }
        outcome
    }
}
