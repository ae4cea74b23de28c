//! Web Push (RFC 8030): the payload encrypted for the browser (RFC 8291, `aes128gcm`) and signed
//! for the push service with the server's VAPID key (RFC 8292), POSTed to the subscription's
//! endpoint. Endpoints are checked again at send time, after name resolution, so a name that
//! points inside the network is not called.

use std::time::Duration;

use async_trait::async_trait;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use confab_service::push::subscriptions::is_public;
use confab_service::push::Notification;
use confab_store::PushSubscription;
use serde_json::{json, Map, Value};
use web_push_native::jwt_simple::algorithms::ES256KeyPair;
use web_push_native::{p256, Auth, WebPushBuilder};

use crate::{fit_text, transport_failure, Outcome, Provider, MAX_PAYLOAD_BYTES};

/// What `aes128gcm` adds to the plaintext: the header (salt, record size, key id) and one record's
/// tag and delimiter.
const ENCRYPTION_OVERHEAD: usize = 16 + 4 + 1 + 65 + 16 + 1;
/// How long a push service keeps a message for an offline browser, and the VAPID token's life.
const TTL: Duration = Duration::from_secs(12 * 60 * 60);

pub struct WebPush {
    key: ES256KeyPair,
    subject: String,
    allow_private: bool,
    client: reqwest::Client,
}

fn b64url(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(s.trim())
        .ok()
        .or_else(|| URL_SAFE.decode(s.trim()).ok())
}

impl WebPush {
    /// `private_key`: base64url of the 32-byte P-256 private key (`web-push generate-vapid-keys`).
    pub fn new(
        private_key: &str,
        subject: String,
        allow_private: bool,
        timeout: Duration,
    ) -> Result<Self, String> {
        let bytes = b64url(private_key).ok_or("the VAPID private key is not base64url")?;
        let key = ES256KeyPair::from_bytes(&bytes).map_err(|e| format!("the VAPID key: {e}"))?;
        Ok(Self {
            key,
            subject,
            allow_private,
            client: reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .map_err(|e| e.to_string())?,
        })
    }

    /// `{"data":{"message": …, custom keys, "dialog_id"}}`, as ConnectyCube's service workers read it.
    pub fn plaintext(n: &Notification) -> Vec<u8> {
        let build = |text: &str| {
            let mut data = Map::new();
            data.insert("message".into(), text.into());
            for (k, v) in &n.custom {
                data.insert(k.clone(), v.clone());
            }
            if let Some(d) = &n.dialog_id {
                data.insert("dialog_id".into(), d.clone().into());
            }
            let bytes = json!({ "data": Value::Object(data) })
                .to_string()
                .into_bytes();
            let size = bytes.len() + ENCRYPTION_OVERHEAD;
            (bytes, size)
        };
        fit_text(&n.message, MAX_PAYLOAD_BYTES, build)
    }

    /// Whether every address the endpoint's host resolves to may be called.
    async fn endpoint_allowed(&self, url: &url::Url) -> bool {
        if self.allow_private {
            return true;
        }
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
            return false;
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        match tokio::net::lookup_host((host, port)).await {
            Ok(addrs) => {
                let addrs: Vec<_> = addrs.collect();
                !addrs.is_empty() && addrs.iter().all(|a| is_public(a.ip()))
            }
            Err(_) => false,
        }
    }
}

#[async_trait]
impl Provider for WebPush {
    async fn send(
        &self,
        sub: Option<&PushSubscription>,
        _user: (i64, i64),
        n: &Notification,
    ) -> Outcome {
        let Some(sub) = sub else {
            return Outcome::Rejected("no subscription".into());
        };
        let Ok(url) = url::Url::parse(&sub.token) else {
            return Outcome::Gone;
        };
        if !self.endpoint_allowed(&url).await {
            return Outcome::Rejected("the endpoint is not on a public address".into());
        }
        let keys = (
            sub.web_p256dh.as_deref().and_then(b64url),
            sub.web_auth.as_deref().and_then(b64url),
        );
        let (Some(p256dh), Some(auth)) = keys else {
            return Outcome::Gone;
        };
        let (Ok(ua_public), true) = (p256::PublicKey::from_sec1_bytes(&p256dh), auth.len() == 16)
        else {
            return Outcome::Gone;
        };
        let Ok(uri) = sub.token.parse() else {
            return Outcome::Gone;
        };
        let request = match WebPushBuilder::new(uri, ua_public, Auth::clone_from_slice(&auth))
            .with_valid_duration(TTL)
            .with_vapid(&self.key, &self.subject)
            .build(Self::plaintext(n))
        {
            Ok(r) => r,
            Err(e) => return Outcome::Rejected(format!("building the push: {e}")),
        };
        let (parts, body) = request.into_parts();
        let resp = match self
            .client
            .post(url)
            .headers(parts.headers)
            .body(body)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return transport_failure(e),
        };
        match resp.status().as_u16() {
            404 | 410 => Outcome::Gone,
            _ => crate::classify_status(&resp),
        }
    }
}
