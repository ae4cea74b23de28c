//! The ConnectyCube REST face: one file per resource, handlers named `<verb>_<noun>`.

pub mod render;
pub mod session;
pub mod users;

use axum::routing::{get, post};
use axum::Router;

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/session",
            post(session::create_session)
                .get(session::get_session)
                .delete(session::delete_session),
        )
        .route("/login", post(session::login).delete(session::logout))
        .route("/users", post(users::create_user).get(users::list_users_v1))
        .route("/users/v2", get(users::list_users))
        .route("/users/by_login", get(users::get_user_by_login))
        .route("/users/by_email", get(users::get_user_by_email))
        .route("/users/by_full_name", get(users::list_users_by_full_name))
        .route("/users/by_tags", get(users::list_users_by_tags))
        .route("/users/external/{id}", get(users::get_user_by_external_id))
        .route(
            "/users/{id}",
            get(users::get_user)
                .put(users::update_user)
                .delete(users::delete_user),
        )
}
