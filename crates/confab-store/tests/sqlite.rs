//! The store conformance suite on the embedded SQLite backend.

mod conformance;

use confab_store::sqlite::SqliteStore;

async fn fresh() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    (store, dir)
}

conformance_suite!(fresh());
