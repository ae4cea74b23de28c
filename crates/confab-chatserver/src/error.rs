//! The only renderer of errors on this face: `{"error": true, "reason": …}` with the status, as
//! Vapor's error middleware writes them.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use confab_core::{Error, ErrorKind};
use serde_json::json;

#[derive(Debug)]
pub struct CsError {
    pub status: StatusCode,
    pub reason: String,
}

pub type CsResult<T> = Result<T, CsError>;

impl CsError {
    pub fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        Self {
            status,
            reason: reason.into(),
        }
    }

    pub fn bad_request(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, reason)
    }

    pub fn forbidden(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, reason)
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "Not Found")
    }

    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Unauthorized")
    }
}

impl From<Error> for CsError {
    fn from(e: Error) -> Self {
        let status = match e.kind {
            ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Invalid | ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Internal => {
                // Details stay in the log; the client only learns that it failed.
                tracing::error!(error = ?e.source, "internal error");
                return Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong.");
            }
        };
        let reason = match e.kind {
            ErrorKind::Unauthenticated => "Unauthorized".to_string(),
            _ => e.message,
        };
        Self::new(status, reason)
    }
}

impl IntoResponse for CsError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({ "error": true, "reason": self.reason })),
        )
            .into_response()
    }
}

/// A JSON body, or 400 with what was wrong with it (the client's own words are not echoed).
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> CsResult<T> {
    serde_json::from_slice(body).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Data => "Invalid or missing fields in the request body.",
            _ => "The request body is not valid JSON.",
        };
        CsError::bad_request(what)
    })
}

/// Answers the framework produces itself (a body over the size limit, a bad query string, a method
/// the path does not have) get this face's error body too.
pub async fn framework_errors(resp: Response) -> Response {
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let reason = status.canonical_reason().unwrap_or("Error");
    CsError::new(status, reason).into_response()
}
