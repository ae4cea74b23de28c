//! Push delivery: the worker that drains the store's outbox, and one provider per protocol.
//!
//! - [`worker`]: claims due notifications, sends each through its provider, and records the
//!   outcome (done, retry with backoff, or the token is gone).
//! - [`webhook`]: the operator's signed JSON POST.
//! - [`fcm`]: Firebase Cloud Messaging HTTP v1 with a service account's OAuth2 token.
//! - [`apns`]: Apple Push Notification service over HTTP/2 with an ES256 provider token.
//! - [`webpush`]: Web Push with VAPID and `aes128gcm` payload encryption.

pub mod apns;
pub mod fcm;
pub mod webhook;
pub mod webpush;
pub mod worker;

use std::time::Duration;

use async_trait::async_trait;
use confab_service::push::Notification;
use confab_store::PushSubscription;

pub use worker::{Providers, Worker, WorkerConfig};

/// What became of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The provider accepted it.
    Delivered,
    /// A temporary failure (5xx, 429, a timeout): try again, not before `after` if given.
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    /// The device token is gone: the subscription is deleted.
    Gone,
    /// Refused for good (a malformed token, a payload the provider rejects).
    Rejected(String),
}

/// One push protocol.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// Sends `n` to `sub` (`None` for the webhook, which has no subscription).
    async fn send(
        &self,
        sub: Option<&PushSubscription>,
        user: (i64, i64),
        n: &Notification,
    ) -> Outcome;
}

/// The outcome of an HTTP answer by the usual rules: 2xx delivered; 429 and 5xx retried,
/// honouring `Retry-After` (seconds); anything else refused.
pub(crate) fn classify_status(resp: &reqwest::Response) -> Outcome {
    let status = resp.status();
    if status.is_success() {
        return Outcome::Delivered;
    }
    if status.as_u16() == 429 || status.is_server_error() {
        let after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        return Outcome::Retry {
            after,
            reason: format!("HTTP {status}"),
        };
    }
    Outcome::Rejected(format!("HTTP {status}"))
}

/// A transport failure is temporary.
pub(crate) fn transport_failure(e: reqwest::Error) -> Outcome {
    Outcome::Retry {
        after: None,
        reason: if e.is_timeout() {
            "timeout".into()
        } else {
            "connection failed".into()
        },
    }
}

/// Every provider's payload limit (FCM data, APNs payload, Web Push record).
pub const MAX_PAYLOAD_BYTES: usize = 4096;

/// Builds a payload with `text`, shortening the text until the payload's measured size (the second
/// value `build` returns) fits `max` bytes.
pub(crate) fn fit_text<T>(text: &str, max: usize, build: impl Fn(&str) -> (T, usize)) -> T {
    let (mut payload, mut size) = build(text);
    let mut text = text.to_string();
    while size > max && !text.is_empty() {
        // Cut the overflow (and the ellipsis) at a character boundary, then measure again.
        let keep = text.len().saturating_sub(size - max + 3);
        let mut cut = keep.min(text.len());
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        let shortened = format!("{text}…");
        (payload, size) = build(&shortened);
        if cut == 0 {
            break;
        }
    }
    payload
}
