//! Starts the ChatServer face when `chatserver_addr` is set: its listener, its router, and its
//! subscriber on the domain's bus.

use std::net::SocketAddr;
use std::sync::Arc;

use confab_chatserver::rate_limit::{Limit, RateLimits};
use confab_core::{AppId, Error, Result};
use confab_service::{Cluster, Subscriber};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::{config_error, Config, Domain};

pub(crate) struct Started {
    pub addr: SocketAddr,
    /// Held by the server: the bus holds its subscribers weakly.
    pub events: Arc<dyn Subscriber>,
    pub task: JoinHandle<()>,
}

/// `None` when the face is off (no address, or an empty one).
pub(crate) async fn start(
    config: &Config,
    domain: &Domain,
    cluster: Arc<dyn Cluster>,
    stop: watch::Receiver<bool>,
) -> Result<Option<Started>> {
    let Some(addr) = config
        .chatserver_addr
        .as_deref()
        .filter(|a| !a.trim().is_empty())
    else {
        return Ok(None);
    };
    let app = config
        .chatserver_app_id
        .ok_or_else(|| config_error("chatserver_addr needs chatserver_app_id".into()))
        .and_then(|id| {
            AppId::new(id).map_err(|_| config_error("chatserver_app_id must be positive".into()))
        })?;
    if domain.store.app(app).await?.is_none() {
        return Err(config_error(format!(
            "chatserver_app_id {app} is not an app of this server"
        )));
    }
    let face = confab_chatserver::Face::new(
        app,
        domain.accounts.clone(),
        domain.chat.clone(),
        domain.chatserver.clone(),
        domain.blobs.clone(),
        domain.push.clone(),
        config.domain.clone(),
        cluster,
        confab_chatserver::Limits {
            max_sockets: config.chatserver_max_sockets,
            max_sessions_per_user: config.chatserver_max_sessions_per_user,
        },
        stop.clone(),
    );
    let events = face.subscriber();
    domain.chat.bus().subscribe(Arc::downgrade(&events));
    let listener = TcpListener::bind(addr).await.map_err(Error::internal)?;
    let bound = listener.local_addr().map_err(Error::internal)?;
    tracing::info!(chatserver = %bound, app = %app, "listening");
    let limits = RateLimits::new(
        Limit {
            per_sec: config.http_requests_per_sec_per_ip,
            burst: config.http_burst_per_ip,
        },
        Limit {
            per_sec: config.http_requests_per_sec_per_token,
            burst: config.http_burst_per_token,
        },
        config.per_ip_limits_on_loopback,
    );
    let router = confab_chatserver::router(face, config.max_body_bytes, limits);
    let mut serve_stop = stop;
    let serve = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = serve_stop.wait_for(|s| *s).await;
    });
    let task = tokio::spawn(async move {
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "chatserver listener failed");
        }
    });
    Ok(Some(Started {
        addr: bound,
        events,
        task,
    }))
}
