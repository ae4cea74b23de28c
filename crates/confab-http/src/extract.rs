//! Extractors: who is calling (`CB-Token`) and what they sent (query + body as [`Params`]).

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, Method};
use confab_core::{Error, ErrorKind};
use confab_service::AuthContext;
use serde_json::Value;

use crate::error::ApiError;
use crate::params::{parse_json, parse_rack, Params};
use crate::AppState;

pub const TOKEN_HEADER: &str = "cb-token";
pub const AUTH_KEY_HEADER: &str = "cb-authkey";
pub const ADMIN_KEY_HEADER: &str = "cb-administration-api-key";

pub fn header_str<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// The client's address, when the server knows it (it always does when serving sockets).
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let addr = parts.extensions.get::<ConnectInfo<SocketAddr>>();
        Ok(ClientIp(addr.map(|c| c.0.ip())))
    }
}

/// A request with a valid session token (application or user session).
pub struct Auth {
    pub ctx: AuthContext,
    pub token: String,
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = header_str(parts, TOKEN_HEADER).ok_or_else(Error::no_session)?;
        let ctx = state.accounts.authenticate(token).await?;
        Ok(Auth {
            ctx,
            token: token.to_string(),
        })
    }
}

/// The session token when there is one; a present but invalid token is still an error.
pub struct MaybeAuth(pub Option<Auth>);

impl FromRequestParts<AppState> for MaybeAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if header_str(parts, TOKEN_HEADER).is_none() {
            return Ok(MaybeAuth(None));
        }
        Auth::from_request_parts(parts, state)
            .await
            .map(|a| MaybeAuth(Some(a)))
    }
}

/// Query string and body parameters, merged (the body wins).
pub struct Body(pub Params);

fn as_object(v: Value, what: &str) -> Result<Params, Error> {
    match v {
        Value::Object(m) => Ok(Params(m)),
        _ => Err(Error::bad_request(format!("{what} must be an object"))),
    }
}

impl FromRequest<AppState> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let limits = state.config.params;
        let query = parse_rack(req.uri().query().unwrap_or(""), &limits)?;
        let query = as_object(query, "query")?;
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.to_ascii_lowercase().contains("json"));
        let method = req.method().clone();
        let limit = state.config.max_body_bytes;
        let bytes: Bytes = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|_| {
                Error::new(
                    ErrorKind::TooLarge,
                    format!("Request body is larger than {limit} bytes"),
                )
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Body(query));
        }
        // The SDK sends JSON on POST/PUT and forms on DELETE; trust the content type, and
        // fall back on the method when it is missing.
        let body = if is_json || (method != Method::DELETE && bytes.first() == Some(&b'{')) {
            as_object(parse_json(&bytes, limits.max_json_depth)?, "JSON body")?
        } else {
            let text = std::str::from_utf8(&bytes)
                .map_err(|_| Error::bad_request("Body is not valid UTF-8"))?;
            as_object(parse_rack(text, &limits)?, "form body")?
        };
        Ok(Body(query.merge(body)))
    }
}
