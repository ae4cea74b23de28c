//! Accounts as the domain sees them: applications, users and sessions.

use crate::clock::Millis;
use crate::ids::{AppId, UserId};

/// An application: the unit of isolation. Nothing crosses from one app to another.
#[derive(Debug, Clone)]
pub struct App {
    pub id: AppId,
    pub name: String,
    /// Sent in clear by clients (it ships inside apps), so it is stored as is.
    pub auth_key: String,
    pub created_at: Millis,
}

/// What `app create` hands out once; the admin key is only stored hashed.
#[derive(Debug, Clone)]
pub struct AppCredentials {
    pub app: App,
    pub auth_secret: String,
    pub api_key: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct User {
    pub id: i64,
    pub app_id: i64,
    pub login: Option<String>,
    pub email: Option<String>,
    pub full_name: Option<String>,
    pub phone: Option<String>,
    pub website: Option<String>,
    pub external_user_id: Option<i64>,
    pub external_id: Option<String>,
    pub facebook_id: Option<String>,
    pub twitter_id: Option<String>,
    pub custom_data: Option<String>,
    pub blob_id: Option<i64>,
    pub avatar: Option<String>,
    pub timezone: Option<i64>,
    pub tags: Vec<String>,
    pub is_guest: bool,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub last_request_at: Option<Millis>,
}

impl User {
    pub fn user_id(&self) -> UserId {
        UserId::new(self.id).expect("stored user ids are positive")
    }
}

/// The profile fields a user may set; `None` leaves a field as it is.
/// `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct UserFields {
    pub login: Option<Option<String>>,
    pub email: Option<Option<String>>,
    pub full_name: Option<Option<String>>,
    pub phone: Option<Option<String>>,
    pub website: Option<Option<String>>,
    pub external_user_id: Option<Option<i64>>,
    pub external_id: Option<Option<String>>,
    pub facebook_id: Option<Option<String>>,
    pub twitter_id: Option<Option<String>>,
    pub custom_data: Option<Option<String>>,
    pub blob_id: Option<Option<i64>>,
    pub avatar: Option<Option<String>>,
    pub timezone: Option<Option<i64>>,
    pub tags: Option<Vec<String>>,
}

/// A filter over an app's users, as `GET /users/v2` expresses it.
#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    pub ids: Option<Vec<i64>>,
    pub logins: Option<Vec<String>>,
    pub emails: Option<Vec<String>>,
    pub full_name: Option<String>,
    /// A part of the full name or of the login, case-insensitively.
    pub name_or_login: Option<String>,
    pub external_user_ids: Option<Vec<i64>>,
    pub tags: Option<Vec<String>>,
    pub limit: u32,
    pub skip: u32,
}

#[derive(Debug, Clone)]
pub struct Session {
    pub id: i64,
    pub app_id: AppId,
    pub user_id: Option<UserId>,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub expires_at: Millis,
}
