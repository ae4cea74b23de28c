//! Renders the domain error as ConnectyCube JSON: `{"errors": {"base": [...]}}` or field errors.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use confab_core::{Error, ErrorKind};
use serde_json::json;

/// A domain error on its way out of the ConnectyCube face.
#[derive(Debug)]
pub struct ApiError(pub Error);

pub type ApiResult<T> = Result<T, ApiError>;

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

fn status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        if e.kind == ErrorKind::Internal {
            // Details stay in the log; the client only learns that it failed.
            tracing::error!(error = ?e.source, "internal error");
        }
        let body = if e.kind == ErrorKind::Invalid && !e.fields.is_empty() {
            json!({ "errors": e.fields })
        } else {
            json!({ "errors": { "base": [e.message] } })
        };
        (status(e.kind), Json(body)).into_response()
    }
}
