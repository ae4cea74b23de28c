//! The ConnectyCube REST face: one file per resource, handlers named `<verb>_<noun>`.

pub mod blobs;
pub mod dialogs;
pub mod messages;
pub mod push;
pub mod render;
pub mod render_chat;
pub mod session;
pub mod users;

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put};
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
        .route(
            "/chat/Dialog",
            get(dialogs::list_dialogs).post(dialogs::create_dialog),
        )
        .route(
            "/chat/Dialog/clearHistory/{id}",
            delete(dialogs::clear_history),
        )
        .route(
            "/chat/Dialog/{id}",
            put(dialogs::update_dialog).delete(dialogs::delete_dialogs),
        )
        .route("/chat/Dialog/{id}/admins", put(dialogs::update_admins))
        .route(
            "/chat/Dialog/{id}/subscribe",
            post(dialogs::subscribe).delete(dialogs::unsubscribe),
        )
        .route(
            "/chat/Dialog/{id}/notifications",
            get(dialogs::get_notifications).put(dialogs::update_notifications),
        )
        .route("/chat/Dialog/{id}/occupants", get(dialogs::list_occupants))
        .route(
            "/chat/Message",
            get(messages::list_messages)
                .post(messages::create_message)
                .put(messages::update_dialog_messages),
        )
        .route("/chat/Message/unread", get(messages::unread_count))
        .route(
            "/chat/Message/system",
            post(messages::create_system_message),
        )
        .route(
            "/chat/Message/{id}",
            put(messages::update_message).delete(messages::delete_messages),
        )
        .route(
            "/chat/Message/{id}/reactions",
            get(messages::list_reactions).put(messages::update_reactions),
        )
        .route("/chat/search", get(messages::search))
        .route("/blobs", post(blobs::create_blob).get(blobs::list_blobs))
        // Uploads stream to disk under the blob size limit, not the request body limit.
        .route(
            "/blobs/upload",
            post(blobs::upload_blob).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/blobs/{key}",
            get(blobs::get_blob)
                .put(blobs::update_blob)
                .delete(blobs::delete_blob),
        )
        .route("/blobs/{key}/complete", put(blobs::complete_blob))
        .route("/blobs/{key}/object", get(blobs::get_blob_object))
        .route("/blobs/{key}/download", get(blobs::download_blob))
        .route(
            "/subscriptions",
            post(push::create_subscription).get(push::list_subscriptions),
        )
        .route("/subscriptions/{id}", delete(push::delete_subscription))
        .route("/events", post(push::create_event))
}
