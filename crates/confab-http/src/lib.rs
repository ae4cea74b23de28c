//! confab's HTTP faces.
//!
//! - [`router`]: builds the whole HTTP service (suffix stripping, CORS, fallbacks).
//! - [`error`]: the one renderer of domain errors as ConnectyCube `{"errors": …}` JSON.
//! - [`params`]: Rack-style query strings and form bodies, JSON bodies, read leniently.
//! - [`extract`]: request extractors (session token, request parameters).
//! - [`filters`]: the chat API's `field[op]=value` filters, sorting and paging.
//! - [`connectycube`]: the ConnectyCube REST routes, one file per resource.
//! - [`admin`]: the administration API (`CB-Administration-API-Key`).
//! - [`rate_limit`]: requests per client address and per token (`429` with `Retry-After`).

pub mod admin;
pub mod connectycube;
pub mod error;
pub mod extract;
pub mod filters;
pub mod params;
pub mod rate_limit;
pub mod router;

use std::sync::Arc;

use confab_service::{Accounts, Blobs, Chat, Push};

/// Limits of the HTTP face.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Nesting and pair counts of query strings, forms and JSON bodies.
    pub params: params::ParamLimits,
    /// The URL clients reach this server at (upload URLs); the request's `Host` when unset.
    pub public_url: Option<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            params: params::ParamLimits::default(),
            public_url: None,
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub accounts: Arc<Accounts>,
    pub chat: Arc<Chat>,
    pub blobs: Arc<Blobs>,
    pub push: Arc<Push>,
    /// The chat domain, for room JIDs.
    pub domain: Arc<str>,
    pub config: Arc<HttpConfig>,
    /// The other nodes, for `/health`'s bus state.
    pub cluster: Arc<dyn confab_service::Cluster>,
}

pub use router::router;
