//! Request rates per client address and per session token: over them, `429` with `Retry-After`.
//!
//! One [`KeyedLimiter`] per key kind; it forgets idle keys, so made-up addresses or tokens cannot
//! grow its map without bound.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use confab_service::limiter::{self, KeyedLimiter};
use serde_json::json;

use crate::extract::TOKEN_HEADER;

/// A sustained rate and a burst; a zero rate turns the limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_sec: u32,
    pub burst: u32,
}

impl Rate {
    pub const OFF: Rate = Rate {
        per_sec: 0,
        burst: 0,
    };
}

/// The REST face's rate limits.
pub struct RateLimits {
    per_ip: Option<KeyedLimiter<IpAddr>>,
    /// Keyed by a keyed hash of the token: the map never holds tokens themselves.
    per_token: Option<KeyedLimiter<u64>>,
    token_hasher: RandomState,
    limit_loopback: bool,
}

impl RateLimits {
    /// With `limit_loopback`, loopback clients have per-address limits too (see
    /// [`confab_service::limiter::exempt`]).
    pub fn new(per_ip: Rate, per_token: Rate, limit_loopback: bool) -> Self {
        Self {
            limit_loopback,
            per_ip: KeyedLimiter::per_second(per_ip.per_sec, per_ip.burst),
            per_token: KeyedLimiter::per_second(per_token.per_sec, per_token.burst),
            token_hasher: RandomState::new(),
        }
    }

    /// `Err(wait)` when the address or the token is over its rate.
    fn check(&self, ip: Option<IpAddr>, token: Option<&[u8]>) -> Result<(), Duration> {
        if let (Some(l), Some(ip)) = (&self.per_ip, ip) {
            if !limiter::exempt(ip, self.limit_loopback) {
                l.check(&ip)?;
            }
        }
        if let (Some(l), Some(token)) = (&self.per_token, token) {
            l.check(&self.token_hasher.hash_one(token))?;
        }
        Ok(())
    }
}

/// Middleware: refuses a request over either rate with `429`, a whole-second `Retry-After` and the
/// SDK's error shape; the request is not handled at all.
pub async fn limit(State(limits): State<Arc<RateLimits>>, req: Request, next: Next) -> Response {
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let token = req
        .headers()
        .get(TOKEN_HEADER)
        .map(HeaderValue::as_bytes)
        .filter(|t| !t.is_empty());
    match limits.check(ip, token) {
        Ok(()) => next.run(req).await,
        Err(wait) => too_many(wait),
    }
}

fn too_many(wait: Duration) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut resp = (
        StatusCode::TOO_MANY_REQUESTS,
        Json(json!({ "errors": { "base": ["Too many requests, try again later"] } })),
    )
        .into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_rate_is_off() {
        let l = RateLimits::new(Rate::OFF, Rate::OFF, true);
        for _ in 0..10_000 {
            assert!(l.check(Some([10, 0, 0, 1].into()), Some(b"t")).is_ok());
        }
    }

    #[test]
    fn address_and_token_are_limited_apart() {
        let rate = Rate {
            per_sec: 1,
            burst: 2,
        };
        let l = RateLimits::new(rate, rate, true);
        let ip = Some(IpAddr::from([10, 0, 0, 1]));
        assert!(l.check(ip, Some(b"a")).is_ok());
        assert!(l.check(ip, Some(b"b")).is_ok());
        // The address is spent, whatever the token.
        assert!(l.check(ip, Some(b"c")).is_err());
        let other = Some(IpAddr::from([10, 0, 0, 2]));
        assert!(l.check(other, Some(b"a")).is_ok());
        // The token is spent, whatever the address.
        assert!(l.check(Some([10, 0, 0, 3].into()), Some(b"a")).is_err());
    }

    #[test]
    fn loopback_is_exempt_by_default() {
        let rate = Rate {
            per_sec: 1,
            burst: 1,
        };
        let l = RateLimits::new(rate, Rate::OFF, false);
        for _ in 0..10 {
            assert!(l.check(Some([127, 0, 0, 1].into()), None).is_ok());
        }
        assert!(l.check(Some([10, 0, 0, 1].into()), None).is_ok());
        assert!(l.check(Some([10, 0, 0, 1].into()), None).is_err());
    }
}
