//! The confab server as a library, so tests start the real thing in-process.
//!
//! - [`config`]: the configuration (TOML file + `CONFAB_*` environment).
//! - `xmpp`: builds the XMPP face (TCP/TLS listeners; `/ws` is merged into the HTTP router).
//! - `chatserver`: the ChatServer face's listener, when `chatserver_addr` is set.
//! - [`Server`]: binds the listeners, serves until shut down, then closes the store cleanly.

mod chatserver;
mod cluster;
pub mod config;
mod push;
mod xmpp;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use confab_core::model::AppCredentials;
use confab_core::{AppId, Error, Result};
use confab_http::params::ParamLimits;
use confab_http::rate_limit::{Rate, RateLimits};
use confab_http::{AppState, HttpConfig};
use confab_service::blobs::s3::S3Config;
use confab_service::group_blocks::GroupBlocks;
use confab_service::{
    Accounts, AccountsConfig, Blobs, BlobsConfig, Chat, ChatServerState, LocalBus, Offline,
    Privacy, Push, PushConfig, Roster, Subscriber,
};
use confab_store::postgres::PgStore;
use confab_store::sqlite::SqliteStore;
use confab_store::{
    AccountStore, BlobStore, ChatServerStore, ChatStore, OfflineStore, PrivacyStore, PushStore,
    RosterStore,
};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::Config;

/// How often expired sessions are swept from the database.
const SESSION_PURGE_INTERVAL: Duration = Duration::from_secs(600);
/// How often blobs never completed are looked for (at most this late past their time).
const BLOB_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// The domain services over one opened store.
/// The store and the domain services over it, shared by every face.
struct Domain {
    store: OpenStore,
    accounts: Arc<Accounts>,
    chat: Arc<Chat>,
    blobs: Arc<Blobs>,
    push: Arc<Push>,
    offline: Arc<Offline>,
    roster: Arc<Roster>,
    /// The ChatServer face's device sessions and id mappings.
    chatserver: Arc<ChatServerState>,
}

/// The store the configuration names: PostgreSQL with `database_url`, else SQLite under `data_dir`.
enum OpenStore {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl OpenStore {
    async fn close(&self) {
        match self {
            Self::Sqlite(s) => s.close().await,
            Self::Postgres(s) => s.close().await,
        }
    }

    async fn app(&self, id: AppId) -> Result<Option<confab_core::model::App>> {
        match self {
            Self::Sqlite(s) => s.app(id).await,
            Self::Postgres(s) => s.app(id).await,
        }
    }
}

/// Every store trait the domain needs, from one backend.
trait Stores:
    AccountStore
    + BlobStore
    + ChatServerStore
    + ChatStore
    + OfflineStore
    + PrivacyStore
    + PushStore
    + RosterStore
    + Clone
{
}

impl<S> Stores for S where
    S: AccountStore
        + BlobStore
        + ChatServerStore
        + ChatStore
        + OfflineStore
        + PrivacyStore
        + PushStore
        + RosterStore
        + Clone
{
}

impl Domain {
    async fn open(config: &Config) -> Result<Self> {
        match config.database_url.as_deref().map(str::trim) {
            Some(url) if !url.is_empty() => {
                let store = PgStore::connect(url).await?;
                Self::over(store.clone(), OpenStore::Postgres(store), config)
            }
            _ => {
                let store = SqliteStore::open(&config.data_dir).await?;
                Self::over(store.clone(), OpenStore::Sqlite(store), config)
            }
        }
    }

    fn over<S: Stores>(store: S, open: OpenStore, config: &Config) -> Result<Self> {
        let blobs = Arc::new(Blobs::new(
            Arc::new(store.clone()),
            BlobsConfig {
                dir: config.data_dir.join("blobs"),
                s3: blob_s3(config)?,
                max_bytes: config.blob_max_bytes,
                incomplete_ttl: Duration::from_secs(config.blob_incomplete_ttl_secs),
            },
        )?);
        let accounts = Arc::new(
            Accounts::new(
                Arc::new(store.clone()),
                AccountsConfig {
                    session_ttl: Duration::from_secs(config.session_ttl_secs.max(1)),
                    login_attempts_per_minute: config.login_attempts_per_minute,
                    login_attempts_per_minute_per_ip: config.login_attempts_per_minute_per_ip,
                    limit_loopback: config.per_ip_limits_on_loopback,
                },
            )
            .with_blobs(blobs.clone()),
        );
        let privacy = Arc::new(Privacy::new(Arc::new(store.clone()), config.domain.clone()));
        let group_blocks = Arc::new(GroupBlocks::new(Arc::new(store.clone())));
        let chat = Arc::new(
            Chat::new(
                Arc::new(store.clone()),
                Arc::new(store.clone()),
                privacy.clone(),
                Arc::new(LocalBus::default()),
            )
            .with_group_blocks(group_blocks.clone()),
        );
        let offline = Arc::new(Offline::new(
            Arc::new(store.clone()),
            config.xmpp_offline_max_per_user,
        ));
        let roster = Arc::new(Roster::new(
            Arc::new(store.clone()),
            Arc::new(store.clone()),
            privacy,
            config.xmpp_max_contacts,
        ));
        let push = Push::new(
            Arc::new(store.clone()),
            Arc::new(store.clone()),
            PushConfig {
                allow_private_endpoints: config.push_allow_private_endpoints,
                webhook: config.push_webhook_url.is_some(),
                alert_template: config.push_alert_template.clone(),
                alert_max_chars: config.push_alert_max_chars,
                max_event_recipients: config.push_event_max_recipients,
                max_subscriptions_per_user: config.push_max_subscriptions_per_user,
                alert_queue_len: config.push_alert_queue_len,
            },
        );
        let chatserver = Arc::new(ChatServerState::new(Arc::new(store.clone()), group_blocks));
        Ok(Self {
            chatserver,
            store: open,
            accounts,
            chat,
            blobs,
            push,
            offline,
            roster,
        })
    }
}

fn config_error(message: String) -> Error {
    Error::internal(std::io::Error::other(message))
}

/// The S3 blob backend, when its three settings are given; half a configuration is refused
/// rather than silently storing blobs on disk.
fn blob_s3(config: &Config) -> Result<Option<S3Config>> {
    // An empty variable (`CONFAB_BLOB_S3_BUCKET=`) is an unset one.
    let set = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
    let (endpoint, bucket, region) = match (
        set(&config.blob_s3_endpoint),
        set(&config.blob_s3_bucket),
        set(&config.blob_s3_region),
    ) {
        (None, None, None) => return Ok(None),
        (Some(e), Some(b), Some(r)) => (e, b, r),
        _ => {
            return Err(config_error(
                "blob_s3_endpoint, blob_s3_bucket and blob_s3_region go together".into(),
            ))
        }
    };
    let credential = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| config_error(format!("the S3 blob backend needs {name}")))
    };
    Ok(Some(S3Config {
        endpoint,
        bucket,
        region,
        access_key: credential("AWS_ACCESS_KEY_ID")?,
        secret_key: credential("AWS_SECRET_ACCESS_KEY")?,
    }))
}

/// `confab app create`: registers an application in the configured store.
pub async fn create_app(config: &Config, name: &str) -> Result<AppCredentials> {
    let domain = Domain::open(config).await?;
    let creds = domain.accounts.create_app(name).await;
    domain.store.close().await;
    creds
}

/// `confab app delete`: removes an application and everything in it from the configured store.
/// A running server refuses the app's sessions at once; XMPP sessions already open stay until
/// they disconnect.
pub async fn delete_app(config: &Config, id: AppId) -> Result<()> {
    let domain = Domain::open(config).await?;
    let deleted = domain.accounts.delete_app(id).await;
    domain.store.close().await;
    deleted
}

/// A running server.
pub struct Server {
    pub http_addr: SocketAddr,
    /// XMPP over TCP (plain + STARTTLS).
    pub xmpp_addr: SocketAddr,
    /// XMPP over direct TLS, when configured.
    pub xmpp_tls_addr: Option<SocketAddr>,
    /// The ChatServer face, when configured.
    pub chatserver_addr: Option<SocketAddr>,
    /// Held here: the bus holds its subscribers weakly.
    _chatserver_events: Option<Arc<dyn Subscriber>>,
    /// The XMPP face, for embedding code (and tests) that act on sessions directly.
    pub xmpp: Arc<confab_xmpp::XmppServer>,
    /// Held here: the bus holds its subscribers weakly.
    _xmpp_events: Arc<dyn Subscriber>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Server {
    /// Opens the store, binds every listener and starts serving.
    pub async fn start(config: Config) -> Result<Self> {
        let domain = Domain::open(&config).await?;
        domain.blobs.clear_unfinished_uploads()?;
        let providers = push::providers(&config)?;
        let (shutdown, mut stop) = watch::channel(false);
        let membership = cluster::join(&config).await?;
        // First of the listeners: a misconfigured face fails the start before anything listens.
        let chatserver =
            chatserver::start(&config, &domain, membership.cluster.clone(), stop.clone()).await?;
        let (chatserver_addr, chatserver_events, chatserver_task) = match chatserver {
            Some(c) => (Some(c.addr), Some(c.events), Some(c.task)),
            None => (None, None, None),
        };
        let xmpp = xmpp::start(&config, &domain, membership.cluster.clone(), stop.clone()).await?;
        // The XMPP face renders the domain's events for its sessions.
        let xmpp_events: Arc<dyn Subscriber> = Arc::new(confab_xmpp::realtime::XmppRealtime {
            server: xmpp.server.clone(),
        });
        domain.chat.bus().subscribe(Arc::downgrade(&xmpp_events));
        let state = AppState {
            accounts: domain.accounts.clone(),
            chat: domain.chat.clone(),
            blobs: domain.blobs.clone(),
            push: domain.push.clone(),
            domain: config.domain.as_str().into(),
            config: Arc::new(HttpConfig {
                max_body_bytes: config.max_body_bytes,
                params: ParamLimits {
                    max_depth: config.http_max_param_depth,
                    max_pairs: config.http_max_params,
                    max_json_depth: config.http_max_json_depth,
                }
                .capped(),
                public_url: config.public_url.clone(),
            }),
            cluster: membership.cluster.clone(),
        };
        let listener = TcpListener::bind(&config.http_addr)
            .await
            .map_err(Error::internal)?;
        let http_addr = listener.local_addr().map_err(Error::internal)?;
        tracing::info!(http = %http_addr, domain = %config.domain, "listening");

        let router =
            confab_http::router(state).merge(confab_xmpp::listen::ws_routes(xmpp.server.clone()));
        let limits = RateLimits::new(
            Rate {
                per_sec: config.http_requests_per_sec_per_ip,
                burst: config.http_burst_per_ip,
            },
            Rate {
                per_sec: config.http_requests_per_sec_per_token,
                burst: config.http_burst_per_token,
            },
            config.per_ip_limits_on_loopback,
        );
        let app = confab_http::router::into_service(router, Arc::new(limits));
        let mut serve_stop = stop.clone();
        let serve = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = serve_stop.wait_for(|s| *s).await;
        });

        let push_worker = push::start_worker(&domain.push, providers, stop.clone());
        let accounts = domain.accounts.clone();
        let blobs = domain.blobs.clone();
        let xmpp_server = xmpp.server.clone();
        let task = tokio::spawn(async move {
            let purge = async {
                let mut tick = tokio::time::interval(SESSION_PURGE_INTERVAL);
                loop {
                    tick.tick().await;
                    match accounts.purge_expired_sessions().await {
                        Ok(n) if n > 0 => tracing::info!(sessions = n, "purged expired sessions"),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "session purge failed"),
                    }
                }
            };
            let sweep = async {
                let mut tick = tokio::time::interval(BLOB_SWEEP_INTERVAL);
                loop {
                    tick.tick().await;
                    match blobs.purge_incomplete().await {
                        Ok(n) if n > 0 => {
                            tracing::info!(blobs = n, "removed blobs never completed")
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "blob sweep failed"),
                    }
                }
            };
            tokio::select! {
                r = serve => if let Err(e) = r { tracing::error!(error = %e, "http server failed") },
                _ = purge => {}
                _ = sweep => {}
                _ = stop.wait_for(|s| *s) => {}
            }
            // Pushes in flight finish or stay in the outbox for the next start.
            let _ = push_worker.await;
            if let Some(t) = chatserver_task {
                let _ = t.await;
            }
            // In-flight requests are done (graceful shutdown); XMPP sessions close their streams.
            xmpp_server
                .wait_sessions_closed(Duration::from_secs(5))
                .await;
            if let Err(e) = domain.accounts.flush_session_extensions().await {
                tracing::warn!(error = ?e, "writing session extensions at shutdown failed");
            }
            if let Some(nats) = &membership.nats {
                nats.leave().await;
            }
            domain.store.close().await;
            tracing::info!("stopped");
        });
        Ok(Self {
            http_addr,
            xmpp_addr: xmpp.addr,
            xmpp_tls_addr: xmpp.tls_addr,
            chatserver_addr,
            _chatserver_events: chatserver_events,
            xmpp: xmpp.server.clone(),
            _xmpp_events: xmpp_events,
            shutdown,
            task,
        })
    }

    /// Stops accepting, lets in-flight requests finish and closes the store.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}
