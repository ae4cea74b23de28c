//! The ChatServer face: ChatServer's REST API and JSON WebSocket over confab's domain, so its
//! clients and ConnectyCube SDK clients of one app talk in the same dialogs.
//!
//! - [`error`]: the only renderer of errors (`{"error": true, "reason": …}`).
//! - [`auth`]: the caller, from `Authorization: Bearer` (or `?token=` on the WebSocket).
//! - [`render`]: the face's JSON objects and its two date styles.
//! - [`users`], [`contacts`], [`media`], [`chats`], [`flags`], [`members`], [`blocks`], [`bans`],
//!   [`messages`], [`notify`], [`uploads`]: handlers; they call services only.
//! - [`push`]: this face's devices as push subscriptions, and its say in chat alerts.
//! - [`ws`]: the sockets, and the face's subscriber on the domain's bus.

pub mod auth;
pub mod bans;
pub mod blocks;
pub mod chats;
pub mod contacts;
pub mod error;
pub mod flags;
pub mod hub;
pub mod media;
pub mod members;
pub mod messages;
pub mod notify;
pub mod push;
pub mod rate_limit;
pub mod render;
pub mod uploads;
pub mod users;
pub mod ws;

use std::sync::Arc;

use axum::routing::{delete, get, post, put};
use axum::Router;
use confab_core::AppId;
use confab_service::push::{AlertFilter, Push};
use confab_service::{Accounts, Blobs, Chat, ChatServerState, Cluster, NodeHandler, Subscriber};
use tokio::sync::watch;

use crate::error::CsError;

/// The face's caps (`chatserver_max_sockets`, `chatserver_max_sessions_per_user`; 0: none).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Open sockets on this node.
    pub max_sockets: usize,
    /// Device sessions per user; a login beyond it ends the oldest.
    pub max_sessions_per_user: usize,
}

/// What the handlers share.
pub struct Face {
    /// The ConnectyCube app whose users ChatServer users are.
    pub app: AppId,
    pub accounts: Arc<Accounts>,
    pub chat: Arc<Chat>,
    pub ids: Arc<ChatServerState>,
    /// The ConnectyCube face's blob storage, which also keeps this face's uploads.
    pub blobs: Arc<Blobs>,
    pub push: Arc<Push>,
    /// The chat domain, for the JIDs privacy lists name users by.
    pub domain: String,
    pub hub: hub::Hub,
    pub limits: Limits,
    /// Held here: the cluster holds the face's handler weakly.
    _node_handler: Arc<dyn NodeHandler>,
    /// Held here: the push service holds the filter weakly.
    _alerts: Arc<dyn AlertFilter>,
    /// Flips to `true` at shutdown: open sockets close.
    pub stop: watch::Receiver<bool>,
}

pub type State = Arc<Face>;

impl Face {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        app: AppId,
        accounts: Arc<Accounts>,
        chat: Arc<Chat>,
        ids: Arc<ChatServerState>,
        blobs: Arc<Blobs>,
        push: Arc<Push>,
        domain: String,
        cluster: Arc<dyn Cluster>,
        limits: Limits,
        stop: watch::Receiver<bool>,
    ) -> State {
        let face = Arc::new_cyclic(|me| Self {
            app,
            accounts,
            chat,
            ids,
            blobs,
            push,
            domain,
            hub: hub::Hub::new(app, cluster.clone(), limits.max_sockets),
            limits,
            _node_handler: Arc::new(hub::ChatServerNodeHandler { hub: me.clone() }),
            _alerts: Arc::new(crate::push::Alerts { face: me.clone() }),
            stop,
        });
        cluster.serve(hub::FACE, Arc::downgrade(&face._node_handler));
        face.push.add_alert_filter(Arc::downgrade(&face._alerts));
        face
    }

    /// The face's subscriber on the domain's bus; the caller holds it (the bus holds it weakly).
    pub fn subscriber(self: &Arc<Self>) -> Arc<dyn Subscriber> {
        Arc::new(ws::Realtime { face: self.clone() })
    }
}

/// The API's routes, relative to a root.
fn api() -> Router<State> {
    Router::new()
        .route("/users", post(users::register).get(users::search))
        .route("/users/login", post(users::login))
        .route(
            "/users/me",
            get(users::me)
                .put(users::update_me)
                .delete(users::delete_me),
        )
        .route("/users/me/changePassword", put(users::change_password))
        .route("/users/me/device", put(users::update_device))
        .route("/users/me/setAccountKey", put(users::set_account_key))
        .route("/users/resetPassword", post(users::reset_password))
        .route("/users/me/logout", post(users::logout))
        .route("/users/{id}", get(users::get_user))
        .route("/users/me/photos", post(media::add_photo))
        .route("/users/me/photos/{photo}", delete(media::delete_photo))
        .route(
            "/users/me/contacts",
            get(contacts::list).post(contacts::add),
        )
        .route("/users/me/contacts/{contact}", delete(contacts::delete))
        .route("/chats", post(chats::create).get(chats::list))
        .route("/chats/", get(chats::list))
        .route(
            "/chats/{id}",
            get(chats::get_chat)
                .put(chats::update)
                .delete(chats::delete_chat),
        )
        .route("/chats/{id}/settings", put(chats::settings))
        .route("/chats/{id}/images", post(media::add_image))
        .route("/chats/{id}/images/{image}", delete(media::delete_image))
        .route(
            "/chats/{id}/users",
            post(members::add_users).delete(members::remove_users),
        )
        .route("/chats/{id}/me", delete(members::exit))
        .route("/chats/{id}/users/blocked", get(bans::blocked_list))
        .route("/chats/{id}/users/{user}/block", put(bans::block_user))
        .route("/chats/{id}/users/{user}/unblock", put(bans::unblock_user))
        .route("/chats/{id}/block", put(blocks::block))
        .route("/chats/{id}/unblock", put(blocks::unblock))
        .route("/chats/{id}/notify", post(notify::notify))
        .route(
            "/chats/{id}/messages",
            post(messages::post_message)
                .get(messages::list)
                .delete(messages::clear),
        )
        .route(
            "/chats/{id}/messages/{message}",
            put(messages::update_message).delete(messages::delete_message),
        )
        .route(
            "/chats/{id}/messages/{message}/read",
            put(messages::read_message),
        )
        .route("/files/{name}", get(uploads::serve))
}

/// Everything the face serves: the documented layout at the root, the newer one under `/api/`,
/// and the WebSocket at `/<sessionId>` and `/ws/<sessionId>`.
pub fn router(face: State, max_body_bytes: usize, limits: rate_limit::RateLimits) -> Router {
    Router::new()
        .route("/", get(|| async { "Chat Server v0.1.0" }))
        .merge(api())
        .nest("/api", api())
        .route("/{session}", get(ws::upgrade_or_file))
        .route("/ws/{session}", get(ws::upgrade))
        // Uploads take the raw body, which the body limit does not cover: they stream under
        // their own limit (see `uploads`).
        .route("/uploads", post(uploads::upload))
        .route("/api/uploads", post(uploads::upload))
        .fallback(|| async { CsError::not_found() })
        .layer(axum::middleware::map_response(error::framework_errors))
        .layer(axum::extract::DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            std::sync::Arc::new(limits),
            rate_limit::limit,
        ))
        .with_state(face)
}
