//! Subscriptions: a user's devices and the channel each is reached on.

use std::net::IpAddr;

use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use confab_core::clock::now_millis;
use confab_core::error::FieldErrors;
use confab_core::{AppId, Error, Result, UserId};
use confab_store::{NewSubscription, PushSubscription};

use super::Push;
use crate::AuthContext;

pub const CHANNELS: &[&str] = &["gcm", "apns", "apns_voip", "web"];
pub const ENVIRONMENTS: &[&str] = &["development", "production"];
const PLATFORMS: &[&str] = &["ios", "android", "web"];
/// Longest token, udid or endpoint accepted (real ones are far shorter).
const MAX_FIELD_LEN: usize = 2048;

/// `POST /subscriptions` as the SDK sends it.
#[derive(Debug, Clone, Default)]
pub struct SubscribeRequest {
    pub channel: String,
    pub environment: String,
    pub platform: String,
    pub udid: String,
    /// `client_identification_sequence` (gcm, apns, apns_voip).
    pub token: Option<String>,
    pub bundle_identifier: Option<String>,
    pub web_endpoint: Option<String>,
    pub web_auth: Option<String>,
    pub web_p256dh: Option<String>,
}

fn b64url(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(s)
        .ok()
        .or_else(|| URL_SAFE.decode(s).ok())
}

/// A Web Push endpoint the server may call: `https` on a public address, unless private
/// endpoints are allowed. Host names are checked again when the push is sent.
pub fn check_web_endpoint(endpoint: &str, allow_private: bool) -> std::result::Result<(), String> {
    let url = url::Url::parse(endpoint).map_err(|_| "is not a URL".to_string())?;
    let host = url.host_str().ok_or("has no host")?;
    if allow_private {
        return match url.scheme() {
            "https" | "http" => Ok(()),
            _ => Err("must be an http(s) URL".into()),
        };
    }
    if url.scheme() != "https" {
        return Err("must be an https URL".into());
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let private = match host.parse::<IpAddr>() {
        Ok(ip) => !is_public(ip),
        Err(_) => {
            let h = host.to_ascii_lowercase();
            h == "localhost"
                || h.ends_with(".localhost")
                || h.ends_with(".local")
                || !h.contains('.')
        }
    };
    if private {
        return Err("must be on a public address".into());
    }
    Ok(())
}

/// Whether `ip` is a public unicast address (not loopback, private, link-local, …).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80)
        }
    }
}

impl SubscribeRequest {
    /// Every rule, all errors at once (the SDK shows them per field).
    fn check(&self, allow_private: bool) -> Result<()> {
        let mut errors = FieldErrors::default();
        let mut bad = |field: &str, msg: String| errors.add(field, msg);
        if !CHANNELS.contains(&self.channel.as_str()) {
            bad(
                "notification_channel",
                format!("must be one of {}", CHANNELS.join(", ")),
            );
        }
        if !ENVIRONMENTS.contains(&self.environment.as_str()) {
            bad(
                "environment",
                format!("must be one of {}", ENVIRONMENTS.join(", ")),
            );
        }
        if !PLATFORMS.contains(&self.platform.as_str()) {
            bad(
                "device.platform",
                format!("must be one of {}", PLATFORMS.join(", ")),
            );
        }
        if self.udid.trim().is_empty() || self.udid.len() > MAX_FIELD_LEN {
            bad("device.udid", "can't be blank".into());
        }
        let long = |v: &Option<String>| v.as_ref().is_some_and(|s| s.len() > MAX_FIELD_LEN);
        if long(&self.bundle_identifier) {
            bad("bundle_identifier", "is too long".into());
        }
        if self.channel == "web" {
            match self.web_endpoint.as_deref() {
                None | Some("") => bad("web_endpoint", "can't be blank".into()),
                Some(e) if e.len() > MAX_FIELD_LEN => bad("web_endpoint", "is too long".into()),
                Some(e) => {
                    if let Err(m) = check_web_endpoint(e, allow_private) {
                        bad("web_endpoint", m);
                    }
                }
            }
            // The user agent's ECDH key: an uncompressed P-256 point.
            let point = self.web_p256dh.as_deref().and_then(b64url);
            if point.is_none_or(|p| p.len() != 65 || p[0] != 4) {
                bad("web_p256dh", "must be a base64url P-256 public key".into());
            }
            let auth = self.web_auth.as_deref().and_then(b64url);
            if auth.is_none_or(|a| a.len() != 16) {
                bad("web_auth", "must be a base64url 16-byte secret".into());
            }
        } else if CHANNELS.contains(&self.channel.as_str()) {
            match self.token.as_deref() {
                None | Some("") => bad("client_identification_sequence", "can't be blank".into()),
                Some(t) if t.len() > MAX_FIELD_LEN || t.chars().any(char::is_control) => {
                    bad("client_identification_sequence", "is invalid".into())
                }
                Some(_) => {}
            }
        }
        errors.into_result()
    }
}

impl Push {
    /// Subscribes the session's user's device; the same device and channel again replaces it.
    pub async fn subscribe(
        &self,
        ctx: &AuthContext,
        req: SubscribeRequest,
    ) -> Result<PushSubscription> {
        self.subscribe_device(ctx.app(), ctx.user()?, req).await
    }

    /// Subscribes one of the user's devices (for faces with their own sessions); the same device
    /// and channel again replaces it.
    pub async fn subscribe_device(
        &self,
        app: AppId,
        user: UserId,
        req: SubscribeRequest,
    ) -> Result<PushSubscription> {
        req.check(self.config.allow_private_endpoints)?;
        let existing = self.store.subscriptions(app, user).await?;
        let replaces = existing
            .iter()
            .any(|s| s.udid == req.udid && s.channel == req.channel);
        if !replaces && existing.len() >= self.config.max_subscriptions_per_user {
            return Err(Error::invalid(
                "device",
                format!(
                    "too many subscriptions (at most {} per user); delete one first",
                    self.config.max_subscriptions_per_user
                ),
            ));
        }
        let web = req.channel == "web";
        let token = if web { req.web_endpoint } else { req.token };
        self.store
            .upsert_subscription(NewSubscription {
                app_id: app,
                user_id: user,
                channel: req.channel,
                environment: req.environment,
                platform: req.platform,
                udid: req.udid,
                token: token.unwrap_or_default(),
                web_auth: req.web_auth.filter(|_| web),
                web_p256dh: req.web_p256dh.filter(|_| web),
                bundle_identifier: req.bundle_identifier,
                now: now_millis(),
            })
            .await
    }

    /// Deletes the user's subscriptions whose device id starts with `udid_prefix` (a face's own
    /// devices); returns how many.
    pub async fn unsubscribe_devices(
        &self,
        app: AppId,
        user: UserId,
        udid_prefix: &str,
    ) -> Result<usize> {
        let mut n = 0;
        for s in self.store.subscriptions(app, user).await? {
            if s.udid.starts_with(udid_prefix)
                && self.store.delete_subscription(app, user, s.id).await?
            {
                n += 1;
            }
        }
        Ok(n)
    }

    pub async fn subscriptions(&self, ctx: &AuthContext) -> Result<Vec<PushSubscription>> {
        self.store.subscriptions(ctx.app(), ctx.user()?).await
    }

    /// Deletes one of the session's user's subscriptions; someone else's is not found.
    pub async fn unsubscribe(&self, ctx: &AuthContext, id: i64) -> Result<()> {
        if self
            .store
            .delete_subscription(ctx.app(), ctx.user()?, id)
            .await?
        {
            Ok(())
        } else {
            Err(Error::not_found("Subscription not found"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_endpoints() {
        assert!(check_web_endpoint("https://fcm.googleapis.com/fcm/send/abc", false).is_ok());
        for bad in [
            "http://push.example.com/x",
            "https://127.0.0.1/x",
            "https://10.1.2.3/x",
            "https://192.168.0.1/x",
            "https://169.254.169.254/latest",
            "https://[::1]/x",
            "https://[fd00::1]/x",
            "https://localhost/x",
            "https://intranet/x",
            "ftp://example.com/x",
            "not a url",
        ] {
            assert!(check_web_endpoint(bad, false).is_err(), "{bad}");
        }
        assert!(check_web_endpoint("http://127.0.0.1:9/x", true).is_ok());
        assert!(check_web_endpoint("ftp://127.0.0.1/x", true).is_err());
    }
}
