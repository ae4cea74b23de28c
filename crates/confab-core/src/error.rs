//! The protocol-neutral error. Each face has exactly one renderer for it.

use std::collections::BTreeMap;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No valid session (missing, unknown, expired or foreign token).
    Unauthenticated,
    /// Authenticated but not allowed.
    Forbidden,
    NotFound,
    /// Well-formed request whose fields fail validation (field errors attached).
    Invalid,
    /// Malformed request: bad JSON, bad query string, wrong types.
    BadRequest,
    TooLarge,
    RateLimited,
    Internal,
}

#[derive(Debug, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct Error {
    pub kind: ErrorKind,
    /// Safe to show to the client.
    pub message: String,
    /// Per-field messages for [`ErrorKind::Invalid`], e.g. `login: ["has already been taken"]`.
    pub fields: BTreeMap<String, Vec<String>>,
    /// Internal cause; logged, never shown.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            fields: BTreeMap::new(),
            source: None,
        }
    }

    /// The message the ConnectyCube SDK matches to fire its `sessionExpired` hook.
    pub fn no_session() -> Self {
        Self::new(
            ErrorKind::Unauthenticated,
            "Required session does not exist",
        )
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, message)
    }

    /// A validation error on one field.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        let mut e = Self::new(ErrorKind::Invalid, format!("{field} {message}"));
        e.fields.insert(field.to_string(), vec![message]);
        e
    }

    pub fn internal(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            kind: ErrorKind::Internal,
            message: "Internal server error".into(),
            fields: BTreeMap::new(),
            source: Some(Box::new(source)),
        }
    }

    pub fn with_field(mut self, field: &str, message: impl Into<String>) -> Self {
        self.fields
            .entry(field.to_string())
            .or_default()
            .push(message.into());
        self
    }
}

/// Collects several field errors before failing once, so a client sees them all.
#[derive(Default)]
pub struct FieldErrors(BTreeMap<String, Vec<String>>);

impl FieldErrors {
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0
            .entry(field.to_string())
            .or_default()
            .push(message.into());
    }

    pub fn into_result(self) -> Result<()> {
        if self.0.is_empty() {
            return Ok(());
        }
        let summary = self
            .0
            .iter()
            .map(|(k, v)| format!("{k} {}", v.join(", ")))
            .collect::<Vec<_>>()
            .join("; ");
        let mut e = Error::new(ErrorKind::Invalid, summary);
        e.fields = self.0;
        Err(e)
    }
}
