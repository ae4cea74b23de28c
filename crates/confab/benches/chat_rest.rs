//! Chat REST latency on the embedded database with a large history.
//!
//! Fills one dialog with 1,000,000 messages and gives one user 10,000 dialogs, then times
//! dialog list, message page, unread count and search over real HTTP, one request at a time,
//! and prints p50/p99 per operation. Run: `cargo bench --bench chat_rest`.
//! Sizes: `BENCH_MESSAGES`, `BENCH_DIALOGS`, `BENCH_REQUESTS` (per operation).

use std::time::{Duration, Instant};

use confab::Server;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn word(i: usize) -> String {
    format!("word{i:05}")
}

fn oid(secs: u32, n: u64) -> String {
    format!("{secs:08x}{n:016x}")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

#[tokio::main]
async fn main() {
    let messages = env_num("BENCH_MESSAGES", 1_000_000);
    let dialogs = env_num("BENCH_DIALOGS", 10_000);
    let requests = env_num("BENCH_REQUESTS", 200);
    const VOCABULARY: usize = 5000;

    let dir = tempfile::tempdir().unwrap();
    let config = confab_testkit::test_config(dir.path());
    let app = confab::create_app(&config, "bench").await.unwrap();
    let server = Server::start(config.clone()).await.unwrap();
    let base = format!("http://{}", server.http_addr);
    let http = reqwest::Client::new();
    let app_id = app.app.id.get();

    // Two users through the API.
    let session = |user: Option<(&str, &str)>| {
        let mut body = json!({"application_id": app_id, "auth_key": app.app.auth_key});
        if let Some((l, p)) = user {
            body["user"] = json!({"login": l, "password": p});
        }
        http.post(format!("{base}/session.json")).json(&body).send()
    };
    let app_token = session(None).await.unwrap().json::<Value>().await.unwrap()["session"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let mut ids = Vec::new();
    for login in ["reader", "writer"] {
        let v: Value = http
            .post(format!("{base}/users.json"))
            .header("CB-Token", &app_token)
            .json(&json!({"user": {"login": login, "password": "password1"}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids.push(v["user"]["id"].as_i64().unwrap());
    }
    let (reader, writer) = (ids[0], ids[1]);
    let token = session(Some(("reader", "password1")))
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["session"]["token"]
        .as_str()
        .unwrap()
        .to_string();

    // Bulk fill straight into the database: the API would take hours for a million messages.
    let fill_start = Instant::now();
    let mut conn = SqliteConnectOptions::new()
        .filename(dir.path().join("confab.db"))
        .busy_timeout(Duration::from_secs(60))
        .connect()
        .await
        .unwrap();
    let mut tx = conn.begin().await.unwrap();
    let now_ms: i64 = 1_700_000_000_000;
    let big = oid(1_600_000_000, 1);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for d in 0..dialogs {
        let id = if d == 0 {
            big.clone()
        } else {
            oid(1_600_000_000 + d as u32, d as u64 + 1)
        };
        sqlx::query("INSERT INTO dialogs (id, app_id, type, owner_id, name, admins_ids, pinned_messages_ids, \
             last_message, last_message_date_sent, last_message_id, last_message_user_id, created_at, updated_at) \
             VALUES (?, ?, 2, ?, ?, '', '', ?, ?, ?, ?, ?, ?)")
            .bind(&id).bind(app_id).bind(writer).bind(format!("dialog {d}"))
            .bind("last").bind(1_600_000_000 + d as i64).bind(oid(1_600_000_000 + d as u32, 9)).bind(writer)
            .bind(now_ms).bind(now_ms)
            .execute(&mut *tx).await.unwrap();
        for u in [reader, writer] {
            sqlx::query("INSERT INTO dialog_members (dialog_id, user_id, occupant, unread_count, joined_at) VALUES (?, ?, 1, ?, ?)")
                .bind(&id).bind(u).bind(if u == reader { (d % 7) as i64 } else { 0 }).bind(now_ms)
                .execute(&mut *tx).await.unwrap();
        }
    }
    for n in 0..messages {
        let sender = if n % 2 == 0 { writer } else { reader };
        let body: Vec<String> = (0..8).map(|_| word(rng.gen_range(0..VOCABULARY))).collect();
        let secs = 1_600_000_000 + n as u32;
        sqlx::query("INSERT INTO messages (id, dialog_id, app_id, sender_id, recipient_id, body, date_sent, \
             read_ids, delivered_ids, created_at, updated_at) VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?)")
            .bind(oid(secs, n as u64)).bind(&big).bind(app_id).bind(sender).bind(body.join(" "))
            .bind(secs as i64).bind(format!(",{sender},")).bind(format!(",{sender},"))
            .bind(now_ms).bind(now_ms)
            .execute(&mut *tx).await.unwrap();
    }
    sqlx::query("UPDATE dialog_members SET unread_count = ? WHERE dialog_id = ? AND user_id = ?")
        .bind((messages / 2) as i64)
        .bind(&big)
        .bind(reader)
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("UPDATE dialogs SET last_message_date_sent = ? WHERE id = ?")
        .bind(1_600_000_000 + messages as i64)
        .bind(&big)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    sqlx::query("ANALYZE").execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    println!(
        "filled {dialogs} dialogs and {messages} messages in one dialog in {:.1?}",
        fill_start.elapsed()
    );

    let get = |path: String| {
        let req = http.get(format!("{base}{path}")).header("CB-Token", &token);
        async move {
            let started = Instant::now();
            let resp = req.send().await.unwrap();
            let status = resp.status();
            let body = resp.bytes().await.unwrap();
            assert!(
                status.is_success(),
                "{status}: {}",
                String::from_utf8_lossy(&body)
            );
            started.elapsed()
        }
    };
    type PathFn<'a> = Box<dyn Fn(&mut rand::rngs::StdRng) -> String + 'a>;
    let ops: Vec<(&str, PathFn)> = vec![
        (
            "dialog list (100 of 10k)",
            Box::new(|_| {
                "/chat/Dialog.json?limit=100&sort_desc=last_message_date_sent".to_string()
            }),
        ),
        (
            "message page (100 of 1M)",
            Box::new(|r| {
                let before = 1_600_000_000 + r.gen_range(100..messages.max(101));
                format!("/chat/Message.json?chat_dialog_id={big}&limit=100&sort_desc=date_sent&date_sent[lt]={before}")
            }),
        ),
        (
            "unread count (all dialogs)",
            Box::new(|_| "/chat/Message/unread.json".to_string()),
        ),
        (
            "search (1M messages)",
            Box::new(|r| {
                format!(
                    "/chat/search.json?search_text={}&limit=100",
                    word(r.gen_range(0..VOCABULARY))
                )
            }),
        ),
    ];
    println!(
        "{:<28} {:>10} {:>10} {:>10}",
        "operation", "p50", "p99", "max"
    );
    for (name, path) in &ops {
        for _ in 0..5 {
            get(path(&mut rng)).await; // warm-up
        }
        let mut samples = Vec::with_capacity(requests);
        for _ in 0..requests {
            samples.push(get(path(&mut rng)).await);
        }
        samples.sort();
        println!(
            "{name:<28} {:>10.2?} {:>10.2?} {:>10.2?}",
            percentile(&samples, 0.5),
            percentile(&samples, 0.99),
            samples[samples.len() - 1]
        );
    }
    server.shutdown().await;
}
