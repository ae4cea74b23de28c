//! Which cluster this node is part of: alone (no `nats_url`), or several nodes over NATS.

use std::sync::Arc;
use std::time::Duration;

use confab_core::Result;
use confab_nats::{NatsCluster, NatsConfig};
use confab_service::{Cluster, SingleNode};

use crate::Config;

pub(crate) struct Membership {
    pub cluster: Arc<dyn Cluster>,
    /// The NATS side, to leave cleanly at shutdown.
    pub nats: Option<Arc<NatsCluster>>,
}

pub(crate) async fn join(config: &Config) -> Result<Membership> {
    let node_id = config
        .node_id
        .clone()
        .filter(|id| !id.trim().is_empty())
        .unwrap_or_else(|| confab_service::secrets::random_hex(6));
    let Some(url) = config.nats_url.clone().filter(|u| !u.trim().is_empty()) else {
        return Ok(Membership {
            cluster: Arc::new(SingleNode::new(&node_id)),
            nats: None,
        });
    };
    let nats = Arc::new(
        NatsCluster::connect(NatsConfig {
            url,
            node_id,
            node_timeout: Duration::from_secs(config.node_timeout_secs.max(2)),
        })
        .await?,
    );
    Ok(Membership {
        cluster: nats.clone(),
        nats: Some(nats),
    })
}
