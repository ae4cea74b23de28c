//! confab's XMPP face: client-to-server streams over TCP (STARTTLS, direct TLS) and WebSocket.
//!
//! Layout:
//! - [`xml`]: a lenient element tree (keeps odd SDK names such as `<0>`), rendering.
//! - [`stream`]: the sans-I/O stream reader (bytes → open / element / close), size-bounded.
//! - [`transport`]: TCP and WebSocket pipes behind one trait.
//! - [`session`]: the c2s state machine (STARTTLS, SASL PLAIN, bind, stream management, idle pings,
//!   offline delivery confirmed by acks), generic over the transport; `sm`: its XEP-0198 counters.
//! - [`hub`]: who is online where; bounded per-session queues; presence facts other features need.
//! - feature modules, each with its disco features: [`message`] (1:1 routing, carbons, offline),
//!   [`iq`] (ping, last activity, disco, carbons enable, Tigase mobile v2, status streaming).
//! - [`privacy`] (XEP-0016 lists and the checks routing asks), [`roster`] (RFC 6121 contact lists,
//!   roster pushes) and [`presence`] (broadcast, probes, subscriptions); the rules and the lists
//!   are the domain's [`confab_service::Privacy`], contact-list state is [`roster::Contacts`].
//! - [`history`]: what 1:1 stanzas carry for the domain's [`ChatHistory`] (markers, edits, deletes,
//!   `extraParams`).
//! - [`muc`]: group, public and broadcast dialogs as rooms (XEP-0045 subset), plugged in with
//!   [`muc::Rooms::install`].
//! - [`error`]: stanza and stream errors; [`jid`]: ConnectyCube JIDs; [`tls`]: certificates.
//! - [`cluster`]: 1:1 stanzas and carbons for sessions on other nodes.
//! - [`listen`]: accept loops and the `/ws` route; [`conn_limit`]: connection caps (in all, per
//!   address); [`throttle`]: per-session input rates (backpressure, nothing refused).

pub mod cluster;
pub mod conn_limit;
pub mod error;
pub mod history;
pub mod hub;
pub mod iq;
/// JIDs are domain vocabulary (privacy lists name users by JID); re-exported for the face's modules.
pub use confab_core::jid;
pub mod listen;
pub mod message;
pub mod muc;
pub mod presence;
pub mod privacy;
mod privacy_warmup;
pub mod realtime;
pub mod receipt;
pub mod roster;
pub mod session;
mod sm;
pub mod stream;
pub mod throttle;
pub mod tls;
pub mod transport;
pub mod xml;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use confab_service::limiter::KeyedLimiter;
use confab_service::Accounts;
use confab_service::{Cluster, NodeHandler, Offline, Privacy, Push, Roster};
use tokio::sync::{watch, Notify};
use tokio_rustls::TlsAcceptor;

pub use history::{ChatHistory, ChatMessage, MessageEvent};
pub use hub::Hub;

/// Limits and names of the XMPP face.
#[derive(Debug, Clone)]
pub struct XmppConfig {
    /// The chat domain: JIDs are `<userId>-<appId>@<domain>`.
    pub domain: String,
    /// Largest accepted top-level element; larger ones end the stream with `<policy-violation/>`.
    pub max_stanza_bytes: usize,
    /// Depth and attribute bounds of every element a client sends; over them, `<policy-violation/>`.
    pub xml_limits: xml::XmlLimits,
    /// A client silent this long is pinged (XEP-0199).
    pub ping_interval: Duration,
    /// ... and disconnected if still silent this long after the ping.
    pub ping_timeout: Duration,
    /// A client with stream management that leaves a live chat message unacknowledged this long is
    /// disconnected (`<connection-timeout/>`), and what it did not acknowledge is stored offline:
    /// the message's sender waits for either (see [`receipt`]).
    pub ack_timeout: Duration,
    /// Outbound queue length per session; a session whose queue fills up is disconnected.
    pub session_queue_len: usize,
    /// SASL attempts per minute for one account (passwords are guessable; REST logins have the same
    /// limit, and the XMPP face must not be a way around it).
    pub auth_attempts_per_minute: u32,
    /// Stanzas per second a session may send before its socket is read more slowly.
    pub stanza_rate: throttle::InputRate,
    /// Bytes per second a session may send before its socket is read more slowly.
    pub byte_rate: throttle::InputRate,
    /// Open connections (TCP, TLS, WebSocket) in all; 0 is no cap.
    pub max_connections: u32,
    /// Open connections from one client address; 0 is no cap.
    pub max_connections_per_ip: u32,
}

/// The domain services the XMPP face calls: every rule and every stored state lives behind them.
pub struct Services {
    pub accounts: Arc<Accounts>,
    pub offline: Arc<Offline>,
    pub privacy: Arc<Privacy>,
    pub roster: Arc<Roster>,
    /// The messages service; `None` delivers without recording history.
    pub history: Option<Arc<dyn ChatHistory>>,
    /// Chat alerts for recipients a message reached no active session of; `None`: no alerts.
    pub push: Option<Arc<Push>>,
    /// The other nodes ([`confab_service::SingleNode`] when there are none).
    pub cluster: Arc<dyn Cluster>,
}

impl Default for XmppConfig {
    fn default() -> Self {
        Self {
            domain: "localhost".into(),
            max_stanza_bytes: 256 * 1024,
            xml_limits: xml::XmlLimits::default(),
            ping_interval: Duration::from_secs(60),
            ping_timeout: Duration::from_secs(30),
            ack_timeout: Duration::from_secs(15),
            session_queue_len: 1024,
            auth_attempts_per_minute: 30,
            stanza_rate: throttle::InputRate::OFF,
            byte_rate: throttle::InputRate::OFF,
            max_connections: 0,
            max_connections_per_ip: 0,
        }
    }
}

/// Everything a session can reach.
pub struct XmppServer {
    pub config: XmppConfig,
    pub accounts: Arc<Accounts>,
    pub hub: Arc<Hub>,
    /// The offline queue (store, claim, confirm, release).
    pub offline: Arc<Offline>,
    /// The messages service; `None` delivers without recording history.
    pub history: Option<Arc<dyn ChatHistory>>,
    pub push: Option<Arc<Push>>,
    /// The other nodes: who has sessions where, and handing stanzas to them.
    pub cluster: Arc<dyn Cluster>,
    /// Held here: the cluster holds the face's handler weakly.
    _node_handler: Arc<dyn NodeHandler>,
    /// Full JIDs heard as available on other nodes (to send their unavailable if a node dies).
    pub(crate) remote_presences: cluster::presence::RemotePresences,
    /// Stanzas other nodes handed to sessions here lately (see [`cluster::RecentDeliveries`]).
    pub(crate) recent_deliveries: cluster::RecentDeliveries,
    pub(crate) remote_receipts: cluster::RemoteReceipts,
    pub(crate) remote_occupants: cluster::RemoteOccupants,
    pub tls: Option<TlsAcceptor>,
    /// The MUC service, once installed ([`muc::Rooms::install`]); without it rooms are unavailable.
    pub muc: std::sync::OnceLock<Arc<muc::Rooms>>,
    /// XEP-0016 privacy lists: the domain's rules and lists.
    pub privacy: Arc<Privacy>,
    /// Reads the lists of users who come online before their first message needs them.
    pub(crate) privacy_warmup: privacy_warmup::PrivacyWarmup,
    /// Lists activated per session (reported, not enforced).
    pub active_privacy_lists: privacy::ActiveLists,
    /// RFC 6121 contact lists: the domain's rows and rules.
    pub roster: Arc<Roster>,
    /// Roster-push interest and presence state of this face's sessions.
    pub contacts: roster::Contacts,
    shutdown: watch::Receiver<bool>,
    pub(crate) auth_limiter: Option<KeyedLimiter<(i64, i64)>>,
    /// Open connections against their caps.
    pub connections: Arc<conn_limit::ConnLimits>,
    active: AtomicUsize,
    idle: Notify,
}

impl XmppServer {
    pub fn new(
        config: XmppConfig,
        services: Services,
        tls: Option<TlsAcceptor>,
        shutdown: watch::Receiver<bool>,
    ) -> Arc<Self> {
        let Services {
            accounts,
            offline,
            privacy,
            roster,
            history,
            push,
            cluster,
        } = services;
        let server = Arc::new_cyclic(|me| Self {
            _node_handler: Arc::new(cluster::XmppNodeHandler { server: me.clone() }),
            cluster,
            remote_presences: Default::default(),
            recent_deliveries: Default::default(),
            remote_receipts: Default::default(),
            remote_occupants: Default::default(),
            auth_limiter: KeyedLimiter::per_minute(config.auth_attempts_per_minute.max(1)),
            connections: conn_limit::ConnLimits::new(
                config.max_connections,
                config.max_connections_per_ip,
            ),
            config,
            accounts,
            hub: Arc::new(Hub::new()),
            offline,
            history,
            push,
            tls,
            muc: std::sync::OnceLock::new(),
            contacts: roster::Contacts::default(),
            roster,
            privacy_warmup: privacy_warmup::PrivacyWarmup::spawn(privacy.clone()),
            privacy,
            active_privacy_lists: Default::default(),
            shutdown,
            active: AtomicUsize::new(0),
            idle: Notify::new(),
        });
        server
            .cluster
            .serve(cluster::FACE, Arc::downgrade(&server._node_handler));
        cluster::presence::spawn_event_listener(&server);
        server
    }

    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.clone()
    }

    /// Counts a running session until the guard drops, so shutdown can wait for them.
    pub(crate) fn session_guard(self: &Arc<Self>) -> SessionGuard {
        self.active.fetch_add(1, Ordering::SeqCst);
        SessionGuard(self.clone())
    }

    /// After the shutdown signal: waits (up to `limit`) until every session has closed its stream.
    pub async fn wait_sessions_closed(&self, limit: Duration) {
        let wait = async {
            loop {
                let notified = self.idle.notified();
                if self.active.load(Ordering::SeqCst) == 0 {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(limit, wait).await;
    }
}

pub(crate) struct SessionGuard(Arc<XmppServer>);

impl Drop for SessionGuard {
    fn drop(&mut self) {
        if self.0.active.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}
