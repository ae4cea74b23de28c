//! Session extensions written in batches.
//!
//! Every authenticated request (REST or an XMPP token login) slides its session's expiry. Writing
//! that at once costs a write transaction per request, which dominates a reconnect storm of token
//! logins. While the stored expiry is still comfortably ahead, the extension waits here and a
//! flusher writes everything pending in one transaction per [`FLUSH_EVERY`]. A session close to its
//! stored expiry is written at once, so a pending extension can never be what makes it expire.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use confab_core::clock::Millis;
use confab_core::model::Session;
use confab_core::Result;
use confab_store::AccountStore;

/// How long an extension may wait before it is written.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Extensions of sessions whose stored expiry is nearer than this are written at once.
const DEFER_ONLY_WITH_MARGIN_MS: Millis = 10_000;

type Pending = Mutex<HashMap<i64, (Session, Millis, Millis)>>;

pub struct Touches {
    store: Arc<dyn AccountStore>,
    pending: Arc<Pending>,
    flusher: OnceLock<()>,
}

impl Touches {
    pub fn new(store: Arc<dyn AccountStore>) -> Self {
        Self {
            store,
            pending: Arc::new(Mutex::new(HashMap::new())),
            flusher: OnceLock::new(),
        }
    }

    /// Extends `session` (as stored) to `expires_at`, recording a request at `now`.
    pub async fn touch(&self, session: &Session, now: Millis, expires_at: Millis) -> Result<()> {
        if session.expires_at - now < DEFER_ONLY_WITH_MARGIN_MS {
            return self.store.touch_session(session, now, expires_at).await;
        }
        self.pending
            .lock()
            .expect("touches lock")
            .entry(session.id)
            .and_modify(|t| {
                t.1 = t.1.max(now);
                t.2 = t.2.max(expires_at);
            })
            .or_insert_with(|| (session.clone(), now, expires_at));
        self.flusher.get_or_init(|| self.spawn_flusher());
        Ok(())
    }

    /// Writes everything pending now (also used by tests and at shutdown).
    pub async fn flush(&self) -> Result<()> {
        flush(&self.store, &self.pending).await
    }

    fn spawn_flusher(&self) {
        let store = self.store.clone();
        let pending: Weak<Pending> = Arc::downgrade(&self.pending);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(FLUSH_EVERY).await;
                // The accounts service is gone (server stopped): nothing left to do.
                let Some(pending) = pending.upgrade() else {
                    return;
                };
                if let Err(e) = flush(&store, &pending).await {
                    tracing::warn!(error = ?e, "writing session extensions failed");
                }
            }
        });
    }
}

async fn flush(store: &Arc<dyn AccountStore>, pending: &Pending) -> Result<()> {
    let batch: Vec<_> = pending
        .lock()
        .expect("touches lock")
        .drain()
        .map(|(_, t)| t)
        .collect();
    if batch.is_empty() {
        return Ok(());
    }
    store.touch_sessions(&batch).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_store::sqlite::SqliteStore;

    const NOW: Millis = 1_000_000;

    async fn session(store: &SqliteStore, token: &[u8], expires_at: Millis) -> Session {
        let app = store
            .create_app("t", "ak", "as", b"api", NOW)
            .await
            .unwrap();
        store
            .create_session(app.id, None, token, NOW, expires_at)
            .await
            .unwrap()
    }

    async fn stored_expiry(store: &SqliteStore, token: &[u8]) -> Millis {
        store
            .session_by_token(token, NOW)
            .await
            .unwrap()
            .unwrap()
            .expires_at
    }

    #[tokio::test]
    async fn extensions_wait_for_the_flush_unless_the_session_is_close_to_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
        let touches = Touches::new(store.clone());

        // Far from expiry: deferred, then written by a flush; a later, shorter one never shortens.
        let far = session(&store, b"far", NOW + 3_600_000).await;
        touches.touch(&far, NOW, NOW + 7_200_000).await.unwrap();
        touches.touch(&far, NOW, NOW + 7_100_000).await.unwrap();
        assert_eq!(stored_expiry(&store, b"far").await, NOW + 3_600_000);
        touches.flush().await.unwrap();
        assert_eq!(stored_expiry(&store, b"far").await, NOW + 7_200_000);

        // Close to its stored expiry: written at once.
        let near = store
            .create_session(far.app_id, None, b"near", NOW, NOW + 5_000)
            .await
            .unwrap();
        touches.touch(&near, NOW, NOW + 7_200_000).await.unwrap();
        assert_eq!(stored_expiry(&store, b"near").await, NOW + 7_200_000);
    }

    #[tokio::test]
    async fn a_batch_records_each_users_latest_request() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
        let touches = Touches::new(store.clone());
        let app = store
            .create_app("t", "ak", "as", b"api", NOW)
            .await
            .unwrap();
        let user = store
            .create_user(confab_store::NewUser {
                app_id: app.id.get(),
                fields: Default::default(),
                password_hash: None,
                is_guest: true,
                now: NOW,
            })
            .await
            .unwrap();
        // Two sessions of one user in one batch: the later request wins.
        for (token, at) in [(&b"one"[..], NOW + 5), (&b"two"[..], NOW + 9)] {
            let s = store
                .create_session(app.id, Some(user.user_id()), token, NOW, NOW + 3_600_000)
                .await
                .unwrap();
            touches.touch(&s, at, NOW + 7_200_000).await.unwrap();
        }
        touches.flush().await.unwrap();
        let stored = store
            .user(app.id, confab_store::UserKey::Id(user.user_id().get()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.last_request_at, Some(NOW + 9));
        assert_eq!(stored_expiry(&store, b"one").await, NOW + 7_200_000);
        assert_eq!(stored_expiry(&store, b"two").await, NOW + 7_200_000);
    }

    #[tokio::test]
    async fn the_flusher_writes_on_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
        let touches = Touches::new(store.clone());
        let s = session(&store, b"tok", NOW + 3_600_000).await;
        touches.touch(&s, NOW, NOW + 7_200_000).await.unwrap();
        tokio::time::sleep(FLUSH_EVERY * 3).await;
        assert_eq!(stored_expiry(&store, b"tok").await, NOW + 7_200_000);
    }
}
