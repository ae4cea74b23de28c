//! Direct access to a test server's database, on whichever backend it runs (the embedded SQLite
//! file, or PostgreSQL under `CONFAB_TEST_BACKEND=postgres`): for setting up what no API can make
//! (a dialog changed behind the server's back, a push made due now) and reading what no API shows.

use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;

use crate::TestServer;

/// A bound value of a statement.
#[derive(Debug, Clone)]
pub enum Arg {
    Int(i64),
    Text(String),
}

/// Binds `args` to a query of either backend (the bind calls are the same, their types are not).
macro_rules! bind {
    ($query:expr, $args:expr) => {{
        let mut q = $query;
        for a in $args {
            q = match a {
                Arg::Int(i) => q.bind(*i),
                Arg::Text(t) => q.bind(t.clone()),
            };
        }
        q
    }};
}

enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// `?` placeholders as PostgreSQL writes them (`$1`, `$2`, …).
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
}

impl TestServer {
    async fn pool(&self) -> Pool {
        match &self.config.database_url {
            Some(url) => Pool::Postgres(PgPool::connect(url).await.unwrap()),
            None => Pool::Sqlite(
                SqlitePool::connect(&format!(
                    "sqlite://{}",
                    self.config.data_dir.join("confab.db").display()
                ))
                .await
                .unwrap(),
            ),
        }
    }

    /// Runs a statement (`?` placeholders); returns the rows it changed.
    pub async fn sql_execute(&self, sql: &str, args: &[Arg]) -> u64 {
        match self.pool().await {
            Pool::Sqlite(pool) => {
                let n = bind!(sqlx::query(sql), args)
                    .execute(&pool)
                    .await
                    .unwrap()
                    .rows_affected();
                pool.close().await;
                n
            }
            Pool::Postgres(pool) => {
                let sql = numbered(sql);
                let n = bind!(sqlx::query(&sql), args)
                    .execute(&pool)
                    .await
                    .unwrap()
                    .rows_affected();
                pool.close().await;
                n
            }
        }
    }

    /// The first column of every row a query answers, as integers (`?` placeholders).
    pub async fn sql_i64s(&self, sql: &str, args: &[Arg]) -> Vec<i64> {
        match self.pool().await {
            Pool::Sqlite(pool) => {
                let q = bind!(sqlx::query_scalar::<_, i64>(sql), args);
                let v = q.fetch_all(&pool).await.unwrap();
                pool.close().await;
                v
            }
            Pool::Postgres(pool) => {
                let sql = numbered(sql);
                let q = bind!(sqlx::query_scalar::<_, i64>(&sql), args);
                let v = q.fetch_all(&pool).await.unwrap();
                pool.close().await;
                v
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_are_numbered_for_postgres() {
        assert_eq!(
            super::numbered("UPDATE t SET a = ? WHERE b = ? AND c = 1"),
            "UPDATE t SET a = $1 WHERE b = $2 AND c = 1"
        );
    }
}
