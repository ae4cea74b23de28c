//! Builds the XMPP face from the configuration and starts its TCP listeners.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use confab_core::{Error, Result};
use confab_service::Cluster;
use confab_xmpp::throttle::InputRate;
use confab_xmpp::{Services, XmppConfig, XmppServer};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::{Config, Domain};

pub(crate) struct Xmpp {
    pub server: Arc<XmppServer>,
    pub addr: SocketAddr,
    pub tls_addr: Option<SocketAddr>,
}

pub(crate) async fn start(
    config: &Config,
    domain: &Domain,
    cluster: Arc<dyn Cluster>,
    stop: watch::Receiver<bool>,
) -> Result<Xmpp> {
    let mut names = vec![config.domain.clone()];
    for n in ["localhost", "127.0.0.1", "::1"] {
        if !names.iter().any(|x| x == n) {
            names.push(n.into());
        }
    }
    let tls = confab_xmpp::tls::acceptor(
        config.tls_cert_path.as_deref(),
        config.tls_key_path.as_deref(),
        &names,
    )?;
    // Alone, no session runs yet: claims on offline messages are left over from a killed process.
    // In a cluster other nodes' sessions hold claims, which must stay theirs (those of nodes that
    // died are released by the survivors: see the claim sweeper below).
    let alone = config
        .nats_url
        .as_deref()
        .is_none_or(|u| u.trim().is_empty());
    let released = if alone {
        domain.offline.release_all().await?
    } else {
        // This node's own claims are left over from its previous run (same node_id).
        domain.offline.release_claims_of(cluster.node_id()).await?
    };
    if released > 0 {
        tracing::info!(
            count = released,
            "offline messages claimed before a restart are deliverable again"
        );
    }
    let server = XmppServer::new(
        XmppConfig {
            domain: config.domain.clone(),
            max_stanza_bytes: config.xmpp_max_stanza_bytes,
            xml_limits: confab_xmpp::xml::XmlLimits {
                max_depth: config.xmpp_max_depth,
                max_attrs: config.xmpp_max_attributes,
                max_attr_bytes: config.xmpp_max_attribute_bytes,
            }
            .capped(),
            ping_interval: Duration::from_secs(config.xmpp_ping_interval_secs.max(1)),
            ping_timeout: Duration::from_secs(config.xmpp_ping_timeout_secs.max(1)),
            ack_timeout: Duration::from_secs(config.xmpp_ack_timeout_secs.max(1)),
            session_queue_len: config.xmpp_session_queue_len,
            auth_attempts_per_minute: config.login_attempts_per_minute,
            stanza_rate: InputRate {
                per_sec: config.xmpp_max_stanzas_per_sec,
                burst: config.xmpp_stanza_burst,
            },
            byte_rate: InputRate {
                per_sec: config.xmpp_max_bytes_per_sec,
                burst: config.xmpp_byte_burst,
            },
            max_connections: config.max_connections,
            max_connections_per_ip: config.xmpp_max_connections_per_ip,
        },
        Services {
            accounts: domain.accounts.clone(),
            offline: domain.offline.clone(),
            privacy: domain.chat.privacy().clone(),
            roster: domain.roster.clone(),
            history: Some(domain.chat.clone()),
            push: Some(domain.push.clone()),
            cluster,
        },
        Some(tls),
        stop,
    );
    confab_xmpp::muc::Rooms::install(&server, domain.chat.clone());
    if !alone {
        // A killed node cannot release what its sessions claimed: the survivors do.
        let every = Duration::from_secs((config.node_timeout_secs / 2).max(1));
        confab_xmpp::cluster::spawn_claim_sweeper(&server, every);
    }

    let listener = TcpListener::bind(&config.xmpp_addr)
        .await
        .map_err(Error::internal)?;
    let addr = listener.local_addr().map_err(Error::internal)?;
    tracing::info!(xmpp = %addr, "listening");
    tokio::spawn(confab_xmpp::listen::serve_tcp(
        server.clone(),
        listener,
        false,
    ));

    let tls_addr = match &config.xmpp_tls_addr {
        Some(a) if !a.is_empty() => {
            let l = TcpListener::bind(a).await.map_err(Error::internal)?;
            let addr = l.local_addr().map_err(Error::internal)?;
            tracing::info!(xmpp_tls = %addr, "listening");
            tokio::spawn(confab_xmpp::listen::serve_tcp(server.clone(), l, true));
            Some(addr)
        }
        _ => None,
    };
    Ok(Xmpp {
        server,
        addr,
        tls_addr,
    })
}
