//! Reads that run on the calling thread.
//!
//! sqlx runs every SQLite statement on a worker thread of its connection: the hand-off there and
//! back (two thread wake-ups) costs more than an indexed read itself. For the reads of every chat
//! login (the session of a token, the roster, the offline check), a small pool of read-only
//! connections runs them in place instead. In WAL mode readers never wait for the writer, and each
//! statement sees everything committed before it started.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use confab_core::{Error, Result};
use rusqlite::{Connection, OpenFlags};

/// Idle connections kept; more are opened when needed (one per thread reading at the same time).
const MAX_IDLE: usize = 8;

pub(crate) struct InlineReads {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl InlineReads {
    pub(crate) fn new(path: PathBuf) -> Self {
        Self {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `read` on an idle connection (statements are prepared once per connection, with
    /// `prepare_cached`).
    pub(crate) fn run<T>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let idle = self.idle.lock().expect("read pool lock").pop();
        let conn = match idle {
            Some(c) => c,
            None => self.open().map_err(Error::internal)?,
        };
        let result = read(&conn).map_err(Error::internal);
        let mut idle = self.idle.lock().expect("read pool lock");
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
        result
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // Only a checkpoint that resets the log briefly blocks readers.
        conn.busy_timeout(Duration::from_secs(2))?;
        Ok(conn)
    }
}

#[cfg(test)]
mod tests {
    use confab_core::UserId;

    use crate::offline::OfflineStore;
    use crate::sqlite::privacy::tests::account;
    use crate::sqlite::SqliteStore;
    use crate::AccountStore;

    /// What sqlx commits, the in-place reads see at once: sessions (and their end), offline rows.
    #[tokio::test]
    async fn in_place_reads_see_every_commit() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path()).await.unwrap();
        let (app, user) = account(&s, 1).await;
        assert!(s.session_by_token(b"t1", 10).await.unwrap().is_none());
        let created = s
            .create_session(app, Some(user), b"t1", 10, 100)
            .await
            .unwrap();
        let found = s.session_by_token(b"t1", 10).await.unwrap().unwrap();
        assert_eq!((found.id, found.user_id), (created.id, Some(user)));
        assert!(
            s.session_by_token(b"t1", 100).await.unwrap().is_none(),
            "expired"
        );
        s.delete_session(created.id).await.unwrap();
        assert!(s.session_by_token(b"t1", 10).await.unwrap().is_none());

        assert!(s.claim_offline(app, user, "c").await.unwrap().is_empty());
        assert!(s.push_offline(app, user, "<m/>", 5, 10).await.unwrap());
        let claimed = s.claim_offline(app, user, "c").await.unwrap();
        assert_eq!(claimed.len(), 1);
        assert!(s.claim_offline(app, user, "d").await.unwrap().is_empty());
        let other = UserId::new(user.get() + 1).unwrap();
        assert!(s.claim_offline(app, other, "c").await.unwrap().is_empty());
    }
}
