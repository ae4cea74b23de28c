//! The operator's webhook: one JSON POST per recipient user, signed with HMAC-SHA256 of the body.

use std::time::Duration;

use async_trait::async_trait;
use confab_service::push::{Notification, NotificationKind};
use confab_store::PushSubscription;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::{classify_status, transport_failure, Outcome, Provider};

pub const SIGNATURE_HEADER: &str = "X-Confab-Signature";

pub struct Webhook {
    url: String,
    secret: Option<String>,
    client: reqwest::Client,
}

impl Webhook {
    pub fn new(url: String, secret: Option<String>, timeout: Duration) -> reqwest::Result<Self> {
        Ok(Self {
            url,
            secret,
            client: reqwest::Client::builder().timeout(timeout).build()?,
        })
    }

    /// The body for one user.
    pub fn body(app: i64, user: i64, n: &Notification) -> Value {
        let mut v = json!({
            "app_id": app,
            "user_id": user,
            "message": n.message,
        });
        match n.kind {
            NotificationKind::ChatAlert => {
                v["type"] = "chat_alert".into();
                v["dialog_id"] = json!(n.dialog_id);
                v["sender_id"] = json!(n.sender_id);
                v["message_id"] = json!(n.message_id);
            }
            NotificationKind::Event => {
                v["type"] = "event".into();
                v["event_id"] = json!(n.event_id);
                v["payload"] = json!(n.payload);
            }
        }
        v
    }

    /// `sha256=<lowercase hex HMAC-SHA256 of body>`.
    pub fn signature(secret: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }
}

#[async_trait]
impl Provider for Webhook {
    async fn send(
        &self,
        _sub: Option<&PushSubscription>,
        (app, user): (i64, i64),
        n: &Notification,
    ) -> Outcome {
        let body = Self::body(app, user, n).to_string();
        let mut req = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if let Some(secret) = &self.secret {
            req = req.header(SIGNATURE_HEADER, Self::signature(secret, body.as_bytes()));
        }
        match req.body(body).send().await {
            Ok(resp) => classify_status(&resp),
            Err(e) => transport_failure(e),
        }
    }
}
