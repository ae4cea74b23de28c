//! Two nodes of one cluster in one test process, and waiting for what one node learns of the other.

use std::time::Duration;

use confab_core::{AppId, UserId};

use crate::nats::NatsServer;
use crate::process::ConfabProcess;
use crate::TestServer;

/// Two nodes (`node-a`, `node-b`) on one embedded store and a private NATS server.
pub async fn two_nodes() -> (NatsServer, TestServer, TestServer) {
    let nats = NatsServer::start().await;
    let url = nats.url();
    let a = TestServer::start_with(|c| {
        c.nats_url = Some(url.clone());
        c.node_id = Some("node-a".into());
    })
    .await;
    let b = a
        .another_node(|c| {
            c.nats_url = Some(url.clone());
            c.node_id = Some("node-b".into());
        })
        .await;
    (nats, a, b)
}

/// Waits until `node` knows that `user` has a session on another node.
pub async fn seen_elsewhere(node: &TestServer, user: i64) {
    assert!(
        wait_for_elsewhere(node, user, true).await,
        "the other node's session was never announced"
    );
}

/// Waits until `node` no longer counts `user` as online on another node.
pub async fn gone_elsewhere(node: &TestServer, user: i64) {
    assert!(
        wait_for_elsewhere(node, user, false).await,
        "the other node's session end was never announced"
    );
}

async fn wait_for_elsewhere(node: &TestServer, user: i64, online: bool) -> bool {
    let cluster = node.server.as_ref().unwrap().xmpp.cluster.clone();
    let (app, user) = (AppId::new(node.app_id).unwrap(), UserId::new(user).unwrap());
    for _ in 0..200 {
        if cluster.nodes_with(app, user).is_empty() != online {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

/// Another node of the cluster as a real `confab` process (to be killed with SIGKILL), on the
/// database at `database_url` and the bus at `nats_url`, named `node_id`, taking other nodes as
/// gone after 2 s.
pub async fn node_process(
    bin: &std::path::Path,
    data_dir: &std::path::Path,
    database_url: &str,
    nats_url: &str,
    node_id: &str,
) -> ConfabProcess {
    let env = [
        ("CONFAB_DATABASE_URL", database_url),
        ("CONFAB_NATS_URL", nats_url),
        ("CONFAB_NODE_ID", node_id),
        ("CONFAB_NODE_TIMEOUT_SECS", "2"),
    ];
    ConfabProcess::serve(bin, data_dir, &env).await
}

/// A node in this process and another as a real `confab` process (to be killed), on a fresh
/// PostgreSQL database and a private NATS server, each taking the other as gone after 2 s.
pub struct KillableCluster {
    /// Held: the bus lives as long as the cluster.
    pub nats: NatsServer,
    /// `<name>-a`, in this process.
    pub a: TestServer,
    /// `<name>-c`, the process.
    pub c: ConfabProcess,
    /// The process's data directory, removed when this is dropped.
    pub dir: tempfile::TempDir,
}

/// [`KillableCluster`] on a database named after `prefix`, its nodes named after `name`; `None`
/// when the PostgreSQL tests are skipped.
pub async fn killable_cluster(
    prefix: &str,
    name: &str,
    bin: &std::path::Path,
) -> Option<KillableCluster> {
    let (nats, database_url, a) = crate::postgres::first_node(prefix, |c| {
        c.node_id = Some(format!("{name}-a"));
        c.node_timeout_secs = 2;
    })
    .await?;
    let dir = tempfile::tempdir().unwrap();
    let node = format!("{name}-c");
    let c = node_process(bin, dir.path(), &database_url, &nats.url(), &node).await;
    Some(KillableCluster { nats, a, c, dir })
}
