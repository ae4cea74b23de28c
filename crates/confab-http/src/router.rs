//! The whole HTTP service: routes, JSON fallbacks, `.json` suffixes and CORS.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderName, Method, StatusCode, Uri};
use axum::middleware;
use axum::routing::get;
use axum::{Json, Router};
use confab_core::Error;
use serde_json::{json, Value};
use tower::util::MapRequestLayer;
use tower::Layer;
use tower_http::cors::{Any, CorsLayer};

use crate::error::ApiError;
use crate::rate_limit::{self, RateLimits};
use crate::{admin, connectycube, AppState};

/// GET /health: 503 when the store does not answer (the node cannot serve). A bus that is down is
/// reported but keeps 200: every node loses the shared bus at once, and a load balancer taking all
/// of them out would turn a degraded cluster (each node still serves its own clients) into an outage.
async fn health(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let store = state.accounts.store_ok().await;
    let bus = match state.cluster.bus_connected() {
        None => "none",
        Some(true) => "ok",
        Some(false) => "down",
    };
    let status = if store {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if store { "ok" } else { "unavailable" },
        "store": if store { "ok" } else { "down" },
        "bus": bus,
    });
    (status, Json(body))
}

async fn not_found() -> ApiError {
    Error::not_found("Not found").into()
}

async fn method_not_allowed() -> (StatusCode, Json<Value>) {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(json!({ "errors": { "base": ["Method not allowed"] } })),
    )
}

/// All routes with their state; protocol faces that need more routes merge into this.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .merge(connectycube::routes())
        .merge(admin::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// Seed 000 spells some chat paths in lower case (`/chat/dialog/{id}/subscribe`); the SDK uses the
/// capitalised ones the routes declare.
const LOWER_CASE_ALIASES: [(&str, &str); 2] = [
    ("/chat/dialog", "/chat/Dialog"),
    ("/chat/message", "/chat/Message"),
];

/// The route path for a request path: without the `.json` suffix the SDK appends to every path, and
/// with the seed's lower-case spellings capitalised.
fn route_path(path: &str) -> Option<String> {
    let stripped = path.strip_suffix(".json");
    let path = stripped.unwrap_or(path);
    for (alias, route) in LOWER_CASE_ALIASES {
        if let Some(rest) = path.strip_prefix(alias) {
            if rest.is_empty() || rest.starts_with('/') {
                return Some(format!("{route}{rest}"));
            }
        }
    }
    stripped.map(str::to_string)
}

/// `storage.privateUrl(uid)` / `publicUrl(uid)` name a blob's bytes as `/blobs/<uid>` without
/// `.json`, while `/blobs/<uid>.json` is its info: the download gets its own route before the
/// suffix is stripped. Ids are all digits and uids never are.
fn blob_download_path(method: &Method, path: &str) -> Option<String> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    let key = path.strip_prefix("/blobs/")?;
    let is_uid = !key.is_empty()
        && key != "upload"
        && !key.contains(['/', '.'])
        && !key.bytes().all(|b| b.is_ascii_digit());
    is_uid.then(|| format!("{path}/download"))
}

fn strip_json_suffix(mut req: Request) -> Request {
    let path = req.uri().path();
    let rewritten = blob_download_path(req.method(), path).or_else(|| route_path(path));
    if let Some(path) = rewritten {
        let rebuilt = match req.uri().query() {
            Some(q) => format!("{path}?{q}"),
            None => path,
        };
        if let Ok(uri) = rebuilt.parse::<Uri>() {
            *req.uri_mut() = uri;
        }
    }
    req
}

/// Browser apps on another origin send `CB-*` headers, which need a CORS preflight.
fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([
            header::CONTENT_TYPE,
            HeaderName::from_static("cb-token"),
            HeaderName::from_static("cb-authkey"),
            HeaderName::from_static("cb-sdk"),
            HeaderName::from_static("cb-administration-api-key"),
        ])
        .expose_headers([header::RETRY_AFTER])
        .max_age(Duration::from_secs(24 * 60 * 60))
}

/// Wraps a finished router so suffix stripping happens before routing, and every request (the
/// `/ws` upgrade too) passes the rate limits first.
pub fn into_service(router: Router, limits: Arc<RateLimits>) -> Router {
    // A `Router` used as a fallback service receives every request unrouted, so the
    // rewrite below runs before the inner router matches paths.
    let inner = MapRequestLayer::new(strip_json_suffix).layer(router);
    Router::new()
        .fallback_service(inner)
        // Inside CORS, so a browser app can read the 429.
        .layer(middleware::from_fn_with_state(limits, rate_limit::limit))
        .layer(cors())
}
