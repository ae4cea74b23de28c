//! The caller: the device session of an `Authorization: Bearer` token. Every protected endpoint
//! takes a [`Caller`]; without a valid token the request is 401 before the handler runs.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use confab_core::UserId;
use confab_service::DeviceSession;

use crate::error::CsError;
use crate::State;

pub struct Caller {
    pub session: DeviceSession,
    /// The token the caller presented (shown back in its own `deviceSessions` entry).
    pub token: String,
}

impl Caller {
    pub fn user(&self) -> UserId {
        self.session.user_id
    }
}

/// The token of an `Authorization: Bearer …` header.
pub fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

impl FromRequestParts<State> for Caller {
    type Rejection = CsError;

    async fn from_request_parts(parts: &mut Parts, face: &State) -> Result<Self, CsError> {
        let token = bearer(&parts.headers).ok_or_else(CsError::unauthorized)?;
        let session = face
            .ids
            .authenticate(face.app, &token)
            .await
            .map_err(CsError::from)?;
        Ok(Self { session, token })
    }
}
