//! Group and broadcast fan-out over real XMPP sockets.
//!
//! The server runs in this process; the receiving clients run in a child process (this binary again,
//! `BENCH_ROLE=clients`) so each side stays under the 20,000 open-files limit. Users, tokens and dialogs
//! are inserted straight into the database (signing up 10,000 users through the API would mostly time
//! Argon2). Clients log in with SASL PLAIN + token, bind, send initial presence and never join: group
//! delivery does not need it.
//!
//! Two phases per scenario:
//! - latency: one message at a time, waiting for every delivery; p50/p99 of send → last delivery;
//! - throughput: a burst of messages; deliveries/s from first send to last delivery.
//!
//! Run: `cargo bench --bench muc_fanout`. Sizes: `BENCH_GROUP` (1000), `BENCH_BROADCAST` (10000),
//! `BENCH_LATENCY_MSGS` (200), `BENCH_BURST_MSGS` (200).

use std::io::{BufRead, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use confab::{Config, Server};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn token(user: i64) -> String {
    format!("benchtoken{user:012}")
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Reads until `needle` has been seen (in the bytes read by this call).
async fn read_until(s: &mut TcpStream, needle: &[u8]) {
    let mut acc = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).await.expect("read");
        assert!(
            n > 0,
            "server closed during login: {}",
            String::from_utf8_lossy(&acc)
        );
        acc.extend_from_slice(&buf[..n]);
        if acc.windows(needle.len()).any(|w| w == needle) {
            return;
        }
    }
}

/// SASL PLAIN with the token, bind, initial presence.
async fn login(addr: &str, app: i64, user: i64) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.set_nodelay(true).unwrap();
    let open = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";
    s.write_all(open.as_bytes()).await.unwrap();
    read_until(&mut s, b"</stream:features>").await;
    let plain = base64::engine::general_purpose::STANDARD
        .encode(format!("\0{user}-{app}\0{}", token(user)));
    s.write_all(
        format!("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{plain}</auth>")
            .as_bytes(),
    )
    .await
    .unwrap();
    read_until(&mut s, b"<success").await;
    s.write_all(open.as_bytes()).await.unwrap();
    read_until(&mut s, b"</stream:features>").await;
    s.write_all(
        b"<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq><presence/>",
    )
    .await
    .unwrap();
    read_until(&mut s, b"</iq>").await;
    s
}

const END: &[u8] = b"</message>";

/// Child process: `count` clients from `first`; prints `ready`, `got <k>` when every client has message
/// `k`, then `t <k> <nanos of the last delivery>` for each message.
async fn clients() {
    let addr = std::env::var("BENCH_ADDR").unwrap();
    let app: i64 = std::env::var("BENCH_APP").unwrap().parse().unwrap();
    let first: i64 = std::env::var("BENCH_FIRST").unwrap().parse().unwrap();
    let count = env_num("BENCH_COUNT", 0);
    let total = env_num("BENCH_TOTAL", 0);

    let mut conns = Vec::with_capacity(count);
    let sem = Arc::new(tokio::sync::Semaphore::new(256));
    let mut logins = Vec::new();
    for i in 0..count {
        let addr = addr.clone();
        let sem = sem.clone();
        logins.push(tokio::spawn(async move {
            let _p = sem.acquire().await.unwrap();
            login(&addr, app, first + i as i64).await
        }));
    }
    for l in logins {
        conns.push(l.await.unwrap());
    }

    let counts: Arc<Vec<AtomicUsize>> = Arc::new((0..total).map(|_| AtomicUsize::new(0)).collect());
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
    let mut tasks = Vec::new();
    for mut s in conns {
        let counts = counts.clone();
        let done_tx = done_tx.clone();
        tasks.push(tokio::spawn(async move {
            let mut times: Vec<u128> = Vec::with_capacity(total);
            let mut buf = vec![0u8; 65536];
            let mut tail: Vec<u8> = Vec::new();
            while times.len() < total {
                let n = s.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                let at = now_nanos();
                let mut data = std::mem::take(&mut tail);
                data.extend_from_slice(&buf[..n]);
                let found = data.windows(END.len()).filter(|w| *w == END).count();
                for _ in 0..found {
                    let k = times.len();
                    if k >= total {
                        break;
                    }
                    times.push(at);
                    if counts[k].fetch_add(1, Ordering::AcqRel) + 1 == count {
                        let _ = done_tx.send(k);
                    }
                }
                let keep = data.len().min(END.len() - 1);
                tail = data[data.len() - keep..].to_vec();
            }
            (times, s)
        }));
    }
    drop(done_tx);
    println!("ready");
    let printer = tokio::spawn(async move {
        let mut out = std::io::stdout();
        while let Some(k) = done_rx.recv().await {
            writeln!(out, "got {k}").unwrap();
            out.flush().unwrap();
        }
    });
    let mut last = vec![0u128; total];
    let mut keep = Vec::new();
    for t in tasks {
        let (times, s) = t.await.unwrap();
        for (k, at) in times.into_iter().enumerate() {
            last[k] = last[k].max(at);
        }
        keep.push(s);
    }
    printer.await.unwrap();
    let mut out = std::io::stdout();
    for (k, at) in last.iter().enumerate() {
        writeln!(out, "t {k} {at}").unwrap();
    }
    out.flush().unwrap();
}

/// Waits for the clients' `got <k>` line.
async fn wait_got(lines: &mut tokio::sync::mpsc::UnboundedReceiver<String>, k: usize) {
    let want = format!("got {k}");
    loop {
        let l = tokio::time::timeout(Duration::from_secs(60), lines.recv())
            .await
            .expect("deliveries timed out")
            .expect("clients ended");
        if l == want {
            return;
        }
    }
}

struct Scenario {
    name: &'static str,
    room: String,
    receivers: usize,
}

/// Runs one scenario: spawns the clients, times both phases, prints and returns the report line.
async fn run(
    scenario: &Scenario,
    addr: &str,
    app: i64,
    latency_msgs: usize,
    burst_msgs: usize,
) -> String {
    let total = latency_msgs + burst_msgs;
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env("BENCH_ROLE", "clients")
        .env("BENCH_ADDR", addr)
        .env("BENCH_APP", app.to_string())
        .env("BENCH_FIRST", "2")
        .env("BENCH_COUNT", scenario.receivers.to_string())
        .env("BENCH_TOTAL", total.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (line_tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines() {
            let Ok(l) = l else { break };
            if line_tx.send(l).is_err() {
                break;
            }
        }
    });
    let login_start = Instant::now();
    assert_eq!(lines.recv().await.as_deref(), Some("ready"));
    eprintln!(
        "{}: {} receivers logged in in {:.1}s",
        scenario.name,
        scenario.receivers,
        login_start.elapsed().as_secs_f64()
    );

    // The sender (user 1, the owner); its reflections are drained and counted.
    let sender = login(addr, app, 1).await;
    let (mut rd, mut wr) = sender.into_split();
    let reflected = Arc::new(AtomicUsize::new(0));
    let r2 = reflected.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        loop {
            let n = rd.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            let c = buf[..n].windows(END.len()).filter(|w| *w == END).count();
            r2.fetch_add(c, Ordering::Relaxed);
        }
    });
    let msg = |k: usize| {
        format!(
            "<message to='{}' type='groupchat' id='m{k}'><body>bench message {k} with a little text</body></message>",
            scenario.room
        )
    };
    let mut sent_at = vec![0u128; total];
    // Latency: one at a time.
    for (k, slot) in sent_at.iter_mut().enumerate().take(latency_msgs) {
        *slot = now_nanos();
        wr.write_all(msg(k).as_bytes()).await.unwrap();
        wait_got(&mut lines, k).await;
    }
    // Throughput: a burst.
    let burst_start = now_nanos();
    let mut burst = String::new();
    for k in latency_msgs..total {
        burst.push_str(&msg(k));
    }
    sent_at[latency_msgs..].fill(burst_start);
    wr.write_all(burst.as_bytes()).await.unwrap();
    wait_got(&mut lines, total - 1).await;

    let mut last = vec![0u128; total];
    while let Some(l) = lines.recv().await {
        let mut p = l.split(' ');
        if p.next() == Some("t") {
            let k: usize = p.next().unwrap().parse().unwrap();
            last[k] = p.next().unwrap().parse().unwrap();
        }
    }
    let _ = child.wait();
    let deliveries_per_msg = scenario.receivers + 1;
    let mut lat: Vec<f64> = (0..latency_msgs)
        .map(|k| (last[k].saturating_sub(sent_at[k])) as f64 / 1e6)
        .collect();
    lat.sort_by(f64::total_cmp);
    let burst_end = last[latency_msgs..].iter().copied().max().unwrap();
    let burst_secs = (burst_end - burst_start) as f64 / 1e9;
    let rate = (burst_msgs * deliveries_per_msg) as f64 / burst_secs;
    let mut burst_lat: Vec<f64> = (latency_msgs..total)
        .map(|k| (last[k] - sent_at[k]) as f64 / 1e6)
        .collect();
    burst_lat.sort_by(f64::total_cmp);
    let report = format!(
        "{}: {} online recipients (+ sender reflection) | one at a time ({latency_msgs} msgs): send→last delivery p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms | burst of {burst_msgs}: {:.0} deliveries/s ({:.2} s), p99 send→last delivery {:.1} ms | reflections seen {}",
        scenario.name,
        scenario.receivers,
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.last().unwrap(),
        rate,
        burst_secs,
        percentile(&burst_lat, 0.99),
        reflected.load(Ordering::Relaxed),
    );
    println!("{report}");
    report
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if std::env::var("BENCH_ROLE").as_deref() == Ok("clients") {
        rt.block_on(clients());
        return;
    }
    rt.block_on(server_main());
}

async fn server_main() {
    let group = env_num("BENCH_GROUP", 1000);
    let broadcast = env_num("BENCH_BROADCAST", 10_000);
    let latency_msgs = env_num("BENCH_LATENCY_MSGS", 200);
    let burst_msgs = env_num("BENCH_BURST_MSGS", 200);
    let users = group.max(broadcast).max(2);

    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        // Headroom for bursts; a slower client is still cut off, never waited for.
        xmpp_session_queue_len: 4096,
        ..confab_testkit::test_config(dir.path())
    };
    let creds = confab::create_app(&config, "bench").await.unwrap();
    let app = creds.app.id.get();
    let server = Server::start(config.clone()).await.unwrap();
    let addr = server.xmpp_addr.to_string();

    let fill = Instant::now();
    let mut conn = SqliteConnectOptions::new()
        .filename(dir.path().join("confab.db"))
        .busy_timeout(Duration::from_secs(60))
        .connect()
        .await
        .unwrap();
    let mut tx = conn.begin().await.unwrap();
    let now_ms: i64 = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    for u in 1..=users as i64 {
        sqlx::query(
            "INSERT INTO users (id, app_id, login, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(u)
        .bind(app)
        .bind(format!("bench{u}"))
        .bind(now_ms)
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .unwrap();
        sqlx::query("INSERT INTO sessions (app_id, user_id, token_hash, created_at, updated_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(app)
            .bind(u)
            .bind(confab_service::secrets::token_hash(&token(u)))
            .bind(now_ms)
            .bind(now_ms)
            .bind(now_ms + 86_400_000)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    let group_id = "65a000000000000000000001";
    let broadcast_id = "65a000000000000000000002";
    for (id, kind) in [(group_id, 2), (broadcast_id, 1)] {
        sqlx::query("INSERT INTO dialogs (id, app_id, type, owner_id, name, admins_ids, pinned_messages_ids, created_at, updated_at) VALUES (?, ?, ?, 1, 'bench', '', '', ?, ?)")
            .bind(id)
            .bind(app)
            .bind(kind)
            .bind(now_ms)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    for u in 1..=group as i64 {
        sqlx::query("INSERT INTO dialog_members (dialog_id, user_id, occupant, joined_at) VALUES (?, ?, 1, ?)")
            .bind(group_id)
            .bind(u)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    drop(conn);
    eprintln!(
        "filled {users} users in {:.1}s",
        fill.elapsed().as_secs_f64()
    );

    let mut reports = Vec::new();
    let scenarios = [
        Scenario {
            name: "group (type 2)",
            room: format!("{app}_{group_id}@muc.localhost"),
            receivers: group - 1,
        },
        Scenario {
            name: "broadcast (type 1)",
            room: format!("{app}_{broadcast_id}@muc.localhost"),
            receivers: broadcast - 1,
        },
    ];
    for s in &scenarios {
        if s.receivers == 0 {
            continue;
        }
        reports.push(run(s, &addr, app, latency_msgs, burst_msgs).await);
        // Let the server drop the previous clients' sessions.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    server.shutdown().await;
    eprintln!("\nSummary:");
    for r in reports {
        eprintln!("  {r}");
    }
}
