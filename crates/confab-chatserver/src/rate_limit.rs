//! Requests per client address and per Bearer token, as on the ConnectyCube listener (the same
//! `http_requests_per_sec_*` settings): over either rate a request gets `429` with `Retry-After`
//! and this face's error body, and is not handled.

use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use confab_service::limiter::{self, KeyedLimiter};

use crate::error::CsError;

/// A rate and the burst allowed before it applies; zero turns it off.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub per_sec: u32,
    pub burst: u32,
}

pub struct RateLimits {
    per_ip: Option<KeyedLimiter<IpAddr>>,
    /// Keyed by a keyed hash of the token: the map never holds tokens themselves.
    per_token: Option<KeyedLimiter<u64>>,
    hasher: std::hash::RandomState,
    limit_loopback: bool,
}

impl RateLimits {
    pub fn new(per_ip: Limit, per_token: Limit, limit_loopback: bool) -> Self {
        Self {
            per_ip: KeyedLimiter::per_second(per_ip.per_sec, per_ip.burst),
            per_token: KeyedLimiter::per_second(per_token.per_sec, per_token.burst),
            hasher: std::hash::RandomState::new(),
            limit_loopback,
        }
    }

    fn check(&self, ip: Option<IpAddr>, token: Option<&[u8]>) -> Result<(), Duration> {
        if let (Some(l), Some(ip)) = (&self.per_ip, ip) {
            if !limiter::exempt(ip, self.limit_loopback) {
                l.check(&ip)?;
            }
        }
        if let (Some(l), Some(token)) = (&self.per_token, token) {
            l.check(&self.hasher.hash_one(token))?;
        }
        Ok(())
    }
}

/// The Bearer token of a request, from the header or (WebSocket upgrades) `?token=`.
fn token(req: &Request) -> Option<&[u8]> {
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes)
        .and_then(|h| h.strip_prefix(b"Bearer "));
    let query = || {
        req.uri()
            .query()?
            .split('&')
            .find_map(|p| p.strip_prefix("token="))
            .map(str::as_bytes)
    };
    header.or_else(query).filter(|t| !t.is_empty())
}

pub async fn limit(State(limits): State<Arc<RateLimits>>, req: Request, next: Next) -> Response {
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    match limits.check(ip, token(&req)) {
        Ok(()) => next.run(req).await,
        Err(wait) => {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let mut resp = CsError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many requests, try again later.",
            )
            .into_response();
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
            resp
        }
    }
}
