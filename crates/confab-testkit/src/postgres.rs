//! A fresh database on the PostgreSQL server the test scripts start (`scripts/postgres.sh`).

/// A new, empty database as a `postgres://` URL; `None` when the caller opted out with
/// `CONFAB_SKIP_POSTGRES=1`. Without either variable the test fails, saying what to do.
pub async fn fresh_database_url(prefix: &str) -> Option<String> {
    let url = match std::env::var("CONFAB_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ if std::env::var("CONFAB_SKIP_POSTGRES").as_deref() == Ok("1") => return None,
        _ => panic!(
            "CONFAB_TEST_DATABASE_URL is not set: start a PostgreSQL server \
             (eval \"$(scripts/postgres.sh start)\") or set CONFAB_SKIP_POSTGRES=1"
        ),
    };
    let name = format!("{prefix}_{}", rand::random::<u64>());
    let admin = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let mut parsed = url::Url::parse(&url).unwrap();
    parsed.set_path(&format!("/{name}"));
    Some(parsed.to_string())
}

/// The first node of a cluster for a test: a fresh database (see [`fresh_database_url`]), a private
/// nats-server, and the server on both, configured further by `tweak` (its `node_id`, timeout).
/// `None` when the caller opted out of PostgreSQL (it then skips, saying so).
pub async fn first_node(
    prefix: &str,
    tweak: impl FnOnce(&mut confab::Config),
) -> Option<(crate::nats::NatsServer, String, crate::TestServer)> {
    let Some(database_url) = fresh_database_url(prefix).await else {
        eprintln!("skipped: CONFAB_SKIP_POSTGRES=1");
        return None;
    };
    let nats = crate::nats::NatsServer::start().await;
    let node = crate::TestServer::start_with(|c| {
        c.database_url = Some(database_url.clone());
        c.nats_url = Some(nats.url());
        tweak(c);
    })
    .await;
    Some((nats, database_url, node))
}
