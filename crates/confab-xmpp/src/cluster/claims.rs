//! Offline claims across nodes: telling a user's sessions on any node to claim what waits for
//! them, and releasing what the sessions of a node that died had claimed.

use std::sync::Arc;
use std::time::Duration;

use super::{ask, Request};
use crate::hub::Account;
use crate::XmppServer;

/// Tells this node's sessions of `user` that offline messages wait for them.
pub fn claim_now_here(srv: &XmppServer, user: Account) {
    for s in srv.hub.sessions(user).iter() {
        s.offline_stored();
    }
}

/// Tells the user's sessions on every other node that offline messages wait for them (a session
/// that logged in while they were on their way to storage, or whose claim a gone node held).
pub async fn claim_now_elsewhere(srv: &XmppServer, user: Account) {
    let nodes = srv.cluster.nodes_with(user.0, user.1);
    if !nodes.is_empty() {
        let request = Request::ClaimNow {
            app: user.0.get(),
            user: user.1.get(),
        };
        ask(srv, &nodes, &request).await;
    }
}

/// Makes the offline messages that sessions of gone nodes claimed deliverable again, and has the
/// users' sessions, wherever they are now, claim them. Does nothing while this node cannot know
/// which nodes live (just joined, or cut off from the bus).
pub async fn release_claims_of_gone_nodes(srv: &XmppServer) {
    let Some(live) = srv.cluster.live_nodes() else {
        return;
    };
    let live: Vec<&str> = live.iter().map(|n| &**n).collect();
    let users = match srv.offline.release_claims_except(&live).await {
        Ok(users) => users,
        Err(e) => {
            tracing::error!(error = ?e, "releasing claims of gone nodes failed");
            return;
        }
    };
    if users.is_empty() {
        return;
    }
    tracing::info!(
        users = users.len(),
        "offline messages claimed on gone nodes are deliverable again"
    );
    for user in users {
        claim_now_here(srv, user);
        claim_now_elsewhere(srv, user).await;
    }
}

/// Runs [`release_claims_of_gone_nodes`] every `every` while the server runs.
pub fn spawn_claim_sweeper(srv: &Arc<XmppServer>, every: Duration) {
    let server = Arc::downgrade(srv);
    let mut shutdown = srv.shutdown_signal();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            let Some(srv) = server.upgrade() else { return };
            release_claims_of_gone_nodes(&srv).await;
        }
    });
}
