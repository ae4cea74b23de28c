//! The ConnectyCube administration API (`CB-Administration-API-Key`).

pub mod chat;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::routing::{get, post, put};
use axum::Router;
use confab_core::model::App;

use crate::error::ApiError;
use crate::extract::{header_str, ADMIN_KEY_HEADER};
use crate::AppState;

/// A request carrying a valid administration key; it reaches only its own app.
pub struct AdminAuth(pub App);

impl FromRequestParts<AppState> for AdminAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = header_str(parts, ADMIN_KEY_HEADER).unwrap_or("");
        Ok(AdminAuth(state.accounts.app_by_api_key(key).await?))
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/chat", post(chat::create_dialog))
        .route("/admin/chat/list", get(chat::list_dialogs))
        .route("/admin/chat/messages/list", get(chat::list_messages))
        .route("/admin/chat/{id}", put(chat::update_dialog))
}
