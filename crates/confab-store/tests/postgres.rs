//! The store conformance suite on the PostgreSQL backend.
//!
//! Needs a server: `CONFAB_TEST_DATABASE_URL` names a database the tests can connect to and run
//! `CREATE DATABASE` from (`eval "$(scripts/postgres.sh start)"` starts a private one). Each test
//! runs on a fresh database of its own, dropped afterwards. Without the variable every test fails,
//! unless `CONFAB_SKIP_POSTGRES=1` says to skip them.

mod conformance;

use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};

use confab_store::postgres::PgStore;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

/// Drops the test's database when the test ends (passed or not).
struct Database {
    admin: PgConnectOptions,
    name: String,
}

impl Drop for Database {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop runs inside the test's runtime, which cannot be blocked on: a thread of its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut conn = admin.connect().await.ok()?;
                // FORCE: the store's pooled connections may still be open.
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .ok()?;
                conn.close().await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("note: test database {} was not dropped", self.name);
        }
    }
}

fn unique_name() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "confab_test_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

async fn fresh() -> Option<(PgStore, Database)> {
    let url = match std::env::var("CONFAB_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ if std::env::var("CONFAB_SKIP_POSTGRES").as_deref() == Ok("1") => {
            eprintln!("skipped: CONFAB_SKIP_POSTGRES=1 and no CONFAB_TEST_DATABASE_URL");
            return None;
        }
        _ => panic!(
            "CONFAB_TEST_DATABASE_URL is not set: these tests need a PostgreSQL server \
             (eval \"$(scripts/postgres.sh start)\" starts one), or CONFAB_SKIP_POSTGRES=1 \
             to skip them"
        ),
    };
    let admin = PgConnectOptions::from_str(&url).expect("CONFAB_TEST_DATABASE_URL is a URL");
    let name = unique_name();
    let mut conn = admin
        .connect()
        .await
        .expect("connect to CONFAB_TEST_DATABASE_URL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("CREATE DATABASE");
    conn.close().await.ok();
    let guard = Database {
        admin: admin.clone(),
        name: name.clone(),
    };
    let store = PgStore::connect_with(admin.database(&name), 4)
        .await
        .expect("open the store");
    Some((store, guard))
}

conformance_suite!(skippable fresh());
