//! Blob transfer speed and memory, and chat-alert throughput, against the real `confab` binary.
//!
//! - Upload and download of one blob (`BENCH_BLOB_MB`, 50 by default) through the HTTP API,
//!   next to `cp` of the same file on this machine.
//! - The server's resident memory while 10 uploads of that size run at once, against its idle
//!   memory just before (sampled every 10 ms from /proc).
//! - Chat alerts: XMPP senders message offline recipients at a steady `BENCH_ALERT_RATE` per
//!   second (2,000 by default) for `BENCH_ALERT_SECS` (10); every alert goes to a webhook on
//!   loopback. Prints alerts per second received and the message → webhook latency p50/p99.
//!
//! Run: `cargo bench --bench blobs_push` (`BENCH_CONFAB_BIN=path` to measure another build).

use confab_procstat::{cpu_secs, rss_kib};
use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use confab_testkit::xmpp::XmppClient;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn mb_per_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / 1_048_576.0 / d.as_secs_f64()
}

/// `confab serve` with `env`: the child and its HTTP and XMPP addresses.
async fn serve(data_dir: &Path, env: &[(&str, String)]) -> (Child, String, std::net::SocketAddr) {
    // `BENCH_CONFAB_BIN` runs another build (to compare two builds in turns).
    let bin = std::env::var("BENCH_CONFAB_BIN").unwrap_or(env!("CARGO_BIN_EXE_confab").into());
    let mut cmd = Command::new(bin);
    cmd.arg("serve")
        .env("CONFAB_DATA_DIR", data_dir)
        .env("CONFAB_HTTP_ADDR", "127.0.0.1:0")
        .env("CONFAB_XMPP_ADDR", "127.0.0.1:0")
        .env("CONFAB_LOG", "warn,confab=info")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start confab");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let (mut http, mut xmpp) = (None, None);
    while http.is_none() || xmpp.is_none() {
        let line = lines.next_line().await.unwrap().expect("confab exited");
        let value = |key: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(key))
                .map(|v| v.trim_end_matches(',').to_string())
        };
        if line.contains("listening") {
            http = http.or(value("http="));
            xmpp = xmpp.or(value("xmpp="));
        }
    }
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, http.unwrap(), xmpp.unwrap().parse().unwrap())
}

struct Api {
    http: String,
    client: reqwest::Client,
    app: Value,
}

impl Api {
    async fn post(&self, path: &str, body: Value, token: Option<&str>) -> Value {
        let mut req = self
            .client
            .post(format!("http://{}{path}", self.http))
            .header("CB-AuthKey", self.app["auth_key"].as_str().unwrap())
            .json(&body);
        if let Some(t) = token {
            req = req.header("CB-Token", t);
        }
        let resp = req.send().await.unwrap();
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        resp.json().await.unwrap()
    }

    async fn user(&self, login: &str) -> (i64, String) {
        let creds = json!({"login": login, "password": "password1"});
        let u = self.post("/users.json", json!({"user": creds}), None).await;
        let s = self
            .post(
                "/session.json",
                json!({"application_id": self.app["id"], "auth_key": self.app["auth_key"], "user": creds}),
                None,
            )
            .await;
        (
            u["user"]["id"].as_i64().unwrap(),
            s["session"]["token"].as_str().unwrap().to_string(),
        )
    }

    /// Creates a blob and uploads `bytes` to the URL the server answers; returns the uid and the
    /// upload's duration.
    async fn upload(&self, token: &str, bytes: bytes::Bytes) -> (String, Duration) {
        let created = self
            .post(
                "/blobs.json",
                json!({"blob": {"content_type": "application/octet-stream", "name": "big.bin"}}),
                Some(token),
            )
            .await;
        let blob = &created["blob"];
        let url = url::Url::parse(blob["blob_object_access"]["params"].as_str().unwrap()).unwrap();
        let mut form = reqwest::multipart::Form::new();
        for (k, v) in url.query_pairs() {
            form = form.text(k.into_owned(), v.into_owned());
        }
        let len = bytes.len();
        let part = reqwest::multipart::Part::stream_with_length(
            // Shared, not copied: a copy of 50 MB per upload would take the client's CPU and
            // memory bandwidth from the two cores the server runs on.
            reqwest::Body::from(bytes),
            len as u64,
        )
        .file_name("big.bin");
        form = form.part("file", part);
        let target = format!("{}://{}{}", url.scheme(), url.authority(), url.path());
        let started = Instant::now();
        let resp = self
            .client
            .post(target)
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "upload: {}", resp.status());
        let took = started.elapsed();
        let id = blob["id"].as_i64().unwrap();
        let resp = self
            .client
            .put(format!("http://{}/blobs/{id}/complete.json", self.http))
            .header("CB-Token", token)
            .json(&json!({"blob": {"size": len}}))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success());
        (blob["uid"].as_str().unwrap().to_string(), took)
    }
}

async fn blobs(api: &Api, pid: u32, dir: &Path) {
    let mb = env_num("BENCH_BLOB_MB", 50);
    let bytes = bytes::Bytes::from(
        (0..mb * 1_048_576)
            .map(|i| (i * 31 % 251) as u8)
            .collect::<Vec<u8>>(),
    );
    let len = bytes.len();
    let (_, token) = api.user("uploader").await;

    // `cp` of the same bytes, file to file, on this disk; each figure is the median of
    // `BENCH_BLOB_RUNS` runs (3 by default).
    let runs = env_num("BENCH_BLOB_RUNS", 3).max(1);
    let src = dir.join("cp-src.bin");
    std::fs::write(&src, &bytes).unwrap();
    let (mut cp, mut cp_sync) = (Vec::new(), Vec::new());
    let (mut up, mut down) = (Vec::new(), Vec::new());
    // CPU the server and this process (the client) spend on the uploads alone.
    let (mut server_cpu, mut client_cpu) = (0.0, 0.0);
    let me = std::process::id();
    for _ in 0..runs {
        let started = Instant::now();
        let status = std::process::Command::new("cp")
            .arg(&src)
            .arg(dir.join("cp-dst.bin"))
            .status()
            .unwrap();
        assert!(status.success());
        cp.push(started.elapsed());
        // The server makes an upload durable before it answers: `cp` plus an fsync of the copy.
        let started = Instant::now();
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "cp {src} {dst} && sync {dst}",
                src = src.display(),
                dst = dir.join("cp-sync-dst.bin").display()
            ))
            .status()
            .unwrap();
        assert!(status.success());
        cp_sync.push(started.elapsed());

        let (server_before, client_before) = (cpu_secs(pid), cpu_secs(me));
        let (uid, took) = api.upload(&token, bytes.clone()).await;
        up.push(took);
        server_cpu += cpu_secs(pid).unwrap_or(0.0) - server_before.unwrap_or(0.0);
        client_cpu += cpu_secs(me).unwrap_or(0.0) - client_before.unwrap_or(0.0);
        let started = Instant::now();
        let mut resp = api
            .client
            .get(format!("http://{}/blobs/{uid}?token={token}", api.http))
            .send()
            .await
            .unwrap();
        // Counted, not kept: the client's own copying would be timed too.
        let mut got = 0;
        while let Some(chunk) = resp.chunk().await.unwrap() {
            got += chunk.len();
        }
        down.push(started.elapsed());
        assert_eq!(got, len);
    }
    for v in [&mut cp, &mut cp_sync, &mut up, &mut down] {
        v.sort();
    }
    let mid = runs / 2;
    let (cp, cp_sync, up, down) = (cp[mid], cp_sync[mid], up[mid], down[mid]);
    println!(
        "blob {mb} MB (median of {runs}): upload {:.0} MB/s, download {:.0} MB/s; cp {:.0} MB/s, cp + fsync {:.0} MB/s \
         (upload {:.0}% of cp, {:.0}% of cp + fsync; download {:.0}% of cp)",
        mb_per_s(len, up),
        mb_per_s(len, down),
        mb_per_s(len, cp),
        mb_per_s(len, cp_sync),
        100.0 * cp.as_secs_f64() / up.as_secs_f64(),
        100.0 * cp_sync.as_secs_f64() / up.as_secs_f64(),
        100.0 * cp.as_secs_f64() / down.as_secs_f64(),
    );
    println!(
        "CPU per upload (mean, including the create and complete calls): server {:.0} ms, client {:.0} ms",
        1000.0 * server_cpu / runs as f64,
        1000.0 * client_cpu / runs as f64,
    );

    // Memory during 10 parallel uploads.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = rss_kib(pid).unwrap_or(0);
    let peak = Arc::new(Mutex::new(idle));
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        tokio::spawn(async move {
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                let now = rss_kib(pid).unwrap_or(0);
                {
                    let mut p = peak.lock().unwrap();
                    *p = (*p).max(now);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let started = Instant::now();
    let uploads: Vec<_> = (0..10)
        .map(|_| {
            let (api, token, bytes) = (api, token.clone(), bytes.clone());
            async move { api.upload(&token, bytes).await }
        })
        .collect();
    futures_util::future::join_all(uploads).await;
    let all = started.elapsed();
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    sampler.await.unwrap();
    let peak = *peak.lock().unwrap();
    println!(
        "10 parallel uploads of {mb} MB: {:.0} MB/s in all; server memory idle {:.1} MiB, peak {:.1} MiB (+{:.1} MiB)",
        mb_per_s(10 * len, all),
        idle as f64 / 1024.0,
        peak as f64 / 1024.0,
        (peak - idle) as f64 / 1024.0
    );
}

type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

async fn hook(State(arrivals): State<Arrivals>, Json(body): Json<Value>) -> &'static str {
    if let Some(id) = body["message_id"].as_str() {
        arrivals
            .lock()
            .unwrap()
            .insert(id.to_string(), Instant::now());
    }
    "{}"
}

async fn alerts(api: &Api, xmpp: std::net::SocketAddr, arrivals: Arrivals) {
    let rate = env_num("BENCH_ALERT_RATE", 2000);
    let secs = env_num("BENCH_ALERT_SECS", 10);
    let app_id = api.app["id"].as_i64().unwrap();
    let mut recipients = Vec::new();
    for i in 0..50 {
        recipients.push(api.user(&format!("away{i}")).await.0);
    }
    let mut senders = Vec::new();
    for i in 0..10 {
        let (id, token) = api.user(&format!("sender{i}")).await;
        let mut c = XmppClient::tcp(xmpp).await;
        c.login(id, app_id, &token).await;
        senders.push(c);
    }

    let total = rate * secs;
    let mut sent: HashMap<String, Instant> = HashMap::with_capacity(total);
    let tick = Duration::from_millis(10);
    let per_tick = (rate / 100).max(1);
    let mut interval = tokio::time::interval(tick);
    let started = Instant::now();
    let mut n = 0;
    while n < total {
        interval.tick().await;
        for _ in 0..per_tick.min(total - n) {
            let to = recipients[n % recipients.len()];
            let id = format!("alert-{n}");
            let xml = format!(
                "<message to='{to}-{app_id}@localhost' type='chat' id='{id}'><body>bench message {n}</body></message>"
            );
            sent.insert(id, Instant::now());
            let k = n % senders.len();
            senders[k].send(&xml).await;
            n += 1;
        }
    }
    let sending = started.elapsed();
    // Wait for the tail (at most 30 s).
    let deadline = Instant::now() + Duration::from_secs(30);
    while arrivals.lock().unwrap().len() < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let arrived = arrivals.lock().unwrap().clone();
    let last = arrived.values().max().copied().unwrap_or(started);
    let mut lat: Vec<Duration> = arrived
        .iter()
        .filter_map(|(id, at)| sent.get(id).map(|s| at.saturating_duration_since(*s)))
        .collect();
    lat.sort();
    println!(
        "chat alerts at {rate}/s offered for {secs} s ({:.0}/s sent): {} of {total} received, {:.0} alerts/s, message → webhook p50 {:.1} ms, p99 {:.1} ms",
        total as f64 / sending.as_secs_f64(),
        arrived.len(),
        arrived.len() as f64 / last.duration_since(started).as_secs_f64(),
        percentile(&lat, 0.5).as_secs_f64() * 1000.0,
        percentile(&lat, 0.99).as_secs_f64() * 1000.0,
    );
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = confab::Config {
        data_dir: data.clone(),
        ..confab::Config::default()
    };
    let creds = confab::create_app(&config, "bench").await.unwrap();
    let app = json!({"id": creds.app.id.get(), "auth_key": creds.app.auth_key});

    let arrivals: Arrivals = Arc::default();
    let hook_app = Router::new()
        .route("/hook", post(hook))
        .with_state(arrivals.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, hook_app).await.unwrap() });

    let (child, http, xmpp) = serve(
        &data,
        &[
            ("CONFAB_PUSH_WEBHOOK_URL", hook_url),
            ("CONFAB_XMPP_MAX_STANZAS_PER_SEC", "100000".into()),
            ("CONFAB_XMPP_STANZA_BURST", "100000".into()),
            ("CONFAB_XMPP_MAX_BYTES_PER_SEC", "100000000".into()),
            ("CONFAB_XMPP_BYTE_BURST", "100000000".into()),
            ("CONFAB_XMPP_OFFLINE_MAX_PER_USER", "100000".into()),
            ("CONFAB_HTTP_REQUESTS_PER_SEC_PER_IP", "0".into()),
            ("CONFAB_HTTP_REQUESTS_PER_SEC_PER_TOKEN", "0".into()),
        ],
    )
    .await;
    let pid = child.id().unwrap();
    let api = Api {
        http,
        client: reqwest::Client::new(),
        app,
    };
    blobs(&api, pid, dir.path()).await;
    // `BENCH_ALERTS=0` measures blobs only.
    if env_num("BENCH_ALERTS", 1) != 0 {
        alerts(&api, xmpp, arrivals).await;
    }
    drop(child);
}
